//! Races: sockets and processes that appear and vanish while sockscope reads them.
//!
//! `lab churn` opens and closes 2,000 loopback connections a second and forks 20 short-lived
//! processes a second, each with sockets of its own, beside a steady CLOSE_WAIT leak. Every
//! run of sockscope meanwhile must exit 0 without an internal error, report counts that lie
//! within what `ss` saw just before and just after it (give or take the connections the
//! churn makes while `ss` itself reads), and still find the steady leak exactly. Processes
//! that exit mid-scan are a note in the report, not an error. Meanwhile `serve` is scraped
//! and `top` runs in a terminal: both must keep answering, and `top` must give the terminal
//! back at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::serve::client::{Serve, parse_exposition, value_of};
use super::signals::{shell_in, start_top, tmux_or_skip};
use crate::util::netns::{Netns, netns_or_skip};
use crate::util::oracle::{TCP_STATES, parse_states};
use crate::util::report::Report;

/// The churn's own bound; the test stops it sooner, once it has what it needs.
const CHURN_S: u64 = 600;
/// Rounds of sockscope runs wanted during the churn, and how long to try for them: a loaded
/// machine can make one run take seconds.
const ROUNDS: usize = 3;
const ROUNDS_WITHIN: Duration = Duration::from_secs(120);
const CHURN_RATE: u64 = 2000;
/// How far a churning count may stray outside ss's before/after envelope: the connections
/// opened in a tenth of a second, about how long one `ss -tan` takes under this churn.
const SLACK: u64 = CHURN_RATE / 10;
const LEAKED: u64 = 50;

/// Run sockscope inside the namespace; it must exit with one of `codes` and say nothing of
/// an internal error.
fn run_ok(ns: &Netns, args: &[&str], codes: &[i32]) -> String {
    let out = ns.sockscope(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code.is_some_and(|c| codes.contains(&c)),
        "sockscope {} exited {:?} under churn; stderr:\n{stderr}",
        args.join(" "),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for text in [&*stderr, &*stdout] {
        assert!(
            !text.contains("internal error") && !text.contains("panicked"),
            "sockscope {} hit a bug under churn:\n{text}",
            args.join(" ")
        );
    }
    stdout
}

fn in_envelope(ours: u64, before: u64, after: u64) -> bool {
    let lo = before.min(after).saturating_sub(SLACK);
    let hi = before.max(after) + SLACK;
    (lo..=hi).contains(&ours)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        // A zombie has exited; only its parent has yet to notice.
        .is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.starts_with(" Z"))
        })
}

#[test]
fn every_face_holds_up_under_churn() {
    let test = "every_face_holds_up_under_churn";
    if !tmux_or_skip(test) {
        return;
    }
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    let leak = ns.lab(&["leak", "--count", &LEAKED.to_string()]);
    let leaky = leak.pid("leaky");
    let churn = ns.lab(&[
        "churn",
        "--rate",
        &CHURN_RATE.to_string(),
        "--forks",
        "20",
        "--duration",
        &CHURN_S.to_string(),
    ]);
    let churner = churn.pid("churner");
    let ss_states = |ns: &Netns| parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
    let Some(serve) = Serve::start(&ns, test, &["--interval", "200ms"]) else {
        return;
    };
    let term = shell_in(&ns);
    let top = start_top(&term);
    let leaky_pid = leaky.to_string();
    let leaky_close_wait = [("pid", leaky_pid.as_str()), ("comm", "leaky")];

    let started = Instant::now();
    let mut rounds = 0;
    let mut partial_notes = 0;
    let mut worst: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    while rounds < ROUNDS && started.elapsed() < ROUNDS_WITHIN {
        assert!(alive(churner), "the churn stopped before the test did");
        let before = ss_states(&ns);
        let stdout = run_ok(&ns, &["report", "--json", "--samples", "1"], &[0]);
        let after = ss_states(&ns);
        let report: Report = serde_json::from_str(&stdout).expect("a report under churn");
        let netns = report.only_netns();
        for state in TCP_STATES {
            let ours = netns.tcp_states[state];
            let (b, a) = (before[state], after[state]);
            if !in_envelope(ours, b, a) {
                worst.insert(state, (b, ours, a));
            }
        }
        assert_eq!(
            netns.tcp_states["LISTEN"], 3,
            "the leak's, the churn's and the exporter's listeners hold still"
        );
        let p = netns.process(leaky);
        assert_eq!(
            p.close_wait, LEAKED,
            "the steady leak, found exactly: {p:?}"
        );
        assert!(
            !report.findings_with_id("close-wait-leak").is_empty(),
            "the leak is still a finding under churn: {:?}",
            report.findings
        );
        if report
            .privileges
            .notes
            .iter()
            .any(|n| n.contains("exited while they were being read"))
        {
            partial_notes += 1;
        }
        // Rates over snapshots between which processes came and went, and the check.
        run_ok(
            &ns,
            &["report", "--samples", "2", "--interval", "200ms"],
            &[0],
        );
        run_ok(
            &ns,
            &["check", "--samples", "2", "--interval", "200ms"],
            &[0, 1, 2],
        );
        // The exporter, scraped a few times: each collection sees other processes.
        for _ in 0..5 {
            let reply = serve.get("/metrics");
            assert_eq!(reply.status, 200, "a scrape under churn: {}", reply.body);
            let samples = parse_exposition(&reply.body);
            assert_eq!(
                value_of(&samples, "sockscope_process_close_wait", &leaky_close_wait),
                Some(LEAKED.to_string().as_str()),
                "the steady leak in the exposition under churn"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            alive(top) && term.screen().contains("Findings:"),
            "the dashboard went away under churn:\n{}",
            term.screen()
        );
        rounds += 1;
    }
    assert!(
        worst.is_empty(),
        "counts outside ss's before/after envelope (± {SLACK}), as (ss before, sockscope, ss \
         after): {worst:?}"
    );
    assert!(rounds >= 1, "no round ran within {ROUNDS_WITHIN:?}");
    eprintln!(
        "churn: {rounds} rounds in {:.0?}; {partial_notes} reports noted processes that exited \
         mid-scan",
        started.elapsed()
    );
    assert!(alive(churner), "the churn went on for the whole test");
    term.key("q");
    let (screen, _) = term.wait_for("the shell after q", Duration::from_secs(30), |s| {
        s.lines().any(|l| l.trim() == "COOKED" || l.trim() == "RAW")
    });
    let lines: Vec<&str> = screen.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"EXITED 0") && lines.contains(&"COOKED"),
        "the dashboard after a churned run:\n{screen}"
    );
    assert!(alive(serve.pid()), "the exporter went away under churn");
    for (what, status) in ns.stop_labs() {
        assert!(status.success(), "{what} ended with {status}");
    }
}

#[test]
fn churn_scenario_stops_by_itself() {
    let Some(mut ns) = netns_or_skip("churn_scenario_stops_by_itself") else {
        return;
    };
    let churn = ns.lab(&["churn", "--rate", "500", "--forks", "5", "--duration", "3"]);
    let pids = [
        churn.pid("churnserver"),
        churn.pid("churner"),
        churn.pid("forker"),
    ];
    // Its stdin stays open: nothing but its own clock stops it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "the churn did not stop by itself within a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (what, status) in ns.stop_labs() {
        assert!(status.success(), "{what} ended with {status}");
    }
}
