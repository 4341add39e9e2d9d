//! Who drains a listener, and what each of them is doing: from the holders `collect/` read
//! for a listener with something waiting, the threads blocked in `accept()` on one of its
//! descriptors, the processes whose epoll set watches it, and the holders that do neither;
//! each with its scheduler state, its CPU use over the window and where it sleeps.
//!
//! And the words for them: the clause a summary ends with and the sentence a remedy starts
//! with, so that every finding about a listener that is not drained says the same thing.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{Holder, ListenerHolders, NetnsSnapshot, Snapshot, Syscall, Task, TaskState};

/// A thread that busy uses at least this % of a CPU.
pub const BUSY_PCT: f64 = 50.0;

/// How a holder drains a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// A thread of it is blocked in `accept()` on one of its descriptors.
    Accept,
    /// Its epoll set watches the listener.
    Epoll,
    /// It holds a descriptor and does neither (nginx's master).
    Holds,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Accept => "accept",
            How::Epoll => "epoll",
            How::Holds => "holds",
        }
    }
}

/// A thread's scheduler state, as the evidence names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Sleeping,
    Disk,
    Stopped,
    Traced,
    Zombie,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Sleeping => "sleeping",
            State::Disk => "disk",
            State::Stopped => "stopped",
            State::Traced => "traced",
            State::Zombie => "zombie",
        }
    }
}

impl From<TaskState> for State {
    fn from(s: TaskState) -> State {
        match s {
            TaskState::Running => State::Running,
            // Parked, waking: letters of sleeps the kernel tells apart from `S`.
            TaskState::Sleeping | TaskState::Other(_) => State::Sleeping,
            TaskState::Disk => State::Disk,
            TaskState::Stopped => State::Stopped,
            TaskState::Traced => State::Traced,
            TaskState::Zombie => State::Zombie,
        }
    }
}

/// One holder of a listener, or one thread of it that drains it: the `acceptors` of a
/// finding's evidence. Read back by a face that lists evidence as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptor {
    pub pid: u32,
    /// The process's name.
    pub comm: String,
    /// The thread this entry is about; `None` when its threads could not be read.
    pub tid: Option<u32>,
    /// The thread's name.
    pub thread: Option<String>,
    pub how: How,
    pub state: Option<State>,
    /// CPU use of the thread over the window, % of one CPU; `None` with one sample.
    pub cpu_pct: Option<f64>,
    /// The kernel function it sleeps in (`wchan`), when it sleeps.
    pub waiting_in: Option<String>,
    /// Whether this thread is blocked in `accept()` or `epoll_wait()` for the listener: ready
    /// for the next connection.
    #[serde(skip, default)]
    pub waiting_for_it: bool,
    /// How many threads the process has.
    #[serde(skip, default)]
    pub threads: usize,
    /// Its descriptors could not be read (another user's process, or it exited): whether it
    /// drains the listener is not known.
    #[serde(skip, default)]
    pub unknown: bool,
}

impl Acceptor {
    /// Whether it drains the listener (by accept or epoll), rather than only holding it.
    pub fn serves(&self) -> bool {
        self.how != How::Holds
    }

    /// `nginx(4242) epoll stopped, 0 % CPU, in do_signal_stop`: one line of a face's list.
    pub fn brief(&self) -> String {
        let mut text = format!("{}({})", self.comm, self.pid);
        if let (Some(thread), Some(tid)) = (&self.thread, self.tid)
            && (self.threads > 1 || *thread != self.comm)
        {
            let _ = write!(text, " thread {thread}({tid})");
        }
        let _ = write!(text, " {}", self.how.name());
        if let Some(state) = self.state {
            let _ = write!(text, " {}", state.name());
        }
        if let Some(cpu) = self.cpu_pct {
            let _ = write!(text, ", {cpu:.0} % CPU");
        }
        if let Some(place) = &self.waiting_in {
            let _ = write!(text, ", in {place}");
        }
        text
    }

    fn busy(&self) -> bool {
        self.cpu_pct.is_some_and(|c| c >= BUSY_PCT)
    }

    /// `nginx (pid 4242)`, or `thread acceptor of java (pid 9)` when one thread of several
    /// is meant.
    pub fn name(&self) -> String {
        match (&self.thread, self.tid) {
            (Some(thread), Some(tid))
                if self.threads > 1 && (tid != self.pid || *thread != self.comm) =>
            {
                format!(
                    "thread {thread} (tid {tid}) of {} (pid {})",
                    self.comm, self.pid
                )
            }
            _ => format!("{} (pid {})", self.comm, self.pid),
        }
    }
}

