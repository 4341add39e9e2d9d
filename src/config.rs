//! Validated settings derived from the command line and the config file: what the faces run
//! with.
//!
//! [`Config::build`] is the single place raw input is checked; the faces never see clap
//! types, and every rejection is one sentence naming the bad value and what would be good.
//! Precedence: a flag beats the config file, which beats the built-in default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::analyze::thresholds::Raw;
use crate::analyze::{Ignore, Settings, Thresholds, UnknownFindingId};
use crate::cli::{
    CheckArgs, Cli, Command, Generated, KillArgs, RecordArgs, ReportArgs, RuleArgs, SampleArgs,
    ServeArgs, TopArgs,
};
use crate::collect::{CollectOptions, NetnsScope, Owners};
use crate::model::TcpState;
use crate::model::kill::{KillFilter, PeerFilter};

pub const DEFAULT_SAMPLES: usize = 2;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// More samples than this is a recording, not a report.
const MAX_SAMPLES: usize = 10_000;

/// What to run, the settings every face judges with, and what a live face collects.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub settings: Settings,
    pub face: Face,
    pub collect: CollectOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Face {
    Top(TopConfig),
    Report(ReportConfig),
    Check(CheckConfig),
    Record(RecordConfig),
    Serve(ServeConfig),
    /// `sockscope generate`: a companion made from the command line's definition.
    Generate(Companion),
    Kill(KillConfig),
}

/// `sockscope kill`: which sockets, and whether to destroy them or only list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillConfig {
    pub filter: KillFilter,
    /// `--yes`: destroy; otherwise a dry run.
    pub yes: bool,
    pub json: bool,
}

/// What `sockscope generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Companion {
    Man,
    Completion(Shell),
    /// The config file, every key documented, with the settings in effect.
    Config,
    /// The Prometheus alerting rules, with the thresholds in effect.
    PrometheusRules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The dashboard refreshes from the live host, or steps through a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopConfig {
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: std::net::SocketAddr,
    pub interval: Duration,
    pub top_processes: usize,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9871";
pub const DEFAULT_TOP_PROCESSES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    pub json: bool,
    pub source: Source,
    pub samples: Samples,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub format: ReportFormat,
    /// Where to write: stdout, or this file, replaced atomically.
    pub output: Option<PathBuf>,
    pub source: Source,
    pub samples: Samples,
}

/// What `report` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportFormat {
    #[default]
    Text,
    /// The `sockscope.report.v1` document.
    Json,
    /// The exposition `serve` writes, for node_exporter's textfile collector.
    Prometheus,
}

/// Where a face's snapshots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The live host, a snapshot every `interval`.
    Live { interval: Duration },
    /// A recording, at the pace it was recorded.
    Replay { path: PathBuf },
}

/// How many snapshots a one-shot face (`report`, `check`) judges together: live, how many
/// to take; from a recording, how many of its newest (`All`: the whole recording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Samples {
    Count(usize),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub output: PathBuf,
    pub interval: Duration,
    pub stop: Stop,
}

/// When a recorder stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Count(usize),
    After(Duration),
    Interrupted,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid {flag} {value:?}: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read config {path}: {reason}; pass a readable TOML file to --config")]
    Unreadable { path: String, reason: String },
    #[error("config {path}:{line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
    /// A threshold flag whose value its row does not admit.
    #[error("invalid {flag} {value:?}: {reason}")]
    Threshold {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("thresholds: {0}")]
    Thresholds(String),
}

/// The config file: `[thresholds]` with the same names as the flags in snake_case, and
/// `[ignore]` with lists of `ids`, `ports`, `paths`, `comms`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Where the owners of sockets are read, as `--owners` (which wins).
    #[serde(default)]
    owners: Option<crate::cli::OwnersArg>,
    #[serde(default)]
    thresholds: Thresholds,
    #[serde(default)]
    ignore: Ignore,
}

