//! Every rule over recordings of real scenarios (see tests/fixtures/recordings/README.md),
//! with the thresholds' edges and the states the captures lack derived from them.

use super::*;
use crate::model::TcpState;
use crate::recording;

pub(super) fn recording(name: &str) -> Vec<Snapshot> {
    let path = format!(
        "{}/tests/fixtures/recordings/{name}.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = std::fs::File::open(&path).expect("the fixture exists");
    recording::read(std::io::BufReader::new(file))
        .expect("the fixture reads")
        .snapshots
}

fn judge(window: &[Snapshot], settings: &Settings) -> Vec<(&'static str, Severity, String)> {
    analyze(window, settings)
        .expect("a window")
        .findings
        .into_iter()
        .map(|f| (f.id.name(), f.severity, f.subject))
        .collect()
}

fn with(t: Thresholds) -> Settings {
    Settings {
        thresholds: t,
        ignore: Ignore::default(),
    }
}

fn has(
    found: &[(&'static str, Severity, String)],
    id: &str,
    severity: Severity,
    subject: &str,
) -> bool {
    found
        .iter()
        .any(|(i, s, subj)| *i == id && *s == severity && subj.starts_with(subject))
}

#[test]
fn the_incidents_name_each_culprit() {
    let found = judge(&recording("incidents"), &Settings::default());
    let expect = [
        (
            "accept-queue-full",
            Severity::Critical,
            "tcp 127.0.0.1:5000 (noaccept pid",
        ),
        ("accept-queue-full", Severity::Critical, "unix /tmp/"),
        (
            "listen-drops",
            Severity::Critical,
            "tcp 127.0.0.1:5000 (noaccept pid",
        ),
        (
            "abandoned-in-accept-queue",
            Severity::Warning,
            "tcp 127.0.0.1:5000",
        ),
        ("close-wait-leak", Severity::Warning, "process leaky (pid"),
        (
            "ephemeral-port-collision",
            Severity::Warning,
            "process leaky (pid",
        ),
        ("fd-exhaustion", Severity::Critical, "process fdhog (pid"),
    ];
    for (id, severity, subject) in expect {
        assert!(
            has(&found, id, severity, subject),
            "missing {id} {severity:?} {subject}: {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "nothing else: {found:#?}");
    let order: Vec<Severity> = found.iter().map(|f| f.1).collect();
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "most severe first: {order:?}"
    );
}

#[test]
fn a_healthy_host_raises_no_warning() {
    let found = judge(&recording("healthy"), &Settings::default());
    assert!(found.iter().all(|f| f.1 == Severity::Info), "{found:#?}");
}

#[test]
fn findings_name_the_pids_of_their_subjects() {
    let a = analyze(&recording("incidents"), &Settings::default()).expect("a window");
    for f in &a.findings {
        // "… (noaccept pid 812)", "process leaky (pid 6717)"
        let named: Vec<u32> = f
            .subject
            .split("pid ")
            .skip(1)
            .filter_map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        for pid in &named {
            assert!(
                f.mentions.pids.contains(pid),
                "{} {}: {:?}",
                f.id,
                f.subject,
                f.mentions
            );
        }
    }
    let pids = |id: &str| {
        a.findings
            .iter()
            .filter(|f| f.id == id)
            .flat_map(|f| f.mentions.pids.clone())
            .count()
    };
    for id in ["accept-queue-full", "close-wait-leak", "fd-exhaustion"] {
        assert!(pids(id) > 0, "{id} names its processes");
    }
}

#[test]
fn evidence_and_remedies_are_specific() {
    let a = analyze(&recording("incidents"), &Settings::default()).expect("a window");
    let leak = a
        .findings
        .iter()
        .find(|f| f.id == "close-wait-leak")
        .expect("a leak");
    let Evidence::CloseWaitLeak(e) = &leak.evidence else {
        panic!("{leak:?}")
    };
    assert_eq!(e.close_wait, 200);
    assert_eq!(e.close_wait_unread, 200, "the lab's server never reads");
    assert!(
        leak.remedy.contains("never even reads to EOF"),
        "{}",
        leak.remedy
    );
    let full = a
        .findings
        .iter()
        .find(|f| f.id == "accept-queue-full" && f.subject.starts_with("tcp"))
        .expect("a full listener");
    let Evidence::AcceptQueueFull(e) = &full.evidence else {
        panic!("{full:?}")
    };
    assert_eq!((e.accept_queue, e.backlog), (9, 8));
    assert!(
        full.remedy.contains("tcp_abort_on_overflow is 0"),
        "{}",
        full.remedy
    );
    assert!(
        full.remedy.contains("tcp_syncookies is 1"),
        "{}",
        full.remedy
    );
    let mined = a
        .findings
        .iter()
        .find(|f| f.id == "ephemeral-port-collision")
        .expect("mined");
    let Evidence::EphemeralPortCollision(e) = &mined.evidence else {
        panic!("{mined:?}")
    };
    assert_eq!(e.mined_ports, 200);
    assert_eq!(e.server.to_string(), "127.0.0.1:5001");
    let ns = &a.netns[0];
    let listener = ns
        .listeners
        .iter()
        .find(|l| l.local == "127.0.0.1:5000")
        .expect("listener");
    assert_eq!(
        (
            listener.unaccepted_close_wait,
            listener.unaccepted_established
        ),
        (3, 6)
    );
    assert!(listener.drops_per_s.is_some_and(|r| r > 0.0));
}

#[test]
fn thresholds_decide_at_their_edges() {
    let window = recording("incidents");
    // leaky holds exactly 200 CLOSE_WAIT sockets.
    let at = with(Thresholds {
        close_wait_warn: 200,
        ..Thresholds::default()
    });
    assert!(has(
        &judge(&window, &at),
        "close-wait-leak",
        Severity::Warning,
        "process leaky"
    ));
    let above = with(Thresholds {
        close_wait_warn: 201,
        close_wait_crit: 500,
        ..Thresholds::default()
    });
    assert!(
        !judge(&window, &above)
            .iter()
            .any(|f| f.0 == "close-wait-leak")
    );
    let crit = with(Thresholds {
        close_wait_crit: 200,
        ..Thresholds::default()
    });
    assert!(has(
        &judge(&window, &crit),
        "close-wait-leak",
        Severity::Critical,
        "process leaky"
    ));
    // fdhog holds 249 of 256 descriptors: 97.27 %.
    let warn_only = with(Thresholds {
        fd_crit: 97.3,
        ..Thresholds::default()
    });
    assert!(has(
        &judge(&window, &warn_only),
        "fd-exhaustion",
        Severity::Warning,
        "process fdhog"
    ));
    let quiet = with(Thresholds {
        fd_warn: 97.3,
        fd_crit: 99.0,
        ..Thresholds::default()
    });
    assert!(
        !judge(&window, &quiet)
            .iter()
            .any(|f| f.0 == "fd-exhaustion")
    );
    // 200 of 28,232 ephemeral ports: 0.71 %.
    let crit = with(Thresholds {
        collision_crit: 0.7,
        ..Thresholds::default()
    });
    assert!(has(
        &judge(&window, &crit),
        "ephemeral-port-collision",
        Severity::Critical,
        "process leaky"
    ));
    let many = with(Thresholds {
        collision_warn: 201,
        ..Thresholds::default()
    });
    assert!(
        !judge(&window, &many)
            .iter()
            .any(|f| f.0 == "ephemeral-port-collision")
    );
    // The unix listener holds 5 of backlog 4: 125 %. Judged critical only above fill_crit.
    let high = with(Thresholds {
        fill_crit: 125.0,
        ..Thresholds::default()
    });
    assert!(has(
        &judge(&window, &high),
        "accept-queue-high",
        Severity::Warning,
        "unix /tmp/"
    ));
    let abandoned = with(Thresholds {
        abandoned_warn: 4,
        ..Thresholds::default()
    });
    assert!(
        !judge(&window, &abandoned)
            .iter()
            .any(|f| f.0 == "abandoned-in-accept-queue")
    );
}

#[test]
fn a_growing_leak_is_critical() {
    // Derived: the first snapshot is made to hold 150 of leaky's 200 CLOSE_WAIT sockets.
    let mut window = recording("incidents");
    let leaky = window[0]
        .processes
        .iter_mut()
        .find(|p| p.comm == "leaky")
        .expect("leaky");
    leaky.tcp.0.insert(TcpState::CloseWait, 150);
    let a = analyze(&window, &Settings::default()).expect("a window");
    let leak = a
        .findings
        .iter()
        .find(|f| f.id == "close-wait-leak")
        .expect("a leak");
    assert_eq!(leak.severity, Severity::Critical);
    let Evidence::CloseWaitLeak(e) = &leak.evidence else {
        panic!("{leak:?}")
    };
    let growth = e.close_wait_growth_per_min.expect("a growth rate");
    assert!(
        (2900.0..3100.0).contains(&growth),
        "50 sockets in about 1 s: {growth}"
    );
}

#[test]
fn rates_need_two_snapshots() {
    let window = recording("incidents");
    let found = judge(&window[1..], &Settings::default());
    assert!(!found.iter().any(|f| f.0 == "listen-drops"), "{found:#?}");
    // The queue is still past its backlog: that needs no rate.
    assert!(has(
        &found,
        "accept-queue-full",
        Severity::Critical,
        "tcp 127.0.0.1:5000"
    ));
}

#[test]
fn syn_and_orphan_pressure_from_derived_states() {
    // Derived from the healthy capture: its dual-stack listener is given 60 request
    // sockets against a backlog of 64 (IPv4 peers, as a [::] listener sees them), and the
    // namespace 600 orphans against tcp_max_orphans 1000.
    let mut window = recording("healthy");
    for snap in &mut window {
        let ns = &mut snap.netns[0];
        let listener = ns
            .tcp_listeners
            .iter_mut()
            .find(|l| l.local.port() == 5003)
            .expect("[::]:5003");
        listener.send_q = 64;
        let template = listener.clone();
        for i in 0..60u16 {
            let mut req = template.clone();
            req.state = TcpState::SynRecv;
            req.inode = 0;
            req.local = "[::ffff:127.0.0.1]:5003".parse().expect("addr");
            req.peer = format!("[::ffff:127.0.0.1]:{}", 40000 + i)
                .parse()
                .expect("addr");
            req.owners.clear();
            ns.tracked.push(req);
        }
        ns.sysctl.tcp_max_orphans = Some(1000);
        ns.sockstat = Some(crate::model::SockStat {
            orphan: 600,
            ..ns.sockstat.unwrap_or_default()
        });
    }
    let found = judge(&window, &Settings::default());
    assert!(
        has(
            &found,
            "syn-queue-pressure",
            Severity::Warning,
            "tcp [::]:5003"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "orphan-pressure", Severity::Warning, "netns"),
        "{found:#?}"
    );
}

#[test]
fn ignore_rules_leave_findings_out_and_count_them() {
    let window = recording("incidents");
    let mut settings = Settings::default();
    settings.ignore.comms.push("leaky".to_owned());
    settings.ignore.ports.push(5000);
    let a = analyze(&window, &settings).expect("a window");
    let ids: Vec<&str> = a.findings.iter().map(|f| f.id.name()).collect();
    assert_eq!(
        ids,
        ["accept-queue-full", "fd-exhaustion"],
        "only unix and fdhog remain"
    );
    assert_eq!(a.ignored, 5);
}

/// A socket of `pid` accepted on 127.0.0.1:5020 whose client (`127.0.0.1:port`) is gone.
fn ghost(pid: u32, port: u16, dumps: u32) -> crate::model::PeerGone {
    crate::model::PeerGone {
        socket: crate::model::TcpSocket {
            family: crate::model::Family::Inet,
            state: TcpState::Established,
            local: "127.0.0.1:5020".parse().expect("addr"),
            peer: format!("127.0.0.1:{port}").parse().expect("addr"),
            recv_q: 0,
            send_q: 0,
            inode: 900_000 + u64::from(port),
            uid: 0,
            drops: None,
            last_ack_recv_ms: None,
            timer: None,
            owners: vec![pid],
        },
        idle_ms: Some(12_000),
        dumps,
        peer_netns: None,
        role: crate::model::PeerRole::Accepted,
        ghost: crate::model::Ghost::Gone,
    }
}

/// Two samples of the incidents, with these sockets whose peer is gone in each, and the pid
/// that holds them.
fn ghost_window(first: &[u16], last: &[u16]) -> (Vec<Snapshot>, u32) {
    let mut window = recording("incidents");
    let pid = window[1]
        .processes
        .iter()
        .find(|p| p.comm == "leaky")
        .expect("leaky")
        .pid;
    window[0].netns[0].peer_gone = first.iter().map(|&p| ghost(pid, p, 1)).collect();
    window[1].netns[0].peer_gone = last.iter().map(|&p| ghost(pid, p, 1)).collect();
    (window, pid)
}

fn peer_gone(window: &[Snapshot]) -> Vec<Finding> {
    analyze(window, &Settings::default())
        .expect("a window")
        .findings
        .into_iter()
        .filter(|f| f.id == FindingId::PeerGone)
        .collect()
}

/// Issue #17: a connection whose peer is gone in both samples is named, with its count.
#[test]
fn peers_gone_in_every_sample_are_named_by_process() {
    let (window, pid) = ghost_window(&[40001, 40002, 40003], &[40001, 40002, 40003, 40004]);
    let found = peer_gone(&window);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.is_about_process(&window[1].netns[0].id, pid), "{f:#?}");
    // 40004 was not gone at the window's start: not counted.
    let Evidence::PeerGone(e) = &f.evidence else {
        panic!("{f:#?}")
    };
    assert_eq!(e.sockets, 3, "{f:#?}");
    assert_eq!(e.idle_ms, Some(12_000), "{f:#?}");
    assert!(
        f.remedy.contains(&format!(
            "sockscope kill --pid {pid} --state established --peer 127.0.0.1:4000"
        )),
        "{}",
        f.remedy
    );
    assert!(f.remedy.contains("SO_KEEPALIVE"), "{}", f.remedy);
    // The window's first snapshot slim (a live window) keeps this list.
    let mut slim = window.clone();
    slim[0].netns[0].tracked.clear();
    slim[0].netns[0].tracked_dropped = true;
    assert_eq!(peer_gone(&slim).len(), 1);
}

/// Issue #17: a ghost whose peer was in another scanned namespace says which, by label.
#[test]
fn peers_gone_in_another_namespace_name_it() {
    let (mut window, _) = ghost_window(&[40001, 40002], &[40001, 40002]);
    for snapshot in &mut window {
        let mut other = snapshot.netns[0].clone();
        other.id = "4026532999".to_owned();
        other.label = "blue".to_owned();
        other.peer_gone.clear();
        for g in &mut snapshot.netns[0].peer_gone {
            g.peer_netns = Some(other.id.clone());
        }
        snapshot.netns.push(other);
    }
    let found = peer_gone(&window);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    let Evidence::PeerGone(e) = &f.evidence else {
        panic!("{f:#?}")
    };
    assert_eq!(e.peer_netns, ["blue"], "{f:#?}");
    assert!(
        f.summary
            .contains("whose peers in network namespace 'blue' no longer exist"),
        "{}",
        f.summary
    );
    // Mixed with a peer of the socket's own namespace.
    window[0].netns[0].peer_gone[1].peer_netns = None;
    window[1].netns[0].peer_gone[1].peer_netns = None;
    let f = &peer_gone(&window)[0];
    assert!(
        f.summary
            .contains("whose peers on this host and in network namespace(s) 'blue'"),
        "{}",
        f.summary
    );
}

/// A connection caught mid-teardown is in one sample only: not a ghost.
#[test]
fn a_connection_seen_gone_in_one_sample_only_is_not_raised() {
    for (first, last) in [(&[][..], &[40001][..]), (&[40001][..], &[][..])] {
        let (window, _) = ghost_window(first, last);
        assert!(peer_gone(&window).is_empty(), "{first:?} then {last:?}");
    }
    // One sample: one dump decides nothing, unless a live collector saw it in two.
    let (window, pid) = ghost_window(&[], &[40001]);
    assert!(peer_gone(&window[1..]).is_empty());
    let mut confirmed = window[1].clone();
    confirmed.netns[0].peer_gone = vec![ghost(pid, 40001, 2)];
    assert_eq!(peer_gone(&[confirmed]).len(), 1);
}

/// Two snapshots of a live collector whose sockets come from the same full dump are one
/// observation, not two.
#[test]
fn two_refreshes_of_one_full_dump_are_one_observation() {
    let (mut window, _) = ghost_window(&[40001], &[40001]);
    let gap_ms = (window[1].monotonic_ns - window[0].monotonic_ns) / 1_000_000;
    window[1].freshness.incremental = true;
    window[1].freshness.socket_dump_age_ms = gap_ms;
    assert!(peer_gone(&window).is_empty());
}

/// `healthy.ndjson` with a UDP receiver on 127.0.0.1:7003 whose drop counter reads `drops[i]`
/// in snapshot `i` (the last value repeats), its buffer `fill` bytes of 9216 (#13).
fn udp_receiver(drops: &[u32], fill: u32) -> Vec<Snapshot> {
    let mut snapshots = recording("healthy");
    let owner = snapshots[0].processes[0].pid;
    for (i, s) in snapshots.iter_mut().enumerate() {
        s.netns[0].udp_sockets.push(crate::model::UdpSocket {
            family: crate::model::Family::Inet,
            local: "127.0.0.1:7003".parse().expect("addr"),
            peer: None,
            recv_q: fill.saturating_sub(768),
            rmem_alloc: Some(fill),
            rcvbuf: Some(9216),
            drops: Some(drops[i.min(drops.len() - 1)]),
            inode: 777_001,
            uid: 0,
            owners: vec![owner],
        });
        s.netns[0].sysctl.rmem_max = Some(212_992);
    }
    snapshots
}

fn udp_finding(window: &[Snapshot]) -> Option<Finding> {
    analyze(window, &Settings::default())
        .expect("a window")
        .findings
        .into_iter()
        .find(|f| f.id == FindingId::UdpReceiveDrops)
}

#[test]
fn udp_drops_that_rose_are_a_finding_whose_remedy_follows_the_buffer() {
    let window = udp_receiver(&[10, 5_000], 9216);
    let secs = seconds_between(&window[0], &window[window.len() - 1]);
    assert!(secs > 0.0);
    let f = udp_finding(&window).expect("the drops rose");
    let rate = 4990.0 / secs;
    let expected = if rate >= Thresholds::DEFAULT.udp_drops_crit {
        Severity::Critical
    } else {
        Severity::Warning
    };
    assert_eq!(f.severity, expected, "{f:?}");
    assert!(f.subject.starts_with("udp 127.0.0.1:7003 ("), "{f:?}");
    assert!(
        matches!(&f.target.kind, TargetKind::Socket { proto: Proto::Udp, local } if local == "127.0.0.1:7003")
    );
    let Evidence::UdpReceiveDrops(evidence::UdpReceiveDrops::Socket(e)) = &f.evidence else {
        panic!("{f:?}")
    };
    assert_eq!(e.drops_in_window, Some(4990));
    assert!(
        f.remedy.contains("reads more slowly than datagrams arrive"),
        "{}",
        f.remedy
    );
    assert!(
        f.remedy.contains("SO_RCVBUF now 9216 bytes"),
        "{}",
        f.remedy
    );
    assert!(
        f.remedy.contains("net.core.rmem_max = 212992"),
        "{}",
        f.remedy
    );

    // Room in the buffer now: bursts, not a slow reader.
    let f = udp_finding(&udp_receiver(&[10, 11], 1024)).expect("one drop is enough");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.remedy.contains("bursts overflow"), "{}", f.remedy);

    // Drops that did not rise in the window, or a single sample, raise nothing.
    assert!(udp_finding(&udp_receiver(&[10], 9216)).is_none());
    let window = udp_receiver(&[10, 5_000], 9216);
    assert!(udp_finding(&window[..1]).is_none());
}

#[test]
fn rcvbuf_errors_with_no_socket_to_blame_are_a_finding_about_the_namespace() {
    let mut window = recording("healthy");
    let n = window.len();
    for (i, s) in window.iter_mut().enumerate() {
        s.netns[0]
            .udp
            .v4
            .insert("RcvbufErrors".to_owned(), if i + 1 == n { 40 } else { 0 });
    }
    let f = udp_finding(&window).expect("RcvbufErrors rose");
    assert_eq!(f.target.kind, TargetKind::Netns);
    assert!(f.summary.contains("RcvbufErrors is rising"), "{f:?}");
    // With a socket whose own counter rose, that socket is the finding.
    let mut window = udp_receiver(&[10, 50], 9216);
    for s in &mut window {
        let errors = u64::from(s.netns[0].udp_sockets[0].drops.unwrap_or(0));
        s.netns[0].udp.v4.insert("RcvbufErrors".to_owned(), errors);
    }
    let found: Vec<Finding> = analyze(&window, &Settings::default())
        .expect("a window")
        .findings
        .into_iter()
        .filter(|f| f.id == FindingId::UdpReceiveDrops)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(matches!(found[0].target.kind, TargetKind::Socket { .. }));
}

#[test]
fn ports_in_use_are_judged_against_the_usable_range_at_their_edges() {
    let judge_use = |ports: u64, reserved: Vec<(u16, u16)>| {
        let mut window = recording("healthy");
        for s in &mut window {
            let ns = &mut s.netns[0];
            ns.sysctl.ip_local_port_range = Some((40_000, 40_099));
            ns.sysctl.ip_local_reserved_ports.clone_from(&reserved);
            let mut states = StateCounts::default();
            states.add(TcpState::Established, ports - 2);
            states.add(TcpState::TimeWait, 2);
            ns.port_use = vec![crate::model::PortUse {
                local: "10.0.0.1".parse().expect("addr"),
                remote: "10.0.0.2:443".parse().expect("addr"),
                states,
                owners: Vec::new(),
            }];
        }
        analyze(&window, &Settings::default())
            .expect("a window")
            .findings
            .into_iter()
            .find(|f| f.id == FindingId::EphemeralPortExhaustion)
    };
    assert!(judge_use(49, Vec::new()).is_none());
    let f = judge_use(50, Vec::new()).expect("50 %");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.subject, "10.0.0.1 → 10.0.0.2:443");
    assert!(
        f.remedy.contains("2 ports are held by TIME_WAIT"),
        "{}",
        f.remedy
    );
    assert_eq!(
        judge_use(89, Vec::new()).map(|f| f.severity),
        Some(Severity::Warning)
    );
    assert_eq!(
        judge_use(90, Vec::new()).map(|f| f.severity),
        Some(Severity::Critical)
    );
    // Ten reserved ports leave 90 usable: 45 is half of them.
    let f = judge_use(45, vec![(40_090, 40_099)]).expect("45 of 90");
    let Evidence::EphemeralPortExhaustion(e) = &f.evidence else {
        panic!("{f:?}")
    };
    assert_eq!(e.range_size, 90);
}

/// The healthy capture with each snapshot changed by `edit(index, namespace)`.
fn healthy_with(edit: impl Fn(usize, &mut NetnsSnapshot)) -> Vec<Snapshot> {
    let mut window = recording("healthy");
    for (at, s) in window.iter_mut().enumerate() {
        edit(at, &mut s.netns[0]);
    }
    window
}

fn the(window: &[Snapshot], id: FindingId) -> Option<Finding> {
    analyze(window, &Settings::default())
        .expect("a window")
        .findings
        .into_iter()
        .find(|f| f.id == id)
}

#[test]
fn a_conntrack_table_warns_from_its_threshold_and_is_critical_while_it_drops() {
    let table = |count: u64, drops: [u64; 2]| {
        healthy_with(move |at, ns| {
            ns.sysctl.nf_conntrack_max = Some(100);
            ns.sysctl.nf_conntrack_buckets = Some(1024);
            ns.conntrack = Some(crate::model::Conntrack {
                count,
                drop: drops[usize::from(at > 0)],
                ..crate::model::Conntrack::default()
            });
        })
    };
    assert!(the(&table(89, [0, 0]), FindingId::ConntrackFull).is_none());
    let f = the(&table(90, [0, 0]), FindingId::ConntrackFull).expect("90 %");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.target.kind, TargetKind::Netns);
    let f = the(&table(100, [2, 30]), FindingId::ConntrackFull).expect("dropping");
    assert_eq!(f.severity, Severity::Critical);
    let Evidence::ConntrackFull(e) = &f.evidence else {
        panic!("{f:?}")
    };
    assert_eq!((e.count, e.max, e.buckets), (100, Some(100), Some(1024)));
    assert!(e.drop_per_s.is_some_and(|r| r > 0.0), "{e:?}");
    assert!(
        f.remedy.contains("nf_conntrack_max (now 100"),
        "{}",
        f.remedy
    );
    assert!(
        f.summary.contains("refusing new connections"),
        "{}",
        f.summary
    );
    // Dropping is critical however full the namespace's own share looks: the count may
    // have fallen back by the time it is read.
    let f = the(&table(10, [0, 5]), FindingId::ConntrackFull).expect("dropping");
    assert_eq!(f.severity, Severity::Critical);
}

#[test]
fn connections_skipping_time_wait_are_a_warning_naming_their_servers() {
    let window = healthy_with(|at, ns| {
        ns.sysctl.tcp_max_tw_buckets = Some(5);
        ns.sysctl.tcp_tw_reuse = Some(2);
        ns.tcp_ext.insert(
            "TCPTimeWaitOverflow".to_owned(),
            if at == 0 { 0 } else { 55 },
        );
        ns.time_wait_top = vec![crate::model::TimeWaitGroup {
            address: "127.0.0.1:7001".parse().expect("addr"),
            incoming: false,
            sockets: 5,
        }];
    });
    let f = the(&window, FindingId::TimeWaitOverflow).expect("overflowing");
    assert_eq!(f.severity, Severity::Warning);
    let Evidence::TimeWaitOverflow(e) = &f.evidence else {
        panic!("{f:?}")
    };
    assert!(e.overflow_per_s > 0.0, "{e:?}");
    assert_eq!(e.tcp_max_tw_buckets, Some(5));
    assert_eq!(e.destinations.len(), 1);
    assert!(f.summary.contains("5 to 127.0.0.1:7001"), "{}", f.summary);
    assert!(f.remedy.contains("tcp_tw_reuse = 2"), "{}", f.remedy);
    // A counter that did not move says nothing.
    let still = healthy_with(|_, ns| {
        ns.tcp_ext.insert("TCPTimeWaitOverflow".to_owned(), 55);
    });
    assert!(the(&still, FindingId::TimeWaitOverflow).is_none());
}

#[test]
fn tcp_memory_pressure_from_counters_and_tcp_mem() {
    let memory = |mem: u64, pressures: u64, aborts: u64| {
        healthy_with(move |at, ns| {
            ns.sysctl.tcp_mem = Some([100, 200, 300]);
            ns.sockstat = Some(crate::model::SockStat {
                mem,
                ..ns.sockstat.unwrap_or_default()
            });
            let now = |n: u64| if at == 0 { 0 } else { n };
            ns.tcp_ext
                .insert("TCPMemoryPressures".to_owned(), now(pressures));
            ns.tcp_ext
                .insert("TCPAbortOnMemory".to_owned(), now(aborts));
        })
    };
    let severity = |w: Vec<Snapshot>| the(&w, FindingId::TcpMemoryPressure).map(|f| f.severity);
    assert_eq!(severity(memory(199, 0, 0)), None);
    assert_eq!(severity(memory(200, 0, 0)), Some(Severity::Warning));
    assert_eq!(severity(memory(10, 3, 0)), Some(Severity::Warning));
    assert_eq!(severity(memory(300, 0, 0)), Some(Severity::Critical));
    let f = the(&memory(10, 0, 4), FindingId::TcpMemoryPressure).expect("aborting");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.summary.contains("consider tuning tcp_mem"),
        "{}",
        f.summary
    );
    let Evidence::TcpMemoryPressure(e) = &f.evidence else {
        panic!("{f:?}")
    };
    assert_eq!(e.tcp_mem, Some([100, 200, 300]));
    assert!(e.abort_on_memory_per_s.is_some_and(|r| r > 0.0), "{e:?}");
}

