//! The exact lookup of one TCP socket by its 4-tuple: a `sock_diag` request without
//! `NLM_F_DUMP`, and what its answer means.
//!
//! The request is a `struct inet_diag_req_v2` (`SOCK_DIAG_BY_FAMILY`) naming the socket's
//! ports and addresses, any interface and `INET_DIAG_NOCOOKIE` (both halves `~0`): the
//! kernel (Linux 6.18, `inet_diag_cmd_exact` → `inet_diag_find_one_icsk`) looks the 4-tuple
//! up in its hash table, as an arriving segment would, and answers with the socket's
//! `inet_diag_msg` (a full socket, a `TIME_WAIT` one or a request socket) or `ENOENT`. A
//! lookup costs one hash probe, not a walk of the table. Without `NLM_F_ACK` either answer
//! is one datagram, so a lookup is one request and one read.
//!
//! The lookup is the one an arriving segment makes: with no connection of that 4-tuple it
//! falls back to a listener on the local port, which is then no connection either
//! ([`LookupOutcome::Absent`]). An IPv4 4-tuple finds a dual-stack IPv6 socket talking to
//! that IPv4 peer too: both live in the same table under their IPv4 addresses.
//!
//! Pure functions over bytes; [`super::DiagSocket::find_tcp`] sends them.

use std::net::SocketAddr;

use netlink_packet_core::NLM_F_REQUEST;
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY};

use super::wire::{HEADER_LEN, ReplyError};
use super::{Extensions, InetSock, StateMask};
use crate::model::TcpState;

/// `sizeof(struct inet_diag_req_v2)`.
const REQ_LEN: usize = 56;

/// `INET_DIAG_NOCOOKIE`: both halves of the cookie, "any socket with this 4-tuple".
const NO_COOKIE: u32 = !0;

/// The exact lookup request for the TCP socket whose own address is `local` and whose peer
/// is `peer`, with the extensions `ext` in the answer. Both must be of one family; an IPv4
/// pair is asked as `AF_INET`.
pub fn lookup_request(seq: u32, local: SocketAddr, peer: SocketAddr, ext: Extensions) -> Vec<u8> {
    exact_request(&Exact {
        seq,
        message_type: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST,
        family: if local.is_ipv4() { AF_INET } else { AF_INET6 },
        ext: ext.bits(),
        // Not read by an exact lookup; every state is asked for the reader's sake.
        states: StateMask::ALL.0,
        local,
        peer,
        // Any interface, any socket with this 4-tuple.
        ifindex: 0,
        cookie: [NO_COOKIE, NO_COOKIE],
    })
}

/// A request naming exactly one TCP socket: what an exact lookup and `SOCK_DESTROY` send.
pub(super) struct Exact {
    pub(super) seq: u32,
    pub(super) message_type: u16,
    pub(super) flags: u16,
    pub(super) family: u8,
    /// `idiag_ext`.
    pub(super) ext: u8,
    /// `idiag_states`.
    pub(super) states: u32,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
    pub(super) ifindex: u32,
    /// The cookie's low half first, as the kernel writes it.
    pub(super) cookie: [u32; 2],
}

/// The netlink message of `r`: a header and a `struct inet_diag_req_v2`.
pub(super) fn exact_request(r: &Exact) -> Vec<u8> {
    let len = HEADER_LEN + REQ_LEN;
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend_from_slice(&r.message_type.to_ne_bytes());
    buf.extend_from_slice(&r.flags.to_ne_bytes());
    buf.extend_from_slice(&r.seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // sdiag_family, sdiag_protocol, idiag_ext, pad.
    buf.extend_from_slice(&[r.family, IPPROTO_TCP, r.ext, 0]);
    buf.extend_from_slice(&r.states.to_ne_bytes());
    buf.extend_from_slice(&r.local.port().to_be_bytes());
    buf.extend_from_slice(&r.peer.port().to_be_bytes());
    buf.extend_from_slice(&address(r.local));
    buf.extend_from_slice(&address(r.peer));
    buf.extend_from_slice(&r.ifindex.to_ne_bytes());
    buf.extend_from_slice(&r.cookie[0].to_ne_bytes());
    buf.extend_from_slice(&r.cookie[1].to_ne_bytes());
    buf
}

/// `idiag_src` / `idiag_dst`: 16 bytes, an IPv4 address in the first 4 (as the kernel fills
/// them in a dump).
fn address(addr: SocketAddr) -> [u8; 16] {
    match addr {
        SocketAddr::V4(v4) => {
            let mut out = [0; 16];
            out[..4].copy_from_slice(&v4.ip().octets());
            out
        }
        SocketAddr::V6(v6) => v6.ip().octets(),
    }
}

/// What an exact lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupOutcome {
    /// A connection with that 4-tuple exists, in any state (`TIME_WAIT` and request sockets
    /// included).
    Present(TcpState),
    /// No connection has that 4-tuple: `ENOENT`, or only a listener on the local port.
    Absent,
}

