//! The kernel side of `sockscope kill`: select a process's TCP sockets by their exact
//! identity, and destroy them with `SOCK_DESTROY`.
//!
//! It must not decide which sockets deserve it (the [`KillFilter`] says) nor print anything.
//!
//! The snapshot keeps no socket cookies, so selection is a pass of its own: the /proc walk
//! (the process's socket inodes, and every other holder of them), then one sock_diag dump of
//! the selected states in each namespace looked in, joined to those inodes. By default that
//! is the process's own network namespace, where its sockets live unless it moved or was
//! handed them; `--netns` names another, `--all-netns` looks everywhere. A namespace other
//! than the caller's is read and written from a short-lived thread inside it
//! ([`netns::in_each`]): `SOCK_DESTROY`, like the dump, reaches only the namespace of the
//! netlink socket.

use std::collections::{HashMap, HashSet};

use super::CollectOptions;
use super::netlink::{DestroyOutcome, DiagSocket, Extensions, InetSock, NetlinkError, StateMask};
use super::netns::{self, Catalog, EnterError, NetnsScope, ResolveError, Target};
use super::procs;
use crate::model::kill::{Holder, KillFilter, Outcome, Selected, SelectedNetns, Selection};
use crate::model::{FdScan, TcpState};

#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("no process with pid {0}; `sockscope report` lists the processes that hold sockets")]
    NoProcess(u32),
    #[error(
        "cannot read the descriptors of {comm} (pid {pid}): {why}; run as root to see which \
         sockets it holds"
    )]
    Unreadable {
        pid: u32,
        comm: String,
        why: &'static str,
    },
    #[error(transparent)]
    Netns(#[from] ResolveError),
    #[error("network namespace {label}: {reason}")]
    NetnsLost { label: String, reason: EnterError },
    #[error(
        "the sockets of network namespace {0} can be read only from inside it, which needs \
         CAP_SYS_ADMIN; run as root"
    )]
    CannotEnter(String),
    #[error("sock_diag: {0}")]
    Netlink(#[from] NetlinkError),
    #[error(
        "destroying a socket needs CAP_NET_ADMIN in its network namespace ({0}); run as root \
         (or with that capability); nothing was destroyed"
    )]
    Denied(String),
    #[error(
        "destroying a socket needs CAP_NET_ADMIN in its network namespace, and this process \
         does not have it; run as root (or with that capability); nothing was destroyed"
    )]
    NoCapability,
    #[error(
        "this kernel was built without CONFIG_INET_DIAG_DESTROY: it cannot destroy sockets \
         from outside their process (nor can `ss -K`); nothing was destroyed"
    )]
    Unsupported,
}

/// Whether the caller has `CAP_NET_ADMIN` in its effective set, without which the kernel
/// refuses every `SOCK_DESTROY` (of the namespaces of its own user namespace).
pub fn may_destroy() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|caps| {
        caps.effective
            .contains(rustix::thread::CapabilitySet::NET_ADMIN)
    })
}

/// A selection, and how to reach each of its namespaces again to destroy what it holds.
#[derive(Debug)]
pub struct KillPlan {
    pub selection: Selection,
    /// Lines up with `selection.namespaces`.
    targets: Vec<Target>,
}

