//! A contact as SALESmanago takes it ([`UpsertDetails`], the body of `contact/upsert` and an item
//! of `contact/batchupsert`) and as it gives it back ([`SmContact`], from `basic`, `basicById`
//! and `listById`). Request and response shapes differ (`docs/salesmanago-api.md`
//! §3.1, §3.4), so they are separate types; the parser tolerates every variant the reference
//! warns of and ignores unknown fields.

use crate::core::consent::{Key, Theirs};
use crate::core::sorted::SortedMap;
use crate::prelude::*;

use crate::core::json::object::{object_json, Keep, Object, Sink};
use crate::core::json::{Fields, FromJson, Invalid, Map, ToJson, Value};

/// One contact to create or update, with its opt-in flags and consents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertDetails {
    /// The contact's data; `contact.email` identifies it.
    pub contact: ContactData,
    /// Renames the contact found by `contact.email` to this address, keeping its id
    /// (`docs/salesmanago-api.md` §3.1).
    pub new_email: Option<String>,
    /// Birthday as `yyyyMMdd`.
    pub birthday: Option<String>,
    /// Subscribe to the newsletter.
    pub force_opt_in: bool,
    /// Unsubscribe from the newsletter.
    pub force_opt_out: bool,
    /// Subscribe to SMS.
    pub force_phone_opt_in: bool,
    /// Unsubscribe from SMS.
    pub force_phone_opt_out: bool,
    /// Tags to add.
    pub tags: Vec<String>,
    /// Tags to remove (`removeTags`).
    pub remove_tags: Vec<String>,
    /// The province (`province`, at the top level, not in the address).
    pub province: Option<String>,
    /// Custom details (a map in requests).
    pub properties: SortedMap<String, String>,
    /// Consents given or withdrawn.
    pub consent_details: Vec<ConsentDetail>,
}

/// The `contact` object of an upsert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactData {
    /// E-mail, the contact's key.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Fax.
    pub fax: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Our id for the contact (the Dataverse `contactid`).
    pub external_id: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
}

/// A postal address, in requests and responses alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Street and number.
    pub street_address: Option<String>,
    /// Postal code.
    pub zip_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
}

impl Address {
    /// Whether every part is absent.
    pub fn is_empty(&self) -> bool {
        self.street_address.is_none() && self.zip_code.is_none() && self.city.is_none() && self.country.is_none()
    }
}

/// A consent in an upsert's `consentDetails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDetail {
    /// The consent's name in SALESmanago (upper case).
    pub consent_name: String,
    /// Consent given.
    pub consent_accept: bool,
    /// Consent withdrawn.
    pub opt_out: bool,
    /// When it was given or withdrawn, Unix ms.
    pub agreement_date: u64,
}

impl Object for UpsertDetails {
    /// The request shape: optional fields only when they say something.
    fn fields(&self, sink: &mut dyn Sink) {
        sink.field("contact", &self.contact, Keep::Always);
        sink.field("newEmail", &self.new_email, Keep::WhenSaid);
        sink.field("birthday", &self.birthday, Keep::WhenSaid);
        sink.field("forceOptIn", &self.force_opt_in, Keep::WhenSaid);
        sink.field("forceOptOut", &self.force_opt_out, Keep::WhenSaid);
        sink.field("forcePhoneOptIn", &self.force_phone_opt_in, Keep::WhenSaid);
        sink.field("forcePhoneOptOut", &self.force_phone_opt_out, Keep::WhenSaid);
        sink.field("tags", &self.tags, Keep::WhenSaid);
        sink.field("removeTags", &self.remove_tags, Keep::WhenSaid);
        sink.field("province", &self.province, Keep::WhenSaid);
        sink.field("properties", &self.properties, Keep::WhenSaid);
        sink.field("consentDetails", &self.consent_details, Keep::WhenSaid);
    }
}
object_json!(UpsertDetails);

impl UpsertDetails {
    /// The address SALESmanago knows the contact by once this upsert is made, lower case: its
    /// new address when it renames the contact (`newEmail`), else `contact.email`.
    pub fn address(&self) -> String {
        // Addresses are ASCII (RFC 822, as SALESmanago keeps them), so ASCII lower-casing is
        // enough; Unicode's case tables would cost the wasm 18 KB.
        self.new_email.as_ref().unwrap_or(&self.contact.email).trim().to_ascii_lowercase()
    }

