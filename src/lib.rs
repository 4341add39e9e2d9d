//! sockscope: find the listener that is dropping connections and the process that is leaking
//! sockets, on a live Linux host, and say why and what to do.
//!
//! The layers, in the order data flows through them:
//!
//! - [`collect`] reads the kernel (sock_diag, /proc, sysctls) into a [`model::Snapshot`];
//! - [`analyze`] turns snapshots and thresholds into rates, views and findings, without I/O;
//! - [`present`] renders an analysis: the dashboard, the text and JSON report, the check,
//!   the exporter.
//!
//! [`source`] is where every face's snapshots come from — the live host through [`collect`],
//! or a recording ([`recording`]) — so that no face touches `collect` itself; the window of
//! snapshots a rate spans is [`analyze::window`]'s. [`config`] validates what the user typed
//! ([`cli`]) into the settings the layers use; [`generate`] writes the man page and the
//! shell completions from that same definition. [`audit`] writes the system log's line for
//! every run of `sockscope kill` that destroys sockets.

pub mod analyze;
pub mod atomic;
pub mod audit;
pub mod cli;
pub mod collect;
pub mod config;
pub mod generate;
pub mod model;
pub mod present;
pub mod recording;
pub mod source;
#[doc(hidden)]
pub mod testing;
