//! One step of the search: `stress` at one concurrency for the warm-up and the hold, judged
//! against the objectives, with what bounded it.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::CapacityConfig;
use super::search::Outcome;
use super::slo::{Measured, Metric, human_bytes};
use crate::stress::{
    self, DaemonSpec, LoadModel, StressConfig, StressError, StressReport, Upstream,
};

/// The client's io_uring loop busier than this on a broken step: the client, not the daemon,
/// may have been the bottleneck.
const LOOP_SATURATED: f64 = 0.9;
/// All CPUs busier than this on a broken step, with streamcheck (or other processes) using as
/// much as the daemon: the daemon was starved, not at its own limit.
const MACHINE_SATURATED: f64 = 0.95;

/// What one step found.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Streams held open.
    pub concurrency: u64,
    pub outcome: Outcome,
    /// Each objective's figure.
    pub slos: Vec<Measured>,
    /// Why the step broke, in words: the first objective missed, or the daemon's death.
    pub broke_because: Option<String>,
    /// Why the client could not judge the daemon (the step's `outcome` is then `client_bound`).
    pub client_bound: Option<String>,
    /// The most streams open at once.
    pub peak_open: u64,
    /// Streams judged, and how many failed.
    pub streams: u64,
    pub failed: u64,
    /// The daemon's peak RSS and fds, and its CPU over the step (`None` without its PID).
    pub daemon_rss_bytes: Option<u64>,
    pub daemon_fds: Option<u64>,
    pub daemon_cpu_seconds: Option<f64>,
    /// streamcheck's own CPU over the step (with an embedded mock, the mock's too).
    pub client_cpu_seconds: f64,
    /// Fraction of the step the client's io_uring loop thread was on a CPU.
    pub client_loop_busy: f64,
    /// Fraction of all CPUs' time that was busy during the step (every process).
    pub machine_busy: Option<f64>,
    /// CPU seconds every process on the machine used during the step.
    pub machine_cpu_seconds: Option<f64>,
    /// Wall time of the step, daemon start to settle.
    pub seconds: f64,
    /// The whole stress report of the step: every histogram, for plots.
    pub stress: StressReport,
}

/// Runs one step. `Ok(None)`: interrupted by a signal before it could be judged.
pub fn run(
    config: &CapacityConfig,
    daemon: &DaemonSpec,
    upstream: &Upstream,
    concurrency: u64,
    stop: &AtomicBool,
) -> Result<Option<Step>, StressError> {
    let stress_config = StressConfig {
        connections: None,
        load: LoadModel::Closed {
            concurrency: usize::try_from(concurrency).unwrap_or(usize::MAX),
            ramp_up: config.warmup,
        },
        duration: Some(config.warmup + config.hold),
        timeout: config.timeout,
        settle: config.settle,
        pair: config.pair,
        socket_type: config.socket_type,
        warmup: config.warmup,
        ..StressConfig::new(daemon.clone(), upstream.clone(), 0, 1)
    };
    let began = Instant::now();
    let cpus_before = CpuTimes::read();
    let report = stress::run(&stress_config, stop)?;
    let machine = CpuTimes::read()
        .zip(cpus_before)
        .and_then(|(after, before)| after.since(&before));
    if report.run.interrupted {
        return Ok(None);
    }
    Ok(Some(judge(
        config,
        concurrency,
        report,
        machine,
        began.elapsed(),
    )))
}

fn judge(
    config: &CapacityConfig,
    concurrency: u64,
    report: StressReport,
    machine: Option<MachineCpu>,
    took: Duration,
) -> Step {
    let slos: Vec<Measured> = config.slos.iter().map(|s| s.measure(&report)).collect();
    let daemon = report.daemon.as_ref();
    let client_cpu = report.client.cpu_seconds_process_run;
    let loop_busy = report.client.ring_thread_busy_fraction;
    let daemon_cpu = daemon.map(|d| d.cpu_seconds);

    let broke_because = match (&report.daemon_death, slos.iter().find(|m| !m.met)) {
        (Some(death), _) => Some(format!("the daemon {}", death.how)),
        (None, Some(m)) => match report
            .limits
            .daemon_fd_limit
            .filter(|_| report.limits.daemon_fd_limit_reached)
        {
            // Name the daemon's own limit: raising it may be all the daemon needs.
            Some(limit) => Some(format!(
                "{} = {} (the daemon's fds reached its open-file limit of {limit}: raise it, \
                 e.g. LimitNOFILE= or ulimit -n where it is started)",
                m.slo, m.shown
            )),
            None => Some(format!("{} = {}", m.slo, m.shown)),
        },
        (None, None) => None,
    };
    // A starved daemon is slow, not big: only missed latencies and failed streams can be the
    // client's doing.
    let missed_only_timing = config
        .slos
        .iter()
        .zip(&slos)
        .filter(|(_, m)| !m.met)
        .all(|(slo, _)| matches!(slo.metric, Metric::Latency(_) | Metric::Failures));
    let daemon_own_limit = report.daemon_death.is_some()
        || report.limits.daemon_fd_limit_reached
        || !missed_only_timing;
    let client_bound = match &report.limits.stopped_by {
        // The step never reached its concurrency: nothing can be said of it.
        Some(hit) => Some(format!(
            "streamcheck ran into {} at {} open streams: {}",
            hit.kind.name(),
            hit.open_streams,
            hit.detail
        )),
        None if broke_because.is_none() || daemon_own_limit => None,
        None if loop_busy >= LOOP_SATURATED => Some(format!(
            "streamcheck's io_uring loop was on a CPU {:.0}% of the step: the client, not \
             the daemon, may have been the bottleneck",
            loop_busy * 100.0
        )),
        None => machine.and_then(|m| starved_by_others(&m, client_cpu, daemon_cpu?)),
    };
    let outcome = match (&client_bound, &broke_because) {
        (Some(_), _) => Outcome::ClientBound,
        (None, Some(_)) => Outcome::Broke,
        (None, None) => Outcome::Held,
    };
    Step {
        concurrency,
        outcome,
        slos,
        broke_because,
        client_bound,
        peak_open: report.run.peak_open,
        streams: report.run.judged,
        failed: report.integrity.failed,
        daemon_rss_bytes: daemon.map(|d| d.peak.rss_bytes),
        daemon_fds: daemon.map(|d| d.peak.fds),
        daemon_cpu_seconds: daemon_cpu,
        client_cpu_seconds: client_cpu,
        client_loop_busy: loop_busy,
        machine_busy: machine.map(|m| m.busy),
        machine_cpu_seconds: machine.map(|m| m.busy_seconds),
        seconds: took.as_secs_f64(),
        stress: report,
    }
}

