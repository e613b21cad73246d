//! What one stream showed: the reads as recorded, and what they mean (head, events, content,
//! `[DONE]`, finish_reason, error events), built incrementally so that the same pass that
//! judges a stream also drives the client while it runs (close after N events, give up on a
//! daemon that never closes after `[DONE]`).

use serde_json::Value;

use crate::handoff::HandoffError;
use crate::http1;
use crate::mock::WriteRecord;
use crate::pattern::UpstreamPlan;
use crate::ring::{EndReason, HandoffTimings};
use crate::sse;
use crate::verdict::{Spread, Timings, WireDump, WireLimits};

/// Why the client closed the connection itself, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientClose {
    /// After the scenario's number of content events (a browser navigating away).
    AfterEvents {
        /// When the close was issued.
        at_ns: u64,
    },
    /// The daemon sent `[DONE]` but did not close within the grace period.
    NotClosedAfterDone {
        /// When the close was issued.
        at_ns: u64,
    },
}

/// One dispatched event with its arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// Receive time of the read that completed it.
    pub ts_ns: u64,
    /// `message` unless an `event:` field said otherwise.
    pub event_type: String,
    /// The data, raw.
    pub data: Vec<u8>,
}

/// A stream being received, and at the end what it showed.
#[derive(Debug)]
pub(super) struct Observation {
    /// The handoff data sent.
    pub sent: Vec<u8>,
    /// The handoff's timings, once handed off.
    pub handoff: Option<HandoffTimings>,
    /// Every read, `(receive time, bytes)`.
    pub reads: Vec<(u64, Vec<u8>)>,
    /// How the stream ended (`None` while it runs).
    pub end: Option<(u64, EndReason)>,
    /// Whether and why the client closed.
    pub client_close: Option<ClientClose>,
    /// The final response head.
    pub head: Option<http1::Head>,
    /// When the head was complete.
    pub head_ns: Option<u64>,
    /// Why the bytes are not a valid HTTP/1.x response, if they are not.
    pub http_error: Option<String>,
    /// Why the body is not a valid event stream, if it is not.
    pub sse_error: Option<String>,
    /// Dispatched events, in order.
    pub events: Vec<Event>,
    /// The decoded content, concatenated.
    pub content: Vec<u8>,
    /// Indexes (into `events`) of the events that carried content.
    pub content_events: Vec<usize>,
    /// Index of the first `data: [DONE]` event.
    pub done_at: Option<usize>,
    /// The first finish_reason seen.
    pub finish_reason: Option<String>,
    /// The text of the first error event (`{"error":…}` or `event: error`).
    pub error_event: Option<String>,
    /// Events whose data is neither `[DONE]` nor a JSON shape a browser client reads:
    /// `(index, why)`.
    pub undecodable: Vec<(usize, String)>,
    http: http1::Parser,
    sse: sse::Parser,
}

impl Observation {
    /// A stream about to send `sent`.
    pub fn new(sent: Vec<u8>) -> Observation {
        Observation {
            sent,
            handoff: None,
            reads: Vec::new(),
            end: None,
            client_close: None,
            head: None,
            head_ns: None,
            http_error: None,
            sse_error: None,
            events: Vec::new(),
            content: Vec::new(),
            content_events: Vec::new(),
            done_at: None,
            finish_reason: None,
            error_event: None,
            undecodable: Vec::new(),
            http: http1::Parser::new(),
            sse: sse::Parser::new(),
        }
    }

    /// One read arrived.
    pub fn feed(&mut self, ts_ns: u64, bytes: Vec<u8>) {
        if self.http_error.is_none() {
            let mut body: Vec<Vec<u8>> = Vec::new();
            for event in self.http.feed(&bytes) {
                match event {
                    Ok(http1::Event::Head { head, .. }) => {
                        self.head = Some(head);
                        self.head_ns = Some(ts_ns);
                    }
                    Ok(http1::Event::Body(data)) => body.push(data.bytes.to_vec()),
                    Ok(http1::Event::Excess(data)) => {
                        self.http_error = Some(format!(
                            "{} bytes arrived after the response's framing had ended it, at byte {}",
                            data.bytes.len(),
                            data.offset
                        ));
                    }
                    Ok(http1::Event::Interim(_) | http1::Event::End(_)) => {}
                    Err(e) => self.http_error = Some(e.to_string()),
                }
            }
            for piece in body {
                self.feed_body(ts_ns, &piece);
            }
        }
        self.reads.push((ts_ns, bytes));
    }

    fn feed_body(&mut self, ts_ns: u64, body: &[u8]) {
        if self.sse_error.is_some() {
            return;
        }
        let mut dispatched: Vec<sse::Event> = Vec::new();
        if let Err(e) = self.sse.feed(body, &mut dispatched) {
            self.sse_error = Some(e.to_string());
        }
        for e in dispatched {
            self.interpret(Event {
                ts_ns,
                event_type: e.event_type,
                data: e.data,
            });
        }
    }

