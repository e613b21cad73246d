//! A live progress line on stderr, wrapped around any reporter.
//!
//! indicatif draws it only when stderr is a terminal (and not `TERM=dumb`), so a run under CI
//! or with stderr redirected writes nothing extra. Report lines written to the same terminal
//! are printed with the line suspended, so they never interleave with it.

use std::io;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use crate::verdict::{RunSummary, ScenarioResult};

/// Wraps a reporter with a progress line: `[00:03] 12/42 scenarios · 1 failed · 3.2 unicode_emoji`.
pub struct Progress<R: Reporter> {
    inner: R,
    bar: ProgressBar,
    failed: usize,
}

impl<R: Reporter> Progress<R> {
    /// Draws on stderr (when it is a terminal).
    pub fn new(inner: R) -> Self {
        Self::with_target(inner, ProgressDrawTarget::stderr())
    }

    /// Draws on `target` (a hidden target draws nothing).
    pub fn with_target(inner: R, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        // The template is a constant; should it ever fail to parse, keep indicatif's default.
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} scenarios {wide_msg}")
        {
            bar.set_style(style);
        }
        Progress {
            inner,
            bar,
            failed: 0,
        }
    }

    /// The wrapped reporter back.
    pub fn into_inner(self) -> R {
        self.bar.finish_and_clear();
        self.inner
    }
}

impl<R: Reporter> Reporter for Progress<R> {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        self.bar.set_length(total as u64);
        self.bar.enable_steady_tick(Duration::from_millis(200));
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_start(total))
    }

    fn on_result(&mut self, result: &ScenarioResult) -> io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_result(result))?;
        if result.verdict.is_failure() {
            self.failed += 1;
        }
        let failed = match self.failed {
            0 => String::new(),
            n => format!("· {n} failed "),
        };
        self.bar
            .set_message(format!("{failed}· {} {}", result.id, result.name));
        self.bar.inc(1);
        Ok(())
    }

    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        self.bar.finish_and_clear();
        self.inner.on_finish(summary)
    }
}
