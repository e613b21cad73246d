//! The human report: one line per scenario as it finishes, and for a failure (or a non-strict
//! finding) what was expected against what was received, with the bytes on the wire, so a
//! daemon author sees the defect without rerunning anything. A summary closes it:
//!
//! ```text
//! streamcheck: 24 scenarios
//!   OK             1.1  basic_response             12.1 ms
//!   FAILED         3.2  unicode_emoji              30.4 ms
//!       FAILED content: content differs at byte 12 (expected 40 bytes, received 38): …
//!         expected: …
//!         received: …
//!       wire: 412 bytes received in 3 reads, head 120 bytes
//!         …
//!
//! 24 scenarios in 3.20 s against /run/daemon.sock: 22 OK, 1 INFORMATIONAL, 0 NON-STRICT, 1 FAILED, 0 skipped
//! FAILED: 3.2 unicode_emoji
//! ```
//!
//! The summary counts in the verdict words of the scenario lines (OK, INFORMATIONAL,
//! NON-STRICT, FAILED, skipped), as every report format does. Colour (ANSI SGR) is used only
//! when asked for; [`super::build`] asks only for a terminal without `NO_COLOR`.

use std::io::{self, Write};

use super::Reporter;
use super::text::{assertion_lines, counts, safe, scenarios, timings_line, wire_lines};
use crate::verdict::check::format_ns;
use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult, Verdict};

/// Writes the human report to `W`.
pub struct Human<W: Write> {
    out: W,
    color: bool,
}

const RESET: &str = "\x1b[0m";

impl<W: Write> Human<W> {
    /// A human reporter; `color` turns ANSI colours on.
    pub fn new(out: W, color: bool) -> Self {
        Human { out, color }
    }

    /// The writer back, e.g. to read an in-memory report.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn paint(&self, verdict: Verdict, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let sgr = match verdict {
            Verdict::Pass => "32",          // green
            Verdict::Informational => "36", // cyan
            Verdict::NonStrict => "33",     // yellow
            Verdict::Fail => "1;31",        // bold red
        };
        format!("\x1b[{sgr}m{text}{RESET}")
    }

    fn dim(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[2m{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

impl<W: Write + Send> Reporter for Human<W> {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        writeln!(self.out, "streamcheck: {}", scenarios(total))?;
        self.out.flush()
    }

    fn on_result(&mut self, r: &ScenarioResult) -> io::Result<()> {
        // Pad before painting so escape codes do not upset the alignment.
        let (label, tail) = match &r.skipped {
            Some(reason) => (
                self.dim(&format!("{:<13}", "SKIPPED")),
                self.dim(&safe(reason)),
            ),
            None => (
                self.paint(r.verdict, &format!("{:<13}", r.verdict.label())),
                format_ns(r.elapsed_ns),
            ),
        };
        let (id, name) = (safe(&r.id), safe(&r.name));
        writeln!(self.out, "  {label} {id:>4}  {name:<26} {tail}")?;
        if r.skipped.is_none() && r.verdict != Verdict::Pass {
            let paint = |v: Verdict, s: &str| self.paint(v, s);
            let mut lines = Vec::new();
            if r.verdict >= Verdict::NonStrict && !r.description.is_empty() {
                lines.push(safe(&r.description).into_owned());
            }
            for a in r.assertions_at_least(Verdict::Informational) {
                lines.extend(assertion_lines(a, &paint));
            }
            if r.verdict >= Verdict::NonStrict {
                lines.extend(timings_line(&r.timings).map(|t| format!("timings: {t}")));
                if let Some(w) = &r.wire {
                    lines.extend(wire_lines(w));
                }
            }
            for line in lines {
                writeln!(self.out, "      {line}")?;
            }
        }
        self.out.flush()
    }

    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        let label = self.paint(Verdict::Fail, "DAEMON DIED");
        writeln!(self.out, "  {label}   {}", safe(&death.headline()))?;
        if let Some(tail) = &death.output_tail {
            writeln!(self.out, "      its output ends with:")?;
            for line in tail.lines() {
                writeln!(self.out, "        {}", safe(line))?;
            }
        }
        self.out.flush()
    }

    fn on_finish(&mut self, s: &RunSummary) -> io::Result<()> {
        let c = &s.counts;
        let strict = if s.strict { " (strict)" } else { "" };
        writeln!(self.out)?;
        if let Some(death) = &s.daemon_death {
            let line = format!("DAEMON DIED: {}", death.headline());
            writeln!(self.out, "{}", self.paint(Verdict::Fail, &safe(&line)))?;
        }
        if let Some(signal) = &s.interrupted {
            let line = format!(
                "interrupted by {}: the scenarios that had not finished are skipped",
                safe(signal)
            );
            writeln!(self.out, "{}", self.paint(Verdict::Fail, &line))?;
        }
        writeln!(
            self.out,
            "{} in {} against {}{strict}: {}",
            scenarios(c.total),
            format_ns(s.duration_ns),
            safe(&s.daemon),
            counts(c)
        )?;
        let failed: Vec<String> = s
            .scenarios
            .iter()
            .filter(|r| r.failed())
            .map(|r| format!("{} {}", safe(&r.id), safe(&r.name)))
            .collect();
        if !failed.is_empty() {
            let list = failed.join(", ");
            writeln!(self.out, "FAILED: {}", self.paint(Verdict::Fail, &list))?;
        }
        self.out.flush()
    }
}
