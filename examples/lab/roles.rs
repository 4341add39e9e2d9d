//! What each child process of a scenario runs. A role first takes its `comm` name (what
//! `ps`, `ss -p` and sockscope show), then builds its part of the state, reports progress as
//! `key=value` lines on stdout, and exits when its stdin (the supervisor's pipe) closes.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};

use crate::sockets;
use crate::supervisor::{exit_on_stdin_eof, hold_until_stdin_eof, read_stdin_chunk};

#[allow(clippy::doc_markdown)] // --help text (hidden)
#[derive(Debug, Subcommand)]
pub enum Role {
    /// Listens and never accepts.
    NoacceptServer {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        backlog: u32,
    },
    /// Connects `first` times and waits for those to complete; on `rest` starts the other
    /// connects (which stay in flight); on `abandon K` closes K completed connections.
    NoacceptClients {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        clients: u32,
        #[arg(long)]
        first: u32,
    },
    /// Accepts every connection, never reads, never closes.
    Leaky {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        backlog: u32,
    },
    /// Connects `count` times, closes them all, exits.
    LeakClient {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        count: u32,
    },
    /// A unix stream listener that never accepts.
    UnixServer {
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        backlog: u32,
    },
    /// Non-blocking unix connects; counts those refused with EAGAIN.
    UnixClients {
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        clients: u32,
    },
    /// Sets RLIMIT_NOFILE and holds `open` descriptors.
    Fdhog {
        #[arg(long)]
        limit: u64,
        #[arg(long)]
        open: u64,
    },
    /// Listens on each address; accepts, reads to EOF, closes.
    Listener {
        #[arg(long = "addr", required = true)]
        addrs: Vec<SocketAddr>,
        #[arg(long)]
        backlog: u32,
    },
    /// Accepts, reads to EOF, closes.
    HealthyServer {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Keeps `live` connections open and closes the others properly.
    HealthyClient {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        conns: u32,
        #[arg(long)]
        live: u32,
    },
    /// Listens on `port` and holds `conns` connections to itself.
    Load {
        #[arg(long)]
        name: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        conns: u32,
    },
    /// Accepts and closes at once, as fast as connections come.
    ChurnServer {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Opens `rate` connections a second over `workers` threads and closes each at once
    /// (most with a reset, one in four with a FIN), for `duration` seconds or `max` in all.
    Churner {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        workers: u32,
        #[arg(long)]
        duration: u64,
        #[arg(long)]
        max: u64,
    },
    /// Spawns `forks` short-lived `churn-child` processes a second for `duration` seconds.
    Forker {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        forks: u32,
        #[arg(long)]
        duration: u64,
    },
    /// Connects `conns` times, makes a unix socket pair, holds them up to `hold_ms`, exits.
    ChurnChild {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        conns: u32,
        #[arg(long)]
        hold_ms: u64,
    },
}

pub fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::NoacceptServer { addr, backlog } => noaccept_server(addr, backlog),
        Role::NoacceptClients {
            addr,
            clients,
            first,
        } => noaccept_clients(addr, clients, first),
        Role::Leaky { addr, backlog } => leaky(addr, backlog),
        Role::LeakClient { addr, count } => leak_client(addr, count),
        Role::UnixServer { path, backlog } => unix_server(&path, backlog),
        Role::UnixClients { path, clients } => unix_clients(&path, clients),
        Role::Fdhog { limit, open } => fdhog(limit, open),
        Role::Listener { addrs, backlog } => listener(&addrs, backlog),
        Role::HealthyServer { addr } => healthy_server(addr),
        Role::HealthyClient { addr, conns, live } => healthy_client(addr, conns, live),
        Role::Load { name, port, conns } => load(&name, port, conns),
        Role::ChurnServer { addr } => churn_server(addr),
        Role::Churner {
            addr,
            rate,
            workers,
            duration,
            max,
        } => churner(addr, rate, workers, Duration::from_secs(duration), max),
        Role::Forker {
            addr,
            forks,
            duration,
        } => forker(addr, forks, Duration::from_secs(duration)),
        Role::ChurnChild {
            addr,
            conns,
            hold_ms,
        } => churn_child(addr, conns, Duration::from_millis(hold_ms)),
    }
}

