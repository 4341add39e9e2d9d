//! Real servers from Debian's packages (nginx, redis-server, HAProxy, fcgiwrap), each in the
//! test's own namespace from a config in a scratch directory, in the states operators meet
//! them in: stopped, stalled behind a slow backend, under steady load. Each test checks what
//! sockscope already claims, through `report --json` (and the text report for one).

use std::time::Duration;

use crate::util::netns::netns_or_skip;
use crate::util::python;
use crate::util::report::{Finding, Report};
use crate::util::servers::{self, Listen, Nginx, stop, tools_or_skip};
use crate::util::{names_pid, poll, stdout_of};

/// How long a test waits for the kernel state it has set up to show in a report.
const SETTLE: Duration = Duration::from_secs(30);

/// The findings whose target is the TCP listener `local`.
fn about_listener<'r>(report: &'r Report, local: &str) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.target.kind == "listener" && f.target.local.as_deref() == Some(local))
        .collect()
}

/// A finding's words for a person: its subject, summary and remedy.
fn words(f: &Finding) -> String {
    format!("{}\n{}\n{}", f.subject, f.summary, f.remedy)
}

fn names_listener(report: &Report, id: &str, local: &str) -> bool {
    about_listener(report, local).iter().any(|f| f.id == id)
}

#[test]
fn redis_stopped_while_clients_connect() {
    let test = "redis_stopped_while_clients_connect";
    if !tools_or_skip(test, &["redis-server"]) || !python::available() {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let redis = servers::redis(&ns, test, 6379, 16);
    stop(redis.pid());
    let pool = python::run_in(
        &ns,
        python::CONNECTS,
        &["127.0.0.1", "6379", "40", "PING\r\n"],
    );

    let local = "127.0.0.1:6379";
    let report = ns.report_until(
        &["--samples", "1"],
        "accept-queue-full and connect-stall",
        |r| {
            names_listener(r, "accept-queue-full", local)
                && !r.findings_with_id("connect-stall").is_empty()
        },
    );
    let full = about_listener(&report, local)
        .into_iter()
        .find(|f| f.id == "accept-queue-full")
        .expect("found above");
    assert_eq!(full.severity, "critical", "{full:?}");
    let listener = report.only_netns().listener("tcp", local);
    assert_eq!(
        (listener.accept_queue, listener.backlog),
        (17, 16),
        "{listener:?}"
    );
    assert!(
        listener
            .owners
            .iter()
            .any(|o| o.pid == redis.pid() && o.comm == "redis-server"),
        "{listener:?}"
    );
    assert!(
        full.subject.contains("redis-server") && names_pid(&full.subject, redis.pid()),
        "the subject names redis-server and its pid {}: {full:?}",
        redis.pid()
    );

    // The 23 connections past backlog + 1 retry their SYNs: the pool's process, to redis.
    let stall = report.the_finding("connect-stall");
    assert_eq!(stall.target.pid, Some(pool.pid()), "{stall:?}");
    assert_eq!(stall.target.remote.as_deref(), Some(local), "{stall:?}");
    assert!(stall.evidence["sockets"].as_u64() >= Some(20), "{stall:?}");
}

/// The accept-queue write-up, literally: nginx in front of fcgiwrap over TCP, somaxconn 4 in
/// the namespace, a CGI script that sleeps 25 s, and 30 requests from curl with a 6 s timeout.
/// fcgiwrap's one worker is busy with the first request; nginx's connections for the others
/// wait in fcgiwrap's accept queue (5 of them) or in SYN_SENT; curl gives up and nginx closes
/// its side, leaving the queued ones in CLOSE_WAIT. nginx's own listener is fine.
#[test]
fn fcgiwrap_behind_nginx_fills_and_is_abandoned() {
    let test = "fcgiwrap_behind_nginx_fills_and_is_abandoned";
    if !tools_or_skip(test, &["nginx", "fcgiwrap", "curl"]) {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    ns.run("sysctl", &["-q", "-w", "net.core.somaxconn=4"]);
    let cgi_local = "127.0.0.1:9000";
    let cgi = servers::fcgiwrap(
        &ns,
        test,
        cgi_local,
        1,
        "slow.cgi",
        "sleep 25\necho 'Content-Type: text/plain'\necho\necho done\n",
    );
    let script = cgi.path("slow.cgi");
    let location = format!(
        "      include /etc/nginx/fastcgi_params;\n      fastcgi_param SCRIPT_FILENAME {};\n      fastcgi_pass {cgi_local};\n      fastcgi_read_timeout 60s;",
        script.display()
    );
    let web_local = "127.0.0.1:8080";
    let nginx = Nginx::start(
        &ns,
        test,
        2,
        &[Listen {
            location: Some(location),
            ..Listen::page(web_local, 511)
        }],
        "",
    );
    let url = format!("http://{web_local}/slow.cgi");
    let _curl = servers::curl_parallel(&ns, test, &url, 30, 6);

    let report = ns.report_until(
        &["--samples", "1"],
        "accept-queue-full and abandoned-in-accept-queue on fcgiwrap",
        |r| {
            names_listener(r, "accept-queue-full", cgi_local)
                && names_listener(r, "abandoned-in-accept-queue", cgi_local)
        },
    );
    let listener = report.only_netns().listener("tcp", cgi_local);
    assert_eq!(
        listener.backlog, 4,
        "somaxconn caps fcgiwrap's backlog: {listener:?}"
    );
    assert!(
        listener.owners.iter().all(|o| o.comm == "fcgiwrap")
            && listener.owners.iter().any(|o| o.pid == cgi.pid()),
        "{listener:?}"
    );
    let full = about_listener(&report, cgi_local)
        .into_iter()
        .find(|f| f.id == "accept-queue-full")
        .expect("found above");
    assert!(words(full).contains("fcgiwrap"), "{full:?}");
    let on_nginx = about_listener(&report, web_local);
    assert!(
        on_nginx.is_empty(),
        "nothing is wrong with nginx's own listener: {on_nginx:#?}"
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.target.pid == Some(nginx.master()) && f.severity == "critical"),
        "{:#?}",
        report.findings
    );
}

#[test]
fn nginx_with_both_workers_stopped_is_named() {
    let test = "nginx_with_both_workers_stopped_is_named";
    if !tools_or_skip(test, &["nginx", "curl"]) {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let local = "127.0.0.1:8080";
    let nginx = Nginx::start(&ns, test, 2, &[Listen::page(local, 16)], "");
    for &worker in &nginx.workers {
        stop(worker);
    }
    let url = format!("http://{local}/");
    let _curl = servers::curl_parallel(&ns, test, &url, 60, 40);

    let report = ns.report_until(
        &["--samples", "1"],
        "accept-queue-full on nginx's listener",
        |r| names_listener(r, "accept-queue-full", local),
    );
    let listener = report.only_netns().listener("tcp", local);
    assert_eq!(
        (listener.accept_queue, listener.backlog, listener.full),
        (17, 16, true)
    );
    let full = about_listener(&report, local)
        .into_iter()
        .find(|f| f.id == "accept-queue-full")
        .expect("found above");
    assert_eq!(full.severity, "critical");
    assert!(words(full).contains("nginx"), "{full:?}");
    for pid in std::iter::once(nginx.master()).chain(nginx.workers.iter().copied()) {
        assert!(
            listener
                .owners
                .iter()
                .any(|o| o.pid == pid && o.comm == "nginx"),
            "nginx pid {pid} holds the listener: {listener:?}"
        );
    }

    // The text report says the same to a person.
    let output = ns.sockscope(&["report", "--samples", "1"]);
    let said = stdout_of("sockscope report", &output);
    assert!(
        said.contains("accept-queue-full") && said.contains(local) && said.contains("nginx"),
        "{said}"
    );
}

#[test]
fn haproxy_names_the_stopped_backend_not_itself() {
    let test = "haproxy_names_the_stopped_backend_not_itself";
    if !tools_or_skip(test, &["haproxy", "nginx", "curl"]) {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let (good, bad) = ("127.0.0.1:8001", "127.0.0.1:8002");
    let _good = Nginx::start(&ns, &format!("{test}-a"), 1, &[Listen::page(good, 16)], "");
    let stopped = Nginx::start(&ns, &format!("{test}-b"), 1, &[Listen::page(bad, 16)], "");
    let proxy = servers::haproxy(&ns, test, 8000, &[8001, 8002]);
    for &worker in &stopped.workers {
        stop(worker);
    }
    let url = "http://127.0.0.1:8000/".to_owned();
    let _curl = servers::curl_parallel(&ns, test, &url, 80, 40);

    let report = ns.report_until(
        &["--samples", "1"],
        "accept-queue-full on the stopped backend",
        |r| names_listener(r, "accept-queue-full", bad),
    );
    let full = about_listener(&report, bad)
        .into_iter()
        .find(|f| f.id == "accept-queue-full")
        .expect("found above");
    assert!(words(full).contains("nginx"), "{full:?}");
    let frontend = "127.0.0.1:8000";
    for local in [frontend, good] {
        let named = about_listener(&report, local);
        assert!(
            named.is_empty(),
            "nothing is wrong with {local}: {named:#?}"
        );
    }
    let listener = report.only_netns().listener("tcp", frontend);
    assert!(
        listener.owners.iter().any(|o| o.comm == "haproxy"),
        "{listener:?} (haproxy pid {})",
        proxy.pid()
    );
}

#[test]
fn healthy_servers_under_load_raise_nothing() {
    let test = "healthy_servers_under_load_raise_nothing";
    if !tools_or_skip(
        test,
        &[
            "nginx",
            "haproxy",
            "redis-server",
            "redis-benchmark",
            "curl",
        ],
    ) {
        return;
    }
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let _web = Nginx::start(
        &ns,
        test,
        2,
        &[
            Listen::page("127.0.0.1:8001", 511),
            Listen {
                reuseport: true,
                ..Listen::page("127.0.0.1:8002", 511)
            },
        ],
        "",
    );
    let _proxy = servers::haproxy(&ns, test, 8000, &[8001, 8002]);
    let _redis = servers::redis(&ns, test, 6379, 511);

    // Steady load through all three while two samples are taken.
    let loop_script = "end=$(($(date +%s) + 15)); while [ $(date +%s) -lt $end ]; do \
                       curl -s -o /dev/null http://127.0.0.1:8000/ http://127.0.0.1:8001/ \
                       http://127.0.0.1:8002/; done";
    let _curl = servers::client(&ns, test, "curl-loop", "sh", &["-c", loop_script]);
    let _bench = servers::client(
        &ns,
        test,
        "redis-benchmark",
        "redis-benchmark",
        &[
            "-p",
            "6379",
            "-c",
            "20",
            "-n",
            "2000000",
            "-t",
            "ping,set,get",
            "-q",
        ],
    );
    // Wait until the load is on: the proxy and redis hold clients.
    poll("load on haproxy and redis", SETTLE, || {
        let established = ns.ss(&["-tanH", "state", "established"]);
        (established.contains(":6379") && established.contains(":8000")).then_some(())
    });
    // A client starved of CPU on a busy test machine (two cores shared by the whole suite)
    // can leave its replies unread for a whole window, which a stall finding rightly
    // reports; the servers are healthy when a second window raises nothing either way.
    let loud = |report: &Report| -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.severity != "info")
            .map(|f| format!("{} {} {}: {}", f.severity, f.id, f.subject, f.summary))
            .collect()
    };
    let mut report = ns.report_with(&["--samples", "2", "--interval", "2s"]);
    let first = loud(&report);
    if !first.is_empty() {
        eprintln!("healthy servers, first window raised: {first:#?}");
        report = ns.report_with(&["--samples", "2", "--interval", "2s"]);
    }
    let second = loud(&report);
    assert!(
        second.is_empty(),
        "a healthy host raises nothing: {second:#?} (the window before: {first:#?})"
    );
    let netns = report.only_netns();
    for local in ["127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:6379"] {
        assert!(!netns.listener("tcp", local).full);
    }
    assert!(
        netns
            .listeners
            .iter()
            .filter(|l| l.local == "127.0.0.1:8002")
            .count()
            == 2,
        "nginx's reuseport listener is one socket per worker: {:?}",
        netns.listeners
    );
}
