//! Byte-level helpers: line ends, field names, `retry` values, UTF-8 boundaries.

use memchr::memchr2;

/// The longest field name the spec acts on (`event`, `retry`). A line whose first six bytes hold
/// no colon names a field that is ignored, so no line is searched further for its colon.
pub(super) const MAX_NAME: usize = 5;
/// Slices shorter than this are searched for line ends without memchr.
const SHORT_SCAN: usize = 16;

/// The end of the last complete UTF-8 character in `bytes`: before a lead byte whose sequence
/// the end of `bytes` cuts, else `bytes.len()`. Whatever follows cannot change whether the bytes
/// before it are valid.
pub(super) fn utf8_boundary(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let byte = bytes[len - back];
        if byte & 0xC0 != 0x80 {
            let width = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if width > back { len - back } else { len };
        }
    }
    len
}

/// Whether `name` begins a field name the spec acts on.
pub(super) fn is_name_prefix(name: &[u8]) -> bool {
    matches!(
        name,
        b"d" | b"da"
            | b"dat"
            | b"data"
            | b"e"
            | b"ev"
            | b"eve"
            | b"even"
            | b"event"
            | b"i"
            | b"id"
            | b"r"
            | b"re"
            | b"ret"
            | b"retr"
            | b"retry"
    )
}

/// "If the line contains a U+003A COLON character (:): Collect the characters on the line before
/// the first U+003A COLON character (:), and let field be that string. Collect the characters on
/// the line after the first U+003A COLON character (:), and let value be that string. If value
/// starts with a U+0020 SPACE character, remove it from value." — "Otherwise, … using the whole
/// line as the field name, and the empty string as the field value."
///
/// Only the first `MAX_NAME + 1` bytes are searched: a colon further on can only follow a name
/// the spec ignores, which the whole line is just as well.
#[inline]
pub(super) fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().take(MAX_NAME + 1).position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}

/// A `retry` value of ASCII digits only, saturating at `u64::MAX`. The empty value is ignored,
/// as browsers do: there is no integer to interpret.
pub(super) fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a single U+000A LINE FEED
/// (LF) character …, and a single U+000D CARRIAGE RETURN (CR) character … being the ways in which
/// a line can end."
///
/// Short slices are scanned bytewise: below a vector's width memchr's dispatch costs more than
/// the scan (the one-byte feeds case).
#[inline]
pub(super) fn find_eol(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < SHORT_SCAN {
        return bytes.iter().position(|&b| b == b'\n' || b == b'\r');
    }
    memchr2(b'\n', b'\r', bytes)
}
