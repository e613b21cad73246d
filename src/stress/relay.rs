//! Relay latency: when the mock wrote each content piece, against when the client read the
//! event carrying it.
//!
//! Every normal connection's upstream answer follows one plan (nonces have one length), so
//! which write completes which content byte is computed once, with
//! [`crate::transcript::upstream_marks`]. A connection's sample for a content event is the
//! latency of its oldest byte: the read that completed the event minus the mock's write of
//! that byte ([`crate::transcript::RelayLatency::event_latency_ns`]'s definition).
//!
//! The two halves meet in any order: an embedded mock reports each request as it ends; a
//! remote mock's log is read once the run is over, as a stream. A half waiting for the other
//! is kept up to a bound, so memory stays flat on long runs.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::expect::Nonces;
use super::stream::Arrivals;
use crate::pattern::UpstreamPlan;
use crate::transcript::upstream_marks;

/// Connections whose half of the join may wait for the other.
const MAX_PENDING: usize = 200_000;

/// The join, with its counters.
#[derive(Debug, Default)]
pub struct RelayJoin {
    /// Content bytes complete once each write of the plan was out.
    marks: Vec<u64>,
    /// Body offset just past each write of the plan.
    ends: Vec<u64>,
    arrivals: HashMap<u64, Arrivals>,
    writes: HashMap<u64, Vec<u64>>,
    /// Connections joined.
    pub joined: u64,
    /// Mock records whose writes did not follow the plan (not joined).
    pub off_plan: u64,
    /// Halves dropped because too many were waiting.
    pub dropped: u64,
    /// Why a remote mock's log could not be read.
    pub log_error: Option<String>,
    /// Connections below this index started during the warm-up: joined, not recorded.
    measure_from: u64,
}

impl RelayJoin {
    /// A join for connections served by `plan`.
    pub fn new(plan: &UpstreamPlan) -> RelayJoin {
        let mut end = 0u64;
        let ends: Vec<u64> = plan
            .writes
            .iter()
            .map(|w| {
                end += w.bytes.len() as u64;
                end
            })
            .collect();
        let marks = upstream_marks(&plan.body(), ends.iter().map(|&e| (0, e)))
            .marks
            .iter()
            .map(|m| m.content_bytes)
            .collect();
        RelayJoin {
            marks,
            ends,
            ..RelayJoin::default()
        }
    }

    /// Records only connections from `index` on (the first one started after the warm-up).
    pub fn measure_from(&mut self, index: u64) {
        self.measure_from = index;
    }

    /// Connection `index` ended with these content arrivals (its content was right).
    pub fn client(&mut self, index: u64, arrivals: Arrivals, hist: &mut Histogram<u64>) {
        if arrivals.is_empty() {
            return;
        }
        match self.writes.remove(&index) {
            Some(writes) => self.join(index, &arrivals, &writes, hist),
            None if self.arrivals.len() < MAX_PENDING => {
                self.arrivals.insert(index, arrivals);
            }
            None => self.dropped += 1,
        }
    }

    /// The mock's writes for connection `index`: `(ts_ns, body end)` each.
    pub fn upstream(&mut self, index: u64, writes: &[(u64, u64)], hist: &mut Histogram<u64>) {
        let on_plan = writes.len() <= self.ends.len()
            && writes.iter().zip(&self.ends).all(|(w, &end)| w.1 == end);
        if !on_plan {
            self.off_plan += 1;
            self.arrivals.remove(&index);
            return;
        }
        let ts: Vec<u64> = writes.iter().map(|w| w.0).collect();
        match self.arrivals.remove(&index) {
            Some(arrivals) => self.join(index, &arrivals, &ts, hist),
            None if self.writes.len() < MAX_PENDING => {
                self.writes.insert(index, ts);
            }
            None => self.dropped += 1,
        }
    }

    /// Connections whose arrivals still wait for the mock's writes.
    pub fn waiting(&self) -> usize {
        self.arrivals.len()
    }

    fn join(
        &mut self,
        index: u64,
        arrivals: &Arrivals,
        write_ts: &[u64],
        hist: &mut Histogram<u64>,
    ) {
        self.joined += 1;
        if index < self.measure_from {
            return;
        }
        for &(start, ts) in arrivals {
            // The write that completed the piece's first byte.
            let w = self.marks.partition_point(|&m| m <= u64::from(start));
            if let Some(&written) = write_ts.get(w) {
                hist.saturating_record(ts.saturating_sub(written));
            }
        }
    }
}

