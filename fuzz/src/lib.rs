//! The bodies of sockscope's fuzz targets, and their seed corpora.
//!
//! Each target feeds bytes to one of the parsers that read untrusted input — sock_diag
//! replies, /proc text, a recording file, a config file — the way the collector or a face
//! calls it, and checks what must hold of any answer (the parsers may refuse, never panic
//! or lie). The bodies live here rather than in `fuzz_targets/` so that `tests/corpus.rs`
//! can run them over the seeds and the saved crash inputs on a stable toolchain, without
//! cargo-fuzz.
//!
//! Seeds are cut from the real captures under `tests/fixtures/` (see [`seeds`]); nothing
//! here opens a socket or reads /proc.

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use sockscope::analyze::{self, Settings};
use sockscope::collect::acceptors::parse as tasks;
use sockscope::collect::netlink::{
    InetSock, ReplyError, StateMask, parse_datagram, parse_inet_msg, parse_tcp_info, parse_unix_msg,
};
use sockscope::collect::{procnet, procs};
use sockscope::config;
use sockscope::model::{Family, TcpState};
use sockscope::present::{check, escape as escaper, json, text};
use sockscope::recording;

/// A target's body: any bytes in, a panic when something that must hold does not.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz knows it by.
pub const TARGETS: &[(&str, Target)] = &[
    ("netlink_inet", netlink_inet),
    ("netlink_unix", netlink_unix),
    ("tcp_info", tcp_info),
    ("proc_netstat", proc_netstat),
    ("proc_limits", proc_limits),
    ("proc_stat", proc_stat),
    ("proc_task", proc_task),
    ("proc_net", proc_net),
    ("recording", recording),
    ("recording_values", recording_values),
    ("config", config),
    ("escape", escape),
];

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDR: usize = 16;
/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK`: the type of the replies to the older, both-families TCP request.
const TCPDIAG_GETSOCK: u16 = 18;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG: usize = 72;
/// `INET_DIAG_INFO`: the `struct tcp_info` attribute.
const INET_DIAG_INFO: u16 = 2;

/// The sequence number and port id of the datagram's first header, so that any input is a
/// reply to "its own" request and the fuzzer gets past the checks that guard the payloads.
fn addressed_to(data: &[u8]) -> (u32, u32) {
    let word = |at: usize| {
        data.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    (word(8), word(12))
}

/// Walk a datagram as the dump loop does, decoding each socket message with `decode`.
fn walk_datagram(data: &[u8], mut decode: impl FnMut(&[u8]) -> Result<(), ReplyError>) {
    let (seq, pid) = addressed_to(data);
    let mut handed = 0;
    if let Ok(progress) = parse_datagram(data, seq, pid, |payload| {
        handed += 1;
        assert!(payload.len() <= data.len() - NLMSG_HDR);
        decode(payload)
    }) {
        assert_eq!(progress.messages, handed, "every message counted once");
    }
}

fn check_inet(sock: &InetSock, payload: &[u8], asked: StateMask) {
    match sock.family {
        Family::Inet => assert!(sock.local.is_ipv4() && sock.peer.is_ipv4()),
        Family::Inet6 => assert!(sock.local.is_ipv6() && sock.peer.is_ipv6()),
    }
    // The raw state 7 (TCP_CLOSE) is a bound-inactive socket exactly when that was asked for.
    if payload[1] == 7 {
        let expected = if asked.has_bound_inactive() {
            TcpState::BoundInactive
        } else {
            TcpState::Close
        };
        assert_eq!(sock.state, expected);
    }
}

/// A sock_diag reply datagram for TCP sockets: the framing, then every `inet_diag_msg` and
/// its attributes (`tcp_info`, `skmeminfo`), decoded as under a dump that asked for every
/// state and as under one that asked for LISTEN only.
pub fn netlink_inet(data: &[u8]) {
    for asked in [StateMask::ALL, StateMask::only(&[TcpState::Listen])] {
        walk_datagram(data, |payload| {
            let sock = parse_inet_msg(payload, asked)?;
            check_inet(&sock, payload, asked);
            Ok(())
        });
    }
}

/// A sock_diag reply datagram for unix sockets: the framing, then every `unix_diag_msg` and
/// its attributes (name, peer, queue lengths, uid).
pub fn netlink_unix(data: &[u8]) {
    walk_datagram(data, |payload| {
        let sock = parse_unix_msg(payload)?;
        if let Some(path) = &sock.path {
            assert!(!path.contains('\0'), "names are shown without NULs");
        }
        Ok(())
    });
}

/// `struct tcp_info` of any length: a field is present exactly when its bytes are.
pub fn tcp_info(data: &[u8]) {
    let info = parse_tcp_info(data);
    let has = |end: usize| data.len() >= end;
    assert_eq!(info.state.is_some(), has(1));
    assert_eq!(info.backoff.is_some(), has(5));
    assert_eq!(info.rto.is_some(), has(12));
    assert_eq!(info.last_ack_recv.is_some(), has(60));
    assert_eq!(info.total_retrans.is_some(), has(104));
    assert_eq!(info.bytes_received.is_some(), has(136));
    assert_eq!(info.min_rtt.is_some(), has(152));
}

/// Text the kernel is expected to write; invalid UTF-8 is read lossily so the fuzzer's
/// bytes still reach the parser.
fn text_of(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// The escaper of names from outside: what it writes holds no control character and no
/// bidirectional control, and reads back to the input, so two names never print the same.
pub fn escape(data: &[u8]) {
    let shown = escaper::escape_bytes(data);
    let bidi = |c: char| {
        matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        ) || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    assert!(
        !shown.chars().any(|c| c.is_control() || bidi(c)),
        "{shown:?} holds a control character"
    );
    assert_eq!(
        escaper::unescape(&shown).as_deref(),
        Some(data),
        "{shown:?}"
    );
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(escaper::escape(text), shown);
    }
}

/// `/proc/net/netstat` and `/proc/net/snmp` (the same paired-line format).
pub fn proc_netstat(data: &[u8]) {
    if let Ok(sections) = procnet::parse::parse_snmp(&text_of(data)) {
        for (name, section) in &sections {
            assert!(!name.is_empty() && !name.contains(char::is_whitespace));
            assert!(section.negative.values().all(|n| *n < 0));
            assert!(
                section
                    .values
                    .keys()
                    .all(|k| !section.negative.contains_key(k))
            );
        }
    }
}

/// `/proc/PID/limits` (`RLIMIT_NOFILE`), and the other per-process text the walk decodes:
/// a `/proc` entry name as a pid, an fd link target as a socket inode.
pub fn proc_limits(data: &[u8]) {
    let _ = procs::parse_nofile_limit(&text_of(data));
    if procs::parse_pid(data).is_some() {
        assert!(data.iter().all(u8::is_ascii_digit));
    }
    if let Some(inode) = procs::parse_socket_link(data) {
        let digits = &data[b"socket:[".len()..data.len() - 1];
        assert!(digits.iter().all(u8::is_ascii_digit));
        assert_eq!(
            inode.to_string().trim_start_matches('0'),
            String::from_utf8_lossy(digits).trim_start_matches('0')
        );
    }
}

/// A thread's `/proc/PID/task/TID/{stat,syscall,wchan}` and an epoll descriptor's `fdinfo`:
/// every parser of the acceptors' reader, on the same bytes.
pub fn proc_task(data: &[u8]) {
    if let Ok(stat) = tasks::parse_task_stat(data) {
        // The name is what lies between the outer parentheses, whatever it holds.
        let open = data
            .iter()
            .position(|&b| b == b'(')
            .expect("an opening parenthesis");
        let close = data
            .iter()
            .rposition(|&b| b == b')')
            .expect("a closing parenthesis");
        assert_eq!(stat.comm, String::from_utf8_lossy(&data[open + 1..close]));
    }
    if let Ok(call) = tasks::parse_syscall(data, &tasks::native()) {
        // Only these decode from text that is not a number line.
        let text = String::from_utf8_lossy(data);
        let first = text.split(' ').next().unwrap_or("").trim_end();
        assert!(
            first == "running" || first.parse::<i64>().is_ok(),
            "{call:?} from {first:?}"
        );
    }
    let _ = tasks::parse_epoll_targets(&String::from_utf8_lossy(data));
    if let Some(name) = tasks::parse_wchan(data) {
        assert!(!name.is_empty() && name != "0");
    }
}

/// `/proc/PID/stat`: the name between the first `(` and the last `)`, then the fields after.
pub fn proc_stat(data: &[u8]) {
    if let Ok(stat) = procs::parse_stat(data) {
        // The name is what lies between the outer parentheses, whatever it holds.
        let open = data
            .iter()
            .position(|&b| b == b'(')
            .expect("an opening parenthesis");
        let close = data
            .iter()
            .rposition(|&b| b == b')')
            .expect("a closing parenthesis");
        assert_eq!(stat.comm, String::from_utf8_lossy(&data[open + 1..close]));
        assert!(stat.state.is_ascii_graphic() || !stat.state.is_ascii());
    }
}

/// The other per-namespace files: `/proc/net/sockstat`, `fib_trie`, `if_inet6`,
/// `stat/nf_conntrack` and `nf_conntrack`, and the sysctls (one number, the port range, the reserved ports).
/// Every input goes to each.
pub fn proc_net(data: &[u8]) {
    use procnet::parse::{
        parse_fib_trie_local, parse_if_inet6, parse_port_range, parse_reserved_ports,
        parse_sockstat, parse_sysctl_u64,
    };
    let text = text_of(data);
    let _ = parse_sockstat(&text);
    let _ = procnet::conntrack::parse_conntrack_stat(&text);
    if let Ok(ports) = procnet::conntrack::tally_conntrack_ports(data, 100) {
        assert!(ports.entries_read <= 100);
        assert!(ports.busiest.windows(2).all(|w| w[0].entries >= w[1].entries));
    }
    if let Ok(addrs) = parse_fib_trie_local(&text) {
        assert!(addrs.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    }
    if let Ok(addrs) = parse_if_inet6(&text) {
        assert!(addrs.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    }
    let _ = parse_sysctl_u64(&text);
    let _ = parse_port_range(&text);
    if let Ok(ranges) = parse_reserved_ports(&text) {
        assert!(ranges.iter().all(|(lo, hi)| lo <= hi));
    }
}

/// A recording, as `report --replay` and `check --replay` read it: then the whole window and
/// its newest snapshot alone are analysed and rendered by every face that takes a replay.
pub fn recording(data: &[u8]) {
    let Ok(recording) = recording::read(Cursor::new(data)) else {
        return;
    };
    assert!(!recording.snapshots.is_empty());
    let interval = Duration::from_millis(recording.header.interval_ms);
    let settings = Settings::default();
    let newest = recording.snapshots.len() - 1;
    for window in [&recording.snapshots[..], &recording.snapshots[newest..]] {
        let Some(analysis) = analyze::analyze(window, &settings) else {
            panic!("a non-empty window is always analysed");
        };
        let mut out = Vec::new();
        text::write(&mut out, &analysis).expect("writing to memory");
        json::write(&mut out, &json::ReportDoc::new(&analysis, interval)).expect("to memory");
        let result = check::CheckResult::new(&analysis, &settings.thresholds);
        check::write_text(&mut out, &result).expect("writing to memory");
        check::write_json(&mut out, &result).expect("writing to memory");
    }
}

/// The real recordings, one value per line, parsed once.
fn real_recordings() -> &'static [Vec<serde_json::Value>] {
    static PARSED: OnceLock<Vec<Vec<serde_json::Value>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        [
            &include_bytes!("../../tests/fixtures/recordings/incidents.ndjson")[..],
            &include_bytes!("../../tests/fixtures/recordings/healthy.ndjson")[..],
        ]
        .iter()
        .map(|text| {
            text.split(|&b| b == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| serde_json::from_slice(line).expect("a recording line"))
                .collect()
        })
        .collect()
    })
}

/// How many numbers a JSON value holds.
fn count_numbers(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Number(_) => 1,
        serde_json::Value::Array(items) => items.iter().map(count_numbers).sum(),
        serde_json::Value::Object(map) => map.values().map(count_numbers).sum(),
        _ => 0,
    }
}

/// The number at `*skip` in document order (counting down `skip` on the way).
fn nth_number<'a>(
    value: &'a mut serde_json::Value,
    skip: &mut usize,
) -> Option<&'a mut serde_json::Value> {
    match value {
        serde_json::Value::Number(_) if *skip == 0 => Some(value),
        serde_json::Value::Number(_) => {
            *skip -= 1;
            None
        }
        serde_json::Value::Array(items) => items.iter_mut().find_map(|v| nth_number(v, skip)),
        serde_json::Value::Object(map) => map.values_mut().find_map(|v| nth_number(v, skip)),
        _ => None,
    }
}

/// A real recording whose numbers the input rewrites: the analysis and every face over
/// snapshots a JSON-level mutation would rarely reach — counters that go backwards, clocks
/// that stand still, limits of 0, queues of `u32::MAX`, port ranges upside down.
///
/// The input is read as 11-byte edits: which recording (1 byte), which number (a `u16`,
/// modulo their count), how to rewrite it (1 byte) and a raw `u64`.
pub fn recording_values(data: &[u8]) {
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let recordings = real_recordings();
    let mut lines = recordings[usize::from(which) % recordings.len()].clone();
    let total: usize = lines.iter().map(count_numbers).sum();
    for edit in edits.chunks_exact(11) {
        let mut skip = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % total;
        let raw = u64::from_le_bytes(edit[3..11].try_into().expect("8 bytes"));
        let new: serde_json::Value = match edit[2] % 8 {
            0 => 0.into(),
            1 => 1.into(),
            2 => u32::MAX.into(),
            3 => u64::MAX.into(),
            4 => (raw % 1000).into(),
            5 => (raw % 65536).into(),
            6 => raw.into(),
            _ => (-i64::try_from(raw % 1000).expect("small")).into(),
        };
        if let Some(leaf) = lines
            .iter_mut()
            .find_map(|line| nth_number(line, &mut skip))
        {
            *leaf = new;
        }
    }
    let mut text = Vec::new();
    for line in &lines {
        serde_json::to_writer(&mut text, line).expect("to memory");
        text.push(b'\n');
    }
    recording(&text);
}

/// A config file (`--config FILE`): TOML, then the thresholds' validation.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        // `--config` reads the file with `read_to_string`: not UTF-8 is an error before TOML.
        return;
    };
    if let Ok(settings) = config::parse_config_text("fuzz.toml", text) {
        assert!(settings.thresholds.validate().is_ok());
    }
}

/// The seed corpus of `target`, cut from the captures under `fixtures` (the project's
/// `tests/fixtures`) and `assets`: `(name, bytes)` pairs.
///
/// # Panics
///
/// When a fixture is missing or not in its documented format.
// One arm per target, side by side, reads better than the same split over helpers.
#[allow(clippy::too_many_lines)]
pub fn seeds(target: &str, fixtures: &Path, assets: &Path) -> Vec<(String, Vec<u8>)> {
    let read = |rel: &str| {
        std::fs::read(fixtures.join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
    };
    let mut out = Vec::new();
    let datagram_seeds = |files: &[&str], out: &mut Vec<(String, Vec<u8>)>| {
        for file in files {
            for (i, dgram) in datagrams(&read(&format!("netlink/{file}.bin")))
                .into_iter()
                .enumerate()
            {
                out.push((format!("{file}.{i}"), dgram));
            }
        }
    };
    match target {
        "netlink_inet" => {
            datagram_seeds(
                &[
                    "tcp4_listen_skmeminfo",
                    "tcp4_all",
                    "tcp4_close_wait_info",
                    "tcp6_all",
                    "tcp4_many",
                    "error_enoent",
                    "done_enoent",
                    "done_empty",
                ],
                &mut out,
            );
            // Replies to a TCPDIAG_GETSOCK request carry that message type instead (the
            // payloads are the same `inet_diag_msg`): derived from the captures above.
            for file in ["tcp4_all", "tcp6_all", "tcp4_close_wait_info"] {
                for (i, mut dgram) in datagrams(&read(&format!("netlink/{file}.bin")))
                    .into_iter()
                    .enumerate()
                {
                    retype_messages(&mut dgram, SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK);
                    out.push((format!("{file}.compat.{i}"), dgram));
                }
            }
        }
        "netlink_unix" => datagram_seeds(&["unix_all", "done_empty"], &mut out),
        "proc_task" => {
            for file in [
                "task.stat-thread",
                "task.syscall-epoll",
                "task.syscall-accept",
                "task.syscall-stopped",
                "task.fdinfo-epoll",
                "task.wchan-epoll",
                "stat.odd-comm",
            ] {
                out.push((file.to_owned(), read(&format!("proc/{file}"))));
            }
            out.push(("syscall-running".to_owned(), b"running\n".to_vec()));
            out.push(("syscall-none".to_owned(), b"-1 0x7ffd 0x55d0\n".to_vec()));
        }
        "proc_stat" => {
            for file in ["stat", "stat.kthreadd", "stat.odd-comm"] {
                out.push((file.to_owned(), read(&format!("proc/{file}"))));
            }
        }
        "tcp_info" => {
            for file in ["tcp4_close_wait_info", "tcp6_all"] {
                let mut n = 0;
                for dgram in datagrams(&read(&format!("netlink/{file}.bin"))) {
                    for info in tcp_infos(&dgram) {
                        // The whole struct, and the prefixes older kernels send (2.6.x: 104,
                        // 4.1: 120, 4.6: 160, 5.4: 232 bytes).
                        for len in [info.len(), 104, 120, 160, 232] {
                            if len <= info.len() {
                                out.push((format!("{file}.{n}.{len}"), info[..len].to_vec()));
                            }
                        }
                        n += 1;
                    }
                }
            }
        }
        "proc_netstat" => {
            for file in ["netstat", "netstat.overflow", "snmp"] {
                out.push((file.to_owned(), read(&format!("proc/{file}"))));
            }
        }
        "proc_limits" => {
            out.push(("limits".to_owned(), read("proc/limits")));
            // What the walk decodes besides: a pid directory name, fd link targets.
            out.push(("pid".to_owned(), b"4194304".to_vec()));
            out.push(("socket-link".to_owned(), b"socket:[123456]".to_vec()));
            out.push(("pipe-link".to_owned(), b"pipe:[98765]".to_vec()));
        }
        "proc_net" => {
            for file in [
                "sockstat",
                "fib_trie",
                "fib_trie.netns-lo",
                "fib_trie.netns-multi",
                "if_inet6",
                "if_inet6.netns-lo",
                "if_inet6.netns-multi",
                "nf_conntrack.stat-full",
                "nf_conntrack.entries",
            ] {
                out.push((file.to_owned(), read(&format!("proc/{file}"))));
            }
            // The sysctls as the kernel prints them (`cat /proc/sys/net/...`).
            out.push(("somaxconn".to_owned(), b"4096\n".to_vec()));
            out.push(("ip_local_port_range".to_owned(), b"32768\t60999\n".to_vec()));
            out.push((
                "ip_local_reserved_ports".to_owned(),
                b"8080,9000-9010\n".to_vec(),
            ));
        }
        "recording" => {
            for file in ["healthy", "incidents"] {
                let whole = read(&format!("recordings/{file}.ndjson"));
                let lines: Vec<&[u8]> = whole.split_inclusive(|&b| b == b'\n').collect();
                // Each snapshot alone after the header, as `record --count 1` writes it.
                for (i, snapshot) in lines.iter().enumerate().skip(1) {
                    out.push((format!("{file}.{i}"), [lines[0], snapshot].concat()));
                }
                out.push((file.to_owned(), whole));
            }
        }
        "recording_values" => {
            // Each recording untouched, then with a few numbers rewritten (see the target).
            out.push(("incidents".to_owned(), vec![0]));
            out.push(("healthy".to_owned(), vec![1]));
            let mut edits = vec![0];
            for (at, how) in [(7u16, 3u8), (400, 0), (1200, 2), (2500, 7)] {
                edits.extend_from_slice(&at.to_le_bytes());
                edits.push(how);
                edits.extend_from_slice(&12_345u64.to_le_bytes());
            }
            out.push(("incidents.edited".to_owned(), edits));
        }
        "config" => {
            out.push((
                "sockscope.toml".to_owned(),
                std::fs::read(assets.join("sockscope.toml")).expect("assets/sockscope.toml"),
            ));
            out.push((
                "ignore".to_owned(),
                b"[ignore]\nids = [\"accept-queue-high\"]\nports = [8080]\n".to_vec(),
            ));
        }
        "escape" => {
            // A comm as odd as the kernel lets it be (the proc_stat fixture), and the hostile
            // names of the terminal-escape issue, written by hand: a screen clear, a title, a
            // bell, line breaks, a right-to-left override, C1 controls, invalid UTF-8, and
            // backslashes that look like escape forms.
            out.push(("stat.odd-comm".to_owned(), read("proc/stat.odd-comm")));
            for (name, bytes) in [
                ("hostile-comm", &b"\x1b[2J\x1b]0;t\x07x\n\xe2\x80\xae"[..]),
                ("hostile-path", b"@hostile \x1b[31m\n\rFAKE LINE"),
                ("c1", b"a\xc2\x85b\xc2\x9bc"),
                ("invalid", b"a\xffb\xc3"),
                ("backslashes", b"\\e\\\\x41\\u{202e}\\"),
            ] {
                out.push((name.to_owned(), bytes.to_vec()));
            }
        }
        other => panic!("no target {other}"),
    }
    out
}

/// The datagrams of a capture file: each is preceded by its length, a little-endian `u32`
/// (see `tests/fixtures/netlink/README.md`).
///
/// # Panics
///
/// When a length runs past the end of the file.
pub fn datagrams(file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = file;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        assert!(
            len <= tail.len(),
            "a datagram runs past the end of its file"
        );
        let (dgram, tail) = tail.split_at(len);
        out.push(dgram.to_vec());
        rest = tail;
    }
    out
}

/// Give every message of type `from` in a datagram the type `to`.
fn retype_messages(dgram: &mut [u8], from: u16, to: u16) {
    let mut at = 0;
    while at + NLMSG_HDR <= dgram.len() {
        let len = u32::from_ne_bytes([dgram[at], dgram[at + 1], dgram[at + 2], dgram[at + 3]]);
        let kind = u16::from_ne_bytes([dgram[at + 4], dgram[at + 5]]);
        if kind == from {
            dgram[at + 4..at + 6].copy_from_slice(&to.to_ne_bytes());
        }
        let len = (len as usize).max(NLMSG_HDR);
        at += len.next_multiple_of(4);
    }
}

/// The `INET_DIAG_INFO` payloads of a reply datagram's socket messages.
fn tcp_infos(dgram: &[u8]) -> Vec<Vec<u8>> {
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
    let mut out = Vec::new();
    let mut rest = dgram;
    while rest.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        if u16_at(msg, 4) == SOCK_DIAG_BY_FAMILY {
            let mut attrs = &msg[(NLMSG_HDR + INET_DIAG_MSG).min(msg.len())..];
            while attrs.len() >= 4 {
                let alen = usize::from(u16_at(attrs, 0)).clamp(4, attrs.len());
                if u16_at(attrs, 2) & 0x3fff == INET_DIAG_INFO {
                    out.push(attrs[4..alen].to_vec());
                }
                attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
            }
        }
        rest = &tail[(len.next_multiple_of(4) - len).min(tail.len())..];
    }
    out
}
