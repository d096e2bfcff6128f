//! The sync scope under faults: with "Marked contacts", no contact outside the scope reaches
//! SALESmanago or is changed from it; exports count those contacts apart; a contact that leaves
//! the scope is marked so (and opted out there when the record says so), one that enters it is
//! sent; a Send of a contact outside says why and sends nothing.

use std::collections::BTreeSet;

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, SyncStatus};
use salesmanago_dynamics::core::i18n::{self, Lang, Message};
use salesmanago_dynamics::core::job::contact::{FormAction, Level, Task, SYNC};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::mapping::normalize;

use super::{for_each_seed, size, text, Faults, World};

const FLAG: &str = "new_marketingcontact";

fn flagged(row: &Map) -> bool {
    row.get(FLAG) == Some(&Value::Bool(true))
}

fn address(row: &Map) -> Option<String> {
    normalize::email(&text(row, "emailaddress1")?).ok()
}

fn status(row: &Map) -> Option<i64> {
    row.get(contact::SYNC_STATUS).and_then(Value::as_i64)
}

/// Every SALESmanago contact not among `before` stands for a contact in the scope (one with its
/// address).
fn check_nothing_outside_went(world: &World, before: &BTreeSet<String>) {
    for sm in world.salesmanago.all().filter(|sm| !before.contains(&sm.email)) {
        let inside =
            world.dataverse.contacts.values().any(|row| flagged(row) && address(row).as_deref() == Some(&sm.email));
        assert!(inside, "{} is in SALESmanago, but no contact in the scope has its address", sm.email);
    }
}

fn held(world: &World) -> BTreeSet<String> {
    world.salesmanago.all().map(|sm| sm.email.clone()).collect()
}

