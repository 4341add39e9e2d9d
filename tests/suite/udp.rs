//! Regression tests for #13: UDP receive drops and ephemeral-port exhaustion, built in the
//! test's own namespace with small Python programs, checked against `ss` and `nstat` read
//! before and after the report (the kernel's counters keep moving while it samples).

use std::time::Duration;

use super::check::check;
use crate::util::netns::{Netns, netns_or_skip};
use crate::util::python::{self, PYTHON};
use crate::util::report;
use crate::util::report::Report;
use crate::util::scratch::{Scratch, as_str};
use crate::util::{poll, stdout_of};

const SEEN: Duration = Duration::from_secs(30);

/// A namespace with Python, or `None` after the one helper said why not.
fn ns_with_python(test: &str) -> Option<Netns> {
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return None;
    }
    netns_or_skip(test)
}

/// A receiver on 127.0.0.1:7003 with a small buffer that reads `argv[1]` datagrams a second
/// ("0": never), and a sender that sends `argv[2]` a second, in one process named `udpsink`.
const UDP_SINK: &str = r#"
import json, os, socket, sys, threading, time
with open("/proc/self/comm", "w") as f:
    f.write("udpsink")
reads, sends = float(sys.argv[1]), float(sys.argv[2])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
rx.bind(("127.0.0.1", 7003))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send():
    while True:
        tx.sendto(b"x" * 200, ("127.0.0.1", 7003))
        time.sleep(1 / sends)
def read():
    while True:
        rx.recv(2048)
threading.Thread(target=send, daemon=True).start()
if reads > 0:
    threading.Thread(target=read, daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// `d<N>` of `ss -uam` for the socket on local port 7003.
fn ss_drops(ns: &Netns) -> u64 {
    let out = ns.ss(&["-uamnH", "sport", "=", ":7003"]);
    let skmem = out
        .split("skmem:(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no skmem in {out:?}"));
    skmem
        .split(',')
        .find_map(|item| item.strip_prefix('d'))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no d<N> in {skmem:?}"))
}

fn udp_counter(nstat: &std::collections::BTreeMap<String, u64>, name: &str) -> u64 {
    nstat.get(&format!("Udp{name}")).copied().unwrap_or(0)
        + nstat.get(&format!("Udp6{name}")).copied().unwrap_or(0)
}

#[test]
fn issue_13_a_reader_that_never_reads_is_udp_receive_drops_with_its_owner() {
    let test = "issue_13_a_reader_that_never_reads_is_udp_receive_drops_with_its_owner";
    let Some(ns) = ns_with_python(test) else {
        return;
    };
    let p = python::run_in(&ns, UDP_SINK, &["0", "500"]);
    let pid = p.pid();
    poll("drops on 127.0.0.1:7003", SEEN, || {
        (ss_drops(&ns) > 0).then_some(())
    });

    let (drops_before, nstat_before) = (ss_drops(&ns), ns.nstat());
    let report = ns.report_with(&["--samples", "2", "--interval", "500ms"]);
    let (drops_after, nstat_after) = (ss_drops(&ns), ns.nstat());

    let f = report.the_finding("udp-receive-drops");
    assert_eq!(
        (f.target.kind.as_str(), f.target.proto.as_deref()),
        ("socket", Some("udp")),
        "{f:?}"
    );
    assert_eq!(f.target.local.as_deref(), Some("127.0.0.1:7003"));
    assert_eq!(
        f.subject,
        format!("udp 127.0.0.1:7003 (udpsink pid {pid})"),
        "{f:?}"
    );
    assert!(f.evidence["owners"][0]["pid"] == pid, "{f:?}");
    assert!(f.remedy.contains("SO_RCVBUF now"), "{f:?}");
    assert!(f.remedy.contains("net.core.rmem_max"), "{f:?}");
    assert!(f.remedy.contains("SO_REUSEPORT"), "{f:?}");

    let ns_report = report.only_netns();
    let sock = ns_report
        .udp
        .sockets
        .iter()
        .find(|s| s.local == "127.0.0.1:7003")
        .expect("the receiver is listed");
    let total = sock.drops.total.expect("a drop counter");
    assert!(
        (drops_before..=drops_after).contains(&total),
        "ss said {drops_before} then {drops_after}, sockscope {total}"
    );
    assert!(sock.drops_in_window.is_some_and(|n| n > 0), "{sock:?}");
    assert_eq!(sock.peer, None, "an unconnected receiver");
    assert!(
        sock.rmem_alloc.is_some() && ns_report.udp.socket_count >= 2 && ns_report.udp.left_out == 0,
        "the sender is counted too: {:?}",
        ns_report.udp
    );
    assert_eq!(sock.owners.first().map(|o| o.pid), Some(pid));
    assert!(
        sock.rcvbuf.is_some_and(|b| b > 0) && sock.recv_q > 0,
        "{sock:?}"
    );

    for name in ["RcvbufErrors", "InErrors"] {
        let counter = &ns_report.udp.counters[name];
        let total = counter.total.expect("the kernel exports it");
        let (lo, hi) = (
            udp_counter(&nstat_before, name),
            udp_counter(&nstat_after, name),
        );
        assert!(
            (lo..=hi).contains(&total),
            "{name}: nstat said {lo} then {hi}, sockscope {total}"
        );
        assert!(counter.rate_per_s.is_some_and(|r| r > 0.0), "{counter:?}");
    }

    other_faces_agree(&ns, pid);
    drop(p);
}

