//! Properties of the `prop` case generator itself, with no daemon: every generated script,
//! read the way a client reads a stream (split exactly at the mock's writes), carries the
//! content and ending its expectation says; cases survive their JSON form; and shrinking heads
//! for the smallest case that still fails. Failures are persisted in
//! proptest-regressions/prop-cases.txt and replayed first.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use streamcheck::prop::daemon::{
    Atom, Case, Client, Ending, Eol, Escape, UpstreamEnd, seed_bytes, strategy,
};
use streamcheck::transcript::{Chunk, EndKind, HandoffTimes, Recording, RecordingEnd, Transcript};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/prop-cases.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// What a client makes of the upstream's answer when it reads it as the mock writes it.
fn read_as_client(case: &Case) -> Transcript {
    let built = case.build();
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: text/event-stream\r\n\r\n",
        built.plan.status
    );
    let mut chunks = vec![Chunk::new(0, head.into_bytes())];
    chunks.extend(
        built
            .plan
            .writes
            .iter()
            .enumerate()
            .map(|(i, w)| Chunk::new(i as u64 + 1, w.bytes.to_vec())),
    );
    Transcript::from_recording(&Recording {
        handoff: HandoffTimes::default(),
        chunks,
        end: RecordingEnd {
            at_ns: u64::MAX,
            kind: EndKind::PeerClosed,
        },
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_script_carries_exactly_the_expected_content_and_ending(case in strategy::case()) {
        let built = case.build();
        let t = read_as_client(&case);
        prop_assert_eq!(t.content_bytes(), &built.expected.content[..]);
        let partial = matches!(
            case.ending,
            Ending::Truncate { partial: Some(_) } | Ending::Reset { partial: Some(_) }
        );
        if !partial || case.chunks.is_empty() {
            // A partial event may end inside a character, as a cut upstream would.
            prop_assert!(t.is_valid_utf8(), "the upstream stream is valid UTF-8");
        }
        let completed = t.done() || t.finish_reason().is_some();
        prop_assert_eq!(completed, built.expected.end == UpstreamEnd::Completed);
        if let UpstreamEnd::Status(s) = built.expected.end {
            prop_assert_eq!(built.plan.status, s);
            prop_assert!(t.events.is_empty());
        }
        if let Ending::Done { finish: Some(reason) } | Ending::Finish { reason } = &case.ending {
            prop_assert_eq!(t.finish_reason(), Some(reason.as_str()));
        }
    }

    #[test]
    fn writes_are_never_empty_and_the_tail_comes_only_with_an_aborting_client(
        case in strategy::case()
    ) {
        let built = case.build();
        prop_assert!(built.plan.writes.iter().all(|w| !w.bytes.is_empty()));
        let status = matches!(case.ending, Ending::Status { .. });
        prop_assert_eq!(built.tail_start.is_some(), case.client.aborts() && !status);
        prop_assert!(built.plan.writes.iter().all(|w| w.delay_before.as_millis() <= 50));
    }

    #[test]
    fn cases_survive_their_json_form(case in strategy::case()) {
        prop_assert_eq!(Case::from_json(&case.to_json()), Ok(case));
    }
}

/// Shrinks `strategy::case()` against `fails` from a fixed seed, then applies
/// [`Case::simpler`] while a simpler case still fails, as `prop` does; returns the result.
fn minimal(fails: impl Fn(&Case) -> bool) -> Case {
    let mut case = proptest_minimal(&fails);
    while let Some(simpler) = case.simpler().into_iter().find(|c| fails(c)) {
        case = simpler;
    }
    case
}

/// proptest's own shrinking of a failing case.
fn proptest_minimal(fails: &impl Fn(&Case) -> bool) -> Case {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(11)),
    );
    let result = runner.run(&strategy::case(), |case| {
        if fails(&case) {
            Err(TestCaseError::fail("found"))
        } else {
            Ok(())
        }
    });
    match result {
        Err(TestError::Fail(_, case)) => case,
        other => panic!("the generator never produced a failing case: {other:?}"),
    }
}

