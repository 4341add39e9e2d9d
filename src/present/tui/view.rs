//! The dashboard's state — the data on screen and everything the operator chose: pane,
//! selection, sort, filter, pause, details, help — and how keys change it.
//!
//! The event loop owns the only [`View`]; rendering reads it and never changes it. Nothing here
//! does I/O or reads a clock: time arrives with [`View::tick`], data with [`View::apply`].
//! Selections follow the row they point at (a listener's inode, a pid, a finding's id and
//! subject) across refreshes, re-sorts and filters, not its position. Each table pane keeps
//! its own rows, sort and selection together ([`FindingsPane`], [`ListenersPane`],
//! [`ProcessesPane`]).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::bindings::{self, Command};
use super::feed::Update;
use super::history::{HISTORY, History, Point};
use crate::analyze::{
    self, Analysis, Evidence, Finding, FindingId, ListenerDetail, ListenerView, NetnsView,
    ProcessDetail, ProcessView, Target, TargetKind,
};
use crate::model::Snapshot;
use crate::present::escape::{escape, escape_analysis};

/// Sockets listed at most in a details view.
pub const DETAIL_LIMIT: usize = 1000;
/// Rows a page key moves.
const PAGE: isize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Findings,
    Listeners,
    Processes,
}

impl Pane {
    fn next(self) -> Pane {
        match self {
            Pane::Findings => Pane::Listeners,
            Pane::Listeners => Pane::Processes,
            Pane::Processes => Pane::Findings,
        }
    }

    fn previous(self) -> Pane {
        self.next().next()
    }
}

/// Live refreshes, or a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live {
        interval: Duration,
    },
    Replay {
        position: usize,
        len: usize,
        playing: bool,
        interval: Duration,
    },
}

/// A part of the data that an incremental collector may carry over from an earlier pass
/// (see [`crate::model::Freshness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// SYN_RECV and CLOSE_WAIT sockets.
    Tracked,
    /// The full socket dump: the other state counts, unaccepted children, unix totals.
    Dump,
    /// Which process holds which socket.
    Owners,
}

/// What the loop must do after a key: the rest the view does itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Replay: move this many snapshots.
    Step(isize),
    /// Live: the operator confirmed destroying these sockets.
    Kill(KillAsk),
}

/// The sockets `K` offers to destroy: a process's CLOSE_WAIT sockets, those whose peer is
/// `peer` when it came from an ephemeral-port-collision finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillAsk {
    pub pid: u32,
    /// Escaped, as everything on screen.
    pub comm: String,
    pub netns_label: String,
    pub peer: Option<std::net::IpAddr>,
    /// How many the snapshot on screen shows.
    pub sockets: u64,
}

/// The analysis on screen and the snapshot it ends with (details list its sockets).
#[derive(Debug, Clone)]
pub struct Data {
    pub snapshot: Arc<Snapshot>,
    pub analysis: Analysis,
}

/// A column the listeners table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSort {
    Fill,
    Queue,
    SynRecv,
    Drops,
    Local,
    Owner,
}

impl ListenerSort {
    #[cfg(test)]
    pub const ALL_COUNT: usize = ListenerSort::ALL.len();
    const ALL: [ListenerSort; 6] = [
        ListenerSort::Fill,
        ListenerSort::Queue,
        ListenerSort::SynRecv,
        ListenerSort::Drops,
        ListenerSort::Local,
        ListenerSort::Owner,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ListenerSort::Fill => "fill",
            ListenerSort::Queue => "queue",
            ListenerSort::SynRecv => "syn",
            ListenerSort::Drops => "drops",
            ListenerSort::Local => "local",
            ListenerSort::Owner => "owner",
        }
    }

    fn cmp(self, a: &ListenerView, b: &ListenerView) -> Ordering {
        let owner = |l: &ListenerView| l.owners.first().map(|o| o.comm.clone());
        match self {
            ListenerSort::Fill => b.fill_pct.total_cmp(&a.fill_pct),
            ListenerSort::Queue => b.accept_queue.cmp(&a.accept_queue),
            ListenerSort::SynRecv => b.syn_recv.cmp(&a.syn_recv),
            ListenerSort::Drops => b
                .drops_per_s
                .unwrap_or(-1.0)
                .total_cmp(&a.drops_per_s.unwrap_or(-1.0)),
            ListenerSort::Local => Ordering::Equal,
            ListenerSort::Owner => owner(a).cmp(&owner(b)),
        }
        .then_with(|| a.local.cmp(&b.local))
        .then_with(|| a.inode.cmp(&b.inode))
    }
}

