//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! ```
//!
//! A byte-at-a-time state machine for the framing lines and a slice copy-free path for chunk
//! data, so any split of the input gives the same result and nothing is buffered except the
//! trailer section (bounded by [`Config::max_trailer_bytes`]). Extensions are validated and
//! skipped: nothing in a stream's meaning depends on them.

use super::framing::{is_qdtext, is_quoted_pair_char, is_tchar};
use super::{Config, Error, Fields, Stage};

/// The chunked decoder's position in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits of a chunk size.
    Size,
    /// Whitespace after the size: only `;` may follow.
    SizeBws,
    /// After `;`: whitespace, then an extension name.
    ExtNameStart,
    /// Inside an extension name.
    ExtName,
    /// Whitespace after an extension name: `=` or `;` must follow.
    ExtNameBws,
    /// After `=`: whitespace, then a token or quoted string.
    ExtValueStart,
    /// Inside a token extension value.
    ExtToken,
    /// Inside a quoted extension value.
    ExtQuoted,
    /// After `\` inside a quoted extension value.
    ExtQuotedPair,
    /// After a quoted extension value's closing quote.
    ExtQuotedEnd,
    /// Whitespace after an extension value: only `;` may follow.
    ExtValueBws,
    /// After the CR ending a chunk-size line.
    LineLf,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// Inside the trailer section; `line_start` when no byte of the current line has arrived.
    Trailer { line_start: bool },
    /// After a CR in the trailer section.
    TrailerLf { line_start: bool },
}

/// What the decoder produced from the bytes it consumed.
#[derive(Debug)]
pub(super) enum Step<'a> {
    /// Decoded chunk data, a slice of the input.
    Data(&'a [u8]),
    /// The last chunk and the trailer section ended; the body is complete.
    End(Fields),
}

/// Decoder state carried across feeds.
#[derive(Debug, Clone)]
pub(super) struct Chunked {
    state: State,
    /// The chunk size being read, or the size of the chunk whose line just ended.
    size: u64,
    /// The trailer section's bytes so far.
    trailers: Vec<u8>,
    /// Stream offset of the trailer section's first byte.
    trailers_offset: u64,
}

impl Chunked {
    pub(super) fn new() -> Chunked {
        Chunked {
            state: State::SizeStart,
            size: 0,
            trailers: Vec::new(),
            trailers_offset: 0,
        }
    }

    /// Where a stream that ends now was cut (for [`Error::Truncated`]).
    pub(super) fn stage(&self) -> Stage {
        match self.state {
            State::Data { remaining } => Stage::ChunkData { remaining },
            State::DataCr | State::DataLf => Stage::ChunkDataEnd,
            State::Trailer { .. } | State::TrailerLf { .. } => Stage::Trailers,
            _ => Stage::ChunkHeader,
        }
    }

