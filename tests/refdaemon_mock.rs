//! The reference daemon against the project's mock API: every pattern of the catalog over
//! HTTP/2 with TLS (ALPN), and the other ways of reaching an upstream (HTTP/1.1 over TLS, h2c,
//! HTTP/1.1 cleartext, a CA-verified certificate). The expectation for each pattern is the one the
//! pattern itself defines (`pattern::resolve`), so it cannot drift from what the mock sends.

#[path = "refdaemon_support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use streamcheck::mock::{
    HttpVersion, MockConfig, MockHandle, MockServer, PatternChannel, RequestEnd, TlsMode,
};
use streamcheck::pattern::{self, Ending, ExpectedKind, MockSettings, UpstreamPlan, Write};
use support::*;

fn mock(tls: bool) -> MockHandle {
    MockServer::start(MockConfig {
        tls: if tls {
            TlsMode::SelfSigned { ca_out: None }
        } else {
            TlsMode::Off
        },
        settings: MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(5),
        },
        ..MockConfig::default()
    })
    .expect("start the mock API")
}

/// Hands off a request for `spec` tagged `nonce`; returns the response and the mock's record.
fn ask(
    daemon: &Daemon,
    mock: &MockHandle,
    spec: &str,
    nonce: &str,
) -> (Response, streamcheck::mock::RequestRecord) {
    let data = json!({
        "prompt": format!("[[pattern:{spec}]] [[nonce:{nonce}]] hello"),
        "test_pattern": spec,
        "user_id": 1,
    });
    let response = exchange(&daemon.socket, data.to_string().as_bytes());
    let record = mock.wait_for_end(nonce, HANG).unwrap_or_else(|| {
        panic!(
            "{spec}: no request reached the mock; the daemon answered {:?}; log: {:?}",
            String::from_utf8_lossy(&response.body),
            mock.all_requests().last()
        )
    });
    (response, record)
}

/// The finish_reason on the client's events, if any.
fn finish_reason(response: &Response) -> Option<String> {
    response.events().iter().find_map(|e| {
        let v: serde_json::Value = serde_json::from_str(e).ok()?;
        v.get("finish_reason")?.as_str().map(String::from)
    })
}

/// What a correct daemon does with `spec`, checked on the wire and in the mock's log.
fn check(daemon: &Daemon, mock: &MockHandle, spec: &str, nonce: &str, upstream_timeout: Duration) {
    let resolved = pattern::resolve(spec, mock.settings(), Some(nonce)).unwrap();
    let expected = &resolved.expected;
    let (response, record) = ask(daemon, mock, spec, nonce);
    let events = if response.status == 200 {
        response.events()
    } else {
        Vec::new()
    };
    assert_eq!(record.x_test_pattern.as_deref(), Some(spec), "{spec}");
    assert_eq!(record.pattern_channel, PatternChannel::Header, "{spec}");
    assert_eq!(
        record.pattern.as_deref(),
        Some(resolved.spec.canonical().as_str()),
        "{spec}"
    );
    assert!(response.eof, "{spec}: the daemon did not close");
    let complete_after = |silence: Duration| silence < upstream_timeout;
    match &expected.kind {
        ExpectedKind::Complete => {
            assert_eq!(response.status, 200, "{spec}");
            assert_eq!(response.content(), expected.content, "{spec}");
            assert!(
                response.done() && response.errors().is_empty(),
                "{spec}: {events:?}"
            );
            assert_eq!(finish_reason(&response), expected.finish_reason, "{spec}");
        }
        ExpectedKind::Stall { silence } if complete_after(*silence) => {
            assert_eq!(response.content(), expected.content, "{spec}");
            assert!(response.done(), "{spec}: {events:?}");
        }
        ExpectedKind::Truncated | ExpectedKind::Reset | ExpectedKind::Stall { .. } => {
            assert_eq!(response.status, 200, "{spec}");
            let relayed = if matches!(expected.kind, ExpectedKind::Stall { .. }) {
                ""
            } else {
                &expected.content
            };
            assert_eq!(response.content(), relayed, "{spec}");
            assert!(!response.done(), "{spec}: {events:?}");
            assert_eq!(response.errors().len(), 1, "{spec}: {events:?}");
        }
        ExpectedKind::UpstreamError { status, message } => {
            assert_eq!(
                response.status,
                if *status == 429 { 429 } else { 502 },
                "{spec}"
            );
            let error = response.json()["error"].as_str().unwrap().to_owned();
            assert!(error.contains(message.as_str()), "{spec}: {error}");
        }
    }
}

