//! `--owners`: the BPF iterator and the /proc walk name the same owners.
//!
//! Issue #28, "owners at the kernel's speed": on one state — listeners, a CLOSE_WAIT leak, a
//! process with thousands of descriptors (duplicates of one socket among them), threads (one
//! with a descriptor table of its own), a forked child sharing a listener, a process that
//! moved to another namespace still holding a listener of this one — both sources give
//! identical owners for every socket and identical descriptor counts, scoped to one
//! namespace and with `--all-netns`. Where the iterator cannot load (as nobody, or as root
//! without CAP_BPF and CAP_SYS_ADMIN), `auto` reads /proc and says so, and `bpf` fails with
//! one line.
//!
//! These tests need root, two namespaces and the system's Python; without them they fail
//! with the reason (unless `SOCKSCOPE_ALLOW_SKIP=1`).

use std::process::Output;

use crate::util::netns::{Netns, netns_or_skip};
use crate::util::python;
use crate::util::report::{self, Report};
use crate::util::{cannot_run_as_nobody, sockscope, sockscope_bin, stdout_of};

/// The state: a listener shared with a forked child, a leak of CLOSE_WAIT sockets, 1,000
/// socket pairs, 500 duplicates of the listener, 300 files, four threads (one unshares its
/// descriptor table and listens there: /proc/PID/fd, the leader's table, does not show it).
const STATE: &str = r#"
import ctypes, json, os, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
out = {"pid": os.getpid()}
shared = socket.socket()
shared.bind(("127.0.0.1", 0))
shared.listen(16)
out["shared"] = shared.getsockname()[1]
leak = socket.socket()
leak.bind(("127.0.0.1", 0))
leak.listen(64)
clients = [socket.create_connection(leak.getsockname()) for _ in range(20)]
accepted = [leak.accept()[0] for _ in range(20)]
for c in clients:
    c.close()
out["leak"] = leak.getsockname()[1]
pairs = [socket.socketpair(socket.AF_UNIX) for _ in range(1000)]
dups = [os.dup(shared.fileno()) for _ in range(500)]
files = [os.open("/dev/null", os.O_RDONLY) for _ in range(300)]
ready = threading.Event()
def private():
    if libc.unshare(0x400) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_FILES)")
    own = socket.socket()
    own.bind(("127.0.0.1", 0))
    own.listen(4)
    out["private"] = own.getsockname()[1]
    ready.set()
    threading.Event().wait()
threads = [threading.Thread(target=private, daemon=True)]
threads += [threading.Thread(target=threading.Event().wait, daemon=True) for _ in range(3)]
for t in threads:
    t.start()
ready.wait()
child = os.fork()
if child == 0:
    sys.stdin.read()
    os._exit(0)
out["child"] = child
print(json.dumps(out), flush=True)
sys.stdin.read()
os.waitpid(child, 0)
"#;

fn report(args: &[&str]) -> Report {
    let mut all = vec!["report", "--json", "--samples", "1"];
    all.extend_from_slice(args);
    report::parse(&stdout_of(&all.join(" "), &sockscope(&all)))
}

/// What the two sources must agree on in namespace `id` of `report`: each listener's
/// owners, and each process's descriptor and socket counts.
#[derive(Debug, PartialEq)]
struct Owned {
    listeners: Vec<(String, String, Owners)>,
    processes: Vec<(u32, String, Option<u64>, u64, u64, u64)>,
}

/// (pid, comm) of each owner, sorted.
type Owners = Vec<(u32, String)>;

fn owned(report: &Report, id: u64) -> Owned {
    let id = id.to_string();
    let ns = report
        .netns
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("namespace {id} in the report"));
    let mut listeners: Vec<_> = ns
        .listeners
        .iter()
        .map(|l| {
            let mut owners: Vec<(u32, String)> =
                l.owners.iter().map(|o| (o.pid, o.comm.clone())).collect();
            owners.sort();
            (l.proto.clone(), l.local.clone(), owners)
        })
        .collect();
    listeners.sort();
    let mut processes: Vec<_> = ns
        .processes
        .iter()
        .map(|p| {
            (
                p.pid,
                p.comm.clone(),
                p.fds,
                p.tcp_sockets,
                p.unix_sockets,
                p.close_wait,
            )
        })
        .collect();
    processes.sort();
    Owned {
        listeners,
        processes,
    }
}

