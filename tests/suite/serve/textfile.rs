//! `sockscope report --format prometheus`: the exposition `serve` writes, for node_exporter's
//! textfile collector, written atomically with `--output`, and the systemd unit that runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use clap::Parser as _;
use sockscope::cli::Cli;
use sockscope::present::prometheus::FAMILIES;

use super::WithStdin as _;
use super::client::{Serve, parse_exposition, tool_or_skip};
use crate::util::netns::netns_or_skip;
use crate::util::scratch::Scratch;
use crate::util::stdout_of;

/// Each series name with the names of its labels.
type Families = BTreeSet<(String, Vec<String>)>;
/// The labels of each listener series.
type Listeners = BTreeSet<BTreeMap<String, String>>;

/// Each series name with the names of its labels, and the listener series in full.
fn shape(text: &str) -> (Families, Listeners) {
    let samples = parse_exposition(text);
    let families = samples
        .iter()
        .map(|s| (s.name.clone(), s.labels.keys().cloned().collect()))
        .collect();
    let listeners = samples
        .iter()
        .filter(|s| s.name == "sockscope_listener_backlog")
        .map(|s| s.labels.clone())
        .collect();
    (families, listeners)
}

#[test]
fn the_textfile_report_writes_what_serve_exports_and_promtool_accepts_it() {
    let name = "the_textfile_report_writes_what_serve_exports_and_promtool_accepts_it";
    let Some(mut ns) = netns_or_skip(name) else {
        return;
    };
    if !tool_or_skip(name, "promtool") {
        return;
    }
    ns.lab(&[
        "noaccept",
        "--addr",
        "127.0.0.1:5000",
        "--backlog",
        "4",
        "--clients",
        "8",
    ]);
    ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "60"]);
    let Some(serve) = Serve::start(&ns, name, &["--interval", "100ms"]) else {
        return;
    };
    let scraped = serve.get("/metrics").body;

    let scratch = Scratch::new("textfile");
    let prom = scratch.path("sockscope.prom");
    std::fs::write(&prom, "stale\n").expect("an old file to replace");
    let out = ns.sockscope(&[
        "report",
        "--format",
        "prometheus",
        "--samples",
        "1",
        "--output",
        prom.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(stdout_of("report --format prometheus --output", &out), "");
    let written = std::fs::read_to_string(&prom).expect("the textfile");
    let entries: Vec<_> = std::fs::read_dir(prom.parent().expect("a directory"))
        .expect("listable")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(entries, ["sockscope.prom"], "no temporary file is left");

    for f in FAMILIES {
        assert!(
            written.contains(&format!("# TYPE {} {}\n", f.name, f.kind.name())),
            "{} is missing:\n{written}",
            f.name
        );
    }
    let (report_families, report_listeners) = shape(&written);
    let (serve_families, serve_listeners) = shape(&scraped);
    assert_eq!(report_families, serve_families, "{written}\n---\n{scraped}");
    assert_eq!(report_listeners, serve_listeners);
    assert!(
        written.contains("sockscope_findings{id=\"close-wait-leak\",severity=\"warning\""),
        "{written}"
    );

    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(written.as_bytes());
    assert!(
        promtool.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );

    // Without --output it goes to stdout; --json stays a synonym of --format json.
    let stdout = ns.sockscope(&["report", "--format", "prometheus", "--samples", "1"]);
    assert!(stdout_of("report --format prometheus", &stdout).contains("# TYPE sockscope_"));
    let json = ns.sockscope(&["report", "--json", "--samples", "1"]);
    let also = ns.sockscope(&["report", "--format", "json", "--samples", "1"]);
    for out in [json, also] {
        let doc: serde_json::Value =
            serde_json::from_str(&stdout_of("report json", &out)).expect("JSON");
        assert_eq!(doc["schema"], "sockscope.report.v1");
    }
}

#[test]
fn an_unwritable_output_is_one_line_and_exit_1() {
    let out = Command::new(crate::util::sockscope_bin())
        .args(["report", "--samples", "1", "--format", "prometheus"])
        .args(["--output", "/nonexistent/dir/sockscope.prom"])
        .output()
        .expect("running sockscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot write /nonexistent/dir/sockscope.prom"),
        "{stderr}"
    );
    assert!(!Path::new("/nonexistent").exists());
}

#[test]
fn the_textfile_unit_writes_atomically_into_the_directory_it_may_write() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("assets/systemd/sockscope-textfile.service"))
        .expect("the unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[..2], ["/usr/local/bin/sockscope", "report"]);
    Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{exec}: {e}"));
    let at = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
            .unwrap_or_else(|| panic!("{exec} lacks {flag}"))
    };
    assert_eq!(*at("--format"), "prometheus");
    let output = Path::new(at("--output"));
    assert_eq!(output.extension().and_then(|e| e.to_str()), Some("prom"));
    let dir = output.parent().expect("a directory");
    let writable = unit
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .expect("ReadWritePaths, as ProtectSystem=strict makes the rest read-only");
    assert_eq!(Path::new(writable), dir);
    let timer = std::fs::read_to_string(root.join("assets/systemd/sockscope-textfile.timer"))
        .expect("the timer");
    assert!(timer.contains("OnUnitActiveSec="), "{timer}");
}
