//! The kernel's own tables that drop connections while no listener is full: connection
//! tracking full, TIME_WAIT buckets exhausted. Each in the test's own namespace.

use crate::util::netns::netns_or_skip;
use crate::util::python;
use crate::util::servers::tools_or_skip;
use crate::util::stdout_of;

/// The host's `nf_conntrack_max`, lowered for one test and put back on drop (also when the
/// test fails). The limit is global; each namespace's count is compared with it on its own,
/// so the host and other tests' namespaces, which track far fewer, are not affected.
struct ConntrackMax {
    was: String,
}

const CONNTRACK_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

impl ConntrackMax {
    fn lower_to(max: u32) -> Result<ConntrackMax, String> {
        let was = std::fs::read_to_string(CONNTRACK_MAX)
            .map_err(|e| format!("cannot read {CONNTRACK_MAX}: {e} (is nf_conntrack loaded?)"))?;
        std::fs::write(CONNTRACK_MAX, max.to_string()).map_err(|e| {
            format!("cannot lower {CONNTRACK_MAX}: {e} (needs root in the initial namespace)")
        })?;
        Ok(ConntrackMax { was })
    }
}

impl Drop for ConntrackMax {
    fn drop(&mut self) {
        let _ = std::fs::write(CONNTRACK_MAX, self.was.trim());
    }
}

/// A listener on 127.0.0.1:7000 and `count` non-blocking connects to it, held open (SYNs the
/// table refused are retried by the kernel, and dropped again while it is full).
const CONNECTS: &str = r#"
import json, os, socket, sys
count = int(sys.argv[1])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 7000))
listener.listen(1024)
clients = []
for _ in range(count):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", 7000))
    clients.append(c)
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// Short connections to a listener of its own, one after another, for `seconds`: each
/// closes first from the client's side, which then holds TIME_WAIT.
const SHORT_CONNECTIONS: &str = r#"
import json, os, socket, sys, time
seconds = float(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 7001))
listener.listen(128)
print(json.dumps({"pid": os.getpid()}), flush=True)
end = time.time() + seconds
while time.time() < end:
    c = socket.socket()
    c.connect(("127.0.0.1", 7001))
    a, _ = listener.accept()
    c.close()
    a.close()
    time.sleep(0.01)
sys.stdin.read()
"#;

#[test]
fn conntrack_table_full_drops_new_connections() {
    let test = "conntrack_table_full_drops_new_connections";
    if !tools_or_skip(test, &["nft"]) || !python::available() {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    // Track every new connection in this namespace.
    ns.run("nft", &["add", "table", "inet", "track"]);
    ns.run(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "track",
            "in",
            "{ type filter hook input priority 0; }",
        ],
    );
    ns.run(
        "nft",
        &[
            "add", "rule", "inet", "track", "in", "ct", "state", "new", "accept",
        ],
    );
    let _max = match ConntrackMax::lower_to(30) {
        Ok(max) => max,
        Err(reason) => {
            sockscope::testing::skip_or_fail(test, &reason);
            return;
        }
    };
    let _clients = python::run_in(&ns, CONNECTS, &["60"]);

    let report = ns.report_until(
        &["--samples", "2", "--interval", "1s", "--conntrack-ports"],
        "a critical conntrack-full",
        |r| {
            r.findings_with_id("conntrack-full")
                .iter()
                .any(|f| f.severity == "critical")
        },
    );
    let f = report.the_finding("conntrack-full");
    assert_eq!(f.target.kind, "netns", "{f:?}");
    assert_eq!(f.evidence["count"].as_u64(), Some(30), "{f:?}");
    assert_eq!(f.evidence["max"].as_u64(), Some(30), "{f:?}");
    assert!(
        f.evidence["drop_per_s"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0),
        "the drop rate: {f:?}"
    );
    assert!(f.remedy.contains("nf_conntrack_max"), "{f:?}");
    // Asked for, the entries' destination: the listener every connect went to.
    let busiest = &f.evidence["busiest_ports"]["busiest"][0];
    assert_eq!(busiest["proto"], "tcp", "{f:?}");
    assert_eq!(busiest["port"], 7000, "{f:?}");
    assert_eq!(busiest["entries"], 30, "{f:?}");

    // The other faces say it too: the text report's table line, and check, whose window may
    // fall between two of the clients' SYN retries (then the table is only full: a warning).
    let report_text = stdout_of("report", &ns.sockscope(&["report", "--samples", "1"]));
    assert!(
        report_text.contains("Conntrack: 30 entries of nf_conntrack_max 30 (100.0 %)"),
        "{report_text}"
    );
    let check = ns.sockscope(&["check"]);
    let status = String::from_utf8_lossy(&check.stdout);
    assert!(matches!(check.status.code(), Some(1 | 2)), "{status}");
    assert!(status.contains("conntrack-full"), "{status}");
    assert!(
        status.contains("'conntrack_fill_max'=100%;90;;0;100"),
        "{status}"
    );
}

#[test]
fn time_wait_buckets_overflow() {
    let test = "time_wait_buckets_overflow";
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "/usr/bin/python3 is not installed");
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    ns.run("sysctl", &["-q", "-w", "net.ipv4.tcp_max_tw_buckets=5"]);
    let _churn = python::run_in(&ns, SHORT_CONNECTIONS, &["20"]);

    let report = ns.report_until(
        &["--samples", "2", "--interval", "1s"],
        "time-wait-overflow",
        |r| !r.findings_with_id("time-wait-overflow").is_empty(),
    );
    let f = report.the_finding("time-wait-overflow");
    assert_eq!(f.severity, "warning", "{f:?}");
    assert_eq!(f.evidence["tcp_max_tw_buckets"].as_u64(), Some(5), "{f:?}");
    assert!(
        f.evidence["overflow_per_s"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0),
        "{f:?}"
    );
    assert!(f.evidence["time_wait"].as_u64() <= Some(5), "{f:?}");
    assert!(f.remedy.contains("tcp_max_tw_buckets"), "{f:?}");
    // The client closes first: its sockets hold TIME_WAIT, towards the listener.
    let busiest = &f.evidence["destinations"][0];
    assert_eq!(busiest["address"], "127.0.0.1:7001", "{f:?}");
    assert_eq!(busiest["incoming"], false, "{f:?}");
}
