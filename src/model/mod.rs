//! The snapshot: everything one collection pass saw, owned and immutable.
//!
//! `collect/` builds a [`Snapshot`]; `analyze/` and the faces only read it. Nothing here does
//! I/O or reads a clock, and every type round-trips through serde so that a recording replays
//! to the same analysis as the live host.
//!
//! A host can hold a million sockets, so the snapshot keeps every socket only as a count and
//! keeps in full just the ones a diagnosis can be about: listeners, SYN_RECV request sockets,
//! CLOSE_WAIT sockets and accepted-but-unaccepted children (see [`NetnsSnapshot::tracked`]),
//! receiving UDP sockets (bounded), and the ports in use towards the busiest destinations,
//! counted as the full dump goes by.

mod acceptors;
pub mod kill;
mod state;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

pub use acceptors::{Holder, ListenerHolders, Syscall, THREAD_LIMIT, Task, TaskState, Unreadable};
pub use state::{Family, StateCounts, TcpState, TcpTimer, TimerKind, UnixKind, UnixState};

/// One collection pass over the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub host: Host,
    /// Wall-clock time the pass started, milliseconds since the Unix epoch.
    pub wall_time_ms: u64,
    /// `CLOCK_MONOTONIC` when the pass started, nanoseconds: rates are computed from this.
    pub monotonic_ns: u64,
    /// How long the pass took, microseconds.
    pub collect_us: u64,
    /// One entry per network namespace scanned; the caller's own comes first.
    pub netns: Vec<NetnsSnapshot>,
    /// Every process of the scanned network namespaces seen in /proc, socket owner or not,
    /// and the processes of other namespaces found holding their sockets (a descriptor
    /// passed across namespaces, a process that called `setns`); sorted by pid. The
    /// processes of other namespaces are otherwise not walked, and not listed (see
    /// [`ProcessScanStats::not_walked`]).
    pub processes: Vec<Process>,
    pub process_scan: ProcessScanStats,
    /// What this pass could not see, in words an operator can act on.
    pub notes: Vec<String>,
    /// How fresh each part is. Recordings made before it existed read as a full pass.
    #[serde(default)]
    pub freshness: Freshness,
}

/// How fresh each part of a snapshot is.
///
/// A one-shot collection (`report`, `check`, `record`) reads everything in one pass: every
/// age is 0. A collector refreshing every second (the dashboard, the exporter) reads in each
/// refresh only what is cheap and what a diagnosis turns on, and carries the rest over from
/// its last full pass:
///
/// | part | in every refresh | carried over, up to the age given |
/// | --- | --- | --- |
/// | TCP and unix listeners, their queues and drops | yes | |
/// | SYN_RECV and CLOSE_WAIT sockets, their owners | when a TCP counter moved | `tracked_age_ms` |
/// | TcpExt / Tcp counters, sockstat, connection tracking's count and drops | yes | |
/// | `tcp_states`: LISTEN, SYN_RECV, CLOSE_WAIT; ESTABLISHED (from `Tcp: CurrEstab`) | yes | |
/// | `tcp_states`: the other states | | `socket_dump_age_ms` |
/// | ESTABLISHED children not yet accepted, the unix socket total | | `socket_dump_age_ms` |
/// | sysctls, local addresses | | `socket_dump_age_ms` |
/// | UDP sockets (with drops), `Udp`/`Udp6` counters | yes | |
/// | ports in use by destination (`port_use`), TIME_WAIT by server (`time_wait_top`) | | `socket_dump_age_ms` |
/// | which process holds which socket | new processes and those whose descriptor count changed | `fd_walk_age_ms` |
/// | each process's descriptor limit | new processes | `fd_walk_age_ms` |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Freshness {
    /// This snapshot re-read only part of the host (see the table); false for a full pass.
    pub incremental: bool,
    /// Milliseconds since the full socket dump the carried-over socket parts come from.
    pub socket_dump_age_ms: u64,
    /// Milliseconds since the SYN_RECV and CLOSE_WAIT sockets were last read, in the
    /// namespace where that is longest. A refresh reads them again only when a TCP counter
    /// of the namespace moved since (no segment in or out, no socket changed state), and at
    /// least every few seconds; until then their ages are advanced by the time that passed.
    pub tracked_age_ms: u64,
    /// Milliseconds since every process's descriptors were last walked.
    pub fd_walk_age_ms: u64,
    /// Processes whose descriptors were walked in this pass.
    pub processes_walked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    /// Kernel release, as `uname -r` prints it.
    pub kernel: String,
}

