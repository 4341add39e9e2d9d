//! The evidence of each finding: one type per shape, serialised by serde to the `evidence`
//! object of the JSON report, and read by the faces field by field.
//!
//! Which finding carries which type is the finding table's business (`finding.rs`): each row
//! names an id and its evidence type here. The report's schema (`assets/`) describes each
//! id's evidence under `$defs/evidence`; a test below checks that every type writes exactly
//! the keys the schema lists for its id, so the two cannot drift apart.
//!
//! Field names are the JSON keys (a contract: added, never renamed without a new schema
//! version). An `Option` is written as `null`, never left out, so every key is always there.
//! Rates and percentages are rounded by the rule that fills them, where it says so.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::acceptors::Acceptor;
use super::connections::Holder;
use super::listeners::{Owner, Proto};
use crate::model::{ConntrackPorts, TimeWaitGroup};

/// `accept-queue-full`, `accept-queue-high`: a listener's queue against its backlog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptQueue {
    pub proto: Proto,
    pub local: String,
    pub accept_queue: u64,
    pub backlog: u64,
    /// % of the backlog, one decimal.
    pub fill_pct: f64,
    pub full: bool,
    pub drops_total: Option<u64>,
    pub drops_per_s: Option<f64>,
    pub owners: Vec<Owner>,
    pub somaxconn: Option<u64>,
    pub tcp_abort_on_overflow: Option<u64>,
    pub tcp_syncookies: Option<u64>,
    /// Who drains the listener and what each is doing (empty when not read).
    pub acceptors: Vec<Acceptor>,
}

/// `listen-drops`: the namespace's counters and the listeners whose own drops rose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenDrops {
    #[serde(rename = "ListenOverflows_per_s")]
    pub listen_overflows_per_s: Option<f64>,
    #[serde(rename = "ListenDrops_per_s")]
    pub listen_drops_per_s: Option<f64>,
    #[serde(rename = "ListenOverflows_total")]
    pub listen_overflows_total: Option<u64>,
    #[serde(rename = "ListenDrops_total")]
    pub listen_drops_total: Option<u64>,
    pub listeners: Vec<DroppingListener>,
}

/// One listener of a `listen-drops` finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppingListener {
    pub local: String,
    pub drops_per_s: Option<f64>,
    pub drops_total: Option<u64>,
    pub owners: Vec<Owner>,
}

/// `syn-queue-pressure`: about one listener, or about the namespace's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SynQueuePressure {
    Listener(SynQueueListener),
    Counters(SynQueueCounters),
}

/// A listener's SYN_RECV request sockets against its backlog + 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynQueueListener {
    pub local: String,
    pub syn_recv: u64,
    pub backlog: u64,
    /// % of backlog + 1, one decimal.
    pub fill_pct: f64,
    pub tcp_syncookies: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    pub acceptors: Vec<Acceptor>,
}

/// The namespace's SYN-queue overflow counters, per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynQueueCounters {
    #[serde(rename = "TCPReqQFullDrop_per_s")]
    pub req_q_full_drop_per_s: Option<f64>,
    #[serde(rename = "TCPReqQFullDoCookies_per_s")]
    pub req_q_full_do_cookies_per_s: Option<f64>,
    pub tcp_syncookies: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
}

/// `abandoned-in-accept-queue`: children whose client gave up before accept().
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Abandoned {
    pub local: String,
    pub unaccepted_close_wait: u64,
    pub unaccepted_established: u64,
    pub accept_queue: u64,
    pub backlog: u64,
    pub acceptors: Vec<Acceptor>,
}

/// `close-wait-leak`: one process's CLOSE_WAIT sockets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloseWaitLeak {
    pub pid: u32,
    pub comm: String,
    pub close_wait: u64,
    pub close_wait_unread: u64,
    pub close_wait_read_eof: u64,
    pub close_wait_oldest_s: Option<f64>,
    pub close_wait_growth_per_min: Option<f64>,
    pub fds: Option<u64>,
    /// Soft `RLIMIT_NOFILE`.
    pub fd_limit: Option<u64>,
}

