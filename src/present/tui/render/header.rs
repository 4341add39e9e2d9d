//! The three header lines: where and when (host, kernel, namespace, refresh, clock, how old
//! the data is), the TCP state counts, and the counters and sysctls that matter. A line keeps
//! what fits, most important first.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::cells::{Part, count, fit, rate, spark, width};
use super::theme::Theme;
use crate::analyze::units::format_age;
use crate::analyze::{Analysis, FindingId};
use crate::model::TcpState;
use crate::present::tui::history::HEADER_COUNTERS;
use crate::present::tui::view::{Carried, Mode, View};

pub fn render(frame: &mut Frame, area: Rect, view: &View) {
    let theme = Theme::new(view.color);
    let w = usize::from(area.width);
    let mut lines = vec![where_and_when(view, theme, w)];
    if let Some(data) = &view.data {
        lines.push(states(view, &data.analysis, theme, w));
        lines.push(counters(view, &data.analysis, theme, w));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn labelled<'a>(label: &str, value: String, style: Style) -> Vec<Span<'a>> {
    vec![Span::raw(format!("{label} ")), Span::styled(value, style)]
}

/// `11:21:13 UTC`.
pub fn clock(ms: u64) -> String {
    let t = crate::present::rfc3339_seconds(ms);
    // 2026-11-22T11:21:13Z
    t.get(11..19)
        .map_or_else(|| t.clone(), |hms| format!("{hms} UTC"))
}

fn where_and_when(view: &View, theme: Theme, w: usize) -> Line<'static> {
    let mut parts: Vec<Part> = vec![(0, vec![Span::styled(" sockscope", theme.bold())])];
    let help = " ? help";
    let room = w.saturating_sub(width(help));
    match &view.data {
        None => parts.push((
            0,
            vec![Span::styled(
                "collecting… (first snapshot)",
                theme.warning(),
            )],
        )),
        Some(data) => {
            let a = &data.analysis;
            parts.push((1, labelled("host", a.host.hostname.clone(), theme.bold())));
            parts.push((6, labelled("kernel", a.host.kernel.clone(), Style::new())));
            let netns = match a.netns.as_slice() {
                [one] => one.label.clone(),
                many => format!("{} namespaces", many.len()),
            };
            parts.push((4, labelled("netns", netns, Style::new())));
            match view.mode {
                Mode::Live { interval } => parts.push((
                    3,
                    labelled(
                        "every",
                        humantime::format_duration(interval).to_string(),
                        Style::new(),
                    ),
                )),
                Mode::Replay {
                    position,
                    len,
                    playing,
                    ..
                } => {
                    let state = if playing { "playing" } else { "paused" };
                    parts.push((
                        0,
                        vec![Span::styled(
                            format!("replay {}/{len} {state}", position + 1),
                            theme.warning().add_modifier(ratatui::style::Modifier::BOLD),
                        )],
                    ));
                }
            }
            parts.push((1, vec![Span::raw(clock(a.wall_time_ms))]));
            if let Mode::Live { interval } = view.mode {
                parts.push((2, age(view, data.analysis.wall_time_ms, interval, theme)));
                #[allow(clippy::cast_precision_loss)]
                let took = data.analysis.collect_us as f64 / 1000.0;
                parts.push((
                    8,
                    vec![Span::styled(format!("took {took:.0}ms"), theme.dim())],
                ));
            }
            if view.paused {
                parts.push((0, vec![Span::styled("PAUSED", theme.selected())]));
            }
            if !a.full_process_view {
                parts.push((
                    5,
                    vec![Span::styled("partial process view", theme.warning())],
                ));
            }
        }
    }
    if let Some(e) = &view.error {
        parts.push((
            0,
            vec![Span::styled(
                format!("collection failed: {e}"),
                theme.critical(),
            )],
        ));
    }
    let mut spans = fit(parts, " · ", room);
    let used: usize = spans.iter().map(|s| width(&s.content)).sum();
    if used + width(help) <= w {
        spans.push(Span::raw(" ".repeat(w - used - width(help))));
        spans.push(Span::styled(help, theme.key()));
    }
    Line::from(spans)
}

/// How old the data on screen is; in warning colour once it is two refreshes late.
fn age(view: &View, taken_ms: u64, interval: Duration, theme: Theme) -> Vec<Span<'static>> {
    let age = Duration::from_millis(view.now_ms.saturating_sub(taken_ms));
    let late = age > interval * 2 + Duration::from_millis(500);
    let style = if late { theme.warning() } else { theme.dim() };
    let text = if age < Duration::from_secs(10) {
        format!("age {:.1}s", age.as_secs_f64())
    } else {
        format!(
            "age {}",
            humantime::format_duration(Duration::from_secs(age.as_secs()))
        )
    };
    vec![Span::styled(text, style)]
}

