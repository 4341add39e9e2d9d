//! A terminal for the dashboard: a tmux server of the test's own (its own socket), with one
//! window of a fixed size whose screen is read with `capture-pane`.
//!
//! The server is stopped on drop with `kill-server` on that socket, which reaches only the
//! server this helper started; the socket file, which tmux leaves behind, is removed.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often the screen is read while waiting for something to appear on it.
const POLL: Duration = Duration::from_millis(100);

pub struct Tmux {
    socket: String,
    /// The socket file, once the server is up.
    path: Option<String>,
}

/// A word for the shell: single-quoted unless it needs no quoting.
pub fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Tmux {
    /// A server running `command` (a shell command line) in a `width`×`height` window, or
    /// why there is none.
    pub fn start(command: &str, width: u16, height: u16) -> Result<Tmux, String> {
        // One server per window: tests run in parallel threads of one process.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let socket = format!("sockscope-test-{}-{n}", std::process::id());
        let mut tmux = Tmux { socket, path: None };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ])?;
        if !out.status.success() {
            return Err(format!(
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let path = tmux.run(&["display-message", "-p", "#{socket_path}"])?;
        tmux.path = Some(String::from_utf8_lossy(&path.stdout).trim().to_owned());
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .map_err(|e| format!("cannot run tmux: {e}"))
    }

    /// Type `text` literally, then press Enter if asked.
    pub fn type_text(&self, text: &str, enter: bool) {
        let out = self
            .run(&["send-keys", "-t", "t", "-l", text])
            .expect("tmux send-keys");
        assert!(out.status.success(), "tmux send-keys: {out:?}");
        if enter {
            self.key("Enter");
        }
    }

    /// Press one key, named as tmux names keys (`q`, `Enter`, `Tab`).
    pub fn key(&self, key: &str) {
        let out = self
            .run(&["send-keys", "-t", "t", key])
            .expect("tmux send-keys");
        assert!(out.status.success(), "tmux send-keys {key}: {out:?}");
    }

    /// The pid of the process the window runs (its shell).
    pub fn pane_pid(&self) -> u32 {
        let out = self
            .run(&["display-message", "-p", "-t", "t", "#{pane_pid}"])
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a pid")
    }

    /// What the window shows now.
    pub fn screen(&self) -> String {
        let out = self
            .run(&["capture-pane", "-p", "-t", "t"])
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the window shows now, with the escape sequences that draw its colours and
    /// attributes (`capture-pane -e`), as bytes.
    pub fn screen_with_escapes(&self) -> Vec<u8> {
        self.run(&["capture-pane", "-e", "-p", "-t", "t"])
            .expect("tmux capture-pane -e")
            .stdout
    }

    /// The window's title, as the programs in it last set it.
    pub fn pane_title(&self) -> String {
        let out = self
            .run(&["display-message", "-p", "-t", "t", "#{pane_title}"])
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Read the screen until `done` holds, and return it with how long that took; panic
    /// with the last screen after `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return (screen, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "{what} did not appear within {limit:?}; the screen:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether tmux is installed.
pub fn available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}
