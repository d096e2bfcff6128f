//! The admin's field mapping on every path, under faults: random mappings of random columns
//! (text, numbers, dates, Yes/No, choices, lookups) to SALESmanago's details, tags and free
//! standard fields, one way or both. After Export all, each contact SALESmanago holds has exactly
//! its mapped values; after SALESmanago changes them, Pull changes and Fetch bring exactly the
//! mapped ones back; a Send after a change in Dynamics takes it. The oracle is written here, from
//! the rules the README states, not with the engine's code.

use std::collections::{BTreeMap, BTreeSet};

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, SyncStatus};
use salesmanago_dynamics::core::i18n::Message;
use salesmanago_dynamics::core::job::contact::{FormAction, Task};
use salesmanago_dynamics::core::json::{self, Map, Value};

use super::rng::Rng;
use super::{for_each_seed, size, text, World};

const FORMATTED: &str = "@OData.Community.Display.V1.FormattedValue";
const LABELS: [(i64, &str); 3] = [(1, "Accounting"), (2, "Agri culture"), (3, "Retail")];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Date,
    YesNo,
    Choice,
    Lookup,
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Detail(&'static str),
    Tag(&'static str),
    Company,
    Province,
}

#[derive(Debug, Clone)]
struct Entry {
    column: &'static str,
    label: &'static str,
    kind: Kind,
    target: Target,
    to: bool,
    from: bool,
}

/// A random mapping over the six columns the scenario fills.
fn draw(rng: &mut Rng) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut company_taken = false;
    // The lookup first, so the text column knows whether the company is free.
    let columns = [
        ("parentcustomerid", "Company name", Kind::Lookup),
        ("new_segment", "Segment", Kind::Text),
        ("new_score", "Score", Kind::Number),
        ("new_lastcampaign", "Last campaign", Kind::Date),
        ("new_vip", "VIP", Kind::YesNo),
        ("industrycode", "Industry", Kind::Choice),
    ];
    for (column, label, kind) in columns {
        if !rng.chance(700) {
            continue;
        }
        let target = match kind {
            Kind::Lookup if rng.below(2) == 0 => Target::Company,
            Kind::Lookup => Target::Detail("account"),
            Kind::Text => match rng.below(3) {
                0 if !company_taken => Target::Company,
                1 => Target::Province,
                _ => Target::Detail("segment"),
            },
            Kind::Number => Target::Detail("score"),
            Kind::Date => Target::Detail("last campaign"),
            Kind::YesNo if rng.below(2) == 0 => Target::Tag("vip client"),
            Kind::YesNo => Target::Detail("vip"),
            Kind::Choice if rng.below(2) == 0 => Target::Tag("industry"),
            Kind::Choice => Target::Detail("industry"),
        };
        company_taken |= target == Target::Company;
        // What may come back: not a lookup, not the province (not on SALESmanago's cards).
        let readable = kind != Kind::Lookup && target != Target::Province;
        let (to, from) = match rng.below(3) {
            0 if readable => (true, true),
            1 if readable => (false, true),
            _ => (true, false),
        };
        entries.push(Entry { column, label, kind, target, to, from });
    }
    entries
}

