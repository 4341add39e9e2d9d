//! `sockscope record`: snapshots of the live host appended to a recording (NDJSON, see
//! [`crate::recording`]) until the configured stop, with a progress line on a terminal.
//!
//! The recorder is handed its live source by `main`; it never reads the kernel itself. A
//! file that exists is appended to only when it is a recording already (its first line a
//! header), so that a mistyped `--output` never corrupts another file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use crate::config::{RecordConfig, Stop};
use crate::recording;
use crate::source::{Live, SourceError};

/// Why a recording stopped short.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot open {path} for writing: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{0} exists and is not a sockscope recording; choose another --output")]
    NotARecording(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// The recording being written: opened (and checked) before the first snapshot is taken.
pub struct Recorder {
    file: File,
    /// The file was empty: the first snapshot is preceded by a header.
    fresh: bool,
    shown: String,
}

impl Recorder {
    /// Open `path` for appending; an existing file must be a recording.
    pub fn open(path: &Path) -> Result<Recorder, RecordError> {
        let shown = path.display().to_string();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|source| RecordError::Open {
                path: shown.clone(),
                source,
            })?;
        let fresh = file.metadata().map_or(true, |m| m.len() == 0);
        if !fresh {
            let mut first = String::new();
            BufReader::new(&file)
                .read_line(&mut first)
                .map_err(|source| RecordError::Read {
                    path: shown.clone(),
                    source,
                })?;
            serde_json::from_str::<recording::Header>(&first)
                .map_err(|_| RecordError::NotARecording(shown.clone()))?;
        }
        Ok(Recorder { file, fresh, shown })
    }

    /// Take snapshots from `live` at `config`'s interval until its stop, appending each.
    pub fn run(&mut self, config: &RecordConfig, live: &mut Live) -> Result<(), RecordError> {
        let started = Instant::now();
        let shown = self.shown.clone();
        let write_error = |source| RecordError::Write {
            path: shown.clone(),
            source,
        };
        let mut out = BufWriter::new(&mut self.file);
        let on_terminal = io::stderr().is_terminal();
        for taken in 1.. {
            let done = match config.stop {
                Stop::Count(n) => taken > n,
                Stop::After(limit) => taken > 1 && live.next_due() > limit,
                Stop::Interrupted => false,
            };
            if done {
                break;
            }
            let snapshot = live.take_when_due()?;
            if taken == 1 && self.fresh {
                recording::write_line(
                    &mut out,
                    &recording::Header::new(snapshot.host.clone(), config.interval),
                )
                .map_err(write_error)?;
            }
            recording::write_line(&mut out, &snapshot).map_err(write_error)?;
            if on_terminal {
                eprint!(
                    "\rsockscope: recorded {taken} snapshots to {} ({:.0?})",
                    self.shown,
                    started.elapsed()
                );
            }
        }
        out.flush().map_err(write_error)?;
        if on_terminal {
            eprintln!();
        }
        Ok(())
    }
}
