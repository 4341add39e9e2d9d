//! The scenario's own process: spawns the role processes, watches what they report, holds
//! the scenario, and stops every child it started.
//!
//! A role writes `key=value ...` lines on its stdout; the supervisor keeps the latest value
//! of each key per role. A role's stdin is a pipe from the supervisor: command lines go down
//! it, and its end of file tells the role to exit, so children never outlive a supervisor
//! that was killed outright. Children run in their own process group, so a terminal's
//! Ctrl-C reaches only the supervisor, which then stops them in order.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

enum Event {
    Line(usize, String),
    Closed(usize),
    Stop(&'static str),
}

struct RoleProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// The role's stdout reached end of file: it exited (or is exiting).
    closed: bool,
    /// The scenario expects this role to finish on its own (a client that leaves).
    may_exit: bool,
    status: Option<ExitStatus>,
    values: BTreeMap<String, String>,
}

pub struct Supervisor {
    roles: Vec<RoleProc>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    deadline: Instant,
    timeout: Duration,
}

/// Why a wait ended early.
#[derive(Debug)]
pub struct Stopped(pub &'static str);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped before the scenario was ready ({})", self.0)
    }
}

impl std::error::Error for Stopped {}

impl Supervisor {
    /// Start watching for SIGTERM/SIGINT and for the end of our stdin; the scenario must be
    /// ready within `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Supervisor> {
        let (tx, rx) = mpsc::channel();
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])
        .context("installing SIGTERM/SIGINT handlers")?;
        let signal_tx = tx.clone();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                let _ = signal_tx.send(Event::Stop("signal"));
            }
        });
        let stdin_tx = tx.clone();
        std::thread::spawn(move || {
            // Whatever arrives on stdin is ignored: only its end matters.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stdin_tx.send(Event::Stop("stdin closed"));
        });
        Ok(Supervisor {
            roles: Vec::new(),
            tx,
            rx,
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    /// Spawn this executable as role `name` (`lab role ARGS...`); returns the role's index.
    pub fn spawn(&mut self, name: &str, args: &[String]) -> anyhow::Result<usize> {
        let exe = std::env::current_exe().context("locating the lab executable")?;
        let mut child = Command::new(exe)
            .arg("role")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning role {name}"))?;
        let index = self.roles.len();
        let stdout = child.stdout.take().context("role stdout")?;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Event::Line(index, line)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Event::Closed(index));
            })
            .context("spawning a reader thread")?;
        let stdin = child.stdin.take();
        self.roles.push(RoleProc {
            name: name.to_owned(),
            child,
            stdin,
            closed: false,
            may_exit: false,
            status: None,
            values: BTreeMap::new(),
        });
        Ok(index)
    }

    /// The latest value the role reported for `key`.
    pub fn value<T: std::str::FromStr>(&self, role: usize, key: &str) -> Option<T> {
        self.roles[role].values.get(key)?.parse().ok()
    }

    /// Let `role` exit on its own without that being an error.
    pub fn allow_exit(&mut self, role: usize) {
        self.roles[role].may_exit = true;
    }

    /// Whether `role` has exited, and successfully (reaps it).
    pub fn exited_ok(&mut self, role: usize) -> anyhow::Result<bool> {
        let r = &mut self.roles[role];
        if !r.closed {
            return Ok(false);
        }
        if r.status.is_none() {
            r.status = Some(
                r.child
                    .wait()
                    .with_context(|| format!("waiting for {}", r.name))?,
            );
        }
        match r.status {
            Some(status) if status.success() => Ok(true),
            Some(status) => bail!("role {} failed ({status}); its stderr is above", r.name),
            None => Ok(false),
        }
    }

    /// Send one command line to a role.
    pub fn command(&mut self, role: usize, line: &str) -> anyhow::Result<()> {
        let r = &mut self.roles[role];
        let stdin = r.stdin.as_mut().context("role stdin already closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("sending {line:?} to role {}", r.name))
    }

    /// Wait until `ready` holds. It is checked after every report from a role and, when
    /// `poll` is given, at least that often (for conditions read from /proc).
    pub fn wait_until(
        &mut self,
        what: &str,
        poll: Option<Duration>,
        mut ready: impl FnMut(&mut Supervisor) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        loop {
            if ready(self)? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= self.deadline {
                bail!(
                    "not ready within {:?}: still waiting for {what}; roles reported {}",
                    self.timeout,
                    self.describe()
                );
            }
            let limit = poll.map_or(self.deadline - now, |p| p.min(self.deadline - now));
            match self.rx.recv_timeout(limit) {
                Ok(event) => self.handle(event, true)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("event channel closed"),
            }
        }
    }

    fn handle(&mut self, event: Event, setting_up: bool) -> anyhow::Result<()> {
        match event {
            Event::Line(i, line) => {
                let values = &mut self.roles[i].values;
                for pair in line.split_whitespace() {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    values.insert(key.to_owned(), value.to_owned());
                }
            }
            Event::Closed(i) => {
                let r = &mut self.roles[i];
                r.closed = true;
                if !r.may_exit {
                    let status = r.child.wait().ok();
                    r.status = status;
                    let how = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
                    if setting_up {
                        bail!("role {} exited early ({how}); its stderr is above", r.name);
                    }
                    eprintln!("lab: role {} (pid {}) exited ({how})", r.name, r.child.id());
                }
            }
            Event::Stop(why) => {
                if setting_up {
                    return Err(Stopped(why).into());
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .roles
            .iter()
            .map(|r| {
                let values: Vec<String> =
                    r.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} [{}]", r.name, values.join(" "))
            })
            .collect();
        parts.join(", ")
    }

    /// Print the ready line, then hold until stdin closes or a signal arrives.
    pub fn ready_and_hold(&mut self, line: &serde_json::Value) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .context("writing the ready line")?;
        drop(stdout);
        loop {
            match self.rx.recv() {
                Ok(Event::Stop(_)) | Err(_) => return Ok(()),
                Ok(event) => self.handle(event, false)?,
            }
        }
    }

    /// Print the ready line, then wait until every one of `roles` (each allowed to exit) has
    /// ended, or until stdin closes or a signal arrives. Fails if one of them failed.
    pub fn ready_and_wait_for(
        &mut self,
        line: &serde_json::Value,
        roles: &[usize],
    ) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .context("writing the ready line")?;
        drop(stdout);
        loop {
            let mut all = true;
            for &role in roles {
                all &= self.exited_ok(role)?;
            }
            if all {
                return Ok(());
            }
            match self.rx.recv() {
                Ok(Event::Stop(_)) | Err(_) => return Ok(()),
                Ok(event) => self.handle(event, false)?,
            }
        }
    }

    /// Pids of the roles still running, by name.
    pub fn live_pids(&self) -> serde_json::Map<String, serde_json::Value> {
        self.roles
            .iter()
            .filter(|r| !r.closed)
            .map(|r| (r.name.clone(), serde_json::Value::from(r.child.id())))
            .collect()
    }
}

