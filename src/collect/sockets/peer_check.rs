//! The search, as a full dump streams by, for ESTABLISHED sockets whose other end is gone
//! ([`PeerCheck`]): both ends of a connection between two addresses of one namespace are in
//! its dump, so what is still waiting for its other end when the dump ends has none. It also
//! picks out the candidates of the look for silent peers: connections accepted from a peer
//! that is not local, quiet and without keepalive, whose `tcp_info` is read after the dump.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::port_tally::PortSet;
use crate::collect::netlink::InetSock;
use crate::collect::vocab::{InodeHasher, InodeMap, plain, plain_ip};
use crate::model::{
    Family, Ghost, PEER_GONE_LIMIT, PeerGone, PeerRole, TcpSocket, TcpState, TcpTimer, TimerKind,
    UsablePorts,
};

/// The search, during a full dump, for ESTABLISHED sockets whose other end is not there.
///
/// Both ends of a connection between two addresses of one namespace are in its dump, with
/// reversed 4-tuples. So, as the dump streams by, every socket between two local addresses
/// (loopback or addresses of the namespace), in any state but LISTEN, leaves a 64-bit hash of
/// its 4-tuple in `seen`; and each candidate — such an ESTABLISHED socket with an inode and
/// nothing in flight, whichever end it is (accepted or connected, its listener there or not)
/// — waits in `pending` under the hash of its reversed tuple until its other end passes. A
/// candidate whose other end already passed is found in `seen` when the dump ends (or when
/// `pending` fills and `seen` is sorted to empty it). What still waits at the end has no
/// other end: a TIME_WAIT, FIN_WAIT or SYN_RECV other end counts as one. The two ends come in
/// hash-table order, not together, so `pending` can briefly hold many healthy connections:
/// it is bounded, and past the bound a candidate leaves only its hash, to be counted as left
/// out if its other end never passed. Each socket also leaves, in `seen`, a hash of the end
/// of it whose port is ephemeral (the client's endpoint): a candidate whose other end is
/// there under another tuple — netfilter redirected the client's connection to another
/// local address or port — is found by it (see [`Waiting::client_endpoint`]).
///
/// Cost, for the length of the dump only: `seen` is a plain vector, 16 bytes a local socket
/// (its tuple and its client's endpoint; room for two a socket of the namespace reserved
/// at the start and touched only as it fills, at most a quarter more past that), sorted in
/// place when the dump ends: 16 MB for a million loopback sockets; `pending` at most [`PEER_PENDING_LIMIT`] sockets (about 3 MB,
/// about 100 bytes each in a table at least half full),
/// and 8 bytes for each candidate past it.
#[derive(Debug, Default)]
pub(super) struct PeerCheck {
    /// The namespace's own addresses, loopback aside.
    local_addrs: Vec<IpAddr>,
    /// The usable ephemeral ports, when known: which end a socket is when its listener is gone.
    ephemeral: Option<UsablePorts>,
    /// Listening ports, and the addresses listened on (unspecified for a wildcard); the
    /// ports also in a bitmap, asked first for every local socket.
    listening: HashMap<u16, Vec<IpAddr>, BuildHasherDefault<InodeHasher>>,
    listening_ports: PortSet,
    /// The tuple hash of every socket between two local addresses; `seen[..sorted]` sorted,
    /// and indexed by `runs`.
    seen: Vec<u64>,
    sorted: usize,
    runs: Runs,
    pending: InodeMap<Waiting>,
    /// The reversed-tuple hashes of the candidates that found `pending` full: those whose
    /// other end never passes are counted as left out.
    overflow: Vec<u64>,
    /// Candidates from a peer that is not local, kept when other namespaces are scanned
    /// (`Some`): their other end is looked for there after the dumps.
    foreign: Option<Vec<PeerGone>>,
    foreign_past: u64,
    /// Silent peers the dump's own `tcp_info` showed, and candidates whose `tcp_info` is to
    /// be read (see [`SILENT_CANDIDATE_LIMIT`]).
    silent: Vec<PeerGone>,
    silent_candidates: Vec<PeerGone>,
    silent_past: u64,
}

/// At most this many candidates wait for their other end at once, in full.
const PEER_PENDING_LIMIT: usize = 20_000;

/// At most this many candidates from a peer that is not local to the namespace are kept per
/// namespace for the look into the other scanned namespaces (about 3 MB at most): every
/// quiet connection from or to a remote peer is one, so a busy host fills it with remote
/// peers, and the rest are counted as unchecked.
pub const FOREIGN_LIMIT: usize = 20_000;

