//! Unix sockets: the `unix_diag_req` dump request and the `unix_diag_msg` replies.
//!
//! Layouts and numbers from `include/uapi/linux/unix_diag.h`. Mind the off-by-one there: the
//! `UDIAG_SHOW_*` request bits skip `UNIX_DIAG_SHUTDOWN` (always sent), so `UDIAG_SHOW_UID` is
//! `1 << 6` while the attribute it asks for, `UNIX_DIAG_UID`, is 7.

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::{
    AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SockDiagMessage, UDIAG_SHOW_NAME,
    UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN, UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN,
    unix::{ShowFlags, StateFlags, UnixRequest},
};

use super::UnixSock;
use super::wire::{ReplyError, attributes, bytes_at, read_u32};
use crate::model::{UnixKind, UnixState};

/// `UDIAG_SHOW_UID` (Linux 5.3+); older kernels ignore the bit.
const UDIAG_SHOW_UID: u32 = 0x40;
/// `UNIX_DIAG_UID`: the socket owner's uid, a `__u32`.
const UNIX_DIAG_UID: u16 = 7;

/// `sizeof(struct unix_diag_msg)`.
const MSG_LEN: usize = 16;

/// `TCP_LISTEN`, the `sk_state` of a listening unix socket.
const UNIX_LISTEN: u32 = 10;

/// Which unix sockets a dump asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixStates {
    /// Every socket, in every state.
    All,
    /// Listeners only: what a refresh needs, without walking the rest into replies.
    Listening,
}

