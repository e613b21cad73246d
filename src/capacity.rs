//! `streamcheck capacity`: the most concurrent streams a daemon sustains within its
//! service-level objectives, found by search.
//!
//! Each step is a `stress` run ([`step`]): `C` streams kept open (closed loop) for the warm-up
//! and the hold, the first `C` spread over the warm-up, only streams started after the warm-up
//! timed. Each step gets a fresh daemon (and mock) unless `--reuse-daemon`, so a leak or a
//! wedged daemon from one step cannot fail the next. The steps grow geometrically until one
//! breaks an objective ([`slo`]), then bisect to the resolution ([`search`]).
//!
//! The client never reports its own limit as the daemon's: a step it could not judge (its
//! open-file limit, its io_uring loop saturated, the machine's CPUs taken by streamcheck
//! itself) is labelled client-bound, and an answer above which only such steps exist is "at
//! least N".

mod html;
pub mod search;
pub mod slo;
pub mod step;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::handoff::{PairKind, SocketType};
use crate::mock::{MockConfig, MockHandle};
use crate::stress::{
    DaemonSpec, LoadModel, StartedDaemon, StressConfig, StressError, Upstream, ceiling, resources,
};
use search::{Bounds, Outcome, Search};
use slo::Slo;
use step::{Step, group_digits};

/// Everything a search is asked to do.
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    /// The daemon: started per step (`Command`), or running (`Running`, implies reuse).
    pub daemon: DaemonSpec,
    /// Its upstream.
    pub upstream: Upstream,
    /// Start one daemon for the whole search instead of one per step.
    pub reuse_daemon: bool,
    /// What must hold.
    pub slos: Vec<Slo>,
    /// The first step (`start`), growth factor, resolution; `max` is lowered to what the
    /// client can hold.
    pub bounds: Bounds,
    /// Before each step's measured part: the streams are started over it, not timed.
    pub warmup: Duration,
    /// The measured part of each step.
    pub hold: Duration,
    /// Each stream's deadline.
    pub timeout: Duration,
    /// How long the daemon gets after a step to release what it used.
    pub settle: Duration,
    pub pair: PairKind,
    pub socket_type: SocketType,
}

/// The search's result. JSON schema (version 1):
///
/// ```text
/// { "version": 1, "daemon", "slos": [ { text, metric, stat, op, limit, fraction } ],
///   "search": { start, growth, resolution, max, max_because, warmup_ms, hold_ms },
///   "steps": [ { concurrency, outcome: "held"|"broke"|"client_bound", slos: [ { slo, value,
///                shown, met } ], broke_because, client_bound, peak_open, streams, failed,
///                daemon_rss_bytes, daemon_fds, daemon_cpu_seconds, client_cpu_seconds,
///                client_loop_busy, machine_busy, machine_cpu_seconds, seconds,
///                stress: <stress report> } ],
///   "answer": { capacity, at_least, limited_by, at, text }, "interrupted", "stopped_by",
///   "seconds" }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub version: u32,
    /// The daemon, as run.
    pub daemon: String,
    pub slos: Vec<Slo>,
    pub search: SearchInfo,
    /// In the order they ran.
    pub steps: Vec<Step>,
    pub answer: Answer,
    /// A signal ended the search early.
    pub interrupted: bool,
    /// A step that could not run ended the search early (the daemon did not start, …).
    pub stopped_by: Option<String>,
    /// Wall time of the whole search.
    pub seconds: f64,
}

/// The search's parameters, as used.
#[derive(Debug, Clone, Serialize)]
pub struct SearchInfo {
    pub start: u64,
    pub growth: f64,
    pub resolution: f64,
    /// The most streams the client could try.
    pub max: u64,
    /// What set `max`, in words.
    pub max_because: String,
    pub warmup_ms: u64,
    pub hold_ms: u64,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The most concurrent streams that held every objective (`None`: not even one stream).
    pub capacity: Option<u64>,
    /// Nothing above `capacity` could be judged: the true capacity may be higher.
    pub at_least: bool,
    /// Why the step above failed: an objective with its figure, the daemon's death, or the
    /// client's limit.
    pub limited_by: Option<String>,
    /// The concurrency of that step.
    pub at: Option<u64>,
    /// The answer in one sentence.
    pub text: String,
}

