//! The thresholds every rule reads, each defined once: a row of the table below gives its
//! name, unit, default, the finding it tunes, its help, its description and, for a warning,
//! the critical it must not pass.
//!
//! Everything else comes from the rows: the [`Thresholds`] struct and its defaults, the
//! validation, the `[thresholds]` keys of a config file (the row's name, read through serde
//! here), the flags (`--` and the name in kebab case: [`crate::cli`]), and the example config
//! and the Prometheus alerting rules ([`crate::generate`]). A new threshold is a new row; its
//! unit decides its Rust type, how it is read (`80`, `65536`, `2m`), shown and checked.
//!
//! One type for every face: `report`, `check`, `top` and `serve` all judge with the same
//! numbers. Percentages are of the quantity the rule names (a listener's backlog, the
//! ephemeral port range, a process's soft `RLIMIT_NOFILE`). Pure: no I/O.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::FindingId;

/// The table. Each row is `name: Unit = default, Finding, "help"[, warns_before name];`
/// after its description, written as its doc comment: the struct field's documentation and
/// the example config's comment. The help is what `--help` says after the finding's id.
macro_rules! thresholds {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $unit:ident = $default:expr, $finding:ident, $help:literal
            $(, warns_before $crit:ident)?;
    )+) => {
        /// The thresholds every rule reads: one field per row of the table.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct Thresholds {
            $( $(#[doc = $doc])+ pub $name: quantity!($unit), )+
        }

        impl Thresholds {
            /// The defaults of the design, as the table gives them.
            pub const DEFAULT: Thresholds = Thresholds { $($name: $default,)+ };

            /// Every threshold, in the order of the table.
            pub const ROWS: &'static [Row] = &[$(
                Row {
                    name: stringify!($name),
                    unit: Unit::$unit,
                    finding: FindingId::$finding,
                    help: $help,
                    about: &[$($doc),+],
                    warns_before: optional!($(stringify!($crit))?),
                    get: |t| Value::from(t.$name),
                    set: |t, raw| {
                        t.$name = read(Unit::$unit, raw)?;
                        Ok(())
                    },
                },
            )+];

            /// Every row's name: the keys a config file may hold.
            const NAMES: &'static [&'static str] = &[$(stringify!($name)),+];
        }
    };
}

/// The Rust type of a unit's values.
macro_rules! quantity {
    (Percent) => {
        f64
    };
    (PerSecond) => {
        f64
    };
    (Count) => {
        u64
    };
    (Bytes) => {
        u64
    };
    (Duration) => {
        Duration
    };
}

macro_rules! optional {
    () => {
        None
    };
    ($x:expr) => {
        Some($x)
    };
}

