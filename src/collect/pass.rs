//! One collection pass, and the threads it runs on.
//!
//! A pass runs in three steps:
//!
//! 1. the first pass of the /proc walk ([`procs::inspect`]): every process's name, start
//!    time, descriptor count and network namespace — from which [`Catalog`] learns which
//!    namespaces exist and what to call them;
//! 2. at the same time: the descriptor walk ([`procs::Inspected::walk_where`]) on threads of
//!    its own, the caller's namespace dumped on the calling thread, and every other namespace
//!    asked for dumped from a few threads (one per core) that enter one namespace after
//!    another ([`netns::in_each`]). A pass that dumps the caller's namespace in full starts
//!    that dump with step 1 instead: it needs nothing of the process scan;
//! 3. the join of sockets and processes by socket inode ([`join`]), and the snapshot.
//!
//! The walk is scoped ([`WalkScope`]): only the processes of the namespaces dumped are walked
//! (all of them with `--all-netns`), and those of other namespaces that an earlier pass of a
//! collector found holding their sockets. A socket kept in full that the join leaves unowned
//! then sends the pass to the processes of the other namespaces, once
//! ([`owners::look_elsewhere`]).
//!
//! What is read is the [`ReadPlan`]'s to say; what a refresh keeps and puts back is
//! [`carry_over`](super::carry_over)'s; the notes are worded in [`notes`]. A pass owns the
//! order of the reads and the threads they run on.

use std::time::Instant;

use super::acceptors;
use super::carry_over::{FullDumpOnly, Keep, KeptReads, Prior, Tracked, carry_over};
use super::cross_peers;
use super::join::{self, Joined, SocketIndex};
use super::netlink::NetlinkError;
use super::netns::{self, Catalog, EnterError, NetnsScope, Target};
use super::owner_source::OwnerSource;
use super::owners::{self, Lookout, OwnerSearch};
use super::procnet::{self, HostSysctls};
use super::procs::{self, ProcessScan};
use super::read_plan::{self, ReadPlan};
use super::sockets::slot_index::SlotIndex;
use super::sockets::{self, Dumped, Lost, NsDump, PortUseSampled, Sockets};
use super::vocab::{InodeMap, NsId, NsRead};
use super::{CollectError, CollectOptions, clock, notes};
use crate::model::{Freshness, Host, NetnsSnapshot, PortUse, Process, Snapshot};

/// The most TCP sockets in the caller's namespace beside whose dump the iterator's load runs
/// (see [`run`]): past it, the dump's tables outweigh the load's parse.
const LOAD_BESIDE_DUMPS_UP_TO: u64 = 250_000;

/// A pass's snapshot, and what an incremental collector keeps of it.
pub(super) struct Pass {
    pub(super) plan: ReadPlan,
    pub(super) snapshot: Snapshot,
    pub(super) scan: ProcessScan,
    pub(super) kept: KeptReads,
}

/// Read the namespace the calling thread is in ([`sockets::read_namespace`]). `last` is the
/// namespace's last read of its SYN_RECV and CLOSE_WAIT sockets, by which a read that is
/// not full is settled; `others_scanned`, whether other namespaces are dumped in this pass
/// too; `host`, the host's sysctls, read once for the pass.
fn dump_here(
    read: NsRead,
    last: Option<&Tracked>,
    others_scanned: bool,
    conntrack_ports: bool,
    index: SlotIndex,
    host: &HostSysctls,
) -> Result<NsDump, NetlinkError> {
    let settle = |read, tables: &_| read_plan::settle(read, last, tables);
    sockets::read_namespace(read, settle, others_scanned, conntrack_ports, index, host)
}