const CATALOG: &[&str] = &[
    "default",
    "unicode",
    "short",
    "long",
    "delay:1",
    "split:1",
    "split:3",
    "coalesced",
    "huge-line",
    "escapes",
    "abort:5",
    "abort:0",
    "finish:stop",
    "finish:length",
    "bom",
    "crlf",
    "cr",
    "nospace",
    "comments",
    "multiline",
    "spaced",
    "reset:3",
    "error:500",
    "error:429",
    "error:401",
    "stall:300",
    "stall:5000",
];

#[test]
fn the_list_covers_the_whole_catalog() {
    for pattern in pattern::catalog() {
        assert!(
            CATALOG
                .iter()
                .any(|spec| spec.split(':').next() == Some(pattern.name())),
            "add pattern {} to CATALOG",
            pattern.name()
        );
    }
}

#[test]
fn every_pattern_over_h2_with_tls() {
    let mock = mock(true);
    let daemon = Daemon::start_env(
        &mock.base_url(),
        None,
        &[],
        &[("OPENAI_INSECURE_SSL", "true")],
    );
    for (i, spec) in CATALOG.iter().enumerate() {
        check(
            &daemon,
            &mock,
            spec,
            &format!("h2-{i}"),
            Duration::from_secs(2),
        );
    }
    let record = mock.wait_for_end("h2-0", HANG).unwrap();
    assert_eq!(
        (record.http_version, record.tls),
        (HttpVersion::Http2, true)
    );
    assert_eq!(record.authorization.as_deref(), Some("Bearer sk-test"));
    assert!(daemon.stop().success());
}

#[test]
fn http1_over_tls_h2c_and_http1_cleartext() {
    let tls = mock(true);
    let cleartext = mock(false);
    let cases = [
        (&tls, "OPENAI_HTTP2_ENABLED", "false", HttpVersion::Http11),
        (
            &cleartext,
            "OPENAI_HTTP2_ENABLED",
            "true",
            HttpVersion::Http2,
        ),
        (&cleartext, "OPENAI_MODEL", "model-x", HttpVersion::Http11),
    ];
    for (i, (mock, var, value, version)) in cases.into_iter().enumerate() {
        let daemon = Daemon::start_env(
            &mock.base_url(),
            None,
            &[],
            &[("OPENAI_INSECURE_SSL", "true"), (var, value)],
        );
        for spec in ["unicode", "split:1", "abort:3", "reset:2", "error:503"] {
            check(
                &daemon,
                mock,
                spec,
                &format!("v{i}-{}", spec.replace(':', "_")),
                Duration::from_secs(2),
            );
        }
        let record = mock.wait_for_end(&format!("v{i}-unicode"), HANG).unwrap();
        assert_eq!(record.http_version, version, "{var}={value}");
    }
    let record = cleartext.wait_for_end("v2-unicode", HANG).unwrap();
    assert_eq!(record.body.unwrap().model.as_deref(), Some("model-x"));
}

#[test]
fn the_mock_certificate_verifies_against_its_ca_without_insecure_ssl() {
    let mock = mock(true);
    let ca = mock.cert_path().unwrap().to_str().unwrap().to_owned();
    let daemon = Daemon::start_env(&mock.base_url(), None, &[], &[("SSL_CERT_FILE", &ca)]);
    check(&daemon, &mock, "unicode", "ca-1", Duration::from_secs(2));
    // Without the CA (and without OPENAI_INSECURE_SSL) the self-signed chain is refused.
    let refusing = Daemon::start_env(&mock.base_url(), None, &[], &[]);
    let response = exchange(&refusing.socket, &data_for("x", json!({})));
    assert_eq!(response.status, 502);
}

