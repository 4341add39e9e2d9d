//! `SOCK_DESTROY`: the request that makes the kernel abort one TCP socket, and what its answer
//! means.
//!
//! The request is a `struct inet_diag_req_v2` (message type `SOCK_DESTROY` = 21,
//! `include/uapi/linux/sock_diag.h`) carrying the socket's whole `struct inet_diag_sockid`
//! exactly as a dump reported it — ports, addresses, interface *and cookie*. The kernel looks
//! the socket up by its 4-tuple and then compares the cookie (`sock_diag_check_cookie`), so a
//! socket that closed and whose 4-tuple a new connection took since is answered `ESTALE`, not
//! destroyed. `NLM_F_ACK` asks for an answer on success too: `NLMSG_ERROR` with error 0.
//!
//! The kernel side (Linux 6.18, `tcp_diag_destroy` → `sock_diag_destroy` → `tcp_abort`):
//! `EPERM` without `CAP_NET_ADMIN` over the socket's network namespace, `EOPNOTSUPP` when
//! built without `CONFIG_INET_DIAG_DESTROY`, `ENOENT` when no socket has that 4-tuple. A
//! destroyed socket gets `ECONNABORTED` as its error, sends a reset to its peer if its state
//! calls for one, and is closed and unhashed; its owner keeps the descriptor.
//!
//! Pure functions over bytes; [`super::DiagSocket::destroy`] sends them.

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, SOCK_DESTROY};

use super::InetSock;
use super::lookup::{Exact, exact_request};
use super::wire::{Errno, ReplyError};
use crate::model::Family;

/// The `SOCK_DESTROY` request for exactly `sock`, as sent on the wire.
pub fn destroy_request(seq: u32, sock: &InetSock) -> Vec<u8> {
    // The low half of the cookie first, as the kernel wrote it.
    let low = u32::try_from(sock.cookie & u64::from(u32::MAX)).unwrap_or_default();
    let high = u32::try_from(sock.cookie >> 32).unwrap_or_default();
    exact_request(&Exact {
        seq,
        message_type: SOCK_DESTROY,
        flags: NLM_F_REQUEST | NLM_F_ACK,
        family: match sock.family {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        },
        ext: 0,
        // Not read by an exact lookup.
        states: 0,
        local: sock.local,
        peer: sock.peer,
        ifindex: sock.ifindex,
        cookie: [low, high],
    })
}

/// What became of one socket the kernel was asked to destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyOutcome {
    Destroyed,
    /// No longer there: closed since it was selected (`ENOENT`), or its 4-tuple now belongs to
    /// another socket (`ESTALE`, the cookie did not match).
    Gone,
    /// `EPERM`/`EACCES`: no `CAP_NET_ADMIN` over the socket's network namespace.
    Denied,
    /// `EOPNOTSUPP`: the kernel was built without `CONFIG_INET_DIAG_DESTROY`.
    Unsupported,
    /// Any other refusal.
    Failed(Errno),
}

