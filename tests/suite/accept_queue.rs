//! Full accept queues, TCP and unix, against `ss` and `nstat`.

use crate::util::netns::netns_or_skip;
use crate::util::oracle::{parse_listener_drops, parse_tcp_listeners, parse_unix_listeners};

#[test]
fn full_tcp_queue_matches_ss_and_drops_are_sandwiched() {
    let Some(mut ns) = netns_or_skip("full_tcp_queue_matches_ss_and_drops_are_sandwiched") else {
        return;
    };
    let ready = ns.lab(&[
        "noaccept",
        "--addr",
        "127.0.0.1:5000",
        "--backlog",
        "8",
        "--clients",
        "30",
    ]);
    let local = "127.0.0.1:5000";
    // The 21 clients in SYN_SENT keep retransmitting, so drops and counters keep rising:
    // read them before and after sockscope and expect sockscope's value in between.
    let drops = || parse_listener_drops(&ns.ss(&["-tlmnH"])).expect("ss -tlm parses")[local];
    let overflows = || ns.nstat()["TcpExtListenOverflows"];
    let (drops_before, overflows_before) = (drops(), overflows());
    let report = ns.report();
    let (drops_after, overflows_after) = (drops(), overflows());

    let netns = report.only_netns();
    let l = netns.listener("tcp", local);
    assert_eq!((l.accept_queue, l.backlog, l.full), (9, 8, true), "{l:?}");
    assert_eq!(l.port, Some(5000));
    let ss = parse_tcp_listeners(&ns.ss(&["-tlnH"])).expect("ss -tln parses");
    let ss = ss
        .iter()
        .find(|s| s.local == local)
        .expect("ss lists the listener");
    assert_eq!(
        (l.accept_queue, l.backlog),
        (ss.recv_q, ss.send_q),
        "sockscope vs ss -tln"
    );

    let ours = l.drops.total.expect("listener drops total");
    assert!(ours > 0, "a full queue drops SYNs");
    assert!(
        drops_before <= ours && ours <= drops_after,
        "drops: ss said {drops_before} before and {drops_after} after, sockscope {ours}"
    );
    let ours = netns
        .counter("ListenOverflows")
        .total
        .expect("ListenOverflows total");
    assert!(
        overflows_before <= ours && ours <= overflows_after,
        "ListenOverflows: nstat said {overflows_before} before and {overflows_after} after, sockscope {ours}"
    );
    assert_eq!(
        netns.tcp_states["SYN_SENT"], 21,
        "clients past backlog + 1 wait in SYN_SENT"
    );
    // A full queue drops the SYN itself: no request socket is created.
    assert_eq!((l.syn_recv, netns.tcp_states["SYN_RECV"]), (0, 0));

    let pid = ready.pid("noaccept");
    assert!(
        l.owners
            .iter()
            .any(|o| o.pid == pid && o.comm == "noaccept"),
        "owners {:?} should name noaccept ({pid})",
        l.owners
    );
    let findings = report.findings_with_id("accept-queue-full");
    assert!(
        findings
            .iter()
            .any(|f| f.severity == "critical" && f.subject.contains(local) && f.netns == netns.id),
        "expected a critical accept-queue-full about {local}: {:?}",
        report.findings
    );
}

#[test]
fn clients_that_gave_up_wait_in_the_queue_as_close_wait() {
    let Some(mut ns) = netns_or_skip("clients_that_gave_up_wait_in_the_queue_as_close_wait") else {
        return;
    };
    ns.lab(&[
        "noaccept",
        "--backlog",
        "8",
        "--clients",
        "30",
        "--abandon",
        "3",
    ]);
    let report = ns.report();
    let netns = report.only_netns();
    let l = netns.listener("tcp", "127.0.0.1:5000");
    assert_eq!(
        (l.accept_queue, l.full),
        (9, true),
        "abandoned children still fill the queue"
    );
    let ss_close_wait = ns
        .ss(&["-tanH", "state", "close-wait", "sport", "=", ":5000"])
        .lines()
        .count();
    assert_eq!(ss_close_wait, 3);
    assert_eq!(l.unaccepted_close_wait, 3, "{l:?}");
    assert_eq!(netns.tcp_states["CLOSE_WAIT"], 3);
    assert!(
        !report
            .findings_with_id("abandoned-in-accept-queue")
            .is_empty(),
        "expected abandoned-in-accept-queue: {:?}",
        report.findings
    );
}

/// A socket path no other test (or run) uses; the namespace does not isolate the filesystem.
fn socket_path(name: &str) -> String {
    let path =
        std::env::temp_dir().join(format!("sockscope-test-{}-{name}.sock", std::process::id()));
    path.to_str().expect("utf-8 temp dir").to_owned()
}

#[test]
fn full_unix_queue_matches_ss() {
    let Some(mut ns) = netns_or_skip("full_unix_queue_matches_ss") else {
        return;
    };
    let path = socket_path("unix-noaccept");
    let ready = ns.lab(&[
        "unix-noaccept",
        "--path",
        &path,
        "--backlog",
        "4",
        "--clients",
        "5",
    ]);
    assert_eq!(
        ready.json["connected"], 5,
        "backlog + 1 connects fit: {}",
        ready.json
    );
    let report = ns.report();
    let l = report.only_netns().listener("unix", &path);
    assert_eq!((l.accept_queue, l.backlog, l.full), (5, 4, true), "{l:?}");
    let ss = parse_unix_listeners(&ns.ss(&["-xlH"])).expect("ss -xl parses");
    let ss = ss
        .iter()
        .find(|s| s.local == path)
        .expect("ss lists the unix listener");
    assert_eq!(
        (l.accept_queue, l.backlog),
        (ss.recv_q, ss.send_q),
        "sockscope vs ss -xl"
    );
    let pid = ready.pid("unixnoaccept");
    assert!(
        l.owners
            .iter()
            .any(|o| o.pid == pid && o.comm == "unixnoaccept"),
        "{:?}",
        l.owners
    );
    assert!(
        report
            .findings_with_id("accept-queue-full")
            .iter()
            .any(|f| f.subject.contains(&path)),
        "expected accept-queue-full about {path}: {:?}",
        report.findings
    );
}
