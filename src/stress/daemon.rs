//! A daemon started for the run (`--daemon-cmd`): `sh -c` with `{socket}` and `{backend}`
//! substituted and the upstream's environment set, in its own process group, its output in a
//! log file; started by [`start`], stopped by its PID when dropped.
//!
//! This mirrors the scenario runner's daemon supervision (`scenario::daemon`), which is private
//! to that module; [`start`] is the one entry point, to be replaced by the runner's once it is
//! shared.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

/// How often a starting or stopping daemon is looked at.
const POLL: Duration = Duration::from_millis(20);

/// A running daemon; dropping it stops it (SIGTERM to its group, SIGKILL after 5 s).
pub struct Daemon {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
    exited: bool,
}

/// `'…'` quoting for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Starts `template` with `{socket}` → `socket` and `{backend}` → `backend`, `env` set, output
/// to `log`, and waits up to `wait` for the socket to appear.
pub fn start(
    template: &str,
    socket: &Path,
    backend: Option<&str>,
    env: &[(&str, String)],
    log: &Path,
    wait: Duration,
) -> Result<Daemon, String> {
    if !template.contains("{socket}") {
        return Err(format!(
            "--daemon-cmd must say where the daemon listens: put {{socket}} where its socket \
             path goes, e.g. --daemon-cmd 'my-daemon --socket {{socket}}' (it was `{template}`)"
        ));
    }
    if backend.is_none() && template.contains("{backend}") {
        return Err(
            "--daemon-cmd uses {backend}, but with --no-upstream there is no mock to point it at"
                .to_owned(),
        );
    }
    let command = template
        .replace("{socket}", &shell_quote(&socket.to_string_lossy()))
        .replace("{backend}", &shell_quote(backend.unwrap_or_default()));
    let out = File::create(log)
        .map_err(|e| format!("cannot create the daemon log {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot share the daemon log {}: {e}", log.display()))?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own group: stopping it reaches whatever the shell started, and a Ctrl-C at the
        // terminal reaches only streamcheck, which then stops it in order.
        .process_group(0);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `sh -c {command}`: {e}"))?;
    let mut daemon = Daemon {
        child,
        log: log.to_path_buf(),
        socket: socket.to_path_buf(),
        exited: false,
    };
    let until = Instant::now() + wait;
    loop {
        if std::fs::metadata(socket).is_ok_and(|m| m.file_type().is_socket()) {
            return Ok(daemon);
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            daemon.exited = true;
            return Err(format!(
                "the daemon exited ({status}) before creating {}; the command was `{command}`; \
                 its output ends with:\n{}",
                socket.display(),
                daemon.log_tail(20)
            ));
        }
        if Instant::now() >= until {
            return Err(format!(
                "the daemon did not create {} within {} s; check that the command puts its \
                 socket at {{socket}} (it was `{command}`); its output ends with:\n{}",
                socket.display(),
                wait.as_secs(),
                daemon.log_tail(20)
            ));
        }
        std::thread::sleep(POLL);
    }
}

impl Daemon {
    /// The PID of the process started (the shell, or the daemon if the shell exec'd it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        self.exited = self.exited || matches!(self.child.try_wait(), Ok(Some(_)));
        self.exited
    }

    /// The last `lines` lines of its output.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = Vec::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let _ = f.read_to_end(&mut text);
        }
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        if tail.is_empty() {
            "(no output)".to_owned()
        } else {
            tail
        }
    }

    fn stop(&mut self, grace: Duration) {
        if !self.has_exited()
            && let Some(group) = Pid::from_raw(self.child.id() as i32)
        {
            let _ = kill_process_group(group, Signal::TERM);
            let until = Instant::now() + grace;
            while !self.has_exited() && Instant::now() < until {
                std::thread::sleep(POLL);
            }
            if !self.has_exited() {
                let _ = kill_process_group(group, Signal::KILL);
            }
        }
        let _ = self.child.wait();
        if std::fs::metadata(&self.socket).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_that_exits_early_is_reported_with_its_output() {
        let dir = std::env::temp_dir().join(format!("sc-stress-daemon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = start(
            "echo 'no upstream configured' >&2; exit 3 # {socket}",
            &dir.join("never.sock"),
            Some("http://x"),
            &[],
            &dir.join("d.log"),
            Duration::from_secs(5),
        )
        .err()
        .unwrap();
        assert!(
            err.contains("exited") && err.contains("no upstream configured"),
            "{err}"
        );
        let err = start(
            "d",
            &dir.join("s"),
            None,
            &[],
            &dir.join("d.log"),
            Duration::ZERO,
        )
        .err()
        .unwrap();
        assert!(err.contains("{socket}"), "{err}");
        let err = start(
            "d {socket} {backend}",
            &dir.join("s"),
            None,
            &[],
            &dir.join("d.log"),
            Duration::ZERO,
        )
        .err()
        .unwrap();
        assert!(err.contains("--no-upstream"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn placeholders_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