    /// Reads the request shape, as a script writes it; unknown fields are ignored.
    pub fn from_json(value: &Value) -> Result<UpsertDetails, Invalid> {
        let fields = Fields::of(value)?;
        Ok(UpsertDetails {
            contact: fields.required("contact")?,
            new_email: fields.optional("newEmail")?,
            birthday: fields.optional("birthday")?,
            force_opt_in: fields.or_default("forceOptIn")?,
            force_opt_out: fields.or_default("forceOptOut")?,
            force_phone_opt_in: fields.or_default("forcePhoneOptIn")?,
            force_phone_opt_out: fields.or_default("forcePhoneOptOut")?,
            tags: fields.or_default("tags")?,
            remove_tags: fields.or_default("removeTags")?,
            province: fields.optional("province")?,
            properties: fields.or_default("properties")?,
            consent_details: fields.or_default("consentDetails")?,
        })
    }
}

impl Object for ContactData {
    fn fields(&self, sink: &mut dyn Sink) {
        sink.field("email", &self.email, Keep::Always);
        sink.field("name", &self.name, Keep::WhenSaid);
        sink.field("phone", &self.phone, Keep::WhenSaid);
        sink.field("fax", &self.fax, Keep::WhenSaid);
        sink.field("company", &self.company, Keep::WhenSaid);
        sink.field("externalId", &self.external_id, Keep::WhenSaid);
        sink.field("address", &self.address, Keep::WhenSaid);
    }
}
object_json!(ContactData);

impl FromJson for ContactData {
    const EXPECTED: &'static str = "a contact with an `email`";
    fn read(value: &Value) -> Option<ContactData> {
        let fields = Fields::of(value).ok()?;
        Some(ContactData {
            email: fields.required("email").ok()?,
            name: fields.optional("name").ok()?,
            phone: fields.optional("phone").ok()?,
            fax: fields.optional("fax").ok()?,
            company: fields.optional("company").ok()?,
            external_id: fields.optional("externalId").ok()?,
            address: fields.optional("address").ok()?,
        })
    }
}

impl Object for Address {
    fn fields(&self, sink: &mut dyn Sink) {
        sink.field("streetAddress", &self.street_address, Keep::WhenSaid);
        sink.field("zipCode", &self.zip_code, Keep::WhenSaid);
        sink.field("city", &self.city, Keep::WhenSaid);
        sink.field("country", &self.country, Keep::WhenSaid);
    }
}
object_json!(Address);

impl FromJson for Address {
    const EXPECTED: &'static str = "an address";
    fn read(value: &Value) -> Option<Address> {
        let fields = Fields::of(value).ok()?;
        Some(Address {
            street_address: fields.optional("streetAddress").ok()?,
            zip_code: fields.optional("zipCode").ok()?,
            city: fields.optional("city").ok()?,
            country: fields.optional("country").ok()?,
        })
    }
}

impl Object for ConsentDetail {
    fn fields(&self, sink: &mut dyn Sink) {
        sink.field("consentName", &self.consent_name, Keep::Always);
        sink.field("consentAccept", &self.consent_accept, Keep::Always);
        sink.field("optOut", &self.opt_out, Keep::Always);
        sink.field("agreementDate", &self.agreement_date, Keep::Always);
    }
}
object_json!(ConsentDetail);

impl FromJson for ConsentDetail {
    const EXPECTED: &'static str = "a consent";
    fn read(value: &Value) -> Option<ConsentDetail> {
        let fields = Fields::of(value).ok()?;
        Some(ConsentDetail {
            consent_name: fields.required("consentName").ok()?,
            consent_accept: fields.required("consentAccept").ok()?,
            opt_out: fields.required("optOut").ok()?,
            agreement_date: fields.required("agreementDate").ok()?,
        })
    }
}

