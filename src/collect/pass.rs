//! One collection pass, and the threads it runs on.
//!
//! A pass runs in three steps:
//!
//! 1. the first pass of the /proc walk ([`procs::inspect`]): every process's name, start
//!    time, descriptor count and network namespace — from which [`Catalog`] learns which
//!    namespaces exist and what to call them;
//! 2. at the same time: the descriptor walk ([`procs::Inspected::walk`]) on threads of its
//!    own, the caller's namespace dumped on the calling thread, and every other namespace
//!    asked for dumped from a few threads (one per core) that enter one namespace after
//!    another ([`netns::in_each`]);
//! 3. the join of sockets and processes by socket inode ([`join`]), and the snapshot.
//!
//! What is read is the [`ReadPlan`]'s to say; what a refresh keeps and puts back is
//! [`carry_over`](super::carry_over)'s; the notes are worded in [`notes`]. A pass owns the
//! order of the reads and the threads they run on.

use std::time::{Duration, Instant};

use super::carry_over::{FullDumpOnly, KeptReads, Prior, Tracked, carry_over};
use super::join::{self, Joined, SocketIndex};
use super::netlink::NetlinkError;
use super::netns::{self, Catalog, EnterError, NetnsScope, NsId, Target};
use super::owners::{Lookout, OwnerSearch};
use super::procnet::{self, NetTables};
use super::procs::{self, ProcessScan};
use super::read_plan::{NsRead, ReadPlan};
use super::sockets::{self, InodeMap, PortUseSampled, Sockets};
use super::{CollectError, CollectOptions, clock, notes};
use crate::model::{Freshness, Host, NetnsSnapshot, PortUse, Process, Snapshot};

/// A pass's snapshot, and what an incremental collector keeps of it.
pub(super) struct Pass {
    pub(super) plan: ReadPlan,
    pub(super) snapshot: Snapshot,
    pub(super) scan: ProcessScan,
    pub(super) kept: KeptReads,
}

/// One namespace's dump, read from a thread inside it.
pub(super) struct NsDump {
    /// What was read, settled.
    pub(super) read: NsRead,
    pub(super) sockets: Sockets,
    pub(super) tables: NetTables,
    /// CPU time the dump took on its thread.
    pub(super) cpu: Duration,
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
        let usable = tables.sysctl.usable_ports();
        let bound_inactive = tables.bound_inactive_possible();
        sockets::dump(read, hint, bound_inactive, &tables.local_addrs, usable)
            .map(|sockets| (read, sockets, tables))
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
pub(super) fn run(
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
    let catalog = Catalog::new(
        &opts.netns_dir,
        &opts.proc_root,
        &opts.runtimes,
        inspected.seen(),
    );
    let mut notes = catalog.notes.clone();
    let (own, foreign) = targets(opts, &catalog, &mut notes)?;
    let ScanAndDumps {
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
    notes.extend(notes::lost(&lost));

    let (kept, tracked_age_ms) = carry_over(&mut dumps, prior, monotonic_ns);

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
    let processes = join_processes(search, joined, &mut scan, &mut sockets);
    let (mut port_use, untracked): (Vec<Option<PortUseSampled>>, Vec<u64>) = sockets
        .iter_mut()
        .map(|s| match s.take_port_use() {
            Some((top, untracked)) => (Some(top), untracked),
            None => (None, 0),
        })
        .unzip();
    name_port_users(&mut port_use, &scan);

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
    notes.extend(notes::grouped(per_ns_notes));
    notes.extend(notes::scan(&scan));

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

/// Join the pass's processes with its dumps, naming the owners in the dumps' lists. An
/// incremental refresh (`search`, with the collector's join) brings the kept join up to date
/// and looks for the owners of what it left unowned; any other pass joins afresh.
fn join_processes(
    search: Option<OwnerSearch<'_>>,
    joined: Option<(&mut Joined, &mut Lookout)>,
    scan: &mut ProcessScan,
    sockets: &mut [&mut Sockets],
) -> Vec<Process> {
    let (Some(search), Some((joined, lookout))) = (search, joined) else {
        let index = SocketIndex::new(sockets);
        return join::attribute(&mut scan.processes, &index, sockets);
    };
    let base = search.prior.base;
    joined.update(&mut scan.processes, search.prior.procs, base);
    let processes = joined.attribute(&scan.processes, sockets, base);
    if search.run(lookout, scan, joined, sockets) {
        joined.attribute(&scan.processes, sockets, base)
    } else {
        processes
    }
}

/// A namespace, and its dump.
pub(super) type Dumped = (Target, NsDump);

/// The process scan, and every namespace's dump or why it is missing: what walking the
/// descriptors and dumping the namespaces at once brings back.
struct ScanAndDumps {
    scan: ProcessScan,
    dumps: Vec<Dumped>,
    lost: Vec<(Target, Lost)>,
}

/// Walk the descriptors, dump the caller's namespace here and the others
/// from threads inside them, all at once. An error dumping the caller's namespace is the
/// pass's; another namespace that could not be read is returned as lost.
fn dump_and_walk(
    inspected: procs::Inspected<'_>,
    own: Option<Target>,
    foreign: Vec<Target>,
    dump: impl Fn(&Target) -> Result<NsDump, NetlinkError> + Sync,
    threads: usize,
) -> Result<ScanAndDumps, CollectError> {
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
    Ok(ScanAndDumps { scan, dumps, lost })
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
            notes.push(notes::denied(&[target.label.as_str()]));
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
        notes.push(notes::denied(&others));
        targets = vec![catalog.own_target()];
    }
    let own = targets
        .iter()
        .position(|t| t.own)
        .map(|at| targets.remove(at));
    Ok((own, targets))
}

/// Why a namespace is missing from a snapshot.
pub(super) enum Lost {
    Enter(EnterError),
    Netlink(NetlinkError),
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
    let mut notes = tables.notes;
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
        udp: tables.udp,
        udp_sockets: sockets.udp,
        udp_socket_count: sockets.udp_count,
        udp_left_out: sockets.udp_left_out,
        port_use: port_use.unwrap_or_default(),
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
