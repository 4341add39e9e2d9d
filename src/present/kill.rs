//! What `sockscope kill` prints: the selected sockets (a dry run), or what became of each,
//! as text for a person or as the `sockscope.kill.v1` JSON document for a script.
//!
//! Reads only the [`Selection`] and its outcomes; every name from outside (a comm, a
//! namespace's label) is escaped in the text and exact in the JSON.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use crate::analyze::units::format_age;
use crate::model::kill::{Holder, KillFilter, Outcome, Selected, Selection};
use crate::present::escape::escape;

pub const SCHEMA: &str = "sockscope.kill.v1";

/// How many sockets came to each end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub destroyed: usize,
    pub gone: usize,
    pub failed: usize,
}

impl Tally {
    pub fn of(outcomes: &[Outcome]) -> Tally {
        let mut tally = Tally::default();
        for outcome in outcomes {
            match outcome {
                Outcome::Destroyed => tally.destroyed += 1,
                Outcome::Gone => tally.gone += 1,
                Outcome::Failed(_) => tally.failed += 1,
            }
        }
        tally
    }

    /// Every selected socket is destroyed or gone: exit 0.
    pub fn complete(self) -> bool {
        self.failed == 0
    }
}

/// `leaky (pid 812)`, escaped.
pub fn who(selection: &Selection) -> String {
    format!("{} (pid {})", escape(&selection.comm), selection.pid)
}

fn sockets_word(n: usize) -> &'static str {
    if n == 1 { "socket" } else { "sockets" }
}

/// `leaky (pid 812) holds no CLOSE_WAIT TCP socket on port 80 in network namespace host;
/// nothing to destroy`: why `kill` selected nothing, in the filter's own words.
pub fn nothing_selected(filter: &KillFilter, selection: &Selection) -> String {
    let states: Vec<&str> = filter.states.iter().map(|s| s.name()).collect();
    let mut what = format!("{} TCP socket", states.join(" or "));
    if let Some(port) = filter.port {
        let _ = write!(what, " on port {port}");
    }
    if let Some(peer) = filter.peer {
        let _ = match peer.port {
            Some(port) => write!(
                what,
                " with peer {}",
                std::net::SocketAddr::new(peer.ip, port)
            ),
            None => write!(what, " with peer {}", peer.ip),
        };
    }
    let labels: Vec<String> = selection
        .namespaces
        .iter()
        .map(|ns| escape(&ns.label).into_owned())
        .collect();
    let place = if labels.is_empty() {
        "in any network namespace".to_owned()
    } else {
        format!("in network namespace {}", labels.join(", "))
    };
    format!(
        "{} holds no {what} {place}; nothing to destroy",
        who(selection)
    )
}

/// The dashboard's answer when the process it was asked about holds no CLOSE_WAIT socket
/// any more.
pub fn nothing_left_line(selection: &Selection) -> String {
    format!(
        "{} holds no CLOSE_WAIT socket now: nothing destroyed",
        who(selection)
    )
}

/// The last line of a dry run: `would destroy N sockets held by COMM (pid PID)`.
pub fn dry_run_line(selection: &Selection) -> String {
    let n = selection.len();
    format!(
        "would destroy {n} {} held by {}",
        sockets_word(n),
        who(selection)
    )
}

/// The last line of a destroying run.
pub fn result_line(selection: &Selection, tally: Tally) -> String {
    format!(
        "destroyed {} {} held by {}; {} already gone; {} failed",
        tally.destroyed,
        sockets_word(tally.destroyed),
        who(selection),
        tally.gone,
        tally.failed
    )
}

