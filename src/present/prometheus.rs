//! The Prometheus exposition of an analysis: text format 0.0.4, written by a pure function.
//! A face beside the JSON and the text report: `serve` answers each scrape with it, and
//! `report --format prometheus` writes it for node_exporter's textfile collector.
//!
//! [`FAMILIES`] is the contract: every metric name, type, help text and label set the
//! exporter can write, in the order it writes them. Every family gets its `# HELP` and
//! `# TYPE` lines even when it has no sample. Nothing here reads the kernel or judges
//! anything: the numbers come from the analysis views, the findings are the analysis's own.
//!
//! Cardinality is bounded by what the host has (network namespaces, TCP states, listeners,
//! finding ids) except for processes, which get series only when they are among the top K by
//! sockets or named in a finding. A process is its pid and its comm: no uid, no path, and
//! (the snapshot has none) no command line or environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{Display, Write as _};
use std::io::{self, Write};

use crate::analyze::{Analysis, ListenerView, NetnsView, ProcessView, Proto};
use crate::present::escape::escape;

/// `gauge` or `counter`: only counters carry the `_total` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One metric family: what the README's metrics table documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const LISTENER_LABELS: &[&str] = &["netns", "proto", "local", "comm", "member"];

pub const TCP_SOCKETS: Family = Family {
    name: "sockscope_tcp_sockets",
    kind: Kind::Gauge,
    labels: &["netns", "state"],
    help: "TCP sockets (IPv4 and IPv6) by state, as ss -tan counts them.",
};
pub const LISTENER_ACCEPT_QUEUE: Family = Family {
    name: "sockscope_listener_accept_queue",
    kind: Kind::Gauge,
    labels: LISTENER_LABELS,
    help: "Connections waiting in a listener's accept queue (ss Recv-Q); the listener is full \
           when this exceeds the backlog.",
};
pub const LISTENER_BACKLOG: Family = Family {
    name: "sockscope_listener_backlog",
    kind: Kind::Gauge,
    labels: LISTENER_LABELS,
    help: "A listener's effective backlog (ss Send-Q): min(listen() argument, \
           net.core.somaxconn); it admits backlog + 1 connections.",
};
pub const LISTENER_SYN_RECV: Family = Family {
    name: "sockscope_listener_syn_recv",
    kind: Kind::Gauge,
    labels: LISTENER_LABELS,
    help: "SYN_RECV request sockets (handshakes in progress) of a TCP listener.",
};
pub const LISTENER_DROPS: Family = Family {
    name: "sockscope_listener_drops_total",
    kind: Kind::Counter,
    labels: LISTENER_LABELS,
    help: "SYNs and ACKs a TCP listener dropped (SK_MEMINFO_DROPS, the d<N> of ss -tlm).",
};
pub const LISTENER_ACCEPTORS: Family = Family {
    name: "sockscope_listener_acceptors",
    kind: Kind::Gauge,
    labels: &["netns", "proto", "local", "member", "how", "state"],
    help: "Threads and processes that drain a listener with something waiting (how: accept, \
           epoll, or holds: holding it and doing neither), by scheduler state; absent while \
           nothing waits on it.",
};
pub const PROCESS_CLOSE_WAIT: Family = Family {
    name: "sockscope_process_close_wait",
    kind: Kind::Gauge,
    labels: &["netns", "pid", "comm"],
    help: "CLOSE_WAIT sockets a process holds: connections its peer closed and it did not.",
};
pub const PROCESS_FDS: Family = Family {
    name: "sockscope_process_fds",
    kind: Kind::Gauge,
    labels: &["pid", "comm"],
    help: "Open file descriptors of a process.",
};
pub const PROCESS_FD_LIMIT: Family = Family {
    name: "sockscope_process_fd_limit",
    kind: Kind::Gauge,
    labels: &["pid", "comm"],
    help: "Soft RLIMIT_NOFILE of a process; absent when unlimited or unreadable.",
};
/// Not `sockscope_kernel_counter_total`: promtool's linter rejects a counter whose name says
/// `counter`.
pub const KERNEL_TCPEXT: Family = Family {
    name: "sockscope_kernel_tcpext_total",
    kind: Kind::Counter,
    labels: &["netns", "name"],
    help: "TcpExt counters of /proc/net/netstat that bear on accept queues, SYN floods and \
           leaks, per network namespace.",
};
pub const CONNECTIONS_IN_TROUBLE: Family = Family {
    name: "sockscope_connections_in_trouble",
    kind: Kind::Gauge,
    labels: &["netns", "kind"],
    help: "Sockets in trouble, by kind: half_open (request sockets whose SYN-ACK was \
           retransmitted), connecting (connects retrying their SYN), receive_stalled (unread \
           data that does not drain), send_stalled (writers blocked by a zero window or \
           retransmitting), peer_gone (ESTABLISHED sockets whose peer on this host or in a \
           scanned namespace is gone), silent_peer (accepted connections whose peer sent \
           nothing since the handshake, keepalive off, past silent_peer_after).",
};
pub const STALLED_DESTINATIONS: Family = Family {
    name: "sockscope_stalled_destination_sockets",
    kind: Kind::Gauge,
    labels: &["netns", "remote", "kind"],
    help: "Sockets to one destination that cannot connect (kind connecting: SYN \
           retransmitted) or cannot send (kind send_stalled), for the destinations with the \
           most such sockets (at most 10 per namespace and kind).",
};
pub const UDP_SOCKET_DROPS: Family = Family {
    name: "sockscope_udp_socket_drops_total",
    kind: Kind::Counter,
    labels: &["netns", "local", "comm"],
    help: "Datagrams a UDP socket dropped (SK_MEMINFO_DROPS, the d<N> of ss -uam), for \
           sockets that dropped any, the most dropping first, at most 50 per namespace; \
           SO_REUSEPORT siblings summed.",
};
pub const KERNEL_UDP: Family = Family {
    name: "sockscope_kernel_udp_total",
    kind: Kind::Counter,
    labels: &["netns", "name"],
    help: "Udp and Udp6 counters of /proc/net/snmp and snmp6, both families summed, per \
           network namespace.",
};
pub const EPHEMERAL_PORTS_IN_USE: Family = Family {
    name: "sockscope_ephemeral_ports_in_use",
    kind: Kind::Gauge,
    labels: &["netns", "local", "remote"],
    help: "TCP sockets from one local address to one destination whose local port lies in \
           the usable ephemeral range (TIME_WAIT included), the 20 busiest destinations.",
};
pub const EPHEMERAL_PORT_RANGE: Family = Family {
    name: "sockscope_ephemeral_port_range_size",
    kind: Kind::Gauge,
    labels: &["netns"],
    help: "Ports connect() can pick from: ip_local_port_range less ip_local_reserved_ports.",
};
pub const KERNEL_TABLE_ENTRIES: Family = Family {
    name: "sockscope_kernel_table_entries",
    kind: Kind::Gauge,
    labels: &["netns", "table"],
    help: "What fills a table of the kernel that refuses connections when full: conntrack \
           (nf_conntrack_count, per namespace), time_wait (TIME_WAIT sockets, per namespace), \
           orphans (orphaned sockets) and tcp_memory_pages (pages charged to TCP; the host's).",
};
pub const KERNEL_TABLE_LIMIT: Family = Family {
    name: "sockscope_kernel_table_limit",
    kind: Kind::Gauge,
    labels: &["netns", "table"],
    help: "The limit of each table of sockscope_kernel_table_entries: nf_conntrack_max (the \
           host's), tcp_max_tw_buckets (per namespace), tcp_max_orphans, and tcp_mem's \
           pressure threshold (the host's, readable in its own namespace only).",
};
pub const CONNTRACK_DROPS: Family = Family {
    name: "sockscope_conntrack_drops_total",
    kind: Kind::Counter,
    labels: &["netns", "kind"],
    help: "Connections the connection tracking table refused (kind drop), evicted entries for \
           (early_drop) or failed to insert (insert_failed), summed over CPUs.",
};
pub const FINDINGS: Family = Family {
    name: "sockscope_findings",
    kind: Kind::Gauge,
    labels: &["id", "severity", "netns"],
    help: "Findings the analysis raised, by id and severity (sockscope report explains each).",
};
pub const SCRAPE_DURATION: Family = Family {
    name: "sockscope_scrape_duration_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Seconds the collection behind these metrics took (sock_diag dumps and /proc walk).",
};
pub const SCRAPE_PARTIAL: Family = Family {
    name: "sockscope_scrape_partial",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 when the process view is incomplete (some processes' descriptors could not be \
           read, so their sockets are not attributed), else 0.",
};

/// Every family, in the order of the exposition.
pub const FAMILIES: [Family; 22] = [
    TCP_SOCKETS,
    LISTENER_ACCEPT_QUEUE,
    LISTENER_BACKLOG,
    LISTENER_SYN_RECV,
    LISTENER_DROPS,
    LISTENER_ACCEPTORS,
    PROCESS_CLOSE_WAIT,
    PROCESS_FDS,
    PROCESS_FD_LIMIT,
    KERNEL_TCPEXT,
    CONNECTIONS_IN_TROUBLE,
    STALLED_DESTINATIONS,
    UDP_SOCKET_DROPS,
    KERNEL_UDP,
    EPHEMERAL_PORTS_IN_USE,
    EPHEMERAL_PORT_RANGE,
    KERNEL_TABLE_ENTRIES,
    KERNEL_TABLE_LIMIT,
    CONNTRACK_DROPS,
    FINDINGS,
    SCRAPE_DURATION,
    SCRAPE_PARTIAL,
];

/// What the exposition leaves to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Per-process series for at most this many processes by socket count (TCP + unix),
    /// besides every process a finding names.
    pub top_processes: usize,
}

