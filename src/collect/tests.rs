//! The collector against sockets held by a helper process (this test binary, re-run) in a
//! network namespace of the test's own: a one-shot pass, and incremental refreshes against
//! full passes.
//!
//! The sockets live in a process of their own so that nothing else changes its descriptor
//! count: the other tests of this binary open and close descriptors all the time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::test_support::{Holder, may_enter_or_skip};
use super::*;
use crate::model::{NetnsSnapshot, TcpState};

/// Set for the helper process: without it, the helper test does nothing.
const HELPER_ENV: &str = "SOCKSCOPE_TEST_SOCKET_HOLDER";

/// Not a test: the body of the helper process. Makes a listener and
/// `$SOCKSCOPE_TEST_SOCKET_HOLDER` accepted connections to it, says `ready`, then obeys
/// stdin, one command a line, answering `done`:
/// `leave N` (the clients of N connections close, the first after sending a few bytes
/// nobody reads; their servers stay open in CLOSE_WAIT), `listen` (one more listener),
/// `close` (the servers left in CLOSE_WAIT close), `swap` (the client of the last connection
/// closes and a listener opens: as many descriptors as before), `abort N` (the clients of N
/// connections abort with a RST; their servers stay open).
#[test]
#[ignore = "helper process of the collector tests"]
fn socket_holder_helper() {
    let Some(n) = std::env::var(HELPER_ENV).ok().and_then(|n| n.parse().ok()) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut conns = pairs(&listener, n);
    let mut listeners = vec![listener];
    let mut servers = Vec::new();
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap_or_default();
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some("leave"), Some(n)) => {
                conns[0].0.write_all(b"unread").expect("write");
                servers.extend(conns.drain(..n).map(|(_client, server)| server));
            }
            (Some("abort"), Some(n)) => {
                for (client, server) in conns.drain(..n) {
                    rustix::net::sockopt::set_socket_linger(&client, Some(Duration::ZERO))
                        .expect("SO_LINGER");
                    drop(client);
                    servers.push(server);
                }
            }
            (Some("listen"), _) => listeners.push(TcpListener::bind("127.0.0.1:0").expect("bind")),
            (Some("close"), _) => servers.clear(),
            (Some("swap"), _) => {
                if let Some((_client, server)) = conns.pop() {
                    servers.push(server);
                }
                listeners.push(TcpListener::bind("127.0.0.1:0").expect("bind"));
            }
            _ => break,
        }
        println!("done");
    }
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

/// The helper process, inside `holder`'s namespace.
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Helper {
    fn start(holder: &Holder, connections: usize) -> Helper {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", holder.ns_path().display()))
            .arg("--")
            .arg(exe)
            .args(["--exact", "collect::tests::socket_holder_helper"])
            .args(["--ignored", "--nocapture", "--test-threads", "1", "-q"])
            .env(HELPER_ENV, connections.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the helper");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut helper = Helper {
            child,
            stdin,
            stdout,
        };
        helper.wait_for("ready");
        helper
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_for(&mut self, word: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).expect("helper output");
            assert!(read > 0, "the helper ended before saying {word}");
            if line.trim() == word {
                return;
            }
        }
    }

    fn tell(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("helper stdin");
        writeln!(stdin, "{command}").expect("write to the helper");
        self.wait_for("done");
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.wait();
    }
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

/// The counters of `holder`'s namespace that a refresh compares to decide whether it held
/// still: `Tcp` of /proc/net/snmp and `TcpExt` of /proc/net/netstat.
fn tcp_counters(holder: &Holder) -> [BTreeMap<String, u64>; 2] {
    [("snmp", "Tcp"), ("netstat", "TcpExt")].map(|(file, section)| {
        let path = format!("/proc/{}/net/{file}", holder.pid());
        let text = std::fs::read_to_string(&path).expect("the namespace's counters");
        let mut sections = procnet::parse::parse_snmp(&text).expect("counters that parse");
        sections
            .remove(section)
            .unwrap_or_else(|| panic!("{path} has {section}"))
            .values
    })
}

fn in_holder(holder: &Holder) -> CollectOptions {
    CollectOptions {
        netns: NetnsScope::One(holder.ns_path().display().to_string()),
        ..CollectOptions::default()
    }
}

