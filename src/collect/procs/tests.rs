//! The walk against the real /proc (this test process and its children) and against fake
//! proc roots built in a temporary directory.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

/// Tests that open and count this process's descriptors run one at a time.
static OWN_FDS: Mutex<()> = Mutex::new(());

fn own_fds_lock() -> std::sync::MutexGuard<'static, ()> {
    OWN_FDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn inode(fd: impl AsFd) -> u64 {
    rustix::fs::fstat(fd).expect("fstat").st_ino
}

fn find(scan: &ProcessScan, pid: u32) -> Option<&ScannedProcess> {
    scan.processes.iter().find(|p| p.pid == pid)
}

fn own(scan: &ProcessScan) -> &ScannedProcess {
    find(scan, std::process::id()).expect("the scan sees this process")
}

/// A directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sockscope-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn finds_own_sockets_comm_and_limits() {
    let _guard = own_fds_lock();
    let dir = TempDir::new("own");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let unix = std::os::unix::net::UnixListener::bind(dir.path().join("s")).expect("unix listener");
    let (left, right) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let dup = tcp.try_clone().expect("dup");
    let expected = [
        inode(&tcp),
        inode(&unix),
        inode(&left),
        inode(&right),
        inode(&udp),
    ];

    let scan = scan_processes(Path::new("/proc"), 2);
    let me = own(&scan);

    for inode in expected {
        assert!(
            me.socket_inodes.contains(&inode),
            "socket {inode} not in {:?}",
            me.socket_inodes
        );
    }
    let dup_count = me
        .socket_inodes
        .iter()
        .filter(|&&i| i == inode(&dup))
        .count();
    assert_eq!(
        dup_count, 2,
        "a dup()ed socket is listed once per descriptor"
    );
    assert_eq!(me.fd_scan, FdScan::Complete);
    let comm = std::fs::read_to_string("/proc/self/comm").expect("read comm");
    assert_eq!(me.comm, comm.trim_end());
    assert_eq!(me.uid, rustix::process::geteuid().as_raw());
    assert_eq!(
        me.netns,
        Some(NsId::of_path(Path::new("/proc/self/ns/net")).expect("stat ns"))
    );

    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    assert_eq!(
        me.fd_limit,
        Some(FdLimit {
            soft: nofile.current,
            hard: nofile.maximum
        })
    );

    // Other tests in this binary open and close descriptors concurrently, and the scan and
    // the listing each hold a few of their own: agree within a margin.
    let listed = std::fs::read_dir("/proc/self/fd")
        .expect("list fds")
        .count() as u64;
    let fds = me.fds.expect("fd count");
    assert!(
        fds.abs_diff(listed) <= 16,
        "scan says {fds} descriptors, listing {listed}"
    );
    assert!(fds > expected.len() as u64);

    assert_eq!(
        scan.stats.processes,
        scan.processes.len() as u64 + dropped(&scan)
    );
    assert!(scan.stats.socket_fds >= me.socket_inodes.len() as u64);
    assert!(
        scan.processes.windows(2).all(|w| w[0].pid < w[1].pid),
        "sorted by pid"
    );
}

#[test]
fn a_scoped_walk_leaves_the_others_unwalked_until_asked() {
    let _guard = own_fds_lock();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let me = std::process::id();

    let mut scan = inspect(Path::new("/proc"), 2, None).walk_where(|p| p.pid != me);
    assert!(find(&scan, me).is_none(), "not walked, not listed");
    let left = scan
        .unwalked
        .iter()
        .find(|p| p.pid == me)
        .expect("kept aside");
    assert!(left.socket_inodes.is_empty());
    assert!(
        !left.comm.is_empty() && left.netns.is_some(),
        "pass 1's facts: {left:?}"
    );
    assert_eq!(scan.stats.not_walked, scan.unwalked.len() as u64);
    assert_eq!(
        scan.stats.processes,
        (scan.processes.len() + scan.unwalked.len()) as u64 + dropped(&scan)
    );
    let walked_before = scan.walked;

    let walked = walk_unwalked(Path::new("/proc"), &mut scan, 2, |p| p.pid == me);
    assert_eq!(walked.processes.len(), 1);
    assert!(walked.processes[0].socket_inodes.contains(&inode(&tcp)));
    assert!(scan.unwalked.iter().all(|p| p.pid != me), "taken out");
    assert_eq!(scan.walked, walked_before + 1);
    scan.add_walked(walked.processes);
    assert!(own(&scan).socket_inodes.contains(&inode(&tcp)));
    assert!(scan.processes.windows(2).all(|w| w[0].pid < w[1].pid));
}

