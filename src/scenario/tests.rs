//! The catalog holds together: ids, names, patterns, and the expectations they imply.

use std::collections::HashSet;

use super::*;
use crate::pattern::{self, ExpectedKind, MockSettings};

fn expected(s: &Scenario) -> pattern::Expected {
    pattern::parse(s.pattern)
        .unwrap()
        .builtin()
        .unwrap()
        .expected(&MockSettings::default(), Some("n"))
}

#[test]
fn ids_follow_the_category_numbers_in_order() {
    for category in Category::ALL {
        let ids: Vec<&str> = catalog()
            .iter()
            .filter(|s| s.category == category)
            .map(|s| s.id)
            .collect();
        assert!(!ids.is_empty(), "{} has no scenario", category.name());
        for (k, id) in ids.iter().enumerate() {
            assert_eq!(*id, format!("{}.{}", category.number(), k + 1));
        }
    }
    let names: HashSet<&str> = catalog().iter().map(|s| s.name).collect();
    assert_eq!(names.len(), catalog().len(), "names are unique");
}

#[test]
fn the_original_suites_names_are_kept() {
    let expected = [
        ("basic", &["basic_response", "basic_content"][..]),
        (
            "unicode",
            &[
                "unicode_content",
                "unicode_emoji",
                "unicode_cjk",
                "unicode_4byte",
            ],
        ),
        ("chunks", &["short_chunks", "long_chunks"]),
        ("abort", &["abort_stream", "abort_early"]),
        ("finish", &["finish_stop", "finish_length"]),
    ];
    for (category, names) in expected {
        let got: Vec<&str> = catalog()
            .iter()
            .filter(|s| s.category.name() == category)
            .map(|s| s.name)
            .collect();
        assert_eq!(got, names);
    }
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        categories,
        [
            "basic",
            "unicode",
            "chunks",
            "abort",
            "finish",
            "headers",
            "handoff",
            "upstream",
            "client",
            "concurrency",
            "splits",
            "upstream-sse"
        ]
    );
}

#[test]
fn every_pattern_is_a_catalog_pattern() {
    for s in catalog() {
        let spec = pattern::parse(s.pattern).unwrap_or_else(|e| panic!("{}: {e}", s.id));
        assert!(spec.builtin().is_some(), "{}: {}", s.id, s.pattern);
    }
}

#[test]
fn splits_and_upstream_sse_drive_the_patterns_the_issue_names() {
    let patterns = |c: Category| -> Vec<&str> {
        catalog()
            .iter()
            .filter(|s| s.category == c)
            .map(|s| s.pattern)
            .collect()
    };
    assert_eq!(
        patterns(Category::Splits),
        ["split:1", "split:3", "coalesced", "huge-line", "escapes"]
    );
    assert_eq!(
        patterns(Category::UpstreamSse),
        [
            "bom",
            "crlf",
            "cr",
            "nospace",
            "comments",
            "multiline",
            "spaced"
        ]
    );
}

#[test]
fn categories_drive_the_outcomes_they_are_about() {
    for s in catalog() {
        let kind = expected(s).kind;
        let ok = match s.category {
            Category::Abort => kind == ExpectedKind::Truncated,
            Category::Upstream if s.drive == Drive::Unreachable => true,
            Category::Upstream => matches!(
                kind,
                ExpectedKind::UpstreamError { .. }
                    | ExpectedKind::Stall { .. }
                    | ExpectedKind::Reset
            ),
            Category::Headers if s.name == "head_timing" => {
                matches!(kind, ExpectedKind::Stall { .. })
            }
            _ => kind == ExpectedKind::Complete,
        };
        assert!(ok, "{} {} drives {} ({kind:?})", s.id, s.name, s.pattern);
    }
    let abort = catalog().iter().find(|s| s.name == "abort_stream").unwrap();
    assert_eq!(
        expected(abort).content,
        "Hello world! This is",
        "abort_stream relays the first 5 validation words"
    );
}

fn range_text(range: (usize, usize)) -> Vec<String> {
    let s = catalog()
        .iter()
        .find(|s| s.name == "unicode_content")
        .unwrap();
    expected(s).pieces[range.0..range.1].to_vec()
}

#[test]
fn unicode_piece_ranges_hold_what_they_are_named_after() {
    for piece in range_text(unicode::EMOJI) {
        assert!(
            piece
                .chars()
                .any(|c| c as u32 >= 0x1F000 || c == '\u{20E3}' || c == '\u{FE0F}'),
            "{piece:?} is not emoji"
        );
    }
    let cjk = |c: char| matches!(c as u32, 0x3040..=0x30FF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF);
    for piece in range_text(unicode::CJK) {
        assert!(
            piece.trim().chars().all(cjk),
            "{piece:?} is not CJK, kana or hangul"
        );
    }
    for piece in range_text(unicode::FOUR_BYTE) {
        assert!(
            piece.trim().chars().all(|c| c.len_utf8() == 4),
            "{piece:?} has a character shorter than four bytes"
        );
        assert!(
            !piece
                .chars()
                .any(|c| (0x1F300..=0x1FAFF).contains(&(c as u32)))
        );
    }
    let n = expected(
        catalog()
            .iter()
            .find(|s| s.name == "unicode_4byte")
            .unwrap(),
    )
    .pieces
    .len();
    for s in catalog() {
        for c in s.checks {
            if let Check::ContentPieces { pieces, .. } = c {
                assert!(pieces.0 < pieces.1 && pieces.1 <= n, "{}", s.id);
            }
        }
    }
}

#[test]
fn only_the_crowd_and_the_slow_reader_run_alone() {
    let alone: Vec<&str> = catalog()
        .iter()
        .filter(|s| s.drive.exclusive())
        .map(|s| s.name)
        .collect();
    assert_eq!(alone, ["slow_reader", "concurrent_streams"]);
}

#[test]
fn selection_by_category_name_and_id() {
    assert_eq!(select(&[], &[]).unwrap().len(), catalog().len());
    let unicode = select(&["unicode".into()], &[]).unwrap();
    assert_eq!(unicode.len(), 4);
    let mixed = select(&["abort".into()], &["1.2".into(), "sse_cr".into()]).unwrap();
    let names: Vec<&str> = mixed.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["basic_content", "abort_stream", "abort_early", "sse_cr"]
    );
    let e = select(&["nope".into()], &[]).unwrap_err();
    assert!(e.to_string().contains("upstream-sse"), "{e}");
    let e = select(&[], &["9.9".into()]).unwrap_err();
    assert!(e.to_string().contains("streamcheck list"), "{e}");
}

#[test]
fn the_listing_shows_every_scenario() {
    let text = list_human();
    for s in catalog() {
        assert!(text.contains(s.name) && text.contains(s.id), "{}", s.name);
    }
    let json = list_json();
    let count: usize = json["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["scenarios"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, catalog().len());
    assert_eq!(
        json["categories"][7]["scenarios"][2]["needs_daemon_cmd"],
        true
    );
}
