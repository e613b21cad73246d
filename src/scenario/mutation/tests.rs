//! The judging and rendering of mutation runs, on made-up suite results (the runs themselves
//! are exercised by tests/suite_mutation.rs).

use std::time::{Duration, SystemTime};

use super::*;
use crate::verdict::{AssertionResult, RunSummary, Strictness};

fn scenario(name: &str, assertions: &[(&str, Verdict)]) -> ScenarioResult {
    let sc = catalog().iter().find(|s| s.name == name).unwrap();
    ScenarioResult::new(sc.id, sc.name, sc.category.name(), sc.description)
        .with_assertions(
            assertions
                .iter()
                .map(|(n, v)| AssertionResult::new(*n, *v, format!("{n} said {v}"))),
        )
        .judged(Strictness::Lenient)
}

fn suite_run(scenarios: Vec<ScenarioResult>) -> SuiteRun {
    SuiteRun {
        summary: RunSummary::new(
            "test",
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            Strictness::Lenient,
            scenarios,
        ),
        notes: Vec::new(),
        daemon_failure: None,
        interrupted: None,
    }
}

fn lossy(split_1: Verdict, split_3: Verdict) -> ModeOutcome {
    mode_outcome(
        Fault::LossyUtf8,
        &suite_run(vec![
            scenario("split_1", &[("content", split_1)]),
            scenario("split_3", &[("content", split_3)]),
        ]),
    )
}

#[test]
fn a_mode_is_proven_when_every_catcher_gives_its_verdict_on_its_assertion() {
    let m = lossy(Verdict::Fail, Verdict::Fail);
    assert!(m.proven(), "{:?}", m.problems);
    assert_eq!(m.caught_by.len(), 2);
    assert_eq!(m.also().count(), 0);
    assert!(m.catchers.iter().all(CatcherResult::holds));
}

#[test]
fn a_catcher_that_passes_leaves_the_mode_unproven_even_when_another_catches() {
    let m = lossy(Verdict::Fail, Verdict::Pass);
    assert!(!m.proven());
    assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
    assert!(
        m.problems[0].starts_with("11.2 split_3: `content` was OK, expected FAILED"),
        "{}",
        m.problems[0]
    );
}

#[test]
fn the_wrong_verdict_is_not_the_reason_the_table_names() {
    let m = lossy(Verdict::Fail, Verdict::NonStrict);
    assert!(!m.proven());
    assert!(m.problems[0].contains("was NON-STRICT, expected FAILED"));
}

#[test]
fn a_mode_caught_only_elsewhere_is_not_proven() {
    let m = mode_outcome(
        Fault::WrongContentType,
        &suite_run(vec![
            scenario("basic_response", &[("header Content-Type", Verdict::Fail)]),
            scenario("content_type", &[("header Content-Type", Verdict::Pass)]),
        ]),
    );
    assert!(!m.proven());
    assert_eq!(m.caught_by.len(), 1);
    assert_eq!(m.also().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["1.1"]);
}

#[test]
fn a_mode_nothing_catches_says_so() {
    let m = mode_outcome(
        Fault::StreamSocket,
        &suite_run(vec![scenario(
            "socket_type",
            &[("socket type", Verdict::Pass)],
        )]),
    );
    assert!(
        m.problems
            .iter()
            .any(|p| p.contains("no scenario caught it"))
    );
}

#[test]
fn a_missing_assertion_a_skipped_or_absent_catcher_are_problems() {
    let skipped = ScenarioResult::skipped("8.3", "unreachable_backend", "upstream", "", "why not");
    let m = mode_outcome(
        Fault::HeadersOnlyOnUpstreamError,
        &suite_run(vec![
            scenario("error_500", &[("status", Verdict::Fail)]),
            skipped,
        ]),
    );
    let problems = m.problems.join("\n");
    assert!(problems.contains("8.1 error_500 made no `error reported` assertion"));
    assert!(problems.contains("8.3 unreachable_backend was skipped: why not"));
    assert!(problems.contains("8.2 error_429 did not run"));
    assert_eq!(m.problems.len(), 3, "{problems}");
}

