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

mod clock;
mod collector;
mod join;
pub mod netlink;
pub mod netns;
pub mod procnet;
pub mod procs;
mod read_plan;
mod sockets;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::{
    FdScan, Freshness, Host, NetnsSnapshot, Process, Snapshot, StateCounts, Sysctls, TcpSocket,
    TcpState,
};
pub use collector::{Collector, Refresh, Sampler};
use join::{Joined, SocketIndex};
use netlink::NetlinkError;
use netns::{Catalog, EnterError, Target};
pub use netns::{NetnsScope, NsId, ResolveError};
use procnet::NetTables;
use procs::{ProcessScan, ScannedProcess};
use read_plan::{NsRead, ReadPlan};
use sockets::{FRESH_STATES, InodeMap, Slot, Sockets};

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
    run_pass(opts, None, None, ReadPlan::FULL).map(|pass| pass.snapshot)
}

/// What a pass may reuse of the passes before it: an incremental collector's memory.
#[derive(Clone, Copy)]
struct Prior<'c> {
    /// The last process scan.
    procs: &'c ProcessScan,
    /// Every socket inode of the last full dumps, and what it was then.
    base: &'c InodeMap<Slot>,
    /// What the last full dump of each namespace read that a fresh dump does not.
    namespaces: &'c HashMap<NsId, NsBase>,
    /// The SYN_RECV and CLOSE_WAIT sockets of each namespace's last walk of them.
    tracked: &'c HashMap<NsId, Tracked>,
    full_dump_ns: u64,
    full_walk_ns: u64,
}

/// Sockets an incremental refresh found with no owner, each looked for once. Between full
/// walks a process is walked again only when its descriptor count changed; one that closed
/// a socket and opened another between two refreshes kept its count, so its earlier walk was
/// reused and its new socket is in no process's list. Such a socket — a listener, a
/// CLOSE_WAIT socket — sends the refresh back to the processes of its namespace whose walks
/// were reused.
#[derive(Debug, Default)]
pub(crate) struct Lookout {
    /// The unowned sockets already looked for, as long as they stay unowned.
    looked_for: HashSet<u64>,
    /// When the last look was, and its CPU time: looks come at most once every
    /// [`LOOKOUT_STRETCH`] times that, as the other walks stretch.
    last_ns: u64,
    last_cpu: Duration,
}

/// How far apart looks for owners are at least: this many times the last one's CPU time.
const LOOKOUT_STRETCH: u32 = 100;

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

/// A namespace's SYN_RECV and CLOSE_WAIT sockets as last read, and its TCP counters then.
#[derive(Debug, Clone)]
struct Tracked {
    sockets: Vec<TcpSocket>,
    tcp: BTreeMap<String, u64>,
    tcp_ext: BTreeMap<String, u64>,
    at_ns: u64,
    /// CPU time of the refresh that read them, when it was a refresh (not a full dump).
    cpu: Option<Duration>,
}

impl Tracked {
    /// Whether nothing can have changed among these sockets since they were read: no TCP
    /// segment came in or went out of the namespace, and no TCP counter moved. A socket
    /// enters CLOSE_WAIT on a FIN from its peer and leaves it by sending its own FIN or a
    /// RST; a request socket comes with a SYN and goes with an ACK, a RST or a SYN-ACK
    /// retransmission — all counted in `InSegs`, `OutSegs`, `OutRsts` or `RetransSegs`.
    /// What no counter shows, an application reading its CLOSE_WAIT socket's last bytes and
    /// a request socket expiring after its last retransmission, waits for the next walk.
    fn still_holds(&self, tables: &NetTables) -> bool {
        !self.tcp.is_empty() && self.tcp == tables.tcp && self.tcp_ext == tables.tcp_ext
    }
}

/// A pass's snapshot, and what an incremental collector keeps of it.
struct Pass {
    plan: ReadPlan,
    snapshot: Snapshot,
    scan: ProcessScan,
    /// Socket inodes of the namespaces dumped in full in this pass.
    base: InodeMap<Slot>,
    ns_bases: HashMap<NsId, NsBase>,
    /// The namespaces whose SYN_RECV and CLOSE_WAIT sockets were read in this pass.
    tracked: HashMap<NsId, Tracked>,
    /// CPU time of the full socket dumps of this pass, all namespaces together.
    full_dump_cpu: Duration,
}

