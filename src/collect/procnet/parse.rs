//! Pure parsers for the per-namespace files of /proc/net and /proc/sys/net. No I/O here:
//! each parser takes the text of one file and is tested over captured fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::SockStat;

/// Why the text of a /proc file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: expected `Section: …`, found {found:?}")]
    NoSection { line: usize, found: String },
    #[error("line {line}: the names of section {section} have no line of values after them")]
    NoValues { line: usize, section: String },
    #[error("line {line}: section {section} has values under the names of section {names_of}")]
    Unpaired {
        line: usize,
        section: String,
        names_of: String,
    },
    #[error("line {line}: section {section} has {names} names but {values} values")]
    CountMismatch {
        line: usize,
        section: String,
        names: usize,
        values: usize,
    },
    #[error("line {line}: {field} = {value:?} is not a number")]
    NotANumber {
        line: usize,
        field: String,
        value: String,
    },
    #[error("line {line}: section {section} names {field} twice")]
    DuplicateField {
        line: usize,
        section: String,
        field: String,
    },
    #[error("no line starting with {0:?}")]
    MissingLine(&'static str),
    #[error("field {0} is missing")]
    MissingField(&'static str),
    #[error("{0:?} is not what this file holds")]
    Unexpected(String),
}

/// One section of /proc/net/snmp or /proc/net/netstat, by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Every field with a value ≥ 0: counters and gauges.
    pub values: BTreeMap<String, u64>,
    /// Fields printed as negative numbers. The kernel has one: `Tcp: MaxConn`, which
    /// RFC 2012 defines as -1 when the number of connections has no fixed limit (always, on
    /// Linux). Kept apart so that `values` stays unsigned like the model.
    pub negative: BTreeMap<String, i64>,
}

/// The paired-line format of /proc/net/snmp and /proc/net/netstat:
///
/// ```text
/// TcpExt: SyncookiesSent SyncookiesRecv …
/// TcpExt: 0 0 …
/// ```
///
/// Every section is kept (`TcpExt`, `IpExt`, `MPTcpExt`, `Ip`, `Tcp`, `Udp`, …). A header
/// without its values line, a values line for another section, a count of values unlike
/// the count of names, a name given twice, or a value that is not an integer is an error: a
/// file the kernel wrote does not look like that, so nothing from it is trusted.
///
/// # Errors
///
/// [`ParseError`] naming the line, for any of the above.
pub fn parse_snmp(text: &str) -> Result<BTreeMap<String, Section>, ParseError> {
    let mut sections = BTreeMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((at, header)) = lines.next() {
        let header_line = at + 1;
        let (section, names) = split_section(header_line, header)?;
        let Some((at, values_line)) = lines.next() else {
            return Err(ParseError::NoValues {
                line: at + 1,
                section: section.to_owned(),
            });
        };
        let line = at + 1;
        let (values_of, values) = split_section(line, values_line)?;
        if values_of != section {
            return Err(ParseError::Unpaired {
                line,
                section: values_of.to_owned(),
                names_of: section.to_owned(),
            });
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ParseError::CountMismatch {
                line,
                section: section.to_owned(),
                names: names.len(),
                values: values.len(),
            });
        }
        let mut parsed = Section::default();
        for (name, value) in names.into_iter().zip(values) {
            if parsed.values.contains_key(name) || parsed.negative.contains_key(name) {
                return Err(ParseError::DuplicateField {
                    line: header_line,
                    section: section.to_owned(),
                    field: name.to_owned(),
                });
            }
            if let Ok(n) = value.parse::<u64>() {
                parsed.values.insert(name.to_owned(), n);
            } else if let Some(n) = value.parse::<i64>().ok().filter(|n| *n < 0) {
                parsed.negative.insert(name.to_owned(), n);
            } else {
                return Err(ParseError::NotANumber {
                    line,
                    field: format!("{section}.{name}"),
                    value: value.to_owned(),
                });
            }
        }
        sections.insert(section.to_owned(), parsed);
    }
    Ok(sections)
}

