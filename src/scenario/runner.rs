//! `run_suite`: set up (mock, daemon, ring), check how the daemon is reached, hand the selected
//! scenarios to the scheduler ([`super::schedule`]), summarise, and tear down.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};

use super::daemon::{self, DaemonProcess, Processes};
use super::drive::{self, Ctx, SecondDaemon};
use super::judge::Limits;
use super::mockio::Mock;
use super::remote::{DAEMON_CMD_INSTEAD, Remote};
use super::schedule::{interrupted, schedule};
use super::unresponsive::Watch;
use super::{Drive, Scenario, SelectError, select};
use crate::handoff::{HandoffError, PairKind, SocketType};
use crate::mock::{MockConfig, MockError, MockServer, TlsMode};
use crate::pattern::MockSettings;
use crate::report::Reporter;
use crate::ring::{RingConfig, RingThread};
use crate::signals::{Interrupt, OnInterrupt, Signal};
use crate::transcript::ReadLimits;
use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult, Strictness};

/// What to test and how.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The daemon: running already, or started by the runner.
    pub target: Target,
    /// The daemon's PID, to notice when it dies and to count its sockets (`--daemon-pid`;
    /// known anyway with [`Target::Command`]).
    pub daemon_pid: Option<u32>,
    /// What reports call the daemon (`--daemon-name`).
    pub daemon_name: Option<String>,
    /// `--category` values; with `scenarios` empty too, the whole catalog runs.
    pub categories: Vec<String>,
    /// `--scenario` values (names or ids).
    pub scenarios: Vec<String>,
    /// Scenarios run at once (`--jobs`).
    pub jobs: usize,
    /// Deadline of each stream (`--timeout`).
    pub timeout: Duration,
    /// How long a daemon may keep a connection open after `data: [DONE]`.
    pub close_grace: Duration,
    /// `--strict`: non-strict findings fail.
    pub strictness: Strictness,
    /// The client socket pair handed off (`--pair`).
    pub pair: PairKind,
    /// How streams are read: parser limits, budgets, the wire kept for reports.
    pub read: ReadLimits,
    /// The socket type to connect with (`--socket-type`); `None`: SEQPACKET as Apache does,
    /// falling back to STREAM when the daemon listens as one.
    pub socket_type: Option<SocketType>,
    /// `--fail-fast`: after the first failed scenario, start no more (the rest are listed as
    /// not run).
    pub fail_fast: bool,
    /// Set when the run must stop (a signal, see [`crate::signals::watch`]): streams in flight
    /// are closed, the scenarios not finished are skipped, and the report is still written.
    pub interrupt: Option<&'static Interrupt>,
}

impl SuiteConfig {
    /// The defaults for `target`: whole catalog, 4 jobs, 10 s timeout, 2 s close grace.
    pub fn new(target: Target) -> SuiteConfig {
        SuiteConfig {
            target,
            daemon_pid: None,
            daemon_name: None,
            categories: Vec::new(),
            scenarios: Vec::new(),
            jobs: 4,
            timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(2),
            strictness: Strictness::Lenient,
            pair: PairKind::Tcp,
            read: ReadLimits::default(),
            socket_type: None,
            fail_fast: false,
            interrupt: None,
        }
    }
}

/// The daemon under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// A running daemon on `socket` whose upstream is the mock at `backend` (`--socket`,
    /// `--backend`).
    Running {
        /// The daemon's Unix socket.
        socket: PathBuf,
        /// The mock API's base URL (as the daemon's `OPENAI_API_BASE`).
        backend: String,
    },
    /// A daemon the runner starts (`--daemon-cmd`) beside an embedded mock.
    Command(DaemonCommand),
}

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct DaemonCommand {
    /// A `sh -c` command line with `{socket}` and `{backend}` placeholders.
    pub command: String,
    /// Where the daemon creates its socket, for a command whose socket path is fixed or set by
    /// an environment variable (`--daemon-cmd CMD --socket PATH`); `{socket}`, if the command
    /// has it, is this path. `None`: a path in the run's working directory, put in the command
    /// at `{socket}`.
    pub socket: Option<PathBuf>,
    /// The embedded mock.
    pub mock: MockOptions,
    /// How long the daemon may take to create its socket.
    pub start_timeout: Duration,
}

/// The embedded mock's settings.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve TLS with a generated certificate (the default, as the original test scripts do).
    pub tls: bool,
    /// Chunks of the default answer.
    pub chunk_count: usize,
    /// Delay between chunks.
    pub chunk_delay: Duration,
}

