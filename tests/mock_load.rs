//! Many streams at once: 10,000 simultaneously open streams, and concurrent streams told apart by
//! their nonce content.

mod mock_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use mock_common::*;
use streamcheck::mock::{MockHandle, RequestEnd};
use streamcheck::pattern::{BuiltinSpec, Ending, MockSettings, UpstreamPlan, Write};

/// Opens `count` streams on one connection and reads the first frame of each.
async fn open_streams(
    mock: Arc<MockHandle>,
    target: Target,
    count: usize,
    pattern: String,
) -> (Sender, Vec<Incoming>) {
    let mut sender = connect(&mock, target).await;
    let mut pending = Vec::with_capacity(count);
    for _ in 0..count {
        let req = chat_request(target, Some(&pattern), chat_body("hi"));
        pending.push(match &mut sender {
            Sender::H2(s) => s.send_request(req),
            Sender::H1(_) => unreachable!("one stream per HTTP/1.1 connection"),
        });
    }
    let mut bodies = Vec::with_capacity(count);
    for response in pending {
        let mut body = response.await.expect("response").into_body();
        next_frame(&mut body).await;
        bodies.push(body);
    }
    (sender, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_are_open_at_once_then_all_cancelled() {
    const CONNECTIONS: usize = 10;
    const PER_CONNECTION: usize = 1_000;
    let mock = Arc::new(start_with(false, |c| c.log_capacity = 20_000));
    let held = UpstreamPlan::sse(
        vec![Write::new(&b"data: {}\n\n"[..], Duration::ZERO)],
        Ending::Stall,
    );
    let pattern = format!("script:{}", mock.register_script(held));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        tasks.spawn(open_streams(
            mock.clone(),
            H2_CLEAR,
            PER_CONNECTION,
            pattern.clone(),
        ));
    }
    let mut open = Vec::new();
    while let Some(done) = tasks.join_next().await {
        open.push(done.expect("task"));
    }
    let log = mock.all_requests();
    let in_progress = log
        .iter()
        .filter(|r| r.end == RequestEnd::InProgress)
        .count();
    assert_eq!(
        in_progress,
        CONNECTIONS * PER_CONNECTION,
        "every stream is open in the mock at once"
    );

    drop(open);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = mock.all_requests();
        let cancelled = log
            .iter()
            .filter(|r| r.end == (RequestEnd::Cancelled { at_write: 1 }))
            .count();
        if cancelled == CONNECTIONS * PER_CONNECTION {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {cancelled} streams were seen cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_default_streams_carry_their_own_nonce() {
    let settings = MockSettings {
        chunk_count: 6,
        chunk_delay: Duration::from_millis(5),
    };
    let mock = Arc::new(start_with(false, |c| c.settings = settings.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    // 300 HTTP/1.1 connections and 1,200 HTTP/2 streams over 4 connections, all interleaved.
    for _ in 0..300 {
        let mock = mock.clone();
        tasks.spawn(async move {
            let n = nonce("h1");
            let got = fetch(
                &mock,
                H1_CLEAR,
                chat_request(H1_CLEAR, None, nonce_body(&n)),
            )
            .await;
            (n, got.body)
        });
    }
    for _ in 0..4 {
        let mock = mock.clone();
        let Sender::H2(sender) = connect(&mock, H2_CLEAR).await else {
            unreachable!()
        };
        for _ in 0..300 {
            let mut sender = sender.clone();
            tasks.spawn(async move {
                let n = nonce("h2");
                let req = chat_request(H2_CLEAR, None, nonce_body(&n));
                let got = read_all(sender.send_request(req).await.expect("response")).await;
                (n, got.body)
            });
        }
    }
    let mut seen = 0;
    while let Some(done) = tasks.join_next().await {
        let (n, body) = done.expect("task");
        assert_eq!(
            body,
            BuiltinSpec::default_pattern()
                .plan(&settings, Some(&n))
                .body(),
            "stream {n}"
        );
        assert_eq!(mock.requests_for(&n).len(), 1, "{n}");
        seen += 1;
    }
    assert_eq!(seen, 1_500);
}