thresholds! {
    /// accept-queue-high (warning) when a listener's accept queue reaches this % of its
    /// backlog.
    fill_warn: Percent = 80.0, AcceptQueueHigh,
        "warn at this accept-queue fill, % of backlog", warns_before fill_crit;
    /// accept-queue-full (critical) when the fill goes above this %. 100 means "past the
    /// backlog": the kernel admits backlog + 1 connections and drops SYNs/ACKs beyond that.
    fill_crit: Percent = 100.0, AcceptQueueFull,
        "critical above this fill, % of backlog (100: past the backlog)";
    /// listen-drops turns critical at this many ListenDrops per second (warning below it, as
    /// soon as the counter rises at all).
    listen_drops_crit: PerSecond = 10.0, ListenDrops,
        "critical at this many ListenDrops per second";
    /// syn-queue-pressure (warning) when a listener's SYN_RECV count reaches this % of
    /// backlog + 1.
    syn_recv_warn: Percent = 80.0, SynQueuePressure,
        "warn at this many SYN_RECV, % of backlog + 1";
    /// abandoned-in-accept-queue (warning) at this many queued connections whose clients
    /// closed before the application accepted them.
    abandoned_warn: Count = 1, AbandonedInAcceptQueue,
        "warn at this many queued connections their clients closed";
    /// close-wait-leak: warning at this many CLOSE_WAIT sockets in one process.
    close_wait_warn: Count = 50, CloseWaitLeak,
        "warn at this many CLOSE_WAIT sockets in one process", warns_before close_wait_crit;
    /// close-wait-leak: critical at this many, or as soon as the count grows between samples.
    close_wait_crit: Count = 500, CloseWaitLeak,
        "critical at this many (or when the count grows)";
    /// ephemeral-port-collision: warning at this many "mined" loopback ports for one
    /// (client address, server address:port) pair.
    collision_warn: Count = 1, EphemeralPortCollision,
        "warn at this many mined ports for one client/server pair";
    /// ephemeral-port-collision: critical when the mined ports are this % of the ephemeral
    /// port range.
    collision_crit: Percent = 5.0, EphemeralPortCollision,
        "critical at this share of the ephemeral range, %";
    /// fd-exhaustion: warning at this % of a process's soft RLIMIT_NOFILE.
    fd_warn: Percent = 80.0, FdExhaustion,
        "warn at this % of a process's soft RLIMIT_NOFILE", warns_before fd_crit;
    /// fd-exhaustion: critical at this % of a process's soft RLIMIT_NOFILE.
    fd_crit: Percent = 95.0, FdExhaustion,
        "critical at this %";
    /// orphan-pressure (warning) when orphaned sockets reach this % of
    /// net.ipv4.tcp_max_orphans.
    orphan_warn: Percent = 50.0, OrphanPressure,
        "warn at this % of net.ipv4.tcp_max_orphans";
    /// half-open-handshakes turns critical at this many request sockets of one listener whose
    /// SYN-ACK was retransmitted (it is also critical while the listener is full).
    half_open_crit: Count = 64, HalfOpenHandshakes,
        "critical at this many request sockets of one listener whose SYN-ACK was retransmitted";
    /// receive-queue-stall from a single sample: a socket holding this many unread bytes. With
    /// two samples or more, unread data that did not shrink over the window is enough.
    recv_stall_bytes: Bytes = 65_536, ReceiveQueueStall,
        "from one sample, a socket with this many unread bytes";
    /// udp-receive-drops: a warning as soon as a UDP socket's drop counter rises between
    /// samples; critical at this many drops per second.
    udp_drops_crit: PerSecond = 100.0, UdpReceiveDrops,
        "critical at this many drops per second on one UDP socket";
    /// ephemeral-port-exhaustion: warning when the TCP sockets from one local address to one
    /// destination hold this % of the usable ephemeral range (ip_local_port_range less
    /// ip_local_reserved_ports).
    port_use_warn: Percent = 50.0, EphemeralPortExhaustion,
        "warn at this % of the usable ephemeral range in use from one local address to one \
         destination",
        warns_before port_use_crit;
    /// ephemeral-port-exhaustion: critical at this % of the usable ephemeral range.
    port_use_crit: Percent = 90.0, EphemeralPortExhaustion,
        "critical at this %";
    /// conntrack-full (warning) when a namespace's connection tracking entries reach this %
    /// of net.netfilter.nf_conntrack_max; critical while the table drops new connections.
    conntrack_warn: Percent = 90.0, ConntrackFull,
        "warn at this % of net.netfilter.nf_conntrack_max";
    /// silent-peer (warning): a connection accepted from a peer that has sent nothing since
    /// the handshake, keepalive off, idle at least this long.
    silent_peer_after: Duration = Duration::from_secs(60), SilentPeer,
        "warn when an accepted connection's peer has sent nothing for this long, keepalive \
         off";
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// One threshold: what the table says about it, and how to read and write its field.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The field, and the key of the config file; the flag is `--` and this in kebab case.
    pub name: &'static str,
    pub unit: Unit,
    /// The finding whose severity it decides.
    pub finding: FindingId,
    /// One line for `--help`, after the finding's id.
    pub help: &'static str,
    /// The description, a line per element: the field's doc comment.
    pub about: &'static [&'static str],
    /// For a warning: the critical threshold it must not be above.
    pub warns_before: Option<&'static str>,
    get: fn(&Thresholds) -> Value,
    set: fn(&mut Thresholds, Raw<'_>) -> Result<(), String>,
}

