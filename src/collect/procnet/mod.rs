//! Per-namespace kernel tables: TcpExt/Tcp counters, sockstat, sysctls, local addresses.
//!
//! Owns the reads of `/proc/thread-self/net/*` and `/proc/sys/net/*`; the parsing is in
//! [`parse`], pure. Everything is read as the *calling thread* sees it: `/proc/self/net`
//! and `/proc/net` follow the main thread's namespace, and a thread that has called
//! `setns(CLONE_NEWNET)` to look at another namespace must not read the main thread's. The
//! sysctls under `/proc/sys/net` already follow the reading thread's namespace.
//!
//! **Why files are opened relative to their directory.** Every namespace has its own
//! `/proc/sys/net/ipv4` and `/proc/sys/net/core` directory entries, all under the one
//! `/proc/sys/net`, so the kernel finds the right one by comparing it with each
//! namespace's in turn: one such lookup costs about 1 µs per namespace on the host (1 ms
//! with 1,000 namespaces). A file under one of them is found at once. So each directory is
//! opened once per read of a namespace and its files relative to it, and one buffer holds
//! each file in turn: with 1,000 namespaces, reading the sysctls by full path took 2 s of
//! kernel time, relative to the two directories 0.6 s. Threads look the two up one at a
//! time (see `SYSCTL_DIRS`). For the same reason the host's own
//! sysctls under `/proc/sys/net/netfilter`, the same in every namespace, are read once for
//! all ([`HostSysctls`]), and whether a namespace tracks connections is read from
//! `stat/nf_conntrack` under `/proc/thread-self/net`, not from `nf_conntrack_count`.
//!
//! What cannot be read or parsed becomes a [`TableProblem`] (which the notes word), never a
//! panic and never silence.

pub mod conntrack;
pub mod parse;

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use crate::model::{
    CONNTRACK_PORTS_SCAN, Conntrack, ConntrackPorts, SockStat, Sysctls, UdpCounters,
};

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
    /// `stat/nf_conntrack`: `None` when connection tracking is not loaded.
    pub conntrack: Option<Conntrack>,
    /// Where the table's entries go, when asked ([`read_conntrack_ports`]).
    pub conntrack_ports: Option<ConntrackPorts>,
    pub sysctl: Sysctls,
    /// Addresses of this namespace's interfaces, IPv4 then IPv6, sorted, without
    /// duplicates. Of the loopback range only `127.0.0.1` (and any other address
    /// configured on `lo`) is listed: a reader asking "is this peer local" should also
    /// take every `IpAddr::is_loopback` address as local.
    pub local_addrs: Vec<IpAddr>,
    /// Files that could not be read or parsed.
    pub problems: Vec<TableProblem>,
    /// `sockets: used` of `sockstat`: the namespace's sockets, of every kind.
    pub sockets_used: Option<u64>,
    /// The sum of `protocols`' `sockets` column, read just before `sockstat` (by
    /// [`read_net_tables`] only).
    pub protocol_sockets: Option<u64>,
    /// `inuse` of `TCP6:` (`sockstat6`): with `sockstat`'s `TCP:` line, what says that a
    /// namespace holds no TCP socket. Zero where `sockstat6` does not exist (IPv6
    /// disabled); `None` where unread.
    pub tcp6_inuse: Option<u64>,
    /// `inuse` of `UDP:` (`sockstat`) plus that of `UDP6:` (`sockstat6`), alike.
    pub udp_inuse: Option<u64>,
}

impl NetTables {
    /// Whether the namespace may hold TCP sockets that are bound but neither listening nor
    /// connected. Every protocol counts its sockets, but TCP only those in its hash tables:
    /// a bound-inactive socket is one of the few counted in `sockets: used` and by no
    /// protocol. When the two agree there is none, and the dump can leave out the kernel's
    /// bind table, a walk of every bound port of the host. A socket made between the two
    /// reads, a moment apart, could hide one such socket from that dump; anything else
    /// counted by no protocol (an unbound socket) only makes the dump walk the table.
    pub fn bound_inactive_possible(&self) -> bool {
        match (self.sockets_used, self.protocol_sockets) {
            (Some(used), Some(counted)) => used != counted,
            _ => true,
        }
    }

