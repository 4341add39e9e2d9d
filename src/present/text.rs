//! The text report: what an operator reads in a terminal or pastes into a ticket.
//!
//! Order: a header line, whether the process view is complete, the findings with their
//! remedies, most severe first, then per namespace the TCP
//! state counts, listeners, the processes with the most CLOSE_WAIT sockets, the UDP sockets
//! and counters, the ephemeral ports in use by destination, the TcpExt
//! counters that matter and the sysctls. Plain text, no colour, stable column order. Every
//! name from outside is escaped ([`super::escape`]) before it is laid out.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::escape::escape_analysis;
use crate::analyze::acceptors::Acceptor;
use crate::analyze::units::{format_age, round1};
use crate::analyze::{Analysis, ListenerView, NetnsView, Owner, ProcessView, Severity};
use crate::model::TcpState;

/// How many processes the CLOSE_WAIT table shows.
const TOP_PROCESSES: usize = 10;

pub fn write(w: &mut impl Write, a: &Analysis) -> io::Result<()> {
    w.write_all(render(a).as_bytes())
}

/// The whole report as one string (a report is small; building it first keeps a broken pipe
/// from leaving half a table).
pub fn render(a: &Analysis) -> String {
    let mut escaped = a.clone();
    escape_analysis(&mut escaped);
    let a = &escaped;
    let mut out = String::new();
    let when = super::rfc3339_seconds(a.wall_time_ms);
    let window = match a.window_s {
        Some(s) => format!("{} samples over {:.1} s", a.samples, s),
        None => "1 sample (no rates)".to_owned(),
    };
    let _ = writeln!(
        out,
        "sockscope report · host {} · kernel {} · {window} · {when}",
        a.host.hostname, a.host.kernel
    );
    if a.full_process_view {
        out.push_str("Process view: complete (every process's descriptors were read)\n");
    } else {
        out.push_str("Process view: PARTIAL — some sockets are not attributed to a process\n");
    }
    for note in &a.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    render_findings(&mut out, a);
    for ns in &a.netns {
        render_netns(&mut out, ns);
    }
    out
}

/// Findings first, most severe first, each with its remedy: the answer before the tables.
fn render_findings(out: &mut String, a: &Analysis) {
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    let (crit, warn, info) = (
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
    );
    if a.findings.is_empty() {
        out.push_str(
            "\nFindings: none — no listener is full or dropping, no process leaks CLOSE_WAIT \
             sockets or nears its descriptor limit.\n",
        );
        return;
    }
    let _ = writeln!(
        out,
        "\nFindings: {crit} critical, {warn} warning, {info} info"
    );
    let multi_ns = a.netns.len() > 1;
    for f in &a.findings {
        let tag = match f.severity {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING ",
            Severity::Info => "INFO    ",
        };
        let netns = if multi_ns {
            a.netns
                .iter()
                .find(|n| n.id == f.netns())
                .map_or_else(String::new, |n| format!(" [netns {}]", n.label))
        } else {
            String::new()
        };
        let _ = writeln!(out, "\n  {tag} {}  {}{netns}", f.id, f.subject);
        wrap(out, &f.summary, "           ", WRAP);
        wrap(out, &format!("fix: {}", f.remedy), "           ", WRAP);
        let about = a.netns.iter().find(|n| n.id == f.netns()).and_then(|n| {
            n.listeners
                .iter()
                .find(|l| f.is_about_listener(&n.id, l.inode))
        });
        if let Some(l) = about.filter(|l| !l.acceptors.is_empty()) {
            let list: Vec<String> = l.acceptors.iter().map(Acceptor::brief).collect();
            wrap(
                out,
                &format!("acceptors: {}", list.join("; ")),
                "           ",
                WRAP,
            );
        }
    }
}

/// Line width the prose of findings is wrapped to.
const WRAP: usize = 96;

/// Word-wrap `text` at `width` columns, each line starting with `indent`.
fn wrap(out: &mut String, text: &str, indent: &str, width: usize) {
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
}