/// One namespace's dump, read from a thread inside it.
struct NsDump {
    /// What was read, settled.
    read: NsRead,
    sockets: Sockets,
    tables: NetTables,
    /// CPU time the dump took on its thread.
    cpu: Duration,
}

/// The counters are read just before the sockets, and `sockets::dump` dumps the listeners
/// first: a listener's drop counter and ListenDrops are then read within moments.
/// `last` is the namespace's last read of its SYN_RECV and CLOSE_WAIT sockets.
fn dump_here(read: NsRead, last: Option<&Tracked>) -> Result<NsDump, NetlinkError> {
    let (dumped, cpu) = clock::thread_cpu_of(|| {
        let (tables, read) = if read.is_full() {
            (procnet::read_net_tables(), read)
        } else {
            let tables = procnet::read_counters();
            let read = read.settle(last, &tables);
            (tables, read)
        };
        // `sockstat`'s `inuse` counts IPv4 sockets only; `CurrEstab` adds the connected ones
        // of both families. A rough upper bound is all the hint needs to be.
        let established = tables.tcp.get("CurrEstab").copied().unwrap_or(0);
        let hint = tables.sockstat.map(|s| s.inuse + s.tw + established);
        sockets::dump(read, hint).map(|sockets| (read, sockets, tables))
    });
    let (read, sockets, tables) = dumped?;
    Ok(NsDump {
        read,
        sockets,
        tables,
        cpu,
    })
}

/// One pass. With `prior` (and the join kept with it), an incremental one: `plan` says
/// what is nonetheless read in full.
fn run_pass(
    opts: &CollectOptions,
    prior: Option<Prior<'_>>,
    joined: Option<(&mut Joined, &mut Lookout)>,
    plan: ReadPlan,
) -> Result<Pass, CollectError> {
    let started = Instant::now();
    let wall_time_ms = clock::wall_clock_ms();
    let monotonic_ns = clock::monotonic_ns();

    let previous = plan.walks_to_reuse(prior);
    let inspected = procs::inspect(&opts.proc_root, opts.threads, previous);
    let catalog = Catalog::new(&opts.netns_dir, &opts.proc_root, inspected.seen());
    let mut notes = catalog.notes.clone();
    let (own, foreign) = targets(opts, &catalog, &mut notes)?;
    let Step2 {
        mut scan,
        mut dumps,
        mut lost,
    } = dump_and_walk(
        inspected,
        own,
        foreign,
        |t| {
            let last = prior.and_then(|p| p.tracked.get(&t.id));
            dump_here(plan.namespace(t.id, prior, monotonic_ns), last)
        },
        opts.threads,
    )?;
    if let NetnsScope::One(_) = opts.netns
        && dumps.is_empty()
    {
        dumps.push(instead_of_lost(&catalog, lost.pop(), &mut notes)?);
    }
    notes.extend(lost_notes(&lost));

    let kept = keep_and_carry_over(&mut dumps, prior, monotonic_ns);

    let any_fresh = dumps.iter().any(|(_, d)| !d.read.is_full());
    let ns_ids: Vec<NsId> = dumps.iter().map(|(t, _)| t.id).collect();
    let mut sockets: Vec<&mut Sockets> = dumps.iter_mut().map(|(_, d)| &mut d.sockets).collect();
    let look = prior.filter(|_| any_fresh).map(|prior| Look {
        proc_root: &opts.proc_root,
        prior,
        // After a full walk every process's list is new: there is nothing reused to look in.
        walked_all: plan.walk_all,
        ns_ids: &ns_ids,
        now_ns: monotonic_ns,
    });
    let processes = join_pass(look, joined, &mut scan, &mut sockets);

    let mut per_ns_notes = Vec::new();
    let mut netns = Vec::with_capacity(dumps.len());
    for (target, dump) in dumps {
        let kept = prior.and_then(|p| p.namespaces.get(&target.id));
        let (snapshot, ns_notes) = netns_snapshot(&target, dump, kept);
        per_ns_notes.push((target.label, ns_notes));
        netns.push(snapshot);
    }
    notes.extend(group_notes(per_ns_notes));
    notes.extend(scan_notes(&scan));

    let age = |since: Option<u64>| since.map_or(0, |t| monotonic_ns.saturating_sub(t) / 1_000_000);
    let freshness = Freshness {
        incremental: !plan.is_full(),
        socket_dump_age_ms: age(prior.filter(|_| any_fresh).map(|p| p.full_dump_ns)),
        tracked_age_ms: kept.tracked_age_ms,
        fd_walk_age_ms: age(prior.filter(|_| !plan.walk_all).map(|p| p.full_walk_ns)),
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
        plan,
        snapshot,
        scan,
        base: kept.base,
        ns_bases: kept.ns_bases,
        tracked: kept.tracked,
        full_dump_cpu: kept.full_dump_cpu,
    })
}

