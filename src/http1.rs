//! A push parser for a daemon's HTTP/1.x response: the head via httparse, then the body
//! framing of RFC 9112 §6.3 (until close, Content-Length, or chunked with trailers).
//!
//! No I/O, no clocks: the caller feeds the bytes it received, in the pieces it received them,
//! and gets back events that carry stream offsets (bytes counted from the first byte of the
//! response). Mapping an offset back to the received piece that held it gives that byte's
//! receive timestamp. Any split of the input gives the same events (with body slices cut at
//! the split points) and the same error: the property tests and the `http_response` fuzz
//! target check exactly that.
//!
//! # API
//!
//! - [`Parser::new`] / [`Parser::with_config`] start a response.
//! - [`Parser::feed`] takes the next received bytes and returns a [`Feed`], an iterator of
//!   `Result<`[`Event`]`, `[`Error`]`>`. Body bytes come as [`Data`] slices borrowed from the
//!   input, with their stream offset. Running out of input is not an error: the iterator ends
//!   and the parser waits for the next feed.
//! - [`Parser::finish`] says the connection closed and tells whether the message was complete:
//!   an until-close body ends cleanly there; a close short of the Content-Length or before the
//!   last chunk is [`Error::Truncated`].
//!
//! Events come in stream order: zero or more [`Event::Interim`] heads (100 Continue, 103 Early
//! Hints, ...), one [`Event::Head`] with the [`Framing`] chosen for the body, [`Event::Body`]
//! slices, one [`Event::End`] when the framing itself ends the message (Content-Length reached,
//! last chunk and trailers, or a response with no body), then [`Event::Excess`] for any byte that
//! arrives after the end: a defect worth reporting, since an SSE daemon's response is the only
//! thing on the connection. An until-close body has no `End` event; [`Parser::finish`] ends it.
//!
//! ```
//! use streamcheck::http1::{Event, Framing, Parser};
//!
//! let mut parser = Parser::new();
//! let mut body = Vec::new();
//! // The daemon's bytes as two reads; the split falls inside the chunk-size line.
//! for piece in [
//!     &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: x\r\n"[..],
//!     &b"0\r\nX-Done: yes\r\n\r\n"[..],
//! ] {
//!     for event in parser.feed(piece) {
//!         match event? {
//!             Event::Head { head, framing } => {
//!                 assert_eq!(head.status(), 200);
//!                 assert_eq!(framing, Framing::Chunked);
//!             }
//!             Event::Body(data) => {
//!                 assert_eq!(data.offset, 50); // where "data: x" sits in the stream
//!                 body.extend_from_slice(data.bytes);
//!             }
//!             Event::End(end) => {
//!                 let done = end.trailers.get("x-done").and_then(|f| f.value_str());
//!                 assert_eq!(done, Some("yes"));
//!             }
//!             Event::Interim(_) | Event::Excess(_) => unreachable!(),
//!         }
//!     }
//! }
//! assert_eq!(body, b"data: x");
//! let finish = parser.finish()?;
//! assert_eq!(finish.end, 77);
//! assert!(finish.excess.is_none());
//! # Ok::<(), streamcheck::http1::Error>(())
//! ```
//!
//! # How strict
//!
//! The head is parsed by httparse with its default, strict configuration: obsolete line
//! folding, whitespace before the colon, and multiple spaces in the status line are errors. A
//! bare LF ending a head line is accepted, as httparse does (RFC 9112 §2.2: "a recipient MAY
//! recognize a single LF as a line terminator and ignore any preceding CR"). Leading empty lines
//! before the status line are skipped (httparse).
//!
//! The chunked framing follows the grammar of RFC 9112 §7.1 exactly by default; [`Config`]
//! relaxes two rules, each off unless asked for:
//!
//! - [`Config::allow_bare_lf_in_chunked`]: §7.1 ends chunk-size lines, chunk data and trailer
//!   lines with CRLF. Parsers that disagree on a bare LF there are a known request-smuggling
//!   vector, so a lone LF is [`Error::BareLf`] unless this is set. A bare CR is always
//!   [`Error::BareCr`] (§2.2: "A sender MUST NOT generate a bare CR").
//! - [`Config::allow_content_length_with_transfer_encoding`]: §6.3 rule 3 lets Transfer-Encoding
//!   override Content-Length but says the pair "ought to be handled as an error"; it is
//!   [`Error::ContentLengthWithTransferEncoding`] unless this is set.
//!
//! Whitespace between a chunk size and CRLF is not in the grammar (`BWS` only precedes `;`) and
//! is an error. Chunk extensions are validated and skipped. Memory is bounded: the head (1xx
//! heads included) and the trailer section are the only buffered parts, each under its limit.

