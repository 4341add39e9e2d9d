//! Pure analysis: a sequence of snapshots in, rates, views and findings out.
//!
//! No I/O and no clock reads: every time comes from the snapshots (`monotonic_ns` for rates,
//! `wall_time_ms` for display). Rates compare the first and the last snapshot of the window;
//! with a single snapshot every rate is `None`. The faces render an [`Analysis`] and never
//! re-derive anything from the raw snapshot.

pub mod acceptors;
mod collision;
pub mod connections;
mod detail;
pub mod evidence;
mod finding;
pub mod limits;
mod listeners;
mod rules;
#[cfg(test)]
mod tests;
pub mod thresholds;
pub mod udp;
pub mod units;
pub mod window;

use std::collections::{BTreeMap, HashSet};

use crate::model::{
    ContainerInfo, FdLimit, Freshness, Host, NetnsSnapshot, Process, Snapshot, SockStat,
    StateCounts, Sysctls, TcpState, TimeWaitGroup,
};
pub use collision::MinedPorts;
pub use detail::{ListenerDetail, ProcessDetail, SocketRow, listener_detail, process_detail};
pub use finding::{
    Evidence, Finding, FindingId, Ignore, Mentions, Severity, Target, TargetKind, UnknownFindingId,
};
pub use listeners::{ListenerView, Member, Owner, Proto};
pub use thresholds::Thresholds;

/// The TcpExt counters reported with a total and a rate, in the order an operator reads them.
pub const KEY_COUNTERS: [&str; 13] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "EmbryonicRsts",
    "TCPAbortOnClose",
    "TCPChallengeACK",
    "TCPTimeWaitOverflow",
    "TCPAbortOnMemory",
    "TCPMemoryPressures",
];

/// Everything the faces show, derived from one window of snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub host: Host,
    /// Wall-clock time of the newest snapshot, ms since the Unix epoch.
    pub wall_time_ms: u64,
    /// How long the newest snapshot took to collect, microseconds.
    pub collect_us: u64,
    /// How fresh each part of the newest snapshot is.
    pub freshness: Freshness,
    pub samples: usize,
    /// Seconds between the first and the last snapshot; `None` with one snapshot.
    pub window_s: Option<f64>,
    pub full_process_view: bool,
    pub notes: Vec<String>,
    /// [`KEY_COUNTERS`] over every namespace scanned: each total is the sum of the
    /// namespaces that export the counter, each rate the sum of those that have one (`None`
    /// when none does: a single sample, or a kernel without the counter).
    pub counters: Vec<CounterView>,
    pub netns: Vec<NetnsView>,
    pub findings: Vec<Finding>,
    /// Findings left out by the ignore rules.
    pub ignored: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetnsView {
    pub id: String,
    pub label: String,
    pub container: Option<ContainerInfo>,
    pub sysctl: Sysctls,
    pub counters: Vec<CounterView>,
    pub tcp_states: StateCounts,
    pub sockstat: Option<SockStat>,
    pub unix_sockets: u64,
    pub listeners: Vec<ListenerView>,
    /// Processes owning at least one TCP or unix socket, most CLOSE_WAIT first.
    pub processes: Vec<ProcessView>,
    /// Processes of this namespace that own no TCP or unix socket but that a finding can
    /// name: those at or past the descriptor warning threshold.
    pub other_processes: Vec<ProcessView>,
    /// Connections in trouble: half-open handshakes, stalled connects, readers and writers.
    pub connections: connections::Connections,
    /// UDP sockets and counters.
    pub udp: udp::UdpView,
    /// Ephemeral ports in use towards the busiest destinations.
    pub port_use: Vec<udp::PortUseView>,
    /// The connection tracking table, when the namespace has one.
    pub conntrack: Option<limits::ConntrackView>,
    /// The addresses most TIME_WAIT sockets point to.
    pub time_wait_top: Vec<TimeWaitGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CounterView {
    pub name: &'static str,
    /// `None` when this kernel does not export the counter.
    pub total: Option<u64>,
    pub rate_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessView {
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    pub fds: Option<u64>,
    pub fd_limit: Option<FdLimit>,
    pub tcp_sockets: u64,
    pub unix_sockets: u64,
    pub close_wait: u64,
    /// CLOSE_WAIT sockets with Recv-Q > 0: the app never read to EOF.
    pub close_wait_unread: u64,
    /// Age of the oldest CLOSE_WAIT socket (time since the peer's last ACK), seconds.
    pub close_wait_oldest_s: Option<f64>,
    pub close_wait_growth_per_min: Option<f64>,
}

impl Analysis {
    /// How a listener row's queue is judged: the severity of the worst accept-queue finding
    /// about the listener (`udp-receive-drops` for a UDP socket shown as one), if any. Faces
    /// colour rows by it; the rules alone decide it.
    pub fn queue_level(&self, netns: &str, l: &ListenerView) -> Option<Severity> {
        let ids: &[FindingId] = match l.proto {
            Proto::Udp => &[FindingId::UdpReceiveDrops],
            Proto::Tcp | Proto::Unix => &[FindingId::AcceptQueueFull, FindingId::AcceptQueueHigh],
        };
        self.findings
            .iter()
            .filter(|f| ids.contains(&f.id) && f.is_about_queue(netns, l))
            .map(|f| f.severity)
            .max()
    }

    /// How process `pid` is judged by the finding `id` about the process itself
    /// (`close-wait-leak`, `fd-exhaustion`), if one was raised.
    pub fn process_level(&self, pid: u32, id: FindingId) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| {
                f.id == id
                    && matches!(f.target.kind, TargetKind::Process { pid: p, .. } if p == pid)
            })
            .map(|f| f.severity)
            .max()
    }
}

