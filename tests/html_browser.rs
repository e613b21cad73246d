//! The HTML reports in a real browser: headless Chromium renders the run report of the
//! reference daemon with a fault mode and the matrix beside it, with no console message (an
//! uncaught error or anything else the page logs), with every scenario row, the timelines and
//! the failed rows in the rendered DOM, a link to a scenario opening it; and a screenshot in
//! target/html-browser/ for a person to look at.
//!
//! Chromium is Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs it), or
//! the binary `STREAMCHECK_CHROMIUM` names. Without it the tests fail, saying what to install;
//! outside CI (`CI` unset), `STREAMCHECK_SKIP_BROWSER=1` skips them instead.

mod suite_support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use suite_support::{FAST, outcome, ref_daemon, streamcheck};

/// How long one Chromium run may take (it takes about a second).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// The fault the rendered report shows: it fails 11.1 and 11.2.
const FAULT: &str = "lossy-utf8";

/// Chromium. Missing, the test fails saying what to install; outside CI,
/// `STREAMCHECK_SKIP_BROWSER=1` skips it instead (`None`).
fn chromium() -> Option<PathBuf> {
    let named = std::env::var_os("STREAMCHECK_CHROMIUM").map(PathBuf::from);
    let path = named
        .clone()
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    let why = match named {
        Some(p) => format!("STREAMCHECK_CHROMIUM={} does not exist", p.display()),
        None => "Chromium is not installed (no /usr/bin/chromium)".into(),
    };
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let skip = std::env::var_os("STREAMCHECK_SKIP_BROWSER").is_some_and(|v| v == "1");
    if skip && !ci {
        eprintln!("*** SKIPPED (STREAMCHECK_SKIP_BROWSER=1): {why} ***");
        return None;
    }
    panic!(
        "{why}: the HTML reports cannot be checked in a browser. Install it: apt-get install \
         chromium (or set STREAMCHECK_CHROMIUM to its path){}",
        if ci {
            ""
        } else {
            "; to skip this check outside CI: STREAMCHECK_SKIP_BROWSER=1"
        }
    );
}

/// Where this test's files go: target/html-browser/.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("html-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a headless Chromium run printed.
struct Rendered {
    dom: String,
    console: Vec<String>,
}

/// Headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`). Console messages
/// are read from its log on stderr (`INFO:CONSOLE… "Uncaught ReferenceError: …"`).
fn browse(chromium: &Path, url: &str, args: &[&str], profile: &str) -> Rendered {
    let profile = out_dir().join(format!("profile-{profile}"));
    let mut child = Command::new(chromium)
        // --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish {url} within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out.join().unwrap().unwrap();
    let log = err.join().unwrap().unwrap();
    assert!(
        status.success(),
        "Chromium failed on {url} ({status}):\n{log}"
    );
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Rendered { dom, console }
}

fn url(path: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", path.display())
}

#[test]
fn a_script_error_is_caught() {
    let Some(chromium) = chromium() else { return };
    let page = out_dir().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><p>broken</p><script>notDefined();</script>",
    )
    .unwrap();
    let r = browse(&chromium, &url(&page, ""), &["--dump-dom"], "broken");
    assert!(r.dom.contains("<p>broken</p>"), "{}", r.dom);
    assert!(
        r.console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "the console catcher missed an uncaught error: {:?}",
        r.console
    );
}

