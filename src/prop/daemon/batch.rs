//! Running cases: one at a time, or a batch on worker threads sharing the ring, each case with
//! a fresh nonce, judged as it ends.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::SystemTime;

use crate::verdict::{AssertionResult, Strictness, Verdict};

use super::build::Built;
use super::case::Case;
use super::drive::{self, Env, Observed};
use super::runner::PropReport;
use super::{PropError, judge};

/// One case run and its judgement.
#[derive(Debug)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// Its script and expected outcome.
    pub built: Built,
    /// What the daemon did.
    pub observed: Observed,
    /// The invariants, checked.
    pub assertions: Vec<AssertionResult>,
    /// The worst verdict under the run's strictness.
    pub verdict: Verdict,
    strictness: Strictness,
}

impl CaseResult {
    /// Whether the case failed the run.
    pub fn failed(&self) -> bool {
        self.verdict.is_failure()
    }

    /// Whether it failed without the daemon doing anything: not a byte to the client and no
    /// upstream request. Replaying or shrinking such a case only waits out more deadlines.
    pub fn unresponsive(&self) -> bool {
        self.failed() && self.observed.raw.is_empty() && self.observed.requests.is_empty()
    }

    /// The assertions that made it fail (or, if it passed, the non-strict ones).
    pub fn broken(&self) -> impl Iterator<Item = &AssertionResult> {
        let level = if self.failed() {
            Verdict::Fail
        } else {
            Verdict::NonStrict
        };
        let strictness = self.strictness;
        self.assertions
            .iter()
            .filter(move |a| a.verdict.under(strictness) >= level)
    }

    /// Names of the invariants that broke.
    pub fn broken_names(&self) -> BTreeSet<String> {
        self.broken().map(|a| a.name.clone()).collect()
    }

    /// The invariants that broke, each with its verdict: what "the same failure" means.
    pub fn signature(&self) -> Vec<(String, Verdict)> {
        self.broken().map(|a| (a.name.clone(), a.verdict)).collect()
    }

    /// Whether this run fails the same way as `signature`: it breaks one of those invariants,
    /// no more mildly (a shrunk case must not trade a failure for a non-strict finding).
    pub fn fails_like(&self, signature: &[(String, Verdict)]) -> bool {
        self.failed()
            && self.broken().any(|a| {
                signature
                    .iter()
                    .any(|(n, v)| *n == a.name && a.verdict >= *v)
            })
    }
}

/// Counts a non-strict finding.
pub(crate) fn note(report: &mut PropReport, result: &CaseResult) {
    if !result.failed() && result.verdict == Verdict::NonStrict {
        report.nonstrict += 1;
    }
}

/// Runs `case` under `nonce` (unique to this case) in `env` and judges it under `strictness`.
pub(crate) fn run_case(
    env: &Env<'_>,
    strictness: Strictness,
    case: &Case,
    nonce: &str,
) -> Result<CaseResult, PropError> {
    let built = case.build();
    let observed = drive::run(env, &built, case.client, nonce)?;
    let assertions = judge::judge(&built, &observed, &env.limits);
    let verdict = Verdict::worst(assertions.iter().map(|a| a.verdict)).under(strictness);
    Ok(CaseResult {
        case: case.clone(),
        built,
        observed,
        assertions,
        verdict,
        strictness,
    })
}

/// A nonce prefix unique to this run.
pub(crate) fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("prop{:x}{:x}", std::process::id(), nanos)
}

/// Runs cases: one at a time or a batch on worker threads.
pub(crate) struct CaseRunner<'a> {
    env: Env<'a>,
    strictness: Strictness,
    tag: String,
    count: AtomicU64,
}

