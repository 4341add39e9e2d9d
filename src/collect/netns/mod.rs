//! Network namespaces: which exist, what a person calls each one, and entering one from a
//! thread of our own.
//!
//! Owns the reads of `/run/netns`, `/proc/PID/cgroup` and the `setns` calls. It must not dump
//! sockets or read tables itself: the caller passes the work to run inside each namespace.
//!
//! **Finding them.** A namespace is named by an `ip netns` bind mount under `/run/netns`, or
//! lives because a process is in it (`/proc/PID/ns/net`). Both are nsfs files; the same
//! namespace reached both ways is one, told apart by the (device, inode) of that file
//! ([`NsId`]). A namespace that only an open descriptor or another bind mount keeps alive is
//! not found.
//!
//! **Naming them** ([`Catalog::describe`]), in order: `host` for the initial namespace; its
//! `ip netns` name; the container of its processes, found by their cgroup path
//! ([`cgroup::container_of`]) and named by its runtime's files ([`runtime`]: `pod
//! default/web-7f9d (nginx)`, `docker web-1`, else `docker 4f797c539e6c`); `pid N (comm)` of
//! its oldest process; `netns INODE` when nothing else is known.
//!
//! The initial namespace is the one kernel threads are in: they never leave it, and kthreadd
//! (pid 2) is visible wherever the host's pids are. Pid 1's namespace is not a safe guess on
//! its own: in a pid namespace of its own, pid 1 is a container's init, and a hardened /proc
//! may refuse to show pid 1's namespace even to root. Only when no kernel thread is visible
//! (a pid namespace of our own) is pid 1's namespace taken as the host's, as the best that
//! can be seen from there.
//!
//! **Entering them** ([`in_each`]): each namespace is dumped from one of a few threads of
//! our own, which enter one namespace after another and end when all are done. The thread
//! opens one of the namespace's files, checks it is still the namespace that was found (a
//! pid can be reused, a name re-bound), and calls `setns(CLONE_NEWNET)`. The calling thread
//! never moves. Sockets made afterwards on that thread, `/proc/thread-self/net` and
//! `/proc/sys/net` opened afterwards on it, all belong to the entered namespace (for the
//! sysctls: the namespace of the thread that *opens* the file). Once the file is open the
//! namespace cannot go away under the dump; before that, it can, and is then reported as
//! gone.

pub mod cgroup;
pub mod runtime;

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

pub use super::vocab::{NsId, SeenProcess};
use crate::model::ContainerInfo;
use runtime::{RuntimeRoots, Runtimes};

/// Which network namespaces to collect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetnsScope {
    /// The caller's own.
    #[default]
    Own,
    /// Every namespace that can be found, the caller's first.
    All,
    /// One namespace, as the user named it: an `ip netns` name, a path to a namespace file,
    /// or a pid.
    One(String),
}

/// What is known of the namespaces of this host: names, members, which is the host's.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The caller's namespace, when `/proc/thread-self/ns/net` could be read.
    pub own: Option<NsId>,
    /// The initial namespace, when it could be told (see the module docs).
    pub host: Option<NsId>,
    /// `ip netns` names, sorted.
    names: BTreeMap<NsId, Vec<String>>,
    /// Processes (not kernel threads) in each namespace, oldest first.
    members: HashMap<NsId, Vec<Member>>,
    netns_dir: PathBuf,
    proc_root: PathBuf,
    runtimes: Runtimes,
    /// What could not be read while finding namespaces.
    pub problems: Vec<CatalogProblem>,
}

/// What could not be read while finding namespaces.
#[derive(Debug, Clone)]
pub enum CatalogProblem {
    /// The directory of `ip netns` names could not be listed: namespaces go unnamed.
    NamesUnlisted {
        dir: PathBuf,
        err: std::sync::Arc<std::io::Error>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    start_time: u64,
    pid: u32,
    comm: String,
}

/// A namespace to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: NsId,
    pub label: String,
    /// The container whose processes hold it, as its runtime names it.
    pub container: Option<ContainerInfo>,
    /// The caller's own namespace: collected without `setns`.
    pub own: bool,
    /// Files that name the namespace, best first: its `ip netns` names, then the
    /// `ns/net` of its oldest processes.
    pub paths: Vec<PathBuf>,
}