/// Join the pass's processes with its dumps, naming the owners in the dumps' lists. An
/// incremental refresh (`look`, with the collector's join) brings the kept join up to date
/// and looks for the owners of what it left unowned; any other pass joins afresh.
fn join_pass(
    look: Option<Look<'_>>,
    joined: Option<(&mut Joined, &mut Lookout)>,
    scan: &mut ProcessScan,
    sockets: &mut [&mut Sockets],
) -> Vec<Process> {
    let (Some(look), Some((joined, lookout))) = (look, joined) else {
        let index = SocketIndex::new(sockets);
        return join::attribute(&mut scan.processes, &index, sockets);
    };
    let base = look.prior.base;
    joined.update(&mut scan.processes, look.prior.procs, base);
    let processes = joined.attribute(&scan.processes, sockets, base);
    if look.for_owners(lookout, scan, joined, sockets) {
        joined.attribute(&scan.processes, sockets, base)
    } else {
        processes
    }
}

/// What [`Look::for_owners`] needs of the pass.
struct Look<'a> {
    proc_root: &'a std::path::Path,
    prior: Prior<'a>,
    walked_all: bool,
    /// The namespace of each dump, in the dumps' order.
    ns_ids: &'a [NsId],
    now_ns: u64,
}

impl Look<'_> {
    /// Look once for the owners of the listeners and CLOSE_WAIT sockets that this refresh's
    /// join left unowned and that were not looked for before: walk again the processes of
    /// their namespaces whose earlier walks were reused, and bring the join up to what they
    /// hold now. Returns whether any process's sockets changed, so that the join's owners
    /// must be named again.
    fn for_owners(
        &self,
        lookout: &mut Lookout,
        scan: &mut ProcessScan,
        joined: &mut Joined,
        sockets: &[&mut Sockets],
    ) -> bool {
        let unowned = unowned(sockets);
        let still: HashSet<u64> = unowned.iter().map(|&(_, inode)| inode).collect();
        lookout.looked_for.retain(|inode| still.contains(inode));
        let new: Vec<(usize, u64)> = unowned
            .into_iter()
            .filter(|(_, inode)| !lookout.looked_for.contains(inode))
            .collect();
        let wait = lookout.last_cpu * LOOKOUT_STRETCH;
        let since = self.now_ns.saturating_sub(lookout.last_ns);
        if self.walked_all || new.is_empty() || u128::from(since) < wait.as_nanos() {
            return false;
        }
        let namespaces: HashSet<NsId> = new
            .iter()
            .filter_map(|&(n, _)| self.ns_ids.get(n).copied())
            .collect();
        let previous = self.prior.procs;
        let reused = |p: &ScannedProcess| {
            previous.process(p.pid).is_some_and(|before| {
                before.start_time == p.start_time && before.socket_inodes == p.socket_inodes
            })
        };
        let candidates: Vec<u32> = scan
            .processes
            .iter()
            .filter(|p| !p.kernel_thread && p.fd_scan == FdScan::Complete)
            .filter(|p| p.netns.is_some_and(|ns| namespaces.contains(&ns)))
            .filter(|p| reused(p))
            .map(|p| p.pid)
            .collect();
        lookout
            .looked_for
            .extend(new.iter().map(|&(_, inode)| inode));
        let (walked, cpu) =
            clock::thread_cpu_of(|| procs::rewalk(self.proc_root, scan, &candidates));
        lookout.last_cpu = cpu;
        lookout.last_ns = self.now_ns;
        let mut changed = false;
        for pid in walked {
            if let Some(p) = scan.process(pid).filter(|p| !reused(p)) {
                joined.rewalked(p, previous, self.prior.base);
                changed = true;
            }
        }
        changed
    }
}