/// Take the process name the scenario promises, and die with the supervisor.
fn become_role(comm: &str) -> anyhow::Result<()> {
    let name = CString::new(comm).context("role name")?;
    rustix::thread::set_name(&name).context("PR_SET_NAME")?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .context("PR_SET_PDEATHSIG")?;
    Ok(())
}

/// One progress line for the supervisor.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    // A supervisor that stopped listening is about to close our stdin; nothing to do here.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Report `line` only when it differs from the previous report.
fn report_change(last: &mut String, line: String) {
    if *last != line {
        report(&line);
        *last = line;
    }
}

/// `poll`, retrying when a signal interrupts it.
fn poll_forever(fds: &mut [PollFd<'_>]) -> anyhow::Result<()> {
    loop {
        match rustix::event::poll(fds, None) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(err) => return Err(err).context("poll"),
        }
    }
}

fn noaccept_server(addr: SocketAddr, backlog: u32) -> anyhow::Result<()> {
    become_role("noaccept")?;
    let listener = sockets::tcp_listener(addr, backlog, false)?;
    let inode = rustix::fs::fstat(&listener)
        .context("fstat listener")?
        .st_ino;
    report(&format!("listening=1 inode={inode}"));
    hold_until_stdin_eof();
    Ok(())
}

fn noaccept_clients(addr: SocketAddr, clients: u32, first: u32) -> anyhow::Result<()> {
    become_role("clients")?;
    sockets::raise_nofile_to_hard()?;
    let mut completed: Vec<OwnedFd> = Vec::new();
    let mut pending: Vec<OwnedFd> = Vec::new();
    let (mut issued, mut abandoned, mut redials, mut failed) = (0u32, 0u32, 0u32, 0u32);
    let start = |n: u32, completed: &mut Vec<OwnedFd>, pending: &mut Vec<OwnedFd>| {
        for _ in 0..n {
            let (fd, done) = sockets::tcp_connect_nonblocking(addr)
                .with_context(|| format!("connect {addr}"))?;
            if done {
                completed.push(fd);
            } else {
                pending.push(fd);
            }
        }
        anyhow::Ok(())
    };
    start(first, &mut completed, &mut pending)?;
    issued += first;

    let stdin = std::io::stdin();
    let mut input = Vec::new();
    let mut last = String::new();
    loop {
        report_change(
            &mut last,
            format!(
                "issued={issued} completed={} pending={} abandoned={abandoned} redials={redials} failed={failed}",
                completed.len(),
                pending.len()
            ),
        );
        let (stdin_ready, ready) = {
            let stdin_fd = stdin.as_fd();
            let mut fds = Vec::with_capacity(pending.len() + 1);
            fds.push(PollFd::new(&stdin_fd, PollFlags::IN));
            fds.extend(pending.iter().map(|fd| PollFd::new(fd, PollFlags::OUT)));
            poll_forever(&mut fds)?;
            let ready: Vec<usize> = (1..fds.len())
                .filter(|&i| !fds[i].revents().is_empty())
                .collect();
            (!fds[0].revents().is_empty(), ready)
        };
        // Highest index first, so swap_remove never moves an entry still to be handled.
        let mut redial = 0;
        for i in ready.into_iter().rev() {
            let fd = pending.swap_remove(i - 1);
            match sockopt::socket_error(&fd).context("SO_ERROR")? {
                Ok(()) => completed.push(fd),
                // SYN retries exhausted: dial again, so the listener keeps dropping SYNs for
                // as long as the scenario is held, as real clients that retry would.
                Err(Errno::TIMEDOUT) => redial += 1,
                // Refused once the server is gone (the scenario is being torn down).
                Err(_) => failed += 1,
            }
        }
        start(redial, &mut completed, &mut pending)?;
        redials += redial;

        if stdin_ready {
            if read_stdin_chunk(&mut input).is_none() {
                return Ok(());
            }
            while let Some(end) = input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = input.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let mut words = line.split_whitespace();
                match (words.next(), words.next()) {
                    (Some("rest"), None) => {
                        start(clients - issued, &mut completed, &mut pending)?;
                        issued = clients;
                    }
                    (Some("abandon"), Some(k)) => {
                        let k: usize = k.parse().context("abandon count")?;
                        if k > completed.len() {
                            bail!("asked to abandon {k}, only {} completed", completed.len());
                        }
                        completed.drain(..k);
                        abandoned += u32::try_from(k)?;
                    }
                    _ => bail!("unknown command {line:?}"),
                }
            }
        }
    }
}

