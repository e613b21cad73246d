//! `streamcheck list`, `run` against processes started outside the runner (an external mock
//! reached over HTTPS, a daemon given by --daemon-pid), and every way a run can be refused:
//! exit status 2 with a message that names the cause and the fix.

mod suite_support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use streamcheck::mock::{MockConfig, MockServer};
use streamcheck::scenario::catalog;
use suite_support::{BIN, FAST, outcome, ref_daemon, streamcheck, tmp_path};

#[test]
fn list_prints_the_catalog_by_category_in_both_formats() {
    let (code, text, _) = outcome(&streamcheck(&["list"]));
    assert_eq!(code, Some(0));
    for s in catalog() {
        assert!(text.contains(s.name), "{} missing from:\n{text}", s.name);
    }
    assert!(text.contains("12 upstream-sse"), "{text}");
    assert!(text.contains(&format!("{} scenarios in 12 categories", catalog().len())));
    let (code, json, _) = outcome(&streamcheck(&["list", "--format", "json"]));
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = doc["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["scenarios"].as_array().unwrap())
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, catalog().iter().map(|s| s.id).collect::<Vec<_>>());
}

/// Runs `streamcheck ARGS` and expects exit status 2 with `needle` on stderr.
fn refused(args: &[&str], needle: &str) {
    let (code, _, stderr) = outcome(&streamcheck(args));
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in:\n{stderr}"
    );
}

#[test]
fn bad_flag_combinations_are_usage_errors() {
    refused(&["run"], "--socket");
    refused(&["run", "--socket", "/tmp/x.sock"], "--backend");
    refused(
        &[
            "run",
            "--daemon-cmd",
            "d {socket}",
            "--backend",
            "http://127.0.0.1:1/v1",
        ],
        "cannot be used with",
    );
    refused(
        &[
            "run",
            "--socket",
            "/tmp/x",
            "--backend",
            "http://h/v1",
            "--chunk-delay-ms",
            "5",
        ],
        "--daemon-cmd",
    );
    refused(
        &["run", "--daemon-cmd", "d {socket}", "--format", "xml"],
        "xml",
    );
    refused(
        &[
            "run",
            "--daemon-cmd",
            "d {socket}",
            "--category",
            "nonsense",
        ],
        "unknown category `nonsense`; categories: basic, unicode",
    );
    refused(
        &["run", "--daemon-cmd", "d {socket}", "--scenario", "9.99"],
        "streamcheck list",
    );
    refused(
        &["run", "--daemon-cmd", "d {socket}", "--jobs", "0"],
        "--jobs",
    );
    refused(
        &["run", "--daemon-cmd", "d {socket}", "--timeout", "0"],
        "--timeout",
    );
    refused(
        &["run", "--daemon-cmd", "my-daemon"],
        "put {socket} where its socket path goes, e.g. --daemon-cmd 'my-daemon --socket \
         {socket}', or give the path it creates with --socket PATH",
    );
    refused(
        &[
            "run",
            "--socket",
            "/tmp/x.sock",
            "--backend",
            "ftp://127.0.0.1/v1",
        ],
        "http:// or https://",
    );
}

#[test]
fn environment_problems_name_the_cause() {
    // Nothing listens on port 1 of loopback.
    refused(
        &[
            "run",
            "--socket",
            "/tmp/x.sock",
            "--backend",
            "https://127.0.0.1:1/v1",
        ],
        "cannot be reached",
    );
    let mock = MockServer::start(MockConfig::default()).unwrap();
    let missing = tmp_path("no-daemon-here.sock");
    let missing = missing.to_string_lossy();
    refused(
        &["run", "--socket", &missing, "--backend", &mock.base_url()],
        "does not exist (ENOENT",
    );
    refused(
        &[
            "run",
            "--daemon-cmd",
            "echo 'no key configured' >&2; exit 3 # {socket}",
        ],
        "no key configured",
    );
    let seqpacket = ref_daemon(None);
    refused(
        &[
            "run",
            "--daemon-cmd",
            &seqpacket,
            "--socket-type",
            "stream",
            "--category",
            "basic",
        ],
        "listens as SOCK_SEQPACKET",
    );
}

