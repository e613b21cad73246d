//! HTTP/1 response generation and the incremental runner the `http1` tests compare with.
//!
//! A [`ResponseSpec`] is any value (proptest generates it with [`response_spec`], the fuzzer
//! with `arbitrary`); [`ResponseSpec::encode`] turns it into valid wire bytes plus the
//! [`Expected`] parse, mapping bytes that a field cannot hold onto ones it can. [`mutate`] edits
//! those bytes into nearby invalid ones, [`pieces`] cuts them, and [`run`] feeds the pieces to
//! the parser and records what came out, in a form where any split of the same bytes compares
//! equal.

mod runner;
mod strategies;

#[cfg(feature = "fuzzing")]
use arbitrary::Arbitrary;

use crate::http1::Framing;

pub use runner::{Mutation, Observed, Outcome, mutate, pieces, run};
pub use strategies::{body_spec, cuts, mutations, response_spec};

/// One response to encode: optional 1xx heads, the final head, and a body.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub struct ResponseSpec {
    /// 1xx heads sent before the final one.
    pub interim: Vec<InterimSpec>,
    /// Final status, mapped into 200..=599 (204 and 304 have no body).
    pub status: u16,
    /// Reason phrase bytes (mapped to what a reason phrase may hold).
    pub reason: Vec<u8>,
    /// Extra header fields (names mapped to tokens, values to field bytes).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Send `HTTP/1.0` (ignored for chunked bodies, where it is an error).
    pub http10: bool,
    /// End head lines with a bare LF instead of CRLF.
    pub bare_lf_head: bool,
    /// The body and how it is framed.
    pub body: BodySpec,
}

/// A 1xx head.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub struct InterimSpec {
    /// Status, mapped into 100..=199 except 101.
    pub status: u8,
    /// Header fields.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A body and its framing.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub enum BodySpec {
    /// No framing headers: the body runs until close.
    UntilClose {
        /// Body bytes.
        body: Vec<u8>,
    },
    /// `Content-Length`, optionally as the list `n, n`.
    ContentLength {
        /// Body bytes.
        body: Vec<u8>,
        /// Send the value twice as a list (RFC 9110 §8.6 allows identical elements).
        repeat: bool,
        /// Bytes sent after the body.
        excess: Vec<u8>,
    },
    /// `Transfer-Encoding: chunked`.
    Chunked {
        /// The data chunks (empty ones are skipped: size 0 is the last chunk).
        chunks: Vec<ChunkSpec>,
        /// Zeros in the last chunk's size, beyond the first.
        last_zeros: u8,
        /// Extensions on the last chunk.
        last_ext: Vec<ExtSpec>,
        /// Trailer fields.
        trailers: Vec<(Vec<u8>, Vec<u8>)>,
        /// Put `gzip, ` before `chunked` (still chunked-final).
        gzip_first: bool,
        /// End chunk lines with a bare LF (needs `Config::allow_bare_lf_in_chunked`).
        bare_lf: bool,
        /// Bytes sent after the message.
        excess: Vec<u8>,
    },
}

/// One data chunk.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub struct ChunkSpec {
    /// Chunk data.
    pub data: Vec<u8>,
    /// Leading zeros in the size (mod 4).
    pub zeros: u8,
    /// Upper-case hex digits.
    pub upper: bool,
    /// Chunk extensions.
    pub ext: Vec<ExtSpec>,
}

/// One chunk extension, `;name` or `;name=value`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub struct ExtSpec {
    /// Name bytes (mapped to a token).
    pub name: Vec<u8>,
    /// Value, if any.
    pub value: Option<ExtValue>,
    /// Put whitespace around `;` and `=`.
    pub spaced: bool,
}

/// A chunk extension value.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "fuzzing", derive(Arbitrary))]
pub enum ExtValue {
    /// A token (bytes mapped to tchar).
    Token(Vec<u8>),
    /// A quoted string (quotes and backslashes escaped, controls mapped).
    Quoted(Vec<u8>),
}

/// What parsing an encoded [`ResponseSpec`] must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Statuses of the 1xx heads, in order.
    pub interim: Vec<u16>,
    /// Final status.
    pub status: u16,
    /// Final reason phrase as [`Head::reason`](crate::http1::Head::reason) returns it.
    pub reason: String,
    /// Minor version of the final head.
    pub version: u8,
    /// Final head fields, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Stream offset where the final head ends.
    pub head_end: u64,
    /// Body framing.
    pub framing: Framing,
    /// Decoded body.
    pub body: Vec<u8>,
    /// Trailer fields, in order.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// Stream offset where the message ends.
    pub end: u64,
    /// Bytes after the message.
    pub excess: u64,
}

const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn token(bytes: &[u8]) -> String {
    let t: String = bytes
        .iter()
        .map(|&b| char::from(TCHARS[usize::from(b) % TCHARS.len()]))
        .collect();
    if t.is_empty() { "x".to_owned() } else { t }
}

/// A header name that cannot change the framing.
fn field_name(bytes: &[u8]) -> String {
    let name = token(bytes);
    let lower = name.to_ascii_lowercase();
    if lower == "content-length" || lower == "transfer-encoding" {
        format!("x-{name}")
    } else {
        name
    }
}

/// A field value httparse keeps byte for byte: no controls, no leading or trailing space.
fn field_value(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes
        .iter()
        .map(|&b| {
            if b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b) || b >= 0x80 {
                b
            } else {
                b'a'
            }
        })
        .collect();
    for end in [0, v.len().saturating_sub(1)] {
        if let Some(b) = v.get_mut(end).filter(|b| **b == b' ' || **b == b'\t') {
            *b = b'a';
        }
    }
    v
}

fn reason(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| {
            if b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b) || b >= 0x80 {
                b
            } else {
                b'r'
            }
        })
        .collect()
}

