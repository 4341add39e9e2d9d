//! The other end of a connection accepted from another scanned namespace: looked for there,
//! by its exact 4-tuple, once every namespace is dumped.
//!
//! A full dump keeps, besides the sockets whose local peer's other end is missing (see
//! `sockets::PeerCheck`), the quiet ESTABLISHED sockets — accepted or connected — whose peer
//! address is not the namespace's own ([`Sockets::foreign_candidates`], bounded): a client or
//! a server in another namespace (a container, a veth peer), or a remote one. Only after the dumps are all the scanned namespaces' addresses known; then each
//! candidate whose peer address belongs to exactly one other scanned namespace is looked for
//! there — one `sock_diag` lookup of the reversed 4-tuple (see
//! [`DiagSocket::find_tcp`]), from a thread inside that namespace ([`netns::in_each`]),
//! and for the few the lookup does not find, one dump of that namespace, which also sees
//! sockets bound to a device — and kept as gone when the kernel has no such connection.
//! Nothing per socket is kept across namespaces: the candidates (at most
//! `sockets::FOREIGN_LIMIT` per namespace) and one entry per address of a scanned
//! namespace.
//!
//! What it costs: one lookup (a request and its answer on a netlink socket, about 15–30 µs
//! on the test machine) per candidate whose peer is another scanned namespace's, and one
//! setns per namespace looked in; remote clients cost their place in the list only.
//!
//! Where the evidence is ambiguous nothing is raised; the candidate is counted in
//! [`Sockets::peer_unchecked`] instead:
//!
//! - the peer address belongs to two or more scanned namespaces (the same private address
//!   in two containers): which one the client was in cannot be told;
//! - some scanned namespace tracks connections (`nf_conntrack_count` above 0, see
//!   [`NetTables::tracks_connections`](super::procnet::NetTables::tracks_connections)): NAT may have
//!   rewritten the connection on its way (a published container port), and then the
//!   client's 4-tuple does not reverse the server's. A host where nothing tracks connections rewrites no address with netfilter
//!   (eBPF programs that rewrite addresses are not seen);
//! - the lookup failed, or the candidate was past the bound.
//!
//! A peer address that belongs to no scanned namespace (a remote client, a namespace that
//! was not scanned or is gone) is not evidence of anything: not judged, not counted.
//!
//! It owns neither the dumps (`sockets`) nor the threads' entering (`netns`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use super::netlink::{DiagSocket, Extensions, LookupOutcome, NetlinkError, StateMask};
use super::netns::{self, Target};
use super::sockets::{Dumped, Sockets};
use super::vocab::{NsId, plain, plain_ip};
use crate::model::{PeerGone, TcpState};

/// Who holds an address among the scanned namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// One namespace, by its place in the pass's dumps.
    One(usize),
    /// Two or more.
    Many,
}

/// Which namespace holds each address, of the namespaces given by their addresses. Loopback
/// addresses are every namespace's and no peer across namespaces.
fn holders<'a>(addrs: impl Iterator<Item = &'a [IpAddr]>) -> HashMap<IpAddr, Holder> {
    let mut out: HashMap<IpAddr, Holder> = HashMap::new();
    for (ns, list) in addrs.enumerate() {
        for &ip in list {
            let ip = plain_ip(ip);
            if ip.is_loopback() || ip.is_unspecified() {
                continue;
            }
            out.entry(ip)
                .and_modify(|h| {
                    if *h != Holder::One(ns) {
                        *h = Holder::Many;
                    }
                })
                .or_insert(Holder::One(ns));
        }
    }
    out
}

/// One candidate to look for: where it is kept, and the 4-tuple its other end would have.
struct Ask {
    /// The candidate's namespace, by its place in the dumps.
    from: usize,
    gone: PeerGone,
    /// The other end's own address and its peer.
    local: SocketAddr,
    peer: SocketAddr,
}

/// The candidates of every namespace sorted out: those to look for, by the namespace to look
/// in, and how many of each namespace's stay unchecked.
fn sort_out(
    candidates: Vec<(usize, PeerGone)>,
    holders: &HashMap<IpAddr, Holder>,
    may_rewrite: bool,
    unchecked: &mut [u64],
) -> HashMap<usize, Vec<Ask>> {
    let mut asks: HashMap<usize, Vec<Ask>> = HashMap::new();
    for (from, gone) in candidates {
        let (local, peer) = (plain(gone.socket.peer), plain(gone.socket.local));
        match holders.get(&local.ip()) {
            None => {}
            Some(&Holder::One(ns)) if ns == from => {}
            Some(&Holder::One(ns)) if !may_rewrite && local.is_ipv4() == peer.is_ipv4() => {
                asks.entry(ns).or_default().push(Ask {
                    from,
                    gone,
                    local,
                    peer,
                });
            }
            Some(_) => unchecked[from] += 1,
        }
    }
    asks
}

