//! A contact row as the Dataverse Web API returns it, reduced to the columns the integration
//! reads. Values are read tolerantly: absent, `null` and blank text are all "no value".

use crate::core::sorted::SortedMap;
use crate::prelude::*;

use crate::core::json::{Map, Value};

/// [`crate::core::mapping::fields::FORMATTED`] as the row's lower-cased keys hold it.
pub const FORMATTED_KEY: &str = "@odata.community.display.v1.formattedvalue";

/// The Yes/No cells of the columns read into their own fields (the opt-outs, the consents).
static YES: Value = Value::Bool(true);
static NO: Value = Value::Bool(false);

use super::schema::{consent_name, contact};
use crate::core::consent::{Base, Key};

/// The standard contact columns the mapping reads, for `$select`. Consent columns are added at
/// run time, from the table's metadata; the status columns, the address SALESmanago knows the
/// contact by among them, by [`super::query::contact_columns`] (a change of those is not news
/// for SALESmanago).
pub const SELECT: &[&str] = &[
    contact::ID,
    contact::FULL_NAME,
    contact::FIRST_NAME,
    contact::LAST_NAME,
    contact::EMAIL,
    contact::MOBILE_PHONE,
    contact::BUSINESS_PHONE,
    contact::FAX,
    contact::STREET_1,
    contact::STREET_2,
    contact::STREET_3,
    contact::CITY,
    contact::POSTAL_CODE,
    contact::COUNTRY,
    contact::BIRTH_DATE,
    contact::DO_NOT_BULK_EMAIL,
    contact::DO_NOT_SMS,
    contact::SALESMANAGO_ID,
    contact::MODIFIED_ON,
    contact::VERSION,
];

/// A value of a row, borrowed: text, or a number or Yes/No as the Web API gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text (non-blank).
    Text(&'a str),
    /// A number, a Yes/No, or a lookup's name.
    Other(&'a Value),
}

/// One contact row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRow {
    /// Text columns by logical name (only those with a non-blank value).
    pub text: SortedMap<String, String>,
    /// `donotbulkemail`: the newsletter opt-out.
    pub do_not_bulk_email: Option<bool>,
    /// `new_donotsms`: the SMS opt-out.
    pub do_not_sms: Option<bool>,
    /// Every `new_consent_<name>` column present in the row, by logical name (lower case), with
    /// its value (`None` when null).
    pub consents: SortedMap<String, Option<bool>>,
    /// What both sides agreed on at the last synchronisation.
    pub base: Base,
    /// Other columns' values that are not text (numbers, Yes/No), and lookups' names
    /// (`_<column>_value` + [`crate::core::mapping::fields::FORMATTED`]): what the admin's mapping reads
    /// ([`crate::core::mapping::fields`]).
    pub other: SortedMap<String, Value>,
}

impl ContactRow {
    /// Reads a Web API row. Columns it does not know are ignored, except consent columns,
    /// which are recognised by name.
    pub fn from_json(row: &Map) -> ContactRow {
        let mut parsed = ContactRow::default();
        for (column, value) in row {
            parsed.take(column.clone(), value.clone());
        }
        parsed
    }

    /// [`ContactRow::from_json`], taking the row: its names and texts move, uncopied (a job
    /// reads thousands of rows a page).
    pub fn from_map(row: Map) -> ContactRow {
        let mut parsed = ContactRow::default();
        // Room for every column at once, then what is left given back: two allocations a
        // map, not one for each time it grows.
        parsed.text.reserve(row.len());
        parsed.other.reserve(row.len());
        for (column, value) in row {
            parsed.take(column, value);
        }
        parsed.text.shrink_to_fit();
        parsed.other.shrink_to_fit();
        parsed
    }

    /// Keeps `value` of `column`, where a row keeps it.
    fn take(&mut self, mut column: String, value: Value) {
        column.make_ascii_lowercase();
        if consent_name(&column).is_some() {
            self.consents.append(column, value.as_bool());
            return;
        }
        match column.as_str() {
            contact::DO_NOT_BULK_EMAIL => self.do_not_bulk_email = value.as_bool(),
            contact::DO_NOT_SMS => self.do_not_sms = value.as_bool(),
            contact::CONSENT_BASE => self.base = value.as_str().map(Base::from_text).unwrap_or_default(),
            // A lookup's name; other OData annotations such as `…@odata.etag` are not read.
            _ if column.starts_with('_') && column.ends_with(FORMATTED_KEY) => {
                if let Value::String(name) = value {
                    self.other.append(column, Value::String(name));
                }
            }
            _ if column.contains('@') => {}
            _ => match value {
                Value::String(text) if text.chars().any(|c| !c.is_whitespace()) => {
                    self.text.append(column, text);
                }
                Value::Number(_) | Value::Bool(_) => {
                    self.other.append(column, value);
                }
                _ => {}
            },
        }
    }

