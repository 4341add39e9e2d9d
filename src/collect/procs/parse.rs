//! Pure parsers for what the process walk reads: pid directory names, `fd` link targets,
//! `/proc/PID/stat` and `/proc/PID/limits`. No I/O here, so each is tested over bytes and
//! fixtures.

use crate::model::FdLimit;

/// A `/proc` entry name that is a pid: ASCII digits only, fitting a `u32`.
pub fn parse_pid(name: &[u8]) -> Option<u32> {
    parse_decimal(name).and_then(|n| u32::try_from(n).ok())
}

/// The inode of a socket from the target of a `/proc/PID/fd/N` link: `socket:[INODE]`.
///
/// Every other target (a path, `pipe:[…]`, `anon_inode:[eventfd]`, a truncated read) is
/// `None`. Works on the raw bytes so the walk needs no allocation per descriptor.
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    target
        .strip_prefix(b"socket:[")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .and_then(parse_decimal)
}

/// Unsigned decimal digits, nothing else; `None` when empty or too big for a `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat` (`include/linux/sched.h`).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// The fields of `/proc/PID/stat` the walk keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The same name `/proc/PID/comm` gives (at most 15 bytes).
    pub comm: String,
    /// One letter: `R`, `S`, `D`, `Z` (zombie), ...
    pub state: u8,
    /// `task->flags` (`PF_*`), field 9.
    pub flags: u32,
    /// Start time in clock ticks after boot, field 22: with the pid, it names one process
    /// for as long as the host runs (a pid can be reused, a pid and start time cannot).
    pub start_time: u64,
}

/// Why a `/proc/PID/stat` text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable /proc/PID/stat: {0:?}")]
pub struct StatError(pub String);

/// The fields of `/proc/PID/stat` that the walk keeps.
///
/// The name, field 2, is the only one that may hold spaces and parentheses (`(a) (b)` for a
/// program named `a) (b`); it runs to the *last* `)`, and the other fields follow it,
/// separated by single spaces.
///
/// # Errors
///
/// When there is no parenthesised name or a kept field is missing or not a number.
pub fn parse_stat(text: &[u8]) -> Result<Stat, StatError> {
    let bad = || StatError(String::from_utf8_lossy(text).trim_end().to_owned());
    let open = text.iter().position(|&b| b == b'(').ok_or_else(bad)?;
    let close = text.iter().rposition(|&b| b == b')').ok_or_else(bad)?;
    let comm = text.get(open + 1..close).ok_or_else(bad)?;
    let mut rest = text[close + 1..]
        .split(u8::is_ascii_whitespace)
        .filter(|field| !field.is_empty());
    // Fields 3 onwards: rest[0] is field 3.
    // One letter (`R`, `S`, `D`, `Z`, `t`, `I` …); anything else is not what the kernel writes.
    let state = match rest.next() {
        Some([letter]) if letter.is_ascii_alphabetic() => *letter,
        _ => return Err(bad()),
    };
    let flags = rest.nth(9 - 4).and_then(parse_decimal).ok_or_else(bad)?;
    let start_time = rest.nth(22 - 10).and_then(parse_decimal).ok_or_else(bad)?;
    Ok(Stat {
        comm: String::from_utf8_lossy(comm).into_owned(),
        state,
        flags: u32::try_from(flags).map_err(|_| bad())?,
        start_time,
    })
}

/// Why a `/proc/PID/limits` text gave no `RLIMIT_NOFILE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("no \"Max open files\" line")]
    Missing,
    #[error("unreadable \"Max open files\" line: {0:?}")]
    Malformed(String),
}

