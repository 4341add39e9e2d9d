//! The lab: reproduces, with real sockets on loopback, the outages sockscope diagnoses.
//!
//! ```text
//! cargo run --example lab -- noaccept      [--addr 127.0.0.1:5000] [--backlog 8] [--clients 30] [--abandon K]
//! cargo run --example lab -- leak          [--addr 127.0.0.1:5001] [--count 200]
//! cargo run --example lab -- unix-noaccept --path PATH [--backlog 4] [--clients 5]
//! cargo run --example lab -- fds           [--limit 256] [--open 240]
//! cargo run --example lab -- listen        --addr [::1]:5002 --addr [::]:5003
//! cargo run --example lab -- healthy       [--addr 127.0.0.1:5004] [--conns 20]
//! cargo run --example lab -- load          [--procs 100] [--conns 500] [--base-port 20000]
//! cargo run --example lab -- churn         [--addr 127.0.0.1:5010] [--rate 2000] [--forks 20] [--duration 60]
//! ```
//!
//! Each scenario runs its roles in child processes with recognisable names (`comm`), waits
//! until the kernel state it promises holds, prints one JSON line
//! `{"ready":true,"scenario":…,"pids":{role: pid},"addr":…}` on stdout, and then holds that
//! state until its stdin reaches end of file or SIGTERM/SIGINT arrives; then it stops its
//! children and exits 0. Run it inside a private network namespace
//! (`unshare --net`, `ip link set lo up`) to keep the state away from anything else. To hold
//! a scenario in the background, give it a stdin that stays open (`sleep infinity | lab
//! leak &`) and stop it with SIGTERM. `churn` is the exception: its state never holds still,
//! so it churns for `--duration` seconds (or until told to stop), prints a second line
//! `{"done":true,"connections":…,"forks":…,…}` with what it did, and exits 0 by itself.
//!
//! Only loopback addresses are accepted (listeners may also use a wildcard address).
//! This file owns the command line; `scenarios` drives each scenario from this process,
//! `roles` is the code each child process runs, `supervisor` spawns and watches the
//! children, `sockets` makes sockets with an explicit backlog, and `proc_net` reads
//! `/proc/net/tcp` to see the kernel state without `sock_diag`.

mod proc_net;
mod roles;
mod scenarios;
mod sockets;
mod supervisor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

// The doc comments of these clap types are the `--help` text, where backticks would show.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Parser)]
#[command(
    name = "lab",
    about = "Reproduce a full accept queue, a CLOSE_WAIT leak and friends with real sockets on loopback",
    after_help = "Prints one JSON line when the scenario is ready, then holds it until stdin \
                  reaches end of file or SIGTERM/SIGINT arrives."
)]
struct Cli {
    /// Give up when the scenario is not ready within this many seconds.
    #[arg(long, global = true, default_value_t = 120, value_name = "SECS")]
    ready_timeout: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

// The doc comments of these clap types are the `--help` text, where backticks would show.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Subcommand)]
enum Scenario {
    /// A listener that never calls accept(): its queue fills, later SYNs are dropped.
    Noaccept(NoacceptArgs),
    /// A server that accepts and never closes: the client leaves, CLOSE_WAIT piles up.
    Leak(LeakArgs),
    /// A unix stream listener that never calls accept().
    UnixNoaccept(UnixNoacceptArgs),
    /// A process holding most of its RLIMIT_NOFILE.
    Fds(FdsArgs),
    /// Well-behaved listeners on the given addresses (IPv6 wildcards are dual-stack).
    Listen(ListenArgs),
    /// A server and a client that behave: live connections and properly closed ones.
    Healthy(HealthyArgs),
    /// The benchmark load: many processes, each holding connections to itself.
    Load(LoadArgs),
    /// Sockets and processes that come and go: connections opened and closed thousands of
    /// times a second, short-lived processes forked with sockets of their own. Stops by
    /// itself after --duration.
    Churn(ChurnArgs),
    /// Internal: the code a child process runs.
    #[command(hide = true, subcommand)]
    Role(roles::Role),
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct NoacceptArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// listen() backlog; the kernel caps it at net.core.somaxconn.
    #[arg(long, default_value_t = 8)]
    pub backlog: u32,
    /// Connections to attempt; those past backlog + 1 stay in SYN_SENT (a connect whose SYN
    /// retries run out dials again, so the drops go on for as long as the scenario is held).
    #[arg(long, default_value_t = 30)]
    pub clients: u32,
    /// Once the queue is full, close this many of the completed connections: the server
    /// then holds them in its accept queue as CLOSE_WAIT.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub abandon: u32,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct LeakArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub addr: SocketAddr,
    /// Connections the client opens and then closes.
    #[arg(long, default_value_t = 200)]
    pub count: u32,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct UnixNoacceptArgs {
    /// Filesystem path of the listening socket (a stale socket there is replaced).
    #[arg(long)]
    pub path: PathBuf,
    /// listen() backlog; the kernel caps it at net.core.somaxconn.
    #[arg(long, default_value_t = 4)]
    pub backlog: u32,
    /// Non-blocking connects to make; those past backlog + 1 fail with EAGAIN.
    #[arg(long, default_value_t = 5)]
    pub clients: u32,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct FdsArgs {
    /// RLIMIT_NOFILE, soft and hard.
    #[arg(long, default_value_t = 256)]
    pub limit: u64,
    /// Descriptors to hold open in total.
    #[arg(long, default_value_t = 240)]
    pub open: u64,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on; repeat for several.
    #[arg(long = "addr", required = true)]
    pub addrs: Vec<SocketAddr>,
    /// listen() backlog of every listener.
    #[arg(long, default_value_t = 64)]
    pub backlog: u32,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct HealthyArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:5004")]
    pub addr: SocketAddr,
    /// Connections the client opens.
    #[arg(long, default_value_t = 20)]
    pub conns: u32,
    /// How many of them stay open; the others are closed properly. Default: half.
    #[arg(long)]
    pub live: Option<u32>,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Processes, each listening on its own port.
    #[arg(long, default_value_t = 100)]
    pub procs: u32,
    /// Connections each process holds to itself (two sockets each).
    #[arg(long, default_value_t = 500)]
    pub conns: u32,
    /// Process i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 20000)]
    pub base_port: u16,
}

#[allow(clippy::doc_markdown)] // --help text
#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:5010")]
    pub addr: SocketAddr,
    /// Connections opened (and closed at once) per second, over all client threads.
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Client threads sharing the rate.
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
    /// Processes forked per second; each connects a few times, holds its sockets for a
    /// moment and exits.
    #[arg(long, default_value_t = 20)]
    pub forks: u32,
    /// Seconds of churn; then the roles stop and the scenario exits by itself.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub duration: u64,
    /// Stop earlier once this many connections have been opened.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_conns: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ready_timeout = Duration::from_secs(cli.ready_timeout);
    let result = match cli.scenario {
        Scenario::Role(role) => roles::run(role),
        Scenario::Noaccept(args) => scenarios::noaccept(&args, ready_timeout),
        Scenario::Leak(args) => scenarios::leak(&args, ready_timeout),
        Scenario::UnixNoaccept(args) => scenarios::unix_noaccept(&args, ready_timeout),
        Scenario::Fds(args) => scenarios::fds(&args, ready_timeout),
        Scenario::Listen(args) => scenarios::listen(&args, ready_timeout),
        Scenario::Healthy(args) => scenarios::healthy(&args, ready_timeout),
        Scenario::Load(args) => scenarios::load(&args, ready_timeout),
        Scenario::Churn(args) => scenarios::churn(&args, ready_timeout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}
