//! Each scenario, driven from the lab's own process: start the roles in order, wait until
//! the promised kernel state holds (reading role reports and `/proc/net/tcp`, never
//! `sock_diag`), print the ready line, hold, stop.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::proc_net;
use crate::sockets::{check_loopback, somaxconn};
use crate::supervisor::Supervisor;
use crate::{
    ChurnArgs, FdsArgs, HealthyArgs, LeakArgs, ListenArgs, LoadArgs, NoacceptArgs, UnixNoacceptArgs,
};

/// How often kernel state read from /proc is re-checked while waiting for it.
const PROC_POLL: Duration = Duration::from_millis(10);

fn args(parts: &[&dyn ToString]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Accept-queue length of the listener with this inode.
fn accept_queue(ipv6: bool, inode: u64) -> anyhow::Result<u32> {
    proc_net::read(ipv6)?
        .iter()
        .find(|row| row.inode == inode && row.state == proc_net::LISTEN)
        .map(|row| row.rx_queue)
        .with_context(|| format!("listener inode {inode} not in /proc/net/tcp"))
}

fn count_rows(ipv6: bool, keep: impl Fn(&proc_net::Row) -> bool) -> anyhow::Result<u32> {
    Ok(u32::try_from(
        proc_net::read(ipv6)?.iter().filter(|row| keep(row)).count(),
    )?)
}

pub fn noaccept(a: &NoacceptArgs, timeout: Duration) -> anyhow::Result<()> {
    check_loopback(a.addr, false)?;
    let backlog = a.backlog.min(somaxconn()?);
    // The kernel queues up to backlog + 1 connections (it refuses only when length > backlog).
    let fit = a.clients.min(backlog + 1);
    if a.abandon > fit {
        bail!(
            "--abandon {}: only {fit} connections reach the accept queue",
            a.abandon
        );
    }
    let v6 = a.addr.is_ipv6();
    let mut sup = Supervisor::new(timeout)?;
    let server = sup.spawn(
        "noaccept",
        &args(&[
            &"noaccept-server",
            &"--addr",
            &a.addr,
            &"--backlog",
            &a.backlog,
        ]),
    )?;
    sup.wait_until("the listener", None, |s| {
        Ok(s.value::<u64>(server, "inode").is_some())
    })?;
    let inode: u64 = sup.value(server, "inode").context("listener inode")?;

    // First only the connections that fit, each completed before the rest start: a SYN that
    // arrives while the last ACKs are still on their way could otherwise win a slot, leaving
    // a client that thinks it is connected and a server-side SYN_RECV.
    let clients = sup.spawn(
        "clients",
        &args(&[
            &"noaccept-clients",
            &"--addr",
            &a.addr,
            &"--clients",
            &a.clients,
            &"--first",
            &fit,
        ]),
    )?;
    sup.wait_until("the first connections to complete", None, |s| {
        Ok(s.value::<u32>(clients, "completed") >= Some(fit))
    })?;
    sup.wait_until("the accept queue to fill", Some(PROC_POLL), |_| {
        Ok(accept_queue(v6, inode)? == fit)
    })?;
    let in_flight = a.clients - fit;
    if in_flight > 0 {
        sup.command(clients, "rest")?;
        sup.wait_until(
            "the remaining connects to be in SYN_SENT",
            Some(PROC_POLL),
            |s| {
                Ok(s.value::<u32>(clients, "issued") == Some(a.clients)
                    && count_rows(v6, |r| r.state == proc_net::SYN_SENT && r.remote == a.addr)?
                        == in_flight)
            },
        )?;
    }
    if a.abandon > 0 {
        sup.command(clients, &format!("abandon {}", a.abandon))?;
        sup.wait_until(
            "abandoned connections to reach CLOSE_WAIT",
            Some(PROC_POLL),
            |s| {
                Ok(s.value::<u32>(clients, "abandoned") == Some(a.abandon)
                    && count_rows(v6, |r| {
                        r.state == proc_net::CLOSE_WAIT
                            && r.inode == 0
                            && r.local.port() == a.addr.port()
                    })? == a.abandon)
            },
        )?;
    }
    let queue = accept_queue(v6, inode)?;
    let ready = json!({
        "ready": true,
        "scenario": "noaccept",
        "pids": sup.live_pids(),
        "addr": a.addr.to_string(),
        "backlog": backlog,
        "accept_queue": queue,
        "in_flight": in_flight,
        "abandoned": a.abandon,
    });
    sup.ready_and_hold(&ready)
}

pub fn leak(a: &LeakArgs, timeout: Duration) -> anyhow::Result<()> {
    check_loopback(a.addr, false)?;
    let mut sup = Supervisor::new(timeout)?;
    let leaky = sup.spawn(
        "leaky",
        &args(&[&"leaky", &"--addr", &a.addr, &"--backlog", &1024]),
    )?;
    sup.wait_until("the listener", None, |s| {
        Ok(s.value::<u32>(leaky, "listening").is_some())
    })?;
    let client = sup.spawn(
        "client",
        &args(&[&"leak-client", &"--addr", &a.addr, &"--count", &a.count]),
    )?;
    sup.allow_exit(client);
    sup.wait_until("the client to connect, close and exit", None, |s| {
        s.exited_ok(client)
    })?;
    // leaky sees each peer's FIN (POLLRDHUP) once its socket is in CLOSE_WAIT.
    sup.wait_until("leaky's sockets to reach CLOSE_WAIT", None, |s| {
        Ok(s.value::<u32>(leaky, "accepted") >= Some(a.count)
            && s.value::<u32>(leaky, "close_wait") >= Some(a.count))
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "leak",
        "pids": sup.live_pids(),
        "addr": a.addr.to_string(),
        "close_wait": sup.value::<u32>(leaky, "close_wait"),
    });
    sup.ready_and_hold(&ready)
}

/// Removes the unix socket file when the scenario ends, even if its owner was killed.
struct RemoveSocket<'a>(&'a Path);

