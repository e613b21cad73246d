//! Routing, request decoding, pattern selection and the mock's own JSON answers.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::log::{HttpVersion, Message, PatternChannel, RequestBody, RequestEnd, RequestRecord};
use super::stream::{MockBody, PlanBody, ResetVia};
use super::{ConnInfo, Shared, script};
use crate::clock::monotonic_ns;
use crate::pattern::{self, BuiltinSpec, PatternError, PatternSpec};

/// One of the mock's own answers (not a pattern): status, JSON body, and what to log.
struct Reply {
    status: StatusCode,
    body: String,
    error: Option<String>,
    allow: Option<&'static str>,
}

impl Reply {
    fn ok(status: StatusCode, body: impl serde::Serialize) -> Reply {
        // Serialising plain data into a String cannot fail.
        let body = serde_json::to_string(&body).unwrap_or_default();
        Reply {
            status,
            body,
            error: None,
            allow: None,
        }
    }

    /// An OpenAI-style error, so a daemon that surfaces upstream errors shows the reason.
    fn error(status: StatusCode, code: &str, message: String) -> Reply {
        Reply::error_with(status, code, message, None)
    }

    fn error_with(
        status: StatusCode,
        code: &str,
        message: String,
        valid: Option<Vec<String>>,
    ) -> Reply {
        /// OpenAI's field order, plus the valid patterns when a pattern was refused.
        #[derive(serde::Serialize)]
        struct Detail<'a> {
            message: &'a str,
            r#type: &'static str,
            param: Option<()>,
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            valid_patterns: Option<Vec<String>>,
        }
        let error = Detail {
            message: &message,
            r#type: "invalid_request_error",
            param: None,
            code,
            valid_patterns: valid,
        };
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            error: Detail<'a>,
        }
        // Serialising plain data into a String cannot fail.
        let body = serde_json::to_string(&Envelope { error }).unwrap_or_default();
        Reply {
            status,
            body,
            error: Some(message),
            allow: None,
        }
    }

    fn method_not_allowed(method: &Method, path: &str, allow: &'static str) -> Reply {
        let message = format!("{method} is not allowed on {path}; use {allow}");
        Reply {
            allow: Some(allow),
            ..Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                message,
            )
        }
    }

    fn into_response(self) -> Response<MockBody> {
        let mut response = Response::new(MockBody::full(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(allow) = self.allow {
            headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

const CHAT: [&str; 2] = ["/v1/chat/completions", "/chat/completions"];
const MODELS: [&str; 2] = ["/v1/models", "/models"];

pub(crate) async fn handle(
    req: Request<Incoming>,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
) -> Result<Response<MockBody>, Infallible> {
    let arrival_ns = monotonic_ns();
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/_streamcheck/") {
        return Ok(control(req, rest, &shared).await.into_response());
    }
    let record = new_record(&req, &conn, arrival_ns);
    let method = req.method().clone();
    let reply = if CHAT.contains(&path.as_str()) {
        if method == Method::POST {
            return Ok(chat(req, record, &conn, shared).await);
        }
        Reply::method_not_allowed(&method, &path, "POST")
    } else if MODELS.contains(&path.as_str()) || path == "/health" {
        if method != Method::GET {
            Reply::method_not_allowed(&method, &path, "GET")
        } else if path == "/health" {
            Reply::ok(StatusCode::OK, json!({"status": "ok"}))
        } else {
            let model = json!({"id": pattern::CHUNK_MODEL, "object": "model", "created": 0, "owned_by": "streamcheck"});
            Reply::ok(StatusCode::OK, json!({"object": "list", "data": [model]}))
        }
    } else {
        let message = format!(
            "no route for {method} {path}; the mock serves POST /v1/chat/completions (or /chat/completions), GET /v1/models and GET /health"
        );
        Reply::error(StatusCode::NOT_FOUND, "not_found", message)
    };
    Ok(answer(record, reply, &shared))
}

/// Logs a request the mock answered itself, and builds the answer.
fn answer(mut record: RequestRecord, reply: Reply, shared: &Shared) -> Response<MockBody> {
    record.status = reply.status.as_u16();
    record.error = reply.error.clone();
    record.end = RequestEnd::Completed;
    record.end_ns = Some(monotonic_ns());
    shared.log_finished(record);
    reply.into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn new_record(req: &Request<Incoming>, conn: &ConnInfo, arrival_ns: u64) -> RequestRecord {
    let headers = req.headers();
    RequestRecord {
        id: 0,
        arrival_ns,
        http_version: match req.version() {
            Version::HTTP_2 => HttpVersion::Http2,
            Version::HTTP_10 => HttpVersion::Http10,
            _ => HttpVersion::Http11,
        },
        tls: conn.tls,
        transport: conn.transport,
        peer: conn.peer.map(|p| p.to_string()),
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.to_string()),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        x_test_pattern: header_text(headers, "x-test-pattern"),
        authorization: header_text(headers, "authorization"),
        pattern: None,
        pattern_channel: PatternChannel::None,
        body: None,
        nonce: None,
        status: 0,
        error: None,
        writes: Vec::new(),
        end: RequestEnd::InProgress,
        end_ns: None,
    }
}

async fn read_body(body: Incoming, headers: &HeaderMap, max: usize) -> Result<Bytes, Reply> {
    let too_large = || {
        let message = format!("the request body is larger than {max} bytes, the mock's limit");
        Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if declared
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => {
            let message = format!("the request body could not be read: {e}");
            Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                message,
            ))
        }
    }
}

fn bad_request(message: impl Into<String>) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, "invalid_request", message.into())
}

