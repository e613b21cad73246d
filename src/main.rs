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

#[derive(clap::Args)]
struct ParseArgs {}

fn cmd_parse(_args: ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`parse` is not built yet")
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
