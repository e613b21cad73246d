//! The daemon the `daemon` target fuzzes: started once per fuzzing process, beside one embedded
//! mock, and kept until the process ends.
//!
//! Chosen by the environment:
//! - `STREAMCHECK_FUZZ_DAEMON='CMD … {socket} …'`: any daemon, as `streamcheck prop
//!   --daemon-cmd` takes it (`sh -c`, `{socket}` and `{backend}` replaced).
//! - unset: the reference daemon, run by this binary itself. The target re-executes itself with
//!   `STREAMCHECK_FUZZ_REF_DAEMON=<socket>`, and [`serve_if_asked`], called first thing in the
//!   target's init, turns that process into `streamcheck ref-daemon --socket <socket>` (with
//!   `--fault $STREAMCHECK_FUZZ_FAULT` when set). So `cargo fuzz run daemon` needs nothing
//!   built beforehand.
//! - `STREAMCHECK_FUZZ_MOCK_TLS=1`: the mock serves TLS (default plain HTTP: fewer cycles per
//!   case); `STREAMCHECK_FUZZ_STRICT=1`: non-strict findings fail too;
//!   `STREAMCHECK_FUZZ_PERSIST=FILE`: a failing case is appended to FILE, a `prop` regression
//!   file.
//!
//! libFuzzer never drops what a process holds: it ends with `exit`, `_Exit` or a signal. So a
//! watchdog (`sh`, in its own process group so a Ctrl-C at the terminal does not reach it)
//! reads a pipe this process holds; when the process ends, however it ends, the pipe closes and
//! the watchdog stops the daemon's process group and removes its working directory.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use streamcheck::prop::daemon::{PropConfig, Session};
use streamcheck::refdaemon::{self, Fault, UpstreamConfig};
use streamcheck::scenario::{DaemonCommand, MockOptions, Target};
use streamcheck::verdict::Strictness;

/// The daemon command, if not the reference daemon.
pub const DAEMON_VAR: &str = "STREAMCHECK_FUZZ_DAEMON";
/// The reference daemon's fault mode.
pub const FAULT_VAR: &str = "STREAMCHECK_FUZZ_FAULT";
/// Set (to the socket path) in the process that is to be the reference daemon.
const REF_DAEMON_VAR: &str = "STREAMCHECK_FUZZ_REF_DAEMON";
/// The mock serves TLS.
const TLS_VAR: &str = "STREAMCHECK_FUZZ_MOCK_TLS";
/// Non-strict findings fail.
const STRICT_VAR: &str = "STREAMCHECK_FUZZ_STRICT";
/// Where failing cases are appended.
const PERSIST_VAR: &str = "STREAMCHECK_FUZZ_PERSIST";

/// How long the daemon may take to create its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the target keeps for the whole process.
pub struct Fuzzed {
    /// The daemon, its mock and the ring.
    pub session: Session,
    /// The daemon as `streamcheck prop --daemon-cmd` starts it: what replay commands and
    /// regression notes name.
    pub replay_target: Target,
    /// The regression file failing cases go to, if any.
    pub persist: Option<PathBuf>,
    _watchdog: Option<Child>,
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v == "true")
}

fn fault_named(name: &str) -> Result<Fault, String> {
    Fault::all()
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            let names: Vec<String> = Fault::all().iter().map(|f| f.name()).collect();
            format!(
                "{FAULT_VAR}={name} is not a fault mode of the reference daemon; use one of: {}",
                names.join(", ")
            )
        })
}

/// Ignores SIGPIPE, as every Rust program does: std's runtime sets it before `main`, but here
/// `main` is libFuzzer's, and a write to a socket its peer closed (a client that left, a daemon
/// that hung up) would kill the process instead of failing with EPIPE.
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; it runs in
    // the target's init, before this process starts any thread of its own.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// In the process started as the reference daemon: serves until stopped, then exits. Elsewhere
/// returns at once.
pub fn serve_if_asked() {
    let Some(socket) = std::env::var_os(REF_DAEMON_VAR) else {
        return;
    };
    let code = match serve(PathBuf::from(socket)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("streamcheck reference daemon (fuzz target): {e}");
            2
        }
    };
    std::process::exit(code);
}

fn serve(socket: PathBuf) -> Result<(), String> {
    let mut config = refdaemon::Config::new(socket);
    if let Ok(name) = std::env::var(FAULT_VAR) {
        config.fault = Some(fault_named(&name)?);
    }
    let upstream = UpstreamConfig::from_env().map_err(|e| e.to_string())?;
    refdaemon::run(config, upstream).map_err(|e| e.to_string())
}

/// The command that starts `daemon` beside the embedded mock.
fn target(command: String) -> Target {
    Target::Command(DaemonCommand {
        socket: None,
        command,
        mock: MockOptions {
            tls: flag(TLS_VAR),
            ..MockOptions::default()
        },
        start_timeout: START_TIMEOUT,
    })
}

/// Starts the daemon the environment names, its mock, and the watchdog. The error says what to
/// fix.
pub fn start() -> Result<Fuzzed, String> {
    let fault = std::env::var(FAULT_VAR).ok();
    let (run_target, replay_target) = match std::env::var(DAEMON_VAR) {
        Ok(command) => {
            if !command.contains("{socket}") {
                return Err(format!(
                    "{DAEMON_VAR} must say where the daemon listens: put {{socket}} where its \
                     socket path goes, e.g. {DAEMON_VAR}='my-daemon --socket {{socket}}' (it was \
                     `{command}`)"
                ));
            }
            if fault.is_some() {
                return Err(format!(
                    "{FAULT_VAR} selects a fault of the reference daemon, but {DAEMON_VAR} names \
                     another daemon; unset one of them"
                ));
            }
            (target(command.clone()), target(command))
        }
        Err(_) => {
            let mut reference = String::from("streamcheck ref-daemon --socket {socket}");
            if let Some(name) = &fault {
                fault_named(name)?;
                reference.push_str(&format!(" --fault {name}"));
            }
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find this fuzz target's executable: {e}"))?;
            let itself = format!(
                "{REF_DAEMON_VAR}={{socket}} exec '{}'",
                exe.to_string_lossy().replace('\'', r"'\''")
            );
            (target(itself), target(reference))
        }
    };
    let mut config = PropConfig::new(run_target);
    if flag(STRICT_VAR) {
        config.strictness = Strictness::Strict;
    }
    let session = Session::start(&config).map_err(|e| e.to_string())?;
    let watchdog = match session.daemon_pid() {
        Some(pid) => Some(watchdog(pid, session.work_dir()).map_err(|e| {
            format!("cannot start the watchdog that stops the daemon when fuzzing ends: {e}")
        })?),
        None => None,
    };
    Ok(Fuzzed {
        session,
        replay_target,
        persist: std::env::var_os(PERSIST_VAR).map(PathBuf::from),
        _watchdog: watchdog,
    })
}

/// A process that waits for this one to end, then stops process group `pgid` (TERM, then KILL
/// a second later) and removes `dir`.
fn watchdog(pgid: u32, dir: Option<&std::path::Path>) -> io::Result<Child> {
    const SCRIPT: &str = r#"read _ ; kill -s TERM -- "-$1" 2>/dev/null; sleep 1; kill -s KILL -- "-$1" 2>/dev/null; [ -z "$2" ] || rm -rf -- "$2""#;
    let dir = dir.map(|d| d.to_string_lossy().into_owned());
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("streamcheck-fuzz-watchdog")
        .arg(pgid.to_string())
        .arg(dir.unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}
