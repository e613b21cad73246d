//! The upstream: an OpenAI-compatible `POST {base}/chat/completions` with `"stream":true`, over
//! hyper-util's pooled client with rustls (ring).
//!
//! Protocol choice, from the environment (read once at start):
//! - `https://` base: ALPN offers `h2` and `http/1.1` (the server picks); with
//!   `OPENAI_HTTP2_ENABLED=false`, only `http/1.1`.
//! - `http://` base: HTTP/1.1; with `OPENAI_HTTP2_ENABLED=true`, HTTP/2 with prior knowledge (h2c).
//!
//! `OPENAI_HTTP2_CONNECTION_WINDOW` sets the HTTP/2 connection's receive window (bytes, default
//! [`DEFAULT_CONNECTION_WINDOW`]). The daemon stops reading a stream's upstream while its client
//! is not reading (backpressure), so that stream's unread data holds its share of the window: at
//! or below one stream's window (hyper's default, 2 MiB), one stalled client stops every other
//! stream's upstream. The suite uses that to show how it reports such a stall.
//!
//! HTTP/2 streams share one connection per upstream; an abandoned response body resets its stream
//! (RST_STREAM CANCEL), and an abandoned HTTP/1.1 response closes its connection: either way the
//! upstream sees the request cancelled. h2 must then ignore the frames the upstream sent before
//! it saw the reset; see [`RESET_STREAMS_REMEMBERED`] for why the daemon raises how many reset
//! streams it remembers to do so.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::ClientConfig;

use super::fault::{self, Fault};
use super::handoff::Request;

/// The model asked for when the handoff names none and `OPENAI_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// The HTTP/2 connection window when `OPENAI_HTTP2_CONNECTION_WINDOW` is unset: every stream
/// shares one connection, and with thousands of streams a busy daemon leaves many small DATA
/// frames unread; h2 drops the whole connection once that backlog outgrows the window.
pub const DEFAULT_CONNECTION_WINDOW: u32 = 64 << 20;

/// How many of the HTTP/2 streams it reset h2 remembers (each for 1 s) to ignore the frames the
/// upstream sent before it saw the reset. A frame on a reset stream h2 has forgotten counts as an
/// upstream error, and at 1,024 such errors h2 closes the connection (GOAWAY ENHANCE_YOUR_CALM,
/// "too_many_internal_resets"), failing every stream on it. h2's default, 50, is far below the
/// number of clients a busy daemon sees leave within a second (a web server restart drops them
/// all at once), each of whose answers can be streaming; a remembered stream costs a few hundred
/// bytes.
pub const RESET_STREAMS_REMEMBERED: usize = 16_384;

/// Whether to speak HTTP/2 (`OPENAI_HTTP2_ENABLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http2Mode {
    /// Unset: ALPN decides on TLS, HTTP/1.1 on cleartext.
    Auto,
    /// `true`: also h2c with prior knowledge on `http://`.
    On,
    /// `false`: HTTP/1.1 only.
    Off,
}

/// Where and how to reach the upstream, from the environment.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `OPENAI_API_BASE`, e.g. `https://127.0.0.1:28080/v1`.
    pub base: String,
    /// `OPENAI_API_KEY`, sent as `Authorization: Bearer …` when set and non-empty.
    pub api_key: Option<String>,
    /// `OPENAI_INSECURE_SSL=true`: accept any server certificate (signatures are still checked).
    pub insecure: bool,
    /// `OPENAI_HTTP2_ENABLED`.
    pub http2: Http2Mode,
    /// `OPENAI_MODEL`, or [`DEFAULT_MODEL`].
    pub model: String,
    /// `OPENAI_HTTP2_CONNECTION_WINDOW`, or [`DEFAULT_CONNECTION_WINDOW`].
    pub http2_connection_window: u32,
}

/// The environment does not describe a usable upstream.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "OPENAI_API_BASE is not set: point it at the upstream, e.g. OPENAI_API_BASE=http://127.0.0.1:28080/v1 \
         (`streamcheck mock-api` serves one)"
    )]
    NoBase,
    #[error("OPENAI_API_BASE={0:?} is not an http:// or https:// URL with a host")]
    BadBase(String),
    #[error("{name}={value:?}: use true or false")]
    BadBool { name: &'static str, value: String },
    #[error("OPENAI_HTTP2_CONNECTION_WINDOW={0:?}: give a byte count from 65535 to 2147483647")]
    BadWindow(String),
    #[error("OPENAI_API_KEY contains characters not allowed in an HTTP header")]
    BadKey,
    #[error(
        "no CA certificates found for the https upstream ({0}); set SSL_CERT_FILE, or \
         OPENAI_INSECURE_SSL=true for a self-signed upstream"
    )]
    NoRoots(String),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

