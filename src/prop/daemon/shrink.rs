//! Shrinking a failing case with proptest's value tree, one candidate at a time against the
//! daemon, then with [`Case::simpler`]'s plain edits, within a time budget.
//!
//! A candidate counts as failing only if it breaks at least one of the invariants the original
//! failure broke, no more mildly ([`CaseResult::fails_like`]), so shrinking cannot wander from
//! one bug to another (or to a rare timing failure). Candidates already tried are not run
//! again.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;

use super::PropError;
use super::batch::{CaseResult, CaseRunner};
use super::case::Case;

/// Most candidates tried, whatever the time budget.
const MAX_STEPS: usize = 2_000;

/// How shrinking reports the candidates that still fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShrinkProgress {
    /// Nothing per step: the summary says how shrinking went.
    #[default]
    Quiet,
    /// One line, rewritten in place after each step (for a terminal).
    InPlace,
    /// A line per step (`--verbose`).
    Steps,
}

/// How shrinking went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkStats {
    /// Candidates run against the daemon.
    pub steps: usize,
    /// Candidates that still failed (each became the new smallest).
    pub accepted: usize,
    /// Time spent.
    pub elapsed: Duration,
    /// Whether shrinking ran to its end (false: the budget ran out, or an error stopped it).
    pub complete: bool,
}

/// Shrinks `tree`, whose current value failed as `first`; returns the smallest failing case
/// found, and the error that stopped shrinking early, if one did (e.g. the daemon died).
pub(crate) fn shrink(
    runner: &CaseRunner<'_>,
    tree: &mut impl ValueTree<Value = Case>,
    first: CaseResult,
    budget: Duration,
    progress: ShrinkProgress,
    log: &mut dyn Write,
) -> (CaseResult, ShrinkStats, Option<PropError>) {
    let mut s = Shrinker {
        runner,
        progress,
        started: Instant::now(),
        budget,
        signature: first.signature(),
        tried: HashMap::from([(first.case.to_json(), true)]),
        best: first,
        stats: ShrinkStats {
            steps: 0,
            accepted: 0,
            elapsed: Duration::ZERO,
            complete: false,
        },
    };
    let result = s.run(tree, log);
    if progress == ShrinkProgress::InPlace && s.stats.accepted > 0 {
        // Erase the line: the summary follows.
        let _ = write!(log, "\r\x1b[K");
        let _ = log.flush();
    }
    s.stats.elapsed = s.started.elapsed();
    (s.best, s.stats, result.err())
}

struct Shrinker<'r, 'a> {
    runner: &'r CaseRunner<'a>,
    progress: ShrinkProgress,
    started: Instant,
    budget: Duration,
    signature: Vec<(String, crate::verdict::Verdict)>,
    tried: HashMap<String, bool>,
    best: CaseResult,
    stats: ShrinkStats,
}

impl Shrinker<'_, '_> {
    fn out_of_budget(&self) -> bool {
        self.started.elapsed() >= self.budget || self.stats.steps >= MAX_STEPS
    }

    /// Whether `candidate` fails like the original (from memory if it was tried); a failing
    /// one becomes the best.
    fn fails(&mut self, candidate: &Case, log: &mut dyn Write) -> Result<bool, PropError> {
        let key = candidate.to_json();
        if let Some(&fails) = self.tried.get(&key) {
            return Ok(fails);
        }
        self.stats.steps += 1;
        let result = self.runner.run(candidate)?;
        let fails = result.fails_like(&self.signature);
        self.tried.insert(key, fails);
        if fails {
            self.stats.accepted += 1;
            let line = format!(
                "prop: shrink step {}: still fails with {} write(s), {} chunk(s)",
                self.stats.steps,
                result.built.generated_writes(),
                result.case.chunks.len()
            );
            match self.progress {
                ShrinkProgress::Quiet => {}
                ShrinkProgress::InPlace => {
                    let _ = write!(log, "\r\x1b[K{line}");
                    let _ = log.flush();
                }
                ShrinkProgress::Steps => {
                    let _ = writeln!(log, "{line}");
                }
            }
            self.best = result;
        }
        Ok(fails)
    }

    fn run(
        &mut self,
        tree: &mut impl ValueTree<Value = Case>,
        log: &mut dyn Write,
    ) -> Result<(), PropError> {
        let mut more = tree.simplify();
        while more {
            if self.out_of_budget() {
                return Ok(());
            }
            more = if self.fails(&tree.current(), log)? {
                tree.simplify()
            } else {
                tree.complicate()
            };
        }
        // Then plain edits proptest's value tree does not make, until none fails any more.
        'pass: loop {
            for candidate in self.best.case.simpler() {
                if self.out_of_budget() {
                    return Ok(());
                }
                if !self.tried.contains_key(&candidate.to_json()) && self.fails(&candidate, log)? {
                    continue 'pass;
                }
            }
            self.stats.complete = true;
            return Ok(());
        }
    }
}
