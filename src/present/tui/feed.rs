//! Where the dashboard's data comes from: a collection thread on the live host, or a
//! recording stepped through. Both turn snapshots into the same [`Update`]: the newest
//! snapshot, the analysis of the rate window that ends with it, and one history point.
//!
//! The live thread does the collecting and the analysing, so the UI thread only swaps in
//! finished results and never waits. Nothing here touches the terminal or holds UI state.
//!
//! Rates are averaged over the last [`RATE_WINDOW`] of snapshots: steadier than one interval,
//! and a listener that dropped a moment ago stays visible for a few seconds. Only the newest
//! snapshot of a window keeps its per-socket lists; the older ones are kept slim (the analysis
//! reads sockets only from the newest), so the window costs little even at 100,000 sockets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::history::{HISTORY, Point};
use crate::analyze::{self, Analysis, Settings};
use crate::collect::Collector;
use crate::model::Snapshot;

/// Rates and growth compare the newest snapshot with one at least this much older.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);
/// At most this many snapshots in a window, however short the interval.
const MAX_WINDOW: usize = 64;

/// One refresh, ready to show.
#[derive(Debug, Clone)]
pub struct Update {
    pub snapshot: Arc<Snapshot>,
    pub analysis: Analysis,
    pub point: Point,
}

/// What the collection thread reports.
#[derive(Debug)]
pub enum Fed {
    Update(Box<Update>),
    /// A collection failed; the thread tries again at the next interval.
    Failed(String),
}

/// The recent snapshots of a live run, the newest last.
#[derive(Debug, Default)]
pub struct Window {
    ring: VecDeque<Snapshot>,
}

impl Window {
    /// Add the newest snapshot and analyse the window it ends.
    pub fn push(&mut self, snapshot: Snapshot, settings: &Settings) -> Option<Update> {
        self.ring.push_back(snapshot);
        while self.ring.len() > 2
            && (self.ring.len() > MAX_WINDOW || spans(&self.ring[1], self.ring.back()?))
        {
            self.ring.pop_front();
        }
        let analysis = analyze::analyze(self.ring.make_contiguous(), settings)?;
        let mut full = self.ring.pop_back()?;
        let sockets: Vec<_> = full
            .netns
            .iter_mut()
            .map(|ns| std::mem::take(&mut ns.tracked))
            .collect();
        self.ring.push_back(full.clone());
        for (ns, tracked) in full.netns.iter_mut().zip(sockets) {
            ns.tracked = tracked;
        }
        let point = Point::of(&analysis);
        Some(Update {
            snapshot: Arc::new(full),
            analysis,
            point,
        })
    }
}

/// Whether `older` is at least a rate window before `newer`.
fn spans(older: &Snapshot, newer: &Snapshot) -> bool {
    let ns = newer.monotonic_ns.saturating_sub(older.monotonic_ns);
    Duration::from_nanos(ns) >= RATE_WINDOW
}

