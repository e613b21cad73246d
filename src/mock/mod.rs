//! The mock OpenAI streaming API: HTTP/1.1 and HTTP/2, cleartext and TLS, scriptable to the byte,
//! with a request log.
//!
//! Every scenario, property case and stress run needs an upstream that speaks what a real daemon
//! speaks, does exactly what the test asks, and tells the test afterwards what the daemon sent
//! and when each chunk went out. That is this module. It runs in-process on its own tokio
//! runtime thread ([`MockServer::start`]), or as `streamcheck mock-api`.
//!
//! Routes:
//! - `POST /v1/chat/completions` (and `/chat/completions`): streams a pattern (see
//!   [`crate::pattern`]). The pattern comes from the `X-Test-Pattern` header, or when that is
//!   absent or empty from a `[[pattern:SPEC]]` directive in the last user message (then
//!   `prompt`), else `default`. A `[[nonce:TOKEN]]` directive tags the request in the log, and
//!   with the default pattern it is carried in the content. The response carries
//!   `X-Test-Pattern-Applied` (canonical spec) when a pattern was asked for, and
//!   `x-streamcheck-request-id` (the log id).
//! - `GET /v1/models`, `GET /health`.
//! - `GET /_streamcheck/requests[?nonce=TOKEN][&view=writes]`: the log as JSON
//!   (`{"capacity","dropped","requests":[RequestRecord…]}`); with `view=writes` each record is
//!   only `{"id","nonce","writes":[[ts_ns,end]…]}`, what relay latency needs.
//! - `POST /_streamcheck/scripts`: register a script (format in `script.rs` docs and
//!   `streamcheck mock-api --help`) → `201 {"id":"s1","pattern":"script:s1"}`.
//! - `GET /_streamcheck/patterns`: the catalog, and the settings (`chunk_count`,
//!   `chunk_delay_ms`) the patterns are planned with.
//!
//! Protocols: HTTP/1.1 and HTTP/2 on one port. Cleartext HTTP/2 is prior knowledge only (told
//! apart from HTTP/1.1 by the client preface); an `Upgrade: h2c` request is served as HTTP/1.1.
//! With TLS, ALPN offers `h2` and `http/1.1`.
//!
//! In-process use (the runner, `prop` and `stress` run on their own threads):
//!
//! ```
//! use std::time::Duration;
//! use streamcheck::mock::{MockConfig, MockServer, RequestEnd};
//! use streamcheck::pattern::{self, Ending, UpstreamPlan, Write};
//!
//! let mock = MockServer::start(MockConfig::default()).unwrap();
//! let base = mock.base_url(); // http://127.0.0.1:PORT/v1: the daemon's OPENAI_API_BASE
//! # assert!(base.starts_with("http://127.0.0.1:"));
//! let script = UpstreamPlan::sse(
//!     vec![Write::new(pattern::chunk_event("Hel"), Duration::ZERO)],
//!     Ending::Reset,
//! );
//! let id = mock.register_script(script);
//! let prompt = format!("{} {}", pattern::pattern_directive(&format!("script:{id}")),
//!     pattern::nonce_directive("case-7"));
//! // … hand `prompt` to the daemon, read its stream, then ask what the upstream saw:
//! # let _ = prompt;
//! if let Some(record) = mock.wait_for_end("case-7", Duration::from_millis(10)) {
//!     assert_eq!(record.end, RequestEnd::Reset);
//! }
//! mock.shutdown();
//! ```
//!
//! Refusals are OpenAI-style JSON errors: 400 for a body that is not a chat-completion object,
//! a malformed directive, or an unknown or malformed pattern (listing the valid ones); 404 for an
//! unknown path; 405 (with `Allow`) for a wrong method; 413 for a body over
//! [`MockConfig::max_body_bytes`] (a script over [`MockConfig::max_script_bytes`]). Every request outside `/_streamcheck/` is logged, refusals
//! included, so a daemon calling the wrong path shows up in the log.

#![deny(missing_docs)]

mod log;
mod routes;
mod script;
mod server;
mod stream;
mod tls;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use log::{
    HttpVersion, Message, PatternChannel, RequestBody, RequestEnd, RequestRecord, Transport,
    WriteRecord,
};

use crate::clock::monotonic_ns;
use crate::pattern::{MockSettings, UpstreamPlan};

/// A script is an upstream plan registered at run time and selected with `script:<id>`.
pub type Script = UpstreamPlan;

/// Called once per request when it ends (any way), on a mock runtime thread: keep it short.
pub type EndHook = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// How the mock serves TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Cleartext (HTTP/2 by prior knowledge, HTTP/1.1 otherwise).
    #[default]
    Off,
    /// Generate a CA and a certificate it signs for `localhost`, `127.0.0.1` and `::1`; write
    /// the CA certificate (PEM) to `ca_out`, or to a new file in the temporary directory that is
    /// removed at shutdown. [`MockHandle::cert_path`] names the file: give it to curl's
    /// `--cacert` or to the daemon's trust store.
    SelfSigned {
        /// Where to write the CA certificate.
        ca_out: Option<PathBuf>,
    },
    /// Use this PEM certificate chain and private key.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// Everything [`MockServer::start`] needs.
