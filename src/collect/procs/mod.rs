//! The /proc process walk: for every process its name, start time, owner, network
//! namespace, descriptor count and limit, and the inodes of the sockets it holds.
//!
//! Owns the reads of `/proc/PID/{stat,limits,ns/net,fd}`. It must not look at the sockets
//! themselves (that is `sock_diag`'s job, in `netlink`) nor decide what is bad.
//!
//! The walk is two parallel passes over the pid list, each handing out work through one
//! atomic index:
//!
//! 1. *inspect* ([`inspect`]): the few fixed-size facts of each process, and its descriptor
//!    count from `stat("/proc/PID/fd").st_size` (kernel ≥ 6.2; the count is given even to
//!    users who may not list the directory);
//! 2. *descriptors* ([`Inspected::walk`]): one `readlinkat` per descriptor relative to the
//!    open `fd` directory, into a stack buffer, biggest processes first so that no thread is
//!    left alone at the end with the 10,000-descriptor process.
//!
//! The passes are separate calls so that the collector can learn every process's network
//! namespace from pass 1 and dump those namespaces while pass 2 runs. Pass 2 may be scoped
//! ([`Inspected::walk_where`]): a report of one namespace walks only the descriptors of that
//! namespace's processes, and keeps the others, with what pass 1 read of them, in
//! [`ProcessScan::unwalked`], for [`walk_unwalked`] to walk later if their sockets are
//! needed.
//!
//! Given the previous scan, a walk is *incremental*: a process whose start time and
//! descriptor count are unchanged keeps the socket inodes and limit it had, and only new
//! processes and those whose count changed are walked again. A process that swaps one socket
//! for another under the same count keeps its old list until the next full walk; the
//! collector bounds that by walking everything every so often.
//!
//! Every path is opened relative to one descriptor of the proc root, and directories are
//! read with `getdents64` into a buffer reused by each thread: nothing is allocated per
//! descriptor. A process that exits, or that this user may not inspect, is recorded as
//! such in [`ScannedProcess::fd_scan`] and [`ProcessScanStats`], never skipped silently.

mod parse;

use std::cmp::Reverse;
use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, RawDir};
use rustix::io::Errno;
use rustix::path::DecInt;

use super::clock::thread_cpu_of;
pub use super::vocab::{NsId, SeenProcess, SocketsOfEach};
use crate::model::{FdLimit, FdScan, ProcessScanStats};

pub use parse::{
    LimitsError, PF_KTHREAD, Stat, StatError, parse_nofile_limit, parse_pid, parse_socket_link,
    parse_stat,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedProcess {
    pub pid: u32,
    pub comm: String,
    /// Start time in clock ticks after boot, when readable: with the pid, it names one
    /// process across scans.
    pub start_time: Option<u64>,
    /// A kernel thread (`PF_KTHREAD`): always in the initial namespaces, never with sockets.
    pub kernel_thread: bool,
    /// Owner of `/proc/PID`: the effective uid, or root for a process that is not dumpable
    /// (after a setuid, or with `PR_SET_DUMPABLE` 0), as the kernel reports it.
    pub uid: u32,
    /// The network namespace `/proc/PID/ns/net` names, when readable.
    pub netns: Option<NsId>,
    pub fds: Option<u64>,
    pub fd_limit: Option<FdLimit>,
    pub fd_scan: FdScan,
    /// One entry per socket descriptor, in descriptor-listing order (duplicates kept), or
    /// sorted once joined.
    pub socket_inodes: SocketInodes,
}

/// A process's socket inodes, shared rather than copied by a scan that reuses an earlier
/// walk of the process: at a million sockets a copy of every list is 8 MB made and dropped
/// at each refresh, beside the lists the collector keeps. It remembers that it was sorted:
/// the collector's refresh sorts and searches every process's list, and looking again at a
/// million inodes that did not change was a tenth of a refresh at a million sockets.
#[derive(Debug, Clone, Default)]
pub struct SocketInodes {
    list: Arc<Vec<u64>>,
    sorted: bool,
}

impl SocketInodes {
    /// Sort the list, copying it first only when it is shared and not sorted yet.
    pub fn sort(&mut self) {
        if !self.sorted {
            if !self.list.is_sorted() {
                Arc::make_mut(&mut self.list).sort_unstable();
            }
            self.sorted = true;
        }
    }

    /// Whether [`SocketInodes::sort`] sorted it (a list just walked is in descriptor order).
    pub fn known_sorted(&self) -> bool {
        self.sorted
    }
}

impl PartialEq for SocketInodes {
    fn eq(&self, other: &SocketInodes) -> bool {
        Arc::ptr_eq(&self.list, &other.list) || self.list == other.list
    }
}

impl Eq for SocketInodes {}

impl std::ops::Deref for SocketInodes {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &self.list
    }
}

