//! What a refresh costs: the CPU time of consecutive `Collector::snapshot()` calls, the way
//! the dashboard and the exporter take them.
//!
//! ```text
//! cargo run --release --example refresh_cost -- [--refreshes 20] [--interval 1s]
//!     [--all-netns | --netns NAME|PATH|PID] [--full] [--compare]
//! ```
//!
//! Takes `--refreshes` snapshots `--interval` apart with one incremental collector and
//! prints, for each, its wall and CPU time (this process's user + system time, all threads,
//! so the kernel's work on our dumps and /proc reads is in it), whether it was a full pass,
//! how many processes had their descriptors walked, and how old the carried-over parts were
//! (the full socket dump, the CLOSE_WAIT / SYN_RECV read, the full descriptor walk).
//! Then the summary: the first (full) pass, the steady state after it (full passes
//! included, as they come round), and the average CPU use over the steady state as a share
//! of one core. `--full` takes every snapshot as a full pass instead, for comparison.
//!
//! `--compare` also takes a full one-shot snapshot after each incremental one (not timed)
//! and counts where the parts an incremental refresh reads afresh disagree with it:
//! listeners and their queues, CLOSE_WAIT and SYN_RECV sockets, the LISTEN / SYN_RECV /
//! CLOSE_WAIT / ESTABLISHED counts, and each process's CLOSE_WAIT count. On a quiet host
//! every count is 0.
//!
//! `bench/refresh-cost` runs this against the lab's `load` scenario.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sockscope::collect::{self, CollectOptions, Collector, NetnsScope, Refresh};
use sockscope::model::{Snapshot, TcpState};

#[derive(Debug, Parser)]
#[command(
    name = "refresh_cost",
    about = "CPU time of consecutive Collector::snapshot() calls"
)]
struct Cli {
    /// Snapshots to take.
    #[arg(long, default_value_t = 20)]
    refreshes: u32,
    /// Time between snapshots, from the start of one to the start of the next.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Every network namespace, as `sockscope --all-netns`.
    #[arg(long, conflicts_with = "netns")]
    all_netns: bool,
    /// One network namespace, as `sockscope --netns`.
    #[arg(long)]
    netns: Option<String>,
    /// Every snapshot a full pass (what `report` and `record` take), for comparison.
    #[arg(long)]
    full: bool,
    /// After each snapshot, take a full one and count the disagreements (not timed).
    #[arg(long)]
    compare: bool,
}

