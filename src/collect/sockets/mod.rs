//! One network namespace read from a thread inside it: its counters, then its sockets, and
//! the index by inode that joins them with processes.
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
//!
//! A reader: it builds on the vocabulary, the model and the readers below it (netlink for the
//! sockets, procnet for the counters read with them), never on the engine that runs it. Its
//! jobs, each in a module of its own:
//!
//! | module | owns |
//! | --- | --- |
//! | this one | one namespace's read: the counters, then the sequence of sock_diag requests |
//! | `keep` | what of each socket is kept ([`Sockets`]) |
//! | `peer_check` | the ESTABLISHED sockets whose other end is gone, found as the dump streams by; the silent-peer candidates |
//! | `port_tally` | the ports in use by destination |
//! | `time_wait` | the TIME_WAIT sockets by the address they point to |
//! | `slot_index` | what each socket inode is, for the join ([`Slot`]) |

mod keep;
mod peer_check;
mod port_tally;
pub(super) mod slot_index;
#[cfg(test)]
mod test_support;
mod time_wait;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::clock;
use super::netlink::{
    DiagSocket, Extensions, InetSock, NetlinkError, StateMask, TcpInfo, UnixStates,
};
use super::netns::{EnterError, Target};
use super::procnet::{self, HostSysctls, NetTables};
use super::vocab::{InodeMap, NsRead};
use crate::model::{TcpState, UsablePorts};
pub use keep::Sockets;
use peer_check::PeerCheck;
use port_tally::PortTally;
pub use port_tally::PortUseSampled;
pub use slot_index::Slot;
use slot_index::SlotIndex;

/// One namespace's read, from a thread inside it.
pub struct NsDump {
    /// What was read, settled.
    pub read: NsRead,
    pub sockets: Sockets,
    pub tables: NetTables,
    /// CPU time the read took on its thread.
    pub cpu: Duration,
    /// Whether the namespace tracks connections (may NAT them), read by a full dump when
    /// other namespaces are scanned too (for the look for peers across them).
    pub tracks_connections: bool,
}

/// A namespace, and its read.
pub type Dumped = (Target, NsDump);

/// Why a namespace is missing from a snapshot.
pub enum Lost {
    Enter(EnterError),
    Netlink(NetlinkError),
}

/// Read the namespace the calling thread is in: its counters (and, for a full read, its
/// sysctls and addresses), then its sockets. The counters are read just before the sockets,
/// and [`dump`] dumps the listeners first: a listener's drop counter and ListenDrops are then
/// read within moments. A read that is not full is settled by `settle` once the counters are
/// in; `others_scanned`: whether other namespaces are dumped in this pass too;
/// `conntrack_ports`: whether a full read also tallies where the connection tracking
/// table's entries go (after the sockets, to keep the counters and the listeners together);
/// `host`: the host's sysctls, read once for every namespace a pass reads; `index`: where the
/// dump indexes its sockets (an earlier dump's, handed back, or an empty one, sized here).
pub fn read_namespace(
    read: NsRead,
    settle: impl FnOnce(NsRead, &NetTables) -> NsRead,
    others_scanned: bool,
    conntrack_ports: bool,
    index: SlotIndex,
    host: &HostSysctls,
) -> Result<NsDump, NetlinkError> {
    let (dumped, cpu) = clock::thread_cpu_of(|| {
        let (tables, read) = if read.is_full() {
            (procnet::read_net_tables(host), read)
        } else {
            let tables = procnet::read_counters();
            let read = settle(read, &tables);
            (tables, read)
        };
        // `sockstat`'s `inuse` counts IPv4 sockets only; `CurrEstab` adds the connected ones
        // of both families. A rough upper bound is all the hint needs to be.
        let established = tables.tcp.get("CurrEstab").copied().unwrap_or(0);
        let hint = tables.sockstat.map(|s| s.inuse + s.tw + established);
        let usable = tables.sysctl.usable_ports();
        let index = index.reuse(hint.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)));
        dump(
            read,
            hint,
            index,
            TcpHeld::of(read, &tables),
            !tables.holds_no_udp(),
            &tables.local_addrs,
            usable,
            others_scanned,
        )
        .map(|sockets| (read, sockets, tables))
        .map(|(read, sockets, mut tables)| {
            if conntrack_ports && read.is_full() && tables.conntrack.is_some() {
                match procnet::read_conntrack_ports() {
                    Ok(ports) => tables.conntrack_ports = ports,
                    Err(problem) => tables.problems.push(problem),
                }
            }
            (read, sockets, tables)
        })
    });
    let (read, sockets, tables) = dumped?;
    let cross = others_scanned && read.is_full();
    Ok(NsDump {
        read,
        sockets,
        tracks_connections: cross && tables.tracks_connections(),
        tables,
        cpu,
    })
}

