//! `sockscope serve`, end to end: real HTTP scrapes of a private namespace holding a full
//! listener and a leaking server, the exposition through promtool, a real Prometheus
//! scraping it and firing the example alerts, many and misbehaving clients, and memory.

mod assets;
pub(crate) mod client;
mod prometheus;
mod textfile;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use sockscope::present::prometheus::FAMILIES;

use crate::util::netns::netns_or_skip;
use crate::util::oracle::parse_listener_drops;
use crate::util::sockscope_bin;
use client::{Serve, number, parse_exposition, read_reply, tool_or_skip, value_of};

/// The full listener: backlog 8, 30 clients, so 9 queued and 21 retrying their SYNs.
const NOACCEPT: [&str; 7] = [
    "noaccept",
    "--addr",
    "127.0.0.1:5000",
    "--backlog",
    "8",
    "--clients",
    "30",
];
/// The leaking server: 200 connections its clients closed and it did not.
const LEAK: [&str; 5] = ["leak", "--addr", "127.0.0.1:5001", "--count", "200"];

#[test]
fn serve_exports_the_full_listener_and_the_leak() {
    let name = "serve_exports_the_full_listener_and_the_leak";
    let Some(mut ns) = netns_or_skip(name) else {
        return;
    };
    let noaccept = ns.lab(&NOACCEPT).pid("noaccept");
    let leaky = ns.lab(&LEAK).pid("leaky");
    let Some(serve) = Serve::start(&ns, name, &["--interval", "200ms"]) else {
        return;
    };
    // Issue #27: a face that runs for weeks runs with glibc's mmap threshold fixed, so that
    // the large blocks of a full pass do not stay resident after it.
    let environ = std::fs::read(format!("/proc/{}/environ", serve.pid())).expect("environ");
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|var| var == b"MALLOC_MMAP_THRESHOLD_=131072"),
        "serve runs with the mmap threshold fixed"
    );

    // The clients past the queue keep retransmitting SYNs, so the drops keep rising: read
    // them with ss before and after the scrape, and expect the exporter's value in between.
    let local = "127.0.0.1:5000";
    let drops = || parse_listener_drops(&ns.ss(&["-tlmnH"])).expect("ss -tlm parses")[local];
    let before = drops();
    let reply = serve.get("/metrics");
    let after = drops();

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &reply.body;
    for f in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {} ", f.name))
                && text.contains(&format!("# TYPE {} {}\n", f.name, f.kind.name())),
            "{} lacks HELP or TYPE:\n{text}",
            f.name
        );
    }
    let samples = parse_exposition(text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        value_of(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}:\n{text}"))
    };

    let listener = [("proto", "tcp"), ("local", local), ("comm", "noaccept")];
    assert_eq!(get("sockscope_listener_accept_queue", &listener), "9");
    assert_eq!(get("sockscope_listener_backlog", &listener), "8");
    assert_eq!(get("sockscope_listener_syn_recv", &listener), "0");
    let ours: u64 = get("sockscope_listener_drops_total", &listener)
        .parse()
        .expect("a whole number of drops");
    assert!(
        ours > 0 && before <= ours && ours <= after,
        "drops: ss said {before} before and {after} after, the exporter {ours}"
    );
    let overflows = get(
        "sockscope_kernel_tcpext_total",
        &[("name", "ListenOverflows")],
    );
    assert!(number(overflows) > 0.0);

    let pid = leaky.to_string();
    let leak = [("pid", pid.as_str()), ("comm", "leaky")];
    assert_eq!(get("sockscope_process_close_wait", &leak), "200");
    assert!(number(get("sockscope_process_fds", &leak)) > 200.0);
    assert!(number(get("sockscope_process_fd_limit", &leak)) > 0.0);
    // The namespace's whole count: the scrape collected after `Serve::start` saw its probe
    // connection gone, and the scrape's own connection is ESTABLISHED while it collects.
    assert_eq!(
        get("sockscope_tcp_sockets", &[("state", "CLOSE_WAIT")]),
        "200"
    );
    let owner = noaccept.to_string();
    assert_eq!(
        get(
            "sockscope_process_close_wait",
            &[("pid", owner.as_str()), ("comm", "noaccept")]
        ),
        "0"
    );

    assert!(
        number(get(
            "sockscope_findings",
            &[("id", "accept-queue-full"), ("severity", "critical")]
        )) >= 1.0
    );
    assert_eq!(get("sockscope_findings", &[("id", "close-wait-leak")]), "1");
    assert!(number(get("sockscope_scrape_duration_seconds", &[])) > 0.0);
    assert!(["0", "1"].contains(&get("sockscope_scrape_partial", &[])));

    // Only pid and comm describe a process; nothing from its command line or environment.
    let cmdline = std::fs::read(format!("/proc/{leaky}/cmdline")).expect("leaky's cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--addr"), "{cmdline}");
    assert!(
        !text.contains("--addr") && !text.contains("--count"),
        "command lines are never exported"
    );

    if tool_or_skip(name, "promtool") {
        let promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .output_with_stdin(text.as_bytes());
        assert!(
            promtool.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&promtool.stdout),
            String::from_utf8_lossy(&promtool.stderr)
        );
    }
}

