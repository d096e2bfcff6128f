//! Every Dataverse schema name the product uses, in one place.
//!
//! The names of the original SALESmanago plugin (`new_salesmanagointegration`, `new_apisecret`,
//! `new_clientid`, `new_owner`, `new_endpoint`, `new_consent_<name>`) are kept so that an
//! existing installation upgrades in place. `tests/solution.rs` checks that the solution's
//! `customizations.xml` defines exactly the custom columns listed here.

use crate::prelude::*;

/// The "SALESmanago Integration" table: one record holds the credentials and the job state.
pub mod integration {
    /// Logical name of the table.
    pub const TABLE: &str = "new_salesmanagointegration";
    /// Web API entity set name.
    pub const ENTITY_SET: &str = "new_salesmanagointegrations";
    /// Primary key column.
    pub const ID: &str = "new_salesmanagointegrationid";
    /// Primary name column.
    pub const NAME: &str = "new_name";
    /// SALESmanago API secret (hidden on the form; written only by the credential page).
    pub const API_SECRET: &str = "new_apisecret";
    /// SALESmanago client id.
    pub const CLIENT_ID: &str = "new_clientid";
    /// E-mail of the SALESmanago user who owns the contacts.
    pub const OWNER: &str = "new_owner";
    /// SALESmanago host (`app3.salesmanago.pl`) or an `https://` relay URL.
    pub const ENDPOINT: &str = "new_endpoint";
    /// The key of `salesmanago-relay` (`<id>.<secret>`); when set, calls go through the relay at
    /// the endpoint and the record holds no API secret. Protected by field security.
    pub const RELAY_KEY: &str = "new_relaykey";
    /// When set, deleting a contact only opts it out in SALESmanago instead of deleting it.
    pub const OPT_OUT_ON_DELETE: &str = "new_optoutondelete";
    /// When set, Dataverse's webhook sends every change to the relay, so sync on save in the
    /// browser stays silent (no change is sent twice).
    pub const WEBHOOKS: &str = "new_webhooks";
    /// Upper bound on concurrent requests of bulk jobs.
    pub const CONCURRENCY: &str = "new_concurrency";
    /// Pull changes: SALESmanago modification time (Unix ms, decimal text) already pulled.
    pub const CHANGES_WATERMARK: &str = "new_changeswatermark";
    /// The relay's catch-up: the modification time (Unix ms, decimal text) of the newest
    /// Dynamics change it sent.
    pub const CATCH_UP_WATERMARK: &str = "new_catchupwatermark";
    /// The catch-up's (the relay's, or Export changes') place in Dataverse change tracking: the
    /// delta link to read next, under the Web API root (`?$select=…&$deltatoken=…`).
    pub const CATCH_UP_DELTA: &str = "new_catchupdelta";
    /// Pull activity: the kinds of SALESmanago activity kept, by name, comma-separated (empty:
    /// the defaults; [`crate::core::activity::Kinds`]).
    pub const ACTIVITY_KINDS: &str = "new_activitykinds";
    /// Pull activity: how many days of activity are kept (1 to 3650; 90 when not set).
    pub const ACTIVITY_DAYS: &str = "new_activitydays";
    /// Pull activity: the time (Unix ms, decimal text, SALESmanago's) of the newest activity
    /// pulled; the next pull takes what happened from a day before it on.
    pub const ACTIVITY_WATERMARK: &str = "new_activitywatermark";
    /// The admin's field mapping, as JSON ([`crate::core::mapping::fields`]); empty: none.
    pub const FIELD_MAPPING: &str = "new_fieldmapping";
    /// Which contacts synchronise: a choice ([`crate::core::scope::option`]); empty: all.
    pub const SYNC_SCOPE: &str = "new_syncscope";
    /// The scope "Marked": the contact's Yes/No column (logical name) that marks them.
    pub const SCOPE_COLUMN: &str = "new_scopecolumn";
    /// What leaving the scope does in SALESmanago: a choice ([`crate::core::scope::option`]).
    pub const SCOPE_LEAVING: &str = "new_scopeleaving";
    /// The scope "In a view": the view's name, as the mapping editor saved it.
    pub const SCOPE_VIEW: &str = "new_scopeview";
    /// The scope "In a view": the view's FetchXML, as the mapping editor read it when it saved.
    pub const SCOPE_FETCHXML: &str = "new_scopefetchxml";
}