#[test]
fn a_daemon_that_died_is_a_problem_even_when_caught() {
    let mut run = suite_run(vec![
        scenario("split_1", &[("content", Verdict::Fail)]),
        scenario("split_3", &[("content", Verdict::Fail)]),
    ]);
    run.daemon_failure = Some("the daemon exited (signal 11)".into());
    let m = mode_outcome(Fault::LossyUtf8, &run);
    assert_eq!(m.problems, ["the daemon exited (signal 11)"]);
}

fn whole_catalog(worst: Verdict) -> Vec<ScenarioResult> {
    catalog()
        .iter()
        .map(|s| scenario(s.name, &[("check", Verdict::Pass)]))
        .enumerate()
        .map(|(k, s)| {
            if k == 3 {
                scenario(&s.name, &[("check", worst)])
            } else {
                s
            }
        })
        .collect()
}

#[test]
fn the_correct_daemon_passes_with_informational_findings() {
    let c = correct_outcome(&suite_run(whole_catalog(Verdict::Informational)));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.counts.informational, 1);
}

#[test]
fn a_non_strict_finding_of_the_correct_daemon_is_a_problem() {
    let c = correct_outcome(&suite_run(whole_catalog(Verdict::NonStrict)));
    assert_eq!(c.problems.len(), 1);
    assert!(c.problems[0].contains("is NON-STRICT: check: check said NON-STRICT"));
}

#[test]
fn the_correct_daemon_must_run_the_whole_catalog() {
    let mut scenarios = whole_catalog(Verdict::Pass);
    scenarios.pop();
    let c = correct_outcome(&suite_run(scenarios));
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].contains("of the catalog's"));
}

fn report(lossy_split_3: Verdict) -> MutationReport {
    MutationReport {
        scope: Scope::Catchers,
        modes: vec![
            lossy(Verdict::Fail, lossy_split_3),
            not_run(Fault::Crosstalk, "the run could not be made: no".into()),
        ],
        correct: correct_outcome(&suite_run(whole_catalog(Verdict::Pass))),
    }
}

#[test]
fn the_report_is_proven_only_when_every_part_is() {
    let r = report(Verdict::Fail);
    assert!(!r.proven());
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.problems(), ["crosstalk: the run could not be made: no"]);
    let proven = MutationReport {
        modes: vec![lossy(Verdict::Fail, Verdict::Fail)],
        ..r
    };
    assert!(proven.proven());
    assert_eq!(proven.exit_code(), 0);
}

#[test]
fn human_lists_each_catcher_with_its_verdict_and_what_is_not_proven() {
    let text = human(&report(Verdict::Pass));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("FAULT MODE"), "{text}");
    assert!(
        lines[1].starts_with("lossy-utf8") && lines[1].contains("11.1  split_1"),
        "{text}"
    );
    assert!(
        lines[1].trim_end().ends_with("FAILED      content"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("   ") && lines[2].contains("OK"),
        "{text}"
    );
    assert!(
        lines[2].ends_with("content (was OK, expected FAILED)"),
        "{text}"
    );
    assert!(
        lines[3].contains("- ") && lines[3].contains("(did not run)"),
        "{text}"
    );
    assert!(text.contains("correct daemon (no fault)"));
    assert!(text.contains("2 of 2 fault modes are NOT caught as the table says"));
    assert!(text.contains("Not proven:\n  - lossy-utf8: 11.2 split_3"));
}

#[test]
fn markdown_is_one_row_per_mode_and_one_for_the_correct_daemon() {
    let text = markdown(&report(Verdict::Fail));
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 2 + 2 + 1, "{text}");
    assert!(rows[2].starts_with("| `lossy-utf8` | Decodes each upstream read"));
    assert!(rows[2].contains("11.1 `split_1` FAILED (`content`)<br>11.2 `split_3` FAILED"));
    assert!(
        rows[2].ends_with(" | content |"),
        "the cause it is reported as: {text}"
    );
    assert!(rows[3].contains("10.1 `concurrent_streams` - (`streams intact`: did not run)"));
    assert!(
        rows[4].starts_with("| correct daemon (no fault) | — | nothing (47 scenarios: 47 OK, ")
    );
    assert!(text.ends_with("the correct daemon passes the whole catalog.\n"));
}

