//! Each fault mode of the reference daemon is observably wrong from the browser's or the
//! upstream's side, in the way its name says. (The correct daemon passing the same checks is in
//! refdaemon_e2e.rs.) Deadlines here bound how long a test waits for a hang it expects; they are
//! never a pass/fail threshold for a correct daemon.

#[path = "refdaemon_support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// How long to watch for bytes or EOF that a faulty daemon never sends.
const WATCH: Duration = Duration::from_secs(3);

fn start(fault: &str) -> (Upstream, Daemon) {
    let upstream = Upstream::start();
    let daemon = Daemon::start(&upstream.base, Some(fault), &[]);
    (upstream, daemon)
}

#[test]
fn ignore_test_pattern_does_not_forward_x_test_pattern() {
    let (upstream, daemon) = start("ignore-test-pattern");
    upstream.script("p", Script::answer(&["x"]));
    let response = exchange(
        &daemon.socket,
        &data_for("p", json!({"test_pattern": "unicode"})),
    );
    assert!(response.done());
    assert_eq!(upstream.wait_end("p").headers.get("x-test-pattern"), None);
}

#[test]
fn done_after_abort_hides_a_truncated_answer() {
    let (upstream, daemon) = start("done-after-abort");
    upstream.script("abort", Script::sse(vec![chunk("Hello")]));
    let response = exchange(&daemon.socket, &data_for("abort", json!({})));
    assert_eq!(response.events(), [r#"{"content":"Hello"}"#, "[DONE]"]);
}

#[test]
fn lossy_utf8_corrupts_characters_split_across_reads() {
    let (upstream, daemon) = start("lossy-utf8");
    let stream = [chunk("日本"), finish("stop"), DONE.to_vec()].concat();
    let mut script = Script::sse(stream.iter().map(|b| vec![*b]).collect());
    script.gap = Duration::from_millis(1);
    upstream.script("split", script);
    let response = exchange(&daemon.socket, &data_for("split", json!({})));
    assert!(
        response.content().contains('\u{FFFD}'),
        "{:?}",
        response.content()
    );
}

#[test]
fn truncate_handoff_4k_silently_replaces_the_prompt() {
    let (upstream, daemon) = start("truncate-handoff-4k");
    upstream.script("long", Script::answer(&["x"]));
    let data = data_for("long", json!({"pad": "p".repeat(5000)}));
    let response = exchange(&daemon.socket, &data);
    assert_ne!(response.status, 413);
    assert!(
        upstream.records("long").is_empty(),
        "the real prompt reached the upstream"
    );
    let defaulted = upstream.wait_end("");
    assert_eq!(defaulted.body["messages"][0]["content"], "Hello");
}

#[test]
fn headers_only_on_upstream_error_sends_a_head_and_nothing_else() {
    let (upstream, daemon) = start("headers-only-on-upstream-error");
    upstream.script("e500", Script::error(500, "{}"));
    let response = exchange(&daemon.socket, &data_for("e500", json!({})));
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty() && response.eof);
}

#[test]
fn hang_on_upstream_error_leaves_the_browser_waiting() {
    let (upstream, daemon) = start("hang-on-upstream-error");
    upstream.script("e500", Script::error(500, "{}"));
    let mut browser = handoff(&daemon.socket, &data_for("e500", json!({})));
    upstream.wait_end("e500");
    let (bytes, eof) = read_to_end(&mut browser, WATCH);
    assert!(bytes.is_empty() && !eof);
}

#[test]
fn line_limit_64k_fails_on_a_long_upstream_line() {
    let (upstream, daemon) = start("line-limit-64k");
    let long = "l".repeat(70_000);
    upstream.script("huge", Script::answer(&[long.as_str()]));
    let response = exchange(&daemon.socket, &data_for("huge", json!({})));
    assert_ne!(response.content(), long);
    assert!(!response.done());
}

#[test]
fn no_upstream_cancel_reads_the_upstream_to_its_end() {
    let (upstream, daemon) = start("no-upstream-cancel");
    let mut slow = Script::answer(&["tick"; 40]);
    slow.gap = Duration::from_millis(10);
    upstream.script("slow", slow);
    let mut browser = handoff(&daemon.socket, &data_for("slow", json!({})));
    std::io::Read::read_exact(&mut browser, &mut [0u8; 1]).unwrap();
    drop(browser);
    assert_eq!(upstream.wait_end("slow").outcome, Outcome::Completed);
}

#[test]
fn head_of_line_blocking_stalls_every_stream_behind_a_slow_reader() {
    let (upstream, daemon) = start("head-of-line-blocking");
    let piece = "z".repeat(16 << 10);
    let mut big = Script::answer(&vec![piece.as_str(); 256]);
    big.gap = Duration::ZERO;
    upstream.script("big", big);
    upstream.script("quick", Script::answer(&["fast"]));
    let slow = stalled_reader(&daemon.socket, &data_for("big", json!({})));
    let mut quick = handoff(&daemon.socket, &data_for("quick", json!({})));
    let (_, eof) = read_to_end(&mut quick, WATCH);
    assert!(
        !eof,
        "the quick stream finished while another client was not reading"
    );
    // Once the slow reader goes away, the quick stream gets through.
    drop(slow);
    let (bytes, eof) = read_to_end(&mut quick, HANG);
    assert!(eof);
    let _ = bytes;
}

#[test]
fn crosstalk_sends_content_to_the_wrong_client_only_under_concurrency() {
    let (upstream, daemon) = start("crosstalk");
    upstream.script("alone", Script::answer(&["only", " me"]));
    assert_eq!(
        exchange(&daemon.socket, &data_for("alone", json!({}))).content(),
        "only me"
    );
    let names: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
    for name in &names {
        let mut script = Script::answer(&[name.as_str(); 10]);
        script.gap = Duration::from_millis(20);
        upstream.script(name, script);
    }
    let browsers: Vec<_> = names
        .iter()
        .map(|n| handoff(&daemon.socket, &data_for(n, json!({}))))
        .collect();
    let mut mismatched = 0;
    for (name, mut browser) in names.iter().zip(browsers) {
        let expected = [
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             Connection: close\r\nX-Accel-Buffering: no\r\n\r\n"
                .to_owned(),
            format!("data: {{\"content\":\"{name}\"}}\n\n").repeat(10),
            "data: {\"content\":\"\",\"finish_reason\":\"stop\"}\n\ndata: [DONE]\n\n".to_owned(),
        ]
        .concat();
        let (bytes, _) = read_to_end(&mut browser, HANG);
        if bytes != expected.as_bytes() {
            mismatched += 1;
        }
    }
    assert!(mismatched >= 1);
}

#[test]
fn buffer_whole_response_sends_nothing_while_the_upstream_streams() {
    let upstream = Upstream::start();
    let daemon = Daemon::start(
        &upstream.base,
        Some("buffer-whole-response"),
        &["--upstream-timeout", "60"],
    );
    let mut stall = Script::sse(vec![chunk("early")]);
    stall.end = End::Stall;
    upstream.script("stall", stall);
    let mut browser = handoff(&daemon.socket, &data_for("stall", json!({})));
    let (bytes, _) = read_to_end(&mut browser, WATCH);
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
}

#[test]
fn wrong_content_type_labels_the_stream_text_plain() {
    let (upstream, daemon) = start("wrong-content-type");
    upstream.script("b", Script::answer(&["x"]));
    let response = exchange(&daemon.socket, &data_for("b", json!({})));
    assert_eq!(response.header("content-type"), Some("text/plain"));
}

#[test]
fn leak_fd_keeps_one_fd_per_finished_connection() {
    let (upstream, daemon) = start("leak-fd");
    upstream.script("b", Script::answer(&["x"]));
    assert!(exchange(&daemon.socket, &data_for("b", json!({}))).eof);
    let before = settled_fd_count(&daemon);
    for _ in 0..10 {
        assert!(exchange(&daemon.socket, &data_for("b", json!({}))).eof);
    }
    let after = settled_fd_count(&daemon);
    assert!(after >= before + 10, "{before} -> {after}");
}

/// The daemon's fd count once it has stopped changing: the daemon closes each handoff's Unix
/// connection and settles its upstream pool a moment after the client sees EOF, so a single
/// reading can still include a descriptor that is about to go.
fn settled_fd_count(daemon: &Daemon) -> usize {
    let mut last = daemon.fd_count();
    let mut stable = 0;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = daemon.fd_count();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
        if stable == 5 {
            break;
        }
    }
    last
}

