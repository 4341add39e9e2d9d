//! The kernel's own tables that refuse connections while no listener is full: connection
//! tracking, measured against its limit with the rates of its drop counters. Pure: the
//! numbers come from the snapshots, the judgement from the rules.

use super::{pct, rate};
use crate::model::{ConntrackPorts, NetnsSnapshot};

/// A namespace's connection tracking table over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ConntrackView {
    /// The namespace's entries (`nf_conntrack_count`).
    pub count: u64,
    /// `nf_conntrack_max`, the host's limit; `None` when unreadable.
    pub max: Option<u64>,
    /// `nf_conntrack_buckets`, the host's.
    pub buckets: Option<u64>,
    /// `count` as a % of `max`.
    pub fill_pct: Option<f64>,
    pub drop_total: u64,
    /// New connections refused because the table was full, per second.
    pub drop_per_s: Option<f64>,
    /// Entries evicted to make room, per second.
    pub early_drop_total: u64,
    pub early_drop_per_s: Option<f64>,
    pub insert_failed_total: u64,
    pub insert_failed_per_s: Option<f64>,
    /// Where the entries go, when asked (`--conntrack-ports`).
    pub busiest_ports: Option<ConntrackPorts>,
}

impl ConntrackView {
    /// Whether the table refused or evicted entries in the window.
    pub fn dropping(&self) -> bool {
        [self.drop_per_s, self.early_drop_per_s]
            .iter()
            .any(|r| r.is_some_and(|r| r > 0.0))
    }
}

/// The table of `ns`, with rates against `before`; `None` when the namespace has none
/// (connection tracking is not loaded).
pub fn conntrack_view(
    ns: &NetnsSnapshot,
    before: Option<&NetnsSnapshot>,
    window_s: Option<f64>,
) -> Option<ConntrackView> {
    let now = ns.conntrack?;
    let was = before.and_then(|b| b.conntrack);
    let max = ns.sysctl.nf_conntrack_max;
    Some(ConntrackView {
        count: now.count,
        max,
        buckets: ns.sysctl.nf_conntrack_buckets,
        fill_pct: max.filter(|&m| m > 0).map(|m| pct(now.count, m)),
        drop_total: now.drop,
        drop_per_s: rate(was.map(|w| w.drop), Some(now.drop), window_s),
        early_drop_total: now.early_drop,
        insert_failed_total: now.insert_failed,
        early_drop_per_s: rate(was.map(|w| w.early_drop), Some(now.early_drop), window_s),
        insert_failed_per_s: rate(
            was.map(|w| w.insert_failed),
            Some(now.insert_failed),
            window_s,
        ),
        busiest_ports: ns.conntrack_ports.clone(),
    })
}
