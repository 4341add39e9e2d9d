//! The health check: the monitoring-plugins protocol over an analysis.
//!
//! One status line `SOCKSCOPE <STATE> - <summary> | <perfdata>`, then one line per finding
//! (the plugin "long output"). The state is the worst finding's severity; perfdata follows
//! `'label'=value[UOM];warn;crit;min;max`, with `U` where a value cannot be known (a rate
//! from a single sample). Nothing here reads the kernel or decides anything new.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use super::escape::escape;
use super::json::FindingDto;
use crate::analyze::units::round1;
use crate::analyze::{Analysis, Severity, Thresholds};

/// Plugin states, with their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// One perfdata value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Perf {
    pub label: &'static str,
    /// `None` is written `U`: not determinable from this run.
    pub value: Option<f64>,
    pub uom: &'static str,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub status: Status,
    pub exit_code: u8,
    pub summary: String,
    pub perfdata: Vec<Perf>,
    pub findings: Vec<FindingDto>,
    /// Findings left out by ignore rules.
    pub ignored: usize,
}

impl CheckResult {
    /// Judge an analysis.
    pub fn new(a: &Analysis, t: &Thresholds) -> CheckResult {
        let status = match a.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Critical) => Status::Critical,
            Some(Severity::Warning) => Status::Warning,
            Some(Severity::Info) | None => Status::Ok,
        };
        CheckResult {
            status,
            exit_code: status.exit_code(),
            summary: summary(a),
            perfdata: perfdata(a, t),
            findings: a.findings.iter().map(|f| FindingDto::new(f, a)).collect(),
            ignored: a.ignored,
        }
    }

    /// The check could not be made: say why, exit 3.
    pub fn unknown(reason: &str) -> CheckResult {
        CheckResult {
            status: Status::Unknown,
            exit_code: Status::Unknown.exit_code(),
            summary: reason.to_owned(),
            perfdata: Vec::new(),
            findings: Vec::new(),
            ignored: 0,
        }
    }
}

fn summary(a: &Analysis) -> String {
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    let ignored = if a.ignored > 0 {
        format!(" ({} ignored)", a.ignored)
    } else {
        String::new()
    };
    if a.findings.iter().all(|f| f.severity == Severity::Info) {
        let listeners: usize = a.netns.iter().map(|n| n.listeners.len()).sum();
        let cw = a
            .netns
            .iter()
            .flat_map(|n| &n.processes)
            .map(|p| p.close_wait)
            .max()
            .unwrap_or(0);
        return format!(
            "no listener full or dropping, no CLOSE_WAIT leak, no process near its fd limit \
             ({listeners} listeners, most CLOSE_WAIT in one process {cw}){ignored}"
        );
    }
    let mut text = format!(
        "{} critical, {} warning{ignored}:",
        count(Severity::Critical),
        count(Severity::Warning)
    );
    let shown = 3;
    for (i, f) in a
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .take(shown)
        .enumerate()
    {
        let sep = if i == 0 { " " } else { "; " };
        let _ = write!(text, "{sep}{} {}", f.id, f.subject);
    }
    let more = a.findings.len().saturating_sub(shown);
    if more > 0 {
        let _ = write!(text, "; and {more} more");
    }
    text
}

#[allow(clippy::cast_precision_loss)]
fn perfdata(a: &Analysis, t: &Thresholds) -> Vec<Perf> {
    let listeners = a.netns.iter().flat_map(|n| &n.listeners);
    let processes = || a.netns.iter().flat_map(|n| &n.processes);
    let fill = listeners.map(|l| l.fill_pct).fold(0.0, f64::max);
    let close_wait = processes().map(|p| p.close_wait).max().unwrap_or(0);
    let fd_use = processes()
        .filter_map(crate::analyze::ProcessView::fd_use_pct)
        .fold(0.0, f64::max);
    let rate = |name: &str| a.counters.iter().find(|c| c.name == name)?.rate_per_s;
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count() as f64;
    let perf = |label, value, uom, warn, crit, max| Perf {
        label,
        value,
        uom,
        warn,
        crit,
        min: Some(0.0),
        max,
    };
    let mut out = vec![
        perf(
            "accept_queue_fill_max",
            Some(round1(fill)),
            "%",
            Some(t.fill_warn),
            Some(t.fill_crit),
            None,
        ),
        perf(
            "close_wait_max",
            Some(close_wait as f64),
            "",
            Some(t.close_wait_warn as f64),
            Some(t.close_wait_crit as f64),
            None,
        ),
        perf(
            "fd_use_max",
            Some(round1(fd_use)),
            "%",
            Some(t.fd_warn),
            Some(t.fd_crit),
            Some(100.0),
        ),
        perf(
            "listen_overflows_per_s",
            rate("ListenOverflows").map(round1),
            "",
            None,
            None,
            None,
        ),
        perf(
            "listen_drops_per_s",
            rate("ListenDrops").map(round1),
            "",
            None,
            Some(t.listen_drops_crit),
            None,
        ),
        perf(
            "findings_critical",
            Some(count(Severity::Critical)),
            "",
            None,
            None,
            None,
        ),
        perf(
            "findings_warning",
            Some(count(Severity::Warning)),
            "",
            None,
            None,
            None,
        ),
    ];
    out.extend(udp_and_port_perf(a, t));
    out.extend(kernel_table_perf(a, t));
    // Sockets in each kind of trouble, over every namespace.
    for (i, label) in [
        "half_open",
        "connecting",
        "receive_stalled",
        "send_stalled",
        "peer_gone",
        "silent_peer",
    ]
    .into_iter()
    .enumerate()
    {
        let n: u64 = a.netns.iter().map(|ns| ns.connections.counts()[i].1).sum();
        out.push(perf(label, Some(n as f64), "", None, None, None));
    }
    out
}