impl Row {
    /// `fill-warn`: the flag's long name.
    pub fn long(&self) -> String {
        self.name.replace('_', "-")
    }

    /// `--fill-warn`.
    pub fn flag(&self) -> String {
        format!("--{}", self.long())
    }

    pub fn get(&self, t: &Thresholds) -> Value {
        (self.get)(t)
    }

    /// The value of the row in `DEFAULT`.
    pub fn default_value(&self) -> Value {
        self.get(&Thresholds::DEFAULT)
    }

    /// Read `raw` into `t`'s field. The error says what is wrong with it and what to write.
    pub fn set(&self, t: &mut Thresholds, raw: Raw<'_>) -> Result<(), String> {
        (self.set)(t, raw)
    }

    /// `--help`'s line: `close-wait-leak: warn at this many … in one process [50]`.
    pub fn help_line(&self) -> String {
        format!("{}: {} [{}]", self.finding, self.help, self.default_value())
    }

    /// The description as one paragraph.
    pub fn about_text(&self) -> String {
        let lines: Vec<&str> = self.about.iter().map(|l| l.trim()).collect();
        lines.join(" ")
    }
}

impl Thresholds {
    /// The row named `name` (a config key, the flag without `--` in snake case).
    pub fn row(name: &str) -> Option<&'static Row> {
        Thresholds::ROWS.iter().find(|r| r.name == name)
    }

    /// Check that every value makes sense for its unit and that each warning comes no later
    /// than its critical. The error is one line: the problem, then the fix.
    pub fn validate(&self) -> Result<(), String> {
        for row in Thresholds::ROWS {
            let value = row.get(self);
            if let Err(problem) = row.unit.check(value) {
                return Err(format!(
                    "{} = {value}: {problem}; {}",
                    row.name,
                    row.unit.advice()
                ));
            }
        }
        for row in Thresholds::ROWS {
            let Some(crit) = row.warns_before.and_then(Thresholds::row) else {
                continue;
            };
            let (w, c) = (row.get(self), crit.get(self));
            if w.as_f64() > c.as_f64() {
                return Err(format!(
                    "{} ({w}) is above {} ({c}): a warning must come first; lower {} or raise {}",
                    row.name, crit.name, row.name, crit.name
                ));
            }
        }
        Ok(())
    }
}

/// What a threshold counts, which decides its type, how it is read, shown and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A percentage of the quantity the finding names, 0 to 1000 (a fill can pass 100).
    Percent,
    /// Events per second, 0 or more.
    PerSecond,
    /// Things, 1 or more.
    Count,
    /// Bytes, 1 or more.
    Bytes,
    /// A time, longer than zero: `500ms`, `1s`, `2m`.
    Duration,
}

impl Unit {
    /// The placeholder of a flag's value in `--help`.
    pub fn value_name(self) -> &'static str {
        match self {
            Unit::Percent => "PCT",
            Unit::PerSecond => "PER_S",
            Unit::Count => "N",
            Unit::Bytes => "BYTES",
            Unit::Duration => "DUR",
        }
    }

    /// What a good value looks like: the second half of every error about one.
    pub fn advice(self) -> &'static str {
        match self {
            Unit::Percent => "write a percentage from 0 to 1000, such as 80 or 95.5",
            Unit::PerSecond => "write a rate of 0 or more per second, such as 10 or 0.5",
            Unit::Count => "write a whole number of 1 or more, such as 50",
            Unit::Bytes => "write a number of bytes of 1 or more, such as 65536",
            Unit::Duration => "write a duration longer than zero, such as 500ms, 1s or 2m",
        }
    }

    /// Whether `value` is one this unit admits; the problem if not.
    fn check(self, value: Value) -> Result<(), &'static str> {
        match (self, value) {
            (Unit::Percent | Unit::PerSecond, Value::Number(x)) if !x.is_finite() => {
                Err("not a number")
            }
            (Unit::Percent, Value::Number(x)) if !(0.0..=1000.0).contains(&x) => {
                Err("out of range")
            }
            (Unit::PerSecond, Value::Number(x)) if x < 0.0 => Err("below zero"),
            (Unit::Count | Unit::Bytes, Value::Whole(0)) => Err("zero"),
            (Unit::Duration, Value::Duration(d)) if d.is_zero() => Err("zero"),
            _ => Ok(()),
        }
    }
}

