//! Which concurrency to try next: grow geometrically from the start until a step breaks an
//! objective, then bisect between the best step that held and the first that broke, until the
//! two are within the resolution.
//!
//! A step the client could not judge (its own limit, not the daemon's) bounds the search from
//! above like a broken one, but the answer it leads to is "at least": nothing above it was
//! measured.

use serde::Serialize;

/// How a step ended, for the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every objective held.
    Held,
    /// The daemon broke an objective.
    Broke,
    /// The client reached a limit of its own before it could judge the daemon.
    ClientBound,
}

/// The search's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The first concurrency tried.
    pub start: u64,
    /// Factor between steps while growing (> 1).
    pub growth: f64,
    /// Stop when the step that broke is within this fraction above the one that held.
    pub resolution: f64,
    /// The most the client can hold (its open-file limit); never tried beyond.
    pub max: u64,
}

/// The search so far.
#[derive(Debug, Clone)]
pub struct Search {
    bounds: Bounds,
    /// The highest concurrency that held.
    held: Option<u64>,
    /// The lowest concurrency that broke or could not be judged, and which.
    above: Option<(u64, Outcome)>,
}

impl Search {
    pub fn new(bounds: Bounds) -> Search {
        Search {
            bounds,
            held: None,
            above: None,
        }
    }

    /// The next concurrency to try, or `None` when the search is over.
    pub fn next(&self) -> Option<u64> {
        let b = self.bounds;
        match (self.held, self.above) {
            (None, None) => Some(b.start.clamp(1, b.max.max(1))),
            (Some(lo), None) if lo >= b.max => None,
            (Some(lo), None) => {
                let grown = ((lo as f64) * b.growth).ceil() as u64;
                Some(grown.max(lo + 1).min(b.max))
            }
            // Nothing held yet: halve down.
            (None, Some((hi, _))) => (hi > 1).then_some(hi / 2),
            (Some(lo), Some((hi, _))) => {
                let close_enough = ((lo as f64) * b.resolution).ceil().max(1.0) as u64;
                (hi - lo > close_enough).then(|| lo + (hi - lo) / 2)
            }
        }
    }

    /// Takes a step's outcome.
    pub fn record(&mut self, concurrency: u64, outcome: Outcome) {
        match outcome {
            Outcome::Held => {
                self.held = Some(self.held.map_or(concurrency, |h| h.max(concurrency)));
            }
            Outcome::Broke | Outcome::ClientBound => {
                if self.above.is_none_or(|(hi, _)| concurrency < hi) {
                    self.above = Some((concurrency, outcome));
                }
            }
        }
        // A noisy step can hold above one that broke: the tighter pair wins.
        if let (Some(lo), Some((hi, _))) = (self.held, self.above)
            && lo >= hi
        {
            self.above = None;
        }
    }

    /// The highest concurrency that held.
    pub fn held(&self) -> Option<u64> {
        self.held
    }

    /// The lowest concurrency above it that broke or could not be judged.
    pub fn above(&self) -> Option<(u64, Outcome)> {
        self.above
    }

    /// The largest concurrency the client can try.
    pub fn max(&self) -> u64 {
        self.bounds.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bounds(start: u64, max: u64) -> Bounds {
        Bounds {
            start,
            growth: 2.0,
            resolution: 0.05,
            max,
        }
    }

    /// Runs the search against a daemon that holds up to `capacity` and a client that can
    /// judge up to `client`.
    fn search(b: Bounds, capacity: u64, client: u64) -> (Search, Vec<u64>) {
        let mut s = Search::new(b);
        let mut tried = Vec::new();
        while let Some(c) = s.next() {
            assert!(!tried.contains(&c), "{c} tried twice: {tried:?}");
            tried.push(c);
            let outcome = if c > client {
                Outcome::ClientBound
            } else if c > capacity {
                Outcome::Broke
            } else {
                Outcome::Held
            };
            s.record(c, outcome);
        }
        (s, tried)
    }

    #[test]
    fn grows_then_bisects() {
        let (s, tried) = search(bounds(100, 1_000_000), 1000, u64::MAX);
        assert_eq!(&tried[..5], [100, 200, 400, 800, 1600]);
        assert_eq!(tried[5..], [1200, 1000, 1100, 1050]);
        assert_eq!(s.held(), Some(1000));
        assert_eq!(s.above(), Some((1050, Outcome::Broke)));
    }

    #[test]
    fn a_capacity_below_the_start_is_found_by_halving() {
        let (s, tried) = search(bounds(100, 1_000_000), 30, u64::MAX);
        assert_eq!(&tried[..3], [100, 50, 25]);
        let (lo, hi) = (s.held().unwrap(), s.above().unwrap().0);
        assert!(lo <= 30 && hi > 30 && hi - lo <= 2, "{lo}..{hi}");
    }

    #[test]
    fn a_daemon_that_fails_one_stream_has_no_capacity() {
        let (s, tried) = search(bounds(8, 1_000_000), 0, u64::MAX);
        assert_eq!(tried, [8, 4, 2, 1]);
        assert_eq!((s.held(), s.above()), (None, Some((1, Outcome::Broke))));
    }

    #[test]
    fn the_client_limit_is_tried_once_and_ends_growth() {
        let (s, tried) = search(bounds(100, 500), 10_000, u64::MAX);
        assert_eq!(tried, [100, 200, 400, 500]);
        assert_eq!((s.held(), s.above()), (Some(500), None));
    }

    #[test]
    fn a_client_bound_step_caps_the_search_as_at_least() {
        let (s, _) = search(bounds(100, 1_000_000), 10_000, 3000);
        let (held, above) = (s.held().unwrap(), s.above().unwrap());
        assert_eq!(above.1, Outcome::ClientBound);
        assert!(held <= 3000 && above.0 > 3000);
    }

    proptest! {
        /// Against a daemon whose steps hold exactly up to its capacity, the search ends with
        /// a step that held and one that broke around the capacity, within the resolution.
        #[test]
        fn brackets_the_capacity_within_the_resolution(
            start in 1u64..5000, capacity in 0u64..200_000, growth in 1.1f64..4.0,
        ) {
            let b = Bounds { start, growth, resolution: 0.05, max: 1_000_000 };
            let (s, tried) = search(b, capacity, u64::MAX);
            // Growing takes log_growth(capacity / start) steps (one stream at a time while
            // ×growth adds less than one), bisecting log2 of the bracket.
            let growing = ((capacity.max(start) as f64) / start as f64).ln() / growth.ln();
            let bound = growing + 1.0 / (growth - 1.0) + 25.0;
            prop_assert!((tried.len() as f64) < bound, "{} steps, bound {}", tried.len(), bound);
            match (s.held(), s.above()) {
                (Some(lo), Some((hi, Outcome::Broke))) => {
                    prop_assert!(lo <= capacity && capacity < hi, "{}..{}", lo, hi);
                    prop_assert!(hi - lo <= ((lo as f64) * 0.05).ceil().max(1.0) as u64);
                }
                (None, Some((1, Outcome::Broke))) => prop_assert_eq!(capacity, 0),
                other => prop_assert!(false, "ended at {:?}", other),
            }
        }
    }
}
