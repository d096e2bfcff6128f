//! `salesmanago-relay`: holds the SALESmanago client id, API secret and owner, and signs and
//! forwards the calls the Dynamics engine makes, so the browser never holds the secret and
//! never needs SALESmanago to allow its origin.
//!
//! ```text
//!   browser ──POST /api/<method>, Authorization: Bearer <key>──▶ relay ──signed──▶ SALESmanago
//!          ◀── status, body, Retry-After as SALESmanago sent them (fileUrl pointed at the relay)
//! ```
//!
//! Who may call: the configured Dynamics origins, with a relay key. What: only the methods in
//! [`salesmanago_dynamics::core::salesmanago::relay::METHODS`]. Each refusal has its own status
//! and reason ([`Refusal`]), which the engine turns into a message. One JSON log line a request,
//! without bodies, e-mails, keys or the secret. Stateless but for its rate counters.

mod burst;
mod catchup;
pub mod config;
pub mod dataverse;
mod files;
pub mod keys;
mod limits;
mod record;
pub mod register;
mod webhook;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use tokio::sync::Semaphore;

use salesmanago_dynamics::core::integration::{verdict, ConnectionVerdict};
use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_dynamics::core::salesmanago::endpoint::is_file_address;
use salesmanago_dynamics::core::salesmanago::operation::ListUsers;
use salesmanago_dynamics::core::salesmanago::relay::{self, Refusal};
use salesmanago_dynamics::core::salesmanago::{
    Client, HttpRequest, HttpResponse, Nonce, Operation, SmError, TransportFailure,
};

pub use config::Config;
use files::FileSigner;
use limits::Rate;

/// The auth fields the relay sets itself; a browser's are dropped.
const AUTH_FIELDS: [&str; 5] = ["clientId", "apiKey", "requestTime", "sha", "owner"];

struct Relay {
    config: Config,
    client: Client,
    http: reqwest::Client,
    rate: Rate,
    under_way: Semaphore,
    files: FileSigner,
    /// The webhook deliveries acted on.
    seen: webhook::Seen,
    /// Deliveries gathered into batch upserts.
    burst: burst::Burst,
    /// The integration record's settings, as last read.
    record: record::Record,
    /// Dataverse, as the integration's application user, when configured.
    dataverse: Option<dataverse::Dataverse>,
}

