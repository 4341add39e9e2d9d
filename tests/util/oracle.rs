//! The oracles: `ss` and `nstat`, run in the same namespace as sockscope, and pure parsers
//! for what they print (tested on captured output in `tests/fixtures/ss` and `.../nstat`).
//!
//! `ss` names states its own way; [`ss_state`] maps them to the report's keys. For a
//! dual-stack IPv6 wildcard listener `ss` prints `*:PORT` (and `[::]:PORT` only when
//! IPV6_V6ONLY is on); [`ss_local`] maps `*` to `[::]`, the report's spelling.

use std::collections::BTreeMap;

/// The report's `tcp_states` keys, in kernel order.
pub const TCP_STATES: [&str; 11] = [
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
];

/// The report's name for a state as `ss` prints it. `UNCONN` is TCP_CLOSE. (iproute2 6.1
/// has no name for Linux 6.9's bound-inactive sockets and does not ask the kernel for them.)
pub fn ss_state(name: &str) -> Option<&'static str> {
    Some(match name {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "LISTEN" => "LISTEN",
        "CLOSING" => "CLOSING",
        _ => return None,
    })
}

/// A local address as the report writes it.
pub fn ss_local(text: &str) -> String {
    match text.strip_prefix("*:") {
        Some(port) => format!("[::]:{port}"),
        None => text.to_owned(),
    }
}

/// Socket counts by state from `ss -tanH`; every state is present.
pub fn parse_states(text: &str) -> Result<BTreeMap<&'static str, u64>, String> {
    let mut counts: BTreeMap<&'static str, u64> = TCP_STATES.iter().map(|&s| (s, 0)).collect();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap_or_default();
        let state =
            ss_state(name).ok_or_else(|| format!("unknown ss state {name:?} in {line:?}"))?;
        *counts.entry(state).or_default() += 1;
    }
    Ok(counts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsListener {
    /// As the report writes it (see [`ss_local`]); a path or `@name` for unix.
    pub local: String,
    /// Accept-queue length.
    pub recv_q: u64,
    /// Backlog.
    pub send_q: u64,
}

fn number(field: Option<&str>, line: &str) -> Result<u64, String> {
    let field = field.ok_or_else(|| format!("short line {line:?}"))?;
    field
        .parse()
        .map_err(|_| format!("{field:?} is not a number in {line:?}"))
}

/// TCP listeners from `ss -tlnH`: `LISTEN RECV-Q SEND-Q LOCAL PEER`.
pub fn parse_tcp_listeners(text: &str) -> Result<Vec<SsListener>, String> {
    text.lines()
        .filter(|l| l.starts_with("LISTEN"))
        .map(|line| {
            let mut f = line.split_whitespace().skip(1);
            let recv_q = number(f.next(), line)?;
            let send_q = number(f.next(), line)?;
            let local = f.next().ok_or_else(|| format!("no address in {line:?}"))?;
            Ok(SsListener {
                local: ss_local(local),
                recv_q,
                send_q,
            })
        })
        .collect()
}

/// Unix listeners from `ss -xlH`: `u_str LISTEN RECV-Q SEND-Q PATH INODE PEER PEER-INODE`.
pub fn parse_unix_listeners(text: &str) -> Result<Vec<SsListener>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 || f[1] != "LISTEN" {
                return Err(format!("not a unix listener line: {line:?}"));
            }
            Ok(SsListener {
                local: f[4].to_owned(),
                recv_q: number(Some(f[2]), line)?,
                send_q: number(Some(f[3]), line)?,
            })
        })
        .collect()
}

/// Per-listener drops (`d<N>` in `skmem:(...)`) from `ss -tlmnH`, by local address. The
/// memory line follows its socket's line.
pub fn parse_listener_drops(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut drops = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("LISTEN") {
            let local = line
                .split_whitespace()
                .nth(3)
                .ok_or_else(|| format!("short line {line:?}"))?;
            current = Some(ss_local(local));
        } else if let Some(mem) = line.trim().strip_prefix("skmem:(") {
            let local = current
                .take()
                .ok_or_else(|| format!("skmem without a socket: {line:?}"))?;
            let d = mem
                .trim_end_matches(')')
                .split(',')
                .find_map(|item| item.strip_prefix('d'))
                .ok_or_else(|| format!("no d<N> in {line:?}"))?;
            drops.insert(local, number(Some(d), line)?);
        }
    }
    Ok(drops)
}

