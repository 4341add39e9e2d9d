//! The readers against this host's /proc, and against a fresh network namespace entered
//! from a thread (the way other namespaces are collected).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::collect::test_support::Holder;

#[test]
fn reads_this_hosts_tables() {
    let tables = read_net_tables(&read_host_sysctls());

    assert!(tables.tcp_ext.contains_key("ListenOverflows"));
    assert!(tables.tcp_ext.contains_key("TCPReqQFullDrop"));
    assert!(tables.tcp.contains_key("ActiveOpens"));
    assert!(!tables.tcp.contains_key("MaxConn"), "-1 is not a u64");
    assert!(tables.sockstat.is_some());
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").expect("somaxconn");
    assert_eq!(
        tables.sysctl.somaxconn,
        Some(somaxconn.trim().parse().expect("number"))
    );
    let (lo, hi) = tables.sysctl.ip_local_port_range.expect("port range");
    assert!(lo <= hi);
    assert!(tables.sysctl.tcp_syncookies.is_some());
    assert!(
        tables
            .local_addrs
            .contains(&IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    assert!(tables.local_addrs.is_sorted());
    for file in ["netstat", "snmp", "sockstat", "fib_trie", "if_inet6"] {
        assert!(
            !tables.problems.iter().any(|p| p.path().contains(file)),
            "{:?}",
            tables.problems
        );
    }
}

#[test]
fn reads_the_namespace_of_the_calling_thread() {
    let Some(holder) = Holder::start("reads_the_namespace_of_the_calling_thread") else {
        return;
    };
    let ns_path = holder.ns_path();
    let (inside, main_threads_view) = std::thread::spawn(move || {
        let ns = std::fs::File::open(&ns_path).expect("open ns");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let self_net = std::fs::read_to_string("/proc/self/net/fib_trie").expect("self fib_trie");
        (
            read_net_tables(&read_host_sysctls()),
            parse::parse_fib_trie_local(&self_net).expect("parses"),
        )
    })
    .join()
    .expect("setns thread");
    let host = read_net_tables(&read_host_sysctls());

    assert_eq!(
        inside.local_addrs,
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ],
        "a fresh namespace has only lo"
    );
    assert!(inside.tcp_ext.contains_key("ListenOverflows"));
    assert!(inside.sysctl.somaxconn.is_some());
    assert!(inside.sysctl.ip_local_port_range.is_some());
    assert!(
        inside.holds_no_tcp() && inside.holds_no_udp(),
        "a fresh namespace is empty"
    );

    // `/proc/self/net` followed the main thread, still in the host's namespace.
    let host_v4: Vec<IpAddr> = host
        .local_addrs
        .iter()
        .copied()
        .filter(IpAddr::is_ipv4)
        .collect();
    let main_v4: Vec<IpAddr> = main_threads_view.into_iter().map(IpAddr::V4).collect();
    assert_eq!(main_v4, host_v4);

    // tcp_max_orphans is host-wide, registered in the initial namespace only.
    if host.sysctl.tcp_max_orphans.is_some() {
        assert_eq!(inside.sysctl.tcp_max_orphans, None);
        assert!(
            inside
                .problems
                .iter()
                .any(|p| p.path().ends_with("/tcp_max_orphans")),
            "{:?}",
            inside.problems
        );
    }
    assert_eq!(inside.problems.len(), 1, "{:?}", inside.problems);

    // tcp_max_tw_buckets is per namespace; tcp_mem the host's, absent inside, no problem.
    assert!(inside.sysctl.tcp_max_tw_buckets.is_some());
    if host.sysctl.tcp_mem.is_some() {
        assert_eq!(inside.sysctl.tcp_mem, None);
    }
    // Connection tracking: the count is the namespace's (none yet in a fresh one), the
    // limit the host's. Without the module, neither is there and nothing is said.
    if std::path::Path::new("/proc/net/stat/nf_conntrack").exists() {
        assert_eq!(inside.conntrack.map(|c| c.count), Some(0));
        assert!(inside.sysctl.nf_conntrack_max.is_some());
        assert!(inside.sysctl.nf_conntrack_buckets.is_some());
        // What lets a pass read them once for every namespace.
        assert_eq!(inside.sysctl.nf_conntrack_max, host.sysctl.nf_conntrack_max);
        assert_eq!(
            inside.sysctl.nf_conntrack_buckets,
            host.sysctl.nf_conntrack_buckets
        );
        assert!(
            !inside.tracks_connections(),
            "a fresh namespace tracks nothing"
        );
    } else {
        assert_eq!(inside.conntrack, None);
        assert_eq!(inside.sysctl.nf_conntrack_max, None);
    }
}

#[test]
fn tracking_is_told_by_the_conntrack_statistics() {
    let with = |conntrack: Option<u64>, problems: Vec<TableProblem>| NetTables {
        conntrack: conntrack.map(|count| Conntrack {
            count,
            drop: 0,
            early_drop: 0,
            insert_failed: 0,
        }),
        problems,
        ..NetTables::default()
    };
    assert!(!with(Some(0), Vec::new()).tracks_connections());
    assert!(with(Some(3), Vec::new()).tracks_connections());
    // No module, no file: nothing tracked.
    assert!(!with(None, Vec::new()).tracks_connections());
    // A file that could not be read is doubted, not trusted.
    let unread = TableProblem::Unread {
        path: format!("{NET}/{CONNTRACK_STAT}"),
        err: Arc::new(io::Error::from(ErrorKind::PermissionDenied)),
    };
    assert!(with(None, vec![unread]).tracks_connections());
    let elsewhere = TableProblem::Unread {
        path: format!("{NET}/snmp"),
        err: Arc::new(io::Error::from(ErrorKind::PermissionDenied)),
    };
    assert!(!with(None, vec![elsewhere]).tracks_connections());
}

#[test]
fn a_malformed_or_missing_file_becomes_a_problem() {
    let mut problems = Vec::new();
    let text = "TcpExt: A B\nTcpExt: 1\n";
    assert_eq!(
        parsed(
            &mut problems,
            ("/x", "netstat"),
            Ok(text),
            parse::parse_snmp
        ),
        None
    );
    let missing = std::io::Error::from(ErrorKind::NotFound);
    assert_eq!(
        parsed(
            &mut problems,
            ("/x", "sockstat"),
            Err(missing),
            parse::parse_sockstat
        ),
        None
    );
    match &problems[..] {
        [
            TableProblem::Unparsed { path: unparsed, .. },
            TableProblem::Unread { path: unread, err },
        ] => {
            assert_eq!(
                (unparsed.as_str(), unread.as_str()),
                ("/x/netstat", "/x/sockstat")
            );
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_namespace_holds_no_tcp_only_when_every_count_says_so() {
    let v4 = "sockets: used 2\nTCP: inuse 0 orphan 0 tw 0 alloc 9 mem 1\nUDP: inuse 1 mem 2\n";
    let v6 = "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\n";
    assert_eq!(parse::parse_inuse(v4, "UDP:").ok(), Some(Some(1)));
    assert_eq!(parse::parse_inuse(v6, "TCP6:").ok(), Some(Some(0)));
    assert_eq!(
        parse::parse_inuse(v4, "TCP6:").ok(),
        Some(None),
        "no such line"
    );
    assert!(parse::parse_inuse("UDP: mem 2\n", "UDP:").is_err());
    assert!(parse::parse_inuse("UDP: inuse x\n", "UDP:").is_err());

    let empty = NetTables {
        sockstat: parse::parse_sockstat(v4).ok(),
        tcp6_inuse: Some(0),
        udp_inuse: Some(0),
        ..NetTables::default()
    };
    assert!(empty.holds_no_tcp() && empty.holds_no_udp());
    let with = |f: &dyn Fn(&mut NetTables)| {
        let mut t = empty.clone();
        f(&mut t);
        t
    };
    assert!(
        !with(&|t| t.tcp6_inuse = Some(1)).holds_no_tcp(),
        "an IPv6 listener"
    );
    assert!(
        !with(&|t| t.tcp6_inuse = None).holds_no_tcp(),
        "sockstat6 unread"
    );
    assert!(
        !with(&|t| t.sockstat = None).holds_no_tcp(),
        "sockstat unread"
    );
    let tw = parse::parse_sockstat("TCP: inuse 0 orphan 0 tw 3 alloc 0 mem 0\n").ok();
    assert!(!with(&|t| t.sockstat = tw).holds_no_tcp(), "TIME_WAIT");
    let one = parse::parse_sockstat("TCP: inuse 1 orphan 0 tw 0 alloc 0 mem 0\n").ok();
    assert!(!with(&|t| t.sockstat = one).holds_no_tcp(), "a listener");
    assert!(!with(&|t| t.udp_inuse = Some(1)).holds_no_udp());
    assert!(!with(&|t| t.udp_inuse = None).holds_no_udp());
}