/// A column the processes table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSort {
    CloseWait,
    Growth,
    Oldest,
    Fds,
    Pid,
    Comm,
}

impl ProcessSort {
    const ALL: [ProcessSort; 6] = [
        ProcessSort::CloseWait,
        ProcessSort::Growth,
        ProcessSort::Oldest,
        ProcessSort::Fds,
        ProcessSort::Pid,
        ProcessSort::Comm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProcessSort::CloseWait => "CLOSE_WAIT",
            ProcessSort::Growth => "growth",
            ProcessSort::Oldest => "oldest",
            ProcessSort::Fds => "fds",
            ProcessSort::Pid => "pid",
            ProcessSort::Comm => "comm",
        }
    }

    fn cmp(self, a: &ProcessView, b: &ProcessView) -> Ordering {
        let desc = |x: Option<f64>, y: Option<f64>| y.unwrap_or(-1.0).total_cmp(&x.unwrap_or(-1.0));
        match self {
            // Then the fullest descriptor table, as the analysis orders them.
            ProcessSort::CloseWait => b
                .close_wait
                .cmp(&a.close_wait)
                .then_with(|| desc(a.fd_use_pct(), b.fd_use_pct())),
            ProcessSort::Growth => desc(a.close_wait_growth_per_min, b.close_wait_growth_per_min),
            ProcessSort::Oldest => desc(a.close_wait_oldest_s, b.close_wait_oldest_s),
            ProcessSort::Fds => desc(a.fd_use_pct(), b.fd_use_pct()),
            ProcessSort::Pid => Ordering::Equal,
            ProcessSort::Comm => a.comm.cmp(&b.comm),
        }
        .then_with(|| a.pid.cmp(&b.pid))
    }
}

/// A sort column and whether the operator reversed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort<C> {
    pub column: C,
    pub reversed: bool,
}

/// A selection: the row it points at, and its last position for when that row goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<K> {
    pub key: Option<K>,
    pub index: usize,
}

impl<K> Default for Selection<K> {
    fn default() -> Self {
        Selection {
            key: None,
            index: 0,
        }
    }
}

impl<K: PartialEq + Clone> Selection<K> {
    /// Find the selected row among `keys` again, or stay at the same position.
    fn resync(&mut self, keys: &[K]) {
        if let Some(i) = self
            .key
            .as_ref()
            .and_then(|k| keys.iter().position(|x| x == k))
        {
            self.index = i;
        } else {
            self.go(keys, self.index);
        }
    }

    fn go(&mut self, keys: &[K], index: usize) {
        self.index = index.min(keys.len().saturating_sub(1));
        self.key = keys.get(self.index).cloned();
    }

    fn step(&mut self, keys: &[K], by: isize) {
        let to = self.index.saturating_add_signed(by);
        self.go(keys, to);
    }
}

/// A finding is named by its id and its target (namespace included).
pub type FindingKey = (FindingId, Target);

/// A details view and the sockets it lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Finding {
        key: FindingKey,
    },
    Listener {
        netns: String,
        inode: u64,
        /// `None` once the listener is gone from the newest snapshot.
        sockets: Option<ListenerDetail>,
        scroll: usize,
    },
    Process {
        pid: u32,
        sockets: ProcessDetail,
        scroll: usize,
    },
}

/// The findings pane: the findings it shows, filtered (positions in the analysis, most
/// severe first as the analysis orders them), and the selected one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingsPane {
    pub rows: Vec<usize>,
    pub selected: Selection<FindingKey>,
}

