//! The reference daemon: a correct socket-handoff streaming daemon, and the same daemon with one
//! realistic bug at a time ([`Fault`]), so the suite can prove it catches each.
//!
//! `streamcheck ref-daemon --socket S [--socket-mode 0666] [--fault NAME]`, with the upstream
//! from `OPENAI_API_BASE`, `OPENAI_API_KEY`, `OPENAI_INSECURE_SSL`, `OPENAI_HTTP2_ENABLED`,
//! `OPENAI_HTTP2_CONNECTION_WINDOW` (and `OPENAI_MODEL`, the model when the handoff names none).
//!
//! What it does, per PROTOCOL.md:
//! - listens on a SOCK_SEQPACKET Unix socket (a stale socket file is replaced, a live one or a
//!   non-socket is refused), chmod'ed to `--socket-mode`;
//! - takes each handoff with one `recvmsg` into a 256 KiB buffer (`handoff.rs`): a truncated
//!   message gets `413`, empty data (the single NUL) or bad JSON `400`, each with a JSON body; a
//!   message without exactly one stream-socket fd is logged and dropped (there is nobody to answer);
//! - calls the upstream over HTTP/2 or HTTP/1.1 (`upstream.rs`) with the handoff's messages (or
//!   prompt), model, max_tokens, temperature, system, `X-Test-Pattern` and `X-Request-Id`;
//! - answers `200` with `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
//!   `Connection: close`, `X-Accel-Buffering: no` and the handoff's `response_headers`, once the
//!   upstream has answered 2xx, then relays each content delta as `data: {"content":"…"}`, or
//!   in the format `--client-format` names (`wire.rs`);
//! - ends with `data: [DONE]` only for a complete answer, with an error event for anything else,
//!   and closes; HTTP error statuses when the upstream fails before the head (`relay.rs`);
//! - cancels the upstream request when the client leaves, and bounds every wait: handoff message,
//!   upstream head, upstream silence, a client that stops reading;
//! - on SIGTERM or SIGINT stops accepting, removes its socket file, lets running streams finish
//!   for up to the drain time, then ends the rest with an error event (a second signal skips the
//!   wait).

mod abuse;
mod client;
mod fault;
mod handoff;
mod listener;
#[cfg(test)]
mod props;
mod reader;
mod relay;
mod upstream;
#[cfg(test)]
mod upstream_tests;
mod wire;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustix::net::SocketType;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use fault::{EXIT_AFTER_HANDOFFS, Fault};
pub use relay::Timeouts;
pub use upstream::{ConfigError, DEFAULT_MODEL, Http2Mode, UpstreamConfig};
pub use wire::ClientFormat;

/// How long streams still running after the drain time get to write their error event.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Everything the daemon is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Unix socket path to listen on.
    pub socket: PathBuf,
    /// Permissions of the socket file (Apache's user must be able to connect).
    pub socket_mode: u32,
    /// The one bug to have, if any.
    pub fault: Option<Fault>,
    /// The shape of the events the client receives.
    pub client_format: ClientFormat,
    pub timeouts: Timeouts,
    /// How long a shutdown waits for running streams before ending them.
    pub drain: Duration,
}

impl Config {
    /// Defaults: mode 0666, handoff 5 s, upstream 10 s, client 30 s, drain 10 s.
    pub fn new(socket: PathBuf) -> Self {
        Config {
            socket,
            socket_mode: 0o666,
            fault: None,
            client_format: ClientFormat::default(),
            timeouts: Timeouts {
                handoff: Duration::from_secs(5),
                upstream: Duration::from_secs(10),
                client: Duration::from_secs(30),
            },
            drain: Duration::from_secs(10),
        }
    }
}

