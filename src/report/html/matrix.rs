//! The cross-daemon matrix (`report merge`): scenarios × daemons from their JSON reports, one
//! cell per verdict, each linking to that daemon's HTML report at the scenario
//! (`ref.html#4.1`). A row whose daemons disagree is marked, so the differences stand out.

use std::path::{Path, PathBuf};

use maud::html;

use super::{badge, page, verdict_class};
use crate::report::json::SCHEMA_VERSION;
use crate::report::text::{counts, safe};
use crate::verdict::{RunSummary, ScenarioResult};

/// One daemon's column: its name (the JSON file's stem, also its HTML page's) and its run.
pub struct Column {
    /// The file stem, e.g. `ref` for `reports/ref.json`.
    pub name: String,
    /// The run the JSON report describes.
    pub run: RunSummary,
}

/// A JSON report that cannot be read into the matrix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read {}: {io}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        io: std::io::Error,
    },
    /// Not a JSON report of this schema.
    #[error(
        "{} is not a streamcheck JSON report of schema version {SCHEMA_VERSION}: {why}; write \
         it with `streamcheck run --format json` (or --json-report) of this version",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

impl Column {
    /// Reads the JSON report at `path`.
    pub fn load(path: &Path) -> Result<Column, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|io| LoadError::Read {
            path: path.to_path_buf(),
            io,
        })?;
        Column::parse(path, &text)
    }

    /// The JSON report `text`, read from `path` (which names the column and the errors).
    pub fn parse(path: &Path, text: &str) -> Result<Column, LoadError> {
        let invalid = |why: String| LoadError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON ({e})")))?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => return Err(invalid(format!("its schema_version is {v}"))),
            None => return Err(invalid("it has no schema_version".into())),
        }
        let run = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let name = path
            .file_stem()
            .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
        Ok(Column { name, run })
    }
}

/// The matrix page of `columns`. Rows are the scenarios in the order first met, each column's
/// new ones after the ones before.
pub fn render(columns: &[Column]) -> String {
    let mut ids: Vec<(&str, &str)> = Vec::new();
    for c in columns {
        for s in &c.run.scenarios {
            if !ids.iter().any(|(id, _)| *id == s.id) {
                ids.push((&s.id, &s.name));
            }
        }
    }
    let body = html! {
        h1 { "streamcheck: " (columns.len()) " daemons × " (ids.len()) " scenarios" }
        p { "Each cell is a daemon's verdict on a scenario and opens that daemon's report at it. "
            "A highlighted row is one where the daemons differ." }
        table.matrix {
            thead {
                tr {
                    th { "scenario" }
                    @for c in columns {
                        th title=(safe(&c.run.daemon)) { a href={ (c.name) ".html" } { (c.name) } }
                    }
                }
            }
            tbody {
                @for (id, name) in &ids {
                    @let cells: Vec<_> = columns.iter().map(|c| c.run.scenarios.iter().find(|s| s.id == *id)).collect();
                    @let classes: Vec<_> = cells.iter().map(|r| r.map(|r| verdict_class(r.verdict, r.skipped.is_some()))).collect();
                    @let differs = classes.windows(2).any(|w| w[0] != w[1]);
                    tr class=[differs.then_some("differs")] {
                        th { (safe(id)) " " code { (safe(name)) } }
                        @for (c, r) in columns.iter().zip(&cells) {
                            @match r {
                                Some(r) => td class={ "cell " (verdict_class(r.verdict, r.skipped.is_some())) } {
                                    a class={ "v " (verdict_class(r.verdict, r.skipped.is_some())) }
                                        href={ (c.name) ".html#" (r.id) } title=(cell_title(r)) {
                                        (super::verdict_label(r.verdict, r.skipped.is_some()))
                                    }
                                },
                                None => td.cell { "not in this report" },
                            }
                        }
                    }
                }
            }
            tfoot {
                tr {
                    th { "verdicts" }
                    @for c in columns { td { (counts(&c.run.counts)) } }
                }
            }
        }
        h2 { "Daemons" }
        dl.meta {
            @for c in columns {
                dt { (c.name) } dd {
                    code { (safe(&c.run.daemon)) } ", run "
                    (crate::verdict::rfc3339::format(c.run.started_at))
                    @if c.run.daemon_death.is_some() { " — " (badge(crate::verdict::Verdict::Fail, false)) " the daemon died" }
                }
            }
        }
    };
    page(
        &format!("streamcheck matrix: {} daemons", columns.len()),
        body,
    )
}

/// A cell's tooltip: the scenario's first finding, or why it was skipped.
fn cell_title(r: &ScenarioResult) -> String {
    if let Some(reason) = &r.skipped {
        return format!("skipped: {}", safe(reason));
    }
    match r.assertions.iter().max_by_key(|a| a.verdict) {
        Some(a) if a.verdict > crate::verdict::Verdict::Pass => {
            format!("{} {}: {}", a.verdict, safe(&a.name), safe(&a.message))
        }
        _ => format!("{} {}", r.verdict, safe(&r.name)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::verdict::{AssertionResult, Strictness, Verdict};

    fn run(verdicts: &[(&str, Verdict)]) -> RunSummary {
        let scenarios = verdicts
            .iter()
            .map(|(id, v)| {
                ScenarioResult::new(*id, format!("s{id}"), "basic", "d")
                    .with_assertions([AssertionResult::new("content", *v, "<b>m</b>")])
                    .judged(Strictness::Lenient)
            })
            .collect();
        RunSummary::new(
            "d",
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            Strictness::Lenient,
            scenarios,
        )
    }

    fn column(file: &str, run: &RunSummary) -> Column {
        let json = crate::report::json::to_value(run).unwrap().to_string();
        Column::parse(Path::new(file), &json).unwrap()
    }

    #[test]
    fn cells_link_to_each_daemons_page_and_differences_stand_out() {
        let columns = [
            column(
                "reports/ref.json",
                &run(&[("1.1", Verdict::Pass), ("4.1", Verdict::Pass)]),
            ),
            column(
                "reports/go.json",
                &run(&[("1.1", Verdict::Pass), ("4.1", Verdict::Fail)]),
            ),
        ];
        let html = render(&columns);
        assert!(html.contains(r##"href="go.html#4.1""##), "{html}");
        assert!(html.contains(r##"href="ref.html#1.1""##));
        assert_eq!(html.matches("<tr class=\"differs\">").count(), 1, "{html}");
        assert!(
            html.contains("FAILED content: &lt;b&gt;m&lt;/b&gt;"),
            "{html}"
        );
    }

    #[test]
    fn a_file_of_another_schema_is_named_with_the_fix() {
        let path = Path::new("old.json");
        let err = Column::parse(path, r#"{"schema_version": 1}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("old.json") && err.contains("schema_version is 1"),
            "{err}"
        );
        assert!(err.contains("--format json"), "{err}");
        let err = Column::parse(path, "<html>").err().unwrap().to_string();
        assert!(err.contains("not JSON"), "{err}");
        let err = Column::load(Path::new("/nonexistent/x.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot read /nonexistent/x.json"), "{err}");
    }
}
