//! The proof that the suite catches every fault mode of the reference daemon, behind
//! `streamcheck mutation` and the test that runs it in `make check`. Only the bug modes
//! ([`Fault::bugs`]) are in it; the resource-abuse modes have tests of their own.
//!
//! [`expectation`] is the one table: each [`Fault`] with the scenarios that must catch it, the
//! assertion of each that names the bug, and the verdict it must give. [`run`] starts the
//! reference daemon once per fault mode (`streamcheck ref-daemon --fault NAME`) and runs the
//! suite against it, and once without a fault over the whole catalog. A mode is proven when
//! every one of its catchers gives its verdict on its assertion; the correct daemon when no
//! scenario is non-strict or failed and none was skipped. A caught-somewhere-else mode is not
//! proven: a catcher that stops catching means the scenario or the fault mode broke.
//!
//! [`Scope::Catchers`] runs only each mode's catchers (fast, and its table is the same on every
//! run); [`Scope::Full`] runs the whole catalog against every mode and also lists every other
//! scenario a mode trips (which for `crosstalk` depends on which scenarios happen to overlap).

mod render;
mod table;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use render::{human, json, markdown};
pub use table::{Catcher, Expectation, expectation};

use super::{DaemonCommand, MockOptions, SuiteConfig, SuiteError, SuiteRun, Target, catalog};
use crate::refdaemon::Fault;
use crate::verdict::{CauseGroup, Counts, ScenarioResult, Verdict};

/// How much of the catalog runs against each fault mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only the mode's catchers from the table.
    Catchers,
    /// The whole catalog.
    Full,
}

/// How to run the proof.
#[derive(Clone, Debug)]
pub struct MutationConfig {
    /// The streamcheck binary whose `ref-daemon` subcommand is the daemon under test.
    pub exe: PathBuf,
    /// Suite runs at once (each with its own daemon and mock).
    pub jobs: usize,
    /// How much runs against each fault mode (the correct daemon always gets the whole catalog).
    pub scope: Scope,
    /// Deadline of each stream: what a hanging fault mode costs.
    pub timeout: Duration,
    /// Delay between the mock's chunks of the default answer.
    pub chunk_delay: Duration,
    /// Set when the proof must stop (a signal): the runs in flight are interrupted, no more
    /// start.
    pub interrupt: Option<&'static crate::signals::Interrupt>,
}

impl MutationConfig {
    /// The defaults for `exe`: 4 runs at once, catchers only, 5 s per stream, 2 ms chunks.
    pub fn new(exe: PathBuf) -> MutationConfig {
        MutationConfig {
            exe,
            jobs: 4,
            scope: Scope::Catchers,
            timeout: Duration::from_secs(5),
            chunk_delay: Duration::from_millis(2),
            interrupt: None,
        }
    }
}

/// A scenario that did not pass: its verdict and the assertions that say why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caught {
    /// Scenario id, e.g. `11.1`.
    pub id: String,
    /// Scenario name, e.g. `split_1`.
    pub name: String,
    /// Its verdict: `NON-STRICT` or `FAILED`.
    pub verdict: Verdict,
    /// The assertions at `NON-STRICT` or worse, by name.
    pub assertions: Vec<String>,
}

/// One catcher of the table, and what it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatcherResult {
    /// The table's entry.
    pub catcher: Catcher,
    /// The scenario's id.
    pub id: &'static str,
    /// The scenario's verdict; `None` when it did not run.
    pub scenario_verdict: Option<Verdict>,
    /// Its assertion's verdict; `None` when it made no such assertion.
    pub assertion_verdict: Option<Verdict>,
}

impl CatcherResult {
    /// Whether the catcher caught the mode as the table says.
    pub fn holds(&self) -> bool {
        self.assertion_verdict == Some(self.catcher.verdict)
    }
}

/// What the suite made of one fault mode.
#[derive(Clone, Debug)]
pub struct ModeOutcome {
    /// The fault mode.
    pub fault: Fault,
    /// Its line of the table.
    pub expectation: Expectation,
    /// Each catcher of the table, with what it gave.
    pub catchers: Vec<CatcherResult>,
    /// Every scenario of the run at `NON-STRICT` or worse, in catalog order.
    pub caught_by: Vec<Caught>,
    /// What keeps this mode from being proven; empty when it is.
    pub problems: Vec<String>,
    /// The distinct causes the run's report opens with.
    pub causes: Vec<CauseGroup>,
}

