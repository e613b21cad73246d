//! `streamcheck stress`: thousands of concurrent streams against one daemon, every one checked
//! for integrity, timed to the microsecond, with the daemon's and the client's own cost.
//!
//! # The run
//!
//! Every connection is driven from one io_uring loop on one thread ([`crate::ring::Ring`]'s
//! callback API): no thread, channel or buffer per connection. Each read is checked as it
//! arrives ([`stream`]): HTTP/1 head and framing, SSE events, what each event means, and the
//! content against what the mock sent for the connection's nonce ([`expect`]). Nothing
//! received is stored.
//!
//! Load models ([`plan`]): closed loop (`--concurrency C` streams kept open, the first `C`
//! spread over `--ramp-up`) or open loop (`--rate R` arrivals per second, latencies from each
//! connection's scheduled start, as wrk2 corrects for coordinated omission). `--abort-rate`
//! makes some clients close early, `--slow-readers` makes some stop reading for `--slow-pause`
//! on a large answer, which shows a daemon that blocks every stream on one slow socket.
//!
//! # What is reported
//!
//! - **Integrity** ([`integrity`]): each connection's outcome (completed, truncated,
//!   cross-talk, error event, zero-byte close, timeout, …) with up to five examples each.
//!   Integrity holds when every connection completed (or aborted as planned) and the daemon
//!   kept no client socket or fd once the run settled ([`resources`]).
//! - **Latency** ([`latency`]): HdrHistograms of handoff, time to head, first event, inter-event
//!   gap, relay latency (mock write → client read, [`relay`]), total and schedule lag.
//! - **Daemon resources**: fds and RSS before, at peak and after settling, a leak verdict,
//!   CPU seconds.
//! - **Timeline** ([`timeline`]): streams open, events received, and the daemon's fds and RSS,
//!   sampled every 100 ms through the run and the settling (at most 512 samples).
//! - **Client cost**: CPU per 1,000 streams and per 1,000 events, peak RSS, RSS per open
//!   stream; the file-descriptor limit (raised to the hard limit), the port range and the
//!   source addresses the loopback pairs were spread over, the most streams the client could
//!   hold and which limit sets it ([`ceiling`]), and which limit, if any, stopped the run.
//!
//! [`run`] does it all and returns a [`StressReport`], rendered by [`StressReport::human`],
//! as JSON ([`StressReport::json`]) or as one HTML page with charts ([`StressReport::html`]); [`StressReport::exit_code`] is 0 when integrity held.

pub mod ceiling;
pub mod census;
mod death;
mod driver;
pub mod expect;
mod html;
mod human;
pub mod integrity;
pub mod latency;
pub mod plan;
pub mod relay;
pub mod report;
pub mod resources;
mod setup;
pub mod stream;
pub mod timeline;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use crate::handoff::{PairKind, SocketType};

pub use crate::units::parse_duration;
pub use plan::LoadModel;
pub use report::StressReport;
pub(crate) use setup::StartedDaemon;

/// Everything a run is asked to do.
#[derive(Debug, Clone)]
pub struct StressConfig {
    /// The daemon: running, or started by the run.
    pub daemon: DaemonSpec,
    /// Where the daemon's upstream is.
    pub upstream: Upstream,
    /// Connections to make (`None`: until `duration`).
    pub connections: Option<u64>,
    /// How they are started.
    pub load: LoadModel,
    /// Stop starting connections after this.
    pub duration: Option<Duration>,
    /// The pattern every normal connection asks for (`None`: the mock's default answer, which
    /// carries each connection's nonce).
    pub pattern: Option<String>,
    /// Fraction of connections the client closes early.
    pub abort_rate: f64,
    /// Fraction of connections that stop reading for `slow_pause`.
    pub slow_readers: f64,
    /// How long a slow reader stops reading.
    pub slow_pause: Duration,
    /// Deadline of each stream (slow readers get `slow_pause` more).
    pub timeout: Duration,
    /// The client socket handed off.
    pub pair: PairKind,
    /// How the daemon's socket is connected to.
    pub socket_type: SocketType,
    /// How long the daemon gets to release resources after the run.
    pub settle: Duration,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
    /// Largest response head accepted (`--max-head-bytes`).
    pub max_head_bytes: usize,
    /// Longest SSE line accepted (`--max-line-bytes`; `None`: room for the expected events).
    pub max_line_bytes: Option<usize>,
    /// Streams started before this much of the run has passed are checked, not timed: the
    /// latencies describe the steady state (`capacity`'s warm-up; zero for `stress`).
    pub warmup: Duration,
}