/// The mapping's JSON, as the editor would save it.
fn stored(entries: &[Entry]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|e| {
            let kind = match e.kind {
                Kind::Text => "text",
                Kind::Number => "number",
                Kind::Date => "date",
                Kind::YesNo => "yesno",
                Kind::Choice => "choice",
                Kind::Lookup => "lookup",
            };
            let target = match &e.target {
                Target::Detail(name) => format!(r#""detail":"{name}""#),
                Target::Tag(name) => format!(r#""tag":"{name}""#),
                Target::Company => r#""field":"company""#.to_owned(),
                Target::Province => r#""field":"province""#.to_owned(),
            };
            let direction = match (e.to, e.from) {
                (true, true) => "both",
                (false, true) => "from",
                _ => "to",
            };
            let labels = match e.kind {
                Kind::Choice => {
                    let labels: Vec<String> = LABELS.iter().map(|(v, l)| format!(r#""{v}":"{l}""#)).collect();
                    format!(r#","labels":{{{}}}"#, labels.join(","))
                }
                _ => String::new(),
            };
            format!(
                r#"{{"column":"{}","label":"{}","type":"{kind}",{target},"direction":"{direction}"{labels}}}"#,
                e.column, e.label
            )
        })
        .collect();
    format!(r#"{{"version":1,"language":"en","entries":[{}]}}"#, items.join(","))
}

fn number(text: &str) -> Value {
    json::from_str(text).expect("a number")
}

/// Gives each contact random values of the six columns: mostly good, some empty, a few that
/// cannot go (too long, not of the column's type, an option the mapping has no label for).
fn fill(world: &mut World) {
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    for (i, id) in ids.iter().enumerate() {
        let rng = &mut world.rng;
        let mut values: Vec<(String, Value)> = Vec::new();
        let empty = |rng: &mut Rng| rng.chance(150);
        values.push((
            "new_segment".into(),
            match rng.below(20) {
                _ if empty(rng) => Value::Null,
                0 => "L".repeat(300).into(),
                _ => format!("Segment {}", i % 7).into(),
            },
        ));
        values.push((
            "new_score".into(),
            match rng.below(20) {
                _ if empty(rng) => Value::Null,
                0 => "many".into(),
                1..=9 => number(&format!("{}.50", i % 90)),
                _ => number(&format!("{}", i % 1000)),
            },
        ));
        values.push((
            "new_lastcampaign".into(),
            match rng.below(20) {
                _ if empty(rng) => Value::Null,
                0 => "yesterday".into(),
                n => format!("2026-{:02}-{:02}T10:00:00Z", 1 + n % 12, 1 + i % 28).into(),
            },
        ));
        values.push(("new_vip".into(), if empty(rng) { Value::Null } else { rng.chance(500).into() }));
        values.push((
            "industrycode".into(),
            match rng.below(20) {
                _ if empty(rng) => Value::Null,
                0 => 9u64.into(),
                n => (1 + n % 3).into(),
            },
        ));
        if rng.chance(800) {
            let account = format!("{:08x}-0000-4000-8000-000000000001", i % 5);
            values.push(("_parentcustomerid_value".into(), account.into()));
            values.push((format!("_parentcustomerid_value{FORMATTED}"), format!("Account {}", i % 5).into()));
        } else {
            values.push(("_parentcustomerid_value".into(), Value::Null));
        }
        let row = world.dataverse.contacts.get_mut(id).expect("a contact");
        for (column, value) in values {
            row.insert(column, value);
        }
    }
}

/// What SALESmanago holds of one contact's mapped values: details, tags (the engine's aside),
/// company and province.
#[derive(Debug, Default, PartialEq)]
struct Held {
    details: BTreeMap<String, String>,
    tags: BTreeSet<String>,
    company: Option<String>,
    province: Option<String>,
}

/// A choice's tag: the prefix and the label, upper case (ASCII), spaces as `_`.
fn choice_tag(prefix: &str, label: &str) -> String {
    format!("{prefix}_{label}").to_ascii_uppercase().replace(' ', "_")
}

/// The text a value goes as, by the README's rules; `None` when it does not go.
fn outgoing(entry: &Entry, row: &Map) -> Option<String> {
    let value = match entry.kind {
        Kind::Lookup => row.get(&format!("_{}_value{FORMATTED}", entry.column)),
        _ => row.get(entry.column),
    }?;
    match (entry.kind, value) {
        (Kind::Text | Kind::Lookup, Value::String(s)) => Some(s.chars().take(255).collect()),
        (Kind::Number, Value::Number(_)) => Some(value.to_string()),
        (Kind::Date, Value::String(s)) if s.as_bytes().first().is_some_and(u8::is_ascii_digit) => {
            Some(s[..10].to_owned())
        }
        (Kind::YesNo, Value::Bool(b)) => Some(b.to_string()),
        (Kind::Choice, Value::Number(_)) => {
            let option = value.as_i64()?;
            LABELS.iter().find(|(v, _)| *v == option).map(|(_, l)| (*l).to_owned())
        }
        _ => None,
    }
}

/// What a first export of `row` leaves in a SALESmanago that had nothing of it.
fn expected(entries: &[Entry], row: &Map) -> Held {
    let mut held = Held::default();
    for entry in entries.iter().filter(|e| e.to) {
        let Some(value) = outgoing(entry, row) else { continue };
        match &entry.target {
            Target::Detail(name) => {
                held.details.insert((*name).to_owned(), value);
            }
            Target::Tag(name) if entry.kind == Kind::YesNo => {
                if value == "true" {
                    held.tags.insert(name.to_ascii_uppercase().replace(' ', "_"));
                }
            }
            Target::Tag(prefix) => {
                held.tags.insert(choice_tag(prefix, &value));
            }
            Target::Company => held.company = Some(value),
            Target::Province => held.province = Some(value),
        }
    }
    held
}

fn held(world: &World, row: &Map) -> Option<Held> {
    let sm = world.in_salesmanago(row)?;
    Some(Held {
        details: sm.properties.clone(),
        tags: sm.tags.clone(),
        company: sm.company.clone(),
        province: sm.province.clone(),
    })
}

/// The contacts whose e-mail no other contact has (a shared SALESmanago contact holds the last
/// one sent).
fn alone(world: &World) -> Vec<String> {
    let address = |row: &Map| text(row, "emailaddress1").map(|e| e.trim().to_ascii_lowercase());
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for row in world.dataverse.contacts.values() {
        *count.entry(address(row).unwrap_or_default()).or_default() += 1;
    }
    let synced = Some(i64::from(SyncStatus::Synced.value()));
    world
        .dataverse
        .contacts
        .iter()
        .filter(|(_, row)| count.get(&address(row).unwrap_or_default()) == Some(&1))
        .filter(|(_, row)| row.get(contact::SYNC_STATUS).and_then(Value::as_i64) == synced)
        .map(|(id, _)| id.clone())
        .collect()
}

/// SALESmanago's new value of an entry that comes back, as text on the card, and what Dynamics
/// must then hold (`None`: a value Dynamics cannot take, which changes nothing).
fn changed_in_salesmanago(entry: &Entry, rng: &mut Rng) -> (String, Option<Value>) {
    match entry.kind {
        Kind::Text => ("From SALESmanago".into(), Some("From SALESmanago".into())),
        Kind::Number if rng.below(5) == 0 => ("lots".into(), None),
        Kind::Number => ("77.25".into(), Some(number("77.25"))),
        Kind::Date if rng.below(2) == 0 => ("20260809".into(), Some("2026-08-09".into())),
        Kind::Date => ("2026-08-10".into(), Some("2026-08-10".into())),
        Kind::YesNo => {
            let yes = rng.below(2) == 0;
            (yes.to_string(), Some(yes.into()))
        }
        Kind::Choice if rng.below(5) == 0 => ("Mining".into(), None),
        // Labels are matched whatever their (ASCII) case.
        Kind::Choice => ("RETAIL".into(), Some(3u64.into())),
        // Changed there, it never comes back (a lookup goes one way).
        Kind::Lookup => ("Changed in SALESmanago".into(), None),
    }
}

fn mapping_on_every_path(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let entries = draw(&mut world.rng);
    world.dataverse.record.insert(integration::FIELD_MAPPING.into(), stored(&entries).into());
    fill(&mut world);
    let interruptions = world.rng.below(3) as usize;
    world.run(BulkJob::ExportAll, interruptions).expect("the export succeeds");

    // Export all: each contact SALESmanago holds has exactly its mapped values.
    let alone = alone(&world);
    for id in &alone {
        let row = &world.dataverse.contacts[id];
        let held = held(&world, row).expect("a synced contact is in SALESmanago");
        assert_eq!(held, expected(&entries, row), "{id}: {row:?} under {}", stored(&entries));
        // A value cut is said on the contact, by its column's label.
        let cut = entries.iter().any(|e| e.to && e.column == "new_segment")
            && text(row, "new_segment").is_some_and(|s| s.len() == 300);
        if cut {
            let said = text(row, contact::LAST_ERROR).unwrap_or_default();
            assert!(said.contains("Segment was longer than 255"), "{id}: {said:?}");
        }
    }

    // SALESmanago changes the mapped values of some contacts; Pull changes brings back exactly
    // those the mapping takes from SALESmanago.
    let mut changed: BTreeMap<String, BTreeMap<&'static str, Option<Value>>> = BTreeMap::new();
    let before = world.dataverse.contacts.clone();
    let picked: Vec<String> = alone.iter().filter(|_| world.rng.chance(400)).cloned().collect();
    for id in &picked {
        let row = &world.dataverse.contacts[id];
        let email = text(row, "emailaddress1").unwrap_or_default().trim().to_ascii_lowercase();
        let mut wants = BTreeMap::new();
        let now = world.now;
        let mut edits = Vec::new();
        for entry in &entries {
            let (value, dynamics) = changed_in_salesmanago(entry, &mut world.rng);
            edits.push((entry.clone(), value));
            if entry.from {
                wants.insert(entry.column, dynamics);
            }
        }
        let sm = world.salesmanago.edit(&email).expect("in SALESmanago");
        for (entry, value) in edits {
            match &entry.target {
                Target::Detail(name) => {
                    sm.properties.insert((*name).to_owned(), value);
                }
                Target::Tag(name) if entry.kind == Kind::YesNo => {
                    let tag = name.to_ascii_uppercase().replace(' ', "_");
                    if value == "true" {
                        sm.tags.insert(tag);
                    } else {
                        sm.tags.remove(&tag);
                    }
                }
                Target::Tag(prefix) => {
                    sm.tags.retain(|t| !t.starts_with(&format!("{}_", prefix.to_ascii_uppercase())));
                    sm.tags.insert(choice_tag(prefix, &value));
                }
                Target::Company => sm.company = Some(value),
                Target::Province => sm.province = Some(value),
            }
        }
        sm.changed = true;
        sm.modified_on = now;
        changed.insert(id.clone(), wants);
    }
    world.now += 3_600_000;
    let pulled = world.run(BulkJob::PullChanges, 0).expect("the pull succeeds");
    for (id, wants) in &changed {
        let row = &world.dataverse.contacts[id];
        if pulled.tally.not_done.iter().any(|n| &n.id == id) {
            continue; // Dynamics refused it, and the summary says so.
        }
        for entry in &entries {
            let now = row.get(entry.column).cloned().unwrap_or(Value::Null);
            let was = before[id].get(entry.column).cloned().unwrap_or(Value::Null);
            match wants.get(entry.column) {
                Some(Some(value)) => {
                    assert!(same(&now, value), "{id}: {} is {now}, SALESmanago has {value}", entry.column)
                }
                _ => assert_eq!(now, was, "{id}: {} changed, though the mapping does not take it back", entry.column),
            }
        }
    }

    // Fetch reads the full card: it fills the form with the mapped values that differ.
    world.dataverse.faults = super::Faults::default();
    world.salesmanago.faults = super::Faults::default();
    if let Some(id) = alone.iter().find(|id| !changed.contains_key(*id)).cloned() {
        let row = world.dataverse.contacts[&id].clone();
        let email = text(&row, "emailaddress1").unwrap_or_default().trim().to_ascii_lowercase();
        let mut wants = BTreeMap::new();
        let mut edits = Vec::new();
        for entry in entries.iter().filter(|e| matches!(e.target, Target::Detail(_)) && e.kind != Kind::Lookup) {
            let (value, dynamics) = changed_in_salesmanago(entry, &mut world.rng);
            if entry.from {
                if let Some(dynamics) = dynamics.filter(|d| !row.get(entry.column).is_some_and(|now| same(now, d))) {
                    wants.insert(entry.column.to_owned(), dynamics);
                }
            }
            edits.push((entry.clone(), value));
        }
        let sm = world.salesmanago.edit(&email).expect("in SALESmanago");
        for (entry, value) in edits {
            if let Target::Detail(name) = entry.target {
                sm.properties.insert(name.to_owned(), value);
            }
        }
        // Found by e-mail (the row has lost its SALESmanago id) half of the time: the full card
        // is read after the basic one.
        if world.rng.below(2) == 0 {
            world.dataverse.contacts.get_mut(&id).expect("a contact").remove(contact::SALESMANAGO_ID);
        }
        // The check on opening the form counts the mapped values that differ.
        world.form.clear();
        let mut job = world.start_contact(Task::Check { id: Some(id.clone()) });
        let checked = world.drive(&mut job, None).expect("driven").expect("the check succeeds");
        match checked.message {
            Message::Differs { fields } => assert!(fields >= wants.len(), "{id}: {fields} fields differ, {wants:?}"),
            other => assert!(wants.is_empty(), "{id}: {other:?}, though {wants:?} differ"),
        }
        world.form.clear();
        let mut job = world.start_contact(Task::Fetch { id: Some(id.clone()) });
        world.drive(&mut job, None).expect("driven").expect("Fetch succeeds");
        let filled: Map = world
            .form
            .iter()
            .find_map(|a| match a {
                FormAction::Fill(columns) => Some(columns.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for (column, value) in &wants {
            let got = filled.get(column).unwrap_or(&Value::Null);
            assert!(same(got, value), "{id}: Fetch filled {column} with {got}, SALESmanago has {value}: {filled:?}");
        }
        for entry in entries.iter().filter(|e| !e.from) {
            assert!(filled.get(entry.column).is_none(), "{id}: Fetch filled {}, which goes one way", entry.column);
        }
    }

    // Send after a change in Dynamics: the new values go.
    let picked: Vec<String> = alone.iter().filter(|_| world.rng.chance(50)).take(5).cloned().collect();
    for id in &picked {
        let row = world.dataverse.contacts.get_mut(id).expect("a contact");
        row.insert("new_segment".into(), "Changed".into());
        row.insert("new_vip".into(), false.into());
        row.insert("industrycode".into(), 1u64.into());
        let row = row.clone();
        let mut job = world.start_contact(Task::Send { id: Some(id.clone()), dirty: false });
        world.drive(&mut job, None).expect("driven").expect("Send succeeds");
        let held = held(&world, &row).expect("in SALESmanago");
        let wanted = expected(&entries, &row);
        for (name, value) in &wanted.details {
            assert_eq!(held.details.get(name), Some(value), "{id}: detail {name} after Send");
        }
        for entry in entries.iter().filter(|e| e.to && matches!(e.target, Target::Tag(_))) {
            let (Target::Tag(name), Some(value)) = (&entry.target, outgoing(entry, &row)) else { continue };
            let (tag, on) = match entry.kind {
                Kind::YesNo => (name.to_ascii_uppercase().replace(' ', "_"), value == "true"),
                _ => (choice_tag(name, &value), true),
            };
            assert_eq!(held.tags.contains(&tag), on, "{id}: tag {tag} after Send: {:?}", held.tags);
            if entry.kind == Kind::Choice {
                let others = LABELS.iter().filter(|(_, l)| *l != value).map(|(_, l)| choice_tag(name, l));
                for other in others {
                    assert!(!held.tags.contains(&other), "{id}: the other label's tag {other} stays");
                }
            }
        }
    }
}

/// Two values are the same for Dynamics: numbers by value (`77.25` and `77.250`), a date-time
/// and a date by the date.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a.to_string().parse::<f64>().ok() == b.to_string().parse::<f64>().ok(),
        (Value::String(a), Value::String(b)) if b.len() == 10 && b.as_bytes()[4] == b'-' => a.get(..10) == Some(b),
        _ => a == b,
    }
}

#[test]
fn the_admins_mapping_reaches_salesmanago_and_comes_back_on_every_path() {
    // A tenth of the sizes: each seed runs an export, a pull and commands.
    for_each_seed("mapping_on_every_path", |seed| size(seed) / 10 + 20, mapping_on_every_path);
}

/// What a mapping sends, as the README says a contact records it: each entry that goes to
/// SALESmanago by its column, type and target (labels and directions aside).
fn sends(entries: &[Entry]) -> BTreeSet<String> {
    entries.iter().filter(|e| e.to).map(|e| format!("{} {:?} {:?}", e.column, e.kind, e.target)).collect()
}

/// The admin changes the mapping: the export that sends every contact with the new one counts,
/// exactly, those it sends again because of the change (those the previous mapping sent, less
/// one a Send has sent with the new one meanwhile); the next export counts none.
fn changed_mapping_is_counted(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let first = draw(&mut world.rng);
    world.dataverse.record.insert(integration::FIELD_MAPPING.into(), stored(&first).into());
    fill(&mut world);
    let interruptions = world.rng.below(3) as usize;
    let summary = world.run(BulkJob::ExportAll, interruptions).expect("the export succeeds");
    assert_eq!((summary.tally.again, summary.tally.entered), (0, 0), "a first export sends nothing again");

    world.dataverse.faults = super::Faults::default();
    world.salesmanago.faults = super::Faults::default();
    world.dataverse.refuse.clear();
    let second = draw(&mut world.rng);
    world.dataverse.record.insert(integration::FIELD_MAPPING.into(), stored(&second).into());
    let synced = Some(i64::from(SyncStatus::Synced.value()));
    let status =
        |world: &World, id: &str| world.dataverse.contacts[id].get(contact::SYNC_STATUS).and_then(Value::as_i64);
    let mut before: BTreeSet<String> =
        world.dataverse.contacts.keys().filter(|id| status(&world, id) == synced).cloned().collect();
    // A Send with the new mapping: that contact went with it already.
    if let Some(id) = before.iter().find(|_| world.rng.chance(500)).cloned() {
        let mut job = world.start_contact(Task::Send { id: Some(id.clone()), dirty: false });
        world.drive(&mut job, None).expect("driven").expect("Send succeeds");
        before.remove(&id);
    }
    // Export selected sends its contacts for a reason of its own: it counts none, and they went
    // with the new mapping. Any contact may be selected: one with an e-mail SALESmanago cannot
    // take is skipped, one SALESmanago refuses failed.
    let ids = world.dataverse.contacts.keys();
    let selected: Vec<String> = ids.filter(|_| world.rng.chance(100)).take(20).cloned().collect();
    if !selected.is_empty() {
        let mut job = world.start_selected(selected.clone());
        let summary = world.drive(&mut job, None).expect("driven").expect("Export selected succeeds");
        let t = &summary.tally;
        assert_eq!((t.again, t.entered), (0, 0), "{t:?}");
        // Its split: each selected contact holds the status its count says.
        let split = world.statuses(|id| selected.iter().any(|s| s == id));
        assert_eq!((t.total, (t.done, t.skipped(), t.failed())), (selected.len() as u64, split), "{t:?}");
        for id in &selected {
            before.remove(id);
        }
    }
    world.now += 3_600_000;
    let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    let changed = sends(&first) != sends(&second);
    let again = if changed { before.iter().filter(|id| status(&world, id) == synced).count() as u64 } else { 0 };
    assert_eq!(summary.tally.again, again, "{:?} then {:?}", sends(&first), sends(&second));
    assert!(summary.tally.again <= summary.tally.done && summary.tally.adds_up(), "{:?}", summary.tally);
    let said = salesmanago_dynamics::core::i18n::text(&summary.message, salesmanago_dynamics::core::i18n::Lang::En);
    assert_eq!(
        said.contains(&format!("{again} of those sent went again because the field mapping changed")),
        again > 0,
        "{said}"
    );

    let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    assert_eq!(summary.tally.again, 0, "every contact sent went with this mapping already");
}

#[test]
fn an_export_counts_the_contacts_it_sends_again_because_the_mapping_changed() {
    for_each_seed("changed_mapping_is_counted", |seed| size(seed) / 10 + 20, changed_mapping_is_counted);
}
