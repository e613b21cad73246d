//! Receiving a handoff: one `recvmsg` per connection into a fixed buffer, the client fd from
//! `SCM_RIGHTS`, and the handoff JSON turned into a [`Request`].
//!
//! The buffer is [`HANDOFF_BUFFER`] (256 KiB): larger than any message a sender can pass over
//! SEQPACKET with the kernel's default `wmem_default` (212,992-byte send buffer), so every handoff
//! Apache can send with default settings arrives whole. A sender that raised its send buffer can
//! send more; `MSG_TRUNC` tells us so and the client gets `413` rather than a guess.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SocketType};
use serde_json::{Map, Value};

use super::fault::{self, Fault};
use super::wire::RESERVED_HEADERS;

/// Receive buffer for one handoff message.
pub(crate) const HANDOFF_BUFFER: usize = 256 << 10;

/// The receive buffer of the `truncate-handoff-4k` fault.
const FAULT_HANDOFF_BUFFER: usize = 4096;

/// Room for a few fds, so that a sender passing more than one is detected rather than cut.
const MAX_FDS: usize = 4;

/// One received handoff message with its client fd.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// The data as received (at most the buffer's size).
    pub(crate) data: Vec<u8>,
    /// The message's real length: larger than `data.len()` when it was truncated.
    pub(crate) full_len: usize,
    /// The handed-off client connection, validated to be a stream socket.
    pub(crate) client: OwnedFd,
}

/// A handoff message that carries no usable client: nobody can be answered, so the daemon logs
/// it and closes whatever it received.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandoffError {
    #[error("the sender closed the connection without sending a handoff message")]
    NoMessage,
    #[error("the handoff message carried no SCM_RIGHTS fd (send the client socket with the data)")]
    NoFd,
    #[error("the handoff message carried {0} fds; exactly one (the client socket) is expected")]
    TooManyFds(usize),
    #[error(
        "the handoff's control data was truncated (MSG_CTRUNC): more fds than expected were sent"
    )]
    ControlTruncated,
    #[error(
        "out of file descriptors ({open} open, limit {limit}): the kernel could not install the \
         handed-off client fd and truncated the control data (MSG_CTRUNC); the client is lost. \
         Raise the daemon's open-file limit (ulimit -n) or lower the load"
    )]
    OutOfFds { open: u64, limit: u64 },
    #[error(
        "the handed-off fd is not a stream socket ({0:?}); hand off the client's TCP connection"
    )]
    NotStream(SocketType),
    #[error("the handed-off fd is not a socket: {0}")]
    NotSocket(io::Error),
    #[error("recvmsg on the handoff socket failed: {0}")]
    Io(#[from] io::Error),
}

/// The receive buffer size in effect for `fault`.
pub(crate) fn buffer_size(fault: Option<Fault>) -> usize {
    if fault::is(fault, Fault::TruncateHandoff4k) {
        // Bug (truncate-handoff-4k): a 4 KiB receive buffer.
        FAULT_HANDOFF_BUFFER
    } else {
        HANDOFF_BUFFER
    }
}

/// One non-blocking `recvmsg` on the accepted handoff socket. `WouldBlock` means "not yet".
pub(crate) fn recv_handoff(sock: BorrowedFd<'_>, buffer: usize) -> Result<Handoff, HandoffError> {
    // Zeroed memory comes from calloc: pages the kernel does not write to are never touched.
    let mut data = vec![0u8; buffer];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut data)],
        &mut control,
        // TRUNC makes `bytes` the message's real length when it did not fit.
        RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC,
    )
    .map_err(io::Error::from)?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(truncated_control(fd_usage()));
    }
    if fds.is_empty() {
        return Err(if msg.bytes == 0 {
            HandoffError::NoMessage
        } else {
            HandoffError::NoFd
        });
    }
    if fds.len() > 1 {
        return Err(HandoffError::TooManyFds(fds.len()));
    }
    let client = fds.pop().ok_or(HandoffError::NoFd)?;
    match rustix::net::sockopt::socket_type(&client) {
        Ok(SocketType::STREAM) => {}
        Ok(other) => return Err(HandoffError::NotStream(other)),
        Err(err) => return Err(HandoffError::NotSocket(err.into())),
    }
    data.truncate(msg.bytes.min(buffer));
    data.shrink_to_fit();
    Ok(Handoff {
        data,
        full_len: msg.bytes,
        client,
    })
}