/// How many of a namespace's processes are tried, oldest first, to enter it or to name it.
const CANDIDATES: usize = 4;

/// Why a namespace could not be entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnterError {
    /// Every file that named it is gone, or names another namespace now.
    #[error("it disappeared before it could be entered")]
    Gone,
    /// `setns` or the open was refused: no `CAP_SYS_ADMIN` over it.
    #[error("entering it was refused ({0})")]
    Denied(Errno),
    #[error("{path}: {err}")]
    Failed { path: String, err: Errno },
    #[error("no thread could be started to enter it: {0}")]
    NoThread(String),
}

impl Catalog {
    /// What `/run/netns` (`netns_dir`) and the processes of pass 1 say about namespaces;
    /// containers are named from the runtimes' files under `runtimes`.
    pub fn new<'a>(
        netns_dir: &Path,
        proc_root: &Path,
        runtimes: &RuntimeRoots,
        processes: impl Iterator<Item = SeenProcess<'a>>,
    ) -> Catalog {
        let mut catalog = Catalog {
            own: NsId::of_path(&proc_root.join("thread-self/ns/net")).ok(),
            netns_dir: netns_dir.to_owned(),
            proc_root: proc_root.to_owned(),
            runtimes: Runtimes {
                roots: runtimes.clone(),
            },
            ..Catalog::default()
        };
        let mut pid1 = None;
        let mut kernel = None;
        for p in processes {
            let Some(ns) = p.netns else { continue };
            if p.kernel_thread {
                kernel.get_or_insert(ns);
                continue;
            }
            if p.pid == 1 {
                pid1 = Some(ns);
            }
            catalog.members.entry(ns).or_default().push(Member {
                start_time: p.start_time.unwrap_or(u64::MAX),
                pid: p.pid,
                comm: p.comm.to_owned(),
            });
        }
        for members in catalog.members.values_mut() {
            members.sort_by_key(|m| (m.start_time, m.pid));
        }
        catalog.host = kernel.or(pid1);
        catalog.read_names();
        catalog
    }

    fn read_names(&mut self) {
        let entries = match std::fs::read_dir(&self.netns_dir) {
            Ok(entries) => entries,
            // No `ip netns add` since boot: no names, nothing wrong.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                self.problems.push(CatalogProblem::NamesUnlisted {
                    dir: self.netns_dir.clone(),
                    err: std::sync::Arc::new(err),
                });
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // A name whose mount is gone, or a stray file: not a namespace.
            if let Ok(id) = NsId::of_path(&entry.path())
                && is_nsfs(&entry.path())
            {
                let name = name.to_string_lossy().into_owned();
                self.names.entry(id).or_default().push(name);
            }
        }
        for names in self.names.values_mut() {
            names.sort();
        }
    }

    /// Every namespace found, as targets: the caller's first, then the host's, then by
    /// label.
    pub fn all(&self) -> Vec<Target> {
        let mut ids: Vec<NsId> = self
            .names
            .keys()
            .chain(self.members.keys())
            .copied()
            .collect();
        ids.extend(self.own);
        ids.sort_unstable();
        ids.dedup();
        let mut targets: Vec<Target> = ids.into_iter().map(|id| self.target(id)).collect();
        targets.sort_by(|a, b| {
            (!a.own, Some(a.id) != self.host, &a.label, a.id).cmp(&(
                !b.own,
                Some(b.id) != self.host,
                &b.label,
                b.id,
            ))
        });
        targets
    }

    /// The caller's own namespace as a target.
    pub fn own_target(&self) -> Target {
        match self.own {
            Some(id) => self.target(id),
            // Without even our own namespace file, it is still the namespace we dump.
            None => Target {
                id: NsId { dev: 0, ino: 0 },
                label: "own".to_owned(),
                container: None,
                own: true,
                paths: Vec::new(),
            },
        }
    }

    /// The namespace `spec` names: a path (it holds a `/`), an `ip netns` name, or a pid.
    pub fn resolve(&self, spec: &str) -> Result<Target, ResolveError> {
        let bad = |reason: String| ResolveError {
            spec: spec.to_owned(),
            reason,
        };
        let path = if spec.contains('/') {
            PathBuf::from(spec)
        } else if !spec.is_empty() && self.netns_dir.join(spec).exists() {
            self.netns_dir.join(spec)
        } else if spec.bytes().all(|b| b.is_ascii_digit()) && !spec.is_empty() {
            self.proc_root.join(spec).join("ns/net")
        } else {
            let dir = self.netns_dir.display();
            return Err(bad(format!(
                "not a name under {dir}, a path (with a /) or a pid; `ip netns list` shows \
                 the names"
            )));
        };
        let id = NsId::of_path(&path)
            .map_err(|err| bad(format!("{}: {}", path.display(), std::io::Error::from(err))))?;
        if !is_nsfs(&path) {
            return Err(bad(format!(
                "{} is not a namespace file (such as /run/netns/NAME or /proc/PID/ns/net)",
                path.display()
            )));
        }
        let mut target = self.target(id);
        if !target.paths.contains(&path) {
            target.paths.insert(0, path);
        }
        Ok(target)
    }

    fn target(&self, id: NsId) -> Target {
        let mut paths: Vec<PathBuf> = self
            .names
            .get(&id)
            .into_iter()
            .flatten()
            .map(|name| self.netns_dir.join(name))
            .collect();
        paths.extend(
            self.members
                .get(&id)
                .into_iter()
                .flatten()
                .take(CANDIDATES)
                .map(|m| self.proc_root.join(m.pid.to_string()).join("ns/net")),
        );
        let (label, container) = self.describe(id);
        Target {
            id,
            label,
            container,
            own: Some(id) == self.own,
            paths,
        }
    }

    /// What a person calls namespace `id`.
    pub fn label(&self, id: NsId) -> String {
        self.describe(id).0
    }

    /// What a person calls namespace `id` (see the module docs for the order), and the
    /// container its processes run in when a runtime names one.
    pub fn describe(&self, id: NsId) -> (String, Option<ContainerInfo>) {
        let members = self.members.get(&id).map_or(&[][..], Vec::as_slice);
        let mut found = None;
        let container = || {
            let mut containers: Vec<cgroup::Container> = Vec::new();
            for m in members.iter().take(CANDIDATES) {
                let path = self.proc_root.join(m.pid.to_string()).join("cgroup");
                let Ok(text) = std::fs::read_to_string(path) else {
                    continue;
                };
                if let Some(c) = cgroup::container_of(&text)
                    && !containers.iter().any(|known| known.id == c.id)
                {
                    containers.push(c);
                }
            }
            found = self.runtimes.describe(&containers);
            found.clone()
        };
        let label = choose_label(
            Some(id) == self.host,
            self.names.get(&id).and_then(|names| names.first()),
            container,
            members.first().map(|m| (m.pid, m.comm.as_str())),
            id,
        );
        (label, found)
    }
}

