//! One connection, checked as its bytes arrive: the HTTP/1 response ([`crate::http1`]), the
//! event stream ([`crate::sse`]), what each event means, and the content compared with what the
//! mock sent for this connection's nonce. Nothing received is kept, so 10,000 streams cost a
//! few hundred bytes each; the parsers buffer only a head or a line that spans reads, and
//! [`StreamLimits`] keeps those small. Once a stream's outcome is settled
//! ([`StreamCheck::settled`]) nothing more is parsed, and the driver closes it.
//!
//! What each event means follows [`crate::transcript::Interpreter`]'s rules exactly. The one
//! shape almost every event has, `{"content":"…"}` with a string that needs no decoding (no
//! backslash, quote or control character, valid UTF-8), is recognised directly, without
//! building a JSON value; everything else goes through the interpreter. A test checks that the
//! two agree.

use std::borrow::Cow;

use hdrhistogram::Histogram;

use super::expect::{ExpectedContent, Mismatch, Nonces};
use crate::transcript::{EventKind, Interpreter};
use crate::{http1, sse};

/// What one event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning<'a> {
    /// `data: [DONE]`.
    Done,
    /// A content piece (an error event's content is not one: see [`Meaning::Error`]).
    Content(Cow<'a, [u8]>),
    /// An error event, with its message.
    Error(String),
    /// A recognised event without content (role-only delta, final chunk).
    Control,
    /// Not understood.
    Other,
}

/// What event `data` of type `event_type` means.
pub fn meaning<'a>(event_type: &[u8], data: &'a [u8]) -> Meaning<'a> {
    const PREFIX: &[u8] = br#"{"content":""#;
    const SUFFIX: &[u8] = br#""}"#;
    if event_type != b"error" {
        if data == b"[DONE]" {
            return Meaning::Done;
        }
        if data.len() >= PREFIX.len() + SUFFIX.len()
            && data.starts_with(PREFIX)
            && data.ends_with(SUFFIX)
        {
            let inner = &data[PREFIX.len()..data.len() - SUFFIX.len()];
            let plain = !inner.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
            if plain && std::str::from_utf8(inner).is_ok() {
                return Meaning::Content(Cow::Borrowed(inner));
            }
        }
    }
    let event_type = String::from_utf8_lossy(event_type);
    let event_type = if event_type.is_empty() {
        "message"
    } else {
        &event_type
    };
    let mut interpreter = Interpreter::new();
    let kind = interpreter.push(0, event_type, data);
    let mut out = interpreter.finish();
    match kind {
        EventKind::Done => Meaning::Done,
        EventKind::Error => Meaning::Error(
            out.errors
                .pop()
                .map(|e| e.message)
                .unwrap_or_else(|| "error event".to_owned()),
        ),
        EventKind::Content => Meaning::Content(Cow::Owned(out.content)),
        EventKind::Control => Meaning::Control,
        EventKind::Other => Meaning::Other,
    }
}

/// Where the content check stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentFault {
    /// The first byte that differs.
    pub mismatch: Mismatch,
    /// What arrived from there (at most [`EXCERPT`] bytes of that piece).
    pub got: Vec<u8>,
    /// Content events received up to and including the wrong one.
    pub at_event: u32,
}

/// Bytes of received content kept for an example.
pub const EXCERPT: usize = 48;

/// Content bytes read past a wrong byte before the stream is settled: wrong content is often
/// another connection's, and its nonce, a few pieces on, says whose (cross-talk).
pub const CROSSTALK_LOOKAHEAD: u64 = 4096;
/// Content events read past the wrong one, at most: a flood of tiny events settles as wrong
/// content long before it fills the stream's byte budget.
pub const CROSSTALK_LOOKAHEAD_EVENTS: u32 = 16;