fn ext(out: &mut Vec<u8>, exts: &[ExtSpec]) {
    for e in exts {
        let sp: &[u8] = if e.spaced { b" \t" } else { b"" };
        out.extend_from_slice(sp);
        out.push(b';');
        out.extend_from_slice(sp);
        out.extend_from_slice(token(&e.name).as_bytes());
        match &e.value {
            None => {}
            Some(v) => {
                out.extend_from_slice(sp);
                out.push(b'=');
                out.extend_from_slice(sp);
                match v {
                    ExtValue::Token(t) => out.extend_from_slice(token(t).as_bytes()),
                    ExtValue::Quoted(q) => {
                        out.push(b'"');
                        for &b in q {
                            match b {
                                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                                b'\t' | b' '..=b'~' | 0x80.. => out.push(b),
                                _ => out.push(b'q'),
                            }
                        }
                        out.push(b'"');
                    }
                }
            }
        }
    }
}

impl ResponseSpec {
    /// The wire bytes of this response and what parsing them must give.
    pub fn encode(&self) -> (Vec<u8>, Expected) {
        let nl: &[u8] = if self.bare_lf_head { b"\n" } else { b"\r\n" };
        let mut out = Vec::new();
        let mut interim = Vec::new();
        for i in &self.interim {
            let status = match 100 + u16::from(i.status % 100) {
                101 => 100,
                s => s,
            };
            interim.push(status);
            out.extend_from_slice(format!("HTTP/1.1 {status} Interim").as_bytes());
            out.extend_from_slice(nl);
            for (n, v) in &i.headers {
                out.extend_from_slice(field_name(n).as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&field_value(v));
                out.extend_from_slice(nl);
            }
            out.extend_from_slice(nl);
        }
        let status = 200 + self.status % 400;
        let chunked = matches!(self.body, BodySpec::Chunked { .. });
        let version = if self.http10 && !chunked { 0 } else { 1 };
        let reason_bytes = reason(&self.reason);
        out.extend_from_slice(format!("HTTP/1.{version} {status} ").as_bytes());
        out.extend_from_slice(&reason_bytes);
        out.extend_from_slice(nl);
        let mut headers = Vec::new();
        for (n, v) in &self.headers {
            headers.push((field_name(n), field_value(v)));
        }
        let framing_header = match &self.body {
            BodySpec::UntilClose { .. } => None,
            BodySpec::ContentLength { body, repeat, .. } => {
                let n = body.len();
                let v = if *repeat {
                    format!("{n}, {n}")
                } else {
                    n.to_string()
                };
                Some(("Content-Length".to_owned(), v.into_bytes()))
            }
            BodySpec::Chunked { gzip_first, .. } => {
                let v: &[u8] = if *gzip_first {
                    b"gzip, chunked"
                } else {
                    b"chunked"
                };
                Some(("Transfer-Encoding".to_owned(), v.to_vec()))
            }
        };
        // The framing header goes among the others, so lookup is exercised.
        if let Some(h) = framing_header {
            headers.insert(headers.len() / 2, h);
        }
        for (n, v) in &headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(nl);
        }
        out.extend_from_slice(nl);
        let head_end = out.len() as u64;
        let mut body = Vec::new();
        let mut trailers = Vec::new();
        let mut framing;
        let mut excess_bytes: &[u8] = &[];
        match &self.body {
            BodySpec::UntilClose { body: b } => {
                framing = Framing::UntilClose;
                body.extend_from_slice(b);
                out.extend_from_slice(b);
            }
            BodySpec::ContentLength {
                body: b, excess, ..
            } => {
                framing = Framing::ContentLength(b.len() as u64);
                body.extend_from_slice(b);
                out.extend_from_slice(b);
                excess_bytes = excess;
            }
            BodySpec::Chunked {
                chunks,
                last_zeros,
                last_ext,
                trailers: t,
                bare_lf,
                excess,
                ..
            } => {
                framing = Framing::Chunked;
                let crlf: &[u8] = if *bare_lf { b"\n" } else { b"\r\n" };
                for c in chunks.iter().filter(|c| !c.data.is_empty()) {
                    let zeros = "0".repeat(usize::from(c.zeros % 4));
                    let size = if c.upper {
                        format!("{zeros}{:X}", c.data.len())
                    } else {
                        format!("{zeros}{:x}", c.data.len())
                    };
                    out.extend_from_slice(size.as_bytes());
                    ext(&mut out, &c.ext);
                    out.extend_from_slice(crlf);
                    out.extend_from_slice(&c.data);
                    out.extend_from_slice(crlf);
                    body.extend_from_slice(&c.data);
                }
                out.extend_from_slice("0".repeat(1 + usize::from(last_zeros % 4)).as_bytes());
                ext(&mut out, last_ext);
                out.extend_from_slice(crlf);
                for (n, v) in t {
                    let (n, v) = (field_name(n), field_value(v));
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(&v);
                    out.extend_from_slice(crlf);
                    trailers.push((n, v));
                }
                out.extend_from_slice(crlf);
                excess_bytes = excess;
            }
        }
        let mut end = out.len() as u64;
        if matches!(status, 204 | 304) {
            // No body whatever the headers say: everything after the head is excess.
            framing = Framing::NoBody;
            body.clear();
            trailers.clear();
            end = head_end;
        }
        out.extend_from_slice(excess_bytes);
        let excess = out.len() as u64 - end;
        let expected = Expected {
            interim,
            status,
            reason: if reason_bytes.is_ascii() {
                String::from_utf8(reason_bytes).unwrap_or_default()
            } else {
                String::new()
            },
            version,
            headers,
            head_end,
            framing,
            body,
            trailers,
            end,
            excess,
        };
        (out, expected)
    }
}
