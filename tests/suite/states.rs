//! Every TCP state count against `ss -tan`, with every scenario in one namespace.

use crate::util::netns::netns_or_skip;
use crate::util::oracle::{TCP_STATES, parse_states, parse_tcp_listeners};

#[test]
fn every_tcp_state_count_matches_ss() {
    let Some(mut ns) = netns_or_skip("every_tcp_state_count_matches_ss") else {
        return;
    };
    let path =
        std::env::temp_dir().join(format!("sockscope-test-{}-states.sock", std::process::id()));
    let path = path.to_str().expect("utf-8 temp dir").to_owned();
    ns.lab(&["noaccept", "--abandon", "3"]);
    ns.lab(&["leak", "--count", "50"]);
    ns.lab(&["unix-noaccept", "--path", &path]);
    ns.lab(&["fds"]);
    ns.lab(&["listen", "--addr", "[::1]:5002", "--addr", "[::]:5003"]);
    ns.lab(&["healthy"]);

    // Nothing here moves for a minute (SYN_SENT stays SYN_SENT while SYNs are retried;
    // FIN_WAIT2 and TIME_WAIT last 60 s), but compare only when ss saw the same counts
    // before and after sockscope.
    let ss_states = || parse_states(&ns.ss(&["-tanH"])).expect("ss -tan parses");
    for _attempt in 0..5 {
        let before = ss_states();
        let report = ns.report();
        let after = ss_states();
        if before != after {
            continue;
        }
        let ours = &report.only_netns().tcp_states;
        for state in TCP_STATES {
            assert!(
                ours.contains_key(state),
                "tcp_states lacks {state}: {ours:?}"
            );
            assert_eq!(
                ours[state], before[state],
                "{state}: sockscope {ours:?}, ss {before:?}"
            );
        }
        assert_eq!(before["SYN_SENT"], 21);
        assert_eq!(before["CLOSE_WAIT"], 3 + 50);

        let listeners = parse_tcp_listeners(&ns.ss(&["-tlnH"])).expect("ss -tln parses");
        assert_eq!(
            listeners.len(),
            5,
            "noaccept, leak, two from listen, healthy"
        );
        for theirs in &listeners {
            let l = report.only_netns().listener("tcp", &theirs.local);
            assert_eq!(
                (l.accept_queue, l.backlog),
                (theirs.recv_q, theirs.send_q),
                "{}",
                theirs.local
            );
        }
        return;
    }
    panic!("ss saw the state counts change across every one of 5 attempts");
}