impl Default for MockOptions {
    /// TLS, 18 chunks, 10 ms apart (the original test scripts' `--chunk-delay-ms 10`).
    fn default() -> Self {
        MockOptions {
            tls: true,
            chunk_count: 18,
            chunk_delay: Duration::from_millis(10),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    /// Every selected scenario's result.
    pub summary: RunSummary,
    /// Things the user should know that are not scenario results (e.g. the switch to
    /// SOCK_STREAM).
    pub notes: Vec<String>,
    /// The daemon died during the run: what happened and the end of its output.
    pub daemon_failure: Option<String>,
    /// The signal that interrupted the run.
    pub interrupted: Option<Signal>,
}

impl SuiteRun {
    /// 0 when nothing failed; 1 when a scenario failed or the daemon died; 128 + the signal's
    /// number when a signal interrupted the run.
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted {
            return signal.exit_code();
        }
        u8::from(self.daemon_failure.is_some()).max(self.summary.exit_code())
    }
}

/// Why a run could not be carried out (exit status 2). Each message names the cause and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A bad option or combination of options.
    #[error("{0}")]
    Usage(String),
    /// A `--category` or `--scenario` that names nothing.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The daemon could not be reached, or io_uring is unavailable.
    #[error("{0}")]
    Handoff(HandoffError),
    /// The embedded mock could not start.
    #[error("cannot start the embedded mock API: {0}")]
    Mock(#[from] MockError),
    /// The mock at `--backend` cannot be used.
    #[error("{0}")]
    MockUnreachable(String),
    /// The daemon given by `--daemon-cmd` did not start.
    #[error("{0}")]
    DaemonStart(String),
    /// No working directory for the daemon's socket and log.
    #[error(
        "cannot create a working directory under {}: {source}; set TMPDIR to a writable directory",
        dir.display()
    )]
    WorkDir {
        /// The parent directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The report could not be written.
    #[error("{0}")]
    Report(std::io::Error),
}

/// Runs the suite without a reporter.
pub fn run_suite(config: &SuiteConfig) -> Result<SuiteRun, SuiteError> {
    run_suite_with(config, &mut NoReport)
}

struct NoReport;

impl Reporter for NoReport {
    fn on_finish(&mut self, _: &RunSummary) -> std::io::Result<()> {
        Ok(())
    }
}

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<WorkDir, SuiteError> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let parent = std::env::temp_dir();
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = parent.join(format!("streamcheck-run-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| SuiteError::WorkDir {
            dir: parent,
            source,
        })?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything set up for a run, torn down on drop (daemon first, then the mock).
struct Setup {
    daemon: Option<DaemonProcess>,
    mock: Arc<Mock>,
    socket: PathBuf,
    /// How to start a second instance, or why none can be started.
    second: Result<SecondDaemon, String>,
    name: String,
    _dir: Option<WorkDir>,
}

fn set_up(config: &SuiteConfig) -> Result<Setup, SuiteError> {
    match &config.target {
        Target::Running { socket, backend } => {
            let mock = Remote::connect(backend, Some(DAEMON_CMD_INSTEAD))
                .map_err(SuiteError::MockUnreachable)?;
            Ok(Setup {
                daemon: None,
                mock: Arc::new(Mock::Remote(mock)),
                socket: socket.clone(),
                second: Err(
                    "needs --daemon-cmd: the runner must start a second instance of \
                              the daemon whose upstream is a closed port, which it cannot do \
                              for a daemon it did not start"
                        .to_owned(),
                ),
                name: socket.display().to_string(),
                _dir: None,
            })
        }
        Target::Command(cmd) => {
            if cmd.socket.is_none() && !cmd.command.contains("{socket}") {
                return Err(SuiteError::Usage(daemon::no_socket_message(&cmd.command)));
            }
            let dir = WorkDir::create()?;
            let mock = MockServer::start(MockConfig {
                tls: if cmd.mock.tls {
                    TlsMode::SelfSigned { ca_out: None }
                } else {
                    TlsMode::Off
                },
                settings: MockSettings {
                    chunk_count: cmd.mock.chunk_count,
                    chunk_delay: cmd.mock.chunk_delay,
                },
                ..MockConfig::default()
            })?;
            let backend = mock.base_url();
            let socket = cmd
                .socket
                .clone()
                .unwrap_or_else(|| dir.0.join("daemon.sock"));
            let command = daemon::substitute(&cmd.command, &socket, &backend);
            let process = DaemonProcess::start(
                command.clone(),
                &daemon::daemon_env(Some(&backend)),
                &socket,
                &dir.0.join("daemon.log"),
                cmd.start_timeout,
            )
            .map_err(SuiteError::DaemonStart)?;
            let second = if cmd.command.contains("{socket}") {
                Ok(SecondDaemon {
                    template: cmd.command.clone(),
                    env: daemon::daemon_env(None),
                    dir: dir.0.clone(),
                    https: cmd.mock.tls,
                    start_timeout: cmd.start_timeout,
                })
            } else {
                Err(format!(
                    "needs a second instance of the daemon whose upstream is a closed port, and \
                     this daemon's socket path is fixed ({}): put {{socket}} in --daemon-cmd \
                     where the socket path goes so that each instance gets its own",
                    socket.display()
                ))
            };
            Ok(Setup {
                name: command,
                daemon: Some(process),
                mock: Arc::new(Mock::Embedded(mock)),
                socket,
                second,
                _dir: Some(dir),
            })
        }
    }
}