/// A threshold's value, of any unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Number(f64),
    Whole(u64),
    Duration(Duration),
}

impl Value {
    /// To compare a warning with its critical; a duration in seconds.
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Number(x) => x,
            Value::Whole(n) => n as f64,
            Value::Duration(d) => d.as_secs_f64(),
        }
    }

    /// The value as a TOML literal: `80.0`, `50`, `"2m"`.
    pub fn toml(self) -> String {
        match self {
            Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.1}"),
            Value::Duration(_) => format!("\"{self}\""),
            Value::Number(_) | Value::Whole(_) => self.to_string(),
        }
    }
}

/// `80`, `95.5`, `65536`, `500ms`, `60s`, `2m`, `1h`: as a flag takes it.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Number(x) => write!(f, "{x}"),
            Value::Whole(n) => write!(f, "{n}"),
            Value::Duration(d) if d.subsec_nanos() % 1_000_000 != 0 => {
                write!(f, "{}ns", d.as_nanos())
            }
            Value::Duration(d) if d.subsec_nanos() != 0 => write!(f, "{}ms", d.as_millis()),
            Value::Duration(d) => match d.as_secs() {
                s if s >= 3600 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
                s if s > 60 && s % 60 == 0 => write!(f, "{}m", s / 60),
                s => write!(f, "{s}s"),
            },
        }
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Number(x)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Whole(n)
    }
}

impl From<Duration> for Value {
    fn from(d: Duration) -> Self {
        Value::Duration(d)
    }
}

/// A threshold as written: a flag's text, or a number from a config file (whose strings
/// read like a flag's text).
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Text(&'a str),
    Integer(i64),
    Float(f64),
}

/// A field's type, read from what was written.
trait Quantity: Into<Value> + Copy {
    /// The value, or what is wrong with `raw`.
    fn read(raw: Raw<'_>) -> Result<Self, &'static str>;
}

impl Quantity for f64 {
    #[allow(clippy::cast_precision_loss)]
    fn read(raw: Raw<'_>) -> Result<Self, &'static str> {
        match raw {
            Raw::Text(text) => text.trim().parse().map_err(|_| "not a number"),
            Raw::Integer(n) => Ok(n as f64),
            Raw::Float(x) => Ok(x),
        }
    }
}

impl Quantity for u64 {
    fn read(raw: Raw<'_>) -> Result<Self, &'static str> {
        match raw {
            Raw::Text(text) => text.trim().parse().map_err(|_| "not a whole number"),
            Raw::Integer(n) => u64::try_from(n).map_err(|_| "below zero"),
            Raw::Float(_) => Err("not a whole number"),
        }
    }
}

impl Quantity for Duration {
    fn read(raw: Raw<'_>) -> Result<Self, &'static str> {
        match raw {
            Raw::Text(text) => humantime::parse_duration(text.trim()).map_err(|_| "not a duration"),
            // A bare number could be seconds or milliseconds: the unit must be written.
            Raw::Integer(_) | Raw::Float(_) => {
                Err("a number without its unit (in a config file, a string such as \"2m\")")
            }
        }
    }
}

/// Read `raw` as a value of `unit`: the field's new value, or `problem; advice`.
fn read<T: Quantity>(unit: Unit, raw: Raw<'_>) -> Result<T, String> {
    let fix = |problem: &str| format!("{problem}; {}", unit.advice());
    let value = T::read(raw).map_err(fix)?;
    unit.check(value.into()).map_err(fix)?;
    Ok(value)
}

/// The `[thresholds]` table of a config file: the rows' names as keys, each value read by
/// its row, so that a bad value's error names its key (and serde's reader, its line).
impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Table)
    }
}

struct Table;

impl<'de> Visitor<'de> for Table {
    type Value = Thresholds;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of thresholds")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Thresholds, M::Error> {
        let mut t = Thresholds::DEFAULT;
        while let Some(row) = map.next_key_seed(Key)? {
            map.next_value_seed(Entry { row, into: &mut t })?;
        }
        Ok(t)
    }
}