/// The table of selected sockets, with each one's result when `outcomes` are given, then the
/// summary line.
pub fn write_text(
    out: &mut impl Write,
    selection: &Selection,
    outcomes: Option<&[Outcome]>,
) -> io::Result<()> {
    let several = selection.namespaces.len() > 1;
    let rows: Vec<Vec<String>> = selection
        .sockets()
        .enumerate()
        .map(|(i, (ns, s))| {
            let mut row = Vec::new();
            if several {
                row.push(escape(&ns.label).into_owned());
            }
            row.extend(columns(s));
            if let Some(outcomes) = outcomes {
                row.push(outcomes.get(i).map_or_else(String::new, result_word));
            }
            row.push(holders(&s.also_held_by));
            row
        })
        .collect();
    let mut header: Vec<&str> = Vec::new();
    if several {
        header.push("netns");
    }
    header.extend(["local", "peer", "state", "Recv-Q", "age"]);
    if outcomes.is_some() {
        header.push("result");
    }
    header.push("also held by");
    let labels: Vec<String> = selection
        .namespaces
        .iter()
        .map(|ns| escape(&ns.label).into_owned())
        .collect();
    writeln!(
        out,
        "{}: {} selected in network namespace {}",
        who(selection),
        selection.len(),
        labels.join(", ")
    )?;
    write_table(out, &header, &rows)?;
    match outcomes {
        None => {
            writeln!(out, "{}", dry_run_line(selection))?;
            writeln!(
                out,
                "Nothing was destroyed: run it again with --yes to destroy them."
            )?;
        }
        Some(outcomes) => {
            writeln!(out, "{}", result_line(selection, Tally::of(outcomes)))?;
        }
    }
    Ok(())
}

fn columns(s: &Selected) -> [String; 5] {
    [
        s.local.to_string(),
        s.peer.to_string(),
        s.state.name().to_owned(),
        s.recv_q.to_string(),
        s.age_s.map_or_else(|| "-".to_owned(), format_age),
    ]
}

fn result_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Destroyed => "destroyed".to_owned(),
        Outcome::Gone => "gone".to_owned(),
        Outcome::Failed(why) => format!("failed: {}", escape(why)),
    }
}