#[test]
fn concurrent_streams_each_get_their_own_nonce() {
    let mock = mock(true);
    let daemon = Daemon::start_env(
        &mock.base_url(),
        None,
        &[],
        &[("OPENAI_INSECURE_SSL", "true")],
    );
    let nonces: Vec<String> = (0..50).map(|i| format!("many-{i}")).collect();
    let browsers: Vec<_> = nonces
        .iter()
        .map(|n| {
            handoff(
                &daemon.socket,
                json!({ "prompt": format!("[[nonce:{n}]]") })
                    .to_string()
                    .as_bytes(),
            )
        })
        .collect();
    for (nonce, mut browser) in nonces.iter().zip(browsers) {
        let (bytes, eof) = read_to_end(&mut browser, HANG);
        let response = Response::parse(bytes, eof);
        let expected = pattern::resolve("default", mock.settings(), Some(nonce))
            .unwrap()
            .expected;
        assert_eq!(response.content(), expected.content, "{nonce}");
        assert!(response.done());
    }
}

#[test]
fn a_client_that_leaves_cancels_the_h2_stream_upstream() {
    let mock = mock(true);
    let daemon = Daemon::start_env(
        &mock.base_url(),
        None,
        &[],
        &[("OPENAI_INSECURE_SSL", "true")],
    );
    let data =
        json!({ "prompt": "[[pattern:delay:50]] [[nonce:gone-1]]", "test_pattern": "delay:50" });
    let mut browser = handoff(&daemon.socket, data.to_string().as_bytes());
    std::io::Read::read_exact(&mut browser, &mut [0u8; 1]).unwrap();
    drop(browser);
    let record = mock.wait_for_end("gone-1", HANG).unwrap();
    assert!(
        matches!(record.end, RequestEnd::Cancelled { .. }),
        "{:?}",
        record.end
    );
}

/// An answer whose `[DONE]` is followed by `after` (more writes), then the end of the stream.
fn answer_then(mock: &MockHandle, after: Vec<Write>) -> String {
    let mut writes = vec![
        Write::new(pattern::chunk_event("Hi"), Duration::ZERO),
        Write::new(pattern::final_event("stop"), Duration::ZERO),
        Write::new(pattern::DONE_EVENT, Duration::ZERO),
    ];
    writes.extend(after);
    mock.register_script(UpstreamPlan::sse(writes, Ending::Close))
}

fn daemon_over_h2(mock: &MockHandle) -> Daemon {
    Daemon::start_env(
        &mock.base_url(),
        None,
        &[],
        &[("OPENAI_INSECURE_SSL", "true")],
    )
}

#[test]
fn a_complete_answer_is_read_to_its_end_not_cancelled() {
    let mock = mock(true);
    let daemon = daemon_over_h2(&mock);
    // The end of the stream comes 30 ms after [DONE]: a daemon that abandons the answer at its
    // [DONE] resets the stream before then.
    let id = answer_then(&mock, vec![Write::new("", Duration::from_millis(30))]);
    let data = json!({ "prompt": format!("[[pattern:script:{id}]] [[nonce:end-1]]") });
    let response = exchange(&daemon.socket, data.to_string().as_bytes());
    assert!(response.done(), "{:?}", response.events());
    let record = mock.wait_for_end("end-1", HANG).unwrap();
    assert_eq!(record.end, RequestEnd::Completed);
}

/// Completes one answer, so that the daemon's client knows its connection speaks HTTP/2 and
/// sends every later request over it; returns that connection's address.
fn first_connection(mock: &MockHandle, daemon: &Daemon) -> String {
    let id = answer_then(mock, Vec::new());
    let data = json!({ "prompt": format!("[[pattern:script:{id}]] [[nonce:first]]") });
    let response = exchange(&daemon.socket, data.to_string().as_bytes());
    assert!(response.done(), "{:?}", response.events());
    let record = mock.wait_for_end("first", HANG).unwrap();
    assert_eq!(record.http_version, HttpVersion::Http2);
    record.peer.expect("a TCP peer")
}

/// How many requests came over another connection than `first`.
fn on_other_connections(mock: &MockHandle, first: &str) -> usize {
    mock.count_requests(|r| r.peer.as_deref() != Some(first))
}

