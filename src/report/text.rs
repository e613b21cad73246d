//! Plain-text pieces shared by the human and JUnit reports: timings, assertion details and
//! the wire listing.

use std::borrow::Cow;

use crate::verdict::check::format_ns;
use crate::verdict::{
    AssertionResult, Counts, ScenarioResult, Spread, Timings, Verdict, WireDump, escape_bytes,
};

/// Free text made safe for a terminal and for one line: control characters (C0, DEL, C1) are
/// written as escapes (`\n`, `\t`, `\x1b`, `\u{85}`) so that no text a scenario quotes (a
/// header value, a message) can move the cursor or recolour a terminal; everything else is
/// kept as is.
pub(crate) fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `22 OK, 1 INFORMATIONAL, 0 NON-STRICT, 1 FAILED, 0 skipped`.
pub(crate) fn counts(c: &Counts) -> String {
    format!(
        "{} OK, {} INFORMATIONAL, {} NON-STRICT, {} FAILED, {} skipped",
        c.ok, c.informational, c.non_strict, c.failed, c.skipped
    )
}

/// `1 scenario`, `6 scenarios`.
pub(crate) fn scenarios(n: usize) -> String {
    if n == 1 {
        "1 scenario".into()
    } else {
        format!("{n} scenarios")
    }
}

