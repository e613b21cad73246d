//! The run's report: one serialisable structure, rendered as JSON ([`StressReport::json`]) and
//! for people ([`StressReport::human`]).
//!
//! JSON schema (version 1), every duration in nanoseconds unless its name says otherwise:
//!
//! ```text
//! { "version": 1,
//!   "daemon_death": { pid, how, during, output_tail } | null,
//!   "target":    { daemon, socket, upstream, pattern, pair, socket_type },
//!   "load":      { model: "closed"|"open", connections, concurrency, rate, ramp_up_ms,
//!                  duration_ms, timeout_ms, abort_rate, slow_readers, slow_pause_ms },
//!   "run":       { started, judged, peak_open, events, bytes, wall_seconds, interrupted,
//!                  ramp_planned_ms, ramp_actual_ms },
//!   "integrity": { held, failed, leak, outcomes: { <outcome>: { count, examples: [
//!                  { connection, nonce, bytes, detail } ] } } },
//!   "latency":   [ { name, count, min_ns, mean_ns, stdev_ns, p50_ns, p90_ns, p99_ns, p999_ns,
//!                    max_ns, percentiles: [[p, ns]…], hdr_base64 } ],
//!   "relay":     { streams_joined, waiting, off_plan, dropped, log_error },
//!   "daemon":    { pid, before, peak, after: { fds, rss_bytes, cpu_ns }, settle_ms,
//!                  cpu_seconds, client_sockets_held, leak: { verdict, reason }, error } | null,
//!   "client":    { cpu_seconds_loop_thread, cpu_seconds_process_run, cpu_seconds_process_total,
//!                  cpu_user_s, cpu_sys_s, ring_thread_busy_fraction, ring_thread_busy_peak,
//!                  ring_thread_saturated_s,
//!                  cpu_seconds_per_1000_streams, cpu_seconds_per_1000_events, peak_rss_bytes,
//!                  rss_before_bytes, rss_per_open_stream_bytes, embedded_mock },
//!   "limits":    { fd_limit, ephemeral_ports,
//!                  port_range: { low, high, ports, from: "system"|"STREAMCHECK_PORT_RANGE" }
//!                    | null,
//!                  pair_addresses,
//!                  ceiling: { streams, bound_by: "fds"|"ephemeral_ports", detail },
//!                  stopped_by: { kind: "fds"|"ephemeral_ports", open_streams, detail } | null,
//!                  daemon_backlog: { kind: "daemon_backlog", open_streams, detail } | null,
//!                  backlog_full, daemon_fd_limit, daemon_fd_limit_reached },
//!   "ring":      { completions, recv_submissions, enobufs, sq_backlogged, deferred_accepts },
//!   "timeline":  { interval_ms, run_end_ms, samples: [ { t_ms, open_streams, events,
//!                  daemon_fds, daemon_rss_bytes } ] },
//!   "notes":     [ "…" ] }
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::ceiling::{Ceiling, PortRangeInfo};
use super::driver::RunResult;
use super::integrity::{Outcome, Tally};
use super::latency::Summary;
use super::resources::{DaemonResources, LeakVerdict};
use super::setup::{Mock, Prepared};
use super::timeline::Timeline;
use super::{LimitHit, LoadModel, StressConfig};
use crate::verdict::DaemonDeath;

/// Facts about the client's environment gathered around the run.
pub struct Environment {
    /// RLIMIT_NOFILE after raising it.
    pub fd_limit: u64,
    /// The port range the pairs were planned with.
    pub port_range: Option<PortRangeInfo>,
    /// Source addresses the TCP pairs were spread over (`None` with AF_UNIX pairs).
    pub pair_addresses: Option<u32>,
    /// The most streams the client could hold open at once, and which limit sets it.
    pub ceiling: Ceiling,
    /// CPU of the whole process from set-up to the end of the run, ns.
    pub total_cpu_ns: u64,
    /// VmHWM, bytes.
    pub peak_rss_bytes: u64,
}

