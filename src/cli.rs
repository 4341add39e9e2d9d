//! What the user typed, as clap parsed it: raw values, nothing derived.
//!
//! Validation and defaults live in [`crate::config`], so that a value from a flag and the same
//! value from a config file pass through one check; the threshold flags are made from the rows
//! of [`Thresholds::ROWS`], each with its help and default. Before clap has judged a line, `main` finds
//! its subcommand with [`invoked_subcommand`], which reads clap's own definition.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{
    Arg, ArgAction, ArgMatches, Args, CommandFactory as _, FromArgMatches, Parser, Subcommand,
};

use crate::analyze::thresholds::{Row, Thresholds};

/// Find the listener that is dropping connections and the process that is leaking sockets.
///
/// sockscope reads TCP (IPv4, IPv6) and unix socket state through netlink sock_diag, maps
/// sockets to processes through /proc, reads the kernel's TCP counters and sysctls, and
/// reports findings: what is wrong, where, the evidence and what to do.
/// Run as root for a full process view; without root it says what it could not see.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version, max_term_width = 100)]
#[command(
    after_help = "With no command, sockscope opens the dashboard (`top`) when stdout is a \
terminal, and prints the report otherwise.\n\
Exit codes: 0 success, 1 runtime failure, 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read thresholds from this TOML file (flags given on the command line win).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Scan every network namespace of the host: those named under /run/netns and those of
    /// every process. Needs CAP_SYS_ADMIN; without it, the caller's namespace only.
    #[arg(long, global = true, conflicts_with = "netns")]
    pub all_netns: bool,

    /// Scan this network namespace instead of the caller's: an `ip netns` name, a namespace
    /// file such as /proc/PID/ns/net, or the pid of a process in it.
    #[arg(long, value_name = "NAME|PATH|PID", global = true)]
    pub netns: Option<String>,

    /// Name the destination ports that hold most of each namespace's connection tracking
    /// entries (conntrack-full's evidence): reads /proc/net/nf_conntrack, at most 20,000
    /// entries per namespace, with each full read.
    #[arg(long, global = true)]
    pub conntrack_ports: bool,
    /// Where the owners of sockets are read: `bpf`, a BPF iterator over every process's
    /// descriptors in one pass (root, or CAP_BPF with CAP_PERFMON; a kernel with BTF);
    /// `proc`, one readlink per descriptor under /proc; `auto` (the default), the iterator
    /// where it loads and /proc elsewhere, or where the processes in scope hold few of the
    /// host's descriptors. Config key: `owners`.
    #[arg(long, value_name = "auto|proc|bpf", global = true)]
    pub owners: Option<OwnersArg>,
}

