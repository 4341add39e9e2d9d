//! Listener views: queue against backlog, and the request sockets and unaccepted children
//! that belong to each listener.
//!
//! A SYN_RECV request socket or an unaccepted child carries no inode, so it is tied to its
//! listener by family, local port and address: an exact address match wins, else a wildcard
//! listener (`0.0.0.0`, `[::]`) on the same port. A dual-stack `[::]` listener sees IPv4
//! peers as `::ffff:a.b.c.d`, so its children are IPv6 sockets and match it by family.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::acceptors::{self, Acceptor};
use super::{pct, rate};
use crate::model::{Family, NetnsSnapshot, Snapshot, TcpSocket, TcpState, UnixSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Unix,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Unix => "unix",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerView {
    pub proto: Proto,
    /// `127.0.0.1:5000`, `[::]:443`, a unix path, `@name` for an abstract one.
    pub local: String,
    pub port: Option<u16>,
    pub inode: u64,
    pub accept_queue: u64,
    pub backlog: u64,
    /// The kernel admits `backlog + 1` connections: the queue is full past the backlog.
    pub full: bool,
    /// Queue as a percentage of the backlog (over 100 when full).
    pub fill_pct: f64,
    pub syn_recv: u64,
    /// Children that completed the handshake and wait in the queue.
    pub unaccepted_established: u64,
    /// Children whose client gave up (sent FIN) while they waited to be accepted.
    pub unaccepted_close_wait: u64,
    /// `SK_MEMINFO_DROPS`: SYNs and ACKs this listener dropped (TCP only).
    pub drops_total: Option<u64>,
    pub drops_per_s: Option<f64>,
    pub owners: Vec<Owner>,
    /// Who drains it and what each is doing: read only while something waits on it (see
    /// [`acceptors`](super::acceptors)); empty otherwise.
    pub acceptors: Vec<Acceptor>,
    /// Its place in its `SO_REUSEPORT` group, when other listeners share its address.
    pub member: Option<Member>,
}

/// A listener's place in an `SO_REUSEPORT` group: the TCP listeners of one namespace on the
/// same address and port, over which the kernel spreads new connections by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// 1 to `of`, in the order of the members' inodes (the order they were created in, as
    /// long as the group lives).
    pub index: usize,
    pub of: usize,
}

/// A process, as evidence names it: `{pid, comm}`. Read back by a face that lists evidence
/// as text, to write it `comm(pid)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
}

impl ListenerView {
    /// `tcp 127.0.0.1:5000 (nginx pid 812)`: how a person names this listener.
    pub fn subject(&self) -> String {
        let owners = match self.owners.as_slice() {
            [] => String::new(),
            [o] => format!(" ({} pid {})", o.comm, o.pid),
            [o, rest @ ..] => format!(" ({} pid {} and {} more)", o.comm, o.pid, rest.len()),
        };
        format!("{} {}{owners}", self.proto.name(), self.local)
    }
}