fn scope_on_every_path(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let opt_out = world.rng.below(2) == 0;
    let record = &mut world.dataverse.record;
    // Marked by the Yes/No column, or the contacts of a view whose filter says the same.
    if world.rng.below(2) == 0 {
        record.insert(integration::SYNC_SCOPE.into(), 100_000_001u64.into());
        record.insert(integration::SCOPE_COLUMN.into(), "New_MarketingContact ".into());
    } else {
        let fetch = r#"<fetch><entity name="contact"><attribute name="fullname"/><filter type="and"><condition attribute="new_marketingcontact" operator="eq" value="1"/></filter></entity></fetch>"#;
        record.insert(integration::SYNC_SCOPE.into(), 100_000_002u64.into());
        record.insert(integration::SCOPE_VIEW.into(), "Marketing contacts".into());
        record.insert(integration::SCOPE_FETCHXML.into(), fetch.into());
    }
    record.insert(integration::SCOPE_LEAVING.into(), (100_000_000u64 + u64::from(opt_out)).into());
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    for id in &ids {
        let flag = match world.rng.below(10) {
            0 => Value::Null,
            1..=4 => false.into(),
            _ => true.into(),
        };
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(FLAG.into(), flag);
    }

    // Export all: nothing outside goes, and the summary counts it apart.
    let interruptions = world.rng.below(3) as usize;
    let summary = world.run(BulkJob::ExportAll, interruptions).expect("the export succeeds");
    let outside = world.dataverse.contacts.values().filter(|r| !flagged(r)).count() as u64;
    assert_eq!(summary.tally.outside, outside, "{:?}", summary.tally);
    assert!(summary.tally.adds_up(), "{:?}", summary.tally);
    let said = i18n::text(&summary.message, Lang::En);
    assert!(outside == 0 || said.contains(&format!("{outside} outside the sync scope")), "{said}");
    check_nothing_outside_went(&world, &BTreeSet::new());
    for (id, row) in &world.dataverse.contacts {
        if !flagged(row) {
            assert_eq!(status(row), None, "{id}: never synchronised, nothing written: {row:?}");
        }
    }

    // Some synchronised contacts leave the scope, some outside enter it.
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.dataverse.refuse.clear();
    let synced = Some(i64::from(SyncStatus::Synced.value()));
    let mut leaving = Vec::new();
    let mut entering = Vec::new();
    for id in &ids {
        let row = &world.dataverse.contacts[id];
        if flagged(row) && status(row) == synced && world.rng.chance(300) {
            leaving.push(id.clone());
        } else if !flagged(row) && world.rng.chance(300) {
            entering.push(id.clone());
        }
    }
    for id in &leaving {
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(FLAG.into(), false.into());
    }
    for id in &entering {
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(FLAG.into(), true.into());
    }
    let held_before: Vec<(String, bool, bool)> = leaving
        .iter()
        .filter_map(|id| world.in_salesmanago(&world.dataverse.contacts[id]))
        .map(|sm| (sm.email.clone(), sm.opted_out, sm.phone_opted_out))
        .collect();
    world.now += 3_600_000;
    let there = held(&world);
    // Now and then SALESmanago fails the opt-out of some leaving contacts (their batch): they
    // fail for now, and count so, not as outside; the next export marks them.
    if opt_out && world.rng.below(2) == 0 {
        let failing: Vec<String> =
            held_before.iter().map(|(email, ..)| email.clone()).filter(|_| world.rng.below(2) == 0).collect();
        world.salesmanago.failing.extend(failing);
    }
    let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    check_nothing_outside_went(&world, &there);
    assert_eq!(summary.tally.entered, 0, "a contact never marked outside does not count as entering");
    assert!(summary.tally.adds_up(), "{:?}", summary.tally);
    let failed = Some(i64::from(SyncStatus::Failed.value()));
    let unmarked = leaving.iter().filter(|id| status(&world.dataverse.contacts[*id]) == failed).count() as u64;
    let outside = world.dataverse.contacts.values().filter(|r| !flagged(r)).count() as u64;
    assert_eq!(summary.tally.outside, outside - unmarked, "{unmarked} opt-outs failed: {:?}", summary.tally);
    if !world.salesmanago.failing.is_empty() {
        world.salesmanago.failing.clear();
        let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
        assert_eq!(summary.tally.outside, outside, "{:?}", summary.tally);
    }
    let marked = Some(i64::from(SyncStatus::OutOfScope.value()));
    for id in &leaving {
        let row = &world.dataverse.contacts[id];
        assert_eq!(status(row), marked, "{id} left the scope: {row:?}");
        let Some(email) = address(row) else { continue };
        // Another contact in the scope with its address keeps the SALESmanago contact theirs.
        let shared = world.dataverse.contacts.values().any(|r| flagged(r) && address(r).as_deref() == Some(&email));
        let sm = world.salesmanago.by_email(&email).expect("its data stays in SALESmanago");
        if opt_out && !shared {
            assert!(sm.opted_out && sm.phone_opted_out, "{id} left the scope and is not opted out: {sm:?}");
        } else if !opt_out && !shared {
            let before = held_before.iter().find(|(e, ..)| *e == email).expect("it was there");
            assert_eq!((sm.opted_out, sm.phone_opted_out), (before.1, before.2), "{id}: left alone");
        }
    }
    for id in &entering {
        let row = &world.dataverse.contacts[id];
        if world.dataverse.valid_email(row) && !world.salesmanago.rejects(row) {
            assert_eq!(status(row), synced, "{id} entered the scope and was not sent: {row:?}");
        }
    }
    // A third run leaves them marked.
    let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    assert_eq!(summary.tally.outside, outside);
    for id in &leaving {
        assert_eq!(status(&world.dataverse.contacts[id]), marked, "{id} stays marked");
    }

    // They come back into the scope: the next export sends them and counts them as entering it.
    for id in &leaving {
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(FLAG.into(), true.into());
    }
    let summary = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    let back = leaving.iter().filter(|id| status(&world.dataverse.contacts[*id]) == synced).count() as u64;
    assert_eq!((summary.tally.entered, summary.tally.again), (back, 0), "{:?}", summary.tally);
    let said = i18n::text(&summary.message, Lang::En);
    assert_eq!(said.contains(&format!("{back} of those sent had been outside the sync scope")), back > 0, "{said}");
    for id in &leaving {
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(FLAG.into(), false.into());
    }
    world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");

    // SALESmanago changes contacts; Pull changes leaves those outside the scope alone.
    world.salesmanago.change_some(&mut world.rng, &world.dataverse, 300, (world.now, 60_000));
    let there = held(&world);
    let before = world.dataverse.contacts.clone();
    world.now += 3_600_000;
    let pulled = world.run(BulkJob::PullChanges, 0).expect("the pull succeeds");
    assert!(pulled.tally.adds_up(), "{:?}", pulled.tally);
    for sm in world.salesmanago.changed() {
        let Some((id, row)) = world.dataverse.matching(sm) else { continue };
        if !flagged(row) {
            assert_eq!(Some(row), before.get(id), "{id} is outside the scope and was changed from SALESmanago");
        }
    }
    check_nothing_outside_went(&world, &there);

    // Pull consents too: SALESmanago changes opt-outs and consents; those outside the scope
    // (among the contacts with an e-mail, which the job reads) are counted apart and left alone.
    world.salesmanago.change_consents(&mut world.rng);
    let before = world.dataverse.contacts.clone();
    world.now += 3_600_000;
    let pulled = world.run(BulkJob::PullConsents, 0).expect("the pull succeeds");
    assert!(pulled.tally.adds_up(), "{:?}", pulled.tally);
    let outside = before.values().filter(|r| !flagged(r) && text(r, "emailaddress1").is_some()).count() as u64;
    assert_eq!(pulled.tally.outside, outside, "{:?}", pulled.tally);
    for (id, row) in &world.dataverse.contacts {
        if !flagged(row) {
            assert_eq!(Some(row), before.get(id), "{id} is outside the scope and was changed by Pull consents");
        }
    }

    // Send of a contact outside: refused, nothing sent.
    if let Some(id) = ids.iter().find(|id| !flagged(&world.dataverse.contacts[*id])).cloned() {
        let writes = world.salesmanago.writes;
        let mut job = world.start_contact(Task::Send { id: Some(id.clone()), dirty: false });
        let result = world.drive(&mut job, None).expect("driven");
        assert!(matches!(&result, Err(f) if f.ends_with("(outsideScope)")), "{id}: {result:?}");
        assert_eq!(world.salesmanago.writes, writes, "{id}: sent though outside the scope");
        // A save of it: nothing sent or written, and the form says why.
        world.form.clear();
        let before = world.dataverse.contacts.get(&id).cloned();
        let changed = vec!["firstname".to_owned(), contact::DO_NOT_BULK_EMAIL.to_owned()];
        let mut job = world.start_contact(Task::Saved { id: Some(id.clone()), changed });
        let result = world.drive(&mut job, None).expect("driven");
        assert!(matches!(&result, Ok(s) if s.message == Message::OutsideScope), "{id}: {result:?}");
        assert_eq!(world.salesmanago.writes, writes, "{id}: sent on save though outside the scope");
        assert_eq!(world.dataverse.contacts.get(&id), before.as_ref(), "{id}: written on save though outside");
        let said = world.form.iter().any(|a| {
            matches!(a, FormAction::Notify { id: SYNC, level: Level::Info, message: Some(Message::OutsideScope) })
        });
        assert!(said, "{id}: the form does not say it is outside the scope: {:?}", world.form);
    }
}

#[test]
fn nothing_outside_the_scope_is_sent_or_changed() {
    for_each_seed("scope_on_every_path", |seed| size(seed) / 10 + 20, scope_on_every_path);
}
