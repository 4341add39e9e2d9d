//! Per-namespace kernel tables: TcpExt/Tcp counters, sockstat, sysctls, local addresses.
//!
//! Owns the reads of `/proc/thread-self/net/*` and `/proc/sys/net/*`; the parsing is in
//! [`parse`], pure. Everything is read as the *calling thread* sees it: `/proc/self/net`
//! and `/proc/net` follow the main thread's namespace, and a thread that has called
//! `setns(CLONE_NEWNET)` to look at another namespace must not read the main thread's. The
//! sysctls under `/proc/sys/net` already follow the reading thread's namespace.
//!
//! What cannot be read or parsed becomes a note, never a panic and never silence.

pub mod parse;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::IpAddr;

use super::notes;
use crate::model::{SockStat, Sysctls, UdpCounters};

pub use parse::{ParseError, Section};

/// What one namespace's /proc/net and /proc/sys/net say.
#[derive(Debug, Clone, Default)]
pub struct NetTables {
    /// Every `TcpExt:` field of `netstat`.
    pub tcp_ext: BTreeMap<String, u64>,
    /// Every non-negative `Tcp:` field of `snmp`: `MaxConn`, always -1 on Linux ("no
    /// fixed limit"), is left out because the model's counters are unsigned.
    pub tcp: BTreeMap<String, u64>,
    pub sockstat: Option<SockStat>,
    /// `Udp:` of `snmp` and `Udp6*` of `snmp6`.
    pub udp: UdpCounters,
    pub sysctl: Sysctls,
    /// Addresses of this namespace's interfaces, IPv4 then IPv6, sorted, without
    /// duplicates. Of the loopback range only `127.0.0.1` (and any other address
    /// configured on `lo`) is listed: a reader asking "is this peer local" should also
    /// take every `IpAddr::is_loopback` address as local.
    pub local_addrs: Vec<IpAddr>,
    /// Files that could not be read or parsed, as operator-facing notes.
    pub notes: Vec<String>,
}

const NET: &str = "/proc/thread-self/net";

/// Read the tables of the namespace the calling thread is in.
pub fn read_net_tables() -> NetTables {
    let mut notes = Notes::default();
    let mut tables = NetTables {
        sysctl: read_sysctls(&mut notes),
        local_addrs: read_local_addrs(&mut notes),
        ..NetTables::default()
    };
    // Counters last: the caller dumps the listeners right after, and `listen-drops` compares
    // a listener's own drop counter with ListenDrops, so the two must be read together.
    read_counters_into(&mut tables, &mut notes);
    tables.notes = notes.0;
    tables
}

/// Read only the counters (`netstat`, `snmp`, `sockstat`) of the calling thread's
/// namespace: the part that changes from one second to the next, and the cheapest. The
/// sysctls and addresses are left empty.
pub fn read_counters() -> NetTables {
    let mut notes = Notes::default();
    let mut tables = NetTables::default();
    read_counters_into(&mut tables, &mut notes);
    tables.notes = notes.0;
    tables
}

/// `netstat` (ListenDrops) is read last, closest to the listener dump that follows.
fn read_counters_into(tables: &mut NetTables, notes: &mut Notes) {
    if let Some(mut sections) = notes.load(&format!("{NET}/snmp"), parse::parse_snmp) {
        tables.tcp = notes.section(&mut sections, "Tcp", "snmp");
        tables.udp.v4 = notes.section(&mut sections, "Udp", "snmp");
    }
    // Absent while IPv6 is disabled: then there is no UDP over IPv6 to count.
    let snmp6 = format!("{NET}/snmp6");
    match std::fs::read_to_string(&snmp6) {
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        read => {
            if let Some(v6) = notes.parsed(&snmp6, read, |t| parse::parse_snmp6(t, "Udp6")) {
                tables.udp.v6 = v6;
            }
        }
    }
    tables.sockstat = notes.load(&format!("{NET}/sockstat"), parse::parse_sockstat);
    if let Some(mut sections) = notes.load(&format!("{NET}/netstat"), parse::parse_snmp) {
        tables.tcp_ext = notes.section(&mut sections, "TcpExt", "netstat");
    }
}

