//! `sockscope generate`: the man page and the shell completions, made from the clap
//! definition in [`crate::cli`] so that a new command or option reaches them without being
//! written twice (ripgrep's `--generate`); the config file and the Prometheus alerting rules,
//! made from the table every threshold is defined in ([`Thresholds::ROWS`]) with the
//! thresholds in effect, so that a new threshold reaches the config file and a configured
//! one reaches the alerts. The shipped `assets/sockscope.toml` and
//! `assets/prometheus/sockscope.rules.yml` are the output with the defaults (tests say so).
//!
//! Owns only the rendering; it reads nothing of the host. The man page is one page,
//! sockscope(1): the synopsis, the description and the options every command takes, then a
//! section per command with its own options, then the threshold and ignore options once
//! (four commands share them), then the exit codes.

use std::fmt::Write as _;
use std::io::{self, Write};

use clap::{Arg, Command, CommandFactory as _};
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use serde::Serialize;

use crate::analyze::{FindingId, Settings, Thresholds};
use crate::cli::Cli;
use crate::config::{Companion, Shell};

/// The heading clap gives the options that several commands share by flattening
/// [`crate::cli::RuleArgs`]: rendered once, after the commands.
fn shared_heading(command: &Command) -> Option<&str> {
    command
        .get_subcommands()
        .flat_map(Command::get_arguments)
        .find_map(Arg::get_help_heading)
}

/// Write `what` to `out`; the config file and the alerting rules with `settings`.
pub fn write(what: Companion, settings: &Settings, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    match what {
        Companion::Man => man(command, out),
        Companion::Config => out.write_all(config_file(settings)?.as_bytes()),
        Companion::PrometheusRules => {
            out.write_all(prometheus_rules(&settings.thresholds).as_bytes())
        }
        Companion::Completion(shell) => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut command, "sockscope", out);
            Ok(())
        }
    }
}

/// The man page, sockscope(1).
fn man(mut command: Command, out: &mut dyn Write) -> io::Result<()> {
    command.build();
    let version = command.get_version().unwrap_or_default().to_owned();
    let page = Man::new(command.clone())
        .title("SOCKSCOPE")
        .section("1")
        .source(format!("sockscope {version}"))
        .manual("User Commands");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["OPTIONS"]);
    roff.text([roman(
        "These options are taken before or after any command.",
    )]);
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        option(&mut roff, arg);
    }

    let shared = shared_heading(&command);
    roff.control("SH", ["COMMANDS"]);
    let mut sharing = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sockscope {}", sub.get_name());
        roff.control("SS", [name.as_str()]);
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
        roff.text([bold(usage)]);
        roff.control("PP", []);
        paragraphs(&mut roff, sub.get_long_about().or_else(|| sub.get_about()));
        let own = |a: &&Arg| {
            !a.is_hide_set()
                && !a.is_global_set()
                && a.get_help_heading() != shared
                && !matches!(a.get_id().as_str(), "help" | "version")
        };
        for arg in sub.get_arguments().filter(own) {
            option(&mut roff, arg);
        }
        if shared.is_some() && sub.get_arguments().any(|a| a.get_help_heading() == shared) {
            sharing.push(sub.get_name());
            roff.control("PP", []);
            roff.text([roman("It takes the threshold and ignore options below.")]);
        }
        if let Some(after) = sub.get_after_help() {
            roff.control("PP", []);
            roff.control("nf", []);
            for line in after.to_string().lines() {
                roff.text([roman(line)]);
            }
            roff.control("fi", []);
        }
    }

    if let Some(heading) = shared {
        // "Thresholds and ignore rules (defaults in brackets; also in --config)": the title
        // for the heading, the rest for the text.
        let (title, aside) = heading.split_once(" (").unwrap_or((heading, ""));
        roff.control("SH", [title.to_uppercase().as_str()]);
        let aside = aside.trim_end_matches(')');
        let aside = aside.get(..1).map_or(String::new(), |first| {
            format!(" {}{}.", first.to_uppercase(), &aside[1..])
        });
        roff.text([roman(format!(
            "Taken by {}. Each threshold overrides the --config file's value; ignore rules \
             add to the file's.{aside}",
            sharing.join(", ")
        ))]);
        let first = command
            .get_subcommands()
            .find(|s| sharing.first() == Some(&s.get_name()));
        for arg in first
            .into_iter()
            .flat_map(Command::get_arguments)
            .filter(|a| a.get_help_heading() == Some(heading))
        {
            option(&mut roff, arg);
        }
    }
    if let Some(after) = command.get_after_help() {
        roff.control("SH", ["NOTES"]);
        paragraphs(&mut roff, Some(after));
    }
    roff.to_writer(out)?;
    page.render_version_section(out)
}

