//! basic: the default answer relayed whole (the original suite's first two cases).

use super::{Category, Check, HeaderRule, Scenario};
use crate::verdict::Verdict;

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "1.1",
        name: "basic_response",
        category: Category::Basic,
        description: "The default answer comes back as a 200 text/event-stream response that ends \
                      with data: [DONE] and a close",
        pattern: "default",
        checks: &[
            Check::StatusLine,
            Check::Header {
                name: "Content-Type",
                rule: HeaderRule::MediaType("text/event-stream"),
                level: Verdict::Fail,
            },
            Check::Ending,
        ],
        ..Scenario::BASE
    },
    Scenario {
        id: "1.2",
        name: "basic_content",
        category: Category::Basic,
        description: "The default answer's content reaches the client exactly, chunk after chunk",
        pattern: "default",
        checks: &[Check::Content],
        ..Scenario::BASE
    },
];
