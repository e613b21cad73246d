//! The client side of the relay: response heads, SSE events, and the translation of upstream
//! [`Item`]s into them.
//!
//! What the client receives, exactly, in each [`ClientFormat`]:
//! - `extended` (the default): `data: {"content":"…"}\n\n` for each content delta (raw UTF-8,
//!   JSON-escaped by serde_json); a delta carrying a finish_reason adds it:
//!   `{"content":"…","finish_reason":"stop"}`, and a finish_reason with no content is
//!   `{"content":"","finish_reason":"stop"}`.
//! - `simplified`: only `data: {"content":"…"}\n\n`, the format most daemons send; it has no
//!   field for the finish_reason, which is dropped.
//! - `openai`: `chat.completion.chunk` objects as a pass-through daemon forwards them: a chunk
//!   with `"delta":{"role":"assistant"}` first, one chunk per content delta, and a final chunk
//!   with an empty delta and the finish_reason.
//!
//! In every format:
//! - `data: [DONE]\n\n` only when the upstream completed: it sent `[DONE]`, or it sent a
//!   finish_reason and then ended its body cleanly. An upstream that ended with neither was cut
//!   short: the client gets an error event instead, and never `[DONE]`.
//! - an error event for any failure once the 200 head is out: `data: {"error":"…"}\n\n`, or in
//!   the `openai` format OpenAI's `data: {"error":{"message":"…","type":"server_error"}}\n\n`;
//!   before the head, an HTTP error status with a JSON body `{"error":"…"}`.

use super::fault::{self, Fault};
use super::reader::Item;

/// The bytes each content piece is cut to by the `cut-4k` fault (a 4096-byte buffer with its NUL).
const FAULT_CUT: usize = 4095;

/// Headers an extra `response_headers` entry may not set: the daemon frames the body by closing
/// the connection, so these would corrupt the framing or the stream's type.
pub(crate) const RESERVED_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
];

/// The `200 OK` head of an event stream, with the handoff's extra headers appended.
pub(crate) fn success_head(fault: Option<Fault>, extra: &[(String, String)]) -> Vec<u8> {
    let content_type = if fault::is(fault, Fault::WrongContentType) {
        // Bug (wrong-content-type): the stream is labelled as plain text.
        "text/plain"
    } else {
        "text/event-stream"
    };
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\
         Connection: close\r\nX-Accel-Buffering: no\r\n"
    );
    push_headers(&mut head, extra);
    head.push_str("\r\n");
    head.into_bytes()
}

/// A complete error response: status line, JSON body `{"error":message}` with its length.
pub(crate) fn error_response(status: u16, message: &str, extra: &[(String, String)]) -> Vec<u8> {
    let body = serde_json::json!({ "error": message }).to_string();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n",
        body.len()
    );
    push_headers(&mut head, extra);
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

fn push_headers(head: &mut String, extra: &[(String, String)]) {
    for (name, value) in extra {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
}

/// The shape of the events the client receives (`ref-daemon --client-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientFormat {
    /// `{"content":"…"}` events; the event that ends the answer adds the upstream's finish_reason
    #[default]
    Extended,
    /// Only `{"content":"…"}` events, as most daemons send; the finish_reason is dropped
    Simplified,
    /// OpenAI chat.completion.chunk events, as a pass-through daemon sends them: a role chunk,
    /// content deltas, a final chunk with the finish_reason
    Openai,
}

impl ClientFormat {
    /// The name `--client-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            ClientFormat::Extended => "extended",
            ClientFormat::Simplified => "simplified",
            ClientFormat::Openai => "openai",
        }
    }
}

/// Appends the error event of `format` carrying `message`.
pub(crate) fn error_event(format: ClientFormat, message: &str, out: &mut Vec<u8>) {
    let error = match format {
        ClientFormat::Openai => serde_json::json!({
            "error": { "message": message, "type": "server_error" }
        }),
        ClientFormat::Extended | ClientFormat::Simplified => {
            serde_json::json!({ "error": message })
        }
    };
    data_event(&error, out);
}

