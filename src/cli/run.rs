//! `streamcheck run`: the scenario suite against a daemon.

use std::process::ExitCode;

use super::values::{PairArg, SocketTypeArg, seconds, strictness};

const RUN_HELP: &str = "\
Either test a running daemon: --socket S --backend URL (URL is the mock API the daemon's
OPENAI_API_BASE points at, e.g. started with `streamcheck mock-api --tls`), optionally with
--daemon-pid PID so that a crash and leaked sockets are noticed;
or let the runner start everything: --daemon-cmd 'my-daemon --socket {socket}'. It starts an
embedded mock (TLS unless --mock-plain), then runs the command with `sh -c`, {socket} and
{backend} replaced, OPENAI_API_BASE, OPENAI_API_KEY and OPENAI_INSECURE_SSL=true set, waits for
the socket, and stops the daemon at the end (SIGTERM, SIGKILL after 5 s).
A daemon whose socket path is fixed or set by an environment variable: --daemon-cmd CMD
--socket PATH (the runner starts CMD and waits for PATH to appear). 8.3 unreachable_backend
needs a second instance on a socket of its own, so it runs only when CMD has {socket}.

A daemon that takes the first handoffs and then neither writes a byte nor calls its upstream
is judged unresponsive: the scenarios left are listed as not run, and failed.

SIGINT, SIGTERM or SIGHUP: the streams in flight are closed, the daemon started is stopped,
and the report is written with what finished and the signal (interrupted scenarios are
skipped); exit status 128 + the signal's number. A second signal exits at once.

Reports: --format html -o NAME.html writes one self-contained page (a row per scenario, each
opening to its diff and its stream's timeline; NAME.html#4.1 opens scenario 4.1). Add
--json-report NAME.json to keep the JSON report of the same run, which `streamcheck report
merge` turns into a matrix across daemons linking to NAME.html.

Exit status: 0 no scenario failed, 1 a scenario failed or the daemon died, 2 usage or
environment error (socket missing, permission, io_uring unavailable, mock unreachable),
129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM.";

#[derive(clap::Args)]
#[command(after_long_help = RUN_HELP)]
pub struct RunArgs {
    /// The running daemon's Unix socket (with --backend); with --daemon-cmd, the path the
    /// started daemon creates (for a daemon whose socket path is fixed or set by an environment
    /// variable).
    #[arg(long, value_name = "PATH", required_unless_present = "daemon_cmd")]
    socket: Option<std::path::PathBuf>,
    /// The mock API the running daemon uses (its OPENAI_API_BASE).
    #[arg(long, value_name = "URL", requires = "socket")]
    backend: Option<String>,
    /// Start the daemon with this shell command ({socket} and {backend} are substituted).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["backend", "daemon_pid"])]
    daemon_cmd: Option<String>,
    /// The running daemon's PID: a crash fails the run, and its sockets are counted.
    #[arg(long, value_name = "PID")]
    daemon_pid: Option<u32>,
    /// What reports call the daemon.
    #[arg(long, value_name = "NAME")]
    daemon_name: Option<String>,
    /// Run only this category (repeatable).
    #[arg(long, value_name = "NAME")]
    category: Vec<String>,
    /// Run only this scenario, by name or id (repeatable).
    #[arg(long, value_name = "NAME|ID")]
    scenario: Vec<String>,
    /// Scenarios run at once (those that need the daemon to themselves run alone).
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
    jobs: usize,
    /// Seconds each stream may take before the client gives up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Non-strict findings fail the run.
    #[arg(long)]
    strict: bool,
    /// Start no more scenarios after the first failure (the rest are listed as not run).
    #[arg(long)]
    fail_fast: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t)]
    format: streamcheck::report::Format,
    /// TAP version to declare (13 suits every prove, including Debian 12's).
    #[arg(long, value_enum, default_value_t)]
    tap_version: streamcheck::report::TapVersion,
    /// Colour in the human format.
    #[arg(long, value_enum, default_value_t)]
    color: streamcheck::report::ColorChoice,
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Also write the JSON report to FILE (e.g. beside `--format html -o NAME.html`, for
    /// `streamcheck report merge`).
    #[arg(long, value_name = "FILE")]
    json_report: Option<std::path::PathBuf>,
    /// The client socket handed off.
    #[arg(long, value_enum, default_value = "tcp")]
    pair: PairArg,
    /// Socket type to connect with [default: seqpacket, falling back to stream when the daemon
    /// listens as one, which 7.7 reports as a failure].
    #[arg(long, value_enum)]
    socket_type: Option<SocketTypeArg>,
    /// Embedded mock: serve plain HTTP instead of TLS.
    #[arg(long, requires = "daemon_cmd")]
    mock_plain: bool,
    /// Embedded mock: chunks of the default answer.
    #[arg(long, value_name = "N", default_value_t = 18, requires = "daemon_cmd")]
    chunk_count: usize,
    /// Embedded mock: milliseconds between chunks.
    #[arg(long, value_name = "MS", default_value_t = 10, requires = "daemon_cmd")]
    chunk_delay_ms: u64,
    /// Seconds the started daemon may take to create its socket.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10.0,
        requires = "daemon_cmd"
    )]
    start_timeout: f64,
    #[command(flatten)]
    read: crate::cli::read_limits::ReadLimitArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::report::{self, Options, Output};
    use streamcheck::scenario::{self, MockOptions, SuiteConfig};

    // First, so that a signal from now on stops the run cleanly, daemon included.
    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;
    let mock = MockOptions {
        tls: !args.mock_plain,
        chunk_count: args.chunk_count,
        chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
    };
    let target = crate::cli::target::daemon_target(
        args.daemon_cmd,
        args.socket,
        args.backend,
        mock,
        args.start_timeout,
    )?;
    let mut config = SuiteConfig::new(target);
    config.daemon_pid = args.daemon_pid;
    config.daemon_name = args.daemon_name;
    config.categories = args.category;
    config.scenarios = args.scenario;
    config.jobs = args.jobs;
    config.timeout = seconds("timeout", args.timeout)?;
    config.strictness = strictness(args.strict);
    config.pair = args.pair.into();
    config.socket_type = args.socket_type.map(Into::into);
    config.read = args.read.limits();
    config.fail_fast = args.fail_fast;
    config.interrupt = Some(interrupt);
    let options = Options {
        format: args.format,
        tap_version: args.tap_version,
        color: args.color,
        progress: true,
    };
    let output = Output::open(args.output.as_deref())?;
    let mut reporter = report::build(&options, output);
    if let Some(path) = &args.json_report {
        let json = Options {
            format: report::Format::Json,
            progress: false,
            ..options
        };
        let second = report::build(&json, Output::file(path)?);
        reporter = Box::new(report::Tee(reporter, second));
    }
    let run = scenario::run_suite_with(&config, &mut reporter)?;
    for note in &run.notes {
        eprintln!("streamcheck: {note}");
    }
    if let Some(failure) = &run.daemon_failure {
        eprintln!("streamcheck: {failure}");
    }
    if let Some(signal) = run.interrupted {
        eprintln!(
            "streamcheck: interrupted by {signal}; the report lists what finished (exit status {})",
            signal.exit_code()
        );
    }
    Ok(ExitCode::from(run.exit_code()))
}
