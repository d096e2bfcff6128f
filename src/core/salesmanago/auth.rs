//! Request signing: the auth fields every API v2 body carries (`docs/salesmanago-api.md` §2).
//!
//! `sha = sha1(apiKey + clientId + apiSecret)`, lower-case hex. The API secret itself is never
//! sent; the `apiKey` is any random string, which the host draws per request and passes in, as
//! it passes the request time: the core has no clock and no randomness.

use crate::prelude::*;
use ::core::fmt;

use crate::core::json::Map;

/// The SALESmanago API secret. It has no `Display` and a redacted `Debug`, so it cannot end up
/// in a message, a log line or a URL; the only way to read it is [`Credentials::sign`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSecret(String);

impl ApiSecret {
    /// Wraps a secret as entered on the credential page.
    pub fn new(secret: impl Into<String>) -> ApiSecret {
        ApiSecret(secret.into())
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiSecret(<redacted>)")
    }
}

/// What the integration record holds to call SALESmanago on behalf of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account's client id (Integration Center → API).
    pub client_id: String,
    /// The account's API secret.
    pub api_secret: ApiSecret,
    /// E-mail of the SALESmanago user who owns the contacts we write.
    pub owner: String,
}

/// The per-request values the host supplies: a fresh random `apiKey` and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    /// Any random string, new for each request.
    pub api_key: String,
    /// Unix time of the request in milliseconds.
    pub request_time_ms: u64,
}

impl Credentials {
    /// `sha1(apiKey + clientId + apiSecret)` in lower-case hex.
    pub fn sign(&self, api_key: &str) -> String {
        let mut sha = sha1_smol::Sha1::new();
        sha.update(api_key.as_bytes());
        sha.update(self.client_id.as_bytes());
        sha.update(self.api_secret.0.as_bytes());
        sha.digest().to_string()
    }

    /// The auth fields (`clientId`, `apiKey`, `requestTime`, `sha`, and `owner` when
    /// `with_owner`), to merge flat into a request body.
    pub fn auth_fields(&self, nonce: &Nonce, with_owner: bool) -> Map {
        let mut fields = Map::new();
        fields.insert("clientId".into(), self.client_id.clone().into());
        fields.insert("apiKey".into(), nonce.api_key.clone().into());
        fields.insert("requestTime".into(), nonce.request_time_ms.into());
        fields.insert("sha".into(), self.sign(&nonce.api_key).into());
        if with_owner {
            fields.insert("owner".into(), self.owner.clone().into());
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(client_id: &str, secret: &str) -> Credentials {
        Credentials { client_id: client_id.into(), api_secret: ApiSecret::new(secret), owner: "o@example.com".into() }
    }

    #[test]
    fn sha_matches_the_reference_test_vector() {
        // docs/salesmanago-api.md §2
        let sha = credentials("abc123clientid", "my-api-secret").sign("my-random-api-key");
        assert_eq!(sha, "8c7b410b4b1c27f8bb78830431be9e59ed041b98");
    }

    #[test]
    fn sha_is_plain_concatenation_in_that_order() {
        let a = credentials("client", "secret").sign("key");
        assert_eq!(a, credentials("", "").sign("keyclientsecret"));
        assert_ne!(a, credentials("secret", "client").sign("key"));
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn auth_fields_carry_no_secret() {
        let creds = credentials("cid", "top-secret-value");
        let nonce = Nonce { api_key: "k1".into(), request_time_ms: 1_700_000_000_123 };
        let fields = creds.auth_fields(&nonce, true);
        assert_eq!(fields["clientId"], "cid");
        assert_eq!(fields["apiKey"], "k1");
        assert_eq!(fields["requestTime"], 1_700_000_000_123_u64);
        assert_eq!(fields["owner"], "o@example.com");
        assert_eq!(fields["sha"], creds.sign("k1"));
        assert!(!crate::core::json::Value::Object(fields).to_string().contains("top-secret-value"));
        assert!(!creds.auth_fields(&nonce, false).contains_key("owner"));
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let text = format!("{:?}", credentials("cid", "top-secret-value"));
        assert!(!text.contains("top-secret-value") && text.contains("redacted"), "{text}");
    }
}
