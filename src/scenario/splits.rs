//! splits: the upstream's bytes arrive cut anywhere. A relay that decodes each read on its
//! own, scans lines with a fixed buffer, or copies escapes instead of decoding them fails here.

use super::{Category, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "11.1",
        name: "split_1",
        category: Category::Splits,
        description: "Every upstream write is a single byte, cutting UTF-8 sequences, `data:` and \
                      line ends: the answer still arrives intact",
        pattern: "split:1",
        ..Scenario::BASE
    },
    Scenario {
        id: "11.2",
        name: "split_3",
        category: Category::Splits,
        description: "Upstream writes of 3 bytes cut most multi-byte characters: the answer still \
                      arrives intact",
        pattern: "split:3",
        ..Scenario::BASE
    },
    Scenario {
        id: "11.3",
        name: "coalesced",
        category: Category::Splits,
        description: "The whole upstream stream arrives in one write: every event in it is relayed",
        pattern: "coalesced",
        ..Scenario::BASE
    },
    Scenario {
        id: "11.4",
        name: "huge_line",
        category: Category::Splits,
        description: "One 100 KiB data: line (longer than a 64 KiB line scanner allows) is \
                      relayed whole",
        pattern: "huge-line",
        ..Scenario::BASE
    },
    Scenario {
        id: "11.5",
        name: "escapes",
        category: Category::Splits,
        description: "JSON escapes in the upstream's content (\\n, \\\", \\u00e9, surrogate pairs, \
                      U+2028) reach the client decoded, never as escape text",
        pattern: "escapes",
        ..Scenario::BASE
    },
];
