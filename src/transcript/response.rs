//! The HTTP side of a transcript: heads, framing, and how the body ended.

use std::borrow::Cow;

use serde::Serialize;

use crate::http1;

/// A response head as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseHead {
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase (empty if absent or not ASCII; [`ResponseHead::raw`] has the bytes).
    pub reason: String,
    /// The header fields in order, duplicates kept, values raw. In JSON `[[name, value], …]`.
    #[serde(serialize_with = "super::ser::fields")]
    pub headers: Vec<(String, Vec<u8>)>,
    /// The head exactly as received, blank line included. In JSON, text with U+FFFD.
    #[serde(serialize_with = "super::ser::lossy")]
    pub raw: Vec<u8>,
    /// Offset of its first byte in the received bytes.
    pub offset: u64,
    /// Offset just past its blank line.
    pub end: u64,
    /// Index of the chunk that completed it.
    pub chunk: usize,
    /// That chunk's timestamp.
    pub received_ns: u64,
}

impl ResponseHead {
    pub(crate) fn new(head: &http1::Head, chunk: usize, received_ns: u64) -> ResponseHead {
        ResponseHead {
            version: head.version(),
            status: head.status(),
            reason: head.reason().to_owned(),
            headers: head
                .headers()
                .iter()
                .map(|f| (f.name().to_owned(), f.value().to_vec()))
                .collect(),
            raw: head.raw().to_vec(),
            offset: head.offset(),
            end: head.end(),
            chunk,
            received_ns,
        }
    }

    /// The first value of header `name` (ASCII case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of header `name` (ASCII case-insensitive), in order.
    pub fn header_all<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h [u8]> + 'h {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name` as text, invalid UTF-8 as U+FFFD.
    pub fn header_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(name).map(String::from_utf8_lossy)
    }

    /// Whether Content-Type's essence (before any `;`) is `text/event-stream`, ignoring ASCII
    /// case and surrounding whitespace.
    pub fn is_event_stream(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| http1::media_type(v).eq_ignore_ascii_case(b"text/event-stream"))
    }
}

/// How the body is delimited (see [`http1::Framing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "length", rename_all = "snake_case")]
pub enum BodyFraming {
    /// No body (204, 304, 101).
    NoBody,
    /// Content-Length.
    ContentLength(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the daemon closes the connection (the usual SSE case).
    UntilClose,
}

impl From<http1::Framing> for BodyFraming {
    fn from(f: http1::Framing) -> Self {
        match f {
            http1::Framing::NoBody => BodyFraming::NoBody,
            http1::Framing::ContentLength(n) => BodyFraming::ContentLength(n),
            http1::Framing::Chunked => BodyFraming::Chunked,
            http1::Framing::UntilClose => BodyFraming::UntilClose,
        }
    }
}

/// How the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEnd {
    /// No final response head arrived.
    NoHead,
    /// The framing ended the message: Content-Length reached, the last chunk and trailers, or
    /// a status without a body.
    Complete,
    /// An until-close body ended by the daemon closing the connection.
    Closed,
    /// The daemon closed the connection before the framing ended the message
    /// ([`HttpResponse::error`] says where).
    Truncated,
    /// The recording stopped (client close, deadline, read error) with the body unfinished.
    Unfinished,
    /// The response was malformed ([`HttpResponse::error`]).
    Malformed,
}

impl BodyEnd {
    /// Whether the body ended as its framing says a body ends.
    pub fn is_clean(self) -> bool {
        matches!(self, BodyEnd::Complete | BodyEnd::Closed)
    }
}

/// Bytes received after the end of the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excess {
    /// Offset of the first of them in the received bytes.
    pub offset: u64,
    /// How many.
    pub len: u64,
    /// The first [`Excess::KEPT`] of them. In JSON, as event data is.
    #[serde(serialize_with = "super::ser::bytes")]
    pub first: Vec<u8>,
}

impl Excess {
    /// How many excess bytes are kept for reports.
    pub const KEPT: usize = 256;
}

/// The HTTP response of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpResponse {
    /// 1xx heads before the final one.
    pub interim: Vec<ResponseHead>,
    /// The final head.
    pub head: Option<ResponseHead>,
    /// Its body framing.
    pub framing: Option<BodyFraming>,
    /// Body bytes after decoding (the event stream's length).
    pub body_bytes: u64,
    /// How the body ended.
    pub body: BodyEnd,
    /// Why the response is malformed or incomplete, with the offset in the received bytes. In
    /// JSON `{"offset": …, "message": …}`.
    #[serde(serialize_with = "super::ser::opt_http_error")]
    pub error: Option<http1::Error>,
    /// The trailer fields of a chunked body.
    #[serde(serialize_with = "super::ser::fields")]
    pub trailers: Vec<(String, Vec<u8>)>,
    /// Bytes after the end of the message.
    pub excess: Option<Excess>,
}

impl Default for HttpResponse {
    fn default() -> Self {
        HttpResponse {
            interim: Vec::new(),
            head: None,
            framing: None,
            body_bytes: 0,
            body: BodyEnd::NoHead,
            error: None,
            trailers: Vec::new(),
            excess: None,
        }
    }
}