impl FindingsPane {
    fn refresh(&mut self, a: &Analysis, needle: &str) {
        let several = a.netns.len() > 1;
        self.rows = (0..a.findings.len())
            .filter(|&i| {
                let f = &a.findings[i];
                finding_matches(f, needle)
                    || (several
                        && a.netns
                            .iter()
                            .any(|ns| ns.id == f.netns() && netns_matches(ns, needle)))
            })
            .collect();
        self.selected.resync(&self.keys(a));
    }

    fn keys(&self, a: &Analysis) -> Vec<FindingKey> {
        self.rows
            .iter()
            .map(|&i| (a.findings[i].id, a.findings[i].target.clone()))
            .collect()
    }
}

/// The listeners pane: the listeners it shows, filtered and sorted ((namespace, listener)
/// positions in the analysis), the sort, and the selected one (by inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenersPane {
    pub rows: Vec<(usize, usize)>,
    pub sort: Sort<ListenerSort>,
    pub selected: Selection<u64>,
}

impl ListenersPane {
    /// The members of an `SO_REUSEPORT` group stay together, in member order: the group is
    /// sorted as its fullest member (the first the analysis lists) would be.
    fn refresh<'a>(&mut self, a: &'a Analysis, needle: &str) {
        let sort = self.sort;
        let mut group_of: HashMap<u64, &'a ListenerView> = HashMap::new();
        for ns in &a.netns {
            let mut first: HashMap<&str, &'a ListenerView> = HashMap::new();
            for l in ns.listeners.iter().filter(|l| l.member.is_some()) {
                let head = *first.entry(l.local.as_str()).or_insert(l);
                group_of.insert(l.inode, head);
            }
        }
        self.rows = pane_rows(
            a,
            needle,
            |ns| &ns.listeners,
            listener_matches,
            |x, y| {
                let gx = group_of.get(&x.inode).copied().unwrap_or(x);
                let gy = group_of.get(&y.inode).copied().unwrap_or(y);
                if gx.inode == gy.inode {
                    return x.member.map(|m| m.index).cmp(&y.member.map(|m| m.index));
                }
                let o = sort.column.cmp(gx, gy);
                if sort.reversed { o.reverse() } else { o }
            },
        );
        self.selected.resync(&self.keys(a));
    }

    fn keys(&self, a: &Analysis) -> Vec<u64> {
        self.rows
            .iter()
            .map(|&(n, i)| a.netns[n].listeners[i].inode)
            .collect()
    }
}

/// The (namespace, position) of every item of every namespace that matches `needle` (or
/// whose namespace does, when there are several), ordered by `cmp` (stable: equal items keep
/// the analysis's order).
fn pane_rows<T>(
    a: &Analysis,
    needle: &str,
    items: impl Fn(&NetnsView) -> &Vec<T>,
    matches: impl Fn(&T, &str) -> bool,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Vec<(usize, usize)> {
    let several = a.netns.len() > 1;
    let mut rows: Vec<(usize, usize)> = a
        .netns
        .iter()
        .enumerate()
        .flat_map(|(n, ns)| (0..items(ns).len()).map(move |i| (n, i)))
        .filter(|&(n, i)| {
            matches(&items(&a.netns[n])[i], needle)
                || (several && netns_matches(&a.netns[n], needle))
        })
        .collect();
    rows.sort_by(|&(n1, i1), &(n2, i2)| cmp(&items(&a.netns[n1])[i1], &items(&a.netns[n2])[i2]));
    rows
}

/// The processes pane: the processes it shows, filtered and sorted ((namespace, process)
/// positions in the analysis), the sort, and the selected one (by pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessesPane {
    pub rows: Vec<(usize, usize)>,
    pub sort: Sort<ProcessSort>,
    pub selected: Selection<u32>,
}

impl ProcessesPane {
    fn refresh(&mut self, a: &Analysis, needle: &str) {
        let sort = self.sort;
        self.rows = pane_rows(
            a,
            needle,
            |ns| &ns.processes,
            process_matches,
            |x, y| {
                let o = sort.column.cmp(x, y);
                if sort.reversed { o.reverse() } else { o }
            },
        );
        self.selected.resync(&self.keys(a));
    }