/// Free fds under which a truncated control message means the fd could not be installed.
const FD_HEADROOM: u64 = 2 * MAX_FDS as u64;

/// Why the control data was truncated: the kernel sets MSG_CTRUNC both when the sender passed
/// more fds than there was room for and when the receiver cannot install one (EMFILE). With
/// the process at its open-file limit (`usage`: open fds and RLIMIT_NOFILE), it is the latter.
fn truncated_control(usage: Option<(u64, u64)>) -> HandoffError {
    match usage {
        Some((open, limit)) if open + FD_HEADROOM >= limit => {
            HandoffError::OutOfFds { open, limit }
        }
        _ => HandoffError::ControlTruncated,
    }
}

/// This process's open fds and its soft RLIMIT_NOFILE, if they can be read.
fn fd_usage() -> Option<(u64, u64)> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    // The size of /proc/self/fd is its number of entries; older kernels report 0 there.
    let open = match std::fs::metadata("/proc/self/fd").map(|m| m.len()) {
        Ok(n) if n > 0 => n,
        _ => std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
    };
    Some((open, limit))
}

/// The handoff data, validated: what to ask the upstream and how to answer the client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The chat messages sent upstream (`system` first when given).
    pub(crate) messages: Vec<Value>,
    pub(crate) model: Option<String>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) temperature: Option<serde_json::Number>,
    /// Forwarded upstream as `X-Request-Id`.
    pub(crate) request_id: Option<String>,
    /// Forwarded upstream as `X-Test-Pattern`.
    pub(crate) test_pattern: Option<String>,
    /// Appended to the client response's head.
    pub(crate) response_headers: Vec<(String, String)>,
}

/// Handoff data the daemon refuses, with the HTTP status the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) message: String,
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection {
        status: 400,
        message: message.into(),
    }
}

/// Validates a received handoff: truncation, emptiness, then the JSON fields.
/// `full_len` is the message's real length (`data` holds at most the buffer's worth).
pub(crate) fn request_from(
    data: &[u8],
    full_len: usize,
    fault: Option<Fault>,
) -> Result<Request, Rejection> {
    if fault::is(fault, Fault::TruncateHandoff4k) {
        // Bug (truncate-handoff-4k): MSG_TRUNC ignored; unparseable data replaced by defaults.
        return Ok(parse_request(data).unwrap_or_else(|_| default_request()));
    }
    if full_len > data.len() {
        return Err(Rejection {
            status: 413,
            message: format!(
                "handoff data is {full_len} bytes, more than the daemon's {}-byte receive buffer",
                data.len()
            ),
        });
    }
    parse_request(data)
}

/// The request a daemon with defaults would make: one fixed prompt.
fn default_request() -> Request {
    Request {
        messages: vec![serde_json::json!({ "role": "user", "content": "Hello" })],
        model: None,
        max_tokens: None,
        temperature: None,
        request_id: None,
        test_pattern: None,
        response_headers: Vec::new(),
    }
}

