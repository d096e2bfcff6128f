//! A contact's activity as SALESmanago's full contact card (`contact/listById`) carries it:
//! every assumption about its shape is here (`docs/salesmanago-api.md` §3.10).
//!
//! What is known: the card has `emailMessages`, `contactVisits` and `contactExtEvents` arrays
//! (a real `list` answer has them, empty); a public .NET client reads a visit as `{time, url,
//! duration, visitSource, host, conversationId}`; a public Python client reads an external
//! event's `date` and `contactExtEventType`. **Assumed**, as no public source shows them: an
//! e-mail item is one message sent to the contact, `{id, subject, sentOn, openedOn, clickedOn,
//! bouncedOn, unsubscribedOn}` (times in ms, `null` when it did not happen); an external event's
//! id is `eventId` (what adding one answers) or `id`. Items without a time are passed over;
//! an item without an id gets one from what it is (its time, its address), so the same item
//! read twice is the same event.

use crate::core::activity::{Event, Kind};
use crate::core::json::{Map, Value};
use crate::prelude::*;

use super::contact::number;

/// Every event `card` lists, in the order it lists them.
pub fn events(card: &Map) -> Vec<Event> {
    let mut out = Vec::new();
    for item in items(card, "emailMessages") {
        emails(item, &mut out);
    }
    for item in items(card, "contactVisits") {
        out.extend(visit(item));
    }
    for item in items(card, "contactExtEvents") {
        out.extend(external(item));
    }
    out
}

fn items<'a>(card: &'a Map, key: &str) -> impl Iterator<Item = &'a Map> {
    card.get(key).map_or(&[][..], Value::items).iter().filter_map(Value::as_object)
}

/// A non-blank string (or number) field, trimmed.
fn text(item: &Map, key: &str) -> Option<String> {
    match item.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn time(item: &Map, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|key| item.get(key).and_then(number)).filter(|ms| *ms > 0)
}

/// One e-mail sent to the contact: an event for each thing that happened to it.
fn emails(item: &Map, out: &mut Vec<Event>) {
    let subject = text(item, "subject").unwrap_or_default();
    let sent = time(item, &["sentOn", "date"]);
    let Some(id) =
        text(item, "id").or_else(|| text(item, "emailId")).or_else(|| sent.map(|ms| format!("{ms}:{subject}")))
    else {
        return;
    };
    let moments = [
        (Kind::Sent, sent),
        (Kind::Opened, time(item, &["openedOn"])),
        (Kind::Clicked, time(item, &["clickedOn"])),
        (Kind::Bounced, time(item, &["bouncedOn"])),
        (Kind::Unsubscribed, time(item, &["unsubscribedOn", "optedOutOn"])),
    ];
    for (kind, at) in moments {
        if let Some(at_ms) = at {
            out.push(Event { kind, id: id.clone(), at_ms, subject: subject.clone(), details: Vec::new() });
        }
    }
}

fn details(item: &Map, names: &[&'static str]) -> Vec<(&'static str, String)> {
    names.iter().filter_map(|name| text(item, name).map(|value| (*name, value))).collect()
}

fn visit(item: &Map) -> Option<Event> {
    let at_ms = time(item, &["time", "date"])?;
    let url = text(item, "url").or_else(|| text(item, "host")).unwrap_or_default();
    let id = text(item, "conversationId").or_else(|| text(item, "id")).unwrap_or_else(|| format!("{at_ms}:{url}"));
    let details = details(item, &["duration", "visitSource", "host"]);
    Some(Event { kind: Kind::Visit, id, at_ms, subject: url, details })
}

fn external(item: &Map) -> Option<Event> {
    let at_ms = time(item, &["date", "time"])?;
    let kind = text(item, "contactExtEventType").unwrap_or_default();
    let id = text(item, "eventId")
        .or_else(|| text(item, "id"))
        .unwrap_or_else(|| format!("{at_ms}:{kind}:{}", text(item, "externalId").unwrap_or_default()));
    let subject = text(item, "description").unwrap_or_else(|| kind.clone());
    let details = details(item, &["contactExtEventType", "products", "value", "location", "externalId"]);
    Some(Event { kind: Kind::Event, id, at_ms, subject, details })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn read(card: Value) -> Vec<Event> {
        events(card.as_object().unwrap())
    }

    #[test]
    fn an_e_mail_is_an_event_for_each_thing_that_happened_to_it() {
        let found = read(json!({"emailMessages": [
            {"id": "m-1", "subject": "Spring sale", "sentOn": 1000, "openedOn": 2000, "clickedOn": null, "bouncedOn": 0},
            {"subject": "no id", "sentOn": 5000, "unsubscribedOn": "6000"},
            {"subject": "nothing happened"}
        ]}));
        let seen: Vec<_> = found.iter().map(|e| (e.kind, e.id.as_str(), e.at_ms)).collect();
        assert_eq!(
            seen,
            [
                (Kind::Sent, "m-1", 1000),
                (Kind::Opened, "m-1", 2000),
                (Kind::Sent, "5000:no id", 5000),
                (Kind::Unsubscribed, "5000:no id", 6000)
            ]
        );
        assert!(found.iter().all(|e| !e.subject.is_empty()));
    }

    #[test]
    fn visits_and_external_events_keep_their_details() {
        let found = read(json!({
            "contactVisits": [
                {"conversationId": "v-1", "time": 7000, "url": "https://shop.example.com/a", "duration": "35", "visitSource": "google", "host": "shop.example.com"},
                {"url": "https://x", "time": 8000},
                {"url": "no time"}
            ],
            "contactExtEvents": [
                {"eventId": "e-1", "contactExtEventType": "PURCHASE", "date": 9000, "description": "Order 12", "value": 199.5, "products": "p1,p2"},
                {"contactExtEventType": "MEETING", "date": 9500}
            ],
            "emailMessages": "not a list"
        }));
        assert_eq!(found.len(), 4);
        assert_eq!(
            (found[0].kind, found[0].id.as_str(), found[0].subject.as_str()),
            (Kind::Visit, "v-1", "https://shop.example.com/a")
        );
        assert_eq!(
            found[0].details,
            [("duration", "35".into()), ("visitSource", "google".into()), ("host", "shop.example.com".into())]
        );
        assert_eq!(found[1].id, "8000:https://x");
        assert_eq!((found[2].kind, found[2].id.as_str(), found[2].subject.as_str()), (Kind::Event, "e-1", "Order 12"));
        assert!(found[2].details.contains(&("value", "199.5".into())));
        assert_eq!((found[3].id.as_str(), found[3].subject.as_str()), ("9500:MEETING:", "MEETING"));
    }

    #[test]
    fn a_blank_id_is_no_id() {
        // Two items whose ids are blank are two events, each named by what it is.
        let found = read(json!({"contactVisits": [
            {"conversationId": " ", "time": 1000, "url": "https://a"},
            {"conversationId": "", "time": 2000, "url": "https://b"}
        ]}));
        let ids: Vec<_> = found.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1000:https://a", "2000:https://b"]);
    }

    #[test]
    fn a_card_without_activity_has_none() {
        assert!(read(json!({"id": "x", "contactVisits": [], "emailMessages": null})).is_empty());
    }
}
