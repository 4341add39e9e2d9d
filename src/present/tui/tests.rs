//! Every screen drawn with ratatui's `TestBackend` at 80×24 and 160×45 and compared with its
//! snapshot, from the recordings in `tests/fixtures/recordings/` (see the README there); and
//! the key handling, sorting and filtering, on the view state alone.
//!
//! The empty host is derived from `healthy.ndjson` by removing every socket: the recording
//! with nothing in it that a fresh network namespace would give.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::bindings::BINDINGS;
use super::feed::{Replay, update};
use super::render;
use super::view::{Action, Detail, KillAsk, ListenerSort, Mode, Pane, ProcessSort, View};
use crate::analyze::Settings;
use crate::analyze::window::{Span, Window};
use crate::model::{Snapshot, StateCounts};
use crate::recording;

pub(crate) fn recording(name: &str) -> Vec<Snapshot> {
    let path = format!(
        "{}/tests/fixtures/recordings/{name}.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = std::fs::File::open(&path).expect("the fixture exists");
    recording::read(std::io::BufReader::new(file))
        .expect("the fixture reads")
        .snapshots
}

/// `healthy.ndjson` without a single socket.
fn empty_host() -> Vec<Snapshot> {
    let mut snapshots = recording("healthy");
    for s in &mut snapshots {
        for ns in &mut s.netns {
            ns.tcp_states = StateCounts::default();
            ns.tcp_listeners.clear();
            ns.tracked.clear();
            ns.unix_listeners.clear();
            ns.unix_sockets = 0;
        }
        for p in &mut s.processes {
            p.tcp = StateCounts::default();
            p.unix_sockets = 0;
        }
    }
    snapshots
}

/// What `--all-netns` shows of two namespaces: `incidents.ndjson`, and beside it the
/// namespace of `healthy.ndjson` renamed `web`, its processes' pids moved past the
/// incidents' own so that none is taken for another.
fn two_namespaces() -> Vec<Snapshot> {
    const WEB: u64 = 4_026_539_999;
    let moved = |pids: &mut Vec<u32>| pids.iter_mut().for_each(|p| *p += 1_000_000);
    let healthy = recording("healthy");
    let mut snapshots = recording("incidents");
    for (i, s) in snapshots.iter_mut().enumerate() {
        let h = &healthy[i.min(healthy.len() - 1)];
        let mut web = h.netns[0].clone();
        web.id = WEB.to_string();
        web.label = "web".to_owned();
        web.tcp_listeners
            .iter_mut()
            .for_each(|l| moved(&mut l.owners));
        web.tracked.iter_mut().for_each(|t| moved(&mut t.owners));
        web.unix_listeners
            .iter_mut()
            .for_each(|u| moved(&mut u.owners));
        s.netns.push(web);
        for p in &h.processes {
            let mut p = p.clone();
            p.pid += 1_000_000;
            p.netns = Some(WEB);
            s.processes.push(p);
        }
    }
    snapshots
}

/// The view a live dashboard shows once it has refreshed through `snapshots`, 0.3 s after
/// the last one.
fn live(snapshots: Vec<Snapshot>) -> View {
    let mut r =
        Replay::new(snapshots, Duration::from_secs(1), Settings::default()).expect("snapshots");
    let mode = Mode::Live {
        interval: Duration::from_secs(1),
    };
    let mut view = View::new(mode, true, 0);
    let (pos, update, history) = r.at(r.len() - 1);
    view.seek(pos, update, history);
    let taken = view.data.as_ref().expect("data").snapshot.wall_time_ms;
    view.tick(taken + 300);
    view
}

fn replay(snapshots: Vec<Snapshot>) -> (View, Replay) {
    let mut r =
        Replay::new(snapshots, Duration::from_secs(1), Settings::default()).expect("snapshots");
    let mode = Mode::Replay {
        position: 0,
        len: r.len(),
        playing: false,
        interval: Duration::from_secs(1),
    };
    let mut view = View::new(mode, true, 0);
    let (pos, update, history) = r.at(r.start());
    view.seek(pos, update, history);
    (view, r)
}

fn draw(view: &View, width: u16, height: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    term.draw(|f| render::render(f, f.area(), view))
        .expect("draw");
    term.backend().to_string()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(view: &mut View, codes: &[KeyCode]) -> Action {
    let mut last = Action::None;
    for &code in codes {
        last = view.on_key(key(code));
    }
    last
}

fn typed(view: &mut View, text: &str) {
    for c in text.chars() {
        view.on_key(key(KeyCode::Char(c)));
    }
}

/// Both sizes of one screen, under one snapshot name each.
macro_rules! screens {
    ($name:literal, $view:expr) => {
        let view = $view;
        insta::assert_snapshot!(concat!($name, "_80x24"), draw(&view, 80, 24));
        insta::assert_snapshot!(concat!($name, "_160x45"), draw(&view, 160, 45));
    };
}

#[test]
fn main_screen_names_both_culprits() {
    let view = live(recording("incidents"));
    let small = draw(&view, 80, 24);
    for culprit in ["127.0.0.1:5000", "noaccept", "leaky", "close-wait-leak"] {
        assert!(small.contains(culprit), "{culprit} not on 80×24:\n{small}");
    }
    screens!("main_incidents", view);
}

#[test]
fn main_screen_of_a_healthy_host() {
    screens!("main_healthy", live(recording("healthy")));
}

#[test]
fn main_screen_of_an_empty_host() {
    screens!("main_empty", live(empty_host()));
}

#[test]
fn collecting_before_the_first_snapshot() {
    let mode = Mode::Live {
        interval: Duration::from_secs(1),
    };
    screens!("collecting", View::new(mode, true, 0));
}

#[test]
fn listener_details() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Tab, KeyCode::Down, KeyCode::Enter]);
    assert!(matches!(view.detail, Some(Detail::Listener { .. })));
    screens!("listener_detail", view);
}

