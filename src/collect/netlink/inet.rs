//! TCP and UDP sockets: the `inet_diag_req_v2` dump request and the `inet_diag_msg` replies.
//!
//! Layouts from `include/uapi/linux/inet_diag.h`; attribute numbers from the same file
//! (`INET_DIAG_INFO` = 2, `INET_DIAG_SKMEMINFO` = 7) and `SK_MEMINFO_RMEM_ALLOC` = 0,
//! `SK_MEMINFO_RCVBUF` = 1, `SK_MEMINFO_DROPS` = 8 from `include/uapi/linux/sock_diag.h`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, INET_DIAG_INFO, INET_DIAG_SKMEMINFO, IPPROTO_TCP, IPPROTO_UDP,
    SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};

use super::wire::{ReplyError, TCPDIAG_GETSOCK, attributes, bytes_at, read_u32};
use super::{Extensions, InetSock, RecvMem, StateMask, parse_tcp_info};
use crate::model::{Family, TcpState, TcpTimer, TimerKind};

/// `TCP_NEW_SYN_RECV`: the kernel's state of a request socket (reported as `TCP_SYN_RECV`).
pub(super) const TCP_NEW_SYN_RECV: u8 = 12;
/// `TCP_BOUND_INACTIVE`: a request-only pseudo-state selecting bound, inactive sockets.
pub(super) const TCP_BOUND_INACTIVE: u8 = 13;
/// `TCP_CLOSE`: the state bound-inactive sockets are reported with.
const TCP_CLOSE: u8 = 7;

/// `sizeof(struct inet_diag_msg)`.
const MSG_LEN: usize = 72;
/// `SK_MEMINFO_DROPS` is entry 8 of the `__u32` array of `INET_DIAG_SKMEMINFO`.
const SKMEMINFO_DROPS_AT: usize = 8 * 4;
/// `SK_MEMINFO_RMEM_ALLOC` and `SK_MEMINFO_RCVBUF`: entries 0 and 1.
const SKMEMINFO_RMEM_ALLOC_AT: usize = 0;
const SKMEMINFO_RCVBUF_AT: usize = 4;

/// The states a UDP socket is in: `TCP_CLOSE` unconnected, `TCP_ESTABLISHED` connected
/// (`udp_dump` filters on the same bits as a TCP dump).
pub const UDP_STATES: StateMask = StateMask((1 << 1) | (1 << TCP_CLOSE));

/// Decode a kernel TCP state number.
pub(super) fn tcp_state(raw: u8) -> TcpState {
    match raw {
        1 => TcpState::Established,
        2 => TcpState::SynSent,
        3 | TCP_NEW_SYN_RECV => TcpState::SynRecv,
        4 => TcpState::FinWait1,
        5 => TcpState::FinWait2,
        6 => TcpState::TimeWait,
        TCP_CLOSE => TcpState::Close,
        8 => TcpState::CloseWait,
        9 => TcpState::LastAck,
        10 => TcpState::Listen,
        11 => TcpState::Closing,
        TCP_BOUND_INACTIVE => TcpState::BoundInactive,
        other => TcpState::Other(other),
    }
}

/// The `SOCK_DIAG_BY_FAMILY` dump request for TCP sockets of `family`, as sent on the wire.
pub fn inet_request(seq: u32, family: Family, states: StateMask, ext: Extensions) -> Vec<u8> {
    request(seq, IPPROTO_TCP, family, states, ext)
}

/// The `SOCK_DIAG_BY_FAMILY` dump request for every UDP socket of `family`.
pub fn udp_request(seq: u32, family: Family, ext: Extensions) -> Vec<u8> {
    request(seq, IPPROTO_UDP, family, UDP_STATES, ext)
}

