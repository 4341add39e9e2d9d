//! Connections in trouble: what a full accept queue or a slow reader leaves behind, and the
//! clients that cannot connect.
//!
//! From the sockets a snapshot keeps in full (see [`crate::model::NetnsSnapshot::tracked`]):
//!
//! - half-open handshakes: SYN_RECV request sockets whose SYN-ACK was retransmitted — the
//!   client's final ACK is not arriving (lost, or dropped by a full accept queue); the client,
//!   when it is visible (the socket with the reversed 4-tuple), believes it is connected;
//! - connects that stall: SYN_SENT sockets that retransmitted their SYN, by process and
//!   destination;
//! - readers that stopped reading: a process's ESTABLISHED sockets whose unread data did not
//!   shrink over the window and grew, or is large, or keeps its peer probing a zero window
//!   (from one sample: past a byte threshold). A reader that stopped with a small request
//!   unread and an idle peer looks like a busy one from queue sizes alone, and is not named;
//! - writers that are blocked: ESTABLISHED sockets probing a zero window (the peer does not
//!   read) or retransmitting (the peer or the path does not acknowledge), by process and
//!   destination.
//!
//! - peers that are gone: a process's ESTABLISHED sockets — accepted or connected, their
//!   listener there or not — whose peer is on this host (or in a scanned namespace) and whose
//!   other end the collector did not find (its FIN or RST was lost), with nothing in flight —
//!   seen so at the window's start and at its end, in two independent dumps: a connection
//!   being torn down looks the same for a moment;
//! - peers that are silent: a process's connections accepted from a peer that is not local,
//!   which sent nothing since the handshake, keepalive off, for at least
//!   `silent_peer_after`: wherever the peer is, the connection may be all that is left.
//!
//! Both ends of a connection are matched within one namespace here: `127.0.0.1` in two
//! namespaces is two different hosts. The collector looks for the other end of a connection
//! whose peer is an address of another scanned namespace in that namespace, and says which
//! (`PeerGone::peer_netns`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use super::listeners::{ListenerView, assign_children};
use super::thresholds::Thresholds;
use crate::model::{
    Ghost, NetnsSnapshot, PeerGone, PeerRole, Snapshot, TcpSocket, TcpState, TcpTimer, TimerKind,
};

/// Consecutive retransmissions of unacknowledged data from which a writer counts as blocked:
/// one lost segment is ordinary, a second timeout in a row is not.
pub const BLOCKED_RETRANSMISSIONS: u8 = 2;
/// At most this many peers are named in a finding's evidence.
const PEERS_SHOWN: usize = 5;

/// The connections in trouble of one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connections {
    /// By listener (inode), request sockets whose SYN-ACK was retransmitted.
    pub half_open: Vec<HalfOpen>,
    pub connecting: Vec<Connecting>,
    pub receive_stalls: Vec<ReceiveStall>,
    pub send_stalls: Vec<SendStall>,
    pub peers_gone: Vec<PeersGone>,
    pub silent_peers: Vec<SilentPeers>,
    /// Connections in trouble the snapshot counted but did not keep (past its limit).
    pub left_out: u64,
    /// Sockets from a peer in another scanned namespace whose other end could not be
    /// looked for without doubt (see [`NetnsSnapshot::peer_unchecked`]).
    pub peer_unchecked: u64,
    /// Quiet connections accepted from a peer that is not local whose `tcp_info` was not
    /// read (see [`NetnsSnapshot::silent_unchecked`]).
    pub silent_unchecked: u64,
}

impl Connections {
    /// Sockets in each kind of trouble: half-open request sockets, stalled connects,
    /// sockets whose reader stalled, sockets whose writer is blocked, sockets whose peer is
    /// gone, sockets whose peer is silent.
    pub fn counts(&self) -> [(&'static str, u64); 6] {
        [
            ("half_open", self.half_open.iter().map(|h| h.requests).sum()),
            (
                "connecting",
                self.connecting.iter().map(|c| c.sockets).sum(),
            ),
            (
                "receive_stalled",
                self.receive_stalls.iter().map(|r| r.sockets).sum(),
            ),
            (
                "send_stalled",
                self.send_stalls.iter().map(|s| s.sockets).sum(),
            ),
            ("peer_gone", self.peers_gone.iter().map(|g| g.sockets).sum()),
            (
                "silent_peer",
                self.silent_peers.iter().map(|g| g.sockets).sum(),
            ),
        ]
    }
}

/// A process, as a finding names it; `None` for a socket whose owner is not visible.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: u32,
    pub comm: String,
}