impl Config {
    /// Validate what the user typed. With no command, sockscope opens the dashboard when
    /// stdout is a terminal (`stdout_is_terminal`) and prints the text report otherwise.
    pub fn build(cli: Cli, stdout_is_terminal: bool) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let (face, flags) = match cli.command {
            Some(Command::Record(args)) => (Face::Record(record(&args)?), RuleArgs::default()),
            Some(Command::Report(args)) => (Face::Report(report(&args)?), args.rules),
            Some(Command::Generate(args)) => (
                Face::Generate(match args.what {
                    Generated::Man => Companion::Man,
                    Generated::CompleteBash => Companion::Completion(Shell::Bash),
                    Generated::CompleteZsh => Companion::Completion(Shell::Zsh),
                    Generated::CompleteFish => Companion::Completion(Shell::Fish),
                    Generated::Config => Companion::Config,
                    Generated::PrometheusRules => Companion::PrometheusRules,
                }),
                RuleArgs::default(),
            ),
            Some(Command::Check(args)) => (Face::Check(check(&args)?), args.rules),
            Some(Command::Top(args)) => (Face::Top(top(&args)?), args.rules),
            Some(Command::Serve(args)) => (Face::Serve(serve(&args)?), args.rules),
            Some(Command::Kill(args)) => (Face::Kill(kill(&args)?), RuleArgs::default()),
            None if stdout_is_terminal => {
                (Face::Top(top(&TopArgs::default())?), RuleArgs::default())
            }
            None => {
                let (source, samples) = sampled_source(&SampleArgs::default())?;
                (
                    Face::Report(ReportConfig {
                        format: ReportFormat::Text,
                        output: None,
                        source,
                        samples,
                    }),
                    RuleArgs::default(),
                )
            }
        };
        let thresholds = apply(file.thresholds, &flags)?;
        thresholds.validate().map_err(ConfigError::Thresholds)?;
        let mut ignore = file.ignore;
        for rule in &flags.ignore {
            add_ignore(&mut ignore, rule)?;
        }
        let collect = CollectOptions {
            netns: netns_scope(cli.all_netns, cli.netns.as_deref(), &face)?,
            conntrack_ports: cli.conntrack_ports,
            owners: match cli.owners.or(file.owners) {
                None | Some(crate::cli::OwnersArg::Auto) => Owners::Auto,
                Some(crate::cli::OwnersArg::Proc) => Owners::Proc,
                Some(crate::cli::OwnersArg::Bpf) => Owners::Bpf,
            },
            ..CollectOptions::default()
        };
        Ok(Config {
            settings: Settings { thresholds, ignore },
            face,
            collect,
        })
    }
}

/// `--all-netns` or `--netns`, for a face that reads the live host.
fn netns_scope(all: bool, one: Option<&str>, face: &Face) -> Result<NetnsScope, ConfigError> {
    let (flag, value, scope) = match (all, one) {
        (_, Some(spec)) => ("--netns", spec, NetnsScope::One(spec.to_owned())),
        (true, None) => ("--all-netns", "", NetnsScope::All),
        (false, None) => return Ok(NetnsScope::Own),
    };
    let bad = |reason: &str| ConfigError::Value {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    if value.is_empty() && flag == "--netns" {
        return Err(bad("name a namespace: an `ip netns` name, a path or a pid"));
    }
    let replay = match face {
        Face::Report(ReportConfig { source, .. })
        | Face::Check(CheckConfig { source, .. })
        | Face::Top(TopConfig { source }) => matches!(source, Source::Replay { .. }),
        Face::Record(_) | Face::Serve(_) | Face::Generate(_) | Face::Kill(_) => false,
    };
    if replay {
        return Err(bad(
            "it chooses what to read on the live host; a recording holds the namespaces it \
             was recorded with, so drop it or --replay",
        ));
    }
    Ok(scope)
}

fn top(args: &TopArgs) -> Result<TopConfig, ConfigError> {
    let source = match &args.replay {
        Some(path) => Source::Replay { path: path.clone() },
        None => Source::Live {
            interval: parse_interval("--interval", args.interval.as_deref())?,
        },
    };
    Ok(TopConfig { source })
}

fn serve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let raw = args.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = raw.parse().map_err(|_| ConfigError::Value {
        flag: "--listen",
        value: raw.to_owned(),
        reason: "write an address and port such as 127.0.0.1:9871 or [::1]:9871".to_owned(),
    })?;
    let top_processes = match args.top_processes.as_deref() {
        Some(k) => parse_count("--top-processes", k)?,
        None => DEFAULT_TOP_PROCESSES,
    };
    Ok(ServeConfig {
        listen,
        interval: parse_interval("--interval", args.interval.as_deref())?,
        top_processes,
    })
}

