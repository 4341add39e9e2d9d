//! `sock_diag` over netlink: dump TCP and UDP (IPv4, IPv6) and unix sockets of the caller's network
//! namespace, one socket at a time.
//!
//! This module owns the `NETLINK_SOCK_DIAG` socket and the decoding of its replies into
//! [`InetSock`] and [`UnixSock`]. It must not decide what is bad, read /proc, or keep sockets:
//! every socket goes to the caller's callback as soon as it is decoded.
//!
//! Requests are built with `netlink-packet-sock-diag` and sent over a `netlink-sys` socket.
//! Replies are parsed here, by a small pure parser over `&[u8]`, not by that crate: its parser
//! rejects a `tcp_info` shorter than its own struct (older kernels send shorter ones), does not
//! know `UNIX_DIAG_UID`, and allocates a `Vec` of attributes per socket. A host can hold a
//! million sockets, so the parse here streams: it walks each datagram in place and allocates
//! nothing per socket except the `String` of a bound unix socket's name.
//!
//! The layers, each testable without a socket:
//!
//! - [`parse_datagram`] checks the netlink framing of one received datagram (lengths,
//!   alignment, sequence number, port id, `NLMSG_ERROR`, `NLMSG_DONE`, `NLM_F_DUMP_INTR`)
//!   and hands each socket message's payload on;
//! - [`parse_inet_msg`], [`parse_unix_msg`] and [`parse_tcp_info`] decode one payload;
//! - [`DiagSocket`] is the thin shell that sends a request and feeds datagrams to the above.
//!
//! Kernel bytes are never trusted: every length is checked, and malformed input is a
//! [`ReplyError`], never a panic.

mod destroy;
mod inet;
mod lookup;
mod socket;
mod tcp_info;
mod unix;
mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use crate::model::{Family, TcpState, TcpTimer, UnixKind, UnixState};

pub use destroy::{DestroyOutcome, destroy_outcome, destroy_request};
pub use inet::{UDP_STATES, inet_compat_request, inet_request, parse_inet_msg, udp_request};
pub use lookup::{LookupOutcome, lookup_outcome, lookup_request};
pub use socket::DiagSocket;
pub use tcp_info::parse_tcp_info;
pub use unix::{UnixStates, parse_unix_msg, unix_request};
pub use wire::{Errno, Progress, ReplyError, TCPDIAG_GETSOCK, parse_datagram};

/// Which TCP states a dump asks for: bit `n` asks for kernel state `n`.
///
/// Two kernel pseudo-states matter here (Linux 6.18, `tcp_diag_dump`):
///
/// - `TCP_NEW_SYN_RECV` (12), the state of request sockets. The kernel adds bit 12 whenever
///   bit 3 (`TCP_SYN_RECV`) is set, and reports request sockets as `TCP_SYN_RECV`; either bit
///   selects them. [`TcpState::SynRecv`] therefore stands for both bits, so that
///   `without(&[SynRecv])` really leaves request sockets out.
/// - `TCP_BOUND_INACTIVE` (13), which exists only in requests: bit 13 makes the kernel also
///   walk its bind table for sockets that are bound but neither listening nor connected
///   (kernels without that walk ignore the bit). They come back with their real state,
///   `TCP_CLOSE` (7); see [`parse_inet_msg`] for how they are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMask(pub u32);

impl StateMask {
    /// Every state the kernel's TCP dump knows, `TCP_ESTABLISHED` (1) to `TCP_BOUND_INACTIVE`
    /// (13): `SYN_RECV` request sockets and bound-inactive sockets included.
    pub const ALL: StateMask = StateMask(((1 << 14) - 1) & !1);

    pub fn only(states: &[TcpState]) -> StateMask {
        StateMask(
            states
                .iter()
                .fold(0, |mask, &state| mask | state_bits(state)),
        )
    }

    #[must_use]
    pub fn without(self, states: &[TcpState]) -> StateMask {
        StateMask(self.0 & !StateMask::only(states).0)
    }

    /// Whether the dump walks the bind table, whose sockets are reported as `TCP_CLOSE`.
    pub fn has_bound_inactive(self) -> bool {
        self.0 & (1 << inet::TCP_BOUND_INACTIVE) != 0
    }
}

/// The request bits that select `state`.
fn state_bits(state: TcpState) -> u32 {
    let bit = |n: u8| 1u32.checked_shl(u32::from(n)).unwrap_or(0);
    match state {
        TcpState::Established => bit(1),
        TcpState::SynSent => bit(2),
        TcpState::SynRecv => bit(3) | bit(inet::TCP_NEW_SYN_RECV),
        TcpState::FinWait1 => bit(4),
        TcpState::FinWait2 => bit(5),
        TcpState::TimeWait => bit(6),
        TcpState::Close => bit(7),
        TcpState::CloseWait => bit(8),
        TcpState::LastAck => bit(9),
        TcpState::Listen => bit(10),
        TcpState::Closing => bit(11),
        TcpState::BoundInactive => bit(inet::TCP_BOUND_INACTIVE),
        TcpState::Other(n) => bit(n),
    }
}

/// Which optional attributes a dump asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `INET_DIAG_INFO`: the socket's `struct tcp_info` (full sockets only, not request or
    /// `TIME_WAIT` sockets).
    pub tcp_info: bool,
    /// `INET_DIAG_SKMEMINFO`: socket memory counters, of which [`InetSock::drops`] is kept.
    pub skmeminfo: bool,
}