/// One listener's half-open handshakes.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfOpen {
    pub listener_inode: u64,
    /// Request sockets whose SYN-ACK was retransmitted.
    pub requests: u64,
    /// The most SYN-ACK retransmissions of one of them.
    pub max_retrans: u8,
    /// The visible clients of those requests: ESTABLISHED sockets with the reversed 4-tuple.
    pub clients: u64,
    /// Bytes those clients sent that nobody acknowledged (their Send-Q).
    pub client_bytes: u64,
    pub client_processes: Vec<Holder>,
}

/// `connect()`s of one process to one destination whose SYN went unanswered.
#[derive(Debug, Clone, PartialEq)]
pub struct Connecting {
    pub holder: Option<Holder>,
    pub local_ip: IpAddr,
    pub remote: SocketAddr,
    pub sockets: u64,
    pub max_retries: u8,
    /// Time to the soonest next SYN retransmission, ms.
    pub next_retry_ms: u32,
    /// The scanned listener the destination is, when it is one: its position in the view.
    pub listener: Option<usize>,
}

/// A process's ESTABLISHED sockets whose unread data does not drain.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveStall {
    pub holder: Holder,
    pub sockets: u64,
    pub bytes: u64,
    pub largest: u32,
    pub peers: Vec<SocketAddr>,
    /// Judged over the window (two samples or more), not from one sample's bytes.
    pub over_window: bool,
}

/// A process's connections to one destination that cannot send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendStall {
    pub holder: Option<Holder>,
    pub remote: SocketAddr,
    pub sockets: u64,
    /// Bytes sent and not acknowledged (Send-Q).
    pub bytes: u64,
    /// Sockets probing a zero window: the peer does not read.
    pub zero_window: u64,
    /// Sockets retransmitting data: the peer or the path does not acknowledge.
    pub retransmitting: u64,
    pub max_retrans: u8,
    /// The peer's end, when it is a socket of this namespace.
    pub peer: Option<PeerEnd>,
}

/// A process's ESTABLISHED sockets whose other end is gone, over the whole window.
#[derive(Debug, Clone, PartialEq)]
pub struct PeersGone {
    pub holder: Holder,
    pub sockets: u64,
    /// Of those, the ends it accepted and the ends it connected.
    pub accepted: u64,
    pub connected: u64,
    /// The first few peers (the vanished clients' addresses).
    pub peers: Vec<SocketAddr>,
    /// The local addresses they were accepted on.
    pub locals: Vec<SocketAddr>,
    /// The least time since data last arrived on one of them, ms: every one has been idle
    /// at least this long. `None` when the dump did not bring `tcp_info`.
    pub idle_ms: Option<u32>,
    /// Those with `SO_KEEPALIVE` on (a keepalive timer pending): the kernel will find out.
    pub keepalive: u64,
    /// The labels of the other scanned namespaces the peers were in (where their other
    /// ends were looked for), first seen first; empty when every peer was in this one.
    pub peer_netns: Vec<String>,
    /// How many of the sockets had their peer in this namespace.
    pub same_netns: u64,
}

/// A process's connections accepted from peers that sent nothing since the handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct SilentPeers {
    pub holder: Holder,
    pub sockets: u64,
    /// The peer addresses with the most such connections, most first.
    pub top_peers: Vec<(IpAddr, u64)>,
    /// The local addresses they were accepted on.
    pub locals: Vec<SocketAddr>,
    pub longest_idle_ms: u32,
    pub shortest_idle_ms: u32,
}

/// What the other end of a blocked connection is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerEnd {
    pub holders: Vec<Holder>,
    /// Its end holds unread data: the reader that stopped.
    pub unread: bool,
    /// Its end is a request socket: the handshake never completed on that side.
    pub half_open: bool,
}

/// An address as both ends see it: an IPv4-mapped IPv6 address (a dual-stack socket's view
/// of an IPv4 peer) as the IPv4 address.
fn plain(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 @ SocketAddr::V4(_) => v4,
    }
}

fn retransmitting(timer: Option<TcpTimer>, at_least: u8) -> Option<u8> {
    timer
        .filter(|t| t.kind == TimerKind::Retransmit && t.retrans >= at_least)
        .map(|t| t.retrans)
}

/// What the judging of one namespace's connections reads.
struct Ends<'a> {
    ns: &'a NetnsSnapshot,
    last: &'a Snapshot,
    /// Every kept socket by (local, peer), to find a connection's other end.
    by_tuple: HashMap<(SocketAddr, SocketAddr), &'a TcpSocket>,
}