/// What one network namespace holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetnsSnapshot {
    /// Stable identifier: the namespace's inode number, as text.
    pub id: String,
    /// What a person calls it: `host`, an `ip netns` name, a container's name or id.
    pub label: String,
    /// The container whose processes hold it, when a runtime's files name one. Absent from
    /// recordings made before sockscope read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    pub sysctl: Sysctls,
    /// `/proc/net/netstat` `TcpExt:` counters by name (every field the kernel exports).
    pub tcp_ext: BTreeMap<String, u64>,
    /// `/proc/net/snmp` `Tcp:` fields by name.
    pub tcp: BTreeMap<String, u64>,
    /// `/proc/net/sockstat` `TCP:` line, when readable.
    pub sockstat: Option<SockStat>,
    /// Every TCP socket counted by state, both families.
    pub tcp_states: StateCounts,
    /// TCP listeners, both families, with their per-socket drop counter.
    pub tcp_listeners: Vec<TcpSocket>,
    /// The non-listening TCP sockets a diagnosis can be about: SYN_RECV request sockets,
    /// CLOSE_WAIT sockets (with `last_ack_recv_ms`), ESTABLISHED sockets with inode 0
    /// (accepted by the kernel, not yet `accept()`ed), and the connections in trouble —
    /// SYN_SENT sockets that retransmitted their SYN, and ESTABLISHED sockets with unread
    /// data, a zero-window probe timer, or a retransmission timer that fired — at most
    /// [`TROUBLED_LIMIT`] of each of those two kinds (see `troubled_left_out`).
    pub tracked: Vec<TcpSocket>,
    /// Connections in trouble past [`TROUBLED_LIMIT`] of their kind, counted, not kept.
    #[serde(default)]
    pub troubled_left_out: u64,
    /// `tracked` was emptied to save memory (an older snapshot of a live window): this
    /// snapshot says nothing of its sockets one by one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracked_dropped: bool,
    /// Unix listeners (stream and seqpacket) with their accept queues.
    pub unix_listeners: Vec<UnixSocket>,
    /// Every unix socket counted, listeners included.
    pub unix_sockets: u64,
    /// Addresses configured on this namespace's interfaces (for "is this peer local").
    pub local_addrs: Vec<IpAddr>,
    /// ESTABLISHED sockets whose other end is gone, or whose peer is silent (see
    /// [`PeerGone`]), from the last full dump; at most [`PEER_GONE_LIMIT`] of each kind.
    /// Few and small, so a slim snapshot keeps them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_gone: Vec<PeerGone>,
    /// Such sockets past the limit, counted, not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peer_gone_left_out: u64,
    /// Quiet ESTABLISHED sockets accepted from a peer address of another scanned namespace
    /// whose other end could not be looked for without doubt: the address belongs to more
    /// than one scanned namespace, connections may be rewritten by NAT (a scanned namespace
    /// tracks connections), the lookup failed, or they were past the bound of candidates.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peer_unchecked: u64,
    /// Quiet connections accepted from a peer that is not local, keepalive off, whose
    /// `tcp_info` was not read (past the bound of candidates, or unreadable), or silent ones
    /// past [`PEER_GONE_LIMIT`]: not judged for a silent peer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub silent_unchecked: u64,
    /// `/proc/net/snmp` `Udp:` and `/proc/net/snmp6` `Udp6*` fields, by name (`Udp6`
    /// without its prefix). Absent from recordings made before sockscope read them.
    #[serde(default)]
    pub udp: UdpCounters,
    /// UDP sockets kept in full, both families: every unconnected (bound, receiving) one,
    /// and connected ones that dropped or hold unread datagrams, at most [`UDP_LIMIT`].
    #[serde(default)]
    pub udp_sockets: Vec<UdpSocket>,
    /// Every UDP socket of the namespace, counted (kept or not).
    #[serde(default)]
    pub udp_socket_count: u64,
    /// UDP sockets that would have been kept but for [`UDP_LIMIT`].
    #[serde(default)]
    pub udp_left_out: u64,
    /// Ephemeral ports in use from one local address to one destination, the busiest
    /// [`PORT_USE_LIMIT`] destinations, from the last full TCP dump.
    #[serde(default)]
    pub port_use: Vec<PortUse>,
    /// Who holds the listeners that have something to explain (a connection in the accept
    /// queue, a request socket), and what their threads were doing; by listener inode.
    /// Not read for the others. Absent from recordings made before sockscope read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<ListenerHolders>,
    /// The connection tracking table, when the module is loaded: its count is this
    /// namespace's, its limits the host's. Read in every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<Conntrack>,
    /// The addresses most TIME_WAIT sockets point to, at most [`TIME_WAIT_TOP`], from the
    /// last full TCP dump.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_wait_top: Vec<TimeWaitGroup>,
    /// Where the connection tracking table's entries go, when asked (`--conntrack-ports`),
    /// from the last full read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_ports: Option<ConntrackPorts>,
}