#![deny(missing_docs)]

mod chunked;
mod error;
mod fields;
mod framing;
#[cfg(test)]
mod tests;

use chunked::{Chunked, Step};
use fields::HeadParse;

pub(crate) use fields::media_type;

pub use error::{Error, Stage};
pub use fields::{Field, Fields, Head};
pub use framing::Framing;

/// Parser limits and relaxations, set builder-style.
///
/// ```
/// use streamcheck::http1::{Config, Parser};
/// let parser = Parser::with_config(Config::new().max_head_bytes(8 * 1024).allow_bare_lf_in_chunked(true));
/// # drop(parser);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    max_head_bytes: usize,
    max_trailer_bytes: usize,
    bare_lf_in_chunked: bool,
    content_length_with_transfer_encoding: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_head_bytes: 64 * 1024,
            max_trailer_bytes: 64 * 1024,
            bare_lf_in_chunked: false,
            content_length_with_transfer_encoding: false,
        }
    }
}

impl Config {
    /// The default: 64 KiB limits, no relaxations.
    pub fn new() -> Config {
        Config::default()
    }

    /// The most bytes the response may send before its final head ends, 1xx heads included
    /// (default 64 KiB). Past it, [`Error::HeadTooLarge`].
    pub fn max_head_bytes(mut self, limit: usize) -> Config {
        self.max_head_bytes = limit;
        self
    }

    /// The largest trailer section of a chunked body (default 64 KiB). Past it,
    /// [`Error::TrailersTooLarge`].
    pub fn max_trailer_bytes(mut self, limit: usize) -> Config {
        self.max_trailer_bytes = limit;
        self
    }

    /// Accept a lone LF where chunked framing requires CRLF: after a chunk-size line, after
    /// chunk data, and in the trailer section.
    ///
    /// RFC 9112 §7.1 writes every one of these as CRLF; §2.2's permission to "recognize a
    /// single LF as a line terminator" covers the start-line and fields only. Off by default.
    pub fn allow_bare_lf_in_chunked(mut self, allow: bool) -> Config {
        self.bare_lf_in_chunked = allow;
        self
    }

    /// Accept a response with both Transfer-Encoding and Content-Length, letting
    /// Transfer-Encoding decide the framing.
    ///
    /// RFC 9112 §6.3 rule 3: "the Transfer-Encoding overrides the Content-Length. Such a message
    /// might indicate an attempt to perform request smuggling or response splitting and ought to
    /// be handled as an error." Off by default.
    pub fn allow_content_length_with_transfer_encoding(mut self, allow: bool) -> Config {
        self.content_length_with_transfer_encoding = allow;
        self
    }
}

/// Something the parser found in the bytes fed so far, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete 1xx head (other than 101) that precedes the final response.
    Interim(Head),
    /// The complete final head and how its body is delimited.
    Head {
        /// The head.
        head: Head,
        /// The body framing decided from it.
        framing: Framing,
    },
    /// Decoded body bytes (chunk framing removed), borrowed from the fed input.
    Body(Data<'a>),
    /// The framing ended the message: Content-Length reached, the last chunk and its trailer
    /// section, or a response without a body.
    End(End),
    /// Bytes that arrived after the message ended, borrowed from the fed input.
    Excess(Data<'a>),
}

/// A run of bytes of the fed input, with the stream offset of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// Stream offset of `bytes[0]`.
    pub offset: u64,
    /// The bytes, a sub-slice of the input given to [`Parser::feed`].
    pub bytes: &'a [u8],
}

impl Data<'_> {
    /// Stream offset one past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// The message ended by its framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// Stream offset one past the message's last byte.
    pub offset: u64,
    /// The trailer section of a chunked body; empty for any other framing.
    pub trailers: Fields,
}

/// How a response ended, from [`Parser::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// The body framing of the final response.
    pub framing: Framing,
    /// Stream offset one past the message's last byte (for until-close, the stream length).
    pub end: u64,
    /// Bytes that arrived after the message ended, if any.
    pub excess: Option<Excess>,
}

