//! `sockscope kill` (issue #14): a server leaking 200 CLOSE_WAIT sockets (the lab's `leak`)
//! beside a full listener (`noaccept`), in a private namespace; `ss` and `nstat` in the same
//! namespace are the oracles.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd as _;
use std::process::Output;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use sockscope::collect::CollectOptions;
use sockscope::model::TcpState;
use sockscope::model::kill::{KillFilter, Outcome};
use sockscope::testing::skip_or_fail;

use crate::util::netns::{Netns, Ready, netns_or_skip};
use crate::util::{cannot_run_as_nobody, looks_like_panic, sockscope_bin};

const LEAK_PORT: u16 = 5001;
const LEAKED: usize = 200;

/// A namespace with the leak and a full listener beside it; the leak's ready line.
fn leak_beside_a_full_listener(test: &str) -> Option<(Netns, Ready)> {
    let mut ns = netns_or_skip(test)?;
    ns.lab(&["noaccept"]);
    let leak = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    Some((ns, leak))
}

/// Every TCP socket of the namespace as `ss -tanH` shows it: (state, local, peer).
fn sockets(ns: &Netns) -> BTreeSet<(String, String, String)> {
    ns.ss(&["-tanH"])
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some((
                (*cols.first()?).to_owned(),
                (*cols.get(3)?).to_owned(),
                (*cols.get(4)?).to_owned(),
            ))
        })
        .collect()
}

fn close_wait_on_leak_port(ns: &Netns) -> usize {
    sockets(ns)
        .iter()
        .filter(|(state, local, _)| state == "CLOSE-WAIT" && local.ends_with(":5001"))
        .count()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_of(what: &str, out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", text(&out.stdout)))
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|s| !s.trim().starts_with('Z'))
    })
}

#[test]
fn a_dry_run_lists_the_leak_and_destroys_nothing() {
    let test = "a_dry_run_lists_the_leak_and_destroys_nothing";
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let pid = leak.pid("leaky").to_string();
    let out = ns.sockscope(&["kill", "--pid", &pid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows = stdout
        .lines()
        .filter(|l| l.contains("CLOSE_WAIT") && l.contains(":5001"))
        .count();
    assert_eq!(rows, LEAKED, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "would destroy 200 sockets held by leaky (pid {pid})"
        )),
        "{stdout}"
    );
    let doc = json_of(
        "kill --json",
        &ns.sockscope(&["kill", "--pid", &pid, "--json"]),
    );
    assert_eq!(doc["schema"], "sockscope.kill.v1");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["selected"], 200);
    let sockets = doc["sockets"].as_array().expect("a list");
    assert!(
        sockets
            .iter()
            .all(|s| s["result"] == "would-destroy" && s["cookie"].as_u64().is_some()),
        "{doc}"
    );
    assert_eq!(close_wait_on_leak_port(&ns), LEAKED, "ss after the dry run");
}

#[test]
fn yes_destroys_the_leak_and_nothing_else() {
    let test = "yes_destroys_the_leak_and_nothing_else";
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let leaky = leak.pid("leaky");
    let before = sockets(&ns);
    let listeners = ns.ss(&["-tlnH"]);
    let challenge_acks = ns.nstat()["TcpExtTCPChallengeACK"];

    let doc = json_of(
        "kill --yes --json",
        &ns.sockscope(&["kill", "--pid", &leaky.to_string(), "--yes", "--json"]),
    );
    assert_eq!(doc["dry_run"], false);
    assert_eq!(
        (&doc["destroyed"], &doc["gone"], &doc["failed"]),
        (&200.into(), &0.into(), &0.into()),
        "{doc}"
    );

    assert_eq!(close_wait_on_leak_port(&ns), 0, "ss after the kill");
    assert!(is_running(leaky), "leaky keeps running");
    assert_eq!(ns.ss(&["-tlnH"]), listeners, "the listeners are untouched");
    // The destroyed sockets' peers (the client's FIN_WAIT2 ends) got a reset; every other
    // socket is where it was.
    let destroyed: BTreeSet<(String, String)> = doc["sockets"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().expect("an address").to_owned();
            (field("local"), field("peer"))
        })
        .collect();
    let after = sockets(&ns);
    for (state, local, peer) in &before {
        let ours = destroyed.contains(&(local.clone(), peer.clone()))
            || destroyed.contains(&(peer.clone(), local.clone()));
        if !ours {
            assert!(
                after.contains(&(state.clone(), local.clone(), peer.clone())),
                "{state} {local} {peer} was touched"
            );
        }
    }

    // A formerly mined port, reused to reach the same server, connects at once: no leaked
    // socket answers its SYN with a challenge ACK any more.
    let mined: u16 = destroyed
        .iter()
        .find_map(|(_, peer)| peer.rsplit(':').next()?.parse().ok())
        .expect("a mined port");
    let took = connect_from(&ns, mined).unwrap_or_else(|e| panic!("connect from {mined}: {e}"));
    assert!(took < Duration::from_millis(900), "connect took {took:?}");
    assert_eq!(
        ns.nstat()["TcpExtTCPChallengeACK"],
        challenge_acks,
        "no challenge ACK"
    );
    assert!(is_running(leaky), "leaky keeps running");
}

