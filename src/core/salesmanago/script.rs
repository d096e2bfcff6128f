//! SALESmanago calls described as JSON, for scripts and tests that drive the engine from
//! JavaScript (`salesmanagoCall`): the same [`super::operation`]s the commands use, named by
//! their API method and with the API's own field names.

use crate::core::json::{self, Fields, Invalid, Value};
use crate::prelude::*;

use super::auth::{ApiSecret, Credentials};
use super::contact::UpsertDetails;
use super::endpoint::{Endpoint, EndpointError};
use super::operation::{Channel, LookupKind};
use super::Client;
use crate::core::retry::RetryPolicy;

/// One call, as `{"method": "contact/upsert", …fields of that method}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCall {
    /// `contact/upsert` with the fields of [`UpsertDetails`].
    Upsert(Box<UpsertDetails>),
    /// `contact/batchupsert`; more than one call's worth is split.
    BatchUpsert {
        /// The contacts.
        upsert_details: Vec<UpsertDetails>,
    },
    /// `contact/delete`.
    Delete {
        /// The contact's e-mail.
        email: String,
        /// Delete for good.
        permanently: bool,
    },
    /// `contact/hasContact`.
    HasContact {
        /// The e-mail to look up.
        email: String,
    },
    /// `contact/basic`, `contact/basicById` or `contact/listById`; split into calls as needed.
    Lookup {
        /// E-mails (`contact/basic`).
        email: Vec<String>,
        /// Ids (`contact/basicById`).
        id: Vec<String>,
        /// Ids (`contact/listById`).
        contact_id: Vec<String>,
    },
    /// `contact/modifiedContacts` (no `page`) or `contact/paginatedModifiedContacts`.
    Modified {
        /// Window start, Unix ms.
        from: u64,
        /// Window end, Unix ms.
        to: u64,
        /// 1-based page.
        page: Option<u32>,
    },
    /// `user/listByClient`.
    ListUsers {},
    /// `contact/optin`, `optout`, `phoneoptin`, `phoneoptout` as `{channel, subscribed}`.
    Subscription {
        /// The contact's e-mail.
        email: String,
        /// `newsletter` or `sms`.
        channel: Channel,
        /// Subscribe or unsubscribe.
        subscribed: bool,
    },
}

/// The methods a script may name.
const METHODS: &[&str] = &[
    "contact/upsert",
    "contact/batchupsert",
    "contact/delete",
    "contact/hasContact",
    "contact/basic",
    "contact/basicById",
    "contact/listById",
    "contact/paginatedModifiedContacts",
    "contact/modifiedContacts",
    "user/listByClient",
    "contact/subscription",
];

impl ScriptCall {
    /// Reads a call's JSON text; a key given twice, an unknown method or a field the method
    /// does not take is refused.
    pub fn from_json_text(text: &str) -> Result<ScriptCall, Invalid> {
        let mut value = json::from_str_unique(text)?;
        let Value::Object(map) = &mut value else {
            return Err(Invalid("invalid type: expected an object with a `method`".into()));
        };
        let method = match map.remove("method") {
            Some(Value::String(method)) => method,
            Some(_) => return Err(Invalid("invalid type: expected a string for `method`".into())),
            None => return Err(Invalid("missing field `method`".into())),
        };
        let of = |known: &[&str]| Fields::only(&value, known);
        Ok(match method.as_str() {
            "contact/upsert" => ScriptCall::Upsert(Box::new(UpsertDetails::from_json(&value)?)),
            "contact/batchupsert" => {
                let fields = of(&["upsertDetails"])?;
                let items: Vec<Value> = fields.required("upsertDetails")?;
                let upsert_details = items.iter().map(UpsertDetails::from_json).collect::<Result<_, _>>()?;
                ScriptCall::BatchUpsert { upsert_details }
            }
            "contact/delete" => {
                let fields = of(&["email", "permanently"])?;
                ScriptCall::Delete { email: fields.required("email")?, permanently: fields.or_default("permanently")? }
            }
            "contact/hasContact" => ScriptCall::HasContact { email: of(&["email"])?.required("email")? },
            "contact/basic" | "contact/basicById" | "contact/listById" => {
                let fields = of(&["email", "id", "contactId"])?;
                ScriptCall::Lookup {
                    email: fields.or_default("email")?,
                    id: fields.or_default("id")?,
                    contact_id: fields.or_default("contactId")?,
                }
            }
            "contact/paginatedModifiedContacts" | "contact/modifiedContacts" => {
                let fields = of(&["from", "to", "page"])?;
                ScriptCall::Modified {
                    from: fields.required("from")?,
                    to: fields.required("to")?,
                    page: fields.optional("page")?,
                }
            }
            "user/listByClient" => {
                of(&[])?;
                ScriptCall::ListUsers {}
            }
            "contact/subscription" => {
                let fields = of(&["email", "channel", "subscribed"])?;
                ScriptCall::Subscription {
                    email: fields.required("email")?,
                    channel: fields.required("channel")?,
                    subscribed: fields.required("subscribed")?,
                }
            }
            other => {
                return Err(Invalid(format!("unknown method `{other}`, expected one of `{}`", METHODS.join("`, `"))))
            }
        })
    }
}

