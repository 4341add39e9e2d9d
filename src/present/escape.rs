//! The one escaper for names that come from outside the program, at the faces' boundary.
//!
//! sockscope runs as root and prints names that any local user chooses: a process's `comm`
//! (`prctl(PR_SET_NAME)` takes any byte but NUL), a unix socket's path (an abstract name is
//! any bytes), a namespace's or container's name, the kernel's own strings, and whatever a
//! recording holds. Written raw to a terminal, an escape sequence in such a name clears the
//! screen or sets the title, and a line break forges whole lines of a report or a second
//! status line of a check. Every face that writes text for a person or a line-oriented
//! consumer (the text report, `check`, `serve`'s label values, the dashboard, error
//! messages) passes those names through [`escape`]; the model and the JSON output keep them
//! exact.
//!
//! The notation, which reads back to the original bytes ([`unescape`]):
//!
//! | input | written as |
//! | --- | --- |
//! | ESC, line feed, carriage return, tab | `\e` `\n` `\r` `\t` |
//! | any other C0 control (U+0000–U+001F), DEL | `\xNN`, two lowercase hex digits, < `\x80` |
//! | a byte that is not part of valid UTF-8 | `\xNN`, always ≥ `\x80` |
//! | C1 controls (U+0080–U+009F), bidirectional overrides, isolates and marks (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), line and paragraph separators (U+2028, U+2029) | `\u{N}`, lowercase hex |
//! | a backslash followed by what would read as one of these forms (`\`, `e`, `n`, `r`, `t`, `x`, `u`) | `\\` |
//!
//! Any other backslash is written as itself, so `C:\temp` stays readable.

use std::borrow::Cow;

use crate::analyze::{Analysis, TargetKind};

/// `text` as it may be written to a terminal or a line-oriented consumer: no control
/// character, no bidirectional control, one line. Borrowed when nothing needed escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(escape_bytes(text.as_bytes()).into_owned())
}

/// [`escape`] for bytes that need not be UTF-8: each byte of an invalid sequence is `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.chars().any(|c| c == '\\' || needs_escape(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = Writer::default();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.char(c);
        }
        for &b in chunk.invalid() {
            out.form(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out.finish())
}

/// Escape, in place, every string of `a` that came from outside the program — names, paths,
/// labels, the host's strings, notes, and the findings' text that quotes them — for a face
/// that writes text for a person. Numbers and socket addresses need nothing.
pub fn escape_analysis(a: &mut Analysis) {
    let fix = |s: &mut String| {
        if let Cow::Owned(e) = escape(s) {
            *s = e;
        }
    };
    fix(&mut a.host.hostname);
    fix(&mut a.host.kernel);
    a.notes.iter_mut().for_each(fix);
    for ns in &mut a.netns {
        fix(&mut ns.id);
        fix(&mut ns.label);
        for l in &mut ns.listeners {
            fix(&mut l.local);
            l.owners.iter_mut().for_each(|o| fix(&mut o.comm));
            for a in &mut l.acceptors {
                fix(&mut a.comm);
                a.thread.iter_mut().for_each(fix);
                a.waiting_in.iter_mut().for_each(fix);
            }
        }
        ns.processes.iter_mut().for_each(|p| fix(&mut p.comm));
        for u in &mut ns.udp.sockets {
            u.owners.iter_mut().for_each(|o| fix(&mut o.comm));
        }
        for u in &mut ns.port_use {
            u.owners.iter_mut().for_each(|o| fix(&mut o.comm));
        }
    }
    for f in &mut a.findings {
        fix(&mut f.target.netns);
        match &mut f.target.kind {
            TargetKind::Listener { local, .. } | TargetKind::Socket { local, .. } => fix(local),
            TargetKind::Process { comm, .. } => fix(comm),
            TargetKind::Destination { remote, local, .. } => {
                fix(remote);
                local.iter_mut().for_each(fix);
            }
            TargetKind::Netns => {}
        }
        fix(&mut f.subject);
        fix(&mut f.summary);
        fix(&mut f.remedy);
        f.mentions.paths.iter_mut().for_each(fix);
        f.mentions.comms.iter_mut().for_each(fix);
        // The evidence is typed and stays exact: a face that writes it as text escapes each
        // of its strings with [`escape_json`].
    }
}

/// Escape, in place, every string of a JSON value: for a face that writes a finding's
/// evidence, serialised, as text.
pub fn escape_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let Cow::Owned(e) = escape(s) {
                *s = e;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(escape_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(escape_json),
        _ => {}
    }
}

/// Whether `c` is written as an escape form: a control character or one that reorders or
/// breaks the line around it.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The escaped text under construction. A backslash from the input is held back until the
/// next character shows whether it must be doubled.
#[derive(Default)]
struct Writer {
    out: String,
    backslash_pending: bool,
}

