//! unicode: multi-byte characters relayed intact. All four drive the `unicode` pattern; the
//! focused ones compare only their pieces (the pattern file's notes list which piece is what,
//! and a unit test holds these ranges to it).

use super::{Category, Check, Scenario};

/// Pieces 1-9 of `patterns/unicode.json`: emoji, modifiers, ZWJ sequences, flags, a keycap.
pub(super) const EMOJI: (usize, usize) = (0, 9);
/// Pieces 10-15: Chinese, Japanese kana, Korean, kanji.
pub(super) const CJK: (usize, usize) = (9, 15);
/// Pieces 16-21: four-byte characters outside emoji (CJK Extension B, math bold, U+1D11E, U+1F004).
pub(super) const FOUR_BYTE: (usize, usize) = (15, 21);

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "2.1",
        name: "unicode_content",
        category: Category::Unicode,
        description: "35 chunks of emoji, CJK, four-byte and mixed-script text arrive byte for \
                      byte: no U+FFFD, no lost or split character",
        pattern: "unicode",
        ..Scenario::BASE
    },
    Scenario {
        id: "2.2",
        name: "unicode_emoji",
        category: Category::Unicode,
        description: "Emoji with skin-tone modifiers, ZWJ families, flags and a keycap arrive intact",
        pattern: "unicode",
        checks: &[Check::ContentPieces {
            what: "the emoji",
            pieces: EMOJI,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "2.3",
        name: "unicode_cjk",
        category: Category::Unicode,
        description: "Chinese, Japanese and Korean text arrives intact",
        pattern: "unicode",
        checks: &[Check::ContentPieces {
            what: "the CJK text",
            pieces: CJK,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "2.4",
        name: "unicode_4byte",
        category: Category::Unicode,
        description: "Four-byte characters outside the emoji blocks (U+20000, U+1D11E, …) arrive intact",
        pattern: "unicode",
        checks: &[Check::ContentPieces {
            what: "the four-byte characters",
            pieces: FOUR_BYTE,
        }],
        ..Scenario::BASE
    },
];