/// At most this many connections accepted from a peer that is not local, quiet and without
/// keepalive, are kept per namespace for the look at their `tcp_info` (about 1.7 MB at
/// most); the rest are counted as unchecked.
pub const SILENT_CANDIDATE_LIMIT: usize = 10_000;

/// A 64-bit hash of a connection's 4-tuple, as seen from `local`: the addresses and ports
/// folded into [`InodeHasher`], cheap enough for every local connection of a dump. Nobody
/// outside chooses 4-tuples to collide here, and a collision could only hide a ghost.
fn tuple_hash(local: SocketAddr, peer: SocketAddr) -> u64 {
    let mut h = InodeHasher::default();
    write_endpoint(&mut h, plain(local));
    write_endpoint(&mut h, plain(peer));
    h.finish()
}

/// Feed an address and port to `h`: an IPv4 address as one word, an IPv6 one as two.
fn write_endpoint(h: &mut InodeHasher, addr: SocketAddr) {
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

/// Which end of a socket an endpoint hash is of.
#[derive(Clone, Copy)]
enum Side {
    Local = 1,
    Peer = 2,
}

/// A 64-bit hash of a client's endpoint (its address and ephemeral port) as one end of a
/// socket, kept beside the tuple hashes in `seen`.
fn endpoint_hash(side: Side, addr: SocketAddr) -> u64 {
    let mut h = InodeHasher::default();
    h.write_u64(0x9e37_79b9_7f4a_7c15 ^ side as u64);
    write_endpoint(&mut h, plain(addr));
    h.finish()
}

/// Push onto a vector bounded by `limit`, grown by doubling but never past the bound.
fn push_bounded<T>(list: &mut Vec<T>, item: T, limit: usize) -> bool {
    if list.len() >= limit {
        return false;
    }
    if list.len() == list.capacity() {
        let more = list.len().max(64).min(limit - list.len());
        list.reserve_exact(more);
    }
    list.push(item);
    true
}

/// A quiet ESTABLISHED socket with an inode: nothing unread or unacknowledged, no timer but
/// keepalive. Only such a socket can be waiting on a peer that is gone.
/// The shortest list of hashes [`Runs`] indexes at the end of a dump.
const RUNS_FROM: usize = 1 << 16;

/// The top bits of a hash by which [`Runs`] indexes a sorted list of hashes.
const RUN_BITS: u32 = 16;

/// Where each run of hashes with the same top [`RUN_BITS`] starts in a sorted list: a lookup
/// searches its run, about 15 hashes of a million, instead of the whole list, whose binary
/// search missed the cache at most of its 20 steps (at a million loopback sockets, a third
/// of the report's CPU). 512 KiB, built only for a list sorted while the dump goes on, as a
/// large namespace's is.
#[derive(Debug, Default)]
struct Runs {
    /// `starts[b]`: the index of the first hash whose top bits are `b` or more; one more
    /// entry, the list's length. Empty: not built, the list is searched whole.
    starts: Vec<usize>,
}

impl Runs {
    fn of(sorted: &[u64]) -> Runs {
        let mut starts = Vec::with_capacity((1 << RUN_BITS) + 1);
        let mut at = 0;
        for run in 0..1u64 << RUN_BITS {
            while sorted.get(at).is_some_and(|h| h >> (64 - RUN_BITS) < run) {
                at += 1;
            }
            starts.push(at);
        }
        starts.push(sorted.len());
        Runs { starts }
    }

    /// Whether `sorted`, the list these runs were built of, holds `hash`.
    fn contains(&self, sorted: &[u64], hash: u64) -> bool {
        let run = usize::try_from(hash >> (64 - RUN_BITS)).unwrap_or_default();
        match (self.starts.get(run), self.starts.get(run + 1)) {
            (Some(&from), Some(&to)) => sorted[from..to].binary_search(&hash).is_ok(),
            _ => sorted.binary_search(&hash).is_ok(),
        }
    }
}

fn quiet(s: &InetSock) -> bool {
    s.state == TcpState::Established
        && s.inode != 0
        && s.recv_q == 0
        && s.send_q == 0
        && s.timer.is_none_or(|t| t.kind == TimerKind::Keepalive)
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

    /// With the usable ephemeral ports, which tell an accepted socket whose listener is gone.
    pub(super) fn with_ephemeral(mut self, ephemeral: Option<UsablePorts>) -> PeerCheck {
        self.ephemeral = ephemeral;
        self
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

    /// Which end `s` is: accepted where a listener of the namespace accepts its local
    /// address, or, that listener gone, where its own port is not an ephemeral one and its
    /// peer's is.
    fn role(&self, s: &InetSock) -> PeerRole {
        let listener_gone = || {
            self.ephemeral
                .as_ref()
                .is_some_and(|e| !e.contains(s.local.port()) && e.contains(s.peer.port()))
        };
        if self.accepted_at(s.local) || listener_gone() {
            PeerRole::Accepted
        } else {
            PeerRole::Connected
        }
    }

    /// Room in `seen` for the tuple and the client's endpoint of `sockets` sockets (the
    /// namespace's count, when its counters give one): reserved once, not touched, so that
    /// the vector is not moved, copy after copy, as a large dump fills it.
    pub(super) fn with_room(mut self, sockets: Option<u64>) -> PeerCheck {
        let sockets = sockets.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        self.seen.reserve_exact(sockets.saturating_mul(2));
        self
    }

    /// Append to `seen`, a quarter more capacity at a time: a vector doubled would leave up to
    /// half of it unused.
    fn see(&mut self, hash: u64) {
        if self.seen.len() == self.seen.capacity() {
            self.seen.reserve_exact((self.seen.len() / 4).max(1024));
        }
        self.seen.push(hash);
    }

    /// Sort `seen` and drop from `pending` the candidates whose other end already passed;
    /// only once `seen` has doubled since it was last sorted, so that sorting costs as much
    /// in all as sorting once.
    fn compact(&mut self) {
        if self.seen.len() < 2 * self.sorted {
            return;
        }
        self.seen.sort_unstable();
        self.sorted = self.seen.len();
        self.runs = Runs::of(&self.seen);
        let (seen, runs) = (&self.seen, &self.runs);
        self.pending.retain(|h, _| !runs.contains(seen, *h));
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
        if self.is_local(s.peer.ip()) && self.is_local(s.local.ip()) {
            let own = tuple_hash(s.local, s.peer);
            let waited_for = self.pending.remove(&own).is_some();
            self.see(own);
            if let Some(ephemeral) = &self.ephemeral {
                let (local, peer) = (
                    ephemeral.contains(s.local.port()),
                    ephemeral.contains(s.peer.port()),
                );
                if local {
                    self.see(endpoint_hash(Side::Local, s.local));
                }
                if peer {
                    self.see(endpoint_hash(Side::Peer, s.peer));
                }
            }
            if waited_for || !quiet(s) {
                return;
            }
            let reversed = tuple_hash(s.peer, s.local);
            if self.sorted > 0 && self.runs.contains(&self.seen[..self.sorted], reversed) {
                return;
            }
            if self.pending.len() >= PEER_PENDING_LIMIT {
                self.compact();
            }
            if self.pending.len() >= PEER_PENDING_LIMIT {
                self.overflow.push(reversed);
                return;
            }
            let role = self.role(s);
            self.pending.insert(reversed, Waiting::of(s, role));
            return;
        }
        // The unspecified address is no peer at all.
        if !quiet(s) || plain_ip(s.peer.ip()).is_unspecified() {
            return;
        }
        let role = self.role(s);
        if let Some(foreign) = &mut self.foreign
            && !push_bounded(foreign, candidate(s, role, Ghost::Gone), FOREIGN_LIMIT)
        {
            self.foreign_past += 1;
        }
        // A silent peer: accepted by a listener that is there, keepalive off (no timer).
        if s.timer.is_some() || !self.accepted_at(s.local) {
            return;
        }
        let decided = match s.tcp_info.as_ref().map(|i| i.bytes_received) {
            // A small namespace's walk brought `tcp_info`: decided now.
            Some(Some(0)) => true,
            Some(_) => return,
            None => false,
        };
        if self.silent.len() + self.silent_candidates.len() >= SILENT_CANDIDATE_LIMIT {
            self.silent_past += 1;
            return;
        }
        let silent = candidate(s, PeerRole::Accepted, Ghost::Silent);
        if decided {
            self.silent.push(silent);
        } else {
            self.silent_candidates.push(silent);
        }
    }

    /// What the check found once the dump is over.
    pub(super) fn finish(mut self) -> Found {
        self.seen.sort_unstable();
        let seen = self.seen;
        // Indexed when large: the candidates past `pending` may be as many as the sockets.
        let runs = if seen.len() > RUNS_FROM {
            Runs::of(&seen)
        } else {
            Runs::default()
        };
        let passed = |h: &u64| runs.contains(&seen, *h);
        let mut gone: Vec<PeerGone> = self
            .pending
            .into_iter()
            .filter(|(h, w)| !passed(h) && !passed(&w.client_endpoint()))
            .map(|(_, w)| w.into_peer_gone())
            .collect();
        gone.sort_by_key(|g| g.socket.inode);
        let past = gone.len().saturating_sub(PEER_GONE_LIMIT);
        gone.truncate(PEER_GONE_LIMIT);
        let unkept = self.overflow.iter().filter(|h| !passed(h)).count();
        Found {
            gone,
            left_out: (past + unkept) as u64,
            foreign: self.foreign.unwrap_or_default(),
            foreign_past: self.foreign_past,
            silent: self.silent,
            silent_candidates: self.silent_candidates,
            silent_past: self.silent_past,
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
    /// Connections whose peer, not local, sent nothing, as the dump's `tcp_info` showed.
    pub(super) silent: Vec<PeerGone>,
    /// Quiet connections accepted from a peer that is not local, without keepalive, whose
    /// `tcp_info` the dump did not bring: to be read.
    pub(super) silent_candidates: Vec<PeerGone>,
    /// Such connections past [`SILENT_CANDIDATE_LIMIT`].
    pub(super) silent_past: u64,
}

/// A candidate waiting in `pending` for its other end: what it would be kept as, without
/// what it has by definition (nothing queued, ESTABLISHED, no owners yet). Half the size of
/// a [`PeerGone`]: `pending` holds up to [`PEER_PENDING_LIMIT`] of them.
#[derive(Debug)]
struct Waiting {
    local: SocketAddr,
    peer: SocketAddr,
    inode: u64,
    uid: u32,
    idle_ms: Option<u32>,
    timer: Option<TcpTimer>,
    role: PeerRole,
}

impl Waiting {
    /// The hash its other end's client endpoint would leave in `seen` if the other end is
    /// there with another tuple than the reversed one: a connection to a local address whose
    /// port netfilter redirects (a DNAT or REDIRECT within the namespace, a transparent
    /// proxy's) has a server end whose local address is not the one the client connected to.
    /// The client's endpoint is the same on both ends: a client whose server end names it as
    /// its peer, or a server whose client has that endpoint as its own, has an other end.
    fn client_endpoint(&self) -> u64 {
        match self.role {
            PeerRole::Accepted => endpoint_hash(Side::Local, self.peer),
            PeerRole::Connected => endpoint_hash(Side::Peer, self.local),
        }
    }

    fn of(s: &InetSock, role: PeerRole) -> Waiting {
        Waiting {
            local: s.local,
            peer: s.peer,
            inode: s.inode,
            uid: s.uid,
            idle_ms: s.tcp_info.as_ref().and_then(|i| i.last_data_recv),
            timer: s.timer,
            role,
        }
    }

    fn into_peer_gone(self) -> PeerGone {
        PeerGone {
            socket: TcpSocket {
                family: if self.local.is_ipv4() {
                    Family::Inet
                } else {
                    Family::Inet6
                },
                state: TcpState::Established,
                local: self.local,
                peer: self.peer,
                recv_q: 0,
                send_q: 0,
                inode: self.inode,
                uid: self.uid,
                drops: None,
                last_ack_recv_ms: None,
                timer: self.timer,
                owners: Vec::new(),
            },
            idle_ms: self.idle_ms,
            dumps: 1,
            peer_netns: None,
            role: self.role,
            ghost: Ghost::Gone,
        }
    }
}

/// A socket whose other end is looked for, as it would be kept if that end is gone.
fn candidate(s: &InetSock, role: PeerRole, ghost: Ghost) -> PeerGone {
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
        role,
        ghost,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sockets;
    use super::super::slot_index::{Slot, SlotIndex};
    use super::super::test_support::sock;
    use super::*;

    /// The runs find what a search of the whole list finds: hashes spread over the whole
    /// range (the multiplier of a 64-bit LCG), at both ends of it, and between runs.
    #[test]
    fn runs_find_what_the_whole_list_holds() {
        let mut hashes: Vec<u64> = (1..=200_000u64)
            .map(|i| i.wrapping_mul(6_364_136_223_846_793_005))
            .chain([0, u64::MAX, 1 << 48, (1 << 48) - 1])
            .collect();
        hashes.sort_unstable();
        let runs = Runs::of(&hashes);
        for &h in hashes
            .iter()
            .step_by(97)
            .chain(&[0, u64::MAX, 1 << 48, (1 << 48) - 1])
        {
            assert!(runs.contains(&hashes, h), "{h:#x}");
            assert!(!runs.contains(&hashes, h ^ 1) || hashes.binary_search(&(h ^ 1)).is_ok());
        }
        assert!(!runs.contains(&hashes, 2));
        // Not built: the whole list is searched.
        assert!(Runs::default().contains(&hashes, u64::MAX));
    }
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
            // A remote peer: not judged. A local client whose server's end is gone (no
            // listener on 6000 either): a ghost too, connected.
            sock(est, "10.0.0.1:5020", "192.0.2.7:40006", 18),
            sock(est, "127.0.0.1:40007", "127.0.0.1:6000", 19),
        ]);
        assert_eq!(gone(&s), [16, 17, 19]);
        let role = |inode| {
            s.peer_gone
                .iter()
                .find(|g| g.socket.inode == inode)
                .map(|g| g.role)
        };
        assert_eq!(role(16), Some(PeerRole::Accepted));
        assert_eq!(role(19), Some(PeerRole::Connected));
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
                // A client of a server elsewhere: a candidate too; an unaccepted child:
                // never.
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
        assert_eq!(foreign, [11, 12, 13, 14], "accepted or connected");
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

    fn ephemeral() -> UsablePorts {
        crate::model::Sysctls {
            ip_local_port_range: Some((32768, 60999)),
            ..crate::model::Sysctls::default()
        }
        .usable_ports()
        .expect("a range")
    }

    /// A full dump's sockets with the ephemeral range known, as [`dumped`] otherwise.
    fn dumped_knowing_ports(socks: Vec<InetSock>) -> Sockets {
        let check = PeerCheck::new(&["10.0.0.1".parse().expect("addr")], false)
            .with_ephemeral(Some(ephemeral()));
        let mut out = Sockets::new(SlotIndex::default(), Some(check), None);
        for s in socks {
            out.add_tcp(s);
        }
        out.settle_peer_check();
        out
    }

    #[test]
    fn either_end_without_its_other_is_a_ghost_listener_or_not_and_says_which() {
        use TcpState::{Established, FinWait2, SynRecv, TimeWait};
        let est = Established;
        let s = dumped_knowing_ports(vec![
            // No listener any more: the server's ends (port 5020 outside the range, the
            // peer's inside) are accepted; one client gone, one there.
            sock(est, "127.0.0.1:5020", "127.0.0.1:40001", 11),
            sock(est, "127.0.0.1:5020", "127.0.0.1:40002", 12),
            sock(est, "127.0.0.1:40002", "127.0.0.1:5020", 13),
            // A client pool to a local server that is gone: connected.
            sock(est, "127.0.0.1:40010", "127.0.0.1:5432", 21),
            sock(est, "10.0.0.1:40011", "10.0.0.1:5432", 22),
            // Other ends in TIME_WAIT, FIN_WAIT2 or SYN_RECV are other ends all the same,
            // whichever comes first.
            sock(TimeWait, "127.0.0.1:5432", "127.0.0.1:40012", 0),
            sock(est, "127.0.0.1:40012", "127.0.0.1:5432", 23),
            sock(est, "127.0.0.1:40013", "127.0.0.1:5432", 24),
            sock(FinWait2, "127.0.0.1:5432", "127.0.0.1:40013", 0),
            sock(est, "127.0.0.1:40014", "127.0.0.1:5432", 25),
            sock(SynRecv, "127.0.0.1:5432", "127.0.0.1:40014", 0),
            // Both ends healthy, neither a listener's.
            sock(est, "127.0.0.1:40020", "127.0.0.1:40021", 26),
            sock(est, "127.0.0.1:40021", "127.0.0.1:40020", 27),
        ]);
        let found: Vec<(u64, PeerRole)> = {
            let mut v: Vec<_> = s
                .peer_gone
                .iter()
                .map(|g| (g.socket.inode, g.role))
                .collect();
            v.sort_unstable_by_key(|&(i, _)| i);
            v
        };
        assert_eq!(
            found,
            [
                (11, PeerRole::Accepted),
                (21, PeerRole::Connected),
                (22, PeerRole::Connected)
            ]
        );
        assert_eq!(s.peer_gone_left_out, 0);
    }

    #[test]
    fn a_connection_redirected_within_the_namespace_is_no_ghost_at_either_end() {
        use TcpState::{Established, Listen};
        let est = Established;
        // 127.0.0.1:80 redirected to a proxy on 127.0.0.1:15001: the client's end names the
        // address it connected to, the proxy's the one it listens on.
        let s = dumped_knowing_ports(vec![
            sock(Listen, "127.0.0.1:15001", "0.0.0.0:0", 1),
            sock(est, "127.0.0.1:40001", "127.0.0.1:80", 11),
            sock(est, "127.0.0.1:15001", "127.0.0.1:40001", 12),
            sock(est, "127.0.0.1:15001", "127.0.0.1:40002", 13),
            sock(est, "127.0.0.1:40002", "10.0.0.1:80", 14),
            // The same ports without their other ends: ghosts.
            sock(est, "127.0.0.1:15001", "127.0.0.1:40003", 15),
            sock(est, "127.0.0.1:40004", "127.0.0.1:80", 16),
        ]);
        assert_eq!(gone(&s), [15, 16]);
    }

    #[test]
    fn pending_full_of_ends_whose_other_passed_first_is_emptied_not_overflowed() {
        use TcpState::{Established, FinWait2};
        // Every candidate's other end comes first and is no candidate (FIN_WAIT2 here):
        // they all wait until `seen` is sorted, past the bound.
        let mut socks = Vec::new();
        let mut inode = 10;
        for a in 1..=30u8 {
            for port in 1000..2000u16 {
                inode += 1;
                let client = format!("127.0.1.{a}:{port}");
                socks.push(sock(FinWait2, &client, "127.0.0.1:5020", 0));
                socks.push(sock(Established, "127.0.0.1:5020", &client, inode));
            }
        }
        socks.push(sock(Established, "127.0.0.1:5020", "127.0.2.1:1000", 1));
        let s = dumped(socks);
        assert_eq!(
            gone(&s),
            [1],
            "the one ghost named, not counted as left out"
        );
        assert_eq!(s.peer_gone_left_out, 0);
    }

    #[test]
    fn quiet_connections_accepted_from_remote_peers_without_keepalive_are_silent_candidates() {
        use TcpState::{Established, Listen};
        let est = Established;
        let mut keepalive = sock(est, "10.0.0.1:5020", "192.0.2.1:40002", 12);
        keepalive.timer = Some(TcpTimer {
            kind: TimerKind::Keepalive,
            retrans: 0,
            expires_ms: 7_000_000,
        });
        let mut unread = sock(est, "10.0.0.1:5020", "192.0.2.1:40003", 13);
        unread.recv_q = 5;
        let with_info = |inode, received| {
            let mut s = sock(est, "10.0.0.1:5020", "192.0.2.1:40010", inode);
            s.local = SocketAddr::new(s.local.ip(), 5020);
            s.peer = SocketAddr::new(s.peer.ip(), u16::try_from(40000 + inode).expect("port"));
            s.tcp_info = Some(crate::collect::netlink::TcpInfo {
                bytes_received: Some(received),
                last_data_recv: Some(90_000),
                ..crate::collect::netlink::TcpInfo::default()
            });
            s
        };
        let s = dumped(vec![
            sock(Listen, "0.0.0.0:5020", "0.0.0.0:0", 1),
            sock(est, "10.0.0.1:5020", "192.0.2.1:40001", 11),
            keepalive,
            unread,
            // Made by connect(), and a local peer: not a silent peer's.
            sock(est, "10.0.0.1:40004", "192.0.2.1:80", 14),
            sock(est, "127.0.0.1:5020", "127.0.0.1:40005", 15),
            sock(est, "127.0.0.1:40005", "127.0.0.1:5020", 16),
            // A small namespace's walk brought `tcp_info`: decided at once.
            with_info(17, 0),
            with_info(18, 310),
        ]);
        let candidates: Vec<u64> = s.silent_candidates.iter().map(|g| g.socket.inode).collect();
        assert_eq!(candidates, [11]);
        let silent: Vec<(u64, Option<u32>)> = s
            .peer_gone
            .iter()
            .filter(|g| g.ghost == Ghost::Silent)
            .map(|g| (g.socket.inode, g.idle_ms))
            .collect();
        assert_eq!(silent, [(17, Some(90_000))]);
        assert_eq!(gone(&s), [17], "no local ghost; the silent one is indexed");
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
