//! Joining processes with sockets: count each process's sockets by kind and state, and name
//! the owners of every socket kept in full.
//!
//! Socket inodes are unique across network namespaces (sockfs is one filesystem), so one
//! index answers for all of them; a process may hold sockets of several namespaces (one that
//! called `setns`, or was passed a descriptor).

use super::procs::ScannedProcess;
use super::sockets::{FRESH_STATES, InodeMap, Slot, Sockets};
use crate::model::{Process, StateCounts, TcpState};

/// Socket inode -> the namespace (position in the dumps) and slot it was found in.
pub struct SocketIndex<'b> {
    by_ns: Vec<InodeMap<Slot>>,
    /// With several namespaces, all of them in one map.
    combined: Option<InodeMap<(usize, Slot)>>,
    /// The last full dump, for a collector refreshing between full dumps: what each inode
    /// was then. Consulted only for the states a fresh dump does not read.
    base: Option<&'b InodeMap<Slot>>,
}

impl<'b> SocketIndex<'b> {
    /// Takes the index out of each namespace's dump, which keeps its lists for the owners.
    pub fn new(dumps: &mut [&mut Sockets], base: Option<&'b InodeMap<Slot>>) -> Self {
        let by_ns: Vec<InodeMap<Slot>> = dumps
            .iter_mut()
            .map(|d| std::mem::take(&mut d.index))
            .collect();
        let combined = (by_ns.len() > 1).then(|| {
            let mut all = InodeMap::default();
            all.reserve(by_ns.iter().map(InodeMap::len).sum());
            for (ns, index) in by_ns.iter().enumerate() {
                all.extend(index.iter().map(|(&inode, &slot)| (inode, (ns, slot))));
            }
            all
        });
        SocketIndex {
            by_ns,
            combined,
            base,
        }
    }

    fn find(&self, inode: u64) -> Option<(usize, Slot)> {
        let fresh = match &self.combined {
            Some(all) => all.get(&inode).copied(),
            None => self
                .by_ns
                .first()
                .and_then(|index| index.get(&inode))
                .map(|&slot| (0, slot)),
        };
        fresh.or_else(|| {
            // A socket the last full dump saw in a state that this refresh read afresh, and
            // did not find there, has left that state: its new one is not known.
            match *self.base?.get(&inode)? {
                Slot::Tcp(state) if FRESH_STATES.contains(&state) => None,
                slot @ (Slot::Tcp(_) | Slot::Unix) => Some((0, slot)),
                Slot::TcpListener(_) | Slot::Tracked(_) | Slot::UnixListener(_) => None,
            }
        })
    }
}

/// Join `scanned` processes with the sockets of `dumps` (in the order the index was built
/// from), naming owners in the dumps' lists.
pub fn attribute(
    scanned: &mut [ScannedProcess],
    index: &SocketIndex<'_>,
    dumps: &mut [&mut Sockets],
) -> Vec<Process> {
    let mut processes = Vec::with_capacity(scanned.len());
    for p in scanned.iter_mut() {
        // The same socket behind two descriptors (dup, fork) is still one socket. Sorted
        // once, the list is sorted already when a collector reuses it.
        p.socket_inodes.sort_unstable();
        let mut tcp = Tally::default();
        let (mut unix_sockets, mut other_sockets) = (0, 0);
        let mut previous = None;
        for &inode in &p.socket_inodes {
            if previous.replace(inode) == Some(inode) {
                continue;
            }
            let Some((ns, slot)) = index.find(inode) else {
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
                Slot::Unix => unix_sockets += 1,
                Slot::UnixListener(i) => {
                    unix_sockets += 1;
                    dumps[ns].unix_listeners[i].owners.push(p.pid);
                }
            }
        }
        processes.push(Process {
            pid: p.pid,
            comm: p.comm.clone(),
            uid: p.uid,
            netns: p.netns.map(|id| id.ino),
            fds: p.fds,
            fd_limit: p.fd_limit,
            tcp: tcp.into_counts(),
            unix_sockets,
            other_sockets,
            fd_scan: p.fd_scan,
        });
    }
    processes.sort_by_key(|p| p.pid);
    processes
}

/// Counts by TCP state, kept in an array while a process's sockets are counted one by one
/// (a map entry per socket is most of the cost of counting 100,000 of them).
#[derive(Default)]
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
