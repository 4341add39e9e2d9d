//! The only code that touches the kernel: sock_diag, /proc, /proc/sys and network
//! namespaces.
//!
//! A pass runs in three steps:
//!
//! 1. the first pass of the /proc walk ([`procs::inspect`]): every process's name, start
//!    time, descriptor count and network namespace — from which [`netns::Catalog`] learns
//!    which namespaces exist and what to call them;
//! 2. at the same time: the descriptor walk ([`procs::Inspected::walk`]) on threads of its
//!    own, the caller's namespace dumped on the calling thread, and every other namespace
//!    asked for dumped from short-lived threads that enter it ([`netns::in_each`]);
//! 3. the join of sockets and processes by socket inode ([`join`]).
//!
//! [`collect`] is one full pass: it must agree with `ss` on every count. A [`Collector`] that
//! lives across refreshes can instead refresh incrementally, re-reading each time only what
//! is cheap and what a diagnosis turns on (see [`crate::model::Freshness`] for what that
//! is). Nothing here decides what is bad; it only records what the kernel said and what
//! could not be read.

mod join;
pub mod netlink;
pub mod netns;
pub mod procnet;
pub mod procs;
mod sockets;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::{
    FdScan, Freshness, Host, NetnsSnapshot, Snapshot, StateCounts, Sysctls, TcpSocket, TcpState,
};
use join::SocketIndex;
use netlink::NetlinkError;
use netns::{Catalog, EnterError, Target};
pub use netns::{NetnsScope, NsId, ResolveError};
use procnet::NetTables;
use procs::ProcessScan;
use sockets::{Depth, FRESH_STATES, Slot, Sockets};

/// Where and how to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Root of the proc filesystem, `/proc` on a live host.
    pub proc_root: PathBuf,
    /// Threads for the /proc walk, and for dumping other network namespaces.
    pub threads: usize,
    /// Which network namespaces to collect.
    pub netns: NetnsScope,
    /// Where `ip netns` keeps its names: `/run/netns`.
    pub netns_dir: PathBuf,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            proc_root: PathBuf::from("/proc"),
            threads: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            netns: NetnsScope::Own,
            netns_dir: PathBuf::from("/run/netns"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("sock_diag dump failed: {0}")]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] ResolveError),
    /// The one namespace asked for could not be entered.
    #[error("network namespace {label}: {reason}")]
    NetnsLost { label: String, reason: EnterError },
}

/// Take one snapshot, reading everything: of the namespaces `opts` asks for and of every
/// process.
pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    run_pass(opts, None, Plan::FULL).map(|pass| pass.snapshot)
}

/// How a [`Collector`] refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Every snapshot is a full pass, as [`collect`] takes: exact, and as costly each time.
    Full,
    /// Between full passes, re-read only what is cheap and what a diagnosis turns on.
    Incremental {
        /// A full socket dump (every TCP state, every unix socket, sysctls) at least this
        /// often.
        full_dump_every: Duration,
        /// Every process's descriptors walked at least this often; in between, only new
        /// processes and those whose descriptor count changed.
        full_walk_every: Duration,
    },
}

impl Refresh {
    /// What the dashboard and the exporter use: a full socket dump every 5 s, a full
    /// descriptor walk every 30 s.
    pub const INCREMENTAL: Refresh = Refresh::Incremental {
        full_dump_every: Duration::from_secs(5),
        full_walk_every: Duration::from_secs(30),
    };
}

/// A collector that lives across refreshes, so that repeated snapshots (the dashboard, the
/// exporter) reuse what has not changed since the last one.
///
/// The first snapshot is always a full pass. With [`Refresh::Incremental`], later ones keep
/// the socket → process map, re-walking the descriptors only of processes that are new or
/// whose descriptor count or start time changed, and read the sockets with state-filtered
/// dumps; each snapshot's [`Freshness`] says how old the carried-over parts are.
pub struct Collector {
    opts: CollectOptions,
    refresh: Refresh,
    cache: Option<Cache>,
}

/// What an incremental collector keeps between refreshes.
struct Cache {
    /// The last process scan: the socket inodes of each process.
    procs: ProcessScan,
    /// Every socket inode of the last full dumps, and what it was then.
    base: HashMap<u64, Slot>,
    /// What the last full dump of each namespace read that a fresh dump does not.
    namespaces: HashMap<NsId, NsBase>,
    full_dump_ns: u64,
    full_walk_ns: u64,
}