fn leaky(addr: SocketAddr, backlog: u32) -> anyhow::Result<()> {
    use rustix::buffer::spare_capacity;
    use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
    const STDIN: u64 = u64::MAX;
    const LISTENER: u64 = u64::MAX - 1;

    become_role("leaky")?;
    sockets::raise_nofile_to_hard()?;
    let listener = sockets::tcp_listener(addr, backlog, true)?;
    report("listening=1");
    // epoll, not poll: the leak may be thousands of sockets, each watched for the peer's FIN
    // (EPOLLRDHUP, without reading anything) and then left alone in CLOSE_WAIT.
    let epoll = epoll::create(CreateFlags::CLOEXEC).context("epoll_create")?;
    let stdin = std::io::stdin();
    epoll::add(
        &epoll,
        stdin.as_fd(),
        EventData::new_u64(STDIN),
        EventFlags::IN,
    )
    .context("epoll stdin")?;
    epoll::add(
        &epoll,
        &listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN,
    )
    .context("epoll listener")?;
    // Every accepted socket, kept open forever; its epoll token is its index here.
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut close_wait = 0;
    let mut events = Vec::with_capacity(256);
    let mut input = Vec::new();
    let mut last = String::new();
    loop {
        report_change(
            &mut last,
            format!("accepted={} close_wait={close_wait}", held.len()),
        );
        events.clear();
        match epoll::wait(&epoll, spare_capacity(&mut events), None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => return Err(err).context("epoll_wait"),
        }
        for event in &events {
            let data = event.data;
            match data.u64() {
                STDIN => {
                    if read_stdin_chunk(&mut input).is_none() {
                        return Ok(());
                    }
                }
                LISTENER => loop {
                    match rustix::net::accept_with(&listener, SocketFlags::CLOEXEC) {
                        Ok(fd) => {
                            let token = EventData::new_u64(u64::try_from(held.len())?);
                            epoll::add(&epoll, &fd, token, EventFlags::RDHUP)
                                .context("epoll add")?;
                            held.push(fd);
                        }
                        Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => break,
                        Err(err) => return Err(err).context("accept"),
                    }
                },
                index => {
                    let fd = &held[usize::try_from(index)?];
                    epoll::delete(&epoll, fd).context("epoll delete")?;
                    close_wait += 1;
                }
            }
        }
    }
}

fn leak_client(addr: SocketAddr, count: u32) -> anyhow::Result<()> {
    become_role("client")?;
    sockets::raise_nofile_to_hard()?;
    let conns = (0..count)
        .map(|_| TcpStream::connect(addr))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("connect {addr}"))?;
    report(&format!("connected={}", conns.len()));
    drop(conns);
    report("closed=1");
    Ok(())
}