/// Every refresh after the first incremental, nothing carried over for long.
fn incremental() -> Refresh {
    let never = Duration::from_secs(3600);
    Refresh::Incremental {
        full_dump_every: never,
        full_walk_every: never,
        quiet_tracked_for: never,
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one story, told in order
fn an_incremental_refresh_agrees_with_a_full_pass_on_what_it_reads_afresh() {
    let test = "an_incremental_refresh_agrees_with_a_full_pass_on_what_it_reads_afresh";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    if !may_enter_or_skip(test) {
        return;
    }
    let mut helper = Helper::start(&holder, 3);
    let opts = in_holder(&holder);
    let mut collector = Collector::with_refresh(opts.clone(), incremental());

    let first = collector.snapshot().expect("first snapshot");
    assert!(
        !first.freshness.incremental,
        "the first snapshot is a full pass"
    );
    let ns = &first.netns[0];
    assert_eq!(ns.id, holder.id().model_id());
    assert_eq!(ns.tcp_states.get(TcpState::Listen), 1);
    assert_eq!(ns.tcp_states.get(TcpState::Established), 6);

    // Two clients leave (one after sending bytes nobody reads), and a listener opens.
    helper.tell("leave 2");
    helper.tell("listen");
    let second = until(
        || collector.snapshot().expect("refresh"),
        |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 2,
    );
    let full = collect(&opts).expect("full pass");

    let f = second.freshness;
    assert!(f.incremental);
    assert!(f.processes_walked >= 1, "the helper's descriptors changed");
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
    assert!(
        inc.tcp_listeners.iter().all(|l| l.owners == [helper.pid()]),
        "both listeners and their owner: {:?}",
        inc.tcp_listeners
    );
    assert_eq!(close_wait_of(&second, helper.pid()), 2);
    assert_eq!(close_wait_of(&full, helper.pid()), 2);
    let tcp_of = |s: &Snapshot| s.process(helper.pid()).map(|p| p.tcp.clone());
    assert_eq!(
        tcp_of(&second).map(|t| t.get(TcpState::Established)),
        tcp_of(&full).map(|t| t.get(TcpState::Established)),
        "the helper's sockets that stayed ESTABLISHED"
    );
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

    // The clients' sockets, closing (FIN_WAIT1 until their FIN is acknowledged, then
    // FIN_WAIT2), appeared after the last full dump: the incremental snapshot says how old
    // its count of them is.
    let closing = |ns: &NetnsSnapshot| {
        ns.tcp_states.get(TcpState::FinWait1) + ns.tcp_states.get(TcpState::FinWait2)
    };
    assert_eq!((closing(exact), closing(inc)), (2, 0));
    assert!(f.socket_dump_age_ms > 0 || second.monotonic_ns == first.monotonic_ns);
}

#[test]
fn a_process_that_swaps_a_socket_for_another_is_looked_at_again_for_the_new_one() {
    let test = "a_process_that_swaps_a_socket_for_another_is_looked_at_again_for_the_new_one";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    let mut helper = Helper::start(&holder, 3);
    let mut collector = Collector::with_refresh(in_holder(&holder), incremental());
    let first = collector.snapshot().expect("first snapshot");
    let pid = helper.pid();
    let fds = |s: &Snapshot| s.process(pid).and_then(|p| p.fds);
    let before = fds(&first);

    helper.tell("swap");
    let second = until(
        || collector.snapshot().expect("refresh"),
        |s| s.netns[0].tcp_listeners.len() == 2,
    );
    assert!(second.freshness.incremental);
    assert_eq!(
        fds(&second),
        before,
        "the helper holds as many descriptors as before"
    );
    let owners: Vec<Vec<u32>> = second.netns[0]
        .tcp_listeners
        .iter()
        .map(|l| l.owners.clone())
        .collect();
    assert_eq!(
        owners,
        [[helper.pid()], [helper.pid()]],
        "the new listener's owner too"
    );
    let helper_now = second.process(helper.pid()).expect("the helper");
    assert_eq!(
        helper_now.tcp.get(TcpState::Listen),
        2,
        "each listener counted once"
    );

    // The join keeps what the look found.
    let third = collector.snapshot().expect("refresh");
    assert!(
        third.netns[0]
            .tcp_listeners
            .iter()
            .all(|l| l.owners == [helper.pid()])
    );
}

#[test]
fn a_quiet_namespace_carries_its_close_wait_sockets_over_and_ages_them() {
    let test = "a_quiet_namespace_carries_its_close_wait_sockets_over_and_ages_them";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    if !may_enter_or_skip(test) {
        return;
    }
    let mut helper = Helper::start(&holder, 2);
    let mut collector = Collector::with_refresh(in_holder(&holder), incremental());
    helper.tell("leave 1");
    let first = until(
        || collector.snapshot().expect("snapshot"),
        |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 1,
    );
    // Refresh twice, 200 ms apart, in a namespace that held still in between: the close's
    // last segments may still be on their way, so take the pair again until the namespace's
    // own counters, read beside the collector, show that nothing moved across it.
    let mut tries = 0;
    let (quiet, later) = loop {
        tries += 1;
        let before = tcp_counters(&holder);
        let quiet = collector.snapshot().expect("refresh");
        // Time for the carried-over socket to age by: what the test measures.
        std::thread::sleep(Duration::from_millis(200));
        let later = collector.snapshot().expect("refresh");
        if tcp_counters(&holder) == before {
            break (quiet, later);
        }
        assert!(
            tries < 20,
            "the namespace's TCP counters moved across every one of {tries} pairs of refreshes"
        );
    };

    for s in [&first, &quiet, &later] {
        assert_eq!(s.netns[0].tcp_states.get(TcpState::CloseWait), 1);
        assert_eq!(
            close_wait_of(s, helper.pid()),
            1,
            "the owner is found again"
        );
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
    helper.tell("close");
    let moved = until(
        || collector.snapshot().expect("refresh"),
        |s| s.netns[0].tcp_states.get(TcpState::CloseWait) == 0,
    );
    assert_eq!(moved.freshness.tracked_age_ms, 0);
    assert_eq!(close_wait_of(&moved, helper.pid()), 0);
}

/// Issue #17: a server's connection whose client aborted while its RST was dropped is found
/// by every full dump, owner and all; a refresh carries it over as the same observation, and
/// only a second full dump confirms it.
#[test]
fn a_connection_whose_peer_is_gone_is_confirmed_by_a_second_full_dump_only() {
    let test = "a_connection_whose_peer_is_gone_is_confirmed_by_a_second_full_dump_only";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    if !may_enter_or_skip(test) {
        return;
    }
    let rules = "add table inet lossy\n\
                 add chain inet lossy output { type filter hook output priority 0; }\n\
                 add rule inet lossy output tcp flags & rst == rst drop\n";
    let nft = Command::new("nsenter")
        .arg(format!("--net={}", holder.ns_path().display()))
        .args(["--", "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(rules.as_bytes())?;
            child.wait()
        });
    if !nft.is_ok_and(|status| status.success()) {
        crate::testing::skip_or_fail(test, "`nft` could not add a rule (package nftables)");
        return;
    }
    let mut helper = Helper::start(&holder, 3);
    helper.tell("abort 2");
    let gone = |s: &Snapshot| -> Vec<(u32, Vec<u32>)> {
        s.netns[0]
            .peer_gone
            .iter()
            .map(|g| (g.dumps, g.socket.owners.clone()))
            .collect()
    };
    let judged = |window: &[Snapshot]| -> Vec<u64> {
        let settings = crate::analyze::Settings::default();
        crate::analyze::analyze(window, &settings)
            .expect("a window")
            .findings
            .iter()
            .filter_map(|f| match &f.evidence {
                crate::analyze::Evidence::PeerGone(e) => Some(e.sockets),
                _ => None,
            })
            .collect()
    };
    let pid = helper.pid();

    let mut refreshing = Collector::with_refresh(in_holder(&holder), incremental());
    let full = refreshing.snapshot().expect("snapshot");
    let refresh = refreshing.snapshot().expect("refresh");
    assert!(refresh.freshness.incremental);
    for s in [&full, &refresh] {
        assert_eq!(
            gone(s),
            [(1, vec![pid]), (1, vec![pid])],
            "{:?}",
            s.netns[0]
        );
    }
    assert!(judged(&[full.clone(), refresh]).is_empty());

    let every = Refresh::Incremental {
        full_dump_every: Duration::ZERO,
        full_walk_every: Duration::ZERO,
        quiet_tracked_for: Duration::ZERO,
    };
    let mut dumping = Collector::with_refresh(in_holder(&holder), every);
    let _ = dumping.snapshot().expect("snapshot");
    // A full dump is due again once the last one's cost has been spread out (100x its CPU).
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let s = dumping.snapshot().expect("snapshot");
        if s.freshness.socket_dump_age_ms == 0 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no second full dump: {:?}",
            s.freshness
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(gone(&second), [(2, vec![pid]), (2, vec![pid])]);
    assert_eq!(judged(&[second]), [2]);
    // Two one-shot passes: the window's first and last.
    let later = collect(&in_holder(&holder)).expect("a pass");
    assert_eq!(judged(&[full, later]), [2]);
}

/// A listener of `holder`'s namespace, held by this process (which lives in another): made
/// on a thread that entered the namespace, which then ends. Issue #16, scoped walks.
fn listener_made_in(holder: &Holder) -> TcpListener {
    let ns = std::fs::File::open(holder.ns_path()).expect("open the namespace");
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the holder's namespace");
        TcpListener::bind("127.0.0.1:0").expect("bind")
    })
    .join()
    .expect("the thread that made the listener")
}

#[test]
fn a_listener_held_from_another_namespace_is_owned_and_stays_owned_across_refreshes() {
    let test = "a_listener_held_from_another_namespace_is_owned_and_stays_owned_across_refreshes";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    if !may_enter_or_skip(test) {
        return;
    }
    let helper = Helper::start(&holder, 1);
    let listener = listener_made_in(&holder);
    let port = listener.local_addr().expect("addr").port();
    let me = std::process::id();
    let opts = in_holder(&holder);
    let owners_of = |s: &Snapshot, port: u16| -> Vec<u32> {
        let l = s.netns[0]
            .tcp_listeners
            .iter()
            .find(|l| l.local.port() == port);
        l.map(|l| l.owners.clone()).unwrap_or_default()
    };
    let helper_port = |s: &Snapshot| {
        s.netns[0]
            .tcp_listeners
            .iter()
            .find(|l| l.local.port() != port)
            .map(|l| l.local.port())
            .expect("the helper's listener")
    };

    let full = collect(&opts).expect("a full pass");
    assert_eq!(owners_of(&full, port), [me], "found outside the namespace");
    assert_eq!(owners_of(&full, helper_port(&full)), [helper.pid()]);
    assert!(
        full.notes
            .iter()
            .any(|n| n.contains("found the owners of 1 ")),
        "{:?}",
        full.notes
    );
    let a = holder.id().ino;
    let elsewhere: Vec<u32> = full
        .processes
        .iter()
        .filter(|p| p.netns.is_some_and(|ns| ns != a))
        .map(|p| p.pid)
        .collect();
    assert_eq!(
        elsewhere,
        [me],
        "no other process of another namespace is listed"
    );
    assert!(full.process_scan.not_walked > 0, "{:?}", full.process_scan);

    let mut collector = Collector::with_refresh(opts, incremental());
    for n in 0..3 {
        let s = collector.snapshot().expect("snapshot");
        assert_eq!(n > 0, s.freshness.incremental);
        assert_eq!(owners_of(&s, port), [me], "snapshot {n}: {:?}", s.notes);
        assert_eq!(owners_of(&s, helper_port(&s)), [helper.pid()]);
    }
    drop(listener);
}

/// `f`, run on a thread of its own inside `holder`'s namespace.
fn inside<R: Send + 'static>(holder: &Holder, f: impl FnOnce() -> R + Send + 'static) -> R {
    let ns = std::fs::File::open(holder.ns_path()).expect("open the namespace");
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("the thread inside the namespace")
}

