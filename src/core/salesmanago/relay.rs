//! What the engine and `salesmanago-relay` share, so that neither has a second copy: the API
//! methods the engine calls (the only ones the relay forwards, and whether each carries the
//! owner), how the browser shows its relay key, and the relay's own refusals.
//!
//! A refusal is the relay's, not SALESmanago's: its body is the API's envelope with one more
//! field, `relayRefusal`, naming the reason, so the engine can tell "your relay key is wrong"
//! from anything SALESmanago says.

use crate::core::json::Value;
use crate::prelude::*;

/// An API method the engine calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The path under `/api/`.
    pub name: &'static str,
    /// Whether its body carries `owner`.
    pub needs_owner: bool,
}

const fn method(name: &'static str, needs_owner: bool) -> Method {
    Method { name, needs_owner }
}

/// Every method the engine calls. A test checks each [`super::Operation`] against it.
pub const METHODS: &[Method] = &[
    method("contact/upsert", true),
    method("contact/batchupsert", true),
    method("contact/delete", true),
    method("contact/hasContact", true),
    method("contact/basic", true),
    method("contact/basicById", true),
    method("contact/listById", true),
    method("contact/modifiedContacts", true),
    method("contact/paginatedModifiedContacts", true),
    method("contact/optin", false),
    method("contact/optout", false),
    method("contact/phoneoptin", false),
    method("contact/phoneoptout", false),
    method("contact/export/data", true),
    method("job/status", false),
    method("user/listByClient", false),
];

/// The method named `name`, if the engine calls it.
pub fn find(name: &str) -> Option<Method> {
    METHODS.iter().copied().find(|m| m.name == name)
}

/// The relay key goes in `Authorization: Bearer <key>`.
pub const AUTH_SCHEME: &str = "Bearer";

/// A relay key (`<id>.<secret>`, the integration record's `new_relaykey`): it has no `Display`
/// and a redacted `Debug`, so it cannot end up in a message or a log line; the only way to read
/// it is [`RelayKey::authorization`].
#[derive(Clone, PartialEq, Eq)]
pub struct RelayKey(String);

impl RelayKey {
    /// A key as stored; `None` when there is none.
    pub fn new(key: &str) -> Option<RelayKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| RelayKey(key.to_owned()))
    }

    /// The `Authorization` header's value.
    pub fn authorization(&self) -> String {
        format!("{AUTH_SCHEME} {}", self.0)
    }
}

impl ::core::fmt::Debug for RelayKey {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.write_str("RelayKey(<redacted>)")
    }
}

/// The start of the path, under the relay's base, of a file it hands out (`fileUrl` in a
/// `job/status` answer, when the relay is not told its public address).
pub const FILE_PATH: &str = "files/";

/// Whether `text` is a file path a relay hands out: `files/` and then only the letters of
/// its signed parts (digits, base64url and `/`), so it can only name a path under the relay.
pub fn is_file_path(text: &str) -> bool {
    text.strip_prefix(FILE_PATH).is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.contains("//")
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/')
    })
}

/// A failure of a call through the relay, as the relay means it: the relay answers every
/// origin it allows with CORS headers, so a call the browser blocked is the relay refusing
/// this origin.
pub fn through(error: super::SmError) -> super::SmError {
    match error {
        super::SmError::Transport(super::TransportFailure::CrossOrigin) => super::SmError::Relay(Refusal::Origin),
        other => other,
    }
}

/// The path of the relay's deep check, under its base: it signs a `user/listByClient` call and
/// checks its owner; "Test connection" asks it in relay mode.
pub const CHECK_PATH: &str = "/healthz/deep";

/// What the deep check found, from its answer.
///
/// Fails with the [`super::SmError`] its answer stands for.
pub fn check_verdict(
    outcome: Result<super::HttpResponse, super::TransportFailure>,
) -> Result<crate::core::integration::ConnectionVerdict, super::SmError> {
    use super::SmError;
    use crate::core::integration::ConnectionVerdict;
    let response = outcome.map_err(|failure| through(failure.into()))?;
    if let Some(refusal) = Refusal::of_body(&response.body) {
        return Err(SmError::Relay(refusal));
    }
    let value = crate::core::json::from_str(&response.body)
        .map_err(|_| SmError::InvalidResponse { detail: "the relay's check is not JSON".into() })?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    match (response.status, field("salesmanago").as_str(), field("owner").as_str()) {
        (200, "ok", "ok") => Ok(ConnectionVerdict::Ok),
        (200, "ok", "notAUser") => Ok(ConnectionVerdict::OwnerNotAUser),
        (_, "credentialsRefused", _) => Err(SmError::RelayCredentials),
        (_, "unreachable", _) => Err(SmError::Relay(Refusal::Unreachable)),
        (404, _, _) => Err(SmError::UnknownMethod),
        (status, _, _) => Err(SmError::UnexpectedStatus { status }),
    }
}

