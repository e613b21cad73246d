//! A daemon that takes handoffs and then does nothing costs seconds, not a deadline per
//! scenario: after a few silent handoffs with no upstream request the rest of the catalog is
//! listed as not run, and failed. `--fail-fast` stops starting scenarios after the first
//! failure.

mod suite_support;

use std::time::{Duration, Instant};

use serde_json::Value;
use suite_support::{outcome, ref_daemon, streamcheck};

fn scenarios(doc: &Value) -> &Vec<Value> {
    doc["scenarios"].as_array().unwrap()
}

#[test]
fn the_whole_catalog_against_a_silent_daemon_ends_in_seconds_with_every_scenario_failed() {
    let started = Instant::now();
    // The defaults, as a user runs it: 4 jobs, 10 s per stream. One deadline per scenario
    // would take 190 s; the check takes two deadlines (the socket-type check, one wave).
    let out = streamcheck(&[
        "run",
        "--daemon-cmd",
        &ref_daemon(Some("silent")),
        "--format",
        "json",
    ]);
    let took = started.elapsed();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "the run took {took:?}: each scenario waited out its deadline"
    );
    assert!(
        stderr.contains("the daemon is unresponsive (no byte and no upstream request in"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let all = scenarios(&doc);
    assert_eq!(all.len(), streamcheck::scenario::catalog().len());
    for s in all {
        assert_eq!(s["verdict"], "FAILED", "{s}");
        assert_eq!(
            s["skipped"],
            Value::Null,
            "not run is failed, not skipped: {s}"
        );
    }
    let not_run: Vec<&Value> = all
        .iter()
        .filter(|s| s["assertions"][0]["name"] == "not run")
        .collect();
    assert!(
        not_run.len() > all.len() / 2,
        "most scenarios are judged without a handoff: {} of {}",
        not_run.len(),
        all.len()
    );
    for s in not_run {
        let message = s["assertions"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("the daemon is unresponsive"),
            "{message}"
        );
    }
}

#[test]
fn a_daemon_that_calls_its_upstream_is_not_judged_unresponsive_however_silent() {
    // buffer-whole-response writes nothing until the upstream has ended: with 200 ms between
    // the mock's chunks and a 1 s deadline every stream gets no byte, but the mock sees the
    // requests, so every scenario runs and is judged on what it saw.
    let out = streamcheck(&[
        "run",
        "--daemon-cmd",
        &ref_daemon(Some("buffer-whole-response")),
        "--mock-plain",
        "--chunk-delay-ms",
        "200",
        "--timeout",
        "1",
        "--category",
        "basic",
        "--category",
        "unicode",
        "--format",
        "json",
    ]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("unresponsive"), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let all = scenarios(&doc);
    let silent = all
        .iter()
        .filter(|s| s["wire"]["received_bytes"] == 0)
        .count();
    assert!(
        silent >= 3,
        "enough silent streams to trigger the check: {silent}"
    );
    for s in all {
        assert_ne!(s["assertions"][0]["name"], "not run", "{s}");
    }
}

#[test]
fn fail_fast_lists_the_scenarios_after_the_first_failure_as_not_run() {
    // ignore-test-pattern fails 1.1 (the mock sees no X-Test-Pattern header).
    let out = streamcheck(&[
        "run",
        "--daemon-cmd",
        &ref_daemon(Some("ignore-test-pattern")),
        "--mock-plain",
        "--jobs",
        "1",
        "--fail-fast",
        "--category",
        "basic",
        "--category",
        "unicode",
        "--format",
        "json",
    ]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(1), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let all = scenarios(&doc);
    assert_eq!(all[0]["id"], "1.1");
    assert_eq!(all[0]["verdict"], "FAILED");
    assert!(all.len() > 2, "{all:?}");
    for s in &all[1..] {
        assert_eq!(
            s["skipped"], "not run: --fail-fast stopped the run after 1.1 failed",
            "{s}"
        );
    }
    assert_eq!(doc["counts"]["failed"], 1);
}
