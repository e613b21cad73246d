//! What the runner does around a fault, through the library entry point
//! (`scenario::run_suite`): how strictness treats a non-strict finding, how a daemon on the
//! wrong socket type is still tested, how content is tested when the pattern header is lost,
//! how a slow reader's delay is put down to the daemon or to the upstream's HTTP/2 window.
//! That every fault mode is caught, and by which scenarios, is proven in suite_mutation.rs.

mod suite_support;

use std::time::Duration;

use streamcheck::verdict::Verdict;
use suite_support::{BIN, first, result, run_command, run_ref};

#[test]
fn done_after_an_abort_is_non_strict_and_fails_under_strict() {
    let lenient = run_ref(
        Some("done-after-abort"),
        &["abort_stream", "abort_early", "finish_stop"],
        false,
    );
    for name in ["abort_stream", "abort_early"] {
        let r = result(&lenient, name);
        assert_eq!(r.verdict, Verdict::NonStrict, "{name}");
        assert!(first(r, Verdict::NonStrict).contains("[DONE]"), "{name}");
    }
    assert_eq!(result(&lenient, "finish_stop").verdict, Verdict::Pass);
    assert_eq!(
        lenient.exit_code(),
        0,
        "non-strict findings do not fail a run"
    );
    let strict = run_ref(Some("done-after-abort"), &["abort_stream"], true);
    assert_eq!(result(&strict, "abort_stream").verdict, Verdict::Fail);
    assert_eq!(strict.exit_code(), 1);
}

#[test]
fn a_stream_socket_fails_the_socket_type_check_and_the_rest_still_runs() {
    let run = run_ref(
        Some("stream-socket"),
        &["socket_type", "basic_response", "unicode_content"],
        false,
    );
    let st = result(&run, "socket_type");
    assert_eq!(st.verdict, Verdict::Fail);
    assert!(first(st, Verdict::Fail).contains("SOCK_SEQPACKET"));
    assert_eq!(result(&run, "basic_response").verdict, Verdict::Pass);
    assert_eq!(result(&run, "unicode_content").verdict, Verdict::Pass);
    assert!(
        run.notes.iter().any(|n| n.contains("SOCK_STREAM")),
        "{:?}",
        run.notes
    );
}

#[test]
fn a_daemon_that_ignores_the_test_pattern_fails_the_owner_once_and_is_noted_elsewhere() {
    let run = run_ref(
        Some("ignore-test-pattern"),
        &["basic_response", "unicode_content"],
        false,
    );
    let owner = result(&run, "basic_response");
    assert_eq!(owner.verdict, Verdict::Fail);
    assert!(first(owner, Verdict::Fail).contains("copy the handoff's test_pattern"));
    let r = result(&run, "unicode_content");
    let by_name = |n: &str| r.assertions.iter().find(|a| a.name == n).unwrap();
    let note = by_name("X-Test-Pattern");
    assert_eq!(note.verdict, Verdict::Informational);
    assert!(
        note.message.ends_with("see 1.1 basic_response"),
        "{}",
        note.message
    );
    assert_eq!(
        by_name("content").verdict,
        Verdict::Pass,
        "the prompt directive still drove the mock"
    );
    assert_eq!(
        r.verdict,
        Verdict::Informational,
        "judged on its own property"
    );
    let keys: Vec<&str> = run.summary.causes.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["pattern-header-missing"]);
    assert_eq!(run.summary.causes[0].scenarios, ["1.1"]);
}

/// The relay-latency assertion of 9.2 in `run`.
fn slow_reader_latency(run: &streamcheck::scenario::SuiteRun) -> (Verdict, String) {
    let r = result(run, "slow_reader");
    let a = r
        .assertions
        .iter()
        .find(|a| a.name == "relay latency beside a slow reader")
        .unwrap_or_else(|| panic!("no latency assertion: {:?}", r.assertions));
    (a.verdict, a.message.clone())
}

/// The reference daemon as it is, except that its one HTTP/2 upstream connection has a window
/// of 1 MiB, less than one stream's (2 MiB): its slow reader's upstream stream stops being read
/// (backpressure) and so fills the connection's window, and the mock cannot send the quick
/// stream's DATA.
#[test]
fn a_slow_reader_holding_the_shared_http2_window_is_put_down_to_the_upstream() {
    let command =
        format!("OPENAI_HTTP2_CONNECTION_WINDOW=1048576 {BIN} ref-daemon --socket {{socket}}");
    let run = run_command(command, &["slow_reader"], false, Duration::from_secs(5));
    let (verdict, message) = slow_reader_latency(&run);
    assert_eq!(verdict, Verdict::Fail, "{message}");
    assert!(
        message.contains("the upstream could not send for")
            && message.contains("HTTP/2 window was held by the stalled stream"),
        "{message}"
    );
    assert!(!message.contains("head-of-line"), "{message}");
}

/// The head-of-line fault holds one lock across client writes: the upstream sends the quick
/// stream promptly and the daemon holds it.
#[test]
fn a_daemon_holding_the_bytes_itself_gets_the_head_of_line_advice() {
    let run = run_ref(Some("head-of-line-blocking"), &["slow_reader"], false);
    let (verdict, message) = slow_reader_latency(&run);
    assert_eq!(verdict, Verdict::Fail, "{message}");
    assert!(message.contains("head-of-line blocking"), "{message}");
    assert!(!message.contains("could not send"), "{message}");
}
