//! The daemon `run` and `prop` test, from `--daemon-cmd` (with `--socket` when the command fixes
//! the socket path) or `--socket` with `--backend`.

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
