//! README.md's scenario catalog is exactly what `streamcheck list` prints, so it cannot fall
//! behind the catalog (`make readme` regenerates it).

mod readme_support;

use readme_support::{compare, replace};

/// The catalog block: `streamcheck list` in a text fence.
fn catalog_block() -> String {
    format!("```text\n{}```\n", streamcheck::scenario::list_human())
}

#[test]
fn the_readme_catalog_is_the_list_output() {
    readme_support::check("catalog", &catalog_block(), "`streamcheck list`");
}

#[test]
fn the_list_output_is_what_the_binary_prints() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamcheck"))
        .arg("list")
        .output()
        .expect("cannot run streamcheck list");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        streamcheck::scenario::list_human()
    );
}

const SAMPLE: &str = "intro\n<!-- x:begin -->\nold\n<!-- x:end -->\noutro\n";

#[test]
fn a_stale_block_names_the_line_and_the_command_that_regenerates_it() {
    let e = compare(SAMPLE, "x", "new\n", "`streamcheck list`").unwrap_err();
    assert!(
        e.contains("`x` block is not what `streamcheck list` prints"),
        "{e}"
    );
    assert!(
        e.contains("line 1 of the block:\n  README.md: old\n  generated: new"),
        "{e}"
    );
    assert!(e.ends_with("run `make readme` to regenerate it"), "{e}");
    assert_eq!(compare(SAMPLE, "x", "old\n", "it"), Ok(()));
}

#[test]
fn a_block_that_only_grew_says_where() {
    let e = compare(SAMPLE, "x", "old\nmore\n", "it").unwrap_err();
    assert!(
        e.contains("README.md: (end of block)\n  generated: more"),
        "{e}"
    );
}

#[test]
fn missing_markers_say_what_to_add() {
    let e = compare("no markers\n", "x", "new\n", "it").unwrap_err();
    assert!(
        e.starts_with("README.md has no `<!-- x:begin -->` line"),
        "{e}"
    );
    assert!(e.contains("then run `make readme`"), "{e}");
    let e = compare("<!-- x:begin -->\nold\n", "x", "", "it").unwrap_err();
    assert!(e.contains("no `<!-- x:end -->`"), "{e}");
}

#[test]
fn replacing_a_block_keeps_everything_around_it() {
    assert_eq!(
        replace(SAMPLE, "x", "new\n").unwrap(),
        "intro\n<!-- x:begin -->\nnew\n<!-- x:end -->\noutro\n"
    );
}