    /// Reads the meaning of one event: `[DONE]`, content, finish_reason or an error.
    fn interpret(&mut self, event: Event) {
        let index = self.events.len();
        let data = &event.data;
        if data.as_slice() == b"[DONE]" {
            self.done_at.get_or_insert(index);
        } else if event.event_type == "error" {
            self.error_event
                .get_or_insert_with(|| String::from_utf8_lossy(data).into_owned());
        } else {
            match serde_json::from_slice::<Value>(data) {
                Ok(value) => self.interpret_json(index, &value),
                Err(e) => self.undecodable.push((index, format!("not JSON ({e})"))),
            }
        }
        self.events.push(event);
    }

    fn interpret_json(&mut self, index: usize, value: &Value) {
        if let Some(error) = value.get("error") {
            let text = match error {
                Value::String(s) => s.clone(),
                other => other
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| other.to_string(), str::to_owned),
            };
            self.error_event.get_or_insert(text);
            return;
        }
        // The simplified shape `{"content":…}`, or a full OpenAI chunk forwarded verbatim.
        let (content, finish) = match value.pointer("/choices/0") {
            Some(choice) => (
                choice.pointer("/delta/content"),
                choice.get("finish_reason"),
            ),
            None => (value.get("content"), value.get("finish_reason")),
        };
        if let Some(Value::String(reason)) = finish {
            self.finish_reason.get_or_insert_with(|| reason.clone());
        }
        match content {
            Some(Value::String(text)) => {
                if !text.is_empty() {
                    self.content.extend_from_slice(text.as_bytes());
                    self.content_events.push(index);
                }
            }
            Some(Value::Null) | None if finish.is_some_and(|f| !f.is_null()) => {}
            Some(Value::Null) | None if value.get("choices").is_some() => {}
            _ => self.undecodable.push((
                index,
                "a JSON object with neither \"content\" (a string), \"choices\" nor \"error\""
                    .to_owned(),
            )),
        }
    }

    /// The stream ended.
    pub fn end(&mut self, ts_ns: u64, reason: EndReason) {
        if self.http_error.is_none() && self.head.is_some() {
            if let Err(e) = self.http.clone().finish() {
                self.http_error = Some(e.to_string());
            }
        }
        self.end = Some((ts_ns, reason));
    }

    /// Content events so far.
    pub fn content_event_count(&self) -> usize {
        self.content_events.len()
    }

    /// Arrival time of the `[DONE]` event, if it came.
    pub fn done_ns(&self) -> Option<u64> {
        self.done_at.map(|i| self.events[i].ts_ns)
    }

    /// The response status, when a head arrived.
    pub fn status(&self) -> Option<u16> {
        self.head.as_ref().map(http1::Head::status)
    }

    /// The response headers as `(name, value)` text pairs.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.head.as_ref().map_or_else(Vec::new, |h| {
            h.headers()
                .iter()
                .map(|f| {
                    let value = String::from_utf8_lossy(f.value()).into_owned();
                    (f.name().to_owned(), value)
                })
                .collect()
        })
    }

    /// Bytes received in all.
    pub fn received_bytes(&self) -> usize {
        self.reads.iter().map(|(_, b)| b.len()).sum()
    }

    /// When the daemon had the client socket (the reference point of every timing).
    pub fn sent_ns(&self) -> Option<u64> {
        self.handoff.map(|h| h.sent_ns)
    }

    /// When the stream ended.
    pub fn end_ns(&self) -> Option<u64> {
        self.end.as_ref().map(|(ts, _)| *ts)
    }

    /// How the stream ended.
    pub fn end_reason(&self) -> Option<&EndReason> {
        self.end.as_ref().map(|(_, r)| r)
    }

    /// The error the stream ended with, when it ended with one.
    pub fn end_error(&self) -> Option<&HandoffError> {
        match self.end_reason() {
            Some(EndReason::Error(e)) => Some(e),
            _ => None,
        }
    }

    /// The arrival times of the content events.
    pub fn content_times(&self) -> Vec<u64> {
        self.content_events
            .iter()
            .map(|&i| self.events[i].ts_ns)
            .collect()
    }

    /// The stream's timings; `relay_latency` is filled by the caller that has the mock's log.
    pub fn timings(&self) -> Timings {
        let Some(h) = self.handoff else {
            return Timings::default();
        };
        let since = |ts: u64| ts.saturating_sub(h.sent_ns);
        let gaps: Vec<u64> = self
            .events
            .windows(2)
            .map(|w| w[1].ts_ns.saturating_sub(w[0].ts_ns))
            .collect();
        Timings {
            handoff_ns: Some(h.sent_ns.saturating_sub(h.connect_start_ns)),
            head_ns: self.head_ns.map(since),
            first_event_ns: self.events.first().map(|e| since(e.ts_ns)),
            total_ns: self.end_ns().map(since),
            gaps: Spread::of(&gaps),
            relay_latency: None,
        }
    }

    /// The bytes on the wire, for a report.
    pub fn wire(&self) -> WireDump {
        let origin = self.handoff.map_or_else(
            || self.reads.first().map_or(0, |(ts, _)| *ts),
            |h| h.connect_start_ns,
        );
        let limits = WireLimits::default();
        let reads = self
            .reads
            .iter()
            .map(|(ts, b)| (ts.saturating_sub(origin), b.as_slice()));
        let mut dump = WireDump::capture(reads, limits).with_sent(0, &self.sent, limits);
        if let Some(head) = &self.head {
            dump = dump.with_head_len(usize::try_from(head.end()).unwrap_or(usize::MAX));
        }
        let end = match (&self.client_close, self.end_reason()) {
            (Some(ClientClose::AfterEvents { .. }), _) => {
                "closed by the client after its events, as the scenario asks".to_owned()
            }
            (Some(ClientClose::NotClosedAfterDone { .. }), _) => {
                "closed by the client: the daemon kept the connection open after [DONE]".to_owned()
            }
            (None, Some(reason)) => reason.to_string(),
            (None, None) => "still open".to_owned(),
        };
        dump.with_end(end)
    }
}

