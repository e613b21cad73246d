//! The search as one self-contained HTML page (`capacity --format html`): the answer and its
//! binding constraint, each objective's figure against concurrency with the objective's line
//! and the capacity marked, the CPU each side used per step, and every step in a table.
//!
//! Stable hooks: `#answer`, `#objectives`, `#steps`; one `<svg class="chart">` per objective
//! with id `chart-slo-<metric>-<stat>` (e.g. `chart-slo-ttfb-p99`), and `chart-cpu`; step rows
//! `tr#step-<concurrency>` with class `ok` (held) or `failed`.

use maud::{Markup, PreEscaped, html};

use super::CapacityReport;
use super::search::Outcome;
use super::slo::{Metric, Slo};
use super::step::group_digits;
use crate::report::html::charts::{self, Labels, Mark, Series};
use crate::report::html::page;

impl CapacityReport {
    /// The whole page.
    pub fn html(&self) -> String {
        let title = format!("streamcheck capacity: {}", self.daemon);
        page(&title, self.body())
    }

    fn body(&self) -> Markup {
        let class = if self.answer.capacity.is_some() {
            "ok"
        } else {
            "failed"
        };
        html! {
            h1 { "Capacity of " code { (self.daemon) } }
            section #answer {
                p.lead.verdict.(class) { (self.answer.text) }
                @if self.interrupted {
                    p.alert { "Interrupted by a signal: the answer is the best bound found so far." }
                }
                table.facts {
                    tr { th { "objectives" } td { (self.slos.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(", ")) } }
                    tr { th { "steps" } td {
                        "from " (group_digits(self.search.start)) " streams, ×" (self.search.growth)
                        " until one breaks, then bisected to " (self.search.resolution * 100.0) "%; each "
                        (self.search.warmup_ms) " ms warm-up (not timed) + " (self.search.hold_ms) " ms held"
                    } }
                    tr { th { "most streams tried" } td { (group_digits(self.search.max)) " (" (self.search.max_because) ")" } }
                    tr { th { "search" } td { (self.steps.len()) " steps in " (format!("{:.0}", self.seconds)) " s" } }
                }
            }
            section #objectives {
                h2 { "Each objective against concurrency" }
                @for (i, slo) in self.slos.iter().enumerate() {
                    (self.slo_chart(i, slo))
                }
                (self.cpu_chart())
            }
            section #steps {
                h2 { "Steps, in the order they ran" }
                (self.steps_table())
            }
        }
    }

    /// Objective `i`'s figure at each concurrency, its limit as a line, the capacity marked.
    fn slo_chart(&self, i: usize, slo: &Slo) -> Markup {
        let (unit, scale) = unit_of(slo);
        let mut points: Vec<(f64, f64)> = self
            .steps
            .iter()
            .filter(|s| s.outcome != Outcome::ClientBound)
            .filter_map(|s| Some((s.concurrency as f64, s.slos.get(i)?.value? / scale)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let name = slo.text.split(['<', '=']).next().unwrap_or(&slo.text);
        let id = format!("chart-slo-{}", name.replace('.', "-"));
        let title = format!("{name} against concurrency");
        let y = format!("{name} ({unit})");
        let limit = format!("objective {}", slo.text);
        let capacity = self
            .answer
            .capacity
            .map(|c| format!("capacity {}", group_digits(c)));
        let labels = Labels {
            id: &id,
            title: &title,
            x: "concurrent streams",
            y: &y,
        };
        let chart = charts::line_chart(
            &labels,
            &[Series { name, points }],
            Some(Mark {
                at: slo.limit / scale,
                label: &limit,
            }),
            self.answer
                .capacity
                .zip(capacity.as_deref())
                .map(|(c, label)| Mark {
                    at: c as f64,
                    label,
                }),
        );
        figure(
            chart.map_err(|e| e.to_string()),
            "Each step that could be judged; where the line crosses the objective is where the \
             daemon stops holding it. Client-bound steps are left out.",
        )
    }

    /// CPU seconds of the daemon and of streamcheck at each step.
    fn cpu_chart(&self) -> Markup {
        let mut steps: Vec<_> = self.steps.iter().collect();
        steps.sort_by_key(|s| s.concurrency);
        let daemon: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| Some((s.concurrency as f64, s.daemon_cpu_seconds?)))
            .collect();
        let client: Vec<(f64, f64)> = steps
            .iter()
            .map(|s| (s.concurrency as f64, s.client_cpu_seconds))
            .collect();
        let labels = Labels {
            id: "chart-cpu",
            title: "CPU used per step",
            x: "concurrent streams",
            y: "CPU seconds",
        };
        let chart = charts::line_chart(
            &labels,
            &[
                Series {
                    name: "daemon",
                    points: daemon,
                },
                Series {
                    name: "streamcheck",
                    points: client,
                },
            ],
            None,
            None,
        );
        figure(
            chart.map_err(|e| e.to_string()),
            "streamcheck's own CPU (with its embedded mock) beside the daemon's: when the two \
             share a small machine, a step where streamcheck uses as much as the daemon is \
             labelled client-bound.",
        )
    }

    fn steps_table(&self) -> Markup {
        html! {
            table.latency {
                thead { tr {
                    th { "streams" } th { "outcome" }
                    @for slo in &self.slos { th { (slo.text) } }
                    th { "daemon RSS" } th { "daemon fds" } th { "daemon CPU-s" }
                    th { "client CPU-s" } th { "loop busy" } th { "failed / streams" }
                } }
                tbody {
                    @for s in &self.steps {
                        @let class = if s.outcome == Outcome::Held { "ok" } else { "failed" };
                        tr id=(format!("step-{}", s.concurrency)) class=(class) {
                            td.num { (group_digits(s.concurrency)) }
                            td {
                                (match s.outcome {
                                    Outcome::Held => "held",
                                    Outcome::Broke => "broke",
                                    Outcome::ClientBound => "client-bound",
                                })
                                @if let Some(why) = s.client_bound.as_ref().or(s.broke_because.as_ref()) {
                                    br; small { (why) }
                                }
                            }
                            @for m in &s.slos {
                                td.num { (m.shown) @if !m.met { " ✗" } }
                            }
                            td.num { (s.daemon_rss_bytes.map_or("–".to_owned(), |b| super::slo::human_bytes(b as f64))) }
                            td.num { (s.daemon_fds.map_or("–".to_owned(), |f| f.to_string())) }
                            td.num { (s.daemon_cpu_seconds.map_or("–".to_owned(), |c| format!("{c:.2}"))) }
                            td.num { (format!("{:.2}", s.client_cpu_seconds)) }
                            td.num { (format!("{:.0}%", s.client_loop_busy * 100.0)) }
                            td.num { (s.failed) " / " (s.streams) }
                        }
                    }
                }
            }
        }
    }
}

/// The unit an objective's chart is drawn in, and what one of it is in the objective's own.
fn unit_of(slo: &Slo) -> (&'static str, f64) {
    match slo.metric {
        Metric::Latency(_) => ("ms", 1e6),
        Metric::Rss => ("MiB", 1024.0 * 1024.0),
        Metric::Fds => ("fds", 1.0),
        Metric::Cpu => ("cores", 1.0),
        Metric::Failures if slo.fraction => ("fraction of streams", 1.0),
        Metric::Failures => ("streams", 1.0),
    }
}

fn figure(chart: Result<String, String>, caption: &str) -> Markup {
    html! {
        figure {
            @match chart {
                Ok(svg) => { (PreEscaped(svg)) }
                Err(why) => { p.no-data { (why) } }
            }
            figcaption { (caption) }
        }
    }
}
