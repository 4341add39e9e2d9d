//! A scratch directory for one test: recordings, config files and unix socket paths that
//! no other test (nor another run) uses, removed when the test ends.
//!
//! Network namespaces do not isolate the filesystem, so every test that writes a file puts
//! it here. The directory is readable and searchable by everyone: a test may hand a file in
//! it to an unprivileged user.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh directory named after `test` and this test process.
    pub fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("sockscope-test-{}-{test}", std::process::id()));
        // Left over only if a previous process with the same pid was killed mid-test.
        let _ = std::fs::remove_dir_all(&dir);
        DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Scratch { dir }
    }

    /// `name` inside the directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write `text` to `name` and return its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A path as a `&str`, for argument lists; temp paths are UTF-8 in any test environment.
pub fn as_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