#[test]
fn the_run_report_and_the_matrix_render_without_a_console_message() {
    let Some(chromium) = chromium() else { return };
    let dir = out_dir();
    let (html, json) = (dir.join("ref-fault.html"), dir.join("ref-fault.json"));
    let daemon = ref_daemon(Some(FAULT));
    let mut args = vec!["run", "--daemon-cmd", &daemon, "--format", "html"];
    let (html_arg, json_arg) = (html.to_str().unwrap(), json.to_str().unwrap());
    args.extend(["-o", html_arg, "--json-report", json_arg]);
    args.extend(FAST);
    let (code, _, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(1), "the fault fails the run: {stderr}");

    let rows = streamcheck::scenario::catalog().len();
    let file = std::fs::read_to_string(&html).unwrap();
    let timelines = file.matches(r#"<svg class="timeline""#).count();
    assert!(
        timelines > rows / 2,
        "{timelines} timelines for {rows} rows"
    );

    let r = browse(&chromium, &url(&html, ""), &["--dump-dom"], "run");
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert_eq!(r.dom.matches(r#"<details class="scenario "#).count(), rows);
    assert_eq!(r.dom.matches(r#"<svg class="timeline""#).count(), timelines);
    // The SVG parsed as SVG: every write and receipt is its own element, none swallowed.
    assert!(
        r.dom.matches("<line ").count() > 10 * timelines,
        "{} lines",
        r.dom.matches("<line ").count()
    );
    for id in ["11.1", "11.2"] {
        assert!(
            r.dom
                .contains(&format!(r#"<details class="scenario failed" id="{id}">"#)),
            "{id} is a failed row"
        );
    }

    // A link to one scenario opens it.
    let r = browse(&chromium, &url(&html, "#11.1"), &["--dump-dom"], "anchor");
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert!(
        r.dom
            .contains(r#"<details class="scenario failed" id="11.1" open="">"#),
        "#11.1 did not open its row"
    );

    let shot = dir.join("ref-fault.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = format!("--screenshot={}", shot.display());
    let r = browse(
        &chromium,
        &url(&html, ""),
        &[&screenshot, "--window-size=1280,1600"],
        "shot",
    );
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());

    // The matrix of the same run links each cell to the report beside it.
    let matrix = dir.join("matrix.html");
    let (code, _, stderr) = outcome(&streamcheck(&[
        "report",
        "merge",
        json_arg,
        "-o",
        matrix.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let r = browse(&chromium, &url(&matrix, ""), &["--dump-dom"], "matrix");
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert_eq!(r.dom.matches(r#"href="ref-fault.html#"#).count(), rows);
    assert!(
        r.dom
            .contains(r##"<a class="v failed" href="ref-fault.html#11.1""##)
    );
}

/// Every `<svg class="chart" id="…">` id in a rendered DOM, in order.
fn chart_ids(dom: &str) -> Vec<String> {
    dom.match_indices(r#"<svg class="chart" id=""#)
        .map(|(at, m)| {
            let rest = &dom[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn the_stress_and_capacity_pages_render_their_plots_without_a_console_message() {
    let Some(chromium) = chromium() else { return };
    let dir = out_dir();

    let stress = dir.join("stress.html");
    let daemon = ref_daemon(None);
    let (code, _, stderr) = outcome(&streamcheck(&[
        "stress",
        "--daemon-cmd",
        &daemon,
        "-n",
        "60",
        "-c",
        "20",
        "--chunk-count",
        "4",
        "--chunk-delay-ms",
        "20",
        "--settle",
        "2s",
        "--format",
        "html",
        "-o",
        stress.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let r = browse(&chromium, &url(&stress, ""), &["--dump-dom"], "stress");
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    let ids = chart_ids(&r.dom);
    for id in [
        "chart-first-event",
        "chart-relay",
        "chart-open-streams",
        "chart-daemon-rss",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} not in {ids:?}");
    }
    let shot = dir.join("stress.png");
    let screenshot = format!("--screenshot={}", shot.display());
    let r = browse(
        &chromium,
        &url(&stress, ""),
        &[&screenshot, "--window-size=1280,2400"],
        "stress-shot",
    );
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));

    let capacity = dir.join("capacity.html");
    let (code, _, stderr) = outcome(&streamcheck(&[
        "capacity",
        "--daemon-cmd",
        &ref_daemon(Some("leak-fd")),
        "--slo",
        "fds<100",
        "--slo",
        "ttfb.p99<1s",
        "--start",
        "4",
        "--max",
        "32",
        "--warmup",
        "300ms",
        "--hold",
        "700ms",
        "--settle",
        "1s",
        "--chunk-count",
        "3",
        "--chunk-delay-ms",
        "20",
        "--format",
        "html",
        "-o",
        capacity.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let r = browse(&chromium, &url(&capacity, ""), &["--dump-dom"], "capacity");
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert_eq!(
        chart_ids(&r.dom),
        ["chart-slo-fds", "chart-slo-ttfb-p99", "chart-cpu"]
    );
    assert!(
        r.dom.contains("objective fds&lt;100"),
        "the objective's line"
    );
    assert!(
        r.dom.contains(r#"<tr id="step-4" class="ok">"#),
        "the first step held"
    );
    let shot = dir.join("capacity.png");
    let screenshot = format!("--screenshot={}", shot.display());
    let r = browse(
        &chromium,
        &url(&capacity, ""),
        &[&screenshot, "--window-size=1280,2400"],
        "capacity-shot",
    );
    assert_eq!(r.console, Vec::<String>::new(), "console messages");
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    eprintln!(
        "screenshots: {} {}",
        dir.join("stress.png").display(),
        shot.display()
    );
}
