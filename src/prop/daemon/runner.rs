//! `prop` end to end: set up, replay persisted cases, generate cases with a seeded proptest
//! [`TestRunner`], run them concurrently on one ring, shrink the first failure, persist it.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::handoff::{PairKind, SocketType};
use crate::ring::{RingConfig, RingThread};
use crate::scenario::{DaemonProcess, Target};
use crate::signals::{Interrupt, OnInterrupt, Signal};
use crate::transcript::ReadLimits;
use crate::verdict::{DaemonDeath, Strictness};

use super::batch::{CaseResult, CaseRunner, note};
use super::case::Case;
use super::drive::{Env, Limits};
use super::shrink::{self, ShrinkProgress, ShrinkStats};
use super::{PropError, regressions, render, strategy, target};

/// Where failing cases are kept unless told otherwise (relative to the working directory).
pub const DEFAULT_REGRESSIONS: &str = "proptest-regressions/prop-daemon.txt";

/// Everything a `prop` run needs.
#[derive(Debug, Clone)]
pub struct PropConfig {
    /// The daemon: running (with its mock at a URL), or started beside an embedded mock.
    pub target: Target,
    /// Generated cases to run (after the persisted ones).
    pub cases: usize,
    /// Seed of the case generator: the same seed generates the same cases.
    pub seed: u64,
    /// How long shrinking a failure may take.
    pub max_shrink_time: Duration,
    /// How shrinking reports its steps on the log.
    pub shrink_progress: ShrinkProgress,
    /// Cases run at once.
    pub jobs: usize,
    /// Time limits of each case.
    pub limits: Limits,
    /// `Strict`: non-strict findings fail and are shrunk like failures.
    pub strictness: Strictness,
    /// The regression file: its cases run first, and a new failure is appended. `None`:
    /// neither.
    pub regressions: Option<PathBuf>,
    /// Run only this case (`--replay`), nothing generated or persisted.
    pub replay: Option<Case>,
    /// The socket type to connect with.
    pub socket_type: SocketType,
    /// The client socket handed off.
    pub pair: PairKind,
    /// How streams are read: parser limits and budgets.
    pub read: ReadLimits,
    /// Set when the run must stop (a signal): no more cases start, the cases in flight are
    /// closed and not judged, and the report says so.
    pub interrupt: Option<&'static Interrupt>,
}

impl PropConfig {
    /// The defaults for `target`: 200 cases, seed 0, 60 s of shrinking, 4 jobs, the default
    /// limits, lenient, [`DEFAULT_REGRESSIONS`], SEQPACKET and a TCP pair as Apache does.
    pub fn new(target: Target) -> PropConfig {
        PropConfig {
            target,
            cases: 200,
            seed: 0,
            max_shrink_time: Duration::from_secs(60),
            shrink_progress: ShrinkProgress::Quiet,
            jobs: 4,
            limits: Limits::default(),
            strictness: Strictness::Lenient,
            regressions: Some(PathBuf::from(DEFAULT_REGRESSIONS)),
            replay: None,
            socket_type: SocketType::default(),
            pair: PairKind::default(),
            read: ReadLimits::default(),
            interrupt: None,
        }
    }
}

/// Where a failing case came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` of the regression file.
    Persisted {
        /// Line number.
        line: usize,
    },
    /// Generated case `index` (from 0) of the seed.
    Generated {
        /// Index.
        index: usize,
    },
    /// `--replay`.
    Replay,
}

/// A failure, shrunk.
#[derive(Debug)]
pub struct Failure {
    /// Where the failing case came from.
    pub origin: Origin,
    /// The case as first found.
    pub original: Case,
    /// Its writes (cancel tail excepted).
    pub original_writes: usize,
    /// The smallest failing case found, run.
    pub minimal: CaseResult,
    /// How shrinking went (generated cases only).
    pub shrink: Option<ShrinkStats>,
    /// Replays of the minimal case that failed the same way, of how many.
    pub reproduced: (usize, usize),
    /// The regression file the case was appended to, if it was.
    pub persisted: Option<PathBuf>,
    /// The daemon did nothing with the case (no byte, no upstream request): it was neither
    /// shrunk, replayed nor persisted.
    pub unresponsive: bool,
}