/// The `SOCK_DIAG_BY_FAMILY` dump request for the unix sockets in `states`, with name, peer,
/// queue lengths and uid.
pub fn unix_request(seq: u32, states: UnixStates) -> Vec<u8> {
    let state_bits = match states {
        // Bit n asks for sk_state n; unix sockets use 1, 2, 7 and 10, but ask for all.
        UnixStates::All => u32::MAX,
        UnixStates::Listening => 1 << UNIX_LISTEN,
    };
    let request = UnixRequest {
        state_flags: StateFlags::from_bits_retain(state_bits),
        inode: 0,
        show_flags: ShowFlags::from_bits_retain(
            UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID,
        ),
        cookie: [0; 8],
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(header, SockDiagMessage::UnixRequest(request).into());
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

/// Decode one `unix_diag_msg` and its attributes.
///
/// # Errors
///
/// [`ReplyError`] when the message is shorter than `unix_diag_msg`, is not `AF_UNIX`, or
/// carries a malformed attribute.
pub fn parse_unix_msg(payload: &[u8]) -> Result<UnixSock, ReplyError> {
    let (Some([family, kind, state, _pad]), Some(inode), Some(_cookie)) = (
        bytes_at::<4>(payload, 0),
        read_u32(payload, 4),
        bytes_at::<8>(payload, 8),
    ) else {
        return Err(ReplyError::Short {
            what: "unix_diag_msg",
            need: MSG_LEN,
            have: payload.len(),
        });
    };
    if family != AF_UNIX {
        return Err(ReplyError::Family(family));
    }
    let mut sock = UnixSock {
        kind: unix_kind(kind),
        state: unix_state(state),
        path: None,
        inode: u64::from(inode),
        peer_inode: None,
        recv_q: 0,
        send_q: 0,
        uid: None,
    };
    for attr in attributes(payload.get(MSG_LEN..).unwrap_or_default()) {
        match attr? {
            (UNIX_DIAG_NAME, raw) => sock.path = unix_name(raw),
            (UNIX_DIAG_PEER, raw) => sock.peer_inode = read_u32(raw, 0).map(u64::from),
            (UNIX_DIAG_RQLEN, raw) => {
                if let (Some(rq), Some(wq)) = (read_u32(raw, 0), read_u32(raw, 4)) {
                    (sock.recv_q, sock.send_q) = (rq, wq);
                }
            }
            (UNIX_DIAG_UID, raw) => sock.uid = read_u32(raw, 0),
            _ => {}
        }
    }
    Ok(sock)
}

fn unix_kind(raw: u8) -> UnixKind {
    match raw {
        SOCK_STREAM => UnixKind::Stream,
        SOCK_DGRAM => UnixKind::Dgram,
        SOCK_SEQPACKET => UnixKind::Seqpacket,
        other => UnixKind::Other(other),
    }
}

/// Unix sockets borrow TCP state numbers for their `sk_state`.
fn unix_state(raw: u8) -> UnixState {
    match raw {
        1 => UnixState::Connected,   // TCP_ESTABLISHED
        2 => UnixState::Connecting,  // TCP_SYN_SENT
        7 => UnixState::Unconnected, // TCP_CLOSE
        10 => UnixState::Listen,     // TCP_LISTEN
        other => UnixState::Other(other),
    }
}

/// The bound name as `ss` shows it: a path up to its terminating NUL, or for an abstract name
/// (leading NUL) `@` followed by the name with every further NUL shown as `@` too.
fn unix_name(raw: &[u8]) -> Option<String> {
    match raw.split_first() {
        None => None,
        Some((0, abstract_name)) => {
            let mut name = String::with_capacity(raw.len());
            name.push('@');
            name.extend(
                String::from_utf8_lossy(abstract_name)
                    .chars()
                    .map(|c| if c == '\0' { '@' } else { c }),
            );
            Some(name)
        }
        Some(_) => {
            let path = raw.split(|&b| b == 0).next().unwrap_or_default();
            Some(String::from_utf8_lossy(path).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_like_ss() {
        assert_eq!(unix_name(b"/run/x.sock\0").as_deref(), Some("/run/x.sock"));
        assert_eq!(unix_name(b"/run/x.sock").as_deref(), Some("/run/x.sock"));
        assert_eq!(unix_name(b"\0a\0b").as_deref(), Some("@a@b"));
        assert_eq!(unix_name(b"\0").as_deref(), Some("@"));
        assert_eq!(unix_name(b""), None);
        assert_eq!(unix_name(b"/tmp/\xff").as_deref(), Some("/tmp/\u{fffd}"));
    }

    #[test]
    fn states_and_kinds_decode() {
        assert_eq!(unix_state(1), UnixState::Connected);
        assert_eq!(unix_state(2), UnixState::Connecting);
        assert_eq!(unix_state(7), UnixState::Unconnected);
        assert_eq!(unix_state(10), UnixState::Listen);
        assert_eq!(unix_state(8), UnixState::Other(8));
        assert_eq!(unix_kind(1), UnixKind::Stream);
        assert_eq!(unix_kind(2), UnixKind::Dgram);
        assert_eq!(unix_kind(5), UnixKind::Seqpacket);
        assert_eq!(unix_kind(3), UnixKind::Other(3));
    }

    #[test]
    fn request_bytes_match_unix_diag_req() {
        let req = unix_request(9, UnixStates::All);
        assert_eq!(req.len(), 16 + 24, "nlmsghdr + unix_diag_req");
        assert_eq!(
            req[6..8],
            0x301u16.to_ne_bytes(),
            "NLM_F_REQUEST | NLM_F_DUMP"
        );
        assert_eq!(req[8..12], 9u32.to_ne_bytes());
        assert_eq!(req[16..20], [AF_UNIX, 0, 0, 0]);
        assert_eq!(req[20..24], u32::MAX.to_ne_bytes(), "every state");
        assert_eq!(
            req[28..32],
            0x55u32.to_ne_bytes(),
            "NAME | PEER | RQLEN | UID"
        );
        let listening = unix_request(9, UnixStates::Listening);
        assert_eq!(
            listening[20..24],
            (1u32 << 10).to_ne_bytes(),
            "TCP_LISTEN only"
        );
    }
}
