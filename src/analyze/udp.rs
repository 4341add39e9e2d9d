//! UDP and ephemeral-port views: each kept UDP socket with its drops over the window, the
//! namespace's `Udp`/`Udp6` counters, and the ports in use towards each busy destination
//! against the usable ephemeral range.
//!
//! A UDP socket is followed across the window by its inode (a socket recreated on the same
//! port is another socket, whose counter starts again at 0).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::listeners::{ListenerView, Owner, Proto};
use super::{CounterView, pct, rate};
use crate::model::{NetnsSnapshot, Snapshot, StateCounts, UdpSocket};

/// The `Udp:` / `Udp6` counters reported with a total and a rate (both families summed).
pub const UDP_COUNTERS: [&str; 5] = [
    "InErrors",
    "RcvbufErrors",
    "NoPorts",
    "MemErrors",
    "InCsumErrors",
];

/// One UDP socket kept in full, measured over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct UdpSocketView {
    /// `127.0.0.1:7003`, `[::]:53`.
    pub local: String,
    pub port: u16,
    /// The connected peer, if any.
    pub peer: Option<SocketAddr>,
    pub inode: u64,
    pub recv_q: u64,
    pub rcvbuf: Option<u64>,
    pub rmem_alloc: Option<u64>,
    /// `SK_MEMINFO_DROPS`: datagrams this socket dropped since it was created.
    pub drops_total: Option<u64>,
    /// Drops in the window: `None` with one sample or a socket not seen at its start.
    pub drops_in_window: Option<u64>,
    pub drops_per_s: Option<f64>,
    pub owners: Vec<Owner>,
}

impl UdpSocketView {
    /// Whether its drop counter rose in the window.
    pub fn dropped_in_window(&self) -> bool {
        self.drops_in_window.is_some_and(|n| n > 0)
    }

    /// This socket as a row of a listener table, where the dashboard shows it: Recv-Q
    /// against the receive buffer as a queue against its backlog, the buffer's fill as the
    /// queue's, its drops as a listener's; full when it dropped in the window.
    pub fn as_queue(&self) -> ListenerView {
        ListenerView {
            proto: Proto::Udp,
            local: self.local.clone(),
            port: Some(self.port),
            inode: self.inode,
            accept_queue: self.recv_q,
            backlog: self.rcvbuf.unwrap_or(0),
            full: self.dropped_in_window(),
            fill_pct: self.buffer_fill_pct().unwrap_or(0.0),
            syn_recv: 0,
            unaccepted_established: 0,
            unaccepted_close_wait: 0,
            drops_total: self.drops_total,
            drops_per_s: self.drops_per_s,
            owners: self.owners.clone(),
            acceptors: Vec::new(),
            member: None,
        }
    }

    /// `udp 127.0.0.1:7003 (udpsink pid 812)`: how a person names this socket.
    pub fn subject(&self) -> String {
        let owners = match self.owners.as_slice() {
            [] => String::new(),
            [o] => format!(" ({} pid {})", o.comm, o.pid),
            [o, rest @ ..] => format!(" ({} pid {} and {} more)", o.comm, o.pid, rest.len()),
        };
        format!("udp {}{owners}", self.local)
    }

    /// Receive memory in use as a percentage of the buffer.
    pub fn buffer_fill_pct(&self) -> Option<f64> {
        let buf = self.rcvbuf.filter(|&b| b > 0)?;
        Some(pct(self.rmem_alloc?, buf))
    }
}

/// A namespace's UDP side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UdpView {
    /// Kept sockets, those dropping now first, then by drops, then by address.
    pub sockets: Vec<UdpSocketView>,
    /// Every UDP socket of the namespace.
    pub socket_count: u64,
    /// Sockets that would have been kept but for the limit.
    pub left_out: u64,
    /// [`UDP_COUNTERS`], both families summed.
    pub counters: Vec<CounterView>,
}

impl UdpView {
    pub fn counter(&self, name: &str) -> Option<&CounterView> {
        self.counters.iter().find(|c| c.name == name)
    }
}

