//! Noticing a daemon that takes handoffs and then does nothing: no byte to the client, no
//! request upstream. Every scenario against it would wait out its whole deadline to learn the
//! same thing, so after [`SILENT_HANDOFFS`] such streams the runner judges the scenarios left
//! as not run (and failed) instead of spending a deadline on each. When a silent stream comes
//! in, the runner lets the scenarios in flight finish before it starts more
//! ([`Watch::doubtful`]), so that against such a daemon the run costs two deadlines: the
//! socket-type check's and one wave of `--jobs` scenarios.

use std::time::Instant;

use crate::verdict::{ScenarioResult, Verdict};

/// Silent streams, without a single upstream request, after which the daemon is judged
/// unresponsive. The socket-type check is the first of them.
pub(super) const SILENT_HANDOFFS: usize = 3;

/// What the results so far say about the daemon.
pub(super) struct Watch {
    started: Instant,
    silent: usize,
    state: State,
}

enum State {
    /// Not known yet.
    Watching,
    /// A stream got bytes, or the mock saw a request: every scenario runs.
    Responsive,
    /// The reason the remaining scenarios are not run.
    Unresponsive(String),
}

/// Whether `r` is a stream that ran and got not a single byte.
fn silent(r: &ScenarioResult) -> bool {
    r.skipped.is_none()
        && r.verdict == Verdict::Fail
        && r.wire.as_ref().is_some_and(|w| w.received_bytes == 0)
}

/// Whether `r` shows the daemon answering: it passed, or bytes came.
fn answered(r: &ScenarioResult) -> bool {
    r.skipped.is_none()
        && (r.verdict < Verdict::NonStrict || r.wire.as_ref().is_some_and(|w| w.received_bytes > 0))
}

impl Watch {
    /// Watching a run that started at `started`.
    pub fn new(started: Instant) -> Watch {
        Watch {
            started,
            silent: 0,
            state: State::Watching,
        }
    }

    /// Takes one finished scenario into account; `saw_request` tells whether the daemon ever
    /// called its upstream (asked only once enough streams were silent).
    pub fn observe(&mut self, r: &ScenarioResult, saw_request: impl FnOnce() -> bool) {
        if !matches!(self.state, State::Watching) {
            return;
        }
        if answered(r) {
            self.state = State::Responsive;
        } else if silent(r) {
            self.silent += 1;
            if self.silent >= SILENT_HANDOFFS {
                self.state = if saw_request() {
                    State::Responsive
                } else {
                    State::Unresponsive(format!(
                        "the daemon is unresponsive (no byte and no upstream request in {} \
                         handoffs over {:.1} s)",
                        self.silent,
                        self.started.elapsed().as_secs_f64()
                    ))
                };
            }
        }
    }

    /// Whether a stream was silent and nothing has shown the daemon answering yet: the
    /// scenarios in flight should finish before more start.
    pub fn doubtful(&self) -> bool {
        matches!(self.state, State::Watching) && self.silent > 0
    }

    /// Why the scenarios left should not run, once the daemon is judged unresponsive.
    pub fn unresponsive(&self) -> Option<&str> {
        match &self.state {
            State::Unresponsive(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{AssertionResult, Strictness, WireDump};

    fn stream(verdict: Verdict, received_bytes: u64) -> ScenarioResult {
        ScenarioResult::new("1.1", "basic_response", "basic", "")
            .with_assertions([AssertionResult::new("x", verdict, "m")])
            .with_wire(WireDump {
                received_bytes,
                ..WireDump::default()
            })
            .judged(Strictness::Lenient)
    }

    #[test]
    fn silent_streams_without_an_upstream_request_make_the_daemon_unresponsive() {
        let mut w = Watch::new(Instant::now());
        for k in 1..SILENT_HANDOFFS {
            w.observe(&stream(Verdict::Fail, 0), || false);
            assert!(w.unresponsive().is_none(), "not after {k}");
            assert!(w.doubtful());
        }
        w.observe(&stream(Verdict::Fail, 0), || false);
        let reason = w.unresponsive().expect("unresponsive");
        assert!(
            reason.contains("no byte and no upstream request in 3 handoffs"),
            "{reason}"
        );
        assert!(!w.doubtful());
    }

    #[test]
    fn an_upstream_request_keeps_every_scenario_running() {
        let mut w = Watch::new(Instant::now());
        for _ in 0..SILENT_HANDOFFS + 2 {
            w.observe(&stream(Verdict::Fail, 0), || true);
        }
        assert!(w.unresponsive().is_none());
        assert!(!w.doubtful());
    }

    #[test]
    fn one_answered_stream_settles_it() {
        let mut w = Watch::new(Instant::now());
        w.observe(&stream(Verdict::Fail, 12), || false);
        for _ in 0..SILENT_HANDOFFS {
            w.observe(&stream(Verdict::Fail, 0), || false);
        }
        assert!(w.unresponsive().is_none());
    }

    #[test]
    fn skipped_scenarios_count_for_nothing() {
        let mut w = Watch::new(Instant::now());
        for _ in 0..SILENT_HANDOFFS {
            w.observe(
                &ScenarioResult::skipped("1.1", "b", "basic", "", "why"),
                || false,
            );
        }
        assert!(w.unresponsive().is_none());
        assert!(!w.doubtful());
    }
}