#[derive(Clone)]
pub struct MockConfig {
    /// TCP address to listen on; port 0 picks a free port ([`MockHandle::local_addr`] tells).
    pub listen: SocketAddr,
    /// Also listen on this Unix socket path (same protocols and TLS setting).
    pub socket: Option<PathBuf>,
    /// TLS.
    pub tls: TlsMode,
    /// Chunk count and delay of the default pattern and the delays of the others.
    pub settings: MockSettings,
    /// Requests kept in the log; the oldest are dropped past this.
    pub log_capacity: usize,
    /// Scripts kept; the oldest are dropped past this.
    pub script_capacity: usize,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest script body accepted by `POST /_streamcheck/scripts` (413 beyond). Larger than
    /// [`MockConfig::max_body_bytes`]: a runner using a mock in another process scripts
    /// multi-megabyte answers (a slow reader must outgrow every socket buffer).
    pub max_script_bytes: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised on HTTP/2.
    pub h2_max_concurrent_streams: u32,
    /// Called when each request ends.
    pub on_request_end: Option<EndHook>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            socket: None,
            tls: TlsMode::Off,
            settings: MockSettings::default(),
            log_capacity: 10_000,
            script_capacity: 10_000,
            max_body_bytes: 1 << 20,
            max_script_bytes: 32 << 20,
            h2_max_concurrent_streams: 10_000,
            on_request_end: None,
        }
    }
}

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("listen", &self.listen)
            .field("socket", &self.socket)
            .field("tls", &self.tls)
            .field("settings", &self.settings)
            .field("log_capacity", &self.log_capacity)
            .field("script_capacity", &self.script_capacity)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_script_bytes", &self.max_script_bytes)
            .field("h2_max_concurrent_streams", &self.h2_max_concurrent_streams)
            .field("on_request_end", &self.on_request_end.is_some())
            .finish()
    }
}

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The TCP address could not be bound.
    #[error("cannot listen on {addr}: {source}; choose another address (port 0 picks a free one)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Unix socket path could not be used.
    #[error("cannot listen on Unix socket {}: {reason}", path.display())]
    Socket {
        /// The path.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("TLS setup failed: {reason}")]
    Tls {
        /// What is wrong and what to do.
        reason: String,
    },
    /// A certificate or key file could not be read or written.
    #[error(
        "certificate file {}: {source}; check the path, its permissions, and that it holds PEM",
        path.display()
    )]
    CertFile {
        /// The file.
        path: PathBuf,
        /// The OS or PEM error.
        source: std::io::Error,
    },
    /// The runtime or its thread could not be started.
    #[error(
        "cannot start the mock's runtime: {source}; the system refused a thread or a descriptor \
         (check ulimit -u and ulimit -n)"
    )]
    Runtime {
        /// The OS error.
        source: std::io::Error,
    },
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) settings: MockSettings,
    pub(crate) log: log::RequestLog,
    pub(crate) scripts: script::ScriptStore,
    pub(crate) max_body: usize,
    pub(crate) max_script: usize,
    pub(crate) shutting_down: AtomicBool,
    on_end: Option<EndHook>,
}

impl Shared {
    /// Ends a logged request and tells the hook.
    pub(crate) fn finish(&self, id: u64, end: RequestEnd) {
        if let Some(record) = self.log.finish(id, end, monotonic_ns())
            && let Some(hook) = &self.on_end
        {
            hook(&record);
        }
    }

    /// Logs a request that is already over (the mock answered it itself).
    pub(crate) fn log_finished(&self, record: RequestRecord) {
        match &self.on_end {
            Some(hook) => {
                let mut copy = record.clone();
                copy.id = self.log.insert(record);
                hook(&copy);
            }
            None => {
                self.log.insert(record);
            }
        }
    }
}

/// What a request's handler knows about its connection.
pub(crate) struct ConnInfo {
    pub(crate) tls: bool,
    pub(crate) transport: Transport,
    pub(crate) peer: Option<SocketAddr>,
    /// Shared with the socket: HTTP/1.1 resets and flush completions.
    pub(crate) control: Arc<server::ConnControl>,
}

/// Starts mock servers.
pub struct MockServer;

