//! concurrency: many streams at once. Each carries the default answer with its own nonce
//! inside (the mock inserts ` [NONCE]` after the first chunk), so content that went to the
//! wrong client is caught and named.

use super::{Category, Drive, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[Scenario {
    id: "10.1",
    name: "concurrent_streams",
    category: Category::Concurrency,
    description: "50 simultaneous handoffs with distinct nonces: every stream gets exactly its own \
                  content, and the daemon keeps no client socket afterwards",
    pattern: "default",
    drive: Drive::Concurrent { streams: 50 },
    ..Scenario::BASE
}];
