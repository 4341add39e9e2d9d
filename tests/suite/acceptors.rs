//! Who drains a full listener (issue 24): its acceptors — threads in accept(), processes
//! whose epoll set watches it, holders that do neither — and what each is doing, on real
//! nginx and redis-server and on small programs for the states they will not hold still;
//! and the `SO_REUSEPORT` group whose stopped member starves its share of the clients.

use std::time::Duration;

use serde_json::Value;

use crate::util::netns::netns_or_skip;
use crate::util::python;
use crate::util::report::{Finding, Report};
use crate::util::servers::{self, Listen, Nginx, stop, tools_or_skip};

/// A listener on port 7001 (backlog 4) with six connections of its own queued, whose main
/// thread then spins on a CPU instead of accepting; a second thread waits for stdin to close.
/// The spinning thread runs at nice -20, in a session (and so a scheduler autogroup) of its
/// own at nice -20 too, so that it gets its CPU on a busy test machine: the test asserts that
/// it uses most of one.
const SPINNER: &str = r#"
import json, os, socket, sys, threading
l = socket.socket()
l.bind(("127.0.0.1", 7001))
l.listen(4)
clients = []
for _ in range(6):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", 7001))
    clients.append(c)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
os.setsid()
try:
    with open("/proc/self/autogroup", "w") as group:
        group.write("-20")
except OSError:
    pass
os.setpriority(os.PRIO_PROCESS, 0, -20)
n = 0
while True:
    n += 1
"#;

/// Two listeners: 7002 (backlog 2), with four connections queued and never accepted, and
/// 7003, on which a thread named `acceptor` blocks in accept(); the main thread waits for
/// stdin to close.
const OTHER_LISTENER: &str = r#"
import ctypes, json, os, socket, sys, threading
full = socket.socket()
full.bind(("127.0.0.1", 7002))
full.listen(2)
other = socket.socket()
other.bind(("127.0.0.1", 7003))
other.listen(8)
def accept_other():
    ctypes.CDLL(None).prctl(15, b"acceptor", 0, 0, 0)
    other.accept()
threading.Thread(target=accept_other, daemon=True).start()
clients = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", 7002))
    clients.append(c)
print(json.dumps({"pid": os.getpid(), "tid": threading.get_native_id()}), flush=True)
sys.stdin.read()
"#;

/// The findings with `id` whose target is the TCP listener `local` (with `inode`, if given).
fn about<'r>(report: &'r Report, id: &str, local: &str, inode: Option<u64>) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .filter(|f| {
            f.id == id
                && f.target.kind == "listener"
                && f.target.local.as_deref() == Some(local)
                && inode.is_none_or(|i| f.target.inode == Some(i))
        })
        .collect()
}

