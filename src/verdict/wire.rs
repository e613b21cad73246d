//! The bytes on the wire, kept for reports of scenarios that went wrong.
//!
//! A stream can be 150 KiB in ten thousand one-byte reads, or endless, so a dump is bounded
//! ([`WireLimits`]): the first and last reads are kept (the head, and the end where a missing
//! `[DONE]` or a cut stream shows), and of a long read its beginning and its end. What is left
//! out is counted, never silently dropped. [`WireRecorder`] keeps that window as reads arrive,
//! so a stream's dump costs the same whatever the daemon sends.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How much of a stream a [`WireDump`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// Reads kept from the start of the stream.
    pub first_chunks: usize,
    /// Reads kept from the end of the stream.
    pub last_chunks: usize,
    /// Bytes kept of one read (half from its start, half from its end).
    pub chunk_bytes: usize,
    /// Bytes kept from each end of the stream (`--keep-bytes`): reads are kept from the start
    /// until this many bytes are, and the last reads up to this many bytes.
    pub keep_bytes: usize,
}

impl WireLimits {
    /// The default for [`WireLimits::keep_bytes`]: 32 KiB.
    pub const DEFAULT_KEEP_BYTES: usize = 32 << 10;
}

impl Default for WireLimits {
    /// 100 first and 100 last reads, 4 KiB of each, 32 KiB from each end at most.
    fn default() -> Self {
        WireLimits {
            first_chunks: 100,
            last_chunks: 100,
            chunk_bytes: 4096,
            keep_bytes: WireLimits::DEFAULT_KEEP_BYTES,
        }
    }
}

/// Keeps the bounded window of a stream's reads as they arrive (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct WireRecorder {
    limits: WireLimits,
    head: Vec<WireChunk>,
    head_bytes: usize,
    tail: VecDeque<WireChunk>,
    tail_bytes: usize,
    omitted: Omitted,
    received_bytes: u64,
}

impl WireRecorder {
    /// An empty recorder.
    pub fn new(limits: WireLimits) -> WireRecorder {
        WireRecorder {
            limits,
            head: Vec::new(),
            head_bytes: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            omitted: Omitted::default(),
            received_bytes: 0,
        }
    }

    /// Records a read of `data` at `at_ns`.
    pub fn push(&mut self, at_ns: u64, data: &[u8]) {
        self.received_bytes += data.len() as u64;
        let chunk = WireChunk::bounded(at_ns, data, self.limits.chunk_bytes);
        // Once a read has gone to the tail, the head is closed for good.
        let head_open = self.tail.is_empty()
            && self.omitted.chunks == 0
            && self.head.len() < self.limits.first_chunks
            && self.head_bytes < self.limits.keep_bytes;
        if head_open {
            self.head_bytes += chunk.bytes.len();
            self.head.push(chunk);
            return;
        }
        self.tail_bytes += chunk.bytes.len();
        self.tail.push_back(chunk);
        while self.tail.len() > self.limits.last_chunks
            || (self.tail.len() > 1 && self.tail_bytes > self.limits.keep_bytes)
        {
            let Some(out) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= out.bytes.len();
            self.omitted.chunks += 1;
            self.omitted.bytes += out.len as u64;
        }
    }

    /// Bytes recorded so far, kept or not.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// The dump of what was kept.
    pub fn dump(&self) -> WireDump {
        let omitted = (self.omitted.chunks > 0).then_some(Omitted {
            after: self.head.len(),
            ..self.omitted
        });
        WireDump {
            sent: None,
            head_len: None,
            chunks: self.head.iter().chain(&self.tail).cloned().collect(),
            omitted,
            received_bytes: self.received_bytes,
            end: None,
        }
    }
}

/// One read as the client received it.
///
/// In JSON: `{"at_ns": …, "len": …, "text": "…"}` when the kept bytes are valid UTF-8, with
/// `"hex"` instead of `"text"` otherwise, and `"gap": k` when bytes were left out (they sat at
/// position `k` of the kept bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ChunkRepr", try_from = "ChunkRepr")]
pub struct WireChunk {
    /// Receive time, ns since the handoff started (connect to the daemon's socket).
    pub at_ns: u64,
    /// Bytes this read returned.
    pub len: usize,
    /// The bytes kept: all `len` of them, or a start and an end of them split at `gap`.
    pub bytes: Vec<u8>,
    /// Where in `bytes` the `len - bytes.len()` left-out bytes were; `None` when none were.
    pub gap: Option<usize>,
}

