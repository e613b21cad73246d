//! The handoff data each [`Data`] form sends, and what the upstream must then receive.

use serde_json::json;

use super::Data;
use crate::pattern::{nonce_directive, pattern_directive};

/// What one handoff sends, and what it implies for the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Handoff {
    /// The data bytes, exactly (empty: the ring sends Apache's single NUL).
    pub bytes: Vec<u8>,
    /// The nonce in the prompt, when the data carries one.
    pub nonce: Option<String>,
    /// The prompt the upstream must receive, decoded, when the data defines one exactly.
    pub prompt: Option<String>,
    /// The `test_pattern` the upstream must receive as `X-Test-Pattern`.
    pub test_pattern: Option<String>,
    /// The pattern spec the mock must serve (through the header or the prompt's directive).
    pub pattern: String,
    /// `response_headers` the daemon must append to its head.
    pub response_headers: Vec<(String, String)>,
}

/// The words before the directives of every prompt.
const ASK: &str = "Answer with the test pattern.";

/// The escaped prompt of [`Data::EscapedPrompt`] as it appears between the JSON quotes, and the
/// text it decodes to (before the directives, which follow a space).
const ESCAPED_RAW: &str =
    r#"Caf\u00e9 au lait\nsecond line \"quoted\" back\\slash tab\tend \ud83d\ude00 \u4e16\u754c"#;
const ESCAPED_DECODED: &str = "Café au lait\nsecond line \"quoted\" back\\slash tab\tend 😀 世界";

/// The prompt of the standard forms: the request, then both directives.
fn prompt(spec: &str, nonce: &str) -> String {
    format!(
        "{ASK} {} {}",
        pattern_directive(spec),
        nonce_directive(nonce)
    )
}

fn standard(spec: &str, nonce: &str, prompt: String) -> Handoff {
    let value = json!({"prompt": prompt, "user_id": 1, "test_pattern": spec});
    Handoff {
        bytes: value.to_string().into_bytes(),
        nonce: Some(nonce.to_owned()),
        prompt: Some(prompt),
        test_pattern: Some(spec.to_owned()),
        pattern: spec.to_owned(),
        response_headers: Vec::new(),
    }
}

/// The data of `form` for pattern `spec` and a fresh `nonce`.
pub(super) fn build(form: Data, spec: &str, nonce: &str) -> Handoff {
    match form {
        Data::Standard => standard(spec, nonce, prompt(spec, nonce)),
        Data::Empty => Handoff {
            bytes: Vec::new(),
            nonce: None,
            prompt: None,
            test_pattern: None,
            pattern: spec.to_owned(),
            response_headers: Vec::new(),
        },
        Data::InvalidJson => {
            // The prompt string never closes: a parser must reject this, and a daemon that
            // forwards the text anyway still carries the directives.
            let text = format!(
                r#"{{"test_pattern":"{spec}","prompt":"{} and the JSON stops here"#,
                prompt(spec, nonce)
            );
            Handoff {
                bytes: text.into_bytes(),
                nonce: Some(nonce.to_owned()),
                prompt: None,
                test_pattern: None,
                pattern: spec.to_owned(),
                response_headers: Vec::new(),
            }
        }
        Data::Padded { bytes } => {
            let tail = prompt(spec, nonce);
            let empty = standard(spec, nonce, format!(" {tail}")).bytes.len();
            let filler = padding(bytes.saturating_sub(empty));
            standard(spec, nonce, format!("{filler} {tail}"))
        }
        Data::EscapedPrompt => {
            let directives = format!("{} {}", pattern_directive(spec), nonce_directive(nonce));
            let text = format!(
                r#"{{"prompt":"{ESCAPED_RAW} {directives}","user_id":1,"test_pattern":"{spec}"}}"#
            );
            Handoff {
                bytes: text.into_bytes(),
                nonce: Some(nonce.to_owned()),
                prompt: Some(format!("{ESCAPED_DECODED} {directives}")),
                test_pattern: Some(spec.to_owned()),
                pattern: spec.to_owned(),
                response_headers: Vec::new(),
            }
        }
        Data::ResponseHeaders => {
            let headers = vec![
                ("X-Streamcheck-Nonce".to_owned(), nonce.to_owned()),
                ("X-Streamcheck-Echo".to_owned(), "passed through".to_owned()),
            ];
            let prompt = prompt(spec, nonce);
            let object: serde_json::Map<String, serde_json::Value> =
                headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let value = json!({
                "prompt": prompt,
                "user_id": 1,
                "test_pattern": spec,
                "response_headers": object,
            });
            Handoff {
                bytes: value.to_string().into_bytes(),
                nonce: Some(nonce.to_owned()),
                prompt: Some(prompt),
                test_pattern: Some(spec.to_owned()),
                pattern: spec.to_owned(),
                response_headers: headers,
            }
        }
    }
}

