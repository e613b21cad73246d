//! The run report (`run --format html`): the causes the run failed for, the counts, the
//! daemon, and one row per scenario, coloured by verdict, that opens (`<details>`, anchored by
//! the scenario's id: `report.html#4.1`) to what it checks, the assertions with expected
//! against received (the human report's lines), the timings, the stream's timeline and, for a
//! scenario that did not pass, the wire listing.
//!
//! Size: a wire listing is already a window of each end of the stream ([`WireLimits`]); here it
//! is cut again to [`WIRE_KEEP_BYTES`] of text from each end, so a 47-scenario report of a
//! daemon that floods every stream stays near a megabyte (the timeline keeps a window too).
//!
//! [`WireLimits`]: crate::verdict::WireLimits

use std::io::{self, Write};

use maud::{Markup, html};

use super::{badge, page, timeline, verdict_class};
use crate::report::Reporter;
use crate::report::text::{assertion_lines, counts, safe, scenarios, timings_line, wire_lines};
use crate::verdict::causes::headline;
use crate::verdict::check::format_ns;
use crate::verdict::rfc3339;
use crate::verdict::{RunSummary, ScenarioResult, Verdict};

/// Text kept from each end of a scenario's wire listing.
pub const WIRE_KEEP_BYTES: usize = 6 << 10;

/// Writes the HTML report to `W` when the run finishes.
pub struct Html<W: Write> {
    out: W,
}

