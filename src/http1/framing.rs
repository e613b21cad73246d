//! How the final response's body is delimited, decided per RFC 9112 §6.3.

use super::{Config, Error, Head};

/// How the body of the final response is delimited (RFC 9112 §6.3).
///
/// The parser does not know the request method; streamcheck's requests are never HEAD or
/// CONNECT, so the rules about those (§6.3 rules 1 and 2) do not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (§6.3 rule 1: status 204 or 304; also 101, after which the connection belongs
    /// to another protocol). Bytes after the head are [excess](super::Event::Excess).
    NoBody,
    /// Exactly this many body bytes (§6.3 rules 5 and 6).
    ContentLength(u64),
    /// The chunked transfer coding is the final coding (§6.3 rule 4): the body ends at the
    /// last chunk and its trailer section.
    Chunked,
    /// The body ends when the daemon closes the connection (§6.3 rule 8, or rule 4 when
    /// chunked is not the final coding). The normal case for SSE daemons.
    UntilClose,
}

/// Decides the framing of the final (non-1xx) response `head`.
pub(super) fn decide(head: &Head, config: &Config) -> Result<Framing, Error> {
    // §6.3 rule 1 (and 101, see `Framing::NoBody`).
    if matches!(head.status(), 101 | 204 | 304) {
        return Ok(Framing::NoBody);
    }
    let headers = head.headers();
    if let Some(te) = headers.get("transfer-encoding") {
        // §6.1: "A server or client that receives an HTTP/1.0 message containing a
        // Transfer-Encoding header field MUST treat the message as if the framing is faulty".
        if head.version() == 0 {
            return Err(Error::TransferEncodingInHttp10 {
                offset: te.offset(),
            });
        }
        // §6.3 rule 3: Transfer-Encoding overrides Content-Length, but the pair "ought to be
        // handled as an error".
        if let Some(cl) = headers.get("content-length")
            && !config.content_length_with_transfer_encoding
        {
            return Err(Error::ContentLengthWithTransferEncoding {
                offset: cl.offset(),
            });
        }
        return transfer_encoding(head);
    }
    content_length(head)
}

/// §6.3 rule 4: chunked as the final coding, else read until close.
fn transfer_encoding(head: &Head) -> Result<Framing, Error> {
    // Whether the last coding seen so far is chunked; `None` until a coding is seen.
    let mut last_is_chunked = None;
    let mut seen_chunked = false;
    let mut first_offset = 0;
    for (n, field) in head.headers().get_all("transfer-encoding").enumerate() {
        if n == 0 {
            first_offset = field.offset();
        }
        for (at, element) in list_elements(field.value()) {
            let offset = field.offset() + at as u64;
            let name = coding_name(element).ok_or(Error::InvalidTransferEncoding { offset })?;
            let chunked = name.eq_ignore_ascii_case(b"chunked");
            // §6.1: "A sender MUST NOT apply the chunked transfer coding more than once".
            if chunked && seen_chunked {
                return Err(Error::InvalidTransferEncoding { offset });
            }
            seen_chunked |= chunked;
            last_is_chunked = Some(chunked);
        }
    }
    match last_is_chunked {
        // Transfer-Encoding present but naming no coding at all.
        None => Err(Error::InvalidTransferEncoding {
            offset: first_offset,
        }),
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
    }
}

/// §6.3 rules 5, 6 and 8: a valid Content-Length (identical list elements allowed), else
/// until close.
fn content_length(head: &Head) -> Result<Framing, Error> {
    let mut length = None;
    for field in head.headers().get_all("content-length") {
        let mut any = false;
        for (at, element) in list_elements(field.value()) {
            any = true;
            let offset = field.offset() + at as u64;
            let value = decimal(element).ok_or(Error::InvalidContentLength { offset })?;
            match length {
                None => length = Some(value),
                Some(first) if first != value => {
                    return Err(Error::ConflictingContentLength { offset });
                }
                Some(_) => {}
            }
        }
        if !any {
            return Err(Error::InvalidContentLength {
                offset: field.offset(),
            });
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::ContentLength))
}

/// `1*DIGIT` as a u64, or `None` if empty, not all digits, or too large.
fn decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The coding name of a `transfer-coding` list element, or `None` if the element is not
/// `token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )` (RFC 9112 §7).
fn coding_name(element: &[u8]) -> Option<&[u8]> {
    let name_len = element.iter().take_while(|&&b| is_tchar(b)).count();
    if name_len == 0 {
        return None;
    }
    let mut rest = &element[name_len..];
    loop {
        rest = trim_start(rest);
        if rest.is_empty() {
            return Some(&element[..name_len]);
        }
        rest = trim_start(rest.strip_prefix(b";")?);
        let key = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if key == 0 {
            return None;
        }
        rest = trim_start(trim_start(&rest[key..]).strip_prefix(b"=")?);
        rest = match rest.first()? {
            b'"' => &rest[quoted_len(rest)?..],
            _ => {
                let value = rest.iter().take_while(|&&b| is_tchar(b)).count();
                if value == 0 {
                    return None;
                }
                &rest[value..]
            }
        };
    }
}

/// Length of the quoted-string at the start of `s` (which starts with `"`), or `None` if it
/// is unterminated or holds a byte quoted-strings cannot (RFC 9110 §5.6.4).
pub(super) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' if s.get(i + 1).is_some_and(|&b| is_quoted_pair_char(b)) => i += 2,
            b if is_qdtext(b) => i += 1,
            _ => return None,
        }
    }
    None
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), with their start in
/// `value`, OWS trimmed. Commas inside quoted strings do not split. Empty elements are skipped,
/// as §5.6.1.2 requires of recipients.
fn list_elements(value: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let mut i = start;
            let mut in_quotes = false;
            while i < value.len() {
                match value[i] {
                    b'"' => in_quotes = !in_quotes,
                    b'\\' if in_quotes => i += 1,
                    b',' if !in_quotes => break,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(value.len());
            let raw = &value[start..end];
            let lead = raw.len() - trim_start(raw).len();
            let element = trim_end(&raw[lead..]);
            let at = start + lead;
            done = end >= value.len();
            start = end + 1;
            if !element.is_empty() {
                return Some((at, element));
            }
        }
        None
    })
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &s[..s.len() - n]
}

/// `tchar` of RFC 9110 §5.6.2.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `qdtext` of RFC 9110 §5.6.4: HTAB, SP, visible ASCII except `"` and `\`, obs-text.
pub(super) fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

/// The byte after `\` in a `quoted-pair` (RFC 9110 §5.6.4): HTAB, SP, VCHAR, obs-text.
pub(super) fn is_quoted_pair_char(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}