/// The handoff errors that say the environment is wrong rather than the daemon.
fn is_environment(e: &HandoffError) -> bool {
    matches!(
        e,
        HandoffError::SocketMissing { .. }
            | HandoffError::PermissionDenied { .. }
            | HandoffError::ConnectionRefused { .. }
            | HandoffError::RingUnavailable { .. }
            | HandoffError::RingUnsupported { .. }
            | HandoffError::FdLimit { .. }
            | HandoffError::PortsExhausted { .. }
            | HandoffError::PathTooLong { .. }
            | HandoffError::RingStopped
    )
}

/// Runs the suite, reporting to `reporter` as results come.
pub fn run_suite_with(
    config: &SuiteConfig,
    reporter: &mut dyn Reporter,
) -> Result<SuiteRun, SuiteError> {
    let selected = select(&config.categories, &config.scenarios)?;
    if config.jobs == 0 {
        return Err(SuiteError::Usage("--jobs must be at least 1".to_owned()));
    }
    if config.timeout.is_zero() {
        return Err(SuiteError::Usage("--timeout must be positive".to_owned()));
    }
    let started_at = SystemTime::now();
    let clock = Instant::now();
    // The ring first: without io_uring there is no point starting a daemon.
    let ring = RingThread::spawn(RingConfig::default()).map_err(SuiteError::Handoff)?;
    // Interrupted, every stream in flight ends at once instead of at its deadline.
    let _stopper = config.interrupt.map(|interrupt| {
        let ring = ring.clone();
        OnInterrupt::spawn(interrupt, move || ring.shut_down())
    });
    let signal = || config.interrupt.and_then(Interrupt::signal);
    let mut setup = match (set_up(config), signal()) {
        (Ok(setup), _) => setup,
        // Interrupted before anything ran: the report still comes, every scenario not run.
        (Err(_), Some(signal)) => {
            return interrupted_before_start(config, &selected, reporter, started_at, signal);
        }
        (Err(e), None) => return Err(e),
    };
    let processes = match (config.daemon_pid, &setup.daemon) {
        (Some(pid), _) => Some(Processes::Pid(pid)),
        (None, Some(d)) => Some(Processes::Group(d.pid())),
        (None, None) => None,
    };
    let mut ctx = Ctx {
        ring,
        mock: setup.mock.clone(),
        socket: Arc::from(setup.socket.as_path()),
        socket_type: config.socket_type.unwrap_or_default(),
        pair: config.pair,
        read: config.read,
        limits: Limits {
            timeout: config.timeout,
            grace: config.close_grace,
        },
        strictness: config.strictness,
        tag: run_tag(),
        daemon: processes,
        second: std::mem::replace(&mut setup.second, Err(String::new())),
        instances: AtomicU64::new(0),
    };
    let mut notes = Vec::new();

    // The socket-type check runs first, selected or not: it decides how every other handoff
    // reaches the daemon, and it is where a missing socket or a dead daemon shows.
    let probe_scenario = super::catalog()
        .iter()
        .find(|s| s.drive == Drive::SocketType)
        .ok_or_else(|| SuiteError::Usage("the catalog has no socket-type check".to_owned()))?;
    let (mut probe, error) = drive::socket_type(&ctx, probe_scenario);
    if let Some(signal) = signal() {
        probe = interrupted(probe_scenario, signal, true);
    }
    match error {
        _ if signal().is_some() => {}
        Some(e) if e.is_wrong_socket_type() && config.socket_type.is_none() => {
            ctx.socket_type = SocketType::Stream;
            notes.push(format!(
                "{e}; running the scenarios over SOCK_STREAM ({} reports this as a failure)",
                probe_scenario.id
            ));
        }
        None if config.socket_type == Some(SocketType::Stream) => {
            return Err(SuiteError::Usage(format!(
                "--socket-type stream: {} listens as SOCK_SEQPACKET, as Apache expects (a \
                 SEQPACKET handoff to it just worked), so a SOCK_STREAM connect cannot reach it; \
                 drop --socket-type",
                setup.socket.display()
            )));
        }
        Some(e) if is_environment(&e) => {
            // A daemon the runner started and that has already died explains the error best.
            if let Some(death) = daemon::death_of(setup.daemon.as_mut(), config.daemon_pid) {
                return Err(SuiteError::DaemonStart(death.message()));
            }
            return Err(SuiteError::Handoff(e));
        }
        _ => {}
    }

    reporter
        .on_start(selected.len())
        .map_err(SuiteError::Report)?;
    // The socket-type check is the first handoff the daemon got: the first sign of silence.
    let mut watch = Watch::new(clock);
    watch.observe(&probe, || ctx.mock.saw_daemon_request(&ctx.tag));
    let mut slots: Vec<Option<ScenarioResult>> = selected
        .iter()
        .map(|s| (s.drive == Drive::SocketType).then(|| probe.clone()))
        .collect();
    let scheduled = schedule(
        config,
        &ctx,
        &selected,
        &mut slots,
        reporter,
        &mut setup.daemon,
        watch,
    )?;
    let scenarios: Vec<ScenarioResult> = slots.into_iter().flatten().collect();
    let daemon_died = scheduled.died;
    let daemon_failure = daemon_died.as_ref().map(DaemonDeath::message);
    drop(ctx);
    let signal = signal();
    if let Some(mut d) = setup.daemon.take() {
        // Interrupted, the user wants the report now: the streams are closed already.
        let grace = if signal.is_some() { 1 } else { 5 };
        d.stop(Duration::from_secs(grace));
    }
    if let Some(reason) = scheduled.unresponsive {
        notes.insert(0, reason);
    }
    let name = config.daemon_name.clone().unwrap_or(setup.name.clone());
    let mut summary = RunSummary::new(
        name,
        started_at,
        clock.elapsed(),
        config.strictness,
        scenarios,
    );
    if let Some(signal) = signal {
        summary = summary.interrupted_by(signal.name());
    }
    summary.daemon_death = daemon_died;
    reporter.on_finish(&summary).map_err(SuiteError::Report)?;
    Ok(SuiteRun {
        summary,
        notes,
        daemon_failure,
        interrupted: signal,
    })
}

