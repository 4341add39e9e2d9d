//! What each socket inode of a dump is ([`Slot`]), eight bytes a socket.
//!
//! A full dump of a busy host indexes every socket it meets, and the join then looks every
//! socket descriptor of every process up in that index. A hash map costs a 24-byte entry
//! per socket, in a table that is at most seven-eighths full and doubles as it grows, and
//! touches every page it spans: about 50 MiB at a million sockets. This index is a plain
//! vector instead, each socket packed into one `u64` (its inode in the high half, its slot
//! in the low half), appended as the dump streams by and sorted once when the dump ends.
//! A vector's unused capacity is never written, so only the sockets themselves are resident.
//!
//! Socket inodes come from the kernel's `get_next_ino()`, an `unsigned int`: they fit the
//! high half. Anything wider would still be answered, from a small map of its own.
//!
//! Lookups come in sorted runs (a process's descriptors, sorted by inode), so a [`Cursor`]
//! gallops forward from where the last one ended instead of searching the whole vector.

use crate::collect::vocab::InodeMap;
use crate::model::TcpState;

/// What a socket inode names, and where its record lives when it is kept in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Tcp(TcpState),
    TcpListener(usize),
    Tracked(usize),
    /// An ESTABLISHED socket whose other end is gone, in `Sockets::peer_gone`.
    PeerGone(usize),
    Unix,
    UnixListener(usize),
    /// A UDP socket kept in full: counted among a process's other sockets.
    Udp(usize),
}

/// The slot's kind in the top four bits of its packed form; plain kinds below kept ones, so
/// that where one inode was indexed twice (counted as it streamed by, then kept), the kept
/// slot sorts last and wins.
const TAG_SHIFT: u32 = 28;
const PAYLOAD: u32 = (1 << TAG_SHIFT) - 1;
const TAG_TCP: u32 = 0;
const TAG_UNIX: u32 = 1;
const TAG_TCP_LISTENER: u32 = 2;
const TAG_TRACKED: u32 = 3;
const TAG_PEER_GONE: u32 = 4;
const TAG_UNIX_LISTENER: u32 = 5;
const TAG_UDP: u32 = 6;

/// A TCP state as a number below 512: the classic states by their position, then the rest.
fn state_code(state: TcpState) -> u32 {
    match state {
        TcpState::BoundInactive => 11,
        TcpState::Other(n) => 256 + u32::from(n),
        classic => TcpState::CLASSIC
            .iter()
            .position(|&c| c == classic)
            .and_then(|at| u32::try_from(at).ok())
            .unwrap_or(12),
    }
}

fn state_of(code: u32) -> TcpState {
    match code {
        11 => TcpState::BoundInactive,
        256.. => TcpState::Other(u8::try_from(code - 256).unwrap_or(u8::MAX)),
        _ => TcpState::CLASSIC
            .get(code as usize)
            .copied()
            .unwrap_or(TcpState::Other(u8::MAX)),
    }
}

impl Slot {
    /// The slot in 32 bits, when its list position fits in 28.
    fn pack(self) -> Option<u32> {
        let (tag, payload) = match self {
            Slot::Tcp(state) => (TAG_TCP, state_code(state) as usize),
            Slot::Unix => (TAG_UNIX, 0),
            Slot::TcpListener(i) => (TAG_TCP_LISTENER, i),
            Slot::Tracked(i) => (TAG_TRACKED, i),
            Slot::PeerGone(i) => (TAG_PEER_GONE, i),
            Slot::UnixListener(i) => (TAG_UNIX_LISTENER, i),
            Slot::Udp(i) => (TAG_UDP, i),
        };
        let payload = u32::try_from(payload).ok().filter(|&p| p <= PAYLOAD)?;
        Some(tag << TAG_SHIFT | payload)
    }

    fn unpack(packed: u32) -> Slot {
        let payload = packed & PAYLOAD;
        let at = payload as usize;
        match packed >> TAG_SHIFT {
            TAG_TCP => Slot::Tcp(state_of(payload)),
            TAG_TCP_LISTENER => Slot::TcpListener(at),
            TAG_TRACKED => Slot::Tracked(at),
            TAG_PEER_GONE => Slot::PeerGone(at),
            TAG_UNIX_LISTENER => Slot::UnixListener(at),
            TAG_UDP => Slot::Udp(at),
            _ => Slot::Unix,
        }
    }
}

