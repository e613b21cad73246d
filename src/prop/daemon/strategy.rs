//! Proptest strategies for [`Case`]s, biased to what relays get wrong.
//!
//! Every alternative list starts with its simplest member and every number shrinks toward 0,
//! so proptest's shrinking heads for few chunks of short ASCII text, raw escapes, LF framing,
//! few writes, no delays, a plain reading client, and the simplest ending that still fails.

use proptest::prelude::*;
use proptest::sample::select;

use super::case::{Atom, Case, Chunk, Client, Cut, CutAt, Ending, Eol, Escape, Framing, Split};

/// Characters two bytes long in UTF-8.
pub(super) const TWO_BYTE: &[&str] = &["é", "ß", "ñ", "Ω", "ж", "ü", "\u{85}", "\u{7ff}"];
/// Three bytes long.
pub(super) const THREE_BYTE: &[&str] = &[
    "€", "中", "文", "✓", "ー", "\u{800}", "\u{FFFD}", "\u{FFFF}",
];
/// Four bytes long.
pub(super) const FOUR_BYTE: &[&str] = &["😀", "🎉", "𝄞", "𠀋", "\u{10000}", "\u{10FFFF}"];
/// Base characters with combining marks.
pub(super) const COMBINING: &[&str] = &[
    "e\u{301}",
    "a\u{308}",
    "o\u{302}\u{323}",
    "\u{20DD}",
    "n\u{303}",
];
/// Emoji sequences joined by ZWJ, with skin tones, flags, keycaps.
pub(super) const SEQUENCES: &[&str] = &[
    "👩\u{200D}💻",
    "👨\u{200D}👩\u{200D}👧\u{200D}👦",
    "👍🏽",
    "🇫🇷",
    "1\u{FE0F}\u{20E3}",
    "🏳\u{FE0F}\u{200D}🌈",
];
/// Characters some splitters treat as line ends, and invisible ones.
pub(super) const SEPARATORS: &[&str] = &["\u{2028}", "\u{2029}", "\u{FEFF}", "\u{200B}", "\u{85}"];
/// NUL and control characters (JSON escapes them; DEL it does not).
pub(super) const CONTROLS: &[&str] = &[
    "\n", "\t", "\r", "\0", "\u{1}", "\u{8}", "\u{b}", "\u{c}", "\u{1b}", "\u{1f}", "\u{7f}",
    "\r\n",
];
/// Characters with JSON escapes, and text that looks like escapes.
pub(super) const JSON_SPECIAL: &[&str] = &["\"", "\\", "/", "\\u00e9", "\\n", "\"}"];
/// Text that looks like SSE framing, which a relay must escape, not interpret.
pub(super) const SSE_LOOKALIKE: &[&str] = &[
    "data: x",
    "[DONE]",
    "\n\ndata: [DONE]\n\n",
    ":",
    "\ndata:",
    "event: error",
];
/// finish_reason values.
pub(super) const REASONS: &[&str] = &["stop", "length", "content_filter", "tool_calls"];
/// Upstream error statuses.
pub(super) const STATUSES: &[u16] = &[500, 400, 401, 403, 404, 429, 502, 503];

fn texts(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(list).prop_map(str::to_owned)
}

/// Content text: mostly the hard cases, simplest first. (No regex strategy: those are not
/// `Send`, and the runner generates cases on its worker threads.)
pub fn text() -> impl Strategy<Value = String> {
    // Nested: `prop_oneof!` boxes (and so loses `Send`) past ten arms.
    prop_oneof![
        4 => prop::collection::vec(prop::char::range('a', 'z'), 1..=3).prop_map(String::from_iter),
        7 => prop_oneof![2 => texts(TWO_BYTE), 2 => texts(THREE_BYTE), 3 => texts(FOUR_BYTE)],
        3 => prop_oneof![1 => texts(COMBINING), 2 => texts(SEQUENCES)],
        7 => prop_oneof![
            1 => texts(SEPARATORS),
            2 => texts(CONTROLS),
            2 => texts(JSON_SPECIAL),
            1 => texts(SSE_LOOKALIKE),
            1 => any::<char>().prop_map(String::from),
        ],
    ]
}

