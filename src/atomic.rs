//! Replacing a file so that no reader ever sees half of it: `report --output FILE`.
//!
//! node_exporter's textfile collector reads its directory whenever it is scraped; a file
//! written in place can be read half-written. The new content goes to a temporary file in
//! the same directory (the same filesystem, so the rename is atomic), is flushed to disk,
//! and is then renamed over the target. The temporary name starts with a dot and does not
//! end in `.prom`, so the collector never reads it; on failure it is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Write `path` through `write`, atomically: readers see the old file or the whole new one.
/// The new file is readable by everyone (mode 0644 before the umask), as exporters' files
/// are read by another user.
pub fn replace(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let temporary = temporary_path(path)?;
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file: File = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// `DIR/.NAME.PID.tmp` beside `path`.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(temporary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sockscope-atomic-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("listable")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_file_is_replaced_whole_and_nothing_else_is_left() {
        let dir = scratch("whole");
        let path = dir.join("sockscope.prom");
        fs::write(&path, "old\n").expect("written");
        replace(&path, |out: &mut dyn Write| out.write_all(b"new\n")).expect("replaced");
        assert_eq!(fs::read_to_string(&path).expect("readable"), "new\n");
        assert_eq!(entries(&dir), ["sockscope.prom"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("failed");
        let path = dir.join("sockscope.prom");
        fs::write(&path, "old\n").expect("written");
        let err = replace(&path, |out: &mut dyn Write| {
            out.write_all(b"half")?;
            Err(io::Error::other("collection failed"))
        })
        .expect_err("fails");
        assert_eq!(err.to_string(), "collection failed");
        assert_eq!(fs::read_to_string(&path).expect("readable"), "old\n");
        assert_eq!(entries(&dir), ["sockscope.prom"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_temporary_is_hidden_from_the_textfile_collector() {
        let t = temporary_path(Path::new("/var/lib/node/sockscope.prom")).expect("a name");
        let name = t
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(".sockscope.prom.")
                && Path::new(&name).extension().is_some_and(|e| e == "tmp"),
            "{name}"
        );
        assert_eq!(t.parent(), Some(Path::new("/var/lib/node")));
        assert!(temporary_path(Path::new("/")).is_err());
    }
}
