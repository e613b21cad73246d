//! The mutation table for people (aligned text), for the README (Markdown) and for tools
//! (JSON). Nothing here depends on timing, so a table computed twice renders the same.

use std::fmt::Write as _;

use serde_json::json;

use super::{CatcherResult, Caught, CorrectOutcome, ModeOutcome, MutationReport, Scope};
use crate::verdict::{Counts, Verdict};

const CORRECT: &str = "correct daemon (no fault)";

fn counts_line(c: &Counts) -> String {
    format!(
        "{} scenarios: {} OK, {} INFORMATIONAL, {} NON-STRICT, {} FAILED, {} skipped",
        c.total, c.ok, c.informational, c.non_strict, c.failed, c.skipped
    )
}

/// What a catcher gave, where it is not what the table says.
fn shortfall(c: &CatcherResult) -> Option<String> {
    match (c.scenario_verdict, c.assertion_verdict) {
        _ if c.holds() => None,
        (None, _) => Some("did not run".to_owned()),
        (Some(_), None) => Some(format!("no `{}` assertion", c.catcher.assertion)),
        (Some(_), Some(v)) => Some(format!("was {v}, expected {}", c.catcher.verdict)),
    }
}

fn summary(report: &MutationReport) -> String {
    let proven = report.modes.iter().filter(|m| m.proven()).count();
    let total = report.modes.len();
    let correct = if report.correct.problems.is_empty() {
        "the correct daemon passes the whole catalog"
    } else {
        "the correct daemon does NOT pass the whole catalog"
    };
    if proven == total {
        format!(
            "All {total} fault modes are caught by their scenarios for the reason each names; \
             {correct}."
        )
    } else {
        format!(
            "{} of {total} fault modes are NOT caught as the table says; {correct}.",
            total - proven
        )
    }
}

/// The width the "also" lists of a full run are wrapped to.
pub(super) const WIDTH: usize = 100;

/// `words` joined by spaces into lines of at most `width` characters (a longer word stands
/// alone).
pub(super) fn wrap(words: &[&str], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + w.len() <= width => {
                line.push(' ');
                line.push_str(w);
            }
            _ => lines.push((*w).to_owned()),
        }
    }
    lines
}

/// Aligned text: one line per catcher, the correct daemon's counts, and what is not proven.
pub fn human(report: &MutationReport) -> String {
    let mode_w = report
        .modes
        .iter()
        .map(|m| m.fault.name().len())
        .chain([CORRECT.len(), "FAULT MODE".len()])
        .max()
        .unwrap_or(0);
    let rows = report.modes.iter().flat_map(|m| m.catchers.iter());
    let id_w = rows.clone().map(|c| c.id.len()).max().unwrap_or(0);
    let name_w = rows.map(|c| c.catcher.scenario.len()).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<mode_w$}  {:<w$}  {:<10}  ASSERTION",
        "FAULT MODE",
        "CAUGHT BY",
        "VERDICT",
        w = id_w + 2 + name_w
    );
    for m in &report.modes {
        for (k, c) in m.catchers.iter().enumerate() {
            let mode = if k == 0 {
                m.fault.name()
            } else {
                String::new()
            };
            let verdict = c.scenario_verdict.map_or("-", Verdict::label);
            let note = shortfall(c).map_or(String::new(), |s| format!(" ({s})"));
            let _ = writeln!(
                out,
                "{mode:<mode_w$}  {:<id_w$}  {:<name_w$}  {verdict:<10}  {}{note}",
                c.id, c.catcher.scenario, c.catcher.assertion
            );
        }
        if report.scope == Scope::Full {
            let also: Vec<&str> = m.also().map(|c| c.id.as_str()).collect();
            let indent = mode_w + 2 + "also: ".len();
            for (k, line) in wrap(&also, WIDTH.saturating_sub(indent)).iter().enumerate() {
                let label = if k == 0 { "also:" } else { "" };
                let _ = writeln!(out, "{:mode_w$}  {label:<5} {line}", "");
            }
        }
    }
    let _ = writeln!(
        out,
        "{CORRECT:<mode_w$}  {}",
        counts_line(&report.correct.counts)
    );
    let _ = writeln!(out, "\n{}", summary(report));
    let problems = report.problems();
    if !problems.is_empty() {
        out.push_str("Not proven:\n");
        for p in problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    out
}