/// The listeners (TCP and unix) and CLOSE_WAIT sockets of `sockets` that have an inode and
/// no owner after the join: (position of their dump, inode).
fn unowned(sockets: &[&mut Sockets]) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (n, s) in sockets.iter().enumerate() {
        let close_wait = s.tracked.iter().filter(|t| t.state == TcpState::CloseWait);
        let tcp = s.tcp_listeners.iter().chain(close_wait);
        out.extend(
            tcp.filter(|t| t.inode != 0 && t.owners.is_empty())
                .map(|t| (n, t.inode)),
        );
        out.extend(
            s.unix_listeners
                .iter()
                .filter(|u| u.inode != 0 && u.owners.is_empty())
                .map(|u| (n, u.inode)),
        );
    }
    out
}

/// What an incremental collector keeps of a pass's dumps.
struct Kept {
    base: InodeMap<Slot>,
    ns_bases: HashMap<NsId, NsBase>,
    tracked: HashMap<NsId, Tracked>,
    full_dump_cpu: Duration,
    /// The oldest carried-over SYN_RECV / CLOSE_WAIT read.
    tracked_age_ms: u64,
}

/// Take what an incremental collector keeps of `dumps`, before the join takes their
/// indexes; and put back what it kept where this pass did not read it again.
fn keep_and_carry_over(dumps: &mut [Dumped], prior: Option<Prior<'_>>, now_ns: u64) -> Kept {
    let mut kept = Kept {
        base: InodeMap::default(),
        ns_bases: HashMap::new(),
        tracked: HashMap::new(),
        full_dump_cpu: Duration::ZERO,
        tracked_age_ms: 0,
    };
    for (target, dump) in dumps {
        match dump.read {
            NsRead::Full => {
                kept.base.extend(dump.sockets.base_slots());
                kept.ns_bases.insert(target.id, ns_base(dump));
                kept.full_dump_cpu += dump.cpu;
            }
            NsRead::Listeners => {
                if let Some(last) = prior.and_then(|p| p.tracked.get(&target.id)) {
                    let age = now_ns.saturating_sub(last.at_ns) / 1_000_000;
                    kept.tracked_age_ms = kept.tracked_age_ms.max(age);
                    let age = u32::try_from(age).unwrap_or(u32::MAX);
                    for s in &last.sockets {
                        dump.sockets.add_carried_over(s, age);
                    }
                }
                continue;
            }
            NsRead::Fresh | NsRead::FreshIfMoved => {}
        }
        kept.tracked.insert(target.id, tracked_of(dump, now_ns));
    }
    kept
}

/// The SYN_RECV and CLOSE_WAIT sockets a dump read, to carry over while nothing moves.
fn tracked_of(dump: &NsDump, at_ns: u64) -> Tracked {
    let cpu = matches!(dump.read, NsRead::Fresh | NsRead::FreshIfMoved).then_some(dump.cpu);
    Tracked {
        sockets: dump
            .sockets
            .tracked
            .iter()
            .filter(|s| matches!(s.state, TcpState::SynRecv | TcpState::CloseWait))
            .map(|s| TcpSocket {
                owners: Vec::new(),
                ..s.clone()
            })
            .collect(),
        tcp: dump.tables.tcp.clone(),
        tcp_ext: dump.tables.tcp_ext.clone(),
        at_ns,
        cpu,
    }
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
            Ok((catalog.own_target(), dump_here(NsRead::Full, None)?))
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
        read,
        sockets,
        tables,
        ..
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
    if let (false, Some(prior)) = (read.is_full(), prior) {
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
