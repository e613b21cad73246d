use std::collections::BTreeMap;

use super::super::integrity::{Example, Outcome, Tally};
use super::super::latency::{Summary, histogram};
use super::super::report::*;
use super::super::resources::{DaemonResources, LeakVerdict, ProcSample};
use super::super::timeline::{Recorder, Timeline};
use super::*;

const QUANTITIES: [&str; 7] = [
    "handoff",
    "time_to_head",
    "first_event",
    "inter_event_gap",
    "relay",
    "total",
    "schedule_lag",
];

/// A run of 300 streams over 3 s, two of them truncated, every histogram filled except
/// those named in `empty`; the daemon watched when `daemon` is set.
fn report(empty: &[&str], daemon: bool) -> StressReport {
    let latency = QUANTITIES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut h = histogram();
            if !empty.contains(name) {
                for v in 1..=300u64 {
                    h.saturating_record(v * 10_000 * (i as u64 + 1));
                }
            }
            Summary::of(name, &h)
        })
        .collect();
    let mut recorder = Recorder::new(std::time::Duration::from_millis(100), 512);
    for i in 1..=40u64 {
        let open = if i <= 30 { 100 } else { 0 };
        let fds = daemon.then_some((10 + open, (20 + i) << 20));
        recorder.record(i * 100, open, i.min(30) * 1_000, fds);
    }
    recorder.mark_run_end(3_000);
    let mut outcomes = BTreeMap::new();
    outcomes.insert(
        Outcome::Completed,
        Tally {
            count: 298,
            examples: Vec::new(),
        },
    );
    outcomes.insert(
        Outcome::Truncated,
        Tally {
            count: 2,
            examples: vec![Example {
                connection: 17,
                nonce: "00000017".to_owned(),
                bytes: 120,
                detail: "closed after <script>alert(1)</script> without [DONE]".to_owned(),
            }],
        },
    );
    let sample = |fds, rss_bytes| ProcSample {
        fds,
        rss_bytes,
        cpu_ns: 0,
    };
    StressReport {
        version: 1,
        daemon_death: None,
        target: TargetInfo {
            daemon: "ref-daemon --socket d.sock".to_owned(),
            socket: "d.sock".to_owned(),
            upstream: "embedded mock".to_owned(),
            pattern: "default (with nonce)".to_owned(),
            pair: "tcp",
            socket_type: "seqpacket",
        },
        load: LoadInfo {
            model: "closed",
            connections: Some(300),
            concurrency: 100,
            rate: None,
            ramp_up_ms: 0,
            duration_ms: None,
            timeout_ms: 30_000,
            abort_rate: 0.0,
            slow_readers: 0.0,
            slow_pause_ms: 5_000,
        },
        run: RunInfo {
            started: 300,
            judged: 300,
            peak_open: 100,
            events: 30_000,
            bytes: 3 << 20,
            wall_seconds: 3.0,
            interrupted: false,
            ramp_planned_ms: 0.0,
            ramp_actual_ms: Some(0.5),
        },
        integrity: IntegrityInfo {
            held: false,
            failed: 2,
            leak: LeakVerdict::None,
            outcomes,
        },
        latency,
        relay: RelayInfo {
            streams_joined: 300,
            waiting: 0,
            off_plan: 0,
            dropped: 0,
            log_error: None,
        },
        daemon: daemon.then(|| DaemonResources {
            pid: 4242,
            before: sample(10, 20 << 20),
            peak: sample(110, 60 << 20),
            after: sample(10, 40 << 20),
            settle_ms: 200,
            cpu_seconds: 0.4,
            client_sockets_held: Some(0),
            leak: LeakVerdict::None,
            error: None,
            fd_limit: Some(1024),
        }),
        client: ClientCost {
            cpu_seconds_loop_thread: 0.1,
            cpu_seconds_process_run: 0.2,
            cpu_seconds_process_total: 0.3,
            cpu_seconds_per_1000_streams: 0.33,
            cpu_seconds_per_1000_events: 0.003,
            peak_rss_bytes: 30 << 20,
            rss_before_bytes: 10 << 20,
            rss_per_open_stream_bytes: Some(2048.0),
            embedded_mock: true,
            cpu_user_s: 0.05,
            cpu_sys_s: 0.15,
            ring_thread_busy_fraction: 0.1,
            ring_thread_busy_peak: 0.3,
            ring_thread_saturated_s: 0.0,
        },
        limits: Limits {
            fd_limit: 65_536,
            ephemeral_ports: Some(28_232),
            port_range: None,
            pair_addresses: Some(1),
            ceiling: crate::stress::ceiling::Ceiling {
                streams: 63_360,
                bound_by: crate::stress::ceiling::CeilingKind::Fds,
                detail: "the open-file limit".to_owned(),
            },
            stopped_by: None,
            daemon_backlog: None,
            backlog_full: 0,
            daemon_fd_limit: Some(1024),
            daemon_fd_limit_reached: false,
        },
        ring: RingInfo {
            completions: 1,
            recv_submissions: 1,
            enobufs: 0,
            sq_backlogged: 0,
            deferred_accepts: 0,
        },
        timeline: recorder.timeline().clone(),
        notes: vec!["a note".to_owned()],
    }
}