/// The outcome of a lookup from the socket its answer carried (`found`), or the refusal
/// [`super::parse_datagram`] reported.
///
/// # Errors
///
/// Any answer but a socket or `ENOENT`: the lookup says nothing then.
pub fn lookup_outcome(
    found: Option<&InetSock>,
    answer: &Result<(), ReplyError>,
) -> Result<LookupOutcome, ReplyError> {
    match (found, answer) {
        (Some(s), Ok(())) if s.state == TcpState::Listen => Ok(LookupOutcome::Absent),
        (Some(s), Ok(())) => Ok(LookupOutcome::Present(s.state)),
        (None, Err(ReplyError::Refused(errno)))
            if errno.0 == rustix::io::Errno::NOENT.raw_os_error() =>
        {
            Ok(LookupOutcome::Absent)
        }
        (None, Ok(())) => Err(ReplyError::MessageType(0)),
        (_, Err(other)) => Err(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::netlink::parse_datagram;
    use crate::collect::netlink::wire::Errno;

    #[test]
    fn request_bytes_are_inet_diag_req_v2_with_the_tuple_and_no_cookie() {
        let req = lookup_request(
            7,
            "10.0.0.2:40000".parse().expect("addr"),
            "10.0.0.1:5020".parse().expect("addr"),
            Extensions::default(),
        );
        assert_eq!(req.len(), 72);
        assert_eq!(req[..4], 72u32.to_ne_bytes());
        assert_eq!(req[4..6], 20u16.to_ne_bytes(), "SOCK_DIAG_BY_FAMILY");
        assert_eq!(
            req[6..8],
            1u16.to_ne_bytes(),
            "NLM_F_REQUEST alone: no NLM_F_DUMP, no NLM_F_ACK"
        );
        assert_eq!(req[8..12], 7u32.to_ne_bytes());
        assert_eq!(req[16..20], [AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(req[24..26], 40000u16.to_be_bytes());
        assert_eq!(req[26..28], 5020u16.to_be_bytes());
        assert_eq!(req[28..32], [10, 0, 0, 2]);
        assert_eq!(req[32..44], [0; 12]);
        assert_eq!(req[44..48], [10, 0, 0, 1]);
        assert_eq!(req[60..64], [0; 4], "any interface");
        assert_eq!(req[64..72], [0xff; 8], "INET_DIAG_NOCOOKIE");
    }

    #[test]
    fn an_ipv6_tuple_is_asked_as_ipv6() {
        let req = lookup_request(
            1,
            "[fd00::2]:40000".parse().expect("addr"),
            "[fd00::1]:80".parse().expect("addr"),
            Extensions {
                tcp_info: true,
                skmeminfo: false,
            },
        );
        assert_eq!(req[16], AF_INET6);
        assert_eq!(req[18], 1 << 1, "INET_DIAG_INFO asked for");
        let local: std::net::Ipv6Addr = "fd00::2".parse().expect("v6");
        assert_eq!(req[28..44], local.octets());
    }

    /// One `NLMSG_ERROR` carrying `error`, as the kernel sends it.
    fn error_answer(error: i32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&36u32.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&3u32.to_ne_bytes());
        out.extend_from_slice(&9u32.to_ne_bytes());
        out.extend_from_slice(&error.to_ne_bytes());
        out.extend_from_slice(&[0; 16]);
        out
    }

    fn sock(state: TcpState) -> InetSock {
        InetSock {
            family: crate::model::Family::Inet,
            state,
            local: "10.0.0.2:40000".parse().expect("addr"),
            peer: "10.0.0.1:5020".parse().expect("addr"),
            recv_q: 0,
            send_q: 0,
            inode: 1,
            uid: 0,
            drops: None,
            rmem: None,
            tcp_info: None,
            timer: None,
            ifindex: 0,
            cookie: 1,
        }
    }

    #[test]
    fn a_socket_is_present_enoent_and_a_listener_are_absent_other_errors_say_nothing() {
        let answer = |error| parse_datagram(&error_answer(error), 3, 9, |_| Ok(())).map(drop);
        let est = sock(TcpState::Established);
        assert_eq!(
            lookup_outcome(Some(&est), &answer(0)),
            Ok(LookupOutcome::Present(TcpState::Established))
        );
        let tw = sock(TcpState::TimeWait);
        assert_eq!(
            lookup_outcome(Some(&tw), &answer(0)),
            Ok(LookupOutcome::Present(TcpState::TimeWait))
        );
        let listener = sock(TcpState::Listen);
        assert_eq!(
            lookup_outcome(Some(&listener), &answer(0)),
            Ok(LookupOutcome::Absent)
        );
        assert_eq!(lookup_outcome(None, &answer(-2)), Ok(LookupOutcome::Absent));
        assert_eq!(
            lookup_outcome(None, &answer(-1)),
            Err(ReplyError::Refused(Errno(1)))
        );
        assert!(
            lookup_outcome(None, &answer(0)).is_err(),
            "an ack without a socket"
        );
    }
}
