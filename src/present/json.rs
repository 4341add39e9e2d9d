//! The `sockscope.report.v1` JSON document: serde DTOs built from the analysis.
//!
//! The key names are a contract (see the schema in `assets/`); fields may be added, none
//! renamed without a new schema version.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::analyze::acceptors::Acceptor;
use crate::analyze::units::round1;
use crate::analyze::{
    Analysis, CounterView, Evidence, Finding, FindingId, ListenerView, NetnsView, Owner,
    ProcessView, Target, TargetKind,
};
use crate::model::{ContainerInfo, Sysctls};

pub const SCHEMA: &str = "sockscope.report.v1";

#[derive(Debug, Serialize)]
pub struct ReportDoc {
    pub schema: &'static str,
    pub generated_at: String,
    pub host: HostDto,
    pub sampling: SamplingDto,
    pub privileges: PrivilegesDto,
    pub netns: Vec<NetnsDto>,
    pub findings: Vec<FindingDto>,
}

#[derive(Debug, Serialize)]
pub struct HostDto {
    pub hostname: String,
    pub kernel: String,
}

#[derive(Debug, Serialize)]
pub struct SamplingDto {
    pub samples: usize,
    /// The requested time between samples.
    pub interval_ms: u64,
    /// The measured time from the first to the last sample; null with one sample.
    pub window_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct PrivilegesDto {
    pub full_process_view: bool,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NetnsDto {
    pub id: String,
    pub label: String,
    /// The container whose processes hold the namespace, as its runtime names it; null when
    /// none is known. Names exact: JSON escapes them its own way.
    pub container: Option<ContainerDto>,
    pub sysctl: SysctlDto,
    pub counters: BTreeMap<&'static str, CounterDto>,
    pub tcp_states: BTreeMap<String, u64>,
    pub unix_sockets: u64,
    pub listeners: Vec<ListenerDto>,
    pub processes: Vec<ProcessDto>,
    /// Sockets in each kind of trouble (see the connection findings).
    pub connections: BTreeMap<&'static str, u64>,
    pub udp: UdpDto,
    /// Ephemeral ports in use towards the busiest destinations, most first.
    pub port_use: Vec<PortUseDto>,
    /// The connection tracking table; null when nf_conntrack is not loaded.
    pub conntrack: Option<ConntrackDto>,
}

/// The connection tracking table: the namespace's count against the host's limit.
#[derive(Debug, Serialize)]
pub struct ConntrackDto {
    pub count: u64,
    pub max: Option<u64>,
    pub buckets: Option<u64>,
    pub fill_pct: Option<f64>,
    pub drop: CounterDto,
    pub early_drop: CounterDto,
    pub insert_failed: CounterDto,
}

#[derive(Debug, Serialize)]
pub struct UdpDto {
    /// Every UDP socket of the namespace.
    pub socket_count: u64,
    /// Unconnected (receiving) sockets, and connected ones that dropped or hold data.
    pub sockets: Vec<UdpSocketDto>,
    /// Sockets of that kind left out past the limit.
    pub left_out: u64,
    /// `Udp:` and `Udp6` counters, both families summed.
    pub counters: BTreeMap<&'static str, CounterDto>,
}

#[derive(Debug, Serialize)]
pub struct UdpSocketDto {
    pub local: String,
    pub peer: Option<String>,
    pub recv_q: u64,
    pub rmem_alloc: Option<u64>,
    pub rcvbuf: Option<u64>,
    pub drops: CounterDto,
    pub drops_in_window: Option<u64>,
    pub owners: Vec<OwnerDto>,
}

#[derive(Debug, Serialize)]
pub struct PortUseDto {
    pub local: String,
    pub remote: String,
    pub ports: u64,
    pub range_size: u64,
    pub pct_of_range: f64,
    pub states: BTreeMap<String, u64>,
    pub owners: Vec<OwnerDto>,
}

#[derive(Debug, Serialize)]
pub struct SysctlDto {
    pub somaxconn: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    pub tcp_syncookies: Option<u64>,
    pub tcp_abort_on_overflow: Option<u64>,
    pub ip_local_port_range: Option<[u16; 2]>,
    pub ip_local_reserved_ports: Vec<[u16; 2]>,
    pub tcp_fin_timeout: Option<u64>,
    pub tcp_max_orphans: Option<u64>,
    pub tcp_syn_retries: Option<u64>,
    pub tcp_synack_retries: Option<u64>,
    pub tcp_keepalive_time: Option<u64>,
    pub tcp_keepalive_intvl: Option<u64>,
    pub tcp_keepalive_probes: Option<u64>,
    pub tcp_tw_reuse: Option<u64>,
    pub rmem_default: Option<u64>,
    pub rmem_max: Option<u64>,
    /// Pages: min, pressure, max.
    pub udp_mem: Option<[u64; 3]>,
    pub tcp_max_tw_buckets: Option<u64>,
    /// Pages: min, pressure, max; the host's, readable in its own namespace only.
    pub tcp_mem: Option<[u64; 3]>,
    /// The host's connection tracking limit and hash size.
    pub nf_conntrack_max: Option<u64>,
    pub nf_conntrack_buckets: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct CounterDto {
    pub total: Option<u64>,
    pub rate_per_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ListenerDto {
    pub proto: &'static str,
    pub local: String,
    pub port: Option<u16>,
    pub accept_queue: u64,
    pub backlog: u64,
    pub full: bool,
    pub fill_pct: f64,
    pub syn_recv: u64,
    pub unaccepted_established: u64,
    pub unaccepted_close_wait: u64,
    pub drops: CounterDto,
    pub owners: Vec<OwnerDto>,
    /// The listener's socket inode: tells apart the members of an `SO_REUSEPORT` group.
    pub inode: u64,
    /// Its place in its `SO_REUSEPORT` group, when others share its address and port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuseport: Option<MemberDto>,
    /// Who drains it and what each is doing, when something waited on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acceptors: Vec<Acceptor>,
}

#[derive(Debug, Serialize)]
pub struct MemberDto {
    /// 1 to `members`, in the order of the members' inodes.
    pub member: usize,
    pub members: usize,
}

#[derive(Debug, Serialize)]
pub struct OwnerDto {
    pub pid: u32,
    pub comm: String,
}

#[derive(Debug, Serialize)]
pub struct ProcessDto {
    pub pid: u32,
    pub comm: String,
    pub uid: u32,
    pub fds: Option<u64>,
    /// Soft `RLIMIT_NOFILE`; null when unlimited or unreadable.
    pub fd_limit: Option<u64>,
    pub fd_limit_hard: Option<u64>,
    pub tcp_sockets: u64,
    pub unix_sockets: u64,
    pub close_wait: u64,
    pub close_wait_unread: u64,
    pub close_wait_oldest_s: Option<f64>,
    pub close_wait_growth_per_min: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct FindingDto {
    pub id: FindingId,
    pub severity: &'static str,
    pub netns: String,
    /// The label of that namespace, so a reader of one finding knows where it is.
    pub netns_label: String,
    pub target: TargetDto,
    pub subject: String,
    pub summary: String,
    pub evidence: Evidence,
    pub remedy: String,
}

impl ReportDoc {
    /// The document for `analysis`, sampled `interval` apart.
    pub fn new(analysis: &Analysis, interval: Duration) -> ReportDoc {
        ReportDoc {
            schema: SCHEMA,
            generated_at: super::rfc3339_seconds(analysis.wall_time_ms),
            host: HostDto {
                hostname: analysis.host.hostname.clone(),
                kernel: analysis.host.kernel.clone(),
            },
            sampling: SamplingDto {
                samples: analysis.samples,
                interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                window_ms: analysis.window_s.map(|s| (s * 1000.0).round() as u64),
            },
            privileges: PrivilegesDto {
                full_process_view: analysis.full_process_view,
                notes: analysis.notes.clone(),
            },
            netns: analysis.netns.iter().map(NetnsDto::from).collect(),
            findings: analysis
                .findings
                .iter()
                .map(|f| FindingDto::new(f, analysis))
                .collect(),
        }
    }
}

/// Write `doc` as pretty JSON followed by a newline.
pub fn write(w: &mut impl Write, doc: &ReportDoc) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, doc)?;
    writeln!(w)
}

impl From<&NetnsView> for NetnsDto {
    fn from(ns: &NetnsView) -> Self {
        NetnsDto {
            id: ns.id.clone(),
            label: ns.label.clone(),
            container: ns.container.as_ref().map(ContainerDto::from),
            sysctl: SysctlDto::from(&ns.sysctl),
            counters: ns
                .counters
                .iter()
                .map(|c| (c.name, CounterDto::from(c)))
                .collect(),
            tcp_states: ns.tcp_states.0.iter().map(|(s, &n)| (s.key(), n)).collect(),
            unix_sockets: ns.unix_sockets,
            listeners: ns.listeners.iter().map(ListenerDto::from).collect(),
            processes: ns.processes.iter().map(ProcessDto::from).collect(),
            connections: ns
                .connections
                .counts()
                .into_iter()
                .chain([
                    ("left_out", ns.connections.left_out),
                    ("peer_unchecked", ns.connections.peer_unchecked),
                    ("silent_unchecked", ns.connections.silent_unchecked),
                ])
                .collect(),
            udp: UdpDto {
                socket_count: ns.udp.socket_count,
                sockets: ns
                    .udp
                    .sockets
                    .iter()
                    .map(|u| UdpSocketDto {
                        local: u.local.clone(),
                        peer: u.peer.map(|p| p.to_string()),
                        recv_q: u.recv_q,
                        rmem_alloc: u.rmem_alloc,
                        rcvbuf: u.rcvbuf,
                        drops: CounterDto {
                            total: u.drops_total,
                            rate_per_s: u.drops_per_s.map(round1),
                        },
                        drops_in_window: u.drops_in_window,
                        owners: owners_dto(&u.owners),
                    })
                    .collect(),
                left_out: ns.udp.left_out,
                counters: ns
                    .udp
                    .counters
                    .iter()
                    .map(|c| (c.name, CounterDto::from(c)))
                    .collect(),
            },
            port_use: ns
                .port_use
                .iter()
                .map(|u| PortUseDto {
                    local: u.local.to_string(),
                    remote: u.remote.to_string(),
                    ports: u.ports,
                    range_size: u.range_size,
                    pct_of_range: round1(u.pct_of_range),
                    states: u.states.0.iter().map(|(s, &n)| (s.key(), n)).collect(),
                    owners: owners_dto(&u.owners),
                })
                .collect(),
            conntrack: ns.conntrack.as_ref().map(|c| {
                let counter = |total: u64, rate: Option<f64>| CounterDto {
                    total: Some(total),
                    rate_per_s: rate.map(round1),
                };
                ConntrackDto {
                    count: c.count,
                    max: c.max,
                    buckets: c.buckets,
                    fill_pct: c.fill_pct.map(round1),
                    drop: counter(c.drop_total, c.drop_per_s),
                    early_drop: counter(c.early_drop_total, c.early_drop_per_s),
                    insert_failed: counter(c.insert_failed_total, c.insert_failed_per_s),
                }
            }),
        }
    }
}

fn owners_dto(owners: &[Owner]) -> Vec<OwnerDto> {
    owners
        .iter()
        .map(|o| OwnerDto {
            pid: o.pid,
            comm: o.comm.clone(),
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ContainerDto {
    pub runtime: String,
    pub id: String,
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

impl From<&ContainerInfo> for ContainerDto {
    fn from(c: &ContainerInfo) -> Self {
        ContainerDto {
            runtime: c.runtime.clone(),
            id: c.id.clone(),
            name: c.name.clone(),
            pod: c.pod.clone(),
            namespace: c.namespace.clone(),
        }
    }
}

impl From<&Sysctls> for SysctlDto {
    fn from(s: &Sysctls) -> Self {
        SysctlDto {
            somaxconn: s.somaxconn,
            tcp_max_syn_backlog: s.tcp_max_syn_backlog,
            tcp_syncookies: s.tcp_syncookies,
            tcp_abort_on_overflow: s.tcp_abort_on_overflow,
            ip_local_port_range: s.ip_local_port_range.map(|(lo, hi)| [lo, hi]),
            ip_local_reserved_ports: s
                .ip_local_reserved_ports
                .iter()
                .map(|&(a, b)| [a, b])
                .collect(),
            tcp_fin_timeout: s.tcp_fin_timeout,
            tcp_max_orphans: s.tcp_max_orphans,
            tcp_syn_retries: s.tcp_syn_retries,
            tcp_synack_retries: s.tcp_synack_retries,
            tcp_keepalive_time: s.tcp_keepalive_time,
            tcp_keepalive_intvl: s.tcp_keepalive_intvl,
            tcp_keepalive_probes: s.tcp_keepalive_probes,
            tcp_tw_reuse: s.tcp_tw_reuse,
            rmem_default: s.rmem_default,
            rmem_max: s.rmem_max,
            udp_mem: s.udp_mem,
            tcp_max_tw_buckets: s.tcp_max_tw_buckets,
            tcp_mem: s.tcp_mem,
            nf_conntrack_max: s.nf_conntrack_max,
            nf_conntrack_buckets: s.nf_conntrack_buckets,
        }
    }
}

impl From<&CounterView> for CounterDto {
    fn from(c: &CounterView) -> Self {
        CounterDto {
            total: c.total,
            rate_per_s: c.rate_per_s.map(round1),
        }
    }
}

impl From<&ListenerView> for ListenerDto {
    fn from(l: &ListenerView) -> Self {
        ListenerDto {
            proto: l.proto.name(),
            local: l.local.clone(),
            port: l.port,
            accept_queue: l.accept_queue,
            backlog: l.backlog,
            full: l.full,
            fill_pct: round1(l.fill_pct),
            syn_recv: l.syn_recv,
            unaccepted_established: l.unaccepted_established,
            unaccepted_close_wait: l.unaccepted_close_wait,
            drops: CounterDto {
                total: l.drops_total,
                rate_per_s: l.drops_per_s.map(round1),
            },
            owners: owners_dto(&l.owners),
            inode: l.inode,
            reuseport: l.member.map(|m| MemberDto {
                member: m.index,
                members: m.of,
            }),
            acceptors: l.acceptors.clone(),
        }
    }
}

impl From<&ProcessView> for ProcessDto {
    fn from(p: &ProcessView) -> Self {
        ProcessDto {
            pid: p.pid,
            comm: p.comm.clone(),
            uid: p.uid,
            fds: p.fds,
            fd_limit: p.fd_limit.and_then(|l| l.soft),
            fd_limit_hard: p.fd_limit.and_then(|l| l.hard),
            tcp_sockets: p.tcp_sockets,
            unix_sockets: p.unix_sockets,
            close_wait: p.close_wait,
            close_wait_unread: p.close_wait_unread,
            close_wait_oldest_s: p.close_wait_oldest_s.map(round1),
            close_wait_growth_per_min: p.close_wait_growth_per_min.map(round1),
        }
    }
}

/// What a finding is about: `kind` and `netns`, then the keys of that kind.
#[derive(Debug, Serialize)]
pub struct TargetDto {
    pub kind: &'static str,
    pub netns: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// A listener's socket inode: tells apart listeners that share an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

impl From<&Target> for TargetDto {
    fn from(t: &Target) -> Self {
        let mut dto = TargetDto {
            kind: t.kind.name(),
            netns: t.netns.clone(),
            proto: None,
            local: None,
            remote: None,
            pid: None,
            comm: None,
            inode: None,
        };
        match &t.kind {
            TargetKind::Listener {
                proto,
                local,
                inode,
            } => {
                dto.proto = Some(proto.name());
                dto.local = Some(local.clone());
                dto.inode = Some(*inode);
            }
            TargetKind::Process { pid, comm } => {
                dto.pid = Some(*pid);
                dto.comm = Some(comm.clone());
            }
            TargetKind::Destination {
                proto,
                remote,
                local,
                pid,
            } => {
                dto.proto = Some(proto.name());
                dto.remote = Some(remote.clone());
                dto.local.clone_from(local);
                dto.pid = *pid;
            }
            TargetKind::Socket { proto, local } => {
                dto.proto = Some(proto.name());
                dto.local = Some(local.clone());
            }
            TargetKind::Netns => {}
        }
        dto
    }
}

impl FindingDto {
    pub fn new(f: &Finding, analysis: &Analysis) -> Self {
        let netns = f.netns();
        let label = analysis.netns.iter().find(|ns| ns.id == netns);
        FindingDto {
            id: f.id,
            severity: f.severity.name(),
            netns: netns.to_owned(),
            netns_label: label.map_or_else(|| netns.to_owned(), |ns| ns.label.clone()),
            target: TargetDto::from(&f.target),
            subject: f.subject.clone(),
            summary: f.summary.clone(),
            evidence: f.evidence.clone(),
            remedy: f.remedy.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyze;
    use crate::model::{
        Family, FdLimit, FdScan, Host, NetnsSnapshot, Process, ProcessScanStats, Snapshot,
        StateCounts, Sysctls, TcpSocket, TcpState,
    };

    /// A hand-built host: a full listener (9 of 8) owned by `noaccept`, and `leaky` holding
    /// two CLOSE_WAIT sockets, one of them with unread data.
    #[allow(clippy::too_many_lines)] // one literal host, field by field
    fn snapshot(at_ms: u64, drops: u32) -> Snapshot {
        let sock = |state, local: &str, peer: &str, inode, recv_q, owners: Vec<u32>| TcpSocket {
            family: Family::Inet,
            state,
            local: local.parse().expect("addr"),
            peer: peer.parse().expect("addr"),
            recv_q,
            send_q: if state == TcpState::Listen { 8 } else { 0 },
            inode,
            uid: 0,
            drops: (state == TcpState::Listen).then_some(drops),
            last_ack_recv_ms: (state == TcpState::CloseWait).then_some(5000),
            timer: None,
            owners,
        };
        let mut states = StateCounts::default();
        states.add(TcpState::Listen, 1);
        states.add(TcpState::CloseWait, 2);
        let mut leaky_tcp = StateCounts::default();
        leaky_tcp.add(TcpState::CloseWait, 2);
        let mut noaccept_tcp = StateCounts::default();
        noaccept_tcp.add(TcpState::Listen, 1);
        let process = |pid, comm: &str, tcp| Process {
            pid,
            comm: comm.to_owned(),
            uid: 0,
            netns: Some(1),
            fds: Some(10),
            fd_limit: Some(FdLimit {
                soft: Some(1024),
                hard: Some(4096),
            }),
            tcp,
            unix_sockets: 0,
            other_sockets: 0,
            fd_scan: FdScan::Complete,
        };
        Snapshot {
            host: Host {
                hostname: "web-01".into(),
                kernel: "6.18.0".into(),
            },
            wall_time_ms: 1_790_000_000_000 + at_ms,
            monotonic_ns: at_ms * 1_000_000,
            collect_us: 1000,
            netns: vec![NetnsSnapshot {
                id: "1".into(),
                label: "host".into(),
                container: None,
                sysctl: Sysctls {
                    somaxconn: Some(4096),
                    ip_local_port_range: Some((32768, 60999)),
                    ..Sysctls::default()
                },
                tcp_ext: [("ListenOverflows".to_owned(), u64::from(drops))].into(),
                tcp: BTreeMap::new(),
                sockstat: None,
                tcp_states: states,
                tcp_listeners: vec![sock(
                    TcpState::Listen,
                    "127.0.0.1:5000",
                    "0.0.0.0:0",
                    7,
                    9,
                    vec![812],
                )],
                tracked: vec![
                    sock(
                        TcpState::CloseWait,
                        "127.0.0.1:5001",
                        "127.0.0.1:40000",
                        8,
                        0,
                        vec![6717],
                    ),
                    sock(
                        TcpState::CloseWait,
                        "127.0.0.1:5001",
                        "127.0.0.1:40001",
                        9,
                        3,
                        vec![6717],
                    ),
                ],
                troubled_left_out: 0,
                tracked_dropped: false,
                unix_listeners: Vec::new(),
                unix_sockets: 0,
                local_addrs: Vec::new(),
                ..NetnsSnapshot::default()
            }],
            processes: vec![
                process(812, "noaccept", noaccept_tcp),
                process(6717, "leaky", leaky_tcp),
            ],
            process_scan: ProcessScanStats {
                processes: 2,
                ..ProcessScanStats::default()
            },
            notes: Vec::new(),
            freshness: crate::model::Freshness::default(),
        }
    }

    fn document(window: &[Snapshot]) -> serde_json::Value {
        let analysis = analyze(window, &crate::analyze::Settings::default()).expect("a window");
        serde_json::to_value(ReportDoc::new(&analysis, Duration::from_secs(1))).expect("serialises")
    }

    #[test]
    fn the_document_matches_the_published_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../assets/sockscope.report.v1.schema.json"))
                .expect("the schema is JSON");
        let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
        for window in [
            vec![snapshot(0, 4)],
            vec![snapshot(0, 4), snapshot(2000, 10)],
        ] {
            let doc = document(&window);
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
        }
    }

    /// A namespace named by a container: its names exact in JSON, hostile bytes included,
    /// and the document still matches the schema.
    #[test]
    fn a_container_is_written_exactly_and_matches_the_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../assets/sockscope.report.v1.schema.json"))
                .expect("the schema is JSON");
        let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
        let mut s = snapshot(0, 4);
        s.netns[0].label = "pod default/web\x1b[2J (nginx)".into();
        s.netns[0].container = Some(ContainerInfo {
            runtime: "containerd".into(),
            id: "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970".into(),
            name: Some("nginx".into()),
            pod: Some("web\u{1b}[2J".into()),
            namespace: Some("default".into()),
        });
        let doc = document(&[s]);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
        let container = &doc["netns"][0]["container"];
        assert_eq!(container["runtime"], "containerd");
        assert_eq!(container["pod"], "web\u{1b}[2J");
        assert_eq!(container["name"], "nginx");
        assert_eq!(container["namespace"], "default");
        assert_eq!(
            document(&[snapshot(0, 4)])["netns"][0]["container"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn rates_come_from_the_first_and_last_sample() {
        let doc = document(&[snapshot(0, 4), snapshot(1000, 7), snapshot(2000, 10)]);
        let ns = &doc["netns"][0];
        assert_eq!(ns["counters"]["ListenOverflows"]["total"], 10);
        assert_eq!(ns["counters"]["ListenOverflows"]["rate_per_s"], 3.0);
        let listener = &ns["listeners"][0];
        assert_eq!(listener["local"], "127.0.0.1:5000");
        assert_eq!(
            (
                listener["accept_queue"].clone(),
                listener["backlog"].clone()
            ),
            (9.into(), 8.into())
        );
        assert_eq!(listener["full"], true);
        assert_eq!(listener["drops"]["rate_per_s"], 3.0);
        assert_eq!(listener["owners"][0]["comm"], "noaccept");
        let leaky = &ns["processes"][0];
        assert_eq!(
            (leaky["comm"].clone(), leaky["close_wait"].clone()),
            ("leaky".into(), 2.into())
        );
        assert_eq!(leaky["close_wait_unread"], 1);
        assert_eq!(leaky["close_wait_oldest_s"], 5.0);
        assert_eq!(leaky["close_wait_growth_per_min"], 0.0);
        assert_eq!(ns["tcp_states"]["CLOSE_WAIT"], 2);
        assert_eq!(
            ns["tcp_states"]["TIME_WAIT"], 0,
            "every classic state is present"
        );
    }

    #[test]
    fn one_sample_gives_null_rates() {
        let doc = document(&[snapshot(0, 4)]);
        assert_eq!(doc["sampling"]["window_ms"], serde_json::Value::Null);
        let ns = &doc["netns"][0];
        assert_eq!(
            ns["counters"]["ListenOverflows"]["rate_per_s"],
            serde_json::Value::Null
        );
        assert_eq!(
            ns["listeners"][0]["drops"]["rate_per_s"],
            serde_json::Value::Null
        );
        assert_eq!(
            ns["processes"][0]["close_wait_growth_per_min"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn findings_name_their_namespace_by_id_and_label() {
        let doc = document(&[snapshot(0, 4)]);
        let findings = doc["findings"].as_array().expect("findings");
        assert!(!findings.is_empty());
        for f in findings {
            assert_eq!(f["netns"], doc["netns"][0]["id"], "{f}");
            assert_eq!(f["netns_label"], "host", "{f}");
        }
    }
}
