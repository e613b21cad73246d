//! Every pattern over HTTP/1.1 and HTTP/2, cleartext and TLS: the exact body bytes the pattern's
//! plan promises, its headers, and a log record whose writes are exactly the plan's writes.

mod mock_common;

use std::sync::Arc;

use mock_common::*;
use streamcheck::mock::{HttpVersion, MockHandle, PatternChannel, RequestEnd};
use streamcheck::pattern::{self, BuiltinSpec, Ending, ExpectedKind};

/// One spec per catalog pattern, with small parameters so the whole set runs fast.
fn every_spec() -> Vec<String> {
    pattern::catalog()
        .iter()
        .map(|p| match p.name() {
            "abort" => "abort:4".to_owned(),
            "finish" => "finish:length".to_owned(),
            "split" => "split:3".to_owned(),
            "error" => "error:503".to_owned(),
            "stall" => "stall:30".to_owned(),
            "reset" => "reset:3".to_owned(),
            "delay" => "delay:5".to_owned(),
            name => name.to_owned(),
        })
        .collect()
}

async fn check_pattern(mock: Arc<MockHandle>, target: Target, spec: String) {
    let n = nonce("pattern");
    let resolved = pattern::resolve(&spec, mock.settings(), Some(&n)).expect("spec resolves");
    let plan = &resolved.plan;
    let req = chat_request(
        target,
        Some(&spec),
        chat_body(&format!("hello [[nonce:{n}]]")),
    );
    let got = fetch(&mock, target, req).await;
    let ctx = format!("{spec} over {target:?}");

    assert_eq!(got.status.as_u16(), plan.status, "{ctx}");
    for (name, value) in &plan.headers {
        assert_eq!(
            got.headers.get(name).map(|v| v.as_bytes()),
            Some(value.as_bytes()),
            "{ctx}: {name}"
        );
    }
    let applied = got
        .headers
        .get("x-test-pattern-applied")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(applied, Some(resolved.spec.canonical()), "{ctx}");
    if plan.status == 200 {
        assert!(
            got.headers.get("content-length").is_none(),
            "{ctx}: a stream has no length"
        );
    }
    assert_eq!(got.text(), String::from_utf8_lossy(&plan.body()), "{ctx}");
    assert_eq!(got.body, plan.body(), "{ctx}");
    let reset = plan.ending == Ending::Reset;
    assert_eq!(
        got.error.is_some(),
        reset,
        "{ctx}: body error {:?}",
        got.error
    );
    if let ExpectedKind::UpstreamError { status, message } = &resolved.expected.kind {
        assert_eq!(got.status.as_u16(), *status);
        assert_eq!(got.json()["error"]["message"], message.as_str());
    }

    let record = ended(&mock, &n).await;
    assert_eq!(
        record.end,
        if reset {
            RequestEnd::Reset
        } else {
            RequestEnd::Completed
        },
        "{ctx}"
    );
    let mut at = 0;
    let planned: Vec<(u64, u64)> = plan
        .writes
        .iter()
        .filter(|w| !w.bytes.is_empty())
        .map(|w| {
            at += w.bytes.len() as u64;
            (at - w.bytes.len() as u64, at)
        })
        .collect();
    let logged: Vec<(u64, u64)> = record.writes.iter().map(|w| (w.start, w.end)).collect();
    assert_eq!(logged, planned, "{ctx}: logged writes");
    assert!(
        record.writes.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "{ctx}"
    );
    assert!(
        record
            .writes
            .first()
            .is_none_or(|w| w.ts_ns >= record.arrival_ns),
        "{ctx}"
    );
    let version = if target.proto == Proto::H2 {
        HttpVersion::Http2
    } else {
        HttpVersion::Http11
    };
    assert_eq!(record.http_version, version, "{ctx}");
    assert_eq!(record.tls, target.tls, "{ctx}");
    assert_eq!(
        record.pattern.as_deref(),
        Some(resolved.spec.canonical().as_str()),
        "{ctx}"
    );
    assert_eq!(record.pattern_channel, PatternChannel::Header, "{ctx}");
    assert_eq!(
        record.x_test_pattern.as_deref(),
        Some(spec.as_str()),
        "{ctx}"
    );
    assert_eq!(
        record.authorization.as_deref(),
        Some("Bearer sk-test"),
        "{ctx}"
    );
    assert_eq!(record.status, plan.status, "{ctx}");
    let body = record.body.as_ref().expect("decoded body");
    assert_eq!(body.model.as_deref(), Some("test-model"));
    assert_eq!(body.stream, Some(true));
    assert_eq!(body.messages[1].content, format!("hello [[nonce:{n}]]"));
}