/// Socket inode -> [`Slot`], for one dump. Filled in any order with [`SlotIndex::insert`];
/// looked up after [`SlotIndex::finish`].
#[derive(Debug, Default)]
pub struct SlotIndex {
    /// `inode << 32 | packed slot`; sorted (and one entry per inode) once finished.
    packed: Vec<u64>,
    /// Inodes wider than 32 bits, and slots past 2^28 in their list: never met on Linux
    /// today, answered all the same.
    wide: InodeMap<Slot>,
    finished: bool,
}

impl SlotIndex {
    /// Room for about `n` sockets: reserved, not touched.
    pub fn with_capacity(n: usize) -> SlotIndex {
        SlotIndex {
            packed: Vec::with_capacity(n),
            ..SlotIndex::default()
        }
    }

    /// This index's room, emptied, for another dump to fill: room for `n` sockets when it
    /// has none (reserved, not touched), else its own, grown only as the dump needs. A
    /// collector hands each full dump the index of the one before: at a million sockets,
    /// 8 MB neither allocated again nor held twice.
    pub fn reuse(mut self, n: usize) -> SlotIndex {
        if self.packed.capacity() == 0 {
            return SlotIndex::with_capacity(n);
        }
        self.packed.clear();
        self.wide.clear();
        self.finished = false;
        self
    }

    /// Replace each slot of a finished index by what `f` makes of it, in place, dropping
    /// the inodes for which it says `None`.
    pub fn map_slots(&mut self, f: impl Fn(Slot) -> Option<Slot>) {
        debug_assert!(self.finished, "a slot index is mapped once finished");
        let wide = std::mem::take(&mut self.wide);
        self.wide = wide
            .into_iter()
            .filter_map(|(inode, slot)| f(slot).map(|slot| (inode, slot)))
            .collect();
        let mut write = 0;
        for read in 0..self.packed.len() {
            let entry = self.packed[read];
            let Some(slot) = f(Slot::unpack(low_half(entry))) else {
                continue;
            };
            match slot.pack() {
                Some(packed) => {
                    // The inode stays, so the order holds.
                    self.packed[write] = entry >> 32 << 32 | u64::from(packed);
                    write += 1;
                }
                None => {
                    self.wide.insert(entry >> 32, slot);
                }
            }
        }
        self.packed.truncate(write);
    }

    /// Index `inode` as `slot`. Indexed twice, an inode keeps its kept slot (a listener, a
    /// tracked socket, a ghost) over a plain count (of two kept ones, the greater).
    pub fn insert(&mut self, inode: u64, slot: Slot) {
        match (u32::try_from(inode), slot.pack()) {
            (Ok(narrow), Some(packed)) => {
                self.packed
                    .push(u64::from(narrow) << 32 | u64::from(packed));
                self.finished = false;
            }
            _ => {
                self.wide.insert(inode, slot);
            }
        }
    }

    /// Sort the index for lookups: once, after the last insert of a dump (and again after
    /// any later one).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        // Equal inodes sort plain before kept (the tags say so): the last of each run wins.
        self.packed.sort_unstable();
        let mut write = 0;
        for read in 0..self.packed.len() {
            let entry = self.packed[read];
            if write > 0 && self.packed[write - 1] >> 32 == entry >> 32 {
                self.packed[write - 1] = entry;
            } else {
                self.packed[write] = entry;
                write += 1;
            }
        }
        self.packed.truncate(write);
        self.finished = true;
    }

    /// Whether nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty() && self.wide.is_empty()
    }

    /// How many inodes are indexed (counted twice where indexed twice, until finished).
    pub fn len(&self) -> usize {
        self.packed.len() + self.wide.len()
    }

    /// What `inode` is, by a search of the whole index.
    #[cfg(test)]
    pub fn get(&self, inode: u64) -> Option<Slot> {
        self.cursor().find(inode)
    }

    /// A cursor for a run of lookups in ascending inode order.
    pub fn cursor(&self) -> Cursor<'_> {
        debug_assert!(self.finished, "a slot index is looked up once finished");
        Cursor { index: self, at: 0 }
    }

    /// Every inode and its slot, in no promised order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        let packed = self
            .packed
            .iter()
            .map(|&e| (e >> 32, Slot::unpack(low_half(e))));
        packed.chain(self.wide.iter().map(|(&inode, &slot)| (inode, slot)))
    }
}

