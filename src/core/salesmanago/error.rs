//! What can go wrong in a SALESmanago call, grouped by who can fix it. The user's text for each
//! is in [`crate::core::i18n`]; whether to try again is [`crate::core::retry`]'s decision.
//! No variant holds a secret: server messages and statuses only.

use super::http::TransportFailure;
use crate::prelude::*;

/// A failed SALESmanago call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmError {
    /// SALESmanago refused the credentials (`Not authenticated`): the admin must fix the
    /// client id, API secret or endpoint.
    Auth,
    /// The owner e-mail is not a user of the SALESmanago account.
    UnknownOwner {
        /// The owner that was sent.
        owner: String,
    },
    /// SALESmanago answered `success:false` for another reason; its messages say why.
    Rejected {
        /// The server's messages, verbatim.
        messages: Vec<String>,
    },
    /// Too many requests (HTTP 429).
    Throttled {
        /// When SALESmanago said to come back, if it did.
        retry_after: Option<RetryAfter>,
    },
    /// A server error (HTTP 5xx) or a timeout answered by a gateway (408).
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The endpoint does not know this API method (HTTP 404): an old server or a relay that
    /// does not forward it.
    UnknownMethod,
    /// Another HTTP status that retrying will not change.
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// No HTTP response.
    Transport(TransportFailure),
    /// The answer is not what the API documents.
    InvalidResponse {
        /// What was wrong, for support (never the body itself).
        detail: String,
    },
    /// The relay refused the request, or could not get SALESmanago's answer.
    Relay(super::relay::Refusal),
    /// SALESmanago refused the relay's credentials: its administrator must fix them there.
    RelayCredentials,
}

/// A `Retry-After` value (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// A number of seconds.
    Seconds(u64),
    /// An HTTP date, as Unix milliseconds.
    At(u64),
}

impl RetryAfter {
    /// Parses the header. Returns `None` for a value that is neither seconds nor an HTTP date.
    pub fn parse(header: &str) -> Option<RetryAfter> {
        let header = header.trim();
        if let Ok(seconds) = header.parse::<u64>() {
            return Some(RetryAfter::Seconds(seconds));
        }
        crate::core::clock::http_date_ms(header).map(RetryAfter::At)
    }

    /// Milliseconds to wait from `now_ms`.
    pub fn delay_ms(self, now_ms: u64) -> u64 {
        match self {
            RetryAfter::Seconds(s) => s.saturating_mul(1000),
            RetryAfter::At(at) => at.saturating_sub(now_ms),
        }
    }
}

impl SmError {
    /// This error with a `Retry-After` date turned into the delay it meant at `now_ms`, so a
    /// message can say how long to wait.
    pub fn settled(self, now_ms: u64) -> SmError {
        match self {
            SmError::Throttled { retry_after: Some(after @ RetryAfter::At(_)) } => {
                SmError::Throttled { retry_after: Some(RetryAfter::Seconds(after.delay_ms(now_ms).div_ceil(1000))) }
            }
            other => other,
        }
    }

    /// A stable name for the kind of failure, for scripts and tests (never shown to users).
    /// Whether the error stops a whole job, because every later call would fail the same way
    /// (credentials, owner, CORS, a wrong endpoint), rather than only the batch it hit.
    pub fn stops_job(&self) -> bool {
        use super::relay::Refusal;
        matches!(
            self,
            SmError::Auth
                | SmError::UnknownOwner { .. }
                | SmError::UnknownMethod
                | SmError::RelayCredentials
                | SmError::Relay(
                    Refusal::Key | Refusal::Origin | Refusal::Method | Refusal::Redirect | Refusal::FileHost
                )
                | SmError::Transport(TransportFailure::CrossOrigin | TransportFailure::Network)
        )
    }

    /// A stable name of the error, for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            SmError::Auth => "auth",
            SmError::UnknownOwner { .. } => "unknownOwner",
            SmError::Rejected { .. } => "rejected",
            SmError::Throttled { .. } => "throttled",
            SmError::Server { .. } => "server",
            SmError::UnknownMethod => "unknownMethod",
            SmError::UnexpectedStatus { .. } => "unexpectedStatus",
            SmError::Transport(TransportFailure::Timeout) => "timeout",
            SmError::Transport(TransportFailure::Network) => "network",
            SmError::Transport(TransportFailure::CrossOrigin) => "crossOrigin",
            SmError::InvalidResponse { .. } => "invalidResponse",
            SmError::Relay(_) => "relay",
            SmError::RelayCredentials => "relayCredentials",
        }
    }
}

impl From<TransportFailure> for SmError {
    fn from(failure: TransportFailure) -> SmError {
        SmError::Transport(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse(" 0 "), Some(RetryAfter::Seconds(0)));
        let at = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at, Some(RetryAfter::At(784_111_777_000)));
        assert_eq!(at.map(|a| a.delay_ms(784_111_770_000)), Some(7_000));
        assert_eq!(at.map(|a| a.delay_ms(784_111_999_000)), Some(0), "a date in the past means now");
        for obsolete in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(RetryAfter::parse(obsolete), at, "{obsolete}");
        }
        assert_eq!(RetryAfter::parse("Thu, 01 Jan 2037 00:00:00 GMT"), Some(RetryAfter::At(2_114_380_800_000)));
        assert_eq!(RetryAfter::parse("Thursday, 01-Jan-37 00:00:00 GMT"), Some(RetryAfter::At(2_114_380_800_000)));
    }

    #[test]
    fn nonsense_retry_after_is_ignored() {
        for header in [
            "",
            "-1",
            "soon",
            "1.5",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 29 Feb 1995 08:49:37 GMT",
            "Sun Nov  6 08:49:37",
        ] {
            assert_eq!(RetryAfter::parse(header), None, "{header:?}");
        }
    }
}
