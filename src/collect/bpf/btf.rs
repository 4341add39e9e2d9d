//! The kernel's BTF cut down to what the iterator program needs of it: the few structs whose
//! fields it reads (CO-RE) and the iterator's function, each at its own type id, every other
//! id a 12-byte stand-in.
//!
//! Owns reading the raw BTF format (`Documentation/bpf/btf.rst`: a header, a type section of
//! variable-length records whose position is their id, a string section). Pure: bytes in,
//! bytes out; it must not load anything into the kernel (the loader in `mod.rs` does).
//!
//! Why: the loader relocates the program's field reads against the kernel's BTF and finds the
//! iterator's attach id in it, and it parses whatever BTF it is given whole — the kernel's is
//! over 100,000 types, about 28 MiB and 45 ms to parse, for six structs and one function. The
//! cut keeps what the loader looks at:
//!
//! - ids: the iterator's function keeps its kernel id (the kernel checks the attach id
//!   against its own BTF), and so does everything else kept, so no reference needs renumbering;
//! - the named roots, and everything reachable from them without going through a pointer
//!   (embedded and anonymous structs and unions, arrays, typedefs, qualifiers, integers,
//!   enums): relocation walks members by name through anonymous members and compares the
//!   read field's type, resolving typedefs;
//! - a pointer is kept but not followed: relocation treats any two pointers as compatible.
//!
//! Ids up to the highest one kept that are not kept become anonymous `void *` records, and ids
//! beyond it are left out.

use std::collections::HashMap;

/// `BTF_MAGIC`, as the host writes it.
const MAGIC: u16 = 0xeb9f;
/// The size of the header this reads (version 1); `hdr_len` may say more.
const HEADER_LEN: u32 = 24;
/// Every type record starts with name offset, info and size-or-type.
const RECORD_LEN: usize = 12;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// What to keep: structs (or unions) by name, and one function by name.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub structs: &'a [&'a str],
    pub function: &'a str,
}

/// Why the kernel's BTF could not be cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CutError {
    #[error("the kernel's BTF is malformed: {0}")]
    Malformed(&'static str),
    #[error("the kernel's BTF has a type of kind {0}, newer than this reader")]
    UnknownKind(u32),
    #[error("the kernel's BTF has no {0}")]
    Missing(String),
}

/// The header's fields this needs, offsets made absolute.
struct Header {
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
}

/// One type record: where it starts in the type section and how long it is.
#[derive(Clone, Copy)]
struct Record {
    at: u32,
    len: u32,
}

/// The kernel's BTF, indexed by type id.
struct Index<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// `records[id - 1]`: id 0 is `void`, which has no record.
    records: Vec<Record>,
}

/// The cut: a BTF blob for the loader, holding `wanted` at their kernel ids.
///
/// # Errors
/// When `btf` is not BTF this can read, or lacks one of `wanted`.
pub fn cut(btf: &[u8], wanted: &Wanted<'_>) -> Result<Vec<u8>, CutError> {
    let index = Index::new(btf)?;
    let mut roots = Vec::with_capacity(wanted.structs.len() + 1);
    for name in wanted.structs {
        roots.push(index.find(name, &[KIND_STRUCT, KIND_UNION])?);
    }
    roots.push(index.find(wanted.function, &[KIND_FUNC])?);
    let kept = index.reachable(&roots)?;
    index.write(&kept)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]))
}

fn kind_of(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

fn vlen_of(info: u32) -> usize {
    (info & 0xffff) as usize
}

/// The length of the data after a record's 12 bytes, by kind.
fn trailer_len(kind: u32, vlen: usize) -> Result<usize, CutError> {
    Ok(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        other => return Err(CutError::UnknownKind(other)),
    })
}

fn header(btf: &[u8]) -> Result<Header, CutError> {
    let malformed = CutError::Malformed;
    if btf.len() < HEADER_LEN as usize {
        return Err(malformed("shorter than its header"));
    }
    if u16::from_ne_bytes([btf[0], btf[1]]) != MAGIC {
        return Err(malformed("no BTF magic in the host's byte order"));
    }
    let field = |at| u32_at(btf, at).map(|v| v as usize).unwrap_or_default();
    let header_len = field(4);
    let section = |off: usize, len: usize| {
        let start = header_len.checked_add(off)?;
        let end = start.checked_add(len)?;
        (end <= btf.len()).then_some(start..end)
    };
    let types = section(field(8), field(12)).ok_or(malformed("its type section is cut short"))?;
    let strings =
        section(field(16), field(20)).ok_or(malformed("its string section is cut short"))?;
    Ok(Header { types, strings })
}

