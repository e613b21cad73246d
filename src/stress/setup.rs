//! Everything a run needs before its first stream: the upstream (embedded mock, remote mock, or
//! none), the daemon (running, or started here), and what each kind of connection sends and
//! must receive.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::expect::{ExpectedContent, HandoffData, Nonces};
use super::relay::RelayJoin;
use super::{DaemonSpec, StressConfig, StressError, Upstream};
use crate::mock::{MockConfig, MockHandle, MockServer, TlsMode};
use crate::pattern::{self, MockSettings, UpstreamPlan};
use crate::scenario::{DaemonProcess, Remote, substitute};

/// Content of one slow reader's answer: pieces of 16 KiB.
const SLOW_PIECE: usize = 16 * 1024;
/// Pieces: 8 MiB, more than loopback TCP buffers hold, so a daemon that blocks on a full client
/// socket does (a remote mock takes scripts up to 32 MiB).
const SLOW_PIECES: usize = 512;

/// Mock write records handed over by an embedded mock: `(connection, [(ts_ns, end)])`.
pub type WriteQueue = Arc<Mutex<Vec<(u64, Vec<(u64, u64)>)>>>;

/// The upstream side of a run.
pub enum Mock {
    /// Started here; its finished requests arrive in the queue.
    Embedded(MockHandle, WriteQueue),
    /// Running elsewhere; its log is read at the end.
    Remote(Remote),
    /// `--no-upstream`.
    None,
}

