//! The recording format: snapshots as NDJSON, one header line then one snapshot per line,
//! written by `sockscope record` and read back by [`crate::source`] for `--replay`. Pure:
//! it reads an `impl BufRead` and writes an `impl Write`, and opens nothing itself.
//!
//! The writer flushes after every line, so a recorder killed at any moment leaves a file whose
//! every complete line is usable; the reader tolerates an unfinished last line (with a
//! warning) and rejects a corrupt line anywhere else, naming its line number. Replaying a
//! recording feeds the same analysis as a live run, so findings match.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Host, Snapshot};

pub const RECORDING_SCHEMA: &str = "sockscope.recording.v1";

/// The first line of every recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub schema: String,
    pub sockscope_version: String,
    pub host: Host,
    /// The requested time between snapshots.
    pub interval_ms: u64,
}

impl Header {
    pub fn new(host: Host, interval: Duration) -> Header {
        Header {
            schema: RECORDING_SCHEMA.to_owned(),
            sockscope_version: env!("CARGO_PKG_VERSION").to_owned(),
            host,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A recording read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub header: Header,
    pub snapshots: Vec<Snapshot>,
    /// Problems that did not stop the read (an unfinished last line).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("line {line}: cannot read: {source}")]
    Io { line: usize, source: io::Error },
    #[error("the file is empty, not a sockscope recording")]
    Empty,
    #[error("line 1: not a sockscope recording (expected a {RECORDING_SCHEMA} header): {reason}")]
    BadHeader { reason: String },
    #[error("line {line}: corrupt snapshot: {reason}")]
    Corrupt { line: usize, reason: String },
    #[error("the recording holds a header but no snapshot")]
    NoSnapshots,
}

/// Write one line of NDJSON and flush it, so a kill leaves at most this line unfinished.
pub fn write_line(w: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Read a whole recording.
pub fn read(mut input: impl BufRead) -> Result<Recording, ReadError> {
    let mut warnings = Vec::new();
    let mut buf = String::new();
    let mut line_no = 0;
    let mut next_line = |buf: &mut String| -> Result<Option<bool>, ReadError> {
        buf.clear();
        line_no += 1;
        let n = input.read_line(buf).map_err(|source| ReadError::Io {
            line: line_no,
            source,
        })?;
        Ok((n > 0).then(|| buf.ends_with('\n')))
    };
    if next_line(&mut buf)?.is_none() {
        return Err(ReadError::Empty);
    }
    let header: Header =
        serde_json::from_str(buf.trim_end()).map_err(|e| ReadError::BadHeader {
            reason: e.to_string(),
        })?;
    if header.schema != RECORDING_SCHEMA {
        return Err(ReadError::BadHeader {
            reason: format!("schema is {:?}", header.schema),
        });
    }
    let mut snapshots = Vec::new();
    let mut line = 1;
    while let Some(complete) = next_line(&mut buf)? {
        line += 1;
        let text = buf.trim_end();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Snapshot>(text) {
            Ok(snapshot) => snapshots.push(snapshot),
            // Only the very last line may be unfinished: the recorder was stopped mid-write.
            Err(_) if !complete => warnings.push(format!(
                "line {line} is unfinished (the recorder was stopped while writing it); ignored"
            )),
            Err(e) => {
                return Err(ReadError::Corrupt {
                    line,
                    reason: e.to_string(),
                });
            }
        }
    }
    if snapshots.is_empty() {
        return Err(ReadError::NoSnapshots);
    }
    Ok(Recording {
        header,
        snapshots,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Freshness, ProcessScanStats, Snapshot};

    fn snapshot(ms: u64) -> Snapshot {
        Snapshot {
            host: Host {
                hostname: "h".into(),
                kernel: "6.18".into(),
            },
            wall_time_ms: ms,
            monotonic_ns: ms * 1_000_000,
            collect_us: 1,
            netns: Vec::new(),
            processes: Vec::new(),
            process_scan: ProcessScanStats::default(),
            notes: Vec::new(),
            freshness: Freshness::default(),
        }
    }

    fn recording(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let host = Host {
            hostname: "h".into(),
            kernel: "6.18".into(),
        };
        write_line(&mut out, &Header::new(host, Duration::from_secs(1))).expect("write");
        for i in 0..n {
            write_line(&mut out, &snapshot(i * 1000)).expect("write");
        }
        out
    }

    #[test]
    fn round_trips() {
        let rec = read(recording(3).as_slice()).expect("reads");
        assert_eq!(rec.snapshots.len(), 3);
        assert_eq!(rec.snapshots[2], snapshot(2000));
        assert_eq!(rec.header.interval_ms, 1000);
        assert!(rec.warnings.is_empty());
    }

    #[test]
    fn an_unfinished_last_line_is_a_warning() {
        let mut bytes = recording(3);
        let cut = bytes.len() - 20;
        bytes.truncate(cut);
        let rec = read(bytes.as_slice()).expect("reads");
        assert_eq!(rec.snapshots.len(), 2);
        assert_eq!(
            rec.warnings,
            ["line 4 is unfinished (the recorder was stopped while writing it); ignored"]
        );
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_it() {
        let text = String::from_utf8(recording(3)).expect("utf8");
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{\"wall_time_ms\": \"soon\"}";
        let bytes = lines.join("\n") + "\n";
        let err = read(bytes.as_bytes()).expect_err("corrupt");
        assert!(
            err.to_string().starts_with("line 3: corrupt snapshot"),
            "{err}"
        );
        // A complete but corrupt last line is corruption too, not a cut.
        let bytes = text.clone() + "{not json}\n";
        let err = read(bytes.as_bytes()).expect_err("corrupt");
        assert!(
            err.to_string().starts_with("line 5: corrupt snapshot"),
            "{err}"
        );
    }

    #[test]
    fn empty_headerless_and_snapshotless_files_are_errors() {
        assert!(matches!(read(&b""[..]), Err(ReadError::Empty)));
        assert!(matches!(
            read(&b"{\"a\":1}\n"[..]),
            Err(ReadError::BadHeader { .. })
        ));
        let header_only = recording(0);
        assert!(matches!(
            read(header_only.as_slice()),
            Err(ReadError::NoSnapshots)
        ));
        let other = br#"{"schema":"x","sockscope_version":"0","host":{"hostname":"h","kernel":"k"},"interval_ms":1}"#;
        assert!(matches!(read(&other[..]), Err(ReadError::BadHeader { .. })));
    }
}
