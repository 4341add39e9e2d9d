//! The search, as a full dump streams by, for ESTABLISHED sockets whose other end is gone
//! ([`PeerCheck`]): both ends of a connection between two addresses of one namespace are in
//! its dump, so what is still waiting for its other end when the dump ends has none.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::port_tally::PortSet;
use crate::collect::netlink::InetSock;
use crate::collect::vocab::{InodeHasher, InodeMap, plain, plain_ip};
use crate::model::{PEER_GONE_LIMIT, PeerGone, TcpSocket, TcpState, TimerKind};

/// The search, during a full dump, for ESTABLISHED sockets whose other end is not there.
///
/// Both ends of a connection between two addresses of one namespace are in its dump, with
/// reversed 4-tuples. So, as the dump streams by, every socket whose peer address is local
/// (loopback or an address of the namespace) leaves a 64-bit hash of its 4-tuple in `seen`,
/// and each candidate — an ESTABLISHED socket accepted by a listener of the namespace, from a
/// local peer, with nothing in flight — waits in `pending` under the hash of its reversed
/// tuple until its other end passes (or was already `seen`). What still waits at the end of
/// the dump has no other end. The two ends come in hash-table order, not together, so
/// `pending` can briefly hold many healthy connections: it is bounded, and past the bound a
/// candidate leaves only its hash, to be counted as left out if its other end never passes.
///
/// Cost, for the length of the dump only: `seen` holds the client ends only (a socket whose
/// peer is a listener of the namespace), about 20 bytes each (8 for the hash, the rest the
/// table's slack), 10 MB for a million loopback sockets (half a million connections);
/// `pending` at most [`PEER_PENDING_LIMIT`] sockets (about 3 MB), and 8 bytes for each
/// candidate past it.
#[derive(Debug, Default)]
pub(super) struct PeerCheck {
    /// The namespace's own addresses, loopback aside.
    local_addrs: Vec<IpAddr>,
    /// Listening ports, and the addresses listened on (unspecified for a wildcard); the
    /// ports also in a bitmap, asked first for every local socket.
    listening: HashMap<u16, Vec<IpAddr>, BuildHasherDefault<InodeHasher>>,
    listening_ports: PortSet,
    seen: HashSet<u64, BuildHasherDefault<InodeHasher>>,
    pending: InodeMap<PeerGone>,
    /// The reversed-tuple hashes of the candidates that found `pending` full: those whose
    /// other end never passes are counted as left out.
    overflow: Vec<u64>,
    /// Candidates from a peer that is not local, kept when other namespaces are scanned
    /// (`Some`): their other end is looked for there after the dumps.
    foreign: Option<Vec<PeerGone>>,
    foreign_past: u64,
}

/// At most this many candidates wait for their other end at once, in full.
const PEER_PENDING_LIMIT: usize = 20_000;

/// At most this many candidates from a peer that is not local to the namespace are kept per
/// namespace for the look into the other scanned namespaces (about 3 MB at most): every
/// quiet connection a server accepted from a remote client is one, so a busy server fills
/// it with remote clients, and the rest are counted as unchecked.
pub const FOREIGN_LIMIT: usize = 20_000;

/// A 64-bit hash of a connection's 4-tuple, as seen from `local`: the addresses and ports
/// folded into [`InodeHasher`], cheap enough for every local connection of a dump. Nobody
/// outside chooses 4-tuples to collide here, and a collision could only hide a ghost.
fn tuple_hash(local: SocketAddr, peer: SocketAddr) -> u64 {
    let mut h = InodeHasher::default();
    for addr in [plain(local), plain(peer)] {
        match addr.ip() {
            IpAddr::V4(v4) => h.write_u64(u64::from(v4.to_bits())),
            IpAddr::V6(v6) => {
                let bits = v6.to_bits();
                #[allow(clippy::cast_possible_truncation)] // the two halves, on purpose
                {
                    h.write_u64((bits >> 64) as u64);
                    h.write_u64(bits as u64);
                }
            }
        }
        h.write_u64(u64::from(addr.port()));
    }
    h.finish()
}

