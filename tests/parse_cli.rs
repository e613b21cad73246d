//! `streamcheck parse`: the same output for every feed size on every conformance vector, the
//! vectors' expected events, HTTP framings, warnings, and the command line itself.
//!
//! The exhaustive comparisons call the library ([`inspect_bytes`]); a handful of cases run the
//! built binary to check that it prints exactly what the library does.

mod transcript_support;

use std::io::Write;
use std::num::NonZeroUsize;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use streamcheck::sse;
use streamcheck::transcript::inspect::{InspectError, InspectOptions, inspect_bytes};
use transcript_support::chunked_body;

/// Bodies up to this length are parsed with every feed size from 1 to their length.
const EVERY_SIZE_MAX: usize = 1024;

struct Vector {
    id: String,
    content_type: String,
    bodies: Vec<Vec<u8>>,
    expected_events: Vec<Value>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sse_vectors.json"
    ))
    .expect("tests/data/sse_vectors.json is readable");
    let root: Value = serde_json::from_str(&text).expect("vectors are JSON");
    root["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| Vector {
            id: v["id"].as_str().expect("id").to_owned(),
            content_type: v["content_type"].as_str().expect("content_type").to_owned(),
            bodies: v["connections"]
                .as_array()
                .expect("connections")
                .iter()
                .map(|c| hex(c["body_hex"].as_str().expect("body_hex")))
                .collect(),
            expected_events: v["expected"]["events"].as_array().expect("events").clone(),
        })
        .collect()
}

fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("");
    essence.trim().eq_ignore_ascii_case("text/event-stream")
}

fn options(feed_size: Option<usize>) -> InspectOptions {
    InspectOptions {
        feed_size: feed_size.map(|n| NonZeroUsize::new(n).expect("non-zero")),
        ..InspectOptions::default()
    }
}

fn run(input: &[u8], options: &InspectOptions) -> String {
    String::from_utf8(inspect_bytes(input, options).expect("writing to a Vec")).expect("UTF-8")
}

fn lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// Feed sizes to try for a body of `len` bytes: all of them for short bodies, else a spread.
fn feed_sizes(len: usize) -> Vec<usize> {
    if len <= EVERY_SIZE_MAX {
        return (1..=len.max(1)).collect();
    }
    let mut sizes = vec![
        1, 2, 3, 4, 5, 7, 8, 13, 16, 61, 64, 100, 255, 256, 1000, 1024, 4096,
    ];
    sizes.extend([len / 3, len / 2, len - 1, len, len + 1]);
    sizes.retain(|&n| n >= 1);
    sizes
}

#[test]
fn every_feed_size_gives_the_same_output_for_every_vector() {
    let mut compared = 0;
    for vector in vectors() {
        for (c, body) in vector.bodies.iter().enumerate() {
            let whole = run(body, &options(None));
            for size in feed_sizes(body.len()) {
                let got = run(body, &options(Some(size)));
                assert_eq!(got, whole, "{} body {c}: --feed-size {size}", vector.id);
                compared += 1;
            }
        }
    }
    assert!(compared > 4_000, "compared {compared} runs");
}

/// The last event ID a browser carries into connection `c`: what the earlier ones left.
fn carried_id(bodies: &[Vec<u8>], c: usize) -> Option<String> {
    if c == 0 {
        return None;
    }
    let mut parser = sse::Parser::new();
    for body in &bodies[..c] {
        let mut events: Vec<sse::Event> = Vec::new();
        parser
            .feed(body, &mut events)
            .expect("default limits suffice");
        parser.finish();
    }
    Some(parser.last_event_id().to_owned())
}

#[test]
fn printed_events_are_the_vectors_expected_events() {
    let mut checked = 0;
    for vector in vectors()
        .into_iter()
        .filter(|v| is_event_stream(&v.content_type))
    {
        let mut events = Vec::new();
        for (c, body) in vector.bodies.iter().enumerate() {
            let options = InspectOptions {
                last_event_id: carried_id(&vector.bodies, c),
                ..options(None)
            };
            events.extend(
                lines(&run(body, &options))
                    .into_iter()
                    .filter(|l| l.get("warning").is_none()),
            );
        }
        assert_eq!(
            events.len(),
            vector.expected_events.len(),
            "{}: {events:#?}",
            vector.id
        );
        for (i, (got, want)) in events.iter().zip(&vector.expected_events).enumerate() {
            assert_eq!(got["type"], want["type"], "{} event {i} type", vector.id);
            assert_eq!(got["data"], want["data"], "{} event {i} data", vector.id);
            assert_eq!(got["id"], want["lastEventId"], "{} event {i} id", vector.id);
            checked += 1;
        }
    }
    assert!(checked > 100, "checked {checked} events");
}

/// `body` as a chunked HTTP response with the given Content-Type, in chunks of `size` bytes.
fn chunked_response(content_type: &str, body: &[u8], size: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    out.extend(chunked_body(body, &[size]));
    out
}