/// `Name: rest` into (`Name`, `rest`).
fn split_section(line: usize, text: &str) -> Result<(&str, &str), ParseError> {
    text.split_once(':')
        .filter(|(name, _)| !name.is_empty() && !name.contains(char::is_whitespace))
        .ok_or_else(|| ParseError::NoSection {
            line,
            found: text.to_owned(),
        })
}

/// The `TCP:` line of /proc/net/sockstat:
/// `TCP: inuse 1 orphan 0 tw 0 alloc 1 mem 24`. Keys the kernel may add later are ignored.
///
/// # Errors
///
/// When there is no `TCP:` line, or one of its five fields is missing or not a number.
pub fn parse_sockstat(text: &str) -> Result<SockStat, ParseError> {
    let (line_no, rest) = text
        .lines()
        .enumerate()
        .find_map(|(i, line)| line.strip_prefix("TCP:").map(|rest| (i + 1, rest)))
        .ok_or(ParseError::MissingLine("TCP:"))?;
    let mut fields = BTreeMap::new();
    let mut words = rest.split_whitespace();
    while let Some(key) = words.next() {
        let value = words.next().ok_or(ParseError::NotANumber {
            line: line_no,
            field: format!("TCP.{key}"),
            value: String::new(),
        })?;
        let n = value.parse::<u64>().map_err(|_| ParseError::NotANumber {
            line: line_no,
            field: format!("TCP.{key}"),
            value: value.to_owned(),
        })?;
        fields.insert(key, n);
    }
    let field = |name: &'static str| {
        fields
            .get(name)
            .copied()
            .ok_or(ParseError::MissingField(name))
    };
    Ok(SockStat {
        inuse: field("inuse")?,
        orphan: field("orphan")?,
        tw: field("tw")?,
        alloc: field("alloc")?,
        mem: field("mem")?,
    })
}

/// The `inuse` count of the line starting `prefix` (`UDP:` of /proc/net/sockstat, `TCP6:` or
/// `UDP6:` of /proc/net/sockstat6): the namespace's sockets of that protocol in the
/// kernel's hash tables; `None` when there is no such line.
///
/// # Errors
///
/// When the line's `inuse` is missing or not a number.
pub fn parse_inuse(text: &str, prefix: &'static str) -> Result<Option<u64>, ParseError> {
    let Some((line, rest)) = text
        .lines()
        .enumerate()
        .find_map(|(i, line)| line.strip_prefix(prefix).map(|rest| (i + 1, rest)))
    else {
        return Ok(None);
    };
    let value = rest
        .split_whitespace()
        .skip_while(|w| *w != "inuse")
        .nth(1)
        .ok_or(ParseError::MissingField("inuse"))?;
    value.parse().map(Some).map_err(|_| ParseError::NotANumber {
        line,
        field: format!("{}.inuse", prefix.trim_end_matches(':')),
        value: value.to_owned(),
    })
}

/// The `sockets: used N` line of /proc/net/sockstat: every socket of the namespace that a
/// process made (not the kernel's own), of any family and protocol.
///
/// # Errors
///
/// When there is no such line or N is not a number.
pub fn parse_sockets_used(text: &str) -> Result<u64, ParseError> {
    let (line, rest) = text
        .lines()
        .enumerate()
        .find_map(|(i, line)| {
            line.strip_prefix("sockets: used ")
                .map(|rest| (i + 1, rest))
        })
        .ok_or(ParseError::MissingLine("sockets:"))?;
    let value = rest.trim();
    value.parse().map_err(|_| ParseError::NotANumber {
        line,
        field: "sockets.used".to_owned(),
        value: value.to_owned(),
    })
}