/// `process nginx (pid 812)`: how a finding names a process.
pub fn process_subject(comm: &str, pid: u32) -> String {
    format!("process {comm} (pid {pid})")
}

impl ProcessView {
    /// The subject of the findings about this process.
    pub fn subject(&self) -> String {
        process_subject(&self.comm, self.pid)
    }

    /// Open descriptors as a percentage of the soft `RLIMIT_NOFILE`.
    pub fn fd_use_pct(&self) -> Option<f64> {
        let limit = self.fd_limit?.soft?;
        let fds = self.fds?;
        (limit > 0).then(|| pct(fds, limit))
    }
}

/// How the analysis judges: thresholds, and what to leave out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub thresholds: Thresholds,
    pub ignore: Ignore,
}

/// Analyse a window of snapshots, oldest first, judging with `settings`. Returns `None`
/// for an empty window. Findings come most severe first; ignored ones are counted in
/// [`Analysis::ignored`] and left out.
pub fn analyze(window: &[Snapshot], settings: &Settings) -> Option<Analysis> {
    Some(analyze_span(
        window.first()?,
        window.last()?,
        window.len(),
        settings,
    ))
}

/// [`analyze`] for a window given by its oldest and newest snapshot and how many snapshots
/// it holds: rates compare `first` with `last`, and only `last`'s per-socket lists are read.
pub fn analyze_span(
    first: &Snapshot,
    last: &Snapshot,
    samples: usize,
    settings: &Settings,
) -> Analysis {
    let window_s = (samples > 1).then(|| seconds_between(first, last));
    let t = &settings.thresholds;
    let mut findings = Vec::new();
    let netns: Vec<NetnsView> = last
        .netns
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let before = first.netns.iter().find(|b| b.id == ns.id);
            let window = Span {
                first,
                last,
                window_s,
            };
            let view = netns_view(ns, i == 0, before, &window, t);
            let scope = rules::Scope {
                view: &view,
                ns,
                last,
                t,
            };
            findings.extend(rules::findings(&scope));
            view
        })
        .collect();
    let before = findings.len();
    findings.retain(|f| !settings.ignore.matches(f));
    let ignored = before - findings.len();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.name().cmp(b.id.name()))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    Analysis {
        host: last.host.clone(),
        wall_time_ms: last.wall_time_ms,
        collect_us: last.collect_us,
        freshness: last.freshness,
        samples,
        window_s,
        full_process_view: last.process_scan.full_view(),
        notes: last.notes.clone(),
        counters: host_counters(&netns),
        netns,
        findings,
        ignored,
    }
}

fn seconds_between(first: &Snapshot, last: &Snapshot) -> f64 {
    #[allow(clippy::cast_precision_loss)] // nanoseconds fit an f64 to well under a microsecond
    let ns = last.monotonic_ns.saturating_sub(first.monotonic_ns) as f64;
    ns / 1e9
}

