//! What each event means: content pieces, errors, `[DONE]`, `finish_reason`. The rules are on
//! [`Interpretation`].

use serde::Serialize;
use serde_json::{Map, Value};

mod json;

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// It carried a content piece.
    Content,
    /// A recognised shape without content: a role-only delta, a final chunk with only
    /// `finish_reason`, a usage chunk, `{"content":null}`.
    Control,
    /// An error event.
    Error,
    /// `[DONE]`.
    Done,
    /// Not JSON, or JSON of no known shape.
    Other,
}

/// Which payload shape an event used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `{"content":"…"}`.
    Simplified,
    /// An OpenAI `chat.completion.chunk` (`choices[0].delta.content`).
    OpenAi,
}

/// One content piece: which event carried it and where it sits in [`Interpretation::content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContentPiece {
    /// Index of the event.
    pub event: usize,
    /// Start of the piece in the content.
    pub start: usize,
    /// End of the piece in the content.
    pub end: usize,
    /// The shape it came in.
    pub shape: Shape,
}

impl ContentPiece {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the piece is empty (`"content":""`).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// An error event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorEvent {
    /// Index of the event.
    pub event: usize,
    /// The message: the `error` string, `error.message` when `error` is an object that has
    /// one, else the `error` value (or the whole data of an `event: error`) as text.
    pub message: String,
    /// The `error` value as sent (`null` for an `event: error` whose data is not JSON).
    pub error: Value,
}

/// A `finish_reason` and the event that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinishReason {
    /// Index of the event.
    pub event: usize,
    /// The reason (`stop`, `length`, …).
    pub reason: String,
}

/// An event that is none of content, control, error or `[DONE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherEvent {
    /// Index of the event (its data is in [`super::Transcript::events`]).
    pub event: usize,
    /// Why it was not understood.
    pub reason: OtherReason,
}

/// Why an event was not understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OtherReason {
    /// The data is not JSON (serde_json's message).
    NotJson {
        /// What serde_json said, with line and column in the data.
        message: String,
    },
    /// JSON, but no known shape: not an object, or an object without `content`, `choices`,
    /// `finish_reason` or `error`.
    UnknownShape,
}

/// Something odd in an otherwise understood event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// A `\u` escape of a UTF-16 surrogate without its partner, read as U+FFFD.
    LoneSurrogate {
        /// Index of the event.
        event: usize,
        /// Offset of the backslash in the event's data.
        offset: usize,
    },
    /// `content` (or `delta.content`) is neither a string nor null.
    ContentNotString {
        /// Index of the event.
        event: usize,
    },
    /// `finish_reason` is neither a string nor null.
    FinishReasonNotString {
        /// Index of the event.
        event: usize,
    },
    /// `choices` is not an array.
    ChoicesNotArray {
        /// Index of the event.
        event: usize,
    },
    /// The data is not valid UTF-8 and its content string could not be decoded from the raw
    /// bytes (duplicate keys), so the piece holds U+FFFD in place of the invalid bytes.
    ContentDecodedLossily {
        /// Index of the event.
        event: usize,
    },
}

/// What a stream's events mean, in order.
///
/// The rules, event by event (the event type does not matter, except that an event of type
/// `error` is always an error event):
///
/// 1. Data exactly `[DONE]` is the end marker. The first one is [`Interpretation::done`];
///    everything after it is reported by [`super::Transcript::events_after_done`].
/// 2. Otherwise the data is parsed as JSON by serde_json (escapes and surrogate pairs decoded).
///    A `\uD800`-style escape with no partner (which serde_json refuses, and a browser's
///    `JSON.parse` turns into a string that displays as U+FFFD) is read as U+FFFD and reported as
///    an [`Anomaly::LoneSurrogate`]. Data that is still not JSON is [`OtherReason::NotJson`].
/// 3. An object with a non-null `error` member is an error event; `event: error` makes any data
///    an error event.
/// 4. Content comes from `choices[0].delta.content` when the object has `choices` (an OpenAI
///    chunk, [`Shape::OpenAi`]), else from `content` ([`Shape::Simplified`]). A string is a content
///    piece (an empty one too); `null` or absent is none; anything else is
///    [`Anomaly::ContentNotString`]. `finish_reason` comes from `choices[0].finish_reason`, else
///    from a top-level `finish_reason`. Every event's piece counts, after `[DONE]` and in an
///    error event too: what the stream carried, whatever a client would make of it.
/// 5. The [`EventKind`]: error if 3 applied, else content if a piece was found, else control for
///    a recognised shape without content (a role-only delta, the final chunk, a usage chunk), else
///    other ([`OtherReason::UnknownShape`]).
///
/// Content bytes are exactly what the JSON strings decode to. When the data is not valid UTF-8
/// (a daemon that cut a character in two), the strings are decoded from the raw bytes, so the
/// pieces keep the bytes as sent and their concatenation can still form the character: compare
/// [`super::Transcript::content_bytes`] with [`super::Transcript::browser_content`], and check
/// [`super::Transcript::is_valid_utf8`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Interpretation {
    /// Every content piece, concatenated. In JSON, a string when valid UTF-8, else
    /// `{"hex": …, "text": …}`.
    #[serde(serialize_with = "super::ser::bytes")]
    pub content: Vec<u8>,
    /// The pieces, in order (empty ones included).
    pub pieces: Vec<ContentPiece>,
    /// Index of the first `[DONE]` event.
    pub done: Option<usize>,
    /// How many `[DONE]` events came (more than one is a defect).
    pub done_count: usize,
    /// Error events.
    pub errors: Vec<ErrorEvent>,
    /// Every `finish_reason`, in order.
    pub finish_reasons: Vec<FinishReason>,
    /// Events not understood.
    pub other: Vec<OtherEvent>,
    /// Oddities in understood events.
    pub anomalies: Vec<Anomaly>,
    /// Events in the simplified shape.
    pub simplified_events: usize,
    /// Events in the OpenAI shape.
    pub openai_events: usize,
}