impl Drop for Supervisor {
    /// Close every role's stdin (they exit on it), give them a moment, then SIGKILL by pid
    /// whatever is left, and reap everything.
    fn drop(&mut self) {
        for r in &mut self.roles {
            r.stdin = None;
        }
        let give_up = Instant::now() + Duration::from_secs(5);
        for r in &mut self.roles {
            if r.status.is_some() {
                continue;
            }
            loop {
                match r.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < give_up => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        let _ = r.child.kill();
                        let _ = r.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

/// For a role: exit the process when the supervisor closes our stdin (or dies).
/// Command lines that arrive meanwhile are handed to `on_line`.
pub fn exit_on_stdin_eof(mut on_line: impl FnMut(&str) + Send + 'static) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(std::io::stdin());
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => on_line(line.trim()),
            }
        }
    });
}

/// For a role with nothing else to do: block until the supervisor closes our stdin.
pub fn hold_until_stdin_eof() {
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
}

/// Read what is available on a readable stdin; `None` at end of file. Reads the descriptor
/// directly: std's buffered `Stdin` could keep a line that `poll` would never report again.
pub fn read_stdin_chunk(buf: &mut Vec<u8>) -> Option<()> {
    use std::os::fd::AsFd;
    let mut chunk = [0u8; 512];
    match rustix::io::read(std::io::stdin().as_fd(), &mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
