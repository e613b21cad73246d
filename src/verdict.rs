//! Assertions and verdicts: what a run found, as data.
//!
//! Scenario code judges a recorded stream with the helpers in [`check`], each returning one
//! [`AssertionResult`]. A [`ScenarioResult`] gathers them with the stream's [`Timings`] and, when
//! something went wrong, the bytes on the wire ([`WireDump`]); a [`RunSummary`] gathers the
//! scenarios. Reporters (`crate::report`) only format these values, so every output format
//! says the same thing.
//!
//! Four verdicts, ordered by severity, so that a run can say more than pass or fail: a tolerated
//! deviation and a plain fact are reported without failing the run.
//!
//! | verdict | report label | meaning |
//! |---|---|---|
//! | [`Verdict::Pass`] | `OK` | the daemon did what the protocol requires |
//! | [`Verdict::Informational`] | `INFORMATIONAL` | a fact worth knowing, neither right nor wrong |
//! | [`Verdict::NonStrict`] | `NON-STRICT` | a tolerated deviation; `--strict` makes it a failure |
//! | [`Verdict::Fail`] | `FAILED` | the daemon is wrong |
//!
//! Every finding names its [`Cause`], a stable key shared by every finding of that kind;
//! [`causes_of`] groups a run's findings into the distinct causes a report opens with.
//!
//! A scenario's verdict is the worst of its assertions' ([`Verdict::worst`]), after
//! [`Strictness`] is applied; a run exits 0 unless a scenario failed ([`RunSummary::exit_code`]).
//!
//! Units: every duration and timestamp offset in this module is in nanoseconds (`u64`, fields
//! named `*_ns`), taken from `crate::clock::monotonic_ns`.

#![deny(missing_docs)]

pub mod causes;
pub mod check;
mod death;
mod render;
pub mod timeline;
mod timing;
mod wire;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use causes::{Cause, CauseGroup, causes_of};
pub use death::{DaemonDeath, describe_status};
pub use render::escape_bytes;
pub use timeline::Timeline;
pub use timing::{Spread, Timings};
pub use wire::{Omitted, WireChunk, WireDump, WireLimits, WireRecorder};

/// How a check, a scenario or a run came out, ordered by severity
/// (`Pass < Informational < NonStrict < Fail`).
///
/// Serialised with the report labels: `"OK"`, `"INFORMATIONAL"`, `"NON-STRICT"`, `"FAILED"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// The daemon did what the protocol requires.
    #[serde(rename = "OK")]
    Pass,
    /// A fact about the daemon, reported without judging it.
    #[serde(rename = "INFORMATIONAL")]
    Informational,
    /// A deviation that real clients tolerate; a failure under `--strict`.
    #[serde(rename = "NON-STRICT")]
    NonStrict,
    /// The daemon is wrong.
    #[serde(rename = "FAILED")]
    Fail,
}

impl Verdict {
    /// Every verdict, least severe first.
    pub const ALL: [Verdict; 4] = [
        Verdict::Pass,
        Verdict::Informational,
        Verdict::NonStrict,
        Verdict::Fail,
    ];

