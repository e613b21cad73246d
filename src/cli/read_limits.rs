//! `--max-head-bytes`, `--max-line-bytes`, `--max-event-bytes`, `--max-response-bytes`,
//! `--max-events` and `--keep-bytes`: how `run`, `prop` and `parse` read a daemon's streams.

use streamcheck::transcript::ReadLimits;
use streamcheck::units::byte_size;

/// The parsers' limits (also `parse`'s).
#[derive(clap::Args, Debug, Clone)]
pub struct ParserLimitArgs {
    /// Largest response head (status line and headers) accepted.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = byte_size)]
    pub max_head_bytes: u64,
    /// Longest SSE line accepted.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = byte_size)]
    pub max_line_bytes: u64,
    /// Largest SSE event data accepted.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = byte_size)]
    pub max_event_bytes: u64,
}

impl ParserLimitArgs {
    /// The SSE parser's limits.
    pub fn sse(&self) -> streamcheck::sse::Limits {
        streamcheck::sse::Limits::default()
            .with_max_line(size(self.max_line_bytes))
            .with_max_event(size(self.max_event_bytes))
    }

    /// The HTTP/1 parser's configuration.
    pub fn http(&self) -> streamcheck::http1::Config {
        streamcheck::http1::Config::default().max_head_bytes(size(self.max_head_bytes))
    }
}

/// The flags that bound what one stream may cost. Past a bound the stream is settled: it fails
/// for that reason and streamcheck closes it.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadLimitArgs {
    #[command(flatten)]
    pub parser: ParserLimitArgs,
    /// Most bytes one stream may send [default: four times the upstream answer plus 256 KiB].
    #[arg(long, value_name = "BYTES", value_parser = byte_size)]
    pub max_response_bytes: Option<u64>,
    /// Most events one stream may send [default: four per upstream piece plus 1,024].
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Received bytes a report keeps from each end of a stream.
    #[arg(long, value_name = "BYTES", default_value = "32KiB", value_parser = byte_size)]
    pub keep_bytes: u64,
}

impl ReadLimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> ReadLimits {
        ReadLimits {
            max_head_bytes: size(self.parser.max_head_bytes),
            max_line_bytes: size(self.parser.max_line_bytes),
            max_event_bytes: size(self.parser.max_event_bytes),
            max_response_bytes: self.max_response_bytes,
            max_events: self.max_events,
            keep_bytes: size(self.keep_bytes),
        }
    }
}

fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
