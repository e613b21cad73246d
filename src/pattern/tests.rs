use std::time::Duration;

use super::*;

fn settings() -> MockSettings {
    MockSettings::default()
}

fn spec(s: &str) -> BuiltinSpec {
    parse(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .builtin()
        .expect("builtin")
}

/// A deliberately small SSE reader (WHATWG line splitting, BOM, comments, optional space,
/// multi-line data) so every plan can be read back independently of how it was framed.
fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).expect("plans are UTF-8");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d);
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        } else {
            assert!(line.starts_with(':'), "unexpected line {line:?}");
        }
    }
    assert!(data.is_none(), "an event was left undispatched");
    events
}

/// Reads a plan back as (content pieces, finish_reason, done).
fn read_back(plan: &UpstreamPlan) -> (Vec<String>, Option<String>, bool) {
    let mut pieces = Vec::new();
    let (mut finish, mut done) = (None, false);
    for data in sse_data(&plan.body()) {
        assert!(!done, "event after [DONE]");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&data).expect("chunk is JSON");
        assert_eq!(v["id"], CHUNK_ID);
        assert_eq!(v["model"], CHUNK_MODEL);
        let choice = &v["choices"][0];
        if let Some(c) = choice["delta"]["content"].as_str() {
            pieces.push(c.to_owned());
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            finish = Some(r.to_owned());
        }
    }
    (pieces, finish, done)
}

#[test]
fn catalog_files_load_and_agree_with_themselves() {
    let catalog = def::load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.patterns.len(), 21);
    let names: Vec<&str> = catalog.patterns.iter().map(Pattern::name).collect();
    for name in [
        "default", "unicode", "short", "long", "abort", "finish", "escapes", "split",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    assert_eq!(valid_specs().last().map(String::as_str), Some("script:ID"));
    assert!(valid_specs().contains(&"abort:N".to_owned()));
}

#[test]
fn every_stream_plan_reads_back_as_its_expected_outcome() {
    let with_param = |p: &Pattern| match p.name() {
        "abort" | "reset" => format!("{}:4", p.name()),
        "split" => "split:3".into(),
        "stall" | "delay" => format!("{}:20", p.name()),
        "finish" => "finish:length".into(),
        "error" => "error:503".into(),
        n => n.to_owned(),
    };
    for pattern in catalog() {
        let s = spec(&with_param(pattern));
        for nonce in [None, Some("n-1")] {
            let (plan, exp) = (s.plan(&settings(), nonce), s.expected(&settings(), nonce));
            if let ExpectedKind::UpstreamError { status, .. } = exp.kind {
                assert_eq!(plan.status, status);
                continue;
            }
            assert_eq!(plan.status, 200, "{}", pattern.name());
            let (pieces, finish, done) = read_back(&plan);
            assert_eq!(pieces, exp.pieces, "{}", pattern.name());
            assert_eq!(pieces.concat(), exp.content);
            assert_eq!(finish, exp.finish_reason, "{}", pattern.name());
            assert_eq!(done, exp.done, "{}", pattern.name());
            let reset = exp.kind == ExpectedKind::Reset;
            assert_eq!(plan.ending == Ending::Reset, reset, "{}", pattern.name());
        }
    }
}

#[test]
fn default_is_the_benchmark_answer_byte_for_byte() {
    let plan = BuiltinSpec::default_pattern().plan(&settings(), None);
    assert_eq!(plan.writes.len(), 20);
    assert_eq!(
        &plan.writes[0].bytes[..],
        br#"data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":"mock-model","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}

"#
    );
    assert_eq!(
        &plan.writes[18].bytes[..],
        br#"data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":"mock-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

"#
    );
    assert_eq!(&plan.writes[19].bytes[..], DONE_EVENT);
    assert_eq!(plan.writes[0].delay_before, Duration::ZERO);
    assert!(
        plan.writes[1..]
            .iter()
            .all(|w| w.delay_before == Duration::from_millis(50))
    );
    let exp = BuiltinSpec::default_pattern().expected(&settings(), None);
    assert_eq!(
        exp.content,
        "Hello world! This is a mock LLM response for benchmarking streaming performance. The actual content doesn't"
    );
    assert_eq!(
        plan.headers[0],
        ("content-type".into(), "text/event-stream".into())
    );
}

#[test]
fn default_follows_chunk_count_by_cycling_and_carries_the_nonce_in_one_chunk() {
    let s = MockSettings {
        chunk_count: 20,
        chunk_delay: Duration::ZERO,
    };
    let exp = BuiltinSpec::default_pattern().expected(&s, None);
    assert_eq!(exp.pieces.len(), 20);
    assert_eq!(exp.pieces[18], "Hello");
    let with = BuiltinSpec::default_pattern().expected(&s, Some("abc_1"));
    assert_eq!(with.pieces.len(), 21);
    assert_eq!(with.pieces[1], " [abc_1]");
    assert!(with.content.starts_with("Hello [abc_1] world!"));
    let zero = MockSettings {
        chunk_count: 0,
        chunk_delay: Duration::ZERO,
    };
    assert_eq!(
        BuiltinSpec::default_pattern()
            .expected(&zero, Some("z"))
            .pieces,
        [" [z]"]
    );
    // Other patterns ignore the nonce.
    assert_eq!(
        spec("short").expected(&s, Some("x")),
        spec("short").expected(&s, None)
    );
}

