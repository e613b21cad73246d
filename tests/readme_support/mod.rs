//! README.md blocks generated from streamcheck's own output, kept in sync by tests: each block
//! sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->`. A test compares the block with
//! what the code produces now; with `STREAMCHECK_UPDATE_README=1` (what `make readme` sets) it
//! rewrites the block instead.

use std::path::Path;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// What `make readme` sets to rewrite the blocks.
const UPDATE: &str = "STREAMCHECK_UPDATE_README";

/// The text between the markers of block `name` in `readme`, and its byte range.
fn block(readme: &str, name: &str) -> Result<(usize, usize), String> {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let start = readme
        .find(&begin)
        .map(|at| at + begin.len())
        .ok_or_else(|| format!("README.md has no `{}` line", begin.trim_end()))?;
    let stop = readme[start..]
        .find(&end)
        .map(|at| start + at)
        .ok_or_else(|| format!("README.md has no `{end}` after `{}`", begin.trim_end()))?;
    Ok((start, stop))
}

/// The first line where `a` and `b` differ, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let (mut al, mut bl) = (a.lines(), b.lines());
    for n in 1.. {
        match (al.next(), bl.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => break,
            (x, y) => {
                return format!(
                    "line {n} of the block:\n  README.md: {}\n  generated: {}",
                    x.unwrap_or("(end of block)"),
                    y.unwrap_or("(end of block)")
                );
            }
        }
    }
    "the blocks differ only in their last line ending".to_owned()
}

/// What is wrong with block `name` of `readme` when it is not `expected`; `source` names what
/// generates it.
pub fn compare(readme: &str, name: &str, expected: &str, source: &str) -> Result<(), String> {
    let (start, stop) = block(readme, name).map_err(|e| {
        format!(
            "{e}: put the two marker lines where {source}'s output belongs, then run `make readme`"
        )
    })?;
    let current = &readme[start..stop];
    if current == expected {
        return Ok(());
    }
    Err(format!(
        "README.md's `{name}` block is not what {source} prints now ({}); run `make readme` to \
         regenerate it",
        first_difference(current, expected)
    ))
}

/// `readme` with block `name` replaced by `content`.
pub fn replace(readme: &str, name: &str, content: &str) -> Result<String, String> {
    let (start, stop) = block(readme, name)?;
    Ok(format!("{}{content}{}", &readme[..start], &readme[stop..]))
}

/// Checks that README.md's block `name` is `expected` (which ends with a newline), or rewrites
/// it when `STREAMCHECK_UPDATE_README=1`.
pub fn check(name: &str, expected: &str, source: &str) {
    let path = Path::new(README);
    let readme = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let Err(problem) = compare(&readme, name, expected, source) else {
        return;
    };
    if std::env::var(UPDATE).is_ok_and(|v| v == "1") {
        let updated = replace(&readme, name, expected).unwrap_or_else(|e| panic!("{problem}: {e}"));
        std::fs::write(path, updated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    panic!("{problem}");
}
