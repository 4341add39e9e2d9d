//! The `sockscope` binary: parse, build the config, run a face, map errors to exit codes.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser as _};

use sockscope::analyze::Settings;
use sockscope::analyze::window::Window;
use sockscope::cli::{self, Cli};
use sockscope::collect::CollectOptions;
use sockscope::collect::NetnsScope;
use sockscope::collect::kill::{self as destroy, KillError};
use sockscope::config::{
    CheckConfig, Config, DEFAULT_TOP_PROCESSES, Face, KillConfig, RecordConfig, ReportConfig,
    ReportFormat, Samples, ServeConfig, TopConfig,
};
use sockscope::model::TcpState;
use sockscope::model::kill::{KillFilter, PeerFilter};
use sockscope::present::check::{self, CheckResult, Status};
use sockscope::present::escape::escape;
use sockscope::present::kill::{self as kill_face, KillDoc, Tally};
use sockscope::present::prometheus::{self, MetricsOptions};
use sockscope::present::record::Recorder;
use sockscope::present::serve::{self, Exporter, Limits};
use sockscope::present::{json, text, tui};
use sockscope::source::Source;
use sockscope::{atomic, audit, generate};

/// What the faces that run for weeks set glibc's `M_MMAP_THRESHOLD` to, in bytes: its default.
const MMAP_THRESHOLD: &str = "131072";
/// The environment variable glibc reads it from when a process starts.
const MMAP_THRESHOLD_VAR: &str = "MALLOC_MMAP_THRESHOLD_";

/// Exit codes (DESIGN: 0 success, 1 runtime failure, 2 usage error).
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Run again with glibc's mmap threshold fixed at its default, unless the environment sets it.
///
/// glibc raises the threshold to the size of each large block freed (up to 32 MiB), so that
/// after the first full pass the next passes' large vectors come from its heap, where they
/// stay resident after they are freed: at 1,000,000 sockets the dashboard's resident set rose
/// from 32 to 64 MiB that way and stayed there, against 39 MiB with the threshold fixed (a
/// block at or over it is mapped, and unmapped when freed). Setting it with `mallopt` would
/// need `unsafe`; glibc reads the variable at start, hence the exec, which keeps the pid,
/// the arguments and the descriptors. If the exec fails, the face runs as it is.
fn fix_the_allocator_s_mmap_threshold(args: &[OsString]) {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(MMAP_THRESHOLD_VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _failed = std::process::Command::new(exe)
        .arg0(std::env::args_os().next().unwrap_or_default())
        .args(args)
        .env(MMAP_THRESHOLD_VAR, MMAP_THRESHOLD)
        .exec();
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let subcommand = cli::invoked_subcommand(&args);
    if matches!(subcommand.as_deref(), Some("top" | "serve" | "record")) {
        fix_the_allocator_s_mmap_threshold(&args);
    }
    let check = subcommand.as_deref() == Some("check");
    install_panic_hook(check);
    // `check` speaks the plugin protocol even about its own usage errors: a monitoring system
    // would read clap's exit code 2 as CRITICAL.
    let usage_error = |message: String| {
        if check {
            return unknown(&message, cli::asks_for_json(&args));
        }
        eprintln!("sockscope: {}", escape(&message));
        ExitCode::from(EXIT_USAGE)
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(one_line(&e, subcommand.as_deref())),
    };
    let config = match Config::build(cli, io::stdout().is_terminal()) {
        Ok(config) => config,
        Err(e) => return usage_error(e.to_string()),
    };
    let result = match &config.face {
        Face::Report(report) => run_report(report, &config.settings, &config.collect),
        Face::Record(record) => run_record(record, &config.collect),
        Face::Top(top) => run_top(top, &config.settings, &config.collect),
        Face::Serve(serve) => run_serve(serve, &config.settings, &config.collect),
        Face::Check(check) => return run_check(check, &config.settings, &config.collect),
        Face::Generate(what) => run_generate(*what, &config.settings),
        Face::Kill(kill) => return run_kill(kill, &config.collect),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // An error can quote a name from outside: a namespace's, a recording's contents.
            eprintln!("sockscope: {}", escape(&format!("{e:#}")));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// A bug must still end in one line and the documented exit code, never a backtrace:
/// 1, or UNKNOWN (3) for `check`.
fn install_panic_hook(check: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let message = format!("internal error{at}: {what}; please report it");
        let message = escape(&message);
        if check {
            println!("SOCKSCOPE UNKNOWN - {message}");
            std::process::exit(i32::from(Status::Unknown.exit_code()));
        }
        eprintln!("sockscope: {message}");
        std::process::exit(i32::from(EXIT_FAILURE));
    }));
}

