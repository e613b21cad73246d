//! How byte strings and errors look in JSON.

use std::fmt::Display;

use serde::Serializer;
use serde::ser::{SerializeMap, SerializeSeq};

/// Bytes as a hex string.
pub(crate) fn hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex::encode(bytes))
}

/// Bytes as a string when they are UTF-8, else `{"hex": …, "text": …}` (text with U+FFFD), so
/// nothing is lost and text stays readable.
pub(crate) fn bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("hex", &crate::hex::encode(bytes))?;
            map.serialize_entry("text", &String::from_utf8_lossy(bytes))?;
            map.end()
        }
    }
}

/// Bytes as text, invalid UTF-8 as U+FFFD (for bytes whose exact value is reported elsewhere).
pub(crate) fn lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// Header fields as `[[name, value], …]`, values as in [`bytes`].
pub(crate) fn fields<S: Serializer>(fields: &[(String, Vec<u8>)], s: S) -> Result<S::Ok, S::Error> {
    struct Value<'a>(&'a [u8]);
    impl serde::Serialize for Value<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            bytes(self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(fields.len()))?;
    for (name, value) in fields {
        seq.serialize_element(&(name, Value(value)))?;
    }
    seq.end()
}

/// An optional error as its message.
pub(crate) fn opt_display<E: Display, S: Serializer>(
    error: &Option<E>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// An optional HTTP error as `{"offset": …, "message": …}`.
pub(crate) fn opt_http_error<S: Serializer>(
    error: &Option<crate::http1::Error>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("offset", &e.offset())?;
            map.serialize_entry("message", &e.to_string())?;
            map.end()
        }
        None => s.serialize_none(),
    }
}
