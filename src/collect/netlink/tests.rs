//! Tests over replies captured from a real kernel (`tests/fixtures/netlink/`, see its README
//! for how each was made), cases derived from them, and a live dump of this process's own
//! sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::wire::{HEADER_LEN, attributes};
use super::*;
use crate::model::{Family, TcpState, UnixKind, UnixState};

mod mask {
    use super::*;

    #[test]
    fn only_and_without_set_the_kernel_bits() {
        let listen = StateMask::only(&[TcpState::Listen]);
        assert_eq!(listen, StateMask(1 << 10));
        let syn_recv = StateMask::only(&[TcpState::SynRecv]);
        assert_eq!(syn_recv, StateMask((1 << 3) | (1 << 12)));
        assert_eq!(
            StateMask::only(&[TcpState::BoundInactive, TcpState::Other(40)]),
            StateMask(1 << 13)
        );
        assert_eq!(StateMask::only(&[]), StateMask(0));
    }

    #[test]
    fn without_syn_recv_drops_both_bits() {
        // Either bit alone makes the kernel dump request sockets.
        let rest = StateMask::ALL.without(&[TcpState::SynRecv]);
        assert_eq!(rest.0 & ((1 << 3) | (1 << 12)), 0);
        assert_ne!(rest.0 & (1 << 1), 0);
    }

    #[test]
    fn the_collector_split_covers_every_state_once() {
        let special = [TcpState::Listen, TcpState::CloseWait];
        let parts = [
            StateMask::ALL.without(&special),
            StateMask::only(&[TcpState::Listen]),
            StateMask::only(&[TcpState::CloseWait]),
        ];
        assert_eq!(parts.iter().fold(0, |acc, p| acc | p.0), StateMask::ALL.0);
        assert_eq!(parts.iter().map(|p| p.0.count_ones()).sum::<u32>(), 13);
        assert!(parts[0].has_bound_inactive());
        assert!(!parts[1].has_bound_inactive());
    }
}

/// The netlink port id the capture socket was bound to.
const PORT_ID: u32 = 424_242;

/// Split a fixture file into its datagrams (each preceded by a little-endian `u32` length).
fn datagrams(file: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = file;
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let (datagram, tail) = tail.split_at(len);
        out.push(datagram);
        rest = tail;
    }
    out
}

/// Feed a dump's datagrams in order, as the socket loop does, decoding each message with
/// `decode`; checks that `NLMSG_DONE` ends the last datagram and no earlier one.
fn feed<T>(
    file: &[u8],
    seq: u32,
    mut decode: impl FnMut(&[u8]) -> Result<T, ReplyError>,
) -> Result<Vec<T>, ReplyError> {
    let dgrams = datagrams(file);
    let mut out = Vec::new();
    for (i, datagram) in dgrams.iter().enumerate() {
        let progress = parse_datagram(datagram, seq, PORT_ID, |payload| {
            out.push(decode(payload)?);
            Ok(())
        })?;
        assert_eq!(progress.done, i + 1 == dgrams.len(), "datagram {i}");
        assert!(!progress.interrupted);
    }
    Ok(out)
}