/// A key of the table: a row's name.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'static Row;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = &'static Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the name of a threshold")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Thresholds::row(name).ok_or_else(|| E::unknown_field(name, Thresholds::NAMES))
    }
}

/// A value of the table, read by its row into the thresholds.
struct Entry<'t> {
    row: &'static Row,
    into: &'t mut Thresholds,
}

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Entry<'_> {
    fn set<E: de::Error>(self, raw: Raw<'_>) -> Result<(), E> {
        self.row
            .set(self.into, raw)
            .map_err(|reason| E::custom(format!("{}: {reason}", self.row.name)))
    }
}

impl Visitor<'_> for Entry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a value for {} ({})",
            self.row.name,
            self.row.unit.advice()
        )
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.set(Raw::Integer(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        let n = i64::try_from(n).map_err(|_| E::custom(format!("{}: too large", self.row.name)))?;
        self.set(Raw::Integer(n))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.set(Raw::Float(x))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.set(Raw::Text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_design_defaults_and_valid() {
        let t = Thresholds::default();
        assert_eq!(
            (t.fill_warn, t.fill_crit, t.fd_warn, t.fd_crit),
            (80.0, 100.0, 80.0, 95.0)
        );
        assert_eq!((t.close_wait_warn, t.close_wait_crit), (50, 500));
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn every_row_is_a_field_that_reads_back_what_it_shows() {
        let names: Vec<&str> = Thresholds::ROWS.iter().map(|r| r.name).collect();
        assert_eq!(names, Thresholds::NAMES);
        for row in Thresholds::ROWS {
            let mut t = Thresholds::DEFAULT;
            let shown = row.default_value().to_string();
            row.set(&mut t, Raw::Text(&shown))
                .unwrap_or_else(|e| panic!("{}: {shown:?}: {e}", row.name));
            assert_eq!(t, Thresholds::DEFAULT, "{}", row.name);
            assert!(
                !row.help.is_empty() && !row.about.is_empty(),
                "{}",
                row.name
            );
            assert!(
                row.about_text().starts_with(row.finding.name()),
                "{}: the description names its finding first",
                row.name
            );
            if let Some(crit) = row.warns_before {
                let crit = Thresholds::row(crit).expect("warns_before names a row");
                assert_eq!(crit.unit, row.unit, "{} and {}", row.name, crit.name);
            }
        }
    }

    #[test]
    fn a_warning_above_its_critical_is_rejected() {
        let t = Thresholds {
            fd_warn: 96.0,
            ..Thresholds::default()
        };
        let err = t.validate().expect_err("rejected");
        assert!(
            err.contains("fd_warn (96) is above fd_crit (95)") && err.contains("lower fd_warn"),
            "{err}"
        );
        let t = Thresholds {
            fill_crit: f64::NAN,
            ..Thresholds::default()
        };
        assert!(t.validate().is_err());
        let t = Thresholds {
            close_wait_warn: 0,
            ..Thresholds::default()
        };
        assert_eq!(
            t.validate(),
            Err("close_wait_warn = 0: zero; write a whole number of 1 or more, such as 50".into())
        );
    }

    fn read_one(row: &str, raw: Raw<'_>) -> Result<Value, String> {
        let row = Thresholds::row(row).expect("a row");
        let mut t = Thresholds::DEFAULT;
        row.set(&mut t, raw)?;
        Ok(row.get(&t))
    }

    #[test]
    fn each_unit_reads_what_its_flag_and_its_key_take() {
        let pct = |raw| read_one("fd_warn", raw);
        assert_eq!(pct(Raw::Text("70")), Ok(Value::Number(70.0)));
        assert_eq!(pct(Raw::Text(" 95.5 ")), Ok(Value::Number(95.5)));
        assert_eq!(pct(Raw::Integer(60)), Ok(Value::Number(60.0)));
        assert_eq!(pct(Raw::Float(60.5)), Ok(Value::Number(60.5)));
        for (raw, problem) in [
            (Raw::Text("x"), "not a number"),
            (Raw::Text("1001"), "out of range"),
            (Raw::Integer(-1), "out of range"),
            (Raw::Text("NaN"), "not a number"),
        ] {
            let err = pct(raw).expect_err("rejected");
            assert_eq!(
                err,
                format!("{problem}; write a percentage from 0 to 1000, such as 80 or 95.5")
            );
        }
        let count = |raw| read_one("close_wait_warn", raw);
        assert_eq!(count(Raw::Text("20")), Ok(Value::Whole(20)));
        assert_eq!(count(Raw::Integer(20)), Ok(Value::Whole(20)));
        for raw in [
            Raw::Text("2.5"),
            Raw::Float(2.0),
            Raw::Text("-3"),
            Raw::Integer(-3),
        ] {
            assert!(count(raw).is_err(), "{raw:?}");
        }
        assert!(
            count(Raw::Text("0"))
                .expect_err("zero")
                .starts_with("zero;")
        );
        let rate = |raw| read_one("udp_drops_crit", raw);
        assert_eq!(rate(Raw::Text("0.5")), Ok(Value::Number(0.5)));
        assert!(
            rate(Raw::Float(-0.5))
                .expect_err("negative")
                .starts_with("below zero;")
        );
    }

    /// No row is a duration yet (`silent_peer_after` will be): the unit is ready for it.
    #[test]
    fn durations_read_as_500ms_1s_2m_and_show_the_same_way() {
        let read = |raw| read::<Duration>(Unit::Duration, raw);
        assert_eq!(read(Raw::Text("500ms")), Ok(Duration::from_millis(500)));
        assert_eq!(read(Raw::Text("1s")), Ok(Duration::from_secs(1)));
        assert_eq!(read(Raw::Text("2m")), Ok(Duration::from_secs(120)));
        assert_eq!(
            read(Raw::Text("0s")),
            Err("zero; write a duration longer than zero, such as 500ms, 1s or 2m".into())
        );
        assert!(
            read(Raw::Text("soon"))
                .expect_err("no")
                .starts_with("not a duration;")
        );
        assert!(
            read(Raw::Integer(60))
                .expect_err("no unit")
                .contains("\"2m\"")
        );
        for (d, shown) in [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(60), "60s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
        ] {
            assert_eq!(Value::Duration(d).to_string(), shown);
            assert_eq!(read(Raw::Text(shown)), Ok(d), "{shown}");
        }
        assert_eq!(Value::Duration(Duration::from_secs(60)).toml(), "\"60s\"");
    }

    #[test]
    fn values_are_written_as_toml_literals() {
        assert_eq!(Value::Number(80.0).toml(), "80.0");
        assert_eq!(Value::Number(95.5).toml(), "95.5");
        assert_eq!(Value::Whole(65_536).toml(), "65536");
    }

    #[test]
    fn a_table_reads_each_key_through_its_row() {
        let t: Thresholds =
            toml::from_str("fd_warn = 60\nclose_wait_warn = 10\nfill_crit = 120.5\n")
                .expect("parses");
        assert_eq!(
            t,
            Thresholds {
                fd_warn: 60.0,
                close_wait_warn: 10,
                fill_crit: 120.5,
                ..Thresholds::DEFAULT
            }
        );
        let err = toml::from_str::<Thresholds>("fd_warn = 60\nclose_wait_warn = 2.5\n")
            .expect_err("not whole");
        assert!(
            err.message()
                .starts_with("close_wait_warn: not a whole number;"),
            "{err}"
        );
        let err = toml::from_str::<Thresholds>("fill_warm = 1\n").expect_err("unknown");
        assert!(
            err.message().starts_with("unknown field `fill_warm`"),
            "{err}"
        );
        let err = toml::from_str::<Thresholds>("fd_warn = [1]\n").expect_err("an array");
        assert!(err.message().contains("write a percentage"), "{err}");
    }
}
