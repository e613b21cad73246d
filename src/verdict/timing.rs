//! Stream timings, in nanoseconds.

use serde::{Deserialize, Serialize};

/// When things happened on one stream. Every field is in ns and `None` when it did not happen
/// or was not measured (a stream with no event has no `first_event_ns`).
///
/// Reference points: `handoff_ns` runs from the start of the connect to the daemon's socket to
/// the completion of the `sendmsg` carrying the fd; `head_ns`, `first_event_ns` and `total_ns`
/// run from that completion to the end of the response head, to the first complete SSE event,
/// and to the end of the stream (close by the daemon, or the client's deadline).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Connect start → `sendmsg` with the fd completed.
    pub handoff_ns: Option<u64>,
    /// Handoff done → response head complete.
    pub head_ns: Option<u64>,
    /// Handoff done → first complete SSE event.
    pub first_event_ns: Option<u64>,
    /// Handoff done → end of stream.
    pub total_ns: Option<u64>,
    /// Time between consecutive events' arrivals.
    pub gaps: Option<Spread>,
    /// Relay latency: client receive time minus the mock's write time of the same content
    /// bytes, one sample per (client event, upstream write) pair that share bytes (see
    /// `crate::transcript::RelayLatency`; same CLOCK_MONOTONIC, same machine).
    pub relay_latency: Option<Spread>,
}

/// Summary of a set of ns samples: count, extremes, mean and nearest-rank percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min_ns: u64,
    /// Median (nearest rank).
    pub p50_ns: u64,
    /// 90th percentile (nearest rank).
    pub p90_ns: u64,
    /// 99th percentile (nearest rank).
    pub p99_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// Arithmetic mean, rounded down.
    pub mean_ns: u64,
}

impl Spread {
    /// Summarises `samples`; `None` when there are none. Percentiles are exact (nearest rank
    /// over the sorted samples), since a stream has at most a few thousand events.
    pub fn of(samples: &[u64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let rank = |p: usize| sorted[(p * n).div_ceil(100).max(1) - 1];
        let sum: u128 = sorted.iter().map(|&s| u128::from(s)).sum();
        Some(Spread {
            count: n as u64,
            min_ns: sorted[0],
            p50_ns: rank(50),
            p90_ns: rank(90),
            p99_ns: rank(99),
            max_ns: sorted[n - 1],
            // The mean of u64 values fits in u64.
            mean_ns: (sum / n as u128) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_spread() {
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn one_sample_is_every_statistic() {
        let s = Spread::of(&[7]).unwrap();
        assert_eq!(
            (s.count, s.min_ns, s.p50_ns, s.p99_ns, s.max_ns, s.mean_ns),
            (1, 7, 7, 7, 7, 7)
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let s = Spread::of(&samples).unwrap();
        assert_eq!(s.min_ns, 1);
        assert_eq!(s.p50_ns, 50);
        assert_eq!(s.p90_ns, 90);
        assert_eq!(s.p99_ns, 99);
        assert_eq!(s.max_ns, 100);
        assert_eq!(s.mean_ns, 50); // 50.5 rounded down
        let s = Spread::of(&[10, 20, 30, 40]).unwrap();
        assert_eq!((s.p50_ns, s.p90_ns, s.p99_ns), (20, 40, 40));
    }

    #[test]
    fn mean_does_not_overflow() {
        let s = Spread::of(&[u64::MAX, u64::MAX]).unwrap();
        assert_eq!(s.mean_ns, u64::MAX);
    }
}