/// Processes counted as vanished and dropped from the list.
fn dropped(scan: &ProcessScan) -> u64 {
    let kept_vanished = scan
        .processes
        .iter()
        .filter(|p| p.fd_scan == FdScan::Vanished)
        .count() as u64;
    scan.stats.vanished - kept_vanished
}

#[test]
fn any_thread_count_gives_the_same_processes() {
    let _guard = own_fds_lock();
    let pids = |threads| -> Vec<u32> {
        let scan = scan_processes(Path::new("/proc"), threads);
        scan.processes
            .iter()
            .map(|p| p.pid)
            .filter(|&pid| pid <= std::process::id())
            .collect()
    };
    // Pids above ours may come and go between scans; ours and below are long-lived here.
    let one = pids(1);
    assert!(one.contains(&std::process::id()));
    for threads in [0, 3, 64] {
        let other = pids(threads);
        for pid in [1, std::process::id()] {
            assert_eq!(
                one.contains(&pid),
                other.contains(&pid),
                "{threads} threads, pid {pid}"
            );
        }
    }
}

#[test]
fn exited_children_do_not_break_the_scan() {
    // A zombie: exited, not yet reaped. Its fd table is gone, its /proc directory is not.
    let mut zombie = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    zombie.kill().expect("kill");
    let zombie_pid = zombie.id();
    wait_until_zombie(zombie_pid);

    // A reaped child: its pid is gone from /proc.
    let mut reaped = Command::new("true").spawn().expect("spawn true");
    let reaped_pid = reaped.id();
    reaped.wait().expect("wait");

    // Children that come and go during the scans.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut child) = Command::new("true").spawn() {
                    let _ = child.wait();
                }
            }
        });
        // Each scan reads every process of the host: a few are enough to race with exits.
        for _ in 0..4 {
            let scan = scan_processes(Path::new("/proc"), 2);
            assert_eq!(
                scan.stats.processes,
                scan.processes.len() as u64 + dropped(&scan)
            );
            assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        }
        stop.store(true, Ordering::Relaxed);
    });

    let scan = scan_processes(Path::new("/proc"), 2);
    assert!(find(&scan, reaped_pid).is_none_or(|p| p.comm != "true"));
    let z = find(&scan, zombie_pid).expect("a zombie is still a process");
    assert_eq!(z.fd_scan, FdScan::Complete);
    assert_eq!(z.fds, Some(0));
    assert!(z.socket_inodes.is_empty());
    zombie.wait().expect("reap");
}

fn wait_until_zombie(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} did not become a zombie");
}

