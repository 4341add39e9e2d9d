//! Joining processes with sockets: count each process's sockets by kind and state, and name
//! the owners of every socket kept in full.
//!
//! Socket inodes are unique across network namespaces (sockfs is one filesystem), so one
//! index answers for all of them; a process may hold sockets of several namespaces (one that
//! called `setns`, or was passed a descriptor).
//!
//! A full pass looks every descriptor's inode up in the dumps ([`attribute`]): 100,000
//! lookups for 100,000 sockets. An incremental collector keeps the join instead
//! ([`Joined`]): what each process's sockets were in the last full dump, counted; a refresh
//! then counts again only the processes whose descriptors changed, and names the holders of
//! the few sockets it read afresh by looking them up in the processes' sorted descriptor
//! lists. What the last full dump said of each inode is a sorted vector of eight bytes a
//! socket (a [`SlotIndex`]), not a map: a collector keeps it for the life of the dashboard.

use std::collections::HashMap;

use super::procs::{ProcessScan, ScannedProcess};
use super::sockets::slot_index::{Cursor, MergedCursor, MergedIndex, SlotIndex};
use super::sockets::{Slot, Sockets};
use super::vocab::{FRESH_STATES, InodeMap};
use crate::model::{Process, StateCounts, TcpState};

/// Socket inode -> the namespace (position in the dumps) and slot it was found in.
pub enum SocketIndex {
    One(SlotIndex),
    /// With several namespaces, all of them in one.
    Several(MergedIndex),
}

impl SocketIndex {
    /// Takes the index out of each namespace's dump, which keeps its lists for the owners.
    pub fn new(dumps: &mut [&mut Sockets]) -> Self {
        let mut by_ns: Vec<SlotIndex> = dumps
            .iter_mut()
            .map(|d| std::mem::take(&mut d.index))
            .collect();
        if by_ns.len() == 1 {
            let mut one = by_ns.pop().unwrap_or_default();
            one.finish();
            SocketIndex::One(one)
        } else {
            SocketIndex::Several(MergedIndex::new(by_ns))
        }
    }

    fn cursor(&self) -> IndexCursor<'_> {
        match self {
            SocketIndex::One(index) => IndexCursor::One(index.cursor()),
            SocketIndex::Several(index) => IndexCursor::Several(index.cursor()),
        }
    }
}

/// Lookups in a [`SocketIndex`], fastest in ascending inode order.
enum IndexCursor<'a> {
    One(Cursor<'a>),
    Several(MergedCursor<'a>),
}

impl IndexCursor<'_> {
    fn find(&mut self, inode: u64) -> Option<(usize, Slot)> {
        match self {
            IndexCursor::One(cursor) => cursor.find(inode).map(|slot| (0, slot)),
            IndexCursor::Several(cursor) => cursor.find(inode),
        }
    }
}

/// Join `scanned` processes with the sockets of `dumps` (in the order the index was built
/// from), naming owners in the dumps' lists.
pub fn attribute(
    scanned: &mut [ScannedProcess],
    index: &SocketIndex,
    dumps: &mut [&mut Sockets],
) -> Vec<Process> {
    let mut processes = Vec::with_capacity(scanned.len());
    let mut cursor = index.cursor();
    for p in scanned.iter_mut() {
        // The same socket behind two descriptors (dup, fork) is still one socket. Sorted
        // once, the list is sorted already when a collector reuses it.
        p.socket_inodes.sort();
        let mut tcp = Tally::default();
        let (mut unix_sockets, mut other_sockets) = (0, 0);
        for inode in unique(&p.socket_inodes) {
            let Some((ns, slot)) = cursor.find(inode) else {
                other_sockets += 1;
                continue;
            };
            match slot {
                Slot::Tcp(state) => tcp.add(state, 1),
                Slot::TcpListener(i) => {
                    tcp.add(TcpState::Listen, 1);
                    dumps[ns].tcp_listeners[i].owners.push(p.pid);
                }
                Slot::Tracked(i) => {
                    let s = &mut dumps[ns].tracked[i];
                    tcp.add(s.state, 1);
                    s.owners.push(p.pid);
                }
                Slot::PeerGone(i) => {
                    tcp.add(TcpState::Established, 1);
                    dumps[ns].peer_gone[i].socket.owners.push(p.pid);
                }
                Slot::Unix => unix_sockets += 1,
                Slot::UnixListener(i) => {
                    unix_sockets += 1;
                    dumps[ns].unix_listeners[i].owners.push(p.pid);
                }
                Slot::Udp(i) => {
                    other_sockets += 1;
                    dumps[ns].udp[i].owners.push(p.pid);
                }
            }
        }
        let counted = Counted {
            tcp,
            unix: unix_sockets,
            other: other_sockets,
        };
        processes.push(process(p, counted));
    }
    processes.sort_by_key(|p| p.pid);
    processes
}