impl<W: Write> Html<W> {
    /// An HTML reporter.
    pub fn new(out: W) -> Self {
        Html { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Reporter for Html<W> {
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        self.out.write_all(render(summary).as_bytes())?;
        self.out.flush()
    }
}

/// The whole page for `s`.
pub fn render(s: &RunSummary) -> String {
    let title = format!("streamcheck: {}", safe(&s.daemon));
    let body = html! {
        h1 { "streamcheck report" }
        dl.meta {
            dt { "daemon" } dd { code { (safe(&s.daemon)) } }
            dt { "run" } dd {
                (rfc3339::format(s.started_at)) ", " (scenarios(s.counts.total)) " in "
                (format_ns(s.duration_ns)) @if s.strict { " (--strict)" }
            }
            dt { "verdicts" } dd { (counts(&s.counts)) }
        }
        @if let Some(death) = &s.daemon_death {
            div.banner {
                strong { "DAEMON DIED: " } (safe(&death.headline()))
                @if let Some(tail) = &death.output_tail {
                    pre { (tail.lines().map(safe).collect::<Vec<_>>().join("\n")) }
                }
            }
        }
        @if let Some(signal) = &s.interrupted {
            div.banner {
                "Interrupted by " (safe(signal)) ": the scenarios that had not finished are skipped."
            }
        }
        (causes(s))
        h2 { "Scenarios" }
        (legend())
        @for r in &s.scenarios { (scenario(r)) }
    };
    page(&title, body)
}

/// The distinct causes of what failed, each with links to its scenarios.
fn causes(s: &RunSummary) -> Markup {
    html! {
        @if let Some(head) = headline(&s.causes) {
            h2 { "Causes: " (head) }
            ul.causes {
                @for g in &s.causes {
                    li class=(verdict_class(g.verdict, false)) {
                        (badge(g.verdict, false)) " " (safe(&g.text)) " — "
                        @for (i, id) in g.scenarios.iter().enumerate() {
                            @if i > 0 { " " }
                            a href={ "#" (id) } { (id) }
                        }
                    }
                }
            }
        } @else {
            h2 { "Causes: none, every scenario that ran passed" }
        }
    }
}

/// What the timeline's marks mean.
fn legend() -> Markup {
    let items = [
        ("#0072B2", "upstream write"),
        ("#E69F00", "content event"),
        ("#7f7f7f", "event without content"),
        ("#009E73", "[DONE]"),
        ("#D55E00", "error event"),
        ("#999", "write → receipt (slant = relay latency)"),
    ];
    html! {
        div.legend {
            span { "Timeline:" }
            @for (colour, what) in items {
                span {
                    svg width="14" height="12" { rect x="5" y="0" width="3" height="12" fill=(colour) {} }
                    " " (what)
                }
            }
            span { "dashed line: the close" }
        }
    }
}

/// One scenario: its row, and what it opens to.
fn scenario(r: &ScenarioResult) -> Markup {
    let skipped = r.skipped.is_some();
    let plain = |_: Verdict, s: &str| s.to_string();
    let assertions: Vec<String> = r
        .assertions
        .iter()
        .flat_map(|a| assertion_lines(a, &plain))
        .collect();
    html! {
        details class={ "scenario " (verdict_class(r.verdict, skipped)) } id=(r.id) {
            summary {
                (badge(r.verdict, skipped))
                span.id { (safe(&r.id)) }
                span.name { (safe(&r.name)) }
                span.t {
                    @if let Some(reason) = &r.skipped { (safe(reason)) } @else { (format_ns(r.elapsed_ns)) }
                }
            }
            div {
                p { strong { "Checks: " } (safe(&r.description)) " (category " (safe(&r.category)) ")" }
                @if !assertions.is_empty() { pre.assertions { (assertions.join("\n")) } }
                @if let Some(t) = timings_line(&r.timings) { p.timings { "Timings: " (t) } }
                @if let Some(t) = &r.timeline { (timeline::svg(t)) }
                @if let Some(w) = &r.wire { pre.wire { (elide(&wire_lines(w), WIRE_KEEP_BYTES)) } }
            }
        }
    }
}

/// `lines` joined, cut to whole lines within `keep` bytes from each end, with what was left
/// out named where it was.
fn elide(lines: &[String], keep: usize) -> String {
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    if total <= 2 * keep {
        return lines.join("\n");
    }
    let fit = |lines: &mut dyn Iterator<Item = &String>| {
        let mut bytes = 0;
        lines
            .take_while(|l| {
                bytes += l.len() + 1;
                bytes <= keep
            })
            .count()
    };
    let head = fit(&mut lines.iter()).max(1);
    let tail = fit(&mut lines.iter().rev()).min(lines.len() - head);
    let omitted = &lines[head..lines.len() - tail];
    let bytes: usize = omitted.iter().map(|l| l.len() + 1).sum();
    let mut out = lines[..head].join("\n");
    out.push_str(&format!(
        "\n  [{} lines, {bytes} bytes of this listing omitted]\n",
        omitted.len()
    ));
    out.push_str(&lines[lines.len() - tail..].join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::verdict::timeline::{Link, Mark, MarkKind, Timeline, Window};
    use crate::verdict::{AssertionResult, Strictness, WireDump, WireLimits};

    fn failed(id: &str, received: &str) -> ScenarioResult {
        ScenarioResult::new(id, "content_x", "basic", "checks the content")
            .with_assertions([AssertionResult::new("content", Verdict::Fail, "differs")
                .with_expected("hello")
                .with_received(received)])
            .judged(Strictness::Lenient)
    }

    fn summary(scenarios: Vec<ScenarioResult>) -> RunSummary {
        RunSummary::new(
            "ref-daemon",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Duration::from_secs(2),
            Strictness::Lenient,
            scenarios,
        )
    }

    #[test]
    fn one_anchored_row_per_scenario_with_its_verdict() {
        let ok = ScenarioResult::new("1.1", "basic_response", "basic", "a stream")
            .with_assertions([AssertionResult::pass("status", "200")])
            .judged(Strictness::Lenient);
        let skipped =
            ScenarioResult::skipped("8.3", "unreachable", "errors", "d", "needs {socket}");
        let html = render(&summary(vec![ok, failed("4.1", "hallo"), skipped]));
        assert!(
            html.contains(r#"<details class="scenario ok" id="1.1">"#),
            "{html}"
        );
        assert!(html.contains(r#"<details class="scenario failed" id="4.1">"#));
        assert!(html.contains(r#"<details class="scenario skipped" id="8.3">"#));
        assert_eq!(html.matches("<details").count(), 3);
        // The human report's lines, and the cause linking to its scenario.
        assert!(html.contains("FAILED content: differs\n  expected: hello\n  received: hallo"));
        assert!(html.contains(r##"<a href="#4.1">4.1</a>"##), "{html}");
        assert!(html.contains("1 OK, 0 INFORMATIONAL, 0 NON-STRICT, 1 FAILED, 1 skipped"));
        assert!(html.contains("2023-11-14T22:13:20.000Z"));
    }

    #[test]
    fn a_dead_daemon_and_an_interrupted_run_lead_the_page() {
        let mut s = summary(vec![failed("1.1", "x")]).interrupted_by("SIGTERM");
        s.daemon_death = Some(crate::verdict::DaemonDeath {
            pid: 42,
            how: "was killed by SIGSEGV".into(),
            during: None,
            output_tail: Some("panic: <nil> map\n\x1b[31mred".into()),
        });
        let html = render(&s);
        let banner = html.find("DAEMON DIED: ").expect("a banner");
        assert!(
            banner < html.find("<details").unwrap(),
            "above the scenarios"
        );
        assert!(
            html.contains("the daemon (PID 42) was killed by SIGSEGV"),
            "{html}"
        );
        assert!(
            html.contains("panic: &lt;nil&gt; map\n\\x1b[31mred"),
            "{html}"
        );
        assert!(html.contains("Interrupted by SIGTERM"));
    }

    #[test]
    fn hostile_daemon_bytes_come_out_as_text() {
        let hostile = "<script>alert(1)</script>\"'&";
        let mut r = failed("2.1", hostile);
        r.wire = Some(WireDump::capture(
            [(0, hostile.as_bytes())],
            WireLimits::default(),
        ));
        let mut s = summary(vec![r]);
        s.daemon = "<img src=x onerror=alert(1)>".into();
        let html = render(&s);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"),
            "{html}"
        );
        // Exactly one script element: the report's own.
        assert_eq!(html.matches("<script").count(), 1);
    }

    /// A stream of 10,000 events and 10,000 reads of 4 KiB, in each of 47 failed scenarios:
    /// what a daemon that floods every stream gives.
    fn flooded(id: &str) -> ScenarioResult {
        let data = vec![b'x'; 4096];
        let reads: Vec<(u64, &[u8])> = (0..10_000).map(|i| (i, data.as_slice())).collect();
        let marks = |kind| {
            (0..10_000u64)
                .map(|i| Mark {
                    at_ns: i * 1_000_003,
                    kind,
                    bytes: 4096,
                })
                .collect()
        };
        let links = (0..10_000u64)
            .map(|i| Link {
                written_ns: i * 1_000_003,
                received_ns: i * 1_000_003 + 123_457,
            })
            .collect();
        let mut r = failed(id, "x");
        r.wire = Some(WireDump::capture(reads, WireLimits::default()));
        r.with_timeline(Timeline {
            handoff_ns: Some(100_000),
            head_ns: Some(1_234_567),
            writes: Window::of(marks(MarkKind::Write), Timeline::KEEP),
            receipts: Window::of(marks(MarkKind::Content), Timeline::KEEP),
            links: Window::of(links, Timeline::KEEP),
            done_ns: None,
            end_ns: 10_000_000_000,
            end: "closed by streamcheck after 40960000 bytes".into(),
        })
    }

    #[test]
    fn a_report_of_47_flooded_streams_stays_under_two_megabytes() {
        let scenarios: Vec<ScenarioResult> = (0..47).map(|i| flooded(&format!("9.{i}"))).collect();
        let html = render(&summary(scenarios));
        assert!(html.len() < 2 << 20, "{} bytes", html.len());
        assert_eq!(html.matches(r#"<svg class="timeline""#).count(), 47);
        assert_eq!(html.matches("bytes of this listing omitted").count(), 47);
        assert_eq!(html.matches("not drawn").count(), 3 * 47);
    }

    #[test]
    fn elision_keeps_both_ends_and_names_the_cut() {
        let lines: Vec<String> = (0..100).map(|i| format!("{i:>9}")).collect();
        let text = elide(&lines, 50);
        assert!(text.starts_with("        0\n        1\n        2\n        3\n        4\n  [90"));
        assert!(
            text.contains("[90 lines, 900 bytes of this listing omitted]"),
            "{text}"
        );
        assert!(text.ends_with("       99"));
        assert_eq!(elide(&lines[..3], 50), lines[..3].join("\n"));
    }
}
