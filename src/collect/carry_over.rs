//! What an incremental refresh keeps from the passes before it, and how it puts it back.
//!
//! A [`Collector`](super::Collector) keeps the last process scan and the join with it, every
//! socket inode of the last full dumps, what only a full dump reads of each namespace
//! ([`FullDumpOnly`]), and each namespace's SYN_RECV and CLOSE_WAIT sockets as last read
//! ([`Tracked`]). A pass borrows that as a [`Prior`]; the reads of a pass that are worth
//! keeping come back as [`KeptReads`], and a cheap read is completed with what was kept
//! ([`carry_over`], [`FullDumpOnly::complete`]).
//!
//! It decides neither what a pass reads (the [`ReadPlan`](super::read_plan::ReadPlan)'s
//! job) nor when (the collector's schedule).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::notes;
use super::procnet::{NetTables, TableProblem};
use super::procs::ProcessScan;
use super::sockets::slot_index::SlotIndex;
use super::sockets::{Dumped, NsDump};
use super::vocab::{FRESH_STATES, NsId, NsRead};
use crate::model::{
    ConntrackPorts, NetnsSnapshot, PeerGone, PortUse, StateCounts, Sysctls, TcpSocket, TcpState,
    TimeWaitGroup,
};

/// What a pass may reuse of the passes before it: an incremental collector's memory,
/// borrowed.
#[derive(Clone, Copy)]
pub(super) struct Prior<'c> {
    /// The last process scan.
    pub(super) procs: &'c ProcessScan,
    /// Every socket inode of the last full dumps, and what it was then (sorted).
    pub(super) base: &'c SlotIndex,
    /// What the last full dump of each namespace read that a fresh dump does not.
    pub(super) namespaces: &'c HashMap<NsId, FullDumpOnly>,
    /// The SYN_RECV and CLOSE_WAIT sockets of each namespace's last walk of them.
    pub(super) tracked: &'c HashMap<NsId, Tracked>,
    pub(super) full_dump_ns: u64,
    pub(super) full_walk_ns: u64,
}

/// The parts of a namespace only a full dump reads.
#[derive(Debug, Clone)]
pub(super) struct FullDumpOnly {
    tcp_states: StateCounts,
    /// The ESTABLISHED sockets kept: children not yet accepted (inode 0), and connections in
    /// trouble (unread data, a zero window, retransmissions).
    established: Vec<TcpSocket>,
    /// Connections in trouble past the limit, of those a fresh dump does not read.
    troubled_left_out: u64,
    /// ESTABLISHED sockets whose other end is gone, and those past the limit.
    peer_gone: Vec<PeerGone>,
    peer_gone_left_out: u64,
    peer_unchecked: u64,
    silent_unchecked: u64,
    unix_sockets: u64,
    sysctl: Sysctls,
    local_addrs: Vec<IpAddr>,
    /// The busiest destinations by ports in use, owners named (filled in after the join).
    pub(super) port_use: Vec<PortUse>,
    /// What the full read of its tables could not read.
    problems: Vec<TableProblem>,
    /// The addresses most TIME_WAIT sockets pointed to.
    time_wait_top: Vec<TimeWaitGroup>,
    /// Where the connection tracking table's entries went, when asked.
    conntrack_ports: Option<ConntrackPorts>,
}