fn opt_string(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, Reply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(format!("`{key}` must be a string"))),
    }
}

/// Decodes the fields tests check; wrong types are refused, unknown fields ignored.
fn decode_body(bytes: &[u8]) -> Result<RequestBody, Reply> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Reply::error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not JSON ({e}); send a chat-completion object"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(bad_request(
            r#"the request body is JSON but not an object; send {"model":…,"messages":[…],"stream":true}"#,
        ));
    };
    let model = opt_string(&obj, "model")?;
    let prompt = opt_string(&obj, "prompt")?;
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad_request("`stream` must be true or false")),
    };
    let messages = match obj.get("messages") {
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(decode_message)
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) if prompt.is_some() => Vec::new(),
        None | Some(Value::Null) => {
            return Err(bad_request(
                r#"`messages` is missing; send "messages":[{"role":"user","content":"…"}]"#,
            ));
        }
        Some(_) => return Err(bad_request("`messages` must be an array")),
    };
    Ok(RequestBody {
        model,
        messages,
        stream,
        prompt,
    })
}

fn decode_message((i, m): (usize, &Value)) -> Result<Message, Reply> {
    let Value::Object(m) = m else {
        return Err(bad_request(format!("messages[{i}] must be an object")));
    };
    let Some(Value::String(role)) = m.get("role") else {
        return Err(bad_request(format!("messages[{i}].role must be a string")));
    };
    let content = match m.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Content parts: the text of each `{"type":"text","text":…}`.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        Some(_) => {
            return Err(bad_request(format!(
                "messages[{i}].content must be a string or an array of parts"
            )));
        }
    };
    Ok(Message {
        role: role.clone(),
        content,
    })
}

/// Directives come from the last user message, then from `prompt`; the first of each kind wins.
fn find_directives(body: &RequestBody) -> Result<pattern::Directives, pattern::DirectiveError> {
    let last_user = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.as_str());
    let mut found = pattern::Directives::default();
    for text in [last_user, body.prompt.as_deref()].into_iter().flatten() {
        let d = pattern::find_directives(text)?;
        found.pattern = found.pattern.or(d.pattern);
        found.nonce = found.nonce.or(d.nonce);
    }
    Ok(found)
}

fn pattern_error(e: &PatternError, channel: &str) -> Reply {
    let code = match e {
        PatternError::Unknown { .. } => "unknown_test_pattern",
        _ => "malformed_test_pattern",
    };
    let message = format!("{e} (from {channel})");
    Reply::error_with(
        StatusCode::BAD_REQUEST,
        code,
        message,
        Some(pattern::valid_specs()),
    )
}

