//! One daemon and one mock kept for many cases, run one at a time: what a caller that owns the
//! loop (the `daemon` fuzz target, one input at a time) uses instead of [`run`](super::run).
//!
//! Each case is a real handoff with its own nonce on the session's ring, judged by the same
//! [`judge`](super::judge) as `prop`; nothing is shrunk or persisted here.

use std::path::Path;

use crate::ring::{RingConfig, RingHandle, RingThread};
use crate::verdict::Strictness;

use super::batch::{CaseResult, run_case, run_tag};
use super::case::Case;
use super::drive::Env;
use super::runner::PropConfig;
use super::{PropError, target};

/// A started (or reached) daemon, its mock and a ring. Dropping it stops the daemon it
/// started, then the mock.
pub struct Session {
    // Declared first so the ring stops before the daemon and the mock go.
    ring: RingHandle,
    running: target::Running,
    config: PropConfig,
    tag: String,
    count: u64,
}

impl Session {
    /// Starts the daemon and mock of `config.target` (or connects to them) and a ring. Only
    /// the target, limits, read limits, strictness, socket type and pair of `config` are used.
    pub fn start(config: &PropConfig) -> Result<Session, PropError> {
        let running = target::start(&config.target)?;
        let ring = RingThread::spawn(RingConfig::default()).map_err(PropError::Handoff)?;
        Ok(Session {
            ring,
            running,
            config: config.clone(),
            tag: run_tag(),
            count: 0,
        })
    }

    /// Runs `case` through the daemon with a fresh nonce and judges it. `Err` when the case
    /// could not be carried out: the mock failed, or the handoff did (see
    /// [`Session::daemon_failure`]).
    pub fn run(&mut self, case: &Case) -> Result<CaseResult, PropError> {
        self.count += 1;
        let env = Env {
            ring: self.ring.clone(),
            mock: &self.running.mock,
            socket: target::socket_of(&self.running),
            socket_type: self.config.socket_type,
            pair: self.config.pair,
            limits: self.config.limits,
            read: self.config.read,
        };
        let nonce = format!("{}-{}", self.tag, self.count);
        run_case(&env, self.config.strictness, case, &nonce)
    }

    /// If the daemon the session started has exited: how, and the end of its output.
    pub fn daemon_failure(&mut self) -> Option<String> {
        self.running.daemon_failure()
    }

    /// The process ID (and process group ID) of the daemon the session started.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.running.daemon.as_ref().map(|d| d.pid())
    }

    /// The working directory of the daemon the session started (its socket and its log),
    /// removed when the session is dropped.
    pub fn work_dir(&self) -> Option<&Path> {
        self.running.work_dir()
    }

    /// The strictness cases are judged under.
    pub fn strictness(&self) -> Strictness {
        self.config.strictness
    }
}
