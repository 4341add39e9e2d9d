//! Helpers for the collector's tests: network namespaces of their own, and the right to
//! enter them. What cannot be had here fails the test, through [`skip_or_fail`].

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::netns::may_enter_others;
use super::vocab::NsId;
use crate::testing::skip_or_fail;

/// Whether this process may enter other namespaces (CAP_SYS_ADMIN); where it may not, the test
/// fails with the reason (or, with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns false).
pub fn may_enter_or_skip(test: &str) -> bool {
    if may_enter_others() {
        return true;
    }
    skip_or_fail(
        test,
        "no CAP_SYS_ADMIN, so it cannot enter another namespace",
    );
    false
}

/// A process holding a network namespace of its own, killed on drop.
pub struct Holder(Child);

impl Holder {
    /// A namespace for `test`; where none can be made here, the test fails with the reason
    /// (or, with `SOCKSCOPE_ALLOW_SKIP=1`, this says why and returns `None`).
    pub fn start(test: &str) -> Option<Holder> {
        let spawned = Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                skip_or_fail(test, &format!("cannot run unshare: {err}"));
                return None;
            }
        };
        let mut line = String::new();
        let out = child.stdout.take().expect("piped stdout");
        let ready = BufReader::new(out).read_line(&mut line).is_ok() && line.trim() == "ready";
        let holder = Holder(child);
        if !ready {
            skip_or_fail(test, "`unshare -n` cannot make a network namespace here");
            return None;
        }
        // The shell says ready just before it becomes `sleep`.
        let comm = format!("/proc/{}/comm", holder.pid());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            assert!(
                std::time::Instant::now() < deadline,
                "the holder never became sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Some(holder)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid()))
    }

    pub fn id(&self) -> NsId {
        NsId::of_path(&self.ns_path()).expect("stat the holder's namespace")
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
