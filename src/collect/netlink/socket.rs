//! The `NETLINK_SOCK_DIAG` socket: send a dump request, receive its datagrams, and feed them to
//! the pure parsers. All the logic lives in those; this is the I/O around them.

use std::io;

use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use super::wire::{ReplyError, parse_datagram};
use super::{
    DestroyOutcome, Extensions, InetSock, LookupOutcome, NetlinkError, StateMask, UDP_STATES,
    UnixSock, UnixStates, destroy_outcome, destroy_request, inet_compat_request, inet_request,
    lookup_outcome, lookup_request, parse_inet_msg, parse_unix_msg, udp_request, unix_request,
};
use crate::model::Family;

/// Receive buffer, reused for every datagram of every dump.
///
/// A dump datagram is lost if it does not fit, so this must exceed the largest the kernel
/// builds. The kernel sizes a dump datagram to the reader's last buffer size, but never more
/// than 32 KiB less the skb overhead (`netlink_recvmsg` caps `max_recvmsg_len` at
/// `SKB_WITH_OVERHEAD(32768)`; the first datagram, built before we read, is `NLMSG_GOODSIZE`,
/// at most 8 KiB). On Linux 6.18 the largest seen is 32364 bytes. Twice that leaves room for
/// a kernel that raises the cap; a larger buffer would not make the datagrams larger.
const RECV_BUF_LEN: usize = 64 * 1024;

/// `MSG_TRUNC` from `<sys/socket.h>` (the same on every Linux architecture): `recv` returns
/// the datagram's real length, so a cut datagram is detected instead of misparsed.
const MSG_TRUNC: i32 = 0x20;

/// A `NETLINK_SOCK_DIAG` socket, reused across dumps.
///
/// It sees the network namespace the calling thread was in when the socket was created.
pub struct DiagSocket {
    /// `None` after a failed dump: what was left of it is discarded with the old socket, and
    /// the next dump opens a new one.
    channel: Option<Channel>,
    buf: Vec<u8>,
    seq: u32,
    interrupted: bool,
    /// Whether the kernel answers `TCPDIAG_GETSOCK` (both families in one walk); learnt
    /// from the first refusal.
    compat: bool,
}

impl DiagSocket {
    /// Open the socket.
    ///
    /// # Errors
    ///
    /// [`NetlinkError::Socket`] when the kernel refuses a netlink socket (no `sock_diag`
    /// support, or a sandbox that forbids netlink).
    pub fn new() -> Result<DiagSocket, NetlinkError> {
        Ok(DiagSocket {
            channel: Some(Channel::open()?),
            buf: vec![0; RECV_BUF_LEN],
            seq: 0,
            interrupted: false,
            compat: true,
        })
    }

    /// Dump the TCP sockets of `family` in `states`, with the `ext` attributes, handing each to
    /// `on_socket` as it is decoded.
    ///
    /// # Errors
    ///
    /// [`NetlinkError`] when the socket fails, the kernel refuses or aborts the dump, or a
    /// reply is malformed. Sockets handed on before the error stay handed on.
    pub fn dump_inet(
        &mut self,
        family: Family,
        states: StateMask,
        ext: Extensions,
        mut on_socket: impl FnMut(InetSock),
    ) -> Result<(), NetlinkError> {
        let dump = match family {
            Family::Inet => "TCP/IPv4 sock_diag dump",
            Family::Inet6 => "TCP/IPv6 sock_diag dump",
        };
        let seq = self.next_seq();
        let request = inet_request(seq, family, states, ext);
        self.run(dump, seq, &request, |payload| {
            on_socket(parse_inet_msg(payload, states)?);
            Ok(())
        })
    }

    /// Dump the TCP sockets of both families in `states`, with the `ext` attributes, in one
    /// walk of the kernel's tables where the kernel allows (see [`inet_compat_request`]),
    /// else one dump per family.
    ///
    /// # Errors
    ///
    /// As [`DiagSocket::dump_inet`].
    pub fn dump_tcp(
        &mut self,
        states: StateMask,
        ext: Extensions,
        mut on_socket: impl FnMut(InetSock),
    ) -> Result<(), NetlinkError> {
        if self.compat {
            let seq = self.next_seq();
            let request = inet_compat_request(seq, states, ext);
            let compat = self.run("TCP sock_diag dump", seq, &request, |payload| {
                on_socket(parse_inet_msg(payload, states)?);
                Ok(())
            });
            match compat {
                // A kernel without the old request refuses it before sending any socket.
                Err(NetlinkError::Reply {
                    reply: ReplyError::Refused(errno),
                    ..
                }) if [
                    rustix::io::Errno::INVAL,
                    rustix::io::Errno::NOENT,
                    rustix::io::Errno::OPNOTSUPP,
                ]
                .iter()
                .any(|known| known.raw_os_error() == errno.0) =>
                {
                    self.compat = false;
                }
                done => return done,
            }
        }
        for family in [Family::Inet, Family::Inet6] {
            self.dump_inet(family, states, ext, &mut on_socket)?;
        }
        Ok(())
    }

