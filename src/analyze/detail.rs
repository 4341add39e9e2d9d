//! Per-socket views behind one listener or one process: what a face lists when asked for the
//! details of a row.
//!
//! The counts in [`super::ListenerView`] and [`super::ProcessView`] summarise these sockets;
//! here they are listed one by one, from the sockets the newest snapshot keeps in full, and
//! matched to their listener by the same rule as the counts. Lists are capped so that the
//! details of a leak of 100,000 sockets stay small; the totals say how many there are.

use std::cmp::Ordering;
use std::net::SocketAddr;

use super::listeners::assign_children;
use crate::model::{Snapshot, TcpSocket, TcpState, TcpTimer};

/// One socket, as a details list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketRow {
    pub state: TcpState,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Bytes queued to be read; in CLOSE_WAIT, +1 for the FIN until the app reads EOF.
    pub recv_q: u32,
    /// Bytes sent and not yet acknowledged.
    pub send_q: u32,
    /// The pending timer: retransmissions, zero-window probes.
    pub timer: Option<TcpTimer>,
    /// Time since the peer's last ACK (CLOSE_WAIT only): a lower bound of the socket's age.
    pub age_s: Option<f64>,
}

impl SocketRow {
    fn new(s: &TcpSocket) -> SocketRow {
        SocketRow {
            state: s.state,
            local: s.local,
            peer: s.peer,
            recv_q: s.recv_q,
            send_q: s.send_q,
            timer: s.timer,
            age_s: s.last_ack_recv_ms.map(|ms| f64::from(ms) / 1000.0),
        }
    }
}

/// The sockets waiting on one listener.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerDetail {
    /// SYN_RECV request sockets, then children not yet `accept()`ed (ESTABLISHED, then
    /// CLOSE_WAIT: their client gave up); oldest first within a state; at most `limit`.
    pub sockets: Vec<SocketRow>,
    /// How many there are in all.
    pub total: usize,
}

/// The CLOSE_WAIT sockets one process holds, and its connections in trouble.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessDetail {
    /// Oldest first; at most `limit`.
    pub close_wait: Vec<SocketRow>,
    /// How many there are in all.
    pub close_wait_total: usize,
    /// Its SYN_SENT sockets that retransmitted and its ESTABLISHED sockets with unread
    /// data, a zero-window probe or retransmissions, or whose other end is gone; most unread, then most retries, first;
    /// at most [`TROUBLED_SHOWN`].
    pub troubled: Vec<SocketRow>,
    pub troubled_total: usize,
}

/// How many of a process's connections in trouble its details list.
pub const TROUBLED_SHOWN: usize = 8;

/// The request sockets and unaccepted children of the listener with this inode in namespace
/// `netns`; `None` when the snapshot holds no such listener. A unix listener's queued
/// connections are not listed by the kernel one by one: its detail is empty.
pub fn listener_detail(
    snapshot: &Snapshot,
    netns: &str,
    inode: u64,
    limit: usize,
) -> Option<ListenerDetail> {
    let ns = snapshot.netns.iter().find(|ns| ns.id == netns)?;
    let Some(at) = ns.tcp_listeners.iter().position(|l| l.inode == inode) else {
        return ns
            .unix_listeners
            .iter()
            .any(|l| l.inode == inode)
            .then(ListenerDetail::default);
    };
    let rows: Vec<SocketRow> = assign_children(&ns.tcp_listeners, &ns.tracked)
        .into_iter()
        .filter(|&(_, i)| i == at)
        .map(|(s, _)| SocketRow::new(s))
        .collect();
    let (sockets, total) = first(rows, limit, |a, b| {
        state_rank(a.state)
            .cmp(&state_rank(b.state))
            .then_with(|| older_first(a, b))
    });
    Some(ListenerDetail { sockets, total })
}

/// The CLOSE_WAIT sockets held by `pid`, in every namespace of the snapshot.
pub fn process_detail(snapshot: &Snapshot, pid: u32, limit: usize) -> ProcessDetail {
    let rows: Vec<SocketRow> = snapshot
        .netns
        .iter()
        .flat_map(|ns| &ns.tracked)
        .filter(|s| s.state == TcpState::CloseWait && s.owners.contains(&pid))
        .map(SocketRow::new)
        .collect();
    let (close_wait, close_wait_total) = first(rows, limit, older_first);
    // With them, the ESTABLISHED sockets whose other end was gone in the last full dump.
    let troubled: Vec<SocketRow> = snapshot
        .netns
        .iter()
        .flat_map(|ns| {
            ns.tracked
                .iter()
                .chain(ns.peer_gone.iter().map(|g| &g.socket))
        })
        .filter(|s| {
            matches!(s.state, TcpState::SynSent | TcpState::Established)
                && s.inode != 0
                && s.owners.contains(&pid)
        })
        .map(SocketRow::new)
        .collect();
    let retries = |r: &SocketRow| r.timer.map_or(0, |t| t.retrans);
    let (troubled, troubled_total) = first(troubled, TROUBLED_SHOWN, |a, b| {
        b.recv_q
            .cmp(&a.recv_q)
            .then_with(|| retries(b).cmp(&retries(a)))
            .then_with(|| a.peer.cmp(&b.peer))
    });
    ProcessDetail {
        close_wait,
        close_wait_total,
        troubled,
        troubled_total,
    }
}