impl WireChunk {
    /// Keeps `data` whole when it fits `max` bytes, otherwise about `max / 2` bytes from each
    /// end, cut at UTF-8 character boundaries where the data is text.
    pub fn bounded(at_ns: u64, data: &[u8], max: usize) -> WireChunk {
        if data.len() <= max {
            return WireChunk {
                at_ns,
                len: data.len(),
                bytes: data.to_vec(),
                gap: None,
            };
        }
        let mut head = max / 2;
        let mut tail = data.len() - (max - head);
        // Do not cut a character: move the head's end back and the tail's start forward.
        while head > 0 && is_continuation(data[head]) {
            head -= 1;
        }
        while tail < data.len() && is_continuation(data[tail]) {
            tail += 1;
        }
        let mut bytes = data[..head].to_vec();
        bytes.extend_from_slice(&data[tail..]);
        WireChunk {
            at_ns,
            len: data.len(),
            bytes,
            gap: Some(head),
        }
    }

    /// Bytes left out of this read (0 for a chunk built with more bytes than its `len`).
    pub fn omitted(&self) -> usize {
        self.len.saturating_sub(self.bytes.len())
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// Reads left out of the middle of a long stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    /// The reads were left out after `chunks[after - 1]`.
    pub after: usize,
    /// How many reads were left out.
    pub chunks: u64,
    /// How many bytes they held.
    pub bytes: u64,
}

/// What went over the wire on one stream: the handoff data sent, and every read received with
/// its time (bounded by [`WireLimits`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDump {
    /// The handoff data sent with the fd (the one SCM_RIGHTS message).
    pub sent: Option<WireChunk>,
    /// How many leading received bytes form the response head (status line and headers).
    pub head_len: Option<usize>,
    /// The reads kept, in arrival order.
    pub chunks: Vec<WireChunk>,
    /// Reads left out of the middle, if any.
    pub omitted: Option<Omitted>,
    /// Bytes received in all, kept or not.
    pub received_bytes: u64,
    /// How the stream ended, in words (e.g. "closed by the daemon", "client deadline of 5 s").
    pub end: Option<String>,
}

impl WireDump {
    /// Captures the reads of one stream, `(receive time in ns since handoff start, bytes)`.
    pub fn capture<'a>(
        reads: impl IntoIterator<Item = (u64, &'a [u8])>,
        limits: WireLimits,
    ) -> WireDump {
        let mut recorder = WireRecorder::new(limits);
        for (at, data) in reads {
            recorder.push(at, data);
        }
        recorder.dump()
    }

    /// Records the handoff data sent at `at_ns` (bounded like a read).
    pub fn with_sent(mut self, at_ns: u64, data: &[u8], limits: WireLimits) -> Self {
        self.sent = Some(WireChunk::bounded(at_ns, data, limits.chunk_bytes));
        self
    }

    /// Marks the first `len` received bytes as the response head.
    pub fn with_head_len(mut self, len: usize) -> Self {
        self.head_len = Some(len);
        self
    }

    /// Says how the stream ended.
    pub fn with_end(mut self, end: impl Into<String>) -> Self {
        self.end = Some(end.into());
        self
    }
}

/// JSON form of [`WireChunk`]: bytes as text when they are UTF-8, as hex when not.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkRepr {
    at_ns: u64,
    len: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gap: Option<usize>,
}

impl From<WireChunk> for ChunkRepr {
    fn from(c: WireChunk) -> Self {
        let (text, hex) = match String::from_utf8(c.bytes) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(crate::hex::encode(e.as_bytes()))),
        };
        ChunkRepr {
            at_ns: c.at_ns,
            len: c.len,
            text,
            hex,
            gap: c.gap,
        }
    }
}

impl TryFrom<ChunkRepr> for WireChunk {
    type Error = String;