    /// The label used in every report: `OK`, `INFORMATIONAL`, `NON-STRICT`, `FAILED`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "OK",
            Verdict::Informational => "INFORMATIONAL",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Fail => "FAILED",
        }
    }

    /// The most severe of `verdicts`; [`Verdict::Pass`] when there are none.
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or(Verdict::Pass)
    }

    /// This verdict as it counts under `strictness`: `--strict` turns non-strict into fail.
    pub fn under(self, strictness: Strictness) -> Verdict {
        match (self, strictness) {
            (Verdict::NonStrict, Strictness::Strict) => Verdict::Fail,
            (v, _) => v,
        }
    }

    /// Whether this verdict fails a run.
    pub fn is_failure(self) -> bool {
        self == Verdict::Fail
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether tolerated deviations are tolerated (`Lenient`, the default) or fail (`--strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strictness {
    /// Non-strict findings stay non-strict.
    #[default]
    Lenient,
    /// Non-strict findings fail (`--strict`).
    Strict,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionResult {
    /// What was checked, short and stable (e.g. `content`, `status`, `header Content-Type`).
    pub name: String,
    /// How the check came out, before `--strict` is applied.
    pub verdict: Verdict,
    /// What happened, in words a daemon author can act on.
    pub message: String,
    /// What a correct daemon produces, rendered for reading (see [`escape_bytes`]).
    pub expected: Option<String>,
    /// What this daemon produced, rendered the same way.
    pub received: Option<String>,
    /// The kind of defect this finding shows, shared by every finding of that kind, so that a
    /// report can open with the distinct causes ([`causes_of`]). `None` on a passing check; a
    /// finding without one is grouped by its name.
    #[serde(default)]
    pub cause: Option<Cause>,
}

impl AssertionResult {
    /// A result with the given verdict and message, without expected/received values.
    pub fn new(name: impl Into<String>, verdict: Verdict, message: impl Into<String>) -> Self {
        AssertionResult {
            name: name.into(),
            verdict,
            message: message.into(),
            expected: None,
            received: None,
            cause: None,
        }
    }

    /// A passing result.
    pub fn pass(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(name, Verdict::Pass, message)
    }

    /// Attaches what a correct daemon produces.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Attaches what this daemon produced.
    pub fn with_received(mut self, received: impl Into<String>) -> Self {
        self.received = Some(received.into());
        self
    }

    /// Names the kind of defect this finding shows (kept only on a finding: a passing check
    /// has no cause).
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = (self.verdict > Verdict::Informational).then_some(cause);
        self
    }

    /// The cause this finding is grouped under: its own, or one named after the check.
    pub fn cause_or_default(&self) -> Cause {
        self.cause
            .clone()
            .unwrap_or_else(|| Cause::new(format!("check:{}", self.name), self.name.clone()))
    }
}

/// One scenario's outcome: its identity, its assertions, its timings and, when it went wrong,
/// the bytes on the wire.
///
/// Build it with [`ScenarioResult::new`], add assertions, timings and the wire dump, then call
/// [`ScenarioResult::judged`] to set the verdict; or use [`ScenarioResult::skipped`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Case number, `"<category>.<case>"`, e.g. `"3.2"`.
    pub id: String,
    /// Scenario name, e.g. `unicode_emoji`.
    pub name: String,
    /// Category, e.g. `unicode`.
    pub category: String,
    /// One sentence: what the scenario checks.
    pub description: String,
    /// The worst of the assertions' verdicts under the run's strictness. A skipped scenario is
    /// `OK`: it cannot fail a run; `skipped` says it did not run.
    pub verdict: Verdict,
    /// Every check made, in order.
    pub assertions: Vec<AssertionResult>,
    /// Stream timings, in ns.
    pub timings: Timings,
    /// Wall time the scenario took, in ns.
    pub elapsed_ns: u64,
    /// The bytes on the wire; kept only when the verdict is `NON-STRICT` or `FAILED`.
    pub wire: Option<WireDump>,
    /// Why the scenario did not run, or did not finish (an interrupted run), when so.
    pub skipped: Option<String>,
    /// The stream on one time axis, for the HTML report; not in the JSON report.
    #[serde(skip)]
    pub timeline: Option<Timeline>,
}

impl ScenarioResult {
    /// A scenario with no assertions yet (verdict `OK` until [`ScenarioResult::judged`]).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        category: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        ScenarioResult {
            id: id.into(),
            name: name.into(),
            category: category.into(),
            description: description.into(),
            verdict: Verdict::Pass,
            assertions: Vec::new(),
            timings: Timings::default(),
            elapsed_ns: 0,
            wire: None,
            skipped: None,
            timeline: None,
        }
    }

    /// Adds one assertion.
    pub fn push(&mut self, assertion: AssertionResult) {
        self.assertions.push(assertion);
    }

    /// Adds assertions.
    pub fn with_assertions(
        mut self,
        assertions: impl IntoIterator<Item = AssertionResult>,
    ) -> Self {
        self.assertions.extend(assertions);
        self
    }

    /// Sets the stream timings.
    pub fn with_timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// Sets the scenario's wall time.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed_ns = duration_ns(elapsed);
        self
    }

    /// Attaches the bytes on the wire ([`ScenarioResult::judged`] drops them if all went well).
    pub fn with_wire(mut self, wire: WireDump) -> Self {
        self.wire = Some(wire);
        self
    }

    /// Attaches the stream's timeline (kept whatever the verdict).
    pub fn with_timeline(mut self, timeline: Timeline) -> Self {
        self.timeline = Some(timeline);
        self
    }

    /// Sets the verdict to the worst assertion's under `strictness`, and drops the wire dump
    /// unless the verdict is `NON-STRICT` or `FAILED` (reports show bytes only where they help).
    pub fn judged(mut self, strictness: Strictness) -> Self {
        self.verdict = Verdict::worst(self.assertions.iter().map(|a| a.verdict.under(strictness)));
        if self.verdict < Verdict::NonStrict {
            self.wire = None;
        }
        self
    }

    /// A scenario that did not run, with the reason (e.g. "needs --daemon-cmd").
    pub fn skipped(
        id: impl Into<String>,
        name: impl Into<String>,
        category: impl Into<String>,
        description: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let mut result = Self::new(id, name, category, description);
        result.skipped = Some(reason.into());
        result
    }

    /// A scenario that was not run because running it could not tell anything (e.g. the daemon
    /// is unresponsive): listed, and failed, with the reason as its one assertion.
    pub fn not_run(
        id: impl Into<String>,
        name: impl Into<String>,
        category: impl Into<String>,
        description: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let mut result = Self::new(id, name, category, description);
        result.push(AssertionResult::new("not run", Verdict::Fail, reason));
        result.verdict = Verdict::Fail;
        result
    }

    /// Whether this scenario fails the run: it ran and its verdict is `FAILED`.
    pub fn failed(&self) -> bool {
        self.skipped.is_none() && self.verdict.is_failure()
    }

    /// The assertions whose verdict is at least `at_least` (as recorded, before strictness).
    pub fn assertions_at_least(&self, at_least: Verdict) -> impl Iterator<Item = &AssertionResult> {
        self.assertions
            .iter()
            .filter(move |a| a.verdict >= at_least)
    }
}

/// How many scenarios came out each way. A skipped scenario counts only under `skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Scenarios reported, skipped ones included.
    pub total: usize,
    /// Verdict `OK` (not skipped).
    pub ok: usize,
    /// Verdict `INFORMATIONAL`.
    pub informational: usize,
    /// Verdict `NON-STRICT` (always 0 under `--strict`).
    pub non_strict: usize,
    /// Verdict `FAILED`.
    pub failed: usize,
    /// Did not run.
    pub skipped: usize,
}

impl Counts {
    /// Counts `scenarios`.
    pub fn of<'a>(scenarios: impl IntoIterator<Item = &'a ScenarioResult>) -> Counts {
        let mut counts = Counts::default();
        for s in scenarios {
            counts.add(s);
        }
        counts
    }

    /// Counts one more scenario.
    pub fn add(&mut self, scenario: &ScenarioResult) {
        self.total += 1;
        if scenario.skipped.is_some() {
            self.skipped += 1;
            return;
        }
        match scenario.verdict {
            Verdict::Pass => self.ok += 1,
            Verdict::Informational => self.informational += 1,
            Verdict::NonStrict => self.non_strict += 1,
            Verdict::Fail => self.failed += 1,
        }
    }

    /// Scenarios that ran and did not fail.
    pub fn passed(&self) -> usize {
        self.ok + self.informational + self.non_strict
    }
}

