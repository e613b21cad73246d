//! The generated value: one upstream stream and one client, as plain data.
//!
//! A [`Case`] says *what* to test in the terms a failure is read in (content pieces and how
//! their characters are escaped, where writes are cut, how the upstream ends, what the client
//! does); [`Case::build`](super::build) turns it into the mock's script and the
//! outcome a correct daemon produces. Cases are serialised as JSON for the regression file and
//! for `--replay`; every field has a default meaning for any value, so a hand-edited case
//! never fails to build.

use serde::{Deserialize, Serialize};

/// One property case: an upstream stream and a client behaviour.
///
/// Writes are made by cuts that belong to what they cut (an atom, an event's framing, the
/// ending), so shrinking one part of a case leaves the cuts in the others where they were.
/// Serialised (regression files, `--replay`) as one JSON object, e.g.
/// `{"chunks":[{"atoms":[{"text":"é","escape":"raw","split":{"sel":0,"delay_ms":5}}],
/// "cuts":[]}],"framing":{"bom":false,"space":true,"eol":"lf"},"ending":{"done":{"finish":
/// "stop"}},"ending_cuts":[],"client":"read"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The content chunks, in order: one upstream event each.
    pub chunks: Vec<Chunk>,
    /// How events are framed on the upstream wire.
    pub framing: Framing,
    /// How the upstream ends.
    pub ending: Ending,
    /// Cuts inside what the ending sends (final chunk, `[DONE]`, a partial event, an error
    /// body).
    pub ending_cuts: Vec<Cut>,
    /// What the client does while reading.
    pub client: Client,
}

/// One content chunk: an event carrying the concatenated text of its atoms in
/// `choices[0].delta.content`, and cuts in its framing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// The content, in pieces that are escaped (and may be cut) each their own way.
    pub atoms: Vec<Atom>,
    /// Cuts in the event's framing (or anywhere in it).
    pub cuts: Vec<Cut>,
}

/// A piece of content text, how its characters are written in the JSON string, and whether a
/// write boundary falls inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Atom {
    /// The text (what the daemon must relay).
    pub text: String,
    /// How it is escaped on the upstream wire.
    pub escape: Escape,
    /// A write boundary inside the atom's encoded bytes: inside a multi-byte character or an
    /// escape when it has one (`sel` selects which), else just before the atom.
    pub split: Option<Split>,
}

/// A write boundary inside an atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Selects the offset (modulo the number of candidates).
    pub sel: u8,
    /// Milliseconds before the write that starts here.
    pub delay_ms: u8,
}

/// How an atom's characters appear inside the upstream's JSON string. Characters JSON forbids
/// raw (`"`, `\`, U+0000 to U+001F) are always escaped; the style decides the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// Raw UTF-8; forbidden characters as their short escape, else `\u00XX`.
    Raw,
    /// Short escapes wherever one exists (`\" \\ \/ \b \f \n \r \t`), the rest as `Raw`.
    Short,
    /// Every character as `\uxxxx` (lower-case hex), astral ones as a surrogate pair.
    Unicode,
    /// Every character as `\uXXXX` (upper-case hex), astral ones as a surrogate pair.
    UnicodeUpper,
}

/// How the upstream frames its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framing {
    /// The body starts with a byte order mark (which an SSE parser strips).
    pub bom: bool,
    /// `data: ` rather than `data:`.
    pub space: bool,
    /// The line terminator.
    pub eol: Eol,
    /// A comment line (`: keep-alive`) before each content event, as upstreams send to keep
    /// a connection open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub comments: bool,
    /// Each content event's JSON on two `data:` lines (split between two of its fields), which
    /// an SSE parser joins with LF.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiline: bool,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            bom: false,
            space: true,
            eol: Eol::Lf,
            comments: false,
            multiline: false,
        }
    }
}

/// An SSE line terminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eol {
    /// `\n`.
    Lf,
    /// `\r\n`.
    Crlf,
    /// `\r` alone.
    Cr,
}

impl Eol {
    /// The terminator's bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Eol::Lf => b"\n",
            Eol::Crlf => b"\r\n",
            Eol::Cr => b"\r",
        }
    }
}

/// How the upstream ends after the content chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ending {
    /// A complete answer: a final chunk carrying `finish` (when given), `data: [DONE]`, a clean
    /// end of body.
    Done {
        /// The final chunk's finish_reason; no final chunk when absent.
        finish: Option<String>,
    },
    /// A complete answer without `[DONE]`: a final chunk carrying `reason`, then a clean end.
    Finish {
        /// The finish_reason.
        reason: String,
    },
    /// The upstream stops early with a clean end of body and no final chunk, no `[DONE]`.
    /// With `partial`, the last chunk's event is sent only in part (cut inside its JSON,
    /// `partial` selecting where), so it never completes.
    Truncate {
        /// Selects the cut inside the last chunk's event.
        partial: Option<u16>,
    },
    /// The upstream connection or stream is reset (HTTP/2 RST_STREAM, TCP RST on HTTP/1.1)
    /// after the chunks; `partial` as for [`Ending::Truncate`].
    Reset {
        /// Selects the cut inside the last chunk's event.
        partial: Option<u16>,
    },
    /// The upstream answers with this HTTP error status and an OpenAI error object instead of
    /// a stream; the chunks are not sent.
    Status {
        /// The status, 400 to 599 (other values are read as 500).
        status: u16,
    },
    /// The upstream sends the chunks, then nothing more and never closes. The daemon must
    /// relay what came, never send `[DONE]`, and still notice its client leaving: generated
    /// stalls always come with a client that leaves, so a case lasts no longer than that (a
    /// client that stays waits for the daemon's own upstream timeout or the case's deadline).
    Stall,
}

