//! Drawing: pure functions of the [`View`], all `fn render(frame, area, view)` in that order.
//! Nothing here changes state, reads a clock or touches the terminal beyond the frame, so a
//! `TestBackend` draws exactly what the operator sees.

mod cells;
mod detail;
mod header;
mod help;
mod panes;
mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use theme::Theme;

use super::view::View;

/// Below this the dashboard asks for a larger terminal rather than draw a mangled screen.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn render(frame: &mut Frame, area: Rect, view: &View) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, view);
        return;
    }
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, top, view);
    help::footer(frame, bottom, view);
    if view.data.is_none() {
        collecting(frame, body, view);
    } else if view.detail.is_some() {
        detail::render(frame, body, view);
    } else {
        panes::render(frame, body, view);
    }
    if view.help {
        help::render(frame, area, view);
    }
    if let Some(ask) = &view.confirm {
        help::confirm(frame, area, view, ask);
    }
}

fn collecting(frame: &mut Frame, area: Rect, view: &View) {
    let theme = Theme::new(view.color);
    let mut lines = vec![Line::raw(""); usize::from(area.height / 2).saturating_sub(1)];
    lines.push(Line::styled("collecting…", theme.bold()).centered());
    lines.push(
        Line::styled(
            "reading sockets, processes and counters; the first snapshot appears here",
            theme.dim(),
        )
        .centered(),
    );
    frame.render_widget(Paragraph::new(lines), area);
}

fn too_small(frame: &mut Frame, area: Rect, view: &View) {
    let theme = Theme::new(view.color);
    let text = format!(
        "sockscope needs {MIN_WIDTH}×{MIN_HEIGHT} (this is {}×{}); q quits",
        area.width, area.height
    );
    frame.render_widget(
        Paragraph::new(Line::styled(text, theme.warning()))
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}
