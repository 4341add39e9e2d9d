//! The collector against sockets this test makes in a network namespace of its own, entered
//! from a thread: a one-shot pass, and incremental refreshes against full passes.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::test_support::{Holder, enter};
use super::*;
use crate::model::TcpState;

fn own_pid() -> u32 {
    std::process::id()
}

/// Connections to `listener`, accepted: (client, server) pairs.
fn pairs(listener: &TcpListener, n: usize) -> Vec<(TcpStream, TcpStream)> {
    let addr = listener.local_addr().expect("addr");
    (0..n)
        .map(|_| {
            let client = TcpStream::connect(addr).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            (client, server)
        })
        .collect()
}

/// The clients of the first `n` connections leave; their servers' sockets, kept open, go to
/// CLOSE_WAIT.
fn leave(conns: &mut Vec<(TcpStream, TcpStream)>, n: usize) -> Vec<TcpStream> {
    conns.drain(..n).map(|(_client, server)| server).collect()
}

/// Repeat `take` until `done` holds of its result, for up to two seconds: loopback FINs and
/// state changes are asynchronous.
fn until(mut take: impl FnMut() -> Snapshot, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let start = Instant::now();
    loop {
        let snapshot = take();
        if done(&snapshot) || start.elapsed() > Duration::from_secs(2) {
            return snapshot;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn close_wait_of(snapshot: &Snapshot, pid: u32) -> u64 {
    snapshot
        .process(pid)
        .map_or(0, |p| p.tcp.get(TcpState::CloseWait))
}

/// Never due within a test: every refresh after the first is incremental.
const NEVER: Duration = Duration::from_secs(3600);

#[test]
#[allow(clippy::too_many_lines)] // one story, told in order
fn an_incremental_refresh_agrees_with_a_full_pass_on_what_it_reads_afresh() {
    let test = "an_incremental_refresh_agrees_with_a_full_pass_on_what_it_reads_afresh";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    std::thread::spawn(move || {
        if !enter(&holder, test) {
            return;
        }
        let opts = CollectOptions::default();
        let mut collector = Collector::with_refresh(
            opts.clone(),
            Refresh::Incremental {
                full_dump_every: NEVER,
                full_walk_every: NEVER,
                quiet_tracked_for: NEVER,
            },
        );
        let first_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut conns = pairs(&first_listener, 3);

        let first = collector.snapshot().expect("first snapshot");
        assert!(
            !first.freshness.incremental,
            "the first snapshot is a full pass"
        );
        let ns = &first.netns[0];
        assert_eq!(ns.tcp_states.get(TcpState::Listen), 1);
        assert_eq!(ns.tcp_states.get(TcpState::Established), 6);

        // Two clients leave: their servers' sockets go to CLOSE_WAIT, one with unread data.
        conns[0].0.write_all(b"unread").expect("write");
        let _servers = leave(&mut conns, 2);
        let second_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let second = until(
            || collector.snapshot().expect("refresh"),
            |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 2,
        );
        let full = collect(&opts).expect("full pass");

        let f = second.freshness;
        assert!(f.incremental);
        assert!(
            f.processes_walked >= 1,
            "this process's descriptors changed"
        );
        assert!(
            f.processes_walked < second.process_scan.processes,
            "only what changed is walked: {f:?}"
        );
        let (inc, exact) = (&second.netns[0], &full.netns[0]);
        for state in [
            TcpState::Listen,
            TcpState::CloseWait,
            TcpState::SynRecv,
            TcpState::Established,
        ] {
            assert_eq!(
                inc.tcp_states.get(state),
                exact.tcp_states.get(state),
                "{state:?}: incremental {:?}, full {:?}",
                inc.tcp_states,
                exact.tcp_states
            );
        }
        assert_eq!(inc.tcp_states.get(TcpState::Listen), 2);
        let owners = |ns: &NetnsSnapshot| {
            let mut v: Vec<_> = ns
                .tcp_listeners
                .iter()
                .map(|l| (l.local, l.owners.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(owners(inc), owners(exact));
        let second_addr = second_listener.local_addr().expect("addr");
        assert!(
            inc.tcp_listeners
                .iter()
                .any(|l| l.local == second_addr && l.owners == [own_pid()]),
            "the new listener and its owner: {:?}",
            inc.tcp_listeners
        );
        assert_eq!(close_wait_of(&second, own_pid()), 2);
        assert_eq!(close_wait_of(&full, own_pid()), 2);
        let unread = |ns: &NetnsSnapshot| {
            ns.tracked
                .iter()
                .filter(|s| s.state == TcpState::CloseWait && s.recv_q > 0)
                .count()
        };
        assert_eq!(
            (unread(inc), unread(exact)),
            (2, 2),
            "data + FIN, and FIN alone"
        );

        // The clients' FIN_WAIT2 sockets appeared after the last full dump: the
        // incremental snapshot says how old its count of them is.
        assert_eq!(exact.tcp_states.get(TcpState::FinWait2), 2);
        assert_eq!(inc.tcp_states.get(TcpState::FinWait2), 0);
        assert!(f.socket_dump_age_ms > 0 || second.monotonic_ns == first.monotonic_ns);
        drop(conns);
    })
    .join()
    .expect("test thread");
}

#[test]
fn a_quiet_namespace_carries_its_close_wait_sockets_over_and_ages_them() {
    let test = "a_quiet_namespace_carries_its_close_wait_sockets_over_and_ages_them";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    std::thread::spawn(move || {
        if !enter(&holder, test) {
            return;
        }
        let mut collector = Collector::with_refresh(
            CollectOptions::default(),
            Refresh::Incremental {
                full_dump_every: NEVER,
                full_walk_every: NEVER,
                quiet_tracked_for: NEVER,
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut conns = pairs(&listener, 2);
        let servers = leave(&mut conns, 1);
        let first = until(
            || collector.snapshot().expect("snapshot"),
            |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 1,
        );
        // Let the namespace go quiet (the last ACKs of the close), then refresh twice.
        std::thread::sleep(Duration::from_millis(300));
        let quiet = collector.snapshot().expect("refresh");
        std::thread::sleep(Duration::from_millis(200));
        let later = collector.snapshot().expect("refresh");

        for s in [&first, &quiet, &later] {
            assert_eq!(s.netns[0].tcp_states.get(TcpState::CloseWait), 1);
            assert_eq!(close_wait_of(s, own_pid()), 1, "the owner is found again");
        }
        let age = |s: &Snapshot| {
            s.netns[0]
                .tracked
                .iter()
                .find(|t| t.state == TcpState::CloseWait)
                .and_then(|t| t.last_ack_recv_ms)
                .expect("a CLOSE_WAIT socket with its age")
        };
        assert!(
            later.freshness.tracked_age_ms >= 200,
            "{:?}",
            later.freshness
        );
        assert!(
            age(&later) >= age(&quiet) + 150,
            "carried over, and aged: {} then {}",
            age(&quiet),
            age(&later)
        );

        // A segment moves: the next refresh reads the sockets again.
        drop(servers);
        let moved = until(
            || collector.snapshot().expect("refresh"),
            |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 0,
        );
        assert_eq!(moved.freshness.tracked_age_ms, 0);
        assert_eq!(close_wait_of(&moved, own_pid()), 0);
    })
    .join()
    .expect("test thread");
}

#[test]
fn a_sampler_takes_full_passes_only() {
    let mut sampler = Sampler::new(CollectOptions::default(), Duration::from_millis(1));
    for _ in 0..2 {
        let s = sampler.take().expect("snapshot");
        assert!(!s.freshness.incremental);
        assert_eq!(
            s.freshness.processes_walked,
            s.process_scan.processes - dropped(&s)
        );
    }
}

/// Processes pass 1 saw that were gone before they could be looked at.
fn dropped(s: &Snapshot) -> u64 {
    s.process_scan.processes - s.processes.len() as u64
}
