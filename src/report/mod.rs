//! Reporters: human, TAP, JSON, JUnit, HTML. They only format [`crate::verdict`] values.
//!
//! The runner picks a format with [`Options`], opens an [`Output`] (stdout or `-o FILE`) and
//! gets a [`Reporter`] from [`build`]; it then calls [`Reporter::on_start`] once with the number
//! of scenarios, [`Reporter::on_result`] as each scenario finishes, and
//! [`Reporter::on_finish`] with the [`RunSummary`]. JSON, JUnit and HTML are whole documents
//! written at the end ([`Tee`] feeds two reporters, e.g. `--json-report` beside HTML). Every
//! format opens with the distinct causes of what failed ([`crate::verdict::causes`]), which are
//! known only at the end: human and TAP output to a terminal is streamed (written and flushed
//! per result) and the causes close it; to a file or a pipe the per-scenario lines are held and
//! the causes lead.
//!
//! | format | module | notes |
//! |---|---|---|
//! | `human` | [`human`] | verdict per scenario, expected against received and the wire bytes for failures, a summary line; colour only on a terminal without `NO_COLOR` |
//! | `tap` | [`tap`] | TAP version 13 (default; Debian 12's `prove` rejects 14) or 14, YAML diagnostics |
//! | `json` | [`json`] | one document, schema `docs/report.schema.json`, `schema_version` [`json::SCHEMA_VERSION`] |
//! | `junit` | [`junit`] | one testsuite per category (quick-junit) |
//! | `html` | [`html`] | one self-contained page, a row per scenario opening to its diff and timeline ([`html::run`]) |
//!
//! A live progress line ([`progress`]) is drawn on stderr when stderr is a terminal, for the
//! human format and for any format written to a file.

#![deny(missing_docs)]

pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod progress;
pub mod tap;
mod text;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::verdict::{DaemonDeath, RunSummary, ScenarioResult};

/// Receives results as a run produces them.
///
/// Errors are I/O errors of the output (a closed pipe, a full disk); the reporters returned by
/// [`build`] name the output in them.
///
/// Whole-document formats (JSON, JUnit, HTML) write everything from the summary in
/// [`Reporter::on_finish`]; the other calls do nothing unless a format streams.
pub trait Reporter: Send {
    /// The run starts; `total` scenarios will be reported.
    fn on_start(&mut self, _total: usize) -> io::Result<()> {
        Ok(())
    }
    /// One scenario finished (or was skipped).
    fn on_result(&mut self, _result: &ScenarioResult) -> io::Result<()> {
        Ok(())
    }
    /// The run finished; `summary` holds every result again, with the counts.
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()>;
    /// The daemon died; called as soon as that is noticed, before the results it spoiled.
    /// (Whole-document formats say it from [`RunSummary::daemon_death`] instead.)
    fn on_daemon_death(&mut self, _death: &DaemonDeath) -> io::Result<()> {
        Ok(())
    }
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        (**self).on_start(total)
    }
    fn on_result(&mut self, result: &ScenarioResult) -> io::Result<()> {
        (**self).on_result(result)
    }
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        (**self).on_finish(summary)
    }
    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        (**self).on_daemon_death(death)
    }
}

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Readable report for a terminal or a log.
    #[default]
    Human,
    /// Test Anything Protocol, for `prove` and other TAP consumers.
    Tap,
    /// One JSON document (schema: docs/report.schema.json).
    Json,
    /// JUnit XML, for CI test report viewers.
    Junit,
    /// One self-contained HTML page: a row per scenario, its diff and its stream's timeline.
    Html,
}

/// TAP version to declare (`--tap-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TapVersion {
    /// `TAP version 13`: accepted by every `prove`, including Debian 12's.
    #[default]
    #[value(name = "13")]
    V13,
    /// `TAP version 14`, for consumers that want it.
    #[value(name = "14")]
    V14,
}

/// Whether to colour human output (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether the output is a terminal and the value of `NO_COLOR`.
    /// Following no-color.org, a present, non-empty `NO_COLOR` turns `Auto` colour off.
    pub fn enabled(self, output_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => output_is_terminal && no_color.is_none_or(OsStr::is_empty),
        }
    }
}

/// How to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Output format.
    pub format: Format,
    /// TAP version, for [`Format::Tap`].
    pub tap_version: TapVersion,
    /// Colour, for [`Format::Human`].
    pub color: ColorChoice,
    /// Draw a live progress line on stderr (only ever on a terminal, and only for the human
    /// format or an output file, so it never mixes with a report on the same terminal).
    pub progress: bool,
}

/// Where a report goes.
pub struct Output {
    writer: Box<dyn Write + Send>,
    is_terminal: bool,
    is_file: bool,
    name: String,
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Output {
        let stdout = io::stdout();
        Output {
            is_terminal: stdout.is_terminal(),
            writer: Box::new(stdout),
            is_file: false,
            name: "standard output".into(),
        }
    }