/// Everything known about a stream so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Bytes received.
    pub bytes: u64,
    /// The response's status, once its head is complete.
    pub status: Option<u16>,
    /// Whether the head said `Content-Type: text/event-stream`.
    pub event_stream: bool,
    /// When the head was complete.
    pub head_ns: Option<u64>,
    /// The response is not valid HTTP/1, or the event stream crossed a parser limit.
    pub malformed: Option<String>,
    /// Events dispatched.
    pub events: u32,
    /// Events carrying content.
    pub content_events: u32,
    /// Content bytes received (those that matched, then any after a mismatch).
    pub content_len: u64,
    /// The first content that differs from the expected.
    pub fault: Option<ContentFault>,
    /// Another connection's nonce in this stream's content.
    pub crosstalk: Option<u64>,
    /// `[DONE]` events.
    pub done: u32,
    /// Events after the first `[DONE]`.
    pub after_done: u32,
    /// Content bytes received when the first `[DONE]` came.
    pub content_at_done: u64,
    /// The first error event's message.
    pub error_event: Option<String>,
    /// Events not understood.
    pub other: u32,
    /// When the first and the latest event arrived.
    pub first_event_ns: Option<u64>,
    /// When the latest event arrived.
    pub last_event_ns: u64,
}

/// Where a stream's content pieces arrived, for the relay-latency join: `(content offset of
/// the piece, arrival time)`.
pub type Arrivals = Vec<(u32, u64)>;

/// What the checker needs besides the stream: shared, read-only except the gap histogram.
pub struct Ctx<'a> {
    /// The content to expect (`None`: any content is fine, as with `--no-upstream`).
    pub expected: Option<&'a ExpectedContent>,
    /// The run's nonce format, to recognise another connection's content.
    pub nonces: &'a Nonces,
    /// Inter-event gaps of all streams (`None`: not recorded for this stream).
    pub gaps: Option<&'a mut Histogram<u64>>,
}

/// What one stream may send before its outcome is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest response head.
    pub max_head: usize,
    /// Longest SSE line, and largest event data.
    pub max_line: usize,
    /// Most bytes in all.
    pub max_bytes: u64,
}

impl StreamLimits {
    /// The default head limit: a correct daemon's head is a few hundred bytes.
    pub const DEFAULT_MAX_HEAD: usize = 2 << 10;
    /// The line limit when no content is expected (`--no-upstream`).
    pub const UNKNOWN_MAX_LINE: usize = 4 << 10;

    /// Room for any correct relay of `expected`: an event line holds one piece, escaped (up to
    /// six bytes per byte) and wrapped (an OpenAI chunk passed through adds a few hundred
    /// bytes); the stream holds every piece that way. `max_line` overrides the line limit.
    pub fn for_expected(
        expected: Option<&ExpectedContent>,
        max_head: usize,
        max_line: Option<usize>,
    ) -> StreamLimits {
        let Some(e) = expected else {
            return StreamLimits {
                max_head,
                max_line: max_line.unwrap_or(StreamLimits::UNKNOWN_MAX_LINE),
                max_bytes: u64::MAX,
            };
        };
        let line = e
            .max_piece()
            .saturating_mul(6)
            .saturating_add(512)
            .max(1 << 10);
        StreamLimits {
            max_head,
            max_line: max_line.unwrap_or(line),
            max_bytes: e
                .len()
                .saturating_mul(6)
                .saturating_add(e.pieces() as u64 * 512)
                .saturating_add(64 << 10),
        }
    }
}

/// One stream being checked.
#[derive(Debug, Default)]
pub struct StreamCheck {
    http: http1::Parser,
    sse: sse::Parser,
    /// Most bytes it may send (0: unlimited).
    max_bytes: u64,
    /// What has been seen.
    pub progress: Progress,
}

impl StreamCheck {
    /// A stream with nothing received yet, with the parsers' default limits.
    pub fn new() -> StreamCheck {
        StreamCheck::default()
    }

    /// A stream with nothing received yet, bounded by `limits`.
    pub fn with_limits(limits: StreamLimits) -> StreamCheck {
        StreamCheck {
            http: http1::Parser::with_config(
                http1::Config::default().max_head_bytes(limits.max_head),
            ),
            sse: sse::Parser::with_limits(
                sse::Limits::default()
                    .with_max_line(limits.max_line)
                    .with_max_event(limits.max_line),
            ),
            max_bytes: limits.max_bytes,
            progress: Progress::default(),
        }
    }

    /// Whether more bytes cannot change the stream's outcome: the response is malformed,
    /// another connection's content arrived, or the content went wrong and the look-ahead
    /// past it ([`CROSSTALK_LOOKAHEAD`] content bytes or [`CROSSTALK_LOOKAHEAD_EVENTS`] events)
    /// brought no other connection's nonce.
    pub fn settled(&self) -> bool {
        let p = &self.progress;
        let looked_past_fault = p.fault.as_ref().is_some_and(|f| {
            p.content_len >= f.mismatch.offset.saturating_add(CROSSTALK_LOOKAHEAD)
                || p.content_events >= f.at_event.saturating_add(CROSSTALK_LOOKAHEAD_EVENTS)
        });
        p.malformed.is_some() || p.crosstalk.is_some() || looked_past_fault
    }