impl<'a> Ends<'a> {
    fn new(ns: &'a NetnsSnapshot, last: &'a Snapshot) -> Ends<'a> {
        let by_tuple = ns
            .tracked
            .iter()
            .map(|s| ((plain(s.local), plain(s.peer)), s))
            .collect();
        Ends { ns, last, by_tuple }
    }

    fn holder(&self, pid: u32) -> Holder {
        Holder {
            pid,
            comm: self
                .last
                .process(pid)
                .map_or_else(|| "?".to_owned(), |p| p.comm.clone()),
        }
    }

    fn first_holder(&self, s: &TcpSocket) -> Option<Holder> {
        s.owners.first().map(|&pid| self.holder(pid))
    }

    /// The socket at the other end of `s`'s connection, when it is one of this namespace's.
    fn other_end(&self, s: &TcpSocket) -> Option<&'a TcpSocket> {
        self.by_tuple.get(&(plain(s.peer), plain(s.local))).copied()
    }

    fn established(&self) -> impl Iterator<Item = &'a TcpSocket> {
        self.ns
            .tracked
            .iter()
            .filter(|s| s.state == TcpState::Established && s.inode != 0)
    }
}

/// The connections in trouble of `ns` (the newest snapshot's), judged against `before` (the
/// same namespace at the window's start, when the window has two snapshots or more).
///
/// `gone_before` is the window's first snapshot's list of sockets whose other end was gone,
/// when that snapshot comes from a dump other than the newest one's.
pub(super) fn connections(
    ns: &NetnsSnapshot,
    before: Option<&NetnsSnapshot>,
    gone_before: Option<&[PeerGone]>,
    last: &Snapshot,
    listeners: &[ListenerView],
    t: &Thresholds,
) -> Connections {
    let ends = Ends::new(ns, last);
    Connections {
        half_open: half_open(&ends, listeners),
        connecting: connecting(&ends, listeners),
        receive_stalls: receive_stalls(&ends, before, t),
        send_stalls: send_stalls(&ends),
        peers_gone: peers_gone(&ends, gone_before),
        silent_peers: silent_peers(&ends, t),
        left_out: ns.troubled_left_out + ns.peer_gone_left_out,
        peer_unchecked: ns.peer_unchecked,
        silent_unchecked: ns.silent_unchecked,
    }
}

/// The sockets whose other end is gone, by owner: those found so by two dumps in a row of a
/// live collector, or by the dump of the window's first snapshot too (the same connection:
/// inode and 4-tuple). One dump alone never raises it: a connection whose client has just
/// gone, and whose RST is being processed, looks the same for a moment.
fn peers_gone(ends: &Ends<'_>, gone_before: Option<&[PeerGone]>) -> Vec<PeersGone> {
    let before: HashMap<u64, &TcpSocket> = gone_before
        .unwrap_or_default()
        .iter()
        .filter(|g| g.ghost == Ghost::Gone)
        .map(|g| (g.socket.inode, &g.socket))
        .collect();
    let mut by: BTreeMap<u32, PeersGone> = BTreeMap::new();
    for g in ends.ns.peer_gone.iter().filter(|g| g.ghost == Ghost::Gone) {
        let s = &g.socket;
        let seen_before = before
            .get(&s.inode)
            .is_some_and(|b| b.local == s.local && b.peer == s.peer);
        if g.dumps < 2 && !seen_before {
            continue;
        }
        for &pid in &s.owners {
            let e = by.entry(pid).or_insert_with(|| PeersGone {
                holder: ends.holder(pid),
                sockets: 0,
                accepted: 0,
                connected: 0,
                peers: Vec::new(),
                locals: Vec::new(),
                idle_ms: g.idle_ms,
                keepalive: 0,
                peer_netns: Vec::new(),
                same_netns: 0,
            });
            e.sockets += 1;
            match g.role {
                PeerRole::Accepted => e.accepted += 1,
                PeerRole::Connected => e.connected += 1,
            }
            match &g.peer_netns {
                Some(id) => {
                    let label = ends
                        .last
                        .netns
                        .iter()
                        .find(|n| &n.id == id)
                        .map_or_else(|| format!("netns {id}"), |n| n.label.clone());
                    if e.peer_netns.len() < PEERS_SHOWN && !e.peer_netns.contains(&label) {
                        e.peer_netns.push(label);
                    }
                }
                None => e.same_netns += 1,
            }
            if e.peers.len() < PEERS_SHOWN && !e.peers.contains(&plain(s.peer)) {
                e.peers.push(plain(s.peer));
            }
            if e.locals.len() < PEERS_SHOWN && !e.locals.contains(&plain(s.local)) {
                e.locals.push(plain(s.local));
            }
            e.idle_ms = match (e.idle_ms, g.idle_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
            e.keepalive += u64::from(s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive));
        }
    }
    by.into_values().collect()
}

