//! chunks: very short and very long upstream chunks.

use super::{Category, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "3.1",
        name: "short_chunks",
        category: Category::Chunks,
        description: "49 one-character chunks are relayed in order, none lost or merged wrongly",
        pattern: "short",
        ..Scenario::BASE
    },
    Scenario {
        id: "3.2",
        name: "long_chunks",
        category: Category::Chunks,
        description: "Three chunks of 4096 characters are relayed whole (no 4 KiB buffer cuts them)",
        pattern: "long",
        ..Scenario::BASE
    },
];
