//! A daemon that abuses its resources instead of answering is named for what it did: it never
//! accepted the connection, or accepted it and never read the handoff (`ref-daemon --fault
//! never-accept`, `never-read-handoff`), not "it wrote nothing".

mod suite_support;

use streamcheck::verdict::Verdict;
use suite_support::{first, result, run_ref};

#[test]
fn a_daemon_that_never_accepts_is_named_so() {
    let run = run_ref(Some("never-accept"), &["basic_response"], false);
    let r = result(&run, "basic_response");
    assert_eq!(r.verdict, Verdict::Fail);
    let why = first(r, Verdict::Fail);
    assert!(why.contains("never accepted the connection"), "{why}");
    assert!(!why.contains("wrote nothing"), "{why}");
}

#[test]
fn a_daemon_that_accepts_but_never_reads_the_handoff_is_named_so() {
    let run = run_ref(Some("never-read-handoff"), &["basic_response"], false);
    let r = result(&run, "basic_response");
    assert_eq!(r.verdict, Verdict::Fail);
    let why = first(r, Verdict::Fail);
    assert!(
        why.contains("accepted the connection but never read the handoff"),
        "{why}"
    );
}

#[test]
fn a_daemon_that_reads_the_handoff_and_hangs_is_still_told_it_wrote_nothing() {
    // hang-on-upstream-error reads the handoff, then writes nothing after an upstream error.
    let run = run_ref(Some("hang-on-upstream-error"), &["error_500"], false);
    let why = first(result(&run, "error_500"), Verdict::Fail);
    assert!(why.contains("wrote nothing"), "{why}");
    assert!(!why.contains("never"), "{why}");
}