fn read_sysctls(notes: &mut Notes) -> Sysctls {
    let mut number =
        |name: &str| notes.load(&format!("/proc/sys/net/{name}"), parse::parse_sysctl_u64);
    let somaxconn = number("core/somaxconn");
    let tcp_max_syn_backlog = number("ipv4/tcp_max_syn_backlog");
    let tcp_syncookies = number("ipv4/tcp_syncookies");
    let tcp_abort_on_overflow = number("ipv4/tcp_abort_on_overflow");
    let tcp_fin_timeout = number("ipv4/tcp_fin_timeout");
    let tcp_max_orphans = number("ipv4/tcp_max_orphans");
    let tcp_syn_retries = number("ipv4/tcp_syn_retries");
    let tcp_synack_retries = number("ipv4/tcp_synack_retries");
    let tcp_keepalive_time = number("ipv4/tcp_keepalive_time");
    let tcp_keepalive_intvl = number("ipv4/tcp_keepalive_intvl");
    let tcp_keepalive_probes = number("ipv4/tcp_keepalive_probes");
    let tcp_tw_reuse = number("ipv4/tcp_tw_reuse");
    // Per namespace only on recent kernels: elsewhere a namespace has no such file, and the
    // host's value applies, which a thread inside the namespace cannot read.
    let rmem_default = notes.optional("/proc/sys/net/core/rmem_default", parse::parse_sysctl_u64);
    let rmem_max = notes.optional("/proc/sys/net/core/rmem_max", parse::parse_sysctl_u64);
    let udp_mem = notes.optional("/proc/sys/net/ipv4/udp_mem", parse::parse_three);
    Sysctls {
        somaxconn,
        tcp_max_syn_backlog,
        tcp_syncookies,
        tcp_abort_on_overflow,
        ip_local_port_range: notes.load(
            "/proc/sys/net/ipv4/ip_local_port_range",
            parse::parse_port_range,
        ),
        ip_local_reserved_ports: notes
            .load(
                "/proc/sys/net/ipv4/ip_local_reserved_ports",
                parse::parse_reserved_ports,
            )
            .unwrap_or_default(),
        tcp_fin_timeout,
        tcp_max_orphans,
        tcp_syn_retries,
        tcp_synack_retries,
        tcp_keepalive_time,
        tcp_keepalive_intvl,
        tcp_keepalive_probes,
        tcp_tw_reuse,
        rmem_default,
        rmem_max,
        udp_mem,
    }
}

fn read_local_addrs(notes: &mut Notes) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    if let Some(v4) = notes.load(&format!("{NET}/fib_trie"), parse::parse_fib_trie_local) {
        addrs.extend(v4.into_iter().map(IpAddr::V4));
    }
    // The file exists only while IPv6 is enabled; its absence means no IPv6 address.
    let if_inet6 = format!("{NET}/if_inet6");
    match std::fs::read_to_string(&if_inet6) {
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        read => {
            if let Some(v6) = notes.parsed(&if_inet6, read, parse::parse_if_inet6) {
                addrs.extend(v6.into_iter().map(IpAddr::V6));
            }
        }
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// Whether the calling thread's namespace may rewrite connections' addresses: NAT rewrites
/// only tracked connections, so a namespace that tracks none (`nf_conntrack_count` is 0, or
/// connection tracking is not loaded) rewrites none. A count that cannot be read is taken
/// as tracking: the caller then doubts, rather than trusts, a 4-tuple.
pub fn tracks_connections() -> bool {
    match std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count") {
        Ok(text) => text.trim().parse::<u64>().map_or(true, |n| n > 0),
        Err(err) => err.kind() != ErrorKind::NotFound,
    }
}

/// The notes of one reading, one per file that failed.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    /// Reads `path` and parses it; on failure, `None` and a note naming the file.
    fn load<T>(
        &mut self,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let read = std::fs::read_to_string(path);
        self.parsed(path, read, parse)
    }

    /// As [`Notes::load`], but a file that does not exist is no note.
    fn optional<T>(
        &mut self,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        match std::fs::read_to_string(path) {
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            read => self.parsed(path, read, parse),
        }
    }

    fn parsed<T>(
        &mut self,
        path: &str,
        read: std::io::Result<String>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let text = match read {
            Ok(text) => text,
            Err(err) => {
                self.0.push(notes::unread_file(path, &err));
                return None;
            }
        };
        match parse(&text) {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.push(notes::unparsed_file(path, &err));
                None
            }
        }
    }

    /// The non-negative fields of `name`, or a note when the file has no such section.
    fn section(
        &mut self,
        sections: &mut BTreeMap<String, Section>,
        name: &str,
        file: &str,
    ) -> BTreeMap<String, u64> {
        if let Some(section) = sections.remove(name) {
            section.values
        } else {
            self.0
                .push(notes::missing_section(&format!("{NET}/{file}"), name));
            BTreeMap::new()
        }
    }
}

#[cfg(test)]
mod tests;