impl FullDumpOnly {
    fn of(dump: &NsDump) -> FullDumpOnly {
        FullDumpOnly {
            tcp_states: dump.sockets.tcp_states.clone(),
            established: dump
                .sockets
                .tracked
                .iter()
                .filter(|s| s.state == TcpState::Established)
                .map(|s| TcpSocket {
                    owners: Vec::new(),
                    ..s.clone()
                })
                .collect(),
            troubled_left_out: dump.sockets.established_left_out(),
            peer_gone: dump
                .sockets
                .peer_gone
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    g.socket.owners = Vec::new();
                    g
                })
                .collect(),
            peer_gone_left_out: dump.sockets.peer_gone_left_out,
            peer_unchecked: dump.sockets.peer_unchecked,
            silent_unchecked: dump.sockets.silent_unchecked,
            unix_sockets: dump.sockets.unix_sockets,
            sysctl: dump.tables.sysctl.clone(),
            local_addrs: dump.tables.local_addrs.clone(),
            port_use: Vec::new(),
            problems: dump.tables.problems.clone(),
            time_wait_top: dump.sockets.time_wait_top.clone(),
            conntrack_ports: dump.tables.conntrack_ports.clone(),
        }
    }

    /// Complete a namespace's part of the snapshot, read fresh, with what the last full
    /// dump read; and its notes with that dump's.
    pub(super) fn complete(&self, snapshot: &mut NetnsSnapshot, notes: &mut Vec<String>) {
        let fresh = std::mem::replace(&mut snapshot.tcp_states, self.tcp_states.clone());
        for state in FRESH_STATES {
            set_count(&mut snapshot.tcp_states, state, fresh.get(state));
        }
        // `Tcp: CurrEstab` counts ESTABLISHED and CLOSE_WAIT sockets (RFC 1213
        // tcpCurrEstab; the kernel moves it in tcp_set_state), so it gives a fresh
        // ESTABLISHED count without dumping them.
        if let Some(&current) = snapshot.tcp.get("CurrEstab") {
            let established = current.saturating_sub(fresh.get(TcpState::CloseWait));
            set_count(&mut snapshot.tcp_states, TcpState::Established, established);
        }
        snapshot.troubled_left_out += self.troubled_left_out;
        snapshot.peer_gone_left_out = self.peer_gone_left_out;
        snapshot.peer_unchecked = self.peer_unchecked;
        snapshot.silent_unchecked = self.silent_unchecked;
        snapshot.unix_sockets = self.unix_sockets;
        snapshot.sysctl = self.sysctl.clone();
        snapshot.local_addrs.clone_from(&self.local_addrs);
        snapshot.port_use.clone_from(&self.port_use);
        snapshot.time_wait_top.clone_from(&self.time_wait_top);
        snapshot.conntrack_ports.clone_from(&self.conntrack_ports);
        for note in notes::tables(&self.problems) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
}

fn set_count(counts: &mut StateCounts, state: TcpState, n: u64) {
    if n == 0 {
        counts.0.remove(&state);
    } else {
        counts.0.insert(state, n);
    }
}

/// A namespace's SYN_RECV and CLOSE_WAIT sockets as last read, and its TCP counters then.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    sockets: Vec<TcpSocket>,
    tcp: BTreeMap<String, u64>,
    tcp_ext: BTreeMap<String, u64>,
    pub(super) at_ns: u64,
    /// CPU time of the refresh that read them, when it was a refresh (not a full dump).
    pub(super) cpu: Option<Duration>,
}

impl Tracked {
    /// The SYN_RECV and CLOSE_WAIT sockets a dump read, to carry over while nothing moves.
    fn of(dump: &NsDump, at_ns: u64) -> Tracked {
        let cpu = matches!(dump.read, NsRead::Fresh | NsRead::FreshIfMoved).then_some(dump.cpu);
        Tracked {
            sockets: dump
                .sockets
                .tracked
                .iter()
                .filter(|s| {
                    matches!(
                        s.state,
                        TcpState::SynSent | TcpState::SynRecv | TcpState::CloseWait
                    )
                })
                .map(|s| TcpSocket {
                    owners: Vec::new(),
                    ..s.clone()
                })
                .collect(),
            tcp: dump.tables.tcp.clone(),
            tcp_ext: dump.tables.tcp_ext.clone(),
            at_ns,
            cpu,
        }
    }

    /// Whether nothing can have changed among these sockets since they were read: no TCP
    /// segment came in or went out of the namespace, and no TCP counter moved. A socket
    /// enters CLOSE_WAIT on a FIN from its peer and leaves it by sending its own FIN or a
    /// RST; a request socket comes with a SYN and goes with an ACK, a RST or a SYN-ACK
    /// retransmission — all counted in `InSegs`, `OutSegs`, `OutRsts` or `RetransSegs`.
    /// What no counter shows, an application reading its CLOSE_WAIT socket's last bytes and
    /// a request socket expiring after its last retransmission, waits for the next walk.
    pub(super) fn still_holds(&self, tables: &NetTables) -> bool {
        !self.tcp.is_empty() && self.tcp == tables.tcp && self.tcp_ext == tables.tcp_ext
    }
}

