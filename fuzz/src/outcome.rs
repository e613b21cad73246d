//! Feedback from what the daemon did, for a daemon libFuzzer cannot see into.
//!
//! The daemon is another process and is not instrumented (the reference daemon run by the
//! target is built with coverage counters, but they live in its own process, which libFuzzer
//! does not read). What libFuzzer sees is this process: the `arbitrary` decoding of the case,
//! the transcript builder and parsers that read the daemon's bytes, the judge — and the
//! outcome features [`record`] sets. Each is a (property, value) pair of what the daemon did,
//! hashed to a byte in libFuzzer's extra-counters section, which libFuzzer reads after every
//! input as coverage (hit counts bucketed 1, 2, 3, 4–7, 8–15, …): every assertion with its
//! verdict, the status, how the connection ended, how the body ended, the kind of each of the
//! first events and how many of each kind, SSE errors and unterminated events, the upstream
//! requests and how each ended. An input whose outcome has a (property, value) pair, or a count
//! bucket, not seen before is kept, even when the code that read it ran the same way.
//!
//! What it is not: coverage of the daemon's code. Two inputs that take different paths through
//! the daemon but make the same bytes, the same way, look the same; and timing shows only as
//! the end kind (a deadline, a kept-open connection) and the assertions about it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};

use streamcheck::prop::daemon::CaseResult;

/// Outcome features: enough bytes that the few hundred distinct pairs rarely share one.
const COUNTERS: usize = 1 << 12;

/// libFuzzer's extra counters: it clears them before each input and reads them after.
#[used]
#[unsafe(link_section = "__libfuzzer_extra_counters")]
static OUTCOME_COUNTERS: [AtomicU8; COUNTERS] = [const { AtomicU8::new(0) }; COUNTERS];

/// Events whose kind is recorded by position.
const EVENTS_BY_POSITION: usize = 8;

/// Counts one occurrence of `property` having `value`.
fn hit(property: &str, value: impl Hash) {
    // `DefaultHasher::new()` has fixed keys: the same pair lands on the same counter in every
    // process, which keeps corpora meaningful across runs and -fork jobs.
    let mut h = DefaultHasher::new();
    (property, value).hash(&mut h);
    let counter = &OUTCOME_COUNTERS[(h.finish() % COUNTERS as u64) as usize];
    let n = counter.load(Ordering::Relaxed);
    counter.store(n.saturating_add(1), Ordering::Relaxed);
}

/// Sets the outcome features of one judged case.
pub fn record(result: &CaseResult) {
    for a in &result.assertions {
        hit("assertion", (&a.name, format!("{:?}", a.verdict)));
    }
    let obs = &result.observed;
    let t = &obs.transcript;
    hit("status", t.status());
    hit("connection end", std::mem::discriminant(&t.end.kind));
    hit("body end", format!("{:?}", t.http.body));
    for (i, e) in t.events.iter().enumerate() {
        let kind = format!("{:?}", e.kind);
        if i < EVENTS_BY_POSITION {
            hit("event at", (i, &kind));
        }
        hit("events of kind", &kind);
    }
    hit(
        "sse error",
        t.sse.error.as_ref().map(std::mem::discriminant),
    );
    hit("unterminated event", t.sse.unterminated.is_some());
    hit("kept open after [DONE]", obs.kept_open_after_done);
    hit("upstream requests", obs.requests.len().min(4));
    for r in &obs.requests {
        hit("upstream request end", std::mem::discriminant(&r.end));
    }
}
