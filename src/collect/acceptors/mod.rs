//! Who drains a listener: for each listener with something to explain, the processes that
//! hold it, the descriptors they hold it by, the epoll sets that watch it, and what each of
//! their threads is doing (`/proc/PID/{fd,fdinfo}`, `/proc/PID/task/TID/{stat,syscall,
//! wchan}`).
//!
//! A reader below the engine: it takes the namespace's part of the snapshot, returns
//! [`ListenerHolders`], keeps nothing between refreshes and decides nothing. A listener is
//! read when its facts ask for an explanation — a connection waiting in its accept queue, a
//! request socket or an unaccepted child on its port — so a host whose queues are empty
//! reads nothing here. The parsers are pure, in [`parse`].

pub mod parse;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use crate::model::{
    Family, Holder, ListenerHolders, NetnsSnapshot, THREAD_LIMIT, Task, Unreadable,
};
use parse::{SyscallTable, is_epoll_link, parse_epoll_targets, parse_syscall, parse_task_stat};

/// At most this many descriptors of one holder are looked at: past it (a proxy with 100,000
/// connections) the listener's descriptors may go unfound, and the holder reads as one that
/// only holds it.
const FD_LIMIT: usize = 20_000;

/// `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`, 100 on every architecture
/// Linux supports but Alpha.
const USER_HZ: u64 = 100;

/// A listener to read the holders of: its inode and its owners' pids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub inode: u64,
    pub owners: Vec<u32>,
}

/// The listeners of `ns` whose facts ask for an explanation: a TCP or unix listener with a
/// connection waiting in its accept queue, and a TCP listener with a request socket or an
/// unaccepted child on its port. Only those with a known owner.
pub fn candidates(ns: &NetnsSnapshot) -> Vec<Wanted> {
    let waiting: std::collections::HashSet<(Family, u16)> = ns
        .tracked
        .iter()
        .filter(|s| s.inode == 0)
        .map(|s| (s.family, s.local.port()))
        .collect();
    let tcp = ns
        .tcp_listeners
        .iter()
        .filter(|l| l.recv_q > 0 || waiting.contains(&(l.family, l.local.port())))
        .map(|l| (l.inode, &l.owners));
    let unix = ns
        .unix_listeners
        .iter()
        .filter(|l| l.recv_q > 0)
        .map(|l| (l.inode, &l.owners));
    tcp.chain(unix)
        .filter(|(inode, owners)| *inode != 0 && !owners.is_empty())
        .map(|(inode, owners)| Wanted {
            inode,
            owners: owners.clone(),
        })
        .collect()
}

/// The holders of each listener of `wanted`, read under `proc_root`; each process is read
/// once, whatever number of the listeners it holds.
pub fn read(proc_root: &Path, wanted: &[Wanted]) -> Vec<ListenerHolders> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let table = parse::native();
    let mut by_pid: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for w in wanted {
        for &pid in &w.owners {
            by_pid.entry(pid).or_default().push(w.inode);
        }
    }
    let read: BTreeMap<u32, ProcessRead> = by_pid
        .into_iter()
        .map(|(pid, inodes)| (pid, read_process(proc_root, pid, &inodes, &table)))
        .collect();
    wanted
        .iter()
        .map(|w| ListenerHolders {
            inode: w.inode,
            holders: w
                .owners
                .iter()
                .filter_map(|pid| read.get(pid).map(|r| r.holder(*pid, w.inode)))
                .collect(),
        })
        .collect()
}

/// What was read of one process.
#[derive(Debug, Default)]
struct ProcessRead {
    /// Its descriptors on each listener looked for.
    fds: BTreeMap<u64, Vec<u32>>,
    /// Its epoll descriptors watching each listener looked for.
    epoll_fds: BTreeMap<u64, Vec<u32>>,
    threads: Vec<Task>,
    threads_left_out: u32,
    unreadable: Option<Unreadable>,
}

impl ProcessRead {
    fn holder(&self, pid: u32, inode: u64) -> Holder {
        Holder {
            pid,
            fds: self.fds.get(&inode).cloned().unwrap_or_default(),
            epoll_fds: self.epoll_fds.get(&inode).cloned().unwrap_or_default(),
            threads: self.threads.clone(),
            threads_left_out: self.threads_left_out,
            unreadable: self.unreadable,
        }
    }

    /// Record why something could not be read; the first reason stands.
    fn failed(&mut self, err: &std::io::Error) {
        let why = match err.kind() {
            ErrorKind::PermissionDenied => Unreadable::Denied,
            _ => Unreadable::Vanished,
        };
        self.unreadable.get_or_insert(why);
    }
}

