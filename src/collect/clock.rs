//! The clocks a pass reads: the wall clock and the monotonic clock a snapshot is stamped
//! with, and the calling thread's CPU time, by which the costly parts of a pass are
//! measured and spread out. Nothing else in `collect/` reads a clock but through here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, by the wall clock.
pub(super) fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
pub(super) fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Run `f`, and say how much CPU time it took on the calling thread: what a pass's parts
/// cost, whatever else the host is doing.
pub(super) fn thread_cpu_of<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let before = thread_cpu();
    let out = f();
    (out, thread_cpu().saturating_sub(before))
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}