/// The destination ports that hold most of a connection tracking table's entries, read
/// (when asked) from the first entries of `/proc/net/nf_conntrack`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackPorts {
    /// Entries read: at most [`CONNTRACK_PORTS_SCAN`].
    pub entries_read: u64,
    /// Whether every entry of the namespace was read.
    pub complete: bool,
    /// The busiest, most entries first, at most [`CONNTRACK_PORTS_TOP`].
    pub busiest: Vec<ConntrackPort>,
}

/// Entries of one protocol to one destination port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackPort {
    /// `tcp`, `udp`, … as the table names it.
    pub proto: String,
    pub port: u16,
    pub entries: u64,
}

/// At most this many entries of `/proc/net/nf_conntrack` are read per namespace.
pub const CONNTRACK_PORTS_SCAN: u64 = 20_000;

/// At most this many ports are kept in [`ConntrackPorts::busiest`].
pub const CONNTRACK_PORTS_TOP: usize = 5;

/// At most this many groups are kept in [`NetnsSnapshot::time_wait_top`].
pub const TIME_WAIT_TOP: usize = 5;

/// TIME_WAIT sockets grouped by the address they point to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWaitGroup {
    /// The server's address: the destination of connections this namespace opened, or, when
    /// `incoming`, its own listener's address.
    pub address: SocketAddr,
    /// The connections were accepted by a listener at `address` (this side closed first).
    pub incoming: bool,
    pub sockets: u64,
}

/// The connection tracking table (`nf_conntrack`) as one namespace sees it, from
/// `/proc/net/stat/nf_conntrack`; its limits are the host's sysctls
/// ([`Sysctls::nf_conntrack_max`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conntrack {
    /// The entries of this namespace (`nf_conntrack_count`).
    pub count: u64,
    /// New connections refused because the table was full, summed over CPUs.
    pub drop: u64,
    /// Entries evicted to make room for new ones.
    pub early_drop: u64,
    /// Entries that could not be inserted.
    pub insert_failed: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// At most this many [`PeerGone`] sockets of each [`Ghost`] kind are kept per namespace.
pub const PEER_GONE_LIMIT: usize = 1_000;

/// An ESTABLISHED socket, with nothing in flight (no unread or unacknowledged data, no
/// retransmission or probe timer), whose peer is gone or silent ([`Ghost`]):
///
/// - [`Ghost::Gone`]: its peer is an address of its namespace (loopback or one of its own
///   addresses) or of another scanned namespace, and its other end — the socket with the
///   reversed 4-tuple — was not there. Its peer's FIN or RST was lost: the connection exists
///   on this side only. Either end of a connection, accepted or connected, listener or not
///   ([`PeerRole`]).
/// - [`Ghost::Silent`]: accepted by a listener of its namespace from a peer that is not
///   local, which has sent nothing since the handshake (`tcpi_bytes_received` 0), with
///   keepalive off (no timer pending): whatever host the peer is on, the connection may have
///   no other end.
///
/// One dump decides nothing (a connection being torn down looks the same for a moment); the
/// analysis judges it over its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerGone {
    pub socket: TcpSocket,
    /// `tcpi_last_data_recv`: ms since data last arrived (for a silent peer: since the
    /// handshake), when the dump brought `tcp_info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u32>,
    /// Consecutive full dumps that found it so, this one included (a live collector's; a
    /// one-shot pass says 1).
    #[serde(default = "one")]
    pub dumps: u32,
    /// The id of the scanned namespace its peer address belongs to, when that is not the
    /// socket's own: its other end was looked for there, by its exact 4-tuple, and is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_netns: Option<String>,
    /// Which end of its connection the socket is. Absent from recordings made before it was
    /// read: those held accepted sockets only.
    #[serde(default)]
    pub role: PeerRole,
    /// What was seen of the peer. Absent from recordings made before silent peers were kept.
    #[serde(default, skip_serializing_if = "Ghost::is_gone")]
    pub ghost: Ghost,
}

