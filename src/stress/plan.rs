//! The load model: when each connection is scheduled to start, and what its client does.
//!
//! Two models, as wrk2 distinguishes them:
//!
//! - **Closed loop** ([`LoadModel::Closed`]): keep `concurrency` streams open; each one that ends
//!   is replaced at once. The first `concurrency` starts are spread evenly over the ramp-up
//!   (stream `i` at `i × ramp / concurrency`); a replacement is scheduled the instant its
//!   predecessor ended. Latencies count from the actual start: a closed loop measures what a
//!   fixed population of users sees.
//! - **Open loop** ([`LoadModel::Open`]): connections arrive at a fixed rate whatever the daemon
//!   does; during the ramp-up the rate grows linearly from zero. Every latency counts from the
//!   connection's *scheduled* start, so when the daemon (or a concurrency cap, or the client)
//!   falls behind, the wait is charged to the daemon's latencies instead of silently thinning
//!   the load (coordinated omission corrected, as wrk2 does).
//!
//! Which connections are slow readers or abort early is decided by position, spread evenly and
//! deterministically ([`Roles`]), so two runs with the same flags do the same thing.

use std::time::Duration;

/// How connections are started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// Keep `concurrency` streams open, replacing each that ends.
    Closed {
        /// Streams kept open.
        concurrency: usize,
        /// The first `concurrency` starts are spread over this.
        ramp_up: Duration,
    },
    /// Start `rate` connections per second, whatever the daemon does.
    Open {
        /// Arrivals per second once ramped up.
        rate: f64,
        /// The rate grows linearly from zero to `rate` over this.
        ramp_up: Duration,
        /// Streams open at most; an arrival beyond waits (and its wait counts as latency).
        max_open: usize,
    },
}

impl LoadModel {
    /// The most streams open at once.
    pub fn max_open(&self) -> usize {
        match *self {
            LoadModel::Closed { concurrency, .. } => concurrency,
            LoadModel::Open { max_open, .. } => max_open,
        }
    }

    /// Whether latencies count from the scheduled start.
    pub fn is_open(&self) -> bool {
        matches!(self, LoadModel::Open { .. })
    }

    /// Nanoseconds after the run's start at which arrival `i` (from 0) is scheduled, for the
    /// starts fixed in advance: every arrival of an open loop, the first `concurrency` of a
    /// closed one. `None` for a closed loop's replacements, which follow the ends.
    pub fn scheduled_offset_ns(&self, i: u64) -> Option<u64> {
        match *self {
            LoadModel::Closed {
                concurrency,
                ramp_up,
            } => {
                let c = concurrency as u64;
                (i < c).then(|| mul_div(duration_ns(ramp_up), i, c))
            }
            LoadModel::Open { rate, ramp_up, .. } => Some(open_arrival_ns(rate, ramp_up, i)),
        }
    }
}

/// Arrival `i` of an open loop: with `rate` per second reached linearly over `ramp`, the
/// arrivals up to time `t` number `rate·t²/(2·ramp)` during the ramp and
/// `rate·ramp/2 + rate·(t − ramp)` after it; arrival `i` is scheduled when that count reaches
/// `i`.
fn open_arrival_ns(rate: f64, ramp: Duration, i: u64) -> u64 {
    let i = i as f64;
    let ramp_s = ramp.as_secs_f64();
    let during = rate * ramp_s / 2.0;
    let t = if ramp_s > 0.0 && i < during {
        (2.0 * ramp_s * i / rate).sqrt()
    } else {
        ramp_s + (i - during) / rate
    };
    (t * 1e9).round().clamp(0.0, u64::MAX as f64) as u64
}

/// `a × b / c` without overflow (c > 0).
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    (u128::from(a) * u128::from(b) / u128::from(c.max(1))) as u64
}

/// A duration in nanoseconds, saturating.
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What one connection's client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads everything as it comes.
    Normal,
    /// Stops reading after the first bytes for a while, with a small receive buffer, on a large
    /// answer: a daemon that blocks on one client's socket shows it on every other stream.
    Slow,
    /// Closes the connection after this many events (a browser that navigates away).
    Abort {
        /// Events received before the client closes.
        after_events: u32,
    },
}

/// Picks each connection's [`Role`] from the fractions asked for.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Fractions in millionths, so that the spreading is exact.
    slow_ppm: u64,
    abort_ppm: u64,
    /// Events a complete stream has; aborts happen before the last.
    events: u32,
}

const PPM: u64 = 1_000_000;

