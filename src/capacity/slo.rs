//! Service-level objectives: `ttfb.p99<100ms`, `rss<1GiB`, `failures=0`, read from the command
//! line and measured on a stress step's report.
//!
//! Grammar: `METRIC[.STAT] OP LIMIT`, OP one of `<`, `<=`, `=` (only with 0). Latency metrics
//! take a STAT (`p50`, `p90`, `p99`, `p99.9`, `max`, `mean`; `p99` when left out) and a
//! duration; `rss` a byte count; `fds` and `failures` a count (`failures` also a percentage of
//! the streams judged); `cpu` the daemon's CPU in cores, averaged over the step.

use std::fmt;

use serde::Serialize;

use crate::stress::StressReport;
use crate::stress::latency::{Summary, human_ns};

/// What an objective is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency histogram of the step, by its name in the stress report.
    Latency(Latency),
    /// The daemon's peak RSS, bytes.
    Rss,
    /// The daemon's peak open file descriptors.
    Fds,
    /// The daemon's CPU, in cores (CPU seconds over the step's seconds).
    Cpu,
    /// Streams whose integrity failed.
    Failures,
}

/// The latencies `stress` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    Handoff,
    Head,
    Ttfb,
    Gap,
    Relay,
    Total,
}

impl Latency {
    const ALL: [(Latency, &'static str, &'static str); 6] = [
        (Latency::Handoff, "handoff", "handoff"),
        (Latency::Head, "head", "time_to_head"),
        (Latency::Ttfb, "ttfb", "first_event"),
        (Latency::Gap, "gap", "inter_event_gap"),
        (Latency::Relay, "relay", "relay"),
        (Latency::Total, "total", "total"),
    ];

    /// The name in SLOs.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|l| l.0 == self).map_or("", |l| l.1)
    }

    /// The histogram's name in the stress report.
    fn histogram(self) -> &'static str {
        Self::ALL.iter().find(|l| l.0 == self).map_or("", |l| l.2)
    }

    fn parse(name: &str) -> Option<Latency> {
        Self::ALL
            .iter()
            .find(|l| l.1 == name || l.2 == name)
            .map(|l| l.0)
    }
}

/// Which figure of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// A percentile, 0–100.
    Percentile(f64),
    Max,
    Mean,
}

/// How the figure must compare with the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

/// One objective.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// As written, normalised (`ttfb.p99<100ms`).
    pub text: String,
    pub metric: Metric,
    /// For latencies.
    pub stat: Option<Stat>,
    pub op: Op,
    /// Nanoseconds, bytes, a count, cores, or a fraction of the streams (`failures<1%`).
    pub limit: f64,
    /// `failures` given as a percentage: the limit is a fraction of the streams judged.
    pub fraction: bool,
}

/// A figure measured for one objective on one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The objective, as written.
    pub slo: String,
    /// The figure (`None`: the step gave nothing to measure, which fails the objective).
    pub value: Option<f64>,
    /// The figure for people: `104 ms`, `812 MiB`, `0`.
    pub shown: String,
    pub met: bool,
}

const USAGE: &str = "write an objective as METRIC[.STAT]<LIMIT, e.g. ttfb.p99<100ms, \
                     relay.p99.9<=20ms, rss<1GiB, fds<20000, cpu<1.5, failures=0 or failures<0.1%; \
                     metrics: handoff, head, ttfb, gap, relay, total, rss, fds, cpu, failures";

