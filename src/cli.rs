//! What the user typed, as clap parsed it: raw values, nothing derived.
//!
//! Validation and defaults live in [`crate::config`], so that a value from a flag and the same
//! value from a config file pass through one check.

use clap::{Args, Parser, Subcommand};

/// Find the listener that is dropping connections and the process that is leaking sockets.
///
/// sockscope reads TCP (IPv4, IPv6) and unix socket state through netlink sock_diag, maps
/// sockets to processes through /proc, and reads the kernel's TCP counters and sysctls.
/// Run as root for a full process view; without root it says what it could not see.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version, max_term_width = 100)]
#[command(after_help = "With no command, sockscope prints the report.\n\
Exit codes: 0 success, 1 runtime failure, 2 usage error.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-shot report: listeners, leaking processes, counters and sysctls.
    ///
    /// Takes --samples snapshots --interval apart; rates (drops per second, counter rates)
    /// come from the first and the last. With --samples 1 the report is immediate and every
    /// rate is null.
    #[command(
        after_help = "Examples:\n  sockscope report\n  sockscope report --json \
--samples 5 --interval 500ms\n  sockscope report --samples 1"
    )]
    Report(ReportArgs),
}

#[derive(Debug, Default, Args)]
pub struct ReportArgs {
    /// Write the sockscope.report.v1 JSON document instead of the text summary.
    #[arg(long)]
    pub json: bool,

    /// Number of snapshots to take [default: 2].
    #[arg(long, value_name = "N")]
    pub samples: Option<String>,

    /// Time between snapshots, such as 500ms, 1s or 2m [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub interval: Option<String>,
}
