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
use super::signals::{shell_in, start_top};
use super::top::tmux_or_skip;
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

/// Counts the churn may move, as (ss before, sockscope, ss after), when outside the envelope.
type Strays = BTreeMap<&'static str, (u64, u64, u64)>;

/// One JSON report between two `ss -tan`: its counts within their envelope, the steady parts
/// exact. Returns whether it noted processes that exited while they were read.
fn report_round(ns: &Netns, leaky: u32, strays: &mut Strays) -> bool {
    let ss_states = || parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
    let before = ss_states();
    let stdout = run_ok(ns, &["report", "--json", "--samples", "1"], &[0]);
    let after = ss_states();
    let report: Report = serde_json::from_str(&stdout).expect("a report under churn");
    let netns = report.only_netns();
    for state in TCP_STATES {
        let ours = netns.tcp_states[state];
        let (b, a) = (before[state], after[state]);
        if !in_envelope(ours, b, a) {
            strays.insert(state, (b, ours, a));
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
    report
        .privileges
        .notes
        .iter()
        .any(|n| n.contains("exited while they were being read"))
}

/// A few scrapes, each from a collection that sees other processes: all answered, the
/// steady leak in each.
fn scrape_round(serve: &Serve, leaky: u32) {
    let pid = leaky.to_string();
    let labels = [("pid", pid.as_str()), ("comm", "leaky")];
    for _ in 0..5 {
        let reply = serve.get("/metrics");
        assert_eq!(reply.status, 200, "a scrape under churn: {}", reply.body);
        let samples = parse_exposition(&reply.body);
        assert_eq!(
            value_of(&samples, "sockscope_process_close_wait", &labels),
            Some(LEAKED.to_string().as_str()),
            "the steady leak in the exposition under churn"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let leaky = ns
        .lab(&["leak", "--count", &LEAKED.to_string()])
        .pid("leaky");
    let churner = ns
        .lab(&[
            "churn",
            "--rate",
            &CHURN_RATE.to_string(),
            "--forks",
            "20",
            "--duration",
            &CHURN_S.to_string(),
        ])
        .pid("churner");
    let Some(serve) = Serve::start(&ns, test, &["--interval", "200ms"]) else {
        return;
    };
    let term = shell_in(&ns);
    let top = start_top(&term);

    let started = Instant::now();
    let (mut rounds, mut partial_notes) = (0, 0);
    let mut strays = Strays::new();
    while rounds < ROUNDS && started.elapsed() < ROUNDS_WITHIN {
        assert!(alive(churner), "the churn stopped before the test did");
        partial_notes += usize::from(report_round(&ns, leaky, &mut strays));
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
        scrape_round(&serve, leaky);
        assert!(
            alive(top) && term.screen().contains("Findings:"),
            "the dashboard went away under churn:\n{}",
            term.screen()
        );
        rounds += 1;
    }
    assert!(
        strays.is_empty(),
        "counts outside ss's before/after envelope (± {SLACK}), as (ss before, sockscope, ss \
         after): {strays:?}"
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
