//! diagnosis: record and replay. A recording made inside a namespace gives, replayed outside
//! it and without privileges, the findings a live report gives inside; a missing or corrupt
//! recording is one line naming what is wrong, and an unfinished last line (a recorder
//! killed mid-write) costs only that snapshot.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use crate::util::netns::netns_or_skip;
use crate::util::report::{self, Report};
use crate::util::scratch::{Scratch, as_str};
use crate::util::{looks_like_panic, sockscope, sockscope_unprivileged, stdout_of};

#[test]
fn replay_outside_the_namespace_gives_the_live_findings() {
    let test = "replay_outside_the_namespace_gives_the_live_findings";
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    let scratch = Scratch::new("replay-live");
    let sock = scratch.path("app.sock");
    // Incidents whose findings hold still between two windows: no client left in SYN_SENT
    // (so no drops that come and go with retransmissions) and a leak that does not grow.
    ns.lab(&[
        "noaccept",
        "--addr",
        "127.0.0.1:5000",
        "--backlog",
        "8",
        "--clients",
        "9",
        "--abandon",
        "3",
    ]);
    ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    ns.lab(&["unix-noaccept", "--path", as_str(&sock)]);
    ns.lab(&["fds", "--limit", "256", "--open", "249"]);

    let recording = scratch.path("incident.ndjson");
    let recorded = ns.sockscope(&[
        "record",
        "--output",
        as_str(&recording),
        "--count",
        "2",
        "--interval",
        "1s",
    ]);
    stdout_of("sockscope record --count 2", &recorded);
    let live = ns.report_with(&["--samples", "2", "--interval", "1s"]);
    std::fs::set_permissions(&recording, Permissions::from_mode(0o644))
        .expect("making the recording readable");

    let replay = ["report", "--replay", as_str(&recording), "--json"];
    let Some(replayed) = sockscope_unprivileged(test, &replay) else {
        return;
    };
    let replayed = report::parse(&stdout_of("sockscope report --replay", &replayed));
    assert_eq!(replayed.sampling.samples, 2);
    assert_eq!(replayed.sampling.interval_ms, 1000);

    let ids: Vec<String> = live.finding_keys().into_iter().map(|(id, ..)| id).collect();
    for id in [
        "abandoned-in-accept-queue",
        "accept-queue-full",
        "close-wait-leak",
        "ephemeral-port-collision",
        "fd-exhaustion",
    ] {
        assert!(
            ids.iter().any(|i| i == id),
            "the live report lacks {id}, so the comparison proves little: {:#?}",
            live.findings
        );
    }
    assert_eq!(
        replayed.finding_keys(),
        live.finding_keys(),
        "replayed (left) vs live (right)"
    );
}

/// A recording of real scenarios (see its folder's README), split into its lines.
fn fixture_lines() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/recordings/incidents.ndjson"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "a header and two snapshots");
    lines
}

fn replay(file: &str) -> Output {
    sockscope(&["report", "--replay", file, "--json"])
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1, nothing on stdout, and one line on stderr holding every one of `names`.
fn assert_one_line_failure(out: &Output, names: &[&str]) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
    assert!(!looks_like_panic(&stderr), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    for name in names {
        assert!(
            stderr.contains(name),
            "stderr should name {name:?}: {stderr:?}"
        );
    }
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn missing_recording_is_one_line_naming_the_file() {
    let scratch = Scratch::new("replay-missing");
    let missing = scratch.path("never-recorded.ndjson");
    assert_one_line_failure(&replay(as_str(&missing)), &[as_str(&missing)]);
}

#[test]
fn corrupt_line_in_the_middle_is_one_line_naming_its_number() {
    let scratch = Scratch::new("replay-corrupt");
    let lines = fixture_lines();
    // Header, snapshot, a complete line that is no snapshot, snapshot.
    let text = format!(
        "{}\n{}\n{{\"wall_time_ms\": \"soon\"}}\n{}\n",
        lines[0], lines[1], lines[2]
    );
    let file = scratch.write("corrupt.ndjson", &text);
    assert_one_line_failure(&replay(as_str(&file)), &["line 3", as_str(&file)]);
}

#[test]
fn unfinished_last_line_is_a_warning_and_the_rest_is_reported() {
    let scratch = Scratch::new("replay-unfinished");
    let lines = fixture_lines();
    let whole = scratch.write("whole.ndjson", &format!("{}\n{}\n", lines[0], lines[1]));
    // The second snapshot cut in the middle, as a recorder killed while writing leaves it.
    let cut = &lines[2][..lines[2].len() / 2];
    let text = format!("{}\n{}\n{cut}", lines[0], lines[1]);
    let file = scratch.write("unfinished.ndjson", &text);

    let out = replay(as_str(&file));
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "exit status; stderr: {stderr}");
    assert!(!looks_like_panic(&stderr), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one warning line: {stderr:?}");
    assert!(
        stderr.contains("warning") && stderr.contains("line 3"),
        "the warning should say it is one and name line 3: {stderr:?}"
    );
    let report: Report = report::parse(&stdout_of("report --replay (unfinished)", &out));
    assert_eq!(report.sampling.samples, 1, "the one complete snapshot");
    let expected = report::parse(&stdout_of(
        "report --replay (whole)",
        &replay(as_str(&whole)),
    ));
    assert!(
        !expected.findings.is_empty(),
        "the first snapshot holds incidents"
    );
    assert_eq!(report.finding_keys(), expected.finding_keys());
}
