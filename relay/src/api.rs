//! The browser's ways in: `POST /api/<method>` (signed and forwarded), `GET /files/…` (a file
//! SALESmanago handed out, through an address the relay signed) and `/healthz/deep`. Each
//! request is admitted in one order: its origin, its key, its method, its key's rate, its key's
//! share of readers, its body (within its size and time), then its key's share of calls to
//! SALESmanago; each refusal is answered at once with its reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;

use salesmanago_dynamics::core::integration::{verdict, ConnectionVerdict};
use salesmanago_dynamics::core::salesmanago::operation::ListUsers;
use salesmanago_dynamics::core::salesmanago::relay::{self, Refusal};
use salesmanago_dynamics::core::salesmanago::SmError;

use crate::files::Rewritten;
use crate::intake::{self, LOGGED};
use crate::outgoing::Fields;
use crate::{json_response, key_of, now_ms, refusal, Relay};

/// How long the deep check's answer is kept: however many ask, SALESmanago is asked at most
/// once in this time.
const DEEP_KEPT: Duration = Duration::from_secs(5);

/// One request: what its log line says.
struct Line {
    started: Instant,
    origin: String,
    key: String,
    method: &'static str,
    upstream_ms: Option<u128>,
}

impl Line {
    fn new(headers: &HeaderMap, method: &'static str) -> Line {
        let origin = headers.get(header::ORIGIN).map(|o| intake::cut(&String::from_utf8_lossy(o.as_bytes()), LOGGED));
        Line {
            started: Instant::now(),
            origin: origin.unwrap_or_default(),
            key: String::new(),
            method,
            upstream_ms: None,
        }
    }

    /// Answers with `response`, logging the line with its status and size.
    fn answer(&self, response: Response, bytes: Option<usize>) -> Response {
        tracing::info!(
            target: "request",
            key = self.key.as_str(),
            origin = self.origin.as_str(),
            method = self.method,
            status = response.status().as_u16(),
            upstream_ms = self.upstream_ms.map(|ms| ms as u64),
            bytes = bytes.map(|b| b as u64),
            ms = self.started.elapsed().as_millis() as u64,
        );
        response
    }

    /// Answers with the refusal.
    fn refuse(&self, refused: Refusal, retry_after_s: Option<u64>) -> Response {
        self.answer(refusal(refused, retry_after_s), None)
    }
}

impl Relay {
    /// Lets a request in when its origin is allowed and, with `keyed`, its relay key is known
    /// and its rate allows: its line (with the key's id), or the refusal, answered.
    fn admit(&self, headers: &HeaderMap, method: &'static str, keyed: bool) -> Result<Line, Box<Response>> {
        let mut line = Line::new(headers, method);
        let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{0}"));
        if !crate::allowed(&self.config.origins, origin) {
            return Err(Box::new(line.refuse(Refusal::Origin, None)));
        }
        if keyed {
            match key_of(&self.config.keys, headers) {
                Some(key) => line.key = key,
                None => return Err(Box::new(line.refuse(Refusal::Key, None))),
            }
        }
        Ok(line)
    }

    /// A slot of the line's key's share from `take`: the slot, or the refusal (busy), answered.
    fn slot(
        &self,
        line: &Line,
        take: impl Fn(&str) -> Option<OwnedSemaphorePermit>,
    ) -> Result<OwnedSemaphorePermit, Box<Response>> {
        take(&line.key).ok_or_else(|| Box::new(line.refuse(Refusal::Busy, Some(1))))
    }

    /// A token of the line's key's rate, or the refusal, answered.
    fn rate(&self, line: &Line) -> Result<(), Box<Response>> {
        self.rate.take(&line.key, Instant::now()).map_err(|seconds| Box::new(line.refuse(Refusal::Rate, Some(seconds))))
    }
}

