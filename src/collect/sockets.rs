//! The sockets of one network namespace, dumped from the calling thread, and the index by
//! inode that joins them with processes.
//!
//! Two depths: a [`NsRead::Full`] dump asks for every TCP state and every unix socket (what a
//! one-shot report needs to agree with `ss` on every count); a fresh dump asks
//! only for what a diagnosis turns on — listeners with their drops, CLOSE_WAIT sockets with
//! their age, SYN_RECV request sockets, unix listeners — which the kernel picks out without
//! building a reply for each of the other sockets.
//!
//! What each costs, in the kernel: every TCP dump but LISTEN walks the established hash
//! table, which all namespaces share, socket by socket (about 20–70 ms for 100,000 sockets
//! on the test machine, whatever the state filter); LISTEN dumps walk only the small
//! listening table. So a fresh dump may leave out the CLOSE_WAIT / SYN_RECV walk
//! ([`NsRead::Listeners`]) when the caller knows nothing can have changed there.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use super::netlink::{
    DiagSocket, Extensions, InetSock, NetlinkError, StateMask, UnixSock, UnixStates,
};
pub use super::slot_index::Slot;
use super::slot_index::SlotIndex;
use super::vocab::{InodeHasher, InodeMap, NsRead, plain, plain_ip};
use crate::model::{
    PEER_GONE_LIMIT, PORT_USE_LIMIT, PeerGone, PortUse, StateCounts, TROUBLED_LIMIT, TcpSocket,
    TcpState, TimerKind, UDP_LIMIT, UdpSocket, UnixSocket, UnixState, UsablePorts,
};