    /// A column's value as the Web API gave it, if it has one; a lookup's name under
    /// `_<column>_value` + [`crate::core::mapping::fields::FORMATTED`]. `column` is a logical
    /// name (lower case), as the row's keys are.
    /// The opt-outs and consents, read into their own fields for the consent rule, are cells
    /// too: a view (the sync scope) may filter on them.
    pub fn cell(&self, column: &str) -> Option<Cell<'_>> {
        let yes_no = |held: Option<bool>| held.map(|yes| Cell::Other(if yes { &YES } else { &NO }));
        match column {
            contact::DO_NOT_BULK_EMAIL => yes_no(self.do_not_bulk_email),
            contact::DO_NOT_SMS => yes_no(self.do_not_sms),
            _ if consent_name(column).is_some() => yes_no(self.consents.get(column).copied().flatten()),
            _ => match self.get(column) {
                Some(text) => Some(Cell::Text(text)),
                None => self.other.get(column).map(Cell::Other),
            },
        }
    }

    /// [`ContactRow::cell`] as an owned JSON value.
    pub fn value(&self, column: &str) -> Option<Value> {
        self.cell(column).map(|cell| match cell {
            Cell::Text(text) => text.into(),
            Cell::Other(value) => value.clone(),
        })
    }

    /// A text column's value, if it has one.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.text.get(column).map(String::as_str)
    }

    /// Dynamics' consent-like values, read as granted (`true`: allowed or given): the
    /// newsletter, SMS, and each consent column.
    pub fn consent_values(&self) -> Vec<(Key, Option<bool>)> {
        let mut values =
            vec![(Key::Newsletter, self.do_not_bulk_email.map(|v| !v)), (Key::Sms, self.do_not_sms.map(|v| !v))];
        for (column, value) in &self.consents {
            if let Some(name) = consent_name(column) {
                values.push((Key::Consent(name), *value));
            }
        }
        values
    }

    /// The column of `key` in this row, and its value for `granted` (opt-out columns hold the
    /// opposite); `None` for a consent the row has no column for.
    pub fn consent_column(&self, key: &Key, granted: bool) -> Option<(String, bool)> {
        match key {
            Key::Newsletter => Some((contact::DO_NOT_BULK_EMAIL.to_owned(), !granted)),
            Key::Sms => Some((contact::DO_NOT_SMS.to_owned(), !granted)),
            Key::Consent(name) => self
                .consents
                .keys()
                .find(|column| consent_name(column).as_deref() == Some(name.as_str()))
                .map(|column| (column.clone(), granted)),
        }
    }

    /// The row's version ([`version`]).
    pub fn version(&self) -> Option<u64> {
        match self.other.get(contact::VERSION) {
            Some(value) => value.as_u64(),
            None => self.get(contact::VERSION)?.parse().ok(),
        }
    }

    /// The row's `contactid`, without braces, in lower case.
    pub fn id(&self) -> Option<String> {
        self.get(contact::ID).map(|id| id.trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase())
    }
}

/// A row's version (`versionnumber`, which every write raises; an Edm.Int64: a number, or text
/// when the client asked for IEEE754Compatible).
pub fn version(row: &Map) -> Option<u64> {
    row.get(contact::VERSION).and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    #[test]
    fn rows_are_read_tolerantly() {
        let row = json!({
            "@odata.etag": "W/\"1\"", "contactid": "{ABC-1}", "fullname": "Jan Kowalski",
            "emailaddress1": "  ", "telephone1": null, "donotbulkemail": true, "new_donotsms": null,
            "new_consent_marketing": false, "New_Consent_Profiling": null, "new_consent_": true,
            "address1_city@OData.Community.Display.V1.FormattedValue": "x", "numberofchildren": 3});
        let row = ContactRow::from_json(row.as_object().unwrap());
        assert_eq!(row.id().as_deref(), Some("abc-1"));
        assert_eq!(row.get("fullname"), Some("Jan Kowalski"));
        assert_eq!(row.get("emailaddress1"), None, "blank is no value");
        assert_eq!(row.get("telephone1"), None);
        assert_eq!(row.get("numberofchildren"), None, "not text");
        assert_eq!(row.value("numberofchildren"), Some(3.into()), "kept for the admin's mapping");
        assert_eq!(row.value("address1_city"), None, "a formatted value is no value");
        assert_eq!(row.value("donotbulkemail"), Some(true.into()), "the opt-outs and consents are cells too");
        assert_eq!(row.value("new_consent_marketing"), Some(false.into()));
        assert_eq!(row.value("new_donotsms"), None, "null is no value");
        assert_eq!(row.do_not_bulk_email, Some(true));
        assert_eq!(row.do_not_sms, None);
        assert_eq!(row.consents.len(), 2, "{:?}", row.consents);
        assert_eq!(row.consents["new_consent_marketing"], Some(false));
        assert_eq!(row.consents["new_consent_profiling"], None);
        assert!(row.text.keys().all(|k| !k.contains('@')));
    }

    #[test]
    fn a_row_taken_reads_as_a_row_borrowed() {
        let row = json!({
            "contactid": "C-1", "EmailAddress1": "A@b.pl", "emailaddress1": "later@b.pl", "zeta": "z",
            "alpha": "a", "versionnumber": 77, "new_score": 12.5, "new_vip": false, "fax": " ",
            "_parentcustomerid_value": "a-1",
            "_parentcustomerid_value@OData.Community.Display.V1.FormattedValue": "Contoso"});
        let map = row.as_object().unwrap().clone();
        let taken = ContactRow::from_map(map.clone());
        assert_eq!(taken, ContactRow::from_json(&map));
        assert_eq!(taken.get("emailaddress1"), Some("later@b.pl"), "of a column twice, the last, as Dataverse's JSON");
        let keys: Vec<&String> = taken.text.keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted: {keys:?}");
        assert_eq!(taken.get("fax"), None);
        assert_eq!(taken.version(), Some(77));
        assert_eq!(taken.value("new_score"), Some(json!(12.5)));
        let name = format!("_parentcustomerid_value{FORMATTED_KEY}");
        assert_eq!(taken.cell(&name), Some(Cell::Other(&Value::String("Contoso".into()))));
        let text_version = ContactRow::from_map(json!({"versionnumber": "78"}).as_object().unwrap().clone());
        assert_eq!(text_version.version(), Some(78), "an Int64 read as text");
    }
}
