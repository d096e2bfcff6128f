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
//! without bodies, e-mails, keys or the secret. It faces the internet, so every byte is
//! bounded: connections ([`server`]), bodies ([`intake`]), each key's rate and share
//! ([`limits`]), and what comes back from SALESmanago ([`upstream`]).

mod api;
mod burst;
mod catchup;
pub mod config;
pub mod dataverse;
mod driver;
mod files;
mod gather;
mod intake;
pub mod keys;
mod limits;
mod outgoing;
pub mod register;
mod rules;
pub mod server;
mod upstream;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use salesmanago_dynamics::core::job::lease::User;
use salesmanago_dynamics::core::salesmanago::relay::{self, Refusal};
use salesmanago_dynamics::core::salesmanago::{
    Client, HttpRequest, HttpResponse, Nonce, Operation, SmError, TransportFailure,
};

pub use config::Config;
use files::FileSigner;
use limits::{Rate, Shares};
pub use server::{serve, serve_with};

struct Relay {
    config: Config,
    client: Client,
    /// Each method's address at SALESmanago, parsed once.
    urls: std::collections::HashMap<&'static str, reqwest::Url>,
    upstream: upstream::Upstream,
    rate: Rate,
    shares: Shares,
    files: FileSigner,
    /// The deep check's last answer.
    deep: api::DeepCheck,
    /// The webhook deliveries acted on.
    seen: webhook::Seen,
    /// Deliveries gathered into batch upserts.
    burst: burst::Burst,
    /// SALESmanago's rule calls gathered into jobs.
    rules: rules::Rules,
    /// Dataverse, as the integration's application user, when configured.
    dataverse: Option<dataverse::Dataverse>,
    /// Work going on after its deliveries were answered (a burst's write-back and recheck).
    after: After,
}

/// Work that goes on after its answer: counted, so that a shutdown lets it finish.
#[derive(Clone)]
pub struct After(Arc<tokio::sync::watch::Sender<usize>>);

impl After {
    fn new() -> After {
        After(Arc::new(tokio::sync::watch::Sender::new(0)))
    }

