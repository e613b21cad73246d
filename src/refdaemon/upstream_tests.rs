//! The upstream client against a real hyper server: protocol selection (ALPN h2 / HTTP/1.1 over
//! TLS, h2c prior knowledge, HTTP/1.1 cleartext), the insecure verifier, and cancellation of an
//! abandoned HTTP/2 stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

use super::handoff::parse_request;
use super::upstream::{ConfigError, Http2Mode, Upstream, UpstreamConfig, UpstreamError};

const HANG: Duration = Duration::from_secs(20);

/// A response body: some frames, then either the end or a wait that lasts until it is dropped,
/// which it reports (that is how the server sees a cancelled stream).
struct Scripted {
    frames: VecDeque<Bytes>,
    end: bool,
    dropped: Option<oneshot::Sender<()>>,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.frames.pop_front() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None if self.end => Poll::Ready(None),
            // Never woken: the stream stays open until the client gives up on it.
            None => Poll::Pending,
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(());
        }
    }
}

struct Server {
    addr: std::net::SocketAddr,
    versions: Arc<Mutex<Vec<Version>>>,
    /// Fires when the body of the held-open stream (prompt "hold") is dropped.
    cancelled: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

async fn serve(tls: bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.then(|| {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let versions = Arc::new(Mutex::new(Vec::new()));
    let cancelled = Arc::new(Mutex::new(None));
    let (seen, hold) = (versions.clone(), cancelled.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (seen, hold, acceptor) = (seen.clone(), hold.clone(), acceptor.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (seen, hold) = (seen.clone(), hold.clone());
                        async move {
                            seen.lock().unwrap().push(req.version());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let held = String::from_utf8_lossy(&body).contains("hold");
                            let (tx, rx) = oneshot::channel();
                            if held {
                                *hold.lock().unwrap() = Some(rx);
                            }
                            let frames = [
                                &b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"[..],
                                b"data: [DONE]\n\n",
                            ];
                            let body = Scripted {
                                frames: frames
                                    .iter()
                                    .take(if held { 1 } else { 2 })
                                    .map(|f| Bytes::from_static(f))
                                    .collect(),
                                end: !held,
                                dropped: Some(tx),
                            };
                            let response = http::Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(body)
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    Server {
        addr,
        versions,
        cancelled,
    }
}

fn config(server: &Server, scheme: &str, insecure: bool, http2: Http2Mode) -> UpstreamConfig {
    UpstreamConfig {
        base: format!("{scheme}://{}/v1", server.addr),
        api_key: None,
        insecure,
        http2,
        model: "m".into(),
        http2_connection_window: super::upstream::DEFAULT_CONNECTION_WINDOW,
    }
}

/// One request; returns the protocol version the server saw and the body.
async fn ask(server: &Server, config: &UpstreamConfig) -> (Version, String) {
    let upstream = Upstream::new(config, HANG, None).unwrap();
    let request = parse_request(br#"{"prompt":"x"}"#).unwrap();
    let response = upstream.send(upstream.build(&request), HANG).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let version = *server.versions.lock().unwrap().last().unwrap();
    (version, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn tls_negotiates_h2_by_alpn_unless_http2_is_disabled() {
    let server = serve(true).await;
    let (version, body) = ask(&server, &config(&server, "https", true, Http2Mode::Auto)).await;
    assert_eq!(version, Version::HTTP_2);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let (version, _) = ask(&server, &config(&server, "https", true, Http2Mode::Off)).await;
    assert_eq!(version, Version::HTTP_11);
}

#[tokio::test]
async fn cleartext_is_http1_unless_h2c_is_enabled() {
    let server = serve(false).await;
    assert_eq!(
        ask(&server, &config(&server, "http", false, Http2Mode::Auto))
            .await
            .0,
        Version::HTTP_11
    );
    assert_eq!(
        ask(&server, &config(&server, "http", false, Http2Mode::On))
            .await
            .0,
        Version::HTTP_2
    );
}

#[tokio::test]
async fn a_self_signed_upstream_is_refused_without_insecure_ssl() {
    let server = serve(true).await;
    match Upstream::new(
        &config(&server, "https", false, Http2Mode::Auto),
        HANG,
        None,
    ) {
        // A machine without a CA store refuses at start, which is as good.
        Err(ConfigError::NoRoots(_)) => {}
        Err(other) => panic!("{other}"),
        Ok(upstream) => {
            let request = parse_request(br#"{"prompt":"x"}"#).unwrap();
            let err = upstream
                .send(upstream.build(&request), HANG)
                .await
                .unwrap_err();
            assert!(
                matches!(err, UpstreamError::Unreachable(ref m) if m.contains("certificate")),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn dropping_an_h2_response_body_cancels_the_stream() {
    let server = serve(true).await;
    let upstream =
        Upstream::new(&config(&server, "https", true, Http2Mode::Auto), HANG, None).unwrap();
    let request = parse_request(br#"{"prompt":"hold"}"#).unwrap();
    let response = upstream.send(upstream.build(&request), HANG).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let cancelled = server.cancelled.lock().unwrap().take().unwrap();
    drop(body);
    tokio::time::timeout(HANG, cancelled)
        .await
        .expect("the server never saw the stream cancelled")
        .unwrap();
}
