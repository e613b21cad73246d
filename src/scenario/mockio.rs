//! The mock as the runner sees it: in-process ([`MockHandle`]) when the runner started it, or
//! over its HTTP control routes (`/_streamcheck/…`) when it runs elsewhere (`--backend URL`).
//!
//! The remote client is a small blocking HTTP/1.1 client (one connection per request) over
//! plain TCP or TLS. With TLS it does not verify the certificate: the mock is our own, on
//! loopback, usually with a certificate it generated itself.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::http1;
use crate::mock::{MockHandle, RequestEnd, RequestRecord};
use crate::pattern::{self, Ending, MockSettings, UpstreamPlan, Write as PlanWrite};

/// How long one control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a remote request log is polled while waiting for a request to end.
const POLL: Duration = Duration::from_millis(25);
/// The largest script content sent to a remote mock: its script body limit (32 MiB by default,
/// `MockConfig::max_script_bytes`) with room for the JSON around the content.
pub(super) const REMOTE_SCRIPT_LIMIT: usize = 30 << 20;

/// A mock the runner can read and script.
pub(crate) enum Mock {
    /// Started by the runner, in this process.
    Embedded(MockHandle),
    /// Running elsewhere, reached over HTTP.
    Remote(Remote),
}

impl Mock {
    /// The settings the mock plans patterns with.
    pub fn settings(&self) -> &MockSettings {
        match self {
            Mock::Embedded(m) => m.settings(),
            Mock::Remote(r) => &r.settings,
        }
    }

    /// The mock's TCP port (to tell upstream sockets from client sockets in a daemon's fds).
    pub fn port(&self) -> u16 {
        match self {
            Mock::Embedded(m) => m.local_addr().port(),
            Mock::Remote(r) => r.url.port,
        }
    }

    /// The most content a script may carry (a remote mock limits request bodies).
    pub fn script_limit(&self) -> Option<usize> {
        match self {
            Mock::Embedded(_) => None,
            Mock::Remote(_) => Some(REMOTE_SCRIPT_LIMIT),
        }
    }

    /// Registers a script streaming `pieces` as content chunks, then a final chunk and
    /// `[DONE]`, all written at once; returns the pattern that selects it (`script:ID`).
    pub fn register_content_script(&self, pieces: &[String]) -> Result<String, String> {
        match self {
            Mock::Embedded(m) => {
                let mut writes: Vec<PlanWrite> = pieces
                    .iter()
                    .map(|p| PlanWrite::new(pattern::chunk_event(p), Duration::ZERO))
                    .collect();
                writes.push(PlanWrite::new(pattern::final_event("stop"), Duration::ZERO));
                writes.push(PlanWrite::new(pattern::DONE_EVENT, Duration::ZERO));
                let id = m.register_script(UpstreamPlan::sse(writes, Ending::Close));
                Ok(format!("script:{id}"))
            }
            Mock::Remote(r) => {
                let writes: Vec<serde_json::Value> = pieces
                    .iter()
                    .map(|p| serde_json::json!({ "content": p }))
                    .collect();
                let body = serde_json::json!({"writes": writes, "ending": "done"}).to_string();
                r.post_script(&body)
            }
        }
    }

    /// Registers `plan` as a script (a remote mock gets it as JSON, writes in hex, delays in
    /// whole milliseconds); returns the pattern that selects it (`script:ID`).
    pub fn register_script(&self, plan: &UpstreamPlan) -> Result<String, String> {
        match self {
            Mock::Embedded(m) => Ok(format!("script:{}", m.register_script(plan.clone()))),
            Mock::Remote(r) => {
                let ending = match plan.ending {
                    Ending::Close => "close",
                    Ending::Reset => "reset",
                    Ending::Stall => "stall",
                };
                let writes: Vec<serde_json::Value> = plan
                    .writes
                    .iter()
                    .map(|w| {
                        let hex = crate::hex::encode(&w.bytes);
                        serde_json::json!({"hex": hex, "delay_ms": w.delay_before.as_millis()})
                    })
                    .collect();
                let headers: serde_json::Map<String, serde_json::Value> = plan
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                    .collect();
                let body = serde_json::json!({
                    "status": plan.status, "headers": headers, "writes": writes, "ending": ending,
                })
                .to_string();
                r.post_script(&body)
            }
        }
    }

