//! Small scenario programs in Python, run inside a test's namespace: for states that need a
//! few lines of socket code and `nft` rules at the right moments (a lost final ACK, a held
//! FIN), where a lab scenario would be a module of its own.
//!
//! A program prints one JSON line when its state is ready (with `"pid"`), then holds it until
//! its stdin closes. It is stopped on drop: end of input first, then by its pid.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use super::netns::Netns;

/// The system's Python: the one `nobody` can run too (a per-user install may not be).
pub const PYTHON: &str = "/usr/bin/python3";

pub struct Program {
    child: Child,
    stdin: Option<ChildStdin>,
    pub ready: serde_json::Value,
}

/// `count` non-blocking connects to `host port`, all issued at once as an application's pool
/// opens them; ready (with its pid) once every connect was issued, then held until stdin
/// closes. With a fourth argument, each connection sends that text once connected (`PING`
/// to Redis, say).
pub const CONNECTS: &str = r#"
import json, os, select, socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = sys.argv[4].encode() if len(sys.argv) > 4 else None
socks = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, port))
    socks.append(s)
print(json.dumps({"pid": os.getpid()}), flush=True)
pending = set(socks) if payload else set()
while True:
    readable, writable, _ = select.select([sys.stdin], list(pending), [], 1.0)
    if readable and not sys.stdin.read(1):
        break
    for s in writable:
        try:
            s.send(payload)
        except OSError:
            pass
        pending.discard(s)
"#;

/// Whether the system's Python is there; the caller skips (or fails) through the one helper.
pub fn available() -> bool {
    std::path::Path::new(PYTHON).exists()
}

/// Run the Python program `source` inside `ns` with these arguments, and wait for its ready
/// line.
pub fn run_in(ns: &Netns, source: &str, args: &[&str]) -> Program {
    let mut command = ns.command(PYTHON);
    command.arg("-c").arg(source).args(args);
    Program::start(command, "the scenario program")
}

impl Program {
    /// Start `command` (a Python interpreter, with its arguments) and wait for its ready line.
    pub fn start(mut command: Command, what: &str) -> Program {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdin = child.stdin.take();
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let ready = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("{what} did not start: {line:?} ({e}; {:?})", child.wait())
        });
        Program {
            child,
            stdin,
            ready,
        }
    }

    pub fn pid(&self) -> u32 {
        let pid = self.ready["pid"].as_u64().expect("a pid in the ready line");
        u32::try_from(pid).expect("a pid fits u32")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.stdin = None;
        let stopped = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Holds a TCP listener made in the namespace it starts in; with a namespace's path as its
/// argument (not `-`), then moves into that namespace (setns), the listener staying where it
/// was made.
pub const LISTEN_THEN_MOVE: &str = r#"
import ctypes, json, os, socket, sys
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(8)
if sys.argv[1] != "-":
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(sys.argv[1], os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
print(json.dumps({"pid": os.getpid(), "port": listener.getsockname()[1]}), flush=True)
sys.stdin.read()
"#;
