//! abort: the upstream stops cleanly without a final chunk or `[DONE]`. The daemon relays what
//! came and must not pretend the answer was complete.

use super::{Category, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "4.1",
        name: "abort_stream",
        category: Category::Abort,
        description: "The upstream ends after 5 words with no finish_reason and no [DONE]: the 5 \
                      words arrive, [DONE] does not, and the connection closes",
        pattern: "abort:5",
        ..Scenario::BASE
    },
    Scenario {
        id: "4.2",
        name: "abort_early",
        category: Category::Abort,
        description: "The upstream ends after its first word: that word arrives, [DONE] does not, \
                      and the connection closes",
        pattern: "abort:1",
        ..Scenario::BASE
    },
];