/// The parts of a namespace only a full dump reads.
#[derive(Debug, Clone)]
struct NsBase {
    tcp_states: StateCounts,
    /// ESTABLISHED children not yet accepted (inode 0).
    unaccepted: Vec<TcpSocket>,
    unix_sockets: u64,
    sysctl: Sysctls,
    local_addrs: Vec<IpAddr>,
    /// The notes of the full read of its tables.
    notes: Vec<String>,
}

impl Collector {
    /// An incremental collector ([`Refresh::INCREMENTAL`]).
    pub fn new(opts: CollectOptions) -> Collector {
        Collector::with_refresh(opts, Refresh::INCREMENTAL)
    }

    pub fn with_refresh(opts: CollectOptions, refresh: Refresh) -> Collector {
        Collector {
            opts,
            refresh,
            cache: None,
        }
    }

    /// Take a snapshot: a full pass the first time and whenever one is due, otherwise a
    /// refresh of what changed.
    pub fn snapshot(&mut self) -> Result<Snapshot, CollectError> {
        let Refresh::Incremental {
            full_dump_every,
            full_walk_every,
        } = self.refresh
        else {
            return collect(&self.opts);
        };
        let now = monotonic_ns();
        let due =
            |since: u64, every: Duration| u128::from(now.saturating_sub(since)) >= every.as_nanos();
        let plan = match &self.cache {
            None => Plan::FULL,
            Some(cache) => Plan {
                full_dump: due(cache.full_dump_ns, full_dump_every),
                full_walk: due(cache.full_walk_ns, full_walk_every),
            },
        };
        let pass = run_pass(&self.opts, self.cache.as_ref(), plan)?;
        let at = pass.snapshot.monotonic_ns;
        match &mut self.cache {
            Some(cache) if !plan.full_dump => {
                cache.base.extend(pass.base);
                cache.namespaces.extend(pass.ns_bases);
                cache.procs = pass.scan;
                if plan.full_walk {
                    cache.full_walk_ns = at;
                }
            }
            slot => {
                let full_walk_ns = match slot {
                    Some(cache) if !plan.full_walk => cache.full_walk_ns,
                    _ => at,
                };
                *slot = Some(Cache {
                    procs: pass.scan,
                    base: pass.base,
                    namespaces: pass.ns_bases,
                    full_dump_ns: at,
                    full_walk_ns,
                });
            }
        }
        Ok(pass.snapshot)
    }
}

/// Takes snapshots `interval` apart, paced from the first so that n snapshots span
/// (n - 1) × interval however long each collection takes. Every snapshot is a full pass:
/// reports, checks and recordings must agree with `ss`.
pub struct Sampler {
    collector: Collector,
    interval: Duration,
    start: Option<Instant>,
    taken: u32,
}

impl Sampler {
    pub fn new(opts: CollectOptions, interval: Duration) -> Sampler {
        Sampler {
            collector: Collector::with_refresh(opts, Refresh::Full),
            interval,
            start: None,
            taken: 0,
        }
    }

    /// When the next snapshot is due, relative to the first.
    pub fn next_due(&self) -> Duration {
        self.interval * self.taken
    }

    /// Wait until the next snapshot is due, then take it.
    pub fn take(&mut self) -> Result<Snapshot, CollectError> {
        let start = *self.start.get_or_insert_with(Instant::now);
        if let Some(wait) = self.next_due().checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        self.taken = self.taken.saturating_add(1);
        self.collector.snapshot()
    }
}

/// What one pass re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    full_dump: bool,
    full_walk: bool,
}

impl Plan {
    const FULL: Plan = Plan {
        full_dump: true,
        full_walk: true,
    };
}

/// A pass's snapshot, and what an incremental collector keeps of it.
struct Pass {
    snapshot: Snapshot,
    scan: ProcessScan,
    /// Socket inodes of the namespaces dumped in full in this pass.
    base: HashMap<u64, Slot>,
    ns_bases: HashMap<NsId, NsBase>,
}

/// One namespace's dump, read from a thread inside it.
struct NsDump {
    depth: Depth,
    sockets: Sockets,
    tables: NetTables,
}

fn dump_here(depth: Depth) -> Result<NsDump, NetlinkError> {
    let tables = match depth {
        Depth::Full => procnet::read_net_tables(),
        Depth::Fresh => procnet::read_counters(),
    };
    // `sockstat`'s `inuse` counts IPv4 sockets only; `CurrEstab` adds the connected ones
    // of both families. A rough upper bound is all the hint needs to be.
    let established = tables.tcp.get("CurrEstab").copied().unwrap_or(0);
    let hint = tables.sockstat.map(|s| s.inuse + s.tw + established);
    let sockets = sockets::dump(depth, hint)?;
    Ok(NsDump {
        depth,
        sockets,
        tables,
    })
}

