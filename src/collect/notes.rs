//! The wording of the notes a snapshot carries: what could not be read, and why, for a
//! person to act on. Every note of a pass is worded here; what goes wrong is found where it
//! happens, and handed over as a value.
//!
//! Notes are for people: nothing may parse them (a finding's identity is typed, never a
//! note's text).

use std::collections::BTreeMap;

use super::netns::{EnterError, Target};
use super::pass::Lost;
use super::procs::ProcessScan;
use crate::model::FdScan;

/// Namespaces asked for that the caller may not enter: the snapshot covers its own.
pub(super) fn denied(labels: &[&str]) -> String {
    let which = match labels {
        [one] => format!("network namespace {one}"),
        many => format!("{} other network namespaces", many.len()),
    };
    format!(
        "{which} not scanned: entering another network namespace needs CAP_SYS_ADMIN (run as \
         root); this snapshot covers the caller's namespace only"
    )
}

/// Partial-view notes for namespaces that were found but not read.
pub(super) fn lost(lost: &[(Target, Lost)]) -> Vec<String> {
    let mut denied = Vec::new();
    let mut notes = Vec::new();
    for (target, why) in lost {
        let ns = format!("network namespace {} (id {})", target.label, target.id.ino);
        match why {
            Lost::Enter(EnterError::Denied(_)) => denied.push(target.label.as_str()),
            Lost::Enter(EnterError::Gone) => notes.push(format!(
                "partial: {ns} disappeared during the scan and is left out"
            )),
            Lost::Enter(err) => notes.push(format!("partial: {ns} could not be entered: {err}")),
            Lost::Netlink(err) => notes.push(format!("partial: {ns} could not be read: {err}")),
        }
    }
    if !denied.is_empty() {
        let shown: Vec<&str> = denied.iter().take(5).copied().collect();
        let more = denied.len() - shown.len();
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(format!(
            "partial: entering {} network namespaces was refused ({}{more}): they belong to \
             another user namespace, or CAP_SYS_ADMIN is missing there",
            denied.len(),
            shown.join(", ")
        ));
    }
    notes
}

/// Each namespace's notes, once per distinct text: with several namespaces, each says
/// which.
pub(super) fn grouped(per_ns: Vec<(String, Vec<String>)>) -> Vec<String> {
    if per_ns.len() <= 1 {
        return per_ns.into_iter().flat_map(|(_, notes)| notes).collect();
    }
    let mut by_text: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (label, notes) in per_ns {
        for note in notes {
            by_text.entry(note).or_default().push(label.clone());
        }
    }
    by_text
        .into_iter()
        .map(|(note, labels)| {
            let shown = labels
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = labels.len().saturating_sub(3);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("netns {shown}{more}: {note}")
        })
        .collect()
}

/// What the /proc walk could not read, with how to see more.
pub(super) fn scan(scan: &ProcessScan) -> Vec<String> {
    let stats = &scan.stats;
    let mut notes = scan.notes.clone();
    if stats.fds_denied > 0 {
        let denied: Vec<String> = scan
            .processes
            .iter()
            .filter(|p| p.fd_scan == FdScan::Denied)
            .take(3)
            .map(|p| format!("pid {} ({})", p.pid, p.comm))
            .collect();
        let more = stats.fds_denied.saturating_sub(denied.len() as u64);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let fix = if rustix::process::geteuid().is_root() {
            "even as root (a hardened /proc or another user namespace)"
        } else {
            "(permission denied): run as root for a full process view"
        };
        notes.push(format!(
            "the descriptors of {} of {} processes could not be read {fix}; their sockets are \
             not attributed: {}{more}",
            stats.fds_denied,
            stats.processes,
            denied.join(", ")
        ));
    }
    if stats.vanished > 0 {
        notes.push(format!(
            "{} processes exited while they were being read",
            stats.vanished
        ));
    }
    notes
}
