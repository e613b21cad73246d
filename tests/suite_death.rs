//! A daemon that dies during `run` (`ref-daemon --fault exit-after-handoffs`: it exits with
//! status 1 at its 6th handoff) is reported first, in every format, with its exit status and
//! the end of its output; the scenarios it failed say so, and the rest are not run.

mod suite_support;

use suite_support::{FAST, outcome, ref_daemon, streamcheck};

/// `run` over the whole catalog against a daemon that dies, in `format`: (exit code, stdout).
fn run_dying(format: &str) -> (Option<i32>, String) {
    let daemon = ref_daemon(Some("exit-after-handoffs"));
    let mut args = vec!["run", "--daemon-cmd", &daemon, "--format", format];
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert!(
        stderr.contains("exited with status 1"),
        "stderr names the death too: {stderr}"
    );
    (code, stdout)
}

#[test]
fn json_says_the_death_before_the_scenarios_and_attributes_failures_to_it() {
    let (code, out) = run_dying("json");
    assert_eq!(code, Some(1));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let death = &doc["daemon_death"];
    assert_eq!(death["how"], "exited with status 1", "{death}");
    let tail = death["output_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("exiting after 5 handoffs"), "{tail}");
    assert!(
        out.find("\"daemon_death\"") < out.find("\"scenarios\""),
        "the death comes first"
    );
    let scenarios = doc["scenarios"].as_array().unwrap();
    let attributed = scenarios
        .iter()
        .filter(|s| s["assertions"][0]["name"] == "daemon alive" && s["verdict"] == "FAILED");
    assert!(attributed.count() >= 1, "{out}");
    let skipped = scenarios
        .iter()
        .filter(|s| s["skipped"].is_string())
        .count();
    assert!(skipped > 30, "the rest is not run against a dead daemon");
}

#[test]
fn human_and_tap_say_it_before_the_first_failure() {
    let (_, human) = run_dying("human");
    let died = human.find("DAEMON DIED").expect("named");
    assert!(died < human.find("FAILED").unwrap_or(usize::MAX), "{human}");
    assert!(human.contains("exiting after 5 handoffs"), "{human}");

    let (_, tap) = run_dying("tap");
    let died = tap.find("# DAEMON DIED: the daemon").expect("named");
    assert!(died < tap.find("not ok").unwrap_or(usize::MAX), "{tap}");
}

#[test]
fn junit_opens_with_a_failed_daemon_testcase() {
    let (_, xml) = run_dying("junit");
    let first_suite = xml.find("<testsuite ").expect("a testsuite");
    assert!(
        xml[first_suite..].starts_with("<testsuite name=\"daemon\""),
        "{xml}"
    );
    assert!(xml.contains("exited with status 1"), "{xml}");
}

#[test]
fn a_daemon_given_by_pid_that_dies_is_reported_too() {
    let mock =
        streamcheck::mock::MockServer::start(streamcheck::mock::MockConfig::default()).unwrap();
    let dir = suite_support::tmp_path("death-by-pid");
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("d.sock");
    let mut daemon = std::process::Command::new(suite_support::BIN)
        .args(["ref-daemon", "--fault", "exit-after-handoffs", "--socket"])
        .arg(&socket)
        .env("OPENAI_API_BASE", mock.base_url())
        .env("OPENAI_API_KEY", "test")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < until,
            "the daemon did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = daemon.id().to_string();
    let (socket_arg, backend) = (socket.to_string_lossy().into_owned(), mock.base_url());
    let (code, out, _) = outcome(&streamcheck(&[
        "run",
        "--socket",
        &socket_arg,
        "--backend",
        &backend,
        "--daemon-pid",
        &pid,
        "--format",
        "json",
        "--timeout",
        "5",
    ]));
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let death = &doc["daemon_death"];
    assert_eq!(death["pid"].to_string(), pid, "{death}");
    assert!(
        death["how"]
            .as_str()
            .unwrap_or_default()
            .starts_with("exited")
    );
}
