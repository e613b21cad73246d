//! A sample run with every kind of outcome, shared by the report format tests.

#![allow(dead_code)] // each test binary uses part of it

use std::time::{Duration, SystemTime};

use streamcheck::report::Reporter;
use streamcheck::verdict::{
    AssertionResult, RunSummary, ScenarioResult, Spread, Strictness, Timings, Verdict, WireDump,
    WireLimits, check,
};

/// Where tests may write files.
pub fn tmp_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()))
}

fn timings() -> Timings {
    Timings {
        handoff_ns: Some(85_000),
        head_ns: Some(1_200_000),
        first_event_ns: Some(2_400_000),
        total_ns: Some(40_000_000),
        gaps: Spread::of(&[1_000_000, 2_000_000, 4_000_000]),
        relay_latency: Spread::of(&[150_000, 180_000]),
    }
}

fn wire() -> WireDump {
    let reads: [(u64, &[u8]); 3] = [
        (
            1_300_000,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        ),
        (2_400_000, b"data: {\"content\":\"caf\xc3"),
        (2_500_000, b"\"}\n\n"),
    ];
    WireDump::capture(reads, WireLimits::default())
        .with_head_len(52)
        .with_sent(
            80_000,
            br#"{"prompt":"[[pattern:unicode]] [[nonce:n1]]","test_pattern":"unicode"}"#,
            WireLimits::default(),
        )
        .with_end("closed by the daemon")
}

/// One scenario per outcome: OK, FAILED (content, with wire bytes), NON-STRICT with an
/// informational fact, INFORMATIONAL only, skipped, and a FAILED one whose name and messages
/// hold characters every format must escape.
pub fn scenarios(strictness: Strictness) -> Vec<ScenarioResult> {
    vec![
        ScenarioResult::new("1.1", "basic_response", "basic", "The daemon answers with 200 and an event stream.")
            .with_assertions([check::status_is(200, Some(200)), check::done_present(Some(3), 4, Verdict::Fail)])
            .with_timings(timings())
            .with_elapsed(Duration::from_millis(41))
            .judged(strictness),
        ScenarioResult::new("2.1", "unicode_content", "unicode", "Multi-byte characters arrive intact.")
            .with_assertions([
                check::status_is(200, Some(200)),
                check::content_equals("café", b"caf\xc3"),
                check::done_present(None, 1, Verdict::Fail),
            ])
            .with_timings(timings())
            .with_elapsed(Duration::from_millis(52))
            .with_wire(wire())
            .judged(strictness),
        ScenarioResult::new("3.1", "headers_cache", "headers", "Cache-Control and X-Accel-Buffering.")
            .with_assertions([
                check::header_contains::<&str, &str>("Cache-Control", "no-cache", &[], Verdict::NonStrict),
                check::header_present::<&str, &str>("X-Accel-Buffering", &[], Verdict::Informational),
            ])
            .with_elapsed(Duration::from_millis(12))
            .with_wire(wire())
            .judged(strictness),
        ScenarioResult::new("3.2", "headers_early", "headers", "Whether headers precede the upstream's answer.")
            .with_assertions([check::info("headers before upstream", "headers went out 2.0 ms before the upstream answered")])
            .with_elapsed(Duration::from_millis(9))
            .judged(strictness),
        ScenarioResult::skipped("4.3", "upstream_unreachable", "upstream", "An unreachable backend.", "needs --daemon-cmd: the daemon's backend cannot be changed while it runs"),
        ScenarioResult::new("5.1", "odd # name \\ \"q\"", "splits", "Line one\nline two # TODO not a directive")
            .with_assertions([AssertionResult::new(
                "odd",
                Verdict::Fail,
                "quote \" backslash \\ hash # TODO tab \t newline \n escape \u{1b} bom \u{feff} emoji 🎉",
            )
            .with_expected("a\\nb")
            .with_received("a\\r\\nb")])
            .with_elapsed(Duration::from_millis(3))
            .judged(strictness),
    ]
}

/// A run where nothing failed (no FAILED scenario; non-strict, informational and skipped ones).
pub fn passing_scenarios() -> Vec<ScenarioResult> {
    scenarios(Strictness::Lenient)
        .into_iter()
        .filter(|s| !s.verdict.is_failure())
        .collect()
}

pub fn summary(scenarios: Vec<ScenarioResult>, strictness: Strictness) -> RunSummary {
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    RunSummary::new(
        "/run/streaming-daemon.sock",
        started,
        Duration::from_millis(1234),
        strictness,
        scenarios,
    )
}

/// Drives `reporter` through a run as the runner does.
pub fn drive(reporter: &mut dyn Reporter, summary: &RunSummary) {
    reporter.on_start(summary.scenarios.len()).unwrap();
    for s in &summary.scenarios {
        reporter.on_result(s).unwrap();
    }
    reporter.on_finish(summary).unwrap();
}
