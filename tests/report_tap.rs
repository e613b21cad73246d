//! The TAP report, read back by perl's Test::Harness: `prove` must accept it, count failures
//! and skips right and exit non-zero exactly when a scenario failed; TAP::Parser must decode
//! the YAML diagnostics to the very messages the scenarios produced.

mod report_support;

use std::path::Path;
use std::process::{Command, Output};

use report_support::{drive, passing_scenarios, scenarios, summary, tmp_path};
use serde_json::Value;
use streamcheck::report::TapVersion;
use streamcheck::report::tap::Tap;
use streamcheck::verdict::{RunSummary, Strictness};

fn tap(summary: &RunSummary, version: TapVersion) -> String {
    let mut reporter = Tap::new(Vec::new(), version);
    drive(&mut reporter, summary);
    String::from_utf8(reporter.into_inner()).unwrap()
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = tmp_path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a perl tool; a missing perl is a failure that says what to install, never a skip.
fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?}: {e}. The TAP report is validated with perl's Test::Harness: \
             install perl (Debian: apt-get install perl), which provides prove and TAP::Parser",
            cmd.get_program()
        )
    })
}

fn prove(path: &Path) -> (bool, String) {
    let out = run(Command::new("prove").args(["-v", "-e", "cat"]).arg(path));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every TAP::Parser result as a JSON object, then one `summary` object.
fn tap_parser(path: &Path) -> Vec<Value> {
    const SCRIPT: &str = r#"
        use strict; use warnings; use TAP::Parser; use JSON::PP;
        open my $fh, '<:raw', $ARGV[0] or die "cannot open $ARGV[0]: $!";
        my $tap = do { local $/; <$fh> };
        my $p = TAP::Parser->new({ tap => $tap });
        my $json = JSON::PP->new->canonical;
        while (my $r = $p->next) {
            my %h = (type => $r->type);
            if ($r->is_test) {
                %h = (%h, ok => $r->is_ok ? 1 : 0, number => $r->number,
                      description => $r->description, directive => $r->directive,
                      explanation => $r->explanation);
            }
            $h{data} = $r->data if $r->is_yaml;
            $h{comment} = $r->comment if $r->is_comment;
            print $json->encode(\%h), "\n";
        }
        print $json->encode({ type => 'summary', version => $p->version,
            parse_errors => [$p->parse_errors], passed => [$p->passed],
            failed => [$p->failed], skipped => [$p->skipped] }), "\n";
    "#;
    let out = run(Command::new("perl").args(["-e", SCRIPT]).arg(path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prove_accepts_a_failing_run_and_fails() {
    let run = summary(scenarios(Strictness::Lenient), Strictness::Lenient);
    let path = write("failing.tap", &tap(&run, TapVersion::V13));
    let (ok, text) = prove(&path);
    assert!(
        !ok,
        "prove must exit non-zero when a scenario failed:\n{text}"
    );
    assert!(!text.contains("Parse errors"), "{text}");
    assert!(
        text.contains("Failed tests:  2, 6") || text.contains("Failed test:  2, 6"),
        "{text}"
    );
    assert!(text.contains("Tests=6"), "{text}");
    assert!(text.contains("Result: FAIL"), "{text}");
}

#[test]
fn prove_accepts_a_passing_run_and_passes() {
    let run = summary(passing_scenarios(), Strictness::Lenient);
    let path = write("passing.tap", &tap(&run, TapVersion::V13));
    let (ok, text) = prove(&path);
    assert!(ok, "prove must pass a run without failures:\n{text}");
    assert!(!text.contains("Parse errors"), "{text}");
    assert!(text.contains("Result: PASS"), "{text}");
}

#[test]
fn strict_makes_the_non_strict_scenario_fail_in_prove() {
    let run = summary(
        report_support::scenarios(Strictness::Strict)
            .into_iter()
            .filter(|s| s.id != "2.1" && s.id != "5.1")
            .collect(),
        Strictness::Strict,
    );
    let path = write("strict.tap", &tap(&run, TapVersion::V13));
    let (ok, text) = prove(&path);
    assert!(!ok, "{text}");
    assert!(
        text.contains("Failed test:  2"),
        "the non-strict scenario (number 2) fails:\n{text}"
    );
}

#[test]
fn tap_parser_reads_back_every_line_and_the_yaml() {
    let scenarios = scenarios(Strictness::Lenient);
    let run = summary(scenarios.clone(), Strictness::Lenient);
    let results = tap_parser(&write("parsed.tap", &tap(&run, TapVersion::V13)));
    let end = results.last().unwrap();
    assert_eq!(end["type"], "summary");
    assert_eq!(end["version"], 13);
    assert_eq!(end["parse_errors"], serde_json::json!([]), "{end}");
    assert_eq!(end["failed"], serde_json::json!([2, 6]));
    assert_eq!(end["skipped"], serde_json::json!([5]));

    let tests: Vec<&Value> = results.iter().filter(|r| r["type"] == "test").collect();
    assert_eq!(tests.len(), 6);
    assert_eq!(tests[0]["description"], "- 1.1 basic_response");
    // `#` and `\` in the name are escaped, so no directive is read out of it.
    assert_eq!(tests[5]["directive"], "");
    assert_eq!(tests[4]["directive"], "SKIP");
    assert_eq!(
        tests[4]["explanation"],
        "needs --daemon-cmd: the daemon's backend cannot be changed while it runs"
    );

    // YAML blocks: the failed (2.1, 5.1) and non-strict (3.1) scenarios, in order.
    let yaml: Vec<&Value> = results
        .iter()
        .filter(|r| r["type"] == "yaml")
        .map(|r| &r["data"])
        .collect();
    assert_eq!(yaml.len(), 3);
    let by_id = |id: &str| scenarios.iter().find(|s| s.id == id).unwrap();
    for (data, id) in yaml.iter().zip(["2.1", "3.1", "5.1"]) {
        let s = by_id(id);
        assert_eq!(data["id"], id);
        assert_eq!(data["name"], s.name.as_str());
        assert_eq!(data["description"], s.description.as_str());
        assert_eq!(data["verdict"], s.verdict.label());
        let findings: Vec<_> = s
            .assertions
            .iter()
            .filter(|a| a.verdict > streamcheck::verdict::Verdict::Pass)
            .collect();
        let decoded = data["assertions"].as_array().unwrap();
        assert_eq!(decoded.len(), findings.len());
        for (d, a) in decoded.iter().zip(findings) {
            // Decoded by YAMLish, the message is exactly the assertion's.
            assert_eq!(d["message"], a.message.as_str());
            assert_eq!(d["verdict"], a.verdict.label());
            assert_eq!(d["expected"].as_str(), a.expected.as_deref());
            assert_eq!(d["received"].as_str(), a.received.as_deref());
        }
    }
    // The wire bytes: text where UTF-8, hex where not (the read that ends mid-character).
    let chunks = yaml[0]["wire"]["chunks"].as_array().unwrap();
    assert_eq!(
        chunks[0]["text"],
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    );
    assert_eq!(chunks[1]["hex"], hex(b"data: {\"content\":\"caf\xc3"));
    assert_eq!(chunks[2]["at_ns"], "2500000"); // YAMLish scalars are strings
    assert_eq!(yaml[0]["wire"]["end"], "closed by the daemon");
    assert_eq!(yaml[0]["timings"]["gaps"]["p50_ns"], "2000000");

    // Informational facts of a passing scenario are comments after its line.
    let comments: Vec<&Value> = results.iter().filter(|r| r["type"] == "comment").collect();
    assert!(
        comments.iter().any(|c| c["comment"]
            == "3.2 headers_early: INFORMATIONAL headers before upstream: headers went out 2.0 ms before the upstream answered"),
        "{comments:?}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn results_are_streamed_as_they_arrive() {
    let scenarios = scenarios(Strictness::Lenient);
    let mut reporter = Tap::new(Vec::new(), TapVersion::V13);
    use streamcheck::report::Reporter;
    reporter.on_start(scenarios.len()).unwrap();
    reporter.on_result(&scenarios[0]).unwrap();
    let so_far = String::from_utf8(reporter.into_inner()).unwrap();
    assert_eq!(so_far, "TAP version 13\n1..6\nok 1 - 1.1 basic_response\n");
}

#[test]
fn version_14_is_declared_when_asked() {
    let run = summary(passing_scenarios(), Strictness::Lenient);
    let v14 = tap(&run, TapVersion::V14);
    let v13 = tap(&run, TapVersion::V13);
    assert!(v14.starts_with("TAP version 14\n1..4\n"), "{v14}");
    // Nothing but the version line differs.
    assert_eq!(
        v14.lines().skip(1).collect::<Vec<_>>(),
        v13.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn the_causes_lead_after_the_plan_and_prove_accepts_them() {
    let run = summary(scenarios(Strictness::Lenient), Strictness::Lenient);
    let mut reporter = Tap::new(Vec::new(), TapVersion::V13).causes_first();
    drive(&mut reporter, &run);
    let text = String::from_utf8(reporter.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["TAP version 13", "1..6"]);
    assert_eq!(
        lines[2], "# 4 causes across 3 scenarios that did not pass",
        "{text}"
    );
    assert!(lines[3].starts_with("#   content "), "{text}");
    assert!(lines[3].ends_with(" 2.1"), "{text}");
    assert!(lines[7].starts_with("ok 1 - 1.1 basic_response"), "{text}");
    let path = write("causes-first.tap", &text);
    let (passed, out) = prove(&path);
    assert!(!passed, "a failing run fails in prove:\n{out}");
    assert!(out.contains("Failed 2/6 subtests"), "{out}");
    let results = tap_parser(&path);
    let tests = results.iter().filter(|r| r["type"] == "test").count();
    assert_eq!(tests, 6, "{results:?}");
}
