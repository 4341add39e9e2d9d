//! Listener addresses as the report writes them, and a healthy namespace staying quiet.

use crate::util::netns::netns_or_skip;
use crate::util::oracle::parse_tcp_listeners;

#[test]
fn ipv6_loopback_and_dual_stack_wildcard_listeners() {
    let Some(mut ns) = netns_or_skip("ipv6_loopback_and_dual_stack_wildcard_listeners") else {
        return;
    };
    let ready = ns.lab(&["listen", "--addr", "[::1]:5002", "--addr", "[::]:5003"]);
    let report = ns.report();
    let ss = parse_tcp_listeners(&ns.ss(&["-tlnH"])).expect("ss -tln parses");
    for (local, port) in [("[::1]:5002", 5002), ("[::]:5003", 5003)] {
        let l = report.only_netns().listener("tcp", local);
        let theirs = ss
            .iter()
            .find(|s| s.local == local)
            .expect("ss lists the listener");
        assert_eq!(l.port, Some(port));
        assert_eq!(
            (l.accept_queue, l.backlog),
            (theirs.recv_q, theirs.send_q),
            "{local} vs ss"
        );
        assert_eq!(l.backlog, 64);
        assert!(!l.full);
        let pid = ready.pid("listener");
        assert!(
            l.owners.iter().any(|o| o.pid == pid),
            "{local}: owners {:?}",
            l.owners
        );
    }
}

/// DESIGN: a healthy host raises no warning or critical finding.
#[test]
fn healthy_namespace_raises_no_warning() {
    let Some(mut ns) = netns_or_skip("healthy_namespace_raises_no_warning") else {
        return;
    };
    ns.lab(&["healthy", "--addr", "127.0.0.1:5004", "--conns", "20"]);
    ns.lab(&["listen", "--addr", "127.0.0.1:5005", "--addr", "[::1]:5006"]);
    let report = ns.report();
    let loud: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity != "info")
        .collect();
    assert!(loud.is_empty(), "a healthy namespace raised {loud:?}");
    let netns = report.only_netns();
    assert_eq!(
        netns.tcp_states["ESTABLISHED"], 20,
        "10 live connections, both ends"
    );
    assert_eq!(netns.tcp_states["TIME_WAIT"], 10, "10 closed by the client");
    assert_eq!(netns.tcp_states["CLOSE_WAIT"], 0);
}