/// One option (or positional argument) as a tagged paragraph: its spellings and value, then
/// its help and the values it admits.
fn option(roff: &mut Roff, arg: &Arg) {
    let mut tag: Vec<Inline> = Vec::new();
    if let Some(short) = arg.get_short() {
        tag.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            tag.push(roman(", "));
        }
    }
    if let Some(long) = arg.get_long() {
        tag.push(bold(format!("--{long}")));
    }
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_value || arg.is_positional() {
        let names = arg.get_value_names().map_or_else(
            || vec![arg.get_id().as_str().to_uppercase()],
            |names| names.iter().map(ToString::to_string).collect::<Vec<_>>(),
        );
        if !tag.is_empty() {
            tag.push(roman(" "));
        }
        tag.push(italic(names.join(" ")));
    }
    roff.control("TP", []);
    roff.text(tag);
    paragraphs(roff, arg.get_long_help().or_else(|| arg.get_help()));
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if takes_value && !values.is_empty() && values.iter().any(|v| v.get_help().is_some()) {
        for value in values {
            roff.control(
                "IP",
                [format!("\\fB{}\\fR", value.get_name()).as_str(), "4"],
            );
            paragraphs(roff, value.get_help());
        }
    } else if takes_value && !values.is_empty() {
        let names: Vec<&str> = values
            .iter()
            .map(clap::builder::PossibleValue::get_name)
            .collect();
        roff.text([roman(format!("[possible values: {}]", names.join(", ")))]);
    }
}

/// Help text, a blank line starting a new paragraph.
fn paragraphs(roff: &mut Roff, text: Option<&clap::builder::StyledStr>) {
    let Some(text) = text else { return };
    for line in text.to_string().lines() {
        if line.trim().is_empty() {
            roff.control("PP", []);
        } else {
            roff.text([roman(line)]);
        }
    }
}

/// The config file's opening comment.
const CONFIG_HEADER: &str = "\
# sockscope configuration: pass it with `--config FILE` to any command.
# Every key is optional; a missing key keeps its default. A flag given on the command line
# (for example `--fd-warn 70`) wins over the value in this file. Percentages and rates are
# numbers (80, 95.5), durations strings (\"500ms\", \"1s\", \"2m\").
# `sockscope generate config` writes this file: every key with its value in effect.
";

/// The config file's `owners` key (`--owners`), before the tables.
const OWNERS: &str = "\
# Where the owners of sockets are read (as --owners): \"bpf\", a BPF iterator over every
# process's descriptors in one pass (root, or CAP_BPF with CAP_PERFMON; a kernel with BTF);
# \"proc\", one readlink per descriptor under /proc; \"auto\", the iterator where it loads and
# /proc elsewhere, or where the processes in scope hold few of the host's descriptors.
owners = \"auto\"
";

/// The config file's `[ignore]` table, before each of its four keys.
const IGNORE_HEADER: &str = "\
[ignore]
# Findings to leave out, for a known noisy service. A finding is left out when any rule
# matches. Also on the command line: --ignore id:ID, port:PORT, path:PATH, comm:NAME.
";

