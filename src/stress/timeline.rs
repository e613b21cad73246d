//! The run over time: streams open, events received, and the daemon's fds and RSS, read every
//! [`SAMPLE_EVERY`] from a thread of its own, so the io_uring loop only publishes two counters
//! per turn ([`Gauges`]) and never waits on `/proc`.
//!
//! At most [`MAX_SAMPLES`] samples are kept: when a run outgrows them, neighbouring samples
//! are merged and the interval doubles (a ten-minute run keeps 100 ms → 1.6 s samples). A
//! merged sample keeps the largest gauge readings of its interval (so a peak of fds is never
//! averaged away) and the sum of its events.
//!
//! A reading of the daemon (`/proc/PID/fd`'s size, which is the fd count on Linux 6.2 and
//! later, `/proc/PID/statm` and `/proc/PID/stat`) took 11 µs of CPU at 19,900 fds. Older
//! kernels need the fd directory listed (see [`super::resources`]): 17 ms at 19,900 fds. So
//! the sampler waits at least [`COST_FACTOR`] times a reading's CPU before the next one, which
//! keeps it under 1% of a core either way (a reading every 1.7 s in the second case).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::resources::{self, ProcSample};
use crate::clock::monotonic_ns;

/// How often the sampler reads the counters and the daemon.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Samples kept at most; a longer run merges neighbours.
pub const MAX_SAMPLES: usize = 512;

/// The sampler waits at least this many times a reading's CPU time before the next.
pub const COST_FACTOR: u64 = 100;

/// What the io_uring loop publishes for the sampler: two relaxed stores per loop turn.
#[derive(Debug, Default)]
pub struct Gauges {
    open: AtomicU64,
    events: AtomicU64,
}

impl Gauges {
    /// Streams open now, and events received since the run started.
    pub fn publish(&self, open: usize, events: u64) {
        self.open.store(open as u64, Ordering::Relaxed);
        self.events.store(events, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (
            self.open.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        )
    }
}

/// One interval of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// The interval's end: its last reading, ms after the run started.
    pub t_ms: u64,
    /// The most streams open at a reading in the interval.
    pub open_streams: u64,
    /// Events received in the interval (since the previous sample's end).
    pub events: u64,
    /// The daemon's most open fds at a reading in the interval (`None` without its PID, or
    /// once it could not be read).
    pub daemon_fds: Option<u64>,
    /// The daemon's largest RSS at a reading in the interval, bytes.
    pub daemon_rss_bytes: Option<u64>,
}

impl Sample {
    /// `self` followed by `later`, as one sample.
    fn merged(self, later: Sample) -> Sample {
        Sample {
            t_ms: later.t_ms,
            open_streams: self.open_streams.max(later.open_streams),
            events: self.events + later.events,
            daemon_fds: self.daemon_fds.max(later.daemon_fds),
            daemon_rss_bytes: self.daemon_rss_bytes.max(later.daemon_rss_bytes),
        }
    }
}

/// The samples of a run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The interval a sample covers, ms: [`SAMPLE_EVERY`], doubled each time the samples
    /// were merged.
    pub interval_ms: u64,
    /// When the last stream ended, ms after the start; the samples after it show the daemon
    /// settling.
    pub run_end_ms: Option<u64>,
    /// Oldest first, at most [`MAX_SAMPLES`].
    pub samples: Vec<Sample>,
}

/// Builds a [`Timeline`] from readings, merging samples to stay within `max`.
#[derive(Debug)]
pub struct Recorder {
    timeline: Timeline,
    max: usize,
    /// Events received at the previous reading (the counter is cumulative).
    events_seen: u64,
}

impl Recorder {
    /// An empty timeline of samples `interval` apart, keeping at most `max` (at least 2).
    pub fn new(interval: Duration, max: usize) -> Recorder {
        Recorder {
            timeline: Timeline {
                interval_ms: (interval.as_millis() as u64).max(1),
                run_end_ms: None,
                samples: Vec::new(),
            },
            max: max.max(2),
            events_seen: 0,
        }
    }

    /// One reading at `t_ms` after the start: `open` streams, `events_total` received since
    /// the start, the daemon's `(fds, rss_bytes)` if read.
    pub fn record(&mut self, t_ms: u64, open: u64, events_total: u64, daemon: Option<(u64, u64)>) {
        let sample = Sample {
            t_ms,
            open_streams: open,
            events: events_total.saturating_sub(self.events_seen),
            daemon_fds: daemon.map(|d| d.0),
            daemon_rss_bytes: daemon.map(|d| d.1),
        };
        self.events_seen = self.events_seen.max(events_total);
        let interval = self.timeline.interval_ms;
        let samples = &mut self.timeline.samples;
        // A late reading may share its interval with the previous one: merge, as a coarser
        // interval would.
        match samples.last_mut() {
            Some(last) if last.t_ms / interval == t_ms / interval => *last = last.merged(sample),
            _ => samples.push(sample),
        }
        while self.timeline.samples.len() > self.max {
            self.coarsen();
        }
    }