/// Sockets per owning process from `ss -tanpH state ...`: `(comm, pid) -> count`. Sockets no
/// process holds (children not yet accepted, orphans) are left out; a socket shared by two
/// processes counts for both.
pub fn parse_per_process(text: &str) -> Result<BTreeMap<(String, u32), u64>, String> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(users) = line.split("users:(").nth(1) else {
            continue;
        };
        // Each user is ("comm",pid=N,fd=M); split on the `("` that opens one.
        for user in users.split("(\"").skip(1) {
            let (comm, rest) = user
                .split_once("\",")
                .ok_or_else(|| format!("bad users in {line:?}"))?;
            let pid = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("pid="))
                .ok_or_else(|| format!("no pid in {line:?}"))?;
            let pid = pid.parse().map_err(|_| format!("bad pid in {line:?}"))?;
            *counts.entry((comm.to_owned(), pid)).or_default() += 1;
        }
    }
    Ok(counts)
}

/// `nstat -asz`: `NAME VALUE RATE` lines (after a `#kernel` header), by name — TcpExt
/// counters come as `TcpExtListenOverflows`.
pub fn parse_nstat(text: &str) -> Result<BTreeMap<String, u64>, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut f = line.split_whitespace();
            let name = f.next().unwrap_or_default().to_owned();
            Ok((name, number(f.next(), line)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fixture;

    #[test]
    fn states_from_ss_tan() {
        let states = parse_states(&fixture("ss/tan.txt")).expect("parses");
        assert_eq!(states.len(), 11, "every state present: {states:?}");
        assert_eq!(states["LISTEN"], 5);
        assert_eq!(states["SYN_SENT"], 21);
        assert_eq!(states["CLOSE_WAIT"], 3 + 5);
        assert_eq!(states["FIN_WAIT2"], 3 + 5);
        assert_eq!(states["TIME_WAIT"], 2);
        // noaccept: 6 queued children and their 6 clients (3 more gave up); healthy: 2 live
        // connections, both ends.
        assert_eq!(states["ESTABLISHED"], 6 + 6 + 2 * 2);
        assert_eq!(states["SYN_RECV"] + states["CLOSE"] + states["CLOSING"], 0);
    }

    #[test]
    fn unknown_state_is_an_error() {
        assert!(parse_states("BOUND-INACTIVE 0 0 127.0.0.1:1 0.0.0.0:*\n").is_err());
        assert_eq!(ss_state("UNCONN"), Some("CLOSE"));
    }

    #[test]
    fn tcp_listeners_from_ss_tln() {
        let listeners = parse_tcp_listeners(&fixture("ss/tln.txt")).expect("parses");
        let find = |local: &str| listeners.iter().find(|l| l.local == local).cloned();
        let full = SsListener {
            local: "127.0.0.1:5000".into(),
            recv_q: 9,
            send_q: 8,
        };
        assert_eq!(find("127.0.0.1:5000"), Some(full));
        assert_eq!(find("[::1]:5002").map(|l| l.send_q), Some(64));
        // ss prints the dual-stack wildcard as `*:5003`.
        assert_eq!(find("[::]:5003").map(|l| l.send_q), Some(64));
        assert_eq!(listeners.len(), 5);
    }

    #[test]
    fn unix_listeners_from_ss_xl() {
        let listeners = parse_unix_listeners(&fixture("ss/xl.txt")).expect("parses");
        let expected = SsListener {
            local: "/tmp/cap/app.sock".into(),
            recv_q: 5,
            send_q: 4,
        };
        assert_eq!(listeners, vec![expected]);
    }

    #[test]
    fn drops_from_ss_tlmn() {
        let drops = parse_listener_drops(&fixture("ss/tlmn.txt")).expect("parses");
        assert_eq!(drops["127.0.0.1:5000"], 21);
        assert_eq!(drops["127.0.0.1:5001"], 0);
        assert_eq!(drops["[::]:5003"], 0);
        assert_eq!(drops.len(), 5);
    }

    #[test]
    fn close_wait_per_process_from_ss_tanp() {
        let counts = parse_per_process(&fixture("ss/tanp-close-wait.txt")).expect("parses");
        // The three unaccepted CLOSE_WAIT children on :5000 have no owner.
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![(("leaky".to_owned(), 2799), 5)]
        );
    }

    #[test]
    fn per_process_with_shared_socket() {
        let line =
            r#"1 0 127.0.0.1:80 127.0.0.1:5 users:(("nginx",pid=10,fd=3),("nginx",pid=11,fd=3))"#;
        let counts = parse_per_process(line).expect("parses");
        assert_eq!(counts[&("nginx".to_owned(), 10)], 1);
        assert_eq!(counts[&("nginx".to_owned(), 11)], 1);
    }

    #[test]
    fn counters_from_nstat() {
        let counters = parse_nstat(&fixture("nstat/asz.txt")).expect("parses");
        assert_eq!(counters["TcpExtListenOverflows"], 21);
        assert_eq!(counters["TcpExtListenDrops"], 21);
        assert_eq!(counters["TcpExtTCPReqQFullDrop"], 0);
    }
}