/// The packed slot of an entry.
#[allow(clippy::cast_possible_truncation)] // the low half, on purpose
fn low_half(entry: u64) -> u32 {
    entry as u32
}

/// Lookups in a finished [`SlotIndex`], fastest in ascending inode order: each search
/// starts where the last one ended and gallops forward; a smaller inode searches from the
/// start again.
pub struct Cursor<'a> {
    index: &'a SlotIndex,
    at: usize,
}

impl Cursor<'_> {
    pub fn find(&mut self, inode: u64) -> Option<Slot> {
        let Ok(narrow) = u32::try_from(inode) else {
            return self.index.wide.get(&inode).copied();
        };
        let packed = &self.index.packed;
        match gallop(packed.len(), &mut self.at, u64::from(narrow), |i| {
            packed[i] >> 32
        }) {
            Some(i) => Some(Slot::unpack(low_half(packed[i]))),
            None if self.index.wide.is_empty() => None,
            None => self.index.wide.get(&inode).copied(),
        }
    }
}

/// Search entries `0..len`, sorted by `inode_at`, for `key`, from `*at` forward when the
/// entry there is not past it (from the start otherwise), in steps that double until they
/// pass it. Leaves `*at` where the search ended.
fn gallop(len: usize, at: &mut usize, key: u64, inode_at: impl Fn(usize) -> u64) -> Option<usize> {
    if *at >= len || inode_at(*at) > key {
        *at = 0;
    }
    let (mut lo, mut hi, mut step) = (*at, *at, 1);
    while hi < len && inode_at(hi) < key {
        lo = hi;
        hi = lo + step;
        step *= 2;
    }
    let hi = hi.min(len);
    // Binary search of lo..hi: the first entry not below `key`.
    let (mut first, mut count) = (lo, hi - lo);
    while count > 0 {
        let half = count / 2;
        if inode_at(first + half) < key {
            first += half + 1;
            count -= half + 1;
        } else {
            count = half;
        }
    }
    *at = first;
    (first < len && inode_at(first) == key).then_some(first)
}

/// The indexes of several namespaces' dumps as one (socket inodes are unique across
/// namespaces: sockfs is one filesystem), each entry with its namespace's position: 16 bytes
/// a socket, for a pass over several namespaces only.
#[derive(Debug, Default)]
pub struct MergedIndex {
    /// `(inode << 32 | packed slot, namespace)`, sorted.
    packed: Vec<(u64, u32)>,
    wide: InodeMap<(usize, Slot)>,
}

impl MergedIndex {
    /// Merge `indexes` (finished or not), in namespace order, consuming each as it goes.
    pub fn new(indexes: Vec<SlotIndex>) -> MergedIndex {
        let mut merged = MergedIndex::default();
        merged
            .packed
            .reserve(indexes.iter().map(|i| i.packed.len()).sum());
        for (ns, mut index) in indexes.into_iter().enumerate() {
            index.finish();
            let ns32 = u32::try_from(ns).unwrap_or(u32::MAX);
            merged
                .packed
                .extend(index.packed.iter().map(|&e| (e, ns32)));
            merged.wide.extend(
                index
                    .wide
                    .into_iter()
                    .map(|(inode, slot)| (inode, (ns, slot))),
            );
        }
        merged.packed.sort_unstable();
        merged
    }

    pub fn cursor(&self) -> MergedCursor<'_> {
        MergedCursor { index: self, at: 0 }
    }

    /// How many inodes are indexed.
    pub fn len(&self) -> usize {
        self.packed.len() + self.wide.len()
    }

    /// Every inode, with its namespace's position and its slot, in no promised order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64, Slot)> + '_ {
        let packed = self
            .packed
            .iter()
            .map(|&(e, ns)| (ns as usize, e >> 32, Slot::unpack(low_half(e))));
        packed.chain(
            self.wide
                .iter()
                .map(|(&inode, &(ns, slot))| (ns, inode, slot)),
        )
    }
}

