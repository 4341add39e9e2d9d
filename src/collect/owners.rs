//! The owner look-ups: second looks for the processes holding sockets a pass's join left
//! unowned.
//!
//! Between full walks a refresh reuses the descriptor walk of every process whose
//! descriptor count and start time did not change; a process that closed one socket and
//! opened another in between is then reused with its old list. [`OwnerSearch`] walks such
//! processes again, once per unowned socket ([`Lookout`] remembers which were looked for),
//! and brings the kept join up to what they hold. It never runs in a full pass, whose walk
//! of the scanned namespaces is exact.
//!
//! A pass that scans some namespaces only walks the descriptors of their processes. A socket
//! of theirs may still be held from elsewhere: a descriptor passed over a unix socket to a
//! process of another namespace, a process that created it and then called `setns`.
//! [`look_elsewhere`] walks the processes of the other namespaces, once, when a socket a
//! diagnosis names the owners of (a listener, a socket kept in full: SYN_SENT, CLOSE_WAIT,
//! stalled, peer-gone, UDP) has none after the join, and adds those found holding one.
//!
//! Neither decides what is bad.

use std::collections::HashSet;
use std::time::Duration;

use super::carry_over::Prior;
use super::clock::thread_cpu_of;
use super::join::Joined;
use super::notes;
use super::procs::{self, ProcessScan, ScannedProcess};
use super::sockets::Sockets;
use super::vocab::{InodeSet, NsId};
use crate::model::{FdScan, TcpState};

/// Sockets an incremental refresh found with no owner, each looked for once. Between full
/// walks a process is walked again only when its descriptor count changed; one that closed
/// a socket and opened another between two refreshes kept its count, so its earlier walk was
/// reused and its new socket is in no process's list. Such a socket — a listener, a
/// CLOSE_WAIT socket — sends the refresh back to the processes of its namespace whose walks
/// were reused.
#[derive(Debug, Default)]
pub(super) struct Lookout {
    /// The unowned sockets already looked for, as long as they stay unowned.
    looked_for: HashSet<u64>,
    /// When the last look was, and its CPU time: looks come at most once every
    /// [`LOOKOUT_STRETCH`] times that, as the other walks stretch.
    last_ns: u64,
    last_cpu: Duration,
    /// The same, for the walks of the processes of other namespaces ([`look_elsewhere`]).
    elsewhere: Looks,
}

/// Sockets looked for, and when the last look was.
#[derive(Debug, Default)]
struct Looks {
    looked_for: HashSet<u64>,
    last_ns: u64,
    last_cpu: Duration,
}

/// How far apart looks for owners are at least: this many times the last one's CPU time.
const LOOKOUT_STRETCH: u32 = 100;

/// A refresh's search for the owners of the sockets its join left unowned: what
/// [`OwnerSearch::run`] needs of the pass.
pub(super) struct OwnerSearch<'a> {
    pub(super) proc_root: &'a std::path::Path,
    pub(super) prior: Prior<'a>,
    pub(super) walked_all: bool,
    /// The namespace of each dump, in the dumps' order.
    pub(super) ns_ids: &'a [NsId],
    pub(super) now_ns: u64,
}

impl OwnerSearch<'_> {
    /// Look once for the owners of the listeners and CLOSE_WAIT sockets that this refresh's
    /// join left unowned and that were not looked for before: walk again the processes of
    /// their namespaces whose earlier walks were reused, and bring the join up to what they
    /// hold now. Returns whether any process's sockets changed, so that the join's owners
    /// must be named again.
    pub(super) fn run(
        &self,
        lookout: &mut Lookout,
        scan: &mut ProcessScan,
        joined: &mut Joined,
        sockets: &[&mut Sockets],
    ) -> bool {
        let unowned = unowned(sockets);
        let still: HashSet<u64> = unowned.iter().map(|&(_, inode)| inode).collect();
        lookout.looked_for.retain(|inode| still.contains(inode));
        let new: Vec<(usize, u64)> = unowned
            .into_iter()
            .filter(|(_, inode)| !lookout.looked_for.contains(inode))
            .collect();
        let wait = lookout.last_cpu * LOOKOUT_STRETCH;
        let since = self.now_ns.saturating_sub(lookout.last_ns);
        if self.walked_all || new.is_empty() || u128::from(since) < wait.as_nanos() {
            return false;
        }
        let namespaces: HashSet<NsId> = new
            .iter()
            .filter_map(|&(n, _)| self.ns_ids.get(n).copied())
            .collect();
        let previous = self.prior.procs;
        let reused = |p: &ScannedProcess| {
            previous.process(p.pid).is_some_and(|before| {
                before.start_time == p.start_time && before.socket_inodes == p.socket_inodes
            })
        };
        let candidates: Vec<u32> = scan
            .processes
            .iter()
            .filter(|p| !p.kernel_thread && p.fd_scan == FdScan::Complete)
            .filter(|p| p.netns.is_some_and(|ns| namespaces.contains(&ns)))
            .filter(|p| reused(p))
            .map(|p| p.pid)
            .collect();
        lookout
            .looked_for
            .extend(new.iter().map(|&(_, inode)| inode));
        let (walked, cpu) = thread_cpu_of(|| procs::rewalk(self.proc_root, scan, &candidates));
        lookout.last_cpu = cpu;
        lookout.last_ns = self.now_ns;
        let mut changed = false;
        for pid in walked {
            if let Some(p) = scan.process(pid).filter(|p| !reused(p)) {
                joined.rewalked(p, previous, self.prior.base);
                changed = true;
            }
        }
        changed
    }
}