/// The window a one-shot face judges, and the interval its snapshots were taken at; a
/// recording's warnings go to stderr.
fn window(
    source: &sockscope::config::Source,
    samples: Samples,
    collect: &CollectOptions,
) -> anyhow::Result<(Window, Duration)> {
    let source = Source::sampling(source, collect)?;
    warn(&source);
    let interval = source.interval();
    let progress = match (&source, samples) {
        (Source::Live(_), Samples::Count(n)) => Progress::new(n),
        _ => Progress::new(0),
    };
    let window = source.window(samples, |taken| progress.tick(taken))?;
    progress.done();
    Ok((window, interval))
}

/// What reading a recording tolerated, on stderr.
fn warn(source: &Source) {
    if let Source::Replay(replay) = source {
        for warning in source.warnings() {
            eprintln!(
                "sockscope: warning: {}: {}",
                replay.path.display(),
                escape(warning)
            );
        }
    }
}

fn run_report(
    config: &ReportConfig,
    settings: &Settings,
    collect: &CollectOptions,
) -> anyhow::Result<()> {
    let (window, interval) = window(&config.source, config.samples, collect)?;
    let analysis = window.analyze(settings).context("no snapshot to analyse")?;
    let write = |mut out: &mut dyn Write| -> io::Result<()> {
        match config.format {
            ReportFormat::Text => text::write(&mut out, &analysis)?,
            ReportFormat::Json => {
                json::write(&mut out, &json::ReportDoc::new(&analysis, interval))?;
            }
            // The textfile collector reads the same exposition a scrape of `serve` gets.
            ReportFormat::Prometheus => {
                let options = MetricsOptions {
                    top_processes: DEFAULT_TOP_PROCESSES,
                };
                prometheus::write(&mut out, &analysis, &options)?;
            }
        }
        out.flush()
    };
    match &config.output {
        Some(path) => {
            atomic::replace(path, write).with_context(|| format!("cannot write {}", path.display()))
        }
        // Stdout is line-buffered: a report of 10,000 UDP sockets is 100,000 lines, which
        // would each be one write(2).
        None => Ok(write(&mut io::BufWriter::with_capacity(
            1 << 16,
            io::stdout().lock(),
        ))?),
    }
}

/// `sockscope generate`: to stdout; the config file and the alerting rules with `settings`.
fn run_generate(what: sockscope::config::Companion, settings: &Settings) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    generate::write(what, settings, &mut out)?;
    out.flush()?;
    Ok(())
}

fn run_top(
    config: &TopConfig,
    settings: &Settings,
    collect: &CollectOptions,
) -> anyhow::Result<()> {
    let source = Source::refreshing(&config.source, collect)?;
    warn(&source);
    let kill = if destroy::may_destroy() {
        let collect = CollectOptions {
            netns: NetnsScope::Own,
            ..collect.clone()
        };
        let killer: tui::Killer = Box::new(move |ask| dashboard_kill(&collect, ask));
        Ok(killer)
    } else {
        Err("K destroys sockets, which needs CAP_NET_ADMIN: run sockscope as root".to_owned())
    };
    tui::run(source, settings.clone(), kill)?;
    Ok(())
}

fn run_check(config: &CheckConfig, settings: &Settings, collect: &CollectOptions) -> ExitCode {
    let judged = window(&config.source, config.samples, collect)
        .and_then(|(window, _)| window.analyze(settings).context("no snapshot to analyse"));
    let result = match judged {
        Ok(analysis) => CheckResult::new(&analysis, &settings.thresholds),
        Err(e) => return unknown(&format!("{e:#}"), config.json),
    };
    let mut out = io::stdout().lock();
    let written = if config.json {
        check::write_json(&mut out, &result)
    } else {
        check::write_text(&mut out, &result)
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("sockscope: cannot write the result: {e}");
            ExitCode::from(Status::Unknown.exit_code())
        }
        _ => ExitCode::from(result.exit_code),
    }
}

/// UNKNOWN (3) with a one-line reason, on stdout where a monitoring system reads it.
fn unknown(reason: &str, json: bool) -> ExitCode {
    let result = CheckResult::unknown(reason);
    let mut out = io::stdout().lock();
    let _ = if json {
        check::write_json(&mut out, &result)
    } else {
        check::write_text(&mut out, &result)
    };
    let _ = out.flush();
    ExitCode::from(result.exit_code)
}