impl Step {
    /// The step's line in the human report.
    pub fn line(&self) -> String {
        let verdict = match self.outcome {
            Outcome::Held => "held ",
            Outcome::Broke => "BROKE",
            Outcome::ClientBound => "client-bound",
        };
        let mut line = format!("{:>9} streams  {verdict}", group_digits(self.concurrency));
        for m in &self.slos {
            let mark = if m.met { "ok" } else { "OVER" };
            let metric = m.slo.split(['<', '=']).next().unwrap_or(&m.slo);
            line += &format!("  {metric} {} {mark}", m.shown);
        }
        if let (Some(rss), Some(fds)) = (self.daemon_rss_bytes, self.daemon_fds) {
            line += &format!(" | daemon {} {fds} fds", human_bytes(rss as f64));
        }
        if let Some(cpu) = self.daemon_cpu_seconds {
            line += &format!(" {cpu:.1} CPU-s");
        }
        line += &format!(
            " | client {:.2} CPU-s, loop {:.0}% | {} failed of {}",
            self.client_cpu_seconds,
            self.client_loop_busy * 100.0,
            self.failed,
            self.streams
        );
        if let Some(death) = &self.stress.daemon_death {
            line += &format!("\n{:>9}          the daemon {}", "", death.how);
        }
        if let Some(why) = &self.client_bound {
            line += &format!("\n{:>9}          {why}", "");
        }
        line
    }
}

/// `12400` → `12,400`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// All CPUs over a step.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MachineCpu {
    /// Fraction of their time that was busy.
    busy: f64,
    /// Busy CPU seconds, every process.
    busy_seconds: f64,
}

/// Why a broken step says nothing of the daemon when every CPU was busy: streamcheck or other
/// processes used as much CPU as the daemon, which was then starved, not at its own limit.
fn starved_by_others(m: &MachineCpu, client: f64, daemon: f64) -> Option<String> {
    let others = (m.busy_seconds - client - daemon).max(0.0);
    (m.busy >= MACHINE_SATURATED && (client >= daemon || others >= daemon)).then(|| {
        format!(
            "every CPU was busy ({:.0}%): streamcheck used {client:.1} CPU-s, other processes \
             {others:.1}, the daemon {daemon:.1}, so the daemon was starved, not at its limit; \
             give it CPUs of its own (taskset) and keep other work off the machine",
            m.busy * 100.0
        )
    })
}

/// The `cpu` line of `/proc/stat`: all CPUs' time, in ticks.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    idle: u64,
    total: u64,
}

impl CpuTimes {
    fn read() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
        let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
        Some(CpuTimes {
            idle,
            total: ticks.iter().take(8).sum(),
        })
    }

    /// What all CPUs did between `before` and this reading.
    fn since(&self, before: &CpuTimes) -> Option<MachineCpu> {
        let total = self.total.checked_sub(before.total)?;
        let busy = total.checked_sub(self.idle.checked_sub(before.idle)?)?;
        let ticks_per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
        (total > 0).then(|| MachineCpu {
            busy: busy as f64 / total as f64,
            busy_seconds: busy as f64 / ticks_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(7), "7");
        assert_eq!(group_digits(12_400), "12,400");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }

    #[test]
    fn the_machine_is_busy_between_two_readings() {
        let a = CpuTimes {
            idle: 100,
            total: 200,
        };
        let b = CpuTimes {
            idle: 110,
            total: 300,
        };
        assert_eq!(b.since(&a).map(|m| m.busy), Some(0.9));
        assert!(CpuTimes::read().is_some(), "/proc/stat has a cpu line");
    }

    #[test]
    fn a_daemon_starved_of_cpu_is_not_judged() {
        let saturated = MachineCpu {
            busy: 0.99,
            busy_seconds: 10.0,
        };
        // streamcheck used more than the daemon.
        assert!(starved_by_others(&saturated, 5.0, 4.0).is_some());
        // Other processes did.
        let why = starved_by_others(&saturated, 1.0, 3.0).unwrap();
        assert!(why.contains("other processes 6.0"), "{why}");
        // The daemon used most of the machine: its own limit.
        assert_eq!(starved_by_others(&saturated, 2.0, 7.0), None);
        // CPUs to spare: the daemon's own limit, whoever used what.
        let idle = MachineCpu {
            busy: 0.6,
            busy_seconds: 6.0,
        };
        assert_eq!(starved_by_others(&idle, 5.0, 1.0), None);
    }
}
