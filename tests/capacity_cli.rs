//! `streamcheck capacity` against the reference daemon: the search finds a fault mode's lower
//! capacity, labels a step bounded by the client's own limit, survives a dying daemon, reports
//! the best bound on a signal, and names what is wrong in a bad objective.
//!
//! Steps here are small (tens of streams, a second each) so the tests are quick; the figures
//! for a real machine are in the README.

mod stress_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stress_support::{BIN, ref_daemon};

/// Short steps: short answers, a short warm-up and hold.
const QUICK: &[&str] = &[
    "--warmup",
    "300ms",
    "--hold",
    "700ms",
    "--settle",
    "1s",
    "--chunk-count",
    "3",
    "--chunk-delay-ms",
    "20",
    "--format",
    "json",
];

struct Search {
    code: i32,
    report: Value,
    stderr: String,
}

impl Search {
    fn capacity(&self) -> Option<u64> {
        self.report["answer"]["capacity"].as_u64()
    }

    fn steps(&self) -> &Vec<Value> {
        self.report["steps"].as_array().expect("steps")
    }
}

/// Runs `capacity` in `sh -c` (so a test can lower the open-file limit first).
fn capacity(prefix: &str, fault: Option<&str>, args: &[&str]) -> Search {
    let quoted: Vec<String> = QUICK.iter().chain(args).map(|a| format!("'{a}'")).collect();
    let script = format!(
        "{prefix} exec '{BIN}' capacity --daemon-cmd \"{}\" {}",
        ref_daemon(fault),
        quoted.join(" ")
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Search {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_leaking_daemon_has_a_lower_capacity_than_a_correct_one() {
    // Each stream the leaking daemon serves keeps an fd, so the fds objective breaks at a
    // concurrency the correct daemon holds easily.
    let args = ["--slo", "fds<150", "--start", "8", "--max", "64"];
    let correct = capacity("", None, &args);
    let leaking = capacity("", Some("leak-fd"), &args);
    assert_eq!(correct.code, 0, "{}", correct.stderr);
    assert_eq!(correct.capacity(), Some(64), "{}", correct.stderr);
    assert_eq!(correct.report["answer"]["at_least"], true);
    let low = leaking.capacity().unwrap_or(0);
    assert!(low < 32, "leak-fd held {low} streams\n{}", leaking.stderr);
    assert_eq!(
        leaking.report["answer"]["at_least"], false,
        "{}",
        leaking.stderr
    );
    let limited_by = leaking.report["answer"]["limited_by"].as_str().unwrap();
    assert!(limited_by.starts_with("fds<150 = "), "{limited_by}");
    assert!(
        leaking.stderr.contains("(limited by fds<150 = "),
        "{}",
        leaking.stderr
    );
    // Every step carries its stress report, histograms included, for plots.
    let step = &correct.steps()[0];
    assert_eq!(step["concurrency"], 8);
    assert!(
        step["stress"]["latency"][0]["hdr_base64"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    // The steps grew ×2 from the start.
    let tried: Vec<u64> = correct
        .steps()
        .iter()
        .map(|s| s["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(tried, [8, 16, 32, 64]);
}

#[test]
fn a_step_past_the_clients_open_file_limit_is_labelled_and_the_answer_is_at_least() {
    // 200 fds cannot hold 300 streams: the step is the client's, not the daemon's.
    let r = capacity(
        "ulimit -n 200;",
        None,
        &["--slo", "failures=0", "--start", "300", "--max", "300"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = &r.steps()[0];
    assert_eq!(first["concurrency"], 300);
    assert_eq!(first["outcome"], "client_bound", "{}", r.stderr);
    let why = first["client_bound"].as_str().unwrap();
    assert!(why.contains("open-file limit"), "{why}");
    assert!(r.stderr.contains("client-bound"), "{}", r.stderr);
    assert_eq!(r.report["answer"]["at_least"], true);
    let n = r.capacity().unwrap();
    assert!((1..300).contains(&n), "{n}");
    assert!(
        r.report["answer"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "capacity at least {n} concurrent streams: the client could not judge"
            )),
        "{}",
        r.report["answer"]
    );
}

#[test]
fn a_daemon_that_dies_breaks_its_steps_and_each_step_gets_a_fresh_one() {
    // It exits at its sixth handoff: every step breaks, down to a single stream, whose
    // closed loop reaches the sixth handoff too.
    let r = capacity(
        "",
        Some("exit-after-handoffs"),
        &["--start", "4", "--slo", "failures=0"],
    );
    assert_eq!(r.code, 1, "no capacity at all\n{}", r.stderr);
    let tried: Vec<u64> = r
        .steps()
        .iter()
        .map(|s| s["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(tried, [4, 2, 1]);
    for step in r.steps() {
        assert_eq!(step["outcome"], "broke");
        let why = step["broke_because"].as_str().unwrap();
        assert!(why.starts_with("the daemon exited with status 1"), "{why}");
    }
    assert!(
        r.report["answer"]["text"]
            .as_str()
            .unwrap()
            .starts_with("no capacity: 1 stream already broke an objective (the daemon exited"),
        "{}",
        r.report["answer"]
    );
}

#[test]
fn a_signal_reports_the_best_bound_found_so_far() {
    let mut child = Command::new(BIN)
        .args(["capacity", "--daemon-cmd", &ref_daemon(None)])
        .args(["--start", "4", "--slo", "failures=0"])
        .args(["--warmup", "200ms", "--hold", "10s", "--chunk-count", "3"])
        .args(["--chunk-delay-ms", "20", "--settle", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    // The first step (4 streams) takes ~11 s; interrupt the second.
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            panic!("no step finished:\n{seen}");
        }
        seen += &line;
        if line.trim_start().starts_with("4 streams") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let began = Instant::now();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted by a signal"), "{rest}");
    assert!(
        rest.contains("capacity at least 4 concurrent streams (stopped before the search settled)"),
        "{rest}"
    );
}

#[test]
fn a_bad_objective_names_the_mistake_and_the_grammar() {
    let out = Command::new(BIN)
        .args([
            "capacity",
            "--daemon-cmd",
            "x {socket}",
            "--slo",
            "latency<1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown metric `latency`"), "{err}");
    assert!(err.contains("e.g. ttfb.p99<100ms"), "{err}");

    let out = Command::new(BIN)
        .args(["capacity", "--socket", "/nonexistent.sock", "--no-upstream"])
        .args(["--slo", "rss<1GiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--slo rss<1GiB needs the daemon's resources: give its --daemon-pid"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["capacity", "--socket", "/nonexistent.sock", "--no-upstream"])
        .args(["--slo", "relay.p99<10ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs the mock's write times"), "{err}");
}

#[test]
fn reuse_daemon_keeps_one_daemon_for_every_step() {
    let r = capacity(
        "",
        None,
        &[
            "--reuse-daemon",
            "--start",
            "4",
            "--max",
            "8",
            "--slo",
            "failures=0",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pids: Vec<u64> = r
        .steps()
        .iter()
        .map(|s| s["stress"]["daemon"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{}", r.stderr);
    assert_eq!(pids[0], pids[1], "one daemon for both steps");
    // Each step's streams were timed against the shared mock's log.
    for step in r.steps() {
        assert!(step["stress"]["relay"]["streams_joined"].as_u64().unwrap() > 0);
    }
    assert!(
        r.stderr.contains("one daemon for all steps"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_fresh_daemon_is_started_for_each_step() {
    let r = capacity(
        "",
        None,
        &["--start", "4", "--max", "8", "--slo", "failures=0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pids: Vec<u64> = r
        .steps()
        .iter()
        .map(|s| s["stress"]["daemon"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0], pids[1], "a daemon per step");
}

#[test]
fn a_step_bounded_by_the_daemons_own_open_file_limit_names_it() {
    // The daemon gets 100 fds: around 90 streams its accepts fail with EMFILE.
    let daemon = format!("ulimit -n 100; exec {}", ref_daemon(None));
    let out = Command::new(BIN)
        .args(["capacity", "--daemon-cmd", &daemon])
        .args(["--start", "64", "--max", "128", "--slo", "failures=0"])
        .args(QUICK)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let limited_by = report["answer"]["limited_by"].as_str().unwrap_or_default();
    assert!(
        limited_by.contains("the daemon's fds reached its open-file limit of 100"),
        "{}",
        report["answer"]
    );
    assert_eq!(
        report["answer"]["at_least"], false,
        "the daemon's limit, not the client's"
    );
}
