//! Connections in trouble, on lossy paths made with `nft` inside the test's own namespace:
//! a listener whose clients' final ACKs are lost (half-open handshakes), SYNs to a black hole
//! (connect stalls), a server that stops reading while its clients write (both stalls,
//! linked), the rare closing states held still by dropped segments (every state count equal
//! to `ss`), clients that vanished while their RSTs were dropped (peers gone), and healthy
//! traffic that must raise nothing.

use std::time::Duration;

use serde_json::Value;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::oracle::parse_states;
use crate::util::python;
use crate::util::report::{Finding, Report};
use crate::util::scratch::Scratch;
use crate::util::{on_path, poll, stdout_of};

/// Long enough for SYN and SYN-ACK retransmissions (1 s, then 2 s) on a loaded machine.
const SEEN: Duration = Duration::from_secs(30);

/// A namespace with `nft` and Python, or `None` after the one helper said why not.
fn lossy_or_skip(test: &str) -> Option<Netns> {
    if !on_path("nft") {
        sockscope::testing::skip_or_fail(test, "`nft` is not installed (Debian package nftables)");
        return None;
    }
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return None;
    }
    netns_or_skip(test)
}

/// `nft -f -` inside `ns`, from `rules`.
fn nft(ns: &Netns, rules: &str) {
    let status = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(rules.as_bytes())?;
            child.wait()
        })
        .expect("running nft");
    assert!(status.success(), "nft rejected:\n{rules}");
}

fn finding<'a>(report: &'a Report, id: &str, pid: u32) -> Option<&'a Finding> {
    report
        .findings
        .iter()
        .find(|f| f.id == id && (f.target.pid == Some(pid) || mentions_pid(&f.evidence, pid)))
}

fn mentions_pid(evidence: &serde_json::Map<String, Value>, pid: u32) -> bool {
    evidence.values().any(|v| match v {
        Value::Array(items) => items.iter().any(|i| i["pid"] == pid),
        _ => false,
    })
}

/// Clients that connect, send a request and wait: their final ACKs and their data are lost
/// on the way in, so the server holds SYN_RECV request sockets retransmitting SYN-ACKs.
const HALF_OPEN: &str = r#"
import json, os, socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5000))
server.listen(64)
clients = []
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", 5000))
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    clients.append(c)
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

