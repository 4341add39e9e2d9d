//! The TIME_WAIT sockets by the address they point to ([`TimeWaitTally`]), counted as a full
//! dump streams by: what `time-wait-overflow` names as the busiest destinations.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;

use super::port_tally::PortSet;
use crate::collect::netlink::InetSock;
use crate::collect::vocab::InodeHasher;
use crate::model::{TIME_WAIT_TOP, TcpState, TimeWaitGroup};

/// At most this many addresses are counted; TIME_WAIT sockets to others are not. A host with
/// too many TIME_WAIT sockets has them towards a few servers, met early in the dump.
const TIME_WAIT_TALLY_LIMIT: usize = 4_096;

/// TIME_WAIT sockets counted by server address: the remote one for a connection this
/// namespace opened, its own listener's for one it accepted (the local port is a listening
/// port; listeners come first in every dump). One small entry per address, never one per
/// socket.
#[derive(Debug, Default)]
pub(super) struct TimeWaitTally {
    listening: PortSet,
    by_address: HashMap<(SocketAddr, bool), u64, BuildHasherDefault<InodeHasher>>,
}

impl TimeWaitTally {
    pub(super) fn add(&mut self, s: &InetSock) {
        match s.state {
            TcpState::Listen => self.listening.insert(s.local.port()),
            TcpState::TimeWait => {
                let incoming = self.listening.contains(s.local.port());
                let key = (if incoming { s.local } else { s.peer }, incoming);
                if let Some(n) = self.by_address.get_mut(&key) {
                    *n += 1;
                } else if self.by_address.len() < TIME_WAIT_TALLY_LIMIT {
                    self.by_address.insert(key, 1);
                }
            }
            _ => {}
        }
    }

    /// The [`TIME_WAIT_TOP`] addresses with the most TIME_WAIT sockets.
    pub(super) fn top(self) -> Vec<TimeWaitGroup> {
        let mut all: Vec<TimeWaitGroup> = self
            .by_address
            .into_iter()
            .map(|((address, incoming), sockets)| TimeWaitGroup {
                address,
                incoming,
                sockets,
            })
            .collect();
        all.sort_unstable_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then_with(|| (a.address, a.incoming).cmp(&(b.address, b.incoming)))
        });
        all.truncate(TIME_WAIT_TOP);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::sockets::test_support::sock;

    #[test]
    fn time_wait_sockets_are_counted_by_their_server_address() {
        let mut tally = TimeWaitTally::default();
        tally.add(&sock(TcpState::Listen, "127.0.0.1:80", "0.0.0.0:0", 0));
        for port in 0..3 {
            let client = format!("127.0.0.1:{}", 40_000 + port);
            // Accepted by the listener on 80, closed first by this side.
            tally.add(&sock(TcpState::TimeWait, "127.0.0.1:80", &client, 0));
        }
        for port in 0..5 {
            let local = format!("127.0.0.1:{}", 50_000 + port);
            tally.add(&sock(TcpState::TimeWait, &local, "10.0.0.9:5432", 0));
        }
        tally.add(&sock(
            TcpState::Established,
            "127.0.0.1:50010",
            "10.0.0.9:5432",
            0,
        ));
        let top = tally.top();
        assert_eq!(
            top,
            vec![
                TimeWaitGroup {
                    address: "10.0.0.9:5432".parse().expect("an address"),
                    incoming: false,
                    sockets: 5,
                },
                TimeWaitGroup {
                    address: "127.0.0.1:80".parse().expect("an address"),
                    incoming: true,
                    sockets: 3,
                },
            ]
        );
    }

    #[test]
    fn only_the_busiest_are_kept() {
        let mut tally = TimeWaitTally::default();
        for server in 0..10u16 {
            for port in 0..=server {
                let local = format!("127.0.0.1:{}", 50_000 + port);
                let remote = format!("10.0.0.1:{}", 1000 + server);
                tally.add(&sock(TcpState::TimeWait, &local, &remote, 0));
            }
        }
        let top = tally.top();
        assert_eq!(top.len(), TIME_WAIT_TOP);
        assert_eq!(top[0].sockets, 10);
        assert_eq!(top[0].address.port(), 1009);
    }
}
