//! A contact change as Dataverse pushes it to a webhook: the `RemoteExecutionContext` it posts
//! as JSON (Microsoft's "Use webhooks" documentation shows one): `MessageName`,
//! `PrimaryEntityName`, `PrimaryEntityId`, `Depth`, `CorrelationId`, `InitiatingUserId`,
//! `InputParameters` (a list of `{key, value}`, `Target` an `Entity` whose `Attributes` are
//! `{key, value}` pairs), `PreEntityImages` and `PostEntityImages` (`{key, value: Entity}`).
//! Values come in the Organization service's data-contract shapes, which are read here into the
//! Web API's: `/Date(ms)/` as an ISO time, references as their id, option sets and money as
//! their number. When the payload is over 256 KB, Dataverse says so in the
//! `x-ms-dynamics-msg-size-exceeded` header and drops the parameters and images.

use crate::core::dataverse::schema::contact;
use crate::core::json::{self, Map, Value};
use crate::core::sync::iso_datetime;
use crate::prelude::*;

/// The header Dataverse sets when it cut the payload for size.
pub const SIZE_EXCEEDED_HEADER: &str = "x-ms-dynamics-msg-size-exceeded";

/// What happened to the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It was created.
    Create,
    /// It was changed.
    Update,
    /// It was deleted.
    Delete,
    /// Another message, which the integration does not act on.
    Other(String),
}

/// One change of one row, as the webhook received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub change: Change,
    /// The table's logical name.
    pub table: String,
    /// The row's id, lower case without braces.
    pub id: String,
    /// The operation's id: a delivery repeated carries the same one.
    pub operation: Option<String>,
    /// Ties together what one request caused.
    pub correlation: Option<String>,
    /// How deep in a chain of plug-ins and flows it happened (1: a user or a client).
    pub depth: u32,
    /// The user whose request caused it.
    pub initiating_user: Option<String>,
    /// The columns the request set (`Target`), as the Web API writes them.
    pub target: Map,
    /// The row before (`PreEntityImages`, the first image), when the step asked for one.
    pub before: Option<Map>,
    /// The row after (`PostEntityImages`, the first image), when the step asked for one.
    pub after: Option<Map>,
    /// Dataverse dropped the parameters and images for size: read the row back.
    pub truncated: bool,
}

fn text(object: &Map, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn guid(text: &str) -> String {
    text.trim().trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase()
}

/// The value of `key` in a data-contract list of `{key, value}` pairs.
fn pair<'a>(list: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    list?.as_array()?.iter().find(|p| p.get("key").and_then(Value::as_str) == Some(key))?.get("value")
}

/// A data-contract value as the Web API would give it.
fn web_api_value(value: &Value) -> Value {
    match value {
        Value::String(s) => match s.strip_prefix("/Date(").and_then(|rest| rest.strip_suffix(")/")) {
            // `/Date(1506384247000)/` or with an offset, `/Date(1506409448000-0700)/`: the ms are UTC.
            Some(inner) => {
                let ms: String = inner.chars().take_while(char::is_ascii_digit).collect();
                ms.parse::<u64>().map_or(value.clone(), |ms| Value::from(iso_datetime(ms)))
            }
            None => value.clone(),
        },
        Value::Object(object) => {
            let kind = object.get("__type").and_then(Value::as_str).unwrap_or_default();
            if kind.starts_with("EntityReference") || (object.contains_key("LogicalName") && object.contains_key("Id"))
            {
                object.get("Id").and_then(Value::as_str).map_or(Value::Null, |id| Value::from(guid(id)))
            } else if let Some(inner) = object.get("Value") {
                inner.clone()
            } else {
                value.clone()
            }
        }
        other => other.clone(),
    }
}

/// An `Entity`'s attributes as a Web API row.
fn entity(value: &Value) -> Option<Map> {
    let attributes = value.get("Attributes")?.as_array()?;
    let mut row = Map::new();
    for attribute in attributes {
        if let Some(key) = attribute.get("key").and_then(Value::as_str) {
            row.insert(key.to_ascii_lowercase(), attribute.get("value").map_or(Value::Null, web_api_value));
        }
    }
    Some(row)
}

/// The first image of a list of images.
fn image(list: Option<&Value>) -> Option<Map> {
    entity(list?.as_array()?.first()?.get("value")?)
}