/// The envelope field that names a relay's refusal.
pub const REFUSAL_FIELD: &str = "relayRefusal";

/// Why the relay did not forward a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No relay key, or not one the relay knows.
    Key,
    /// The request came from an origin the relay does not serve.
    Origin,
    /// A method the engine does not call.
    Method,
    /// A body over the relay's limit.
    TooLarge,
    /// The key sent more requests than its rate allows (`Retry-After` says when to go on).
    Rate,
    /// The relay has as many requests under way as it takes (`Retry-After` says when to go on).
    Busy,
    /// The relay could not reach SALESmanago.
    Unreachable,
    /// SALESmanago did not answer the relay in time.
    Timeout,
    /// A file address the relay did not hand out, or one whose signature does not match.
    File,
    /// SALESmanago answered with a redirect, which the relay never follows.
    Redirect,
    /// SALESmanago's answer was larger than the relay takes.
    AnswerTooLarge,
    /// SALESmanago handed out a file on a host the relay does not fetch from.
    FileHost,
    /// The request's body could not be read: malformed, cut off, or too slow.
    Body,
}

impl Refusal {
    const ALL: [Refusal; 13] = [
        Refusal::Key,
        Refusal::Origin,
        Refusal::Method,
        Refusal::TooLarge,
        Refusal::Rate,
        Refusal::Busy,
        Refusal::Unreachable,
        Refusal::Timeout,
        Refusal::File,
        Refusal::Redirect,
        Refusal::AnswerTooLarge,
        Refusal::FileHost,
        Refusal::Body,
    ];