/// Select the sockets `filter` names, in the namespaces `opts.netns` says (the process's own
/// by default).
pub fn select(opts: &CollectOptions, filter: &KillFilter) -> Result<KillPlan, KillError> {
    let inspected = procs::inspect(&opts.proc_root, opts.threads, None);
    let catalog = Catalog::new(
        &opts.netns_dir,
        &opts.proc_root,
        &opts.runtimes,
        inspected.seen(),
    );
    let scan = inspected.walk();
    let process = scan
        .process(filter.pid)
        .ok_or(KillError::NoProcess(filter.pid))?;
    let unreadable = |why| KillError::Unreadable {
        pid: process.pid,
        comm: process.comm.clone(),
        why,
    };
    match process.fd_scan {
        FdScan::Complete => {}
        FdScan::Denied => return Err(unreadable("permission denied")),
        FdScan::Vanished => return Err(KillError::NoProcess(filter.pid)),
    }
    let inodes: HashSet<u64> = process.socket_inodes.iter().copied().collect();
    let mut others: HashMap<u64, Vec<Holder>> = HashMap::new();
    for p in &scan.processes {
        if p.pid == process.pid {
            continue;
        }
        let mut mine: Vec<u64> = p
            .socket_inodes
            .iter()
            .copied()
            .filter(|i| inodes.contains(i))
            .collect();
        mine.dedup();
        for inode in mine {
            others.entry(inode).or_default().push(Holder {
                pid: p.pid,
                comm: p.comm.clone(),
            });
        }
    }

    let targets = match &opts.netns {
        NetnsScope::Own => match process.netns {
            Some(_) => {
                let path = opts.proc_root.join(process.pid.to_string()).join("ns/net");
                vec![catalog.resolve(&path.to_string_lossy())?]
            }
            None => vec![catalog.own_target()],
        },
        NetnsScope::One(spec) => vec![catalog.resolve(spec)?],
        NetnsScope::All => catalog.all(),
    };
    let states = StateMask::only(&filter.states);
    let ext = Extensions {
        tcp_info: filter.states.contains(&TcpState::CloseWait),
        ..Extensions::default()
    };
    let dump = |_: &Target| -> Result<Vec<InetSock>, NetlinkError> {
        let mut diag = DiagSocket::new()?;
        let mut found = Vec::new();
        diag.dump_tcp(states, ext, |s| {
            if s.inode != 0 && inodes.contains(&s.inode) && filter.selects(s.state, s.local, s.peer)
            {
                found.push(s);
            }
        })?;
        Ok(found)
    };
    let dumped = in_namespaces(&targets, opts.threads, dump)?;
    let mut namespaces = Vec::new();
    let mut kept = Vec::new();
    for (target, found) in targets.into_iter().zip(dumped) {
        let mut sockets: Vec<Selected> = found.iter().map(|s| selected(s, &others)).collect();
        sockets.sort_by_key(|s| (s.local, s.peer));
        if sockets.is_empty() && matches!(opts.netns, NetnsScope::All) {
            continue;
        }
        namespaces.push(SelectedNetns {
            id: target.id.model_id(),
            label: target.label.clone(),
            sockets,
        });
        kept.push(target);
    }
    Ok(KillPlan {
        selection: Selection {
            pid: process.pid,
            comm: process.comm.clone(),
            namespaces,
        },
        targets: kept,
    })
}

fn selected(s: &InetSock, others: &HashMap<u64, Vec<Holder>>) -> Selected {
    let age_s = match (s.state, &s.tcp_info) {
        (TcpState::CloseWait, Some(info)) => info.last_ack_recv.map(|ms| f64::from(ms) / 1000.0),
        _ => None,
    };
    Selected {
        family: s.family,
        state: s.state,
        local: s.local,
        peer: s.peer,
        recv_q: s.recv_q,
        send_q: s.send_q,
        inode: s.inode,
        cookie: s.cookie,
        ifindex: s.ifindex,
        age_s,
        also_held_by: others.get(&s.inode).cloned().unwrap_or_default(),
    }
}