/// Look, in the other scanned namespaces, for the other ends of the candidates each dump
/// kept; keep those that are not there in their dump's `peer_gone`, named with the
/// namespace their peer is in. `threads` is how many namespaces may be entered at once.
pub(super) fn settle(dumps: &mut [Dumped], threads: usize) {
    if dumps.len() < 2 {
        // No other namespace was dumped after all (refused, or gone): nothing to look in.
        for (_, dump) in dumps.iter_mut() {
            dump.sockets.foreign_candidates = Vec::new();
        }
        return;
    }
    let mut unchecked = vec![0u64; dumps.len()];
    let mut candidates = Vec::new();
    for (at, (_, dump)) in dumps.iter_mut().enumerate() {
        let sockets: &mut Sockets = &mut dump.sockets;
        unchecked[at] += sockets.foreign_past;
        candidates.extend(
            std::mem::take(&mut sockets.foreign_candidates)
                .into_iter()
                .map(|g| (at, g)),
        );
    }
    if !candidates.is_empty() {
        let holders = holders(dumps.iter().map(|(_, d)| d.tables.local_addrs.as_slice()));
        let may_rewrite = dumps.iter().any(|(_, d)| d.tracks_connections);
        let mut asks = sort_out(candidates, &holders, may_rewrite, &mut unchecked);
        let targets: Vec<(usize, Target)> =
            asks.keys().map(|&ns| (ns, dumps[ns].0.clone())).collect();
        let answers = look_in_each(&targets, &asks, threads);
        for ((ns, target), answer) in targets.into_iter().zip(answers) {
            let id = target.id.model_id();
            for (ask, outcome) in asks.remove(&ns).unwrap_or_default().into_iter().zip(answer) {
                match outcome {
                    Some(LookupOutcome::Absent) => {
                        let mut gone = ask.gone;
                        gone.peer_netns = Some(id.clone());
                        dumps[ask.from].1.sockets.add_peer_gone(gone);
                    }
                    Some(LookupOutcome::Present(_)) => {}
                    None => unchecked[ask.from] += 1,
                }
            }
        }
    }
    for ((_, dump), n) in dumps.iter_mut().zip(unchecked) {
        dump.sockets.peer_unchecked += n;
        // The ghosts added are indexed anew: sorted once more, for the join.
        dump.sockets.index.finish();
    }
}

/// Each target's lookups, from inside it: one outcome per ask, `None` where the lookup (or
/// entering the namespace) failed.
fn look_in_each(
    targets: &[(usize, Target)],
    asks: &HashMap<usize, Vec<Ask>>,
    threads: usize,
) -> Vec<Vec<Option<LookupOutcome>>> {
    let by_id: HashMap<NsId, &[Ask]> = targets
        .iter()
        .map(|(ns, t)| (t.id, asks.get(ns).map_or(&[][..], Vec::as_slice)))
        .collect();
    let look = |t: &Target| look_here(by_id.get(&t.id).copied().unwrap_or_default());
    let (own, others): (Vec<&Target>, Vec<&Target>) =
        targets.iter().map(|(_, t)| t).partition(|t| t.own);
    let others: Vec<Target> = others.into_iter().cloned().collect();
    let mut answered: HashMap<NsId, Vec<Option<LookupOutcome>>> = HashMap::new();
    for (t, result) in others.iter().zip(netns::in_each(&others, threads, look)) {
        answered.insert(t.id, result.unwrap_or_default());
    }
    for t in own {
        answered.insert(t.id, look(t));
    }
    targets
        .iter()
        .map(|(ns, t)| {
            let n = asks.get(ns).map_or(0, Vec::len);
            let mut outcomes = answered.remove(&t.id).unwrap_or_default();
            outcomes.resize(n, None);
            outcomes
        })
        .collect()
}