/// One pass. With `prior` (and the join kept with it), an incremental one: `plan` says
/// what is nonetheless read in full. `index`: the index of an earlier full dump, no longer
/// needed, for the caller's namespace's dump to fill again (or an empty one).
#[allow(clippy::too_many_lines)] // the steps in order, read top to bottom
pub(super) fn run(
    opts: &CollectOptions,
    prior: Option<Prior<'_>>,
    joined: Option<(&mut Joined, &mut Lookout)>,
    mut plan: ReadPlan,
    (keep, index): (Keep, SlotIndex),
    owners: &mut OwnerSource,
) -> Result<Pass, CollectError> {
    let started = Instant::now();
    let wall_time_ms = clock::wall_clock_ms();
    let monotonic_ns = clock::monotonic_ns();

    // The iterator's load holds some 25 MiB while the loader parses the kernel's BTF. Beside
    // a small TCP table it runs alongside the dumps, which it then costs no time; beside a
    // large one it is waited for first, so that its memory is given back before the dumps'
    // tables grow instead of being stacked on them (at 1,000,000 sockets, 25 ms of 2 s).
    if owners.is_loading()
        && procnet::tcp_sockets_here().is_some_and(|n| n > LOAD_BESIDE_DUMPS_UP_TO)
    {
        owners.wait_loaded();
    }
    // Once for every namespace: the same in each, and costly to look up in each.
    let host_sysctls = procnet::read_host_sysctls();
    let mut early = start_early(opts, &plan, keep, &host_sysctls);
    let previous = plan.walks_to_reuse(prior);
    let inspected = procs::inspect(&opts.proc_root, opts.threads, previous);
    let catalog = Catalog::new(
        &opts.netns_dir,
        &opts.proc_root,
        &opts.runtimes,
        inspected.seen(),
    );
    let mut notes = notes::catalog(&catalog.problems);
    let (own, foreign) =
        targets(opts, &catalog, &mut notes).inspect_err(|_| finish_early(early.take()))?;
    let others_scanned = usize::from(own.is_some()) + foreign.len() > 1;
    let scope = WalkScope::new(opts, own.iter().chain(&foreign), prior);
    let ScanAndDumps {
        mut scan,
        mut dumps,
        mut lost,
    } = dump_and_walk(
        || {
            inspected.walk_where_using(
                |p| scope.walks(p),
                |n, held| owners.table(n, held, previous.is_none()),
            )
        },
        own,
        early,
        foreign,
        |t, index| {
            let last = prior.and_then(|p| p.tracked.get(&t.id));
            let read = plan.namespace(t.id, prior, monotonic_ns);
            dump_here(
                read,
                last,
                others_scanned,
                opts.conntrack_ports,
                index,
                &host_sysctls,
            )
        },
        (index, opts.threads),
    )?;
    notes.push(owners.note()?);
    // Every process's sockets were read afresh: as a full walk, nothing reused.
    plan.walk_all |= scan.read_at_once;
    if let NetnsScope::One(_) = opts.netns
        && dumps.is_empty()
    {
        let lost = lost.pop();
        dumps.push(instead_of_lost(
            opts,
            &catalog,
            lost,
            &host_sysctls,
            &mut notes,
        )?);
        walk_instead(opts, &mut scan, &dumps);
    }
    notes.extend(notes::lost(&lost));
    // Before the carry-over, which confirms the sockets found gone, and the join, which
    // names their owners.
    cross_peers::settle(&mut dumps, opts.threads);

    let (mut kept, tracked_age_ms) = carry_over(&mut dumps, prior, monotonic_ns, keep);

    let any_fresh = dumps.iter().any(|(_, d)| !d.read.is_full());
    let ns_ids: Vec<NsId> = dumps.iter().map(|(t, _)| t.id).collect();
    let mut sockets: Vec<&mut Sockets> = dumps.iter_mut().map(|(_, d)| &mut d.sockets).collect();
    let search = prior.filter(|_| any_fresh).map(|prior| OwnerSearch {
        proc_root: &opts.proc_root,
        prior,
        // After a full walk every process's list is new: there is nothing reused to look in.
        walked_all: plan.walk_all,
        ns_ids: &ns_ids,
        now_ns: monotonic_ns,
    });
    let elsewhere = Elsewhere::new(opts, monotonic_ns);
    let (processes, elsewhere_note, index) =
        join_processes(search, joined, &elsewhere, &mut scan, &mut sockets);
    if let (Keep::ForRefresh, Some(index)) = (keep, index) {
        kept.base = keep_index(index, &sockets);
    }
    let (port_use, untracked) = port_use(&mut sockets, &scan);

    let mut per_ns_notes = Vec::new();
    let mut netns = Vec::with_capacity(dumps.len());
    for (((target, dump), port_use), untracked) in dumps.into_iter().zip(port_use).zip(untracked) {
        let kept = prior.and_then(|p| p.namespaces.get(&target.id));
        let port_use = port_use.map(|sampled| sampled.into_iter().map(|(u, _)| u).collect());
        let (snapshot, mut ns_notes) = netns_snapshot(&target, dump, kept, port_use);
        if untracked > 0 {
            ns_notes.push(notes::ports_untracked(untracked));
        }
        per_ns_notes.push((target.label, ns_notes));
        netns.push(snapshot);
    }
    read_holders(&opts.proc_root, &mut netns, opts.threads);
    notes.extend(notes::grouped(per_ns_notes));
    notes.extend(notes::scan(&scan));
    notes.extend(elsewhere_note);

    let age = |since: Option<u64>| since.map_or(0, |t| monotonic_ns.saturating_sub(t) / 1_000_000);
    let freshness = Freshness {
        incremental: !plan.is_full(),
        socket_dump_age_ms: age(prior.filter(|_| any_fresh).map(|p| p.full_dump_ns)),
        tracked_age_ms,
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
        kept,
    })
}