/// Kills the child by its PID when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &std::path::Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while !std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_daemon_is_tested_through_an_external_tls_mock() {
    let mut mock = Reaped(
        Command::new(BIN)
            .args([
                "mock-api",
                "--tls",
                "--listen",
                "127.0.0.1:0",
                "--chunk-delay-ms",
                "2",
                "--quiet",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The reader lives as long as the mock: it prints more lines, and a closed pipe ends it.
    let mut mock_out = BufReader::new(mock.0.stdout.take().unwrap());
    let mut line = String::new();
    mock_out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("url:").unwrap().trim().to_owned();
    let socket = tmp_path("external.sock");
    let _ = std::fs::remove_file(&socket);
    let daemon = Reaped(
        Command::new(BIN)
            .args(["ref-daemon", "--socket"])
            .arg(&socket)
            .env("OPENAI_API_BASE", &url)
            .env("OPENAI_API_KEY", "k")
            .env("OPENAI_INSECURE_SSL", "true")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_socket(&socket);
    let pid = daemon.0.id().to_string();
    let socket_text = socket.to_string_lossy();
    let args = [
        "run",
        "--socket",
        &socket_text,
        "--backend",
        &url,
        "--daemon-pid",
        &pid,
        "--daemon-name",
        "ref (external)",
        "--format",
        "json",
        "--timeout",
        "5",
        "--category",
        "basic",
        "--scenario",
        "slow_reader",
        "--scenario",
        "concurrent_streams",
        "--scenario",
        "unreachable_backend",
        "--scenario",
        "prompt_escapes",
    ];
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["daemon"], "ref (external)");
    let by_name = |name: &str| -> &Value {
        doc["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
    };
    let unreachable = by_name("unreachable_backend");
    assert!(
        unreachable["skipped"]
            .as_str()
            .unwrap()
            .contains("needs --daemon-cmd")
    );
    // With the PID given, the daemon's sockets are counted.
    let released = &by_name("concurrent_streams")["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "client sockets released")
        .unwrap()["verdict"];
    assert_eq!(released, "OK");
    // A remote mock takes the slow reader's multi-megabyte script: the scenario runs in full.
    let slow = by_name("slow_reader");
    assert_eq!(slow["verdict"], "OK", "{slow}");
    assert_eq!(doc["counts"]["failed"], 0);
    drop((mock, mock_out));
}

#[test]
fn a_daemon_that_dies_during_the_run_fails_it_and_shows_its_output() {
    // The daemon runs in the background of a shell that kills it after half a second, long
    // before the selected scenarios are done (the slow reader alone pauses for 2 s).
    let cmd = format!(
        "{BIN} ref-daemon --socket {{socket}} & pid=$!; sleep 0.5; echo 'about to crash' >&2; \
         kill -9 $pid"
    );
    let mut args = vec![
        "run",
        "--daemon-cmd",
        &cmd,
        "--jobs",
        "1",
        "--category",
        "client",
        "--category",
        "splits",
    ];
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    // The shell (the process streamcheck started) exits 0 once it has killed its daemon.
    assert!(stderr.contains(") exited with status 0 while "), "{stderr}");
    assert!(
        stdout.contains("DAEMON DIED"),
        "said in the report too: {stdout}"
    );
    assert!(
        stderr.contains("about to crash"),
        "the log tail is shown: {stderr}"
    );
    assert!(
        stdout.contains("skipped"),
        "later scenarios are skipped: {stdout}"
    );
}

#[test]
fn a_daemon_listening_as_a_stream_socket_is_reported_and_still_tested() {
    let cmd = ref_daemon(Some("stream-socket"));
    let mut args = vec![
        "run",
        "--daemon-cmd",
        &cmd,
        "--category",
        "basic",
        "--scenario",
        "7.7",
    ];
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("running the scenarios over SOCK_STREAM"),
        "{stderr}"
    );
    assert!(
        stdout.contains("2 OK, 0 INFORMATIONAL, 0 NON-STRICT, 1 FAILED"),
        "{stdout}"
    );
}

/// `report merge` refuses what it cannot merge, naming the file and the fix: a missing file,
/// a file that is not a JSON report, two reports that would be one column.
#[test]
fn report_merge_names_a_report_it_cannot_use() {
    let missing = tmp_path("missing.json");
    let missing = missing.to_str().unwrap();
    let (code, _, stderr) = outcome(&streamcheck(&["report", "merge", missing]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("cannot read {missing}")),
        "{stderr}"
    );
    let other = tmp_path("other.json");
    std::fs::write(&other, r#"{"schema_version": 1}"#).unwrap();
    let other = other.to_str().unwrap();
    let (code, _, stderr) = outcome(&streamcheck(&["report", "merge", other]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("schema_version is 1"), "{stderr}");
    assert!(stderr.contains("--format json"), "{stderr}");
    let run = suite_support::run_ref(None, &["1.1"], false);
    let json = streamcheck::report::json::to_value(&run.summary)
        .unwrap()
        .to_string();
    let dir = tmp_path("merge-twice");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    let (a, b) = (dir.join("a/ref.json"), dir.join("b/ref.json"));
    std::fs::write(&a, &json).unwrap();
    std::fs::write(&b, &json).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (code, _, stderr) = outcome(&streamcheck(&["report", "merge", a, b]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("both be the column `ref`"), "{stderr}");
    let (code, stdout, stderr) = outcome(&streamcheck(&["report", "merge", a]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(r#"href="ref.html#1.1""#), "{stdout}");
}