/// Lookups in a [`MergedIndex`], as a [`Cursor`] does them.
pub struct MergedCursor<'a> {
    index: &'a MergedIndex,
    at: usize,
}

impl MergedCursor<'_> {
    /// The namespace position and slot of `inode`.
    pub fn find(&mut self, inode: u64) -> Option<(usize, Slot)> {
        let Ok(narrow) = u32::try_from(inode) else {
            return self.index.wide.get(&inode).copied();
        };
        let packed = &self.index.packed;
        match gallop(packed.len(), &mut self.at, u64::from(narrow), |i| {
            packed[i].0 >> 32
        }) {
            Some(i) => {
                let (entry, ns) = packed[i];
                Some((ns as usize, Slot::unpack(low_half(entry))))
            }
            None if self.index.wide.is_empty() => None,
            None => self.index.wide.get(&inode).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_slot() -> Vec<Slot> {
        let mut slots: Vec<Slot> = TcpState::CLASSIC.iter().map(|&s| Slot::Tcp(s)).collect();
        slots.extend([
            Slot::Tcp(TcpState::BoundInactive),
            Slot::Tcp(TcpState::Other(0)),
            Slot::Tcp(TcpState::Other(255)),
            Slot::Unix,
            Slot::TcpListener(0),
            Slot::Tracked(7),
            Slot::PeerGone(PAYLOAD as usize),
            Slot::UnixListener(12),
            Slot::Udp(3),
        ]);
        slots
    }

    #[test]
    fn every_slot_packs_and_unpacks_to_itself() {
        for slot in every_slot() {
            let packed = slot.pack().expect("fits");
            assert_eq!(Slot::unpack(packed), slot);
        }
        assert_eq!(Slot::Tracked(PAYLOAD as usize + 1).pack(), None);
    }

    #[test]
    fn lookups_find_what_was_inserted_in_any_order() {
        let mut index = SlotIndex::default();
        let slots = every_slot();
        // Inodes out of order, far apart and near: as a dump of many namespaces brings them.
        let inodes: Vec<u64> = (0..slots.len() as u64)
            .map(|i| (i * 7_919 + 13) % 100_003 + 1)
            .collect();
        for (&inode, &slot) in inodes.iter().zip(&slots).rev() {
            index.insert(inode, slot);
        }
        index.insert(u64::from(u32::MAX) + 5, Slot::Unix);
        index.insert(9, Slot::Tracked(PAYLOAD as usize + 1));
        index.finish();
        assert_eq!(index.len(), slots.len() + 2);
        for (&inode, &slot) in inodes.iter().zip(&slots) {
            assert_eq!(index.get(inode), Some(slot), "inode {inode}");
        }
        assert_eq!(index.get(u64::from(u32::MAX) + 5), Some(Slot::Unix));
        assert_eq!(index.get(9), Some(Slot::Tracked(PAYLOAD as usize + 1)));
        assert_eq!(index.get(100_100), None);
        assert_eq!(index.get(0), None);
        let mut sorted = inodes.clone();
        sorted.sort_unstable();
        let mut cursor = index.cursor();
        for inode in sorted {
            assert!(
                cursor.find(inode).is_some(),
                "inode {inode} in a sorted run"
            );
            assert_eq!(cursor.find(inode + 100_010), None);
        }
        assert_eq!(index.iter().count(), index.len());
    }

    #[test]
    fn a_kept_slot_wins_over_a_plain_count_of_the_same_inode() {
        let mut index = SlotIndex::default();
        index.insert(5, Slot::PeerGone(0));
        index.insert(5, Slot::Tcp(TcpState::Established));
        index.insert(6, Slot::Tcp(TcpState::Established));
        index.insert(6, Slot::PeerGone(1));
        index.insert(7, Slot::Tracked(0));
        index.insert(7, Slot::Tracked(1));
        index.finish();
        assert_eq!(index.get(5), Some(Slot::PeerGone(0)));
        assert_eq!(index.get(6), Some(Slot::PeerGone(1)));
        assert_eq!(
            index.get(7),
            Some(Slot::Tracked(1)),
            "the greater of two kept"
        );
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn an_index_mapped_in_place_keeps_its_order_and_drops_what_it_is_told_to() {
        let mut index = SlotIndex::default();
        index.insert(30, Slot::Tracked(0));
        index.insert(10, Slot::Udp(0));
        index.insert(20, Slot::TcpListener(4));
        index.insert(40, Slot::Unix);
        index.insert(u64::from(u32::MAX) + 1, Slot::UnixListener(0));
        index.finish();
        index.map_slots(|slot| match slot {
            Slot::Udp(_) => None,
            Slot::Tracked(_) => Some(Slot::Tcp(TcpState::CloseWait)),
            Slot::TcpListener(_) => Some(Slot::Tcp(TcpState::Listen)),
            Slot::UnixListener(_) => Some(Slot::Unix),
            plain => Some(plain),
        });
        assert_eq!(index.len(), 4);
        assert_eq!(index.get(10), None);
        assert_eq!(index.get(20), Some(Slot::Tcp(TcpState::Listen)));
        assert_eq!(index.get(30), Some(Slot::Tcp(TcpState::CloseWait)));
        assert_eq!(index.get(40), Some(Slot::Unix));
        assert_eq!(index.get(u64::from(u32::MAX) + 1), Some(Slot::Unix));
    }

    #[test]
    fn a_reused_index_keeps_its_room_and_nothing_else() {
        let mut index = SlotIndex::with_capacity(1000);
        for inode in 1..=1000 {
            index.insert(inode, Slot::Unix);
        }
        index.insert(u64::from(u32::MAX) + 1, Slot::Unix);
        index.finish();
        let room = index.packed.capacity();
        let mut again = index.reuse(10);
        assert!(again.is_empty());
        assert_eq!(again.packed.capacity(), room, "its own room, not the hint");
        again.insert(7, Slot::Tcp(TcpState::Established));
        again.finish();
        assert_eq!(again.get(7), Some(Slot::Tcp(TcpState::Established)));
        assert_eq!(again.get(1), None);
        let fresh = SlotIndex::default().reuse(64);
        assert!(
            fresh.packed.capacity() >= 64,
            "an empty one sized by the hint"
        );
    }

    #[test]
    fn a_cursor_searching_backwards_starts_over() {
        let mut index = SlotIndex::default();
        for inode in (1..=1000).rev() {
            index.insert(inode * 2, Slot::Unix);
        }
        index.finish();
        let mut cursor = index.cursor();
        assert_eq!(cursor.find(2000), Some(Slot::Unix));
        assert_eq!(cursor.find(2), Some(Slot::Unix));
        assert_eq!(cursor.find(3), None);
        assert_eq!(cursor.find(1001 * 2), None);
        assert_eq!(cursor.find(500), Some(Slot::Unix));
    }

    #[test]
    fn merged_indexes_say_which_namespace_each_inode_is_of() {
        let mut first = SlotIndex::default();
        let mut second = SlotIndex::default();
        for inode in 1..=100 {
            let index = if inode % 3 == 0 {
                &mut second
            } else {
                &mut first
            };
            index.insert(inode, Slot::Tcp(TcpState::Established));
        }
        second.insert(300, Slot::TcpListener(0));
        second.insert(u64::from(u32::MAX) + 1, Slot::Unix);
        let merged = MergedIndex::new(vec![first, second]);
        let mut cursor = merged.cursor();
        for inode in 1..=100 {
            let ns = usize::from(inode % 3 == 0);
            let want = (ns, Slot::Tcp(TcpState::Established));
            assert_eq!(cursor.find(inode), Some(want), "inode {inode}");
        }
        assert_eq!(cursor.find(300), Some((1, Slot::TcpListener(0))));
        assert_eq!(cursor.find(u64::from(u32::MAX) + 1), Some((1, Slot::Unix)));
        assert_eq!(cursor.find(101), None);
    }
}