/// The run of a signal that came before the daemon was up: every selected scenario is listed
/// as not run.
fn interrupted_before_start(
    config: &SuiteConfig,
    selected: &[&'static Scenario],
    reporter: &mut dyn Reporter,
    started_at: SystemTime,
    signal: Signal,
) -> Result<SuiteRun, SuiteError> {
    let scenarios: Vec<ScenarioResult> = selected
        .iter()
        .map(|sc| interrupted(sc, signal, false))
        .collect();
    reporter
        .on_start(scenarios.len())
        .map_err(SuiteError::Report)?;
    for r in &scenarios {
        reporter.on_result(r).map_err(SuiteError::Report)?;
    }
    let name = match (&config.daemon_name, &config.target) {
        (Some(name), _) => name.clone(),
        (None, Target::Command(cmd)) => cmd.command.clone(),
        (None, Target::Running { socket, .. }) => socket.display().to_string(),
    };
    let elapsed = started_at.elapsed().unwrap_or_default();
    let summary = RunSummary::new(name, started_at, elapsed, config.strictness, scenarios)
        .interrupted_by(signal.name());
    reporter.on_finish(&summary).map_err(SuiteError::Report)?;
    Ok(SuiteRun {
        summary,
        notes: Vec::new(),
        daemon_failure: None,
        interrupted: Some(signal),
    })
}

/// A nonce prefix unique to this run.
fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("sc{:x}{:x}", std::process::id(), nanos)
}