impl Mock {
    /// A description for the report.
    pub fn describe(&self) -> String {
        match self {
            Mock::Embedded(m, _) => format!("embedded mock at {}", m.base_url()),
            Mock::Remote(r) => format!("mock at {}", r.url()),
            Mock::None => "none (the daemon's own backend)".to_owned(),
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Mock::Embedded(m, _) = self {
            m.shutdown();
        }
    }
}

/// What one kind of connection sends and expects.
pub struct Kind {
    /// The handoff data, nonce spliced in per connection.
    pub data: HandoffData,
    /// The content to expect (`None` with `--no-upstream`).
    pub expected: Option<ExpectedContent>,
}

/// A prepared run. Dropped in field order: the daemon stops before the mock.
pub struct Prepared {
    /// The daemon, if started here (the scenario runner's supervision: own process group,
    /// log file, stopped by its PID when dropped).
    pub daemon: Option<DaemonProcess>,
    /// The mock.
    pub mock: Mock,
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The PID whose resources are watched.
    pub pid: Option<u32>,
    /// What the report calls the daemon.
    pub daemon_name: String,
    /// The nonce format.
    pub nonces: Arc<Nonces>,
    /// Normal and aborting connections.
    pub normal: Kind,
    /// Slow readers.
    pub slow: Kind,
    /// The relay-latency join for normal connections (`None` without a mock).
    pub relay: Option<RelayJoin>,
    /// Events a complete normal stream carries, for placing aborts.
    pub events_per_stream: u32,
    _dir: Option<WorkDir>,
}

/// A working directory for a daemon's socket and log, removed when dropped.
pub(crate) struct WorkDir(PathBuf);

impl WorkDir {
    /// A new directory under `$TMPDIR` named after `what`.
    pub(crate) fn new(what: &str) -> Result<WorkDir, String> {
        let parent = std::env::temp_dir();
        let dir = parent.join(format!(
            "streamcheck-{what}-{}-{}",
            std::process::id(),
            crate::clock::monotonic_ns()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create a working directory under {}: {e}; set TMPDIR to a writable \
                 directory",
                parent.display()
            )
        })?;
        Ok(WorkDir(dir))
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl super::MockOptions {
    /// Starts the embedded mock with these options over `config` (its log and hook).
    pub(crate) fn start(&self, config: MockConfig) -> Result<MockHandle, StressError> {
        MockServer::start(MockConfig {
            tls: if self.tls {
                TlsMode::SelfSigned { ca_out: None }
            } else {
                TlsMode::Off
            },
            settings: MockSettings {
                chunk_count: self.chunk_count,
                chunk_delay: self.chunk_delay,
            },
            ..config
        })
        .map_err(|e| StressError::Environment(format!("cannot start the embedded mock API: {e}")))
    }
}

/// Sets up the mock, the daemon and the expectations.
pub fn prepare(config: &StressConfig) -> Result<Prepared, StressError> {
    let nonces = Arc::new(Nonces::new());
    let mock = match &config.upstream {
        Upstream::None => Mock::None,
        Upstream::Remote(url) => {
            let instead = matches!(config.daemon, DaemonSpec::Command { .. })
                .then_some("leave out --backend to let stress start a mock of its own");
            Mock::Remote(Remote::connect(url, instead).map_err(StressError::Environment)?)
        }
        Upstream::Embedded(options) => {
            let queue: WriteQueue = Arc::default();
            let hook_queue = queue.clone();
            let hook_nonces = nonces.clone();
            let on_end = move |r: &crate::mock::RequestRecord| {
                let Some(index) = r
                    .nonce
                    .as_deref()
                    .and_then(|n| hook_nonces.find_connection(n.as_bytes()))
                else {
                    return;
                };
                let writes = r.writes.iter().map(|w| (w.ts_ns, w.end)).collect();
                if let Ok(mut q) = hook_queue.lock() {
                    q.push((index, writes));
                }
            };
            let handle = options.start(MockConfig {
                log_capacity: 1024,
                on_request_end: Some(Arc::new(on_end)),
                ..MockConfig::default()
            })?;
            Mock::Embedded(handle, queue)
        }
    };
    let settings = match &mock {
        Mock::Embedded(m, _) => Some(m.settings().clone()),
        Mock::Remote(r) => Some(r.settings().clone()),
        Mock::None => None,
    };

    let spec = config.pattern.as_deref();
    let (normal, relay, events_per_stream) = match &settings {
        Some(settings) => {
            let expected = ExpectedContent::for_pattern(spec, settings, &nonces)
                .map_err(StressError::Usage)?;
            let plan = plan_of(spec, settings, &nonces);
            // Content events, and `[DONE]`.
            let events = expected.pieces() as u32 + 1;
            (
                Kind {
                    data: HandoffData::new(spec),
                    expected: Some(expected),
                },
                plan.as_ref().map(RelayJoin::new),
                events,
            )
        }
        None => (
            Kind {
                data: HandoffData::new(spec),
                expected: None,
            },
            None,
            // Unknown without a mock: aborts land within the first few events.
            4,
        ),
    };
    let slow = if config.slow_readers > 0.0 {
        slow_kind(&mock, spec)?
    } else {
        Kind {
            data: HandoffData::new(spec),
            expected: None,
        }
    };

    let backend = match &mock {
        Mock::Embedded(m, _) => Some(m.base_url()),
        Mock::Remote(r) => Some(r.url().to_owned()),
        Mock::None => None,
    };
    let started = StartedDaemon::start(&config.daemon, backend.as_deref())?;
    Ok(Prepared {
        daemon: started.process,
        mock,
        socket: started.socket,
        pid: started.pid,
        daemon_name: started.name,
        nonces,
        normal,
        slow,
        relay,
        events_per_stream,
        _dir: started.dir,
    })
}

/// The daemon of a run: running already, or started here.
pub(crate) struct StartedDaemon {
    /// Started here: stopped when dropped.
    pub process: Option<DaemonProcess>,
    pub socket: PathBuf,
    /// The PID whose resources are watched.
    pub pid: Option<u32>,
    /// The command as run, or the socket of a running daemon.
    pub name: String,
    /// Holds the socket and the daemon's log.
    pub dir: Option<WorkDir>,
}

impl StartedDaemon {
    /// Starts the daemon `spec` names, its upstream at `backend`, or takes the running one.
    pub(crate) fn start(
        spec: &DaemonSpec,
        backend: Option<&str>,
    ) -> Result<StartedDaemon, StressError> {
        let (command, fixed, start_timeout) = match spec {
            DaemonSpec::Running { socket, pid } => {
                return Ok(StartedDaemon {
                    process: None,
                    socket: socket.clone(),
                    pid: *pid,
                    name: socket.display().to_string(),
                    dir: None,
                });
            }
            DaemonSpec::Command {
                command,
                socket,
                start_timeout,
            } => (command, socket, start_timeout),
        };
        if fixed.is_none() && !command.contains("{socket}") {
            return Err(StressError::Usage(crate::scenario::no_socket_message(
                command,
            )));
        }
        if backend.is_none() && command.contains("{backend}") {
            return Err(StressError::Usage(
                "--daemon-cmd uses {backend}, but with --no-upstream there is no mock to point \
                 it at"
                    .to_owned(),
            ));
        }
        let dir = WorkDir::new("daemon").map_err(StressError::Environment)?;
        let socket = fixed
            .clone()
            .unwrap_or_else(|| dir.path().join("daemon.sock"));
        let as_run = substitute(command, &socket, backend.unwrap_or_default());
        let process = DaemonProcess::start(
            as_run.clone(),
            &crate::scenario::daemon_env(backend),
            &socket,
            &dir.path().join("daemon.log"),
            *start_timeout,
        )
        .map_err(StressError::Environment)?;
        let pid = super::resources::resolve_daemon_pid(process.pid());
        Ok(StartedDaemon {
            process: Some(process),
            socket,
            pid: Some(pid),
            name: as_run,
            dir: Some(dir),
        })
    }
}

/// The mock's plan for a normal connection (the same for all: nonces have one length).
fn plan_of(spec: Option<&str>, settings: &MockSettings, nonces: &Nonces) -> Option<UpstreamPlan> {
    let resolved = pattern::resolve(spec.unwrap_or("default"), settings, Some(&nonces.nonce(0)));
    resolved.ok().map(|r| r.plan)
}

/// Slow readers get a large answer of their own, registered as a script.
fn slow_kind(mock: &Mock, spec: Option<&str>) -> Result<Kind, StressError> {
    let pieces_of = |n: usize| vec!["z".repeat(SLOW_PIECE); n];
    let (pattern, pieces) = match mock {
        Mock::None => {
            return Ok(Kind {
                data: HandoffData::new(spec),
                expected: None,
            });
        }
        Mock::Embedded(m, _) => {
            let pieces = pieces_of(SLOW_PIECES);
            let id = m.register_script(UpstreamPlan::content_script(&pieces));
            (format!("script:{id}"), pieces)
        }
        Mock::Remote(r) => {
            let pieces = pieces_of(SLOW_PIECES);
            let pattern = r.register_content_script(&pieces).map_err(|e| {
                StressError::Environment(format!(
                    "cannot register the slow readers' answer with the mock: {e}"
                ))
            })?;
            (pattern, pieces)
        }
    };
    Ok(Kind {
        data: HandoffData::new(Some(&pattern)),
        expected: Some(ExpectedContent::from_pieces(&pieces, None)),
    })
}