#[test]
fn a_chunked_response_gives_the_bare_streams_events_for_every_vector() {
    for vector in vectors() {
        let body = &vector.bodies[0];
        let bare = lines(&run(body, &options(None)));
        let response = chunked_response(&vector.content_type, body, 7);
        let http = InspectOptions {
            http: true,
            ..options(None)
        };
        let whole = run(&response, &http);
        for size in [1, 2, 3, 7, 64] {
            let split = InspectOptions {
                feed_size: NonZeroUsize::new(size),
                ..http.clone()
            };
            assert_eq!(
                run(&response, &split),
                whole,
                "{}: --feed-size {size}",
                vector.id
            );
        }
        let mut got = lines(&whole);
        let head = got.remove(0);
        assert_eq!(head["status"], 200, "{}", vector.id);
        assert_eq!(
            head["headers"][0],
            json!(["Content-Type", vector.content_type]),
            "{}",
            vector.id
        );
        let mime_warning = json!({
            "warning": format!(
                "Content-Type is {:?}, not text/event-stream: a browser's EventSource fails",
                vector.content_type
            ),
            "http_offset": 31,
        });
        if is_event_stream(&vector.content_type) {
            assert_eq!(got, bare, "{}", vector.id);
        } else {
            assert_eq!(got.remove(0), mime_warning, "{}", vector.id);
            assert_eq!(got, bare, "{}", vector.id);
        }
    }
}

const SSE: &[u8] =
    b"data: {\"content\":\"Hel\"}\n\nid: 1\nevent: note\nretry: 250\ndata: lo\n\ndata: [DONE]\n\n";

fn expected_sse_events(offset_base: u64) -> Vec<Value> {
    vec![
        json!({"type":"message","data":"{\"content\":\"Hel\"}","id":"","retry":null,"offset":offset_base}),
        json!({"type":"note","data":"lo","id":"1","retry":250,"offset":offset_base + 25}),
        json!({"type":"message","data":"[DONE]","id":"1","retry":null,"offset":offset_base + 64}),
    ]
}

fn http_options() -> InspectOptions {
    InspectOptions {
        http: true,
        ..options(None)
    }
}

#[test]
fn http_chunked_response_prints_head_events_and_trailers() {
    let mut response = chunked_response("text/event-stream", SSE, 10);
    response.truncate(response.len() - 2);
    response.extend(b"X-Checksum: abc\r\n\r\n");
    let got = lines(&run(&response, &http_options()));
    let mut want = vec![json!({
        "status": 200, "reason": "OK",
        "headers": [["Content-Type","text/event-stream"],["Transfer-Encoding","chunked"]],
    })];
    want.extend(expected_sse_events(0));
    want.push(json!({"trailers": [["X-Checksum", "abc"]]}));
    assert_eq!(got, want);
}

#[test]
fn http_content_length_response_reports_bytes_after_the_end() {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/event-stream\r\n\r\n",
        SSE.len()
    )
    .into_bytes();
    let head_len = response.len() as u64;
    response.extend(SSE);
    response.extend(b"data: late\n\n");
    let got = lines(&run(&response, &http_options()));
    let mut want = vec![json!({
        "status": 200, "reason": "OK",
        "headers": [["Content-Length", SSE.len().to_string()],["Content-Type","text/event-stream"]],
    })];
    want.extend(expected_sse_events(0));
    let excess_at = head_len + SSE.len() as u64;
    want.push(json!({
        "warning": format!(
            "12 bytes after the end of the response, from byte {excess_at}: the body's framing \
             ended the message before the connection closed"
        ),
        "http_offset": excess_at,
    }));
    assert_eq!(got, want);
}

#[test]
fn http_until_close_response_and_a_truncated_one() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    let response = [&head[..], SSE].concat();
    let got = lines(&run(&response, &http_options()));
    let mut want = vec![json!({
        "status": 200, "reason": "OK", "headers": [["Content-Type","text/event-stream"]],
    })];
    want.extend(expected_sse_events(0));
    assert_eq!(got, want);

    // Content-Length promises more than arrives.
    let response = [
        &b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\n"[..],
        b"data: x\n\n",
    ]
    .concat();
    let got = lines(&run(&response, &http_options()));
    assert_eq!(got[0]["status"], 502);
    assert_eq!(
        got[1],
        json!({"warning": "status 502: a browser's EventSource accepts only 200", "http_offset": 0})
    );
    assert_eq!(
        got[2],
        json!({"warning": "no Content-Type header, not text/event-stream: a browser's EventSource fails", "http_offset": 0})
    );
    assert_eq!(got[3]["data"], "x");
    assert_eq!(
        got[4],
        json!({"warning": "the stream ended at byte 58 with 91 bytes of the Content-Length body missing", "http_offset": 58})
    );
    assert_eq!(got.len(), 5);
}

