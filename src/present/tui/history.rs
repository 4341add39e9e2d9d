//! What the sparklines remember: a few numbers per refresh, taken from each analysis.
//!
//! A snapshot can hold 100,000 sockets; a [`Point`] holds only the numbers the trends show —
//! the header's counter rates, each busy listener's fill and drop rate, each leaking process's
//! CLOSE_WAIT count — and [`History`] keeps at most [`HISTORY`] of them, so memory stays flat
//! however long the dashboard runs. Owns no UI state and reads no clock.

use std::collections::{HashMap, VecDeque};

use crate::analyze::Analysis;

/// Points kept: two minutes at the default one-second refresh.
pub const HISTORY: usize = 120;

/// The TcpExt counters the header shows with a rate, in its order.
pub const HEADER_COUNTERS: [&str; 4] = [
    "ListenOverflows",
    "ListenDrops",
    "SyncookiesSent",
    "TCPReqQFullDrop",
];

/// The numbers one analysis contributes to the trends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// Host-wide rates of [`HEADER_COUNTERS`] ([`Analysis::counters`]); `None` before there
    /// is one.
    pub counters: [Option<f64>; HEADER_COUNTERS.len()],
    /// By listener inode (socket inodes are unique host-wide), only listeners with something
    /// queued or dropped: an absent listener was idle.
    pub listeners: HashMap<u64, ListenerPoint>,
    /// CLOSE_WAIT count by pid, only processes holding some.
    pub close_wait: HashMap<u32, u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ListenerPoint {
    pub fill_pct: f64,
    pub drops_per_s: f64,
}

impl Point {
    pub fn of(a: &Analysis) -> Point {
        let mut counters = [None; HEADER_COUNTERS.len()];
        for (slot, name) in counters.iter_mut().zip(HEADER_COUNTERS) {
            *slot = a
                .counters
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.rate_per_s);
        }
        let mut listeners = HashMap::new();
        let mut close_wait = HashMap::new();
        for ns in &a.netns {
            for l in &ns.listeners {
                let drops = l.drops_per_s.unwrap_or(0.0);
                if l.accept_queue > 0 || drops > 0.0 {
                    listeners.insert(
                        l.inode,
                        ListenerPoint {
                            fill_pct: l.fill_pct,
                            drops_per_s: drops,
                        },
                    );
                }
            }
            for p in ns.processes.iter().filter(|p| p.close_wait > 0) {
                close_wait.insert(p.pid, p.close_wait);
            }
        }
        Point {
            counters,
            listeners,
            close_wait,
        }
    }
}

/// The last [`HISTORY`] points, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    points: VecDeque<Point>,
}

impl History {
    pub fn push(&mut self, point: Point) {
        if self.points.len() == HISTORY {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    pub fn from_points(points: impl IntoIterator<Item = Point>) -> History {
        let mut history = History::default();
        for p in points {
            history.push(p);
        }
        history
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The rate of header counter `i` at each point (`None` where there was no rate).
    pub fn counter(&self, i: usize) -> Vec<Option<f64>> {
        self.points
            .iter()
            .map(|p| p.counters.get(i).copied().flatten())
            .collect()
    }

    pub fn listener_drops(&self, inode: u64) -> Vec<Option<f64>> {
        self.points
            .iter()
            .map(|p| Some(p.listeners.get(&inode).map_or(0.0, |l| l.drops_per_s)))
            .collect()
    }

    pub fn listener_fill(&self, inode: u64) -> Vec<Option<f64>> {
        self.points
            .iter()
            .map(|p| Some(p.listeners.get(&inode).map_or(0.0, |l| l.fill_pct)))
            .collect()
    }

    #[allow(clippy::cast_precision_loss)] // socket counts are far below 2^52
    pub fn close_wait(&self, pid: u32) -> Vec<Option<f64>> {
        self.points
            .iter()
            .map(|p| Some(p.close_wait.get(&pid).copied().unwrap_or(0) as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let mut h = History::default();
        for i in 0..HISTORY + 10 {
            let mut p = Point::default();
            p.close_wait.insert(7, i as u64);
            h.push(p);
        }
        assert_eq!(h.len(), HISTORY);
        let series = h.close_wait(7);
        assert_eq!(series.first(), Some(&Some(10.0)));
        let newest = u32::try_from(HISTORY + 9).expect("small");
        assert_eq!(series.last(), Some(&Some(f64::from(newest))));
        assert_eq!(h.close_wait(8).last(), Some(&Some(0.0)));
    }
}