/// The sum of the `sockets` column of /proc/net/protocols: the sockets each protocol counts
/// as its own in the namespace. TCP and UDP count a socket only once it is in one of their
/// hash tables (bound and listening or connected for TCP, bound for UDP).
///
/// # Errors
///
/// When the header has no `sockets` column, or a line has no number in it.
pub fn parse_protocol_sockets(text: &str) -> Result<u64, ParseError> {
    let mut lines = text.lines().enumerate();
    let column = lines
        .next()
        .and_then(|(_, header)| header.split_whitespace().position(|w| w == "sockets"))
        .ok_or(ParseError::MissingField("sockets"))?;
    let mut sum = 0u64;
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let value = line.split_whitespace().nth(column).unwrap_or_default();
        let n: u64 = value.parse().map_err(|_| ParseError::NotANumber {
            line: i + 1,
            field: "sockets".to_owned(),
            value: value.to_owned(),
        })?;
        sum = sum.saturating_add(n);
    }
    Ok(sum)
}

/// A sysctl holding one unsigned integer, e.g. `4096\n`.
///
/// # Errors
///
/// When the text is not one unsigned integer.
pub fn parse_sysctl_u64(text: &str) -> Result<u64, ParseError> {
    let value = text.trim();
    value.parse().map_err(|_| ParseError::NotANumber {
        line: 1,
        field: "value".to_owned(),
        value: value.to_owned(),
    })
}

/// `/proc/net/snmp6`: one `Name value` pair a line. Returns the fields whose name starts
/// with `prefix`, prefix removed (`Udp6RcvbufErrors` read with `Udp6` is `RcvbufErrors`).
///
/// # Errors
///
/// When a line is not a name and an unsigned number.
pub fn parse_snmp6(text: &str, prefix: &str) -> Result<BTreeMap<String, u64>, ParseError> {
    let mut out = BTreeMap::new();
    for (at, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::Unexpected(line.trim().to_owned()));
        };
        let Some(field) = name.strip_prefix(prefix) else {
            continue;
        };
        let n = value.parse().map_err(|_| ParseError::NotANumber {
            line: at + 1,
            field: name.to_owned(),
            value: value.to_owned(),
        })?;
        out.insert(field.to_owned(), n);
    }
    Ok(out)
}

/// `net.ipv4.udp_mem`: three page counts, `18285\t24380\t36570\n`.
///
/// # Errors
///
/// When the text is not three unsigned numbers.
pub fn parse_three(text: &str) -> Result<[u64; 3], ParseError> {
    let mut numbers = text.split_whitespace().map(parse_sysctl_u64);
    match (
        numbers.next(),
        numbers.next(),
        numbers.next(),
        numbers.next(),
    ) {
        (Some(a), Some(b), Some(c), None) => Ok([a?, b?, c?]),
        _ => Err(ParseError::Unexpected(text.trim().to_owned())),
    }
}

/// `net.ipv4.ip_local_port_range`: two ports separated by white space, `32768\t60999\n`.
///
/// # Errors
///
/// When the text is not two ports.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ParseError> {
    let mut ports = text.split_whitespace().map(parse_port);
    match (ports.next(), ports.next(), ports.next()) {
        (Some(lo), Some(hi), None) => Ok((lo?, hi?)),
        _ => Err(ParseError::Unexpected(text.trim().to_owned())),
    }
}

/// `net.ipv4.ip_local_reserved_ports`: empty, or comma-separated ports and inclusive
/// ranges, `8080,9000-9010\n`. Returned as ranges in the file's order (the kernel prints
/// them ascending and merged).
///
/// # Errors
///
/// When an item is not a port or an ascending range of ports.
pub fn parse_reserved_ports(text: &str) -> Result<Vec<(u16, u16)>, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| match item.split_once('-') {
            None => parse_port(item).map(|p| (p, p)),
            Some((lo, hi)) => {
                let range = (parse_port(lo)?, parse_port(hi)?);
                if range.0 <= range.1 {
                    Ok(range)
                } else {
                    Err(ParseError::Unexpected(item.to_owned()))
                }
            }
        })
        .collect()
}

fn parse_port(text: &str) -> Result<u16, ParseError> {
    text.trim().parse().map_err(|_| ParseError::NotANumber {
        line: 1,
        field: "port".to_owned(),
        value: text.to_owned(),
    })
}

