//! The wording of the notes a snapshot carries: what could not be read, and why, for a
//! person to act on. Every note of `collect/` is worded here, the /proc and namespace
//! readers' included; what goes wrong is found where it happens, and handed over as a
//! value.
//!
//! Notes are for people: nothing may parse them (a finding's identity is typed, never a
//! note's text).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::ErrorKind;

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

/// The proc filesystem's root could not be opened: no process is seen.
pub(super) fn unopened(root: impl Display, err: impl Display) -> String {
    format!("could not open {root}: {err}")
}

/// The proc filesystem's root could not be listed to the end.
pub(super) fn unlisted_processes(root: impl Display, err: impl Display) -> String {
    format!("could not list every process in {root}: {err}")
}

/// Why a file of a process did not parse: the `why` of [`unread_of_processes`].
pub(super) fn unexpected_format(err: &dyn Display) -> String {
    format!("unexpected format: {err}")
}

/// One file (`what`) of `n` processes could not be read, for one reason.
pub(super) fn unread_of_processes(what: &str, n: u64, why: &str) -> String {
    let whose = if n == 1 {
        "1 process".to_owned()
    } else {
        format!("{n} processes")
    };
    format!("could not read {what} of {whose}: {why}")
}

/// A /proc/net or /proc/sys file could not be read.
pub(super) fn unread_file(path: &str, err: &std::io::Error) -> String {
    if err.kind() == ErrorKind::NotFound && path.ends_with("/tcp_max_orphans") {
        // A host-wide sysctl: the kernel registers it in the initial namespace only.
        format!("could not read {path}: it exists only in the host's network namespace")
    } else {
        format!("could not read {path}: {err}")
    }
}

/// A /proc/net or /proc/sys file was read but did not parse.
pub(super) fn unparsed_file(path: &str, err: &dyn Display) -> String {
    format!("could not parse {path}: {err}")
}

/// A /proc/net counters file lacks a section (`Tcp`, `TcpExt`).
pub(super) fn missing_section(path: &str, section: &str) -> String {
    format!("{path} has no {section} section")
}

/// The directory of `ip netns` names could not be listed.
pub(super) fn unlisted_names(dir: impl Display, err: &std::io::Error) -> String {
    format!("could not list {dir}: {err}; namespaces are not named")
}

pub(super) fn udp_refused(why: &str) -> String {
    format!("UDP sockets not read (is the udp_diag module available?): {why}")
}

pub(super) fn ports_untracked(sockets: u64) -> String {
    format!(
        "ephemeral ports in use were counted for the first 65536 destinations met; {sockets} \
         sockets to other destinations were not"
    )
}

/// `unowned` sockets of the scanned namespaces had no owner among their processes, so the
/// processes of other namespaces were walked (`walked`, of which `unreadable` could not be
/// read to the end): `found` of those sockets are held by `holders` of them.
pub(super) fn looked_elsewhere(
    unowned: usize,
    walked: usize,
    unreadable: u64,
    found: usize,
    holders: usize,
) -> String {
    let unreadable = if unreadable > 0 {
        format!(" ({unreadable} could not be read)")
    } else {
        String::new()
    };
    let sockets = if unowned == 1 { "socket" } else { "sockets" };
    let processes = |n: usize| if n == 1 { "process" } else { "processes" };
    format!(
        "{unowned} {sockets} had no owner among the processes of the scanned namespaces; \
         walked the descriptors of {walked} {} of other namespaces{unreadable}, found the \
         owners of {found} ({holders} {}: descriptors passed across namespaces)",
        processes(walked),
        processes(holders),
    )
}

/// `unowned` sockets have no owner among the processes of the scanned namespaces, and a
/// refresh did not walk the `unwalked` processes of other namespaces for them: they were
/// `looked_for` already, or the last such walk was too recent.
pub(super) fn not_looked_elsewhere(unowned: usize, unwalked: usize, looked_for: bool) -> String {
    let why = if looked_for {
        "they were looked for there before"
    } else {
        "the last such walk was too recent"
    };
    format!(
        "{unowned} sockets have no owner among the processes of the scanned namespaces; the \
         {unwalked} processes of other namespaces were not walked for them in this refresh \
         ({why})"
    )
}

/// The owners of sockets were read by the BPF iterator.
pub(super) fn owners_from_iterator() -> String {
    "socket owners read by the BPF iterator (iter/task_file), in one pass over every \
     process's descriptors; not the /proc walk"
        .to_owned()
}

/// A refresh walked /proc: fewer descriptors to read than one run of the iterator costs.
pub(super) fn owners_walked_cheaper() -> String {
    "socket owners of the processes that changed read by the /proc walk: cheaper for so few \
     descriptors than a run of the BPF iterator, which the full passes use"
        .to_owned()
}

/// The iterator loaded but failed to run: the /proc walk instead.
pub(super) fn owners_walked_after(why: &str) -> String {
    format!("socket owners read by the /proc walk: the BPF iterator failed ({why})")
}

/// The iterator did not load: the /proc walk instead.
pub(super) fn owners_walked_unloaded(why: &dyn Display) -> String {
    format!("socket owners read by the /proc walk, not the BPF iterator: {why}")
}

/// `--owners proc`.
pub(super) fn owners_walked_as_asked() -> String {
    "socket owners read by the /proc walk, as --owners proc asks".to_owned()
}