impl PeerCheck {
    /// `others_scanned`: other namespaces are dumped in the same pass, so candidates from a
    /// peer that is not local are kept for the look into them.
    pub(super) fn new(local_addrs: &[IpAddr], others_scanned: bool) -> PeerCheck {
        PeerCheck {
            local_addrs: local_addrs.iter().copied().map(plain_ip).collect(),
            foreign: others_scanned.then(Vec::new),
            ..PeerCheck::default()
        }
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        let ip = plain_ip(ip);
        ip.is_loopback() || self.local_addrs.contains(&ip)
    }

    /// Whether a listener of the namespace accepts connections to `local`.
    fn accepted_at(&self, local: SocketAddr) -> bool {
        if !self.listening_ports.contains(local.port()) {
            return false;
        }
        let local = plain(local);
        self.listening.get(&local.port()).is_some_and(|ips| {
            ips.iter()
                .any(|&ip| ip.is_unspecified() || plain_ip(ip) == local.ip())
        })
    }

    pub(super) fn add(&mut self, s: &InetSock) {
        if s.state == TcpState::Listen {
            self.listening_ports.insert(s.local.port());
            self.listening
                .entry(s.local.port())
                .or_default()
                .push(s.local.ip());
            return;
        }
        let local_peer = self.is_local(s.peer.ip());
        if !local_peer && self.foreign.is_none() {
            return;
        }
        // Only the other end of an accepted connection can be a candidate's: one whose peer
        // is a listener of the namespace. The accepted ends themselves need no entry.
        if local_peer && self.accepted_at(s.peer) {
            let own = tuple_hash(s.local, s.peer);
            self.pending.remove(&own);
            self.seen.insert(own);
        }
        let quiet = s.recv_q == 0
            && s.send_q == 0
            && s.timer.is_none_or(|t| t.kind == TimerKind::Keepalive);
        if s.state != TcpState::Established || s.inode == 0 || !quiet || !self.accepted_at(s.local)
        {
            return;
        }
        if !local_peer {
            // The unspecified address is no peer at all.
            if let Some(foreign) = &mut self.foreign
                && !plain_ip(s.peer.ip()).is_unspecified()
            {
                if foreign.len() < FOREIGN_LIMIT {
                    // Grown by doubling, but never past the bound: no slack past it.
                    if foreign.len() == foreign.capacity() {
                        let more = foreign.len().max(64).min(FOREIGN_LIMIT - foreign.len());
                        foreign.reserve_exact(more);
                    }
                    foreign.push(candidate(s));
                } else {
                    self.foreign_past += 1;
                }
            }
            return;
        }
        let reversed = tuple_hash(s.peer, s.local);
        if self.seen.contains(&reversed) {
            return;
        }
        if self.pending.len() >= PEER_PENDING_LIMIT {
            self.overflow.push(reversed);
            return;
        }
        self.pending.insert(reversed, candidate(s));
    }

    /// What the check found once the dump is over.
    pub(super) fn finish(self) -> Found {
        let mut gone: Vec<PeerGone> = self.pending.into_values().collect();
        gone.sort_by_key(|g| g.socket.inode);
        let past = gone.len().saturating_sub(PEER_GONE_LIMIT);
        gone.truncate(PEER_GONE_LIMIT);
        let unkept = self
            .overflow
            .iter()
            .filter(|h| !self.seen.contains(h))
            .count();
        Found {
            gone,
            left_out: (past + unkept) as u64,
            foreign: self.foreign.unwrap_or_default(),
            foreign_past: self.foreign_past,
        }
    }
}

/// What the peer check of a dump found.
pub(super) struct Found {
    /// The candidates whose other end never passed, by inode, at most [`PEER_GONE_LIMIT`].
    pub(super) gone: Vec<PeerGone>,
    /// Those past the limit, and the candidates past the pending bound whose other end never
    /// passed.
    pub(super) left_out: u64,
    /// Candidates from peers that are not local, kept for the look into the other scanned
    /// namespaces.
    pub(super) foreign: Vec<PeerGone>,
    /// Such candidates past [`FOREIGN_LIMIT`].
    pub(super) foreign_past: u64,
}

