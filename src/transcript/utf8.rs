//! Invalid UTF-8 in a stream that arrives in pieces, found at the same offsets for every split.

/// Scans a byte stream fed in pieces and reports the offset of every invalid UTF-8 sequence:
/// one report per "maximal subpart" (the Unicode practice [`String::from_utf8_lossy`] follows,
/// one U+FFFD each), so the reports match what a decoder shows.
///
/// A sequence cut by the end of a piece is held (at most 3 bytes) until the next piece decides
/// it; the bulk of every piece goes through [`std::str::from_utf8`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Utf8Scan {
    /// The valid but incomplete sequence that ended the last piece.
    carry: [u8; 3],
    carry_len: usize,
    /// Stream offset of `carry[0]`.
    carry_offset: u64,
}

/// Length of the sequence a lead byte starts (only called on the lead of a valid prefix).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF4 => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

impl Utf8Scan {
    /// Scans `bytes`, which sit at stream `offset` right after the previous piece, calling
    /// `invalid` with the offset of each invalid sequence found.
    pub(crate) fn feed(&mut self, offset: u64, mut bytes: &[u8], mut invalid: impl FnMut(u64)) {
        let mut at = offset;
        if self.carry_len > 0 {
            let have = self.carry_len;
            let take = bytes.len().min(4);
            let mut joined = [0u8; 7];
            joined[..have].copy_from_slice(&self.carry[..have]);
            joined[have..have + take].copy_from_slice(&bytes[..take]);
            let joined = &joined[..have + take];
            let width = sequence_len(self.carry[0]);
            let used = match std::str::from_utf8(joined) {
                Ok(_) => width - have,
                Err(e) if e.valid_up_to() >= width => width - have,
                Err(e) => match e.error_len() {
                    Some(n) => {
                        invalid(self.carry_offset);
                        // The held bytes were a valid prefix, so the invalid part covers all of
                        // them and possibly more of the new piece.
                        n.saturating_sub(have)
                    }
                    None => {
                        // Still incomplete: then fewer than `width` bytes exist in all, so the
                        // whole piece joins the held ones.
                        let n = joined.len().min(3);
                        self.carry[..n].copy_from_slice(&joined[..n]);
                        self.carry_len = n;
                        return;
                    }
                },
            };
            self.carry_len = 0;
            let used = used.min(bytes.len());
            bytes = &bytes[used..];
            at += used as u64;
        }
        loop {
            let Err(e) = std::str::from_utf8(bytes) else {
                return;
            };
            let valid = e.valid_up_to();
            match e.error_len() {
                Some(n) => {
                    invalid(at + valid as u64);
                    let skip = (valid + n).min(bytes.len());
                    bytes = &bytes[skip..];
                    at += skip as u64;
                }
                None => {
                    let rest = &bytes[valid..];
                    let n = rest.len().min(3);
                    self.carry[..n].copy_from_slice(&rest[..n]);
                    self.carry_len = n;
                    self.carry_offset = at + valid as u64;
                    return;
                }
            }
        }
    }

    /// The stream ended: a sequence still incomplete is invalid.
    pub(crate) fn finish(&mut self, mut invalid: impl FnMut(u64)) {
        if self.carry_len > 0 {
            invalid(self.carry_offset);
            self.carry_len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Scan;

    fn scan(pieces: &[&[u8]]) -> Vec<u64> {
        let mut scan = Utf8Scan::default();
        let mut found = Vec::new();
        let mut offset = 0;
        for piece in pieces {
            scan.feed(offset, piece, |o| found.push(o));
            offset += piece.len() as u64;
        }
        scan.finish(|o| found.push(o));
        found
    }

    /// The offsets of the U+FFFD that `from_utf8_lossy` would insert, found independently.
    fn reference(bytes: &[u8]) -> Vec<u64> {
        let mut found = Vec::new();
        let mut at = 0;
        for chunk in bytes.utf8_chunks() {
            at += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                found.push(at as u64);
            }
            at += chunk.invalid().len();
        }
        found
    }

    #[test]
    fn valid_text_split_anywhere_reports_nothing() {
        let text = "a€😀中é".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(scan(&[&text[..cut], &text[cut..]]), Vec::<u64>::new());
        }
    }

    #[test]
    fn every_split_of_invalid_sequences_matches_the_lossy_decoder() {
        let cases: &[&[u8]] = &[
            b"\xE2\x82",
            b"x\xE2\x82y",
            b"\xF0\x9F\x98x\xF0\x9F\x98\x80",
            b"\xED\xA0\x80\xC0\xAF\xFF\xFE",
            b"\xE2\x82\xE2\x82\xAC\x80",
            b"\xF4\x90\x80\x80\xF0\x8F",
            b"ok\xC3",
        ];
        for bytes in cases {
            let want = reference(bytes);
            assert!(!want.is_empty());
            for a in 0..=bytes.len() {
                for b in a..=bytes.len() {
                    let got = scan(&[&bytes[..a], &bytes[a..b], &bytes[b..]]);
                    assert_eq!(got, want, "{bytes:x?} cut at {a} and {b}");
                }
            }
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(scan(&bytewise), want, "{bytes:x?} one byte at a time");
        }
    }

    #[test]
    fn an_incomplete_sequence_at_the_end_is_reported_at_finish() {
        assert_eq!(scan(&[b"abc\xF0\x9F"]), vec![3]);
        assert_eq!(scan(&[b"abc\xF0", b"\x9F"]), vec![3]);
    }
}