impl ModeOutcome {
    /// Caught by every catcher for its reason, and the run went through.
    pub fn proven(&self) -> bool {
        self.problems.is_empty()
    }

    /// The scenarios that caught the mode besides its catchers.
    pub fn also(&self) -> impl Iterator<Item = &Caught> {
        self.caught_by
            .iter()
            .filter(|c| !self.catchers.iter().any(|k| k.catcher.scenario == c.name))
    }
}

/// What the suite made of the correct daemon.
#[derive(Clone, Debug)]
pub struct CorrectOutcome {
    /// Scenarios by verdict.
    pub counts: Counts,
    /// Scenarios at `NON-STRICT` or worse (none, for a correct daemon).
    pub caught_by: Vec<Caught>,
    /// What keeps it from passing; empty when it passes the whole catalog.
    pub problems: Vec<String>,
}

/// The whole proof.
#[derive(Clone, Debug)]
pub struct MutationReport {
    /// How much of the catalog ran against each fault mode.
    pub scope: Scope,
    /// Every bug mode ([`Fault::bugs`]), in declaration order.
    pub modes: Vec<ModeOutcome>,
    /// The daemon without a fault.
    pub correct: CorrectOutcome,
}

impl MutationReport {
    /// Every mode proven and the correct daemon clean.
    pub fn proven(&self) -> bool {
        self.correct.problems.is_empty() && self.modes.iter().all(ModeOutcome::proven)
    }

    /// Every problem, each prefixed with the mode it belongs to.
    pub fn problems(&self) -> Vec<String> {
        let correct = self
            .correct
            .problems
            .iter()
            .map(|p| format!("correct daemon: {p}"));
        let modes = self
            .modes
            .iter()
            .flat_map(|m| m.problems.iter().map(move |p| format!("{}: {p}", m.fault)));
        correct.chain(modes).collect()
    }

    /// 0 when proven, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.proven())
    }
}

/// Runs the suite against every fault mode and against the correct daemon, `config.jobs` runs
/// at once. An error means the correct daemon's run could not be made (the environment, not
/// a fault mode, is at fault); a fault mode's run that cannot be made is one of its problems.
pub fn run(config: &MutationConfig) -> Result<MutationReport, SuiteError> {
    if config.jobs == 0 {
        return Err(SuiteError::Usage("--jobs must be at least 1".to_owned()));
    }
    // The correct daemon first: it runs longest, and its failure ends the proof soonest.
    let plan: Vec<Option<Fault>> = std::iter::once(None)
        .chain(Fault::bugs().map(Some))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SuiteRun, SuiteError>>>> =
        Mutex::new(plan.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.min(plan.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(fault) = plan.get(i) else { break };
                    if config.interrupt.is_some_and(|i| i.is_raised()) {
                        break;
                    }
                    let run = super::run_suite(&suite_config(config, *fault));
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(run);
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter();
    // Every run is made once the scope has joined its workers; `None` cannot remain.
    let correct = match results.next().flatten() {
        Some(run) => correct_outcome(&run?),
        None => CorrectOutcome {
            counts: Counts::default(),
            caught_by: Vec::new(),
            problems: vec!["the run did not happen".to_owned()],
        },
    };
    let modes = Fault::bugs()
        .zip(results)
        .map(|(fault, run)| match run {
            Some(Ok(run)) => mode_outcome(fault, &run),
            Some(Err(e)) => not_run(fault, format!("the run could not be made: {e}")),
            None => not_run(fault, "the run did not happen".to_owned()),
        })
        .collect();
    Ok(MutationReport {
        scope: config.scope,
        modes,
        correct,
    })
}

/// The suite run for `fault` (`None`: the correct daemon, whole catalog).
fn suite_config(config: &MutationConfig, fault: Option<Fault>) -> SuiteConfig {
    let exe = shell_quote(&config.exe.to_string_lossy());
    let command = match fault {
        Some(f) => format!("{exe} ref-daemon --socket {{socket}} --fault {f}"),
        None => format!("{exe} ref-daemon --socket {{socket}}"),
    };
    let mut suite = SuiteConfig::new(Target::Command(DaemonCommand {
        socket: None,
        command,
        mock: MockOptions {
            chunk_delay: config.chunk_delay,
            ..MockOptions::default()
        },
        // Generous: several daemons start at once on a machine that may be busy.
        start_timeout: Duration::from_secs(30),
    }));
    suite.timeout = config.timeout;
    suite.interrupt = config.interrupt;
    if let (Some(f), Scope::Catchers) = (fault, config.scope) {
        suite.scenarios = expectation(f)
            .catchers
            .iter()
            .map(|c| c.scenario.to_owned())
            .collect();
    }
    suite
}

/// `s` as one `sh` word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn caught(scenarios: &[ScenarioResult]) -> Vec<Caught> {
    scenarios
        .iter()
        .filter(|s| s.skipped.is_none() && s.verdict >= Verdict::NonStrict)
        .map(|s| Caught {
            id: s.id.clone(),
            name: s.name.clone(),
            verdict: s.verdict,
            assertions: s
                .assertions_at_least(Verdict::NonStrict)
                .map(|a| a.name.clone())
                .collect(),
        })
        .collect()
}

fn not_run(fault: Fault, why: String) -> ModeOutcome {
    let expectation = expectation(fault);
    ModeOutcome {
        fault,
        expectation,
        catchers: expectation
            .catchers
            .iter()
            .map(|c| CatcherResult {
                catcher: *c,
                id: scenario_id(c.scenario),
                scenario_verdict: None,
                assertion_verdict: None,
            })
            .collect(),
        caught_by: Vec::new(),
        problems: vec![why],
        causes: Vec::new(),
    }
}

fn scenario_id(name: &str) -> &'static str {
    catalog()
        .iter()
        .find(|s| s.name == name)
        .map_or("?", |s| s.id)
}