/// Parses the handoff JSON (PROTOCOL.md §2). Unknown keys are ignored; a known key with the
/// wrong type is refused with a message naming it.
pub(crate) fn parse_request(data: &[u8]) -> Result<Request, Rejection> {
    if data.is_empty() || data == b"\0" {
        return Err(bad(
            "handoff data is empty: send a JSON object with a prompt or messages",
        ));
    }
    let value: Value = serde_json::from_slice(data)
        .map_err(|err| bad(format!("handoff data is not valid JSON: {err}")))?;
    let Value::Object(map) = value else {
        return Err(bad("handoff data must be a JSON object"));
    };
    let prompt = string_field(&map, "prompt")?;
    let system = string_field(&map, "system")?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(serde_json::json!({ "role": "system", "content": system }));
    }
    match map.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, message) in list.iter().enumerate() {
                match message {
                    Value::Object(m) if m.get("role").is_some_and(Value::is_string) => {
                        messages.push(message.clone())
                    }
                    _ => {
                        return Err(bad(format!(
                            "`messages[{i}]` must be an object with a string `role`"
                        )));
                    }
                }
            }
        }
        None | Some(Value::Null) => match prompt {
            Some(prompt) => messages.push(serde_json::json!({ "role": "user", "content": prompt })),
            None => return Err(bad("handoff data has neither `prompt` nor `messages`")),
        },
        Some(_) => return Err(bad("`messages` must be a non-empty array")),
    }
    let max_tokens = match map.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("`max_tokens` must be a non-negative integer"))?,
        ),
    };
    let temperature = match map.get("temperature") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.clone()),
        Some(_) => return Err(bad("`temperature` must be a number")),
    };
    let request_id = match map.get("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(bad("`request_id` must be a string or a number")),
    };
    let test_pattern = string_field(&map, "test_pattern")?;
    for (name, value) in [("request_id", &request_id), ("test_pattern", &test_pattern)] {
        if value
            .as_deref()
            .is_some_and(|v| http::HeaderValue::from_str(v).is_err())
        {
            return Err(bad(format!(
                "`{name}` contains characters not allowed in an HTTP header"
            )));
        }
    }
    Ok(Request {
        messages,
        model: string_field(&map, "model")?,
        max_tokens,
        temperature,
        request_id,
        test_pattern,
        response_headers: response_headers(map.get("response_headers"))?,
    })
}

fn string_field(map: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("`{name}` must be a string"))),
    }
}

