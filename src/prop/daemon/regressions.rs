//! The regression file: failing cases kept so that every later run replays them first.
//!
//! Format (documented in docs/prop.md): UTF-8 text, one case per line as the JSON object
//! [`Case::to_json`] writes; lines that are empty or start with `#` are comments. `prop` adds a
//! comment line before each case it appends (which invariant broke, against which daemon).
//! Cases are replayed in file order.

use std::io::Write as _;
use std::path::Path;

use super::PropError;
use super::case::Case;

/// The header written at the top of a new regression file.
const HEADER: &str = "\
# streamcheck prop: failing cases, replayed before any generated case by every `streamcheck prop`
# run that reads this file (and by `cargo test --test prop_daemon`). One case per line, as the
# JSON object a failure report prints; lines starting with # are comments. See docs/prop.md.
";

/// A case read from a regression file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persisted {
    /// Its line number (from 1).
    pub line: usize,
    /// The case.
    pub case: Case,
}

/// Reads the cases in `path`; a missing file holds none. A line that is not a case is an error
/// naming the file and line.
pub fn load(path: &Path) -> Result<Vec<Persisted>, PropError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PropError::Regressions(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    parse(&text).map_err(|(line, e)| {
        PropError::Regressions(format!(
            "{}:{line}: {e}; fix or delete that line",
            path.display()
        ))
    })
}

/// The cases in a regression file's text; `Err((line, why))` at the first bad line.
pub fn parse(text: &str) -> Result<Vec<Persisted>, (usize, String)> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_text = line.trim();
        if line_text.is_empty() || line_text.starts_with('#') {
            continue;
        }
        let case = Case::from_json(line_text).map_err(|e| (i + 1, e))?;
        cases.push(Persisted { line: i + 1, case });
    }
    Ok(cases)
}

/// Appends `case` with a comment line `note` (one line), creating the file (with its header)
/// and its directory if needed. Returns false, writing nothing, if the file already holds it.
pub fn append(path: &Path, case: &Case, note: &str) -> Result<bool, PropError> {
    let io = |e: std::io::Error| {
        PropError::Regressions(format!(
            "cannot write the failing case to {}: {e}; pass --regressions FILE with a writable \
             path, or --no-persist",
            path.display()
        ))
    };
    if load(path)?.iter().any(|p| p.case == *case) {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let note: String = note
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut text = String::new();
    if new {
        text.push_str(HEADER);
    }
    text.push_str(&format!("# {note}\n{}\n", case.to_json()));
    file.write_all(text.as_bytes()).map_err(io)?;
    Ok(true)
}
