//! A [`Case`] made concrete: the upstream body, its writes, the mock script, and the outcome a
//! correct daemon produces.
//!
//! The body is laid out as: an optional BOM, one event per complete content chunk, the cancel
//! tail (client-abort cases only), then what the ending adds (a final chunk and/or
//! `data: [DONE]`, or the first bytes of an event that never completes). An error status
//! replaces the events with an OpenAI error object. Each cut is placed inside the part it
//! belongs to (an atom's encoded bytes, its chunk's event, the ending's bytes); the tail is its
//! own run of writes.

use std::ops::Range;
use std::time::Duration;

use crate::pattern::{self, Ending as MockEnding, UpstreamPlan, Write};

use super::case::{Atom, Case, Chunk, Cut, CutAt, Ending, Escape, Framing, Split};

/// Content events the cancel tail holds.
pub const TAIL_EVENTS: usize = 40;
/// Time between two tail events.
pub const TAIL_GAP: Duration = Duration::from_millis(50);
/// The content of every tail event.
pub const TAIL_TEXT: &str = ".";

/// How the upstream ended, as far as a correct daemon's answer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamEnd {
    /// A complete answer (finish_reason or `[DONE]`): the daemon must end with `[DONE]`.
    Completed,
    /// Cut short with a clean end: no `[DONE]`.
    Truncated,
    /// Reset mid-answer: report an error, never `[DONE]`.
    Reset,
    /// An HTTP error status: report an error, never `[DONE]`, no content.
    Status(u16),
    /// Silent without closing after the chunks: never `[DONE]`.
    Stalled,
}

/// What a correct daemon relays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The whole content the upstream delivers, byte for byte (tail included).
    pub content: Vec<u8>,
    /// How the upstream ended.
    pub end: UpstreamEnd,
}

/// The concrete form of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// What the mock plays.
    pub plan: UpstreamPlan,
    /// Index in `plan.writes` of the first cancel-tail write, when there is a tail.
    pub tail_start: Option<usize>,
    /// What a correct daemon relays.
    pub expected: Expected,
}

impl Built {
    /// Writes of the generated stream, the cancel tail excepted.
    pub fn generated_writes(&self) -> usize {
        self.plan.writes.len() - self.tail_len()
    }

    /// Writes in the cancel tail.
    pub fn tail_len(&self) -> usize {
        if self.tail_start.is_some() {
            TAIL_EVENTS
        } else {
            0
        }
    }
}

/// Writes `text` into a JSON string body (without quotes) in the style `escape`.
pub fn json_string(text: &str, escape: Escape, out: &mut String) {
    use std::fmt::Write as _;
    for c in text.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let forbidden = matches!(c, '"' | '\\' | '\0'..='\u{1f}');
        match (escape, short) {
            (Escape::Unicode | Escape::UnicodeUpper, _) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = if escape == Escape::Unicode {
                        write!(out, "\\u{unit:04x}")
                    } else {
                        write!(out, "\\u{unit:04X}")
                    };
                }
            }
            (Escape::Short, Some(s)) => out.push_str(s),
            (_, Some(s)) if forbidden => out.push_str(s),
            _ if forbidden => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
}

/// `data:[ ]`.
fn field(framing: Framing) -> &'static [u8] {
    if framing.space { b"data: " } else { b"data:" }
}

/// `data:[ ]PAYLOAD<eol><eol>`.
fn event(framing: Framing, payload: &str) -> Vec<u8> {
    let eol = framing.eol.bytes();
    [field(framing), payload.as_bytes(), eol, eol].concat()
}

/// The comment line a `comments` framing puts before each content event.
const KEEP_ALIVE: &[u8] = b": keep-alive";

/// A chunk's event, with where each atom's encoded bytes sit in it.
struct ChunkEvent {
    bytes: Vec<u8>,
    atoms: Vec<Range<usize>>,
}

/// One OpenAI chunk carrying `atoms`, field for field as the mock's own chunks
/// ([`pattern::chunk_json`]), as an event.
fn chunk_event(framing: Framing, atoms: &[Atom]) -> ChunkEvent {
    let eol = framing.eol.bytes();
    let fields = format!(
        "{{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"{}\",",
        pattern::CHUNK_ID,
        pattern::CHUNK_MODEL
    );
    let mut bytes = Vec::new();
    if framing.comments {
        bytes.extend_from_slice(KEEP_ALIVE);
        bytes.extend_from_slice(eol);
    }
    bytes.extend_from_slice(field(framing));
    bytes.extend_from_slice(fields.as_bytes());
    if framing.multiline {
        // The parser joins the two lines with LF: whitespace between JSON fields.
        bytes.extend_from_slice(eol);
        bytes.extend_from_slice(field(framing));
    }
    bytes.extend_from_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    let mut ranges = Vec::with_capacity(atoms.len());
    for atom in atoms {
        let mut encoded = String::new();
        json_string(&atom.text, atom.escape, &mut encoded);
        let start = bytes.len();
        bytes.extend_from_slice(encoded.as_bytes());
        ranges.push(start..bytes.len());
    }
    bytes.extend_from_slice(b"\"},\"finish_reason\":null}]}");
    bytes.extend_from_slice(eol);
    bytes.extend_from_slice(eol);
    ChunkEvent {
        bytes,
        atoms: ranges,
    }
}

