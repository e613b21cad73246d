//! `streamcheck report`: work on saved reports. `report merge`: the cross-daemon matrix.

use std::path::PathBuf;
use std::process::ExitCode;

const MERGE_HELP: &str = "\
Reads JSON reports (schema version 2, as `run --format json` writes them) and writes one HTML
page: scenarios × daemons, one cell per verdict, a row highlighted where the daemons differ.
Each column is named after its file (reports/go.json is `go`) and each cell links to
go.html#ID, the daemon's HTML report at that scenario, in the same directory as the matrix.
Write both reports of a daemon in one run:

  streamcheck run --daemon-cmd 'go-daemon --socket {socket}' \\
      --format html -o reports/go.html --json-report reports/go.json
  streamcheck report merge reports/*.json -o reports/matrix.html

`make test FORMAT=html` does this for every configured daemon (in target/reports/).

Exit status: 0 written, 2 a report cannot be read or the matrix cannot be written.";

#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(clap::Subcommand)]
enum ReportCommand {
    /// Merge JSON reports of several daemons into one HTML matrix (scenarios × daemons).
    #[command(after_long_help = MERGE_HELP)]
    Merge(MergeArgs),
}

#[derive(clap::Args)]
struct MergeArgs {
    /// JSON reports, one per daemon, in the order of the matrix's columns.
    #[arg(value_name = "REPORT.json", required = true)]
    reports: Vec<PathBuf>,
    /// Write the matrix to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Merge(merge) => run_merge(merge),
    }
}

fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    use streamcheck::report::html::matrix::{self, Column};

    let columns = args
        .reports
        .iter()
        .map(|path| Column::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    // Columns and the pages they link to are named by file: two of one name would be one page.
    for (i, c) in columns.iter().enumerate() {
        if let Some(j) = columns[..i].iter().position(|d| d.name == c.name) {
            anyhow::bail!(
                "{} and {} would both be the column `{}` linking to {}.html: give each \
                 daemon's reports a name of its own",
                args.reports[j].display(),
                args.reports[i].display(),
                c.name,
                c.name
            );
        }
    }
    let page = matrix::render(&columns);
    match &args.output {
        Some(path) => std::fs::write(path, page).map_err(|e| {
            anyhow::anyhow!(
                "cannot write the matrix to {}: {e}; check that its directory exists and is writable",
                path.display()
            )
        })?,
        None => std::io::stdout().lock().write_all(page.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