/// Write the exposition of `analysis` to `w`.
pub fn write(w: &mut impl Write, analysis: &Analysis, opts: &MetricsOptions) -> io::Result<()> {
    w.write_all(render_metrics(analysis, opts).as_bytes())
}

/// The exposition of `analysis`.
pub fn render_metrics(analysis: &Analysis, opts: &MetricsOptions) -> String {
    let mut out = Exposition::default();
    let netns = netns_labels(&analysis.netns);

    out.family(&TCP_SOCKETS);
    for (ns, label) in analysis.netns.iter().zip(&netns) {
        for (state, n) in &ns.tcp_states.0 {
            out.sample(&TCP_SOCKETS, &[label, &state.key()], *n);
        }
    }

    let listeners: Vec<(&str, Listener)> = analysis
        .netns
        .iter()
        .zip(&netns)
        .flat_map(|(ns, label)| {
            merge_listeners(&ns.listeners)
                .into_iter()
                .map(move |l| (label.as_str(), l))
        })
        .collect();
    listener_series(&mut out, &listeners);

    let processes = exported_processes(analysis, &netns, opts.top_processes);
    out.family(&PROCESS_CLOSE_WAIT);
    for p in &processes {
        if let Some((ns, close_wait)) = p.close_wait {
            out.sample(
                &PROCESS_CLOSE_WAIT,
                &[ns, &p.pid.to_string(), p.comm],
                close_wait,
            );
        }
    }
    out.family(&PROCESS_FDS);
    for p in &processes {
        if let Some(fds) = p.fds {
            out.sample(&PROCESS_FDS, &[&p.pid.to_string(), p.comm], fds);
        }
    }
    out.family(&PROCESS_FD_LIMIT);
    for p in &processes {
        if let Some(limit) = p.fd_limit {
            out.sample(&PROCESS_FD_LIMIT, &[&p.pid.to_string(), p.comm], limit);
        }
    }

    out.family(&KERNEL_TCPEXT);
    for (ns, label) in analysis.netns.iter().zip(&netns) {
        for c in &ns.counters {
            if let Some(total) = c.total {
                out.sample(&KERNEL_TCPEXT, &[label, c.name], total);
            }
        }
    }

    connection_families(&mut out, analysis, &netns);

    udp_and_ports(&mut out, analysis, &netns);

    kernel_tables(&mut out, analysis, &netns);

    out.family(&FINDINGS);
    let label_of: HashMap<&str, &str> = analysis
        .netns
        .iter()
        .zip(&netns)
        .map(|(ns, label)| (ns.id.as_str(), label.as_str()))
        .collect();
    let mut counts: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for f in &analysis.findings {
        let ns = label_of.get(f.netns()).copied().unwrap_or(f.netns());
        *counts
            .entry((f.id.name(), f.severity.name(), ns))
            .or_insert(0) += 1;
    }
    for ((id, severity, ns), n) in counts {
        out.sample(&FINDINGS, &[id, severity, ns], n);
    }

    out.family(&SCRAPE_DURATION);
    #[allow(clippy::cast_precision_loss)] // microseconds: exact far beyond any collection time
    let seconds = analysis.collect_us as f64 / 1e6;
    out.sample(&SCRAPE_DURATION, &[], seconds);
    out.family(&SCRAPE_PARTIAL);
    out.sample(&SCRAPE_PARTIAL, &[], u8::from(!analysis.full_process_view));
    out.text
}

