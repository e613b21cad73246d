//! Upstream patterns (`patterns/*.json`): what the mock sends, and what a correct daemon makes of
//! it.
//!
//! A pattern is data: one JSON file per pattern holds its content pieces, framing, write plan,
//! ending and the kind of outcome a correct daemon must produce. The files are embedded in the
//! binary. The mock serves a pattern's [`UpstreamPlan`]; the scenario catalog checks the daemon's
//! output against the same pattern's [`Expected`]. Both are computed from one piece list, so an
//! expectation cannot drift from what the mock sends.
//!
//! ```
//! use streamcheck::pattern::{self, ExpectedKind, MockSettings};
//!
//! let spec = pattern::parse("abort:3").unwrap().builtin().unwrap();
//! let settings = MockSettings::default();
//! let plan = spec.plan(&settings, None);        // what the mock writes
//! let expected = spec.expected(&settings, None); // what a correct daemon relays
//! assert_eq!(plan.writes.len(), 3);
//! assert_eq!(expected.content, "Hello world!");
//! assert_eq!(expected.kind, ExpectedKind::Truncated);
//! assert!(!expected.done);
//! ```
//!
//! Spec syntax: `NAME` or `NAME:PARAM`, see [`valid_specs`]. `script:ID` names a script
//! registered with a running mock; it parses to [`PatternSpec::Script`] and only the mock
//! resolves it.
//!
//! Upstream chunk format, byte for byte:
//! `data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":"mock-model","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n`,
//! then a final chunk with `"delta":{}` and `"finish_reason":"stop"`, then `data: [DONE]\n\n`.

#![deny(missing_docs)]

mod build;
mod def;
mod directive;

use std::time::Duration;

use bytes::Bytes;

pub use directive::{
    DirectiveError, Directives, find_directives, is_valid_nonce, nonce_directive, pattern_directive,
};

/// The `id` of every upstream chunk.
pub const CHUNK_ID: &str = "chatcmpl-mock";
/// The `model` of every upstream chunk.
pub const CHUNK_MODEL: &str = "mock-model";
/// The event that ends a complete answer.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// The mock's knobs that patterns depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockSettings {
    /// Chunks in the default (benchmark) answer: `--chunk-count`, 18.
    pub chunk_count: usize,
    /// Delay between chunks (the first goes at once): `--chunk-delay-ms`, 50 ms.
    pub chunk_delay: Duration,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(50),
        }
    }
}

/// What the mock does for one request: the response head, the body writes, and how it ends.
/// Also the type of a registered script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamPlan {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names), in order.
    pub headers: Vec<(String, String)>,
    /// Body writes, each handed to the connection and flushed on its own.
    pub writes: Vec<Write>,
    /// What happens after the last write.
    pub ending: Ending,
}

impl UpstreamPlan {
    /// A 200 `text/event-stream` response with these writes and ending.
    pub fn sse(writes: Vec<Write>, ending: Ending) -> UpstreamPlan {
        UpstreamPlan {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            writes,
            ending,
        }
    }

    /// A script that streams `pieces` as content chunks, then a final chunk and `[DONE]`, all
    /// written at once, and closes.
    pub fn content_script(pieces: &[String]) -> UpstreamPlan {
        let mut writes: Vec<Write> = pieces
            .iter()
            .map(|p| Write::new(chunk_event(p), Duration::ZERO))
            .collect();
        writes.push(Write::new(final_event("stop"), Duration::ZERO));
        writes.push(Write::new(DONE_EVENT, Duration::ZERO));
        UpstreamPlan::sse(writes, Ending::Close)
    }

    /// All body bytes, concatenated: what a client receives when nothing goes wrong.
    pub fn body(&self) -> Vec<u8> {
        self.writes
            .iter()
            .flat_map(|w| w.bytes.iter().copied())
            .collect()
    }
}

/// One body write. An empty write sends nothing: it is a pure delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The bytes, exactly.
    pub bytes: Bytes,
    /// Wait this long after the previous write (or the response head) before this one.
    pub delay_before: Duration,
}

impl Write {
    /// A write of `bytes` after `delay_before`.
    pub fn new(bytes: impl Into<Bytes>, delay_before: Duration) -> Write {
        Write {
            bytes: bytes.into(),
            delay_before,
        }
    }
}

