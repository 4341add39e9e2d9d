//! Command-line behaviour that needs no namespace: usage errors and sampling.

use std::process::{Command, Output};

use crate::util::report::Report;
use crate::util::{sockscope_bin, stdout_of};

fn sockscope(args: &[&str]) -> Output {
    Command::new(sockscope_bin())
        .args(args)
        // A usage error must not turn into a panic, even with backtraces asked for.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running sockscope")
}

fn assert_usage_error(args: &[&str]) {
    let out = sockscope(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "sockscope {args:?}: exit status; stderr: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "sockscope {args:?}: one line on stderr, got {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.to_lowercase().contains("backtrace"),
        "sockscope {args:?} panicked: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "sockscope {args:?} wrote to stdout: {:?}",
        out.stdout
    );
}

#[test]
fn unknown_flag_is_a_one_line_usage_error() {
    assert_usage_error(&["report", "--no-such-flag"]);
}

#[test]
fn bad_interval_is_a_one_line_usage_error() {
    assert_usage_error(&["report", "--interval", "banana"]);
}

#[test]
fn an_unknown_finding_id_to_ignore_is_a_usage_error_that_lists_the_ids() {
    assert_usage_error(&["report", "--ignore", "id:typo"]);
    let out = sockscope(&["report", "--ignore", "id:accept-queue-ful"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for id in ["accept-queue-full", "close-wait-leak", "orphan-pressure"] {
        assert!(stderr.contains(id), "the valid ids are listed: {stderr}");
    }
}

#[test]
fn a_threshold_its_unit_does_not_admit_is_a_one_line_usage_error() {
    assert_usage_error(&["report", "--fd-warn", "2000"]);
    assert_usage_error(&["report", "--close-wait-warn", "1.5"]);
    assert_usage_error(&["report", "--fill-warn", "90", "--fill-crit", "85"]);
    let out = sockscope(&["report", "--udp-drops-crit=-1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--udp-drops-crit") && stderr.contains("write a rate"),
        "names the flag and the fix: {stderr}"
    );
}

#[test]
fn zero_samples_is_a_one_line_usage_error() {
    assert_usage_error(&["report", "--samples", "0"]);
}

fn report(args: &[&str]) -> Report {
    let stdout = stdout_of(&format!("sockscope {args:?}"), &sockscope(args));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("report does not parse: {e}\n{stdout}"))
}

/// Rates need two samples: with two every counter the kernel has gets a rate, with one every
/// rate is null.
/// Runs on the caller's own namespace: it only needs the counters to exist.
#[test]
fn rates_need_two_samples() {
    let earlier = report(&["report", "--json", "--samples", "1"]);
    let two = report(&["report", "--json", "--samples", "2", "--interval", "200ms"]);
    assert_eq!((two.sampling.samples, two.sampling.interval_ms), (2, 200));
    for ns in &two.netns {
        assert!(!ns.counters.is_empty(), "no counters in netns {}", ns.id);
        // A counter this kernel does not export has neither a total nor a rate.
        for (name, counter) in &ns.counters {
            if counter.total.is_some() {
                assert!(
                    counter.rate_per_s.is_some(),
                    "{name}: no rate with two samples"
                );
            }
        }
        let listen_overflows = ns.counter("ListenOverflows");
        assert!(
            listen_overflows.rate_per_s.is_some(),
            "ListenOverflows: no rate with two samples"
        );
        // Unix listeners have no drop counter: only TCP ones get a rate. This runs in the
        // host's namespace, where a listener may open between the two samples (it then has
        // no earlier reading): only listeners that were there before must have one.
        let before: Vec<&str> = earlier
            .netns
            .iter()
            .flat_map(|n| &n.listeners)
            .map(|l| l.local.as_str())
            .collect();
        for l in ns
            .listeners
            .iter()
            .filter(|l| l.proto == "tcp" && before.contains(&l.local.as_str()))
        {
            assert!(
                l.drops.rate_per_s.is_some(),
                "listener {}: no drop rate with two samples",
                l.local
            );
        }
    }

    let one = report(&["report", "--json", "--samples", "1"]);
    assert_eq!(one.sampling.samples, 1);
    for ns in &one.netns {
        for (name, counter) in &ns.counters {
            assert_eq!(counter.rate_per_s, None, "{name}: a rate from one sample");
        }
        for l in &ns.listeners {
            assert_eq!(
                l.drops.rate_per_s, None,
                "listener {}: a drop rate from one sample",
                l.local
            );
        }
    }
}

#[test]
fn generate_writes_each_companion_to_stdout() {
    for (what, starts) in [
        ("man", ".ie"),
        ("complete-bash", "_sockscope()"),
        ("complete-zsh", "#compdef sockscope"),
        ("complete-fish", ""),
    ] {
        let text = stdout_of(&format!("generate {what}"), &sockscope(&["generate", what]));
        assert!(
            text.starts_with(starts),
            "{what}: {}",
            &text[..80.min(text.len())]
        );
        for sub in ["top", "report", "check", "serve", "record", "generate"] {
            assert!(text.contains(sub), "{what} lacks {sub}");
        }
    }
    let man = stdout_of("generate man", &sockscope(&["generate", "man"]));
    assert!(man.contains(".TH SOCKSCOPE 1"), "{man}");
}

#[test]
fn generate_and_report_reject_what_they_do_not_know() {
    assert_usage_error(&["generate"]);
    assert_usage_error(&["generate", "complete-powershell"]);
    assert_usage_error(&["report", "--format", "yaml"]);
    assert_usage_error(&["report", "--json", "--format", "text"]);
    assert_usage_error(&["report", "--output", "/"]);
}
