//! Details, in place of the main screen's body: a finding in full; a listener with the
//! findings about it, its drop history and the sockets waiting on it; a process with the
//! findings about it, its CLOSE_WAIT trend, its listeners and its CLOSE_WAIT sockets.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use serde::Deserialize as _;

use super::cells::{Column, bar, cut, header, rate, row, spark, spark_level, wrap, wrap_lines};
use super::theme::Theme;
use crate::analyze::acceptors::{Acceptor, State};
use crate::analyze::units::format_age;
use crate::analyze::{
    Finding, FindingId, ListenerDetail, ListenerView, Owner, ProcessDetail, ProcessView, Proto,
    Severity, SocketRow,
};
use crate::model::{TcpState, TimerKind};
use crate::present::escape::escape_json;
use crate::present::tui::view::{Carried, Detail, FindingKey, Mode, View};

pub fn render(frame: &mut Frame, area: Rect, view: &View) {
    let lines = match &view.detail {
        Some(Detail::Finding { key }) => finding(view, key, area.width),
        Some(Detail::Listener {
            netns,
            inode,
            sockets,
            scroll,
        }) => listener(view, netns, *inode, sockets.as_ref(), *scroll, area),
        Some(Detail::Process {
            pid,
            sockets,
            scroll,
        }) => process(view, *pid, sockets, *scroll, area),
        None => Vec::new(),
    };
    frame.render_widget(Paragraph::new(lines), area);
}

fn title(text: String, width: u16, theme: Theme) -> Line<'static> {
    let back = " Esc back ";
    let used = 2 + text.chars().count() + 1 + back.chars().count() + 1;
    Line::from(vec![
        Span::styled("─ ", theme.dim()),
        Span::styled(text, theme.title(true)),
        Span::raw(" "),
        Span::styled(
            "─".repeat(usize::from(width).saturating_sub(used)),
            theme.dim(),
        ),
        Span::styled(back, theme.key()),
        Span::styled("─", theme.dim()),
    ])
}

fn tag(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::Warning => "WARN",
        Severity::Info => "INFO",
    }
}

fn gone(what: &str, theme: Theme) -> Line<'static> {
    Line::styled(
        format!("  {what} is gone from the newest snapshot"),
        theme.warning(),
    )
}

fn finding(view: &View, key: &FindingKey, width: u16) -> Vec<Line<'static>> {
    let theme = Theme::new(view.color);
    let w = usize::from(width).saturating_sub(4);
    let found = view.data.as_ref().and_then(|d| {
        d.analysis
            .findings
            .iter()
            .find(|f| f.id == key.0 && f.target == key.1)
    });
    let mut lines = vec![title(format!("Finding {}", key.0), width, theme)];
    let Some(f) = found else {
        lines.push(Line::styled(
            "  this finding is no longer raised",
            theme.good(),
        ));
        return lines;
    };
    lines.push(Line::from(vec![
        Span::raw("  "),
        Span::styled(tag(f.severity), theme.severity(f.severity)),
        Span::raw(format!(" {}", f.subject)),
    ]));
    lines.extend(
        wrap(&f.summary, w)
            .into_iter()
            .map(|l| Line::from(format!("  {l}"))),
    );
    lines.push(Line::raw(""));
    for (i, text) in wrap(&format!("fix: {}", f.remedy), w)
        .into_iter()
        .enumerate()
    {
        lines.push(if i == 0 {
            Line::from(vec![
                Span::raw("  "),
                Span::styled("fix:", theme.bold()),
                Span::raw(text.trim_start_matches("fix:").to_owned()),
            ])
        } else {
            Line::from(format!("  {text}"))
        });
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("  evidence", theme.heading()));
    let evidence = evidence_text(f);
    lines.extend(
        wrap(&evidence, w)
            .into_iter()
            .map(|l| Line::from(format!("  {l}"))),
    );
    if follows(view, f) {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("  Enter", theme.key()),
            Span::raw(" the sockets of what this finding is about"),
        ]));
    }
    lines
}

/// Whether Enter leads from this finding to a listener's or a process's details.
fn follows(view: &View, f: &Finding) -> bool {
    view.data.as_ref().is_some_and(|d| {
        d.analysis.netns.iter().any(|ns| {
            ns.listeners
                .iter()
                .any(|l| f.is_about_listener(&ns.id, l.inode))
                || ns
                    .processes
                    .iter()
                    .any(|p| f.is_about_process(&ns.id, p.pid))
        })
    })
}