/// Put the owners of every socket of `dumps` in pid order, once: after [`attribute`] named
/// more owners, out of order, for processes added to a pass.
pub fn sort_owners(dumps: &mut [&mut Sockets]) {
    let tidy = |owners: &mut Vec<u32>| {
        owners.sort_unstable();
        owners.dedup();
    };
    for d in dumps.iter_mut() {
        d.tcp_listeners.iter_mut().for_each(|s| tidy(&mut s.owners));
        d.tracked.iter_mut().for_each(|s| tidy(&mut s.owners));
        d.peer_gone
            .iter_mut()
            .for_each(|g| tidy(&mut g.socket.owners));
        d.unix_listeners
            .iter_mut()
            .for_each(|u| tidy(&mut u.owners));
        d.udp.iter_mut().for_each(|u| tidy(&mut u.owners));
    }
}

fn process(p: &ScannedProcess, counted: Counted) -> Process {
    Process {
        pid: p.pid,
        comm: p.comm.clone(),
        uid: p.uid,
        netns: p.netns.map(|id| id.ino),
        fds: p.fds,
        fd_limit: p.fd_limit,
        tcp: counted.tcp.into_counts(),
        unix_sockets: counted.unix,
        other_sockets: counted.other,
        fd_scan: p.fd_scan,
    }
}

/// What one socket counts as in a process's tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp(TcpState),
    Unix,
    /// Another kind (UDP, netlink, ...), of an unscanned namespace, or of unknown state.
    Other,
}

/// A process's sockets, counted.
#[derive(Debug, Clone, Default)]
struct Counted {
    tcp: Tally,
    unix: u64,
    other: u64,
}

impl Counted {
    fn add(&mut self, kind: Kind) {
        match kind {
            Kind::Tcp(state) => self.tcp.add(state, 1),
            Kind::Unix => self.unix += 1,
            Kind::Other => self.other += 1,
        }
    }

    fn remove(&mut self, kind: Kind) {
        match kind {
            Kind::Tcp(state) => self.tcp.remove(state),
            Kind::Unix => self.unix = self.unix.saturating_sub(1),
            Kind::Other => self.other = self.other.saturating_sub(1),
        }
    }
}

/// What the last full dump says an inode is, for a refresh that reads only some states
/// afresh: a socket it saw in one of those states, and that the refresh did not find there
/// again, has left that state for one not known (counted as other until the next full
/// dump), and so is any socket it did not see.
fn base_kind(base: &mut Cursor<'_>, inode: u64) -> Kind {
    match base.find(inode) {
        Some(Slot::Tcp(state)) if !FRESH_STATES.contains(&state) => Kind::Tcp(state),
        Some(Slot::Unix) => Kind::Unix,
        _ => Kind::Other,
    }
}

/// An incremental collector's join, kept between refreshes: what each process's sockets
/// were in the last full dump. Who holds a socket is read from the processes' sorted lists
/// when a refresh asks ([`Joined::attribute`]): a map from every inode to its holders would
/// cost tens of bytes a socket for as long as the collector lives.
#[derive(Debug, Default)]
pub struct Joined {
    /// Per pid: its start time, and its sockets counted against the last full dump.
    counted: HashMap<u32, (Option<u64>, Counted)>,
}

impl Joined {
    /// The join of `scanned` with `base`, from scratch: after every full dump.
    pub fn rebuild(scanned: &mut [ScannedProcess], base: &SlotIndex) -> Joined {
        let mut joined = Joined::default();
        joined.counted.reserve(scanned.len());
        for p in scanned {
            p.socket_inodes.sort();
            joined.add(p, base);
        }
        joined
    }

