//! The `streamcheck` command line: parse arguments, call the library, map errors to exit codes
//! (0 all passed, 1 something failed, 2 usage or environment error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "streamcheck",
    version,
    about = "Test SCM_RIGHTS socket-handoff SSE streaming daemons"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse a captured text/event-stream (optionally with its HTTP response head) and print
    /// one JSON object per dispatched event.
    Parse(ParseArgs),
    /// Serve the mock OpenAI streaming API.
    MockApi(MockApiArgs),
    /// Run the scenario suite against a daemon.
    Run(RunArgs),
    /// List the scenario catalog.
    List(ListArgs),
    /// Run the reference streaming daemon (optionally with a fault mode).
    RefDaemon(RefDaemonArgs),
    /// Run the suite against every fault mode of the reference daemon: which scenarios catch each.
    Mutation(MutationArgs),
    /// Generate upstream streams and client behaviours; shrink failures to a minimal case.
    Prop(PropArgs),
    /// Drive thousands of concurrent streams with integrity checks and latency histograms.
    Stress(StressArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => cmd_parse(args),
        Command::MockApi(args) => cmd_mock_api(args),
        Command::Run(args) => cmd_run(args),
        Command::List(args) => cmd_list(args),
        Command::RefDaemon(args) => cmd_ref_daemon(args),
        Command::Mutation(args) => cmd_mutation(args),
        Command::Prop(args) => cmd_prop(args),
        Command::Stress(args) => cmd_stress(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("streamcheck: {err:#}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// parse

/// `streamcheck parse [FILE|-] [--http] [--feed-size N] [--last-event-id ID]`.
#[derive(clap::Args)]
#[command(after_help = "\
Output, one JSON object per line:
  {\"type\":\"message\",\"data\":\"…\",\"id\":\"…\",\"retry\":null,\"offset\":N}  per event
      (data not valid UTF-8 is shown with U+FFFD and given exactly in \"data_hex\")
  {\"status\":200,\"reason\":\"OK\",\"headers\":[[name,value],…]}  the head, with --http
  {\"warning\":\"…\",\"offset\":N}  a problem (\"http_offset\" for offsets in the response)
The output is the same for every --feed-size.
Exit status: 0 parsed; 1 with --http, the input is not a well-formed HTTP/1 response (a warning
says why); 2 the input cannot be read.")]
struct ParseArgs {
    /// The captured stream; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    file: Option<std::path::PathBuf>,
    /// The input is a whole HTTP/1 response: print its head, decode Content-Length or chunked
    /// framing, then parse the body.
    #[arg(long)]
    http: bool,
    /// Feed the parser pieces of N bytes (default: each read as it comes).
    #[arg(long, value_name = "N")]
    feed_size: Option<std::num::NonZeroUsize>,
    /// The last event ID from an earlier connection (what a browser sends as Last-Event-ID).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    #[command(flatten)]
    limits: cli::read_limits::ParserLimitArgs,
}

fn cmd_parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    use std::io::{BufWriter, Read};
    use streamcheck::transcript::inspect::{InspectError, InspectOptions, inspect};

    let options = InspectOptions {
        http: args.http,
        feed_size: args.feed_size,
        last_event_id: args.last_event_id,
        limits: args.limits.sse(),
        http_config: args.limits.http(),
    };
    let stdin_path = std::path::Path::new("-");
    let (input, name): (Box<dyn Read>, String) = match &args.file {
        Some(path) if path.as_path() != stdin_path => {
            let file = std::fs::File::open(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot open {}: {e}; give the path of a captured stream, or - to read \
                     standard input",
                    path.display()
                )
            })?;
            (Box::new(file), path.display().to_string())
        }
        _ => (
            Box::new(std::io::stdin().lock()),
            "standard input".to_owned(),
        ),
    };
    let out = BufWriter::new(std::io::stdout().lock());
    match inspect(input, out, &options) {
        Ok(inspected) if inspected.malformed => Ok(ExitCode::FAILURE),
        Ok(_) => Ok(ExitCode::SUCCESS),
        // A reader that stopped early (`| head`) is not an error.
        Err(InspectError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(InspectError::Read(e)) => Err(anyhow::anyhow!(
            "cannot read {name}: {e}; check that it is a readable file, not a directory"
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// mock-api

const MOCK_API_HELP: &str = "\
Output: at startup, stdout gets `url: URL`, then `cert: PATH` (generated CA, with --tls) and
`socket: PATH` (with --socket), one per line, for scripts to read; stderr gets one line per
request unless --quiet. SIGINT or SIGTERM stops the mock (exit 0).

Patterns (X-Test-Pattern header, else a [[pattern:SPEC]] directive in the prompt):
  default, unicode, short, long, abort:N, finish:R, escapes, split:N, coalesced, huge-line, bom,
  crlf, cr, nospace, comments, multiline, spaced, error:STATUS, stall:MS, reset:N, delay:MS,
  script:ID. GET /_streamcheck/patterns describes each. [[nonce:TOKEN]] in the prompt tags the
  request; GET /_streamcheck/requests?nonce=TOKEN returns what the mock received and sent.

Scripts: POST /_streamcheck/scripts with
  {\"status\":200, \"headers\":{...}, \"writes\":[{\"content\":\"Hi\"}, {\"text\":\"data: x\\n\\n\", \"delay_ms\":20},
   {\"hex\":\"e282\"}], \"ending\":\"done\"|\"close\"|\"reset\"|\"stall\"}
  answers {\"id\":\"s1\"}; select it with the pattern script:s1.";

#[derive(clap::Args)]
#[command(after_long_help = MOCK_API_HELP)]
struct MockApiArgs {
    /// TCP address to listen on; port 0 picks a free port (the URL printed has the real one).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// Also listen on this Unix socket (same protocols; a stale socket file is replaced).
    #[arg(long, value_name = "PATH")]
    socket: Option<std::path::PathBuf>,
    /// Chunks in the default answer (at most 100,000, as for abort:N: each request builds them
    /// all).
    #[arg(
        long,
        default_value_t = 18,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(..=100_000)
    )]
    chunk_count: u64,
    /// Milliseconds between chunks; the first chunk goes at once.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    chunk_delay_ms: u64,
    /// Serve TLS (ALPN h2 and http/1.1) with a generated CA for localhost, 127.0.0.1 and ::1.
    #[arg(long)]
    tls: bool,
    /// PEM certificate chain to serve instead of a generated one (implies TLS).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<std::path::PathBuf>,
    /// Write the generated CA certificate here (kept at exit) instead of a temporary file.
    #[arg(
        long,
        requires = "tls",
        conflicts_with = "tls_cert",
        value_name = "FILE"
    )]
    ca_out: Option<std::path::PathBuf>,
    /// Requests kept in the request log; the oldest are dropped past this.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    log_capacity: usize,
    /// Print no per-request lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn cmd_mock_api(args: MockApiArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    use std::time::Duration;
    use streamcheck::mock::{
        MockConfig, MockServer, RequestEnd, RequestRecord, TlsMode, Transport,
    };

    raise_fd_limit();
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ if args.tls => TlsMode::SelfSigned {
            ca_out: args.ca_out,
        },
        _ => TlsMode::Off,
    };
    let print_request = |r: &RequestRecord| {
        let end = match r.end {
            RequestEnd::InProgress => "in progress".to_owned(),
            RequestEnd::Completed => "completed".to_owned(),
            RequestEnd::Cancelled { at_write } => {
                format!("cancelled by the client at write {at_write}")
            }
            RequestEnd::Reset => "reset by the mock".to_owned(),
            RequestEnd::ShutDown => "cut by shutdown".to_owned(),
        };
        let bytes = r.writes.last().map_or(0, |w| w.end);
        let took_ms = r
            .end_ns
            .unwrap_or(r.arrival_ns)
            .saturating_sub(r.arrival_ns)
            / 1_000_000;
        let pattern = match &r.pattern {
            Some(p) => format!(" pattern={p} ({:?})", r.pattern_channel).to_lowercase(),
            None => String::new(),
        };
        let nonce = r
            .nonce
            .as_ref()
            .map_or(String::new(), |n| format!(" nonce={n}"));
        let error = r.error.as_ref().map_or(String::new(), |e| format!(": {e}"));
        eprintln!(
            "#{} {}{}{} {} {}{pattern}{nonce} -> {} {end}, {} writes, {bytes} bytes, {took_ms} ms{error}",
            r.id,
            r.http_version,
            if r.tls { " tls" } else { "" },
            if r.transport == Transport::Unix {
                " unix"
            } else {
                ""
            },
            r.method,
            r.path,
            r.status,
            r.writes.len(),
        );
    };
    let config = MockConfig {
        listen: args.listen,
        socket: args.socket,
        tls,
        settings: streamcheck::pattern::MockSettings {
            // At most 100,000 (the parser's range), so it fits.
            chunk_count: usize::try_from(args.chunk_count).unwrap_or(usize::MAX),
            chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        },
        log_capacity: args.log_capacity,
        on_request_end: (!args.quiet).then(|| std::sync::Arc::new(print_request) as _),
        ..MockConfig::default()
    };
    let mock = MockServer::start(config)?;
    // Listen for the signals before the startup lines go out: whoever reads them may signal at
    // once, and a signal that arrives before its handler kills the process uncleanly.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        let _context = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "url: {}", mock.base_url())?;
    if let Some(cert) = mock.cert_path() {
        writeln!(out, "cert: {}", cert.display())?;
    }
    if let Some(socket) = mock.socket_path() {
        writeln!(out, "socket: {}", socket.display())?;
    }
    out.flush()?;
    drop(out);
    if !args.quiet {
        eprintln!(
            "streamcheck mock-api: serving HTTP/1.1 and HTTP/2 on {}; SIGINT or SIGTERM stops it",
            mock.base_url()
        );
    }

    runtime.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    });
    mock.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// Serving thousands of concurrent streams needs more descriptors than the usual soft limit
/// of 1024: raise the soft limit to the hard one.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Best effort: at the old limit the mock still works, with fewer connections.
        let _ = setrlimit(Resource::Nofile, raised);
    }
}

// ---------------------------------------------------------------------------------------------
// run

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

Exit status: 0 no scenario failed, 1 a scenario failed or the daemon died, 2 usage or
environment error (socket missing, permission, io_uring unavailable, mock unreachable),
129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM.";

/// `--pair`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PairArg {
    /// A connected loopback TCP pair, as Apache hands off.
    Tcp,
    /// An AF_UNIX socketpair.
    Unix,
}

/// `--socket-type`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SocketTypeArg {
    /// SOCK_SEQPACKET, as Apache connects.
    Seqpacket,
    /// SOCK_STREAM, for daemons that listen as a stream socket.
    Stream,
}

impl From<PairArg> for streamcheck::handoff::PairKind {
    fn from(arg: PairArg) -> Self {
        match arg {
            PairArg::Tcp => Self::Tcp,
            PairArg::Unix => Self::Unix,
        }
    }
}

impl From<SocketTypeArg> for streamcheck::handoff::SocketType {
    fn from(arg: SocketTypeArg) -> Self {
        match arg {
            SocketTypeArg::Seqpacket => Self::SeqPacket,
            SocketTypeArg::Stream => Self::Stream,
        }
    }
}

fn strictness(strict: bool) -> streamcheck::verdict::Strictness {
    use streamcheck::verdict::Strictness;
    if strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    }
}

#[derive(clap::Args)]
#[command(after_long_help = RUN_HELP)]
struct RunArgs {
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
    read: cli::read_limits::ReadLimitArgs,
}

fn cmd_run(args: RunArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::report::{self, Options, Output};
    use streamcheck::scenario::{self, MockOptions, SuiteConfig};

    // First, so that a signal from now on stops the run cleanly, daemon included.
    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;
    let mock = MockOptions {
        tls: !args.mock_plain,
        chunk_count: args.chunk_count,
        chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
    };
    let target = cli::target::daemon_target(
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

// ---------------------------------------------------------------------------------------------
// list

/// `list --format`.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum ListFormat {
    /// Aligned text by category.
    #[default]
    Human,
    /// One JSON document.
    Json,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: ListFormat,
}

fn cmd_list(args: ListArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let text = match args.format {
        ListFormat::Human => streamcheck::scenario::list_human(),
        ListFormat::Json => format!("{:#}\n", streamcheck::scenario::list_json()),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// ref-daemon

#[derive(clap::Args)]
#[command(
    after_help = "The upstream comes from the environment: OPENAI_API_BASE (required, \
    e.g. http://127.0.0.1:28080/v1), OPENAI_API_KEY, OPENAI_INSECURE_SSL=true (accept a \
    self-signed certificate), OPENAI_HTTP2_ENABLED (true: h2c on http:// bases; false: HTTP/1.1 \
    only), OPENAI_MODEL (when the handoff names no model).\n\
    SIGTERM or SIGINT: stop accepting, remove the socket, let streams finish (--drain-timeout)."
)]
struct RefDaemonArgs {
    /// Unix socket to listen on (a stale socket file there is replaced).
    #[arg(long, value_name = "PATH")]
    socket: Option<std::path::PathBuf>,
    /// Permissions of the socket file, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "0666", value_parser = parse_socket_mode)]
    socket_mode: u32,
    /// Run with one realistic bug; `--fault list` prints them.
    #[arg(long, value_name = "NAME")]
    fault: Option<FaultArg>,
    /// The shape of the events sent to clients (composes with --fault).
    #[arg(long, value_name = "FORMAT", default_value = "extended")]
    client_format: streamcheck::refdaemon::ClientFormat,
    /// Seconds to wait for the upstream's response head, and between two upstream reads.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    upstream_timeout: f64,
    /// Seconds a client may read nothing before its stream is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    client_timeout: f64,
    /// Seconds a shutdown waits for running streams before ending them.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    drain_timeout: f64,
}

/// `--fault`: a fault mode, or `list`.
#[derive(Clone, Copy)]
enum FaultArg {
    List,
    Mode(streamcheck::refdaemon::Fault),
}

impl clap::ValueEnum for FaultArg {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: std::sync::LazyLock<Vec<FaultArg>> = std::sync::LazyLock::new(|| {
            let modes = streamcheck::refdaemon::Fault::all()
                .iter()
                .map(|f| FaultArg::Mode(*f));
            std::iter::once(FaultArg::List).chain(modes).collect()
        });
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            FaultArg::List => Some(
                clap::builder::PossibleValue::new("list").help("Print the fault modes and exit"),
            ),
            FaultArg::Mode(fault) => clap::ValueEnum::to_possible_value(fault),
        }
    }
}