/// How the response ends after its last write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A clean end of body: the HTTP/1.1 last chunk, or END_STREAM on HTTP/2.
    Close,
    /// Torn down: RST_STREAM(INTERNAL_ERROR) on HTTP/2, 50 ms after the last write so the
    /// connection has written it; on HTTP/1.1 the TCP connection is reset (SO_LINGER 0, then
    /// close) once the last write has been handed to the kernel. Over a Unix socket, which has
    /// no reset, the connection is closed without ending the chunked body.
    Reset,
    /// Nothing more, ever: the stream stays open and silent until the client goes away or the
    /// mock shuts down.
    Stall,
}

/// What a correct daemon relays for a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The kind of outcome.
    pub kind: ExpectedKind,
    /// The content, concatenated: all of it for `Complete` and `Stall`, what was sent before
    /// the failure for `Truncated` and `Reset`, empty for `UpstreamError`.
    pub content: String,
    /// The content as the upstream chunked it.
    pub pieces: Vec<String>,
    /// Whether `data: [DONE]` must end the daemon's stream.
    pub done: bool,
    /// The upstream's finish_reason, for daemons that forward it.
    pub finish_reason: Option<String>,
}

/// The kind of outcome a correct daemon produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedKind {
    /// The whole answer, then `[DONE]`.
    Complete,
    /// The upstream ended cleanly without a final chunk or `[DONE]`: relay what came, then say
    /// the answer is incomplete; `[DONE]` would hide the truncation.
    Truncated,
    /// The upstream answered with an HTTP error: tell the client the request failed.
    UpstreamError {
        /// The upstream's status.
        status: u16,
        /// The `error.message` in the upstream's body.
        message: String,
    },
    /// The upstream connection or stream was reset mid-answer: relay what came, then report the
    /// failure; never `[DONE]`.
    Reset,
    /// The upstream sent headers, then nothing for `silence`, then the whole answer. A daemon
    /// that waits relays it (`content`, `done`); one whose upstream timeout is shorter must end
    /// the stream with an error instead, never with `[DONE]`.
    Stall {
        /// How long the upstream is silent after its response head.
        silence: Duration,
    },
}

/// A parsed pattern parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// `abort:N`, `split:N`, `error:STATUS`, `stall:MS`, `reset:N`, `delay:MS`.
    Int(u64),
    /// `finish:R`.
    Text(String),
}

/// One pattern of the catalog, as loaded from its file.
pub struct Pattern {
    file: def::PatternFile,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("name", &self.file.name)
            .finish()
    }
}

impl Pattern {
    /// The name (`abort`), which is also the file name (`patterns/abort.json`).
    pub fn name(&self) -> &str {
        &self.file.name
    }
    /// How to write it: `abort:N`, or just `unicode` for a pattern without a parameter.
    pub fn syntax(&self) -> String {
        match &self.file.param {
            Some(p) => format!("{}:{}", self.file.name, p.placeholder),
            None => self.file.name.clone(),
        }
    }
    /// One sentence on what the upstream does.
    pub fn summary(&self) -> &str {
        &self.file.summary
    }
    /// Further detail, where the file has it.
    pub fn notes(&self) -> Option<&str> {
        self.file.notes.as_deref()
    }
    /// What a correct daemon must do, in words.
    pub fn expectation(&self) -> &str {
        &self.file.expected.says
    }
}

/// Every pattern, in catalog order.
pub fn catalog() -> &'static [Pattern] {
    &def::catalog().patterns
}

/// Every valid spec form, for error messages: `default`, `unicode`, …, `abort:N`, …, `script:ID`.
pub fn valid_specs() -> Vec<String> {
    let mut all: Vec<String> = catalog().iter().map(Pattern::syntax).collect();
    all.push("script:ID".to_owned());
    all
}

fn valid_list() -> String {
    valid_specs().join(", ")
}

/// A pattern spec that does not name a pattern the mock can serve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The name is not in the catalog.
    #[error("unknown test pattern `{spec}`; valid patterns: {}", valid_list())]
    Unknown {
        /// The spec as received.
        spec: String,
    },
    /// A known name with a missing, unexpected, unparseable or out-of-range parameter.
    #[error("malformed test pattern `{spec}`: {reason}; write it as `{syntax}`")]
    Malformed {
        /// The spec as received.
        spec: String,
        /// The pattern's syntax, e.g. `stall:MS`.
        syntax: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `script:ID` given to [`resolve`], which has no access to a mock's scripts.
    #[error(
        "test pattern `{spec}` is a script: scripts live in a running mock (MockHandle::register_script, POST /_streamcheck/scripts) and only it can resolve them"
    )]
    Script {
        /// The spec as received.
        spec: String,
    },
}

