//! The report as one self-contained HTML page (`stress --format html`): the verdict and the
//! summary figures, the integrity outcomes with their examples, one percentile chart per
//! latency histogram, and the run over time (streams open, events per second, the daemon's fds
//! and RSS). Inline CSS and SVG only: nothing is fetched when it is opened.
//!
//! Stable hooks for links and browser tests: sections `#summary`, `#integrity`, `#latency`,
//! `#timeline`, `#resources`; one `<svg class="chart">` per histogram with id
//! `chart-<name>` (`chart-handoff`, `chart-time-to-head`, `chart-first-event`,
//! `chart-inter-event-gap`, `chart-relay`, `chart-total`, `chart-schedule-lag`; an empty
//! histogram gets `<p class="no-data">` instead), and `chart-open-streams`,
//! `chart-events-per-second`, `chart-daemon-fds`, `chart-daemon-rss` over time; integrity rows
//! `tr#outcome-<outcome>` with class `ok` or `failed`.

use maud::{Markup, PreEscaped, html};

use super::integrity::Outcome;
use super::latency::{Summary, human_ns};
use super::report::StressReport;
use super::resources::LeakVerdict;
use super::timeline::Timeline;
use crate::report::html::charts::{self, Labels, Mark, Series};
use crate::report::html::page;

#[cfg(test)]
mod tests;

const MIB: f64 = 1024.0 * 1024.0;

/// What each histogram is called on the page, and what to look for in its chart.
fn describe(name: &str) -> (&'static str, &'static str) {
    match name {
        "handoff" => (
            "Handoff",
            "From each stream's start to the completed sendmsg: a tail that rises means the \
             daemon's accept backlog or loop keeps handoffs waiting.",
        ),
        "time_to_head" => (
            "Time to response head",
            "Start to the response head: the daemon's set-up and its upstream request; read \
             the tail, not the median.",
        ),
        "first_event" => (
            "Time to first event",
            "Start to the first complete event: how long a user waits before text appears.",
        ),
        "inter_event_gap" => (
            "Gap between events",
            "Between consecutive events of one stream: the upstream's pacing is the floor; a \
             tail far above it means streams stall.",
        ),
        "relay" => (
            "Relay latency",
            "From the mock's write to the client's read of each event: the daemon's own delay, \
             which should stay flat into the tail.",
        ),
        "total" => (
            "Whole stream",
            "Start to the daemon's close, completed streams only: the upstream's pacing plus \
             everything the daemon added.",
        ),
        "schedule_lag" => (
            "Schedule lag (client)",
            "How late the client started each stream against its schedule: the client's \
             precision, not the daemon's; large values mean the client machine was saturated.",
        ),
        _ => ("Latency", "Latency against percentile."),
    }
}

/// `time_to_head` → `chart-time-to-head`.
fn chart_id(name: &str) -> String {
    format!("chart-{}", name.replace('_', "-"))
}

impl StressReport {
    /// The report as one HTML page.
    pub fn html(&self) -> String {
        let title = format!("streamcheck stress: {}", verdict_words(self));
        page(&title, self.body())
    }