/// What an incremental collector keeps of a pass's socket reads.
pub(super) struct KeptReads {
    /// Socket inodes of the namespaces dumped in full in this pass (sorted).
    pub(super) base: SlotIndex,
    pub(super) namespaces: HashMap<NsId, FullDumpOnly>,
    /// The namespaces whose SYN_RECV and CLOSE_WAIT sockets were read in this pass.
    pub(super) tracked: HashMap<NsId, Tracked>,
    /// CPU time of the full socket dumps of this pass, all namespaces together.
    pub(super) full_dump_cpu: Duration,
}

/// Whether a pass keeps the index of its full dumps for the refreshes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// A one-shot pass: nothing is kept (the index would cost eight bytes a socket, and
    /// each namespace's reads a copy of its counters, for nothing).
    Nothing,
    /// A collector's pass, which the next refresh joins against.
    ForRefresh,
}

/// Take what an incremental collector keeps of `dumps` (nothing of a full dump unless `keep`
/// says a refresh follows), before the join takes their indexes; and put back
/// what it kept where this pass did not read it again. Also returns the age of the oldest
/// SYN_RECV / CLOSE_WAIT read carried over, in milliseconds.
pub(super) fn carry_over(
    dumps: &mut [Dumped],
    prior: Option<Prior<'_>>,
    now_ns: u64,
    keep: Keep,
) -> (KeptReads, u64) {
    let mut kept = KeptReads {
        base: SlotIndex::default(),
        namespaces: HashMap::new(),
        tracked: HashMap::new(),
        full_dump_cpu: Duration::ZERO,
    };
    // With every dump full, the join takes their indexes and the pass keeps what the join
    // is done with (see `pass::keep_index`): nothing is copied here.
    let copy_index = keep == Keep::ForRefresh && dumps.iter().any(|(_, d)| !d.read.is_full());
    if copy_index {
        // Sized once: grown by doubling, a million sockets' index would be copied as it goes.
        let full = dumps.iter().filter(|(_, d)| d.read.is_full());
        kept.base = SlotIndex::with_capacity(full.map(|(_, d)| d.sockets.index.len()).sum());
    }
    let mut tracked_age_ms = 0;
    for (target, dump) in dumps {
        // The ESTABLISHED sockets kept come from full dumps only (a fresh dump would have to
        // build a reply for every connection); added before the join, their owners are found.
        if let (false, Some(prior)) = (dump.read.is_full(), prior)
            && let Some(full) = prior.namespaces.get(&target.id)
        {
            let age = now_ns.saturating_sub(prior.full_dump_ns) / 1_000_000;
            let age = u32::try_from(age).unwrap_or(u32::MAX);
            for s in &full.established {
                dump.sockets.add_carried_over(s, age);
            }
            for g in &full.peer_gone {
                dump.sockets.add_carried_over_peer_gone(g, age);
            }
        }
        match dump.read {
            NsRead::Full => {
                // A socket two full dumps in a row found without its other end.
                if let Some(before) = prior.and_then(|p| p.namespaces.get(&target.id)) {
                    dump.sockets.confirm_peer_gone(&before.peer_gone);
                }
                kept.full_dump_cpu += dump.cpu;
                if keep == Keep::Nothing {
                    continue;
                }
                if copy_index {
                    for (inode, slot) in dump.sockets.base_slots() {
                        kept.base.insert(inode, slot);
                    }
                }
                kept.namespaces.insert(target.id, FullDumpOnly::of(dump));
            }
            NsRead::Listeners => {
                if let Some(last) = prior.and_then(|p| p.tracked.get(&target.id)) {
                    let age = now_ns.saturating_sub(last.at_ns) / 1_000_000;
                    tracked_age_ms = tracked_age_ms.max(age);
                    let age = u32::try_from(age).unwrap_or(u32::MAX);
                    for s in &last.sockets {
                        dump.sockets.add_carried_over(s, age);
                    }
                }
                continue;
            }
            NsRead::Fresh | NsRead::FreshIfMoved => {}
        }
        kept.tracked.insert(target.id, Tracked::of(dump, now_ns));
    }
    kept.base.finish();
    (kept, tracked_age_ms)
}