/// A whole run: which daemon, when, how long, and every scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// What was tested, e.g. the socket path or the `--daemon-cmd` command line.
    pub daemon: String,
    /// The daemon died during the run: reported before everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_death: Option<DaemonDeath>,
    /// Wall-clock start of the run; RFC 3339 UTC in JSON.
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// Wall time of the whole run, in ns.
    pub duration_ns: u64,
    /// Whether `--strict` was given (non-strict findings then count as failures).
    pub strict: bool,
    /// How many scenarios came out each way.
    pub counts: Counts,
    /// Every scenario, in the order reported.
    pub scenarios: Vec<ScenarioResult>,
    /// The distinct causes of the scenarios that did not pass, most important first
    /// ([`causes_of`]): what a report opens with.
    #[serde(default)]
    pub causes: Vec<CauseGroup>,
    /// The signal that interrupted the run (e.g. `SIGTERM`), when one did: the scenarios that
    /// had not finished are skipped, with the reason.
    #[serde(default)]
    pub interrupted: Option<String>,
}

impl RunSummary {
    /// Summarises a finished run; counts are computed from `scenarios`.
    pub fn new(
        daemon: impl Into<String>,
        started_at: SystemTime,
        duration: Duration,
        strictness: Strictness,
        scenarios: Vec<ScenarioResult>,
    ) -> Self {
        RunSummary {
            daemon: daemon.into(),
            daemon_death: None,
            started_at,
            duration_ns: duration_ns(duration),
            strict: strictness == Strictness::Strict,
            counts: Counts::of(&scenarios),
            causes: causes_of(&scenarios, strictness),
            scenarios,
            interrupted: None,
        }
    }

