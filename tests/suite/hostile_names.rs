//! Names any user controls never reach the operator's terminal raw (the terminal-escape
//! issue): an unprivileged process names itself with a screen clear, a window title, a bell,
//! a line break and a right-to-left override, binds unix listeners whose paths carry colours
//! and a forged line, and leaks CLOSE_WAIT sockets. `report`, `check`, `/metrics` and the
//! dashboard must name it by pid with its escaped name and write none of those bytes.

use std::time::Duration;

use sockscope::testing::skip_or_fail;

use super::serve::client::Serve;
use crate::util::netns::{Netns, netns_or_skip};
use crate::util::python::{self, PYTHON, Program};
use crate::util::tmux::{Tmux, shell_quote};
use crate::util::{poll, sockscope_bin, stdout_of};

/// How the hostile comm reads once escaped: `ESC [2J ESC ]0;x BEL LF X U+202E`, 15 bytes.
const COMM_SHOWN: &str = r"\e[2J\e]0;x\x07\nX\u{202e}";
/// How the abstract unix path reads once escaped (its last byte, 0xff, is not UTF-8; the
/// model holds U+FFFD for it, as JSON must).
const PATH_SHOWN: &str = r"@hostile \e[31m\n\rFAKE LINE";
const LEAKED: usize = 60;
const PORT: u16 = 5070;

/// The hostile process, in Python: it names itself through /proc/self/comm, listens on two
/// unix paths with two connections queued on each (backlog 1: both listeners are full, so a
/// finding names each path), and accepts 60 connections whose clients then close. It prints
/// its pid and holds until its stdin closes.
const HOSTILE: &str = r#"
import json, os, shutil, socket, sys, tempfile
with open("/proc/self/comm", "wb") as f:
    f.write(b"\x1b[2J\x1b]0;x\x07\nX\xe2\x80\xae")
held = []
home = tempfile.mkdtemp()
for path in [b"\0hostile \x1b[31m\n\rFAKE LINE\xff",
             os.path.join(home.encode(), b"evil\x1b]0;t\x07\n.sock")]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    held.append(server)
    for _ in range(2):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setblocking(False)
        client.connect(path)
        held.append(client)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(128)
for _ in range(int(sys.argv[2])):
    client = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    accepted, _ = server.accept()
    held.append(accepted)
    client.close()
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
shutil.rmtree(home)
"#;

/// Start the hostile program as nobody (when the tests run as root) inside `ns`.
fn start_hostile(ns: &Netns) -> Program {
    let mut command = if rustix::process::geteuid().is_root() {
        let mut c = ns.command("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(PYTHON);
        c
    } else {
        ns.command(PYTHON)
    };
    command.args(["-c", HOSTILE, &PORT.to_string(), &LEAKED.to_string()]);
    Program::start(command, "the hostile process")
}

/// A namespace with the hostile process in it, its 60 sockets in CLOSE_WAIT.
fn hostile_or_skip(test: &str) -> Option<(Netns, Program)> {
    if !python::available() {
        skip_or_fail(
            test,
            "`/usr/bin/python3` is not installed (Debian package python3)",
        );
        return None;
    }
    let ns = netns_or_skip(test)?;
    let hostile = start_hostile(&ns);
    poll(
        "the leaked sockets in CLOSE_WAIT",
        Duration::from_secs(10),
        || {
            let out = ns.ss(&["-tanH", "state", "close-wait"]);
            (out.lines().count() == LEAKED).then_some(())
        },
    );
    Some((ns, hostile))
}

/// A bidirectional override, isolate or mark.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Panics when `text` holds a control character other than the line feeds that end its
/// lines, or a bidirectional control.
fn assert_no_raw_controls(what: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.chars().find(|&c| c.is_control() || is_bidi(c)) {
            panic!("{what}, line {}: raw {c:?} in {line:?}", i + 1);
        }
    }
}

