//! `streamcheck parse`: decode a captured event stream and print its events as JSON.

use std::process::ExitCode;

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
pub struct ParseArgs {
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
    limits: crate::cli::read_limits::ParserLimitArgs,
}

pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
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