async fn chat(
    req: Request<Incoming>,
    mut record: RequestRecord,
    conn: &ConnInfo,
    shared: Arc<Shared>,
) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let body = match read_body(body, &parts.headers, shared.max_body).await {
        Ok(bytes) => bytes,
        Err(reply) => return answer(record, reply, &shared),
    };
    let decoded = match decode_body(&body) {
        Ok(d) => d,
        Err(reply) => return answer(record, reply, &shared),
    };
    let directives = find_directives(&decoded);
    record.body = Some(decoded);
    let directives = match directives {
        Ok(d) => d,
        Err(e) => return answer(record, bad_request(format!("{e} (in the prompt)")), &shared),
    };
    record.nonce = directives.nonce.clone();

    let header = parts
        .headers
        .get("x-test-pattern")
        .map(|v| v.to_str().map(str::trim));
    let (spec, channel) = match (header, &directives.pattern) {
        (Some(Err(_)), _) => {
            let reply = bad_request("the X-Test-Pattern header is not visible ASCII");
            return answer(record, reply, &shared);
        }
        (Some(Ok(h)), _) if !h.is_empty() => (Some(h.to_owned()), PatternChannel::Header),
        (_, Some(p)) => (Some(p.clone()), PatternChannel::Prompt),
        _ => (None, PatternChannel::None),
    };
    record.pattern_channel = channel;
    let parsed = match &spec {
        None => Ok(PatternSpec::Builtin(BuiltinSpec::default_pattern())),
        Some(s) => pattern::parse(s),
    };
    let from = if channel == PatternChannel::Header {
        "the X-Test-Pattern header"
    } else {
        "a [[pattern:…]] directive"
    };
    let (plan, canonical) = match parsed {
        Err(e) => return answer(record, pattern_error(&e, from), &shared),
        Ok(PatternSpec::Builtin(b)) => (
            b.plan(&shared.settings, directives.nonce.as_deref()),
            b.canonical(),
        ),
        Ok(PatternSpec::Script(id)) => match shared.scripts.get(&id) {
            Some(plan) => (plan, format!("script:{id}")),
            None => {
                let message = format!(
                    "unknown script id `{id}` (from {from}); register it first with POST /_streamcheck/scripts (the mock keeps the latest {})",
                    shared.scripts.capacity()
                );
                return answer(
                    record,
                    Reply::error(StatusCode::BAD_REQUEST, "unknown_script", message),
                    &shared,
                );
            }
        },
    };
    record.pattern = Some(canonical.clone());

    let mut head = Response::new(());
    let invalid = |what: String| {
        let message = format!("pattern {canonical}: {what}");
        Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "invalid_plan", message)
    };
    match StatusCode::from_u16(plan.status) {
        Ok(s) if (200..=599).contains(&plan.status) => *head.status_mut() = s,
        _ => {
            let what = format!("status {} is not a final status (200..=599)", plan.status);
            return answer(record, invalid(what), &shared);
        }
    }
    for (name, value) in &plan.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                head.headers_mut().append(n, v);
            }
            _ => {
                return answer(
                    record,
                    invalid(format!("header {name:?}: {value:?} is not valid HTTP")),
                    &shared,
                );
            }
        }
    }
    if channel != PatternChannel::None
        && let Ok(v) = HeaderValue::from_str(&canonical)
    {
        head.headers_mut().insert("x-test-pattern-applied", v);
    }
    record.status = plan.status;
    let reset_via = match parts.version {
        Version::HTTP_2 => ResetVia::Stream,
        _ => ResetVia::Connection(conn.control.clone()),
    };
    let id = shared.log.insert(record);
    head.headers_mut()
        .insert("x-streamcheck-request-id", HeaderValue::from(id));
    let (head, ()) = head.into_parts();
    Response::from_parts(
        head,
        MockBody::Plan(Box::new(PlanBody::new(plan, reset_via, shared, id))),
    )
}

