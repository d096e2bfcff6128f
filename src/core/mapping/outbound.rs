//! Dynamics contact → SALESmanago upsert ([`to_salesmanago`]).
//!
//! | Dataverse column                          | SALESmanago field                           |
//! |-------------------------------------------|---------------------------------------------|
//! | `fullname`, else `firstname` + `lastname` | `contact.name`                              |
//! | `emailaddress1`                           | `contact.email` (the key; required), or     |
//! |                                           | `newEmail` when it renames ([`rename_from`])|
//! | `mobilephone`, else `telephone1`          | `contact.phone`                             |
//! | `fax`                                     | `contact.fax`                               |
//! | `address1_line1..3`                       | `contact.address.streetAddress`             |
//! | `address1_postalcode`, `_city`, `_country`| `contact.address.zipCode`, `city`, `country`|
//! | `birthdate`                               | `birthday` (`yyyyMMdd`)                     |
//! | `contactid`                               | `contact.externalId`                        |
//! | `donotbulkemail`                          | `forceOptOut` / `forceOptIn`                |
//! | `new_donotsms`                            | `forcePhoneOptOut` / `forcePhoneOptIn`      |
//! | `new_consent_<name>`                      | `consentDetails[{consentName: NAME, …}]`    |
//!
//! A contact without a valid e-mail is [`Skip`]ped with its reason. A value that cannot be sent
//! as it is (too long, not a phone number, not a real birth date) is cut or left out, and a
//! [`Warning`] says so; nothing is dropped silently.

use super::fields::{FieldMapping, Problem};
use super::normalize::{self, Date, EmailProblem};
use crate::core::consent::{decide, Base, Key, Theirs};
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::schema::contact;
use crate::core::json::{Map, Value};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::contact::{Address, ConsentDetail, ContactData, UpsertDetails};
use crate::core::salesmanago::export::SYNC_TAG;
use crate::prelude::*;

/// Longest free text sent in one field. SALESmanago documents no contact field limits; 255 is the
/// limit of its event detail fields (`docs/salesmanago-api.md` §4) and fits every Dynamics address column.
pub const MAX_TEXT: usize = 255;

/// What the caller knows beyond the row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundOptions {
    /// Now, Unix ms: consents' `agreementDate` and the upper bound of a birth date.
    pub now_ms: u64,
    /// The columns the user changed in this save: a change of an opt-out or a consent there is
    /// deliberate, even where the contact has no consent base yet.
    pub changed: Vec<String>,
    /// What SALESmanago holds of the contact, when it was read just before sending.
    pub salesmanago: Held,
    /// Another Dynamics contact still holds the address SALESmanago knows this one by
    /// ([`rename_from`], [`held_by_another`]): that SALESmanago contact stays theirs, so this
    /// one is not renamed, and its new address goes as a contact of its own.
    pub previous_shared: bool,
}

/// What SALESmanago holds of a contact about to be sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Held {
    /// Not read (an export sends without reading first).
    #[default]
    Unread,
    /// Read: SALESmanago has no such contact.
    Missing,
    /// Read: the contact as SALESmanago answered.
    Found(Box<SmContact>),
}

impl Held {
    fn theirs(&self, key: &Key) -> Theirs {
        match self {
            Held::Unread => Theirs::Unknown,
            Held::Missing => Theirs::Known(None),
            Held::Found(sm) => sm.theirs(key),
        }
    }
}

/// A contact ready to upsert, and what had to be changed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The upsert.
    pub details: UpsertDetails,
    /// Values cut or left out.
    pub warnings: Vec<Warning>,
    /// The contact's consent base once the upsert is made, when it changes (see
    /// [`crate::core::consent`]): written back with the status.
    pub base: Option<String>,
    /// Values SALESmanago changed since the last agreement, to write in Dynamics with the
    /// status (only when SALESmanago was read before sending).
    pub dynamics: Map,
}

/// Why a contact cannot be sent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `emailaddress1` is empty: SALESmanago identifies contacts by e-mail.
    MissingEmail,
    /// `emailaddress1` is not an address SALESmanago accepts.
    InvalidEmail {
        /// The address as entered.
        email: String,
        /// What is wrong with it.
        problem: EmailProblem,
    },
}

/// A value sent differently from how Dynamics holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Cut to [`MAX_TEXT`] characters.
    Truncated {
        /// The Dataverse column.
        column: &'static str,
    },
    /// Not a phone number; left out.
    PhoneIgnored {
        /// The Dataverse column.
        column: &'static str,
    },
    /// Not a real birth date in the past; left out.
    BirthdateIgnored,
    /// A value of the admin's mapping cut or left out.
    Mapped(Problem),
}

