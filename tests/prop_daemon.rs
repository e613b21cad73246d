//! `prop` against the reference daemon: the fixed-seed run `make check` relies on (the
//! committed regression cases first, then 200 generated ones), the regression file replayed
//! before anything is generated, and the command line's output and exit statuses.

mod suite_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use streamcheck::prop::daemon::{self, Case, Origin, PropConfig, PropReport, regressions, render};
use streamcheck::scenario::{DaemonCommand, MockOptions, Target};
use streamcheck::verdict::Strictness;

/// The seed of the run `make check` makes.
const SEED: u64 = 20_250_601;

const BIN: &str = env!("CARGO_BIN_EXE_streamcheck");

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn ref_daemon_cmd(fault: Option<&str>) -> String {
    let mut cmd = format!("{} ref-daemon --socket {{socket}}", shell_quote(BIN));
    if let Some(f) = fault {
        cmd.push_str(" --fault ");
        cmd.push_str(f);
    }
    cmd
}

fn ref_daemon(fault: Option<&str>) -> Target {
    Target::Command(DaemonCommand {
        socket: None,
        command: ref_daemon_cmd(fault),
        mock: MockOptions::default(),
        start_timeout: Duration::from_secs(20),
    })
}

fn committed_regressions() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(daemon::DEFAULT_REGRESSIONS)
}

fn explain(report: &PropReport, config: &PropConfig) -> String {
    let failure = report
        .failure
        .as_ref()
        .map(|f| render::failure(f, &config.target, config.strictness))
        .unwrap_or_default();
    format!("{failure}\n{}", render::summary(report))
}

/// A case the lossy-utf8 fault always fails: "é" cut between its two bytes.
fn split_character_case() -> Case {
    Case::from_json(
        r#"{"chunks":[{"atoms":[{"text":"é","escape":"raw","split":{"sel":0,"delay_ms":5}}],
        "cuts":[]}],"framing":{"bom":false,"space":true,"eol":"lf"},"ending":{"done":
        {"finish":"stop"}},"ending_cuts":[],"client":"read"}"#,
    )
    .unwrap()
}