/// Bytes received after the message ended: where they start and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excess {
    /// Stream offset of the first byte after the message.
    pub offset: u64,
    /// How many bytes followed the message.
    pub len: u64,
}

/// Push parser for one HTTP/1.x response. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Parser {
    config: Config,
    /// Stream offset of the next byte to consume.
    offset: u64,
    state: State,
    framing: Option<Framing>,
    excess: Option<Excess>,
}

#[derive(Debug, Clone)]
enum State {
    Head(HeadScan),
    UntilClose,
    Length { remaining: u64 },
    Chunked(Box<Chunked>),
    Done { end: u64 },
    Failed(Error),
}

/// The head being received: its bytes so far and where the scanner is in its lines.
#[derive(Debug, Clone, Default)]
struct HeadScan {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]` (the bytes of earlier 1xx heads come before it).
    start: u64,
    /// The current line has a byte other than CR.
    line_has_content: bool,
    /// The status line has ended, so a blank line now ends the head.
    status_line_done: bool,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

impl Parser {
    /// A parser with the default [`Config`].
    pub fn new() -> Parser {
        Parser::with_config(Config::default())
    }

    /// A parser with the given limits and relaxations.
    pub fn with_config(config: Config) -> Parser {
        Parser {
            config,
            offset: 0,
            state: State::Head(HeadScan::default()),
            framing: None,
            excess: None,
        }
    }

    /// Parses the next received bytes. The returned iterator consumes `input` as it is
    /// advanced; iterate it to the end (bytes it has not reached when dropped are not consumed,
    /// see [`Feed::remaining`]). After an error it yields that error once and stops.
    #[must_use = "the input is parsed only as the iterator is advanced"]
    pub fn feed<'p, 'a>(&'p mut self, input: &'a [u8]) -> Feed<'p, 'a> {
        Feed {
            parser: self,
            rest: input,
            reported: false,
        }
    }

    /// The connection closed: returns how the response ended, or why it is incomplete.
    pub fn finish(self) -> Result<Finish, Error> {
        let offset = self.offset;
        let truncated = |stage| Error::Truncated { offset, stage };
        let end = match self.state {
            State::Failed(e) => return Err(e),
            // A head cut short may already be malformed: that is the better diagnosis.
            State::Head(scan) => {
                return Err(match fields::parse_head(&scan.buf, scan.start) {
                    Err(e) => e,
                    Ok(_) => truncated(Stage::Head),
                });
            }
            State::Length { remaining } if remaining > 0 => {
                return Err(truncated(Stage::ContentLength { remaining }));
            }
            State::Chunked(c) => return Err(truncated(c.stage())),
            State::UntilClose | State::Length { .. } => offset,
            State::Done { end } => end,
        };
        Ok(Finish {
            framing: self.framing.unwrap_or(Framing::UntilClose),
            end,
            excess: self.excess,
        })
    }

    /// Stream offset of the next byte to be fed: the number of bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The framing of the final response, once its head is complete.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Whether the framing has ended the message; anything fed from now on is excess.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// Bytes received after the message ended, so far.
    pub fn excess(&self) -> Option<Excess> {
        self.excess
    }

    /// Produces the next event from `rest`, consuming what it used.
    fn next_event<'a>(&mut self, rest: &mut &'a [u8]) -> Option<Result<Event<'a>, Error>> {
        let result = self.step(rest);
        if let Some(Err(e)) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn step<'a>(&mut self, rest: &mut &'a [u8]) -> Option<Result<Event<'a>, Error>> {
        let input = *rest;
        let offset = self.offset;
        let (used, event) = match &mut self.state {
            State::Failed(e) => return Some(Err(e.clone())),
            State::Head(scan) => match scan_head(scan, input, offset, &self.config) {
                Ok((used, head)) => (used, head.map(|h| self.on_head(h))),
                Err(e) => return Some(Err(e)),
            },
            State::UntilClose if input.is_empty() => return None,
            State::UntilClose => (
                input.len(),
                Some(Ok(Event::Body(Data {
                    offset,
                    bytes: input,
                }))),
            ),
            State::Length { remaining: 0 } => {
                self.state = State::Done { end: offset };
                return Some(Ok(Event::End(End {
                    offset,
                    trailers: Fields::default(),
                })));
            }
            State::Length { remaining } => {
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                if n == 0 {
                    return None;
                }
                *remaining -= n as u64;
                (
                    n,
                    Some(Ok(Event::Body(Data {
                        offset,
                        bytes: &input[..n],
                    }))),
                )
            }
            State::Chunked(c) => match c.advance(input, offset, &self.config) {
                Err(e) => return Some(Err(e)),
                Ok((used, None)) => (used, None),
                Ok((used, Some(Step::Data(bytes)))) => (
                    used,
                    Some(Ok(Event::Body(Data {
                        offset: offset + (used - bytes.len()) as u64,
                        bytes,
                    }))),
                ),
                Ok((used, Some(Step::End(trailers)))) => {
                    let end = offset + used as u64;
                    self.state = State::Done { end };
                    (
                        used,
                        Some(Ok(Event::End(End {
                            offset: end,
                            trailers,
                        }))),
                    )
                }
            },
            State::Done { .. } if input.is_empty() => return None,
            State::Done { end } => {
                let excess = self.excess.get_or_insert(Excess {
                    offset: *end,
                    len: 0,
                });
                excess.len += input.len() as u64;
                (
                    input.len(),
                    Some(Ok(Event::Excess(Data {
                        offset,
                        bytes: input,
                    }))),
                )
            }
        };
        self.offset += used as u64;
        *rest = &input[used..];
        event
    }

    /// A head is complete: an interim one restarts the head scan, the final one sets the
    /// framing of what follows.
    fn on_head<'a>(&mut self, head: Head) -> Result<Event<'a>, Error> {
        if head.is_interim() {
            self.state = State::Head(HeadScan {
                start: head.end(),
                ..HeadScan::default()
            });
            return Ok(Event::Interim(head));
        }
        let framing = framing::decide(&head, &self.config)?;
        self.framing = Some(framing);
        self.state = match framing {
            Framing::NoBody => State::Length { remaining: 0 },
            Framing::ContentLength(n) => State::Length { remaining: n },
            Framing::Chunked => State::Chunked(Box::new(Chunked::new())),
            Framing::UntilClose => State::UntilClose,
        };
        Ok(Event::Head { head, framing })
    }
}

/// Scans head bytes from `input` (at stream `offset`) into `scan.buf`. Returns the bytes
/// consumed and the head if one completed; a complete head ends exactly at the last byte
/// consumed.
///
/// httparse reparses from the start on every call, so it runs only where the answer can
/// change: at the end of the status line (to reject a stream that is not HTTP at once) and at
/// each blank line after it (where a head can end). That keeps one-byte feeds linear.
fn scan_head(
    scan: &mut HeadScan,
    input: &[u8],
    offset: u64,
    config: &Config,
) -> Result<(usize, Option<Head>), Error> {
    let budget = config.max_head_bytes as u64;
    for (i, &b) in input.iter().enumerate() {
        if scan.start + scan.buf.len() as u64 >= budget {
            return Err(Error::HeadTooLarge {
                offset: offset + i as u64,
                limit: config.max_head_bytes,
            });
        }
        scan.buf.push(b);
        if b != b'\n' {
            scan.line_has_content |= b != b'\r';
            continue;
        }
        let ends_status_line = scan.line_has_content && !scan.status_line_done;
        let blank = !scan.line_has_content && scan.status_line_done;
        scan.status_line_done |= scan.line_has_content;
        scan.line_has_content = false;
        if (ends_status_line || blank)
            && let HeadParse::Complete(head) = fields::parse_head(&scan.buf, scan.start)?
        {
            return Ok((i + 1, Some(head)));
        }
    }
    Ok((input.len(), None))
}

/// Iterator over the events of one [`Parser::feed`]; see the [module docs](self).
#[derive(Debug)]
#[must_use = "the input is parsed only as the iterator is advanced"]
pub struct Feed<'p, 'a> {
    parser: &'p mut Parser,
    rest: &'a [u8],
    reported: bool,
}

impl<'a> Feed<'_, 'a> {
    /// The part of the input not consumed yet (empty once the iterator has ended).
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Feed<'_, 'a> {
    type Item = Result<Event<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reported {
            return None;
        }
        let event = self.parser.next_event(&mut self.rest);
        self.reported = matches!(event, Some(Err(_)));
        event
    }
}