fn report(args: &ReportArgs) -> Result<ReportConfig, ConfigError> {
    let (source, samples) = sampled_source(&args.sampling)?;
    // clap admits only these values, and --json only without --format.
    let format = match (args.json, args.format.as_deref()) {
        (true, _) | (false, Some("json")) => ReportFormat::Json,
        (false, Some("prometheus")) => ReportFormat::Prometheus,
        (false, _) => ReportFormat::Text,
    };
    if let Some(path) = &args.output
        && path.file_name().is_none()
    {
        return Err(ConfigError::Value {
            flag: "--output",
            value: path.display().to_string(),
            reason: "name a file, such as /var/lib/prometheus/node-exporter/sockscope.prom"
                .to_owned(),
        });
    }
    Ok(ReportConfig {
        format,
        output: args.output.clone(),
        source,
        samples,
    })
}

/// The states `kill --state` names, as typed (case and `_`/`-` aside).
const KILL_STATES: [(&str, TcpState); 8] = [
    ("close-wait", TcpState::CloseWait),
    ("established", TcpState::Established),
    ("syn-sent", TcpState::SynSent),
    ("syn-recv", TcpState::SynRecv),
    ("fin-wait-1", TcpState::FinWait1),
    ("fin-wait-2", TcpState::FinWait2),
    ("last-ack", TcpState::LastAck),
    ("closing", TcpState::Closing),
];

fn kill(args: &KillArgs) -> Result<KillConfig, ConfigError> {
    let bad = |flag: &'static str, value: &str, reason: &str| ConfigError::Value {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let pid = match args.pid.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => pid,
        _ => return Err(bad("--pid", &args.pid, "a pid is a whole number from 1")),
    };
    let state = match args.state.as_deref() {
        None => TcpState::CloseWait,
        Some(raw) => kill_state(raw).map_err(|reason| bad("--state", raw, &reason))?,
    };
    let port = args
        .port
        .as_deref()
        .map(|raw| match raw.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(bad("--port", raw, "a port is a number from 1 to 65535")),
        })
        .transpose()?;
    let peer = args
        .peer
        .as_deref()
        .map(|raw| {
            parse_peer(raw).ok_or_else(|| {
                bad(
                    "--peer",
                    raw,
                    "write an address, optionally with a port: 127.0.0.1, 10.0.0.5:40000, \
                     ::1 or [::1]:40000",
                )
            })
        })
        .transpose()?;
    if state != TcpState::CloseWait && port.is_none() && peer.is_none() {
        return Err(bad(
            "--state",
            args.state.as_deref().unwrap_or_default(),
            "a state other than close-wait needs --port or --peer too, so that a live \
             service's connections are never destroyed wholesale",
        ));
    }
    Ok(KillConfig {
        filter: KillFilter {
            pid,
            states: vec![state],
            port,
            peer,
        },
        yes: args.yes,
        json: args.json,
    })
}