/// Change per second of a counter between two readings; a counter that went backwards
/// (a namespace recreated, a wrapped 32-bit value) gives no rate rather than a wrong one.
pub(crate) fn rate(before: Option<u64>, now: Option<u64>, window_s: Option<f64>) -> Option<f64> {
    let (before, now, secs) = (before?, now?, window_s?);
    #[allow(clippy::cast_precision_loss)]
    let delta = now.checked_sub(before)? as f64;
    (secs > 0.0).then(|| delta / secs)
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn pct(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole as f64
}

/// The window a namespace is analysed over.
struct Span<'a> {
    first: &'a Snapshot,
    last: &'a Snapshot,
    window_s: Option<f64>,
}

/// When the full socket dump that `s`'s per-socket lists come from was taken, ms on the
/// monotonic clock.
fn dumped_at_ms(s: &Snapshot) -> u64 {
    (s.monotonic_ns / 1_000_000).saturating_sub(s.freshness.socket_dump_age_ms)
}

/// Each of [`KEY_COUNTERS`] summed over the namespaces (see [`Analysis::counters`]).
fn host_counters(netns: &[NetnsView]) -> Vec<CounterView> {
    KEY_COUNTERS
        .iter()
        .map(|&name| {
            let of_name = || {
                netns
                    .iter()
                    .flat_map(|ns| &ns.counters)
                    .filter(move |c| c.name == name)
            };
            CounterView {
                name,
                total: of_name().filter_map(|c| c.total).reduce(|a, b| a + b),
                rate_per_s: of_name().filter_map(|c| c.rate_per_s).reduce(|a, b| a + b),
            }
        })
        .collect()
}

fn netns_view(
    ns: &NetnsSnapshot,
    is_callers: bool,
    before: Option<&NetnsSnapshot>,
    span: &Span<'_>,
    t: &Thresholds,
) -> NetnsView {
    let Span { last, window_s, .. } = *span;
    let counters = KEY_COUNTERS
        .iter()
        .map(|&name| {
            let total = ns.tcp_ext.get(name).copied();
            let earlier = before.and_then(|b| b.tcp_ext.get(name).copied());
            CounterView {
                name,
                total,
                rate_per_s: rate(earlier, total, window_s),
            }
        })
        .collect();
    let (processes, other_processes) = process_views(ns, is_callers, span, t);
    let mut tcp_states = StateCounts::default();
    for state in TcpState::CLASSIC {
        tcp_states.add(state, 0);
    }
    for (&state, &n) in &ns.tcp_states.0 {
        tcp_states.add(state, n);
    }
    let listeners = listeners::views(ns, before, last, window_s);
    let before_sockets = before.filter(|_| window_s.is_some());
    // Sockets whose other end is gone must have been found so by two dumps: the window's
    // first snapshot counts only when its sockets were dumped apart from the newest's (a
    // live collector's refresh carries the last full dump's over).
    let gone_before = before_sockets
        .filter(|_| dumped_at_ms(span.first) + 1 < dumped_at_ms(last))
        .map(|b| b.peer_gone.as_slice());
    let connections =
        connections::connections(ns, before_sockets, gone_before, last, &listeners, t);
    let udp = udp::udp_view(ns, before, last, window_s);
    let port_use = udp::port_use_views(ns, last);
    NetnsView {
        id: ns.id.clone(),
        label: ns.label.clone(),
        container: ns.container.clone(),
        sysctl: ns.sysctl.clone(),
        counters,
        tcp_states,
        sockstat: ns.sockstat,
        unix_sockets: ns.unix_sockets,
        listeners,
        processes,
        other_processes,
        connections,
        udp,
        port_use,
        conntrack: limits::conntrack_view(ns, before, window_s),
        time_wait_top: ns.time_wait_top.clone(),
    }
}

/// Whether a process belongs in this namespace's table: it lives there; or, for the
/// caller's namespace, its home is unknown, or it lives in a namespace that was not scanned
/// yet holds sockets of a scanned one (a descriptor passed across namespaces). A process
/// that merely lives in an unscanned namespace is not judged here: `--all-netns` sees it.
///
/// `scanned` says whether the process's home is one of the snapshot's namespaces; it is
/// asked only where the answer matters (the caller's namespace, a process of another).
fn lives_in(p: &Process, ns: &Home, is_callers: bool, scanned: impl FnOnce() -> bool) -> bool {
    match p.netns {
        Some(ino) if Some(ino) == ns.ino => true,
        Some(_) => {
            let holds_ours = p.tcp.total() + p.unix_sockets > 0;
            is_callers && holds_ours && !scanned()
        }
        None => is_callers,
    }
}

