//! Refusals (4xx JSON errors, all logged), scripts over HTTP, the log endpoint and its bound,
//! and start-up errors.

mod mock_common;

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{Full, StreamBody};
use mock_common::*;
use streamcheck::mock::{MockConfig, MockError, MockServer, RequestEnd, TlsMode};
use streamcheck::pattern;

fn post(target: Target, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut req = chat_request(target, None, body);
    *req.uri_mut() = format!("http://localhost{path}").parse().unwrap();
    req
}

/// Asserts an OpenAI-style error with this status and code, whose message contains `needle`.
fn assert_error(got: &Fetched, status: u16, code: &str, needle: &str) -> serde_json::Value {
    assert_eq!(got.status, status, "{}", got.text());
    assert_eq!(got.headers["content-type"], "application/json");
    let json = got.json();
    assert_eq!(json["error"]["code"], code, "{json}");
    let message = json["error"]["message"].as_str().expect("message");
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_json_errors_and_are_logged() {
    let mock = start_mock(false);
    let t = H2_CLEAR;
    let cases: Vec<(Request<Full<Bytes>>, u16, &str, &str)> = vec![
        (
            chat_request(t, None, "not json"),
            400,
            "invalid_json",
            "not JSON",
        ),
        (
            chat_request(t, None, "[1,2]"),
            400,
            "invalid_request",
            "not an object",
        ),
        (
            chat_request(t, None, r#"{"model":"m"}"#),
            400,
            "invalid_request",
            "`messages` is missing",
        ),
        (
            chat_request(t, None, r#"{"messages":{}}"#),
            400,
            "invalid_request",
            "must be an array",
        ),
        (
            chat_request(t, None, r#"{"messages":[{"content":"x"}]}"#),
            400,
            "invalid_request",
            "messages[0].role",
        ),
        (
            chat_request(t, None, r#"{"messages":[],"stream":"yes"}"#),
            400,
            "invalid_request",
            "`stream`",
        ),
        (
            chat_request(t, None, r#"{"messages":[],"model":7}"#),
            400,
            "invalid_request",
            "`model`",
        ),
        (
            chat_request(t, Some("bogus"), chat_body("hi")),
            400,
            "unknown_test_pattern",
            "`bogus`",
        ),
        (
            chat_request(t, Some("stall:soon"), chat_body("hi")),
            400,
            "malformed_test_pattern",
            "stall:MS",
        ),
        (
            chat_request(t, None, chat_body("[[pattern:nope]]")),
            400,
            "unknown_test_pattern",
            "directive",
        ),
        (
            chat_request(t, None, chat_body("[[nonce:bad nonce]]")),
            400,
            "invalid_request",
            "nonce",
        ),
        (
            chat_request(t, Some("script:s999"), chat_body("hi")),
            400,
            "unknown_script",
            "s999",
        ),
        (
            get_request(t, "/v1/chat/completions"),
            405,
            "method_not_allowed",
            "use POST",
        ),
        (
            post(t, "/health", "{}"),
            405,
            "method_not_allowed",
            "use GET",
        ),
        (
            get_request(t, "/v2/chat/completions"),
            404,
            "not_found",
            "/v2/chat/completions",
        ),
    ];
    let count = cases.len();
    for (req, status, code, needle) in cases {
        let got = fetch(&mock, t, req).await;
        let json = assert_error(&got, status, code, needle);
        if code.ends_with("test_pattern") {
            let valid = json["error"]["valid_patterns"]
                .as_array()
                .expect("valid patterns listed");
            assert_eq!(valid.len(), pattern::valid_specs().len());
        }
        if status == 405 {
            assert!(got.headers.contains_key("allow"));
        }
    }
    let log = mock.all_requests();
    assert_eq!(log.len(), count, "every refusal is logged");
    assert!(
        log.iter()
            .all(|r| r.end == RequestEnd::Completed && r.status >= 400 && r.error.is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_with_or_without_a_length() {
    let mock = start_mock(false);
    let big = Bytes::from(vec![b' '; (1 << 20) + 1]);
    let got = fetch(&mock, H1_CLEAR, chat_request(H1_CLEAR, None, big.clone())).await;
    assert_error(&got, 413, "request_too_large", "1048576");

    // Chunked (HTTP/1.1) and unsized DATA frames (HTTP/2): no Content-Length to check up front.
    for target in [H1_CLEAR, H2_CLEAR] {
        let chunks = (0..17).map(|_| {
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![
                b' ';
                65536
            ])))
        });
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let scheme_host = "http://localhost/v1/chat/completions";
        let req = Request::post(scheme_host)
            .header("host", "localhost")
            .body(body)
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(mock.local_addr())
            .await
            .unwrap();
        let io = hyper_util::rt::TokioIo::new(tcp);
        let response = if target.proto == Proto::H1 {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        } else {
            let exec = hyper_util::rt::TokioExecutor::new();
            let (mut send, conn) = hyper::client::conn::http2::handshake(exec, io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        };
        let got = read_all(response.expect("a response before the upload ends")).await;
        assert_error(&got, 413, "request_too_large", "larger than");
    }
    let mut exactly = chat_body("hi").into_bytes();
    exactly.resize(1 << 20, b' '); // JSON allows trailing whitespace
    let got = fetch(
        &mock,
        H2_CLEAR,
        chat_request(H2_CLEAR, Some("abort:1"), exactly),
    )
    .await;
    assert_eq!(got.status, 200, "exactly 1 MiB is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_registered_over_http_are_played_byte_for_byte() {
    let mock = Arc::new(start_mock(false));
    let script = r#"{"writes":[{"content":"Hi"},{"hex":"646174613a20e282"},{"hex":"ac0a0a","delay_ms":30}],"ending":"done"}"#;
    let got = fetch(
        &mock,
        H1_CLEAR,
        post(H1_CLEAR, "/_streamcheck/scripts", script),
    )
    .await;
    assert_eq!(got.status, 201, "{}", got.text());
    let id = got.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(got.json()["pattern"], format!("script:{id}"));

    let n = nonce("script");
    let pattern = format!("script:{id}");
    let got = fetch(
        &mock,
        H2_CLEAR,
        chat_request(H2_CLEAR, Some(&pattern), nonce_body(&n)),
    )
    .await;
    let expected = [
        pattern::chunk_event("Hi"),
        "data: €\n\n".as_bytes().to_vec(),
        pattern::final_event("stop"),
        pattern::DONE_EVENT.to_vec(),
    ]
    .concat();
    assert_eq!(got.body, expected);
    assert_eq!(got.headers["x-test-pattern-applied"], pattern.as_str());
    let record = ended(&mock, &n).await;
    assert_eq!(record.writes.len(), 5);
    assert!(record.writes[2].ts_ns - record.writes[1].ts_ns >= 30_000_000);

    let bad = fetch(
        &mock,
        H1_CLEAR,
        post(
            H1_CLEAR,
            "/_streamcheck/scripts",
            r#"{"writes":[{"hex":"0"}]}"#,
        ),
    )
    .await;
    assert_error(&bad, 400, "invalid_script", "odd number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_have_their_own_body_limit_above_the_chat_limit() {
    let mock = Arc::new(start_with(false, |c| {
        c.max_body_bytes = 1024;
        c.max_script_bytes = 4096;
    }));
    let script = |len: usize| {
        let content = "z".repeat(len);
        format!(r#"{{"writes":[{{"content":"{content}"}}],"ending":"done"}}"#)
    };
    let over_chat_limit = fetch(
        &mock,
        H1_CLEAR,
        post(H1_CLEAR, "/_streamcheck/scripts", script(2000)),
    )
    .await;
    assert_eq!(over_chat_limit.status, 201, "{}", over_chat_limit.text());
    let over_script_limit = fetch(
        &mock,
        H1_CLEAR,
        post(H1_CLEAR, "/_streamcheck/scripts", script(5000)),
    )
    .await;
    assert_error(&over_script_limit, 413, "request_too_large", "4096");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_endpoint_filters_by_nonce_and_the_log_stays_bounded() {
    let mock = Arc::new(start_with(false, |c| c.log_capacity = 3));
    let nonces: Vec<String> = (0..5).map(|_| nonce("bounded")).collect();
    for n in &nonces {
        fetch(
            &mock,
            H1_CLEAR,
            chat_request(H1_CLEAR, Some("abort:1"), nonce_body(n)),
        )
        .await;
        ended(&mock, n).await;
    }
    assert_eq!(mock.all_requests().len(), 3);
    assert_eq!(mock.dropped_requests(), 2);
    assert!(
        mock.requests_for(&nonces[0]).is_empty(),
        "the oldest went first"
    );

    let query = format!("/_streamcheck/requests?nonce={}", nonces[4]);
    let got = fetch(&mock, H2_CLEAR, get_request(H2_CLEAR, &query)).await;
    let json = got.json();
    assert_eq!(
        (json["capacity"].as_u64(), json["dropped"].as_u64()),
        (Some(3), Some(2))
    );
    let requests = json["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r["nonce"], nonces[4].as_str());
    assert_eq!(r["end"]["kind"], "completed");
    assert_eq!(r["pattern"], "abort:1");
    assert_eq!(r["pattern_channel"], "header");
    assert_eq!(r["x_test_pattern"], "abort:1");
    assert_eq!(r["authorization"], "Bearer sk-test");
    assert_eq!(r["body"]["model"], "test-model");
    assert_eq!(r["writes"][0]["start"], 0);
    assert!(r["writes"][0]["ts_ns"].as_u64().unwrap() >= r["arrival_ns"].as_u64().unwrap());

    let all = fetch(
        &mock,
        H2_CLEAR,
        get_request(H2_CLEAR, "/_streamcheck/requests"),
    )
    .await
    .json();
    assert_eq!(
        all["requests"].as_array().unwrap().len(),
        3,
        "control routes are not logged"
    );
    let view = format!("/_streamcheck/requests?nonce={}&view=writes", nonces[4]);
    let writes = fetch(&mock, H2_CLEAR, get_request(H2_CLEAR, &view))
        .await
        .json();
    let full = &requests[0]["writes"];
    let compact = &writes["requests"][0];
    assert_eq!(compact["nonce"], nonces[4].as_str());
    assert_eq!(compact["id"], r["id"]);
    assert_eq!(compact["writes"][0][0], full[0]["ts_ns"]);
    assert_eq!(compact["writes"][0][1], full[0]["end"]);
    assert_eq!(
        compact["writes"].as_array().map(Vec::len),
        full.as_array().map(Vec::len)
    );
    assert!(compact.get("headers").is_none(), "{compact}");
    let bad = fetch(
        &mock,
        H2_CLEAR,
        get_request(H2_CLEAR, "/_streamcheck/requests?nonce=a%20b"),
    )
    .await;
    assert_error(&bad, 400, "invalid_request", "nonce");
    let bad_view = fetch(
        &mock,
        H2_CLEAR,
        get_request(H2_CLEAR, "/_streamcheck/requests?view=all"),
    )
    .await;
    assert_error(&bad_view, 400, "invalid_request", "view=writes");
    let patterns = fetch(
        &mock,
        H2_CLEAR,
        get_request(H2_CLEAR, "/_streamcheck/patterns"),
    )
    .await
    .json();
    assert_eq!(
        patterns["patterns"].as_array().unwrap().len(),
        pattern::catalog().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_health_answer_json() {
    let mock = start_mock(true);
    for target in [H1_TLS, H2_TLS] {
        let models = fetch(&mock, target, get_request(target, "/v1/models"))
            .await
            .json();
        assert_eq!(models["data"][0]["id"], pattern::CHUNK_MODEL);
        let health = fetch(&mock, target, get_request(target, "/health"))
            .await
            .json();
        assert_eq!(health["status"], "ok");
    }
}

#[test]
fn user_certificate_files_are_served() {
    let dir = std::env::temp_dir().join(format!("streamcheck-mock-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let config = MockConfig {
        tls: TlsMode::Files {
            cert: cert_path.clone(),
            key: key_path.clone(),
        },
        ..MockConfig::default()
    };
    let mock = MockServer::start(config).expect("starts with the files");
    assert!(mock.base_url().starts_with("https://127.0.0.1:"));
    assert_eq!(mock.cert_path(), None, "nothing generated");
    drop(mock);

    let swapped = MockConfig {
        tls: TlsMode::Files {
            cert: key_path.clone(),
            key: cert_path.clone(),
        },
        ..MockConfig::default()
    };
    let err = MockServer::start(swapped).unwrap_err().to_string();
    assert!(err.contains("no PEM CERTIFICATE"), "{err}");
    let missing = MockConfig {
        tls: TlsMode::Files {
            cert: dir.join("nope.pem"),
            key: key_path,
        },
        ..MockConfig::default()
    };
    let err = MockServer::start(missing).unwrap_err().to_string();
    assert!(err.contains("nope.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_generated_ca_goes_where_asked_and_the_temporary_one_is_removed() {
    let out = std::env::temp_dir().join(format!(
        "streamcheck-mock-ca-out-{}.pem",
        std::process::id()
    ));
    let mock = MockServer::start(MockConfig {
        tls: TlsMode::SelfSigned {
            ca_out: Some(out.clone()),
        },
        ..MockConfig::default()
    })
    .unwrap();
    assert_eq!(mock.cert_path(), Some(out.as_path()));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        mock.ca_pem().unwrap()
    );
    drop(mock);
    assert!(out.exists(), "a requested output file is kept");
    std::fs::remove_file(&out).unwrap();

    let mock = MockServer::start(MockConfig {
        tls: TlsMode::SelfSigned { ca_out: None },
        ..MockConfig::default()
    })
    .unwrap();
    let temp = mock.cert_path().unwrap().to_path_buf();
    assert!(temp.exists());
    mock.shutdown();
    assert!(!temp.exists(), "a temporary CA file is removed at shutdown");
}

#[test]
fn start_up_errors_name_the_cause() {
    let first = MockServer::start(MockConfig::default()).unwrap();
    let taken = MockConfig {
        listen: first.local_addr(),
        ..MockConfig::default()
    };
    let err = MockServer::start(taken).unwrap_err();
    assert!(matches!(err, MockError::Bind { .. }), "{err}");
    assert!(err.to_string().contains("port 0 picks a free one"), "{err}");

    let file = std::env::temp_dir().join(format!(
        "streamcheck-mock-not-a-socket-{}",
        std::process::id()
    ));
    std::fs::write(&file, "x").unwrap();
    let err = MockServer::start(MockConfig {
        socket: Some(file.clone()),
        ..MockConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    std::fs::remove_file(&file).unwrap();

    let live =
        std::env::temp_dir().join(format!("streamcheck-mock-live-{}.sock", std::process::id()));
    let _holder = MockServer::start(MockConfig {
        socket: Some(live.clone()),
        ..MockConfig::default()
    })
    .unwrap();
    let err = MockServer::start(MockConfig {
        socket: Some(live.clone()),
        ..MockConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("another server is listening"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_that_break_http_rules_do_not_break_the_mock() {
    use std::time::Duration;
    use streamcheck::pattern::{Ending, UpstreamPlan, Write};
    let mock = Arc::new(start_mock(false));
    let with = |headers: &[(&str, &str)], status: u16, body: &'static [u8], delay: Duration| {
        UpstreamPlan {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            writes: vec![Write::new(body, delay)],
            ending: Ending::Close,
        }
    };
    let long = mock.register_script(with(
        &[("content-length", "3")],
        200,
        b"abcdef",
        Duration::ZERO,
    ));
    let short = mock.register_script(with(
        &[("content-length", "50")],
        200,
        b"abc",
        Duration::ZERO,
    ));
    let informational = mock.register_script(with(&[], 101, b"x", Duration::ZERO));
    let bad_header = mock.register_script(with(&[("bad name", "x")], 200, b"x", Duration::ZERO));
    let forever = mock.register_script(with(&[], 200, b"x", Duration::MAX));
    for target in [H1_CLEAR, H2_CLEAR] {
        let send = |id: &str| chat_request(target, Some(&format!("script:{id}")), chat_body("hi"));
        let got = fetch(&mock, target, send(&long)).await;
        assert!(
            b"abc".starts_with(&got.body),
            "{target:?}: nothing past Content-Length reaches the client: {:?}",
            got.body
        );
        let got = fetch(&mock, target, send(&short)).await;
        assert!(
            got.error.is_some(),
            "{target:?}: a body short of its Content-Length ends in an error, not as whole"
        );
        let got = fetch(&mock, target, send(&informational)).await;
        assert_error(&got, 500, "invalid_plan", "not a final status");
        let got = fetch(&mock, target, send(&bad_header)).await;
        assert_error(&got, 500, "invalid_plan", "bad name");
        // A delay beyond the clock's range stalls rather than panics.
        let mut sender = connect(&mock, target).await;
        let response = sender.send(send(&forever)).await;
        assert_eq!(response.status(), 200);
        drop((response, sender));
    }
    let got = fetch(&mock, H1_CLEAR, get_request(H1_CLEAR, "/health")).await;
    assert_eq!(got.status, 200, "still serving");
}
