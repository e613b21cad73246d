//! `streamcheck prop`: generated cases against a daemon, failures shrunk.

use std::process::ExitCode;

use super::values::{PairArg, SocketTypeArg, seconds, strictness};

const PROP_HELP: &str = "\
Each case is a generated upstream stream (content biased to multi-byte, combining, ZWJ and
control characters and every JSON escape; writes cut inside characters, `data:`, CRLF and
escapes; 0-20 ms delays; a complete, truncated, reset or error-status ending) and a client
(reads all, leaves after N bytes or events, pauses). The mock plays the stream; the daemon's
answer must carry the upstream's content byte for byte (a prefix of it if the client left),
valid UTF-8, [DONE] if and only if the upstream completed (a [DONE] after a truncated upstream
is non-strict), an error after an error status, an error or a close without [DONE] after a
reset, and close in time; after a client
abort the upstream request must end within 1 s.

Cases in the regression file run first. The first failing case is shrunk (--max-shrink-time),
printed with its script, the daemon's bytes, the broken invariants and a replay command, and
appended to the regression file: commit it, and every later run and CI replays it.

Target: --daemon-cmd 'my-daemon --socket {socket}' starts the daemon beside an embedded mock
(as `run` does; --daemon-cmd CMD --socket PATH for a daemon whose socket path is fixed or set
by an environment variable: the runner starts CMD and waits for PATH), or --socket S --backend
URL tests a running daemon whose OPENAI_API_BASE is a running `streamcheck mock-api`.

SIGINT, SIGTERM or SIGHUP: no more cases start, the cases in flight are closed and not
judged, the daemon started is stopped, and the summary says what ran; the exit status is then
128 + the signal's number. A second signal exits at once.

Exit status: 0 every case passed, 1 a case failed or the daemon died, 2 usage or environment
error.";

#[derive(clap::Args)]
#[command(after_long_help = PROP_HELP)]
pub struct PropArgs {
    /// The running daemon's Unix socket (with --backend); with --daemon-cmd, the path the
    /// started daemon creates (for a daemon whose socket path is fixed or set by an environment
    /// variable).
    #[arg(long, value_name = "PATH", required_unless_present = "daemon_cmd")]
    socket: Option<std::path::PathBuf>,
    /// The mock API the running daemon uses (its OPENAI_API_BASE).
    #[arg(long, value_name = "URL", requires = "socket")]
    backend: Option<String>,
    /// Start the daemon with this shell command ({socket} and {backend} are substituted).
    #[arg(long, value_name = "CMD", conflicts_with = "backend")]
    daemon_cmd: Option<String>,
    /// Generated cases to run.
    #[arg(long, value_name = "N", default_value_t = 200)]
    cases: usize,
    /// Seed of the case generator [default: from the clock, printed in the summary].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Seconds shrinking a failure may take.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    max_shrink_time: f64,
    /// Cases run at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
    jobs: usize,
    /// Seconds each stream may take before the client gives up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Non-strict findings fail (and are shrunk like failures).
    #[arg(long)]
    strict: bool,
    /// The regression file: replayed first, failures appended.
    #[arg(long, value_name = "FILE", default_value = streamcheck::prop::daemon::DEFAULT_REGRESSIONS)]
    regressions: std::path::PathBuf,
    /// Neither replay nor write a regression file.
    #[arg(long, conflicts_with = "regressions")]
    no_regressions: bool,
    /// Print every shrink step that still fails (by default one progress line on a terminal).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Run only this case (the JSON a failure report prints).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["seed", "cases"])]
    replay: Option<String>,
    /// The client socket handed off.
    #[arg(long, value_enum, default_value = "tcp")]
    pair: PairArg,
    /// Socket type to connect with.
    #[arg(long, value_enum, default_value = "seqpacket")]
    socket_type: SocketTypeArg,
    /// Embedded mock: serve plain HTTP instead of TLS.
    #[arg(long, requires = "daemon_cmd")]
    mock_plain: bool,
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

pub fn run(args: PropArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::prop::daemon::{self, Case, PropConfig, render};
    use streamcheck::scenario::MockOptions;

    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;

    let mock = MockOptions {
        tls: !args.mock_plain,
        ..MockOptions::default()
    };
    let target = crate::cli::target::daemon_target(
        args.daemon_cmd,
        args.socket,
        args.backend,
        mock,
        args.start_timeout,
    )?;
    let mut config = PropConfig::new(target);
    config.cases = args.cases;
    config.seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    });
    config.shrink_progress = if args.verbose {
        daemon::ShrinkProgress::Steps
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        daemon::ShrinkProgress::InPlace
    } else {
        daemon::ShrinkProgress::Quiet
    };
    config.max_shrink_time =
        std::time::Duration::try_from_secs_f64(args.max_shrink_time).map_err(|_| {
            anyhow::anyhow!(
                "--max-shrink-time {}: give a number of seconds, 0 or more",
                args.max_shrink_time
            )
        })?;
    config.jobs = args.jobs;
    config.limits.timeout = seconds("timeout", args.timeout)?;
    config.strictness = strictness(args.strict);
    config.regressions = (!args.no_regressions).then_some(args.regressions);
    config.replay = args
        .replay
        .map(|json| Case::from_json(&json))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--replay: {e}"))?;
    config.pair = args.pair.into();
    config.socket_type = args.socket_type.into();
    config.read = args.read.limits();
    config.interrupt = Some(interrupt);
    let report = daemon::run(&config, &mut std::io::stderr().lock())?;
    if let Some(failure) = &report.failure {
        let failure = render::failure(failure, &config.target, config.strictness);
        super::output::stdout(&format!("{failure}\n"));
    }
    super::output::stdout(&format!("{}\n", render::summary(&report)));
    Ok(ExitCode::from(report.exit_code()))
}
