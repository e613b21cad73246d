//! The request log: what each request to the mock carried, every write with its timestamp, and
//! how the request ended. Bounded: past its capacity in records, or in bytes
//! ([`LOG_MAX_BYTES`]: a daemon may send many large requests), the oldest records are dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One request to the mock, as recorded. Serialised as-is by `GET /_streamcheck/requests`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number, from 1, also sent as the `x-streamcheck-request-id` response header.
    pub id: u64,
    /// [`crate::clock::monotonic_ns`] when the request head reached the mock's handler.
    pub arrival_ns: u64,
    /// The protocol the request came in on.
    pub http_version: HttpVersion,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// `tcp` or `unix`.
    pub transport: Transport,
    /// The client's address (TCP only).
    pub peer: Option<String>,
    /// The request method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Every request header, in order (values decoded lossily as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The `X-Test-Pattern` header, if any.
    pub x_test_pattern: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The pattern applied, canonical (`abort:5`), or `None` when the request was refused
    /// before a pattern was chosen or is not a chat completion.
    pub pattern: Option<String>,
    /// Where the pattern came from.
    pub pattern_channel: PatternChannel,
    /// The decoded chat-completion body, when it was one.
    pub body: Option<RequestBody>,
    /// The `[[nonce:…]]` token found in the prompt.
    pub nonce: Option<String>,
    /// The response status.
    pub status: u16,
    /// Why the mock refused the request (the `error.message` of its 4xx answer).
    pub error: Option<String>,
    /// Every body write handed to the connection, in order.
    pub writes: Vec<WriteRecord>,
    /// How the request ended.
    pub end: RequestEnd,
    /// [`crate::clock::monotonic_ns`] when it ended.
    pub end_ns: Option<u64>,
}

/// The HTTP version of a request; serialised as `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.0.
    #[serde(rename = "HTTP/1.0")]
    Http10,
    /// HTTP/1.1.
    #[serde(rename = "HTTP/1.1")]
    Http11,
    /// HTTP/2.
    #[serde(rename = "HTTP/2")]
    Http2,
}

impl std::fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
        })
    }
}

/// The listener a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `--listen`.
    Tcp,
    /// `--socket`.
    Unix,
}

/// Which channel chose the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternChannel {
    /// The `X-Test-Pattern` header.
    Header,
    /// A `[[pattern:…]]` directive in the prompt (no header, or an empty one).
    Prompt,
    /// Neither: the default pattern.
    None,
}

/// The fields of a chat-completion request body that tests check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBody {
    /// `model`.
    pub model: Option<String>,
    /// `messages`, with array contents flattened to their text parts.
    pub messages: Vec<Message>,
    /// `stream`.
    pub stream: Option<bool>,
    /// `prompt`, for clients that send one.
    pub prompt: Option<String>,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `role`.
    pub role: String,
    /// `content` (a string, or the concatenated `text` of its parts).
    pub content: String,
}

/// One body write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// [`crate::clock::monotonic_ns`] taken the instant the write was produced: its bytes
    /// handed to hyper (returned from the response body's `poll_frame`). A relay latency
    /// computed from it counts everything after the upstream wrote: the mock's own framing, any
    /// wait for HTTP/2 send capacity, and the daemon.
    pub ts_ns: u64,
    /// [`crate::clock::monotonic_ns`] when the write could go out. HTTP/1.1: the same as
    /// `ts_ns` (hyper frames the bytes and flushes them to the socket in that same task poll).
    /// HTTP/2: when h2 first granted the stream send capacity for it and hyper queued it as
    /// DATA for the connection task to write: hyper (1.x) polls the body again only then, and
    /// that poll is stamped. It waits as long as the peer's flow-control window (the stream's
    /// or the whole connection's) stays closed; a write larger than the window that opened may
    /// still wait for its rest. `None` when the write never got capacity (the stream ended
    /// first), and in logs from mocks older than this field.
    #[serde(default)]
    pub sent_ns: Option<u64>,
    /// Body byte offset of the first byte (framing excluded).
    pub start: u64,
    /// Body byte offset one past the last byte.
    pub end: u64,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestEnd {
    /// Still streaming.
    InProgress,
    /// The mock ended the response as planned (any status).
    Completed,
    /// The client went away (connection closed, or RST_STREAM on HTTP/2) after `at_write` writes
    /// had been handed over, i.e. while write number `at_write` (from 0) was pending.
    Cancelled {
        /// Writes handed over before the cancellation.
        at_write: usize,
    },
    /// The mock tore the stream down as its plan said (`reset:N`, a script ending in reset).
    Reset,
    /// The mock shut down while the response was in progress.
    ShutDown,
}

/// The most bytes of request data (headers, messages, writes) the log keeps.
pub const LOG_MAX_BYTES: usize = 32 << 20;