/// `accept_queue 9 · backlog 8 · …`: the evidence as one paragraph, every field in the order
/// of its name, strings escaped.
fn evidence_text(f: &Finding) -> String {
    let mut fields = serde_json::to_value(&f.evidence).unwrap_or_default();
    escape_json(&mut fields);
    let serde_json::Value::Object(fields) = fields else {
        return String::new();
    };
    // Nothing to say of a key without a value, or of a list that is empty (no acceptors
    // read: nothing waited when the pass looked).
    fields
        .iter()
        .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        .map(|(k, v)| format!("{k} {}", value_text(v)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A JSON value as a person reads it: rates to one decimal, processes as `comm(pid)`.
fn value_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (None, Some(i), _) => i.to_string(),
            (None, None, Some(x)) => format!("{}", (x * 10.0).round() / 10.0),
            _ => n.to_string(),
        },
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(map) => match (Acceptor::deserialize(v), Owner::deserialize(v)) {
            // An acceptor: `nginx(4242) epoll stopped, in do_signal_stop`.
            (Ok(a), _) => a.brief(),
            (_, Ok(o)) => format!("{}({})", o.comm, o.pid),
            _ => map
                .iter()
                .map(|(k, v)| format!("{k} {}", value_text(v)))
                .collect::<Vec<_>>()
                .join(", "),
        },
        other => other.to_string(),
    }
}

/// The findings about this listener or process, one line each.
fn findings_about(
    view: &View,
    about: impl Fn(&Finding) -> bool,
    w: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let Some(d) = &view.data else {
        return Vec::new();
    };
    let found: Vec<&Finding> = d.analysis.findings.iter().filter(|f| about(f)).collect();
    if found.is_empty() {
        return vec![Line::styled("  ✓ no findings about it", theme.good())];
    }
    found
        .into_iter()
        .map(|f| {
            let text = format!(" {}  {}", f.id, f.summary);
            Line::from(vec![
                Span::raw("  "),
                Span::styled(tag(f.severity), theme.severity(f.severity)),
                Span::raw(cut(&text, w.saturating_sub(6))),
            ])
        })
        .collect()
}

fn listener(
    view: &View,
    netns: &str,
    inode: u64,
    sockets: Option<&ListenerDetail>,
    scroll: usize,
    area: Rect,
) -> Vec<Line<'static>> {
    let theme = Theme::new(view.color);
    let w = usize::from(area.width);
    let l = view.data.as_ref().and_then(|d| {
        d.analysis
            .netns
            .iter()
            .filter(|ns| ns.id == netns)
            .flat_map(|ns| &ns.listeners)
            .find(|l| l.inode == inode)
    });
    let Some(l) = l else {
        return vec![
            title(format!("Listener (inode {inode})"), area.width, theme),
            gone("this listener", theme),
        ];
    };
    let mut lines = vec![title(
        format!("Listener {}", l.subject()),
        area.width,
        theme,
    )];
    let level = view
        .data
        .as_ref()
        .and_then(|d| d.analysis.queue_level(netns, l));
    lines.extend(listener_summary(view, l, level, w, theme));
    lines.extend(findings_about(
        view,
        |f| match l.proto {
            Proto::Udp => f.is_about_socket(netns, Proto::Udp, &l.local),
            Proto::Tcp | Proto::Unix => f.is_about_listener(netns, l.inode),
        },
        w,
        theme,
    ));
    match (l.proto, sockets) {
        (Proto::Unix, _) => lines.push(Line::styled(
            "  (the kernel does not list a unix listener's queued connections one by one)",
            theme.dim(),
        )),
        (Proto::Udp, _) => lines.push(Line::styled(
            "  (a UDP socket: queue is its Recv-Q, backlog its receive buffer, drops its \
             SK_MEMINFO_DROPS)",
            theme.dim(),
        )),
        (Proto::Tcp, None) => lines.push(gone("this listener", theme)),
        (Proto::Tcp, Some(d)) => {
            let mut heading = format!(
                "{} waiting: SYN_RECV, then accepted by the kernel but not by the app",
                plural(d.total, "socket")
            );
            if let (Some(tracked), Some(dump)) = (
                view.carried_age_s(Carried::Tracked),
                view.carried_age_s(Carried::Dump),
            ) {
                let _ = write!(
                    heading,
                    " (SYN_RECV and CLOSE_WAIT {} old, ESTABLISHED {} old)",
                    format_age(tracked),
                    format_age(dump)
                );
            }
            let cells = |s: &SocketRow| {
                let state = match s.state {
                    TcpState::Established => "ESTABLISHED".to_owned(),
                    TcpState::CloseWait => "CLOSE_WAIT (client left)".to_owned(),
                    other => other.name().to_owned(),
                };
                vec![
                    Span::raw(state),
                    Span::raw(s.local.to_string()),
                    Span::raw(s.peer.to_string()),
                    Span::raw(s.recv_q.to_string()),
                    Span::raw(s.age_s.map_or_else(|| "-".to_owned(), format_age)),
                ]
            };
            let table = Table {
                columns: &[
                    Column::fixed("state", 0, false),
                    Column::fixed("local", 0, false),
                    Column::fixed("peer", 0, false),
                    Column::fixed("recv-q", 0, true),
                    Column::fixed("age ≥", 0, true),
                ],
                cells: &cells,
            };
            socket_table(&mut lines, &heading, d, scroll, area, theme, &table);
        }
    }
    lines
}

