//! Helpers for the collector's tests: network namespaces of their own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::netns::NsId;

/// A process holding a network namespace of its own, killed on drop.
pub struct Holder(Child);

impl Holder {
    /// `None` (after saying why) where namespaces cannot be made here.
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
                eprintln!("SKIP {test}: cannot run unshare: {err}");
                return None;
            }
        };
        let mut line = String::new();
        let out = child.stdout.take()?;
        let ready = BufReader::new(out).read_line(&mut line).is_ok() && line.trim() == "ready";
        let holder = Holder(child);
        if !ready {
            eprintln!("SKIP {test}: `unshare -n` cannot make a network namespace here");
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
