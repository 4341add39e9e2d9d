//! diagnosis: findings in real namespaces. Each incident the lab builds gets the finding the
//! design promises from `report --json --samples 2 --interval 1s`, with a subject that names
//! what to act on (the listener, the process and its pid) and evidence that holds the numbers.
//!
//! (A healthy namespace staying quiet is `listeners::healthy_namespace_raises_no_warning`.)

use std::time::Duration;

use serde_json::Value;

use crate::util::names_pid;
use crate::util::netns::{Netns, netns_or_skip};
use crate::util::report::{Finding, Report};
use crate::util::scratch::{Scratch, as_str};

/// Two samples a second apart: what rates and growth need.
const SAMPLED: [&str; 4] = ["--samples", "2", "--interval", "1s"];
const FULL: &str = "127.0.0.1:5000";
const LEAKY: &str = "127.0.0.1:5001";

fn sampled(ns: &Netns) -> Report {
    ns.report_with(&SAMPLED)
}

fn rate_rose(rate: Option<f64>) -> bool {
    rate.is_some_and(|r| r > 0.0)
}

fn evidence<'a>(f: &'a Finding, key: &str) -> &'a Value {
    f.evidence
        .get(key)
        .unwrap_or_else(|| panic!("{} has no evidence {key:?}: {:?}", f.id, f.evidence))
}

/// Every finding says what it saw and what to do about it, to the process that can do it.
fn assert_actionable(f: &Finding, comm: &str, pid: u32) {
    assert!(
        !f.summary.trim().is_empty(),
        "{} has no summary: {f:?}",
        f.id
    );
    assert!(
        f.remedy.contains(comm) && names_pid(&f.remedy, pid),
        "{} remedy should address {comm} (pid {pid}): {:?}",
        f.id,
        f.remedy
    );
}

/// The listener's subject names its address, its owner's name and the owner's pid.
fn assert_names_listener(f: &Finding, local: &str, comm: &str, pid: u32) {
    assert!(
        f.subject.contains(local) && f.subject.contains(comm) && names_pid(&f.subject, pid),
        "{} subject {:?} should name {local}, {comm} and pid {pid}",
        f.id,
        f.subject
    );
}

#[test]
fn full_listener_that_keeps_dropping_is_critical_and_its_drops_are_named() {
    let Some(mut ns) =
        netns_or_skip("full_listener_that_keeps_dropping_is_critical_and_its_drops_are_named")
    else {
        return;
    };
    let ready = ns.lab(&[
        "noaccept",
        "--addr",
        FULL,
        "--backlog",
        "8",
        "--clients",
        "30",
    ]);
    let pid = ready.pid("noaccept");
    // The 21 clients past backlog + 1 retransmit their SYNs with exponential backoff (1 s,
    // 3 s, 7 s, 15 s, 31 s after the first), so not every one-second window holds a drop.
    // Take reports until one window saw both the namespace's counter and the listener's own
    // rise; from that report on, both findings are owed.
    let report = crate::util::poll(
        "a report whose window saw 127.0.0.1:5000 drop SYNs",
        Duration::from_secs(50),
        || {
            let report = sampled(&ns);
            let netns = report.only_netns();
            let rose = rate_rose(netns.counter("ListenOverflows").rate_per_s)
                && rate_rose(netns.listener("tcp", FULL).drops.rate_per_s);
            rose.then_some(report)
        },
    );

    let full = report.the_finding("accept-queue-full");
    assert_eq!(full.severity, "critical", "{full:?}");
    assert_names_listener(full, FULL, "noaccept", pid);
    assert_actionable(full, "noaccept", pid);
    assert_eq!(*evidence(full, "accept_queue"), 9, "{full:?}");
    assert_eq!(*evidence(full, "backlog"), 8, "{full:?}");
    assert_eq!(
        (full.target.kind.as_str(), full.target.proto.as_deref()),
        ("listener", Some("tcp")),
        "{full:?}"
    );
    assert_eq!(full.target.local.as_deref(), Some(FULL), "{full:?}");

    let drops = report.the_finding("listen-drops");
    assert_names_listener(drops, FULL, "noaccept", pid);
    let named: Vec<Option<&str>> = evidence(drops, "listeners")
        .as_array()
        .unwrap_or_else(|| panic!("listeners is not a list: {drops:?}"))
        .iter()
        .map(|l| l["local"].as_str())
        .collect();
    assert_eq!(named, [Some(FULL)], "the dropping listeners in {drops:?}");
    // Critical from 10 drops per second (the default), a warning below.
    let rate = report
        .only_netns()
        .counter("ListenDrops")
        .rate_per_s
        .expect("ListenDrops rate with two samples");
    let expected = if rate >= 10.0 { "critical" } else { "warning" };
    assert_eq!(drops.severity, expected, "ListenDrops {rate}/s: {drops:?}");
}

