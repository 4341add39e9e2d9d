//! Who drains a listener: the processes that hold it, the descriptors they hold it by, the
//! epoll sets of theirs that watch it, and what each of their threads was doing when the pass
//! looked.
//!
//! `collect/` reads these facts only for listeners that have something to explain (a
//! connection waiting in the accept queue, or a request socket): on a healthy host they are
//! not read at all. Deciding who is an acceptor, and whether it is stuck, is the analysis's
//! job; this is what the kernel said, decoded.

use serde::{Deserialize, Serialize};

/// The holders of one listener (TCP or unix), by its socket inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerHolders {
    pub inode: u64,
    /// One entry per process holding the listener, by pid.
    pub holders: Vec<Holder>,
}

/// One process holding a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// Its descriptors on the listener.
    pub fds: Vec<u32>,
    /// Its epoll descriptors whose interest list holds the listener (`tfd:` lines of
    /// `/proc/PID/fdinfo`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoll_fds: Vec<u32>,
    /// Its threads, by tid, at most [`THREAD_LIMIT`].
    pub threads: Vec<Task>,
    /// Threads past [`THREAD_LIMIT`], counted, not read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub threads_left_out: u32,
    /// What could not be read of it; `None` when everything was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<Unreadable>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// At most this many threads of one holder are read.
pub const THREAD_LIMIT: usize = 1_000;

/// Why part of a holder could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreadable {
    /// Its descriptors, or its threads' system calls, are another user's to read (not root).
    Denied,
    /// It exited while it was being read.
    Vanished,
}

/// One thread, as `/proc/PID/task/TID/{stat,syscall,wchan}` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub tid: u32,
    /// The thread's name (`comm`, at most 15 bytes): chosen by the program.
    pub comm: String,
    pub state: TaskState,
    /// CPU time used since the thread started, user and system, milliseconds.
    pub cpu_ms: u64,
    /// The system call it is blocked in; `None` when that could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<Syscall>,
    /// The kernel function it sleeps in (`wchan`), when it sleeps and the kernel says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
}

/// A task's scheduler state, the letter of `/proc/PID/task/TID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// `R`: running or runnable.
    Running,
    /// `S` (interruptible sleep), `I` (idle).
    Sleeping,
    /// `D`: uninterruptible sleep, usually waiting on a disk or a network filesystem.
    Disk,
    /// `T`: stopped by a signal (SIGSTOP, SIGTSTP) or a frozen job.
    Stopped,
    /// `t`: stopped by a tracer (a debugger, strace).
    Traced,
    /// `Z` or `X`: exited, not yet reaped.
    Zombie,
    /// A letter a newer kernel may write.
    Other(char),
}

impl TaskState {
    /// The state a `/proc/PID/stat` letter stands for.
    pub fn from_letter(letter: u8) -> TaskState {
        match letter {
            b'R' => TaskState::Running,
            b'S' | b'I' => TaskState::Sleeping,
            b'D' => TaskState::Disk,
            b'T' => TaskState::Stopped,
            b't' => TaskState::Traced,
            b'Z' | b'X' | b'x' => TaskState::Zombie,
            other => TaskState::Other(char::from(other)),
        }
    }
}

/// What `/proc/PID/task/TID/syscall` said, decoded: system call numbers differ between
/// architectures, so only these meanings are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Syscall {
    /// On a CPU: the kernel cannot say.
    Running,
    /// Blocked in `accept()` or `accept4()` on this descriptor.
    Accept { fd: u32 },
    /// Blocked in `epoll_wait()`, `epoll_pwait()` or `epoll_pwait2()` on this epoll
    /// descriptor.
    EpollWait { epfd: u32 },
    /// Blocked in `poll()`, `ppoll()`, `select()` or `pselect6()`: which descriptors it
    /// watches is in its own memory, not here.
    Poll,
    /// Blocked in another system call.
    Other,
    /// Blocked outside any system call (a page fault, a stop before the first one).
    None,
}
