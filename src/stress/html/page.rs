//! The page around the stress report's body: head, inline styles, colours. A stand-in for the
//! shared skeleton of [`crate::report::html`] until that has one, kept apart so the two are
//! easily made one.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Page styles: the Okabe–Ito bluish green and vermillion for verdicts (with words, never
/// colour alone), system fonts, charts scaled to the column, and a print layout without
/// backgrounds.
const CSS: &str = "
:root { --ok: #009E73; --failed: #D55E00; --ink: #222; --muted: #666; --rule: #ddd; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); max-width: 980px;
       margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid var(--rule); padding-bottom: .2em; margin-top: 1.6em; }
.verdict.ok { color: var(--ok); } .verdict.failed { color: var(--failed); }
.lead { font-size: 1.1em; margin-top: 0; }
.alert { border-left: 4px solid var(--failed); padding: .5em 1em; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { text-align: left; padding: .25em .8em .25em 0; vertical-align: top;
         border-bottom: 1px solid var(--rule); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { color: var(--muted); font-weight: normal; white-space: nowrap; }
tr.failed td:nth-child(2), li.failed, p.leak.failed { color: var(--failed); font-weight: 600; }
tr.failed td:first-child { border-left: 4px solid var(--failed); padding-left: .4em; }
tr.ok td:first-child { border-left: 4px solid var(--ok); padding-left: .4em; }
ul.examples { margin: 0; padding-left: 1.2em; font-size: .92em; }
code { font-size: .92em; }
figure { margin: 1em 0 1.6em; }
svg.chart { display: block; width: 100%; max-width: 720px; height: auto; }
figcaption { color: var(--muted); font-size: .92em; max-width: 720px; }
.no-data { color: var(--muted); font-style: italic; }
footer { margin-top: 3em; color: var(--muted); font-size: .85em; }
@media print { body { max-width: none; margin: 0; } figure, table { break-inside: avoid; } }
";

/// The page around `body`.
pub(super) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
}