#[test]
fn clients_that_gave_up_in_the_queue_are_named_with_the_listener() {
    let Some(mut ns) =
        netns_or_skip("clients_that_gave_up_in_the_queue_are_named_with_the_listener")
    else {
        return;
    };
    let ready = ns.lab(&[
        "noaccept",
        "--addr",
        FULL,
        "--backlog",
        "8",
        "--clients",
        "30",
        "--abandon",
        "3",
    ]);
    let pid = ready.pid("noaccept");
    let report = sampled(&ns);
    let abandoned = report.the_finding("abandoned-in-accept-queue");
    assert_eq!(abandoned.severity, "warning", "{abandoned:?}");
    assert_names_listener(abandoned, FULL, "noaccept", pid);
    assert_actionable(abandoned, "noaccept", pid);
    assert_eq!(
        *evidence(abandoned, "unaccepted_close_wait"),
        3,
        "{abandoned:?}"
    );
    assert_eq!(
        evidence(abandoned, "unaccepted_established"),
        9 - 3,
        "{abandoned:?}"
    );
    // They still hold their places: the queue is as full as before.
    let full = report.the_finding("accept-queue-full");
    assert_names_listener(full, FULL, "noaccept", pid);
}

#[test]
fn loopback_close_wait_leak_names_the_process_and_the_mined_ports() {
    let Some(mut ns) =
        netns_or_skip("loopback_close_wait_leak_names_the_process_and_the_mined_ports")
    else {
        return;
    };
    let ready = ns.lab(&["leak", "--addr", LEAKY, "--count", "200"]);
    let pid = ready.pid("leaky");
    let subject = format!("process leaky (pid {pid})");
    let report = sampled(&ns);

    let leak = report.the_finding("close-wait-leak");
    assert_eq!(leak.subject, subject, "{leak:?}");
    assert_actionable(leak, "leaky", pid);
    // 200 is past the warning (50), short of the critical (500), and it did not grow.
    assert_eq!(leak.severity, "warning", "{leak:?}");
    assert_eq!(*evidence(leak, "close_wait"), 200, "{leak:?}");
    assert_eq!(*evidence(leak, "pid"), pid, "{leak:?}");
    assert_eq!(
        (
            leak.target.kind.as_str(),
            leak.target.pid,
            leak.target.comm.as_deref()
        ),
        ("process", Some(pid), Some("leaky")),
        "{leak:?}"
    );

    let collision = report.the_finding("ephemeral-port-collision");
    assert_eq!(collision.subject, subject, "{collision:?}");
    assert_eq!(*evidence(collision, "mined_ports"), 200, "{collision:?}");
    assert_eq!(*evidence(collision, "server"), LEAKY, "{collision:?}");
    assert_eq!(*evidence(collision, "client"), "127.0.0.1", "{collision:?}");
    let t = &collision.target;
    assert_eq!(
        (
            t.kind.as_str(),
            t.remote.as_deref(),
            t.local.as_deref(),
            t.pid
        ),
        ("destination", Some(LEAKY), Some("127.0.0.1"), Some(pid)),
        "{collision:?}"
    );
    // 200 ports of the default 28,232-port range is 0.7 %, under the 5 % critical.
    assert_eq!(collision.severity, "warning", "{collision:?}");
}

#[test]
fn process_at_97_percent_of_its_fd_limit_is_critical() {
    let Some(mut ns) = netns_or_skip("process_at_97_percent_of_its_fd_limit_is_critical") else {
        return;
    };
    let ready = ns.lab(&["fds", "--limit", "256", "--open", "249"]);
    let pid = ready.pid("fdhog");
    let report = sampled(&ns);
    let fds = report.the_finding("fd-exhaustion");
    assert_eq!(fds.severity, "critical", "249 of 256 is past 95 %: {fds:?}");
    assert_eq!(fds.subject, format!("process fdhog (pid {pid})"), "{fds:?}");
    assert_actionable(fds, "fdhog", pid);
    assert_eq!(*evidence(fds, "fds"), 249, "{fds:?}");
    assert_eq!(*evidence(fds, "fd_limit"), 256, "{fds:?}");
}

#[test]
fn unix_listener_that_never_accepts_is_named_by_its_path() {
    let Some(mut ns) = netns_or_skip("unix_listener_that_never_accepts_is_named_by_its_path")
    else {
        return;
    };
    let scratch = Scratch::new("diagnosis-unix");
    let path = scratch.path("app.sock");
    let path = as_str(&path);
    let ready = ns.lab(&[
        "unix-noaccept",
        "--path",
        path,
        "--backlog",
        "4",
        "--clients",
        "5",
    ]);
    let pid = ready.pid("unixnoaccept");
    let report = sampled(&ns);
    let full = report.the_finding("accept-queue-full");
    assert_eq!(full.severity, "critical", "{full:?}");
    assert_names_listener(full, path, "unixnoaccept", pid);
    assert_actionable(full, "unixnoaccept", pid);
    assert_eq!(*evidence(full, "proto"), "unix", "{full:?}");
    assert_eq!(*evidence(full, "local"), path, "{full:?}");
    assert_eq!(*evidence(full, "accept_queue"), 5, "{full:?}");
    assert_eq!(*evidence(full, "backlog"), 4, "{full:?}");
}