fn inet(file: &[u8], seq: u32, asked: StateMask) -> Vec<InetSock> {
    feed(file, seq, |payload| parse_inet_msg(payload, asked)).expect("captured dump parses")
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

fn by_state(socks: &[InetSock]) -> BTreeMap<TcpState, usize> {
    let mut counts = BTreeMap::new();
    for s in socks {
        *counts.entry(s.state).or_default() += 1;
    }
    counts
}

const TCP4_LISTEN: &[u8] =
    include_bytes!("../../../tests/fixtures/netlink/tcp4_listen_skmeminfo.bin");
const TCP4_ALL: &[u8] = include_bytes!("../../../tests/fixtures/netlink/tcp4_all.bin");
const TCP4_CLOSE_WAIT: &[u8] =
    include_bytes!("../../../tests/fixtures/netlink/tcp4_close_wait_info.bin");
const TCP6_ALL: &[u8] = include_bytes!("../../../tests/fixtures/netlink/tcp6_all.bin");
const UNIX_ALL: &[u8] = include_bytes!("../../../tests/fixtures/netlink/unix_all.bin");
const TCP4_MANY: &[u8] = include_bytes!("../../../tests/fixtures/netlink/tcp4_many.bin");
const ERROR_ENOENT: &[u8] = include_bytes!("../../../tests/fixtures/netlink/error_enoent.bin");
const DONE_ENOENT: &[u8] = include_bytes!("../../../tests/fixtures/netlink/done_enoent.bin");
const DONE_EMPTY: &[u8] = include_bytes!("../../../tests/fixtures/netlink/done_empty.bin");

/// Every fixture with its sequence number.
const FIXTURES: [(&str, &[u8], u32); 9] = [
    ("tcp4_listen_skmeminfo", TCP4_LISTEN, 101),
    ("tcp4_all", TCP4_ALL, 102),
    ("tcp4_close_wait_info", TCP4_CLOSE_WAIT, 103),
    ("tcp6_all", TCP6_ALL, 104),
    ("unix_all", UNIX_ALL, 105),
    ("tcp4_many", TCP4_MANY, 106),
    ("error_enoent", ERROR_ENOENT, 107),
    ("done_enoent", DONE_ENOENT, 108),
    ("done_empty", DONE_EMPTY, 109),
];

#[cfg(target_endian = "little")]
mod captured {
    use super::*;

    #[test]
    fn listeners_carry_queue_backlog_and_drops() {
        let socks = inet(TCP4_LISTEN, 101, StateMask::only(&[TcpState::Listen]));
        assert_eq!(socks.len(), 3);
        assert!(socks.iter().all(|s| s.state == TcpState::Listen
            && s.family == Family::Inet
            && s.peer == v4(0, 0, 0, 0, 0)
            && s.inode != 0
            && s.tcp_info.is_none()));
        let full = socks
            .iter()
            .find(|s| s.local == v4(127, 0, 0, 1, 7001))
            .expect("listener 7001");
        // Backlog 4 holds backlog + 1 connections; the two SYNs after that were dropped.
        assert_eq!((full.recv_q, full.send_q, full.drops), (5, 4, Some(2)));
        let others: Vec<_> = socks.iter().filter(|s| s.local.port() != 7001).collect();
        assert!(
            others
                .iter()
                .all(|s| (s.recv_q, s.send_q, s.drops) == (0, 4, Some(0)))
        );
    }

    #[test]
    fn a_full_dump_decodes_every_state() {
        let socks = inet(TCP4_ALL, 102, StateMask::ALL);
        let expected = BTreeMap::from([
            (TcpState::Established, 13),
            (TcpState::SynRecv, 2),
            (TcpState::FinWait2, 2),
            (TcpState::TimeWait, 1),
            (TcpState::CloseWait, 2),
            (TcpState::Listen, 3),
            (TcpState::BoundInactive, 1),
        ]);
        assert_eq!(by_state(&socks), expected);

        // Request sockets: attributed by local port, no inode, no queues.
        for s in socks.iter().filter(|s| s.state == TcpState::SynRecv) {
            assert_eq!(s.local, v4(127, 0, 0, 1, 7003));
            assert_eq!((s.inode, s.recv_q, s.send_q), (0, 0, 0));
        }
        // Accepted by the kernel, not yet by the application: ESTABLISHED with inode 0 on the
        // listener's port.
        let unaccepted = socks
            .iter()
            .filter(|s| s.state == TcpState::Established && s.inode == 0)
            .inspect(|s| assert_eq!(s.local, v4(127, 0, 0, 1, 7001)))
            .count();
        assert_eq!(unaccepted, 5);

        let bound = socks
            .iter()
            .find(|s| s.state == TcpState::BoundInactive)
            .expect("bound-inactive socket");
        assert_eq!(bound.local, v4(127, 0, 0, 1, 7009));
        assert_eq!(bound.peer, v4(0, 0, 0, 0, 0));
        assert_ne!(bound.inode, 0);

        let mut close_wait: Vec<_> = socks
            .iter()
            .filter(|s| s.state == TcpState::CloseWait)
            .map(|s| (s.local.port(), s.recv_q))
            .collect();
        close_wait.sort_unstable();
        // 5 unread bytes + 1 for the FIN; and one that read to EOF.
        assert_eq!(close_wait, [(7002, 0), (7002, 6)]);

        let tw = socks
            .iter()
            .find(|s| s.state == TcpState::TimeWait)
            .expect("TIME_WAIT");
        assert_eq!((tw.peer.port(), tw.inode), (7002, 0));
        assert!(
            socks
                .iter()
                .all(|s| s.drops.is_none() && s.tcp_info.is_none())
        );
    }

    #[test]
    fn tcp_close_is_bound_inactive_only_under_a_bind_table_dump() {
        // The same bytes read as if bit 13 had not been asked for: the socket is TCP_CLOSE.
        let asked = StateMask::ALL.without(&[TcpState::BoundInactive]);
        let socks = inet(TCP4_ALL, 102, asked);
        let s = socks
            .iter()
            .find(|s| s.local.port() == 7009)
            .expect("socket on 7009");
        assert_eq!(s.state, TcpState::Close);
    }

    #[test]
    fn close_wait_sockets_carry_tcp_info() {
        let socks = inet(
            TCP4_CLOSE_WAIT,
            103,
            StateMask::only(&[TcpState::CloseWait]),
        );
        assert_eq!(socks.len(), 2);
        for s in &socks {
            let info = s.tcp_info.as_ref().expect("INET_DIAG_INFO");
            assert_eq!(info.state, Some(TcpState::CloseWait));
            let age = info.last_ack_recv.expect("tcpi_last_ack_recv");
            assert!((1..60_000).contains(&age), "age {age} ms");
            assert_eq!(info.last_ack_sent, Some(0), "never updated by Linux");
            assert!(info.rtt.is_some() && info.snd_cwnd.is_some());
            assert!(info.bytes_received.is_some() && info.min_rtt.is_some());
        }
        let unread = socks
            .iter()
            .find(|s| s.recv_q == 6)
            .expect("unread CLOSE_WAIT");
        let info = unread.tcp_info.as_ref().expect("tcp_info");
        // `hello` and the FIN, which advances the receive sequence like a byte of data.
        assert_eq!(info.bytes_received, Some(6));
    }

    #[test]
    fn ipv6_addresses_stay_ipv6() {
        let socks = inet(TCP6_ALL, 104, StateMask::ALL);
        assert_eq!(socks.len(), 5);
        assert!(socks.iter().all(|s| s.family == Family::Inet6
            && s.local.is_ipv6()
            && s.drops == Some(0)
            && s.tcp_info.is_some()));
        let listeners: BTreeSet<String> = socks
            .iter()
            .filter(|s| s.state == TcpState::Listen)
            .map(|s| s.local.to_string())
            .collect();
        assert_eq!(
            listeners,
            BTreeSet::from(["[::1]:7006".into(), "[::]:7007".into()])
        );
        // The dual-stack listener's child talks to an IPv4 client: `::ffff:127.0.0.1`.
        let mapped = socks
            .iter()
            .find(|s| s.state == TcpState::Established && s.local.port() == 7007)
            .expect("dual-stack child");
        assert_eq!(mapped.local.to_string(), "[::ffff:127.0.0.1]:7007");
        assert_eq!(mapped.peer.ip().to_string(), "::ffff:127.0.0.1");
    }

    #[test]
    fn unix_dump_names_queues_peers_and_uids() {
        let socks = feed(UNIX_ALL, 105, parse_unix_msg).expect("captured dump parses");
        assert_eq!(socks.len(), 9);
        assert!(socks.iter().all(|s| s.uid == Some(0) && s.inode != 0));

        let path = socks
            .iter()
            .find(|s| s.path.as_deref() == Some("/tmp/sockscope-fixture/listen.sock"))
            .expect("path listener");
        assert_eq!(
            (path.kind, path.state),
            (UnixKind::Stream, UnixState::Listen)
        );
        assert_eq!((path.recv_q, path.send_q, path.peer_inode), (3, 4, None));

        let named: Vec<_> = socks
            .iter()
            .filter(|s| s.path.as_deref() == Some("@sockscope@fixture"))
            .collect();
        assert_eq!(
            named.len(),
            2,
            "the abstract listener and its accepted child"
        );
        let child = named
            .iter()
            .find(|s| s.state == UnixState::Connected)
            .expect("accepted child");
        let client = socks
            .iter()
            .find(|s| s.peer_inode == Some(child.inode))
            .expect("the child's client");
        assert_eq!(child.peer_inode, Some(client.inode));

        // A client waiting in a listener's queue: its peer has no inode until accept().
        let waiting = socks.iter().filter(|s| s.peer_inode == Some(0)).count();
        assert_eq!(waiting, 3);

        let dgrams: Vec<_> = socks.iter().filter(|s| s.kind == UnixKind::Dgram).collect();
        assert_eq!(dgrams.len(), 2);
        assert!(dgrams.iter().any(|s| s.recv_q == 4));
    }

    #[test]
    fn a_dump_over_several_datagrams_yields_every_socket() {
        let dgrams = datagrams(TCP4_MANY);
        assert!(dgrams.len() >= 3, "{} datagrams", dgrams.len());
        let mut per_datagram = Vec::new();
        for datagram in &dgrams {
            let progress = parse_datagram(datagram, 106, PORT_ID, |payload| {
                parse_inet_msg(payload, StateMask::only(&[TcpState::Established])).map(drop)
            })
            .expect("each datagram stands alone");
            per_datagram.push(progress.messages);
        }
        assert!(
            per_datagram[..2].iter().all(|&n| n > 200),
            "{per_datagram:?}"
        );

        let socks = inet(TCP4_MANY, 106, StateMask::only(&[TcpState::Established]));
        assert_eq!(socks.len(), per_datagram.iter().sum::<usize>());
        assert_eq!(socks.len(), 613);
        let clients: BTreeSet<u16> = socks
            .iter()
            .filter(|s| s.peer.port() == 7008)
            .map(|s| s.local.port())
            .collect();
        let children: BTreeSet<u16> = socks
            .iter()
            .filter(|s| s.local.port() == 7008)
            .map(|s| s.peer.port())
            .collect();
        assert_eq!(clients.len(), 300);
        assert_eq!(clients, children);
    }

    #[test]
    fn replies_to_another_request_are_refused() {
        let first = datagrams(TCP4_MANY)[0];
        assert_eq!(
            parse_datagram(first, 105, PORT_ID, |_| Ok(())),
            Err(ReplyError::Sequence {
                expected: 105,
                found: 106
            })
        );
        assert_eq!(
            parse_datagram(first, 106, 1, |_| Ok(())),
            Err(ReplyError::Port {
                expected: 1,
                found: PORT_ID
            })
        );
    }

    #[test]
    fn nlmsg_error_names_the_errno() {
        let [datagram] = datagrams(ERROR_ENOENT)[..] else {
            panic!("one datagram");
        };
        let err = parse_datagram(datagram, 107, PORT_ID, |_| Ok(())).expect_err("refused");
        assert_eq!(err, ReplyError::Refused(Errno(2)));
        let err = NetlinkError::Reply {
            dump: "TCP/IPv4 sock_diag dump",
            reply: err,
        };
        assert_eq!(err.kernel_errno(), Some(2));
        assert!(
            err.to_string()
                .starts_with("TCP/IPv4 sock_diag dump: the kernel refused")
        );
        assert!(err.to_string().contains("ENOENT"), "{err}");
    }

    #[test]
    fn nlmsg_done_with_an_errno_is_an_error() {
        let datagram = datagrams(DONE_ENOENT)[0];
        assert_eq!(
            parse_datagram(datagram, 108, PORT_ID, |_| Ok(())),
            Err(ReplyError::Aborted(Errno(2)))
        );
    }

    #[test]
    fn an_empty_dump_is_just_done() {
        let datagram = datagrams(DONE_EMPTY)[0];
        let progress = parse_datagram(datagram, 109, PORT_ID, |_| Ok(())).expect("done");
        assert_eq!(
            progress,
            Progress {
                messages: 0,
                done: true,
                interrupted: false
            }
        );
    }

    #[test]
    fn dump_intr_is_noted_and_the_sockets_still_come() {
        // Derived: the real tcp4_all datagram with NLM_F_DUMP_INTR set on every message.
        let mut datagram = datagrams(TCP4_ALL)[0].to_vec();
        let mut at = 0;
        while at < datagram.len() {
            let len = u32::from_ne_bytes(datagram[at..at + 4].try_into().expect("len"));
            let flags = u16::from_ne_bytes(datagram[at + 6..at + 8].try_into().expect("flags"));
            datagram[at + 6..at + 8].copy_from_slice(&(flags | 0x10).to_ne_bytes());
            at += (len as usize).next_multiple_of(4);
        }
        let progress = parse_datagram(&datagram, 102, PORT_ID, |payload| {
            parse_inet_msg(payload, StateMask::ALL).map(drop)
        })
        .expect("interrupted is not an error");
        assert!(progress.interrupted);
        assert_eq!(progress.messages, 24);
    }
}

/// The prefix lengths of a datagram that hold only whole messages (the last one possibly
/// without its padding).
fn boundaries(datagram: &[u8]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut at = 0;
    while at < datagram.len() {
        let len = u32::from_ne_bytes(datagram[at..at + 4].try_into().expect("len")) as usize;
        out.insert(at + len);
        at = (at + len.next_multiple_of(4)).min(datagram.len());
        out.insert(at);
    }
    out
}

/// Decode a fixture's message whatever its kind, as the socket loop would.
fn decode_any(payload: &[u8], unix: bool) -> Result<(), ReplyError> {
    if unix {
        parse_unix_msg(payload).map(drop)
    } else {
        parse_inet_msg(payload, StateMask::ALL).map(drop)
    }
}

#[cfg(target_endian = "little")]
mod malformed {
    use super::*;

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for (name, file, seq) in FIXTURES {
            let unix = name.starts_with("unix");
            for datagram in datagrams(file) {
                let whole = boundaries(datagram);
                // The 32 KiB datagrams are sampled; the small ones tried at every length.
                let step = if datagram.len() > 4096 { 61 } else { 1 };
                for cut in (0..datagram.len()).step_by(step) {
                    let result =
                        parse_datagram(&datagram[..cut], seq, PORT_ID, |p| decode_any(p, unix));
                    let expect_ok =
                        whole.contains(&cut) && !matches!(name, "error_enoent" | "done_enoent");
                    assert_eq!(
                        result.is_ok(),
                        expect_ok,
                        "{name}: cut at {cut} of {}: {result:?}",
                        datagram.len()
                    );
                }
            }
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        // Derived: real datagrams with pseudo-random bytes overwritten (xorshift, fixed seed).
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (name, file, seq) in FIXTURES {
            let unix = name.starts_with("unix");
            for datagram in datagrams(file).into_iter().filter(|d| d.len() < 4096) {
                for _ in 0..2000 {
                    let mut bytes = datagram.to_vec();
                    let len = u64::try_from(bytes.len()).expect("small datagram");
                    for _ in 0..=next() % 4 {
                        let at = usize::try_from(next() % len).expect("index");
                        bytes[at] = next().to_le_bytes()[0];
                    }
                    let _ = parse_datagram(&bytes, seq, PORT_ID, |p| decode_any(p, unix));
                    let _ = parse_inet_msg(&bytes[HEADER_LEN..], StateMask::ALL);
                    let _ = parse_unix_msg(&bytes[HEADER_LEN..]);
                }
            }
        }
    }

    /// The first message of `datagram` with its payload replaced by `payload`.
    fn reframe(datagram: &[u8], payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(HEADER_LEN + payload.len()).expect("small message");
        let mut out = datagram[..HEADER_LEN].to_vec();
        out[..4].copy_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn first_payload(datagram: &[u8]) -> &[u8] {
        let len = u32::from_ne_bytes(datagram[..4].try_into().expect("len")) as usize;
        &datagram[HEADER_LEN..len]
    }

    #[test]
    fn a_short_socket_message_is_an_error() {
        let datagram = datagrams(TCP4_ALL)[0];
        let payload = first_payload(datagram);
        let cut = reframe(datagram, &payload[..71]);
        assert_eq!(
            parse_datagram(&cut, 102, PORT_ID, |p| decode_any(p, false)),
            Err(ReplyError::Short {
                what: "inet_diag_msg",
                need: 72,
                have: 71
            })
        );
        let unix = datagrams(UNIX_ALL)[0];
        let cut = reframe(unix, &first_payload(unix)[..15]);
        assert!(matches!(
            parse_datagram(&cut, 105, PORT_ID, |p| decode_any(p, true)),
            Err(ReplyError::Short {
                what: "unix_diag_msg",
                ..
            })
        ));
    }

    #[test]
    fn an_attribute_longer_than_its_message_is_an_error() {
        let datagram = datagrams(TCP4_CLOSE_WAIT)[0];
        let mut payload = first_payload(datagram).to_vec();
        // The first attribute after the 72-byte inet_diag_msg claims 4000 bytes.
        payload[72..74].copy_from_slice(&4000u16.to_ne_bytes());
        let bad = reframe(datagram, &payload);
        assert!(matches!(
            parse_datagram(&bad, 103, PORT_ID, |p| decode_any(p, false)),
            Err(ReplyError::BadLength {
                what: "attribute",
                claimed: 4000,
                ..
            })
        ));
    }

    #[test]
    fn a_foreign_family_is_an_error() {
        let datagram = datagrams(TCP4_ALL)[0];
        let mut payload = first_payload(datagram).to_vec();
        payload[0] = 7;
        assert_eq!(
            parse_inet_msg(&payload, StateMask::ALL),
            Err(ReplyError::Family(7))
        );
        let unix = datagrams(UNIX_ALL)[0];
        let mut payload = first_payload(unix).to_vec();
        payload[0] = 2;
        assert_eq!(parse_unix_msg(&payload), Err(ReplyError::Family(2)));
    }
}

#[cfg(target_endian = "little")]
mod tcp_info_lengths {
    use super::*;

    /// The first `CLOSE_WAIT` socket's raw `tcp_info` from the capture, and the datagram.
    fn captured() -> (&'static [u8], &'static [u8]) {
        let datagram = datagrams(TCP4_CLOSE_WAIT)[0];
        let len = u32::from_ne_bytes(datagram[..4].try_into().expect("len")) as usize;
        let attrs = &datagram[HEADER_LEN + 72..len];
        let raw = attributes(attrs)
            .map(|a| a.expect("valid attribute"))
            .find(|&(kind, _)| kind == 2)
            .expect("INET_DIAG_INFO")
            .1;
        (raw, datagram)
    }

    /// The captured socket message with its `INET_DIAG_INFO` payload replaced by `info`.
    fn with_info(datagram: &[u8], info: &[u8]) -> Vec<u8> {
        let len = u32::from_ne_bytes(datagram[..4].try_into().expect("len")) as usize;
        let mut payload = datagram[HEADER_LEN..HEADER_LEN + 72].to_vec();
        for attr in attributes(&datagram[HEADER_LEN + 72..len]) {
            let (kind, data) = attr.expect("valid attribute");
            let data = if kind == 2 { info } else { data };
            let attr_len = u16::try_from(4 + data.len()).expect("small attribute");
            payload.extend_from_slice(&attr_len.to_ne_bytes());
            payload.extend_from_slice(&kind.to_ne_bytes());
            payload.extend_from_slice(data);
            payload.resize(payload.len().next_multiple_of(4), 0);
        }
        let mut out = datagram[..HEADER_LEN].to_vec();
        let total = u32::try_from(HEADER_LEN + payload.len()).expect("small message");
        out[..4].copy_from_slice(&total.to_ne_bytes());
        out.extend(payload);
        out
    }

    /// The first socket's `tcp_info`.
    fn decode(datagram: &[u8]) -> TcpInfo {
        let mut found = None;
        parse_datagram(datagram, 103, PORT_ID, |p| {
            let info = parse_inet_msg(p, StateMask::only(&[TcpState::CloseWait]))?.tcp_info;
            found = found.take().or(info);
            Ok(())
        })
        .expect("valid message");
        found.expect("tcp_info")
    }

    #[test]
    fn linux_6_18_sends_more_than_the_crate_knows() {
        let (raw, _) = captured();
        // netlink-packet-sock-diag 0.5's struct ends at tcpi_snd_wnd: 232 bytes.
        assert_eq!(raw.len(), 280);
        assert!(raw.len() > 232);
    }

    #[test]
    fn a_shorter_struct_from_an_older_kernel_parses() {
        // Derived: the captured tcp_info cut to 104 bytes, where the struct ended before
        // tcpi_pacing_rate was added (Linux 3.15) — shorter than the crate's 232.
        let (raw, datagram) = captured();
        let full = decode(datagram);
        let old = decode(&with_info(datagram, &raw[..104]));
        assert_eq!(old.last_ack_recv, full.last_ack_recv);
        assert_eq!(old.total_retrans, full.total_retrans);
        assert_eq!(old.rtt, full.rtt);
        assert_eq!(
            (old.bytes_acked, old.bytes_received, old.min_rtt),
            (None, None, None)
        );
        // Cut inside tcpi_last_ack_recv: that field and all after it are missing.
        let cut = decode(&with_info(datagram, &raw[..58]));
        assert_eq!(
            (cut.last_data_recv, cut.last_ack_recv),
            (full.last_data_recv, None)
        );
        assert_eq!(decode(&with_info(datagram, &[])), TcpInfo::default());
    }

    #[test]
    fn a_longer_struct_from_a_newer_kernel_parses() {
        // Derived: the captured tcp_info with 64 extra bytes appended.
        let (raw, datagram) = captured();
        let mut longer = raw.to_vec();
        longer.extend([0xab; 64]);
        assert_eq!(decode(&with_info(datagram, &longer)), decode(datagram));
    }
}

/// The live tests dump this process's own sockets in the caller's network namespace: no
/// privilege needed.
mod live {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testing::skip_or_fail;

    fn somaxconn() -> u32 {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .expect("somaxconn")
            .trim()
            .parse()
            .expect("a number")
    }

    /// Repeat `dump` until it finds what it looks for, for up to two seconds: the kernel
    /// moves a loopback connection into the accept queue asynchronously.
    fn wait_for<T>(mut dump: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = dump() {
                return found;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "socket never showed up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn finds_its_own_tcp_listener_with_port_queue_and_backlog() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let inode = rustix::fs::fstat(&listener).expect("fstat").st_ino;
        let _clients: Vec<_> = (0..2)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();

        let mut diag = DiagSocket::new().expect("sock_diag socket");
        let ext = Extensions {
            skmeminfo: true,
            ..Extensions::default()
        };
        let found = wait_for(|| {
            let mut found = None;
            diag.dump_inet(
                Family::Inet,
                StateMask::only(&[TcpState::Listen]),
                ext,
                |s| {
                    if s.local.port() == port {
                        found = Some(s);
                    }
                },
            )
            .expect("dump");
            found.filter(|s| s.recv_q == 2)
        });
        assert_eq!(found.state, TcpState::Listen);
        assert_eq!(found.local, v4(127, 0, 0, 1, port));
        assert_eq!(found.inode, inode);
        assert_eq!(found.uid, rustix::process::geteuid().as_raw());
        // std listens with a backlog of 128; the kernel caps it at somaxconn.
        assert_eq!(found.send_q, 128.min(somaxconn()));
        assert_eq!(found.drops, Some(0));
        assert!(!diag.last_dump_interrupted());

        // The same socket serves the next dumps: the two children, not yet accepted.
        let mut children = 0;
        diag.dump_inet(
            Family::Inet,
            StateMask::ALL.without(&[TcpState::Listen]),
            Extensions::default(),
            |s| children += usize::from(s.local.port() == port && s.inode == 0),
        )
        .expect("second dump");
        assert_eq!(children, 2);
    }

    #[test]
    fn one_compat_dump_brings_both_families_with_their_extensions() {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let v6 = match TcpListener::bind("[::1]:0") {
            Ok(v6) => v6,
            Err(e) => {
                skip_or_fail(
                    "one_compat_dump_brings_both_families_with_their_extensions",
                    &format!("no IPv6 loopback: binding [::1]:0: {e}"),
                );
                return;
            }
        };
        let inodes = [&v4, &v6].map(|l| rustix::fs::fstat(l).expect("fstat").st_ino);
        let ext = Extensions {
            skmeminfo: true,
            ..Extensions::default()
        };
        let listen = StateMask::only(&[TcpState::Listen]);
        let mut diag = DiagSocket::new().expect("sock_diag socket");
        let mut found = Vec::new();
        diag.dump_tcp(listen, ext, |s| {
            if inodes.contains(&s.inode) {
                found.push((s.family, s.drops));
            }
        })
        .expect("dump");
        found.sort();
        assert_eq!(found, [(Family::Inet, Some(0)), (Family::Inet6, Some(0))]);

        // The same sockets as one v2 dump per family.
        let mut per_family = 0;
        for family in [Family::Inet, Family::Inet6] {
            diag.dump_inet(family, listen, ext, |s| {
                per_family += usize::from(inodes.contains(&s.inode));
            })
            .expect("dump");
        }
        assert_eq!(per_family, 2);
    }

    #[test]
    fn finds_its_own_unix_listener_by_abstract_name() {
        let name = format!("sockscope-live-test-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let listener = UnixListener::bind_addr(&addr).expect("bind");
        let inode = rustix::fs::fstat(&listener).expect("fstat").st_ino;
        let mut pending = UnixStream::connect_addr(&addr).expect("connect");
        pending.write_all(b"x").expect("write");

        let mut diag = DiagSocket::new().expect("sock_diag socket");
        let mut found = None;
        let mut others = 0;
        diag.dump_unix(UnixStates::Listening, |s| {
            if s.inode == inode {
                found = Some(s);
            } else if s.inode == rustix::fs::fstat(&pending).expect("fstat").st_ino {
                others += 1;
            }
        })
        .expect("dump");
        assert_eq!(
            others, 0,
            "a listeners' dump leaves the connected client out"
        );
        let mut in_full_dump = false;
        diag.dump_unix(UnixStates::All, |s| in_full_dump |= s.inode == inode)
            .expect("dump");
        assert!(in_full_dump);
        let found = found.expect("own listener in the dump");
        assert_eq!(found.path.as_deref(), Some(format!("@{name}").as_str()));
        assert_eq!(
            (found.kind, found.state),
            (UnixKind::Stream, UnixState::Listen)
        );
        assert_eq!(found.recv_q, 1, "one pending connection");
        assert!(found.send_q > 0 && found.send_q <= somaxconn());
        assert_eq!(found.uid, Some(rustix::process::geteuid().as_raw()));
    }
}