/// A record reduced to what relay latency needs (`view=writes`): its nonce and each write as
/// `[ts_ns, end]`: about 500 bytes where the full record of a default answer has 2,200.
#[derive(serde::Serialize)]
struct WritesView<'a> {
    id: u64,
    nonce: Option<&'a str>,
    writes: Vec<(u64, u64)>,
}

impl WritesView<'_> {
    fn of(r: &super::RequestRecord) -> WritesView<'_> {
        WritesView {
            id: r.id,
            nonce: r.nonce.as_deref(),
            writes: r.writes.iter().map(|w| (w.ts_ns, w.end)).collect(),
        }
    }
}

/// `/_streamcheck/…`: the request log, scripts, and the pattern list. Not logged themselves.
async fn control(req: Request<Incoming>, rest: &str, shared: &Shared) -> Reply {
    let method = req.method().clone();
    match (rest, &method) {
        ("requests", &Method::GET) => {
            let query = req.uri().query().unwrap_or("");
            let nonce = query.split('&').find_map(|kv| kv.strip_prefix("nonce="));
            let view = query.split('&').find_map(|kv| kv.strip_prefix("view="));
            if view.is_some_and(|v| v != "writes") {
                return bad_request(format!(
                    "view {:?} is not known; the one view is view=writes",
                    view.unwrap_or_default()
                ));
            }
            let requests = match nonce {
                Some(n) if pattern::is_valid_nonce(n) => shared.log.for_nonce(n),
                Some(n) => {
                    return bad_request(format!("nonce {n:?} is not 1 to 64 of A-Z a-z 0-9 _ -"));
                }
                None => shared.log.all(),
            };
            #[derive(serde::Serialize)]
            struct Requests {
                capacity: usize,
                dropped: u64,
                requests: Vec<super::RequestRecord>,
            }
            let (capacity, dropped) = (shared.log.capacity(), shared.log.dropped());
            if view.is_some() {
                #[derive(serde::Serialize)]
                struct Writes<'a> {
                    capacity: usize,
                    dropped: u64,
                    requests: Vec<WritesView<'a>>,
                }
                let requests = requests.iter().map(WritesView::of).collect();
                return Reply::ok(
                    StatusCode::OK,
                    Writes {
                        capacity,
                        dropped,
                        requests,
                    },
                );
            }
            Reply::ok(
                StatusCode::OK,
                Requests {
                    capacity,
                    dropped,
                    requests,
                },
            )
        }
        ("scripts", &Method::POST) => {
            let (parts, body) = req.into_parts();
            let body = match read_body(body, &parts.headers, shared.max_script).await {
                Ok(b) => b,
                Err(reply) => return reply,
            };
            match script::parse_script(&body) {
                Ok(plan) => {
                    let id = shared.scripts.register(plan);
                    Reply::ok(
                        StatusCode::CREATED,
                        json!({"id": id, "pattern": format!("script:{id}")}),
                    )
                }
                Err(message) => Reply::error(StatusCode::BAD_REQUEST, "invalid_script", message),
            }
        }
        ("patterns", &Method::GET) => {
            let list: Vec<Value> = pattern::catalog()
                .iter()
                .map(|p| json!({"syntax": p.syntax(), "summary": p.summary(), "expectation": p.expectation()}))
                .collect();
            // The settings let a remote runner compute what the `default` pattern sends.
            let settings = json!({
                "chunk_count": shared.settings.chunk_count,
                "chunk_delay_ms": u64::try_from(shared.settings.chunk_delay.as_millis()).unwrap_or(u64::MAX),
            });
            Reply::ok(
                StatusCode::OK,
                json!({"patterns": list, "settings": settings}),
            )
        }
        ("requests" | "patterns", _) => Reply::method_not_allowed(&method, req.uri().path(), "GET"),
        ("scripts", _) => Reply::method_not_allowed(&method, req.uri().path(), "POST"),
        _ => Reply::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no control route {}; there are GET /_streamcheck/requests[?nonce=N], POST /_streamcheck/scripts and GET /_streamcheck/patterns",
                req.uri().path()
            ),
        ),
    }
}
