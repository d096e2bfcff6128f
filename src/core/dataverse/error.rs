//! What a failed Web API request means: throttled by service protection, unavailable for now,
//! or refused. The host hands over what it saw (an HTTP answer, or the client API's error
//! object); this module alone reads it, and [`crate::core::retry`] decides what to do.

use crate::core::json::{self, Value};
use crate::core::salesmanago::{HttpResponse, RetryAfter};
use crate::prelude::*;

/// A Web API call that ended without an HTTP answer the host could read: the error object of
/// `Xrm.WebApi` (its `message`, `errorCode`, `status` and `retryAfter`), or `fetch`'s failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DvFailure {
    /// What the client API or the network said.
    pub message: String,
    /// The HTTP status, when the client API gave one.
    pub status: Option<u16>,
    /// Dataverse's error code (`errorCode`), as an unsigned 32-bit number.
    pub code: Option<u32>,
    /// The `Retry-After` the client API passed on (seconds or an HTTP date).
    pub retry_after: Option<String>,
}

/// Why a Web API request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DvError {
    /// Service protection refused it (HTTP 429 or one of [`THROTTLED`]): wait and try again.
    Throttled {
        /// The wait Dataverse asked for.
        retry_after: Option<RetryAfter>,
    },
    /// Dataverse or the network is not available right now (5xx, no answer, an answer that
    /// cannot be read): worth another try.
    Unavailable {
        /// What was seen.
        detail: String,
    },
    /// Dataverse refused the request; trying again will not change that.
    Refused {
        /// Dataverse's message.
        detail: String,
    },
    /// The user's security roles lack a privilege the request needs (`0x80040220`).
    MissingPrivilege {
        /// The privilege named (`prvReadnew_salesmanagointegration`), or Dataverse's message.
        privilege: String,
    },
    /// A change-tracking delta link is too old (`ExpiredVersionStamp`, `0x80044352`): Dataverse
    /// keeps changes for its `ExpireChangeTrackingInDays`, and a full read must start again.
    DeltaExpired,
    /// The table does not track changes (`ChangeTrackingNotEnabledForEntity`, `0x80072491`).
    NotTracked,
}

/// Dataverse's `ExpiredVersionStamp` ("Version stamp associated with the client has expired.
/// Please perform a full sync."), Microsoft's web service error codes.
pub const DELTA_EXPIRED: u32 = 0x8004_4352;

/// Dataverse's `ChangeTrackingNotEnabledForEntity`.
pub const NOT_TRACKED: u32 = 0x8007_2491;

/// Dataverse's "principal user is missing a privilege" error code.
pub const PRIVILEGE_DENIED: u32 = 0x8004_0220;

impl DvError {
    /// The message of a refusal for want of a privilege: the privilege's name when it says it.
    fn missing(detail: String) -> DvError {
        let named = detail
            .split_whitespace()
            .find(|w| w.starts_with("prv"))
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'));
        DvError::MissingPrivilege { privilege: named.map_or(detail.clone(), str::to_owned) }
    }
}

/// Dataverse's service-protection error codes: number of requests, combined execution time,
/// concurrent requests (`0x80072322`, `0x80072321`, `0x80072326`).
pub const THROTTLED: [u32; 3] = [0x8007_2322, 0x8007_2321, 0x8007_2326];

impl DvError {
    /// What to tell a user, without the wait (which the job shows as it waits).
    pub fn detail(&self) -> String {
        match self {
            DvError::Throttled { .. } => "service protection limits (HTTP 429)".into(),
            DvError::Unavailable { detail } | DvError::Refused { detail } => detail.clone(),
            DvError::MissingPrivilege { privilege } => format!("missing privilege {privilege}"),
            DvError::DeltaExpired => "the change-tracking link has expired".into(),
            DvError::NotTracked => "the contact table does not track changes".into(),
        }
    }
}

/// The error `{"error": {"code": "0x…", "message": "…"}}` of a Web API body, if it is one.
fn body_error(body: &str) -> Option<(Option<u32>, String)> {
    let value = json::from_str(body).ok()?;
    let error = value.get("error")?;
    let code = error.get("code").and_then(Value::as_str).and_then(|c| {
        let hex = c.trim().trim_start_matches("0x").trim_start_matches("0X");
        u32::from_str_radix(hex, 16).ok()
    });
    Some((code, error.get("message").and_then(Value::as_str).unwrap_or_default().to_owned()))
}

