//! The reference daemon, end to end, as a separate process: handoffs in, bytes out, and what it
//! asked the (scripted) upstream.

#[path = "refdaemon_support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn relays_a_complete_answer_with_the_exact_head() {
    let upstream = Upstream::start();
    upstream.script("basic", Script::answer(&["Hello", " world", "!"]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let data = data_for(
        "basic",
        json!({"model": "m1", "max_tokens": 9, "test_pattern": "basic", "request_id": "r-1",
               "response_headers": {"X-Trace": "t1"}}),
    );
    let response = exchange(&daemon.socket, &data);
    assert_eq!(
        response.head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         Connection: close\r\nX-Accel-Buffering: no\r\nX-Trace: t1\r\n\r\n"
    );
    assert_eq!(
        response.events(),
        [
            r#"{"content":"Hello"}"#,
            r#"{"content":" world"}"#,
            r#"{"content":"!"}"#,
            r#"{"content":"","finish_reason":"stop"}"#,
            "[DONE]"
        ]
    );
    assert!(response.eof);
    let record = upstream.wait_end("basic");
    assert_eq!(record.headers["x-test-pattern"], "basic");
    assert_eq!(record.headers["x-request-id"], "r-1");
    assert_eq!(record.headers["authorization"], "Bearer sk-test");
    assert_eq!(
        record.body,
        json!({"model": "m1", "max_tokens": 9, "stream": true,
               "messages": [{"role": "user", "content": "say hi [[script:basic]]"}]})
    );
    assert!(daemon.stop().success());
}

#[test]
fn utf8_split_across_upstream_reads_arrives_intact() {
    let upstream = Upstream::start();
    let text = "né 日本 🎉 ok";
    let stream = [chunk(text), finish("stop"), DONE.to_vec()].concat();
    // One write per byte: every character is split across reads.
    let mut script = Script::sse(stream.iter().map(|b| vec![*b]).collect());
    script.gap = Duration::from_millis(1);
    upstream.script("split", script);
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let response = exchange(&daemon.socket, &data_for("split", json!({})));
    assert_eq!(response.content(), text);
    assert!(response.done());
}

#[test]
fn handoff_escapes_reach_the_upstream_decoded() {
    let upstream = Upstream::start();
    upstream.script("esc", Script::answer(&["x"]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let data = br#"{"prompt":"caf\u00e9 \"q\"\n\ud83c\udf89 [[script:esc]]"}"#;
    assert!(exchange(&daemon.socket, data).done());
    assert_eq!(
        upstream.wait_end("esc").body["messages"][0]["content"],
        "café \"q\"\n🎉 [[script:esc]]"
    );
}

#[test]
fn a_truncated_upstream_gets_an_error_event_and_no_done() {
    let upstream = Upstream::start();
    upstream.script("abort", Script::sse(vec![chunk("Hello"), chunk(" world")]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let response = exchange(&daemon.socket, &data_for("abort", json!({})));
    assert_eq!(response.status, 200);
    assert_eq!(response.content(), "Hello world");
    assert!(!response.done());
    assert_eq!(response.errors().len(), 1, "{:?}", response.events());
    assert!(response.eof);
}

#[test]
fn finish_reason_without_done_still_completes() {
    let upstream = Upstream::start();
    upstream.script("fin", Script::sse(vec![chunk("a"), finish("length")]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let response = exchange(&daemon.socket, &data_for("fin", json!({})));
    assert_eq!(
        response.events(),
        [
            r#"{"content":"a"}"#,
            r#"{"content":"","finish_reason":"length"}"#,
            "[DONE]"
        ]
    );
}

#[test]
fn upstream_error_statuses_become_http_errors() {
    let upstream = Upstream::start();
    upstream.script(
        "e500",
        Script::error(500, r#"{"error":{"message":"boom"}}"#),
    );
    let mut e429 = Script::error(429, r#"{"error":{"message":"slow down"}}"#);
    e429.headers = "Retry-After: 7\r\n".into();
    upstream.script("e429", e429);
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let response = exchange(
        &daemon.socket,
        &data_for("e500", json!({"response_headers": {"X-A": "1"}})),
    );
    assert_eq!(response.status, 502);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-a"), Some("1"));
    assert!(
        response.json()["error"].as_str().unwrap().contains("boom"),
        "{:?}",
        response.json()
    );
    assert!(response.eof);
    let response = exchange(&daemon.socket, &data_for("e429", json!({})));
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("7"));
}

#[test]
fn a_non_streaming_upstream_answer_is_a_502() {
    let upstream = Upstream::start();
    let mut json_answer = Script::error(200, r#"{"choices":[{"message":{"content":"hi"}}]}"#);
    json_answer.content_type = "application/json";
    upstream.script("json", json_answer);
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let response = exchange(&daemon.socket, &data_for("json", json!({})));
    assert_eq!(response.status, 502);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
}

#[test]
fn an_unreachable_upstream_is_a_502() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let daemon = Daemon::start(&format!("http://127.0.0.1:{port}/v1"), None, &[]);
    let response = exchange(&daemon.socket, &data_for("x", json!({})));
    assert_eq!(response.status, 502);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{:?}",
        response.json()
    );
}

#[test]
fn a_stalled_or_reset_upstream_ends_with_an_error_event() {
    let upstream = Upstream::start();
    let mut stall = Script::sse(vec![chunk("a")]);
    stall.end = End::Stall;
    upstream.script("stall", stall);
    let mut reset = Script::sse(vec![chunk("a")]);
    reset.end = End::Reset;
    upstream.script("reset", reset);
    let daemon = Daemon::start(&upstream.base, None, &[]);
    for name in ["stall", "reset"] {
        let response = exchange(&daemon.socket, &data_for(name, json!({})));
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(response.content(), "a", "{name}");
        assert_eq!(
            response.errors().len(),
            1,
            "{name}: {:?}",
            response.events()
        );
        assert!(!response.done() && response.eof, "{name}");
    }
}

#[test]
fn a_stalled_upstream_before_its_head_is_a_504() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let daemon = Daemon::start(
        &format!("http://{}/v1", silent.local_addr().unwrap()),
        None,
        &[],
    );
    let response = exchange(&daemon.socket, &data_for("x", json!({})));
    assert_eq!(response.status, 504);
}

#[test]
fn bad_handoff_data_gets_400_or_413_with_a_json_body() {
    let upstream = Upstream::start();
    let daemon = Daemon::start(&upstream.base, None, &[]);
    for data in [
        &b"\0"[..],
        b"{\"prompt\":",
        b"{\"prompt\":\"p\",\"response_headers\":{\"X\":\"a\\r\\nB: c\"}}",
    ] {
        let response = exchange(&daemon.socket, data);
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(data));
        assert!(response.json()["error"].is_string());
    }
    // Larger than the 256 KiB buffer: only possible with a raised send buffer, as here.
    let big = data_for("x", json!({"pad": "x".repeat(300 << 10)}));
    let response = exchange(&daemon.socket, &big);
    assert_eq!(response.status, 413);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains(&big.len().to_string())
    );
    // Under the buffer: processed.
    upstream.script("big", Script::answer(&["ok"]));
    let response = exchange(
        &daemon.socket,
        &data_for("big", json!({"pad": "x".repeat(150 << 10)})),
    );
    assert_eq!(response.content(), "ok");
}

#[test]
fn a_client_that_leaves_cancels_the_upstream_request() {
    let upstream = Upstream::start();
    let mut slow = Script::answer(&["tick"; 400]);
    slow.gap = Duration::from_millis(20);
    upstream.script("slow", slow);
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let mut browser = handoff(&daemon.socket, &data_for("slow", json!({})));
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut browser, &mut first).unwrap();
    drop(browser);
    let record = upstream.wait_end("slow");
    assert!(
        matches!(record.outcome, Outcome::Cancelled { at } if at < 400),
        "{:?}",
        record.outcome
    );
}

#[test]
fn concurrent_streams_each_get_their_own_content() {
    let upstream = Upstream::start();
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    for name in &names {
        let mut script = Script::answer(&[name.as_str(), "-", name.as_str(), "-", name.as_str()]);
        script.gap = Duration::from_millis(10);
        upstream.script(name, script);
    }
    let browsers: Vec<_> = names
        .iter()
        .map(|n| handoff(&daemon.socket, &data_for(n, json!({}))))
        .collect();
    for (name, mut browser) in names.iter().zip(browsers) {
        let (bytes, eof) = read_to_end(&mut browser, HANG);
        let response = Response::parse(bytes, eof);
        assert_eq!(response.content(), format!("{name}-{name}-{name}"));
        assert!(response.done());
    }
}

#[test]
fn a_slow_reader_does_not_hold_up_another_stream() {
    let upstream = Upstream::start();
    // Several MiB for the slow reader: far more than the socket buffers hold.
    let piece = "z".repeat(16 << 10);
    let mut big = Script::answer(&vec![piece.as_str(); 256]);
    big.gap = Duration::ZERO;
    upstream.script("big", big);
    upstream.script("quick", Script::answer(&["fast"]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    let mut slow = stalled_reader(&daemon.socket, &data_for("big", json!({})));
    // The slow reader reads nothing while the quick stream runs to its end.
    let response = exchange(&daemon.socket, &data_for("quick", json!({})));
    assert_eq!(response.content(), "fast");
    assert!(response.done() && response.eof);
    let (bytes, eof) = read_to_end(&mut slow, HANG);
    let response = Response::parse(bytes, eof);
    assert_eq!(response.content().len(), piece.len() * 256);
    assert!(response.done());
}

#[test]
fn sigterm_drains_running_streams_and_removes_the_socket() {
    let upstream = Upstream::start();
    let mut slow = Script::answer(&["a", "b", "c", "d", "e"]);
    slow.gap = Duration::from_millis(100);
    upstream.script("drain", slow);
    let mut daemon = Daemon::start(&upstream.base, None, &[]);
    let mut browser = handoff(&daemon.socket, &data_for("drain", json!({})));
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut browser, &mut first).unwrap();
    daemon.signal(rustix::process::Signal::TERM);
    let (rest, eof) = read_to_end(&mut browser, HANG);
    let response = Response::parse([&first[..], &rest].concat(), eof);
    assert_eq!(response.content(), "abcde");
    assert!(response.done());
    assert!(daemon.wait().success());
    assert!(!daemon.socket.exists());
}

#[test]
fn drain_deadline_ends_streams_with_an_error_event() {
    let upstream = Upstream::start();
    let mut stall = Script::sse(vec![chunk("a")]);
    stall.end = End::Stall;
    upstream.script("stuck", stall);
    let mut daemon = Daemon::start(
        &upstream.base,
        None,
        &["--drain-timeout", "0.2", "--upstream-timeout", "60"],
    );
    let mut browser = handoff(&daemon.socket, &data_for("stuck", json!({})));
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut browser, &mut first).unwrap();
    daemon.signal(rustix::process::Signal::TERM);
    let (rest, eof) = read_to_end(&mut browser, HANG);
    let response = Response::parse([&first[..], &rest].concat(), eof);
    assert!(
        response
            .errors()
            .iter()
            .any(|e| e.contains("shutting down")),
        "{:?}",
        response.events()
    );
    assert!(daemon.wait().success());
}

#[test]
fn a_handoff_without_a_message_or_fd_is_dropped_and_the_daemon_carries_on() {
    let upstream = Upstream::start();
    upstream.script("after", Script::answer(&["fine"]));
    let daemon = Daemon::start(&upstream.base, None, &[]);
    drop(connect(&daemon.socket).unwrap());
    let unix = connect(&daemon.socket).unwrap();
    rustix::net::send(
        &unix,
        b"{\"prompt\":\"no fd\"}",
        rustix::net::SendFlags::empty(),
    )
    .unwrap();
    let response = exchange(&daemon.socket, &data_for("after", json!({})));
    assert_eq!(response.content(), "fine");
    assert!(
        daemon.log().contains("no SCM_RIGHTS fd"),
        "{}",
        daemon.log()
    );
}

#[test]
fn fault_list_prints_every_mode() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamcheck"))
        .args(["ref-daemon", "--fault", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 22, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("truncate-handoff-4k ")),
        "{text}"
    );
}