/// CPU time of every thread read in `ns`, by (pid, tid): what the window's first snapshot
/// gives the CPU use to start from.
pub(super) fn cpu_before(ns: Option<&NetnsSnapshot>) -> HashMap<(u32, u32), u64> {
    ns.into_iter()
        .flat_map(|ns| &ns.holders)
        .flat_map(|l| &l.holders)
        .flat_map(|h| h.threads.iter().map(move |t| ((h.pid, t.tid), t.cpu_ms)))
        .collect()
}

/// The acceptors of one listener: who drains it first (threads in accept(), then those in
/// epoll), then the holders that only hold it; each process by pid.
pub(super) fn acceptors(
    read: &ListenerHolders,
    before: &HashMap<(u32, u32), u64>,
    window_s: Option<f64>,
    snapshot: &Snapshot,
) -> Vec<Acceptor> {
    let mut out: Vec<Acceptor> = read
        .holders
        .iter()
        .flat_map(|h| holder_acceptors(h, before, window_s, snapshot))
        .collect();
    out.sort_by_key(|a| (a.how, a.pid, a.tid));
    out
}

fn holder_acceptors(
    h: &Holder,
    before: &HashMap<(u32, u32), u64>,
    window_s: Option<f64>,
    snapshot: &Snapshot,
) -> Vec<Acceptor> {
    let comm = snapshot
        .process(h.pid)
        .map_or_else(|| "?".to_owned(), |p| p.comm.clone());
    let cpu = |t: &Task| -> Option<f64> {
        let earlier = *before.get(&(h.pid, t.tid))?;
        let used = t.cpu_ms.checked_sub(earlier)?;
        let secs = window_s.filter(|s| *s > 0.0)?;
        #[allow(clippy::cast_precision_loss)] // ms of CPU fit an f64 exactly
        Some(used as f64 / 10.0 / secs)
    };
    let entry = |t: Option<&Task>, how: How, waiting_for_it: bool| Acceptor {
        pid: h.pid,
        comm: comm.clone(),
        tid: t.map(|t| t.tid),
        thread: t.map(|t| t.comm.clone()),
        how,
        state: t.map(|t| t.state.into()),
        cpu_pct: t.and_then(cpu),
        waiting_in: t.and_then(|t| t.wchan.clone()),
        waiting_for_it,
        threads: h.threads.len(),
        unknown: h.unreadable.is_some() && h.fds.is_empty(),
    };
    let in_accept: Vec<&Task> = h
        .threads
        .iter()
        .filter(|t| matches!(t.syscall, Some(Syscall::Accept { fd }) if h.fds.contains(&fd)))
        .collect();
    let in_epoll: Vec<&Task> = h
        .threads
        .iter()
        .filter(
            |t| matches!(t.syscall, Some(Syscall::EpollWait { epfd }) if h.epoll_fds.contains(&epfd)),
        )
        .collect();
    let mut out: Vec<Acceptor> = in_accept
        .iter()
        .map(|t| entry(Some(t), How::Accept, true))
        .chain(in_epoll.iter().map(|t| entry(Some(t), How::Epoll, true)))
        .collect();
    if out.is_empty() {
        let how = if h.epoll_fds.is_empty() {
            How::Holds
        } else {
            How::Epoll
        };
        out.push(entry(likely_thread(h, &cpu), how, false));
    }
    out
}

/// The thread most likely to be the one that should drain the listener, when none waits for
/// it: a busy thread (a loop spinning where it should accept), else the main thread, else
/// the first; threads waiting in accept() or epoll_wait() on other descriptors serve
/// something else and are passed over.
fn likely_thread<'t>(h: &'t Holder, cpu: &impl Fn(&Task) -> Option<f64>) -> Option<&'t Task> {
    let free: Vec<&Task> = h
        .threads
        .iter()
        .filter(|t| {
            !matches!(
                t.syscall,
                Some(Syscall::Accept { .. } | Syscall::EpollWait { .. })
            )
        })
        .collect();
    let busiest = free
        .iter()
        .filter_map(|t| Some((*t, cpu(t)?)))
        .filter(|(_, c)| *c >= BUSY_PCT)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t);
    busiest
        .or_else(|| free.iter().find(|t| t.tid == h.pid).copied())
        .or_else(|| free.first().copied())
        .or_else(|| h.threads.iter().find(|t| t.tid == h.pid))
        .or_else(|| h.threads.first())
}

