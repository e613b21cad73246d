//! The two client formats PROTOCOL.md documents, each from the reference daemon
//! (`ref-daemon --client-format`): pure simplified `{"content":…}` events, which cannot carry a
//! finish_reason, and OpenAI chunks as a pass-through daemon forwards them. A daemon that does
//! what either format allows passes the whole catalog under `--strict`; one that loses the end
//! of the answer is still caught in the simplified format.

mod suite_support;

use std::time::Duration;

use streamcheck::scenario::{SuiteRun, catalog};
use streamcheck::verdict::{Counts, Verdict};
use suite_support::{BIN, first, result, run_command};

/// `--daemon-cmd` for the reference daemon in `format`, with `fault` or none.
fn ref_daemon(format: &str, fault: Option<&str>) -> String {
    let fault = fault.map(|f| format!(" --fault {f}")).unwrap_or_default();
    format!("{BIN} ref-daemon --socket {{socket}} --client-format {format}{fault}")
}

/// Every scenario the run did not pass, with its first finding.
fn not_passed(run: &SuiteRun) -> Vec<String> {
    run.summary
        .scenarios
        .iter()
        .filter(|s| s.verdict >= Verdict::NonStrict || s.skipped.is_some())
        .map(|s| {
            let finding = s.assertions_at_least(Verdict::NonStrict).next();
            let why = finding.map_or("", |a| a.message.as_str());
            format!("{} {}: {why}", s.id, s.name)
        })
        .collect()
}

fn passes_the_whole_catalog_under_strict(format: &str) -> SuiteRun {
    let run = run_command(ref_daemon(format, None), &[], true, Duration::from_secs(5));
    assert_eq!(not_passed(&run), Vec::<String>::new(), "{format}");
    let c = Counts::of(&run.summary.scenarios);
    assert_eq!(c.total, catalog().len());
    assert_eq!((c.non_strict, c.failed, c.skipped), (0, 0, 0), "{c:?}");
    run
}

#[test]
fn simplified_events_pass_the_whole_catalog_under_strict() {
    let run = passes_the_whole_catalog_under_strict("simplified");
    // The events carried no finish_reason: [DONE] completes 5.1, the lost "length" is a fact.
    let stop = result(&run, "finish_stop");
    let a = stop.assertions.iter().find(|a| a.name == "finish_reason");
    assert!(
        a.is_some_and(|a| a.verdict == Verdict::Pass && a.message.contains("[DONE]")),
        "{stop:#?}"
    );
    let length = result(&run, "finish_length");
    assert_eq!(length.verdict, Verdict::Informational, "{length:#?}");
    assert!(first(length, Verdict::Informational).contains("\"length\""));
}

#[test]
fn openai_chunks_pass_the_whole_catalog_under_strict() {
    let run = passes_the_whole_catalog_under_strict("openai");
    // The final chunk carried the finish_reason, and it was judged.
    let length = result(&run, "finish_length");
    assert_eq!(length.verdict, Verdict::Pass, "{length:#?}");
    let a = length.assertions.iter().find(|a| a.name == "finish_reason");
    assert!(
        a.is_some_and(|a| a.message == "finish_reason \"length\""),
        "{length:#?}"
    );
}

/// The names of the assertions that keep `name` from passing in `run`.
fn findings<'a>(run: &'a SuiteRun, name: &str) -> Vec<&'a str> {
    result(run, name)
        .assertions_at_least(Verdict::NonStrict)
        .map(|a| a.name.as_str())
        .collect()
}

#[test]
fn a_simplified_daemon_that_loses_the_end_of_the_answer_is_still_caught() {
    let daemon = ref_daemon("simplified", Some("done-after-abort"));
    let run = run_command(
        daemon.clone(),
        &["abort_stream", "abort_early"],
        true,
        Duration::from_secs(5),
    );
    for name in ["abort_stream", "abort_early"] {
        assert_eq!(result(&run, name).verdict, Verdict::Fail, "{name}");
        assert_eq!(findings(&run, name), ["no [DONE]"], "{name}");
    }
    let daemon = ref_daemon("simplified", Some("cut-4k"));
    let run = run_command(daemon, &["long_chunks"], true, Duration::from_secs(5));
    assert_eq!(result(&run, "long_chunks").verdict, Verdict::Fail);
    assert_eq!(findings(&run, "long_chunks"), ["content"]);
}