/// Every TCP and unix listener of `ns`, with drop rates against the same listener (by inode)
/// in `before`.
pub(super) fn views(
    ns: &NetnsSnapshot,
    before: Option<&NetnsSnapshot>,
    snapshot: &Snapshot,
    window_s: Option<f64>,
) -> Vec<ListenerView> {
    let children = children_by_listener(&ns.tcp_listeners, &ns.tracked);
    let drops_before: HashMap<u64, u32> = before
        .map(|b| {
            b.tcp_listeners
                .iter()
                .filter(|l| l.inode != 0)
                .filter_map(|l| Some((l.inode, l.drops?)))
                .collect()
        })
        .unwrap_or_default();
    let owners = |pids: &[u32]| -> Vec<Owner> {
        pids.iter()
            .map(|&pid| Owner {
                pid,
                comm: snapshot
                    .process(pid)
                    .map_or_else(|| "?".to_owned(), |p| p.comm.clone()),
            })
            .collect()
    };
    let cpu_before = acceptors::cpu_before(before);
    let acceptors_of = |inode: u64| -> Vec<Acceptor> {
        ns.holders
            .iter()
            .find(|h| h.inode == inode)
            .map(|h| acceptors::acceptors(h, &cpu_before, window_s, snapshot))
            .unwrap_or_default()
    };
    // The owners that drain the listener first: a subject names the process that should
    // accept (nginx's worker), not the first to hold it (its master).
    let serving_first = |view: &mut ListenerView| {
        let serves = |pid: u32| view.acceptors.iter().any(|a| a.pid == pid && a.serves());
        let mut owners = std::mem::take(&mut view.owners);
        owners.sort_by_key(|o| !serves(o.pid));
        view.owners = owners;
    };
    let tcp = ns.tcp_listeners.iter().zip(children).map(|(l, c)| {
        let drops_total = l.drops.map(u64::from);
        let earlier = drops_before.get(&l.inode).map(|&d| u64::from(d));
        let mut view = queue_view(Proto::Tcp, local_text(l.local), l.recv_q, l.send_q);
        view.port = Some(l.local.port());
        view.inode = l.inode;
        view.syn_recv = c.syn_recv;
        view.unaccepted_established = c.established;
        view.unaccepted_close_wait = c.close_wait;
        view.drops_total = drops_total;
        view.drops_per_s = rate(earlier, drops_total, window_s);
        view.owners = owners(&l.owners);
        view.acceptors = acceptors_of(l.inode);
        serving_first(&mut view);
        view
    });
    let unix = ns.unix_listeners.iter().map(|l: &UnixSocket| {
        let name = l
            .path
            .clone()
            .unwrap_or_else(|| format!("(unnamed, inode {})", l.inode));
        let mut view = queue_view(Proto::Unix, name, l.recv_q, l.send_q);
        view.inode = l.inode;
        view.owners = owners(&l.owners);
        view.acceptors = acceptors_of(l.inode);
        serving_first(&mut view);
        view
    });
    let mut all: Vec<ListenerView> = tcp.chain(unix).collect();
    all.sort_by(|a, b| {
        b.fill_pct
            .total_cmp(&a.fill_pct)
            .then_with(|| a.local.cmp(&b.local))
    });
    group_reuseport(&mut all);
    all
}

/// Number the members of each `SO_REUSEPORT` group (TCP listeners on one address and port)
/// and move them together, where the fullest of them stands.
fn group_reuseport(all: &mut [ListenerView]) {
    let mut groups: HashMap<String, Vec<u64>> = HashMap::new();
    for l in all.iter().filter(|l| l.proto == Proto::Tcp) {
        groups.entry(l.local.clone()).or_default().push(l.inode);
    }
    groups.retain(|_, inodes| inodes.len() > 1);
    if groups.is_empty() {
        return;
    }
    for inodes in groups.values_mut() {
        inodes.sort_unstable();
    }
    for l in all.iter_mut().filter(|l| l.proto == Proto::Tcp) {
        if let Some(inodes) = groups.get(&l.local) {
            l.member = inodes.iter().position(|&i| i == l.inode).map(|at| Member {
                index: at + 1,
                of: inodes.len(),
            });
        }
    }
    // Stable: each group at its fullest member's place, its members fullest first.
    let mut order: HashMap<String, usize> = HashMap::new();
    for (at, l) in all.iter().enumerate() {
        order.entry(group_key(l)).or_insert(at);
    }
    all.sort_by_key(|l| order[&group_key(l)]);
}

/// What a listener groups under: its address for a member, itself for any other.
fn group_key(l: &ListenerView) -> String {
    match l.member {
        Some(_) => format!("tcp {}", l.local),
        None => format!("{} {} {}", l.proto.name(), l.local, l.inode),
    }
}

fn queue_view(proto: Proto, local: String, queue: u32, backlog: u32) -> ListenerView {
    let (queue, backlog) = (u64::from(queue), u64::from(backlog));
    ListenerView {
        proto,
        local,
        port: None,
        inode: 0,
        accept_queue: queue,
        backlog,
        full: queue > backlog,
        // listen(fd, 0) still admits one connection; measure it against 1.
        fill_pct: pct(queue, backlog.max(1)),
        syn_recv: 0,
        unaccepted_established: 0,
        unaccepted_close_wait: 0,
        drops_total: None,
        drops_per_s: None,
        owners: Vec::new(),
        acceptors: Vec::new(),
        member: None,
    }
}