    /// Every logged request that carried `nonce`, oldest first.
    pub fn requests_for(&self, nonce: &str) -> Result<Vec<RequestRecord>, String> {
        match self {
            Mock::Embedded(m) => Ok(m.requests_for(nonce)),
            Mock::Remote(r) => r.requests_for(nonce),
        }
    }

    /// Whether the daemon under test has made any upstream request: any request at all to an
    /// embedded mock (it serves this run alone), a request carrying a nonce of this run (`tag`)
    /// to a remote one. An unreadable remote log counts as a request seen: it proves nothing.
    pub fn saw_daemon_request(&self, tag: &str) -> bool {
        match self {
            Mock::Embedded(m) => m.count_requests(|_| true) > 0 || m.dropped_requests() > 0,
            Mock::Remote(r) => r
                .requests("/_streamcheck/requests")
                .map_or(true, |records| {
                    records
                        .iter()
                        .any(|r| r.nonce.as_deref().is_some_and(|n| n.starts_with(tag)))
                }),
        }
    }

    /// How many requests without any nonce arrived from `from_ns` to `to_ns`
    /// ([`crate::clock::monotonic_ns`]): a daemon that lost a handoff's data and went on with
    /// defaults sends one.
    pub fn requests_without_nonce(&self, from_ns: u64, to_ns: u64) -> Result<usize, String> {
        let lost =
            |r: &RequestRecord| r.nonce.is_none() && (from_ns..=to_ns).contains(&r.arrival_ns);
        match self {
            Mock::Embedded(m) => Ok(m.count_requests(lost)),
            Mock::Remote(r) => Ok(r
                .requests("/_streamcheck/requests")?
                .iter()
                .filter(|r| lost(r))
                .count()),
        }
    }

    /// Waits until a request with `nonce` exists and all such requests have ended, at most
    /// `timeout`, and returns them (possibly still in progress, or none, after the timeout).
    pub fn wait_for_end(
        &self,
        nonce: &str,
        timeout: Duration,
    ) -> Result<Vec<RequestRecord>, String> {
        match self {
            Mock::Embedded(m) => {
                m.wait_for_end(nonce, timeout);
                Ok(m.requests_for(nonce))
            }
            Mock::Remote(r) => {
                let until = Instant::now() + timeout;
                loop {
                    let records = r.requests_for(nonce)?;
                    let ended = !records.is_empty()
                        && records.iter().all(|r| r.end != RequestEnd::InProgress);
                    if ended || Instant::now() >= until {
                        return Ok(records);
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

/// A base URL: `http(s)://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BaseUrl {
    /// Whether the scheme is `https`.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// The URL as given.
    pub text: String,
}

/// Parses `http://127.0.0.1:28080/v1`-like URLs.
pub(super) fn parse_url(text: &str) -> Result<BaseUrl, String> {
    let bad = |why: &str| {
        format!("--backend {text:?} is not a URL like https://127.0.0.1:28080/v1: {why}")
    };
    let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad("it must start with http:// or https://"));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
        None if https => 443,
        None => 80,
    };
    Ok(BaseUrl {
        https,
        host: host.to_owned(),
        port,
        text: text.to_owned(),
    })
}

/// A mock reached over HTTP.
pub(crate) struct Remote {
    url: BaseUrl,
    tls: Option<Arc<ClientConfig>>,
    settings: MockSettings,
}

impl Remote {
    /// Posts a script (its JSON body) and returns the pattern that selects it (`script:ID`).
    fn post_script(&self, body: &str) -> Result<String, String> {
        let reply = self.request("POST", "/_streamcheck/scripts", Some(body.as_bytes()))?;
        let value: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("the mock's answer to a script is not JSON: {e}"))?;
        value["pattern"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the mock's answer to a script has no pattern: {value}"))
    }

    /// Connects to the mock at `url` and reads its settings; the error says what to check.
    pub fn connect(url: &str) -> Result<Remote, String> {
        let url = parse_url(url)?;
        let tls = url
            .https
            .then(crate::any_certificate::client_config)
            .transpose()?;
        let mut remote = Remote {
            url,
            tls,
            settings: MockSettings::default(),
        };
        let reply = remote
            .request("GET", "/_streamcheck/patterns", None)
            .map_err(|e| {
                format!(
                    "the mock API at {} cannot be reached ({e}); start it (`streamcheck mock-api \
                     --tls --listen 127.0.0.1:28080`) and pass the URL it prints, or use \
                     --daemon-cmd to let the runner start one",
                    remote.url.text
                )
            })?;
        let value: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| {
            format!(
                "{} answered /_streamcheck/patterns with non-JSON: {e}",
                remote.url.text
            )
        })?;
        let settings = &value["settings"];
        match (
            settings["chunk_count"].as_u64(),
            settings["chunk_delay_ms"].as_u64(),
        ) {
            (Some(count), Some(delay)) => {
                remote.settings = MockSettings {
                    chunk_count: usize::try_from(count).unwrap_or(usize::MAX),
                    chunk_delay: Duration::from_millis(delay),
                };
                Ok(remote)
            }
            _ => Err(format!(
                "the server at {} is not a streamcheck mock API of this version (its \
                 /_streamcheck/patterns reports no settings); start `streamcheck mock-api`",
                remote.url.text
            )),
        }
    }

    fn requests_for(&self, nonce: &str) -> Result<Vec<RequestRecord>, String> {
        self.requests(&format!("/_streamcheck/requests?nonce={nonce}"))
    }

    /// The request log at `path`.
    fn requests(&self, path: &str) -> Result<Vec<RequestRecord>, String> {
        #[derive(serde::Deserialize)]
        struct Log {
            requests: Vec<RequestRecord>,
        }
        let reply = self.request("GET", path, None)?;
        serde_json::from_slice::<Log>(&reply)
            .map(|log| log.requests)
            .map_err(|e| format!("the mock's request log is not what this version reads: {e}"))
    }

    /// One request on a fresh connection; the body of a 2xx answer, or an error naming the
    /// status and the mock's message.
    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let addr = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.url.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.url.host))?;
        let tcp = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let io = |e: std::io::Error| format!("talking to {addr}: {e}");
        tcp.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
        tcp.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
        let body = body.unwrap_or_default();
        let host = if self.url.host.contains(':') {
            format!("[{}]:{}", self.url.host, self.url.port)
        } else {
            format!("{}:{}", self.url.host, self.url.port)
        };
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(body);
        match &self.tls {
            None => exchange(tcp, &message),
            Some(config) => {
                let name = ServerName::try_from(self.url.host.clone())
                    .map_err(|e| format!("{} is not a TLS server name: {e}", self.url.host))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS setup failed: {e}"))?;
                exchange(rustls::StreamOwned::new(conn, tcp), &message)
            }
        }
    }
}