#[test]
fn abort_takes_the_first_n_validation_words_and_falls_back_to_5() {
    let exp = spec("abort:3").expected(&settings(), None);
    assert_eq!(exp.content, "Hello world!");
    assert_eq!(
        (exp.kind, exp.done, exp.finish_reason),
        (ExpectedKind::Truncated, false, None)
    );
    assert_eq!(
        spec("abort:13").expected(&settings(), None).pieces[11..],
        ["Hello", " world"]
    );
    for fallback in [
        "abort",
        "abort:",
        "abort:x",
        "abort:-1",
        "abort:+3",
        "abort:999999999",
    ] {
        assert_eq!(spec(fallback).canonical(), "abort:5", "{fallback}");
    }
    let plan = spec("abort:0").plan(&settings(), None);
    assert!(plan.writes.is_empty());
    assert_eq!(plan.ending, Ending::Close);
}

#[test]
fn finish_sets_the_final_reason_and_empty_means_stop() {
    let exp = spec("finish:length").expected(&settings(), None);
    assert_eq!(exp.content, "Test response with custom finish_reason.");
    assert_eq!(exp.finish_reason.as_deref(), Some("length"));
    assert_eq!(spec("finish:").canonical(), "finish:stop");
    assert_eq!(spec("finish").canonical(), "finish:stop");
    let odd = spec(r#"finish:a"b\c"#).plan(&settings(), None);
    assert!(String::from_utf8_lossy(&odd.writes[6].bytes).contains(r#""finish_reason":"a\"b\\c""#));
    assert!(matches!(
        parse("finish:a\u{7}"),
        Err(PatternError::Malformed { .. })
    ));
    assert!(matches!(
        parse(&format!("finish:{}", "r".repeat(65))),
        Err(PatternError::Malformed { .. })
    ));
}

#[test]
fn short_long_and_huge_line_have_the_documented_shapes() {
    let short = spec("short").expected(&settings(), None);
    assert_eq!(short.pieces.len(), 49);
    assert!(short.pieces.iter().all(|p| p.chars().count() == 1));
    assert_eq!(
        short.content,
        "Hello world! This is a test. Each chunk is small."
    );
    let long = spec("long").expected(&settings(), None);
    assert_eq!(
        long.pieces.iter().map(String::len).collect::<Vec<_>>(),
        [4096; 3]
    );
    let huge = spec("huge-line").plan(&settings(), None);
    let line_len = huge.writes[0]
        .bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap();
    assert!(line_len > 100 * 1024, "{line_len}");
    assert_eq!(
        spec("huge-line").expected(&settings(), None).content.len(),
        102_400
    );
}

#[test]
fn unicode_has_35_chunks_covering_zwj_flags_cjk_and_four_byte_characters() {
    let exp = spec("unicode").expected(&settings(), None);
    assert_eq!(exp.pieces.len(), 35);
    let all = exp.content;
    for must in [
        '\u{1F600}',
        '\u{20000}',
        '\u{200D}',
        '\u{1F1EF}',
        '\u{E007F}',
        '\u{301}',
        '世',
        '안',
    ] {
        assert!(all.contains(must), "missing U+{:04X}", must as u32);
    }
    let plan = spec("unicode").plan(&settings(), None);
    // Raw UTF-8 on the wire, not \u escapes.
    assert!(plan.body().windows(4).any(|w| w == "😀".as_bytes()));
}

#[test]
fn escapes_are_written_escaped_and_expected_decoded() {
    let plan = spec("escapes").plan(&settings(), None);
    let body = String::from_utf8(plan.body()).unwrap();
    for wire in [
        r"\n",
        r#"\""#,
        r"\\",
        r"\/",
        r"\u00e9",
        r"\ud83d\ude00",
        r"\uD834\uDD1E",
        r"\u2028",
    ] {
        assert!(body.contains(wire), "{wire}");
    }
    let exp = spec("escapes").expected(&settings(), None);
    for decoded in [
        "Line one\nLine two",
        "\"quoted\"",
        "back\\slash",
        "a/b",
        "café",
        "😀",
        "𝄞",
        "\u{2028}",
    ] {
        assert!(exp.content.contains(decoded), "{decoded:?}");
    }
    assert!(
        exp.content.ends_with(" end\\n"),
        "double unescaping must be caught"
    );
}

#[test]
fn split_cuts_every_write_into_n_bytes_including_through_utf8() {
    let whole = spec("split:1000000").plan(&settings(), None);
    for n in [1, 2, 3, 7] {
        let plan = spec(&format!("split:{n}")).plan(&settings(), None);
        assert_eq!(plan.body(), whole.body());
        assert!(plan.writes.iter().all(|w| (1..=n).contains(&w.bytes.len())));
        let cuts_utf8 = plan
            .writes
            .iter()
            .any(|w| std::str::from_utf8(&w.bytes).is_err());
        assert!(cuts_utf8, "n={n}: no write cuts through a UTF-8 sequence");
        let delayed = plan
            .writes
            .iter()
            .filter(|w| !w.delay_before.is_zero())
            .count();
        assert_eq!(
            delayed,
            whole.writes.len() - 1,
            "one delay per event, the first at once"
        );
    }
    assert!(matches!(
        parse("split:0"),
        Err(PatternError::Malformed { .. })
    ));
    assert_eq!(spec("split").canonical(), "split:1");
}

#[test]
fn framing_variants_change_only_the_framing() {
    let first = |name: &str| spec(name).plan(&settings(), None).writes[0].bytes.to_vec();
    let plain = first("coalesced");
    let chunk = chunk_json("Hello");
    assert!(plain.starts_with(format!("data: {chunk}\n\n").as_bytes()));
    assert_eq!(
        first("bom"),
        [
            b"\xEF\xBB\xBF".as_slice(),
            format!("data: {chunk}\n\n").as_bytes()
        ]
        .concat()
    );
    assert_eq!(first("crlf"), format!("data: {chunk}\r\n\r\n").into_bytes());
    assert_eq!(first("cr"), format!("data: {chunk}\r\r").into_bytes());
    assert_eq!(first("nospace"), format!("data:{chunk}\n\n").into_bytes());
    assert_eq!(first("comments"), b": keep-alive\n\n");
    let multi = String::from_utf8(first("multiline")).unwrap();
    assert_eq!(multi.matches("data: ").count(), 3);
    assert_eq!(
        multi
            .replace("\ndata: ", "")
            .trim_start_matches("data: ")
            .trim_end(),
        chunk
    );
    let spaced = String::from_utf8(first("spaced")).unwrap();
    assert!(spaced.starts_with(r#"data: {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock-model", "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": null}]}"#));
    assert_eq!(spec("coalesced").plan(&settings(), None).writes.len(), 1);
    assert_eq!(spec("comments").plan(&settings(), None).writes.len(), 26);
}

#[test]
fn error_stall_reset_and_delay_take_their_parameters() {
    let err = spec("error:429").plan(&settings(), None);
    assert_eq!(err.status, 429);
    let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(
        err.headers
            .contains(&("content-length".into(), err.body().len().to_string()))
    );
    assert_eq!(spec("error").canonical(), "error:500");
    for bad in [
        "error:200",
        "error:600",
        "error:x",
        "stall",
        "stall:",
        "stall:1s",
        "delay",
        "reset:x",
    ] {
        assert!(
            matches!(parse(bad), Err(PatternError::Malformed { .. })),
            "{bad}"
        );
    }
    let stall = spec("stall:300");
    assert_eq!(
        stall.plan(&settings(), None).writes[0].delay_before,
        Duration::from_millis(300)
    );
    let silence = Duration::from_millis(300);
    assert_eq!(
        stall.expected(&settings(), None).kind,
        ExpectedKind::Stall { silence }
    );
    let reset = spec("reset:2").plan(&settings(), None);
    assert_eq!((reset.writes.len(), reset.ending), (2, Ending::Reset));
    let delay = spec("delay:120").plan(&settings(), None);
    assert_eq!(delay.writes[0].delay_before, Duration::ZERO);
    assert!(
        delay.writes[1..]
            .iter()
            .all(|w| w.delay_before == Duration::from_millis(120))
    );
}

#[test]
fn bad_specs_name_themselves_and_list_the_valid_ones() {
    let err = parse("bogus").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`bogus`") && msg.contains("abort:N") && msg.contains("script:ID"),
        "{msg}"
    );
    assert!(matches!(parse(""), Err(PatternError::Unknown { .. })));
    assert!(matches!(
        parse("unicode:3"),
        Err(PatternError::Malformed { .. })
    ));
    assert!(matches!(
        parse("Unicode"),
        Err(PatternError::Unknown { .. })
    ));
    assert_eq!(parse("script:s-1"), Ok(PatternSpec::Script("s-1".into())));
    assert!(matches!(
        parse("script:"),
        Err(PatternError::Malformed { .. })
    ));
    assert!(matches!(
        resolve("script:a", &settings(), None),
        Err(PatternError::Script { .. })
    ));
}

#[test]
fn script_helpers_build_the_mock_chunk_format() {
    assert_eq!(
        chunk_event("a\"b"),
        br#"data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":"mock-model","choices":[{"index":0,"delta":{"content":"a\"b"},"finish_reason":null}]}

"#
    );
    assert!(
        String::from_utf8(final_event("length"))
            .unwrap()
            .contains(r#""delta":{},"finish_reason":"length""#)
    );
}