/// The connections in trouble: counts by kind, and the most stalled destinations.
fn connection_families(out: &mut Exposition, analysis: &Analysis, netns: &[String]) {
    out.family(&CONNECTIONS_IN_TROUBLE);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        for (kind, n) in ns.connections.counts() {
            out.sample(&CONNECTIONS_IN_TROUBLE, &[label, kind], n);
        }
    }
    out.family(&STALLED_DESTINATIONS);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        let c = &ns.connections;
        let connecting = c.connecting.iter().map(|g| (g.remote, g.sockets));
        let sending = c.send_stalls.iter().map(|g| (g.remote, g.sockets));
        for (kind, groups) in [
            ("connecting", top_destinations(connecting)),
            ("send_stalled", top_destinations(sending)),
        ] {
            for (remote, n) in groups {
                out.sample(
                    &STALLED_DESTINATIONS,
                    &[label, &remote.to_string(), kind],
                    n,
                );
            }
        }
    }
}

/// Most stalled destinations per series kind: a bounded label set however many there are.
const TOP_DESTINATIONS: usize = 10;

/// Sockets by destination (summed over the processes that hold them), the
/// [`TOP_DESTINATIONS`] with the most.
fn top_destinations(
    groups: impl Iterator<Item = (std::net::SocketAddr, u64)>,
) -> Vec<(std::net::SocketAddr, u64)> {
    let mut by: BTreeMap<std::net::SocketAddr, u64> = BTreeMap::new();
    for (remote, n) in groups {
        *by.entry(remote).or_insert(0) += n;
    }
    let mut top: Vec<_> = by.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_DESTINATIONS);
    top
}

