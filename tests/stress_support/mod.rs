//! Running `streamcheck stress` against the reference daemon and reading its JSON report.
// Each test file uses part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_streamcheck");

/// The `--daemon-cmd` starting the reference daemon, with a fault mode if given.
pub fn ref_daemon(fault: Option<&str>) -> String {
    let fault = fault.map_or(String::new(), |f| format!(" --fault {f}"));
    format!("'{BIN}' ref-daemon --socket {{socket}}{fault}")
}

/// A finished run: its exit code, its JSON report (if one was printed) and its stderr.
pub struct Run {
    pub code: i32,
    pub report: Value,
    pub stderr: String,
}

impl Run {
    /// How many connections had `outcome`.
    pub fn count(&self, outcome: &str) -> u64 {
        self.report["integrity"]["outcomes"][outcome]["count"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The examples of `outcome`.
    pub fn examples(&self, outcome: &str) -> Vec<Value> {
        self.report["integrity"]["outcomes"][outcome]["examples"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Whether integrity held.
    pub fn held(&self) -> bool {
        self.report["integrity"]["held"] == Value::Bool(true)
    }

    /// The summary of histogram `name`.
    pub fn latency(&self, name: &str) -> Value {
        self.report["latency"]
            .as_array()
            .and_then(|all| all.iter().find(|h| h["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Every outcome with a count, for failure messages.
    pub fn outcomes(&self) -> String {
        self.report["integrity"]["outcomes"].to_string()
    }
}

/// Runs `streamcheck stress ARGS --format json` and parses the report.
pub fn stress(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("stress")
        .args(args)
        .args(["--format", "json", "--quiet"])
        .output()
        .expect("run streamcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        report,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A reference daemon started by the test on `dir/d.sock`, pointed at `backend`.
pub struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// Starts it; waits (up to 20 s) for its socket.
    pub fn start(dir: &Path, backend: &str) -> Daemon {
        Daemon::start_with(dir, backend, None)
    }

    /// Starts it with a fault mode, if given.
    pub fn start_with(dir: &Path, backend: &str, fault: Option<&str>) -> Daemon {
        let socket = dir.join("d.sock");
        let fault = fault.map(|f| vec!["--fault", f]).unwrap_or_default();
        let child = Command::new(BIN)
            .args(["ref-daemon", "--socket"])
            .arg(&socket)
            .args(fault)
            .env("OPENAI_API_BASE", backend)
            .env("OPENAI_API_KEY", "test")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < until, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, socket }
    }

    /// Its PID, for `--daemon-pid`.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Its socket path.
    pub fn socket(&self) -> &str {
        self.socket.to_str().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
