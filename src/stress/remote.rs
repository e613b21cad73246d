//! A mock API running elsewhere (`--backend URL`), reached over its control routes: its settings
//! (`GET /_streamcheck/patterns`), scripts (`POST /_streamcheck/scripts`) and request log
//! (`GET /_streamcheck/requests`, read as a stream so that a log of 10,000 requests never sits
//! in memory whole).
//!
//! A small blocking HTTP/1.1 client, one connection per request, plain or TLS. With TLS it does
//! not verify the certificate (handshake signatures are still checked): the mock is our own,
//! on loopback, with a certificate it generated.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::http1;
use crate::pattern::MockSettings;

/// How long one control request may wait for the mock.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A mock reached over HTTP.
pub struct RemoteMock {
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    url: String,
    /// What the mock plans its patterns with.
    pub settings: MockSettings,
}

impl RemoteMock {
    /// Connects to the mock at `url` (`http(s)://HOST:PORT/…`) and reads its settings.
    pub fn connect(url: &str) -> Result<RemoteMock, String> {
        let bad = |why: &str| {
            format!("--backend {url:?} is not a URL like https://127.0.0.1:28080/v1: {why}")
        };
        let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => return Err(bad("it must start with http:// or https://")),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                (h, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
            None if https => 443,
            None => 80,
        };
        let mut mock = RemoteMock {
            host: host.to_owned(),
            port,
            tls: https
                .then(crate::any_certificate::client_config)
                .transpose()?,
            url: url.to_owned(),
            settings: MockSettings::default(),
        };
        let reply = mock.request("GET", "/_streamcheck/patterns", None).map_err(|e| {
            format!(
                "the mock API at {url} cannot be reached ({e}); start it (`streamcheck mock-api \
                 --tls --listen 127.0.0.1:28080`) and pass the URL it prints"
            )
        })?;
        let value: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("{url} answered /_streamcheck/patterns with non-JSON: {e}"))?;
        let s = &value["settings"];
        match (s["chunk_count"].as_u64(), s["chunk_delay_ms"].as_u64()) {
            (Some(count), Some(delay)) => {
                mock.settings = MockSettings {
                    chunk_count: usize::try_from(count).unwrap_or(usize::MAX),
                    chunk_delay: Duration::from_millis(delay),
                };
                Ok(mock)
            }
            _ => Err(format!(
                "the server at {url} is not a streamcheck mock API of this version (no settings \
                 in /_streamcheck/patterns); start `streamcheck mock-api`"
            )),
        }
    }

    /// The base URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers a script of content pieces ending with a final chunk and `[DONE]`; returns
    /// its pattern (`script:ID`).
    pub fn register_content_script(&self, pieces: &[String]) -> Result<String, String> {
        let writes: Vec<serde_json::Value> = pieces
            .iter()
            .map(|p| serde_json::json!({ "content": p }))
            .collect();
        let body = serde_json::json!({"writes": writes, "ending": "done"}).to_string();
        let reply = self.request("POST", "/_streamcheck/scripts", Some(body.as_bytes()))?;
        let value: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("the mock's answer to a script is not JSON: {e}"))?;
        value["pattern"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the mock's answer to a script has no pattern: {value}"))
    }

    /// Streams the body of `GET path` into `consume`, which reads it to its end.
    pub fn get_streaming<T>(
        &self,
        path: &str,
        consume: impl FnOnce(&mut dyn Read) -> Result<T, String>,
    ) -> Result<T, String> {
        let io = self.open("GET", path, None)?;
        let mut body = Body {
            io,
            parser: Some(http1::Parser::new()),
            buf: vec![0; 64 * 1024],
            pending: Vec::new(),
            at: 0,
            status: None,
            ended: false,
        };
        let status = body.status()?;
        if !(200..300).contains(&status) {
            let mut text = Vec::new();
            let _ = body.take(300).read_to_end(&mut text);
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        consume(&mut body)
    }

    /// One request; the body of a 2xx answer, or an error naming the status and message.
    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let io = self.open(method, path, body)?;
        let mut reader = Body {
            io,
            parser: Some(http1::Parser::new()),
            buf: vec![0; 16 * 1024],
            pending: Vec::new(),
            at: 0,
            status: None,
            ended: false,
        };
        let status = reader.status()?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|e| format!("reading the mock's answer failed: {e}"))?;
        if (200..300).contains(&status) {
            Ok(out)
        } else {
            let text: String = String::from_utf8_lossy(&out).chars().take(300).collect();
            Err(format!("status {status}: {text}"))
        }
    }

    fn open(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Box<dyn ReadWrite>, String> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))?;
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let fail = |e: io::Error| format!("talking to {addr}: {e}");
        tcp.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
        let body = body.unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(body);
        let mut io: Box<dyn ReadWrite> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{} is not a TLS server name: {e}", self.host))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS setup failed: {e}"))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        };
        io.write_all(&message)
            .and_then(|()| io.flush())
            .map_err(|e| format!("sending the request to {addr} failed: {e}"))?;
        Ok(io)
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A response body as a [`Read`], decoded by the HTTP/1 parser as it arrives.
struct Body {
    io: Box<dyn ReadWrite>,
    parser: Option<http1::Parser>,
    buf: Vec<u8>,
    /// Decoded body bytes not yet read, from `at`.
    pending: Vec<u8>,
    at: usize,
    status: Option<u16>,
    ended: bool,
}

impl Body {
    /// Reads until the head is complete; its status.
    fn status(&mut self) -> Result<u16, String> {
        while self.status.is_none() {
            if !self
                .fill()
                .map_err(|e| format!("reading the mock's answer failed: {e}"))?
            {
                return Err("the connection closed before a response head".to_owned());
            }
        }
        Ok(self.status.unwrap_or(0))
    }

    /// Reads once more from the connection; false at its end.
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
            if !self.fill()? && self.at == self.pending.len() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
