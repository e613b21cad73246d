//! The upstream side of the relay: response body bytes → [`Item`]s (content deltas, `[DONE]`,
//! errors). All upstream SSE parsing sits behind [`Reader`]: the bytes go through the crate's
//! text/event-stream parser ([`crate::sse`]), and each complete event's data is decoded as an
//! OpenAI chunk. JSON is only ever decoded from a complete event, so a character split across
//! reads is reassembled by the parser before anything looks at it.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::fault::{self, Fault};
use crate::sse;

/// Largest upstream line or event the reader holds (bounded memory per connection). A chunk of
/// an LLM answer is a few hundred bytes; 4 MiB leaves room for huge single-chunk answers.
pub(crate) const MAX_UPSTREAM_EVENT: usize = 4 << 20;

/// The line limit of the `line-limit-64k` fault: a fixed-size line scanner's buffer.
const FAULT_LINE_LIMIT: usize = 64 << 10;

/// What one upstream event means to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A chunk: the delta's content (if any) and the choice's finish_reason (if any).
    Delta {
        content: Option<String>,
        finish_reason: Option<String>,
    },
    /// `data: [DONE]`: the upstream says the answer is complete.
    Done,
    /// The upstream reported an error in the stream, or sent something undecodable.
    Error(String),
}

/// Turns upstream body bytes into items, one read at a time.
pub(crate) struct Reader {
    fault: Option<Fault>,
    kind: Kind,
}

enum Kind {
    Sse(Box<sse::Parser>),
    Naive(NaiveLines),
}

impl Reader {
    pub(crate) fn new(fault: Option<Fault>) -> Self {
        let kind = if fault::is(fault, Fault::NaiveUpstreamParser) {
            Kind::Naive(NaiveLines::default())
        } else {
            let max_line = if fault::is(fault, Fault::LineLimit64k) {
                // Bug (line-limit-64k): a line scanner with a fixed 64 KiB maximum.
                FAULT_LINE_LIMIT
            } else {
                MAX_UPSTREAM_EVENT
            };
            let limits = sse::Limits::default()
                .with_max_line(max_line)
                .with_max_event(MAX_UPSTREAM_EVENT);
            Kind::Sse(Box::new(sse::Parser::with_limits(limits)))
        };
        Reader { fault, kind }
    }

    /// Feeds one upstream read; appends the items it completes. A parse failure becomes an
    /// [`Item::Error`] and ends the stream (the caller stops at the first error).
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Item>) {
        let lossy;
        let bytes = if fault::is(self.fault, Fault::LossyUtf8) {
            // Bug (lossy-utf8): each read decoded on its own; a split character becomes U+FFFD.
            lossy = String::from_utf8_lossy(bytes).into_owned();
            lossy.as_bytes()
        } else {
            bytes
        };
        match &mut self.kind {
            Kind::Sse(parser) => {
                let fault = self.fault;
                // Events are decoded as they are dispatched, straight from the parser's buffer.
                let mut decode = sse::on_event(|event: sse::EventRef<'_>| {
                    if let Some(item) = decode_event(&event.event_type(), event.data(), fault) {
                        out.push(item);
                    }
                });
                if let Err(err) = parser.feed(bytes, &mut decode) {
                    out.push(Item::Error(format!("upstream stream is not usable: {err}")));
                }
            }
            Kind::Naive(naive) => naive.feed(bytes, out),
        }
    }
}