/// Connect from 127.0.0.1:`port` to the leaking server, from a thread inside `ns`; how long
/// connect() took.
fn connect_from(ns: &Netns, port: u16) -> Result<Duration, String> {
    let file = ns.file().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| format!("setns: {e}"))?;
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| format!("socket: {e}"))?;
        sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| e.to_string())?;
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .map_err(|e| format!("bind: {e}"))?;
        let started = Instant::now();
        rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, LEAK_PORT))
            .map_err(|e| format!("connect: {e}"))?;
        Ok(started.elapsed())
    })
    .join()
    .map_err(|_| "the connecting thread panicked".to_owned())?
}

#[test]
fn an_unprivileged_user_is_refused_in_one_line_and_nothing_is_destroyed() {
    let test = "an_unprivileged_user_is_refused_in_one_line_and_nothing_is_destroyed";
    if let Some(reason) = cannot_run_as_nobody() {
        skip_or_fail(test, &format!("cannot run sockscope as nobody: {reason}"));
        return;
    }
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let pid = leak.pid("leaky").to_string();
    let out = ns
        .command("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(sockscope_bin())
        .args(["kill", "--pid", &pid, "--yes"])
        .output()
        .expect("running setpriv");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("CAP_NET_ADMIN") && stderr.contains("nothing was destroyed"),
        "{stderr}"
    );
    assert!(!looks_like_panic(&stderr), "{stderr}");
    assert_eq!(close_wait_on_leak_port(&ns), LEAKED);
}