/// How an atom is escaped; raw first.
pub fn escape() -> impl Strategy<Value = Escape> {
    prop_oneof![
        3 => Just(Escape::Raw),
        1 => Just(Escape::Short),
        1 => Just(Escape::Unicode),
        1 => Just(Escape::UnicodeUpper),
    ]
}

/// A delay before a write, 0 to 20 ms, often 0.
pub fn delay_ms() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 3 => 0u8..=20]
}

/// One atom of content, cut inside one time in three.
pub fn atom() -> impl Strategy<Value = Atom> {
    let split = (any::<u8>(), delay_ms()).prop_map(|(sel, delay_ms)| Split { sel, delay_ms });
    (text(), escape(), prop::option::weighted(0.35, split)).prop_map(|(text, escape, split)| Atom {
        text,
        escape,
        split,
    })
}

/// A cut in framing or anywhere: mostly at line ends and inside `data:`.
pub fn cut() -> impl Strategy<Value = Cut> {
    let at = prop_oneof![
        2 => any::<u8>().prop_map(CutAt::LineEnd),
        1 => any::<u8>().prop_map(CutAt::Field),
        1 => any::<u16>().prop_map(CutAt::Any),
    ];
    (at, delay_ms()).prop_map(|(at, delay_ms)| Cut { at, delay_ms })
}

/// One content chunk: up to four atoms (an empty chunk is `"content":""`) and up to two cuts
/// in its framing.
pub fn chunk() -> impl Strategy<Value = Chunk> {
    (
        prop::collection::vec(atom(), 0..=4),
        prop::collection::vec(cut(), 0..=2),
    )
        .prop_map(|(atoms, cuts)| Chunk { atoms, cuts })
}

/// Upstream framing: usually `data: ` with LF, sometimes CRLF, CR, no space, a BOM, comment
/// lines, events on two `data:` lines.
pub fn framing() -> impl Strategy<Value = Framing> {
    let eol = prop_oneof![6 => Just(Eol::Lf), 2 => Just(Eol::Crlf), 1 => Just(Eol::Cr)];
    // Booleans shrink to false: generate "no space" so the simplest framing is `data: `.
    (
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.15),
        eol,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(bom, no_space, eol, comments, multiline)| Framing {
            bom,
            space: !no_space,
            eol,
            comments,
            multiline,
        })
}

/// How the upstream ends.
pub fn ending() -> impl Strategy<Value = Ending> {
    let reason = || select(REASONS).prop_map(str::to_owned);
    prop_oneof![
        4 => prop::option::weighted(0.8, reason()).prop_map(|finish| Ending::Done { finish }),
        3 => prop::option::weighted(0.5, any::<u16>())
            .prop_map(|partial| Ending::Truncate { partial }),
        1 => reason().prop_map(|reason| Ending::Finish { reason }),
        2 => prop::option::weighted(0.5, any::<u16>()).prop_map(|partial| Ending::Reset { partial }),
        1 => select(STATUSES).prop_map(|status| Ending::Status { status }),
        1 => Just(Ending::Stall),
    ]
}

/// The client: mostly reading everything, sometimes leaving early or pausing.
pub fn client() -> impl Strategy<Value = Client> {
    prop_oneof![
        6 => Just(Client::Read),
        1 => (0u16..=400).prop_map(|bytes| Client::AbortAfterBytes { bytes }),
        1 => (1u8..=4).prop_map(|events| Client::AbortAfterEvents { events }),
        1 => (0u16..=400, 1u8..=50).prop_map(|(after_bytes, ms)| Client::Pause { after_bytes, ms }),
    ]
}

/// A whole case: up to six chunks, an ending with up to two cuts, a client.
pub fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(chunk(), 0..=6),
        framing(),
        ending(),
        prop::collection::vec(cut(), 0..=2),
        client(),
    )
        .prop_map(|(chunks, framing, ending, ending_cuts, client)| {
            Case {
                chunks,
                framing,
                ending,
                ending_cuts,
                client,
            }
            .leaving_on_stall()
        })
}
