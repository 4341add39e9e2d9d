//! The terminal: raw mode and the alternate screen, and putting both back on every way out —
//! `q`, Ctrl-C (a key in raw mode), SIGTERM, SIGHUP and SIGINT (a signal thread turns them
//! into events), and a panic on any thread (a hook that restores, then chains to the hook
//! installed before it). Also the threads that turn input and signals into events.
//!
//! Owns no UI state; restoring is idempotent, so the guard, the hook and an error path can
//! all call it.

use std::io::{self, Write as _};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::event::{self, Event as TermEvent, KeyEvent, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Whether the terminal is in the dashboard's state and needs restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// The terminal in raw mode on the alternate screen, until this guard drops.
pub struct Session(());

impl Session {
    pub fn enter() -> io::Result<Session> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            Hide,
            Clear(ClearType::All)
        )?;
        Ok(Session(()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave the alternate screen, show the cursor, leave raw mode: once, whoever asks first.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// What the input and signal threads report.
#[derive(Debug)]
pub enum Input {
    Key(KeyEvent),
    Resize,
    /// A signal asked the dashboard to stop.
    Signal(i32),
    /// The terminal cannot be read any more.
    Closed(String),
}

/// Read keys and resizes on a thread of their own until `send` returns false.
pub fn spawn_input(send: impl Fn(Input) -> bool + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name("input".to_owned())
        .spawn(move || {
            loop {
                let input = match event::read() {
                    Ok(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => Input::Key(key),
                    Ok(TermEvent::Resize(..)) => Input::Resize,
                    Ok(_) => continue,
                    Err(e) => {
                        send(Input::Closed(e.to_string()));
                        return;
                    }
                };
                if !send(input) {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Turn SIGTERM, SIGHUP and SIGINT into events, so that the loop restores the terminal.
pub fn spawn_signals(send: impl Fn(Input) -> bool + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                if !send(Input::Signal(signal)) {
                    return;
                }
            }
        })?;
    Ok(())
}