fn kill_state(raw: &str) -> Result<TcpState, String> {
    let key = raw.trim().to_ascii_lowercase().replace('_', "-");
    let key = match key.as_str() {
        "fin-wait1" => "fin-wait-1",
        "fin-wait2" => "fin-wait-2",
        other => other,
    };
    if let Some((_, state)) = KILL_STATES.iter().find(|(name, _)| *name == key) {
        return Ok(*state);
    }
    Err(match key {
        "listen" | "listening" => "a listening socket is never destroyed: that would stop the \
             service; restart it instead"
            .to_owned(),
        "time-wait" | "close" => {
            "sockets in that state belong to no process; the kernel frees them itself".to_owned()
        }
        _ => {
            let names: Vec<&str> = KILL_STATES.iter().map(|(name, _)| *name).collect();
            format!("one of {}", names.join(", "))
        }
    })
}

/// `127.0.0.1`, `10.0.0.5:40000`, `::1`, `[::1]:40000`.
fn parse_peer(raw: &str) -> Option<PeerFilter> {
    let raw = raw.trim();
    if let Ok(ip) = raw.parse::<std::net::IpAddr>() {
        return Some(PeerFilter { ip, port: None });
    }
    if let Some(ip) = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
    {
        return Some(PeerFilter { ip, port: None });
    }
    let addr = raw.parse::<std::net::SocketAddr>().ok()?;
    Some(PeerFilter {
        ip: addr.ip(),
        port: Some(addr.port()),
    })
}

fn check(args: &CheckArgs) -> Result<CheckConfig, ConfigError> {
    let (source, samples) = sampled_source(&args.sampling)?;
    Ok(CheckConfig {
        json: args.format == "json",
        source,
        samples,
    })
}

/// The source of a one-shot face and how many snapshots it judges: live, `--samples`
/// (default 2); from a recording, its newest `--samples` (default all).
fn sampled_source(args: &SampleArgs) -> Result<(Source, Samples), ConfigError> {
    let samples = args.samples.as_deref().map(parse_samples).transpose()?;
    Ok(match &args.replay {
        Some(path) => (
            Source::Replay { path: path.clone() },
            samples.map_or(Samples::All, Samples::Count),
        ),
        None => (
            Source::Live {
                interval: parse_interval("--interval", args.interval.as_deref())?,
            },
            Samples::Count(samples.unwrap_or(DEFAULT_SAMPLES)),
        ),
    })
}

/// `id:accept-queue-high`, `port:8080`, `path:/run/app.sock`, `comm:java`.
fn add_ignore(ignore: &mut Ignore, rule: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Value {
        flag: "--ignore",
        value: rule.to_owned(),
        reason: reason.to_owned(),
    };
    let (kind, value) = rule
        .split_once(':')
        .ok_or_else(|| bad("write KIND:VALUE with KIND one of id, port, path, comm"))?;
    if value.is_empty() {
        return Err(bad("the value after the colon is empty"));
    }
    match kind {
        "id" => ignore.ids.push(
            value
                .parse()
                .map_err(|e: UnknownFindingId| bad(&e.to_string()))?,
        ),
        "port" => ignore.ports.push(
            value
                .parse()
                .map_err(|_| bad("a port is a number from 0 to 65535"))?,
        ),
        "path" => ignore.paths.push(value.to_owned()),
        "comm" => ignore.comms.push(value.to_owned()),
        _ => return Err(bad("KIND must be one of id, port, path, comm")),
    }
    Ok(())
}

fn record(args: &RecordArgs) -> Result<RecordConfig, ConfigError> {
    let stop = match (&args.count, &args.duration) {
        (Some(n), _) => Stop::Count(parse_count("--count", n)?),
        (None, Some(d)) => Stop::After(parse_duration(d).map_err(|reason| ConfigError::Value {
            flag: "--duration",
            value: d.clone(),
            reason: format!("{reason}; write a duration such as 30s, 10m or 2h"),
        })?),
        (None, None) => Stop::Interrupted,
    };
    Ok(RecordConfig {
        output: args.output.clone(),
        interval: parse_interval("--interval", args.interval.as_deref())?,
        stop,
    })
}

