//! SALESmanago activity on the contacts' timelines: its kinds, which of them the integration
//! record keeps and for how long, and the activity row an event becomes.
//!
//! An event's row has an id derived from the Dynamics contact and SALESmanago's event, and is
//! created only where no row has it (`If-None-Match: *`): a row is made once, whoever pulls it,
//! however often, in whatever order.

use crate::prelude::*;
use uuid::Uuid;

use crate::core::dataverse::schema::{activity, contact, integration};
use crate::core::json::{Map, Value};
use crate::core::sync::iso_datetime;

/// A kind of SALESmanago activity; its option value is the `new_kind` choice's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An e-mail was sent to the contact.
    Sent,
    /// The contact opened an e-mail.
    Opened,
    /// The contact clicked a link in an e-mail.
    Clicked,
    /// An e-mail to the contact bounced.
    Bounced,
    /// The contact unsubscribed (an e-mail's opt-out link).
    Unsubscribed,
    /// The contact visited a monitored website.
    Visit,
    /// An external event (a purchase, a meeting, a download…).
    Event,
}

impl Kind {
    /// Every kind, in option-value order.
    pub const ALL: [Kind; 7] =
        [Kind::Sent, Kind::Opened, Kind::Clicked, Kind::Bounced, Kind::Unsubscribed, Kind::Visit, Kind::Event];

    /// Its name in the integration record's list of kinds kept.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Sent => "sent",
            Kind::Opened => "opened",
            Kind::Clicked => "clicked",
            Kind::Bounced => "bounced",
            Kind::Unsubscribed => "unsubscribed",
            Kind::Visit => "visit",
            Kind::Event => "event",
        }
    }

    /// The option value of the `new_kind` choice.
    pub const fn value(self) -> i32 {
        100_000_000 + self as i32
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The kinds kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds(u8);

impl Default for Kinds {
    /// All but e-mails sent: a campaign's sends would be one row per contact, the bulk of the
    /// rows others' connectors fill Dataverse with, and tell a salesperson little.
    fn default() -> Kinds {
        Kinds(Kind::ALL.iter().filter(|k| **k != Kind::Sent).fold(0, |bits, k| bits | k.bit()))
    }
}

impl Kinds {
    /// Reads the record's list: names separated by commas (or spaces, semicolons), in any case;
    /// empty means the defaults. An unknown name is refused, with it.
    pub fn parse(text: &str) -> Result<Kinds, String> {
        let mut bits = 0;
        for name in text.split([',', ';', ' ', '\n', '\t']).map(str::trim).filter(|n| !n.is_empty()) {
            let kind =
                Kind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name)).ok_or_else(|| name.to_owned())?;
            bits |= kind.bit();
        }
        Ok(if bits == 0 { Kinds::default() } else { Kinds(bits) })
    }

    /// Whether `kind` is kept.
    pub fn keeps(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// Days kept when the record does not say.
pub const DEFAULT_DAYS: u32 = 90;
/// The most days the record may keep: ten years.
pub const MAX_DAYS: u32 = 3650;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// What the integration record keeps of SALESmanago's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keeping {
    /// The kinds kept.
    pub kinds: Kinds,
    /// How many days back from now (1 to [`MAX_DAYS`]).
    pub days: u32,
}

impl Keeping {
    /// Reads the record's columns; an unknown kind's name is refused, with it.
    pub fn from_record(record: &Map) -> Result<Keeping, String> {
        let kinds = Kinds::parse(record.get(integration::ACTIVITY_KINDS).and_then(Value::as_str).unwrap_or_default())?;
        let days = record
            .get(integration::ACTIVITY_DAYS)
            .and_then(Value::as_u64)
            .map_or(DEFAULT_DAYS, |d| d.clamp(1, u64::from(MAX_DAYS)) as u32);
        Ok(Keeping { kinds, days })
    }

    /// The oldest time kept at `now_ms` (Dataverse's clock).
    pub fn oldest(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from(self.days) * DAY_MS)
    }
}

/// One SALESmanago event of a contact, as [`crate::core::salesmanago::activity`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// SALESmanago's id of the event, unique within the contact and the kind.
    pub id: String,
    /// When, Unix ms (SALESmanago's clock).
    pub at_ms: u64,
    /// What it was about: an e-mail's subject, the page visited, the event's description.
    pub subject: String,
    /// The rest SALESmanago said of it, as name and value.
    pub details: Vec<(&'static str, String)>,
}

/// Longest subject, details and event id the row takes (the columns' lengths).
const SUBJECT_MAX: usize = 200;
const DETAILS_MAX: usize = 2000;
const EVENT_ID_MAX: usize = 200;

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The namespace of the activity rows' ids. Changing it would duplicate every row: never change
/// it.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:salesmanago-dynamics:activity")
}

