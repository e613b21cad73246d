//! The integration scripts (`make test-<daemon>`) and the runner's `--daemon-cmd` glue they
//! rely on: every scenario runs against a daemon a script starts (8.3 unreachable_backend
//! included), a second instance that cannot start fails 8.3 by name, and a daemon whose socket
//! path is fixed can be started with `--daemon-cmd CMD --socket PATH`.
//!
//! The published daemons are not here: a stand-in that takes the Go daemon's flags and behaves
//! like it where it matters (a metrics listener on a fixed port unless `-metrics-addr ''`) runs
//! the reference daemon.

mod suite_support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use streamcheck::scenario::catalog;
use suite_support::{BIN, FAST, outcome, streamcheck, tmp_path};

/// The repository's root (the scripts live in `integration/`).
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A stand-in for the Go daemon: its flags (`-socket`, `-socket-mode`, `-backend`,
/// `-metrics-addr`), the reference daemon behind them, and its metrics listener on
/// 127.0.0.1:9090 unless `-metrics-addr ''` turns it off, held by a lock directory in `dir` so
/// that a second instance fails as the real one does (the port itself may be in use here).
fn fake_go_daemon(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("streaming-daemon");
    let script = format!(
        r#"#!/usr/bin/env bash
socket=/var/run/streaming-daemon.sock mode=0660 metrics=127.0.0.1:9090
while [[ $# -gt 0 ]]; do
    case "$1" in
        -socket) socket="$2"; shift 2 ;;
        -socket-mode) mode="$2"; shift 2 ;;
        -backend) [[ "$2" == openai ]] || {{ echo "backend $2 is not the OpenAI one"; exit 2; }}; shift 2 ;;
        -metrics-addr) metrics="$2"; shift 2 ;;
        *) echo "flag provided but not defined: $1"; exit 2 ;;
    esac
done
if [[ -n "$metrics" ]] && ! mkdir '{lock}' 2>/dev/null; then
    echo "metrics server: listen tcp $metrics: bind: address already in use"
    exit 1
fi
exec '{bin}' ref-daemon --socket "$socket" --socket-mode "$mode"
"#,
        lock = dir.join("metrics-port-taken").display(),
        bin = BIN,
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `make test`'s script with GO_DAEMON set to the stand-in: the reference daemon and the "Go"
/// one each run the whole catalog, none skipped, and the table shows their counts.
#[test]
fn make_test_runs_every_scenario_against_a_daemon_the_script_starts() {
    let dir = tmp_path("go-standin");
    let go = fake_go_daemon(&dir);
    let out = Command::new(format!("{ROOT}/integration/run_all.sh"))
        .env("STREAMCHECK", BIN)
        .env("GO_DAEMON", &go)
        .env("FORMAT", "tap")
        .env("NO_COLOR", "1")
        .env_remove("CATEGORY")
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let total = catalog().len();
    for daemon in ["ref", "go"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{daemon:<14} ")))
            .unwrap_or_else(|| panic!("no {daemon} row in:\n{stdout}"));
        assert!(row.contains(" OK "), "{row}");
        assert!(row.ends_with(" 0 FAILED, 0 skipped"), "{row}");
        let counted: usize = row
            .split([' ', ','])
            .filter_map(|w| w.parse::<usize>().ok())
            .sum();
        assert_eq!(counted, total, "{row}");
    }
    // 8.3 ran against both, as an `ok` line without a SKIP directive.
    let unreachable: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("8.3 unreachable_backend"))
        .collect();
    assert_eq!(unreachable.len(), 2, "{stdout}");
    for line in unreachable {
        assert!(
            line.starts_with("ok ") && !line.contains("# SKIP"),
            "{line}"
        );
    }
    assert!(stdout.contains("uring          not configured"), "{stdout}");
}