fn read_process(root: &Path, pid: u32, inodes: &[u64], table: &SyscallTable) -> ProcessRead {
    let dir = root.join(pid.to_string());
    let mut out = ProcessRead::default();
    let epolls = match descriptors(&dir, inodes, &mut out.fds) {
        Ok(epolls) => epolls,
        Err(err) => {
            out.failed(&err);
            Vec::new()
        }
    };
    for epfd in epolls {
        match std::fs::read_to_string(dir.join("fdinfo").join(epfd.to_string())) {
            Ok(text) => {
                for ino in parse_epoll_targets(&text) {
                    if inodes.contains(&ino) {
                        out.epoll_fds.entry(ino).or_default().push(epfd);
                    }
                }
            }
            // Closed since the listing: it watches nothing now.
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => out.failed(&err),
        }
    }
    match threads(&dir, table) {
        Ok((threads, left_out, problem)) => {
            out.threads = threads;
            out.threads_left_out = left_out;
            if let Some(err) = problem {
                out.failed(&err);
            }
        }
        Err(err) => out.failed(&err),
    }
    out
}

/// List a process's descriptors: those on the listeners of `inodes` go into `fds`; its epoll
/// descriptors are returned.
fn descriptors(
    dir: &Path,
    inodes: &[u64],
    fds: &mut BTreeMap<u64, Vec<u32>>,
) -> std::io::Result<Vec<u32>> {
    let fd_dir = dir.join("fd");
    let mut epolls = Vec::new();
    for entry in std::fs::read_dir(&fd_dir)?.take(FD_LIMIT) {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A descriptor closed since the listing has no link left: nothing to record.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.as_os_str().as_encoded_bytes();
        if is_epoll_link(target) {
            epolls.push(fd);
        } else if let Some(inode) = super::procs::parse_socket_link(target)
            && inodes.contains(&inode)
        {
            fds.entry(inode).or_default().push(fd);
        }
    }
    for list in fds.values_mut() {
        list.sort_unstable();
    }
    epolls.sort_unstable();
    Ok(epolls)
}

/// Threads read, threads past the limit, and the first error reading one of them (a thread
/// that exited meanwhile is no error: it is left out).
type Threads = (Vec<Task>, u32, Option<std::io::Error>);