impl<'a> CaseRunner<'a> {
    /// Runs cases in `env`, judged under `strictness`, with nonces unique to this runner.
    pub(crate) fn new(env: Env<'a>, strictness: Strictness) -> CaseRunner<'a> {
        CaseRunner {
            env,
            strictness,
            tag: run_tag(),
            count: AtomicU64::new(0),
        }
    }
}

/// What a batch found.
pub(crate) struct Batch {
    /// Cases run.
    pub run: usize,
    /// The failing case with the lowest index.
    pub failure: Option<(usize, CaseResult)>,
    /// What stopped the batch, if something did, and the first case it stopped.
    error: Option<(usize, Case, PropError)>,
}

impl Batch {
    /// The failing or stopped case with the lowest index.
    pub(crate) fn first_bad(&self) -> Option<(usize, &Case)> {
        let failed = self.failure.as_ref().map(|(i, r)| (*i, &r.case));
        let stopped = self.error.as_ref().map(|(i, c, _)| (*i, c));
        match (failed, stopped) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// The error that stopped the batch, noting in `report` the first case whose handoff
    /// failed (if the daemon died, it or a case running beside it killed it).
    pub(crate) fn stopped(
        &mut self,
        report: &mut PropReport,
        before: usize,
    ) -> Result<(), PropError> {
        match self.error.take() {
            None => Ok(()),
            Some((i, case, e)) => {
                if matches!(e, PropError::Handoff(_)) {
                    report.unreachable_from = Some((before + i, case));
                }
                Err(e)
            }
        }
    }
}

impl CaseRunner<'_> {
    /// Runs one case with a fresh nonce and judges it.
    pub(crate) fn run(&self, case: &Case) -> Result<CaseResult, PropError> {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        run_case(
            &self.env,
            self.strictness,
            case,
            &format!("{}-{n}", self.tag),
        )
    }

    /// Runs `cases`, `jobs` at a time, until one fails; every case before the failing one with
    /// the lowest index has run, so the failure found does not depend on timing.
    pub(crate) fn batch(
        &self,
        source: &mut (dyn FnMut() -> Option<Case> + Send),
        jobs: usize,
        report: &mut PropReport,
        log: &mut dyn Write,
    ) -> Batch {
        /// Completed cases between two progress lines.
        const PROGRESS_EVERY: usize = 250;
        // Cases are taken in order under the lock, so case `i` is the same whatever the timing.
        let source = Mutex::new((0usize, source));
        let stop = AtomicUsize::new(usize::MAX);
        let (tx, rx) = mpsc::channel::<(usize, Case, Result<CaseResult, PropError>)>();
        let mut failure: Option<(usize, CaseResult)> = None;
        let mut error: Option<(usize, Case, PropError)> = None;
        let mut run = 0;
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                let tx = tx.clone();
                let (source, stop) = (&source, &stop);
                scope.spawn(move || {
                    loop {
                        let (i, case) = {
                            let mut guard = source.lock().unwrap_or_else(|p| p.into_inner());
                            let (next, cases) = &mut *guard;
                            if *next > stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let Some(case) = cases() else { break };
                            *next += 1;
                            (*next - 1, case)
                        };
                        let result = self.run(&case);
                        if result.as_ref().map_or(true, CaseResult::failed) {
                            stop.fetch_min(i, Ordering::Relaxed);
                        }
                        if tx.send((i, case, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, case, result) in rx {
                match result {
                    Err(e) => {
                        if error.as_ref().is_none_or(|(j, _, _)| i < *j) {
                            error = Some((i, case, e));
                        }
                    }
                    Ok(r) => {
                        run += 1;
                        if run % PROGRESS_EVERY == 0 && failure.is_none() {
                            let _ = writeln!(log, "prop: {run} case(s) run");
                        }
                        note(report, &r);
                        if r.verdict == Verdict::NonStrict
                            && !r.failed()
                            && report.first_nonstrict.is_none()
                        {
                            report.first_nonstrict = Some(r);
                        } else if r.failed() && failure.as_ref().is_none_or(|(j, _)| i < *j) {
                            failure = Some((i, r));
                        }
                    }
                }
            }
        });
        Batch {
            run,
            failure,
            error,
        }
    }
}
