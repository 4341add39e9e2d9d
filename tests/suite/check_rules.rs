//! check: ignore rules and precedence. An ignore rule from a flag or from the config file's
//! `[ignore]` table turns a known incident OK, and a threshold flag beats the same key in
//! the config file. Each test shows the state without the rule too, in the same namespace,
//! so that the rule is what made the difference.

use super::check::check;
use crate::util::netns::netns_or_skip;
use crate::util::scratch::{Scratch, as_str};

#[test]
fn ignoring_the_leaking_comm_turns_the_leak_ok() {
    let Some(mut ns) = netns_or_skip("ignoring_the_leaking_comm_turns_the_leak_ok") else {
        return;
    };
    ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let heard = check(&ns, &[]);
    assert_eq!(heard.code, 1, "without the rule: {heard:#?}");
    let ignored = check(&ns, &["--ignore", "comm:leaky"]);
    assert_eq!(
        (ignored.code, ignored.status.state.as_str()),
        (0, "OK"),
        "{ignored:#?}"
    );
    assert!(
        ignored.lines_starting("WARNING ").is_empty(),
        "{ignored:#?}"
    );
}

#[test]
fn ignoring_the_port_in_the_config_turns_the_full_listener_ok() {
    let Some(mut ns) = netns_or_skip("ignoring_the_port_in_the_config_turns_the_full_listener_ok")
    else {
        return;
    };
    let scratch = Scratch::new("check-ignore-port");
    let config = scratch.write("sockscope.toml", "[ignore]\nports = [5000]\n");
    ns.lab(&[
        "noaccept",
        "--addr",
        "127.0.0.1:5000",
        "--backlog",
        "8",
        "--clients",
        "30",
    ]);
    let ignored = check(&ns, &["--config", as_str(&config)]);
    assert_eq!(
        (ignored.code, ignored.status.state.as_str()),
        (0, "OK"),
        "{ignored:#?}"
    );
    let heard = check(&ns, &[]);
    assert_eq!(heard.code, 2, "without the config: {heard:#?}");
}

#[test]
fn a_threshold_flag_beats_the_config_file() {
    let Some(mut ns) = netns_or_skip("a_threshold_flag_beats_the_config_file") else {
        return;
    };
    let scratch = Scratch::new("check-precedence");
    // The leak also mines 200 loopback ports (ephemeral-port-collision, a warning from one
    // mined port): raise that threshold too, so that only close_wait_warn decides.
    let config = scratch.write(
        "sockscope.toml",
        "[thresholds]\nclose_wait_warn = 500\ncollision_warn = 1000\n",
    );
    let config = as_str(&config);
    let ready = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let pid = ready.pid("leaky");

    let from_file = check(&ns, &["--config", config]);
    assert_eq!(
        (from_file.code, from_file.status.state.as_str()),
        (0, "OK"),
        "200 CLOSE_WAIT under the file's 500: {from_file:#?}"
    );
    assert_eq!(
        from_file.perf("close_wait_max").warn.as_deref(),
        Some("500")
    );

    let flag_wins = check(&ns, &["--config", config, "--close-wait-warn", "100"]);
    assert_eq!(
        (flag_wins.code, flag_wins.status.state.as_str()),
        (1, "WARNING"),
        "200 CLOSE_WAIT over the flag's 100: {flag_wins:#?}"
    );
    assert_eq!(
        flag_wins.perf("close_wait_max").warn.as_deref(),
        Some("100")
    );
    flag_wins.assert_long_line(&format!(
        "WARNING close-wait-leak process leaky (pid {pid})"
    ));
    assert!(
        flag_wins
            .lines_starting("WARNING ephemeral-port-collision")
            .is_empty(),
        "the file's collision_warn still holds: {flag_wins:#?}"
    );
}