fn mode_outcome(fault: Fault, run: &SuiteRun) -> ModeOutcome {
    let expectation = expectation(fault);
    let scenarios = &run.summary.scenarios;
    let mut problems = Vec::new();
    let mut catchers = Vec::new();
    for c in expectation.catchers {
        let id = scenario_id(c.scenario);
        let result = scenarios.iter().find(|s| s.name == c.scenario);
        let ran = result.filter(|s| s.skipped.is_none());
        let assertion = ran.and_then(|s| s.assertions.iter().find(|a| a.name == c.assertion));
        let entry = CatcherResult {
            catcher: *c,
            id,
            scenario_verdict: ran.map(|s| s.verdict),
            assertion_verdict: assertion.map(|a| a.verdict),
        };
        let at = format!("{id} {}", c.scenario);
        match (result, assertion) {
            _ if entry.holds() => {}
            (None, _) => problems.push(format!("{at} did not run")),
            (Some(s), _) if s.skipped.is_some() => problems.push(format!(
                "{at} was skipped: {}",
                s.skipped.as_deref().unwrap_or_default()
            )),
            (Some(_), None) => problems.push(format!(
                "{at} made no `{}` assertion, which names this mode's bug",
                c.assertion
            )),
            (Some(_), Some(a)) => problems.push(format!(
                "{at}: `{}` was {}, expected {} ({}): {}",
                c.assertion, a.verdict, c.verdict, expectation.reason, a.message
            )),
        }
        catchers.push(entry);
    }
    let caught_by = caught(scenarios);
    if caught_by.is_empty() {
        problems.push("no scenario caught it: every scenario passed".to_owned());
    }
    if let Some(failure) = &run.daemon_failure {
        problems.push(failure.clone());
    }
    ModeOutcome {
        fault,
        expectation,
        catchers,
        caught_by,
        problems,
        causes: run.summary.causes.clone(),
    }
}

fn correct_outcome(run: &SuiteRun) -> CorrectOutcome {
    let scenarios = &run.summary.scenarios;
    let mut problems: Vec<String> = scenarios
        .iter()
        .filter_map(|s| {
            if let Some(why) = &s.skipped {
                return Some(format!("{} {} was skipped: {why}", s.id, s.name));
            }
            let a = s.assertions_at_least(Verdict::NonStrict).next()?;
            Some(format!(
                "{} {} is {}: {}: {}",
                s.id, s.name, s.verdict, a.name, a.message
            ))
        })
        .collect();
    if scenarios.len() != catalog().len() {
        problems.push(format!(
            "{} of the catalog's {} scenarios ran",
            scenarios.len(),
            catalog().len()
        ));
    }
    if let Some(failure) = &run.daemon_failure {
        problems.push(failure.clone());
    }
    CorrectOutcome {
        counts: run.summary.counts,
        caught_by: caught(scenarios),
        problems,
    }
}

#[cfg(test)]
mod tests;