fn threads(dir: &Path, table: &SyscallTable) -> std::io::Result<Threads> {
    let task_dir = dir.join("task");
    let mut tids: Vec<u32> = std::fs::read_dir(&task_dir)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    let left_out = u32::try_from(tids.len().saturating_sub(THREAD_LIMIT)).unwrap_or(u32::MAX);
    tids.truncate(THREAD_LIMIT);
    let mut problem = None;
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        let at = task_dir.join(tid.to_string());
        let stat = match std::fs::read(at.join("stat")) {
            Ok(text) => parse_task_stat(&text).ok(),
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => {
                problem.get_or_insert(err);
                None
            }
        };
        let Some(stat) = stat else { continue };
        // `syscall` needs ptrace access (root, or the same user without Yama's restriction).
        let syscall = match std::fs::read(at.join("syscall")) {
            Ok(text) => parse_syscall(&text, table).ok(),
            Err(err) => {
                if err.kind() != ErrorKind::NotFound {
                    problem.get_or_insert(err);
                }
                None
            }
        };
        let wchan = std::fs::read(at.join("wchan"))
            .ok()
            .and_then(|text| parse::parse_wchan(&text));
        out.push(Task {
            tid,
            comm: stat.comm,
            state: stat.state,
            cpu_ms: stat.cpu_ticks.saturating_mul(1000 / USER_HZ),
            syscall,
            wchan,
        });
    }
    Ok((out, left_out, problem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Syscall, TaskState, TcpSocket, TcpState, UnixKind, UnixSocket, UnixState};

    fn tcp(state: TcpState, local: &str, recv_q: u32, inode: u64, owners: &[u32]) -> TcpSocket {
        TcpSocket {
            family: Family::Inet,
            state,
            local: local.parse().expect("addr"),
            peer: "127.0.0.1:40000".parse().expect("addr"),
            recv_q,
            send_q: 16,
            inode,
            uid: 0,
            drops: None,
            last_ack_recv_ms: None,
            timer: None,
            owners: owners.to_vec(),
        }
    }

    #[test]
    fn only_listeners_with_something_waiting_are_candidates() {
        let ns = NetnsSnapshot {
            tcp_listeners: vec![
                tcp(TcpState::Listen, "127.0.0.1:80", 0, 1, &[10]),
                tcp(TcpState::Listen, "127.0.0.1:81", 3, 2, &[10, 11]),
                tcp(TcpState::Listen, "127.0.0.1:82", 0, 3, &[12]),
                // Queued, but nobody known holds it: nothing to read.
                tcp(TcpState::Listen, "127.0.0.1:83", 5, 4, &[]),
            ],
            tracked: vec![
                tcp(TcpState::SynRecv, "127.0.0.1:82", 0, 0, &[]),
                // An accepted connection on port 80 is no child waiting.
                tcp(TcpState::CloseWait, "127.0.0.1:80", 1, 99, &[10]),
            ],
            unix_listeners: vec![UnixSocket {
                kind: UnixKind::Stream,
                state: UnixState::Listen,
                path: Some("/run/x.sock".into()),
                inode: 5,
                peer_inode: None,
                recv_q: 1,
                send_q: 4,
                uid: Some(0),
                owners: vec![13],
            }],
            ..NetnsSnapshot::default()
        };
        let got: Vec<(u64, Vec<u32>)> = candidates(&ns)
            .into_iter()
            .map(|w| (w.inode, w.owners))
            .collect();
        assert_eq!(got, vec![(2, vec![10, 11]), (3, vec![12]), (5, vec![13])]);
    }

    #[test]
    #[cfg(target_arch = "x86_64")] // the fixture's system call numbers
    fn a_fake_proc_tree_reads_as_its_holders() {
        let root = std::env::temp_dir().join(format!("sockscope-acceptors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let p = root.join("40");
        for d in ["fd", "fdinfo", "task/40", "task/41"] {
            std::fs::create_dir_all(p.join(d)).expect("mkdir");
        }
        std::os::unix::fs::symlink("socket:[777]", p.join("fd/3")).expect("link");
        std::os::unix::fs::symlink("socket:[888]", p.join("fd/5")).expect("link");
        std::os::unix::fs::symlink("anon_inode:[eventpoll]", p.join("fd/4")).expect("link");
        std::fs::write(
            p.join("fdinfo/4"),
            "pos:\t0\ntfd:        3 events:       19 data: 3  pos:0 ino:309 sdev:9\n",
        )
        .expect("write");
        let task = |tid: &str, stat: &str, syscall: &str, wchan: &str| {
            std::fs::write(p.join("task").join(tid).join("stat"), stat).expect("write");
            std::fs::write(p.join("task").join(tid).join("syscall"), syscall).expect("write");
            std::fs::write(p.join("task").join(tid).join("wchan"), wchan).expect("write");
        };
        task(
            "40",
            "40 (srv) S 1 1 1 0 -1 0 0 0 0 0 30 20 0 0 20 0\n",
            "232 0x4 0x0 0x0 0x0 0x0 0x0 0x1 0x2\n",
            "do_epoll_wait",
        );
        task(
            "41",
            "41 (worker 1) R 1 1 1 0 -1 0 0 0 0 0 500 0 0 0 20 0\n",
            "running\n",
            "0",
        );
        let wanted = [
            Wanted {
                inode: 777,
                owners: vec![40],
            },
            Wanted {
                inode: 888,
                owners: vec![40, 41_000],
            },
        ];
        let got = read(&root, &wanted);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(got.len(), 2);
        let first = &got[0].holders[0];
        assert_eq!(
            (first.pid, &first.fds, &first.epoll_fds),
            (40, &vec![3], &vec![4])
        );
        assert_eq!(first.unreadable, None);
        assert_eq!(
            first.threads,
            vec![
                Task {
                    tid: 40,
                    comm: "srv".into(),
                    state: TaskState::Sleeping,
                    cpu_ms: 500,
                    syscall: Some(Syscall::EpollWait { epfd: 4 }),
                    wchan: Some("do_epoll_wait".into()),
                },
                Task {
                    tid: 41,
                    comm: "worker 1".into(),
                    state: TaskState::Running,
                    cpu_ms: 5000,
                    syscall: Some(Syscall::Running),
                    wchan: None,
                },
            ]
        );
        // The epoll set does not watch 888; the process that is gone is recorded so.
        let second = &got[1].holders;
        assert_eq!(
            (second[0].fds.as_slice(), second[0].epoll_fds.is_empty()),
            (&[5][..], true)
        );
        assert_eq!(second[1].pid, 41_000);
        assert_eq!(second[1].unreadable, Some(Unreadable::Vanished));
        assert!(second[1].threads.is_empty());
    }
}