impl Extensions {
    /// The request's `idiag_ext`: bit N-1 asks for attribute N.
    pub fn bits(self) -> u8 {
        use netlink_packet_sock_diag::{INET_DIAG_INFO, INET_DIAG_SKMEMINFO};
        let mut bits = 0;
        if self.tcp_info {
            bits |= 1u8 << (INET_DIAG_INFO - 1);
        }
        if self.skmeminfo {
            bits |= 1u8 << (INET_DIAG_SKMEMINFO - 1);
        }
        bits
    }
}

/// `struct tcp_info`, parsed tolerantly: fields the kernel did not send are `None`.
///
/// Times are milliseconds (`last_*`) or microseconds (`rto`, `ato`, `rtt`, `rttvar`,
/// `min_rtt`), as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: Option<TcpState>,
    /// Consecutive retransmission timeouts of the current segment.
    pub retransmits: Option<u8>,
    /// Unanswered zero-window or keepalive probes.
    pub probes: Option<u8>,
    pub backoff: Option<u8>,
    pub rto: Option<u32>,
    pub ato: Option<u32>,
    pub snd_mss: Option<u32>,
    pub rcv_mss: Option<u32>,
    pub unacked: Option<u32>,
    pub sacked: Option<u32>,
    pub lost: Option<u32>,
    pub retrans: Option<u32>,
    pub last_data_sent: Option<u32>,
    /// Never updated by Linux (always 0), parsed for completeness.
    pub last_ack_sent: Option<u32>,
    pub last_data_recv: Option<u32>,
    /// Milliseconds since the last ACK from the peer: for `CLOSE_WAIT`, about the time since
    /// its FIN arrived.
    pub last_ack_recv: Option<u32>,
    pub pmtu: Option<u32>,
    pub rtt: Option<u32>,
    pub rttvar: Option<u32>,
    pub snd_ssthresh: Option<u32>,
    pub snd_cwnd: Option<u32>,
    pub total_retrans: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub notsent_bytes: Option<u32>,
    pub min_rtt: Option<u32>,
}

/// One TCP socket of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetSock {
    pub family: Family,
    pub state: TcpState,
    /// An IPv6 socket keeps its address as sent: a dual-stack socket talking to an IPv4 peer
    /// shows `::ffff:a.b.c.d`, not an IPv4 address.
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// LISTEN: accept-queue length. Otherwise bytes not yet read.
    pub recv_q: u32,
    /// LISTEN: effective backlog. Otherwise bytes not yet acknowledged.
    pub send_q: u32,
    /// 0 for request sockets, `TIME_WAIT`, orphans and children not yet `accept()`ed.
    pub inode: u64,
    pub uid: u32,
    /// `SK_MEMINFO_DROPS`, when `skmeminfo` was asked for and the kernel sent it.
    pub drops: Option<u32>,
    /// `SK_MEMINFO_RMEM_ALLOC` and `SK_MEMINFO_RCVBUF`, from the same attribute.
    pub rmem: Option<RecvMem>,
    /// When `tcp_info` was asked for and the kernel sent it.
    pub tcp_info: Option<TcpInfo>,
    /// `idiag_timer`, `idiag_retrans` and `idiag_expires`: the pending timer, if any.
    pub timer: Option<TcpTimer>,
    /// `idiag_if`: the device the socket is bound to (0: none).
    pub ifindex: u32,
    /// `idiag_cookie`: the kernel's identity of this socket, never reused while the host
    /// runs. With the 4-tuple it names the socket exactly ([`destroy_request`]).
    pub cookie: u64,
}

/// A socket's receive memory, from `INET_DIAG_SKMEMINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMem {
    /// `SK_MEMINFO_RMEM_ALLOC`: bytes charged to the receive queue, overhead included.
    pub alloc: u32,
    /// `SK_MEMINFO_RCVBUF`: the receive buffer's size.
    pub rcvbuf: u32,
}

/// One unix socket of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSock {
    pub kind: UnixKind,
    pub state: UnixState,
    /// Filesystem path, `@name` for an abstract name (further NULs shown as `@`, as `ss`
    /// does), `None` when unbound.
    pub path: Option<String>,
    pub inode: u64,
    /// `Some(0)` for a client whose connection still waits in a listener's queue: its peer,
    /// the server end, gets an inode only when it is accepted.
    pub peer_inode: Option<u64>,
    /// LISTEN: pending connections. Otherwise bytes (stream) or datagrams queued.
    pub recv_q: u32,
    /// LISTEN: backlog. Otherwise bytes queued for sending.
    pub send_q: u32,
    /// `None` on kernels before 5.3, which do not report it.
    pub uid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The kernel refused or aborted the dump, or sent bytes that do not add up.
    #[error("{dump}: {reply}")]
    Reply {
        dump: &'static str,
        reply: ReplyError,
    },
    /// A datagram longer than the receive buffer: its tail is lost, and with it the dump.
    #[error(
        "{dump}: a {len}-byte reply did not fit the {capacity}-byte receive buffer and was cut"
    )]
    Truncated {
        dump: &'static str,
        len: usize,
        capacity: usize,
    },
}

impl NetlinkError {
    /// The errno the kernel answered with, when it refused or aborted the dump (`EPERM` in a
    /// sandbox that filters netlink, `ENOENT` for a family it has no handler for, ...).
    pub fn kernel_errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Reply {
                reply: ReplyError::Refused(errno) | ReplyError::Aborted(errno),
                ..
            } => Some(errno.0),
            _ => None,
        }
    }
}
