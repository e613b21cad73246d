//! Watching the daemon through a stress run: when it dies, the run stops starting streams, the
//! report names the death first, and the streams it broke are counted as its doing, not as
//! "closed with zero bytes" each.
//!
//! A dying daemon closes its files a moment before its exit can be collected, so a stream cut
//! by the death can end while the daemon still looks alive. Ends a death can cause are held
//! (counts and a few examples, like any tally) until a check at least [`SETTLE_NS`] later: a daemon
//! still alive then makes them its own failures; a dead one makes them the death's.

use super::integrity::{Example, Integrity, Outcome};
use crate::scenario::{DaemonProcess, process_alive};
use crate::verdict::DaemonDeath;

/// How long an end a death could cause waits for the daemon to be seen alive after it.
const SETTLE_NS: u64 = 150_000_000;

/// The daemon's liveness and the ends waiting on it.
pub(super) struct DeathWatch {
    /// `--daemon-pid`, watched when streamcheck did not start the daemon.
    pid: Option<u32>,
    death: Option<DaemonDeath>,
    /// Ends a death can cause, since `held_since`.
    held: Integrity,
    held_since: Option<u64>,
}

impl DeathWatch {
    pub(super) fn new(pid: Option<u32>) -> DeathWatch {
        DeathWatch {
            pid,
            death: None,
            held: Integrity::default(),
            held_since: None,
        }
    }

    /// The death, once seen.
    pub(super) fn death(&self) -> Option<&DaemonDeath> {
        self.death.as_ref()
    }

    /// Looks at the daemon (the process streamcheck started, else `--daemon-pid`); returns true
    /// the first time it is found dead. `started` streams had started by then.
    pub(super) fn check(&mut self, started: Option<&mut DaemonProcess>, streams: u64) -> bool {
        if self.death.is_some() {
            return false;
        }
        let death = match (started, self.pid) {
            (Some(d), _) => d.death(),
            (None, Some(pid)) => (!process_alive(pid)).then(|| DaemonDeath::of_pid(pid)),
            (None, None) => None,
        };
        self.death = death.map(|d| d.during(format!("after {streams} streams had started")));
        self.death.is_some()
    }

    /// Counts one judged stream that ended at `ts`.
    pub(super) fn add(
        &mut self,
        integrity: &mut Integrity,
        outcome: Outcome,
        ts: u64,
        example: impl FnOnce() -> Example,
    ) {
        if !Integrity::death_can_cause(outcome) {
            return integrity.add(outcome, example);
        }
        if self.death.is_some() {
            return integrity.add(Outcome::DaemonDied, || {
                let mut e = example();
                e.detail = format!("{}: {}", outcome.name(), e.detail);
                e
            });
        }
        self.held_since.get_or_insert(ts);
        self.held.add(outcome, example);
    }

    /// Judges the held ends once they are old enough (`now`), or all of them with `all`.
    pub(super) fn settle(&mut self, integrity: &mut Integrity, now: u64, all: bool) {
        let Some(since) = self.held_since else {
            return;
        };
        if !all && self.death.is_none() && now.saturating_sub(since) < SETTLE_NS {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.held_since = None;
        match self.death {
            Some(_) => integrity.merge_as(Outcome::DaemonDied, held),
            None => integrity.merge(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Example {
        Example {
            connection: 3,
            nonce: "n".to_owned(),
            bytes: 0,
            detail: "the daemon closed the connection without writing anything".to_owned(),
        }
    }

    #[test]
    fn held_ends_are_the_daemons_own_once_it_is_seen_alive_later() {
        let (mut w, mut i) = (DeathWatch::new(None), Integrity::default());
        w.add(&mut i, Outcome::ZeroByteClose, 1_000, example);
        w.add(&mut i, Outcome::Timeout, 1_000, example);
        assert_eq!(
            i.get(Outcome::Timeout).count,
            1,
            "a death cannot cause a timeout"
        );
        w.settle(&mut i, 1_000 + SETTLE_NS / 2, false);
        assert_eq!(i.get(Outcome::ZeroByteClose).count, 0, "still held");
        w.settle(&mut i, 1_000 + SETTLE_NS, false);
        assert_eq!(i.get(Outcome::ZeroByteClose).count, 1);
    }

    #[test]
    fn held_ends_and_later_ones_are_the_deaths_once_it_is_dead() {
        let (mut w, mut i) = (DeathWatch::new(None), Integrity::default());
        w.add(&mut i, Outcome::ZeroByteClose, 1_000, example);
        w.death = Some(DaemonDeath::of_pid(9));
        w.settle(&mut i, 1_001, false);
        w.add(&mut i, Outcome::Truncated, 2_000, example);
        let died = i.get(Outcome::DaemonDied);
        assert_eq!(died.count, 2);
        assert_eq!(i.get(Outcome::ZeroByteClose).count, 0);
        assert!(
            died.examples[0]
                .detail
                .starts_with("closed with zero bytes: the daemon closed"),
            "{}",
            died.examples[0].detail
        );
    }
}
