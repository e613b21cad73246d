//! What each connection sends and must get back: its nonce, its handoff data, and the content a
//! correct daemon relays for it, compared piece by piece as events arrive.
//!
//! Every connection carries its own nonce, `RUN-NNNNNNNN` (a per-run tag and the connection
//! number, fixed width). With the default pattern the mock puts ` [NONCE]` into the answer as a
//! content piece of its own, so the content of every stream differs, and a piece naming another
//! connection's nonce is cross-talk, attributed to that connection.
//!
//! Nonces have one length, so the expected content of every connection is one template with the
//! nonce spliced in at fixed offsets: nothing per connection is stored or computed up front.

use crate::pattern::{self, ExpectedKind, MockSettings, nonce_directive, pattern_directive};

/// Digits of the connection number in a nonce.
pub const NONCE_DIGITS: usize = 8;

/// The most connections one run can number.
pub const MAX_CONNECTIONS: u64 = 99_999_999;

/// The per-run tag and the nonce format built on it.
#[derive(Debug, Clone)]
pub struct Nonces {
    tag: String,
    /// Finds `TAG-` in content (built once: it is searched for in every content piece).
    finder: memchr::memmem::Finder<'static>,
}

impl Nonces {
    /// A tag of six lower-case letters and digits, different for every run in practice (from
    /// the process id and the clock).
    pub fn new() -> Nonces {
        let seed = u64::from(std::process::id()) << 32 ^ crate::clock::monotonic_ns();
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut tag = String::from("s");
        for _ in 0..5 {
            let d = (x % 36) as u32;
            x /= 36;
            tag.push(char::from_digit(d, 36).unwrap_or('0'));
        }
        Nonces::with_tag(&tag)
    }

    /// Nonces with this tag (letters and digits).
    pub fn with_tag(tag: &str) -> Nonces {
        let needle = format!("{tag}-");
        Nonces {
            tag: tag.to_owned(),
            finder: memchr::memmem::Finder::new(needle.as_bytes()).into_owned(),
        }
    }

    /// The nonce of connection `i`, e.g. `s4k2x9-00000042`.
    pub fn nonce(&self, i: u64) -> String {
        format!("{}-{:0width$}", self.tag, i, width = NONCE_DIGITS)
    }

    /// The connection number a text names with this run's nonce format, if any: the first
    /// `TAG-DIGITS` in it.
    pub fn find_connection(&self, text: &[u8]) -> Option<u64> {
        let skip = self.tag.len() + 1;
        for at in self.finder.find_iter(text) {
            let digits = text.get(at + skip..at + skip + NONCE_DIGITS)?;
            if digits.iter().all(u8::is_ascii_digit) {
                return std::str::from_utf8(digits).ok()?.parse().ok();
            }
        }
        None
    }
}

impl Default for Nonces {
    fn default() -> Self {
        Nonces::new()
    }
}

/// The handoff data of every connection of one kind: a JSON object whose prompt carries the
/// nonce directive (and the pattern directive, with `test_pattern`, when a pattern is chosen).
#[derive(Debug, Clone)]
pub struct HandoffData {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl HandoffData {
    /// Data asking for `spec`, or for the mock's default answer when `None`.
    pub fn new(spec: Option<&str>) -> HandoffData {
        const MARK: &str = "\u{1}NONCE\u{1}";
        let value = match spec {
            Some(spec) => serde_json::json!({
                "prompt": format!("Answer with the test pattern. {} {}", pattern_directive(spec), nonce_directive(MARK)),
                "user_id": 1,
                "test_pattern": spec,
            }),
            None => serde_json::json!({
                "prompt": format!("Stream the benchmark answer. {}", nonce_directive(MARK)),
                "user_id": 1,
            }),
        };
        let text = value.to_string();
        // The mark's control characters come out escaped; find them in that form.
        let escaped = serde_json::to_string(MARK).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        let (before, after) = text.split_once(escaped).unwrap_or((&text, ""));
        HandoffData {
            before: before.as_bytes().to_vec(),
            after: after.as_bytes().to_vec(),
        }
    }

    /// The data bytes for `nonce` (nonces need no JSON escaping).
    pub fn build(&self, nonce: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.before.len() + nonce.len() + self.after.len());
        v.extend_from_slice(&self.before);
        v.extend_from_slice(nonce.as_bytes());
        v.extend_from_slice(&self.after);
        v
    }
}

/// The content a correct daemon relays for one kind of connection, with the connection's nonce
/// wherever the template has connection 0's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedContent {
    template: Vec<u8>,
    /// Offsets of the nonce in the template, ascending.
    nonce_at: Vec<usize>,
    nonce_len: usize,
    /// Content pieces of a complete answer (events carrying content).
    pieces: usize,
    /// Bytes of the largest piece.
    max_piece: usize,
}

