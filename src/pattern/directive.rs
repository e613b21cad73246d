//! Prompt directives: `[[pattern:NAME]]` and `[[nonce:TOKEN]]` inside the text a daemon forwards.
//!
//! Daemons that do not copy `test_pattern` into an `X-Test-Pattern` header still forward the
//! prompt, so the test can steer the mock through it; the nonce ties an upstream request back to
//! the stream that caused it.

/// Longest pattern spec accepted inside a directive.
const MAX_SPEC: usize = 200;

/// The directives found in one text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// The spec inside the first `[[pattern:…]]`, not yet parsed (see [`super::parse`]).
    pub pattern: Option<String>,
    /// The token inside the first `[[nonce:…]]`, already checked by [`is_valid_nonce`].
    pub nonce: Option<String>,
}

/// A directive that starts but cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// `[[pattern:` with no `]]` on the same line within 200 bytes.
    #[error(
        "`[[pattern:` is not closed by `]]` on the same line within {MAX_SPEC} bytes; write `[[pattern:NAME]]`"
    )]
    UnterminatedPattern,
    /// `[[nonce:` followed by something other than 1 to 64 of `A-Z a-z 0-9 _ -` and `]]`.
    #[error(
        "malformed nonce directive near {found:?}; write `[[nonce:TOKEN]]` with TOKEN made of 1 to 64 of A-Z a-z 0-9 _ -"
    )]
    BadNonce {
        /// Up to 80 bytes from the start of the directive.
        found: String,
    },
}

/// True for 1 to 64 ASCII letters, digits, `_` or `-`: the nonce and script-id alphabet, safe in
/// a URL query, a header and a directive.
pub fn is_valid_nonce(token: &str) -> bool {
    (1..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[[pattern:SPEC]]`, for a prompt.
pub fn pattern_directive(spec: &str) -> String {
    format!("[[pattern:{spec}]]")
}

/// `[[nonce:TOKEN]]`, for a prompt.
pub fn nonce_directive(token: &str) -> String {
    format!("[[nonce:{token}]]")
}

/// Finds the first pattern and the first nonce directive in `text`.
pub fn find_directives(text: &str) -> Result<Directives, DirectiveError> {
    let mut found = Directives::default();
    if let Some(start) = text.find("[[pattern:") {
        let rest = &text[start + "[[pattern:".len()..];
        let end = rest
            .find("]]")
            .filter(|&e| e <= MAX_SPEC && !rest[..e].contains(['\n', '\r']));
        match end {
            Some(e) => found.pattern = Some(rest[..e].to_owned()),
            None => return Err(DirectiveError::UnterminatedPattern),
        }
    }
    if let Some(start) = text.find("[[nonce:") {
        let rest = &text[start + "[[nonce:".len()..];
        match rest.find("]]").map(|e| &rest[..e]) {
            Some(token) if is_valid_nonce(token) => found.nonce = Some(token.to_owned()),
            _ => {
                let mut cut = (start + 80).min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                return Err(DirectiveError::BadNonce {
                    found: text[start..cut].to_owned(),
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_both_directives_anywhere_in_the_text() {
        let d = find_directives("say hi [[nonce:a-B_9]] then [[pattern:abort:3]] ok").unwrap();
        assert_eq!(d.pattern.as_deref(), Some("abort:3"));
        assert_eq!(d.nonce.as_deref(), Some("a-B_9"));
        assert_eq!(
            find_directives("plain prompt").unwrap(),
            Directives::default()
        );
    }

    #[test]
    fn first_directive_wins() {
        let d =
            find_directives("[[pattern:short]] [[pattern:long]] [[nonce:x]] [[nonce:y]]").unwrap();
        assert_eq!(d.pattern.as_deref(), Some("short"));
        assert_eq!(d.nonce.as_deref(), Some("x"));
    }

    #[test]
    fn empty_finish_reason_survives_as_an_empty_parameter() {
        let d = find_directives("[[pattern:finish:]]").unwrap();
        assert_eq!(d.pattern.as_deref(), Some("finish:"));
    }

    #[test]
    fn rejects_bad_nonces_and_unterminated_patterns() {
        for bad in [
            "[[nonce:]]",
            "[[nonce:has space]]",
            "[[nonce:é]]",
            "[[nonce:abc",
        ] {
            assert!(
                matches!(find_directives(bad), Err(DirectiveError::BadNonce { .. })),
                "{bad}"
            );
        }
        let long = format!("[[nonce:{}]]", "a".repeat(65));
        assert!(find_directives(&long).is_err());
        assert!(find_directives(&format!("[[nonce:{}]]", "a".repeat(64))).is_ok());
        assert_eq!(
            find_directives("[[pattern:short"),
            Err(DirectiveError::UnterminatedPattern)
        );
        assert_eq!(
            find_directives("[[pattern:sh\nort]]"),
            Err(DirectiveError::UnterminatedPattern)
        );
    }

    #[test]
    fn bad_nonce_excerpt_is_cut_on_a_char_boundary() {
        let text = format!("[[nonce:{}", "é".repeat(60));
        let Err(DirectiveError::BadNonce { found }) = find_directives(&text) else {
            panic!("expected BadNonce");
        };
        assert!(found.len() <= 80 && found.starts_with("[[nonce:"));
    }
}
