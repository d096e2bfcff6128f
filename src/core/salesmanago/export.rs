//! SALESmanago's export job, the one way public clients read consents back (reference,
//! "Corrections"): `contact/export/data` asks for a file and answers a `requestId`;
//! `job/status` is asked until it answers a `fileUrl`; the file is a JSON list of
//! `{<contactId>: {"contactData": {…}, …}}`.
//!
//! What public evidence does not fix, assumed here and nowhere else:
//! - **Which contacts:** public clients select contacts by tag only
//!   (`{"addresseeType":"tag","value":…}`), so the engine selects the contacts it has sent,
//!   which carry [`SYNC_TAG`].
//! - **The shape of the CONSENTS part:** the shape consents are written in (`consentName`,
//!   `consentAccept`, `optOut`, `agreementDate`), under `consents` (or `consentDetails`) in
//!   each entry.
//! - **The opt-outs** come in `contactData` as `contact/basic` has them (`optedOut`,
//!   `optedOutPhone`).

use crate::core::json::{self, Map, Value};
use crate::object;

use super::contact::SmContact;
use super::envelope::{invalid, Payload};
use super::error::SmError;
use super::operation::Operation;

/// The tag every contact the engine sends carries, so that the export job can select them.
pub const SYNC_TAG: &str = "DYNAMICS365";

/// `contact/export/data`: the contacts tagged [`SYNC_TAG`], with their data and consents; yields
/// the job's `requestId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportConsents;

impl Operation for ExportConsents {
    type Output = String;
    fn method(&self) -> &'static str {
        "contact/export/data"
    }
    fn body(&self) -> Map {
        let selection = vec![object! {"addresseeType": "tag", "value": SYNC_TAG}];
        let data = vec![object! {"dataType": "CONTACT"}, object! {"dataType": "CONSENTS"}];
        let body = object! {"contacts": selection, "data": data};
        match body {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
    fn parse(&self, payload: Payload) -> Result<String, SmError> {
        match payload.fields.get("requestId") {
            Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(invalid("no `requestId`")),
        }
    }
}

/// `job/status`: the file's address once the job is done; `None` while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The job's `requestId`.
    pub request_id: String,
}

impl Operation for JobStatus {
    type Output = Option<String>;
    fn method(&self) -> &'static str {
        "job/status"
    }
    fn needs_owner(&self) -> bool {
        false
    }
    fn body(&self) -> Map {
        // Sent back as it came: a number when it was one.
        let id = match self.request_id.parse::<u64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::from(self.request_id.as_str()),
        };
        let mut body = Map::new();
        body.insert("requestId".into(), id);
        body
    }
    fn parse(&self, payload: Payload) -> Result<Option<String>, SmError> {
        match payload.fields.get("fileUrl").and_then(Value::as_str).map(str::trim) {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(Some(url.to_owned())),
            Some(url) if !url.is_empty() => Err(invalid("`fileUrl` is not an address")),
            _ => Ok(None),
        }
    }
}

/// The contacts of an export file, each with its id, its opt-outs and its consents listed.
///
/// Fails, saying what is wrong, when the text is not a list of objects.
pub fn read_file(text: &str) -> Result<Vec<SmContact>, String> {
    let Value::Array(entries) = json::from_str(text).map_err(|e| e.to_string())? else {
        return Err("the export file is not a list".into());
    };
    let mut contacts = Vec::new();
    for entry in entries {
        let Value::Object(entry) = entry else { return Err("an export entry is not an object".into()) };
        for (id, parts) in entry.iter() {
            let Some(parts) = parts.as_object() else { continue };
            let mut data = parts.get("contactData").and_then(Value::as_object).cloned().unwrap_or_default();
            for key in ["consents", "consentDetails"] {
                if let Some(list) = parts.get(key) {
                    data.insert("consents".into(), list.clone());
                }
            }
            if let Some(mut contact) = SmContact::from_json(&Value::Object(data)) {
                contact.id = Some(id.clone());
                contacts.push(contact);
            }
        }
    }
    Ok(contacts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::consent::{Key, Theirs};
    use crate::core::json::json;

    fn payload(value: Value) -> Payload {
        Payload { fields: value.as_object().unwrap().clone(), messages: Vec::new() }
    }

    #[test]
    fn the_export_asks_for_the_tagged_contacts_data_and_consents() {
        let body = Value::Object(ExportConsents.body());
        assert_eq!(
            body,
            json!({"contacts": [{"addresseeType": "tag", "value": "DYNAMICS365"}],
                   "data": [{"dataType": "CONTACT"}, {"dataType": "CONSENTS"}]})
        );
        assert_eq!(ExportConsents.parse(payload(json!({"requestId": 1234}))).unwrap(), "1234");
        assert!(ExportConsents.parse(payload(json!({}))).is_err());
    }

    #[test]
    fn the_status_says_when_the_file_is_ready() {
        let status = JobStatus { request_id: "1234".into() };
        assert_eq!(Value::Object(status.body()), json!({"requestId": 1234}));
        assert_eq!(status.parse(payload(json!({"message": ["in progress"]}))).unwrap(), None);
        let ready = status.parse(payload(json!({"message": [], "fileUrl": "https://files.example/x.json"})));
        assert_eq!(ready.unwrap().as_deref(), Some("https://files.example/x.json"));
        assert!(status.parse(payload(json!({"fileUrl": "javascript:alert(1)"}))).is_err());
    }

    #[test]
    fn the_file_gives_each_contact_its_opt_outs_and_consents() {
        let text = r#"[{"u-1": {"contactData": {"email": "A@B.pl", "optedOut": true, "optedOutPhone": false},
                        "consents": [{"consentName": "marketing", "consentAccept": false, "optOut": true, "agreementDate": 5}]}},
                       {"u-2": {"contactData": {"email": "c@d.pl"}}}]"#;
        let contacts = read_file(text).unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].id.as_deref(), Some("u-1"));
        assert_eq!(contacts[0].email.as_deref(), Some("a@b.pl"));
        assert_eq!(contacts[0].theirs(&Key::Newsletter), Theirs::Known(Some(false)));
        assert_eq!(contacts[0].theirs(&Key::Consent("MARKETING".into())), Theirs::Known(Some(false)));
        assert_eq!(contacts[1].theirs(&Key::Consent("MARKETING".into())), Theirs::Unknown, "no consents part");
        assert!(read_file("{}").is_err());
        assert!(read_file("[1]").is_err());
    }
}