/// `check`, the text report, the Prometheus families and a recording replayed all name the
/// dropping socket and its owner.
fn other_faces_agree(ns: &Netns, pid: u32) {
    let c = check(ns, &[]);
    assert_eq!(c.code, 2, "critical past 100 drops/s: {c:#?}");
    c.assert_long_line(&format!(
        "CRITICAL udp-receive-drops udp 127.0.0.1:7003 (udpsink pid {pid})"
    ));
    assert!(c.value("udp_drops_per_s_max") >= 100.0, "{c:#?}");
    assert!(c.value("udp_rcvbuf_errors_per_s") > 0.0, "{c:#?}");
    let args = ["--samples", "2", "--interval", "500ms"];
    let report_text = stdout_of("report", &ns.sockscope(&[&["report"][..], &args].concat()));
    assert!(report_text.contains("udp-receive-drops"), "{report_text}");
    assert!(
        report_text.contains(&format!("udpsink({pid})")),
        "{report_text}"
    );
    let metrics = stdout_of(
        "report --format prometheus",
        &ns.sockscope(&[&["report", "--format", "prometheus"][..], &args].concat()),
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sockscope_udp_socket_drops_total{")
                && l.contains("local=\"127.0.0.1:7003\",comm=\"udpsink\"")),
        "{metrics}"
    );
    assert!(metrics.contains("sockscope_kernel_udp_total{"), "{metrics}");

    // A recording replays to the same finding.
    let scratch = Scratch::new("udp-drops");
    let recording = scratch.path("udp.ndjson");
    let recorded = ns.sockscope(&[
        "record",
        "--output",
        as_str(&recording),
        "--count",
        "2",
        "--interval",
        "500ms",
    ]);
    stdout_of("sockscope record", &recorded);
    let replayed = report::parse(&stdout_of(
        "report --replay",
        &ns.sockscope(&["report", "--json", "--replay", as_str(&recording)]),
    ));
    let f = replayed.the_finding("udp-receive-drops");
    assert_eq!(
        f.subject,
        format!("udp 127.0.0.1:7003 (udpsink pid {pid})"),
        "{f:?}"
    );
}

#[test]
fn issue_13_a_udp_reader_that_keeps_up_raises_nothing() {
    let test = "issue_13_a_udp_reader_that_keeps_up_raises_nothing";
    let Some(ns) = ns_with_python(test) else {
        return;
    };
    let p = python::run_in(&ns, UDP_SINK, &["1", "200"]);
    let pid = p.pid();
    let report = ns.report_with(&["--samples", "2", "--interval", "500ms"]);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.severity != "warning" && f.severity != "critical"),
        "{:#?}",
        report.findings
    );
    let sock = report
        .only_netns()
        .udp
        .sockets
        .iter()
        .find(|s| s.local == "127.0.0.1:7003")
        .expect("the receiver is listed");
    assert_eq!(sock.drops.total, Some(0), "{sock:?}");
    assert_eq!(sock.owners.first().map(|o| o.pid), Some(pid));
    assert_eq!(ss_drops(&ns), 0);
}

/// A server on 127.0.0.1:8000 (outside the range) that accepts, and a client, `portuser`,
/// holding `argv[1]` connections to it.
const PORT_USER: &str = r#"
import json, os, socket, sys, threading
with open("/proc/self/comm", "w") as f:
    f.write("portuser")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 8000))
server.listen(512)
accepted = []
def accept():
    while True:
        accepted.append(server.accept()[0])
