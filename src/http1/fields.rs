//! Response heads and field sections (headers, trailers), kept verbatim, parsed by httparse.

use std::ops::Range;

use super::Error;

/// A field section (the header fields of a head, or a trailer section): the raw bytes exactly
/// as received, and each field line in order, duplicates kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    raw: Vec<u8>,
    offset: u64,
    /// Field names, concatenated; httparse guarantees they are tokens, hence ASCII.
    names: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: Range<usize>,
    /// Range of the value in `raw`, surrounding whitespace already removed by httparse.
    value: Range<usize>,
}

/// One field line of a [`Fields`] section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'f> {
    name: &'f str,
    value: &'f [u8],
    offset: u64,
}

impl<'f> Field<'f> {
    /// The field name as received (its case is kept; compare with `eq_ignore_ascii_case`).
    pub fn name(&self) -> &'f str {
        self.name
    }

    /// The field value as raw bytes, without leading and trailing whitespace.
    pub fn value(&self) -> &'f [u8] {
        self.value
    }

    /// The field value as text, or `None` if it is not UTF-8 (obs-text bytes).
    pub fn value_str(&self) -> Option<&'f str> {
        std::str::from_utf8(self.value).ok()
    }

    /// Stream offset of the value's first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl Fields {
    /// The section's bytes exactly as received, up to and including its final blank line.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Stream offset of the section's first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Stream offset one past the section's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.raw.len() as u64
    }

    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the section has no field lines.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every field line in the order received, duplicates included.
    pub fn iter(&self) -> impl Iterator<Item = Field<'_>> {
        self.entries.iter().map(|e| self.field(e))
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<Field<'_>> {
        self.get_all(name).next()
    }

    /// Every field named `name` (ASCII case-insensitive), in the order received.
    pub fn get_all<'s>(&'s self, name: &str) -> impl Iterator<Item = Field<'s>> {
        self.iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    }

    fn field(&self, e: &Entry) -> Field<'_> {
        Field {
            name: &self.names[e.name.clone()],
            value: &self.raw[e.value.clone()],
            offset: self.offset + e.value.start as u64,
        }
    }

    /// Builds the section from httparse's output; `raw` is the buffer httparse parsed.
    fn from_httparse(raw: &[u8], offset: u64, headers: &[httparse::Header<'_>]) -> Fields {
        let base = raw.as_ptr().addr();
        let mut names = String::new();
        let mut entries = Vec::with_capacity(headers.len());
        for h in headers {
            let start = names.len();
            names.push_str(h.name);
            // httparse returns values as sub-slices of the buffer it parsed, which is `raw`
            // (an empty value points at where it would start); checked all the same.
            let value_start = h
                .value
                .as_ptr()
                .addr()
                .checked_sub(base)
                .filter(|&start| start + h.value.len() <= raw.len())
                .unwrap_or(0);
            entries.push(Entry {
                name: start..names.len(),
                value: value_start..value_start + h.value.len(),
            });
        }
        Fields {
            raw: raw.to_vec(),
            offset,
            names,
            entries,
        }
    }

    /// Parses a complete trailer section (`raw` ends with its blank line) found at `offset`.
    pub(super) fn parse_trailers(raw: &[u8], offset: u64) -> Result<Fields, Error> {
        let mut slots = vec![httparse::EMPTY_HEADER; line_count(raw)];
        let fields = match httparse::parse_headers(raw, &mut slots) {
            Ok(httparse::Status::Complete((n, headers))) if n == raw.len() => {
                Ok(Fields::from_httparse(raw, offset, headers))
            }
            other => Err(other.err()),
        };
        fields.map_err(|cause| {
            let (at, cause) = locate(raw, cause, |buf| {
                let mut slots = vec![httparse::EMPTY_HEADER; line_count(buf)];
                httparse::parse_headers(buf, &mut slots).map(|s| s.is_complete())
            });
            Error::MalformedTrailers {
                offset: offset + at as u64,
                cause,
            }
        })
    }
}

/// A response head: status line and header fields, and the bytes exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    version: u8,
    status: u16,
    reason: String,
    fields: Fields,
}