#[test]
fn the_correct_daemon_does_not_leak_fds() {
    let upstream = Upstream::start();
    let daemon = Daemon::start(&upstream.base, None, &[]);
    upstream.script("b", Script::answer(&["x"]));
    assert!(exchange(&daemon.socket, &data_for("b", json!({}))).eof);
    let before = settled_fd_count(&daemon);
    for _ in 0..10 {
        assert!(exchange(&daemon.socket, &data_for("b", json!({}))).eof);
    }
    let after = settled_fd_count(&daemon);
    assert!(after < before + 10, "{before} -> {after}");
}

#[test]
fn no_close_keeps_the_connection_open_after_done() {
    let (upstream, daemon) = start("no-close");
    upstream.script("b", Script::answer(&["x"]));
    let mut browser = handoff(&daemon.socket, &data_for("b", json!({})));
    let (bytes, eof) = read_to_end(&mut browser, WATCH);
    let response = Response::parse(bytes, eof);
    assert!(response.done() && !response.eof);
}

#[test]
fn stream_socket_refuses_a_seqpacket_connect() {
    let (_upstream, daemon) = start("stream-socket");
    let err = connect(&daemon.socket).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::PROTOTYPE.raw_os_error())
    );
}

#[test]
fn naive_upstream_parser_misses_valid_sse_it_does_not_expect() {
    let (upstream, daemon) = start("naive-upstream-parser");
    let spaced = b"data: {\"choices\": [{\"delta\": {\"content\": \"spaced\"}}]}\n\n".to_vec();
    let nospace = b"data:{\"choices\":[{\"delta\":{\"content\":\"nospace\"}}]}\r\n\r\n".to_vec();
    upstream.script(
        "sse",
        Script::sse(vec![
            chunk("a"),
            spaced,
            nospace,
            finish("stop"),
            DONE.to_vec(),
        ]),
    );
    let response = exchange(&daemon.socket, &data_for("sse", json!({})));
    assert_eq!(response.content(), "a");
}

