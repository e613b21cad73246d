//! Proptest strategies for [`ResponseSpec`]s, cut points and byte edits.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{BodySpec, ChunkSpec, ExtSpec, ExtValue, InterimSpec, Mutation, ResponseSpec};

fn fields() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((vec(any::<u8>(), 0..12), vec(any::<u8>(), 0..24)), 0..5)
}

fn ext_spec() -> impl Strategy<Value = ExtSpec> {
    let value = prop_oneof![
        vec(any::<u8>(), 0..8).prop_map(ExtValue::Token),
        vec(any::<u8>(), 0..12).prop_map(ExtValue::Quoted),
    ];
    (
        vec(any::<u8>(), 0..8),
        proptest::option::of(value),
        any::<bool>(),
    )
        .prop_map(|(name, value, spaced)| ExtSpec {
            name,
            value,
            spaced,
        })
}

fn chunk_spec() -> impl Strategy<Value = ChunkSpec> {
    (
        prop_oneof![vec(any::<u8>(), 0..40), vec(any::<u8>(), 200..600)],
        any::<u8>(),
        any::<bool>(),
        vec(ext_spec(), 0..3),
    )
        .prop_map(|(data, zeros, upper, ext)| ChunkSpec {
            data,
            zeros,
            upper,
            ext,
        })
}

/// Any body framing, with bodies small enough to keep cases fast and large enough to span
/// many pieces.
pub fn body_spec() -> impl Strategy<Value = BodySpec> {
    let bytes = || vec(any::<u8>(), 0..300);
    prop_oneof![
        bytes().prop_map(|body| BodySpec::UntilClose { body }),
        (bytes(), any::<bool>(), vec(any::<u8>(), 0..8)).prop_map(|(body, repeat, excess)| {
            BodySpec::ContentLength {
                body,
                repeat,
                excess,
            }
        }),
        (
            vec(chunk_spec(), 0..8),
            any::<u8>(),
            vec(ext_spec(), 0..2),
            fields(),
            any::<bool>(),
            Just(false),
            vec(any::<u8>(), 0..8),
        )
            .prop_map(
                |(chunks, last_zeros, last_ext, trailers, gzip_first, bare_lf, excess)| {
                    BodySpec::Chunked {
                        chunks,
                        last_zeros,
                        last_ext,
                        trailers,
                        gzip_first,
                        bare_lf,
                        excess,
                    }
                }
            ),
    ]
}

/// Any response with CRLF chunked framing (valid under the default [`Config`](crate::http1::Config)).
pub fn response_spec() -> impl Strategy<Value = ResponseSpec> {
    let interim =
        (any::<u8>(), fields()).prop_map(|(status, headers)| InterimSpec { status, headers });
    (
        vec(interim, 0..3),
        prop_oneof![Just(0u16), Just(4), Just(104), any::<u16>()],
        vec(any::<u8>(), 0..16),
        fields(),
        any::<bool>(),
        any::<bool>(),
        body_spec(),
    )
        .prop_map(
            |(interim, status, reason, headers, http10, bare_lf_head, body)| ResponseSpec {
                interim,
                status,
                reason,
                headers,
                http10,
                bare_lf_head,
                body,
            },
        )
}

/// Cut points for a stream of `len` bytes: a few anywhere, or every byte.
pub fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        4 => vec(0..=len, 0..24),
        1 => Just((0..=len).collect()),
    ]
}

/// Byte edits for [`mutate`](super::mutate).
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, b)| Mutation::Set(a, b)),
        (
            any::<u16>(),
            prop_oneof![
                Just(b'\r'),
                Just(b'\n'),
                Just(b';'),
                Just(b' '),
                any::<u8>()
            ]
        )
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<u16>().prop_map(Mutation::Delete),
    ];
    vec(m, 1..4)
}
