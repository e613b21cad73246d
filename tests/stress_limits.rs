//! What stops a run: the client's open-file limit and the daemon's accept backlog are named
//! with the number of streams open when they were hit; SIGINT or SIGTERM ends the run with a report.
//! What bounds it: the loopback pairs are spread past one address's port range (planned here
//! with a narrow range, `STREAMCHECK_PORT_RANGE`), and the report names the client's ceiling.

mod stress_support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use streamcheck::mock::{MockConfig, MockServer};
use streamcheck::pattern::MockSettings;
use stress_support::{BIN, Daemon, ref_daemon, stress};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sc-stress-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_client_fd_limit_stops_the_run_and_is_named() {
    let dir = temp_dir("fds");
    let mock = MockServer::start(MockConfig {
        settings: MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(20),
        },
        ..MockConfig::default()
    })
    .unwrap();
    let daemon = Daemon::start(&dir, &mock.base_url());
    // The client alone gets a hard limit of 64 open files: it cannot hold 300 streams.
    let script = format!(
        "ulimit -Sn 64 && ulimit -Hn 64 && exec '{BIN}' stress --socket '{}' --backend '{}' -n 300 -c 300 \
         --format json --quiet --settle 0",
        daemon.socket(),
        mock.base_url()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(2),
        "a client limit is an environment error"
    );
    let hit = &report["limits"]["stopped_by"];
    assert_eq!(hit["kind"], "fds", "{report}");
    let open = hit["open_streams"].as_u64().unwrap();
    assert!(open > 0 && open < 64, "{hit}");
    assert!(hit["detail"].as_str().unwrap().contains("ulimit"), "{hit}");
    assert_eq!(report["limits"]["fd_limit"], 64);
    // The report knew beforehand: the ceiling is the open-file limit's, below what was asked.
    let ceiling = &report["limits"]["ceiling"];
    assert_eq!(ceiling["bound_by"], "fds", "{ceiling}");
    assert!(ceiling["streams"].as_u64().unwrap() < 64, "{ceiling}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("asked for 300 concurrent streams"),
        "{notes}"
    );
    // What was handed off was judged, and the daemon is not blamed for the client's limit.
    assert_eq!(report["integrity"]["held"], true, "{}", report["integrity"]);
    assert!(report["run"]["started"].as_u64().unwrap() < 300);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_accept_backlog_fails_handoffs_and_is_named() {
    // A "daemon" that listens with a backlog of 2 and never accepts.
    let dir = temp_dir("backlog");
    let path = dir.join("d.sock");
    let listener = net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
    net::listen(&listener, 2).unwrap();
    let r = stress(&[
        "--socket",
        path.to_str().unwrap(),
        "--no-upstream",
        "-n",
        "20",
        "-c",
        "20",
        "--timeout",
        "1s",
        "--settle",
        "0",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.report["limits"]["stopped_by"], serde_json::Value::Null);
    let hit = &r.report["limits"]["daemon_backlog"];
    assert_eq!(hit["kind"], "daemon_backlog", "{}", r.report);
    assert!(hit["detail"].as_str().unwrap().contains("backlog"), "{hit}");
    let failed = r.count("handoff_failed");
    assert!(failed > 0, "{}", r.outcomes());
    assert_eq!(r.report["limits"]["backlog_full"], failed);
    // The ones the kernel queued were handed off and never accepted, and are named so.
    assert_eq!(failed + r.count("not_taken"), 20, "{}", r.outcomes());
    let detail = r.examples("not_taken")[0]["detail"].to_string();
    assert!(detail.contains("never accepted the connection"), "{detail}");
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_stops_the_run_and_still_reports() {
    interrupted_by(rustix::process::Signal::INT, 130);
}

#[test]
fn sigterm_stops_the_run_and_still_reports() {
    interrupted_by(rustix::process::Signal::TERM, 143);
}

/// `signal` to a running stress run: its streams are closed, the report still comes, and the
/// exit status is `code` (128 + the signal's number).
fn interrupted_by(signal: rustix::process::Signal, code: i32) {
    let dir = temp_dir(&format!("signal-{code}"));
    // Slow answers, so that streams are open when the signal comes.
    let mock = MockServer::start(MockConfig {
        settings: MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(500),
        },
        ..MockConfig::default()
    })
    .unwrap();
    let socket = dir.join("d.sock");
    let mut daemon = Command::new(BIN)
        .args(["ref-daemon", "--socket"])
        .arg(&socket)
        .env("OPENAI_API_BASE", mock.base_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < until, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = Command::new(BIN)
        .args(["stress", "--socket"])
        .arg(&socket)
        .args(["--backend", &mock.base_url(), "-n", "20", "-c", "20"])
        .args(["--format", "json", "--quiet", "--settle", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the upstream sees requests, the run is in its loop.
    while mock.all_requests().is_empty() {
        assert!(Instant::now() < until, "no stream reached the mock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(run.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    let out = run.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["run"]["interrupted"], true);
    let interrupted = report["integrity"]["outcomes"]["interrupted"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(interrupted > 0, "{}", report["integrity"]);
    assert_eq!(report["run"]["judged"], report["run"]["started"]);
    // Streams cut by the signal are not failures; the status says the run was interrupted.
    assert_eq!(out.status.code(), Some(code), "{}", report["integrity"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `streamcheck stress ARGS --format json --quiet` planning its pairs with `ports` as the port
/// range: its exit code, report and stderr.
fn stress_with_port_range(ports: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(BIN)
        .env("STREAMCHECK_PORT_RANGE", ports)
        .arg("stress")
        .args(args)
        .args(["--format", "json", "--quiet"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), report, stderr)
}

#[test]
fn more_streams_than_one_addresss_port_range_are_held_at_once() {
    // A range of 400 ports allows 400 pairs from one address; 1,200 streams of 3.6 s are all
    // open at once, their pairs from four addresses (300 planned on each).
    let daemon = ref_daemon(None);
    let args = [
        "--daemon-cmd",
        &daemon,
        "-n",
        "1200",
        "-c",
        "1200",
        "--chunk-delay-ms",
        "200",
        "--mock-plain",
        "--settle",
        "10s",
    ];
    let (code, report, stderr) = stress_with_port_range("40000-40399", &args);
    let outcomes = &report["integrity"]["outcomes"];
    assert_eq!(code, 0, "{outcomes}\n{stderr}");
    assert_eq!(outcomes["completed"]["count"], 1200, "{outcomes}");
    assert_eq!(report["run"]["peak_open"], 1200, "{}", report["run"]);
    let limits = &report["limits"];
    assert_eq!(limits["pair_addresses"], 4, "{limits}");
    assert_eq!(limits["port_range"]["ports"], 400, "{limits}");
    assert_eq!(limits["port_range"]["from"], "STREAMCHECK_PORT_RANGE");
    assert_eq!(limits["ceiling"]["bound_by"], "ephemeral_ports", "{limits}");
    assert_eq!(limits["ceiling"]["streams"], 1600, "{limits}");
    assert_eq!(limits["stopped_by"], serde_json::Value::Null);
    // The daemon's client sockets are found by the listener, whichever address a pair came from.
    assert_eq!(
        report["daemon"]["client_sockets_held"], 0,
        "{}",
        report["daemon"]
    );
    assert_eq!(report["integrity"]["leak"]["verdict"], "none");
}

#[test]
fn client_sockets_leaked_from_spread_pairs_are_all_found() {
    let daemon = ref_daemon(Some("leak-fd"));
    let args = [
        "--daemon-cmd",
        &daemon,
        "-n",
        "300",
        "-c",
        "300",
        "--chunk-delay-ms",
        "5",
        "--mock-plain",
        "--settle",
        "2s",
    ];
    let (code, report, stderr) = stress_with_port_range("40000-40099", &args);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        report["limits"]["pair_addresses"], 4,
        "{}",
        report["limits"]
    );
    assert_eq!(report["integrity"]["outcomes"]["completed"]["count"], 300);
    assert_eq!(
        report["daemon"]["client_sockets_held"], 300,
        "{}",
        report["daemon"]
    );
    assert_eq!(report["integrity"]["leak"]["verdict"], "leak");
}

#[test]
fn a_malformed_port_range_setting_is_a_usage_error() {
    let (code, _, stderr) = stress_with_port_range(
        "40999-40000",
        &["--socket", "/nonexistent/d.sock", "--no-upstream"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("STREAMCHECK_PORT_RANGE must be"),
        "{stderr}"
    );
}

/// Against the kernel's own limit: in a private network namespace whose port range is 400
/// ports, a run spread over source addresses holds 1,200 streams at once, and one planned for
/// a single address stops short with the error naming the range and the fix. Needs
/// unprivileged user and network namespaces (`unshare -rn`), which many CI runners forbid:
/// run with `cargo test --test stress_limits -- --ignored`.
#[test]
#[ignore = "needs unshare -rn (unprivileged user and network namespaces)"]
fn the_kernels_own_port_range_is_passed_by_spreading() {
    let dir = temp_dir("netns");
    let script = format!(
        "set -e; ip link set lo up; echo '40000 40399' > /proc/sys/net/ipv4/ip_local_port_range; \
         run() {{ '{BIN}' stress --daemon-cmd \"{daemon}\" -n 1200 -c 1200 --chunk-delay-ms 200 \
         --settle 5s --quiet --format json > \"$1\" || true; }}; \
         run '{spread}'; STREAMCHECK_PORT_RANGE=32768-60999 run '{one}'",
        daemon = ref_daemon(None),
        spread = dir.join("spread.json").display(),
        one = dir.join("one.json").display(),
    );
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let spread = read("spread.json");
    assert_eq!(spread["run"]["peak_open"], 1200, "{}", spread["run"]);
    assert_eq!(spread["limits"]["pair_addresses"], 4);
    assert_eq!(spread["limits"]["port_range"]["from"], "system");
    assert_eq!(spread["limits"]["stopped_by"], serde_json::Value::Null);
    // The daemon's own upstream connections share the 400 ports (to one upstream address): the
    // streams it could not connect upstream it answers 502. Nothing else fails.
    let outcomes = spread["integrity"]["outcomes"].as_object().unwrap();
    for (outcome, tally) in outcomes {
        match outcome.as_str() {
            "completed" => {}
            "bad_response" => assert!(tally.to_string().contains("status 502"), "{tally}"),
            _ => panic!("{outcome}: {tally}"),
        }
    }
    let one = read("one.json");
    let hit = &one["limits"]["stopped_by"];
    assert_eq!(hit["kind"], "ephemeral_ports", "{}", one["limits"]);
    assert!(hit["open_streams"].as_u64().unwrap() < 400, "{hit}");
    let detail = hit["detail"].as_str().unwrap();
    assert!(
        detail.contains("EADDRNOTAVAIL") && detail.contains("40000-40399"),
        "{detail}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
