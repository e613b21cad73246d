//! client: the browser's side misbehaves. A user who closes the tab must stop the (billed)
//! upstream request; a user on a slow link must not slow anybody else down; and events must
//! reach the browser as they are generated, not all at the end.

use super::{Category, Check, Client, Drive, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "9.1",
        name: "downstream_abort",
        category: Category::Client,
        description: "The client closes after the first event: the daemon cancels the upstream \
                      request within 2 s",
        pattern: "delay:250",
        client: Client::CloseAfterEvents(1),
        checks: &[Check::UpstreamCancelled { within_ms: 2000 }],
        ..Scenario::BASE
    },
    Scenario {
        id: "9.2",
        name: "slow_reader",
        category: Category::Client,
        description: "While one client stops reading a large answer, another stream's events \
                      still reach its client promptly (no head-of-line blocking)",
        pattern: "delay:100",
        drive: Drive::SlowReader,
        ..Scenario::BASE
    },
    Scenario {
        id: "9.3",
        name: "streaming_relay",
        category: Category::Client,
        description: "The first event reaches the client before the upstream has finished: the \
                      daemon streams instead of buffering the answer",
        pattern: "delay:100",
        checks: &[Check::RelayedIncrementally, Check::Outcome],
        ..Scenario::BASE
    },
];
