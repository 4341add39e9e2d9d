//! The collector that lives across snapshots: [`Collector`], refreshing incrementally for
//! the dashboard and the exporter, or taking full passes ([`Refresh::Full`]) for reports,
//! checks and recordings (which `crate::source` paces).
//!
//! The schedule of an incremental collector, and why (measured on 100,000 loopback sockets
//! held by 100 processes, on the project's 2-core test machine):
//!
//! | every refresh | cost |
//! | --- | --- |
//! | TCP and unix listeners (the small listening tables), counters, sockstat | < 1 ms |
//! | the first /proc pass (name, start time, descriptor count of every process) | a few ms |
//! | descriptors of new processes and of those whose count changed | their size |
//! | once per listener or CLOSE_WAIT socket found with no owner: the descriptors of the processes of its namespace whose walks were reused (at most every 100× the last such look's CPU time) | their size |
//! | once per socket kept in full still found with no owner: the descriptors of the processes of the namespaces not scanned (at most every 100× the last such look's CPU time) | their size |
//! | SYN_RECV and CLOSE_WAIT sockets, when a TCP counter moved (else carried over, 5 s at most, stretched to 1000× their CPU time, 5 min at most); stretched to 100× their CPU time | 20–70 ms at 100,000 sockets, 150 ms at 1,000,000: a walk of every TCP socket of the host, per namespace |
//!
//! | less often | cost | period |
//! | --- | --- | --- |
//! | full socket dump: every state, unix sockets, sysctls | ~0.15 s; 1.5 s at 1,000,000 | 5 s, stretched to 300× its CPU time, 10 min at most |
//! | every process's descriptors walked | ~0.05 s (iterator) to 0.5 s (/proc); 0.4 s at 1,000,000 | 30 s, stretched to 300× its CPU time, 10 min at most |
//!
//! Stretching keeps each full part at about a third of 1 % of one core whatever the host's
//! size, the walks of a busy namespace's SYN_RECV and CLOSE_WAIT sockets at 1 %, and those
//! of a quiet one at 0.1 %: at a million sockets the reads of every refresh cost about 0.8 %
//! of a core, and the dashboard's whole budget there is 2 %. A quiet namespace's walk is
//! only a safety net: no socket there entered or left those states without a counter
//! moving. The snapshot's [`Freshness`](crate::model::Freshness) says how old each
//! carried-over part is.
//!
//! Between refreshes the collector keeps a [`Cache`]: the last process scan and the join with
//! it, the unowned sockets already looked for, and what [`carry_over`](super::carry_over)
//! took of the passes before.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::carry_over::{FullDumpOnly, Keep, Prior, Tracked};
use super::clock::monotonic_ns;
use super::join::Joined;
use super::owner_source::OwnerSource;
use super::owners::Lookout;
use super::pass::Pass;
use super::procs::ProcessScan;
use super::read_plan::ReadPlan;
use super::sockets::slot_index::SlotIndex;
use super::vocab::NsId;
use super::{CollectError, CollectOptions, pass};
use crate::model::Snapshot;

/// How a [`Collector`] refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Every snapshot is a full pass, as [`collect`] takes: exact, and as costly each time.
    Full,
    /// Between full passes, re-read only what is cheap and what a diagnosis turns on.
    Incremental {
        /// A full socket dump (every TCP state, every unix socket, sysctls) at least this
        /// often, unless one costs more than a third of 1 % of a core at this rate: the
        /// period then stretches to 300× the CPU time of the last one, up to ten minutes.
        full_dump_every: Duration,
        /// Every process's descriptors walked at least this often (in between, only new
        /// processes and those whose descriptor count or start time changed), stretched in
        /// the same way up to ten minutes.
        full_walk_every: Duration,
        /// A namespace where no TCP counter moved may keep its SYN_RECV and CLOSE_WAIT
        /// sockets from an earlier read for this long, or for 1000× the CPU time of that
        /// read when longer (up to five minutes): nothing but an application reading the
        /// last bytes of a CLOSE_WAIT socket, or a request socket expiring after its last
        /// retransmission, changes them without a counter moving. Where counters move, they
        /// are read again in every refresh, unless those reads (a walk of every TCP socket
        /// of the host for each namespace) cost more than 1 % of a core at that rate: the
        /// period then stretches to 100× their CPU time, up to a minute.
        quiet_tracked_for: Duration,
    },
}

impl Refresh {
    /// What the dashboard and the exporter use.
    pub const INCREMENTAL: Refresh = Refresh::Incremental {
        full_dump_every: Duration::from_secs(5),
        full_walk_every: Duration::from_secs(30),
        quiet_tracked_for: Duration::from_secs(5),
    };
}

