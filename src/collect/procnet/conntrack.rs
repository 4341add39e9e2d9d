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

use super::parse::ParseError;

/// The counters of `/proc/net/stat/nf_conntrack` that say the table refused connections,
/// summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConntrackStat {
    /// New connections dropped because the table was full and nothing could be evicted.
    pub drop: u64,
    /// Entries evicted to make room for a new one (the table was full).
    pub early_drop: u64,
    /// Entries that could not be inserted (a race between CPUs, or a clash).
    pub insert_failed: u64,
}

/// # Errors
///
/// When the names line lacks one of the three counters, or a row is not hexadecimal numbers
/// under those names.
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
    let (drop, early_drop, insert_failed) = (
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
        stat.drop += value(drop)?;
        stat.early_drop += value(early_drop)?;
        stat.insert_failed += value(insert_failed)?;
    }
    Ok(stat)
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
                drop: 30,
                early_drop: 0,
                insert_failed: 0,
            })
        );
    }

    #[test]
    fn columns_are_found_by_name() {
        let text = "drop insert_failed entries early_drop\n1 2 3 4\na 0 0 1\n";
        assert_eq!(
            parse_conntrack_stat(text),
            Ok(ConntrackStat {
                drop: 11,
                early_drop: 5,
                insert_failed: 2,
            })
        );
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
            parse_conntrack_stat("drop early_drop insert_failed\n1 2\n"),
            Err(ParseError::CountMismatch { line: 2, .. })
        ));
        assert!(matches!(
            parse_conntrack_stat("drop early_drop insert_failed\n1 x 2\n"),
            Err(ParseError::NotANumber { line: 2, .. })
        ));
    }
}