/// A contact as SALESmanago returns it. Every field is optional: absent and `null` alike mean
/// "SALESmanago did not say", never "clear it".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmContact {
    /// SALESmanago id (`contactId` in `basic`, `id` in `listById`).
    pub id: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Fax.
    pub fax: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// The `externalId` we sent.
    pub external_id: Option<String>,
    /// Postal address.
    pub address: Address,
    /// Birthday: year (if known), month, day.
    pub birthday: Option<(Option<u16>, u8, u8)>,
    /// Unsubscribed from the newsletter.
    pub opted_out: Option<bool>,
    /// Unsubscribed from SMS.
    pub opted_out_phone: Option<bool>,
    /// Consents, as far as the response lists them.
    pub consents: Vec<SmConsent>,
    /// Whether the response had a list of consents at all (`basic` has none in the live API).
    pub consents_listed: bool,
    /// Custom details (a map or a `{name, value}` list on the wire).
    pub properties: SortedMap<String, String>,
    /// Tag names (strings or `contactTags` objects on the wire).
    pub tags: Vec<String>,
    /// Whether the answer listed the tags at all: an absent tag then means the contact has
    /// none.
    pub tags_listed: bool,
    /// Deleted in SALESmanago.
    pub deleted: bool,
    /// Last modification, Unix ms.
    pub modified_on: Option<u64>,
    /// Creation, Unix ms.
    pub created_on: Option<u64>,
    /// Its score (`score`): what its actions earned it in SALESmanago.
    pub score: Option<i64>,
    /// Its state (`state`: `PROSPECT`, `CUSTOMER`, `PARTNER`, `OTHER`, …), as SALESmanago says it.
    pub state: Option<String>,
    /// Its last visit to a monitored site (`lastVisit` in `basic`), Unix ms.
    pub last_visit: Option<u64>,
    /// Its activity, as a full card (`listById`) lists it ([`super::activity`]): read only by
    /// the lookup that asks for it ([`super::operation::LookupKind::ActivityById`]).
    pub activity: Vec<crate::core::activity::Event>,
}

/// A consent as a response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmConsent {
    /// The consent name, its ASCII letters upper-cased.
    pub name: String,
    /// Given.
    pub accepted: bool,
    /// Withdrawn.
    pub opted_out: bool,
    /// When, Unix ms.
    pub date: Option<u64>,
}

impl SmConsent {
    /// Whether the consent currently holds.
    pub fn holds(&self) -> bool {
        self.accepted && !self.opted_out
    }
}

impl ToJson for SmConsent {
    fn to_json(&self) -> Value {
        crate::object! {"name": self.name, "accepted": self.accepted, "optedOut": self.opted_out, "date": self.date}
    }
}

impl ToJson for SmContact {
    /// Every field, `null` when SALESmanago did not say; the birthday as `[year, month, day]`.
    fn to_json(&self) -> Value {
        let birthday =
            self.birthday.map(|(year, month, day)| Value::Array(vec![year.to_json(), month.to_json(), day.to_json()]));
        crate::object! {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "phone": self.phone,
            "fax": self.fax,
            "company": self.company,
            "externalId": self.external_id,
            "address": self.address,
            "birthday": birthday,
            "optedOut": self.opted_out,
            "optedOutPhone": self.opted_out_phone,
            "consents": self.consents,
            "properties": self.properties,
            "tags": self.tags,
            "deleted": self.deleted,
            "modifiedOn": self.modified_on,
            "createdOn": self.created_on,
        }
    }
}

impl SmContact {
    /// What this answer says of `key`, read as granted.
    pub fn theirs(&self, key: &Key) -> Theirs {
        let known = |value: Option<bool>| value.map_or(Theirs::Unknown, |v| Theirs::Known(Some(!v)));
        match key {
            Key::Newsletter => known(self.opted_out),
            Key::Sms => known(self.opted_out_phone),
            Key::Consent(_) if !self.consents_listed => Theirs::Unknown,
            Key::Consent(name) => Theirs::Known(self.consents.iter().find(|c| c.name == *name).map(SmConsent::holds)),
        }
    }