    /// Dump every UDP socket of both families, with `INET_DIAG_SKMEMINFO` (drops, receive
    /// buffer), handing each to `on_socket` as it is decoded. UDP has its own hash table:
    /// this walk does not go over the TCP sockets.
    ///
    /// # Errors
    ///
    /// As [`DiagSocket::dump_inet`].
    pub fn dump_udp(&mut self, mut on_socket: impl FnMut(InetSock)) -> Result<(), NetlinkError> {
        let ext = Extensions {
            skmeminfo: true,
            ..Extensions::default()
        };
        for (family, dump) in [
            (Family::Inet, "UDP/IPv4 sock_diag dump"),
            (Family::Inet6, "UDP/IPv6 sock_diag dump"),
        ] {
            let seq = self.next_seq();
            let request = udp_request(seq, family, ext);
            self.run(dump, seq, &request, |payload| {
                on_socket(parse_inet_msg(payload, UDP_STATES)?);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Dump the unix sockets in `states`, handing each to `on_socket` as it is decoded.
    ///
    /// # Errors
    ///
    /// As [`DiagSocket::dump_inet`].
    pub fn dump_unix(
        &mut self,
        states: UnixStates,
        mut on_socket: impl FnMut(UnixSock),
    ) -> Result<(), NetlinkError> {
        let seq = self.next_seq();
        let request = unix_request(seq, states);
        self.run("unix sock_diag dump", seq, &request, |payload| {
            on_socket(parse_unix_msg(payload)?);
            Ok(())
        })
    }

    /// Ask the kernel to destroy exactly `sock` (as a dump reported it, cookie included), and
    /// say what became of it.
    ///
    /// # Errors
    ///
    /// [`NetlinkError`] when the socket fails or the answer does not add up; a refusal by the
    /// kernel is an outcome, not an error.
    pub fn destroy(&mut self, sock: &InetSock) -> Result<DestroyOutcome, NetlinkError> {
        const WHAT: &str = "SOCK_DESTROY";
        let seq = self.next_seq();
        let request = destroy_request(seq, sock);
        let answer = self.run(WHAT, seq, &request, |_| {
            Err(ReplyError::MessageType(SOCK_DIAG_BY_FAMILY))
        });
        let answer = match answer {
            Ok(()) => Ok(()),
            Err(NetlinkError::Reply { reply, .. }) => Err(reply),
            Err(other) => return Err(other),
        };
        destroy_outcome(&answer).map_err(|reply| NetlinkError::Reply { dump: WHAT, reply })
    }

    /// Look up the TCP connection whose own address is `local` and whose peer is `peer` (one
    /// family; an IPv4 pair finds dual-stack sockets too), without walking the table.
    ///
    /// # Errors
    ///
    /// [`NetlinkError`] when the socket fails, or the kernel answers anything but a socket or
    /// `ENOENT`.
    pub fn find_tcp(
        &mut self,
        local: std::net::SocketAddr,
        peer: std::net::SocketAddr,
    ) -> Result<LookupOutcome, NetlinkError> {
        self.look_up_tcp(local, peer, Extensions::default())
            .map(|(outcome, _)| outcome)
    }

    /// [`DiagSocket::find_tcp`], with the socket found and the extensions `ext` asked for.
    ///
    /// # Errors
    ///
    /// As [`DiagSocket::find_tcp`].
    pub fn fetch_tcp(
        &mut self,
        local: std::net::SocketAddr,
        peer: std::net::SocketAddr,
        ext: Extensions,
    ) -> Result<Option<InetSock>, NetlinkError> {
        self.look_up_tcp(local, peer, ext)
            .map(|(outcome, found)| found.filter(|_| outcome != LookupOutcome::Absent))
    }

    fn look_up_tcp(
        &mut self,
        local: std::net::SocketAddr,
        peer: std::net::SocketAddr,
        ext: Extensions,
    ) -> Result<(LookupOutcome, Option<InetSock>), NetlinkError> {
        const WHAT: &str = "TCP sock_diag lookup";
        let seq = self.next_seq();
        let request = lookup_request(seq, local, peer, ext);
        let mut found = None;
        let answer = self.ask_once(WHAT, seq, &request, |payload| {
            found = Some(parse_inet_msg(payload, StateMask::ALL)?);
            Ok(())
        });
        let answer = match answer {
            Ok(()) => Ok(()),
            Err(NetlinkError::Reply { reply, .. }) => Err(reply),
            Err(other) => return Err(other),
        };
        lookup_outcome(found.as_ref(), &answer)
            .map(|outcome| (outcome, found))
            .map_err(|reply| NetlinkError::Reply { dump: WHAT, reply })
    }

    /// Whether the last dump carried `NLM_F_DUMP_INTR`: the kernel's tables changed while it
    /// walked them, so that dump may have missed or repeated a socket.
    pub fn last_dump_interrupted(&self) -> bool {
        self.interrupted
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send a request whose whole answer is one datagram (an exact lookup without
    /// `NLM_F_ACK`: the socket's message, or an error), and read that datagram. The socket is
    /// kept unless the answer does not add up (then something else may still be queued).
    fn ask_once(
        &mut self,
        what: &'static str,
        seq: u32,
        request: &[u8],
        mut on_message: impl FnMut(&[u8]) -> Result<(), ReplyError>,
    ) -> Result<(), NetlinkError> {
        let channel = match self.channel.take() {
            Some(channel) => channel,
            None => Channel::open()?,
        };
        channel.send(request)?;
        let len = channel.recv(&mut self.buf)?;
        let Some(datagram) = self.buf.get(..len) else {
            return Err(NetlinkError::Truncated {
                dump: what,
                len,
                capacity: self.buf.len(),
            });
        };
        match parse_datagram(datagram, seq, channel.port_id, &mut on_message) {
            Ok(progress) if progress.messages == 1 || progress.done => {
                self.channel = Some(channel);
                Ok(())
            }
            Ok(_) => Err(NetlinkError::Reply {
                dump: what,
                reply: ReplyError::MessageType(0),
            }),
            Err(reply @ ReplyError::Refused(_)) => {
                self.channel = Some(channel);
                Err(NetlinkError::Reply { dump: what, reply })
            }
            Err(reply) => Err(NetlinkError::Reply { dump: what, reply }),
        }
    }

    fn run(
        &mut self,
        dump: &'static str,
        seq: u32,
        request: &[u8],
        mut on_message: impl FnMut(&[u8]) -> Result<(), ReplyError>,
    ) -> Result<(), NetlinkError> {
        self.interrupted = false;
        // Taken out for the dump and put back only when it completed: on any error the rest of
        // the dump may still be queued on it, so it is closed.
        let channel = match self.channel.take() {
            Some(channel) => channel,
            None => Channel::open()?,
        };
        channel.send(request)?;
        loop {
            let len = channel.recv(&mut self.buf)?;
            let Some(datagram) = self.buf.get(..len) else {
                return Err(NetlinkError::Truncated {
                    dump,
                    len,
                    capacity: self.buf.len(),
                });
            };
            let progress = match parse_datagram(datagram, seq, channel.port_id, &mut on_message) {
                Ok(progress) => progress,
                // A refusal is the whole answer: nothing more is queued, the socket is
                // reused (an exact lookup answered `ENOENT` is one).
                Err(reply @ ReplyError::Refused(_)) => {
                    self.channel = Some(channel);
                    return Err(NetlinkError::Reply { dump, reply });
                }
                Err(reply) => return Err(NetlinkError::Reply { dump, reply }),
            };
            self.interrupted |= progress.interrupted;
            if progress.done {
                break;
            }
        }
        self.channel = Some(channel);
        Ok(())
    }
}

struct Channel {
    socket: Socket,
    /// Our netlink port id: every reply must be addressed to it.
    port_id: u32,
}

impl Channel {
    fn open() -> io::Result<Channel> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        let addr = socket.bind_auto()?;
        // Connected to the kernel (port 0), the socket accepts datagrams from it alone.
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Channel {
            socket,
            port_id: addr.port_number(),
        })
    }

    fn send(&self, request: &[u8]) -> io::Result<()> {
        loop {
            match self.socket.send(request, 0) {
                Ok(n) if n == request.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("sent {n} of {} request bytes", request.len()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Receive one datagram into `buf`; returns its real length, which exceeds `buf.len()`
    /// when it was cut.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.socket.recv(&mut &mut buf[..], MSG_TRUNC) {
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