/// A listener's queue, owner, waiting children and drops, above its findings.
fn listener_summary(
    view: &View,
    l: &ListenerView,
    level: Option<Severity>,
    w: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let inode = l.inode;
    let mut lines = Vec::new();
    // A full queue is a fact of the kernel's; below it, the findings say how far is too far.
    let fill_style = if l.full {
        theme.critical()
    } else {
        theme.level(level.map(|_| Severity::Warning))
    };
    let owner = match l.owners.as_slice() {
        [] => "not visible (run as root to see it)".to_owned(),
        owners => owners
            .iter()
            .map(|o| format!("{}({})", o.comm, o.pid))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut queue = vec![
        Span::raw("  queue "),
        Span::styled(format!("{}/{}", l.accept_queue, l.backlog), fill_style),
        Span::raw(" "),
        Span::styled(bar(l.fill_pct / 100.0, 8), fill_style),
        Span::styled(
            format!(" {:.0}%{}", l.fill_pct, if l.full { " FULL" } else { "" }),
            fill_style,
        ),
    ];
    if l.proto == Proto::Tcp {
        queue.push(Span::raw(format!(" · SYN_RECV {}", l.syn_recv)));
    }
    queue.push(Span::raw(format!(" · owner {owner}")));
    lines.push(Line::from(queue));
    if l.proto == Proto::Tcp {
        lines.push(Line::from(format!(
            "  waiting for accept() {}, of which {} abandoned by their clients",
            l.unaccepted_established + l.unaccepted_close_wait,
            l.unaccepted_close_wait
        )));
        let series = view.history.listener_drops(inode);
        let cells = series.len().clamp(8, w.saturating_sub(60).max(8));
        let drops_style = if l.drops_per_s.is_some_and(|d| d > 0.0) {
            theme.critical()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::raw(format!(
                "  drops {} total · ",
                l.drops_total
                    .map_or_else(|| "?".to_owned(), |d| d.to_string())
            )),
            Span::styled(rate(l.drops_per_s), drops_style),
            Span::raw(" · history "),
            Span::styled(spark(&series, cells), drops_style),
            Span::styled(format!(" drops/s over {}", points(view)), theme.dim()),
        ]));
    }
    if let Some(m) = l.member {
        lines.push(Line::from(format!(
            "  SO_REUSEPORT member {} of {}: the kernel sends it 1/{} of new connections",
            m.index, m.of, m.of
        )));
    }
    if !l.acceptors.is_empty() {
        lines.push(Line::styled("  acceptors", theme.heading()));
        for a in &l.acceptors {
            let style = match a.state {
                Some(State::Stopped | State::Traced | State::Zombie | State::Disk) => {
                    theme.critical()
                }
                _ => Style::new(),
            };
            lines.extend(
                wrap(&a.brief(), w.saturating_sub(4))
                    .into_iter()
                    .map(|text| Line::styled(format!("    {text}"), style)),
            );
        }
    }
    lines
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// How far back the history reaches: its points times the refresh interval.
fn points(view: &View) -> String {
    let interval = match view.mode {
        Mode::Live { interval } | Mode::Replay { interval, .. } => interval,
    };
    let n = u32::try_from(view.history.len()).unwrap_or(u32::MAX);
    format_age((interval * n).as_secs_f64())
}