/// Flags win over the file: each read by its row, as the file's keys are.
fn apply(mut t: Thresholds, flags: &RuleArgs) -> Result<Thresholds, ConfigError> {
    for (row, text) in &flags.thresholds {
        row.set(&mut t, Raw::Text(text))
            .map_err(|reason| ConfigError::Threshold {
                flag: row.flag(),
                value: text.clone(),
                reason,
            })?;
    }
    Ok(t)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    parse_file(&shown, &text)
}

/// The settings a config file's text gives, as `--config` reads it with no flag on top:
/// the TOML parsed, its thresholds validated. `shown` names the file in errors.
pub fn parse_config_text(shown: &str, text: &str) -> Result<Settings, ConfigError> {
    let file = parse_file(shown, text)?;
    file.thresholds
        .validate()
        .map_err(ConfigError::Thresholds)?;
    Ok(Settings {
        thresholds: file.thresholds,
        ignore: file.ignore,
    })
}

fn parse_file(shown: &str, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| {
            text.get(..span.start)
                .map_or(1, |before| before.matches('\n').count() + 1)
        });
        ConfigError::Syntax {
            path: shown.to_owned(),
            line,
            reason: e.message().replace('\n', " ").trim().to_owned(),
        }
    })
}

fn parse_count(flag: &'static str, value: &str) -> Result<usize, ConfigError> {
    let bad = |reason: &str| ConfigError::Value {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    match value.trim().parse::<usize>() {
        Err(_) => Err(bad("expected a whole number such as 1 or 5")),
        Ok(0) => Err(bad("it must be at least 1")),
        Ok(n) => Ok(n),
    }
}

fn parse_samples(value: &str) -> Result<usize, ConfigError> {
    let n = parse_count("--samples", value).map_err(|e| match e {
        ConfigError::Value {
            flag,
            value,
            reason,
        } if reason.contains("at least") => ConfigError::Value {
            flag,
            value,
            reason: "take at least 1 sample (rates need 2)".into(),
        },
        other => other,
    })?;
    if n > MAX_SAMPLES {
        return Err(ConfigError::Value {
            flag: "--samples",
            value: value.to_owned(),
            reason: format!("at most {MAX_SAMPLES}; use `sockscope record` for long captures"),
        });
    }
    Ok(n)
}

/// Parse a duration such as `500ms`, `1s`, `2m`; zero is rejected.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("it must be longer than zero".to_owned());
    }
    Ok(d)
}