fn unix_server(path: &std::path::Path, backlog: u32) -> anyhow::Result<()> {
    become_role("unixnoaccept")?;
    let listener = sockets::unix_listener(path, backlog)?;
    report("listening=1");
    hold_until_stdin_eof();
    drop(listener);
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn unix_clients(path: &std::path::Path, clients: u32) -> anyhow::Result<()> {
    become_role("unixclients")?;
    let mut connected = Vec::new();
    let mut would_block = 0;
    for _ in 0..clients {
        match sockets::unix_connect_nonblocking(path)
            .with_context(|| format!("connect {}", path.display()))?
        {
            Some(fd) => connected.push(fd),
            None => would_block += 1,
        }
    }
    report(&format!(
        "connected={} would_block={would_block}",
        connected.len()
    ));
    hold_until_stdin_eof();
    Ok(())
}

/// Descriptors open in this process, as `ls /proc/PID/fd` would count them.
fn count_fds() -> anyhow::Result<u64> {
    let entries = std::fs::read_dir("/proc/self/fd")
        .context("reading /proc/self/fd")?
        .count();
    // The directory being read is itself an open descriptor while it is listed.
    Ok(u64::try_from(entries)? - 1)
}

fn fdhog(limit: u64, open: u64) -> anyhow::Result<()> {
    become_role("fdhog")?;
    sockets::set_nofile(limit, Some(limit))?;
    // A socket pair makes fdhog a socket owner, so sockscope lists it among processes.
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socketpair")?;
    let mut held: Vec<OwnedFd> = vec![a, b];
    let have = count_fds()?;
    if have > open {
        bail!("already holding {have} descriptors, more than --open {open}");
    }
    for _ in have..open {
        held.push(
            std::fs::File::open("/dev/null")
                .context("opening /dev/null")?
                .into(),
        );
    }
    let total = count_fds()?;
    if total != open {
        bail!("holding {total} descriptors, wanted {open}");
    }
    report(&format!("fds={total} limit={limit}"));
    hold_until_stdin_eof();
    drop(held);
    Ok(())
}

/// Read a connection to its end, then close it: what a well-behaved server does.
fn serve(mut conn: TcpStream) {
    let _ = std::io::copy(&mut conn, &mut std::io::sink());
}

fn accept_loop(listener: &TcpListener, mut accepted: impl FnMut(u64)) {
    let mut count = 0;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        count += 1;
        accepted(count);
        std::thread::spawn(move || serve(conn));
    }
}

fn listener(addrs: &[SocketAddr], backlog: u32) -> anyhow::Result<()> {
    become_role("listener")?;
    let listeners = addrs
        .iter()
        .map(|&addr| sockets::tcp_listener(addr, backlog, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for listener in listeners {
        std::thread::spawn(move || accept_loop(&listener, |_| {}));
    }
    report("listening=1");
    exit_on_stdin_eof(|_| {});
    std::thread::park();
    Ok(())
}

fn healthy_server(addr: SocketAddr) -> anyhow::Result<()> {
    become_role("healthy")?;
    let listener = sockets::tcp_listener(addr, 128, false)?;
    report("listening=1");
    exit_on_stdin_eof(|_| {});
    accept_loop(&listener, |n| report(&format!("accepted={n}")));
    Ok(())
}

fn healthy_client(addr: SocketAddr, conns: u32, live: u32) -> anyhow::Result<()> {
    become_role("client")?;
    let mut all = (0..conns)
        .map(|_| TcpStream::connect(addr))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("connect {addr}"))?;
    let closing = all.split_off(usize::try_from(live)?.min(all.len()));
    let closed = closing.len();
    for mut conn in closing {
        // Say goodbye, half-close, wait for the server's close, then close: the client ends
        // in TIME_WAIT and the server's socket is gone.
        conn.write_all(b"bye\n").context("write")?;
        conn.shutdown(std::net::Shutdown::Write)
            .context("shutdown")?;
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).context("reading to EOF")?;
    }
    report(&format!("live={} closed={closed}", all.len()));
    hold_until_stdin_eof();
    Ok(())
}

