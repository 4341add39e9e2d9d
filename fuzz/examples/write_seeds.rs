//! Write every target's seed corpus, cut from the project's real captures, as files:
//! `write_seeds OUT_DIR` makes `OUT_DIR/TARGET/NAME` for each target and seed.

use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write_seeds OUT_DIR");
        std::process::exit(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (target, _) in sockscope_fuzz::TARGETS {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds =
            sockscope_fuzz::seeds(target, &root.join("tests/fixtures"), &root.join("assets"));
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}
