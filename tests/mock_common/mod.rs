//! A small client for the mock tests: hyper's client connections over HTTP/1.1 or HTTP/2,
//! cleartext or TLS (trusting the mock's generated CA), recording when each body frame arrived.

#![allow(dead_code)] // each test crate uses a different part

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use streamcheck::mock::{MockConfig, MockHandle, MockServer, RequestRecord, TlsMode};
use streamcheck::pattern::{self, MockSettings, UpstreamPlan};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Catches hangs only; never a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub proto: Proto,
    pub tls: bool,
}

pub const H1_CLEAR: Target = Target {
    proto: Proto::H1,
    tls: false,
};
pub const H2_CLEAR: Target = Target {
    proto: Proto::H2,
    tls: false,
};
pub const H1_TLS: Target = Target {
    proto: Proto::H1,
    tls: true,
};
pub const H2_TLS: Target = Target {
    proto: Proto::H2,
    tls: true,
};
pub const ALL: [Target; 4] = [H1_CLEAR, H2_CLEAR, H1_TLS, H2_TLS];

/// A mock with fast defaults (chunk delay 1 ms) and the given TLS setting.
pub fn start_mock(tls: bool) -> MockHandle {
    start_with(tls, |_| {})
}

pub fn start_with(tls: bool, tweak: impl FnOnce(&mut MockConfig)) -> MockHandle {
    let mut config = MockConfig {
        settings: MockSettings {
            chunk_count: 18,
            chunk_delay: Duration::from_millis(1),
        },
        tls: if tls {
            TlsMode::SelfSigned { ca_out: None }
        } else {
            TlsMode::Off
        },
        ..MockConfig::default()
    };
    tweak(&mut config);
    MockServer::start(config).expect("mock starts")
}

pub fn client_tls(mock: &MockHandle, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let pem = mock.ca_pem().expect("self-signed mock");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA is a usable root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// Opens one connection of the target's kind; the connection task runs until the sender (and
/// every response body) is dropped.
pub async fn connect(mock: &MockHandle, target: Target) -> Sender {
    connect_with_task(mock, target).await.0
}

/// Like [`connect`], also returning the connection task: aborting it closes the connection.
pub async fn connect_with_task(mock: &MockHandle, target: Target) -> (Sender, JoinHandle<()>) {
    let tcp = TcpStream::connect(mock.local_addr())
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    if target.tls {
        let alpn: &[u8] = if target.proto == Proto::H2 {
            b"h2"
        } else {
            b"http/1.1"
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = client_tls(mock, alpn)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(negotiated.as_deref(), Some(alpn), "ALPN");
        handshake_with_task(tls, target.proto).await
    } else {
        handshake_with_task(tcp, target.proto).await
    }
}

pub async fn handshake<I>(io: I, proto: Proto) -> Sender
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    handshake_with_task(io, proto).await.0
}

pub async fn handshake_with_task<I>(io: I, proto: Proto) -> (Sender, JoinHandle<()>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    match proto {
        Proto::H1 => {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("h1 handshake");
            (
                Sender::H1(send),
                tokio::spawn(async move { drop(conn.await) }),
            )
        }
        Proto::H2 => {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
            (
                Sender::H2(send),
                tokio::spawn(async move { drop(conn.await) }),
            )
        }
    }
}

impl Sender {
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> http::Response<Incoming> {
        let response = match self {
            Sender::H1(s) => {
                s.ready().await.expect("h1 ready");
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.expect("h2 ready");
                s.send_request(req).await
            }
        };
        response.expect("response head")
    }
}

/// `{"model":"test-model","messages":[{"role":"user","content":PROMPT}],"stream":true}`.
pub fn chat_body(prompt: &str) -> String {
    serde_json::json!({
        "model": "test-model",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}],
        "stream": true,
    })
    .to_string()
}

/// A chat body whose prompt is only the nonce directive for `nonce`.
pub fn nonce_body(nonce: &str) -> String {
    chat_body(&pattern::nonce_directive(nonce))
}

/// The plan of catalog pattern `spec` as the mock serves it to a request without a nonce.
pub fn plan_of(mock: &MockHandle, spec: &str) -> UpstreamPlan {
    pattern::resolve(spec, mock.settings(), None)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
        .plan
}

/// A POST to the chat route; absolute URI so HTTP/2 gets :scheme and :authority.
pub fn chat_request(
    target: Target,
    pattern: Option<&str>,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let scheme = if target.tls { "https" } else { "http" };
    let mut builder = Request::post(format!("{scheme}://localhost/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test");
    if target.proto == Proto::H1 {
        builder = builder.header("host", "localhost");
    }
    if let Some(p) = pattern {
        builder = builder.header("x-test-pattern", p);
    }
    builder.body(Full::new(body.into())).expect("request")
}

pub fn get_request(target: Target, path: &str) -> Request<Full<Bytes>> {
    let scheme = if target.tls { "https" } else { "http" };
    let mut builder = Request::get(format!("{scheme}://localhost{path}"));
    if target.proto == Proto::H1 {
        builder = builder.header("host", "localhost");
    }
    builder.body(Full::new(Bytes::new())).expect("request")
}

/// A response read to its end (or to its error), with arrival times.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub head_at: Instant,
    pub body: Vec<u8>,
    /// (arrival, byte count) per data frame.
    pub frames: Vec<(Instant, usize)>,
    /// The body error, if the body did not end cleanly.
    pub error: Option<String>,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }
}

pub async fn read_all(response: http::Response<Incoming>) -> Fetched {
    let head_at = Instant::now();
    let (parts, mut body) = response.into_parts();
    let mut fetched = Fetched {
        status: parts.status,
        headers: parts.headers,
        head_at,
        body: Vec::new(),
        frames: Vec::new(),
        error: None,
    };
    loop {
        match tokio::time::timeout(DEADLINE, body.frame())
            .await
            .expect("body stalled")
        {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    fetched.frames.push((Instant::now(), data.len()));
                    fetched.body.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                fetched.error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    fetched
}

/// The next frame of a response body, which must come before [`DEADLINE`] and be no error.
pub async fn next_frame(body: &mut Incoming) -> hyper::body::Frame<Bytes> {
    tokio::time::timeout(DEADLINE, body.frame())
        .await
        .expect("body stalled")
        .expect("the body ended early")
        .expect("body error")
}

/// One request on a fresh connection.
pub async fn fetch(mock: &MockHandle, target: Target, req: Request<Full<Bytes>>) -> Fetched {
    let mut sender = connect(mock, target).await;
    let response = sender.send(req).await;
    read_all(response).await
}

/// Waits (off the async threads) until the request carrying `nonce` has ended.
pub async fn ended(mock: &Arc<MockHandle>, nonce: &str) -> RequestRecord {
    let (mock, nonce) = (mock.clone(), nonce.to_owned());
    tokio::task::spawn_blocking(move || mock.wait_for_end(&nonce, DEADLINE))
        .await
        .expect("wait task")
        .unwrap_or_else(|| panic!("no ended request in the log"))
}

/// A nonce unique within the test process.
pub fn nonce(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed))
}
