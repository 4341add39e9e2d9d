//! Pure parsers of the /proc files that say who drains a listener: a thread's `stat`,
//! `syscall` and `wchan`, and the `tfd:` lines of an epoll descriptor's `fdinfo`.

use crate::model::{Syscall, TaskState};

/// The system call numbers the reader tells apart. They differ between architectures; the
/// running one's come from [`native`], a fixture's from `X86_64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallTable {
    /// `accept`, `accept4`.
    pub accept: [i64; 2],
    /// `epoll_wait`, `epoll_pwait`, `epoll_pwait2`.
    pub epoll: [i64; 3],
    /// `poll`, `ppoll`, `select`, `pselect6`.
    pub poll: [i64; 4],
}

/// No system call has this number: the slot of one an architecture lacks (arm64 has no
/// `epoll_wait`, only `epoll_pwait`).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
const ABSENT: i64 = i64::MIN;

/// The numbers of x86_64 (`arch/x86/entry/syscalls/syscall_64.tbl`).
#[cfg(test)]
pub const X86_64: SyscallTable = SyscallTable {
    accept: [43, 288],
    epoll: [232, 281, 441],
    poll: [7, 271, 23, 270],
};

/// The numbers of the architecture sockscope runs on, from libc's constants.
pub fn native() -> SyscallTable {
    let n = i64::from;
    #[cfg(target_arch = "x86_64")]
    let (epoll_wait, poll, select) = (
        n(libc::SYS_epoll_wait),
        n(libc::SYS_poll),
        n(libc::SYS_select),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (epoll_wait, poll, select) = (ABSENT, ABSENT, ABSENT);
    SyscallTable {
        accept: [n(libc::SYS_accept), n(libc::SYS_accept4)],
        epoll: [
            epoll_wait,
            n(libc::SYS_epoll_pwait),
            n(libc::SYS_epoll_pwait2),
        ],
        poll: [poll, n(libc::SYS_ppoll), select, n(libc::SYS_pselect6)],
    }
}

/// Why a /proc text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable {file}: {text:?}")]
pub struct ParseError {
    pub file: &'static str,
    pub text: String,
}

fn bad(file: &'static str, text: &[u8]) -> ParseError {
    ParseError {
        file,
        text: String::from_utf8_lossy(text).trim_end().to_owned(),
    }
}

/// `/proc/PID/task/TID/syscall`: `running`; `-1 SP PC` outside a system call; or the number,
/// six arguments, SP and PC, the arguments in hex (`232 0x4 0x2ca76810 …`). The first
/// argument of accept and epoll_wait is the descriptor.
///
/// # Errors
///
/// When the text is none of these.
pub fn parse_syscall(text: &[u8], table: &SyscallTable) -> Result<Syscall, ParseError> {
    let err = || bad("/proc/PID/task/TID/syscall", text);
    let text = std::str::from_utf8(text).map_err(|_| err())?.trim_end();
    if text == "running" {
        return Ok(Syscall::Running);
    }
    let mut fields = text.split(' ');
    let nr: i64 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(err)?;
    if nr == -1 {
        return Ok(Syscall::None);
    }
    let first = || -> Result<u32, ParseError> {
        let arg = fields.clone().next().ok_or_else(err)?;
        let hex = arg.strip_prefix("0x").ok_or_else(err)?;
        let value = u64::from_str_radix(hex, 16).map_err(|_| err())?;
        // A descriptor is an int: the register holds it sign-extended or not at all.
        u32::try_from(value & 0xffff_ffff).map_err(|_| err())
    };
    Ok(if table.accept.contains(&nr) {
        Syscall::Accept { fd: first()? }
    } else if table.epoll.contains(&nr) {
        Syscall::EpollWait { epfd: first()? }
    } else if table.poll.contains(&nr) {
        Syscall::Poll
    } else {
        Syscall::Other
    })
}

/// The fields of `/proc/PID/task/TID/stat` the reader keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStat {
    pub comm: String,
    pub state: TaskState,
    /// `utime` + `stime` (fields 14 and 15), clock ticks.
    pub cpu_ticks: u64,
}