/// The label rule, apart from the reads it needs.
fn choose_label(
    is_host: bool,
    name: Option<&String>,
    container: impl FnOnce() -> Option<ContainerInfo>,
    oldest: Option<(u32, &str)>,
    id: NsId,
) -> String {
    if is_host {
        return "host".to_owned();
    }
    if let Some(name) = name {
        return name.clone();
    }
    if let Some(container) = container() {
        return runtime::label(&container);
    }
    match oldest {
        Some((pid, comm)) => format!("pid {pid} ({comm})"),
        None => format!("netns {}", id.ino),
    }
}

/// A `--netns` value that names no namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--netns {spec:?}: {reason}")]
pub struct ResolveError {
    pub spec: String,
    pub reason: String,
}

/// `NSFS_MAGIC`, the filesystem type of namespace files (`include/uapi/linux/magic.h`).
const NSFS_MAGIC: u64 = 0x6e73_6673;

fn is_nsfs(path: &Path) -> bool {
    // f_type is signed on some architectures, and the magic number is positive.
    rustix::fs::statfs(path).is_ok_and(|fs| u64::try_from(fs.f_type) == Ok(NSFS_MAGIC))
}

/// Whether the calling thread may enter other network namespaces (`CAP_SYS_ADMIN` in its
/// effective set). Having it is not a promise: a namespace owned by another user namespace
/// may still refuse.
pub fn may_enter_others() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|caps| {
        caps.effective
            .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
    })
}