fn render_netns(out: &mut String, ns: &NetnsView) {
    let _ = writeln!(out, "\n== netns {} (id {}) ==", ns.label, ns.id);

    let states: Vec<String> = TcpState::CLASSIC
        .iter()
        .map(|&s| format!("{} {}", s.name(), ns.tcp_states.get(s)))
        .collect();
    let _ = writeln!(out, "\nTCP sockets: {} total", ns.tcp_states.total());
    for chunk in states.chunks(6) {
        let _ = writeln!(out, "  {}", chunk.join("  "));
    }
    let _ = writeln!(out, "Unix sockets: {}", ns.unix_sockets);

    out.push_str("\nListeners (fullest first)\n");
    if ns.listeners.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows = ns.listeners.iter().map(listener_row).collect::<Vec<_>>();
        table(
            out,
            &[
                "PROTO",
                "LOCAL",
                ">QUEUE/BACKLOG",
                ">FILL",
                ">SYN_RECV",
                ">UNACCEPTED",
                ">ABANDONED",
                ">DROPS",
                ">DROPS/S",
                "OWNERS",
            ],
            &rows,
        );
    }

    let procs: Vec<&ProcessView> = ns.processes.iter().take(TOP_PROCESSES).collect();
    let _ = writeln!(
        out,
        "\nProcesses by CLOSE_WAIT (top {} of {} socket owners)",
        procs.len(),
        ns.processes.len()
    );
    if procs.is_empty() {
        out.push_str("  none seen (see the process view note above)\n");
    } else {
        let rows = procs.iter().map(|p| process_row(p)).collect::<Vec<_>>();
        table(
            out,
            &[
                ">PID",
                "COMM",
                ">TCP",
                ">UNIX",
                ">CLOSE_WAIT",
                ">UNREAD",
                ">OLDEST",
                ">GROWTH/MIN",
                ">FDS/LIMIT",
                ">FD USE",
            ],
            &rows,
        );
    }

    render_udp(out, ns);
    render_port_use(out, ns);

    out.push_str("\nTCP counters (TcpExt)\n");
    let rows = ns
        .counters
        .iter()
        .map(|c| {
            vec![
                c.name.to_owned(),
                c.total.map_or_else(|| "n/a".to_owned(), |t| t.to_string()),
                c.rate_per_s
                    .map_or_else(|| "-".to_owned(), |r| format!("{:+}/s", round1(r))),
            ]
        })
        .collect::<Vec<_>>();
    table(out, &["COUNTER", ">TOTAL", ">RATE"], &rows);
    render_sysctls(out, ns);
}

fn render_sysctls(out: &mut String, ns: &NetnsView) {
    let s = &ns.sysctl;
    let num = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let range = s
        .ip_local_port_range
        .map_or_else(|| "?".to_owned(), |(lo, hi)| format!("{lo}-{hi}"));
    let _ = writeln!(
        out,
        "\nSysctls: somaxconn {}  tcp_max_syn_backlog {}  tcp_syncookies {}  \
         tcp_abort_on_overflow {}\n         ip_local_port_range {range}  tcp_fin_timeout {}  \
         tcp_max_orphans {}\n         tcp_tw_reuse {}  tcp_max_tw_buckets {}  tcp_mem {}  \
         rmem_default {}  rmem_max {}",
        num(s.somaxconn),
        num(s.tcp_max_syn_backlog),
        num(s.tcp_syncookies),
        num(s.tcp_abort_on_overflow),
        num(s.tcp_fin_timeout),
        num(s.tcp_max_orphans),
        num(s.tcp_tw_reuse),
        num(s.tcp_max_tw_buckets),
        s.tcp_mem.map_or_else(
            || "?".to_owned(),
            |[lo, mid, hi]| format!("{lo} {mid} {hi}")
        ),
        num(s.rmem_default),
        num(s.rmem_max),
    );
    if let Some(ss) = ns.sockstat {
        let _ = writeln!(
            out,
            "Sockstat: inuse {}  orphan {}  time-wait {}  alloc {}  mem {} pages",
            ss.inuse, ss.orphan, ss.tw, ss.alloc, ss.mem
        );
    }
    if let Some(c) = &ns.conntrack {
        let rate =
            |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{:+}/s", round1(r)));
        let _ = writeln!(
            out,
            "Conntrack: {} entries of nf_conntrack_max {}{}  buckets {}  drop {} ({})  \
             early_drop {}  insert_failed {}",
            c.count,
            num(c.max),
            c.fill_pct
                .map_or_else(String::new, |f| format!(" ({f:.1} %)")),
            num(c.buckets),
            c.drop_total,
            rate(c.drop_per_s),
            rate(c.early_drop_per_s),
            rate(c.insert_failed_per_s),
        );
        if let Some(ports) = c.busiest_ports.as_ref().filter(|p| !p.busiest.is_empty()) {
            let named = ports
                .busiest
                .iter()
                .map(|p| format!("{} {}/{}", p.entries, p.proto, p.port))
                .collect::<Vec<_>>()
                .join("  ");
            let _ = writeln!(
                out,
                "Conntrack entries by destination port (of {}{}): {named}",
                if ports.complete { "" } else { "the first " },
                ports.entries_read
            );
        }
    }
}

/// How many UDP sockets the text report lists (the JSON report has them all).
const TOP_UDP: usize = 10;