#[test]
fn process_details() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::BackTab, KeyCode::Enter]);
    assert!(matches!(view.detail, Some(Detail::Process { .. })));
    screens!("process_detail", view);
}

#[test]
fn finding_details() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Enter]);
    screens!("finding_detail", view);
}

#[test]
fn help_overlay() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Char('?')]);
    screens!("help", view);
}

#[test]
fn filter_being_typed() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, "5001");
    screens!("filter", view);
}

#[test]
fn several_namespaces_get_a_netns_column_and_a_filter_by_namespace() {
    let mut view = live(two_namespaces());
    let wide = draw(&view, 160, 45);
    // The tables' column titles: the listeners' line has `queue`, the processes' `fds/limit`.
    let header = |text: &str, title: &str| {
        text.lines()
            .find(|l| l.contains(title) && l.contains("netns "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let starts_with_netns = |line: String| line.trim_start_matches(['"', ' ']).starts_with("netns");
    assert!(starts_with_netns(header(&wide, " queue ")), "{wide}");
    let processes = header(&wide, "fds/limit");
    let processes = processes.split('│').nth(1).unwrap_or_default().to_owned();
    assert!(starts_with_netns(processes), "{wide}");
    assert!(wide.contains(" web "), "{wide}");
    assert!(
        wide.contains("accept-queue-full          [current] tcp 127.0.0.1:5000"),
        "a finding names its namespace: {wide}"
    );
    insta::assert_snapshot!("two_namespaces_80x24", draw(&view, 80, 24));
    insta::assert_snapshot!("two_namespaces_160x45", wide);

    let web_rows = |view: &View| {
        let l = &view.listeners.rows;
        let p = &view.processes.rows;
        (
            l.len(),
            l.iter().all(|&(n, _)| n == 1),
            p.len(),
            p.iter().all(|&(n, _)| n == 1),
        )
    };
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, "web");
    let (listeners, only_web_l, processes, only_web_p) = web_rows(&view);
    assert!(listeners > 0 && only_web_l, "{:?}", view.listeners.rows);
    assert!(processes > 0 && only_web_p, "{:?}", view.processes.rows);
    assert!(view.findings.rows.is_empty(), "namespace web is healthy");

    press(&mut view, &[KeyCode::Esc, KeyCode::Char('/')]);
    typed(&mut view, "current");
    let all = view.data.as_ref().expect("data").analysis.findings.len();
    assert_eq!(view.findings.rows.len(), all);
    assert!(view.listeners.rows.iter().all(|&(n, _)| n == 0));
}

#[test]
fn one_namespace_has_no_netns_column_and_its_label_filters_nothing() {
    let mut view = live(recording("incidents"));
    let text = draw(&view, 160, 45);
    assert!(!text.contains("netns  "), "{text}");
    let label = view.data.as_ref().expect("data").analysis.netns[0]
        .label
        .clone();
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, &label);
    assert!(view.listeners.rows.is_empty(), "{:?}", view.listeners.rows);
}

#[test]
fn replay_header_and_keys() {
    let (mut view, _) = replay(recording("incidents"));
    press(&mut view, &[KeyCode::Char(' ')]);
    insta::assert_snapshot!("replay_80x24", draw(&view, 80, 24));
}

#[test]
fn a_terminal_too_small_says_so() {
    let view = live(recording("incidents"));
    let text = draw(&view, 50, 12);
    assert!(text.contains("needs 60×16"), "{text}");
}

#[test]
fn no_color_draws_without_colours() {
    let mut view = live(recording("incidents"));
    let coloured = |view: &View| {
        let mut term = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        term.draw(|f| render::render(f, f.area(), view))
            .expect("draw");
        term.backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset || c.bg != Color::Reset)
    };
    assert!(coloured(&view));
    view.color = false;
    assert!(!coloured(&view));
    assert!(!super::no_color(None));
    assert!(!super::no_color(Some("".as_ref())));
    assert!(super::no_color(Some("1".as_ref())));
}

