//! Property tests for `streamcheck::http1`: generated responses parse to exactly what was
//! encoded, under any split; and for any bytes at all (valid responses with random edits, or
//! garbage after a head), feeding them in pieces gives the same events and the same error as
//! feeding them at once.
//!
//! Failures persist in proptest-regressions/http1.txt and are replayed first on every run.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use streamcheck::http1::{Config, Error, Excess, Framing};
use streamcheck::prop::http1::{
    BodySpec, Expected, Observed, Outcome, cuts, mutate, mutations, pieces, response_spec, run,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/http1.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Asserts that `outcome` is the parse `expected` describes, for the wire bytes `bytes`.
fn assert_matches(
    outcome: &Outcome,
    bytes: &[u8],
    expected: &Expected,
) -> Result<(), TestCaseError> {
    let finish = outcome
        .result
        .clone()
        .map_err(|e| TestCaseError::fail(format!("parse failed: {e}")))?;
    prop_assert_eq!(finish.framing, expected.framing);
    prop_assert_eq!(finish.end, expected.end);
    let excess = (expected.excess > 0).then_some(Excess {
        offset: expected.end,
        len: expected.excess,
    });
    prop_assert_eq!(finish.excess, excess);

    let interim: Vec<u16> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Observed::Interim(h) => Some(h.status()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(&interim, &expected.interim);

    let heads: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Observed::Head(h, f) => Some((h, *f)),
            _ => None,
        })
        .collect();
    prop_assert_eq!(heads.len(), 1);
    let (head, framing) = heads[0];
    prop_assert_eq!(framing, expected.framing);
    prop_assert_eq!(head.status(), expected.status);
    prop_assert_eq!(head.reason(), expected.reason.as_str());
    prop_assert_eq!(head.version(), expected.version);
    prop_assert_eq!(head.end(), expected.head_end);
    prop_assert_eq!(
        head.raw(),
        &bytes[head.offset() as usize..expected.head_end as usize]
    );
    let headers: Vec<(String, Vec<u8>)> = head
        .headers()
        .iter()
        .map(|f| (f.name().to_owned(), f.value().to_vec()))
        .collect();
    prop_assert_eq!(&headers, &expected.headers);
    for (name, value) in &expected.headers {
        let upper = name.to_ascii_uppercase();
        prop_assert!(
            head.headers()
                .get_all(&upper)
                .any(|f| f.value() == value.as_slice())
        );
    }

    prop_assert_eq!(outcome.body(), expected.body.clone());
    let ends: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Observed::End(end) => Some(end),
            _ => None,
        })
        .collect();
    if expected.framing == Framing::UntilClose {
        prop_assert!(ends.is_empty());
    } else {
        prop_assert_eq!(ends.len(), 1);
        prop_assert_eq!(ends[0].offset, expected.end);
        let trailers: Vec<(String, Vec<u8>)> = ends[0]
            .trailers
            .iter()
            .map(|f| (f.name().to_owned(), f.value().to_vec()))
            .collect();
        prop_assert_eq!(&trailers, &expected.trailers);
    }
    Ok(())
}

/// A generated response, its expected parse, and cut points for it.
fn encoded_with_cuts() -> impl Strategy<Value = (Vec<u8>, Expected, Vec<usize>)> {
    response_spec().prop_flat_map(|spec| {
        let (bytes, expected) = spec.encode();
        let len = bytes.len();
        (Just(bytes), Just(expected), cuts(len))
    })
}

/// A generated response with random byte edits, and cut points for it.
fn mutated_with_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (response_spec(), mutations()).prop_flat_map(|(spec, edits)| {
        let (mut bytes, _) = spec.encode();
        mutate(&mut bytes, &edits);
        let len = bytes.len();
        (Just(bytes), cuts(len))
    })
}

proptest! {
    #![proptest_config(config())]

    /// A valid response decodes to exactly the head, body, trailers and excess it was built
    /// from, whole and in any pieces.
    #[test]
    fn valid_response_parses_as_encoded_under_any_split((bytes, expected, cuts) in encoded_with_cuts()) {
        let whole = run(&Config::default(), &[&bytes]);
        assert_matches(&whole, &bytes, &expected)?;
        let split = run(&Config::default(), &pieces(&bytes, &cuts));
        prop_assert_eq!(split, whole);
    }

    /// Any bytes near a valid response (so errors of every kind, at every place) give the same
    /// events and the same error in pieces as whole, strict or relaxed.
    #[test]
    fn edited_response_splits_like_one_shot((bytes, cuts) in mutated_with_cuts(), relaxed in any::<bool>()) {
        let config = Config::new()
            .allow_bare_lf_in_chunked(relaxed)
            .allow_content_length_with_transfer_encoding(relaxed);
        let whole = run(&config, &[&bytes]);
        prop_assert_eq!(run(&config, &pieces(&bytes, &cuts)), whole.clone());
        let one_byte: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(run(&config, &one_byte), whole);
    }

    /// Arbitrary bytes after a chunked head: the chunk decoder's every state and error,
    /// whole and in pieces.
    #[test]
    fn garbage_chunked_body_splits_like_one_shot(
        tail in proptest::collection::vec(prop_oneof![
            4 => proptest::sample::select(b"0123456789abcdefABCDEF;=\" \t\r\nxz\\".to_vec()),
            1 => any::<u8>(),
        ], 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        relaxed in any::<bool>(),
    ) {
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        bytes.extend_from_slice(&tail);
        let config = Config::new().allow_bare_lf_in_chunked(relaxed);
        let whole = run(&config, &[&bytes]);
        prop_assert_eq!(run(&config, &pieces(&bytes, &cuts)), whole);
    }

    /// Arbitrary bytes as a whole stream: the head scanner and httparse error location.
    #[test]
    fn garbage_stream_splits_like_one_shot(
        bytes in proptest::collection::vec(prop_oneof![
            4 => proptest::sample::select(b"HTP/1.0 2:\r\n\t ab".to_vec()),
            1 => any::<u8>(),
        ], 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let config = Config::new().max_head_bytes(128);
        let whole = run(&config, &[&bytes]);
        prop_assert_eq!(run(&config, &pieces(&bytes, &cuts)), whole);
    }

    /// With bare LF allowed, a chunked body with LF line ends decodes as encoded; without, it
    /// is rejected at its first chunk-line LF.
    #[test]
    fn bare_lf_chunked_is_a_relaxation((spec, cuts) in response_spec().prop_flat_map(|spec| (Just(spec), proptest::collection::vec(any::<usize>(), 0..16)))) {
        let mut spec = spec;
        let BodySpec::Chunked { bare_lf, .. } = &mut spec.body else {
            return Ok(());
        };
        *bare_lf = true;
        let (bytes, expected) = spec.encode();
        let relaxed = Config::new().allow_bare_lf_in_chunked(true);
        assert_matches(&run(&relaxed, &pieces(&bytes, &cuts)), &bytes, &expected)?;
        let strict = run(&Config::default(), &pieces(&bytes, &cuts));
        if expected.framing == Framing::Chunked {
            let first_lf = bytes[expected.head_end as usize..].iter().position(|&b| b == b'\n');
            let offset = expected.head_end + first_lf.unwrap_or(0) as u64;
            prop_assert_eq!(strict.result, Err(Error::BareLf { offset }));
        }
    }
}