/// `len` bytes of plain ASCII words (nothing a JSON encoder escapes).
fn padding(len: usize) -> String {
    const TEXT: &str = "This sentence pads the handoff data to its size. ";
    TEXT.chars().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::find_directives;

    fn decoded_prompt(h: &Handoff) -> String {
        let v: serde_json::Value = serde_json::from_slice(&h.bytes).unwrap();
        v["prompt"].as_str().unwrap().to_owned()
    }

    #[test]
    fn standard_data_carries_the_pattern_twice_and_the_nonce() {
        let h = build(Data::Standard, "abort:5", "n-1");
        let v: serde_json::Value = serde_json::from_slice(&h.bytes).unwrap();
        assert_eq!(v["test_pattern"], "abort:5");
        let d = find_directives(&decoded_prompt(&h)).unwrap();
        assert_eq!(d.pattern.as_deref(), Some("abort:5"));
        assert_eq!(d.nonce.as_deref(), Some("n-1"));
        assert_eq!(h.prompt.as_deref(), Some(decoded_prompt(&h).as_str()));
    }

    #[test]
    fn padded_data_has_exactly_the_asked_size_with_directives_at_the_end() {
        for size in [5 * 1024, 70 * 1024, 150 * 1024] {
            let h = build(Data::Padded { bytes: size }, "finish:stop", "n-2");
            assert_eq!(h.bytes.len(), size);
            let p = decoded_prompt(&h);
            assert_eq!(h.prompt.as_deref(), Some(p.as_str()));
            assert!(p.ends_with("[[nonce:n-2]]"), "{}", &p[p.len() - 40..]);
            assert_eq!(find_directives(&p).unwrap().nonce.as_deref(), Some("n-2"));
        }
    }

    #[test]
    fn escaped_prompt_decodes_to_the_expected_text() {
        let h = build(Data::EscapedPrompt, "finish:stop", "n-3");
        assert_eq!(decoded_prompt(&h), h.prompt.unwrap());
        let raw = String::from_utf8(h.bytes).unwrap();
        for escape in [r"\u00e9", r"\n", r#"\""#, r"\\", r"\ud83d\ude00"] {
            assert!(raw.contains(escape), "{escape} missing from {raw}");
        }
    }

    #[test]
    fn invalid_json_is_invalid_but_carries_the_directives() {
        let h = build(Data::InvalidJson, "finish:stop", "n-4");
        assert!(serde_json::from_slice::<serde_json::Value>(&h.bytes).is_err());
        let text = String::from_utf8(h.bytes).unwrap();
        assert_eq!(
            find_directives(&text).unwrap().nonce.as_deref(),
            Some("n-4")
        );
    }

    #[test]
    fn response_headers_are_sent_as_an_object() {
        let h = build(Data::ResponseHeaders, "finish:stop", "n-5");
        let v: serde_json::Value = serde_json::from_slice(&h.bytes).unwrap();
        assert_eq!(v["response_headers"]["X-Streamcheck-Nonce"], "n-5");
        assert_eq!(h.response_headers.len(), 2);
    }

    #[test]
    fn empty_data_is_empty() {
        let h = build(Data::Empty, "default", "n-6");
        assert!(h.bytes.is_empty() && h.nonce.is_none());
    }
}
