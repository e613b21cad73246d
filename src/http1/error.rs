//! The one error type of the HTTP/1 response parser.
//!
//! Every variant names the stream offset (bytes from the first byte the daemon sent) where the
//! problem was found, so a report can point at the exact byte in the wire dump.

use std::fmt;

/// Why a daemon's HTTP/1.x response could not be parsed.
///
/// Errors are sticky: once [`Parser::feed`](super::Parser::feed) has produced one, every later
/// feed produces the same error again and [`finish`](super::Parser::finish) returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The status line or a header line is not valid HTTP/1.x (httparse rejected the byte at `offset`).
    #[error("malformed response head at byte {offset}: {cause}")]
    MalformedHead {
        /// Stream offset of the rejected byte.
        offset: u64,
        /// What httparse found wrong.
        cause: httparse::Error,
    },
    /// The response head (1xx heads included) did not end within the configured limit.
    #[error(
        "response head is larger than {limit} bytes (no blank line ending it by byte {offset}); \
         raise --max-head-bytes if the daemon really sends such a head"
    )]
    HeadTooLarge {
        /// Stream offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes ([`Config::max_head_bytes`](super::Config::max_head_bytes)).
        limit: usize,
    },
    /// A Content-Length value is not a non-negative decimal number that fits in 64 bits.
    #[error("invalid Content-Length at byte {offset}: the value must be decimal digits only")]
    InvalidContentLength {
        /// Stream offset of the offending list element in the field value.
        offset: u64,
    },
    /// Content-Length fields or list elements disagree (RFC 9110 §8.6).
    #[error("conflicting Content-Length at byte {offset}: differs from an earlier value")]
    ConflictingContentLength {
        /// Stream offset of the first value that differs from the first one.
        offset: u64,
    },
    /// Transfer-Encoding is empty, not a list of tokens, or applies chunked more than once.
    #[error(
        "invalid Transfer-Encoding at byte {offset}: expected a comma-separated list of codings \
         with `chunked` at most once"
    )]
    InvalidTransferEncoding {
        /// Stream offset of the offending field value or list element.
        offset: u64,
    },
    /// An HTTP/1.0 response carries Transfer-Encoding, whose framing RFC 9112 §6.1 calls faulty.
    #[error(
        "HTTP/1.0 response with Transfer-Encoding at byte {offset}: RFC 9112 §6.1 requires \
         treating its framing as faulty; answer HTTP/1.1 or drop Transfer-Encoding"
    )]
    TransferEncodingInHttp10 {
        /// Stream offset of the Transfer-Encoding field value.
        offset: u64,
    },
    /// Both Content-Length and Transfer-Encoding are present (RFC 9112 §6.3 rule 3).
    #[error(
        "response has both Transfer-Encoding and Content-Length (Content-Length at byte {offset}); \
         send only one (Config::allow_content_length_with_transfer_encoding lets \
         Transfer-Encoding win)"
    )]
    ContentLengthWithTransferEncoding {
        /// Stream offset of the Content-Length field value.
        offset: u64,
    },
    /// A chunk-size line does not start with a hexadecimal digit or continues with a byte that
    /// cannot follow the size.
    #[error("invalid chunk size at byte {offset}: unexpected byte 0x{byte:02x}")]
    InvalidChunkSize {
        /// Stream offset of the unexpected byte.
        offset: u64,
        /// The unexpected byte.
        byte: u8,
    },
    /// A chunk size does not fit in 64 bits.
    #[error("chunk size at byte {offset} does not fit in 64 bits")]
    ChunkSizeOverflow {
        /// Stream offset of the hex digit that overflowed.
        offset: u64,
    },
    /// A chunk extension is not `;name[=token|"quoted"]` (RFC 9112 §7.1.1).
    #[error("invalid chunk extension at byte {offset}: unexpected byte 0x{byte:02x}")]
    InvalidChunkExtension {
        /// Stream offset of the unexpected byte.
        offset: u64,
        /// The unexpected byte.
        byte: u8,
    },
    /// Chunk data is not followed by CRLF: the chunk is longer than its size line said.
    #[error(
        "chunk data not followed by CRLF at byte {offset} (found 0x{byte:02x}): the daemon wrote \
         more bytes than the chunk size announced"
    )]
    ChunkDataNotTerminated {
        /// Stream offset of the byte where CRLF was expected.
        offset: u64,
        /// The byte found there.
        byte: u8,
    },
    /// A CR in chunked framing is not followed by LF (RFC 9112 §2.2 forbids bare CR).
    #[error("bare CR at byte {offset} in chunked framing: CR must be followed by LF")]
    BareCr {
        /// Stream offset of the CR.
        offset: u64,
    },
    /// A line in chunked framing ends with LF alone, which [`Config`](super::Config) rejects
    /// unless `allow_bare_lf_in_chunked` is set.
    #[error(
        "bare LF at byte {offset} in chunked framing: chunk-size lines and chunk ends must end \
         with CRLF"
    )]
    BareLf {
        /// Stream offset of the LF.
        offset: u64,
    },
    /// A trailer field line is not valid (httparse rejected the byte at `offset`).
    #[error("malformed trailer section at byte {offset}: {cause}")]
    MalformedTrailers {
        /// Stream offset of the rejected byte.
        offset: u64,
        /// What httparse found wrong.
        cause: httparse::Error,
    },
    /// The trailer section did not end within the configured limit.
    #[error(
        "trailer section is larger than {limit} bytes (no blank line ending it by byte {offset}); \
         no streaming daemon needs trailers this large"
    )]
    TrailersTooLarge {
        /// Stream offset of the first byte past the limit.
        offset: u64,
        /// The limit in bytes ([`Config::max_trailer_bytes`](super::Config::max_trailer_bytes)).
        limit: usize,
    },
    /// The stream ended before the message did.
    #[error("the stream ended at byte {offset} {stage}")]
    Truncated {
        /// Stream offset of the end of the stream (the number of bytes received).
        offset: u64,
        /// Where in the message the stream ended.
        stage: Stage,
    },
}