fn state_rank(state: TcpState) -> u8 {
    match state {
        TcpState::SynRecv => 0,
        TcpState::Established => 1,
        _ => 2,
    }
}

/// Oldest first, sockets of unknown age last; then by address so the order is stable.
fn older_first(a: &SocketRow, b: &SocketRow) -> Ordering {
    let age = |r: &SocketRow| r.age_s.unwrap_or(-1.0);
    age(b)
        .total_cmp(&age(a))
        .then_with(|| a.local.cmp(&b.local))
        .then_with(|| a.peer.cmp(&b.peer))
}

/// The first `limit` rows in `order`, and how many there were; a partial selection first, so
/// that a huge list is not sorted in full.
fn first(
    mut rows: Vec<SocketRow>,
    limit: usize,
    order: impl Fn(&SocketRow, &SocketRow) -> Ordering,
) -> (Vec<SocketRow>, usize) {
    let total = rows.len();
    if limit == 0 {
        return (Vec::new(), total);
    }
    if rows.len() > limit {
        rows.select_nth_unstable_by(limit - 1, &order);
        rows.truncate(limit);
    }
    rows.sort_by(order);
    (rows, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::tests::recording;

    #[test]
    fn a_full_listener_lists_its_waiting_children() {
        let last = recording("incidents").pop().expect("a snapshot");
        let ns = &last.netns[0];
        let listener = ns
            .tcp_listeners
            .iter()
            .find(|l| l.local.port() == 5000)
            .expect("the noaccept listener");
        let d = listener_detail(&last, &ns.id, listener.inode, 100).expect("found");
        // 9 in the queue (backlog 8 + 1), 3 of which their clients closed.
        assert_eq!(d.total, 9);
        let states: Vec<TcpState> = d.sockets.iter().map(|s| s.state).collect();
        assert_eq!(
            states.iter().filter(|&&s| s == TcpState::CloseWait).count(),
            3
        );
        assert!(states.is_sorted_by_key(|&s| state_rank(s)), "{states:?}");
        let capped = listener_detail(&last, &ns.id, listener.inode, 4).expect("found");
        assert_eq!((capped.sockets.len(), capped.total), (4, 9));
        assert_eq!(capped.sockets[..], d.sockets[..4]);
    }

    #[test]
    fn a_unix_listener_has_an_empty_detail_and_an_unknown_inode_none() {
        let last = recording("incidents").pop().expect("a snapshot");
        let ns = &last.netns[0];
        let unix = ns.unix_listeners[0].inode;
        assert_eq!(
            listener_detail(&last, &ns.id, unix, 10),
            Some(ListenerDetail::default())
        );
        assert_eq!(listener_detail(&last, &ns.id, 1, 10), None);
        assert_eq!(listener_detail(&last, "no such netns", unix, 10), None);
    }

    #[test]
    fn a_leaking_process_lists_its_close_wait_sockets_oldest_first() {
        let last = recording("incidents").pop().expect("a snapshot");
        let leaky = last
            .processes
            .iter()
            .find(|p| p.comm == "leaky")
            .expect("leaky");
        let d = process_detail(&last, leaky.pid, 50);
        assert_eq!((d.close_wait.len(), d.close_wait_total), (50, 200));
        assert!(d.close_wait.iter().all(|s| s.state == TcpState::CloseWait));
        assert!(d.close_wait.iter().all(|s| s.local.port() == 5001));
        let ages: Vec<f64> = d.close_wait.iter().filter_map(|s| s.age_s).collect();
        assert!(ages.is_sorted_by(|a, b| a >= b), "{ages:?}");
        let full = process_detail(&last, leaky.pid, 1000);
        assert_eq!(full.close_wait[..50], d.close_wait[..]);
        assert_eq!(
            process_detail(&last, u32::MAX, 10),
            ProcessDetail::default()
        );
    }

    #[test]
    fn a_process_s_connections_in_trouble_include_those_whose_peer_is_gone() {
        let mut last = recording("incidents").pop().expect("a snapshot");
        let pid = u32::MAX - 1;
        let socket = TcpSocket {
            family: crate::model::Family::Inet,
            state: TcpState::Established,
            local: "127.0.0.1:5020".parse().expect("addr"),
            peer: "127.0.0.1:40001".parse().expect("addr"),
            recv_q: 0,
            send_q: 0,
            inode: 77,
            uid: 0,
            drops: None,
            last_ack_recv_ms: None,
            timer: None,
            owners: vec![pid],
        };
        last.netns[0].peer_gone.push(crate::model::PeerGone {
            socket: socket.clone(),
            idle_ms: None,
            dumps: 1,
            peer_netns: None,
            role: crate::model::PeerRole::Accepted,
            ghost: crate::model::Ghost::Gone,
        });
        let d = process_detail(&last, pid, 10);
        assert_eq!(d.troubled_total, 1);
        assert_eq!(d.troubled[0], SocketRow::new(&socket));
    }
}