/// The config file: every threshold with its description and its value in `settings`
/// (a value other than the default says the default), then the ignore rules.
pub fn config_file(settings: &Settings) -> io::Result<String> {
    let mut out = format!("{CONFIG_HEADER}\n{OWNERS}\n[thresholds]\n");
    for row in Thresholds::ROWS {
        for line in wrap(&row.about_text(), 95 - "# ".len()) {
            let _ = writeln!(out, "# {line}");
        }
        let (value, default) = (row.get(&settings.thresholds), row.default_value());
        if value != default {
            let _ = writeln!(out, "# (default: {})", default.toml());
        }
        let _ = writeln!(out, "{} = {}", row.name, value.toml());
    }
    let ignore = &settings.ignore;
    let _ = write!(
        out,
        "\n{IGNORE_HEADER}\
         # Finding ids, e.g. [\"accept-queue-high\"].\nids = {}\n\
         # TCP listener ports (and server ports of ephemeral-port-collision), e.g. [8080].\n\
         ports = {}\n\
         # Unix listener paths, \"@name\" for abstract sockets, e.g. [\"/run/batch.sock\"].\n\
         paths = {}\n\
         # Process names as /proc/PID/comm shows them (owners of a listener too), e.g. \
         [\"java\"].\ncomms = {}\n",
        toml_array(&ignore.ids)?,
        toml_array(&ignore.ports)?,
        toml_array(&ignore.paths)?,
        toml_array(&ignore.comms)?,
    );
    Ok(out)
}

/// `["a", "b"]`, quoted and escaped as TOML wants.
fn toml_array<T: Serialize>(items: &[T]) -> io::Result<String> {
    toml::Value::try_from(items)
        .map(|v| v.to_string())
        .map_err(io::Error::other)
}

/// One alerting rule.
struct Alert {
    /// The comment above it, a line per element.
    comment: &'static [&'static str],
    name: &'static str,
    /// PromQL; a line per element.
    expr: Vec<String>,
    for_: &'static str,
    severity: &'static str,
    summary: &'static str,
    description: String,
}

/// The alerting rules, with `t`'s thresholds.
pub fn prometheus_rules(t: &Thresholds) -> String {
    let mut out = String::from(
        "\
# Prometheus alerting rules for `sockscope serve` (metrics: see the README, \"Prometheus
# exporter\"). Load with `rule_files: [/etc/prometheus/sockscope.rules.yml]`; check with
# `promtool check rules` and `promtool test rules sockscope.rules.test.yml`.
#
# Written by `sockscope generate prometheus-rules [--config FILE]` with the thresholds
# sockscope judges with (its defaults, or those of FILE), so an alert here and a finding
# there agree. `for:` keeps a momentary spike from paging.
groups:
  - name: sockscope
    rules:
",
    );
    for (i, alert) in alerts(t).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        write_alert(&mut out, alert);
    }
    out
}

