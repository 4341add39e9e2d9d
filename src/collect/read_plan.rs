//! What a pass reads: every process's descriptors or only those that changed, and of each
//! network namespace every socket or only the cheap states. [`ReadPlan`] is decided once
//! per pass (by [`collect`](super::collect), or by a [`Collector`](super::Collector)'s
//! schedule); [`NsRead`] is what it says of one namespace, which [`settle`] settles once
//! that namespace's counters are read.
//!
//! It decides from what earlier passes read, and how long ago; it reads nothing itself.

use std::time::Duration;

use super::carry_over::{Prior, Tracked};
use super::procnet::NetTables;
use super::procs::ProcessScan;
use super::vocab::{NsId, NsRead};

/// What one pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadPlan {
    /// Every process's descriptors walked; else only those of new processes and of those
    /// whose descriptor count or start time changed, the others' walks reused.
    pub(super) walk_all: bool,
    /// Every namespace dumped in full; else only those no earlier full dump covers, the
    /// others read in their cheap states.
    pub(super) dump_all: bool,
    /// How long a namespace whose TCP counters moved waits between walks of its SYN_RECV
    /// and CLOSE_WAIT sockets (zero: every refresh).
    pub(super) tracked_busy_every: Duration,
    /// How long a quiet namespace may go without such a walk.
    pub(super) tracked_quiet_every: Duration,
}

impl ReadPlan {
    /// Everything, as a one-shot pass reads it.
    pub(super) const FULL: ReadPlan = ReadPlan {
        walk_all: true,
        dump_all: true,
        tracked_busy_every: Duration::ZERO,
        tracked_quiet_every: Duration::ZERO,
    };

    /// Whether this pass reads everything, reusing nothing of the passes before it.
    pub(super) fn is_full(&self) -> bool {
        self.walk_all && self.dump_all
    }

    /// The process scan whose descriptor walks this pass may reuse.
    pub(super) fn walks_to_reuse<'c>(&self, prior: Option<Prior<'c>>) -> Option<&'c ProcessScan> {
        prior.filter(|_| !self.walk_all).map(|p| p.procs)
    }

    /// What to read of namespace `id`, at `now_ns`, given what the passes before this one
    /// read (`prior`): a namespace no earlier full dump covers is dumped in full.
    pub(super) fn namespace(&self, id: NsId, prior: Option<Prior<'_>>, now_ns: u64) -> NsRead {
        let Some(prior) = prior.filter(|p| !self.dump_all && p.namespaces.contains_key(&id)) else {
            return NsRead::Full;
        };
        let Some(last) = prior.tracked.get(&id) else {
            return NsRead::Fresh;
        };
        let age = now_ns.saturating_sub(last.at_ns);
        let past = |every: Duration| u128::from(age) >= every.as_nanos();
        if past(self.tracked_quiet_every) {
            NsRead::Fresh
        } else if past(self.tracked_busy_every) {
            NsRead::FreshIfMoved
        } else {
            NsRead::Listeners
        }
    }
}

/// What is read of a namespace (`read`), once its counters (`tables`) are in, given the last
/// read of its SYN_RECV and CLOSE_WAIT sockets: with none to carry over, they are read.
pub(super) fn settle(read: NsRead, last: Option<&Tracked>, tables: &NetTables) -> NsRead {
    match (read, last) {
        (NsRead::FreshIfMoved, Some(last)) if last.still_holds(tables) => NsRead::Listeners,
        (NsRead::FreshIfMoved, _) | (NsRead::Listeners, None) => NsRead::Fresh,
        (read, _) => read,
    }
}
