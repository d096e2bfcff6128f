//! SALESmanago contact → the Dynamics columns that differ ([`from_salesmanago`]).
//!
//! Only columns whose value changes are in the patch, so writing it back touches nothing else.
//! SALESmanago's blanks never clear a Dynamics value: a field SALESmanago does not return is
//! unknown, not empty. Opt-outs and consents follow the consent rule ([`crate::core::consent`]).

use crate::core::sorted::SortedMap;
use crate::prelude::*;

use crate::core::json::Value;

use super::fields::FieldMapping;
use super::normalize::{self, Date};
use super::outbound::{street, MAX_TEXT};
use crate::core::consent::decide;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::schema::contact;
use crate::core::json::Map;
use crate::core::salesmanago::contact::SmContact;

/// The columns to update on a contact, by logical name, with their new values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    /// Column → new value (text, boolean or `YYYY-MM-DD`).
    pub columns: SortedMap<String, Value>,
    /// The contact's new consent base, when it changes: written only with the columns.
    pub base: Option<String>,
}

impl ContactPatch {
    /// Whether no value changes (the base may).
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The columns to write: the values, and the base when it changes, stamped with the time
    /// of the synchronisation (`now_ms`), which marks the write as the integration's own: a
    /// webhook event carrying it holds SALESmanago's values and is not sent back
    /// ([`crate::core::dataverse::event::plan`]). `None`: nothing.
    pub fn write(self, now_ms: u64) -> Option<Map> {
        let mut columns: Map = self.columns.into_iter().collect();
        if let Some(base) = self.base {
            columns.insert(contact::CONSENT_BASE.into(), base.into());
        }
        if columns.is_empty() {
            return None;
        }
        columns.insert(contact::SYNCED_ON.into(), crate::core::sync::iso_datetime(now_ms).into());
        Some(columns)
    }

    fn set_text(&mut self, row: &ContactRow, column: &str, value: &str) {
        let (value, _) = normalize::text(value, MAX_TEXT);
        if let Some(value) = value {
            if row.get(column).map(|v| normalize::text(v, MAX_TEXT).0) != Some(Some(value.clone())) {
                self.columns.insert(column.to_owned(), value.into());
            }
        }
    }
}

/// The changes that make `row` hold what SALESmanago holds in `sm`, with the admin's
/// `mapping`'s columns that come from SALESmanago ([`FieldMapping::from_salesmanago`]).
pub fn from_salesmanago(row: &ContactRow, sm: &SmContact, mapping: &FieldMapping) -> ContactPatch {
    let mut patch = ContactPatch::default();
    if let Some(id) = &sm.id {
        patch.set_text(row, contact::SALESMANAGO_ID, id);
    }
    if let Some(email) = &sm.email {
        let same = row.get(contact::EMAIL).is_some_and(|e| e.trim().eq_ignore_ascii_case(email));
        if !same && normalize::email(email).is_ok() {
            patch.columns.insert(contact::EMAIL.into(), email.clone().into());
        }
    }
    if let Some(name) = &sm.name {
        name_patch(row, name, &mut patch);
    }
    if let Some(phone) = &sm.phone {
        let current = row.get(contact::MOBILE_PHONE).or_else(|| row.get(contact::BUSINESS_PHONE));
        if current.map(str::trim) != Some(phone.as_str()) {
            let column = if row.get(contact::MOBILE_PHONE).is_some() || row.get(contact::BUSINESS_PHONE).is_none() {
                contact::MOBILE_PHONE
            } else {
                contact::BUSINESS_PHONE
            };
            patch.set_text(row, column, phone);
        }
    }
    if let Some(fax) = &sm.fax {
        patch.set_text(row, contact::FAX, fax);
    }
    if let Some(street_address) = &sm.address.street_address {
        if street(row).as_deref() != normalize::text(street_address, MAX_TEXT).0.as_deref() {
            patch.set_text(row, contact::STREET_1, street_address);
            for line in [contact::STREET_2, contact::STREET_3] {
                if row.get(line).is_some() {
                    patch.columns.insert(line.into(), Value::Null);
                }
            }
        }
    }
    let address = [
        (contact::POSTAL_CODE, &sm.address.zip_code),
        (contact::CITY, &sm.address.city),
        (contact::COUNTRY, &sm.address.country),
    ];
    for (column, value) in address {
        if let Some(value) = value {
            patch.set_text(row, column, value);
        }
    }
    if let Some((Some(year), month, day)) = sm.birthday {
        if let Some(date) = Date::new(year, month, day) {
            if row.get(contact::BIRTH_DATE).and_then(Date::parse_iso) != Some(date) {
                patch.columns.insert(contact::BIRTH_DATE.into(), date.iso().into());
            }
        }
    }
    mapping.from_salesmanago(row, sm, &mut patch.columns);
    let mut base = row.base.clone();
    for (key, ours) in row.consent_values() {
        let theirs = sm.theirs(&key);
        let decision = decide(&key, ours, theirs, row.base.get(&key), false);
        if let Some(granted) = decision.to_dynamics {
            let Some((column, value)) = row.consent_column(&key, granted) else { continue };
            patch.columns.insert(column, value.into());
        }
        // What is to go to SALESmanago has not arrived there (a pull sends nothing): nothing
        // was agreed, so the base stays what the two sides last really agreed on. A Dynamics
        // value changed since then still goes with the next export; one that never was agreed
        // waits for a synchronisation that reads SALESmanago first (Send, a save), where a
        // withdrawal made there meanwhile wins. Recording SALESmanago's value as agreed here
        // made the next export take Dynamics' old value for a new grant, and send it over a
        // withdrawal made in SALESmanago since.
        if decision.to_salesmanago.is_none() {
            base.set(&key, decision.agreed);
        }
    }
    if base != row.base {
        patch.base = Some(base.to_text());
    }
    patch
}

/// `firstname` / `lastname` from a full name: the last word is the last name, the rest the
/// first name ("Jan Maria Rokita" → "Jan Maria" + "Rokita"); one word is a last name.
fn name_patch(row: &ContactRow, name: &str, patch: &mut ContactPatch) {
    let Some(name) = normalize::text(name, MAX_TEXT).0 else { return };
    let current = row.get(contact::FULL_NAME).map(str::to_owned).or_else(|| {
        let parts: Vec<&str> = [contact::FIRST_NAME, contact::LAST_NAME].iter().filter_map(|c| row.get(c)).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    if current.and_then(|c| normalize::text(&c, MAX_TEXT).0).as_deref() == Some(name.as_str()) {
        return;
    }
    match name.rsplit_once(' ') {
        Some((first, last)) => {
            patch.set_text(row, contact::FIRST_NAME, first);
            patch.set_text(row, contact::LAST_NAME, last);
        }
        None => {
            patch.set_text(row, contact::LAST_NAME, &name);
            if row.get(contact::FIRST_NAME).is_some() {
                patch.columns.insert(contact::FIRST_NAME.into(), Value::Null);
            }
        }
    }
}
