//! Per-namespace kernel tables: TcpExt/Tcp counters, sockstat, sysctls, local addresses.
//! (Stub: being written.)

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{SockStat, Sysctls};

/// What one namespace's /proc/net and /proc/sys/net say.
#[derive(Debug, Clone, Default)]
pub struct NetTables {
    pub tcp_ext: BTreeMap<String, u64>,
    pub tcp: BTreeMap<String, u64>,
    pub sockstat: Option<SockStat>,
    pub sysctl: Sysctls,
    pub local_addrs: Vec<IpAddr>,
    /// Files that could not be read or parsed, as operator-facing notes.
    pub notes: Vec<String>,
}

/// Read the tables of the namespace the calling thread is in.
pub fn read_net_tables() -> NetTables {
    NetTables::default()
}
