//! A stream's [`Timeline`] as an inline SVG: two lanes on one time axis, the upstream's
//! writes above and the client's events below, each relay-latency pair joined by a line from
//! the write to the receipt (its slant is the relay latency), with the handoff, the head,
//! `[DONE]` and the close marked.

use maud::{Markup, html};

use crate::report::text::safe;
use crate::verdict::check::format_ns;
use crate::verdict::timeline::{Link, Mark, MarkKind, Timeline};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 112.0;
const RIGHT: f64 = 16.0;
const UPSTREAM_Y: f64 = 34.0;
const CLIENT_Y: f64 = 94.0;
const AXIS_Y: f64 = 124.0;
const HEIGHT: f64 = 144.0;
const TICK: f64 = 9.0;

/// Colour of each kind of mark (Okabe–Ito).
fn colour(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Write => "#0072B2",
        MarkKind::Content => "#E69F00",
        MarkKind::Control => "#7f7f7f",
        MarkKind::Error => "#D55E00",
        MarkKind::Done => "#009E73",
        MarkKind::Other => "#CC79A7",
    }
}

fn what(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Write => "upstream write",
        MarkKind::Content => "content event",
        MarkKind::Control => "event without content",
        MarkKind::Error => "error event",
        MarkKind::Done => "[DONE]",
        MarkKind::Other => "event of no known shape",
    }
}

/// Maps ns since the origin to x.
struct Scale {
    span_ns: f64,
}

impl Scale {
    fn x(&self, ns: u64) -> String {
        let x = LEFT + (ns as f64 / self.span_ns) * (WIDTH - LEFT - RIGHT);
        format!("{x:.1}")
    }
}

/// Round steps (1, 2, 5 × 10^k ns) giving at most 8 ticks over `span`.
fn tick_step(span: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step.saturating_mul(m);
            if span / s <= 8 {
                return s;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The SVG of `t`.
pub fn svg(t: &Timeline) -> Markup {
    let span = t.span_ns().max(1);
    let scale = Scale {
        span_ns: span as f64,
    };
    let step = tick_step(span);
    let ticks = (0..=span / step).map(|i| i * step);
    let label = format!(
        "Timeline: {} upstream writes, {} client events over {}",
        t.writes.items.len() + t.writes.omitted,
        t.receipts.items.len() + t.receipts.omitted,
        format_ns(span)
    );
    html! {
        svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT) {
            title { (label) }
            text x="4" y=(UPSTREAM_Y + 4.0) { "upstream writes" }
            text x="4" y=(CLIENT_Y + 4.0) { "client receipts" }
            @for y in [UPSTREAM_Y, CLIENT_Y] {
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) stroke="#bbb" {}
            }
            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(AXIS_Y) y2=(AXIS_Y) stroke="#333" {}
            @for ns in ticks {
                line x1=(scale.x(ns)) x2=(scale.x(ns)) y1=(AXIS_Y) y2=(AXIS_Y + 4.0) stroke="#333" {}
                text x=(scale.x(ns)) y=(AXIS_Y + 15.0) text-anchor=(anchor(&scale, ns)) { (format_ns(ns)) }
            }
            @for link in &t.links.items { (link_line(&scale, link)) }
            @for m in &t.writes.items { (mark(&scale, m, UPSTREAM_Y)) }
            @for m in &t.receipts.items { (mark(&scale, m, CLIENT_Y)) }
            @if let Some(ns) = t.handoff_ns { (event(&scale, ns, "handoff", "#333", 0)) }
            @if let Some(ns) = t.head_ns { (event(&scale, ns, "head", "#333", 1)) }
            @if let Some(ns) = t.done_ns { (event(&scale, ns, "[DONE]", colour(MarkKind::Done), 2)) }
            (close(&scale, t))
        }
        @let omitted = [("upstream writes", t.writes.omitted), ("client events", t.receipts.omitted),
            ("relay pairs", t.links.omitted)];
        @for (what, n) in omitted {
            @if n > 0 {
                p.note { "Timeline: " (n) " " (what) " from the middle of the stream are not drawn (the first and last "
                    (Timeline::KEEP) " are)." }
            }
        }
    }
}

