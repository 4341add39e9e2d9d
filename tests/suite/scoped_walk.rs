//! One namespace's report walks the descriptors of that namespace's processes only.
//!
//! Issue #16, "scoped walks": a report of a quiet namespace must not be slowed by a
//! neighbour holding 100,000 sockets, so the processes of namespaces not scanned are not
//! walked and not listed; a socket of the scanned namespace held from elsewhere (a process
//! that made it and then called `setns`, or was passed it) is still given its owner, by one
//! walk of the other namespaces' processes that the notes tell of.
//!
//! These tests need root, two namespaces and the system's Python; without them they fail
//! with the reason (unless `SOCKSCOPE_ALLOW_SKIP=1`).

use serde_json::Value;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::python;
use crate::util::report::{self, Report};
use crate::util::scratch::{Scratch, as_str};
use crate::util::{sockscope, stdout_of};

/// Two namespaces, with Python; or `None` after the one helper said why not.
fn two_or_skip(test: &str) -> Option<(Netns, Netns)> {
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return None;
    }
    Some((netns_or_skip(test)?, netns_or_skip(test)?))
}

/// `sockscope report --json --samples 1 --netns PATH`, run from the test's own namespace.
fn report_of(ns: &Netns) -> Report {
    let path = ns.path();
    let args = ["report", "--json", "--samples", "1", "--netns", &path];
    report::parse(&stdout_of("sockscope report --netns", &sockscope(&args)))
}

fn port(p: &python::Program) -> String {
    format!("127.0.0.1:{}", p.ready["port"])
}

#[test]
fn a_listener_held_from_another_namespace_names_its_owner_and_says_where_it_was_found() {
    let test = "a_listener_held_from_another_namespace_names_its_owner_and_says_where_it_was_found";
    let Some((a, b)) = two_or_skip(test) else {
        return;
    };
    let home = python::run_in(&a, python::LISTEN_THEN_MOVE, &["-"]);
    let moved = python::run_in(&a, python::LISTEN_THEN_MOVE, &[&b.path()]);

    let report = report_of(&a);
    let owners = |local: &str| -> Vec<(u32, String)> {
        let l = report.only_netns().listener("tcp", local);
        l.owners.iter().map(|o| (o.pid, o.comm.clone())).collect()
    };
    assert_eq!(
        owners(&port(&moved)),
        [(moved.pid(), "python3".to_owned())],
        "the owner living in the other namespace: {:?}",
        report.privileges.notes
    );
    assert_eq!(owners(&port(&home)), [(home.pid(), "python3".to_owned())]);
    let note = report
        .privileges
        .notes
        .iter()
        .find(|n| n.contains("processes of other namespaces"))
        .unwrap_or_else(|| {
            panic!(
                "no note of the look elsewhere: {:?}",
                report.privileges.notes
            )
        });
    assert!(
        note.starts_with("1 socket had no owner") && note.contains("found the owners of 1 "),
        "{note}"
    );
    let listed: Vec<u32> = report
        .only_netns()
        .processes
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(
        listed.contains(&moved.pid()) && listed.contains(&home.pid()),
        "both owners are listed: {listed:?}"
    );
}

#[test]
fn a_one_namespace_report_lists_only_the_processes_of_that_namespace() {
    let test = "a_one_namespace_report_lists_only_the_processes_of_that_namespace";
    let Some((a, b)) = two_or_skip(test) else {
        return;
    };
    let home = python::run_in(&a, python::LISTEN_THEN_MOVE, &["-"]);
    // A neighbour with a listener of its own: not walked, not listed.
    let neighbour = python::run_in(&b, python::LISTEN_THEN_MOVE, &["-"]);

    let report = report_of(&a);
    let l = report.only_netns().listener("tcp", &port(&home));
    assert_eq!(
        l.owners.iter().map(|o| o.pid).collect::<Vec<_>>(),
        [home.pid()]
    );
    assert!(
        !report
            .privileges
            .notes
            .iter()
            .any(|n| n.contains("processes of other namespaces")),
        "every socket had its owner in the namespace: {:?}",
        report.privileges.notes
    );

    // The snapshot itself, recorded: every process in it lives in the namespace (or its
    // namespace could not be read, as for a process exiting).
    let scratch = Scratch::new(test);
    let recording = scratch.path("a.ndjson");
    let path = a.path();
    let args = [
        "record",
        "--output",
        as_str(&recording),
        "--count",
        "1",
        "--netns",
        &path,
    ];
    stdout_of("sockscope record --netns", &sockscope(&args));
    let recorded = std::fs::read_to_string(&recording).expect("the recording");
    let snapshot: Value = recorded
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v.get("processes").is_some())
        .unwrap_or_else(|| panic!("no snapshot in the recording:\n{recorded}"));
    let processes = snapshot["processes"].as_array().expect("processes");
    let pids: Vec<u64> = processes.iter().filter_map(|p| p["pid"].as_u64()).collect();
    assert!(pids.contains(&u64::from(home.pid())), "{pids:?}");
    for p in [neighbour.pid(), std::process::id()] {
        assert!(
            !pids.contains(&u64::from(p)),
            "pid {p} of another namespace: {pids:?}"
        );
    }
    let ours = Value::from(a.id());
    let strays: Vec<&Value> = processes
        .iter()
        .filter(|p| !p["netns"].is_null() && p["netns"] != ours)
        .collect();
    assert!(
        strays.is_empty(),
        "processes of other namespaces: {strays:?}"
    );
    let not_walked = snapshot["process_scan"]["not_walked"].as_u64();
    assert!(
        not_walked.is_some_and(|n| n > 0),
        "{}",
        snapshot["process_scan"]
    );
}