impl Writer {
    fn char(&mut self, c: char) {
        match c {
            '\\' => {
                self.flush_backslash('\\');
                self.backslash_pending = true;
            }
            '\u{1b}' => self.form("\\e"),
            '\n' => self.form("\\n"),
            '\r' => self.form("\\r"),
            '\t' => self.form("\\t"),
            c if u32::from(c) < 0x80 && needs_escape(c) => {
                self.form(&format!("\\x{:02x}", u32::from(c)));
            }
            c if needs_escape(c) => self.form(&format!("\\u{{{:x}}}", u32::from(c))),
            c => {
                self.flush_backslash(c);
                self.out.push(c);
            }
        }
    }

    /// An escape form: it starts with a backslash, so a pending one must be doubled.
    fn form(&mut self, form: &str) {
        self.flush_backslash('\\');
        self.out.push_str(form);
    }

    /// Write a held-back backslash, doubled when `next` would make it read as a form.
    fn flush_backslash(&mut self, next: char) {
        if std::mem::take(&mut self.backslash_pending) {
            self.out.push('\\');
            if matches!(next, '\\' | 'e' | 'n' | 'r' | 't' | 'x' | 'u') {
                self.out.push('\\');
            }
        }
    }

    fn finish(mut self) -> String {
        if self.backslash_pending {
            self.out.push('\\');
        }
        self.out
    }
}

/// The bytes [`escape_bytes`] was given, read back from what it wrote; `None` for text it
/// cannot have written. Shows that two different names never print the same.
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let form = &rest[at + 1..];
        let (bytes, used): (Vec<u8>, usize) = match form.as_bytes().first() {
            Some(b'\\') => (vec![b'\\'], 1),
            Some(b'e') => (vec![0x1b], 1),
            Some(b'n') => (vec![b'\n'], 1),
            Some(b'r') => (vec![b'\r'], 1),
            Some(b't') => (vec![b'\t'], 1),
            Some(b'x') => {
                let hex = form.get(1..3)?;
                (vec![u8::from_str_radix(hex, 16).ok()?], 3)
            }
            Some(b'u') => {
                let inner = form.strip_prefix("u{")?;
                let end = inner.find('}')?;
                let c = char::from_u32(u32::from_str_radix(&inner[..end], 16).ok()?)?;
                let mut buf = [0; 4];
                (c.encode_utf8(&mut buf).as_bytes().to_vec(), end + 3)
            }
            // A backslash before anything else stands for itself.
            _ => (vec![b'\\'], 0),
        };
        out.extend_from_slice(&bytes);
        rest = &form[used..];
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> String {
        let shown = escape_bytes(bytes).into_owned();
        assert!(
            !shown.chars().any(needs_escape),
            "{shown:?} holds a control character"
        );
        assert_eq!(
            unescape(&shown).as_deref(),
            Some(bytes),
            "{shown:?} reads back"
        );
        shown
    }

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for name in ["nginx", "@app.sock", "/run/x y.sock", "café", "名前"] {
            assert!(matches!(escape(name), Cow::Borrowed(n) if n == name));
        }
    }

    #[test]
    fn controls_become_visible_forms() {
        // The hostile name of the security issue: a screen clear, a title, a bell, a line
        // break and a right-to-left override.
        let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}x\n\u{202e}";
        assert_eq!(escape(hostile), "\\e[2J\\e]0;pwned\\x07x\\n\\u{202e}");
        assert_eq!(escape("a\rb\tc\u{7f}d\u{0}"), "a\\rb\\tc\\x7fd\\x00");
        assert_eq!(
            escape("\u{85}\u{9b}\u{2066}\u{2028}"),
            "\\u{85}\\u{9b}\\u{2066}\\u{2028}"
        );
        for bytes in [
            hostile.as_bytes(),
            b"a\rb\tc\x7fd\0",
            "\u{85}\u{9b}".as_bytes(),
        ] {
            round_trip(bytes);
        }
    }

    #[test]
    fn invalid_utf8_bytes_are_written_in_hex() {
        assert_eq!(round_trip(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn a_backslash_is_doubled_only_where_it_would_read_as_a_form() {
        assert_eq!(escape("C:\\temp"), "C:\\\\temp");
        assert_eq!(escape("a\\b"), "a\\b");
        assert_eq!(escape("end\\"), "end\\");
        assert_eq!(escape("\\x41"), "\\\\x41");
        assert_eq!(escape("\\\u{1b}"), "\\\\\\e");
        // A name that looks like an escaped one prints differently from the real thing.
        assert_ne!(escape("\\e[2J"), escape("\u{1b}[2J"));
        for bytes in [
            &b"\\\\"[..],
            b"\\\\\\",
            b"\\u{202e}",
            b"\\\xff",
            b"x\\",
            b"\\n\\\n",
        ] {
            round_trip(bytes);
        }
    }

    #[test]
    fn every_short_byte_string_round_trips() {
        // Every one- and two-byte input over an alphabet of the interesting bytes.
        let alphabet = [
            b'\\', b'e', b'x', b'u', b'{', b'a', 0x1b, b'\n', 0x7f, 0xc2, 0x85, 0xff,
        ];
        for &a in &alphabet {
            round_trip(&[a]);
            for &b in &alphabet {
                round_trip(&[a, b]);
                for &c in &alphabet {
                    round_trip(&[a, b, c]);
                }
            }
        }
    }
}