impl Error {
    /// The stream offset this error points at.
    pub fn offset(&self) -> u64 {
        match *self {
            Error::MalformedHead { offset, .. }
            | Error::HeadTooLarge { offset, .. }
            | Error::InvalidContentLength { offset }
            | Error::ConflictingContentLength { offset }
            | Error::InvalidTransferEncoding { offset }
            | Error::TransferEncodingInHttp10 { offset }
            | Error::ContentLengthWithTransferEncoding { offset }
            | Error::InvalidChunkSize { offset, .. }
            | Error::ChunkSizeOverflow { offset }
            | Error::InvalidChunkExtension { offset, .. }
            | Error::ChunkDataNotTerminated { offset, .. }
            | Error::BareCr { offset }
            | Error::BareLf { offset }
            | Error::MalformedTrailers { offset, .. }
            | Error::TrailersTooLarge { offset, .. }
            | Error::Truncated { offset, .. } => offset,
        }
    }
}

/// Where in the message a stream ended early ([`Error::Truncated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the final response head was complete (no bytes at all is offset 0).
    Head,
    /// Inside a Content-Length body, `remaining` bytes short.
    ContentLength {
        /// Body bytes still expected.
        remaining: u64,
    },
    /// Inside a chunk-size line (size or extensions), before its CRLF.
    ChunkHeader,
    /// Inside chunk data, `remaining` bytes short of the announced size.
    ChunkData {
        /// Chunk bytes still expected.
        remaining: u64,
    },
    /// After chunk data, before the CRLF that closes it.
    ChunkDataEnd,
    /// After the last chunk, before the blank line that ends the trailer section.
    Trailers,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Head => f.write_str("before the response head was complete"),
            Stage::ContentLength { remaining } => {
                write!(
                    f,
                    "with {remaining} bytes of the Content-Length body missing"
                )
            }
            Stage::ChunkHeader => f.write_str("inside a chunk-size line"),
            Stage::ChunkData { remaining } => {
                write!(f, "with {remaining} bytes of the current chunk missing")
            }
            Stage::ChunkDataEnd => f.write_str("before the CRLF closing a chunk"),
            Stage::Trailers => {
                f.write_str("after the last chunk, before the trailer section ended")
            }
        }
    }
}
