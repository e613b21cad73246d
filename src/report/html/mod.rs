//! HTML reports: one self-contained file each (inline CSS and SVG, a few lines of script,
//! nothing fetched when it is viewed), so that a report opens from disk and in a CI artifact
//! viewer.
//!
//! This module is the skeleton every page shares ([`page`]): the head, the style sheet, the
//! verdict colours and the footer. The pages:
//!
//! | page | module | from |
//! |---|---|---|
//! | `run --format html` | [`run`] | the run's results, with each stream's [`Timeline`](crate::verdict::Timeline) ([`timeline`]) |
//! | `report merge` | [`matrix`] | several JSON reports: scenarios × daemons |
//! | `stress --format html` | [`crate::stress::html`] | a stress report, charts from [`charts`] |
//!
//! Colours: the Okabe–Ito palette (readable with every common colour-vision deficiency and in
//! greyscale print), and never alone: each verdict also has its label and a sign
//! (✓ OK, i INFORMATIONAL, ! NON-STRICT, ✗ FAILED, – SKIPPED). Templates are maud's, which
//! escapes every value it interpolates: text a daemon sent (`<script>`) comes out as text.

#![deny(missing_docs)]

pub mod charts;
pub mod matrix;
pub mod run;
pub mod timeline;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::verdict::Verdict;

/// The style sheet of every page.
const CSS: &str = r#"
:root {
  --ok: #0072B2; --info: #56B4E9; --nonstrict: #E69F00; --failed: #D55E00; --skipped: #7f7f7f;
  --ok-bg: #e5f0f7; --info-bg: #eef7fc; --nonstrict-bg: #fcf3e0; --failed-bg: #fae9df;
  --skipped-bg: #f0f0f0; --ink: #1a1a1a; --rule: #d0d0d0; --muted: #666;
}
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--ink); margin: 1.5em auto;
  max-width: 72em; padding: 0 1em; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.4em 0 .5em; }
code, pre { font: 12px/1.4 ui-monospace, monospace; }
pre { background: #f7f7f7; border: 1px solid var(--rule); padding: .5em; overflow-x: auto;
  white-space: pre-wrap; overflow-wrap: anywhere; margin: .4em 0; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; margin: 0; }
dl.meta dt { color: #555; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.v { display: inline-block; min-width: 10.5em; font-weight: 600; padding: 0 .4em;
  border-radius: 3px; border: 1px solid; white-space: nowrap; }