    fn keys(&self, a: &Analysis) -> Vec<u32> {
        self.rows
            .iter()
            .map(|&(n, i)| a.netns[n].processes[i].pid)
            .collect()
    }
}

#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches the operator flips
pub struct View {
    pub mode: Mode,
    /// Wall-clock time, ms since the Unix epoch, as of the last tick.
    pub now_ms: u64,
    pub color: bool,
    /// `None` until the first snapshot arrives.
    pub data: Option<Data>,
    pub history: History,
    /// The last collection failure, until a collection succeeds.
    pub error: Option<String>,
    pub pane: Pane,
    pub findings: FindingsPane,
    pub listeners: ListenersPane,
    pub processes: ProcessesPane,
    pub filter: String,
    pub editing_filter: bool,
    /// Live: the screen is frozen; refreshes are held until it resumes.
    pub paused: bool,
    held: Option<Box<Update>>,
    held_points: Vec<Point>,
    pub detail: Option<Detail>,
    pub help: bool,
    /// Whether `K` may destroy sockets here, or why not.
    pub kill_offer: Result<(), String>,
    /// `K` pressed: the confirmation on screen.
    pub confirm: Option<KillAsk>,
    /// What each destroying run did, for the help screen's notes.
    pub kill_notes: Vec<String>,
    /// A one-line answer to the last key (why `K` is not offered, what it did), shown until
    /// the next key.
    pub message: Option<String>,
}

impl View {
    pub fn new(mode: Mode, color: bool, now_ms: u64) -> View {
        View {
            mode,
            now_ms,
            color,
            data: None,
            history: History::default(),
            error: None,
            pane: Pane::Findings,
            findings: FindingsPane::default(),
            listeners: ListenersPane {
                rows: Vec::new(),
                sort: Sort {
                    column: ListenerSort::Fill,
                    reversed: false,
                },
                selected: Selection::default(),
            },
            processes: ProcessesPane {
                rows: Vec::new(),
                sort: Sort {
                    column: ProcessSort::CloseWait,
                    reversed: false,
                },
                selected: Selection::default(),
            },
            filter: String::new(),
            editing_filter: false,
            paused: false,
            held: None,
            held_points: Vec::new(),
            detail: None,
            help: false,
            kill_offer: match mode {
                Mode::Live { .. } => Ok(()),
                Mode::Replay { .. } => Err("K destroys live sockets; it is not offered with \
                     --replay (a recording's sockets are not this host's now)"
                    .to_owned()),
            },
            confirm: None,
            kill_notes: Vec::new(),
            message: None,
        }
    }

    /// What a destroying run did (one line, names escaped): shown, and kept for the help.
    pub fn killed(&mut self, result: String) {
        self.kill_notes.push(result.clone());
        self.message = Some(result);
    }

    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// A live refresh: shown at once, or held while paused.
    pub fn apply(&mut self, update: Update) {
        self.error = None;
        if self.paused {
            // Only the newest points can be shown on resume: keep no more than those.
            if self.held_points.len() == HISTORY {
                self.held_points.remove(0);
            }
            self.held_points.push(update.point.clone());
            self.held = Some(Box::new(update));
            return;
        }
        self.history.push(update.point);
        self.show(update.snapshot, update.analysis);
    }

    /// A replay position, with the history points that lead up to it.
    pub fn seek(&mut self, position: usize, update: Update, history: Vec<Point>) {
        if let Mode::Replay { position: p, .. } = &mut self.mode {
            *p = position;
        }
        self.history = History::from_points(history);
        self.show(update.snapshot, update.analysis);
    }

    /// A collection failed: say so, keep showing the last data.
    pub fn failed(&mut self, message: &str) {
        self.error = Some(escape(message).into_owned());
    }

    /// New data on screen. Names from outside are shown escaped (ratatui would silently drop
    /// their control characters, and the name shown would not be the process's).
    fn show(&mut self, snapshot: Arc<Snapshot>, mut analysis: Analysis) {
        udp_beside_listeners(&mut analysis);
        escape_analysis(&mut analysis);
        self.data = Some(Data { snapshot, analysis });
        self.refresh_rows();
        self.refresh_detail();
    }