/// The IPv4 addresses of this namespace's interfaces, from `/proc/net/fib_trie`: the leaves
/// that carry a `/32 … LOCAL` route, which the kernel adds for every address it owns (even
/// on an interface that is down), in table `local`, or in `main` while the two are merged.
///
/// ```text
///            |-- 192.0.2.2
///               /32 host LOCAL
/// ```
///
/// Wider LOCAL routes are not addresses and are left out: `127.0.0.0/8` (every loopback
/// address is local, but only `127.0.0.1` is listed) and "any IP" routes
/// (`ip route add local 198.51.100.0/24 dev lo`). Sorted, without duplicates (an address
/// appears once per table, and once per interface that holds it).
///
/// # Errors
///
/// When a leaf line does not hold an IPv4 address.
pub fn parse_fib_trie_local(text: &str) -> Result<Vec<Ipv4Addr>, ParseError> {
    let mut addrs = BTreeSet::new();
    let mut leaf = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '|', '+', '-']).trim_end();
        if let Some(route) = line.strip_prefix('/') {
            let mut words = route.split_whitespace();
            let prefix_len = words.next();
            let route_type = words.nth(1);
            if prefix_len == Some("32") && route_type == Some("LOCAL") {
                addrs.extend(leaf);
            }
        } else if line.is_empty() || line.ends_with(':') || line.contains('/') {
            // A table name (`Main:`, `Id 100:`) or an inner node (`10.9.8.0/24 2 0 2`).
            leaf = None;
        } else {
            let addr = line
                .parse::<Ipv4Addr>()
                .map_err(|_| ParseError::NoSection {
                    line: i + 1,
                    found: line.to_owned(),
                })?;
            leaf = Some(addr);
        }
    }
    Ok(addrs.into_iter().collect())
}