/// Receives `(connection, [(ts_ns, end)])` for each record of the run.
pub type OnRecord<'f> = dyn FnMut(u64, &[(u64, u64)]) + 'f;

/// Reads a remote mock's request log (`{"requests":[…],…}`) as it streams in, handing each
/// record of this run to `on_record` as `(connection, [(ts_ns, end)])`. Returns the records
/// read and the log's `dropped` count.
pub fn read_log(
    body: &mut dyn Read,
    nonces: &Nonces,
    on_record: &mut OnRecord<'_>,
) -> Result<(u64, u64), String> {
    let reader = std::io::BufReader::with_capacity(64 * 1024, body);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut seen = 0u64;
    let dropped = LogSeed {
        nonces,
        on_record,
        seen: &mut seen,
    }
    .deserialize(&mut de)
    .map_err(|e| format!("the mock's request log is not what this version reads: {e}"))?;
    Ok((seen, dropped))
}

#[derive(Deserialize)]
struct Record {
    nonce: Option<String>,
    #[serde(default)]
    writes: Vec<WriteTs>,
}

/// One write: `[ts_ns, end]` in the log's `view=writes`, or the full record's object.
struct WriteTs {
    ts_ns: u64,
    end: u64,
}

impl<'de> Deserialize<'de> for WriteTs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WriteTs, D::Error> {
        d.deserialize_any(WriteVisitor)
    }
}

struct WriteVisitor;

