//! check: the monitoring-plugins protocol in private namespaces. A healthy namespace is OK
//! (exit 0), a CLOSE_WAIT leak a WARNING (1), a full listener that drops connections
//! CRITICAL (2); each time the status line and its perfdata follow the plugin format, the
//! long output names the findings, and `--format json` says the same for scripts.

// Perfdata values are short decimals the binary printed; parsed back, they compare exactly.
#![allow(clippy::float_cmp)]

use std::process::Output;

use serde_json::Value;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::plugin::{Perf, STATES, StatusLine, parse_status_line};
use crate::util::{looks_like_panic, sockscope_bin};

/// A check's output, read and validated against the protocol.
#[derive(Debug)]
pub(super) struct Checked {
    pub code: i32,
    pub status: StatusLine,
    /// The long output: every line after the status line.
    pub long: Vec<String>,
}

impl Checked {
    /// Read a finished `sockscope check` and check what every run must satisfy: no panic,
    /// an exit code the protocol knows, a status line in the plugin format whose state is
    /// that exit code's, perfdata labels given once, no `|` in the long output (a monitoring
    /// system would take what follows for perfdata), and the findings counted in perfdata
    /// listed in the long output.
    pub fn read(what: &str, out: &Output) -> Checked {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!looks_like_panic(&stderr), "{what} panicked: {stderr}");
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{what} was killed ({}): {stderr}", out.status));
        let state = usize::try_from(code)
            .ok()
            .and_then(|c| STATES.get(c))
            .unwrap_or_else(|| panic!("{what} exited {code}, not 0-3; stdout: {stdout}"));
        let mut lines = stdout.lines();
        let first = lines.next().unwrap_or_default();
        let status = parse_status_line("SOCKSCOPE", first)
            .unwrap_or_else(|e| panic!("{what}: status line: {e}\nstdout:\n{stdout}"));
        assert_eq!(status.state, *state, "{what}: state vs exit code {code}");
        let long: Vec<String> = lines.map(str::to_owned).collect();
        for line in &long {
            assert!(!line.contains('|'), "{what}: `|` in long output {line:?}");
        }
        let mut labels: Vec<&str> = status.perfdata.iter().map(|p| p.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(
            labels.len(),
            status.perfdata.len(),
            "{what}: a label given twice: {first}"
        );
        let checked = Checked { code, status, long };
        if checked.status.state != "UNKNOWN" {
            for (label, prefix) in [
                ("findings_critical", "CRITICAL "),
                ("findings_warning", "WARNING "),
            ] {
                let listed = checked.lines_starting(prefix).len();
                assert_eq!(
                    checked.value(label),
                    f64::from(u32::try_from(listed).expect("a few lines")),
                    "{what}: {label} vs the long output:\n{stdout}"
                );
            }
        }
        checked
    }

    pub fn perf(&self, label: &str) -> &Perf {
        self.status
            .perfdata
            .iter()
            .find(|p| p.label == label)
            .unwrap_or_else(|| panic!("no perfdata {label:?} in {:?}", self.status.perfdata))
    }

    /// A perfdata value that must be known.
    pub fn value(&self, label: &str) -> f64 {
        self.perf(label)
            .value
            .unwrap_or_else(|| panic!("{label} is U: {:?}", self.perf(label)))
    }

    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.long
            .iter()
            .filter(|l| l.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }

    /// Panics unless some long-output line starts with `prefix`.
    pub fn assert_long_line(&self, prefix: &str) {
        assert!(
            !self.lines_starting(prefix).is_empty(),
            "no long-output line starts with {prefix:?}:\n{}",
            self.long.join("\n")
        );
    }
}

/// `sockscope check ARGS` inside `ns`.
pub(super) fn check(ns: &Netns, args: &[&str]) -> Checked {
    let out = ns
        .command(sockscope_bin())
        .arg("check")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running sockscope check");
    let what = format!("sockscope check {}", args.join(" "));
    Checked::read(what.trim_end(), &out)
}

/// The perfdata every check reports, with the default thresholds, as the README lists it.
fn assert_default_perfdata(c: &Checked) {
    let thresholds = |label: &str| {
        let p = c.perf(label);
        (p.uom.as_str(), p.warn.as_deref(), p.crit.as_deref(), p.min)
    };
    assert_eq!(
        thresholds("accept_queue_fill_max"),
        ("%", Some("80"), Some("100"), Some(0.0))
    );
    assert_eq!(
        thresholds("close_wait_max"),
        ("", Some("50"), Some("500"), Some(0.0))
    );
    assert_eq!(
        thresholds("fd_use_max"),
        ("%", Some("80"), Some("95"), Some(0.0))
    );
    assert_eq!(c.perf("fd_use_max").max, Some(100.0));
    assert_eq!(thresholds("listen_drops_per_s").2, Some("10"));
    // Two samples (the default) give every rate a value.
    for label in ["listen_overflows_per_s", "listen_drops_per_s"] {
        assert!(
            c.perf(label).value.is_some(),
            "{label} is U with two samples"
        );
    }
}