impl KillPlan {
    /// Destroy every selected socket, in order; `outcomes` line up with
    /// [`Selection::sockets`].
    ///
    /// # Errors
    ///
    /// [`KillError::Denied`] or [`KillError::Unsupported`] when the kernel refuses the first
    /// socket for that reason (then nothing was destroyed); a namespace that cannot be
    /// entered again, or a netlink socket that fails.
    pub fn destroy(&self) -> Result<Vec<Outcome>, KillError> {
        let mut outcomes = Vec::with_capacity(self.selection.len());
        for (ns, target) in self.selection.namespaces.iter().zip(&self.targets) {
            if ns.sockets.is_empty() {
                continue;
            }
            let work = |_: &Target| -> Result<Vec<DestroyOutcome>, NetlinkError> {
                let mut diag = DiagSocket::new()?;
                let mut done = Vec::with_capacity(ns.sockets.len());
                for s in &ns.sockets {
                    let outcome = diag.destroy(&as_inet(s))?;
                    done.push(outcome);
                    // The same refusal awaits every other socket of this namespace.
                    if matches!(
                        outcome,
                        DestroyOutcome::Denied | DestroyOutcome::Unsupported
                    ) {
                        break;
                    }
                }
                Ok(done)
            };
            let mut done = in_namespaces(std::slice::from_ref(target), 1, work)?;
            let done = done.pop().unwrap_or_default();
            let nothing_yet = outcomes.iter().all(|o| *o != Outcome::Destroyed)
                && !done.contains(&DestroyOutcome::Destroyed);
            for (i, _) in ns.sockets.iter().enumerate() {
                let outcome = match done.get(i) {
                    Some(DestroyOutcome::Destroyed) => Outcome::Destroyed,
                    Some(DestroyOutcome::Gone) => Outcome::Gone,
                    Some(DestroyOutcome::Denied) if nothing_yet => {
                        return Err(KillError::Denied(target.label.clone()));
                    }
                    Some(DestroyOutcome::Unsupported) if nothing_yet => {
                        return Err(KillError::Unsupported);
                    }
                    Some(DestroyOutcome::Denied) => {
                        Outcome::Failed(KillError::Denied(target.label.clone()).to_string())
                    }
                    Some(DestroyOutcome::Unsupported) => {
                        Outcome::Failed(KillError::Unsupported.to_string())
                    }
                    Some(DestroyOutcome::Failed(errno)) => {
                        Outcome::Failed(format!("the kernel refused: {errno}"))
                    }
                    None => Outcome::Failed(
                        "not attempted: the kernel refused an earlier socket of this namespace"
                            .to_owned(),
                    ),
                };
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }
}

/// The dump's view of a selected socket, enough for [`DiagSocket::destroy`].
fn as_inet(s: &Selected) -> InetSock {
    InetSock {
        family: s.family,
        state: s.state,
        local: s.local,
        peer: s.peer,
        recv_q: s.recv_q,
        send_q: s.send_q,
        inode: s.inode,
        uid: 0,
        drops: None,
        rmem: None,
        tcp_info: None,
        timer: None,
        ifindex: s.ifindex,
        cookie: s.cookie,
    }
}

/// Run `work` in each of `targets`' namespaces: the caller's own on this thread, the others
/// from threads that enter them. Results line up with `targets`.
fn in_namespaces<R: Send>(
    targets: &[Target],
    threads: usize,
    work: impl Fn(&Target) -> Result<R, NetlinkError> + Sync,
) -> Result<Vec<R>, KillError> {
    let foreign: Vec<Target> = targets.iter().filter(|t| !t.own).cloned().collect();
    if !foreign.is_empty() && !netns::may_enter_others() {
        return Err(KillError::CannotEnter(foreign[0].label.clone()));
    }
    let entered = if foreign.is_empty() {
        Vec::new()
    } else {
        netns::in_each(&foreign, threads.max(1), &work)
    };
    let mut entered = entered.into_iter();
    let mut results = Vec::with_capacity(targets.len());
    for target in targets {
        let result = if target.own {
            work(target)?
        } else {
            match entered.next() {
                Some(Ok(result)) => result?,
                Some(Err(reason)) => {
                    return Err(KillError::NetnsLost {
                        label: target.label.clone(),
                        reason,
                    });
                }
                None => {
                    return Err(KillError::NetnsLost {
                        label: target.label.clone(),
                        reason: EnterError::Gone,
                    });
                }
            }
        };
        results.push(result);
    }
    Ok(results)
}