impl Event {
    /// Reads a webhook's body; `truncated` is whether [`SIZE_EXCEEDED_HEADER`] came with it.
    ///
    /// Fails, saying what is wrong, when the body is not an execution context.
    pub fn parse(body: &str, truncated: bool) -> Result<Event, String> {
        let Value::Object(context) = json::from_str(body).map_err(|e| format!("not JSON ({e})"))? else {
            return Err("not a JSON object".into());
        };
        let message = text(&context, "MessageName").ok_or("no MessageName")?;
        let change = match message.as_str() {
            "Create" => Change::Create,
            "Update" => Change::Update,
            "Delete" => Change::Delete,
            _ => Change::Other(message),
        };
        let table = text(&context, "PrimaryEntityName").ok_or("no PrimaryEntityName")?.to_ascii_lowercase();
        let id = guid(&text(&context, "PrimaryEntityId").ok_or("no PrimaryEntityId")?);
        let target = pair(context.get("InputParameters"), "Target");
        Ok(Event {
            change,
            table,
            id,
            operation: text(&context, "OperationId").map(|o| guid(&o)),
            correlation: text(&context, "CorrelationId").map(|c| guid(&c)),
            depth: context.get("Depth").and_then(Value::as_u64).unwrap_or(1) as u32,
            initiating_user: text(&context, "InitiatingUserId").map(|u| guid(&u)),
            target: target.and_then(entity).unwrap_or_default(),
            before: image(context.get("PreEntityImages")),
            after: image(context.get("PostEntityImages")),
            truncated,
        })
    }

    /// The row as it is after the change, as far as the event tells: the post-image, with the
    /// columns the request set over it.
    pub fn row_after(&self) -> Map {
        let mut row = self.after.clone().unwrap_or_default();
        for (column, value) in self.target.iter() {
            row.insert(column.clone(), value.clone());
        }
        row
    }
}

/// What to do about an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Send the contact as this row (what the event says of it after the change), with the
    /// columns the request set.
    Send {
        /// The row after the change.
        row: Map,
        /// The columns the request set: a change made there (an opt-in among them) is deliberate.
        changed: Vec<String>,
    },
    /// The event does not say enough (cut for size, or no post-image with the e-mail): read the
    /// contact back first.
    ReadBack(String),
    /// Remove the contact with this e-mail from SALESmanago (delete it or opt it out, as set).
    Remove {
        /// Its e-mail, from the pre-image.
        email: String,
    },
    /// Nothing to do, and why (for the log).
    Ignore(&'static str),
}

/// The columns the synchronisation itself writes on a contact: a change of only these is the
/// integration's own write-back, not news for SALESmanago.
const OWN_COLUMNS: [&str; 7] = [
    contact::SALESMANAGO_ID,
    contact::SALESMANAGO_EMAIL,
    contact::SYNCED_ON,
    contact::SYNC_STATUS,
    contact::LAST_ERROR,
    contact::CONSENT_BASE,
    contact::MAPPED_WITH,
];

