//! Which snapshots a rate spans: the one rule every face uses to pick the window it analyses.
//!
//! A rate (drops per second, CLOSE_WAIT growth) compares the oldest and the newest snapshot
//! of a window. [`Span`] says how far back a window reaches; [`Window`] holds the snapshots
//! of a live run as they arrive, and [`ending_at`] picks the window that ends at a given
//! position of a recording, by the same rule.
//!
//! | face | span |
//! | --- | --- |
//! | `report`, `check` | every sample taken (or the recording's newest `--samples`) |
//! | `top` | the last [`Span::DASHBOARD`] (5 s): steadier than one interval, and a listener that dropped a moment ago stays visible |
//! | `serve` | the previous collection and this one ([`Span::PREVIOUS`]) |
//!
//! Only the newest snapshot of a live window keeps its per-socket lists; the older ones are
//! kept slim, marked so (`tracked_dropped`), so that a window costs little even at 100,000
//! sockets; the few sockets whose peer is gone (`peer_gone`, bounded) stay in every copy,
//! since `peer-gone` needs them at both ends of the window. A window of every sample also
//! keeps its first snapshot whole, so that the
//! analysis can tell unread data that did not drain over the window. Pure: no clock is read,
//! time comes from the snapshots.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::{Analysis, Settings, analyze_span};
use crate::model::Snapshot;

/// How far back a window reaches from its newest snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Every snapshot given.
    All,
    /// Back to the newest snapshot at least this much older than the newest, and never more
    /// than `max` snapshots.
    AtLeast { age: Duration, max: usize },
}

impl Span {
    /// How far back the dashboard's window reaches.
    pub const DASHBOARD_AGE: Duration = Duration::from_secs(5);
    /// The dashboard's window: 5 s, at most 64 snapshots however short the interval.
    pub const DASHBOARD: Span = Span::AtLeast {
        age: Span::DASHBOARD_AGE,
        max: 64,
    };
    /// The exporter's window: the previous snapshot and the newest.
    pub const PREVIOUS: Span = Span::AtLeast {
        age: Duration::ZERO,
        max: 2,
    };

    /// Whether the window `snapshots` (oldest first) would still span enough without its
    /// oldest snapshot.
    fn can_drop_oldest(self, snapshots: &VecDeque<Snapshot>) -> bool {
        match self {
            Span::All => false,
            Span::AtLeast { age, max } => match (snapshots.get(1), snapshots.back()) {
                (Some(second), Some(newest)) if snapshots.len() > 2 => {
                    snapshots.len() > max || older_by(second, newest, age)
                }
                _ => false,
            },
        }
    }
}

/// Whether `older` is at least `age` before `newer`.
fn older_by(older: &Snapshot, newer: &Snapshot, age: Duration) -> bool {
    let ns = newer.monotonic_ns.saturating_sub(older.monotonic_ns);
    Duration::from_nanos(ns) >= age
}

/// The snapshots of a live run's window: every one kept slim (without its per-socket lists),
/// and the newest also whole.
#[derive(Debug)]
pub struct Window {
    span: Span,
    slim: VecDeque<Snapshot>,
    newest: Option<Arc<Snapshot>>,
}

impl Window {
    pub fn new(span: Span) -> Window {
        Window {
            span,
            slim: VecDeque::new(),
            newest: None,
        }
    }

    /// Add the newest snapshot; those the span no longer needs leave.
    pub fn push(&mut self, mut snapshot: Snapshot) {
        // A window that keeps every snapshot keeps its first whole: the analysis compares
        // the newest snapshot's sockets with the first's (unread data that did not drain).
        if self.span == Span::All && self.slim.is_empty() {
            let whole = snapshot.clone();
            self.newest = Some(Arc::new(snapshot));
            self.slim.push_back(whole);
            return;
        }
        // The slim copy is made without copying the per-socket lists at all.
        let tracked: Vec<_> = snapshot
            .netns
            .iter_mut()
            .map(|ns| std::mem::take(&mut ns.tracked))
            .collect();
        let mut slim = snapshot.clone();
        for ns in &mut slim.netns {
            ns.tracked_dropped = true;
        }
        self.slim.push_back(slim);
        for (ns, tracked) in snapshot.netns.iter_mut().zip(tracked) {
            ns.tracked = tracked;
        }
        self.newest = Some(Arc::new(snapshot));
        while self.span.can_drop_oldest(&self.slim) {
            self.slim.pop_front();
        }
    }