/// How far a full part's period stretches: its CPU time, times this.
const STRETCH: u32 = 300;
/// How far the period of SYN_RECV / CLOSE_WAIT walks stretches where counters move: their
/// CPU time, times this.
const TRACKED_STRETCH: u32 = 100;
const TRACKED_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// Likewise where no counter moved: the walk is only a safety net there (see
/// [`Refresh::Incremental::quiet_tracked_for`]), and at a million sockets it costs as much
/// as a full walk of the descriptors with the iterator.
const QUIET_STRETCH: u32 = 1000;
const QUIET_AT_MOST_EVERY: Duration = Duration::from_secs(300);
const FULL_DUMP_AT_MOST_EVERY: Duration = Duration::from_secs(600);
const FULL_WALK_AT_MOST_EVERY: Duration = Duration::from_secs(600);

/// A collector that lives across refreshes, so that repeated snapshots (the dashboard, the
/// exporter) reuse what has not changed since the last one.
///
/// The first snapshot is always a full pass. With [`Refresh::Incremental`], later ones keep
/// the socket → process map, re-walking the descriptors only of processes that are new or
/// whose descriptor count or start time changed, and read sockets with state-filtered
/// dumps (see the module docs for the schedule).
pub struct Collector {
    opts: CollectOptions,
    refresh: Refresh,
    cache: Option<Cache>,
    /// Loaded with the first snapshot, kept for the others.
    owners: Option<OwnerSource>,
}

impl Collector {
    /// An incremental collector ([`Refresh::INCREMENTAL`]).
    pub fn new(opts: CollectOptions) -> Collector {
        Collector::with_refresh(opts, Refresh::INCREMENTAL)
    }

    pub fn with_refresh(opts: CollectOptions, refresh: Refresh) -> Collector {
        Collector {
            opts,
            refresh,
            cache: None,
            owners: None,
        }
    }

    /// Take a snapshot: a full pass the first time and whenever one is due, otherwise a
    /// refresh of what changed.
    pub fn snapshot(&mut self) -> Result<Snapshot, CollectError> {
        // Loaded before the first pass, not beside it as a one-shot pass does: the faces that
        // refresh gain nothing from saving its milliseconds once, and their first pass then
        // reads this process as its later ones will.
        let owners = self.owners.get_or_insert_with(|| {
            let mut owners = OwnerSource::new(self.opts.owners);
            owners.wait_loaded();
            owners
        });
        let Refresh::Incremental {
            full_dump_every,
            full_walk_every,
            quiet_tracked_for,
        } = self.refresh
        else {
            let pass = pass::run(
                &self.opts,
                None,
                None,
                ReadPlan::FULL,
                (Keep::Nothing, SlotIndex::default()),
                owners,
            )?;
            return Ok(pass.snapshot);
        };
        let now = monotonic_ns();
        let due =
            |since: u64, every: Duration| u128::from(now.saturating_sub(since)) >= every.as_nanos();
        let pass = match &mut self.cache {
            None => pass::run(
                &self.opts,
                None,
                None,
                ReadPlan::FULL,
                (Keep::ForRefresh, SlotIndex::default()),
                owners,
            )?,
            Some(c) => {
                let dump_every = stretch(
                    full_dump_every,
                    c.full_dump_cpu * STRETCH,
                    FULL_DUMP_AT_MOST_EVERY,
                );
                let walk_every = stretch(
                    full_walk_every,
                    c.full_walk_cpu * STRETCH,
                    FULL_WALK_AT_MOST_EVERY,
                );
                let tracked_cpu = c.tracked_walks_cpu();
                let plan = ReadPlan {
                    dump_all: due(c.full_dump_ns, dump_every),
                    walk_all: due(c.full_walk_ns, walk_every),
                    tracked_busy_every: stretch(
                        Duration::ZERO,
                        tracked_cpu * TRACKED_STRETCH,
                        TRACKED_AT_MOST_EVERY,
                    ),
                    tracked_quiet_every: stretch(
                        quiet_tracked_for,
                        tracked_cpu * QUIET_STRETCH,
                        QUIET_AT_MOST_EVERY,
                    ),
                };
                // A full dump reads the index afresh and needs nothing of the last one's:
                // it fills that one again, so a million sockets' index is never held twice.
                let index = if plan.dump_all {
                    std::mem::take(&mut c.base)
                } else {
                    SlotIndex::default()
                };
                // Likewise a full walk reuses none of the last walk's lists; the join, which
                // compares a refresh's lists with them, counts every process again instead.
                if plan.walk_all {
                    c.procs.drop_lists();
                    c.joined = Joined::default();
                }
                let (prior, joined, lookout) = c.lend();
                let pass = pass::run(
                    &self.opts,
                    Some(prior),
                    Some((joined, lookout)),
                    plan,
                    (Keep::ForRefresh, index),
                    owners,
                );
                if pass.is_err() && (plan.dump_all || plan.walk_all) {
                    // The last full dump's index or walk's lists went with it: start again
                    // from a full pass.
                    self.cache = None;
                }
                pass?
            }
        };
        let at = pass.snapshot.monotonic_ns;
        let cache = self.cache.get_or_insert_with(|| Cache::new(at));
        Ok(cache.keep(pass))
    }
}