/// A parsed spec: a catalog pattern with its parameter, or a script id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternSpec {
    /// A pattern from `patterns/`.
    Builtin(BuiltinSpec),
    /// `script:ID`: a script registered with a running mock.
    Script(String),
}

impl PatternSpec {
    /// The catalog pattern, or `None` for a script.
    pub fn builtin(self) -> Option<BuiltinSpec> {
        match self {
            PatternSpec::Builtin(b) => Some(b),
            PatternSpec::Script(_) => None,
        }
    }
    /// The canonical spelling (`abort:5` for `abort:x`): what `X-Test-Pattern-Applied` carries.
    pub fn canonical(&self) -> String {
        match self {
            PatternSpec::Builtin(b) => b.canonical(),
            PatternSpec::Script(id) => format!("script:{id}"),
        }
    }
}

/// A catalog pattern with its parameter resolved (defaults applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinSpec {
    index: usize,
    param: Option<ParamValue>,
}

impl BuiltinSpec {
    /// The `default` pattern: what the mock serves when no pattern is asked for.
    pub fn default_pattern() -> BuiltinSpec {
        BuiltinSpec {
            index: 0,
            param: None,
        }
    }
    /// The pattern.
    pub fn pattern(&self) -> &'static Pattern {
        &catalog()[self.index]
    }
    /// The parameter, after defaults.
    pub fn param(&self) -> Option<&ParamValue> {
        self.param.as_ref()
    }
    /// The canonical spelling: `abort:5`, `finish:length`, `unicode`.
    pub fn canonical(&self) -> String {
        match &self.param {
            None => self.pattern().name().to_owned(),
            Some(ParamValue::Int(v)) => format!("{}:{v}", self.pattern().name()),
            Some(ParamValue::Text(t)) => format!("{}:{t}", self.pattern().name()),
        }
    }

    /// What the mock sends. `nonce` only changes patterns with a nonce piece (`default`).
    pub fn plan(&self, settings: &MockSettings, nonce: Option<&str>) -> UpstreamPlan {
        let (file, words) = (&self.pattern().file, &def::catalog().words);
        match &file.response {
            def::ResponseDef::Stream(s) => {
                let pieces = build::pieces(s, words, self.param(), settings, nonce);
                build::stream_plan(s, &pieces, self.param(), settings)
            }
            def::ResponseDef::Error(e) => build::error_plan(e, self.status()),
        }
    }

    /// What a correct daemon relays for [`plan`](Self::plan) with the same arguments.
    pub fn expected(&self, settings: &MockSettings, nonce: Option<&str>) -> Expected {
        let (file, words) = (&self.pattern().file, &def::catalog().words);
        match &file.response {
            def::ResponseDef::Stream(s) => {
                let pieces = build::pieces(s, words, self.param(), settings, nonce);
                build::stream_expected(s, file.expected.kind, pieces, self.param())
            }
            def::ResponseDef::Error(e) => Expected {
                kind: ExpectedKind::UpstreamError {
                    status: self.status(),
                    message: build::error_message(e, self.status()),
                },
                content: String::new(),
                pieces: Vec::new(),
                done: false,
                finish_reason: None,
            },
        }
    }

    fn status(&self) -> u16 {
        // error.json bounds STATUS to 400..=599.
        u16::try_from(build::param_int(self.param())).unwrap_or(500)
    }
}

