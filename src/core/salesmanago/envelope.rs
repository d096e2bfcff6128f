//! The response envelope every API v2 method shares: `{"success": bool, "message": [..], ...}`
//! (`docs/salesmanago-api.md` §3, §4). Classifies HTTP statuses and `success:false`
//! into [`SmError`]s and hands the payload's other fields to the method's parser.

use crate::core::json::{self, Map, Value};
use crate::prelude::*;

use super::error::SmError;
use super::http::{HttpResponse, TransportFailure};

/// The fields of a successful answer, and any `message` strings it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// Every field of the body.
    pub fields: Map,
    /// The `message` array (empty on a clean success).
    pub messages: Vec<String>,
}

/// Opens a response: fails with the [`SmError`] its status or `success:false` means.
pub fn open(outcome: Result<HttpResponse, TransportFailure>) -> Result<Payload, SmError> {
    let response = outcome?;
    if !(200..=299).contains(&response.status) {
        match super::relay::Refusal::of_body(&response.body) {
            // The relay's own limits: waited out like SALESmanago's.
            Some(super::relay::Refusal::Rate | super::relay::Refusal::Busy) => {
                let retry_after = response.wait();
                return Err(SmError::Throttled { retry_after });
            }
            Some(refusal) => return Err(SmError::Relay(refusal)),
            None => {}
        }
    }
    match response.status {
        200..=299 => {}
        429 => {
            let retry_after = response.wait();
            return Err(SmError::Throttled { retry_after });
        }
        404 => return Err(SmError::UnknownMethod),
        408 | 500..=599 => return Err(SmError::Server { status: response.status }),
        // Some gateways answer 4xx with the JSON envelope; its messages say more than the status.
        status => return Err(parse_body(&response.body).map_or(SmError::UnexpectedStatus { status }, refusal)),
    }
    let payload = parse_body(&response.body)?;
    match payload.fields.get("success") {
        Some(Value::Bool(true)) => Ok(payload),
        Some(Value::Bool(false)) => Err(refusal(payload)),
        Some(_) => Err(invalid("`success` is not a boolean")),
        None => Err(invalid("no `success` field")),
    }
}

fn parse_body(body: &str) -> Result<Payload, SmError> {
    let value = json::from_str(body).map_err(|e| invalid(&format!("not JSON ({e})")))?;
    let Value::Object(fields) = value else {
        return Err(invalid("not a JSON object"));
    };
    let messages = match fields.get("message") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items.iter().map(message_text).collect(),
        Some(_) => return Err(invalid("`message` is neither a list nor text")),
    };
    Ok(Payload { fields, messages })
}

fn message_text(item: &Value) -> String {
    match item {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The error a `success:false` answer stands for.
fn refusal(payload: Payload) -> SmError {
    // The phrases sought are ASCII, as is the owner's address, so ASCII lower-casing finds what
    // `to_lowercase` would; Unicode's case tables would cost the wasm 18 KB.
    let lower: Vec<String> = payload.messages.iter().map(|m| m.to_ascii_lowercase()).collect();
    if lower.iter().any(|m| m.contains("not authenticated")) {
        return SmError::Auth;
    }
    if let Some(owner) = lower.iter().find_map(|m| owner_in(m)) {
        return SmError::UnknownOwner { owner };
    }
    SmError::Rejected { messages: payload.messages }
}

/// The owner named by an "owner … not found" message.
fn owner_in(message: &str) -> Option<String> {
    let rest = message.strip_prefix("owner ")?;
    let owner = rest.strip_suffix(" not found")?;
    Some(owner.trim().to_owned())
}

pub(crate) fn invalid(detail: &str) -> SmError {
    SmError::InvalidResponse { detail: detail.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::salesmanago::error::RetryAfter;

    fn response(status: u16, body: &str) -> Result<HttpResponse, TransportFailure> {
        Ok(HttpResponse { date: None, status, retry_after: None, body: body.into() })
    }

    #[test]
    fn success_hands_over_every_field() {
        let payload = open(response(200, r#"{"success":true,"message":[],"contactId":"x","extra":1}"#)).unwrap();
        assert_eq!(payload.fields["contactId"], "x");
        assert_eq!(payload.fields["extra"], 1);
        assert!(payload.messages.is_empty());
    }

    #[test]
    fn success_false_with_http_200_is_an_error() {
        let err = open(response(200, r#"{"success":false,"message":["Contact rejected: a@b.pl"]}"#));
        assert_eq!(err, Err(SmError::Rejected { messages: vec!["Contact rejected: a@b.pl".into()] }));
    }

    #[test]
    fn authentication_failures_are_recognised() {
        for text in ["Not authenticated", "User not authenticated", "USER NOT AUTHENTICATED."] {
            let body = format!(r#"{{"success":false,"message":["{text}"]}}"#);
            assert_eq!(open(response(200, &body)), Err(SmError::Auth), "{text}");
        }
        let wrapped = open(response(401, r#"{"success":false,"message":["Not authenticated"]}"#));
        assert_eq!(wrapped, Err(SmError::Auth));
    }

    #[test]
    fn unknown_owner_is_recognised() {
        let err = open(response(200, r#"{"success":false,"message":["Owner nobody@x.pl not found"]}"#));
        assert_eq!(err, Err(SmError::UnknownOwner { owner: "nobody@x.pl".into() }));
    }

    #[test]
    fn statuses_are_classified() {
        let mut throttled =
            HttpResponse { date: None, status: 429, retry_after: Some("7".into()), body: String::new() };
        assert_eq!(open(Ok(throttled.clone())), Err(SmError::Throttled { retry_after: Some(RetryAfter::Seconds(7)) }));
        throttled.retry_after = Some("later".into());
        assert_eq!(open(Ok(throttled)), Err(SmError::Throttled { retry_after: None }));
        assert_eq!(open(response(503, "<html>")), Err(SmError::Server { status: 503 }));
        assert_eq!(open(response(408, "")), Err(SmError::Server { status: 408 }));
        assert_eq!(open(response(404, "{}")), Err(SmError::UnknownMethod));
        assert_eq!(open(response(403, "Forbidden")), Err(SmError::UnexpectedStatus { status: 403 }));
        assert_eq!(open(Err(TransportFailure::CrossOrigin)), Err(SmError::Transport(TransportFailure::CrossOrigin)));
    }

    #[test]
    fn malformed_answers_are_invalid_responses() {
        for body in [
            r#"{"success":tr"#,
            "",
            "[]",
            r#"{"message":[]}"#,
            r#"{"success":"yes"}"#,
            r#"{"success":true,"message":5}"#,
        ] {
            assert!(matches!(open(response(200, body)), Err(SmError::InvalidResponse { .. })), "{body:?}");
        }
    }

    #[test]
    fn message_may_be_text_or_hold_non_strings() {
        let payload = open(response(200, r#"{"success":true,"message":"queued"}"#)).unwrap();
        assert_eq!(payload.messages, ["queued"]);
        let err = open(response(200, r#"{"success":false,"message":[{"code":3}]}"#));
        assert_eq!(err, Err(SmError::Rejected { messages: vec![r#"{"code":3}"#.into()] }));
    }
}