    /// How old a carried-over part of the data on screen is now, in seconds; `None` when the
    /// snapshot was a full pass (every part is then as old as the snapshot).
    pub fn carried_age_s(&self, part: Carried) -> Option<f64> {
        let data = self.data.as_ref()?;
        let f = &data.analysis.freshness;
        if !f.incremental {
            return None;
        }
        let carried = match part {
            Carried::Tracked => f.tracked_age_ms,
            Carried::Dump => f.socket_dump_age_ms,
            Carried::Owners => f.fd_walk_age_ms,
        };
        // A replay shows a moment of the past: its parts are only as old as they were then.
        let since = match self.mode {
            Mode::Live { .. } => self.now_ms.saturating_sub(data.analysis.wall_time_ms),
            Mode::Replay { .. } => 0,
        };
        #[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
        Some((since + carried) as f64 / 1000.0)
    }

    pub fn playing(&self) -> bool {
        matches!(self.mode, Mode::Replay { playing: true, .. })
    }

    /// Replay: stop playing (at the end of the recording).
    pub fn stop_playing(&mut self) {
        if let Mode::Replay { playing, .. } = &mut self.mode {
            *playing = false;
        }
    }

    pub fn finding(&self, i: usize) -> Option<&Finding> {
        self.data.as_ref()?.analysis.findings.get(i)
    }

    pub fn listener(&self, (ns, i): (usize, usize)) -> Option<&ListenerView> {
        self.data.as_ref()?.analysis.netns.get(ns)?.listeners.get(i)
    }

    pub fn process(&self, (ns, i): (usize, usize)) -> Option<&ProcessView> {
        self.data.as_ref()?.analysis.netns.get(ns)?.processes.get(i)
    }

    /// The selected finding, listener or process row's position in its pane's rows.
    pub fn selected_row(&self, pane: Pane) -> usize {
        match pane {
            Pane::Findings => self.findings.selected.index,
            Pane::Listeners => self.listeners.selected.index,
            Pane::Processes => self.processes.selected.index,
        }
    }

    pub fn selected_finding(&self) -> Option<&Finding> {
        self.finding(*self.findings.rows.get(self.findings.selected.index)?)
    }

    /// Recompute what each pane shows after new data, a new sort or a new filter.
    pub fn refresh_rows(&mut self) {
        let Some(data) = &self.data else {
            self.findings.rows.clear();
            self.listeners.rows.clear();
            self.processes.rows.clear();
            return;
        };
        let a = &data.analysis;
        let needle = self.filter.to_lowercase();
        self.findings.refresh(a, &needle);
        self.listeners.refresh(a, &needle);
        self.processes.refresh(a, &needle);
    }

    /// Move the selection of the focused pane.
    fn step(&mut self, by: isize) {
        let Some(data) = &self.data else { return };
        let a = &data.analysis;
        match self.pane {
            Pane::Findings => self.findings.selected.step(&self.findings.keys(a), by),
            Pane::Listeners => self.listeners.selected.step(&self.listeners.keys(a), by),
            Pane::Processes => self.processes.selected.step(&self.processes.keys(a), by),
        }
    }

    fn rows_in(&self, pane: Pane) -> usize {
        match pane {
            Pane::Findings => self.findings.rows.len(),
            Pane::Listeners => self.listeners.rows.len(),
            Pane::Processes => self.processes.rows.len(),
        }
    }

