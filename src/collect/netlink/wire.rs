//! Netlink framing: message headers, attributes, and the checks every reply datagram must pass
//! before a payload is looked at.
//!
//! Pure functions over `&[u8]`; nothing here allocates or touches a socket. Layouts are from
//! `include/uapi/linux/netlink.h`: `struct nlmsghdr` is 16 bytes in host byte order, messages
//! and attributes start on 4-byte boundaries (`NLMSG_ALIGN`, `NLA_ALIGN`).

use std::fmt;

use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

/// `TCPDIAG_GETSOCK`: the message type of the original, pre-`sock_diag` TCP dump request
/// (`include/uapi/linux/inet_diag.h`), which Linux still serves for compatibility; its
/// replies carry the same type.
pub const TCPDIAG_GETSOCK: u16 = 18;
/// `sizeof(struct nlmsghdr)`.
pub(super) const HEADER_LEN: usize = 16;
/// `sizeof(struct nlattr)`.
const ATTR_HEADER_LEN: usize = 4;
/// The attribute type without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const ATTR_TYPE_MASK: u16 = 0x3fff;

/// What is wrong with a reply: the kernel said no, or the bytes do not add up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// `NLMSG_ERROR`: the kernel refused the request.
    #[error("the kernel refused the request: {0}")]
    Refused(Errno),
    /// `NLMSG_DONE` carrying an error: the kernel gave up part way through the dump.
    #[error("the kernel ended the dump with an error: {0}")]
    Aborted(Errno),
    #[error("the kernel reported lost messages (NLMSG_OVERRUN)")]
    Overrun,
    #[error("{what} is {have} bytes, shorter than the {need} bytes it must hold")]
    Short {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("{what} claims {claimed} bytes where {room} are left")]
    BadLength {
        what: &'static str,
        claimed: usize,
        room: usize,
    },
    #[error("a reply has sequence number {found}, expected {expected}")]
    Sequence { expected: u32, found: u32 },
    #[error("a reply is addressed to netlink port {found}, expected {expected}")]
    Port { expected: u32, found: u32 },
    #[error("unexpected netlink message type {0}")]
    MessageType(u16),
    #[error("unexpected address family {0} in a socket message")]
    Family(u8),
    #[error("{0} bytes follow NLMSG_DONE")]
    AfterDone(usize),
}

/// A positive errno from the kernel, shown with its name where it is a common one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The symbolic name of the errnos a `sock_diag` request can meet.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            4 => "EINTR",
            12 => "ENOMEM",
            13 => "EACCES",
            16 => "EBUSY",
            22 => "EINVAL",
            90 => "EMSGSIZE",
            93 => "EPROTONOSUPPORT",
            95 => "EOPNOTSUPP",
            97 => "EAFNOSUPPORT",
            105 => "ENOBUFS",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0);
        match self.name() {
            Some(name) => write!(f, "{name}: {text}"),
            None => write!(f, "errno {}: {text}", self.0),
        }
    }
}

/// What one datagram contributed to a dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Socket messages handed to the callback.
    pub messages: usize,
    /// `NLMSG_DONE` was seen: the dump is complete.
    pub done: bool,
    /// A message carried `NLM_F_DUMP_INTR`: the kernel's tables changed during the walk, so
    /// the dump may have missed or repeated sockets.
    pub interrupted: bool,
}

/// Walk one received datagram of a dump reply.
///
/// Every message must carry `expect_seq` and `expect_pid` (the request's sequence number and
/// the receiving socket's port id). Each socket message's payload (`SOCK_DIAG_BY_FAMILY`, or
/// `TCPDIAG_GETSOCK` in reply to that older request) goes to `on_message`, whose error stops
/// the walk. `NLMSG_NOOP` is skipped; `NLMSG_ERROR`,
/// `NLMSG_OVERRUN` and an `NLMSG_DONE` with a negative errno are errors.
///
/// # Errors
///
/// A [`ReplyError`] for a kernel-reported error or any length, alignment or header that does
/// not add up; `on_message`'s own error is passed through.
pub fn parse_datagram<F>(
    buf: &[u8],
    expect_seq: u32,
    expect_pid: u32,
    mut on_message: F,
) -> Result<Progress, ReplyError>
where
    F: FnMut(&[u8]) -> Result<(), ReplyError>,
{
    if buf.is_empty() {
        return Err(ReplyError::Short {
            what: "reply datagram",
            need: HEADER_LEN,
            have: 0,
        });
    }
    let mut progress = Progress::default();
    let mut rest = buf;
    while !rest.is_empty() {
        if progress.done {
            return Err(ReplyError::AfterDone(rest.len()));
        }
        let (header, payload) = split_message(rest)?;
        if header.seq != expect_seq {
            return Err(ReplyError::Sequence {
                expected: expect_seq,
                found: header.seq,
            });
        }
        if header.pid != expect_pid {
            return Err(ReplyError::Port {
                expected: expect_pid,
                found: header.pid,
            });
        }
        progress.interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
        match header.kind {
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                on_message(payload)?;
                progress.messages += 1;
            }
            NLMSG_NOOP => {}
            NLMSG_DONE => {
                // The payload is the dump's final errno (0 on success); very old kernels send
                // none at all.
                match read_i32(payload, 0) {
                    Some(errno) if errno < 0 => {
                        return Err(ReplyError::Aborted(Errno(errno.saturating_neg())));
                    }
                    _ => progress.done = true,
                }
            }
            NLMSG_ERROR => {
                let errno = read_i32(payload, 0).ok_or(ReplyError::Short {
                    what: "NLMSG_ERROR payload",
                    need: 4,
                    have: payload.len(),
                })?;
                // Error 0 is an acknowledgement: the request is over and nothing more follows.
                if errno == 0 {
                    progress.done = true;
                } else {
                    return Err(ReplyError::Refused(Errno(errno.saturating_neg())));
                }
            }
            NLMSG_OVERRUN => return Err(ReplyError::Overrun),
            other => return Err(ReplyError::MessageType(other)),
        }
        rest = rest.get(aligned(header.len)..).unwrap_or_default();
    }
    Ok(progress)
}