pub(crate) async fn api(
    State(relay): State<Arc<Relay>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut line = match relay.admit(&headers, "", true) {
        Ok(line) => line,
        Err(refused) => return *refused,
    };
    let Some(method) = relay::find(&method) else {
        return line.refuse(Refusal::Method, None);
    };
    line.method = method.name;
    if let Err(refused) = relay.rate(&line) {
        return *refused;
    }
    // The body first, within the key's own share of readers: a slow body holds no call slot.
    let reading = match relay.slot(&line, |key| relay.shares.reading(key)) {
        Ok(reading) => reading,
        Err(refused) => return *refused,
    };
    let bytes = match intake::body(&headers, body, relay.config.max_body, relay.config.body_timeout).await {
        Ok(bytes) => bytes,
        Err(refused) => return line.refuse(refused, None),
    };
    drop(reading);
    let _calling = match relay.slot(&line, |key| relay.shares.calling(key)) {
        Ok(calling) => calling,
        Err(refused) => return *refused,
    };
    let Some(fields) = Fields::of_caller(&bytes) else {
        let body = r#"{"success":false,"message":["The request body is not a JSON object"]}"#;
        return line.answer(json_response(400, body.into()), None);
    };
    let upstream = Instant::now();
    let result = relay.call(method, fields).await;
    line.upstream_ms = Some(upstream.elapsed().as_millis());
    let (status, retry_after, body) = match result {
        Ok(answer) => answer,
        Err(refused) => return line.refuse(refused, None),
    };
    let body = match (method.name, status) {
        ("job/status", 200..=299) => {
            let base = relay.config.public_url.as_deref();
            match relay.files.rewrite(&body, base, now_ms() / 1000, &relay.upstream.hosts) {
                Rewritten::Unchanged => body,
                Rewritten::To(rewritten) => Bytes::from(rewritten),
                Rewritten::Refused(host) => {
                    tracing::warn!(target: "upstream", host = host.as_str(), "SALESmanago handed out a file on a host the relay does not fetch from (RELAY_FILE_HOSTS)");
                    return line.refuse(Refusal::FileHost, None);
                }
            }
        }
        _ => body,
    };
    let size = body.len();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    line.answer(response, Some(size))
}

pub(crate) async fn file(
    State(relay): State<Arc<Relay>>,
    Path((expires, sig, address)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    // The signed address is the permission: the browser's download sends no key.
    let line = match relay.admit(&headers, "file", false) {
        Ok(line) => line,
        Err(refused) => return *refused,
    };
    let Some(url) = relay.files.open(&expires, &sig, &address, now_ms() / 1000) else {
        return line.refuse(Refusal::File, None);
    };
    // Checked again: the relay's settings may have changed since it handed the address out.
    let url = match relay.upstream.hosts.check(&url) {
        Ok(url) => url,
        Err(host) => {
            tracing::warn!(target: "upstream", host = host.as_str(), "a signed file address names a host the relay does not fetch from (RELAY_FILE_HOSTS)");
            return line.refuse(Refusal::FileHost, None);
        }
    };
    let total = relay.config.upstream_timeout * 20;
    let (status, length, stream) = match relay.upstream.file(url, total, relay.config.max_file).await {
        Ok(started) => started,
        Err(refused) => return line.refuse(refused, None),
    };
    // Streamed through, within RELAY_MAX_FILE_BYTES: a file of a million contacts is never held.
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    line.answer(response, length.map(|n| n as usize))
}

/// The deep check's last answer, and when it was had.
#[derive(Default)]
pub(crate) struct DeepCheck {
    held: tokio::sync::Mutex<Option<(Instant, u16, &'static str)>>,
}

/// `GET` or `POST /healthz/deep` (with a relay key, within its rate and share; the engine
/// POSTs): signs a `user/listByClient` call and checks that the owner is one of the account's
/// users. The answer is kept for [`DEEP_KEPT`], and those asking meanwhile wait for the one
/// call under way, so no key can spend the account's API quota through it.
pub(crate) async fn deep(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    let mut line = match relay.admit(&headers, "healthz/deep", true) {
        Ok(line) => line,
        Err(refused) => return *refused,
    };
    if let Err(refused) = relay.rate(&line) {
        return *refused;
    }
    let _calling = match relay.slot(&line, |key| relay.shares.calling(key)) {
        Ok(calling) => calling,
        Err(refused) => return *refused,
    };
    let mut held = relay.deep.held.lock().await;
    let (status, body) = match *held {
        Some((at, status, body)) if at.elapsed() < DEEP_KEPT => (status, body),
        _ => {
            let upstream = Instant::now();
            let outcome = relay.perform(&ListUsers).await;
            line.upstream_ms = Some(upstream.elapsed().as_millis());
            let (status, body) = match outcome {
                Ok(users) => match verdict(&relay.config.credentials.owner, &users) {
                    ConnectionVerdict::Ok => (200, r#"{"status":"ok","salesmanago":"ok","owner":"ok"}"#),
                    ConnectionVerdict::OwnerNotAUser => {
                        (200, r#"{"status":"ok","salesmanago":"ok","owner":"notAUser"}"#)
                    }
                },
                Err(SmError::Auth) => (502, r#"{"status":"failed","salesmanago":"credentialsRefused"}"#),
                Err(SmError::Transport(_)) => (502, r#"{"status":"failed","salesmanago":"unreachable"}"#),
                Err(_) => (502, r#"{"status":"failed","salesmanago":"error"}"#),
            };
            *held = Some((Instant::now(), status, body));
            (status, body)
        }
    };
    drop(held);
    line.answer(json_response(status, body.into()), Some(body.len()))
}