/// Starts a mock API with TLS (so ALPN picks HTTP/2) and a daemon using it.
fn mock_and_daemon_over_h2() -> (MockHandle, Daemon) {
    let mock = MockServer::start(MockConfig {
        tls: TlsMode::SelfSigned { ca_out: None },
        ..MockConfig::default()
    })
    .expect("start the mock API");
    let daemon = daemon_over_h2(&mock);
    (mock, daemon)
}

/// Hands off `count` requests for the script `id`, `at_once` at a time; `browse` reads each.
fn in_batches(
    daemon: &Daemon,
    id: &str,
    count: usize,
    at_once: usize,
    mut browse: impl FnMut(&str, std::net::TcpStream),
) {
    for batch in 0..count / at_once {
        let nonces: Vec<String> = (0..at_once).map(|i| format!("b{batch}-{i}")).collect();
        let browsers: Vec<_> = nonces
            .iter()
            .map(|n| {
                let data = json!({ "prompt": format!("[[pattern:script:{id}]] [[nonce:{n}]]") });
                handoff(&daemon.socket, data.to_string().as_bytes())
            })
            .collect();
        for (nonce, browser) in nonces.iter().zip(browsers) {
            browse(nonce, browser);
        }
    }
}

#[test]
fn one_h2_connection_carries_thousands_of_answers_that_go_on_after_done() {
    // h2 ignores the late frames of only 50 recently reset streams; each later one counts as
    // an upstream error, and at 1,024 on one connection h2 closes it (GOAWAY
    // too_many_internal_resets). A daemon that resets these answers at their [DONE], with
    // their last frames in flight, gets there well before 1,200.
    let (mock, daemon) = mock_and_daemon_over_h2();
    let first = first_connection(&mock, &daemon);
    let after_done = (0..20)
        .map(|_| Write::new(&b": after the answer\n\n"[..], Duration::ZERO))
        .collect();
    let id = answer_then(&mock, after_done);
    in_batches(&daemon, &id, 1_200, 100, |nonce, mut browser| {
        let (bytes, eof) = read_to_end(&mut browser, HANG);
        let response = Response::parse(bytes, eof);
        assert!(
            response.done() && response.errors().is_empty(),
            "{nonce}: {:?}",
            response.events()
        );
        // The daemon closes its client before it reads the rest of the answer: wait for the
        // upstream request to end before judging how it ended.
        mock.wait_for_end(nonce, HANG).unwrap();
    });
    let cancelled = mock.count_requests(|r| r.end != RequestEnd::Completed);
    assert_eq!(cancelled, 0, "answers not read to their end");
    assert_eq!(on_other_connections(&mock, &first), 0);
}

#[test]
fn a_thousand_clients_leaving_do_not_close_the_h2_connection() {
    // h2 remembers the streams it reset (50 by default, for 1 s each) to ignore their late
    // frames; a late frame on a forgotten one counts as an upstream error, and at 1,024 h2
    // closes the connection (GOAWAY too_many_internal_resets). Each client here leaves while
    // its answer streams at full speed, so its stream is reset with DATA frames in flight.
    let (mock, daemon) = mock_and_daemon_over_h2();
    let first = first_connection(&mock, &daemon);
    let writes = (0..5_000)
        .map(|_| Write::new(pattern::chunk_event("x"), Duration::ZERO))
        .collect();
    let id = mock.register_script(UpstreamPlan::sse(writes, Ending::Close));
    in_batches(&daemon, &id, 1_200, 100, |_, mut browser| {
        std::io::Read::read_exact(&mut browser, &mut [0u8; 1]).unwrap();
    });
    let id = answer_then(&mock, Vec::new());
    let data = json!({ "prompt": format!("[[pattern:script:{id}]] [[nonce:after]]") });
    let response = exchange(&daemon.socket, data.to_string().as_bytes());
    assert!(response.done(), "{:?}", response.events());
    let log = daemon.log();
    let failure = log.lines().find(|l| l.contains("upstream request failed"));
    assert_eq!(on_other_connections(&mock, &first), 0, "{failure:?}");
}