#[test]
fn the_reference_daemon_passes_the_persisted_cases_and_200_generated_ones() {
    let committed = regressions::load(&committed_regressions()).unwrap();
    let mut config = PropConfig::new(ref_daemon(None));
    config.cases = 200;
    config.seed = SEED;
    config.strictness = Strictness::Strict;
    config.regressions = Some(committed_regressions());
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    assert!(report.failure.is_none(), "{}", explain(&report, &config));
    assert!(report.daemon_death.is_none(), "{:?}", report.daemon_death);
    assert_eq!(report.persisted, committed.len());
    assert_eq!(report.generated, 200);
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn persisted_cases_run_before_anything_is_generated() {
    let dir = std::env::temp_dir().join(format!("sc-prop-persisted-{}", std::process::id()));
    let file = dir.join("prop-test.txt");
    assert!(regressions::append(&file, &split_character_case(), "a split character").unwrap());

    let mut config = PropConfig::new(ref_daemon(Some("lossy-utf8")));
    config.cases = 50;
    config.regressions = Some(file.clone());
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    let failure = report.failure.as_ref().expect("the persisted case fails");
    assert_eq!(failure.origin, Origin::Persisted { line: 5 });
    assert_eq!(
        report.generated, 0,
        "nothing is generated after a persisted failure"
    );
    assert_eq!(failure.minimal.case, split_character_case());
    assert!(failure.shrink.is_none() && failure.persisted.is_none());
    assert_eq!(report.exit_code(), 1);

    let mut good = PropConfig::new(ref_daemon(None));
    good.cases = 10;
    good.regressions = Some(file);
    let report = daemon::run(&good, &mut std::io::sink()).unwrap();
    assert!(report.failure.is_none(), "{}", explain(&report, &good));
    assert_eq!((report.persisted, report.generated), (1, 10));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_command_passes_a_correct_daemon_and_prints_its_seed() {
    let out = Command::new(BIN)
        .args(["prop", "--daemon-cmd", &ref_daemon_cmd(None)])
        .args(["--cases", "20", "--seed", "5", "--no-regressions"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("prop: OK: 20 case(s)"), "{stdout}");
    assert!(stdout.contains("seed 5"), "{stdout}");
}

/// Shrinking prints one line per step only with --verbose; off a terminal, none without it.
#[test]
fn shrink_steps_are_printed_only_with_verbose() {
    let run = |verbose: bool| {
        let mut cmd = Command::new(BIN);
        cmd.args(["prop", "--daemon-cmd", &ref_daemon_cmd(Some("lossy-utf8"))])
            .args(["--cases", "40", "--seed", "7", "--no-regressions"])
            .args(["--max-shrink-time", "3"]);
        if verbose {
            cmd.arg("--verbose");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stdout.contains("shrunk from "), "{stdout}");
        stderr
    };
    let quiet = run(false);
    assert!(!quiet.contains("shrink step"), "{quiet}");
    assert!(quiet.contains("shrinking for at most 3 s"), "{quiet}");
    let verbose = run(true);
    assert!(verbose.contains("prop: shrink step "), "{verbose}");
}

#[test]
fn the_command_replays_a_failing_case_with_its_script_bytes_and_replay_line() {
    let out = Command::new(BIN)
        .args(["prop", "--daemon-cmd", &ref_daemon_cmd(Some("lossy-utf8"))])
        .args(["--replay", &split_character_case().to_json()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for needle in [
        "FAILED: the replayed case",
        "content [FAILED]",
        "minimal script: status 200, 2 write(s)",
        "\"content\":\"\\xc3\"",
        "write 2: after 5 ms, ",
        "\"\\xa9\"},\"finish_reason\"",
        "the daemon sent:\n  \"HTTP/1.1 200 OK\\r\\n",
        "\u{FFFD}",
        "replay:\n  streamcheck prop --daemon-cmd ",
        "--replay '{\"chunks\"",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in:\n{stdout}");
    }
}

#[test]
fn usage_errors_name_the_fix_and_exit_2() {
    let out = Command::new(BIN)
        .args(["prop", "--daemon-cmd", "my-daemon --listen here"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("{socket}"), "{stderr}");

    let out = Command::new(BIN)
        .args([
            "prop",
            "--daemon-cmd",
            "d --socket {socket}",
            "--replay",
            "{}",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--replay") && stderr.contains("JSON object"),
        "{stderr}"
    );
}

#[test]
fn a_case_the_daemon_does_nothing_with_is_reported_unresponsive_not_shrunk() {
    let dir = std::env::temp_dir().join(format!("streamcheck-prop-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let regressions = dir.join("regressions.txt");
    let mut config = PropConfig::new(ref_daemon(Some("silent")));
    config.cases = 4;
    config.seed = SEED;
    config.limits.timeout = Duration::from_secs(3);
    config.regressions = Some(regressions.clone());
    let started = std::time::Instant::now();
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    let took = started.elapsed();
    let text = explain(&report, &config);
    let failure = report.failure.as_ref().expect("the silent daemon fails");
    assert!(failure.unresponsive, "{text}");
    assert!(failure.shrink.is_none(), "not shrunk: {text}");
    assert_eq!(failure.reproduced, (0, 0), "not replayed: {text}");
    assert!(!regressions.exists(), "not persisted: {text}");
    assert!(text.contains("the daemon is unresponsive"), "{text}");
    // One deadline for the batch; shrinking and replays would add dozens.
    assert!(took < Duration::from_secs(30), "took {took:?}: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_prop_with_a_summary_and_no_daemon_left() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("streamcheck-prop-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "prop",
            "--daemon-cmd",
            &ref_daemon_cmd(None),
            "--mock-plain",
        ])
        .args(["--cases", "1000000", "--no-regressions"])
        .env("TMPDIR", &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The generated phase has started once this line is out.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("prop: running") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "prop ended early");
    }
    let pid = child.id() as i32;
    assert!(!suite_support::processes_under(&dir, pid).is_empty());
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            panic!("prop did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(
        stdout.contains("prop: interrupted by SIGTERM: "),
        "{stdout}"
    );
    assert!(
        !stdout.contains("FAILED"),
        "cut cases are not failures: {stdout}"
    );
    let left = suite_support::processes_under(&dir, pid);
    assert!(left.is_empty(), "daemon processes left running: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_daemon_that_dies_stops_the_run_with_its_death_as_the_finding_and_nothing_shrunk() {
    let mut config = PropConfig::new(ref_daemon(Some("exit-after-handoffs")));
    config.cases = 40;
    config.seed = SEED;
    config.regressions = None;
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    let death = report
        .daemon_death
        .as_ref()
        .expect("the death is the finding");
    assert_eq!(death.how, "exited with status 1");
    assert!(
        death
            .output_tail
            .as_deref()
            .unwrap_or_default()
            .contains("exiting after 5 handoffs"),
        "{death:?}"
    );
    assert!(
        report.failure.is_none(),
        "nothing shrunk against a dead daemon"
    );
    assert!(
        report.generated < 40,
        "the run stopped: {}",
        report.generated
    );
    let (origin, _, replay) = report.death_case.as_ref().expect("the case it died with");
    assert!(origin.starts_with("generated case "), "{origin}");
    assert!(replay.contains("--replay '"), "{replay}");
    let text = render::summary(&report);
    assert!(text.starts_with("prop: DAEMON DIED: the daemon"), "{text}");
    assert_eq!(report.exit_code(), 1);
}

/// `--daemon-cmd CMD --socket PATH`: a daemon whose socket path is fixed is started and waited
/// for at PATH; the summary names the command as run.
#[test]
fn a_daemon_with_a_fixed_socket_path_is_started_with_socket_beside_daemon_cmd() {
    let dir = std::env::temp_dir().join(format!("sc-prop-fixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("fixed.sock");
    let command = format!(
        "export FIXED_SOCKET={}; exec {} ref-daemon --socket \"$FIXED_SOCKET\"",
        shell_quote(&socket.display().to_string()),
        shell_quote(BIN)
    );
    let out = Command::new(BIN)
        .args(["prop", "--daemon-cmd", &command])
        .arg("--socket")
        .arg(&socket)
        .args(["--cases", "5", "--seed", "1", "--no-regressions"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("prop: OK: 5 case(s) run against `{command}`")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