/// The "SALESmanago activity" table: a custom activity, shown on the contact's timeline, one row
/// per SALESmanago event (an e-mail sent, opened, clicked, bounced, an unsubscribe, a visit, an
/// external event).
pub mod activity {
    /// Logical name of the table.
    pub const TABLE: &str = "new_salesmanagoactivity";
    /// Web API entity set name.
    pub const ENTITY_SET: &str = "new_salesmanagoactivities";
    /// Primary key (every activity's): derived from the contact and the event, so a row is
    /// created once whoever pulls it and however often.
    pub const ID: &str = "activityid";
    /// Primary name: what the event was about (an e-mail's subject, the page, the event).
    pub const SUBJECT: &str = "subject";
    /// The event's details.
    pub const DESCRIPTION: &str = "description";
    /// When it happened.
    pub const ACTUAL_END: &str = "actualend";
    /// The contact it happened to, as the Web API binds it (`/contacts(<id>)`).
    pub const REGARDING_CONTACT: &str = "regardingobjectid_contact_new_salesmanagoactivity@odata.bind";
    /// The regarding column as read back.
    pub const REGARDING: &str = "_regardingobjectid_value";
    /// The kind of event, a [`crate::core::activity::Kind`] (added by the solution).
    pub const KIND: &str = "new_kind";
    /// SALESmanago's id of the event (added by the solution).
    pub const EVENT_ID: &str = "new_eventid";
}

/// A bulk job run from the integration form, with its state columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Export all contacts to SALESmanago.
    Export,
    /// Pull opt-outs and consents from SALESmanago.
    Consents,
    /// Pull contacts changed in SALESmanago since the watermark.
    Changes,
    /// Pull SALESmanago activity onto the contacts' timelines.
    Activity,
}

impl Job {
    /// Every job, in the order the integration form shows them.
    pub const ALL: [Job; 4] = [Job::Export, Job::Consents, Job::Changes, Job::Activity];

    /// Column holding the resumable checkpoint (JSON) of an interrupted run.
    pub const fn checkpoint_column(self) -> &'static str {
        match self {
            Job::Export => "new_exportcheckpoint",
            Job::Consents => "new_consentscheckpoint",
            Job::Changes => "new_changescheckpoint",
            Job::Activity => "new_activitycheckpoint",
        }
    }

    /// Column holding the time the job last finished.
    pub const fn last_run_column(self) -> &'static str {
        match self {
            Job::Export => "new_exportlastrun",
            Job::Consents => "new_consentslastrun",
            Job::Changes => "new_changeslastrun",
            Job::Activity => "new_activitylastrun",
        }
    }

    /// Column holding the lease of the run under way (JSON: who, since when, last heartbeat,
    /// progress), so that one run of the job goes at a time.
    pub const fn lease_column(self) -> &'static str {
        match self {
            Job::Export => "new_exportlease",
            Job::Consents => "new_consentslease",
            Job::Changes => "new_changeslease",
            Job::Activity => "new_activitylease",
        }
    }

    /// Column holding the summary of the last run.
    pub const fn last_result_column(self) -> &'static str {
        match self {
            Job::Export => "new_exportlastresult",
            Job::Consents => "new_consentslastresult",
            Job::Changes => "new_changeslastresult",
            Job::Activity => "new_activitylastresult",
        }
    }
}