    /// Checks the next bytes of connection `index` (nonce `nonce`), received at `ts`. Returns
    /// the number of events they completed. `arrivals`, when given, gets one entry per content
    /// piece.
    pub fn feed(
        &mut self,
        ts: u64,
        bytes: &[u8],
        index: u64,
        nonce: &[u8],
        ctx: &mut Ctx<'_>,
        arrivals: Option<&mut Arrivals>,
    ) -> u32 {
        let p = &mut self.progress;
        p.bytes += bytes.len() as u64;
        let before = p.events;
        let mut visit = Visit {
            p,
            ctx,
            ts,
            index,
            nonce,
            arrivals,
        };
        if visit.p.malformed.is_some() {
            return 0;
        }
        if self.max_bytes > 0 && visit.p.bytes > self.max_bytes {
            visit.p.malformed = Some(format!(
                "more than {} bytes, more than any relay of the expected answer can hold",
                self.max_bytes
            ));
            return 0;
        }
        for event in self.http.feed(bytes) {
            match event {
                Ok(http1::Event::Head { head, .. }) => {
                    visit.p.status = Some(head.status());
                    visit.p.head_ns = Some(ts);
                    visit.p.event_stream = head
                        .headers()
                        .get("content-type")
                        .and_then(|f| f.value_str())
                        .and_then(|v| v.split(';').next())
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"));
                }
                Ok(http1::Event::Body(data)) => {
                    if let Err(e) = self.sse.feed(data.bytes, &mut visit) {
                        visit.p.malformed = Some(format!("event stream: {e}"));
                        break;
                    }
                }
                Ok(http1::Event::Interim(_) | http1::Event::End(_)) => {}
                Ok(http1::Event::Excess(data)) => {
                    visit.p.malformed = Some(format!(
                        "{} bytes after the end of the HTTP message",
                        data.bytes.len()
                    ));
                }
                Err(e) => {
                    visit.p.malformed = Some(format!("HTTP response: {e}"));
                    break;
                }
            }
        }
        visit.p.events - before
    }

    /// The daemon closed the connection: whether the HTTP message was complete (an until-close
    /// body always is; a short Content-Length or an unfinished chunked body is not).
    pub fn close(&mut self) {
        let http = std::mem::take(&mut self.http);
        if self.progress.malformed.is_none()
            && self.progress.status.is_some()
            && let Err(e) = http.finish()
        {
            self.progress.malformed = Some(format!("HTTP response: {e}"));
        }
    }
}

/// The SSE visitor: interprets each event against the stream's progress.
struct Visit<'p, 'c, 'x> {
    p: &'p mut Progress,
    ctx: &'c mut Ctx<'x>,
    ts: u64,
    index: u64,
    nonce: &'p [u8],
    arrivals: Option<&'p mut Arrivals>,
}

