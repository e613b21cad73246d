//! The report for people: a verdict line, then integrity with examples, latency percentiles,
//! the daemon's resources, the client's cost and the limits.

use std::fmt::Write as _;

use super::ceiling::CeilingKind;
use super::integrity::Outcome;
use super::latency::human_ns;
use super::report::StressReport;
use super::resources::LeakVerdict;

const MIB: f64 = 1024.0 * 1024.0;

impl StressReport {
    /// The report as text.
    pub fn human(&self) -> String {
        let mut o = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_human(&mut o);
        o
    }

    fn write_human(&self, o: &mut String) -> std::fmt::Result {
        let r = &self.run;
        if let Some(d) = &self.daemon_death {
            writeln!(o, "streamcheck stress: DAEMON DIED: {}", d.message())?;
        }
        let verdict = if self.integrity.held {
            "INTEGRITY HELD"
        } else {
            "INTEGRITY FAILED"
        };
        let cut = if r.interrupted {
            " (interrupted by a signal)"
        } else if self.limits.stopped_by.is_some() {
            " (stopped early by a client limit, see below)"
        } else {
            ""
        };
        writeln!(
            o,
            "streamcheck stress: {verdict}: {} of {} streams failed{cut}",
            self.integrity.failed, r.judged,
        )?;
        writeln!(
            o,
            "  daemon   {} ({})",
            self.target.daemon, self.target.socket
        )?;
        writeln!(o, "  upstream {}", self.target.upstream)?;
        let l = &self.load;
        let model = match (l.model, l.rate) {
            ("open", Some(rate)) => format!(
                "open loop, {rate} connections/s (at most {} open), ramp-up {} ms",
                l.concurrency, l.ramp_up_ms
            ),
            _ => format!(
                "closed loop, {} concurrent, ramp-up {} ms",
                l.concurrency, l.ramp_up_ms
            ),
        };
        writeln!(
            o,
            "  load     {model}; {} streams of pattern {} over {} / {}, timeout {} ms",
            r.started, self.target.pattern, self.target.pair, self.target.socket_type, l.timeout_ms
        )?;
        if l.abort_rate > 0.0 || l.slow_readers > 0.0 {
            writeln!(
                o,
                "           abort rate {}, slow readers {} (pausing {} ms)",
                l.abort_rate, l.slow_readers, l.slow_pause_ms
            )?;
        }
        writeln!(
            o,
            "  run      {:.2} s, peak {} open, {} events, {:.1} MiB received",
            r.wall_seconds,
            r.peak_open,
            r.events,
            r.bytes as f64 / MIB
        )?;

        writeln!(o, "\nIntegrity")?;
        for (outcome, tally) in &self.integrity.outcomes {
            let mark = if outcome.is_ok() { " " } else { "!" };
            writeln!(o, "{mark} {:>9}  {}", tally.count, outcome.name())?;
            for e in &tally.examples {
                if *outcome == Outcome::Completed {
                    continue;
                }
                writeln!(
                    o,
                    "             #{} {} ({} bytes): {}",
                    e.connection, e.nonce, e.bytes, e.detail
                )?;
            }
        }
        match &self.integrity.leak {
            LeakVerdict::Leak(why) => writeln!(o, "! leak: {why}")?,
            LeakVerdict::None => writeln!(o, "  no leak: the daemon released every client socket")?,
            LeakVerdict::Unknown => writeln!(o, "  leak: not checked")?,
        }

        writeln!(
            o,
            "\nLatency            count       p50       p90       p99     p99.9       max"
        )?;
        for s in &self.latency {
            if s.count == 0 {
                writeln!(o, "  {:<15} {:>7}", s.name, 0)?;
                continue;
            }
            writeln!(
                o,
                "  {:<15} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
                s.name,
                s.count,
                human_ns(s.p50_ns),
                human_ns(s.p90_ns),
                human_ns(s.p99_ns),
                human_ns(s.p999_ns),
                human_ns(s.max_ns)
            )?;
        }
        if let Some(took) = r.ramp_actual_ms {
            writeln!(
                o,
                "  ramp-up: planned {:.1} ms, last start at {took:.1} ms",
                r.ramp_planned_ms
            )?;
        }
        let relay = &self.relay;
        if relay.streams_joined > 0 || relay.waiting > 0 || relay.log_error.is_some() {
            write!(o, "  relay latency from {} streams", relay.streams_joined)?;
            if relay.waiting > 0 {
                write!(o, "; {} streams not found in the mock's log", relay.waiting)?;
            }
            if let Some(e) = &relay.log_error {
                write!(o, "; the mock's log could not be read: {e}")?;
            }
            writeln!(o)?;
        }

        if let Some(d) = &self.daemon {
            writeln!(
                o,
                "\nDaemon (PID {})       before      peak     after",
                d.pid
            )?;
            writeln!(
                o,
                "  fds            {:>9} {:>9} {:>9}",
                d.before.fds, d.peak.fds, d.after.fds
            )?;
            writeln!(
                o,
                "  RSS            {:>7.1}Mi {:>7.1}Mi {:>7.1}Mi",
                d.before.rss_bytes as f64 / MIB,
                d.peak.rss_bytes as f64 / MIB,
                d.after.rss_bytes as f64 / MIB
            )?;
            write!(
                o,
                "  CPU {:.2} s; settled in {} ms",
                d.cpu_seconds, d.settle_ms
            )?;
            if let Some(held) = d.client_sockets_held {
                write!(o, "; {held} client sockets still held")?;
            }
            writeln!(o)?;
            if let Some(e) = &d.error {
                writeln!(o, "  {e}")?;
            }
        }

        let c = &self.client;
        writeln!(o, "\nClient")?;
        writeln!(
            o,
            "  CPU {:.3} s in the io_uring loop thread, {:.3} s for the process during the run{}",
            c.cpu_seconds_loop_thread,
            c.cpu_seconds_process_run,
            if c.embedded_mock {
                " (including the embedded mock)"
            } else {
                ""
            }
        )?;
        writeln!(
            o,
            "  user {:.3} s + system {:.3} s; loop thread busy {:.0}% of the run, {:.0}% at its \
             busiest{}",
            c.cpu_user_s,
            c.cpu_sys_s,
            c.ring_thread_busy_fraction * 100.0,
            c.ring_thread_busy_peak * 100.0,
            if c.ring_thread_saturated_s > 0.0 {
                format!(
                    " (saturated for {:.1} s: the client set the pace then)",
                    c.ring_thread_saturated_s
                )
            } else {
                String::new()
            }
        )?;
        writeln!(
            o,
            "  {:.3} CPU-s per 1,000 streams, {:.4} CPU-s per 1,000 events; {:.3} s in all",
            c.cpu_seconds_per_1000_streams,
            c.cpu_seconds_per_1000_events,
            c.cpu_seconds_process_total
        )?;
        write!(o, "  peak RSS {:.1} MiB", c.peak_rss_bytes as f64 / MIB)?;
        if let Some(per) = c.rss_per_open_stream_bytes {
            write!(o, ", {:.2} KiB per open stream", per / 1024.0)?;
        }
        writeln!(o)?;
        let lim = &self.limits;
        write!(o, "  open-file limit {}", lim.fd_limit)?;
        if let Some(r) = &lim.port_range {
            write!(
                o,
                ", ports {}-{} ({} ports, {})",
                r.low, r.high, r.ports, r.from
            )?;
        }
        if let Some(n) = lim.pair_addresses {
            write!(o, ", TCP pairs from {n} loopback address(es)")?;
        }
        writeln!(o)?;
        let bound = match (lim.ceiling.bound_by, lim.pair_addresses, &lim.port_range) {
            (CeilingKind::EphemeralPorts, Some(n), Some(r)) => {
                format!(
                    "{n} loopback address(es) × {} ports, sized for this run",
                    r.ports
                )
            }
            (CeilingKind::EphemeralPorts, ..) => "the loopback pairs' ports".to_owned(),
            (CeilingKind::Fds, ..) => "the client's open-file limit".to_owned(),
        };
        writeln!(
            o,
            "  the client can hold {} streams at once, bounded by {bound}",
            lim.ceiling.streams
        )?;
        if let Some(hit) = &lim.stopped_by {
            writeln!(
                o,
                "! stopped by {} at {} open streams: {}",
                hit.kind.name(),
                hit.open_streams,
                hit.detail
            )?;
        }
        if lim.daemon_fd_limit_reached
            && let (Some(limit), Some(d)) = (lim.daemon_fd_limit, &self.daemon)
        {
            writeln!(
                o,
                "! the daemon reached its open-file limit: {} fds at peak of {limit} with {} \
                 streams open; that limit, not the client's, bounded this run (handoffs beyond \
                 it fail with EMFILE: raise the daemon's ulimit -n)",
                d.peak.fds, r.peak_open
            )?;
        }
        if let Some(hit) = &lim.daemon_backlog {
            writeln!(
                o,
                "! {} was full at {} open streams: {} handoffs failed; {}",
                hit.kind.name(),
                hit.open_streams,
                lim.backlog_full,
                hit.detail
            )?;
        }
        for note in &self.notes {
            writeln!(o, "\nnote: {note}")?;
        }
        Ok(())
    }
}