/// `ephemeral-port-collision`: ports one client address has mined towards one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortCollision {
    pub client: IpAddr,
    pub server: SocketAddr,
    pub mined_ports: u64,
    pub range_size: u64,
    /// % of the usable range, one decimal.
    pub pct_of_range: f64,
    pub ip_local_port_range: (u16, u16),
    pub owners: Vec<Owner>,
    pub challenge_acks_per_s: Option<f64>,
}

/// `fd-exhaustion`: a process's descriptors against its limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FdExhaustion {
    pub pid: u32,
    pub comm: String,
    pub fds: u64,
    /// Soft `RLIMIT_NOFILE`.
    pub fd_limit: u64,
    pub fd_limit_hard: Option<u64>,
    /// One decimal.
    pub fd_use_pct: f64,
    pub close_wait: u64,
}

/// `orphan-pressure`: orphaned sockets against `tcp_max_orphans`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanPressure {
    /// From /proc/net/sockstat; `null` when unreadable (FIN_WAIT2 then stands in).
    pub orphans: Option<u64>,
    pub fin_wait2: u64,
    pub tcp_max_orphans: u64,
    /// % of tcp_max_orphans, one decimal.
    pub pct: f64,
    pub tcp_fin_timeout: Option<u64>,
    /// `TCPAbortOnMemory` per second: connections the kernel reset for too many orphans (or
    /// for TCP memory), one decimal.
    #[serde(rename = "TCPAbortOnMemory_per_s")]
    pub abort_on_memory_per_s: Option<f64>,
}

/// `half-open-handshakes`: a listener's request sockets whose SYN-ACK was retransmitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HalfOpenHandshakes {
    pub local: String,
    pub requests_retransmitted: u64,
    pub max_synack_retransmissions: u8,
    pub accept_queue: u64,
    pub backlog: u64,
    pub full: bool,
    pub listen_overflows_per_s: Option<f64>,
    pub visible_clients: u64,
    pub client_bytes_unacknowledged: u64,
    pub client_processes: Vec<Holder>,
    pub tcp_synack_retries: Option<u64>,
    pub tcp_abort_on_overflow: Option<u64>,
}

/// `connect-stall`: a process's unanswered connect()s to one destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectStall {
    pub remote: SocketAddr,
    pub local_address: IpAddr,
    pub sockets: u64,
    pub max_syn_retransmissions: u8,
    pub next_retry_ms: Option<u32>,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// The scanned listener the destination is, when it is one.
    pub listener: Option<String>,
    pub listener_full: Option<bool>,
    pub tcp_syn_retries: Option<u64>,
}

/// `receive-queue-stall`: a process's connections whose unread data does not drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiveQueueStall {
    pub pid: u32,
    pub comm: String,
    pub sockets: u64,
    pub unread_bytes: u64,
    pub largest_unread: u32,
    pub peers: Vec<SocketAddr>,
    pub judged_over_window: bool,
}

/// `send-queue-stall`: a process's connections to one destination that cannot send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendQueueStall {
    pub remote: SocketAddr,
    pub sockets: u64,
    pub unacknowledged_bytes: u64,
    pub zero_window: u64,
    pub retransmitting: u64,
    pub max_retransmissions: u8,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// The peer's end, when it is a socket of this namespace: its holders, …
    pub peer_processes: Option<Vec<Holder>>,
    /// … whether it holds unread data, …
    pub peer_not_reading: Option<bool>,
    /// … and whether it is a request socket still in SYN_RECV.
    pub peer_half_open: Option<bool>,
}

/// `peer-gone`: a process's ESTABLISHED sockets whose local peer no longer exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerGone {
    pub pid: u32,
    pub comm: String,
    pub sockets: u64,
    /// Of those, the sockets it accepted (its listener there or not) and those it made by
    /// `connect()`.
    pub accepted: u64,
    pub connected: u64,
    pub peers: Vec<SocketAddr>,
    pub locals: Vec<SocketAddr>,
    pub idle_ms: Option<u32>,
    pub keepalive: u64,
    /// The labels of the other scanned namespaces the peers were in.
    pub peer_netns: Vec<String>,
    pub tcp_keepalive_time: Option<u64>,
    pub tcp_keepalive_intvl: Option<u64>,
    pub tcp_keepalive_probes: Option<u64>,
}

