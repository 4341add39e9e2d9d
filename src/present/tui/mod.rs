//! `sockscope top`: the live dashboard — which listener is full, which process leaks, and
//! the sockets behind each.
//!
//! ```text
//!  sockscope · host web-01 · netns host · every 1s · 12:00:01 UTC · age 0.3s  ? help   where, when, how fresh
//!  TCP 100,441  ESTAB 100,012  SYN_RECV 0  CLOSE_WAIT 203  TIME_WAIT 0  LISTEN 3        state counts
//!  ListenOverflows +21/s ▁▃▅█  ListenDrops +21/s  somaxconn 4096  ports 32768-60999     rates, sysctls
//! ─ Findings: 2 critical, 2 warning ──────────────────────────────────────  (focused: reversed)
//! ▸CRIT accept-queue-full         tcp 127.0.0.1:5000 (noaccept pid 4515)  accept…
//!  CRIT listen-drops              tcp 127.0.0.1:5000 (noaccept pid 4515)  Listen…
//!  WARN close-wait-leak           process leaky (pid 4527)  200 CLOSE_WAIT socke…
//!  WARN ephemeral-port-collision  process leaky (pid 4527)  200 ephemeral ports …
//!   fix: noaccept (pid 4515) is not calling accept() fast enough: find what     the selected
//!   stalls its accept loop (a saturated worker pool, slow work on the accep…   one's remedy
//! ─ Listeners (2) · sort fill ▼ ───────────────────────────────────────────
//!  local                        queue fill        syn drops/s owner
//! ▸127.0.0.1:5000                 9/8 █████ 112%    0   +21/s noaccept(4515)
//!  127.0.0.1:5001              0/1024         0%    0     0/s leaky(4527)
//! ─ Processes (3) · sort CLOSE_WAIT ▼ ─────────────────────────────────────
//!      pid comm                          CLOSE_WAIT trend  oldest        fds/limit
//! ▸   4527 leaky                                200 ▁▂▄▆█     3m        207/1024
//!     4549 fdhog                                  0             - ███▉     249/256
//!  q quit  Tab pane  ↑↓ move  / filter  Enter details  p pause  ? help          keys that work here
//! ```
//!
//! That is 80×24: the findings come first, then the tables stacked, each keeping at least
//! three rows. From 150 columns the tables sit side by side, and a table 100 columns wide
//! shows more columns (waiting and abandoned children, total drops and a drops trend; TCP and
//! unix sockets, unread CLOSE_WAIT and growth). Enter opens details in place of the
//! body: a finding in full; a listener with its SYN_RECV and unaccepted sockets and drop
//! history; a process with its CLOSE_WAIT sockets (peer, age, unread bytes) and listeners.
//!
//! How it runs: one event loop ([`run`]) owns the only [`view::View`]. Keys, resizes and
//! signals arrive from threads of their own ([`terminal`]); snapshots come from the collection
//! thread already analysed ([`feed`]), so the loop never waits on the kernel. Each turn the
//! loop draws with [`render::render`], a pure function of the view, then waits for the next
//! event or the next tick (the age of the data moves on even when nothing else does).
//!
//! This module must not read the kernel or re-derive a finding: it shows the analysis.

pub mod bindings;
pub mod feed;
pub mod history;
pub mod render;
pub mod terminal;
#[cfg(test)]
pub(crate) mod tests;
pub mod view;

use std::io::{self, IsTerminal as _};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::analyze::Settings;
use crate::source::{OnDemand as _, Source};
use feed::{Fed, Replay};
use terminal::Input;
use view::{Action, KillAsk, Mode, View};

/// How often the screen is redrawn when nothing happens, so the data's age stays true.
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(
        "the dashboard needs a terminal, and stdout is not one; use `sockscope report` for text"
    )]
    NotATerminal,
    #[error("the recording holds no snapshot")]
    EmptyRecording,
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Everything that wakes the event loop.
enum Event {
    Input(Input),
    Fed(Fed),
}

