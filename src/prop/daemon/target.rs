//! Reaching the daemon under test and its mock, through the scenario runner's pieces: the
//! mock as the runner sees it (in-process or over HTTP) and its daemon supervision.
//! [`start`] is the one place `prop` sets them up.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mock::{MockConfig, MockServer, TlsMode};
use crate::pattern::MockSettings;
use crate::scenario::{
    DAEMON_CMD_INSTEAD, DaemonProcess, Mock, Remote, Target, no_socket_message, substitute,
};

use super::PropError;

/// The daemon and mock of a run; dropping it stops the daemon (if started), then the mock.
pub(crate) struct Running {
    /// The daemon process, when `prop` started it.
    pub daemon: Option<DaemonProcess>,
    /// The mock the daemon's upstream is.
    pub mock: Mock,
    /// The daemon's socket.
    pub socket: PathBuf,
    /// What reports call the daemon.
    pub name: String,
    _dir: Option<WorkDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.stop(Duration::from_secs(5));
        }
    }
}

impl Running {
    /// The daemon process `prop` started, taken out to be watched (dropping it stops it).
    pub fn daemon_process(&mut self) -> Option<DaemonProcess> {
        self.daemon.take()
    }

    /// The working directory of the daemon `prop` started (its socket and log).
    pub fn work_dir(&self) -> Option<&Path> {
        self._dir.as_ref().map(|d| d.0.as_path())
    }

    /// If the daemon `prop` started has exited: how, and the end of its output.
    pub fn daemon_failure(&mut self) -> Option<String> {
        self.daemon.as_mut()?.death().map(|d| d.message())
    }
}

/// A directory for the started daemon's socket and log, removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Connects to a running daemon's mock, or starts an embedded mock and the daemon.
pub(crate) fn start(target: &Target) -> Result<Running, PropError> {
    match target {
        Target::Running { socket, backend } => Ok(Running {
            daemon: None,
            mock: Mock::Remote(
                Remote::connect(backend, Some(DAEMON_CMD_INSTEAD)).map_err(PropError::Mock)?,
            ),
            socket: socket.clone(),
            name: socket.display().to_string(),
            _dir: None,
        }),
        Target::Command(cmd) => {
            if cmd.socket.is_none() && !cmd.command.contains("{socket}") {
                return Err(PropError::Usage(no_socket_message(&cmd.command)));
            }
            static COUNT: AtomicU64 = AtomicU64::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let parent = std::env::temp_dir();
            let dir = parent.join(format!("streamcheck-prop-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| {
                PropError::Environment(format!(
                    "cannot create a working directory under {}: {e}; set TMPDIR to a writable \
                     directory",
                    parent.display()
                ))
            })?;
            let dir = WorkDir(dir);
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
            })
            .map_err(|e| PropError::Mock(format!("cannot start the embedded mock API: {e}")))?;
            let backend = mock.base_url();
            let socket = cmd
                .socket
                .clone()
                .unwrap_or_else(|| dir.0.join("daemon.sock"));
            let env = crate::scenario::daemon_env(Some(&backend));
            let command = substitute(&cmd.command, &socket, &backend);
            let daemon = DaemonProcess::start(
                command.clone(),
                &env,
                &socket,
                &dir.0.join("daemon.log"),
                cmd.start_timeout,
            )
            .map_err(PropError::DaemonStart)?;
            Ok(Running {
                // The command as run, socket path and all.
                name: command,
                daemon: Some(daemon),
                mock: Mock::Embedded(mock),
                socket,
                _dir: Some(dir),
            })
        }
    }
}

/// The environment a started daemon gets, as the suite gives it: the mock as its upstream,
/// the caller's `OPENAI_API_KEY` or a test key, and acceptance of the mock's certificate.
/// The socket path of `running`, shared with the ring.
pub(crate) fn socket_of(running: &Running) -> std::sync::Arc<Path> {
    std::sync::Arc::from(running.socket.as_path())
}
