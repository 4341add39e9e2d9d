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