/// Decodes one complete upstream event. `None` for events that carry nothing to relay (a role-only
/// first delta, a usage chunk, an event type other than `message` or `error`).
pub(crate) fn decode_event(event_type: &str, data: &[u8], fault: Option<Fault>) -> Option<Item> {
    if event_type == "error" {
        return Some(Item::Error(format!(
            "upstream error event: {}",
            String::from_utf8_lossy(data)
        )));
    }
    if event_type != "message" {
        return None;
    }
    if data.trim_ascii() == b"[DONE]" {
        return Some(Item::Done);
    }
    let chunk: Chunk<'_> = match serde_json::from_slice(data) {
        Ok(chunk) => chunk,
        Err(err) => {
            return Some(Item::Error(format!(
                "upstream sent an event that is not an OpenAI chunk: {err}"
            )));
        }
    };
    if let Some(error) = chunk.error {
        return Some(Item::Error(format!(
            "upstream error: {}",
            error_message(&error)
        )));
    }
    let choice = chunk
        .choices
        .into_iter()
        .find(|c| c.index.unwrap_or(0) == 0)?;
    let content = match choice.delta.and_then(|d| d.content) {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) if fault::is(fault, Fault::EscapePassthrough) => {
            // Bug (escape-passthrough): the JSON string's text is copied, escapes and all.
            let text = raw.get();
            Some(
                text.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(text)
                    .to_owned(),
            )
        }
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(text) => Some(text),
            Err(err) => {
                return Some(Item::Error(format!(
                    "upstream delta content is not a string: {err}"
                )));
            }
        },
    };
    if content.is_none() && choice.finish_reason.is_none() {
        return None;
    }
    Some(Item::Delta {
        content,
        finish_reason: choice.finish_reason,
    })
}

/// The message of an OpenAI error object (`{"message":…}`), or the JSON itself.
pub(crate) fn error_message(error: &serde_json::Value) -> String {
    match error {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => match map.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    }
}

/// The parts of an OpenAI `chat.completion.chunk` the relay reads; everything else is ignored.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    /// Kept raw so the escape-passthrough fault can copy its text; decoded otherwise.
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// Bug (naive-upstream-parser): content found by exact text instead of parsing SSE and JSON.
/// Only LF ends a line, only `data: ` (with the space) starts data, and content is whatever follows
/// the compact `{"content":"` up to the next unescaped quote.
#[derive(Default)]
struct NaiveLines {
    line: Vec<u8>,
}

