//! Pure analysis: a sequence of snapshots in, rates, views and findings out.
//!
//! No I/O and no clock reads: every time comes from the snapshots (`monotonic_ns` for rates,
//! `wall_time_ms` for display). Rates compare the first and the last snapshot of the window;
//! with a single snapshot every rate is `None`. The faces render an [`Analysis`] and never
//! re-derive anything from the raw snapshot.

mod collision;
mod detail;
mod finding;
mod listeners;
mod rules;
#[cfg(test)]
mod tests;
mod thresholds;
pub mod units;
pub mod window;

use std::collections::BTreeMap;

use crate::model::{
    FdLimit, Host, NetnsSnapshot, Process, Snapshot, SockStat, StateCounts, Sysctls, TcpState,
};
pub use collision::MinedPorts;
pub use detail::{ListenerDetail, ProcessDetail, SocketRow, listener_detail, process_detail};
pub use finding::{
    Finding, FindingId, Ignore, Mentions, Severity, Target, TargetKind, UnknownFindingId,
};
pub use listeners::{ListenerView, Owner, Proto};
pub use thresholds::Thresholds;

/// The TcpExt counters reported with a total and a rate, in the order an operator reads them.
pub const KEY_COUNTERS: [&str; 10] = [
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
];

/// Everything the faces show, derived from one window of snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub host: Host,
    /// Wall-clock time of the newest snapshot, ms since the Unix epoch.
    pub wall_time_ms: u64,
    pub samples: usize,
    /// Seconds between the first and the last snapshot; `None` with one snapshot.
    pub window_s: Option<f64>,
    pub full_process_view: bool,
    pub notes: Vec<String>,
    pub netns: Vec<NetnsView>,
    pub findings: Vec<Finding>,
    /// Findings left out by the ignore rules.
    pub ignored: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetnsView {
    pub id: String,
    pub label: String,
    pub sysctl: Sysctls,
    pub counters: Vec<CounterView>,
    pub tcp_states: StateCounts,
    pub sockstat: Option<SockStat>,
    pub unix_sockets: u64,
    pub listeners: Vec<ListenerView>,
    /// Processes owning at least one TCP or unix socket, most CLOSE_WAIT first.
    pub processes: Vec<ProcessView>,
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
    let mut findings = Vec::new();
    let netns: Vec<NetnsView> = last
        .netns
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let before = first.netns.iter().find(|b| b.id == ns.id);
            let view = netns_view(ns, i == 0, before, first, last, window_s);
            let scope = rules::Scope {
                view: &view,
                ns,
                last,
                is_callers: i == 0,
                t: &settings.thresholds,
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
        samples,
        window_s,
        full_process_view: last.process_scan.full_view(),
        notes: last.notes.clone(),
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

fn netns_view(
    ns: &NetnsSnapshot,
    is_callers: bool,
    before: Option<&NetnsSnapshot>,
    first: &Snapshot,
    last: &Snapshot,
    window_s: Option<f64>,
) -> NetnsView {
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
    let mut tcp_states = StateCounts::default();
    for state in TcpState::CLASSIC {
        tcp_states.add(state, 0);
    }
    for (&state, &n) in &ns.tcp_states.0 {
        tcp_states.add(state, n);
    }
    NetnsView {
        id: ns.id.clone(),
        label: ns.label.clone(),
        sysctl: ns.sysctl.clone(),
        counters,
        tcp_states,
        sockstat: ns.sockstat,
        unix_sockets: ns.unix_sockets,
        listeners: listeners::views(ns, before, last, window_s),
        processes: process_views(ns, is_callers, first, last, window_s),
    }
}

/// Whether a process belongs in this namespace's table: it lives there; or, for the
/// caller's namespace, its home is unknown, or it lives in a namespace that was not scanned
/// yet holds sockets of a scanned one (a descriptor passed across namespaces). A process
/// that merely lives in an unscanned namespace is not judged here: `--all-netns` sees it.
fn lives_in(p: &Process, ns: &NetnsSnapshot, is_callers: bool, last: &Snapshot) -> bool {
    let home = p.netns.map(|ino| ino.to_string());
    match home {
        Some(id) if id == ns.id => true,
        Some(id) => {
            let holds_ours = p.tcp.total() + p.unix_sockets > 0;
            is_callers && holds_ours && !last.netns.iter().any(|n| n.id == id)
        }
        None => is_callers,
    }
}

fn process_views(
    ns: &NetnsSnapshot,
    is_callers: bool,
    first: &Snapshot,
    last: &Snapshot,
    window_s: Option<f64>,
) -> Vec<ProcessView> {
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
    let mut views: Vec<ProcessView> = last
        .processes
        .iter()
        .filter(|p| p.tcp.total() + p.unix_sockets > 0 && lives_in(p, ns, is_callers, last))
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
        .collect();
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
    views
}