fn load(name: &str, port: u16, conns: u32) -> anyhow::Result<()> {
    become_role(name)?;
    let needed = 2 * u64::from(conns) + 64;
    let current = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    if current.is_some_and(|soft| soft < needed) {
        sockets::set_nofile(needed, None)?;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = sockets::tcp_listener(addr, 128, false)?;
    let mut held: Vec<OwnedFd> = Vec::with_capacity(2 * usize::try_from(conns)?);
    for _ in 0..conns {
        let client = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        let (server, _) = listener.accept().context("accept")?;
        held.push(client.into());
        held.push(server.into());
    }
    report(&format!("ready=1 sockets={}", held.len()));
    hold_until_stdin_eof();
    Ok(())
}

fn churn_server(addr: SocketAddr) -> anyhow::Result<()> {
    become_role("churnserver")?;
    sockets::raise_nofile_to_hard()?;
    let listener = sockets::tcp_listener(addr, 4096, false)?;
    report("listening=1");
    exit_on_stdin_eof(|_| {});
    let mut accepted = 0u64;
    loop {
        // Closing first puts the TIME_WAIT on the server's side, where it does not hold an
        // ephemeral port; a client's reset may already have killed the connection.
        match listener.accept() {
            Ok(_) => {
                accepted += 1;
                if accepted.is_multiple_of(1000) {
                    report(&format!("accepted={accepted}"));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            // Descriptors or memory may run out for a moment under churn; keep serving.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Sleep until `n` events spread evenly from `start` at `per_s` a second are due.
fn pace(start: Instant, n: u64, per_s: u32) {
    let nanos = u128::from(n) * 1_000_000_000 / u128::from(per_s.max(1));
    let due = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

fn churner(
    addr: SocketAddr,
    rate: u32,
    workers: u32,
    duration: Duration,
    max: u64,
) -> anyhow::Result<()> {
    become_role("churner")?;
    sockets::raise_nofile_to_hard()?;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    {
        let stop = Arc::clone(&stop);
        exit_on_stdin_eof_or(move || stop.store(true, Ordering::Relaxed));
    }
    let workers = workers.max(1);
    let per_worker = rate.div_ceil(workers);
    let start = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (stop, opened, failed) =
                (Arc::clone(&stop), Arc::clone(&opened), Arc::clone(&failed));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && start.elapsed() < duration
                    && opened.load(Ordering::Relaxed) < max
                {
                    pace(start, n, per_worker);
                    n += 1;
                    match TcpStream::connect(addr) {
                        Ok(conn) => {
                            let total = opened.fetch_add(1, Ordering::Relaxed) + 1;
                            // Most connections end in a reset (no TIME_WAIT anywhere), one in
                            // four with a FIN, so every closing state passes by.
                            if total % 4 != 0 {
                                let _ = sockopt::set_socket_linger(&conn, Some(Duration::ZERO));
                            }
                        }
                        // A full accept queue or a port still in use: count it and go on.
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let mut last = String::new();
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        report_change(
            &mut last,
            format!(
                "opened={} failed={}",
                opened.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed)
            ),
        );
    }
    for t in threads {
        let _ = t.join();
    }
    report(&format!(
        "opened={} failed={} done=1",
        opened.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    ));
    Ok(())
}

/// For a role that stops on its own: call `on_eof` when the supervisor closes our stdin.
fn exit_on_stdin_eof_or(on_eof: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        hold_until_stdin_eof();
        on_eof();
    });
}

fn forker(addr: SocketAddr, forks: u32, duration: Duration) -> anyhow::Result<()> {
    become_role("forker")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        exit_on_stdin_eof_or(move || stop.store(true, Ordering::Relaxed));
    }
    let exe = std::env::current_exe().context("locating the lab executable")?;
    let start = Instant::now();
    let mut children: Vec<std::process::Child> = Vec::new();
    let (mut spawned, mut failed) = (0u64, 0u64);
    let mut last = String::new();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < duration {
        pace(start, spawned + failed, forks);
        // Each child holds its sockets for a different moment, up to 100 ms.
        let hold_ms = (spawned * 37) % 101;
        let child = std::process::Command::new(&exe)
            .args([
                "role",
                "churn-child",
                "--addr",
                &addr.to_string(),
                "--conns",
                "4",
            ])
            .args(["--hold-ms", &hold_ms.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => {
                children.push(child);
                spawned += 1;
            }
            Err(_) => failed += 1,
        }
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        report_change(
            &mut last,
            format!(
                "forks={spawned} fork_failed={failed} alive={}",
                children.len()
            ),
        );
    }
    for mut child in children {
        let _ = child.wait();
    }
    report(&format!("forks={spawned} fork_failed={failed} done=1"));
    Ok(())
}

fn churn_child(addr: SocketAddr, conns: u32, hold_for: Duration) -> anyhow::Result<()> {
    become_role("churnchild")?;
    let mut held: Vec<OwnedFd> = Vec::new();
    for _ in 0..conns {
        // The server may be gone already (the scenario is ending): hold what there is.
        if let Ok(conn) = TcpStream::connect(addr) {
            held.push(conn.into());
        }
    }
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socketpair")?;
    held.extend([a, b]);
    std::thread::sleep(hold_for);
    Ok(())
}