impl UpstreamConfig {
    /// Reads `OPENAI_API_BASE`, `OPENAI_API_KEY`, `OPENAI_INSECURE_SSL`, `OPENAI_HTTP2_ENABLED`
    /// and `OPENAI_MODEL` through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = var("OPENAI_API_BASE")
            .filter(|b| !b.is_empty())
            .ok_or(ConfigError::NoBase)?;
        let uri: Uri = base
            .parse()
            .map_err(|_| ConfigError::BadBase(base.clone()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(ConfigError::BadBase(base));
        }
        let flag = |name: &'static str| -> Result<Option<bool>, ConfigError> {
            match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("") => Ok(None),
                Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
                Some("false" | "0" | "no" | "off") => Ok(Some(false)),
                Some(other) => Err(ConfigError::BadBool {
                    name,
                    value: other.to_owned(),
                }),
            }
        };
        let http2_connection_window = match var("OPENAI_HTTP2_CONNECTION_WINDOW") {
            None => DEFAULT_CONNECTION_WINDOW,
            Some(w) if w.is_empty() => DEFAULT_CONNECTION_WINDOW,
            // HTTP/2 allows 2^31 - 1 at most; less than the initial 65,535 cannot be announced.
            Some(w) => w
                .parse::<u32>()
                .ok()
                .filter(|n| (65_535..=0x7fff_ffff).contains(n))
                .ok_or(ConfigError::BadWindow(w))?,
        };
        Ok(UpstreamConfig {
            base: base.trim_end_matches('/').to_owned(),
            api_key: var("OPENAI_API_KEY").filter(|k| !k.is_empty()),
            insecure: flag("OPENAI_INSECURE_SSL")?.unwrap_or(false),
            http2: match flag("OPENAI_HTTP2_ENABLED")? {
                None => Http2Mode::Auto,
                Some(true) => Http2Mode::On,
                Some(false) => Http2Mode::Off,
            },
            model: var("OPENAI_MODEL")
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            http2_connection_window,
        })
    }

    /// [`UpstreamConfig::from_vars`] over the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

/// Why the upstream request failed before a response head arrived.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream request failed: {0}")]
    Failed(String),
    #[error("upstream sent no response within {0:?}")]
    Timeout(Duration),
}

impl UpstreamError {
    /// The status the client gets for this failure.
    pub(crate) fn status(&self) -> u16 {
        match self {
            UpstreamError::Timeout(_) => 504,
            _ => 502,
        }
    }
}

/// The shared client for every stream of the daemon.
pub(crate) struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: Uri,
    authorization: Option<HeaderValue>,
    model: String,
    fault: Option<Fault>,
}

impl Upstream {
    /// Builds the client. `timeout` bounds the TCP connect; the caller bounds the whole request.
    pub(crate) fn new(
        config: &UpstreamConfig,
        timeout: Duration,
        fault: Option<Fault>,
    ) -> Result<Self, ConfigError> {
        let endpoint: Uri = format!("{}/chat/completions", config.base)
            .parse()
            .map_err(|_| ConfigError::BadBase(config.base.clone()))?;
        let https = endpoint.scheme_str() == Some("https");
        let authorization = match &config.api_key {
            Some(key) => Some(
                HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| ConfigError::BadKey)?,
            ),
            None => None,
        };
        let tls = tls_config(https && !config.insecure, config.insecure)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let connector = if config.http2 == Http2Mode::Off {
            builder.enable_http1().wrap_connector(http)
        } else {
            builder.enable_all_versions().wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .http2_only(!https && config.http2 == Http2Mode::On)
            .http2_initial_connection_window_size(config.http2_connection_window)
            .http2_max_concurrent_reset_streams(RESET_STREAMS_REMEMBERED)
            .build(connector);
        Ok(Upstream {
            client,
            endpoint,
            authorization,
            model: config.model.clone(),
            fault,
        })
    }

    /// The model asked for: the handoff's, else the configured one.
    pub(crate) fn model<'a>(&'a self, request: &'a Request) -> &'a str {
        request.model.as_deref().unwrap_or(&self.model)
    }