#[test]
fn lost_final_acks_are_half_open_handshakes_naming_the_clients() {
    let test = "lost_final_acks_are_half_open_handshakes_naming_the_clients";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    ns.run("sysctl", &["-qw", "net.ipv4.tcp_syncookies=0"]);
    nft(
        &ns,
        "table inet lossy {\n chain input {\n  type filter hook input priority 0;\n  \
         tcp dport 5000 tcp flags & syn == 0 drop\n }\n}\n",
    );
    let clients = 6;
    let p = python::run_in(&ns, HALF_OPEN, &[&clients.to_string()]);
    let pid = p.pid();
    let report = poll("half-open-handshakes on 127.0.0.1:5000", SEEN, || {
        let report = ns.report();
        let f = report.findings_with_id("half-open-handshakes");
        let all_retransmitted = f
            .first()
            .is_some_and(|f| f.evidence["requests_retransmitted"] == clients);
        all_retransmitted.then_some(report)
    });
    let f = report.the_finding("half-open-handshakes");
    assert_eq!(f.target.kind, "listener", "{f:?}");
    assert_eq!(f.target.local.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(f.evidence["visible_clients"], clients, "{f:?}");
    assert!(
        mentions_pid(&f.evidence, pid),
        "the clients' process is named: {f:?}"
    );
    assert!(f.summary.contains("believe they are connected"), "{f:?}");
    assert!(
        f.summary.contains("lost on the way in"),
        "no overflow here: {f:?}"
    );
    // SYN_RECV per listener equals ss.
    let syn_recv = ns
        .ss(&["-tanH", "state", "syn-recv", "sport", "=", ":5000"])
        .lines()
        .count();
    assert_eq!(
        report
            .only_netns()
            .listener("tcp", "127.0.0.1:5000")
            .syn_recv,
        syn_recv as u64
    );
    // The clients retransmit the request that nobody will read: linked to the handshakes.
    let report = poll("the clients' send-queue-stall", SEEN, || {
        let report = ns.report();
        finding(&report, "send-queue-stall", pid)
            .is_some()
            .then_some(report)
    });
    let s = finding(&report, "send-queue-stall", pid).expect("polled for");
    assert_eq!(s.evidence["peer_half_open"], true, "{s:?}");
    assert!(s.summary.contains("see half-open-handshakes"), "{s:?}");
}

/// Connects that nobody answers: their SYNs are dropped.
const BLACK_HOLE: &str = r#"
import json, os, socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", 6000))
    except BlockingIOError:
        pass
    held.append(s)
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

#[test]
fn syns_into_a_black_hole_are_a_connect_stall_by_process_and_destination() {
    let test = "syns_into_a_black_hole_are_a_connect_stall_by_process_and_destination";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    nft(
        &ns,
        "table inet lossy {\n chain input {\n  type filter hook input priority 0;\n  \
         tcp dport 6000 drop\n }\n}\n",
    );
    let p = python::run_in(&ns, BLACK_HOLE, &["3"]);
    let pid = p.pid();
    let report = poll("connect-stall to 127.0.0.1:6000", SEEN, || {
        let report = ns.report();
        finding(&report, "connect-stall", pid)
            .is_some_and(|f| f.evidence["sockets"] == 3)
            .then_some(report)
    });
    let f = finding(&report, "connect-stall", pid).expect("polled for");
    assert_eq!(
        (f.target.kind.as_str(), f.target.remote.as_deref()),
        ("destination", Some("127.0.0.1:6000")),
        "{f:?}"
    );
    assert!(
        f.subject.contains(&format!("(pid {pid}) → 127.0.0.1:6000")),
        "{f:?}"
    );
    let ss = parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
    assert_eq!(
        report.only_netns().tcp_states["SYN_SENT"],
        ss.get("SYN_SENT").copied().unwrap_or(0)
    );
    // The exporter's families, through the textfile output that renders them alike.
    let out = ns.sockscope(&["report", "--format", "prometheus", "--samples", "1"]);
    let metrics = crate::util::stdout_of("report --format prometheus", &out);
    assert!(
        metrics.contains("remote=\"127.0.0.1:6000\",kind=\"connecting\"} 3\n"),
        "{metrics}"
    );
    assert!(metrics.contains(",kind=\"connecting\"} 3\n"), "{metrics}");
}

/// A server that accepts and never reads; its clients write until their buffers are full.
const STOPPED_READER: &str = r#"
import json, os, socket, sys, threading, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5005))
server.listen(64)
n = int(sys.argv[1])
def write():
    c = socket.create_connection(("127.0.0.1", 5005))
    c.setblocking(False)
    while True:
        try:
            c.send(b"x" * 65536)
        except BlockingIOError:
            time.sleep(0.05)
for _ in range(n):
    threading.Thread(target=write, daemon=True).start()
accepted = [server.accept()[0] for _ in range(n)]
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

#[test]
fn a_server_that_stops_reading_and_its_blocked_writers_are_linked() {
    let test = "a_server_that_stops_reading_and_its_blocked_writers_are_linked";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    let p = python::run_in(&ns, STOPPED_READER, &["3"]);
    let pid = p.pid();
    let report = poll("both stall findings", SEEN, || {
        let report = ns.report_with(&["--samples", "2", "--interval", "500ms"]);
        let both = finding(&report, "receive-queue-stall", pid).is_some()
            && finding(&report, "send-queue-stall", pid).is_some();
        both.then_some(report)
    });
    let r = finding(&report, "receive-queue-stall", pid).expect("polled for");
    assert_eq!(r.target.kind, "process");
    assert_eq!(r.evidence["sockets"], 3, "{r:?}");
    assert_eq!(r.evidence["judged_over_window"], true, "{r:?}");
    let s = finding(&report, "send-queue-stall", pid).expect("polled for");
    assert_eq!(s.evidence["zero_window"], 3, "{s:?}");
    assert_eq!(s.evidence["peer_not_reading"], true, "{s:?}");
    assert!(s.summary.contains("see receive-queue-stall"), "{s:?}");
}