/// The IPv6 addresses of this namespace's interfaces, from `/proc/net/if_inet6`: one per
/// line, 32 hex digits, then index, prefix length, scope, flags and device.
///
/// ```text
/// fe8000000000000000fc00fffe000001 04 40 20 80     eth0
/// ```
///
/// Every address is kept, link-local and tentative ones too. Sorted, without duplicates.
///
/// # Errors
///
/// When a line does not start with 32 hex digits.
pub fn parse_if_inet6(text: &str) -> Result<Vec<Ipv6Addr>, ParseError> {
    let mut addrs = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        let bits = (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .ok_or_else(|| ParseError::NotANumber {
                line: i + 1,
                field: "address".to_owned(),
                value: hex.to_owned(),
            })?;
        addrs.insert(Ipv6Addr::from(bits));
    }
    Ok(addrs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/proc/",
                $name
            ))
        };
    }

    const NETSTAT: &str = fixture!("netstat");
    const SNMP: &str = fixture!("snmp");
    const SNMP6: &str = fixture!("snmp6");
    const UDP_MEM: &str = fixture!("udp_mem");

    #[test]
    fn snmp6_gives_the_udp6_fields_without_their_prefix() {
        let udp6 = parse_snmp6(SNMP6, "Udp6").expect("parses");
        for name in [
            "InDatagrams",
            "NoPorts",
            "InErrors",
            "RcvbufErrors",
            "InCsumErrors",
        ] {
            assert!(udp6.contains_key(name), "{name} in {udp6:?}");
        }
        assert!(!udp6.keys().any(|k| k.starts_with("Udp")), "{udp6:?}");
        assert!(
            !udp6.contains_key("InDatagrams6"),
            "UdpLite6 is another prefix"
        );
        assert_eq!(
            parse_snmp6("Udp6RcvbufErrors 7\nUdpLite6InErrors 1\n", "Udp6"),
            Ok(BTreeMap::from([("RcvbufErrors".to_owned(), 7)]))
        );
        assert!(parse_snmp6("Udp6InErrors x\n", "Udp6").is_err());
        assert!(parse_snmp6("Udp6InErrors 1 2\n", "Udp6").is_err());
    }

    #[test]
    fn udp_mem_is_three_page_counts() {
        let [min, pressure, max] = parse_three(UDP_MEM).expect("parses");
        assert!(min <= pressure && pressure <= max);
        assert_eq!(parse_three("1\t2\t3\n"), Ok([1, 2, 3]));
        for bad in ["1 2", "1 2 3 4", "1 x 3"] {
            assert!(parse_three(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn snmp_has_the_udp_section() {
        let sections = parse_snmp(SNMP).expect("parses");
        let udp = &sections["Udp"].values;
        for name in [
            "InErrors",
            "RcvbufErrors",
            "NoPorts",
            "MemErrors",
            "InCsumErrors",
        ] {
            assert!(udp.contains_key(name), "{name}");
        }
    }

    /// The names on the header line of `section` in `text`, counted independently.
    fn header_names(text: &str, section: &str) -> Vec<String> {
        let prefix = format!("{section}:");
        let header = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("section present");
        header[prefix.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn netstat_keeps_every_tcpext_field() {
        let sections = parse_snmp(NETSTAT).expect("fixture parses");
        let tcp_ext = &sections["TcpExt"];
        let names = header_names(NETSTAT, "TcpExt");
        let values_line = NETSTAT.lines().filter(|l| l.starts_with("TcpExt:")).nth(1);
        let values = values_line.expect("values line").split_whitespace().count() - 1;
        assert_eq!(names.len(), values, "the fixture itself pairs up");
        assert_eq!(tcp_ext.values.len(), names.len());
        assert!(names.iter().all(|n| tcp_ext.values.contains_key(n)));
        assert!(tcp_ext.negative.is_empty());
    }

    #[test]
    fn netstat_counters_the_analysis_reads() {
        let sections = parse_snmp(NETSTAT).expect("fixture parses");
        let tcp_ext = &sections["TcpExt"].values;
        for name in [
            "ListenOverflows",
            "ListenDrops",
            "TCPReqQFullDrop",
            "TCPReqQFullDoCookies",
            "SyncookiesSent",
            "SyncookiesRecv",
            "SyncookiesFailed",
            "EmbryonicRsts",
        ] {
            assert!(tcp_ext.contains_key(name), "{name}");
        }
        assert_eq!(tcp_ext["ListenOverflows"], 0);
        assert_eq!(tcp_ext["TW"], 9);
        assert_eq!(tcp_ext["TCPHPAcks"], 230);
        assert_eq!(sections["IpExt"].values["InOctets"], 109_925_771);
        assert!(sections.contains_key("MPTcpExt"));
    }

    #[test]
    fn snmp_tcp_keeps_maxconn_apart() {
        let sections = parse_snmp(SNMP).expect("fixture parses");
        let tcp = &sections["Tcp"];
        assert_eq!(tcp.negative, BTreeMap::from([("MaxConn".to_owned(), -1)]));
        assert_eq!(tcp.values.len() + 1, header_names(SNMP, "Tcp").len());
        assert_eq!(tcp.values["RtoMax"], 120_000);
        assert_eq!(tcp.values["ActiveOpens"], 28);
        assert_eq!(tcp.values["OutRsts"], 32);
        for section in ["Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite"] {
            assert!(sections.contains_key(section), "{section}");
        }
        assert_eq!(sections["IcmpMsg"].values["InType3"], 1);
    }

    #[test]
    fn listen_overflows_of_a_full_accept_queue() {
        let sections = parse_snmp(fixture!("netstat.overflow")).expect("fixture parses");
        let tcp_ext = &sections["TcpExt"].values;
        assert_eq!(tcp_ext["ListenOverflows"], 8);
        assert_eq!(tcp_ext["ListenDrops"], 8);
        assert_eq!(tcp_ext["TCPSynRetrans"], 4);
        assert_eq!(
            tcp_ext.len(),
            header_names(fixture!("netstat.overflow"), "TcpExt").len()
        );
    }

    #[test]
    fn a_listen_overflow_is_read() {
        let text = "TcpExt: ListenOverflows ListenDrops\nTcpExt: 7 9\n";
        let sections = parse_snmp(text).expect("parses");
        assert_eq!(sections["TcpExt"].values["ListenOverflows"], 7);
        assert_eq!(sections["TcpExt"].values["ListenDrops"], 9);
    }

    #[test]
    fn counters_beyond_i64_are_kept() {
        let sections = parse_snmp("IpExt: InOctets\nIpExt: 18446744073709551615\n").expect("ok");
        assert_eq!(sections["IpExt"].values["InOctets"], u64::MAX);
    }

    #[test]
    fn malformed_snmp_files_are_errors() {
        let cases = [
            ("TcpExt: A B\nTcpExt: 1\n", "2 names but 1 values"),
            ("TcpExt: A B\nTcpExt: 1 2 3\n", "2 names but 3 values"),
            ("TcpExt: A B\nTcpExt: 1 x\n", "TcpExt.B"),
            ("TcpExt: A\nTcpExt: 1.5\n", "not a number"),
            ("TcpExt: A B\n", "no line of values"),
            ("TcpExt: A\nIpExt: 1\n", "under the names of section TcpExt"),
            ("garbage\n", "expected `Section: …`"),
            (": A\n: 1\n", "expected `Section: …`"),
            // Found by the `proc_netstat` fuzz target: one name, a counter and a negative.
            (
                "\nTcpExt: A B A\nTcpExt: 1 2 -3\n",
                "line 2: section TcpExt names A twice",
            ),
        ];
        for (text, says) in cases {
            let err = parse_snmp(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let truncated = &NETSTAT[..NETSTAT.len() / 3];
        assert!(parse_snmp(truncated).is_err(), "a file cut mid-line");
    }

    #[test]
    fn empty_snmp_file_has_no_sections() {
        assert_eq!(parse_snmp(""), Ok(BTreeMap::new()));
    }

    #[test]
    fn sockstat_tcp_line() {
        let stat = parse_sockstat(fixture!("sockstat")).expect("fixture parses");
        assert_eq!(
            stat,
            SockStat {
                inuse: 1,
                orphan: 0,
                tw: 0,
                alloc: 1,
                mem: 24
            }
        );
        let later = "TCP: inuse 5 orphan 2 tw 3 alloc 8 mem 1 future 9\n";
        assert_eq!(
            parse_sockstat(later),
            Ok(SockStat {
                inuse: 5,
                orphan: 2,
                tw: 3,
                alloc: 8,
                mem: 1
            })
        );
    }

    #[test]
    fn sockets_used_and_counted_by_protocol() {
        assert_eq!(parse_sockets_used(fixture!("sockstat")), Ok(16));
        assert_eq!(
            parse_sockets_used("TCP: inuse 1\n"),
            Err(ParseError::MissingLine("sockets:"))
        );
        assert!(parse_sockets_used("sockets: used many\n").is_err());
        // A fresh namespace, with nothing in it.
        assert_eq!(parse_protocol_sockets(fixture!("protocols")), Ok(0));
        let two = "protocol  size sockets  memory press\nTCP 2560 1 -1 no\nUNIX 1024 1 -1 NI\n";
        assert_eq!(parse_protocol_sockets(two), Ok(2));
        assert_eq!(
            parse_protocol_sockets("protocol size\nTCP 2560\n"),
            Err(ParseError::MissingField("sockets"))
        );
        assert!(parse_protocol_sockets("protocol size sockets\nTCP 2560\n").is_err());
    }

    #[test]
    fn broken_sockstat_is_an_error() {
        assert_eq!(
            parse_sockstat("sockets: used 3\n"),
            Err(ParseError::MissingLine("TCP:"))
        );
        assert_eq!(
            parse_sockstat("TCP: inuse 1 orphan 0 tw 0 alloc 1\n"),
            Err(ParseError::MissingField("mem"))
        );
        assert!(parse_sockstat("TCP: inuse x orphan 0 tw 0 alloc 1 mem 2\n").is_err());
        assert!(parse_sockstat("TCP: inuse 1 orphan\n").is_err());
        // sockstat6's line is `TCP6:`, which is not this one.
        assert_eq!(
            parse_sockstat("TCP6: inuse 1\n"),
            Err(ParseError::MissingLine("TCP:"))
        );
    }

    #[test]
    fn sysctl_values() {
        assert_eq!(parse_sysctl_u64("4096\n"), Ok(4096));
        assert!(parse_sysctl_u64("").is_err());
        assert!(parse_sysctl_u64("-1\n").is_err());
        assert_eq!(parse_port_range("32768\t60999\n"), Ok((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Ok((1024, 65535)));
        for bad in ["32768\n", "32768 60999 1\n", "32768 65536\n", "a b\n"] {
            assert!(parse_port_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_ports() {
        assert_eq!(parse_reserved_ports("\n"), Ok(vec![]));
        assert_eq!(parse_reserved_ports(""), Ok(vec![]));
        assert_eq!(parse_reserved_ports("8080\n"), Ok(vec![(8080, 8080)]));
        assert_eq!(
            parse_reserved_ports("8080,9000-9010\n"),
            Ok(vec![(8080, 8080), (9000, 9010)])
        );
        for bad in ["8080,\n", "9010-9000\n", "x\n", "1-2-3\n", "70000\n"] {
            assert!(parse_reserved_ports(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fib_trie_of_the_host() {
        let addrs = parse_fib_trie_local(fixture!("fib_trie")).expect("fixture parses");
        assert_eq!(addrs, [Ipv4Addr::LOCALHOST, Ipv4Addr::new(192, 0, 2, 2)]);
    }

    #[test]
    fn fib_trie_of_a_namespace_with_only_lo() {
        let addrs = parse_fib_trie_local(fixture!("fib_trie.netns-lo")).expect("parses");
        assert_eq!(addrs, [Ipv4Addr::LOCALHOST]);
        assert_eq!(
            parse_fib_trie_local(""),
            Ok(vec![]),
            "lo down: an empty file"
        );
    }

    #[test]
    fn fib_trie_with_shared_and_anyip_addresses() {
        let addrs = parse_fib_trie_local(fixture!("fib_trie.netns-multi")).expect("parses");
        assert_eq!(
            addrs,
            [
                Ipv4Addr::new(10, 9, 8, 7),
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::new(127, 0, 0, 5)
            ]
        );
    }

    #[test]
    fn fib_trie_garbage_is_an_error() {
        assert!(
            parse_fib_trie_local("Main:\n  |-- not-an-address\n     /32 host LOCAL\n").is_err()
        );
    }

    #[test]
    fn if_inet6_addresses() {
        let host = parse_if_inet6(fixture!("if_inet6")).expect("fixture parses");
        let expected: [Ipv6Addr; 3] = [
            Ipv6Addr::LOCALHOST,
            "fd00::2".parse().expect("addr"),
            "fe80::fc:ff:fe00:1".parse().expect("addr"),
        ];
        assert_eq!(host, expected);
        let lo = parse_if_inet6(fixture!("if_inet6.netns-lo")).expect("parses");
        assert_eq!(lo, [Ipv6Addr::LOCALHOST]);
        let multi = parse_if_inet6(fixture!("if_inet6.netns-multi")).expect("parses");
        assert_eq!(multi.len(), 4);
        assert!(
            multi.contains(&"2001:db8::7".parse().expect("addr")),
            "tentative is kept"
        );
        assert_eq!(parse_if_inet6(""), Ok(vec![]));
        assert!(parse_if_inet6("fe80 04 40 20 80 eth0\n").is_err());
        assert!(parse_if_inet6("zz000000000000000000000000000001 01 80 10 80 lo\n").is_err());
    }
}