fn one() -> u32 {
    1
}

/// Which end of a connection a socket is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerRole {
    /// Accepted: its local port is a listener's, or (the listener gone) its local port lies
    /// outside the ephemeral range while its peer's lies inside.
    #[default]
    Accepted,
    /// Made by `connect()`: every other socket.
    Connected,
}

/// What the collector saw of a [`PeerGone`] socket's peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ghost {
    /// Its other end is not where its peer address is (this namespace, or another scanned
    /// one).
    #[default]
    Gone,
    /// Its peer, not local, sent nothing since the handshake; keepalive is off.
    Silent,
}

impl Ghost {
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
    fn is_gone(&self) -> bool {
        *self == Ghost::Gone
    }
}

/// At most this many UDP sockets are kept in full per namespace.
pub const UDP_LIMIT: usize = 10_000;

/// At most this many destinations are kept in [`NetnsSnapshot::port_use`].
pub const PORT_USE_LIMIT: usize = 20;

/// The UDP counters of a namespace, per family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpCounters {
    /// `Udp:` of `/proc/net/snmp`.
    pub v4: BTreeMap<String, u64>,
    /// `Udp6*` of `/proc/net/snmp6`, prefix removed (`RcvbufErrors`, ...).
    pub v6: BTreeMap<String, u64>,
}

impl UdpCounters {
    /// A counter summed over both families; `None` when neither exports it.
    pub fn get(&self, name: &str) -> Option<u64> {
        match (self.v4.get(name), self.v6.get(name)) {
            (None, None) => None,
            (a, b) => Some(a.copied().unwrap_or(0) + b.copied().unwrap_or(0)),
        }
    }
}

/// One UDP socket as sock_diag reported it, with its `INET_DIAG_SKMEMINFO` counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpSocket {
    pub family: Family,
    pub local: SocketAddr,
    /// The connected peer; `None` for an unconnected socket (`ss` shows `*:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<SocketAddr>,
    /// Bytes queued for reading (`ss` Recv-Q).
    pub recv_q: u32,
    /// `SK_MEMINFO_RMEM_ALLOC`: receive memory charged, overhead included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmem_alloc: Option<u32>,
    /// `SK_MEMINFO_RCVBUF`: the receive buffer (SO_RCVBUF as the kernel doubled it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcvbuf: Option<u32>,
    /// `SK_MEMINFO_DROPS`: datagrams dropped by this socket since it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<u32>,
    pub inode: u64,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<u32>,
}

/// TCP sockets from one local address to one destination whose local port lies in the
/// usable ephemeral range: what `connect()` to that destination has left to pick from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortUse {
    pub local: IpAddr,
    pub remote: SocketAddr,
    /// Sockets by state (TIME_WAIT holds its port too).
    pub states: StateCounts,
    /// Processes holding some of them (a sample of the sockets is looked up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<u32>,
}

impl PortUse {
    /// Ports in use: one per socket.
    pub fn ports(&self) -> u64 {
        self.states.total()
    }
}

/// At most this many SYN_SENT sockets, and this many troubled ESTABLISHED ones, are kept in
/// full per namespace.
pub const TROUBLED_LIMIT: usize = 10_000;

/// A container, as its runtime names it. Every name is chosen by whoever runs the
/// container: kept exact here, escaped by the faces that write text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// `docker`, `containerd`, `cri-o`, `podman`, `k8s` (a pod whose runtime the cgroup
    /// path does not say) or `container`.
    pub runtime: String,
    /// The full id.
    pub id: String,
    /// The container's name (on Kubernetes, its name in the pod).
    pub name: Option<String>,
    /// The Kubernetes pod and its namespace.
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

