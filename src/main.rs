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
    Parse(cli::parse::ParseArgs),
    /// Serve the mock OpenAI streaming API.
    MockApi(cli::mock_api::MockApiArgs),
    /// Run the scenario suite against a daemon.
    Run(cli::run::RunArgs),
    /// List the scenario catalog.
    List(cli::list::ListArgs),
    /// Run the reference streaming daemon (optionally with a fault mode).
    RefDaemon(cli::ref_daemon::RefDaemonArgs),
    /// Run the suite against every fault mode of the reference daemon: which scenarios catch each.
    Mutation(cli::mutation::MutationArgs),
    /// Generate upstream streams and client behaviours; shrink failures to a minimal case.
    Prop(cli::prop::PropArgs),
    /// Drive thousands of concurrent streams with integrity checks and latency histograms.
    Stress(cli::stress::StressArgs),
    /// Find the most concurrent streams a daemon sustains within its objectives (SLOs).
    Capacity(cli::capacity::CapacityArgs),
    /// Work on saved reports: `report merge` draws the cross-daemon matrix.
    Report(cli::report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => cli::parse::run(args),
        Command::MockApi(args) => cli::mock_api::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::List(args) => cli::list::run(args),
        Command::RefDaemon(args) => cli::ref_daemon::run(args),
        Command::Mutation(args) => cli::mutation::run(args),
        Command::Prop(args) => cli::prop::run(args),
        Command::Stress(args) => cli::stress::run(args),
        Command::Capacity(args) => cli::capacity::run(args),
        Command::Report(args) => cli::report::run(args),
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