fn note_of(report: &Report, start: &str) -> String {
    report
        .privileges
        .notes
        .iter()
        .find(|n| n.starts_with(start))
        .unwrap_or_else(|| panic!("a note {start:?}: {:?}", report.privileges.notes))
        .clone()
}

fn two_or_skip(test: &str) -> Option<(Netns, Netns)> {
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return None;
    }
    Some((netns_or_skip(test)?, netns_or_skip(test)?))
}

#[test]
fn the_iterator_and_the_proc_walk_name_the_same_owners() {
    let test = "the_iterator_and_the_proc_walk_name_the_same_owners";
    let Some((a, b)) = two_or_skip(test) else {
        return;
    };
    let state = python::run_in(&a, STATE, &[]);
    let mover = python::run_in(&a, python::LISTEN_THEN_MOVE, &[&b.path()]);
    let path = a.path();

    for scope in [&["--netns", path.as_str()][..], &["--all-netns"][..]] {
        let walked = report(&[scope, &["--owners", "proc"]].concat());
        let iterated = report(&[scope, &["--owners", "bpf"]].concat());
        let (walked_owned, iterated_owned) = (owned(&walked, a.id()), owned(&iterated, a.id()));
        assert_eq!(walked_owned, iterated_owned, "{scope:?}");

        // And they are the right owners.
        let owners_of = |port: &serde_json::Value| {
            let local = format!("127.0.0.1:{port}");
            iterated_owned
                .listeners
                .iter()
                .find(|(_, l, _)| *l == local)
                .map_or_else(
                    || panic!("listener {local}"),
                    |(_, _, owners)| owners.iter().map(|(pid, _)| *pid).collect::<Vec<_>>(),
                )
        };
        let child = u32::try_from(state.ready["child"].as_u64().expect("child")).expect("pid");
        let mut parent_and_child = vec![state.pid(), child];
        parent_and_child.sort_unstable();
        assert_eq!(owners_of(&state.ready["shared"]), parent_and_child);
        assert_eq!(owners_of(&state.ready["leak"]), [state.pid(), child]);
        assert_eq!(owners_of(&mover.ready["port"]), [mover.pid()]);
        assert!(
            owners_of(&state.ready["private"]).is_empty(),
            "a thread's own table is not /proc/PID/fd's"
        );
        let p = iterated_owned
            .processes
            .iter()
            .find(|p| p.0 == state.pid())
            .expect("the state's process");
        assert!(p.2.is_some_and(|fds| fds >= 2800), "{p:?}");
        assert_eq!(p.5, 20, "CLOSE_WAIT sockets: {p:?}");

        assert!(note_of(&walked, "socket owners read by the /proc walk").contains("--owners proc"));
        note_of(&iterated, "socket owners read by the BPF iterator");
    }
    drop((state, mover));
}

/// `setpriv ARGS -- sockscope report --json --samples 1 --owners OWNERS`, in `ns`.
fn dropped(ns: &Netns, setpriv: &[&str], owners: &str) -> Output {
    ns.command("setpriv")
        .args(setpriv)
        .arg("--")
        .arg(sockscope_bin())
        .args(["report", "--json", "--samples", "1", "--owners", owners])
        .output()
        .expect("running setpriv")
}

