//! Pure parser for `/proc/net/stat/nf_conntrack`: connection tracking's statistics, one row
//! per CPU, in hexadecimal, under one line of names. No I/O here.
//!
//! ```text
//! entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop ...
//! 0000001e  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000012 ...
//! ```
//!
//! `entries` is the namespace's count, repeated on every row; the other columns are per-CPU
//! counters of the namespace, to be summed.

use std::collections::HashMap;
use std::io::{self, BufRead};

use super::parse::ParseError;
use crate::model::{CONNTRACK_PORTS_TOP, ConntrackPort, ConntrackPorts};

/// The counters of `/proc/net/stat/nf_conntrack` that say the table refused connections,
/// summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConntrackStat {
    /// The namespace's entries (`nf_conntrack_count`), from the first row.
    pub entries: u64,
    /// New connections dropped because the table was full and nothing could be evicted.
    pub drop: u64,
    /// Entries evicted to make room for a new one (the table was full).
    pub early_drop: u64,
    /// Entries that could not be inserted (a race between CPUs, or a clash).
    pub insert_failed: u64,
}

/// # Errors
///
/// When the names line lacks `entries` or one of the three counters, or a row is not
/// hexadecimal numbers under those names.
pub fn parse_conntrack_stat(text: &str) -> Result<ConntrackStat, ParseError> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let names: Vec<&str> = lines
        .next()
        .ok_or(ParseError::MissingLine("entries"))?
        .split_whitespace()
        .collect();
    let column = |name: &'static str| {
        names
            .iter()
            .position(|&n| n == name)
            .ok_or(ParseError::MissingField(name))
    };
    let (entries, drop, early_drop, insert_failed) = (
        column("entries")?,
        column("drop")?,
        column("early_drop")?,
        column("insert_failed")?,
    );
    let mut stat = ConntrackStat::default();
    for (index, line) in lines.enumerate() {
        let values: Vec<&str> = line.split_whitespace().collect();
        if values.len() != names.len() {
            return Err(ParseError::CountMismatch {
                line: index + 2,
                section: "nf_conntrack".to_owned(),
                names: names.len(),
                values: values.len(),
            });
        }
        let value = |at: usize| {
            u64::from_str_radix(values[at], 16).map_err(|_| ParseError::NotANumber {
                line: index + 2,
                field: names[at].to_owned(),
                value: values[at].to_owned(),
            })
        };
        if index == 0 {
            stat.entries = value(entries)?;
        }
        stat.drop += value(drop)?;
        stat.early_drop += value(early_drop)?;
        stat.insert_failed += value(insert_failed)?;
    }
    Ok(stat)
}

/// The destination ports of the first `limit` entries of `/proc/net/nf_conntrack`, one line
/// each, counted by protocol and port (the original direction's `dport`):
///
/// ```text
/// ipv4     2 tcp      6 117 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=40000 dport=7000 …
/// ```
///
/// Read a line at a time into one buffer: the file can hold a million entries. Entries
/// without a port (ICMP) are read, not counted. A line that is not an entry is skipped: the
/// file is the kernel's, and one odd line says nothing of the others.
///
/// # Errors
///
/// When the reader fails.
pub fn tally_conntrack_ports(mut text: impl BufRead, limit: u64) -> io::Result<ConntrackPorts> {
    let mut counts: HashMap<(String, u16), u64> = HashMap::new();
    let mut entries_read = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if text.read_line(&mut line)? == 0 {
            return Ok(top(counts, entries_read, true));
        }
        if line.trim().is_empty() {
            continue;
        }
        if entries_read == limit {
            return Ok(top(counts, entries_read, false));
        }
        entries_read += 1;
        let mut fields = line.split_whitespace();
        let Some(proto) = fields.nth(2) else {
            continue;
        };
        let port = fields
            .find_map(|f| f.strip_prefix("dport="))
            .and_then(|p| p.parse::<u16>().ok());
        if let Some(port) = port {
            *counts.entry((proto.to_owned(), port)).or_insert(0) += 1;
        }
    }
}

