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
    assert_eq!(r.report["limits"]["daemon_fd_limit_reached"], false);
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

/// Checks a run against a daemon that died after 5 handoffs: the death first, the streams it
/// broke counted as its doing, nothing started after it.
fn assert_death_reported(r: &stress_support::Run, with_status: bool) {
    assert_eq!(r.code, 1, "{}\n{}", r.outcomes(), r.stderr);
    let death = &r.report["daemon_death"];
    if with_status {
        assert_eq!(death["how"], "exited with status 1", "{death}");
        let tail = death["output_tail"].as_str().unwrap_or_default();
        assert!(tail.contains("exiting after 5 handoffs"), "{tail}");
    } else {
        assert!(
            death["how"]
                .as_str()
                .unwrap_or_default()
                .starts_with("exited")
        );
    }
    assert!(r.count("daemon_died") >= 1, "{}", r.outcomes());
    assert_eq!(r.count("zero_byte_close"), 0, "{}", r.outcomes());
    assert!(
        r.report["run"]["started"].as_u64().unwrap_or(0) < 400,
        "nothing is started against a dead daemon"
    );
}

const LOAD: &[&str] = &[
    "--connections",
    "400",
    "--concurrency",
    "20",
    "--timeout",
    "5s",
    "--settle",
    "1s",
];

#[test]
fn a_daemon_started_for_the_run_that_dies_is_named_first_and_blamed() {
    let daemon = ref_daemon(Some("exit-after-handoffs"));
    let mut args = vec!["--daemon-cmd", &daemon];
    args.extend(LOAD);
    let r = stress(&args);
    assert_death_reported(&r, true);

    let human = std::process::Command::new(stress_support::BIN)
        .arg("stress")
        .args(&args)
        .args(["--quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.starts_with("streamcheck stress: DAEMON DIED: the daemon"),
        "{text}"
    );
}

#[test]
fn a_daemon_given_by_pid_that_dies_is_named_and_blamed() {
    let dir = std::env::temp_dir().join(format!("sc-stress-death-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mock =
        streamcheck::mock::MockServer::start(streamcheck::mock::MockConfig::default()).unwrap();
    let daemon =
        stress_support::Daemon::start_with(&dir, &mock.base_url(), Some("exit-after-handoffs"));
    let (socket, pid, backend) = (daemon.socket().to_owned(), daemon.pid(), mock.base_url());
    let mut args = vec![
        "--socket",
        &socket,
        "--backend",
        &backend,
        "--daemon-pid",
        &pid,
    ];
    args.extend(LOAD);
    let r = stress(&args);
    assert_death_reported(&r, false);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_daemon_at_its_open_file_limit_is_named_as_the_limit_of_the_run() {
    // The reference daemon holds about two fds per stream (client, upstream connection): 100
    // streams need far more than 64.
    let log = std::env::temp_dir().join(format!("sc-fd-limit-{}.log", std::process::id()));
    let daemon = format!(
        "ulimit -n 64; exec {} 2>'{}'",
        ref_daemon(None),
        log.display()
    );
    let r = stress(&[
        "--daemon-cmd",
        &daemon,
        "--connections",
        "200",
        "--concurrency",
        "100",
        "--timeout",
        "10s",
        "--settle",
        "1s",
    ]);
    let limits = &r.report["limits"];
    assert_eq!(limits["daemon_fd_limit"], 64, "{limits}");
    assert_eq!(limits["daemon_fd_limit_reached"], true, "{limits}");
    // A client fd the kernel could not install is named for what it is.
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(said.contains("out of file descriptors ("), "{said}");
    assert!(!said.contains("more fds than expected"), "{said}");
}
