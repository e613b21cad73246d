//! Signals end `run` cleanly: SIGTERM, SIGINT or SIGHUP sent to the streamcheck process alone
//! (as `timeout(1)`, CI runners and `kill` do) closes the streams, stops the daemon it started,
//! writes the partial report marked as interrupted, and exits with 128 + the signal's number; a
//! second signal exits at once. No daemon is left running either way.
//!
//! Each run starts from `sh -c '… & wait'`, as a script starts a background job: such a job
//! inherits SIGINT ignored, and streamcheck must handle it anyway. The run's TMPDIR is a fresh
//! directory, so the daemon (whose command line carries its socket path under it) is found by
//! that path in /proc.

mod suite_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use suite_support::{BIN, processes_under, tmp_path};

/// A run of `--scenario 1.1` then `--scenario 8.1` one at a time against a daemon that leaves
/// the client waiting when the upstream fails: 1.1 finishes at once, 8.1 would take the whole
/// 60 s deadline. The daemon's `sh -c` command line is `{before}<ref-daemon>{after}`.
struct Run {
    child: Child,
    pid: i32,
    dir: PathBuf,
    report: PathBuf,
}

impl Run {
    fn start(name: &str, format: &str, before: &str, after: &str) -> Run {
        Run::start_in(name, format, before, after, "")
    }

    /// [`Run::start`], the launching shell running `setup` first (e.g. `trap '' HUP; `, as
    /// `nohup` does).
    fn start_in(name: &str, format: &str, before: &str, after: &str, setup: &str) -> Run {
        let dir = tmp_path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let report = dir.join(format!("report.{format}"));
        let daemon = format!(
            "{before}{BIN} ref-daemon --socket {{socket}} --fault hang-on-upstream-error{after}"
        );
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!(r#"{setup}"$@" & echo $!; wait $!"#),
                "sh",
                BIN,
                "run",
            ])
            .args(["--daemon-cmd", &daemon, "--mock-plain", "--jobs", "1"])
            .args(["--scenario", "1.1", "--scenario", "8.1", "--timeout", "60"])
            .args(["--format", format, "-o"])
            .arg(&report)
            .env("TMPDIR", &dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().unwrap();
        Run {
            child,
            pid,
            dir,
            report,
        }
    }

    /// Waits until the daemon has taken 8.1's handoff and failed its upstream (its log says so):
    /// 1.1 has finished by then, 8.1 is in flight.
    fn wait_for_the_hanging_stream(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let logged = daemon_logs(&self.dir)
                .iter()
                .any(|log| std::fs::read_to_string(log).is_ok_and(|t| t.contains("connection")));
            if logged {
                return;
            }
            assert!(Instant::now() < until, "8.1 never reached the daemon");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit code and stderr, waiting at most `bound`.
    fn wait(mut self, bound: Duration) -> (i32, String, PathBuf, PathBuf) {
        let until = Instant::now() + bound;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= until {
                // Leave nothing behind: streamcheck, the daemon, the shells.
                let mut pids = processes_under(&self.dir, 0);
                pids.push(self.pid);
                for pid in pids {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                let _ = self.child.kill();
                panic!("streamcheck did not exit within {bound:?} of the signal");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr);
        (status.code().unwrap(), stderr, self.report, self.dir)
    }
}

/// The daemon logs of the runs under `dir`.
fn daemon_logs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("daemon.log"))
        .filter(|p| p.exists())
        .collect()
}

fn assert_no_daemon_left(dir: &Path, streamcheck: i32) {
    let left = processes_under(dir, streamcheck);
    assert!(left.is_empty(), "daemon processes left running: {left:?}");
}

/// Sends `signal` once 1.1 has finished and 8.1 is in flight; returns the exit code, stderr
/// and the report.
fn interrupt(name: &str, format: &str, signal: &str) -> (i32, String, String) {
    let run = Run::start(name, format, "", "");
    run.wait_for_the_hanging_stream();
    let pid = run.pid;
    assert!(
        !processes_under(&run.dir, pid).is_empty(),
        "the daemon runs before the signal"
    );
    run.signal(signal);
    let (code, stderr, report, dir) = run.wait(Duration::from_secs(10));
    assert_no_daemon_left(&dir, pid);
    let report = std::fs::read_to_string(&report).unwrap();
    (code, stderr, report)
}