impl<'a> Index<'a> {
    fn new(btf: &'a [u8]) -> Result<Index<'a>, CutError> {
        let header = header(btf)?;
        let types = &btf[header.types];
        let strings = &btf[header.strings];
        let mut records = Vec::with_capacity(types.len() / 24);
        let mut at = 0usize;
        while at < types.len() {
            let info = u32_at(types, at + 4).ok_or(CutError::Malformed("a record cut short"))?;
            let len = RECORD_LEN + trailer_len(kind_of(info), vlen_of(info))?;
            if at + len > types.len() {
                return Err(CutError::Malformed("a record cut short"));
            }
            records.push(Record {
                at: u32::try_from(at).map_err(|_| CutError::Malformed("over 4 GiB"))?,
                len: u32::try_from(len).map_err(|_| CutError::Malformed("over 4 GiB"))?,
            });
            at += len;
        }
        Ok(Index {
            types,
            strings,
            records,
        })
    }

    fn record(&self, id: u32) -> Option<&'a [u8]> {
        let record = self.records.get((id as usize).checked_sub(1)?)?;
        self.types
            .get(record.at as usize..(record.at + record.len) as usize)
    }

    /// The NUL-terminated string at `offset`, without its NUL.
    fn string(&self, offset: u32) -> &'a [u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// The id of the type named `name` of one of `kinds`.
    fn find(&self, name: &str, kinds: &[u32]) -> Result<u32, CutError> {
        (1..)
            .zip(&self.records)
            .find(|&(_, record)| {
                let at = record.at as usize;
                let word = |offset| u32_at(self.types, at + offset).unwrap_or_default();
                kinds.contains(&kind_of(word(4))) && self.string(word(0)) == name.as_bytes()
            })
            .map(|(id, _)| id)
            .ok_or_else(|| CutError::Missing(name.to_owned()))
    }

    /// The ids reachable from `roots` without going through a pointer, sorted.
    fn reachable(&self, roots: &[u32]) -> Result<Vec<u32>, CutError> {
        let mut seen = vec![false; self.records.len() + 1];
        let mut kept = Vec::new();
        let mut pending = roots.to_vec();
        while let Some(id) = pending.pop() {
            if id == 0 || std::mem::replace(&mut seen[id as usize], true) {
                continue;
            }
            let record = self.record(id).ok_or(CutError::Malformed(
                "a reference to a type that does not exist",
            ))?;
            kept.push(id);
            let word = |at| u32_at(record, at).unwrap_or_default();
            let info = word(4);
            match kind_of(info) {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                | KIND_FUNC => pending.push(word(8)),
                KIND_ARRAY => pending.extend([word(12), word(16)]),
                KIND_STRUCT | KIND_UNION => {
                    pending.extend((0..vlen_of(info)).map(|i| word(RECORD_LEN + 12 * i + 4)));
                }
                KIND_FUNC_PROTO => {
                    pending.push(word(8));
                    pending.extend((0..vlen_of(info)).map(|i| word(RECORD_LEN + 8 * i + 4)));
                }
                _ => {}
            }
        }
        kept.sort_unstable();
        Ok(kept)
    }