#[test]
fn orphan_pressure_carries_the_aborts_when_orphans_are_the_cause() {
    let window = healthy_with(|at, ns| {
        ns.sysctl.tcp_max_orphans = Some(1000);
        ns.sockstat = Some(crate::model::SockStat {
            orphan: 990,
            ..ns.sockstat.unwrap_or_default()
        });
        ns.tcp_ext
            .insert("TCPAbortOnMemory".to_owned(), if at == 0 { 0 } else { 12 });
    });
    let f = the(&window, FindingId::OrphanPressure).expect("orphans");
    // A warning, as the contract has it; the abort rate is in its evidence and summary.
    assert_eq!(f.severity, Severity::Warning);
    let Evidence::OrphanPressure(e) = &f.evidence else {
        panic!("{f:?}")
    };
    assert!(e.abort_on_memory_per_s.is_some_and(|r| r > 0.0), "{e:?}");
    assert!(f.summary.contains("TCPAbortOnMemory"), "{}", f.summary);
    // TCP's memory is not short: the aborts are the orphans', said once.
    assert!(the(&window, FindingId::TcpMemoryPressure).is_none());
}

/// Issue #25: a client's connections to a local server that is gone, beside an accepted one:
/// one finding for the process, its roles counted and worded.
#[test]
fn peers_gone_say_which_end_the_process_is() {
    let (mut window, pid) = ghost_window(&[40001, 40002], &[40001, 40002]);
    for snapshot in &mut window {
        let g = &mut snapshot.netns[0].peer_gone[1];
        g.role = crate::model::PeerRole::Connected;
        std::mem::swap(&mut g.socket.local, &mut g.socket.peer);
    }
    let found = peer_gone(&window);
    let Evidence::PeerGone(e) = &found[0].evidence else {
        panic!("{found:#?}")
    };
    assert_eq!((e.sockets, e.accepted, e.connected), (2, 1, 1), "{e:#?}");
    assert!(
        found[0].summary.contains("(1 accepted, 1 connected)"),
        "{}",
        found[0].summary
    );
    assert!(found[0].remedy.contains("a pool"), "{}", found[0].remedy);
    assert!(found[0].is_about_process(&window[1].netns[0].id, pid));
}

