//! The only code that touches the kernel: sock_diag, /proc and /proc/sys.
//!
//! [`collect`] takes one [`Snapshot`] of the caller's network namespace: the socket dumps run
//! on the calling thread while the /proc walk runs beside them, then the two are joined by
//! socket inode. Nothing here decides what is bad; it only records what the kernel said and
//! what could not be read.

pub mod netlink;
pub mod procnet;
pub mod procs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::model::{
    Family, FdScan, Host, NetnsSnapshot, Process, Snapshot, StateCounts, TcpSocket, TcpState,
    UnixSocket, UnixState,
};
use netlink::{DiagSocket, Extensions, InetSock, NetlinkError, StateMask, UnixSock};
use procs::ProcessScan;

/// Where and how to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Root of the proc filesystem, `/proc` on a live host.
    pub proc_root: PathBuf,
    /// Threads for the /proc walk.
    pub threads: usize,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            proc_root: PathBuf::from("/proc"),
            threads: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("sock_diag dump failed: {0}")]
    Netlink(#[from] NetlinkError),
}

/// Take one snapshot of the calling thread's network namespace and of every process.
pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let wall_time_ms = wall_clock_ms();
    let monotonic_ns = monotonic_ns();

    let (sockets, scan) = std::thread::scope(|scope| {
        let walker = scope.spawn(|| procs::scan_processes(&opts.proc_root, opts.threads));
        let sockets = dump_sockets();
        let scan = walker.join().unwrap_or_else(|_| ProcessScan::default());
        (sockets, scan)
    });
    let mut sockets = sockets?;
    let tables = procnet::read_net_tables();
    let scan_notes = scan_notes(&scan);
    let processes = attribute(&mut sockets, scan.processes);

    let (id, label) = own_netns(opts);
    let mut notes = tables.notes;
    notes.extend(scan_notes);
    let netns = NetnsSnapshot {
        id,
        label,
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
    Ok(Snapshot {
        host: host(),
        wall_time_ms,
        monotonic_ns,
        collect_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        netns: vec![netns],
        processes,
        process_scan: scan.stats,
        notes,
    })
}

/// A collector that lives across refreshes, so that repeated snapshots (the dashboard, the
/// exporter, a recorder) can reuse what has not changed since the last one.
pub struct Collector {
    opts: CollectOptions,
}

impl Collector {
    pub fn new(opts: CollectOptions) -> Collector {
        Collector { opts }
    }

    /// Take a snapshot.
    pub fn snapshot(&mut self) -> Result<Snapshot, CollectError> {
        collect(&self.opts)
    }
}

/// Takes snapshots `interval` apart, paced from the first so that n snapshots span
/// (n - 1) × interval however long each collection takes.
pub struct Sampler {
    collector: Collector,
    interval: Duration,
    start: Option<Instant>,
    taken: u32,
}