/// Whether some write boundary of the case falls inside a multi-byte character.
fn splits_a_character(case: &Case) -> bool {
    case.build()
        .plan
        .writes
        .iter()
        .skip(1)
        .any(|w| w.bytes.first().is_some_and(|b| (0x80..0xC0).contains(b)))
}

#[test]
fn shrinking_heads_for_one_simple_character_cut_once() {
    let case = minimal(splits_a_character);
    let built = case.build();
    assert_eq!(built.generated_writes(), 2, "{}", case.to_json());
    assert_eq!(case.chunks.len(), 1, "{}", case.to_json());
    let atoms = &case.chunks[0].atoms;
    assert_eq!(atoms.len(), 1, "{}", case.to_json());
    assert_eq!(
        atoms[0].text.len(),
        2,
        "a two-byte character: {}",
        case.to_json()
    );
    assert_eq!(atoms[0].escape, Escape::Raw);
    assert_eq!(case.client, Client::Read);
    assert_eq!(
        (case.framing.bom, case.framing.space, case.framing.eol),
        (false, true, Eol::Lf)
    );
    assert_eq!(case.ending, Ending::Done { finish: None });
    assert!(case.ending_cuts.is_empty() && case.chunks[0].cuts.is_empty());
}

#[test]
fn proptest_alone_already_heads_for_few_writes_and_short_text() {
    let case = proptest_minimal(&splits_a_character);
    assert_eq!(case.build().generated_writes(), 2, "{}", case.to_json());
    let atoms: Vec<_> = case.chunks.iter().flat_map(|c| &c.atoms).collect();
    assert_eq!(atoms.len(), 1, "{}", case.to_json());
    assert!(atoms[0].text.len() <= 4, "{}", case.to_json());
}

#[test]
fn shrinking_heads_for_the_simplest_ending_that_still_fails() {
    let case = minimal(|c| matches!(c.ending, Ending::Reset { .. }));
    assert_eq!(case.ending, Ending::Reset { partial: None });
    assert!(case.chunks.is_empty(), "{}", case.to_json());
    assert!(case.build().plan.writes.is_empty());
}

#[test]
fn the_generator_reaches_every_hard_case() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(3)),
    );
    let strategy = strategy::case();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let atoms: Vec<&Atom> = case.chunks.iter().flat_map(|c| &c.atoms).collect();
        let text: String = atoms.iter().map(|a| a.text.as_str()).collect();
        let checks: [(&str, bool); 15] = [
            ("2-byte", text.chars().any(|c| c.len_utf8() == 2)),
            ("3-byte", text.chars().any(|c| c.len_utf8() == 3)),
            ("4-byte", text.chars().any(|c| c.len_utf8() == 4)),
            ("ZWJ", text.contains('\u{200D}')),
            (
                "combining",
                text.contains('\u{301}') || text.contains('\u{308}'),
            ),
            (
                "U+2028",
                text.contains('\u{2028}') || text.contains('\u{2029}'),
            ),
            ("NUL", text.contains('\0')),
            (
                "surrogate pair",
                atoms.iter().any(|a| {
                    matches!(a.escape, Escape::Unicode | Escape::UnicodeUpper)
                        && a.text.chars().any(|c| c.len_utf8() == 4)
                }),
            ),
            (
                "short escape",
                atoms.iter().any(|a| {
                    a.escape == Escape::Short && a.text.contains(['/', '\u{8}', '\u{c}', '"'])
                }),
            ),
            ("CR framing", case.framing.eol == Eol::Cr),
            ("split character", splits_a_character(&case)),
            (
                "truncated",
                matches!(case.ending, Ending::Truncate { partial: Some(_) }),
            ),
            ("reset", matches!(case.ending, Ending::Reset { .. })),
            (
                "abort after events",
                matches!(case.client, Client::AbortAfterEvents { .. }),
            ),
            ("pause", matches!(case.client, Client::Pause { .. })),
        ];
        for (name, hit) in checks {
            if hit {
                seen.insert(name);
            }
        }
    }
    assert_eq!(seen.len(), 15, "only {seen:?}");
}