impl sse::Visitor for Visit<'_, '_, '_> {
    fn event(&mut self, event: sse::EventRef<'_>) {
        let p = &mut *self.p;
        p.events += 1;
        if p.malformed.is_none()
            && let Err(e) = std::str::from_utf8(event.data())
        {
            p.malformed = Some(format!(
                "invalid UTF-8 in the event at byte {} of the event stream (data byte {}): a \
                 browser shows U+FFFD there",
                event.start(),
                e.valid_up_to()
            ));
        }
        if p.first_event_ns.is_none() {
            p.first_event_ns = Some(self.ts);
        } else if let Some(gaps) = self.ctx.gaps.as_deref_mut() {
            gaps.saturating_record(self.ts.saturating_sub(p.last_event_ns));
        }
        p.last_event_ns = self.ts;
        if p.done > 0 {
            p.after_done += 1;
        }
        match meaning(event.event_type_bytes(), event.data()) {
            Meaning::Done => {
                if p.done == 0 {
                    p.content_at_done = p.content_len;
                }
                p.done += 1;
            }
            Meaning::Content(piece) => {
                let at = p.content_len;
                p.content_events += 1;
                p.content_len += piece.len() as u64;
                if let Some(arrivals) = self.arrivals.as_deref_mut() {
                    arrivals.push((u32::try_from(at).unwrap_or(u32::MAX), self.ts));
                }
                if p.crosstalk.is_none()
                    && let Some(other) = self.ctx.nonces.find_connection(&piece)
                    && other != self.index
                {
                    p.crosstalk = Some(other);
                }
                if p.fault.is_none()
                    && let Some(expected) = self.ctx.expected
                    && let Err(mismatch) = expected.check(self.nonce, at, &piece)
                {
                    let from = (mismatch.offset - at) as usize;
                    let got = piece[from.min(piece.len())..].iter().take(EXCERPT);
                    p.fault = Some(ContentFault {
                        mismatch,
                        got: got.copied().collect(),
                        at_event: p.content_events,
                    });
                }
            }
            Meaning::Error(message) => {
                p.error_event.get_or_insert(message);
            }
            Meaning::Control => {}
            Meaning::Other => p.other += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::MockSettings;

    fn slow_meaning<'a>(event_type: &str, data: &'a [u8]) -> Meaning<'a> {
        // The interpreter alone, as `meaning` falls back to it.
        let mut interpreter = Interpreter::new();
        let kind = interpreter.push(0, event_type, data);
        let out = interpreter.finish();
        match kind {
            EventKind::Done => Meaning::Done,
            EventKind::Error => Meaning::Error(out.errors[0].message.clone()),
            EventKind::Content => Meaning::Content(Cow::Owned(out.content)),
            EventKind::Control => Meaning::Control,
            EventKind::Other => Meaning::Other,
        }
    }

    #[test]
    fn the_direct_path_agrees_with_the_interpreter() {
        let cases: &[&[u8]] = &[
            br#"{"content":"Hello"}"#,
            br#"{"content":""}"#,
            br#"{"content":" [s-1]"}"#,
            "{\"content\":\"h\u{e9}\u{4e16}\u{1f600}\"}".as_bytes(),
            br#"{"content":"a\"b"}"#,
            br#"{"content":"a\\nb"}"#,
            br#"{"content":"\ud83d\ude00"}"#,
            b"{\"content\":\"tab\there\"}",
            b"{\"content\":\"bad \xff byte\"}",
            br#"{"content":"x","error":"boom"}"#,
            br#"{"content":"x"}  "#,
            br#"{"content":"x"}"#,
            br#"{"content": "spaced"}"#,
            br#"{"error":"upstream failed"}"#,
            br#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#,
            br#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            br#"[DONE]"#,
            br#"not json"#,
            br#"{"content":"x"}"#,
            br#"{"content":"x""}"#,
        ];
        for data in cases {
            for event_type in ["message", "error", "delta"] {
                let direct = meaning(
                    if event_type == "message" {
                        b""
                    } else {
                        event_type.as_bytes()
                    },
                    data,
                );
                assert_eq!(
                    direct,
                    slow_meaning(event_type, data),
                    "{event_type} {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
        assert!(matches!(
            meaning(b"", br#"{"content":"Hello"}"#),
            Meaning::Content(Cow::Borrowed(b"Hello"))
        ));
    }

    fn stream_of(content: &[String], done: bool) -> Vec<u8> {
        let mut s =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                .to_vec();
        for piece in content {
            s.extend_from_slice(
                format!("data: {}\n\n", serde_json::json!({ "content": piece })).as_bytes(),
            );
        }
        if done {
            s.extend_from_slice(b"data: [DONE]\n\n");
        }
        s
    }

    fn check(bytes: &[u8], index: u64, split: usize) -> Progress {
        let nonces = Nonces::with_tag("stest1");
        let expected =
            ExpectedContent::for_pattern(None, &MockSettings::default(), &nonces).unwrap();
        let mut gaps = Histogram::new_with_bounds(1, 1 << 40, 3).unwrap();
        let mut ctx = Ctx {
            expected: Some(&expected),
            nonces: &nonces,
            gaps: Some(&mut gaps),
        };
        let nonce = nonces.nonce(index);
        let mut s = StreamCheck::new();
        let mut arrivals = Arrivals::new();
        for (i, piece) in bytes.chunks(split).enumerate() {
            s.feed(
                1000 * i as u64,
                piece,
                index,
                nonce.as_bytes(),
                &mut ctx,
                Some(&mut arrivals),
            );
        }
        s.close();
        assert_eq!(arrivals.len(), s.progress.content_events as usize);
        s.progress
    }

    fn pieces(index: u64) -> Vec<String> {
        let nonce = Nonces::with_tag("stest1").nonce(index);
        crate::pattern::resolve("default", &MockSettings::default(), Some(&nonce))
            .unwrap()
            .expected
            .pieces
    }

    #[test]
    fn a_correct_stream_matches_under_every_split() {
        let bytes = stream_of(&pieces(3), true);
        for split in [1, 2, 7, 64, bytes.len()] {
            let p = check(&bytes, 3, split);
            assert_eq!(p.status, Some(200));
            assert!(p.event_stream && p.malformed.is_none());
            assert_eq!((p.done, p.after_done, p.crosstalk), (1, 0, None));
            assert_eq!(p.fault, None, "split {split}");
            assert_eq!(p.content_events, 19);
            assert_eq!(p.events, 20);
            assert_eq!(p.bytes, bytes.len() as u64);
        }
    }

    #[test]
    fn another_connections_stream_is_crosstalk() {
        let bytes = stream_of(&pieces(4), true);
        let p = check(&bytes, 3, 100);
        assert_eq!(p.crosstalk, Some(4));
        assert!(p.fault.is_some());
    }

    #[test]
    fn wrong_content_is_read_on_until_another_connections_nonce_names_it() {
        // The first pieces of another connection's answer carry no nonce: the content is
        // wrong before it can be told whose it is.
        let mut mixed = pieces(4);
        mixed.insert(0, mixed[0].clone());
        let mut s = StreamCheck::new();
        let nonces = Nonces::with_tag("stest1");
        let expected =
            ExpectedContent::for_pattern(None, &MockSettings::default(), &nonces).unwrap();
        let mut ctx = Ctx {
            expected: Some(&expected),
            nonces: &nonces,
            gaps: None,
        };
        let bytes = stream_of(&mixed, true);
        let (head, rest) = bytes.split_at(bytes.len() / 4);
        s.feed(1, head, 3, nonces.nonce(3).as_bytes(), &mut ctx, None);
        assert!(s.progress.fault.is_some() && s.progress.crosstalk.is_none());
        assert!(!s.settled(), "within the look-ahead");
        s.feed(2, rest, 3, nonces.nonce(3).as_bytes(), &mut ctx, None);
        assert_eq!(s.progress.crosstalk, Some(4));
        assert!(s.settled());

        // Wrong content with no nonce in sight settles once the look-ahead is read.
        let mut s = StreamCheck::new();
        let junk = vec!["z".repeat(1024); 5];
        s.feed(
            1,
            &stream_of(&junk, false),
            3,
            nonces.nonce(3).as_bytes(),
            &mut ctx,
            None,
        );
        assert!(s.progress.crosstalk.is_none());
        assert!(s.settled(), "{} content bytes", s.progress.content_len);
    }

    #[test]
    fn content_faults_and_errors_are_recorded() {
        let mut cut = pieces(3);
        cut[5] = "X".into();
        let p = check(&stream_of(&cut, true), 3, 10);
        let fault = p.fault.unwrap();
        assert_eq!(fault.got, b"X");
        assert_eq!(p.crosstalk, None);

        let mut bytes = stream_of(&pieces(3)[..4], false);
        bytes.extend_from_slice(b"data: {\"error\":\"upstream gone\"}\n\n");
        let p = check(&bytes, 3, 9);
        assert_eq!(p.error_event.as_deref(), Some("upstream gone"));
        assert_eq!(p.done, 0);

        let mut bytes = stream_of(&pieces(3), true);
        bytes.extend_from_slice(b"data: [DONE]\n\n");
        assert_eq!(check(&bytes, 3, 50).after_done, 1);

        let p = check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ndata: x\n\n",
            3,
            4,
        );
        assert!(p.malformed.unwrap().contains("HTTP"), "a short body");
        let p = check(b"HTTP/1.1 503 Busy\r\n\r\n", 3, 4);
        assert_eq!(p.status, Some(503));
        assert!(!p.event_stream);
        let p = check(b"HTTP/1.1 2000 OK\r\n\r\n", 3, 4);
        assert!(p.malformed.is_some());
    }
}
