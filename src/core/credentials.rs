//! The credential page: what the admin typed, checked field by field before anything is stored.
//!
//! The API secret is write-only. Once stored it is never read back into the page: leaving the
//! field empty keeps the stored one, typing a new one replaces it.

use crate::core::dataverse::schema::integration;
use crate::core::json::{Fields, Invalid, Value};
use crate::core::mapping::normalize::{email, EmailProblem};
use crate::core::salesmanago::{Endpoint, EndpointError};
use crate::prelude::*;

/// A field of the credential page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// SALESmanago client ID.
    ClientId,
    /// SALESmanago API secret.
    ApiSecret,
    /// E-mail of the SALESmanago user who owns the contacts.
    Owner,
    /// SALESmanago host or relay URL.
    Endpoint,
    /// The key of `salesmanago-relay`; with it, the relay holds the API secret.
    RelayKey,
}

impl Field {
    /// Every field, in page order.
    pub const ALL: [Field; 5] = [Field::ClientId, Field::ApiSecret, Field::Owner, Field::Endpoint, Field::RelayKey];

    /// The field's id on the credential page.
    pub const fn id(self) -> &'static str {
        match self {
            Field::ClientId => "clientId",
            Field::ApiSecret => "apiSecret",
            Field::Owner => "owner",
            Field::Endpoint => "endpoint",
            Field::RelayKey => "relayKey",
        }
    }

    /// The integration record's column that stores the field.
    pub const fn column(self) -> &'static str {
        match self {
            Field::ClientId => integration::CLIENT_ID,
            Field::ApiSecret => integration::API_SECRET,
            Field::Owner => integration::OWNER,
            Field::Endpoint => integration::ENDPOINT,
            Field::RelayKey => integration::RELAY_KEY,
        }
    }

    /// The column's maximum length in the solution.
    const fn max_len(self) -> usize {
        match self {
            Field::ClientId => 100,
            Field::ApiSecret | Field::Endpoint | Field::RelayKey => 500,
            Field::Owner => 320,
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    /// Left empty.
    Required,
    /// Longer than the column holds.
    TooLong {
        /// The most characters the column holds.
        max: usize,
    },
    /// Contains spaces or control characters, which client IDs and secrets never do.
    Whitespace,
    /// The owner is not an e-mail address.
    Email(EmailProblem),
    /// The endpoint is not usable.
    Endpoint(EndpointError),
    /// An API secret typed together with a relay key: the relay holds the secret.
    SecretWithRelay,
    /// A relay key that is not `<id>.<secret>`.
    RelayKeyShape,
}

/// The page's four fields as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialsForm {
    /// Client ID.
    pub client_id: String,
    /// API secret; empty keeps the stored one.
    pub api_secret: String,
    /// Owner e-mail.
    pub owner: String,
    /// Endpoint.
    pub endpoint: String,
    /// Relay key; empty keeps the stored one, unless a secret is typed.
    pub relay_key: String,
}

impl CredentialsForm {
    /// Reads `{clientId, apiSecret, owner, endpoint}`; a missing field is empty.
    pub fn from_json(value: &Value) -> Result<CredentialsForm, Invalid> {
        let fields = Fields::of(value)?;
        Ok(CredentialsForm {
            client_id: fields.or_default("clientId")?,
            api_secret: fields.or_default("apiSecret")?,
            owner: fields.or_default("owner")?,
            endpoint: fields.or_default("endpoint")?,
            relay_key: fields.or_default("relayKey")?,
        })
    }
}

/// The column values to store, in field order. The secret is absent when the stored one stays.
#[derive(Clone, PartialEq, Eq)]
pub struct ToStore(pub Vec<(Field, String)>);

impl ::core::fmt::Debug for ToStore {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        let fields: Vec<_> = self
            .0
            .iter()
            .map(|(field, value)| {
                let secret = matches!(field, Field::ApiSecret | Field::RelayKey) && !value.is_empty();
                (field, if secret { "<redacted>" } else { value })
            })
            .collect();
        f.debug_tuple("ToStore").field(&fields).finish()
    }
}

fn token(value: &str, field: Field) -> Result<String, FieldProblem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldProblem::Required);
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldProblem::Whitespace);
    }
    if value.chars().count() > field.max_len() {
        return Err(FieldProblem::TooLong { max: field.max_len() });
    }
    Ok(value.to_owned())
}

