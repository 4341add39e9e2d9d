//! A finding and its identity: which rule raised it ([`FindingId`]) and what it is about
//! ([`Target`]), typed, so that faces join findings to rows by value and never by display
//! text. The subject, summary and remedy are for people only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::evidence as ev;
use super::listeners::{ListenerView, Proto};

/// The finding table, the one place a finding's id is written: each row is the variant, the
/// id as the contract spells it, and the type of its evidence (in [`super::evidence`]).
/// [`FindingId`] — its name, [`FindingId::ALL`], `FromStr`, `Display`, serde — and
/// [`Evidence`] come from it.
macro_rules! finding_table {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $evidence:ty, )+) => {
        /// The rule that raised a finding: the ids of the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum FindingId {
            $( $(#[$doc])* $variant, )+
        }

        impl FindingId {
            /// Every id, in the order of the design's table.
            pub const ALL: &'static [FindingId] = &[$( FindingId::$variant, )+];

            /// `accept-queue-full`: the id as the contract spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $( FindingId::$variant => $name, )+
                }
            }
        }

        /// What a finding shows for itself: the evidence of its id, whose variant is the
        /// finding's id.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Evidence {
            $( $variant($evidence), )+
        }

        impl Evidence {
            /// The id of the finding this evidence belongs to.
            pub fn id(&self) -> FindingId {
                match self {
                    $( Evidence::$variant(_) => FindingId::$variant, )+
                }
            }
        }

        /// The evidence alone, as the JSON object of its type: the id is written beside it.
        impl Serialize for Evidence {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Evidence::$variant(e) => e.serialize(s), )+
                }
            }
        }
    };
}

finding_table! {
    AcceptQueueFull = "accept-queue-full" => ev::AcceptQueue,
    AcceptQueueHigh = "accept-queue-high" => ev::AcceptQueue,
    ListenDrops = "listen-drops" => ev::ListenDrops,
    SynQueuePressure = "syn-queue-pressure" => ev::SynQueuePressure,
    AbandonedInAcceptQueue = "abandoned-in-accept-queue" => ev::Abandoned,
    CloseWaitLeak = "close-wait-leak" => ev::CloseWaitLeak,
    EphemeralPortCollision = "ephemeral-port-collision" => ev::PortCollision,
    FdExhaustion = "fd-exhaustion" => ev::FdExhaustion,
    OrphanPressure = "orphan-pressure" => ev::OrphanPressure,
    HalfOpenHandshakes = "half-open-handshakes" => ev::HalfOpenHandshakes,
    ConnectStall = "connect-stall" => ev::ConnectStall,
    ReceiveQueueStall = "receive-queue-stall" => ev::ReceiveQueueStall,
    SendQueueStall = "send-queue-stall" => ev::SendQueueStall,
    PeerGone = "peer-gone" => ev::PeerGone,
    UdpReceiveDrops = "udp-receive-drops" => ev::UdpReceiveDrops,
    EphemeralPortExhaustion = "ephemeral-port-exhaustion" => ev::PortExhaustion,
    ReuseportImbalance = "reuseport-imbalance" => ev::ReuseportImbalance,
    ConntrackFull = "conntrack-full" => ev::ConntrackFull,
    TimeWaitOverflow = "time-wait-overflow" => ev::TimeWaitOverflow,
    TcpMemoryPressure = "tcp-memory-pressure" => ev::TcpMemoryPressure,
    SilentPeer = "silent-peer" => ev::SilentPeer,
}