/// `127.0.0.1:5000` or `[::]:443`, as `ss` writes them.
pub fn local_text(addr: SocketAddr) -> String {
    addr.to_string()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Children {
    syn_recv: u64,
    established: u64,
    close_wait: u64,
}

/// Count the request sockets and unaccepted children of each listener, by position.
fn children_by_listener(listeners: &[TcpSocket], tracked: &[TcpSocket]) -> Vec<Children> {
    let mut out = vec![Children::default(); listeners.len()];
    for (s, i) in assign_children(listeners, tracked) {
        match s.state {
            TcpState::SynRecv => out[i].syn_recv += 1,
            TcpState::Established => out[i].established += 1,
            TcpState::CloseWait => out[i].close_wait += 1,
            _ => {}
        }
    }
    out
}

/// Each tracked socket without an inode (a request socket or an unaccepted child) with the
/// position of the listener it waits on; sockets no listener claims are left out.
pub(super) fn assign_children<'a>(
    listeners: &[TcpSocket],
    tracked: &'a [TcpSocket],
) -> Vec<(&'a TcpSocket, usize)> {
    let mut by_port: HashMap<(Family, u16), Vec<usize>> = HashMap::new();
    for (i, l) in listeners.iter().enumerate() {
        by_port
            .entry((l.family, l.local.port()))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for s in tracked.iter().filter(|s| s.inode == 0) {
        let Some(candidates) = by_port.get(&(s.family, s.local.port())) else {
            continue;
        };
        let exact = candidates
            .iter()
            .find(|&&i| listeners[i].local.ip() == s.local.ip());
        let wildcard = || {
            candidates
                .iter()
                .find(|&&i| listeners[i].local.ip().is_unspecified())
        };
        if let Some(&i) = exact.or_else(wildcard) {
            out.push((s, i));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(state: TcpState, local: &str, peer: &str, inode: u64) -> TcpSocket {
        let local: SocketAddr = local.parse().expect("addr");
        TcpSocket {
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
            last_ack_recv_ms: None,
            timer: None,
            owners: Vec::new(),
        }
    }

    #[test]
    fn exact_address_wins_over_wildcard_and_dual_stack_gets_mapped_peers() {
        let listeners = [
            sock(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", 1),
            sock(TcpState::Listen, "127.0.0.1:80", "0.0.0.0:0", 2),
            sock(TcpState::Listen, "[::]:443", "[::]:0", 3),
        ];
        let tracked = [
            sock(TcpState::SynRecv, "127.0.0.1:80", "127.0.0.1:40000", 0),
            sock(TcpState::SynRecv, "10.0.0.1:80", "10.0.0.2:40000", 0),
            sock(
                TcpState::CloseWait,
                "[::ffff:127.0.0.1]:443",
                "[::ffff:127.0.0.1]:4",
                0,
            ),
            sock(TcpState::Established, "[::1]:443", "[::1]:5", 0),
            // Owned by a process: an accepted connection, not a queued child.
            sock(TcpState::CloseWait, "127.0.0.1:80", "127.0.0.1:40001", 99),
            // Nobody listens on this port.
            sock(TcpState::SynRecv, "127.0.0.1:81", "127.0.0.1:40002", 0),
        ];
        let c = children_by_listener(&listeners, &tracked);
        assert_eq!(
            c[0],
            Children {
                syn_recv: 1,
                ..Children::default()
            }
        );
        assert_eq!(
            c[1],
            Children {
                syn_recv: 1,
                ..Children::default()
            }
        );
        assert_eq!(
            c[2],
            Children {
                syn_recv: 0,
                established: 1,
                close_wait: 1
            }
        );
    }

    #[test]
    fn full_means_past_the_backlog() {
        let at = queue_view(Proto::Tcp, "x".into(), 8, 8);
        assert!(!at.full);
        assert!((at.fill_pct - 100.0).abs() < 1e-9);
        let past = queue_view(Proto::Tcp, "x".into(), 9, 8);
        assert!(past.full);
        assert!((past.fill_pct - 112.5).abs() < 1e-9);
        let zero = queue_view(Proto::Unix, "x".into(), 1, 0);
        assert!(zero.full);
    }
}
