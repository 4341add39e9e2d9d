//! A private network namespace for one test, with lab scenarios running inside it.
//!
//! The namespace is held by a `sleep` started through `unshare --net` (as root) or
//! `unshare --map-root-user --net` (otherwise); everything else enters it with `nsenter`.
//! On drop, every lab gets end of file on its stdin (it then stops its own children), and
//! whatever is still running is killed by the pid this helper started. Nothing is ever
//! killed by name.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockscope::testing::skip_or_fail;

use super::report::{self, Report};
use super::{lab_bin, on_path, oracle, sockscope_bin, stdout_of};

/// How long [`Netns::report_until`] waits for the state a test set up to show in a report.
const REPORT_SETTLE: Duration = Duration::from_secs(30);
/// How long a lab scenario may take to report ready.
const LAB_READY: Duration = Duration::from_secs(60);
/// The lab gives up (and says what it was waiting for) a little before we do.
const LAB_OWN_TIMEOUT_S: &str = "50";

/// A namespace for `test`; where none can be made, the test fails with the reason (or, with
/// `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns `None`).
pub fn netns_or_skip(test: &str) -> Option<Netns> {
    match Netns::new() {
        Ok(ns) => Some(ns),
        Err(reason) => {
            skip_or_fail(test, &format!("cannot make a network namespace: {reason}"));
            None
        }
    }
}

pub struct Netns {
    holder: Child,
    /// `nsenter ... --`: the prefix that runs a command inside the namespace.
    enter: Vec<OsString>,
    labs: Vec<RunningLab>,
}

struct RunningLab {
    what: String,
    child: Child,
    /// Closing it tells the lab to stop.
    stdin: Option<ChildStdin>,
}

/// A lab scenario's ready line.
#[derive(Debug, Clone)]
pub struct Ready {
    pub json: serde_json::Value,
}

impl Ready {
    /// The pid of the lab's process playing `role` (its comm name).
    pub fn pid(&self, role: &str) -> u32 {
        let pid = self.json["pids"][role].as_u64();
        let pid = pid.unwrap_or_else(|| panic!("no pid for role {role} in {}", self.json));
        u32::try_from(pid).expect("pid fits u32")
    }
}

