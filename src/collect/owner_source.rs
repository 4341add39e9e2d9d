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
//! over, and the dashboard refreshes every second. With `auto`, a first full pass does the
//! same when the processes in scope hold few of the host's descriptors.

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
/// What one run of the iterator costs for each descriptor of the host, about (measured
/// likewise: 0.35 µs a socket descriptor, less for the others, which it passes over).
const RUN_COST_PER_FD: Duration = Duration::from_nanos(300);

/// The source of owners of a one-shot pass or of a collector's passes.
pub(super) struct OwnerSource {
    asked: Owners,
    /// The iterator, loading or loaded, or why there is none (`None`: `--owners proc`).
    iterator: Option<Loading>,
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
    /// The /proc walk: a first full pass whose processes hold few of the host's descriptors.
    WalkFewer,
    /// The /proc walk, after the iterator failed to run.
    WalkAfter(String),
    Walk,
}

impl OwnerSource {
    /// Start loading the iterator unless `--owners proc`. The load (tens of milliseconds,
    /// most of it the loader parsing the kernel's BTF) runs on a thread of its own beside the
    /// pass's first steps, which read /proc on this one; the first pass that needs the
    /// iterator waits for it. With `--owners bpf`, one that does not load is that pass's
    /// error.
    pub(super) fn new(asked: Owners) -> OwnerSource {
        let iterator = match asked {
            Owners::Proc => None,
            Owners::Auto | Owners::Bpf => Some(Loading::start()),
        };
        OwnerSource {
            asked,
            iterator,
            last_run: None,
            used: Used::Walk,
        }
    }

    /// Wait for the iterator's load, if it is under way.
    pub(super) fn wait_loaded(&mut self) {
        if let Some(loading) = &mut self.iterator {
            loading.wait();
        }
    }

    /// Whether the iterator's load is under way.
    pub(super) fn is_loading(&self) -> bool {
        self.iterator
            .as_ref()
            .is_some_and(|loading| loading.loaded.is_none())
    }

    /// The socket table of every process for a pass whose /proc walk would read `to_walk`
    /// descriptors (`full`: every process's in scope) of the `held` that every process of
    /// the host holds, or `None` for the walk.
    ///
    /// A refresh walks when that costs less than the iterator's last run. A full pass runs
    /// the iterator, but for the first one with `auto` when the walk would cost less than a
    /// run over every descriptor of the host: a namespace of a few processes beside busy
    /// neighbours, whose descriptors the iterator would visit too.
    pub(super) fn table(
        &mut self,
        to_walk: u64,
        held: u64,
        full: bool,
    ) -> Option<(SocketsOfEach, Duration)> {
        let cost = |per_fd: Duration, fds: u64| {
            per_fd.saturating_mul(u32::try_from(fds).unwrap_or(u32::MAX))
        };
        let walk_cost = cost(WALK_COST_PER_FD, to_walk);
        let cheaper_to_walk = match (full, self.last_run) {
            (false, last_run) => last_run.is_some_and(|run| walk_cost < run),
            (true, None) => self.asked == Owners::Auto && walk_cost < cost(RUN_COST_PER_FD, held),
            (true, Some(_)) => false,
        };
        if cheaper_to_walk && self.iterator.is_some() {
            self.used = if full {
                Used::WalkFewer
            } else {
                Used::WalkCheaper
            };
            return None;
        }
        let Some(Ok(iterator)) = self.iterator.as_mut().map(Loading::wait) else {
            self.used = Used::Walk;
            return None;
        };
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
    pub(super) fn note(&mut self) -> Result<String, CollectError> {
        // Waited for even when the walk was cheaper: on the other core, beside the walk, and
        // a load refused is worth saying.
        let unloaded = match self.iterator.as_mut().map(Loading::wait) {
            Some(Err(why)) => Some(why.clone()),
            _ => None,
        };
        match (&self.used, self.asked, unloaded) {
            (Used::WalkAfter(why), Owners::Bpf, _) => Err(CollectError::OwnersRead(why.clone())),
            (_, Owners::Bpf, Some(why)) => Err(CollectError::Owners(why)),
            (Used::Iterator, ..) => Ok(notes::owners_from_iterator()),
            (Used::WalkCheaper, ..) => Ok(notes::owners_walked_cheaper()),
            (Used::Walk | Used::WalkFewer, _, Some(why)) => Ok(notes::owners_walked_unloaded(&why)),
            (Used::WalkFewer, ..) => Ok(notes::owners_walked_fewer()),
            (Used::WalkAfter(why), ..) => Ok(notes::owners_walked_after(why)),
            (Used::Walk, ..) => Ok(notes::owners_walked_as_asked()),
        }
    }
}

/// The iterator's load: under way on a thread of its own, or done. That thread's allocator
/// arena gives back what the loader parsed when it is freed, instead of leaving it under what
/// the pass allocates next.
struct Loading {
    thread: Option<std::thread::JoinHandle<Result<SocketIterator, LoadError>>>,
    loaded: Option<Result<SocketIterator, LoadError>>,
}

impl Loading {
    /// Start the load on a thread of its own, or load here if no thread can be started.
    fn start() -> Loading {
        match std::thread::Builder::new()
            .name("bpf-load".to_owned())
            .spawn(SocketIterator::load)
        {
            Ok(thread) => Loading {
                thread: Some(thread),
                loaded: None,
            },
            Err(_) => Loading {
                thread: None,
                loaded: Some(SocketIterator::load()),
            },
        }
    }

    /// The load's outcome, once it is done.
    fn wait(&mut self) -> &mut Result<SocketIterator, LoadError> {
        let thread = &mut self.thread;
        self.loaded.get_or_insert_with(|| match thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Err(LoadError::Refused("the load was not started".to_owned())),
        })
    }
}

impl std::fmt::Debug for OwnerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerSource")
            .field("asked", &self.asked)
            .field(
                "loaded",
                &self
                    .iterator
                    .as_ref()
                    .map(|l| l.loaded.as_ref().map(Result::is_ok)),
            )
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}