    /// The analysis of the window; `None` while it is empty.
    pub fn analyze(&self, settings: &Settings) -> Option<Analysis> {
        Some(analyze_span(
            self.slim.front()?,
            self.newest.as_deref()?,
            self.slim.len(),
            settings,
        ))
    }

    /// The newest snapshot, whole.
    pub fn newest(&self) -> Option<&Arc<Snapshot>> {
        self.newest.as_ref()
    }

    pub fn len(&self) -> usize {
        self.slim.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slim.is_empty()
    }
}

/// The positions of `snapshots` (a recording, oldest first) that make the window ending at
/// `newest`, by the same rule as a live [`Window`].
pub fn ending_at(snapshots: &[Snapshot], newest: usize, span: Span) -> Range<usize> {
    let Some(last) = snapshots.get(newest) else {
        return 0..0;
    };
    let start = match span {
        Span::All => 0,
        Span::AtLeast { age, max } => {
            let mut start = newest;
            while start > 0 && newest - start + 1 < max {
                start -= 1;
                if older_by(&snapshots[start], last, age) {
                    break;
                }
            }
            start
        }
    };
    start..newest + 1
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
    fn the_dashboard_window_spans_five_seconds_and_keeps_sockets_only_in_the_newest() {
        let snaps = recording("incidents");
        let mut w = Window::new(Span::DASHBOARD);
        for t in 0..10 {
            w.push(at(&snaps[1], t));
            let newest = w.newest().expect("a snapshot");
            assert!(!newest.netns[0].tracked.is_empty());
            let want = usize::try_from(t.min(5)).expect("small") + 1;
            let analysis = w.analyze(&Settings::default()).expect("an analysis");
            assert_eq!(analysis.samples, want, "at {t} s");
        }
        assert!(w.slim.iter().all(|s| s.netns[0].tracked.is_empty()));
    }

    #[test]
    fn the_exporter_window_is_the_previous_snapshot_and_the_newest() {
        let snaps = recording("incidents");
        let mut w = Window::new(Span::PREVIOUS);
        for t in 0..4 {
            w.push(at(&snaps[1], t * 15));
            assert_eq!(w.len(), usize::try_from(t.min(1)).expect("small") + 1);
        }
    }

    #[test]
    fn a_report_window_keeps_every_sample() {
        let snaps = recording("incidents");
        let mut w = Window::new(Span::All);
        for t in 0..10 {
            w.push(at(&snaps[1], t));
        }
        assert_eq!(w.len(), 10);
    }

    #[test]
    fn a_recording_s_window_follows_the_live_rule() {
        let snaps: Vec<Snapshot> = (0..10).map(|t| at(&recording("incidents")[1], t)).collect();
        assert_eq!(ending_at(&snaps, 9, Span::DASHBOARD), 4..10);
        assert_eq!(ending_at(&snaps, 2, Span::DASHBOARD), 0..3);
        assert_eq!(ending_at(&snaps, 9, Span::PREVIOUS), 8..10);
        assert_eq!(ending_at(&snaps, 9, Span::All), 0..10);
        assert_eq!(ending_at(&snaps, 0, Span::DASHBOARD), 0..1);
        let mut live = Window::new(Span::DASHBOARD);
        for s in &snaps {
            live.push(s.clone());
        }
        assert_eq!(live.len(), ending_at(&snaps, 9, Span::DASHBOARD).len());
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
            crate::analyze::analyze(&[slim, snaps[1].clone()], &settings),
            crate::analyze::analyze(&snaps, &settings)
        );
    }
}
