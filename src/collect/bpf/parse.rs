//! The records `bpf/task_sockets.bpf.c` writes, parsed: a pure function over the bytes read
//! from the iterator, so that the format has fixture tests without a kernel.

use super::super::vocab::SocketsOfEach;

/// One record: `u32 pid, u32 fd, u64 inode`, in host byte order.
pub const RECORD_LEN: usize = 16;

/// Every process's socket descriptors, as the iterator wrote them: sorted by pid, each list
/// in descriptor order (as `/proc/PID/fd` lists them), duplicates kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SocketsByPid {
    pub processes: SocketsOfEach,
    /// Socket descriptors in all.
    pub records: u64,
}

/// The iterator's output did not end on a record boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the BPF iterator's output ends with {0} bytes of a {RECORD_LEN}-byte record")]
pub struct TruncatedRecord(pub usize);

/// Builds [`SocketsByPid`] from the iterator's output, read in pieces of any size.
#[derive(Debug, Default)]
pub struct Records {
    table: SocketsByPid,
    /// The start of a record split between two reads.
    partial: Vec<u8>,
    /// Whether the pids came in ascending order so far (the iterator visits tasks by id).
    sorted: bool,
}

impl Records {
    pub fn new() -> Records {
        Records {
            sorted: true,
            ..Records::default()
        }
    }

    /// Take the next piece of the output.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if !self.partial.is_empty() {
            let need = RECORD_LEN - self.partial.len();
            let take = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < RECORD_LEN {
                return;
            }
            let record = std::mem::take(&mut self.partial);
            self.add(&record);
        }
        let mut records = bytes.chunks_exact(RECORD_LEN);
        for record in &mut records {
            self.add(record);
        }
        self.partial.extend_from_slice(records.remainder());
    }

    fn add(&mut self, record: &[u8]) {
        let pid = u32::from_ne_bytes(array(&record[0..4]));
        let inode = u64::from_ne_bytes(array(&record[8..16]));
        self.table.records += 1;
        match self.table.processes.last_mut() {
            Some((last, inodes)) if *last == pid => inodes.push(inode),
            last => {
                if last.is_some_and(|(last, _)| *last > pid) {
                    self.sorted = false;
                }
                self.table.processes.push((pid, vec![inode]));
            }
        }
    }

    /// The table, once the output has ended.
    pub fn finish(mut self) -> Result<SocketsByPid, TruncatedRecord> {
        if !self.partial.is_empty() {
            return Err(TruncatedRecord(self.partial.len()));
        }
        if !self.sorted {
            // A pid seen in two runs: stable, so each list keeps its order.
            self.table.processes.sort_by_key(|(pid, _)| *pid);
            let mut merged: Vec<(u32, Vec<u64>)> = Vec::with_capacity(self.table.processes.len());
            for (pid, inodes) in self.table.processes {
                match merged.last_mut() {
                    Some((last, kept)) if *last == pid => kept.extend(inodes),
                    _ => merged.push((pid, inodes)),
                }
            }
            self.table.processes = merged;
        }
        for (_, inodes) in &mut self.table.processes {
            inodes.shrink_to_fit();
        }
        Ok(self.table)
    }
}

/// `bytes`, of exactly `N` bytes, as an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0; N];
    array.copy_from_slice(bytes);
    array
}

/// The whole output at once.
pub fn parse_records(bytes: &[u8]) -> Result<SocketsByPid, TruncatedRecord> {
    let mut records = Records::new();
    records.push(bytes);
    records.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, fd: u32, inode: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&pid.to_ne_bytes());
        bytes.extend_from_slice(&fd.to_ne_bytes());
        bytes.extend_from_slice(&inode.to_ne_bytes());
        bytes
    }

    fn output(records: &[(u32, u32, u64)]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|&(pid, fd, inode)| record(pid, fd, inode))
            .collect()
    }

    #[test]
    fn records_are_grouped_by_process_in_descriptor_order() {
        let bytes = output(&[(1, 3, 100), (1, 7, 42), (17, 0, 9), (17, 4, 9), (301, 5, 7)]);
        let table = parse_records(&bytes).expect("whole records");
        assert_eq!(table.records, 5);
        assert_eq!(
            table.processes,
            vec![(1, vec![100, 42]), (17, vec![9, 9]), (301, vec![7])],
            "duplicates kept, as two descriptors of one socket are two entries in /proc"
        );
    }

    #[test]
    fn an_inode_past_32_bits_is_whole() {
        let bytes = output(&[(5, 1, 0x1_2345_6789)]);
        let table = parse_records(&bytes).expect("whole records");
        assert_eq!(table.processes, vec![(5, vec![0x1_2345_6789])]);
    }

    #[test]
    fn no_sockets_is_an_empty_table() {
        assert_eq!(parse_records(&[]), Ok(SocketsByPid::default()));
    }

    #[test]
    fn a_record_split_between_reads_is_joined() {
        let bytes = output(&[(2, 1, 10), (2, 2, 11), (3, 9, 12)]);
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let mut records = Records::new();
                records.push(&bytes[..cut]);
                records.push(&bytes[cut..second]);
                records.push(&bytes[second..]);
                assert_eq!(
                    records.finish().expect("whole records").processes,
                    vec![(2, vec![10, 11]), (3, vec![12])],
                    "cut at {cut} and {second}"
                );
            }
        }
    }

    #[test]
    fn a_truncated_output_is_an_error() {
        let mut bytes = output(&[(2, 1, 10)]);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_records(&bytes), Err(TruncatedRecord(3)));
    }

    #[test]
    fn a_process_seen_twice_is_one_entry() {
        let bytes = output(&[(9, 1, 1), (4, 1, 2), (9, 5, 3)]);
        let table = parse_records(&bytes).expect("whole records");
        assert_eq!(table.processes, vec![(4, vec![2]), (9, vec![1, 3])]);
    }
}