/// FIN_WAIT1, LAST_ACK and CLOSING held still: a FIN that never arrives, a last ACK that
/// never arrives, and a simultaneous close whose ACKs never arrive.
const CLOSING_STATES: &str = r#"
import json, os, socket, subprocess, sys, time
def pair(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(8)
    client = socket.create_connection(("127.0.0.1", port))
    return server, client, server.accept()[0]
def rules(*drop):
    # One transaction: no segment slips through between two rule sets.
    text = "flush chain inet lossy output\n" + "".join(
        "add rule inet lossy output %s drop\n" % d for d in drop)
    subprocess.run(["nft", "-f", "-"], input=text.encode(), check=True)
subprocess.run(["nft", "add", "table", "inet", "lossy"], check=True)
subprocess.run(["nft", "add", "chain", "inet", "lossy", "output",
                "{ type filter hook output priority 0; }"], check=True)
fin_7001 = "tcp dport 7001 tcp flags & fin == fin"
s1, c1, a1 = pair(7001)
s2, c2, a2 = pair(7002)
s3, c3, a3 = pair(7003)
# FIN_WAIT1: the client's FIN to 7001 never arrives. CLOSING, first both FINs on 7003 held.
rules(fin_7001, "tcp dport 7003 tcp flags & fin == fin", "tcp sport 7003 tcp flags & fin == fin")
c1.shutdown(socket.SHUT_WR)
c3.shutdown(socket.SHUT_WR)
a3.shutdown(socket.SHUT_WR)
# LAST_ACK: the server's FIN gets through, the client's last ACK to 7002 does not.
c2.shutdown(socket.SHUT_WR)
time.sleep(0.2)
# CLOSING: the server's FIN reaches the client, which never had its own FIN acknowledged;
# the client's FIN and its ACKs never reach the server.
rules(fin_7001, "tcp dport 7002 tcp flags == ack", "tcp dport 7003 tcp flags & fin == fin",
      "tcp dport 7003 tcp flags == ack")
a2.shutdown(socket.SHUT_WR)
held = [s1, c1, a1, s2, c2, a2, s3, c3, a3]
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

#[test]
fn rare_closing_states_held_still_are_counted_as_ss_counts_them() {
    let test = "rare_closing_states_held_still_are_counted_as_ss_counts_them";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    let _p = python::run_in(&ns, CLOSING_STATES, &[]);
    let held = ["FIN_WAIT1", "LAST_ACK", "CLOSING"];
    poll("FIN_WAIT1, LAST_ACK and CLOSING per ss", SEEN, || {
        let ss = parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
        held.iter()
            .all(|s| ss.get(*s).copied().unwrap_or(0) >= 1)
            .then_some(())
    });
    // The states hold still: the counts agree exactly, in one of a few tries (a TIME_WAIT
    // from the set-up may expire between the two reads).
    let (ours, theirs) = poll("sockscope's counts equal to ss's", SEEN, || {
        let before = parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
        let report = ns.report();
        let after = parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
        let ours = report.only_netns().tcp_states.clone();
        (before == after).then_some((ours, after))
    });
    for (state, n) in &ours {
        assert_eq!(
            *n,
            theirs.get(state.as_str()).copied().unwrap_or(0),
            "{state}: sockscope {ours:?}, ss {theirs:?}"
        );
    }
    for state in held {
        assert!(ours[state] >= 1, "{state} is held: {ours:?}");
    }
}

/// Servers that echo, clients that keep talking: transient queues, no loss.
const BUSY_AND_HEALTHY: &str = r#"
import json, os, socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5010))
server.listen(64)
def echo(c):
    while True:
        data = c.recv(65536)
        if not data:
            return
        c.sendall(data)
def serve():
    while True:
        threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
def talk():
    c = socket.create_connection(("127.0.0.1", 5010))
    while True:
        c.sendall(b"y" * 16384)
        got = 0
        while got < 16384:
            got += len(c.recv(65536))
threading.Thread(target=serve, daemon=True).start()
for _ in range(8):
    threading.Thread(target=talk, daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

#[test]
fn busy_healthy_connections_raise_no_warning() {
    let test = "busy_healthy_connections_raise_no_warning";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    let _p = python::run_in(&ns, BUSY_AND_HEALTHY, &[]);
    for _ in 0..3 {
        let report = ns.report_with(&["--samples", "2", "--interval", "500ms"]);
        let loud: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(loud.is_empty(), "a healthy namespace raised {loud:#?}");
    }
}

/// A server holding accepted connections; its clients then leave as `sys.argv[1]` says:
/// `abort` (SO_LINGER 0: a RST, which the test's nft rule drops), `close` (a FIN: the server
/// reads EOF and closes too), `stay` (they keep the connection, idle) or `abort-on-usr1`
/// (they stay until the program gets SIGUSR1, then abort).
const SERVER_AND_CLIENTS: &str = r#"
import json, os, signal, socket, struct, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5020))
server.listen(64)
how, n = sys.argv[1], int(sys.argv[2])
clients = [socket.create_connection(("127.0.0.1", 5020)) for _ in range(n)]
accepted = [server.accept()[0] for _ in range(n)]
def abort(*_):
    global clients
    for c in clients:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    clients = []
