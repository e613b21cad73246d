//! One connection, start to end: receive the handoff, ask the upstream, relay its stream, close.
//!
//! Every connection is its own task; the only thing streams share is the upstream client. A slow
//! client blocks only its own task, and while it does, its upstream body is not read, so memory
//! per connection stays bounded by one upstream frame plus the reader's event limit.
//!
//! Failure handling, by what the client has seen so far:
//! - before the `200` head: an HTTP error response with a JSON body (400/413 bad handoff, 502
//!   upstream error status or unreachable, 504 no upstream answer in time, 503 shutting down);
//! - after it: a `data: {"error":…}` event, then close. Never a head followed by a silent close,
//!   never a connection left open.
//!
//! A complete answer is read to its end even after its `[DONE]` (see [`drain`]); an answer the
//! daemon gives up on (client gone, upstream error event, shutdown) is abandoned, which cancels
//! it upstream.

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::abuse;
use super::client::{ClientConn, ClientGone};
use super::fault::{self, Fault};
use super::handoff::{self, Handoff, HandoffError, Request};
use super::reader::{self, Item, Reader};
use super::upstream::{Upstream, chain};
use super::wire::{self, ClientFormat, Outcome, Translator};

/// After `[DONE]`, the most of the rest of an upstream answer [`drain`] reads.
const DRAIN_BYTES: usize = 64 << 10;

/// After `[DONE]`, how long [`drain`] waits for the upstream answer to end.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Deadlines of the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accepting a handoff connection to its message.
    pub handoff: Duration,
    /// For the upstream's response head, and between two reads of its body (a stalled upstream).
    pub upstream: Duration,
    /// How long one write may wait on a client that reads nothing.
    pub client: Duration,
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) fault: Option<Fault>,
    pub(crate) format: ClientFormat,
    pub(crate) upstream: Upstream,
    pub(crate) timeouts: Timeouts,
    /// Turns true when the drain deadline of a shutdown has passed: streams end at once.
    pub(crate) abort: watch::Receiver<bool>,
    /// The lock of the head-of-line-blocking fault.
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    /// The "current client" slot of the crosstalk fault.
    pub(crate) current: Mutex<Option<Arc<ClientConn>>>,
    /// The fds the leak-fd fault never closes.
    pub(crate) leaked: Mutex<Vec<Arc<ClientConn>>>,
}

impl Shared {
    pub(crate) fn new(
        fault: Option<Fault>,
        format: ClientFormat,
        upstream: Upstream,
        timeouts: Timeouts,
        abort: watch::Receiver<bool>,
    ) -> Self {
        Shared {
            fault,
            format,
            upstream,
            timeouts,
            abort,
            write_lock: tokio::sync::Mutex::new(()),
            current: Mutex::new(None),
            leaked: Mutex::new(Vec::new()),
        }
    }
}

fn log(id: u64, message: impl std::fmt::Display) {
    eprintln!("ref-daemon: connection {id}: {message}");
}

/// Serves one accepted handoff connection (SEQPACKET; see [`super::listener`] on its tokio
/// type) to its end.
pub(crate) async fn serve(sock: UnixStream, shared: Arc<Shared>, id: u64) {
    let handoff = match receive(sock, &shared).await {
        Ok(handoff) => handoff,
        Err(err) => return log(id, err),
    };
    let request = handoff::request_from(&handoff.data, handoff.full_len, shared.fault);
    let client = handoff.client;
    let conn = match ClientConn::new(client, shared.timeouts.client) {
        Ok(conn) => Arc::new(conn),
        Err(err) => return log(id, format!("cannot use the handed-off fd: {err}")),
    };
    if abuse::answer(shared.fault, &conn).await {
        conn.shutdown_write();
        return;
    }
    if fault::is(shared.fault, Fault::Silent) {
        // Fault (silent): the handoff is taken, then nothing: no byte, no upstream call, no close
        // until the client leaves or the daemon stops.
        let mut abort = shared.abort.clone();
        tokio::select! {
            _ = conn.gone() => {}
            () = aborted(&mut abort) => {}
        }
        return;
    }
    let mut relay = Relay::new(id, conn, shared);
    match request {
        Err(rejection) => {
            log(
                id,
                format!(
                    "refused handoff ({}): {}",
                    rejection.status, rejection.message
                ),
            );
            let response = wire::error_response(rejection.status, &rejection.message, &[]);
            let _ = relay.send(&response).await;
        }
        Ok(request) => relay.stream(request).await,
    }
    relay.finish().await;
}

