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
    let report = ns.report();
    let rate = flood.rate();
    drop(flood);

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
    let apart = all.abs_diff(own);
    #[allow(clippy::cast_precision_loss)] // thousands of drops at most
    let apart_ms = 1000.0 * apart as f64 / rate;
    // One drop of slack: the two reads cannot be one instant.
    let allowed_ms = COUNTER_SKEW.as_secs_f64() * 1000.0 + 1000.0 / rate;
    assert!(
        apart_ms <= allowed_ms,
        "one snapshot: the listeners dropped {own}, the namespace's ListenDrops {all}: {apart} drops \
         apart, {apart_ms:.0} ms at the flood's {rate:.0}/s; at most {} ms allowed",
        COUNTER_SKEW.as_millis()
    );
}
