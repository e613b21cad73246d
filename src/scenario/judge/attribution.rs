//! Which cause a finding is counted under: the kind of a content defect, and findings that
//! follow from another of the same stream, which take its cause.

use crate::verdict::causes::known;
use crate::verdict::{AssertionResult, Cause, Verdict};

/// Findings that follow from another of the same stream take its cause, so a report counts
/// one defect once: everything after a silent response, or one that is not HTTP, is that
/// response; a wrong ending after wrong content is the content's. (The findings keep their own
/// messages.)
pub(super) fn attribute_consequences(out: &mut [AssertionResult]) {
    let root = |keys: &[Cause]| {
        out.iter()
            .filter(|a| a.verdict >= Verdict::NonStrict)
            .filter_map(|a| a.cause.clone())
            .find(|c| keys.contains(c))
    };
    let silence = root(&[known::SILENT_HANG, known::EMPTY_REPLY, known::NOT_HTTP]);
    let content = root(&[
        known::CONTENT_MISSING,
        known::CONTENT_SHORT,
        known::CONTENT_ALTERED,
        known::CONTENT_UTF8,
    ]);
    for a in out.iter_mut().filter(|a| a.verdict >= Verdict::NonStrict) {
        let Some(own) = &a.cause else { continue };
        if let Some(root) = &silence {
            a.cause = Some(root.clone());
        } else if let Some(root) = &content
            && [
                known::DONE_MISSING,
                known::SPURIOUS_ERROR,
                known::EVENT_PAYLOADS,
                known::NEVER_CLOSED,
            ]
            .contains(own)
        {
            a.cause = Some(root.clone());
        }
    }
}

/// What kind of content defect `received` shows against `expected`.
pub(super) fn content_cause(expected: &[u8], received: &[u8], replaced: bool) -> Cause {
    if received.is_empty() {
        known::CONTENT_MISSING
    } else if replaced {
        known::CONTENT_UTF8
    } else if received.len() < expected.len() {
        known::CONTENT_SHORT
    } else {
        known::CONTENT_ALTERED
    }
}
