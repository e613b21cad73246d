//! The scenarios that need the daemon to themselves: a slow reader beside a quick stream, and
//! many simultaneous streams.

use std::time::{Duration, Instant};

use super::daemon;
use super::data::{self, Handoff};
use super::drive::{self, Ctx, builtin, relay_latency, result};
use super::judge::{self, Case};
use super::live::{self, Live};
use super::observe::{Observation, max_latency};
use super::{Check, Client, Data, Scenario};
use crate::mock::RequestEnd;
use crate::pattern::Expected;
use crate::ring::ClientBehaviour;
use crate::transcript::Budget;
use crate::verdict::causes::known;
use crate::verdict::check::{self, format_duration, format_ns};
use crate::verdict::{AssertionResult, ScenarioResult, Verdict};

/// The quick stream's slowest event may take this long from the upstream to its client.
const LATENCY_LIMIT: Duration = Duration::from_secs(1);
/// How long the slow client stays paused once the quick stream has started, unless the quick
/// stream ends sooner: a daemon whose writes to the paused client hold up the others delays
/// the quick stream's events by about this much, well past `LATENCY_LIMIT`.
const HOLD: Duration = Duration::from_secs(3);
/// How long to wait for the daemon to stop taking the slow stream's upstream (its writes to
/// the paused client blocked) before the quick stream starts.
const FILL_WAIT: Duration = Duration::from_secs(5);
/// The slow stream's upstream writes stalled this long: the daemon is held up by its client.
const FILL_QUIET: Duration = Duration::from_millis(300);
/// The slow client's receive buffer: small, so the daemon's writes to it block soon.
const SLOW_RCVBUF: u32 = 4096;
/// Content pieces of the slow stream.
const PIECE: usize = 16 * 1024;
/// Pieces of the slow stream with an embedded mock: 8 MiB, more than loopback TCP buffers
/// (which autotune to a few MiB) can hold, so a daemon that blocks on a full socket does.
const PIECES: usize = 512;
/// How long a daemon gets to release client sockets after the last stream ended.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

fn prefixed(prefix: &str, assertions: Vec<AssertionResult>) -> Vec<AssertionResult> {
    assertions
        .into_iter()
        .map(|mut a| {
            a.name = format!("{prefix}: {}", a.name);
            a
        })
        .collect()
}