fn run_pass(
    opts: &CollectOptions,
    cache: Option<&Cache>,
    plan: Plan,
) -> Result<Pass, CollectError> {
    let started = Instant::now();
    let wall_time_ms = wall_clock_ms();
    let monotonic_ns = monotonic_ns();

    let previous = cache.filter(|_| !plan.full_walk).map(|c| &c.procs);
    let inspected = procs::inspect(&opts.proc_root, opts.threads, previous);
    let catalog = Catalog::new(&opts.netns_dir, &opts.proc_root, inspected.seen());
    let mut notes = catalog.notes.clone();
    let (own, foreign) = targets(opts, &catalog, &mut notes)?;
    let depth = |t: &Target| match cache {
        Some(c) if !plan.full_dump && c.namespaces.contains_key(&t.id) => Depth::Fresh,
        _ => Depth::Full,
    };

    let Step2 {
        mut scan,
        mut dumps,
        mut lost,
    } = dump_and_walk(
        inspected,
        own,
        foreign,
        |t| dump_here(depth(t)),
        opts.threads,
    )?;
    if let NetnsScope::One(_) = opts.netns
        && dumps.is_empty()
    {
        dumps.push(instead_of_lost(&catalog, lost.pop(), &mut notes)?);
    }
    notes.extend(lost_notes(&lost));

    // What an incremental collector keeps, taken before the join takes the indexes.
    let mut base = HashMap::new();
    let mut ns_bases = HashMap::new();
    for (target, dump) in &dumps {
        if dump.depth == Depth::Full {
            base.extend(dump.sockets.base_slots());
            ns_bases.insert(target.id, ns_base(dump));
        }
    }

    let any_fresh = dumps.iter().any(|(_, d)| d.depth == Depth::Fresh);
    let mut sockets: Vec<&mut Sockets> = dumps.iter_mut().map(|(_, d)| &mut d.sockets).collect();
    let index = SocketIndex::new(&mut sockets, cache.filter(|_| any_fresh).map(|c| &c.base));
    let processes = join::attribute(&mut scan.processes, &index, &mut sockets);
    drop(index);

    let mut per_ns_notes = Vec::new();
    let mut netns = Vec::with_capacity(dumps.len());
    for (target, dump) in dumps {
        let prior = cache.and_then(|c| c.namespaces.get(&target.id));
        let (snapshot, ns_notes) = netns_snapshot(&target, dump, prior);
        per_ns_notes.push((target.label, ns_notes));
        netns.push(snapshot);
    }
    notes.extend(group_notes(per_ns_notes));
    notes.extend(scan_notes(&scan));

    let age = |since: Option<u64>| since.map_or(0, |t| monotonic_ns.saturating_sub(t) / 1_000_000);
    let freshness = Freshness {
        incremental: !(plan.full_dump && plan.full_walk),
        socket_dump_age_ms: age(cache.filter(|_| any_fresh).map(|c| c.full_dump_ns)),
        fd_walk_age_ms: age(cache.filter(|_| !plan.full_walk).map(|c| c.full_walk_ns)),
        processes_walked: scan.walked,
    };
    let snapshot = Snapshot {
        host: host(),
        wall_time_ms,
        monotonic_ns,
        collect_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        netns,
        processes,
        process_scan: scan.stats,
        notes,
        freshness,
    };
    Ok(Pass {
        snapshot,
        scan,
        base,
        ns_bases,
    })
}

type Dumped = (Target, NsDump);

/// What step 2 of a pass brings back.
struct Step2 {
    scan: ProcessScan,
    dumps: Vec<Dumped>,
    lost: Vec<(Target, Lost)>,
}