    /// Reads one contact object. Fails only when `value` is not an object.
    pub fn from_json(value: &Value) -> Option<SmContact> {
        let object = value.as_object()?;
        let text = |key: &str| text_field(object, key);
        Some(SmContact {
            id: text("contactId").or_else(|| text("id")),
            // SALESmanago keeps only ASCII addresses (RFC 822), so ASCII lower-casing is enough.
            email: text("email").map(|e| e.to_ascii_lowercase()),
            name: text("name"),
            phone: text("phone"),
            fax: text("fax"),
            company: text("company"),
            external_id: text("externalId"),
            address: object.get("address").and_then(Value::as_object).map(address).unwrap_or_default(),
            birthday: birthday(object),
            opted_out: object.get("optedOut").and_then(flag),
            opted_out_phone: object.get("optedOutPhone").and_then(flag),
            consents: consents(object),
            consents_listed: object
                .get("consents")
                .or_else(|| object.get("consentDetails"))
                .is_some_and(|v| v.as_array().is_some()),
            properties: properties(object.get("properties")),
            tags: tags(object),
            tags_listed: ["contactTags", "tags"].iter().any(|k| object.get(k).is_some_and(|v| v.as_array().is_some())),
            deleted: object.get("deleted").and_then(flag).unwrap_or(false),
            modified_on: object.get("modifiedOn").and_then(number),
            created_on: object.get("createdOn").and_then(number),
            score: object.get("score").and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())),
            state: text("state").map(|s| s.chars().take(40).collect()),
            last_visit: object.get("lastVisit").and_then(number),
            activity: Vec::new(),
        })
    }
}

/// A non-blank string field, trimmed. Numbers are accepted as text (ids, phones).
fn text_field(object: &Map, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean, also from `"true"` / `"false"`.
fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-negative integer, also from a numeric string.
pub(crate) fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn address(object: &Map) -> Address {
    Address {
        street_address: text_field(object, "streetAddress"),
        zip_code: text_field(object, "zipCode"),
        city: text_field(object, "city"),
        country: text_field(object, "country"),
    }
}

/// `birthdayYear` / `birthdayMonth` / `birthdayDay` (strings or numbers), else `birthday` as
/// `yyyyMMdd` or `MMdd`.
fn birthday(object: &Map) -> Option<(Option<u16>, u8, u8)> {
    let part = |key: &str| object.get(key).and_then(number);
    if let (Some(month), Some(day)) = (part("birthdayMonth"), part("birthdayDay")) {
        let year = part("birthdayYear").and_then(|y| u16::try_from(y).ok());
        return Some((year, u8::try_from(month).ok()?, u8::try_from(day).ok()?));
    }
    let digits = text_field(object, "birthday")?;
    let field = |range: ::core::ops::Range<usize>| digits.get(range)?.parse::<u16>().ok();
    match digits.len() {
        8 if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some((field(0..4), u8::try_from(field(4..6)?).ok()?, u8::try_from(field(6..8)?).ok()?))
        }
        4 if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some((None, u8::try_from(field(0..2)?).ok()?, u8::try_from(field(2..4)?).ok()?))
        }
        _ => None,
    }
}

/// `consents` or `consentDetails`: a list of `{consentName, consentAccept, optOut, agreementDate}`.
fn consents(object: &Map) -> Vec<SmConsent> {
    let list = object.get("consents").or_else(|| object.get("consentDetails")).map_or(&[][..], Value::items);
    list.iter()
        .filter_map(|item| {
            let item = item.as_object()?;
            let name = text_field(item, "consentName").or_else(|| text_field(item, "name"))?;
            Some(SmConsent {
                // Consents are matched to `new_consent_<name>` columns, whose names are ASCII, so
                // ASCII upper-casing matches what `to_uppercase` would; its Unicode tables would
                // cost the wasm kilobytes.
                name: name.to_ascii_uppercase(),
                accepted: item.get("consentAccept").and_then(flag).unwrap_or(false),
                opted_out: item.get("optOut").and_then(flag).unwrap_or(false),
                date: item.get("agreementDate").or_else(|| item.get("modifiedOn")).and_then(number),
            })
        })
        .collect()
}

/// A `{name: value}` map (requests) or a `[{name, value}]` list (responses).
fn properties(value: Option<&Value>) -> SortedMap<String, String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let mut properties = SortedMap::new();
    match value {
        Some(Value::Object(map)) => properties.extend(map.iter().filter_map(|(k, v)| Some((k.clone(), as_text(v)?)))),
        Some(Value::Array(items)) => properties.extend(items.iter().filter_map(|item| {
            let item = item.as_object()?;
            Some((text_field(item, "name")?, as_text(item.get("value")?)?))
        })),
        _ => {}
    }
    properties
}