fn request(seq: u32, protocol: u8, family: Family, states: StateMask, ext: Extensions) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::Inet => (AF_INET, SocketId::new_v4()),
        Family::Inet6 => (AF_INET6, SocketId::new_v6()),
    };
    let mut extensions = ExtensionFlags::empty();
    if ext.tcp_info {
        extensions |= ExtensionFlags::INFO;
    }
    if ext.skmeminfo {
        extensions |= ExtensionFlags::SKMEMINFO;
    }
    let request = InetRequest {
        family: af,
        protocol,
        extensions,
        // The crate names only the eleven classic states; the pseudo-states 12 and 13 are
        // passed through as bits.
        states: StateFlags::from_bits_retain(states.0),
        socket_id,
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

/// `sizeof(struct inet_diag_req)`, the request of that message type.
const COMPAT_REQ_LEN: usize = 60;

/// A dump request for the TCP sockets of *both* families in `states`, in one walk of the
/// kernel's tables.
///
/// `SOCK_DIAG_BY_FAMILY` requests name one family, and the kernel walks its whole TCP hash
/// table (shared by every network namespace) once per request, whatever the family asked
/// for. The older `TCPDIAG_GETSOCK` request (`struct inet_diag_req`) is answered with the
/// family left unspecified (`inet_diag_dump_compat` in `net/ipv4/inet_diag.c`): one walk
/// returns IPv4 and IPv6 sockets alike, in the same `inet_diag_msg` replies, which then carry
/// the request's message type. Half the walks matters when a hundred namespaces are dumped.
pub fn inet_compat_request(seq: u32, states: StateMask, ext: Extensions) -> Vec<u8> {
    let extensions = ext.bits();
    let len = 16 + COMPAT_REQ_LEN;
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // idiag_family (unused by the dump), idiag_src_len, idiag_dst_len, idiag_ext.
    buf.extend_from_slice(&[0, 0, 0, extensions]);
    // struct inet_diag_sockid, all wildcards, and no cookie.
    buf.extend_from_slice(&[0; 48]);
    buf.extend_from_slice(&states.0.to_ne_bytes());
    // idiag_dbs: not used by the kernel.
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf
}

/// `idiag_cookie`, two `__u32` in host order, the low half first
/// (`sock_diag_save_cookie`).
fn cookie(msg: &[u8]) -> Option<u64> {
    let low = read_u32(msg, 44)?;
    let high = read_u32(msg, 48)?;
    Some(u64::from(high) << 32 | u64::from(low))
}

/// Decode one `inet_diag_msg` and its attributes from a dump that asked for `asked`.
///
/// Bound-inactive sockets arrive as `TCP_CLOSE`: the kernel asks the bind table for them but
/// reports their real state. A dump that walks the bind table (bit 13 asked) can yield
/// `TCP_CLOSE` from nowhere else, because the kernel takes a socket out of its listening and
/// established tables before it stores `TCP_CLOSE`. So under such a dump `TCP_CLOSE` decodes
/// as [`TcpState::BoundInactive`], and as [`TcpState::Close`] otherwise.
///
/// # Errors
///
/// [`ReplyError`] when the message is shorter than `inet_diag_msg`, names a family other than
/// `AF_INET`/`AF_INET6`, or carries a malformed attribute.
pub fn parse_inet_msg(payload: &[u8], asked: StateMask) -> Result<InetSock, ReplyError> {
    let too_short = || ReplyError::Short {
        what: "inet_diag_msg",
        need: MSG_LEN,
        have: payload.len(),
    };
    let msg = payload.get(..MSG_LEN).ok_or_else(too_short)?;
    let at = |offset| read_u32(msg, offset).ok_or_else(too_short);
    let (Some([raw_family, raw_state, raw_timer, retrans]), Some(sport), Some(dport)) = (
        bytes_at::<4>(msg, 0),
        bytes_at(msg, 4).map(u16::from_be_bytes),
        bytes_at(msg, 6).map(u16::from_be_bytes),
    ) else {
        return Err(too_short());
    };
    let (Some(src), Some(dst)) = (bytes_at::<16>(msg, 8), bytes_at::<16>(msg, 24)) else {
        return Err(too_short());
    };
    let ifindex = at(40)?;
    let (family, local, peer) = match raw_family {
        AF_INET => {
            let v4 = |addr: [u8; 16], port| {
                let [a, b, c, d, ..] = addr;
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port))
            };
            (Family::Inet, v4(src, sport), v4(dst, dport))
        }
        AF_INET6 => {
            let v6 = |addr: [u8; 16], port| {
                let ip = Ipv6Addr::from(addr);
                // The interface only qualifies a link-local address; elsewhere it is just the
                // device the socket is bound to.
                let scope = if ip.is_unicast_link_local() {
                    ifindex
                } else {
                    0
                };
                SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))
            };
            (Family::Inet6, v6(src, sport), v6(dst, dport))
        }
        other => return Err(ReplyError::Family(other)),
    };
    let state = match tcp_state(raw_state) {
        TcpState::Close if asked.has_bound_inactive() => TcpState::BoundInactive,
        state => state,
    };
    let mut sock = InetSock {
        family,
        state,
        local,
        peer,
        recv_q: at(56)?,
        send_q: at(60)?,
        uid: at(64)?,
        inode: u64::from(at(68)?),
        drops: None,
        rmem: None,
        tcp_info: None,
        timer: timer(raw_timer, retrans, at(52)?),
        ifindex,
        cookie: cookie(msg).ok_or_else(too_short)?,
    };
    for attr in attributes(payload.get(MSG_LEN..).unwrap_or_default()) {
        match attr? {
            (INET_DIAG_INFO, raw) => sock.tcp_info = Some(parse_tcp_info(raw)),
            (INET_DIAG_SKMEMINFO, raw) => {
                sock.drops = read_u32(raw, SKMEMINFO_DROPS_AT);
                sock.rmem = read_u32(raw, SKMEMINFO_RMEM_ALLOC_AT)
                    .zip(read_u32(raw, SKMEMINFO_RCVBUF_AT))
                    .map(|(alloc, rcvbuf)| RecvMem { alloc, rcvbuf });
            }
            _ => {}
        }
    }
    Ok(sock)
}