/// Decides what `event` asks of SALESmanago. `own_user` is the application user the integration
/// writes back as: its changes never travel back (no echo).
pub fn plan(event: &Event, own_user: Option<&str>) -> Plan {
    if event.table != contact::TABLE {
        return Plan::Ignore("not a contact");
    }
    if own_user.is_some_and(|own| event.initiating_user.as_deref() == Some(&guid(own))) {
        return Plan::Ignore("the integration's own write-back");
    }
    match event.change {
        Change::Other(_) => Plan::Ignore("a message the integration does not act on"),
        Change::Delete => match event.before.as_ref().and_then(|b| text(b, contact::EMAIL)) {
            Some(email) => Plan::Remove { email },
            None => Plan::Ignore("no pre-image with the e-mail: register the Delete step with a pre-image"),
        },
        Change::Create | Change::Update => {
            let changed: Vec<String> = event.target.keys().filter(|c| *c != contact::ID).cloned().collect();
            if event.change == Change::Update
                && !changed.is_empty()
                && changed.iter().all(|c| OWN_COLUMNS.contains(&c.as_str()))
            {
                return Plan::Ignore("only the synchronisation's own columns changed");
            }
            // Pull changes and Pull consents stamp what they write from SALESmanago with the
            // time of the synchronisation: those values are the synchronised state already.
            if event.change == Change::Update && changed.iter().any(|c| c == contact::SYNCED_ON) {
                return Plan::Ignore("the values came from SALESmanago (a pull), the synchronised state");
            }
            let row = event.row_after();
            if event.truncated || text(&row, contact::EMAIL).is_none() {
                return Plan::ReadBack(event.id.clone());
            }
            Plan::Send { row, changed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Update of a contact in the shape of the sample on Microsoft's "Use webhooks" page.
    const UPDATE: &str = include_str!("event_samples/update.json");
    const DELETE: &str = include_str!("event_samples/delete.json");

    #[test]
    fn an_update_reads_as_the_web_api_row_it_stands_for() {
        let event = Event::parse(UPDATE, false).unwrap();
        assert_eq!(event.change, Change::Update);
        assert_eq!(event.table, "contact");
        assert_eq!(event.id, "2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10");
        assert_eq!(event.operation.as_deref(), Some("91c2e0aa-5b7d-4e0b-8f0e-3d2c1b0a9f88"));
        assert_eq!(event.initiating_user.as_deref(), Some("5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"));
        assert_eq!(event.depth, 1);
        assert_eq!(event.target["firstname"], "Jan");
        assert_eq!(event.target["modifiedon"], "2017-09-26T00:04:07Z", "a /Date(ms)/ as an ISO time");
        assert_eq!(event.target["modifiedby"], "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b", "a reference as its id");
        assert_eq!(event.target["donotbulkemail"], true);
        assert_eq!(event.target["new_salesmanagosyncstatus"], 100000000, "an option set as its number");
        let row = event.row_after();
        assert_eq!((row["fullname"].as_str(), row["firstname"].as_str()), (Some("Jan Kowalski"), Some("Jan")));
    }

    #[test]
    fn a_delete_carries_its_pre_image_and_a_cut_payload_says_so() {
        let event = Event::parse(DELETE, false).unwrap();
        assert_eq!(event.change, Change::Delete);
        let before = event.before.expect("the pre-image");
        assert_eq!(before["emailaddress1"], "jan.kowalski@example.com");
        assert!(event.target.is_empty() && event.after.is_none());
        let cut = r#"{"MessageName":"Update","PrimaryEntityName":"contact","PrimaryEntityId":"{2B0F6C1E-7A31-4C55-9D1A-0C6F1E2A9B10}","Depth":2}"#;
        let event = Event::parse(cut, true).unwrap();
        assert!(event.truncated && event.target.is_empty());
        assert_eq!((event.id.as_str(), event.depth), ("2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10", 2));
        assert!(Event::parse("[]", false).is_err());
        assert!(Event::parse(r#"{"MessageName":"Update"}"#, false).unwrap_err().contains("PrimaryEntityName"));
    }

    #[test]
    fn each_event_gets_its_plan() {
        let update = Event::parse(UPDATE, false).unwrap();
        match plan(&update, None) {
            Plan::Send { row, changed } => {
                assert_eq!(row["emailaddress1"], "jan.kowalski@example.com");
                assert!(changed.contains(&"donotbulkemail".to_owned()) && !changed.contains(&"contactid".to_owned()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plan(&update, Some("{5E6F7A8B-1C2D-4E3F-9A0B-1C2D3E4F5A6B}")),
            Plan::Ignore("the integration's own write-back")
        );
        let delete = Event::parse(DELETE, false).unwrap();
        assert_eq!(plan(&delete, None), Plan::Remove { email: "jan.kowalski@example.com".into() });
        let mut no_image = delete.clone();
        no_image.before = None;
        assert!(matches!(plan(&no_image, None), Plan::Ignore(reason) if reason.contains("pre-image")));
        let mut cut = update.clone();
        cut.truncated = true;
        assert_eq!(plan(&cut, None), Plan::ReadBack("2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10".into()));
        let mut no_post = update.clone();
        no_post.after = None;
        assert_eq!(plan(&no_post, None), Plan::ReadBack(update.id.clone()), "no e-mail to send by");
        let mut own = update.clone();
        own.target =
            json::from_str(r#"{"contactid":"x","new_salesmanagosyncstatus":100000000,"new_salesmanagoid":"sm-1"}"#)
                .unwrap()
                .as_object()
                .unwrap()
                .clone();
        assert_eq!(plan(&own, None), Plan::Ignore("only the synchronisation's own columns changed"));
        let mut pulled = update.clone();
        pulled.target.insert("new_consent_marketing".into(), true.into());
        pulled.target.insert(contact::SYNCED_ON.into(), "2026-11-30T05:00:00Z".into());
        assert!(
            matches!(plan(&pulled, None), Plan::Ignore(reason) if reason.contains("pull")),
            "a pull's write holds SALESmanago's values: no echo"
        );
        let mut account = update;
        account.table = "account".into();
        assert_eq!(plan(&account, None), Plan::Ignore("not a contact"));
    }
}