#[test]
fn quitting() {
    let mut view = live(recording("incidents"));
    assert_eq!(press(&mut view, &[KeyCode::Char('q')]), Action::Quit);
    assert_eq!(press(&mut view, &[KeyCode::Esc]), Action::Quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    press(&mut view, &[KeyCode::Char('/')]);
    assert_eq!(view.on_key(ctrl_c), Action::Quit);
    // Esc closes what is open before it quits.
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Enter]);
    assert_eq!(press(&mut view, &[KeyCode::Esc]), Action::None);
    assert!(view.detail.is_none());
    press(&mut view, &[KeyCode::Char('?')]);
    assert_eq!(press(&mut view, &[KeyCode::Esc]), Action::None);
    assert!(!view.help);
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, "x");
    press(&mut view, &[KeyCode::Enter]);
    assert_eq!(press(&mut view, &[KeyCode::Esc]), Action::None);
    assert!(view.filter.is_empty());
    assert_eq!(press(&mut view, &[KeyCode::Esc]), Action::Quit);
}

#[test]
fn tab_cycles_panes_both_ways() {
    let mut view = live(recording("incidents"));
    assert_eq!(view.pane, Pane::Findings);
    press(&mut view, &[KeyCode::Tab]);
    assert_eq!(view.pane, Pane::Listeners);
    press(&mut view, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(view.pane, Pane::Findings);
    press(&mut view, &[KeyCode::BackTab]);
    assert_eq!(view.pane, Pane::Processes);
}

fn listener_locals(view: &View) -> Vec<String> {
    view.listeners
        .rows
        .iter()
        .filter_map(|&r| view.listener(r))
        .map(|l| l.local.clone())
        .collect()
}

fn comms(view: &View) -> Vec<String> {
    view.processes
        .rows
        .iter()
        .filter_map(|&r| view.process(r))
        .map(|p| p.comm.clone())
        .collect()
}

#[test]
fn moving_stops_at_the_ends() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Up]);
    assert_eq!(view.findings.selected.index, 0);
    press(&mut view, &[KeyCode::Char('j'), KeyCode::Down]);
    assert_eq!(view.findings.selected.index, 2);
    press(&mut view, &[KeyCode::Char('k')]);
    assert_eq!(view.findings.selected.index, 1);
    press(&mut view, &[KeyCode::End]);
    assert_eq!(view.findings.selected.index, view.findings.rows.len() - 1);
    press(&mut view, &[KeyCode::PageDown]);
    assert_eq!(view.findings.selected.index, view.findings.rows.len() - 1);
    press(&mut view, &[KeyCode::Char('g')]);
    assert_eq!(view.findings.selected.index, 0);
    press(&mut view, &[KeyCode::Char('G'), KeyCode::PageUp]);
    assert_eq!(view.findings.selected.index, 0);
}

