//! The daemon under test died during a run: how, when, and the end of what it wrote. Reports
//! put it before everything else, and the results it spoiled name it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use serde::{Deserialize, Serialize};

use super::causes::known;
use super::{AssertionResult, ScenarioResult, Verdict};

/// The daemon under test died during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonDeath {
    /// Its PID.
    pub pid: u32,
    /// How it ended: "exited with status 1", "was killed by signal 9 (SIGKILL)", or "exited"
    /// when streamcheck did not start it and cannot know its status.
    pub how: String,
    /// When its death was noticed, as words that follow the headline: "while 1.2
    /// basic_content ran", "after 5 of 200 streams had started".
    pub during: Option<String>,
    /// The last lines of its output, when streamcheck started it.
    pub output_tail: Option<String>,
}

impl DaemonDeath {
    /// A daemon streamcheck started, dead with `status`.
    pub fn of_child(pid: u32, status: ExitStatus, output_tail: String) -> DaemonDeath {
        DaemonDeath {
            pid,
            how: describe_status(status),
            during: None,
            output_tail: Some(output_tail),
        }
    }

    /// A daemon given by `--daemon-pid`, gone.
    pub fn of_pid(pid: u32) -> DaemonDeath {
        DaemonDeath {
            pid,
            how: "exited (its status is its parent's to collect)".to_owned(),
            during: None,
            output_tail: None,
        }
    }

    /// Sets when the death was noticed (words that follow the headline).
    pub fn during(mut self, what: impl Into<String>) -> DaemonDeath {
        self.during = Some(what.into());
        self
    }

    /// One line: "the daemon (PID 7) exited with status 1 while 1.5 basic_content ran".
    pub fn headline(&self) -> String {
        let during = self
            .during
            .as_ref()
            .map(|d| format!(" {d}"))
            .unwrap_or_default();
        format!("the daemon (PID {}) {}{during}", self.pid, self.how)
    }

    /// The headline and the end of its output.
    pub fn message(&self) -> String {
        match &self.output_tail {
            Some(tail) => format!("{}; its output ends with:\n{tail}", self.headline()),
            None => self.headline(),
        }
    }

    /// Marks a result that failed while the daemon was dead or dying: its failures follow
    /// from the death, which its first assertion now says.
    pub fn attribute(&self, result: &mut ScenarioResult) {
        if result.skipped.is_some() || result.verdict < Verdict::Fail {
            return;
        }
        let note = AssertionResult::new(
            "daemon alive",
            Verdict::Fail,
            format!(
                "{}: the failures below follow from its death, not from this scenario",
                self.headline()
            ),
        );
        // One cause: the death, not the findings it spoiled.
        for a in &mut result.assertions {
            if a.verdict >= Verdict::NonStrict {
                a.cause = Some(known::DAEMON_DIED);
            }
        }
        result
            .assertions
            .insert(0, note.with_cause(known::DAEMON_DIED));
    }
}

/// "exited with status 1" or "was killed by signal 11 (SIGSEGV)".
pub fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            match signal_name(sig) {
                Some(name) => format!("was killed by signal {sig} ({name}{core})"),
                None => format!("was killed by signal {sig}{core}"),
            }
        }
        None => format!("ended ({status})"),
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_said_in_words() {
        assert_eq!(
            describe_status(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
        assert_eq!(
            describe_status(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "was killed by signal 11 (SIGSEGV, core dumped)"
        );
        assert_eq!(
            describe_status(ExitStatus::from_raw(libc::SIGKILL)),
            "was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn only_failed_results_are_attributed_to_the_death() {
        let death = DaemonDeath::of_pid(7).during("while 1.1 basic_response ran");
        assert_eq!(
            death.headline(),
            "the daemon (PID 7) exited (its status is its parent's to collect) while 1.1 \
             basic_response ran"
        );
        let mut failed = ScenarioResult::new("1.2", "b", "basic", "d")
            .with_assertions([AssertionResult::new("content", Verdict::Fail, "empty")])
            .judged(Default::default());
        death.attribute(&mut failed);
        assert_eq!(failed.assertions[0].name, "daemon alive");
        let mut passed = ScenarioResult::new("1.3", "c", "basic", "d")
            .with_assertions([AssertionResult::pass("content", "same")])
            .judged(Default::default());
        death.attribute(&mut passed);
        assert_eq!(passed.assertions.len(), 1);
    }
}
