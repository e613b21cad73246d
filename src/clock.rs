//! The one clock every recorded timestamp comes from.
//!
//! The client, the mock API and the reference daemon all stamp with CLOCK_MONOTONIC in
//! nanoseconds, so a client receive time and a mock write time can be subtracted directly
//! (they run on the same machine, usually in the same process).

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // CLOCK_MONOTONIC is never negative and does not reach u64::MAX ns (584 years).
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_ns_never_goes_backwards() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a);
    }
}