    /// Handle one key; returns what only the event loop can do.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
            return Action::Quit;
        }
        self.message = None;
        if let Some(ask) = self.confirm.take() {
            if key.code == KeyCode::Enter {
                return Action::Kill(ask);
            }
            self.message = Some("cancelled: nothing was destroyed".to_owned());
            return Action::None;
        }
        if self.editing_filter {
            self.filter_key(key);
            return Action::None;
        }
        if self.help {
            if key.code == KeyCode::Char('q') {
                return Action::Quit;
            }
            self.help = false;
            return Action::None;
        }
        let Some(command) = bindings::command(key.code) else {
            return Action::None;
        };
        if self.detail.is_some() {
            return self.detail_command(command);
        }
        match command {
            Command::Back if !self.filter.is_empty() => self.set_filter(String::new()),
            // Backspace goes back from details; on the main screen it does nothing.
            Command::Back if key.code == KeyCode::Backspace => {}
            Command::Quit | Command::Back => return Action::Quit,
            Command::NextPane => self.pane = self.pane.next(),
            Command::PreviousPane => self.pane = self.pane.previous(),
            Command::Down => self.step(1),
            Command::Up => self.step(-1),
            Command::PageDown => self.step(PAGE),
            Command::PageUp => self.step(-PAGE),
            Command::First => self.step(isize::MIN),
            Command::Last => self.step(isize::MAX),
            Command::Sort => self.next_sort(),
            Command::ReverseSort => self.reverse_sort(),
            Command::Filter => self.editing_filter = true,
            Command::Open => self.open_detail(),
            Command::Kill => self.ask_kill(),
            Command::Pause | Command::StepBack | Command::StepForward | Command::Help => {
                return self.common_command(command);
            }
        }
        Action::None
    }

    /// `K`: ask to destroy the CLOSE_WAIT sockets of the selected process, or of the process a
    /// close-wait-leak or ephemeral-port-collision finding names; or say why not.
    fn ask_kill(&mut self) {
        if let Err(why) = &self.kill_offer {
            self.message = Some(why.clone());
            return;
        }
        let Some(data) = &self.data else { return };
        let a = &data.analysis;
        let find = |netns: &str, pid: u32| {
            a.netns
                .iter()
                .filter(|ns| ns.id == netns)
                .find_map(|ns| ns.processes.iter().find(|p| p.pid == pid).map(|p| (ns, p)))
        };
        let ask = match self.pane {
            Pane::Processes => {
                self.processes
                    .rows
                    .get(self.processes.selected.index)
                    .map(|&(n, i)| {
                        let (ns, p) = (&a.netns[n], &a.netns[n].processes[i]);
                        (ns, p, None, p.close_wait)
                    })
            }
            Pane::Findings => {
                self.selected_finding()
                    .and_then(|f| match (&f.evidence, &f.target.kind) {
                        (Evidence::CloseWaitLeak(_), TargetKind::Process { pid, .. }) => {
                            find(&f.target.netns, *pid).map(|(ns, p)| (ns, p, None, p.close_wait))
                        }
                        (
                            Evidence::EphemeralPortCollision(c),
                            TargetKind::Destination { pid: Some(pid), .. },
                        ) => find(&f.target.netns, *pid)
                            .map(|(ns, p)| (ns, p, Some(c.client), c.mined_ports)),
                        _ => None,
                    })
            }
            Pane::Listeners => None,
        };
        let Some((ns, p, peer, sockets)) = ask else {
            self.message = Some(
                "K destroys a process's CLOSE_WAIT sockets: select a process, or a \
                 close-wait-leak or ephemeral-port-collision finding"
                    .to_owned(),
            );
            return;
        };
        if sockets == 0 {
            self.message = Some(format!(
                "{} (pid {}) holds no CLOSE_WAIT socket: nothing to destroy",
                p.comm, p.pid
            ));
            return;
        }
        self.confirm = Some(KillAsk {
            pid: p.pid,
            comm: p.comm.clone(),
            netns_label: ns.label.clone(),
            peer,
            sockets,
        });
    }

    /// Commands that work on the main screen and in details alike.
    fn common_command(&mut self, command: Command) -> Action {
        match command {
            Command::Pause => self.toggle_pause(),
            Command::StepBack => return self.step_replay(-1),
            Command::StepForward => return self.step_replay(1),
            Command::Help => self.help = true,
            _ => {}
        }
        Action::None
    }

    fn step_replay(&self, by: isize) -> Action {
        match self.mode {
            Mode::Replay { .. } => Action::Step(by),
            Mode::Live { .. } => Action::None,
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let mut filter = self.filter.clone();
        match key.code {
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.editing_filter = false;
                filter.clear();
            }
            KeyCode::Backspace => {
                filter.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => filter.clear(),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => filter.push(c),
            _ => {}
        }
        if filter != self.filter {
            self.set_filter(filter);
        }
    }

    fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.refresh_rows();
    }

    fn next_sort(&mut self) {
        match self.pane {
            Pane::Findings => return,
            Pane::Listeners => {
                let all = ListenerSort::ALL;
                let at = all
                    .iter()
                    .position(|&c| c == self.listeners.sort.column)
                    .unwrap_or(0);
                self.listeners.sort = Sort {
                    column: all[(at + 1) % all.len()],
                    reversed: false,
                };
            }
            Pane::Processes => {
                let all = ProcessSort::ALL;
                let at = all
                    .iter()
                    .position(|&c| c == self.processes.sort.column)
                    .unwrap_or(0);
                self.processes.sort = Sort {
                    column: all[(at + 1) % all.len()],
                    reversed: false,
                };
            }
        }
        self.refresh_rows();
    }

    fn reverse_sort(&mut self) {
        match self.pane {
            Pane::Findings => return,
            Pane::Listeners => self.listeners.sort.reversed = !self.listeners.sort.reversed,
            Pane::Processes => self.processes.sort.reversed = !self.processes.sort.reversed,
        }
        self.refresh_rows();
    }

    fn toggle_pause(&mut self) {
        if let Mode::Replay { playing, .. } = &mut self.mode {
            *playing = !*playing;
            return;
        }
        self.paused = !self.paused;
        if !self.paused {
            for point in std::mem::take(&mut self.held_points) {
                self.history.push(point);
            }
            if let Some(update) = self.held.take() {
                self.show(update.snapshot, update.analysis);
            }
        }
    }

    fn open_detail(&mut self) {
        let Some(data) = &self.data else { return };
        if self.rows_in(self.pane) == 0 {
            return;
        }
        let a = &data.analysis;
        self.detail = match self.pane {
            Pane::Findings => self
                .findings
                .selected
                .key
                .clone()
                .map(|key| Detail::Finding { key }),
            Pane::Listeners => {
                self.listeners
                    .rows
                    .get(self.listeners.selected.index)
                    .map(|&(n, i)| Detail::Listener {
                        netns: a.netns[n].id.clone(),
                        inode: a.netns[n].listeners[i].inode,
                        sockets: None,
                        scroll: 0,
                    })
            }
            Pane::Processes => {
                self.processes
                    .rows
                    .get(self.processes.selected.index)
                    .map(|&(n, i)| Detail::Process {
                        pid: a.netns[n].processes[i].pid,
                        sockets: ProcessDetail::default(),
                        scroll: 0,
                    })
            }
        };
        self.refresh_detail();
    }

    /// List the open detail's sockets again from the newest snapshot.
    fn refresh_detail(&mut self) {
        let Some(data) = &self.data else { return };
        match &mut self.detail {
            Some(Detail::Listener {
                netns,
                inode,
                sockets,
                ..
            }) => *sockets = analyze::listener_detail(&data.snapshot, netns, *inode, DETAIL_LIMIT),
            Some(Detail::Process { pid, sockets, .. }) => {
                *sockets = analyze::process_detail(&data.snapshot, *pid, DETAIL_LIMIT);
            }
            Some(Detail::Finding { .. }) | None => {}
        }
    }

    fn detail_command(&mut self, command: Command) -> Action {
        match command {
            Command::Quit => return Action::Quit,
            Command::Back => self.detail = None,
            Command::Open => self.follow_finding(),
            Command::Down => self.scroll_detail(1),
            Command::Up => self.scroll_detail(-1),
            Command::PageDown => self.scroll_detail(PAGE),
            Command::PageUp => self.scroll_detail(-PAGE),
            Command::First => self.scroll_detail(isize::MIN),
            Command::Last => self.scroll_detail(isize::MAX),
            Command::Kill
            | Command::NextPane
            | Command::PreviousPane
            | Command::Sort
            | Command::ReverseSort
            | Command::Filter => {}
            Command::Pause | Command::StepBack | Command::StepForward | Command::Help => {
                return self.common_command(command);
            }
        }
        Action::None
    }

    /// Scroll the open details' socket list, keeping its first row in the list.
    fn scroll_detail(&mut self, by: isize) {
        let (scroll, len) = match &mut self.detail {
            Some(Detail::Listener {
                scroll, sockets, ..
            }) => (scroll, sockets.as_ref().map_or(0, |s| s.sockets.len())),
            Some(Detail::Process {
                scroll, sockets, ..
            }) => (scroll, sockets.close_wait.len()),
            Some(Detail::Finding { .. }) | None => return,
        };
        *scroll = scroll.saturating_add_signed(by).min(len.saturating_sub(1));
    }

    /// From a finding's details, Enter opens the details of the listener or process it is
    /// about.
    fn follow_finding(&mut self) {
        let Some(Detail::Finding { key }) = &self.detail else {
            return;
        };
        let Some(data) = &self.data else { return };
        let a = &data.analysis;
        let Some(f) = a
            .findings
            .iter()
            .find(|f| f.id == key.0 && f.target == key.1)
        else {
            return;
        };
        let listener = a
            .netns
            .iter()
            .flat_map(|ns| ns.listeners.iter().map(move |l| (ns, l)))
            .find(|(ns, l)| f.is_about_listener(&ns.id, l.inode));
        let process = a
            .netns
            .iter()
            .flat_map(|ns| ns.processes.iter().map(move |p| (ns, p)))
            .find(|(ns, p)| f.is_about_process(&ns.id, p.pid))
            .map(|(_, p)| p);
        self.detail = match (listener, process) {
            (Some((ns, l)), _) => Some(Detail::Listener {
                netns: ns.id.clone(),
                inode: l.inode,
                sockets: None,
                scroll: 0,
            }),
            (None, Some(p)) => Some(Detail::Process {
                pid: p.pid,
                sockets: ProcessDetail::default(),
                scroll: 0,
            }),
            (None, None) => return,
        };
        self.refresh_detail();
    }
}