fn parse_interval(flag: &'static str, raw: Option<&str>) -> Result<Duration, ConfigError> {
    raw.map_or(Ok(DEFAULT_INTERVAL), |value| {
        parse_duration(value).map_err(|reason| ConfigError::Value {
            flag,
            value: value.to_owned(),
            reason: format!("{reason}; write a duration such as 500ms, 1s or 2m"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn build(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("sockscope").chain(args.iter().copied()))
            .expect("clap accepts the arguments");
        Config::build(cli, false)
    }

    /// How far apart a live report's samples are.
    struct Sampling {
        interval: Duration,
    }

    fn sampling(args: &[&str]) -> Sampling {
        match build(args).expect("valid").face {
            Face::Report(ReportConfig {
                source: Source::Live { interval },
                ..
            }) => Sampling { interval },
            other => panic!("not a live report: {other:?}"),
        }
    }

    #[test]
    fn no_command_is_a_live_report_with_defaults() {
        let config = build(&[]).expect("valid");
        assert_eq!(config.settings, Settings::default());
        assert_eq!(
            config.face,
            Face::Report(ReportConfig {
                format: ReportFormat::Text,
                output: None,
                source: Source::Live {
                    interval: Duration::from_secs(1)
                },
                samples: Samples::Count(2),
            })
        );
    }

    #[test]
    fn no_command_on_a_terminal_is_the_dashboard() {
        let cli = Cli::try_parse_from(["sockscope"]).expect("clap accepts it");
        let config = Config::build(cli, true).expect("valid");
        assert_eq!(
            config.face,
            Face::Top(TopConfig {
                source: Source::Live {
                    interval: Duration::from_secs(1)
                }
            })
        );
        let cli = Cli::try_parse_from(["sockscope", "top", "--replay", "r.ndjson"])
            .expect("clap accepts it");
        let face = Config::build(cli, false).expect("valid").face;
        assert_eq!(
            face,
            Face::Top(TopConfig {
                source: Source::Replay {
                    path: PathBuf::from("r.ndjson")
                }
            })
        );
    }

    #[test]
    fn durations_in_the_documented_forms() {
        assert_eq!(
            sampling(&["report", "--interval", "500ms"]).interval,
            Duration::from_millis(500)
        );
        assert_eq!(
            sampling(&["report", "--interval", "2s"]).interval,
            Duration::from_secs(2)
        );
        assert_eq!(
            sampling(&["report", "--interval", "2m"]).interval,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_fix() {
        let err = build(&["report", "--interval", "banana"])
            .expect_err("rejected")
            .to_string();
        assert!(
            err.contains("--interval \"banana\"") && err.contains("500ms"),
            "{err}"
        );
        let err = build(&["report", "--interval", "0s"])
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("longer than zero"), "{err}");
        let err = build(&["report", "--samples", "0"])
            .expect_err("rejected")
            .to_string();
        assert!(
            err.contains("--samples \"0\"") && err.contains("at least 1"),
            "{err}"
        );
        let err = build(&["report", "--samples", "two"])
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("whole number"), "{err}");
        let err = build(&["record", "-o", "x", "--count", "0"])
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("--count \"0\""), "{err}");
        let err = build(&["report", "--fd-warn", "99"])
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("fd_warn (99) is above fd_crit (95)"), "{err}");
        let err = build(&["check", "--fd-warn", "x"])
            .expect_err("rejected")
            .to_string();
        assert_eq!(
            err,
            "invalid --fd-warn \"x\": not a number; write a percentage from 0 to 1000, \
             such as 80 or 95.5"
        );
        let err = build(&["check", "--close-wait-warn", "0"])
            .expect_err("rejected")
            .to_string();
        assert!(
            err.starts_with("invalid --close-wait-warn \"0\": zero;"),
            "{err}"
        );
    }

    #[test]
    fn serve_defaults_to_loopback_and_takes_ipv6() {
        let serve = |args: &[&str]| match build(args).expect("valid").face {
            Face::Serve(s) => s,
            other => panic!("not serve: {other:?}"),
        };
        assert_eq!(
            serve(&["serve"]),
            ServeConfig {
                listen: "127.0.0.1:9871".parse().expect("an address"),
                interval: Duration::from_secs(1),
                top_processes: 100,
            }
        );
        let s = serve(&["serve", "--listen", "[::1]:9100", "--top-processes", "5"]);
        assert_eq!(
            (s.listen.to_string().as_str(), s.top_processes),
            ("[::1]:9100", 5)
        );
        let err = build(&["serve", "--listen", "9871"])
            .expect_err("no address")
            .to_string();
        assert!(err.contains("127.0.0.1:9871"), "{err}");
    }

    #[test]
    fn report_formats_and_the_json_synonym() {
        let report = |args: &[&str]| match build(args).expect("valid").face {
            Face::Report(r) => r,
            other => panic!("not a report: {other:?}"),
        };
        assert_eq!(report(&["report"]).format, ReportFormat::Text);
        assert_eq!(report(&["report", "--json"]).format, ReportFormat::Json);
        assert_eq!(
            report(&["report", "--format", "json"]).format,
            ReportFormat::Json
        );
        let prom = report(&["report", "--format", "prometheus", "-o", "/tmp/s.prom"]);
        assert_eq!(prom.format, ReportFormat::Prometheus);
        assert_eq!(prom.output, Some(PathBuf::from("/tmp/s.prom")));
        let err = build(&["report", "--output", "/"]).expect_err("no file name");
        assert!(err.to_string().contains("--output"), "{err}");
    }

    #[test]
    fn generate_takes_each_companion() {
        for (what, companion) in [
            ("man", Companion::Man),
            ("complete-bash", Companion::Completion(Shell::Bash)),
            ("complete-zsh", Companion::Completion(Shell::Zsh)),
            ("complete-fish", Companion::Completion(Shell::Fish)),
            ("config", Companion::Config),
            ("prometheus-rules", Companion::PrometheusRules),
        ] {
            assert_eq!(
                build(&["generate", what]).expect("valid").face,
                Face::Generate(companion)
            );
        }
    }

    #[test]
    fn replay_takes_every_snapshot_unless_told() {
        let face = build(&["report", "--replay", "r.ndjson"])
            .expect("valid")
            .face;
        let Face::Report(ReportConfig {
            source: Source::Replay { .. },
            samples,
            ..
        }) = face
        else {
            panic!("not a replay: {face:?}");
        };
        assert_eq!(samples, Samples::All);
    }

    #[test]
    fn the_file_sets_thresholds_and_flags_win() {
        let file = parse_file(
            "c.toml",
            "[thresholds]\nfd_warn = 60\nclose_wait_warn = 10\n",
        )
        .expect("parses");
        let flags = RuleArgs {
            thresholds: vec![(
                Thresholds::row("close_wait_warn").expect("a row"),
                "20".to_owned(),
            )],
            ..RuleArgs::default()
        };
        let t = apply(file.thresholds, &flags).expect("valid");
        assert_eq!((t.fd_warn, t.close_wait_warn, t.fd_crit), (60.0, 20, 95.0));
        let config =
            build(&["report", "--fd-warn", "70", "--close-wait-crit", "600"]).expect("valid");
        let t = config.settings.thresholds;
        assert_eq!((t.fd_warn, t.close_wait_crit), (70.0, 600));
    }

    #[test]
    fn ignore_rules_from_flags_add_to_the_file() {
        let mut ignore = parse_file("c.toml", "[ignore]\nids = [\"accept-queue-high\"]\n")
            .expect("parses")
            .ignore;
        for rule in ["port:8080", "comm:java", "path:@abstract"] {
            add_ignore(&mut ignore, rule).expect("valid");
        }
        assert_eq!(ignore.ids, ["accept-queue-high"]);
        assert_eq!(
            (ignore.ports.as_slice(), ignore.comms.as_slice()),
            (&[8080][..], &["java".to_owned()][..])
        );
        assert_eq!(ignore.paths, ["@abstract"]);
        for bad in ["8080", "port:http", "user:root", "comm:"] {
            assert!(add_ignore(&mut ignore, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_example_config_documents_the_defaults() {
        let example = parse_file("sockscope.toml", include_str!("../assets/sockscope.toml"))
            .expect("the example config parses");
        assert_eq!(example.thresholds, Thresholds::default());
        assert!(example.ignore.is_empty());
    }

    #[test]
    fn config_text_gives_validated_settings() {
        let settings = parse_config_text("c.toml", "[thresholds]\nfd_warn = 60\n").expect("ok");
        assert!((settings.thresholds.fd_warn - 60.0).abs() < f64::EPSILON);
        let err = parse_config_text("c.toml", "[thresholds]\nfd_warn = 99\nfd_crit = 90\n")
            .expect_err("warning above critical");
        assert!(matches!(err, ConfigError::Thresholds(_)), "{err}");
    }

    #[test]
    fn file_errors_name_the_line() {
        let err = parse_file("c.toml", "[thresholds]\nfd_warn = 60\nfill_warm = 1\n")
            .expect_err("unknown key");
        let text = err.to_string();
        assert!(
            text.starts_with("config c.toml:3: unknown field `fill_warm`"),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
        let err = parse_file(
            "c.toml",
            "[thresholds]\nfd_warn = 60\n\nfd_crit = \"high\"\n",
        )
        .expect_err("not a number");
        assert_eq!(
            err.to_string(),
            "config c.toml:4: fd_crit: not a number; write a percentage from 0 to 1000, such \
             as 80 or 95.5"
        );
        let err = parse_file("c.toml", "[thresholds\n").expect_err("syntax");
        assert!(err.to_string().starts_with("config c.toml:1:"), "{err}");
        let err = read_file(Path::new("/nonexistent/c.toml")).expect_err("missing");
        assert!(
            err.to_string()
                .contains("cannot read config /nonexistent/c.toml"),
            "{err}"
        );
    }

    #[test]
    fn netns_flags_reach_the_collector_for_every_live_face() {
        for face in [
            &["report"][..],
            &["check"],
            &["top"],
            &["serve"],
            &["record", "-o", "x"],
        ] {
            let own = build(face).expect("valid");
            assert_eq!(own.collect.netns, NetnsScope::Own, "{face:?}");
            let all = build(&[face, &["--all-netns"]].concat()).expect("valid");
            assert_eq!(all.collect.netns, NetnsScope::All, "{face:?}");
            let one = build(&[&["--netns", "blue"][..], face].concat()).expect("valid");
            assert_eq!(
                one.collect.netns,
                NetnsScope::One("blue".into()),
                "{face:?}"
            );
        }
    }

    #[test]
    fn kill_defaults_to_close_wait_and_guards_other_states() {
        let kill = |args: &[&str]| match build(&[&["kill"][..], args].concat()) {
            Ok(Config {
                face: Face::Kill(k),
                ..
            }) => Ok(k),
            Ok(other) => panic!("not kill: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let k = kill(&["--pid", "812"]).expect("valid");
        assert_eq!(k.filter.states, [TcpState::CloseWait]);
        assert!(!k.yes && !k.json);
        let k = kill(&[
            "--pid",
            "812",
            "--state",
            "ESTABLISHED",
            "--peer",
            "[::1]:40000",
        ])
        .expect("valid");
        assert_eq!(k.filter.states, [TcpState::Established]);
        assert_eq!(
            k.filter.peer,
            Some(PeerFilter {
                ip: "::1".parse().expect("ip"),
                port: Some(40000)
            })
        );
        let k = kill(&[
            "--pid",
            "1",
            "--state",
            "fin_wait2",
            "--port",
            "80",
            "--yes",
        ])
        .expect("valid");
        assert_eq!(
            (k.filter.states[0], k.filter.port, k.yes),
            (TcpState::FinWait2, Some(80), true)
        );
        for (args, says) in [
            (&["--pid", "0"][..], "--pid"),
            (&["--pid", "812", "--state", "listen"], "never destroyed"),
            (&["--pid", "812", "--state", "time-wait"], "no process"),
            (
                &["--pid", "812", "--state", "established"],
                "--port or --peer",
            ),
            (&["--pid", "812", "--state", "bogus"], "one of close-wait"),
            (&["--pid", "812", "--port", "0"], "1 to 65535"),
            (&["--pid", "812", "--peer", "localhost"], "[::1]:40000"),
        ] {
            let err = kill(args).expect_err("rejected");
            assert!(err.contains(says), "{args:?}: {err}");
        }
        let scoped = build(&["--netns", "blue", "kill", "--pid", "812"]).expect("valid");
        assert_eq!(scoped.collect.netns, NetnsScope::One("blue".into()));
    }

    #[test]
    fn netns_flags_conflict_and_do_not_mix_with_a_recording() {
        let err = Cli::try_parse_from(["sockscope", "report", "--all-netns", "--netns", "b"])
            .expect_err("conflict");
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        let err = build(&["report", "--netns", ""]).expect_err("empty");
        assert!(err.to_string().contains("--netns"), "{err}");
        for args in [
            &["report", "--replay", "r.ndjson", "--all-netns"][..],
            &["check", "--replay", "r.ndjson", "--netns", "blue"],
            &["top", "--replay", "r.ndjson", "--all-netns"],
        ] {
            let err = build(args).expect_err("replay");
            assert!(err.to_string().contains("--replay"), "{args:?}: {err}");
        }
    }
}
