//! Where a pass reads which process holds which socket: the /proc walk (one `readlinkat` per
//! descriptor) or the BPF iterator ([`bpf`], every process's socket descriptors in one read),
//! as `--owners auto|proc|bpf` asks and the host permits.
//!
//! Owns the loaded iterator across the passes of a collector, the choice of each pass, and
//! why the other source was not used. With `auto`, the iterator is used where it loads (root,
//! or CAP_BPF with CAP_PERFMON; a kernel with BTF and the task_file iterator) and the /proc
//! walk elsewhere; with `bpf`, a host where it does not load or run is an error. Either way
//! a refresh that would walk only a few processes (those new or whose descriptor count
//! changed) walks them when that is cheaper than one run of the iterator over the whole
//! host: at 1,000,000 sockets a run costs about as much as the rest of a refresh many times
//! over, and the dashboard refreshes every second.

use std::time::Duration;

use super::bpf::{LoadError, SocketIterator};
use super::clock::thread_cpu_of;
use super::notes;
use super::vocab::SocketsOfEach;
use super::{CollectError, Owners};

/// What one readlinkat of the /proc walk costs, about (measured on the project's test machine):
/// a refresh that would walk fewer descriptors than the last run of the iterator cost walks
/// them.
const WALK_COST_PER_FD: Duration = Duration::from_micros(3);

/// The source of owners of a one-shot pass or of a collector's passes.
pub(super) struct OwnerSource {
    asked: Owners,
    /// The loaded iterator, or why there is none (`None`: `--owners proc`).
    iterator: Option<Result<SocketIterator, LoadError>>,
    /// CPU time of the iterator's last run.
    last_run: Option<Duration>,
    /// How the last pass read the owners.
    used: Used,
}

/// How a pass read the owners.
#[derive(Debug)]
enum Used {
    Iterator,
    /// The /proc walk: a refresh for which it was cheaper.
    WalkCheaper,
    /// The /proc walk, after the iterator failed to run.
    WalkAfter(String),
    Walk,
}

impl OwnerSource {
    /// Load the iterator unless `--owners proc`: with `--owners bpf`, one that does not load
    /// is the error.
    pub(super) fn new(asked: Owners) -> Result<OwnerSource, CollectError> {
        let iterator = match asked {
            Owners::Proc => None,
            Owners::Auto => Some(SocketIterator::load()),
            Owners::Bpf => Some(Ok(SocketIterator::load().map_err(CollectError::Owners)?)),
        };
        Ok(OwnerSource {
            asked,
            iterator,
            last_run: None,
            used: Used::Walk,
        })
    }

    /// The socket table of every process for a pass whose /proc walk would read `to_walk`
    /// descriptors (`full`: every process's), or `None` for the walk.
    pub(super) fn table(&mut self, to_walk: u64, full: bool) -> Option<(SocketsOfEach, Duration)> {
        let Some(Ok(iterator)) = &mut self.iterator else {
            self.used = Used::Walk;
            return None;
        };
        let walk_cost = WALK_COST_PER_FD.saturating_mul(u32::try_from(to_walk).unwrap_or(u32::MAX));
        let cheaper_to_walk = self.last_run.is_some_and(|run| walk_cost < run);
        if !full && cheaper_to_walk {
            self.used = Used::WalkCheaper;
            return None;
        }
        let (read, cpu) = thread_cpu_of(|| iterator.read());
        self.last_run = Some(cpu);
        match read {
            Ok(table) => {
                self.used = Used::Iterator;
                Some((table.processes, cpu))
            }
            Err(err) => {
                self.used = Used::WalkAfter(err.to_string());
                None
            }
        }
    }

    /// The note that says which source the last pass used, and why not the other; or the
    /// iterator's failure to run, when `--owners bpf` makes it the pass's.
    pub(super) fn note(&self) -> Result<String, CollectError> {
        if let (Used::WalkAfter(why), Owners::Bpf) = (&self.used, self.asked) {
            return Err(CollectError::OwnersRead(why.clone()));
        }
        Ok(match (&self.used, &self.iterator) {
            (Used::Iterator, _) => notes::owners_from_iterator(),
            (Used::WalkCheaper, _) => notes::owners_walked_cheaper(),
            (Used::WalkAfter(why), _) => notes::owners_walked_after(why),
            (Used::Walk, Some(Err(why))) => notes::owners_walked_unloaded(why),
            (Used::Walk, _) => notes::owners_walked_as_asked(),
        })
    }
}

impl std::fmt::Debug for OwnerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerSource")
            .field("asked", &self.asked)
            .field("loaded", &matches!(self.iterator, Some(Ok(_))))
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}