#[test]
fn a_socket_closed_between_selection_and_destruction_counts_as_gone() {
    let test = "a_socket_closed_between_selection_and_destruction_counts_as_gone";
    if !rustix::process::geteuid().is_root() {
        skip_or_fail(
            test,
            "entering the lab's namespace from the test needs root",
        );
        return;
    }
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let filter = KillFilter {
        pid: leak.pid("leaky"),
        states: vec![TcpState::CloseWait],
        port: None,
        peer: None,
    };
    let plan = sockscope::collect::kill::select(&CollectOptions::default(), &filter)
        .expect("the leak is selected");
    assert_eq!(plan.selection.len(), LEAKED);
    let (_, first) = plan.selection.sockets().next().expect("a socket");
    let peer = first.peer.to_string();
    // Gone before the plan gets to it: destroyed by a second, narrower run.
    let out = ns.sockscope(&[
        "kill",
        "--pid",
        &filter.pid.to_string(),
        "--peer",
        &peer,
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outcomes = plan.destroy().expect("destroyed");
    assert_eq!(outcomes.len(), LEAKED);
    assert_eq!(outcomes[0], Outcome::Gone, "{peer}");
    assert!(
        outcomes[1..].iter().all(|o| *o == Outcome::Destroyed),
        "{outcomes:?}"
    );
    assert_eq!(close_wait_on_leak_port(&ns), 0);
}

#[test]
fn no_such_process_and_no_matching_socket_are_one_line_each() {
    let test = "no_such_process_and_no_matching_socket_are_one_line_each";
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let noaccept_listener_port = "5000";
    let pid = leak.pid("leaky").to_string();
    for (args, says) in [
        (
            vec!["kill", "--pid", "4194304"],
            "no process with pid 4194304",
        ),
        (
            vec![
                "kill",
                "--pid",
                &pid,
                "--state",
                "established",
                "--port",
                noaccept_listener_port,
            ],
            "holds no ESTABLISHED TCP socket on port 5000",
        ),
    ] {
        let out = ns.sockscope(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    for (args, says) in [
        (
            vec!["kill", "--pid", &pid, "--state", "listen"],
            "never destroyed",
        ),
        (
            vec!["kill", "--pid", &pid, "--state", "established"],
            "needs --port or --peer",
        ),
        (vec!["kill", "--pid", "x"], "--pid"),
        (vec!["kill", "--pid", &pid, "--peer", "nowhere"], "--peer"),
        (vec!["kill"], "--pid"),
    ] {
        let out = ns.sockscope(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(close_wait_on_leak_port(&ns), LEAKED);
}

#[test]
fn a_destroying_run_is_logged_or_says_why_not() {
    let test = "a_destroying_run_is_logged_or_says_why_not";
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let pid = leak.pid("leaky").to_string();
    let out = ns.sockscope(&["kill", "--pid", &pid, "--yes"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let has_syslog = std::path::Path::new(sockscope::audit::DEV_LOG).exists();
    if has_syslog {
        assert!(!stderr.contains("no syslog socket"), "{stderr}");
    } else {
        assert!(
            stderr.contains("no syslog socket at /dev/log"),
            "says so and goes on: {stderr}"
        );
    }
    assert!(
        text(&out.stdout).contains(&format!(
            "destroyed 200 sockets held by leaky (pid {pid}); 0 already gone; 0 failed"
        )),
        "{}",
        text(&out.stdout)
    );
}

/// The command a remedy quotes between backticks, as words.
fn quoted_command(remedy: &str) -> Vec<String> {
    let start = remedy
        .find("`sockscope kill")
        .expect("a quoted kill command")
        + 1;
    let len = remedy[start..].find('`').expect("a closing backtick");
    remedy[start..start + len]
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_remedies_give_the_exact_command_and_it_works() {
    let test = "the_remedies_give_the_exact_command_and_it_works";
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let pid = leak.pid("leaky");
    let report = ns.report();
    for (id, command) in [
        ("close-wait-leak", format!("kill --pid {pid}")),
        (
            "ephemeral-port-collision",
            format!("kill --pid {pid} --peer 127.0.0.1"),
        ),
    ] {
        let finding = report
            .findings_with_id(id)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {id} finding: {:?}", report.findings));
        let words = quoted_command(&finding.remedy);
        assert_eq!(words.join(" "), command, "{id}: {}", finding.remedy);
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let out = ns.sockscope(&args);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
        assert!(
            stdout.contains(&format!(
                "would destroy 200 sockets held by leaky (pid {pid})"
            )),
            "{id}: {stdout}"
        );
    }
    assert_eq!(close_wait_on_leak_port(&ns), LEAKED, "dry runs only");
}

/// The dashboard's `K` in a real terminal: on the leaking process it asks first, Enter
/// destroys, the result stays on screen, and `ss` agrees.
#[test]
fn the_dashboard_asks_then_destroys_with_k() {
    let test = "the_dashboard_asks_then_destroys_with_k";
    if !super::top::tmux_or_skip(test) {
        return;
    }
    let Some((ns, leak)) = leak_beside_a_full_listener(test) else {
        return;
    };
    let leaky = leak.pid("leaky");
    let within = Duration::from_secs(20);
    let term = super::signals::shell_in(&ns);
    let bin = crate::util::tmux::shell_quote(sockscope_bin().as_os_str());
    term.type_text(
        &format!(
            "clear; {bin} top; echo EXITED $?; stty -a | grep -q -- ' -icanon' && echo RAW \
             || echo COOKED"
        ),
        true,
    );
    term.wait_for("the leak on the dashboard", within, |s| {
        s.contains(&format!("process leaky (pid {leaky})")) && s.contains("Processes")
    });
    // Shift-Tab: the processes pane, sorted by CLOSE_WAIT, the leak first.
    term.key("BTab");
    term.key("K");
    let (confirm, _) = term.wait_for("the confirmation", within, |s| {
        s.contains("destroy sockets?") && s.contains("Enter destroys them")
    });
    assert!(
        confirm.contains("Destroy 200 CLOSE_WAIT sockets held by leaky"),
        "{confirm}"
    );
    assert_eq!(close_wait_on_leak_port(&ns), LEAKED, "nothing before Enter");
    term.key("Enter");
    let (done, _) = term.wait_for("the result", within, |s| {
        s.contains("destroyed 200 sockets held by leaky")
    });
    assert!(done.contains(&format!("(pid {leaky})")), "{done}");
    assert_eq!(close_wait_on_leak_port(&ns), 0, "ss after K");
    assert!(is_running(leaky));
    term.key("q");
    super::top::shell_is_back(&term, "q");
}
