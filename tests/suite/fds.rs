//! Descriptor counts and limits, against /proc/PID/fd read at the same time.

use crate::util::netns::netns_or_skip;

fn fd_count(pid: u32) -> u64 {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    u64::try_from(entries.count()).expect("count fits")
}

#[test]
fn fd_count_and_limit_of_fdhog() {
    let Some(mut ns) = netns_or_skip("fd_count_and_limit_of_fdhog") else {
        return;
    };
    let ready = ns.lab(&["fds", "--limit", "256", "--open", "240"]);
    let pid = ready.pid("fdhog");
    let before = fd_count(pid);
    let report = ns.report();
    let after = fd_count(pid);
    assert_eq!(before, after, "fdhog's descriptors moved during the test");
    assert_eq!(before, 240);

    let p = report.only_netns().process(pid);
    assert_eq!(p.comm, "fdhog");
    assert_eq!(p.fds, Some(before), "{p:?}");
    assert_eq!(p.fd_limit, Some(256), "{p:?}");
    assert!(p.unix_sockets >= 2, "fdhog holds a socket pair: {p:?}");
    // 240 of 256 is 93.75 %: past the 80 % warning, short of the 95 % critical.
    let findings = report.findings_with_id("fd-exhaustion");
    assert!(
        findings.iter().any(|f| f.severity == "warning"
            && (f.subject.contains("fdhog") || f.subject.contains(&pid.to_string()))),
        "expected a warning fd-exhaustion about fdhog: {:?}",
        report.findings
    );
}