#[test]
fn other_users_processes_are_denied_not_dropped() {
    let scan = if rustix::process::geteuid().is_root() {
        // Look as `nobody` from a thread of our own: credentials are per thread on Linux,
        // and the scan's helper threads inherit them.
        std::thread::spawn(|| {
            let nobody = rustix::process::Uid::from_raw(65534);
            rustix::thread::set_thread_res_uid(None, Some(nobody), None).expect("seteuid");
            scan_processes(Path::new("/proc"), 2)
        })
        .join()
        .expect("scan thread")
    } else {
        scan_processes(Path::new("/proc"), 2)
    };

    let init = find(&scan, 1).expect("pid 1 is listed");
    assert_eq!(init.fd_scan, FdScan::Denied);
    assert!(!init.comm.is_empty(), "comm is world-readable");
    assert!(init.fd_limit.is_some(), "limits is world-readable");
    // Since Linux 6.2 the count is the size of the directory, given without permission.
    assert!(
        init.fds.is_some_and(|n| n > 0),
        "fd count of pid 1: {:?}",
        init.fds
    );
    assert!(scan.stats.fds_denied > 0);
    assert!(!scan.stats.full_view());
    // A process may always read its own descriptors.
    assert_eq!(own(&scan).fd_scan, FdScan::Complete);
    assert!(
        scan.problems.is_empty(),
        "denials are counted, not noted: {:?}",
        scan.problems
    );
}

#[test]
fn a_fake_proc_root_is_read_as_far_as_it_goes() {
    let root = TempDir::new("fakeproc");
    let at = |rel: &str| root.path().join(rel);
    let stat = |comm: &str, start: u64| {
        format!("1 ({comm}) S 0 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n")
    };
    // Gone before its name could be read.
    std::fs::create_dir(at("123")).expect("mkdir");
    // A name and nothing else.
    std::fs::create_dir(at("124")).expect("mkdir");
    std::fs::write(at("124/stat"), stat("lonely", 7)).expect("write");
    // Everything, with four descriptors, two of them sockets.
    std::fs::create_dir_all(at("125/fd")).expect("mkdir");
    std::fs::create_dir(at("125/ns")).expect("mkdir");
    std::fs::write(at("125/stat"), stat("whole", 8)).expect("write");
    std::fs::write(at("125/ns/net"), "").expect("write");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc/limits"),
        at("125/limits"),
    )
    .expect("copy limits");
    for (fd, target) in [
        ("0", "socket:[42]"),
        ("1", "/dev/null"),
        ("2", "socket:[43]"),
        ("3", "pipe:[7]"),
    ] {
        symlink(target, at(&format!("125/fd/{fd}"))).expect("symlink");
    }
    // Unparseable limits, everything else present.
    std::fs::create_dir_all(at("126/fd")).expect("mkdir");
    std::fs::create_dir(at("126/ns")).expect("mkdir");
    std::fs::write(at("126/stat"), stat("odd", 9)).expect("write");
    std::fs::write(at("126/ns/net"), "").expect("write");
    std::fs::write(at("126/limits"), "no limits here\n").expect("write");
    // Not processes.
    std::fs::create_dir(at("sys")).expect("mkdir");
    symlink("125", at("self")).expect("symlink");

    let scan = scan_processes(root.path(), 2);

    assert_eq!(scan.stats.processes, 4);
    let pids: Vec<u32> = scan.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [124, 125, 126]);
    assert_eq!(scan.stats.vanished, 2, "123 dropped, 124 kept as vanished");

    let lonely = &scan.processes[0];
    assert_eq!(lonely.comm, "lonely");
    assert_eq!(lonely.fd_scan, FdScan::Vanished);
    assert_eq!(
        (lonely.netns, lonely.fds, lonely.fd_limit),
        (None, None, None)
    );

    let whole = &scan.processes[1];
    assert_eq!((whole.comm.as_str(), whole.start_time), ("whole", Some(8)));
    assert_eq!(whole.fd_scan, FdScan::Complete);
    assert_eq!(
        whole.fds,
        Some(4),
        "outside procfs the count is the listing's"
    );
    let mut sockets = whole.socket_inodes.to_vec();
    sockets.sort_unstable();
    assert_eq!(sockets, [42, 43]);
    assert_eq!(
        whole.netns,
        Some(NsId::of(&rustix::fs::stat(at("125/ns/net")).expect("stat")))
    );
    assert_eq!(
        whole.fd_limit,
        Some(FdLimit {
            soft: Some(20000),
            hard: Some(20000)
        })
    );
    assert_eq!(scan.stats.socket_fds, 2);

    let odd = &scan.processes[2];
    assert_eq!(
        (odd.fd_scan, odd.fds, odd.fd_limit),
        (FdScan::Complete, Some(0), None)
    );
    assert!(
        matches!(
            scan.problems[..],
            [ScanProblem::Unread {
                file: "/proc/PID/limits",
                processes: 1,
                why: Unread::Limits(_),
            }]
        ),
        "{:?}",
        scan.problems
    );
}