/// A socket whose other end is looked for, as it would be kept if that end is gone.
fn candidate(s: &InetSock) -> PeerGone {
    PeerGone {
        socket: TcpSocket {
            family: s.family,
            state: s.state,
            local: s.local,
            peer: s.peer,
            recv_q: s.recv_q,
            send_q: s.send_q,
            inode: s.inode,
            uid: s.uid,
            drops: None,
            last_ack_recv_ms: None,
            timer: s.timer,
            owners: Vec::new(),
        },
        idle_ms: s.tcp_info.as_ref().and_then(|i| i.last_data_recv),
        dumps: 1,
        peer_netns: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sockets;
    use super::super::slot_index::{Slot, SlotIndex};
    use super::super::test_support::sock;
    use super::*;
    use crate::model::TcpTimer;

    /// A full dump's sockets, in this order, with the namespace's address 10.0.0.1.
    fn dumped(socks: Vec<InetSock>) -> Sockets {
        let mut out = Sockets::new(
            SlotIndex::default(),
            Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], false)),
            None,
        );
        for s in socks {
            out.add_tcp(s);
        }
        out.settle_peer_check();
        out
    }

    fn gone(s: &Sockets) -> Vec<u64> {
        let mut inodes: Vec<u64> = s.peer_gone.iter().map(|g| g.socket.inode).collect();
        inodes.sort_unstable();
        inodes
    }

    #[test]
    fn an_accepted_connection_without_its_other_end_is_kept_whichever_order_they_come() {
        use TcpState::{Established, Listen, TimeWait};
        let est = Established;
        let mut s = dumped(vec![
            sock(Listen, "0.0.0.0:5020", "0.0.0.0:0", 1),
            // Other end after, other end before: both healthy.
            sock(est, "127.0.0.1:5020", "127.0.0.1:40001", 11),
            sock(est, "127.0.0.1:40001", "127.0.0.1:5020", 12),
            sock(est, "127.0.0.1:40002", "127.0.0.1:5020", 13),
            sock(est, "127.0.0.1:5020", "127.0.0.1:40002", 14),
            // The client in TIME_WAIT (inode 0): an other end all the same.
            sock(est, "127.0.0.1:5020", "127.0.0.1:40003", 15),
            sock(TimeWait, "127.0.0.1:40003", "127.0.0.1:5020", 0),
            // A dual-stack server's view of an IPv4 client that is gone, and one on the
            // namespace's own address: ghosts.
            sock(
                est,
                "[::ffff:127.0.0.1]:5020",
                "[::ffff:127.0.0.1]:40004",
                16,
            ),
            sock(est, "10.0.0.1:5020", "10.0.0.1:40005", 17),
            // A remote peer, and a local client of another host's server: not judged.
            sock(est, "10.0.0.1:5020", "192.0.2.7:40006", 18),
            sock(est, "127.0.0.1:40007", "127.0.0.1:6000", 19),
        ]);
        assert_eq!(gone(&s), [16, 17]);
        assert_eq!(s.peer_gone_left_out, 0);
        s.index.finish();
        assert_eq!(s.index.get(16), Some(Slot::PeerGone(0)));
        assert_eq!(s.tcp_states.get(Established), 9);
    }

    #[test]
    fn anything_in_flight_or_unaccepted_is_not_a_ghost_but_keepalive_is() {
        use TcpState::{Established, Listen};
        let mut unread = sock(Established, "127.0.0.1:5020", "127.0.0.1:40001", 11);
        unread.recv_q = 10;
        let mut unacked = sock(Established, "127.0.0.1:5020", "127.0.0.1:40002", 12);
        unacked.send_q = 10;
        unacked.timer = Some(TcpTimer {
            kind: TimerKind::Retransmit,
            retrans: 0,
            expires_ms: 200,
        });
        let unaccepted = sock(Established, "127.0.0.1:5020", "127.0.0.1:40003", 0);
        let mut keepalive = sock(Established, "127.0.0.1:5020", "127.0.0.1:40004", 14);
        keepalive.timer = Some(TcpTimer {
            kind: TimerKind::Keepalive,
            retrans: 0,
            expires_ms: 7_000_000,
        });
        let s = dumped(vec![
            sock(Listen, "127.0.0.1:5020", "0.0.0.0:0", 1),
            unread,
            unacked,
            unaccepted,
            keepalive,
        ]);
        assert_eq!(gone(&s), [14]);
    }

    #[test]
    fn past_the_pending_bound_only_real_ghosts_are_counted_left_out() {
        use TcpState::{Established, Listen};
        let n = u16::try_from(PEER_PENDING_LIMIT / 1000 + 1).expect("small");
        let mut socks = vec![sock(Listen, "0.0.0.0:5020", "0.0.0.0:0", 1)];
        // Servers' ends first, clients' after: every healthy one waits, past the bound.
        let mut inode = 10;
        let mut clients = Vec::new();
        for a in 1..=n {
            for port in 1000..2000u16 {
                inode += 1;
                let client = format!("127.0.{}.{}:{port}", a >> 8, a & 0xff);
                socks.push(sock(Established, "127.0.0.1:5020", &client, inode));
                clients.push(sock(Established, &client, "127.0.0.1:5020", 0));
            }
        }
        // Two ghosts past the bound: their clients never come.
        clients.truncate(clients.len() - 2);
        socks.extend(clients);
        let s = dumped(socks);
        assert!(s.peer_gone.is_empty());
        assert_eq!(s.peer_gone_left_out, 2);
    }

    #[test]
    fn candidates_from_peers_not_local_are_kept_only_when_other_namespaces_are_scanned() {
        use TcpState::{Established, Listen};
        let mut quiet_keepalive = sock(Established, "10.0.0.1:5020", "10.0.0.3:40004", 14);
        quiet_keepalive.timer = Some(TcpTimer {
            kind: TimerKind::Keepalive,
            retrans: 0,
            expires_ms: 7_000_000,
        });
        let mut unread = sock(Established, "10.0.0.1:5020", "10.0.0.3:40005", 15);
        unread.recv_q = 1;
        let socks = || {
            vec![
                sock(Listen, "0.0.0.0:5020", "0.0.0.0:0", 1),
                // Accepted from a peer that is not local: a candidate for the other
                // namespaces, as the dual-stack view of one too.
                sock(Established, "10.0.0.1:5020", "10.0.0.2:40001", 11),
                sock(
                    Established,
                    "[::ffff:10.0.0.1]:5020",
                    "[::ffff:10.0.0.2]:40002",
                    12,
                ),
                // A client of a server elsewhere, and an unaccepted child: never.
                sock(Established, "10.0.0.1:40003", "10.0.0.2:6000", 13),
                sock(Established, "10.0.0.1:5020", "10.0.0.2:40006", 0),
                quiet_keepalive.clone(),
                unread.clone(),
                // A local ghost, as before.
                sock(Established, "127.0.0.1:5020", "127.0.0.1:40007", 16),
            ]
        };
        let alone = dumped(socks());
        assert!(alone.foreign_candidates.is_empty());
        assert_eq!(gone(&alone), [16]);

        let mut scanned = Sockets::new(
            SlotIndex::default(),
            Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], true)),
            None,
        );
        for s in socks() {
            scanned.add_tcp(s);
        }
        scanned.settle_peer_check();
        let foreign: Vec<u64> = scanned
            .foreign_candidates
            .iter()
            .map(|g| g.socket.inode)
            .collect();
        assert_eq!(foreign, [11, 12, 14]);
        assert_eq!(gone(&scanned), [16], "the local check is unchanged");
        assert_eq!(scanned.foreign_past, 0);
        scanned.index.finish();
        assert_eq!(
            scanned.index.get(11),
            Some(Slot::Tcp(Established)),
            "a candidate is no ghost until looked for"
        );
        let first = scanned.foreign_candidates[0].clone();
        scanned.add_peer_gone(first);
        scanned.index.finish();
        assert_eq!(scanned.index.get(11), Some(Slot::PeerGone(1)));
    }

    #[test]
    fn past_the_foreign_bound_candidates_are_counted_not_kept() {
        let mut s = Sockets::new(
            SlotIndex::default(),
            Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], true)),
            None,
        );
        s.add_tcp(sock(TcpState::Listen, "0.0.0.0:5020", "0.0.0.0:0", 1));
        let mut inode = 10;
        'all: for a in 0..=255u8 {
            for port in 1000..2000u16 {
                if inode >= 10 + FOREIGN_LIMIT as u64 + 3 {
                    break 'all;
                }
                inode += 1;
                let peer = format!("10.1.{a}.1:{port}");
                s.add_tcp(sock(TcpState::Established, "10.0.0.1:5020", &peer, inode));
            }
        }
        s.settle_peer_check();
        assert_eq!(s.foreign_candidates.len(), FOREIGN_LIMIT);
        assert_eq!(s.foreign_past, 3);
    }
}