/// The first `len` bytes of `event`, `len` chosen by `sel` so that the cut falls inside the
/// JSON (before its closing brace) and the event can never complete.
fn partial_len(event: &[u8], sel: u16) -> usize {
    let close = event.iter().rposition(|&b| b == b'}').unwrap_or(1).max(1);
    1 + usize::from(sel) % close
}

/// An upstream error object for `status`.
fn error_body(status: u16) -> Vec<u8> {
    let kind = match status {
        401 => "authentication_error",
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    format!(
        "{{\"error\":{{\"message\":\"streamcheck prop: upstream status {status}\",\"type\":\
         \"{kind}\",\"param\":null,\"code\":null}}}}"
    )
    .into_bytes()
}

/// Offsets inside encoded JSON text that fall inside a multi-byte character or an escape.
pub fn inner_offsets(encoded: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'\\' {
            let len = if encoded.get(i + 1) == Some(&b'u') {
                6
            } else {
                2
            };
            out.extend((i + 1)..(i + len).min(encoded.len()));
            i += len;
            continue;
        }
        if i > 0 && (0x80..0xC0).contains(&encoded[i]) {
            out.push(i);
        }
        i += 1;
    }
    out
}

/// Offsets inside each line's `data:` (after `d` to after the colon's space, if any).
fn field_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut line_start = true;
    for (i, &b) in bytes.iter().enumerate() {
        if line_start && bytes[i..].starts_with(b"data:") {
            let len = if bytes[i..].starts_with(b"data: ") {
                6
            } else {
                5
            };
            out.extend(i + 1..=i + len);
        }
        line_start = b == b'\r' || b == b'\n';
    }
    out
}

/// Offsets next to a CR or LF (up to and including the end of `bytes`).
fn line_end_offsets(bytes: &[u8]) -> Vec<usize> {
    let eol = |b: u8| b == b'\r' || b == b'\n';
    (1..=bytes.len())
        .filter(|&o| eol(bytes[o - 1]) || bytes.get(o).is_some_and(|&b| eol(b)))
        .collect()
}

/// Where `cut` falls in `bytes`, if anywhere.
fn place(cut: Cut, bytes: &[u8]) -> Option<usize> {
    let pick = |candidates: Vec<usize>, sel: usize| {
        (!candidates.is_empty()).then(|| candidates[sel % candidates.len()])
    };
    match cut.at {
        CutAt::Field(sel) => pick(field_offsets(bytes), usize::from(sel)),
        CutAt::LineEnd(sel) => pick(line_end_offsets(bytes), usize::from(sel)),
        CutAt::Any(sel) => (!bytes.is_empty()).then(|| usize::from(sel) % bytes.len()),
    }
}

/// Where the split of the atom encoded at `range` of `event` falls.
fn place_split(split: Split, range: &Range<usize>, event: &[u8]) -> usize {
    let inner = inner_offsets(&event[range.clone()]);
    if inner.is_empty() {
        range.start
    } else {
        range.start + inner[usize::from(split.sel) % inner.len()]
    }
}

/// Bytes of the body and the write boundaries in them, `(offset, delay before the write)`.
#[derive(Default)]
struct Layout {
    body: Vec<u8>,
    cuts: Vec<(usize, u8)>,
}

impl Layout {
    /// Appends `bytes` with boundaries at `offsets` (relative to `bytes`).
    fn push(&mut self, bytes: &[u8], offsets: impl IntoIterator<Item = (usize, u8)>) {
        let base = self.body.len();
        self.cuts
            .extend(offsets.into_iter().map(|(o, d)| (base + o, d)));
        self.body.extend_from_slice(bytes);
    }

    /// The chunk's event, or its first `len` bytes, with its atoms' splits and its cuts.
    fn push_chunk(&mut self, framing: Framing, chunk: &Chunk, len: Option<usize>) -> Vec<u8> {
        let ev = chunk_event(framing, &chunk.atoms);
        let len = len.unwrap_or(ev.bytes.len()).min(ev.bytes.len());
        let splits = chunk
            .atoms
            .iter()
            .zip(&ev.atoms)
            .filter_map(|(atom, range)| {
                atom.split
                    .map(|s| (place_split(s, range, &ev.bytes), s.delay_ms))
            });
        let cuts = chunk
            .cuts
            .iter()
            .filter_map(|&c| place(c, &ev.bytes).map(|o| (o, c.delay_ms)));
        let offsets: Vec<(usize, u8)> = splits.chain(cuts).filter(|&(o, _)| o < len).collect();
        self.push(&ev.bytes[..len], offsets);
        ev.bytes
    }