/// A Markdown table cell: pipes escaped, no line breaks.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown_catchers(m: &ModeOutcome) -> String {
    m.catchers
        .iter()
        .map(|c| {
            let verdict = c.scenario_verdict.map_or("-", Verdict::label);
            let note = shortfall(c).map_or(String::new(), |s| format!(": {s}"));
            format!(
                "{} `{}` {verdict} (`{}`{})",
                c.id,
                c.catcher.scenario,
                c.catcher.assertion,
                cell(&note)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// The causes a mode's report opens with, for a table cell: `text` each, `; ` between.
fn reported_as(m: &ModeOutcome) -> String {
    let texts: Vec<String> = m.causes.iter().map(|g| g.text.clone()).collect();
    cell(&texts.join("; "))
}

/// A Markdown table (fault mode, its bug, the scenarios that catch it, why, the cause its
/// report opens with), a row for the correct daemon, and a summary line: the README's "Fault
/// modes" block.
pub fn markdown(report: &MutationReport) -> String {
    let full = report.scope == Scope::Full;
    let mut out = String::new();
    out.push_str("| fault mode | its bug | caught by | why | reported as |");
    out.push_str(if full { " also caught by |\n" } else { "\n" });
    out.push_str("|---|---|---|---|---|");
    out.push_str(if full { "---|\n" } else { "\n" });
    for m in &report.modes {
        let _ = write!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            m.fault.name(),
            cell(&m.fault.description()),
            markdown_catchers(m),
            cell(m.expectation.reason),
            reported_as(m)
        );
        if full {
            let also: Vec<&str> = m.also().map(|c| c.id.as_str()).collect();
            let _ = write!(out, " {} |", also.join(" "));
        }
        out.push('\n');
    }
    let _ = write!(
        out,
        "| {CORRECT} | — | nothing ({}) | it does what the protocol requires | — |",
        counts_line(&report.correct.counts)
    );
    out.push_str(if full { " |\n" } else { "\n" });
    let _ = writeln!(out, "\n{}", summary(report));
    out
}

fn caught_json(c: &Caught) -> serde_json::Value {
    json!({
        "id": c.id,
        "name": c.name,
        "verdict": c.verdict,
        "assertions": c.assertions,
    })
}

fn correct_json(c: &CorrectOutcome) -> serde_json::Value {
    json!({
        "counts": c.counts,
        "caught_by": c.caught_by.iter().map(caught_json).collect::<Vec<_>>(),
        "problems": c.problems,
        "passes": c.problems.is_empty(),
    })
}

/// One JSON document:
/// `{"scope", "proven", "modes": [{"fault", "description", "reason", "proven", "catchers":
/// [{"id", "name", "assertion", "expected", "verdict", "assertion_verdict", "holds"}],
/// "caught_by": [{"id", "name", "verdict", "assertions"}], "causes": [{"key", "text", "verdict",
/// "scenarios"}], "problems"}], "correct": {"counts",
/// "caught_by", "problems", "passes"}}`. Verdicts are report labels (`"FAILED"`); a catcher
/// that did not run has `"verdict": null`.
pub fn json(report: &MutationReport) -> serde_json::Value {
    let modes: Vec<serde_json::Value> = report
        .modes
        .iter()
        .map(|m| {
            let catchers: Vec<serde_json::Value> = m
                .catchers
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "name": c.catcher.scenario,
                        "assertion": c.catcher.assertion,
                        "expected": c.catcher.verdict,
                        "verdict": c.scenario_verdict,
                        "assertion_verdict": c.assertion_verdict,
                        "holds": c.holds(),
                    })
                })
                .collect();
            json!({
                "fault": m.fault.name(),
                "description": m.fault.description(),
                "reason": m.expectation.reason,
                "proven": m.proven(),
                "catchers": catchers,
                "caught_by": m.caught_by.iter().map(caught_json).collect::<Vec<_>>(),
                "causes": m.causes,
                "problems": m.problems,
            })
        })
        .collect();
    json!({
        "scope": match report.scope {
            Scope::Catchers => "catchers",
            Scope::Full => "full",
        },
        "proven": report.proven(),
        "modes": modes,
        "correct": correct_json(&report.correct),
    })
}
