//! A live daemon under generated upstream streams and clients: each input decodes (with
//! `arbitrary`) into the case type `streamcheck prop` generates — content pieces with UTF-8 and
//! escape cut points, BOM / CRLF / CR / no-space framing, write splits and delays, an ending
//! (`[DONE]`, finish_reason only, truncation, reset, error status) and a client (reads all,
//! leaves after N bytes or events, pauses) — is played by the embedded mock to the daemon over
//! a real handoff, and judged by prop's judge.
//!
//! One daemon and one mock serve the whole process (see `streamcheck_fuzz::daemon` for which
//! daemon, and the variables that choose it); each input is one handoff. A failing verdict is a
//! crash: the message before the abort names the broken invariants and gives the `streamcheck
//! prop --replay '…'` command for the case, so a fuzz finding and a prop finding are one thing.
//! A daemon that dies is a crash too. What libFuzzer learns from each input is described in
//! `streamcheck_fuzz::outcome`.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use streamcheck::prop::daemon::{Case, CaseResult, regressions, render};
use streamcheck_fuzz::daemon::{self, Fuzzed};
use streamcheck_fuzz::outcome;

/// The daemon, mock and ring of this process, started in init.
static FUZZED: Mutex<Option<Fuzzed>> = Mutex::new(None);

/// Replays of a failing case, to say how reliably it fails.
const REPLAYS: usize = 2;

fuzz_target!(
    init: {
        daemon::ignore_sigpipe();
        daemon::serve_if_asked();
        match daemon::start() {
            Ok(fuzzed) => *FUZZED.lock().unwrap_or_else(|p| p.into_inner()) = Some(fuzzed),
            Err(e) => {
                eprintln!("streamcheck daemon fuzz target: {e}");
                std::process::exit(2);
            }
        }
    },
    |case: Case| {
        let mut guard = FUZZED.lock().unwrap_or_else(|p| p.into_inner());
        let Some(fuzzed) = guard.as_mut() else {
            return;
        };
        match fuzzed.session.run(&case) {
            Ok(result) => {
                outcome::record(&result);
                if result.failed() {
                    failed(fuzzed, &result);
                }
            }
            Err(e) => {
                let why = fuzzed.session.daemon_failure().unwrap_or_else(|| e.to_string());
                stopped(fuzzed, &case, &why);
            }
        }
    }
);

fn replay(fuzzed: &Fuzzed, case: &Case) -> String {
    render::replay_command(&fuzzed.replay_target, case, fuzzed.session.strictness())
}

/// Reports a case that stopped the daemon (or could not reach it), then aborts.
fn stopped(fuzzed: &Fuzzed, case: &Case, why: &str) -> ! {
    eprintln!(
        "\n==== streamcheck: the case could not be run against the daemon ====\n\
         {why}\ncase: {}\nreplay:\n  {}\n",
        case.to_json(),
        replay(fuzzed, case)
    );
    std::process::abort();
}

/// Reports a failing case (and keeps it, if asked), then aborts: libFuzzer saves the input. A
/// daemon that died during the case (or its replays) is reported as that instead.
fn failed(fuzzed: &mut Fuzzed, result: &CaseResult) -> ! {
    if let Some(death) = fuzzed.session.daemon_failure() {
        stopped(fuzzed, &result.case, &death);
    }
    let signature = result.signature();
    let again = (0..REPLAYS)
        .filter(|_| {
            fuzzed
                .session
                .run(&result.case)
                .is_ok_and(|r| r.fails_like(&signature))
        })
        .count();
    if let Some(death) = fuzzed.session.daemon_failure() {
        stopped(fuzzed, &result.case, &death);
    }
    let broke: Vec<String> = result.broken_names().into_iter().collect();
    let daemon = match &fuzzed.replay_target {
        streamcheck::scenario::Target::Command(c) => c.command.clone(),
        streamcheck::scenario::Target::Running { socket, .. } => socket.display().to_string(),
    };
    let note = format!(
        "{} broke against `{daemon}` (found by the daemon fuzz target)",
        broke.join(", ")
    );
    let kept = match &fuzzed.persist {
        None => "to keep it as a prop regression case, run `make fuzz-regression CRASH=<the \
                 crash file libFuzzer names below>`, or append these two lines to \
                 proptest-regressions/prop-daemon.txt"
            .to_owned(),
        Some(path) => match regressions::append(path, &result.case, &note) {
            Ok(true) => format!("appended to {}", path.display()),
            Ok(false) => format!("already in {}", path.display()),
            Err(e) => format!("not kept: {e}"),
        },
    };
    eprintln!(
        "\n==== streamcheck: the daemon broke {} ====\n\
         reproduced in {again} of {REPLAYS} replays\n\n\
         broken invariants:\n{}\n\
         script: {}\n\
         the daemon sent:\n  {}\n\n\
         replay:\n  {}\n\n\
         regression case: {kept}\n  # {note}\n  {}\n",
        broke.join(", "),
        render::broken(result),
        render::script(&result.built),
        render::received(result),
        replay(fuzzed, &result.case),
        result.case.to_json(),
    );
    std::process::abort();
}
