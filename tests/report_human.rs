//! The human report: content without colour, colour only when asked, and — on a real
//! pseudo-terminal — colour by default unless NO_COLOR is set.

mod report_support;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use report_support::{drive, passing_scenarios, scenarios, summary};
use streamcheck::report::human::Human;
use streamcheck::report::{self, ColorChoice, Format, Options, Output};
use streamcheck::verdict::{Strictness, Verdict};

fn human(color: bool, scenarios: Vec<streamcheck::verdict::ScenarioResult>) -> String {
    let run = summary(scenarios, Strictness::Lenient);
    let mut reporter = Human::new(Vec::new(), color);
    drive(&mut reporter, &run);
    String::from_utf8(reporter.into_inner()).unwrap()
}

#[test]
fn plain_report_shows_each_verdict_and_the_details_of_findings() {
    let text = human(false, scenarios(Strictness::Lenient));
    assert!(
        !text.contains('\x1b'),
        "no escape codes without colour:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "streamcheck: 6 scenarios");
    assert_eq!(
        lines[1],
        "  OK             1.1  basic_response             41.0 ms"
    );
    assert_eq!(
        lines[2],
        "  FAILED         2.1  unicode_content            52.0 ms"
    );
    for needle in [
        "      Multi-byte characters arrive intact.",
        "      FAILED content: content ends early: received 4 of 5 bytes",
        "        expected: café",
        "        received: caf\\xc3",
        "      timings: handoff 85.0 µs · head 1.2 ms · first event 2.4 ms · total 40.0 ms",
        "      wire: 78 bytes received in 3 reads, head 52 bytes",
        "      end: closed by the daemon",
        "  NON-STRICT     3.1  headers_cache              12.0 ms",
        "      NON-STRICT header Cache-Control: no Cache-Control header in the response",
        "      INFORMATIONAL header X-Accel-Buffering: no X-Accel-Buffering header in the response",
        "  INFORMATIONAL  3.2  headers_early              9.0 ms",
        "      INFORMATIONAL headers before upstream: headers went out 2.0 ms before the upstream answered",
        "  SKIPPED        4.3  upstream_unreachable       needs --daemon-cmd",
    ] {
        assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
    }
    // The wire listing shows each SSE line on its own line, bytes that are not UTF-8 in hex.
    assert!(
        text.contains("+2.4 ms recv      data: {\"content\":\"caf\\xc3\n"),
        "{text}"
    );
    assert!(text.contains("+2.5 ms recv      \"}\\n\n"), "{text}");
    // Control characters in quoted text are shown escaped, never sent to the terminal.
    assert!(
        text.contains("tab \\t newline \\n escape \\x1b bom \u{feff}"),
        "{text}"
    );
    // A passing scenario shows no details.
    assert!(
        !lines[2].is_empty() && !text.contains("The daemon answers with 200"),
        "{text}"
    );
    let tail: Vec<&str> = lines.iter().rev().take(2).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "6 scenarios in 1.23 s against /run/streaming-daemon.sock: 1 OK, 1 INFORMATIONAL, 1 NON-STRICT, 2 FAILED, 1 skipped",
            "FAILED: 2.1 unicode_content, 5.1 odd # name \\ \"q\"",
        ]
    );
    // One vocabulary: the summary counts in the scenario lines' verdict words.
    assert!(!text.contains("passed"), "{text}");
}

#[test]
fn passing_run_lists_no_failures() {
    let text = human(false, passing_scenarios());
    assert!(!text.contains("FAILED:"), "{text}");
    assert!(
        text.ends_with(": 1 OK, 1 INFORMATIONAL, 1 NON-STRICT, 0 FAILED, 1 skipped\n"),
        "{text}"
    );
}

#[test]
fn colour_marks_verdicts_when_on() {
    let text = human(true, scenarios(Strictness::Lenient));
    assert!(text.contains("\x1b[32mOK           \x1b[0m"), "{text}");
    assert!(text.contains("\x1b[1;31mFAILED       \x1b[0m"), "{text}");
    assert!(text.contains("\x1b[33mNON-STRICT   \x1b[0m"), "{text}");
    assert!(text.contains("\x1b[36mINFORMATIONAL\x1b[0m"), "{text}");
    // Colour changes nothing but the escape codes.
    let stripped = text
        .replace("\x1b[0m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[1;31m", "");
    let stripped = stripped
        .replace("\x1b[33m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[2m", "");
    assert_eq!(stripped, human(false, scenarios(Strictness::Lenient)));
}

/// A writer whose bytes the test can read after the reporter is boxed.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn auto_colour_is_off_for_a_non_terminal() {
    let buffer = Shared::default();
    let options = Options {
        format: Format::Human,
        color: ColorChoice::Auto,
        ..Options::default()
    };
    let mut reporter = report::build(&options, Output::writer("buffer", buffer.clone()));
    drive(
        &mut reporter,
        &summary(scenarios(Strictness::Lenient), Strictness::Lenient),
    );
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("FAILED"), "{text}");
    assert!(!text.contains('\x1b'), "{text}");
}

/// Run by the tests below with stdout on a pseudo-terminal: the human report as
/// `streamcheck run` builds it (progress line included), on the real standard output.
#[test]
#[ignore = "run on pseudo-terminals by the colour and progress tests below"]
fn human_report_child() {
    let options = Options {
        format: Format::Human,
        progress: true,
        ..Options::default()
    };
    let mut reporter = report::build(&options, Output::stdout());
    drive(
        &mut reporter,
        &summary(scenarios(Strictness::Lenient), Strictness::Lenient),
    );
}

