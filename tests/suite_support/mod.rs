//! Shared by the suite's end-to-end tests: the binary, the reference daemon as a
//! `--daemon-cmd`, fast settings, and runs through the library and the command line.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use streamcheck::scenario::{self, DaemonCommand, MockOptions, SuiteConfig, SuiteRun, Target};
use streamcheck::verdict::{ScenarioResult, Verdict};

/// The streamcheck binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_streamcheck");

/// `--daemon-cmd` for the reference daemon, with a fault mode or none.
pub fn ref_daemon(fault: Option<&str>) -> String {
    match fault {
        Some(f) => format!("{BIN} ref-daemon --socket {{socket}} --fault {f}"),
        None => format!("{BIN} ref-daemon --socket {{socket}}"),
    }
}

/// Flags that keep a run short: 2 ms between mock chunks, 5 s per stream.
pub const FAST: [&str; 4] = ["--chunk-delay-ms", "2", "--timeout", "5"];

/// `streamcheck ARGS`, waited for.
pub fn streamcheck(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// The exit code, stdout and stderr of a finished command.
pub fn outcome(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh path in the temporary directory for this test process.
pub fn tmp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamcheck-suite-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A library run against the reference daemon (with `fault`) over the named scenarios.
pub fn run_ref(fault: Option<&str>, scenarios: &[&str], strict: bool) -> SuiteRun {
    run_command(ref_daemon(fault), scenarios, strict, Duration::from_secs(5))
}

/// A library run against the daemon `command` starts (a `--daemon-cmd`) over the named
/// scenarios, with the embedded mock on TLS (ALPN offers HTTP/2) and `timeout` per stream.
pub fn run_command(
    command: String,
    scenarios: &[&str],
    strict: bool,
    timeout: Duration,
) -> SuiteRun {
    let mut config = SuiteConfig::new(Target::Command(DaemonCommand {
        socket: None,
        command,
        mock: MockOptions {
            tls: true,
            chunk_count: 18,
            chunk_delay: Duration::from_millis(2),
        },
        start_timeout: Duration::from_secs(20),
    }));
    config.scenarios = scenarios.iter().map(|s| (*s).to_owned()).collect();
    config.timeout = timeout;
    if strict {
        config.strictness = streamcheck::verdict::Strictness::Strict;
    }
    scenario::run_suite(&config).unwrap_or_else(|e| panic!("the run could not be made: {e}"))
}

/// The result of scenario `name` in `run`.
pub fn result<'a>(run: &'a SuiteRun, name: &str) -> &'a ScenarioResult {
    run.summary
        .scenarios
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} not in the run"))
}

/// The first assertion of `result` with verdict `verdict`, for messages.
pub fn first(result: &ScenarioResult, verdict: Verdict) -> String {
    result
        .assertions
        .iter()
        .find(|a| a.verdict == verdict)
        .map_or_else(String::new, |a| format!("{}: {}", a.name, a.message))
}

/// PIDs of the processes whose command line mentions `dir` (the daemon, through its socket
/// path), other than streamcheck itself.
pub fn processes_under(dir: &Path, streamcheck: i32) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != streamcheck)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .filter(|pid| {
            // A zombie is gone already, only not yet reaped by its parent.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.starts_with(" Z"))
            })
        })
        .collect()
}
