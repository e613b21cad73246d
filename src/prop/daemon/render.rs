//! Reports in words: the run's summary, and a failure with its minimal script, the bytes the
//! daemon sent, the invariants that broke, and the command that replays it.

use std::fmt::Write as _;

use crate::pattern::Ending as MockEnding;
use crate::scenario::Target;
use crate::verdict::{Strictness, escape_bytes};

use super::batch::CaseResult;
use super::build::{Built, TAIL_EVENTS, TAIL_GAP};
use super::case::Case;
use super::runner::{Failure, Origin, PropReport};

/// Longest rendering of the daemon's bytes in a report.
const RAW_SHOWN: usize = 16 * 1024;

/// `'…'` quoting for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command that runs exactly `case` against the same daemon.
pub fn replay_command(target: &Target, case: &Case, strictness: Strictness) -> String {
    let mut cmd = String::from("streamcheck prop ");
    match target {
        Target::Command(c) => {
            let _ = write!(cmd, "--daemon-cmd {}", shell_quote(&c.command));
            if !c.mock.tls {
                cmd.push_str(" --mock-plain");
            }
        }
        Target::Running { socket, backend } => {
            let _ = write!(
                cmd,
                "--socket {} --backend {}",
                shell_quote(&socket.to_string_lossy()),
                shell_quote(backend)
            );
        }
    }
    if strictness == Strictness::Strict {
        cmd.push_str(" --strict");
    }
    let _ = write!(cmd, " --replay {}", shell_quote(&case.to_json()));
    cmd
}

/// The script the mock played: status, each write with its delay and bytes, the ending.
pub fn script(built: &Built) -> String {
    let plan = &built.plan;
    let ending = match plan.ending {
        MockEnding::Close => "a clean end of body",
        MockEnding::Reset => "a reset",
        MockEnding::Stall => "silence",
    };
    let mut out = format!(
        "status {}, {} write(s), then {ending}\n",
        plan.status,
        built.generated_writes()
    );
    let mut n = 0;
    for (i, w) in plan.writes.iter().enumerate() {
        if let Some(start) = built.tail_start {
            if i == start {
                let _ = writeln!(
                    out,
                    "  (cancel tail: {TAIL_EVENTS} content events of \".\", {} ms apart)",
                    TAIL_GAP.as_millis()
                );
            }
            if (start..start + TAIL_EVENTS).contains(&i) {
                continue;
            }
        }
        n += 1;
        let _ = writeln!(
            out,
            "  write {n}: after {} ms, {} byte(s): \"{}\"",
            w.delay_before.as_millis(),
            w.bytes.len(),
            escape_bytes(&w.bytes)
        );
    }
    if built.tail_start == Some(plan.writes.len()) {
        let _ = writeln!(
            out,
            "  (cancel tail: {TAIL_EVENTS} content events of \".\", {} ms apart)",
            TAIL_GAP.as_millis()
        );
    }
    out
}

/// The daemon's bytes: text as text, control characters escaped, invalid UTF-8 as `\xNN`.
pub fn received(result: &CaseResult) -> String {
    let raw = &result.observed.raw;
    let shown = &raw[..raw.len().min(RAW_SHOWN)];
    let mut out = format!("\"{}\"", escape_bytes(shown));
    if raw.len() > shown.len() {
        let _ = write!(out, " … ({} more bytes)", raw.len() - shown.len());
    }
    let t = &result.observed.transcript;
    let _ = write!(
        out,
        "\n  ({} bytes; the stream ended: {})",
        t.received_bytes,
        end_words(&t.end.kind)
    );
    out
}

fn end_words(kind: &crate::transcript::EndKind) -> String {
    use crate::transcript::EndKind;
    match kind {
        EndKind::PeerClosed => "closed by the daemon".into(),
        EndKind::ClosedByClient => "closed by the client".into(),
        EndKind::Timeout => "deadline passed".into(),
        EndKind::Error(e) => format!("error: {e}"),
    }
}

/// The invariants that broke, one paragraph each.
pub fn broken(result: &CaseResult) -> String {
    let mut out = String::new();
    for a in result.broken() {
        let _ = writeln!(out, "  {} [{}]: {}", a.name, a.verdict, a.message);
        if let Some(e) = &a.expected {
            let _ = writeln!(out, "    expected: {e}");
        }
        if let Some(r) = &a.received {
            let _ = writeln!(out, "    received: {r}");
        }
    }
    out
}