threading.Thread(target=accept, daemon=True).start()
held = [socket.create_connection(("127.0.0.1", 8000)) for _ in range(int(sys.argv[1]))]
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// Connect to 127.0.0.1:8000 until connect() fails; print how many succeeded and the errno.
const MORE_CONNECTS: &str = r#"
import errno, json, socket
held, err = [], None
for _ in range(1000):
    try:
        held.append(socket.create_connection(("127.0.0.1", 8000)))
    except OSError as e:
        err = e.errno
        break
print(json.dumps({"connected": len(held), "errno": err, "EADDRNOTAVAIL": errno.EADDRNOTAVAIL}))
"#;

#[test]
fn issue_13_ninety_five_of_a_hundred_ports_to_one_destination_is_critical_exhaustion() {
    let test = "issue_13_ninety_five_of_a_hundred_ports_to_one_destination_is_critical_exhaustion";
    let Some(ns) = ns_with_python(test) else {
        return;
    };
    ns.run(
        "sysctl",
        &["-qw", "net.ipv4.ip_local_port_range=40000 40099"],
    );
    let p = python::run_in(&ns, PORT_USER, &["95"]);
    let pid = p.pid();
    let report: Report = poll("ephemeral-port-exhaustion", SEEN, || {
        let report = ns.report();
        (!report
            .findings_with_id("ephemeral-port-exhaustion")
            .is_empty())
        .then_some(report)
    });
    let f = report.the_finding("ephemeral-port-exhaustion");
    assert_eq!(f.severity, "critical", "{f:?}");
    assert_eq!(
        (
            f.target.kind.as_str(),
            f.target.remote.as_deref(),
            f.target.local.as_deref(),
            f.target.pid
        ),
        (
            "destination",
            Some("127.0.0.1:8000"),
            Some("127.0.0.1"),
            Some(pid)
        ),
        "{f:?}"
    );
    assert!(
        f.subject.contains(&format!("portuser (pid {pid})")),
        "{f:?}"
    );
    assert_eq!(f.evidence["ports_in_use"], 95, "{f:?}");
    assert_eq!(f.evidence["range_size"], 100, "{f:?}");
    assert_eq!(f.evidence["states"]["ESTABLISHED"], 95, "{f:?}");
    assert!(f.evidence.contains_key("tcp_tw_reuse"), "{f:?}");
    assert!(f.remedy.contains("keep-alive"), "{f:?}");
    let used = &report.only_netns().port_use[0];
    assert_eq!(
        (used.local.as_str(), used.remote.as_str(), used.ports),
        ("127.0.0.1", "127.0.0.1:8000", 95)
    );
    assert_eq!((used.range_size, used.pct_of_range), (100, 95.0));
    assert_eq!(used.states["ESTABLISHED"], 95);
    assert_eq!(used.owners.first().map(|o| o.pid), Some(pid));

    let c = check(&ns, &[]);
    assert_eq!(c.code, 2, "{c:#?}");
    assert!(c.value("ephemeral_port_use_max") >= 90.0, "{c:#?}");
    let metrics = stdout_of(
        "report --format prometheus",
        &ns.sockscope(&["report", "--format", "prometheus"]),
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sockscope_ephemeral_ports_in_use{")
                && l.contains("remote=\"127.0.0.1:8000\"")
                && l.ends_with(" 95")),
        "{metrics}"
    );
    let report_text = stdout_of("report", &ns.sockscope(&["report"]));
    assert!(
        report_text.contains("Ephemeral ports in use by destination"),
        "{report_text}"
    );

    // The harm is real: five more connect()s use the range up, the next one fails.
    let out = ns.run(PYTHON, &["-c", MORE_CONNECTS]);
    let result: serde_json::Value = serde_json::from_str(&out).expect("one JSON line");
    assert_eq!(result["connected"], 5, "{result}");
    assert_eq!(result["errno"], result["EADDRNOTAVAIL"], "{result}");
    // Closed by their process, those five still hold their ports (FIN_WAIT2 or TIME_WAIT).
    let report = poll("100 ports in use", SEEN, || {
        let report = ns.report();
        let used = report.only_netns().port_use.first()?;
        let closing = used.ports - used.states.get("ESTABLISHED").copied().unwrap_or(0);
        (used.ports == 100 && closing == 5).then_some(report)
    });
    let f = report.the_finding("ephemeral-port-exhaustion");
    assert_eq!(f.evidence["pct_of_range"], 100.0, "{f:?}");
    drop(p);
}