/// `make test FORMAT=html`: each daemon's HTML page and JSON report in REPORT_DIR, and the
/// matrix beside them linking each cell to the daemon's page; the table still has the counts.
#[test]
fn make_test_format_html_writes_each_daemons_page_and_the_matrix() {
    let dir = tmp_path("html-reports");
    let _ = std::fs::remove_dir_all(&dir);
    let go = fake_go_daemon(&tmp_path("go-standin-html"));
    let out = Command::new(format!("{ROOT}/integration/run_all.sh"))
        .env("STREAMCHECK", BIN)
        .env("GO_DAEMON", &go)
        .env("FORMAT", "html")
        .env("REPORT_DIR", &dir)
        .env("CATEGORY", "basic")
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for daemon in ["ref", "go"] {
        let page = std::fs::read_to_string(dir.join(format!("{daemon}.html"))).unwrap();
        assert!(
            page.contains(r#"<details class="scenario ok" id="1.1">"#),
            "{page}"
        );
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{daemon}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json["counts"]["ok"], 2, "{json}");
        let row = format!("{daemon:<14} OK ");
        assert!(stdout.contains(&row), "{row:?} missing from:\n{stdout}");
    }
    let matrix = std::fs::read_to_string(dir.join("matrix.html")).unwrap();
    for link in ["ref.html#1.1", "go.html#1.2"] {
        assert!(
            matrix.contains(&format!("href=\"{link}\"")),
            "{link} missing: {matrix}"
        );
    }
    assert!(stdout.contains("matrix: "), "{stdout}");
}

/// A second instance that cannot start (here: the stand-in's metrics port, which the script
/// would have turned off) fails 8.3 and says why, with the instance's output.
#[test]
fn a_second_instance_that_cannot_start_fails_8_3_by_name() {
    let dir = tmp_path("go-standin-metrics-on");
    let go = fake_go_daemon(&dir);
    let cmd = format!("'{}' -socket {{socket}} -backend openai", go.display());
    let mut args = vec!["run", "--daemon-cmd", &cmd, "--scenario", "8.3"];
    args.extend(["--format", "json"]);
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let r = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "8.3")
        .unwrap();
    assert_eq!(r["verdict"], "FAILED", "{r}");
    assert!(r["skipped"].is_null(), "{r}");
    let message = r.to_string();
    for says in [
        "a second instance of the daemon",
        "could not start",
        "listener on a fixed port",
        "bind: address already in use",
    ] {
        assert!(message.contains(says), "{says:?} missing from {message}");
    }
}

/// `--daemon-cmd CMD --socket PATH`: a command without `{socket}` starts, a stale socket file
/// already at PATH is not taken for the daemon's, the report names the command as run, and
/// 8.3 says why it cannot start a second instance.
#[test]
fn a_daemon_with_a_fixed_socket_path_runs_with_socket_beside_daemon_cmd() {
    let socket = tmp_path("fixed-path.sock");
    let _ = std::fs::remove_file(&socket);
    // A stale socket file: bound, then nobody listening.
    drop(UnixListener::bind(&socket).unwrap());
    let cmd = format!(
        "export FIXED_SOCKET='{}'; exec {BIN} ref-daemon --socket \"$FIXED_SOCKET\"",
        socket.display()
    );
    let socket_arg = socket.display().to_string();
    let mut args = vec!["run", "--daemon-cmd", &cmd, "--socket", &socket_arg];
    args.extend(["--scenario", "1.1", "--scenario", "8.3", "--format", "json"]);
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let by_id = |id: &str| {
        doc["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1.1")["verdict"], "OK", "{stdout}");
    let skipped = by_id("8.3")["skipped"].as_str().unwrap().to_owned();
    assert!(
        skipped.contains("socket path is fixed") && skipped.contains("put {socket}"),
        "{skipped}"
    );
    assert_eq!(doc["daemon"], cmd.as_str(), "the command as run");
    assert!(
        !socket.exists(),
        "the daemon's socket is removed when it stops"
    );
}

/// The report names a `{socket}` command as run: the template with the socket path in place.
#[test]
fn the_report_names_the_daemon_by_the_command_as_run() {
    let template = format!("exec {BIN} ref-daemon --socket {{socket}}");
    let mut args = vec!["run", "--daemon-cmd", &template, "--scenario", "1.1"];
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(" against "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    assert!(!line.contains("{socket}"), "{line}");
    assert!(
        line.contains(&format!("exec {BIN} ref-daemon --socket '")) && line.contains(".sock'"),
        "{line}"
    );
}