#[test]
fn the_report_shows_hostile_names_escaped_and_forges_no_line() {
    let test = "the_report_shows_hostile_names_escaped_and_forges_no_line";
    let Some((ns, hostile)) = hostile_or_skip(test) else {
        return;
    };
    let out = ns.sockscope(&["report", "--samples", "1"]);
    let report = stdout_of("sockscope report", &out);
    assert_no_raw_controls("report", &report);
    assert!(
        report.contains(&format!("process {COMM_SHOWN} (pid {})", hostile.pid())),
        "the leak is named by its escaped comm and pid:\n{report}"
    );
    assert!(report.contains(PATH_SHOWN), "{report}");
    assert!(report.contains(r"evil\e]0;t\x07\n.sock"), "{report}");
    assert!(
        !report
            .lines()
            .any(|l| l.trim_start().starts_with("FAKE LINE")),
        "a name forged a line:\n{report}"
    );

    // JSON keeps the names exact (serde escapes them for JSON).
    let json = ns.report();
    let comm = json.netns[0]
        .processes
        .iter()
        .find(|p| p.pid == hostile.pid())
        .map(|p| p.comm.clone());
    assert_eq!(comm.as_deref(), Some("\u{1b}[2J\u{1b}]0;x\u{7}\nX\u{202e}"));
}

#[test]
fn check_keeps_one_status_line_with_hostile_names() {
    let test = "check_keeps_one_status_line_with_hostile_names";
    let Some((ns, hostile)) = hostile_or_skip(test) else {
        return;
    };
    let out = ns.sockscope(&["check", "--samples", "1"]);
    let output = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert_eq!(out.status.code(), Some(2), "two full listeners:\n{output}");
    assert_no_raw_controls("check", &output);
    let mut lines = output.lines();
    let status = lines.next().unwrap_or_default();
    assert!(status.starts_with("SOCKSCOPE CRITICAL - "), "{output}");
    // The long output: one line per finding, each opening with its severity.
    for line in lines {
        assert!(
            ["CRITICAL ", "WARNING ", "INFO "]
                .iter()
                .any(|s| line.starts_with(s)),
            "a line of the long output that is not a finding's: {line:?}\n{output}"
        );
    }
    assert!(
        output.contains(&format!("process {COMM_SHOWN} (pid {})", hostile.pid())),
        "{output}"
    );
}

#[test]
fn metrics_label_values_hold_no_raw_controls() {
    let test = "metrics_label_values_hold_no_raw_controls";
    let Some((ns, hostile)) = hostile_or_skip(test) else {
        return;
    };
    let Some(serve) = Serve::start(&ns, test, &["--interval", "200ms"]) else {
        return;
    };
    // Escaped for a terminal, then for the exposition format (each backslash doubled).
    let label = format!(
        "pid=\"{}\",comm=\"{}\"",
        hostile.pid(),
        COMM_SHOWN.replace('\\', "\\\\")
    );
    let body = poll(
        "the hostile process in /metrics",
        Duration::from_secs(10),
        || {
            let reply = serve.get("/metrics");
            reply.body.contains(&label).then_some(reply.body)
        },
    );
    assert_no_raw_controls("/metrics", &body);
}

#[test]
fn the_dashboard_shows_hostile_names_escaped() {
    let test = "the_dashboard_shows_hostile_names_escaped";
    if !super::top::tmux_or_skip(test) {
        return;
    }
    let Some((ns, hostile)) = hostile_or_skip(test) else {
        return;
    };
    let top = ns.command(sockscope_bin());
    let words: Vec<String> = std::iter::once(top.get_program())
        .chain(top.get_args())
        .map(shell_quote)
        .collect();
    let term = Tmux::start(
        &format!("{} top --interval 500ms", words.join(" ")),
        200,
        50,
    )
    .expect("a tmux window");
    let title_before = term.pane_title();
    let shown = format!("{} {}", hostile.pid(), &COMM_SHOWN[..10]);
    let (screen, _) = term.wait_for(
        "the hostile process, escaped",
        Duration::from_secs(20),
        |s| s.contains(&shown) && s.contains(r"@hostile \e[31m"),
    );
    // Only the dashboard's own colour and attribute sequences (CSI ... m) may be on screen.
    let raw = String::from_utf8(term.screen_with_escapes()).expect("UTF-8 screen");
    let without_sgr = strip_sgr(&raw);
    assert_no_raw_controls("the dashboard (capture-pane -e)", &without_sgr);
    assert_eq!(
        term.pane_title(),
        title_before,
        "a name set the window's title:\n{screen}"
    );
    term.key("q");
}

/// `text` without its SGR sequences (`ESC [ params m`).
fn strip_sgr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':')) {
            Some(end) if after[end..].starts_with('m') => rest = &after[end + 1..],
            // Anything else is kept, so that the check above sees it.
            _ => {
                out.push_str(&rest[at..at + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