/// `response_headers`: an object of header name → string value, checked so that nothing can
/// inject a line into the response head or change its framing.
fn response_headers(value: Option<&Value>) -> Result<Vec<(String, String)>, Rejection> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(bad(
                "`response_headers` must be an object of header names to strings",
            ));
        }
    };
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(bad(format!("`response_headers.{name}` must be a string")));
        };
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad(format!(
                "`response_headers` has an invalid header name {name:?}"
            )));
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
        {
            return Err(bad(format!(
                "`response_headers` may not set {name}: the daemon sets it"
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(bad(format!(
                "`response_headers.{name}` has characters not allowed in a header value"
            )));
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{
        AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    };
    use std::os::fd::AsFd;

    /// Sends `data` with `fds` over a fresh SEQPACKET pair and receives it with `buffer`.
    fn roundtrip(
        data: &[u8],
        fds: &[BorrowedFd<'_>],
        buffer: usize,
    ) -> Result<Handoff, HandoffError> {
        let (tx, rx) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&tx, 1 << 20).unwrap();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
        }
        rustix::net::sendmsg(
            &tx,
            &[io::IoSlice::new(data)],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
        drop(tx);
        recv_handoff(rx.as_fd(), buffer)
    }

    fn stream_pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    #[test]
    fn truncated_control_data_at_the_fd_limit_is_named_as_out_of_fds() {
        let at_limit = truncated_control(Some((20_000, 20_000))).to_string();
        assert!(
            at_limit.starts_with("out of file descriptors (20000 open, limit 20000)"),
            "{at_limit}"
        );
        assert!(at_limit.contains("ulimit -n"), "{at_limit}");
        assert!(matches!(
            truncated_control(Some((100, 20_000))),
            HandoffError::ControlTruncated
        ));
        assert!(matches!(
            truncated_control(None),
            HandoffError::ControlTruncated
        ));
        let (open, limit) = fd_usage().unwrap();
        assert!(open >= 3 && open <= limit, "{open} of {limit}");
    }

    #[test]
    fn receives_data_and_one_stream_fd() {
        let (a, _b) = stream_pair();
        let h = roundtrip(br#"{"prompt":"hi"}"#, &[a.as_fd()], HANDOFF_BUFFER).unwrap();
        assert_eq!(h.data, br#"{"prompt":"hi"}"#);
        assert_eq!(h.full_len, h.data.len());
        assert!(request_from(&h.data, h.full_len, None).is_ok());
    }

    #[test]
    fn oversized_data_is_detected_and_answered_413() {
        let (a, _b) = stream_pair();
        let data = format!(r#"{{"prompt":"{}"}}"#, "x".repeat(5000));
        let h = roundtrip(data.as_bytes(), &[a.as_fd()], 4096).unwrap();
        assert_eq!((h.data.len(), h.full_len), (4096, data.len()));
        let rejection = request_from(&h.data, h.full_len, None).unwrap_err();
        assert_eq!(rejection.status, 413);
        assert!(
            rejection.message.contains(&data.len().to_string()),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn truncate_fault_continues_with_defaults() {
        let (a, _b) = stream_pair();
        let data = format!(r#"{{"prompt":"{}"}}"#, "x".repeat(5000));
        let h = roundtrip(
            data.as_bytes(),
            &[a.as_fd()],
            buffer_size(Some(Fault::TruncateHandoff4k)),
        )
        .unwrap();
        assert_eq!(
            request_from(&h.data, h.full_len, Some(Fault::TruncateHandoff4k)).unwrap(),
            default_request()
        );
    }

    #[test]
    fn empty_and_invalid_data_are_answered_400() {
        let (a, _b) = stream_pair();
        for data in [
            &b"\0"[..],
            b"{\"prompt\":",
            b"[1,2]",
            b"{}",
            b"{\"prompt\":5}",
        ] {
            let h = roundtrip(data, &[a.as_fd()], HANDOFF_BUFFER).unwrap();
            let rejection = request_from(&h.data, h.full_len, None).unwrap_err();
            assert_eq!(rejection.status, 400, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn a_message_without_exactly_one_stream_fd_is_refused() {
        assert!(matches!(
            roundtrip(b"{}", &[], HANDOFF_BUFFER),
            Err(HandoffError::NoFd)
        ));
        let (a, b) = stream_pair();
        assert!(matches!(
            roundtrip(b"{}", &[a.as_fd(), b.as_fd()], HANDOFF_BUFFER),
            Err(HandoffError::TooManyFds(2))
        ));
        let (dgram, _) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert!(matches!(
            roundtrip(b"{}", &[dgram.as_fd()], HANDOFF_BUFFER),
            Err(HandoffError::NotStream(_))
        ));
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(matches!(
            roundtrip(b"{}", &[r.as_fd()], HANDOFF_BUFFER),
            Err(HandoffError::NotSocket(_))
        ));
    }

    #[test]
    fn fields_map_to_the_request() {
        let r = parse_request(
            br#"{"prompt":"ignored","messages":[{"role":"user","content":"caf\u00e9"}],"system":"be brief",
                "model":"m","max_tokens":7,"temperature":0.5,"request_id":42,"test_pattern":"unicode",
                "response_headers":{"X-A":"1"},"user_id":1,"backend_url":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            r.messages,
            [
                serde_json::json!({"role":"system","content":"be brief"}),
                serde_json::json!({"role":"user","content":"café"})
            ]
        );
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.temperature.map(|t| t.to_string()).as_deref(), Some("0.5"));
        assert_eq!(r.request_id.as_deref(), Some("42"));
        assert_eq!(r.test_pattern.as_deref(), Some("unicode"));
        assert_eq!(r.response_headers, [("X-A".to_string(), "1".to_string())]);
        let r = parse_request(br#"{"prompt":"a\"b\nc \ud83c\udf89"}"#).unwrap();
        assert_eq!(
            r.messages,
            [serde_json::json!({"role":"user","content":"a\"b\nc 🎉"})]
        );
    }

    #[test]
    fn header_injection_is_refused() {
        for data in [
            &br#"{"prompt":"p","response_headers":{"X-A":"1\r\nSet-Cookie: x"}}"#[..],
            br#"{"prompt":"p","response_headers":{"Bad Name":"1"}}"#,
            br#"{"prompt":"p","response_headers":{"content-length":"1"}}"#,
            br#"{"prompt":"p","response_headers":{"X-A":1}}"#,
            br#"{"prompt":"p","test_pattern":"a\nb"}"#,
        ] {
            assert_eq!(
                parse_request(data).unwrap_err().status,
                400,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }
}