/// The listeners (TCP and unix) and CLOSE_WAIT sockets of `sockets` that have an inode and
/// no owner after the join: (position of their dump, inode).
fn unowned(sockets: &[&mut Sockets]) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (n, s) in sockets.iter().enumerate() {
        let close_wait = s.tracked.iter().filter(|t| t.state == TcpState::CloseWait);
        let tcp = s.tcp_listeners.iter().chain(close_wait);
        out.extend(
            tcp.filter(|t| t.inode != 0 && t.owners.is_empty())
                .map(|t| (n, t.inode)),
        );
        out.extend(
            s.unix_listeners
                .iter()
                .filter(|u| u.inode != 0 && u.owners.is_empty())
                .map(|u| (n, u.inode)),
        );
    }
    out
}

/// What [`look_elsewhere`] found: the processes of other namespaces that hold sockets of the
/// scanned ones (walked, in pid order), and the note that says so.
pub(super) struct FoundElsewhere {
    pub(super) processes: Vec<ScannedProcess>,
    pub(super) note: String,
}

/// Look for the owners of the sockets `sockets` kept in full that the join left unowned
/// among the processes a scoped walk left out (`scan.unwalked`: those of the namespaces not
/// scanned), when there are any: walk those processes, keep in `scan` those that hold one
/// of them (returned, for the join), put the others back. `lookout` (a collector's) makes it
/// look once per unowned socket, and at most every [`LOOKOUT_STRETCH`] times the last look's
/// CPU time; without it (a one-shot pass), it looks whenever a socket is unowned.
///
/// Returns `None` when there was nothing to look for: nothing unowned, or nothing left
/// unwalked (every namespace was scanned).
pub(super) fn look_elsewhere(
    proc_root: &std::path::Path,
    threads: usize,
    scan: &mut ProcessScan,
    sockets: &[&mut Sockets],
    lookout: Option<&mut Lookout>,
    now_ns: u64,
) -> Option<FoundElsewhere> {
    if scan.unwalked.is_empty() {
        return None;
    }
    let unowned = unowned_kept(sockets);
    if unowned.is_empty() {
        if let Some(lookout) = lookout {
            lookout.elsewhere.looked_for.clear();
        }
        return None;
    }
    if let Some(lookout) = lookout {
        let looks = &mut lookout.elsewhere;
        looks.looked_for.retain(|inode| unowned.contains(inode));
        let new = unowned
            .iter()
            .any(|inode| !looks.looked_for.contains(inode));
        let wait = looks.last_cpu * LOOKOUT_STRETCH;
        let since = now_ns.saturating_sub(looks.last_ns);
        if !new || u128::from(since) < wait.as_nanos() {
            let note = notes::not_looked_elsewhere(unowned.len(), scan.unwalked.len(), !new);
            return Some(FoundElsewhere {
                processes: Vec::new(),
                note,
            });
        }
        looks.looked_for.extend(unowned.iter().copied());
        let found = walk_elsewhere(proc_root, threads, scan, &unowned);
        looks.last_cpu = found.1;
        looks.last_ns = now_ns;
        return Some(found.0);
    }
    Some(walk_elsewhere(proc_root, threads, scan, &unowned).0)
}

/// Walk every process of `scan.unwalked`; keep in the scan those holding a socket of
/// `unowned`. Returns them with the note, and the CPU time of the walks.
fn walk_elsewhere(
    proc_root: &std::path::Path,
    threads: usize,
    scan: &mut ProcessScan,
    unowned: &InodeSet,
) -> (FoundElsewhere, Duration) {
    let walked = procs::walk_unwalked(proc_root, scan, threads, |p| !p.kernel_thread);
    let looked_at = walked.processes.len();
    let (holders, others): (Vec<ScannedProcess>, Vec<ScannedProcess>) = walked
        .processes
        .into_iter()
        .partition(|p| p.socket_inodes.iter().any(|i| unowned.contains(i)));
    let mut owned: HashSet<u64> = HashSet::new();
    for p in &holders {
        owned.extend(
            p.socket_inodes
                .iter()
                .filter(|i| unowned.contains(i))
                .copied(),
        );
    }
    scan.put_back(others);
    scan.add_walked(holders.clone());
    let note = notes::looked_elsewhere(
        unowned.len(),
        looked_at,
        walked.unreadable,
        owned.len(),
        holders.len(),
    );
    (
        FoundElsewhere {
            processes: holders,
            note,
        },
        walked.cpu,
    )
}

/// Every socket kept in full in `sockets`, with an inode and no owner after the join: the
/// listeners (TCP and unix), the TCP sockets tracked (SYN_SENT, CLOSE_WAIT, children not
/// accepted yet have no inode, stalled connections), those whose peer is gone, and the UDP
/// sockets kept.
fn unowned_kept(sockets: &[&mut Sockets]) -> InodeSet {
    let mut out = InodeSet::default();
    for s in sockets {
        let tcp = s
            .tcp_listeners
            .iter()
            .chain(&s.tracked)
            .chain(s.peer_gone.iter().map(|g| &g.socket));
        out.extend(
            tcp.filter(|t| t.inode != 0 && t.owners.is_empty())
                .map(|t| t.inode),
        );
        out.extend(
            s.unix_listeners
                .iter()
                .filter(|u| u.inode != 0 && u.owners.is_empty())
                .map(|u| u.inode),
        );
        out.extend(
            s.udp
                .iter()
                .filter(|u| u.inode != 0 && u.owners.is_empty())
                .map(|u| u.inode),
        );
    }
    out
}
