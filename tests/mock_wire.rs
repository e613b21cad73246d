//! The bytes on the wire, read with a raw socket: one HTTP/1.1 chunk per planned write, a real
//! TCP reset for `reset:N`, HTTP/2 told apart from HTTP/1.1 by the first bytes, garbage survived,
//! and the Unix socket listener.

mod mock_common;

use std::io::ErrorKind;
use std::sync::Arc;

use mock_common::*;
use streamcheck::mock::{RequestEnd, Transport};
use streamcheck::pattern::{UpstreamPlan, nonce_directive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

fn raw_request(spec: Option<&str>, version: &str, prompt: &str) -> Vec<u8> {
    raw_request_with(spec, version, prompt, "")
}

/// A request that asks the mock to close after its response, so reading to EOF ends.
fn raw_request_closing(spec: Option<&str>, version: &str, prompt: &str) -> Vec<u8> {
    raw_request_with(spec, version, prompt, "Connection: close\r\n")
}

fn raw_request_with(spec: Option<&str>, version: &str, prompt: &str, extra: &str) -> Vec<u8> {
    let body = chat_body(prompt);
    let header = spec.map_or(String::new(), |s| format!("X-Test-Pattern: {s}\r\n"));
    format!(
        "POST /v1/chat/completions {version}\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\n{header}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads until EOF or error; returns the bytes and the error kind, if any.
async fn read_until_end<S: AsyncRead + Unpin>(stream: &mut S) -> (Vec<u8>, Option<ErrorKind>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("read stalled")
        {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

/// Splits a response into its head and its chunked body: (head, chunks, saw the last chunk).
fn parse_chunked(bytes: &[u8]) -> (String, Vec<Vec<u8>>, bool) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head")
        + 4;
    let head = String::from_utf8(bytes[..end].to_vec()).expect("ASCII head");
    let mut rest = &bytes[end..];
    let mut chunks = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("chunk size");
        if size == 0 {
            return (head, chunks, true);
        }
        let data = &rest[line_end + 2..];
        if data.len() < size + 2 {
            break;
        }
        chunks.push(data[..size].to_vec());
        assert_eq!(&data[size..size + 2], b"\r\n", "chunk data ends with CRLF");
        rest = &data[size + 2..];
    }
    (head, chunks, false)
}

fn planned_writes(plan: &UpstreamPlan) -> Vec<Vec<u8>> {
    plan.writes
        .iter()
        .filter(|w| !w.bytes.is_empty())
        .map(|w| w.bytes.to_vec())
        .collect()
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> (Vec<u8>, Option<ErrorKind>) {
    stream.write_all(request).await.expect("write request");
    read_until_end(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planned_write_is_its_own_http1_chunk() {
    let mock = start_mock(false);
    for spec in ["split:3", "default", "comments", "coalesced", "unicode"] {
        let plan = plan_of(&mock, spec);
        let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
        let request = raw_request_closing(Some(spec), "HTTP/1.1", "hi");
        let (bytes, error) = exchange(&mut tcp, &request).await;
        assert_eq!(error, None, "{spec}");
        let (head, chunks, last) = parse_chunked(&bytes);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        assert!(last, "{spec}: the body ends with the last chunk");
        assert_eq!(
            chunks,
            planned_writes(&plan),
            "{spec}: one chunk per write, byte for byte"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_status_has_a_content_length_body() {
    let mock = start_mock(false);
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    tcp.write_all(&raw_request(Some("error:429"), "HTTP/1.1", "hi"))
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let plan = plan_of(&mock, "error:429");
    while !got.ends_with(&plan.body()) {
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("content-length: {}\r\n", plan.body().len())),
        "{text}"
    );
    assert!(!text.contains("transfer-encoding"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_over_http1_is_a_tcp_reset_after_the_planned_chunks() {
    let mock = Arc::new(start_mock(false));
    let n = nonce("rst");
    let plan = plan_of(&mock, "reset:3");
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    let (bytes, error) = exchange(
        &mut tcp,
        &raw_request(Some("reset:3"), "HTTP/1.1", &nonce_directive(&n)),
    )
    .await;
    assert_eq!(
        error,
        Some(ErrorKind::ConnectionReset),
        "a reset, not a clean close"
    );
    let (_, chunks, last) = parse_chunked(&bytes);
    assert_eq!(chunks, planned_writes(&plan));
    assert!(!last, "no last chunk before a reset");
    assert_eq!(ended(&mock, &n).await.end, RequestEnd::Reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_ends_cleanly_and_keeps_the_connection_alive() {
    let mock = start_mock(false);
    let plan = plan_of(&mock, "abort:2");
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    tcp.write_all(&raw_request(Some("abort:2"), "HTTP/1.1", "hi"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !got.ends_with(b"\r\n0\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let (_, chunks, last) = parse_chunked(&got);
    assert!(last);
    assert_eq!(chunks, planned_writes(&plan));
    // Same connection, second request.
    let second = raw_request_closing(Some("finish:"), "HTTP/1.1", "again");
    let (bytes, error) = exchange(&mut tcp, &second).await;
    assert_eq!(error, None);
    let (_, chunks, _) = parse_chunked(&bytes);
    assert_eq!(chunks, planned_writes(&plan_of(&mock, "finish")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_0_gets_a_close_delimited_body() {
    let mock = start_mock(false);
    let plan = plan_of(&mock, "short");
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    let (bytes, error) = exchange(&mut tcp, &raw_request(Some("short"), "HTTP/1.0", "hi")).await;
    assert_eq!(error, None);
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert_eq!(bytes[end..], plan.body()[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http2_preface_is_recognised_by_its_first_bytes() {
    let mock = start_mock(false);
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut frame_head = [0u8; 9];
    tokio::time::timeout(DEADLINE, tcp.read_exact(&mut frame_head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame_head[3], 0x4, "the server's first frame is SETTINGS");
    assert_eq!(&frame_head[5..9], &[0, 0, 0, 0], "on stream 0");
}

/// The type of each complete HTTP/2 frame in `bytes`.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_get_a_400_or_a_goaway_and_the_mock_keeps_serving() {
    let mock = start_mock(false);
    let garbage: [&[u8]; 5] = [
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x16\x03\x01\x00\x05hello",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ];
    for bytes in garbage {
        let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        let _ = tcp.shutdown().await;
        let (reply, _) = read_until_end(&mut tcp).await;
        if bytes.starts_with(b"PRI") {
            assert!(
                h2_frame_types(&reply).ends_with(&[0x4, 0x7]),
                "SETTINGS, then GOAWAY: {reply:?}"
            );
        } else {
            assert!(
                reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
                "{reply:?}"
            );
        }
    }
    let got = fetch(&mock, H2_CLEAR, get_request(H2_CLEAR, "/health")).await;
    assert_eq!(got.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_on_the_tls_port_is_refused_without_harm() {
    let mock = start_mock(true);
    let mut tcp = TcpStream::connect(mock.local_addr()).await.unwrap();
    let (reply, _) = exchange(&mut tcp, &raw_request(None, "HTTP/1.1", "hi")).await;
    assert!(!reply.starts_with(b"HTTP/"), "no HTTP answer in cleartext");
    let got = fetch(&mock, H1_TLS, get_request(H1_TLS, "/health")).await;
    assert_eq!(got.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unix_socket_serves_both_protocols() {
    let path =
        std::env::temp_dir().join(format!("streamcheck-mock-test-{}.sock", std::process::id()));
    let mock = Arc::new(start_with(false, |c| c.socket = Some(path.clone())));
    assert_eq!(mock.socket_path(), Some(path.as_path()));

    let n = nonce("unix");
    let mut unix = UnixStream::connect(&path).await.unwrap();
    let request = raw_request_closing(Some("abort:1"), "HTTP/1.1", &nonce_directive(&n));
    let (bytes, error) = exchange(&mut unix, &request).await;
    assert_eq!(error, None);
    let (_, chunks, _) = parse_chunked(&bytes);
    assert_eq!(chunks, planned_writes(&plan_of(&mock, "abort:1")));
    let record = ended(&mock, &n).await;
    assert_eq!((record.transport, record.peer), (Transport::Unix, None));

    let mut h2 = handshake(UnixStream::connect(&path).await.unwrap(), Proto::H2).await;
    let got = read_all(
        h2.send(chat_request(H2_CLEAR, Some("short"), chat_body("hi")))
            .await,
    )
    .await;
    assert_eq!(got.body, plan_of(&mock, "short").body());

    mock.shutdown();
    assert!(!path.exists(), "the socket file is removed at shutdown");
}