/// A full pass leaves the kernel's bind table out of its dump only where the namespace's
/// counts say no bound-inactive socket exists: one that does is still counted.
#[test]
fn a_bound_inactive_socket_is_counted_and_without_one_the_pass_may_leave_the_bind_table_out() {
    let test =
        "a_bound_inactive_socket_is_counted_and_without_one_the_pass_may_leave_the_bind_table_out";
    if !may_enter_or_skip(test) {
        return;
    }
    let Some(holder) = Holder::start(test) else {
        return;
    };
    let bound = inside(&holder, || {
        let fd = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            None,
        )
        .expect("a TCP socket");
        let any_port = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
        rustix::net::bind(&fd, &any_port).expect("bind");
        fd
    });
    assert!(inside(&holder, || procnet::read_net_tables(
        &procnet::read_host_sysctls()
    )
    .bound_inactive_possible()));
    let snapshot = collect(&in_holder(&holder)).expect("a pass");
    assert_eq!(snapshot.netns[0].tcp_states.get(TcpState::BoundInactive), 1);

    drop(bound);
    // Our own netlink sockets of the pass just made leave the namespace's count only once
    // the kernel frees them, after a grace period.
    let deadline = Instant::now() + Duration::from_secs(5);
    while inside(&holder, || {
        procnet::read_net_tables(&procnet::read_host_sysctls()).bound_inactive_possible()
    }) {
        assert!(Instant::now() < deadline, "the counts never agreed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let snapshot = collect(&in_holder(&holder)).expect("a pass");
    assert_eq!(snapshot.netns[0].tcp_states.get(TcpState::BoundInactive), 0);
}

/// Readers below the engine (STYLE.md, habit 19): the code that reads the kernel imports the
/// vocabulary, the model and the readers below it, never the engine that runs it (a pass,
/// its plan, the carry-over, the owner search, the peers across namespaces, the join, the
/// notes, the public face in `mod.rs`). Read from the sources, as `use` lines and paths.
mod layers {
    use std::path::{Path, PathBuf};

    /// Each reader, and what of `collect/` it may import besides its own submodules.
    const READERS: &[(&str, &[&str])] = &[
        ("netlink", &[]),
        ("procnet", &[]),
        ("netns", &["vocab"]),
        ("procs", &["vocab", "clock"]),
        ("bpf", &["vocab"]),
        (
            "sockets",
            &["vocab", "clock", "netlink", "procnet", "netns"],
        ),
        ("acceptors", &["procs"]),
    ];

    /// Modules every part of `collect/` may build on: they import nothing of it.
    const LEAVES: &[&str] = &["vocab", "clock"];

    fn collect_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/collect")
    }

    /// The source files of module `name` of `collect/` (a file, or a directory of them),
    /// tests left out, each with its module path inside `collect/`.
    fn files_of(name: &str) -> Vec<(Vec<String>, String)> {
        let file = collect_dir().join(format!("{name}.rs"));
        if file.is_file() {
            let src = std::fs::read_to_string(&file).expect("read source");
            return vec![(vec![name.to_owned()], src)];
        }
        let mut out = Vec::new();
        let mut dirs = vec![(collect_dir().join(name), vec![name.to_owned()])];
        while let Some((dir, module)) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("list sources") {
                let path = entry.expect("entry").path();
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("utf-8 name")
                    .to_owned();
                let mut here = module.clone();
                if path.is_dir() {
                    here.push(stem);
                    dirs.push((path, here));
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs")
                    || ["tests", "test_support"].contains(&stem.as_str())
                {
                    continue;
                }
                if stem != "mod" {
                    here.push(stem);
                }
                let src = std::fs::read_to_string(&path).expect("read source");
                out.push((here, src));
            }
        }
        assert!(!out.is_empty(), "no sources for {name}");
        out
    }

    /// Where `src`, the source of module `module` of `collect/`, reaches into the crate: each
    /// path resolved from the crate's root (`collect::vocab::NsId`, `model::TcpState`).
    /// Comments and the unit tests at the end are left out.
    fn imports(module: &[String], src: &str) -> Vec<Vec<String>> {
        let src = match src.find("#[cfg(test)]\nmod tests") {
            Some(at) => &src[..at],
            None => src,
        };
        let code: String = src
            .lines()
            .map(|l| l.find("//").map_or(l, |at| &l[..at]))
            .collect::<Vec<_>>()
            .join("\n");
        let mut paths = Vec::new();
        // `use` trees, braces expanded.
        let mut rest = code.as_str();
        while let Some(at) = find_word(rest, "use ") {
            let tree = &rest[at + 4..];
            let end = tree.find(';').expect("a use ends with ;");
            let tree: String = tree[..end].chars().filter(|c| !c.is_whitespace()).collect();
            paths.extend(expand(&tree));
            rest = &rest[at + 4 + end..];
        }
        // Paths written out in the code.
        for head in ["super::", "self::", "crate::"] {
            let mut rest = code.as_str();
            while let Some(at) = find_word(rest, head) {
                let path: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if !path.ends_with("::") {
                    paths.push(path.clone());
                }
                rest = &rest[at + path.len().max(1)..];
            }
        }
        let mut resolved: Vec<Vec<String>> = paths
            .into_iter()
            .filter_map(|p| resolve(module, &p))
            .collect();
        resolved.sort();
        resolved.dedup();
        resolved
    }

    /// `word` in `s` where no identifier character comes right before it.
    fn find_word(s: &str, word: &str) -> Option<usize> {
        let mut from = 0;
        while let Some(at) = s[from..].find(word) {
            let at = from + at;
            let before = s[..at].chars().next_back();
            if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                return Some(at);
            }
            from = at + word.len();
        }
        None
    }

    /// `a::{b::c, d}` -> `a::b::c`, `a::d`.
    fn expand(tree: &str) -> Vec<String> {
        let Some(open) = tree.find('{') else {
            return vec![tree.to_owned()];
        };
        let head = &tree[..open];
        let body = &tree[open + 1..tree.rfind('}').expect("closing brace")];
        let mut parts = Vec::new();
        let (mut depth, mut current) = (0, String::new());
        for c in body.chars() {
            match c {
                ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
                '{' => {
                    depth += 1;
                    current.push(c);
                }
                '}' => {
                    depth -= 1;
                    current.push(c);
                }
                _ => current.push(c),
            }
        }
        parts.push(current);
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .flat_map(|p| expand(&format!("{head}{p}")))
            .collect()
    }

    /// `path`, written in module `module` of `collect/`, from the crate's root; `None` for a
    /// path outside the crate (`std::`, a dependency).
    fn resolve(module: &[String], path: &str) -> Option<Vec<String>> {
        let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
        let mut at: Vec<String> = match segments.peek() {
            Some(&"crate") => {
                segments.next();
                Vec::new()
            }
            Some(&("super" | "self")) => {
                let mut at = vec!["collect".to_owned()];
                at.extend(module.iter().cloned());
                at
            }
            _ => return None,
        };
        while let Some(&s) = segments.peek() {
            match s {
                "super" => at.pop(),
                "self" => None,
                _ => break,
            };
            segments.next();
        }
        at.extend(segments.map(str::to_owned));
        Some(at)
    }

    /// What module `module` of `collect/` imports that it may not: anything of the crate
    /// but the model, `collect/`'s root, and any module of `collect/` but its own and
    /// `allowed`.
    fn forbidden(module: &[String], src: &str, allowed: &[&str]) -> Vec<String> {
        imports(module, src)
            .into_iter()
            .filter(|path| match path.first().map(String::as_str) {
                Some("model") => false,
                Some("collect") => path
                    .get(1)
                    .is_none_or(|m| *m != module[0] && !allowed.contains(&m.as_str())),
                _ => true,
            })
            .map(|path| path.join("::"))
            .collect()
    }

    #[test]
    fn readers_import_only_the_vocabulary_the_model_and_the_readers_below_them() {
        for &(reader, allowed) in READERS {
            let mut seen = Vec::new();
            for (module, src) in files_of(reader) {
                let wrong = forbidden(&module, &src, allowed);
                assert!(
                    wrong.is_empty(),
                    "{} imports {wrong:?}: a reader builds on {allowed:?} and the model only",
                    module.join("/")
                );
                seen.extend(imports(&module, &src));
            }
            // The check sees what it checks: every reader names the model, or (the BPF
            // iterator's, which reads nothing the model holds) the vocabulary.
            let names = |p: &Vec<String>| {
                p[0] == "model" || (p[0] == "collect" && p.get(1).is_some_and(|m| m == "vocab"))
            };
            assert!(
                seen.iter().any(names),
                "{reader}: no import of the model found, is the source read at all?"
            );
        }
        for leaf in LEAVES {
            for (module, src) in files_of(leaf) {
                let wrong = forbidden(&module, &src, &[]);
                assert!(wrong.is_empty(), "{leaf} imports {wrong:?}: it is a leaf");
            }
        }
    }

    #[test]
    fn an_import_of_the_engine_is_caught_however_it_is_written() {
        let module = ["sockets".to_owned(), "keep".to_owned()];
        let src = "use super::super::pass::Lost;\n\
                   use crate::collect::{owners, vocab::NsId};\n\
                   use crate::model::TcpState;\n\
                   // use super::super::notes;\n\
                   fn f() { super::super::carry_over::Keep::Nothing; }\n\
                   use super::slot_index::Slot;\n";
        let wrong = forbidden(&module, src, &["vocab"]);
        assert_eq!(
            wrong,
            [
                "collect::carry_over::Keep::Nothing",
                "collect::owners",
                "collect::pass::Lost",
            ]
        );
    }
}