/// Maps `row` to the upsert SALESmanago takes.
///
/// Fails with a [`Skip`] when the row has no valid e-mail.
/// The admin's `mapping` adds its columns' values ([`FieldMapping::to_salesmanago`]).
pub fn to_salesmanago(row: &ContactRow, options: &OutboundOptions, mapping: &FieldMapping) -> Result<Outbound, Skip> {
    let raw_email = row.get(contact::EMAIL).ok_or(Skip::MissingEmail)?;
    let email = normalize::email(raw_email)
        .map_err(|problem| Skip::InvalidEmail { email: raw_email.trim().to_owned(), problem })?;
    let previous = rename_from(row, &options.salesmanago);
    let renamed_from = previous.clone().filter(|_| !options.previous_shared);
    // The consent rule weighs the SALESmanago contact the upsert reaches, and the agreement made
    // with it: the one read, with the row's base; none (SALESmanago has no contact, and an
    // agreement with one gone binds nothing: Dynamics' values go as to a new contact); or, when
    // the one read keeps the old address for another Dynamics contact, the contact of the new
    // address, not read, with no agreement yet.
    let (held, agreed) = match &options.salesmanago {
        Held::Missing => (&Held::Missing, Base::default()),
        _ if previous.is_some() && options.previous_shared => (&Held::Unread, Base::default()),
        held => (held, row.base.clone()),
    };
    let mut warnings = Vec::new();
    let mut text = |column: &'static str, value: Option<String>| {
        let (value, cut) = normalize::text(value.as_deref()?, MAX_TEXT);
        if cut {
            warnings.push(Warning::Truncated { column });
        }
        value
    };
    let name = text(contact::FULL_NAME, name(row));
    let street = text(contact::STREET_1, street(row));
    let address = Address {
        street_address: street,
        zip_code: text(contact::POSTAL_CODE, row.get(contact::POSTAL_CODE).map(str::to_owned)),
        city: text(contact::CITY, row.get(contact::CITY).map(str::to_owned)),
        country: text(contact::COUNTRY, row.get(contact::COUNTRY).map(str::to_owned)),
    };
    let phone_column =
        if row.get(contact::MOBILE_PHONE).is_some() { contact::MOBILE_PHONE } else { contact::BUSINESS_PHONE };
    let phone = phone_field(row, phone_column, &mut warnings);
    let fax = phone_field(row, contact::FAX, &mut warnings);
    let birthday = birthday(row, options.now_ms, &mut warnings);

    // Only a change travels (the consent rule); SALESmanago's side as read just before, if it was.
    let mut base = agreed.clone();
    let mut sent: Vec<(Key, bool)> = Vec::new();
    let mut dynamics = Map::new();
    for (key, ours) in row.consent_values() {
        let changed_now = options.changed.iter().any(|c| Key::of_column(c).as_ref() == Some(&key));
        let decision = decide(&key, ours, held.theirs(&key), agreed.get(&key), changed_now);
        if let Some((column, value)) = decision.to_dynamics.and_then(|granted| row.consent_column(&key, granted)) {
            dynamics.insert(column, value.into());
        }
        base.set(&key, decision.agreed);
        if let Some(granted) = decision.to_salesmanago {
            sent.push((key, granted));
        }
    }
    let channel = |key: Key| sent.iter().find(|(k, _)| *k == key).map(|(_, granted)| *granted);
    let (newsletter, sms) = (channel(Key::Newsletter), channel(Key::Sms));
    let consent_details = sent
        .iter()
        .filter_map(|(key, granted)| match key {
            Key::Consent(name) => Some(ConsentDetail {
                consent_name: name.clone(),
                consent_accept: *granted,
                opt_out: !granted,
                agreement_date: options.now_ms,
            }),
            Key::Newsletter | Key::Sms => None,
        })
        .collect();
    let mut details = UpsertDetails {
        contact: ContactData {
            email: renamed_from.clone().unwrap_or_else(|| email.clone()),
            name,
            phone,
            fax,
            company: None,
            external_id: row.id(),
            address: (!address.is_empty()).then_some(address),
        },
        new_email: renamed_from.is_some().then_some(email),
        birthday,
        force_opt_out: newsletter == Some(false),
        force_opt_in: newsletter == Some(true),
        force_phone_opt_out: sms == Some(false),
        force_phone_opt_in: sms == Some(true),
        // The export job selects contacts by tag: every contact sent carries ours.
        tags: vec![SYNC_TAG.to_owned()],
        remove_tags: Vec::new(),
        province: None,
        properties: Default::default(),
        consent_details,
    };
    warnings.extend(mapping.to_salesmanago(row, &mut details).into_iter().map(Warning::Mapped));
    let base = (base != row.base).then(|| base.to_text());
    Ok(Outbound { details, warnings, base, dynamics })
}

