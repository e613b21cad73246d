//! The JSON report validates against docs/report.schema.json, carries its schema version,
//! and reads back into the same run; the schema itself rejects documents that break it.

mod report_support;

use report_support::{drive, scenarios, summary};
use serde_json::{Value, json};
use streamcheck::report::json::{Json, SCHEMA, SCHEMA_VERSION, to_value};
use streamcheck::verdict::{RunSummary, Strictness};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("docs/report.schema.json is JSON");
    jsonschema::draft202012::new(&schema).expect("docs/report.schema.json is a valid schema")
}

fn report(strictness: Strictness) -> (RunSummary, Value) {
    let run = summary(scenarios(strictness), strictness);
    let mut reporter = Json::new(Vec::new());
    drive(&mut reporter, &run);
    let text = String::from_utf8(reporter.into_inner()).unwrap();
    (run, serde_json::from_str(&text).unwrap())
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn report_validates_against_the_schema() {
    let v = validator();
    for strictness in [Strictness::Lenient, Strictness::Strict] {
        let (_, doc) = report(strictness);
        assert_eq!(errors(&v, &doc), Vec::<String>::new());
    }
}

#[test]
fn report_carries_version_counts_and_failure_details() {
    let (_, doc) = report(Strictness::Lenient);
    assert_eq!(doc["schema_version"], SCHEMA_VERSION);
    assert_eq!(doc["generator"]["name"], "streamcheck");
    assert_eq!(doc["started_at"], "2025-06-15T15:06:40.000Z");
    assert_eq!(doc["duration_ns"], 1_234_000_000u64);
    assert_eq!(
        doc["counts"],
        json!({"total": 6, "ok": 1, "informational": 1, "non_strict": 1, "failed": 2, "skipped": 1})
    );
    assert_eq!(doc["causes"].as_array().unwrap().len(), 4);
    assert_eq!(
        doc["causes"][1],
        json!({"key": "done-missing", "text": "no `data: [DONE]` after a complete answer",
               "verdict": "FAILED", "scenarios": ["2.1"]})
    );
    assert_eq!(doc["causes"][3]["verdict"], "NON-STRICT");
    let failed = &doc["scenarios"][1];
    assert_eq!(failed["verdict"], "FAILED");
    assert_eq!(failed["assertions"][2]["cause"]["key"], "done-missing");
    assert_eq!(failed["assertions"][0]["cause"], Value::Null);
    assert_eq!(failed["assertions"][1]["name"], "content");
    assert_eq!(failed["assertions"][1]["received"], "caf\\xc3");
    assert_eq!(
        failed["wire"]["chunks"][1]["hex"],
        "646174613a207b22636f6e74656e74223a22636166c3"
    );
    assert_eq!(failed["timings"]["relay_latency"]["p90_ns"], 180_000);
    // A passing scenario keeps no wire bytes; a skipped one says why.
    assert_eq!(doc["scenarios"][0]["wire"], Value::Null);
    assert_eq!(
        doc["scenarios"][4]["skipped"],
        "needs --daemon-cmd: the daemon's backend cannot be changed while it runs"
    );
}

#[test]
fn strict_counts_non_strict_as_failed() {
    let (_, doc) = report(Strictness::Strict);
    assert_eq!(doc["strict"], true);
    assert_eq!(doc["counts"]["non_strict"], 0);
    assert_eq!(doc["counts"]["failed"], 3);
    assert_eq!(doc["scenarios"][2]["verdict"], "FAILED");
    assert_eq!(
        doc["scenarios"][2]["assertions"][0]["verdict"],
        "NON-STRICT"
    );
}

#[test]
fn report_reads_back_into_the_same_run() {
    let (run, mut doc) = report(Strictness::Lenient);
    let object = doc.as_object_mut().unwrap();
    object.remove("schema_version");
    object.remove("generator");
    let back: RunSummary = serde_json::from_value(doc).unwrap();
    assert_eq!(back, run);
    assert_eq!(to_value(&run).unwrap()["scenarios"][1]["id"], "2.1");
}

#[test]
fn schema_rejects_documents_that_break_it() {
    let v = validator();
    let (_, good) = report(Strictness::Lenient);
    type Breaks = fn(&mut Value);
    let broken: [(&str, Breaks); 7] = [
        ("unknown verdict", |d| {
            d["scenarios"][0]["verdict"] = json!("PASSED")
        }),
        ("missing counts", |d| {
            d.as_object_mut().unwrap().remove("counts");
        }),
        ("unknown top-level field", |d| d["extra"] = json!(1)),
        ("negative duration", |d| d["duration_ns"] = json!(-1)),
        ("chunk with text and hex", |d| {
            d["scenarios"][1]["wire"]["chunks"][0]["hex"] = json!("00")
        }),
        ("upper-case hex", |d| {
            d["scenarios"][1]["wire"]["chunks"][1]["hex"] = json!("FF")
        }),
        ("wrong schema version", |d| d["schema_version"] = json!(1)),
    ];
    for (what, breaks) in broken {
        let mut doc = good.clone();
        breaks(&mut doc);
        assert!(
            !v.is_valid(&doc),
            "the schema accepted a document with {what}"
        );
    }
}

#[test]
fn a_daemon_death_validates_and_reads_back() {
    let mut run = summary(scenarios(Strictness::Lenient), Strictness::Lenient);
    run.daemon_death =
        Some(streamcheck::verdict::DaemonDeath::of_pid(42).during("while 1.2 basic_content ran"));
    let mut reporter = Json::new(Vec::new());
    drive(&mut reporter, &run);
    let text = String::from_utf8(reporter.into_inner()).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(errors(&validator(), &doc), Vec::<String>::new());
    assert_eq!(doc["daemon_death"]["pid"], 42);
    let back: RunSummary = serde_json::from_value(doc).unwrap();
    assert_eq!(back.daemon_death, run.daemon_death);
}
