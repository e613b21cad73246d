//! Bytes rendered for a human reading a report.

use std::fmt::Write as _;

/// Renders bytes for reading: valid UTF-8 as text, with control and invisible characters
/// escaped (`\n`, `\r`, `\t`, `\0`, `\\`, `\x1b`, `\u{feff}`); bytes that are not valid UTF-8
/// as `\xNN` (lower-case hex). Distinct inputs give distinct renderings: ASCII controls are
/// `\xNN` like raw bytes, which is unambiguous because both are the same single byte, while
/// non-ASCII characters that need escaping are `\u{…}`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() || is_invisible(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Characters that print as nothing or as a line break, so a reader could not see them: the
/// byte order mark (an SSE stream may start with one), zero-width characters, line and
/// paragraph separators, and non-ASCII spaces.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{feff}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{00ad}'
            | '\u{00a0}'
            | '\u{3000}'
    )
}

/// Whether `b` continues a multi-byte UTF-8 sequence.
fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// The byte range `[at - before, at + after)` of `bytes`, clamped, then widened by up to three
/// bytes at each end so that a multi-byte character is not cut (a cut character would render
/// as invalid bytes the daemon never sent).
pub(crate) fn window(bytes: &[u8], at: usize, before: usize, after: usize) -> (usize, usize) {
    let at = at.min(bytes.len());
    let mut start = at.saturating_sub(before);
    let mut end = at.saturating_add(after).min(bytes.len());
    for _ in 0..3 {
        if start > 0 && start < bytes.len() && is_continuation(bytes[start]) {
            start -= 1;
        }
        if end < bytes.len() && is_continuation(bytes[end]) {
            end += 1;
        }
    }
    (start, end)
}

/// `bytes[start..end]` rendered with [`escape_bytes`], with `…` marking cut ends.
pub(crate) fn excerpt(bytes: &[u8], (start, end): (usize, usize)) -> String {
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&escape_bytes(&bytes[start..end]));
    if end < bytes.len() {
        out.push('…');
    }
    out
}

/// Renders `bytes` whole when short; otherwise around `focus`, with the omitted lengths named,
/// so a report stays readable for a 150 KiB stream.
pub(crate) fn bounded(bytes: &[u8], focus: usize, limit: usize) -> String {
    if bytes.len() <= limit {
        return escape_bytes(bytes);
    }
    let (start, end) = window(bytes, focus, limit / 2, limit / 2);
    let mut out = String::new();
    if start > 0 {
        let _ = write!(out, "[{start} bytes omitted]");
    }
    out.push_str(&escape_bytes(&bytes[start..end]));
    if end < bytes.len() {
        let _ = write!(out, "[{} bytes omitted]", bytes.len() - end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_readable() {
        assert_eq!(escape_bytes("héllo 世界 🎉".as_bytes()), "héllo 世界 🎉");
        assert_eq!(escape_bytes(b"data: {\"a\":1}"), "data: {\"a\":1}");
    }

    #[test]
    fn controls_and_invisibles_are_escaped() {
        assert_eq!(
            escape_bytes(b"a\r\nb\tc\0\\\x1b\x7f"),
            "a\\r\\nb\\tc\\0\\\\\\x1b\\x7f"
        );
        assert_eq!(
            escape_bytes("\u{feff}x\u{200b}\u{85}".as_bytes()),
            "\\u{feff}x\\u{200b}\\u{85}"
        );
    }

    #[test]
    fn invalid_utf8_is_hex() {
        assert_eq!(escape_bytes(b"ok\xff\xfe"), "ok\\xff\\xfe");
        // A truncated 4-byte character (first three bytes of U+1F389).
        assert_eq!(escape_bytes(b"a\xf0\x9f\x8e"), "a\\xf0\\x9f\\x8e");
    }

    #[test]
    fn window_does_not_cut_characters() {
        let s = "ab🎉cd".as_bytes(); // 🎉 is bytes 2..6
        assert_eq!(window(s, 4, 1, 1), (2, 6));
        assert_eq!(window(s, 0, 10, 10), (0, s.len()));
        assert_eq!(window(s, 99, 1, 1), (7, 8));
        assert_eq!(excerpt(s, window(s, 4, 1, 1)), "…🎉…");
    }

    #[test]
    fn bounded_names_what_it_leaves_out() {
        assert_eq!(bounded(b"short", 0, 16), "short");
        let long = [b'a'; 100];
        let r = bounded(&long, 50, 10);
        assert_eq!(
            r,
            format!("[45 bytes omitted]{}[45 bytes omitted]", "a".repeat(10))
        );
    }
}
