//! SIGINT, SIGTERM and SIGHUP, the same for every command.
//!
//! The first signal asks the command to stop: [`watch`] sets the process-wide [`Interrupt`],
//! and `run`, `prop` and `stress` notice it, stop starting work, close their streams, stop the
//! daemon they started and write a partial report marked as interrupted; the command then exits
//! with 128 + the signal's number. A second signal means "now": the watcher kills the process
//! groups of every daemon it started and has not stopped yet, and exits at once with the same
//! status.
//!
//! The handlers for SIGINT and SIGTERM are installed whatever the inherited disposition: a shell
//! starts background jobs with SIGINT ignored, and a `kill -INT` sent to such a process alone
//! must still stop it. SIGHUP inherited as ignored stays ignored: that is what `nohup` asks for.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustix::process::{Pid, kill_process_group};

/// A signal that stops a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C, or `kill -INT`.
    Interrupt,
    /// SIGTERM: what `kill`, `timeout(1)` and CI runners send.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
}

impl Signal {
    /// Every signal watched.
    pub const ALL: [Signal; 3] = [Signal::Interrupt, Signal::Terminate, Signal::Hangup];

    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The signal's number on Linux.
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
        }
    }

    /// The exit status of a command it stopped: 128 + its number, as a shell reports a process
    /// the signal killed.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.number()).unwrap_or(u8::MAX)
    }

    fn from_number(number: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == number)
    }

    fn kind(self) -> tokio::signal::unix::SignalKind {
        use tokio::signal::unix::SignalKind;
        match self {
            Signal::Interrupt => SignalKind::interrupt(),
            Signal::Terminate => SignalKind::terminate(),
            Signal::Hangup => SignalKind::hangup(),
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether, and by which signal, the command was asked to stop.
#[derive(Debug, Default)]
pub struct Interrupt {
    raised: AtomicBool,
    signal: AtomicI32,
}

impl Interrupt {
    /// Not raised.
    pub const fn new() -> Interrupt {
        Interrupt {
            raised: AtomicBool::new(false),
            signal: AtomicI32::new(0),
        }
    }

    /// Records `signal`; true if it is the first.
    pub fn raise(&self, signal: Signal) -> bool {
        let first = self
            .signal
            .compare_exchange(0, signal.number(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        self.raised.store(true, Ordering::SeqCst);
        first
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<Signal> {
        Signal::from_number(self.signal.load(Ordering::SeqCst))
    }

    /// Whether a signal was received.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }

    /// The same, as a flag for loops that poll one.
    pub fn flag(&self) -> &AtomicBool {
        &self.raised
    }
}

/// Runs an action on another thread once an [`Interrupt`] is raised (e.g. closing every stream
/// of a ring, so that work in flight ends at once instead of at its deadlines); stops watching
/// when dropped.
pub struct OnInterrupt {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OnInterrupt {
    /// Watches `interrupt` (every 20 ms) until it is raised, then runs `action` once.
    pub fn spawn(interrupt: &'static Interrupt, action: impl FnOnce() + Send + 'static) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let thread = std::thread::Builder::new()
            .name("streamcheck-stop".into())
            .spawn(move || {
                while !finished.load(Ordering::Relaxed) {
                    if interrupt.is_raised() {
                        action();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
            .ok();
        OnInterrupt { done, thread }
    }
}

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

static INTERRUPT: Interrupt = Interrupt::new();

/// The signal [`watch`] received, if it did (for waits deep inside a command, such as a daemon
/// starting, that must not outlast a signal).
pub(crate) fn received() -> Option<Signal> {
    INTERRUPT.signal()
}

/// Process groups of the daemons this process started and has not stopped yet.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Notes a daemon's process group, to be killed if a second signal ends the process at once.
pub(crate) fn adopt(pgid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pgid);
}

/// Forgets a process group once its daemon has been stopped.
pub(crate) fn release(pgid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|&p| p != pgid);
}

fn kill_children() {
    let children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    for &pgid in children.iter() {
        if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// Installs the handlers (once; later calls return the same flag) and returns the process-wide
/// [`Interrupt`]. The error names what could not be set up.
pub fn watch() -> Result<&'static Interrupt, String> {
    static WATCHING: OnceLock<Result<(), String>> = OnceLock::new();
    WATCHING.get_or_init(start_watcher).clone()?;
    Ok(&INTERRUPT)
}

fn start_watcher() -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot watch for SIGINT, SIGTERM and SIGHUP: {e}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(fail)?;
    // Installed here, before `watch` returns: a signal from now on is seen.
    let mut streams = Vec::new();
    let nohup = ignored_at_start(Signal::Hangup);
    for signal in Signal::ALL
        .into_iter()
        .filter(|s| !(*s == Signal::Hangup && nohup))
    {
        let stream = runtime
            .block_on(async { tokio::signal::unix::signal(signal.kind()) })
            .map_err(fail)?;
        streams.push((signal, stream));
    }
    std::thread::Builder::new()
        .name("streamcheck-signals".into())
        .spawn(move || {
            loop {
                let signal = runtime.block_on(next(&mut streams));
                if INTERRUPT.raise(signal) {
                    eprintln!(
                        "streamcheck: {signal}: stopping, writing what finished (a second signal \
                         exits at once)"
                    );
                } else {
                    kill_children();
                    let first = INTERRUPT.signal().unwrap_or(signal);
                    std::process::exit(i32::from(first.exit_code()));
                }
            }
        })
        .map_err(fail)?;
    Ok(())
}

/// Whether `signal` was ignored when the process started (the `SigIgn` mask of
/// `/proc/self/status`, bit N-1 for signal N), e.g. SIGHUP under `nohup`.
fn ignored_at_start(signal: Signal) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal.number() - 1)) != 0)
}

/// The next signal on any of `streams`.
async fn next(streams: &mut [(Signal, tokio::signal::unix::Signal)]) -> Signal {
    std::future::poll_fn(|cx| {
        for (signal, stream) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*signal);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_the_one_kept() {
        let i = Interrupt::new();
        assert_eq!(i.signal(), None);
        assert!(!i.is_raised());
        assert!(i.raise(Signal::Terminate));
        assert!(!i.raise(Signal::Interrupt));
        assert_eq!(i.signal(), Some(Signal::Terminate));
        assert!(i.flag().load(Ordering::Relaxed));
    }

    #[test]
    fn exit_codes_are_128_plus_the_number() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::Hangup.exit_code(), 129);
    }
}