/// A tick on a lane, with what it is in its tooltip.
fn mark(scale: &Scale, m: &Mark, y: f64) -> Markup {
    let (height, width) = match m.kind {
        MarkKind::Done | MarkKind::Error => (TICK * 2.4, 3.0),
        _ => (TICK * 1.6, 1.5),
    };
    html! {
        line x1=(scale.x(m.at_ns)) x2=(scale.x(m.at_ns)) y1=(y - height / 2.0) y2=(y + height / 2.0)
            stroke=(colour(m.kind)) stroke-width=(width) {
            title { (what(m.kind)) ", " (m.bytes) " bytes at " (format_ns(m.at_ns)) }
        }
    }
}

/// A line from a write to its receipt: its horizontal extent is the relay latency.
fn link_line(scale: &Scale, link: &Link) -> Markup {
    let latency = link.received_ns.saturating_sub(link.written_ns);
    html! {
        line x1=(scale.x(link.written_ns)) y1=(UPSTREAM_Y) x2=(scale.x(link.received_ns)) y2=(CLIENT_Y)
            stroke="#999" stroke-opacity="0.7" {
            title { "relay latency " (format_ns(latency)) }
        }
    }
}

/// How to anchor a label at `ns` so that it stays inside the drawing.
fn anchor(scale: &Scale, ns: u64) -> &'static str {
    match ns as f64 / scale.span_ns {
        f if f > 0.9 => "end",
        f if f < 0.05 => "start",
        _ => "middle",
    }
}

/// A labelled moment on the client lane (handoff, head, `[DONE]`); `row` staggers the labels.
fn event(scale: &Scale, ns: u64, label: &str, colour: &str, row: u8) -> Markup {
    let y = CLIENT_Y - TICK - 4.0 - f64::from(row) * 11.0;
    let x = scale.x(ns);
    html! {
        g {
            title { (label) " at " (format_ns(ns)) }
            path d={ "M" (x) " " (CLIENT_Y - TICK) "v" (-(f64::from(row) * 11.0 + 2.0)) } stroke=(colour) {}
            text x=(x) y=(y) fill=(colour) text-anchor=(anchor(scale, ns)) { (label) }
        }
    }
}

/// The close: a dashed line across both lanes, labelled with how the stream ended.
fn close(scale: &Scale, t: &Timeline) -> Markup {
    let x = scale.x(t.end_ns);
    html! {
        g {
            title { (safe(&t.end)) " at " (format_ns(t.end_ns)) }
            line x1=(x) x2=(x) y1=(UPSTREAM_Y - 16.0) y2=(CLIENT_Y + 14.0) stroke="#1a1a1a"
                stroke-dasharray="4 3" {}
            text x=(x) y=(UPSTREAM_Y - 19.0) text-anchor=(anchor(scale, t.end_ns)) { "close" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::timeline::Window;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(100), 20);
        assert_eq!(tick_step(1_000_000), 200_000);
        assert!(tick_step(u64::MAX) > 0);
    }

    #[test]
    fn every_write_receipt_and_pair_is_drawn() {
        let write = |at_ns| Mark {
            at_ns,
            kind: MarkKind::Write,
            bytes: 10,
        };
        let t = Timeline {
            handoff_ns: Some(100),
            head_ns: Some(200),
            writes: Window::of(vec![write(300), write(400)], Timeline::KEEP),
            receipts: Window::of(
                vec![Mark {
                    at_ns: 500,
                    kind: MarkKind::Done,
                    bytes: 6,
                }],
                Timeline::KEEP,
            ),
            links: Window::of(
                vec![Link {
                    written_ns: 300,
                    received_ns: 450,
                }],
                Timeline::KEEP,
            ),
            done_ns: Some(500),
            end_ns: 1_000,
            end: "closed by the daemon".into(),
        };
        let svg = svg(&t).into_string();
        assert_eq!(svg.matches("upstream write, 10 bytes").count(), 2, "{svg}");
        assert!(svg.contains("[DONE], 6 bytes at 500 ns"), "{svg}");
        assert!(svg.contains("relay latency 150 ns"), "{svg}");
        assert!(svg.contains("closed by the daemon at 1.0 µs"), "{svg}");
        assert!(!svg.contains("not drawn"));
    }
}