fn holders(holders: &[Holder]) -> String {
    holders
        .iter()
        .map(|h| format!("{} (pid {})", escape(&h.comm), h.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns padded to their widest cell, numbers right-aligned; the last column unpadded.
fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .chain(std::iter::once(header[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            if i + 1 == cells.len() {
                text.push(' ');
                text.push_str(cell);
            } else if header[i] == "Recv-Q" {
                let _ = write!(text, " {cell:>w$}");
            } else {
                let _ = write!(text, " {cell:<w$}");
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// The `sockscope.kill.v1` document.
#[derive(Debug, Serialize)]
pub struct KillDoc<'a> {
    pub schema: &'static str,
    /// No `--yes`: nothing was destroyed.
    pub dry_run: bool,
    pub pid: u32,
    pub comm: &'a str,
    pub selected: usize,
    /// Null in a dry run.
    pub destroyed: Option<usize>,
    pub gone: Option<usize>,
    pub failed: Option<usize>,
    pub sockets: Vec<SocketDoc<'a>>,
}

#[derive(Debug, Serialize)]
pub struct SocketDoc<'a> {
    pub netns: &'a str,
    pub netns_label: &'a str,
    pub state: &'static str,
    pub local: String,
    pub peer: String,
    pub recv_q: u32,
    pub send_q: u32,
    pub age_s: Option<f64>,
    pub inode: u64,
    pub cookie: u64,
    pub also_held_by: &'a [Holder],
    /// `would-destroy` in a dry run; `destroyed`, `gone` or `failed`.
    pub result: &'static str,
    pub error: Option<&'a str>,
}

impl<'a> KillDoc<'a> {
    pub fn new(selection: &'a Selection, outcomes: Option<&'a [Outcome]>) -> KillDoc<'a> {
        let tally = outcomes.map(Tally::of);
        let sockets = selection
            .sockets()
            .enumerate()
            .map(|(i, (ns, s))| {
                let outcome = outcomes.and_then(|o| o.get(i));
                let (result, error) = match outcome {
                    None => ("would-destroy", None),
                    Some(Outcome::Destroyed) => ("destroyed", None),
                    Some(Outcome::Gone) => ("gone", None),
                    Some(Outcome::Failed(why)) => ("failed", Some(why.as_str())),
                };
                SocketDoc {
                    netns: &ns.id,
                    netns_label: &ns.label,
                    state: s.state.name(),
                    local: s.local.to_string(),
                    peer: s.peer.to_string(),
                    recv_q: s.recv_q,
                    send_q: s.send_q,
                    age_s: s.age_s,
                    inode: s.inode,
                    cookie: s.cookie,
                    also_held_by: &s.also_held_by,
                    result,
                    error,
                }
            })
            .collect();
        KillDoc {
            schema: SCHEMA,
            dry_run: outcomes.is_none(),
            pid: selection.pid,
            comm: &selection.comm,
            selected: selection.len(),
            destroyed: tally.map(|t| t.destroyed),
            gone: tally.map(|t| t.gone),
            failed: tally.map(|t| t.failed),
            sockets,
        }
    }
}

pub fn write_json(out: &mut impl Write, doc: &KillDoc<'_>) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kill::SelectedNetns;
    use crate::model::{Family, TcpState};

    fn selection() -> Selection {
        let socket = |peer: &str, age: Option<f64>, also: Vec<Holder>| Selected {
            family: Family::Inet,
            state: TcpState::CloseWait,
            local: "127.0.0.1:5001".parse().expect("addr"),
            peer: peer.parse().expect("addr"),
            recv_q: 1,
            send_q: 0,
            inode: 10,
            cookie: 99,
            ifindex: 0,
            age_s: age,
            also_held_by: also,
        };
        Selection {
            pid: 812,
            comm: "le\x1b[2Jaky".to_owned(),
            namespaces: vec![SelectedNetns {
                id: "4026531840".to_owned(),
                label: "host".to_owned(),
                sockets: vec![
                    socket("127.0.0.1:40000", Some(75.0), Vec::new()),
                    socket(
                        "127.0.0.1:40001",
                        None,
                        vec![Holder {
                            pid: 813,
                            comm: "worker".to_owned(),
                        }],
                    ),
                ],
            }],
        }
    }

    fn text(outcomes: Option<&[Outcome]>) -> String {
        let mut out = Vec::new();
        write_text(&mut out, &selection(), outcomes).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_dry_run_lists_each_socket_and_what_it_would_do() {
        let text = text(None);
        assert!(!text.contains('\x1b'), "the comm is escaped: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "le\\e[2Jaky (pid 812): 2 selected in network namespace host"
        );
        assert_eq!(
            lines[1],
            "  local          peer            state      Recv-Q age   also held by"
        );
        assert_eq!(
            lines[2],
            "  127.0.0.1:5001 127.0.0.1:40000 CLOSE_WAIT      1 1m15s"
        );
        assert!(lines[3].ends_with("  worker (pid 813)"), "{text}");
        assert_eq!(
            lines[4],
            "would destroy 2 sockets held by le\\e[2Jaky (pid 812)"
        );
    }

    #[test]
    fn a_destroying_run_says_what_became_of_each() {
        let outcomes = [Outcome::Destroyed, Outcome::Gone];
        let text = text(Some(&outcomes));
        assert!(text.contains(" destroyed"), "{text}");
        assert!(text.contains(" gone "), "{text}");
        assert!(
            text.trim_end().ends_with(
                "destroyed 1 socket held by le\\e[2Jaky (pid 812); 1 already gone; 0 failed"
            ),
            "{text}"
        );
        assert!(Tally::of(&outcomes).complete());
        assert!(!Tally::of(&[Outcome::Failed("x".into())]).complete());
    }

    #[test]
    fn the_json_keeps_names_exact_and_counts_results() {
        let sel = selection();
        let outcomes = [Outcome::Destroyed, Outcome::Failed("EINVAL".to_owned())];
        let doc = serde_json::to_value(KillDoc::new(&sel, Some(&outcomes))).expect("json");
        assert_eq!(doc["schema"], "sockscope.kill.v1");
        assert_eq!(doc["comm"], "le\x1b[2Jaky");
        assert_eq!(doc["dry_run"], false);
        assert_eq!(
            (doc["destroyed"].as_u64(), doc["failed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(doc["sockets"][1]["result"], "failed");
        assert_eq!(doc["sockets"][1]["error"], "EINVAL");
        assert_eq!(doc["sockets"][1]["also_held_by"][0]["pid"], 813);
        let dry = serde_json::to_value(KillDoc::new(&sel, None)).expect("json");
        assert_eq!(dry["sockets"][0]["result"], "would-destroy");
        assert!(dry["destroyed"].is_null());
    }
}