impl RequestRecord {
    /// About how many bytes the record holds.
    fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 48)
            .sum();
        let body = self.body.as_ref().map_or(0, |b| {
            b.messages
                .iter()
                .map(|m| m.role.len() + m.content.len() + 48)
                .sum::<usize>()
                + b.prompt.as_ref().map_or(0, String::len)
        });
        let writes = self.writes.len() * std::mem::size_of::<WriteRecord>();
        std::mem::size_of::<RequestRecord>() + headers + body + writes + self.path.len()
    }
}

struct Inner {
    entries: VecDeque<RequestRecord>,
    /// Sum of the entries' weights.
    bytes: usize,
    by_nonce: HashMap<String, Vec<u64>>,
    next_id: u64,
    dropped: u64,
}

pub(crate) struct RequestLog {
    inner: Mutex<Inner>,
    ended: Condvar,
    capacity: usize,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> RequestLog {
        RequestLog {
            inner: Mutex::new(Inner {
                entries: VecDeque::new(),
                bytes: 0,
                by_nonce: HashMap::new(),
                next_id: 1,
                dropped: 0,
            }),
            ended: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a record half-written in a way that
        // matters to readers, so a poisoned log stays usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a record and returns its id; the oldest record goes if the log is full.
    pub(crate) fn insert(&self, mut record: RequestRecord) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        record.id = id;
        let weight = record.weight();
        while inner.entries.len() >= self.capacity
            || (!inner.entries.is_empty() && inner.bytes + weight > LOG_MAX_BYTES)
        {
            let Some(old) = inner.entries.pop_front() else {
                break;
            };
            inner.bytes = inner.bytes.saturating_sub(old.weight());
            inner.dropped += 1;
            if let Some(nonce) = &old.nonce
                && let Some(ids) = inner.by_nonce.get_mut(nonce)
            {
                ids.retain(|&i| i != old.id);
                if ids.is_empty() {
                    inner.by_nonce.remove(nonce);
                }
            }
        }
        if let Some(nonce) = &record.nonce {
            inner.by_nonce.entry(nonce.clone()).or_default().push(id);
        }
        let ended = record.end != RequestEnd::InProgress;
        inner.bytes += weight;
        inner.entries.push_back(record);
        drop(inner);
        if ended {
            self.ended.notify_all();
        }
        id
    }

    fn index(inner: &Inner, id: u64) -> Option<usize> {
        let first = inner.entries.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        (i < inner.entries.len()).then_some(i)
    }

    /// Stamps when write number `index` of a record could go out (ignored if the record was
    /// already dropped).
    pub(crate) fn record_sent(&self, id: u64, index: usize, sent_ns: u64) {
        let mut inner = self.lock();
        if let Some(i) = Self::index(&inner, id)
            && let Some(write) = inner.entries[i].writes.get_mut(index)
        {
            write.sent_ns = Some(sent_ns);
        }
    }

    /// Appends a write to a record (ignored if the record was already dropped).
    pub(crate) fn record_write(&self, id: u64, write: WriteRecord) {
        let mut inner = self.lock();
        if let Some(i) = Self::index(&inner, id) {
            inner.entries[i].writes.push(write);
            inner.bytes += std::mem::size_of::<WriteRecord>();
        }
    }

    /// Marks a record ended and returns a copy of it (`None` if it was dropped).
    pub(crate) fn finish(&self, id: u64, end: RequestEnd, end_ns: u64) -> Option<RequestRecord> {
        let mut inner = self.lock();
        let i = Self::index(&inner, id)?;
        let record = &mut inner.entries[i];
        record.end = end;
        record.end_ns = Some(end_ns);
        let copy = record.clone();
        drop(inner);
        self.ended.notify_all();
        Some(copy)
    }

    pub(crate) fn for_nonce(&self, nonce: &str) -> Vec<RequestRecord> {
        let inner = self.lock();
        Self::nonce_records(&inner, nonce)
    }

    fn nonce_records(inner: &Inner, nonce: &str) -> Vec<RequestRecord> {
        let Some(ids) = inner.by_nonce.get(nonce) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|&id| Self::index(inner, id).map(|i| inner.entries[i].clone()))
            .collect()
    }

    /// Records kept that `keep` accepts, counted under the lock without copying any.
    pub(crate) fn count(&self, keep: impl Fn(&RequestRecord) -> bool) -> usize {
        self.lock().entries.iter().filter(|r| keep(r)).count()
    }

    pub(crate) fn all(&self) -> Vec<RequestRecord> {
        self.lock().entries.iter().cloned().collect()
    }