/// A titled table of sockets below the summary lines, scrolled to `scroll`, filling the
/// rest of `area`; each column as wide as what it shows.
fn socket_table(
    lines: &mut Vec<Line<'static>>,
    heading: &str,
    detail: &impl Rows,
    scroll: usize,
    area: Rect,
    theme: Theme,
    table: &Table<'_>,
) {
    let rows = detail.rows();
    let total = detail.total();
    let mut heading = heading.to_owned();
    if total > rows.len() {
        let _ = write!(heading, " (the first {} listed)", rows.len());
    }
    lines.push(Line::from(vec![
        Span::styled("─ ", theme.dim()),
        Span::styled(heading.clone(), theme.bold()),
        Span::raw(" "),
        Span::styled(
            "─".repeat(usize::from(area.width).saturating_sub(heading.chars().count() + 3)),
            theme.dim(),
        ),
    ]));
    let visible = usize::from(area.height)
        .saturating_sub(lines.len() + 1)
        .max(1);
    let first = scroll.min(rows.len().saturating_sub(visible));
    let shown: Vec<Vec<Span<'static>>> = rows
        .iter()
        .skip(first)
        .take(visible)
        .map(|s| (table.cells)(s))
        .collect();
    let columns: Vec<Column> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = shown
                .iter()
                .filter_map(|cells| cells.get(i))
                .map(|s| s.content.chars().count())
                .max()
                .unwrap_or(0);
            Column::fixed(c.title, widest.max(c.title.chars().count()), c.right)
        })
        .collect();
    let w: Vec<usize> = columns.iter().map(|c| c.width).collect();
    let mut h = header(&columns, &w, theme.heading());
    h.spans.insert(0, Span::raw("  "));
    lines.push(h);
    if rows.is_empty() {
        lines.push(Line::styled("  none", theme.dim()));
        return;
    }
    for cells in shown {
        let mut line = row(cells, &columns, &w);
        line.spans.insert(0, Span::raw("  "));
        lines.push(line);
    }
}

/// A socket table's columns (their titles and alignment) and how a socket fills them.
struct Table<'a> {
    columns: &'a [Column],
    cells: &'a dyn Fn(&SocketRow) -> Vec<Span<'static>>,
}

/// A details list and its total.
trait Rows {
    fn rows(&self) -> &[SocketRow];
    fn total(&self) -> usize;
}

impl Rows for ListenerDetail {
    fn rows(&self) -> &[SocketRow] {
        &self.sockets
    }
    fn total(&self) -> usize {
        self.total
    }
}

impl Rows for ProcessDetail {
    fn rows(&self) -> &[SocketRow] {
        &self.close_wait
    }
    fn total(&self) -> usize {
        self.close_wait_total
    }
}

/// `read EOF`, `FIN`, `12 B + FIN`: what a CLOSE_WAIT socket's Recv-Q says.
fn unread(recv_q: u32) -> String {
    match recv_q {
        0 => "0, read EOF".to_owned(),
        1 => "0 + FIN".to_owned(),
        n => format!("{} B + FIN", n - 1),
    }
}

/// A process's CLOSE_WAIT count, growth, age and trend, and its descriptors.
fn process_summary(view: &View, p: &ProcessView, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let pid = p.pid;
    let mut lines = Vec::new();
    let read_eof = p.close_wait.saturating_sub(p.close_wait_unread);
    let level = |id| {
        view.data
            .as_ref()
            .and_then(|d| d.analysis.process_level(p.pid, id))
    };
    let cw_style = theme.level(level(FindingId::CloseWaitLeak));
    let series = view.history.close_wait(pid);
    let cells = series.len().clamp(8, w.saturating_sub(60).max(8));
    lines.push(Line::from(vec![
        Span::raw("  CLOSE_WAIT "),
        Span::styled(p.close_wait.to_string(), cw_style),
        Span::raw(format!(
            " · growth {} · oldest {} · trend ",
            p.close_wait_growth_per_min.map_or_else(
                || "-".to_owned(),
                |g| format!("{}/min", super::cells::signed(g))
            ),
            p.close_wait_oldest_s
                .map_or_else(|| "-".to_owned(), format_age),
        )),
        Span::styled(spark_level(&series, cells), cw_style),
        Span::styled(format!(" over {}", points(view)), theme.dim()),
    ]));
    if p.close_wait > 0 {
        lines.push(Line::from(format!(
            "  {} never read to EOF (Recv-Q > 0), {read_eof} read EOF but not closed",
            p.close_wait_unread
        )));
    }
    let fd_pct = p.fd_use_pct();
    let fd_style = theme.level(level(FindingId::FdExhaustion));
    let limit = p.fd_limit.map_or_else(
        || "?".to_owned(),
        |l| {
            l.soft
                .map_or_else(|| "unlimited".to_owned(), |s| s.to_string())
        },
    );
    lines.push(Line::from(vec![
        Span::raw("  descriptors "),
        Span::styled(
            format!(
                "{}/{limit}{}",
                p.fds.map_or_else(|| "?".to_owned(), |f| f.to_string()),
                fd_pct.map_or_else(String::new, |u| format!(" ({u:.0}%)")),
            ),
            fd_style,
        ),
        Span::raw(format!(
            " · TCP sockets {} · unix sockets {}",
            p.tcp_sockets, p.unix_sockets
        )),
    ]));
    lines
}