#[test]
fn sorting_cycles_columns_and_reverses() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Tab]);
    assert_eq!(view.listeners.sort.column, ListenerSort::Fill);
    assert_eq!(
        listener_locals(&view)[1..],
        ["127.0.0.1:5000", "127.0.0.1:5001"]
    );
    press(&mut view, &[KeyCode::Char('s')]);
    assert_eq!(view.listeners.sort.column, ListenerSort::Queue);
    assert_eq!(listener_locals(&view)[0], "127.0.0.1:5000");
    press(&mut view, &[KeyCode::Char('S')]);
    assert!(view.listeners.sort.reversed);
    assert_eq!(listener_locals(&view)[0], "127.0.0.1:5001");
    for _ in 0..6 {
        press(&mut view, &[KeyCode::Char('s')]);
    }
    assert_eq!(view.listeners.sort.column, ListenerSort::Queue);
    assert!(!view.listeners.sort.reversed);

    press(&mut view, &[KeyCode::Tab]);
    assert_eq!(comms(&view)[..2], ["leaky", "fdhog"]);
    press(
        &mut view,
        &[KeyCode::Char('s'), KeyCode::Char('s'), KeyCode::Char('s')],
    );
    assert_eq!(view.processes.sort.column, ProcessSort::Fds);
    assert_eq!(comms(&view)[0], "fdhog");
    press(&mut view, &[KeyCode::Char('s'), KeyCode::Char('s')]);
    assert_eq!(view.processes.sort.column, ProcessSort::Comm);
    let sorted = comms(&view);
    assert!(sorted.is_sorted(), "{sorted:?}");
    // Sorting the findings pane is a no-op: findings stay most severe first.
    press(&mut view, &[KeyCode::Tab, KeyCode::Char('s')]);
    assert_eq!(view.pane, Pane::Findings);
}

#[test]
fn the_selection_follows_its_row_through_a_resort() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::BackTab, KeyCode::Down]);
    let pid = view.processes.selected.key.expect("selected");
    press(
        &mut view,
        &[KeyCode::Char('s'), KeyCode::Char('s'), KeyCode::Char('s')],
    );
    assert_eq!(view.processes.selected.key, Some(pid));
    let at = view.processes.selected.index;
    assert_eq!(
        view.process(view.processes.rows[at]).map(|p| p.pid),
        Some(pid)
    );
}

#[test]
fn the_filter_matches_address_port_path_comm_and_pid() {
    let mut view = live(recording("incidents"));
    let leaky = view
        .data
        .as_ref()
        .and_then(|d| {
            d.analysis.netns[0]
                .processes
                .iter()
                .find(|p| p.comm == "leaky")
        })
        .map(|p| p.pid)
        .expect("leaky");
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, "5000");
    assert_eq!(listener_locals(&view), ["127.0.0.1:5000"]);
    assert!(view.findings.rows.len() >= 3);
    press(&mut view, &[KeyCode::Enter]);
    assert!(!view.editing_filter);
    assert_eq!(view.filter, "5000");

    press(&mut view, &[KeyCode::Esc, KeyCode::Char('/')]);
    typed(&mut view, "app.sock");
    assert_eq!(listener_locals(&view).len(), 1);
    assert!(listener_locals(&view)[0].ends_with("/app.sock"));

    press(&mut view, &[KeyCode::Esc]);
    assert!(view.filter.is_empty() && !view.editing_filter);
    press(&mut view, &[KeyCode::Char('/')]);
    typed(&mut view, "LEAKY");
    assert_eq!(comms(&view), ["leaky"]);
    // The listener leaky owns, and the findings about leaky.
    assert_eq!(listener_locals(&view), ["127.0.0.1:5001"]);
    assert_eq!(view.findings.rows.len(), 2);

    for _ in 0.."LEAKY".len() {
        press(&mut view, &[KeyCode::Backspace]);
    }
    typed(&mut view, &leaky.to_string());
    assert_eq!(comms(&view), ["leaky"]);
}