/// What `human_report_child` wrote.
struct ChildRun {
    stdout: String,
    stderr: String,
}

/// Runs `human_report_child` with stdout on a new pseudo-terminal, stderr on another one or on
/// a pipe, and `NO_COLOR` as given (`None`: unset).
fn run_child(no_color: Option<&str>, stderr_on_terminal: bool) -> ChildRun {
    let (stdout_master, stdout_slave) = open_pty();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["human_report_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads=1", "--color=never"])
        .env("TERM", "xterm") // indicatif draws nothing for an unset or dumb TERM
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout_slave));
    match no_color {
        Some(value) => cmd.env("NO_COLOR", value),
        None => cmd.env_remove("NO_COLOR"),
    };
    let stderr_master = if stderr_on_terminal {
        let (master, slave) = open_pty();
        cmd.stderr(Stdio::from(slave));
        Some(master)
    } else {
        cmd.stderr(Stdio::piped());
        None
    };
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // closes our copies of the slave sides, so reads end when the child exits
    let stderr: Box<dyn Read + Send> = match stderr_master {
        Some(master) => Box::new(master),
        None => Box::new(child.stderr.take().unwrap()),
    };
    // Both sides are read at once so that neither can fill up and stall the child.
    let stderr = std::thread::spawn(move || read_all(stderr));
    let stdout = read_all(stdout_master);
    let stderr = stderr.join().unwrap();
    assert!(
        child.wait().unwrap().success(),
        "{}",
        String::from_utf8_lossy(&stdout)
    );
    ChildRun {
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Everything until end of file, or until EIO, which Linux reports on a pseudo-terminal's
/// master side once every slave descriptor is closed.
fn read_all(mut from: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return out,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading the child's output: {e}"),
        }
    }
}

fn open_pty() -> (File, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty stores two new descriptors in `master` and `slave`; a null name, termios
    // and window size are allowed and mean "not wanted" / "defaults".
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(
        rc,
        0,
        "openpty failed: {}. This test needs a pseudo-terminal (/dev/ptmx with devpts mounted)",
        io::Error::last_os_error()
    );
    // SAFETY: both descriptors were just created by openpty and nothing else owns them.
    let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: F_SETFD on a descriptor we own; keeps the child from inheriting the master side.
    let rc = unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    assert_eq!(rc, 0, "fcntl(FD_CLOEXEC): {}", io::Error::last_os_error());
    (master, slave)
}

#[test]
fn terminal_gets_colour_unless_no_color() {
    let coloured = run_child(None, false).stdout;
    assert!(
        coloured.contains("\x1b[1;31mFAILED"),
        "colour expected on a terminal:\n{coloured}"
    );
    // An empty NO_COLOR counts as unset (no-color.org).
    assert!(
        run_child(Some(""), false)
            .stdout
            .contains("\x1b[1;31mFAILED")
    );
    let plain = run_child(Some("1"), false).stdout;
    assert!(plain.contains("FAILED"), "{plain}");
    assert!(
        plain.contains("1 OK, 1 INFORMATIONAL, 1 NON-STRICT, 2 FAILED, 1 skipped"),
        "{plain}"
    );
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR must turn colour off:\n{plain}"
    );
}

#[test]
fn progress_line_is_drawn_only_on_a_terminal() {
    let on_terminal = run_child(Some("1"), true);
    assert!(
        on_terminal.stderr.contains("/6 scenarios"),
        "a progress line is expected on a terminal's stderr: {:?}",
        on_terminal.stderr
    );
    // It never mixes into the report.
    assert!(
        !on_terminal.stdout.contains("/6 scenarios"),
        "{}",
        on_terminal.stdout
    );
    let piped = run_child(Some("1"), false);
    assert_eq!(
        piped.stderr, "",
        "no progress line when stderr is not a terminal"
    );
}

/// The causes block the sample run opens with (or ends with, streamed).
const CAUSES: [&str; 5] = [
    "4 causes across 3 scenarios that did not pass",
    "  content                                              2.1",
    "  no `data: [DONE]` after a complete answer            2.1",
    "  odd                                                  5.1",
    "  Cache-Control header missing or wrong (NON-STRICT)   3.1",
];

#[test]
fn off_a_terminal_the_report_opens_with_its_causes() {
    let run = summary(scenarios(Strictness::Lenient), Strictness::Lenient);
    let mut reporter = Human::new(Vec::new(), false).causes_first();
    drive(&mut reporter, &run);
    let text = String::from_utf8(reporter.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "streamcheck: 6 scenarios");
    assert_eq!(lines[1..6], CAUSES, "{text}");
    assert_eq!(lines[6], "");
    assert!(
        lines[7].starts_with("  OK             1.1  basic_response"),
        "{text}"
    );
    assert!(
        text.ends_with("FAILED: 2.1 unicode_content, 5.1 odd # name \\ \"q\"\n"),
        "{text}"
    );
}

#[test]
fn streamed_the_causes_close_the_report_above_its_summary() {
    let text = human(false, scenarios(Strictness::Lenient));
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == CAUSES[0])
        .unwrap_or_else(|| panic!("no causes block:\n{text}"));
    assert_eq!(lines[at..at + 5], CAUSES, "{text}");
    assert!(lines[at + 6].starts_with("6 scenarios in "), "{text}");
    let clean = passing_scenarios()
        .into_iter()
        .filter(|s| s.verdict < Verdict::NonStrict)
        .collect();
    let passing = human(false, clean);
    assert!(
        !passing.contains("cause"),
        "no block when all passed:\n{passing}"
    );
}