/// The system `contact` table: standard columns the mapping reads and the columns we add.
pub mod contact {
    /// Logical name of the table.
    pub const TABLE: &str = "contact";
    /// Web API entity set name.
    pub const ENTITY_SET: &str = "contacts";
    /// Primary key column; sent to SALESmanago as `externalId`.
    pub const ID: &str = "contactid";
    /// Full name (Dataverse composes it from first and last name).
    pub const FULL_NAME: &str = "fullname";
    /// First name.
    pub const FIRST_NAME: &str = "firstname";
    /// Last name.
    pub const LAST_NAME: &str = "lastname";
    /// The e-mail that identifies the contact in SALESmanago.
    pub const EMAIL: &str = "emailaddress1";
    /// Mobile phone: the phone sent to SALESmanago when set.
    pub const MOBILE_PHONE: &str = "mobilephone";
    /// Business phone: sent when there is no mobile phone.
    pub const BUSINESS_PHONE: &str = "telephone1";
    /// Fax.
    pub const FAX: &str = "fax";
    /// Street, first line.
    pub const STREET_1: &str = "address1_line1";
    /// Street, second line.
    pub const STREET_2: &str = "address1_line2";
    /// Street, third line.
    pub const STREET_3: &str = "address1_line3";
    /// City.
    pub const CITY: &str = "address1_city";
    /// Postal code.
    pub const POSTAL_CODE: &str = "address1_postalcode";
    /// Country.
    pub const COUNTRY: &str = "address1_country";
    /// Birthday (a date-only column).
    pub const BIRTH_DATE: &str = "birthdate";
    /// When the row last changed (set by Dataverse).
    pub const MODIFIED_ON: &str = "modifiedon";
    /// The row's version (`versionnumber`): every write raises it.
    pub const VERSION: &str = "versionnumber";
    /// SALESmanago contact id (added by the solution).
    pub const SALESMANAGO_ID: &str = "new_salesmanagoid";
    /// The address SALESmanago knows this contact by: the e-mail last sent, as sent (added by
    /// the solution). When `emailaddress1` moves away from it, the next upsert renames the
    /// SALESmanago contact ([`crate::core::mapping::outbound::rename_from`]).
    pub const SALESMANAGO_EMAIL: &str = "new_salesmanagoemail";
    /// When the contact was last synchronised (added by the solution).
    pub const SYNCED_ON: &str = "new_salesmanagosyncedon";
    /// Outcome of the last synchronisation, a [`super::SyncStatus`] (added by the solution).
    pub const SYNC_STATUS: &str = "new_salesmanagosyncstatus";
    /// Reason of the last failure (added by the solution).
    pub const LAST_ERROR: &str = "new_salesmanagolasterror";
    /// The opt-outs and consents both sides agreed on at the last synchronisation, as JSON
    /// ([`crate::core::consent::Base`]; added by the solution, not on any form).
    pub const CONSENT_BASE: &str = "new_salesmanagoconsentbase";
    /// What the admin's field mapping was when the contact last went to SALESmanago
    /// ([`crate::core::mapping::fields::FieldMapping::fingerprint`]; empty for the built-in
    /// mapping alone; added by the solution, not on any form): "Export all" counts the contacts
    /// it sends again because the mapping changed since.
    pub const MAPPED_WITH: &str = "new_salesmanagomapping";
    /// "Do not allow SMS" (added by the solution).
    pub const DO_NOT_SMS: &str = "new_donotsms";
    /// Standard "Do not allow bulk e-mails": the newsletter opt-out.
    pub const DO_NOT_BULK_EMAIL: &str = "donotbulkemail";
    /// Prefix of the boolean consent columns that admins add; the rest of the name is the
    /// SALESmanago consent name.
    pub const CONSENT_PREFIX: &str = "new_consent_";
}

/// Every custom column the solution ships, per table. Consent columns are not shipped: admins
/// add them and the engine discovers them at run time.
pub const CUSTOM_COLUMNS: &[(&str, &[&str])] = &[
    (
        integration::TABLE,
        &[
            integration::NAME,
            integration::API_SECRET,
            integration::CLIENT_ID,
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
            integration::SCOPE_VIEW,
            integration::SCOPE_FETCHXML,
            integration::CHANGES_WATERMARK,
            integration::CATCH_UP_WATERMARK,
            integration::CATCH_UP_DELTA,
            Job::Export.checkpoint_column(),
            Job::Export.last_run_column(),
            Job::Export.last_result_column(),
            Job::Export.lease_column(),
            Job::Consents.checkpoint_column(),
            Job::Consents.last_run_column(),
            Job::Consents.last_result_column(),
            Job::Consents.lease_column(),
            Job::Changes.checkpoint_column(),
            Job::Changes.last_run_column(),
            Job::Changes.last_result_column(),
            Job::Changes.lease_column(),
            integration::ACTIVITY_KINDS,
            integration::ACTIVITY_DAYS,
            integration::ACTIVITY_WATERMARK,
            Job::Activity.checkpoint_column(),
            Job::Activity.last_run_column(),
            Job::Activity.last_result_column(),
            Job::Activity.lease_column(),
        ],
    ),
    (
        contact::TABLE,
        &[
            contact::SALESMANAGO_ID,
            contact::SALESMANAGO_EMAIL,
            contact::SYNCED_ON,
            contact::SYNC_STATUS,
            contact::LAST_ERROR,
            contact::DO_NOT_SMS,
            contact::CONSENT_BASE,
            contact::MAPPED_WITH,
        ],
    ),
    (activity::TABLE, &[activity::KIND, activity::EVENT_ID]),
];