    /// Bring the join up to `scanned`, given the scan it was last brought up to: only the
    /// processes that are new, gone, or whose sockets changed are looked at again.
    pub fn update(
        &mut self,
        scanned: &mut [ScannedProcess],
        previous: &ProcessScan,
        base: &SlotIndex,
    ) {
        let now: HashMap<u32, Option<u64>> =
            scanned.iter().map(|p| (p.pid, p.start_time)).collect();
        let gone: Vec<u32> = self
            .counted
            .iter()
            .filter(|(pid, (start, _))| now.get(pid) != Some(start))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in gone {
            self.forget(pid);
        }
        for p in scanned {
            p.socket_inodes.sort();
            let same = previous.process(p.pid).is_some_and(|before| {
                before.start_time == p.start_time && before.socket_inodes == p.socket_inodes
            });
            if same && self.counted.contains_key(&p.pid) {
                continue;
            }
            self.add(p, base);
        }
    }

    /// `p`, walked again after [`Joined::update`] kept its sockets as the last scan listed
    /// them: its sockets as walked now replace those.
    pub fn rewalked(&mut self, p: &ScannedProcess, base: &SlotIndex) {
        self.add(p, base);
    }

    /// Count `p`'s sockets (sorted) against the last full dump, replacing any earlier count.
    fn add(&mut self, p: &ScannedProcess, base: &SlotIndex) {
        let mut counted = Counted::default();
        let mut cursor = base.cursor();
        for inode in unique(&p.socket_inodes) {
            counted.add(base_kind(&mut cursor, inode));
        }
        self.counted.insert(p.pid, (p.start_time, counted));
    }

    /// Take `pid`'s sockets out of the join.
    fn forget(&mut self, pid: u32) {
        self.counted.remove(&pid);
    }