/// The connections accepted from a peer that sent nothing since the handshake, keepalive
/// off, idle at least `silent_peer_after`, by owner. The idle time is itself the window: no
/// second dump is needed. A socket also found gone (its peer in a scanned namespace) is a
/// `peer-gone`, kept once by the collector.
fn silent_peers(ends: &Ends<'_>, t: &Thresholds) -> Vec<SilentPeers> {
    let after = u32::try_from(t.silent_peer_after.as_millis()).unwrap_or(u32::MAX);
    let mut by: BTreeMap<u32, (SilentPeers, BTreeMap<IpAddr, u64>)> = BTreeMap::new();
    for g in &ends.ns.peer_gone {
        let Some(idle) = g.idle_ms.filter(|&ms| ms >= after) else {
            continue;
        };
        if g.ghost != Ghost::Silent || g.socket.timer.is_some() {
            continue;
        }
        for &pid in &g.socket.owners {
            let (e, peers) = by.entry(pid).or_insert_with(|| {
                let e = SilentPeers {
                    holder: ends.holder(pid),
                    sockets: 0,
                    top_peers: Vec::new(),
                    locals: Vec::new(),
                    longest_idle_ms: idle,
                    shortest_idle_ms: idle,
                };
                (e, BTreeMap::new())
            });
            e.sockets += 1;
            *peers.entry(plain(g.socket.peer).ip()).or_default() += 1;
            let local = plain(g.socket.local);
            if e.locals.len() < PEERS_SHOWN && !e.locals.contains(&local) {
                e.locals.push(local);
            }
            e.longest_idle_ms = e.longest_idle_ms.max(idle);
            e.shortest_idle_ms = e.shortest_idle_ms.min(idle);
        }
    }
    by.into_values()
        .map(|(mut e, peers)| {
            let mut peers: Vec<(IpAddr, u64)> = peers.into_iter().collect();
            peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            peers.truncate(PEERS_SHOWN);
            e.top_peers = peers;
            e
        })
        .collect()
}

fn connecting(ends: &Ends<'_>, listeners: &[ListenerView]) -> Vec<Connecting> {
    let mut by: BTreeMap<(Option<u32>, IpAddr, SocketAddr), Connecting> = BTreeMap::new();
    for s in ends
        .ns
        .tracked
        .iter()
        .filter(|s| s.state == TcpState::SynSent)
    {
        let Some(retries) = retransmitting(s.timer, 1) else {
            continue;
        };
        let key = (s.owners.first().copied(), s.local.ip(), plain(s.peer));
        let c = by.entry(key).or_insert_with(|| Connecting {
            holder: ends.first_holder(s),
            local_ip: s.local.ip(),
            remote: plain(s.peer),
            sockets: 0,
            max_retries: 0,
            next_retry_ms: u32::MAX,
            listener: listener_at(listeners, plain(s.peer)),
        });
        c.sockets += 1;
        c.max_retries = c.max_retries.max(retries);
        c.next_retry_ms = c
            .next_retry_ms
            .min(s.timer.map_or(u32::MAX, |t| t.expires_ms));
    }
    by.into_values().collect()
}

/// Sockets whose unread data did not shrink since `before` (when it still lists its sockets),
/// or, without it, that hold at least the threshold's bytes; by owner.
fn receive_stalls(
    ends: &Ends<'_>,
    before: Option<&NetnsSnapshot>,
    t: &Thresholds,
) -> Vec<ReceiveStall> {
    let over_window = before.filter(|b| !b.tracked_dropped);
    let unread_before: HashMap<u64, u32> = over_window
        .map(|b| {
            b.tracked
                .iter()
                .filter(|s| s.state == TcpState::Established && s.inode != 0)
                .map(|s| (s.inode, s.recv_q))
                .collect()
        })
        .unwrap_or_default();
    let mut by: BTreeMap<u32, ReceiveStall> = BTreeMap::new();
    for s in ends.established().filter(|s| s.recv_q > 0) {
        let large = u64::from(s.recv_q) >= t.recv_stall_bytes;
        // Equal Recv-Q at two instants is also what a busy reader of fixed-size messages
        // shows by chance: over a window, unread data must also have grown, be large, or be
        // what keeps the peer probing a zero window.
        let stalled = if over_window.is_some() {
            let peer_blocked = ends
                .other_end(s)
                .is_some_and(|p| p.timer.is_some_and(|t| t.kind == TimerKind::Probe));
            unread_before.get(&s.inode).is_some_and(|&was| {
                was > 0 && s.recv_q >= was && (s.recv_q > was || large || peer_blocked)
            })
        } else {
            large
        };
        if !stalled {
            continue;
        }
        for &pid in &s.owners {
            let r = by.entry(pid).or_insert_with(|| ReceiveStall {
                holder: ends.holder(pid),
                sockets: 0,
                bytes: 0,
                largest: 0,
                peers: Vec::new(),
                over_window: over_window.is_some(),
            });
            r.sockets += 1;
            r.bytes += u64::from(s.recv_q);
            r.largest = r.largest.max(s.recv_q);
            if r.peers.len() < PEERS_SHOWN && !r.peers.contains(&plain(s.peer)) {
                r.peers.push(plain(s.peer));
            }
        }
    }
    by.into_values().collect()
}