/// `RLIMIT_NOFILE` from the text of `/proc/PID/limits`; `unlimited` becomes `None`.
///
/// The kernel prints one fixed-width row per limit:
/// `Max open files            1024                 524288               files`.
/// Only that row is read: `procfs_core::process::Limits` parses all sixteen rows into a
/// map of owned strings per process and fails when any row is missing, which is more
/// work, and more ways to fail, than a scan of every process needs.
///
/// # Errors
///
/// When the row is missing, or its soft or hard value is neither a number nor `unlimited`.
pub fn parse_nofile_limit(text: &str) -> Result<FdLimit, LimitsError> {
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or(LimitsError::Missing)?;
    let malformed = || LimitsError::Malformed(line.trim_end().to_owned());
    let value = |field: Option<&str>| match field {
        Some("unlimited") => Ok(None),
        Some(n) => parse_decimal(n.as_bytes()).map(Some).ok_or_else(malformed),
        None => Err(malformed()),
    };
    let mut fields = line["Max open files".len()..].split_whitespace();
    Ok(FdLimit {
        soft: value(fields.next())?,
        hard: value(fields.next())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use procfs_core::FromRead;
    use procfs_core::process::{LimitValue, Limits};

    /// `cat /proc/self/limits` as root on Linux 6.18 (see `tests/fixtures/proc/README.md`).
    const LIMITS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/limits"
    ));

    #[test]
    fn pids_are_plain_decimal() {
        assert_eq!(parse_pid(b"1"), Some(1));
        assert_eq!(parse_pid(b"4194304"), Some(4_194_304));
        for not_a_pid in [
            &b""[..],
            b"self",
            b"thread-self",
            b"12a",
            b"-1",
            b"+1",
            b"4294967296",
        ] {
            assert_eq!(parse_pid(not_a_pid), None, "{not_a_pid:?}");
        }
    }

    #[test]
    fn socket_links_give_their_inode() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"socket:[0]"), Some(0));
        assert_eq!(
            parse_socket_link(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn other_links_are_not_sockets() {
        for target in [
            &b"pipe:[12345]"[..],
            b"anon_inode:[eventfd]",
            b"/dev/null",
            b"/tmp/socket:[1] (deleted)",
            b"socket:[]",
            b"socket:[12a]",
            b"socket:[123",
            b"socket:[123] ",
            b"socket:[18446744073709551616]",
            b"net:[4026531840]",
            b"",
        ] {
            assert_eq!(parse_socket_link(target), None, "{target:?}");
        }
    }

    /// `/proc/self/stat` of `cat`, of kthreadd, and of a program named `odd) (name`
    /// (see `tests/fixtures/proc/README.md`).
    const STAT: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/stat"
    ));
    const STAT_KTHREADD: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/stat.kthreadd"
    ));
    const STAT_ODD_COMM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/stat.odd-comm"
    ));

    #[test]
    fn stat_gives_name_state_flags_and_start_time() {
        let cat = parse_stat(STAT).expect("parses");
        assert_eq!(
            cat,
            Stat {
                comm: "cat".into(),
                state: b'R',
                flags: 4_194_304,
                start_time: 271_341,
            }
        );
        assert_eq!(cat.flags & PF_KTHREAD, 0);
        let kthreadd = parse_stat(STAT_KTHREADD).expect("parses");
        assert_eq!(
            (kthreadd.comm.as_str(), kthreadd.start_time),
            ("kthreadd", 30)
        );
        assert_ne!(kthreadd.flags & PF_KTHREAD, 0, "a kernel thread");
    }

    #[test]
    fn a_name_with_parentheses_and_spaces_runs_to_the_last_parenthesis() {
        let odd = parse_stat(STAT_ODD_COMM).expect("parses");
        assert_eq!(odd.comm, "odd) (name");
        assert_eq!((odd.state, odd.start_time), (b'S', 271_344));
    }

    #[test]
    fn broken_stat_is_an_error() {
        for text in [
            &b""[..],
            b"1 cat R 0",
            b"1 (cat) R 0 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0",
            b"1 (cat) R 0 0 0 0 -1 x 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"1 (cat) RR 0 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 5",
            // A control character as the state: found by the `proc_stat` fuzz target.
            b"1 (cat) \x12 0 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"1 cat) (R 0",
        ] {
            assert!(
                parse_stat(text).is_err(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        let minimal = b"1 (cat) R 0 0 0 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 5";
        assert_eq!(parse_stat(minimal).expect("parses").start_time, 5);
    }

    #[test]
    fn nofile_limit_from_a_real_limits_file() {
        let limit = parse_nofile_limit(LIMITS).expect("fixture has Max open files");
        assert_eq!(
            limit,
            FdLimit {
                soft: Some(20000),
                hard: Some(20000)
            }
        );
    }

    #[test]
    fn nofile_limit_agrees_with_procfs_core() {
        let theirs = Limits::from_read(LIMITS.as_bytes()).expect("procfs-core parses it");
        let value = |v: LimitValue| match v {
            LimitValue::Unlimited => None,
            LimitValue::Value(n) => Some(n),
        };
        let ours = parse_nofile_limit(LIMITS).expect("we parse it");
        assert_eq!(ours.soft, value(theirs.max_open_files.soft_limit));
        assert_eq!(ours.hard, value(theirs.max_open_files.hard_limit));
    }

    #[test]
    fn unlimited_is_none() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            1024                 unlimited            files     \n";
        let limit = parse_nofile_limit(text).expect("parses");
        assert_eq!(
            limit,
            FdLimit {
                soft: Some(1024),
                hard: None
            }
        );
    }

    #[test]
    fn broken_limits_are_errors() {
        assert_eq!(parse_nofile_limit(""), Err(LimitsError::Missing));
        assert_eq!(
            parse_nofile_limit("Max processes 1 1 processes\n"),
            Err(LimitsError::Missing)
        );
        for line in [
            "Max open files",
            "Max open files 1024",
            "Max open files lots 4096 files",
        ] {
            assert!(
                matches!(parse_nofile_limit(line), Err(LimitsError::Malformed(_))),
                "{line:?}"
            );
        }
    }
}