/// `--owners`, and the config key `owners`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnersArg {
    Auto,
    Proc,
    Bpf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Live dashboard: findings, listeners and processes, refreshed every --interval.
    #[command(
        after_help = "Keys: q quit, Tab pane, arrows/jk move, s sort (S reverses), / filter, \
Enter details, K destroy the selected process's CLOSE_WAIT sockets (asks first), p pause, ? help; \
with --replay, left/right step and space plays.\n\
Set NO_COLOR to draw without colours.\nExamples:\n  sockscope top\n  sockscope top --interval 2s\n  \
sockscope top --all-netns   (a netns column; / also filters by namespace)\n  \
sockscope top --replay incident.ndjson"
    )]
    Top(TopArgs),

    /// One-shot report: findings first, then listeners, leaking processes, counters, sysctls.
    ///
    /// Takes --samples snapshots --interval apart; rates (drops per second, counter rates,
    /// CLOSE_WAIT growth) come from the first and the last. With --samples 1 the report is
    /// immediate and every rate is null. With --replay it analyses a recording instead.
    #[command(
        after_help = "Examples:\n  sockscope report\n  sockscope report --json \
--samples 5 --interval 500ms\n  sockscope report --replay incident.ndjson\n  \
sockscope report --format prometheus --output /var/lib/prometheus/node-exporter/sockscope.prom\n  sockscope report \
--close-wait-warn 20 --fd-warn 70"
    )]
    Report(ReportArgs),

    /// Write snapshots to a file as NDJSON, for `report --replay` anywhere later.
    ///
    /// The file starts with a header line; every snapshot is flushed as it is written, so a
    /// recorder that is killed leaves a usable file. Without --count or --duration it records
    /// until interrupted (Ctrl-C).
    #[command(
        after_help = "Examples:\n  sockscope record --output incident.ndjson --count 10\n  \
sockscope record --output day.ndjson --interval 1m --duration 24h"
    )]
    Record(RecordArgs),

    /// Health check for cron, Nagios and Icinga: one status line, perfdata, exit 0/1/2/3.
    ///
    /// Prints `SOCKSCOPE <OK|WARNING|CRITICAL|UNKNOWN> - <summary> | <perfdata>`, then one
    /// line per finding with its remedy. Exit codes follow the monitoring-plugins
    /// conventions: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN — any failure to check, a bad
    /// flag or config included, is UNKNOWN.
    #[command(
        after_help = "Examples:\n  sockscope check\n  sockscope check --close-wait-warn \
100 --fd-crit 98 --ignore comm:java\n  sockscope check --config /etc/sockscope.toml --format json"
    )]
    Check(CheckArgs),

    /// Prometheus exporter: GET /metrics (text format 0.0.4), / and /healthz.
    ///
    /// Listens on 127.0.0.1:9871 by default. Collection is cached for --interval, so
    /// concurrent scrapes do not each walk /proc. Command lines and other process details
    /// beyond pid and comm are never exported.
    #[command(
        after_help = "Examples:\n  sockscope serve\n  sockscope serve --listen \
0.0.0.0:9871 --interval 5s"
    )]
    Serve(ServeArgs),

    /// Write the man page, a shell completion script, the config file or the Prometheus
    /// alerting rules to stdout, made from this very command line's definition and the
    /// table every threshold is defined in.
    ///
    /// Packages run it at build time; by hand: `sockscope generate man > sockscope.1`,
    /// `sockscope generate complete-bash > /usr/share/bash-completion/completions/sockscope`.
    /// The config file and the alerting rules carry the thresholds in effect: the defaults,
    /// or those of the --config file, so that an alert and a finding agree.
    #[command(after_help = "Examples:\n  sockscope generate man | man -l -\n  \
sockscope generate complete-zsh > _sockscope\n  \
sockscope generate complete-fish > ~/.config/fish/completions/sockscope.fish\n  \
sockscope generate config > /etc/sockscope.toml\n  \
sockscope generate prometheus-rules --config /etc/sockscope.toml > /etc/prometheus/sockscope.rules.yml")]
    Generate(GenerateArgs),

    /// Destroy a process's leaked TCP sockets from outside it, without a restart: a dry run
    /// unless --yes.
    ///
    /// Selects the TCP sockets the process holds in --state (default close-wait; any other
    /// state only together with --port or --peer), never a listening socket and never one
    /// it does not hold, and lists them. With --yes the kernel destroys each one by its exact
    /// identity (4-tuple and socket cookie, so a new connection on the same ports is never
    /// hit) through netlink SOCK_DESTROY, as `ss -K` does: the peer gets a reset, the ports
    /// and the sockets' memory are freed, and the process keeps its descriptors, whose next
    /// read or write fails (ECONNABORTED). The leak itself still needs a fix.
    ///
    /// Looks in the process's own network namespace, unless --netns or --all-netns says
    /// otherwise. Destroying needs CAP_NET_ADMIN in that namespace and a kernel built with
    /// CONFIG_INET_DIAG_DESTROY; each destroying run is logged to syslog (/dev/log, facility
    /// authpriv) with the caller's uid, the process and the count.
    #[command(
        after_help = "Exit codes: 0 a dry run, or every selected socket destroyed or already \
gone; 1 an error (no such process, no matching socket, no CAP_NET_ADMIN, no kernel support) or \
a socket that could not be destroyed; 2 usage error.\nExamples:\n  \
sockscope kill --pid 812                         (dry run: list its CLOSE_WAIT sockets)\n  \
sockscope kill --pid 812 --yes                   (destroy them)\n  \
sockscope kill --pid 812 --peer 127.0.0.1 --yes  (only those whose peer is 127.0.0.1)\n  \
sockscope kill --pid 812 --state established --port 8080 --json\n  \
sockscope --netns blue kill --pid 812"
    )]
    Kill(KillArgs),
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The process whose sockets to destroy.
    #[arg(long, value_name = "PID")]
    pub pid: String,

    /// Select sockets in this TCP state: close-wait, established, syn-sent, syn-recv,
    /// fin-wait-1, fin-wait-2, last-ack or closing; anything but close-wait needs --port or
    /// --peer [default: close-wait].
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,

    /// Only sockets whose local or peer port is PORT.
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Only sockets whose peer is ADDR (and PORT, if given): 127.0.0.1, 10.0.0.5:40000,
    /// ::1 or [::1]:40000.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub peer: Option<String>,

    /// Destroy the selected sockets. Without it, kill only lists them.
    #[arg(long)]
    pub yes: bool,

    /// Write the result as JSON (schema sockscope.kill.v1) for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_name = "WHAT")]
    pub what: Generated,
}

