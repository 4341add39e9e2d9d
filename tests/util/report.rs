//! The test's own reading of `sockscope.report.v1`: only the keys the tests check, under the
//! names the contract gives them, so a renamed key fails here rather than passing unnoticed.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Report {
    pub schema: String,
    pub sampling: Sampling,
    pub privileges: Privileges,
    pub netns: Vec<Netns>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Deserialize)]
pub struct Sampling {
    pub samples: u64,
    pub interval_ms: u64,
}

#[derive(Debug, Deserialize)]
pub struct Privileges {
    pub full_process_view: bool,
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Netns {
    pub id: String,
    pub label: String,
    pub counters: BTreeMap<String, Counter>,
    pub tcp_states: BTreeMap<String, u64>,
    pub listeners: Vec<Listener>,
    pub processes: Vec<Process>,
    /// Sockets in each kind of trouble, by kind.
    pub connections: BTreeMap<String, u64>,
    pub udp: Udp,
    pub port_use: Vec<PortUse>,
}

#[derive(Debug, Deserialize)]
pub struct Udp {
    pub socket_count: u64,
    pub sockets: Vec<UdpSocket>,
    pub left_out: u64,
    pub counters: BTreeMap<String, Counter>,
}

#[derive(Debug, Deserialize)]
pub struct UdpSocket {
    pub local: String,
    pub peer: Option<String>,
    pub recv_q: u64,
    pub rmem_alloc: Option<u64>,
    pub rcvbuf: Option<u64>,
    pub drops: Counter,
    pub drops_in_window: Option<u64>,
    pub owners: Vec<Owner>,
}

#[derive(Debug, Deserialize)]
pub struct PortUse {
    pub local: String,
    pub remote: String,
    pub ports: u64,
    pub range_size: u64,
    pub pct_of_range: f64,
    pub states: BTreeMap<String, u64>,
    pub owners: Vec<Owner>,
}

#[derive(Debug, Deserialize)]
pub struct Counter {
    pub total: Option<u64>,
    pub rate_per_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Listener {
    pub proto: String,
    pub local: String,
    pub port: Option<u16>,
    pub accept_queue: u64,
    pub backlog: u64,
    pub full: bool,
    pub syn_recv: u64,
    pub unaccepted_close_wait: u64,
    pub drops: Counter,
    pub owners: Vec<Owner>,
    pub inode: u64,
    /// Its place in its `SO_REUSEPORT` group, when others share its address.
    pub reuseport: Option<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub member: u64,
    pub members: u64,
}

#[derive(Debug, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
}

#[derive(Debug, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub fds: Option<u64>,
    pub fd_limit: Option<u64>,
    pub tcp_sockets: u64,
    pub unix_sockets: u64,
    pub close_wait: u64,
    pub close_wait_oldest_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Finding {
    pub id: String,
    pub severity: String,
    pub netns: String,
    pub target: Target,
    pub subject: String,
    pub summary: String,
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub remedy: String,
}

/// What a finding is about: `kind` and `netns`, and the keys of that kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Target {
    pub kind: String,
    pub netns: String,
    pub proto: Option<String>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// A listener's socket inode.
    pub inode: Option<u64>,
}

/// A report as `report --json` prints it, in the test's types, after checking it against
/// the published JSON Schema and that every finding's target lies in the finding's
/// namespace.
pub fn parse(json: &str) -> Report {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("report is not JSON: {e}\n{json}"));
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../assets/sockscope.report.v1.schema.json"))
            .expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match the schema: {errors:#?}\n{json}"
    );
    let report: Report = serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("report does not match the test's types: {e}\n{json}"));
    assert_eq!(report.schema, "sockscope.report.v1");
    for f in &report.findings {
        assert_eq!(f.target.netns, f.netns, "{f:?}");
        assert!(
            report.netns.iter().any(|ns| ns.id == f.netns),
            "{f:?} names a namespace the report does not hold"
        );
    }
    report
}

impl Report {
    /// The one namespace a default report scans: the caller's own.
    pub fn only_netns(&self) -> &Netns {
        assert_eq!(
            self.netns.len(),
            1,
            "expected exactly the caller's namespace"
        );
        &self.netns[0]
    }

    pub fn findings_with_id(&self, id: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.id == id).collect()
    }

    /// The only finding with this id; panics, listing every finding, unless there is one.
    pub fn the_finding(&self, id: &str) -> &Finding {
        match self.findings_with_id(id).as_slice() {
            [one] => one,
            many => panic!(
                "expected exactly one {id} finding, got {}: {:#?}",
                many.len(),
                self.findings
            ),
        }
    }

    /// (id, severity, subject) of every finding, sorted: what two reports must agree on.
    pub fn finding_keys(&self) -> Vec<(String, String, String)> {
        let mut keys: Vec<_> = self
            .findings
            .iter()
            .map(|f| (f.id.clone(), f.severity.clone(), f.subject.clone()))
            .collect();
        keys.sort();
        keys
    }
}

impl Netns {
    pub fn listener(&self, proto: &str, local: &str) -> &Listener {
        self.listeners
            .iter()
            .find(|l| l.proto == proto && l.local == local)
            .unwrap_or_else(|| {
                let all: Vec<_> = self
                    .listeners
                    .iter()
                    .map(|l| format!("{} {}", l.proto, l.local))
                    .collect();
                panic!("no {proto} listener {local}; the report has {all:?}")
            })
    }

    pub fn process(&self, pid: u32) -> &Process {
        self.processes
            .iter()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| {
                let all: Vec<_> = self
                    .processes
                    .iter()
                    .map(|p| format!("{} {}", p.pid, p.comm))
                    .collect();
                panic!("no process {pid} in the report; it has {all:?}")
            })
    }

    pub fn counter(&self, name: &str) -> &Counter {
        self.counters
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}