impl ScriptCall {
    /// The lookup kind and keys of a [`ScriptCall::Lookup`]: whichever key list was given.
    pub fn lookup(email: Vec<String>, id: Vec<String>, contact_id: Vec<String>) -> (LookupKind, Vec<String>) {
        if !contact_id.is_empty() {
            (LookupKind::ListById, contact_id)
        } else if !id.is_empty() {
            (LookupKind::BasicById, id)
        } else {
            (LookupKind::BasicByEmail, email)
        }
    }
}

/// Connection settings as a script passes them.
#[derive(Debug, Clone)]
pub struct ScriptConfig {
    /// As in `new_endpoint`.
    pub endpoint: String,
    /// As in `new_clientid`.
    pub client_id: String,
    /// As in `new_apisecret`.
    pub api_secret: String,
    /// As in `new_owner`.
    pub owner: String,
    /// Per-request timeout.
    pub timeout_ms: u32,
    /// Attempts per call, the first included.
    pub max_attempts: Option<u32>,
    /// First backoff.
    pub base_delay_ms: Option<u64>,
}

/// The per-request timeout: 30 s, as the vendor's own client (`docs/salesmanago-api.md` §4).
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

impl ScriptConfig {
    /// Reads `{endpoint, clientId, apiSecret, owner, timeoutMs?, maxAttempts?, baseDelayMs?}`.
    pub fn from_json(value: &Value) -> Result<ScriptConfig, Invalid> {
        let fields = Fields::of(value)?;
        Ok(ScriptConfig {
            endpoint: fields.required("endpoint")?,
            client_id: fields.required("clientId")?,
            api_secret: fields.required("apiSecret")?,
            owner: fields.required("owner")?,
            timeout_ms: fields.optional("timeoutMs")?.unwrap_or(DEFAULT_TIMEOUT_MS),
            max_attempts: fields.optional("maxAttempts")?,
            base_delay_ms: fields.optional("baseDelayMs")?,
        })
    }

