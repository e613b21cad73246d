//! A daemon that is wrong without bound cannot take streamcheck down: against the reference
//! daemon's resource-abuse modes (an endless stream, a 1 GiB line, two million tiny events, a
//! 10 MiB head), `run`, `prop` and `stress` stay within their memory bounds, close the stream
//! once its outcome is settled, and name the cause.
//!
//! Memory is the streamcheck process's peak resident set (VmHWM). The bounds are the README's
//! targets, not timings: before the bounds existed these runs reached gigabytes.

mod suite_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use suite_support::{BIN, ref_daemon, tmp_path};

/// `run` and `prop` against any daemon, in KiB.
const RUN_BOUND_KIB: i64 = 150 * 1024;

/// Runs `streamcheck ARGS` to its end; returns its exit code and its peak RSS in KiB (VmHWM, the
/// kernel's high-water mark, read every 10 ms while it runs: the daemon it starts is not counted).
fn measured(args: &[&str]) -> (i32, i64) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code().unwrap_or(-1), peak)
}

/// `run --format json` against `fault` over `scenarios` (all when empty): exit code, peak RSS
/// in KiB, and the report.
fn run_against(fault: &str, scenarios: &[&str]) -> (i32, i64, Value) {
    let out = tmp_path(&format!("hostile-{fault}-{}.json", scenarios.join("_")));
    let daemon = ref_daemon(Some(fault));
    let mut args = vec!["run", "--daemon-cmd", &daemon, "--format", "json", "-o"];
    let out_str = out.to_str().unwrap();
    args.push(out_str);
    for s in scenarios {
        args.extend(["--scenario", s]);
    }
    let (code, kib) = measured(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{fault}: report: {e}\n{text}"));
    (code, kib, report)
}

/// The messages of scenario `id`'s assertions, and the end of its wire dump.
fn scenario_text(report: &Value, id: &str) -> (Vec<String>, String) {
    let sc = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing"));
    let messages = sc["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}: {}",
                a["name"].as_str().unwrap(),
                a["message"].as_str().unwrap()
            )
        })
        .collect();
    let end = sc["wire"]["end"].as_str().unwrap_or_default().to_owned();
    (messages, end)
}

fn assert_cause(fault: &str, report: &Value, cause: &str) {
    let (messages, end) = scenario_text(report, "1.1");
    assert!(
        messages.iter().any(|m| m.contains(cause)),
        "{fault}: no assertion names {cause:?}:\n{messages:#?}"
    );
    assert!(
        end.starts_with("closed by streamcheck after "),
        "{fault}: the wire dump does not say streamcheck closed the stream: {end:?}"
    );
}

#[test]
fn an_endless_stream_is_cut_at_the_answers_budget_and_the_catalog_stays_bounded() {
    let (code, kib, report) = run_against("endless-stream", &[]);
    assert_eq!(code, 1);
    assert!(kib < RUN_BOUND_KIB, "peak RSS {kib} KiB");
    assert_cause(
        "endless-stream",
        &report,
        "more than any relay of the expected answer can hold",
    );
}

#[test]
fn a_flood_of_tiny_events_is_cut_at_the_answers_event_budget() {
    let (code, kib, report) = run_against("event-flood", &[]);
    assert_eq!(code, 1);
    assert!(kib < RUN_BOUND_KIB, "peak RSS {kib} KiB");
    assert_cause("event-flood", &report, "--max-events");
}

#[test]
fn a_gigabyte_line_is_cut_without_keeping_it() {
    let (code, kib, report) = run_against("giant-line", &["1.1", "3.2"]);
    assert_eq!(code, 1);
    assert!(kib < RUN_BOUND_KIB, "peak RSS {kib} KiB");
    assert_cause("giant-line", &report, "--max-response-bytes");
}

#[test]
fn a_huge_head_is_refused_at_the_head_limit_and_closed_there() {
    let (code, kib, report) = run_against("huge-head", &["1.1"]);
    assert_eq!(code, 1);
    assert!(kib < RUN_BOUND_KIB, "peak RSS {kib} KiB");
    assert_cause("huge-head", &report, "raise --max-head-bytes");
    let received = report["scenarios"][0]["wire"]["received_bytes"]
        .as_u64()
        .unwrap();
    assert!(received < 10 << 20, "read all {received} bytes of the head");
}

#[test]
fn prop_against_an_endless_stream_stays_bounded() {
    let daemon = ref_daemon(Some("endless-stream"));
    let regressions = tmp_path("hostile-prop-regressions.txt");
    let (code, kib) = measured(&[
        "prop",
        "--daemon-cmd",
        &daemon,
        "--cases",
        "8",
        "--max-shrink-time",
        "5",
        "--regressions",
        regressions.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the endless stream is a failure");
    assert!(kib < RUN_BOUND_KIB, "peak RSS {kib} KiB");
}

/// `stress` against 200 streams of a hostile daemon: the client's bound is 40 MB plus 4 KiB per
/// concurrent stream.
fn stress_against(fault: &str) -> (i32, i64, Value) {
    let out = tmp_path(&format!("hostile-stress-{fault}.json"));
    let daemon = ref_daemon(Some(fault));
    let (code, kib) = measured(&[
        "stress",
        "--daemon-cmd",
        &daemon,
        "-n",
        "200",
        "-c",
        "200",
        "--timeout",
        "10s",
        "--settle",
        "1s",
        "--quiet",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{fault}: report: {e}\n{text}"));
    (code, kib, report)
}

#[test]
fn stress_against_a_gigabyte_line_stays_bounded_and_names_the_line() {
    let (code, kib, report) = stress_against("giant-line");
    assert_eq!(code, 1);
    assert!(kib < 40 * 1024 + 200 * 4, "peak RSS {kib} KiB");
    let text = report.to_string();
    assert!(text.contains("longer than"), "{text}");
}

#[test]
fn stress_against_endless_streams_and_floods_stays_bounded_and_names_the_content() {
    for fault in ["endless-stream", "event-flood"] {
        let (code, kib, report) = stress_against(fault);
        assert_eq!(code, 1, "{fault}");
        assert!(kib < 40 * 1024 + 200 * 4, "{fault}: peak RSS {kib} KiB");
        let text = report.to_string();
        assert!(text.contains("content byte 0: expected"), "{fault}: {text}");
    }
}

#[test]
fn stress_against_a_huge_head_names_the_head_limit() {
    let (code, kib, report) = stress_against("huge-head");
    assert_eq!(code, 1);
    assert!(kib < 40 * 1024 + 200 * 4, "peak RSS {kib} KiB");
    let text = report.to_string();
    assert!(text.contains("--max-head-bytes"), "{text}");
}