/// What the rules say, with `t`'s thresholds in their expressions.
#[allow(clippy::too_many_lines)] // a table: one entry per rule
fn alerts(t: &Thresholds) -> Vec<Alert> {
    #[allow(clippy::float_cmp)] // exactly the default: past the backlog itself
    let past = if t.fill_crit == 100.0 {
        (
            "sockscope_listener_backlog".to_owned(),
            "its backlog".to_owned(),
        )
    } else {
        (
            format!("sockscope_listener_backlog * {}", fraction(t.fill_crit)),
            format!("{} % of its backlog", t.fill_crit),
        )
    };
    // The findings the alerts above it cover: one outage pages once.
    let covered = [
        FindingId::AcceptQueueFull,
        FindingId::ListenDrops,
        FindingId::CloseWaitLeak,
        FindingId::FdExhaustion,
        FindingId::ConntrackFull,
        FindingId::OrphanPressure,
    ]
    .map(FindingId::name)
    .join("|");
    vec![
        Alert {
            comment: &[
                "The kernel admits backlog + 1 connections: past the backlog, SYNs and final ACKs",
                "are dropped and clients time out while the server looks idle.",
            ],
            name: "SockscopeListenerFull",
            expr: vec![format!("sockscope_listener_accept_queue > {}", past.0)],
            for_: "1m",
            severity: "critical",
            summary: "Accept queue full: {{ $labels.proto }} {{ $labels.local }} ({{ $labels.comm }}) on {{ $labels.instance }}",
            description: format!(
                "{{{{ $labels.comm }}}} is not calling accept() fast enough: {{{{ $value }}}} \
                 connections wait in the queue of {{{{ $labels.local }}}} (netns {{{{ \
                 $labels.netns }}}}), past {}. New connections are being dropped. Run \
                 `sockscope report` on the host for the remedy (a stuck worker pool, a backlog \
                 capped by net.core.somaxconn).",
                past.1
            ),
        },
        Alert {
            comment: &["SK_MEMINFO_DROPS of one listener rose: SYNs or ACKs it had to drop."],
            name: "SockscopeListenerDrops",
            expr: vec!["increase(sockscope_listener_drops_total[5m]) > 0".to_owned()],
            for_: "0m",
            severity: "warning",
            summary: "Listener dropping connections: {{ $labels.proto }} {{ $labels.local }} ({{ $labels.comm }}) on {{ $labels.instance }}",
            description: "{{ $labels.local }} (netns {{ $labels.netns }}) dropped {{ $value | \
                          printf \"%.0f\" }} SYNs or ACKs in the last 5 minutes: its accept \
                          queue overflowed. Clients saw connect() timeouts or slow handshakes."
                .to_owned(),
        },
        Alert {
            comment: &[
                "A process that never close()s the sockets its peers closed: descriptors run out,",
                "and leaked loopback sockets can collide with new connect()s.",
            ],
            name: "SockscopeCloseWaitLeak",
            expr: vec![format!(
                "sockscope_process_close_wait >= {}",
                t.close_wait_warn
            )],
            for_: "5m",
            severity: "warning",
            summary: "CLOSE_WAIT leak: {{ $labels.comm }} (pid {{ $labels.pid }}) holds {{ $value }} CLOSE_WAIT sockets on {{ $labels.instance }}",
            description: "{{ $labels.comm }} (pid {{ $labels.pid }}, netns {{ $labels.netns }}) \
                          does not close connections its clients have closed. Look for a \
                          missing close() on an error path; `sockscope report` says whether it \
                          read EOF and how old the oldest one is."
                .to_owned(),
        },
        Alert {
            comment: &[],
            name: "SockscopeCloseWaitLeakGrowing",
            expr: vec![
                format!("sockscope_process_close_wait >= {}", t.close_wait_warn),
                "and delta(sockscope_process_close_wait[15m]) > 0".to_owned(),
            ],
            for_: "15m",
            severity: "critical",
            summary: "Growing CLOSE_WAIT leak: {{ $labels.comm }} (pid {{ $labels.pid }}) on {{ $labels.instance }}",
            description: "{{ $labels.comm }} (pid {{ $labels.pid }}) has {{ $value }} CLOSE_WAIT \
                          sockets and the count has kept growing for 15 minutes: it will run out \
                          of descriptors."
                .to_owned(),
        },
        Alert {
            comment: &[
                "Descriptors against the soft RLIMIT_NOFILE: at the limit accept(), open() and",
                "socket() fail with EMFILE.",
            ],
            name: "SockscopeFdExhaustion",
            expr: vec![format!(
                "sockscope_process_fds / sockscope_process_fd_limit >= {}",
                fraction(t.fd_warn)
            )],
            for_: "5m",
            severity: "warning",
            summary: "{{ $labels.comm }} (pid {{ $labels.pid }}) uses {{ $value | humanizePercentage }} of its descriptors on {{ $labels.instance }}",
            description:
                "At its limit {{ $labels.comm }} fails accept(), open() and socket() with \
                          EMFILE. Fix a leak first (CLOSE_WAIT sockets count); raise LimitNOFILE= \
                          if the load is real."
                    .to_owned(),
        },
        Alert {
            comment: &[],
            name: "SockscopeFdExhaustionCritical",
            expr: vec![format!(
                "sockscope_process_fds / sockscope_process_fd_limit >= {}",
                fraction(t.fd_crit)
            )],
            for_: "1m",
            severity: "critical",
            summary: "{{ $labels.comm }} (pid {{ $labels.pid }}) is at {{ $value | humanizePercentage }} of its descriptors on {{ $labels.instance }}",
            description: "{{ $labels.comm }} is about to fail accept(), open() and socket() with \
                          EMFILE."
                .to_owned(),
        },
        Alert {
            comment: &[
                "The connection tracking table (its count per namespace, its limit the host's):",
                "when full, new connections' SYNs are dropped silently and clients time out.",
            ],
            name: "SockscopeConntrackFull",
            expr: vec![
                "sockscope_kernel_table_entries{table=\"conntrack\"}".to_owned(),
                format!(
                    "  / sockscope_kernel_table_limit{{table=\"conntrack\"}} >= {}",
                    fraction(t.conntrack_warn)
                ),
            ],
            for_: "5m",
            severity: "warning",
            summary: "Connection tracking table {{ $value | humanizePercentage }} full (netns {{ $labels.netns }}) on {{ $labels.instance }}",
            description: "Past net.netfilter.nf_conntrack_max new connections are dropped \
                          silently. Raise it (and the hash size), shorten the timeouts that \
                          hold most entries, or exempt traffic with a notrack rule; `sockscope \
                          report` says which."
                .to_owned(),
        },
        Alert {
            comment: &[],
            name: "SockscopeConntrackDropping",
            expr: vec![
                "increase(sockscope_conntrack_drops_total{kind=~\"drop|early_drop\"}[5m]) > 0"
                    .to_owned(),
            ],
            for_: "0m",
            severity: "critical",
            summary: "Connection tracking table refusing connections (netns {{ $labels.netns }}) on {{ $labels.instance }}",
            description: "The table was full: {{ $value | printf \"%.0f\" }} connections \
                          ({{ $labels.kind }}) in the last 5 minutes. Clients time out while \
                          no listener is full."
                .to_owned(),
        },
        Alert {
            comment: &[
                "Past tcp_max_tw_buckets connections close without TIME_WAIT: old duplicate",
                "segments may corrupt new connections on the same ports.",
            ],
            name: "SockscopeTimeWaitOverflow",
            expr: vec![
                "increase(sockscope_kernel_tcpext_total{name=\"TCPTimeWaitOverflow\"}[5m]) > 0"
                    .to_owned(),
            ],
            for_: "0m",
            severity: "warning",
            summary: "Connections closing without TIME_WAIT (netns {{ $labels.netns }}) on {{ $labels.instance }}",
            description: "{{ $value | printf \"%.0f\" }} connections skipped TIME_WAIT in \
                          the last 5 minutes: net.ipv4.tcp_max_tw_buckets is too low for the \
                          connections closed. Raise it, or reuse connections."
                .to_owned(),
        },
        Alert {
            comment: &[
                "The kernel resets connections for memory: \"out of memory -- consider tuning",
                "tcp_mem\" or \"too many orphaned sockets\".",
            ],
            name: "SockscopeTcpAbortOnMemory",
            expr: vec![
                "increase(sockscope_kernel_tcpext_total{name=\"TCPAbortOnMemory\"}[5m]) > 0"
                    .to_owned(),
            ],
            for_: "0m",
            severity: "critical",
            summary: "The kernel is resetting TCP connections for memory (netns {{ $labels.netns }}) on {{ $labels.instance }}",
            description: "{{ $value | printf \"%.0f\" }} connections were reset in the last 5 \
                          minutes because TCP ran out of memory (tcp_mem) or of orphans \
                          (tcp_max_orphans). `sockscope report` says which."
                .to_owned(),
        },
        Alert {
            comment: &[
                "What else sockscope judges critical (SYN queue pressure, ephemeral port collisions,",
                "TCP memory); the ids the alerts above cover are left out so one outage pages once.",
            ],
            name: "SockscopeCriticalFinding",
            expr: vec![
                "sockscope_findings{severity=\"critical\",".to_owned(),
                format!("  id!~\"{covered}\"}} > 0"),
            ],
            for_: "5m",
            severity: "critical",
            summary: "sockscope: {{ $value }} critical {{ $labels.id }} finding(s) on {{ $labels.instance }}",
            description: "Run `sockscope report` on {{ $labels.instance }} for the subject, the \
                          evidence and the remedy of each {{ $labels.id }} finding (netns {{ \
                          $labels.netns }})."
                .to_owned(),
        },
        Alert {
            comment: &[
                "The exporter cannot map every socket to its process (not root, or a hardened /proc):",
                "per-process alerts above may miss the culprit.",
            ],
            name: "SockscopePartialView",
            expr: vec!["sockscope_scrape_partial == 1".to_owned()],
            for_: "1h",
            severity: "info",
            summary: "sockscope on {{ $labels.instance }} cannot see every process's sockets",
            description: "Run `sockscope serve` as root (the systemd unit in assets/ does) for a \
                          full process view."
                .to_owned(),
        },
    ]
}

