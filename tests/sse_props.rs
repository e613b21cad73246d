//! Property tests for the SSE parser: for arbitrary streams and arbitrary split plans,
//! incremental parsing gives exactly what one-shot parsing gives. Failures are persisted in
//! proptest-regressions/sse.txt (committed) and replayed first by every `cargo test`.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use streamcheck::prop::{sse_case, sse_check_split, sse_interesting_cuts, sse_limits, sse_stream};
use streamcheck::sse::Limits;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/sse.txt"
        )))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn incremental_parsing_equals_one_shot((stream, cuts) in sse_case(), limits in sse_limits()) {
        if let Err(failure) = sse_check_split(&stream, &cuts, limits) {
            prop_assert!(false, "{}", failure);
        }
    }

    #[test]
    fn one_byte_feeds_equal_one_shot(stream in sse_stream()) {
        let cuts: Vec<usize> = (1..stream.len()).collect();
        if let Err(failure) = sse_check_split(&stream, &cuts, Limits::default()) {
            prop_assert!(false, "{}", failure);
        }
    }

    #[test]
    fn every_interesting_cut_alone_equals_one_shot(stream in sse_stream()) {
        for cut in sse_interesting_cuts(&stream).into_iter().take(64) {
            if let Err(failure) = sse_check_split(&stream, &[cut], Limits::default()) {
                prop_assert!(false, "{}", failure);
            }
        }
    }
}

/// The generators reach what the property is about: UTF-8 sequences cut at every inner byte,
/// CR|LF and BOM cuts, long lines. Checked on a fixed-seed sample so it cannot flake.
#[test]
fn generators_reach_the_hard_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(Config::default().rng_algorithm),
    );
    let (mut utf8_inner, mut crlf, mut bom, mut long, mut cut_total) =
        ([false; 3], false, false, false, 0);
    for _ in 0..2000 {
        let (stream, cuts) = sse_case().new_tree(&mut runner).expect("tree").current();
        cut_total += cuts.len();
        long |= stream
            .split(|&b| b == b'\n' || b == b'\r')
            .any(|line| line.len() > 65_536);
        for &cut in &cuts {
            if cut == 0 || cut >= stream.len() {
                continue;
            }
            crlf |= stream[cut - 1] == b'\r' && stream[cut] == b'\n';
            bom |= stream.starts_with(b"\xEF\xBB\xBF") && (cut == 1 || cut == 2);
            // How many bytes of the sequence precede the cut: 1, 2 or 3.
            if (0x80..0xC0).contains(&stream[cut]) {
                let lead = (1..=3).find(|&k| cut >= k && stream[cut - k] >= 0xC0);
                if let Some(k) = lead {
                    let width = match stream[cut - k] {
                        0xC0..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        _ => 4,
                    };
                    if k < width {
                        utf8_inner[k - 1] = true;
                    }
                }
            }
        }
    }
    assert!(cut_total > 0);
    assert_eq!(
        utf8_inner, [true; 3],
        "cuts after the 1st, 2nd and 3rd byte of a sequence"
    );
    assert!(crlf, "a CRLF cut between CR and LF");
    assert!(bom, "a BOM cut inside");
    assert!(long, "a line over 64 KiB");
}

/// Long data lines of mixed UTF-8, sometimes with a bad byte, cut into feeds of a few KiB: the
/// parser checks UTF-8 as such data arrives, and must agree with std about where it breaks.
fn long_mixed_utf8_line() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let piece = prop_oneof![
        Just(&b"a"[..]),
        Just("é".as_bytes()),
        Just("€".as_bytes()),
        Just("😀".as_bytes()),
        Just(&b"\xFF"[..]),
        Just(&b"\xE2\x82"[..]),
    ];
    (
        prop::collection::vec((piece, 1usize..600), 1..40),
        1usize..9000,
    )
        .prop_flat_map(|(runs, feed)| {
            let mut stream = b"data: ".to_vec();
            for (piece, n) in runs {
                for _ in 0..n {
                    stream.extend_from_slice(piece);
                }
            }
            stream.extend_from_slice(b"\n\n");
            let cuts: Vec<usize> = (1..=stream.len() / feed).map(|k| k * feed).collect();
            (Just(stream), Just(cuts))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..config() })]

    #[test]
    fn utf8_checked_on_arrival_agrees_with_one_shot((stream, cuts) in long_mixed_utf8_line()) {
        if let Err(failure) = sse_check_split(&stream, &cuts, Limits::default()) {
            prop_assert!(false, "{}", failure);
        }
    }
}