/// Waits for the handoff message (one `recvmsg`) within the handoff deadline.
async fn receive(sock: UnixStream, shared: &Shared) -> Result<Handoff, HandoffError> {
    let buffer = handoff::buffer_size(shared.fault);
    let wait = async {
        loop {
            sock.readable().await?;
            let attempt = sock.try_io(Interest::READABLE, || {
                match handoff::recv_handoff(sock.as_fd(), buffer) {
                    Err(HandoffError::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                        Err(err)
                    }
                    other => Ok(other),
                }
            });
            match attempt {
                Ok(result) => return result,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(HandoffError::Io(err)),
            }
        }
    };
    match tokio::time::timeout(shared.timeouts.handoff, wait).await {
        Ok(result) => result,
        Err(_) => Err(HandoffError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no handoff message within {:?}", shared.timeouts.handoff),
        ))),
    }
}

struct Relay {
    id: u64,
    conn: Arc<ClientConn>,
    shared: Arc<Shared>,
    abort: watch::Receiver<bool>,
    head_sent: bool,
    extra_headers: Vec<(String, String)>,
    /// Everything written so far, for the buffer-whole-response fault.
    held: Vec<u8>,
    /// The client left (or stopped reading): nothing more is written.
    client_gone: bool,
    /// The upstream answer after its `[DONE]`, drained once the client is closed.
    rest: Option<Incoming>,
}

impl Relay {
    fn new(id: u64, conn: Arc<ClientConn>, shared: Arc<Shared>) -> Self {
        let abort = shared.abort.clone();
        Relay {
            id,
            conn,
            shared,
            abort,
            head_sent: false,
            extra_headers: Vec::new(),
            held: Vec::new(),
            client_gone: false,
            rest: None,
        }
    }

    fn fault(&self, mode: Fault) -> bool {
        fault::is(self.shared.fault, mode)
    }