/// How many UDP sockets with drops get a series, per namespace.
const UDP_SERIES_LIMIT: usize = 50;

fn udp_and_ports(out: &mut Exposition, analysis: &Analysis, netns: &[String]) {
    out.family(&UDP_SOCKET_DROPS);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        // The views come most dropping first; siblings sharing the labels are one series.
        let mut series: Vec<((&str, &str), u64)> = Vec::new();
        for u in &ns.udp.sockets {
            let Some(drops) = u.drops_total.filter(|&d| d > 0) else {
                continue;
            };
            let comm = u.owners.first().map_or("", |o| o.comm.as_str());
            let key = (u.local.as_str(), comm);
            if let Some(at) = series.iter().position(|(k, _)| *k == key) {
                series[at].1 += drops;
            } else if series.len() < UDP_SERIES_LIMIT {
                series.push((key, drops));
            }
        }
        for ((local, comm), n) in series {
            out.sample(&UDP_SOCKET_DROPS, &[label, local, comm], n);
        }
    }
    out.family(&KERNEL_UDP);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        for c in &ns.udp.counters {
            if let Some(total) = c.total {
                out.sample(&KERNEL_UDP, &[label, c.name], total);
            }
        }
    }
    out.family(&EPHEMERAL_PORTS_IN_USE);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        for u in &ns.port_use {
            let (local, remote) = (u.local.to_string(), u.remote.to_string());
            out.sample(&EPHEMERAL_PORTS_IN_USE, &[label, &local, &remote], u.ports);
        }
    }
    out.family(&EPHEMERAL_PORT_RANGE);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        if let Some(usable) = ns.sysctl.usable_ports() {
            out.sample(&EPHEMERAL_PORT_RANGE, &[label], usable.size());
        }
    }
}