impl<'a> IntoIterator for &'a SocketInodes {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl From<Vec<u64>> for SocketInodes {
    fn from(inodes: Vec<u64>) -> SocketInodes {
        SocketInodes {
            list: Arc::new(inodes),
            sorted: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProcessScan {
    /// The processes whose descriptors were walked (or reused from an earlier walk), or
    /// could not be: sorted by pid.
    pub processes: Vec<ScannedProcess>,
    /// The processes a scoped walk left out ([`Inspected::walk_where`]), sorted by pid: what
    /// pass 1 read of them, with no socket inodes (`fd_scan` says nothing of them).
    pub unwalked: Vec<ScannedProcess>,
    pub stats: ProcessScanStats,
    /// Processes whose descriptors were walked in this scan; the others kept the previous
    /// scan's socket inodes.
    pub walked: u64,
    /// CPU time the descriptor walks took, all threads together.
    pub walk_cpu: std::time::Duration,
    /// The socket descriptors came from one read of every process's table from the kernel
    /// ([`Inspected::walk_where_using`]), not from /proc: fresh for every process, those of
    /// [`ProcessScan::unwalked`] included (which then hold their socket inodes).
    pub read_at_once: bool,
    /// Failures the counts in `stats` do not explain (the proc root not opening, an
    /// unexpected error on some file), grouped: the notes word them.
    pub problems: Vec<ScanProblem>,
}

impl ProcessScan {
    /// Let go of every process's socket list, keeping the rest of what was read of it: for a
    /// collector whose next pass walks every process again, so that the lists it walks are
    /// not held beside these.
    pub fn drop_lists(&mut self) {
        for p in self.processes.iter_mut().chain(&mut self.unwalked) {
            drop(std::mem::take(&mut p.socket_inodes));
        }
    }

    /// Copy every process's socket list that this scan alone holds into an allocation of
    /// the calling thread, sized to fit, dropping the walkers' own. A collector keeps its
    /// scan for the life of the dashboard; the lists were made on walker threads, each with
    /// an arena of the allocator's, which a list kept there holds on to between refreshes
    /// (with the holes around it). Copying them to the collector's one thread lets those
    /// arenas shrink once a refresh is over: a copy of eight bytes a socket walked. Called
    /// while the collector still holds its previous scan, a list shared with it (reused, not
    /// walked) is the collector's copy already, and is left alone.
    pub fn own_lists(&mut self) {
        for p in &mut self.processes {
            let inodes = &mut p.socket_inodes;
            if !inodes.is_empty() && Arc::strong_count(&inodes.list) == 1 {
                inodes.list = Arc::new(inodes.list.to_vec());
            }
        }
    }
}

/// What the walk could not read that the counts of [`ProcessScanStats`] do not explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanProblem {
    /// The proc root did not open: no process is seen.
    RootUnopened { root: PathBuf, err: Errno },
    /// The proc root could not be listed to the end.
    RootUnlisted { root: PathBuf, err: Errno },
    /// One file of `processes` processes (`file`, as `/proc/PID/limits`) could not be read,
    /// for one reason.
    Unread {
        file: &'static str,
        processes: u64,
        why: Unread,
    },
}

/// Why one file of a process could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// The system refused, unexpectedly (a process gone, or another user's, is no problem).
    Io(Errno),
    /// `/proc/PID/limits` did not parse.
    Limits(LimitsError),
    /// `/proc/PID/stat` did not parse.
    Stat(StatError),
}

impl ProcessScan {
    /// The process `pid` of this scan.
    pub fn process(&self, pid: u32) -> Option<&ScannedProcess> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.processes[i])
    }

    /// The process `pid` as this scan saw it, walked or not: what pass 1 may reuse.
    fn seen_before(&self, pid: u32) -> Option<&ScannedProcess> {
        self.process(pid).or_else(|| {
            self.unwalked
                .binary_search_by_key(&pid, |p| p.pid)
                .ok()
                .map(|i| &self.unwalked[i])
        })
    }
}

/// Walk every process under `proc_root` (normally `/proc`) with `threads` threads.
pub fn scan_processes(proc_root: &Path, threads: usize) -> ProcessScan {
    inspect(proc_root, threads, None).walk()
}

/// Pass 1 done: every process's facts, the descriptor walks still to do.
#[allow(clippy::struct_field_names)] // `inspected` is what pass 1 found of each pid
pub struct Inspected<'p> {
    /// `None` when the proc root did not open: nothing to walk.
    root: Option<Root>,
    pids: Vec<u32>,
    inspected: Vec<Inspection>,
    threads: usize,
    previous: Option<&'p ProcessScan>,
    problems: Vec<ScanProblem>,
}

/// Pass 1 over every process under `proc_root` (normally `/proc`) with `threads` threads.
///
/// With `previous`, the scan is incremental: the limit of a process seen before with the same
/// start time is not read again, and [`Inspected::walk`] walks only the processes that are
/// new or whose descriptor count changed.
pub fn inspect<'p>(
    proc_root: &Path,
    threads: usize,
    previous: Option<&'p ProcessScan>,
) -> Inspected<'p> {
    let root = match Root::open(proc_root) {
        Ok(root) => root,
        Err(err) => {
            return Inspected {
                root: None,
                pids: Vec::new(),
                inspected: Vec::new(),
                threads: 1,
                previous,
                problems: vec![ScanProblem::RootUnopened {
                    root: proc_root.to_owned(),
                    err,
                }],
            };
        }
    };
    let mut problems = Vec::new();
    let pids = match list_pids(&root.fd) {
        Ok(pids) => pids,
        Err((pids, err)) => {
            let root = proc_root.to_owned();
            problems.push(ScanProblem::RootUnlisted { root, err });
            pids
        }
    };
    let threads = threads.clamp(1, pids.len().max(1));
    let inspected = parallel_map(&pids, threads, Scratch::new, |&pid, scratch| {
        let before = previous.and_then(|scan| scan.seen_before(pid));
        root.inspect(pid, scratch, before)
    });
    Inspected {
        root: Some(root),
        pids,
        inspected,
        threads,
        previous,
        problems,
    }
}