impl Head {
    /// The minor HTTP version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The status code, e.g. `200`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase; empty if absent or if it holds non-ASCII bytes (see [`Head::raw`]).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether this is an interim (1xx other than 101) response that precedes the final one.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// The header fields, in order, duplicates kept, looked up case-insensitively.
    pub fn headers(&self) -> &Fields {
        &self.fields
    }

    /// The head exactly as received: any empty lines before the status line (which are
    /// skipped), the status line, the header lines and the blank line.
    pub fn raw(&self) -> &[u8] {
        self.fields.raw()
    }

    /// Stream offset of the head's first byte.
    pub fn offset(&self) -> u64 {
        self.fields.offset()
    }

    /// Stream offset one past the head's blank line, where the body (or the next head) starts.
    pub fn end(&self) -> u64 {
        self.fields.end()
    }
}

/// What httparse made of a head candidate.
pub(super) enum HeadParse {
    /// A complete head.
    Complete(Head),
    /// httparse wants more bytes.
    Partial,
}

/// Parses `raw`, the bytes of one head candidate found at stream `offset`.
///
/// `raw` ends at a blank line or at the end of the status line; in both cases a complete head
/// must end exactly at the end of `raw`, since httparse stops at the first blank line after
/// the status line and the scanner never passes one.
pub(super) fn parse_head(raw: &[u8], offset: u64) -> Result<HeadParse, Error> {
    let mut slots = vec![httparse::EMPTY_HEADER; line_count(raw)];
    let mut response = httparse::Response::new(&mut slots);
    let cause = match response.parse(raw) {
        Ok(httparse::Status::Partial) => return Ok(HeadParse::Partial),
        Ok(httparse::Status::Complete(n)) if n == raw.len() => {
            let version = response.version.unwrap_or(1);
            let status = response.code.unwrap_or(0);
            let reason = response.reason.unwrap_or("").to_owned();
            let fields = Fields::from_httparse(raw, offset, response.headers);
            return Ok(HeadParse::Complete(Head {
                version,
                status,
                reason,
                fields,
            }));
        }
        // A head shorter than the candidate would mean a blank line the scanner missed; report
        // it where httparse stopped rather than lose bytes.
        Ok(httparse::Status::Complete(n)) => {
            return Err(Error::MalformedHead {
                offset: offset + n as u64,
                cause: httparse::Error::NewLine,
            });
        }
        Err(cause) => cause,
    };
    let (at, cause) = locate(raw, Some(cause), |buf| {
        let mut slots = vec![httparse::EMPTY_HEADER; line_count(buf)];
        httparse::Response::new(&mut slots)
            .parse(buf)
            .map(|s| s.is_complete())
    });
    Err(Error::MalformedHead {
        offset: offset + at as u64,
        cause,
    })
}

/// The media type of a Content-Type value: what precedes any `;` parameters, without
/// surrounding whitespace (RFC 9110 §8.3.1). Compare it ignoring ASCII case.
pub(crate) fn media_type(content_type: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// Upper bound on the field lines in `buf`, so httparse never runs out of header slots.
fn line_count(buf: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', buf).count() + 1
}

/// Finds the byte httparse rejects in `buf`: the end of the shortest prefix it rejects.
///
/// httparse reports what is wrong but not where. It never rejects the empty prefix and it does
/// reject `buf`, so a binary search finds a prefix length `p` where `buf[..p - 1]` is accepted
/// (as partial) and `buf[..p]` is not: byte `p - 1` is the one it refused. Runs only on the
/// error path, `O(n log n)` over a head bounded by the configured limit. Returns the offset in
/// `buf` and the cause found for that prefix (or `fallback` if none was reported).
fn locate(
    buf: &[u8],
    fallback: Option<httparse::Error>,
    parse: impl Fn(&[u8]) -> Result<bool, httparse::Error>,
) -> (usize, httparse::Error) {
    let (mut ok, mut bad) = (0usize, buf.len());
    let mut cause = fallback.unwrap_or(httparse::Error::NewLine);
    if parse(buf).is_ok() {
        // Accepted in full but not as the expected section: the problem is at its end.
        return (buf.len().saturating_sub(1), cause);
    }
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        match parse(&buf[..mid]) {
            Ok(_) => ok = mid,
            Err(e) => {
                bad = mid;
                cause = e;
            }
        }
    }
    if let Err(e) = parse(&buf[..bad]) {
        cause = e;
    }
    (bad.saturating_sub(1), cause)
}