#[test]
fn enter_opens_details_and_follows_a_finding_to_its_subject() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Enter]);
    let Some(Detail::Finding { key }) = &view.detail else {
        panic!("a finding's details: {:?}", view.detail);
    };
    assert_eq!(key.0, "accept-queue-full");
    press(&mut view, &[KeyCode::Enter]);
    let Some(Detail::Listener { sockets, .. }) = &view.detail else {
        panic!("the listener's details: {:?}", view.detail);
    };
    assert_eq!(sockets.as_ref().map(|s| s.total), Some(9));
    press(&mut view, &[KeyCode::Down, KeyCode::Down, KeyCode::End]);
    assert!(matches!(
        view.detail,
        Some(Detail::Listener { scroll: 8, .. })
    ));
    press(&mut view, &[KeyCode::Esc]);
    assert!(view.detail.is_none());

    // close-wait-leak is about a process.
    let at = view
        .findings
        .rows
        .iter()
        .position(|&i| view.finding(i).is_some_and(|f| f.id == "close-wait-leak"))
        .expect("close-wait-leak");
    for _ in 0..at {
        press(&mut view, &[KeyCode::Down]);
    }
    press(&mut view, &[KeyCode::Enter, KeyCode::Enter]);
    let Some(Detail::Process { sockets, .. }) = &view.detail else {
        panic!("the process's details: {:?}", view.detail);
    };
    assert_eq!(sockets.close_wait_total, 200);
}

#[test]
fn pause_holds_refreshes_until_resumed() {
    let snapshots = recording("incidents");
    let mut view = live(snapshots.clone());
    let mut window = Window::new(Span::DASHBOARD);
    let mut later = snapshots[1].clone();
    later.wall_time_ms += 5000;
    later.monotonic_ns += 5_000_000_000;
    update(&mut window, snapshots[1].clone(), &Settings::default());
    let update = update(&mut window, later, &Settings::default()).expect("update");
    press(&mut view, &[KeyCode::Char('p')]);
    assert!(view.paused);
    let before = view.history.len();
    view.apply(update);
    assert_eq!(view.history.len(), before);
    let shown = view.data.as_ref().map(|d| d.analysis.wall_time_ms);
    assert_eq!(shown, Some(snapshots[1].wall_time_ms));
    press(&mut view, &[KeyCode::Char('p')]);
    assert!(!view.paused);
    assert_eq!(view.history.len(), before + 1);
    let shown = view.data.as_ref().map(|d| d.analysis.wall_time_ms);
    assert_eq!(shown, Some(snapshots[1].wall_time_ms + 5000));
}

#[test]
fn replay_keys_step_and_play() {
    let (mut view, mut r) = replay(recording("incidents"));
    assert_eq!(press(&mut view, &[KeyCode::Left]), Action::Step(-1));
    assert_eq!(press(&mut view, &[KeyCode::Right]), Action::Step(1));
    assert_eq!(press(&mut view, &[KeyCode::Char('h')]), Action::Step(-1));
    let (pos, update, history) = r.at(0);
    view.seek(pos, update, history);
    assert!(matches!(view.mode, Mode::Replay { position: 0, .. }));
    assert_eq!(view.history.len(), 1);
    assert!(!view.playing());
    press(&mut view, &[KeyCode::Char(' ')]);
    assert!(view.playing());
    press(&mut view, &[KeyCode::Char('p')]);
    assert!(!view.playing());
    // Live, the arrows do nothing.
    let mut view = live(recording("incidents"));
    assert_eq!(
        press(&mut view, &[KeyCode::Left, KeyCode::Right]),
        Action::None
    );
}

#[test]
fn every_key_in_the_help_does_something() {
    let documented: Vec<&str> = BINDINGS
        .iter()
        .flat_map(|b| b.shown.split_whitespace())
        .collect();
    let cases: [(&str, KeyCode); 18] = [
        ("q", KeyCode::Char('q')),
        ("Esc", KeyCode::Esc),
        ("Tab", KeyCode::Tab),
        ("Shift-Tab", KeyCode::BackTab),
        ("↑", KeyCode::Up),
        ("↓", KeyCode::Down),
        ("j", KeyCode::Char('j')),
        ("k", KeyCode::Char('k')),
        ("s", KeyCode::Char('s')),
        ("S", KeyCode::Char('S')),
        ("/", KeyCode::Char('/')),
        ("Enter", KeyCode::Enter),
        ("p", KeyCode::Char('p')),
        ("space", KeyCode::Char(' ')),
        ("←", KeyCode::Left),
        ("→", KeyCode::Right),
        ("?", KeyCode::Char('?')),
        ("K", KeyCode::Char('K')),
    ];
    for (name, code) in cases {
        assert!(documented.contains(&name), "{name} is not in the help");
        let (mut view, _) = replay(recording("incidents"));
        // Start where a moving key has room to move.
        press(&mut view, &[KeyCode::Tab, KeyCode::Down]);
        // What a key can change, to compare before and after it.
        let state = |view: &View| {
            format!(
                "{:?}",
                (
                    &view.pane,
                    &view.listeners,
                    &view.listeners.sort,
                    &view.detail,
                    view.help,
                    view.editing_filter,
                    view.playing(),
                    &view.message,
                    &view.confirm
                )
            )
        };
        let before = state(&view);
        let action = press(&mut view, &[code]);
        let after = state(&view);
        assert!(
            action != Action::None || before != after,
            "{name} changed nothing"
        );
    }
}

