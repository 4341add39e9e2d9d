//! SYNs at a steady pace into a private namespace, from a thread of the test process that has
//! entered it: load whose rate the test knows, which no lab scenario makes (the lab's waiting
//! clients retransmit in bursts, on the kernel's backoff schedule).
//!
//! Entering a namespace with setns(2) takes CAP_SYS_ADMIN over it, so this works when the
//! tests run as root; [`Flood::start`] says why when it cannot. The thread stops, and is
//! joined, when the [`Flood`] is dropped, so a failing test leaves nothing running.
//!
//! The thread notes when each attempt began and ended, so a count of drops read from the
//! kernel can be placed in time without assuming the pace held: on a loaded machine the
//! thread's sleeps stretch, and an average rate misplaces them.

use std::net::SocketAddrV4;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::netns::Netns;

pub struct Flood {
    stop: Arc<AtomicBool>,
    /// When each attempt began and when its connect() returned, in order.
    attempts: Arc<Mutex<Vec<(Instant, Instant)>>>,
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
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let (entered_tx, entered_rx) = mpsc::channel();
        let thread = {
            let (stop, attempts) = (Arc::clone(&stop), Arc::clone(&attempts));
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
                        let began = Instant::now();
                        // EINPROGRESS: the SYN went out and was dropped; the socket goes.
                        let _ = rustix::net::connect(&fd, &to);
                        let ended = Instant::now();
                        lock(&attempts).push((began, ended));
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
            attempts,
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

    /// Attempts so far.
    pub fn sent(&self) -> u64 {
        lock(&self.attempts).len() as u64
    }

    /// The least time that lies between a read of a drop counter that saw `a` of this flood's
    /// drops and a read that saw `b`, when the flood's attempts are its only drops, each
    /// counted during its connect(). A read that saw `n` came after attempt `n` began and
    /// before attempt `n + 1` ended; so the two reads lie at least from the end of attempt
    /// `min + 1` to the start of attempt `max` apart (zero when those overlap).
    pub fn least_time_between(&self, a: u64, b: u64) -> Duration {
        let attempts = lock(&self.attempts);
        let (low, high) = (a.min(b), a.max(b));
        if high <= low + 1 {
            return Duration::ZERO;
        }
        // Attempt `n` (counting from 1) is at index `n - 1`.
        let at = |n: u64| {
            usize::try_from(n)
                .ok()
                .and_then(|n| attempts.get(n.checked_sub(1)?))
        };
        match (at(low + 1), at(high)) {
            (Some(&(_, earlier_read_by)), Some(&(later_read_after, _))) => {
                later_read_after.saturating_duration_since(earlier_read_by)
            }
            _ => panic!(
                "drop counts {a} and {b} do not match the flood's {} attempts: something else \
                 dropped",
                attempts.len()
            ),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}