/// A namespace as [`lives_in`] matches processes' homes to it: the inode its id spells, when
/// the id is one (`Process::netns` is an inode, [`NetnsSnapshot::id`] its decimal text).
struct Home {
    ino: Option<u64>,
}

impl Home {
    fn of(ns: &NetnsSnapshot) -> Home {
        let ino = ns
            .id
            .parse::<u64>()
            .ok()
            .filter(|ino| ino.to_string() == ns.id);
        Home { ino }
    }
}

/// Whether `p`'s descriptors are at or past the warning threshold: a process without sockets
/// is kept in the view only then (see [`NetnsView::other_processes`]).
fn near_fd_limit(p: &ProcessView, t: &Thresholds) -> bool {
    p.fds
        .zip(p.fd_limit.and_then(|l| l.soft))
        .is_some_and(|(fds, soft)| pct(fds, soft.max(1)) >= t.fd_warn)
}

/// The views of this namespace's processes: those that own sockets, most CLOSE_WAIT first,
/// and those that own none but are near their descriptor limit.
fn process_views(
    ns: &NetnsSnapshot,
    is_callers: bool,
    span: &Span<'_>,
    t: &Thresholds,
) -> (Vec<ProcessView>, Vec<ProcessView>) {
    let Span {
        first,
        last,
        window_s,
    } = *span;
    // Unread and oldest come from the CLOSE_WAIT sockets kept in full, by owner.
    let mut unread: BTreeMap<u32, u64> = BTreeMap::new();
    let mut oldest_ms: BTreeMap<u32, u32> = BTreeMap::new();
    for s in ns.tracked.iter().filter(|s| s.state == TcpState::CloseWait) {
        for &pid in &s.owners {
            if s.recv_q > 0 {
                *unread.entry(pid).or_insert(0) += 1;
            }
            if let Some(ms) = s.last_ack_recv_ms {
                let e = oldest_ms.entry(pid).or_insert(0);
                *e = (*e).max(ms);
            }
        }
    }
    let home = Home::of(ns);
    // Looked up once per process of another namespace: a set, not a walk of the list, with
    // 1,000 namespaces scanned.
    let scanned: HashSet<&str> = if is_callers {
        last.netns.iter().map(|n| n.id.as_str()).collect()
    } else {
        HashSet::new()
    };
    let (mut views, others): (Vec<ProcessView>, Vec<ProcessView>) = last
        .processes
        .iter()
        .filter(|p| {
            lives_in(p, &home, is_callers, || {
                p.netns
                    .is_some_and(|ino| scanned.contains(ino.to_string().as_str()))
            })
        })
        .map(|p| {
            let close_wait = p.tcp.get(TcpState::CloseWait);
            let growth = first
                .process(p.pid)
                .filter(|old| old.comm == p.comm)
                .and_then(|old| {
                    let was = old.tcp.get(TcpState::CloseWait);
                    let secs = window_s?;
                    #[allow(clippy::cast_precision_loss)]
                    let delta = close_wait as f64 - was as f64;
                    (secs > 0.0).then(|| delta * 60.0 / secs)
                });
            ProcessView {
                pid: p.pid,
                comm: p.comm.clone(),
                uid: p.uid,
                fds: p.fds,
                fd_limit: p.fd_limit,
                tcp_sockets: p.tcp.total(),
                unix_sockets: p.unix_sockets,
                close_wait,
                close_wait_unread: unread.get(&p.pid).copied().unwrap_or(0),
                close_wait_oldest_s: oldest_ms.get(&p.pid).map(|&ms| f64::from(ms) / 1000.0),
                close_wait_growth_per_min: growth,
            }
        })
        // Those without sockets are kept only for `fd-exhaustion` to judge.
        .filter(|v| v.tcp_sockets + v.unix_sockets > 0 || near_fd_limit(v, t))
        .partition(|v| v.tcp_sockets + v.unix_sockets > 0);
    views.sort_by(|a, b| {
        b.close_wait
            .cmp(&a.close_wait)
            .then_with(|| {
                b.fd_use_pct()
                    .unwrap_or(0.0)
                    .total_cmp(&a.fd_use_pct().unwrap_or(0.0))
            })
            .then_with(|| a.pid.cmp(&b.pid))
    });
    (views, others)
}
