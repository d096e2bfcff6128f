//! Plain-data HTTP exchanges: the core builds [`HttpRequest`]s and reads [`HttpResponse`]s; the
//! host performs them. Status codes are data here, classified by [`super::envelope`].

use super::error::RetryAfter;
use super::relay::RelayKey;
use crate::prelude::*;

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
    /// A body's bytes as a page reads them as text (`Response.text()`, WHATWG's "UTF-8
    /// decode"): a leading byte-order mark dropped, each malformed sequence one U+FFFD. The host
    /// reads bodies as bytes, so an answer crosses into the engine once instead of being
    /// decoded to a JS string and encoded back.
    pub fn text(bytes: Vec<u8>) -> String {
        let mut text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(bad) => String::from_utf8_lossy(bad.as_bytes()).into_owned(),
        };
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        text
    }

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

#[cfg(test)]
mod tests {
    use super::HttpResponse;

    #[test]
    fn a_body_reads_as_a_page_reads_text() {
        assert_eq!(HttpResponse::text("Dąbrowski ✓".as_bytes().to_vec()), "Dąbrowski ✓");
        assert_eq!(HttpResponse::text(b"\xEF\xBB\xBF{}".to_vec()), "{}", "a leading byte-order mark is dropped");
        assert_eq!(HttpResponse::text(b"{}\xEF\xBB\xBF".to_vec()), "{}\u{feff}", "only a leading one");
        assert_eq!(HttpResponse::text(b"\xEF\xBB\xBF\xEF\xBB\xBF".to_vec()), "\u{feff}", "only one");
        // WHATWG's decoder: each maximal malformed part is one U+FFFD.
        assert_eq!(HttpResponse::text(b"a\xF0\x9F\x98b\xFFc".to_vec()), "a\u{fffd}b\u{fffd}c");
        assert_eq!(HttpResponse::text(Vec::new()), "");
    }
}
