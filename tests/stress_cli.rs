//! `streamcheck stress` from the command line: a running daemon with `--backend` or
//! `--no-upstream`, the human report, and exit status 2 for usage and environment errors.

mod stress_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use streamcheck::mock::{MockConfig, MockServer};
use streamcheck::pattern::MockSettings;
use stress_support::{BIN, Daemon, stress};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sc-stress-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn quick_mock() -> streamcheck::mock::MockHandle {
    MockServer::start(MockConfig {
        settings: MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(5),
        },
        ..MockConfig::default()
    })
    .unwrap()
}

#[test]
fn a_running_daemon_is_checked_against_its_backend_in_an_open_loop() {
    let dir = temp_dir("backend");
    let mock = quick_mock();
    let daemon = Daemon::start(&dir, &mock.base_url());
    let r = stress(&[
        "--socket",
        daemon.socket(),
        "--backend",
        &mock.base_url(),
        "--daemon-pid",
        &daemon.pid(),
        "--rate",
        "400",
        "--connections",
        "200",
        "--slow-readers",
        "0.005",
        "--slow-pause",
        "1s",
        "--settle",
        "5s",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.outcomes(), r.stderr);
    assert_eq!(r.count("completed"), 200);
    assert_eq!(r.report["load"]["model"], "open");
    // Connection 0 read its 8 MiB answer, registered with the mock as a script, after its pause.
    assert!(r.report["run"]["bytes"].as_u64().unwrap() > 8 << 20);
    // The remote mock's log was read for the relay-latency join (slow readers are left out).
    assert_eq!(r.report["relay"]["streams_joined"], 199);
    assert_eq!(r.report["relay"]["log_error"], serde_json::Value::Null);
    assert_eq!(r.report["integrity"]["leak"]["verdict"], "none");
    // The run over time: every event in some sample, the daemon's fds in each, the end of
    // the last stream marked before the settling's samples.
    let timeline = &r.report["timeline"];
    let samples = timeline["samples"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.len() <= 512, "{timeline}");
    let events: u64 = samples.iter().map(|s| s["events"].as_u64().unwrap()).sum();
    assert_eq!(events, r.report["run"]["events"].as_u64().unwrap());
    assert!(
        samples.iter().all(|s| s["daemon_fds"].as_u64().is_some()),
        "{timeline}"
    );
    let peak = r.report["daemon"]["peak"]["fds"].as_u64().unwrap();
    let sampled = samples
        .iter()
        .filter_map(|s| s["daemon_fds"].as_u64())
        .max();
    assert!(sampled.is_some_and(|s| s >= peak), "{timeline}");
    assert!(timeline["run_end_ms"].as_u64().is_some(), "{timeline}");
    // The client's own cost, split as capacity reports it.
    let client = &r.report["client"];
    let f = |key: &str| {
        client[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {client}"))
    };
    let (user, sys, run) = (
        f("cpu_user_s"),
        f("cpu_sys_s"),
        f("cpu_seconds_process_run"),
    );
    assert!(user > 0.0 && sys > 0.0, "{client}");
    assert!((user + sys - run).abs() < 0.02 + run / 10.0, "{client}");
    let busy = f("ring_thread_busy_fraction");
    assert!(busy > 0.0 && busy <= 1.0, "{client}");
    assert!(
        (0.0..=1.0).contains(&f("ring_thread_busy_peak")),
        "{client}"
    );
    assert!(f("ring_thread_saturated_s") >= 0.0, "{client}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_upstream_a_stream_must_end_in_done() {
    let dir = temp_dir("no-upstream");
    let mock = quick_mock();
    let daemon = Daemon::start(&dir, &mock.base_url());
    // The daemon's backend is its own business here: content is not compared.
    let r = stress(&["--socket", daemon.socket(), "--no-upstream", "-n", "100"]);
    assert_eq!(r.code, 0, "{}\n{}", r.outcomes(), r.stderr);
    assert_eq!(r.count("completed"), 100);
    let notes = r.report["notes"].to_string();
    assert!(notes.contains("--no-upstream"), "{notes}");
    // An answer cut short (no [DONE], an error event) still fails.
    let r = stress(&[
        "--socket",
        daemon.socket(),
        "--no-upstream",
        "-n",
        "50",
        "--pattern",
        "abort:3",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.count("completed"), 0, "{}", r.outcomes());
    assert_eq!(
        r.count("error_event") + r.count("truncated"),
        50,
        "{}",
        r.outcomes()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_human_report_shows_the_verdict_and_the_figures() {
    let out = Command::new(BIN)
        .args(["stress", "--daemon-cmd"])
        .arg(stress_support::ref_daemon(None))
        .args([
            "-n",
            "50",
            "-c",
            "25",
            "--chunk-delay-ms",
            "5",
            "--mock-plain",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for part in [
        "INTEGRITY HELD",
        "completed",
        "Latency",
        "relay",
        "p99.9",
        "Daemon (PID",
        "CPU-s per 1,000 streams",
        "loop thread busy",
        "KiB per open stream",
        "open-file limit",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// `--format html -o FILE`: one page with a chart per histogram and the run over time, each
/// chart well-formed SVG, nothing fetched.
#[test]
fn the_html_report_draws_every_histogram_and_the_run_over_time() {
    let dir = temp_dir("html");
    let file = dir.join("s.html");
    let out = Command::new(BIN)
        .args(["stress", "--daemon-cmd"])
        .arg(stress_support::ref_daemon(None))
        .args([
            "-n",
            "60",
            "-c",
            "20",
            "--chunk-delay-ms",
            "5",
            "--mock-plain",
        ])
        .args(["--quiet", "--format", "html", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the page goes to the file only");
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("INTEGRITY HELD"));
    assert!(page.contains("<tr id=\"outcome-completed\" class=\"ok\">"));
    for external in ["<script src", "<link", "src=", "href=\"http"] {
        assert!(!page.contains(external), "{external} in the page");
    }
    let mut ids = Vec::new();
    for (start, _) in page.match_indices("<svg ") {
        let end = start + page[start..].find("</svg>").unwrap() + "</svg>".len();
        let svg = roxmltree::Document::parse(&page[start..end]).unwrap();
        assert_eq!(svg.root_element().attribute("class"), Some("chart"));
        ids.push(svg.root_element().attribute("id").unwrap().to_owned());
    }
    assert_eq!(
        ids,
        [
            "chart-handoff",
            "chart-time-to-head",
            "chart-first-event",
            "chart-inter-event-gap",
            "chart-relay",
            "chart-total",
            "chart-schedule-lag",
            "chart-open-streams",
            "chart-events-per-second",
            "chart-daemon-fds",
            "chart-daemon-rss",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_and_environment_errors_exit_with_2() {
    for (args, says) in [
        (
            vec![
                "--socket",
                "/nonexistent/d.sock",
                "--no-upstream",
                "--abort-rate",
                "2",
            ],
            "fraction",
        ),
        (
            vec!["--socket", "/nonexistent/d.sock", "--no-upstream"],
            "/nonexistent/d.sock",
        ),
        (vec!["--socket", "/nonexistent/d.sock"], "--backend"),
        (
            vec!["--socket", "/tmp", "--backend", "http://127.0.0.1:1/v1"],
            "cannot be reached",
        ),
        (vec!["--daemon-cmd", "true", "--mock-plain"], "{socket}"),
        (
            vec![
                "--daemon-cmd",
                "x {socket}",
                "--pattern",
                "abort:3",
                "--mock-plain",
            ],
            "complete",
        ),
    ] {
        let r = stress(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

/// `--daemon-cmd CMD --socket PATH`: a daemon whose socket path is fixed is started, waited
/// for at PATH, and named in the report by the command as run.
#[test]
fn a_started_daemon_with_a_fixed_socket_path_is_waited_for_at_socket() {
    let dir = temp_dir("fixed-socket");
    let socket = dir.join("fixed.sock");
    let command = format!(
        "export FIXED_SOCKET='{}'; exec {BIN} ref-daemon --socket \"$FIXED_SOCKET\"",
        socket.display()
    );
    let path = socket.display().to_string();
    let r = stress(&[
        "--daemon-cmd",
        &command,
        "--socket",
        &path,
        "--mock-plain",
        "-n",
        "20",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.outcomes(), r.stderr);
    assert_eq!(r.count("completed"), 20);
    assert_eq!(r.report["target"]["daemon"], command.as_str());
    assert_eq!(r.report["target"]["socket"], path.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}