/// What the acceptors say about a listener that is not drained.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Ends a summary: `its acceptor nginx (pid 4242) is stopped`.
    pub clause: String,
    /// Starts a remedy: what is wrong with whom, and the first thing to do.
    pub remedy: String,
}

/// The verdict on a listener's acceptors; `None` when none were read (nothing waited when
/// the pass looked, or no owner is known).
#[allow(clippy::too_many_lines)] // one sentence per way of being stuck, in the order read
pub fn verdict(acceptors: &[Acceptor]) -> Option<Verdict> {
    if acceptors.is_empty() {
        return None;
    }
    let serving: Vec<&Acceptor> = acceptors.iter().filter(|a| a.serves()).collect();
    if serving.is_empty() {
        let unknown: Vec<&Acceptor> = acceptors.iter().filter(|a| a.unknown).collect();
        if let Some(first) = unknown.first() {
            // Some holder may well drain it: its descriptors were not readable.
            return Some(Verdict {
                clause: format!(
                    "who drains it is unknown: {} could not be read",
                    owners_phrase(&[(*first).clone()])
                ),
                remedy: format!(
                    "Who drains it could not be read ({} is another user's process, or exited): \
                     run sockscope as root to see its acceptors and what they are doing; \
                     meanwhile find what stalls its accept loop.",
                    owners_phrase(&[(*first).clone()])
                ),
            });
        }
        return Some(nobody_serves(acceptors));
    }
    let mut clauses = Vec::new();
    let mut remedy = String::new();
    for (state, word, fix) in [
        (
            State::Stopped,
            "stopped (by SIGSTOP or SIGTSTP)",
            "`kill -CONT {pids}` resumes it",
        ),
        (
            State::Traced,
            "stopped by a tracer (a debugger, strace)",
            "detach the tracer (quit gdb, end strace); `grep TracerPid /proc/{pid}/status` \
             names it",
        ),
        (
            State::Zombie,
            "a zombie: it exited",
            "restart the service; its parent has not reaped it",
        ),
    ] {
        let these: Vec<&&Acceptor> = serving.iter().filter(|a| a.state == Some(state)).collect();
        if these.is_empty() {
            continue;
        }
        let pids = distinct_pids(these.iter().map(|a| a.pid));
        let fix = fix
            .replace("{pids}", &join_pids(&pids, " "))
            .replace("{pid}", &pids[0].to_string());
        let sentence = format!(
            "{} {} {word}",
            acceptor_phrase(&these, serving.len()),
            if these.len() > 1 { "are" } else { "is" }
        );
        let _ = write!(remedy, "{}: {fix}. ", capitalize(&sentence));
        clauses.push(sentence);
    }
    for a in &serving {
        if a.state == Some(State::Disk) && !a.waiting_in.as_deref().is_some_and(frozen) {
            let place = a.waiting_in.as_deref().unwrap_or("the kernel");
            clauses.push(format!("{} in disk wait (D) in {place}", a.name()));
            let _ = write!(
                remedy,
                "{} is in disk wait (D) in {place}: it waits on storage (a slow disk, a \
                 network filesystem); `cat /proc/{}/task/{}/stack` shows where, `iostat -x 1` \
                 how busy the disks are. ",
                capitalize(&a.name()),
                a.pid,
                a.tid.unwrap_or(a.pid)
            );
        } else if a.busy() && !a.waiting_for_it {
            let cpu = a.cpu_pct.unwrap_or(0.0);
            clauses.push(format!("{} uses {cpu:.0} % of a CPU", a.name()));
            let _ = write!(
                remedy,
                "{} uses {cpu:.0} % of a CPU instead of accepting: profile it (`perf top -p \
                 {}`). ",
                capitalize(&a.name()),
                a.pid
            );
        } else if a.waiting_in.as_deref().is_some_and(frozen) {
            clauses.push(format!("{} is frozen by its cgroup", a.name()));
            let _ = write!(
                remedy,
                "{} is frozen by its cgroup's freezer (`docker pause`, `systemctl freeze`, \
                 cgroup.freeze): thaw it (`docker unpause`, `systemctl thaw`, or write 0 to \
                 the cgroup.freeze named by `cat /proc/{}/cgroup`). ",
                capitalize(&a.name()),
                a.pid
            );
        } else if a.state == Some(State::Sleeping) && !a.waiting_for_it {
            let place = a.waiting_in.as_deref().unwrap_or("the kernel");
            let thread = if a.threads > 1 {
                format!(
                    "its thread {} (tid {})",
                    a.thread.as_deref().unwrap_or("?"),
                    a.tid.unwrap_or(a.pid)
                )
            } else {
                "its only thread".to_owned()
            };
            clauses.push(format!(
                "{} (pid {}) does not wait for connections: {thread} sleeps in {place}",
                a.comm, a.pid
            ));
            let _ = write!(
                remedy,
                "{} (pid {}) does not wait for connections: {thread} sleeps in {place} (a \
                 lock, a sleep, a slow call); `cat /proc/{}/task/{}/stack` shows where. ",
                a.comm,
                a.pid,
                a.pid,
                a.tid.unwrap_or(a.pid)
            );
        } else if a.state == Some(State::Running) && !a.waiting_for_it && !a.busy() {
            clauses.push(format!(
                "{} is running, not waiting for connections",
                a.name()
            ));
        }
    }
    if clauses.is_empty() {
        // Every acceptor waits for the next connection, or works between two: it is slow.
        let names = acceptor_phrase(&serving.iter().collect::<Vec<_>>(), serving.len());
        let are = if serving.len() > 1 { "are" } else { "is" };
        return Some(Verdict {
            clause: format!("{names} {are} waiting for connections when looked at"),
            remedy: format!(
                "{} {} not calling accept() fast enough: it waits for connections when looked \
                 at, so the work between two accept() calls is what is slow (a saturated \
                 worker pool, slow work on the accepting thread).",
                capitalize(&names),
                if serving.len() > 1 { "are" } else { "is" }
            ),
        });
    }
    Some(Verdict {
        clause: clauses.join("; "),
        remedy: remedy.trim_end().to_owned(),
    })
}