/// Writes `message`, reads one response, and returns its body if the status is 2xx.
fn exchange(mut io: impl Read + Write, message: &[u8]) -> Result<Vec<u8>, String> {
    io.write_all(message)
        .and_then(|()| io.flush())
        .map_err(|e| format!("sending the request failed: {e}"))?;
    let mut parser = http1::Parser::new();
    let (mut status, mut body, mut done) = (None, Vec::new(), false);
    let mut buf = vec![0u8; 64 * 1024];
    while !done {
        let n = match io.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            // A peer that closes without TLS close_notify after a complete response is fine.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading the response failed: {e}")),
        };
        for event in parser.feed(&buf[..n]) {
            match event.map_err(|e| format!("the response is not valid HTTP: {e}"))? {
                http1::Event::Head { head, .. } => status = Some(head.status()),
                http1::Event::Body(d) => body.extend_from_slice(d.bytes),
                http1::Event::End(_) => done = true,
                http1::Event::Interim(_) | http1::Event::Excess(_) => {}
            }
        }
    }
    if !done {
        parser
            .finish()
            .map_err(|e| format!("the response ended early: {e}"))?;
    }
    match status {
        Some(s) if (200..300).contains(&s) => Ok(body),
        Some(s) => Err(format!(
            "status {s}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        )),
        None => Err("the connection closed before a response head".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_scheme_host_and_port() {
        let u = parse_url("https://127.0.0.1:28080/v1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (true, "127.0.0.1", 28080)
        );
        let u = parse_url("http://[::1]:8080/v1").unwrap();
        assert_eq!((u.https, u.host.as_str(), u.port), (false, "::1", 8080));
        assert_eq!(parse_url("https://localhost/v1").unwrap().port, 443);
        for bad in [
            "ftp://x",
            "127.0.0.1:80",
            "http://:80/v1",
            "http://h:port/v1",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains("--backend"), "{e}");
        }
    }
}