/// A percentage as the fraction PromQL compares a ratio with: 80 -> `0.8`.
fn fraction(pct: f64) -> String {
    let text = format!("{:.6}", pct / 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// One rule, in the layout of the file: its comment, then its keys.
fn write_alert(out: &mut String, a: &Alert) {
    const INDENT: &str = "      ";
    for line in a.comment {
        let _ = writeln!(out, "{INDENT}# {line}");
    }
    let _ = writeln!(out, "{INDENT}- alert: {}", a.name);
    match a.expr.as_slice() {
        [one] => {
            let _ = writeln!(out, "{INDENT}  expr: {one}");
        }
        lines => {
            let _ = writeln!(out, "{INDENT}  expr: >-");
            for line in lines {
                let _ = writeln!(out, "{INDENT}    {line}");
            }
        }
    }
    let _ = writeln!(out, "{INDENT}  for: {}", a.for_);
    let _ = writeln!(
        out,
        "{INDENT}  labels:\n{INDENT}    severity: {}",
        a.severity
    );
    let _ = writeln!(out, "{INDENT}  annotations:");
    let summary = a.summary.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(out, "{INDENT}    summary: \"{summary}\"");
    let _ = writeln!(out, "{INDENT}    description: >-");
    // A folded scalar joins its lines with one space: wrapping at spaces keeps the text.
    let indent = format!("{INDENT}      ");
    for line in wrap(&a.description, 96 - indent.len()) {
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// `text`'s words in lines of at most `width` characters (a longer word alone), a
/// Prometheus template such as `{{ $value | printf "%.0f" }}` kept whole.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut open = false;
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_owned()),
        }
        if word.contains("{{") {
            open = true;
        }
        if word.contains("}}") {
            open = false;
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(what: Companion) -> String {
        let mut out = Vec::new();
        write(what, &Settings::default(), &mut out).expect("writes");
        String::from_utf8(out).expect("UTF-8")
    }

    /// Every command and every long option, of the top level and of each command, as the
    /// clap definition has them.
    fn definition() -> (Vec<String>, Vec<String>) {
        let mut command = Cli::command();
        command.build();
        let mut longs: Vec<String> = Vec::new();
        let mut subcommands = Vec::new();
        for cmd in std::iter::once(&command).chain(command.get_subcommands()) {
            if cmd.get_name() != "sockscope" {
                subcommands.push(cmd.get_name().to_owned());
            }
            for arg in cmd.get_arguments() {
                longs.extend(arg.get_long().map(str::to_owned));
            }
        }
        longs.sort();
        longs.dedup();
        assert!(
            subcommands.len() >= 6 && longs.len() >= 25,
            "{subcommands:?} {longs:?}"
        );
        (subcommands, longs)
    }

    #[test]
    fn the_man_page_names_every_command_and_every_long_option() {
        let page = generated(Companion::Man);
        let (subcommands, longs) = definition();
        for sub in subcommands {
            assert!(
                page.contains(&format!(".SS \"sockscope {sub}\"")),
                "no section for {sub}:\n{page}"
            );
        }
        for long in longs {
            // roff writes a hyphen as `\-`.
            let written = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(page.contains(&written), "--{long} is missing:\n{page}");
        }
        assert!(page.contains("\n.TH SOCKSCOPE 1 "), "{page}");
        for value in ["complete\\-bash", "prometheus"] {
            assert!(page.contains(value), "{value}");
        }
    }

    #[test]
    fn every_completion_script_offers_every_command() {
        let (subcommands, _) = definition();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = generated(Companion::Completion(shell));
            for sub in &subcommands {
                assert!(script.contains(sub.as_str()), "{shell:?} lacks {sub}");
            }
            assert!(
                script.contains("fill-warn"),
                "{shell:?} lacks the thresholds"
            );
        }
    }

    /// What to run when a shipped companion differs from the table.
    const REGENERATE: &str = "regenerate it: cargo run -- generate config > assets/sockscope.toml; \
         cargo run -- generate prometheus-rules > assets/prometheus/sockscope.rules.yml";

    #[test]
    fn the_shipped_config_and_rules_are_the_default_output() {
        assert!(
            generated(Companion::Config) == include_str!("../assets/sockscope.toml"),
            "assets/sockscope.toml differs from the thresholds table; {REGENERATE}"
        );
        assert!(
            generated(Companion::PrometheusRules)
                == include_str!("../assets/prometheus/sockscope.rules.yml"),
            "assets/prometheus/sockscope.rules.yml differs from its generator; {REGENERATE}"
        );
    }

    #[test]
    fn the_config_file_reads_back_as_the_settings_it_was_written_with() {
        let defaults = crate::config::parse_config_text("c.toml", &generated(Companion::Config))
            .expect("the default config file parses");
        assert_eq!(defaults, Settings::default());
        let mut settings = Settings::default();
        settings.thresholds.fd_warn = 70.5;
        settings.thresholds.close_wait_warn = 20;
        settings.ignore.ids = vec![FindingId::AcceptQueueHigh];
        settings.ignore.ports = vec![8080];
        settings.ignore.paths = vec!["@odd \"name\"\n".to_owned()];
        let text = config_file(&settings).expect("renders");
        assert!(
            text.contains("# (default: 80.0)\nfd_warn = 70.5\n"),
            "a changed value names its default:\n{text}"
        );
        let back = crate::config::parse_config_text("c.toml", &text).expect("parses");
        assert_eq!(back, settings);
        for row in Thresholds::ROWS {
            assert!(text.contains(&format!("\n{} = ", row.name)), "{}", row.name);
        }
    }

    #[test]
    fn the_rules_carry_the_thresholds_they_are_generated_with() {
        let defaults = prometheus_rules(&Thresholds::DEFAULT);
        for expr in [
            "expr: sockscope_listener_accept_queue > sockscope_listener_backlog\n",
            "expr: sockscope_process_close_wait >= 50\n",
            "sockscope_process_close_wait >= 50\n          and delta(",
            "expr: sockscope_process_fds / sockscope_process_fd_limit >= 0.8\n",
            "expr: sockscope_process_fds / sockscope_process_fd_limit >= 0.95\n",
            "id!~\"accept-queue-full|listen-drops|close-wait-leak|fd-exhaustion|conntrack-full|orphan-pressure\"} > 0",
            "sockscope_kernel_table_limit{table=\"conntrack\"} >= 0.9\n",
        ] {
            assert!(defaults.contains(expr), "{expr}:\n{defaults}");
        }
        let t = Thresholds {
            close_wait_warn: 20,
            fd_warn: 70.0,
            fd_crit: 97.3,
            fill_crit: 120.0,
            conntrack_warn: 80.0,
            ..Thresholds::DEFAULT
        };
        let configured = prometheus_rules(&t);
        for expr in [
            "expr: sockscope_listener_accept_queue > sockscope_listener_backlog * 1.2\n",
            "expr: sockscope_process_close_wait >= 20\n",
            "sockscope_process_close_wait >= 20\n          and delta(",
            ">= 0.7\n",
            ">= 0.973\n",
            "sockscope_kernel_table_limit{table=\"conntrack\"} >= 0.8\n",
        ] {
            assert!(configured.contains(expr), "{expr}:\n{configured}");
        }
        assert!(!configured.contains(">= 50"), "{configured}");
        let words: Vec<&str> = configured.split_whitespace().collect();
        assert!(words.join(" ").contains("past 120 % of its backlog"));
    }

    #[test]
    fn text_wraps_at_spaces_and_keeps_templates_whole() {
        assert_eq!(
            wrap("a {{ $value | printf \"%.0f\" }} b c", 12),
            ["a", "{{ $value | printf \"%.0f\" }}", "b c"]
        );
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
    }
}