/// `idiag_timer`: 0 none, 1 retransmission, 2 keepalive, 3 `TIME_WAIT`, 4 zero-window
/// probe (`ss` names them on, keepalive, timewait, persist).
fn timer(raw: u8, retrans: u8, expires_ms: u32) -> Option<TcpTimer> {
    let kind = match raw {
        0 => return None,
        1 => TimerKind::Retransmit,
        2 => TimerKind::Keepalive,
        3 => TimerKind::TimeWait,
        4 => TimerKind::Probe,
        other => TimerKind::Other(other),
    };
    Some(TcpTimer {
        kind,
        retrans,
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_number_decodes() {
        let names: Vec<_> = (0..=14).map(|n| tcp_state(n).key()).collect();
        assert_eq!(
            names,
            [
                "STATE_0",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT1",
                "FIN_WAIT2",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "CLOSING",
                "SYN_RECV",
                "BOUND_INACTIVE",
                "STATE_14",
            ]
        );
    }

    #[test]
    fn request_bytes_match_inet_diag_req_v2() {
        let states = StateMask::only(&[TcpState::Listen, TcpState::SynRecv]);
        let ext = Extensions {
            tcp_info: true,
            skmeminfo: true,
        };
        let req = inet_request(41, Family::Inet6, states, ext);
        assert_eq!(req.len(), 16 + 56, "nlmsghdr + inet_diag_req_v2");
        assert_eq!(req[..4], 72u32.to_ne_bytes());
        assert_eq!(req[4..6], 20u16.to_ne_bytes(), "SOCK_DIAG_BY_FAMILY");
        assert_eq!(
            req[6..8],
            0x301u16.to_ne_bytes(),
            "NLM_F_REQUEST | NLM_F_DUMP"
        );
        assert_eq!(req[8..12], 41u32.to_ne_bytes());
        assert_eq!(req[16..20], [AF_INET6, IPPROTO_TCP, 0x42, 0]);
        let bits = (1u32 << 10) | (1 << 3) | (1 << 12);
        assert_eq!(req[20..24], bits.to_ne_bytes());
        assert!(req[24..].iter().all(|&b| b == 0), "wildcard socket id");
    }

    #[test]
    fn udp_request_names_udp_and_its_two_states() {
        let ext = Extensions {
            skmeminfo: true,
            ..Extensions::default()
        };
        let req = udp_request(3, Family::Inet, ext);
        assert_eq!(req[16..20], [AF_INET, IPPROTO_UDP, 0x40, 0]);
        assert_eq!(req[20..24], ((1u32 << 1) | (1 << 7)).to_ne_bytes());
    }

    #[test]
    fn all_reaches_request_and_bound_inactive_sockets() {
        let all = StateMask::ALL.0;
        assert_eq!(all, 0b11_1111_1111_1110);
        let req = inet_request(1, Family::Inet, StateMask::ALL, Extensions::default());
        assert_eq!(req[20..24], all.to_ne_bytes(), "no bit lost by the crate");
    }

    #[test]
    fn compat_request_bytes_match_inet_diag_req() {
        let states = StateMask::only(&[TcpState::CloseWait, TcpState::SynRecv]);
        let ext = Extensions {
            tcp_info: true,
            skmeminfo: true,
        };
        let req = inet_compat_request(7, states, ext);
        assert_eq!(req.len(), 16 + 60, "nlmsghdr + inet_diag_req");
        assert_eq!(req[..4], 76u32.to_ne_bytes());
        assert_eq!(req[4..6], 18u16.to_ne_bytes(), "TCPDIAG_GETSOCK");
        assert_eq!(req[6..8], 0x301u16.to_ne_bytes());
        assert_eq!(req[8..12], 7u32.to_ne_bytes());
        // Same extension bits as the v2 request: 1 << (attribute - 1).
        let v2 = inet_request(7, Family::Inet, states, ext);
        assert_eq!(req[16..20], [0, 0, 0, v2[18]]);
        assert_eq!(req[16 + 3], 0x42);
        assert!(req[20..68].iter().all(|&b| b == 0), "wildcard socket id");
        assert_eq!(req[68..72], v2[20..24], "the same state bits");
        assert_eq!(req[72..76], [0; 4]);
    }
}