/// The kernel's tables against their limits, and connection tracking's drops.
fn kernel_tables(out: &mut Exposition, analysis: &Analysis, netns: &[String]) {
    // Each table's entries and limit, where known.
    let tables = |ns: &NetnsView| -> [(&'static str, Option<u64>, Option<u64>); 4] {
        let sockstat = ns.sockstat;
        [
            (
                "conntrack",
                ns.conntrack.as_ref().map(|c| c.count),
                ns.conntrack.as_ref().and_then(|c| c.max),
            ),
            (
                "time_wait",
                Some(sockstat.map_or_else(
                    || ns.tcp_states.get(crate::model::TcpState::TimeWait),
                    |s| s.tw,
                )),
                ns.sysctl.tcp_max_tw_buckets,
            ),
            (
                "orphans",
                sockstat.map(|s| s.orphan),
                ns.sysctl.tcp_max_orphans,
            ),
            (
                "tcp_memory_pages",
                sockstat.map(|s| s.mem),
                ns.sysctl.tcp_mem.map(|[_, pressure, _]| pressure),
            ),
        ]
    };
    for (family, limit) in [(&KERNEL_TABLE_ENTRIES, false), (&KERNEL_TABLE_LIMIT, true)] {
        out.family(family);
        for (ns, label) in analysis.netns.iter().zip(netns) {
            for (table, entries, max) in tables(ns) {
                if let Some(v) = if limit { max } else { entries } {
                    out.sample(family, &[label, table], v);
                }
            }
        }
    }
    out.family(&CONNTRACK_DROPS);
    for (ns, label) in analysis.netns.iter().zip(netns) {
        if let Some(c) = &ns.conntrack {
            for (kind, n) in [
                ("drop", c.drop_total),
                ("early_drop", c.early_drop_total),
                ("insert_failed", c.insert_failed_total),
            ] {
                out.sample(&CONNTRACK_DROPS, &[label, kind], n);
            }
        }
    }
}

/// The `netns` label of each namespace: its label (`host`, a name), made unique with its id
/// should two namespaces share one.
fn netns_labels(netns: &[NetnsView]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for ns in netns {
        *seen.entry(ns.label.as_str()).or_insert(0) += 1;
    }
    netns
        .iter()
        .map(|ns| {
            if seen[ns.label.as_str()] > 1 {
                format!("{} ({})", ns.label, ns.id)
            } else {
                ns.label.clone()
            }
        })
        .collect()
}

/// The listener families, one series per listener (per member of a reuseport group).
fn listener_series(out: &mut Exposition, listeners: &[(&str, Listener)]) {
    for (family, value) in [
        (
            &LISTENER_ACCEPT_QUEUE,
            (|l: &Listener| Some(l.accept_queue)) as fn(&Listener) -> Option<u64>,
        ),
        (&LISTENER_BACKLOG, |l| Some(l.backlog)),
        (&LISTENER_SYN_RECV, |l| {
            (l.proto == Proto::Tcp).then_some(l.syn_recv)
        }),
        (&LISTENER_DROPS, |l| l.drops),
    ] {
        out.family(family);
        for (ns, l) in listeners {
            if let Some(v) = value(l) {
                out.sample(
                    family,
                    &[ns, l.proto.name(), &l.local, &l.comm, &l.member],
                    v,
                );
            }
        }
    }
    out.family(&LISTENER_ACCEPTORS);
    for (ns, l) in listeners {
        for ((how, state), n) in &l.acceptors {
            out.sample(
                &LISTENER_ACCEPTORS,
                &[ns, l.proto.name(), &l.local, &l.member, how, state],
                *n,
            );
        }
    }
}

/// One listener series: a listening socket, or the `SO_REUSEPORT` group (or unix sockets
/// rebound to one path) that shares its labels.
#[derive(Debug, Clone, PartialEq)]
struct Listener {
    proto: Proto,
    local: String,
    comm: String,
    /// Its number in its `SO_REUSEPORT` group; empty for a listener alone on its address.
    member: String,
    /// Acceptors by (how, state).
    acceptors: BTreeMap<(&'static str, &'static str), u64>,
    accept_queue: u64,
    backlog: u64,
    syn_recv: u64,
    drops: Option<u64>,
}

/// Listeners keyed by their labels. The members of an `SO_REUSEPORT` group (an nginx with
/// `reuseport` has one per worker) are told apart by their `member` label; sockets that
/// still share every label (unix sockets rebound to one path) would be duplicate series,
/// which Prometheus rejects, so they become one: the queue and backlog of the fullest socket
/// (a full one must stay visible as full), and their SYN_RECV, drops and acceptors summed.
/// The views come fullest first.
fn merge_listeners(views: &[ListenerView]) -> Vec<Listener> {
    let mut merged: Vec<Listener> = Vec::with_capacity(views.len());
    let mut index: HashMap<(&str, &str, &str, Option<usize>), usize> = HashMap::new();
    for v in views {
        let comm = v.owners.first().map_or("", |o| o.comm.as_str());
        let member = v.member.map(|m| m.index);
        let key = (v.proto.name(), v.local.as_str(), comm, member);
        let mut acceptors = BTreeMap::new();
        for a in &v.acceptors {
            let state = a.state.map_or("unknown", |s| s.name());
            *acceptors.entry((a.how.name(), state)).or_insert(0) += 1;
        }
        if let Some(&i) = index.get(&key) {
            let l = &mut merged[i];
            l.syn_recv += v.syn_recv;
            l.drops = match (l.drops, v.drops_total) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            for (k, n) in acceptors {
                *l.acceptors.entry(k).or_insert(0) += n;
            }
            continue;
        }
        index.insert(key, merged.len());
        merged.push(Listener {
            proto: v.proto,
            local: v.local.clone(),
            comm: comm.to_owned(),
            member: member.map_or_else(String::new, |m| m.to_string()),
            acceptors,
            accept_queue: v.accept_queue,
            backlog: v.backlog,
            syn_recv: v.syn_recv,
            drops: v.drops_total,
        });
    }
    merged
}

/// A process that gets per-process series.
#[derive(Debug, Clone, PartialEq)]
struct ExportedProcess<'a> {
    pid: u32,
    comm: &'a str,
    /// The namespace label and the count, when the process holds sockets (has a view).
    close_wait: Option<(&'a str, u64)>,
    fds: Option<u64>,
    fd_limit: Option<u64>,
}

/// The top `k` socket owners (TCP + unix sockets, then pid), and every process a finding
/// names (those without a socket too), by pid.
fn exported_processes<'a>(
    analysis: &'a Analysis,
    netns: &'a [String],
    k: usize,
) -> Vec<ExportedProcess<'a>> {
    let mut views: Vec<(&str, &ProcessView)> = analysis
        .netns
        .iter()
        .zip(netns)
        .flat_map(|(ns, label)| ns.processes.iter().map(move |p| (label.as_str(), p)))
        .collect();
    views.sort_by(|(_, a), (_, b)| {
        (b.tcp_sockets + b.unix_sockets)
            .cmp(&(a.tcp_sockets + a.unix_sockets))
            .then_with(|| a.pid.cmp(&b.pid))
    });
    let named: BTreeSet<u32> = analysis
        .findings
        .iter()
        .flat_map(|f| f.mentions.pids.iter().copied())
        .collect();
    let mut out: BTreeMap<u32, ExportedProcess<'a>> = BTreeMap::new();
    for (i, (ns, p)) in views.iter().enumerate() {
        if i < k || named.contains(&p.pid) {
            out.insert(
                p.pid,
                ExportedProcess {
                    pid: p.pid,
                    comm: &p.comm,
                    close_wait: Some((ns, p.close_wait)),
                    fds: p.fds,
                    fd_limit: p.fd_limit.and_then(|l| l.soft),
                },
            );
        }
    }
    let socketless = analysis.netns.iter().flat_map(|ns| &ns.other_processes);
    for p in socketless.filter(|p| named.contains(&p.pid)) {
        out.entry(p.pid).or_insert(ExportedProcess {
            pid: p.pid,
            comm: &p.comm,
            close_wait: None,
            fds: p.fds,
            fd_limit: p.fd_limit.and_then(|l| l.soft),
        });
    }
    out.into_values().collect()
}

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, f: &Family) {
        let _ = writeln!(self.text, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(self.text, "# TYPE {} {}", f.name, f.kind.name());
    }

    /// One sample; `values` pair with the family's label names, in order.
    fn sample(&mut self, f: &Family, values: &[&str], value: impl Sample) {
        debug_assert_eq!(f.labels.len(), values.len(), "{}", f.name);
        self.text.push_str(f.name);
        if !values.is_empty() {
            self.text.push('{');
            let mut first = true;
            for (name, v) in f.labels.iter().zip(values) {
                // Prometheus reads an empty value as no label: a listener alone on its
                // address has no `member` written, as before groups had one.
                if *name == "member" && v.is_empty() {
                    continue;
                }
                if !std::mem::take(&mut first) {
                    self.text.push(',');
                }
                // A name from outside is escaped for the terminal that may show it, then for the
                // format.
                let _ = write!(self.text, "{name}=\"{}\"", escape_label(&escape(v)));
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write_to(&mut self.text);
        self.text.push('\n');
    }
}

/// A sample value as the format writes it.
trait Sample: Copy {
    fn write_to(self, out: &mut String);
}

macro_rules! integer_sample {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn write_to(self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
integer_sample!(u8, u64);

impl Sample for f64 {
    fn write_to(self, out: &mut String) {
        // Rust writes `inf` and `NaN`; the format wants `+Inf`, `-Inf` and `NaN`.
        let _ = match self {
            x if x.is_nan() => write!(out, "NaN"),
            x if x.is_infinite() => write!(out, "{}Inf", if x > 0.0 { '+' } else { '-' }),
            x => write!(out, "{x}"),
        };
    }
}

/// A label value: backslash, double quote and line feed escaped, as the format requires.
pub fn escape_label(value: &str) -> impl Display + '_ {
    Escaped {
        text: value,
        quote: true,
    }
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> impl Display + '_ {
    Escaped { text, quote: false }
}

struct Escaped<'a> {
    text: &'a str,
    quote: bool,
}

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.text.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '"' if self.quote => f.write_str("\\\"")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Owner, Settings, analyze};
    use crate::model::{FdLimit, Snapshot};
    use crate::recording;

    fn recording(name: &str) -> Vec<Snapshot> {
        let path = format!(
            "{}/tests/fixtures/recordings/{name}.ndjson",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::File::open(&path).expect("the fixture exists");
        recording::read(std::io::BufReader::new(file))
            .expect("the fixture reads")
            .snapshots
    }

    fn exposition(window: &[Snapshot], top_processes: usize) -> String {
        let analysis = analyze(window, &Settings::default()).expect("a window");
        render_metrics(&analysis, &MetricsOptions { top_processes })
    }

    /// The samples of `name`, as (labels text, value) pairs.
    fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, labels) = series.split_once('{').unwrap_or((series, "}"));
                (n == name).then(|| (labels.trim_end_matches('}'), value))
            })
            .collect()
    }

    fn value<'a>(text: &'a str, name: &str, labels: &str) -> Option<&'a str> {
        samples(text, name)
            .into_iter()
            .find(|(l, _)| *l == labels)
            .map(|(_, v)| v)
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd").to_string(), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("a\\b\"c\nd").to_string(), "a\\\\b\"c\\nd");
        let mut out = Exposition::default();
        // The name is escaped for a terminal first (the line feed becomes `\n`, the backslash
        // before it `\\`), then for the format (each backslash doubled, the quote escaped).
        out.sample(&PROCESS_FDS, &["1", "we\"ird\\\nname\u{1b}[2J"], 3u64);
        assert_eq!(
            out.text,
            "sockscope_process_fds{pid=\"1\",comm=\"we\\\"ird\\\\\\\\\\\\nname\\\\e[2J\"} 3\n"
        );
        assert!(!out.text.contains('\u{1b}'));
    }

    #[test]
    fn special_floats_are_written_as_the_format_spells_them() {
        for (x, text) in [
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0125, "0.0125"),
        ] {
            let mut out = String::new();
            x.write_to(&mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn every_family_has_help_and_type_once_and_names_follow_the_conventions() {
        let text = exposition(&recording("incidents"), 100);
        for f in FAMILIES {
            assert!(f.name.starts_with("sockscope_"), "{}", f.name);
            assert_eq!(
                f.name.ends_with("_total"),
                f.kind == Kind::Counter,
                "{}: only counters end in _total",
                f.name
            );
            let help = format!("# HELP {} ", f.name);
            let kind = format!("# TYPE {} {}\n", f.name, f.kind.name());
            assert_eq!(text.matches(&help).count(), 1, "{}", f.name);
            assert_eq!(text.matches(&kind).count(), 1, "{}", f.name);
        }
        // Samples of a family follow its header, and no other family's header comes between.
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().expect("a name");
            } else if !line.starts_with('#') {
                assert!(line.starts_with(current), "{line} outside {current}");
            }
        }
    }

    #[test]
    fn the_incidents_have_the_values_the_report_shows() {
        let window = recording("incidents");
        let text = exposition(&window, 100);
        let ns = "current";
        let listener =
            format!("netns=\"{ns}\",proto=\"tcp\",local=\"127.0.0.1:5000\",comm=\"noaccept\"");
        let get = |name: &str, labels: &str| {
            value(&text, name, labels).unwrap_or_else(|| panic!("{name}{{{labels}}}:\n{text}"))
        };
        assert_eq!(get("sockscope_listener_accept_queue", &listener), "9");
        assert_eq!(get("sockscope_listener_backlog", &listener), "8");
        assert_eq!(get("sockscope_listener_syn_recv", &listener), "0");
        let analysis = analyze(&window, &Settings::default()).expect("a window");
        let drops = analysis.netns[0]
            .listeners
            .iter()
            .find(|l| l.local == "127.0.0.1:5000")
            .and_then(|l| l.drops_total)
            .expect("the listener's drops");
        assert!(drops > 0);
        assert_eq!(
            get("sockscope_listener_drops_total", &listener),
            drops.to_string()
        );

        let leaky = analysis.netns[0]
            .processes
            .iter()
            .find(|p| p.comm == "leaky")
            .expect("leaky");
        assert_eq!(
            get(
                "sockscope_process_close_wait",
                &format!("netns=\"{ns}\",pid=\"{}\",comm=\"leaky\"", leaky.pid)
            ),
            "200"
        );
        let fdhog = analysis.netns[0]
            .processes
            .iter()
            .find(|p| p.comm == "fdhog")
            .expect("fdhog");
        let who = format!("pid=\"{}\",comm=\"fdhog\"", fdhog.pid);
        assert_eq!(get("sockscope_process_fds", &who), "249");
        assert_eq!(get("sockscope_process_fd_limit", &who), "256");

        assert_eq!(
            get(
                "sockscope_kernel_tcpext_total",
                &format!("netns=\"{ns}\",name=\"ListenOverflows\"")
            ),
            analysis.netns[0].counters[0]
                .total
                .expect("ListenOverflows")
                .to_string()
        );
        assert_eq!(
            get(
                "sockscope_tcp_sockets",
                &format!("netns=\"{ns}\",state=\"CLOSE_WAIT\"")
            ),
            analysis.netns[0]
                .tcp_states
                .get(crate::model::TcpState::CloseWait)
                .to_string()
        );
        // Two accept-queue-full findings: the TCP and the unix listener.
        assert_eq!(
            get(
                "sockscope_findings",
                &format!("id=\"accept-queue-full\",severity=\"critical\",netns=\"{ns}\"")
            ),
            "2"
        );
        assert_eq!(
            samples(&text, "sockscope_findings")
                .iter()
                .map(|(_, v)| v.parse::<u64>().expect("a count"))
                .sum::<u64>(),
            analysis.findings.len() as u64
        );
        assert_eq!(
            get("sockscope_scrape_duration_seconds", ""),
            format!(
                "{}",
                f64::from(u32::try_from(window[1].collect_us).expect("small")) / 1e6
            )
        );
        assert_eq!(
            get("sockscope_scrape_partial", ""),
            if analysis.full_process_view { "0" } else { "1" }
        );
    }

    #[test]
    fn processes_beyond_the_top_k_get_series_only_when_a_finding_names_them() {
        let window = recording("incidents");
        let analysis = analyze(&window, &Settings::default()).expect("a window");
        let owners: Vec<&ProcessView> = analysis.netns[0].processes.iter().collect();
        assert!(owners.len() > 4, "the recording has several socket owners");
        let named: BTreeSet<u32> = analysis
            .findings
            .iter()
            .flat_map(|f| f.mentions.pids.iter().copied())
            .collect();
        assert!(!named.is_empty());

        let text = exposition(&window, 1);
        let exported: BTreeSet<u32> = samples(&text, "sockscope_process_fds")
            .iter()
            .map(|(labels, _)| {
                let pid = labels
                    .strip_prefix("pid=\"")
                    .and_then(|l| l.split('"').next())
                    .expect("a pid label");
                pid.parse().expect("a pid")
            })
            .collect();
        let top = owners
            .iter()
            .max_by_key(|p| (p.tcp_sockets + p.unix_sockets, std::cmp::Reverse(p.pid)))
            .expect("an owner")
            .pid;
        let mut expect = named.clone();
        expect.insert(top);
        assert_eq!(exported, expect, "{text}");
        assert!(
            exported.len() < owners.len(),
            "some owners are left out with k = 1"
        );
    }

    #[test]
    fn a_named_process_without_sockets_still_gets_its_descriptors() {
        // A process without a socket, near its descriptor limit: fd-exhaustion names it.
        let mut window = recording("incidents");
        let last = window.last_mut().expect("a snapshot");
        let socketless = last
            .processes
            .iter_mut()
            .find(|p| p.tcp.total() + p.unix_sockets == 0 && p.fds.is_some_and(|n| n > 0))
            .expect("a process without sockets");
        socketless.fd_limit = socketless.fds.map(|n| FdLimit {
            soft: Some(n),
            hard: Some(n),
        });
        let socketless = socketless.clone();
        let analysis = analyze(&window, &Settings::default()).expect("a window");
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.id == "fd-exhaustion" && f.mentions.pids == [socketless.pid]),
            "{:#?}",
            analysis.findings
        );
        let text = render_metrics(&analysis, &MetricsOptions { top_processes: 1 });
        let who = format!(
            "pid=\"{}\",comm=\"{}\"",
            socketless.pid,
            escape_label(&socketless.comm)
        );
        assert_eq!(
            value(&text, "sockscope_process_fds", &who),
            socketless.fds.map(|n| n.to_string()).as_deref()
        );
        let pid = format!("pid=\"{}\"", socketless.pid);
        assert!(
            !samples(&text, "sockscope_process_close_wait")
                .iter()
                .any(|(l, _)| l.contains(&pid)),
            "no CLOSE_WAIT series without a process view:\n{text}"
        );
    }

    fn view(local: &str, queue: u64, backlog: u64, drops: u64, comm: &str) -> ListenerView {
        ListenerView {
            proto: Proto::Tcp,
            local: local.to_owned(),
            port: None,
            inode: 0,
            accept_queue: queue,
            backlog,
            full: queue > backlog,
            fill_pct: 0.0,
            syn_recv: 1,
            unaccepted_established: 0,
            unaccepted_close_wait: 0,
            drops_total: Some(drops),
            drops_per_s: None,
            owners: vec![Owner {
                pid: 1,
                comm: comm.to_owned(),
            }],
            acceptors: Vec::new(),
            member: None,
        }
    }

    #[test]
    fn reuseport_siblings_make_one_series_that_stays_full() {
        let merged = merge_listeners(&[
            view("0.0.0.0:80", 129, 128, 5, "nginx"),
            view("0.0.0.0:80", 3, 128, 2, "nginx"),
            view("0.0.0.0:80", 0, 128, 0, "other"),
            view("0.0.0.0:81", 0, 128, 0, "nginx"),
        ]);
        assert_eq!(merged.len(), 3);
        assert_eq!(
            (
                merged[0].accept_queue,
                merged[0].backlog,
                merged[0].syn_recv,
                merged[0].drops
            ),
            (129, 128, 2, Some(7))
        );
    }

    #[test]
    fn reuseport_members_are_series_of_their_own() {
        let member = |index, queue| {
            let mut v = view("0.0.0.0:80", queue, 16, 0, "nginx");
            v.member = Some(crate::analyze::Member { index, of: 2 });
            v
        };
        let merged = merge_listeners(&[member(1, 17), member(2, 0)]);
        let brief: Vec<(&str, u64)> = merged
            .iter()
            .map(|l| (l.member.as_str(), l.accept_queue))
            .collect();
        assert_eq!(brief, [("1", 17), ("2", 0)]);
    }

    #[test]
    fn namespaces_with_one_label_are_told_apart_by_id() {
        let window = recording("healthy");
        let analysis = analyze(&window, &Settings::default()).expect("a window");
        let mut twice = analysis.netns.clone();
        twice.extend(analysis.netns.clone());
        twice[1].id = "42".into();
        let labels = netns_labels(&twice);
        assert_eq!(
            labels,
            [
                format!("{} ({})", twice[0].label, twice[0].id),
                format!("{} (42)", twice[0].label)
            ]
        );
        assert_eq!(
            netns_labels(&analysis.netns),
            [analysis.netns[0].label.clone()]
        );
    }

    #[test]
    fn a_healthy_host_exports_no_findings() {
        let text = exposition(&recording("healthy"), 100);
        assert!(samples(&text, "sockscope_findings").is_empty(), "{text}");
    }

    #[test]
    fn a_process_is_only_its_pid_and_comm() {
        for f in FAMILIES
            .iter()
            .filter(|f| f.name.starts_with("sockscope_process_"))
        {
            let rest: Vec<&str> = f
                .labels
                .iter()
                .copied()
                .filter(|l| !["netns", "pid", "comm"].contains(l))
                .collect();
            assert!(rest.is_empty(), "{}: {rest:?}", f.name);
        }
    }
}
