//! The one SALESmanago Integration record: finding it, reading the connection from it, and
//! judging a connection test.

use crate::core::json::{Map, Value};
use crate::prelude::*;

use crate::core::dataverse::schema::integration;
use crate::core::mapping::fields::{FieldMapping, MappingError};
use crate::core::retry::RetryPolicy;
use crate::core::salesmanago::relay::RelayKey;
use crate::core::salesmanago::{ApiSecret, Client, Credentials, Endpoint, EndpointError};
use crate::core::scope::{Scope, ScopeError};

/// The columns every command reads from the record.
pub const SELECT: &[&str] = &[
    integration::ID,
    integration::CLIENT_ID,
    integration::API_SECRET,
    integration::OWNER,
    integration::ENDPOINT,
    integration::RELAY_KEY,
    integration::OPT_OUT_ON_DELETE,
    integration::WEBHOOKS,
    integration::CONCURRENCY,
    integration::FIELD_MAPPING,
    integration::SYNC_SCOPE,
    integration::SCOPE_COLUMN,
    integration::SCOPE_LEAVING,
    integration::SCOPE_FETCHXML,
];

/// Why the record's settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// There is no integration record.
    NoRecord,
    /// There is more than one; commands would not know which to use.
    SeveralRecords,
    /// Client ID, API secret or owner is missing (and no relay key stands for them).
    Incomplete,
    /// The endpoint is not usable.
    Endpoint(EndpointError),
    /// The admin's field mapping cannot be read: nothing is sent by a wrong one.
    Mapping(MappingError),
    /// The sync scope cannot be read: nothing is sent by a scope misread.
    Scope(ScopeError),
}

/// What the record says about the connection and the jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The record's id.
    pub id: String,
    /// The SALESmanago account.
    pub client: Client,
    /// Deleting a contact only opts it out in SALESmanago.
    pub opt_out_on_delete: bool,
    /// Dataverse's webhook sends every change through the relay: sync on save stays silent.
    pub webhooks: bool,
    /// Most concurrent requests of bulk jobs (1 to 16; 4 when not set).
    pub concurrency: u32,
    /// The admin's field mapping, beside the built-in one.
    pub mapping: FieldMapping,
    /// Which contacts synchronise.
    pub scope: Scope,
}

/// The default of [`Settings::concurrency`]: well under Dataverse's 52 concurrent requests.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// What the record says the synchronisation does, besides the connection: read by this one
/// function, with one set of defaults, by the browser and by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// Deleting a contact only opts it out in SALESmanago (off when not set).
    pub opt_out_on_delete: bool,
    /// Changes reach SALESmanago through the relay's webhook (off when not set).
    pub webhooks: bool,
    /// Most concurrent requests of bulk jobs (1 to 16; [`DEFAULT_CONCURRENCY`] when not set).
    pub concurrency: u32,
    /// The admin's field mapping (none when not set).
    pub mapping: FieldMapping,
    /// Which contacts synchronise (all when not set).
    pub scope: Scope,
}

/// The record's [`Behaviour`]. Its Yes/No columns read as booleans, as the Web API gives them;
/// anything else counts as not set. Fails when the field mapping stored there cannot be read.
pub fn behaviour(row: &Map) -> Result<Behaviour, SettingsError> {
    let yes = |column: &str| row.get(column).and_then(Value::as_bool).unwrap_or(false);
    let concurrency = row
        .get(integration::CONCURRENCY)
        .and_then(Value::as_u64)
        .map_or(DEFAULT_CONCURRENCY, |n| n.clamp(1, 16) as u32);
    let mapping = FieldMapping::parse(row.get(integration::FIELD_MAPPING).and_then(Value::as_str).unwrap_or_default())
        .map_err(SettingsError::Mapping)?;
    let scope = Scope::from_record(row).map_err(SettingsError::Scope)?;
    Ok(Behaviour {
        opt_out_on_delete: yes(integration::OPT_OUT_ON_DELETE),
        webhooks: yes(integration::WEBHOOKS),
        concurrency,
        mapping,
        scope,
    })
}

impl Settings {
    /// The settings of the record `row` over `client`: the browser's from the record, the
    /// relay's own (it holds the credentials itself). Fails as [`behaviour`] does.
    pub fn with(row: &Map, client: Client) -> Result<Settings, SettingsError> {
        let Behaviour { opt_out_on_delete, webhooks, concurrency, mapping, scope } = behaviour(row)?;
        let id = text(row, integration::ID);
        Ok(Settings { id, client, opt_out_on_delete, webhooks, concurrency, mapping, scope })
    }

    /// The contact columns a synchronisation reads beside the standard ones: the consent
    /// columns, the admin's mapped columns and the scope's column, each once.
    pub fn read_columns(&self, consents: &[String]) -> Vec<String> {
        read_columns(consents, &self.mapping, &self.scope)
    }
}