#[test]
fn sigterm_writes_a_valid_json_report_of_what_finished_and_stops_the_daemon() {
    let (code, stderr, report) = interrupt("term-json", "json", "TERM");
    assert_eq!(code, 143, "{stderr}");
    let doc: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let schema: Value = serde_json::from_str(streamcheck::report::json::SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(doc["interrupted"], "SIGTERM");
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert_eq!(scenarios[0]["id"], "1.1");
    assert_eq!(
        scenarios[0]["verdict"], "OK",
        "1.1 finished before the signal"
    );
    assert_eq!(scenarios[0]["skipped"], Value::Null);
    assert_eq!(scenarios[1]["id"], "8.1");
    assert_eq!(
        scenarios[1]["skipped"], "interrupted by SIGTERM before it finished",
        "8.1 was in flight: neither passed nor failed"
    );
    assert_eq!(doc["counts"]["failed"], 0);
    assert_eq!(doc["counts"]["skipped"], 1);
}

#[test]
fn sigint_to_a_background_run_writes_valid_tap_and_stops_the_daemon() {
    let (code, stderr, report) = interrupt("int-tap", "tap", "INT");
    assert_eq!(code, 130, "{stderr}");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "TAP version 13",
            "1..2",
            "ok 1 - 1.1 basic_response",
            "ok 2 - 8.1 error_500 # SKIP interrupted by SIGINT before it finished",
        ],
        "{report}"
    );
    assert_eq!(lines.last(), Some(&"Bail out! interrupted by SIGINT"));
    let path = tmp_path("int.tap");
    std::fs::write(&path, &report).unwrap();
    let prove = Command::new("prove")
        .args(["-e", "cat"])
        .arg(&path)
        .output()
        .expect("prove (perl's Test::Harness) validates the TAP report: install perl");
    let text = String::from_utf8_lossy(&prove.stdout).into_owned()
        + &String::from_utf8_lossy(&prove.stderr);
    assert!(!prove.status.success(), "an interrupted run fails: {text}");
    assert!(
        text.contains("Further testing stopped:  interrupted by SIGINT"),
        "{text}"
    );
    assert!(!text.contains("Parse errors"), "{text}");
}

#[test]
fn sighup_writes_valid_junit_with_the_interruption_and_stops_the_daemon() {
    let (code, stderr, report) = interrupt("hup-junit", "junit", "HUP");
    assert_eq!(code, 129, "{stderr}");
    let doc = roxmltree::Document::parse(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].attribute("name"), Some("1.1 basic_response"));
    assert!(cases[0].children().all(|c| !c.is_element()), "1.1 passed");
    let skipped = cases[1]
        .children()
        .find(|c| c.has_tag_name("skipped"))
        .expect("8.1 is skipped");
    assert_eq!(
        skipped.attribute("message"),
        Some("interrupted by SIGHUP before it finished")
    );
    let marked = doc.descendants().any(|n| {
        n.has_tag_name("property")
            && n.attribute("name") == Some("interrupted")
            && n.attribute("value") == Some("SIGHUP")
    });
    assert!(marked, "{report}");
}

#[test]
fn a_second_signal_exits_at_once_and_still_kills_the_daemon() {
    // The daemon's shell ignores SIGTERM and outlives the daemon: the orderly stop has to wait
    // its grace period and then kill it, which the second signal does not wait for.
    let run = Run::start("twice", "json", "trap '' TERM; ", "; sleep 60");
    run.wait_for_the_hanging_stream();
    let pid = run.pid;
    run.signal("TERM");
    std::thread::sleep(Duration::from_millis(100));
    run.signal("TERM");
    let (code, stderr, _, dir) = run.wait(Duration::from_secs(10));
    assert_eq!(code, 143, "{stderr}");
    assert!(
        !stderr.contains("the report lists what finished"),
        "the second signal ended the run before its orderly end: {stderr}"
    );
    assert_no_daemon_left(&dir, pid);
}

#[test]
fn a_signal_while_the_daemon_starts_still_writes_the_report_and_stops_it() {
    let dir = tmp_path("starting");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    // A daemon that takes 30 s to create its socket; `:` keeps the socket path in the shell's
    // command line, so that it can be found.
    let mut child = Command::new(BIN)
        .args(["run", "--daemon-cmd", "sleep 30; : {socket}"])
        .args(["--start-timeout", "60", "--format", "json", "-o"])
        .arg(&report)
        .env("TMPDIR", &dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let until = Instant::now() + Duration::from_secs(30);
    while processes_under(&dir, pid).is_empty() {
        assert!(Instant::now() < until, "the daemon command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("streamcheck did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert_no_daemon_left(&dir, pid);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["interrupted"], "SIGTERM");
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), streamcheck::scenario::catalog().len());
    assert!(
        scenarios
            .iter()
            .all(|s| s["skipped"] == "not run: interrupted by SIGTERM"),
        "{doc}"
    );
}

#[test]
fn sighup_ignored_as_under_nohup_stays_ignored() {
    let run = Run::start_in("nohup", "json", "", "", "trap '' HUP; ");
    run.wait_for_the_hanging_stream();
    let pid = run.pid;
    run.signal("HUP");
    // SIGTERM is handled, and its report shows that SIGHUP did not stop the run.
    std::thread::sleep(Duration::from_millis(500));
    run.signal("TERM");
    let (code, stderr, report, dir) = run.wait(Duration::from_secs(10));
    assert_eq!(code, 143, "{stderr}");
    assert_no_daemon_left(&dir, pid);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(doc["interrupted"], "SIGTERM", "{stderr}");
}
