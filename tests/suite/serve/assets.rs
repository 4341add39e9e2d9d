//! The exporter's assets and documentation against the metrics it really writes: the
//! alerting rules (promtool, with their unit tests), the dashboard, the README's table and
//! the systemd unit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use sockscope::cli::Cli;
use sockscope::present::prometheus::FAMILIES;

use super::client::tool_or_skip;
use crate::util::scratch::{Scratch, as_str};
use crate::util::{sockscope, stdout_of};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `sockscope_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sockscope_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn exported() -> BTreeSet<String> {
    FAMILIES.iter().map(|f| f.name.to_owned()).collect()
}

#[test]
fn the_rules_and_the_dashboard_use_only_exported_metrics() {
    for asset in [
        "assets/prometheus/sockscope.rules.yml",
        "assets/prometheus/sockscope.rules.test.yml",
        "assets/grafana/sockscope.json",
    ] {
        let used = metric_names(&read(asset));
        assert!(!used.is_empty(), "{asset} uses no metric");
        let unknown: Vec<String> = used.difference(&exported()).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{asset} uses {unknown:?}, which serve does not export"
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("assets/grafana/sockscope.json")).expect("valid JSON");
    let dashboard_uses = metric_names(&read("assets/grafana/sockscope.json"));
    assert_eq!(
        dashboard_uses,
        exported(),
        "the dashboard shows every metric"
    );
    assert_eq!(dashboard["uid"], "sockscope");
}

#[test]
fn the_readme_documents_every_metric_and_nothing_else() {
    let readme = read("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Prometheus exporter"))
        .expect("a ## Prometheus exporter section");
    for f in FAMILIES {
        let row = format!("| `{}` | {} |", f.name, f.kind.name());
        assert!(section.contains(&row), "README lacks the row {row}");
    }
    assert_eq!(metric_names(section), exported());
    assert!(section.contains("9871"), "the default port is documented");
}

#[test]
fn the_systemd_unit_runs_serve_with_arguments_that_parse() {
    let unit = read("assets/systemd/sockscope-serve.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[..2], ["/usr/local/bin/sockscope", "serve"]);
    let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{exec}: {e}"));
    assert!(cli.command.is_some());
    assert!(
        exec.contains("--listen 127.0.0.1:"),
        "loopback unless told otherwise"
    );
}

fn promtool(args: &[&str], dir: &PathBuf) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running promtool");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let test = "the_alerting_rules_pass_promtool_and_their_unit_tests";
    if !tool_or_skip(test, "promtool") {
        return;
    }
    let dir = root().join("assets/prometheus");
    promtool(&["check", "rules", "sockscope.rules.yml"], &dir);
    promtool(&["test", "rules", "sockscope.rules.test.yml"], &dir);
}

/// `generate prometheus-rules --config FILE` writes the rules with FILE's thresholds, and
/// promtool accepts them; without a config it writes the shipped file.
#[test]
fn the_rules_generated_with_a_config_carry_its_thresholds_and_pass_promtool() {
    let test = "the_rules_generated_with_a_config_carry_its_thresholds_and_pass_promtool";
    let shipped = stdout_of("generate", &sockscope(&["generate", "prometheus-rules"]));
    assert_eq!(shipped, read("assets/prometheus/sockscope.rules.yml"));
    let scratch = Scratch::new("rules-with-config");
    let config = scratch.write(
        "sockscope.toml",
        "[thresholds]\nclose_wait_warn = 20\nfd_warn = 70\nfd_crit = 97.5\n",
    );
    let args = ["generate", "prometheus-rules", "--config", as_str(&config)];
    let rules = stdout_of("generate --config", &sockscope(&args));
    for expr in [
        "sockscope_process_close_wait >= 20\n",
        "sockscope_process_fd_limit >= 0.7\n",
        "sockscope_process_fd_limit >= 0.975\n",
    ] {
        assert!(rules.contains(expr), "{expr:?} missing:\n{rules}");
    }
    assert!(!rules.contains(">= 50"), "{rules}");
    if !tool_or_skip(test, "promtool") {
        return;
    }
    scratch.write("sockscope.rules.yml", &rules);
    promtool(
        &["check", "rules", "sockscope.rules.yml"],
        &scratch.path(""),
    );
}