#[test]
fn a_long_pause_holds_no_more_than_the_history() {
    let snapshots = recording("incidents");
    let mut view = live(snapshots.clone());
    let mut window = Window::new(Span::DASHBOARD);
    press(&mut view, &[KeyCode::Char('p')]);
    for i in 0..super::history::HISTORY as u64 + 30 {
        let mut s = snapshots[1].clone();
        s.monotonic_ns += i * 1_000_000_000;
        s.wall_time_ms += i * 1000;
        view.apply(update(&mut window, s, &Settings::default()).expect("update"));
    }
    press(&mut view, &[KeyCode::Char('p')]);
    assert_eq!(view.history.len(), super::history::HISTORY);
}

#[test]
fn carried_over_parts_say_how_old_they_are() {
    let mut snapshots = recording("incidents");
    let last = snapshots.last_mut().expect("a snapshot");
    last.freshness = crate::model::Freshness {
        incremental: true,
        socket_dump_age_ms: 4_000,
        tracked_age_ms: 2_000,
        fd_walk_age_ms: 28_000,
        processes_walked: 3,
    };
    let mut view = live(snapshots);
    let wide = draw(&view, 160, 45);
    assert!(wide.contains("(others: full dump 4s ago)"), "{wide}");
    assert!(wide.contains("· SYN_RECV 2s old"), "{wide}");
    assert!(wide.contains("· owners 28s old"), "{wide}");
    // A second later, everything on screen is a second older.
    view.tick(view.now_ms + 1_000);
    assert!(draw(&view, 160, 45).contains("· owners 29s old"));
    press(&mut view, &[KeyCode::BackTab, KeyCode::Enter]);
    let detail = draw(&view, 160, 45);
    assert!(detail.contains("oldest first (3s old)"), "{detail}");
    // After a full pass nothing is carried over, and nothing says so.
    let full = draw(&live(recording("incidents")), 160, 45);
    assert!(
        !full.contains("s old") && !full.contains("full dump"),
        "{full}"
    );
}

/// Two namespaces, each with a full listener on 127.0.0.1:5000 whose owner cannot be seen
/// (the same address, the same subject text, even the same inode): `incidents.ndjson`'s
/// namespace, and a copy of it whose listener holds 5 of 4 instead of 9 of 8.
fn two_full_listeners_on_one_address() -> Vec<Snapshot> {
    let mut snapshots = recording("incidents");
    for s in &mut snapshots {
        for l in &mut s.netns[0].tcp_listeners {
            l.owners.clear();
        }
        let mut other = s.netns[0].clone();
        other.id = "4026539998".to_owned();
        other.label = "other".to_owned();
        for l in &mut other.tcp_listeners {
            if l.local.port() == 5000 {
                (l.recv_q, l.send_q) = (5, 4);
            }
        }
        s.netns.push(other);
    }
    snapshots
}

#[test]
fn findings_lead_to_their_own_namespace_s_listener() {
    let mut view = live(two_full_listeners_on_one_address());
    let full: Vec<(usize, String)> = view
        .findings
        .rows
        .iter()
        .enumerate()
        .filter_map(|(row, &i)| {
            let f = view.finding(i)?;
            (f.id == "accept-queue-full" && f.subject == "tcp 127.0.0.1:5000")
                .then(|| (row, f.target.netns.clone()))
        })
        .collect();
    let netns: Vec<&str> = full.iter().map(|(_, ns)| ns.as_str()).collect();
    assert_eq!(netns.len(), 2, "one finding per namespace: {full:?}");
    assert_ne!(netns[0], netns[1]);
    for (row, ns) in &full {
        press(&mut view, &[KeyCode::Esc, KeyCode::Esc]);
        while view.findings.selected.index > *row {
            press(&mut view, &[KeyCode::Up]);
        }
        while view.findings.selected.index < *row {
            press(&mut view, &[KeyCode::Down]);
        }
        press(&mut view, &[KeyCode::Enter]);
        let Some(Detail::Finding { key }) = &view.detail else {
            panic!("a finding's details: {:?}", view.detail);
        };
        assert_eq!(&key.1.netns, ns);
        press(&mut view, &[KeyCode::Enter]);
        let Some(Detail::Listener { netns, .. }) = &view.detail else {
            panic!("the listener's details: {:?}", view.detail);
        };
        assert_eq!(
            netns, ns,
            "the finding leads to its own namespace's listener"
        );
        let screen = draw(&view, 160, 45);
        let queue = if ns == "4026539998" { "5/4" } else { "9/8" };
        assert!(
            screen.contains(&format!("queue {queue}")),
            "namespace {ns}'s listener holds {queue}:\n{screen}"
        );
    }
}

