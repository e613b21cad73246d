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
use super::case::Case;
use super::runner::{CaseResult, CaseRunner};

/// Most candidates tried, whatever the time budget.
const MAX_STEPS: usize = 2_000;

/// How shrinking went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkStats {
    /// Candidates run against the daemon.
    pub steps: usize,
    /// Candidates that still failed (each became the new smallest).
    pub accepted: usize,
    /// Time spent.
    pub elapsed: Duration,
    /// Whether shrinking ran to its end (false: the budget ran out first).
    pub complete: bool,
}

/// Shrinks `tree`, whose current value failed as `first`; returns the smallest failing case.
pub(crate) fn shrink(
    runner: &CaseRunner<'_>,
    tree: &mut impl ValueTree<Value = Case>,
    first: CaseResult,
    budget: Duration,
    log: &mut dyn Write,
) -> Result<(CaseResult, ShrinkStats), PropError> {
    let started = Instant::now();
    let signature = first.signature();
    let mut best = first;
    let mut tried: HashMap<String, bool> = HashMap::new();
    tried.insert(best.case.to_json(), true);
    let mut stats = ShrinkStats {
        steps: 0,
        accepted: 0,
        elapsed: Duration::ZERO,
        complete: false,
    };
    let mut more = tree.simplify();
    while more {
        if started.elapsed() >= budget || stats.steps >= MAX_STEPS {
            break;
        }
        let candidate = tree.current();
        let key = candidate.to_json();
        let fails = match tried.get(&key) {
            Some(&fails) => fails,
            None => {
                stats.steps += 1;
                let result = runner.run(&candidate)?;
                let fails = result.fails_like(&signature);
                tried.insert(key, fails);
                if fails {
                    stats.accepted += 1;
                    let _ = writeln!(
                        log,
                        "prop: shrink step {}: still fails with {} write(s), {} chunk(s)",
                        stats.steps,
                        result.built.generated_writes(),
                        result.case.chunks.len()
                    );
                    best = result;
                }
                fails
            }
        };
        more = if fails {
            tree.simplify()
        } else {
            tree.complicate()
        };
        stats.complete = !more;
    }
    // Then plain edits proptest's value tree does not make, until none fails any more.
    'pass: while stats.complete {
        for candidate in best.case.simpler() {
            if started.elapsed() >= budget || stats.steps >= MAX_STEPS {
                stats.complete = false;
                break 'pass;
            }
            let key = candidate.to_json();
            if tried.contains_key(&key) {
                continue;
            }
            stats.steps += 1;
            let result = runner.run(&candidate)?;
            let fails = result.fails_like(&signature);
            tried.insert(key, fails);
            if fails {
                stats.accepted += 1;
                best = result;
                continue 'pass;
            }
        }
        break;
    }
    stats.elapsed = started.elapsed();
    Ok((best, stats))
}