/// A finding's acceptors: (pid, how, state) of each.
fn acceptors(f: &Finding) -> Vec<(u64, String, String)> {
    f.evidence
        .get("acceptors")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{} has acceptors: {f:#?}", f.id))
        .iter()
        .map(|a| {
            (
                a["pid"].as_u64().expect("a pid"),
                a["how"].as_str().expect("how").to_owned(),
                a["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn acceptor_entry(f: &Finding, pid: u32) -> &Value {
    f.evidence["acceptors"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["pid"] == u64::from(pid)))
        .unwrap_or_else(|| panic!("pid {pid} among the acceptors: {f:#?}"))
}

#[test]
fn nginx_reuseport_with_one_worker_stopped_starves_its_member() {
    let test = "nginx_reuseport_with_one_worker_stopped_starves_its_member";
    if !tools_or_skip(test, &["nginx"]) || !python::available() {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let local = "127.0.0.1:8081";
    let listen = Listen {
        reuseport: true,
        ..Listen::page(local, 16)
    };
    let nginx = Nginx::start(&ns, test, 2, &[listen], "");
    let stopped = nginx.workers[0];
    stop(stopped);
    let _clients = python::run_in(&ns, python::CONNECTS, &["127.0.0.1", "8081", "60"]);

    let report = ns.report_until(&["--samples", "1"], "reuseport-imbalance", |r| {
        !about(r, "reuseport-imbalance", local, None).is_empty()
    });
    let imbalance = about(&report, "reuseport-imbalance", local, None)[0];
    let inode = imbalance
        .target
        .inode
        .expect("a listener target has an inode");
    assert!(
        acceptors(imbalance).contains(&(u64::from(stopped), "epoll".into(), "stopped".into())),
        "the stopped worker {stopped} drains the starved member: {imbalance:#?}"
    );
    assert!(
        imbalance.summary.contains("1/2 of new connections"),
        "{imbalance:#?}"
    );
    assert!(
        imbalance.remedy.contains(&format!("kill -CONT {stopped}")),
        "{imbalance:#?}"
    );
    assert_eq!(
        imbalance.evidence["members"].as_array().map(Vec::len),
        Some(2)
    );

    // The same member's accept-queue-full: the worker drains it by epoll, the master holds it.
    let full = about(&report, "accept-queue-full", local, Some(inode));
    let full = full.first().unwrap_or_else(|| {
        panic!(
            "accept-queue-full about member {inode}: {:#?}",
            report.findings
        )
    });
    let worker = acceptor_entry(full, stopped);
    assert_eq!(
        (&worker["how"], &worker["state"]),
        (&"epoll".into(), &"stopped".into())
    );
    let master = acceptor_entry(full, nginx.master());
    assert_eq!(master["how"], "holds", "{full:#?}");
    assert!(
        !full
            .remedy
            .contains(&format!("kill -CONT {}", nginx.master())),
        "the master is not blamed: {full:#?}"
    );

    // Both members in the listeners, numbered; the other has room.
    let members: Vec<_> = report
        .only_netns()
        .listeners
        .iter()
        .filter(|l| l.local == local)
        .collect();
    assert_eq!(members.len(), 2, "{members:#?}");
    let other = members
        .iter()
        .find(|l| l.inode != inode)
        .expect("the other member");
    assert!(
        !other.full && other.accept_queue < other.backlog,
        "{other:#?}"
    );
    let mut numbers: Vec<(u64, u64)> = members
        .iter()
        .filter_map(|l| l.reuseport.as_ref().map(|m| (m.member, m.members)))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [(1, 2), (2, 2)], "{members:#?}");
}

#[test]
fn nginx_shared_listener_both_workers_stopped_blames_the_workers() {
    let test = "nginx_shared_listener_both_workers_stopped_blames_the_workers";
    if !tools_or_skip(test, &["nginx"]) || !python::available() {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let local = "127.0.0.1:8082";
    let nginx = Nginx::start(&ns, test, 2, &[Listen::page(local, 16)], "");
    for &worker in &nginx.workers {
        stop(worker);
    }
    let _clients = python::run_in(&ns, python::CONNECTS, &["127.0.0.1", "8082", "60"]);

    let report = ns.report_until(&["--samples", "1"], "accept-queue-full", |r| {
        !about(r, "accept-queue-full", local, None).is_empty()
    });
    let full = about(&report, "accept-queue-full", local, None)[0];
    let mut serving: Vec<(u64, String, String)> = acceptors(full)
        .into_iter()
        .filter(|(_, how, _)| how != "holds")
        .collect();
    serving.sort();
    let expected: Vec<(u64, String, String)> = nginx
        .workers
        .iter()
        .map(|&w| (u64::from(w), "epoll".into(), "stopped".into()))
        .collect();
    assert_eq!(serving, expected, "{full:#?}");
    assert_eq!(acceptor_entry(full, nginx.master())["how"], "holds");
    let kill = format!(
        "kill -CONT {}",
        nginx
            .workers
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(full.remedy.contains(&kill), "{kill}: {full:#?}");
    assert!(
        !full.remedy.contains(&format!("pid {})", nginx.master())),
        "the master is not blamed: {full:#?}"
    );
}

#[test]
fn redis_in_debug_sleep_sleeps_elsewhere_than_epoll() {
    let test = "redis_in_debug_sleep_sleeps_elsewhere_than_epoll";
    if !tools_or_skip(test, &["redis-server", "redis-cli"]) || !python::available() {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let redis = servers::redis(&ns, test, 6380, 16);
    let _sleep = servers::client(
        &ns,
        test,
        "redis-cli",
        "redis-cli",
        &["-p", "6380", "DEBUG", "SLEEP", "30"],
    );
    // The sleep has begun once redis no longer answers.
    std::thread::sleep(Duration::from_millis(500));
    let _clients = python::run_in(&ns, python::CONNECTS, &["127.0.0.1", "6380", "40"]);

    let local = "127.0.0.1:6380";
    let report = ns.report_until(&["--samples", "1"], "accept-queue-full", |r| {
        !about(r, "accept-queue-full", local, None).is_empty()
    });
    let full = about(&report, "accept-queue-full", local, None)[0];
    let a = acceptor_entry(full, redis.pid());
    assert_eq!(a["how"], "epoll", "{full:#?}");
    assert_eq!(a["state"], "sleeping", "{full:#?}");
    assert_eq!(a["comm"], "redis-server", "{full:#?}");
    let place = a["waiting_in"]
        .as_str()
        .unwrap_or_else(|| panic!("{full:#?}"));
    assert!(!place.contains("epoll"), "{place}: {full:#?}");
    assert!(
        full.remedy.contains("does not wait for connections") && full.remedy.contains(place),
        "{full:#?}"
    );
}

#[test]
fn a_program_spinning_instead_of_accepting_is_running() {
    let test = "a_program_spinning_instead_of_accepting_is_running";
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "no python3");
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let spinner = python::run_in(&ns, SPINNER, &[]);
    let local = "127.0.0.1:7001";
    let report = ns.report_until(
        &["--samples", "2", "--interval", "2s"],
        "accept-queue-full",
        |r| !about(r, "accept-queue-full", local, None).is_empty(),
    );
    let full = about(&report, "accept-queue-full", local, None)[0];
    let list = full.evidence["acceptors"].as_array().expect("acceptors");
    assert_eq!(list.len(), 1, "{full:#?}");
    let a = &list[0];
    assert_eq!(a["pid"], u64::from(spinner.pid()));
    assert_eq!(
        (&a["how"], &a["state"]),
        (&"holds".into(), &"running".into()),
        "{full:#?}"
    );
    let cpu = a["cpu_pct"].as_f64().unwrap_or_else(|| panic!("{full:#?}"));
    assert!(cpu >= 80.0, "{cpu} % of a CPU: {full:#?}");
    assert!(full.remedy.contains("nobody serves it"), "{full:#?}");
}

#[test]
fn a_thread_in_accept_on_another_listener_is_not_an_acceptor() {
    let test = "a_thread_in_accept_on_another_listener_is_not_an_acceptor";
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "no python3");
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let program = python::run_in(&ns, OTHER_LISTENER, &[]);
    let local = "127.0.0.1:7002";
    let report = ns.report_until(&["--samples", "1"], "accept-queue-full", |r| {
        !about(r, "accept-queue-full", local, None).is_empty()
    });
    let full = about(&report, "accept-queue-full", local, None)[0];
    let list = full.evidence["acceptors"].as_array().expect("acceptors");
    assert!(
        list.iter().all(|a| a["how"] != "accept"),
        "the thread in accept() on 7003 does not drain 7002: {full:#?}"
    );
    assert!(list.iter().all(|a| a["thread"] != "acceptor"), "{full:#?}");
    assert_eq!(list[0]["pid"], u64::from(program.pid()));
    assert_eq!(list[0]["how"], "holds");
    assert!(full.remedy.contains("nobody serves it"), "{full:#?}");
}
