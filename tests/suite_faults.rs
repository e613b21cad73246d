//! What the runner does around a fault, through the library entry point
//! (`scenario::run_suite`): how strictness treats a non-strict finding, how a daemon on the
//! wrong socket type is still tested, how content is tested when the pattern header is lost.
//! That every fault mode is caught, and by which scenarios, is proven in suite_mutation.rs.

mod suite_support;

use streamcheck::verdict::Verdict;
use suite_support::{first, result, run_ref};

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