fn classify(status: Option<u16>, code: Option<u32>, retry_after: Option<RetryAfter>, detail: String) -> DvError {
    if status == Some(429) || code.is_some_and(|c| THROTTLED.contains(&c)) {
        return DvError::Throttled { retry_after };
    }
    if code == Some(PRIVILEGE_DENIED) {
        return DvError::missing(detail);
    }
    match code {
        Some(DELTA_EXPIRED) => return DvError::DeltaExpired,
        Some(NOT_TRACKED) => return DvError::NotTracked,
        _ => {}
    }
    match status {
        None | Some(408 | 500..=599) => DvError::Unavailable { detail },
        Some(_) => DvError::Refused { detail },
    }
}

/// The body of a successful answer, or what the failure means.
pub fn answer(reply: Result<HttpResponse, DvFailure>) -> Result<String, DvError> {
    match reply {
        Ok(response) if (200..300).contains(&response.status) => Ok(response.body),
        Ok(response) => {
            let (code, message) = body_error(&response.body).unwrap_or((None, String::new()));
            let detail = if message.is_empty() { format!("HTTP {}", response.status) } else { message };
            Err(classify(Some(response.status), code, response.wait(), detail))
        }
        Err(failed) => Err(failure(failed)),
    }
}

/// What a client-API error or a failed `fetch` means.
pub fn failure(failure: DvFailure) -> DvError {
    let message = if failure.message.is_empty() { "no answer".to_owned() } else { failure.message };
    // The client API reports a refusal with its status; without one nothing answered.
    classify(failure.status, failure.code, failure.retry_after.as_deref().and_then(RetryAfter::parse), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>, body: &str) -> Result<HttpResponse, DvFailure> {
        Ok(HttpResponse { date: None, status, retry_after: retry_after.map(str::to_owned), body: body.into() })
    }

    #[test]
    fn service_protection_is_throttling_by_status_or_code() {
        assert_eq!(
            answer(response(429, Some("7"), "")),
            Err(DvError::Throttled { retry_after: Some(RetryAfter::Seconds(7)) })
        );
        let body = r#"{"error":{"code":"0x80072321","message":"Combined execution time"}}"#;
        assert_eq!(answer(response(503, None, body)), Err(DvError::Throttled { retry_after: None }));
        let client_api = DvFailure { message: "busy".into(), code: Some(0x8007_2326), ..DvFailure::default() };
        assert!(matches!(answer(Err(client_api)), Err(DvError::Throttled { .. })));
        let date = DvFailure {
            status: Some(429),
            retry_after: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
            ..DvFailure::default()
        };
        assert_eq!(answer(Err(date)), Err(DvError::Throttled { retry_after: Some(RetryAfter::At(784_111_777_000)) }));
    }

    #[test]
    fn refusals_carry_dataverses_message() {
        let body = r#"{"error":{"code":"0x80040217","message":"contact With Id = c2 Does Not Exist"}}"#;
        assert_eq!(
            answer(response(404, None, body)),
            Err(DvError::Refused { detail: "contact With Id = c2 Does Not Exist".into() })
        );
        assert_eq!(answer(response(400, None, "<html>")), Err(DvError::Refused { detail: "HTTP 400".into() }));
        assert_eq!(answer(response(502, None, "")), Err(DvError::Unavailable { detail: "HTTP 502".into() }));
        assert_eq!(
            answer(Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() })),
            Err(DvError::Unavailable { detail: "Failed to fetch".into() })
        );
        assert_eq!(answer(response(204, None, "")), Ok(String::new()));
    }

    #[test]
    fn a_missing_privilege_is_named() {
        let body = r#"{"error":{"code":"0x80040220","message":"Principal user (Id=u-1, type=8) is missing prvReadnew_salesmanagointegration privilege (Id=p-1)"}}"#;
        assert_eq!(
            answer(response(403, None, body)),
            Err(DvError::MissingPrivilege { privilege: "prvReadnew_salesmanagointegration".into() })
        );
        let client_api = DvFailure {
            message: "Not allowed".into(),
            status: Some(403),
            code: Some(PRIVILEGE_DENIED),
            ..DvFailure::default()
        };
        assert_eq!(answer(Err(client_api)), Err(DvError::MissingPrivilege { privilege: "Not allowed".into() }));
    }
}
