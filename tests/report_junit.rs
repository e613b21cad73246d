//! The JUnit report, parsed back with an XML parser: one testsuite per category, counts that
//! match the run, failures with message and diagnostic text, skips with their reason.

mod report_support;

use report_support::{drive, scenarios, summary};
use roxmltree::{Document, Node};
use streamcheck::report::junit::Junit;
use streamcheck::verdict::Strictness;

fn junit(strictness: Strictness) -> String {
    let run = summary(scenarios(strictness), strictness);
    let mut reporter = Junit::new(Vec::new());
    drive(&mut reporter, &run);
    String::from_utf8(reporter.into_inner()).unwrap()
}

fn attr<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> lacks {name}", node.tag_name().name()))
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

#[test]
fn suites_and_counts_match_the_run() {
    let xml = junit(Strictness::Lenient);
    let doc = Document::parse(&xml).expect("the JUnit report is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(attr(root, "name"), "streamcheck");
    assert_eq!(attr(root, "tests"), "6");
    assert_eq!(attr(root, "failures"), "2");
    assert_eq!(attr(root, "errors"), "0");
    assert_eq!(attr(root, "skipped"), "1");

    let suites: Vec<(&str, &str, &str, &str)> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|s| {
            (
                attr(s, "name"),
                attr(s, "tests"),
                attr(s, "failures"),
                attr(s, "skipped"),
            )
        })
        .collect();
    assert_eq!(
        suites,
        [
            ("basic", "1", "0", "0"),
            ("unicode", "1", "1", "0"),
            ("headers", "2", "0", "0"),
            ("upstream", "1", "0", "1"),
            ("splits", "1", "1", "0"),
        ]
    );
}

#[test]
fn failures_carry_message_and_diagnostic() {
    let xml = junit(Strictness::Lenient);
    let doc = Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("2.1 unicode_content"))
        .unwrap();
    assert_eq!(attr(case, "classname"), "streamcheck.unicode");
    assert_eq!(attr(case, "time"), "0.052");
    let failure = child(case, "failure").expect("a failed scenario has <failure>");
    assert_eq!(attr(failure, "type"), "FAILED");
    let message = attr(failure, "message");
    assert!(
        message.starts_with("content: content ends early: received 4 of 5 bytes"),
        "{message}"
    );
    assert!(message.ends_with("(and 1 more)"), "{message}");
    let text = failure.text().unwrap();
    for needle in [
        "Multi-byte characters arrive intact.",
        "FAILED content: content ends early",
        "  expected: café",
        "  received: caf\\xc3",
        "FAILED [DONE]: no `data: [DONE]` event",
        "timings: handoff 85.0 µs",
        "wire: 78 bytes received in 3 reads, head 52 bytes",
        "data: {\"content\":\"caf\\xc3",
        "end: closed by the daemon",
    ] {
        assert!(
            text.contains(needle),
            "diagnostic lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn skipped_non_strict_and_informational_cases() {
    let xml = junit(Strictness::Lenient);
    let doc = Document::parse(&xml).unwrap();
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap()
    };
    let skipped = child(case("4.3 upstream_unreachable"), "skipped").unwrap();
    assert!(attr(skipped, "message").starts_with("needs --daemon-cmd"));

    let non_strict = case("3.1 headers_cache");
    assert!(
        child(non_strict, "failure").is_none(),
        "non-strict passes without --strict"
    );
    let out = child(non_strict, "system-out").unwrap().text().unwrap();
    assert!(out.starts_with("NON-STRICT: "), "{out}");
    assert!(out.contains("no Cache-Control header"), "{out}");

    let info = child(case("3.2 headers_early"), "system-out")
        .unwrap()
        .text()
        .unwrap();
    assert!(
        info.contains("INFORMATIONAL headers before upstream: headers went out"),
        "{info}"
    );

    // The odd name survives XML escaping intact.
    let odd = case("5.1 odd # name \\ \"q\"");
    assert!(child(odd, "failure").is_some());
}

#[test]
fn strict_fails_the_non_strict_case() {
    let xml = junit(Strictness::Strict);
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(attr(doc.root_element(), "failures"), "3");
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("3.1 headers_cache"))
        .unwrap();
    let failure = child(case, "failure").unwrap();
    assert!(attr(failure, "message").starts_with("header Cache-Control: no Cache-Control header"));
}

#[test]
fn the_first_suite_carries_the_causes() {
    let xml = junit(Strictness::Lenient);
    let doc = Document::parse(&xml).unwrap();
    let suites: Vec<Node> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let properties: Vec<(&str, &str)> = child(suites[0], "properties")
        .expect("the first suite has properties")
        .children()
        .filter(|n| n.has_tag_name("property"))
        .map(|p| (attr(p, "name"), attr(p, "value")))
        .collect();
    assert!(
        properties.contains(&("causes", "4 causes across 3 scenarios that did not pass")),
        "{properties:?}"
    );
    assert!(
        properties.contains(&(
            "cause.2",
            "done-missing: no `data: [DONE]` after a complete answer: 2.1"
        )),
        "{properties:?}"
    );
    let out = child(suites[0], "system-out")
        .and_then(|n| n.text())
        .unwrap();
    assert!(out.starts_with("4 causes across 3 scenarios"), "{out}");
    for later in &suites[1..] {
        let names: Vec<&str> = child(*later, "properties")
            .map(|p| p.children().filter_map(|n| n.attribute("name")).collect())
            .unwrap_or_default();
        assert!(!names.contains(&"causes"), "{names:?}");
    }
}
