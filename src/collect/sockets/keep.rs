//! What a dump keeps of each socket it meets ([`Sockets`]): every socket counted by state
//! and indexed by inode; listeners, SYN_RECV, CLOSE_WAIT, unaccepted children and connections
//! in trouble kept in full; UDP sockets that receive or are in trouble. What it puts back
//! from earlier dumps (carried over by the engine) is kept the same way.

use super::peer_check::PeerCheck;
use super::port_tally::{PortTally, PortUseSampled};
use super::slot_index::{Slot, SlotIndex};
use super::time_wait::TimeWaitTally;
use crate::collect::netlink::{InetSock, NetlinkError, UnixSock};
use crate::model::{
    Ghost, PEER_GONE_LIMIT, PeerGone, StateCounts, TROUBLED_LIMIT, TcpSocket, TcpState,
    TimeWaitGroup, TimerKind, UDP_LIMIT, UdpSocket, UnixSocket, UnixState,
};

/// The sockets of one namespace, before they are joined with processes.
#[derive(Debug, Default)]
#[allow(clippy::struct_field_names)] // unix_sockets is a count beside the unix listeners
pub struct Sockets {
    /// Sockets counted by state: every state for a full dump,
    /// [`FRESH_STATES`](crate::collect::vocab::FRESH_STATES) for a fresh one.
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
    /// at after every namespace is dumped (`cross_peers`). At most
    /// [`FOREIGN_LIMIT`](super::peer_check::FOREIGN_LIMIT).
    pub foreign_candidates: Vec<PeerGone>,
    /// Such candidates past the limit: not checked.
    pub foreign_past: u64,
    /// Candidates whose other end could not be looked for in another namespace without
    /// doubt (see [`crate::model::NetnsSnapshot::peer_unchecked`]).
    pub peer_unchecked: u64,
    /// Quiet connections accepted from a peer that is not local, without keepalive, whose
    /// `tcp_info` is to be read after the dump (silent peers, when it received nothing).
    pub silent_candidates: Vec<PeerGone>,
    /// Such connections past [`SILENT_CANDIDATE_LIMIT`](super::peer_check::SILENT_CANDIDATE_LIMIT)
    /// or whose `tcp_info` could not be read, and silent ones past [`PEER_GONE_LIMIT`]: not
    /// judged.
    pub silent_unchecked: u64,
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
    /// TIME_WAIT sockets by address, counted by a full dump …
    time_wait: Option<TimeWaitTally>,
    /// … and the busiest addresses, once it is over.
    pub time_wait_top: Vec<TimeWaitGroup>,
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
    /// Sockets about to be dumped into `index`; a full dump also runs the peer check and
    /// counts the ports in use.
    pub(super) fn new(
        index: SlotIndex,
        peer_check: Option<PeerCheck>,
        ports: Option<PortTally>,
    ) -> Sockets {
        Sockets {
            index,
            peer_check,
            ports,
            ..Sockets::default()
        }
    }

    pub(super) fn add_tcp(&mut self, s: InetSock) {
        self.tcp_states.add(s.state, 1);
        if let Some(check) = &mut self.peer_check {
            check.add(&s);
        }
        if let Some(tally) = &mut self.ports {
            tally.add(&s);
        }
        if let Some(tally) = &mut self.time_wait {
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

    pub(super) fn add_unix(&mut self, s: UnixSock) {
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

    /// Keep what the peer check found: the candidates whose other end never passed.
    pub(super) fn settle_peer_check(&mut self) {
        let Some(check) = self.peer_check.take() else {
            return;
        };
        let found = check.finish();
        self.peer_gone_left_out = found.left_out;
        for g in found.gone {
            self.index
                .insert(g.socket.inode, Slot::PeerGone(self.peer_gone.len()));
            self.peer_gone.push(g);
        }
        self.foreign_candidates = found.foreign;
        self.foreign_past = found.foreign_past;
        for g in found.silent {
            self.add_silent(g);
        }
        self.silent_candidates = found.silent_candidates;
        self.silent_unchecked = found.silent_past;
    }

    /// How many of the sockets kept are of this kind.
    fn kept(&self, ghost: Ghost) -> usize {
        self.peer_gone.iter().filter(|g| g.ghost == ghost).count()
    }

    /// Add a connection whose peer, not local, sent nothing since the handshake: kept beside
    /// those whose other end is gone, within [`PEER_GONE_LIMIT`] of its own.
    pub(super) fn add_silent(&mut self, g: PeerGone) {
        if self.kept(Ghost::Silent) >= PEER_GONE_LIMIT {
            self.silent_unchecked += 1;
            return;
        }
        self.index
            .insert(g.socket.inode, Slot::PeerGone(self.peer_gone.len()));
        self.peer_gone.push(g);
    }

    /// Add a socket whose other end the look into another namespace found gone: kept as the
    /// dump's own are, within [`PEER_GONE_LIMIT`]; a silent one kept already becomes gone.
    /// The index is to be finished again after the last one.
    pub fn add_peer_gone(&mut self, g: PeerGone) {
        if let Some(kept) = self
            .peer_gone
            .iter_mut()
            .find(|k| k.socket.inode == g.socket.inode && k.socket.local == g.socket.local)
        {
            kept.ghost = Ghost::Gone;
            kept.role = g.role;
            kept.peer_netns = g.peer_netns;
            return;
        }
        if self.kept(Ghost::Gone) >= PEER_GONE_LIMIT {
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
    /// end, or with its peer silent (`before`): the same inode and 4-tuple, so the same
    /// connection, seen the same way.
    pub fn confirm_peer_gone(&mut self, before: &[PeerGone]) {
        for g in &mut self.peer_gone {
            if let Some(b) = before.iter().find(|b| {
                b.socket.inode == g.socket.inode
                    && b.socket.local == g.socket.local
                    && b.socket.peer == g.socket.peer
                    && b.ghost == g.ghost
            }) {
                g.dumps = b.dumps.saturating_add(1);
            }
        }
    }

    pub(super) fn add_udp(&mut self, s: &InetSock) {
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
        self.ports.take().map(PortTally::finish)
    }

    /// Count the TIME_WAIT sockets by address as they go by (a full dump).
    pub(super) fn count_time_wait(&mut self) {
        self.time_wait = Some(TimeWaitTally::default());
    }

    /// The dump is over: keep only the busiest TIME_WAIT addresses, if it counted them.
    pub(super) fn finish_time_wait(&mut self) {
        if let Some(tally) = self.time_wait.take() {
            self.time_wait_top = tally.top();
        }
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
        self.index
            .iter()
            .filter_map(|(inode, slot)| self.plain_slot(slot).map(|plain| (inode, plain)))
    }

    /// What a slot of this dump's index is in the index a collector keeps: the state alone,
    /// nothing for a UDP socket.
    pub fn plain_slot(&self, slot: Slot) -> Option<Slot> {
        Some(match slot {
            Slot::TcpListener(_) => Slot::Tcp(TcpState::Listen),
            Slot::Tracked(i) => Slot::Tcp(self.tracked[i].state),
            Slot::PeerGone(_) => Slot::Tcp(TcpState::Established),
            Slot::UnixListener(_) => Slot::Unix,
            Slot::Udp(_) => return None,
            plain @ (Slot::Tcp(_) | Slot::Unix) => plain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::sock;
    use super::*;

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
