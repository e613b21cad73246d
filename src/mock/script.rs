//! Scripts: upstream plans registered at run time (in-process or by `POST /_streamcheck/scripts`)
//! and selected with the pattern `script:<id>`.
//!
//! JSON form accepted by `POST /_streamcheck/scripts`:
//!
//! ```json
//! {"status": 200,
//!  "headers": {"content-type": "text/event-stream"},
//!  "writes": [{"content": "Hel"}, {"text": "data: [DONE]\n\n", "delay_ms": 20}, {"hex": "e282"}],
//!  "ending": "close"}
//! ```
//!
//! - `status`: 200 to 599 (default 200).
//! - `headers`: replaces the defaults (`text/event-stream` and `no-cache` for 200, JSON otherwise).
//! - `writes`: each exactly one of `text` (UTF-8), `hex` (bytes), `content` (one OpenAI chunk
//!   event carrying this content), with `delay_ms` before it (default 0). An empty `text` is a pure
//!   delay, e.g. a timed stall before the ending.
//! - `ending`: `close` (default), `done` (a final chunk with finish_reason "stop" and
//!   `data: [DONE]`, then close), `reset`, or `stall` (stay open and silent until the client
//!   leaves).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::pattern::{self, Ending, UpstreamPlan, Write};

/// Longest delay a script write may ask for.
const MAX_DELAY_MS: u64 = 3_600_000;

pub(crate) struct ScriptStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    next: u64,
    map: HashMap<String, UpstreamPlan>,
    order: VecDeque<String>,
}

impl ScriptStore {
    pub(crate) fn new(capacity: usize) -> ScriptStore {
        ScriptStore {
            inner: Mutex::new(Inner {
                next: 1,
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores a plan under a new id (`s1`, `s2`, …); the oldest script goes past the capacity.
    pub(crate) fn register(&self, plan: UpstreamPlan) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("s{}", inner.next);
        inner.next += 1;
        if inner.order.len() >= self.capacity
            && let Some(old) = inner.order.pop_front()
        {
            inner.map.remove(&old);
        }
        inner.order.push_back(id.clone());
        inner.map.insert(id.clone(), plan);
        id
    }

    pub(crate) fn get(&self, id: &str) -> Option<UpstreamPlan> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(id).cloned()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptJson {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    writes: Vec<WriteJson>,
    #[serde(default)]
    ending: EndingJson,
}

fn ok() -> u16 {
    200
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteJson {
    text: Option<String>,
    hex: Option<String>,
    content: Option<String>,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum EndingJson {
    #[default]
    Close,
    Done,
    Reset,
    Stall,
}

/// Parses the JSON form; the error says what to fix.
pub(crate) fn parse_script(body: &[u8]) -> Result<UpstreamPlan, String> {
    let s: ScriptJson = serde_json::from_slice(body).map_err(|e| {
        format!("the script is not valid ({e}); see `streamcheck mock-api --help` for the format")
    })?;
    if !(200..=599).contains(&s.status) {
        return Err(format!("status {} is outside 200..=599", s.status));
    }
    let mut writes = Vec::with_capacity(s.writes.len() + 2);
    for (i, w) in s.writes.iter().enumerate() {
        if w.delay_ms > MAX_DELAY_MS {
            return Err(format!("write {i}: delay_ms is over {MAX_DELAY_MS}"));
        }
        let bytes = match (&w.text, &w.hex, &w.content) {
            (Some(t), None, None) => t.clone().into_bytes(),
            (None, Some(h), None) => {
                crate::hex::decode(h).map_err(|e| format!("write {i}: {e}"))?
            }
            (None, None, Some(c)) => pattern::chunk_event(c),
            _ => return Err(format!("write {i}: give exactly one of text, hex, content")),
        };
        writes.push(Write::new(bytes, Duration::from_millis(w.delay_ms)));
    }
    let ending = match s.ending {
        EndingJson::Close => Ending::Close,
        EndingJson::Done => {
            writes.push(Write::new(pattern::final_event("stop"), Duration::ZERO));
            writes.push(Write::new(pattern::DONE_EVENT, Duration::ZERO));
            Ending::Close
        }
        EndingJson::Reset => Ending::Reset,
        EndingJson::Stall => Ending::Stall,
    };
    let headers = match s.headers {
        Some(h) => h.into_iter().collect(),
        None if s.status == 200 => UpstreamPlan::sse(Vec::new(), ending).headers,
        None => vec![("content-type".to_owned(), "application/json".to_owned())],
    };
    for (name, value) in &headers {
        http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))?;
        http::HeaderValue::from_str(value).map_err(|_| {
            format!("header {name}: value {value:?} is not a valid HTTP header value")
        })?;
    }
    Ok(UpstreamPlan {
        status: s.status,
        headers,
        writes,
        ending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_write_form_and_ending() {
        let plan = parse_script(
            br#"{"writes":[{"text":"a"},{"hex":"E282ac","delay_ms":5},{"content":"x"}],"ending":"done"}"#,
        )
        .unwrap();
        assert_eq!(plan.status, 200);
        assert_eq!(
            plan.headers[0],
            ("content-type".into(), "text/event-stream".into())
        );
        assert_eq!(&plan.writes[1].bytes[..], "€".as_bytes());
        assert_eq!(plan.writes[1].delay_before, Duration::from_millis(5));
        assert_eq!(&plan.writes[2].bytes[..], pattern::chunk_event("x"));
        assert_eq!(&plan.writes[4].bytes[..], pattern::DONE_EVENT);
        assert_eq!(plan.ending, Ending::Close);
        let stall = parse_script(br#"{"ending":"stall"}"#).unwrap();
        assert_eq!((stall.writes.len(), stall.ending), (0, Ending::Stall));
        let err = parse_script(br#"{"status":503,"writes":[{"text":"{}"}]}"#).unwrap();
        assert_eq!(
            err.headers,
            [("content-type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn rejects_what_it_cannot_play_and_says_why() {
        let cases: [(&[u8], &str); 8] = [
            (b"nope", "not valid"),
            (br#"{"writes":[{}]}"#, "exactly one"),
            (br#"{"writes":[{"text":"a","hex":"00"}]}"#, "exactly one"),
            (br#"{"writes":[{"hex":"abc"}]}"#, "odd"),
            (br#"{"writes":[{"hex":"zz"}]}"#, "hex digit"),
            (br#"{"status":99}"#, "outside"),
            (br#"{"headers":{"bad name":"x"}}"#, "header name"),
            (
                br#"{"writes":[{"text":"a","delay_ms":3600001}]}"#,
                "delay_ms",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_script(body).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(parse_script(br#"{"ending":"explode"}"#).is_err());
    }

    #[test]
    fn store_drops_the_oldest_script_past_capacity() {
        let store = ScriptStore::new(2);
        let plan = UpstreamPlan::sse(Vec::new(), Ending::Close);
        let a = store.register(plan.clone());
        let b = store.register(plan.clone());
        let c = store.register(plan.clone());
        assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("s1", "s2", "s3"));
        assert!(store.get(&a).is_none());
        assert_eq!(store.get(&c), Some(plan));
    }
}