/// Who holds the listeners whose facts ask for an explanation ([`acceptors::read`]), the
/// namespaces that have any spread over `threads`: with 1,000 namespaces, each may have one.
fn read_holders(proc_root: &std::path::Path, netns: &mut [NetnsSnapshot], threads: usize) {
    let wanted: Vec<(usize, Vec<acceptors::Wanted>)> = netns
        .iter()
        .map(acceptors::candidates)
        .enumerate()
        .filter(|(_, wanted)| !wanted.is_empty())
        .collect();
    let threads = threads.clamp(1, wanted.len().max(1));
    let holders = procs::parallel_map(
        &wanted,
        threads,
        || (),
        |(_, wanted), ()| acceptors::read(proc_root, wanted),
    );
    for ((at, _), holders) in wanted.iter().zip(holders) {
        netns[*at].holders = holders;
    }
}

/// The busiest destinations of each dump that counted them, their owners named; and how
/// many sockets each left uncounted.
fn port_use(
    sockets: &mut [&mut Sockets],
    scan: &ProcessScan,
) -> (Vec<Option<PortUseSampled>>, Vec<u64>) {
    let (mut port_use, untracked): (Vec<Option<PortUseSampled>>, Vec<u64>) = sockets
        .iter_mut()
        .map(|s| match s.take_port_use() {
            Some((top, untracked)) => (Some(top), untracked),
            None => (None, 0),
        })
        .unzip();
    name_port_users(&mut port_use, scan);
    (port_use, untracked)
}

/// Name the processes holding each busy destination's sockets, from the inodes sampled:
/// one look at every socket descriptor of the scan, only when some destination was counted.
fn name_port_users(port_use: &mut [Option<PortUseSampled>], scan: &ProcessScan) {
    let mut wanted: InodeMap<(usize, usize)> = InodeMap::default();
    for (ns, uses) in port_use.iter().enumerate() {
        for (at, (_, sample)) in uses.iter().flatten().enumerate() {
            wanted.extend(sample.iter().map(|&inode| (inode, (ns, at))));
        }
    }
    if wanted.is_empty() {
        return;
    }
    for p in &scan.processes {
        for inode in &p.socket_inodes {
            if let Some(&(ns, at)) = wanted.get(inode)
                && let Some(Some(uses)) = port_use.get_mut(ns)
                && let Some((u, _)) = uses.get_mut(at)
                && !u.owners.contains(&p.pid)
            {
                u.owners.push(p.pid);
            }
        }
    }
    for (u, _) in port_use.iter_mut().flatten().flatten() {
        u.owners.sort_unstable();
    }
}

