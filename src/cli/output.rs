//! Where a command's report goes: standard output, or the file of `-o`.

use std::io::Write as _;
use std::path::Path;

/// Writes `text` to standard output. A reader that stopped early (`| head`) is not an error:
/// the rest is dropped, the command still exits with its own status.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes the report to `path`, or to standard output without one.
pub fn report(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write the report to {}: {e}", path.display())),
        None => {
            stdout(text);
            Ok(())
        }
    }
}