/// Parses `NAME` or `NAME:PARAM`.
pub fn parse(spec: &str) -> Result<PatternSpec, PatternError> {
    let (name, arg) = match spec.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (spec, None),
    };
    if name == "script" {
        return match arg {
            Some(id) if is_valid_nonce(id) => Ok(PatternSpec::Script(id.to_owned())),
            _ => Err(PatternError::Malformed {
                spec: spec.to_owned(),
                syntax: "script:ID".into(),
                reason: "a script id is 1 to 64 of A-Z a-z 0-9 _ -".into(),
            }),
        };
    }
    let Some(index) = catalog().iter().position(|p| p.name() == name) else {
        return Err(PatternError::Unknown {
            spec: spec.to_owned(),
        });
    };
    let pattern = &catalog()[index];
    let malformed = |reason: String| PatternError::Malformed {
        spec: spec.to_owned(),
        syntax: pattern.syntax(),
        reason,
    };
    let param = match (&pattern.file.param, arg) {
        (None, None) => None,
        (None, Some(_)) => return Err(malformed(format!("`{name}` takes no parameter"))),
        (Some(p), arg) => Some(parse_param(p, arg).map_err(malformed)?),
    };
    Ok(PatternSpec::Builtin(BuiltinSpec { index, param }))
}

fn parse_param(p: &def::ParamDef, arg: Option<&str>) -> Result<ParamValue, String> {
    let default = p.default.as_ref().map(|d| match d {
        def::DefaultValue::Int(v) => ParamValue::Int(*v),
        def::DefaultValue::Text(t) => ParamValue::Text(t.clone()),
    });
    let parsed = match (arg, p.kind) {
        (None, _) => return default.ok_or_else(|| format!("{} is required", p.placeholder)),
        (Some(""), def::ParamKind::Text) => {
            return default.ok_or_else(|| format!("{} is required", p.placeholder));
        }
        (Some(a), def::ParamKind::Int) => match a.parse::<u64>() {
            Ok(v) if a.bytes().all(|b| b.is_ascii_digit()) && (p.min..=p.max).contains(&v) => {
                Ok(ParamValue::Int(v))
            }
            Ok(_) if a.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
                "{} must be from {} to {}",
                p.placeholder, p.min, p.max
            )),
            _ => Err(format!(
                "{} must be a decimal integer, not {a:?}",
                p.placeholder
            )),
        },
        (Some(a), def::ParamKind::Text) => {
            let max = p.max_len.unwrap_or(64);
            if a.len() > max || a.chars().any(char::is_control) {
                Err(format!(
                    "{} must be at most {max} bytes with no control characters",
                    p.placeholder
                ))
            } else {
                Ok(ParamValue::Text(a.to_owned()))
            }
        }
    };
    match (parsed, p.malformed, default) {
        (Ok(v), _, _) => Ok(v),
        (Err(_), def::Malformed::UseDefault, Some(d)) => Ok(d),
        (Err(e), _, _) => Err(e),
    }
}

/// A resolved catalog pattern: the spec, the mock's plan and a correct daemon's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The parsed spec.
    pub spec: BuiltinSpec,
    /// What the mock sends.
    pub plan: UpstreamPlan,
    /// What a correct daemon relays.
    pub expected: Expected,
}

/// Parses `spec` and computes both sides; `script:ID` is [`PatternError::Script`].
pub fn resolve(
    spec: &str,
    settings: &MockSettings,
    nonce: Option<&str>,
) -> Result<Resolved, PatternError> {
    match parse(spec)? {
        PatternSpec::Builtin(spec) => Ok(Resolved {
            plan: spec.plan(settings, nonce),
            expected: spec.expected(settings, nonce),
            spec,
        }),
        PatternSpec::Script(_) => Err(PatternError::Script {
            spec: spec.to_owned(),
        }),
    }
}

/// `{"id":"chatcmpl-mock",…,"delta":{"content":CONTENT},"finish_reason":null}]}`: one upstream
/// content chunk, compact, exactly as the mock writes it.
pub fn chunk_json(content: &str) -> String {
    build::content_chunk(def::JsonStyle::Compact, &build::json_string_body(content)).concat()
}

/// The final chunk: empty delta and `finish_reason`.
pub fn final_chunk_json(finish_reason: &str) -> String {
    build::final_chunk(def::JsonStyle::Compact, finish_reason).concat()
}

/// `data: <chunk_json(content)>\n\n`, for building scripts.
pub fn chunk_event(content: &str) -> Vec<u8> {
    format!("data: {}\n\n", chunk_json(content)).into_bytes()
}

/// `data: <final_chunk_json(reason)>\n\n`, for building scripts.
pub fn final_event(finish_reason: &str) -> Vec<u8> {
    format!("data: {}\n\n", final_chunk_json(finish_reason)).into_bytes()
}

#[cfg(test)]
mod tests;
