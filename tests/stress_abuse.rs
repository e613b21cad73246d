//! `stress` against a daemon that never takes its handoffs: the streams are named as handoffs
//! never taken (on the first streams, which are diagnosed), and no handoff latency is counted
//! for a handoff nobody received.

mod stress_support;

use stress_support::{ref_daemon, stress};

#[test]
fn handoffs_a_daemon_never_reads_are_named_and_not_counted_as_latency() {
    let daemon = ref_daemon(Some("never-read-handoff"));
    let r = stress(&[
        "--daemon-cmd",
        &daemon,
        "--connections",
        "20",
        "--concurrency",
        "20",
        "--timeout",
        "3s",
        "--settle",
        "1s",
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.outcomes(), r.stderr);
    assert_eq!(r.count("not_taken"), 20, "{}", r.outcomes());
    let example = r.examples("not_taken")[0]["detail"].to_string();
    assert!(
        example.contains("accepted the connection but never read the handoff"),
        "{example}"
    );
    assert_eq!(
        r.latency("handoff")["count"].as_u64().unwrap_or(0),
        0,
        "{}",
        r.latency("handoff")
    );
}
