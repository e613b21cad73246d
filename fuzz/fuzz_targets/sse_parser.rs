//! The SSE parser under every chunking the fuzzer can think of: the input is a byte stream plus
//! a split plan (and sometimes small limits), and parsing it in those feeds must give exactly
//! what parsing it in one piece gives — events with their offsets, comments, retry values,
//! errors, the unterminated-event report — without panicking. The oracle is the one the property
//! tests use: `streamcheck::prop::sse_check_split`.
//!
//! Input layout (arbitrary's derive, for hand-written seeds): one byte whose low bit selects
//! small limits (then one byte of line limit and two little-endian bytes of event limit); then
//! feed sizes, each preceded by a byte with the low bit set, ended by a byte with it clear;
//! then the stream, to the end of the input.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use streamcheck::prop::sse_check_split;
use streamcheck::sse::Limits;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Line and event data limits small enough for the stream to cross.
    small_limits: Option<(u8, u16)>,
    /// Feed sizes, used in turn until the stream is consumed; 0 makes an empty feed.
    feeds: Vec<u8>,
    /// The stream.
    stream: &'a [u8],
}

/// The cut offsets that feeding `stream_len` bytes in pieces of `feeds` sizes (cycled) makes.
fn cuts(feeds: &[u8], stream_len: usize) -> Vec<usize> {
    if feeds.iter().all(|&size| size == 0) {
        // Only empty feeds: one of each before the stream, in one piece.
        return vec![0; feeds.len()];
    }
    let mut cuts = Vec::new();
    let mut at = 0;
    for &size in feeds.iter().cycle() {
        at += usize::from(size);
        if at >= stream_len {
            break;
        }
        cuts.push(at);
    }
    cuts
}

fuzz_target!(|input: Input<'_>| {
    let limits = match input.small_limits {
        Some((line, event)) => Limits::default()
            .with_max_line(line.into())
            .with_max_event(event.into()),
        None => Limits::default(),
    };
    let cuts = cuts(&input.feeds, input.stream.len());
    if let Err(failure) = sse_check_split(input.stream, &cuts, limits) {
        panic!("{failure}");
    }
});