#[test]
fn escape_passthrough_forwards_escapes_literally() {
    let (upstream, daemon) = start("escape-passthrough");
    let escaped = b"data: {\"choices\":[{\"delta\":{\"content\":\"caf\\u00e9\"}}]}\n\n".to_vec();
    upstream.script(
        "esc",
        Script::sse(vec![escaped, finish("stop"), DONE.to_vec()]),
    );
    let response = exchange(&daemon.socket, &data_for("esc", json!({})));
    assert_eq!(response.content(), r"caf\u00e9");
}

#[test]
fn cut_4k_cuts_long_content_pieces() {
    let (upstream, daemon) = start("cut-4k");
    let long = "c".repeat(5000);
    upstream.script("long", Script::answer(&[long.as_str()]));
    let response = exchange(&daemon.socket, &data_for("long", json!({})));
    assert_eq!(response.content().len(), 4095);
    assert!(response.done());
}

#[test]
fn error_as_done_turns_an_upstream_error_into_a_complete_empty_answer() {
    let (upstream, daemon) = start("error-as-done");
    upstream.script(
        "e500",
        Script::error(500, r#"{"error":{"message":"boom"}}"#),
    );
    let response = exchange(&daemon.socket, &data_for("e500", json!({})));
    assert_eq!(response.status, 200);
    assert_eq!(response.events(), ["[DONE]"]);
}

#[test]
fn exit_after_handoffs_serves_five_then_dies_with_status_1_leaving_its_socket() {
    let (upstream, mut daemon) = start("exit-after-handoffs");
    upstream.script("p", Script::answer(&["x"]));
    for _ in 0..5 {
        assert!(exchange(&daemon.socket, &data_for("p", json!({}))).done());
    }
    let mut browser = handoff(&daemon.socket, &data_for("p", json!({})));
    let (bytes, eof) = read_to_end(&mut browser, HANG);
    assert!(bytes.is_empty() && eof, "the 6th stream gets nothing");
    assert_eq!(daemon.wait().code(), Some(1));
    assert!(daemon.socket.exists(), "a crash leaves the socket file");
    assert!(
        daemon.log().contains("exiting after 5 handoffs"),
        "{}",
        daemon.log()
    );
}

#[test]
fn never_read_handoff_accepts_but_leaves_the_message_queued() {
    let (_upstream, daemon) = start("never-read-handoff");
    let before = daemon.fd_count();
    let mut browser = handoff(&daemon.socket, &data_for("p", json!({})));
    // The accepted connection is held (one more fd); the client fd never arrives.
    let start = std::time::Instant::now();
    while daemon.fd_count() <= before {
        assert!(start.elapsed() < HANG, "the connection was never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (bytes, eof) = read_to_end(&mut browser, WATCH);
    assert!(
        bytes.is_empty() && !eof,
        "nothing is written, nothing closed"
    );
}