    /// Join `scanned` (brought up to date with [`Joined::update`]) with a refresh's dumps,
    /// naming owners in the dumps' lists: each process's count from the last full dump,
    /// corrected for the sockets the refresh read afresh.
    pub fn attribute(
        &self,
        scanned: &[ScannedProcess],
        dumps: &mut [&mut Sockets],
        base: &SlotIndex,
    ) -> Vec<Process> {
        let holders = holders_of(scanned, dumps);
        let no_one = Vec::new();
        let mut changes: HashMap<u32, Vec<(Kind, Kind)>> = HashMap::new();
        for dump in dumps.iter_mut() {
            let index = std::mem::take(&mut dump.index);
            let mut base = base.cursor();
            let mut inodes: Vec<(u64, Slot)> = index.iter().collect();
            inodes.sort_unstable_by_key(|&(inode, _)| inode);
            for (inode, slot) in inodes {
                let holders = holders.get(&inode).unwrap_or(&no_one);
                let now = match slot {
                    Slot::Tcp(state) => Kind::Tcp(state),
                    Slot::Unix => Kind::Unix,
                    Slot::TcpListener(i) => {
                        dump.tcp_listeners[i].owners = sorted(holders);
                        Kind::Tcp(TcpState::Listen)
                    }
                    Slot::Tracked(i) => {
                        let s = &mut dump.tracked[i];
                        s.owners = sorted(holders);
                        Kind::Tcp(s.state)
                    }
                    Slot::PeerGone(i) => {
                        dump.peer_gone[i].socket.owners = sorted(holders);
                        Kind::Tcp(TcpState::Established)
                    }
                    Slot::UnixListener(i) => {
                        dump.unix_listeners[i].owners = sorted(holders);
                        Kind::Unix
                    }
                    Slot::Udp(i) => {
                        dump.udp[i].owners = sorted(holders);
                        Kind::Other
                    }
                };
                let then = base_kind(&mut base, inode);
                if now != then {
                    for &pid in holders {
                        changes.entry(pid).or_default().push((then, now));
                    }
                }
            }
            dump.index = index;
        }
        let mut processes: Vec<Process> = scanned
            .iter()
            .map(|p| {
                let mut counted = self
                    .counted
                    .get(&p.pid)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default();
                for &(then, now) in changes.get(&p.pid).into_iter().flatten() {
                    counted.remove(then);
                    counted.add(now);
                }
                process(p, counted)
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        processes
    }
}

/// Who holds each socket of `dumps` (their indexes, a refresh's few sockets read afresh):
/// each process's sorted list searched for them, or they for its sockets, whichever side is
/// shorter. Each list of holders is in pid order.
fn holders_of(scanned: &[ScannedProcess], dumps: &[&mut Sockets]) -> InodeMap<Vec<u32>> {
    let mut wanted: Vec<u64> = dumps
        .iter()
        .flat_map(|d| d.index.iter().map(|(inode, _)| inode))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut holders: InodeMap<Vec<u32>> = InodeMap::default();
    if wanted.is_empty() {
        return holders;
    }
    for p in scanned {
        let held = &p.socket_inodes;
        let mut found = |inode: u64| {
            let pids = holders.entry(inode).or_default();
            if pids.last() != Some(&p.pid) {
                pids.push(p.pid);
            }
        };
        // A list walked again by a look for owners may not be sorted yet.
        if held.len() < wanted.len() || !held.known_sorted() {
            for &inode in held {
                if wanted.binary_search(&inode).is_ok() {
                    found(inode);
                }
            }
        } else {
            // Both sorted: each search starts where the last one ended, so it reads the
            // list's cache lines once, in order, instead of each search from its middle.
            let mut from = 0;
            for &inode in &wanted {
                let (at, hit) = gallop(&held[from..], inode);
                from += at;
                if hit {
                    found(inode);
                    from += 1;
                }
            }
        }
    }
    for pids in holders.values_mut() {
        pids.sort_unstable();
    }
    holders
}

/// Where `x` is, or would go, in the sorted `list`, and whether it is there: a search that
/// doubles its step from the start, then halves it, so that it costs the logarithm of how
/// far `x` lies from the start rather than of the list's length.
fn gallop(list: &[u64], x: u64) -> (usize, bool) {
    let mut end = 1;
    while end < list.len() && list[end - 1] < x {
        end *= 2;
    }
    let start = end / 2;
    let end = end.min(list.len());
    match list[start..end].binary_search(&x) {
        Ok(i) => (start + i, true),
        Err(i) => (start + i, false),
    }
}

/// The distinct values of a sorted list.
fn unique(sorted: &[u64]) -> impl Iterator<Item = u64> + '_ {
    let mut previous = None;
    sorted
        .iter()
        .copied()
        .filter(move |&inode| previous.replace(inode) != Some(inode))
}

fn sorted(pids: &[u32]) -> Vec<u32> {
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    pids
}

/// Counts by TCP state, kept in an array while a process's sockets are counted one by one
/// (a map entry per socket is most of the cost of counting 100,000 of them).
#[derive(Debug, Clone, Default)]
struct Tally {
    known: [u64; TcpState::CLASSIC.len() + 1],
    other: StateCounts,
}

impl Tally {
    fn add(&mut self, state: TcpState, n: u64) {
        match TcpState::CLASSIC.iter().position(|&s| s == state) {
            Some(i) => self.known[i] += n,
            None if state == TcpState::BoundInactive => self.known[TcpState::CLASSIC.len()] += n,
            None => self.other.add(state, n),
        }
    }

    fn remove(&mut self, state: TcpState) {
        match TcpState::CLASSIC.iter().position(|&s| s == state) {
            Some(i) => self.known[i] = self.known[i].saturating_sub(1),
            None if state == TcpState::BoundInactive => {
                let i = TcpState::CLASSIC.len();
                self.known[i] = self.known[i].saturating_sub(1);
            }
            None => {
                let left = self.other.get(state).saturating_sub(1);
                self.other.0.insert(state, left);
                self.other.0.retain(|_, n| *n > 0);
            }
        }
    }

