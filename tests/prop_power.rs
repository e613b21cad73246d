//! Proof of power: against three of the reference daemon's fault modes, `prop` (strict, fixed
//! seed, no regression cases to replay) finds a failure within 200 generated cases, shrinks it
//! to a script of at most 3 writes that breaks the invariant the fault is about, and appends it
//! to the regression file, from which the next run replays it first.

use std::path::PathBuf;
use std::time::Duration;

use streamcheck::prop::daemon::{self, Origin, PropConfig, regressions, render};
use streamcheck::scenario::{DaemonCommand, MockOptions, Target};
use streamcheck::verdict::Strictness;

/// The seed every fault is hunted with.
const SEED: u64 = 1;

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Hunts `fault` and checks what was found; returns the regression file.
fn hunt(fault: &str, invariants: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sc-prop-power-{}-{fault}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("prop-power.txt");
    let command = format!(
        "{} ref-daemon --socket {{socket}} --fault {fault}",
        shell_quote(env!("CARGO_BIN_EXE_streamcheck"))
    );
    let mut config = PropConfig::new(Target::Command(DaemonCommand {
        socket: None,
        command,
        mock: MockOptions::default(),
        start_timeout: Duration::from_secs(20),
    }));
    config.cases = 200;
    config.seed = SEED;
    config.strictness = Strictness::Strict;
    // Generous: the bound only matters on a machine too loaded to finish otherwise.
    config.max_shrink_time = Duration::from_secs(600);
    config.regressions = Some(file.clone());
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{fault}: no failure found\n{}", render::summary(&report)));
    let shown = render::failure(failure, &config.target, config.strictness);
    let Origin::Generated { index } = failure.origin else {
        panic!("{fault}: the failure is not a generated case:\n{shown}");
    };
    assert!(index < 200, "{fault}: case {index}\n{shown}");
    let writes = failure.minimal.built.generated_writes();
    assert!(writes <= 3, "{fault}: shrunk to {writes} writes\n{shown}");
    let broken = failure.minimal.broken_names();
    assert!(
        invariants.iter().any(|i| broken.contains(*i)),
        "{fault}: broke {broken:?}, not one of {invariants:?}\n{shown}"
    );
    assert!(
        failure.reproduced.0 >= 1,
        "{fault}: never reproduced\n{shown}"
    );
    assert_eq!(failure.persisted.as_ref(), Some(&file));
    let persisted = regressions::load(&file).unwrap();
    assert_eq!(persisted.len(), 1);
    assert_eq!(persisted[0].case, failure.minimal.case);
    eprintln!(
        "{fault}: found at case {index} of 200, shrunk from {} to {writes} write(s) in {:?}",
        failure.original_writes,
        failure.shrink.as_ref().map(|s| (s.steps, s.elapsed))
    );
    file
}

#[test]
fn lossy_utf8_is_found_and_shrunk() {
    let file = hunt("lossy-utf8", &["content", "valid UTF-8"]);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn done_after_abort_is_found_and_shrunk() {
    let file = hunt("done-after-abort", &["no [DONE]"]);
    // The next run replays the persisted case before generating anything, and fails on it.
    let mut config = PropConfig::new(Target::Command(DaemonCommand {
        socket: None,
        command: format!(
            "{} ref-daemon --socket {{socket}} --fault done-after-abort",
            shell_quote(env!("CARGO_BIN_EXE_streamcheck"))
        ),
        mock: MockOptions::default(),
        start_timeout: Duration::from_secs(20),
    }));
    config.strictness = Strictness::Strict;
    config.regressions = Some(file.clone());
    let report = daemon::run(&config, &mut std::io::sink()).unwrap();
    let failure = report.failure.expect("the persisted case fails again");
    assert!(matches!(failure.origin, Origin::Persisted { .. }));
    assert_eq!(report.generated, 0);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn no_upstream_cancel_is_found_and_shrunk() {
    let file = hunt("no-upstream-cancel", &["upstream cancelled"]);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}