/// A client stops reading a large answer; meanwhile another stream's events must reach their
/// client promptly.
///
/// It waits on the daemon, not on fixed sleeps, so a busy machine does not change the verdict:
/// the quick stream starts once the daemon has stopped taking the slow stream's upstream (its
/// writes to the paused client are blocked, however large the buffers), and the slow client
/// resumes only when the quick stream has ended or `HOLD` has passed. A daemon that relays
/// each stream on its own finishes the quick stream meanwhile; one whose blocked write holds
/// up the others delivers nothing of it until the resume.
pub(super) fn slow_reader(ctx: &Ctx, sc: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let pieces = match ctx.mock.script_limit() {
        None => PIECES,
        Some(limit) => (limit / PIECE).clamp(1, PIECES),
    };
    let content = vec!["z".repeat(PIECE); pieces];
    let script = match ctx.mock.register_content_script(&content) {
        Ok(p) => p,
        Err(e) => {
            let what = format!("cannot register the slow stream's script with the mock: {e}");
            return drive::broken(ctx, sc, &what, started);
        }
    };
    let slow_handoff = data::build(Data::Standard, &script, &ctx.nonce(sc, 0));
    // Paused until resumed below; the ring resumes by itself only if that never comes.
    let longest_pause = FILL_WAIT + HOLD + ctx.limits.timeout;
    let behaviour = ClientBehaviour::slow_reader(1, longest_pause, SLOW_RCVBUF);
    let spec = ctx
        .spec(
            slow_handoff.bytes.clone(),
            ctx.limits.timeout + longest_pause,
        )
        .behaviour(behaviour);
    // The content script wraps each piece in an upstream chunk of well under 1 KiB more.
    let upstream = (PIECE as u64 + 1024) * content.len() as u64;
    let slow_reading = ctx.reading(Budget::for_answer(upstream, content.len() as u64));
    let mut slow = Live::start(
        &ctx.ring,
        spec,
        Client::ReadAll,
        ctx.limits.grace,
        &slow_reading,
    );
    // The pause begins with the first byte.
    while slow.received_bytes() == 0 && slow.step(Duration::from_millis(50)) {}
    if let Some(e) = slow.handoff_failure() {
        let what = format!("the slow stream's handoff failed: {e}");
        return drive::broken(ctx, sc, &what, started);
    }
    let paused_at = Instant::now();
    wait_until_held_up(ctx, slow_handoff.nonce.as_deref());

    let quick_spec = match builtin(sc.pattern) {
        Ok(s) => s,
        Err(e) => return drive::broken(ctx, sc, &e, started),
    };
    let nonce = ctx.nonce(sc, 1);
    let handoff = data::build(Data::Standard, sc.pattern, &nonce);
    let expected = quick_spec.expected(ctx.mock.settings(), Some(&nonce));
    let plan = quick_spec.plan(ctx.mock.settings(), Some(&nonce));
    let mut quick = Live::start(
        &ctx.ring,
        ctx.spec(handoff.bytes.clone(), ctx.limits.timeout),
        Client::ReadAll,
        ctx.limits.grace,
        &ctx.reading_for(&plan, &expected),
    );
    let hold_until = Instant::now() + HOLD;
    while Instant::now() < hold_until
        && quick.step(hold_until.saturating_duration_since(Instant::now()))
    {}
    slow.resume();
    let paused_for = paused_at.elapsed();
    let quick = quick.finish();
    let slow = slow.finish();
    if let Some(e) = live::handoff_failure(&quick) {
        let what = format!("the quick stream's handoff failed: {e}");
        return drive::broken(ctx, sc, &what, started);
    }

    let requests = match ctx.requests(Some(&nonce), Some(Duration::from_secs(2))) {
        Ok(r) => r,
        Err(e) => {
            let what = format!("cannot read the mock's request log: {e}");
            return drive::broken(ctx, sc, &what, started);
        }
    };
    let case = Case {
        scenario: Some(sc.name),
        obs: &quick,
        expected: &expected,
        handoff: &handoff,
        requests: &requests,
        stray_requests: 0,
        limits: ctx.limits,
    };
    let mut assertions = prefixed("quick stream", judge::judge(&case, &[Check::Outcome]));
    let relay = relay_latency(ctx, &quick_spec, &handoff, &quick, &requests);
    let latency = latency(relay.as_ref().and_then(max_latency), paused_for);
    if latency.verdict == Verdict::Fail {
        // A quick stream left silent beside the slow reader is that delay, not a cause of its own.
        for a in &mut assertions {
            if a.cause == Some(known::SILENT_HANG) || a.cause == Some(known::NEVER_CLOSED) {
                a.cause = Some(known::HEAD_OF_LINE);
            }
        }
    }
    assertions.push(latency.with_cause(known::HEAD_OF_LINE));
    assertions.extend(slow_stream(ctx, &slow, &slow_handoff, &content));
    result(ctx, sc, assertions, Some(&quick), relay.as_ref(), started)
}

