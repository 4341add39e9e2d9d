//! The owners of sockets from the kernel in one pass: a BPF iterator over every task's files
//! (`iter/task_file`, Linux 5.11 or later with BTF) writes, for each socket descriptor of
//! each process, its pid, descriptor and socket inode — what the /proc walk reads as one
//! `socket:[INODE]` link per descriptor, at a fraction of the cost.
//!
//! Owns loading the program (`bpf/task_sockets.bpf.c`, built by `scripts/bpf` into the
//! object committed beside it and compiled into this binary), running it and parsing what it
//! writes. It must not decide when to use it instead of the /proc walk (the pass does) nor
//! read anything else of a process (the /proc walk's first pass does).
//!
//! The program is loaded once ([`SocketIterator::load`]) and may be run many times
//! ([`SocketIterator::read`]); each run attaches it, reads the iterator to its end and drops
//! the link, so that nothing stays attached between runs. The loader is aya, a pure-Rust
//! crate that loads the object, relocates its field reads against the running kernel's BTF
//! (CO-RE) and creates the iterator; the crate itself forbids `unsafe`, which a minimal
//! bpf(2) layer of our own would need. It is handed the kernel's BTF cut to the few types the
//! program reads ([`btf`]), so that relocating and attaching do not walk all of it.

mod btf;
mod parse;

use std::io::Read;

use aya::programs::Iter;
use aya::{Btf, EbpfLoader, Endianness};

pub use parse::{Records, SocketsByPid, TruncatedRecord, parse_records};

/// The compiled program (`scripts/bpf build`), aligned as the ELF reader needs.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../../bpf/task_sockets.bpf.o");
/// The program's name in the object: its C function.
const PROGRAM: &str = "task_sockets";
/// Where the kernel publishes its BTF.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// What the loader needs of the kernel's BTF: the structs whose fields the program reads
/// (`bpf/kernel_types.h`) and the iterator's function, whose id the program attaches to.
const KERNEL_TYPES: btf::Wanted<'static> = btf::Wanted {
    structs: &["task_struct", "pid", "upid", "file", "inode", "super_block"],
    function: "bpf_iter_task_file",
};

/// The iterator program, loaded into the kernel and ready to run.
pub struct SocketIterator {
    ebpf: aya::Ebpf,
}

/// Why the iterator cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error(
        "the kernel publishes no BTF ({KERNEL_BTF}): the BPF iterator needs a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    NoBtf,
    #[error("not permitted to load the BPF iterator: it needs root, or CAP_BPF with CAP_PERFMON")]
    Denied,
    #[error("the kernel refused the BPF iterator (iter/task_file needs Linux 5.11 or later): {0}")]
    Refused(String),
}

/// A run of the loaded iterator that failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the BPF iterator could not be started: {0}")]
    Start(String),
    #[error("reading the BPF iterator failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Truncated(#[from] TruncatedRecord),
}

impl SocketIterator {
    /// Load the program: it needs root, or `CAP_BPF` with `CAP_PERFMON`, and a kernel that
    /// publishes its BTF.
    ///
    /// The loader is handed the kernel's BTF cut down to the types the program reads
    /// ([`btf::cut`]) instead of all of it. It still parses all of it once when made
    /// (`EbpfLoader::new` in aya 0.14; later versions parse it only when asked, but need a
    /// newer Rust): some 28 MiB and 20 ms while it lasts.
    pub fn load() -> Result<SocketIterator, LoadError> {
        // The loader parses the kernel's whole BTF when made: dropped at once, before the cut
        // reads it again, so that the two are never held together.
        let mut loader = EbpfLoader::new();
        loader.btf(None);
        let kernel = match std::fs::read(KERNEL_BTF) {
            Ok(kernel) => kernel,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::NoBtf);
            }
            Err(err) => return Err(refused(&err)),
        };
        let cut = btf::cut(&kernel, &KERNEL_TYPES).map_err(|err| refused(&err))?;
        drop(kernel);
        let btf = Btf::parse(&cut, Endianness::default()).map_err(|err| refused(&err))?;
        drop(cut);
        let mut ebpf = loader
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(|err| refused(&err))?;
        let program: &mut Iter = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| LoadError::Refused(format!("no program {PROGRAM} in the object")))?
            .try_into()
            .map_err(|err| refused(&err))?;
        program
            .load("task_file", &btf)
            .map_err(|err| refused(&err))?;
        Ok(SocketIterator { ebpf })
    }

    /// Run the iterator once: every process's socket descriptors, as the kernel holds them
    /// now. The link lives only as long as the read.
    pub fn read(&mut self) -> Result<SocketsByPid, ReadError> {
        let program: &mut Iter = self
            .ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| ReadError::Start(format!("no program {PROGRAM}")))?
            .try_into()
            .map_err(|err| ReadError::Start(one_line(&err)))?;
        let link = program
            .attach()
            .map_err(|err| ReadError::Start(one_line(&err)))?;
        let link = program
            .take_link(link)
            .map_err(|err| ReadError::Start(one_line(&err)))?;
        let mut file = link
            .into_file()
            .map_err(|err| ReadError::Start(one_line(&err)))?;
        // The kernel hands over at most its seq_file buffer (8 pages) per read.
        let mut buf = vec![0u8; 64 * 1024];
        let mut records = Records::new();
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => records.push(&buf[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(records.finish()?)
    }
}

/// A load that failed: for want of a privilege, or refused for another reason.
fn refused(err: &(dyn std::error::Error + 'static)) -> LoadError {
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(1 | 13))
        {
            return LoadError::Denied;
        }
        source = err.source();
    }
    LoadError::Refused(one_line(err))
}

/// An error and its causes on one line, the verifier's log left out.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        let cause = err.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
        source = err.source();
    }
    // aya appends the whole verifier log to a refused program's error.
    match line.find("Verifier output") {
        Some(at) => line[..at].trim_end_matches(['.', ' ']).to_owned(),
        None => line.lines().next().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    /// The iterator, run here, finds this test's own socket under this process's pid.
    #[test]
    fn the_iterator_finds_this_process_s_socket() {
        let mut iterator = match SocketIterator::load() {
            Ok(iterator) => iterator,
            Err(err) => {
                crate::testing::skip_or_fail(
                    "the_iterator_finds_this_process_s_socket",
                    &err.to_string(),
                );
                return;
            }
        };
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
        let inode = rustix::fs::fstat(socket.as_fd()).expect("fstat").st_ino;
        let table = iterator.read().expect("a run of the iterator");
        let pid = std::process::id();
        let (_, ours) = table
            .processes
            .iter()
            .find(|(p, _)| *p == pid)
            .expect("this process among those holding sockets");
        assert!(ours.contains(&inode), "{inode} in {ours:?}");
        assert_eq!(
            table.records,
            table
                .processes
                .iter()
                .map(|(_, s)| s.len() as u64)
                .sum::<u64>()
        );
        // Run again: the program stays loaded, the link of the first run is gone.
        assert!(iterator.read().is_ok());
    }
}