/// Step 2 of a pass: walk the descriptors, dump the caller's namespace here and the others
/// from threads inside them, all at once. An error dumping the caller's namespace is the
/// pass's; another namespace that could not be read is returned as lost.
fn dump_and_walk(
    inspected: procs::Inspected<'_>,
    own: Option<Target>,
    foreign: Vec<Target>,
    dump: impl Fn(&Target) -> Result<NsDump, NetlinkError> + Sync,
    threads: usize,
) -> Result<Step2, CollectError> {
    let (scan, own_dump, foreign_dumps) = std::thread::scope(|scope| {
        let walker = scope.spawn(move || inspected.walk());
        let others = (!foreign.is_empty())
            .then(|| scope.spawn(|| netns::in_each(&foreign, threads.max(2), &dump)));
        let own_dump = own.as_ref().map(&dump);
        let others = others.map_or_else(Vec::new, |h| {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        let scan = walker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (scan, own_dump, others)
    });
    let mut dumps = Vec::new();
    if let (Some(target), Some(dump)) = (own, own_dump) {
        dumps.push((target, dump?));
    }
    let mut lost = Vec::new();
    for (target, result) in foreign.into_iter().zip(foreign_dumps) {
        match result {
            Ok(Ok(dump)) => dumps.push((target, dump)),
            Ok(Err(err)) => lost.push((target, Lost::Netlink(err))),
            Err(err) => lost.push((target, Lost::Enter(err))),
        }
    }
    Ok(Step2 { scan, dumps, lost })
}

/// The one namespace asked for was lost: refused, the caller's own instead (as without the
/// privilege, with a note); gone or unreadable, an error.
fn instead_of_lost(
    catalog: &Catalog,
    lost: Option<(Target, Lost)>,
    notes: &mut Vec<String>,
) -> Result<Dumped, CollectError> {
    let (target, why) =
        lost.unwrap_or_else(|| (catalog.own_target(), Lost::Enter(EnterError::Gone)));
    match why {
        Lost::Enter(EnterError::Denied(_)) => {
            notes.push(denied_note(&[target.label.as_str()]));
            Ok((catalog.own_target(), dump_here(Depth::Full)?))
        }
        Lost::Enter(reason) => Err(CollectError::NetnsLost {
            label: target.label,
            reason,
        }),
        Lost::Netlink(err) => Err(err.into()),
    }
}

/// The namespaces to dump: the caller's (dumped on the calling thread), and the others.
fn targets(
    opts: &CollectOptions,
    catalog: &Catalog,
    notes: &mut Vec<String>,
) -> Result<(Option<Target>, Vec<Target>), CollectError> {
    let mut targets = match &opts.netns {
        NetnsScope::Own => vec![catalog.own_target()],
        NetnsScope::All => catalog.all(),
        NetnsScope::One(spec) => vec![catalog.resolve(spec)?],
    };
    if targets.iter().any(|t| !t.own) && !netns::may_enter_others() {
        let others: Vec<&str> = targets
            .iter()
            .filter(|t| !t.own)
            .map(|t| t.label.as_str())
            .collect();
        notes.push(denied_note(&others));
        targets = vec![catalog.own_target()];
    }
    let own = targets
        .iter()
        .position(|t| t.own)
        .map(|at| targets.remove(at));
    Ok((own, targets))
}

fn denied_note(labels: &[&str]) -> String {
    let which = match labels {
        [one] => format!("network namespace {one}"),
        many => format!("{} other network namespaces", many.len()),
    };
    format!(
        "{which} not scanned: entering another network namespace needs CAP_SYS_ADMIN (run as \
         root); this snapshot covers the caller's namespace only"
    )
}

/// Why a namespace is missing from a snapshot.
enum Lost {
    Enter(EnterError),
    Netlink(NetlinkError),
}

/// Partial-view notes for namespaces that were found but not read.
fn lost_notes(lost: &[(Target, Lost)]) -> Vec<String> {
    let mut denied = Vec::new();
    let mut notes = Vec::new();
    for (target, why) in lost {
        let ns = format!("network namespace {} (id {})", target.label, target.id.ino);
        match why {
            Lost::Enter(EnterError::Denied(_)) => denied.push(target.label.as_str()),
            Lost::Enter(EnterError::Gone) => notes.push(format!(
                "partial: {ns} disappeared during the scan and is left out"
            )),
            Lost::Enter(err) => notes.push(format!("partial: {ns} could not be entered: {err}")),
            Lost::Netlink(err) => notes.push(format!("partial: {ns} could not be read: {err}")),
        }
    }
    if !denied.is_empty() {
        let shown: Vec<&str> = denied.iter().take(5).copied().collect();
        let more = denied.len() - shown.len();
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(format!(
            "partial: entering {} network namespaces was refused ({}{more}): they belong to \
             another user namespace, or CAP_SYS_ADMIN is missing there",
            denied.len(),
            shown.join(", ")
        ));
    }
    notes
}

/// Each namespace's notes, once per distinct text: with several namespaces, each says
/// which.
fn group_notes(per_ns: Vec<(String, Vec<String>)>) -> Vec<String> {
    if per_ns.len() <= 1 {
        return per_ns.into_iter().flat_map(|(_, notes)| notes).collect();
    }
    let mut by_text: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (label, notes) in per_ns {
        for note in notes {
            by_text.entry(note).or_default().push(label.clone());
        }
    }
    by_text
        .into_iter()
        .map(|(note, labels)| {
            let shown = labels
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = labels.len().saturating_sub(3);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("netns {shown}{more}: {note}")
        })
        .collect()
}

fn ns_base(dump: &NsDump) -> NsBase {
    NsBase {
        tcp_states: dump.sockets.tcp_states.clone(),
        unaccepted: dump
            .sockets
            .tracked
            .iter()
            .filter(|s| s.state == TcpState::Established)
            .cloned()
            .collect(),
        unix_sockets: dump.sockets.unix_sockets,
        sysctl: dump.tables.sysctl.clone(),
        local_addrs: dump.tables.local_addrs.clone(),
        notes: dump.tables.notes.clone(),
    }
}

/// A namespace's part of the snapshot, and its notes. A fresh dump is completed with what
/// the last full one read (`prior`).
fn netns_snapshot(
    target: &Target,
    dump: NsDump,
    prior: Option<&NsBase>,
) -> (NetnsSnapshot, Vec<String>) {
    let NsDump {
        depth,
        sockets,
        tables,
    } = dump;
    let mut snapshot = NetnsSnapshot {
        id: target.id.model_id(),
        label: target.label.clone(),
        sysctl: tables.sysctl,
        tcp_ext: tables.tcp_ext,
        tcp: tables.tcp,
        sockstat: tables.sockstat,
        tcp_states: sockets.tcp_states,
        tcp_listeners: sockets.tcp_listeners,
        tracked: sockets.tracked,
        unix_listeners: sockets.unix_listeners,
        unix_sockets: sockets.unix_sockets,
        local_addrs: tables.local_addrs,
    };
    let mut notes = tables.notes;
    if let (Depth::Fresh, Some(prior)) = (depth, prior) {
        let fresh = std::mem::replace(&mut snapshot.tcp_states, prior.tcp_states.clone());
        for state in FRESH_STATES {
            set_count(&mut snapshot.tcp_states, state, fresh.get(state));
        }
        // `Tcp: CurrEstab` counts ESTABLISHED and CLOSE_WAIT sockets (RFC 1213
        // tcpCurrEstab; the kernel moves it in tcp_set_state), so it gives a fresh
        // ESTABLISHED count without dumping them.
        if let Some(&current) = snapshot.tcp.get("CurrEstab") {
            let established = current.saturating_sub(fresh.get(TcpState::CloseWait));
            set_count(&mut snapshot.tcp_states, TcpState::Established, established);
        }
        snapshot.tracked.extend(prior.unaccepted.iter().cloned());
        snapshot.unix_sockets = prior.unix_sockets;
        snapshot.sysctl = prior.sysctl.clone();
        snapshot.local_addrs.clone_from(&prior.local_addrs);
        for note in &prior.notes {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
    }
    (snapshot, notes)
}

fn set_count(counts: &mut StateCounts, state: TcpState, n: u64) {
    if n == 0 {
        counts.0.remove(&state);
    } else {
        counts.0.insert(state, n);
    }
}

fn scan_notes(scan: &ProcessScan) -> Vec<String> {
    let stats = &scan.stats;
    let mut notes = scan.notes.clone();
    if stats.fds_denied > 0 {
        let denied: Vec<String> = scan
            .processes
            .iter()
            .filter(|p| p.fd_scan == FdScan::Denied)
            .take(3)
            .map(|p| format!("pid {} ({})", p.pid, p.comm))
            .collect();
        let more = stats.fds_denied.saturating_sub(denied.len() as u64);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let fix = if rustix::process::geteuid().is_root() {
            "even as root (a hardened /proc or another user namespace)"
        } else {
            "(permission denied): run as root for a full process view"
        };
        notes.push(format!(
            "the descriptors of {} of {} processes could not be read {fix}; their sockets are \
             not attributed: {}{more}",
            stats.fds_denied,
            stats.processes,
            denied.join(", ")
        ));
    }
    if stats.vanished > 0 {
        notes.push(format!(
            "{} processes exited while they were being read",
            stats.vanished
        ));
    }
    notes
}

fn host() -> Host {
    let uname = rustix::system::uname();
    Host {
        hostname: uname.nodename().to_string_lossy().into_owned(),
        kernel: uname.release().to_string_lossy().into_owned(),
    }
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}