/// `Command::output` with bytes on stdin.
trait WithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output;
}

impl WithStdin for Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output {
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawning");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("writing stdin");
        child.wait_with_output().expect("waiting")
    }
}

#[test]
fn serve_routes_health_and_errors() {
    let test = "serve_routes_health_and_errors";
    let Some(ns) = netns_or_skip(test) else {
        return;
    };
    let Some(serve) = Serve::start(&ns, test, &[]) else {
        return;
    };
    let health = serve.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let index = serve.get("/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        index.body.contains("<a href=\"/metrics\">"),
        "{}",
        index.body
    );
    assert_eq!(serve.get("/nope").status, 404);
    assert_eq!(serve.get("/metrics?debug=1").status, 200);
    let post = serve.request("POST", "/metrics");
    assert_eq!(
        (post.status, post.header("Allow")),
        (405, Some("GET, HEAD"))
    );
    let head = serve.request("HEAD", "/metrics");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("Content-Length").is_some_and(|n| n != "0"));
}

#[test]
fn a_hundred_concurrent_scrapes_are_answered_while_a_client_stalls() {
    let test = "a_hundred_concurrent_scrapes_are_answered_while_a_client_stalls";
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    let leaky = ns.lab(&LEAK).pid("leaky").to_string();
    let Some(serve) = Serve::start(&ns, test, &["--interval", "100ms"]) else {
        return;
    };
    // Half a request, then silence: the server must give up on it, not wait for it.
    let mut stalled = serve.connect().expect("connect");
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: sock")
        .expect("half a request");
    let started = Instant::now();
    let replies: Vec<client::Reply> = std::thread::scope(|scope| {
        let serve = &serve;
        let handles: Vec<_> = (0..100)
            .map(|_| scope.spawn(move || serve.get("/metrics")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scrape"))
            .collect()
    });
    let took = started.elapsed();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let samples = parse_exposition(&reply.body);
        // Not the namespace's CLOSE_WAIT total: these clients' own sockets pass through
        // CLOSE_WAIT once the server has answered and closed.
        assert_eq!(
            value_of(
                &samples,
                "sockscope_process_close_wait",
                &[("pid", leaky.as_str()), ("comm", "leaky")]
            ),
            Some("200")
        );
    }
    // The server gives a head 5 s before it answers 408. Had the stalled client held the
    // others up, they would have been answered only after that: so, once they all are, the
    // stalled client must still be waiting for its answer.
    stalled.set_nonblocking(true).expect("nonblocking");
    let mut peek = [0u8; 1];
    let waiting =
        matches!(stalled.peek(&mut peek), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(
        waiting,
        "the stalled client was answered before 100 scrapes ({took:?})"
    );
    stalled.set_nonblocking(false).expect("blocking");

    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let reply = read_reply(&mut stalled).expect("an answer to the stalled client");
    assert_eq!(reply.status, 408, "{reply:?}");
    let mut rest = Vec::new();
    assert_eq!(stalled.read_to_end(&mut rest).ok(), Some(0), "closed");
}

#[test]
fn memory_stays_flat_over_thousands_of_scrapes() {
    let test = "memory_stays_flat_over_thousands_of_scrapes";
    let Some(mut ns) = netns_or_skip(test) else {
        return;
    };
    ns.lab(&NOACCEPT);
    ns.lab(&LEAK);
    // Collections keep happening during the run, not only cached answers.
    let Some(serve) = Serve::start(&ns, test, &["--interval", "50ms"]) else {
        return;
    };
    let scrape_many = |n: usize| {
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..n / 8 {
                        let reply = serve.get("/metrics");
                        assert_eq!(reply.status, 200);
                    }
                });
            }
        });
    };
    // Warm up: thread stacks, allocator arenas, the first collections.
    scrape_many(400);
    let before = serve.rss_kib();
    let started = Instant::now();
    scrape_many(4000);
    let after = serve.rss_kib();
    eprintln!(
        "{test}: RSS {before} KiB after 400 scrapes, {after} KiB after 4000 more ({:+} KiB, {:?})",
        i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(0),
        started.elapsed()
    );
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 4000 scrapes"
    );
}

#[test]
fn serve_refuses_a_taken_port_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = Command::new(sockscope_bin())
        .args(["serve", "--listen", &addr])
        .output()
        .expect("running sockscope serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "sockscope: cannot listen on {addr}: the port is taken (another exporter?); choose \
             another with --listen\n"
        )
    );
}

#[test]
fn serve_usage_errors_are_one_line() {
    for args in [
        &["serve", "--listen", "localhost"][..],
        &["serve", "--interval", "soon"],
        &["serve", "--top-processes", "0"],
    ] {
        let out = Command::new(sockscope_bin())
            .args(args)
            .output()
            .expect("running sockscope serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}