/// The companions `sockscope generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// The man page, sockscope(1), in roff.
    Man,
    /// A bash completion script.
    CompleteBash,
    /// A zsh completion script.
    CompleteZsh,
    /// A fish completion script.
    CompleteFish,
    /// The config file, every key with its description: the thresholds in effect (the
    /// defaults, or those of --config) and the --config file's ignore rules.
    Config,
    /// Prometheus alerting rules for `serve`'s metrics, with the thresholds in effect (the
    /// defaults, or those of --config).
    PrometheusRules,
}

#[derive(Debug, Default, Args)]
pub struct ReportArgs {
    /// Output: the text summary, the sockscope.report.v1 JSON document, or the metrics
    /// `serve` exports (Prometheus text format, for node_exporter's textfile collector)
    /// [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json", "prometheus"])]
    pub format: Option<String>,

    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write to this file instead of stdout, atomically: into a temporary file in the same
    /// directory, then renamed over FILE, so a reader (node_exporter) never sees half of it.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub sampling: SampleArgs,

    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Default, Args)]
pub struct TopArgs {
    /// Time between refreshes, such as 500ms, 1s or 2m [default: 1s].
    #[arg(long, value_name = "DUR", conflicts_with = "replay")]
    pub interval: Option<String>,

    /// Step through a recording made by `sockscope record` instead of the live host.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9871].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Minimum time between collections; scrapes in between get the cached result
    /// [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub interval: Option<String>,

    /// Export per-process series for at most this many processes (by socket count), plus
    /// every process named in a finding [default: 100].
    #[arg(long, value_name = "K")]
    pub top_processes: Option<String>,

    #[command(flatten)]
    pub rules: RuleArgs,
}

#[derive(Debug, Default, Args)]
pub struct CheckArgs {
    /// Output: the plugin status line with perfdata and long output, or JSON for scripts.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,

    #[command(flatten)]
    pub sampling: SampleArgs,

    #[command(flatten)]
    pub rules: RuleArgs,
}

/// Where snapshots come from: the live host, sampled, or a recording.
#[derive(Debug, Default, Args)]
pub struct SampleArgs {
    /// Number of snapshots to take [default: 2; with --replay: every snapshot in the file].
    #[arg(long, value_name = "N")]
    pub samples: Option<String>,

    /// Time between snapshots, such as 500ms, 1s or 2m [default: 1s].
    #[arg(long, value_name = "DUR", conflicts_with = "replay")]
    pub interval: Option<String>,

    /// Analyse a recording made by `sockscope record` instead of the live host.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The file to write (created, or appended to if it is already a recording).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    /// Time between snapshots, such as 500ms, 1s or 2m [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub interval: Option<String>,

    /// Stop after this many snapshots.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub count: Option<String>,

    /// Stop after this long, such as 30s or 2h.
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
}

/// The help heading of the threshold and ignore flags, which `generate` renders once for
/// the commands that share them.
pub const RULES_HEADING: &str =
    "Thresholds and ignore rules (defaults in brackets; also in --config)";

