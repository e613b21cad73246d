//! JSON parsing for event data: serde_json, plus the two things it refuses that daemons send.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

use super::Shape;

/// Event data parsed as JSON.
pub(super) struct Parsed {
    pub(super) value: Value,
    /// Offsets in the data of `\u` escapes of unpaired surrogates, read as U+FFFD.
    pub(super) lone_surrogates: Vec<usize>,
    /// The data with those escapes rewritten to `\ufffd` (same length), when there were any.
    pub(super) patched: Option<Vec<u8>>,
}

/// Parses `data` as JSON. Invalid UTF-8 is read as U+FFFD (a browser decodes the stream that
/// way before `JSON.parse` sees it); an unpaired surrogate escape, which serde_json rejects, is
/// read as `\ufffd` and reported. `Err` carries serde_json's message.
pub(super) fn parse(data: &[u8]) -> Result<Parsed, String> {
    let error = match serde_json::from_str::<Value>(&String::from_utf8_lossy(data)) {
        Ok(value) => {
            return Ok(Parsed {
                value,
                lone_surrogates: Vec::new(),
                patched: None,
            });
        }
        Err(error) => error.to_string(),
    };
    let lone = lone_surrogates(data);
    if lone.is_empty() {
        return Err(error);
    }
    let mut patched = data.to_vec();
    for &at in &lone {
        // `lone_surrogates` only returns offsets of complete six-byte escapes.
        if let Some(digits) = patched.get_mut(at + 2..at + 6) {
            digits.copy_from_slice(b"fffd");
        }
    }
    match serde_json::from_str::<Value>(&String::from_utf8_lossy(&patched)) {
        Ok(value) => Ok(Parsed {
            value,
            lone_surrogates: lone,
            patched: Some(patched),
        }),
        Err(_) => Err(error),
    }
}

/// The value of four hex digits at `data[at..at + 4]`.
fn hex4(data: &[u8], at: usize) -> Option<u16> {
    let digits = data.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

/// Offsets of the `\uXXXX` escapes that encode a UTF-16 surrogate without its partner: a high
/// one not followed at once by a `\u` low one, or a low one on its own. Backslashes only occur
/// inside strings in JSON, so the scan needs no string tracking; `\\` is skipped as a pair.
pub(super) fn lone_surrogates(data: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(p) = data.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let at = i + p;
        i = match (data.get(at + 1), hex4(data, at + 2)) {
            (Some(b'u'), Some(0xD800..=0xDBFF)) => {
                let paired = data.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(hex4(data, at + 8), Some(0xDC00..=0xDFFF));
                if paired {
                    at + 12
                } else {
                    found.push(at);
                    at + 6
                }
            }
            (Some(b'u'), Some(0xDC00..=0xDFFF)) => {
                found.push(at);
                at + 6
            }
            (Some(b'u'), Some(_)) => at + 6,
            _ => at + 2,
        };
    }
    found
}

/// The content string of `raw` (JSON of the given shape) decoded to bytes without UTF-8
/// validation, or `None` if `raw` does not have that shape under strict typing (duplicate keys,
/// a key that is not UTF-8).
pub(super) fn raw_content(raw: &[u8], shape: Shape) -> Option<Vec<u8>> {
    match shape {
        Shape::Simplified => serde_json::from_slice::<Simplified>(raw)
            .ok()
            .map(|s| s.content.0),
        Shape::OpenAi => serde_json::from_slice::<OpenAi>(raw)
            .ok()
            .map(|c| c.choices.0.delta.content.0),
    }
}

#[derive(Deserialize)]
struct Simplified {
    content: RawBytes,
}

#[derive(Deserialize)]
struct OpenAi {
    choices: First<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Delta,
}

#[derive(Deserialize)]
struct Delta {
    content: RawBytes,
}

/// A JSON string as bytes: escapes decoded, UTF-8 not checked (serde_json's `deserialize_bytes`).
struct RawBytes(Vec<u8>);

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawBytes, E> {
                Ok(RawBytes(v.to_vec()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBytes, E> {
                Ok(RawBytes(v.as_bytes().to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// The first element of a JSON array; the others are skipped unparsed.
struct First<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-empty array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_found_and_pairs_are_not() {
        assert_eq!(lone_surrogates(br#""\ud83d\ude00""#), Vec::<usize>::new());
        assert_eq!(lone_surrogates(br#""\ud83d""#), vec![1]);
        assert_eq!(lone_surrogates(br#""a\ude00b""#), vec![2]);
        assert_eq!(lone_surrogates(br#""\ud83d\ud83d\ude00""#), vec![1]);
        assert_eq!(lone_surrogates(br#""\ud83dx\ude00""#), vec![1, 8]);
        // An escaped backslash followed by text that looks like an escape.
        assert_eq!(lone_surrogates(br#""\\ud83d""#), Vec::<usize>::new());
        // Truncated escapes are serde_json's to reject.
        assert_eq!(lone_surrogates(br#""\ud8"#), Vec::<usize>::new());
        assert_eq!(lone_surrogates(b"\\"), Vec::<usize>::new());
    }

    #[test]
    fn a_lone_surrogate_parses_as_replacement_character() {
        let parsed = parse(br#"{"content":"a\ud800b"}"#).expect("patched");
        assert_eq!(parsed.value["content"], "a\u{FFFD}b");
        assert_eq!(parsed.lone_surrogates, vec![13]);
    }

    #[test]
    fn raw_content_keeps_invalid_bytes() {
        let raw = b"{\"choices\":[{\"delta\":{\"content\":\"\xE2\x82\"}},7],\"x\":\"\xFF\"}";
        assert_eq!(raw_content(raw, Shape::OpenAi), Some(b"\xE2\x82".to_vec()));
        let raw = b"{\"content\":\"\\u00e9\xE2\"}";
        assert_eq!(
            raw_content(raw, Shape::Simplified),
            Some(b"\xC3\xA9\xE2".to_vec())
        );
        assert_eq!(raw_content(b"{\"content\":1}", Shape::Simplified), None);
    }
}