/// The sockets of one namespace, before they are joined with processes.
#[derive(Debug, Default)]
#[allow(clippy::struct_field_names)] // unix_sockets is a count beside the unix listeners
pub struct Sockets {
    /// Sockets counted by state: every state for a full dump, [`FRESH_STATES`] for a fresh
    /// one.
    pub tcp_states: StateCounts,
    pub tcp_listeners: Vec<TcpSocket>,
    pub tracked: Vec<TcpSocket>,
    /// Connections in trouble kept in `tracked`, by kind, and those past the limit.
    troubled: [usize; 2],
    troubled_left_out: [u64; 2],
    pub unix_listeners: Vec<UnixSocket>,
    /// Unix sockets dumped: all of them for a full dump, the listeners for a fresh one.
    pub unix_sockets: u64,
    /// Inode -> what the inode is, for every socket with an inode.
    pub index: SlotIndex,
    /// ESTABLISHED sockets whose other end was not in the dump (full dumps only).
    pub peer_gone: Vec<PeerGone>,
    /// Such sockets past [`PEER_GONE_LIMIT`], or left unchecked (see [`PeerCheck`]).
    pub peer_gone_left_out: u64,
    /// The search for them, while a full dump runs.
    peer_check: Option<PeerCheck>,
    /// Candidates of that search whose peer is not an address of this namespace, when other
    /// namespaces are scanned too: their other end may be in one of those, which is looked
    /// at after every namespace is dumped (`cross_peers`). At most [`FOREIGN_LIMIT`].
    pub foreign_candidates: Vec<PeerGone>,
    /// Such candidates past [`FOREIGN_LIMIT`]: not checked.
    pub foreign_past: u64,
    /// Candidates whose other end could not be looked for in another namespace without
    /// doubt (see [`crate::model::NetnsSnapshot::peer_unchecked`]).
    pub peer_unchecked: u64,
    /// UDP sockets kept in full (see [`crate::model::NetnsSnapshot::udp_sockets`]).
    pub udp: Vec<UdpSocket>,
    /// Every UDP socket dumped.
    pub udp_count: u64,
    /// UDP sockets that would have been kept but for the limit.
    pub udp_left_out: u64,
    /// Why the UDP sockets could not be dumped, when the kernel refused.
    pub udp_refused: Option<NetlinkError>,
    /// Ports in use by destination, counted by a full dump that knew the usable range.
    ports: Option<PortTally>,
}

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
struct PeerCheck {
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
    fn new(local_addrs: &[IpAddr], others_scanned: bool) -> PeerCheck {
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

    fn add(&mut self, s: &InetSock) {
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

/// TCP sockets whose local port lies in the usable ephemeral range, counted by (local
/// address, destination): one small entry per destination, never one per socket.
///
/// Accepted connections share their listener's local port, which may lie in the range too
/// (a listener bound to port 0): they hold no port of their own, and counted they would make
/// one entry per client. Listeners come first in every dump, so their ports are known before
/// the connections stream by. A host talking to more than [`PORT_TALLY_LIMIT`] destinations
/// at once counts only the first ones it meets (the rest in `untracked`): a destination near
/// exhaustion holds thousands of sockets, and the dump meets one of them long before.
#[derive(Debug)]
struct PortTally {
    usable: UsablePorts,
    listening: PortSet,
    by_destination: HashMap<(IpAddr, SocketAddr), PortCount, BuildHasherDefault<InodeHasher>>,
    untracked: u64,
}

/// A set of ports: one bit each, 8 KiB, asked once or twice for every socket of a dump.
#[derive(Clone)]
struct PortSet(Box<[u64; 1024]>);

impl Default for PortSet {
    fn default() -> PortSet {
        PortSet(Box::new([0; 1024]))
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        write!(f, "PortSet({count} ports)")
    }
}

impl PortSet {
    fn insert(&mut self, port: u16) {
        self.0[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }
}

/// At most this many destinations are counted while a dump streams by.
const PORT_TALLY_LIMIT: usize = 65_536;

/// The sockets of one destination: counted by state, and a few of their inodes, by which
/// the processes holding them are found after the join.
#[derive(Debug, Default)]
struct PortCount {
    states: [u32; TcpState::CLASSIC.len()],
    sample: Vec<u64>,
}

/// How many inodes of each destination are kept to name its processes.
const PORT_USE_SAMPLE: usize = 16;

/// The busiest destinations of a full dump, and the inodes sampled from each.
pub type PortUseSampled = Vec<(PortUse, Vec<u64>)>;

/// Up to this many TCP sockets, a full dump asks for `tcp_info` with every state in one walk
/// rather than walking the kernel's table a second time for CLOSE_WAIT alone: a walk of the
/// table (shared by all namespaces) costs about as much as building and parsing `tcp_info`
/// for a few hundred sockets.
const ONE_WALK_UP_TO: u64 = 500;

/// What one exact lookup costs, in sockets a walk of the kernel's TCP table visits for the
/// same time: a round trip of two system calls (a few microseconds) against a fraction of a
/// microsecond a socket.
const SOCKETS_A_LOOKUP_COSTS: u64 = 16;

/// The socket with this 4-tuple, with `ext`, if the kernel still has it; a lookup the kernel
/// refuses finds nothing (the socket's details stay unknown), a broken socket is an error.
fn look_up(
    diag: &mut DiagSocket,
    local: SocketAddr,
    peer: SocketAddr,
    ext: Extensions,
) -> Result<Option<InetSock>, NetlinkError> {
    match diag.fetch_tcp(local, peer, ext) {
        Ok(found) => Ok(found),
        Err(err) if err.kernel_errno().is_some() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Dump the TCP sockets (both families) and unix sockets of the calling thread's namespace.
/// `sockets_hint` is how many TCP sockets the namespace holds, when known (`sockstat`).
///
/// A full dump asks for every TCP state (bound-inactive sockets only when the namespace may
/// hold one, `bound_inactive`: asking makes the kernel walk its bind table, shared by all
/// namespaces, see [`NetTables::bound_inactive_possible`](super::procnet::NetTables)), with the costly extensions only where they are
/// read: LISTEN with `SKMEMINFO` (drops), CLOSE_WAIT with `INFO` (`tcpi_last_ack_recv`),
/// every other state bare (in a small namespace, with `INFO` too, in the same walk). A fresh
/// dump keeps the first two, with SYN_RECV beside CLOSE_WAIT (request sockets carry no
/// `tcp_info`, so asking costs nothing).
///
/// A full dump also looks for ESTABLISHED sockets whose other end is gone (see
/// [`PeerCheck`]), with `local_addrs` the namespace's own addresses; when `others_scanned`,
/// it keeps the candidates from peers that are not local in
/// [`Sockets::foreign_candidates`], for a look into the other namespaces once all are
/// dumped.
///
/// Every read also dumps the UDP sockets: they live in a table of their own, so the walk
/// costs what the UDP sockets cost, not the TCP ones (`bench/report-vs-ss --udp` and
/// `bench/refresh-cost --udp` measure it); and their drop counters must be fresh for a
/// rate. A full dump given the `usable` ephemeral ports counts the ports in use by
/// destination as it goes.
pub fn dump(
    read: NsRead,
    sockets_hint: Option<u64>,
    bound_inactive: bool,
    local_addrs: &[IpAddr],
    usable: Option<UsablePorts>,
    others_scanned: bool,
) -> Result<Sockets, NetlinkError> {
    let mut diag = DiagSocket::new()?;
    let mut out = Sockets {
        index: SlotIndex::with_capacity(
            sockets_hint.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ),
        peer_check: read
            .is_full()
            .then(|| PeerCheck::new(local_addrs, others_scanned)),
        ports: usable.filter(|_| read.is_full()).map(|usable| PortTally {
            usable,
            listening: PortSet::default(),
            by_destination: HashMap::default(),
            untracked: 0,
        }),
        ..Sockets::default()
    };
    let drops = Extensions {
        skmeminfo: true,
        ..Extensions::default()
    };
    let info = Extensions {
        tcp_info: true,
        ..Extensions::default()
    };
    let listen = StateMask::only(&[TcpState::Listen]);
    diag.dump_tcp(listen, drops, |s| out.add_tcp(s))?;
    let all = if bound_inactive {
        StateMask::ALL
    } else {
        StateMask::ALL.without(&[TcpState::BoundInactive])
    };
    match read {
        NsRead::Full if sockets_hint.is_some_and(|n| n <= ONE_WALK_UP_TO) => {
            let rest = all.without(&[TcpState::Listen]);
            diag.dump_tcp(rest, info, |s| out.add_tcp(s))?;
        }
        NsRead::Full => {
            let bare = all.without(&[TcpState::Listen]);
            diag.dump_tcp(bare, Extensions::default(), |s| out.add_tcp(s))?;
            out.read_close_wait_info(&mut diag, info)?;
        }
        // Unsettled, "if moved" reads them.
        NsRead::Fresh | NsRead::FreshIfMoved => {
            let tracked =
                StateMask::only(&[TcpState::CloseWait, TcpState::SynRecv, TcpState::SynSent]);
            diag.dump_tcp(tracked, info, |s| out.add_tcp(s))?;
        }
        NsRead::Listeners => {}
    }
    let unix = if read.is_full() {
        UnixStates::All
    } else {
        UnixStates::Listening
    };
    diag.dump_unix(unix, |s| out.add_unix(s))?;
    out.settle_peer_check();
    out.read_peer_gone_idle(&mut diag, info)?;
    match diag.dump_udp(|s| out.add_udp(&s)) {
        Ok(()) => {}
        // A kernel without `udp_diag` refuses the request: the rest of the pass stands.
        Err(err) if err.kernel_errno().is_some() => out.udp_refused = Some(err),
        Err(err) => return Err(err),
    }
    out.index.finish();
    Ok(out)
}

/// The two kinds of connection in trouble that a dump keeps, each up to [`TROUBLED_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Troubled {
    /// A `connect()` whose SYN was retransmitted: nobody answered it yet.
    Connecting = 0,
    /// An ESTABLISHED socket with unread data, probing a zero window, or retransmitting.
    Stuck = 1,
}

impl Troubled {
    /// Which kind `s` is, if it is one: what the connection findings are about. Keeping one
    /// decides nothing; the analysis judges it over its window.
    fn of(s: &InetSock) -> Option<Troubled> {
        let retransmitting = s
            .timer
            .is_some_and(|t| t.kind == TimerKind::Retransmit && t.retrans >= 1);
        match s.state {
            TcpState::SynSent if retransmitting => Some(Troubled::Connecting),
            TcpState::Established
                if s.recv_q > 0
                    || retransmitting
                    || s.timer.is_some_and(|t| t.kind == TimerKind::Probe) =>
            {
                Some(Troubled::Stuck)
            }
            _ => None,
        }
    }
}

impl Sockets {
    fn add_tcp(&mut self, s: InetSock) {
        self.tcp_states.add(s.state, 1);
        if let Some(check) = &mut self.peer_check {
            check.add(&s);
        }
        if let Some(tally) = &mut self.ports {
            tally.add(&s);
        }
        let keep_as = match s.state {
            TcpState::Listen => Some(true),
            TcpState::SynRecv | TcpState::CloseWait => Some(false),
            // An ESTABLISHED socket with no inode is a child the app has not accept()ed yet.
            TcpState::Established if s.inode == 0 => Some(false),
            _ => match Troubled::of(&s) {
                Some(kind) if self.troubled[kind as usize] < TROUBLED_LIMIT => {
                    self.troubled[kind as usize] += 1;
                    Some(false)
                }
                Some(kind) => {
                    self.troubled_left_out[kind as usize] += 1;
                    None
                }
                None => None,
            },
        };
        let slot = match keep_as {
            None => Slot::Tcp(s.state),
            Some(listener) => {
                let list = if listener {
                    &mut self.tcp_listeners
                } else {
                    &mut self.tracked
                };
                list.push(TcpSocket {
                    family: s.family,
                    state: s.state,
                    local: s.local,
                    peer: s.peer,
                    recv_q: s.recv_q,
                    send_q: s.send_q,
                    inode: s.inode,
                    uid: s.uid,
                    drops: s.drops,
                    // Kept for CLOSE_WAIT only, whichever dump brought `tcp_info`.
                    last_ack_recv_ms: (s.state == TcpState::CloseWait)
                        .then(|| s.tcp_info.and_then(|i| i.last_ack_recv))
                        .flatten(),
                    timer: s.timer,
                    owners: Vec::new(),
                });
                let at = list.len() - 1;
                if listener {
                    Slot::TcpListener(at)
                } else {
                    Slot::Tracked(at)
                }
            }
        };
        if s.inode != 0 {
            self.index.insert(s.inode, slot);
        }
    }

    fn add_unix(&mut self, s: UnixSock) {
        self.unix_sockets += 1;
        let slot = if s.state == UnixState::Listen {
            self.unix_listeners.push(UnixSocket {
                kind: s.kind,
                state: s.state,
                path: s.path,
                inode: s.inode,
                peer_inode: s.peer_inode,
                recv_q: s.recv_q,
                send_q: s.send_q,
                uid: s.uid,
                owners: Vec::new(),
            });
            Slot::UnixListener(self.unix_listeners.len() - 1)
        } else {
            Slot::Unix
        };
        self.index.insert(s.inode, slot);
    }

    /// Fill in the time since the last ACK of the CLOSE_WAIT sockets a bare walk kept: one
    /// exact lookup each (a probe of the kernel's hash table) while they are few against the
    /// sockets of the dump, else one more walk of the table for CLOSE_WAIT alone, as before.
    fn read_close_wait_info(
        &mut self,
        diag: &mut DiagSocket,
        info: Extensions,
    ) -> Result<(), NetlinkError> {
        let waiting: Vec<usize> = (0..self.tracked.len())
            .filter(|&i| {
                let s = &self.tracked[i];
                s.state == TcpState::CloseWait && s.inode != 0 && s.last_ack_recv_ms.is_none()
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let sockets = self.tcp_states.total();
        if (waiting.len() as u64).saturating_mul(SOCKETS_A_LOOKUP_COSTS) > sockets {
            let at: InodeMap<usize> = waiting
                .iter()
                .map(|&i| (self.tracked[i].inode, i))
                .collect();
            let close_wait = StateMask::only(&[TcpState::CloseWait]);
            return diag.dump_tcp(close_wait, info, |s| {
                if let Some(&i) = at.get(&s.inode) {
                    self.tracked[i].last_ack_recv_ms = s.tcp_info.and_then(|t| t.last_ack_recv);
                }
            });
        }
        for i in waiting {
            let (local, peer, inode) = {
                let s = &self.tracked[i];
                (s.local, s.peer, s.inode)
            };
            if let Some(found) = look_up(diag, local, peer, info)?
                && found.inode == inode
            {
                self.tracked[i].last_ack_recv_ms = found.tcp_info.and_then(|t| t.last_ack_recv);
            }
        }
        Ok(())
    }

    /// Fill in how long the sockets whose other end is gone have been idle (the time since
    /// they last received data), by one exact lookup each: they are few, and a large dump
    /// asks for no `tcp_info` in its walk.
    fn read_peer_gone_idle(
        &mut self,
        diag: &mut DiagSocket,
        info: Extensions,
    ) -> Result<(), NetlinkError> {
        for at in 0..self.peer_gone.len() {
            let s = &self.peer_gone[at].socket;
            if self.peer_gone[at].idle_ms.is_some() || s.inode == 0 {
                continue;
            }
            let (local, peer, inode) = (s.local, s.peer, s.inode);
            if let Some(found) = look_up(diag, local, peer, info)?
                && found.inode == inode
            {
                self.peer_gone[at].idle_ms = found.tcp_info.and_then(|t| t.last_data_recv);
            }
        }
        Ok(())
    }

    /// Keep what the peer check found: the candidates whose other end never passed.
    fn settle_peer_check(&mut self) {
        let Some(check) = self.peer_check.take() else {
            return;
        };
        let mut found: Vec<PeerGone> = check.pending.into_values().collect();
        found.sort_by_key(|g| g.socket.inode);
        let past = found.len().saturating_sub(PEER_GONE_LIMIT);
        found.truncate(PEER_GONE_LIMIT);
        let unkept = check
            .overflow
            .iter()
            .filter(|h| !check.seen.contains(h))
            .count();
        self.peer_gone_left_out = (past + unkept) as u64;
        for g in found {
            self.index
                .insert(g.socket.inode, Slot::PeerGone(self.peer_gone.len()));
            self.peer_gone.push(g);
        }
        self.foreign_candidates = check.foreign.unwrap_or_default();
        self.foreign_past = check.foreign_past;
    }

    /// Add a socket whose other end the look into another namespace found gone: kept as the
    /// dump's own are, within [`PEER_GONE_LIMIT`]. The index is to be finished again after
    /// the last one.
    pub fn add_peer_gone(&mut self, g: PeerGone) {
        if self.peer_gone.len() >= PEER_GONE_LIMIT {
            self.peer_gone_left_out += 1;
            return;
        }
        self.index
            .insert(g.socket.inode, Slot::PeerGone(self.peer_gone.len()));
        self.peer_gone.push(g);
    }

    /// Add a socket whose other end was gone in an earlier full dump, `aged_ms` ago.
    pub fn add_carried_over_peer_gone(&mut self, g: &PeerGone, aged_ms: u32) {
        self.index
            .insert(g.socket.inode, Slot::PeerGone(self.peer_gone.len()));
        let mut g = g.clone();
        g.socket.owners.clear();
        g.idle_ms = g.idle_ms.map(|ms| ms.saturating_add(aged_ms));
        self.peer_gone.push(g);
    }

    /// Count each socket that the full dump before this one also found without its other
    /// end (`before`): the same inode and 4-tuple, so the same connection.
    pub fn confirm_peer_gone(&mut self, before: &[PeerGone]) {
        for g in &mut self.peer_gone {
            if let Some(b) = before.iter().find(|b| {
                b.socket.inode == g.socket.inode
                    && b.socket.local == g.socket.local
                    && b.socket.peer == g.socket.peer
            }) {
                g.dumps = b.dumps.saturating_add(1);
            }
        }
    }

    fn add_udp(&mut self, s: &InetSock) {
        self.udp_count += 1;
        let peer = (s.peer.port() != 0).then_some(s.peer);
        let keep = peer.is_none() || s.recv_q > 0 || s.drops.is_some_and(|d| d > 0);
        if !keep {
            return;
        }
        if self.udp.len() >= UDP_LIMIT {
            self.udp_left_out += 1;
            return;
        }
        self.udp.push(UdpSocket {
            family: s.family,
            local: s.local,
            peer,
            recv_q: s.recv_q,
            rmem_alloc: s.rmem.map(|m| m.alloc),
            rcvbuf: s.rmem.map(|m| m.rcvbuf),
            drops: s.drops,
            inode: s.inode,
            uid: s.uid,
            owners: Vec::new(),
        });
        if s.inode != 0 {
            self.index.insert(s.inode, Slot::Udp(self.udp.len() - 1));
        }
    }

    /// The busiest destinations by ports in use, when this dump counted them; and how many
    /// sockets went uncounted past the limit of destinations.
    pub fn take_port_use(&mut self) -> Option<(PortUseSampled, u64)> {
        self.ports.take().map(|t| {
            let untracked = t.untracked;
            (t.top(), untracked)
        })
    }

    /// Connections in trouble this dump counted but did not keep (past the limit).
    pub fn troubled_left_out(&self) -> u64 {
        self.troubled_left_out.iter().sum()
    }

    /// ESTABLISHED connections in trouble this dump counted but did not keep.
    pub fn established_left_out(&self) -> u64 {
        self.troubled_left_out[Troubled::Stuck as usize]
    }

    /// Add a SYN_RECV or CLOSE_WAIT socket read by an earlier dump, `aged_ms` ago, as if this
    /// dump had read it: its time since the peer's last ACK grows by that age (no ACK can
    /// have arrived, or the dump would not have been skipped), its owners are found again.
    pub fn add_carried_over(&mut self, s: &TcpSocket, aged_ms: u32) {
        self.tcp_states.add(s.state, 1);
        self.tracked.push(TcpSocket {
            last_ack_recv_ms: s.last_ack_recv_ms.map(|ms| ms.saturating_add(aged_ms)),
            owners: Vec::new(),
            ..s.clone()
        });
        if s.inode != 0 {
            self.index
                .insert(s.inode, Slot::Tracked(self.tracked.len() - 1));
        }
    }

    /// What each inode of this dump is, without pointing into this dump's lists: what an
    /// incremental collector keeps between full dumps.
    ///
    /// UDP sockets are left out: every refresh dumps them again.
    pub fn base_slots(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.index.iter().filter_map(|(inode, slot)| {
            let plain = match slot {
                Slot::TcpListener(_) => Slot::Tcp(TcpState::Listen),
                Slot::Tracked(i) => Slot::Tcp(self.tracked[i].state),
                Slot::PeerGone(_) => Slot::Tcp(TcpState::Established),
                Slot::UnixListener(_) => Slot::Unix,
                Slot::Udp(_) => return None,
                plain @ (Slot::Tcp(_) | Slot::Unix) => plain,
            };
            Some((inode, plain))
        })
    }
}

impl PortTally {
    /// Count `s` if it holds a port `connect()` could have picked: any state but LISTEN and
    /// SYN_RECV (whose local port is the listener's), with a peer, and a local port in the
    /// usable range.
    fn add(&mut self, s: &InetSock) {
        if s.state == TcpState::Listen {
            self.listening.insert(s.local.port());
            return;
        }
        if s.state == TcpState::SynRecv
            || s.peer.port() == 0
            || !self.usable.contains(s.local.port())
            || self.listening.contains(s.local.port())
        {
            return;
        }
        let Some(at) = TcpState::CLASSIC.iter().position(|&c| c == s.state) else {
            return;
        };
        let key = (s.local.ip(), s.peer);
        if self.by_destination.len() >= PORT_TALLY_LIMIT && !self.by_destination.contains_key(&key)
        {
            self.untracked += 1;
            return;
        }
        let count = self.by_destination.entry(key).or_default();
        count.states[at] += 1;
        if s.inode != 0 && count.sample.len() < PORT_USE_SAMPLE {
            count.sample.push(s.inode);
        }
    }

    /// The [`PORT_USE_LIMIT`] destinations with the most ports in use.
    fn top(self) -> PortUseSampled {
        let mut all: Vec<((IpAddr, SocketAddr), PortCount, u64)> = self
            .by_destination
            .into_iter()
            .map(|(key, count)| {
                let total = count.states.iter().map(|&n| u64::from(n)).sum();
                (key, count, total)
            })
            .collect();
        all.sort_unstable_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        all.truncate(PORT_USE_LIMIT);
        all.into_iter()
            .map(|((local, remote), count, _)| {
                let mut states = StateCounts::default();
                for (&state, &n) in TcpState::CLASSIC.iter().zip(&count.states) {
                    if n > 0 {
                        states.add(state, u64::from(n));
                    }
                }
                let use_ = PortUse {
                    local,
                    remote,
                    states,
                    owners: Vec::new(),
                };
                (use_, count.sample)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Sysctls, TcpTimer};

    fn sock(state: TcpState, local: &str, peer: &str, inode: u64) -> InetSock {
        let local: SocketAddr = local.parse().expect("addr");
        InetSock {
            family: if local.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            },
            state,
            local,
            peer: peer.parse().expect("addr"),
            recv_q: 0,
            send_q: 0,
            inode,
            uid: 0,
            drops: None,
            rmem: None,
            tcp_info: None,
            timer: None,
            ifindex: 0,
            cookie: inode,
        }
    }

    /// A full dump's sockets, in this order, with the namespace's address 10.0.0.1.
    fn dumped(socks: Vec<InetSock>) -> Sockets {
        let mut out = Sockets {
            peer_check: Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], false)),
            ..Sockets::default()
        };
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

        let mut scanned = Sockets {
            peer_check: Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], true)),
            ..Sockets::default()
        };
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
        let mut s = Sockets {
            peer_check: Some(PeerCheck::new(&["10.0.0.1".parse().expect("addr")], true)),
            ..Sockets::default()
        };
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

    fn tally() -> PortTally {
        let sysctl = Sysctls {
            ip_local_port_range: Some((40_000, 40_099)),
            ip_local_reserved_ports: vec![(40_050, 40_050)],
            ..Sysctls::default()
        };
        PortTally {
            usable: sysctl.usable_ports().expect("a range"),
            listening: PortSet::default(),
            by_destination: HashMap::default(),
            untracked: 0,
        }
    }

    #[test]
    fn ports_in_use_count_sockets_of_the_usable_range_by_destination() {
        let mut t = tally();
        let server = "10.0.0.2:443";
        for (i, port) in (40_000u16..40_040).enumerate() {
            let state = if i % 4 == 0 {
                TcpState::TimeWait
            } else {
                TcpState::Established
            };
            let inode = if state == TcpState::TimeWait {
                0
            } else {
                1000 + u64::from(port)
            };
            t.add(&sock(state, &format!("10.0.0.1:{port}"), server, inode));
        }
        // Not counted: a reserved port, a port outside the range, a listener, a request
        // socket, a socket without a peer.
        t.add(&sock(TcpState::Established, "10.0.0.1:40050", server, 1));
        t.add(&sock(TcpState::Established, "10.0.0.1:8080", server, 2));
        t.add(&sock(TcpState::Listen, "10.0.0.1:40060", "0.0.0.0:0", 3));
        // Connections accepted by a listener whose port lies in the range hold no port.
        for client in 0..5 {
            let peer = format!("10.0.0.7:{}", 50_000 + client);
            t.add(&sock(TcpState::Established, "10.0.0.1:40060", &peer, 0));
        }
        t.add(&sock(TcpState::SynRecv, "10.0.0.1:40061", server, 0));
        t.add(&sock(TcpState::Close, "10.0.0.1:40062", "0.0.0.0:0", 4));
        // Another destination, and the same destination from another address.
        t.add(&sock(TcpState::SynSent, "10.0.0.1:40070", "10.0.0.3:80", 5));
        t.add(&sock(TcpState::Established, "10.0.0.9:40000", server, 6));

        let top = t.top();
        assert_eq!(top.len(), 3);
        let (first, sample) = &top[0];
        assert_eq!(first.local.to_string(), "10.0.0.1");
        assert_eq!(first.remote.to_string(), server);
        assert_eq!(first.ports(), 40);
        assert_eq!(first.states.get(TcpState::TimeWait), 10);
        assert_eq!(first.states.get(TcpState::Established), 30);
        assert_eq!(
            sample.len(),
            PORT_USE_SAMPLE,
            "inodes sampled, TIME_WAIT has none"
        );
        assert!(sample.iter().all(|&i| i > 1000));
        assert_eq!(top[1].0.ports() + top[2].0.ports(), 2);
    }

    #[test]
    fn only_the_busiest_destinations_are_kept() {
        let mut t = tally();
        for d in 0..(PORT_USE_LIMIT + 5) {
            for p in 0..=d {
                let local = format!("10.0.0.1:{}", 40_000 + p);
                t.add(&sock(
                    TcpState::Established,
                    &local,
                    &format!("10.1.0.{d}:80"),
                    0,
                ));
            }
        }
        let top = t.top();
        assert_eq!(top.len(), PORT_USE_LIMIT);
        assert_eq!(top[0].0.ports(), (PORT_USE_LIMIT + 5) as u64);
        assert!(top.windows(2).all(|w| w[0].0.ports() >= w[1].0.ports()));
    }

    #[test]
    fn udp_sockets_kept_are_the_receiving_ones_and_connected_ones_in_trouble() {
        let mut s = Sockets::default();
        let mut udp = |local: &str, peer: &str, drops: u32, inode: u64| {
            let mut u = sock(TcpState::Close, local, peer, inode);
            u.drops = Some(drops);
            s.add_udp(&u);
        };
        udp("0.0.0.0:53", "0.0.0.0:0", 0, 1);
        udp("127.0.0.1:40001", "127.0.0.1:53", 0, 2);
        udp("127.0.0.1:40002", "127.0.0.1:53", 3, 3);
        assert_eq!(s.udp_count, 3);
        let kept: Vec<String> = s.udp.iter().map(|u| u.local.to_string()).collect();
        assert_eq!(kept, ["0.0.0.0:53", "127.0.0.1:40002"]);
        assert_eq!(s.udp[0].peer, None);
        s.index.finish();
        assert_eq!(s.index.get(1), Some(Slot::Udp(0)));
        assert_eq!(s.index.get(2), None, "counted, not kept");
        assert_eq!(
            s.base_slots().count(),
            0,
            "UDP is read again by every refresh"
        );
    }
}