fn top(counts: HashMap<(String, u16), u64>, entries_read: u64, complete: bool) -> ConntrackPorts {
    let mut busiest: Vec<ConntrackPort> = counts
        .into_iter()
        .map(|((proto, port), entries)| ConntrackPort {
            proto,
            port,
            entries,
        })
        .collect();
    busiest.sort_unstable_by(|a, b| {
        b.entries
            .cmp(&a.entries)
            .then_with(|| (&a.proto, a.port).cmp(&(&b.proto, b.port)))
    });
    busiest.truncate(CONNTRACK_PORTS_TOP);
    ConntrackPorts {
        entries_read,
        complete,
        busiest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proc/nf_conntrack.stat-full"
    ));

    #[test]
    fn drops_are_summed_over_cpus() {
        // 0x12 + 0x0c: the 30 connects that found the table full, on two CPUs.
        assert_eq!(
            parse_conntrack_stat(FULL),
            Ok(ConntrackStat {
                entries: 30,
                drop: 30,
                early_drop: 0,
                insert_failed: 0,
            })
        );
    }

    #[test]
    fn columns_are_found_by_name() {
        let text = "drop insert_failed entries early_drop\n1 2 3 4\na 0 3 1\n";
        assert_eq!(
            parse_conntrack_stat(text),
            Ok(ConntrackStat {
                entries: 3,
                drop: 11,
                early_drop: 5,
                insert_failed: 2,
            })
        );
    }

    const ENTRIES: &str = "\
ipv4     2 tcp      6 117 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=40000 dport=7000 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7000 dport=40000 mark=0 zone=0 use=2
ipv4     2 tcp      6 117 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=40001 dport=7000 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7000 dport=40001 mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.53 sport=5353 dport=53 [UNREPLIED] src=10.0.0.53 dst=10.0.0.1 sport=53 dport=5353 mark=0 zone=0 use=2
ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 zone=0 use=2
ipv6     10 tcp      6 431999 ESTABLISHED src=::1 dst=::1 sport=40002 dport=7000 src=::1 dst=::1 sport=7000 dport=40002 [ASSURED] mark=0 zone=0 use=2
";

    fn port(proto: &str, port: u16, entries: u64) -> ConntrackPort {
        ConntrackPort {
            proto: proto.to_owned(),
            port,
            entries,
        }
    }

    #[test]
    fn entries_are_counted_by_protocol_and_destination_port() {
        assert_eq!(
            tally_conntrack_ports(ENTRIES.as_bytes(), 100).expect("read"),
            ConntrackPorts {
                entries_read: 5,
                complete: true,
                busiest: vec![port("tcp", 7000, 3), port("udp", 53, 1)],
            }
        );
    }

    #[test]
    fn a_namespace_s_entries_as_the_kernel_lists_them() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/nf_conntrack.entries"
        ));
        let ports = tally_conntrack_ports(text.as_bytes(), 20_000).expect("read");
        assert_eq!(ports.entries_read, 4);
        assert_eq!(
            ports.busiest,
            vec![port("tcp", 7000, 3), port("udp", 53, 1)]
        );
    }

    #[test]
    fn at_most_the_limit_is_read_and_the_tally_says_so() {
        let read = tally_conntrack_ports(ENTRIES.as_bytes(), 2).expect("read");
        assert_eq!(read.entries_read, 2);
        assert!(!read.complete);
        assert_eq!(read.busiest, vec![port("tcp", 7000, 2)]);
        let all = tally_conntrack_ports(ENTRIES.as_bytes(), 5).expect("read");
        assert!(all.complete);
        let odd = tally_conntrack_ports(&b"\ngarbage\na b c dport=x\n"[..], 10).expect("read");
        assert_eq!((odd.entries_read, odd.busiest.len()), (2, 0));
    }

    #[test]
    fn broken_text_is_an_error() {
        assert_eq!(
            parse_conntrack_stat(""),
            Err(ParseError::MissingLine("entries"))
        );
        assert_eq!(
            parse_conntrack_stat("entries drop early_drop\n1 2 3\n"),
            Err(ParseError::MissingField("insert_failed"))
        );
        assert!(matches!(
            parse_conntrack_stat("entries drop early_drop insert_failed\n0 1 2\n"),
            Err(ParseError::CountMismatch { line: 2, .. })
        ));
        assert!(matches!(
            parse_conntrack_stat("entries drop early_drop insert_failed\n0 1 x 2\n"),
            Err(ParseError::NotANumber { line: 2, .. })
        ));
    }
}
