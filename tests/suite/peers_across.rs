//! Issue #17, across namespaces: a server in one namespace whose clients, in another joined
//! to it by a veth pair, vanished while their RSTs were dropped (`nft` in the clients'
//! namespace). With both namespaces scanned (`--all-netns`), the server's sockets are
//! `peer-gone`, naming the clients' namespace; healthy clients raise nothing; a peer
//! namespace that is not scanned is no evidence; an address held by two scanned namespaces,
//! or a scanned namespace that tracks connections (NAT may rewrite them), leaves them
//! unchecked.
//!
//! The addresses come from 198.18.0.0/15 (set aside for tests), chosen by the test process's
//! pid so that tests running beside these, whose namespaces `--all-netns` also scans, do not
//! hold the same ones (which would make them ambiguous).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::report::{self, Finding, Report};
use crate::util::{on_path, poll, python, sockscope_bin, stdout_of};

/// A server that accepts `n` connections on `addr:port` and holds them, reading nothing.
const SERVER: &str = r#"
import json, os, socket, sys, threading
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((addr, port))
server.listen(64)
accepted = []
def accept():
    for _ in range(n):
        accepted.append(server.accept()[0])
threading.Thread(target=accept, daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// `n` clients of `addr:port` that stay, or abort at once (a RST, which `nft` drops).
const CLIENTS: &str = r#"
import json, os, socket, struct, sys
addr, port, how, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
clients = [socket.create_connection((addr, port)) for _ in range(n)]
if how == "abort":
    for c in clients:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    clients = []
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// A connection over loopback, tracked by `nft`'s conntrack: the namespace then tracks one.
const TRACKED: &str = r#"
import json, os, socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname())
accepted = server.accept()[0]
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

const PORT: &str = "5020";

/// The tests of this file one at a time: a namespace that tracks connections, made by one,
/// would leave the other's sockets unchecked.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A whole `--all-netns` report over 1,000 namespaces takes about a minute on a loaded
/// machine; two samples, and the clients' setup, well within this.
const SEEN: Duration = Duration::from_secs(600);

/// Two namespaces joined by a veth pair: the server's (`a`, address `a_ip`) and the
/// clients' (`b`, `b_ip`).
struct Pair {
    a: Netns,
    b: Netns,
    a_ip: String,
    b_ip: String,
}

/// A /30 of 198.18.0.0/15 of this test process's own: `(first host, second host)`.
fn addresses() -> (String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let subnet = (std::process::id().wrapping_mul(8).wrapping_add(n)) % (1 << 15);
    let base = (198u32 << 24) | (18 << 16) | (subnet << 2);
    let ip = |host: u32| std::net::Ipv4Addr::from(base + host).to_string();
    (ip(1), ip(2))
}

fn ip_in(ns: &Netns, args: &[&str]) {
    ns.run("ip", args);
}

/// `nft -f -` inside `ns`.
fn nft(ns: &Netns, rules: &str) {
    use std::io::Write as _;
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running nft");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes())
        .expect("writing the rules");
    assert!(
        child.wait().expect("nft").success(),
        "nft rejected:\n{rules}"
    );
}

fn pair_or_skip(test: &str) -> Option<Pair> {
    if !rustix::process::geteuid().is_root() {
        sockscope::testing::skip_or_fail(test, "a veth pair between namespaces needs root");
        return None;
    }
    if !on_path("nft") {
        sockscope::testing::skip_or_fail(test, "`nft` is not installed (Debian package nftables)");
        return None;
    }
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return None;
    }
    let a = netns_or_skip(test)?;
    let b = netns_or_skip(test)?;
    let (a_ip, b_ip) = addresses();
    ip_in(
        &a,
        &[
            "link", "add", "peer-a", "type", "veth", "peer", "name", "peer-b",
        ],
    );
    ip_in(
        &a,
        &[
            "link",
            "set",
            "peer-b",
            "netns",
            &b.holder_pid().to_string(),
        ],
    );
    ip_in(&a, &["addr", "add", &format!("{a_ip}/30"), "dev", "peer-a"]);
    ip_in(&b, &["addr", "add", &format!("{b_ip}/30"), "dev", "peer-b"]);
    ip_in(&a, &["link", "set", "peer-a", "up"]);
    ip_in(&b, &["link", "set", "peer-b", "up"]);
    Some(Pair { a, b, a_ip, b_ip })
}