/// Enter `target`'s namespace from the calling thread: open one of its files, check that it
/// still names `target.id`, `setns`.
///
/// Must only be called on a thread of our own that is thrown away afterwards (see
/// [`in_each`]).
fn enter(target: &Target) -> Result<(), EnterError> {
    let mut last = EnterError::Gone;
    for path in &target.paths {
        let fd: OwnedFd = match rustix::fs::open(
            path.as_path(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // The process exited or the name was deleted: try the next file.
            Err(Errno::NOENT | Errno::SRCH) => continue,
            Err(err @ (Errno::ACCESS | Errno::PERM)) => {
                last = EnterError::Denied(err);
                continue;
            }
            Err(err) => {
                last = failed(path, err);
                continue;
            }
        };
        // A reused pid or a re-bound name: not the namespace that was found.
        match rustix::fs::fstat(&fd) {
            Ok(st) if NsId::of(&st) == target.id => {}
            Ok(_) => continue,
            Err(err) => {
                last = failed(path, err);
                continue;
            }
        }
        return rustix::thread::move_into_link_name_space(
            rustix::fd::AsFd::as_fd(&fd),
            Some(LinkNameSpaceType::Network),
        )
        .map_err(|err| match err {
            Errno::PERM | Errno::ACCESS => EnterError::Denied(err),
            err => failed(path, err),
        });
    }
    Err(last)
}

fn failed(path: &Path, err: Errno) -> EnterError {
    EnterError::Failed {
        path: path.display().to_string(),
        err,
    }
}

/// Run `work` once inside each of `targets`' namespaces, on up to `threads` threads of our
/// own that enter them with `setns` and end when all are done. Results line up with
/// `targets`. The calling thread never changes namespace.
pub fn in_each<R: Send>(
    targets: &[Target],
    threads: usize,
    work: impl Fn(&Target) -> R + Sync,
) -> Vec<Result<R, EnterError>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, EnterError>>>> = Mutex::new(
        std::iter::repeat_with(|| None)
            .take(targets.len())
            .collect(),
    );
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(target) = targets.get(i) else { break };
            let result = enter(target).map(|()| work(target));
            if let Ok(mut slots) = results.lock() {
                slots[i] = Some(result);
            }
        }
    };
    let spawn_error = std::thread::scope(|scope| {
        let mut spawn_error = None;
        let mut helpers = Vec::new();
        for n in 0..threads.clamp(1, targets.len().max(1)) {
            match std::thread::Builder::new()
                .name(format!("netns-{n}"))
                .spawn_scoped(scope, worker)
            {
                Ok(helper) => helpers.push(helper),
                Err(err) => {
                    spawn_error = Some(err.to_string());
                    break;
                }
            }
        }
        for helper in helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
        spawn_error
    });
    let slots = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(EnterError::NoThread(
                    spawn_error.clone().unwrap_or_else(|| "unknown".to_owned()),
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