fn parse_socket_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode such as 0666 or 0660"
        )),
    }
}

fn seconds(name: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--{name} {secs}: give a positive number of seconds"))
}

fn cmd_ref_daemon(args: RefDaemonArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::refdaemon::{self, Config, Fault, UpstreamConfig};
    let fault = match args.fault {
        Some(FaultArg::List) => {
            for fault in Fault::all() {
                println!("{:<32} {}", fault.name(), fault.description());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(FaultArg::Mode(fault)) => Some(fault),
        None => None,
    };
    let Some(socket) = args.socket else {
        // Not `required`, so that `--fault list` works alone; this is the error clap would give.
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        if let Some(sub) = cmd.find_subcommand_mut("ref-daemon") {
            sub.error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--socket PATH is required",
            )
            .exit();
        }
        anyhow::bail!("--socket PATH is required");
    };
    let mut config = Config::new(socket);
    config.socket_mode = args.socket_mode;
    config.fault = fault;
    config.client_format = args.client_format;
    config.timeouts.upstream = seconds("upstream-timeout", args.upstream_timeout)?;
    config.timeouts.client = seconds("client-timeout", args.client_timeout)?;
    config.drain = seconds("drain-timeout", args.drain_timeout)?;
    refdaemon::run(config, UpstreamConfig::from_env()?)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// mutation

const MUTATION_HELP: &str = "\
Starts this binary's reference daemon once per fault mode (ref-daemon --fault NAME) beside an
embedded mock, runs the scenarios that must catch that mode, and checks that each gives the
verdict the table expects on the assertion that names the bug; then runs the whole catalog
against the daemon without a fault, which must pass with nothing non-strict or failed.

Exit status: 0 every fault mode caught as the table says and the correct daemon clean, 1
otherwise (what is not proven is listed), 2 usage or environment error.";

/// `mutation --format`.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum MutationFormat {
    /// Aligned text, one line per catcher.
    #[default]
    Human,
    /// One JSON document.
    Json,
    /// A Markdown table (the README's).
    Markdown,
}

#[derive(clap::Args)]
#[command(after_long_help = MUTATION_HELP)]
struct MutationArgs {
    /// Suite runs at once, each with its own daemon and mock.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
    jobs: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: MutationFormat,
    /// Run the whole catalog against every fault mode and list every scenario each trips,
    /// not only its catchers.
    #[arg(long)]
    full: bool,
}

fn cmd_mutation(args: MutationArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    use streamcheck::scenario::mutation::{self, MutationConfig, Scope};

    let exe = std::env::current_exe().map_err(|e| {
        anyhow::anyhow!(
            "cannot find the streamcheck binary to start its ref-daemon: {e}; run it by its path"
        )
    })?;
    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;
    let mut config = MutationConfig::new(exe);
    config.jobs = args.jobs;
    config.interrupt = Some(interrupt);
    if args.full {
        config.scope = Scope::Full;
    }
    let report = mutation::run(&config)?;
    let text = match args.format {
        MutationFormat::Human => mutation::human(&report),
        MutationFormat::Json => format!("{:#}\n", mutation::json(&report)),
        MutationFormat::Markdown => mutation::markdown(&report),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if let Some(signal) = interrupt.signal() {
        eprintln!(
            "streamcheck: interrupted by {signal}: the runs cut short are listed as problems"
        );
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(ExitCode::from(report.exit_code()))
}

// ---------------------------------------------------------------------------------------------
// prop

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
struct PropArgs {
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
    read: cli::read_limits::ReadLimitArgs,
}

fn cmd_prop(args: PropArgs) -> anyhow::Result<ExitCode> {
    use streamcheck::prop::daemon::{self, Case, PropConfig, render};
    use streamcheck::scenario::MockOptions;

    let interrupt = streamcheck::signals::watch().map_err(|e| anyhow::anyhow!(e))?;

    let mock = MockOptions {
        tls: !args.mock_plain,
        ..MockOptions::default()
    };
    let target = cli::target::daemon_target(
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
        println!(
            "{}",
            render::failure(failure, &config.target, config.strictness)
        );
    }
    println!("{}", render::summary(&report));
    Ok(ExitCode::from(report.exit_code()))
}

// ---------------------------------------------------------------------------------------------
// stress

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
}

#[derive(clap::Args)]
#[command(after_long_help = STRESS_HELP)]
struct StressArgs {
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
    #[arg(long, value_name = "BYTES", default_value = "2KiB", value_parser = cli::read_limits::byte_size)]
    max_head_bytes: u64,
    /// Longest SSE line accepted [default: room for the expected events, at least 1 KiB;
    /// 4 KiB with --no-upstream].
    #[arg(long, value_name = "BYTES", value_parser = cli::read_limits::byte_size)]
    max_line_bytes: Option<u64>,
}

fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    streamcheck::stress::parse_duration(text)
}

fn cmd_stress(args: StressArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    use streamcheck::stress::{
        self, DaemonSpec, LoadModel, MockOptions, StressConfig, StressError, Upstream,
    };

    let daemon = match (&args.daemon_cmd, &args.socket) {
        (Some(command), socket) => DaemonSpec::Command {
            command: command.clone(),
            socket: socket.clone(),
            start_timeout: args.start_timeout,
        },
        (None, Some(socket)) => DaemonSpec::Running {
            socket: socket.clone(),
            pid: args.daemon_pid,
        },
        // clap's `required_unless_present` rules this out.
        (None, None) => anyhow::bail!("give --socket PATH, or --daemon-cmd CMD"),
    };
    let upstream = match (&args.backend, args.no_upstream, &args.daemon_cmd) {
        (Some(url), _, _) => Upstream::Remote(url.clone()),
        (None, true, _) => Upstream::None,
        (None, false, Some(_)) => Upstream::Embedded(MockOptions {
            tls: !args.mock_plain,
            chunk_count: args.chunk_count,
            chunk_delay: std::time::Duration::from_millis(args.chunk_delay_ms),
        }),
        (None, false, None) => {
            eprintln!(
                "streamcheck: a running daemon needs its upstream: --backend URL (the mock API \
                 its OPENAI_API_BASE points at), or --no-upstream for a daemon with a built-in \
                 backend"
            );
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
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write the report to {}: {e}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A reader that stopped early (`| head`) is not an error.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
    }
    if let Some(signal) = interrupt.signal() {
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(ExitCode::from(report.exit_code()))
}
