//! The only code that touches the kernel: sock_diag, /proc, /proc/sys and network
//! namespaces.
//!
//! [`collect`] is one full pass: it must agree with `ss` on every count. A [`Collector`] that
//! lives across refreshes can instead refresh incrementally, re-reading each time only what
//! is cheap and what a diagnosis turns on (see [`crate::model::Freshness`] for what that
//! is). Nothing here decides what is bad; it only records what the kernel said and what
//! could not be read.
//!
//! This module owns the public face ([`collect`], [`CollectOptions`], [`CollectError`]);
//! the work is done in three layers, each importing only the ones below it (no import cycle;
//! a test in `tests.rs` reads the readers' sources to keep it so). The engine, from the top:
//!
//! | module | owns |
//! | --- | --- |
//! | `collector` | [`Collector`]: the schedule of full and cheap reads, and what it keeps between refreshes |
//! | `pass` | one pass: its steps, in order, and the threads they run on |
//! | `read_plan` | what a pass reads: all processes or the changed ones, each namespace in full or in its cheap states |
//! | `carry_over` | what a refresh keeps from the passes before it, and how it puts it back |
//! | `owner_source` | where a pass reads the owners of sockets: the /proc walk or the BPF iterator (`--owners`) |
//! | `owners` | the second looks for owners: of listeners and CLOSE_WAIT sockets a refresh left unowned, and of sockets of the scanned namespaces held from other namespaces |
//! | `cross_peers` | the other end of a connection from another scanned namespace, looked for there |
//! | `join` | sockets joined with processes by inode |
//! | `notes` | the wording of every note, from the typed problems the readers return |
//! | [`kill`] | `sockscope kill`: a process's sockets selected by their exact identity, and destroyed |
//!
//! The readers, which keep no state between refreshes and never import the engine:
//!
//! | module | owns |
//! | --- | --- |
//! | `sockets` | one namespace's read: its counters, then its sockets (what is kept, the peer check, the port tally, the index by inode) |
//! | [`acceptors`] | who holds a listener with something waiting, and what its threads are doing |
//! | [`netlink`], [`procs`], [`procnet`], [`netns`] | sock_diag, /proc/PID, /proc/net and /proc/sys, network namespaces |
//! | [`bpf`] | every process's socket descriptors from the kernel in one read (a BPF iterator) |
//!
//! Below them all, importing nothing of `collect/`: `vocab` (namespace ids, what pass 1 saw
//! of a process, inode maps and their hasher, plain addresses, how deep a dump reads) and
//! `clock` (the wall, monotonic and thread-CPU clocks).

pub mod acceptors;
pub mod bpf;
mod carry_over;
mod clock;
mod collector;
mod cross_peers;
mod join;
pub mod kill;
pub mod netlink;
pub mod netns;
mod notes;
mod owner_source;
mod owners;
mod pass;
pub mod procnet;
pub mod procs;
mod read_plan;
mod sockets;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod vocab;

use std::path::PathBuf;

use crate::model::Snapshot;
pub use collector::{Collector, Refresh};
use netlink::NetlinkError;
use netns::EnterError;
pub use netns::runtime::RuntimeRoots;
pub use netns::{NetnsScope, ResolveError};
use read_plan::ReadPlan;
pub use vocab::NsId;

/// Where and how to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Root of the proc filesystem, `/proc` on a live host.
    pub proc_root: PathBuf,
    /// Threads for the /proc walk, and for dumping other network namespaces.
    pub threads: usize,
    /// Which network namespaces to collect.
    pub netns: NetnsScope,
    /// Where `ip netns` keeps its names: `/run/netns`.
    pub netns_dir: PathBuf,
    /// Where the container runtimes keep the names of their containers.
    pub runtimes: RuntimeRoots,
    /// Tally where each namespace's connection tracking entries go, in each full read
    /// (`--conntrack-ports`).
    pub conntrack_ports: bool,
    /// Where the owners of sockets are read: the /proc walk or the BPF iterator.
    pub owners: Owners,
}

/// Where the owners of sockets are read (`--owners`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Owners {
    /// The BPF iterator where it loads, the /proc walk elsewhere (and where the processes in
    /// scope hold few of the host's descriptors).
    #[default]
    Auto,
    /// The /proc walk: one readlink per descriptor.
    Proc,
    /// The BPF iterator; a host where it does not load is an error.
    Bpf,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            proc_root: PathBuf::from("/proc"),
            threads: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            netns: NetnsScope::Own,
            netns_dir: PathBuf::from("/run/netns"),
            runtimes: RuntimeRoots::default(),
            conntrack_ports: false,
            owners: Owners::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("sock_diag dump failed: {0}")]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] ResolveError),
    /// The one namespace asked for could not be entered.
    #[error("network namespace {label}: {reason}")]
    NetnsLost { label: String, reason: EnterError },
    /// `--owners bpf`, and the iterator does not load here.
    #[error("--owners bpf: {0} (or use --owners auto)")]
    Owners(bpf::LoadError),
    /// `--owners bpf`, and the iterator failed to run.
    #[error("--owners bpf: {0} (or use --owners auto)")]
    OwnersRead(String),
}

/// Take one snapshot, reading everything: of the namespaces `opts` asks for and of every
/// process.
pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    let mut owners = owner_source::OwnerSource::new(opts.owners);
    pass::run(
        opts,
        None,
        None,
        ReadPlan::FULL,
        (
            carry_over::Keep::Nothing,
            sockets::slot_index::SlotIndex::default(),
        ),
        &mut owners,
    )
    .map(|pass| pass.snapshot)
}