    /// The blob: a header, ids 1 to the highest kept (the kept ones copied with their names
    /// moved to the new string section, the others `void *`), the strings they name.
    fn write(&self, kept: &[u32]) -> Result<Vec<u8>, CutError> {
        let last = kept.last().copied().unwrap_or_default();
        let mut types = Vec::with_capacity(last as usize * RECORD_LEN);
        let mut strings = vec![0u8];
        let mut moved: HashMap<u32, u32> = HashMap::new();
        let mut name = |offset: u32, strings: &mut Vec<u8>| -> Result<u32, CutError> {
            if offset == 0 {
                return Ok(0);
            }
            if let Some(&to) = moved.get(&offset) {
                return Ok(to);
            }
            let to = u32::try_from(strings.len()).map_err(|_| CutError::Malformed("over 4 GiB"))?;
            strings.extend_from_slice(self.string(offset));
            strings.push(0);
            moved.insert(offset, to);
            Ok(to)
        };
        let mut kept = kept.iter().peekable();
        for id in 1..=last {
            if kept.next_if_eq(&&id).is_none() {
                types.extend_from_slice(&0u32.to_ne_bytes());
                types.extend_from_slice(&(KIND_PTR << 24).to_ne_bytes());
                types.extend_from_slice(&0u32.to_ne_bytes());
                continue;
            }
            let record = self.record(id).ok_or(CutError::Malformed(
                "a reference to a type that does not exist",
            ))?;
            let start = types.len();
            types.extend_from_slice(record);
            let info = u32_at(record, 4).unwrap_or_default();
            // Where the names are: the record's own, then one per member, variant or parameter.
            let stride = match kind_of(info) {
                KIND_STRUCT | KIND_UNION | KIND_ENUM64 => 12,
                KIND_ENUM | KIND_FUNC_PROTO => 8,
                _ => 0,
            };
            let members = if stride == 0 { 0 } else { vlen_of(info) };
            for at in std::iter::once(0).chain((0..members).map(|i| RECORD_LEN + stride * i)) {
                let offset = u32_at(record, at).unwrap_or_default();
                let to = name(offset, &mut strings)?;
                types[start + at..start + at + 4].copy_from_slice(&to.to_ne_bytes());
            }
        }
        let mut blob = Vec::with_capacity(HEADER_LEN as usize + types.len() + strings.len());
        let len = |bytes: &[u8]| u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        blob.extend_from_slice(&MAGIC.to_ne_bytes());
        blob.extend_from_slice(&[1, 0]);
        for word in [HEADER_LEN, 0, len(&types), len(&types), len(&strings)] {
            blob.extend_from_slice(&word.to_ne_bytes());
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use aya::{Btf, Endianness};

    use super::*;

    /// A BTF blob written here by hand, as pahole lays out the kernel's: what the tests cut.
    #[derive(Default)]
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next: u32,
    }

    #[allow(clippy::cast_possible_truncation)] // samples of a few hundred bytes
    impl Builder {
        fn new() -> Builder {
            Builder {
                types: Vec::new(),
                strings: vec![0],
                next: 1,
            }
        }

        fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            at
        }

        fn words(&mut self, words: &[u32]) {
            for word in words {
                self.types.extend_from_slice(&word.to_ne_bytes());
            }
        }

        fn record(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
            let name = self.name(name);
            self.words(&[name, (kind << 24) | vlen, size_or_type]);
            self.next += 1;
            self.next - 1
        }

        fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let id = self.record(name, KIND_INT, 0, size);
            self.words(&[(u32::from(signed) << 24) | (size * 8)]);
            id
        }

        fn structure(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let id = self.record(name, kind, members.len() as u32, size);
            for &(member, ty, bit_offset) in members {
                let member = self.name(member);
                self.words(&[member, ty, bit_offset]);
            }
            id
        }

        fn finish(self) -> Vec<u8> {
            let mut blob = Vec::new();
            blob.extend_from_slice(&MAGIC.to_ne_bytes());
            blob.extend_from_slice(&[1, 0]);
            let types = self.types.len() as u32;
            for word in [24, 0, types, types, self.strings.len() as u32] {
                blob.extend_from_slice(&u32::to_ne_bytes(word));
            }
            blob.extend_from_slice(&self.types);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    /// `struct thing { pid_t id; union { struct other *link; long spare; }; int pad[2]; }`
    /// among unrelated types, and a function after them; returns the blob and the ids of
    /// `thing`, the anonymous union, `other` and the function.
    fn sample() -> (Vec<u8>, [u32; 4]) {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let long = b.int("long", 8, true);
        let pid_t = b.record("pid_t", KIND_TYPEDEF, 0, int);
        let unrelated = b.structure(KIND_STRUCT, "unrelated", 8, &[("x", long, 0)]);
        let other = b.structure(KIND_STRUCT, "other", 8, &[("x", long, 0)]);
        let to_other = b.record("", KIND_PTR, 0, other);
        let union = b.structure(
            KIND_UNION,
            "",
            8,
            &[("link", to_other, 0), ("spare", long, 0)],
        );
        let pair = b.record("", KIND_ARRAY, 0, 0);
        b.words(&[int, int, 2]);
        let thing = b.structure(
            KIND_STRUCT,
            "thing",
            24,
            &[("id", pid_t, 0), ("", union, 64), ("pad", pair, 128)],
        );
        b.record("", KIND_PTR, 0, unrelated);
        let proto = b.record("", KIND_FUNC_PROTO, 1, int);
        let arg = b.name("arg");
        b.words(&[arg, to_other]);
        let function = b.record("walk", KIND_FUNC, 0, proto);
        (b.finish(), [thing, union, other, function])
    }

    const WANTED: Wanted<'static> = Wanted {
        structs: &["thing"],
        function: "walk",
    };