/// The sysctls the analysis reasons with; `None` where the file could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    pub somaxconn: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    pub tcp_syncookies: Option<u64>,
    pub tcp_abort_on_overflow: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: the ephemeral ports `connect()` picks from.
    pub ip_local_port_range: Option<(u16, u16)>,
    /// `net.ipv4.ip_local_reserved_ports` as inclusive ranges.
    pub ip_local_reserved_ports: Vec<(u16, u16)>,
    pub tcp_fin_timeout: Option<u64>,
    pub tcp_max_orphans: Option<u64>,
    /// SYN retransmissions before `connect()` gives up.
    #[serde(default)]
    pub tcp_syn_retries: Option<u64>,
    /// SYN-ACK retransmissions before a request socket is dropped.
    #[serde(default)]
    pub tcp_synack_retries: Option<u64>,
    /// `net.ipv4.tcp_keepalive_time`, `_intvl` (seconds) and `_probes`: how long a socket
    /// with `SO_KEEPALIVE` takes to notice a peer that is gone.
    #[serde(default)]
    pub tcp_keepalive_time: Option<u64>,
    #[serde(default)]
    pub tcp_keepalive_intvl: Option<u64>,
    #[serde(default)]
    pub tcp_keepalive_probes: Option<u64>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 on for loopback only.
    #[serde(default)]
    pub tcp_tw_reuse: Option<u64>,
    /// `net.core.rmem_default`: a socket's receive buffer unless it sets SO_RCVBUF.
    #[serde(default)]
    pub rmem_default: Option<u64>,
    /// `net.core.rmem_max`: the most SO_RCVBUF can ask for.
    #[serde(default)]
    pub rmem_max: Option<u64>,
    /// `net.ipv4.udp_mem`: min, pressure, max, in pages.
    #[serde(default)]
    pub udp_mem: Option<[u64; 3]>,
    /// `net.ipv4.tcp_max_tw_buckets`: TIME_WAIT sockets past it are not kept (per namespace).
    #[serde(default)]
    pub tcp_max_tw_buckets: Option<u64>,
    /// `net.ipv4.tcp_mem`: min, pressure, max, in pages; the host's, readable only from the
    /// initial namespace.
    #[serde(default)]
    pub tcp_mem: Option<[u64; 3]>,
    /// `net.netfilter.nf_conntrack_max` and `_buckets`: the host's connection tracking
    /// limit and hash size (read-only outside the initial namespace); `None` without the
    /// module.
    #[serde(default)]
    pub nf_conntrack_max: Option<u64>,
    #[serde(default)]
    pub nf_conntrack_buckets: Option<u64>,
}

impl Sysctls {
    /// The ports `connect()` picks from: `ip_local_port_range` less
    /// `ip_local_reserved_ports`; `None` when the range could not be read.
    pub fn usable_ports(&self) -> Option<UsablePorts> {
        let (lo, hi) = self.ip_local_port_range?;
        // A word at a time: a scan of 1,000 namespaces builds one each, of ~28,000 ports.
        let mut bits = vec![0u64; 1024];
        mark_ports(&mut bits, (lo, hi), true);
        for &range in &self.ip_local_reserved_ports {
            mark_ports(&mut bits, range, false);
        }
        let size = bits.iter().map(|w| u64::from(w.count_ones())).sum();
        Some(UsablePorts { bits, size })
    }
}

/// Set (`on`) or clear the bits of ports `lo..=hi` in a 65,536-bit map.
fn mark_ports(bits: &mut [u64], (lo, hi): (u16, u16), on: bool) {
    if lo > hi {
        return;
    }
    let (lo, hi) = (usize::from(lo), usize::from(hi));
    for (at, word) in bits.iter_mut().enumerate().take(hi / 64 + 1).skip(lo / 64) {
        let from = if at == lo / 64 { lo % 64 } else { 0 };
        let to = if at == hi / 64 { hi % 64 } else { 63 };
        let mask = (u64::MAX >> (63 - (to - from))) << from;
        if on {
            *word |= mask;
        } else {
            *word &= !mask;
        }
    }
}

/// The usable ephemeral ports, as a bitmap: one lookup per socket of a full dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsablePorts {
    bits: Vec<u64>,
    size: u64,
}

impl UsablePorts {
    pub fn contains(&self, port: u16) -> bool {
        self.bits
            .get(usize::from(port / 64))
            .is_some_and(|w| w & (1 << (port % 64)) != 0)
    }

    /// How many ports there are.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// The `TCP:` line of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SockStat {
    pub inuse: u64,
    pub orphan: u64,
    pub tw: u64,
    pub alloc: u64,
    /// Pages of memory charged to TCP.
    pub mem: u64,
}