    /// Marks the run as interrupted by `signal` (e.g. `SIGTERM`).
    pub fn interrupted_by(mut self, signal: impl Into<String>) -> Self {
        self.interrupted = Some(signal.into());
        self
    }

    /// Whether any scenario failed.
    pub fn failed(&self) -> bool {
        self.counts.failed > 0
    }

    /// The process exit code this run earns: 0, or 1 when a scenario failed. (2, for usage and
    /// environment errors, is the command line's to give.)
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed())
    }
}

/// A duration in ns, saturating at `u64::MAX` (584 years).
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `SystemTime` as an RFC 3339 UTC string with millisecond precision.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// `t` as a UTC date. chrono spans about ±262,000 years and its own conversion panics
    /// beyond them; a clock set that far out is clamped instead, so no report can panic on it.
    pub fn utc(t: SystemTime) -> DateTime<Utc> {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let date = match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => TimeDelta::from_std(after)
                .ok()
                .and_then(|d| epoch.checked_add_signed(d)),
            Err(before) => TimeDelta::from_std(before.duration())
                .ok()
                .and_then(|d| epoch.checked_sub_signed(d)),
        };
        date.unwrap_or(if t > SystemTime::UNIX_EPOCH {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
    }

    /// Formats `t`, e.g. `2025-01-31T12:00:00.123Z`.
    pub fn format(t: SystemTime) -> String {
        utc(t).to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(SystemTime::from)
            .map_err(|e| D::Error::custom(format!("started_at {text:?} is not RFC 3339: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(verdict: Verdict) -> AssertionResult {
        AssertionResult::new("x", verdict, "m")
    }

    #[test]
    fn verdicts_are_ordered_by_severity() {
        assert!(Verdict::Pass < Verdict::Informational);
        assert!(Verdict::Informational < Verdict::NonStrict);
        assert!(Verdict::NonStrict < Verdict::Fail);
        assert_eq!(Verdict::worst([]), Verdict::Pass);
        assert_eq!(
            Verdict::worst([Verdict::Informational, Verdict::Pass]),
            Verdict::Informational
        );
    }

    #[test]
    fn verdicts_use_the_report_labels_in_json() {
        let labels: Vec<String> = Verdict::ALL
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect();
        assert_eq!(
            labels,
            [
                r#""OK""#,
                r#""INFORMATIONAL""#,
                r#""NON-STRICT""#,
                r#""FAILED""#
            ]
        );
        for v in Verdict::ALL {
            assert_eq!(format!("\"{v}\""), serde_json::to_string(&v).unwrap());
        }
    }

    #[test]
    fn strict_turns_only_non_strict_into_fail() {
        for v in Verdict::ALL {
            assert_eq!(v.under(Strictness::Lenient), v);
        }
        assert_eq!(Verdict::NonStrict.under(Strictness::Strict), Verdict::Fail);
        assert_eq!(
            Verdict::Informational.under(Strictness::Strict),
            Verdict::Informational
        );
        assert_eq!(Verdict::Pass.under(Strictness::Strict), Verdict::Pass);
    }

    #[test]
    fn scenario_verdict_is_worst_assertion() {
        let s = ScenarioResult::new("1.1", "n", "c", "d")
            .with_assertions([
                a(Verdict::Pass),
                a(Verdict::NonStrict),
                a(Verdict::Informational),
            ])
            .judged(Strictness::Lenient);
        assert_eq!(s.verdict, Verdict::NonStrict);
        let strict = ScenarioResult::new("1.1", "n", "c", "d")
            .with_assertions([a(Verdict::Pass), a(Verdict::NonStrict)])
            .judged(Strictness::Strict);
        assert_eq!(strict.verdict, Verdict::Fail);
        // The assertion keeps its own verdict so reports can say why strict mode failed it.
        assert_eq!(strict.assertions[1].verdict, Verdict::NonStrict);
    }

    #[test]
    fn wire_dump_is_kept_only_when_something_went_wrong() {
        let wire = WireDump::capture([(1, &b"x"[..])], WireLimits::default());
        for (v, kept) in [
            (Verdict::Pass, false),
            (Verdict::Informational, false),
            (Verdict::NonStrict, true),
            (Verdict::Fail, true),
        ] {
            let s = ScenarioResult::new("1.1", "n", "c", "d")
                .with_assertions([a(v)])
                .with_wire(wire.clone())
                .judged(Strictness::Lenient);
            assert_eq!(s.wire.is_some(), kept, "{v}");
        }
    }

    #[test]
    fn counts_and_exit_code() {
        let judged = |v| {
            ScenarioResult::new("1", "n", "c", "d")
                .with_assertions([a(v)])
                .judged(Strictness::Lenient)
        };
        let mut scenarios = vec![
            judged(Verdict::Pass),
            judged(Verdict::Informational),
            judged(Verdict::NonStrict),
            ScenarioResult::skipped("1", "n", "c", "d", "needs --daemon-cmd"),
        ];
        let t = SystemTime::UNIX_EPOCH;
        let ok = RunSummary::new(
            "d",
            t,
            Duration::ZERO,
            Strictness::Lenient,
            scenarios.clone(),
        );
        assert_eq!(
            ok.counts,
            Counts {
                total: 4,
                ok: 1,
                informational: 1,
                non_strict: 1,
                failed: 0,
                skipped: 1
            }
        );
        assert_eq!(ok.counts.passed(), 3);
        assert_eq!(ok.exit_code(), 0);
        scenarios.push(judged(Verdict::Fail));
        let failed = RunSummary::new("d", t, Duration::ZERO, Strictness::Lenient, scenarios);
        assert_eq!(failed.counts.failed, 1);
        assert_eq!(failed.exit_code(), 1);
    }

    #[test]
    fn only_scenarios_that_ran_can_fail() {
        let mut skipped = ScenarioResult::skipped("1", "n", "c", "d", "why");
        assert!(!skipped.failed());
        skipped.verdict = Verdict::Fail;
        assert!(!skipped.failed(), "a skipped scenario never fails a run");
        let ran = ScenarioResult::new("1", "n", "c", "d")
            .with_assertions([a(Verdict::Fail)])
            .judged(Strictness::Lenient);
        assert!(ran.failed());
    }

    #[test]
    fn run_summary_round_trips_through_json() {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let s = ScenarioResult::new("1.1", "basic_response", "basic", "d")
            .with_assertions([a(Verdict::Fail).with_expected("e").with_received("r")])
            .with_wire(WireDump::capture(
                [(1, &b"\xff"[..])],
                WireLimits::default(),
            ))
            .judged(Strictness::Lenient);
        let summary = RunSummary::new(
            "sock",
            started,
            Duration::from_secs(2),
            Strictness::Strict,
            vec![s],
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["started_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["duration_ns"], 2_000_000_000u64);
        let back: RunSummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn dates_beyond_chronos_range_are_clamped_not_a_panic() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 44);
        assert!(rfc3339::format(far).starts_with("+262"));
        let early = SystemTime::UNIX_EPOCH - Duration::from_secs(1 << 44);
        assert!(rfc3339::format(early).starts_with("-262"));
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(rfc3339::format(before_epoch), "1969-12-31T23:59:58.500Z");
    }

    #[test]
    fn bad_timestamp_is_a_named_error() {
        let err = serde_json::from_str::<RunSummary>(
            r#"{"daemon":"d","started_at":"yesterday","duration_ns":0,"strict":false,
               "counts":{"total":0,"ok":0,"informational":0,"non_strict":0,"failed":0,"skipped":0},
               "scenarios":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not RFC 3339"), "{err}");
    }
}