/// What a stress run found. See the [module docs](self) for the JSON form.
#[derive(Debug, Clone, Serialize)]
pub struct StressReport {
    /// Schema version: 1.
    pub version: u32,
    /// The daemon died during the run: how, when, and the end of its output. First, because
    /// it explains the rest.
    pub daemon_death: Option<DaemonDeath>,
    /// What was tested.
    pub target: TargetInfo,
    /// The load asked for.
    pub load: LoadInfo,
    /// What the run did.
    pub run: RunInfo,
    /// Every connection's outcome.
    pub integrity: IntegrityInfo,
    /// Every histogram, in the order of [`super::latency::Latencies::named`].
    pub latency: Vec<Summary>,
    /// How the relay-latency join went.
    pub relay: RelayInfo,
    /// The daemon's resources (`None` without a PID).
    pub daemon: Option<DaemonResources>,
    /// The client's own cost.
    pub client: ClientCost,
    /// Limits, and which one stopped the run.
    pub limits: Limits,
    /// The io_uring loop's counters.
    pub ring: RingInfo,
    /// Streams open, events received and the daemon's fds and RSS through the run, sampled
    /// every 100 ms (coarser past 512 samples), each sample covering the interval up to its
    /// `t_ms`: the most streams open, fds and RSS at a reading in it, the events received in
    /// it; the daemon's figures are `null` without its PID. Samples after `run_end_ms` show
    /// the daemon settling.
    pub timeline: Timeline,
    /// Things to know when reading the figures.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// The daemon's command line, or its socket.
    pub daemon: String,
    /// Its socket.
    pub socket: String,
    /// Its upstream, in words.
    pub upstream: String,
    /// The pattern normal connections asked for.
    pub pattern: String,
    /// `tcp` or `unix`.
    pub pair: &'static str,
    /// `seqpacket` or `stream`.
    pub socket_type: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadInfo {
    /// `closed` or `open`.
    pub model: &'static str,
    /// Connections planned (`null`: until the duration ends).
    pub connections: Option<u64>,
    /// Streams kept open (closed loop) or the cap on open streams (open loop).
    pub concurrency: u64,
    /// Arrivals per second (open loop).
    pub rate: Option<f64>,
    /// The ramp-up.
    pub ramp_up_ms: u64,
    /// How long connections were started for.
    pub duration_ms: Option<u64>,
    /// Each stream's deadline.
    pub timeout_ms: u64,
    /// Fraction of clients closing early.
    pub abort_rate: f64,
    /// Fraction of slow readers.
    pub slow_readers: f64,
    /// How long slow readers stop reading.
    pub slow_pause_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Connections started.
    pub started: u64,
    /// Connections judged (each has an outcome).
    pub judged: u64,
    /// The most streams open at once.
    pub peak_open: u64,
    /// SSE events received.
    pub events: u64,
    /// Bytes received.
    pub bytes: u64,
    /// From the first start to the last end.
    pub wall_seconds: f64,
    /// A signal (SIGINT, SIGTERM, SIGHUP) ended the run.
    pub interrupted: bool,
    /// The ramp-up asked for.
    pub ramp_planned_ms: f64,
    /// When the closed loop's ramp-up had started its last stream (`null` in an open loop, or
    /// when the run ended first).
    pub ramp_actual_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntegrityInfo {
    /// Every connection completed (or aborted as planned) and the daemon kept nothing.
    pub held: bool,
    /// Connections whose outcome breaks integrity.
    pub failed: u64,
    /// Whether the daemon leaked (from its resources; `unknown` without a PID).
    pub leak: LeakVerdict,
    /// Outcome name → count and examples; outcomes that did not occur are left out.
    pub outcomes: BTreeMap<Outcome, Tally>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayInfo {
    /// Streams whose events were timed against the mock's writes.
    pub streams_joined: u64,
    /// Streams the mock's log did not have (e.g. beyond its capacity).
    pub waiting: u64,
    /// Mock records whose writes did not follow the plan.
    pub off_plan: u64,
    /// Halves dropped because too many waited.
    pub dropped: u64,
    /// Why a remote mock's log could not be read.
    pub log_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientCost {
    /// CPU of the thread running the io_uring loop, during the run.
    pub cpu_seconds_loop_thread: f64,
    /// CPU of the whole process during the run (with `--daemon-cmd`, the embedded mock too).
    pub cpu_seconds_process_run: f64,
    /// CPU of the whole process from set-up to report, including reading a remote mock's log.
    pub cpu_seconds_process_total: f64,
    /// `cpu_seconds_process_run` split: user time (`getrusage(RUSAGE_SELF)` over the run).
    pub cpu_user_s: f64,
    /// … and system time: with 10,000 loopback pairs, most of the client's cost is the kernel's.
    pub cpu_sys_s: f64,
    /// The io_uring loop thread's CPU over the run's wall time (0 to 1).
    pub ring_thread_busy_fraction: f64,
    /// The same over its busiest window of about 100 ms.
    pub ring_thread_busy_peak: f64,
    /// Wall time of the windows in which the loop thread was at least 90% busy: while it is,
    /// the client, not the daemon, sets the pace, and figures from then bound the client.
    pub ring_thread_saturated_s: f64,
    /// Per 1,000 streams started and per 1,000 events: the process's CPU during the run, or
    /// the loop thread's with an embedded mock.
    pub cpu_seconds_per_1000_streams: f64,
    /// See `cpu_seconds_per_1000_streams`.
    pub cpu_seconds_per_1000_events: f64,
    /// VmHWM at the end.
    pub peak_rss_bytes: u64,
    /// RSS before the first stream.
    pub rss_before_bytes: u64,
    /// (RSS − RSS before) / open streams, at the sample with the most streams open.
    pub rss_per_open_stream_bytes: Option<f64>,
    /// The mock runs inside this process, so the process figures include it.
    pub embedded_mock: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// RLIMIT_NOFILE after raising the soft limit to the hard one.
    pub fd_limit: u64,
    /// Size of the local port range (loopback pairs need one port each per source address).
    pub ephemeral_ports: Option<u64>,
    /// The port range the pairs were planned with: the machine's, or `STREAMCHECK_PORT_RANGE`.
    pub port_range: Option<PortRangeInfo>,
    /// Loopback source addresses the TCP pairs were spread over, from 127.0.0.1 on, so that
    /// the ports do not bound the run (`null` with AF_UNIX pairs).
    pub pair_addresses: Option<u32>,
    /// The most streams the client could hold open at once, and which of its limits (the
    /// open-file limit, or the pairs' addresses × ports) sets it. A run that asked for more
    /// concurrency than this was bounded by the client, not the daemon.
    pub ceiling: Ceiling,
    /// The client limit (fds, ephemeral ports) that stopped the run.
    pub stopped_by: Option<LimitHit>,
    /// When the daemon's accept backlog was first found full.
    pub daemon_backlog: Option<LimitHit>,
    /// Handoffs that found it full.
    pub backlog_full: u64,
    /// The daemon's open-file limit, when its PID is known.
    pub daemon_fd_limit: Option<u64>,
    /// The daemon's fd count reached its open-file limit: that limit bounded the run.
    pub daemon_fd_limit_reached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RingInfo {
    /// Completions processed.
    pub completions: u64,
    /// Receive submissions (first arms and re-arms).
    pub recv_submissions: u64,
    /// Receives ended by an empty buffer ring.
    pub enobufs: u64,
    /// Submissions that waited for room in the SQ.
    pub sq_backlogged: u64,
    /// Loopback pairs whose accept waited.
    pub deferred_accepts: u64,
}

/// Assembles the report from the run's findings.
pub(super) fn build(
    config: &StressConfig,
    prep: &Prepared,
    r: RunResult,
    env: Environment,
) -> StressReport {
    let mut notes = Vec::new();
    let judged = r.integrity.total();
    let failed = r.integrity.failed();
    let leak = match &r.daemon {
        Some(d) => d.leak.clone(),
        None => LeakVerdict::Unknown,
    };
    if r.daemon.is_none() {
        notes.push(
            "no daemon PID (--daemon-pid): its fds, RSS and CPU were not watched, and leaks \
             were not looked for"
                .to_owned(),
        );
    }
    if r.integrity.get(Outcome::NotTaken).count > 0 {
        notes.push(format!(
            "whether the daemon took a handoff is checked on the first {} streams only (each \
             keeps one more fd until its first byte); later streams that got nothing count as \
             timed out",
            super::driver::DIAGNOSED_STREAMS
        ));
    }
    if matches!(config.upstream, super::Upstream::None) {
        notes.push(
            "--no-upstream: content is not compared; integrity is a 200 text/event-stream \
             response ending in [DONE] without error events"
                .to_owned(),
        );
    } else if config.pattern.is_some() {
        notes.push(
            "with --pattern the content carries no nonce: cross-talk shows as wrong content, \
             not attributed to a connection"
                .to_owned(),
        );
    }
    let wanted =
        (config.load.max_open() as u64).min(config.planned_connections().unwrap_or(u64::MAX));
    if wanted != u64::MAX && wanted > env.ceiling.streams {
        notes.push(format!(
            "the run asked for {wanted} concurrent streams, more than the client can hold \
             ({}): a limit of the client bounds it, not the daemon; {}",
            env.ceiling.streams, env.ceiling.detail
        ));
    }
    let embedded_mock = matches!(prep.mock, Mock::Embedded(..));
    let held = failed == 0 && !matches!(leak, LeakVerdict::Leak(_)) && r.daemon_death.is_none();
    let outcomes = r
        .integrity
        .iter()
        .filter(|(_, t)| t.count > 0)
        .map(|(o, t)| (o, t.clone()))
        .collect();
    let (model, concurrency, rate, ramp) = match config.load {
        LoadModel::Closed {
            concurrency,
            ramp_up,
        } => ("closed", concurrency as u64, None, ramp_up),
        LoadModel::Open {
            rate,
            ramp_up,
            max_open,
        } => ("open", max_open as u64, Some(rate), ramp_up),
    };
    let relay = prep.relay.as_ref();
    let cpu_run = r.process_cpu_ns as f64 / 1e9;
    // The client's own cost: the whole process, except that an embedded mock's threads are
    // not the client's.
    let client_cpu = if embedded_mock {
        r.thread_cpu_ns as f64 / 1e9
    } else {
        cpu_run
    };
    let per = |n: u64| {
        if n == 0 {
            0.0
        } else {
            client_cpu * 1000.0 / n as f64
        }
    };
    let daemon_fd_limit = r.daemon.as_ref().and_then(|d| d.fd_limit);
    let daemon_fd_limit_reached = r.daemon.as_ref().is_some_and(|d| d.fd_limit_reached());
    StressReport {
        version: 1,
        daemon_death: r.daemon_death.clone(),
        target: TargetInfo {
            daemon: prep.daemon_name.clone(),
            socket: prep.socket.display().to_string(),
            upstream: prep.mock.describe(),
            pattern: config
                .pattern
                .clone()
                .unwrap_or_else(|| "default (with nonce)".to_owned()),
            pair: match config.pair {
                crate::handoff::PairKind::Tcp => "tcp",
                crate::handoff::PairKind::Unix => "unix",
            },
            socket_type: config.socket_type.as_str(),
        },
        load: LoadInfo {
            model,
            connections: config.planned_connections(),
            concurrency,
            rate,
            ramp_up_ms: ramp.as_millis() as u64,
            duration_ms: config.duration.map(|d| d.as_millis() as u64),
            timeout_ms: config.timeout.as_millis() as u64,
            abort_rate: config.abort_rate,
            slow_readers: config.slow_readers,
            slow_pause_ms: config.slow_pause.as_millis() as u64,
        },
        run: RunInfo {
            started: r.started,
            judged,
            peak_open: r.peak_open,
            events: r.events,
            bytes: r.bytes,
            wall_seconds: r.wall_ns as f64 / 1e9,
            interrupted: r.interrupted,
            ramp_planned_ms: ramp.as_secs_f64() * 1e3,
            ramp_actual_ms: r.ramp_actual_ns.map(|ns| ns as f64 / 1e6),
        },
        integrity: IntegrityInfo {
            held,
            failed,
            leak,
            outcomes,
        },
        latency: r.latencies.summaries(),
        relay: RelayInfo {
            streams_joined: relay.map_or(0, |j| j.joined),
            waiting: relay.map_or(0, |j| j.waiting() as u64),
            off_plan: relay.map_or(0, |j| j.off_plan),
            dropped: relay.map_or(0, |j| j.dropped),
            log_error: relay.and_then(|j| j.log_error.clone()),
        },
        daemon: r.daemon,
        client: ClientCost {
            cpu_seconds_loop_thread: r.thread_cpu_ns as f64 / 1e9,
            cpu_seconds_process_run: cpu_run,
            cpu_seconds_process_total: env.total_cpu_ns as f64 / 1e9,
            cpu_user_s: r.process_user_ns as f64 / 1e9,
            cpu_sys_s: r.process_sys_ns as f64 / 1e9,
            ring_thread_busy_fraction: if r.wall_ns == 0 {
                0.0
            } else {
                (r.thread_cpu_ns as f64 / r.wall_ns as f64).min(1.0)
            },
            ring_thread_busy_peak: r.loop_busy.peak,
            ring_thread_saturated_s: r.loop_busy.saturated_ns as f64 / 1e9,
            cpu_seconds_per_1000_streams: per(r.started),
            cpu_seconds_per_1000_events: per(r.events),
            peak_rss_bytes: env.peak_rss_bytes,
            rss_before_bytes: r.rss_before,
            rss_per_open_stream_bytes: r.rss_per_open,
            embedded_mock,
        },
        limits: Limits {
            fd_limit: env.fd_limit,
            ephemeral_ports: env.port_range.map(|r| u64::from(r.ports)),
            port_range: env.port_range,
            pair_addresses: env.pair_addresses,
            ceiling: env.ceiling,
            stopped_by: r.stopped_by,
            daemon_backlog: r.backlog,
            backlog_full: r.backlog_full,
            daemon_fd_limit,
            daemon_fd_limit_reached,
        },
        ring: RingInfo {
            completions: r.ring.completions,
            recv_submissions: r.ring.recv_submissions,
            enobufs: r.ring.enobufs,
            sq_backlogged: r.ring.sq_backlogged,
            deferred_accepts: r.ring.deferred_accepts,
        },
        timeline: r.timeline,
        notes,
    }
}

impl StressReport {
    /// 0 when integrity held; 1 when it did not (a stream failed, the daemon leaked or died);
    /// 2 when a client limit (fds, ephemeral ports) stopped the run short of what was asked.
    pub fn exit_code(&self) -> u8 {
        if !self.integrity.held {
            return 1;
        }
        if self.limits.stopped_by.is_some() {
            2
        } else {
            0
        }
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
