//! `streamcheck capacity`: the most concurrent streams a daemon sustains within its objectives.

use std::process::ExitCode;

use streamcheck::capacity::search::Bounds;
use streamcheck::capacity::slo::Slo;
use streamcheck::capacity::{self, CapacityConfig, CapacityReport};
use streamcheck::stress::{MockOptions, StressError, Upstream};

use super::values::{PairArg, SocketTypeArg, duration_arg};

const CAPACITY_HELP: &str = "\
Objectives (--slo, repeatable): METRIC[.STAT]<LIMIT.
  latencies (STAT p50, p90, p99, p99.9, max, mean; p99 when left out), with a duration:
    handoff  handoff sent → daemon took it      head  → response head
    ttfb     → first event                      gap   between events
    relay    mock write → client read           total → end of the stream
  rss<1GiB   the daemon's peak RSS              fds<20000  its peak open files
  cpu<1.5    its CPU, in cores                  failures=0 or failures<0.1%  streams failed
Without --slo: ttfb.p99<1s, relay.p99<100ms (with an upstream), failures=0.

Each step is a stress run: C streams kept open, the first C started over --warmup (not
timed), then held for --hold, each stream the answer of --chunk-count chunks --chunk-delay-ms
apart (make them as long as your users' streams). Steps grow ×--growth from --start until one
breaks an objective, then bisect until the step that broke is within --resolution of the one
that held. A fresh daemon (and mock) per step, unless --reuse-daemon (always with a running
daemon, --socket without --daemon-cmd).

A step the client cannot judge — its open-file limit, its io_uring loop saturated, or every
CPU busy with streamcheck using more than the daemon — is marked client-bound, and the answer
above it is \"at least N\": streamcheck never reports its own limit as the daemon's.

Output: one line per step as it finishes, then the answer with its binding constraint.
--format json: every step with its whole stress report (histograms included); --format html:
one page with each objective's figure against concurrency, its line and the capacity marked.
SIGINT, SIGTERM or SIGHUP: the step in flight is abandoned, the answer is the best bound so
far; exit status 128 + the signal's number.
Exit status: 0 the search ended; 1 not even one stream held the objectives; 2 usage or
environment error.";

/// `--format` of `capacity`.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum CapacityFormat {
    /// Text for people: a line per step as it finishes, then the answer.
    #[default]
    Human,
    /// One JSON object (schema in the `capacity` module docs).
    Json,
    /// One self-contained HTML page: each objective against concurrency, every step.
    Html,
}

#[derive(clap::Args)]
#[command(after_long_help = CAPACITY_HELP)]
pub struct CapacityArgs {
    /// Start the daemon with this shell command ({socket} and {backend} are substituted).
    #[arg(long, value_name = "CMD", required_unless_present = "socket")]
    daemon_cmd: Option<String>,
    /// A running daemon's socket; with --daemon-cmd, the path the started daemon creates.
    #[arg(long, value_name = "PATH")]
    socket: Option<std::path::PathBuf>,
    /// A running daemon's PID, for its RSS, fds and CPU (rss, fds and cpu objectives need it).
    #[arg(long, value_name = "PID", conflicts_with = "daemon_cmd")]
    daemon_pid: Option<u32>,
    /// The mock API a running daemon uses (its OPENAI_API_BASE).
    #[arg(long, value_name = "URL", conflicts_with = "no_upstream")]
    backend: Option<String>,
    /// The daemon has a built-in backend: no mock, no relay latency.
    #[arg(long)]
    no_upstream: bool,
    /// An objective every step must hold (repeatable); see below.
    #[arg(long = "slo", value_name = "SLO", value_parser = Slo::parse)]
    slos: Vec<Slo>,
    /// Streams in the first step.
    #[arg(long, value_name = "N", default_value_t = 100)]
    start: u64,
    /// Factor between steps while no step has broken.
    #[arg(long, value_name = "F", default_value_t = 2.0)]
    growth: f64,
    /// Stop bisecting when the step that broke is within this of the one that held.
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = percent)]
    resolution: f64,
    /// Never try more streams than this [default: what the open-file limit allows].
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// Each step's warm-up: its streams are started over it and not timed.
    #[arg(long, value_name = "D", default_value = "2s", value_parser = duration_arg)]
    warmup: std::time::Duration,
    /// Each step's measured part, after the warm-up.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = duration_arg)]
    hold: std::time::Duration,
    /// Keep one daemon (and mock) for every step instead of a fresh one per step.
    #[arg(long)]
    reuse_daemon: bool,
    /// Embedded mock: chunks of each answer.
    #[arg(long, value_name = "N", default_value_t = 18)]
    chunk_count: usize,
    /// Embedded mock: milliseconds between chunks.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    chunk_delay_ms: u64,
    /// Embedded mock: serve plain HTTP instead of TLS.
    #[arg(long)]
    mock_plain: bool,
    /// Deadline of each stream; a stream still open then failed.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = duration_arg)]
    timeout: std::time::Duration,
    /// How long the daemon gets after each step to release what it used.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = duration_arg)]
    settle: std::time::Duration,
    /// How long the started daemon may take to create its socket.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = duration_arg)]
    start_timeout: std::time::Duration,
    /// The client socket handed off: a loopback TCP pair (as Apache) or an AF_UNIX socketpair.
    #[arg(long, value_enum, default_value = "tcp")]
    pair: PairArg,
    /// Connect to the daemon's socket as SOCK_SEQPACKET (as Apache) or SOCK_STREAM.
    #[arg(long, value_enum, default_value = "seqpacket")]
    socket_type: SocketTypeArg,
    /// Report format.
    #[arg(long, value_enum, default_value_t)]
    format: CapacityFormat,
    /// Write the report to FILE (the step lines still go to standard error as they finish).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