/// A thread's `stat`. The name, field 2, may hold spaces and parentheses: it runs to the last
/// `)`, and the other fields follow it, separated by spaces.
///
/// # Errors
///
/// When there is no parenthesised name, or the state or CPU times are missing.
pub fn parse_task_stat(text: &[u8]) -> Result<TaskStat, ParseError> {
    let err = || bad("/proc/PID/task/TID/stat", text);
    let open = text.iter().position(|&b| b == b'(').ok_or_else(err)?;
    let close = text.iter().rposition(|&b| b == b')').ok_or_else(err)?;
    let comm = text.get(open + 1..close).ok_or_else(err)?;
    let rest = std::str::from_utf8(&text[close + 1..]).map_err(|_| err())?;
    let mut fields = rest.split_ascii_whitespace();
    // fields.next() is field 3.
    let state = match fields.next().map(str::as_bytes) {
        Some([letter]) if letter.is_ascii_alphabetic() => TaskState::from_letter(*letter),
        _ => return Err(err()),
    };
    let mut number = |skip: usize| -> Result<u64, ParseError> {
        fields
            .nth(skip)
            .and_then(|f| f.parse().ok())
            .ok_or_else(err)
    };
    let utime = number(14 - 4)?;
    let stime = number(0)?;
    Ok(TaskStat {
        comm: String::from_utf8_lossy(comm).into_owned(),
        state,
        cpu_ticks: utime.saturating_add(stime),
    })
}

/// `/proc/PID/task/TID/wchan`: the kernel function a sleeping task waits in; `0` (or
/// nothing) for a running one, or when the kernel hides it.
pub fn parse_wchan(text: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(text).trim().to_owned();
    (!name.is_empty() && name != "0").then_some(name)
}

/// The inodes an epoll descriptor watches, from its `fdinfo`: one `tfd:` line per watched
/// file, `tfd:        3 events:       19 data:     7f0600000003  pos:0 ino:3daa sdev:9`
/// (the inode in hex, kernel ≥ 3.18). Lines that do not parse are skipped: a watched file
/// this reader cannot name is not one of the listeners it looks for.
pub fn parse_epoll_targets(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|line| line.starts_with("tfd:"))
        .filter_map(|line| {
            line.split_ascii_whitespace()
                .find_map(|f| f.strip_prefix("ino:"))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        })
        .collect()
}