    /// A file, created or truncated (`-o FILE`).
    pub fn file(path: &Path) -> Result<Output, OpenError> {
        let file = File::create(path).map_err(|source| OpenError {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Output {
            is_terminal: file.is_terminal(),
            writer: Box::new(BufWriter::new(file)),
            is_file: true,
            name: path.display().to_string(),
        })
    }

    /// `path` when given, standard output otherwise.
    pub fn open(path: Option<&Path>) -> Result<Output, OpenError> {
        path.map_or_else(|| Ok(Output::stdout()), Output::file)
    }

    /// Any writer (an in-memory buffer, a socket), never treated as a terminal.
    pub fn writer(name: impl Into<String>, writer: impl Write + Send + 'static) -> Output {
        Output {
            writer: Box::new(writer),
            is_terminal: false,
            is_file: false,
            name: name.into(),
        }
    }

    /// Whether the output is a terminal.
    pub fn is_terminal(&self) -> bool {
        self.is_terminal
    }
}

/// The report file could not be created.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create the report file {}: {source}; check that its directory exists and is writable",
    path.display()
)]
pub struct OpenError {
    /// The file asked for.
    pub path: PathBuf,
    /// Why it failed.
    #[source]
    pub source: io::Error,
}

/// The reporter for `options`, writing to `output`. Colour follows [`ColorChoice::enabled`]
/// with this process's `NO_COLOR`.
pub fn build(options: &Options, output: Output) -> Box<dyn Reporter> {
    let name = output.name;
    let progress = options.progress && (options.format == Format::Human || output.is_file);
    let inner: Box<dyn Reporter> = match options.format {
        Format::Human => {
            let color = options
                .color
                .enabled(output.is_terminal, std::env::var_os("NO_COLOR").as_deref());
            let human = human::Human::new(output.writer, color);
            // Off a terminal nobody watches lines arrive: open with the causes instead.
            if output.is_terminal {
                Box::new(human)
            } else {
                Box::new(human.causes_first())
            }
        }
        Format::Tap => {
            let tap = tap::Tap::new(output.writer, options.tap_version);
            if output.is_terminal {
                Box::new(tap)
            } else {
                Box::new(tap.causes_first())
            }
        }
        Format::Json => Box::new(json::Json::new(output.writer)),
        Format::Junit => Box::new(junit::Junit::new(output.writer)),
        Format::Html => Box::new(html::run::Html::new(output.writer)),
    };
    let named = Box::new(Named { inner, name });
    if progress {
        Box::new(progress::Progress::new(named))
    } else {
        named
    }
}

/// Two reporters fed the same results (e.g. an HTML page and the JSON report beside it).
pub struct Tee(pub Box<dyn Reporter>, pub Box<dyn Reporter>);

impl Reporter for Tee {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        self.0.on_start(total)?;
        self.1.on_start(total)
    }
    fn on_result(&mut self, result: &ScenarioResult) -> io::Result<()> {
        self.0.on_result(result)?;
        self.1.on_result(result)
    }
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        // The second report is written even when the first cannot be.
        let first = self.0.on_finish(summary);
        self.1.on_finish(summary)?;
        first
    }
    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        self.0.on_daemon_death(death)?;
        self.1.on_daemon_death(death)
    }
}

/// Names the output in write errors ("cannot write the report to out.json: No space left").
struct Named {
    inner: Box<dyn Reporter>,
    name: String,
}

impl Named {
    fn context(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("cannot write the report to {}: {e}", self.name),
        )
    }
}

impl Reporter for Named {
    fn on_start(&mut self, total: usize) -> io::Result<()> {
        self.inner.on_start(total).map_err(|e| self.context(e))
    }
    fn on_result(&mut self, result: &ScenarioResult) -> io::Result<()> {
        self.inner.on_result(result).map_err(|e| self.context(e))
    }
    fn on_finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        self.inner.on_finish(summary).map_err(|e| self.context(e))
    }
    fn on_daemon_death(&mut self, death: &DaemonDeath) -> io::Result<()> {
        self.inner
            .on_daemon_death(death)
            .map_err(|e| self.context(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(
            ColorChoice::Auto.enabled(true, empty),
            "an empty NO_COLOR is unset"
        );
        assert!(!ColorChoice::Auto.enabled(true, set));
        assert!(!ColorChoice::Auto.enabled(false, None));
        assert!(ColorChoice::Always.enabled(false, set));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn missing_directory_is_a_named_error() {
        let err = Output::file(Path::new("/nonexistent-dir/report.json"))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("/nonexistent-dir/report.json"), "{text}");
        assert!(text.contains("directory exists"), "{text}");
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_name_the_output() {
        for format in [Format::Human, Format::Tap] {
            let options = Options {
                format,
                ..Options::default()
            };
            let mut r = build(&options, Output::writer("out.tap", Broken));
            let err = r.on_start(1).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            assert!(
                err.to_string()
                    .contains("cannot write the report to out.tap: pipe closed")
            );
        }
    }
}
