//! The /proc process walk: comm, uid, fd count and limit, socket inodes. (Stub: being written.)

use std::path::Path;

use crate::model::{FdLimit, FdScan, ProcessScanStats};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedProcess {
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    pub netns: Option<u64>,
    pub fds: Option<u64>,
    pub fd_limit: Option<FdLimit>,
    pub fd_scan: FdScan,
    pub socket_inodes: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ProcessScan {
    /// Sorted by pid.
    pub processes: Vec<ScannedProcess>,
    pub stats: ProcessScanStats,
}

/// Walk every process under `proc_root` (normally `/proc`) with `threads` threads.
pub fn scan_processes(proc_root: &Path, threads: usize) -> ProcessScan {
    let _ = (proc_root, threads);
    ProcessScan::default()
}
