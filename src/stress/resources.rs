//! What the run costs: the daemon's resources from `/proc/PID` (fds, RSS, CPU, client sockets it
//! still holds) with a leak verdict, and the client's own cost (CPU, RSS), cheap enough to sample
//! during a run of 10,000 streams.
//!
//! The fd count is `st_size` of `/proc/PID/fd` (Linux 6.2 and later report the number of open
//! fds there; older kernels report 0 and the directory is counted instead). RSS comes from
//! `/proc/PID/statm`, CPU from `/proc/PID/stat` (utime + stime, clock ticks).
//!
//! The leak verdict rests on the client sockets the daemon still holds once the run has settled,
//! found by the client's pair listeners' addresses ([`census`]). With AF_UNIX pairs they cannot
//! be told apart, and the fd count against the count before the run decides instead.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::census;

/// One look at a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcSample {
    /// Open file descriptors.
    pub fds: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User + system CPU time, ns (clock-tick resolution).
    pub cpu_ns: u64,
}

/// Reads `/proc/PID` once; the error names the file and the fix.
pub fn sample(pid: u32) -> Result<ProcSample, String> {
    Ok(ProcSample {
        fds: fd_count(pid)?,
        rss_bytes: rss_bytes(pid)?,
        cpu_ns: cpu_ns(pid)?,
    })
}

/// Fds under the limit at which the daemon counts as having reached it (at least; 1% of the
/// limit for large ones).
const FD_LIMIT_MARGIN: u64 = 8;

/// The soft "Max open files" of `pid`, from `/proc/PID/limits`.
pub fn fd_limit(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_fd_limit(&text)
}

fn parse_fd_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(super) fn unreadable(path: &str, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        return format!("cannot read {path}: the daemon is gone");
    }
    format!(
        "cannot read {path}: {e}; the daemon must be running as this user (or run streamcheck \
         with the right to read its /proc entries)"
    )
}

/// Open fds of `pid`.
pub fn fd_count(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/fd");
    let meta = std::fs::metadata(&path).map_err(|e| unreadable(&path, e))?;
    if meta.len() > 0 {
        return Ok(meta.len());
    }
    let dir = std::fs::read_dir(&path).map_err(|e| unreadable(&path, e))?;
    Ok(dir.count() as u64)
}

fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/statm");
    let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{path} has no resident field"))?;
    Ok(pages * page_size())
}

fn cpu_ns(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| -> Option<u64> { rest.split_whitespace().nth(n)?.parse().ok() };
    // After ')': state is field 0, utime field 11, stime field 12 (fields 14 and 15 of stat).
    let (Some(utime), Some(stime)) = (field(11), field(12)) else {
        return Err(format!("{path} has no utime/stime fields"));
    };
    let tick = 1_000_000_000 / clock_ticks();
    Ok((utime + stime) * tick)
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// The process a started command really is: `sh -c CMD` may fork instead of exec'ing, in which
/// case the daemon is the shell's only child.
pub fn resolve_daemon_pid(pid: u32) -> u32 {
    let mut pid = pid;
    for _ in 0..3 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !matches!(comm.trim(), "sh" | "dash" | "bash") {
            break;
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let kids: Vec<u32> = children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect();
        match kids.as_slice() {
            [only] => pid = *only,
            _ => break,
        }
    }
    pid
}

/// The daemon's resources over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonResources {
    /// The PID looked at.
    pub pid: u32,
    /// Before the first stream.
    pub before: ProcSample,
    /// The most fds and the most RSS seen while streams ran (sampled every 100 ms).
    pub peak: ProcSample,
    /// After the run settled.
    pub after: ProcSample,
    /// How long the settling took.
    pub settle_ms: u64,
    /// CPU time the daemon used from the first stream to the end of settling, seconds.
    pub cpu_seconds: f64,
    /// Client sockets the daemon still held after settling (TCP pairs only).
    pub client_sockets_held: Option<u64>,
    /// `none`, `leak` or `unknown`, and why.
    pub leak: LeakVerdict,
    /// A sampling error, if the daemon could not be read (e.g. it exited).
    pub error: Option<String>,
    /// Its open-file limit (the soft RLIMIT_NOFILE, from `/proc/PID/limits`).
    pub fd_limit: Option<u64>,
}

/// Whether the daemon kept resources the run gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum LeakVerdict {
    /// Everything the streams used was released.
    None,
    /// Something was kept: what.
    Leak(String),
    /// Could not be decided: why.
    #[default]
    Unknown,
}

impl DaemonResources {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> DaemonResources {
        let mut r = DaemonResources {
            pid,
            fd_limit: fd_limit(pid),
            ..DaemonResources::default()
        };
        match sample(pid) {
            Ok(s) => {
                r.before = s;
                r.peak = s;
            }
            Err(e) => r.error = Some(e),
        }
        r
    }

    /// Whether the daemon's fd count came within a few fds of its open-file limit: from
    /// there on, accepting a handoff or installing its client fd fails with EMFILE, and that
    /// limit, not the client's, bounds the run.
    pub fn fd_limit_reached(&self) -> bool {
        // Samples are 100 ms apart: the true peak may be a little higher than the one seen.
        self.fd_limit
            .is_some_and(|limit| self.peak.fds + FD_LIMIT_MARGIN.max(limit / 100) >= limit)
    }

    /// Takes in what was sampled through the run ([`super::timeline`]): the most fds and RSS
    /// seen, the CPU at the latest reading, and why the daemon could not be read, if so.
    pub fn observed(&mut self, peak: Option<ProcSample>, error: Option<String>) {
        if let Some(s) = peak {
            self.peak.fds = self.peak.fds.max(s.fds);
            self.peak.rss_bytes = self.peak.rss_bytes.max(s.rss_bytes);
            self.peak.cpu_ns = s.cpu_ns;
        }
        if self.error.is_none() {
            self.error = error;
        }
    }