fn nobody_serves(holders: &[Acceptor]) -> Verdict {
    let first = &holders[0];
    let mut doing = describe(first);
    if holders.len() > 1 {
        let _ = write!(doing, "; {} other holders do neither", holders.len() - 1);
    }
    Verdict {
        clause: format!(
            "held by {}, but nobody serves it (no accept(), no epoll)",
            owners_phrase(holders)
        ),
        remedy: format!(
            "The listener is held, but nobody serves it: {} {} it and never {} accept() on it \
             nor {} it with epoll ({doing}). Find why its accept loop is not running (a \
             startup that never finished, a thread that died).",
            owners_phrase(holders),
            if distinct_pids(holders.iter().map(|a| a.pid)).len() > 1 {
                "hold"
            } else {
                "holds"
            },
            if holders.len() > 1 { "call" } else { "calls" },
            if holders.len() > 1 {
                "watch"
            } else {
                "watches"
            },
        ),
    }
}

/// `it is running, 99 % of a CPU` / `it sleeps in do_nanosleep`: one holder's state.
fn describe(a: &Acceptor) -> String {
    let cpu = a
        .cpu_pct
        .map(|c| format!(", {c:.0} % of a CPU"))
        .unwrap_or_default();
    let place = a
        .waiting_in
        .as_deref()
        .map(|w| format!(" in {w}"))
        .unwrap_or_default();
    let name = a.name();
    match a.state {
        Some(State::Running) => format!("{name} is running{cpu}"),
        Some(State::Sleeping) => format!("{name} sleeps{place}{cpu}"),
        Some(State::Disk) => format!("{name} is in disk wait (D){place}"),
        Some(State::Stopped) => format!("{name} is stopped"),
        Some(State::Traced) => format!("{name} is stopped by a tracer"),
        Some(State::Zombie) => format!("{name} has exited"),
        None => format!("{name}: its threads could not be read"),
    }
}

/// `nginx (pid 1) and 2 other processes`.
pub fn owners_phrase(holders: &[Acceptor]) -> String {
    let pids = distinct_pids(holders.iter().map(|a| a.pid));
    let first = &holders[0];
    match pids.len() {
        1 => format!("{} (pid {})", first.comm, first.pid),
        2 => format!("{} (pid {}) and 1 other process", first.comm, first.pid),
        n => format!(
            "{} (pid {}) and {} other processes",
            first.comm,
            first.pid,
            n - 1
        ),
    }
}

