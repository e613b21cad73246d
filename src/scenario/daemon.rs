//! Daemon processes: starting one from `--daemon-cmd`, watching it, stopping it by its PID; and
//! reading what a daemon holds (its client sockets) from `/proc`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process};

/// How often a starting or stopping daemon is looked at.
const POLL: Duration = Duration::from_millis(20);

/// A daemon started by the runner, in its own process group, its output going to a log file.
/// Dropping it stops it.
pub(crate) struct DaemonProcess {
    child: Child,
    command: String,
    log: PathBuf,
    socket: PathBuf,
    status: Option<ExitStatus>,
}

/// `'…'` quoting for `sh`: the text exactly, whatever it contains.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
/// The environment a started daemon gets: `OPENAI_API_KEY` (the caller's, or a test key: some
/// daemons refuse to run without one), `OPENAI_INSECURE_SSL=true` (the embedded mock's
/// certificate is self-signed) and, when given, `OPENAI_API_BASE`.
pub(crate) fn daemon_env(backend: Option<&str>) -> Vec<(&'static str, String)> {
    let key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "streamcheck-test-key".to_owned());
    let mut env = vec![
        ("OPENAI_API_KEY", key),
        ("OPENAI_INSECURE_SSL", "true".to_owned()),
    ];
    if let Some(base) = backend {
        env.push(("OPENAI_API_BASE", base.to_owned()));
    }
    env
}

/// The command line with `{socket}` and `{backend}` replaced (shell-quoted).
pub(crate) fn substitute(template: &str, socket: &Path, backend: &str) -> String {
    template
        .replace("{socket}", &shell_quote(&socket.to_string_lossy()))
        .replace("{backend}", &shell_quote(backend))
}

/// The usage error for a `--daemon-cmd` that does not say where its socket goes.
pub(crate) fn no_socket_message(command: &str) -> String {
    format!(
        "--daemon-cmd must say where the daemon listens: put {{socket}} where its socket path \
         goes, e.g. --daemon-cmd 'my-daemon --socket {{socket}}', or give the path it creates \
         with --socket PATH (it was `{command}`)"
    )
}

/// What 8.3's second instance failing to start means, from `DaemonProcess::start`'s error; a
/// log that reports an address in use names the likely cause, a listener on a fixed port.
pub(crate) fn second_start_failure(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let in_use = ["address already in use", "addrinuse", "address in use"]
        .iter()
        .any(|s| lower.contains(s));
    let advice = if in_use {
        "\nits output reports an address in use: a listener on a fixed port (metrics, \
         profiling) cannot be opened by two instances; turn it off or give it port 0 in \
         --daemon-cmd"
    } else {
        ""
    };
    format!(
        "a second instance of the daemon (started beside the first, its upstream at a closed \
         port) could not start: {error}{advice}"
    )
}

