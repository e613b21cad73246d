//! The JUnit XML report (quick-junit), written when the run finishes.
//!
//! One `<testsuite>` per category, in the order categories first appear; one `<testcase>` per
//! scenario named `"<id> <name>"` with classname `streamcheck.<category>`.
//! - FAILED: a `<failure>` whose `message` is the first failing assertion's message (and how
//!   many more failed), `type` `FAILED`, and whose text is the full diagnostic: every finding,
//!   expected against received, timings and the wire listing.
//! - NON-STRICT (without `--strict`) and INFORMATIONAL: passed, with the findings in
//!   `<system-out>` so viewers still show them.
//! - Skipped: `<skipped message="reason"/>` (also the scenarios an interrupted run did not
//!   finish).
//! - An interrupted run: every `<testsuite>` has the property `interrupted` = the signal.
//!
//! The distinct causes of what failed ([`crate::verdict::causes`]) lead the report: the first
//! `<testsuite>` carries them as properties (`causes` = the headline, `cause.1`, `cause.2`, …
//! = `key: text: ids`, most important first) and as its `<system-out>`, the block the human
//! report opens with.
//!
//! A daemon that died during the run comes first: a `daemon` testsuite whose one testcase,
//! `daemon alive`, fails with how it died and the end of its output.

use std::io::{self, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::Reporter;
use super::text::diagnostic;
use crate::verdict::causes;
use crate::verdict::{RunSummary, ScenarioResult, Verdict};

/// Writes the JUnit report to `W`.
pub struct Junit<W: Write> {
    out: W,
}

impl<W: Write> Junit<W> {
    /// A JUnit reporter.
    pub fn new(out: W) -> Self {
        Junit { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The quick-junit report of `summary` (what [`Junit`] serialises).
pub fn report(summary: &RunSummary) -> Report {
    let mut report = Report::new("streamcheck");
    let started = crate::verdict::rfc3339::utc(summary.started_at).fixed_offset();
    report
        .set_timestamp(started)
        .set_time(Duration::from_nanos(summary.duration_ns));
    let mut suites: Vec<TestSuite> = Vec::new();
    if let Some(death) = &summary.daemon_death {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(death.headline())
            .set_type(Verdict::Fail.label())
            .set_description(death.message());
        let mut case = TestCase::new("daemon alive", status);
        case.set_classname("streamcheck.daemon");
        let mut suite = TestSuite::new("daemon");
        suite.set_timestamp(started).add_test_case(case);
        suites.push(suite);
    }
    for r in &summary.scenarios {
        let index = match suites.iter().position(|s| s.name.as_str() == r.category) {
            Some(i) => i,
            None => {
                let mut suite = TestSuite::new(r.category.as_str());
                suite
                    .set_timestamp(started)
                    .add_property(Property::new("daemon", summary.daemon.as_str()))
                    .add_property(Property::new("strict", summary.strict.to_string()));
                if let Some(signal) = &summary.interrupted {
                    suite.add_property(Property::new("interrupted", signal.as_str()));
                }
                suites.push(suite);
                suites.len() - 1
            }
        };
        suites[index].add_test_case(test_case(r));
    }
    for suite in &mut suites {
        let total: Duration = suite.test_cases.iter().filter_map(|c| c.time).sum();
        suite.set_time(total);
    }
    if let (Some(first), Some(headline)) = (suites.first_mut(), causes::headline(&summary.causes)) {
        first.add_property(Property::new("causes", headline));
        for (i, g) in summary.causes.iter().enumerate() {
            let value = format!("{}: {}: {}", g.key, g.text, g.scenarios.join(" "));
            first.add_property(Property::new(format!("cause.{}", i + 1), value));
        }
        first.set_system_out(causes::lines(&summary.causes).join("\n"));
    }
    report.add_test_suites(suites);
    report
}

fn test_case(r: &ScenarioResult) -> TestCase {
    let status = if let Some(reason) = &r.skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(reason.as_str());
        status
    } else if r.verdict.is_failure() {
        // Under --strict a non-strict finding is what failed the scenario.
        let failing: Vec<_> = r.assertions_at_least(Verdict::NonStrict).collect();
        let mut message = failing.first().map_or_else(
            || r.description.clone(),
            |a| format!("{}: {}", a.name, a.message),
        );
        if failing.len() > 1 {
            message.push_str(&format!(" (and {} more)", failing.len() - 1));
        }
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(message)
            .set_type(Verdict::Fail.label())
            .set_description(diagnostic(r));
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(format!("{} {}", r.id, r.name), status);
    case.set_classname(format!("streamcheck.{}", r.category))
        .set_assertions(r.assertions.len());
    if r.skipped.is_none() {
        case.set_time(Duration::from_nanos(r.elapsed_ns));
        if !r.verdict.is_failure() && r.verdict > Verdict::Pass {
            case.set_system_out(format!("{}: {}", r.verdict.label(), diagnostic(r)));
        }
    }
    case
}

impl<W: Write + Send> Reporter for Junit<W> {
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        // Serialise in memory first so an output error keeps its kind (e.g. a closed pipe).
        let xml = report(summary)
            .to_string()
            .map_err(|e| io::Error::other(format!("cannot serialise the JUnit report: {e:?}")))?;
        writeln!(self.out, "{xml}")?;
        self.out.flush()
    }
}
