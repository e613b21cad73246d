//! Running one scenario: the context every scenario shares, and the drivers for single
//! streams, the socket-type check and the unreachable backend.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::daemon::{self, DaemonProcess};
use super::data::{self, Handoff};
use super::judge::{self, Case, Limits};
use super::live::Reading;
use super::mockio::Mock;
use super::observe::Observation;
use super::{Check, Data, Scenario, live};
use crate::handoff::{HandoffError, PairKind, SocketType};
use crate::mock::RequestRecord;
use crate::pattern::{self, BuiltinSpec, Expected, ExpectedKind, UpstreamPlan};
use crate::ring::{HandoffSpec, RingHandle};
use crate::transcript::{Budget, ReadLimits, RelayLatency};
use crate::verdict::WireLimits;
use crate::verdict::causes::known;
use crate::verdict::{AssertionResult, ScenarioResult, Strictness, Verdict};

/// How long the mock's log is waited on for a request to end when a check reads its writes.
const LOG_WAIT: Duration = Duration::from_secs(2);

/// How to start a second instance of the daemon (for the unreachable backend).
pub(super) struct SecondDaemon {
    /// The `--daemon-cmd` template.
    pub template: String,
    /// Environment, `OPENAI_API_BASE` excepted (set per instance).
    pub env: Vec<(&'static str, String)>,
    /// Where its socket and log go.
    pub dir: PathBuf,
    /// Whether the first instance's upstream is TLS (the second gets the same scheme).
    pub https: bool,
    /// How long it may take to create its socket.
    pub start_timeout: Duration,
}

/// What every scenario of a run shares.
pub(super) struct Ctx {
    pub ring: RingHandle,
    pub mock: Arc<Mock>,
    pub socket: Arc<Path>,
    pub socket_type: SocketType,
    pub pair: PairKind,
    pub read: ReadLimits,
    pub limits: Limits,
    pub strictness: Strictness,
    /// Prefix of every nonce of this run.
    pub tag: String,
    /// The daemon's processes, when known (for their sockets).
    pub daemon: Option<daemon::Processes>,
    /// How to start a second instance of the daemon (`--daemon-cmd` with `{socket}`), or why
    /// none can be started.
    pub second: Result<SecondDaemon, String>,
    /// Second instances started so far (each gets its own socket and log).
    pub instances: AtomicU64,
}

impl Ctx {
    /// A fresh nonce for stream `k` of `sc`.
    pub fn nonce(&self, sc: &Scenario, k: usize) -> String {
        format!("{}-{}-{k}", self.tag, sc.id.replace('.', "_"))
    }

    /// A handoff of `data` to the daemon with the run's socket type and pair.
    pub fn spec(&self, data: Vec<u8>, deadline: Duration) -> HandoffSpec {
        HandoffSpec::new(self.socket.clone(), data)
            .socket_type(self.socket_type)
            .pair(self.pair)
            .deadline(deadline)
    }

    /// How to read a stream whose expected answer allows `answer`.
    pub fn reading(&self, answer: Budget) -> Reading {
        Reading {
            options: self.read.options(answer),
            wire: WireLimits {
                keep_bytes: self.read.keep_bytes,
                ..WireLimits::default()
            },
        }
    }

    /// How to read a stream of `plan` whose daemon should relay `expected`.
    pub fn reading_for(&self, plan: &UpstreamPlan, expected: &Expected) -> Reading {
        let upstream: u64 = plan.writes.iter().map(|w| w.bytes.len() as u64).sum();
        self.reading(Budget::for_answer(upstream, expected.pieces.len() as u64))
    }

