//! Delays, stalls and cancellation. Timing checks are lower bounds only (a delay of D took at
//! least D); deadlines only catch hangs.

mod mock_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_common::*;
use streamcheck::mock::{MockHandle, RequestEnd, RequestRecord};
use streamcheck::pattern::{Ending, MockSettings, UpstreamPlan, Write};

fn gaps_ns(record: &RequestRecord) -> Vec<u64> {
    record
        .writes
        .windows(2)
        .map(|w| w[1].ts_ns - w[0].ts_ns)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_spaces_every_event_by_at_least_its_milliseconds() {
    let mock = Arc::new(start_mock(false));
    let mut runs = Vec::new();
    for target in [H1_CLEAR, H2_CLEAR] {
        let mock = mock.clone();
        runs.push(tokio::spawn(async move {
            let n = nonce("delay");
            let got = fetch(
                &mock,
                target,
                chat_request(target, Some("delay:60"), nonce_body(&n)),
            )
            .await;
            let record = ended(&mock, &n).await;
            assert_eq!(record.writes.len(), 13);
            assert!(
                gaps_ns(&record).iter().all(|&g| g >= 60_000_000),
                "{target:?}: {:?}",
                gaps_ns(&record)
            );
            let first = got.frames.first().expect("frames").0;
            let last = got.frames.last().expect("frames").0;
            assert!(
                last - first >= Duration::from_millis(12 * 60),
                "{target:?}: {:?}",
                last - first
            );
        }));
    }
    for run in runs {
        run.await.expect("run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_sends_the_head_then_nothing_for_its_milliseconds() {
    let mock = Arc::new(start_mock(true));
    let mut runs = Vec::new();
    for target in [H1_TLS, H2_TLS] {
        let mock = mock.clone();
        runs.push(tokio::spawn(async move {
            let n = nonce("stall");
            let mut sender = connect(&mock, target).await;
            let sent = Instant::now();
            let response = sender
                .send(chat_request(target, Some("stall:300"), nonce_body(&n)))
                .await;
            assert_eq!(response.status(), 200, "the head comes at once");
            let got = read_all(response).await;
            let first_data = got.frames.first().expect("data after the stall").0;
            assert!(
                first_data - sent >= Duration::from_millis(300),
                "{target:?}: {:?}",
                first_data - sent
            );
            let record = ended(&mock, &n).await;
            assert!(record.writes[0].ts_ns - record.arrival_ns >= 300_000_000);
            assert_eq!(record.end, RequestEnd::Completed);
        }));
    }
    for run in runs {
        run.await.expect("run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_delay_spaces_the_default_answer() {
    let settings = MockSettings {
        chunk_count: 5,
        chunk_delay: Duration::from_millis(40),
    };
    let mock = Arc::new(start_with(false, |c| c.settings = settings));
    let n = nonce("chunks");
    fetch(
        &mock,
        H2_CLEAR,
        chat_request(H2_CLEAR, None, nonce_body(&n)),
    )
    .await;
    let record = ended(&mock, &n).await;
    assert_eq!(record.writes.len(), 5 + 1 + 2);
    assert!(
        gaps_ns(&record).iter().all(|&g| g >= 40_000_000),
        "{:?}",
        gaps_ns(&record)
    );
}

/// Reads `frames` data frames of a default answer, then lets go in the way `target` allows:
/// HTTP/1.1 closes the connection, HTTP/2 drops the response body (RST_STREAM CANCEL) and keeps
/// the connection open.
async fn cancel_after(mock: &Arc<MockHandle>, target: Target, frames: usize) -> RequestRecord {
    let n = nonce("cancel");
    let (mut sender, conn) = connect_with_task(mock, target).await;
    let response = sender
        .send(chat_request(target, None, nonce_body(&n)))
        .await;
    let mut body = response.into_body();
    let mut seen = 0;
    while seen < frames {
        if next_frame(&mut body).await.is_data() {
            seen += 1;
        }
    }
    drop(body);
    if target.proto == Proto::H1 {
        conn.abort();
    }
    let record = ended(mock, &n).await;
    drop(sender);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_stream_is_logged_as_cancelled() {
    let settings = MockSettings {
        chunk_count: 18,
        chunk_delay: Duration::from_millis(20),
    };
    for tls in [false, true] {
        let mock = Arc::new(start_with(tls, |c| c.settings = settings.clone()));
        for target in ALL.into_iter().filter(|t| t.tls == tls) {
            let record = cancel_after(&mock, target, 3).await;
            let RequestEnd::Cancelled { at_write } = record.end else {
                panic!("{target:?}: {:?}", record.end);
            };
            assert!(
                (3..21).contains(&at_write),
                "{target:?}: at write {at_write}"
            );
            assert_eq!(record.writes.len(), at_write, "{target:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_closed_mid_stream_cancels_every_stream_on_it() {
    let mock = Arc::new(start_with(false, |c| {
        c.settings = MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(20),
        }
    }));
    // hyper runs the HTTP/2 connection in a task of its own, so the test keeps a duplicate of
    // the socket to shut it down under hyper.
    let tcp = tokio::net::TcpStream::connect(mock.local_addr())
        .await
        .expect("connect");
    let socket = std::os::fd::AsFd::as_fd(&tcp)
        .try_clone_to_owned()
        .expect("dup");
    let mut sender = handshake(tcp, Proto::H2).await;
    let nonces = [nonce("conn"), nonce("conn")];
    let mut bodies = Vec::new();
    for n in &nonces {
        let response = sender
            .send(chat_request(H2_CLEAR, None, nonce_body(n)))
            .await;
        let mut body = response.into_body();
        next_frame(&mut body).await;
        bodies.push(body);
    }
    rustix::net::shutdown(&socket, rustix::net::Shutdown::Both).expect("shutdown");
    for n in &nonces {
        let end = ended(&mock, n).await.end;
        assert!(
            matches!(end, RequestEnd::Cancelled { at_write } if at_write >= 1),
            "{end:?}"
        );
    }
    drop((bodies, sender));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_script_is_cancelled_when_the_client_leaves() {
    let mock = Arc::new(start_mock(false));
    let script = UpstreamPlan::sse(
        vec![Write::new(&b"data: {}\n\n"[..], Duration::ZERO)],
        Ending::Stall,
    );
    let id = mock.register_script(script);
    for target in [H1_CLEAR, H2_CLEAR] {
        let n = nonce("stalled");
        let (mut sender, conn) = connect_with_task(&mock, target).await;
        let pattern = format!("script:{id}");
        let response = sender
            .send(chat_request(target, Some(&pattern), nonce_body(&n)))
            .await;
        let mut body = response.into_body();
        let first = next_frame(&mut body).await;
        assert_eq!(first.into_data().expect("data"), &b"data: {}\n\n"[..]);
        assert_eq!(mock.requests_for(&n)[0].end, RequestEnd::InProgress);
        drop(body);
        conn.abort();
        assert_eq!(
            ended(&mock, &n).await.end,
            RequestEnd::Cancelled { at_write: 1 },
            "{target:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_open_streams_and_logs_it() {
    let mock = Arc::new(start_mock(false));
    let id = mock.register_script(UpstreamPlan::sse(Vec::new(), Ending::Stall));
    let n = nonce("shut");
    let mut sender = connect(&mock, H1_CLEAR).await;
    let pattern = format!("script:{id}");
    let response = sender
        .send(chat_request(H1_CLEAR, Some(&pattern), nonce_body(&n)))
        .await;
    {
        let mock = mock.clone();
        tokio::task::spawn_blocking(move || mock.shutdown())
            .await
            .expect("shutdown");
    }
    let got = read_all(response).await;
    assert!(got.error.is_some(), "the client sees the stream cut");
    assert_eq!(mock.requests_for(&n)[0].end, RequestEnd::ShutDown);
    assert!(
        tokio::net::TcpStream::connect(mock.local_addr())
            .await
            .is_err(),
        "no longer listening"
    );
}

/// On HTTP/2 a write can go out only when the client's flow-control window lets it. Here the
/// connection's window (64 KiB) is smaller than one stream's (1 MiB), and a first stream's
/// unread data fills it: a second stream's write is produced (`ts_ns`) but stamped as able to
/// go out (`sent_ns`) only once the client reads the first stream and the window reopens. On
/// HTTP/1.1 the two stamps are one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_write_is_stamped_sent_only_when_the_connection_window_lets_it_out() {
    const HOLD: Duration = Duration::from_millis(500);
    let mock = Arc::new(start_mock(false));
    let hog = mock.register_script(UpstreamPlan::sse(
        vec![Write::new(vec![b'x'; 256 << 10], Duration::ZERO)],
        Ending::Close,
    ));
    // Produced after the first stream's 64 KiB have surely gone out on loopback.
    let quick = mock.register_script(UpstreamPlan::sse(
        vec![Write::new(&b"data: {}\n\n"[..], Duration::from_millis(300))],
        Ending::Close,
    ));
    let tcp = tokio::net::TcpStream::connect(mock.local_addr())
        .await
        .expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_connection_window_size(65_535)
            .initial_stream_window_size(1 << 20)
            .handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let mut sender = Sender::H2(send);
    let (hog_nonce, quick_nonce) = (nonce("hog"), nonce("quick"));
    let hog_response = sender
        .send(chat_request(
            H2_CLEAR,
            Some(&format!("script:{hog}")),
            nonce_body(&hog_nonce),
        ))
        .await;
    let quick_response = sender
        .send(chat_request(
            H2_CLEAR,
            Some(&format!("script:{quick}")),
            nonce_body(&quick_nonce),
        ))
        .await;
    let deadline = Instant::now() + DEADLINE;
    while mock.requests_for(&quick_nonce)[0].writes.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the quick write was never produced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(HOLD).await;
    let hog_got = read_all(hog_response).await;
    assert_eq!(hog_got.error, None);
    let quick_got = read_all(quick_response).await;
    assert_eq!(quick_got.text(), "data: {}\n\n");
    let write = ended(&mock, &quick_nonce).await.writes[0];
    let sent = write.sent_ns.expect("the write went out");
    assert!(
        sent - write.ts_ns >= HOLD.as_nanos() as u64,
        "stamped sent {} ns after it was produced, though the window stayed closed for {HOLD:?}",
        sent - write.ts_ns
    );

    let n = nonce("h1");
    fetch(
        &mock,
        H1_CLEAR,
        chat_request(H1_CLEAR, Some("delay:5"), nonce_body(&n)),
    )
    .await;
    let record = ended(&mock, &n).await;
    assert!(!record.writes.is_empty());
    assert!(record.writes.iter().all(|w| w.sent_ns == Some(w.ts_ns)));
}