/// The lookups of `asks` in the calling thread's namespace.
///
/// A lookup names no interface, so it misses a socket bound to one (`SO_BINDTODEVICE`, a
/// VRF, a link-local address): each socket a lookup did not find is looked for once more in
/// one dump of the namespace, which sees them all. Ghosts are few, so the dump is rare; it
/// costs one walk of the kernel's table.
fn look_here(asks: &[Ask]) -> Vec<Option<LookupOutcome>> {
    let Ok(mut diag) = DiagSocket::new() else {
        return vec![None; asks.len()];
    };
    let mut outcomes: Vec<Option<LookupOutcome>> = asks
        .iter()
        .map(|a| {
            diag.find_tcp(a.local, a.peer)
                .map_err(|_: NetlinkError| ())
                .ok()
        })
        .collect();
    let absent: HashSet<(SocketAddr, SocketAddr)> = asks
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Some(LookupOutcome::Absent))
        .map(|(a, _)| (a.local, a.peer))
        .collect();
    if absent.is_empty() {
        return outcomes;
    }
    let mut found = HashSet::new();
    let states = StateMask::ALL.without(&[TcpState::Listen, TcpState::BoundInactive]);
    let dumped = diag.dump_tcp(states, Extensions::default(), |s| {
        let tuple = (plain(s.local), plain(s.peer));
        if absent.contains(&tuple) {
            found.insert(tuple);
        }
    });
    let sure = dumped.is_ok() && !diag.last_dump_interrupted();
    for (a, o) in asks.iter().zip(&mut outcomes) {
        if *o != Some(LookupOutcome::Absent) {
            continue;
        }
        *o = if found.contains(&(a.local, a.peer)) {
            Some(LookupOutcome::Present(TcpState::Established))
        } else if sure {
            Some(LookupOutcome::Absent)
        } else {
            None
        };
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, TcpSocket};

    fn addrs(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().expect("addr")).collect()
    }

    fn candidate(local: &str, peer: &str, inode: u64) -> PeerGone {
        PeerGone {
            socket: TcpSocket {
                family: Family::Inet,
                state: TcpState::Established,
                local: local.parse().expect("addr"),
                peer: peer.parse().expect("addr"),
                recv_q: 0,
                send_q: 0,
                inode,
                uid: 0,
                drops: None,
                last_ack_recv_ms: None,
                timer: None,
                owners: Vec::new(),
            },
            idle_ms: None,
            dumps: 1,
            peer_netns: None,
            role: crate::model::PeerRole::Accepted,
            ghost: crate::model::Ghost::Gone,
        }
    }

    #[test]
    fn an_address_of_one_other_namespace_is_looked_for_there_shared_ones_are_unchecked() {
        let a = addrs(&["127.0.0.1", "10.9.0.1", "172.17.0.2"]);
        let b = addrs(&["127.0.0.1", "10.9.0.2", "172.17.0.2", "::1"]);
        let c = addrs(&["127.0.0.1", "10.7.0.3"]);
        let holders = holders([a.as_slice(), b.as_slice(), c.as_slice()].into_iter());
        assert_eq!(
            holders.get(&"10.9.0.2".parse().expect("ip")),
            Some(&Holder::One(1))
        );
        assert_eq!(
            holders.get(&"172.17.0.2".parse().expect("ip")),
            Some(&Holder::Many)
        );
        assert_eq!(holders.get(&"127.0.0.1".parse().expect("ip")), None);

        let candidates = vec![
            // From B's address, dual-stack view: looked for in B, reversed and plain.
            (
                0,
                candidate("[::ffff:10.9.0.1]:5020", "[::ffff:10.9.0.2]:40001", 1),
            ),
            // From C: looked for in C.
            (0, candidate("10.9.0.1:5020", "10.7.0.3:40002", 2)),
            // An address two namespaces hold: unchecked.
            (0, candidate("10.9.0.1:5020", "172.17.0.2:40003", 3)),
            // A remote client: not judged, not counted.
            (0, candidate("10.9.0.1:5020", "192.0.2.7:40004", 4)),
            // B's server, from A: looked for in A.
            (1, candidate("10.9.0.2:6000", "10.9.0.1:40005", 5)),
        ];
        let mut unchecked = vec![0; 3];
        let asks = sort_out(candidates, &holders, false, &mut unchecked);
        assert_eq!(unchecked, [1, 0, 0]);
        let in_b = &asks[&1];
        assert_eq!(in_b.len(), 1);
        assert_eq!(in_b[0].local.to_string(), "10.9.0.2:40001");
        assert_eq!(in_b[0].peer.to_string(), "10.9.0.1:5020");
        assert_eq!(asks[&2][0].gone.socket.inode, 2);
        assert_eq!((asks[&0][0].from, asks[&0][0].gone.socket.inode), (1, 5));
    }

    #[test]
    fn where_a_namespace_tracks_connections_nothing_is_looked_for_and_all_are_unchecked() {
        let a = addrs(&["10.9.0.1"]);
        let b = addrs(&["10.9.0.2"]);
        let holders = holders([a.as_slice(), b.as_slice()].into_iter());
        let candidates = vec![
            (0, candidate("10.9.0.1:5020", "10.9.0.2:40001", 1)),
            (0, candidate("10.9.0.1:5020", "192.0.2.7:40004", 4)),
        ];
        let mut unchecked = vec![0; 2];
        let asks = sort_out(candidates, &holders, true, &mut unchecked);
        assert!(asks.is_empty());
        assert_eq!(unchecked, [1, 0], "the remote client is not counted");
    }
}
