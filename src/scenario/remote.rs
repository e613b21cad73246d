//! A mock API running elsewhere (`--backend URL`), reached over its control routes: its settings
//! (`GET /_streamcheck/patterns`), scripts (`POST /_streamcheck/scripts`) and request log
//! (`GET /_streamcheck/requests`). The runner, `prop` and `stress` share this client.
//!
//! A small blocking HTTP/1.1 client, one connection per request, plain or TLS. It reads an
//! answer as it arrives, so that `stress` can read a log of 10,000 requests without holding it
//! whole. With TLS it does not verify the certificate (handshake signatures are still checked):
//! the mock is our own, on loopback, usually with a certificate it generated itself.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::http1;
use crate::mock::{RequestEnd, RequestRecord};
use crate::pattern::{Ending, MockSettings, UpstreamPlan};

/// How long one control request may wait for the mock at each step (connect, write, read).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for reading the whole request log after a stress run, which the mock may still be
/// busy finishing (tens of thousands of streams).
const LOG_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the request log is polled while waiting for a request to end.
const POLL: Duration = Duration::from_millis(25);

/// What else a command that takes `--daemon-cmd` can do when the mock at `--backend` cannot be
/// reached (for [`Remote::connect`]).
pub(crate) const DAEMON_CMD_INSTEAD: &str =
    "use --daemon-cmd to let streamcheck start the daemon beside a mock of its own";

/// A base URL: `http(s)://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BaseUrl {
    /// Whether the scheme is `https`.
    https: bool,
    /// Host name or address (IPv6 without brackets).
    host: String,
    /// Port (the scheme's default when absent).
    port: u16,
    /// The URL as given.
    text: String,
}

/// Parses `http://127.0.0.1:28080/v1`-like URLs.
fn parse_url(text: &str) -> Result<BaseUrl, String> {
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
    /// Connects to the mock at `url` (`--backend`) and reads its settings; the error says what
    /// to check. When the mock cannot be reached, the error says how to start one and, when the
    /// command has another way, `instead` (e.g. [`DAEMON_CMD_INSTEAD`]).
    pub fn connect(url: &str, instead: Option<&str>) -> Result<Remote, String> {
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
                let or_instead = instead.map(|i| format!(", or {i}")).unwrap_or_default();
                format!(
                    "the mock API at {} cannot be reached ({e}); start it (`streamcheck mock-api \
                     --tls --listen 127.0.0.1:28080`) and pass the URL it prints to \
                     --backend{or_instead}",
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

    /// The base URL as given to `--backend`.
    pub fn url(&self) -> &str {
        &self.url.text
    }

    /// The settings the mock plans patterns with.
    pub fn settings(&self) -> &MockSettings {
        &self.settings
    }

    /// The mock's TCP port.
    pub fn port(&self) -> u16 {
        self.url.port
    }

    /// Registers a script streaming `pieces` as content chunks, then a final chunk and
    /// `[DONE]`; returns the pattern that selects it (`script:ID`).
    pub fn register_content_script(&self, pieces: &[String]) -> Result<String, String> {
        let writes: Vec<serde_json::Value> = pieces
            .iter()
            .map(|p| serde_json::json!({ "content": p }))
            .collect();
        let body = serde_json::json!({"writes": writes, "ending": "done"}).to_string();
        self.post_script(&body)
    }

    /// Registers `plan` as a script (as JSON: writes in hex, delays in whole milliseconds);
    /// returns the pattern that selects it (`script:ID`).
    pub fn register_script(&self, plan: &UpstreamPlan) -> Result<String, String> {
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
        self.post_script(&body)
    }

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

    /// Every logged request that carried `nonce`, oldest first.
    pub fn requests_for(&self, nonce: &str) -> Result<Vec<RequestRecord>, String> {
        self.requests(&format!("/_streamcheck/requests?nonce={nonce}"))
    }

    /// The whole request log, oldest first.
    pub fn all_requests(&self) -> Result<Vec<RequestRecord>, String> {
        self.requests("/_streamcheck/requests")
    }

    /// Polls until a request with `nonce` exists and all such requests have ended, at most
    /// `timeout`, and returns them (possibly still in progress, or none, after the timeout).
    pub fn wait_for_end(
        &self,
        nonce: &str,
        timeout: Duration,
    ) -> Result<Vec<RequestRecord>, String> {
        let until = Instant::now() + timeout;
        loop {
            let records = self.requests_for(nonce)?;
            let ended =
                !records.is_empty() && records.iter().all(|r| r.end != RequestEnd::InProgress);
            if ended || Instant::now() >= until {
                return Ok(records);
            }
            std::thread::sleep(POLL);
        }
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

    /// Streams the body of `GET path` into `consume`, which reads it to its end: a log of
    /// 10,000 requests is read as it arrives and never sits in memory whole.
    pub fn get_streaming<T>(
        &self,
        path: &str,
        consume: impl FnOnce(&mut dyn Read) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut body = self.send("GET", path, None, LOG_READ_TIMEOUT)?;
        consume(&mut body)
    }

    /// One control request; the body of its 2xx answer.
    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mut answer = self.send(method, path, body, REQUEST_TIMEOUT)?;
        let mut out = Vec::new();
        answer
            .read_to_end(&mut out)
            .map_err(|e| format!("reading the mock's answer failed: {e}"))?;
        Ok(out)
    }

    /// Sends one request on a fresh connection, each connect, read and write waiting at most
    /// `timeout`; the body of a 2xx answer, to read, or an error naming the status and the
    /// start of the mock's message.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Body, String> {
        let addr = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.url.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.url.host))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let fail = |e: io::Error| format!("talking to {addr}: {e}");
        tcp.set_read_timeout(Some(timeout)).map_err(fail)?;
        tcp.set_write_timeout(Some(timeout)).map_err(fail)?;
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
        let sent = match &self.tls {
            None => write_request(tcp, &message),
            Some(config) => {
                let name = ServerName::try_from(self.url.host.clone())
                    .map_err(|e| format!("{} is not a TLS server name: {e}", self.url.host))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS setup failed: {e}"))?;
                write_request(rustls::StreamOwned::new(conn, tcp), &message)
            }
        };
        let io = sent.map_err(|e| format!("sending the request to {addr} failed: {e}"))?;
        let mut answer = Body::new(io);
        let status = answer.status()?;
        if !(200..300).contains(&status) {
            let mut text = Vec::new();
            let _ = answer.take(300).read_to_end(&mut text);
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        Ok(answer)
    }
}