    /// Whether the kernel counts no TCP socket in the namespace: none in its hash tables
    /// (`inuse` of `TCP:` and `TCP6:`, listeners and connections of both families; a
    /// SYN_RECV request socket needs a listener) and none in TIME_WAIT (`tw`). Such a
    /// namespace need not be dumped: its dump would walk the kernel's TCP table, shared by
    /// every namespace, to find nothing. Bound-inactive sockets are in no count but
    /// `sockets: used` ([`NetTables::bound_inactive_possible`]).
    pub fn holds_no_tcp(&self) -> bool {
        self.sockstat.is_some_and(|s| s.inuse == 0 && s.tw == 0) && self.tcp6_inuse == Some(0)
    }

    /// Whether the kernel counts no UDP socket in the namespace (`inuse` of `UDP:` and
    /// `UDP6:`: bound sockets, the only ones a dump shows).
    pub fn holds_no_udp(&self) -> bool {
        self.udp_inuse == Some(0)
    }

    /// Whether the namespace may rewrite connections' addresses: NAT rewrites only tracked
    /// connections, so a namespace that tracks none (`entries` of `stat/nf_conntrack` is 0,
    /// or connection tracking is not loaded: no such file) rewrites none. A file that could
    /// not be read or parsed is taken as tracking: the caller then doubts, rather than
    /// trusts, a 4-tuple. Read from the counters, not from `nf_conntrack_count`: a file under
    /// `/proc/sys/net` costs a lookup through every namespace's directories.
    pub fn tracks_connections(&self) -> bool {
        match &self.conntrack {
            Some(conntrack) => conntrack.count > 0,
            None => self
                .problems
                .iter()
                .any(|p| p.path().ends_with(CONNTRACK_STAT)),
        }
    }
}

