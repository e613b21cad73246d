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
use crate::mock::{HttpVersion, RequestEnd, RequestRecord, WriteRecord};
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
/// Long enough that a daemon merely starved of CPU on a loaded machine is not taken for one
/// blocked on its paused client (300 ms was, once, and its quick stream then went through).
const FILL_QUIET: Duration = Duration::from_secs(1);
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
    let slow_requests = ctx
        .requests(slow_handoff.nonce.as_deref(), None)
        .unwrap_or_default();
    let delay = QuickDelay {
        from_produced: relay.as_ref().and_then(max_latency),
        from_sent: requests
            .first()
            .and_then(|r| max_latency(&quick.relay_latency(&plan, &as_sent(&r.writes)))),
        send_wait: requests.first().map_or(0, longest_send_wait),
        sent_but_none_received: quick.content().is_empty()
            && requests
                .first()
                .is_some_and(|r| r.writes.iter().any(|w| w.sent_ns.is_some())),
        // The same client address and port: the same connection to the mock.
        shared_connection: match (requests.first(), slow_requests.first()) {
            (Some(q), Some(s)) => q.peer.is_some() && q.peer == s.peer,
            _ => false,
        },
    };
    let latency = latency(&delay, paused_for);
    let cause = if window_held(&delay) {
        known::HTTP2_WINDOW_HELD
    } else {
        known::HEAD_OF_LINE
    };
    if latency.verdict == Verdict::Fail {
        // A quick stream left silent beside the slow reader is that delay, not a cause of its own.
        for a in &mut assertions {
            if a.cause == Some(known::SILENT_HANG) || a.cause == Some(known::NEVER_CLOSED) {
                a.cause = Some(cause.clone());
            }
        }
    }
    assertions.push(latency.with_cause(cause));
    assertions.extend(slow_stream(ctx, &slow, &slow_handoff, &content));
    let r = result(ctx, sc, assertions, Some(&quick), relay.as_ref(), started);
    // The quick stream's: the one whose delay the verdict is about.
    drive::with_timeline(r, &quick, &requests, relay.as_ref())
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

/// Where the quick stream's time went: its slowest event counted from when the upstream
/// produced it and from when the upstream could send it, and the longest the upstream waited.
struct QuickDelay {
    from_produced: Option<u64>,
    from_sent: Option<u64>,
    send_wait: u64,
    /// The upstream sent the quick stream at least one write, and its client got no content.
    sent_but_none_received: bool,
    /// Both streams' upstream requests came over one connection.
    shared_connection: bool,
}

/// The writes with each stamped when it could go out (when it was produced if that is unknown).
fn as_sent(writes: &[WriteRecord]) -> Vec<WriteRecord> {
    writes
        .iter()
        .map(|w| WriteRecord {
            ts_ns: w.sent_ns.unwrap_or(w.ts_ns),
            ..*w
        })
        .collect()
}

/// The longest any write of `request` waited between being produced and being able to go out;
/// a write that never could waited until the request ended. Only HTTP/2 has a wait: on
/// HTTP/1.1 the mock's writes go out as they are produced.
fn longest_send_wait(request: &RequestRecord) -> u64 {
    if request.http_version != HttpVersion::Http2 {
        return 0;
    }
    request
        .writes
        .iter()
        .filter_map(|w| {
            w.sent_ns
                .or(request.end_ns)
                .map(|s| s.saturating_sub(w.ts_ns))
        })
        .max()
        .unwrap_or(0)
}

/// The upstream's own stall, as a cause, with its fix. Only HTTP/2 writes wait to go out.
fn upstream_stall(delay: &QuickDelay) -> String {
    let wait = format_ns(delay.send_wait);
    if delay.shared_connection {
        format!(
            "the upstream could not send for {wait}: the connection's HTTP/2 window was held by \
             the stalled stream (both streams share one HTTP/2 connection to the upstream, and \
             the stalled stream's unread data fills the connection's flow-control window, so no \
             DATA of another stream can be sent); keep reading every upstream stream into a \
             bounded buffer of its own (and reset the upstream stream when its client stays \
             stalled too long), or give streams separate HTTP/2 connections, or a connection \
             window well above what one stream can hold"
        )
    } else {
        format!(
            "the upstream could not send for {wait}: the HTTP/2 flow-control window of the quick \
             stream's connection stayed closed (the daemon did not read the data that filled \
             it, or announced no room for it); read every upstream stream promptly into a \
             bounded buffer of its own"
        )
    }
}

