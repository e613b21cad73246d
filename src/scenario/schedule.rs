//! Which scenarios run when: the selected scenarios run on `--jobs` worker threads sharing one
//! ring, exclusive ones alone; results are reported in catalog order as soon as each and all
//! before it are in. A scenario is not started once the run is interrupted, the daemon has died
//! or is unresponsive, or `--fail-fast` saw a failure; a death is reported before the results
//! it spoiled.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::daemon::{self, DaemonProcess};
use super::drive::{self, Ctx};
use super::runner::{SuiteConfig, SuiteError};
use super::unresponsive::Watch;
use super::{Drive, Scenario, slow};
use crate::report::Reporter;
use crate::signals::{Interrupt, Signal};
use crate::verdict::{DaemonDeath, ScenarioResult};

/// How long a failed result waits for a daemon that may be exiting: its streams end as it
/// closes its files, a moment before its exit can be collected.
const EXIT_SETTLE: Duration = Duration::from_millis(50);

/// Reports results in catalog order: each as soon as it and every one before it are in.
struct InOrder<'r> {
    reporter: &'r mut dyn Reporter,
    emitted: usize,
}

impl InOrder<'_> {
    fn flush(&mut self, slots: &[Option<ScenarioResult>]) -> Result<(), SuiteError> {
        while let Some(Some(r)) = slots.get(self.emitted) {
            self.reporter.on_result(r).map_err(SuiteError::Report)?;
            self.emitted += 1;
        }
        Ok(())
    }
}

/// The scheduler's state.
struct Schedule<'a, 'r> {
    config: &'a SuiteConfig,
    ctx: &'a Ctx,
    selected: &'a [&'static Scenario],
    slots: &'a mut [Option<ScenarioResult>],
    out: InOrder<'r>,
    /// The daemon, when the runner started it.
    daemon: &'a mut Option<DaemonProcess>,
    in_flight: usize,
    /// The daemon's death, once noticed.
    died: Option<DaemonDeath>,
    /// Whether the daemon answers at all.
    watch: Watch,
    /// Why `--fail-fast` stopped the run.
    failed_fast: Option<String>,
    /// A silent stream came in: let the wave in flight finish before deciding to start more.
    draining: bool,
}

/// What scheduling found besides the results.
pub(super) struct Scheduled {
    /// The daemon died: how.
    pub died: Option<DaemonDeath>,
    /// The daemon was judged unresponsive: why.
    pub unresponsive: Option<String>,
}

impl Schedule<'_, '_> {
    /// Waits for one result from the workers. `cut`: the run was interrupted while it ran.
    fn receive(
        &mut self,
        done: &mpsc::Receiver<(usize, ScenarioResult, bool)>,
    ) -> Result<(), SuiteError> {
        if let Ok((i, r, cut)) = done.recv() {
            self.in_flight -= 1;
            let sc = self.selected[i];
            let mut r = match self.config.interrupt.and_then(Interrupt::signal) {
                Some(signal) if cut => interrupted(sc, signal, true),
                _ => r,
            };
            if self.died.is_none() {
                let mut death = daemon::death_of(self.daemon.as_mut(), self.config.daemon_pid);
                if death.is_none() && r.failed() {
                    std::thread::sleep(EXIT_SETTLE);
                    death = daemon::death_of(self.daemon.as_mut(), self.config.daemon_pid);
                }
                if let Some(death) = death {
                    let death = death.during(format!("while {} {} ran", sc.id, sc.name));
                    // Said first: before the results it spoiled.
                    self.out
                        .reporter
                        .on_daemon_death(&death)
                        .map_err(SuiteError::Report)?;
                    self.died = Some(death);
                }
            }
            // Every failure from here on is the death's: the scenarios running beside the
            // one that noticed it.
            if let Some(death) = &self.died {
                death.attribute(&mut r);
            }
            self.judge(&r, sc.id);
            self.slots[i] = Some(r);
            self.out.flush(self.slots)?;
        }
        Ok(())
    }

    /// Learns from a finished scenario whether the daemon answers, and whether to stop.
    fn judge(&mut self, r: &ScenarioResult, id: &str) {
        let ctx = self.ctx;
        self.watch
            .observe(r, || ctx.mock.saw_daemon_request(&ctx.tag));
        self.draining |= self.watch.doubtful();
        if self.config.fail_fast && r.failed() && self.failed_fast.is_none() {
            self.failed_fast = Some(failed_fast(id));
        }
    }