/// The outcome the kernel's answer to a `SOCK_DESTROY` request means: `Ok` for its
/// acknowledgement, or the refusal [`super::parse_datagram`] found.
pub fn destroy_outcome(answer: &Result<(), ReplyError>) -> Result<DestroyOutcome, ReplyError> {
    use rustix::io::Errno as E;
    let errno = match answer {
        Ok(()) => return Ok(DestroyOutcome::Destroyed),
        Err(ReplyError::Refused(errno)) => *errno,
        Err(other) => return Err(other.clone()),
    };
    let is = |known: E| known.raw_os_error() == errno.0;
    Ok(if is(E::NOENT) || is(E::STALE) {
        DestroyOutcome::Gone
    } else if is(E::PERM) || is(E::ACCESS) {
        DestroyOutcome::Denied
    } else if is(E::OPNOTSUPP) {
        DestroyOutcome::Unsupported
    } else {
        DestroyOutcome::Failed(errno)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::netlink::parse_datagram;
    use crate::model::TcpState;
    use netlink_packet_sock_diag::IPPROTO_TCP;

    fn sock(local: &str, peer: &str, family: Family, cookie: u64) -> InetSock {
        InetSock {
            family,
            state: TcpState::CloseWait,
            local: local.parse().expect("an address"),
            peer: peer.parse().expect("an address"),
            recv_q: 1,
            send_q: 0,
            inode: 4242,
            uid: 0,
            drops: None,
            rmem: None,
            tcp_info: None,
            timer: None,
            ifindex: 3,
            cookie,
        }
    }

    #[test]
    fn request_bytes_are_inet_diag_req_v2_with_the_exact_socket_id() {
        let s = sock(
            "127.0.0.1:5001",
            "127.0.0.2:40000",
            Family::Inet,
            0x1122_3344_5566_7788,
        );
        let req = destroy_request(9, &s);
        assert_eq!(req.len(), 72);
        assert_eq!(req[..4], 72u32.to_ne_bytes());
        assert_eq!(req[4..6], 21u16.to_ne_bytes(), "SOCK_DESTROY");
        assert_eq!(req[6..8], 5u16.to_ne_bytes(), "NLM_F_REQUEST | NLM_F_ACK");
        assert_eq!(req[8..12], 9u32.to_ne_bytes());
        assert_eq!(req[12..16], [0; 4]);
        assert_eq!(req[16..20], [AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(req[20..24], [0; 4]);
        assert_eq!(req[24..26], 5001u16.to_be_bytes());
        assert_eq!(req[26..28], 40000u16.to_be_bytes());
        assert_eq!(
            req[28..44],
            [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            req[44..60],
            [127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(req[60..64], 3u32.to_ne_bytes());
        assert_eq!(
            req[64..68],
            0x5566_7788u32.to_ne_bytes(),
            "cookie[0]: low half"
        );
        assert_eq!(
            req[68..72],
            0x1122_3344u32.to_ne_bytes(),
            "cookie[1]: high half"
        );
    }

    #[test]
    fn a_mapped_ipv6_socket_keeps_its_family_and_addresses() {
        let s = sock("[::ffff:127.0.0.1]:80", "[::1]:41000", Family::Inet6, 7);
        let req = destroy_request(1, &s);
        assert_eq!(req[16], AF_INET6);
        let local: std::net::Ipv6Addr = "::ffff:127.0.0.1".parse().expect("v6");
        assert_eq!(req[28..44], local.octets());
        assert_eq!(req[44..60], std::net::Ipv6Addr::LOCALHOST.octets());
    }

    /// A reply as the kernel sends it: one `NLMSG_ERROR` with `error` (0: the ack).
    fn answer(error: i32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&36u32.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&9u32.to_ne_bytes());
        out.extend_from_slice(&77u32.to_ne_bytes());
        out.extend_from_slice(&error.to_ne_bytes());
        // The request's own header, echoed.
        out.extend_from_slice(&[0; 16]);
        out
    }

    fn outcome_of(error: i32) -> Result<DestroyOutcome, ReplyError> {
        let parsed =
            parse_datagram(&answer(error), 9, 77, |_| Err(ReplyError::MessageType(20))).map(drop);
        destroy_outcome(&parsed)
    }

    #[test]
    fn the_answer_is_destroyed_gone_denied_unsupported_or_failed() {
        assert_eq!(outcome_of(0), Ok(DestroyOutcome::Destroyed));
        assert_eq!(outcome_of(-2), Ok(DestroyOutcome::Gone), "ENOENT");
        assert_eq!(outcome_of(-116), Ok(DestroyOutcome::Gone), "ESTALE");
        assert_eq!(outcome_of(-1), Ok(DestroyOutcome::Denied), "EPERM");
        assert_eq!(outcome_of(-95), Ok(DestroyOutcome::Unsupported));
        assert_eq!(
            outcome_of(-22),
            Ok(DestroyOutcome::Failed(Errno(22))),
            "EINVAL"
        );
        let foreign = parse_datagram(&answer(0), 8, 77, |_| Ok(())).map(drop);
        assert!(
            destroy_outcome(&foreign).is_err(),
            "another request's answer"
        );
    }
}