/// Whether the quick stream's delay went upstream: its writes waited for HTTP/2 send capacity
/// past the limit, and what could go out was relayed promptly.
fn window_held(delay: &QuickDelay) -> bool {
    let limit = LATENCY_LIMIT.as_nanos();
    match delay.from_produced {
        None => u128::from(delay.send_wait) > limit,
        Some(ns) => {
            u128::from(ns) > limit && delay.from_sent.is_some_and(|d| u128::from(d) <= limit)
        }
    }
}

fn latency(delay: &QuickDelay, paused_for: Duration) -> AssertionResult {
    let name = "relay latency beside a slow reader";
    let limit = LATENCY_LIMIT.as_nanos();
    match delay.from_produced {
        None if u128::from(delay.send_wait) > limit => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "while another client was not reading (for {}), no event of the quick stream \
                 reached its client: {}",
                format_duration(paused_for),
                upstream_stall(delay)
            ),
        ),
        None if delay.sent_but_none_received => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "while another client was not reading (for {}), no event of the quick stream \
                 reached its client, though the upstream sent its writes within {} of \
                 producing them: the daemon held them; writes to one client hold up the \
                 others (head-of-line blocking); give each connection its own task or use \
                 non-blocking writes",
                format_duration(paused_for),
                format_ns(delay.send_wait)
            ),
        ),
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
        // The daemon relayed promptly what the upstream could send: the time went upstream.
        Some(ns) if delay.from_sent.is_some_and(|d| u128::from(d) <= limit) => {
            AssertionResult::new(
                name,
                Verdict::Fail,
                format!(
                    "while another client was not reading (for {}), the quick stream's events \
                     reached its client up to {} after the upstream produced them (limit {}), \
                     at most {} after they could leave it: {}",
                    format_duration(paused_for),
                    format_ns(ns),
                    format_duration(LATENCY_LIMIT),
                    format_ns(delay.from_sent.unwrap_or(0)),
                    upstream_stall(delay)
                ),
            )
        }
        Some(ns) => {
            let also = if u128::from(delay.send_wait) > limit {
                format!("; besides, {}", upstream_stall(delay))
            } else {
                String::new()
            };
            AssertionResult::new(
                name,
                Verdict::Fail,
                format!(
                    "while another client was not reading (for {}), the quick stream's events \
                     reached its client up to {} after the upstream sent them (limit {}): \
                     writes to one client hold up the others (head-of-line blocking); give \
                     each connection its own task or use non-blocking writes{also}",
                    format_duration(paused_for),
                    format_ns(delay.from_sent.unwrap_or(ns)),
                    format_duration(LATENCY_LIMIT)
                ),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_secs(3);

    fn delay(from_produced: u64, from_sent: u64, send_wait: u64, shared: bool) -> QuickDelay {
        QuickDelay {
            from_produced: Some(from_produced),
            from_sent: Some(from_sent),
            send_wait,
            sent_but_none_received: false,
            shared_connection: shared,
        }
    }

    #[test]
    fn a_delay_spent_waiting_for_the_shared_window_is_put_down_to_it() {
        let a = latency(&delay(3_200_000_000, 5_000_000, 3_195_000_000, true), PAUSE);
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(
            a.message.contains("could not send for 3.19 s"),
            "{}",
            a.message
        );
        assert!(a.message.contains("window was held by the stalled stream"));
        assert!(!a.message.contains("head-of-line"), "{}", a.message);
        let apart = latency(
            &delay(3_200_000_000, 5_000_000, 3_195_000_000, false),
            PAUSE,
        );
        assert!(
            apart.message.contains("could not send"),
            "{}",
            apart.message
        );
        assert!(!apart.message.contains("held by the stalled stream"));
    }

    #[test]
    fn a_delay_the_daemon_added_gets_the_head_of_line_advice_alone() {
        let a = latency(&delay(3_200_000_000, 3_199_000_000, 80_000, true), PAUSE);
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(a.message.contains("head-of-line blocking"), "{}", a.message);
        assert!(!a.message.contains("could not send"), "{}", a.message);
    }

    #[test]
    fn a_delay_with_both_causes_names_both() {
        let a = latency(
            &delay(5_000_000_000, 2_000_000_000, 3_000_000_000, true),
            PAUSE,
        );
        assert!(a.message.contains("head-of-line blocking"), "{}", a.message);
        assert!(
            a.message
                .contains("besides, the upstream could not send for 3.00 s")
        );
    }

    #[test]
    fn a_prompt_stream_passes_whatever_the_wait() {
        let a = latency(&delay(400_000_000, 1_000_000, 399_000_000, true), PAUSE);
        assert_eq!(a.verdict, Verdict::Pass, "{}", a.message);
    }
}