pub(super) fn udp_view(
    ns: &NetnsSnapshot,
    before: Option<&NetnsSnapshot>,
    snapshot: &Snapshot,
    window_s: Option<f64>,
) -> UdpView {
    let drops_before: HashMap<u64, u32> = before
        .filter(|_| window_s.is_some())
        .map(|b| {
            b.udp_sockets
                .iter()
                .filter(|s| s.inode != 0)
                .filter_map(|s| Some((s.inode, s.drops?)))
                .collect()
        })
        .unwrap_or_default();
    let mut sockets: Vec<UdpSocketView> = ns
        .udp_sockets
        .iter()
        .map(|s| socket_view(s, drops_before.get(&s.inode).copied(), snapshot, window_s))
        .collect();
    sockets.sort_by(|a, b| {
        b.dropped_in_window()
            .cmp(&a.dropped_in_window())
            .then_with(|| b.drops_in_window.cmp(&a.drops_in_window))
            .then_with(|| b.drops_total.cmp(&a.drops_total))
            .then_with(|| a.local.cmp(&b.local))
    });
    let counters = UDP_COUNTERS
        .iter()
        .map(|&name| {
            let total = ns.udp.get(name);
            let earlier = before.and_then(|b| b.udp.get(name));
            CounterView {
                name,
                total,
                rate_per_s: rate(earlier, total, window_s),
            }
        })
        .collect();
    UdpView {
        sockets,
        socket_count: ns.udp_socket_count,
        left_out: ns.udp_left_out,
        counters,
    }
}

fn socket_view(
    s: &UdpSocket,
    drops_before: Option<u32>,
    snapshot: &Snapshot,
    window_s: Option<f64>,
) -> UdpSocketView {
    let drops_total = s.drops.map(u64::from);
    let earlier = drops_before.map(u64::from);
    let drops_in_window = earlier.zip(drops_total).and_then(|(a, b)| b.checked_sub(a));
    let drops_per_s = rate(earlier, drops_total, window_s);
    UdpSocketView {
        local: s.local.to_string(),
        port: s.local.port(),
        peer: s.peer,
        inode: s.inode,
        recv_q: u64::from(s.recv_q),
        rcvbuf: s.rcvbuf.map(u64::from),
        rmem_alloc: s.rmem_alloc.map(u64::from),
        drops_total,
        drops_in_window,
        drops_per_s,
        owners: owners(&s.owners, snapshot),
    }
}

fn owners(pids: &[u32], snapshot: &Snapshot) -> Vec<Owner> {
    pids.iter()
        .map(|&pid| Owner {
            pid,
            comm: snapshot
                .process(pid)
                .map_or_else(|| "?".to_owned(), |p| p.comm.clone()),
        })
        .collect()
}

/// Ports in use from one local address to one destination, against the usable range.
#[derive(Debug, Clone, PartialEq)]
pub struct PortUseView {
    pub local: IpAddr,
    pub remote: SocketAddr,
    pub states: StateCounts,
    pub ports: u64,
    /// Size of the usable ephemeral range (range less reserved ports).
    pub range_size: u64,
    pub pct_of_range: f64,
    pub owners: Vec<Owner>,
}

/// The busiest destinations of `ns`, most ports first.
pub(super) fn port_use_views(ns: &NetnsSnapshot, snapshot: &Snapshot) -> Vec<PortUseView> {
    if ns.port_use.is_empty() {
        return Vec::new();
    }
    let range_size = ns.sysctl.usable_ports().map_or(0, |u| u.size());
    let mut views: Vec<PortUseView> = ns
        .port_use
        .iter()
        .map(|u| {
            let ports = u.ports();
            let pct_of_range = if range_size > 0 {
                pct(ports, range_size)
            } else {
                0.0
            };
            PortUseView {
                local: u.local,
                remote: u.remote,
                states: u.states.clone(),
                ports,
                range_size,
                pct_of_range,
                owners: owners(&u.owners, snapshot),
            }
        })
        .collect();
    views.sort_by(|a, b| {
        b.ports
            .cmp(&a.ports)
            .then_with(|| a.remote.cmp(&b.remote))
            .then_with(|| a.local.cmp(&b.local))
    });
    views
}