/// The address SALESmanago knows the contact of `row` by, when the row's e-mail is another
/// one now: the upsert is then keyed by it (`contact.email`) and renames the contact to the
/// row's e-mail (`newEmail`). `None`: the upsert is keyed by the row's e-mail.
///
/// The contract this rests on, the one place it is written: SALESmanago finds the contact of
/// an upsert by `contact.email`, and `newEmail` renames that contact, which keeps its id, its
/// history, its consents and its opt-outs (`docs/salesmanago-api.md` §3.1; the shared API
/// reference, §3.1 and "E-mail changes": seen in public code and third-party clients, never
/// tried against the live API).
/// Without it, a changed address went as a new contact, and the old one stayed behind with
/// everything SALESmanago knew. When another contact has the new address, SALESmanago refuses
/// the rename ([`crate::core::salesmanago::operation::Refused`]) and nothing is merged.
///
/// The address SALESmanago knows: what it answered, read just before sending, for the
/// contact's own SALESmanago id (`held`); else what was recorded when the contact was last sent
/// (`new_salesmanagoemail`). Compared trimmed and case-insensitively; an invalid or absent one
/// renames nothing. Whether another Dynamics contact still holds it (the SALESmanago contact
/// is then theirs too, and not renamed) is the caller's to find out: [`held_by_another`].
pub fn rename_from(row: &ContactRow, held: &Held) -> Option<String> {
    let raw = row.get(contact::EMAIL)?;
    let ours = match held {
        Held::Found(sm) if sm.id.is_some() && sm.id.as_deref() == row.get(contact::SALESMANAGO_ID) => {
            sm.email.as_deref()
        }
        _ => None,
    };
    let recorded = ours.or(row.get(contact::SALESMANAGO_EMAIL))?;
    // Most often the same address: said without building either.
    if raw.trim().eq_ignore_ascii_case(recorded.trim()) {
        return None;
    }
    let (current, known) = (normalize::email(raw).ok()?, normalize::email(recorded).ok()?);
    (known != current).then_some(known)
}

/// Whether a contact other than `id` holds `address` (normalised) among `rows`, contacts as
/// [`crate::core::dataverse::query::holders`] reads them: the SALESmanago contact of that
/// address then stands for that one too, and renaming it would take it away.
pub fn held_by_another(rows: &[Value], id: &str, address: &str) -> bool {
    let own = id.trim_matches(|c| c == '{' || c == '}');
    rows.iter().filter_map(Value::as_object).map(ContactRow::from_json).any(|other| {
        other.id().is_some_and(|o| !o.eq_ignore_ascii_case(own))
            && other.get(contact::EMAIL).and_then(|e| normalize::email(e).ok()).as_deref() == Some(address)
    })
}

/// After SALESmanago refused renaming `details` because another contact has the new address
/// ([`crate::core::salesmanago::operation::Refused::Taken`]): the upsert to send instead, keyed
/// by the new address and renaming nothing, when that leaves nothing behind; `None` when the
/// refusal stands.
///
/// `found` is what `contact/basic` answers for [`rename_lookup`]; `sm_id` the contact's
/// `new_salesmanagoid`. Nothing is left behind when the contact holding the new address is this
/// one (renamed already: by an attempt whose answer was lost, in SALESmanago, or by a run whose
/// write-back failed), or when SALESmanago has no contact with the previous address (nothing
/// to rename).
pub fn unrenamed(details: &UpsertDetails, sm_id: Option<&str>, found: &[SmContact]) -> Option<UpsertDetails> {
    let [new, previous] = rename_lookup(details)?;
    let holder = |address: &str| found.iter().find(|sm| sm.email.as_deref() == Some(address));
    let ours = sm_id.is_some() && holder(&new).is_some_and(|sm| sm.id.as_deref() == sm_id);
    if !ours && holder(&previous).is_some() {
        return None;
    }
    let mut plain = details.clone();
    plain.contact.email = plain.new_email.take()?;
    Some(plain)
}

/// The addresses [`unrenamed`] looks at, lower case: the new, then the previous; `None` when
/// `details` renames nothing.
pub fn rename_lookup(details: &UpsertDetails) -> Option<[String; 2]> {
    let new = details.new_email.as_ref()?.trim().to_ascii_lowercase();
    Some([new, details.contact.email.trim().to_ascii_lowercase()])
}

/// `fullname`, else `firstname lastname`.
fn name(row: &ContactRow) -> Option<String> {
    if let Some(full) = row.get(contact::FULL_NAME) {
        return Some(full.to_owned());
    }
    let parts: Vec<&str> = [contact::FIRST_NAME, contact::LAST_NAME].iter().filter_map(|c| row.get(c)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The three street lines, joined with ", ".
pub(super) fn street(row: &ContactRow) -> Option<String> {
    let lines: Vec<String> = [contact::STREET_1, contact::STREET_2, contact::STREET_3]
        .iter()
        .filter_map(|c| normalize::text(row.get(c)?, MAX_TEXT).0)
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

fn phone_field(row: &ContactRow, column: &'static str, warnings: &mut Vec<Warning>) -> Option<String> {
    let raw = row.get(column)?;
    let phone = normalize::phone(raw);
    if phone.is_none() {
        warnings.push(Warning::PhoneIgnored { column });
    }
    phone
}

/// `birthdate` as `yyyyMMdd`, if it is a real date between 1900 and today.
fn birthday(row: &ContactRow, now_ms: u64, warnings: &mut Vec<Warning>) -> Option<String> {
    let raw = row.get(contact::BIRTH_DATE)?;
    let today = Date::from_unix_ms(now_ms);
    match Date::parse_iso(raw) {
        Some(date) if date.year >= 1900 && date <= today => Some(date.compact()),
        _ => {
            warnings.push(Warning::BirthdateIgnored);
            None
        }
    }
}