impl Slo {
    /// Parses one `--slo`; the error says what is wrong and shows the grammar.
    pub fn parse(text: &str) -> Result<Slo, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let err = |why: &str| Err(format!("--slo {text:?}: {why}; {USAGE}"));
        let Some(at) = compact.find(['<', '=']) else {
            return err("no comparison (<, <= or =)");
        };
        let (lhs, rest) = compact.split_at(at);
        let (op, limit_text) = if let Some(l) = rest.strip_prefix("<=") {
            (Op::AtMost, l)
        } else if let Some(l) = rest.strip_prefix('<') {
            (Op::Below, l)
        } else if let Some(l) = rest.strip_prefix('=') {
            (Op::AtMost, l)
        } else {
            return err("no comparison (<, <= or =)");
        };
        let (name, stat_text) = match lhs.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (lhs, None),
        };
        let metric = match name {
            "rss" => Metric::Rss,
            "fds" => Metric::Fds,
            "cpu" => Metric::Cpu,
            "failures" => Metric::Failures,
            other => match Latency::parse(other) {
                Some(l) => Metric::Latency(l),
                None => return err(&format!("unknown metric `{other}`")),
            },
        };
        let stat = match (metric, stat_text) {
            (Metric::Latency(_), None) => Some(Stat::Percentile(99.0)),
            (Metric::Latency(_), Some(s)) => match parse_stat(s) {
                Some(stat) => Some(stat),
                None => {
                    return err(&format!(
                        "unknown statistic `{s}` (p50, p99, p99.9, max, mean)"
                    ));
                }
            },
            (_, None) => None,
            (_, Some(s)) => return err(&format!("`{name}` takes no statistic, but has `.{s}`")),
        };
        let mut fraction = false;
        let limit = match metric {
            // A unit is required: a bare `100` is too easily meant as milliseconds.
            Metric::Latency(_) => match crate::units::parse_duration(limit_text) {
                Ok(d) if limit_text.ends_with(|c: char| c.is_ascii_alphabetic()) => {
                    d.as_nanos() as f64
                }
                _ => {
                    return err(&format!(
                        "`{limit_text}` is not a duration with its unit, such as 100ms or 1.5s"
                    ));
                }
            },
            Metric::Rss => match crate::units::byte_size(limit_text) {
                Ok(n) => n as f64,
                Err(why) => return err(&why),
            },
            Metric::Failures if limit_text.ends_with('%') => {
                fraction = true;
                match limit_text.trim_end_matches('%').parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => p / 100.0,
                    _ => return err(&format!("`{limit_text}` is not a percentage")),
                }
            }
            Metric::Fds | Metric::Cpu | Metric::Failures => match limit_text.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => n,
                _ => return err(&format!("`{limit_text}` is not a number")),
            },
        };
        if rest.starts_with('=') && !rest.starts_with("=<") && limit != 0.0 {
            return err("`=` is only for zero (failures=0); write < or <= for a limit");
        }
        if op == Op::Below && limit == 0.0 {
            return err("nothing is below 0: write =0");
        }
        Ok(Slo {
            text: compact,
            metric,
            stat,
            op,
            limit,
            fraction,
        })
    }

    /// What `capacity` checks when no `--slo` is given: the first event within 1 s and the
    /// relay adding under 100 ms, both at p99, and no stream failing.
    pub fn defaults(with_upstream: bool) -> Vec<Slo> {
        let mut texts = vec!["ttfb.p99<1s"];
        if with_upstream {
            texts.push("relay.p99<100ms");
        }
        texts.push("failures=0");
        texts
            .into_iter()
            .map(|t| Slo::parse(t).expect("the default objectives parse"))
            .collect()
    }

    /// Whether the objective needs the mock's write times (`relay`).
    pub fn needs_upstream(&self) -> bool {
        self.metric == Metric::Latency(Latency::Relay)
    }

    /// Whether the objective needs the daemon's PID (its resources).
    pub fn needs_daemon_pid(&self) -> bool {
        matches!(self.metric, Metric::Rss | Metric::Fds | Metric::Cpu)
    }

    /// Measures the objective on a step's report.
    pub fn measure(&self, report: &StressReport) -> Measured {
        let value = self.value(report);
        let met = value.is_some_and(|v| match self.op {
            Op::Below => v < self.limit,
            Op::AtMost => v <= self.limit,
        });
        Measured {
            slo: self.text.clone(),
            value,
            shown: value.map_or_else(|| "not measured".to_owned(), |v| self.show(v)),
            met,
        }
    }

    fn value(&self, report: &StressReport) -> Option<f64> {
        let daemon = report.daemon.as_ref().filter(|d| d.error.is_none());
        match self.metric {
            Metric::Latency(l) => {
                let summary = report.latency.iter().find(|s| s.name == l.histogram())?;
                (summary.count > 0).then(|| stat_of(summary, self.stat?))?
            }
            Metric::Rss => daemon.map(|d| d.peak.rss_bytes as f64),
            Metric::Fds => daemon.map(|d| d.peak.fds as f64),
            Metric::Cpu => {
                let d = report.daemon.as_ref()?;
                let seconds = report.run.wall_seconds + d.settle_ms as f64 / 1000.0;
                (seconds > 0.0).then(|| d.cpu_seconds / seconds)
            }
            Metric::Failures if self.fraction => {
                let judged = report.run.judged;
                (judged > 0).then(|| report.integrity.failed as f64 / judged as f64)
            }
            Metric::Failures => Some(report.integrity.failed as f64),
        }
    }

    /// A figure of this objective's metric, for people.
    pub fn show(&self, v: f64) -> String {
        match self.metric {
            Metric::Latency(_) => human_ns(v as u64),
            Metric::Rss => human_bytes(v),
            Metric::Fds => format!("{v:.0}"),
            Metric::Cpu => format!("{v:.2} cores"),
            Metric::Failures if self.fraction => format!("{:.3}%", v * 100.0),
            Metric::Failures => format!("{v:.0}"),
        }
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_stat(s: &str) -> Option<Stat> {
    match s {
        "max" => Some(Stat::Max),
        "mean" => Some(Stat::Mean),
        _ => {
            let p: f64 = s.strip_prefix('p')?.parse().ok()?;
            // `p999` is p99.9, as HdrHistogram's tools write it.
            let p = if p > 100.0 && s == "p999" { 99.9 } else { p };
            (0.0..=100.0).contains(&p).then_some(Stat::Percentile(p))
        }
    }
}

/// A statistic from a summary: its named percentiles, else the nearest of its spectrum at or
/// above `p` (an upper bound, never an optimistic figure).
fn stat_of(s: &Summary, stat: Stat) -> Option<f64> {
    let ns = match stat {
        Stat::Max => s.max_ns,
        Stat::Mean => return Some(s.mean_ns),
        Stat::Percentile(50.0) => s.p50_ns,
        Stat::Percentile(90.0) => s.p90_ns,
        Stat::Percentile(99.0) => s.p99_ns,
        Stat::Percentile(99.9) => s.p999_ns,
        Stat::Percentile(p) => s
            .percentiles
            .iter()
            .find(|(q, _)| *q >= p)
            .map_or(s.max_ns, |&(_, ns)| ns),
    };
    Some(ns as f64)
}

/// Bytes for people, in binary units.
pub fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = v;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_with_their_units() {
        let s = Slo::parse("ttfb.p99 < 100ms").unwrap();
        assert_eq!(s.metric, Metric::Latency(Latency::Ttfb));
        assert_eq!(s.stat, Some(Stat::Percentile(99.0)));
        assert_eq!((s.op, s.limit), (Op::Below, 100e6));
        assert_eq!(s.text, "ttfb.p99<100ms");
        let s = Slo::parse("relay.p99.9<=20ms").unwrap();
        assert_eq!(s.stat, Some(Stat::Percentile(99.9)));
        assert_eq!(s.op, Op::AtMost);
        assert_eq!(
            Slo::parse("first_event.p999<1s").unwrap().stat,
            Some(Stat::Percentile(99.9))
        );
        assert_eq!(
            Slo::parse("gap<300ms").unwrap().stat,
            Some(Stat::Percentile(99.0))
        );
        assert_eq!(Slo::parse("rss<1GiB").unwrap().limit, (1u64 << 30) as f64);
        assert_eq!(Slo::parse("cpu<1.5").unwrap().limit, 1.5);
        let f = Slo::parse("failures=0").unwrap();
        assert_eq!((f.op, f.limit, f.fraction), (Op::AtMost, 0.0, false));
        let f = Slo::parse("failures<0.5%").unwrap();
        assert!(f.fraction && (f.limit - 0.005).abs() < 1e-12);
    }

    #[test]
    fn a_wrong_objective_says_what_is_wrong_and_how_to_write_one() {
        for (bad, why) in [
            ("ttfb", "no comparison"),
            ("latency.p99<1s", "unknown metric `latency`"),
            ("ttfb.p101<1s", "unknown statistic"),
            ("ttfb.p99<100", "not a duration"),
            ("rss.p99<1GiB", "takes no statistic"),
            ("rss<lots", "unknown unit"),
            ("failures=3", "only for zero"),
            ("failures<0", "nothing is below 0"),
            ("cpu<-1", "not a number"),
        ] {
            let e = Slo::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("e.g. ttfb.p99<100ms"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_set_leaves_relay_out_without_an_upstream() {
        let texts = |v: Vec<Slo>| v.iter().map(|s| s.text.clone()).collect::<Vec<_>>();
        assert_eq!(
            texts(Slo::defaults(true)),
            ["ttfb.p99<1s", "relay.p99<100ms", "failures=0"]
        );
        assert_eq!(texts(Slo::defaults(false)), ["ttfb.p99<1s", "failures=0"]);
    }

    #[test]
    fn a_percentile_between_the_named_ones_rounds_up() {
        let s = Summary {
            name: "first_event",
            count: 10,
            min_ns: 1,
            mean_ns: 5.0,
            stdev_ns: 1.0,
            p50_ns: 5,
            p90_ns: 9,
            p99_ns: 10,
            p999_ns: 11,
            max_ns: 12,
            percentiles: vec![(90.0, 9), (95.0, 95), (99.0, 10)],
            hdr_base64: String::new(),
        };
        assert_eq!(stat_of(&s, Stat::Percentile(99.0)), Some(10.0));
        assert_eq!(stat_of(&s, Stat::Percentile(92.0)), Some(95.0));
        assert_eq!(stat_of(&s, Stat::Percentile(99.99)), Some(12.0));
        assert_eq!(stat_of(&s, Stat::Mean), Some(5.0));
    }
}