impl MockServer {
    /// Sets up TLS, binds, and starts serving on a new thread that owns a multi-threaded tokio
    /// runtime. Returns once the listeners are bound. Callable from any thread, including from
    /// inside another tokio runtime.
    pub fn start(config: MockConfig) -> Result<MockHandle, MockError> {
        let tls = match &config.tls {
            TlsMode::Off => None,
            TlsMode::SelfSigned { ca_out } => Some(tls::self_signed(ca_out.as_deref())?),
            TlsMode::Files { cert, key } => Some(tls::from_files(cert, key)?),
        };
        let ca = tls.as_ref().and_then(|t| t.ca.clone());
        let remove_ca = matches!(&config.tls, TlsMode::SelfSigned { ca_out: None });
        let cleanup_ca = || {
            if let (Some((path, _)), true) = (&ca, remove_ca) {
                let _ = std::fs::remove_file(path);
            }
        };
        let shared = Arc::new(Shared {
            settings: config.settings.clone(),
            log: log::RequestLog::new(config.log_capacity),
            scripts: script::ScriptStore::new(config.script_capacity),
            max_body: config.max_body_bytes,
            max_script: config.max_script_bytes,
            shutting_down: AtomicBool::new(false),
            on_end: config.on_request_end.clone(),
        });
        let serve = server::ServeConfig {
            tls: tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config)),
            h2_max_streams: config.h2_max_concurrent_streams,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (listen, socket, thread_shared) =
            (config.listen, config.socket.clone(), shared.clone());
        let spawned = std::thread::Builder::new()
            .name("streamcheck-mock".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("streamcheck-mock-worker")
                    .build();
                let runtime = match runtime {
                    Ok(rt) => rt,
                    Err(source) => return drop(ready_tx.send(Err(MockError::Runtime { source }))),
                };
                let listeners = match runtime.block_on(server::bind(listen, socket.as_deref())) {
                    Ok(l) => l,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let addr = listeners.tcp.local_addr();
                let _ = ready_tx.send(addr.map_err(|source| MockError::Bind {
                    addr: listen,
                    source,
                }));
                runtime.block_on(server::run(listeners, serve, thread_shared, stop_rx));
                // Drops every connection still open; their bodies log `ShutDown`.
                runtime.shutdown_timeout(Duration::from_secs(2));
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(source) => {
                cleanup_ca();
                return Err(MockError::Runtime { source });
            }
        };
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                let _ = thread.join();
                cleanup_ca();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                cleanup_ca();
                let source = std::io::Error::other("the mock thread ended during startup");
                return Err(MockError::Runtime { source });
            }
        };
        Ok(MockHandle {
            addr,
            tls: config.tls != TlsMode::Off,
            socket: config.socket,
            ca,
            remove_ca,
            shared,
            running: Mutex::new(Some((stop_tx, thread))),
        })
    }
}

/// A running mock. Dropping it shuts the mock down.
pub struct MockHandle {
    addr: SocketAddr,
    tls: bool,
    socket: Option<PathBuf>,
    ca: Option<(PathBuf, String)>,
    remove_ca: bool,
    shared: Arc<Shared>,
    running: Mutex<Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl fmt::Debug for MockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockHandle")
            .field("base_url", &self.base_url())
            .finish()
    }
}

impl MockHandle {
    /// The TCP address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1` (`https` with TLS): what a daemon's `OPENAI_API_BASE` gets.
    /// An unspecified listen address (0.0.0.0, ::) is reported as loopback.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("{scheme}://{}/v1", SocketAddr::new(ip, self.addr.port()))
    }

    /// The Unix socket path, when listening on one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The CA certificate file written in self-signed TLS mode.
    pub fn cert_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(p, _)| p.as_path())
    }

    /// The same CA certificate as PEM text, for in-process clients.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// The settings patterns are planned with.
    pub fn settings(&self) -> &MockSettings {
        &self.shared.settings
    }

    /// Registers a script; select it with the pattern `script:<returned id>`.
    /// Invalid header names or values in it are reported as a 500 when it is requested.
    pub fn register_script(&self, script: Script) -> String {
        self.shared.scripts.register(script)
    }

    /// Every logged request whose prompt carried `[[nonce:NONCE]]`, oldest first.
    pub fn requests_for(&self, nonce: &str) -> Vec<RequestRecord> {
        self.shared.log.for_nonce(nonce)
    }

    /// Blocks until a request with this nonce exists and every request with it has ended, and
    /// returns the latest; `None` after `timeout`. Blocks the calling thread: from async code,
    /// call it through `spawn_blocking`.
    pub fn wait_for_end(&self, nonce: &str, timeout: Duration) -> Option<RequestRecord> {
        self.shared.log.wait_for_end(nonce, timeout)
    }

    /// The whole log, oldest first.
    pub fn all_requests(&self) -> Vec<RequestRecord> {
        self.shared.log.all()
    }

    /// How many logged requests `keep` accepts (none copied: the log may hold 32 MiB).
    pub fn count_requests(&self, keep: impl Fn(&RequestRecord) -> bool) -> usize {
        self.shared.log.count(keep)
    }

    /// Records dropped so far to keep the log within its capacity.
    pub fn dropped_requests(&self) -> u64 {
        self.shared.log.dropped()
    }

    /// Stops accepting, drops open connections (their requests end as
    /// [`RequestEnd::ShutDown`]), waits for the runtime thread, and removes the socket file and
    /// a generated CA file. The log stays readable. Idempotent.
    pub fn shutdown(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((stop, thread)) = running else {
            return;
        };
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let _ = stop.send(());
        let _ = thread.join();
        if let Some(path) = &self.socket {
            server::remove_socket(path);
        }
        if let (Some((path, _)), true) = (&self.ca, self.remove_ca) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
