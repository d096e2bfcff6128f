//! SALESmanago's export job, the one way public clients read consents back (`docs/salesmanago-api.md`
//! §3.7): `contact/export/data` asks for a file and answers a `requestId`;
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
use crate::prelude::*;

use super::contact::{SmConsent, SmContact};
use super::endpoint::is_file_address;
use super::envelope::{invalid, Payload};
use super::error::SmError;
use super::operation::{fields, Operation};

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
        fields(object! {"contacts": selection, "data": data})
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
            Some(url) if is_file_address(url) || super::relay::is_file_path(url) => Ok(Some(url.to_owned())),
            Some(url) if !url.is_empty() => Err(invalid("`fileUrl` is not an address the engine may download")),
            _ => Ok(None),
        }
    }
}

/// A contact of an export file: what Pull consents needs of it, and no more, so that a file of
/// a million contacts fits in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The SALESmanago id (the entry's key).
    pub id: String,
    /// The e-mail, lower-cased.
    pub email: Option<String>,
    /// Unsubscribed from the newsletter.
    pub opted_out: Option<bool>,
    /// Unsubscribed from SMS.
    pub opted_out_phone: Option<bool>,
    /// The consents, when the entry had a consents part.
    pub consents: Option<Vec<SmConsent>>,
}

/// Reads an export file as it arrives, part by part: each entry of the list is parsed once its
/// last byte is in, so the file is never held whole, only the entry being read.
#[derive(Debug, Default)]
pub struct FileReader {
    state: State,
    /// Nesting depth inside the current entry.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The current entry's bytes.
    entry: Vec<u8>,
    /// The contacts read and not yet taken.
    read: Vec<Exported>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the list's `[` (a byte-order mark and white space allowed).
    #[default]
    Before,
    /// Between entries: an entry, a comma or the closing `]`.
    Between,
    /// Inside an entry.
    Entry,
    /// After the list: white space only.
    After,
}

impl FileReader {
    /// Reads the next part of the file.
    ///
    /// Fails, saying what is wrong, when the file is not a list of objects.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < bytes.len() {
            let byte = bytes[at];
            match self.state {
                State::Before => match byte {
                    b'[' => self.state = State::Between,
                    0xEF | 0xBB | 0xBF => {}
                    b if b.is_ascii_whitespace() => {}
                    _ => return Err("the export file is not a list".into()),
                },
                State::Between => match byte {
                    b'{' => {
                        self.state = State::Entry;
                        self.depth = 0;
                        continue;
                    }
                    b']' => self.state = State::After,
                    b',' => {}
                    b if b.is_ascii_whitespace() => {}
                    _ => return Err("an export entry is not an object".into()),
                },
                State::Entry => {
                    // The entry's bytes in this part: parsed where they lie when the entry is
                    // whole in it, else gathered until its last byte comes.
                    let rest = &bytes[at..];
                    let Some(end) = self.entry_end(rest) else {
                        self.entry.extend_from_slice(rest);
                        return Ok(());
                    };
                    if self.entry.is_empty() {
                        self.entry_read(&rest[..end])?;
                    } else {
                        self.entry.extend_from_slice(&rest[..end]);
                        let entry = ::core::mem::take(&mut self.entry);
                        self.entry_read(&entry)?;
                    }
                    self.state = State::Between;
                    at += end;
                    continue;
                }
                State::After if byte.is_ascii_whitespace() => {}
                State::After => return Err("the export file goes on after its list".into()),
            }
            at += 1;
        }
        Ok(())
    }

    /// How many of `bytes` the current entry takes: `Some` when its closing brace is among them.
    fn entry_end(&mut self, bytes: &[u8]) -> Option<usize> {
        for (at, &byte) in bytes.iter().enumerate() {
            if self.in_string {
                match byte {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The contacts read since the last call.
    pub fn take(&mut self) -> Vec<Exported> {
        ::core::mem::take(&mut self.read)
    }

    /// Checks that the file ended where its list did.
    ///
    /// Fails when the file stopped inside it.
    pub fn finish(&self) -> Result<(), String> {
        match self.state {
            State::After => Ok(()),
            _ => Err("the export file ends before its list does".into()),
        }
    }

    fn entry_read(&mut self, bytes: &[u8]) -> Result<(), String> {
        let text = ::core::str::from_utf8(bytes).map_err(|_| "an export entry is not UTF-8".to_owned())?;
        let Value::Object(entry) = json::from_str(text).map_err(|e| e.to_string())? else {
            return Err("an export entry is not an object".into());
        };
        for (id, parts) in entry {
            let Value::Object(mut parts) = parts else { continue };
            let mut data = match parts.remove("contactData") {
                Some(Value::Object(data)) => data,
                _ => Map::new(),
            };
            for key in ["consents", "consentDetails"] {
                if let Some(list) = parts.remove(key) {
                    data.insert("consents".into(), list);
                }
            }
            if let Some(contact) = SmContact::from_json(&Value::Object(data)) {
                let consents = contact.consents_listed.then_some(contact.consents);
                let (opted_out, opted_out_phone) = (contact.opted_out, contact.opted_out_phone);
                self.read.push(Exported { id, email: contact.email, opted_out, opted_out_phone, consents });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    /// The contacts of a whole export file, read in one part.
    fn read_file(text: &str) -> Result<Vec<Exported>, String> {
        let mut reader = FileReader::default();
        reader.feed(text.as_bytes())?;
        reader.finish()?;
        Ok(reader.take())
    }

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
        let marketing = SmConsent { name: "MARKETING".into(), accepted: false, opted_out: true, date: Some(5) };
        assert_eq!(
            contacts[0],
            Exported {
                id: "u-1".into(),
                email: Some("a@b.pl".into()),
                opted_out: Some(true),
                opted_out_phone: Some(false),
                consents: Some(vec![marketing]),
            }
        );
        assert_eq!(contacts[1].consents, None, "no consents part");
        assert!(read_file("{}").is_err());
        assert!(read_file("[1]").is_err());
        assert!(read_file("[{\"u-1\": {}}").is_err(), "cut off");
        assert!(read_file("[] x").is_err());
        assert_eq!(read_file("\u{feff} [ ]\n").unwrap(), []);
    }

    #[test]
    fn a_file_read_in_parts_gives_what_it_gives_whole() {
        let text = r#"[{"u-1": {"contactData": {"email": "a@b.pl", "name": "Zo\"{[ł"}, "consents": []}},
                       {"u-2": {"contactData": {"email": "c@d.pl", "optedOutPhone": "true"}}}]"#;
        let whole = read_file(text).unwrap();
        // Every split, including inside the multi-byte `ł` and after the escaped quote.
        for cut in 0..=text.len() {
            let mut reader = FileReader::default();
            reader.feed(&text.as_bytes()[..cut]).unwrap();
            let mut parts = reader.take();
            reader.feed(&text.as_bytes()[cut..]).unwrap();
            reader.finish().unwrap();
            parts.extend(reader.take());
            assert_eq!(parts, whole, "cut at {cut}");
        }
        // A byte at a time: every entry gathered across parts.
        let mut reader = FileReader::default();
        let mut parts = Vec::new();
        for byte in text.as_bytes() {
            reader.feed(::core::slice::from_ref(byte)).unwrap();
            parts.extend(reader.take());
        }
        reader.finish().unwrap();
        assert_eq!(parts, whole, "a byte at a time");
        assert_eq!(whole[0].consents, Some(Vec::new()));
        assert_eq!(whole[1].opted_out_phone, Some(true));
    }
}