#[test]
fn where_the_iterator_cannot_load_auto_walks_proc_and_bpf_fails_in_one_line() {
    let test = "where_the_iterator_cannot_load_auto_walks_proc_and_bpf_fails_in_one_line";
    if let Some(reason) = cannot_run_as_nobody() {
        sockscope::testing::skip_or_fail(test, &format!("cannot run as nobody: {reason}"));
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let nobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];
    // Root without the capabilities that allow BPF (CAP_SYS_ADMIN allows it too).
    let capless = ["--bounding-set", "-bpf,-sys_admin,-perfmon"];
    for setpriv in [&nobody[..], &capless[..]] {
        let auto = dropped(&ns, setpriv, "auto");
        let report = report::parse(&stdout_of("report --owners auto", &auto));
        let note = note_of(&report, "socket owners read by the /proc walk");
        assert!(
            note.contains("not permitted to load the BPF iterator")
                && note.contains("CAP_BPF with CAP_PERFMON"),
            "{setpriv:?}: {note}"
        );
        let bpf = dropped(&ns, setpriv, "bpf");
        assert_eq!(bpf.status.code(), Some(1), "{setpriv:?}");
        let stderr = String::from_utf8_lossy(&bpf.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--owners bpf: not permitted"),
            "{setpriv:?}: {stderr}"
        );
        assert!(bpf.stdout.is_empty());
    }
}

/// Run in a pid namespace of its own (and a network namespace), the iterator names each
/// process by its pid there, as /proc mounted there does.
#[test]
fn in_a_pid_namespace_the_iterator_names_the_pids_seen_there() {
    let test = "in_a_pid_namespace_the_iterator_names_the_pids_seen_there";
    if !python::available() {
        sockscope::testing::skip_or_fail(test, "`/usr/bin/python3` is not installed");
        return;
    }
    // The listener's holder runs both reports itself, so that it holds it until both end.
    let holder = format!(
        "import socket, subprocess, sys\n\
         s = socket.socket()\n\
         s.bind((\"127.0.0.1\", 7777))\n\
         s.listen()\n\
         for owners in (\"bpf\", \"proc\"):\n    \
             argv = [{bin:?}, \"report\", \"--json\", \"--samples\", \"1\", \"--owners\", owners]\n    \
             sys.stdout.write(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)\n",
        bin = sockscope_bin().display().to_string()
    );
    let script = format!("ip link set lo up && {} -c \"$0\"", python::PYTHON);
    let out = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--net",
            "--",
            "sh",
            "-c",
            &script,
            &holder,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || stdout.trim().is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        sockscope::testing::skip_or_fail(test, &format!("no pid namespace here: {stderr}"));
        return;
    }
    let reports: Vec<Report> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|doc| report::parse(&doc.expect("a JSON report").to_string()))
        .collect();
    let [iterated, walked] = &reports[..] else {
        panic!("two reports: {stdout}");
    };
    let owners = |r: &Report| -> Owners {
        r.only_netns()
            .listener("tcp", "127.0.0.1:7777")
            .owners
            .iter()
            .map(|o| (o.pid, o.comm.clone()))
            .collect()
    };
    assert_eq!(owners(iterated), owners(walked));
    let [(pid, comm)] = &owners(iterated)[..] else {
        panic!("one owner: {:?}", owners(iterated));
    };
    assert_eq!(comm, "python3");
    assert!(*pid < 100, "pid {pid} is the namespace's, not the host's");
    note_of(iterated, "socket owners read by the BPF iterator");
}

/// A report of a namespace of few processes, beside a process of the host holding 4,000
/// descriptors: `auto` walks /proc (a few readlinks) instead of running the iterator over
/// every descriptor of the host, and says so; `bpf` runs the iterator as asked.
#[test]
fn auto_walks_a_namespace_of_few_descriptors_beside_a_busy_host() {
    let test = "auto_walks_a_namespace_of_few_descriptors_beside_a_busy_host";
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    // This test's own process is the busy neighbour: it is not in the namespace.
    let files: Vec<std::fs::File> = (0..4000)
        .map(|_| std::fs::File::open("/dev/null").expect("opening /dev/null"))
        .collect();
    let auto = ns.report_with(&["--samples", "1", "--owners", "auto"]);
    note_of(
        &auto,
        "socket owners read by the /proc walk: the processes in scope hold so few",
    );
    let bpf = ns.report_with(&["--samples", "1", "--owners", "bpf"]);
    note_of(&bpf, "socket owners read by the BPF iterator");
    drop(files);
}