/// Relay latency per content event: when the client received its n-th content event, minus
/// when the mock wrote the upstream chunk that completed the n-th content event of `plan`.
pub(super) fn relay_latencies(
    obs: &Observation,
    plan: &UpstreamPlan,
    writes: &[WriteRecord],
) -> Vec<u64> {
    let mut upstream: Vec<sse::Event> = Vec::new();
    if sse::Parser::new()
        .feed(&plan.body(), &mut upstream)
        .is_err()
    {
        return Vec::new();
    }
    let carries_content = |data: &[u8]| {
        serde_json::from_slice::<Value>(data).ok().is_some_and(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
    };
    upstream
        .iter()
        .filter(|e| carries_content(&e.data))
        .zip(obs.content_times())
        .filter_map(|(event, arrived)| {
            // The write holding the event's last byte is the one that completed it.
            let write = writes.iter().find(|w| w.end >= event.end)?;
            Some(arrived.saturating_sub(write.ts_ns))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(pieces: &[&[u8]]) -> Observation {
        let mut o = Observation::new(b"{}".to_vec());
        for (i, p) in pieces.iter().enumerate() {
            o.feed(i as u64 * 10, p.to_vec());
        }
        o.end(1000, EndReason::PeerClosed);
        o
    }

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

    #[test]
    fn simplified_events_give_content_done_and_finish_reason() {
        let o = observe(&[
            HEAD,
            b"data: {\"content\":\"H\xc3",
            b"\xa9\"}\n\ndata: {\"content\":\"\",\"finish_reason\":\"stop\"}\n\n",
            b"data: [DONE]\n\n",
        ]);
        assert_eq!(o.status(), Some(200));
        assert_eq!(o.content, "Hé".as_bytes());
        assert_eq!(o.content_events, vec![0]);
        assert_eq!(o.finish_reason.as_deref(), Some("stop"));
        assert_eq!(o.done_at, Some(2));
        assert_eq!(o.done_ns(), Some(30));
        assert!(o.undecodable.is_empty() && o.http_error.is_none());
    }

    #[test]
    fn full_openai_chunks_are_read_too() {
        let o = observe(&[
            HEAD,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        ]);
        assert_eq!(o.content, b"Hi");
        assert_eq!(o.finish_reason.as_deref(), Some("length"));
        assert!(o.undecodable.is_empty(), "{:?}", o.undecodable);
    }

    #[test]
    fn error_events_in_both_forms() {
        let o = observe(&[
            HEAD,
            b"data: {\"error\":{\"message\":\"upstream 500\"}}\n\n",
        ]);
        assert_eq!(o.error_event.as_deref(), Some("upstream 500"));
        let o = observe(&[HEAD, b"event: error\ndata: boom\n\n"]);
        assert_eq!(o.error_event.as_deref(), Some("boom"));
    }

    #[test]
    fn garbage_events_are_named() {
        let o = observe(&[HEAD, b"data: hello\n\ndata: {\"x\":1}\n\n"]);
        assert_eq!(o.undecodable.len(), 2);
        assert!(o.undecodable[0].1.contains("not JSON"));
    }

    #[test]
    fn bad_http_is_reported_not_parsed_further() {
        let o = observe(&[b"data: {\"content\":\"x\"}\n\n"]);
        assert!(o.http_error.is_some());
        assert!(o.head.is_none() && o.events.is_empty());
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let o = observe(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"18\r\ndata: {\"content\":\"ok\"}\n\n\r\n0\r\n\r\n",
        ]);
        assert_eq!(o.content, b"ok");
        assert!(o.http_error.is_none(), "{:?}", o.http_error);
    }
}