    /// Writes to the client. Every byte the client gets goes through here.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientGone> {
        if self.fault(Fault::BufferWholeResponse) {
            // Bug (buffer-whole-response): output held until the stream is over.
            self.held.extend_from_slice(bytes);
            return Ok(());
        }
        self.write_now(bytes).await
    }

    async fn write_now(&mut self, bytes: &[u8]) -> Result<(), ClientGone> {
        let mut target = self.conn.clone();
        if self.fault(Fault::Crosstalk) {
            // Bug (crosstalk): output goes to the one shared "current client", the latest handoff.
            let current = self
                .shared
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            target = current.unwrap_or(target);
        }
        let _serialised = if self.fault(Fault::HeadOfLineBlocking) {
            // Bug (head-of-line-blocking): one global lock held across the (possibly slow) write.
            Some(self.shared.write_lock.lock().await)
        } else {
            None
        };
        let result = target.write_all(bytes).await;
        if result.is_err() {
            self.client_gone = true;
        }
        result
    }

    async fn send_head(&mut self) -> Result<(), ClientGone> {
        let head = wire::success_head(self.shared.fault, &self.extra_headers);
        self.head_sent = true;
        self.send(&head).await
    }

    /// The whole life of a valid request.
    async fn stream(&mut self, request: Request) {
        self.extra_headers = request.response_headers.clone();
        if self.fault(Fault::Crosstalk) {
            *self
                .shared
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(self.conn.clone());
        }
        let shared = self.shared.clone();
        let timeouts = shared.timeouts;
        let conn = self.conn.clone();
        let mut abort = self.abort.clone();
        let waited = tokio::select! {
            response = shared.upstream.send(shared.upstream.build(&request), timeouts.upstream) => Some(response),
            _ = conn.gone() => return,
            () = aborted(&mut abort) => None,
        };
        let response = match waited {
            Some(Ok(response)) => response,
            Some(Err(err)) => return self.fail(err.status(), err.to_string()).await,
            None => return self.fail(503, "the daemon is shutting down".into()).await,
        };
        let status = response.status();
        if !status.is_success() {
            if self.fault(Fault::ErrorAsDone) {
                // Bug (error-as-done): the status is not checked; the error body holds no
                // events, and the empty stream is closed as complete.
                let mut done = Vec::new();
                wire::done_event(&mut done);
                let _ = self.send_head().await;
                let _ = self.send(&done).await;
                return;
            }
            // A rate limit is the browser's to retry, with the upstream's Retry-After; any
            // other upstream error is a bad gateway.
            let code = if status == http::StatusCode::TOO_MANY_REQUESTS {
                if let Some(after) = response.headers().get(http::header::RETRY_AFTER)
                    && let Ok(after) = after.to_str()
                {
                    self.extra_headers
                        .push(("Retry-After".into(), after.to_owned()));
                }
                429
            } else {
                502
            };
            let detail = error_body(response.into_body(), timeouts.upstream).await;
            return self
                .fail(code, format!("upstream answered {status}{detail}"))
                .await;
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        // A missing Content-Type is given the benefit of the doubt; a declared other type (a
        // JSON completion, an HTML error page) is not an event stream.
        if let Some(ct) = content_type
            && !ct
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        {
            let message =
                format!("upstream answered {status} with Content-Type {ct}, not text/event-stream");
            return self.fail(502, message).await;
        }
        if self.send_head().await.is_err() {
            return;
        }
        let model = shared.upstream.model(&request);
        self.relay_body(response.into_body(), model).await;
    }

    /// Upstream body → client events, until the answer ends, the upstream fails or the client
    /// leaves.
    async fn relay_body(&mut self, mut body: Incoming, model: &str) {
        let timeouts = self.shared.timeouts;
        let conn = self.conn.clone();
        let mut abort = self.abort.clone();
        let mut reader = Reader::new(self.shared.fault);
        let mut translator = Translator::new(self.shared.fault, self.shared.format, model);
        let mut items = Vec::new();
        let mut out = Vec::new();
        loop {
            let next = tokio::select! {
                biased;
                () = aborted(&mut abort) => Next::Abort,
                _ = conn.gone() => Next::ClientGone,
                frame = tokio::time::timeout(timeouts.upstream, body.frame()) => Next::Frame(frame),
            };
            let frame = match next {
                Next::Abort => return self.fail(503, "the daemon is shutting down".into()).await,
                Next::ClientGone => return self.client_left(body).await,
                Next::Frame(frame) => frame,
            };
            let outcome = match frame {
                Err(_) => {
                    return self
                        .fail(
                            504,
                            format!("upstream sent nothing for {:?}", timeouts.upstream),
                        )
                        .await;
                }
                Ok(Some(Err(err))) => {
                    return self
                        .fail(
                            502,
                            format!("upstream connection failed mid-stream: {}", chain(&err)),
                        )
                        .await;
                }
                Ok(None) => {
                    let outcome = translator.upstream_ended(&mut out);
                    if outcome == Outcome::Failed {
                        log(self.id, "upstream ended before the answer was complete");
                    }
                    Some(outcome)
                }
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    reader.feed(&data, &mut items);
                    items.drain(..).find_map(|item| {
                        if let Item::Error(message) = &item {
                            log(self.id, message);
                        }
                        translator.item(item, &mut out)
                    })
                }
            };
            if !out.is_empty() {
                if self.send(&out).await.is_err() {
                    // The client is gone or stopped reading.
                    return self.client_left(body).await;
                }
                out.clear();
            }
            match outcome {
                None => {}
                Some(Outcome::Failed) => return,
                Some(Outcome::Complete) => {
                    self.rest = Some(body);
                    if self.fault(Fault::NoClose) {
                        // Bug (no-close): the connection is kept open after [DONE].
                        self.flush().await;
                        tokio::select! {
                            _ = conn.gone() => {}
                            () = aborted(&mut abort) => {}
                        }
                    }
                    return;
                }
            }
        }
    }

    /// The client went away mid-stream.
    async fn client_left(&mut self, mut body: Incoming) {
        self.client_gone = true;
        if self.fault(Fault::NoUpstreamCancel) {
            // Bug (no-upstream-cancel): the upstream is read to its end for nobody.
            let idle = self.shared.timeouts.upstream;
            while let Ok(Some(Ok(_))) = tokio::time::timeout(idle, body.frame()).await {}
        }
        // Dropping `body` here resets the HTTP/2 stream or closes the HTTP/1.1 connection.
    }

    /// The upstream failed (or the daemon is stopping): tell the client the truth.
    async fn fail(&mut self, status: u16, message: String) {
        log(self.id, &message);
        if self.fault(Fault::HangOnUpstreamError) && status != 503 {
            // Bug (hang-on-upstream-error): nothing is written and the client is left waiting.
            self.flush().await;
            let conn = self.conn.clone();
            let mut abort = self.abort.clone();
            tokio::select! {
                _ = conn.gone() => {}
                () = aborted(&mut abort) => {}
            }
            return;
        }
        if self.fault(Fault::HeadersOnlyOnUpstreamError) && status != 503 {
            // Bug (headers-only-on-upstream-error): a 200 head, then the connection is closed.
            if !self.head_sent {
                let _ = self.send_head().await;
            }
            return;
        }
        if self.head_sent {
            let mut event = Vec::new();
            wire::error_event(self.shared.format, &message, &mut event);
            let _ = self.send(&event).await;
        } else {
            let response = wire::error_response(status, &message, &self.extra_headers);
            let _ = self.send(&response).await;
        }
    }

    /// Writes whatever the buffer-whole-response fault held back.
    async fn flush(&mut self) {
        if !self.held.is_empty() && !self.client_gone {
            let held = std::mem::take(&mut self.held);
            let _ = self.write_now(&held).await;
        }
    }

    /// Ends the response: flush, FIN, close; then reads the rest of a complete upstream answer.
    async fn finish(mut self) {
        self.flush().await;
        if self.fault(Fault::Crosstalk) {
            let mut current = self
                .shared
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.conn)) {
                *current = None;
            }
        }
        self.conn.shutdown_write();
        if self.fault(Fault::LeakFd) {
            // Bug (leak-fd): writing is shut down, but the fd is never closed.
            self.shared
                .leaked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.conn.clone());
        }
        let rest = self.rest.take();
        let abort = self.abort.clone();
        drop(self); // closes the client's fd
        if let Some(body) = rest {
            drain(body, abort).await;
        }
    }
}