/// `K` on the leaking process: the confirmation says how many sockets of which process and
/// what destroying them does; Enter hands the loop exactly that, anything else cancels.
#[test]
fn k_asks_before_destroying_and_enter_confirms() {
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::BackTab]);
    assert_eq!(press(&mut view, &[KeyCode::Char('K')]), Action::None);
    let ask = view.confirm.clone().expect("a confirmation");
    assert_eq!(
        (ask.comm.as_str(), ask.sockets, ask.peer),
        ("leaky", 200, None)
    );
    screens!("kill_confirm", view.clone());
    let small = draw(&view, 80, 24);
    for says in [
        "Destroy 200 CLOSE_WAIT sockets",
        "leaky (pid",
        "its next read or write",
        "Enter",
    ] {
        assert!(small.contains(says), "{says}:\n{small}");
    }
    assert_eq!(
        press(&mut view, &[KeyCode::Enter]),
        Action::Kill(ask),
        "Enter destroys"
    );
    assert!(view.confirm.is_none());
    view.killed("destroyed 200 sockets held by leaky (pid 4527); 0 already gone; 0 failed".into());
    assert!(draw(&view, 80, 24).contains("destroyed 200 sockets held by leaky"));
    press(&mut view, &[KeyCode::Char('?')]);
    assert!(
        draw(&view, 160, 45).contains("K: destroyed 200 sockets held by leaky"),
        "kept in the help's notes"
    );

    let mut view = live(recording("incidents"));
    press(
        &mut view,
        &[KeyCode::BackTab, KeyCode::Char('K'), KeyCode::Char('x')],
    );
    assert!(view.confirm.is_none());
    assert_eq!(
        view.message.as_deref(),
        Some("cancelled: nothing was destroyed")
    );
}

#[test]
fn k_on_a_collision_finding_names_its_peer_and_elsewhere_says_why_not() {
    let mut view = live(recording("incidents"));
    let at = view
        .findings
        .rows
        .iter()
        .position(|&i| {
            view.finding(i)
                .is_some_and(|f| f.id.name() == "ephemeral-port-collision")
        })
        .expect("a collision finding");
    for _ in 0..at {
        press(&mut view, &[KeyCode::Down]);
    }
    press(&mut view, &[KeyCode::Char('K')]);
    let ask: KillAsk = view.confirm.clone().expect("a confirmation");
    assert_eq!(ask.peer, Some("127.0.0.1".parse().expect("ip")));
    assert_eq!(ask.comm, "leaky");

    // A listener is not a process.
    let mut view = live(recording("incidents"));
    press(&mut view, &[KeyCode::Tab, KeyCode::Char('K')]);
    assert!(view.confirm.is_none());
    assert!(
        view.message
            .as_deref()
            .is_some_and(|m| m.contains("select a process"))
    );

    // A recording's sockets are not there to destroy.
    let (mut view, _) = replay(recording("incidents"));
    press(&mut view, &[KeyCode::BackTab, KeyCode::Char('K')]);
    assert!(view.confirm.is_none());
    assert!(
        view.message
            .as_deref()
            .is_some_and(|m| m.contains("--replay")),
        "{:?}",
        view.message
    );
    assert!(draw(&view, 80, 24).contains("not offered with"));

    // Without the capability, the key says so.
    let mut view = live(recording("incidents"));
    view.kill_offer =
        Err("K destroys sockets, which needs CAP_NET_ADMIN: run sockscope as root".into());
    press(&mut view, &[KeyCode::BackTab, KeyCode::Char('K')]);
    assert!(view.confirm.is_none());
    assert!(
        view.message
            .as_deref()
            .is_some_and(|m| m.contains("CAP_NET_ADMIN"))
    );
}