#[derive(Debug, Clone, Copy)]
struct Header {
    len: usize,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

/// Split the first message off `buf`: its header and its payload.
fn split_message(buf: &[u8]) -> Result<(Header, &[u8]), ReplyError> {
    let (Some(len), Some(kind), Some(flags), Some(seq), Some(pid)) = (
        read_u32(buf, 0),
        read_u16(buf, 4),
        read_u16(buf, 6),
        read_u32(buf, 8),
        read_u32(buf, 12),
    ) else {
        return Err(ReplyError::Short {
            what: "netlink message header",
            need: HEADER_LEN,
            have: buf.len(),
        });
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len < HEADER_LEN || len > buf.len() {
        return Err(ReplyError::BadLength {
            what: "netlink message",
            claimed: len,
            room: buf.len(),
        });
    }
    let header = Header {
        len,
        kind,
        flags,
        seq,
        pid,
    };
    let payload = buf.get(HEADER_LEN..len).unwrap_or_default();
    Ok((header, payload))
}

/// The attributes (`struct nlattr` + payload, repeated) that follow a fixed-size message.
pub(super) fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { rest: buf }
}

/// Iterator over `(type, payload)`; the first malformed attribute yields an error and ends it.
pub(super) struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(u16, &'a [u8]), ReplyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = std::mem::take(&mut self.rest);
        let Some(&[l0, l1, t0, t1]) = buf.get(..ATTR_HEADER_LEN) else {
            return Some(Err(ReplyError::Short {
                what: "attribute header",
                need: ATTR_HEADER_LEN,
                have: buf.len(),
            }));
        };
        let len = usize::from(u16::from_ne_bytes([l0, l1]));
        if len < ATTR_HEADER_LEN || len > buf.len() {
            return Some(Err(ReplyError::BadLength {
                what: "attribute",
                claimed: len,
                room: buf.len(),
            }));
        }
        let kind = u16::from_ne_bytes([t0, t1]) & ATTR_TYPE_MASK;
        let payload = buf.get(ATTR_HEADER_LEN..len).unwrap_or_default();
        // The last attribute's padding may be cut off by the message's end.
        self.rest = buf.get(aligned(len)..).unwrap_or_default();
        Some(Ok((kind, payload)))
    }
}

/// Round up to the next 4-byte boundary (`NLMSG_ALIGN`, `NLA_ALIGN`).
fn aligned(len: usize) -> usize {
    len.checked_next_multiple_of(4).unwrap_or(usize::MAX)
}

/// The `N` bytes at `at`, if `buf` holds them.
pub(super) fn bytes_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(super) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    bytes_at(buf, at).map(u16::from_ne_bytes)
}

pub(super) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    bytes_at(buf, at).map(u32::from_ne_bytes)
}