impl Sampler {
    pub fn new(opts: CollectOptions, interval: Duration) -> Sampler {
        Sampler {
            collector: Collector::new(opts),
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

/// The sockets of one namespace, before they are joined with processes.
#[derive(Default)]
#[allow(clippy::struct_field_names)] // unix_sockets is a count beside the unix listeners
struct Sockets {
    tcp_states: StateCounts,
    tcp_listeners: Vec<TcpSocket>,
    tracked: Vec<TcpSocket>,
    unix_listeners: Vec<UnixSocket>,
    unix_sockets: u64,
    /// Inode -> what the inode is, for every socket with an inode.
    index: HashMap<u64, Slot>,
}

/// What a socket inode names, and where its record lives when it is kept in full.
#[derive(Clone, Copy)]
enum Slot {
    Tcp(TcpState),
    TcpListener(usize),
    Tracked(usize),
    Unix,
    UnixListener(usize),
}

/// Dump both TCP families and unix sockets.
///
/// Every TCP state is asked for, split over three dumps per family so that the costly
/// extensions go only where they are read: LISTEN with `SKMEMINFO` (drops), CLOSE_WAIT with
/// `INFO` (`tcpi_last_ack_recv`), and every other state bare.
fn dump_sockets() -> Result<Sockets, NetlinkError> {
    let mut diag = DiagSocket::new()?;
    let mut out = Sockets::default();
    let special = [TcpState::Listen, TcpState::CloseWait];
    for family in [Family::Inet, Family::Inet6] {
        let bare = StateMask::ALL.without(&special);
        diag.dump_inet(family, bare, Extensions::default(), |s| out.add_tcp(s))?;
        let drops = Extensions {
            skmeminfo: true,
            ..Extensions::default()
        };
        diag.dump_inet(family, StateMask::only(&[TcpState::Listen]), drops, |s| {
            out.add_tcp(s);
        })?;
        let info = Extensions {
            tcp_info: true,
            ..Extensions::default()
        };
        diag.dump_inet(family, StateMask::only(&[TcpState::CloseWait]), info, |s| {
            out.add_tcp(s);
        })?;
    }
    diag.dump_unix(|s| out.add_unix(s))?;
    Ok(out)
}

impl Sockets {
    fn add_tcp(&mut self, s: InetSock) {
        self.tcp_states.add(s.state, 1);
        let keep_as = match s.state {
            TcpState::Listen => Some(true),
            TcpState::SynRecv | TcpState::CloseWait => Some(false),
            // An ESTABLISHED socket with no inode is a child the app has not accept()ed yet.
            TcpState::Established if s.inode == 0 => Some(false),
            _ => None,
        };
        let slot = match keep_as {
            None => Slot::Tcp(s.state),
            Some(listener) => {
                let list = if listener {
                    &mut self.tcp_listeners
                } else {
                    &mut self.tracked
                };
                list.push(TcpSocket {
                    family: s.family,
                    state: s.state,
                    local: s.local,
                    peer: s.peer,
                    recv_q: s.recv_q,
                    send_q: s.send_q,
                    inode: s.inode,
                    uid: s.uid,
                    drops: s.drops,
                    last_ack_recv_ms: s.tcp_info.and_then(|i| i.last_ack_recv),
                    owners: Vec::new(),
                });
                let at = list.len() - 1;
                if listener {
                    Slot::TcpListener(at)
                } else {
                    Slot::Tracked(at)
                }
            }
        };
        if s.inode != 0 {
            self.index.insert(s.inode, slot);
        }
    }

    fn add_unix(&mut self, s: UnixSock) {
        self.unix_sockets += 1;
        let slot = if s.state == UnixState::Listen {
            self.unix_listeners.push(UnixSocket {
                kind: s.kind,
                state: s.state,
                path: s.path,
                inode: s.inode,
                peer_inode: s.peer_inode,
                recv_q: s.recv_q,
                send_q: s.send_q,
                uid: s.uid,
                owners: Vec::new(),
            });
            Slot::UnixListener(self.unix_listeners.len() - 1)
        } else {
            Slot::Unix
        };
        self.index.insert(s.inode, slot);
    }
}

/// Join processes with sockets: count each process's sockets by kind and state, and name
/// the owners of every socket kept in full.
fn attribute(sockets: &mut Sockets, scanned: Vec<procs::ScannedProcess>) -> Vec<Process> {
    let mut processes = Vec::with_capacity(scanned.len());
    for mut p in scanned {
        // The same socket behind two descriptors (dup, fork) is still one socket.
        p.socket_inodes.sort_unstable();
        p.socket_inodes.dedup();
        let mut tcp = StateCounts::default();
        let (mut unix_sockets, mut other_sockets) = (0, 0);
        for inode in &p.socket_inodes {
            let Some(&slot) = sockets.index.get(inode) else {
                other_sockets += 1;
                continue;
            };
            match slot {
                Slot::Tcp(state) => tcp.add(state, 1),
                Slot::TcpListener(i) => {
                    tcp.add(TcpState::Listen, 1);
                    sockets.tcp_listeners[i].owners.push(p.pid);
                }
                Slot::Tracked(i) => {
                    let s = &mut sockets.tracked[i];
                    tcp.add(s.state, 1);
                    s.owners.push(p.pid);
                }
                Slot::Unix => unix_sockets += 1,
                Slot::UnixListener(i) => {
                    unix_sockets += 1;
                    sockets.unix_listeners[i].owners.push(p.pid);
                }
            }
        }
        processes.push(Process {
            pid: p.pid,
            comm: p.comm,
            uid: p.uid,
            netns: p.netns,
            fds: p.fds,
            fd_limit: p.fd_limit,
            tcp,
            unix_sockets,
            other_sockets,
            fd_scan: p.fd_scan,
        });
    }
    processes.sort_by_key(|p| p.pid);
    processes
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

/// The caller's network namespace: its inode, and `host` when it is init's. Where init's
/// namespace cannot be read (a hardened /proc), the label says only that it is the caller's.
fn own_netns(opts: &CollectOptions) -> (String, String) {
    let inode = |path: PathBuf| rustix::fs::stat(&path).ok().map(|st| st.st_ino);
    let own = inode(opts.proc_root.join("thread-self/ns/net"));
    let init = inode(opts.proc_root.join("1/ns/net"));
    match own {
        Some(ino) if Some(ino) == init => (ino.to_string(), "host".to_owned()),
        Some(ino) if init.is_some() => (ino.to_string(), format!("netns {ino}")),
        Some(ino) => (ino.to_string(), "current".to_owned()),
        None => ("0".to_owned(), "own".to_owned()),
    }
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
