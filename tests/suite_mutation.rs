//! The proof that the suite catches every fault mode of the reference daemon, for the reason
//! the mode names, and passes the daemon without a fault: `scenario::mutation::run` starts the
//! daemon once per mode (enumerated from `Fault::bugs()`, so a new bug mode cannot be left out) and
//! checks each against its line of the one table (`scenario::mutation::expectation`). The
//! README's "Fault modes" table is checked against the same computed report.
//!
//! One report serves every test here: the runs happen once, `JOBS` at a time.

mod readme_support;

use std::path::PathBuf;
use std::sync::OnceLock;

use streamcheck::refdaemon::Fault;
use streamcheck::scenario::mutation::{self, MutationConfig, MutationReport};

/// Suite runs at once. The runs mostly wait (on the mock's pacing, on deadlines that prove a
/// hang), so they overlap well beyond the number of cores.
const JOBS: usize = 8;

fn report() -> &'static MutationReport {
    static REPORT: OnceLock<Result<MutationReport, String>> = OnceLock::new();
    let result = REPORT.get_or_init(|| {
        let mut config = MutationConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_streamcheck")));
        config.jobs = JOBS;
        mutation::run(&config).map_err(|e| e.to_string())
    });
    match result {
        Ok(report) => report,
        Err(e) => panic!("the runs could not be made: {e}"),
    }
}

#[test]
fn every_fault_mode_is_caught_by_its_scenarios_for_the_reason_it_names() {
    let report = report();
    let modes: Vec<Fault> = report.modes.iter().map(|m| m.fault).collect();
    let bugs: Vec<Fault> = Fault::bugs().collect();
    assert_eq!(modes, bugs, "every bug mode is run, in order");
    let problems: Vec<String> = report
        .modes
        .iter()
        .flat_map(|m| m.problems.iter().map(move |p| format!("{}: {p}", m.fault)))
        .collect();
    assert!(
        problems.is_empty(),
        "fault modes not caught as the table in src/scenario/mutation/table.rs says:\n  {}\n\n{}",
        problems.join("\n  "),
        mutation::human(report)
    );
    for m in &report.modes {
        assert!(!m.caught_by.is_empty(), "{}", m.fault);
    }
}

#[test]
fn the_reference_daemon_without_a_fault_passes_the_whole_catalog() {
    let correct = &report().correct;
    assert!(
        correct.problems.is_empty(),
        "the reference daemon without a fault:\n  {}",
        correct.problems.join("\n  ")
    );
    let c = correct.counts;
    assert_eq!(c.total, streamcheck::scenario::catalog().len());
    assert_eq!((c.non_strict, c.failed, c.skipped), (0, 0, 0), "{c:?}");
    assert!(correct.caught_by.is_empty());
}

#[test]
fn the_readme_fault_mode_table_is_the_computed_one() {
    readme_support::check(
        "mutation",
        &mutation::markdown(report()),
        "`streamcheck mutation --format markdown`",
    );
}

/// Each fault mode's report opens with its fault as one cause: exactly one cause group covers
/// every scenario that catches the mode, and it is the only group of the run.
#[test]
fn every_fault_mode_is_reported_as_one_cause() {
    let report = report();
    let mut problems = Vec::new();
    for m in &report.modes {
        let catchers: Vec<&str> = m.catchers.iter().map(|c| c.id).collect();
        let covering: Vec<&str> = m
            .causes
            .iter()
            .filter(|g| {
                catchers
                    .iter()
                    .all(|id| g.scenarios.iter().any(|s| s == id))
            })
            .map(|g| g.key.as_str())
            .collect();
        let all: Vec<String> = m
            .causes
            .iter()
            .map(|g| format!("{} [{}]", g.key, g.scenarios.join(" ")))
            .collect();
        if covering.len() != 1 || m.causes.len() != 1 {
            problems.push(format!(
                "{}: catchers {catchers:?}; {} group(s) cover them all; causes: {}",
                m.fault,
                covering.len(),
                all.join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "fault modes not reported as one cause:\n  {}",
        problems.join("\n  ")
    );
}