/// Thresholds and ignore rules as flags; each threshold overrides the config file's value,
/// ignore rules add to the file's.
///
/// The threshold flags are not written here: one per row of [`Thresholds::ROWS`], named,
/// explained and defaulted by its row, so `--help` cannot drift from the value the rules
/// use. Their values stay text until [`crate::config`] reads them through the same row as a
/// config file's.
#[derive(Debug, Default, Clone)]
pub struct RuleArgs {
    /// Leave out findings matching KIND:VALUE.
    pub ignore: Vec<String>,
    /// The threshold flags given, by their row, as typed.
    pub thresholds: Vec<(&'static Row, String)>,
}

impl Args for RuleArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let before = command.get_next_help_heading().map(str::to_owned);
        let command = command.next_help_heading(RULES_HEADING).arg(
            Arg::new("ignore")
                .long("ignore")
                .value_name("KIND:VALUE")
                .action(ArgAction::Append)
                .help(
                    "Leave out findings matching KIND:VALUE — id:accept-queue-high, \
                     port:8080, path:/run/app.sock, comm:java. Repeatable.",
                ),
        );
        Thresholds::ROWS
            .iter()
            .fold(command, |command, row| {
                command.arg(
                    Arg::new(row.name)
                        .long(row.long())
                        .value_name(row.unit.value_name())
                        .help(row.help_line()),
                )
            })
            .next_help_heading(clap::builder::Resettable::from(
                before.map(clap::builder::Str::from),
            ))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for RuleArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = RuleArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(rules) = matches.get_many::<String>("ignore") {
            self.ignore = rules.cloned().collect();
        }
        for row in Thresholds::ROWS {
            if let Some(text) = matches.get_one::<String>(row.name) {
                self.thresholds.retain(|(given, _)| given.name != row.name);
                self.thresholds.push((row, text.clone()));
            }
        }
        Ok(())
    }
}

/// The subcommand of a command line (`args` without the program name), found even when the
/// line does not parse: the first word that is neither an option nor the value of one.
///
/// `main` needs it before clap has judged the line, because `check` answers its own usage
/// errors in the plugin protocol. The options whose value is the next word are read from
/// clap's definition ([`options_with_a_value`]), so a new one cannot make its value pass
/// for the subcommand.
pub fn invoked_subcommand(args: &[OsString]) -> Option<String> {
    let with_value = options_with_a_value(&Cli::command());
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if with_value.iter().any(|o| *o == arg) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg.into_owned());
        }
    }
    None
}

/// Every spelling (`--long`, `-s` and their aliases) of the options of `command` itself that
/// take their value from the next word. These are the options that can come before the
/// subcommand: the global ones, and any other the top level may gain.
pub fn options_with_a_value(command: &clap::Command) -> Vec<String> {
    let mut command = command.clone();
    // Fills in what the definition leaves implicit, such as how many values an option takes.
    command.build();
    let mut spellings = Vec::new();
    for arg in command.get_arguments() {
        let next_word_is_its_value = !arg.is_positional()
            && !arg.is_require_equals_set()
            && arg
                .get_num_args()
                .is_some_and(|values| values.min_values() > 0);
        if !next_word_is_its_value {
            continue;
        }
        let longs = arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().unwrap_or_default());
        spellings.extend(longs.map(|long| format!("--{long}")));
        let shorts = arg
            .get_short()
            .into_iter()
            .chain(arg.get_all_short_aliases().unwrap_or_default());
        spellings.extend(shorts.map(|short| format!("-{short}")));
    }
    spellings
}