impl Roles {
    /// `slow` and `abort` are fractions in `[0, 1]` (to a millionth); `events` is how many
    /// events a complete stream carries (aborts are placed between the first and the last).
    pub fn new(slow: f64, abort: f64, events: u32) -> Roles {
        let ppm = |f: f64| (f.clamp(0.0, 1.0) * PPM as f64).round() as u64;
        Roles {
            slow_ppm: ppm(slow),
            abort_ppm: ppm(abort),
            events,
        }
    }

    /// The role of connection `i`. Slow readers come first (connection 0 is one, so that it is
    /// in place while the others stream) and then every `1/slow` connections; aborts are spread
    /// the same way from half a period on. A connection picked for both is a slow reader.
    pub fn role(&self, i: u64) -> Role {
        if picked(self.slow_ppm, i, PPM - self.slow_ppm) {
            return Role::Slow;
        }
        if picked(self.abort_ppm, i, PPM / 2) {
            // Somewhere from the first event to the one before the last, varied by position.
            let span = u64::from(self.events.saturating_sub(1).max(1));
            let after_events = 1 + (mix(i) % span) as u32;
            return Role::Abort { after_events };
        }
        Role::Normal
    }
}

/// Whether `i` is one of the evenly spread fraction `ppm` (Bresenham-style, exact in integers),
/// offset by `phase` millionths of a period.
fn picked(ppm: u64, i: u64, phase: u64) -> bool {
    if ppm == 0 {
        return false;
    }
    let at = |k: u64| (u128::from(k) * u128::from(ppm) + u128::from(phase)) / u128::from(PPM);
    at(i + 1) > at(i)
}

/// SplitMix64: a well-mixed hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_spreads_the_first_starts_over_the_ramp() {
        let m = LoadModel::Closed {
            concurrency: 4,
            ramp_up: Duration::from_millis(100),
        };
        let at: Vec<_> = (0..5).map(|i| m.scheduled_offset_ns(i)).collect();
        assert_eq!(
            at,
            [
                Some(0),
                Some(25_000_000),
                Some(50_000_000),
                Some(75_000_000),
                None
            ]
        );
    }

    #[test]
    fn open_loop_arrives_at_the_rate_after_a_linear_ramp() {
        let flat = LoadModel::Open {
            rate: 1000.0,
            ramp_up: Duration::ZERO,
            max_open: 10,
        };
        assert_eq!(flat.scheduled_offset_ns(0), Some(0));
        assert_eq!(flat.scheduled_offset_ns(5), Some(5_000_000));
        let ramped = LoadModel::Open {
            rate: 1000.0,
            ramp_up: Duration::from_secs(2),
            max_open: 10,
        };
        // 1000 arrivals during the 2 s ramp (half the flat rate's), the 1000th at its end.
        assert_eq!(ramped.scheduled_offset_ns(1000), Some(2_000_000_000));
        assert_eq!(ramped.scheduled_offset_ns(250), Some(1_000_000_000));
        assert_eq!(ramped.scheduled_offset_ns(1500), Some(2_500_000_000));
        let times: Vec<u64> = (0..2000)
            .map(|i| ramped.scheduled_offset_ns(i).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn roles_are_spread_exactly() {
        let roles = Roles::new(0.1, 0.25, 18);
        let all: Vec<Role> = (0..1000).map(|i| roles.role(i)).collect();
        let slow: Vec<u64> = (0..1000)
            .filter(|&i| all[i as usize] == Role::Slow)
            .collect();
        let abort: Vec<u32> = all
            .iter()
            .filter_map(|r| match r {
                Role::Abort { after_events } => Some(*after_events),
                _ => None,
            })
            .collect();
        // Every tenth from connection 0; aborts at 1 mod 4, never a multiple of ten.
        assert_eq!(slow, (0..100).map(|k| 10 * k).collect::<Vec<_>>());
        assert_eq!(abort.len(), 250);
        assert!(abort.iter().all(|&k| (1..18).contains(&k)));
        assert_eq!(Roles::new(0.0, 0.0, 18).role(7), Role::Normal);
        assert!((0..10).all(|i| Roles::new(1.0, 0.0, 18).role(i) == Role::Slow));
        // One slow reader in 300: connection 0 alone.
        let one = Roles::new(1.0 / 300.0, 0.0, 18);
        let picked: Vec<u64> = (0..300).filter(|&i| one.role(i) == Role::Slow).collect();
        assert_eq!(picked, [0]);
        // Overlaps go to the slow reader.
        let both = Roles::new(0.5, 0.5, 18);
        let n_slow = (0..100).filter(|&i| both.role(i) == Role::Slow).count();
        assert_eq!(n_slow, 50);
    }
}
