//! finish: the upstream's finish_reason, forwarded by daemons that use the full format. The
//! simplified `{"content":…}` format has no field for it: there `[DONE]` marks a complete answer
//! and a lost "length" is a fact, not a fault.

use super::{Category, Check, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "5.1",
        name: "finish_stop",
        category: Category::Finish,
        description: "An answer ending with finish_reason \"stop\" is relayed whole with [DONE]; \
                      the finish_reason reaches the client where the format carries it",
        pattern: "finish:stop",
        checks: &[Check::Outcome, Check::FinishReason],
        ..Scenario::BASE
    },
    Scenario {
        id: "5.2",
        name: "finish_length",
        category: Category::Finish,
        description: "An answer cut by max_tokens (finish_reason \"length\") is still a complete \
                      stream with [DONE]; the finish_reason says \"length\" where the format carries it",
        pattern: "finish:length",
        checks: &[Check::Outcome, Check::FinishReason],
        ..Scenario::BASE
    },
];
