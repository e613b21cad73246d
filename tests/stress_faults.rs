//! `streamcheck stress` at a few hundred connections against the reference daemon: the correct
//! daemon keeps integrity, and each fault mode a stress run exists for is caught (cross-talk,
//! a leaked fd per connection, one slow reader stalling every stream).
//!
//! No timing thresholds: deadlines are generous for streams of a tenth of a second, and the
//! head-of-line case is built so that a blocked daemon misses them by seconds.

mod stress_support;

use stress_support::{ref_daemon, stress};

/// A few hundred short streams (18 chunks 5 ms apart), a hundred at a time.
const SMALL: &[&str] = &[
    "--connections",
    "300",
    "--concurrency",
    "100",
    "--chunk-delay-ms",
    "5",
    "--timeout",
    "30s",
    "--settle",
    "5s",
];

/// Head-of-line set-up: connection 0 is a slow reader that stops reading a large answer for
/// 8 s while short streams keep starting for 4 s, each with 3 s to finish. A daemon that
/// blocks on the slow client stalls them past their deadline; a correct one finishes each in
/// a fraction of a second.
const HEAD_OF_LINE: &[&str] = &[
    "--duration",
    "4s",
    "--concurrency",
    "20",
    "--slow-readers",
    "0.0001",
    "--slow-pause",
    "8s",
    "--timeout",
    "3s",
    "--chunk-delay-ms",
    "5",
    "--mock-plain",
    "--settle",
    "5s",
];

fn with(base: &[&str], more: &[&str]) -> Vec<String> {
    base.iter().chain(more).map(|s| s.to_string()).collect()
}

fn run(daemon: &str, args: Vec<String>) -> stress_support::Run {
    let mut all = vec!["--daemon-cmd".to_owned(), daemon.to_owned()];
    all.extend(args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    stress(&refs)
}

#[test]
fn the_correct_daemon_keeps_integrity_with_aborting_clients() {
    let r = run(&ref_daemon(None), with(SMALL, &["--abort-rate", "0.2"]));
    assert_eq!(r.code, 0, "{}\n{}", r.outcomes(), r.stderr);
    assert!(r.held());
    assert_eq!(
        r.count("completed") + r.count("aborted"),
        300,
        "{}",
        r.outcomes()
    );
    assert_eq!(r.count("aborted"), 60, "a fifth abort: {}", r.outcomes());
    assert_eq!(r.report["integrity"]["leak"]["verdict"], "none");
    assert_eq!(r.report["daemon"]["client_sockets_held"], 0);
    // Every completed stream's events were timed against the mock's writes.
    let relay = r.latency("relay");
    assert!(relay["count"].as_u64().unwrap() >= 240 * 19, "{relay}");
    assert_eq!(r.latency("total")["count"], r.count("completed"));
    assert_eq!(r.latency("schedule_lag")["count"], 300);
    assert!(
        !r.latency("relay")["hdr_base64"]
            .as_str()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn crosstalk_is_caught_and_attributed() {
    let r = run(&ref_daemon(Some("crosstalk")), with(SMALL, &[]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.held());
    assert!(r.count("crosstalk") > 0, "{}", r.outcomes());
    for e in r.examples("crosstalk") {
        let detail = e["detail"].as_str().unwrap();
        let own = e["connection"].as_u64().unwrap();
        assert!(
            detail.contains("received content of connection"),
            "{detail}"
        );
        assert!(!detail.contains(&format!("connection {own} ")), "{detail}");
    }
    // The streams robbed of their output show it too.
    assert!(
        r.count("zero_byte_close") + r.count("bad_response") > 0,
        "{}",
        r.outcomes()
    );
    assert!(r.count("completed") < 300);
}

#[test]
fn a_leaked_fd_per_connection_is_caught() {
    let r = run(&ref_daemon(Some("leak-fd")), with(SMALL, &[]));
    // Every stream looks right on the wire: only the daemon's fds tell.
    assert_eq!(r.count("completed"), 300, "{}", r.outcomes());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.held());
    assert_eq!(r.report["integrity"]["leak"]["verdict"], "leak");
    assert_eq!(r.report["daemon"]["client_sockets_held"], 300);
    let reason = r.report["integrity"]["leak"]["reason"].as_str().unwrap();
    assert!(reason.contains("300 client sockets"), "{reason}");
}

#[test]
fn the_correct_daemon_is_not_held_up_by_a_slow_reader() {
    let r = run(&ref_daemon(None), with(HEAD_OF_LINE, &[]));
    assert_eq!(r.code, 0, "{}\n{}", r.outcomes(), r.stderr);
    assert_eq!(r.count("timeout"), 0, "{}", r.outcomes());
    // The slow reader read its whole answer after the pause.
    assert!(r.report["run"]["bytes"].as_u64().unwrap() > 8 << 20);
}

#[test]
fn one_slow_reader_stalling_every_stream_is_caught() {
    let r = run(
        &ref_daemon(Some("head-of-line-blocking")),
        with(HEAD_OF_LINE, &[]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.count("timeout") > 0, "{}", r.outcomes());
    // The streams that timed out are the quick ones, not the slow reader (connection 0).
    let stalled: Vec<u64> = r
        .examples("timeout")
        .iter()
        .map(|e| e["connection"].as_u64().unwrap())
        .collect();
    assert!(stalled.iter().any(|&c| c != 0), "{stalled:?}");
}