pub(super) fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    bytes_at(buf, at).map(u64::from_ne_bytes)
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    bytes_at(buf, at).map(i32::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink message with the given header fields and payload, padded to 4 bytes.
    fn message(kind: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(HEADER_LEN + payload.len()).expect("small test message");
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&pid.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(aligned(out.len()), 0);
        out
    }

    fn collect(buf: &[u8]) -> Result<(Progress, Vec<Vec<u8>>), ReplyError> {
        let mut seen = Vec::new();
        let progress = parse_datagram(buf, 7, 99, |payload| {
            seen.push(payload.to_vec());
            Ok(())
        })?;
        Ok((progress, seen))
    }

    #[test]
    fn replies_to_the_compat_request_are_socket_messages_too() {
        let mut buf = message(TCPDIAG_GETSOCK, 2, 7, 99, b"abc");
        buf.extend(message(NLMSG_DONE, 2, 7, 99, &0i32.to_ne_bytes()));
        let (progress, seen) = collect(&buf).expect("well-formed datagram");
        assert_eq!(seen, vec![b"abc".to_vec()]);
        assert!(progress.done);
    }

    #[test]
    fn several_messages_in_one_datagram_each_reach_the_callback() {
        let mut buf = message(SOCK_DIAG_BY_FAMILY, 2, 7, 99, b"abc");
        buf.extend(message(NLMSG_NOOP, 0, 7, 99, b""));
        buf.extend(message(SOCK_DIAG_BY_FAMILY, 2, 7, 99, b"defgh"));
        let (progress, seen) = collect(&buf).expect("well-formed datagram");
        assert_eq!(seen, vec![b"abc".to_vec(), b"defgh".to_vec()]);
        assert_eq!(progress.messages, 2);
        assert!(!progress.done);
        assert!(!progress.interrupted);
    }

    #[test]
    fn done_ends_the_dump_and_nothing_may_follow_it() {
        let done = message(NLMSG_DONE, 2, 7, 99, &0i32.to_ne_bytes());
        assert!(collect(&done).expect("done").0.done);
        // Very old kernels sent NLMSG_DONE without the errno.
        assert!(
            collect(&message(NLMSG_DONE, 2, 7, 99, b""))
                .expect("bare done")
                .0
                .done
        );
        let mut after = done.clone();
        after.extend(message(SOCK_DIAG_BY_FAMILY, 2, 7, 99, b"late"));
        assert_eq!(collect(&after), Err(ReplyError::AfterDone(20)));
    }

    #[test]
    fn error_zero_is_an_acknowledgement() {
        let ack = message(NLMSG_ERROR, 0, 7, 99, &0i32.to_ne_bytes());
        assert!(collect(&ack).expect("ack").0.done);
    }

    #[test]
    fn overrun_and_unknown_types_are_errors() {
        assert_eq!(
            collect(&message(NLMSG_OVERRUN, 0, 7, 99, b"")),
            Err(ReplyError::Overrun)
        );
        assert_eq!(
            collect(&message(16, 0, 7, 99, b"")),
            Err(ReplyError::MessageType(16))
        );
    }

    #[test]
    fn dump_intr_is_reported_not_fatal() {
        let buf = message(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, 7, 99, b"x");
        let (progress, seen) = collect(&buf).expect("interrupted is not an error");
        assert!(progress.interrupted);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn foreign_sequence_or_port_is_rejected() {
        assert_eq!(
            collect(&message(SOCK_DIAG_BY_FAMILY, 2, 6, 99, b"")),
            Err(ReplyError::Sequence {
                expected: 7,
                found: 6
            })
        );
        assert_eq!(
            collect(&message(SOCK_DIAG_BY_FAMILY, 2, 7, 98, b"")),
            Err(ReplyError::Port {
                expected: 99,
                found: 98
            })
        );
    }

    #[test]
    fn lying_message_lengths_are_errors() {
        let good = message(SOCK_DIAG_BY_FAMILY, 2, 7, 99, b"abcd");
        for lie in [0u32, 15, 21, u32::MAX] {
            let mut buf = good.clone();
            buf[..4].copy_from_slice(&lie.to_ne_bytes());
            assert!(
                matches!(collect(&buf), Err(ReplyError::BadLength { .. })),
                "length {lie}"
            );
        }
        assert!(matches!(collect(&[]), Err(ReplyError::Short { .. })));
        assert!(matches!(
            collect(&good[..10]),
            Err(ReplyError::Short { .. })
        ));
        // A few stray bytes after a valid message are a header too short to read.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(collect(&trailing), Err(ReplyError::Short { .. })));
    }

    #[test]
    fn last_message_may_lack_its_padding() {
        let mut buf = message(SOCK_DIAG_BY_FAMILY, 2, 7, 99, b"abc");
        buf.pop();
        assert_eq!(
            collect(&buf).expect("unpadded end").1,
            vec![b"abc".to_vec()]
        );
    }

    #[test]
    fn attributes_are_walked_in_place_and_checked() {
        let mut buf = Vec::new();
        for (kind, payload) in [(2u16 | 0x8000, &b"xy"[..]), (7, &b"12345678"[..])] {
            let len = u16::try_from(ATTR_HEADER_LEN + payload.len()).expect("small attribute");
            buf.extend_from_slice(&len.to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(payload);
            buf.resize(aligned(buf.len()), 0);
        }
        let attrs: Vec<_> = attributes(&buf).collect::<Result<_, _>>().expect("valid");
        assert_eq!(attrs, vec![(2, &b"xy"[..]), (7, &b"12345678"[..])]);

        let mut lying = buf.clone();
        lying[..2].copy_from_slice(&200u16.to_ne_bytes());
        let mut it = attributes(&lying);
        assert!(matches!(it.next(), Some(Err(ReplyError::BadLength { .. }))));
        assert!(it.next().is_none(), "an error ends the walk");

        lying[..2].copy_from_slice(&3u16.to_ne_bytes());
        assert!(matches!(
            attributes(&lying).next(),
            Some(Err(ReplyError::BadLength { .. }))
        ));
        assert!(matches!(
            attributes(&buf[..2]).next(),
            Some(Err(ReplyError::Short { .. }))
        ));
    }

    #[test]
    fn errno_is_named() {
        assert_eq!(
            Errno(2).to_string(),
            format!("ENOENT: {}", std::io::Error::from_raw_os_error(2))
        );
        assert!(Errno(4095).to_string().starts_with("errno 4095: "));
    }
}