    /// Runs `work` on its own task, counted until it ends.
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.send_modify(|n| *n += 1);
        let counter = self.0.clone();
        tokio::spawn(async move {
            // Counted down however the task ends (a panic included).
            struct Done(Arc<tokio::sync::watch::Sender<usize>>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.send_modify(|n| *n -= 1);
                }
            }
            let _done = Done(counter);
            work.await;
        });
    }

    /// Resolves once no such work is under way.
    pub async fn finished(&self) {
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

/// The relay's routes over `config`, with CORS for the allowed origins and a panic in one
/// request answered as a `500`, never the end of the process.
pub fn app(config: Config) -> Router {
    app_and_after(config).0
}

/// [`app`], and the work its requests leave going on after their answers.
pub(crate) fn app_and_after(config: Config) -> (Router, After) {
    let upstream = upstream::Upstream::new(&config);
    let client = Client { endpoint: config.endpoint.clone(), credentials: config.credentials.clone(), relay: None };
    let files = FileSigner::new(config.credentials.sign("salesmanago-relay files").as_bytes());
    let dataverse = config.dataverse.clone().map(|c| dataverse::Dataverse::new(c, upstream.api.clone()));
    let urls = relay::METHODS
        .iter()
        .filter_map(|m| Some((m.name, reqwest::Url::parse(&config.endpoint.url(m.name)).ok()?)))
        .collect();
    let relay = Relay {
        urls,
        rate: Rate::new(config.rate_per_key),
        shares: Shares::new(config.keys.iter().map(|k| k.id.as_str()), config.max_concurrent),
        client,
        upstream,
        files,
        deep: api::DeepCheck::default(),
        seen: webhook::Seen::new(),
        burst: burst::Burst::new(config.burst),
        rules: rules::Rules::new(config.burst),
        dataverse,
        after: After::new(),
        config,
    };
    let state = Arc::new(relay);
    let after = state.after.clone();
    if state.dataverse.is_some() && !state.config.catch_up.is_zero() {
        tokio::spawn(catchup::every(state.clone()));
    }
    if state.dataverse.is_some() && !state.config.activity.is_zero() {
        tokio::spawn(catchup::activity_every(state.clone()));
    }
    let cors = cors(state.config.origins.clone());
    let routes = Router::new()
        .route("/healthz", get(|| async { json_response(200, r#"{"status":"ok"}"#.into()) }))
        .route("/healthz/deep", get(api::deep).post(api::deep))
        .route("/api/{*method}", post(api::api))
        .route("/files/{expires}/{sig}/{address}", get(api::file))
        .route(salesmanago_dynamics::core::dataverse::registration::WEBHOOK_PATH, post(webhook::webhook))
        .route("/dataverse/catch-up", post(webhook::catch_up_now))
        .route("/dataverse/pull-activity", post(webhook::pull_activity_now))
        .route("/salesmanago/rule", post(rules::rule))
        .fallback(|| async { json_response(404, r#"{"status":"not found"}"#.into()) })
        .with_state(state);
    (guarded(routes.layer(cors)), after)
}

/// `router` with a panic in a request answered as a `500` (logged, with no detail of the
/// request), so one bad request cannot end the relay.
pub fn guarded(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
        tracing::error!(target: "request", status = 500u16, "a request failed inside the relay");
        json_response(500, r#"{"success":false,"message":["The relay failed on this request"]}"#.into())
    }))
}

/// CORS for the Dynamics `origins`: each answer to an allowed origin carries its
/// `Access-Control-Allow-Origin` (refusals too, so the engine can read why) and exposes
/// `Retry-After` and `Date`; an origin not allowed is never echoed.
fn cors(origins: Vec<String>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| allowed(&origins, Some(o)))
        }))
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        // `Date`: SALESmanago's clock, against which a `Retry-After` date is read.
        .expose_headers([header::RETRY_AFTER, header::DATE])
        .max_age(Duration::from_secs(600))
}

/// Whether a request from `origin` may be served: no `Origin` is not a browser's (the key
/// alone decides), else an exact match, case and a trailing `/` aside.
fn allowed(origins: &[String], origin: Option<&str>) -> bool {
    origin.is_none_or(|o| {
        let o = o.trim_end_matches('/');
        origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(o))
    })
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

/// The key id of the relay key in `headers`, if it is one of `keys`.
fn key_of(keys: &[keys::StoredKey], headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case(relay::AUTH_SCHEME) {
        return None;
    }
    keys::verify(keys, key.trim()).map(str::to_owned)
}

impl Relay {
    /// Calls `operation` on SALESmanago, signed, and reads its answer as the engine does: its
    /// output, or the [`SmError`] (the relay's own failures to reach SALESmanago as transport
    /// failures, its refusals as such).
    pub(crate) async fn perform<O: Operation>(&self, operation: &O) -> Result<O::Output, SmError> {
        let method = relay::find(operation.method()).ok_or(SmError::UnknownMethod)?;
        let outcome = match self.call(method, outgoing::Fields::Own(operation.body())).await {
            Ok((status, retry_after, body)) => {
                Ok(HttpResponse { date: None, status, retry_after, body: String::from_utf8_lossy(&body).into_owned() })
            }
            Err(Refusal::Timeout) => Err(TransportFailure::Timeout),
            Err(Refusal::Unreachable) => Err(TransportFailure::Network),
            Err(refused) => return Err(SmError::Relay(refused)),
        };
        self.client.response(operation, outcome)
    }

    /// Sends `fields` (without auth fields) to `method`, signed: SALESmanago's status,
    /// `Retry-After` and body (at most `RELAY_MAX_ANSWER_BYTES`), or the relay's refusal (a
    /// redirect is one: it is never followed).
    pub(crate) async fn call(
        &self,
        method: relay::Method,
        fields: outgoing::Fields<'_>,
    ) -> Result<(u16, Option<String>, Bytes), Refusal> {
        let api_key = outgoing::api_key().ok_or(Refusal::Unreachable)?;
        let nonce = Nonce { api_key, request_time_ms: now_ms() };
        let body = fields.signed(self.config.credentials.auth_fields(&nonce, method.needs_owner));
        let url = self.urls.get(method.name).cloned().ok_or(Refusal::Unreachable)?;
        let sent = self
            .upstream
            .api
            .post(url)
            .header(header::CONTENT_TYPE, HttpRequest::CONTENT_TYPE)
            .header(header::ACCEPT, HttpRequest::ACCEPT)
            .timeout(self.config.upstream_timeout)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|e| upstream::failure(&e))?;
        let status = response.status();
        if status.is_redirection() {
            tracing::warn!(target: "upstream", method = method.name, status = status.as_u16(), "SALESmanago answered with a redirect, not followed");
            return Err(Refusal::Redirect);
        }
        let retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = retry_after.map(|v| intake::cut(&v, 40));
        let bytes = upstream::capped(response, self.config.max_answer).await?;
        Ok((status.as_u16(), retry_after, bytes))
    }
}

impl Relay {
    /// Who the relay's jobs run as: its application user (its id as Dynamics writes user ids,
    /// without braces, in lower case), named in the leases it takes.
    pub(crate) fn user(&self) -> User {
        let id = self.config.app_user.as_deref().unwrap_or_default().trim().trim_matches(['{', '}']);
        User { id: id.to_ascii_lowercase(), name: "SALESmanago relay".into() }
    }

    /// POSTs a request the core built and signed (a job's call) to SALESmanago: its answer with
    /// `Date`, or why there was none (a redirect, never followed, counts as unreachable).
    pub(crate) async fn post_signed(
        &self,
        request: &HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportFailure> {
        let sent = self
            .upstream
            .api
            .post(&request.url)
            .header(header::CONTENT_TYPE, HttpRequest::CONTENT_TYPE)
            .header(header::ACCEPT, HttpRequest::ACCEPT)
            .timeout(timeout.min(self.config.upstream_timeout))
            .body(request.body.clone())
            .send()
            .await;
        let response = match sent.map_err(|e| upstream::failure(&e)) {
            Ok(response) => response,
            Err(Refusal::Timeout) => return Err(TransportFailure::Timeout),
            Err(_) => return Err(TransportFailure::Network),
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(TransportFailure::Network);
        }
        let header_text = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| intake::cut(v, 40));
        let (retry_after, date) = (header_text(header::RETRY_AFTER), header_text(header::DATE));
        match upstream::capped(response, self.config.max_answer).await {
            Ok(bytes) => {
                let body = String::from_utf8_lossy(&bytes).into_owned();
                Ok(HttpResponse { status: status.as_u16(), retry_after, body, date })
            }
            Err(Refusal::Timeout) => Err(TransportFailure::Timeout),
            Err(_) => Err(TransportFailure::Network),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
