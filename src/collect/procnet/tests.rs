//! The readers against this host's /proc, and against a fresh network namespace entered
//! from a thread (the way other namespaces are collected).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::collect::test_support::Holder;

#[test]
fn reads_this_hosts_tables() {
    let tables = read_net_tables();

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
            read_net_tables(),
            parse::parse_fib_trie_local(&self_net).expect("parses"),
        )
    })
    .join()
    .expect("setns thread");
    let host = read_net_tables();

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
    } else {
        assert_eq!(inside.conntrack, None);
        assert_eq!(inside.sysctl.nf_conntrack_max, None);
    }
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