/// Runs the search; `on_step` sees each step as it finishes. A signal (`stop`) ends it with the
/// best bound found so far.
pub fn run(
    config: &CapacityConfig,
    stop: &AtomicBool,
    on_step: &mut dyn FnMut(&Step),
) -> Result<CapacityReport, StressError> {
    let began = Instant::now();
    let fd_limit = resources::raise_fd_limit();
    let (max, max_because) = client_max(config, fd_limit)?;
    let bounds = Bounds {
        max,
        ..config.bounds
    };
    let shared = if config.reuse_daemon {
        Some(Shared::start(config)?)
    } else {
        None
    };
    let (daemon, upstream) = match &shared {
        Some(s) => (s.daemon_spec(), s.upstream()),
        None => (config.daemon.clone(), config.upstream.clone()),
    };

    let mut search = Search::new(bounds);
    let mut steps: Vec<Step> = Vec::new();
    let mut interrupted = false;
    let mut stopped_by = None;
    while let Some(concurrency) = search.next() {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let step = match step::run(config, &daemon, &upstream, concurrency, stop) {
            Ok(Some(step)) => step,
            Ok(None) => {
                interrupted = true;
                break;
            }
            // Before any step: a usage or environment error, nothing to report.
            Err(e) if steps.is_empty() => return Err(e),
            // Midway: the steps so far still answer, with why the search stopped.
            Err(e) => {
                stopped_by = Some(format!(
                    "the step of {} streams could not run: {e}",
                    group_digits(concurrency)
                ));
                break;
            }
        };
        search.record(concurrency, step.outcome);
        on_step(&step);
        let died = step.stress.daemon_death.is_some();
        steps.push(step);
        if died && shared.is_some() {
            // One daemon for the whole search: nothing after its death would be measured.
            break;
        }
    }
    let mut answer = answer(
        &search,
        &steps,
        interrupted || stopped_by.is_some(),
        &max_because,
    );
    if let Some(why) = &stopped_by {
        answer.text = format!("{} — the search stopped: {why}", answer.text);
    }
    Ok(CapacityReport {
        version: 1,
        daemon: describe(&config.daemon),
        slos: config.slos.clone(),
        search: SearchInfo {
            start: bounds.start,
            growth: bounds.growth,
            resolution: bounds.resolution,
            max: bounds.max,
            max_because,
            warmup_ms: config.warmup.as_millis() as u64,
            hold_ms: config.hold.as_millis() as u64,
        },
        steps,
        answer,
        interrupted,
        stopped_by,
        seconds: began.elapsed().as_secs_f64(),
    })
}

/// The most streams the client can try: what `stress` plans as its ceiling (its open-file
/// limit with every handoff in flight; the pairs spread over loopback addresses so that ports
/// do not bound it). An explicit `--max` is tried as given: a step past the real limit is
/// labelled client-bound.
fn client_max(config: &CapacityConfig, fd_limit: u64) -> Result<(u64, String), StressError> {
    if config.bounds.max != u64::MAX {
        let max = config.bounds.max;
        return Ok((max, format!("--max {}", group_digits(max))));
    }
    let probe = StressConfig {
        load: LoadModel::Closed {
            concurrency: usize::MAX,
            ramp_up: Duration::ZERO,
        },
        pair: config.pair,
        ..StressConfig::new(config.daemon.clone(), config.upstream.clone(), u64::MAX, 1)
    };
    let fds_open = resources::fd_count(std::process::id()).unwrap_or(0);
    let plan = ceiling::plan(&probe, fd_limit, fds_open, ceiling::port_range()?);
    Ok((plan.ceiling.streams, plan.ceiling.detail))
}

