//! TAP: the version line and the plan when the run starts, one test line per scenario, and the
//! distinct causes of what failed (`# ` comments, see [`crate::verdict::causes`]).
//!
//! The causes are known only when the run ends. Streamed ([`Tap::new`], what a terminal gets),
//! the test lines come as scenarios finish and the causes block closes the stream. With
//! [`Tap::causes_first`] (what `prove`, a pipe or `-o FILE` gets) the test lines are held until
//! the run ends and the causes lead, right after the plan: the plan still comes first and a
//! comment may stand anywhere, which every TAP version and `prove` accept.
//!
//! - `ok` for OK, INFORMATIONAL and (unless `--strict`) NON-STRICT; `not ok` for FAILED.
//! - FAILED and NON-STRICT scenarios carry a YAML diagnostics block (`---` … `...`) with the
//!   assertions that did not pass, expected and received, timings and the wire bytes.
//! - INFORMATIONAL facts follow their `ok` line as `# ` comments.
//! - A skipped scenario is `ok N - … # SKIP reason` (also the scenarios an interrupted run did
//!   not finish).
//! - An interrupted run ends with `Bail out! interrupted by SIGNAL`: the run stopped early.
//!
//! `TAP version 13` is the default because the `prove` shipped with Debian 12 (Test::Harness
//! 3.44) rejects version 14; the output is otherwise the same for 14. The YAML uses only what
//! Test::Harness's YAMLish reader understands: block mappings and sequences, and double-quoted
//! scalars with `\\`, `\"`, `\n`, `\r`, `\t` and `\xHH` escapes (also valid YAML 1.2).

use std::fmt::Write as _;
use std::io::{self, Write};

use super::text::{counts, safe, scenarios};
use super::{Reporter, TapVersion};
use crate::verdict::causes::lines as cause_lines;
use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult, Spread, Verdict, WireChunk};

/// Writes TAP to `W`.
pub struct Tap<W: Write> {
    out: W,
    version: TapVersion,
    number: usize,
    /// Test lines and daemon-death comments held until the causes are known (`causes_first`).
    held: Option<Vec<u8>>,
}

impl<W: Write> Tap<W> {
    /// A TAP reporter declaring `version`.
    pub fn new(out: W, version: TapVersion) -> Self {
        Tap {
            out,
            version,
            number: 0,
            held: None,
        }
    }

    /// Leads with the causes: test lines are written when the run ends, after them.
    pub fn causes_first(mut self) -> Self {
        self.held = Some(Vec::new());
        self
    }