fn cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = CollectOptions {
        netns: match (cli.all_netns, &cli.netns) {
            (_, Some(spec)) => NetnsScope::One(spec.clone()),
            (true, None) => NetnsScope::All,
            (false, None) => NetnsScope::Own,
        },
        ..CollectOptions::default()
    };
    let refresh = if cli.full {
        Refresh::Full
    } else {
        Refresh::INCREMENTAL
    };
    let mut collector = Collector::with_refresh(opts.clone(), refresh);
    println!(
        "{:>3} {:>9} {:>9} {:>5} {:>7} {:>9} {:>9} {:>9} {:>6}",
        "#", "wall ms", "cpu ms", "full", "walked", "dump age", "CW age", "walk age", "diffs"
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut disagreements = 0;
    for n in 0..cli.refreshes {
        if let Some(wait) = (cli.interval * n).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let snapshot = match collector.snapshot() {
            Ok(snapshot) => snapshot,
            Err(e) => {
                eprintln!("refresh_cost: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (cpu, wall) = (cpu_time().saturating_sub(cpu0), wall0.elapsed());
        let diffs = if cli.compare {
            match collect::collect(&opts) {
                Ok(full) => compare(&snapshot, &full),
                Err(e) => {
                    eprintln!("refresh_cost: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            0
        };
        disagreements += diffs;
        let f = snapshot.freshness;
        println!(
            "{:>3} {:>9.1} {:>9.1} {:>5} {:>7} {:>9} {:>9} {:>9} {:>6}",
            n + 1,
            ms(wall),
            ms(cpu),
            if f.incremental { "" } else { "yes" },
            f.processes_walked,
            f.socket_dump_age_ms,
            f.tracked_age_ms,
            f.fd_walk_age_ms,
            if cli.compare {
                diffs.to_string()
            } else {
                "-".into()
            }
        );
        rows.push((wall0, cpu, wall));
    }
    summarise(&rows, &cli);
    if disagreements > 0 {
        println!(
            "{disagreements} disagreements with full snapshots (a busy host moves between the two)"
        );
    }
    ExitCode::SUCCESS
}

fn summarise(rows: &[(Instant, Duration, Duration)], cli: &Cli) {
    let Some((first_at, first_cpu, first_wall)) = rows.first().copied() else {
        return;
    };
    println!(
        "\nfirst snapshot (a full pass): {:.1} ms CPU, {:.1} ms wall",
        ms(first_cpu),
        ms(first_wall)
    );
    let steady = &rows[1..];
    if steady.is_empty() {
        return;
    }
    let cpu: Duration = steady.iter().map(|r| r.1).sum();
    let n = u32::try_from(steady.len()).unwrap_or(u32::MAX);
    // The steady state spans from the second snapshot to one interval after the last.
    let last_at = steady.last().map_or(first_at, |r| r.0);
    let span = last_at.saturating_duration_since(steady[0].0) + cli.interval;
    let mut sorted: Vec<f64> = steady.iter().map(|r| ms(r.1)).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "steady state, {} snapshots {:?} apart: mean {:.1} ms CPU per snapshot (median {:.1}, \
         max {:.1}); {:.2} % of one core over {:.1} s",
        steady.len(),
        cli.interval,
        ms(cpu / n),
        median,
        sorted.last().copied().unwrap_or(0.0),
        cpu.as_secs_f64() * 100.0 / span.as_secs_f64(),
        span.as_secs_f64()
    );
}

/// Where the parts an incremental snapshot reads afresh disagree with a full one.
fn compare(incremental: &Snapshot, full: &Snapshot) -> usize {
    let mut diffs = 0;
    for ns in &incremental.netns {
        let Some(other) = full.netns.iter().find(|o| o.id == ns.id) else {
            continue;
        };
        for state in [
            TcpState::Listen,
            TcpState::SynRecv,
            TcpState::CloseWait,
            TcpState::Established,
        ] {
            let (ours, theirs) = (ns.tcp_states.get(state), other.tcp_states.get(state));
            if ours != theirs {
                eprintln!("netns {}: {} {ours} vs {theirs}", ns.label, state.name());
                diffs += 1;
            }
        }
        let listeners = |s: &sockscope::model::NetnsSnapshot| {
            let mut v: Vec<_> = s
                .tcp_listeners
                .iter()
                .map(|l| (l.local, l.recv_q, l.send_q, l.owners.clone()))
                .collect();
            v.sort();
            v
        };
        if listeners(ns) != listeners(other) {
            eprintln!("netns {}: listeners differ", ns.label);
            diffs += 1;
        }
        let close_wait = |s: &sockscope::model::NetnsSnapshot| {
            let mut v: Vec<_> = s
                .tracked
                .iter()
                .filter(|t| t.state == TcpState::CloseWait)
                .map(|t| (t.local, t.peer, t.recv_q, t.owners.clone()))
                .collect();
            v.sort();
            v
        };
        if close_wait(ns) != close_wait(other) {
            eprintln!("netns {}: CLOSE_WAIT sockets differ", ns.label);
            diffs += 1;
        }
    }
    let per_process = |s: &Snapshot| -> BTreeMap<u32, u64> {
        s.processes
            .iter()
            .map(|p| (p.pid, p.tcp.get(TcpState::CloseWait)))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    if per_process(incremental) != per_process(full) {
        eprintln!("per-process CLOSE_WAIT counts differ");
        diffs += 1;
    }
    diffs
}