/// Which TCP sockets a namespace's counters say it may hold, and so which the dump asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpHeld {
    /// None at all: the namespace is not dumped for TCP (its dump would walk the kernel's
    /// table, shared by every namespace, to find nothing).
    Nothing,
    /// Listening, connected, closing or in TIME_WAIT, none bound but inactive.
    Hashed,
    /// Any, bound-inactive sockets included (asking for them walks the kernel's bind table).
    Any,
}

impl TcpHeld {
    /// What `tables` say of the namespace, for a read of depth `read`: only a full read
    /// asks for bound-inactive sockets, and only where the counts leave room for one (see
    /// [`NetTables::bound_inactive_possible`]).
    fn of(read: NsRead, tables: &NetTables) -> TcpHeld {
        let bound_inactive = read.is_full() && tables.bound_inactive_possible();
        match (tables.holds_no_tcp(), bound_inactive) {
            (_, true) => TcpHeld::Any,
            (true, false) => TcpHeld::Nothing,
            (false, false) => TcpHeld::Hashed,
        }
    }
}

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
/// A full dump asks for every TCP state that `tcp` says the namespace may hold (none at all:
/// no TCP request; bound-inactive sockets only when it may hold one: asking makes the kernel
/// walk its bind table, shared by all namespaces, see [`TcpHeld`]), with the costly extensions only
/// where they are read: LISTEN with `SKMEMINFO` (drops), CLOSE_WAIT with `INFO`
/// (`tcpi_last_ack_recv`), every other state bare (in a small namespace, with `INFO` too, in
/// the same walk). A fresh dump keeps the first two, with SYN_RECV beside CLOSE_WAIT (request
/// sockets carry no `tcp_info`, so asking costs nothing).
///
/// A full dump also looks for ESTABLISHED sockets whose other end is gone (see
/// [`PeerCheck`]), with `local_addrs` the namespace's own addresses; when `others_scanned`,
/// it keeps the candidates from peers that are not local in
/// [`Sockets::foreign_candidates`], for a look into the other namespaces once all are
/// dumped; and it reads the `tcp_info` of the quiet connections accepted from a peer that is
/// not local, keepalive off, to keep those whose peer sent nothing (see `read_silent`).
///
/// Every read also dumps the UDP sockets, unless `udp` is false (the namespace holds no
/// bound UDP socket): they live in a table of their own, so the walk
/// costs what the UDP sockets cost, not the TCP ones (`bench/report-vs-ss --udp` and
/// `bench/refresh-cost --udp` measure it); and their drop counters must be fresh for a
/// rate. A full dump given the `usable` ephemeral ports counts the ports in use by
/// destination as it goes. The sockets are indexed in `index`.
#[allow(clippy::too_many_arguments)] // what one namespace's read tells its dump, each once
pub fn dump(
    read: NsRead,
    sockets_hint: Option<u64>,
    index: SlotIndex,
    tcp: TcpHeld,
    udp: bool,
    local_addrs: &[IpAddr],
    usable: Option<UsablePorts>,
    others_scanned: bool,
) -> Result<Sockets, NetlinkError> {
    let mut diag = DiagSocket::new()?;
    let mut out = Sockets::new(
        index,
        read.is_full().then(|| {
            PeerCheck::new(local_addrs, others_scanned)
                .with_ephemeral(usable.clone())
                .with_room(sockets_hint)
        }),
        usable.filter(|_| read.is_full()).map(PortTally::new),
    );
    if read.is_full() {
        out.count_time_wait();
    }
    let drops = Extensions {
        skmeminfo: true,
        ..Extensions::default()
    };
    let info = Extensions {
        tcp_info: true,
        ..Extensions::default()
    };
    // A namespace that holds no TCP socket is not walked for them (see [`TcpHeld`]).
    let all = match tcp {
        TcpHeld::Nothing => None,
        TcpHeld::Hashed => Some(StateMask::ALL.without(&[TcpState::BoundInactive])),
        TcpHeld::Any => Some(StateMask::ALL),
    };
    if let Some(all) = all {
        let listen = StateMask::only(&[TcpState::Listen]);
        diag.dump_tcp(listen, drops, |s| out.add_tcp(s))?;
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
    }
    let unix = if read.is_full() {
        UnixStates::All
    } else {
        UnixStates::Listening
    };
    diag.dump_unix(unix, |s| out.add_unix(s))?;
    out.settle_peer_check();
    out.read_silent(&mut diag, info)?;
    out.read_peer_gone_idle(&mut diag, info)?;
    // Likewise the UDP table, shared too, for a namespace that holds no bound UDP socket.
    let udp = if udp {
        diag.dump_udp(|s| out.add_udp(&s))
    } else {
        Ok(())
    };
    match udp {
        Ok(()) => {}
        // A kernel without `udp_diag` refuses the request: the rest of the pass stands.
        Err(err) if err.kernel_errno().is_some() => out.udp_refused = Some(err),
        Err(err) => return Err(err),
    }
    out.finish_time_wait();
    out.index.finish();
    Ok(out)
}

