//! The `sockscope` binary: parse, build the config, run a face, map errors to exit codes.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use clap::error::ErrorKind;

use sockscope::analyze;
use sockscope::cli::Cli;
use sockscope::collect::{self, CollectOptions};
use sockscope::config::{Config, ReportConfig};
use sockscope::present::{json, text};

/// Exit codes (DESIGN: 0 success, 1 runtime failure, 2 usage error).
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sockscope: {}", one_line(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match Config::build(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sockscope: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockscope: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(config: &Config) -> anyhow::Result<()> {
    match config {
        Config::Report(report) => run_report(report),
    }
}

fn run_report(config: &ReportConfig) -> anyhow::Result<()> {
    let sampling = config.sampling;
    let progress = Progress::new(sampling.samples);
    let snapshots = collect::sample(
        &CollectOptions::default(),
        sampling.samples,
        sampling.interval,
        |n| {
            progress.tick(n);
        },
    )
    .context("could not read socket state")?;
    progress.done();
    let analysis = analyze::analyze(&snapshots, &analyze::Thresholds::default())
        .context("no snapshot was taken")?;
    let mut out = io::stdout().lock();
    if config.json {
        json::write(
            &mut out,
            &json::ReportDoc::new(&analysis, sampling.interval),
        )?;
    } else {
        text::write(&mut out, &analysis)?;
    }
    out.flush()?;
    Ok(())
}

/// "sampling 1/2…" on stderr while a multi-sample report waits, only on a terminal.
struct Progress {
    total: usize,
    on_terminal: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let on_terminal = total > 1 && io::stderr().is_terminal();
        let progress = Progress { total, on_terminal };
        progress.tick(0);
        progress
    }

    fn tick(&self, taken: usize) {
        if self.on_terminal {
            eprint!(
                "\rsockscope: sampling {}/{}…",
                (taken + 1).min(self.total),
                self.total
            );
        }
    }

    fn done(&self) {
        if self.on_terminal {
            eprint!("\r\x1b[2K");
        }
    }
}

/// clap's message, first line only, with a pointer to the right --help instead of the usage
/// block: `see 'sockscope report --help'` when the mistake was in a subcommand.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let command = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map_or_else(
            || "sockscope".to_owned(),
            |usage| {
                let words: Vec<&str> = usage
                    .split(' ')
                    .take_while(|w| !w.starts_with(['[', '<', '-']))
                    .collect();
                words.join(" ")
            },
        );
    format!("{first}; see '{command} --help'")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