fn process(
    view: &View,
    pid: u32,
    sockets: &ProcessDetail,
    scroll: usize,
    area: Rect,
) -> Vec<Line<'static>> {
    let theme = Theme::new(view.color);
    let w = usize::from(area.width);
    let found = view.data.as_ref().and_then(|d| {
        d.analysis
            .netns
            .iter()
            .flat_map(|ns| ns.processes.iter().map(move |p| (ns.id.as_str(), p)))
            .find(|(_, p)| p.pid == pid)
    });
    let Some((netns, p)) = found else {
        return vec![
            title(format!("Process (pid {pid})"), area.width, theme),
            gone("this process (or its last socket)", theme),
        ];
    };
    let mut lines = vec![title(
        format!("Process {} (pid {}) · uid {}", p.comm, p.pid, p.uid),
        area.width,
        theme,
    )];
    lines.extend(process_summary(view, p, w, theme));
    lines.extend(findings_about(
        view,
        |f| f.is_about_process(netns, p.pid),
        w,
        theme,
    ));
    let own: Vec<&ListenerView> = view.data.as_ref().map_or_else(Vec::new, |d| {
        d.analysis
            .netns
            .iter()
            .flat_map(|ns| &ns.listeners)
            .filter(|l| l.owners.iter().any(|o| o.pid == pid))
            .collect()
    });
    let listens = if own.is_empty() {
        "none".to_owned()
    } else {
        own.iter()
            .map(|l| {
                format!(
                    "{} {} {}/{}",
                    l.proto.name(),
                    l.local,
                    l.accept_queue,
                    l.backlog
                )
            })
            .collect::<Vec<_>>()
            .join(" · ")
    };
    lines.extend(
        wrap_lines(&format!("listens on: {listens}"), w.saturating_sub(2), 2)
            .into_iter()
            .map(|l| Line::from(format!("  {l}"))),
    );
    lines.extend(troubled(sockets, w, theme));
    let mut heading = format!(
        "{}, oldest first",
        plural(sockets.close_wait_total, "CLOSE_WAIT socket")
    );
    if let Some(age) = view.carried_age_s(Carried::Tracked) {
        let _ = write!(heading, " ({} old)", format_age(age));
    }
    let cells = |s: &SocketRow| {
        vec![
            Span::raw(s.local.to_string()),
            Span::raw(s.peer.to_string()),
            Span::raw(s.age_s.map_or_else(|| "-".to_owned(), format_age)),
            Span::raw(unread(s.recv_q)),
        ]
    };
    let table = Table {
        columns: &[
            Column::fixed("local", 0, false),
            Column::fixed("peer", 0, false),
            Column::fixed("age ≥", 0, true),
            Column::fixed("unread", 0, true),
        ],
        cells: &cells,
    };
    socket_table(&mut lines, &heading, sockets, scroll, area, theme, &table);
    lines
}

/// A process's connections in trouble, a line each.
fn troubled(sockets: &ProcessDetail, w: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if sockets.troubled_total > 0 {
        lines.push(Line::styled(
            format!(
                "  connections in trouble: {} (unread, blocked or retrying)",
                sockets.troubled_total
            ),
            theme.heading(),
        ));
        for s in &sockets.troubled {
            let timer = s.timer.map_or_else(String::new, |t| {
                let kind = match t.kind {
                    TimerKind::Retransmit => "retransmitting",
                    TimerKind::Probe => "zero-window probe",
                    TimerKind::Keepalive => "keepalive",
                    TimerKind::TimeWait => "time-wait",
                    TimerKind::Other(_) => "timer",
                };
                format!(" · {kind} ×{}", t.retrans)
            });
            let text = format!(
                "    {} {} → {} · Recv-Q {} · Send-Q {}{timer}",
                s.state.name(),
                s.local,
                s.peer,
                s.recv_q,
                s.send_q
            );
            lines.push(Line::from(cut(&text, w)));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_q_in_close_wait_reads_as_unread_bytes_and_the_fin() {
        assert_eq!(unread(0), "0, read EOF");
        assert_eq!(unread(1), "0 + FIN");
        assert_eq!(unread(13), "12 B + FIN");
    }
}