/// A stream's content stopped matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Content offset of the first byte that differs (or the first byte past the end).
    pub offset: u64,
}

impl ExpectedContent {
    /// The expected content of `spec` (`None`: the default answer) with the mock's `settings`,
    /// or why stress cannot check it: only patterns a correct daemon completes with `[DONE]`.
    pub fn for_pattern(
        spec: Option<&str>,
        settings: &MockSettings,
        nonces: &Nonces,
    ) -> Result<ExpectedContent, String> {
        let name = spec.unwrap_or("default");
        let parsed = pattern::parse(name).map_err(|e| e.to_string())?;
        let Some(builtin) = parsed.builtin() else {
            return Err(format!(
                "--pattern {name}: stress checks catalog patterns; scripts are for `streamcheck run`"
            ));
        };
        let nonce = nonces.nonce(0);
        let expected = builtin.expected(settings, Some(&nonce));
        if expected.kind != ExpectedKind::Complete || !expected.done {
            return Err(format!(
                "--pattern {name}: a correct daemon does not complete this answer with [DONE], \
                 so every stream would count as failed; stress checks complete answers (default, \
                 unicode, short, long, escapes, split:N, coalesced, …): test failure patterns \
                 with `streamcheck run`"
            ));
        }
        Ok(ExpectedContent::from_pieces(&expected.pieces, Some(&nonce)))
    }

