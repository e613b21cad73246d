//! Structure-aware fuzzing of `streamcheck::http1`: the fuzzer builds a response (1xx heads,
//! head, until-close / Content-Length / chunked body with extensions and trailers), may edit
//! its bytes, and chooses where the reads split it.
//!
//! Asserts: no panic; any split gives the same events and error as one feed (the runner also
//! checks every data slice's offset against the piece it came from, and that errors are
//! sticky); and an unedited response parses to exactly what was encoded.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use streamcheck::http1::{Config, Excess};
use streamcheck::prop::http1::{BodySpec, Mutation, Observed, ResponseSpec, mutate, pieces, run};

#[derive(Debug, Arbitrary)]
struct Input {
    spec: ResponseSpec,
    /// Byte edits; none means the response is valid and must parse as encoded.
    mutations: Vec<Mutation>,
    /// Where reads end (mod length + 1).
    cuts: Vec<u16>,
    /// Allow bare LF in chunked framing and Content-Length with Transfer-Encoding.
    relaxed: bool,
    /// Small limits, to reach the limit errors.
    max_head: Option<u8>,
    max_trailer: Option<u8>,
}

fuzz_target!(|input: Input| {
    let (mut bytes, expected) = input.spec.encode();
    let mut config = Config::new()
        .allow_bare_lf_in_chunked(input.relaxed)
        .allow_content_length_with_transfer_encoding(input.relaxed);
    if let Some(n) = input.max_head {
        config = config.max_head_bytes(usize::from(n));
    }
    if let Some(n) = input.max_trailer {
        config = config.max_trailer_bytes(usize::from(n));
    }
    let bare_lf = matches!(input.spec.body, BodySpec::Chunked { bare_lf: true, .. });
    let valid = input.mutations.is_empty()
        && input.max_head.is_none()
        && input.max_trailer.is_none()
        && (input.relaxed || !bare_lf);
    mutate(&mut bytes, &input.mutations);

    let whole = run(&config, &[&bytes]);
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    assert_eq!(
        run(&config, &pieces(&bytes, &cuts)),
        whole,
        "split differs from one-shot"
    );

    if valid {
        let finish = whole.result.as_ref().expect("a valid response parses");
        assert_eq!(finish.framing, expected.framing);
        assert_eq!(finish.end, expected.end);
        let excess = (expected.excess > 0).then_some(Excess {
            offset: expected.end,
            len: expected.excess,
        });
        assert_eq!(finish.excess, excess);
        assert_eq!(whole.body(), expected.body);
        let head = whole.events.iter().find_map(|e| match e {
            Observed::Head(h, _) => Some(h),
            _ => None,
        });
        let head = head.expect("a valid response has a final head");
        assert_eq!(
            (head.status(), head.end()),
            (expected.status, expected.head_end)
        );
    }
});