/// Writes a whole request; the connection, to read the answer from.
fn write_request(mut io: impl Read + Write + 'static, message: &[u8]) -> io::Result<Box<dyn Read>> {
    io.write_all(message)?;
    io.flush()?;
    Ok(Box::new(io))
}

/// A response as it arrives: its status, then its body as a [`Read`], decoded by the HTTP/1
/// parser.
struct Body {
    io: Box<dyn Read>,
    /// `None` once the connection has closed and the parser has checked the body was whole.
    parser: Option<http1::Parser>,
    buf: Vec<u8>,
    /// Decoded body bytes not yet read, from `at`.
    pending: Vec<u8>,
    at: usize,
    status: Option<u16>,
    /// The body is complete, or the connection closed.
    ended: bool,
}

impl Body {
    fn new(io: Box<dyn Read>) -> Body {
        Body {
            io,
            parser: Some(http1::Parser::new()),
            buf: vec![0; 64 * 1024],
            pending: Vec::new(),
            at: 0,
            status: None,
            ended: false,
        }
    }

    /// Reads until the head is complete; its status.
    fn status(&mut self) -> Result<u16, String> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let more = self
                .fill()
                .map_err(|e| format!("reading the mock's answer failed: {e}"))?;
            if !more {
                return Err("the connection closed before a response head".to_owned());
            }
        }
    }

    /// Reads once more from the connection and decodes what came; false at the body's end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let n = loop {
            match self.io.read(&mut self.buf) {
                Ok(n) => break n,
                // A signal (Ctrl-C is watched on another thread) is not the end of the answer.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that closes without TLS close_notify after a complete response is fine.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break 0,
                Err(e) => return Err(e),
            }
        };
        let Some(parser) = self.parser.as_mut() else {
            return Ok(false);
        };
        if n == 0 {
            self.ended = true;
            // Whole only if its end was known by a close (no length, not chunked).
            if let Some(parser) = self.parser.take()
                && let Err(e) = parser.finish()
            {
                return Err(io::Error::other(format!("the answer ended early: {e}")));
            }
            return Ok(false);
        }
        if self.at == self.pending.len() {
            self.pending.clear();
            self.at = 0;
        }
        for event in parser.feed(&self.buf[..n]) {
            match event.map_err(|e| io::Error::other(format!("not valid HTTP: {e}")))? {
                http1::Event::Head { head, .. } => self.status = Some(head.status()),
                http1::Event::Body(d) => self.pending.extend_from_slice(d.bytes),
                http1::Event::End(_) => self.ended = true,
                http1::Event::Interim(_) | http1::Event::Excess(_) => {}
            }
        }
        Ok(true)
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
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

    /// A plain HTTP server that answers one request with `pieces`, written one by one, then
    /// closes; and a client of it.
    fn answer_once(pieces: Vec<&'static [u8]>) -> (Remote, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let (mut head, mut byte) = (Vec::new(), [0u8; 1]);
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            for piece in pieces {
                conn.write_all(piece).unwrap();
                conn.flush().unwrap();
            }
        });
        let remote = Remote {
            url: parse_url(&url).unwrap(),
            tls: None,
            settings: MockSettings::default(),
        };
        (remote, server)
    }

    fn read_log(remote: &Remote) -> Result<Vec<u8>, String> {
        remote.get_streaming("/_streamcheck/requests", |body| {
            let mut out = Vec::new();
            body.read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok(out)
        })
    }

    #[test]
    fn a_chunked_answer_is_read_whole_across_writes() {
        let (remote, server) = answer_once(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6\r\n world\r\n0\r\n\r\n",
        ]);
        assert_eq!(read_log(&remote).unwrap(), b"hello world");
        server.join().unwrap();
    }

    #[test]
    fn an_answer_cut_short_is_an_error_not_a_shorter_log() {
        let (remote, server) = answer_once(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"requests\":[",
        ]);
        let e = read_log(&remote).unwrap_err();
        assert!(e.contains("ended early"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn an_error_status_is_named_with_the_mocks_message() {
        let (remote, server) = answer_once(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nno such route",
        ]);
        assert_eq!(read_log(&remote).unwrap_err(), "status 404: no such route");
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_mock_is_named_with_the_flag_and_the_fixes() {
        // A port just given up by its listener: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v1");
        let Err(e) = Remote::connect(&url, Some(DAEMON_CMD_INSTEAD)) else {
            panic!("nothing listens at {url}, yet it was reached");
        };
        for part in [
            "cannot be reached",
            "streamcheck mock-api",
            "--backend",
            "--daemon-cmd",
        ] {
            assert!(e.contains(part), "{part:?} missing from: {e}");
        }
    }
}