    /// The result of `sc` without running it, when it must not run.
    fn not_to_run(&self, sc: &Scenario) -> Option<ScenarioResult> {
        let skipped = |reason: String| {
            ScenarioResult::skipped(sc.id, sc.name, sc.category.name(), sc.description, reason)
        };
        if let Some(signal) = self.config.interrupt.and_then(Interrupt::signal) {
            return Some(interrupted(sc, signal, false));
        }
        if let Some(death) = &self.died {
            return Some(skipped(format!("not run: {}", death.headline())));
        }
        if let Some(reason) = &self.failed_fast {
            return Some(skipped(reason.clone()));
        }
        let reason = self.watch.unresponsive()?;
        Some(ScenarioResult::not_run(
            sc.id,
            sc.name,
            sc.category.name(),
            sc.description,
            reason,
        ))
    }
}

/// Why scenarios are not run after `id` failed under `--fail-fast`.
fn failed_fast(id: &str) -> String {
    format!("not run: --fail-fast stopped the run after {id} failed")
}

/// `sc` as an interrupted run reports it: skipped, neither passed nor failed.
pub(super) fn interrupted(sc: &Scenario, signal: Signal, running: bool) -> ScenarioResult {
    let reason = if running {
        format!("interrupted by {signal} before it finished")
    } else {
        format!("not run: interrupted by {signal}")
    };
    ScenarioResult::skipped(sc.id, sc.name, sc.category.name(), sc.description, reason)
}

/// Runs the scenarios without a result yet, `jobs` at a time, exclusive ones alone, and reports
/// results in catalog order. Scenarios are not run once the run is interrupted, the daemon has
/// died or is unresponsive, or `--fail-fast` saw a failure.
pub(super) fn schedule(
    config: &SuiteConfig,
    ctx: &Ctx,
    selected: &[&'static Scenario],
    slots: &mut [Option<ScenarioResult>],
    reporter: &mut dyn Reporter,
    daemon: &mut Option<DaemonProcess>,
    watch: Watch,
) -> Result<Scheduled, SuiteError> {
    let mut st = Schedule {
        config,
        ctx,
        selected,
        slots,
        out: InOrder {
            reporter,
            emitted: 0,
        },
        daemon,
        in_flight: 0,
        died: None,
        watch,
        failed_fast: None,
        draining: false,
    };
    // The results already in (the socket-type check) count for --fail-fast.
    if config.fail_fast {
        st.failed_fast = (selected.iter().zip(st.slots.iter()))
            .find(|(_, r)| r.as_ref().is_some_and(ScenarioResult::failed))
            .map(|(sc, _)| failed_fast(sc.id));
    }
    std::thread::scope(|scope| -> Result<(), SuiteError> {
        let (task_tx, task_rx) = mpsc::channel::<usize>();
        let (done_tx, done_rx) = mpsc::channel::<(usize, ScenarioResult, bool)>();
        let task_rx = Arc::new(Mutex::new(task_rx));
        for _ in 0..config.jobs {
            let (task_rx, done_tx) = (task_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                loop {
                    let next = task_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(i) = next else { break };
                    let result = run_one(ctx, selected[i]);
                    let cut = config.interrupt.is_some_and(Interrupt::is_raised);
                    if done_tx.send((i, result, cut)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Dropping the task sender on every exit path lets the workers end.
        let result = (|| {
            for (i, sc) in selected.iter().enumerate() {
                if st.slots[i].is_some() {
                    st.out.flush(st.slots)?;
                    continue;
                }
                let exclusive = sc.drive.exclusive();
                while st.in_flight > 0 && (exclusive || st.in_flight >= config.jobs || st.draining)
                {
                    st.receive(&done_rx)?;
                }
                st.draining = false;
                if let Some(r) = st.not_to_run(sc) {
                    st.slots[i] = Some(r);
                    st.out.flush(st.slots)?;
                    continue;
                }
                if task_tx.send(i).is_ok() {
                    st.in_flight += 1;
                }
                if exclusive {
                    st.receive(&done_rx)?;
                }
            }
            while st.in_flight > 0 {
                st.receive(&done_rx)?;
            }
            Ok(())
        })();
        drop(task_tx);
        result
    })?;
    Ok(Scheduled {
        died: st.died,
        unresponsive: st.watch.unresponsive().map(str::to_owned),
    })
}

fn run_one(ctx: &Ctx, sc: &Scenario) -> ScenarioResult {
    match sc.drive {
        Drive::Single => drive::single(ctx, sc),
        Drive::SocketType => drive::socket_type(ctx, sc).0,
        Drive::Unreachable => drive::unreachable(ctx, sc),
        Drive::SlowReader => slow::slow_reader(ctx, sc),
        Drive::Concurrent { streams } => slow::concurrent(ctx, sc, streams),
    }
}