    fn into_counts(self) -> StateCounts {
        let mut counts = self.other;
        let states = TcpState::CLASSIC.iter().chain([&TcpState::BoundInactive]);
        for (&state, n) in states.zip(self.known) {
            if n > 0 {
                counts.add(state, n);
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::model::{Family, FdScan, TcpSocket, UnixKind, UnixSocket, UnixState};

    #[test]
    fn a_gallop_finds_what_a_binary_search_finds() {
        let lists: [&[u64]; 5] = [&[], &[7], &[2, 4, 4, 6], &[1, 3, 5, 7, 9, 11, 13], &[5; 9]];
        for list in lists {
            for x in 0..16 {
                let (at, hit) = gallop(list, x);
                assert_eq!(hit, list.contains(&x), "{x} in {list:?}");
                if hit {
                    assert_eq!(list[at], x, "{x} in {list:?}");
                } else {
                    assert_eq!(at, list.partition_point(|&y| y < x), "{x} in {list:?}");
                }
            }
        }
    }

    fn process(pid: u32, inodes: &[u64]) -> ScannedProcess {
        ScannedProcess {
            pid,
            comm: format!("p{pid}"),
            start_time: Some(u64::from(pid)),
            kernel_thread: false,
            uid: 0,
            netns: None,
            fds: Some(inodes.len() as u64),
            fd_limit: None,
            fd_scan: FdScan::Complete,
            socket_inodes: inodes.to_vec().into(),
        }
    }

    fn tcp(state: TcpState, inode: u64) -> TcpSocket {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        TcpSocket {
            family: Family::Inet,
            state,
            local: addr,
            peer: addr,
            recv_q: 0,
            send_q: 0,
            inode,
            uid: 0,
            drops: None,
            last_ack_recv_ms: None,
            timer: None,
            owners: Vec::new(),
        }
    }

    /// A refresh's dump: listener 3, CLOSE_WAIT 1 (ESTABLISHED at the full dump), unix
    /// listener 4; CLOSE_WAIT 5 of the full dump is no longer there.
    fn fresh() -> Sockets {
        let mut s = Sockets::default();
        s.tcp_listeners.push(tcp(TcpState::Listen, 3));
        s.tracked.push(tcp(TcpState::CloseWait, 1));
        s.unix_listeners.push(UnixSocket {
            kind: UnixKind::Stream,
            state: UnixState::Listen,
            path: None,
            inode: 4,
            peer_inode: None,
            recv_q: 0,
            send_q: 0,
            uid: None,
            owners: Vec::new(),
        });
        s.index.insert(3, Slot::TcpListener(0));
        s.index.insert(1, Slot::Tracked(0));
        s.index.insert(4, Slot::UnixListener(0));
        s
    }

    #[test]
    fn a_kept_join_gives_what_a_full_lookup_would() {
        let mut base = SlotIndex::default();
        base.insert(5, Slot::Tcp(TcpState::CloseWait));
        base.insert(1, Slot::Tcp(TcpState::Established));
        base.insert(2, Slot::Tcp(TcpState::Established));
        base.insert(3, Slot::Tcp(TcpState::Listen));
        base.insert(4, Slot::Unix);
        base.finish();
        let mut before = ProcessScan {
            processes: vec![
                process(10, &[5, 3, 1]),
                process(20, &[2, 4, 2]),
                process(30, &[1]),
            ],
            ..ProcessScan::default()
        };
        let mut joined = Joined::rebuild(&mut before.processes, &base);

        // 10 is unchanged (reused as the walk would: sorted), 20 changed, 30 exited, 40 is
        // new and shares the listener.
        let mut now = vec![
            before.processes[0].clone(),
            process(20, &[6, 2]),
            process(40, &[3]),
        ];
        joined.update(&mut now, &before, &base);
        let mut dump = fresh();
        let processes = joined.attribute(&now, &mut [&mut dump], &base);

        let p = |pid: u32| processes.iter().find(|p| p.pid == pid).expect("a process");
        let a = p(10);
        assert_eq!(a.tcp.get(TcpState::CloseWait), 1, "{a:?}");
        assert_eq!(a.tcp.get(TcpState::Listen), 1);
        assert_eq!(a.tcp.total(), 2);
        assert_eq!(
            a.other_sockets, 1,
            "5 left CLOSE_WAIT for a state not known"
        );
        let b = p(20);
        assert_eq!(
            (b.tcp.get(TcpState::Established), b.tcp.total()),
            (1, 1),
            "{b:?}"
        );
        assert_eq!(
            (b.unix_sockets, b.other_sockets),
            (0, 1),
            "6 is not known yet"
        );
        assert_eq!(p(40).tcp.get(TcpState::Listen), 1);
        assert!(processes.iter().all(|p| p.pid != 30));

        assert_eq!(dump.tcp_listeners[0].owners, [10, 40]);
        assert_eq!(dump.tracked[0].owners, [10], "30 is gone");
        assert!(dump.unix_listeners[0].owners.is_empty(), "20 let it go");
        assert_eq!(dump.index.len(), 3, "the index is put back");
    }
}