/// Appends `data: <json>\n\n`.
fn data_event(json: &serde_json::Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends `data: [DONE]\n\n`.
pub(crate) fn done_event(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// How a stream ended, as told to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `[DONE]` was sent.
    Complete,
    /// An error event was sent.
    Failed,
}

/// Upstream items → client events, remembering whether the upstream gave a finish_reason.
pub(crate) struct Translator {
    fault: Option<Fault>,
    format: ClientFormat,
    /// The `openai` format's chunk fields: the model asked for, and whether the role chunk is out.
    model: String,
    role_sent: bool,
    finish_reason: Option<String>,
}

impl Translator {
    /// `model` is what the `openai` format's chunks name (the model the upstream was asked for).
    pub(crate) fn new(fault: Option<Fault>, format: ClientFormat, model: &str) -> Self {
        Translator {
            fault,
            format,
            model: model.to_owned(),
            role_sent: false,
            finish_reason: None,
        }
    }

    /// Appends what `item` means to the client; `Some` when it ends the stream.
    pub(crate) fn item(&mut self, item: Item, out: &mut Vec<u8>) -> Option<Outcome> {
        match item {
            Item::Delta {
                content,
                finish_reason,
            } => {
                let mut content = content.unwrap_or_default();
                if fault::is(self.fault, Fault::Cut4k) && content.len() > FAULT_CUT {
                    // Bug (cut-4k): the piece is copied into a fixed 4096-byte buffer.
                    content.truncate(content.floor_char_boundary(FAULT_CUT));
                }
                self.delta(content, finish_reason.as_deref(), out);
                if finish_reason.is_some() {
                    self.finish_reason = finish_reason;
                }
                None
            }
            Item::Done => {
                done_event(out);
                Some(Outcome::Complete)
            }
            Item::Error(message) => {
                error_event(self.format, &message, out);
                Some(Outcome::Failed)
            }
        }
    }

    /// Appends the event(s) of one delta in this translator's format (none for an empty one).
    fn delta(&mut self, content: String, finish_reason: Option<&str>, out: &mut Vec<u8>) {
        if content.is_empty() && finish_reason.is_none() {
            return;
        }
        match self.format {
            ClientFormat::Extended => {
                let mut event = serde_json::Map::new();
                event.insert("content".into(), content.into());
                if let Some(reason) = finish_reason {
                    event.insert("finish_reason".into(), reason.into());
                }
                data_event(&serde_json::Value::Object(event), out);
            }
            ClientFormat::Simplified => {
                if !content.is_empty() {
                    data_event(&serde_json::json!({ "content": content }), out);
                }
            }
            ClientFormat::Openai => {
                if !self.role_sent {
                    self.role_sent = true;
                    let role = serde_json::json!({ "role": "assistant", "content": "" });
                    data_event(&self.chunk(role, None), out);
                }
                let delta = if content.is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::json!({ "content": content })
                };
                data_event(&self.chunk(delta, finish_reason), out);
            }
        }
    }

    /// One `chat.completion.chunk` with a single choice.
    fn chunk(&self, delta: serde_json::Value, finish_reason: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "id": "chatcmpl-ref-daemon",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        })
    }

    /// The upstream body ended cleanly (end of stream, no error): `[DONE]` if the answer was
    /// complete, an error event if it was cut short.
    pub(crate) fn upstream_ended(&mut self, out: &mut Vec<u8>) -> Outcome {
        if self.finish_reason.is_some() {
            done_event(out);
            Outcome::Complete
        } else if fault::is(self.fault, Fault::DoneAfterAbort) {
            // Bug (done-after-abort): [DONE] appended although the upstream never finished.
            done_event(out);
            Outcome::Complete
        } else {
            error_event(
                self.format,
                "upstream ended the stream before the answer was complete (no finish_reason, no DONE marker)",
                out,
            );
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(content: &str, finish: Option<&str>) -> Item {
        Item::Delta {
            content: Some(content.into()),
            finish_reason: finish.map(Into::into),
        }
    }

    fn run(fault: Option<Fault>, items: Vec<Item>, ended: bool) -> String {
        translate(fault, ClientFormat::Extended, "m", items, ended)
    }

    /// What the translator writes for `items` (and the upstream's end, when `ended`).
    fn translate(
        fault: Option<Fault>,
        format: ClientFormat,
        model: &str,
        items: Vec<Item>,
        ended: bool,
    ) -> String {
        let mut t = Translator::new(fault, format, model);
        let mut out = Vec::new();
        for item in items {
            if t.item(item, &mut out).is_some() {
                return String::from_utf8(out).unwrap();
            }
        }
        if ended {
            t.upstream_ended(&mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn content_is_reencoded_as_compact_json_with_raw_utf8() {
        let out = run(
            None,
            vec![delta("Hé \"🎉\"\n\u{2028}", None), Item::Done],
            false,
        );
        assert_eq!(
            out,
            "data: {\"content\":\"Hé \\\"🎉\\\"\\n\u{2028}\"}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn finish_reason_is_forwarded_and_completes_a_stream_without_done() {
        let items = vec![
            delta("a", None),
            Item::Delta {
                content: None,
                finish_reason: Some("length".into()),
            },
        ];
        assert_eq!(
            run(None, items, true),
            "data: {\"content\":\"a\"}\n\ndata: {\"content\":\"\",\"finish_reason\":\"length\"}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn truncated_upstream_gets_an_error_event_not_done() {
        let out = run(None, vec![delta("a", None)], true);
        assert!(
            out.starts_with("data: {\"content\":\"a\"}\n\ndata: {\"error\":\"upstream ended"),
            "{out}"
        );
        assert!(!out.contains("[DONE]"));
        assert_eq!(
            run(Some(Fault::DoneAfterAbort), vec![delta("a", None)], true),
            "data: {\"content\":\"a\"}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn an_upstream_error_item_ends_the_stream_with_an_error_event() {
        let out = run(
            None,
            vec![Item::Error("boom \"x\"".into()), delta("never", None)],
            true,
        );
        assert_eq!(out, "data: {\"error\":\"boom \\\"x\\\"\"}\n\n");
    }

    #[test]
    fn empty_deltas_are_not_relayed() {
        assert_eq!(
            run(None, vec![delta("", None), Item::Done], false),
            "data: [DONE]\n\n"
        );
    }

    #[test]
    fn cut_fault_cuts_long_pieces_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let out = run(Some(Fault::Cut4k), vec![delta(&long, None)], false);
        let json = out.strip_prefix("data: ").unwrap().trim_end();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["content"].as_str().unwrap().len(), 4094);
        assert!(run(None, vec![delta(&long, None)], false).contains(&long));
    }

    fn run_as(format: ClientFormat, items: Vec<Item>, ended: bool) -> String {
        translate(None, format, "mock-model", items, ended)
    }

    fn finished(reason: &str) -> Item {
        Item::Delta {
            content: None,
            finish_reason: Some(reason.into()),
        }
    }

    #[test]
    fn the_simplified_format_drops_the_finish_reason_but_still_completes() {
        let items = vec![delta("a", None), delta("b", Some("length"))];
        assert_eq!(
            run_as(ClientFormat::Simplified, items, true),
            "data: {\"content\":\"a\"}\n\ndata: {\"content\":\"b\"}\n\ndata: [DONE]\n\n"
        );
        let items = vec![delta("a", None), finished("stop"), Item::Done];
        assert_eq!(
            run_as(ClientFormat::Simplified, items, false),
            "data: {\"content\":\"a\"}\n\ndata: [DONE]\n\n"
        );
        let cut = run_as(ClientFormat::Simplified, vec![delta("a", None)], true);
        assert!(cut.ends_with("\"}\n\n") && cut.contains("{\"error\":\"upstream ended"));
        assert!(!cut.contains("[DONE]"), "{cut}");
    }

    #[test]
    fn the_openai_format_sends_a_role_chunk_deltas_and_a_final_chunk() {
        let items = vec![
            delta("a", None),
            delta("é", None),
            finished("length"),
            Item::Done,
        ];
        let out = run_as(ClientFormat::Openai, items, false);
        let events: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(events.len(), 6, "{out}");
        assert_eq!(events[4..], ["data: [DONE]", ""]);
        let chunks: Vec<serde_json::Value> = events[..4]
            .iter()
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "mock-model");
        }
        let choice = |i: usize| &chunks[i]["choices"][0];
        assert_eq!(choice(0)["delta"]["role"], "assistant");
        assert_eq!(choice(1)["delta"]["content"], "a");
        assert_eq!(choice(2)["delta"]["content"], "é");
        assert!(choice(1)["finish_reason"].is_null());
        assert_eq!(choice(3)["delta"], serde_json::json!({}));
        assert_eq!(choice(3)["finish_reason"], "length");
    }

    #[test]
    fn the_openai_format_reports_errors_as_openai_does() {
        let out = run_as(
            ClientFormat::Openai,
            vec![Item::Error("boom".into())],
            false,
        );
        assert_eq!(
            out,
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n"
        );
        let cut = run_as(ClientFormat::Openai, vec![delta("a", None)], true);
        assert!(cut.contains("\"type\":\"server_error\""), "{cut}");
        assert!(!cut.contains("[DONE]"), "{cut}");
    }

    #[test]
    fn heads_carry_the_required_and_extra_headers() {
        let extra = [("X-Trace".to_string(), "abc".to_string())];
        let head = String::from_utf8(success_head(None, &extra)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             Connection: close\r\nX-Accel-Buffering: no\r\nX-Trace: abc\r\n\r\n"
        );
        let head = String::from_utf8(success_head(Some(Fault::WrongContentType), &[])).unwrap();
        assert!(head.contains("Content-Type: text/plain\r\n"));
        let err = String::from_utf8(error_response(413, "too big", &[])).unwrap();
        assert!(
            err.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{err}"
        );
        assert!(err.ends_with("Content-Length: 19\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n{\"error\":\"too big\"}"), "{err}");
    }
}