.v::before { display: inline-block; width: 1.1em; font-weight: 700; }
.ok .v, .v.ok { color: #004f7c; background: var(--ok-bg); border-color: var(--ok); }
.ok .v::before, .v.ok::before { content: "✓"; }
.info .v, .v.info { color: #1d5f80; background: var(--info-bg); border-color: var(--info); }
.info .v::before, .v.info::before { content: "i"; }
.nonstrict .v, .v.nonstrict { color: #7a5300; background: var(--nonstrict-bg);
  border-color: var(--nonstrict); }
.nonstrict .v::before, .v.nonstrict::before { content: "!"; }
.failed .v, .v.failed { color: #8f3d00; background: var(--failed-bg); border-color: var(--failed); }
.failed .v::before, .v.failed::before { content: "✗"; }
.skipped .v, .v.skipped { color: #444; background: var(--skipped-bg); border-color: var(--skipped); }
.skipped .v::before, .v.skipped::before { content: "–"; }
.banner { border-left: 6px solid var(--failed); background: var(--failed-bg); padding: .4em .8em; }
ul.causes { padding-left: 0; list-style: none; }
ul.causes li { margin: .25em 0; }
details.scenario { border-left: 6px solid var(--rule); margin: 2px 0; background: #fff; }
details.scenario.ok { border-left-color: var(--ok); }
details.scenario.info { border-left-color: var(--info); }
details.scenario.nonstrict { border-left-color: var(--nonstrict); }
details.scenario.failed { border-left-color: var(--failed); }
details.scenario.skipped { border-left-color: var(--skipped); }
details.scenario:target { outline: 2px solid var(--ink); }
details.scenario > summary { cursor: pointer; padding: .2em .5em; display: flex; gap: .8em;
  align-items: baseline; }
details.scenario > summary::before { content: "▸"; color: #555; }
details.scenario[open] > summary::before { content: "▾"; }
details.scenario > summary .id { min-width: 3em; text-align: right; font-variant-numeric: tabular-nums; }
details.scenario > summary .name { flex: 1; font-family: ui-monospace, monospace; }
details.scenario > summary .t { color: #555; font-variant-numeric: tabular-nums; }
details.scenario > div { padding: .2em 1em .8em 2.2em; }
.legend { display: flex; flex-wrap: wrap; gap: .3em 1.2em; font-size: 12px; color: #333; }
.legend svg { vertical-align: middle; }
svg.timeline { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule);
  background: #fff; }
svg.timeline text { font: 11px system-ui, sans-serif; fill: #333; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid var(--rule); padding: .15em .4em; }
table.matrix th { background: #f3f3f3; text-align: left; white-space: nowrap; }
table.matrix tfoot td { font-size: 11px; }
table.matrix td.cell { padding: 0; }
table.matrix td.cell a, table.matrix td.cell span.v { display: block; border: 0; border-radius: 0;
  min-width: 8.5em; text-decoration: none; padding: .15em .4em; }
table.matrix tr.differs th { background: #fff6d5; }
.verdict.ok { color: var(--ok); } .verdict.failed { color: var(--failed); }
.lead { font-size: 1.1em; margin-top: 0; }
.alert { border-left: 4px solid var(--failed); padding: .5em 1em; white-space: pre-wrap; }
table.facts, table.outcomes, table.latency, table.resources { border-collapse: collapse; margin: .5em 0 1em; }
table.facts :is(th, td), table.outcomes :is(th, td), table.latency :is(th, td),
table.resources :is(th, td) { text-align: left;
  padding: .25em .8em .25em 0; vertical-align: top; border-bottom: 1px solid var(--rule); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { color: var(--muted); font-weight: normal; white-space: nowrap; }
tr.failed td:nth-child(2), li.failed, p.leak.failed { color: var(--failed); font-weight: 600; }
tr.failed td:first-child { border-left: 4px solid var(--failed); padding-left: .4em; }
tr.ok td:first-child { border-left: 4px solid var(--ok); padding-left: .4em; }
ul.examples { margin: 0; padding-left: 1.2em; font-size: .92em; }
figure { margin: 1em 0 1.6em; break-inside: avoid; }
svg.chart { display: block; width: 100%; max-width: 720px; height: auto; }
figcaption { color: var(--muted); font-size: .92em; max-width: 720px; }
.no-data { color: var(--muted); font-style: italic; }
footer { margin-top: 2em; color: #666; font-size: 12px; border-top: 1px solid var(--rule);
  padding-top: .5em; }
@media print {
  body { max-width: none; margin: 0; font-size: 11px; }
  details.scenario { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The only script: opens the scenario a link names (`report.html#4.1`), and every scenario
/// before printing.
const SCRIPT: &str = r#"
function openTarget() {
  var e = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (e && e.tagName === "DETAILS") { e.open = true; e.scrollIntoView(); }
}
window.addEventListener("hashchange", openTarget);
window.addEventListener("DOMContentLoaded", openTarget);
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
"#;

/// A whole page: `title`, the shared style sheet and script, `body`, and the footer naming
/// the streamcheck version that wrote it.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content=(generator());
                title { (title) }
                style { (PreEscaped(CSS)) }
                script { (PreEscaped(SCRIPT)) }
            }
            body {
                (body)
                footer { "Written by " (generator()) "." }
            }
        }
    }
    .into_string()
}

/// `streamcheck 0.1.0`.
pub fn generator() -> String {
    format!("streamcheck {}", env!("CARGO_PKG_VERSION"))
}

/// The CSS class of a verdict (`ok`, `info`, `nonstrict`, `failed`), or `skipped`.
pub fn verdict_class(verdict: Verdict, skipped: bool) -> &'static str {
    if skipped {
        return "skipped";
    }
    match verdict {
        Verdict::Pass => "ok",
        Verdict::Informational => "info",
        Verdict::NonStrict => "nonstrict",
        Verdict::Fail => "failed",
    }
}

/// The label of a verdict, or `SKIPPED`.
pub fn verdict_label(verdict: Verdict, skipped: bool) -> &'static str {
    if skipped { "SKIPPED" } else { verdict.label() }
}

/// A verdict badge: its label, with its sign and colour from the class.
pub fn badge(verdict: Verdict, skipped: bool) -> Markup {
    html! {
        span class={ "v " (verdict_class(verdict, skipped)) } { (verdict_label(verdict, skipped)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_whole_and_escapes_its_title() {
        let html = page("<b>x</b>", html! { p { "body" } });
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(
            html.contains("<title>&lt;b&gt;x&lt;/b&gt;</title>"),
            "{html}"
        );
        assert!(html.contains("<p>body</p>"));
        assert!(html.contains(&generator()));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing fetched"
        );
    }

    #[test]
    fn every_verdict_has_a_class_and_a_label() {
        let classes: Vec<_> = Verdict::ALL
            .iter()
            .map(|&v| verdict_class(v, false))
            .chain([verdict_class(Verdict::Pass, true)])
            .collect();
        assert_eq!(classes, ["ok", "info", "nonstrict", "failed", "skipped"]);
        for class in classes {
            assert!(
                CSS.contains(&format!(".v.{class}::before")),
                "{class} has a sign"
            );
        }
        assert_eq!(
            badge(Verdict::Fail, false).into_string(),
            r#"<span class="v failed">FAILED</span>"#
        );
    }
}
