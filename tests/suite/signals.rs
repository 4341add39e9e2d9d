//! Every way the dashboard can be stopped from outside leaves the terminal as it found it:
//! SIGINT, SIGHUP and SIGTERM sent to its pid (each must end it with exit 0, out of raw mode
//! and off the alternate screen), and the terminal itself going away (the tmux server killed
//! under it), after which the dashboard must exit rather than linger.
//!
//! (`q` and SIGTERM are also covered by `top.rs`, with the screen's content.)

use std::time::{Duration, Instant};

use super::top::{shell_is_back, tmux_or_skip};
use crate::util::netns::{Netns, netns_or_skip};
use crate::util::sockscope_bin;
use crate::util::tmux::{Tmux, shell_quote};

const SEEN_WITHIN: Duration = Duration::from_secs(30);

/// A shell inside the namespace, in an 80×24 tmux window.
pub(super) fn shell_in(ns: &Netns) -> Tmux {
    let shell = ns.command("sh");
    let words: Vec<String> = std::iter::once(shell.get_program())
        .chain(shell.get_args())
        .map(shell_quote)
        .collect();
    let command = format!("env PS1='shell> ' {}", words.join(" "));
    let term = Tmux::start(&command, 80, 24).expect("a tmux window");
    term.wait_for("the shell prompt", SEEN_WITHIN, |s| {
        s.lines().any(|l| l.starts_with("shell>"))
    });
    term
}

/// Start the dashboard from the shell, wait for its first frame; its pid.
pub(super) fn start_top(term: &Tmux) -> u32 {
    let bin = shell_quote(sockscope_bin().as_os_str());
    term.type_text(
        &format!(
            "clear; {bin} top --interval 500ms; echo EXITED $?; stty -a | grep -q -- ' -icanon' \
             && echo RAW || echo COOKED"
        ),
        true,
    );
    term.wait_for("the dashboard", SEEN_WITHIN, |s| s.contains("Findings:"));
    let shell = term.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("the shell's children");
    let pid: u32 = match children.split_whitespace().collect::<Vec<_>>()[..] {
        [one] => one.parse().expect("a pid"),
        ref other => panic!("expected the dashboard alone under the shell, found {other:?}"),
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("its comm");
    assert_eq!(comm.trim(), "sockscope");
    pid
}

fn send(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A namespace with a small leak in it (something for the dashboard to show) and a shell
/// there; `None` where tmux or a namespace is missing and `SOCKSCOPE_ALLOW_SKIP=1` lets the
/// test pass without running.
fn leak_and_shell(test: &str) -> Option<(Netns, Tmux)> {
    if !tmux_or_skip(test) {
        return None;
    }
    let mut ns = netns_or_skip(test)?;
    ns.lab(&["leak", "--count", "60"]);
    let term = shell_in(&ns);
    Some((ns, term))
}

#[test]
fn sigint_sighup_and_sigterm_give_the_terminal_back() {
    let test = "sigint_sighup_and_sigterm_give_the_terminal_back";
    let Some((_ns, term)) = leak_and_shell(test) else {
        return;
    };
    for signal in ["INT", "HUP", "TERM"] {
        let pid = start_top(&term);
        send(signal, pid);
        shell_is_back(&term, &format!("SIG{signal}"));
        term.type_text("clear", true);
    }
}

#[test]
fn the_dashboard_exits_when_its_terminal_goes_away() {
    let test = "the_dashboard_exits_when_its_terminal_goes_away";
    let Some((_ns, term)) = leak_and_shell(test) else {
        return;
    };
    let pid = start_top(&term);
    // The window, its shell and the terminal go: what closing a terminal emulator does.
    drop(term);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.starts_with(" Z"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard (pid {pid}) still runs 10 s after its terminal went away: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