if how == "abort":
    abort()
elif how == "abort-on-usr1":
    signal.signal(signal.SIGUSR1, abort)
elif how == "close":
    for c in clients:
        c.close()
    clients = []
    for a in accepted:
        a.recv(1)
        a.close()
    accepted = []
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// The server's ESTABLISHED sockets on :5020, as `ss` lists them.
fn established_on_5020(ns: &Netns) -> usize {
    ns.ss(&["-tanH", "state", "established", "sport", "=", ":5020"])
        .lines()
        .count()
}

/// Issue #17: clients that abort while their RSTs are dropped leave the server ESTABLISHED
/// sockets that `ss` shows as healthy; sockscope names the process and the count.
#[test]
fn clients_gone_with_their_rsts_dropped_are_peer_gone_by_process() {
    let test = "clients_gone_with_their_rsts_dropped_are_peer_gone_by_process";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    nft(
        &ns,
        "table inet lossy {\n chain output {\n  type filter hook output priority 0;\n  \
         tcp dport 5020 tcp flags & rst == rst drop\n }\n}\n",
    );
    let clients = 5;
    let p = python::run_in(&ns, SERVER_AND_CLIENTS, &["abort", &clients.to_string()]);
    let pid = p.pid();
    // What `ss` shows: only the server's ends, ESTABLISHED, nothing queued.
    assert_eq!(established_on_5020(&ns), clients);
    let report = poll("peer-gone for the server", SEEN, || {
        let report = ns.report_with(&["--samples", "2", "--interval", "300ms"]);
        finding(&report, "peer-gone", pid)
            .is_some()
            .then_some(report)
    });
    let f = finding(&report, "peer-gone", pid).expect("polled for");
    assert_eq!(f.severity, "warning");
    assert_eq!(
        (f.target.kind.as_str(), f.target.pid),
        ("process", Some(pid)),
        "{f:?}"
    );
    assert_eq!(f.evidence["sockets"], clients, "{f:?}");
    assert_eq!(f.evidence["keepalive"], 0, "{f:?}");
    assert!(
        f.evidence["idle_ms"].is_u64(),
        "a small namespace has tcp_info: {f:?}"
    );
    let peers = f.evidence["peers"].as_array().expect("peers");
    assert!(
        !peers.is_empty()
            && peers
                .iter()
                .all(|p| p.as_str().is_some_and(|p| p.starts_with("127.0.0.1:"))),
        "{f:?}"
    );
    assert!(
        f.remedy.contains(&format!(
            "sockscope kill --pid {pid} --state established --peer 127.0.0.1:"
        )),
        "{f:?}"
    );
    assert_eq!(
        report.only_netns().connections["peer_gone"],
        clients as u64,
        "{report:?}"
    );
    // One sample is one dump: a connection could be mid-teardown, nothing is raised.
    let one = ns.report();
    assert!(finding(&one, "peer-gone", pid).is_none(), "{one:?}");
    the_other_faces_name_the_peers_gone(&ns, pid, clients);
}

/// `check`, the text report, the Prometheus text and a recording replayed, while the server
/// of [`clients_gone_with_their_rsts_dropped_are_peer_gone_by_process`] holds its ghosts.
fn the_other_faces_name_the_peers_gone(ns: &Netns, pid: u32, clients: usize) {
    let sampled = ["--samples", "2", "--interval", "300ms"];
    let check = ns.sockscope(&["check", "--interval", "300ms"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "a warning: {text}");
    assert!(text.contains("peer-gone"), "{text}");
    assert!(text.contains(&format!("'peer_gone'={clients}")), "{text}");

    let mut args = vec!["report"];
    args.extend(sampled);
    let report = stdout_of("sockscope report", &ns.sockscope(&args));
    assert!(report.contains("peer-gone"), "{report}");
    assert!(report.contains(&format!("(pid {pid})")), "{report}");

    let mut args = vec!["report", "--format", "prometheus"];
    args.extend(sampled);
    let metrics = stdout_of("sockscope report --format prometheus", &ns.sockscope(&args));
    let line = |prefix: &str, label: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(label))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        line("sockscope_connections_in_trouble{", "kind=\"peer_gone\""),
        Some(clients.to_string()),
        "{metrics}"
    );
    assert_eq!(
        line("sockscope_findings{", "id=\"peer-gone\""),
        Some("1".to_owned()),
        "{metrics}"
    );

    let scratch = Scratch::new("peer_gone_replay");
    let recording = scratch.path("ghosts.ndjson");
    let path = recording.to_str().expect("a UTF-8 path");
    let recorded = ns.sockscope(&[
        "record",
        "--output",
        path,
        "--count",
        "2",
        "--interval",
        "300ms",
    ]);
    stdout_of("sockscope record --count 2", &recorded);
    let replayed = ns.sockscope(&["report", "--json", "--replay", path]);
    let replayed = crate::util::report::parse(&stdout_of("sockscope report --replay", &replayed));
    let f = finding(&replayed, "peer-gone", pid).expect("peer-gone, replayed");
    assert_eq!(f.evidence["sockets"], clients, "{f:?}");
}