impl Sockets {
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

    /// Read the `tcp_info` of the silent-peer candidates the bare walk kept (quiet
    /// connections accepted from a peer that is not local, keepalive off) and keep those that
    /// received nothing since the handshake. One exact lookup each while they are few against
    /// the sockets of the dump, else one walk of the ESTABLISHED sockets with `tcp_info`:
    /// either way, only a namespace holding such connections pays.
    fn read_silent(&mut self, diag: &mut DiagSocket, info: Extensions) -> Result<(), NetlinkError> {
        let candidates = std::mem::take(&mut self.silent_candidates);
        if candidates.is_empty() {
            return Ok(());
        }
        let mut answers: Vec<Option<TcpInfo>> = vec![None; candidates.len()];
        let sockets = self.tcp_states.total();
        if (candidates.len() as u64).saturating_mul(SOCKETS_A_LOOKUP_COSTS) > sockets {
            let at: InodeMap<usize> = candidates
                .iter()
                .enumerate()
                .map(|(i, g)| (g.socket.inode, i))
                .collect();
            let established = StateMask::only(&[TcpState::Established]);
            diag.dump_tcp(established, info, |s| {
                if let Some(&i) = at.get(&s.inode) {
                    answers[i] = s.tcp_info;
                }
            })?;
        } else {
            for (g, answer) in candidates.iter().zip(&mut answers) {
                *answer = look_up(diag, g.socket.local, g.socket.peer, info)?
                    .filter(|found| found.inode == g.socket.inode)
                    .and_then(|found| found.tcp_info);
            }
        }
        for (mut g, answer) in candidates.into_iter().zip(answers) {
            let Some(tcp_info) = answer else {
                // Gone since the walk, or no `tcp_info`: nothing to judge.
                continue;
            };
            match tcp_info.bytes_received {
                Some(0) => {
                    g.idle_ms = tcp_info.last_data_recv;
                    self.add_silent(g);
                }
                Some(_) => {}
                None => self.silent_unchecked += 1,
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
}