impl Drop for RemoveSocket<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::symlink_metadata(self.0).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(self.0);
        }
    }
}

pub fn unix_noaccept(a: &UnixNoacceptArgs, timeout: Duration) -> anyhow::Result<()> {
    let path = a.path.display().to_string();
    let backlog = a.backlog.min(somaxconn()?);
    let _cleanup = RemoveSocket(&a.path);
    let mut sup = Supervisor::new(timeout)?;
    let server = sup.spawn(
        "unixnoaccept",
        &args(&[&"unix-server", &"--path", &path, &"--backlog", &a.backlog]),
    )?;
    sup.wait_until("the listener", None, |s| {
        Ok(s.value::<u32>(server, "listening").is_some())
    })?;
    let clients = sup.spawn(
        "unixclients",
        &args(&[&"unix-clients", &"--path", &path, &"--clients", &a.clients]),
    )?;
    // Unix connects complete (or fail with EAGAIN) synchronously: the report is the state.
    sup.wait_until("the clients", None, |s| {
        Ok(s.value::<u32>(clients, "connected").is_some())
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "unix-noaccept",
        "pids": sup.live_pids(),
        "addr": path,
        "backlog": backlog,
        "connected": sup.value::<u32>(clients, "connected"),
        "would_block": sup.value::<u32>(clients, "would_block"),
    });
    sup.ready_and_hold(&ready)
}

pub fn fds(a: &FdsArgs, timeout: Duration) -> anyhow::Result<()> {
    if a.open > a.limit {
        bail!("--open {} exceeds --limit {}", a.open, a.limit);
    }
    let mut sup = Supervisor::new(timeout)?;
    let hog = sup.spawn(
        "fdhog",
        &args(&[&"fdhog", &"--limit", &a.limit, &"--open", &a.open]),
    )?;
    sup.wait_until("the descriptors", None, |s| {
        Ok(s.value::<u64>(hog, "fds").is_some())
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "fds",
        "pids": sup.live_pids(),
        "addr": null,
        "fds": sup.value::<u64>(hog, "fds"),
        "fd_limit": a.limit,
    });
    sup.ready_and_hold(&ready)
}

pub fn listen(a: &ListenArgs, timeout: Duration) -> anyhow::Result<()> {
    for &addr in &a.addrs {
        check_loopback(addr, true)?;
    }
    let mut role = args(&[&"listener", &"--backlog", &a.backlog]);
    for addr in &a.addrs {
        role.extend(args(&[&"--addr", addr]));
    }
    let mut sup = Supervisor::new(timeout)?;
    let listener = sup.spawn("listener", &role)?;
    sup.wait_until("the listeners", None, |s| {
        Ok(s.value::<u32>(listener, "listening").is_some())
    })?;
    let addrs: Vec<String> = a.addrs.iter().map(SocketAddr::to_string).collect();
    let ready = json!({
        "ready": true,
        "scenario": "listen",
        "pids": sup.live_pids(),
        "addr": addrs.first(),
        "addrs": addrs,
        "backlog": a.backlog.min(somaxconn()?),
    });
    sup.ready_and_hold(&ready)
}

