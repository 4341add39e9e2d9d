//! The dashboard in a real terminal: `sockscope` with no command, in an 80×24 tmux window
//! inside a namespace holding a listener that never accepts and a server that leaks
//! CLOSE_WAIT sockets. The screen must name both culprits without scrolling, and `q` — or
//! SIGTERM — must give the shell back in its normal mode.

use std::time::Duration;

use sockscope::testing::skip_or_fail;

use crate::util::netns::netns_or_skip;
use crate::util::sockscope_bin;
use crate::util::tmux::{self, Tmux, shell_quote};

/// Generous for a loaded CI machine; the dashboard normally shows data within a second.
const SEEN_WITHIN: Duration = Duration::from_secs(20);

/// Whether tmux is there; where it is not, the test fails with the reason (or, with
/// `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns false).
pub(super) fn tmux_or_skip(test: &str) -> bool {
    if tmux::available() {
        return true;
    }
    skip_or_fail(test, "`tmux` is not installed (Debian package tmux)");
    false
}

#[test]
fn the_dashboard_shows_both_culprits_and_q_gives_the_shell_back() {
    let test = "the_dashboard_shows_both_culprits_and_q_gives_the_shell_back";
    if !tmux_or_skip(test) {
        return;
    }
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    let noaccept = ns.lab(&["noaccept", "--addr", "127.0.0.1:5000", "--backlog", "8"]);
    let leak = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let (noaccept, leaky) = (noaccept.pid("noaccept"), leak.pid("leaky"));

    // A plain shell inside the namespace, in a terminal of the size the issue asks for.
    let term = super::signals::shell_in(&ns);
    let bin = shell_quote(sockscope_bin().as_os_str());
    let run = |args: &str| {
        term.type_text(
            &format!(
                "clear; {bin}{args}; echo EXITED $?; stty -a | grep -q -- ' -icanon' && echo RAW \
                 || echo COOKED"
            ),
            true,
        );
    };
    run("");

    let (_, first) = term.wait_for("the dashboard's first frame", SEEN_WITHIN, |s| {
        s.contains(" sockscope ")
    });
    let (screen, culprits) = term.wait_for("both culprits", SEEN_WITHIN, |s| {
        s.contains("accept-queue-full")
            && s.contains(&format!("noaccept({noaccept})"))
            && s.contains("127.0.0.1:5000")
            && s.contains("close-wait-leak")
            && s.contains(&format!("process leaky (pid {leaky})"))
    });
    eprintln!("first frame after {first:?}, both culprits after {culprits:?}:\n{screen}");
    assert_eq!(screen.lines().count(), 24, "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");

    term.key("q");
    shell_is_back(&term, "q");

    // Again, stopped by SIGTERM sent to its pid (the shell's only child) this time.
    run(" top");
    term.wait_for("the dashboard again", SEEN_WITHIN, |s| {
        s.contains("Findings:")
    });
    let shell = term.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("the shell's children");
    let pid: i32 = match children.split_whitespace().collect::<Vec<_>>()[..] {
        [one] => one.parse().expect("a pid"),
        ref other => panic!("expected the dashboard alone under the shell, found {other:?}"),
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("its comm");
    assert_eq!(comm.trim(), "sockscope");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
    shell_is_back(&term, "SIGTERM");
}

/// The dashboard has exited 0 and left the terminal as it found it.
pub(super) fn shell_is_back(term: &Tmux, after: &str) {
    let (screen, _) = term.wait_for(&format!("the shell after {after}"), SEEN_WITHIN, |s| {
        s.lines().any(|l| l.trim() == "COOKED" || l.trim() == "RAW")
    });
    let lines: Vec<&str> = screen.lines().map(str::trim).collect();
    assert!(lines.contains(&"EXITED 0"), "after {after}:\n{screen}");
    assert!(
        lines.contains(&"COOKED"),
        "after {after} the terminal was left in raw mode:\n{screen}"
    );
    assert!(
        !screen.contains("Findings:"),
        "after {after} the dashboard is still on the screen:\n{screen}"
    );
}
