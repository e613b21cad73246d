//! `streamcheck stress`: thousands of concurrent streams with integrity checks and latency histograms.

use std::process::ExitCode;

use super::values::{PairArg, SocketTypeArg, duration_arg};

const STRESS_HELP: &str = "\
The daemon: a running one (--socket S, with --daemon-pid PID to watch its fds, RSS and CPU and
look for leaks), or one started for the run (--daemon-cmd 'my-daemon --socket {socket}', run with
`sh -c`, {socket} and {backend} replaced, OPENAI_API_BASE, OPENAI_API_KEY and
OPENAI_INSECURE_SSL=true set, stopped at the end; --daemon-cmd CMD --socket PATH for a daemon
whose socket path is fixed or set by an environment variable: the runner waits for PATH).
The upstream: --backend URL (a running `streamcheck mock-api`), an embedded mock (the default
with --daemon-cmd), or --no-upstream for daemons with a built-in backend (then integrity is a
200 text/event-stream response ending in [DONE]).

Load: closed loop by default (--concurrency streams kept open, the first spread over
--ramp-up); --rate R makes it an open loop of R arrivals per second (--concurrency then caps the
streams open), with every latency measured from the connection's scheduled start.
Every connection carries its own nonce; with the default pattern the mock puts it into the
answer, so content meant for another connection is reported as cross-talk.

Durations: 500ms, 2s, 1.5s, 3m (a plain number is seconds).
Exit status: 0 integrity held; 1 a stream failed, or the daemon leaked or died; 2 usage or
environment error, or a client limit (open files, ephemeral ports) stopped the run early.
SIGINT (Ctrl-C), SIGTERM or SIGHUP stops the run and still prints the report; the exit status
is then 128 + the signal's number. A second signal exits at once.";

/// `--format` of `stress`.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum StressFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON object (schema in the `stress::report` docs).
    Json,
    /// One self-contained HTML page with charts (give -o FILE).
    Html,
}

#[derive(clap::Args)]
#[command(after_long_help = STRESS_HELP)]
pub struct StressArgs {
    /// The running daemon's Unix socket; with --daemon-cmd, the path the started daemon
    /// creates (for a daemon whose socket path is fixed or set by an environment variable).
    #[arg(long, value_name = "PATH", required_unless_present = "daemon_cmd")]
    socket: Option<std::path::PathBuf>,
    /// The mock API the daemon uses (its OPENAI_API_BASE), for content checks and relay latency.
    #[arg(long, value_name = "URL", conflicts_with = "no_upstream")]
    backend: Option<String>,
    /// Start the daemon with this shell command ({socket} and {backend} are substituted).
    #[arg(long, value_name = "CMD", conflicts_with = "daemon_pid")]
    daemon_cmd: Option<String>,
    /// The daemon has a built-in backend: no mock, no content comparison.
    #[arg(long)]
    no_upstream: bool,
    /// Connections to make in all [default: 1000, or unlimited with --duration].
    #[arg(long, short = 'n', value_name = "N")]
    connections: Option<u64>,
    /// Streams kept open (closed loop), or the most open at once (with --rate).
    #[arg(long, short = 'c', value_name = "C")]
    concurrency: Option<usize>,
    /// Open loop: new connections per second.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Spread the first starts over this (closed loop), or grow the rate to R over it (open).
    #[arg(long, value_name = "D", default_value = "0", value_parser = duration_arg)]
    ramp_up: std::time::Duration,
    /// Stop starting connections after this.
    #[arg(long, value_name = "D", value_parser = duration_arg)]
    duration: Option<std::time::Duration>,
    /// The pattern every stream asks for [default: the benchmark answer, with each stream's nonce].
    #[arg(long, value_name = "P")]
    pattern: Option<String>,
    /// Fraction of connections the client closes early (after a few events).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    abort_rate: f64,
    /// Fraction of connections that stop reading for --slow-pause, on an 8 MiB answer;
    /// connection 0 is one. Their deadline is --timeout + the pause + 30 s.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    slow_readers: f64,
    /// How long a slow reader stops reading.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = duration_arg)]
    slow_pause: std::time::Duration,
    /// Deadline of each stream; a stream still open then is a timeout, never a success.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = duration_arg)]
    timeout: std::time::Duration,
    /// The running daemon's PID: its fds, RSS and CPU are watched and leaks looked for.
    #[arg(long, value_name = "PID")]
    daemon_pid: Option<u32>,
    /// How long the daemon gets after the run to release what the streams used.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = duration_arg)]
    settle: std::time::Duration,
    /// Report format.
    #[arg(long, value_enum, default_value_t)]
    format: StressFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// The client socket handed off: a loopback TCP pair (as Apache) or an AF_UNIX socketpair.
    #[arg(long, value_enum, default_value = "tcp")]
    pair: PairArg,
    /// Connect to the daemon's socket as SOCK_SEQPACKET (as Apache) or SOCK_STREAM.
    #[arg(long, value_enum, default_value = "seqpacket")]
    socket_type: SocketTypeArg,
    /// No progress bar (it is only drawn on a terminal anyway).
    #[arg(long)]
    quiet: bool,
    /// Embedded mock: serve plain HTTP instead of TLS.
    #[arg(long, requires = "daemon_cmd")]
    mock_plain: bool,
    /// Embedded mock: chunks of the default answer.
    #[arg(long, value_name = "N", default_value_t = 18, requires = "daemon_cmd")]
    chunk_count: usize,
    /// Embedded mock: milliseconds between chunks.
    #[arg(long, value_name = "MS", default_value_t = 50, requires = "daemon_cmd")]
    chunk_delay_ms: u64,
    /// How long the started daemon may take to create its socket.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = duration_arg, requires = "daemon_cmd")]
    start_timeout: std::time::Duration,
    /// Largest response head accepted: a correct daemon's head is a few hundred bytes, and
    /// every stream's parser may buffer this much.
    #[arg(long, value_name = "BYTES", default_value = "2KiB", value_parser = streamcheck::units::byte_size)]
    max_head_bytes: u64,
    /// Longest SSE line accepted [default: room for the expected events, at least 1 KiB;
    /// 4 KiB with --no-upstream].
    #[arg(long, value_name = "BYTES", value_parser = streamcheck::units::byte_size)]
    max_line_bytes: Option<u64>,
}

