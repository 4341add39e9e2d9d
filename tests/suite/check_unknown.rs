//! check: every failure to check is UNKNOWN. An unknown flag, a bad threshold, a missing or
//! broken config file, a missing recording: exit 3 and exactly one line on stdout,
//! `SOCKSCOPE UNKNOWN - <reason>`, never clap's usage exit 2 (which a monitoring system
//! reads as CRITICAL) and never a panic. None of these gets as far as reading the kernel,
//! so they run in the test's own namespace.

use super::check::Checked;
use crate::util::scratch::{Scratch, as_str};
use crate::util::sockscope;

/// Exit 3, one line, the reason holding every one of `names`; returns the reason.
fn assert_unknown(args: &[&str], names: &[&str]) -> String {
    let what = format!("sockscope {}", args.join(" "));
    let out = sockscope(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let c = Checked::read(&what, &out);
    assert_eq!(
        (c.code, c.status.state.as_str()),
        (3, "UNKNOWN"),
        "{what}: {stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{what}: one line: {stdout:?}");
    assert!(
        stdout.starts_with("SOCKSCOPE UNKNOWN - "),
        "{what}: {stdout:?}"
    );
    for name in names {
        assert!(
            c.status.text.contains(name),
            "{what}: the reason should name {name:?}: {stdout:?}"
        );
    }
    c.status.text
}

#[test]
fn unknown_flag_is_unknown() {
    assert_unknown(&["check", "--no-such-flag"], &["--no-such-flag"]);
    assert_unknown(&["check", "--format", "yaml"], &["yaml"]);
}

#[test]
fn an_unknown_finding_id_to_ignore_is_unknown() {
    assert_unknown(
        &["check", "--ignore", "id:typo"],
        &["\"typo\"", "accept-queue-full", "orphan-pressure"],
    );
}

#[test]
fn threshold_that_is_not_a_number_is_unknown() {
    assert_unknown(&["check", "--fd-warn", "x"], &["--fd-warn", "x"]);
}

#[test]
fn warning_above_its_critical_is_unknown() {
    assert_unknown(
        &["check", "--fd-warn", "99", "--fd-crit", "95"],
        &["fd_warn", "99", "95"],
    );
}

#[test]
fn missing_config_is_unknown_before_or_after_the_command() {
    let scratch = Scratch::new("check-missing-config");
    let missing = scratch.path("absent.toml");
    let missing = as_str(&missing);
    assert_unknown(&["check", "--config", missing], &[missing]);
    assert_unknown(&["--config", missing, "check"], &[missing]);
}

#[test]
fn config_with_a_syntax_error_is_unknown_naming_the_line() {
    let scratch = Scratch::new("check-broken-config");
    let config = scratch.write(
        "sockscope.toml",
        "[thresholds]\nfd_warn = 60\nclose_wait_warn = = 3\n",
    );
    let config = as_str(&config);
    let reason = assert_unknown(&["check", "--config", config], &[config]);
    assert!(
        reason.contains(&format!("{config}:3")) || reason.contains("line 3"),
        "the reason should name line 3: {reason:?}"
    );
}

#[test]
fn config_ignoring_an_unknown_finding_id_is_unknown() {
    let scratch = Scratch::new("check-config-unknown-id");
    let config = scratch.write("sockscope.toml", "[ignore]\nids = [\"typo\"]\n");
    let config = as_str(&config);
    assert_unknown(
        &["check", "--config", config],
        &[config, "typo", "accept-queue-full"],
    );
}

#[test]
fn missing_recording_is_unknown() {
    let scratch = Scratch::new("check-missing-recording");
    let missing = scratch.path("absent.ndjson");
    let missing = as_str(&missing);
    assert_unknown(&["check", "--replay", missing], &[missing]);
}
