//! Property: whatever the content, the client format and however the upstream's bytes are split
//! into reads, the client receives exactly the upstream's content, then `[DONE]`; and only the
//! lossy-utf8 fault changes that.

use proptest::prelude::*;

use super::fault::Fault;
use super::reader::Reader;
use super::wire::{ClientFormat, Outcome, Translator};

/// JSON string literal with every non-ASCII character as `\uXXXX` (surrogate pairs beyond the
/// BMP), as some upstreams write it.
fn ascii_json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The upstream's bytes for `pieces`: one chunk each, a final chunk, `[DONE]`.
fn upstream_stream(pieces: &[String], escaped: bool) -> Vec<u8> {
    let mut stream = Vec::new();
    for piece in pieces {
        let literal = if escaped {
            ascii_json(piece)
        } else {
            serde_json::to_string(piece).unwrap()
        };
        stream.extend_from_slice(
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{literal}}},\"finish_reason\":null}}]}}\n\n")
                .as_bytes(),
        );
    }
    stream.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    stream.extend_from_slice(b"data: [DONE]\n\n");
    stream
}

/// Feeds `stream` in the reads given by `cuts`; returns the client bytes and how it ended.
fn relay(
    stream: &[u8],
    cuts: &[usize],
    fault: Option<Fault>,
    format: ClientFormat,
) -> (Vec<u8>, Option<Outcome>) {
    let mut reader = Reader::new(fault);
    let mut translator = Translator::new(fault, format, "mock-model");
    let (mut items, mut out) = (Vec::new(), Vec::new());
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        reader.feed(&stream[start..end], &mut items);
        start = end;
        if let Some(outcome) = items
            .drain(..)
            .find_map(|item| translator.item(item, &mut out))
        {
            return (out, Some(outcome));
        }
    }
    (out, None)
}

/// The content of the client's events (`{"content":…}` or OpenAI chunks), concatenated.
fn client_content(out: &[u8]) -> String {
    let text = std::str::from_utf8(out).expect("the client stream is UTF-8");
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|v| {
            let content = match v.get("choices") {
                Some(choices) => &choices[0]["delta"]["content"],
                None => &v["content"],
            };
            content.as_str().map(String::from)
        })
        .collect()
}

fn any_format() -> impl Strategy<Value = ClientFormat> {
    prop_oneof![
        Just(ClientFormat::Extended),
        Just(ClientFormat::Simplified),
        Just(ClientFormat::Openai),
    ]
}

fn cut_points(len: usize, picks: &[prop::sample::Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #[test]
    fn any_split_relays_the_exact_content(
        pieces in prop::collection::vec(any::<String>(), 1..6),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        escaped in any::<bool>(),
        format in any_format(),
    ) {
        let stream = upstream_stream(&pieces, escaped);
        let (out, outcome) = relay(&stream, &cut_points(stream.len(), &picks), None, format);
        prop_assert_eq!(outcome, Some(Outcome::Complete));
        prop_assert!(out.ends_with(b"data: [DONE]\n\n"));
        prop_assert_eq!(client_content(&out), pieces.concat());
    }

    #[test]
    fn lossy_utf8_fault_differs_exactly_when_a_character_is_split(
        cut in 0usize..64,
    ) {
        let pieces = vec!["日本語🎉".to_string()];
        let stream = upstream_stream(&pieces, false);
        let cut = cut % (stream.len() + 1);
        let (out, _) = relay(&stream, &[cut], Some(Fault::LossyUtf8), ClientFormat::Extended);
        // A cut inside a multi-byte character is one that is not a char boundary of the text.
        let splits_a_char = std::str::from_utf8(&stream[..cut]).is_err();
        prop_assert_eq!(client_content(&out) != pieces.concat(), splits_a_char);
    }
}