    /// Doubles the interval and merges the samples that now share one.
    fn coarsen(&mut self) {
        let interval = self.timeline.interval_ms * 2;
        let mut merged: Vec<Sample> = Vec::with_capacity(self.timeline.samples.len() / 2 + 1);
        for s in self.timeline.samples.drain(..) {
            match merged.last_mut() {
                Some(last) if last.t_ms / interval == s.t_ms / interval => *last = last.merged(s),
                _ => merged.push(s),
            }
        }
        self.timeline.samples = merged;
        self.timeline.interval_ms = interval;
    }

    /// Notes that the last stream ended at `t_ms`.
    pub fn mark_run_end(&mut self, t_ms: u64) {
        self.timeline.run_end_ms.get_or_insert(t_ms);
    }

    /// The timeline so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

/// What the sampler thread shares with the loop.
#[derive(Debug)]
struct Shared {
    recorder: Recorder,
    /// The daemon being read; `None` once it could not be.
    pid: Option<u32>,
    /// The daemon's most fds and RSS over the readings, and its CPU at the latest.
    peak: Option<ProcSample>,
    /// Why the daemon could not be read.
    error: Option<String>,
}

/// Takes readings: of the gauges, and of the daemon while it can be read.
#[derive(Clone)]
struct Probe {
    gauges: Arc<Gauges>,
    shared: Arc<Mutex<Shared>>,
    t0: u64,
}

impl Probe {
    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One reading, recorded at the time it was taken.
    fn read(&self) {
        let pid = self.shared().pid;
        // `/proc` is read without the lock held.
        let daemon = pid.map(resources::sample);
        let (open, events) = self.gauges.read();
        let t_ms = monotonic_ns().saturating_sub(self.t0) / 1_000_000;
        let mut shared = self.shared();
        let reading = match daemon {
            Some(Ok(s)) => {
                let peak = shared.peak.get_or_insert(s);
                peak.fds = peak.fds.max(s.fds);
                peak.rss_bytes = peak.rss_bytes.max(s.rss_bytes);
                peak.cpu_ns = s.cpu_ns;
                Some((s.fds, s.rss_bytes))
            }
            Some(Err(e)) => {
                shared.error = Some(e);
                shared.pid = None;
                None
            }
            None => None,
        };
        shared.recorder.record(t_ms, open, events, reading);
    }