/// Whether a descriptor's link target is an epoll instance.
pub fn is_epoll_link(target: &[u8]) -> bool {
    target == b"anon_inode:[eventpoll]"
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on Linux 6.18 x86_64 from a Python listener in `epoll.poll()`:
    // `cat /proc/$pid/syscall`, before and after `kill -STOP $pid`.
    const EPOLL_WAIT: &[u8] =
        b"232 0x4 0x2ca76810 0x3ff 0x186a0 0x0 0x0 0x7fffafe81fb8 0x7f068a9eeef3\n";

    #[test]
    fn syscall_lines_decode_to_what_the_thread_waits_for() {
        assert_eq!(
            parse_syscall(EPOLL_WAIT, &X86_64),
            Ok(Syscall::EpollWait { epfd: 4 })
        );
        assert_eq!(
            parse_syscall(b"288 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffc 0x7f00\n", &X86_64),
            Ok(Syscall::Accept { fd: 3 })
        );
        assert_eq!(
            parse_syscall(b"43 0x7 0x7ffc0 0x7ffc4 0x0 0x0 0x0 0x1 0x2\n", &X86_64),
            Ok(Syscall::Accept { fd: 7 })
        );
        assert_eq!(
            parse_syscall(b"230 0x0 0x0 0x7ffe 0x7ffe 0x0 0x0 0x1 0x2\n", &X86_64),
            Ok(Syscall::Other)
        );
        assert_eq!(
            parse_syscall(b"7 0x55d0 0x2 0xffffffff 0x0 0x0 0x0 0x1 0x2\n", &X86_64),
            Ok(Syscall::Poll)
        );
        assert_eq!(parse_syscall(b"running\n", &X86_64), Ok(Syscall::Running));
        assert_eq!(
            parse_syscall(b"-1 0x7ffd 0x55d0\n", &X86_64),
            Ok(Syscall::None)
        );
        // A descriptor sign-extended into the register keeps its low 32 bits.
        assert_eq!(
            parse_syscall(
                b"43 0xffffffff00000009 0x0 0x0 0x0 0x0 0x0 0x1 0x2\n",
                &X86_64
            ),
            Ok(Syscall::Accept { fd: 9 })
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_captured_files_read_as_what_the_threads_did() {
        let syscall = |name| parse_syscall(&fixture(name), &X86_64);
        assert_eq!(
            syscall("task.syscall-epoll"),
            Ok(Syscall::EpollWait { epfd: 5 })
        );
        assert_eq!(
            syscall("task.syscall-stopped"),
            Ok(Syscall::EpollWait { epfd: 5 })
        );
        assert_eq!(
            syscall("task.syscall-accept"),
            Ok(Syscall::Accept { fd: 4 })
        );
        let stat = parse_task_stat(&fixture("task.stat-thread")).expect("parses");
        assert_eq!(
            (stat.comm.as_str(), stat.state),
            ("acceptor", TaskState::Sleeping)
        );
        let fdinfo = String::from_utf8(fixture("task.fdinfo-epoll")).expect("text");
        assert_eq!(parse_epoll_targets(&fdinfo), vec![0x16_dc6b]);
        for (name, want) in [
            ("task.wchan-epoll", "do_epoll_wait"),
            ("task.wchan-accept", "inet_csk_accept"),
            ("task.wchan-stopped", "do_signal_stop"),
        ] {
            assert_eq!(parse_wchan(&fixture(name)).as_deref(), Some(want));
        }
    }

    #[test]
    fn malformed_syscall_lines_are_errors() {
        for text in [&b""[..], b"accept", b"43", b"43 7 0x0", b"232 0xzz"] {
            assert!(parse_syscall(text, &X86_64).is_err(), "{text:?}");
        }
    }

    #[test]
    fn the_native_table_knows_accept_and_epoll() {
        let table = native();
        assert!(table.accept.iter().all(|&n| n != ABSENT));
        assert!(table.epoll[1] != ABSENT && table.epoll[2] != ABSENT);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(table, X86_64);
    }

    #[test]
    fn task_stat_gives_state_name_and_cpu() {
        // Captured: /proc/10560/stat of the same Python listener (fields past 20 trimmed
        // after `starttime`).
        let text = b"10560 (python3) S 10557 10557 5638 0 -1 4194304 1143 0 2 0 1 1 0 0 20 0 \
                     1 0 21830 14503936\n";
        assert_eq!(
            parse_task_stat(text),
            Ok(TaskStat {
                comm: "python3".into(),
                state: TaskState::Sleeping,
                cpu_ticks: 2,
            })
        );
        let odd = b"9 (a) (b c) t 1 1 1 0 -1 0 0 0 0 0 250 17 0 0 20 0\n";
        let stat = parse_task_stat(odd).expect("parses");
        assert_eq!(stat.comm, "a) (b c");
        assert_eq!(stat.state, TaskState::Traced);
        assert_eq!(stat.cpu_ticks, 267);
        for broken in [&b"9 a S 1"[..], b"9 (a) S 1 2 3", b"9 (a) 12 1 1"] {
            assert!(parse_task_stat(broken).is_err(), "{broken:?}");
        }
    }

    #[test]
    fn states_decode_from_their_letters() {
        for (letter, state) in [
            (b'R', TaskState::Running),
            (b'S', TaskState::Sleeping),
            (b'I', TaskState::Sleeping),
            (b'D', TaskState::Disk),
            (b'T', TaskState::Stopped),
            (b't', TaskState::Traced),
            (b'Z', TaskState::Zombie),
            (b'W', TaskState::Other('W')),
        ] {
            assert_eq!(TaskState::from_letter(letter), state);
        }
    }

    #[test]
    fn wchan_is_a_name_or_nothing() {
        assert_eq!(parse_wchan(b"do_epoll_wait"), Some("do_epoll_wait".into()));
        assert_eq!(
            parse_wchan(b"do_signal_stop\n"),
            Some("do_signal_stop".into())
        );
        assert_eq!(parse_wchan(b"0"), None);
        assert_eq!(parse_wchan(b""), None);
    }

    #[test]
    fn epoll_fdinfo_names_the_watched_inodes() {
        // Captured: /proc/10560/fdinfo/4, an epoll descriptor watching a listener (inode
        // 15786), with a second watched file added for the test.
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n\
                    tfd:        3 events:       19 data:     7f0600000003  pos:0 ino:3daa sdev:9\n\
                    tfd:       12 events:       19 data:                c  pos:0 ino:1f sdev:e\n\
                    tfd:       13 events:       19 data:                c  pos:0 ino:zz sdev:e\n";
        assert_eq!(parse_epoll_targets(text), vec![15786, 31]);
        assert!(parse_epoll_targets("pos:\t0\nflags:\t02\n").is_empty());
    }

    #[test]
    fn epoll_links_are_told_from_other_descriptors() {
        assert!(is_epoll_link(b"anon_inode:[eventpoll]"));
        assert!(!is_epoll_link(b"anon_inode:[eventfd]"));
        assert!(!is_epoll_link(b"socket:[15786]"));
    }
}
