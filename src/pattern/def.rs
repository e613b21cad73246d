//! The pattern file schema (`patterns/*.json`), the embedded files, and their validation.
//!
//! Every file is checked when the catalog is first used; the unit tests load the catalog, so a
//! file that contradicts itself (say, `"kind": "complete"` with `"done": false`) fails `cargo test`
//! instead of reaching a user.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::Pattern;

/// The embedded pattern files, in catalog order (the order error messages list them in).
const FILES: &[(&str, &str)] = &[
    ("default", include_str!("../../patterns/default.json")),
    ("unicode", include_str!("../../patterns/unicode.json")),
    ("short", include_str!("../../patterns/short.json")),
    ("long", include_str!("../../patterns/long.json")),
    ("abort", include_str!("../../patterns/abort.json")),
    ("finish", include_str!("../../patterns/finish.json")),
    ("escapes", include_str!("../../patterns/escapes.json")),
    ("split", include_str!("../../patterns/split.json")),
    ("coalesced", include_str!("../../patterns/coalesced.json")),
    ("huge-line", include_str!("../../patterns/huge-line.json")),
    ("bom", include_str!("../../patterns/bom.json")),
    ("crlf", include_str!("../../patterns/crlf.json")),
    ("cr", include_str!("../../patterns/cr.json")),
    ("nospace", include_str!("../../patterns/nospace.json")),
    ("comments", include_str!("../../patterns/comments.json")),
    ("multiline", include_str!("../../patterns/multiline.json")),
    ("spaced", include_str!("../../patterns/spaced.json")),
    ("error", include_str!("../../patterns/error.json")),
    ("stall", include_str!("../../patterns/stall.json")),
    ("reset", include_str!("../../patterns/reset.json")),
    ("delay", include_str!("../../patterns/delay.json")),
];

const WORDS: &str = include_str!("../../patterns/words.json");

pub(super) struct Catalog {
    pub patterns: Vec<Pattern>,
    pub words: Words,
}

/// The loaded catalog. The files are part of the binary and are validated by the unit tests,
/// so a failure here is a build defect, not an input error.
pub(super) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| match load() {
        Ok(catalog) => catalog,
        Err(err) => {
            panic!("embedded pattern files are invalid (run `cargo test --lib pattern`): {err}")
        }
    })
}

