//! Where the dashboard's data comes from: a collection thread on the live host, or a
//! recording stepped through. Both turn snapshots into the same [`Update`]: the newest
//! snapshot, the analysis of the rate window that ends with it, and one history point.
//!
//! The live thread does the collecting and the analysing, so the UI thread only swaps in
//! finished results and never waits. Nothing here touches the terminal or holds UI state.
//!
//! Live or replayed, the window a rate spans is [`Span::DASHBOARD`]'s (the last 5 s), chosen
//! by [`crate::analyze::window`] as for every face.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::history::{HISTORY, Point};
use crate::analyze::window::{self, Span, Window};
use crate::analyze::{self, Analysis, Settings};
use crate::model::Snapshot;
use crate::source::OnDemand;

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

/// Add the newest snapshot to a live window and analyse the window it ends.
pub(crate) fn update(
    window: &mut Window,
    snapshot: Snapshot,
    settings: &Settings,
) -> Option<Update> {
    window.push(snapshot);
    let analysis = window.analyze(settings)?;
    let point = Point::of(&analysis);
    Some(Update {
        snapshot: Arc::clone(window.newest()?),
        analysis,
        point,
    })
}

/// Collect every interval on a thread of its own and hand each result to `send`, until
/// `send` returns false (the dashboard has gone).
pub fn spawn_live(
    mut live: impl OnDemand + 'static,
    settings: Settings,
    send: impl Fn(Fed) -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("collect".to_owned())
        .spawn(move || {
            let mut window = Window::new(Span::DASHBOARD);
            let interval = live.interval();
            loop {
                let started = Instant::now();
                let fed = match live.take() {
                    Ok(snapshot) => {
                        update(&mut window, snapshot, &settings).map(|u| Fed::Update(Box::new(u)))
                    }
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
        let span = window::ending_at(&self.snapshots, pos, Span::DASHBOARD);
        analyze::analyze(&self.snapshots[span], &self.settings)
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
    fn each_update_holds_the_newest_snapshot_whole_and_the_window_s_analysis() {
        let snaps = recording("incidents");
        let mut w = Window::new(Span::DASHBOARD);
        for t in 0..10 {
            let update = update(&mut w, at(&snaps[1], t), &Settings::default()).expect("update");
            assert!(!update.snapshot.netns[0].tracked.is_empty());
            let want = usize::try_from(t.min(5)).expect("small") + 1;
            assert_eq!(update.analysis.samples, want, "at {t} s");
        }
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