/// `5%` or `0.05`.
fn percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    };
    match value {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "{text:?}: give a percentage between 0 and 100, e.g. 5%"
        )),
    }
}

pub fn run(args: CapacityArgs) -> anyhow::Result<ExitCode> {
    let usage = |m: &str| -> anyhow::Result<ExitCode> {
        eprintln!("streamcheck: {m}");
        Ok(ExitCode::from(2))
    };
    let target = super::target::load_daemon(
        args.daemon_cmd.as_deref(),
        args.socket.as_deref(),
        args.daemon_pid,
        args.start_timeout,
    );
    let Some(daemon) = target else {
        return usage("give --daemon-cmd CMD, or --socket PATH of a running daemon");
    };
    let running = args.daemon_cmd.is_none();
    let embedded = MockOptions {
        tls: !args.mock_plain,
        chunk_count: args.chunk_count,
        chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
    };
    let upstream = match super::target::load_upstream(
        args.backend.as_deref(),
        args.no_upstream,
        !running,
        embedded,
    ) {
        Ok(upstream) => upstream,
        Err(why) => return usage(why),
    };
    if !(args.growth > 1.0 && args.growth.is_finite()) {
        return usage(&format!(
            "--growth {}: give a factor above 1, e.g. 2",
            args.growth
        ));
    }
    if args.start == 0 {
        return usage("--start must be at least 1 stream");
    }
    if args.hold.is_zero() {
        return usage("--hold must be positive: it is the part of each step that is measured");
    }
    let with_upstream = !matches!(upstream, Upstream::None);
    let slos = if args.slos.is_empty() {
        Slo::defaults(with_upstream)
    } else {
        args.slos
    };
    if let Some(s) = slos.iter().find(|s| s.needs_upstream() && !with_upstream) {
        return usage(&format!(
            "--slo {s} needs the mock's write times, and --no-upstream has no mock"
        ));
    }
    if let Some(s) = slos
        .iter()
        .find(|s| s.needs_daemon_pid() && running && args.daemon_pid.is_none())
    {
        return usage(&format!(
            "--slo {s} needs the daemon's resources: give its --daemon-pid, or start it with \
             --daemon-cmd"
        ));
    }
    let config = CapacityConfig {
        daemon,
        upstream,
        reuse_daemon: args.reuse_daemon || running,
        slos,
        bounds: Bounds {
            start: args.start,
            growth: args.growth,
            resolution: args.resolution,
            max: args.max.unwrap_or(u64::MAX),
        },
        warmup: args.warmup,
        hold: args.hold,
        timeout: args.timeout,
        settle: args.settle,
        pair: args.pair.into(),
        socket_type: args.socket_type.into(),
    };

    // Step lines go where a person watches: standard output for a human report written
    // there, standard error otherwise.
    let live_to_stdout = matches!(args.format, CapacityFormat::Human) && args.output.is_none();
    let say = |text: &str| {
        if live_to_stdout {
            super::output::stdout(text);
        } else {
            eprint!("{text}");
        }
    };
    let preamble = CapacityReport::preamble(&config);
    say(&preamble);
    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;
    let report = match capacity::run(&config, interrupt.flag(), &mut |step| {
        say(&format!("{}\n", step.line()));
    }) {
        Ok(report) => report,
        Err(StressError::Usage(m) | StressError::Environment(m)) => return usage(&m),
    };
    let conclusion = report.conclusion();
    match args.format {
        CapacityFormat::Human => say(&conclusion),
        CapacityFormat::Json | CapacityFormat::Html => eprint!("{conclusion}"),
    }
    match args.format {
        CapacityFormat::Json => {
            super::output::report(args.output.as_deref(), &(report.json() + "\n"))?;
        }
        CapacityFormat::Html => super::output::report(args.output.as_deref(), &report.html())?,
        CapacityFormat::Human if args.output.is_some() => {
            let lines: Vec<String> = report.steps.iter().map(|s| s.line()).collect();
            let text = format!("{preamble}{}\n{conclusion}", lines.join("\n"));
            super::output::report(args.output.as_deref(), &text)?;
        }
        // Written as the search went.
        CapacityFormat::Human => {}
    }
    if let Some(signal) = interrupt.signal() {
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(ExitCode::from(report.exit_code()))
}
