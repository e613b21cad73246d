//! The client side of the relay: response heads, SSE events, and the translation of upstream
//! [`Item`]s into them.
//!
//! What the client receives, exactly:
//! - `data: {"content":"…"}\n\n` for each content delta (raw UTF-8, JSON-escaped by serde_json);
//!   a delta carrying a finish_reason adds it: `{"content":"…","finish_reason":"stop"}`, and a
//!   finish_reason with no content is `{"content":"","finish_reason":"stop"}`.
//! - `data: [DONE]\n\n` only when the upstream completed: it sent `[DONE]`, or it sent a
//!   finish_reason and then ended its body cleanly. An upstream that ended with neither was cut
//!   short: the client gets `data: {"error":"…"}\n\n` instead, and never `[DONE]`.
//! - `data: {"error":"…"}\n\n` for any failure once the 200 head is out; before that, an HTTP
//!   error status with a JSON body `{"error":"…"}`.

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

/// Appends `data: {"error":message}\n\n`.
pub(crate) fn error_event(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(
        serde_json::json!({ "error": message })
            .to_string()
            .as_bytes(),
    );
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
    finish_reason: Option<String>,
}

impl Translator {
    pub(crate) fn new(fault: Option<Fault>) -> Self {
        Translator {
            fault,
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
                if content.is_empty() && finish_reason.is_none() {
                    return None;
                }
                let mut event = serde_json::Map::new();
                event.insert("content".into(), content.into());
                if let Some(reason) = &finish_reason {
                    event.insert("finish_reason".into(), reason.clone().into());
                    self.finish_reason = finish_reason;
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(serde_json::Value::Object(event).to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
                None
            }
            Item::Done => {
                done_event(out);
                Some(Outcome::Complete)
            }
            Item::Error(message) => {
                error_event(&message, out);
                Some(Outcome::Failed)
            }
        }
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
        let mut t = Translator::new(fault);
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