/// The index a collector keeps of a pass whose every dump was full, made of the join's own
/// (in place, for one namespace): what each inode was, without pointing into the dumps.
fn keep_index(index: SocketIndex, sockets: &[&mut Sockets]) -> SlotIndex {
    match index {
        SocketIndex::One(mut index) => {
            if let Some(dump) = sockets.first() {
                index.map_slots(|slot| dump.plain_slot(slot));
            }
            index
        }
        SocketIndex::Several(merged) => {
            let mut kept = SlotIndex::with_capacity(merged.len());
            for (ns, inode, slot) in merged.iter() {
                if let Some(plain) = sockets.get(ns).and_then(|d| d.plain_slot(slot)) {
                    kept.insert(inode, plain);
                }
            }
            kept.finish();
            kept
        }
    }
}

/// Which processes a pass walks: those of the namespaces it dumps (every one with
/// `--all-netns`), those whose namespace is not known, and those of other namespaces that the
/// collector's last scan found holding their sockets (kept, so that a refresh does not lose
/// the owners [`owners::look_elsewhere`] found).
struct WalkScope {
    /// `None`: every process.
    namespaces: Option<Vec<NsId>>,
    /// Processes of other namespaces still walked: (pid, start time).
    also: std::collections::HashSet<(u32, Option<u64>)>,
}

impl WalkScope {
    fn new<'t>(
        opts: &CollectOptions,
        targets: impl Iterator<Item = &'t Target>,
        prior: Option<Prior<'_>>,
    ) -> WalkScope {
        if opts.netns == NetnsScope::All {
            return WalkScope {
                namespaces: None,
                also: std::collections::HashSet::new(),
            };
        }
        let namespaces: Vec<NsId> = targets.map(|t| t.id).collect();
        let also = prior
            .into_iter()
            .flat_map(|p| &p.procs.processes)
            .filter(|p| p.netns.is_some_and(|ns| !namespaces.contains(&ns)))
            .map(|p| (p.pid, p.start_time))
            .collect();
        WalkScope {
            namespaces: Some(namespaces),
            also,
        }
    }

    fn walks(&self, p: &procs::SeenProcess<'_>) -> bool {
        let Some(namespaces) = &self.namespaces else {
            return true;
        };
        match p.netns {
            None => true,
            Some(ns) => namespaces.contains(&ns) || self.also.contains(&(p.pid, p.start_time)),
        }
    }
}

/// What the look for owners in other namespaces needs of the pass.
struct Elsewhere<'a> {
    proc_root: &'a std::path::Path,
    threads: usize,
    now_ns: u64,
}

/// Join the pass's processes with its dumps, naming the owners in the dumps' lists. An
/// incremental refresh (`search`, with the collector's join) brings the kept join up to date
/// and looks for the owners of what it left unowned; any other pass joins afresh. Either
/// then looks for owners among the processes of other namespaces, when sockets are still
/// unowned ([`owners::look_elsewhere`]); its note is returned, and the index a fresh join
/// took of the dumps.
fn join_processes(
    search: Option<OwnerSearch<'_>>,
    joined: Option<(&mut Joined, &mut Lookout)>,
    elsewhere: &Elsewhere<'_>,
    scan: &mut ProcessScan,
    sockets: &mut [&mut Sockets],
) -> (Vec<Process>, Option<String>, Option<SocketIndex>) {
    match (search, joined) {
        (Some(search), Some((joined, lookout))) => {
            let (base, previous) = (search.prior.base, search.prior.procs);
            joined.update(&mut scan.processes, previous, base);
            let mut processes = joined.attribute(&scan.processes, sockets, base);
            if search.run(lookout, scan, joined, sockets) {
                processes = joined.attribute(&scan.processes, sockets, base);
            }
            let Some(found) = elsewhere.look(scan, sockets, Some(lookout)) else {
                return (processes, None, None);
            };
            if !found.processes.is_empty() {
                for p in &found.processes {
                    joined.rewalked(p, base);
                }
                processes = joined.attribute(&scan.processes, sockets, base);
            }
            (processes, Some(found.note), None)
        }
        (_, joined) => {
            let index = SocketIndex::new(sockets);
            let mut processes = join::attribute(&mut scan.processes, &index, sockets);
            let lookout = joined.map(|(_, lookout)| lookout);
            let Some(mut found) = elsewhere.look(scan, sockets, lookout) else {
                return (processes, None, Some(index));
            };
            if !found.processes.is_empty() {
                processes.extend(join::attribute(&mut found.processes, &index, sockets));
                processes.sort_by_key(|p| p.pid);
                join::sort_owners(sockets);
            }
            (processes, Some(found.note), Some(index))
        }
    }
}

