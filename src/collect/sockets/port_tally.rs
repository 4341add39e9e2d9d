//! The ports in use by destination ([`PortTally`]), counted as a full dump streams by: what
//! `ephemeral-port-exhaustion` is judged from.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, SocketAddr};

use crate::collect::netlink::InetSock;
use crate::collect::vocab::InodeHasher;
use crate::model::{PORT_USE_LIMIT, PortUse, StateCounts, TcpState, UsablePorts};

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
pub(super) struct PortTally {
    usable: UsablePorts,
    listening: PortSet,
    by_destination: HashMap<(IpAddr, SocketAddr), PortCount, BuildHasherDefault<InodeHasher>>,
    untracked: u64,
}

/// A set of ports: one bit each, 8 KiB, asked once or twice for every socket of a dump.
#[derive(Clone)]
pub(super) struct PortSet(Box<[u64; 1024]>);

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
    pub(super) fn insert(&mut self, port: u16) {
        self.0[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    pub(super) fn contains(&self, port: u16) -> bool {
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

impl PortTally {
    /// A tally of the ports of the `usable` ephemeral range.
    pub(super) fn new(usable: UsablePorts) -> PortTally {
        PortTally {
            usable,
            listening: PortSet::default(),
            by_destination: HashMap::default(),
            untracked: 0,
        }
    }

    /// Count `s` if it holds a port `connect()` could have picked: any state but LISTEN and
    /// SYN_RECV (whose local port is the listener's), with a peer, and a local port in the
    /// usable range.
    pub(super) fn add(&mut self, s: &InetSock) {
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

    /// The busiest destinations, and how many sockets went uncounted past the limit of
    /// destinations.
    pub(super) fn finish(self) -> (PortUseSampled, u64) {
        let untracked = self.untracked;
        (self.top(), untracked)
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
    use super::super::test_support::sock;
    use super::*;
    use crate::model::Sysctls;

    fn tally() -> PortTally {
        let sysctl = Sysctls {
            ip_local_port_range: Some((40_000, 40_099)),
            ip_local_reserved_ports: vec![(40_050, 40_050)],
            ..Sysctls::default()
        };
        PortTally::new(sysctl.usable_ports().expect("a range"))
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
}
