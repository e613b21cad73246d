//! `streamcheck mock-api`: serve the mock OpenAI streaming API until a signal.

use std::process::ExitCode;

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
pub struct MockApiArgs {
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

pub fn run(args: MockApiArgs) -> anyhow::Result<ExitCode> {
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