#[test]
fn healthy_namespace_is_ok() {
    let Some(mut ns) = netns_or_skip("healthy_namespace_is_ok") else {
        return;
    };
    ns.lab(&["healthy", "--addr", "127.0.0.1:5004", "--conns", "20"]);
    ns.lab(&["listen", "--addr", "127.0.0.1:5005", "--addr", "[::1]:5006"]);
    let c = check(&ns, &[]);
    assert_eq!((c.code, c.status.state.as_str()), (0, "OK"), "{c:#?}");
    assert_default_perfdata(&c);
    assert_eq!(c.value("close_wait_max"), 0.0);
    assert_eq!(
        c.value("findings_critical") + c.value("findings_warning"),
        0.0
    );
    assert!(
        c.value("accept_queue_fill_max") < 80.0,
        "{:?}",
        c.perf("accept_queue_fill_max")
    );
}

#[test]
fn close_wait_leak_is_a_warning_naming_the_process() {
    let Some(mut ns) = netns_or_skip("close_wait_leak_is_a_warning_naming_the_process") else {
        return;
    };
    let ready = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let pid = ready.pid("leaky");
    let c = check(&ns, &[]);
    assert_eq!((c.code, c.status.state.as_str()), (1, "WARNING"), "{c:#?}");
    assert_default_perfdata(&c);
    assert_eq!(c.value("close_wait_max"), 200.0);
    let subject = format!("process leaky (pid {pid})");
    c.assert_long_line(&format!("WARNING close-wait-leak {subject}"));
    c.assert_long_line(&format!("WARNING ephemeral-port-collision {subject}"));
    assert!(
        c.status.text.contains("close-wait-leak"),
        "the status line should name the worst findings: {:?}",
        c.status.text
    );
}

#[test]
fn full_dropping_listener_is_critical_naming_it() {
    let Some(mut ns) = netns_or_skip("full_dropping_listener_is_critical_naming_it") else {
        return;
    };
    let ready = ns.lab(&[
        "noaccept",
        "--addr",
        "127.0.0.1:5000",
        "--backlog",
        "8",
        "--clients",
        "30",
    ]);
    let pid = ready.pid("noaccept");
    let c = check(&ns, &[]);
    assert_eq!((c.code, c.status.state.as_str()), (2, "CRITICAL"), "{c:#?}");
    assert_default_perfdata(&c);
    // 9 queued on a backlog of 8.
    assert_eq!(c.value("accept_queue_fill_max"), 112.5);
    c.assert_long_line(&format!(
        "CRITICAL accept-queue-full tcp 127.0.0.1:5000 (noaccept pid {pid})"
    ));
    assert!(
        c.status.text.contains("accept-queue-full"),
        "the status line should name the worst finding: {:?}",
        c.status.text
    );
}

#[test]
fn json_format_says_what_the_text_says() {
    let Some(mut ns) = netns_or_skip("json_format_says_what_the_text_says") else {
        return;
    };
    let ready = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let pid = ready.pid("leaky");
    let out = ns
        .command(sockscope_bin())
        .args(["check", "--format", "json"])
        .output()
        .expect("running sockscope check --format json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check --format json is not JSON ({e}):\n{stdout}"));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(json["status"], "WARNING", "{json:#}");
    assert_eq!(json["exit_code"], 1, "{json:#}");

    let perfdata = json["perfdata"]
        .as_array()
        .unwrap_or_else(|| panic!("perfdata is not a list: {json:#}"));
    let value = |label: &str| {
        perfdata
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("no perfdata {label} in {json:#}"))["value"]
            .as_f64()
    };
    assert_eq!(value("close_wait_max"), Some(200.0));
    let mut labels: Vec<&str> = perfdata
        .iter()
        .filter_map(|p| p["label"].as_str())
        .collect();
    labels.sort_unstable();
    let text = check(&ns, &[]);
    let mut text_labels: Vec<&str> = text
        .status
        .perfdata
        .iter()
        .map(|p| p.label.as_str())
        .collect();
    text_labels.sort_unstable();
    assert_eq!(labels, text_labels, "JSON vs text perfdata labels");

    let findings = json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("findings is not a list: {json:#}"));
    let leak = findings
        .iter()
        .find(|f| f["id"] == "close-wait-leak")
        .unwrap_or_else(|| panic!("no close-wait-leak in {json:#}"));
    assert_eq!(leak["severity"], "warning");
    assert_eq!(leak["subject"], format!("process leaky (pid {pid})"));
    assert_eq!(leak["evidence"]["close_wait"], 200);
}

#[test]
fn perfdata_of_a_single_sample_is_unknown_not_zero() {
    let Some(mut ns) = netns_or_skip("perfdata_of_a_single_sample_is_unknown_not_zero") else {
        return;
    };
    ns.lab(&["listen", "--addr", "127.0.0.1:5005"]);
    let c = check(&ns, &["--samples", "1"]);
    assert_eq!(c.code, 0, "{c:#?}");
    for label in ["listen_overflows_per_s", "listen_drops_per_s"] {
        assert_eq!(c.perf(label).value, None, "a rate from one sample: {label}");
    }
}