/// Every `<svg>…</svg>` of the page, parsed.
fn charts(page: &str) -> Vec<(String, roxmltree::Document<'_>)> {
    page.match_indices("<svg ")
        .map(|(start, _)| {
            let end = page[start..].find("</svg>").expect("closed") + start + "</svg>".len();
            let doc = roxmltree::Document::parse(&page[start..end])
                .unwrap_or_else(|e| panic!("{e}: {}", &page[start..end]));
            let id = doc.root_element().attribute("id").unwrap_or("").to_owned();
            (id, doc)
        })
        .collect()
}

#[test]
fn the_page_has_one_chart_per_quantity_and_the_run_over_time() {
    let page = report(&[], true).html();
    let charts = charts(&page);
    let ids: Vec<&str> = charts.iter().map(|(id, _)| id.as_str()).collect();
    let mut expected: Vec<String> = QUANTITIES.iter().map(|q| chart_id(q)).collect();
    expected.extend(
        [
            "chart-open-streams",
            "chart-events-per-second",
            "chart-daemon-fds",
            "chart-daemon-rss",
        ]
        .map(str::to_owned),
    );
    assert_eq!(ids, expected);
    for (id, doc) in &charts {
        let root = doc.root_element();
        assert_eq!(root.attribute("class"), Some("chart"), "{id}");
        // Each chart has its title and axis labels with units.
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        assert!(
            texts.iter().any(|t| t.ends_with(')')),
            "{id}: an axis with its unit in {texts:?}"
        );
        assert_eq!(
            crate::report::html::charts::tests::data_lines(doc).len(),
            1,
            "{id}: one line"
        );
    }
    // Each chart sits in a figure with a caption saying what to look for.
    assert_eq!(page.matches("<figcaption>").count(), charts.len());
}

#[test]
fn the_page_is_self_contained_and_escapes_what_the_daemon_sent() {
    let page = report(&[], true).html();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for external in ["<script src", "<link", "src=", "href=\"http", "url("] {
        assert!(!page.contains(external), "{external} in the page");
    }
    assert!(page.contains("closed after &lt;script&gt;alert(1)&lt;/script&gt; without [DONE]"));
    assert!(page.contains("<tr id=\"outcome-truncated\" class=\"failed\">"));
    assert!(page.contains("<tr id=\"outcome-completed\" class=\"ok\">"));
    assert!(page.contains("INTEGRITY FAILED"));
}

#[test]
fn an_empty_histogram_and_an_unwatched_daemon_are_said_not_drawn() {
    let page = report(&["relay"], false).html();
    let ids: Vec<String> = charts(&page).into_iter().map(|(id, _)| id).collect();
    assert!(!ids.contains(&"chart-relay".to_owned()), "{ids:?}");
    assert!(ids.contains(&"chart-handoff".to_owned()), "{ids:?}");
    assert!(
        !ids.iter().any(|id| id.starts_with("chart-daemon")),
        "{ids:?}"
    );
    assert!(ids.contains(&"chart-open-streams".to_owned()), "{ids:?}");
    assert!(page.contains("Relay latency: no samples"));
    assert!(page.contains("--daemon-pid"));
}

#[test]
fn events_per_second_divide_each_samples_events_by_its_span() {
    let mut t = Timeline::default();
    let mut r = Recorder::new(std::time::Duration::from_millis(100), 512);
    r.record(100, 1, 50, None);
    r.record(300, 1, 250, None);
    t.samples = r.timeline().samples.clone();
    assert_eq!(events_per_second(&t).points, [(0.1, 500.0), (0.3, 1000.0)]);
}