pub(super) fn load() -> Result<Catalog, String> {
    let words: Words =
        serde_json::from_str(WORDS).map_err(|e| format!("patterns/words.json: {e}"))?;
    if words.benchmark.is_empty() || words.validation.is_empty() {
        return Err("patterns/words.json: a word list is empty".into());
    }
    let mut patterns = Vec::with_capacity(FILES.len());
    for (stem, text) in FILES {
        let file: PatternFile =
            serde_json::from_str(text).map_err(|e| format!("patterns/{stem}.json: {e}"))?;
        check(stem, &file).map_err(|e| format!("patterns/{stem}.json: {e}"))?;
        patterns.push(Pattern { file });
    }
    Ok(Catalog { patterns, words })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Words {
    #[allow(dead_code)] // documentation inside the data file
    pub about: String,
    pub benchmark: Vec<String>,
    pub validation: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatternFile {
    pub name: String,
    pub summary: String,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub param: Option<ParamDef>,
    pub response: ResponseDef,
    pub expected: ExpectedDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ParamDef {
    pub placeholder: String,
    pub kind: ParamKind,
    #[serde(default)]
    pub min: u64,
    #[serde(default = "u64_max")]
    pub max: u64,
    #[serde(default)]
    pub max_len: Option<usize>,
    pub default: Option<DefaultValue>,
    pub malformed: Malformed,
}

fn u64_max() -> u64 {
    u64::MAX
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ParamKind {
    Int,
    Text,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum DefaultValue {
    Int(u64),
    Text(String),
}

/// What an unparseable or out-of-range parameter does.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum Malformed {
    /// HTTP 400 naming the pattern (every new pattern).
    Reject,
    /// The default value: `abort:x` means `abort:5`.
    UseDefault,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ResponseDef {
    Stream(StreamDef),
    Error(ErrorDef),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamDef {
    pub content: ContentDef,
    #[serde(default)]
    pub nonce_piece: Option<NoncePieceDef>,
    #[serde(default)]
    pub framing: FramingDef,
    #[serde(default)]
    pub writes: WritesDef,
    #[serde(default)]
    pub delay: DelayDef,
    #[serde(default)]
    pub first_delay: FirstDelayDef,
    #[serde(default = "yes")]
    pub final_chunk: bool,
    #[serde(default)]
    pub finish_reason: ReasonDef,
    #[serde(default = "yes")]
    pub done: bool,
    #[serde(default)]
    pub close: CloseDef,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ContentDef {
    Words(WordsDef),
    Pieces(PiecesDef),
    JsonPieces(JsonPiecesDef),
    Fill(FillListDef),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WordsDef {
    pub words: WordList,
    pub count: CountDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PiecesDef {
    pub pieces: Vec<String>,
}

/// Pieces written exactly as they appear between the quotes of the JSON string on the wire.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JsonPiecesDef {
    pub json_pieces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FillListDef {
    pub fill: Vec<FillDef>,
}

/// One piece made of `text` repeated and cut to exactly `len` bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FillDef {
    pub text: String,
    pub len: usize,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum WordList {
    Benchmark,
    Validation,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum CountDef {
    Fixed(usize),
    Named(NamedCount),
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum NamedCount {
    /// `--chunk-count` / `MockSettings::chunk_count`.
    ChunkCount,
    /// The pattern's integer parameter.
    Param,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoncePieceDef {
    pub at: usize,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FramingDef {
    pub bom: bool,
    pub line_end: LineEnd,
    pub space_after_colon: bool,
    pub json: JsonStyle,
    pub comment: Option<String>,
    pub multiline: bool,
}

impl Default for FramingDef {
    fn default() -> Self {
        FramingDef {
            bom: false,
            line_end: LineEnd::Lf,
            space_after_colon: true,
            json: JsonStyle::Compact,
            comment: None,
            multiline: false,
        }
    }
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub(super) enum LineEnd {
    #[default]
    Lf,
    Crlf,
    Cr,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum JsonStyle {
    #[default]
    Compact,
    /// `", "` and `": "` separators, as Python's `json.dumps` writes them.
    Spaced,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum WritesDef {
    /// One write per event (a comment line is its own write before its event).
    #[default]
    PerEvent,
    /// Everything in one write.
    Coalesced,
    /// Every per-event write cut into pieces of the parameter's byte count.
    Split,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum DelayDef {
    /// `--chunk-delay-ms` between events, the first at once.
    #[default]
    ChunkDelay,
    /// The parameter (ms) between events, the first at once.
    Param,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum FirstDelayDef {
    #[default]
    None,
    /// The parameter (ms) of silence after the response head, before the first event.
    Param,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReasonDef {
    #[default]
    Stop,
    Param,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum CloseDef {
    #[default]
    Clean,
    Reset,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ErrorDef {
    pub message: String,
    pub types: BTreeMap<String, String>,
    pub default_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectedDef {
    pub kind: ExpectedKindDef,
    pub says: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub(super) enum ExpectedKindDef {
    Complete,
    Truncated,
    UpstreamError,
    Reset,
    Stall,
}

/// A file must agree with its name, use its parameter where it declares one (and only then), and
/// declare the outcome its response actually produces.
fn check(stem: &str, f: &PatternFile) -> Result<(), String> {
    if f.name != *stem {
        return Err(format!("name `{}` differs from the file name", f.name));
    }
    if f.name.contains(':') || f.name == "script" {
        return Err(format!("`{}` cannot be a pattern name", f.name));
    }
    let int_param = matches!(&f.param, Some(p) if p.kind == ParamKind::Int);
    let text_param = matches!(&f.param, Some(p) if p.kind == ParamKind::Text);
    if let Some(p) = &f.param {
        match (&p.default, p.kind) {
            (None, _) if p.malformed == Malformed::UseDefault => {
                return Err("`malformed: use_default` needs a default".into());
            }
            (Some(DefaultValue::Int(v)), ParamKind::Int) if *v < p.min || *v > p.max => {
                return Err("the default is out of range".into());
            }
            (Some(DefaultValue::Text(_)), ParamKind::Int)
            | (Some(DefaultValue::Int(_)), ParamKind::Text) => {
                return Err("the default does not match the parameter kind".into());
            }
            _ => {}
        }
    }
    let kind = f.expected.kind;
    let uses_param = match &f.response {
        ResponseDef::Error(_) => {
            if kind != ExpectedKindDef::UpstreamError || !int_param {
                return Err(
                    "an error response needs an int STATUS parameter and kind upstream_error"
                        .into(),
                );
            }
            true
        }
        ResponseDef::Stream(s) => {
            let count_param = matches!(
                &s.content,
                ContentDef::Words(WordsDef {
                    count: CountDef::Named(NamedCount::Param),
                    ..
                })
            );
            let int_uses = [
                count_param,
                s.writes == WritesDef::Split,
                s.delay == DelayDef::Param,
                s.first_delay == FirstDelayDef::Param,
            ]
            .iter()
            .filter(|used| **used)
            .count();
            let text_uses = usize::from(s.finish_reason == ReasonDef::Param);
            if int_uses > 1 || (int_uses == 1) != int_param || (text_uses == 1) != text_param {
                return Err(
                    "the parameter must be declared exactly where the response uses it".into(),
                );
            }
            if s.writes == WritesDef::Split && f.param.as_ref().is_some_and(|p| p.min == 0) {
                return Err("split needs a piece size of at least 1".into());
            }
            if s.finish_reason == ReasonDef::Param && !s.final_chunk {
                return Err("a finish_reason parameter needs the final chunk".into());
            }
            if let Some(c) = &s.framing.comment
                && (!c.starts_with(':') || c.contains(['\r', '\n']))
            {
                return Err("a comment starts with `:` and holds no line end".into());
            }
            if let Some(n) = &s.nonce_piece
                && !n.text.contains("{nonce}")
            {
                return Err("nonce_piece.text must contain {nonce}".into());
            }
            if let ContentDef::JsonPieces(j) = &s.content {
                for piece in &j.json_pieces {
                    serde_json::from_str::<String>(&format!("\"{piece}\"")).map_err(|e| {
                        format!("json piece {piece:?} is not a JSON string body: {e}")
                    })?;
                }
            }
            if let ContentDef::Fill(fill) = &s.content
                && fill
                    .fill
                    .iter()
                    .any(|p| p.text.is_empty() || !p.text.is_ascii())
            {
                return Err(
                    "fill text must be non-empty ASCII (cut to an exact byte length)".into(),
                );
            }
            let clean = s.close == CloseDef::Clean;
            let ok = match kind {
                ExpectedKindDef::Complete => {
                    s.final_chunk && s.done && clean && s.first_delay == FirstDelayDef::None
                }
                ExpectedKindDef::Truncated => !s.done && clean,
                ExpectedKindDef::Reset => !s.done && !clean,
                ExpectedKindDef::Stall => s.done && clean && s.first_delay == FirstDelayDef::Param,
                ExpectedKindDef::UpstreamError => false,
            };
            if !ok {
                return Err(format!(
                    "the response does not produce the declared outcome {kind:?}"
                ));
            }
            int_uses + text_uses == 1
        }
    };
    if uses_param != f.param.is_some() {
        return Err("a declared parameter is unused, or a used one is undeclared".into());
    }
    Ok(())
}
