//! The `streamcheck` command line: parse arguments, call the library, map errors to exit codes
//! (0 all passed, 1 something failed, 2 usage or environment error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
The output is the same for every --feed-size.")]
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
}

fn cmd_parse(args: ParseArgs) -> anyhow::Result<ExitCode> {
    use std::io::{BufWriter, Read};
    use streamcheck::transcript::inspect::{InspectError, InspectOptions, inspect};

    let options = InspectOptions {
        http: args.http,
        feed_size: args.feed_size,
        last_event_id: args.last_event_id,
        ..InspectOptions::default()
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

#[derive(clap::Args)]
struct MockApiArgs {}

fn cmd_mock_api(_args: MockApiArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`mock-api` is not built yet")
}

// ---------------------------------------------------------------------------------------------
// run

#[derive(clap::Args)]
struct RunArgs {}

fn cmd_run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`run` is not built yet")
}

// ---------------------------------------------------------------------------------------------
// list

#[derive(clap::Args)]
struct ListArgs {}

fn cmd_list(_args: ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`list` is not built yet")
}

// ---------------------------------------------------------------------------------------------
// ref-daemon

#[derive(clap::Args)]
struct RefDaemonArgs {}

fn cmd_ref_daemon(_args: RefDaemonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ref-daemon` is not built yet")
}

// ---------------------------------------------------------------------------------------------
// prop

#[derive(clap::Args)]
struct PropArgs {}

fn cmd_prop(_args: PropArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`prop` is not built yet")
}

// ---------------------------------------------------------------------------------------------
// stress

#[derive(clap::Args)]
struct StressArgs {}

fn cmd_stress(_args: StressArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`stress` is not built yet")
}