/// Waits until the daemon stops taking the slow stream's upstream (the mock's writes for
/// `nonce` stall for `FILL_QUIET`: the daemon is blocked writing to the paused client), the
/// upstream has sent everything (a daemon that buffers without bound), or `FILL_WAIT` passed.
fn wait_until_held_up(ctx: &Ctx, nonce: Option<&str>) {
    let until = Instant::now() + FILL_WAIT;
    let mut seen = (usize::MAX, Instant::now());
    while Instant::now() < until {
        let Ok(records) = ctx.requests(nonce, None) else {
            return;
        };
        if let Some(r) = records.first() {
            if r.end != RequestEnd::InProgress {
                return;
            }
            if r.writes.len() != seen.0 {
                seen = (r.writes.len(), Instant::now());
            } else if seen.1.elapsed() >= FILL_QUIET {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn latency(max_ns: Option<u64>, paused_for: Duration) -> AssertionResult {
    let name = "relay latency beside a slow reader";
    match max_ns {
        None => AssertionResult::new(
            name,
            Verdict::Fail,
            "no event of the quick stream could be matched to the upstream's writes",
        ),
        Some(ns) if Duration::from_nanos(ns) <= LATENCY_LIMIT => AssertionResult::pass(
            name,
            format!(
                "while another client was not reading, the quick stream's slowest event reached \
                 its client {} after the upstream wrote it (limit {})",
                format_ns(ns),
                format_duration(LATENCY_LIMIT)
            ),
        ),
        Some(ns) => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "while another client was not reading (for {}), the quick stream's events \
                 reached its client up to {} after the upstream wrote them (limit {}): writes \
                 to one client hold up the others (head-of-line blocking); give each \
                 connection its own task or use non-blocking writes",
                format_duration(paused_for),
                format_ns(ns),
                format_duration(LATENCY_LIMIT)
            ),
        ),
    }
    .with_expected(format!("at most {}", format_duration(LATENCY_LIMIT)))
}

/// The slow stream, once its client reads again, gets everything.
fn slow_stream(
    ctx: &Ctx,
    obs: &Observation,
    handoff: &Handoff,
    content: &[String],
) -> Vec<AssertionResult> {
    let expected = Expected {
        kind: crate::pattern::ExpectedKind::Complete,
        content: content.concat(),
        pieces: content.to_vec(),
        done: true,
        finish_reason: Some("stop".to_owned()),
    };
    let case = Case {
        // What reached the upstream is checked on the quick stream; here only the relay.
        scenario: None,
        obs,
        expected: &expected,
        handoff,
        requests: &[],
        stray_requests: 0,
        limits: ctx.limits,
    };
    let out = judge::judge(&case, &[Check::Content, Check::Ending]);
    prefixed("slow stream", out)
}

/// Many simultaneous handoffs, each with its own nonce and so its own content.
pub(super) fn concurrent(ctx: &Ctx, sc: &Scenario, streams: usize) -> ScenarioResult {
    let started = Instant::now();
    let spec = match builtin(sc.pattern) {
        Ok(s) => s,
        Err(e) => return drive::broken(ctx, sc, &e, started),
    };
    let baseline = ctx
        .daemon
        .map(|d| daemon::client_sockets(d, ctx.mock.port()));
    let planned: Vec<(Handoff, Expected)> = (0..streams)
        .map(|k| {
            let nonce = ctx.nonce(sc, k);
            let handoff = data::build(Data::Standard, sc.pattern, &nonce);
            let expected = spec.expected(ctx.mock.settings(), Some(&nonce));
            (handoff, expected)
        })
        .collect();
    let live: Vec<Live> = planned
        .iter()
        .map(|(h, expected)| {
            let plan = spec.plan(ctx.mock.settings(), h.nonce.as_deref());
            let reading = ctx.reading_for(&plan, expected);
            let hspec = ctx.spec(h.bytes.clone(), ctx.limits.timeout);
            Live::start(
                &ctx.ring,
                hspec,
                Client::ReadAll,
                ctx.limits.grace,
                &reading,
            )
        })
        .collect();
    // Each stream's events wait in its own channel, so finishing them in turn loses nothing.
    let observed: Vec<Observation> = live.into_iter().map(Live::finish).collect();

    let mut assertions = Vec::new();
    let mut intact = 0;
    let mut reached = 0;
    let mut details = Vec::new();
    let mut crossed = Vec::new();
    // The causes of the broken streams: when they share one, the count below is that cause.
    let mut stream_causes = Vec::new();
    for (k, ((handoff, expected), obs)) in planned.iter().zip(&observed).enumerate() {
        if let Some(e) = live::handoff_failure(obs) {
            details.push(AssertionResult::new(
                format!("stream {k}: handoff"),
                Verdict::Fail,
                format!("the handoff failed: {e}"),
            ));
            continue;
        }
        let requests = ctx
            .requests(handoff.nonce.as_deref(), None)
            .unwrap_or_default();
        reached += usize::from(requests.len() == 1);
        let case = Case {
            scenario: Some(sc.name),
            obs,
            expected,
            handoff,
            requests: &requests,
            stray_requests: 0,
            limits: ctx.limits,
        };
        let judged = judge::judge(&case, &[Check::Outcome]);
        for a in judged.iter().filter(|a| a.verdict >= Verdict::NonStrict) {
            let cause = a.cause_or_default();
            if !stream_causes.contains(&cause) {
                stream_causes.push(cause);
            }
        }
        if judged.iter().all(|a| a.verdict < Verdict::NonStrict) {
            intact += 1;
        } else if details.len() < 3 {
            let failing = judged
                .into_iter()
                .filter(|a| a.verdict >= Verdict::NonStrict);
            details.extend(prefixed(&format!("stream {k}"), failing.collect()));
        }
        let content = String::from_utf8_lossy(obs.content());
        for (j, (other, _)) in planned.iter().enumerate() {
            let marker = other.nonce.as_deref().map(|n| format!("[{n}]"));
            if j != k && marker.is_some_and(|m| content.contains(&m)) {
                crossed.push((k, j));
            }
        }
    }
    // One cause for the count, the crossings and the streams shown: streams broken one way
    // that is not about content (e.g. left open after [DONE]) report that way; content mixed
    // up between streams is one cause however it shows (which streams cross, and whether a
    // nonce is among what crossed, depends on timing).
    let content = [
        known::CONTENT_MISSING,
        known::CONTENT_SHORT,
        known::CONTENT_ALTERED,
        known::CONTENT_UTF8,
    ];
    let broken = match stream_causes.as_slice() {
        [one] if crossed.is_empty() && !content.contains(one) => one.clone(),
        _ => known::STREAMS_NOT_INTACT,
    };
    assertions.push(
        check::count_is(
            "streams intact",
            "streams with exactly their own content, [DONE] and a close",
            streams,
            intact,
            Verdict::Fail,
        )
        .with_cause(broken.clone()),
    );
    assertions.push(check::count_is(
        "upstream requests",
        "handoffs whose nonce reached the upstream exactly once",
        streams,
        reached,
        Verdict::Fail,
    ));
    if let Some((k, j)) = crossed.first() {
        assertions.push(
            AssertionResult::new(
                "crosstalk",
                Verdict::Fail,
                format!(
                    "{} streams received content meant for another (stream {k} got stream {j}'s): \
                 the daemon mixes up its clients; keep every piece of per-stream state in the \
                 stream's own task or object",
                    crossed.len()
                ),
            )
            .with_cause(broken.clone()),
        );
    }
    // The failing streams shown are evidence of the count above, not causes of their own.
    assertions.extend(details.into_iter().map(|a| a.with_cause(broken.clone())));
    assertions.push(released(ctx, baseline));
    let first = observed.first();
    result(ctx, sc, assertions, first, None, started)
}

/// The daemon holds no more client sockets than before the streams.
fn released(ctx: &Ctx, baseline: Option<Result<usize, String>>) -> AssertionResult {
    let name = "client sockets released";
    let (daemon, before) = match (ctx.daemon, baseline) {
        (Some(d), Some(Ok(n))) => (d, n),
        (_, Some(Err(e))) => return check::info(name, format!("not checked: {e}")),
        _ => {
            return check::info(
                name,
                "not checked: give --daemon-pid (or use --daemon-cmd) so the runner can count \
                 the daemon's sockets",
            );
        }
    };
    let until = Instant::now() + RELEASE_WAIT;
    loop {
        match daemon::client_sockets(daemon, ctx.mock.port()) {
            Ok(now) if now <= before => {
                return AssertionResult::pass(
                    name,
                    format!("the daemon holds {now} client sockets, as before the streams"),
                );
            }
            Ok(now) if Instant::now() >= until => {
                return AssertionResult::new(
                    name,
                    Verdict::Fail,
                    format!(
                        "{} after every stream had ended, the daemon still holds {} more client \
                         sockets than before them ({before} → {now}): it does not close the \
                         client's fd when a stream ends (one leaked fd per connection)",
                        format_duration(RELEASE_WAIT),
                        now - before
                    ),
                )
                .with_expected(before.to_string())
                .with_received(now.to_string())
                .with_cause(known::FD_LEAK);
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return check::info(name, format!("not checked: {e}")),
        }
    }
}
