//! SALESmanago contact → the Dynamics columns that differ ([`from_salesmanago`]).
//!
//! Only columns whose value changes are in the patch, so writing it back touches nothing else.
//! SALESmanago's blanks never clear a Dynamics value: a field SALESmanago does not return is
//! unknown, not empty. Opt-outs follow the consent rule: an opt-out on either side is never
//! overwritten by an older opt-in.

use crate::core::sorted::SortedMap;

use crate::core::json::Value;

use super::normalize::{self, Date};
use super::outbound::{street, MAX_TEXT};
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::schema::{consent_name, contact};
use crate::core::salesmanago::contact::SmContact;

/// The columns to update on a contact, by logical name, with their new values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    /// Column → new value (text, boolean or `YYYY-MM-DD`).
    pub columns: SortedMap<String, Value>,
}

impl ContactPatch {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
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

/// The changes that make `row` hold what SALESmanago holds in `sm`.
pub fn from_salesmanago(row: &ContactRow, sm: &SmContact) -> ContactPatch {
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
    let sm_is_newer = sm_is_newer(row, sm.modified_on);
    let opt_outs = [
        (contact::DO_NOT_BULK_EMAIL, row.do_not_bulk_email, sm.opted_out),
        (contact::DO_NOT_SMS, row.do_not_sms, sm.opted_out_phone),
    ];
    for (column, current, theirs) in opt_outs {
        if let Some(opted_out) = resolve_opt_out(current, theirs, sm_is_newer) {
            patch.columns.insert(column.into(), opted_out.into());
        }
    }
    for (column, current) in &row.consents {
        let Some(name) = consent_name(column) else { continue };
        let Some(consent) = sm.consents.iter().find(|c| c.name == name) else { continue };
        let newer = consent.date.map_or(sm_is_newer, |date| sm_is_newer_at(row, date));
        // A consent column holds the opposite of an opt-out: `true` gives the consent.
        if let Some(opted_out) = resolve_opt_out(current.map(|v| !v), Some(!consent.holds()), newer) {
            patch.columns.insert(column.clone(), (!opted_out).into());
        }
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

/// Whether SALESmanago's change at `sm_modified_on` is newer than the row's last change.
/// Unknown times count as not newer, so an opt-out stays.
fn sm_is_newer(row: &ContactRow, sm_modified_on: Option<u64>) -> bool {
    sm_modified_on.is_some_and(|at| sm_is_newer_at(row, at))
}

fn sm_is_newer_at(row: &ContactRow, at: u64) -> bool {
    row.get(contact::MODIFIED_ON).and_then(normalize::unix_ms).is_some_and(|row_at| at > row_at)
}

/// The new value of an opt-out (`true` = opted out), if it changes: SALESmanago's opt-out always
/// applies; its opt-in replaces a Dynamics opt-out only when SALESmanago's change is newer.
fn resolve_opt_out(ours: Option<bool>, theirs: Option<bool>, theirs_is_newer: bool) -> Option<bool> {
    let theirs = theirs?;
    let apply = match ours {
        Some(ours) if ours == theirs => false,
        Some(true) => theirs_is_newer,
        _ => true,
    };
    apply.then_some(theirs)
}