    /// The mock's log for `nonce`, after waiting up to `wait` for the requests to end.
    pub fn requests(
        &self,
        nonce: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<Vec<RequestRecord>, String> {
        let Some(nonce) = nonce else {
            return Ok(Vec::new());
        };
        match wait {
            Some(w) => self.mock.wait_for_end(nonce, w),
            None => self.mock.requests_for(nonce),
        }
    }
}

/// The catalog's pattern for `spec`; catalog specs are checked by a unit test.
pub(super) fn builtin(spec: &str) -> Result<BuiltinSpec, String> {
    pattern::parse(spec)
        .map_err(|e| e.to_string())?
        .builtin()
        .ok_or_else(|| format!("`{spec}` is a script, not a catalog pattern"))
}

/// A result for `sc` with `assertions`, the stream's timings and wire bytes, judged.
pub(super) fn result(
    ctx: &Ctx,
    sc: &Scenario,
    assertions: Vec<AssertionResult>,
    obs: Option<&Observation>,
    relay: Option<&RelayLatency>,
    started: Instant,
) -> ScenarioResult {
    let mut r = ScenarioResult::new(sc.id, sc.name, sc.category.name(), sc.description)
        .with_assertions(assertions)
        .with_elapsed(started.elapsed());
    if let Some(obs) = obs {
        r = r.with_timings(obs.timings(relay)).with_wire(obs.wire());
    }
    r.judged(ctx.strictness)
}

/// A scenario that could not run its handoff.
fn handoff_failed(ctx: &Ctx, sc: &Scenario, e: &HandoffError, started: Instant) -> ScenarioResult {
    let a = AssertionResult::new("handoff", Verdict::Fail, format!("the handoff failed: {e}"));
    result(ctx, sc, vec![a], None, None, started)
}

/// A scenario whose setup failed (e.g. the mock's log could not be read).
pub(super) fn broken(ctx: &Ctx, sc: &Scenario, what: &str, started: Instant) -> ScenarioResult {
    let a = AssertionResult::new("setup", Verdict::Fail, what.to_owned());
    result(ctx, sc, vec![a], None, None, started)
}

/// Extra deadline a pattern needs beyond `--timeout` (a stall's silence).
fn extra_time(spec: &BuiltinSpec, ctx: &Ctx) -> Duration {
    match spec.expected(ctx.mock.settings(), None).kind {
        ExpectedKind::Stall { silence } => silence,
        _ => Duration::ZERO,
    }
}

/// Why a single-stream scenario stopped before it could be judged.
enum Stop {
    /// The handoff failed: nothing reached the daemon.
    Handoff(HandoffError),
    /// Something else; the result says what.
    Result(Box<ScenarioResult>),
}

/// One handoff on the run's socket, judged by `sc.checks`.
pub(super) fn single(ctx: &Ctx, sc: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    match single_on(ctx, sc, ctx.spec(Vec::new(), Duration::ZERO)) {
        Ok(r) => r,
        Err(Stop::Result(r)) => *r,
        Err(Stop::Handoff(e)) => handoff_failed(ctx, sc, &e, started),
    }
}

/// [`single`] with a base spec (socket, socket type) whose data and deadline it fills in.
fn single_on(ctx: &Ctx, sc: &Scenario, base: HandoffSpec) -> Result<ScenarioResult, Stop> {
    let started = Instant::now();
    let spec =
        builtin(sc.pattern).map_err(|e| Stop::Result(Box::new(broken(ctx, sc, &e, started))))?;
    let nonce = ctx.nonce(sc, 0);
    let handoff = data::build(sc.data, sc.pattern, &nonce);
    let expected = spec.expected(ctx.mock.settings(), handoff.nonce.as_deref());
    let mut hspec = base;
    hspec.data = handoff.bytes.clone();
    hspec.deadline = ctx.limits.timeout + extra_time(&spec, ctx);
    let plan = spec.plan(ctx.mock.settings(), handoff.nonce.as_deref());
    let reading = ctx.reading_for(&plan, &expected);
    let obs = live::run(&ctx.ring, hspec, sc.client, ctx.limits.grace, &reading)
        .map_err(Stop::Handoff)?;
    let wait = sc.checks.iter().find_map(|c| match c {
        Check::HeadTiming | Check::RelayedIncrementally => Some(LOG_WAIT),
        Check::UpstreamCancelled { within_ms } => {
            Some(Duration::from_millis(*within_ms) + Duration::from_millis(500))
        }
        _ => None,
    });
    let requests = ctx.requests(handoff.nonce.as_deref(), wait).map_err(|e| {
        let what = format!("cannot read the mock's request log: {e}");
        Stop::Result(Box::new(broken(ctx, sc, &what, started)))
    })?;
    // Evidence of data lost on the way: looked for only where it decides a message.
    let stray_requests = match (obs.sent_ns(), requests.is_empty()) {
        (Some(sent), true) if sc.checks.contains(&Check::ProcessedOrRejected) => ctx
            .mock
            .requests_without_nonce(sent, obs.end_ns)
            .map_err(|e| {
                let what = format!("cannot read the mock's request log: {e}");
                Stop::Result(Box::new(broken(ctx, sc, &what, started)))
            })?,
        _ => 0,
    };
    let case = Case {
        scenario: Some(sc.name),
        obs: &obs,
        expected: &expected,
        handoff: &handoff,
        requests: &requests,
        stray_requests,
        limits: ctx.limits,
    };
    let assertions = judge::judge(&case, sc.checks);
    let relay = relay_latency(ctx, &spec, &handoff, &obs, &requests);
    let r = result(ctx, sc, assertions, Some(&obs), relay.as_ref(), started);
    Ok(with_timeline(r, &obs, &requests, relay.as_ref()))
}

/// `r` with the timeline of `obs` against the upstream writes of its request (the first of
/// `requests`), when the handoff completed.
pub(super) fn with_timeline(
    r: ScenarioResult,
    obs: &Observation,
    requests: &[RequestRecord],
    relay: Option<&RelayLatency>,
) -> ScenarioResult {
    let writes = requests.first().map_or(&[][..], |q| &q.writes);
    match obs.timeline(writes, relay) {
        Some(timeline) => r.with_timeline(timeline),
        None => r,
    }
}

/// Relay latency of the content, when the mock's log has the writes.
pub(super) fn relay_latency(
    ctx: &Ctx,
    spec: &BuiltinSpec,
    handoff: &Handoff,
    obs: &Observation,
    requests: &[RequestRecord],
) -> Option<RelayLatency> {
    let request = requests.first()?;
    let plan = spec.plan(ctx.mock.settings(), handoff.nonce.as_deref());
    Some(obs.relay_latency(&plan, &request.writes))
}

/// The socket-type conformance check: one handoff over `SOCK_SEQPACKET` whatever the run uses.
/// Also returns the handoff's error, which tells the runner how to reach the daemon.
pub(super) fn socket_type(ctx: &Ctx, sc: &Scenario) -> (ScenarioResult, Option<HandoffError>) {
    let started = Instant::now();
    let base = ctx
        .spec(Vec::new(), Duration::ZERO)
        .socket_type(SocketType::SeqPacket);
    match single_on(ctx, sc, base) {
        Ok(mut r) => {
            r.assertions.insert(
                0,
                AssertionResult::pass(
                    "socket type",
                    "the daemon accepted a SOCK_SEQPACKET connection and its handoff",
                ),
            );
            (r.judged(ctx.strictness), None)
        }
        Err(Stop::Handoff(e)) if e.is_wrong_socket_type() => {
            let a = AssertionResult::new(
                "socket type",
                Verdict::Fail,
                format!("{e}; the other scenarios run over SOCK_STREAM"),
            )
            .with_expected("SOCK_SEQPACKET")
            .with_received("SOCK_STREAM")
            .with_cause(known::SOCKET_TYPE);
            (result(ctx, sc, vec![a], None, None, started), Some(e))
        }
        Err(Stop::Handoff(e)) => (handoff_failed(ctx, sc, &e, started), Some(e)),
        Err(Stop::Result(r)) => (*r, None),
    }
}

/// One handoff to a second instance of the daemon whose upstream is a closed port.
pub(super) fn unreachable(ctx: &Ctx, sc: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let second = match &ctx.second {
        Ok(second) => second,
        Err(reason) => {
            return ScenarioResult::skipped(
                sc.id,
                sc.name,
                sc.category.name(),
                sc.description,
                reason.as_str(),
            );
        }
    };
    let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        // The listener is dropped here: nothing listens on the port any more.
        Ok(addr) => addr.port(),
        Err(e) => return broken(ctx, sc, &format!("cannot pick a closed port: {e}"), started),
    };
    let scheme = if second.https { "https" } else { "http" };
    let backend = format!("{scheme}://127.0.0.1:{port}/v1");
    let n = ctx.instances.fetch_add(1, Ordering::Relaxed);
    let socket = second.dir.join(format!("unreachable-{n}.sock"));
    let log = second.dir.join(format!("unreachable-{n}.log"));
    let mut env = second.env.clone();
    env.push(("OPENAI_API_BASE", backend.clone()));
    let command = daemon::substitute(&second.template, &socket, &backend);
    let mut instance =
        match DaemonProcess::start(command, &env, &socket, &log, second.start_timeout) {
            Ok(d) => d,
            Err(e) => {
                let failure = AssertionResult::new(
                    "second instance started",
                    Verdict::Fail,
                    daemon::second_start_failure(&e),
                );
                return result(ctx, sc, vec![failure], None, None, started);
            }
        };
    let nonce = ctx.nonce(sc, 0);
    let handoff = data::build(Data::Standard, sc.pattern, &nonce);
    let hspec = HandoffSpec::new(Arc::<Path>::from(socket.as_path()), handoff.bytes.clone())
        .socket_type(ctx.socket_type)
        .pair(ctx.pair)
        .deadline(ctx.limits.timeout);
    // Nothing answers upstream: room for an error response only.
    let reading = ctx.reading(Budget::for_answer(0, 0));
    let obs = match live::run(&ctx.ring, hspec, sc.client, ctx.limits.grace, &reading) {
        Ok(obs) => obs,
        Err(e) => return handoff_failed(ctx, sc, &e, started),
    };
    // Judged against no pattern: nothing answers upstream.
    let expected = pattern::Expected {
        kind: ExpectedKind::UpstreamError {
            status: 0,
            message: String::new(),
        },
        content: String::new(),
        pieces: Vec::new(),
        done: false,
        finish_reason: None,
    };
    let case = Case {
        scenario: Some(sc.name),
        obs: &obs,
        expected: &expected,
        handoff: &handoff,
        requests: &[],
        stray_requests: 0,
        limits: ctx.limits,
    };
    let mut assertions = judge::judge(&case, sc.checks);
    if let Some(status) = instance.exit_status() {
        assertions.push(AssertionResult::new(
            "daemon alive",
            Verdict::Fail,
            format!(
                "the daemon exited ({status}) when its upstream could not be reached; its output \
                 ends with:\n{}",
                instance.log_tail(10)
            ),
        ));
    }
    instance.stop(Duration::from_secs(5));
    let r = result(ctx, sc, assertions, Some(&obs), None, started);
    with_timeline(r, &obs, &[], None)
}
