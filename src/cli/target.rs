//! The daemon a command tests, from `--daemon-cmd` (with `--socket` when the command fixes the
//! socket path) or `--socket` with `--backend`: as `run` and `prop` take them, and as `stress`
//! and `capacity` do.

/// The daemon under test, from `--daemon-cmd`, or `--socket` with `--backend`, as `run` and
/// `prop` take them.
pub fn daemon_target(
    daemon_cmd: Option<String>,
    socket: Option<std::path::PathBuf>,
    backend: Option<String>,
    mock: streamcheck::scenario::MockOptions,
    start_timeout: f64,
) -> anyhow::Result<streamcheck::scenario::Target> {
    use streamcheck::scenario::{DaemonCommand, Target};
    Ok(match (daemon_cmd, socket, backend) {
        (Some(command), socket, _) => Target::Command(DaemonCommand {
            command,
            socket,
            mock,
            start_timeout: super::values::seconds("start-timeout", start_timeout)?,
        }),
        (None, Some(socket), Some(backend)) => Target::Running { socket, backend },
        (None, Some(socket), None) => anyhow::bail!(
            "--socket {} needs --backend URL (the mock API the running daemon's OPENAI_API_BASE \
             points at), or --daemon-cmd CMD to let the runner start the daemon (which then \
             creates {0})",
            socket.display()
        ),
        // clap's `required_unless_present` rules this out.
        (None, None, _) => anyhow::bail!("give --socket PATH --backend URL, or --daemon-cmd CMD"),
    })
}

/// The daemon `stress` and `capacity` drive: started by the command line (`--daemon-cmd`, with
/// `--socket` the path it creates) or running (`--socket`, its `--daemon-pid` to watch it).
pub fn load_daemon(
    command: Option<&str>,
    socket: Option<&std::path::Path>,
    pid: Option<u32>,
    start_timeout: std::time::Duration,
) -> Option<streamcheck::stress::DaemonSpec> {
    use streamcheck::stress::DaemonSpec;
    match (command, socket) {
        (Some(command), socket) => Some(DaemonSpec::Command {
            command: command.to_owned(),
            socket: socket.map(ToOwned::to_owned),
            start_timeout,
        }),
        (None, Some(socket)) => Some(DaemonSpec::Running {
            socket: socket.to_owned(),
            pid,
        }),
        (None, None) => None,
    }
}

/// The upstream of `stress` and `capacity`: a running mock (`--backend`), none
/// (`--no-upstream`), or, for a daemon they start, an embedded mock; a running daemon without
/// either is an error naming both.
pub fn load_upstream(
    backend: Option<&str>,
    no_upstream: bool,
    started: bool,
    embedded: streamcheck::stress::MockOptions,
) -> Result<streamcheck::stress::Upstream, &'static str> {
    use streamcheck::stress::Upstream;
    match (backend, no_upstream, started) {
        (Some(url), _, _) => Ok(Upstream::Remote(url.to_owned())),
        (None, true, _) => Ok(Upstream::None),
        (None, false, true) => Ok(Upstream::Embedded(embedded)),
        (None, false, false) => Err(
            "a running daemon needs its upstream: --backend URL (the mock API its \
             OPENAI_API_BASE points at), or --no-upstream for a daemon with a built-in backend",
        ),
    }
}