#[test]
fn a_missing_proc_root_is_a_note() {
    let scan = scan_processes(Path::new("/nonexistent/proc"), 2);
    assert!(scan.processes.is_empty());
    assert_eq!(scan.stats, ProcessScanStats::default());
    assert_eq!(
        scan.problems,
        [ScanProblem::RootUnopened {
            root: PathBuf::from("/nonexistent/proc"),
            err: Errno::NOENT,
        }]
    );
}

#[test]
fn parallel_map_keeps_order_whatever_the_threads() {
    let items: Vec<u32> = (0..1000).collect();
    for threads in [1, 2, 7] {
        let squares = parallel_map(&items, threads, || (), |&n, ()| n * n);
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
    }
    assert!(parallel_map(&[] as &[u32], 4, || (), |&n, ()| n).is_empty());
}

/// How many sockets each holder process of [`benchmark_fd_walk`] opens.
const HOLD_ENV: &str = "SOCKSCOPE_TEST_HOLD_SOCKETS";

/// Not a test: the body of the holder processes [`benchmark_fd_walk`] starts (it re-runs
/// this test binary). Opens `$SOCKSCOPE_TEST_HOLD_SOCKETS` unix sockets, says `ready`, and
/// holds them until its stdin closes.
#[test]
#[ignore = "helper process of benchmark_fd_walk"]
fn hold_sockets() {
    let Some(count) = std::env::var(HOLD_ENV)
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return;
    };
    let pairs: Vec<_> = (0..count / 2)
        .map(|_| std::os::unix::net::UnixStream::pair().expect("socketpair"))
        .collect();
    println!("ready {}", pairs.len() * 2);
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
}

/// 100 processes holding 1,000 sockets each: time the walk, and `ss -tanp` for scale.
/// Run with `cargo test --release -- --ignored --nocapture benchmark_fd_walk`.
#[test]
#[ignore = "benchmark: starts 100 processes"]
fn benchmark_fd_walk() {
    const HOLDERS: usize = 100;
    const SOCKETS: usize = 1000;
    let exe = std::env::current_exe().expect("test binary");
    let spawned = Instant::now();
    let mut holders: Vec<Child> = (0..HOLDERS)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "collect::procs::tests::hold_sockets",
                    "--ignored",
                    "--nocapture",
                ])
                .args(["--test-threads", "1", "-q"])
                .env(HOLD_ENV, SOCKETS.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn holder")
        })
        .collect();
    // Kept open to the end: a holder must not die of a closed stdout.
    let mut outputs = Vec::new();
    for holder in &mut holders {
        let mut out = BufReader::new(holder.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        while out.read_line(&mut line).is_ok_and(|n| n > 0) && !line.starts_with("ready") {
            line.clear();
        }
        assert!(
            line.starts_with("ready"),
            "holder {} did not get ready",
            holder.id()
        );
        outputs.push(out);
    }
    let holder_pids: Vec<u32> = holders.iter().map(Child::id).collect();

    println!(
        "{HOLDERS} holders ready after {:.1} s",
        spawned.elapsed().as_secs_f64()
    );
    for threads in [1, 2, 4] {
        let mut best = Duration::MAX;
        let mut scan = ProcessScan::default();
        for _ in 0..5 {
            let started = Instant::now();
            scan = scan_processes(Path::new("/proc"), threads);
            best = best.min(started.elapsed());
        }
        let held: u64 = holder_pids
            .iter()
            .map(|&pid| find(&scan, pid).map_or(0, |p| p.socket_inodes.len() as u64))
            .sum();
        assert_eq!(held, (HOLDERS * SOCKETS) as u64);
        let fds: u64 = scan.processes.iter().filter_map(|p| p.fds).sum();
        #[allow(clippy::cast_precision_loss)]
        let rate = fds as f64 / best.as_secs_f64();
        println!(
            "walk, {threads} thread(s): {} processes, {fds} descriptors ({} sockets) in {:.1} ms: \
             {:.2} M readlinks/s",
            scan.stats.processes,
            scan.stats.socket_fds,
            best.as_secs_f64() * 1e3,
            rate / 1e6,
        );
    }
    for args in [&["-tanp"][..], &["-xanp"][..]] {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let Ok(out) = Command::new("ss").args(args).stdout(Stdio::null()).status() else {
                println!("ss not found");
                break;
            };
            assert!(out.success());
            best = best.min(started.elapsed());
        }
        println!("ss {}: {:.1} ms", args.join(" "), best.as_secs_f64() * 1e3);
    }

    for holder in &mut holders {
        drop(holder.stdin.take());
    }
    for holder in &mut holders {
        let _ = holder.wait();
    }
    drop(outputs);
    let _ = std::io::stdout().flush();
}