impl Pair {
    /// The server in `a` with `n` clients in `b` that stay or abort; returns both programs
    /// once the server has accepted every connection.
    fn server_and_clients(&self, how: &str, n: usize) -> (python::Program, python::Program) {
        let count = n.to_string();
        let server = python::run_in(&self.a, SERVER, &[&self.a_ip, PORT, &count]);
        let clients = python::run_in(&self.b, CLIENTS, &[&self.a_ip, PORT, how, &count]);
        let owner = format!("pid={},", server.pid());
        poll("the server to accept every client", SEEN, || {
            let accepted = self
                .a
                .ss(&[
                    "-tnpH",
                    "state",
                    "established",
                    "sport",
                    "=",
                    &format!(":{PORT}"),
                ])
                .lines()
                .filter(|l| l.contains(&owner))
                .count();
            (accepted == n).then_some(())
        });
        (server, clients)
    }

    /// Drop the clients' RSTs on their way out of `b`.
    fn drop_client_rsts(&self) {
        nft(
            &self.b,
            &format!(
                "table inet lossy {{\n chain output {{\n  type filter hook output priority 0;\n  \
                 tcp dport {PORT} tcp flags & rst == rst drop\n }}\n}}\n"
            ),
        );
    }
}

/// `sockscope report --json --all-netns --samples 2`, run from the test's own namespace.
fn report_all() -> Report {
    let args = [
        "report",
        "--json",
        "--all-netns",
        "--samples",
        "2",
        "--interval",
        "300ms",
    ];
    let out = Command::new(sockscope_bin())
        .args(args)
        .output()
        .expect("running sockscope");
    report::parse(&stdout_of("sockscope report --all-netns", &out))
}

fn peer_gone(report: &Report, pid: u32) -> Option<&Finding> {
    report
        .findings
        .iter()
        .find(|f| f.id == "peer-gone" && f.target.pid == Some(pid))
}

fn connections<'a>(report: &'a Report, ns: &Netns) -> &'a std::collections::BTreeMap<String, u64> {
    let id = ns.id().to_string();
    &report
        .netns
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("namespace {id} is not in the report"))
        .connections
}

