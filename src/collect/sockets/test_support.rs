//! A socket as a dump meets it, for the tests of each of the dump's jobs.

use std::net::SocketAddr;

use crate::collect::netlink::InetSock;
use crate::model::{Family, TcpState};

/// A bare TCP socket (or, with another state ignored, a UDP one) from `local` to `peer`.
pub(super) fn sock(state: TcpState, local: &str, peer: &str, inode: u64) -> InetSock {
    let local: SocketAddr = local.parse().expect("addr");
    InetSock {
        family: if local.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        },
        state,
        local,
        peer: peer.parse().expect("addr"),
        recv_q: 0,
        send_q: 0,
        inode,
        uid: 0,
        drops: None,
        rmem: None,
        tcp_info: None,
        timer: None,
        ifindex: 0,
        cookie: inode,
    }
}
