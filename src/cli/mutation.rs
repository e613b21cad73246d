//! `streamcheck mutation`: the suite against every fault mode of the reference daemon.

use std::process::ExitCode;

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
pub struct MutationArgs {
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

pub fn run(args: MutationArgs) -> anyhow::Result<ExitCode> {
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
    super::output::stdout(&text);
    if let Some(signal) = interrupt.signal() {
        eprintln!(
            "streamcheck: interrupted by {signal}: the runs cut short are listed as problems"
        );
        return Ok(ExitCode::from(signal.exit_code()));
    }
    Ok(ExitCode::from(report.exit_code()))
}