    /// Writes `text` now, or holds it until the causes are known.
    fn emit(&mut self, text: &str) -> io::Result<()> {
        match &mut self.held {
            Some(held) => {
                held.extend_from_slice(text.as_bytes());
                Ok(())
            }
            None => {
                self.out.write_all(text.as_bytes())?;
                self.out.flush()
            }
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Reporter for Tap<W> {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        let version = match self.version {
            TapVersion::V13 => 13,
            TapVersion::V14 => 14,
        };
        writeln!(self.out, "TAP version {version}")?;
        writeln!(self.out, "1..{total}")?;
        self.out.flush()
    }

    fn on_result(&mut self, r: &ScenarioResult) -> io::Result<()> {
        self.number += 1;
        let status = if r.failed() { "not ok" } else { "ok" };
        let description = escape_description(&format!("{} {}", r.id, r.name));
        let mut text = format!("{status} {} - {description}", self.number);
        if let Some(reason) = &r.skipped {
            let _ = write!(text, " # SKIP {}", one_line(reason));
        }
        text.push('\n');
        if r.skipped.is_none() {
            if r.verdict >= Verdict::NonStrict {
                text.push_str(&yaml_block(r));
            } else {
                for a in r.assertions_at_least(Verdict::Informational) {
                    let _ = writeln!(
                        text,
                        "# {} {}: {} {}: {}",
                        r.id,
                        r.name,
                        a.verdict.label(),
                        a.name,
                        one_line(&a.message)
                    );
                }
            }
        }
        self.emit(&text)
    }

    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        let mut text = format!("# DAEMON DIED: {}\n", one_line(&death.headline()));
        if let Some(tail) = &death.output_tail {
            text.push_str("# its output ends with:\n");
            for line in tail.lines() {
                let _ = writeln!(text, "#   {}", one_line(line));
            }
        }
        self.emit(&text)
    }

    fn on_finish(&mut self, s: &RunSummary) -> io::Result<()> {
        let mut causes = String::new();
        for line in cause_lines(&s.causes) {
            let _ = writeln!(causes, "# {}", one_line(&line));
        }
        match self.held.take() {
            Some(held) => {
                self.out.write_all(causes.as_bytes())?;
                self.out.write_all(&held)?;
            }
            None => self.out.write_all(causes.as_bytes())?,
        }
        let c = &s.counts;
        writeln!(
            self.out,
            "# {} against {}{}: {}",
            scenarios(c.total),
            one_line(&s.daemon),
            if s.strict { " (strict)" } else { "" },
            counts(c)
        )?;
        if let Some(signal) = &s.interrupted {
            writeln!(self.out, "Bail out! interrupted by {}", one_line(signal))?;
        }
        self.out.flush()
    }
}

/// A test description: `#` would start a directive and `\` escapes, so both are escaped
/// (TAP 14 §"Escaping"; TAP 13 consumers read `\#` the same way); control characters are
/// escaped by [`one_line`] first.
fn escape_description(s: &str) -> String {
    one_line(s).replace('\\', "\\\\").replace('#', "\\#")
}

/// Free text on one line, with control characters escaped.
fn one_line(s: &str) -> String {
    safe(s).into_owned()
}

/// A YAML double-quoted scalar that both YAML 1.2 and Test::Harness's YAMLish reader decode
/// to `s`. Characters from U+00A0 up stay raw: YAML 1.2 allows them in double-quoted scalars,
/// and YAMLish knows no `\u` escape.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0, DEL and C1 controls: `\xHH` is the code point in YAML and the byte in
            // YAMLish, the same for these.
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn yaml_block(r: &ScenarioResult) -> String {
    let mut y = String::from("  ---\n");
    let _ = writeln!(y, "  id: {}", quote(&r.id));
    let _ = writeln!(y, "  name: {}", quote(&r.name));
    let _ = writeln!(y, "  category: {}", quote(&r.category));
    let _ = writeln!(y, "  description: {}", quote(&r.description));
    let _ = writeln!(y, "  verdict: {}", quote(r.verdict.label()));
    let _ = writeln!(y, "  elapsed_ns: {}", r.elapsed_ns);
    let findings: Vec<_> = r.assertions_at_least(Verdict::Informational).collect();
    if !findings.is_empty() {
        y.push_str("  assertions:\n");
        for a in findings {
            let _ = writeln!(y, "    - name: {}", quote(&a.name));
            let _ = writeln!(y, "      verdict: {}", quote(a.verdict.label()));
            let _ = writeln!(y, "      message: {}", quote(&a.message));
            if let Some(e) = &a.expected {
                let _ = writeln!(y, "      expected: {}", quote(e));
            }
            if let Some(rcv) = &a.received {
                let _ = writeln!(y, "      received: {}", quote(rcv));
            }
        }
    }
    timings_yaml(&mut y, r);
    if let Some(w) = &r.wire {
        y.push_str("  wire:\n");
        let _ = writeln!(y, "    received_bytes: {}", w.received_bytes);
        if let Some(h) = w.head_len {
            let _ = writeln!(y, "    head_len: {h}");
        }
        if let Some(sent) = &w.sent {
            y.push_str("    sent:\n");
            chunk_yaml(&mut y, "      ", sent);
        }
        if !w.chunks.is_empty() {
            y.push_str("    chunks:\n");
            for c in &w.chunks {
                chunk_yaml(&mut y, "      - ", c);
            }
        }
        if let Some(o) = &w.omitted {
            let _ = writeln!(
                y,
                "    omitted:\n      after: {}\n      chunks: {}\n      bytes: {}",
                o.after, o.chunks, o.bytes
            );
        }
        if let Some(end) = &w.end {
            let _ = writeln!(y, "    end: {}", quote(end));
        }
    }
    y.push_str("  ...\n");
    y
}

fn timings_yaml(y: &mut String, r: &ScenarioResult) {
    let t = &r.timings;
    let mut body = String::new();
    for (key, value) in [
        ("handoff_ns", t.handoff_ns),
        ("head_ns", t.head_ns),
        ("first_event_ns", t.first_event_ns),
        ("total_ns", t.total_ns),
    ] {
        if let Some(v) = value {
            let _ = writeln!(body, "    {key}: {v}");
        }
    }
    for (key, spread) in [("gaps", &t.gaps), ("relay_latency", &t.relay_latency)] {
        if let Some(Spread {
            count,
            min_ns,
            p50_ns,
            p90_ns,
            p99_ns,
            max_ns,
            mean_ns,
        }) = spread
        {
            let _ = writeln!(
                body,
                "    {key}:\n      count: {count}\n      min_ns: {min_ns}\n      p50_ns: {p50_ns}\n      p90_ns: {p90_ns}\n      p99_ns: {p99_ns}\n      max_ns: {max_ns}\n      mean_ns: {mean_ns}"
            );
        }
    }
    if !body.is_empty() {
        y.push_str("  timings:\n");
        y.push_str(&body);
    }
}

/// One read, as in the JSON report: `text` when UTF-8, `hex` otherwise. `first` prefixes the
/// first key (`"      - "` in a sequence); the others align under it.
fn chunk_yaml(y: &mut String, first: &str, c: &WireChunk) {
    let indent = " ".repeat(first.len());
    let _ = writeln!(y, "{first}at_ns: {}", c.at_ns);
    let _ = writeln!(y, "{indent}len: {}", c.len);
    match std::str::from_utf8(&c.bytes) {
        Ok(text) => {
            let _ = writeln!(y, "{indent}text: {}", quote(text));
        }
        Err(_) => {
            let _ = writeln!(y, "{indent}hex: \"{}\"", crate::hex::encode(&c.bytes));
        }
    }
    if let Some(g) = c.gap {
        let _ = writeln!(y, "{indent}gap: {g}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_yamlish_and_yaml_need() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(quote("\0\x1b\x7f\u{85}"), r#""\x00\x1b\x7f\x85""#);
        assert_eq!(quote("\u{feff}é🎉"), "\"\u{feff}é🎉\"");
    }

    #[test]
    fn descriptions_cannot_start_a_directive() {
        assert_eq!(
            escape_description("1.1 a#b # SKIP x\\"),
            "1.1 a\\#b \\# SKIP x\\\\"
        );
        assert_eq!(escape_description("a\nb"), "a\\\\nb");
    }
}