/// [`Settings::read_columns`] of a `mapping` and a `scope`.
pub fn read_columns(consents: &[String], mapping: &FieldMapping, scope: &Scope) -> Vec<String> {
    let mut columns = consents.to_vec();
    for column in mapping.columns().chain(scope.columns()) {
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    columns
}

fn text(row: &Map, column: &str) -> String {
    row.get(column).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned()
}

/// Reads the settings from the rows a query for the record returned (ask for two, to notice a
/// second record).
///
/// Fails when there is not exactly one record or it cannot be used.
pub fn settings(rows: &[Map]) -> Result<Settings, SettingsError> {
    let row = match rows {
        [] => return Err(SettingsError::NoRecord),
        [row] => row,
        _ => return Err(SettingsError::SeveralRecords),
    };
    let credentials = Credentials {
        client_id: text(row, integration::CLIENT_ID),
        api_secret: ApiSecret::new(text(row, integration::API_SECRET)),
        owner: text(row, integration::OWNER).to_ascii_lowercase(),
    };
    // Through a relay, the relay holds the credentials and the owner.
    let relay = RelayKey::new(&text(row, integration::RELAY_KEY));
    let direct =
        !credentials.client_id.is_empty() && !credentials.api_secret.is_empty() && !credentials.owner.is_empty();
    if relay.is_none() && !direct {
        return Err(SettingsError::Incomplete);
    }
    let endpoint = Endpoint::parse(&text(row, integration::ENDPOINT)).map_err(SettingsError::Endpoint)?;
    Settings::with(row, Client { endpoint, credentials, relay })
}

/// The retry policy of interactive commands: the default.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
}

/// The outcome of a connection test whose call succeeded: the account's users came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionVerdict {
    /// The credentials work and the owner is one of the account's users.
    Ok,
    /// The credentials work but the owner is not a user of the account.
    OwnerNotAUser,
}

/// Judges the users `user/listByClient` returned against the configured owner.
pub fn verdict(owner: &str, users: &[String]) -> ConnectionVerdict {
    if users.iter().any(|user| user.eq_ignore_ascii_case(owner)) {
        ConnectionVerdict::Ok
    } else {
        ConnectionVerdict::OwnerNotAUser
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn row(value: Value) -> Map {
        value.as_object().unwrap().clone()
    }

    fn complete() -> Map {
        row(json!({
            "new_salesmanagointegrationid": "id-1",
            "new_clientid": " client ",
            "new_apisecret": "secret",
            "new_owner": "Owner@Example.com",
            "new_endpoint": "app3.salesmanago.pl",
            "new_optoutondelete": true,
            "new_concurrency": 99
        }))
    }

    #[test]
    fn one_complete_record_gives_the_settings() {
        let settings = settings(&[complete()]).unwrap();
        assert_eq!(settings.id, "id-1");
        assert_eq!(settings.client.credentials.client_id, "client");
        assert_eq!(settings.client.credentials.owner, "owner@example.com");
        assert_eq!(settings.client.endpoint.base(), "https://app3.salesmanago.pl");
        assert!(settings.opt_out_on_delete);
        assert_eq!(settings.concurrency, 16, "clamped");
    }

    #[test]
    fn no_record_or_several_are_refused() {
        assert_eq!(settings(&[]), Err(SettingsError::NoRecord));
        assert_eq!(settings(&[complete(), complete()]), Err(SettingsError::SeveralRecords));
    }

    #[test]
    fn missing_credentials_or_a_bad_endpoint_are_refused() {
        for column in ["new_clientid", "new_apisecret", "new_owner"] {
            let mut r = complete();
            r.insert(column.into(), json!("  "));
            assert_eq!(settings(&[r]), Err(SettingsError::Incomplete), "{column}");
        }
        let mut r = complete();
        r.remove("new_endpoint");
        assert_eq!(settings(&[r]), Err(SettingsError::Endpoint(EndpointError::Missing)));
    }

    #[test]
    fn defaults_apply_when_optional_columns_are_null() {
        let mut r = complete();
        r.insert("new_concurrency".into(), Value::Null);
        r.insert("new_optoutondelete".into(), Value::Null);
        let settings = settings(&[r]).unwrap();
        assert_eq!(settings.concurrency, DEFAULT_CONCURRENCY);
        assert!(!settings.opt_out_on_delete);
    }

    #[test]
    fn the_behaviour_has_one_set_of_defaults() {
        let off = Behaviour {
            opt_out_on_delete: false,
            webhooks: false,
            concurrency: DEFAULT_CONCURRENCY,
            mapping: FieldMapping::default(),
            scope: Scope::default(),
        };
        assert_eq!(behaviour(&Map::new()), Ok(off.clone()));
        // Only a Yes/No answer counts: an option set's number or text is not one.
        let odd = row(json!({"new_webhooks": 1, "new_optoutondelete": "true", "new_concurrency": "8"}));
        assert_eq!(behaviour(&odd), Ok(off));
        let on = row(json!({"new_webhooks": true, "new_optoutondelete": true, "new_concurrency": 0}));
        let on = behaviour(&on).unwrap();
        assert_eq!((on.opt_out_on_delete, on.webhooks, on.concurrency), (true, true, 1));
    }

    #[test]
    fn a_mapping_that_cannot_be_read_refuses_the_settings() {
        let mut r = complete();
        r.insert("new_fieldmapping".into(), json!("{\"version\": 1, \"entries\": [{\"column\": \"Bad Name\"}]}"));
        assert!(matches!(settings(&[r.clone()]), Err(SettingsError::Mapping(MappingError::Entry { number: 1, .. }))));
        r.insert("new_fieldmapping".into(), json!("  "));
        assert!(settings(&[r]).unwrap().mapping.is_empty(), "blank is none");
    }

    #[test]
    fn the_owner_must_be_a_user_of_the_account() {
        let users = vec!["owner@example.com".to_owned(), "second@example.com".to_owned()];
        assert_eq!(verdict("OWNER@example.com", &users), ConnectionVerdict::Ok);
        assert_eq!(verdict("third@example.com", &users), ConnectionVerdict::OwnerNotAUser);
        assert_eq!(verdict("owner@example.com", &[]), ConnectionVerdict::OwnerNotAUser);
    }
}