/// How a run went.
#[derive(Debug)]
pub struct PropReport {
    /// What the daemon is called.
    pub daemon: String,
    /// The generator's seed.
    pub seed: u64,
    /// Whether the run was one `--replay`ed case.
    pub replayed: bool,
    /// Persisted cases run.
    pub persisted: usize,
    /// Generated cases run.
    pub generated: usize,
    /// Cases whose worst finding was non-strict (not failures under the run's strictness).
    pub nonstrict: usize,
    /// The first of them.
    pub first_nonstrict: Option<CaseResult>,
    /// The failure, if a case failed.
    pub failure: Option<Failure>,
    /// The daemon died: how, and the end of its output.
    pub daemon_death: Option<DaemonDeath>,
    /// The first case that failed when the daemon died (it, or one running beside it, killed
    /// it): where it came from, the case, and the command that replays it.
    pub death_case: Option<(String, Case, String)>,
    /// The first case whose handoff failed, when a run stopped on one (with how many cases
    /// had run before it): with the daemon dead, it or a case running beside it killed it.
    pub unreachable_from: Option<(usize, Case)>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The signal that interrupted the run.
    pub interrupted: Option<Signal>,
}

impl PropReport {
    /// 0 when every case passed; 1 when one failed or the daemon died; 128 + the signal's
    /// number when a signal interrupted the run.
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted {
            return signal.exit_code();
        }
        u8::from(self.failure.is_some() || self.daemon_death.is_some())
    }
}

