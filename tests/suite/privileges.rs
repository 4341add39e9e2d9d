//! Without root: every face still runs, counts every socket, and says what it could not see.
//!
//! sockscope is run as `nobody` (`setpriv --reuid 65534 --regid 65534 --clear-groups`)
//! beside a leak owned by root. sock_diag answers any user, so the socket counts are whole;
//! /proc/PID/fd of another user's process is closed to it, so that process's sockets go
//! unattributed, and the report must say so.

use std::path::Path;
use std::process::Output;

use sockscope::testing::skip_or_fail;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::report::Report;
use crate::util::{cannot_run_as_nobody, sockscope_bin};

const NOBODY: &str = "65534";

/// `setpriv` prefix that runs a command as nobody with no supplementary groups.
fn as_nobody(ns: &Netns, args: &[&str]) -> Output {
    ns.command("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(sockscope_bin())
        .args(args)
        .output()
        .expect("running setpriv")
}

/// Whether this test can drop to another user at all; where it cannot, the test fails with
/// the reason (or, with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns false).
fn can_drop_privileges(test: &str) -> bool {
    match cannot_run_as_nobody() {
        None => true,
        Some(reason) => {
            skip_or_fail(test, &format!("cannot run sockscope as nobody: {reason}"));
            false
        }
    }
}

fn stdout_and_quiet(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} as nobody failed ({}): {stderr}",
        out.status
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

#[test]
fn unprivileged_report_counts_every_socket_and_names_its_limits() {
    let test = "unprivileged_report_counts_every_socket_and_names_its_limits";
    if !can_drop_privileges(test) {
        return;
    }
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    let leak = ns.lab(&["leak", "--count", "60"]);
    let leaky = leak.pid("leaky");

    let out = as_nobody(&ns, &["report", "--json", "--samples", "1"]);
    let stdout = stdout_and_quiet("report --json", &out);
    let report: Report = serde_json::from_str(&stdout).expect("the report parses");
    assert!(!report.privileges.full_process_view);
    assert!(
        report
            .privileges
            .notes
            .iter()
            .any(|n| n.contains("permission denied") && n.contains("run as root")),
        "a note names the limit and the way out: {:?}",
        report.privileges.notes
    );
    let netns = report.only_netns();
    assert_eq!(netns.tcp_states["CLOSE_WAIT"], 60, "{:?}", netns.tcp_states);
    assert_eq!(netns.tcp_states["FIN_WAIT2"], 60, "{:?}", netns.tcp_states);
    assert_eq!(netns.tcp_states["LISTEN"], 1, "{:?}", netns.tcp_states);
    assert!(
        netns.processes.iter().all(|p| p.pid != leaky),
        "root's leaky cannot be attributed by nobody: {:?}",
        netns.processes
    );
    let leak_listener = netns.listener("tcp", "127.0.0.1:5001");
    assert!(leak_listener.owners.is_empty(), "{leak_listener:?}");

    // The text report states the limit too, and the check still speaks the protocol.
    let readable = stdout_and_quiet("report", &as_nobody(&ns, &["report", "--samples", "1"]));
    assert!(readable.contains("run as root"), "{readable}");
    let check = as_nobody(&ns, &["check", "--samples", "1"]);
    let line = String::from_utf8_lossy(&check.stdout);
    assert!(
        matches!(check.status.code(), Some(0..=2)) && line.starts_with("SOCKSCOPE "),
        "check as nobody: {} {line}",
        check.status
    );
}

#[test]
fn unprivileged_record_and_replay() {
    let test = "unprivileged_record_and_replay";
    if !can_drop_privileges(test) {
        return;
    }
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    ns.lab(&["leak", "--count", "10"]);
    // A directory nobody may write in, and only there.
    let dir = std::env::temp_dir().join(format!("sockscope-test-{}-nobody", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = RemoveDir(&dir);
    std::process::Command::new("chown")
        .args([
            &format!("{NOBODY}:{NOBODY}"),
            dir.to_str().expect("utf-8 path"),
        ])
        .status()
        .expect("chown")
        .success()
        .then_some(())
        .expect("chown the temp dir to nobody");
    let file = dir.join("rec.ndjson");
    let file = file.to_str().expect("utf-8 path");
    stdout_and_quiet(
        "record",
        &as_nobody(
            &ns,
            &[
                "record",
                "--output",
                file,
                "--count",
                "2",
                "--interval",
                "100ms",
            ],
        ),
    );
    let stdout = stdout_and_quiet(
        "report --replay",
        &as_nobody(&ns, &["report", "--json", "--replay", file]),
    );
    let report: Report = serde_json::from_str(&stdout).expect("the replayed report parses");
    assert_eq!(report.only_netns().tcp_states["CLOSE_WAIT"], 10);
    assert!(!report.privileges.full_process_view);
}

struct RemoveDir<'a>(&'a Path);

impl Drop for RemoveDir<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}
