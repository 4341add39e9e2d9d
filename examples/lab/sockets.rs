//! Socket construction with the knobs std does not expose: an explicit `listen()` backlog
//! (std's `TcpListener::bind` always asks for 128), dual-stack IPv6 listeners, and
//! non-blocking connects that can be left in flight.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::{Context, bail};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};

/// Refuse anything but loopback: the lab must never send a packet off the host.
/// Listeners may use a wildcard address (only loopback peers ever connect to them).
pub fn check_loopback(addr: SocketAddr, wildcard_ok: bool) -> anyhow::Result<()> {
    let ip = addr.ip();
    if ip.is_loopback() || (wildcard_ok && ip.is_unspecified()) {
        Ok(())
    } else if wildcard_ok {
        bail!("{addr}: only loopback or wildcard addresses may be listened on")
    } else {
        bail!("{addr}: only loopback addresses (127.0.0.0/8, ::1) may be used")
    }
}

fn family(addr: SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// A TCP listener on `addr` with exactly `backlog` passed to `listen()`.
/// IPv6 listeners are dual-stack (`IPV6_V6ONLY` off), which matters for `[::]`.
pub fn tcp_listener(
    addr: SocketAddr,
    backlog: u32,
    nonblocking: bool,
) -> anyhow::Result<TcpListener> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    let fd = rustix::net::socket_with(family(addr), SocketType::STREAM, flags, None)
        .context("socket")?;
    // A previous run's TIME_WAIT sockets must not keep the port busy.
    sockopt::set_socket_reuseaddr(&fd, true).context("SO_REUSEADDR")?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, false).context("IPV6_V6ONLY")?;
    }
    rustix::net::bind(&fd, &addr).with_context(|| format!("bind {addr}"))?;
    let backlog = i32::try_from(backlog).context("backlog too large")?;
    rustix::net::listen(&fd, backlog).with_context(|| format!("listen {addr}"))?;
    Ok(TcpListener::from(fd))
}

/// Start a non-blocking connect. `Ok((fd, true))` when it completed at once.
pub fn tcp_connect_nonblocking(addr: SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let fd = rustix::net::socket_with(
        family(addr),
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok((fd, true)),
        Err(rustix::io::Errno::INPROGRESS) => Ok((fd, false)),
        Err(err) => Err(err.into()),
    }
}

/// A unix stream listener at `path`, replacing a stale socket left by an earlier run.
pub fn unix_listener(path: &Path, backlog: u32) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?,
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("stat {}", path.display())),
    }
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socket")?;
    let addr = SocketAddrUnix::new(path).context("unix socket path")?;
    rustix::net::bind(&fd, &addr).with_context(|| format!("bind {}", path.display()))?;
    let backlog = i32::try_from(backlog).context("backlog too large")?;
    rustix::net::listen(&fd, backlog).context("listen")?;
    Ok(UnixListener::from(fd))
}

/// A non-blocking unix connect: `Ok(None)` when the listener's queue is full (EAGAIN).
pub fn unix_connect_nonblocking(path: &Path) -> io::Result<Option<OwnedFd>> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// `net.core.somaxconn` of this network namespace: `listen()` caps the backlog at it.
pub fn somaxconn() -> anyhow::Result<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .context("reading net.core.somaxconn")?;
    text.trim().parse().context("parsing net.core.somaxconn")
}

/// Raise (or set) the soft `RLIMIT_NOFILE` limit, keeping the hard limit unless `hard` is given.
pub fn set_nofile(soft: u64, hard: Option<u64>) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let maximum = hard.or(current.maximum);
    if let Some(max) = maximum {
        if soft > max {
            bail!("RLIMIT_NOFILE: need {soft} descriptors, the hard limit is {max}");
        }
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum,
        },
    )
    .with_context(|| format!("setrlimit(RLIMIT_NOFILE, {soft})"))
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit, for roles whose descriptor count grows
/// with a flag (`--count`, `--clients`).
pub fn raise_nofile_to_hard() -> anyhow::Result<()> {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    match hard {
        Some(hard) => set_nofile(hard, None),
        None => Ok(()),
    }
}