/// Runs cases against a daemon. Progress lines go to `log`.
pub fn run(config: &PropConfig, log: &mut dyn Write) -> Result<PropReport, PropError> {
    if config.jobs == 0 {
        return Err(PropError::Usage("--jobs must be at least 1".into()));
    }
    let started = Instant::now();
    let mut running = target::start(&config.target)?;
    // Declared after `running`, so the daemon stops before the mock does.
    let daemon = RefCell::new(running.daemon_process());
    let death = || daemon.borrow_mut().as_mut().and_then(DaemonProcess::death);
    let ring = RingThread::spawn(RingConfig::default()).map_err(PropError::Handoff)?;
    // Interrupted, the cases in flight end at once instead of at their deadlines.
    let stopper = config.interrupt.map(|interrupt| {
        let ring = ring.clone();
        OnInterrupt::spawn(interrupt, move || ring.shut_down())
    });
    let env = Env {
        ring,
        mock: &running.mock,
        socket: target::socket_of(&running),
        socket_type: config.socket_type,
        pair: config.pair,
        limits: config.limits,
        read: config.read,
    };
    let runner = CaseRunner::new(env, config.strictness);
    let mut report = PropReport {
        daemon: running.name.clone(),
        seed: config.seed,
        replayed: false,
        persisted: 0,
        generated: 0,
        nonstrict: 0,
        first_nonstrict: None,
        failure: None,
        daemon_death: None,
        death_case: None,
        unreachable_from: None,
        elapsed: Duration::ZERO,
        interrupted: None,
    };
    let outcome = phases(config, &runner, &mut report, log, &death);
    drop(runner);
    drop(stopper);
    report.interrupted = interrupted(config);
    if report.interrupted.is_some() {
        // What the closed streams and the stopped ring did is not the daemon's doing.
    } else if let Err(e) = outcome {
        // A daemon that died explains a failed handoff better than the handoff error does.
        match death() {
            Some(d) if matches!(e, PropError::Handoff(_)) => report.daemon_death = Some(d),
            _ => return Err(e),
        }
    }
    if report.daemon_death.is_none() {
        report.daemon_death = death();
    }
    drop(daemon);
    drop(running);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The signal that interrupted the run, if one did.
fn interrupted(config: &PropConfig) -> Option<Signal> {
    config.interrupt.and_then(Interrupt::signal)
}

/// How long a failed case waits for a daemon that may be exiting: its streams end as it
/// closes its files, a moment before its exit can be collected.
const EXIT_SETTLE: Duration = Duration::from_millis(50);

/// If the daemon died while `case` (from `origin`) ran: records the death and the case in
/// `report` and returns true: the run stops there, nothing is shrunk against a dead daemon.
fn died_with(
    config: &PropConfig,
    report: &mut PropReport,
    death: &dyn Fn() -> Option<DaemonDeath>,
    origin: String,
    case: &Case,
) -> bool {
    let Some(d) = death().or_else(|| {
        std::thread::sleep(EXIT_SETTLE);
        death()
    }) else {
        return false;
    };
    report.daemon_death = Some(d.during(format!("while {origin} ran")));
    let replay = render::replay_command(&config.target, case, config.strictness);
    report.death_case = Some((origin, case.clone(), replay));
    true
}

/// Replay, persisted cases, generated cases: stops at the first phase with a failure, when
/// the daemon died, or when interrupted (the cases cut then are not judged).
fn phases(
    config: &PropConfig,
    runner: &CaseRunner<'_>,
    report: &mut PropReport,
    log: &mut dyn Write,
    death: &dyn Fn() -> Option<DaemonDeath>,
) -> Result<(), PropError> {
    if let Some(case) = &config.replay {
        let result = runner.run(case);
        if result.as_ref().map_or(true, CaseResult::failed)
            && died_with(config, report, death, "the replayed case".to_owned(), case)
        {
            return Ok(());
        }
        let result = result?;
        report.replayed = true;
        note(report, &result);
        if result.failed() {
            let (failure, stopped) = confirm(runner, Origin::Replay, case, result, None);
            report.failure = Some(failure);
            return stopped.map_or(Ok(()), Err);
        }
        return Ok(());
    }
    if let Some(path) = &config.regressions {
        let persisted = regressions::load(path)?;
        if !persisted.is_empty() {
            let _ = writeln!(
                log,
                "prop: replaying {} persisted case(s) from {}",
                persisted.len(),
                path.display()
            );
        }
        let mut cases = persisted.iter().map(|p| p.case.clone());
        let mut next = || cases.next().filter(|_| interrupted(config).is_none());
        let mut batch = runner.batch(&mut next, config.jobs, report, log);
        report.persisted = batch.run;
        if interrupted(config).is_some() {
            return Ok(());
        }
        if let Some((i, case)) = batch.first_bad() {
            let origin = format!(
                "persisted case (regression file line {})",
                persisted[i].line
            );
            if died_with(config, report, death, origin, case) {
                return Ok(());
            }
        }
        batch.stopped(report, 0)?;
        if let Some((i, result)) = batch.failure {
            let origin = Origin::Persisted {
                line: persisted[i].line,
            };
            let (failure, stopped) = confirm(runner, origin, &persisted[i].case, result, None);
            report.failure = Some(failure);
            return stopped.map_or(Ok(()), Err);
        }
    }
    let _ = writeln!(
        log,
        "prop: running {} generated case(s), seed {}, {} at a time",
        config.cases, config.seed, config.jobs
    );
    let mut trees = generator(config.seed);
    let mut generated = 0;
    let mut next = || {
        (generated < config.cases && interrupted(config).is_none()).then(|| {
            generated += 1;
            trees.next().map(|tree| tree.current())
        })?
    };
    let mut batch = runner.batch(&mut next, config.jobs, report, log);
    report.generated = batch.run;
    if interrupted(config).is_some() {
        return Ok(());
    }
    if let Some((i, case)) = batch.first_bad()
        && died_with(config, report, death, format!("generated case {i}"), case)
    {
        return Ok(());
    }
    batch.stopped(report, report.persisted)?;
    let Some((index, first)) = batch.failure else {
        return Ok(());
    };
    if first.unresponsive() {
        // Nothing to learn from replays: the daemon did nothing at all with this case.
        let _ = writeln!(
            log,
            "prop: case {index} failed: the daemon wrote nothing and called no upstream; not \
             shrinking"
        );
        let case = first.case.clone();
        let origin = Origin::Generated { index };
        report.failure = Some(confirm(runner, origin, &case, first, None).0);
        return Ok(());
    }
    let original_writes = first.built.generated_writes();
    let broke: Vec<String> = first.broken_names().into_iter().collect();
    let _ = writeln!(
        log,
        "prop: case {index} failed ({}); shrinking for at most {:.0} s",
        broke.join(", "),
        config.max_shrink_time.as_secs_f64()
    );
    // The generator is deterministic: generating the first `index + 1` trees again gives
    // back the failing case's value tree, without keeping every tree of the run.
    let mut tree = generator(config.seed)
        .nth(index)
        .filter(|tree| tree.current() == first.case)
        .ok_or_else(|| {
            PropError::Usage(format!(
                "case {index} of seed {} did not come out the same a second time; the case \
                 generator must be deterministic",
                config.seed
            ))
        })?;
    let original = first.case.clone();
    let (minimal, stats, stopped) = shrink::shrink(
        runner,
        &mut tree,
        first,
        config.max_shrink_time,
        config.shrink_progress,
        log,
    );
    let (mut failure, unconfirmed) = confirm(
        runner,
        Origin::Generated { index },
        &original,
        minimal,
        Some(stats),
    );
    failure.original_writes = original_writes;
    if let Some(path) = config
        .regressions
        .as_ref()
        .filter(|_| !failure.unresponsive)
    {
        let broke: Vec<String> = failure.minimal.broken_names().into_iter().collect();
        let now = crate::verdict::rfc3339::format(SystemTime::now());
        let when = now.get(..10).unwrap_or(&now);
        let note_line = format!(
            "{} broke against `{}` (seed {}, case {index}; {when})",
            broke.join(", "),
            report.daemon,
            config.seed
        );
        if regressions::append(path, &failure.minimal.case, &note_line)? {
            failure.persisted = Some(path.clone());
        }
    }
    report.failure = Some(failure);
    // A failure found and kept, then the daemon stopped answering: the run says both.
    stopped.or(unconfirmed).map_or(Ok(()), Err)
}

/// Replays the minimal case to see how reliably it fails (unless the daemon did nothing with
/// it), and makes the [`Failure`]; also returns the error that cut the replays short, if one
/// did.
fn confirm(
    runner: &CaseRunner<'_>,
    origin: Origin,
    original: &Case,
    minimal: CaseResult,
    shrink: Option<ShrinkStats>,
) -> (Failure, Option<PropError>) {
    const REPLAYS: usize = 3;
    let signature = minimal.signature();
    let (mut same, mut tried, mut stopped) = (0, 0, None);
    let unresponsive = minimal.unresponsive();
    for _ in 0..if unresponsive { 0 } else { REPLAYS } {
        match runner.run(&minimal.case) {
            Ok(again) => {
                tried += 1;
                same += usize::from(again.fails_like(&signature));
            }
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    let failure = Failure {
        origin,
        original: original.clone(),
        original_writes: minimal.built.generated_writes(),
        minimal,
        shrink,
        reproduced: (same, tried),
        persisted: None,
        unresponsive,
    };
    (failure, stopped)
}

/// The generator's 32-byte ChaCha seed for `seed`.
pub fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (k, part) in bytes.chunks_exact_mut(8).enumerate() {
        let word = seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        part.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// The seeded stream of value trees a run's cases come from.
struct Generator<S> {
    runner: TestRunner,
    strategy: S,
}

/// The generator of `seed`.
fn generator(seed: u64) -> Generator<impl Strategy<Value = Case> + Send> {
    Generator {
        runner: TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
        ),
        strategy: strategy::case(),
    }
}

impl<S: Strategy<Value = Case>> Iterator for Generator<S> {
    type Item = S::Tree;

    /// The next tree; `None` only if the strategy gave up, which [`strategy::case`] (no
    /// filters) never does.
    fn next(&mut self) -> Option<Self::Item> {
        self.strategy.new_tree(&mut self.runner).ok()
    }
}