fn owners_text(owners: &[Owner]) -> String {
    if owners.is_empty() {
        "-".to_owned()
    } else {
        owners
            .iter()
            .map(|o| format!("{}({})", o.comm, o.pid))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn render_udp(out: &mut String, ns: &NetnsView) {
    let udp = &ns.udp;
    let _ = writeln!(
        out,
        "\nUDP sockets: {} total; receiving ones, most dropping first (top {} of {}{})",
        udp.socket_count,
        udp.sockets.len().min(TOP_UDP),
        udp.sockets.len(),
        if udp.left_out > 0 {
            format!(", {} more not kept", udp.left_out)
        } else {
            String::new()
        }
    );
    if !udp.sockets.is_empty() {
        let dash = || "-".to_owned();
        let rows = udp
            .sockets
            .iter()
            .take(TOP_UDP)
            .map(|u| {
                vec![
                    u.local.clone(),
                    u.peer.map_or_else(|| "*".to_owned(), |p| p.to_string()),
                    u.recv_q.to_string(),
                    u.rcvbuf.map_or_else(dash, |b| b.to_string()),
                    u.drops_total.map_or_else(dash, |d| d.to_string()),
                    u.drops_per_s
                        .map_or_else(dash, |r| format!("{:+}", round1(r))),
                    owners_text(&u.owners),
                ]
            })
            .collect::<Vec<_>>();
        table(
            out,
            &[
                "LOCAL", "PEER", ">RECV-Q", ">RCVBUF", ">DROPS", ">DROPS/S", "OWNERS",
            ],
            &rows,
        );
    }
    let counters: Vec<String> = udp
        .counters
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.total.map_or_else(|| "n/a".to_owned(), |t| t.to_string()),
                c.rate_per_s
                    .map_or_else(String::new, |r| format!(" ({:+}/s)", round1(r)))
            )
        })
        .collect();
    let _ = writeln!(out, "  Udp/Udp6: {}", counters.join("  "));
}

fn render_port_use(out: &mut String, ns: &NetnsView) {
    let busy: Vec<_> = ns.port_use.iter().filter(|u| u.ports > 0).take(5).collect();
    let Some(first) = busy.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\nEphemeral ports in use by destination (of {} usable)",
        first.range_size
    );
    let rows = busy
        .iter()
        .map(|u| {
            vec![
                u.local.to_string(),
                u.remote.to_string(),
                u.ports.to_string(),
                format!("{:.1}%", u.pct_of_range),
                u.states.get(TcpState::TimeWait).to_string(),
                owners_text(&u.owners),
            ]
        })
        .collect::<Vec<_>>();
    table(
        out,
        &[
            "LOCAL",
            "REMOTE",
            ">PORTS",
            ">OF RANGE",
            ">TIME_WAIT",
            "OWNERS",
        ],
        &rows,
    );
}

fn listener_row(l: &ListenerView) -> Vec<String> {
    let mark = if l.full { " FULL" } else { "" };
    let owners = if l.owners.is_empty() {
        "-".to_owned()
    } else {
        l.owners
            .iter()
            .map(|o| format!("{}({})", o.comm, o.pid))
            .collect::<Vec<_>>()
            .join(",")
    };
    let local = match l.member {
        Some(m) => format!("{} #{}/{}", l.local, m.index, m.of),
        None => l.local.clone(),
    };
    vec![
        l.proto.name().to_owned(),
        local,
        format!("{}/{}", l.accept_queue, l.backlog),
        format!("{:.0}%{mark}", l.fill_pct),
        if l.proto.name() == "tcp" {
            l.syn_recv.to_string()
        } else {
            "-".to_owned()
        },
        (l.unaccepted_established + l.unaccepted_close_wait).to_string(),
        l.unaccepted_close_wait.to_string(),
        l.drops_total
            .map_or_else(|| "-".to_owned(), |d| d.to_string()),
        l.drops_per_s
            .map_or_else(|| "-".to_owned(), |r| format!("{:+}", round1(r))),
        owners,
    ]
}

fn process_row(p: &ProcessView) -> Vec<String> {
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    vec![
        p.pid.to_string(),
        p.comm.clone(),
        p.tcp_sockets.to_string(),
        p.unix_sockets.to_string(),
        p.close_wait.to_string(),
        p.close_wait_unread.to_string(),
        p.close_wait_oldest_s
            .map_or_else(|| "-".to_owned(), format_age),
        p.close_wait_growth_per_min
            .map_or_else(|| "-".to_owned(), |g| format!("{:+}", round1(g))),
        format!(
            "{}/{}",
            opt(p.fds),
            p.fd_limit.map_or_else(
                || "?".to_owned(),
                |l| l
                    .soft
                    .map_or_else(|| "unlimited".to_owned(), |s| s.to_string())
            )
        ),
        p.fd_use_pct()
            .map_or_else(|| "-".to_owned(), |u| format!("{u:.0}%")),
    ]
}

/// Columns two spaces apart, indented by two; a header starting with `>` is right-aligned
/// (numbers), the others left-aligned.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let right: Vec<bool> = header.iter().map(|h| h.starts_with('>')).collect();
    let header: Vec<&str> = header.iter().map(|h| h.trim_start_matches('>')).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for ((cell, width), right) in cells.zip(&widths).zip(&right) {
            let pad = width.saturating_sub(cell.chars().count());
            text.push(' ');
            if *right {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            }
            text.push(' ');
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_wraps_at_word_boundaries() {
        let mut out = String::new();
        wrap(&mut out, "one two three four", "  ", 10);
        assert_eq!(out, "  one two\n  three\n  four\n");
    }

    #[test]
    fn tables_align_numbers_right() {
        let mut out = String::new();
        table(
            &mut out,
            &["NAME", ">N"],
            &[
                vec!["a".into(), "5".into()],
                vec!["bbb".into(), "100".into()],
            ],
        );
        assert_eq!(out, "  NAME    N\n  a       5\n  bbb   100\n");
    }
}