    /// Records dropped so far to keep the log within its capacity.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Blocks until at least one request carries `nonce` and all of them have ended; returns the
    /// latest. `None` after `timeout`.
    /// A timeout too long for the clock (`Duration::MAX`) waits without one.
    pub(crate) fn wait_for_end(&self, nonce: &str, timeout: Duration) -> Option<RequestRecord> {
        let deadline = Instant::now().checked_add(timeout);
        let mut inner = self.lock();
        loop {
            let records = Self::nonce_records(&inner, nonce);
            if !records.is_empty() && records.iter().all(|r| r.end != RequestEnd::InProgress) {
                return records.into_iter().last();
            }
            inner = match deadline {
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    match self.ended.wait_timeout(inner, left) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
                None => self
                    .ended
                    .wait(inner)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nonce: Option<&str>) -> RequestRecord {
        RequestRecord {
            id: 0,
            arrival_ns: 1,
            http_version: HttpVersion::Http11,
            tls: false,
            transport: Transport::Tcp,
            peer: None,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            headers: Vec::new(),
            x_test_pattern: None,
            authorization: None,
            pattern: None,
            pattern_channel: PatternChannel::None,
            body: None,
            nonce: nonce.map(str::to_owned),
            status: 200,
            error: None,
            writes: Vec::new(),
            end: RequestEnd::InProgress,
            end_ns: None,
        }
    }

    #[test]
    fn large_requests_are_dropped_oldest_first_past_the_byte_bound() {
        let log = RequestLog::new(10_000);
        let big = |nonce: &str| {
            let mut r = record(Some(nonce));
            r.body = Some(RequestBody {
                model: None,
                messages: vec![Message {
                    role: "user".to_owned(),
                    content: "x".repeat(1 << 20),
                }],
                stream: Some(true),
                prompt: None,
            });
            r
        };
        for i in 0..100 {
            log.insert(big(&format!("n{i}")));
        }
        let kept = log.all();
        assert!(kept.len() < 32 && kept.len() > 16, "{} kept", kept.len());
        assert_eq!(log.dropped(), 100 - kept.len() as u64);
        assert_eq!(log.for_nonce("n99").len(), 1, "the newest stays");
        assert!(log.for_nonce("n0").is_empty(), "the oldest went");
    }

    #[test]
    fn oldest_records_are_dropped_past_capacity_and_leave_the_nonce_index() {
        let log = RequestLog::new(2);
        let a = log.insert(record(Some("a")));
        log.insert(record(Some("b")));
        log.insert(record(Some("b")));
        assert_eq!(log.dropped(), 1);
        assert!(log.for_nonce("a").is_empty());
        assert_eq!(log.for_nonce("b").len(), 2);
        // Updates to a dropped record are ignored, not misapplied.
        log.record_write(
            a,
            WriteRecord {
                ts_ns: 1,
                sent_ns: Some(1),
                start: 0,
                end: 1,
            },
        );
        assert!(log.finish(a, RequestEnd::Completed, 2).is_none());
        assert!(
            log.all()
                .iter()
                .all(|r| r.writes.is_empty() && r.end == RequestEnd::InProgress)
        );
    }

    #[test]
    fn wait_for_end_waits_for_every_request_with_the_nonce() {
        let log = std::sync::Arc::new(RequestLog::new(10));
        let first = log.insert(record(Some("n")));
        let second = log.insert(record(Some("n")));
        assert!(log.wait_for_end("n", Duration::from_millis(1)).is_none());
        log.finish(first, RequestEnd::Completed, 5);
        assert!(log.wait_for_end("n", Duration::from_millis(1)).is_none());
        let waiter = {
            let log = log.clone();
            std::thread::spawn(move || log.wait_for_end("n", Duration::from_secs(30)))
        };
        log.finish(second, RequestEnd::Cancelled { at_write: 3 }, 6);
        let got = waiter.join().unwrap().expect("ended");
        assert_eq!(
            (got.id, got.end),
            (second, RequestEnd::Cancelled { at_write: 3 })
        );
        assert!(
            log.wait_for_end("unknown", Duration::from_millis(1))
                .is_none()
        );
    }

    #[test]
    fn a_timeout_beyond_the_clock_waits_without_one() {
        let log = std::sync::Arc::new(RequestLog::new(10));
        let id = log.insert(record(Some("forever")));
        let waiter = {
            let log = log.clone();
            std::thread::spawn(move || log.wait_for_end("forever", Duration::MAX))
        };
        log.finish(id, RequestEnd::Completed, 1);
        let got = waiter.join().expect("no overflow panic").expect("ended");
        assert_eq!(got.end, RequestEnd::Completed);
    }

    #[test]
    fn ends_serialise_with_a_kind_tag() {
        let json = serde_json::to_string(&RequestEnd::Cancelled { at_write: 2 }).unwrap();
        assert_eq!(json, r#"{"kind":"cancelled","at_write":2}"#);
    }
}