/// Reads and discards what is left of a complete upstream answer (usually nothing but the end of
/// its stream, which the upstream sends right after `[DONE]`), so that its stream ends cleanly.
///
/// Abandoning it at `[DONE]` instead reports every finished answer to the upstream as cancelled:
/// on HTTP/1.1 hyper closes the connection unless the response's last chunk has already arrived,
/// so the next request pays a new TCP and TLS handshake; on HTTP/2 the stream is reset
/// (RST_STREAM CANCEL) while its END_STREAM is in flight, and such a late frame on a stream h2
/// no longer remembers counts as an upstream error; at 1,024 of them h2 closes the connection and
/// fails every stream on it (see [`super::upstream::RESET_STREAMS_REMEMBERED`]).
///
/// Gives up (abandoning the answer) past [`DRAIN_BYTES`] or [`DRAIN_WAIT`], or at shutdown.
async fn drain(mut body: Incoming, mut abort: watch::Receiver<bool>) {
    let mut budget = DRAIN_BYTES;
    let read_to_end = async {
        while let Some(Ok(frame)) = body.frame().await {
            let size = frame.data_ref().map_or(0, |data| data.len());
            match budget.checked_sub(size) {
                Some(left) => budget = left,
                None => return,
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(DRAIN_WAIT, read_to_end) => {}
        () = aborted(&mut abort) => {}
    }
}

/// What ended a wait in the relay loop.
enum Next<F> {
    Abort,
    ClientGone,
    Frame(F),
}

/// Resolves once a shutdown's drain time has passed (never, if the sender is gone first).
async fn aborted(abort: &mut watch::Receiver<bool>) {
    if abort.wait_for(|a| *a).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A short description of an upstream error body: its `error.message`, or its first 200 bytes.
async fn error_body(body: Incoming, timeout: Duration) -> String {
    let limited = http_body_util::Limited::new(body, 16 << 10);
    let Ok(Ok(collected)) = tokio::time::timeout(timeout, limited.collect()).await else {
        return String::new();
    };
    let bytes = collected.to_bytes();
    let text = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) if map.contains_key("error") => {
            reader::error_message(&map["error"])
        }
        _ => String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            .trim()
            .to_owned(),
    };
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
