//! Loopback CLOSE_WAIT collisions: leaked sockets that "mine" ephemeral ports.
//!
//! A CLOSE_WAIT socket whose peer is a local address and whose peer port lies in
//! `ip_local_port_range` (less `ip_local_reserved_ports`) still owns that 4-tuple. The client
//! side is long gone, so the client's kernel may pick the same port for a new `connect()` to
//! the same server: the SYN lands on the leaked socket and gets a challenge ACK, then RSTs
//! and retries. Each such port is counted once per (client address, server address:port).
//! Children still waiting in an accept queue (inode 0) are not leaks yet: the
//! `abandoned-in-accept-queue` rule speaks of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::model::{NetnsSnapshot, TcpState};

/// The mined ports of one client address towards one server address and port.
#[derive(Debug, Clone, PartialEq)]
pub struct MinedPorts {
    pub client: IpAddr,
    pub server: SocketAddr,
    pub ports: u64,
    /// Size of the usable ephemeral range (range less reserved ports).
    pub range_size: u64,
    /// Pids holding the leaked sockets.
    pub owners: BTreeSet<u32>,
}

impl MinedPorts {
    pub fn pct_of_range(&self) -> f64 {
        super::pct(self.ports, self.range_size.max(1))
    }
}

/// Every (client, server) pair with at least one mined port, most mined first.
pub fn mined_ports(ns: &NetnsSnapshot) -> Vec<MinedPorts> {
    let Some((lo, hi)) = ns.sysctl.ip_local_port_range else {
        return Vec::new();
    };
    let reserved = &ns.sysctl.ip_local_reserved_ports;
    let usable = |port: u16| {
        (lo..=hi).contains(&port) && !reserved.iter().any(|&(a, b)| (a..=b).contains(&port))
    };
    let mut groups: BTreeMap<(IpAddr, SocketAddr), (BTreeSet<u16>, BTreeSet<u32>)> =
        BTreeMap::new();
    for s in ns
        .tracked
        .iter()
        .filter(|s| s.state == TcpState::CloseWait && s.inode != 0)
    {
        let client = canonical(s.peer.ip());
        if !is_local(client, &ns.local_addrs) || !usable(s.peer.port()) {
            continue;
        }
        let server = SocketAddr::new(canonical(s.local.ip()), s.local.port());
        let (ports, owners) = groups.entry((client, server)).or_default();
        ports.insert(s.peer.port());
        owners.extend(&s.owners);
    }
    if groups.is_empty() {
        return Vec::new();
    }
    // Counted only now: most namespaces have no such socket, and a scan of many namespaces
    // would count ~28,000 ports for each.
    let range_size = (lo..=hi).filter(|&p| usable(p)).count() as u64;
    let mut out: Vec<MinedPorts> = groups
        .into_iter()
        .map(|((client, server), (ports, owners))| MinedPorts {
            client,
            server,
            ports: ports.len() as u64,
            range_size,
            owners,
        })
        .collect();
    out.sort_by(|a, b| b.ports.cmp(&a.ports).then_with(|| a.server.cmp(&b.server)));
    out
}

/// `::ffff:a.b.c.d` is the IPv4 address a dual-stack listener saw.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn is_local(ip: IpAddr, local_addrs: &[IpAddr]) -> bool {
    ip.is_loopback() || local_addrs.iter().any(|&a| canonical(a) == ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Sysctls, TcpSocket};

    fn close_wait(local: &str, peer: &str, owner: u32) -> TcpSocket {
        let local: SocketAddr = local.parse().expect("addr");
        TcpSocket {
            family: if local.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            },
            state: TcpState::CloseWait,
            local,
            peer: peer.parse().expect("addr"),
            recv_q: 1,
            send_q: 0,
            inode: 1,
            uid: 0,
            drops: None,
            last_ack_recv_ms: None,
            timer: None,
            owners: vec![owner],
        }
    }

    fn netns(tracked: Vec<TcpSocket>) -> NetnsSnapshot {
        NetnsSnapshot {
            id: "1".into(),
            label: "host".into(),
            container: None,
            sysctl: Sysctls {
                ip_local_port_range: Some((32768, 32867)),
                ip_local_reserved_ports: vec![(32800, 32809)],
                ..Sysctls::default()
            },
            tcp_ext: BTreeMap::new(),
            tcp: BTreeMap::new(),
            sockstat: None,
            tcp_states: crate::model::StateCounts::default(),
            tcp_listeners: Vec::new(),
            tracked,
            troubled_left_out: 0,
            tracked_dropped: false,
            unix_listeners: Vec::new(),
            unix_sockets: 0,
            local_addrs: vec!["10.1.2.3".parse().expect("addr")],
            peer_gone: Vec::new(),
            peer_gone_left_out: 0,
            peer_unchecked: 0,
            silent_unchecked: 0,
            udp: crate::model::UdpCounters::default(),
            udp_sockets: Vec::new(),
            udp_socket_count: 0,
            udp_left_out: 0,
            holders: Vec::new(),
            port_use: Vec::new(),
            ..NetnsSnapshot::default()
        }
    }

    #[test]
    fn counts_local_peers_in_the_usable_range_once_per_pair() {
        let ns = netns(vec![
            close_wait("127.0.0.1:5001", "127.0.0.1:32768", 7),
            close_wait("127.0.0.1:5001", "127.0.0.1:32769", 7),
            // A second socket on the same 4-tuple's port (e.g. after fork) counts once.
            close_wait("127.0.0.1:5001", "127.0.0.1:32769", 8),
            // Reserved, outside the range, or a remote peer: not mined.
            close_wait("127.0.0.1:5001", "127.0.0.1:32805", 7),
            close_wait("127.0.0.1:5001", "127.0.0.1:40000", 7),
            close_wait("127.0.0.1:5001", "192.0.2.9:32770", 7),
            // A host address counts; a dual-stack listener's mapped peer is IPv4.
            close_wait("10.1.2.3:80", "10.1.2.3:32770", 9),
            close_wait("[::ffff:127.0.0.1]:5001", "[::ffff:127.0.0.1]:32771", 7),
            // Still in an accept queue: abandoned, not leaked.
            TcpSocket {
                inode: 0,
                owners: Vec::new(),
                ..close_wait("127.0.0.1:5001", "127.0.0.1:32772", 0)
            },
        ]);
        let mined = mined_ports(&ns);
        assert_eq!(mined.len(), 2);
        let lo = &mined[0];
        assert_eq!(
            lo.server,
            "127.0.0.1:5001".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(lo.ports, 3);
        assert_eq!(lo.range_size, 90);
        assert_eq!(lo.owners.iter().copied().collect::<Vec<_>>(), vec![7, 8]);
        assert!((lo.pct_of_range() - 3.333).abs() < 0.01);
        assert_eq!(mined[1].client, "10.1.2.3".parse::<IpAddr>().expect("addr"));
    }

    #[test]
    fn no_range_no_collision() {
        let mut ns = netns(vec![close_wait("127.0.0.1:5001", "127.0.0.1:32768", 7)]);
        ns.sysctl.ip_local_port_range = None;
        assert!(mined_ports(&ns).is_empty());
    }
}