fn answer(search: &Search, steps: &[Step], interrupted: bool, max_because: &str) -> Answer {
    let step_at = |c: u64| steps.iter().rev().find(|s| s.concurrency == c);
    let held = search.held();
    let above = search.above();
    let (limited_by, at) = match above {
        Some((c, _)) => (
            step_at(c).and_then(|s| s.client_bound.clone().or_else(|| s.broke_because.clone())),
            Some(c),
        ),
        None => (None, None),
    };
    let at_least = interrupted
        || matches!(above, Some((_, Outcome::ClientBound)))
        || (above.is_none() && held.is_some());
    let text = match (held, above) {
        (None, Some((c, Outcome::Broke))) => format!(
            "no capacity: {} stream{} already broke an objective ({})",
            group_digits(c),
            if c == 1 { "" } else { "s" },
            limited_by.as_deref().unwrap_or("")
        ),
        (None, _) if interrupted => "interrupted before any step held".to_owned(),
        (None, _) => format!(
            "not measured: the client could not judge even the smallest step ({})",
            limited_by.as_deref().unwrap_or("")
        ),
        (Some(n), Some((c, Outcome::Broke))) if !interrupted => format!(
            "capacity {} concurrent streams (limited by {} at {})",
            group_digits(n),
            limited_by.as_deref().unwrap_or("an objective"),
            group_digits(c)
        ),
        (Some(n), Some((c, Outcome::ClientBound))) => format!(
            "capacity at least {} concurrent streams: the client could not judge {} ({})",
            group_digits(n),
            group_digits(c),
            limited_by.as_deref().unwrap_or("")
        ),
        (Some(n), _) if interrupted => format!(
            "capacity at least {} concurrent streams (stopped before the search settled)",
            group_digits(n)
        ),
        (Some(n), _) => format!(
            "capacity at least {} concurrent streams: every step held, up to the most \
             streams the search may try ({max_because})",
            group_digits(n)
        ),
    };
    Answer {
        capacity: held,
        at_least,
        limited_by,
        at,
        text,
    }
}

fn describe(daemon: &DaemonSpec) -> String {
    match daemon {
        DaemonSpec::Command { command, .. } => command.clone(),
        DaemonSpec::Running { socket, .. } => socket.display().to_string(),
    }
}

impl CapacityReport {
    /// The opening lines of the human report: what is searched for, under which objectives.
    pub fn preamble(config: &CapacityConfig) -> String {
        let b = config.bounds;
        format!(
            "capacity of {}\nobjectives: {}\nsteps: from {} stream{}, ×{} until one breaks, then \
             bisected to {}%; each step {} warm-up + {} held{}\n",
            describe(&config.daemon),
            config
                .slos
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            group_digits(b.start),
            if b.start == 1 { "" } else { "s" },
            b.growth,
            b.resolution * 100.0,
            crate::stress::latency::human_ns(config.warmup.as_nanos() as u64),
            crate::stress::latency::human_ns(config.hold.as_nanos() as u64),
            if config.reuse_daemon {
                ", one daemon for all steps"
            } else {
                ", a fresh daemon each"
            }
        )
    }

    /// The closing lines of the human report.
    pub fn conclusion(&self) -> String {
        let mut o = String::new();
        if self.interrupted {
            o += "interrupted by a signal: the answer is the best bound found so far\n";
        }
        o += &format!(
            "{}\n({} steps in {:.0} s)\n",
            self.answer.text,
            self.steps.len(),
            self.seconds
        );
        o
    }

    /// The whole report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// 0: the search settled; 1: the daemon had no capacity at all (not even one stream held).
    pub fn exit_code(&self) -> u8 {
        u8::from(self.answer.capacity.is_none() && !self.interrupted)
    }
}

/// One daemon and mock for the whole search (`--reuse-daemon`).
struct Shared {
    // Dropped in order: the daemon stops before the mock.
    daemon: StartedDaemon,
    upstream: Upstream,
    mock: Option<MockHandle>,
}

impl Shared {
    fn start(config: &CapacityConfig) -> Result<Shared, StressError> {
        let (mock, upstream) = match &config.upstream {
            Upstream::Embedded(options) => {
                let mock = options.start(MockConfig {
                    // Every step's streams, for the relay-latency join.
                    log_capacity: 100_000,
                    ..MockConfig::default()
                })?;
                // Each step reads the mock's log as a remote one's.
                let url = mock.base_url();
                (Some(mock), Upstream::Remote(url))
            }
            other => (None, other.clone()),
        };
        let backend = match &upstream {
            Upstream::Remote(url) => Some(url.as_str()),
            _ => None,
        };
        Ok(Shared {
            daemon: StartedDaemon::start(&config.daemon, backend)?,
            upstream,
            mock,
        })
    }

    fn daemon_spec(&self) -> DaemonSpec {
        DaemonSpec::Running {
            socket: self.daemon.socket.clone(),
            pid: self.daemon.pid,
        }
    }

    fn upstream(&self) -> Upstream {
        self.upstream.clone()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.process.as_mut() {
            d.stop(Duration::from_secs(5));
        }
        if let Some(m) = &self.mock {
            m.shutdown();
        }
    }
}
