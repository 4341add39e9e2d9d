//! Pure parsers for what the process walk reads: pid directory names, `fd` link targets
//! and `/proc/PID/limits`. No I/O here, so each is tested over bytes and fixtures.

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