fn states(view: &View, a: &Analysis, theme: Theme, w: usize) -> Line<'static> {
    let sum = |s: TcpState| a.netns.iter().map(|ns| ns.tcp_states.get(s)).sum::<u64>();
    let total: u64 = a.netns.iter().map(|ns| ns.tcp_states.total()).sum();
    let unix: u64 = a.netns.iter().map(|ns| ns.unix_sockets).sum();
    let num = |n: u64| Span::styled(count(n), theme.bold());
    let mut parts: Vec<Part> = vec![(0, vec![Span::raw(" TCP "), num(total)])];
    let shown = [
        (TcpState::Established, "ESTAB", 1),
        (TcpState::SynRecv, "SYN_RECV", 1),
        (TcpState::CloseWait, "CLOSE_WAIT", 0),
        (TcpState::TimeWait, "TIME_WAIT", 2),
        (TcpState::Listen, "LISTEN", 2),
    ];
    for (state, label, priority) in shown {
        parts.push((
            priority,
            vec![Span::raw(format!("{label} ")), num(sum(state))],
        ));
    }
    for state in [
        TcpState::SynSent,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::LastAck,
        TcpState::Closing,
        TcpState::Close,
    ] {
        let n = sum(state);
        if n > 0 {
            parts.push((4, vec![Span::raw(format!("{} ", state.name())), num(n)]));
        }
    }
    parts.push((3, vec![Span::raw("unix "), num(unix)]));
    if let Some(age) = view.carried_age_s(Carried::Dump) {
        // LISTEN, SYN_RECV, CLOSE_WAIT and ESTABLISHED are read every refresh, the rest in
        // the collector's last full dump.
        parts.push((
            5,
            vec![Span::styled(
                format!("(others: full dump {} ago)", format_age(age)),
                theme.dim(),
            )],
        ));
    }
    Line::from(fit(parts, "  ", w))
}

fn counters(view: &View, a: &Analysis, theme: Theme, w: usize) -> Line<'static> {
    let rate_of = |name: &str| {
        a.counters
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.rate_per_s)
    };
    let spark_cells = if w >= 120 { 10 } else { 4 };
    let mut parts: Vec<Part> = Vec::new();
    let labels = ["ListenOverflows", "ListenDrops", "cookies", "ReqQFullDrop"];
    let priorities = [0, 1, 5, 7];
    for (i, name) in HEADER_COUNTERS.iter().enumerate() {
        let r = rate_of(name);
        let style = if r.is_some_and(|r| r > 0.0) && i != 2 {
            theme.critical()
        } else {
            Style::new()
        };
        let mut spans = vec![
            Span::raw(format!("{} ", labels[i])),
            Span::styled(rate(r), style),
        ];
        if i < 2 && (i == 0 || w >= 120) {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                spark(&view.history.counter(i), spark_cells),
                style,
            ));
        }
        parts.push((priorities[i], spans));
    }
    parts.extend(kernel_tables(a, theme));
    if let Some(ns) = a.netns.first() {
        let s = &ns.sysctl;
        let num = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        parts.push((2, labelled("somaxconn", num(s.somaxconn), theme.bold())));
        let range = s
            .ip_local_port_range
            .map_or_else(|| "?".to_owned(), |(lo, hi)| format!("{lo}-{hi}"));
        parts.push((3, labelled("ports", range, theme.bold())));
        parts.push((
            6,
            labelled("syncookies", num(s.tcp_syncookies), theme.bold()),
        ));
        parts.push((
            8,
            labelled(
                "abort_on_overflow",
                num(s.tcp_abort_on_overflow),
                theme.bold(),
            ),
        ));
    }
    let mut spans = vec![Span::raw(" ")];
    spans.extend(fit(parts, "  ", w.saturating_sub(1)));
    Line::from(spans)
}

/// The kernel's own tables, shown while they matter: the fullest connection tracking table
/// (`conntrack 30/30`), connections skipping TIME_WAIT, connections reset for memory. Each
/// is coloured by the finding about it, if any: the rules judge, not the header.
fn kernel_tables(a: &Analysis, theme: Theme) -> Vec<Part<'static>> {
    let judged = |id: FindingId| {
        a.findings
            .iter()
            .filter(|f| f.id == id)
            .map(|f| f.severity)
            .max()
    };
    let mut parts: Vec<Part> = Vec::new();
    let fullest = a
        .netns
        .iter()
        .filter_map(|ns| ns.conntrack.as_ref())
        .max_by(|x, y| {
            x.fill_pct
                .unwrap_or(0.0)
                .total_cmp(&y.fill_pct.unwrap_or(0.0))
        });
    if let Some(c) = fullest {
        let max = c.max.map_or_else(|| "?".to_owned(), count);
        parts.push((
            4,
            labelled(
                "conntrack",
                format!("{}/{max}", count(c.count)),
                theme.level(judged(FindingId::ConntrackFull)),
            ),
        ));
    }
    let rate_of = |name: &str| {
        a.counters
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.rate_per_s)
            .filter(|&r| r > 0.0)
    };
    for (name, label, id) in [
        (
            "TCPTimeWaitOverflow",
            "tw-overflow",
            FindingId::TimeWaitOverflow,
        ),
        (
            "TCPAbortOnMemory",
            "mem-aborts",
            FindingId::TcpMemoryPressure,
        ),
    ] {
        if let Some(r) = rate_of(name) {
            parts.push((1, labelled(label, rate(Some(r)), theme.level(judged(id)))));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_utc() {
        assert_eq!(clock(1_795_346_473_400), "11:21:13 UTC");
    }
}
