//! The main screen's body: the findings with the selected one's remedy, then the listeners
//! and the processes — stacked on a narrow terminal, side by side on a wide one.
//!
//! Space goes first to the findings (every one, up to about half the body), then to the two
//! tables; a pane that needs fewer rows gives the rest to the other. On 80×24 the incidents
//! recording shows all seven findings, every listener and the top processes at once.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::cells::{
    Column, bar, cut, cut_left, header, rate, row, spark, spark_level, widths, wrap_lines,
};
use super::theme::Theme;
use crate::analyze::units::format_age;
use crate::analyze::{Analysis, Finding, FindingId, ListenerView, ProcessView, Proto, Severity};
use crate::present::tui::view::{Carried, Pane as ViewPane, View};

/// A terminal at least this wide shows the two tables side by side.
const SIDE_BY_SIDE: u16 = 150;
/// A table at least this wide shows its extra columns.
const EXTRA_COLUMNS: u16 = 100;

pub fn render(frame: &mut Frame, area: Rect, view: &View) {
    let Some(data) = &view.data else { return };
    let a = &data.analysis;
    let side = area.width >= SIDE_BY_SIDE;
    let h = area.height;
    let shown_findings = u16::try_from(view.findings.rows.len().max(1)).unwrap_or(u16::MAX);
    let remedy = if view.findings.rows.is_empty() {
        0
    } else if h >= 40 {
        4
    } else {
        2
    };
    let l_rows = u16::try_from(view.listeners.rows.len().max(1)).unwrap_or(u16::MAX);
    let p_rows = u16::try_from(view.processes.rows.len().max(1)).unwrap_or(u16::MAX);
    // A table: its title, its header, then rows.
    let l_want = 2 + l_rows;
    let p_want = 2 + p_rows;
    let tables_floor = if side {
        l_want.max(p_want).min(5)
    } else {
        l_want.min(5) + p_want.min(5)
    };
    let f_want = 1 + shown_findings + remedy;
    let f_height = f_want
        .min(h.saturating_sub(tables_floor))
        .max(f_want.min(4))
        .min(h);
    let [f_area, rest] =
        Layout::vertical([Constraint::Length(f_height), Constraint::Min(0)]).areas(area);
    findings(frame, f_area, view, remedy, a);
    if side {
        let [l_area, gap, p_area] = Layout::horizontal([
            Constraint::Percentage(50),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(rest);
        listeners(frame, l_area, view, a);
        let bar_line: Vec<Line> = (0..gap.height)
            .map(|i| Line::from(if i == 0 { "┬" } else { "│" }))
            .collect();
        frame.render_widget(
            Paragraph::new(bar_line).style(Theme::new(view.color).dim()),
            gap,
        );
        processes(frame, p_area, view, a);
    } else {
        let room = rest.height;
        let half = room / 2;
        let l_height = if l_want + p_want <= room || l_want <= half {
            l_want
        } else if p_want <= room - half {
            room - p_want
        } else {
            half
        };
        let [l_area, p_area] =
            Layout::vertical([Constraint::Length(l_height), Constraint::Min(0)]).areas(rest);
        listeners(frame, l_area, view, a);
        processes(frame, p_area, view, a);
    }
}

/// `─ Title ───────`: a pane's title rule, reversed when the pane has the focus.
fn rule(title: Vec<Span<'_>>, width: u16, focused: bool, theme: Theme) -> Line<'_> {
    let mut spans = vec![Span::styled("─ ", theme.dim())];
    let used: usize = 2
        + title
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>()
        + 1;
    spans.extend(title.into_iter().map(|s| {
        let style = theme.title(focused).patch(s.style);
        Span::styled(s.content, style)
    }));
    spans.push(Span::raw(" "));
    spans.push(Span::styled(
        "─".repeat(usize::from(width).saturating_sub(used)),
        theme.dim(),
    ));
    Line::from(spans)
}

/// A table's column titles, after a space for the selection pointer.
fn header_row(columns: &[Column], widths: &[usize], theme: Theme) -> Line<'static> {
    let mut line = header(columns, widths, theme.heading());
    line.spans.insert(0, Span::raw(" "));
    line
}

/// The first row to show so that the selection stays in view.
fn offset(selected: usize, visible: usize) -> usize {
    (selected + 1).saturating_sub(visible.max(1))
}

/// Marks the selected row: reverse video in the focused pane, a pointer in the others.
fn mark(mut line: Line<'_>, selected: bool, focused: bool, theme: Theme) -> Line<'_> {
    let pointer = if selected { "▸" } else { " " };
    line.spans.insert(0, Span::raw(pointer));
    if selected && focused {
        line = line.style(theme.selected());
    }
    line
}

fn filter_note(shown: usize, total: usize, view: &View) -> String {
    if view.filter.is_empty() {
        String::new()
    } else {
        format!(" · {shown} of {total} match /{}", view.filter)
    }
}

fn findings(frame: &mut Frame, area: Rect, view: &View, remedy: u16, a: &Analysis) {
    let theme = Theme::new(view.color);
    let focused = view.pane == ViewPane::Findings;
    let w = usize::from(area.width);
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    let mut title = format!(
        "Findings: {} critical, {} warning",
        count(Severity::Critical),
        count(Severity::Warning)
    );
    let info = count(Severity::Info);
    if info > 0 {
        let _ = write!(title, ", {info} info");
    }
    if a.ignored > 0 {
        let _ = write!(title, " ({} ignored)", a.ignored);
    }
    title.push_str(&filter_note(
        view.findings.rows.len(),
        a.findings.len(),
        view,
    ));
    let mut lines = vec![rule(vec![Span::raw(title)], area.width, focused, theme)];
    let list_rows = usize::from(area.height.saturating_sub(1 + remedy));
    if view.findings.rows.is_empty() {
        let text = if a.findings.is_empty() {
            "✓ no findings: no listener is full or dropping, no process leaks CLOSE_WAIT \
             sockets or nears its descriptor limit"
        } else {
            "no finding matches the filter"
        };
        lines.push(Line::styled(format!(" {}", cut(text, w - 1)), theme.good()));
    } else {
        let id_width = view
            .findings
            .rows
            .iter()
            .filter_map(|&i| view.finding(i))
            .map(|f| f.id.name().len())
            .max()
            .unwrap_or(0);
        let first = offset(view.findings.selected.index, list_rows);
        for (at, &i) in view
            .findings
            .rows
            .iter()
            .enumerate()
            .skip(first)
            .take(list_rows)
        {
            let Some(f) = view.finding(i) else { continue };
            let tag = match f.severity {
                Severity::Critical => "CRIT",
                Severity::Warning => "WARN",
                Severity::Info => "INFO",
            };
            let head = format!(" {:<id_width$}  {}{}  ", f.id, netns_tag(a, f), f.subject);
            let room = w.saturating_sub(1 + tag.len());
            let head_cut = cut(&head, room);
            let summary = cut(&f.summary, room.saturating_sub(head_cut.chars().count()));
            let line = Line::from(vec![
                Span::styled(tag, theme.severity(f.severity)),
                Span::raw(head_cut),
                Span::styled(summary, theme.dim()),
            ]);
            lines.push(mark(
                line,
                at == view.findings.selected.index,
                focused,
                theme,
            ));
        }
        if let Some(f) = view.selected_finding() {
            lines.truncate(1 + list_rows);
            let text_width = w.saturating_sub(2);
            let remedy = usize::from(remedy);
            let mut block = Vec::new();
            if remedy >= 4 {
                block.extend(wrap_lines(&f.summary, text_width, remedy / 2));
            }
            let fix = wrap_lines(
                &format!("fix: {}", f.remedy),
                text_width,
                remedy - block.len(),
            );
            block.extend(fix);
            for text in block {
                let line = if let Some(rest) = text.strip_prefix("fix:") {
                    Line::from(vec![
                        Span::raw("  "),
                        Span::styled("fix:", theme.bold()),
                        Span::raw(rest.to_owned()),
                    ])
                } else {
                    Line::from(format!("  {text}"))
                };
                lines.push(line);
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `[web] `: over several namespaces, the one a finding is in, before its subject.
fn netns_tag(a: &Analysis, f: &Finding) -> String {
    if a.netns.len() < 2 {
        return String::new();
    }
    a.netns
        .iter()
        .find(|ns| ns.id == f.netns())
        .map_or_else(String::new, |ns| format!("[{}] ", ns.label))
}

fn owners(l: &ListenerView) -> String {
    match l.owners.as_slice() {
        [] => "?".to_owned(),
        [o] => format!("{}({})", o.comm, o.pid),
        [o, rest @ ..] => format!("{}({}) +{}", o.comm, o.pid, rest.len()),
    }
}

/// One table pane: its title rule, column titles, and the rows around the selection.
struct Pane<'a> {
    title: Vec<Span<'a>>,
    focused: bool,
    columns: Vec<Column>,
    /// Shown when there is no row.
    empty: &'static str,
    /// Rows in the pane, and the selected one.
    len: usize,
    selected: usize,
}

impl Pane<'_> {
    /// Draw the pane, asking `cells` for the cells of each visible row (by its position).
    fn render(
        self,
        frame: &mut Frame,
        area: Rect,
        theme: Theme,
        cells: impl Fn(usize, &[usize]) -> Option<Vec<Span<'static>>>,
    ) {
        let w = widths(&self.columns, usize::from(area.width).saturating_sub(1));
        let mut lines = vec![
            rule(self.title, area.width, self.focused, theme),
            header_row(&self.columns, &w, theme),
        ];
        if self.len == 0 {
            lines.push(Line::styled(format!(" {}", self.empty), theme.dim()));
        }
        let visible = usize::from(area.height.saturating_sub(2));
        let first = offset(self.selected, visible);
        for at in (first..self.len).take(visible) {
            if let Some(cells) = cells(at, &w) {
                let line = row(cells, &self.columns, &w);
                lines.push(mark(line, at == self.selected, self.focused, theme));
            }
        }
        frame.render_widget(Paragraph::new(lines), area);
    }
}

/// ` · sort fill ▼`, and how many rows the filter lets through.
fn sort_note(name: &str, reversed: bool, shown: usize, total: usize, view: &View) -> String {
    format!(
        " · sort {name} {}{}",
        if reversed { "▲" } else { "▼" },
        filter_note(shown, total, view)
    )
}

/// ` · owners 28s old`: how old a part the collector carried over is, after a partial pass.
fn carried_note(view: &View, part: Carried, what: &str) -> String {
    view.carried_age_s(part).map_or_else(String::new, |age| {
        format!(" · {what} {} old", format_age(age))
    })
}

/// The widest namespace label a `netns` column shows; longer ones are cut from the left, as
/// generated names (pods, test namespaces, `pid N (comm)`) differ most at their end.
const NETNS_WIDTH: usize = 16;

/// The width of the `netns` column both tables start with when the dashboard shows several
/// namespaces (`--all-netns`), fitted to their labels; `None` with one namespace.
fn netns_width(a: &Analysis) -> Option<usize> {
    (a.netns.len() > 1).then(|| {
        a.netns
            .iter()
            .map(|ns| ns.label.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, NETNS_WIDTH)
    })
}

/// A row's `cells`, after the `netns` cell of its namespace `n` when the tables show that
/// column (`width`).
fn with_netns(
    a: &Analysis,
    n: usize,
    width: Option<usize>,
    cells: Vec<Span<'static>>,
) -> Vec<Span<'static>> {
    let label = width
        .zip(a.netns.get(n))
        .map(|(w, ns)| Span::raw(cut_left(&ns.label, w)));
    label.into_iter().chain(cells).collect()
}

fn listener_columns(extra: bool, netns: Option<usize>) -> Vec<Column> {
    let mut columns = Vec::new();
    if let Some(width) = netns {
        columns.push(Column::fixed("netns", width, false));
    }
    if extra {
        columns.push(Column::fixed("proto", 5, false));
    }
    columns.extend([
        Column::flex("local", 14, 1),
        Column::fixed("queue", 9, true),
        Column::fixed("fill", 10, false),
        Column::fixed("syn", 4, true),
    ]);
    if extra {
        columns.extend([
            Column::fixed("waiting", 7, true),
            Column::fixed("abandoned", 9, true),
            Column::fixed("drops", 7, true),
        ]);
    }
    columns.push(Column::fixed("drops/s", 7, true));
    if extra {
        columns.push(Column::fixed("trend", 8, false));
    }
    columns.push(Column::flex("owner", 10, 1));
    columns
}

fn listeners(frame: &mut Frame, area: Rect, view: &View, a: &Analysis) {
    let theme = Theme::new(view.color);
    let extra = area.width >= EXTRA_COLUMNS;
    let sort = view.listeners.sort;
    let total: usize = a.netns.iter().map(|ns| ns.listeners.len()).sum();
    let shown = view.listeners.rows.len();
    let ns_width = netns_width(a);
    let pane = Pane {
        title: vec![Span::raw(format!(
            "Listeners ({total}){}{}",
            sort_note(sort.column.name(), sort.reversed, shown, total, view),
            carried_note(view, Carried::Tracked, "SYN_RECV")
        ))],
        focused: view.pane == ViewPane::Listeners,
        columns: listener_columns(extra, ns_width),
        empty: if total == 0 {
            "no listening sockets"
        } else {
            "no listener matches the filter"
        },
        len: shown,
        selected: view.listeners.selected.index,
    };
    let local_at = usize::from(ns_width.is_some()) + usize::from(extra);
    pane.render(frame, area, theme, |at, w| {
        let row = *view.listeners.rows.get(at)?;
        let l = view.listener(row)?;
        let level = a.queue_level(&a.netns[row.0].id, l);
        let cells = listener_cells(view, l, level, extra, w[local_at], theme);
        Some(with_netns(a, row.0, ns_width, cells))
    });
}

fn listener_cells(
    view: &View,
    l: &ListenerView,
    level: Option<Severity>,
    extra: bool,
    local_width: usize,
    theme: Theme,
) -> Vec<Span<'static>> {
    let tcp = l.proto == Proto::Tcp;
    let tcp_only = |text: String| if tcp { text } else { "-".to_owned() };
    // A full queue is a fact of the kernel's; below it, the findings say how far is too far.
    let fill_style = if l.full {
        theme.critical()
    } else {
        theme.level(level.map(|_| Severity::Warning))
    };
    let drops_style = if l.drops_per_s.is_some_and(|d| d > 0.0) {
        theme.critical()
    } else {
        Style::new()
    };
    let local = if let Some(m) = l.member.filter(|_| tcp) {
        format!("{} #{}/{}", l.local, m.index, m.of)
    } else if tcp {
        l.local.clone()
    } else {
        cut_left(&l.local, local_width)
    };
    let mut cells = Vec::new();
    if extra {
        cells.push(Span::raw(l.proto.name()));
    }
    cells.extend([
        Span::styled(local, if l.full { theme.bold() } else { Style::new() }),
        Span::styled(format!("{}/{}", l.accept_queue, l.backlog), fill_style),
        Span::styled(
            format!("{} {:>3.0}%", bar(l.fill_pct / 100.0, 5), l.fill_pct),
            fill_style,
        ),
        Span::raw(tcp_only(l.syn_recv.to_string())),
    ]);
    if extra {
        let waiting = l.unaccepted_established + l.unaccepted_close_wait;
        let abandoned_style = if l.unaccepted_close_wait > 0 {
            theme.warning()
        } else {
            Style::new()
        };
        cells.extend([
            Span::raw(tcp_only(waiting.to_string())),
            Span::styled(l.unaccepted_close_wait.to_string(), abandoned_style),
            Span::raw(
                l.drops_total
                    .map_or_else(|| "-".to_owned(), |d| d.to_string()),
            ),
        ]);
    }
    let drops = if l.proto == Proto::Unix {
        "-".to_owned()
    } else {
        rate(l.drops_per_s)
    };
    cells.push(Span::styled(drops, drops_style));
    if extra {
        cells.push(Span::styled(
            spark(&view.history.listener_drops(l.inode), 8),
            drops_style,
        ));
    }
    cells.push(Span::raw(owners(l)));
    cells
}

fn fds(p: &ProcessView) -> String {
    let limit = p.fd_limit.map(|l| l.soft);
    match (p.fds, limit) {
        (Some(fds), Some(Some(soft))) => format!("{fds}/{soft}"),
        (Some(fds), Some(None)) => format!("{fds}/∞"),
        (Some(fds), None) => format!("{fds}/?"),
        (None, _) => "?".to_owned(),
    }
}

fn process_columns(extra: bool, netns: Option<usize>) -> Vec<Column> {
    let mut columns = Vec::new();
    if let Some(width) = netns {
        columns.push(Column::fixed("netns", width, false));
    }
    columns.extend([Column::fixed("pid", 7, true), Column::flex("comm", 8, 1)]);
    if extra {
        columns.extend([
            Column::fixed("tcp", 6, true),
            Column::fixed("unix", 5, true),
        ]);
    }
    columns.push(Column::fixed("CLOSE_WAIT", 10, true));
    if extra {
        columns.extend([
            Column::fixed("unread", 6, true),
            Column::fixed("growth", 8, true),
        ]);
    }
    columns.extend([
        Column::fixed("trend", trend_cells(extra), false),
        Column::fixed("oldest", 6, true),
        Column::fixed("fds/limit", 16, true),
    ]);
    columns
}

fn trend_cells(extra: bool) -> usize {
    if extra { 10 } else { 6 }
}

fn processes(frame: &mut Frame, area: Rect, view: &View, a: &Analysis) {
    let theme = Theme::new(view.color);
    let extra = area.width >= EXTRA_COLUMNS;
    let sort = view.processes.sort;
    let total: usize = a.netns.iter().map(|ns| ns.processes.len()).sum();
    let shown = view.processes.rows.len();
    let ns_width = netns_width(a);
    let sockets: u64 = a
        .netns
        .iter()
        .map(|ns| ns.tcp_states.total() + ns.unix_sockets)
        .sum();
    let pane = Pane {
        title: vec![Span::raw(format!(
            "Processes ({total}){}{}",
            sort_note(sort.column.name(), sort.reversed, shown, total, view),
            carried_note(view, Carried::Owners, "owners")
        ))],
        focused: view.pane == ViewPane::Processes,
        columns: process_columns(extra, ns_width),
        empty: if total == 0 && sockets > 0 && !a.full_process_view {
            "no socket owner visible: run as root for the full process view"
        } else if total == 0 {
            "no process holds a TCP or unix socket"
        } else {
            "no process matches the filter"
        },
        len: shown,
        selected: view.processes.selected.index,
    };
    pane.render(frame, area, theme, |at, _| {
        let row = *view.processes.rows.get(at)?;
        let p = view.process(row)?;
        let cells = process_cells(view, a, p, extra, theme);
        Some(with_netns(a, row.0, ns_width, cells))
    });
}

fn process_cells(
    view: &View,
    a: &Analysis,
    p: &ProcessView,
    extra: bool,
    theme: Theme,
) -> Vec<Span<'static>> {
    let cw_style = theme.level(a.process_level(p.pid, FindingId::CloseWaitLeak));
    let fd_pct = p.fd_use_pct();
    let fd_style = theme.level(a.process_level(p.pid, FindingId::FdExhaustion));
    let mut cells = vec![Span::raw(p.pid.to_string()), Span::raw(p.comm.clone())];
    if extra {
        cells.extend([
            Span::raw(p.tcp_sockets.to_string()),
            Span::raw(p.unix_sockets.to_string()),
        ]);
    }
    cells.push(Span::styled(p.close_wait.to_string(), cw_style));
    if extra {
        cells.extend([
            Span::raw(p.close_wait_unread.to_string()),
            Span::raw(p.close_wait_growth_per_min.map_or_else(
                || "-".to_owned(),
                |g| format!("{}/m", super::cells::signed(g)),
            )),
        ]);
    }
    // A trend only for a process that holds, or held, CLOSE_WAIT sockets.
    let series = view.history.close_wait(p.pid);
    let trend = if series.iter().flatten().any(|&v| v > 0.0) {
        spark_level(&series, trend_cells(extra))
    } else {
        String::new()
    };
    cells.extend([
        Span::styled(trend, cw_style),
        Span::raw(
            p.close_wait_oldest_s
                .map_or_else(|| "-".to_owned(), format_age),
        ),
        Span::styled(
            format!("{} {:>11}", bar(fd_pct.unwrap_or(0.0) / 100.0, 4), fds(p)),
            fd_style,
        ),
    ]);
    cells
}