    /// The upstream request for one handoff.
    pub(crate) fn build(&self, request: &Request) -> http::Request<Full<Bytes>> {
        let mut body = serde_json::json!({
            "model": self.model(request),
            "messages": request.messages,
            "stream": true,
        });
        if let Some(max_tokens) = request.max_tokens {
            body["max_tokens"] = max_tokens.into();
        }
        if let Some(temperature) = &request.temperature {
            body["temperature"] = serde_json::Value::Number(temperature.clone());
        }
        let mut req = http::Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream");
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        // Both were checked to be valid header values when the handoff was parsed.
        if let Some(pattern) = &request.test_pattern
            && let Ok(value) = HeaderValue::from_str(pattern)
        {
            if fault::is(self.fault, Fault::IgnoreTestPattern) {
                // Bug (ignore-test-pattern): the handoff's test_pattern is never forwarded.
            } else {
                req = req.header("x-test-pattern", value);
            }
        }
        if let Some(id) = &request.request_id
            && let Ok(value) = HeaderValue::from_str(id)
        {
            req = req.header("x-request-id", value);
        }
        let body = Full::new(Bytes::from(body.to_string()));
        // Method, URI and headers are all pre-validated, so the builder cannot fail; fall back
        // to a bare request rather than panic if that ever changes.
        req.body(body.clone())
            .unwrap_or_else(|_| http::Request::new(body))
    }

    /// Sends `request` and waits at most `timeout` for the response head.
    pub(crate) async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) if err.is_connect() => Err(UpstreamError::Unreachable(chain(&err))),
            Ok(Err(err)) => Err(UpstreamError::Failed(chain(&err))),
        }
    }
}

/// An error and its sources, joined: "client error (Connect): tcp connect error: Connection refused".
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn tls_config(load_roots: bool, insecure: bool) -> Result<ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::any_certificate::AnyCertificate(
                provider,
            )))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    if load_roots {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "the system store is empty".into());
            return Err(ConfigError::NoRoots(why));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<UpstreamConfig, ConfigError> {
        UpstreamConfig::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn environment_is_read_and_checked() {
        let c = config(&[
            ("OPENAI_API_BASE", "https://127.0.0.1:28080/v1/"),
            ("OPENAI_API_KEY", "k"),
            ("OPENAI_INSECURE_SSL", "TRUE"),
            ("OPENAI_HTTP2_ENABLED", "false"),
        ])
        .unwrap();
        assert_eq!(c.base, "https://127.0.0.1:28080/v1");
        assert_eq!(
            (c.api_key.as_deref(), c.insecure, c.http2),
            (Some("k"), true, Http2Mode::Off)
        );
        assert_eq!(c.model, DEFAULT_MODEL);
        assert_eq!(c.http2_connection_window, DEFAULT_CONNECTION_WINDOW);
        let window = |w: &str| {
            config(&[
                ("OPENAI_API_BASE", "http://x/v1"),
                ("OPENAI_HTTP2_CONNECTION_WINDOW", w),
            ])
        };
        assert_eq!(window("65535").unwrap().http2_connection_window, 65_535);
        for bad in ["65534", "2147483648", "64k"] {
            assert!(
                matches!(window(bad), Err(ConfigError::BadWindow(_))),
                "{bad}"
            );
        }
        assert!(matches!(config(&[]), Err(ConfigError::NoBase)));
        assert!(matches!(
            config(&[("OPENAI_API_BASE", "ftp://x/v1")]),
            Err(ConfigError::BadBase(_))
        ));
        assert!(matches!(
            config(&[
                ("OPENAI_API_BASE", "http://x/v1"),
                ("OPENAI_INSECURE_SSL", "maybe")
            ]),
            Err(ConfigError::BadBool {
                name: "OPENAI_INSECURE_SSL",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn request_carries_body_and_headers() {
        let c = config(&[
            ("OPENAI_API_BASE", "http://127.0.0.1:9/v1"),
            ("OPENAI_API_KEY", "sk"),
        ])
        .unwrap();
        let request = super::super::handoff::parse_request(
            br#"{"prompt":"hi","test_pattern":"unicode","request_id":"r1","max_tokens":5}"#,
        )
        .unwrap();
        for (fault, pattern) in [
            (None, Some("unicode")),
            (Some(Fault::IgnoreTestPattern), None),
        ] {
            let upstream = Upstream::new(&c, Duration::from_secs(1), fault).unwrap();
            let req = upstream.build(&request);
            assert_eq!(req.uri(), "http://127.0.0.1:9/v1/chat/completions");
            assert_eq!(req.headers()["authorization"], "Bearer sk");
            assert_eq!(
                req.headers()
                    .get("x-test-pattern")
                    .map(|v| v.to_str().unwrap()),
                pattern
            );
            assert_eq!(req.headers()["x-request-id"], "r1");
            let body = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"model": DEFAULT_MODEL, "messages": [{"role":"user","content":"hi"}],
                                   "stream": true, "max_tokens": 5})
            );
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let c = config(&[("OPENAI_API_BASE", &format!("http://127.0.0.1:{port}/v1"))]).unwrap();
        let upstream = Upstream::new(&c, Duration::from_secs(5), None).unwrap();
        let request = super::super::handoff::parse_request(br#"{"prompt":"hi"}"#).unwrap();
        let err = upstream
            .send(upstream.build(&request), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Unreachable(_)), "{err}");
        assert_eq!(err.status(), 502);
    }
}