/// Live local clients that stay, and clients that close normally: no peer is gone.
#[test]
fn live_local_clients_and_normal_closes_raise_no_peer_gone() {
    let test = "live_local_clients_and_normal_closes_raise_no_peer_gone";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    for how in ["stay", "close"] {
        let p = python::run_in(&ns, SERVER_AND_CLIENTS, &[how, "5"]);
        for _ in 0..2 {
            let report = ns.report_with(&["--samples", "2", "--interval", "300ms"]);
            let loud: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.severity != "info")
                .collect();
            assert!(loud.is_empty(), "{how}: raised {loud:#?}");
            assert_eq!(report.only_netns().connections["peer_gone"], 0, "{how}");
        }
        drop(p);
    }
}

/// Issue #17: connections whose clients vanish between the two samples of a window are in
/// its last sample only — what a connection being torn down looks like — and not raised.
#[test]
fn peers_gone_in_the_last_sample_only_are_not_raised() {
    let test = "peers_gone_in_the_last_sample_only_are_not_raised";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    nft(
        &ns,
        "table inet lossy {\n chain output {\n  type filter hook output priority 0;\n  \
         tcp dport 5020 tcp flags & rst == rst drop\n }\n}\n",
    );
    let p = python::run_in(&ns, SERVER_AND_CLIENTS, &["abort-on-usr1", "4"]);
    let scratch = Scratch::new(test);
    let recording = scratch.path("teardown.ndjson");
    let path = recording.to_str().expect("a UTF-8 path");
    let mut recorder = ns
        .command(crate::util::sockscope_bin())
        .args([
            "record",
            "--output",
            path,
            "--count",
            "2",
            "--interval",
            "2s",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting sockscope record");
    // The header and the first snapshot are written: the clients leave now.
    poll("the first snapshot recorded", SEEN, || {
        let lines = std::fs::read_to_string(&recording).unwrap_or_default();
        (lines.lines().count() >= 2).then_some(())
    });
    ns.run("kill", &["-USR1", &p.pid().to_string()]);
    assert!(recorder.wait().expect("sockscope record").success());

    let lines = std::fs::read_to_string(&recording).expect("the recording");
    let gone: Vec<usize> = lines
        .lines()
        .skip(1)
        .map(|l| {
            let snapshot: Value = serde_json::from_str(l).expect("a snapshot line");
            snapshot["netns"][0]["peer_gone"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert_eq!(gone, [0, 4], "gone in the last sample only");
    let replayed = ns.sockscope(&["report", "--json", "--replay", path]);
    let replayed = crate::util::report::parse(&stdout_of("sockscope report --replay", &replayed));
    assert!(
        finding(&replayed, "peer-gone", p.pid()).is_none(),
        "{:?}",
        replayed.findings
    );
    // They are gone for good: a window that sees them at both ends names them.
    let live = ns.report_with(&["--samples", "2", "--interval", "300ms"]);
    assert!(finding(&live, "peer-gone", p.pid()).is_some(), "{live:?}");
}

/// A server that accepts `sys.argv[1]` connections from its own clients, closes its listener
/// (a graceful restart, a draining old process), then its clients abort (SO_LINGER 0: a
/// RST, which the test's nft rule drops).
const LISTENER_CLOSED: &str = r#"
import json, os, socket, struct, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5020))
server.listen(64)
n = int(sys.argv[1])
clients = [socket.create_connection(("127.0.0.1", 5020)) for _ in range(n)]
accepted = [server.accept()[0] for _ in range(n)]
server.close()
for c in clients:
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// Issue #25: a server that closed its listener holds connections whose clients aborted
/// with their RSTs dropped: `peer-gone` names it, its sockets accepted.
#[test]
fn a_server_whose_listener_is_closed_holds_peers_gone() {
    let test = "a_server_whose_listener_is_closed_holds_peers_gone";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    nft(
        &ns,
        "table inet lossy {\n chain output {\n  type filter hook output priority 0;\n  \
         tcp dport 5020 tcp flags & rst == rst drop\n }\n}\n",
    );
    let clients = 5;
    let p = python::run_in(&ns, LISTENER_CLOSED, &[&clients.to_string()]);
    let pid = p.pid();
    assert_eq!(established_on_5020(&ns), clients);
    assert!(
        ns.ss(&["-tlnH"]).trim().is_empty(),
        "no listener is left: {}",
        ns.ss(&["-tlnH"])
    );
    let report = poll("peer-gone for the server", SEEN, || {
        let report = ns.report_with(&["--samples", "2", "--interval", "300ms"]);
        finding(&report, "peer-gone", pid)
            .is_some()
            .then_some(report)
    });
    let f = finding(&report, "peer-gone", pid).expect("polled for");
    assert_eq!(f.target.pid, Some(pid), "{f:?}");
    assert_eq!(f.evidence["sockets"], clients, "{f:?}");
    assert_eq!(f.evidence["accepted"], clients, "{f:?}");
    assert_eq!(f.evidence["connected"], 0, "{f:?}");
    assert!(f.summary.contains("it accepted"), "{f:?}");
}

/// A local server on 127.0.0.1:5432 that accepts and never reads.
const POOL_SERVER: &str = r#"
import json, os, socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 5432))
server.listen(64)
accepted = []
def accept():
    while True:
        accepted.append(server.accept()[0])
threading.Thread(target=accept, daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// A client holding a pool of `sys.argv[1]` connections to 127.0.0.1:5432, each with a query
/// sent (the server never reads it: killed, its kernel answers with a RST).
const POOL_CLIENT: &str = r#"
import json, os, socket, sys
pool = [socket.create_connection(("127.0.0.1", 5432)) for _ in range(int(sys.argv[1]))]
for c in pool:
    c.send(b"SELECT 1;")
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// Issue #25: a client holding pooled connections to a local server killed while its RSTs
/// and FINs are dropped: `peer-gone` names the client process and the destination.
#[test]
fn a_client_pool_to_a_killed_local_server_is_peer_gone_naming_the_destination() {
    let test = "a_client_pool_to_a_killed_local_server_is_peer_gone_naming_the_destination";
    let Some(ns) = lossy_or_skip(test) else {
        return;
    };
    nft(
        &ns,
        "table inet lossy {\n chain output {\n  type filter hook output priority 0;\n  \
         tcp sport 5432 tcp flags & (fin | rst) != 0 drop\n }\n}\n",
    );
    let pooled = 5;
    let server = python::run_in(&ns, POOL_SERVER, &[]);
    let client = python::run_in(&ns, POOL_CLIENT, &[&pooled.to_string()]);
    let pid = client.pid();
    poll("the queries to be acknowledged", SEEN, || {
        let quiet = ns
            .ss(&["-tnH", "state", "established", "dport", "=", ":5432"])
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("0"))
            .count();
        (quiet == pooled).then_some(())
    });
    ns.run("kill", &["-KILL", &server.pid().to_string()]);
    poll("the server's ends to be gone", SEEN, || {
        ns.ss(&["-tanH", "sport", "=", ":5432"])
            .trim()
            .is_empty()
            .then_some(())
    });
    let report = poll("peer-gone for the client", SEEN, || {
        let report = ns.report_with(&["--samples", "2", "--interval", "300ms"]);
        finding(&report, "peer-gone", pid)
            .is_some()
            .then_some(report)
    });
    let f = finding(&report, "peer-gone", pid).expect("polled for");
    assert_eq!(
        (f.target.kind.as_str(), f.target.pid),
        ("process", Some(pid)),
        "{f:?}"
    );
    assert_eq!(f.evidence["sockets"], pooled, "{f:?}");
    assert_eq!(f.evidence["connected"], pooled, "{f:?}");
    assert_eq!(
        f.evidence["peers"],
        serde_json::json!(["127.0.0.1:5432"]),
        "the destination: {f:?}"
    );
    assert!(f.summary.contains("127.0.0.1:5432"), "{f:?}");
    assert!(f.summary.contains("it connected"), "{f:?}");
    assert!(
        f.remedy.contains(&format!(
            "sockscope kill --pid {pid} --state established --peer 127.0.0.1:5432"
        )),
        "{f:?}"
    );
    drop(server);
}