/// `contactTags` objects (`{tag, …}`) or `tags` strings.
fn tags(object: &Map) -> Vec<String> {
    let list = object.get("contactTags").or_else(|| object.get("tags")).map_or(&[][..], Value::items);
    list.iter()
        .filter_map(|item| match item {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => text_field(o, "tag").or_else(|| text_field(o, "tagName")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    #[test]
    fn upsert_details_serialise_only_what_is_set() {
        let details = UpsertDetails {
            contact: ContactData { email: "a@b.pl".into(), name: Some("A".into()), ..ContactData::default() },
            force_opt_out: true,
            ..UpsertDetails::default()
        };
        let value = details.to_json();
        assert_eq!(value, json!({"contact": {"email": "a@b.pl", "name": "A"}, "forceOptOut": true}));
    }

    #[test]
    fn basic_shape_parses() {
        // The sample of docs/salesmanago-api.md §3.4.
        let value = json!({
            "name": "Banan", "email": "Test@Mail.com", "phone": "+393331231234", "fax": null,
            "score": 90, "state": "PROSPECT", "optedOut": false, "optedOutPhone": true,
            "deleted": false, "invalid": false, "company": null, "externalId": "152631",
            "address": null, "contactId": "017ba22b-85ca-11ed-9d06-40a6b73c97e4",
            "birthdayYear": "1984", "birthdayMonth": "8", "birthdayDay": "4",
            "modifiedOn": 1672327453000_u64, "createdOn": 1672133817000_u64, "lastVisit": null});
        let contact = SmContact::from_json(&value).unwrap();
        assert_eq!(contact.id.as_deref(), Some("017ba22b-85ca-11ed-9d06-40a6b73c97e4"));
        assert_eq!(contact.email.as_deref(), Some("test@mail.com"));
        assert_eq!(contact.fax, None);
        assert_eq!(contact.birthday, Some((Some(1984), 8, 4)));
        assert_eq!((contact.opted_out, contact.opted_out_phone), (Some(false), Some(true)));
        assert_eq!(contact.address, Address::default());
        assert_eq!(contact.modified_on, Some(1672327453000));
        assert_eq!((contact.score, contact.state.as_deref(), contact.last_visit), (Some(90), Some("PROSPECT"), None));
    }

    #[test]
    fn list_card_shape_parses() {
        // The VFIBER sample of §3.4: `id`, properties as a list, contactTags objects.
        let value = json!({
            "id": "d51bd57f", "email": "excont@mailprovider.com", "phone": null,
            "address": {"streetAddress": null, "zipCode": null, "city": "New York", "country": null},
            "birthdayYear": null, "birthdayMonth": null, "birthdayDay": null,
            "contactTags": [{"tag": "IGEN", "tagName": "IGEN", "score": 1}],
            "properties": [{"name": "Nem", "value": "Nő"}, {"name": "n", "value": 3}],
            "consents": [{"consentName": "marketing", "consentAccept": true, "optOut": false, "agreementDate": 5}],
            "modifiedOn": "1487842709000", "unknownField": {"x": 1}});
        let contact = SmContact::from_json(&value).unwrap();
        assert_eq!(contact.id.as_deref(), Some("d51bd57f"));
        assert_eq!(contact.address.city.as_deref(), Some("New York"));
        assert_eq!(contact.birthday, None);
        assert_eq!(contact.tags, ["IGEN"]);
        assert_eq!(contact.properties["Nem"], "Nő");
        assert_eq!(contact.properties["n"], "3");
        assert_eq!(
            contact.consents,
            [SmConsent { name: "MARKETING".into(), accepted: true, opted_out: false, date: Some(5) }]
        );
        assert_eq!(contact.modified_on, Some(1487842709000));
    }

    #[test]
    fn awkward_values_are_tolerated() {
        let value = json!({"contactId": 12345, "name": "  ", "optedOut": "true", "birthday": "0229",
            "properties": {"a": "1", "b": null}, "tags": ["X", 5]});
        let contact = SmContact::from_json(&value).unwrap();
        assert_eq!(contact.id.as_deref(), Some("12345"));
        assert_eq!(contact.name, None, "blank is absent");
        assert_eq!(contact.opted_out, Some(true));
        assert_eq!(contact.birthday, Some((None, 2, 29)));
        assert_eq!(contact.properties.len(), 1);
        assert_eq!(contact.tags, ["X"]);
        assert_eq!(SmContact::from_json(&json!("x")), None);
        assert_eq!(SmContact::from_json(&json!({"birthday": "1984-08-04"})).unwrap().birthday, None);
    }
}