    /// Content made of `pieces`, with `nonce` (connection 0's) marking where each connection's
    /// own nonce goes.
    pub fn from_pieces(pieces: &[String], nonce: Option<&str>) -> ExpectedContent {
        let template: Vec<u8> = pieces.concat().into_bytes();
        let (nonce_at, nonce_len) = match nonce {
            Some(n) if !n.is_empty() => (
                memchr::memmem::find_iter(&template, n.as_bytes()).collect(),
                n.len(),
            ),
            _ => (Vec::new(), 0),
        };
        ExpectedContent {
            template,
            nonce_at,
            nonce_len,
            pieces: pieces.len(),
            max_piece: pieces.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// Bytes of the largest content piece.
    pub fn max_piece(&self) -> usize {
        self.max_piece
    }

    /// Content bytes of a complete answer.
    pub fn len(&self) -> u64 {
        self.template.len() as u64
    }

    /// Whether the answer has no content.
    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Content pieces of a complete answer.
    pub fn pieces(&self) -> usize {
        self.pieces
    }

    /// Checks that `piece`, received at content offset `at`, is what connection `nonce` must get
    /// there. Bytes past the end of the answer are a mismatch too.
    pub fn check(&self, nonce: &[u8], at: u64, piece: &[u8]) -> Result<(), Mismatch> {
        let start = usize::try_from(at).unwrap_or(usize::MAX);
        let end = start.saturating_add(piece.len());
        let limit = end.min(self.template.len());
        let mismatch = |offset: usize| Mismatch {
            offset: offset as u64,
        };
        // Walk the range in runs that are either literal template or one nonce.
        let mut k = self
            .nonce_at
            .partition_point(|&n| n + self.nonce_len <= start);
        let mut pos = start;
        while pos < end {
            if pos >= limit {
                return Err(mismatch(pos));
            }
            let (upto, expected) = match self.nonce_at.get(k) {
                Some(&n) if n <= pos => {
                    let upto = (n + self.nonce_len).min(limit);
                    let Some(own) = nonce.get(pos - n..upto - n) else {
                        return Err(mismatch(pos));
                    };
                    (upto, own)
                }
                Some(&n) => (n.min(limit), &self.template[pos..n.min(limit)]),
                None => (limit, &self.template[pos..limit]),
            };
            let got = &piece[pos - start..upto - start];
            if let Some(i) = got.iter().zip(expected).position(|(a, b)| a != b) {
                return Err(mismatch(pos + i));
            }
            if self
                .nonce_at
                .get(k)
                .is_some_and(|&n| upto == n + self.nonce_len)
            {
                k += 1;
            }
            pos = upto;
        }
        Ok(())
    }

    /// The expected content of connection `nonce` from `offset`, at most `max` bytes (for
    /// examples in the report).
    pub fn excerpt(&self, nonce: &[u8], offset: u64, max: usize) -> Vec<u8> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.template.len());
        let end = start.saturating_add(max).min(self.template.len());
        let mut out = self.template[start..end].to_vec();
        for &n in &self.nonce_at {
            for k in 0..self.nonce_len {
                let p = n + k;
                if (start..end).contains(&p)
                    && let Some(&b) = nonce.get(k)
                {
                    out[p - start] = b;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected_default() -> (Nonces, ExpectedContent) {
        let nonces = Nonces::with_tag("stest1");
        let e = ExpectedContent::for_pattern(None, &MockSettings::default(), &nonces).unwrap();
        (nonces, e)
    }

    #[test]
    fn nonces_have_one_width_and_name_their_connection() {
        let n = Nonces::with_tag("sabc12");
        assert_eq!(n.nonce(42), "sabc12-00000042");
        assert!(pattern::is_valid_nonce(&n.nonce(MAX_CONNECTIONS)));
        assert_eq!(n.nonce(MAX_CONNECTIONS).len(), n.nonce(0).len());
        assert_eq!(n.find_connection(b" [sabc12-00000042]"), Some(42));
        assert_eq!(n.find_connection(b"sabc12-0042 sabc12-00000007"), Some(7));
        assert_eq!(n.find_connection(b" [sother-00000042]"), None);
        assert_ne!(Nonces::new().nonce(0), "");
    }

    #[test]
    fn handoff_data_is_json_with_the_directives() {
        let d = HandoffData::new(Some("unicode")).build("sabc12-00000003");
        let v: serde_json::Value = serde_json::from_slice(&d).unwrap();
        assert_eq!(v["test_pattern"], "unicode");
        let prompt = v["prompt"].as_str().unwrap();
        let found = pattern::find_directives(prompt).unwrap();
        assert_eq!(found.pattern.as_deref(), Some("unicode"));
        assert_eq!(found.nonce.as_deref(), Some("sabc12-00000003"));
        let d = HandoffData::new(None).build("sabc12-00000004");
        let v: serde_json::Value = serde_json::from_slice(&d).unwrap();
        assert!(v.get("test_pattern").is_none());
        let found = pattern::find_directives(v["prompt"].as_str().unwrap()).unwrap();
        assert_eq!(found.pattern, None);
        assert_eq!(found.nonce.as_deref(), Some("sabc12-00000004"));
    }

    #[test]
    fn each_connection_expects_its_own_nonce() {
        let (nonces, e) = expected_default();
        let settings = MockSettings::default();
        for i in [0u64, 7, 12_345_678] {
            let nonce = nonces.nonce(i);
            let want = pattern::resolve("default", &settings, Some(&nonce))
                .unwrap()
                .expected;
            assert_eq!(e.pieces(), want.pieces.len());
            assert_eq!(e.len(), want.content.len() as u64);
            // Piece by piece, as events arrive.
            let mut at = 0u64;
            for piece in &want.pieces {
                assert_eq!(e.check(nonce.as_bytes(), at, piece.as_bytes()), Ok(()));
                at += piece.len() as u64;
            }
            // All at once, and from any offset.
            assert_eq!(
                e.check(nonce.as_bytes(), 0, want.content.as_bytes()),
                Ok(())
            );
            for cut in 0..want.content.len() {
                let rest = &want.content.as_bytes()[cut..];
                assert_eq!(e.check(nonce.as_bytes(), cut as u64, rest), Ok(()));
            }
            assert_eq!(
                e.excerpt(nonce.as_bytes(), 0, 1000),
                want.content.as_bytes()
            );
        }
    }

    #[test]
    fn another_connections_content_is_a_mismatch_at_the_first_differing_byte() {
        let (nonces, e) = expected_default();
        let mine = nonces.nonce(1);
        let theirs = nonces.nonce(2);
        let want = pattern::resolve("default", &MockSettings::default(), Some(&theirs))
            .unwrap()
            .expected;
        let err = e
            .check(mine.as_bytes(), 0, want.content.as_bytes())
            .unwrap_err();
        let nonce_piece_at = want.content.find(&theirs).unwrap();
        assert_eq!(err.offset as usize, nonce_piece_at + theirs.len() - 1);
        assert_eq!(nonces.find_connection(want.content.as_bytes()), Some(2));
        // Too much content, and a wrong byte.
        let len = e.len();
        assert_eq!(
            e.check(mine.as_bytes(), len, b"x"),
            Err(Mismatch { offset: len })
        );
        assert_eq!(
            e.check(mine.as_bytes(), 0, b"Hellx"),
            Err(Mismatch { offset: 4 })
        );
    }

    #[test]
    fn failure_patterns_and_scripts_are_refused() {
        let n = Nonces::with_tag("stest1");
        let s = MockSettings::default();
        for spec in [
            "abort:3",
            "error:500",
            "reset:2",
            "stall:100",
            "script:s1",
            "nope",
        ] {
            assert!(
                ExpectedContent::for_pattern(Some(spec), &s, &n).is_err(),
                "{spec}"
            );
        }
        let unicode = ExpectedContent::for_pattern(Some("unicode"), &s, &n).unwrap();
        assert_eq!(unicode.pieces(), 35);
    }
}