/// The daemon under test.
#[derive(Debug, Clone)]
pub enum DaemonSpec {
    /// Running already.
    Running {
        /// Its socket.
        socket: PathBuf,
        /// Its PID, to watch its resources.
        pid: Option<u32>,
    },
    /// Started by the run with `sh -c`, `{socket}` and `{backend}` substituted.
    Command {
        /// The command line.
        command: String,
        /// Where it creates its socket when the command fixes the path (`--socket` beside
        /// `--daemon-cmd`); `None`: a path in the run's working directory, at `{socket}`.
        socket: Option<PathBuf>,
        /// How long it may take to create its socket.
        start_timeout: Duration,
    },
}

/// The daemon's upstream.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A running `streamcheck mock-api` at this base URL.
    Remote(String),
    /// A mock started in this process (with `--daemon-cmd`).
    Embedded(MockOptions),
    /// The daemon has a built-in backend; integrity is a well-formed stream ending in `[DONE]`.
    None,
}

/// The embedded mock's settings.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve TLS (ALPN h2 and http/1.1).
    pub tls: bool,
    /// Chunks of the default answer.
    pub chunk_count: usize,
    /// Delay between chunks.
    pub chunk_delay: Duration,
}

impl StressConfig {
    /// A closed-loop run of `connections` streams, `concurrency` at a time, against `daemon`
    /// with `upstream`, otherwise with the command line's defaults (no ramp-up, default
    /// pattern, 30 s timeout, TCP pairs over SEQPACKET, 10 s settle, no progress bar).
    pub fn new(
        daemon: DaemonSpec,
        upstream: Upstream,
        connections: u64,
        concurrency: usize,
    ) -> StressConfig {
        StressConfig {
            daemon,
            upstream,
            connections: Some(connections),
            load: LoadModel::Closed {
                concurrency,
                ramp_up: Duration::ZERO,
            },
            duration: None,
            pattern: None,
            abort_rate: 0.0,
            slow_readers: 0.0,
            slow_pause: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            pair: PairKind::Tcp,
            socket_type: SocketType::SeqPacket,
            settle: Duration::from_secs(10),
            progress: false,
            max_head_bytes: stream::StreamLimits::DEFAULT_MAX_HEAD,
            max_line_bytes: None,
            warmup: Duration::ZERO,
        }
    }

    /// Connections the run will start, when known in advance.
    pub fn planned_connections(&self) -> Option<u64> {
        match (self.connections, self.load, self.duration) {
            (Some(n), _, _) => Some(n),
            (None, LoadModel::Open { rate, .. }, Some(d)) => {
                // Arrivals scheduled before the duration ends (offsets grow with the index).
                let end = plan::duration_ns(d);
                let (mut lo, mut hi) = (0u64, (rate * d.as_secs_f64()).ceil() as u64 + 1);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.load.scheduled_offset_ns(mid).is_some_and(|t| t < end) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                Some(lo)
            }
            _ => None,
        }
    }

