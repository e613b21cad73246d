//! A live progress line on stderr, wrapped around any reporter.
//!
//! indicatif draws it only when stderr is a terminal (and not `TERM=dumb`), so a run under CI
//! or with stderr redirected writes nothing extra. Report lines written to the same terminal
//! are printed with the line suspended, so they never interleave with it.

use std::io;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use super::text::safe;
use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult};

/// Wraps a reporter with a progress line: `[00:03] 12/42 scenarios · 1 FAILED · 3.2 unicode_emoji`.
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
        // Drawn at once, then redrawn by indicatif's ticker thread: with a steady tick, updates
        // themselves do not draw, and a short run could otherwise end before the first tick.
        self.bar.force_draw();
        self.bar.enable_steady_tick(Duration::from_millis(200));
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_start(total))
    }

    fn on_result(&mut self, result: &ScenarioResult) -> io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_result(result))?;
        if result.failed() {
            self.failed += 1;
        }
        let failed = match self.failed {
            0 => String::new(),
            n => format!("· {n} FAILED "),
        };
        self.bar.set_message(format!(
            "{failed}· {} {}",
            safe(&result.id),
            safe(&result.name)
        ));
        self.bar.inc(1);
        Ok(())
    }

    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        self.bar.finish_and_clear();
        self.inner.on_finish(summary)
    }

    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.on_daemon_death(death))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::human::Human;
    use crate::verdict::{AssertionResult, Strictness, Verdict};
    use std::time::SystemTime;

    #[test]
    fn forwards_everything_to_the_wrapped_reporter() {
        let failed = ScenarioResult::new("1.1", "basic_response", "basic", "d")
            .with_assertions([AssertionResult::new("x", Verdict::Fail, "broken")])
            .judged(Strictness::Lenient);
        let summary = RunSummary::new(
            "sock",
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            Strictness::Lenient,
            vec![failed.clone()],
        );
        let mut progress =
            Progress::with_target(Human::new(Vec::new(), false), ProgressDrawTarget::hidden());
        progress.on_start(1).unwrap();
        progress.on_result(&failed).unwrap();
        assert_eq!(progress.failed, 1);
        assert_eq!(progress.bar.position(), 1);
        assert_eq!(progress.bar.message(), "· 1 FAILED · 1.1 basic_response");
        progress.on_finish(&summary).unwrap();
        let text = String::from_utf8(progress.into_inner().into_inner()).unwrap();
        assert!(text.starts_with("streamcheck: 1 scenario\n"), "{text}");
        assert!(text.contains("FAILED x: broken"), "{text}");
        assert!(
            text.ends_with("0 OK, 0 INFORMATIONAL, 0 NON-STRICT, 1 FAILED, 0 skipped\nFAILED: 1.1 basic_response\n"),
            "{text}"
        );
    }
}
