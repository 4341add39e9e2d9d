//! The dashboard's keys, in one table: the key handler ([`super::view::View::on_key`]) looks
//! a key up here, and the help screen lists these rows. A new key is added once.
//!
//! What a command does can depend on where the operator is (Enter opens the selection's
//! details on the main screen and follows a finding from its details); the table says which
//! keys give which command, and the help line that explains it.

use crossterm::event::KeyCode;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Close details, help or the filter; clear the filter; quit.
    Back,
    NextPane,
    PreviousPane,
    Down,
    Up,
    PageDown,
    PageUp,
    First,
    Last,
    Sort,
    ReverseSort,
    Filter,
    /// Details of the selection; from a finding's details, of what it is about.
    Open,
    Kill,
    Pause,
    StepBack,
    StepForward,
    Help,
}

/// One row of the help: the keys as shown, what they do, and each key's command.
pub struct Binding {
    pub shown: &'static str,
    pub help: &'static str,
    pub keys: &'static [(KeyCode, Command)],
}

/// Every key. (Ctrl-C quits too: it is read before the table, in every mode.)
pub const BINDINGS: [Binding; 13] = [
    Binding {
        shown: "q  Ctrl-C",
        help: "quit",
        keys: &[(KeyCode::Char('q'), Command::Quit)],
    },
    Binding {
        shown: "Esc",
        help: "back: close details, help or filter; clear the filter; quit",
        keys: &[
            (KeyCode::Esc, Command::Back),
            (KeyCode::Backspace, Command::Back),
        ],
    },
    Binding {
        shown: "Tab  Shift-Tab",
        help: "next / previous pane: findings, listeners, processes",
        keys: &[
            (KeyCode::Tab, Command::NextPane),
            (KeyCode::BackTab, Command::PreviousPane),
        ],
    },
    Binding {
        shown: "↑ ↓  j k",
        help: "move the selection (PgUp PgDn Home End too); scroll details",
        keys: &[
            (KeyCode::Down, Command::Down),
            (KeyCode::Char('j'), Command::Down),
            (KeyCode::Up, Command::Up),
            (KeyCode::Char('k'), Command::Up),
            (KeyCode::PageDown, Command::PageDown),
            (KeyCode::PageUp, Command::PageUp),
            (KeyCode::Home, Command::First),
            (KeyCode::Char('g'), Command::First),
            (KeyCode::End, Command::Last),
            (KeyCode::Char('G'), Command::Last),
        ],
    },
    Binding {
        shown: "s",
        help: "sort the pane by its next column",
        keys: &[(KeyCode::Char('s'), Command::Sort)],
    },
    Binding {
        shown: "S",
        help: "reverse the sort",
        keys: &[(KeyCode::Char('S'), Command::ReverseSort)],
    },
    Binding {
        shown: "/",
        help: "filter by address, port, path, comm, pid or namespace (Enter keeps it)",
        keys: &[(KeyCode::Char('/'), Command::Filter)],
    },
    Binding {
        shown: "Enter",
        help: "details of the selection, its sockets (Esc goes back)",
        keys: &[(KeyCode::Enter, Command::Open)],
    },
    Binding {
        shown: "K",
        help: "destroy the selection's CLOSE_WAIT sockets (asks first)",
        keys: &[(KeyCode::Char('K'), Command::Kill)],
    },
    Binding {
        shown: "p",
        help: "pause / resume (replay: play / pause)",
        keys: &[(KeyCode::Char('p'), Command::Pause)],
    },
    Binding {
        shown: "space",
        help: "replay: play / pause (live: like p)",
        keys: &[(KeyCode::Char(' '), Command::Pause)],
    },
    Binding {
        shown: "← →  h l",
        help: "replay: step back / forward one snapshot",
        keys: &[
            (KeyCode::Left, Command::StepBack),
            (KeyCode::Char('h'), Command::StepBack),
            (KeyCode::Right, Command::StepForward),
            (KeyCode::Char('l'), Command::StepForward),
        ],
    },
    Binding {
        shown: "?",
        help: "this help; any key closes it",
        keys: &[(KeyCode::Char('?'), Command::Help)],
    },
];

/// The command `code` gives, if any.
pub fn command(code: KeyCode) -> Option<Command> {
    BINDINGS
        .iter()
        .flat_map(|b| b.keys)
        .find(|(key, _)| *key == code)
        .map(|&(_, command)| command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_gives_two_commands() {
        let keys: Vec<KeyCode> = BINDINGS
            .iter()
            .flat_map(|b| b.keys.iter().map(|&(k, _)| k))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "{k:?} is bound twice");
        }
    }
}
