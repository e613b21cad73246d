//! `prop::daemon::Session`, what the `daemon` fuzz target runs its inputs through: one daemon and
//! one mock serve every case, each case one handoff judged as `prop` judges it.

use std::time::Duration;

use streamcheck::prop::daemon::{Case, PropConfig, Session};
use streamcheck::scenario::{DaemonCommand, MockOptions, Target};

fn session(fault: Option<&str>) -> Session {
    let mut command = format!(
        "'{}' ref-daemon --socket {{socket}}",
        env!("CARGO_BIN_EXE_streamcheck")
    );
    if let Some(f) = fault {
        command.push_str(&format!(" --fault {f}"));
    }
    let config = PropConfig::new(Target::Command(DaemonCommand {
        socket: None,
        command,
        mock: MockOptions {
            tls: false,
            ..MockOptions::default()
        },
        start_timeout: Duration::from_secs(20),
    }));
    Session::start(&config).expect("the reference daemon starts")
}

/// A two-byte character split across two writes 1 ms apart, then `[DONE]`.
fn split_character() -> Case {
    Case::from_json(
        r#"{"chunks":[{"atoms":[{"text":"é","escape":"raw","split":{"sel":0,"delay_ms":1}}],
        "cuts":[]}],"framing":{"bom":false,"space":true,"eol":"lf"},"ending":{"done":{"finish":
        "stop"}},"ending_cuts":[],"client":"read"}"#,
    )
    .unwrap()
}

#[test]
fn one_daemon_serves_every_case_of_a_session() {
    let mut session = session(None);
    let pid = session.daemon_pid();
    assert!(pid.is_some());
    let reset = Case::from_json(
        r#"{"chunks":[{"atoms":[{"text":"a","escape":"raw","split":null}],"cuts":[]}],
        "framing":{"bom":false,"space":true,"eol":"crlf"},"ending":{"reset":{"partial":null}},
        "ending_cuts":[],"client":{"abort_after_bytes":{"bytes":1}}}"#,
    )
    .unwrap();
    for i in 0..20 {
        let case = if i % 2 == 0 {
            split_character()
        } else {
            reset.clone()
        };
        let result = session.run(&case).expect("the case runs");
        assert!(
            !result.failed(),
            "case {i} failed: {:?}",
            result.broken_names()
        );
        assert_eq!(result.observed.requests.len(), 1, "case {i}");
    }
    assert_eq!(session.daemon_pid(), pid);
    assert!(session.daemon_failure().is_none());
}

#[test]
fn a_session_judges_as_prop_does() {
    let mut session = session(Some("lossy-utf8"));
    let result = session.run(&split_character()).expect("the case runs");
    assert!(result.failed());
    assert!(
        result.broken_names().contains("content"),
        "{:?}",
        result.broken_names()
    );
}

#[test]
fn a_daemon_that_dies_is_reported_with_its_exit() {
    let mut session = session(None);
    let pid = session.daemon_pid().expect("a started daemon");
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let failure = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        session.daemon_failure()
    });
    let failure = failure.expect("the daemon's exit is seen within 2 s");
    assert!(failure.contains("SIGKILL"), "{failure}");
    assert!(session.run(&split_character()).is_err());
}

/// Two content chunks with comment lines and two-line events, then an upstream that goes silent
/// without closing; the client leaves once it has the content.
fn stalled() -> Case {
    Case::from_json(
        r#"{"chunks":[{"atoms":[{"text":"é","escape":"unicode","split":null}],"cuts":[]},
        {"atoms":[{"text":"z","escape":"raw","split":null}],"cuts":[]}],
        "framing":{"bom":false,"space":false,"eol":"crlf","comments":true,"multiline":true},
        "ending":"stall","ending_cuts":[],"client":"read"}"#,
    )
    .unwrap()
    .leaving_on_stall()
}

#[test]
fn a_stalled_upstream_is_relayed_and_cancelled_when_the_client_leaves() {
    let mut correct = session(None);
    let result = correct.run(&stalled()).expect("the case runs");
    assert!(!result.failed(), "{:?}", result.broken_names());
    let mut faulty = session(Some("no-upstream-cancel"));
    let result = faulty.run(&stalled()).expect("the case runs");
    assert!(
        result.broken_names().contains("upstream cancelled"),
        "{:?}",
        result.broken_names()
    );
}