impl FindingId {
    /// Every id's name, comma-separated: what an error about an unknown id lists.
    pub fn names() -> String {
        FindingId::ALL
            .iter()
            .map(|id| id.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for FindingId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FindingId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// An id that is not one of the contract's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no finding has the id {0:?}; the ids are {ids}", ids = FindingId::names())]
pub struct UnknownFindingId(pub String);

impl FromStr for FindingId {
    type Err = UnknownFindingId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FindingId::ALL
            .iter()
            .copied()
            .find(|id| id.name() == s)
            .ok_or_else(|| UnknownFindingId(s.to_owned()))
    }
}

impl PartialEq<str> for FindingId {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for FindingId {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// A diagnosis: what is wrong, where, the evidence and the remedy.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Always `evidence.id()`: [`Finding::new`] sets it.
    pub id: FindingId,
    pub severity: Severity,
    /// What the finding is about, with its namespace.
    pub target: Target,
    /// The ports, paths and processes the finding names, for ignore rules and for faces that
    /// must show every process a finding names.
    pub mentions: Mentions,
    /// The target in words, for people.
    pub subject: String,
    pub summary: String,
    pub evidence: Evidence,
    pub remedy: String,
}

impl Finding {
    /// A finding whose id is its evidence's.
    pub fn new(
        severity: Severity,
        (target, mentions): (Target, Mentions),
        subject: String,
        summary: String,
        evidence: Evidence,
        remedy: String,
    ) -> Finding {
        Finding {
            id: evidence.id(),
            severity,
            target,
            mentions,
            subject,
            summary,
            evidence,
            remedy,
        }
    }

    /// The id of the namespace the finding is in.
    pub fn netns(&self) -> &str {
        &self.target.netns
    }

    /// Whether this finding is about process `pid` of namespace `netns`: the process itself,
    /// or connections to a destination that it holds (alone, or among the holders named).
    pub fn is_about_process(&self, netns: &str, pid: u32) -> bool {
        self.target.netns == netns
            && match &self.target.kind {
                TargetKind::Process { pid: p, .. }
                | TargetKind::Destination { pid: Some(p), .. } => *p == pid,
                TargetKind::Destination { pid: None, .. } => self.mentions.pids.contains(&pid),
                _ => false,
            }
    }

    /// Whether this finding is about the UDP socket bound to `local` in namespace `netns`.
    pub fn is_about_socket(&self, netns: &str, proto: Proto, local: &str) -> bool {
        self.target.netns == netns
            && matches!(&self.target.kind,
                TargetKind::Socket { proto: p, local: l, .. } if *p == proto && l == local)
    }

    /// Whether this finding is about the row `l` of a listener table in namespace `netns`: the
    /// listener, or the UDP socket shown as one.
    pub fn is_about_queue(&self, netns: &str, l: &ListenerView) -> bool {
        match l.proto {
            Proto::Udp => self.is_about_socket(netns, Proto::Udp, &l.local),
            Proto::Tcp | Proto::Unix => self.is_about_listener(netns, l.inode),
        }
    }

    /// Whether this finding is about the listener with this inode in namespace `netns`.
    pub fn is_about_listener(&self, netns: &str, inode: u64) -> bool {
        self.target.netns == netns
            && matches!(&self.target.kind, TargetKind::Listener { inode: i, .. } if *i == inode)
    }
}

/// What a finding is about: a thing of one kind, in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The id of the namespace's entry.
    pub netns: String,
    pub kind: TargetKind,
}

/// The kinds of thing a finding can be about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A TCP or unix listener; `local` as the listener table writes it, `inode` tells
    /// listeners that share an address (SO_REUSEPORT) apart.
    Listener {
        proto: Proto,
        local: String,
        inode: u64,
    },
    Process {
        pid: u32,
        comm: String,
    },
    /// Connections to one remote address: from one local address when `local` is set, and
    /// those of one process when `pid` is set.
    Destination {
        proto: Proto,
        remote: String,
        local: Option<String>,
        pid: Option<u32>,
    },
    /// One socket that is not a listener.
    Socket {
        proto: Proto,
        local: String,
    },
    /// The namespace as a whole (its counters, its sysctls).
    Netns,
}

impl TargetKind {
    /// `listener`, `process`, …: the `kind` of the JSON target.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Listener { .. } => "listener",
            TargetKind::Process { .. } => "process",
            TargetKind::Destination { .. } => "destination",
            TargetKind::Socket { .. } => "socket",
            TargetKind::Netns => "netns",
        }
    }
}

impl Target {
    pub fn listener(netns: &str, l: &ListenerView) -> Target {
        Target {
            netns: netns.to_owned(),
            kind: TargetKind::Listener {
                proto: l.proto,
                local: l.local.clone(),
                inode: l.inode,
            },
        }
    }

    pub fn process(netns: &str, comm: &str, pid: u32) -> Target {
        Target {
            netns: netns.to_owned(),
            kind: TargetKind::Process {
                pid,
                comm: comm.to_owned(),
            },
        }
    }

    pub fn netns(netns: &str) -> Target {
        Target {
            netns: netns.to_owned(),
            kind: TargetKind::Netns,
        }
    }
}

/// The listeners' ports and unix paths and the processes a finding names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub ports: Vec<u16>,
    pub paths: Vec<String>,
    pub comms: Vec<String>,
    /// The processes named (listener owners included), so that a face that shows only some
    /// processes can always show these.
    pub pids: Vec<u32>,
}

impl Mentions {
    pub fn listener(l: &ListenerView) -> Mentions {
        Mentions::listeners(&[l])
    }

    pub fn listeners(ls: &[&ListenerView]) -> Mentions {
        let mut m = Mentions::default();
        for l in ls {
            match l.proto {
                Proto::Tcp | Proto::Udp => m.ports.extend(l.port),
                Proto::Unix => m.paths.push(l.local.clone()),
            }
            m.comms.extend(l.owners.iter().map(|o| o.comm.clone()));
            m.pids.extend(l.owners.iter().map(|o| o.pid));
        }
        m
    }

    pub fn process(comm: &str, pid: u32) -> Mentions {
        Mentions {
            comms: vec![comm.to_owned()],
            pids: vec![pid],
            ..Mentions::default()
        }
    }
}

/// Findings an operator has chosen not to hear about: a known noisy service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ignore {
    /// Finding ids, such as `accept-queue-high`.
    pub ids: Vec<FindingId>,
    /// TCP listener (or server) ports.
    pub ports: Vec<u16>,
    /// Unix listener paths (`@name` for abstract ones).
    pub paths: Vec<String>,
    /// Process names (comm), owners of a listener included.
    pub comms: Vec<String>,
}

impl Ignore {
    pub fn matches(&self, f: &Finding) -> bool {
        let m = &f.mentions;
        self.ids.contains(&f.id)
            || m.ports.iter().any(|p| self.ports.contains(p))
            || m.paths.iter().any(|p| self.paths.contains(p))
            || m.comms.iter().any(|c| self.comms.contains(c))
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.ports.is_empty()
            && self.paths.is_empty()
            && self.comms.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_their_names_and_serde_agrees() {
        for &id in FindingId::ALL {
            assert_eq!(id.name().parse::<FindingId>(), Ok(id));
            assert_eq!(
                serde_json::to_value(id).expect("serializes"),
                serde_json::Value::String(id.name().to_owned())
            );
        }
    }

    #[test]
    fn an_unknown_id_is_an_error_that_lists_the_valid_ones() {
        let e = "accept-queue-ful"
            .parse::<FindingId>()
            .expect_err("unknown");
        let text = e.to_string();
        assert!(text.contains("\"accept-queue-ful\""), "{text}");
        for &id in FindingId::ALL {
            assert!(text.contains(id.name()), "{text}");
        }
    }
}