/// `its acceptor nginx (pid 4242)` / `its acceptors nginx (pids 4242, 4243)` / `1 of its 2
/// acceptors, nginx (pid 4242)`.
fn acceptor_phrase(these: &[&&Acceptor], serving: usize) -> String {
    let pids = distinct_pids(these.iter().map(|a| a.pid));
    let one_thread = these.len() == 1;
    let who = if one_thread {
        these[0].name()
    } else if pids.len() == 1 {
        format!(
            "{} threads of {} (pid {})",
            these.len(),
            these[0].comm,
            pids[0]
        )
    } else {
        format!("{} (pids {})", these[0].comm, join_pids(&pids, ", "))
    };
    match (these.len(), serving) {
        (1, 1) => format!("its acceptor, {who},"),
        (n, m) if n == m => format!("its acceptors, {who},"),
        (1, m) => format!("1 of its {m} acceptors, {who},"),
        (n, m) => format!("{n} of its {m} acceptors, {who},"),
    }
}

/// Whether a task waits in the cgroup freezer: `do_freezer_trap` (cgroup v2),
/// `__refrigerator` (v1).
fn frozen(wchan: &str) -> bool {
    matches!(wchan, "do_freezer_trap" | "__refrigerator")
}

fn distinct_pids(pids: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut out: Vec<u32> = pids.collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn join_pids(pids: &[u32], with: &str) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(with)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{FindingId, Settings, Severity, analyze};
    use crate::model::{
        Family, FdScan, Host, NetnsSnapshot, Process, ProcessScanStats, StateCounts, TcpSocket,
        TcpState,
    };

    fn task(tid: u32, comm: &str, state: TaskState, cpu_ms: u64, syscall: Syscall) -> Task {
        let wchan = match (state, syscall) {
            (TaskState::Running, _) => None,
            (TaskState::Stopped, _) => Some("do_signal_stop"),
            (_, Syscall::EpollWait { .. }) => Some("do_epoll_wait"),
            (_, Syscall::Accept { .. }) => Some("inet_csk_accept"),
            _ => Some("do_nanosleep"),
        };
        Task {
            tid,
            comm: comm.into(),
            state,
            cpu_ms,
            syscall: Some(syscall),
            wchan: wchan.map(str::to_owned),
        }
    }

    fn holder(pid: u32, fds: &[u32], epoll_fds: &[u32], threads: Vec<Task>) -> Holder {
        Holder {
            pid,
            fds: fds.to_vec(),
            epoll_fds: epoll_fds.to_vec(),
            threads,
            threads_left_out: 0,
            unreadable: None,
        }
    }

    fn listener(local: &str, inode: u64, recv_q: u32, owners: &[u32]) -> TcpSocket {
        TcpSocket {
            family: Family::Inet,
            state: TcpState::Listen,
            local: local.parse().expect("addr"),
            peer: "0.0.0.0:0".parse().expect("addr"),
            recv_q,
            send_q: 16,
            inode,
            uid: 0,
            drops: Some(0),
            last_ack_recv_ms: None,
            timer: None,
            owners: owners.to_vec(),
        }
    }

    /// One namespace with these listeners and holders, at `secs`, its processes named.
    fn snapshot(
        secs: u64,
        listeners: Vec<TcpSocket>,
        holders: Vec<ListenerHolders>,
        comms: &[(u32, &str)],
    ) -> Snapshot {
        Snapshot {
            host: Host {
                hostname: "h".into(),
                kernel: "6.18".into(),
            },
            wall_time_ms: secs * 1000,
            monotonic_ns: secs * 1_000_000_000,
            collect_us: 1,
            netns: vec![NetnsSnapshot {
                id: "1".into(),
                label: "host".into(),
                tcp_listeners: listeners,
                holders,
                ..NetnsSnapshot::default()
            }],
            processes: comms
                .iter()
                .map(|&(pid, comm)| Process {
                    pid,
                    comm: comm.into(),
                    uid: 0,
                    netns: Some(1),
                    fds: Some(10),
                    fd_limit: None,
                    tcp: StateCounts::default(),
                    unix_sockets: 0,
                    other_sockets: 0,
                    fd_scan: FdScan::Complete,
                })
                .collect(),
            process_scan: ProcessScanStats::default(),
            notes: Vec::new(),
            freshness: crate::model::Freshness::default(),
        }
    }

    fn of(read: &ListenerHolders, before: &[(u32, u32, u64)], s: &Snapshot) -> Vec<Acceptor> {
        let before = before.iter().map(|&(p, t, c)| ((p, t), c)).collect();
        acceptors(read, &before, Some(1.0), s)
    }

    #[test]
    fn a_stopped_worker_is_the_acceptor_and_the_master_only_holds() {
        let read = ListenerHolders {
            inode: 7,
            holders: vec![
                holder(
                    100,
                    &[6],
                    &[],
                    vec![task(100, "nginx", TaskState::Sleeping, 0, Syscall::Other)],
                ),
                holder(
                    101,
                    &[6],
                    &[9],
                    vec![task(
                        101,
                        "nginx",
                        TaskState::Stopped,
                        40,
                        Syscall::EpollWait { epfd: 9 },
                    )],
                ),
            ],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(100, "nginx"), (101, "nginx")]);
        let got = of(&read, &[(101, 101, 40)], &s);
        let brief: Vec<(u32, How, Option<State>)> =
            got.iter().map(|a| (a.pid, a.how, a.state)).collect();
        assert_eq!(
            brief,
            vec![
                (101, How::Epoll, Some(State::Stopped)),
                (100, How::Holds, Some(State::Sleeping)),
            ]
        );
        assert_eq!(got[0].cpu_pct, Some(0.0));
        let v = verdict(&got).expect("a verdict");
        assert!(
            v.clause
                .contains("its acceptor, nginx (pid 101), is stopped"),
            "{v:?}"
        );
        assert!(v.remedy.contains("`kill -CONT 101`"), "{v:?}");
        assert!(!v.remedy.contains("100"), "the master is not blamed: {v:?}");
    }

    #[test]
    fn a_server_sleeping_elsewhere_does_not_wait_for_connections() {
        let read = ListenerHolders {
            inode: 7,
            holders: vec![holder(
                77,
                &[6],
                &[5],
                vec![task(
                    77,
                    "redis-server",
                    TaskState::Sleeping,
                    10,
                    Syscall::Other,
                )],
            )],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(77, "redis-server")]);
        let got = of(&read, &[], &s);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].how, got[0].state, got[0].waiting_in.as_deref()),
            (How::Epoll, Some(State::Sleeping), Some("do_nanosleep"))
        );
        let v = verdict(&got).expect("a verdict");
        assert!(
            v.remedy.starts_with(
                "redis-server (pid 77) does not wait for connections: its only thread sleeps \
                 in do_nanosleep"
            ),
            "{v:?}"
        );
    }

    #[test]
    fn a_busy_thread_of_many_is_named() {
        let read = ListenerHolders {
            inode: 7,
            holders: vec![holder(
                9,
                &[40],
                &[41],
                vec![
                    task(9, "java", TaskState::Sleeping, 100, Syscall::Other),
                    task(12, "acceptor", TaskState::Running, 5000, Syscall::Running),
                    // Waits on another epoll set: serves something else.
                    task(
                        13,
                        "io",
                        TaskState::Sleeping,
                        0,
                        Syscall::EpollWait { epfd: 50 },
                    ),
                ],
            )],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(9, "java")]);
        let got = of(&read, &[(9, 9, 100), (9, 12, 4010)], &s);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].tid, got[0].how), (Some(12), How::Epoll));
        let v = verdict(&got).expect("a verdict");
        assert!(
            v.remedy
                .contains("Thread acceptor (tid 12) of java (pid 9) uses 99 % of a CPU"),
            "{v:?}"
        );
        assert!(v.remedy.contains("`perf top -p 9`"), "{v:?}");
    }

    #[test]
    fn a_thread_in_accept_on_another_listener_is_not_this_ones_acceptor() {
        let read = ListenerHolders {
            inode: 7,
            holders: vec![holder(
                5,
                &[3],
                &[],
                vec![
                    task(5, "spin", TaskState::Running, 1990, Syscall::Running),
                    task(
                        6,
                        "other",
                        TaskState::Sleeping,
                        0,
                        Syscall::Accept { fd: 4 },
                    ),
                ],
            )],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(5, "spin")]);
        let got = of(&read, &[(5, 5, 1000)], &s);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].tid, got[0].how, got[0].state),
            (Some(5), How::Holds, Some(State::Running))
        );
        assert!(got[0].cpu_pct.is_some_and(|c| c >= 80.0), "{got:?}");
        let v = verdict(&got).expect("a verdict");
        assert!(v.clause.contains("nobody serves it"), "{v:?}");
        assert!(v.remedy.contains("is running, 99 % of a CPU"), "{v:?}");
    }

    #[test]
    fn a_thread_in_accept_on_it_is_its_acceptor() {
        let read = ListenerHolders {
            inode: 7,
            holders: vec![holder(
                5,
                &[3],
                &[],
                vec![
                    task(5, "srv", TaskState::Sleeping, 0, Syscall::Other),
                    task(6, "acc", TaskState::Sleeping, 0, Syscall::Accept { fd: 3 }),
                ],
            )],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(5, "srv")]);
        let got = of(&read, &[], &s);
        assert_eq!(
            got.iter().map(|a| (a.tid, a.how)).collect::<Vec<_>>(),
            vec![(Some(6), How::Accept)]
        );
        let v = verdict(&got).expect("a verdict");
        assert!(
            v.remedy.contains("not calling accept() fast enough"),
            "{v:?}"
        );
    }

    #[test]
    fn a_stuck_reuseport_member_beside_an_idle_one_is_an_imbalance() {
        let holders = |cpu| {
            vec![ListenerHolders {
                inode: 11,
                holders: vec![
                    holder(
                        100,
                        &[6, 7],
                        &[],
                        vec![task(100, "nginx", TaskState::Sleeping, 0, Syscall::Other)],
                    ),
                    holder(
                        101,
                        &[6, 7],
                        &[9],
                        vec![task(
                            101,
                            "nginx",
                            TaskState::Stopped,
                            cpu,
                            Syscall::EpollWait { epfd: 9 },
                        )],
                    ),
                ],
            }]
        };
        let listeners = |q| {
            vec![
                listener("127.0.0.1:8081", 11, q, &[100, 101, 102]),
                listener("127.0.0.1:8081", 12, 0, &[100, 101, 102]),
                listener("127.0.0.1:9000", 13, 0, &[200]),
            ]
        };
        let comms = [(100, "nginx"), (101, "nginx"), (102, "nginx"), (200, "x")];
        let window = [
            snapshot(1, listeners(16), holders(30), &comms),
            snapshot(2, listeners(17), holders(30), &comms),
        ];
        let a = analyze(&window, &Settings::default()).expect("a window");
        let ls = &a.netns[0].listeners;
        let members: Vec<(u64, Option<usize>)> = ls
            .iter()
            .map(|l| (l.inode, l.member.map(|m| m.index)))
            .collect();
        assert_eq!(
            members,
            vec![(11, Some(1)), (12, Some(2)), (13, None)],
            "members together, numbered by inode"
        );
        let f = a
            .findings
            .iter()
            .find(|f| f.id == FindingId::ReuseportImbalance)
            .expect("reuseport-imbalance");
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.is_about_listener("1", 11));
        assert!(
            f.summary.contains("1/2 of new connections"),
            "{}",
            f.summary
        );
        assert!(
            f.subject.contains("(nginx pid 101 and 2 more)"),
            "the subject names the acceptor, not the master: {}",
            f.subject
        );
        assert!(f.summary.contains("is stopped"), "{}", f.summary);
        assert!(f.remedy.contains("kill -CONT 101"), "{}", f.remedy);
        let crate::analyze::Evidence::ReuseportImbalance(e) = &f.evidence else {
            panic!("{:?}", f.evidence)
        };
        let brief: Vec<(u32, How, Option<State>)> = e
            .acceptors
            .iter()
            .map(|a| (a.pid, a.how, a.state))
            .collect();
        assert_eq!(
            brief,
            vec![
                (101, How::Epoll, Some(State::Stopped)),
                (100, How::Holds, Some(State::Sleeping)),
            ]
        );
        assert!((e.share_pct - 50.0).abs() < 1e-9);
        let json = serde_json::to_value(&f.evidence).expect("serializes");
        assert_eq!(json["acceptors"][0]["how"], "epoll");
        assert_eq!(json["acceptors"][0]["state"], "stopped");
        let full = a
            .findings
            .iter()
            .find(|f| f.id == FindingId::AcceptQueueFull)
            .expect("accept-queue-full");
        assert!(full.remedy.contains("kill -CONT 101"), "{}", full.remedy);
        assert!(
            !a.findings
                .iter()
                .any(|f| f.id == FindingId::ReuseportImbalance && f.is_about_listener("1", 12)),
            "the idle member is not starved"
        );
    }

    #[test]
    fn without_acceptors_the_owners_take_a_verb_that_agrees() {
        let comms = [(100, "nginx"), (101, "nginx"), (102, "nginx")];
        let listeners = vec![listener("127.0.0.1:8080", 11, 17, &[100, 101, 102])];
        let a = analyze(
            &[snapshot(1, listeners, Vec::new(), &comms)],
            &Settings::default(),
        )
        .expect("a window");
        let full = a
            .findings
            .iter()
            .find(|f| f.id == FindingId::AcceptQueueFull)
            .expect("accept-queue-full");
        assert!(
            full.remedy
                .starts_with("nginx (pid 100) and 2 other processes are not calling accept()"),
            "{}",
            full.remedy
        );
        let crate::analyze::Evidence::AcceptQueueFull(e) = &full.evidence else {
            panic!("{:?}", full.evidence)
        };
        assert!(e.acceptors.is_empty(), "none were read");
    }

    #[test]
    fn a_holder_that_could_not_be_read_is_not_said_to_serve_nobody() {
        let mut h = holder(300, &[], &[], Vec::new());
        h.unreadable = Some(crate::model::Unreadable::Denied);
        let read = ListenerHolders {
            inode: 7,
            holders: vec![h],
        };
        let s = snapshot(1, Vec::new(), Vec::new(), &[(300, "postgres")]);
        let got = of(&read, &[], &s);
        assert_eq!((got[0].tid, got[0].state), (None, None));
        let v = verdict(&got).expect("a verdict");
        assert!(!v.remedy.contains("nobody serves it"), "{v:?}");
        assert!(v.remedy.contains("run sockscope as root"), "{v:?}");
    }

    #[test]
    fn each_way_of_being_stuck_has_its_words() {
        let one = |state, wchan: &str| {
            let mut t = task(5, "srv", state, 0, Syscall::EpollWait { epfd: 4 });
            t.wchan = Some(wchan.to_owned());
            let read = ListenerHolders {
                inode: 7,
                holders: vec![holder(5, &[3], &[4], vec![t])],
            };
            let s = snapshot(1, Vec::new(), Vec::new(), &[(5, "srv")]);
            verdict(&of(&read, &[], &s)).expect("a verdict").remedy
        };
        let traced = one(TaskState::Traced, "ptrace_stop");
        assert!(traced.contains("stopped by a tracer"), "{traced}");
        assert!(traced.contains("TracerPid /proc/5/status"), "{traced}");
        let disk = one(TaskState::Disk, "folio_wait_bit_common");
        assert!(
            disk.contains("is in disk wait (D) in folio_wait_bit_common"),
            "{disk}"
        );
        let frozen = one(TaskState::Sleeping, "do_freezer_trap");
        assert!(
            frozen.contains("frozen by its cgroup's freezer"),
            "{frozen}"
        );
        let zombie = one(TaskState::Zombie, "0");
        assert!(zombie.contains("a zombie"), "{zombie}");
    }

    #[test]
    fn several_owners_take_a_plural_verb() {
        let holders: Vec<Acceptor> = [1, 2, 3]
            .into_iter()
            .map(|pid| Acceptor {
                pid,
                comm: "nginx".into(),
                tid: Some(pid),
                thread: Some("nginx".into()),
                how: How::Holds,
                state: Some(State::Sleeping),
                cpu_pct: None,
                waiting_in: Some("sigsuspend".into()),
                waiting_for_it: false,
                threads: 1,
                unknown: false,
            })
            .collect();
        assert_eq!(
            owners_phrase(&holders),
            "nginx (pid 1) and 2 other processes"
        );
        assert_eq!(
            owners_phrase(&holders[..2]),
            "nginx (pid 1) and 1 other process"
        );
        let v = verdict(&holders).expect("a verdict");
        assert!(
            v.remedy
                .contains("nginx (pid 1) and 2 other processes hold it"),
            "{v:?}"
        );
    }
}
