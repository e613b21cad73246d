//! The whole catalog against the reference daemon, started by the runner, four scenarios at a
//! time: every scenario passes (no failure, no non-strict finding), and each report format
//! comes out in a form its consumers accept (JSON against its schema, TAP through `prove`,
//! JUnit through an XML parser).

mod suite_support;

use std::process::Command;

use serde_json::Value;
use streamcheck::report::json::SCHEMA;
use streamcheck::scenario::catalog;
use suite_support::{FAST, outcome, ref_daemon, streamcheck, tmp_path};

fn run_to_file(format: &str, name: &str, selection: &[&str]) -> (Option<i32>, String, String) {
    let path = tmp_path(name);
    let cmd = ref_daemon(None);
    let path_text = path.to_string_lossy().into_owned();
    let mut args = vec![
        "run",
        "--daemon-cmd",
        &cmd,
        "--jobs",
        "4",
        "--format",
        format,
        "-o",
        &path_text,
    ];
    args.extend(FAST);
    args.extend(selection);
    let (code, _, stderr) = outcome(&streamcheck(&args));
    let report = std::fs::read_to_string(&path).unwrap_or_default();
    (code, report, stderr)
}

#[test]
fn the_reference_daemon_passes_the_whole_catalog_in_parallel() {
    let (code, report, stderr) = run_to_file("json", "whole.json", &[]);
    let doc: Value = serde_json::from_str(&report)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {report}\nstderr: {stderr}"));
    let failing: Vec<String> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "OK" && s["verdict"] != "INFORMATIONAL")
        .map(|s| {
            let bad = s["assertions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["verdict"] != "OK" && a["verdict"] != "INFORMATIONAL");
            format!(
                "{} {}: {}",
                s["id"],
                s["name"],
                bad.map_or(&Value::Null, |a| &a["message"])
            )
        })
        .collect();
    assert_eq!(failing, Vec::<String>::new(), "stderr: {stderr}");
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let counts = &doc["counts"];
    assert_eq!(counts["total"], catalog().len());
    assert_eq!(
        (counts["failed"].as_u64(), counts["non_strict"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        counts["skipped"], 0,
        "with --daemon-cmd every scenario runs"
    );
    let ids: Vec<&str> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let catalog_ids: Vec<&str> = catalog().iter().map(|s| s.id).collect();
    assert_eq!(ids, catalog_ids, "reported in catalog order");

    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn tap_output_is_accepted_by_prove() {
    let (code, tap, stderr) = run_to_file(
        "tap",
        "run.tap",
        &["--category", "unicode", "--category", "abort"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(tap.starts_with("TAP version 13\n1..6\n"), "{tap}");
    let path = tmp_path("run.tap");
    let out = Command::new("prove")
        .args(["-v", "-e", "cat"])
        .arg(&path)
        .output()
        .expect("prove (perl's Test::Harness) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Result: PASS"), "{text}");
    assert_eq!(tap.lines().filter(|l| l.starts_with("ok ")).count(), 6);
}

#[test]
fn junit_output_is_well_formed_xml_with_a_suite_per_category() {
    let (code, xml, stderr) = run_to_file(
        "junit",
        "run.xml",
        &["--category", "headers", "--scenario", "basic_content"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let suites: Vec<(String, usize)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| {
            let cases = n.children().filter(|c| c.has_tag_name("testcase")).count();
            (n.attribute("name").unwrap_or("").to_owned(), cases)
        })
        .collect();
    assert_eq!(suites, [("basic".to_owned(), 1), ("headers".to_owned(), 7)]);
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );
}

#[test]
fn human_output_names_each_scenario_and_sums_up() {
    let cmd = ref_daemon(None);
    let mut args = vec![
        "run",
        "--daemon-cmd",
        &cmd,
        "--scenario",
        "1.1",
        "--scenario",
        "head_timing",
    ];
    args.extend(FAST);
    let (code, stdout, stderr) = outcome(&streamcheck(&args));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("basic_response") && stdout.contains("head_timing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("INFORMATIONAL"),
        "head timing is a fact: {stdout}"
    );
    assert!(
        stdout.contains("1 OK, 1 INFORMATIONAL, 0 NON-STRICT, 0 FAILED"),
        "{stdout}"
    );
}

/// A stream's timeline (the HTML report's): the mock's writes and the client's events on one
/// axis, each relay pair joining a write to a receipt no earlier than it, `[DONE]` last, the
/// close after it.
#[test]
fn a_stream_timeline_joins_the_mocks_writes_to_the_clients_events() {
    use streamcheck::verdict::timeline::MarkKind;

    let run = suite_support::run_ref(None, &["basic_content"], false);
    let r = suite_support::result(&run, "basic_content");
    let t = r
        .timeline
        .as_ref()
        .expect("a stream that ran has a timeline");
    let (writes, receipts) = (&t.writes.items, &t.receipts.items);
    assert!(writes.len() > 2, "{t:#?}");
    assert!(writes.iter().all(|w| w.kind == MarkKind::Write));
    let last = receipts.last().unwrap();
    assert_eq!(last.kind, MarkKind::Done, "{t:#?}");
    assert_eq!(t.done_ns, Some(last.at_ns));
    assert!(t.handoff_ns.unwrap() < t.head_ns.unwrap());
    assert!(t.head_ns.unwrap() <= receipts[0].at_ns);
    assert!(t.end_ns >= last.at_ns, "{t:#?}");
    let relayed = r.timings.relay_latency.as_ref().unwrap().count;
    assert_eq!(t.links.items.len() as u64, relayed);
    for link in &t.links.items {
        assert!(link.written_ns <= link.received_ns, "{link:?}");
        assert!(
            writes.iter().any(|w| w.at_ns == link.written_ns),
            "{link:?}"
        );
        assert!(
            receipts.iter().any(|e| e.at_ns == link.received_ns),
            "{link:?}"
        );
    }
}
