//! The JSON report: one document written when the run finishes, described by the JSON Schema
//! in `docs/report.schema.json` ([`SCHEMA`]).
//!
//! Stability: `schema_version` changes whenever a field is removed, renamed or changes meaning;
//! a consumer should refuse a version it does not know. Durations are integers in ns (`*_ns`);
//! verdicts are the report labels (`OK`, `INFORMATIONAL`, `NON-STRICT`, `FAILED`); wire bytes
//! are `text` when valid UTF-8 and `hex` otherwise. `causes` (since version 2) lists the distinct
//! causes of what failed, each with its scenarios, most important first; each assertion names
//! its own `cause`. An interrupted run names the signal in
//! `interrupted` (else null) and lists the scenarios it did not finish as skipped.

use std::io::{self, Write};

use serde::Serialize;

use super::Reporter;
use crate::verdict::RunSummary;

/// Version of the report's schema, the `schema_version` field.
pub const SCHEMA_VERSION: u32 = 2;

/// The JSON Schema (draft 2020-12) that every JSON report validates against.
pub const SCHEMA: &str = include_str!("../../docs/report.schema.json");

/// The document: a [`RunSummary`] with its schema version and the tool that wrote it.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    generator: Generator,
    #[serde(flatten)]
    run: &'a RunSummary,
}

#[derive(Serialize)]
struct Generator {
    name: &'static str,
    version: &'static str,
}

/// Writes the JSON report to `W`.
pub struct Json<W: Write> {
    out: W,
}

impl<W: Write> Json<W> {
    /// A JSON reporter.
    pub fn new(out: W) -> Self {
        Json { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The JSON report of `summary` as a value (what [`Json`] writes).
pub fn to_value(summary: &RunSummary) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(document(summary))
}

fn document(run: &RunSummary) -> Document<'_> {
    Document {
        schema_version: SCHEMA_VERSION,
        generator: Generator {
            name: "streamcheck",
            version: env!("CARGO_PKG_VERSION"),
        },
        run,
    }
}

impl<W: Write + Send> Reporter for Json<W> {
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.out, &document(summary))?;
        writeln!(self.out)?;
        self.out.flush()
    }
}