    /// Waits up to `max` for the daemon to release the run's resources (its fd count back to
    /// where it was, or unchanged for a second), then looks for client sockets it still holds
    /// and gives the verdict. `pair_listeners` are the client's pair listeners, if TCP pairs
    /// were used; `streams` is how many streams ran. Only the fd count is polled: listing
    /// sockets reads `/proc/net/tcp`, whose size grows with every connection of the run.
    pub fn settle(&mut self, max: Duration, pair_listeners: &[SocketAddrV4], streams: u64) {
        let started = Instant::now();
        let mut last = u64::MAX;
        let mut still_since = Instant::now();
        loop {
            let fds = match fd_count(self.pid) {
                Ok(n) => n,
                Err(_) => {
                    self.error
                        .get_or_insert_with(|| format!("the daemon (PID {}) has gone", self.pid));
                    self.leak = LeakVerdict::Unknown;
                    return;
                }
            };
            if fds != last {
                last = fds;
                still_since = Instant::now();
            }
            if fds <= self.before.fds
                || still_since.elapsed() >= Duration::from_secs(1)
                || started.elapsed() >= max
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.settle_ms = started.elapsed().as_millis() as u64;
        match sample(self.pid) {
            Ok(s) => self.after = s,
            Err(e) => {
                self.error.get_or_insert(e);
                self.leak = LeakVerdict::Unknown;
                return;
            }
        }
        self.client_sockets_held = (!pair_listeners.is_empty())
            .then(|| census::client_sockets(self.pid, pair_listeners).ok())
            .flatten();
        self.cpu_seconds = self.after.cpu_ns.saturating_sub(self.before.cpu_ns) as f64 / 1e9;
        self.leak = verdict(&self.before, &self.after, self.client_sockets_held, streams);
    }
}

/// The leak verdict from the samples before and after and the client sockets still held.
pub fn verdict(
    before: &ProcSample,
    after: &ProcSample,
    held: Option<u64>,
    streams: u64,
) -> LeakVerdict {
    let extra = after.fds.saturating_sub(before.fds);
    match held {
        Some(0) => LeakVerdict::None,
        Some(n) => LeakVerdict::Leak(format!(
            "the daemon still holds {n} client sockets after all {streams} streams ended ({} fds \
             before the run, {} after)",
            before.fds, after.fds
        )),
        // Without the TCP pair's port, only the count can tell; a few fds of slack for pools
        // and caches the daemon may grow, but a per-stream leak is far past it.
        None if extra > 16.max(streams / 100) => LeakVerdict::Leak(format!(
            "{extra} more fds after the run than before ({} → {}) for {streams} streams",
            before.fds, after.fds
        )),
        None => LeakVerdict::None,
    }
}

/// CPU time of this process (all threads, user and system), ns.
pub fn process_cpu_ns() -> u64 {
    clock_ns(rustix::time::ClockId::ProcessCPUTime)
}

/// CPU time of this process (all threads) split into user and system time, ns.
pub fn process_user_sys_ns() -> (u64, u64) {
    // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live rusage; it cannot fail with these arguments.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0, 0);
    }
    let ns = |t: libc::timeval| {
        (t.tv_sec as u64).saturating_mul(1_000_000_000) + (t.tv_usec as u64).saturating_mul(1000)
    };
    (ns(usage.ru_utime), ns(usage.ru_stime))
}

/// CPU time of the calling thread, ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(rustix::time::ClockId::ThreadCPUTime)
}

fn clock_ns(id: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(id);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// This process's current RSS, bytes.
pub fn own_rss_bytes() -> u64 {
    rss_bytes(std::process::id()).unwrap_or(0)
}

/// This process's peak RSS (VmHWM), bytes.
pub fn own_peak_rss_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() && limit.current != limit.maximum {
        // If this fails the old limit stays, and the run reports when it is reached.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        let s = sample(me).unwrap();
        assert!(s.fds >= 3, "stdin, stdout, stderr at least: {}", s.fds);
        assert!(s.rss_bytes > 0);
        assert!(process_cpu_ns() >= thread_cpu_ns());
        assert!(own_peak_rss_bytes() >= own_rss_bytes() / 2);
        assert!(sample(u32::MAX).unwrap_err().contains("/proc/"));
        assert_eq!(resolve_daemon_pid(me), me);
    }

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            20000                524288               files\n";
        assert_eq!(parse_fd_limit(limits), Some(20_000));
        assert_eq!(parse_fd_limit("Max cpu time unlimited"), None);
        assert!(fd_limit(std::process::id()).is_some_and(|l| l > 3));
        let mut d = DaemonResources {
            fd_limit: Some(20_000),
            ..DaemonResources::default()
        };
        d.peak.fds = 19_700;
        assert!(!d.fd_limit_reached());
        d.peak.fds = 19_850;
        assert!(d.fd_limit_reached(), "within 1% of the limit");
    }

    #[test]
    fn the_verdict_names_what_was_kept() {
        let before = ProcSample {
            fds: 10,
            ..ProcSample::default()
        };
        let after = ProcSample {
            fds: 310,
            ..ProcSample::default()
        };
        assert_eq!(verdict(&before, &after, Some(0), 300), LeakVerdict::None);
        assert!(
            matches!(verdict(&before, &after, Some(300), 300), LeakVerdict::Leak(m) if m.contains("300 client sockets"))
        );
        assert!(matches!(
            verdict(&before, &after, None, 300),
            LeakVerdict::Leak(_)
        ));
        assert_eq!(verdict(&before, &before, None, 300), LeakVerdict::None);
    }
}