    /// The client and retry policy these settings describe.
    ///
    /// Fails with the endpoint's problem when it is not usable.
    pub fn client(&self) -> Result<(Client, RetryPolicy), EndpointError> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        let credentials = Credentials {
            client_id: self.client_id.trim().to_owned(),
            api_secret: ApiSecret::new(self.api_secret.clone()),
            owner: self.owner.trim().to_owned(),
        };
        let defaults = RetryPolicy::default();
        let policy = RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts).max(1),
            base_ms: self.base_delay_ms.unwrap_or(defaults.base_ms),
            ..defaults
        };
        Ok((Client { endpoint, credentials, relay: None }, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn parse(value: Value) -> Result<ScriptCall, Invalid> {
        ScriptCall::from_json_text(&value.to_string())
    }

    #[test]
    fn calls_are_named_by_their_method() {
        let upsert =
            parse(json!({"method": "contact/upsert", "contact": {"email": "a@b.pl"}, "forceOptOut": true})).unwrap();
        let ScriptCall::Upsert(details) = upsert else { panic!("{upsert:?}") };
        assert!(details.force_opt_out);
        assert_eq!(
            parse(json!({"method": "contact/delete", "email": "a@b.pl"})).unwrap(),
            ScriptCall::Delete { email: "a@b.pl".into(), permanently: false }
        );
        let lookup = parse(json!({"method": "contact/listById", "contactId": ["u1"]})).unwrap();
        let ScriptCall::Lookup { email, id, contact_id } = lookup else { panic!() };
        assert_eq!(ScriptCall::lookup(email, id, contact_id), (LookupKind::ListById, vec!["u1".into()]));
        assert_eq!(parse(json!({"method": "user/listByClient"})).unwrap(), ScriptCall::ListUsers {});
        let sub =
            parse(json!({"method": "contact/subscription", "email": "a@b.pl", "channel": "sms", "subscribed": false}));
        assert_eq!(
            sub.unwrap(),
            ScriptCall::Subscription { email: "a@b.pl".into(), channel: Channel::Sms, subscribed: false }
        );
    }

    #[test]
    fn unknown_methods_and_fields_are_refused() {
        assert!(parse(json!({"method": "contact/frobnicate"})).is_err());
        assert!(parse(json!({"method": "contact/delete", "email": "a@b.pl", "emial": 1})).is_err());
        assert!(parse(json!({"email": "a@b.pl"})).is_err());
        let said = |value: Value| parse(value).unwrap_err().to_string();
        assert!(said(json!({"method": "contact/frobnicate"}))
            .starts_with("unknown method `contact/frobnicate`, expected one of `contact/upsert`, "));
        assert_eq!(
            said(json!({"method": "contact/delete", "email": "a@b.pl", "emial": 1})),
            "unknown field `emial`, expected one of `email`, `permanently`"
        );
        assert_eq!(said(json!({"method": "user/listByClient", "x": 1})), "unknown field `x`, there are none");
        assert_eq!(said(json!({"method": "contact/hasContact"})), "missing field `email`");
        assert_eq!(
            said(json!({"method": "contact/hasContact", "email": 5})),
            "invalid type: expected a string for `email`"
        );
        assert_eq!(said(json!({"email": "a@b.pl"})), "missing field `method`");
    }

    #[test]
    fn method_may_come_anywhere_and_keys_only_once() {
        let call = ScriptCall::from_json_text(r#"{"email": "a@b.pl", "method": "contact/hasContact"}"#).unwrap();
        assert_eq!(call, ScriptCall::HasContact { email: "a@b.pl".into() });
        for twice in [
            r#"{"method": "contact/hasContact", "email": "a@b.pl", "email": "c@d.pl"}"#,
            r#"{"method": "contact/hasContact", "method": "contact/hasContact", "email": "a@b.pl"}"#,
        ] {
            assert!(ScriptCall::from_json_text(twice).is_err(), "{twice}");
        }
    }

    #[test]
    fn config_builds_a_client_or_names_the_endpoint_problem() {
        let config = ScriptConfig::from_json(&json!({
            "endpoint": "http://127.0.0.1:9/", "clientId": " c ", "apiSecret": "s", "owner": "o@x.pl", "maxAttempts": 0}))
        .unwrap();
        let (client, policy) = config.client().unwrap();
        assert_eq!(client.endpoint.base(), "http://127.0.0.1:9");
        assert_eq!(client.credentials.client_id, "c");
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(config.timeout_ms, DEFAULT_TIMEOUT_MS);
        let bad = ScriptConfig { endpoint: "http://example.com".into(), ..config };
        assert_eq!(bad.client().err(), Some(EndpointError::InsecureScheme));
    }
}