    /// The body cut into writes (and `forced` cut too), each after its delay.
    fn writes(mut self, forced: Option<usize>) -> Vec<Write> {
        let len = self.body.len();
        self.cuts.extend(forced.map(|at| (at, 0)));
        self.cuts.retain(|&(o, _)| o > 0 && o < len);
        // Sorted by offset, the longest delay first, so dedup keeps it.
        self.cuts
            .sort_unstable_by_key(|&(o, d)| (o, std::cmp::Reverse(d)));
        self.cuts.dedup_by_key(|&mut (o, _)| o);
        if len == 0 {
            return Vec::new();
        }
        let mut from = (0, 0u8);
        let mut writes = Vec::with_capacity(self.cuts.len() + 1);
        for (to, delay) in self.cuts.into_iter().chain([(len, 0)]) {
            let ms = u64::from(from.1);
            writes.push(Write::new(
                self.body[from.0..to].to_vec(),
                Duration::from_millis(ms),
            ));
            from = (to, delay);
        }
        writes
    }
}

impl Case {
    /// The mock script and the expected outcome.
    pub fn build(&self) -> Built {
        let framing = self.framing;
        let partial = match self.ending {
            Ending::Truncate { partial } | Ending::Reset { partial } if !self.chunks.is_empty() => {
                partial
            }
            _ => None,
        };
        let complete = self.chunks.len() - usize::from(partial.is_some());
        let mut layout = Layout::default();
        let status_ending = matches!(self.ending, Ending::Status { .. });
        if framing.bom && !status_ending {
            layout.push("\u{FEFF}".as_bytes(), []);
        }
        let mut content = Vec::new();
        if !status_ending {
            for chunk in &self.chunks[..complete] {
                layout.push_chunk(framing, chunk, None);
                for atom in &chunk.atoms {
                    content.extend_from_slice(atom.text.as_bytes());
                }
            }
        }
        let tail_at = (self.client.aborts() && !status_ending).then_some(layout.body.len());
        if tail_at.is_some() {
            content.extend(TAIL_TEXT.repeat(TAIL_EVENTS).bytes());
        }
        let ending_cuts = |bytes: &[u8]| -> Vec<(usize, u8)> {
            self.ending_cuts
                .iter()
                .filter_map(|&c| place(c, bytes).map(|o| (o, c.delay_ms)))
                .collect()
        };
        let (end, status, mock_ending) = match &self.ending {
            Ending::Done { finish } => {
                let mut bytes = Vec::new();
                if let Some(reason) = finish {
                    bytes.extend(event(framing, &pattern::final_chunk_json(reason)));
                }
                bytes.extend(event(framing, "[DONE]"));
                layout.push(&bytes, ending_cuts(&bytes));
                (UpstreamEnd::Completed, 200, MockEnding::Close)
            }
            Ending::Finish { reason } => {
                let bytes = event(framing, &pattern::final_chunk_json(reason));
                layout.push(&bytes, ending_cuts(&bytes));
                (UpstreamEnd::Completed, 200, MockEnding::Close)
            }
            Ending::Truncate { .. } | Ending::Reset { .. } => {
                if let Some(sel) = partial {
                    let last = &self.chunks[complete];
                    let full = chunk_event(framing, &last.atoms).bytes;
                    let len = partial_len(&full, sel);
                    let start = layout.body.len();
                    layout.push_chunk(framing, last, Some(len));
                    let extra = ending_cuts(&full[..len]);
                    layout
                        .cuts
                        .extend(extra.into_iter().map(|(o, d)| (start + o, d)));
                }
                match self.ending {
                    Ending::Reset { .. } => (UpstreamEnd::Reset, 200, MockEnding::Reset),
                    _ => (UpstreamEnd::Truncated, 200, MockEnding::Close),
                }
            }
            Ending::Stall => (UpstreamEnd::Stalled, 200, MockEnding::Stall),
            Ending::Status { status } => {
                let status = if (400..=599).contains(status) {
                    *status
                } else {
                    500
                };
                let bytes = error_body(status);
                layout.push(&bytes, ending_cuts(&bytes));
                (UpstreamEnd::Status(status), status, MockEnding::Close)
            }
        };
        let mut writes = layout.writes(tail_at);
        let tail_start = tail_at.map(|at| {
            let mut offset = 0;
            let index = writes
                .iter()
                .take_while(|w| {
                    offset += w.bytes.len();
                    offset <= at
                })
                .count();
            let tail = (0..TAIL_EVENTS).map(|_| Write::new(event(framing, &tail_json()), TAIL_GAP));
            writes.splice(index..index, tail);
            index
        });
        let mut plan = UpstreamPlan::sse(writes, mock_ending);
        if status != 200 {
            plan.status = status;
            plan.headers = vec![("content-type".into(), "application/json".into())];
        }
        Built {
            plan,
            tail_start,
            expected: Expected { content, end },
        }
    }
}

/// The JSON of a tail chunk.
fn tail_json() -> String {
    pattern::chunk_json(TAIL_TEXT)
}
