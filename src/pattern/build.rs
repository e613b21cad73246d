//! Turning a pattern file plus its parameter into bytes (the upstream plan) and into the outcome a
//! correct daemon produces. Both come from the same piece list, so they cannot drift apart.

use std::time::Duration;

use bytes::Bytes;

use super::def::{
    CloseDef, ContentDef, CountDef, DelayDef, ErrorDef, FirstDelayDef, FramingDef, JsonStyle,
    LineEnd, NamedCount, ReasonDef, StreamDef, WordList, Words, WritesDef,
};
use super::{CHUNK_ID, CHUNK_MODEL};
use super::{Ending, Expected, ExpectedKind, MockSettings, ParamValue, UpstreamPlan, Write};

/// One content piece: as written inside the JSON string on the wire, and as decoded.
pub(super) struct Piece {
    pub wire: String,
    pub text: String,
}

impl Piece {
    fn plain(text: String) -> Piece {
        Piece {
            wire: json_string_body(&text),
            text,
        }
    }
}

/// `s` JSON-encoded without the surrounding quotes (serde_json: `\"`, `\\`, the short escapes
/// for \b \f \n \r \t, `\u00XX` for other controls, everything else raw UTF-8).
pub(super) fn json_string_body(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

pub(super) fn param_int(param: Option<&ParamValue>) -> u64 {
    match param {
        Some(ParamValue::Int(v)) => *v,
        _ => 0,
    }
}

fn param_usize(param: Option<&ParamValue>) -> usize {
    usize::try_from(param_int(param)).unwrap_or(usize::MAX)
}

pub(super) fn pieces(
    s: &StreamDef,
    words: &Words,
    param: Option<&ParamValue>,
    settings: &MockSettings,
    nonce: Option<&str>,
) -> Vec<Piece> {
    let mut out: Vec<Piece> = match &s.content {
        ContentDef::Words(w) => {
            let list = match w.words {
                WordList::Benchmark => &words.benchmark,
                WordList::Validation => &words.validation,
            };
            let count = match w.count {
                CountDef::Fixed(n) => n,
                CountDef::Named(NamedCount::ChunkCount) => settings.chunk_count,
                CountDef::Named(NamedCount::Param) => param_usize(param),
            };
            list.iter()
                .cycle()
                .take(count)
                .map(|w| Piece::plain(w.clone()))
                .collect()
        }
        ContentDef::Pieces(p) => p.pieces.iter().map(|t| Piece::plain(t.clone())).collect(),
        ContentDef::JsonPieces(j) => j
            .json_pieces
            .iter()
            .map(|wire| Piece {
                // Checked when the catalog loads (def::check).
                text: serde_json::from_str(&format!("\"{wire}\"")).unwrap_or_default(),
                wire: wire.clone(),
            })
            .collect(),
        ContentDef::Fill(f) => f
            .fill
            .iter()
            .map(|p| {
                let mut text = p.text.repeat(p.len / p.text.len() + 1);
                text.truncate(p.len); // ASCII (checked at load), so any cut is a char boundary
                Piece::plain(text)
            })
            .collect(),
    };
    if let (Some(np), Some(nonce)) = (&s.nonce_piece, nonce) {
        let at = np.at.min(out.len());
        out.insert(at, Piece::plain(np.text.replace("{nonce}", nonce)));
    }
    out
}

pub(super) fn finish_reason(s: &StreamDef, param: Option<&ParamValue>) -> Option<String> {
    if !s.final_chunk {
        return None;
    }
    Some(match (s.finish_reason, param) {
        (ReasonDef::Param, Some(ParamValue::Text(r))) => r.clone(),
        _ => "stop".to_owned(),
    })
}

/// The three segments of an OpenAI chunk object; `multiline` puts each on its own `data:` line.
fn chunk_segments(style: JsonStyle, delta: &str, finish: &str) -> [String; 3] {
    let (c, s) = match style {
        JsonStyle::Compact => (":", ","),
        JsonStyle::Spaced => (": ", ", "),
    };
    [
        format!(r#"{{"id"{c}"{CHUNK_ID}"{s}"object"{c}"chat.completion.chunk"{s}"created"{c}0,"#),
        format!(r#"{sp}"model"{c}"{CHUNK_MODEL}","#, sp = &s[1..]),
        format!(
            r#"{sp}"choices"{c}[{{"index"{c}0{s}"delta"{c}{delta}{s}"finish_reason"{c}{finish}}}]}}"#,
            sp = &s[1..]
        ),
    ]
}

fn content_delta(style: JsonStyle, wire: &str) -> String {
    match style {
        JsonStyle::Compact => format!(r#"{{"content":"{wire}"}}"#),
        JsonStyle::Spaced => format!(r#"{{"content": "{wire}"}}"#),
    }
}

/// The data lines of one content chunk (`content` already JSON-escaped).
pub(super) fn content_chunk(style: JsonStyle, wire: &str) -> [String; 3] {
    chunk_segments(style, &content_delta(style, wire), "null")
}

/// The data lines of the final chunk: empty delta, `finish_reason` set.
pub(super) fn final_chunk(style: JsonStyle, reason: &str) -> [String; 3] {
    chunk_segments(style, "{}", &format!("\"{}\"", json_string_body(reason)))
}

fn line_end(l: LineEnd) -> &'static str {
    match l {
        LineEnd::Lf => "\n",
        LineEnd::Crlf => "\r\n",
        LineEnd::Cr => "\r",
    }
}

/// One SSE event: each line as a `data` field, then the blank line that dispatches it.
fn event(framing: &FramingDef, lines: &[&str]) -> Vec<u8> {
    let eol = line_end(framing.line_end);
    let field = if framing.space_after_colon {
        "data: "
    } else {
        "data:"
    };
    let mut out = String::new();
    for line in lines {
        out.push_str(field);
        out.push_str(line);
        out.push_str(eol);
    }
    out.push_str(eol);
    out.into_bytes()
}

fn json_event(framing: &FramingDef, segments: &[String; 3]) -> Vec<u8> {
    if framing.multiline {
        event(framing, &[&segments[0], &segments[1], &segments[2]])
    } else {
        event(framing, &[&segments.concat()])
    }
}

pub(super) fn stream_plan(
    s: &StreamDef,
    pieces: &[Piece],
    param: Option<&ParamValue>,
    settings: &MockSettings,
) -> UpstreamPlan {
    let style = s.framing.json;
    let mut events: Vec<Vec<u8>> = pieces
        .iter()
        .map(|p| json_event(&s.framing, &content_chunk(style, &p.wire)))
        .collect();
    if let Some(reason) = finish_reason(s, param) {
        events.push(json_event(&s.framing, &final_chunk(style, &reason)));
    }
    if s.done {
        events.push(event(&s.framing, &["[DONE]"]));
    }

    let between = match s.delay {
        DelayDef::ChunkDelay => settings.chunk_delay,
        DelayDef::Param => Duration::from_millis(param_int(param)),
    };
    let first = match s.first_delay {
        FirstDelayDef::None => Duration::ZERO,
        FirstDelayDef::Param => Duration::from_millis(param_int(param)),
    };
    let eol = line_end(s.framing.line_end);
    let mut writes = Vec::with_capacity(events.len() * 2);
    for (i, ev) in events.into_iter().enumerate() {
        let delay = if i == 0 { first } else { between };
        match &s.framing.comment {
            Some(comment) => {
                writes.push(Write::new(
                    format!("{comment}{eol}{eol}").into_bytes(),
                    delay,
                ));
                writes.push(Write::new(ev, Duration::ZERO));
            }
            None => writes.push(Write::new(ev, delay)),
        }
    }
    if s.framing.bom
        && let Some(w) = writes.first_mut()
    {
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(&w.bytes);
        w.bytes = Bytes::from(with_bom);
    }
    let writes = match s.writes {
        WritesDef::PerEvent => writes,
        WritesDef::Coalesced => match writes.first() {
            Some(first) => {
                let delay = first.delay_before;
                let all: Vec<u8> = writes
                    .iter()
                    .flat_map(|w| w.bytes.iter().copied())
                    .collect();
                vec![Write::new(all, delay)]
            }
            None => writes,
        },
        WritesDef::Split => split_writes(writes, param_usize(param).max(1)),
    };
    let ending = match s.close {
        CloseDef::Clean => Ending::Close,
        CloseDef::Reset => Ending::Reset,
    };
    UpstreamPlan::sse(writes, ending)
}

/// Cuts every write into `n`-byte pieces; the first piece keeps the write's delay.
fn split_writes(writes: Vec<Write>, n: usize) -> Vec<Write> {
    let mut out = Vec::new();
    for w in writes {
        let mut delay = w.delay_before;
        let mut at = 0;
        while at < w.bytes.len() {
            let end = (at + n).min(w.bytes.len());
            out.push(Write {
                bytes: w.bytes.slice(at..end),
                delay_before: delay,
            });
            delay = Duration::ZERO;
            at = end;
        }
    }
    out
}

pub(super) fn stream_expected(
    s: &StreamDef,
    kind: super::def::ExpectedKindDef,
    pieces: Vec<Piece>,
    param: Option<&ParamValue>,
) -> Expected {
    use super::def::ExpectedKindDef as K;
    let kind = match kind {
        K::Complete => ExpectedKind::Complete,
        K::Truncated => ExpectedKind::Truncated,
        K::Reset => ExpectedKind::Reset,
        K::Stall => ExpectedKind::Stall {
            silence: Duration::from_millis(param_int(param)),
        },
        // def::check only allows upstream_error on error responses.
        K::UpstreamError => ExpectedKind::Truncated,
    };
    let pieces: Vec<String> = pieces.into_iter().map(|p| p.text).collect();
    Expected {
        kind,
        content: pieces.concat(),
        pieces,
        done: s.done,
        finish_reason: finish_reason(s, param),
    }
}

/// The OpenAI-style error body for `error:STATUS`.
pub(super) fn error_message(e: &ErrorDef, status: u16) -> String {
    e.message.replace("{status}", &status.to_string())
}

pub(super) fn error_plan(e: &ErrorDef, status: u16) -> UpstreamPlan {
    let error_type = e.types.get(&status.to_string()).unwrap_or(&e.default_type);
    let body = serde_json::json!({
        "error": {
            "message": error_message(e, status),
            "type": error_type,
            "param": null,
            "code": null,
        }
    })
    .to_string();
    UpstreamPlan {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), body.len().to_string()),
        ],
        writes: vec![Write::new(body.into_bytes(), Duration::ZERO)],
        ending: Ending::Close,
    }
}