    /// Consumes `input` (which starts at stream `offset`) until there is data or an end to
    /// report, or the input runs out. Returns the bytes consumed and what they produced.
    pub(super) fn advance<'a>(
        &mut self,
        input: &'a [u8],
        offset: u64,
        config: &Config,
    ) -> Result<(usize, Option<Step<'a>>), Error> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data { remaining } = self.state {
                let n =
                    usize::try_from(remaining).map_or(input.len() - i, |r| r.min(input.len() - i));
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                return Ok((i + n, Some(Step::Data(&input[i..i + n]))));
            }
            let at = offset + i as u64;
            let b = input[i];
            i += 1;
            if let Some(fields) = self.byte(b, at, config)? {
                return Ok((i, Some(Step::End(fields))));
            }
        }
        Ok((i, None))
    }

    /// Handles one framing byte at stream offset `at`; returns the trailers when the body ends.
    fn byte(&mut self, b: u8, at: u64, config: &Config) -> Result<Option<Fields>, Error> {
        use State::*;
        let ext_err = Error::InvalidChunkExtension {
            offset: at,
            byte: b,
        };
        let ws = b == b' ' || b == b'\t';
        if let (SizeStart | Size, Some(digit)) = (self.state, crate::hex::digit(b)) {
            if self.state == Size && self.size > u64::MAX >> 4 {
                return Err(Error::ChunkSizeOverflow { offset: at });
            }
            self.size = if self.state == Size {
                self.size << 4
            } else {
                0
            } | u64::from(digit);
            self.state = Size;
            return Ok(None);
        }
        self.state = match (self.state, b) {
            (SizeStart, _) => {
                return Err(Error::InvalidChunkSize {
                    offset: at,
                    byte: b,
                });
            }
            (Size, _) if ws => SizeBws,
            (SizeBws, _) if ws => SizeBws,
            (Size | SizeBws, b';') => ExtNameStart,
            (Size, b'\r') => LineLf,
            (Size, b'\n') => self.line_end(at, config)?,
            (Size | SizeBws, _) => {
                return Err(Error::InvalidChunkSize {
                    offset: at,
                    byte: b,
                });
            }

            (ExtNameStart, _) if ws => ExtNameStart,
            (ExtNameStart | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtNameBws, _) if ws => ExtNameBws,
            (ExtName | ExtNameBws, b'=') => ExtValueStart,
            (ExtName | ExtNameBws, b';') => ExtNameStart,
            (ExtValueStart, _) if ws => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtQuotedEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedPair, _) if is_quoted_pair_char(b) => ExtQuoted,
            (ExtToken | ExtQuotedEnd | ExtValueBws, _) if ws => ExtValueBws,
            (ExtToken | ExtQuotedEnd | ExtValueBws, b';') => ExtNameStart,
            (ExtName | ExtToken | ExtQuotedEnd, b'\r') => LineLf,
            (ExtName | ExtToken | ExtQuotedEnd, b'\n') => self.line_end(at, config)?,
            (
                ExtNameStart | ExtName | ExtNameBws | ExtValueStart | ExtToken | ExtQuoted
                | ExtQuotedPair | ExtQuotedEnd | ExtValueBws,
                _,
            ) => return Err(ext_err),

            (LineLf, b'\n') => self.line_end(at, config)?,
            (DataLf, b'\n') => SizeStart,
            (LineLf | DataLf, _) => return Err(Error::BareCr { offset: at - 1 }),

            (DataCr, b'\r') => DataLf,
            (DataCr, b'\n') if config.bare_lf_in_chunked => SizeStart,
            (DataCr, b'\n') => return Err(Error::BareLf { offset: at }),
            (DataCr, _) => {
                return Err(Error::ChunkDataNotTerminated {
                    offset: at,
                    byte: b,
                });
            }

            (Trailer { .. } | TrailerLf { .. }, _) => return self.trailer_byte(b, at, config),
            // Data is consumed in slices by `advance` and never reaches here.
            (Data { remaining }, _) => Data { remaining },
        };
        Ok(None)
    }

    /// The chunk-size line ended at the LF at `at`: data follows, or the trailer section.
    fn line_end(&mut self, at: u64, config: &Config) -> Result<State, Error> {
        if self.state != State::LineLf && !config.bare_lf_in_chunked {
            return Err(Error::BareLf { offset: at });
        }
        if self.size == 0 {
            self.trailers_offset = at + 1;
            Ok(State::Trailer { line_start: true })
        } else {
            Ok(State::Data {
                remaining: self.size,
            })
        }
    }

    /// Buffers one trailer-section byte; returns the parsed trailers at the section's end.
    fn trailer_byte(&mut self, b: u8, at: u64, config: &Config) -> Result<Option<Fields>, Error> {
        if self.trailers.len() >= config.max_trailer_bytes {
            return Err(Error::TrailersTooLarge {
                offset: at,
                limit: config.max_trailer_bytes,
            });
        }
        self.trailers.push(b);
        let (line_start, after_cr) = match self.state {
            State::Trailer { line_start } => (line_start, false),
            State::TrailerLf { line_start } => (line_start, true),
            _ => (false, false),
        };
        self.state = match b {
            b'\n' if !after_cr && !config.bare_lf_in_chunked => {
                return Err(Error::BareLf { offset: at });
            }
            b'\n' if line_start => {
                return Fields::parse_trailers(&self.trailers, self.trailers_offset).map(Some);
            }
            b'\n' => State::Trailer { line_start: true },
            _ if after_cr => return Err(Error::BareCr { offset: at - 1 }),
            b'\r' => State::TrailerLf { line_start },
            _ => State::Trailer { line_start: false },
        };
        Ok(None)
    }
}
