//! What `sockscope kill` selected and what became of each socket: owned data, built by
//! `collect::kill`, rendered by `present::kill`.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::{Family, TcpState};

/// Which of a process's TCP sockets to destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillFilter {
    pub pid: u32,
    /// Never LISTEN: the configuration refuses it, and the selection skips it regardless.
    pub states: Vec<TcpState>,
    /// The socket's local or peer port.
    pub port: Option<u16>,
    pub peer: Option<PeerFilter>,
}

/// `--peer ADDR[:PORT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerFilter {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl KillFilter {
    /// Whether a socket of the process, in `state` between `local` and `peer`, is selected.
    pub fn selects(&self, state: TcpState, local: SocketAddr, peer: SocketAddr) -> bool {
        if state == TcpState::Listen || !self.states.contains(&state) {
            return false;
        }
        if let Some(port) = self.port
            && local.port() != port
            && peer.port() != port
        {
            return false;
        }
        self.peer.is_none_or(|want| {
            // A dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d.
            peer.ip().to_canonical() == want.ip.to_canonical()
                && want.port.is_none_or(|p| p == peer.port())
        })
    }
}

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    pub comm: String,
}

/// The sockets a kill run selected: of one process, in the namespaces it looked in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub pid: u32,
    pub comm: String,
    pub namespaces: Vec<SelectedNetns>,
}

impl Selection {
    /// Every selected socket, namespace by namespace.
    pub fn sockets(&self) -> impl Iterator<Item = (&SelectedNetns, &Selected)> {
        self.namespaces
            .iter()
            .flat_map(|ns| ns.sockets.iter().map(move |s| (ns, s)))
    }

    pub fn len(&self) -> usize {
        self.namespaces.iter().map(|ns| ns.sockets.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The selected sockets of one network namespace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectedNetns {
    pub id: String,
    pub label: String,
    pub sockets: Vec<Selected>,
}

/// One selected socket, with everything that names it exactly to the kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selected {
    pub family: Family,
    pub state: TcpState,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub recv_q: u32,
    pub send_q: u32,
    pub inode: u64,
    /// The kernel's socket cookie: destroying by it never hits a newer socket that took the
    /// same 4-tuple.
    pub cookie: u64,
    pub ifindex: u32,
    /// CLOSE_WAIT: about the time since the peer's FIN (`tcpi_last_ack_recv`).
    pub age_s: Option<f64>,
    /// Other processes holding the same socket (a fork, a passed descriptor).
    pub also_held_by: Vec<Holder>,
}

/// What became of one socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "error", rename_all = "kebab-case")]
pub enum Outcome {
    Destroyed,
    /// Closed between selection and destruction, or its 4-tuple now names another socket.
    Gone,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_selects_by_state_port_and_peer_never_a_listener() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("an address");
        let mut filter = KillFilter {
            pid: 1,
            states: vec![TcpState::CloseWait, TcpState::Listen],
            port: None,
            peer: None,
        };
        let (local, peer) = (addr("127.0.0.1:5001"), addr("127.0.0.1:40000"));
        assert!(filter.selects(TcpState::CloseWait, local, peer));
        assert!(!filter.selects(TcpState::Listen, local, addr("0.0.0.0:0")));
        assert!(!filter.selects(TcpState::Established, local, peer));
        filter.port = Some(40000);
        assert!(
            filter.selects(TcpState::CloseWait, local, peer),
            "the peer's port"
        );
        filter.port = Some(5002);
        assert!(!filter.selects(TcpState::CloseWait, local, peer));
        filter.port = None;
        filter.peer = Some(PeerFilter {
            ip: "127.0.0.1".parse().expect("ip"),
            port: None,
        });
        let mapped = addr("[::ffff:127.0.0.1]:40000");
        assert!(filter.selects(TcpState::CloseWait, addr("[::]:5001"), mapped));
        filter.peer = Some(PeerFilter {
            ip: "127.0.0.1".parse().expect("ip"),
            port: Some(40001),
        });
        assert!(!filter.selects(TcpState::CloseWait, local, peer));
    }
}
