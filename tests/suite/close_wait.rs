//! A CLOSE_WAIT leak, attributed to the process that holds it, against `ss -p`.

use crate::util::netns::netns_or_skip;
use crate::util::oracle::parse_per_process;

#[test]
fn close_wait_leak_is_attributed_to_leaky() {
    let Some(mut ns) = netns_or_skip("close_wait_leak_is_attributed_to_leaky") else {
        return;
    };
    let ready = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let pid = ready.pid("leaky");
    let report = ns.report();
    let netns = report.only_netns();
    assert_eq!(netns.tcp_states["CLOSE_WAIT"], 200);

    let p = netns.process(pid);
    assert_eq!(p.comm, "leaky");
    assert_eq!(p.close_wait, 200, "{p:?}");
    assert_eq!(
        p.tcp_sockets,
        200 + 1,
        "the leaked sockets and the listener: {p:?}"
    );
    let per_process =
        parse_per_process(&ns.ss(&["-tanpH", "state", "close-wait"])).expect("ss -p parses");
    assert_eq!(
        per_process.get(&("leaky".to_owned(), pid)),
        Some(&p.close_wait),
        "ss -tanp: {per_process:?}"
    );

    let leak = report.findings_with_id("close-wait-leak");
    assert!(
        leak.iter()
            .any(|f| f.subject.contains("leaky") || f.subject.contains(&pid.to_string())),
        "expected close-wait-leak about leaky ({pid}): {:?}",
        report.findings
    );
}

/// Beside many other sockets a full dump walks the kernel's table bare, then reads the
/// CLOSE_WAIT sockets' time since the peer's last ACK by one exact lookup each (a few of
/// them) or by a walk of CLOSE_WAIT alone (many): either way every leak has its age.
#[test]
fn close_wait_age_is_read_beside_many_sockets_by_lookups_or_by_a_walk() {
    let test = "close_wait_age_is_read_beside_many_sockets_by_lookups_or_by_a_walk";
    // (leaked, connections per load process): 10 against ~1,600 sockets is looked up, 120
    // against ~1,000 is walked.
    for (leaked, conns) in [(10u64, "400"), (120, "200")] {
        let Some(mut ns) = netns_or_skip(test) else {
            return;
        };
        ns.lab(&[
            "load",
            "--procs",
            "2",
            "--conns",
            conns,
            "--base-port",
            "6000",
        ]);
        let count = leaked.to_string();
        let ready = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", &count]);
        let pid = ready.pid("leaky");
        let report = ns.report();
        let netns = report.only_netns();
        assert_eq!(netns.tcp_states["CLOSE_WAIT"], leaked);
        assert!(
            netns.tcp_states.values().sum::<u64>() > 500,
            "more sockets than one walk with tcp_info is asked for: {:?}",
            netns.tcp_states
        );
        let p = netns.process(pid);
        assert_eq!(p.close_wait, leaked, "{p:?}");
        assert!(
            p.close_wait_oldest_s.is_some(),
            "{leaked} CLOSE_WAIT sockets beside {conns} connections per process: no age: {p:?}"
        );
    }
}
