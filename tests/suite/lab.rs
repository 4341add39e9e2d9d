//! The lab itself: it stops everything it started, and stays on loopback.

use std::process::Command;

use crate::util::lab_bin;
use crate::util::netns::netns_or_skip;

#[test]
fn lab_stops_its_children_on_end_of_input() {
    let Some(mut ns) = netns_or_skip("lab_stops_its_children_on_end_of_input") else {
        return;
    };
    let noaccept = ns.lab(&["noaccept", "--abandon", "2"]);
    let leak = ns.lab(&["leak", "--count", "10"]);
    let roles = [
        noaccept.pid("noaccept"),
        noaccept.pid("clients"),
        leak.pid("leaky"),
    ];
    for (what, status) in ns.stop_labs() {
        assert!(status.success(), "{what} ended with {status}");
    }
    // The lab reaps its children before it exits, so their pids are gone now.
    for pid in roles {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "role {pid} outlived its lab"
        );
    }
}

#[test]
fn lab_refuses_addresses_off_loopback() {
    for args in [
        &["noaccept", "--addr", "192.0.2.1:5000"][..],
        &["leak", "--addr", "0.0.0.0:5001"],
        &["listen", "--addr", "192.0.2.1:5002"],
    ] {
        let out = Command::new(lab_bin())
            .args(args)
            .output()
            .expect("running the lab");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "lab {args:?} should refuse");
        assert!(stderr.contains("loopback"), "lab {args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "lab {args:?} printed {:?}",
            out.stdout
        );
    }
}