/// A file of the tables that could not be read or parsed.
#[derive(Debug, Clone)]
pub enum TableProblem {
    /// The file could not be read (or was not text).
    Unread { path: String, err: Arc<io::Error> },
    /// The file was read but did not parse.
    Unparsed { path: String, err: ParseError },
    /// A counters file (`snmp`, `netstat`) lacks a section (`Tcp`, `TcpExt`).
    MissingSection { path: String, section: &'static str },
}

impl TableProblem {
    /// The file the problem is with.
    pub fn path(&self) -> &str {
        match self {
            TableProblem::Unread { path, .. }
            | TableProblem::Unparsed { path, .. }
            | TableProblem::MissingSection { path, .. } => path,
        }
    }
}

const NET: &str = "/proc/thread-self/net";
const SYS_IPV4: &str = "/proc/sys/net/ipv4";
const SYS_CORE: &str = "/proc/sys/net/core";
const SYS_NETFILTER: &str = "/proc/sys/net/netfilter";
/// Connection tracking's statistics, under [`NET`].
const CONNTRACK_STAT: &str = "stat/nf_conntrack";

/// The sysctls that are the host's: the same file, with the same value, in every namespace
/// (`net.netfilter.nf_conntrack_max` and `_buckets`, read-only outside the initial one).
/// Read once for all the namespaces of a pass ([`read_host_sysctls`]): opening
/// `/proc/sys/net/netfilter` costs a lookup through every namespace's directories.
#[derive(Debug, Clone, Default)]
pub struct HostSysctls {
    nf_conntrack_max: Option<u64>,
    nf_conntrack_buckets: Option<u64>,
    /// Files that could not be read or parsed, told with every namespace's tables.
    problems: Vec<TableProblem>,
}

/// Read the host's sysctls (see [`HostSysctls`]), from the calling thread's namespace.
pub fn read_host_sysctls() -> HostSysctls {
    let mut reader = Reader::default();
    // Absent without the module.
    let netfilter = Dir::open(SYS_NETFILTER);
    let nf_conntrack_max = reader.optional(&netfilter, "nf_conntrack_max", parse::parse_sysctl_u64);
    let nf_conntrack_buckets =
        reader.optional(&netfilter, "nf_conntrack_buckets", parse::parse_sysctl_u64);
    HostSysctls {
        nf_conntrack_max,
        nf_conntrack_buckets,
        problems: reader.problems,
    }
}

/// Read the tables of the namespace the calling thread is in; `host` is what the host's
/// sysctls said (read once for every namespace, see [`HostSysctls`]).
pub fn read_net_tables(host: &HostSysctls) -> NetTables {
    let mut reader = Reader::default();
    let net = Dir::open(NET);
    let mut tables = NetTables {
        sysctl: read_sysctls(&mut reader, host),
        local_addrs: read_local_addrs(&mut reader, &net),
        ..NetTables::default()
    };
    // Counters last: the caller dumps the listeners right after, and `listen-drops` compares
    // a listener's own drop counter with ListenDrops, so the two must be read together.
    read_counters_into(&mut tables, &mut reader, &net, true);
    tables.problems = reader.problems;
    tables
}

/// Read only the counters (`netstat`, `snmp`, `sockstat`) of the calling thread's
/// namespace: the part that changes from one second to the next, and the cheapest. The
/// sysctls and addresses are left empty.
pub fn read_counters() -> NetTables {
    let mut reader = Reader::default();
    let mut tables = NetTables::default();
    read_counters_into(&mut tables, &mut reader, &Dir::open(NET), false);
    tables.problems = reader.problems;
    tables
}

/// The TCP sockets of the calling thread's namespace as the kernel counts them (`inuse` and
/// `tw` of `sockstat`, `inuse` of `sockstat6`): about what a full dump of it hands over.
/// `None` when `sockstat` cannot be read.
pub fn tcp_sockets_here() -> Option<u64> {
    let read = |name: &str| std::fs::read_to_string(format!("{NET}/{name}")).ok();
    let v4 = parse::parse_sockstat(&read("sockstat")?).ok()?;
    let v6 = read("sockstat6")
        .and_then(|text| parse::parse_inuse(&text, "TCP6:").ok().flatten())
        .unwrap_or(0);
    Some(v4.inuse + v4.tw + v6)
}

/// `netstat` (ListenDrops) is read last, closest to the listener dump that follows;
/// `protocols`, when asked for, just before `sockstat`, to be compared with it.
fn read_counters_into(tables: &mut NetTables, reader: &mut Reader, net: &Dir, protocols: bool) {
    if let Some(mut sections) = reader.load(net, "snmp", parse::parse_snmp) {
        tables.tcp = reader.section(&mut sections, "Tcp", "snmp");
        tables.udp.v4 = reader.section(&mut sections, "Udp", "snmp");
    }
    // Absent while IPv6 is disabled: then there is no UDP over IPv6 to count.
    if let Some(v6) = reader.optional(net, "snmp6", |t| parse::parse_snmp6(t, "Udp6")) {
        tables.udp.v6 = v6;
    }
    if protocols {
        tables.protocol_sockets = reader.load(net, "protocols", parse::parse_protocol_sockets);
    }
    if let Some((sockstat, used, udp)) = reader.load(net, "sockstat", |text| {
        Ok((
            parse::parse_sockstat(text)?,
            parse::parse_sockets_used(text).ok(),
            parse::parse_inuse(text, "UDP:")?,
        ))
    }) {
        tables.sockstat = Some(sockstat);
        tables.sockets_used = used;
        tables.udp_inuse = udp;
    }
    // Absent while nf_conntrack is not loaded: no table, nothing to say. Its `entries` is
    // the namespace's count, so the one file is read, not `nf_conntrack_count` too: a file
    // under `/proc/sys/net` costs a lookup through every namespace's directories.
    tables.conntrack = reader
        .optional(net, CONNTRACK_STAT, conntrack::parse_conntrack_stat)
        .map(|stat| Conntrack {
            count: stat.entries,
            drop: stat.drop,
            early_drop: stat.early_drop,
            insert_failed: stat.insert_failed,
        });
    // Absent while IPv6 is disabled: then there is no socket over IPv6.
    let problems = reader.problems.len();
    let v6 = reader.optional(net, "sockstat6", |text| {
        Ok((
            parse::parse_inuse(text, "TCP6:")?,
            parse::parse_inuse(text, "UDP6:")?,
        ))
    });
    let (tcp6, udp6) = match v6 {
        Some((tcp6, udp6)) => (tcp6, udp6),
        None if reader.problems.len() > problems => (None, None),
        None => (Some(0), Some(0)),
    };
    tables.tcp6_inuse = tcp6;
    tables.udp_inuse = tables.udp_inuse.zip(udp6).map(|(v4, v6)| v4 + v6);
    if let Some(mut sections) = reader.load(net, "netstat", parse::parse_snmp) {
        tables.tcp_ext = reader.section(&mut sections, "TcpExt", "netstat");
    }
}

/// Held while a thread looks up a namespace's `ipv4` and `core` under `/proc/sys/net`. The
/// kernel compares the name with every namespace's entry in turn, each comparison under one
/// spinlock of its own (`sysctl_lock`): two threads doing it at once contend for it through
/// the whole walk, and on a virtual machine spin while its holder waits for a CPU. One
/// thread at a time, the others meanwhile dump their namespaces: with 1,000 namespaces on
/// two cores the report's CPU fell by a sixth. It guards no data.
static SYSCTL_DIRS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn read_sysctls(reader: &mut Reader, host: &HostSysctls) -> Sysctls {
    let (ipv4, core) = {
        let _one_thread_at_a_time = SYSCTL_DIRS.lock();
        (Dir::open(SYS_IPV4), Dir::open(SYS_CORE))
    };
    let mut number = |dir: &Dir, name: &str| reader.load(dir, name, parse::parse_sysctl_u64);
    let somaxconn = number(&core, "somaxconn");
    let tcp_max_syn_backlog = number(&ipv4, "tcp_max_syn_backlog");
    let tcp_syncookies = number(&ipv4, "tcp_syncookies");
    let tcp_abort_on_overflow = number(&ipv4, "tcp_abort_on_overflow");
    let tcp_fin_timeout = number(&ipv4, "tcp_fin_timeout");
    let tcp_max_orphans = number(&ipv4, "tcp_max_orphans");
    let tcp_syn_retries = number(&ipv4, "tcp_syn_retries");
    let tcp_synack_retries = number(&ipv4, "tcp_synack_retries");
    let tcp_keepalive_time = number(&ipv4, "tcp_keepalive_time");
    let tcp_keepalive_intvl = number(&ipv4, "tcp_keepalive_intvl");
    let tcp_keepalive_probes = number(&ipv4, "tcp_keepalive_probes");
    let tcp_tw_reuse = number(&ipv4, "tcp_tw_reuse");
    // Per namespace only on recent kernels: elsewhere a namespace has no such file, and the
    // host's value applies, which a thread inside the namespace cannot read.
    let rmem_default = reader.optional(&core, "rmem_default", parse::parse_sysctl_u64);
    let rmem_max = reader.optional(&core, "rmem_max", parse::parse_sysctl_u64);
    let udp_mem = reader.optional(&ipv4, "udp_mem", parse::parse_three);
    let tcp_max_tw_buckets = reader.load(&ipv4, "tcp_max_tw_buckets", parse::parse_sysctl_u64);
    // The host's only: a namespace other than the initial one has no such file.
    let tcp_mem = reader.optional(&ipv4, "tcp_mem", parse::parse_three);
    // The host's, readable in every namespace: read once for all of them.
    reader.problems.extend(host.problems.iter().cloned());
    let (nf_conntrack_max, nf_conntrack_buckets) =
        (host.nf_conntrack_max, host.nf_conntrack_buckets);
    Sysctls {
        somaxconn,
        tcp_max_syn_backlog,
        tcp_syncookies,
        tcp_abort_on_overflow,
        ip_local_port_range: reader.load(&ipv4, "ip_local_port_range", parse::parse_port_range),
        ip_local_reserved_ports: reader
            .load(
                &ipv4,
                "ip_local_reserved_ports",
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
        tcp_max_tw_buckets,
        tcp_mem,
        nf_conntrack_max,
        nf_conntrack_buckets,
    }
}

fn read_local_addrs(reader: &mut Reader, net: &Dir) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    if let Some(v4) = reader.load(net, "fib_trie", parse::parse_fib_trie_local) {
        addrs.extend(v4.into_iter().map(IpAddr::V4));
    }
    // The file exists only while IPv6 is enabled; its absence means no IPv6 address.
    if let Some(v6) = reader.optional(net, "if_inet6", parse::parse_if_inet6) {
        addrs.extend(v6.into_iter().map(IpAddr::V6));
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// Where the calling thread's namespace's connection tracking entries go: the destination
/// ports of its first [`CONNTRACK_PORTS_SCAN`] entries. Read only when asked (the kernel
/// walks its table, shared by every namespace, to list them); `None` without the module.
pub fn read_conntrack_ports() -> Result<Option<ConntrackPorts>, TableProblem> {
    let path = format!("{NET}/nf_conntrack");
    match std::fs::File::open(&path) {
        Ok(file) => {
            conntrack::tally_conntrack_ports(std::io::BufReader::new(file), CONNTRACK_PORTS_SCAN)
                .map(Some)
                .map_err(|err| TableProblem::Unread {
                    path,
                    err: Arc::new(err),
                })
        }
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(TableProblem::Unread {
            path,
            err: Arc::new(err),
        }),
    }
}

/// A directory of one namespace's files, opened once for all of them (see the module docs).
struct Dir {
    /// Its path, for the notes.
    path: &'static str,
    fd: Result<OwnedFd, rustix::io::Errno>,
    /// A directory of sysctls (under `/proc/sys`), whose files a short read reads whole.
    sysctls: bool,
}

impl Dir {
    fn open(path: &'static str) -> Dir {
        let how = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Dir {
            path,
            fd: rustix::fs::open(path, how, Mode::empty()),
            sysctls: path.starts_with("/proc/sys/"),
        }
    }

    /// The whole of file `name` into `buf`, which is cleared first.
    fn read(&self, name: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let dir = self.fd.as_ref().map_err(|&err| std::io::Error::from(err))?;
        let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        buf.clear();
        // Read straight to the end: `read_to_end` on a `File` would first ask for a size that
        // a /proc file does not know, two more system calls per file.
        loop {
            buf.reserve(4096);
            let room = buf.capacity() - buf.len();
            let read = rustix::io::read(&fd, rustix::buffer::spare_capacity(buf))?;
            // A sysctl's handler writes all it has at the first read with room for it; the
            // next read only finds the end, after the kernel zeroed a buffer as large as the
            // one asked for.
            if read == 0 || (self.sysctls && read < room) {
                return Ok(());
            }
        }
    }
}

/// The reads of one namespace: one buffer for every file, and a problem per file that
/// failed.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    problems: Vec<TableProblem>,
}

impl Reader {
    /// Reads `name` in `dir` and parses it; on failure, `None` and a problem naming the file.
    fn load<T>(
        &mut self,
        dir: &Dir,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let read = dir.read(name, &mut self.buf);
        self.parsed_read(dir, name, read, parse)
    }

    /// As [`Reader::load`], but a file that does not exist is no problem.
    fn optional<T>(
        &mut self,
        dir: &Dir,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        match dir.read(name, &mut self.buf) {
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            read => self.parsed_read(dir, name, read, parse),
        }
    }

    fn parsed_read<T>(
        &mut self,
        dir: &Dir,
        name: &str,
        read: std::io::Result<()>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let text = read.and_then(|()| {
            std::str::from_utf8(&self.buf)
                .map_err(|err| std::io::Error::new(ErrorKind::InvalidData, err))
        });
        parsed(&mut self.problems, (dir.path, name), text, parse)
    }

    /// The non-negative fields of `name`, or a problem when the file has no such section.
    fn section(
        &mut self,
        sections: &mut BTreeMap<String, Section>,
        name: &'static str,
        file: &str,
    ) -> BTreeMap<String, u64> {
        if let Some(section) = sections.remove(name) {
            section.values
        } else {
            self.problems.push(TableProblem::MissingSection {
                path: format!("{NET}/{file}"),
                section: name,
            });
            BTreeMap::new()
        }
    }
}

/// The parsed text of file `name` in `dir`, or `None` and a problem naming the file.
fn parsed<T>(
    problems: &mut Vec<TableProblem>,
    (dir, name): (&str, &str),
    text: std::io::Result<&str>,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Option<T> {
    let path = || format!("{dir}/{name}");
    let text = match text {
        Ok(text) => text,
        Err(err) => {
            let err = Arc::new(err);
            problems.push(TableProblem::Unread { path: path(), err });
            return None;
        }
    };
    match parse(text) {
        Ok(value) => Some(value),
        Err(err) => {
            problems.push(TableProblem::Unparsed { path: path(), err });
            None
        }
    }
}

#[cfg(test)]
mod tests;
