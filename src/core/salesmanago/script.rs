//! SALESmanago calls described as JSON, for scripts and tests that drive the engine from
//! JavaScript (`salesmanagoCall`): the same [`super::operation`]s the commands use, named by
//! their API method and with the API's own field names.

use serde::de::{Deserializer, Error, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::{ApiSecret, Credentials};
use super::contact::UpsertDetails;
use super::endpoint::{Endpoint, EndpointError};
use super::operation::{Channel, LookupKind};
use super::Client;
use crate::core::retry::RetryPolicy;

/// One call, as `{"method": "contact/upsert", …fields of that method}`.
///
/// The derive (`remote = "Self"`: an inherent `ScriptCall::deserialize`) reads serde's
/// externally tagged form, `{"contact/upsert": {…fields}}`; the [`Deserialize`] impl below
/// moves `method` there first. serde's own `tag = "method"` would buffer every field in its
/// generic `Content` tree, which tripled the wasm code this enum compiles to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum ScriptCall {
    /// `contact/upsert` with the fields of [`UpsertDetails`].
    #[serde(rename = "contact/upsert")]
    Upsert(Box<UpsertDetails>),
    /// `contact/batchupsert`; more than one call's worth is split.
    #[serde(rename = "contact/batchupsert")]
    BatchUpsert {
        /// The contacts.
        upsert_details: Vec<UpsertDetails>,
    },
    /// `contact/delete`.
    #[serde(rename = "contact/delete")]
    Delete {
        /// The contact's e-mail.
        email: String,
        /// Delete for good.
        #[serde(default)]
        permanently: bool,
    },
    /// `contact/hasContact`.
    #[serde(rename = "contact/hasContact")]
    HasContact {
        /// The e-mail to look up.
        email: String,
    },
    /// `contact/basic`, `contact/basicById` or `contact/listById`; split into calls as needed.
    #[serde(rename = "contact/basic", alias = "contact/basicById", alias = "contact/listById")]
    Lookup {
        /// E-mails (`contact/basic`).
        #[serde(default)]
        email: Vec<String>,
        /// Ids (`contact/basicById`).
        #[serde(default)]
        id: Vec<String>,
        /// Ids (`contact/listById`).
        #[serde(default)]
        contact_id: Vec<String>,
    },
    /// `contact/modifiedContacts` (no `page`) or `contact/paginatedModifiedContacts`.
    #[serde(rename = "contact/paginatedModifiedContacts", alias = "contact/modifiedContacts")]
    Modified {
        /// Window start, Unix ms.
        from: u64,
        /// Window end, Unix ms.
        to: u64,
        /// 1-based page.
        #[serde(default)]
        page: Option<u32>,
    },
    /// `user/listByClient`.
    #[serde(rename = "user/listByClient")]
    ListUsers {},
    /// `contact/optin`, `optout`, `phoneoptin`, `phoneoptout` as `{channel, subscribed}`.
    #[serde(rename = "contact/subscription")]
    Subscription {
        /// The contact's e-mail.
        email: String,
        /// `newsletter` or `sms`.
        channel: Channel,
        /// Subscribe or unsubscribe.
        subscribed: bool,
    },
}

impl<'de> Deserialize<'de> for ScriptCall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScriptCall, D::Error> {
        let (method, fields) = deserializer.deserialize_map(MethodAndFields)?;
        let mut tagged = Map::new();
        tagged.insert(method, Value::Object(fields));
        let tagged = Value::Object(tagged);
        ScriptCall::deserialize(tagged).map_err(D::Error::custom)
    }
}

/// A JSON object split into its `method` and its other fields; refuses repeated keys, as
/// serde's derives do.
struct MethodAndFields;

impl<'de> Visitor<'de> for MethodAndFields {
    type Value = (String, Map<String, Value>);

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("internally tagged enum ScriptCall")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut method = None;
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "method" {
                if method.is_some() {
                    return Err(A::Error::duplicate_field("method"));
                }
                method = Some(map.next_value()?);
            } else if fields.contains_key(&key) {
                return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
            } else {
                let value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        Ok((method.ok_or_else(|| A::Error::missing_field("method"))?, fields))
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
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Attempts per call, the first included.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First backoff.
    #[serde(default)]
    pub base_delay_ms: Option<u64>,
}

/// The per-request timeout: 30 s, as the vendor's own client (reference §4).
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

impl ScriptConfig {
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
        Ok((Client { endpoint, credentials }, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<ScriptCall, serde_json::Error> {
        serde_json::from_value(value)
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
    }

    #[test]
    fn method_may_come_anywhere_and_keys_only_once() {
        let call: ScriptCall = serde_json::from_str(r#"{"email": "a@b.pl", "method": "contact/hasContact"}"#).unwrap();
        assert_eq!(call, ScriptCall::HasContact { email: "a@b.pl".into() });
        for twice in [
            r#"{"method": "contact/hasContact", "email": "a@b.pl", "email": "c@d.pl"}"#,
            r#"{"method": "contact/hasContact", "method": "contact/hasContact", "email": "a@b.pl"}"#,
        ] {
            assert!(serde_json::from_str::<ScriptCall>(twice).is_err(), "{twice}");
        }
    }

    #[test]
    fn config_builds_a_client_or_names_the_endpoint_problem() {
        let config: ScriptConfig = serde_json::from_value(json!({
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