/// Issue #17: clients in another scanned namespace that aborted while their RSTs were
/// dropped leave the server ghosts; `--all-netns` names the process, the count and the
/// clients' namespace. Without `--all-netns` (the clients' namespace unscanned), or once a
/// third scanned namespace holds the clients' address too, nothing is raised.
#[test]
fn clients_gone_in_another_scanned_namespace_are_peer_gone_naming_it() {
    let test = "clients_gone_in_another_scanned_namespace_are_peer_gone_naming_it";
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(pair) = pair_or_skip(test) else {
        return;
    };
    pair.drop_client_rsts();
    let clients = 4;
    let (server, _gone) = pair.server_and_clients("abort", clients);
    let pid = server.pid();

    let report = report_all();
    let f = peer_gone(&report, pid).unwrap_or_else(|| {
        panic!(
            "no peer-gone for the server (pid {pid}); its namespace counted {:?}; findings: \
             {:#?}",
            connections(&report, &pair.a),
            report.findings
        )
    });
    assert_eq!(f.severity, "warning");
    assert_eq!(f.netns, pair.a.id().to_string(), "{f:?}");
    assert_eq!(f.evidence["sockets"], clients, "{f:?}");
    let b_label = &report
        .netns
        .iter()
        .find(|n| n.id == pair.b.id().to_string())
        .expect("the clients' namespace is scanned")
        .label;
    assert_eq!(
        f.evidence["peer_netns"],
        serde_json::json!([b_label]),
        "{f:?}"
    );
    assert!(
        f.summary
            .contains(&format!("whose peers in network namespace '{b_label}'")),
        "{f:?}"
    );
    let peers = f.evidence["peers"].as_array().expect("peers");
    assert!(
        peers.iter().all(|p| p
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{}:", pair.b_ip)))),
        "{f:?}"
    );
    assert_eq!(connections(&report, &pair.a)["peer_gone"], clients as u64);
    assert_eq!(connections(&report, &pair.a)["peer_unchecked"], 0);
    // The text report names the clients' namespace too.
    let out = Command::new(sockscope_bin())
        .args([
            "report",
            "--all-netns",
            "--samples",
            "2",
            "--interval",
            "300ms",
        ])
        .output()
        .expect("running sockscope");
    let summary = stdout_of("sockscope report --all-netns", &out);
    // Read as words: the text report wraps its lines.
    let words = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("network namespace '{b_label}'")) && summary.contains("peer-gone"),
        "{summary}"
    );

    // The server's namespace alone: the clients' is not scanned, which is no evidence.
    let alone = pair
        .a
        .report_with(&["--samples", "2", "--interval", "300ms"]);
    assert!(peer_gone(&alone, pid).is_none(), "{:#?}", alone.findings);
    assert_eq!(alone.netns[0].connections["peer_gone"], 0);
    assert_eq!(alone.netns[0].connections["peer_unchecked"], 0);

    // A third scanned namespace holding the clients' address: which one they were in cannot
    // be told, so they are unchecked, not raised.
    let Some(twin) = netns_or_skip(test) else {
        return;
    };
    ip_in(
        &twin,
        &["addr", "add", &format!("{}/32", pair.b_ip), "dev", "lo"],
    );
    let report = report_all();
    assert!(peer_gone(&report, pid).is_none(), "{:#?}", report.findings);
    assert_eq!(connections(&report, &pair.a)["peer_gone"], 0);
    assert_eq!(
        connections(&report, &pair.a)["peer_unchecked"],
        clients as u64
    );
}

/// Clients in another scanned namespace that stay connected: their other ends are found
/// there, nothing is raised. Then a scanned namespace that tracks a connection (NAT could
/// rewrite 4-tuples): the clients' sockets go unchecked, still not raised.
#[test]
fn live_clients_in_another_namespace_raise_nothing_and_tracking_leaves_them_unchecked() {
    let test = "live_clients_in_another_namespace_raise_nothing_and_tracking_leaves_them_unchecked";
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(pair) = pair_or_skip(test) else {
        return;
    };
    let clients = 3;
    let (server, _staying) = pair.server_and_clients("stay", clients);
    let pid = server.pid();
    let report = report_all();
    assert!(peer_gone(&report, pid).is_none(), "{:#?}", report.findings);
    assert_eq!(connections(&report, &pair.a)["peer_gone"], 0);
    assert_eq!(connections(&report, &pair.a)["peer_unchecked"], 0);
    let loud: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| {
            f.severity != "info"
                && (f.netns == pair.a.id().to_string() || f.netns == pair.b.id().to_string())
        })
        .collect();
    assert!(loud.is_empty(), "raised {loud:#?}");

    // A namespace whose firewall tracks connections, with one connection tracked.
    let Some(tracking) = netns_or_skip(test) else {
        return;
    };
    nft(
        &tracking,
        "table inet tracking {\n chain output {\n  type filter hook output priority 0;\n  \
         ct state new accept\n }\n}\n",
    );
    let _tracked = python::run_in(&tracking, TRACKED, &[]);
    let report = report_all();
    assert!(peer_gone(&report, pid).is_none(), "{:#?}", report.findings);
    assert_eq!(
        connections(&report, &pair.a)["peer_unchecked"],
        clients as u64,
        "every scanned namespace's connections may be rewritten now"
    );
}