/// The UDP and ephemeral-port perfdata: the most dropping UDP socket, the namespaces'
/// RcvbufErrors, the busiest destination's share of the ephemeral range.
fn udp_and_port_perf(a: &Analysis, t: &Thresholds) -> [Perf; 3] {
    let perf = |label, value, uom, warn, crit, max| Perf {
        label,
        value,
        uom,
        warn,
        crit,
        min: Some(0.0),
        max,
    };
    let udp_drops = a
        .netns
        .iter()
        .flat_map(|n| &n.udp.sockets)
        .filter_map(|u| u.drops_per_s)
        .reduce(f64::max);
    let rcvbuf_errors = a
        .netns
        .iter()
        .filter_map(|n| n.udp.counter("RcvbufErrors")?.rate_per_s)
        .reduce(|x, y| x + y);
    let port_use = a
        .netns
        .iter()
        .flat_map(|n| &n.port_use)
        .map(|u| u.pct_of_range)
        .fold(0.0, f64::max);
    [
        perf(
            "udp_drops_per_s_max",
            udp_drops.map(round1),
            "",
            None,
            Some(t.udp_drops_crit),
            None,
        ),
        perf(
            "udp_rcvbuf_errors_per_s",
            rcvbuf_errors.map(round1),
            "",
            None,
            None,
            None,
        ),
        perf(
            "ephemeral_port_use_max",
            Some(round1(port_use)),
            "%",
            Some(t.port_use_warn),
            Some(t.port_use_crit),
            Some(100.0),
        ),
    ]
}

/// The kernel's own tables: the fullest connection tracking table (%, `U` without one),
/// its drops, connections that skipped TIME_WAIT and connections reset for memory.
fn kernel_table_perf(a: &Analysis, t: &Thresholds) -> [Perf; 4] {
    let perf = |label, value, uom, warn, max| Perf {
        label,
        value,
        uom,
        warn,
        crit: None,
        min: Some(0.0),
        max,
    };
    let tables = || a.netns.iter().filter_map(|n| n.conntrack.as_ref());
    let fill = tables().filter_map(|c| c.fill_pct).reduce(f64::max);
    let drops = tables()
        .filter_map(|c| Some(c.drop_per_s? + c.early_drop_per_s.unwrap_or(0.0)))
        .reduce(|x, y| x + y);
    let rate = |name: &str| a.counters.iter().find(|c| c.name == name)?.rate_per_s;
    [
        perf(
            "conntrack_fill_max",
            fill.map(round1),
            "%",
            Some(t.conntrack_warn),
            Some(100.0),
        ),
        perf("conntrack_drops_per_s", drops.map(round1), "", None, None),
        perf(
            "time_wait_overflow_per_s",
            rate("TCPTimeWaitOverflow").map(round1),
            "",
            None,
            None,
        ),
        perf(
            "tcp_abort_on_memory_per_s",
            rate("TCPAbortOnMemory").map(round1),
            "",
            None,
            None,
        ),
    ]
}

/// `'label'=value[UOM];warn;crit;min;max`, trailing empty fields dropped.
pub fn format_perf(p: &Perf) -> String {
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
    let value = p
        .value
        .map_or_else(|| "U".to_owned(), |v| format!("{v}{}", p.uom));
    let mut text = format!(
        "'{}'={value};{};{};{};{}",
        p.label,
        num(p.warn),
        num(p.crit),
        num(p.min),
        num(p.max)
    );
    while text.ends_with(';') {
        text.pop();
    }
    text
}

/// The plugin output: status line with perfdata, then the long output.
pub fn write_text(w: &mut impl Write, r: &CheckResult) -> io::Result<()> {
    // Names from outside are escaped, so the status line stays one line; `|` separates
    // perfdata in the protocol and must not appear in the text.
    let clean = |s: &str| escape(s).replace('|', "/");
    let perf: Vec<String> = r.perfdata.iter().map(format_perf).collect();
    let bar = if perf.is_empty() {
        String::new()
    } else {
        format!(" | {}", perf.join(" "))
    };
    writeln!(
        w,
        "SOCKSCOPE {} - {}{bar}",
        r.status.name(),
        clean(&r.summary)
    )?;
    for f in &r.findings {
        writeln!(
            w,
            "{} {} {}: {} — fix: {}",
            f.severity.to_uppercase(),
            f.id,
            clean(&f.subject),
            clean(&f.summary),
            clean(&f.remedy)
        )?;
    }
    Ok(())
}

/// The same result as JSON, for scripts.
pub fn write_json(w: &mut impl Write, r: &CheckResult) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, r)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfdata_follows_the_plugin_format() {
        let p = Perf {
            label: "fd_use_max",
            value: Some(97.5),
            uom: "%",
            warn: Some(80.0),
            crit: Some(95.0),
            min: Some(0.0),
            max: Some(100.0),
        };
        assert_eq!(format_perf(&p), "'fd_use_max'=97.5%;80;95;0;100");
        let rate = Perf {
            label: "listen_drops_per_s",
            value: None,
            uom: "",
            warn: None,
            crit: Some(10.0),
            min: Some(0.0),
            max: None,
        };
        assert_eq!(format_perf(&rate), "'listen_drops_per_s'=U;;10;0");
    }

    #[test]
    fn unknown_says_why_and_exits_3() {
        let r = CheckResult::unknown("invalid --fd-warn \"x\"");
        let mut out = Vec::new();
        write_text(&mut out, &r).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "SOCKSCOPE UNKNOWN - invalid --fd-warn \"x\"\n"
        );
        assert_eq!(r.exit_code, 3);
    }
}