/// Whether the command line asks for `--format json`, read even when it does not parse, so
/// that a script gets `check`'s UNKNOWN as JSON too.
pub fn asks_for_json(args: &[OsString]) -> bool {
    let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ArgAction;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_threshold_is_a_flag_of_every_judging_command_showing_its_default() {
        let command = Cli::command();
        for name in ["report", "check", "top", "serve"] {
            let sub = command.find_subcommand(name).expect("a subcommand");
            for row in Thresholds::ROWS {
                let arg = sub
                    .get_arguments()
                    .find(|a| a.get_id() == row.name)
                    .unwrap_or_else(|| {
                        panic!("`{name}` has no flag for the threshold {}", row.name)
                    });
                assert_eq!(arg.get_long().map(|l| format!("--{l}")), Some(row.flag()));
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(
                    help.starts_with(row.finding.name())
                        && help.ends_with(&format!(" [{}]", row.default_value())),
                    "`{name} {}`: {help:?}",
                    row.flag()
                );
                assert_eq!(arg.get_help_heading(), Some(RULES_HEADING));
            }
            let flags = sub
                .get_arguments()
                .filter(|a| a.get_help_heading() == Some(RULES_HEADING) && a.get_id() != "ignore");
            for arg in flags {
                assert!(
                    Thresholds::row(arg.get_id().as_str()).is_some(),
                    "`{name}`: {} is under the thresholds heading but is no threshold",
                    arg.get_id()
                );
            }
            // The heading ends with the rules: the options clap adds after them have none.
            let help = sub.get_arguments().find(|a| a.get_id() == "help");
            assert_eq!(help.and_then(clap::Arg::get_help_heading), None);
        }
    }

    #[test]
    fn threshold_flags_arrive_as_typed_by_their_row() {
        let cli = Cli::try_parse_from([
            "sockscope",
            "check",
            "--fd-warn",
            "70",
            "--close-wait-warn",
            "x",
            "--ignore",
            "port:80",
            "--ignore",
            "comm:java",
        ])
        .expect("parses");
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check")
        };
        let given: Vec<(&str, &str)> = args
            .rules
            .thresholds
            .iter()
            .map(|(row, text)| (row.name, text.as_str()))
            .collect();
        assert_eq!(given, [("close_wait_warn", "x"), ("fd_warn", "70")]);
        assert_eq!(args.rules.ignore, ["port:80", "comm:java"]);
    }

    #[test]
    fn the_options_with_a_value_come_from_clap() {
        assert_eq!(
            options_with_a_value(&Cli::command()),
            ["--config", "--netns", "--owners"]
        );
        let command = clap::Command::new("x")
            .arg(
                clap::Arg::new("flag")
                    .long("flag")
                    .action(ArgAction::SetTrue),
            )
            .arg(clap::Arg::new("one").long("one").short('o').alias("uno"))
            .arg(
                clap::Arg::new("many")
                    .long("many")
                    .action(ArgAction::Append)
                    .short_alias('m'),
            )
            .arg(clap::Arg::new("eq").long("eq").require_equals(true))
            .arg(clap::Arg::new("positional"));
        assert_eq!(
            options_with_a_value(&command),
            ["--one", "--uno", "-o", "--many", "-m"]
        );
    }

    /// For every option of the top level, with and without `=`, before every subcommand:
    /// the pre-parse finds the subcommand clap finds, even when the option's value is the
    /// name of another subcommand.
    #[test]
    fn the_subcommand_is_found_past_every_top_level_option() {
        let mut command = Cli::command();
        command.build();
        let subcommands: [&[&str]; 5] = [
            &["report"],
            &["check"],
            &["top"],
            &["serve"],
            &["record", "--output", "x"],
        ];
        let mut tried = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            ) {
                continue;
            }
            let long = format!("--{long}");
            // A subcommand's name as the value, where the option takes any (not `--owners`).
            let value = arg
                .get_possible_values()
                .first()
                .map_or("check".to_owned(), |v| v.get_name().to_owned());
            let spellings: Vec<Vec<String>> = if arg.get_action().takes_values() {
                vec![
                    vec![long.clone(), value.clone()],
                    vec![format!("{long}={value}")],
                ]
            } else {
                vec![vec![long]]
            };
            for before in &spellings {
                for sub in subcommands {
                    let line: Vec<&str> = before
                        .iter()
                        .map(String::as_str)
                        .chain(sub.iter().copied())
                        .collect();
                    let matches = Cli::command()
                        .try_get_matches_from(std::iter::once("sockscope").chain(line.clone()))
                        .unwrap_or_else(|e| panic!("clap rejects {line:?}: {e}"));
                    assert_eq!(
                        invoked_subcommand(&words(&line)).as_deref(),
                        matches.subcommand_name(),
                        "{line:?}"
                    );
                    tried += 1;
                }
            }
        }
        assert!(tried >= 25, "the top level lost its options: {tried} lines");
    }

    #[test]
    fn the_subcommand_is_found_in_a_line_that_does_not_parse() {
        let found = |line: &[&str]| invoked_subcommand(&words(line));
        assert_eq!(
            found(&["--netns", "check", "report"]).as_deref(),
            Some("report")
        );
        assert_eq!(
            found(&["--config", "c.toml", "check", "--bogus"]).as_deref(),
            Some("check")
        );
        assert_eq!(
            found(&["--all-netns", "check", "--fd-warn"]).as_deref(),
            Some("check")
        );
        assert_eq!(found(&["--nope", "check"]).as_deref(), Some("check"));
        assert_eq!(found(&["--netns"]), None);
        assert_eq!(found(&[]), None);
    }

    #[test]
    fn json_is_asked_for_in_both_spellings() {
        assert!(asks_for_json(&words(&[
            "check", "--format", "json", "--bogus"
        ])));
        assert!(asks_for_json(&words(&[
            "check",
            "--bogus",
            "--format=json"
        ])));
        assert!(!asks_for_json(&words(&["check", "--format", "text"])));
        assert!(!asks_for_json(&words(&["check", "--format"])));
    }
}