/// A server on `addr:port` that accepts `n` connections and holds them: with SO_KEEPALIVE
/// on each (`keepalive` 1), and a greeting sent first (`greet` 1, a server that speaks
/// first), reading nothing.
const SILENT_SERVER: &str = r#"
import json, os, socket, sys, threading
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keepalive, greet = sys.argv[4] == "1", sys.argv[5] == "1"
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((addr, port))
server.listen(64)
accepted = []
def accept():
    for _ in range(n):
        c = server.accept()[0]
        if keepalive:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if greet:
            c.send(b"220 ready\r\n")
        accepted.append(c)
threading.Thread(target=accept, daemon=True).start()
# Local connections beside them, enough that the dump walks bare and reads the candidates'
# tcp_info one by one.
ballast = socket.socket()
ballast.bind(("127.0.0.1", 0))
ballast.listen(512)
held = []
for _ in range(int(sys.argv[6])):
    held.append(socket.create_connection(ballast.getsockname()))
    held.append(ballast.accept()[0])
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

/// `n` clients of `addr:port` that abort at once before sending anything (a RST, which
/// `nft` drops), send a request and stay, or read the greeting and answer it.
const SILENT_CLIENTS: &str = r#"
import json, os, socket, struct, sys
addr, port, how, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
clients = [socket.create_connection((addr, port)) for _ in range(n)]
for c in clients:
    if how == "abort":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    elif how == "request":
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    elif how == "answer":
        c.recv(64)
        c.send(b"HELO client\r\n")
if how == "abort":
    clients = []
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"#;

impl Pair {
    /// [`SILENT_SERVER`] in `a` with `n` [`SILENT_CLIENTS`] in `b`, once every connection
    /// is accepted and the server's ends hold nothing unread.
    fn silent_scene(
        &self,
        port: &str,
        how: &str,
        n: usize,
        keepalive: (bool, bool),
    ) -> (python::Program, python::Program) {
        let (keepalive, greet) = keepalive;
        let count = n.to_string();
        let flag = |on: bool| if on { "1" } else { "0" };
        let server = python::run_in(
            &self.a,
            SILENT_SERVER,
            &[
                &self.a_ip,
                port,
                &count,
                flag(keepalive),
                flag(greet),
                "300",
            ],
        );
        let clients = python::run_in(&self.b, SILENT_CLIENTS, &[&self.a_ip, port, how, &count]);
        poll("the server to accept every client", SEEN, || {
            let accepted = self
                .a
                .ss(&[
                    "-tnH",
                    "state",
                    "established",
                    "sport",
                    "=",
                    &format!(":{port}"),
                ])
                .lines()
                .count();
            (accepted == n).then_some(())
        });
        (server, clients)
    }

    /// A report of the server's namespace alone (the clients' is not scanned): one sample,
    /// peers silent for 2 s are named.
    fn silent_report(&self) -> Report {
        self.a
            .report_with(&["--samples", "1", "--silent-peer-after", "2s"])
    }
}

fn silent_peer(report: &Report, pid: u32) -> Option<&Finding> {
    report
        .findings
        .iter()
        .find(|f| f.id == "silent-peer" && f.target.pid == Some(pid))
}