/// A connection accepted from a remote peer that never sent a byte, `idle_s` ago.
fn silent(pid: u32, peer: &str, idle_s: u32) -> crate::model::PeerGone {
    let mut g = ghost(pid, 40001, 1);
    g.socket.local = "10.0.0.1:9000".parse().expect("addr");
    g.socket.peer = peer.parse().expect("addr");
    g.socket.inode = 800_000 + u64::from(g.socket.peer.port());
    g.ghost = crate::model::Ghost::Silent;
    g.idle_ms = Some(idle_s * 1000);
    g
}

fn silent_peer(window: &[Snapshot], settings: &Settings) -> Vec<Finding> {
    analyze(window, settings)
        .expect("a window")
        .findings
        .into_iter()
        .filter(|f| f.id == FindingId::SilentPeer)
        .collect()
}

/// Issue #25: connections whose peers sent nothing for `silent_peer_after` are named, top
/// peers first; younger ones are not; one sample is enough (the idle time is the window);
/// none of them is a peer-gone.
#[test]
fn silent_peers_past_their_threshold_are_named_by_process() {
    let (mut window, pid) = ghost_window(&[], &[]);
    window[1].netns[0].peer_gone = vec![
        silent(pid, "192.0.2.7:50001", 300),
        silent(pid, "192.0.2.7:50002", 90),
        silent(pid, "192.0.2.9:50003", 61),
        silent(pid, "192.0.2.9:50004", 5),
    ];
    let found = silent_peer(&window[1..], &Settings::default());
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.is_about_process(&window[1].netns[0].id, pid), "{f:#?}");
    let Evidence::SilentPeer(e) = &f.evidence else {
        panic!("{f:#?}")
    };
    assert_eq!(e.sockets, 3);
    assert_eq!(
        e.top_peers
            .iter()
            .map(|p| (p.address.to_string(), p.sockets))
            .collect::<Vec<_>>(),
        [("192.0.2.7".to_owned(), 2), ("192.0.2.9".to_owned(), 1)]
    );
    assert_eq!((e.longest_idle_ms, e.shortest_idle_ms), (300_000, 61_000));
    assert_eq!(e.silent_peer_after_ms, 60_000);
    assert!(f.remedy.contains("SO_KEEPALIVE"), "{}", f.remedy);
    assert!(f.remedy.contains("tcp_keepalive_time"), "{}", f.remedy);
    assert!(
        f.remedy.contains(&format!(
            "sockscope kill --pid {pid} --state established --peer 192.0.2.7"
        )),
        "{}",
        f.remedy
    );
    assert!(peer_gone(&window[1..]).is_empty());
    assert!(peer_gone(&window).is_empty());

    let mut later = Settings::default();
    later.thresholds.silent_peer_after = std::time::Duration::from_secs(600);
    assert!(silent_peer(&window[1..], &later).is_empty());
    let mut sooner = Settings::default();
    sooner.thresholds.silent_peer_after = std::time::Duration::from_secs(2);
    let Evidence::SilentPeer(e) = &silent_peer(&window[1..], &sooner)[0].evidence else {
        panic!("silent-peer")
    };
    assert_eq!(e.sockets, 4);
}
