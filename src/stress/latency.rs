//! Latency histograms (HdrHistogram, nanoseconds, three significant digits from 1 µs to an
//! hour), and their summaries for the reports.
//!
//! - `handoff`: from the stream's origin to the completed `sendmsg` (the daemon owns the client);
//! - `time_to_head`: origin to the read that completed the response head;
//! - `first_event`: origin to the read that completed the first event;
//! - `inter_event_gap`: between consecutive events of one stream;
//! - `relay`: per content event, from the mock's write of its oldest byte to the client's read
//!   of the event (both CLOCK_MONOTONIC, so comparable across processes);
//! - `total`: origin to the daemon's close, completed streams only;
//! - `schedule_lag`: how late each stream started against its schedule (the client's own
//!   precision; a ramp-up is on schedule when its maximum is small).
//!
//! The origin is the scheduled start in an open loop (wrk2's correction for coordinated
//! omission: a stalled daemon cannot hide behind a client that stopped sending), and the actual
//! start in a closed loop. Slow readers are left out of every histogram but `schedule_lag`:
//! their delays are made by the client.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::Serialize;

/// Lowest value told apart from zero: 1 µs.
const LOW_NS: u64 = 1_000;
/// Highest trackable value: one hour.
const HIGH_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// A histogram of nanoseconds with the module's bounds.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the crate's rules (low ≥ 1, high ≥ 2·low, sigfig ≤ 5).
    Histogram::new_with_bounds(LOW_NS, HIGH_NS, SIGFIG).unwrap_or_else(|_| {
        Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

/// Every histogram of a run.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Origin → `sendmsg` done.
    pub handoff: Histogram<u64>,
    /// Origin → response head.
    pub time_to_head: Histogram<u64>,
    /// Origin → first event.
    pub first_event: Histogram<u64>,
    /// Between consecutive events.
    pub inter_event_gap: Histogram<u64>,
    /// Mock write → client read, per content event.
    pub relay: Histogram<u64>,
    /// Origin → close, completed streams.
    pub total: Histogram<u64>,
    /// Actual start − scheduled start.
    pub schedule_lag: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            handoff: histogram(),
            time_to_head: histogram(),
            first_event: histogram(),
            inter_event_gap: histogram(),
            relay: histogram(),
            total: histogram(),
            schedule_lag: histogram(),
        }
    }
}

impl Latencies {
    /// Each histogram with its name, in report order.
    pub fn named(&self) -> [(&'static str, &Histogram<u64>); 7] {
        [
            ("handoff", &self.handoff),
            ("time_to_head", &self.time_to_head),
            ("first_event", &self.first_event),
            ("inter_event_gap", &self.inter_event_gap),
            ("relay", &self.relay),
            ("total", &self.total),
            ("schedule_lag", &self.schedule_lag),
        ]
    }

    /// The summaries for the report.
    pub fn summaries(&self) -> Vec<Summary> {
        self.named()
            .iter()
            .map(|(name, h)| Summary::of(name, h))
            .collect()
    }
}

/// Percentiles shown in the JSON report's spectrum (the human report shows p50, p90, p99,
/// p99.9 and max).
const SPECTRUM: [f64; 12] = [
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 99.999, 100.0,
];

/// One histogram, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Its name.
    pub name: &'static str,
    /// Samples recorded.
    pub count: u64,
    /// Smallest, in ns (0 when empty).
    pub min_ns: u64,
    /// Mean, in ns.
    pub mean_ns: f64,
    /// Standard deviation, in ns.
    pub stdev_ns: f64,
    /// p50.
    pub p50_ns: u64,
    /// p90.
    pub p90_ns: u64,
    /// p99.
    pub p99_ns: u64,
    /// p99.9.
    pub p999_ns: u64,
    /// Largest, in ns.
    pub max_ns: u64,
    /// `[percentile, value_ns]` pairs from p0 to p100.
    pub percentiles: Vec<(f64, u64)>,
    /// The whole histogram, HdrHistogram V2 with deflate, base64: readable by every
    /// HdrHistogram implementation (e.g. `HistogramLogReader`), for plotting the full spectrum.
    pub hdr_base64: String,
}

impl Summary {
    /// Summarises `h`.
    pub fn of(name: &'static str, h: &Histogram<u64>) -> Summary {
        let at = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_percentile(p)
            }
        };
        let mut encoded = Vec::new();
        let hdr_base64 = match V2DeflateSerializer::new().serialize(h, &mut encoded) {
            Ok(_) => BASE64_STANDARD.encode(&encoded),
            Err(_) => String::new(),
        };
        Summary {
            name,
            count: h.len(),
            min_ns: if h.is_empty() { 0 } else { h.min() },
            mean_ns: if h.is_empty() { 0.0 } else { h.mean() },
            stdev_ns: if h.is_empty() { 0.0 } else { h.stdev() },
            p50_ns: at(50.0),
            p90_ns: at(90.0),
            p99_ns: at(99.0),
            p999_ns: at(99.9),
            max_ns: if h.is_empty() { 0 } else { h.max() },
            percentiles: SPECTRUM.iter().map(|&p| (p, at(p))).collect(),
            hdr_base64,
        }
    }

    /// The whole histogram again, decoded from `hdr_base64` (`None` if that does not decode).
    pub fn histogram(&self) -> Option<Histogram<u64>> {
        use hdrhistogram::serialization::Deserializer;
        let bytes = BASE64_STANDARD.decode(&self.hdr_base64).ok()?;
        Deserializer::new().deserialize(&mut &bytes[..]).ok()
    }
}

/// A duration in ns for people: `850 µs`, `12.3 ms`, `1.24 s`.
pub fn human_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        let ms = ns / 1e6;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn summaries_carry_percentiles_and_a_readable_histogram() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.saturating_record(v * 1_000_000);
        }
        let s = Summary::of("x", &h);
        assert_eq!(s.count, 1000);
        assert!(h.equivalent(s.p50_ns, 500_000_000));
        assert!(h.equivalent(s.p99_ns, 990_000_000));
        assert!(h.equivalent(s.max_ns, 1_000_000_000));
        assert_eq!(s.percentiles.len(), SPECTRUM.len());
        // The encoded histogram decodes to the same counts.
        let bytes = BASE64_STANDARD.decode(&s.hdr_base64).unwrap();
        let back: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
        assert_eq!(back, h);
        assert_eq!(s.histogram(), Some(h));
        let empty = Summary::of("e", &histogram());
        assert_eq!((empty.count, empty.max_ns, empty.p50_ns), (0, 0, 0));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_ns(850), "850 ns");
        assert_eq!(human_ns(850_000), "850 µs");
        assert_eq!(human_ns(1_234_000), "1.23 ms");
        assert_eq!(human_ns(12_340_000), "12.3 ms");
        assert_eq!(human_ns(1_240_000_000), "1.24 s");
    }
}