/// `sockscope record`: the output is checked before the first snapshot is taken.
fn run_record(config: &RecordConfig, collect: &CollectOptions) -> anyhow::Result<()> {
    let mut recorder = Recorder::open(&config.output)?;
    let live = sockscope::config::Source::Live {
        interval: config.interval,
    };
    let Source::Live(mut live) = Source::sampling(&live, collect)? else {
        unreachable!("a live source is live")
    };
    Ok(recorder.run(config, &mut live)?)
}

fn run_serve(
    config: &ServeConfig,
    settings: &Settings,
    collect: &CollectOptions,
) -> anyhow::Result<()> {
    let listener = serve::bind(config.listen)?;
    let live = sockscope::config::Source::Live {
        interval: config.interval,
    };
    let Source::Live(live) = Source::refreshing(&live, collect)? else {
        unreachable!("a live source is live")
    };
    let options = MetricsOptions {
        top_processes: config.top_processes,
    };
    let exporter = Exporter::new(live, settings.clone(), options);
    eprintln!("{}", serve::listening_line(listener.local_addr()?));
    serve::serve(&listener, exporter, Limits::default()).context("the exporter stopped")
}

/// `sockscope kill`: exit 0 for a dry run or when every selected socket is destroyed or
/// gone, 1 otherwise.
fn run_kill(config: &KillConfig, collect: &CollectOptions) -> ExitCode {
    match kill(config, collect) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockscope: {}", escape(&format!("{e:#}")));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn kill(config: &KillConfig, collect: &CollectOptions) -> anyhow::Result<bool> {
    // Before anything is read: a refusal is then one line, whatever else would fail.
    if config.yes && !destroy::may_destroy() {
        return Err(KillError::NoCapability.into());
    }
    let plan = destroy::select(collect, &config.filter)?;
    let selection = &plan.selection;
    if selection.is_empty() {
        anyhow::bail!("{}", kill_face::nothing_selected(&config.filter, selection));
    }
    let mut out = io::stdout().lock();
    if !config.yes {
        if config.json {
            kill_face::write_json(&mut out, &KillDoc::new(selection, None))?;
        } else {
            kill_face::write_text(&mut out, selection, None)?;
        }
        out.flush()?;
        return Ok(true);
    }
    let outcomes = plan.destroy()?;
    let tally = Tally::of(&outcomes);
    if let Err(e) = log_kill(&kill_face::result_line(selection, tally)) {
        eprintln!("sockscope: warning: {e}");
    }
    if config.json {
        kill_face::write_json(&mut out, &KillDoc::new(selection, Some(&outcomes)))?;
    } else {
        kill_face::write_text(&mut out, selection, Some(&outcomes))?;
    }
    out.flush()?;
    Ok(tally.complete())
}

/// What the dashboard's `K` runs once confirmed: the CLOSE_WAIT sockets of the process (with
/// the peer a collision finding names), destroyed and logged like `kill --yes`; one line.
fn dashboard_kill(collect: &CollectOptions, ask: &tui::view::KillAsk) -> String {
    let filter = KillFilter {
        pid: ask.pid,
        states: vec![TcpState::CloseWait],
        port: None,
        peer: ask.peer.map(|ip| PeerFilter { ip, port: None }),
    };
    let done = destroy::select(collect, &filter).and_then(|plan| {
        if plan.selection.is_empty() {
            return Ok(kill_face::nothing_left_line(&plan.selection));
        }
        let outcomes = plan.destroy()?;
        let line = kill_face::result_line(&plan.selection, Tally::of(&outcomes));
        Ok(match log_kill(&line) {
            Ok(()) => line,
            Err(e) => format!("{line} ({e})"),
        })
    });
    done.unwrap_or_else(|e| escape(&e.to_string()).into_owned())
}

/// The system log's line for a destroying run whose result is `result`.
fn log_kill(result: &str) -> Result<(), audit::AuditError> {
    let message = format!("uid {} {result}", rustix::process::getuid().as_raw());
    audit::send(
        std::path::Path::new(audit::DEV_LOG),
        &audit::line(std::process::id(), &message),
    )
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
fn one_line(e: &clap::Error, subcommand: Option<&str>) -> String {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them on the next lines.
    let first = match first.strip_suffix(':') {
        Some(head) => {
            let named: Vec<&str> = lines
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            format!("{head}: {}", named.join(", "))
        }
        None => first.to_owned(),
    };
    let command = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map_or_else(
            || {
                let known = Cli::command()
                    .find_subcommand(subcommand.unwrap_or_default())
                    .is_some();
                match subcommand {
                    Some(name) if known => format!("sockscope {name}"),
                    _ => "sockscope".to_owned(),
                }
            },
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