/// The relay's routes over `config`.
pub fn app(config: Config) -> Router {
    let http = reqwest::Client::builder()
        .connect_timeout(config.upstream_timeout)
        .build()
        .expect("a TLS client with the built-in roots");
    let client = Client { endpoint: config.endpoint.clone(), credentials: config.credentials.clone(), relay: None };
    let files = FileSigner::new(config.credentials.sign("salesmanago-relay files").as_bytes());
    let dataverse = config.dataverse.clone().map(|c| dataverse::Dataverse::new(c, http.clone()));
    let (writes, written) = tokio::sync::mpsc::unbounded_channel();
    let relay = Relay {
        rate: Rate::new(config.rate_per_key),
        under_way: Semaphore::new(config.max_concurrent),
        client,
        http,
        files,
        seen: webhook::Seen::new(),
        burst: burst::Burst::new(config.burst, writes),
        record: record::Record::new(),
        dataverse,
        config,
    };
    let state = Arc::new(relay);
    tokio::spawn(burst::writer(state.clone(), written));
    if state.dataverse.is_some() && !state.config.catch_up.is_zero() {
        tokio::spawn(catchup::every(state.clone()));
    }
    Router::new()
        .route("/healthz", get(|| async { json_response(200, r#"{"status":"ok"}"#.into()) }))
        .route("/healthz/deep", get(deep).post(deep).options(preflight))
        .route("/api/{*method}", post(api).options(preflight))
        .route("/files/{expires}/{sig}/{address}", get(file).options(preflight))
        .route(salesmanago_dynamics::core::dataverse::registration::WEBHOOK_PATH, post(webhook::webhook))
        .route("/dataverse/catch-up", post(webhook::catch_up_now))
        .fallback(|headers: HeaderMap| async move {
            with_cors(json_response(404, r#"{"status":"not found"}"#.into()), origin(&headers).as_deref())
        })
        .with_state(state)
}

/// One request: what its log line says, and the CORS headers its answer gets.
struct Line {
    started: Instant,
    origin: Option<String>,
    key: String,
    method: &'static str,
    upstream_ms: Option<u128>,
}

impl Line {
    fn new(headers: &HeaderMap, method: &'static str) -> Line {
        Line { started: Instant::now(), origin: origin(headers), key: String::new(), method, upstream_ms: None }
    }

    /// Answers with `response` (CORS headers added), logging the line with its status and size.
    fn answer(&self, response: Response, bytes: Option<usize>) -> Response {
        let response = with_cors(response, self.origin.as_deref());
        tracing::info!(
            target: "request",
            key = self.key.as_str(),
            origin = self.origin.as_deref().unwrap_or(""),
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

pub(crate) fn json_response(status: u16, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn refusal(refusal: Refusal, retry_after_s: Option<u64>) -> Response {
    let body = refusal.body();
    let mut response = json_response(refusal.status(), body);
    if let Some(seconds) = retry_after_s {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The request's `Origin`, if any.
fn origin(headers: &HeaderMap) -> Option<String> {
    headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(|o| o.trim_end_matches('/').to_ascii_lowercase())
}

/// Adds the CORS headers for `origin`. A refusal carries them too, so the engine can read why.
fn with_cors(mut response: Response, origin: Option<&str>) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
    }
    response
}

async fn preflight(headers: HeaderMap) -> Response {
    let origin = origin(&headers);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type, accept"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    with_cors(response, origin.as_deref())
}

impl Relay {
    /// Lets a request in when its origin is allowed and, with `keyed`, its relay key is known:
    /// its line (with the key's id), or the refusal, answered.
    fn admit(&self, headers: &HeaderMap, method: &'static str, keyed: bool) -> Result<Line, Box<Response>> {
        let mut line = Line::new(headers, method);
        if !self.origin_allowed(line.origin.as_deref()) {
            return Err(Box::new(line.refuse(Refusal::Origin, None)));
        }
        if keyed {
            match self.key(headers) {
                Some(key) => line.key = key,
                None => return Err(Box::new(line.refuse(Refusal::Key, None))),
            }
        }
        Ok(line)
    }

    /// The key id of the request's relay key.
    fn key(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case(relay::AUTH_SCHEME) {
            return None;
        }
        keys::verify(&self.config.keys, key.trim()).map(str::to_owned)
    }

    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        // A request without `Origin` is not a browser's: the key alone decides.
        origin.is_none_or(|o| self.config.origins.iter().any(|allowed| allowed == o))
    }

    /// The relay's address as the browser reached it.
    fn base(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.clone();
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        // The endpoint's rule: plain http only to a real loopback host.
        let loopback = is_file_address(&format!("http://{host}"));
        let proto = headers.get("x-forwarded-proto").and_then(|p| p.to_str().ok()).unwrap_or(if loopback {
            "http"
        } else {
            "https"
        });
        format!("{proto}://{host}")
    }

    /// Calls `operation` on SALESmanago, signed, and reads its answer as the engine does: its
    /// output, or the [`SmError`] (the relay's own failures to reach SALESmanago as transport
    /// failures).
    pub(crate) async fn perform<O: Operation>(&self, operation: &O) -> Result<O::Output, SmError> {
        let method = relay::find(operation.method()).ok_or(SmError::UnknownMethod)?;
        let outcome = match self.call(method, operation.body()).await {
            Ok((status, retry_after, body)) => {
                Ok(HttpResponse { status, retry_after, body: String::from_utf8_lossy(&body).into_owned() })
            }
            Err(Refusal::Timeout) => Err(TransportFailure::Timeout),
            Err(_) => Err(TransportFailure::Network),
        };
        self.client.response(operation, outcome)
    }

    /// Sends `body` (without auth fields) to `method`, signed.
    pub(crate) async fn call(
        &self,
        method: relay::Method,
        body: json::Map,
    ) -> Result<(u16, Option<String>, Bytes), Refusal> {
        let mut body = body;
        for field in AUTH_FIELDS {
            body.remove(field);
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| Refusal::Unreachable)?;
        let nonce = Nonce { api_key: random.iter().map(|b| format!("{b:02x}")).collect(), request_time_ms: now_ms() };
        body.extend(self.config.credentials.auth_fields(&nonce, method.needs_owner));
        let url = self.config.endpoint.url(method.name);
        let sent = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, HttpRequest::CONTENT_TYPE)
            .header(header::ACCEPT, HttpRequest::ACCEPT)
            .timeout(self.config.upstream_timeout)
            .body(Value::Object(body).to_string())
            .send()
            .await;
        let response = sent.map_err(|e| if e.is_timeout() { Refusal::Timeout } else { Refusal::Unreachable })?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes =
            response.bytes().await.map_err(|e| if e.is_timeout() { Refusal::Timeout } else { Refusal::Unreachable })?;
        Ok((status, retry_after, bytes))
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn api(State(relay): State<Arc<Relay>>, Path(method): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let mut line = match relay.admit(&headers, "", true) {
        Ok(line) => line,
        Err(refused) => return *refused,
    };
    let Some(method) = relay::find(&method) else {
        return line.refuse(Refusal::Method, None);
    };
    line.method = method.name;
    if let Err(seconds) = relay.rate.take(&line.key, Instant::now()) {
        return line.refuse(Refusal::Rate, Some(seconds));
    }
    let Ok(_permit) = relay.under_way.try_acquire() else {
        return line.refuse(Refusal::Busy, Some(1));
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > relay.config.max_body) {
        return line.refuse(Refusal::TooLarge, None);
    }
    let Ok(bytes) = to_bytes(body, relay.config.max_body).await else {
        return line.refuse(Refusal::TooLarge, None);
    };
    let parsed = std::str::from_utf8(&bytes).ok().and_then(|text| json::from_str(text).ok());
    let Some(Value::Object(fields)) = parsed else {
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
            let now_s = now_ms() / 1000;
            relay.files.rewrite(&body, &relay.base(&headers), now_s).map_or(body, Bytes::from)
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

async fn file(
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
    let sent = relay.http.get(url).timeout(relay.config.upstream_timeout * 20).send().await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) if e.is_timeout() => return line.refuse(Refusal::Timeout, None),
        Err(_) => return line.refuse(Refusal::Unreachable, None),
    };
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let length = upstream.content_length();
    // Streamed through: a file of a million contacts is never held here.
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    line.answer(response, length.map(|n| n as usize))
}

/// `GET` or `POST /healthz/deep` (with a relay key; the engine POSTs): signs a `user/listByClient` call and checks that the
/// owner is one of the account's users.
async fn deep(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    let mut line = match relay.admit(&headers, "healthz/deep", true) {
        Ok(line) => line,
        Err(refused) => return *refused,
    };
    let upstream = Instant::now();
    let outcome = relay.perform(&ListUsers).await;
    line.upstream_ms = Some(upstream.elapsed().as_millis());
    let (status, body) = match outcome {
        Ok(users) => match verdict(&relay.config.credentials.owner, &users) {
            ConnectionVerdict::Ok => (200, r#"{"status":"ok","salesmanago":"ok","owner":"ok"}"#),
            ConnectionVerdict::OwnerNotAUser => (200, r#"{"status":"ok","salesmanago":"ok","owner":"notAUser"}"#),
        },
        Err(SmError::Auth) => (502, r#"{"status":"failed","salesmanago":"credentialsRefused"}"#),
        Err(SmError::Transport(_)) => (502, r#"{"status":"failed","salesmanago":"unreachable"}"#),
        Err(_) => (502, r#"{"status":"failed","salesmanago":"error"}"#),
    };
    line.answer(json_response(status, body.into()), Some(body.len()))
}
