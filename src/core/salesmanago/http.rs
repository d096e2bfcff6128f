//! Plain-data HTTP exchanges: the core builds [`HttpRequest`]s and reads [`HttpResponse`]s; the
//! host performs them. Status codes are data here, classified by [`super::envelope`].

use super::error::RetryAfter;
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
    /// The `Date` header, if any: the server's clock ([`crate::core::clock`]).
    pub date: Option<String>,
}

impl HttpResponse {
    /// How long the server asks to wait (`Retry-After`). A date is read against the answer's
    /// own `Date`, so the wait does not depend on this machine's clock.
    pub fn wait(&self) -> Option<RetryAfter> {
        let asked = RetryAfter::parse(self.retry_after.as_deref()?)?;
        let said = self.date.as_deref().and_then(crate::core::clock::http_date_ms);
        Some(match (asked, said) {
            (RetryAfter::At(at), Some(now)) => RetryAfter::Seconds(at.saturating_sub(now).div_ceil(1000)),
            (asked, _) => asked,
        })
    }
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
