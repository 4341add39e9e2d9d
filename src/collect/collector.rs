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
//! | SYN_RECV and CLOSE_WAIT sockets, when a TCP counter moved (else carried over, 5 s at most); stretched to 40× their CPU time | 20–70 ms: a walk of every TCP socket of the host, per namespace |
//!
//! | less often | cost | period |
//! | --- | --- | --- |
//! | full socket dump: every state, unix sockets, sysctls | ~0.3 s | 5 s, stretched to 100× its CPU time, 60 s at most |
//! | every process's descriptors walked | ~0.5 s | 30 s, stretched to 100× its CPU time, 300 s at most |
//!
//! Stretching keeps each full part at about 1 % of one core whatever the host's size; the
//! snapshot's [`Freshness`](crate::model::Freshness) says how old each carried-over part is.

use std::time::Duration;

use super::carry_over::{Cache, Keep};
use super::clock::monotonic_ns;
use super::owner_source::OwnerSource;
use super::read_plan::ReadPlan;
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
        /// often, unless one costs more than 1 % of a core at this rate: the period then
        /// stretches to 100× the CPU time of the last one, up to a minute.
        full_dump_every: Duration,
        /// Every process's descriptors walked at least this often (in between, only new
        /// processes and those whose descriptor count or start time changed), stretched in
        /// the same way up to five minutes.
        full_walk_every: Duration,
        /// A namespace where no TCP counter moved may keep its SYN_RECV and CLOSE_WAIT
        /// sockets from an earlier read for this long. Where counters move, they are read
        /// again in every refresh, unless those reads (a walk of every TCP socket of the
        /// host for each namespace) cost more than 2.5 % of a core at that rate: the period
        /// then stretches to 40× their CPU time, up to a minute.
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
const STRETCH: u32 = 100;
/// How far the period of SYN_RECV / CLOSE_WAIT walks stretches: their CPU time, times this.
const TRACKED_STRETCH: u32 = 40;
const TRACKED_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const FULL_DUMP_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const FULL_WALK_AT_MOST_EVERY: Duration = Duration::from_secs(300);

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
        let owners = match &mut self.owners {
            Some(owners) => owners,
            None => self.owners.insert(OwnerSource::new(self.opts.owners)?),
        };
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
                Keep::Nothing,
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
                Keep::ForRefresh,
                owners,
            )?,
            Some(c) => {
                let dump_every = stretch(full_dump_every, c.full_dump_cpu, FULL_DUMP_AT_MOST_EVERY);
                let walk_every = stretch(full_walk_every, c.full_walk_cpu, FULL_WALK_AT_MOST_EVERY);
                let busy_every =
                    (c.tracked_walks_cpu() * TRACKED_STRETCH).min(TRACKED_AT_MOST_EVERY);
                let plan = ReadPlan {
                    dump_all: due(c.full_dump_ns, dump_every),
                    walk_all: due(c.full_walk_ns, walk_every),
                    tracked_busy_every: busy_every,
                    tracked_quiet_every: quiet_tracked_for.max(busy_every),
                };
                let (prior, joined, lookout) = c.lend();
                pass::run(
                    &self.opts,
                    Some(prior),
                    Some((joined, lookout)),
                    plan,
                    Keep::ForRefresh,
                    owners,
                )?
            }
        };
        let at = pass.snapshot.monotonic_ns;
        let cache = self.cache.get_or_insert_with(|| Cache::new(at));
        Ok(cache.keep(pass))
    }
}

/// `every`, or 100× `cost` when that is longer, up to `at_most`.
fn stretch(every: Duration, cost: Duration, at_most: Duration) -> Duration {
    every.max((cost * STRETCH).min(at_most))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_costly_full_part_is_spread_out_to_about_one_percent() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(stretch(s(5), ms(10), s(60)), s(5), "cheap: as configured");
        assert_eq!(stretch(s(5), ms(300), s(60)), s(30), "100x its cost");
        assert_eq!(stretch(s(5), s(2), s(60)), s(60), "at most a minute");
        assert_eq!(
            stretch(s(90), s(2), s(60)),
            s(90),
            "never below what was asked"
        );
    }
}