    /// Checks the numbers; the message says what to change.
    pub fn validate(&self) -> Result<(), StressError> {
        let usage = |m: &str| Err(StressError::Usage(m.to_owned()));
        match self.connections {
            Some(0) => return usage("--connections must be at least 1"),
            Some(n) if n > expect::MAX_CONNECTIONS => {
                return usage("--connections must be at most 99,999,999 (nonces have 8 digits)");
            }
            None if self.duration.is_none() => {
                return usage("give --connections N, or --duration D to run for a time");
            }
            _ => {}
        }
        match self.load {
            LoadModel::Closed { concurrency: 0, .. } => {
                return usage("--concurrency must be at least 1");
            }
            LoadModel::Open { rate, .. } if !(rate.is_finite() && rate > 0.0) => {
                return usage("--rate must be a positive number of connections per second");
            }
            LoadModel::Open { max_open: 0, .. } => {
                return usage("--concurrency must be at least 1");
            }
            _ => {}
        }
        for (name, f) in [
            ("--abort-rate", self.abort_rate),
            ("--slow-readers", self.slow_readers),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return Err(StressError::Usage(format!(
                    "{name} is a fraction of the connections, from 0 to 1 (it was {f})"
                )));
            }
        }
        if self.timeout.is_zero() {
            return usage("--timeout must be positive");
        }
        if self.slow_readers > 0.0 && self.slow_pause.is_zero() {
            return usage("--slow-pause must be positive when there are slow readers");
        }
        if matches!(self.duration, Some(d) if d.is_zero()) {
            return usage("--duration must be positive");
        }
        Ok(())
    }
}

/// Why a run could not be carried out (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StressError {
    /// A bad option or combination of options.
    #[error("{0}")]
    Usage(String),
    /// Something about the environment: the socket, the mock, the daemon, io_uring.
    #[error("{0}")]
    Environment(String),
}

/// A limit that stopped (or, for the backlog, hampered) the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitHit {
    /// Which.
    pub kind: LimitKind,
    /// Streams open when it was first hit.
    pub open_streams: u64,
    /// The error, with its fix.
    pub detail: String,
}

/// The limits a run can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The client's open-file limit (RLIMIT_NOFILE): the run stops starting streams.
    Fds,
    /// The local port range for loopback pairs: the run stops starting streams.
    EphemeralPorts,
    /// The daemon's accept backlog was full: those handoffs failed, as through Apache.
    DaemonBacklog,
}

impl LimitKind {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Fds => "the client's open-file limit (RLIMIT_NOFILE)",
            LimitKind::EphemeralPorts => "ephemeral ports (net.ipv4.ip_local_port_range)",
            LimitKind::DaemonBacklog => "the daemon's accept backlog",
        }
    }
}

/// Runs the stress test. `stop` ends it early (a signal, see [`crate::signals`]): open streams
/// are closed and the report still comes back.
pub fn run(config: &StressConfig, stop: &AtomicBool) -> Result<StressReport, StressError> {
    config.validate()?;
    let port_range = ceiling::port_range()?;
    let fd_limit = resources::raise_fd_limit();
    let cpu_start = resources::process_cpu_ns();
    let mut prepared = setup::prepare(config)?;
    check_socket(&prepared.socket)?;
    let fds_open = resources::fd_count(std::process::id()).unwrap_or(0);
    let plan = ceiling::plan(config, fd_limit, fds_open, port_range);
    let result = driver::run(config, &mut prepared, plan.spread, stop)?;
    let total_cpu_ns = resources::process_cpu_ns().saturating_sub(cpu_start);
    Ok(report::build(
        config,
        &prepared,
        result,
        report::Environment {
            fd_limit,
            port_range,
            pair_addresses: plan.pair_addresses,
            ceiling: plan.ceiling,
            total_cpu_ns,
            peak_rss_bytes: resources::own_peak_rss_bytes(),
        },
    ))
}

fn check_socket(path: &std::path::Path) -> Result<(), StressError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => Err(StressError::Environment(format!(
            "{} is not a socket: give the daemon's Unix socket with --socket",
            path.display()
        ))),
        Err(e) => Err(StressError::Environment(format!(
            "cannot use the daemon socket {}: {e}; is the daemon running, and is the path right?",
            path.display()
        ))),
    }
}
