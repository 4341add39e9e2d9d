//! Validated settings derived from the command line: what the faces actually run with.
//!
//! [`Config::build`] is the single place raw input is checked; the faces never see clap
//! types, and every rejection is one sentence naming the bad value and what would be good.

use std::time::Duration;

use crate::cli::{Cli, Command, ReportArgs};

pub const DEFAULT_SAMPLES: usize = 2;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// More samples than this is a recording, not a report.
const MAX_SAMPLES: usize = 10_000;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    Report(ReportConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub json: bool,
    pub sampling: Sampling,
}

/// How many snapshots to take, how far apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub samples: usize,
    pub interval: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid --interval {value:?}: {reason}; write a duration such as 500ms, 1s or 2m")]
    Interval { value: String, reason: String },
    #[error("invalid --samples {value:?}: {reason}")]
    Samples { value: String, reason: String },
}

impl Config {
    pub fn build(cli: Cli) -> Result<Config, ConfigError> {
        let report = match cli.command {
            Some(Command::Report(args)) => args,
            None => ReportArgs::default(),
        };
        Ok(Config::Report(ReportConfig {
            json: report.json,
            sampling: Sampling {
                samples: parse_samples(report.samples.as_deref())?,
                interval: parse_interval(report.interval.as_deref())?,
            },
        }))
    }
}

fn parse_samples(raw: Option<&str>) -> Result<usize, ConfigError> {
    let Some(value) = raw else {
        return Ok(DEFAULT_SAMPLES);
    };
    let bad = |reason: &str| ConfigError::Samples {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let n: usize = value
        .trim()
        .parse()
        .map_err(|_| bad("expected a whole number such as 1 or 5"))?;
    match n {
        0 => Err(bad("take at least 1 sample (rates need 2)")),
        n if n > MAX_SAMPLES => Err(bad(&format!(
            "at most {MAX_SAMPLES}; use `sockscope record` for long captures"
        ))),
        n => Ok(n),
    }
}

/// Parse a duration such as `500ms`, `1s`, `2m`; zero is rejected.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("it must be longer than zero".to_owned());
    }
    Ok(d)
}

fn parse_interval(raw: Option<&str>) -> Result<Duration, ConfigError> {
    raw.map_or(Ok(DEFAULT_INTERVAL), |value| {
        parse_duration(value).map_err(|reason| ConfigError::Interval {
            value: value.to_owned(),
            reason,
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
        Config::build(cli)
    }

    fn sampling(args: &[&str]) -> Sampling {
        match build(args).expect("valid") {
            Config::Report(r) => r.sampling,
        }
    }

    #[test]
    fn no_command_is_a_report_with_defaults() {
        assert_eq!(
            build(&[]).expect("valid"),
            Config::Report(ReportConfig {
                json: false,
                sampling: Sampling {
                    samples: 2,
                    interval: Duration::from_secs(1)
                },
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
    }
}