/// A process holding more descriptors than one thread reads (`SPLIT_WALK_AT`): its links are
/// read by two, and every socket is still found once per descriptor.
#[test]
fn a_process_with_many_descriptors_is_read_by_two_threads_and_whole() {
    let _guard = own_fds_lock();
    let pairs = SPLIT_WALK_AT / 2 + 100;
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let want = (pairs * 2 + 256) as u64;
    if nofile.current.is_none_or(|soft| soft < want) {
        let raised = rustix::process::Rlimit {
            current: Some(want),
            maximum: nofile.maximum,
        };
        if let Err(err) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
            crate::testing::skip_or_fail(
                "a_process_with_many_descriptors_is_read_by_two_threads_and_whole",
                &format!("cannot raise the open-files limit to {want}: {err}"),
            );
            return;
        }
    }
    let held: Vec<_> = (0..pairs)
        .map(|_| std::os::unix::net::UnixStream::pair().expect("socketpair"))
        .collect();
    let mut expected: Vec<u64> = held
        .iter()
        .flat_map(|(a, b)| [inode(a), inode(b)])
        .collect();
    expected.sort_unstable();

    let root = Root::open(Path::new("/proc")).expect("open /proc");
    let walk = root.walk_fds(std::process::id(), &mut Scratch::new());
    assert_eq!(walk.scan, FdScan::Complete);
    assert!(
        walk.listed >= expected.len() as u64,
        "listed {}",
        walk.listed
    );
    let mut found = walk.socket_inodes.clone();
    found.sort_unstable();
    let missing: Vec<u64> = expected
        .iter()
        .filter(|i| found.binary_search(i).is_err())
        .copied()
        .collect();
    assert!(missing.is_empty(), "{} sockets not found", missing.len());
    found.dedup();
    assert_eq!(
        found.len(),
        walk.socket_inodes.len(),
        "no socket read twice (each pair end has one descriptor)"
    );
    drop(held);
    rustix::process::setrlimit(rustix::process::Resource::Nofile, nofile).ok();
}

#[test]
fn descriptor_names_are_decimal_numbers() {
    assert_eq!(parse_fd_name(c"0"), Some(0));
    assert_eq!(parse_fd_name(c"4294967295"), Some(u32::MAX));
    assert_eq!(parse_fd_name(c"4294967296"), None);
    assert_eq!(parse_fd_name(c"."), None);
    assert_eq!(parse_fd_name(c".."), None);
    assert_eq!(parse_fd_name(c""), None);
    assert_eq!(parse_fd_name(c"12a"), None);
}