impl Event {
    /// The id of its row on the timeline of Dynamics contact `contact_id`.
    pub fn row_id(&self, contact_id: &str) -> String {
        let name = format!("{}/{}/{}", contact_id.to_ascii_lowercase(), self.kind.name(), self.id);
        Uuid::new_v5(&namespace(), name.as_bytes()).hyphenated().to_string()
    }

    /// Its row on the timeline of Dynamics contact `contact_id`: the id and the columns.
    pub fn row(&self, contact_id: &str) -> (String, Map) {
        let mut columns = Map::new();
        let subject = if self.subject.trim().is_empty() { self.kind.name() } else { self.subject.trim() };
        columns.insert(activity::SUBJECT.into(), cut(subject, SUBJECT_MAX).into());
        let details: Vec<String> = self.details.iter().map(|(name, value)| format!("{name}: {value}")).collect();
        if !details.is_empty() {
            columns.insert(activity::DESCRIPTION.into(), cut(&details.join("\n"), DETAILS_MAX).into());
        }
        columns.insert(activity::ACTUAL_END.into(), iso_datetime(self.at_ms).into());
        columns.insert(activity::KIND.into(), self.kind.value().into());
        columns.insert(activity::EVENT_ID.into(), cut(&self.id, EVENT_ID_MAX).into());
        let regarding = format!("/{}({})", contact::ENTITY_SET, contact_id);
        columns.insert(activity::REGARDING_CONTACT.into(), regarding.into());
        (self.row_id(contact_id), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn event(kind: Kind, id: &str) -> Event {
        Event { kind, id: id.into(), at_ms: 1_800_000_000_000, subject: "Spring sale".into(), details: vec![] }
    }

    #[test]
    fn kinds_default_to_all_but_sends_and_refuse_an_unknown_name() {
        let default = Kinds::parse("  ").unwrap();
        assert!(!default.keeps(Kind::Sent));
        assert!(Kind::ALL.iter().filter(|k| **k != Kind::Sent).all(|k| default.keeps(*k)));
        let some = Kinds::parse("Opened; clicked,visit").unwrap();
        assert!(some.keeps(Kind::Opened) && some.keeps(Kind::Clicked) && some.keeps(Kind::Visit));
        assert!(!some.keeps(Kind::Sent) && !some.keeps(Kind::Event));
        assert_eq!(Kinds::parse("opened, clicks"), Err("clicks".into()));
    }

    #[test]
    fn days_default_and_stay_in_range() {
        let keeping = |v: Value| Keeping::from_record(v.as_object().unwrap()).unwrap().days;
        assert_eq!(keeping(json!({})), DEFAULT_DAYS);
        assert_eq!(keeping(json!({"new_activitydays": 0})), 1);
        assert_eq!(keeping(json!({"new_activitydays": 99999})), MAX_DAYS);
        assert_eq!(keeping(json!({"new_activitydays": 30})), 30);
        let record = json!({"new_activitykinds": "opend"});
        assert_eq!(Keeping::from_record(record.as_object().unwrap()), Err("opend".into()));
    }

    #[test]
    fn a_row_id_is_the_same_for_the_same_contact_and_event_only() {
        let opened = event(Kind::Opened, "m-1");
        assert_eq!(opened.row_id("C-1"), opened.row_id("c-1"), "Dynamics ids compare without case");
        assert_ne!(opened.row_id("c-1"), opened.row_id("c-2"));
        assert_ne!(opened.row_id("c-1"), event(Kind::Clicked, "m-1").row_id("c-1"));
        assert_eq!(opened.row_id("c-1").len(), 36);
    }

    #[test]
    fn row_ids_never_change_from_version_to_version() {
        // A row pulled again after an upgrade must meet the row an earlier version made: were
        // the ids' namespace or name to change, every event would be created twice.
        assert_eq!(event(Kind::Opened, "m-1").row_id("c-1"), "fb133b17-3573-5da0-8b9a-84546e928073");
    }

    #[test]
    fn a_row_names_its_contact_kind_and_time_and_fits_its_columns() {
        let mut long = event(Kind::Visit, &"x".repeat(300));
        long.subject = "é".repeat(500);
        long.details = vec![("duration", "35".into()), ("visitSource", "google".into())];
        let (_, row) = long.row("c-1");
        assert_eq!(row[activity::SUBJECT].as_str().unwrap().chars().count(), SUBJECT_MAX);
        assert_eq!(row[activity::EVENT_ID].as_str().unwrap().len(), EVENT_ID_MAX);
        assert_eq!(row[activity::DESCRIPTION], "duration: 35\nvisitSource: google");
        assert_eq!(row[activity::KIND], 100_000_005);
        assert_eq!(row[activity::REGARDING_CONTACT], "/contacts(c-1)");
        assert_eq!(row[activity::ACTUAL_END], "2027-01-15T08:00:00Z");
        let (_, bare) = Event { subject: " ".into(), ..event(Kind::Bounced, "m") }.row("c");
        assert_eq!(bare[activity::SUBJECT], "bounced");
        assert!(!bare.contains_key(activity::DESCRIPTION));
    }
}