impl DaemonProcess {
    /// Runs `command` with `sh -c` and `env`, output to `log`, and waits up to `wait` for
    /// `socket` to appear (a socket file already there counts only once it has been replaced:
    /// a stale one is not the daemon's). The error says what happened and shows the end of
    /// the log.
    pub fn start(
        command: String,
        env: &[(&str, String)],
        socket: &Path,
        log: &Path,
        wait: Duration,
    ) -> Result<DaemonProcess, String> {
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
            // Its own process group, so that stopping it reaches whatever the shell started.
            .process_group(0);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let stale = socket_identity(socket);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run `sh -c {command}`: {e}"))?;
        crate::signals::adopt(child.id());
        let mut daemon = DaemonProcess {
            child,
            command,
            log: log.to_path_buf(),
            socket: socket.to_path_buf(),
            status: None,
        };
        let until = Instant::now() + wait;
        loop {
            if is_socket(socket) && socket_identity(socket) != stale {
                return Ok(daemon);
            }
            if let Some(status) = daemon.exit_status() {
                return Err(format!(
                    "the daemon exited ({status}) before creating {}; the command was `{}`; \
                     its output ends with:\n{}",
                    socket.display(),
                    daemon.command,
                    daemon.log_tail(20)
                ));
            }
            if let Some(signal) = crate::signals::received() {
                daemon.stop(Duration::from_secs(1));
                return Err(format!("{signal} arrived while the daemon was starting"));
            }
            if Instant::now() >= until {
                daemon.stop(Duration::from_secs(2));
                return Err(format!(
                    "the daemon did not create {} within {} s; check that the command creates \
                     its socket there (it was `{}`); its output ends with:\n{}",
                    socket.display(),
                    wait.as_secs(),
                    daemon.command,
                    daemon.log_tail(20)
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The process ID (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process exited, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// How the daemon died, with the end of its output, if it has exited.
    pub fn death(&mut self) -> Option<crate::verdict::DaemonDeath> {
        let status = self.exit_status()?;
        Some(crate::verdict::DaemonDeath::of_child(
            self.pid(),
            status,
            self.log_tail(20),
        ))
    }

    /// The last `lines` lines of the daemon's output.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// SIGTERM to the process group, SIGKILL after `grace`; removes the socket file it leaves.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exit_status().is_none() {
            if let Some(pgid) = Pid::from_raw(self.pid() as i32) {
                let _ = kill_process_group(pgid, Signal::TERM);
                let until = Instant::now() + grace;
                while self.exit_status().is_none() && Instant::now() < until {
                    std::thread::sleep(POLL);
                }
                if self.exit_status().is_none() {
                    let _ = kill_process_group(pgid, Signal::KILL);
                }
            }
            self.status = self.child.wait().ok();
        }
        crate::signals::release(self.pid());
        if is_socket(&self.socket) {
            let _ = std::fs::remove_file(&self.socket);
        }
        self.status
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The socket file at `path` (device, inode and change time: a freed inode may be reused),
/// if there is one.
fn socket_identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let id = (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec());
    meta.file_type().is_socket().then_some(id)
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The last `lines` lines of a log file (at most its last 64 KiB).
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = Vec::new();
    if let Ok(mut f) = File::open(path) {
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

/// Whether the process `pid` still runs: it exists and is not a zombie waiting for its parent
/// to collect its status.
pub fn alive(pid: u32) -> bool {
    let exists = Pid::from_raw(pid as i32).is_some_and(|p| test_kill_process(p).is_ok());
    // `pid (comm) S …`: the state follows the last `)`.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().starts_with('Z')))
        .unwrap_or(false);
    exists && !zombie
}

/// If the daemon has died: how, with the end of its output when the runner started it
/// (`started`); else whether the process given by `--daemon-pid` is gone.
pub(super) fn death_of(
    started: Option<&mut DaemonProcess>,
    pid: Option<u32>,
) -> Option<crate::verdict::DaemonDeath> {
    if let Some(d) = started {
        return d.death();
    }
    let pid = pid?;
    (!alive(pid)).then(|| crate::verdict::DaemonDeath::of_pid(pid))
}

/// Which processes are the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Processes {
    /// The process named by `--daemon-pid`.
    Pid(u32),
    /// Every process of this process group: the runner starts `--daemon-cmd` with `sh -c` in
    /// a group of its own, and the shell may or may not `exec` the daemon.
    Group(u32),
}

impl Processes {
    /// The processes' IDs, as they are now.
    pub fn pids(self) -> Vec<u32> {
        match self {
            Processes::Pid(pid) => vec![pid],
            Processes::Group(pgid) => {
                let Ok(dir) = std::fs::read_dir("/proc") else {
                    return vec![pgid];
                };
                dir.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| process_group(*pid) == Some(pgid))
                    .collect()
            }
        }
    }
}

/// The process group of `pid`, from `/proc/PID/stat` (`pid (comm) state ppid pgrp …`; the
/// command name may hold spaces and parentheses, so fields are counted after the last `)`).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// How many client sockets the daemon's processes hold: their sockets that are none of its Unix,
/// UDP, raw or netlink sockets, its TCP listeners, or its connections to the mock's port. A
/// client socket the daemon shut down but never closed is in no table at all (the kernel
/// unhashes it once both sides have sent FIN), which is why this counts what is left rather
/// than what matches. Needs the right to read `/proc/PID/fd`.
pub(super) fn client_sockets(daemon: Processes, mock_port: u16) -> Result<usize, String> {
    let pids = daemon.pids();
    let Some(&pid) = pids.first() else {
        return Err("the daemon's processes are gone".to_owned());
    };
    let mut inodes: HashSet<u64> = HashSet::new();
    for p in &pids {
        let dir = format!("/proc/{p}/fd");
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
        inodes.extend(
            entries
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|target| {
                    let t = target.to_string_lossy().into_owned();
                    t.strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse::<u64>()
                        .ok()
                }),
        );
    }
    let tables: Vec<(&str, String)> = TABLES
        .iter()
        .map(|t| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).unwrap_or_default();
            (*t, text)
        })
        .collect();
    Ok(inodes.difference(&not_clients(&tables, mock_port)).count())
}

/// The `/proc/PID/net` tables read by [`client_sockets`].
const TABLES: [&str; 9] = [
    "unix", "udp", "udp6", "raw", "raw6", "netlink", "packet", "tcp", "tcp6",
];

/// Inodes of sockets that are not client sockets, from `(table name, contents)` pairs.
fn not_clients(tables: &[(&str, String)], mock_port: u16) -> HashSet<u64> {
    let mut known = HashSet::new();
    for (table, text) in tables {
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = match *table {
                "unix" => fields.get(6),
                "packet" => fields.get(8),
                _ => fields.get(9),
            };
            let Some(inode) = inode.and_then(|i| i.parse::<u64>().ok()) else {
                continue;
            };
            if table.starts_with("tcp") {
                // `sl local rem st …`: 0A is LISTEN; the mock's port is the upstream.
                let remote_port = fields
                    .get(2)
                    .and_then(|r| r.rsplit_once(':'))
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
                if fields.get(3) != Some(&"0A") && remote_port != Some(mock_port) {
                    continue;
                }
            }
            known.insert(inode);
        }
    }
    known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_quotes_for_the_shell() {
        let cmd = substitute(
            "d --socket {socket} --api {backend}",
            Path::new("/tmp/a b/it's.sock"),
            "https://127.0.0.1:1/v1",
        );
        assert_eq!(
            cmd,
            r"d --socket '/tmp/a b/it'\''s.sock' --api 'https://127.0.0.1:1/v1'"
        );
    }

    #[test]
    fn only_unaccounted_sockets_count_as_clients() {
        let tcp = "  sl local rem st tx rx tr retr uid timeout inode\n\
                   0: 0100007F:A000 0100007F:B000 01 0:0 0:0 0 0 0 100 1\n\
                   1: 0100007F:A001 0100007F:6D60 01 0:0 0:0 0 0 0 200 1\n\
                   2: 0100007F:2382 00000000:0000 0A 0:0 0:0 0 0 0 300 1\n";
        let unix = "Num RefCount Protocol Flags Type St Inode Path\n\
                    0000: 00000002 00000000 00010000 0005 01 400 /tmp/d.sock\n";
        let tables = [("tcp", tcp.to_owned()), ("unix", unix.to_owned())];
        let known = not_clients(&tables, 0x6D60);
        let ours: HashSet<u64> = [100, 200, 300, 400, 500].into();
        let mut clients: Vec<u64> = ours.difference(&known).copied().collect();
        clients.sort_unstable();
        // 100: a connected client; 500: a socket in no table (shut down, never closed).
        assert_eq!(clients, [100, 500]);
    }

    #[test]
    fn a_process_is_started_watched_and_stopped() {
        let dir = std::env::temp_dir().join(format!("sc-daemon-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        let log = dir.join("d.log");
        // The socket appears while `start` waits (bound by the test for the "daemon", which
        // only has to stay alive until it is stopped).
        let path = socket.clone();
        let binder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::os::unix::net::UnixListener::bind(path).unwrap()
        });
        let mut d = DaemonProcess::start(
            "echo started; exec sleep 30".to_owned(),
            &[("X", "1".to_owned())],
            &socket,
            &log,
            Duration::from_secs(5),
        )
        .unwrap();
        let listener = binder.join().unwrap();
        assert!(alive(d.pid()));
        assert!(d.exit_status().is_none());
        let until = Instant::now() + Duration::from_secs(10);
        while d.log_tail(5) != "started" && Instant::now() < until {
            std::thread::sleep(POLL);
        }
        let status = d.stop(Duration::from_secs(5)).unwrap();
        assert!(!status.success(), "killed by SIGTERM");
        assert_eq!(d.log_tail(5), "started");
        assert!(!socket.exists(), "the stale socket file is removed");
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stale_socket_file_is_not_taken_for_the_daemons() {
        let dir = std::env::temp_dir().join(format!("sc-daemon-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        // Bound, then nobody listening: what a daemon that was killed leaves behind.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let err = DaemonProcess::start(
            "exec sleep 30".to_owned(),
            &[],
            &socket,
            &dir.join("d.log"),
            Duration::from_millis(500),
        )
        .err()
        .expect("a daemon that never creates its socket does not start");
        assert!(err.contains("did not create"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_daemon_that_exits_early_is_reported_with_its_output() {
        let dir = std::env::temp_dir().join(format!("sc-daemon-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = DaemonProcess::start(
            "echo 'no upstream configured' >&2; exit 3".to_owned(),
            &[],
            &dir.join("never.sock"),
            &dir.join("d.log"),
            Duration::from_secs(5),
        )
        .err()
        .unwrap();
        assert!(err.contains("exited"), "{err}");
        assert!(err.contains("no upstream configured"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