/// Sockets probing a zero window or retransmitting, by owner and destination.
fn send_stalls(ends: &Ends<'_>) -> Vec<SendStall> {
    let mut by: BTreeMap<(Option<u32>, SocketAddr), SendStall> = BTreeMap::new();
    for s in ends.established() {
        // A probe timer runs only while the peer advertises a zero window and data waits.
        let probing = s.timer.filter(|t| t.kind == TimerKind::Probe);
        let resending = retransmitting(s.timer, BLOCKED_RETRANSMISSIONS);
        if probing.is_none() && resending.is_none() {
            continue;
        }
        let key = (s.owners.first().copied(), plain(s.peer));
        let e = by.entry(key).or_insert_with(|| SendStall {
            holder: ends.first_holder(s),
            remote: plain(s.peer),
            sockets: 0,
            bytes: 0,
            zero_window: 0,
            retransmitting: 0,
            max_retrans: 0,
            peer: None,
        });
        e.sockets += 1;
        e.bytes += u64::from(s.send_q);
        e.zero_window += u64::from(probing.is_some());
        e.retransmitting += u64::from(resending.is_some());
        e.max_retrans = e.max_retrans.max(s.timer.map_or(0, |t| t.retrans));
        if e.peer.is_none() {
            e.peer = ends.other_end(s).map(|p| PeerEnd {
                holders: p.owners.iter().map(|&pid| ends.holder(pid)).collect(),
                unread: p.recv_q > 0 && p.state != TcpState::SynRecv,
                half_open: p.state == TcpState::SynRecv,
            });
        }
    }
    by.into_values().collect()
}

/// The listener of `listeners` that a connection to `remote` reaches: one on that exact
/// address, or a wildcard one on its port.
fn listener_at(listeners: &[ListenerView], remote: SocketAddr) -> Option<usize> {
    let exact = remote.to_string();
    let wildcard = |l: &ListenerView| {
        l.port == Some(remote.port())
            && l.local
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_unspecified())
    };
    listeners
        .iter()
        .position(|l| l.local == exact)
        .or_else(|| listeners.iter().position(wildcard))
}

fn half_open(ends: &Ends<'_>, listeners: &[ListenerView]) -> Vec<HalfOpen> {
    let ns = ends.ns;
    let mut by_listener: BTreeMap<usize, HalfOpen> = BTreeMap::new();
    for (s, i) in assign_children(&ns.tcp_listeners, &ns.tracked) {
        let Some(retrans) = retransmitting(s.timer, 1).filter(|_| s.state == TcpState::SynRecv)
        else {
            continue;
        };
        let inode = ns.tcp_listeners[i].inode;
        let h = by_listener.entry(i).or_insert_with(|| HalfOpen {
            listener_inode: inode,
            requests: 0,
            max_retrans: 0,
            clients: 0,
            client_bytes: 0,
            client_processes: Vec::new(),
        });
        h.requests += 1;
        h.max_retrans = h.max_retrans.max(retrans);
        if let Some(client) = ends
            .other_end(s)
            .filter(|c| c.state == TcpState::Established)
        {
            h.clients += 1;
            h.client_bytes += u64::from(client.send_q);
            for &pid in &client.owners {
                if !h.client_processes.iter().any(|p| p.pid == pid) {
                    h.client_processes.push(ends.holder(pid));
                }
            }
        }
    }
    // Listeners appear in the views by inode; keep only those the views hold.
    by_listener
        .into_values()
        .filter(|h| listeners.iter().any(|l| l.inode == h.listener_inode))
        .collect()
}
