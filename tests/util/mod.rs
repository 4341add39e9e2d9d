//! Test support: private network namespaces with lab scenarios in them ([`netns`]), SYNs at a
//! steady pace into one ([`flood`]), the `ss` and `nstat` oracles ([`oracle`]), the test's own
//! view of the JSON report ([`report`]), a parser for the monitoring-plugins output of
//! `check` ([`plugin`]), scratch directories ([`scratch`]) and a real terminal for the
//! dashboard ([`tmux`]).

pub mod flood;
pub mod netns;
pub mod oracle;
pub mod plugin;
pub mod python;
pub mod report;
pub mod scratch;
pub mod servers;
pub mod tmux;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sockscope::testing::skip_or_fail;

/// The binary under test.
pub fn sockscope_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sockscope"))
}

/// The lab example next to it: `cargo test` builds examples into `<profile>/examples/`.
pub fn lab_bin() -> PathBuf {
    let dir = sockscope_bin()
        .parent()
        .expect("the binary has a directory");
    let lab = dir.join("examples").join("lab");
    assert!(
        lab.exists(),
        "{} is missing: run the tests with `cargo test` (which builds the examples) or \
         `cargo build --examples` first",
        lab.display()
    );
    lab
}

/// A fixture file's contents without its leading `# ...` provenance lines.
pub fn fixture(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
    let mut body = String::new();
    for line in text.lines().skip_while(|line| line.starts_with("# ")) {
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// stdout of a finished command, panicking with everything it said if it failed.
pub fn stdout_of(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

/// Whether `tool` is an executable file somewhere on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Run sockscope in the test's own namespace (for what needs no kernel state: usage errors,
/// replays), with backtraces asked for so that a panic would show.
pub fn sockscope<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(sockscope_bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running sockscope")
}

/// Why this process cannot run the binary as nobody (user and group 65534), if it cannot: it
/// must be root, `setpriv` must be there, and nobody must be able to reach the binary.
pub fn cannot_run_as_nobody() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        Some("not root, so it cannot switch to another user".to_owned())
    } else if !on_path("setpriv") {
        Some("`setpriv` is not installed (Debian package util-linux)".to_owned())
    } else if !world_can_reach(sockscope_bin()) {
        Some(format!(
            "{} is not reachable by other users",
            sockscope_bin().display()
        ))
    } else {
        None
    }
}

/// Every directory above `path` is searchable by others and `path` is executable by them.
fn world_can_reach(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.permissions().mode());
    mode(path) & 0o001 != 0 && path.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0)
}

/// Like [`sockscope`], but never as root: what needs no privilege must work without it. As
/// root, it runs as user and group 65534 through `setpriv`; where it cannot, `test` fails with
/// the reason (or, with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns `None`). Without
/// root the tests already run unprivileged and it is [`sockscope`].
pub fn sockscope_unprivileged<S: AsRef<OsStr>>(test: &str, args: &[S]) -> Option<Output> {
    if !rustix::process::geteuid().is_root() {
        return Some(sockscope(args));
    }
    if let Some(reason) = cannot_run_as_nobody() {
        skip_or_fail(
            test,
            &format!("cannot drop root's privileges to run sockscope: {reason}"),
        );
        return None;
    }
    let output = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(sockscope_bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running sockscope through setpriv");
    Some(output)
}

/// What a panic (or the panic hook's last resort) leaves on stderr.
pub fn looks_like_panic(stderr: &str) -> bool {
    let lower = stderr.to_lowercase();
    ["panicked", "backtrace", "internal error", "thread 'main'"]
        .iter()
        .any(|sign| lower.contains(sign))
}

/// Whether `text` holds `pid` as a number of its own (not inside a longer one, such as a port).
pub fn names_pid(text: &str, pid: u32) -> bool {
    let pid = pid.to_string();
    text.split(|c: char| !c.is_ascii_digit())
        .any(|word| word == pid)
}

/// Call `probe` until it returns something, for at most `limit`; panics naming `what` when
/// it never does. For kernel state that arrives on the kernel's schedule, not the test's.
pub fn poll<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {attempts} attempts in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
