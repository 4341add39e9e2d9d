//! The owner look-up: a refresh's second look for the processes holding the listeners and
//! CLOSE_WAIT sockets its join left unowned.
//!
//! Between full walks a refresh reuses the descriptor walk of every process whose
//! descriptor count and start time did not change; a process that closed one socket and
//! opened another in between is then reused with its old list. [`OwnerSearch`] walks such
//! processes again, once per unowned socket ([`Lookout`] remembers which were looked for),
//! and brings the kept join up to what they hold. It never decides what is bad, and it
//! never runs in a full pass, whose join is exact.

use std::collections::HashSet;
use std::time::Duration;

use super::carry_over::Prior;
use super::clock::thread_cpu_of;
use super::join::Joined;
use super::netns::NsId;
use super::procs::{self, ProcessScan, ScannedProcess};
use super::sockets::Sockets;
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
