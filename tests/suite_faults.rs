//! A few of the reference daemon's fault modes, each caught by the scenario meant for it and
//! for the reason it names, through the library entry point (`scenario::run_suite`). Every
//! mode is checked systematically elsewhere; these pin the runner's side of the contract.

mod suite_support;

use streamcheck::verdict::Verdict;
use suite_support::{first, result, run_ref};

#[test]
fn a_wrong_content_type_fails_the_header_check_and_nothing_else() {
    let run = run_ref(
        Some("wrong-content-type"),
        &["content_type", "cache_control", "basic_content"],
        false,
    );
    let ct = result(&run, "content_type");
    assert_eq!(ct.verdict, Verdict::Fail);
    let why = first(ct, Verdict::Fail);
    assert!(
        why.contains("text/plain") && why.contains("EventSource"),
        "{why}"
    );
    assert_eq!(result(&run, "cache_control").verdict, Verdict::Pass);
    assert_eq!(result(&run, "basic_content").verdict, Verdict::Pass);
    assert_eq!(run.exit_code(), 1);
}

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
fn a_daemon_that_ignores_the_test_pattern_is_told_so_while_content_still_checks() {
    let run = run_ref(Some("ignore-test-pattern"), &["unicode_content"], false);
    let r = result(&run, "unicode_content");
    let by_name = |n: &str| r.assertions.iter().find(|a| a.name == n).unwrap().verdict;
    assert_eq!(by_name("X-Test-Pattern"), Verdict::Fail);
    assert_eq!(
        by_name("content"),
        Verdict::Pass,
        "the prompt directive still drove the mock"
    );
}

#[test]
fn a_daemon_that_keeps_reading_the_upstream_fails_the_downstream_abort() {
    let run = run_ref(Some("no-upstream-cancel"), &["downstream_abort"], false);
    let r = result(&run, "downstream_abort");
    assert_eq!(r.verdict, Verdict::Fail);
    let why = first(r, Verdict::Fail);
    assert!(why.starts_with("upstream cancelled"), "{why}");
}

#[test]
fn head_of_line_blocking_fails_the_slow_reader() {
    let run = run_ref(Some("head-of-line-blocking"), &["slow_reader"], false);
    let r = result(&run, "slow_reader");
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(first(r, Verdict::Fail).contains("head-of-line blocking"));
}

#[test]
fn leaked_client_sockets_are_counted() {
    let run = run_ref(Some("leak-fd"), &["concurrent_streams"], false);
    let r = result(&run, "concurrent_streams");
    assert_eq!(r.verdict, Verdict::Fail);
    let why = first(r, Verdict::Fail);
    assert!(why.starts_with("client sockets released"), "{why}");
}

#[test]
fn an_upstream_error_relayed_as_a_complete_answer_fails() {
    let run = run_ref(Some("error-as-done"), &["error_500", "error_429"], false);
    for name in ["error_500", "error_429"] {
        let r = result(&run, name);
        let failed: Vec<&str> = r
            .assertions
            .iter()
            .filter(|a| a.verdict == Verdict::Fail)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(failed, ["error reported", "no [DONE]"], "{name}");
    }
}