#[test]
fn a_malformed_head_is_one_warning_with_its_offset() {
    let got = lines(&run(b"data: {\"content\":\"x\"}\n\n", &http_options()));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["http_offset"], 0);
    let message = got[0]["warning"].as_str().expect("a warning");
    assert!(
        message.starts_with("malformed response head at byte 0"),
        "{message}"
    );
}

#[test]
fn invalid_utf8_is_warned_at_its_offset_and_kept_in_hex() {
    // "€" cut in two, each half in its own event, and a stray byte in a comment.
    let input = b"data: \xE2\x82\n\n:\xFF\ndata: \xAC\n\n";
    let want = vec![
        json!({"warning":"invalid UTF-8 at byte 6 of the event stream; a browser shows U+FFFD","offset":6}),
        json!({"type":"message","data":"\u{FFFD}","data_hex":"e282","id":"","retry":null,"offset":0}),
        json!({"warning":"invalid UTF-8 at byte 11 of the event stream; a browser shows U+FFFD","offset":11}),
        json!({"warning":"invalid UTF-8 at byte 19 of the event stream; a browser shows U+FFFD","offset":19}),
        json!({"type":"message","data":"\u{FFFD}","data_hex":"ac","id":"","retry":null,"offset":10}),
    ];
    for size in 1..=input.len() {
        assert_eq!(
            lines(&run(input, &options(Some(size)))),
            want,
            "size {size}"
        );
    }
}

#[test]
fn an_unterminated_event_and_a_limit_are_warned() {
    let got = lines(&run(b"data: a\n\nid: 3\ndata: cut", &options(None)));
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1],
        json!({"warning": "the stream ended inside an event (bytes 9..24, inside a line); it is discarded, as the spec says: end every event with a blank line", "offset": 9})
    );

    let limited = InspectOptions {
        limits: sse::Limits::default().with_max_line(8),
        ..options(Some(1))
    };
    let got = lines(&run(b"data: ok\n\ndata: too long\n\n", &limited));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["data"], "ok");
    assert_eq!(got[1]["offset"], 10);
    let message = got[1]["warning"].as_str().expect("a warning");
    assert!(message.contains("longer than 8 bytes"), "{message}");
}

#[test]
fn a_last_event_id_with_a_line_break_is_refused() {
    let options = InspectOptions {
        last_event_id: Some("a\nb".to_owned()),
        ..options(None)
    };
    assert!(matches!(
        inspect_bytes(b"", &options),
        Err(InspectError::InvalidLastEventId(_))
    ));
}

// ---- the binary --------------------------------------------------------------------------------

fn streamcheck(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamcheck"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the streamcheck binary runs");
    let mut pipe = child.stdin.take().expect("stdin");
    // Reading a file, the command never reads its standard input.
    match pipe.write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result.expect("write stdin"),
    }
    drop(pipe);
    child.wait_with_output().expect("streamcheck finishes")
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("streamcheck-parse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

#[test]
fn the_binary_prints_what_the_library_does() {
    let all = vectors();
    let picked = ["wpt/event-data", "wpt/format-utf-8", "wpt/format-bom-2"];
    let mut ran = 0;
    for vector in all.iter().filter(|v| picked.contains(&v.id.as_str())) {
        let body = &vector.bodies[0];
        let want = run(body, &options(None));
        let path = temp_file("body.sse", body);
        let path = path.to_str().expect("UTF-8 path");
        for args in [
            vec![path],
            vec![path, "--feed-size", "1"],
            vec!["--feed-size", "7", path],
            vec!["-"],
        ] {
            let out = streamcheck(&args, body);
            assert!(out.status.success(), "{args:?}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                want,
                "{}: {args:?}",
                vector.id
            );
            assert!(out.stderr.is_empty());
        }
        ran += 1;
    }
    assert_eq!(ran, picked.len());

    let response = chunked_response("text/event-stream", SSE, 5);
    let want = run(&response, &http_options());
    let out = streamcheck(&["--http", "--feed-size", "3"], &response);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn the_binary_names_a_missing_file_and_exits_2() {
    let missing = std::env::temp_dir().join("streamcheck-parse-cli-no-such-file.sse");
    let missing = missing.to_str().expect("UTF-8 path");
    let out = streamcheck(&[missing], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(missing), "{stderr}");
    assert!(stderr.contains("or - to read standard input"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = streamcheck(&["--feed-size", "0"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_capture_whose_chunk_framing_was_removed_is_named_and_fails() {
    // What `curl -i` saves: the head as sent, the body already de-chunked.
    let capture = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
        Transfer-Encoding: chunked\r\n\r\ndata: {\"content\":\"hi\"}\n\ndata: [DONE]\n\n";
    let out = streamcheck(&["--http"], capture);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("curl --raw"), "{stdout}");
    // The same body, chunked as sent, parses and exits 0.
    let raw = chunked_response("text/event-stream", b"data: {\"content\":\"hi\"}\n\n", 8);
    let out = streamcheck(&["--http"], &raw);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