/// Interprets events one at a time (the upstream side of a relay-latency join uses it too).
#[derive(Debug, Clone, Default)]
pub struct Interpreter {
    out: Interpretation,
}

impl Interpreter {
    /// An interpreter with nothing seen yet.
    pub fn new() -> Interpreter {
        Interpreter::default()
    }

    /// Interprets event number `event` of type `event_type` with `data`, returning its kind.
    pub fn push(&mut self, event: usize, event_type: &str, data: &[u8]) -> EventKind {
        let out = &mut self.out;
        if data == b"[DONE]" {
            out.done.get_or_insert(event);
            out.done_count += 1;
            return EventKind::Done;
        }
        let is_error_type = event_type == "error";
        let parsed = match json::parse(data) {
            Ok(parsed) => parsed,
            Err(_) if is_error_type => {
                out.errors.push(ErrorEvent {
                    event,
                    message: String::from_utf8_lossy(data).into_owned(),
                    error: Value::Null,
                });
                return EventKind::Error;
            }
            Err(message) => {
                out.other.push(OtherEvent {
                    event,
                    reason: OtherReason::NotJson { message },
                });
                return EventKind::Other;
            }
        };
        for offset in &parsed.lone_surrogates {
            out.anomalies.push(Anomaly::LoneSurrogate {
                event,
                offset: *offset,
            });
        }
        let Value::Object(map) = &parsed.value else {
            if is_error_type {
                out.errors.push(ErrorEvent {
                    event,
                    message: parsed.value.to_string(),
                    error: parsed.value,
                });
                return EventKind::Error;
            }
            out.other.push(OtherEvent {
                event,
                reason: OtherReason::UnknownShape,
            });
            return EventKind::Other;
        };

        let mut error = false;
        match map.get("error") {
            Some(value) if !value.is_null() => {
                out.errors.push(ErrorEvent {
                    event,
                    message: error_message(value),
                    error: value.clone(),
                });
                error = true;
            }
            _ if is_error_type => {
                out.errors.push(ErrorEvent {
                    event,
                    message: parsed.value.to_string(),
                    error: parsed.value.clone(),
                });
                error = true;
            }
            _ => {}
        }

        let found = self.content_of(event, map, data, &parsed.patched);
        let out = &mut self.out;
        match found.finish {
            Some(Value::String(reason)) => out.finish_reasons.push(FinishReason {
                event,
                reason: reason.clone(),
            }),
            None | Some(Value::Null) => {}
            Some(_) => out.anomalies.push(Anomaly::FinishReasonNotString { event }),
        }
        if error {
            EventKind::Error
        } else if found.piece {
            EventKind::Content
        } else if found.shape.is_some() || found.finish.is_some() {
            EventKind::Control
        } else {
            out.other.push(OtherEvent {
                event,
                reason: OtherReason::UnknownShape,
            });
            EventKind::Other
        }
    }

    /// Finds the content piece and `finish_reason` of an object, recording the piece.
    fn content_of<'v>(
        &mut self,
        event: usize,
        map: &'v Map<String, Value>,
        data: &[u8],
        patched: &Option<Vec<u8>>,
    ) -> Found<'v> {
        let out = &mut self.out;
        let mut found = Found {
            shape: None,
            piece: false,
            finish: map.get("finish_reason"),
        };
        let content = if let Some(choices) = map.get("choices") {
            match choices {
                Value::Array(choices) => {
                    found.shape = Some(Shape::OpenAi);
                    out.openai_events += 1;
                    let first = choices.first();
                    if let Some(reason) = first.and_then(|c| c.get("finish_reason")) {
                        found.finish = Some(reason);
                    }
                    first
                        .and_then(|c| c.get("delta"))
                        .and_then(|d| d.get("content"))
                }
                _ => {
                    out.anomalies.push(Anomaly::ChoicesNotArray { event });
                    None
                }
            }
        } else if let Some(content) = map.get("content") {
            found.shape = Some(Shape::Simplified);
            out.simplified_events += 1;
            Some(content)
        } else {
            None
        };
        match (content, found.shape) {
            (Some(Value::String(text)), Some(shape)) => {
                found.piece = true;
                let start = out.content.len();
                if std::str::from_utf8(data).is_ok() {
                    out.content.extend_from_slice(text.as_bytes());
                } else {
                    // The parsed string holds U+FFFD for the invalid bytes: decode the raw ones.
                    let raw = patched.as_deref().unwrap_or(data);
                    match json::raw_content(raw, shape) {
                        Some(bytes) => out.content.extend_from_slice(&bytes),
                        None => {
                            out.content.extend_from_slice(text.as_bytes());
                            out.anomalies.push(Anomaly::ContentDecodedLossily { event });
                        }
                    }
                }
                out.pieces.push(ContentPiece {
                    event,
                    start,
                    end: out.content.len(),
                    shape,
                });
            }
            (None | Some(Value::Null), _) => {}
            (Some(_), _) => out.anomalies.push(Anomaly::ContentNotString { event }),
        }
        found
    }

    /// What has been interpreted so far.
    pub fn interpretation(&self) -> &Interpretation {
        &self.out
    }

    /// The interpretation of every event pushed.
    pub fn finish(self) -> Interpretation {
        self.out
    }
}

/// What [`Interpreter::content_of`] found.
struct Found<'v> {
    shape: Option<Shape>,
    piece: bool,
    finish: Option<&'v Value>,
}

/// The message of an `error` value: the string itself, `message` of an object, else the JSON.
fn error_message(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}
