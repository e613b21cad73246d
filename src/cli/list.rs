//! `streamcheck list`: the scenario catalog.

use std::process::ExitCode;

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
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: ListFormat,
}

pub fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let text = match args.format {
        ListFormat::Human => streamcheck::scenario::list_human(),
        ListFormat::Json => format!("{:#}\n", streamcheck::scenario::list_json()),
    };
    super::output::stdout(&text);
    Ok(ExitCode::SUCCESS)
}
