//! Where every face's snapshots come from: the live host, or a recording.
//!
//! A face is handed a [`Source`] and never touches [`crate::collect`] or a file itself:
//!
//! | face | live | recording |
//! | --- | --- | --- |
//! | `report`, `check` | [`Source::window`]: `--samples` full passes, `--interval` apart | [`Source::window`]: its newest `--samples` |
//! | `top` | [`OnDemand::take`] every `--interval`, on a thread of its own, refreshing incrementally | [`Replay`], stepped through |
//! | `serve` | [`OnDemand::take`] when a scrape finds the last one stale, incrementally | — |
//! | `record` | [`Live::take_when_due`]: full passes paced `--interval` apart | — |
//!
//! Which snapshots a rate then spans is [`crate::analyze::window`]'s one rule.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::analyze::window::{Span, Window};
use crate::collect::{CollectError, CollectOptions, Collector, Refresh};
use crate::config::{self, Samples};
use crate::model::Snapshot;
use crate::recording::{self, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Not the error's `source`: `{0}` already says it, and `{:#}` would say it twice.
    #[error("could not read socket state: {0}")]
    Collect(CollectError),
    #[error(
        "cannot open recording {path}: {reason}; make one with `sockscope record --output {path}`"
    )]
    Open { path: String, reason: String },
    #[error("{path}: {source}")]
    Read { path: String, source: ReadError },
    /// A scripted source (a test's) has no snapshot left.
    #[error("{0}")]
    Exhausted(String),
}

impl From<CollectError> for SourceError {
    fn from(err: CollectError) -> Self {
        SourceError::Collect(err)
    }
}

/// Snapshots taken on demand, every `interval` or so: what a face that refreshes (`top`,
/// `serve`) reads. [`Live`] on a real host; a test's script of recorded snapshots.
pub trait OnDemand: Send {
    /// A snapshot now.
    fn take(&mut self) -> Result<Snapshot, SourceError>;
    /// How often the face means to take one.
    fn interval(&self) -> Duration;
}

impl OnDemand for Live {
    fn take(&mut self) -> Result<Snapshot, SourceError> {
        Ok(self.collector.snapshot()?)
    }

    fn interval(&self) -> Duration {
        self.interval
    }
}

/// Snapshots from the live host or from a recording.
pub enum Source {
    // Boxed: the collector carries its caches, a replay only a Vec.
    Live(Box<Live>),
    Replay(Replay),
}

impl Source {
    /// The live host for a face that reads it once or paces itself (`report`, `check`,
    /// `record`): every snapshot is a full pass, exact as `ss`.
    pub fn sampling(
        config: &config::Source,
        collect: &CollectOptions,
    ) -> Result<Source, SourceError> {
        Source::open(config, collect, Refresh::Full)
    }

    /// The live host for a face that refreshes every interval (`top`, `serve`): between full
    /// passes, each snapshot re-reads only what is cheap and what a diagnosis turns on (see
    /// [`crate::model::Freshness`]).
    pub fn refreshing(
        config: &config::Source,
        collect: &CollectOptions,
    ) -> Result<Source, SourceError> {
        Source::open(config, collect, Refresh::INCREMENTAL)
    }

    fn open(
        config: &config::Source,
        collect: &CollectOptions,
        refresh: Refresh,
    ) -> Result<Source, SourceError> {
        Ok(match config {
            config::Source::Live { interval } => {
                Source::Live(Box::new(Live::new(collect.clone(), refresh, *interval)))
            }
            config::Source::Replay { path } => Source::Replay(Replay::open(path)?),
        })
    }

    /// The time between snapshots: asked for, or as recorded.
    pub fn interval(&self) -> Duration {
        match self {
            Source::Live(live) => live.interval,
            Source::Replay(replay) => replay.interval,
        }
    }

    /// What reading the source tolerated (a recording's unfinished last line).
    pub fn warnings(&self) -> &[String] {
        match self {
            Source::Live(_) => &[],
            Source::Replay(replay) => &replay.warnings,
        }
    }