impl Netns {
    pub fn new() -> Result<Netns, String> {
        for tool in ["unshare", "nsenter", "ip", "ss", "nstat"] {
            if !on_path(tool) {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let root = rustix::process::geteuid().is_root();
        let mut unshare = Command::new("unshare");
        if root {
            unshare.args(["--net", "--"]);
        } else {
            unshare.args(["--map-root-user", "--net", "--"]);
        }
        let mut holder = unshare
            .args([
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep infinity",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "up" {
            let _ = holder.kill();
            let _ = holder.wait();
            let mut err = String::new();
            if let Some(mut stderr) = holder.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            return Err(format!(
                "unshare could not make a namespace: {}",
                err.trim()
            ));
        }
        let pid = holder.id().to_string();
        let enter: Vec<OsString> = if root {
            vec![
                "nsenter".into(),
                format!("--net=/proc/{pid}/ns/net").into(),
                "--".into(),
            ]
        } else {
            [
                "nsenter",
                "-U",
                "-n",
                "--preserve-credentials",
                "-t",
                &pid,
                "--",
            ]
            .iter()
            .map(OsString::from)
            .collect()
        };
        let ns = Netns {
            holder,
            enter,
            labs: Vec::new(),
        };
        let probe = ns
            .command("true")
            .output()
            .map_err(|e| format!("cannot run nsenter: {e}"))?;
        if !probe.status.success() {
            return Err(format!(
                "nsenter cannot enter the namespace: {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        Ok(ns)
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(&self.enter[0]);
        cmd.args(&self.enter[1..]).arg(program);
        cmd
    }

    /// Run `program args` inside the namespace and return its stdout; panics if it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        stdout_of(&format!("{program} {}", args.join(" ")), &output)
    }

    pub fn ss(&self, args: &[&str]) -> String {
        self.run("ss", args)
    }

    /// Absolute counters, as `nstat -asz` prints them (no history file is touched).
    pub fn nstat(&self) -> BTreeMap<String, u64> {
        oracle::parse_nstat(&self.run("nstat", &["-asz"])).expect("nstat output parses")
    }

    /// Run sockscope inside the namespace.
    pub fn sockscope(&self, args: &[&str]) -> Output {
        self.command(sockscope_bin())
            .args(args)
            .output()
            .expect("running sockscope")
    }

    /// `sockscope report --json --samples 1`, parsed.
    pub fn report(&self) -> Report {
        self.report_with(&["--samples", "1"])
    }

    /// `sockscope report --json ARGS`, parsed.
    pub fn report_with(&self, args: &[&str]) -> Report {
        let mut all = vec!["report", "--json"];
        all.extend_from_slice(args);
        let what = format!("sockscope {}", all.join(" "));
        report::parse(&stdout_of(&what, &self.sockscope(&all)))
    }

    /// `sockscope report --json ARGS`, again and again until `check` holds of one (for state
    /// that arrives on the kernel's schedule), for at most [`REPORT_SETTLE`]; panics naming
    /// `what` when none does.
    pub fn report_until(
        &self,
        args: &[&str],
        what: &str,
        check: impl Fn(&Report) -> bool,
    ) -> Report {
        super::poll(what, REPORT_SETTLE, || {
            let report = self.report_with(args);
            check(&report).then_some(report)
        })
    }

    /// Start `lab ARGS` inside the namespace and wait for its ready line.
    pub fn lab(&mut self, args: &[&str]) -> Ready {
        let what = format!("lab {}", args.join(" "));
        let (child, stdin, ready) = start_lab(self.command(lab_bin()), args, &what);
        self.labs.push(RunningLab { what, child, stdin });
        ready
    }
}

impl Netns {
    /// The pid of the process holding the namespace (`/proc/PID/ns/net` names it).
    pub fn holder_pid(&self) -> u32 {
        self.holder.id()
    }

    /// The namespace's file, to enter it with setns(2).
    pub fn file(&self) -> std::io::Result<std::fs::File> {
        std::fs::File::open(self.path())
    }

    /// A path naming the namespace: for `--netns PATH`, or a program's setns(2).
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// The id a report gives the namespace: the inode of its file.
    pub fn id(&self) -> u64 {
        rustix::fs::stat(self.path().as_str())
            .expect("stat the namespace's file")
            .st_ino
    }

    /// Close every lab's stdin and wait for each to exit; returns how each one ended.
    pub fn stop_labs(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut ended = Vec::new();
        for mut lab in self.labs.drain(..) {
            lab.stdin = None;
            wait_or_kill(&mut lab.child, Duration::from_secs(10));
            let status = lab.child.wait().expect("reaping the lab");
            ended.push((lab.what, status));
        }
        ended
    }
}

/// Wait for `child` to exit, up to `limit`; then kill it (by its pid) and reap it.
fn wait_or_kill(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Drop for Netns {
    fn drop(&mut self) {
        for lab in &mut self.labs {
            lab.stdin = None;
        }
        for lab in &mut self.labs {
            if !wait_or_kill(&mut lab.child, Duration::from_secs(10)) {
                eprintln!("{} did not stop on end of input; killed it", lab.what);
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Run `command` (the lab binary, in whatever namespace the command enters) with `args`, and
/// wait for its ready line: the child, its stdin (closing it stops the lab), the line. Panics
/// with the lab's stderr when it exits, says something else, or is not ready in time.
pub fn start_lab(
    mut command: Command,
    args: &[&str],
    what: &str,
) -> (Child, Option<ChildStdin>, Ready) {
    let mut child = command
        .args(["--ready-timeout", LAB_OWN_TIMEOUT_S])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    // The lab's children share its stderr, so it closes only when they are all gone.
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });
    let stderr_text = |child: &mut Child| {
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let text = err_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        format!("({status}); its stderr:\n{text}")
    };
    let line = match line_rx.recv_timeout(LAB_READY) {
        Ok(line) if !line.trim().is_empty() => line,
        Ok(_) => panic!(
            "{what} exited before it was ready {}",
            stderr_text(&mut child)
        ),
        Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => panic!(
            "{what} was not ready within {LAB_READY:?} {}",
            stderr_text(&mut child)
        ),
    };
    let json: serde_json::Value = match serde_json::from_str(&line) {
        Ok(json) => json,
        Err(e) => panic!(
            "{what} printed {line:?}, not a ready line ({e}) {}",
            stderr_text(&mut child)
        ),
    };
    if json["ready"] != serde_json::Value::Bool(true) {
        let why = stderr_text(&mut child);
        panic!("{what} printed {line:?}, not a ready line {why}");
    }
    (child, stdin, Ready { json })
}
