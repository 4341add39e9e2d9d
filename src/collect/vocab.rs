//! The words the readers and the engine of `collect/` share: which network namespace
//! ([`NsId`]), what pass 1 of the /proc walk saw of a process ([`SeenProcess`]), every
//! process's socket descriptors read at once ([`SocketsOfEach`]), maps and
//! sets keyed by socket inode ([`InodeMap`], [`InodeSet`]) and their hasher, an address as
//! both ends of a connection see it ([`plain`]), and how deep a dump reads ([`NsRead`]).
//!
//! It imports nothing of `collect/`: the readers (netlink, /proc processes, /proc/net,
//! namespaces, the socket dump) build on it and on the model only, never on the engine that
//! runs them (`src/collect/tests.rs` checks it).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use rustix::io::Errno;

use crate::model::TcpState;

/// Every process's socket descriptors, read at once from the kernel (the BPF iterator, for
/// the /proc walk to take instead of its links): (pid, the inodes of its socket descriptors
/// in descriptor order, duplicates kept), sorted by pid.
pub type SocketsOfEach = Vec<(u32, Vec<u64>)>;

/// A network namespace, as the kernel names it: the device and inode of its nsfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    pub fn of(st: &rustix::fs::Stat) -> NsId {
        NsId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    /// The namespace a path names, following symlinks.
    pub fn of_path(path: &Path) -> Result<NsId, Errno> {
        rustix::fs::stat(path).map(|st| NsId::of(&st))
    }

    /// The id the model and the report use: the inode, as text.
    pub fn model_id(self) -> String {
        self.ino.to_string()
    }
}

/// What pass 1 of the /proc walk learnt of one live process: what the namespace catalog
/// names namespaces by, and what a scoped walk picks processes by.
#[derive(Debug, Clone, Copy)]
pub struct SeenProcess<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub start_time: Option<u64>,
    pub kernel_thread: bool,
    pub netns: Option<NsId>,
}

/// A map keyed by socket inode.
///
/// Built for 100,000 sockets and looked up once per socket descriptor of every process, it
/// is the collector's hottest data structure; the standard hasher (SipHash, built to resist
/// chosen keys) costs more than the rest of a lookup. Inodes are kernel-assigned counters,
/// not chosen by anyone who could aim them at one bucket, so a multiplicative hash (as
/// rustc's FxHash) spreads them well at a fraction of the cost.
pub type InodeMap<V> = HashMap<u64, V, BuildHasherDefault<InodeHasher>>;

/// A set of socket inodes, hashed as [`InodeMap`]'s keys.
pub type InodeSet = HashSet<u64, BuildHasherDefault<InodeHasher>>;

/// The hasher of [`InodeMap`]: one multiply per `u64`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InodeHasher(u64);

/// FxHash's constant: odd, with well-spread bits, so the product mixes the key into the
/// high bits (which the map's tag bytes come from) and keeps distinct low bits distinct.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for InodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }
}

/// An address as both ends see it: an IPv4-mapped IPv6 address (a dual-stack socket's view
/// of an IPv4 peer) as the IPv4 address.
pub fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// A socket address as both ends see it (see [`plain_ip`]).
pub fn plain(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(plain_ip(addr.ip()), addr.port())
}

/// What a pass reads of one namespace's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsRead {
    /// Every TCP socket and every unix socket, with sysctls and local addresses: what a
    /// report needs to agree with `ss` on every count.
    Full,
    /// The cheap states: TCP and unix listeners and the counters, with the SYN_RECV and
    /// CLOSE_WAIT sockets.
    Fresh,
    /// As [`NsRead::Fresh`], unless no TCP counter of the namespace moved since its
    /// SYN_RECV and CLOSE_WAIT sockets were last read: then as [`NsRead::Listeners`].
    /// Settled once the counters are read; unsettled, it reads them.
    FreshIfMoved,
    /// TCP and unix listeners and the counters; the SYN_RECV and CLOSE_WAIT sockets of the
    /// last read carried over.
    Listeners,
}

impl NsRead {
    pub fn is_full(self) -> bool {
        self == NsRead::Full
    }
}

/// The TCP states a fresh dump reads in full.
pub const FRESH_STATES: [TcpState; 4] = [
    TcpState::Listen,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::CloseWait,
];
