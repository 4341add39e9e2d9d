//! The fuzz targets as plain tests, on a stable toolchain and without cargo-fuzz: every
//! target over its seed corpus (cut from the real captures) and over the inputs that once
//! crashed it, kept in `fuzz/regressions/TARGET/`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_target_runs_clean_over_its_seeds() {
    let root = root();
    for (target, run) in sockscope_fuzz::TARGETS {
        let seeds =
            sockscope_fuzz::seeds(target, &root.join("tests/fixtures"), &root.join("assets"));
        assert!(!seeds.is_empty(), "{target} has seeds");
        for (name, bytes) in &seeds {
            eprintln!("{target}/{name}");
            run(bytes);
            // Every prefix of a small seed too: what a short read or a cut file looks like.
            if bytes.len() <= 4096 {
                for end in 0..bytes.len() {
                    run(&bytes[..end]);
                }
            }
        }
    }
}

#[test]
fn every_saved_crash_input_runs_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for (target, run) in sockscope_fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable regressions folder").path();
            eprintln!("{}", path.display());
            run(&std::fs::read(&path).expect("readable input"));
        }
    }
}

#[test]
fn the_seed_cutter_finds_what_the_captures_hold() {
    let root = root();
    let seeds = |t| sockscope_fuzz::seeds(t, &root.join("tests/fixtures"), &root.join("assets"));
    // tcp4_close_wait_info holds 2 sockets with a 280-byte tcp_info; tcp6_all has more.
    let infos = seeds("tcp_info");
    assert!(infos.iter().filter(|(_, b)| b.len() == 280).count() >= 2);
    // tcp4_many.bin: 613 sockets over 3 datagrams, NLMSG_DONE in a 4th.
    assert_eq!(
        seeds("netlink_inet")
            .iter()
            .filter(|(n, _)| n.starts_with("tcp4_many."))
            .count(),
        4
    );
}