/// A write boundary in an event's framing or in the ending's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    /// Where.
    pub at: CutAt,
    /// Milliseconds before the write that starts here.
    pub delay_ms: u8,
}

/// Where a [`Cut`] falls. Each selector is taken modulo the number of candidate offsets, so
/// every value selects one and small values shrink toward the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutAt {
    /// Inside a `data:` field name or between its colon and space.
    Field(u8),
    /// Next to a line-end byte: before or after a CR or LF, between CR and LF, between an
    /// event's line end and its blank line.
    LineEnd(u8),
    /// Any offset.
    Any(u16),
}

/// What the client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Client {
    /// Read everything until the daemon closes.
    Read,
    /// Close the connection once this many response bytes have arrived (head included).
    AbortAfterBytes {
        /// Bytes to read before closing.
        bytes: u16,
    },
    /// Close the connection once this many content events have arrived.
    AbortAfterEvents {
        /// Content events to read before closing (at least 1).
        events: u8,
    },
    /// Stop reading for `ms` milliseconds once `after_bytes` bytes have arrived, with a small
    /// receive buffer so the daemon's writes back up.
    Pause {
        /// Bytes read before the pause.
        after_bytes: u16,
        /// Length of the pause.
        ms: u8,
    },
}

impl Client {
    /// Whether the client leaves before the end of the stream (if the daemon sends enough).
    pub fn aborts(self) -> bool {
        matches!(
            self,
            Client::AbortAfterBytes { .. } | Client::AbortAfterEvents { .. }
        )
    }
}

impl Case {
    /// The case with a client that leaves when the upstream stalls and the client would not:
    /// after every content event of the chunks and one of the cancel tail, so the client has
    /// seen what the daemon must relay before it goes.
    pub fn leaving_on_stall(mut self) -> Case {
        if self.ending == Ending::Stall && !self.client.aborts() {
            let with_content = self
                .chunks
                .iter()
                .filter(|c| c.atoms.iter().any(|a| !a.text.is_empty()))
                .count();
            let events = u8::try_from(with_content + 1).unwrap_or(u8::MAX);
            self.client = Client::AbortAfterEvents { events };
        }
        self
    }
}

impl Case {
    /// Cases one step simpler than this one: a chunk, atom or cut removed, a split, delay,
    /// escape, text, ending, client or framing made plainer. `prop` tries them after
    /// proptest's shrinking, which removes vector elements only before it shrinks them and so
    /// can leave, say, an empty chunk that is no longer needed.
    pub fn simpler(&self) -> Vec<Case> {
        let mut out = Vec::new();
        for i in 0..self.chunks.len() {
            let mut c = self.clone();
            c.chunks.remove(i);
            out.push(c);
        }
        for (i, chunk) in self.chunks.iter().enumerate() {
            for j in 0..chunk.atoms.len() {
                let mut c = self.clone();
                c.chunks[i].atoms.remove(j);
                out.push(c);
            }
            for j in 0..chunk.cuts.len() {
                let mut c = self.clone();
                c.chunks[i].cuts.remove(j);
                out.push(c);
            }
        }
        for j in 0..self.ending_cuts.len() {
            let mut c = self.clone();
            c.ending_cuts.remove(j);
            out.push(c);
        }
        for (i, chunk) in self.chunks.iter().enumerate() {
            for (j, atom) in chunk.atoms.iter().enumerate() {
                let mut plain = |edit: &dyn Fn(&mut Atom)| {
                    let mut c = self.clone();
                    edit(&mut c.chunks[i].atoms[j]);
                    out.push(c);
                };
                plain(&|a| a.split = None);
                plain(&|a| a.escape = Escape::Raw);
                plain(&|a| {
                    if let Some(s) = &mut a.split {
                        s.delay_ms = 0;
                    }
                });
                if let Some(first) = atom.text.chars().next() {
                    plain(&|a| a.text = first.to_string());
                }
            }
            for j in 0..chunk.cuts.len() {
                let mut c = self.clone();
                c.chunks[i].cuts[j].delay_ms = 0;
                out.push(c);
            }
        }
        for j in 0..self.ending_cuts.len() {
            let mut c = self.clone();
            c.ending_cuts[j].delay_ms = 0;
            out.push(c);
        }
        let plainer_ending = match &self.ending {
            Ending::Done { finish: Some(_) } => Some(Ending::Done { finish: None }),
            Ending::Truncate { partial: Some(_) } => Some(Ending::Truncate { partial: None }),
            Ending::Reset { partial: Some(_) } => Some(Ending::Reset { partial: None }),
            _ => None,
        };
        for (ending, client, framing) in [
            (plainer_ending, None, None),
            (None, Some(Client::Read), None),
            (None, None, Some(Framing::default())),
        ] {
            let mut c = self.clone();
            if let Some(e) = ending {
                c.ending = e;
            }
            if let Some(k) = client {
                c.client = k;
            }
            if let Some(f) = framing {
                c.framing = f;
            }
            out.push(c);
        }
        out.retain(|c| c != self);
        out
    }

    /// The case as one line of JSON (the regression-file and `--replay` form).
    pub fn to_json(&self) -> String {
        // A struct of strings, integers, booleans and enums: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the JSON form; the error says what to fix.
    pub fn from_json(text: &str) -> Result<Case, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "not a prop case ({e}); give the JSON object that a failure report prints after \
                 --replay, or a line of a regression file"
            )
        })
    }
}
