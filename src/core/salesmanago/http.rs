//! Plain-data HTTP exchanges: the core builds [`HttpRequest`]s and reads [`HttpResponse`]s; the
//! host performs them. Status codes are data here, classified by [`super::envelope`].

use super::relay::RelayKey;

/// A request to SALESmanago: always `POST` with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Absolute URL; never carries a secret.
    pub url: String,
    /// The JSON body, auth fields included (none through a relay).
    pub body: String,
    /// Through a relay: its key, sent as `Authorization` ([`RelayKey::authorization`]).
    pub relay_key: Option<RelayKey>,
}

impl HttpRequest {
    /// The method of every API v2 call.
    pub const METHOD: &'static str = "POST";
    /// The `Content-Type` every API v2 call sends (§1 of the reference).
    pub const CONTENT_TYPE: &'static str = "application/json;charset=UTF-8";
    /// The `Accept` header.
    pub const ACCEPT: &'static str = "application/json";
}

/// What came back, as the host read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
}

/// A request that got no HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// No answer within the per-request timeout.
    Timeout,
    /// The server could not be reached (DNS, connection refused, offline).
    Network,
    /// The server answered, but the browser withheld the answer: the endpoint does not allow
    /// calls from this origin (CORS).
    CrossOrigin,
}