    /// The window a one-shot face judges: `samples` snapshots taken live (`taken(n)` is
    /// told after each), or a recording's newest.
    pub fn window(
        self,
        samples: Samples,
        mut taken: impl FnMut(usize),
    ) -> Result<Window, SourceError> {
        let mut window = Window::new(Span::All);
        match self {
            Source::Live(mut live) => {
                let Samples::Count(n) = samples else {
                    unreachable!("a live source is always given a count")
                };
                for i in 1..=n {
                    window.push(live.take_when_due()?);
                    taken(i);
                }
            }
            Source::Replay(replay) => {
                let keep = match samples {
                    Samples::Count(n) => n,
                    Samples::All => replay.snapshots.len(),
                };
                let skip = replay.snapshots.len().saturating_sub(keep);
                for snapshot in replay.snapshots.into_iter().skip(skip) {
                    window.push(snapshot);
                }
            }
        }
        Ok(window)
    }
}

/// The live host, through a collector that lives across snapshots.
pub struct Live {
    collector: Collector,
    interval: Duration,
    /// When the first paced snapshot was taken, and how many have been since.
    paced_from: Option<Instant>,
    taken: u32,
}

impl Live {
    pub fn new(collect: CollectOptions, refresh: Refresh, interval: Duration) -> Live {
        Live {
            collector: Collector::with_refresh(collect, refresh),
            interval,
            paced_from: None,
            taken: 0,
        }
    }

    /// When the next paced snapshot is due, counted from the first.
    pub fn next_due(&self) -> Duration {
        self.interval * self.taken
    }

    /// Wait until the next snapshot is due, then take it: paced from the first, so that n
    /// snapshots span (n - 1) × interval however long each collection takes.
    pub fn take_when_due(&mut self) -> Result<Snapshot, SourceError> {
        let start = *self.paced_from.get_or_insert_with(Instant::now);
        if let Some(wait) = self.next_due().checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        self.taken = self.taken.saturating_add(1);
        OnDemand::take(self)
    }
}

/// A recording read whole.
#[derive(Debug)]
pub struct Replay {
    pub path: PathBuf,
    pub snapshots: Vec<Snapshot>,
    /// The time between snapshots, as recorded.
    pub interval: Duration,
    pub warnings: Vec<String>,
}

impl Replay {
    pub fn open(path: &Path) -> Result<Replay, SourceError> {
        let shown = || path.display().to_string();
        let file = File::open(path).map_err(|e| SourceError::Open {
            path: shown(),
            reason: e.to_string(),
        })?;
        let recording =
            recording::read(BufReader::new(file)).map_err(|source| SourceError::Read {
                path: shown(),
                source,
            })?;
        Ok(Replay {
            path: path.to_owned(),
            interval: Duration::from_millis(recording.header.interval_ms),
            snapshots: recording.snapshots,
            warnings: recording.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampling_source_takes_full_passes_paced_apart() {
        let interval = Duration::from_millis(50);
        let config = config::Source::Live { interval };
        let Source::Live(mut live) =
            Source::sampling(&config, &CollectOptions::default()).expect("live")
        else {
            panic!("a live source")
        };
        let started = Instant::now();
        for _ in 0..2 {
            let s = live.take_when_due().expect("snapshot");
            assert!(!s.freshness.incremental);
            // Every process listed was walked; so, looking for the owners of sockets of this
            // namespace, may some processes of others have been.
            let listed = s.processes.len() as u64;
            assert!(
                (listed..=s.process_scan.processes).contains(&s.freshness.processes_walked),
                "{} walked, {listed} listed, {} seen",
                s.freshness.processes_walked,
                s.process_scan.processes
            );
        }
        // The second was due one interval after the first.
        assert_eq!(live.next_due(), interval * 2);
        assert!(started.elapsed() >= interval);
    }
}