/// One TCP socket as sock_diag reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSocket {
    pub family: Family,
    pub state: TcpState,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// LISTEN: accept-queue length. Otherwise bytes not yet read (+1 for an unread FIN).
    pub recv_q: u32,
    /// LISTEN: effective backlog. Otherwise bytes not yet acknowledged.
    pub send_q: u32,
    /// 0 for request sockets, orphans and children not yet `accept()`ed.
    pub inode: u64,
    pub uid: u32,
    /// `SK_MEMINFO_DROPS` (listeners only): SYNs and ACKs this socket dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<u32>,
    /// `tcpi_last_ack_recv` (CLOSE_WAIT only): ms since the last ACK from the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ack_recv_ms: Option<u32>,
    /// The pending TCP timer, if any (kept sockets; recordings made before it have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TcpTimer>,
    /// Pids of the processes holding a file descriptor on this socket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<u32>,
}

/// One unix socket as sock_diag reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    pub kind: UnixKind,
    pub state: UnixState,
    /// Filesystem path, `@name` for an abstract name, `None` when unbound.
    pub path: Option<String>,
    pub inode: u64,
    pub peer_inode: Option<u64>,
    /// LISTEN: pending connections. Otherwise bytes (stream) or datagrams queued.
    pub recv_q: u32,
    /// LISTEN: backlog.
    pub send_q: u32,
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<u32>,
}

/// One process and the sockets it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    /// Inode of the process's network namespace, when readable.
    pub netns: Option<u64>,
    /// Open file descriptors, when readable.
    pub fds: Option<u64>,
    /// `RLIMIT_NOFILE`, when readable.
    pub fd_limit: Option<FdLimit>,
    /// TCP sockets held, by state (only sockets found in a scanned namespace).
    pub tcp: StateCounts,
    pub unix_sockets: u64,
    /// Sockets of other kinds (UDP, netlink, …) or of namespaces not scanned.
    pub other_sockets: u64,
    pub fd_scan: FdScan,
}

/// `RLIMIT_NOFILE`; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// How far the walk of one process's descriptors got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdScan {
    Complete,
    /// The fd table could not be read (another user's process, without root).
    Denied,
    /// The process exited while it was being read.
    Vanished,
}

/// Totals of the process walk, so a partial view is never silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessScanStats {
    pub processes: u64,
    pub fds_denied: u64,
    pub vanished: u64,
    /// Socket descriptors seen in all processes.
    pub socket_fds: u64,
    /// Processes of network namespaces not scanned, whose descriptors were not walked
    /// (counted in `processes`, absent from [`Snapshot::processes`]).
    #[serde(default)]
    pub not_walked: u64,
}

impl ProcessScanStats {
    /// Whether every process's descriptors were read.
    pub fn full_view(&self) -> bool {
        self.fds_denied == 0
    }
}

impl Snapshot {
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.processes[i])
    }
}

#[cfg(test)]
mod usable_ports_tests {
    use super::*;

    /// The map, port by port, as the definition says.
    fn naive(lo: u16, hi: u16, reserved: &[(u16, u16)]) -> Vec<u16> {
        (lo..=hi)
            .filter(|p| !reserved.iter().any(|&(a, b)| (a..=b).contains(p)))
            .collect()
    }

    #[test]
    fn usable_ports_are_the_range_less_the_reserved_ones() {
        for (range, reserved) in [
            ((32768, 60999), vec![]),
            (
                (32768, 60999),
                vec![(40000, 40000), (50000, 50063), (60990, 65535)],
            ),
            ((0, 65535), vec![(0, 0), (63, 64), (65535, 65535)]),
            ((1024, 1024), vec![]),
            ((5, 3), vec![]),
            ((100, 200), vec![(150, 120)]),
        ] {
            let sysctl = Sysctls {
                ip_local_port_range: Some(range),
                ip_local_reserved_ports: reserved.clone(),
                ..Sysctls::default()
            };
            let usable = sysctl.usable_ports().expect("a range");
            let want = naive(range.0, range.1, &reserved);
            assert_eq!(usable.size(), want.len() as u64, "{range:?} {reserved:?}");
            for port in 0..=u16::MAX {
                assert_eq!(usable.contains(port), want.binary_search(&port).is_ok());
            }
        }
    }
}