/// Why the daemon could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum RefDaemonError {
    #[error(transparent)]
    Upstream(#[from] ConfigError),
    #[error("cannot {what} socket {path}: {source}")]
    Socket {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("{0} exists and is not a socket; remove it or choose another --socket")]
    NotASocket(PathBuf),
    #[error("another daemon is listening on {0}; stop it or choose another --socket")]
    InUse(PathBuf),
    #[error("cannot set up the runtime or signal handlers: {0}")]
    Runtime(io::Error),
    #[error("accepting connections failed: {0}")]
    Accept(io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down cleanly.
pub fn run(config: Config, upstream: UpstreamConfig) -> Result<(), RefDaemonError> {
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ref-daemon")
        .build()
        .map_err(RefDaemonError::Runtime)?;
    runtime.block_on(serve(config, upstream))
}

async fn serve(config: Config, upstream: UpstreamConfig) -> Result<(), RefDaemonError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(RefDaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RefDaemonError::Runtime)?;
    let client = upstream::Upstream::new(&upstream, config.timeouts.upstream, config.fault)?;
    let kind = if fault::is(config.fault, Fault::StreamSocket) {
        // Bug (stream-socket): SOCK_STREAM, where Apache connects with SOCK_SEQPACKET.
        SocketType::STREAM
    } else {
        SocketType::SEQPACKET
    };
    let listener = listener::Listener::bind(&config.socket, config.socket_mode, kind)?;
    eprintln!(
        "ref-daemon: listening on {} ({}, mode {:04o}), upstream {}, client format {}{}",
        config.socket.display(),
        if kind == SocketType::STREAM {
            "stream"
        } else {
            "seqpacket"
        },
        config.socket_mode,
        upstream.base,
        config.client_format.name(),
        config
            .fault
            .map(|f| format!(", fault {f}"))
            .unwrap_or_default(),
    );
    let (abort_tx, abort_rx) = watch::channel(false);
    let shared = Arc::new(relay::Shared::new(
        config.fault,
        config.client_format,
        client,
        config.timeouts,
        abort_rx,
    ));
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    // Resource abuse (never-accept): the listener's backlog fills and nobody takes a handoff.
    let accepts = !fault::is(config.fault, Fault::NeverAccept);
    // Resource abuse (never-read-handoff): accepted connections held, their message unread.
    let mut unread = Vec::new();
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            accepted = listener.accept(), if accepts => match accepted {
                Ok(sock) => {
                    next_id += 1;
                    if fault::is(config.fault, Fault::ExitAfterHandoffs)
                        && next_id > fault::EXIT_AFTER_HANDOFFS
                    {
                        // Resource abuse (exit-after-handoffs): dies like a crash, leaving
                        // its socket file and every open stream behind.
                        eprintln!(
                            "ref-daemon: exiting after {} handoffs (fault exit-after-handoffs)",
                            fault::EXIT_AFTER_HANDOFFS
                        );
                        std::process::exit(1);
                    }
                    if fault::is(config.fault, Fault::NeverReadHandoff) {
                        unread.push(sock);
                    } else {
                        tasks.spawn(relay::serve(sock, shared.clone(), next_id));
                    }
                }
                Err(err) => match rustix::io::Errno::from_io_error(&err) {
                    // Out of fds or memory: keep serving what is open; retry shortly.
                    Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE
                        | rustix::io::Errno::NOBUFS | rustix::io::Errno::NOMEM) => {
                        eprintln!("ref-daemon: accept: {err}; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    // The connecting side gave up before we accepted it.
                    Some(rustix::io::Errno::CONNABORTED | rustix::io::Errno::INTR | rustix::io::Errno::PROTO) => {}
                    _ => {
                        listener.close();
                        return Err(RefDaemonError::Accept(err));
                    }
                },
            },
            Some(joined) = tasks.join_next() => report_panic(joined),
        }
    }
    listener.close();
    drop(unread);
    eprintln!(
        "ref-daemon: stopping; {} connection(s) open, draining for up to {:?}",
        tasks.len(),
        config.drain
    );
    let drained = tokio::select! {
        drained = tokio::time::timeout(config.drain, join_all(&mut tasks)) => drained.is_ok(),
        _ = sigterm.recv() => false,
        _ = sigint.recv() => false,
    };
    if !drained {
        eprintln!(
            "ref-daemon: ending {} stream(s) with an error event",
            tasks.len()
        );
        let _ = abort_tx.send(true);
        if tokio::time::timeout(ABORT_GRACE, join_all(&mut tasks))
            .await
            .is_err()
        {
            tasks.shutdown().await;
        }
    }
    eprintln!("ref-daemon: stopped");
    Ok(())
}

/// Each stream holds a client fd, a handoff fd for a moment and, over HTTP/1.1, an upstream
/// connection: lift the soft fd limit to the hard one (as Go's runtime does) so thousands of
/// streams fit. Failure only means the old limit stays.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while let Some(joined) = tasks.join_next().await {
        report_panic(joined);
    }
}

fn report_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined
        && err.is_panic()
    {
        eprintln!("ref-daemon: a connection task panicked: {err}");
    }
}
