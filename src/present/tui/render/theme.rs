//! Styles: colours for a terminal that wants them, bold and reverse video only under
//! `NO_COLOR` (<https://no-color.org>: no colour, attributes allowed).

use ratatui::style::{Color, Modifier, Style};

use crate::analyze::Severity;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

// Attribute-only styles are methods too, so every style is asked for the same way.
#[allow(clippy::unused_self)]
impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn critical(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warning(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn info(self) -> Style {
        self.fg(Color::Blue)
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.critical(),
            Severity::Warning => self.warning().add_modifier(Modifier::BOLD),
            Severity::Info => self.info(),
        }
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn heading(self) -> Style {
        self.dim().add_modifier(Modifier::BOLD)
    }

    pub fn title(self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// A level against a warning and a critical threshold.
    /// The colour of a number the analysis judged (`None`: fine).
    pub fn level(self, judged: Option<Severity>) -> Style {
        match judged {
            Some(Severity::Critical) => self.critical(),
            Some(Severity::Warning) => self.warning(),
            Some(Severity::Info) | None => Style::new(),
        }
    }
}