/// `udp-receive-drops`: about one socket, or about the namespace's counter when no socket
/// kept says it dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UdpReceiveDrops {
    Socket(UdpSocketDrops),
    Namespace(UdpNamespaceDrops),
}

/// One UDP socket's drops in the window and its receive buffer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpSocketDrops {
    pub local: String,
    pub peer: Option<SocketAddr>,
    pub drops_total: Option<u64>,
    pub drops_in_window: Option<u64>,
    /// One decimal.
    pub drops_per_s: Option<f64>,
    pub recv_q: u64,
    pub rmem_alloc: Option<u64>,
    pub rcvbuf: Option<u64>,
    /// One decimal.
    pub buffer_fill_pct: Option<f64>,
    pub rmem_max: Option<u64>,
    pub rmem_default: Option<u64>,
    pub owners: Vec<Owner>,
}

/// The namespace's RcvbufErrors, when no socket kept in full dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpNamespaceDrops {
    pub rcvbuf_errors_total: Option<u64>,
    /// One decimal.
    pub rcvbuf_errors_per_s: f64,
    pub udp_sockets: u64,
    pub left_out: u64,
    pub rmem_default: Option<u64>,
    pub rmem_max: Option<u64>,
}

/// `ephemeral-port-exhaustion`: ports in use from one address to one destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortExhaustion {
    pub local: IpAddr,
    pub remote: SocketAddr,
    pub ports_in_use: u64,
    pub range_size: u64,
    /// % of the usable range, one decimal.
    pub pct_of_range: f64,
    /// Ports by TCP state (`ESTABLISHED`, `TIME_WAIT`, …).
    pub states: BTreeMap<String, u64>,
    pub ip_local_port_range: (u16, u16),
    pub ip_local_reserved_ports: Vec<(u16, u16)>,
    pub tcp_tw_reuse: Option<u64>,
    pub owners: Vec<Owner>,
}

/// `reuseport-imbalance`: one member of an `SO_REUSEPORT` group full or dropping while
/// another has room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReuseportImbalance {
    pub local: String,
    /// The starved member's number, 1 to `members_total`.
    pub member: usize,
    pub members_total: usize,
    /// The share of new connections the kernel sends it, %, one decimal.
    pub share_pct: f64,
    pub accept_queue: u64,
    pub backlog: u64,
    pub drops_per_s: Option<f64>,
    pub members: Vec<ReuseportMember>,
    /// Who drains the starved member and what each is doing.
    pub acceptors: Vec<Acceptor>,
}

/// One member of an `SO_REUSEPORT` group, as `reuseport-imbalance` lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReuseportMember {
    pub member: usize,
    pub inode: u64,
    pub accept_queue: u64,
    pub backlog: u64,
    /// One decimal.
    pub fill_pct: f64,
    pub full: bool,
    pub drops_per_s: Option<f64>,
}

/// `conntrack-full`: the connection tracking table against its limit, and its drops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConntrackFull {
    /// The namespace's entries (`nf_conntrack_count`).
    pub count: u64,
    /// `nf_conntrack_max`: the host's limit, which each namespace's count is held to.
    pub max: Option<u64>,
    /// `nf_conntrack_buckets`, the host's.
    pub buckets: Option<u64>,
    /// % of `max`, one decimal.
    pub fill_pct: Option<f64>,
    pub drop_total: u64,
    /// One decimal each.
    pub drop_per_s: Option<f64>,
    pub early_drop_per_s: Option<f64>,
    pub insert_failed_per_s: Option<f64>,
    /// The destination ports holding most entries; `null` unless asked for
    /// (`--conntrack-ports`).
    pub busiest_ports: Option<ConntrackPorts>,
}

/// `time-wait-overflow`: connections closed without TIME_WAIT past `tcp_max_tw_buckets`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeWaitOverflow {
    /// `TCPTimeWaitOverflow` per second, one decimal.
    pub overflow_per_s: f64,
    pub overflow_total: Option<u64>,
    /// TIME_WAIT sockets now.
    pub time_wait: u64,
    pub tcp_max_tw_buckets: Option<u64>,
    pub tcp_tw_reuse: Option<u64>,
    /// The addresses most TIME_WAIT sockets point to (the last full dump's).
    pub destinations: Vec<TimeWaitGroup>,
}