async fn every_pattern_exactly(target: Target) {
    let mock = Arc::new(start_mock(target.tls));
    let mut tasks = tokio::task::JoinSet::new();
    for spec in every_spec() {
        tasks.spawn(check_pattern(mock.clone(), target, spec));
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_exactly_over_http1_cleartext() {
    every_pattern_exactly(H1_CLEAR).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_exactly_over_http2_prior_knowledge() {
    every_pattern_exactly(H2_CLEAR).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_exactly_over_http1_tls() {
    every_pattern_exactly(H1_TLS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_exactly_over_http2_tls() {
    every_pattern_exactly(H2_TLS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_directive_selects_the_pattern_when_no_header_is_sent() {
    let mock = Arc::new(start_mock(false));
    for (target, header) in [(H1_CLEAR, None), (H2_CLEAR, Some("  "))] {
        let n = nonce("directive");
        let body = chat_body(&format!("[[nonce:{n}]] please [[pattern:abort:2]]"));
        let got = fetch(&mock, target, chat_request(target, header, body)).await;
        let expected = pattern::resolve("abort:2", mock.settings(), Some(&n)).unwrap();
        assert_eq!(got.body, expected.plan.body());
        assert_eq!(got.headers["x-test-pattern-applied"], "abort:2");
        let record = ended(&mock, &n).await;
        assert_eq!(record.pattern_channel, PatternChannel::Prompt);
        assert_eq!(record.pattern.as_deref(), Some("abort:2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_wins_over_a_prompt_directive() {
    let mock = Arc::new(start_mock(false));
    let n = nonce("both");
    let body = chat_body(&format!("[[nonce:{n}]] [[pattern:long]]"));
    let got = fetch(&mock, H2_CLEAR, chat_request(H2_CLEAR, Some("short"), body)).await;
    assert_eq!(got.body, plan_of(&mock, "short").body());
    assert_eq!(
        ended(&mock, &n).await.pattern_channel,
        PatternChannel::Header
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_without_a_pattern_is_carried_in_the_default_content() {
    let mock = Arc::new(start_mock(false));
    let n = nonce("plain");
    let got = fetch(
        &mock,
        H1_CLEAR,
        chat_request(H1_CLEAR, None, chat_body(&format!("hi [[nonce:{n}]]"))),
    )
    .await;
    let spec = BuiltinSpec::default_pattern();
    assert_eq!(got.body, spec.plan(mock.settings(), Some(&n)).body());
    let expected = spec.expected(mock.settings(), Some(&n));
    assert!(expected.content.contains(&format!("[{n}]")));
    assert!(got.headers.get("x-test-pattern-applied").is_none());
    let record = ended(&mock, &n).await;
    assert_eq!(
        (record.pattern_channel, record.pattern.as_deref()),
        (PatternChannel::None, Some("default"))
    );
    assert_eq!(
        record.writes.len(),
        18 + 1 + 2,
        "18 chunks, the nonce chunk, final chunk, [DONE]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directives_are_read_from_content_parts_and_from_prompt() {
    let mock = Arc::new(start_mock(false));
    let n1 = nonce("parts");
    let parts = serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": [
        {"type": "text", "text": format!("[[nonce:{n1}]]")}, {"type": "text", "text": "[[pattern:finish:length]]"},
    ]}]});
    let got = fetch(
        &mock,
        H2_CLEAR,
        chat_request(H2_CLEAR, None, parts.to_string()),
    )
    .await;
    assert_eq!(got.body, plan_of(&mock, "finish:length").body());
    assert_eq!(
        ended(&mock, &n1).await.body.unwrap().messages[0].content,
        format!("[[nonce:{n1}]][[pattern:finish:length]]")
    );

    let n2 = nonce("prompt");
    let prompt = serde_json::json!({"prompt": format!("[[pattern:short]] [[nonce:{n2}]]")});
    let got = fetch(
        &mock,
        H1_CLEAR,
        chat_request(H1_CLEAR, None, prompt.to_string()),
    )
    .await;
    assert_eq!(got.body, plan_of(&mock, "short").body());
    assert_eq!(
        ended(&mock, &n2).await.pattern_channel,
        PatternChannel::Prompt
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_last_user_message_steers_the_mock() {
    let mock = Arc::new(start_mock(false));
    let n = nonce("last");
    let body = serde_json::json!({"messages": [
        {"role": "user", "content": "[[pattern:long]]"},
        {"role": "assistant", "content": "[[pattern:unicode]]"},
        {"role": "user", "content": format!("[[nonce:{n}]] [[pattern:abort:1]]")},
    ]});
    let got = fetch(
        &mock,
        H1_CLEAR,
        chat_request(H1_CLEAR, None, body.to_string()),
    )
    .await;
    assert_eq!(got.body, plan_of(&mock, "abort:1").body());
    assert_eq!(ended(&mock, &n).await.pattern.as_deref(), Some("abort:1"));
}