impl<'de> Visitor<'de> for WriteVisitor {
    type Value = WriteTs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a write: [ts_ns, end] or {ts_ns, end, …}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WriteTs, A::Error> {
        let missing = || serde::de::Error::invalid_length(2, &self);
        let ts_ns = seq.next_element()?.ok_or_else(missing)?;
        let end = seq.next_element()?.ok_or_else(missing)?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(WriteTs { ts_ns, end })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WriteTs, A::Error> {
        let (mut ts_ns, mut end) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "ts_ns" => ts_ns = Some(map.next_value()?),
                "end" => end = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (ts_ns, end) {
            (Some(ts_ns), Some(end)) => Ok(WriteTs { ts_ns, end }),
            (None, _) => Err(serde::de::Error::missing_field("ts_ns")),
            (_, None) => Err(serde::de::Error::missing_field("end")),
        }
    }
}

struct LogSeed<'a, 'b> {
    nonces: &'a Nonces,
    on_record: &'a mut OnRecord<'b>,
    seen: &'a mut u64,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_, '_> {
    /// The log's `dropped` count.
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request log object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut dropped = 0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "requests" => map.next_value_seed(Records {
                    nonces: self.nonces,
                    on_record: &mut *self.on_record,
                    seen: &mut *self.seen,
                })?,
                "dropped" => dropped = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(dropped)
    }
}

struct Records<'a, 'b> {
    nonces: &'a Nonces,
    on_record: &'a mut OnRecord<'b>,
    seen: &'a mut u64,
}

impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of request records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut writes = Vec::new();
        while let Some(record) = seq.next_element::<Record>()? {
            *self.seen += 1;
            let Some(index) = record
                .nonce
                .as_deref()
                .filter(|n| n.len() == self.nonces.nonce(0).len())
                .and_then(|n| self.nonces.find_connection(n.as_bytes()))
            else {
                continue;
            };
            writes.clear();
            writes.extend(record.writes.iter().map(|w| (w.ts_ns, w.end)));
            (self.on_record)(index, &writes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{self, MockSettings};
    use crate::stress::latency::histogram;

    fn plan_and_nonces() -> (UpstreamPlan, Nonces) {
        let nonces = Nonces::with_tag("stest1");
        let plan = pattern::resolve("default", &MockSettings::default(), Some(&nonces.nonce(0)))
            .unwrap()
            .plan;
        (plan, nonces)
    }

    fn writes_of(plan: &UpstreamPlan, t0: u64) -> Vec<(u64, u64)> {
        let mut end = 0;
        plan.writes
            .iter()
            .enumerate()
            .map(|(k, w)| {
                end += w.bytes.len() as u64;
                (t0 + 1_000_000 * k as u64, end)
            })
            .collect()
    }

    #[test]
    fn each_content_event_is_timed_from_the_write_that_carried_it() {
        let (plan, _) = plan_and_nonces();
        let expected = pattern::resolve("default", &MockSettings::default(), Some("x"))
            .unwrap()
            .expected;
        // The client got piece k 250 µs after write k.
        let mut arrivals = Arrivals::new();
        let mut at = 0u32;
        for (k, piece) in plan_pieces(&plan).iter().enumerate() {
            arrivals.push((at, 10_000_000 + 1_000_000 * k as u64 + 250_000));
            at += piece.len() as u32;
        }
        assert_eq!(arrivals.len(), expected.pieces.len());
        for client_first in [true, false] {
            let mut join = RelayJoin::new(&plan);
            let mut hist = histogram();
            if client_first {
                join.client(7, arrivals.clone(), &mut hist);
                assert_eq!(join.waiting(), 1);
                join.upstream(7, &writes_of(&plan, 10_000_000), &mut hist);
            } else {
                join.upstream(7, &writes_of(&plan, 10_000_000), &mut hist);
                join.client(7, arrivals.clone(), &mut hist);
            }
            assert_eq!((join.joined, join.waiting()), (1, 0));
            assert_eq!(hist.len(), arrivals.len() as u64);
            assert!(hist.equivalent(hist.min(), 250_000));
            assert!(hist.equivalent(hist.max(), 250_000));
        }
    }

    fn plan_pieces(plan: &UpstreamPlan) -> Vec<String> {
        // The content pieces, from the plan's own events.
        let body = plan.body();
        let mut events: Vec<crate::sse::Event> = Vec::new();
        crate::sse::Parser::new().feed(&body, &mut events).unwrap();
        events
            .iter()
            .filter_map(|e| {
                let v: serde_json::Value = serde_json::from_slice(&e.data).ok()?;
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    #[test]
    fn records_off_the_plan_are_not_joined() {
        let (plan, _) = plan_and_nonces();
        let mut join = RelayJoin::new(&plan);
        let mut hist = histogram();
        join.client(1, vec![(0, 5)], &mut hist);
        join.upstream(1, &[(1, 3)], &mut hist);
        assert_eq!((join.off_plan, join.joined, hist.len()), (1, 0, 0));
    }

    #[test]
    fn a_streamed_log_yields_this_runs_records() {
        let nonces = Nonces::with_tag("stest1");
        let log = format!(
            r#"{{"capacity":10,"dropped":3,"requests":[
              {{"id":1,"nonce":"{}","headers":[["a","b"]],"writes":[{{"ts_ns":5,"start":0,"end":10}}],"end":{{"kind":"completed"}}}},
              {{"id":2,"nonce":"other-00000001","writes":[]}},
              {{"id":3,"nonce":null,"writes":[]}},
              {{"id":4,"nonce":"{}","writes":[{{"ts_ns":7,"start":0,"end":4}},{{"ts_ns":9,"start":4,"end":8}}]}}
            ]}}"#,
            nonces.nonce(12),
            nonces.nonce(40)
        );
        let mut got = Vec::new();
        let (seen, dropped) = read_log(&mut log.as_bytes(), &nonces, &mut |i, w| {
            got.push((i, w.to_vec()))
        })
        .unwrap();
        assert_eq!((seen, dropped), (4, 3));
        assert_eq!(got, vec![(12, vec![(5, 10)]), (40, vec![(7, 4), (9, 8)])]);
        assert!(read_log(&mut &b"[1,2]"[..], &nonces, &mut |_, _| {}).is_err());
    }

    #[test]
    fn the_writes_view_of_the_log_yields_the_same_records() {
        let nonces = Nonces::with_tag("stest1");
        let log = format!(
            r#"{{"capacity":10,"dropped":0,"requests":[
              {{"id":1,"nonce":"{}","writes":[[5,10]]}},
              {{"id":2,"nonce":null,"writes":[]}},
              {{"id":4,"nonce":"{}","writes":[[7,4],[9,8]]}}
            ]}}"#,
            nonces.nonce(12),
            nonces.nonce(40)
        );
        let mut got = Vec::new();
        let (seen, _) = read_log(&mut log.as_bytes(), &nonces, &mut |i, w| {
            got.push((i, w.to_vec()))
        })
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(got, vec![(12, vec![(5, 10)]), (40, vec![(7, 4), (9, 8)])]);
        let short = r#"{"requests":[{"nonce":null,"writes":[[5]]}]}"#;
        assert!(read_log(&mut short.as_bytes(), &nonces, &mut |_, _| {}).is_err());
    }
}