/// Values of the contact's `new_salesmanagosyncstatus` choice column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// SALESmanago holds the contact as Dynamics does.
    Synced = 100_000_000,
    /// The last attempt failed; the reason is in `new_salesmanagolasterror`.
    Failed = 100_000_001,
    /// Not sent because it is invalid for SALESmanago (for example, no e-mail).
    Skipped = 100_000_002,
    /// A change is waiting to be sent.
    Pending = 100_000_003,
    /// Outside the sync scope the record sets: not sent ([`crate::core::scope`]).
    OutOfScope = 100_000_004,
}

impl SyncStatus {
    /// Every status, in option-value order.
    pub const ALL: [SyncStatus; 5] =
        [SyncStatus::Synced, SyncStatus::Failed, SyncStatus::Skipped, SyncStatus::Pending, SyncStatus::OutOfScope];

    /// The option value stored in Dataverse.
    pub const fn value(self) -> i32 {
        self as i32
    }
}

/// The contact table's attributes as the Web API lists them, under its root: what
/// [`consent_columns`] reads.
pub const CONTACT_ATTRIBUTES: &str =
    "EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName,AttributeType";

/// The consent columns (Yes/No columns named `new_consent_<name>`) in the answer to
/// [`CONTACT_ATTRIBUTES`], sorted.
pub fn consent_columns(attributes: &crate::core::json::Value) -> Vec<String> {
    let mut columns: Vec<String> = attributes["value"]
        .items()
        .iter()
        .filter(|a| a["AttributeType"] == "Boolean")
        .filter_map(|a| a["LogicalName"].as_str())
        .filter(|name| consent_name(name).is_some())
        .map(str::to_owned)
        .collect();
    crate::core::sorted::sort(&mut columns);
    columns
}

/// Whether `name` has a column's logical name's shape: a lower-case ASCII letter, then letters,
/// digits and `_`, at most 100 in all.
pub fn is_logical_name(name: &str) -> bool {
    name.len() <= 100
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The SALESmanago consent name behind a consent column, if `column` is one: the part after
/// `new_consent_`, in upper case as SALESmanago names consents (`new_consent_marketing` →
/// `MARKETING`). Column names are compared case-insensitively, as Dataverse logical names are
/// lower case but schema names are not.
pub fn consent_name(column: &str) -> Option<String> {
    let prefix = contact::CONSENT_PREFIX;
    let head = column.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let name = &column[prefix.len()..];
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_columns_name_their_consent() {
        assert_eq!(consent_name("new_consent_marketing").as_deref(), Some("MARKETING"));
        assert_eq!(consent_name("new_Consent_Integracja").as_deref(), Some("INTEGRACJA"));
        assert_eq!(consent_name("new_consent_email_2").as_deref(), Some("EMAIL_2"));
    }

    #[test]
    fn other_columns_are_not_consents() {
        for column in
            ["new_consent_", "new_consent", "donotbulkemail", "new_donotsms", "", "new_consent_a-b", "nęw_consent_x"]
        {
            assert_eq!(consent_name(column), None, "{column}");
        }
    }

    #[test]
    fn every_custom_column_is_listed_once() {
        let mut seen = alloc::collections::BTreeSet::new();
        for (table, columns) in CUSTOM_COLUMNS {
            for column in *columns {
                assert!(seen.insert((*table, *column)), "{table}.{column} listed twice");
                assert!(column.starts_with("new_"), "{column} lacks the publisher prefix");
                assert!(column.len() <= 50, "{column} is longer than Dataverse allows");
            }
        }
    }
}