/// Collect every `interval` on a thread of its own and hand each result to `send`, until
/// `send` returns false (the dashboard has gone).
pub fn spawn_live(
    mut collector: Collector,
    interval: Duration,
    settings: Settings,
    send: impl Fn(Fed) -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("collect".to_owned())
        .spawn(move || {
            let mut window = Window::default();
            loop {
                let started = Instant::now();
                let fed = match collector.snapshot() {
                    Ok(snapshot) => window
                        .push(snapshot, &settings)
                        .map(|update| Fed::Update(Box::new(update))),
                    Err(e) => Some(Fed::Failed(e.to_string())),
                };
                if let Some(fed) = fed {
                    if !send(fed) {
                        return;
                    }
                }
                if let Some(rest) = interval.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
}

/// A recording, stepped through.
#[derive(Debug)]
pub struct Replay {
    snapshots: Vec<Snapshot>,
    pub interval: Duration,
    settings: Settings,
    /// The history point of each position, computed when first needed.
    points: Vec<Option<Point>>,
}

impl Replay {
    /// `None` for a recording without snapshots.
    pub fn new(snapshots: Vec<Snapshot>, interval: Duration, settings: Settings) -> Option<Replay> {
        if snapshots.is_empty() {
            return None;
        }
        let points = vec![None; snapshots.len()];
        Some(Replay {
            snapshots,
            interval,
            settings,
            points,
        })
    }

    #[allow(clippy::len_without_is_empty)] // `new` refuses an empty recording
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Where a replay opens: the first position with a rate (the second snapshot).
    pub fn start(&self) -> usize {
        1.min(self.len() - 1)
    }

    /// The update at `pos` (clamped to the recording) and the history points up to it.
    pub fn at(&mut self, pos: usize) -> (usize, Update, Vec<Point>) {
        let pos = pos.min(self.len() - 1);
        let analysis = self.analysis(pos);
        let first = (pos + 1).saturating_sub(HISTORY);
        let history = (first..=pos).map(|i| self.point(i)).collect();
        let update = Update {
            snapshot: Arc::new(self.snapshots[pos].clone()),
            point: Point::of(&analysis),
            analysis,
        };
        (pos, update, history)
    }

    fn analysis(&self, pos: usize) -> Analysis {
        let newest = &self.snapshots[pos];
        let mut start = pos;
        while start > 0 && pos - start + 1 < MAX_WINDOW {
            start -= 1;
            if spans(&self.snapshots[start], newest) {
                break;
            }
        }
        analyze::analyze(&self.snapshots[start..=pos], &self.settings)
            .unwrap_or_else(|| unreachable!("a window holds at least its newest snapshot"))
    }

    fn point(&mut self, pos: usize) -> Point {
        if let Some(p) = &self.points[pos] {
            return p.clone();
        }
        let p = Point::of(&self.analysis(pos));
        self.points[pos] = Some(p.clone());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::present::tui::tests::recording;

    fn at(s: &Snapshot, secs: u64) -> Snapshot {
        let mut s = s.clone();
        s.monotonic_ns = secs * 1_000_000_000;
        s.wall_time_ms = secs * 1000;
        s
    }

    #[test]
    fn the_window_spans_the_rate_window_and_keeps_sockets_only_in_the_newest() {
        let snaps = recording("incidents");
        let mut w = Window::default();
        for t in 0..10 {
            let update = w
                .push(at(&snaps[1], t), &Settings::default())
                .expect("update");
            assert!(!update.snapshot.netns[0].tracked.is_empty());
            let want = usize::try_from(t.min(5)).expect("small") + 1;
            assert_eq!(update.analysis.samples, want, "at {t} s");
        }
        assert!(w.ring.iter().all(|s| s.netns[0].tracked.is_empty()));
    }

    /// The slim window relies on the analysis reading per-socket lists only from the newest
    /// snapshot: if that ever changes, this fails.
    #[test]
    fn slim_older_snapshots_analyse_like_full_ones() {
        let snaps = recording("incidents");
        let mut slim = snaps[0].clone();
        for ns in &mut slim.netns {
            ns.tracked.clear();
        }
        let settings = Settings::default();
        assert_eq!(
            analyze::analyze(&[slim, snaps[1].clone()], &settings),
            analyze::analyze(&snaps, &settings)
        );
    }

    #[test]
    fn replay_opens_on_the_first_rate_and_clamps() {
        let mut r = Replay::new(
            recording("incidents"),
            Duration::from_secs(1),
            Settings::default(),
        )
        .expect("snapshots");
        assert_eq!(r.start(), 1);
        let (pos, update, history) = r.at(7);
        assert_eq!(pos, 1);
        assert_eq!(update.analysis.samples, 2);
        assert_eq!(history.len(), 2);
        let (pos, update, _) = r.at(0);
        assert_eq!((pos, update.analysis.samples), (0, 1));
    }
}
