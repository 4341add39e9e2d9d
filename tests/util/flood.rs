//! SYNs at a steady pace into a private namespace, from a thread of the test process that has
//! entered it: load whose rate the test knows, which no lab scenario makes (the lab's waiting
//! clients retransmit in bursts, on the kernel's backoff schedule).
//!
//! Entering a namespace with setns(2) takes CAP_SYS_ADMIN over it, so this works when the
//! tests run as root; [`Flood::start`] says why when it cannot. The thread stops, and is
//! joined, when the [`Flood`] is dropped, so a failing test leaves nothing running.

use std::net::SocketAddrV4;
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::netns::Netns;

pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    /// Open a connection to `to` inside `ns` every `pace`, and close it at once. On loopback
    /// the SYN is handled inside connect(), so when `to` is a listener with a full accept
    /// queue each attempt is exactly one drop, counted before connect() returns.
    pub fn start(ns: &Netns, to: SocketAddrV4, pace: Duration) -> Result<Flood, String> {
        let file = ns
            .file()
            .map_err(|e| format!("cannot open the namespace: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (entered_tx, entered_rx) = mpsc::channel();
        let thread = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                let entered =
                    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network));
                let _ = entered_tx.send(entered.map_err(|e| e.to_string()));
                if entered.is_err() {
                    return;
                }
                while !stop.load(Ordering::Relaxed) {
                    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
                    if let Ok(fd) = rustix::net::socket_with(
                        AddressFamily::INET,
                        SocketType::STREAM,
                        flags,
                        None,
                    ) {
                        // EINPROGRESS: the SYN went out and was dropped; the socket goes.
                        let _ = rustix::net::connect(&fd, &to);
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(pace);
                }
            })
        };
        let entered = entered_rx
            .recv()
            .map_err(|_| "the flood thread ended before entering the namespace".to_owned())
            .and_then(|r| r.map_err(|e| format!("setns into the namespace: {e}")));
        let mut flood = Flood {
            stop,
            sent,
            started: Instant::now(),
            thread: Some(thread),
        };
        match entered {
            Ok(()) => Ok(flood),
            Err(e) => {
                flood.stop();
                Err(e)
            }
        }
    }

    /// Attempts per second so far.
    pub fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let sent = self.sent.load(Ordering::Relaxed) as f64;
        sent / self.started.elapsed().as_secs_f64()
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}