impl Inspected<'_> {
    /// Every process pass 1 found, in pid order.
    pub fn seen(&self) -> impl Iterator<Item = SeenProcess<'_>> {
        self.inspected
            .iter()
            .filter_map(|inspection| match inspection {
                Inspection::Gone => None,
                Inspection::Seen(seen) => Some(SeenProcess {
                    pid: seen.pid,
                    comm: &seen.comm,
                    start_time: seen.start_time,
                    kernel_thread: seen.kernel_thread,
                    netns: seen.netns,
                }),
            })
    }

    /// Pass 2: walk the descriptors (of every process, or with a previous scan only of
    /// those that changed) and join both passes.
    pub fn walk(self) -> ProcessScan {
        self.walk_where(|_| true)
    }

    /// Pass 2 over the processes `wanted` picks out (of those pass 1 saw): the others are
    /// not walked, and go to [`ProcessScan::unwalked`].
    pub fn walk_where(self, wanted: impl Fn(&SeenProcess<'_>) -> bool) -> ProcessScan {
        self.walk_where_using(wanted, |_, _| None)
    }

    /// Pass 2 as [`Inspected::walk_where`], or with every process's socket descriptors read
    /// from the kernel at once: `at_once` is told how many descriptors the walk would read
    /// (the counts of the processes to walk) and how many every process holds (what a read of
    /// the kernel's whole table visits), and returns the table and the CPU time its read
    /// took, or `None` for the walk.
    ///
    /// From the table, every process in scope gets its sockets afresh (none is reused) with
    /// the descriptor count pass 1 read; a process with no count (a kernel before 6.2) is
    /// walked, for its count. The processes out of scope keep theirs too, for
    /// [`walk_unwalked`].
    pub fn walk_where_using(
        self,
        wanted: impl Fn(&SeenProcess<'_>) -> bool,
        at_once: impl FnOnce(u64, u64) -> Option<(SocketsOfEach, std::time::Duration)>,
    ) -> ProcessScan {
        let in_scope: Vec<bool> = self
            .inspected
            .iter()
            .map(|inspection| match inspection {
                Inspection::Gone => true,
                Inspection::Seen(seen) => wanted(&SeenProcess {
                    pid: seen.pid,
                    comm: &seen.comm,
                    start_time: seen.start_time,
                    kernel_thread: seen.kernel_thread,
                    netns: seen.netns,
                }),
            })
            .collect();
        let Inspected {
            root,
            pids,
            inspected,
            threads,
            previous,
            mut problems,
        } = self;
        let Some(root) = root else {
            return ProcessScan {
                problems,
                ..ProcessScan::default()
            };
        };
        let mut reuse: Vec<Option<&ScannedProcess>> = inspected
            .iter()
            .map(|inspection| match inspection {
                Inspection::Seen(seen) => previous
                    .and_then(|scan| scan.process(seen.pid))
                    .filter(|before| seen.unchanged_since(before)),
                Inspection::Gone => None,
            })
            .collect();
        let alive = |i: usize| matches!(&inspected[i], Inspection::Seen(p) if !p.vanished);
        let to_walk: u64 = (0..pids.len())
            .filter(|&i| reuse[i].is_none() && in_scope[i] && alive(i))
            .map(|i| inspected[i].fd_count_hint())
            .sum();
        let held: u64 = (0..pids.len())
            .filter(|&i| alive(i))
            .map(|i| inspected[i].fd_count_hint())
            .sum();
        let mut table = at_once(to_walk, held);
        let needs_walk: Vec<bool> = (0..pids.len())
            .map(|i| {
                in_scope[i]
                    && alive(i)
                    && match table {
                        None => reuse[i].is_none(),
                        // The table has the sockets, pass 1 the count; without a count, walk.
                        Some(_) => inspected[i].fd_count_hint() == 0,
                    }
            })
            .collect();
        if table.is_some() {
            reuse.fill(None);
        }
        let (mut walks, mut walk_cpu) =
            walk_biggest_first(&root, &pids, &inspected, &needs_walk, threads);
        if let Some((table, cpu)) = &mut table {
            walk_cpu += *cpu;
            for (i, walk) in walks.iter_mut().enumerate() {
                if walk.is_none() && in_scope[i] && alive(i) {
                    *walk = Some(FdWalk {
                        scan: FdScan::Complete,
                        listed: inspected[i].fd_count_hint(),
                        socket_inodes: take_sockets(table, pids[i]),
                        failure: None,
                    });
                }
            }
        }
        let mut scan = assemble(inspected, walks, &reuse, &in_scope);
        if let Some((mut table, _)) = table {
            for p in &mut scan.unwalked {
                p.socket_inodes = take_sockets(&mut table, p.pid).into();
            }
            scan.read_at_once = true;
        }
        scan.walk_cpu = walk_cpu;
        problems.append(&mut scan.problems);
        scan.problems = problems;
        scan
    }
}

/// The sockets of `pid` in `table`, taken out of it; none when it holds none.
fn take_sockets(table: &mut SocketsOfEach, pid: u32) -> Vec<u64> {
    table
        .binary_search_by_key(&pid, |(p, _)| *p)
        .map(|at| std::mem::take(&mut table[at].1))
        .unwrap_or_default()
}

/// Walk the descriptors of `pids` of `scan` again, now, on this thread, for an incremental
/// scan that reused their earlier walks (their descriptor counts had not changed) and then
/// found sockets that nothing in the scan holds. Returns the pids whose walk completed, with
/// their sockets replaced; a pid not in `scan`, or a process gone or unreadable now, keeps
/// what it had.
pub fn rewalk(proc_root: &Path, scan: &mut ProcessScan, pids: &[u32]) -> Vec<u32> {
    let Ok(root) = Root::open(proc_root) else {
        return Vec::new();
    };
    let mut scratch = Scratch::new();
    let mut walked = Vec::new();
    for &pid in pids {
        let Ok(i) = scan.processes.binary_search_by_key(&pid, |p| p.pid) else {
            continue;
        };
        let walk = root.walk_fds(pid, &mut scratch);
        if walk.scan != FdScan::Complete {
            continue;
        }
        let p = &mut scan.processes[i];
        // The count that goes with this list, so that the next refresh compares with it.
        p.fds = Some(walk.listed);
        p.socket_inodes = walk.socket_inodes.into();
        p.socket_inodes.sort();
        walked.push(pid);
    }
    scan.walked += walked.len() as u64;
    walked
}

/// Walk the descriptors of the processes of `scan.unwalked` that `pick` picks out, now, with
/// `threads` threads: they leave `unwalked` and are returned, walked (socket inodes sorted),
/// pid order kept. A process that is gone or unreadable now comes back with that `fd_scan`.
pub fn walk_unwalked(
    proc_root: &Path,
    scan: &mut ProcessScan,
    threads: usize,
    pick: impl Fn(&ScannedProcess) -> bool,
) -> Walked {
    let (picked, kept): (Vec<ScannedProcess>, Vec<ScannedProcess>) =
        std::mem::take(&mut scan.unwalked)
            .into_iter()
            .partition(pick);
    scan.unwalked = kept;
    if scan.read_at_once {
        // Read with everyone else's: nothing to walk.
        let mut walked = Walked::default();
        for mut p in picked {
            p.fd_scan = FdScan::Complete;
            p.socket_inodes.sort();
            walked.processes.push(p);
        }
        scan.walked += walked.processes.len() as u64;
        return walked;
    }
    let Ok(root) = Root::open(proc_root) else {
        // Not walked after all: back where they were.
        scan.unwalked.extend(picked);
        scan.unwalked.sort_by_key(|p| p.pid);
        return Walked::default();
    };
    let mut order: Vec<usize> = (0..picked.len()).collect();
    order.sort_by_key(|&i| Reverse(picked[i].fds.unwrap_or(0)));
    let threads = threads.clamp(1, order.len().max(1));
    let walks = parallel_map(&order, threads, Scratch::new, |&i, scratch| {
        thread_cpu_of(|| root.walk_fds(picked[i].pid, scratch))
    });
    let mut by_index: Vec<Option<FdWalk>> =
        std::iter::repeat_with(|| None).take(picked.len()).collect();
    let mut cpu = std::time::Duration::ZERO;
    for (i, (walk, took)) in order.into_iter().zip(walks) {
        by_index[i] = Some(walk);
        cpu += took;
    }
    let mut walked = Walked {
        cpu,
        ..Walked::default()
    };
    for (mut p, walk) in picked.into_iter().zip(by_index) {
        let Some(walk) = walk else { continue };
        p.fd_scan = walk.scan;
        if walk.scan == FdScan::Complete && p.fds.is_none() {
            p.fds = Some(walk.listed);
        }
        if walk.scan != FdScan::Complete {
            walked.unreadable += 1;
        }
        p.socket_inodes = walk.socket_inodes.into();
        p.socket_inodes.sort();
        walked.processes.push(p);
    }
    scan.walked += walked.processes.len() as u64;
    walked
}

/// What [`walk_unwalked`] walked.
#[derive(Debug, Default)]
pub struct Walked {
    /// In pid order.
    pub processes: Vec<ScannedProcess>,
    /// Of those, the processes whose descriptors could not be read to the end (gone, or
    /// denied).
    pub unreadable: u64,
    /// CPU time the walks took, all threads together.
    pub cpu: std::time::Duration,
}

impl ProcessScan {
    /// Put walked processes (from [`walk_unwalked`]) among the scan's processes, in pid order.
    pub fn add_walked(&mut self, processes: Vec<ScannedProcess>) {
        if processes.is_empty() {
            return;
        }
        for p in &processes {
            match p.fd_scan {
                FdScan::Complete => {}
                FdScan::Denied => self.stats.fds_denied += 1,
                FdScan::Vanished => self.stats.vanished += 1,
            }
            self.stats.socket_fds += p.socket_inodes.len() as u64;
        }
        self.processes.extend(processes);
        self.processes.sort_by_key(|p| p.pid);
        self.stats.not_walked = self.unwalked.len() as u64;
    }

    /// Put processes walked by [`walk_unwalked`] but not kept back among the unwalked,
    /// without what their walk found.
    pub fn put_back(&mut self, processes: Vec<ScannedProcess>) {
        self.unwalked.extend(processes.into_iter().map(|mut p| {
            p.socket_inodes = SocketInodes::default();
            p
        }));
        self.unwalked.sort_by_key(|p| p.pid);
        self.stats.not_walked = self.unwalked.len() as u64;
    }
}

/// Pass 2 over the processes `needs_walk` marks (alive, in scope, and with no earlier walk to
/// reuse), the most descriptors first. The result lines up with `pids` (`None` where there
/// was no walk), with the CPU time the walks took.
fn walk_biggest_first(
    root: &Root,
    pids: &[u32],
    inspected: &[Inspection],
    needs_walk: &[bool],
    threads: usize,
) -> (Vec<Option<FdWalk>>, std::time::Duration) {
    let mut order: Vec<usize> = (0..pids.len()).filter(|&i| needs_walk[i]).collect();
    order.sort_by_key(|&i| Reverse(inspected[i].fd_count_hint()));
    let walks = parallel_map(&order, threads, Scratch::new, |&i, scratch| {
        thread_cpu_of(|| root.walk_fds(pids[i], scratch))
    });
    let mut by_pid: Vec<Option<FdWalk>> =
        std::iter::repeat_with(|| None).take(pids.len()).collect();
    let mut cpu = std::time::Duration::ZERO;
    for (i, (walk, took)) in order.into_iter().zip(walks) {
        by_pid[i] = Some(walk);
        cpu += took;
    }
    (by_pid, cpu)
}

/// Joins both passes into the result, counting as it goes.
fn assemble(
    inspected: Vec<Inspection>,
    walks: Vec<Option<FdWalk>>,
    reuse: &[Option<&ScannedProcess>],
    in_scope: &[bool],
) -> ProcessScan {
    let mut problems = Problems::default();
    let mut scan = ProcessScan::default();
    scan.stats.processes = inspected.len() as u64;
    for (((inspection, walk), before), &in_scope) in
        inspected.into_iter().zip(walks).zip(reuse).zip(in_scope)
    {
        let Inspection::Seen(seen) = inspection else {
            scan.stats.vanished += 1;
            continue;
        };
        if !in_scope {
            scan.unwalked.push(seen.finish(None, &mut problems));
            continue;
        }
        scan.walked += u64::from(walk.is_some());
        let process = match before {
            Some(before) => seen.reuse(before, &mut problems),
            None => seen.finish(walk, &mut problems),
        };
        match process.fd_scan {
            FdScan::Complete => {}
            FdScan::Denied => scan.stats.fds_denied += 1,
            FdScan::Vanished => scan.stats.vanished += 1,
        }
        scan.stats.socket_fds += process.socket_inodes.len() as u64;
        scan.processes.push(process);
    }
    scan.stats.not_walked = scan.unwalked.len() as u64;
    scan.problems = problems.into_problems();
    scan
}

/// The proc root, opened once; every other path is relative to it.
struct Root {
    fd: OwnedFd,
    is_procfs: bool,
}

/// Buffers one thread reuses for every process it reads.
struct Scratch {
    dirents: Vec<MaybeUninit<u8>>,
    file: Vec<u8>,
    /// The descriptors of the process being walked.
    fds: Vec<u32>,
}

impl Scratch {
    fn new() -> Self {
        // 32 KiB of `getdents64` records is ~1,300 descriptor entries per system call.
        Scratch {
            dirents: vec![MaybeUninit::uninit(); 32 * 1024],
            file: Vec::with_capacity(4096),
            fds: Vec::new(),
        }
    }
}

/// Pass 1's verdict on one pid.
enum Inspection {
    /// Gone before even its name could be read: dropped, and counted as vanished.
    Gone,
    Seen(Seen),
}

impl Inspection {
    fn fd_count_hint(&self) -> u64 {
        match self {
            Inspection::Seen(Seen { fds: Some(n), .. }) => *n,
            _ => 0,
        }
    }
}

/// What pass 1 read of a process.
struct Seen {
    pid: u32,
    comm: String,
    start_time: Option<u64>,
    kernel_thread: bool,
    uid: u32,
    netns: Option<NsId>,
    /// From `stat` of the `fd` directory; `None` when that gave no count.
    fds: Option<u64>,
    fd_limit: Option<FdLimit>,
    /// The process exited during pass 1: its descriptors are not walked.
    vanished: bool,
    /// Unexpected failures, for the scan's problems.
    failures: Vec<(&'static str, Errno)>,
    limits_error: Option<LimitsError>,
    stat_error: Option<StatError>,
}

/// Pass 2's result for one process.
struct FdWalk {
    scan: FdScan,
    /// Descriptors listed that were still open when their link was read.
    listed: u64,
    socket_inodes: Vec<u64>,
    /// An error that was neither "gone" nor "denied".
    failure: Option<Errno>,
}

impl Root {
    fn open(proc_root: &Path) -> Result<Root, Errno> {
        let fd = open_dir(CWD, proc_root, OFlags::RDONLY)?;
        // Only procfs reports a descriptor count as the size of a directory.
        let is_procfs =
            rustix::fs::fstatfs(&fd).is_ok_and(|fs| fs.f_type == rustix::fs::PROC_SUPER_MAGIC);
        Ok(Root { fd, is_procfs })
    }

    /// Pass 1 for `pid`; `before` is the same pid in the previous scan, whose limit is
    /// reused when it is the same process.
    fn inspect(
        &self,
        pid: u32,
        scratch: &mut Scratch,
        before: Option<&ScannedProcess>,
    ) -> Inspection {
        let pid_dir = match open_dir(&self.fd, rustix::path::DecInt::new(pid), OFlags::PATH) {
            Ok(fd) => fd,
            Err(err) if is_gone(err) => return Inspection::Gone,
            Err(err) => {
                let mut seen = Seen::new(pid);
                seen.record("/proc/PID", err);
                return Inspection::Seen(seen);
            }
        };
        let mut seen = Seen::new(pid);

        match read_file(&pid_dir, c"stat", &mut scratch.file) {
            Ok(bytes) => match parse_stat(bytes) {
                Ok(stat) => {
                    seen.comm = stat.comm;
                    seen.start_time = Some(stat.start_time);
                    seen.kernel_thread = stat.flags & PF_KTHREAD != 0;
                }
                Err(err) => seen.stat_error = Some(err),
            },
            Err(err) if is_gone(err) => return Inspection::Gone,
            Err(err) => seen.record("/proc/PID/stat", err),
        }
        match rustix::fs::fstat(&pid_dir) {
            Ok(st) => seen.uid = st.st_uid,
            Err(err) => seen.record("/proc/PID", err),
        }
        match rustix::fs::statat(&pid_dir, c"fd", AtFlags::empty()) {
            Ok(st) if self.is_procfs && st.st_size > 0 => seen.fds = u64::try_from(st.st_size).ok(),
            Ok(_) => {}
            Err(err) => seen.record("/proc/PID/fd", err),
        }
        // A limit changes only through setrlimit/prlimit, rarely: the same process keeps
        // the one read before (a full scan, without `before`, reads it again).
        match before.filter(|b| b.start_time.is_some() && b.start_time == seen.start_time) {
            Some(before) if before.fd_limit.is_some() => seen.fd_limit = before.fd_limit,
            _ => match read_file(&pid_dir, c"limits", &mut scratch.file) {
                Ok(bytes) => match parse_nofile_limit(&String::from_utf8_lossy(bytes)) {
                    Ok(limit) => seen.fd_limit = Some(limit),
                    Err(err) => seen.limits_error = Some(err),
                },
                Err(err) => seen.record("/proc/PID/limits", err),
            },
        }
        // A zombie has no namespaces left: ENOENT here says nothing about the process being
        // gone, the steps above do.
        match rustix::fs::statat(&pid_dir, c"ns/net", AtFlags::empty()) {
            Ok(st) => seen.netns = Some(NsId::of(&st)),
            Err(Errno::NOENT) => {}
            Err(err) => seen.record("/proc/PID/ns/net", err),
        }
        Inspection::Seen(seen)
    }

    fn walk_fds(&self, pid: u32, scratch: &mut Scratch) -> FdWalk {
        let mut walk = FdWalk {
            scan: FdScan::Complete,
            listed: 0,
            socket_inodes: Vec::new(),
            failure: None,
        };
        let mut path = PidPath::new(pid);
        let dir = match open_dir(&self.fd, path.with(b"/fd"), OFlags::RDONLY) {
            Ok(fd) => fd,
            Err(err) => {
                walk.stop(err);
                return walk;
            }
        };
        // The descriptors first, then their links: a process with many can have its links
        // read by two threads.
        let fds = &mut scratch.fds;
        fds.clear();
        let mut entries = RawDir::new(&dir, &mut scratch.dirents);
        while let Some(entry) = entries.next() {
            match entry {
                Ok(entry) => fds.extend(parse_fd_name(entry.file_name())),
                Err(err) => {
                    walk.stop(err);
                    break;
                }
            }
        }
        let links = if fds.len() >= SPLIT_WALK_AT {
            let (first, second) = fds.split_at(fds.len() / 2);
            std::thread::scope(|scope| {
                let helper =
                    std::thread::Builder::new().spawn_scoped(scope, || read_links(&dir, second));
                let mut links = read_links(&dir, first);
                match helper {
                    Ok(helper) => {
                        let rest = helper
                            .join()
                            .unwrap_or_else(|p| std::panic::resume_unwind(p));
                        links.add(rest);
                    }
                    // No second thread: this one reads them all.
                    Err(_) => links.add(read_links(&dir, second)),
                }
                links
            })
        } else {
            read_links(&dir, fds)
        };
        walk.listed = links.listed;
        walk.socket_inodes = links.socket_inodes;
        if let Some(err) = links.error
            && walk.scan == FdScan::Complete
        {
            walk.stop(err);
        }
        if links.closed_meanwhile && walk.scan == FdScan::Complete {
            // A process that has exited, reaped or not, has no namespaces any more: its
            // `ns/net` gives ENOENT, where a live process's always resolves.
            if let Err(err) = rustix::fs::statat(&self.fd, path.with(b"/ns/net"), AtFlags::empty())
            {
                walk.stop(err);
            }
        }
        walk
    }
}

/// A process with at least this many descriptors has its links read by two threads: one
/// process may hold most of a host's sockets (a proxy, a database), and its walk alone
/// would keep one core busy while the other waits.
const SPLIT_WALK_AT: usize = 8192;

/// The links of some descriptors of one process, read.
#[derive(Debug, Default)]
struct Links {
    /// Descriptors that were still open when their link was read.
    listed: u64,
    socket_inodes: Vec<u64>,
    /// A descriptor was closed after it was listed, or the process is gone: told apart by
    /// the caller, once.
    closed_meanwhile: bool,
    /// The error that stopped the reads early.
    error: Option<Errno>,
}

impl Links {
    fn add(&mut self, other: Links) {
        self.listed += other.listed;
        self.socket_inodes.extend(other.socket_inodes);
        self.closed_meanwhile |= other.closed_meanwhile;
        self.error = self.error.or(other.error);
    }
}

/// Read the link of each descriptor `fds` of the process whose `fd` directory is `dir`.
fn read_links(dir: &OwnedFd, fds: &[u32]) -> Links {
    let mut links = Links {
        socket_inodes: Vec::with_capacity(fds.len()),
        ..Links::default()
    };
    // Socket targets are at most `socket:[` + 20 digits + `]`; a longer target is
    // truncated here, and a full buffer is never taken for a socket.
    let mut link = [0u8; 64];
    for &fd in fds {
        match rustix::fs::readlinkat_raw(dir, DecInt::new(fd).as_c_str(), &mut link[..]) {
            Ok(len) => {
                links.listed += 1;
                if len < link.len()
                    && let Some(inode) = parse_socket_link(&link[..len])
                {
                    links.socket_inodes.push(inode);
                }
            }
            Err(Errno::NOENT) => links.closed_meanwhile = true,
            Err(err) => {
                links.error = Some(err);
                break;
            }
        }
    }
    links.socket_inodes.shrink_to_fit();
    links
}

/// A descriptor's number from its name in `/proc/PID/fd`; `.` and `..` are none.
fn parse_fd_name(name: &CStr) -> Option<u32> {
    let digits = name.to_bytes();
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        let digit = u32::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

impl Seen {
    /// Records the error of one step: the process is gone, or this user may not look (no
    /// note: the descriptor walk will say so), or something unexpected.
    fn record(&mut self, what: &'static str, err: Errno) {
        if is_gone(err) {
            self.vanished = true;
        } else if !is_denied(err) {
            self.failures.push((what, err));
        }
    }

    fn new(pid: u32) -> Seen {
        Seen {
            pid,
            comm: String::new(),
            start_time: None,
            kernel_thread: false,
            uid: 0,
            netns: None,
            fds: None,
            fd_limit: None,
            vanished: false,
            failures: Vec::new(),
            limits_error: None,
            stat_error: None,
        }
    }

    /// Whether `before`, the same pid in the previous scan, is this same process with the
    /// same number of descriptors and a complete walk: its socket inodes can be reused.
    fn unchanged_since(&self, before: &ScannedProcess) -> bool {
        let same_process = !self.vanished
            && self.start_time.is_some()
            && self.start_time == before.start_time
            && self.netns == before.netns
            && before.fd_scan == FdScan::Complete;
        // A kernel thread has no descriptors to change (nor a count in `st_size`).
        same_process && (self.kernel_thread || (self.fds.is_some() && self.fds == before.fds))
    }

    /// This process, with the descriptors walked in an earlier scan.
    fn reuse(self, before: &ScannedProcess, problems: &mut Problems) -> ScannedProcess {
        let mut process = self.finish(None, problems);
        process.fd_scan = before.fd_scan;
        process.fds = process.fds.or(before.fds);
        process.socket_inodes.clone_from(&before.socket_inodes);
        process
    }

    fn finish(self, walk: Option<FdWalk>, problems: &mut Problems) -> ScannedProcess {
        for (what, err) in self.failures {
            problems.add(what, Unread::Io(err));
        }
        if let Some(err) = self.limits_error {
            problems.add("/proc/PID/limits", Unread::Limits(err));
        }
        if let Some(err) = self.stat_error {
            problems.add("/proc/PID/stat", Unread::Stat(err));
        }
        let mut process = ScannedProcess {
            pid: self.pid,
            comm: self.comm,
            start_time: self.start_time,
            kernel_thread: self.kernel_thread,
            uid: self.uid,
            netns: self.netns,
            fds: self.fds,
            fd_limit: self.fd_limit,
            fd_scan: FdScan::Vanished,
            socket_inodes: SocketInodes::default(),
        };
        let Some(walk) = walk else {
            return process;
        };
        if let Some(err) = walk.failure {
            problems.add("/proc/PID/fd", Unread::Io(err));
        }
        process.fd_scan = walk.scan;
        if walk.scan == FdScan::Complete && process.fds.is_none() {
            process.fds = Some(walk.listed);
        }
        process.socket_inodes = walk.socket_inodes.into();
        process
    }
}

impl FdWalk {
    /// The walk of this process ends with `err`.
    fn stop(&mut self, err: Errno) {
        self.scan = if is_gone(err) {
            FdScan::Vanished
        } else {
            if !is_denied(err) {
                self.failure = Some(err);
            }
            // Not gone, not read in full: the view of this process is partial either way.
            FdScan::Denied
        };
    }
}

/// Unexpected failures, counted by file and error, in the order first met.
#[derive(Default)]
struct Problems {
    counts: Vec<(&'static str, Unread, u64)>,
}

impl Problems {
    fn add(&mut self, file: &'static str, why: Unread) {
        match self
            .counts
            .iter_mut()
            .find(|(f, w, _)| *f == file && *w == why)
        {
            Some((_, _, n)) => *n += 1,
            None => self.counts.push((file, why, 1)),
        }
    }

    fn into_problems(self) -> Vec<ScanProblem> {
        self.counts
            .into_iter()
            .map(|(file, why, processes)| ScanProblem::Unread {
                file,
                processes,
                why,
            })
            .collect()
    }
}

/// `PID` followed by a suffix, as a path relative to the proc root, built on the stack.
struct PidPath {
    buf: [u8; 32],
    pid_len: usize,
}

impl PidPath {
    fn new(pid: u32) -> PidPath {
        let digits = rustix::path::DecInt::new(pid);
        let digits = digits.as_bytes();
        let mut buf = [0u8; 32];
        buf[..digits.len()].copy_from_slice(digits);
        PidPath {
            buf,
            pid_len: digits.len(),
        }
    }

    /// `PID` + `suffix`; the suffix must leave room in the buffer.
    fn with(&mut self, suffix: &[u8]) -> &[u8] {
        let end = self.pid_len + suffix.len();
        self.buf[self.pid_len..end].copy_from_slice(suffix);
        &self.buf[..end]
    }
}

/// Every pid under the proc root, ascending. On a read error, the pids listed so far.
fn list_pids(root: &OwnedFd) -> Result<Vec<u32>, (Vec<u32>, Errno)> {
    // Its own descriptor: `getdents64` moves the file offset.
    let dir = open_dir(root, c".", OFlags::RDONLY).map_err(|err| (Vec::new(), err))?;
    let mut buf = vec![MaybeUninit::uninit(); 32 * 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    let mut pids = Vec::new();
    let mut failed = None;
    while let Some(entry) = entries.next() {
        match entry {
            Ok(entry) => pids.extend(parse_pid(entry.file_name().to_bytes())),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    pids.sort_unstable();
    match failed {
        None => Ok(pids),
        Some(err) => Err((pids, err)),
    }
}

fn open_dir<Fd: AsFd, P: rustix::path::Arg>(
    at: Fd,
    path: P,
    how: OFlags,
) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        at,
        path,
        how | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The whole of a small /proc file, into `buf` (cleared first).
fn read_file<'b>(dir: &OwnedFd, name: &CStr, buf: &'b mut Vec<u8>) -> Result<&'b [u8], Errno> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    buf.clear();
    File::from(fd)
        .read_to_end(buf)
        .map_err(|err| Errno::from_io_error(&err).unwrap_or(Errno::IO))?;
    Ok(buf)
}

/// Runs `work` over `items` on `threads` threads (the caller's among them), handing out
/// items one at a time; results come back in the order of `items`.
pub(super) fn parallel_map<T: Sync, R: Send, S>(
    items: &[T],
    threads: usize,
    scratch: impl Fn() -> S + Sync,
    work: impl Fn(&T, &mut S) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut scratch = scratch();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, work(item, &mut scratch)));
        }
        done
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        // A helper that cannot be spawned leaves more work to the others: the caller
        // always takes part, so the map finishes either way.
        let helpers: Vec<_> = (1..threads)
            .map_while(|_| std::thread::Builder::new().spawn_scoped(scope, worker).ok())
            .collect();
        let mut results = worker();
        for helper in helpers {
            match helper.join() {
                Ok(done) => results.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The process is gone: its /proc directory, or a task behind it, no longer exists.
fn is_gone(err: Errno) -> bool {
    err == Errno::NOENT || err == Errno::SRCH
}

/// This user may not look (another user's process, without `CAP_SYS_PTRACE`).
fn is_denied(err: Errno) -> bool {
    err == Errno::ACCESS || err == Errno::PERM
}

#[cfg(test)]
mod tests;