    /// The HTTP status the relay answers with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Key => 401,
            Refusal::Origin => 403,
            Refusal::Method | Refusal::File => 404,
            Refusal::Body => 400,
            Refusal::TooLarge => 413,
            Refusal::Rate => 429,
            Refusal::Busy => 503,
            Refusal::Unreachable | Refusal::Redirect | Refusal::AnswerTooLarge | Refusal::FileHost => 502,
            Refusal::Timeout => 504,
        }
    }

    /// The reason's name in `relayRefusal`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Key => "key",
            Refusal::Origin => "origin",
            Refusal::Method => "method",
            Refusal::TooLarge => "tooLarge",
            Refusal::Rate => "rate",
            Refusal::Busy => "busy",
            Refusal::Unreachable => "unreachable",
            Refusal::Timeout => "timeout",
            Refusal::File => "file",
            Refusal::Redirect => "redirect",
            Refusal::AnswerTooLarge => "answerTooLarge",
            Refusal::FileHost => "fileHost",
            Refusal::Body => "body",
        }
    }

    /// The refusal named `code`.
    pub fn from_code(code: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The refusal a response body names, if it is one.
    pub fn of_body(body: &str) -> Option<Refusal> {
        let value = crate::core::json::from_str(body).ok()?;
        Refusal::from_code(value.get(REFUSAL_FIELD)?.as_str()?)
    }

    /// The body the relay answers with: the envelope, a message for people reading logs, and
    /// the reason.
    pub fn body(self) -> String {
        let message = match self {
            Refusal::Key => "Missing or unknown relay key",
            Refusal::Origin => "Origin not allowed",
            Refusal::Method => "Method not forwarded",
            Refusal::TooLarge => "Request body too large",
            Refusal::Rate => "Too many requests for this key",
            Refusal::Busy => "Too many requests under way",
            Refusal::Unreachable => "SALESmanago could not be reached",
            Refusal::Timeout => "SALESmanago did not answer in time",
            Refusal::File => "Unknown file address",
            Refusal::Redirect => "SALESmanago answered with a redirect, which the relay does not follow",
            Refusal::AnswerTooLarge => "SALESmanago's answer is larger than the relay takes",
            Refusal::FileHost => "SALESmanago's file is on a host the relay does not fetch from",
            Refusal::Body => "The request body could not be read (malformed, cut off or too slow)",
        };
        crate::object! {"success": false, "message": vec![Value::from(message)], "relayRefusal": self.code()}
            .to_string()
    }

    /// Whether another attempt may pass.
    pub fn transient(self) -> bool {
        matches!(self, Refusal::Rate | Refusal::Busy | Refusal::Unreachable | Refusal::Timeout | Refusal::Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::salesmanago::export::{ExportConsents, JobStatus};
    use crate::core::salesmanago::operation::*;
    use crate::core::salesmanago::Operation;

    fn check<O: Operation>(operation: &O) {
        let listed = find(operation.method()).unwrap_or_else(|| panic!("{} is not listed", operation.method()));
        assert_eq!(listed.needs_owner, operation.needs_owner(), "{}", listed.name);
    }

    #[test]
    fn every_operation_the_engine_has_is_listed_with_its_owner() {
        check(&Upsert(Default::default()));
        for op in BatchUpsert::batches(&[Default::default()]) {
            check(&op);
        }
        check(&Delete { email: "a@b.pl".into(), permanently: false });
        check(&HasContact { email: "a@b.pl".into() });
        for kind in [LookupKind::BasicByEmail, LookupKind::BasicById, LookupKind::ListById] {
            for op in Lookup::batches(kind, &["x".to_owned()]) {
                check(&op);
            }
        }
        check(&ModifiedContacts { from: 0, to: 1, page: None });
        check(&ModifiedContacts { from: 0, to: 1, page: Some(1) });
        check(&ListUsers);
        for channel in [Channel::Newsletter, Channel::Sms] {
            for subscribed in [true, false] {
                check(&SetSubscription { email: "a@b.pl".into(), channel, subscribed });
            }
        }
        check(&ExportConsents);
        check(&JobStatus { request_id: "1".into() });
    }

    #[test]
    fn refusals_travel_in_the_body() {
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::of_body(&refusal.body()), Some(refusal));
            assert!(refusal.status() >= 400);
        }
        assert_eq!(Refusal::of_body(r#"{"success":false,"message":["Not authenticated"]}"#), None);
        assert_eq!(Refusal::of_body("<html>"), None);
    }

    #[test]
    fn a_relay_file_path_names_only_a_path_under_the_relay() {
        assert!(is_file_path("files/1700000000/c2ln/aHR0cHM6Ly9m"));
        for not in ["files/", "/files/1/a/b", "files//x", "files/../x", "files/a?x=1", "files/a#b", "https://x/files/1"]
        {
            assert!(!is_file_path(not), "{not}");
        }
        let client = crate::core::salesmanago::Client::relayed("k1.x");
        assert_eq!(client.file_address("files/1/s/a"), "https://relay.example.com/sm/files/1/s/a");
        assert_eq!(client.file_address("https://files.example/1.json"), "https://files.example/1.json");
    }

    #[test]
    fn through_the_relay_a_blocked_call_is_the_relay_refusing_the_origin() {
        use crate::core::salesmanago::{SmError, TransportFailure};
        assert_eq!(through(SmError::Transport(TransportFailure::CrossOrigin)), SmError::Relay(Refusal::Origin));
        assert_eq!(through(SmError::Auth), SmError::Auth);
        assert_eq!(check_verdict(Err(TransportFailure::CrossOrigin)), Err(SmError::Relay(Refusal::Origin)));
    }

    #[test]
    fn the_deep_check_says_whether_the_relay_works_and_its_owner_is_a_user() {
        use crate::core::integration::ConnectionVerdict;
        use crate::core::salesmanago::{HttpResponse, SmError};
        let answer =
            |status: u16, body: &str| Ok(HttpResponse { date: None, status, retry_after: None, body: body.into() });
        let ok = r#"{"status":"ok","salesmanago":"ok","owner":"ok"}"#;
        assert_eq!(check_verdict(answer(200, ok)), Ok(ConnectionVerdict::Ok));
        let stranger = r#"{"status":"ok","salesmanago":"ok","owner":"notAUser"}"#;
        assert_eq!(check_verdict(answer(200, stranger)), Ok(ConnectionVerdict::OwnerNotAUser));
        let refused = r#"{"status":"failed","salesmanago":"credentialsRefused"}"#;
        assert_eq!(check_verdict(answer(502, refused)), Err(SmError::RelayCredentials));
        assert_eq!(check_verdict(answer(401, &Refusal::Key.body())), Err(SmError::Relay(Refusal::Key)));
        assert_eq!(check_verdict(answer(404, "{}")), Err(SmError::UnknownMethod), "not a relay");
        assert!(check_verdict(answer(200, "<html>")).is_err());
    }
}