/// `tcp-memory-pressure`: TCP's memory against `tcp_mem`, and the kernel's aborts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpMemoryPressure {
    /// sockstat `mem`: pages charged to TCP, the host's.
    pub mem_pages: Option<u64>,
    /// `net.ipv4.tcp_mem`: min, pressure, max in pages; readable from the initial namespace
    /// only.
    pub tcp_mem: Option<[u64; 3]>,
    /// `mem_pages` as a % of the pressure threshold, one decimal.
    pub pressure_pct: Option<f64>,
    #[serde(rename = "TCPMemoryPressures_per_s")]
    pub memory_pressures_per_s: Option<f64>,
    #[serde(rename = "TCPAbortOnMemory_per_s")]
    pub abort_on_memory_per_s: Option<f64>,
    /// sockstat `orphan`.
    pub orphans: Option<u64>,
    pub tcp_max_orphans: Option<u64>,
}

/// `silent-peer`: a process's connections accepted from peers that sent nothing since the
/// handshake, keepalive off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilentPeer {
    pub pid: u32,
    pub comm: String,
    pub sockets: u64,
    /// The peers with the most such connections, most first.
    pub top_peers: Vec<PeerCount>,
    /// The local addresses they were accepted on.
    pub locals: Vec<SocketAddr>,
    /// The longest and the shortest time since the handshake (nothing received since), ms.
    pub longest_idle_ms: u32,
    pub shortest_idle_ms: u32,
    /// Sockets with `SO_KEEPALIVE` on: none, by what the finding is.
    pub keepalive: u64,
    pub silent_peer_after_ms: u64,
    pub tcp_keepalive_time: Option<u64>,
    pub tcp_keepalive_intvl: Option<u64>,
    pub tcp_keepalive_probes: Option<u64>,
}

