//! A call of a SALESmanago automation rule's action "Send information about executed rule
//! (webhooks)": one contact the rule ran for. What the call says, as the evidence has it
//! (`docs/salesmanago-api.md` §6): a `POST` of a JSON object `{id, name, contactId,
//! description, email, phone, company}`, every field a string (empty ones perhaps `""` or
//! `null`), optionally with HTTP Basic authentication. It carries no state (no opt-out, no
//! consent, no time): the contact is read from SALESmanago after it, so a repeated or late call
//! applies the contact as SALESmanago holds it then, and changes nothing twice.

use crate::core::json::{self, Value};
use crate::core::mapping::normalize;
use crate::prelude::*;

/// The longest SALESmanago id taken (a UUID is 36 characters).
const MAX_ID: usize = 64;
/// The longest rule name kept (for the log and the answer).
const MAX_NAME: usize = 200;

/// The contact a rule's call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCall {
    /// The SALESmanago contact id (`contactId`), when it is one.
    pub contact: Option<String>,
    /// The contact's e-mail, normalised, when it is a valid address.
    pub email: Option<String>,
    /// The rule's name (`name`, else its id), cut to 200 characters: what the log says.
    pub rule: String,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleProblem {
    /// The body is not one JSON object (or repeats a field).
    NotJson(String),
    /// A field that must be a string is not.
    NotText(&'static str),
    /// Neither a contact id nor an e-mail names the contact.
    NoContact,
}

impl ::core::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        match self {
            RuleProblem::NotJson(detail) => write!(f, "not a JSON object: {detail}"),
            RuleProblem::NotText(field) => write!(f, "the field {field} is not text"),
            RuleProblem::NoContact => f.write_str("neither contactId nor email names a contact"),
        }
    }
}

impl RuleCall {
    /// Reads a call's body. A contact id that is no id (not 1 to 64 letters, digits and
    /// dashes) and an address that is no e-mail count as absent; one of them must name the
    /// contact.
    pub fn parse(body: &str) -> Result<RuleCall, RuleProblem> {
        let value = json::from_str_unique(body).map_err(|e| RuleProblem::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else { return Err(RuleProblem::NotJson("not an object".into())) };
        let text = |field: &'static str| match fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim()).filter(|s| !s.is_empty())),
            Some(_) => Err(RuleProblem::NotText(field)),
        };
        let contact = text("contactId")?.filter(|id| is_id(id)).map(str::to_ascii_lowercase);
        let email = text("email")?.and_then(|e| normalize::email(e).ok());
        let rule = text("name")?.or(text("id")?).unwrap_or_default().chars().take(MAX_NAME).collect();
        if contact.is_none() && email.is_none() {
            return Err(RuleProblem::NoContact);
        }
        Ok(RuleCall { contact, email, rule })
    }
}

fn is_id(id: &str) -> bool {
    id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_call_names_its_contact() {
        let body = r#"{"id":"ff9f1f0d-ffb7-4a00-9d84-999d2657f303","name":"Opted out → Dynamics",
            "contactId":"5B1C2D3E-0000-4000-8000-000000000001","description":"",
            "email":" Jan.Kowalski@Example.com ","phone":"+48600100200","company":"ACME"}"#;
        let call = RuleCall::parse(body).unwrap();
        assert_eq!(call.contact.as_deref(), Some("5b1c2d3e-0000-4000-8000-000000000001"));
        assert_eq!(call.email.as_deref(), Some("jan.kowalski@example.com"));
        assert_eq!(call.rule, "Opted out → Dynamics");
    }

    #[test]
    fn empty_and_missing_fields_are_absent_but_one_must_name_the_contact() {
        let by_email = RuleCall::parse(r#"{"id":"r1","contactId":null,"email":"a@b.pl","phone":""}"#).unwrap();
        assert_eq!((by_email.contact, by_email.email.as_deref(), by_email.rule.as_str()), (None, Some("a@b.pl"), "r1"));
        let by_id = RuleCall::parse(r#"{"contactId":"abc-123","email":"not an address"}"#).unwrap();
        assert_eq!((by_id.contact.as_deref(), by_id.email), (Some("abc-123"), None));
        for nobody in [r#"{"id":"r1"}"#, r#"{"contactId":"a/../b","email":""}"#, r#"{"contactId":"x?y=1"}"#] {
            assert_eq!(RuleCall::parse(nobody), Err(RuleProblem::NoContact), "{nobody}");
        }
    }

    #[test]
    fn what_is_not_a_call_is_refused_with_its_reason() {
        assert!(matches!(RuleCall::parse("contactId=1"), Err(RuleProblem::NotJson(_))));
        assert!(matches!(RuleCall::parse("[1]"), Err(RuleProblem::NotJson(_))));
        assert!(matches!(RuleCall::parse(r#"{"email":"a@b.pl","email":"c@d.pl"}"#), Err(RuleProblem::NotJson(_))));
        assert_eq!(RuleCall::parse(r#"{"contactId":7}"#), Err(RuleProblem::NotText("contactId")));
        let long = format!(r#"{{"contactId":"{}"}}"#, "a".repeat(65));
        assert_eq!(RuleCall::parse(&long), Err(RuleProblem::NoContact));
        let message = RuleProblem::NotText("email").to_string();
        assert_eq!(message, "the field email is not text");
    }
}
