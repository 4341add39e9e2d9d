//! The help overlay (every key, what the numbers mean, the collection's notes) and the key
//! line at the bottom of the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::cells::{Part, cut, fit, width, wrap};
use super::theme::Theme;
use crate::analyze::window::Span as RateSpan;
use crate::present::tui::bindings::{BINDINGS, Binding};
use crate::present::tui::view::{KillAsk, Mode, Pane, View};

pub fn render(frame: &mut Frame, area: Rect, view: &View) {
    let theme = Theme::new(view.color);
    let box_width = area.width.min(84);
    let inner = usize::from(box_width.saturating_sub(4));
    let key_width = BINDINGS.iter().map(|b| width(b.shown)).max().unwrap_or(0) + 2;
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(
            |Binding {
                 shown: k,
                 help: what,
                 ..
             }| {
                Line::from(vec![
                    Span::styled(format!("{k:<key_width$}"), theme.key()),
                    Span::raw(cut(what, inner.saturating_sub(key_width))),
                ])
            },
        )
        .collect();
    let about = format!(
        "Rates and growth are averaged over the last {}s. queue = accept queue / backlog: \
         the kernel admits backlog + 1, so 9/8 is full. CLOSE_WAIT ages are lower bounds \
         (time since the peer's last ACK).",
        RateSpan::DASHBOARD_AGE.as_secs()
    );
    let freshness = "age is how old the data on screen is. Between full passes the collector \
         re-reads listeners, queues, drops and counters every refresh and carries the rest \
         over; \"old\" notes say how old: the other state counts (header), SYN_RECV and \
         CLOSE_WAIT sockets (listeners, details), which process holds which socket (processes).";
    let prose = |text: &str| -> Vec<Line<'static>> {
        wrap(text, inner)
            .into_iter()
            .map(|l| Line::styled(l, theme.dim()))
            .collect()
    };
    let collected = view
        .data
        .as_ref()
        .map_or(&[][..], |d| d.analysis.notes.as_slice());
    let notes: Vec<Line> = collected
        .iter()
        .map(|note| format!("note: {note}"))
        .chain(view.kill_notes.iter().map(|done| format!("K: {done}")))
        .flat_map(|note| wrap(&note, inner))
        .map(|l| Line::styled(l, theme.warning()))
        .collect();
    let (about, freshness) = (prose(&about), prose(freshness));
    // The keys always; then what the last collection could not see; then the explanations,
    // as far as the terminal's height allows.
    let mut left = usize::from(area.height.saturating_sub(2)).saturating_sub(lines.len() + 1);
    let mut fits = |part: &[Line]| {
        let fit = part.len() <= left;
        if fit {
            left -= part.len();
        }
        fit
    };
    let (show_notes, show_about, show_freshness) = (fits(&notes), fits(&about), fits(&freshness));
    if show_notes || show_about || show_freshness {
        lines.push(Line::raw(""));
    }
    for (show, part) in [
        (show_about, about),
        (show_freshness, freshness),
        (show_notes, notes),
    ] {
        if show {
            lines.extend(part);
        }
    }
    let title = Span::styled(" sockscope help ", theme.bold());
    overlay(frame, area, box_width, title, theme.dim(), lines);
}

/// A box of `lines`, `box_width` wide, centred on `area` over whatever is drawn there.
fn overlay(
    frame: &mut Frame,
    area: Rect,
    box_width: u16,
    title: Span<'static>,
    border: ratatui::style::Style,
    lines: Vec<Line<'_>>,
) {
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let rect = Rect {
        x: area.x + (area.width - box_width) / 2,
        y: area.y + (area.height - height) / 2,
        width: box_width,
        height,
    };
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(border);
    let inner_rect = block.inner(rect);
    frame.render_widget(block, rect);
    let padded = Rect {
        x: inner_rect.x + 1,
        width: inner_rect.width.saturating_sub(2),
        ..inner_rect
    };
    frame.render_widget(Paragraph::new(lines), padded);
}