/// What an incremental collector keeps between refreshes.
struct Cache {
    procs: ProcessScan,
    /// What every socket inode of the last full dumps was: eight bytes a socket, sorted.
    base: SlotIndex,
    /// The processes joined with `base`, kept up to date with `procs`.
    joined: Joined,
    /// Unowned sockets already looked for, and when the last look was.
    lookout: Lookout,
    namespaces: HashMap<NsId, FullDumpOnly>,
    tracked: HashMap<NsId, Tracked>,
    /// When the last full dump and the last full walk were, and their CPU time: what the
    /// collector's schedule goes by.
    full_dump_ns: u64,
    full_walk_ns: u64,
    full_dump_cpu: Duration,
    full_walk_cpu: Duration,
}

impl Cache {
    /// A cache about to take in its first pass, taken at `at_ns`.
    fn new(at_ns: u64) -> Cache {
        Cache {
            procs: ProcessScan::default(),
            base: SlotIndex::default(),
            joined: Joined::default(),
            lookout: Lookout::default(),
            namespaces: HashMap::new(),
            tracked: HashMap::new(),
            full_dump_ns: at_ns,
            full_walk_ns: at_ns,
            full_dump_cpu: Duration::ZERO,
            full_walk_cpu: Duration::ZERO,
        }
    }

    /// What a refresh reads from, and the join and lookout it brings up to date.
    fn lend(&mut self) -> (Prior<'_>, &mut Joined, &mut Lookout) {
        let prior = Prior {
            procs: &self.procs,
            base: &self.base,
            namespaces: &self.namespaces,
            tracked: &self.tracked,
            full_dump_ns: self.full_dump_ns,
            full_walk_ns: self.full_walk_ns,
        };
        (prior, &mut self.joined, &mut self.lookout)
    }

    /// CPU time of the last walks of every namespace's SYN_RECV and CLOSE_WAIT sockets by a
    /// refresh: each goes over the whole host's table, so they add up.
    fn tracked_walks_cpu(&self) -> Duration {
        self.tracked.values().filter_map(|t| t.cpu).sum()
    }

    /// Take in what `pass` read, and give back its snapshot.
    fn keep(&mut self, pass: Pass) -> Snapshot {
        let plan = pass.plan;
        let at = pass.snapshot.monotonic_ns;
        let walk_cpu = pass.scan.walk_cpu;
        let kept = pass.kept;
        let base_changed = plan.dump_all || !kept.base.is_empty();
        if plan.dump_all {
            self.base = kept.base;
            self.namespaces = kept.namespaces;
            self.full_dump_ns = at;
            self.full_dump_cpu = kept.full_dump_cpu;
        } else {
            // Namespaces that appeared since the last full dump were dumped in full now.
            for (inode, slot) in kept.base.iter() {
                self.base.insert(inode, slot);
            }
            self.base.finish();
            self.namespaces.extend(kept.namespaces);
        }
        if plan.walk_all {
            self.full_walk_ns = at;
            self.full_walk_cpu = walk_cpu;
        }
        for (id, mut tracked) in kept.tracked {
            // A full dump says nothing of what a walk alone costs: keep the last figure.
            if tracked.cpu.is_none() {
                tracked.cpu = self.tracked.get(&id).and_then(|t| t.cpu);
            }
            self.tracked.insert(id, tracked);
        }
        // The ports in use were counted by the dump, their owners named only after the join.
        for (id, full) in &mut self.namespaces {
            let model_id = id.model_id();
            if let Some(ns) = pass.snapshot.netns.iter().find(|n| n.id == model_id)
                && full.port_use.is_empty()
            {
                full.port_use.clone_from(&ns.port_use);
            }
        }
        // Forget namespaces that are gone.
        let live: HashSet<&str> = pass.snapshot.netns.iter().map(|n| n.id.as_str()).collect();
        self.namespaces
            .retain(|id, _| live.contains(id.model_id().as_str()));
        self.tracked
            .retain(|id, _| live.contains(id.model_id().as_str()));
        // Before the last scan goes: the lists this one shares with it are kept as they are.
        let mut scan = pass.scan;
        scan.own_lists();
        self.procs = scan;
        if base_changed {
            self.joined = Joined::rebuild(&mut self.procs.processes, &self.base);
        }
        pass.snapshot
    }
}

/// `every`, or `stretched` (a part's CPU time, times how far it stretches) when that is
/// longer, up to `at_most`.
fn stretch(every: Duration, stretched: Duration, at_most: Duration) -> Duration {
    every.max(stretched.min(at_most))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_costly_full_part_is_spread_out_to_a_third_of_one_percent() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(
            stretch(s(5), ms(10) * STRETCH, s(60)),
            s(5),
            "cheap: as configured"
        );
        assert_eq!(
            stretch(s(5), ms(100) * STRETCH, s(60)),
            s(30),
            "300x its cost"
        );
        assert_eq!(
            stretch(s(5), s(2) * STRETCH, s(60)),
            s(60),
            "at most a minute"
        );
        assert_eq!(
            stretch(s(90), s(2) * STRETCH, s(60)),
            s(90),
            "never below what was asked"
        );
    }
}
