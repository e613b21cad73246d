//! The human report: one line per scenario as it finishes, and for a failure (or a non-strict
//! finding) what was expected against what was received, with the bytes on the wire, so a
//! daemon author sees the defect without rerunning anything. A summary closes it:
//!
//! ```text
//! streamcheck: 24 scenarios
//! 1 cause across 1 failed scenario
//!   characters split across reads become U+FFFD   3.2
//!
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
//! (The causes block leads like this off a terminal; streamed to one, it comes just above the
//! summary line instead.) The summary counts in the verdict words of the scenario lines (OK,
//! INFORMATIONAL, NON-STRICT, FAILED, skipped), as every report format does. Colour (ANSI SGR)
//! is used only when asked for; [`super::build`] asks only for a terminal without `NO_COLOR`.
//!
//! The distinct causes of what failed ([`crate::verdict::causes`]) are known only when the run
//! ends. On a terminal the results stream as they come and the causes block closes the report,
//! just above the summary line: the screen the reader sees when the run is over. Anywhere else
//! (`-o FILE`, a pipe, a CI log) nobody watches the lines arrive, so [`Human::causes_first`]
//! holds them back and the report opens with the causes block, as a daemon author reads it.

use std::io::{self, Write};

use super::Reporter;
use super::text::{assertion_lines, counts, safe, scenarios, timings_line, wire_lines};
use crate::verdict::causes::lines as cause_lines;
use crate::verdict::check::format_ns;
use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult, Verdict};

/// Writes the human report to `W`.
pub struct Human<W: Write> {
    out: W,
    color: bool,
    /// The per-scenario lines, held back until the causes are known (`causes_first`).
    held: Option<Vec<u8>>,
}

const RESET: &str = "\x1b[0m";

impl<W: Write> Human<W> {
    /// A human reporter; `color` turns ANSI colours on.
    pub fn new(out: W, color: bool) -> Self {
        Human {
            out,
            color,
            held: None,
        }
    }

    /// Opens the report with the causes block: the per-scenario lines are written when the run
    /// ends, after it, instead of as they come.
    pub fn causes_first(mut self) -> Self {
        self.held = Some(Vec::new());
        self
    }

    /// Where per-scenario lines go: held back, or straight out.
    fn lines(&mut self) -> &mut dyn Write {
        match &mut self.held {
            Some(held) => held,
            None => &mut self.out,
        }
    }

    /// The causes block, painted, followed by a blank line; nothing when all passed.
    fn causes_block(&self, s: &RunSummary) -> String {
        let mut text = String::new();
        for (i, line) in cause_lines(&s.causes).into_iter().enumerate() {
            let line = safe(&line).into_owned();
            let line = if i == 0 {
                self.paint(Verdict::Fail, &line)
            } else {
                line
            };
            text.push_str(&line);
            text.push('\n');
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text
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
        let mut text = format!("  {label} {id:>4}  {name:<26} {tail}\n");
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
                text.push_str(&format!("      {line}\n"));
            }
        }
        self.lines().write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        let label = self.paint(Verdict::Fail, "DAEMON DIED");
        let mut text = format!("  {label}   {}\n", safe(&death.headline()));
        if let Some(tail) = &death.output_tail {
            text.push_str("      its output ends with:\n");
            for line in tail.lines() {
                text.push_str(&format!("        {}\n", safe(line)));
            }
        }
        self.lines().write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn on_finish(&mut self, s: &RunSummary) -> io::Result<()> {
        let c = &s.counts;
        let strict = if s.strict { " (strict)" } else { "" };
        let causes = self.causes_block(s);
        if let Some(held) = self.held.take() {
            self.out.write_all(causes.as_bytes())?;
            self.out.write_all(&held)?;
            writeln!(self.out)?;
        } else {
            writeln!(self.out)?;
            self.out.write_all(causes.as_bytes())?;
        }
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