/// What the record holds already: a secret, a relay key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// An API secret.
    pub secret: bool,
    /// A relay key.
    pub relay_key: bool,
}

/// Checks the form against what the record holds.
///
/// Two modes: direct (client ID, API secret and owner required; a stored relay key is
/// cleared), or through a relay (a relay key typed, or stored and no secret typed: the relay
/// holds the credentials, so a stored secret is cleared and the rest is optional).
///
/// Fails with every problem found, one per field, in page order.
pub fn check(form: &CredentialsForm, stored: Stored) -> Result<ToStore, Vec<(Field, FieldProblem)>> {
    let mut store = Vec::new();
    let mut problems = Vec::new();
    let mut take = |field: Field, result: Result<Option<String>, FieldProblem>| match result {
        Ok(Some(value)) => store.push((field, value)),
        Ok(None) => {}
        Err(problem) => problems.push((field, problem)),
    };
    let (secret_typed, key_typed) = (!form.api_secret.trim().is_empty(), !form.relay_key.trim().is_empty());
    let relayed = key_typed || (stored.relay_key && !secret_typed);
    // Optional through a relay: checked when given, cleared when not.
    let optional = |value: &str, check: &dyn Fn() -> Result<Option<String>, FieldProblem>| {
        if relayed && value.trim().is_empty() {
            Ok(Some(String::new()))
        } else {
            check()
        }
    };
    take(Field::ClientId, optional(&form.client_id, &|| token(&form.client_id, Field::ClientId).map(Some)));
    let secret = match (relayed, secret_typed) {
        (true, true) => Err(FieldProblem::SecretWithRelay),
        (true, false) => Ok(stored.secret.then(String::new)),
        (false, false) if stored.secret => Ok(None),
        (false, _) => token(&form.api_secret, Field::ApiSecret).map(Some),
    };
    take(Field::ApiSecret, secret);
    let owner = optional(&form.owner, &|| {
        if form.owner.trim().is_empty() {
            Err(FieldProblem::Required)
        } else {
            email(&form.owner).map(Some).map_err(FieldProblem::Email)
        }
    });
    take(Field::Owner, owner);
    let endpoint = if form.endpoint.trim().chars().count() > Field::Endpoint.max_len() {
        Err(FieldProblem::TooLong { max: Field::Endpoint.max_len() })
    } else {
        Endpoint::parse(&form.endpoint).map(|e| Some(e.base().to_owned())).map_err(FieldProblem::Endpoint)
    };
    take(Field::Endpoint, endpoint);
    let key = match (key_typed, relayed) {
        (true, _) => token(&form.relay_key, Field::RelayKey).and_then(|key| match key.split_once('.') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(Some(key)),
            _ => Err(FieldProblem::RelayKeyShape),
        }),
        (false, true) => Ok(None),
        (false, false) => Ok(stored.relay_key.then(String::new)),
    };
    take(Field::RelayKey, key);
    if problems.is_empty() {
        Ok(ToStore(store))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(client_id: &str, api_secret: &str, owner: &str, endpoint: &str) -> CredentialsForm {
        CredentialsForm {
            client_id: client_id.into(),
            api_secret: api_secret.into(),
            owner: owner.into(),
            endpoint: endpoint.into(),
            relay_key: String::new(),
        }
    }

    const NOTHING: Stored = Stored { secret: false, relay_key: false };
    const SECRET: Stored = Stored { secret: true, relay_key: false };

    #[test]
    fn a_complete_form_is_stored_normalised() {
        let stored = check(&form(" abc123 ", "s3cret", " Owner@Example.COM ", "app3.salesmanago.pl"), NOTHING).unwrap();
        assert_eq!(
            stored.0,
            vec![
                (Field::ClientId, "abc123".into()),
                (Field::ApiSecret, "s3cret".into()),
                (Field::Owner, "owner@example.com".into()),
                (Field::Endpoint, "https://app3.salesmanago.pl".into()),
            ]
        );
    }

    #[test]
    fn an_empty_secret_keeps_the_stored_one_and_is_required_otherwise() {
        let kept = check(&form("abc", "  ", "a@b.pl", "app3.salesmanago.pl"), SECRET).unwrap();
        assert!(kept.0.iter().all(|(field, _)| *field != Field::ApiSecret));
        let missing = check(&form("abc", "", "a@b.pl", "app3.salesmanago.pl"), NOTHING).unwrap_err();
        assert_eq!(missing, vec![(Field::ApiSecret, FieldProblem::Required)]);
        let replaced = check(&form("abc", "new", "a@b.pl", "app3.salesmanago.pl"), SECRET).unwrap();
        assert!(replaced.0.contains(&(Field::ApiSecret, "new".into())));
    }

    #[test]
    fn every_bad_field_is_reported_at_once_in_page_order() {
        let problems = check(&form("", "a b", "not-an-email", "ftp://x"), NOTHING).unwrap_err();
        assert_eq!(
            problems,
            vec![
                (Field::ClientId, FieldProblem::Required),
                (Field::ApiSecret, FieldProblem::Whitespace),
                (Field::Owner, FieldProblem::Email(EmailProblem::Malformed)),
                (Field::Endpoint, FieldProblem::Endpoint(EndpointError::InsecureScheme)),
            ]
        );
    }

    #[test]
    fn lengths_are_those_of_the_columns() {
        let long = "x".repeat(101);
        let problems = check(&form(&long, "s", "a@b.pl", "app3.salesmanago.pl"), NOTHING).unwrap_err();
        assert_eq!(problems, vec![(Field::ClientId, FieldProblem::TooLong { max: 100 })]);
        let endpoint = format!("https://relay.example.com/{}", "p".repeat(500));
        let problems = check(&form("c", "s", "a@b.pl", &endpoint), NOTHING).unwrap_err();
        assert_eq!(problems, vec![(Field::Endpoint, FieldProblem::TooLong { max: 500 })]);
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let stored = check(&form("abc", "TopSecret!", "a@b.pl", "app3.salesmanago.pl"), NOTHING).unwrap();
        assert!(!format!("{stored:?}").contains("TopSecret!"));
    }

    #[test]
    fn fields_name_the_plugins_columns() {
        let columns: Vec<_> = Field::ALL.iter().map(|f| f.column()).collect();
        assert_eq!(columns, ["new_clientid", "new_apisecret", "new_owner", "new_endpoint", "new_relaykey"]);
    }

    fn relayed(key: &str, secret: &str) -> CredentialsForm {
        CredentialsForm { relay_key: key.into(), ..form("", secret, "", "https://relay.example.com") }
    }

    #[test]
    fn a_relay_key_stands_for_the_credentials_and_clears_the_stored_secret() {
        let stored = check(&relayed(" k1.abc ", ""), SECRET).unwrap();
        assert_eq!(
            stored.0,
            vec![
                (Field::ClientId, String::new()),
                (Field::ApiSecret, String::new()),
                (Field::Owner, String::new()),
                (Field::Endpoint, "https://relay.example.com".into()),
                (Field::RelayKey, "k1.abc".into()),
            ]
        );
        assert!(!format!("{stored:?}").contains("abc"), "the key is redacted");
        // Kept when not typed again; a secret typed with it is refused; a bad key is named.
        let kept = check(&relayed("", ""), Stored { secret: false, relay_key: true }).unwrap();
        assert!(kept.0.iter().all(|(field, _)| *field != Field::RelayKey && *field != Field::ApiSecret));
        assert_eq!(
            check(&relayed("k1.abc", "s"), NOTHING).unwrap_err(),
            [(Field::ApiSecret, FieldProblem::SecretWithRelay)]
        );
        assert_eq!(check(&relayed("k1", ""), NOTHING).unwrap_err(), [(Field::RelayKey, FieldProblem::RelayKeyShape)]);
        // An owner given through a relay is still checked.
        let owner = CredentialsForm { owner: "nope".into(), ..relayed("k1.abc", "") };
        assert_eq!(check(&owner, NOTHING).unwrap_err(), [(Field::Owner, FieldProblem::Email(EmailProblem::Malformed))]);
        // Typing a secret over a stored relay key goes back to calling SALESmanago directly.
        let direct =
            check(&form("c", "s", "a@b.pl", "app3.salesmanago.pl"), Stored { secret: false, relay_key: true }).unwrap();
        assert!(
            direct.0.contains(&(Field::RelayKey, String::new())) && direct.0.contains(&(Field::ApiSecret, "s".into()))
        );
    }
}