/// The full failure report.
pub fn failure(f: &Failure, target: &Target, strictness: Strictness) -> String {
    let m = &f.minimal;
    let mut out = String::new();
    let origin = match &f.origin {
        Origin::Persisted { line } => format!("persisted case (regression file line {line})"),
        Origin::Generated { index } => format!("generated case {index}"),
        Origin::Replay => "the replayed case".to_owned(),
    };
    let _ = writeln!(out, "FAILED: {origin}");
    if f.unresponsive {
        let _ = writeln!(
            out,
            "the daemon is unresponsive: it took the handoff, then wrote not a byte within the \
             deadline (--timeout) and never called its upstream; the case was not shrunk, \
             replayed or persisted (it would only wait out more deadlines)"
        );
    }
    if let Some(s) = &f.shrink {
        let _ = writeln!(
            out,
            "shrunk from {} to {} write(s) in {} step(s), {:.1} s{}",
            f.original_writes,
            m.built.generated_writes(),
            s.steps,
            s.elapsed.as_secs_f64(),
            if s.complete {
                ""
            } else {
                " (time budget reached: --max-shrink-time)"
            }
        );
    }
    if !f.unresponsive {
        let _ = writeln!(
            out,
            "reproduced {} of {} replays",
            f.reproduced.0, f.reproduced.1
        );
    }
    let _ = writeln!(out, "\nbroken invariants:\n{}", broken(m));
    let _ = writeln!(out, "minimal script: {}", script(&m.built));
    let _ = writeln!(
        out,
        "client: {}\nexpected content: \"{}\"\n",
        client_words(&m.case),
        escape_bytes(&m.built.expected.content)
    );
    let _ = writeln!(out, "the daemon sent:\n  {}\n", received(m));
    let _ = writeln!(
        out,
        "replay:\n  {}",
        replay_command(target, &m.case, strictness)
    );
    if let Some(path) = &f.persisted {
        let _ = writeln!(
            out,
            "\nthe case was appended to {}: commit it, and every later run replays it first",
            path.display()
        );
    }
    out
}

fn client_words(case: &Case) -> String {
    use super::case::Client;
    match case.client {
        Client::Read => "reads everything".into(),
        Client::AbortAfterBytes { bytes } => format!("closes after {bytes} bytes"),
        Client::AbortAfterEvents { events } => {
            format!("closes after {} content event(s)", events.max(1))
        }
        Client::Pause { after_bytes, ms } => {
            format!("stops reading for {ms} ms after {after_bytes} bytes")
        }
    }
}

/// The one-paragraph summary of a run; a daemon's death comes first.
pub fn summary(report: &PropReport) -> String {
    let mut out = String::new();
    if let Some(d) = &report.daemon_death {
        let _ = writeln!(out, "prop: DAEMON DIED: {}", d.message());
        if let Some((origin, case, replay)) = &report.death_case {
            let _ = writeln!(
                out,
                "the first case that failed with it, {origin} (it or a case running beside \
                 it killed the daemon; --jobs 1 tells which); nothing was shrunk against the \
                 dead daemon:\n  case: {}\nreplay:\n  {replay}",
                case.to_json()
            );
        }
    }
    let interrupted = report.interrupted.map(|s| format!("interrupted by {s}"));
    let verdict = if let Some(words) = &interrupted {
        words.as_str()
    } else if report.failure.is_some() || report.daemon_death.is_some() {
        "FAILED"
    } else {
        "OK"
    };
    if report.replayed {
        let _ = write!(
            out,
            "prop: {verdict}: the replayed case, against `{}`, in {:.1} s",
            report.daemon,
            report.elapsed.as_secs_f64()
        );
    } else {
        let _ = write!(
            out,
            "prop: {verdict}: {} case(s) run against `{}` ({} persisted, {} generated with \
             seed {}) in {:.1} s",
            report.persisted + report.generated,
            report.daemon,
            report.persisted,
            report.generated,
            report.seed,
            report.elapsed.as_secs_f64()
        );
    }
    if report.nonstrict > 0 {
        let _ = write!(
            out,
            "\n{} case(s) with non-strict findings (failures under --strict)",
            report.nonstrict
        );
        if let Some(first) = &report.first_nonstrict {
            let _ = write!(
                out,
                "; the first:\n{}  case: {}",
                broken(first),
                first.case.to_json()
            );
        }
    }
    if report.daemon_death.is_some()
        && let Some((n, case)) = &report.unreachable_from
    {
        let _ = write!(
            out,
            "\nthe first case that could not reach it (after {n} case(s) had run; it or a case \
             running beside it stopped the daemon, --jobs 1 tells which):\n  {}",
            case.to_json()
        );
    }
    out
}