    /// Reads every [`SAMPLE_EVERY`] from `t0` on, until `stopped` is dropped.
    fn read_until_stopped(&self, stopped: &mpsc::Receiver<()>) {
        let every = SAMPLE_EVERY.as_nanos() as u64;
        let mut next = self.t0 + every;
        loop {
            let wait = next.saturating_sub(monotonic_ns());
            match stopped.recv_timeout(Duration::from_nanos(wait)) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let cpu = resources::thread_cpu_ns();
            self.read();
            let cost = resources::thread_cpu_ns().saturating_sub(cpu);
            next = next_reading(next, monotonic_ns(), cost);
        }
    }
}

/// When the reading after one due at `due` is, taken at `now` at a CPU cost of `cost_ns`: one
/// interval on, but not sooner than [`COST_FACTOR`] times the cost, and with what a stopped
/// process missed skipped rather than caught up.
fn next_reading(due: u64, now: u64, cost_ns: u64) -> u64 {
    let every = SAMPLE_EVERY.as_nanos() as u64;
    let next = (due + every).max(now + COST_FACTOR * cost_ns);
    if next <= now { now + every } else { next }
}

/// The thread that reads the run's counters and the daemon every [`SAMPLE_EVERY`].
pub struct Sampler {
    probe: Probe,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `gauges`, and the daemon `pid` if known; times count from `t0`
    /// (CLOCK_MONOTONIC ns). Without a thread (none could be started) the timeline has only
    /// the reading [`Sampler::finish`] takes.
    pub fn start(gauges: Arc<Gauges>, pid: Option<u32>, t0: u64) -> Sampler {
        let probe = Probe {
            gauges,
            shared: Arc::new(Mutex::new(Shared {
                recorder: Recorder::new(SAMPLE_EVERY, MAX_SAMPLES),
                pid,
                peak: None,
                error: None,
            })),
            t0,
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let reader = probe.clone();
        let thread = std::thread::Builder::new()
            .name("stress-sampler".to_owned())
            .spawn(move || reader.read_until_stopped(&stopped))
            .ok();
        Sampler {
            probe,
            stop: Some(stop),
            thread,
        }
    }

    /// Marks the end of the last stream, and returns the daemon's peak fds and RSS over the
    /// run (with its CPU at the latest reading) and the error that stopped its sampling.
    pub fn run_ended(&self) -> (Option<ProcSample>, Option<String>) {
        let t_ms = monotonic_ns().saturating_sub(self.probe.t0) / 1_000_000;
        let mut shared = self.probe.shared();
        shared.recorder.mark_run_end(t_ms);
        (shared.peak, shared.error.clone())
    }

    /// Stops the thread, takes a last reading (so every event published is counted), and
    /// returns the timeline.
    pub fn finish(mut self) -> Timeline {
        self.stop_thread();
        self.probe.read();
        self.probe.shared().recorder.timeline().clone()
    }

    fn stop_thread(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_per_interval_and_gauges_per_reading() {
        let mut r = Recorder::new(Duration::from_millis(100), 16);
        r.record(100, 5, 40, Some((12, 4096)));
        r.record(200, 7, 100, Some((14, 8192)));
        r.record(300, 2, 100, None);
        let t = r.timeline();
        assert_eq!(t.interval_ms, 100);
        let events: Vec<u64> = t.samples.iter().map(|s| s.events).collect();
        assert_eq!(events, [40, 60, 0]);
        assert_eq!(t.samples[1].open_streams, 7);
        assert_eq!(t.samples[1].daemon_fds, Some(14));
        assert_eq!(t.samples[2].daemon_rss_bytes, None);
    }

    #[test]
    fn a_long_run_stays_within_the_bound_and_keeps_peaks_and_totals() {
        let max = 64;
        let mut r = Recorder::new(Duration::from_millis(100), max);
        let mut events = 0;
        for i in 1..=10_000u64 {
            events += 3;
            // One spike of fds and of open streams, at one reading only.
            let fds = if i == 7_777 { 9_000 } else { 100 };
            r.record(i * 100, i % 50, events, Some((fds, i)));
        }
        let t = r.timeline();
        assert!(t.samples.len() <= max, "{} samples", t.samples.len());
        assert!(t.samples.len() > max / 2 - 1, "{} samples", t.samples.len());
        // 1,000 s in at most 64 samples: 100 ms doubled to 25.6 s.
        assert_eq!(t.interval_ms, 25_600);
        assert_eq!(t.samples.iter().map(|s| s.events).sum::<u64>(), events);
        assert_eq!(
            t.samples.iter().filter_map(|s| s.daemon_fds).max(),
            Some(9_000)
        );
        assert_eq!(t.samples.iter().map(|s| s.open_streams).max(), Some(49));
        assert_eq!(t.samples.last().map(|s| s.t_ms), Some(1_000_000));
        assert!(t.samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }

    #[test]
    fn readings_keep_their_schedule_unless_they_cost_too_much() {
        let every = SAMPLE_EVERY.as_nanos() as u64;
        // Cheap readings (11 µs): on schedule, whenever each was taken.
        assert_eq!(next_reading(every, every + 3_000_000, 11_000), 2 * every);
        // 17 ms of CPU each: 1.7 s apart.
        assert_eq!(
            next_reading(every, every + 20_000_000, 17_000_000),
            every + 20_000_000 + 1_700_000_000
        );
        // Woken 10 intervals late (a stopped process): the next one is an interval from now.
        assert_eq!(next_reading(every, 11 * every, 0), 12 * every);
    }

    #[test]
    fn a_late_reading_joins_the_interval_it_falls_in() {
        let mut r = Recorder::new(Duration::from_millis(100), 16);
        r.record(110, 1, 10, None);
        r.record(190, 3, 15, None);
        r.record(210, 2, 20, None);
        let t = r.timeline();
        assert_eq!(t.samples.len(), 2);
        assert_eq!((t.samples[0].t_ms, t.samples[0].open_streams), (190, 3));
        assert_eq!(t.samples[0].events, 15);
    }

    #[test]
    fn the_sampler_reads_the_gauges_and_a_process_until_finished() {
        let gauges = Arc::new(Gauges::default());
        let t0 = monotonic_ns();
        let sampler = Sampler::start(Arc::clone(&gauges), Some(std::process::id()), t0);
        gauges.publish(3, 42);
        // Three readings at 100 ms; a generous bound so that a slow machine still passes.
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while sampler.probe.shared().recorder.timeline().samples.len() < 3 {
            assert!(std::time::Instant::now() < until, "no samples");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (peak, error) = sampler.run_ended();
        assert_eq!(error, None);
        assert!(peak.is_some_and(|p| p.fds >= 3 && p.rss_bytes > 0));
        // Events published after the last reading of the thread are in the final one.
        gauges.publish(0, 50);
        let t = sampler.finish();
        assert!(t.run_end_ms.is_some());
        assert_eq!(t.samples.iter().map(|s| s.events).sum::<u64>(), 50);
        assert!(t.samples.iter().any(|s| s.open_streams == 3));
        assert!(t.samples.iter().all(|s| s.daemon_fds.is_some()));
    }

    #[test]
    fn a_daemon_that_cannot_be_read_is_reported_once_and_left_alone() {
        let gauges = Arc::new(Gauges::default());
        let sampler = Sampler::start(gauges, Some(u32::MAX), monotonic_ns());
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while sampler.run_ended().1.is_none() {
            assert!(std::time::Instant::now() < until, "no error");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (peak, error) = sampler.run_ended();
        assert_eq!(peak, None);
        assert!(error.is_some_and(|e| e.contains("/proc/")));
        let t = sampler.finish();
        assert!(t.samples.iter().all(|s| s.daemon_fds.is_none()));
    }
}
