//! The wording of the notes a snapshot carries: what could not be read, and why, for a
//! person to act on. Every note of `collect/` is worded here. What goes wrong is found where
//! it happens and handed over as a typed problem ([`ScanProblem`] of the /proc walk,
//! [`TableProblem`] of /proc/net and /proc/sys, [`CatalogProblem`] of the namespace catalog,
//! [`Lost`] of a namespace not read): the readers word nothing.
//!
//! Notes are for people: nothing may parse them (a finding's identity is typed, never a
//! note's text).

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};

use super::netlink::NetlinkError;
use super::netns::{CatalogProblem, EnterError, Target};
use super::procnet::TableProblem;
use super::procs::{ProcessScan, ScanProblem, Unread};
use super::sockets::Lost;
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
    let mut notes = scan_problems(&scan.problems);
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

/// The walk's problems: the proc root's first, then one file of some processes for one
/// reason, by file and reason.
fn scan_problems(problems: &[ScanProblem]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut unread = Vec::new();
    for problem in problems {
        match problem {
            ScanProblem::RootUnopened { root, err } => notes.push(format!(
                "could not open {}: {}",
                root.display(),
                io::Error::from(*err)
            )),
            ScanProblem::RootUnlisted { root, err } => notes.push(format!(
                "could not list every process in {}: {}",
                root.display(),
                io::Error::from(*err)
            )),
            ScanProblem::Unread {
                file,
                processes,
                why,
            } => {
                let why = match why {
                    Unread::Io(err) => io::Error::from(*err).to_string(),
                    Unread::Limits(err) => format!("unexpected format: {err}"),
                    Unread::Stat(err) => format!("unexpected format: {err}"),
                };
                unread.push((*file, why, *processes));
            }
        }
    }
    unread.sort();
    notes.extend(unread.into_iter().map(|(file, why, n)| {
        let whose = if n == 1 {
            "1 process".to_owned()
        } else {
            format!("{n} processes")
        };
        format!("could not read {file} of {whose}: {why}")
    }));
    notes
}

/// The /proc/net and /proc/sys files of a namespace that could not be read or parsed.
pub(super) fn tables(problems: &[TableProblem]) -> Vec<String> {
    problems
        .iter()
        .map(|problem| match problem {
            TableProblem::Unread { path, err }
                if err.kind() == ErrorKind::NotFound && path.ends_with("/tcp_max_orphans") =>
            {
                // A host-wide sysctl: the kernel registers it in the initial namespace only.
                format!("could not read {path}: it exists only in the host's network namespace")
            }
            TableProblem::Unread { path, err } => format!("could not read {path}: {err}"),
            TableProblem::Unparsed { path, err } => format!("could not parse {path}: {err}"),
            TableProblem::MissingSection { path, section } => {
                format!("{path} has no {section} section")
            }
        })
        .collect()
}

/// What could not be read while finding the namespaces.
pub(super) fn catalog(problems: &[CatalogProblem]) -> Vec<String> {
    problems
        .iter()
        .map(|problem| match problem {
            CatalogProblem::NamesUnlisted { dir, err } => format!(
                "could not list {}: {err}; namespaces are not named",
                dir.display()
            ),
        })
        .collect()
}

/// The kernel refused to dump the UDP sockets.
pub(super) fn udp_refused(why: &NetlinkError) -> String {
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

/// A first full pass walked: its processes hold few of the host's descriptors.
pub(super) fn owners_walked_fewer() -> String {
    "socket owners read by the /proc walk: the processes in scope hold so few of the host's \
     descriptors that walking them costs less than a run of the BPF iterator, which visits \
     every process's"
        .to_owned()
}

/// The iterator loaded but failed to run: the /proc walk instead.
pub(super) fn owners_walked_after(why: &str) -> String {
    format!("socket owners read by the /proc walk: the BPF iterator failed ({why})")
}

/// The iterator did not load: the /proc walk instead.
pub(super) fn owners_walked_unloaded(why: &dyn std::fmt::Display) -> String {
    format!("socket owners read by the /proc walk, not the BPF iterator: {why}")
}

/// `--owners proc`.
pub(super) fn owners_walked_as_asked() -> String {
    "socket owners read by the /proc walk, as --owners proc asks".to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use rustix::io::Errno;

    use super::*;
    use crate::collect::procnet::parse;
    use crate::collect::procs::LimitsError;

    #[test]
    fn the_walks_problems_are_worded_root_first_then_by_file_and_reason() {
        let root = PathBuf::from("/nonexistent/proc");
        let limits = Unread::Limits(LimitsError::Missing);
        let problems = [
            ScanProblem::Unread {
                file: "/proc/PID/limits",
                processes: 1,
                why: limits,
            },
            ScanProblem::Unread {
                file: "/proc/PID/fd",
                processes: 3,
                why: Unread::Io(Errno::IO),
            },
            ScanProblem::RootUnlisted {
                root,
                err: Errno::IO,
            },
        ];
        let notes = scan_problems(&problems);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("could not list every process in /nonexistent/proc: "));
        assert!(
            notes[1].starts_with("could not read /proc/PID/fd of 3 processes: "),
            "{notes:?}"
        );
        assert!(
            notes[2].starts_with("could not read /proc/PID/limits of 1 process: unexpected format"),
            "{notes:?}"
        );
    }

    #[test]
    fn a_malformed_or_missing_file_is_worded_with_its_path() {
        let unparsed = parse::parse_snmp("TcpExt: A B\nTcpExt: 1\n").expect_err("malformed");
        let problems = [
            TableProblem::Unparsed {
                path: "/x/netstat".into(),
                err: unparsed,
            },
            TableProblem::Unread {
                path: "/x/sockstat".into(),
                err: Arc::new(std::io::Error::from(ErrorKind::NotFound)),
            },
            TableProblem::Unread {
                path: "/proc/sys/net/ipv4/tcp_max_orphans".into(),
                err: Arc::new(std::io::Error::from(ErrorKind::NotFound)),
            },
            TableProblem::MissingSection {
                path: "/x/snmp".into(),
                section: "Tcp",
            },
        ];
        assert_eq!(
            tables(&problems),
            [
                "could not parse /x/netstat: line 2: section TcpExt has 2 names but 1 values",
                "could not read /x/sockstat: entity not found",
                "could not read /proc/sys/net/ipv4/tcp_max_orphans: it exists only in the \
                 host's network namespace",
                "/x/snmp has no Tcp section",
            ]
        );
    }
}
