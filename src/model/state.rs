//! Socket states and families as sockscope names them.
//!
//! The kernel's numbers are decoded into these enums in `collect/`; nothing outside it sees a
//! raw state byte. Unknown values from a newer kernel survive as `Other(n)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

/// TCP states, named as `/proc/net/tcp` and the report name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TcpState {
    #[serde(rename = "ESTABLISHED")]
    Established,
    #[serde(rename = "SYN_SENT")]
    SynSent,
    #[serde(rename = "SYN_RECV")]
    SynRecv,
    #[serde(rename = "FIN_WAIT1")]
    FinWait1,
    #[serde(rename = "FIN_WAIT2")]
    FinWait2,
    #[serde(rename = "TIME_WAIT")]
    TimeWait,
    #[serde(rename = "CLOSE")]
    Close,
    #[serde(rename = "CLOSE_WAIT")]
    CloseWait,
    #[serde(rename = "LAST_ACK")]
    LastAck,
    #[serde(rename = "LISTEN")]
    Listen,
    #[serde(rename = "CLOSING")]
    Closing,
    /// Bound to a port, neither listening nor connected: dumped only when asked for with state
    /// bit 13 (recent kernels), and then reported by the kernel as TCP_CLOSE.
    #[serde(rename = "BOUND_INACTIVE")]
    BoundInactive,
    Other(u8),
}

impl TcpState {
    /// The eleven classic states, in kernel order: the keys of the report's `tcp_states`.
    pub const CLASSIC: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::BoundInactive => "BOUND_INACTIVE",
            TcpState::Other(_) => "OTHER",
        }
    }

    /// A map key that keeps unknown states apart: the name, or `STATE_<n>`.
    pub fn key(self) -> String {
        match self {
            TcpState::Other(n) => format!("STATE_{n}"),
            known => known.name().to_owned(),
        }
    }

    pub fn from_key(key: &str) -> Option<TcpState> {
        if let Some(n) = key.strip_prefix("STATE_") {
            return n.parse().ok().map(TcpState::Other);
        }
        Self::CLASSIC
            .into_iter()
            .chain([TcpState::BoundInactive])
            .find(|state| state.name() == key)
    }
}

/// Socket counts by TCP state; serialised as a map from state name to count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts(pub BTreeMap<TcpState, u64>);

impl Serialize for StateCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(state, n)| (state.key(), n)))
    }
}

impl<'de> Deserialize<'de> for StateCounts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let named = BTreeMap::<String, u64>::deserialize(deserializer)?;
        named
            .into_iter()
            .map(|(key, n)| {
                TcpState::from_key(&key)
                    .map(|state| (state, n))
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown TCP state {key:?}")))
            })
            .collect::<Result<_, _>>()
            .map(StateCounts)
    }
}

impl StateCounts {
    pub fn add(&mut self, state: TcpState, n: u64) {
        *self.0.entry(state).or_insert(0) += n;
    }

    pub fn get(&self, state: TcpState) -> u64 {
        self.0.get(&state).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// A socket's pending TCP timer, as `inet_diag_msg` reports it for every socket (`ss -o`
/// shows it as `timer:(on,540ms,2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpTimer {
    pub kind: TimerKind,
    /// Retransmissions so far (`Retransmit`: of the SYN, the SYN-ACK or data), or
    /// zero-window probes sent (`Probe`).
    pub retrans: u8,
    /// When the timer fires next, ms from the dump.
    pub expires_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Retransmission (`on`): a SYN, a SYN-ACK or data not yet acknowledged.
    Retransmit,
    /// Keepalive (`keepalive`).
    Keepalive,
    /// `TIME_WAIT` (`timewait`).
    TimeWait,
    /// Zero-window probe (`persist`): the peer advertises no room to receive.
    Probe,
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixKind {
    Stream,
    Dgram,
    Seqpacket,
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixState {
    Unconnected,
    Connecting,
    Connected,
    Disconnecting,
    Listen,
    Other(u8),
}