/// `healthy.ndjson` with a UDP receiver on 127.0.0.1:7003, owned by the recording's first
/// process, dropping 50 more datagrams at every snapshot (#13).
fn dropping_udp() -> (Vec<Snapshot>, u32, String) {
    let mut snapshots = recording("healthy");
    let owner = snapshots[0].processes[0].clone();
    for (i, s) in snapshots.iter_mut().enumerate() {
        let drops = 50 * u32::try_from(i + 1).expect("few snapshots");
        s.netns[0].udp_sockets.push(crate::model::UdpSocket {
            family: crate::model::Family::Inet,
            local: "127.0.0.1:7003".parse().expect("addr"),
            peer: None,
            recv_q: 8448,
            rmem_alloc: Some(9216),
            rcvbuf: Some(9216),
            drops: Some(drops),
            inode: 777_001,
            uid: 0,
            owners: vec![owner.pid],
        });
        s.netns[0].udp_socket_count = 1;
    }
    (snapshots, owner.pid, owner.comm)
}

#[test]
fn a_dropping_udp_socket_sits_beside_the_listeners_and_its_finding_opens_in_full() {
    let (snapshots, pid, comm) = dropping_udp();
    let mut view = live(snapshots);
    let wide = draw(&view, 160, 45);
    assert!(wide.contains("udp-receive-drops"), "{wide}");
    let row = wide
        .lines()
        .find(|l| l.contains("127.0.0.1:7003") && !l.contains("udp-receive-drops"))
        .unwrap_or_else(|| panic!("no UDP row among the listeners:\n{wide}"));
    assert!(row.contains(&format!("{comm}({pid})")), "{row}");
    assert!(row.contains("8448/9216") && row.contains("+50/s"), "{row}");
    // The finding comes first (the only one): Enter shows it in full, remedy included.
    press(&mut view, &[KeyCode::Enter]);
    let detail = draw(&view, 160, 45);
    assert!(detail.contains("SO_RCVBUF now"), "{detail}");
}

#[test]
fn the_members_of_a_reuseport_group_stay_together_whatever_the_sort() {
    let mut snapshots = recording("incidents");
    for s in &mut snapshots {
        let template = s.netns[0].tcp_listeners[0].clone();
        let listener = |local: &str, recv_q, inode| crate::model::TcpSocket {
            local: local.parse().expect("addr"),
            recv_q,
            send_q: 16,
            inode,
            drops: Some(0),
            ..template.clone()
        };
        s.netns[0].tcp_listeners.extend([
            listener("127.0.0.1:8081", 17, 900_001),
            listener("127.0.0.1:8081", 0, 900_002),
            listener("127.0.0.1:8090", 8, 900_003),
        ]);
    }
    let mut view = live(snapshots);
    press(&mut view, &[KeyCode::Tab]);
    for _ in 0..ListenerSort::ALL_COUNT * 2 {
        let locals = listener_locals(&view);
        let at = locals
            .iter()
            .position(|l| l == "127.0.0.1:8081")
            .expect("a member listed");
        assert_eq!(
            locals[at + 1],
            "127.0.0.1:8081",
            "{:?}: {locals:?}",
            view.listeners.sort.column
        );
        press(&mut view, &[KeyCode::Char('s')]);
        if view.listeners.sort.column == ListenerSort::Fill {
            press(&mut view, &[KeyCode::Char('S')]);
        }
    }
}

#[test]
fn the_header_shows_a_full_conntrack_table_and_the_pane_its_finding() {
    let mut snapshots = recording("healthy");
    for (at, s) in snapshots.iter_mut().enumerate() {
        let ns = &mut s.netns[0];
        ns.sysctl.nf_conntrack_max = Some(30);
        ns.conntrack = Some(crate::model::Conntrack {
            count: 30,
            drop: if at == 0 { 0 } else { 28 },
            ..crate::model::Conntrack::default()
        });
    }
    let view = live(snapshots);
    let wide = draw(&view, 160, 45);
    assert!(wide.contains("conntrack 30/30"), "{wide}");
    assert!(wide.contains("conntrack-full"), "{wide}");
}