    fn try_from(r: ChunkRepr) -> Result<Self, String> {
        let bytes = match (r.text, r.hex) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(hex)) => crate::hex::decode(&hex)
                .map_err(|e| format!("wire chunk at {} ns: {e}", r.at_ns))?,
            _ => return Err("a wire chunk needs exactly one of \"text\" and \"hex\"".into()),
        };
        let consistent = match r.gap {
            None => bytes.len() == r.len,
            Some(gap) => gap <= bytes.len() && bytes.len() < r.len,
        };
        if !consistent {
            return Err(format!(
                "wire chunk at {} ns: len {} and gap {:?} do not fit its {} kept bytes",
                r.at_ns,
                r.len,
                r.gap,
                bytes.len()
            ));
        }
        Ok(WireChunk {
            at_ns: r.at_ns,
            len: r.len,
            bytes,
            gap: r.gap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_are_kept_whole() {
        let d = WireDump::capture(
            [(5, &b"HTTP/1.1 200 OK\r\n"[..]), (9, b"data: x\n\n")],
            WireLimits::default(),
        );
        assert_eq!(d.chunks.len(), 2);
        assert_eq!(d.chunks[1].bytes, b"data: x\n\n");
        assert_eq!(d.chunks[1].gap, None);
        assert_eq!(d.received_bytes, 26);
        assert_eq!(d.omitted, None);
    }

    #[test]
    fn long_read_keeps_both_ends_without_cutting_characters() {
        let data = "é".repeat(10); // 20 bytes, every character 2 bytes
        let c = WireChunk::bounded(0, data.as_bytes(), 7);
        // head: 3 bytes → cut back to 2; tail: starts at 16 (20 - 4), a character boundary.
        assert_eq!(c.gap, Some(2));
        assert_eq!(c.bytes, "ééé".as_bytes());
        assert_eq!(c.omitted(), 14);
        assert!(std::str::from_utf8(&c.bytes).is_ok());
    }

    #[test]
    fn long_stream_keeps_first_and_last_reads() {
        let reads: Vec<(u64, Vec<u8>)> = (0..10u64).map(|i| (i, vec![b'a' + i as u8; 3])).collect();
        let limits = WireLimits {
            first_chunks: 2,
            last_chunks: 3,
            chunk_bytes: 64,
            ..WireLimits::default()
        };
        let d = WireDump::capture(reads.iter().map(|(t, b)| (*t, b.as_slice())), limits);
        let kept: Vec<u64> = d.chunks.iter().map(|c| c.at_ns).collect();
        assert_eq!(kept, [0, 1, 7, 8, 9]);
        assert_eq!(
            d.omitted,
            Some(Omitted {
                after: 2,
                chunks: 5,
                bytes: 15
            })
        );
        assert_eq!(d.received_bytes, 30);
    }

    #[test]
    fn an_endless_stream_keeps_a_bounded_window_of_each_end() {
        let limits = WireLimits {
            keep_bytes: 100,
            ..WireLimits::default()
        };
        let mut r = WireRecorder::new(limits);
        for i in 0..100_000u64 {
            r.push(i, &[b'x'; 30]);
        }
        let d = r.dump();
        // 4 reads reach 100 bytes at the start; at the end, the last 3 hold 90 of at most 100.
        let kept: Vec<u64> = d.chunks.iter().map(|c| c.at_ns).collect();
        assert_eq!(kept, [0, 1, 2, 3, 99_997, 99_998, 99_999]);
        let omitted = d.omitted.unwrap();
        assert_eq!((omitted.after, omitted.chunks), (4, 100_000 - 7));
        assert_eq!(omitted.bytes, 30 * (100_000 - 7));
        assert_eq!(d.received_bytes, 3_000_000);
    }

    #[test]
    fn json_uses_text_for_utf8_and_hex_otherwise() {
        let text = serde_json::to_value(WireChunk::bounded(1, b"ok\n", 64)).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"at_ns": 1, "len": 3, "text": "ok\n"})
        );
        let hex = serde_json::to_value(WireChunk::bounded(2, b"\xf0\x9f", 64)).unwrap();
        assert_eq!(
            hex,
            serde_json::json!({"at_ns": 2, "len": 2, "hex": "f09f"})
        );
        for v in [text, hex] {
            let back: WireChunk = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(back).unwrap(), v);
        }
    }

    #[test]
    fn inconsistent_json_chunks_are_rejected_with_a_reason() {
        for (bad, why) in [
            (
                r#"{"at_ns":0,"len":1,"text":"a","hex":"61"}"#,
                "exactly one",
            ),
            (r#"{"at_ns":0,"len":1}"#, "exactly one"),
            (r#"{"at_ns":0,"len":2,"text":"a"}"#, "do not fit"),
            (r#"{"at_ns":0,"len":1,"hex":"6"}"#, "odd number of digits"),
            (r#"{"at_ns":0,"len":1,"hex":"zz"}"#, "not a hex digit"),
            (r#"{"at_ns":0,"len":5,"text":"ab","gap":3}"#, "do not fit"),
        ] {
            let err = serde_json::from_str::<WireChunk>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
