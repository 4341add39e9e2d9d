//! diagnosis: one snapshot reads a listener's own drop counter and its namespace's
//! ListenDrops together. `listen-drops` names the listeners whose own counter rose along
//! with the namespace's; read far apart, a burst of drops between the two reads becomes
//! namespace drops that no listener owns, and the finding then blames no listener (and a
//! `port` ignore rule for the one that dropped cannot silence it).

use std::time::Duration;

use sockscope::testing::skip_or_fail;

use crate::util::flood::Flood;
use crate::util::netns::netns_or_skip;

const FULL: &str = "127.0.0.1:5000";

/// How far apart in time one snapshot may read a listener's own drop counter and the
/// namespace's ListenDrops: `listen-drops` compares the two to name the dropping listeners.
const COUNTER_SKEW: Duration = Duration::from_millis(20);

/// Snapshots taken before the test gives up on seeing the two reads within [`COUNTER_SKEW`].
/// Reading them in the right order, a snapshot is late only when its thread was put off the
/// CPU in the moment between the two reads (a machine busy with other work); in the wrong
/// order, a dump of the namespace's 10,000 sockets and the /proc walk lie between them, and
/// no snapshot ever comes within the skew.
const SNAPSHOTS: usize = 3;

/// Both counters count every drop, so they may differ only by the drops of the moment between
/// their reads — however busy the namespace, which is when an operator needs them right.
#[test]
fn one_snapshot_reads_listener_drops_and_listen_drops_together() {
    let test = "one_snapshot_reads_listener_drops_and_listen_drops_together";
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    // Exactly backlog + 1 clients: the queue is full and no client waits in SYN_SENT, so
    // every drop comes from the flood, at its pace.
    ns.lab(&[
        "noaccept",
        "--addr",
        FULL,
        "--backlog",
        "8",
        "--clients",
        "9",
    ]);
    // A busy namespace, as a real one is: 5,000 leaked connections make the socket dumps and
    // the /proc walk take a while (and never drop a thing: their listener accepts).
    ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "5000"]);
    let to = FULL.parse().expect("an IPv4 address");
    let flood = match Flood::start(&ns, to, Duration::from_millis(1)) {
        Ok(flood) => flood,
        Err(reason) => {
            skip_or_fail(test, &format!("cannot flood the namespace: {reason}"));
            return;
        }
    };
    crate::util::poll("the flood to be under way", Duration::from_secs(10), || {
        (flood.sent() >= 100).then_some(())
    });
    let mut late = Vec::new();
    for _ in 0..SNAPSHOTS {
        let report = ns.report();
        let netns = report.only_netns();
        let full = netns
            .listener("tcp", FULL)
            .drops
            .total
            .expect("the listener's drops");
        assert!(full >= 100, "the flood's drops are counted: {full}");
        // The namespace is new: its listeners' drops are all of its ListenDrops.
        let own: u64 = netns
            .listeners
            .iter()
            .filter(|l| l.proto == "tcp")
            .map(|l| l.drops.total.expect("every TCP listener's drops"))
            .sum();
        let all = netns
            .counter("ListenDrops")
            .total
            .expect("ListenDrops total");
        // Placed in time by the flood's own clock: the drops' pace is not assumed.
        let apart = flood.least_time_between(own, all);
        if apart <= COUNTER_SKEW {
            return;
        }
        late.push(format!(
            "the listeners dropped {own}, the namespace's ListenDrops {all}: {} drops and at \
             least {apart:?} apart",
            all.abs_diff(own)
        ));
    }
    panic!("no snapshot of {SNAPSHOTS} read the two counters within {COUNTER_SKEW:?}: {late:#?}");
}