/// A finding matches by its id, its subject, or the ports, paths and process names it is
/// about (a collision finding names the process, and is about the server's port too).
fn finding_matches(f: &Finding, needle: &str) -> bool {
    let t = &f.mentions;
    needle.is_empty()
        || f.id.name().contains(needle)
        || f.subject.to_lowercase().contains(needle)
        || t.ports.iter().any(|p| p.to_string().contains(needle))
        || t.paths.iter().any(|p| p.to_lowercase().contains(needle))
        || t.comms.iter().any(|c| c.to_lowercase().contains(needle))
}

fn listener_matches(l: &ListenerView, needle: &str) -> bool {
    needle.is_empty()
        || l.local.to_lowercase().contains(needle)
        || l.proto.name().contains(needle)
        || l.owners
            .iter()
            .any(|o| o.comm.to_lowercase().contains(needle) || o.pid.to_string().contains(needle))
}

/// The dashboard shows each namespace's receiving UDP sockets (and connected ones that
/// dropped) beside its listeners, as rows of the same table, as the analysis words them
/// ([`analyze::udp::UdpSocketView::as_queue`]).
fn udp_beside_listeners(a: &mut Analysis) {
    for ns in &mut a.netns {
        let rows: Vec<ListenerView> = ns
            .udp
            .sockets
            .iter()
            .map(analyze::udp::UdpSocketView::as_queue)
            .collect();
        ns.listeners.extend(rows);
    }
}

/// A filter naming a namespace (by label or id) keeps its listeners and processes, when the
/// dashboard shows more than one.
fn netns_matches(ns: &NetnsView, needle: &str) -> bool {
    ns.label.to_lowercase().contains(needle) || ns.id.to_lowercase().contains(needle)
}

fn process_matches(p: &ProcessView, needle: &str) -> bool {
    needle.is_empty()
        || p.comm.to_lowercase().contains(needle)
        || p.pid.to_string().contains(needle)
}