pub fn healthy(a: &HealthyArgs, timeout: Duration) -> anyhow::Result<()> {
    check_loopback(a.addr, false)?;
    let live = a.live.unwrap_or(a.conns / 2).min(a.conns);
    let mut sup = Supervisor::new(timeout)?;
    let server = sup.spawn("healthy", &args(&[&"healthy-server", &"--addr", &a.addr]))?;
    sup.wait_until("the listener", None, |s| {
        Ok(s.value::<u32>(server, "listening").is_some())
    })?;
    let client = sup.spawn(
        "client",
        &args(&[
            &"healthy-client",
            &"--addr",
            &a.addr,
            &"--conns",
            &a.conns,
            &"--live",
            &live,
        ]),
    )?;
    // The client reports after reading EOF on every connection it closed, i.e. after the
    // server closed its side; the server reports each accept().
    sup.wait_until("the client's connections", None, |s| {
        Ok(s.value::<u32>(client, "closed").is_some()
            && s.value::<u32>(server, "accepted") >= Some(a.conns))
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "healthy",
        "pids": sup.live_pids(),
        "addr": a.addr.to_string(),
        "live": live,
        "closed": a.conns - live,
    });
    sup.ready_and_hold(&ready)
}

pub fn load(a: &LoadArgs, timeout: Duration) -> anyhow::Result<()> {
    let last_port = u32::from(a.base_port) + a.procs.saturating_sub(1);
    if a.procs == 0 || last_port > u32::from(u16::MAX) {
        bail!(
            "--procs {} from --base-port {} does not fit in the port range",
            a.procs,
            a.base_port
        );
    }
    let width = a.procs.saturating_sub(1).to_string().len().max(2);
    let mut sup = Supervisor::new(timeout)?;
    let mut roles = Vec::new();
    for i in 0..a.procs {
        let name = format!("load{i:0width$}");
        let port = u32::from(a.base_port) + i;
        let role = sup.spawn(
            &name,
            &args(&[
                &"load", &"--name", &name, &"--port", &port, &"--conns", &a.conns,
            ]),
        )?;
        roles.push(role);
    }
    sup.wait_until("every load process", None, |s| {
        Ok(roles.iter().all(|&r| s.value::<u32>(r, "ready").is_some()))
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "load",
        "pids": sup.live_pids(),
        "addr": format!("127.0.0.1:{}", a.base_port),
        "procs": a.procs,
        "established": 2 * u64::from(a.procs) * u64::from(a.conns),
    });
    sup.ready_and_hold(&ready)
}

pub fn churn(a: &ChurnArgs, timeout: Duration) -> anyhow::Result<()> {
    check_loopback(a.addr, false)?;
    if a.rate == 0 || a.duration == 0 {
        bail!("--rate and --duration must be at least 1");
    }
    let mut sup = Supervisor::new(timeout)?;
    let server = sup.spawn("churnserver", &args(&[&"churn-server", &"--addr", &a.addr]))?;
    sup.wait_until("the listener", None, |s| {
        Ok(s.value::<u32>(server, "listening").is_some())
    })?;
    let churner = sup.spawn(
        "churner",
        &args(&[
            &"churner",
            &"--addr",
            &a.addr,
            &"--rate",
            &a.rate,
            &"--workers",
            &a.workers,
            &"--duration",
            &a.duration,
            &"--max",
            &a.max_conns,
        ]),
    )?;
    sup.allow_exit(churner);
    let mut churning = vec![churner];
    if a.forks > 0 {
        let forker = sup.spawn(
            "forker",
            &args(&[
                &"forker",
                &"--addr",
                &a.addr,
                &"--forks",
                &a.forks,
                &"--duration",
                &a.duration,
            ]),
        )?;
        sup.allow_exit(forker);
        churning.push(forker);
    }
    sup.wait_until("the churn to start", None, |s| {
        let opened = s.value::<u64>(churner, "opened").unwrap_or(0);
        let forked = churning
            .get(1)
            .is_none_or(|&f| s.value::<u64>(f, "forks").unwrap_or(0) > 0);
        Ok((opened > 0 || s.exited_ok(churner)?) && forked)
    })?;
    let ready = json!({
        "ready": true,
        "scenario": "churn",
        "pids": sup.live_pids(),
        "addr": a.addr.to_string(),
        "rate": a.rate,
        "forks_per_s": a.forks,
        "duration_s": a.duration,
    });
    sup.ready_and_wait_for(&ready, &churning)?;
    let done = json!({
        "done": true,
        "connections": sup.value::<u64>(churner, "opened"),
        "connect_failed": sup.value::<u64>(churner, "failed"),
        "forks": churning.get(1).and_then(|&f| sup.value::<u64>(f, "forks")),
        "accepted": sup.value::<u64>(server, "accepted"),
    });
    // Whoever started us may have stopped reading after the ready line.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{done}").and_then(|()| stdout.flush());
    Ok(())
}