/// `handoff 120 µs · head 1.2 ms · …`, or `None` when nothing was measured.
pub(crate) fn timings_line(t: &Timings) -> Option<String> {
    let mut parts = Vec::new();
    for (label, value) in [
        ("handoff", t.handoff_ns),
        ("head", t.head_ns),
        ("first event", t.first_event_ns),
        ("total", t.total_ns),
    ] {
        if let Some(ns) = value {
            parts.push(format!("{label} {}", format_ns(ns)));
        }
    }
    for (label, spread) in [("gaps", &t.gaps), ("relay latency", &t.relay_latency)] {
        if let Some(s) = spread {
            parts.push(format!("{label} {}", spread_text(s)));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn spread_text(s: &Spread) -> String {
    format!(
        "p50 {} p90 {} p99 {} max {} (n={})",
        format_ns(s.p50_ns),
        format_ns(s.p90_ns),
        format_ns(s.p99_ns),
        format_ns(s.max_ns),
        s.count
    )
}

/// Lines describing one assertion: `LABEL name: message`, then expected and received.
/// `paint` styles the verdict label (identity for plain text).
pub(crate) fn assertion_lines(
    a: &AssertionResult,
    paint: &dyn Fn(Verdict, &str) -> String,
) -> Vec<String> {
    let label = paint(a.verdict, a.verdict.label());
    let mut lines = vec![format!("{label} {}: {}", safe(&a.name), safe(&a.message))];
    if a.verdict >= Verdict::NonStrict {
        if let Some(e) = &a.expected {
            lines.push(format!("  expected: {}", safe(e)));
        }
        if let Some(r) = &a.received {
            lines.push(format!("  received: {}", safe(r)));
        }
    }
    lines
}

/// Lines of the wire listing: the data sent, then each read with its time since the handoff
/// started, split after each line feed so SSE lines read one per line.
pub(crate) fn wire_lines(w: &WireDump) -> Vec<String> {
    let mut lines = vec![format!(
        "wire: {} bytes received in {} reads{}",
        w.received_bytes,
        w.chunks.len() + w.omitted.map_or(0, |o| o.chunks as usize),
        w.head_len
            .map_or(String::new(), |h| format!(", head {h} bytes")),
    )];
    if let Some(sent) = &w.sent {
        push_chunk(
            &mut lines,
            "sent",
            sent.at_ns,
            &sent.bytes,
            sent.gap,
            sent.omitted(),
        );
    }
    let mut offset = 0usize;
    for (i, c) in w.chunks.iter().enumerate() {
        if let Some(o) = w.omitted.filter(|o| o.after == i) {
            lines.push(format!("  [{} reads, {} bytes omitted]", o.chunks, o.bytes));
            offset += o.bytes as usize;
        }
        let tag = match w.head_len {
            Some(h) if offset + c.len <= h => "head",
            Some(h) if offset < h => "head+body",
            _ => "recv",
        };
        push_chunk(&mut lines, tag, c.at_ns, &c.bytes, c.gap, c.omitted());
        offset += c.len;
    }
    if let Some(o) = w.omitted.filter(|o| o.after >= w.chunks.len()) {
        lines.push(format!("  [{} reads, {} bytes omitted]", o.chunks, o.bytes));
    }
    if let Some(end) = &w.end {
        lines.push(format!("  end: {}", safe(end)));
    }
    lines
}

fn push_chunk(
    lines: &mut Vec<String>,
    tag: &str,
    at_ns: u64,
    bytes: &[u8],
    gap: Option<usize>,
    omitted: usize,
) {
    // Segments of escaped text, each with whether it ends a line; the omission marker stays
    // on the line it interrupts.
    let segments = |part: &[u8]| -> Vec<(String, bool)> {
        part.split_inclusive(|&b| b == b'\n')
            .map(|p| (escape_bytes(p), p.ends_with(b"\n")))
            .collect()
    };
    // A gap past the kept bytes (a dump built by hand) marks the omission at their end.
    let segments = match gap.map(|g| g.min(bytes.len())) {
        Some(g) => {
            let mut s = segments(&bytes[..g]);
            s.push((format!("[{omitted} bytes omitted]"), false));
            s.extend(segments(&bytes[g..]));
            s
        }
        None => segments(bytes),
    };
    let mut pieces: Vec<String> = Vec::new();
    let mut open = false;
    for (text, ends_line) in segments {
        match pieces.last_mut() {
            Some(last) if open => last.push_str(&text),
            _ => pieces.push(text),
        }
        open = !ends_line;
    }
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    let stamp = format!("+{}", format_ns(at_ns));
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            lines.push(format!("  {stamp:>10} {tag:<9} {piece}"));
        } else {
            lines.push(format!("  {:>10} {:<9} {piece}", "", ""));
        }
    }
}

/// The full diagnostic text of a scenario, plain: description, the assertions that did not
/// pass, timings, and the wire listing.
pub(crate) fn diagnostic(r: &ScenarioResult) -> String {
    let plain = |_: Verdict, s: &str| s.to_string();
    let mut lines = vec![safe(&r.description).into_owned()];
    for a in r.assertions_at_least(Verdict::Informational) {
        lines.extend(assertion_lines(a, &plain));
    }
    if let Some(t) = timings_line(&r.timings) {
        lines.push(format!("timings: {t}"));
    }
    if let Some(w) = &r.wire {
        lines.extend(wire_lines(w));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{WireChunk, WireLimits};

    #[test]
    fn wire_listing_marks_head_and_splits_lines() {
        let reads: [(u64, &[u8]); 2] = [
            (
                1_500,
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n",
            ),
            (2_000_000, b"\ndata: \xff\n\n"),
        ];
        let w = WireDump::capture(reads, WireLimits::default())
            .with_head_len(52)
            .with_sent(0, b"{\"prompt\":\"x\"}", WireLimits::default())
            .with_end("closed by the daemon");
        let lines = wire_lines(&w);
        assert_eq!(
            lines[0],
            "wire: 70 bytes received in 2 reads, head 52 bytes"
        );
        assert_eq!(lines[1], "       +0 ns sent      {\"prompt\":\"x\"}");
        assert_eq!(lines[2], "     +1.5 µs head+body HTTP/1.1 200 OK\\r\\n");
        assert!(lines[3].ends_with(" Content-Type: text/event-stream\\r\\n"));
        assert!(lines[5].ends_with(" data: a\\n"));
        assert_eq!(lines[6], "     +2.0 ms recv      \\n");
        assert!(lines[7].ends_with(" data: \\xff\\n"));
        assert_eq!(lines.last().unwrap(), "  end: closed by the daemon");
    }

    #[test]
    fn omitted_reads_and_bytes_are_named() {
        let data = vec![b'x'; 10];
        let reads: Vec<(u64, &[u8])> = (0..5).map(|i| (i, data.as_slice())).collect();
        let limits = WireLimits {
            first_chunks: 1,
            last_chunks: 1,
            chunk_bytes: 4,
            ..WireLimits::default()
        };
        let lines = wire_lines(&WireDump::capture(reads.clone(), limits));
        assert_eq!(lines[0], "wire: 50 bytes received in 5 reads");
        assert!(lines[1].ends_with("xx[6 bytes omitted]xx"), "{}", lines[1]);
        assert_eq!(lines[2], "  [3 reads, 30 bytes omitted]");
        // Reads left out at the very end are named too.
        let limits = WireLimits {
            first_chunks: 2,
            last_chunks: 0,
            chunk_bytes: 64,
            ..WireLimits::default()
        };
        let lines = wire_lines(&WireDump::capture(reads, limits));
        assert_eq!(lines.last().unwrap(), "  [3 reads, 30 bytes omitted]");
    }

    #[test]
    fn a_hand_built_chunk_with_an_impossible_gap_is_listed_not_a_panic() {
        let chunk = WireChunk {
            at_ns: 0,
            len: 2,
            bytes: b"abc".to_vec(),
            gap: Some(9),
        };
        let dump = WireDump {
            chunks: vec![chunk],
            received_bytes: 2,
            ..WireDump::default()
        };
        let lines = wire_lines(&dump);
        assert!(lines[1].ends_with(" abc[0 bytes omitted]"), "{}", lines[1]);
    }

    #[test]
    fn safe_text_cannot_drive_a_terminal() {
        assert!(matches!(
            safe("plain é 🎉 \\x"),
            Cow::Borrowed("plain é 🎉 \\x")
        ));
        assert_eq!(
            safe("a\x1b[31mb\nc\td\u{85}\x7f"),
            "a\\x1b[31mb\\nc\\td\\u{85}\\x7f"
        );
    }

    #[test]
    fn timings_line_lists_what_was_measured() {
        assert_eq!(timings_line(&Timings::default()), None);
        let t = Timings {
            head_ns: Some(1_200_000),
            gaps: Spread::of(&[1_000, 2_000]),
            ..Timings::default()
        };
        assert_eq!(
            timings_line(&t).unwrap(),
            "head 1.2 ms · gaps p50 1.0 µs p90 2.0 µs p99 2.0 µs max 2.0 µs (n=2)"
        );
    }
}