/// The confirmation `K` opens: how many sockets of which process, and what destroying them
/// does; Enter destroys, any other key cancels.
pub fn confirm(frame: &mut Frame, area: Rect, view: &View, ask: &KillAsk) {
    let theme = Theme::new(view.color);
    let box_width = area.width.min(76);
    let inner = usize::from(box_width.saturating_sub(4));
    let whose = match ask.peer {
        Some(peer) => format!(" whose peer is {peer}"),
        None => String::new(),
    };
    let question = format!(
        "Destroy {} CLOSE_WAIT socket{}{whose} held by {} (pid {}) in network namespace {}?",
        ask.sockets,
        if ask.sockets == 1 { "" } else { "s" },
        ask.comm,
        ask.pid,
        ask.netns_label
    );
    let what = format!(
        "The kernel aborts each one (netlink SOCK_DESTROY, as ss -K): its peer gets a reset, \
         its ports and memory are freed at once. {} keeps its descriptors; its next read or \
         write on them fails. The leak itself still needs a fix.",
        ask.comm
    );
    let mut lines: Vec<Line> = wrap(&question, inner)
        .into_iter()
        .map(|l| Line::styled(l, theme.bold()))
        .collect();
    lines.push(Line::raw(""));
    lines.extend(wrap(&what, inner).into_iter().map(Line::raw));
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("Enter", theme.key()),
        Span::raw(" destroys them · any other key cancels"),
    ]));
    let title = Span::styled(" destroy sockets? ", theme.bold());
    overlay(frame, area, box_width, title, theme.warning(), lines);
}

/// The bottom line: the keys that work here (the most useful kept when space runs out),
/// and the filter being typed.
pub fn footer(frame: &mut Frame, area: Rect, view: &View) {
    let theme = Theme::new(view.color);
    let key = |priority: u8, k: &'static str, what: &'static str| -> Part<'static> {
        (
            priority,
            vec![Span::styled(k, theme.key()), Span::raw(format!(" {what}"))],
        )
    };
    // The answer to the last key replaces the keys until the next one (the help keeps it).
    if let Some(message) = &view.message {
        let text = cut(message, usize::from(area.width).saturating_sub(1));
        let line = Line::from(vec![Span::raw(" "), Span::styled(text, theme.warning())]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut parts: Vec<Part> = Vec::new();
    if view.confirm.is_some() {
        parts.push(key(0, "Enter", "destroy"));
        parts.push(key(0, "any key", "cancel"));
    } else if view.editing_filter {
        parts.push((
            0,
            vec![
                Span::styled("/", theme.key()),
                Span::raw(view.filter.clone()),
                Span::styled("▏", theme.key()),
            ],
        ));
        parts.push(key(0, "Enter", "keep"));
        parts.push(key(0, "Esc", "clear"));
    } else if view.detail.is_some() {
        parts.push(key(0, "Esc", "back"));
        parts.push(key(1, "↑↓", "scroll"));
        parts.push(key(0, "q", "quit"));
    } else {
        parts.push(key(0, "q", "quit"));
        parts.push(key(1, "Tab", "pane"));
        parts.push(key(2, "↑↓", "move"));
        if view.pane != Pane::Findings {
            parts.push(key(3, "s", "sort"));
        }
        parts.push(key(2, "/", "filter"));
        parts.push(key(1, "Enter", "details"));
    }
    match view.mode {
        Mode::Replay { .. } => {
            parts.push(key(1, "←→", "step"));
            parts.push(key(1, "space", "play"));
        }
        Mode::Live { .. } if !view.editing_filter => {
            parts.push(key(2, "p", if view.paused { "resume" } else { "pause" }));
        }
        Mode::Live { .. } => {}
    }
    if !view.editing_filter {
        parts.push(key(0, "?", "help"));
        if !view.filter.is_empty() && view.detail.is_none() {
            parts.push((
                0,
                vec![Span::styled(format!("/{}", view.filter), theme.warning())],
            ));
        }
    }
    let mut spans = vec![Span::raw(" ")];
    spans.extend(fit(parts, "  ", usize::from(area.width).saturating_sub(1)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