#[test]
fn markdown_cells_escape_pipes_and_line_breaks() {
    assert_eq!(super::render::cell("a|b\nc"), "a\\|b c");
}

#[test]
fn json_says_what_each_catcher_gave() {
    let v = json(&report(Verdict::Pass));
    assert_eq!(v["proven"], false);
    assert_eq!(v["scope"], "catchers");
    let lossy = &v["modes"][0];
    assert_eq!(lossy["fault"], "lossy-utf8");
    assert_eq!(lossy["catchers"][1]["name"], "split_3");
    assert_eq!(lossy["catchers"][1]["expected"], "FAILED");
    assert_eq!(lossy["catchers"][1]["verdict"], "OK");
    assert_eq!(lossy["catchers"][1]["holds"], false);
    assert_eq!(
        v["modes"][1]["catchers"][0]["verdict"],
        serde_json::Value::Null
    );
    assert_eq!(v["correct"]["passes"], true);
    assert_eq!(v["correct"]["counts"]["total"], catalog().len());
}

#[test]
fn a_full_run_lists_the_other_catchers() {
    let mut r = report(Verdict::Fail);
    r.scope = Scope::Full;
    r.modes[0].caught_by.push(Caught {
        id: "2.1".into(),
        name: "unicode_content".into(),
        verdict: Verdict::Fail,
        assertions: vec!["content".into()],
    });
    assert!(human(&r).contains("also: 2.1\n"));
    assert!(markdown(&r).contains("| also caught by |"));
}

#[test]
fn long_also_lists_wrap_under_their_label() {
    let mut r = report(Verdict::Fail);
    r.scope = Scope::Full;
    r.modes[0].caught_by = catalog()
        .iter()
        .map(|s| Caught {
            id: s.id.into(),
            name: s.name.into(),
            verdict: Verdict::Fail,
            assertions: Vec::new(),
        })
        .collect();
    let text = human(&r);
    let also: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("also:"))
        .take_while(|l| l.starts_with(' '))
        .collect();
    assert!(also.len() > 1, "{text}");
    assert!(
        also.iter().all(|l| l.len() <= super::render::WIDTH),
        "{text}"
    );
    let indent = also[0].find("1.1").unwrap();
    assert!(
        also[1..]
            .iter()
            .all(|l| l.find(|c: char| c != ' ') == Some(indent))
    );
    let ids: Vec<&str> = also.iter().flat_map(|l| l.split_whitespace()).collect();
    assert_eq!(
        ids.len(),
        catalog().len() - 2 + 1,
        "every id but the catchers', and the label"
    );
}

#[test]
fn wrapping_keeps_every_word_and_the_width() {
    let words = ["aa", "bbb", "c", "dddd", "eeeeeeeee"];
    assert_eq!(
        super::render::wrap(&words, 8),
        ["aa bbb c", "dddd", "eeeeeeeee"]
    );
    assert!(super::render::wrap(&[], 8).is_empty());
}

#[test]
fn the_daemon_command_survives_any_path() {
    assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    let mut config = MutationConfig::new("/x y/streamcheck".into());
    let suite = suite_config(&config, Some(Fault::Cut4k));
    let Target::Command(cmd) = &suite.target else {
        panic!("not a command")
    };
    assert_eq!(
        cmd.command,
        "'/x y/streamcheck' ref-daemon --socket {socket} --fault cut-4k"
    );
    assert_eq!(suite.scenarios, ["long_chunks", "huge_line"]);
    config.scope = Scope::Full;
    assert!(
        suite_config(&config, Some(Fault::Cut4k))
            .scenarios
            .is_empty()
    );
    assert!(suite_config(&config, None).scenarios.is_empty());
}