/// A peer address and how many connections it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerCount {
    pub address: IpAddr,
    pub sockets: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::acceptors::{How, State};
    use super::super::{Evidence, FindingId};
    use super::*;

    /// The report's schema.
    fn schema() -> Value {
        serde_json::from_str(include_str!("../../assets/sockscope.report.v1.schema.json"))
            .expect("the schema is JSON")
    }

    fn owner() -> Owner {
        Owner {
            pid: 812,
            comm: "nginx".to_owned(),
        }
    }

    fn acceptor() -> Acceptor {
        Acceptor {
            pid: 813,
            comm: "nginx".to_owned(),
            tid: Some(813),
            thread: Some("nginx".to_owned()),
            how: How::Epoll,
            state: Some(State::Stopped),
            cpu_pct: None,
            waiting_in: Some("do_signal_stop".to_owned()),
            waiting_for_it: true,
            threads: 1,
            unknown: false,
        }
    }

    fn holder() -> Holder {
        Holder {
            pid: 812,
            comm: "nginx".to_owned(),
        }
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5000))
    }

    /// Every shape of `id`'s evidence, filled. The match has no catch-all arm: a new id does
    /// not compile until its evidence has a sample here, so the schema test below sees it.
    #[allow(clippy::too_many_lines)] // one literal per shape
    fn samples(id: FindingId) -> Vec<Evidence> {
        let accept_queue = || AcceptQueue {
            proto: Proto::Tcp,
            local: "127.0.0.1:5000".to_owned(),
            accept_queue: 9,
            backlog: 8,
            fill_pct: 112.5,
            full: true,
            drops_total: Some(3),
            drops_per_s: None,
            owners: vec![owner()],
            somaxconn: Some(4096),
            tcp_abort_on_overflow: Some(0),
            tcp_syncookies: None,
            acceptors: vec![acceptor()],
        };
        match id {
            FindingId::AcceptQueueFull => vec![Evidence::AcceptQueueFull(accept_queue())],
            FindingId::AcceptQueueHigh => vec![Evidence::AcceptQueueHigh(accept_queue())],
            FindingId::ListenDrops => vec![Evidence::ListenDrops(ListenDrops {
                listen_overflows_per_s: Some(1.5),
                listen_drops_per_s: Some(1.5),
                listen_overflows_total: Some(10),
                listen_drops_total: None,
                listeners: vec![DroppingListener {
                    local: "127.0.0.1:5000".to_owned(),
                    drops_per_s: Some(1.5),
                    drops_total: Some(10),
                    owners: vec![owner()],
                }],
            })],
            FindingId::SynQueuePressure => vec![
                Evidence::SynQueuePressure(SynQueuePressure::Listener(SynQueueListener {
                    local: "127.0.0.1:5000".to_owned(),
                    syn_recv: 8,
                    backlog: 8,
                    fill_pct: 88.9,
                    tcp_syncookies: Some(1),
                    tcp_max_syn_backlog: None,
                    acceptors: Vec::new(),
                })),
                Evidence::SynQueuePressure(SynQueuePressure::Counters(SynQueueCounters {
                    req_q_full_drop_per_s: Some(2.0),
                    req_q_full_do_cookies_per_s: None,
                    tcp_syncookies: Some(1),
                    tcp_max_syn_backlog: Some(512),
                })),
            ],
            FindingId::AbandonedInAcceptQueue => {
                vec![Evidence::AbandonedInAcceptQueue(Abandoned {
                    local: "127.0.0.1:5000".to_owned(),
                    unaccepted_close_wait: 2,
                    unaccepted_established: 7,
                    accept_queue: 9,
                    backlog: 8,
                    acceptors: vec![acceptor()],
                })]
            }
            FindingId::CloseWaitLeak => vec![Evidence::CloseWaitLeak(CloseWaitLeak {
                pid: 812,
                comm: "leaky".to_owned(),
                close_wait: 200,
                close_wait_unread: 150,
                close_wait_read_eof: 50,
                close_wait_oldest_s: Some(12.5),
                close_wait_growth_per_min: None,
                fds: Some(210),
                fd_limit: None,
            })],
            FindingId::EphemeralPortCollision => {
                vec![Evidence::EphemeralPortCollision(PortCollision {
                    client: addr().ip(),
                    server: addr(),
                    mined_ports: 200,
                    range_size: 28_232,
                    pct_of_range: 0.7,
                    ip_local_port_range: (32_768, 60_999),
                    owners: vec![owner()],
                    challenge_acks_per_s: None,
                })]
            }
            FindingId::FdExhaustion => vec![Evidence::FdExhaustion(FdExhaustion {
                pid: 812,
                comm: "fdhog".to_owned(),
                fds: 249,
                fd_limit: 256,
                fd_limit_hard: None,
                fd_use_pct: 97.3,
                close_wait: 0,
            })],
            FindingId::OrphanPressure => vec![Evidence::OrphanPressure(OrphanPressure {
                orphans: None,
                fin_wait2: 600,
                tcp_max_orphans: 1000,
                pct: 60.0,
                tcp_fin_timeout: Some(60),
                abort_on_memory_per_s: Some(2.0),
            })],
            FindingId::HalfOpenHandshakes => {
                vec![Evidence::HalfOpenHandshakes(HalfOpenHandshakes {
                    local: "127.0.0.1:5000".to_owned(),
                    requests_retransmitted: 4,
                    max_synack_retransmissions: 2,
                    accept_queue: 9,
                    backlog: 8,
                    full: true,
                    listen_overflows_per_s: None,
                    visible_clients: 4,
                    client_bytes_unacknowledged: 400,
                    client_processes: vec![holder()],
                    tcp_synack_retries: Some(5),
                    tcp_abort_on_overflow: Some(0),
                })]
            }
            FindingId::ConnectStall => vec![Evidence::ConnectStall(ConnectStall {
                remote: addr(),
                local_address: addr().ip(),
                sockets: 3,
                max_syn_retransmissions: 2,
                next_retry_ms: None,
                pid: Some(812),
                comm: None,
                listener: Some("127.0.0.1:5000".to_owned()),
                listener_full: Some(true),
                tcp_syn_retries: Some(6),
            })],
            FindingId::ReceiveQueueStall => vec![Evidence::ReceiveQueueStall(ReceiveQueueStall {
                pid: 812,
                comm: "reader".to_owned(),
                sockets: 3,
                unread_bytes: 3000,
                largest_unread: 1000,
                peers: vec![addr()],
                judged_over_window: true,
            })],
            FindingId::SendQueueStall => vec![Evidence::SendQueueStall(SendQueueStall {
                remote: addr(),
                sockets: 3,
                unacknowledged_bytes: 3000,
                zero_window: 3,
                retransmitting: 0,
                max_retransmissions: 0,
                pid: None,
                comm: Some("writer".to_owned()),
                peer_processes: Some(vec![holder()]),
                peer_not_reading: Some(true),
                peer_half_open: None,
            })],
            FindingId::PeerGone => vec![Evidence::PeerGone(PeerGone {
                pid: 812,
                comm: "ghost".to_owned(),
                sockets: 3,
                accepted: 1,
                connected: 2,
                peers: vec![addr()],
                locals: vec![addr()],
                idle_ms: None,
                keepalive: 0,
                peer_netns: vec!["blue".to_owned()],
                tcp_keepalive_time: Some(7200),
                tcp_keepalive_intvl: Some(75),
                tcp_keepalive_probes: None,
            })],
            FindingId::UdpReceiveDrops => vec![
                Evidence::UdpReceiveDrops(UdpReceiveDrops::Socket(UdpSocketDrops {
                    local: "127.0.0.1:7003".to_owned(),
                    peer: None,
                    drops_total: Some(5000),
                    drops_in_window: Some(4990),
                    drops_per_s: Some(4990.0),
                    recv_q: 200_000,
                    rmem_alloc: Some(210_000),
                    rcvbuf: Some(212_992),
                    buffer_fill_pct: Some(98.6),
                    rmem_max: Some(212_992),
                    rmem_default: None,
                    owners: vec![owner()],
                })),
                Evidence::UdpReceiveDrops(UdpReceiveDrops::Namespace(UdpNamespaceDrops {
                    rcvbuf_errors_total: None,
                    rcvbuf_errors_per_s: 12.5,
                    udp_sockets: 3,
                    left_out: 0,
                    rmem_default: Some(212_992),
                    rmem_max: None,
                })),
            ],
            FindingId::SilentPeer => vec![Evidence::SilentPeer(SilentPeer {
                pid: 812,
                comm: "fcgiwrap".to_owned(),
                sockets: 4,
                top_peers: vec![PeerCount {
                    address: addr().ip(),
                    sockets: 4,
                }],
                locals: vec![addr()],
                longest_idle_ms: 600_000,
                shortest_idle_ms: 61_000,
                keepalive: 0,
                silent_peer_after_ms: 60_000,
                tcp_keepalive_time: Some(7200),
                tcp_keepalive_intvl: None,
                tcp_keepalive_probes: Some(9),
            })],
            FindingId::EphemeralPortExhaustion => {
                vec![Evidence::EphemeralPortExhaustion(PortExhaustion {
                    local: addr().ip(),
                    remote: addr(),
                    ports_in_use: 45,
                    range_size: 90,
                    pct_of_range: 50.0,
                    states: BTreeMap::from([("TIME_WAIT".to_owned(), 45)]),
                    ip_local_port_range: (40_000, 40_099),
                    ip_local_reserved_ports: vec![(40_090, 40_099)],
                    tcp_tw_reuse: Some(2),
                    owners: vec![owner()],
                })]
            }
            FindingId::ReuseportImbalance => {
                let member = |member: u8, accept_queue: u8| ReuseportMember {
                    member: usize::from(member),
                    inode: 100 + u64::from(member),
                    accept_queue: u64::from(accept_queue),
                    backlog: 16,
                    fill_pct: 6.25 * f64::from(accept_queue),
                    full: accept_queue > 16,
                    drops_per_s: None,
                };
                vec![Evidence::ReuseportImbalance(ReuseportImbalance {
                    local: "127.0.0.1:8081".to_owned(),
                    member: 1,
                    members_total: 2,
                    share_pct: 50.0,
                    accept_queue: 17,
                    backlog: 16,
                    drops_per_s: Some(1.5),
                    members: vec![member(1, 17), member(2, 0)],
                    acceptors: vec![acceptor()],
                })]
            }
            FindingId::ConntrackFull => vec![Evidence::ConntrackFull(ConntrackFull {
                count: 30,
                max: Some(30),
                buckets: Some(262_144),
                fill_pct: Some(100.0),
                drop_total: 28,
                drop_per_s: Some(14.0),
                early_drop_per_s: Some(0.0),
                insert_failed_per_s: None,
                busiest_ports: Some(ConntrackPorts {
                    entries_read: 30,
                    complete: true,
                    busiest: vec![crate::model::ConntrackPort {
                        proto: "tcp".to_owned(),
                        port: 7000,
                        entries: 30,
                    }],
                }),
            })],
            FindingId::TimeWaitOverflow => vec![Evidence::TimeWaitOverflow(TimeWaitOverflow {
                overflow_per_s: 27.5,
                overflow_total: Some(55),
                time_wait: 5,
                tcp_max_tw_buckets: Some(5),
                tcp_tw_reuse: Some(2),
                destinations: vec![TimeWaitGroup {
                    address: addr(),
                    incoming: false,
                    sockets: 5,
                }],
            })],
            FindingId::TcpMemoryPressure => {
                vec![Evidence::TcpMemoryPressure(TcpMemoryPressure {
                    mem_pages: Some(9000),
                    tcp_mem: Some([4000, 8000, 12_000]),
                    pressure_pct: Some(112.5),
                    memory_pressures_per_s: Some(0.5),
                    abort_on_memory_per_s: None,
                    orphans: Some(3),
                    tcp_max_orphans: None,
                })]
            }
        }
    }

    /// The definitions the schema gives `id`'s evidence: one, or the `oneOf` alternatives.
    fn definitions(schema: &Value, id: FindingId) -> Vec<Value> {
        let rule = schema["$defs"]["finding"]["allOf"]
            .as_array()
            .expect("the finding's allOf")
            .iter()
            .find(|r| r["if"]["properties"]["id"]["const"] == id.name())
            .unwrap_or_else(|| panic!("the schema says nothing of {id}'s evidence"));
        let evidence = &rule["then"]["properties"]["evidence"];
        let refs = match evidence["oneOf"].as_array() {
            Some(alternatives) => alternatives.clone(),
            None => vec![evidence.clone()],
        };
        refs.iter()
            .map(|r| {
                let name = r["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .expect("a reference to a definition");
                schema["$defs"][name].clone()
            })
            .collect()
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut keys: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    #[test]
    fn the_schema_lists_every_id_in_the_table_order() {
        let schema = schema();
        let listed: Vec<&str> = schema["$defs"]["finding"]["properties"]["id"]["enum"]
            .as_array()
            .expect("the id enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ids: Vec<&str> = FindingId::ALL.iter().map(|id| id.name()).collect();
        assert_eq!(listed, ids);
    }

    /// Each evidence type writes exactly the keys its schema definition lists (all
    /// required), and a finding carrying it validates against the schema.
    #[test]
    fn every_evidence_matches_its_schema_definition() {
        let schema = schema();
        let finding_schema = serde_json::json!({
            "$ref": "#/$defs/finding", "$defs": schema["$defs"].clone(),
        });
        let validator = jsonschema::draft202012::new(&finding_schema).expect("a valid schema");
        for &id in FindingId::ALL {
            let defs = definitions(&schema, id);
            for evidence in samples(id) {
                assert_eq!(evidence.id(), id);
                let written = serde_json::to_value(&evidence).expect("serializes");
                let fits = defs.iter().any(|d| {
                    let mut required: Vec<String> = d["required"]
                        .as_array()
                        .expect("required keys")
                        .iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect();
                    required.sort();
                    keys(&d["properties"]) == keys(&written) && required == keys(&written)
                });
                assert!(
                    fits,
                    "{id}: the evidence writes {:?}; the schema has {:?}",
                    keys(&written),
                    defs.iter()
                        .map(|d| keys(&d["properties"]))
                        .collect::<Vec<_>>()
                );
                let finding = serde_json::json!({
                    "id": id, "severity": "warning", "netns": "4026531840",
                    "target": {"kind": "netns", "netns": "4026531840"},
                    "subject": "s", "summary": "s", "evidence": written, "remedy": "r",
                });
                let errors: Vec<String> = validator
                    .iter_errors(&finding)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{id}: {errors:#?}\n{finding:#}");
            }
        }
    }
}