pub fn run(args: StressArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::stress::{self, LoadModel, MockOptions, StressConfig, StressError};

    let target = super::target::load_daemon(
        args.daemon_cmd.as_deref(),
        args.socket.as_deref(),
        args.daemon_pid,
        args.start_timeout,
    );
    // clap's `required_unless_present` rules out neither.
    let daemon =
        target.ok_or_else(|| anyhow::anyhow!("give --socket PATH, or --daemon-cmd CMD"))?;
    let embedded = MockOptions {
        tls: !args.mock_plain,
        chunk_count: args.chunk_count,
        chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
    };
    let started = args.daemon_cmd.is_some();
    let upstream = match super::target::load_upstream(
        args.backend.as_deref(),
        args.no_upstream,
        started,
        embedded,
    ) {
        Ok(upstream) => upstream,
        Err(why) => {
            eprintln!("streamcheck: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    let connections = match (args.connections, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(1000),
    };
    let load = match args.rate {
        Some(rate) => LoadModel::Open {
            rate,
            ramp_up: args.ramp_up,
            max_open: args.concurrency.unwrap_or(usize::MAX),
        },
        None => LoadModel::Closed {
            concurrency: args.concurrency.unwrap_or(100),
            ramp_up: args.ramp_up,
        },
    };
    let config = StressConfig {
        daemon,
        upstream,
        connections,
        load,
        duration: args.duration,
        pattern: args.pattern,
        abort_rate: args.abort_rate,
        slow_readers: args.slow_readers,
        slow_pause: args.slow_pause,
        timeout: args.timeout,
        pair: args.pair.into(),
        socket_type: args.socket_type.into(),
        settle: args.settle,
        progress: !args.quiet,
        max_head_bytes: usize::try_from(args.max_head_bytes).unwrap_or(usize::MAX),
        max_line_bytes: args
            .max_line_bytes
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        warmup: std::time::Duration::ZERO,
    };
    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;
    let report = match stress::run(&config, interrupt.flag()) {
        Ok(report) => report,
        Err(StressError::Usage(m) | StressError::Environment(m)) => {
            eprintln!("streamcheck: {m}");
            return Ok(ExitCode::from(2));
        }
    };
    let text = match args.format {
        StressFormat::Human => report.human(),
        StressFormat::Json => report.json() + "\n",
        StressFormat::Html => report.html(),
    };
    super::output::report(args.output.as_deref(), &text)?;
    if let Some(signal) = interrupt.signal() {
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(ExitCode::from(report.exit_code()))
}