/// Issue #25, the accept-queue write-up's ghost: clients in a namespace that is not scanned
/// connect and vanish (their RSTs dropped) before sending anything. The server's side says
/// so itself: `silent-peer` names it once they have been silent for `--silent-peer-after`.
#[test]
fn clients_that_vanish_before_sending_leave_the_server_silent_peers() {
    let test = "clients_that_vanish_before_sending_leave_the_server_silent_peers";
    let Some(pair) = pair_or_skip(test) else {
        return;
    };
    pair.drop_client_rsts();
    let clients = 4;
    let (server, _gone) = pair.silent_scene(PORT, "abort", clients, (false, false));
    let pid = server.pid();
    let report = poll("silent-peer for the server", SEEN, || {
        std::thread::sleep(Duration::from_millis(500));
        let report = pair.silent_report();
        silent_peer(&report, pid).is_some().then_some(report)
    });
    let f = silent_peer(&report, pid).expect("polled for");
    assert_eq!(f.severity, "warning");
    assert_eq!(f.netns, pair.a.id().to_string(), "{f:?}");
    assert_eq!(f.evidence["sockets"], clients, "{f:?}");
    assert_eq!(
        f.evidence["top_peers"],
        serde_json::json!([{"address": pair.b_ip, "sockets": clients}]),
        "{f:?}"
    );
    assert_eq!(f.evidence["keepalive"], 0, "{f:?}");
    assert!(
        f.evidence["longest_idle_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 2000),
        "{f:?}"
    );
    assert!(
        f.remedy.contains(&format!(
            "sockscope kill --pid {pid} --state established --peer {}",
            pair.b_ip
        )),
        "{f:?}"
    );
    assert!(f.remedy.contains("tcp_keepalive_time"), "{f:?}");
    assert_eq!(
        connections(&report, &pair.a)["silent_peer"],
        clients as u64,
        "{report:?}"
    );
    assert!(
        peer_gone(&report, pid).is_none(),
        "the peers' namespace is not scanned: no evidence they are gone"
    );
    // The default threshold is a minute: not yet.
    let default = pair.a.report_with(&["--samples", "1"]);
    assert!(silent_peer(&default, pid).is_none(), "{default:?}");
    the_other_faces_name_the_silent_peers(&pair.a, pid, clients);
}

/// `check`, the text report and the Prometheus text, while the server of
/// [`clients_that_vanish_before_sending_leave_the_server_silent_peers`] holds its connections.
fn the_other_faces_name_the_silent_peers(ns: &Netns, pid: u32, clients: usize) {
    let after = ["--silent-peer-after", "2s"];
    let mut args = vec!["check"];
    args.extend(after);
    let check = ns.sockscope(&args);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "a warning: {text}");
    assert!(text.contains("silent-peer"), "{text}");
    assert!(text.contains(&format!("'silent_peer'={clients}")), "{text}");

    let mut args = vec!["report"];
    args.extend(after);
    let report = stdout_of("sockscope report", &ns.sockscope(&args));
    assert!(report.contains("silent-peer"), "{report}");
    assert!(report.contains(&format!("(pid {pid})")), "{report}");

    let mut args = vec!["report", "--format", "prometheus"];
    args.extend(after);
    let metrics = stdout_of("sockscope report --format prometheus", &ns.sockscope(&args));
    let line = |prefix: &str, label: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(label))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        line("sockscope_connections_in_trouble{", "kind=\"silent_peer\""),
        Some(clients.to_string()),
        "{metrics}"
    );
    assert_eq!(
        line("sockscope_findings{", "id=\"silent-peer\""),
        Some("1".to_owned()),
        "{metrics}"
    );
}

/// Issue #25: clients that sent a request and idle (the server with keepalive on, or not),
/// clients that stay silent with the server's keepalive on, and a server-speaks-first
/// exchange the clients answered raise nothing.
#[test]
fn peers_that_spoke_or_are_kept_alive_are_not_silent() {
    let test = "peers_that_spoke_or_are_kept_alive_are_not_silent";
    let Some(pair) = pair_or_skip(test) else {
        return;
    };
    for (port, how, keepalive, greet) in [
        ("5021", "request", true, false),
        ("5022", "request", false, false),
        ("5023", "stay", true, false),
        ("5024", "answer", false, true),
    ] {
        let (server, clients) = pair.silent_scene(port, how, 3, (keepalive, greet));
        std::thread::sleep(Duration::from_millis(2500));
        let report = pair.silent_report();
        let loud: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .collect();
        assert!(
            loud.is_empty(),
            "{how} (keepalive {keepalive}, greeting {greet}) raised {loud:#?}"
        );
        assert_eq!(connections(&report, &pair.a)["silent_peer"], 0, "{how}");
        drop(clients);
        drop(server);
    }
}
