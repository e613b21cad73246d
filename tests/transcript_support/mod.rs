//! Building recorded streams for the transcript and `parse` tests: chunked bodies, and bytes
//! cut into timed reads.

#![allow(dead_code)] // each test crate uses a different part

use streamcheck::transcript::Chunk;

/// `body` in the chunked transfer coding, in chunks of the sizes given (cycled), then the last
/// chunk and an empty trailer section. Sizes must be non-zero.
pub fn chunked_body(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        out.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend(piece);
        out.extend(b"\r\n");
        rest = tail;
    }
    out.extend(b"0\r\n\r\n");
    out
}

/// `bytes` as the reads that `cuts` make (cuts clamped to the length, in any order), read `k`
/// stamped `step_ns * (k + 1)`; also the read boundaries, from 0 to `bytes.len()`.
pub fn reads(bytes: &[u8], cuts: &[usize], step_ns: u64) -> (Vec<Chunk>, Vec<usize>) {
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().map(|&c| c.min(bytes.len())));
    bounds.push(bytes.len());
    bounds.sort_unstable();
    let chunks = bounds
        .windows(2)
        .enumerate()
        .map(|(k, w)| Chunk::new(step_ns * (k as u64 + 1), &bytes[w[0]..w[1]]))
        .collect();
    (chunks, bounds)
}