    #[test]
    fn what_is_kept_keeps_its_id_and_the_rest_becomes_void_pointers() {
        let (blob, [thing, union, other, function]) = sample();
        let cut = cut(&blob, &WANTED).expect("a cut");
        let index = Index::new(&cut).expect("the cut is BTF");
        assert_eq!(
            u32::try_from(index.records.len()).expect("a few ids"),
            function,
            "nothing past the last kept id"
        );
        assert_eq!(index.find("thing", &[KIND_STRUCT]), Ok(thing));
        assert_eq!(index.find("walk", &[KIND_FUNC]), Ok(function));
        // The anonymous union is embedded: kept with its members' names; `other` is only
        // pointed to: a stand-in.
        let record = index.record(union).expect("the union");
        assert_eq!(kind_of(u32_at(record, 4).expect("an info")), KIND_UNION);
        assert_eq!(index.string(u32_at(record, 12).expect("a member")), b"link");
        assert_eq!(
            index.find("other", &[KIND_STRUCT]),
            Err(CutError::Missing("other".into()))
        );
        let record = index.record(other).expect("a stand-in");
        assert_eq!(
            record,
            [0, KIND_PTR << 24, 0].map(u32::to_ne_bytes).concat()
        );
        // The unrelated struct's name is not carried over.
        assert!(!cut.windows(9).any(|w| w == b"unrelated"));
    }

    #[test]
    fn the_loader_reads_the_cut_as_it_read_the_whole() {
        let (blob, [thing, _, _, function]) = sample();
        let whole = Btf::parse(&blob, Endianness::default()).expect("the sample parses");
        let cut = Btf::parse(&cut(&blob, &WANTED).expect("a cut"), Endianness::default())
            .expect("the cut parses");
        for (name, kind, id) in [
            ("thing", aya_obj::btf::BtfKind::Struct, thing),
            ("walk", aya_obj::btf::BtfKind::Func, function),
        ] {
            assert_eq!(whole.id_by_type_name_kind(name, kind).expect("found"), id);
            assert_eq!(cut.id_by_type_name_kind(name, kind).expect("found"), id);
        }
    }

    #[test]
    fn a_missing_root_or_a_damaged_blob_is_an_error() {
        let (blob, _) = sample();
        let missing = Wanted {
            structs: &["nothing"],
            function: "walk",
        };
        assert_eq!(
            cut(&blob, &missing),
            Err(CutError::Missing("nothing".into()))
        );
        assert!(matches!(
            cut(&blob[..20], &WANTED),
            Err(CutError::Malformed(_))
        ));
        assert!(matches!(
            cut(&blob[..blob.len() - 40], &WANTED),
            Err(CutError::Malformed(_))
        ));
        let mut unknown = blob.clone();
        unknown[24 + 7] = 30; // the first record's kind
        assert_eq!(cut(&unknown, &WANTED), Err(CutError::UnknownKind(30)));
    }

    /// On the running kernel: the iterator's function and `task_struct` keep their ids, and
    /// the cut is a small fraction of the whole.
    #[test]
    fn the_running_kernel_s_btf_cuts_small() {
        let Ok(kernel) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::testing::skip_or_fail(
                "the_running_kernel_s_btf_cuts_small",
                "the kernel publishes no BTF at /sys/kernel/btf/vmlinux",
            );
            return;
        };
        let wanted = Wanted {
            structs: &["task_struct", "file"],
            function: "bpf_iter_task_file",
        };
        let cut = cut(&kernel, &wanted).expect("a cut of the kernel's BTF");
        assert!(
            cut.len() * 4 < kernel.len(),
            "{} of {}",
            cut.len(),
            kernel.len()
        );
        let whole = Index::new(&kernel).expect("the kernel's BTF");
        let small = Index::new(&cut).expect("the cut");
        for (name, kind) in [
            ("task_struct", KIND_STRUCT),
            ("bpf_iter_task_file", KIND_FUNC),
        ] {
            assert_eq!(
                whole.find(name, &[kind]),
                small.find(name, &[kind]),
                "{name}"
            );
        }
    }
}