    fn body(&self) -> Markup {
        let r = &self.run;
        let held = self.integrity.held;
        html! {
            header {
                h1 class=(if held { "verdict ok" } else { "verdict failed" }) {
                    (verdict_words(self))
                }
                p.lead {
                    (self.integrity.failed) " of " (r.judged) " streams failed"
                    @if r.interrupted { " (interrupted by a signal)" }
                    @else if self.limits.stopped_by.is_some() {
                        " (stopped early by a client limit)"
                    }
                }
                @if let Some(d) = &self.daemon_death {
                    pre.alert { "The daemon died: " (d.message()) }
                }
            }
            (self.summary())
            (self.integrity_section())
            (self.latency_section())
            (self.timeline_section())
            (self.resources_section())
            @if !self.notes.is_empty() {
                section #notes {
                    h2 { "Notes" }
                    ul { @for note in &self.notes { li { (note) } } }
                }
            }
            footer { "streamcheck " (env!("CARGO_PKG_VERSION")) " — stress report" }
        }
    }

    fn summary(&self) -> Markup {
        let (r, l, t) = (&self.run, &self.load, &self.target);
        let load = match (l.model, l.rate) {
            ("open", Some(rate)) => format!(
                "open loop, {rate} connections/s (at most {} open), ramp-up {} ms",
                l.concurrency, l.ramp_up_ms
            ),
            _ => format!(
                "closed loop, {} concurrent, ramp-up {} ms",
                l.concurrency, l.ramp_up_ms
            ),
        };
        let rate = if r.wall_seconds > 0.0 {
            r.events as f64 / r.wall_seconds
        } else {
            0.0
        };
        html! {
            section #summary {
                h2 { "Summary" }
                table.facts {
                    tr { th { "daemon" } td { code { (t.daemon) } " (" (t.socket) ")" } }
                    tr { th { "upstream" } td { (t.upstream) } }
                    tr { th { "load" } td {
                        (load) "; " (r.started) " streams of pattern " (t.pattern) " over "
                        (t.pair) " / " (t.socket_type) ", timeout " (l.timeout_ms) " ms"
                        @if l.abort_rate > 0.0 || l.slow_readers > 0.0 {
                            "; abort rate " (l.abort_rate) ", slow readers " (l.slow_readers)
                            " (pausing " (l.slow_pause_ms) " ms)"
                        }
                    } }
                    tr { th { "run" } td {
                        (format!("{:.2}", r.wall_seconds)) " s, peak " (r.peak_open)
                        " open, " (r.events) " events (" (format!("{rate:.0}")) " per second), "
                        (format!("{:.1}", r.bytes as f64 / MIB)) " MiB received"
                    } }
                    tr { th { "integrity" } td {
                        (if self.integrity.held { "held" } else { "failed" }) ": "
                        (self.integrity.failed) " of " (r.judged) " streams failed; "
                        (leak_words(&self.integrity.leak))
                    } }
                    @if let Some(d) = &self.daemon {
                        tr { th { "daemon resources" } td {
                            "fds " (d.before.fds) " → " (d.peak.fds) " at peak → " (d.after.fds)
                            "; RSS " (mib(d.before.rss_bytes)) " → " (mib(d.peak.rss_bytes))
                            " → " (mib(d.after.rss_bytes)) "; CPU "
                            (format!("{:.2}", d.cpu_seconds)) " s"
                        } }
                    }
                    tr { th { "client" } td {
                        (format!("{:.3}", self.client.cpu_seconds_per_1000_streams))
                        " CPU-s per 1,000 streams; peak RSS " (mib(self.client.peak_rss_bytes))
                    } }
                }
            }
        }
    }

    fn integrity_section(&self) -> Markup {
        html! {
            section #integrity {
                h2 { "Integrity" }
                table.outcomes {
                    thead { tr { th { "streams" } th { "outcome" } th { "examples" } } }
                    tbody {
                        @for (outcome, tally) in &self.integrity.outcomes {
                            tr id=(format!("outcome-{}", outcome_key(*outcome)))
                                class=(if outcome.is_ok() { "ok" } else { "failed" }) {
                                td.num { (tally.count) }
                                td { (outcome.name()) }
                                td {
                                    @if *outcome != Outcome::Completed && !tally.examples.is_empty() {
                                        ul.examples {
                                            @for e in &tally.examples {
                                                li {
                                                    "#" (e.connection) " " code { (e.nonce) }
                                                    " (" (e.bytes) " bytes): " (e.detail)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p class=(if matches!(self.integrity.leak, LeakVerdict::Leak(_)) { "leak failed" } else { "leak" }) {
                    (leak_words(&self.integrity.leak))
                }
            }
        }
    }

    fn latency_section(&self) -> Markup {
        html! {
            section #latency {
                h2 { "Latency" }
                table.latency {
                    thead { tr {
                        th { "histogram" } th { "count" } th { "p50" } th { "p90" } th { "p99" }
                        th { "p99.9" } th { "max" }
                    } }
                    tbody {
                        @for s in &self.latency {
                            tr {
                                td { (s.name) }
                                td.num { (s.count) }
                                @if s.count > 0 {
                                    td.num { (human_ns(s.p50_ns)) }
                                    td.num { (human_ns(s.p90_ns)) }
                                    td.num { (human_ns(s.p99_ns)) }
                                    td.num { (human_ns(s.p999_ns)) }
                                    td.num { (human_ns(s.max_ns)) }
                                } @else {
                                    td colspan="5" { "no samples" }
                                }
                            }
                        }
                    }
                }
                div.charts {
                    @for s in &self.latency { (percentile_figure(s)) }
                }
            }
        }
    }

    fn timeline_section(&self) -> Markup {
        let t = &self.timeline;
        let x = "time since start (s)";
        let end = t.run_end_ms.map(|ms| Mark {
            at: ms as f64 / 1e3,
            label: "last stream ended",
        });
        let open = series(t, "open streams", |s| Some(s.open_streams as f64));
        let rates = events_per_second(t);
        let fds = series(t, "fds", |s| s.daemon_fds.map(|v| v as f64));
        let rss = series(t, "RSS", |s| s.daemon_rss_bytes.map(|v| v as f64 / MIB));
        // The daemon's fd limit, when the run came near it (else it would flatten the chart).
        let peak_fds = fds.points.iter().map(|p| p.1).fold(0.0, f64::max);
        let limit_label = self
            .limits
            .daemon_fd_limit
            .map(|l| format!("open-file limit {l}"));
        let fd_limit = match (self.limits.daemon_fd_limit, &limit_label) {
            (Some(l), Some(label)) if peak_fds * 2.0 >= l as f64 => Some(Mark {
                at: l as f64,
                label,
            }),
            _ => None,
        };
        let every = format!("sampled every {} ms", t.interval_ms);
        html! {
            section #timeline {
                h2 { "Over the run" }
                p { (t.samples.len()) " samples, " (every) "; the dashed line marks the end of the \
                     last stream, after which the daemon settles." }
                div.charts {
                    (line_figure(
                        &Labels { id: "chart-open-streams", title: "Streams open", x, y: "open streams" },
                        "Rises to the concurrency and stays level while streams are replaced; a \
                         dip means streams ended early or could not be started.",
                        open, None, end))
                    (line_figure(
                        &Labels { id: "chart-events-per-second", title: "Events received per second",
                                  x, y: "events/s" },
                        "The relay's throughput: level while streams are open; a drop with streams \
                         still open is a stall.",
                        rates, None, end))
                    @if let Some(d) = &self.daemon {
                        @if let Some(e) = &d.error {
                            p.no-data { "The daemon's sampling stopped: " (e) }
                        }
                        (line_figure(
                            &Labels { id: "chart-daemon-fds", title: "Daemon open file descriptors",
                                      x, y: "open fds" },
                            "Follows the streams open and falls back to where it started once they \
                             end; staying high after the run is a leak.",
                            fds, fd_limit, end))
                        (line_figure(
                            &Labels { id: "chart-daemon-rss", title: "Daemon resident memory",
                                      x, y: "RSS (MiB)" },
                            "Levels off with the streams open; growth that goes on through the run \
                             or stays after it is memory kept per stream.",
                            rss, None, end))
                    } @else {
                        p.no-data { "The daemon's fds and RSS were not watched: give its PID with \
                                     --daemon-pid, or start it with --daemon-cmd." }
                    }
                }
            }
        }
    }

    fn resources_section(&self) -> Markup {
        let c = &self.client;
        let lim = &self.limits;
        html! {
            section #resources {
                h2 { "Resources" }
                @if let Some(d) = &self.daemon {
                    table.resources {
                        thead { tr { th { "daemon (PID " (d.pid) ")" } th { "before" } th { "peak" }
                                     th { "after" } } }
                        tbody {
                            tr { td { "fds" } td.num { (d.before.fds) } td.num { (d.peak.fds) }
                                 td.num { (d.after.fds) } }
                            tr { td { "RSS" } td.num { (mib(d.before.rss_bytes)) }
                                 td.num { (mib(d.peak.rss_bytes)) } td.num { (mib(d.after.rss_bytes)) } }
                        }
                    }
                    p {
                        "CPU " (format!("{:.2}", d.cpu_seconds)) " s; settled in " (d.settle_ms) " ms"
                        @if let Some(held) = d.client_sockets_held { "; " (held) " client sockets still held" }
                        @if let Some(e) = &d.error { "; " (e) }
                    }
                }
                ul {
                    li {
                        "client CPU " (format!("{:.3}", c.cpu_seconds_loop_thread))
                        " s in the io_uring loop thread, " (format!("{:.3}", c.cpu_seconds_process_run))
                        " s for the process during the run"
                        @if c.embedded_mock { " (including the embedded mock)" }
                    }
                    li {
                        (format!("{:.3}", c.cpu_seconds_per_1000_streams)) " CPU-s per 1,000 streams, "
                        (format!("{:.4}", c.cpu_seconds_per_1000_events)) " CPU-s per 1,000 events"
                    }
                    li {
                        "client peak RSS " (mib(c.peak_rss_bytes))
                        @if let Some(per) = c.rss_per_open_stream_bytes {
                            ", " (format!("{:.2}", per / 1024.0)) " KiB per open stream"
                        }
                    }
                    li {
                        "open-file limit " (lim.fd_limit)
                        @if let Some(ports) = lim.ephemeral_ports { ", " (ports) " ephemeral ports" }
                    }
                    @if let Some(hit) = &lim.stopped_by {
                        li.failed { "stopped by " (hit.kind.name()) " at " (hit.open_streams)
                                    " open streams: " (hit.detail) }
                    }
                    @if lim.daemon_fd_limit_reached {
                        li.failed { "the daemon reached its open-file limit ("
                                    (lim.daemon_fd_limit.unwrap_or(0)) "): that limit, not the \
                                    client's, bounded this run" }
                    }
                    @if let Some(hit) = &lim.daemon_backlog {
                        li.failed { (hit.kind.name()) " was full at " (hit.open_streams)
                                    " open streams: " (lim.backlog_full) " handoffs failed; " (hit.detail) }
                    }
                }
            }
        }
    }
}

/// A histogram's figure: its percentile chart, or a note when it has no samples.
fn percentile_figure(s: &Summary) -> Markup {
    let (title, caption) = describe(s.name);
    let id = chart_id(s.name);
    let chart = match s.histogram() {
        Some(h) if !h.is_empty() => charts::percentile_chart(
            &Labels {
                id: &id,
                title,
                x: "percentile (log scale of 1/(1−p))",
                y: "latency",
            },
            &[(s.name, &h)],
        )
        .map_err(|e| e.to_string()),
        Some(_) => Err("no samples".to_owned()),
        None => Err("the histogram could not be decoded".to_owned()),
    };
    figure(chart, caption, title)
}

fn line_figure(
    labels: &Labels<'_>,
    caption: &str,
    series: Series<'_>,
    threshold: Option<Mark<'_>>,
    marked_x: Option<Mark<'_>>,
) -> Markup {
    let chart = if series.points.is_empty() {
        Err("no samples".to_owned())
    } else {
        charts::line_chart(labels, &[series], threshold, marked_x).map_err(|e| e.to_string())
    };
    figure(chart, caption, labels.title)
}

fn figure(chart: Result<String, String>, caption: &str, title: &str) -> Markup {
    html! {
        figure {
            @match chart {
                Ok(svg) => { (PreEscaped(svg)) }
                Err(why) => { p.no-data { (title) ": " (why) } }
            }
            figcaption { (caption) }
        }
    }
}

/// One value of every sample, at its time in seconds.
fn series<'a>(
    t: &Timeline,
    name: &'a str,
    value: impl Fn(&super::timeline::Sample) -> Option<f64>,
) -> Series<'a> {
    Series {
        name,
        points: t
            .samples
            .iter()
            .filter_map(|s| Some((s.t_ms as f64 / 1e3, value(s)?)))
            .collect(),
    }
}

/// Events of each sample over the time it covers.
fn events_per_second(t: &Timeline) -> Series<'static> {
    let mut previous_ms = 0;
    let points = t
        .samples
        .iter()
        .filter_map(|s| {
            let span = s.t_ms.saturating_sub(previous_ms);
            previous_ms = s.t_ms;
            (span > 0).then(|| (s.t_ms as f64 / 1e3, s.events as f64 * 1e3 / span as f64))
        })
        .collect();
    Series {
        name: "events/s",
        points,
    }
}

fn verdict_words(r: &StressReport) -> &'static str {
    match (r.daemon_death.is_some(), r.integrity.held) {
        (true, _) => "DAEMON DIED",
        (false, true) => "INTEGRITY HELD",
        (false, false) => "INTEGRITY FAILED",
    }
}

fn leak_words(leak: &LeakVerdict) -> String {
    match leak {
        LeakVerdict::Leak(why) => format!("leak: {why}"),
        LeakVerdict::None => "no leak: the daemon released every client socket".to_owned(),
        LeakVerdict::Unknown => "leaks not checked (no daemon PID)".to_owned(),
    }
}

/// The outcome's JSON key (`zero_byte_close`).
fn outcome_key(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}