/// Whether `NO_COLOR` asks for no colour: set and not empty.
pub fn no_color(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Destroys the sockets `K` asked for, once confirmed, and says what it did in one line
/// (names escaped). `main` gives it: the dashboard itself never touches the kernel.
pub type Killer = Box<dyn FnMut(&KillAsk) -> String>;

/// Run the dashboard until the operator quits or a signal stops it. `kill` is what `K` runs
/// (live only), or why `K` is not offered.
pub fn run(
    source: Source,
    settings: Settings,
    kill: Result<Killer, String>,
) -> Result<(), TopError> {
    if !io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let color = !no_color(std::env::var_os("NO_COLOR").as_deref());
    let (tx, rx) = mpsc::channel::<Event>();
    let (mut view, mut replay) = match source {
        Source::Live(live) => {
            let interval = live.interval();
            let tx = tx.clone();
            feed::spawn_live(*live, settings, move |fed| tx.send(Event::Fed(fed)).is_ok())?;
            let view = View::new(Mode::Live { interval }, color, now_ms());
            (view, None)
        }
        Source::Replay(recorded) => {
            let interval = recorded.interval;
            let mut r = Replay::new(recorded.snapshots, interval, settings)
                .ok_or(TopError::EmptyRecording)?;
            let mode = Mode::Replay {
                position: 0,
                len: r.len(),
                playing: false,
                interval,
            };
            let mut view = View::new(mode, color, now_ms());
            let (pos, update, history) = r.at(r.start());
            view.seek(pos, update, history);
            (view, Some(r))
        }
    };
    let mut killer = match kill {
        Ok(killer) => Some(killer),
        Err(why) => {
            if view.kill_offer.is_ok() {
                view.kill_offer = Err(why);
            }
            None
        }
    };
    let session = terminal::Session::enter()?;
    let input = tx.clone();
    terminal::spawn_input(move |i| input.send(Event::Input(i)).is_ok())?;
    let signals = tx;
    terminal::spawn_signals(move |i| signals.send(Event::Input(i)).is_ok())?;
    // Never ask the terminal for the cursor position (ratatui's `clear` does): the input
    // thread would take the answer for a key.
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let result = event_loop(&mut term, &rx, &mut view, replay.as_mut(), &mut killer);
    drop(session);
    result
}

fn event_loop(
    term: &mut Terminal<CrosstermBackend<io::Stdout>>,
    rx: &mpsc::Receiver<Event>,
    view: &mut View,
    mut replay: Option<&mut Replay>,
    killer: &mut Option<Killer>,
) -> Result<(), TopError> {
    let mut last_step = Instant::now();
    loop {
        view.tick(now_ms());
        term.draw(|frame| render::render(frame, frame.area(), view))?;
        let wait = match (&replay, view.playing()) {
            (Some(r), true) => r.interval.saturating_sub(last_step.elapsed()).min(TICK),
            _ => TICK,
        };
        let first = match rx.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Take everything already queued before drawing again: a burst of keys (or a paste)
        // costs one frame.
        for event in first.into_iter().chain(rx.try_iter()) {
            match event {
                Event::Input(Input::Key(key)) => match view.on_key(key) {
                    Action::Quit => return Ok(()),
                    Action::Step(by) => {
                        if let Some(r) = replay.as_deref_mut() {
                            step(r, view, by);
                            last_step = Instant::now();
                        }
                    }
                    Action::Kill(ask) => {
                        if let Some(kill) = killer.as_mut() {
                            view.killed(kill(&ask));
                        }
                    }
                    Action::None => {}
                },
                Event::Input(Input::Resize) => {}
                Event::Input(Input::Signal(_)) => return Ok(()),
                Event::Input(Input::Closed(reason)) => {
                    return Err(TopError::Terminal(io::Error::other(reason)));
                }
                Event::Fed(Fed::Update(update)) => view.apply(*update),
                Event::Fed(Fed::Failed(message)) => view.failed(&message),
            }
        }
        if let Some(r) = replay.as_deref_mut() {
            if view.playing() && last_step.elapsed() >= r.interval {
                step(r, view, 1);
                last_step = Instant::now();
            }
        }
    }
}

/// Move a replay by `by` snapshots; playing stops at the end.
fn step(r: &mut Replay, view: &mut View, by: isize) {
    let Mode::Replay { position, .. } = view.mode else {
        return;
    };
    let to = position.saturating_add_signed(by).min(r.len() - 1);
    if to == position {
        view.stop_playing();
        return;
    }
    let (pos, update, history) = r.at(to);
    view.seek(pos, update, history);
}