impl NaiveLines {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Item>) {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(piece);
            if self.line.len() > MAX_UPSTREAM_EVENT {
                out.push(Item::Error("upstream line too long".into()));
                self.line.clear();
                return;
            }
            if piece.ends_with(b"\n") {
                let line = std::mem::take(&mut self.line);
                if let Some(item) = Self::line(&line[..line.len() - 1]) {
                    out.push(item);
                }
            }
        }
    }

    fn line(line: &[u8]) -> Option<Item> {
        let rest = line.strip_prefix(b"data: ")?;
        if rest == b"[DONE]" {
            return Some(Item::Done);
        }
        let content = Self::string_after(rest, b"{\"content\":\"");
        let finish_reason = Self::string_after(rest, b"\"finish_reason\":\"");
        if content.is_none() && finish_reason.is_none() {
            return None;
        }
        Some(Item::Delta {
            content,
            finish_reason,
        })
    }

    /// The JSON string literal that starts right after `marker`, decoded.
    fn string_after(hay: &[u8], marker: &[u8]) -> Option<String> {
        let start = memchr::memmem::find(hay, marker)? + marker.len();
        let mut i = start;
        while i < hay.len() {
            match hay[i] {
                b'\\' => i += 2,
                b'"' => {
                    let literal = std::str::from_utf8(&hay[start - 1..=i]).ok()?;
                    return serde_json::from_str(literal).ok();
                }
                _ => i += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str) -> String {
        format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
            serde_json::to_string(content).unwrap()
        )
    }

    fn read_all(fault: Option<Fault>, reads: &[&[u8]]) -> Vec<Item> {
        let mut reader = Reader::new(fault);
        let mut out = Vec::new();
        for read in reads {
            reader.feed(read, &mut out);
        }
        out
    }

    fn delta(content: &str) -> Item {
        Item::Delta {
            content: Some(content.into()),
            finish_reason: None,
        }
    }

    #[test]
    fn utf8_split_at_every_byte_is_reassembled() {
        let stream = chunk("né 日本 🎉");
        let bytes = stream.as_bytes();
        for cut in 1..bytes.len() {
            let items = read_all(None, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(items, [delta("né 日本 🎉")], "cut at {cut}");
        }
    }

    #[test]
    fn lossy_utf8_fault_corrupts_a_split_character() {
        let stream = chunk("🎉");
        let at = stream.find('🎉').unwrap() + 2;
        let items = read_all(
            Some(Fault::LossyUtf8),
            &[&stream.as_bytes()[..at], &stream.as_bytes()[at..]],
        );
        let Item::Delta {
            content: Some(content),
            ..
        } = &items[0]
        else {
            panic!("{items:?}")
        };
        assert!(content.contains('\u{FFFD}'), "{content:?}");
    }

    #[test]
    fn escapes_are_decoded_and_passthrough_fault_keeps_them() {
        let raw = b"data: {\"choices\":[{\"delta\":{\"content\":\"caf\\u00e9 \\\"q\\\"\\n \\ud83c\\udf89\"}}]}\n\n";
        assert_eq!(read_all(None, &[raw]), [delta("café \"q\"\n 🎉")]);
        assert_eq!(
            read_all(Some(Fault::EscapePassthrough), &[raw]),
            [delta(r#"caf\u00e9 \"q\"\n \ud83c\udf89"#)]
        );
    }

    #[test]
    fn done_finish_reason_and_role_only_deltas() {
        let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                      data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
                      data: [DONE]\n\n";
        assert_eq!(
            read_all(None, &[stream.as_bytes()]),
            [
                Item::Delta {
                    content: None,
                    finish_reason: Some("length".into())
                },
                Item::Done
            ]
        );
    }

    #[test]
    fn upstream_error_object_and_invalid_json_become_errors() {
        let items = read_all(
            None,
            &[b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"],
        );
        assert_eq!(items, [Item::Error("upstream error: overloaded".into())]);
        let items = read_all(None, &[b"data: {not json\n\n"]);
        assert!(
            matches!(&items[..], [Item::Error(m)] if m.contains("not an OpenAI chunk")),
            "{items:?}"
        );
    }

    #[test]
    fn valid_sse_variants_are_understood() {
        let nospace = "data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n";
        let spaced = "data: { \"choices\" : [ { \"delta\" : { \"content\" : \"b\" } } ] }\r\r";
        let multiline =
            ": comment\ndata: {\"choices\":\ndata: [{\"delta\":{\"content\":\"c\"}}]}\n\n";
        let items = read_all(
            None,
            &[
                b"\xEF\xBB\xBF",
                nospace.as_bytes(),
                spaced.as_bytes(),
                multiline.as_bytes(),
            ],
        );
        assert_eq!(items, [delta("a"), delta("b"), delta("c")]);
    }

    #[test]
    fn naive_fault_misses_what_it_does_not_expect() {
        let compact = chunk("x");
        let spaced = "data: {\"choices\":[{\"delta\":{\"content\": \"y\"}}]}\n\n";
        let nospace = "data:{\"choices\":[{\"delta\":{\"content\":\"z\"}}]}\n\n";
        let items = read_all(
            Some(Fault::NaiveUpstreamParser),
            &[
                compact.as_bytes(),
                spaced.as_bytes(),
                nospace.as_bytes(),
                b"data: [DONE]\n\n",
            ],
        );
        assert_eq!(items, [delta("x"), Item::Done]);
        assert_eq!(
            read_all(None, &[spaced.as_bytes(), nospace.as_bytes()]),
            [delta("y"), delta("z")]
        );
    }

    #[test]
    fn line_limit_fault_fails_where_the_correct_reader_does_not() {
        let long = chunk(&"a".repeat(70_000));
        assert_eq!(
            read_all(None, &[long.as_bytes()]),
            [delta(&"a".repeat(70_000))]
        );
        let items = read_all(Some(Fault::LineLimit64k), &[long.as_bytes()]);
        assert!(matches!(&items[..], [Item::Error(_)]), "{items:?}");
    }
}