impl Elsewhere<'_> {
    fn new(opts: &CollectOptions, now_ns: u64) -> Elsewhere<'_> {
        Elsewhere {
            proc_root: &opts.proc_root,
            threads: opts.threads,
            now_ns,
        }
    }

    fn look(
        &self,
        scan: &mut ProcessScan,
        sockets: &[&mut Sockets],
        lookout: Option<&mut Lookout>,
    ) -> Option<owners::FoundElsewhere> {
        owners::look_elsewhere(
            self.proc_root,
            self.threads,
            scan,
            sockets,
            lookout,
            self.now_ns,
        )
    }
}

/// The process scan, and every namespace's dump or why it is missing: what walking the
/// descriptors and dumping the namespaces at once brings back.
struct ScanAndDumps {
    scan: ProcessScan,
    dumps: Vec<Dumped>,
    lost: Vec<(Target, Lost)>,
}

/// Walk the descriptors of the processes (`walk`: the second pass of the process scan, or
/// the read of them all at once), dump the caller's namespace here and the others from
/// threads inside them, all at once. An error dumping the caller's
/// namespace is the pass's; another namespace that could not be read is returned as lost.
fn dump_and_walk(
    walk: impl FnOnce() -> ProcessScan + Send,
    own: Option<Target>,
    early: Option<EarlyDump>,
    foreign: Vec<Target>,
    dump: impl Fn(&Target, SlotIndex) -> Result<NsDump, NetlinkError> + Sync,
    (index, threads): (SlotIndex, usize),
) -> Result<ScanAndDumps, CollectError> {
    let (scan, own_dump, foreign_dumps) = std::thread::scope(|scope| {
        let walker = scope.spawn(walk);
        let others = (!foreign.is_empty()).then(|| {
            let (foreign, dump) = (&foreign, &dump);
            let dump = move |t: &Target| dump(t, SlotIndex::default());
            scope.spawn(move || netns::in_each(foreign, threads.max(2), dump))
        });
        let own_dump = match (&own, early) {
            (Some(_), Some(early)) => Some(
                early
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            ),
            (Some(target), None) => Some(dump(target, index)),
            (None, early) => {
                finish_early(early);
                None
            }
        };
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
    Ok(ScanAndDumps { scan, dumps, lost })
}

/// The caller's namespace, dumped in full from a thread started with the pass.
type EarlyDump = std::thread::JoinHandle<Result<NsDump, NetlinkError>>;

/// The caller's own namespace, when the pass surely dumps it in full, is dumped from the
/// start: its dump needs nothing of the process scan, and runs beside it. With
/// `--all-netns` other namespaces are taken to be scanned too (if none is, the candidates it
/// keeps for them are dropped unlooked-at). One-shot passes only: a collector's would give
/// each full dump a thread of its own, spreading its memory over the allocator's per-thread
/// arenas for the life of the dashboard.
fn start_early(
    opts: &CollectOptions,
    plan: &ReadPlan,
    keep: Keep,
    host: &HostSysctls,
) -> Option<EarlyDump> {
    let all = matches!(opts.netns, NetnsScope::All);
    let ports = opts.conntrack_ports;
    (keep == Keep::Nothing
        && plan.dump_all
        && matches!(opts.netns, NetnsScope::Own | NetnsScope::All))
    .then(|| {
        let host = host.clone();
        std::thread::spawn(move || {
            dump_here(NsRead::Full, None, all, ports, SlotIndex::default(), &host)
        })
    })
}

/// Wait for an early dump that the pass turned out not to need.
fn finish_early(early: Option<EarlyDump>) {
    if let Some(early) = early {
        let _unneeded = early.join();
    }
}

/// The walk was scoped to the one namespace asked for, lost: walk the processes of the
/// namespace dumped instead.
fn walk_instead(opts: &CollectOptions, scan: &mut ProcessScan, dumps: &[Dumped]) {
    let instead: Vec<NsId> = dumps.iter().map(|(t, _)| t.id).collect();
    let walked = procs::walk_unwalked(&opts.proc_root, scan, opts.threads, |p| {
        p.netns.is_some_and(|ns| instead.contains(&ns))
    });
    scan.add_walked(walked.processes);
}

/// The one namespace asked for was lost: refused, the caller's own instead (as without the
/// privilege, with a note); gone or unreadable, an error.
fn instead_of_lost(
    opts: &CollectOptions,
    catalog: &Catalog,
    lost: Option<(Target, Lost)>,
    host: &HostSysctls,
    notes: &mut Vec<String>,
) -> Result<Dumped, CollectError> {
    let (target, why) =
        lost.unwrap_or_else(|| (catalog.own_target(), Lost::Enter(EnterError::Gone)));
    match why {
        Lost::Enter(EnterError::Denied(_)) => {
            notes.push(notes::denied(&[target.label.as_str()]));
            let ports = opts.conntrack_ports;
            Ok((
                catalog.own_target(),
                dump_here(NsRead::Full, None, false, ports, SlotIndex::default(), host)?,
            ))
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
        notes.push(notes::denied(&others));
        targets = vec![catalog.own_target()];
    }
    let own = targets
        .iter()
        .position(|t| t.own)
        .map(|at| targets.remove(at));
    Ok((own, targets))
}

/// A namespace's part of the snapshot, and its notes. A fresh dump is completed with what
/// the last full one read (`prior`).
///
/// `port_use` is the busiest destinations a full dump counted, their owners named.
fn netns_snapshot(
    target: &Target,
    dump: NsDump,
    prior: Option<&FullDumpOnly>,
    port_use: Option<Vec<PortUse>>,
) -> (NetnsSnapshot, Vec<String>) {
    let NsDump {
        read,
        sockets,
        tables,
        ..
    } = dump;
    let mut notes = notes::tables(&tables.problems);
    if let Some(why) = &sockets.udp_refused {
        notes.push(notes::udp_refused(why));
    }
    let troubled_left_out = sockets.troubled_left_out();
    let peer_gone_left_out = sockets.peer_gone_left_out;
    let mut snapshot = NetnsSnapshot {
        id: target.id.model_id(),
        label: target.label.clone(),
        container: target.container.clone(),
        sysctl: tables.sysctl,
        tcp_ext: tables.tcp_ext,
        tcp: tables.tcp,
        sockstat: tables.sockstat,
        tcp_states: sockets.tcp_states,
        tcp_listeners: sockets.tcp_listeners,
        tracked: sockets.tracked,
        troubled_left_out,
        tracked_dropped: false,
        unix_listeners: sockets.unix_listeners,
        unix_sockets: sockets.unix_sockets,
        local_addrs: tables.local_addrs,
        peer_gone: sockets.peer_gone,
        peer_gone_left_out,
        peer_unchecked: sockets.peer_unchecked,
        silent_unchecked: sockets.silent_unchecked,
        udp: tables.udp,
        udp_sockets: sockets.udp,
        udp_socket_count: sockets.udp_count,
        udp_left_out: sockets.udp_left_out,
        port_use: port_use.unwrap_or_default(),
        holders: Vec::new(),
        conntrack: tables.conntrack,
        time_wait_top: sockets.time_wait_top,
        conntrack_ports: tables.conntrack_ports,
    };
    if let (false, Some(prior)) = (read.is_full(), prior) {
        prior.complete(&mut snapshot, &mut notes);
    }
    (snapshot, notes)
}

fn host() -> Host {
    let uname = rustix::system::uname();
    Host {
        hostname: uname.nodename().to_string_lossy().into_owned(),
        kernel: uname.release().to_string_lossy().into_owned(),
    }
}
