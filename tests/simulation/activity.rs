//! Pull activity under faults, interruptions and browsers whose clocks are off: every event the
//! record keeps is on its contact's timeline exactly once, nothing it does not keep is, a row
//! Dynamics refused holds the watermark before it so the next pull takes it, and a pull with
//! nothing new creates nothing.

use std::collections::{BTreeMap, BTreeSet};

use salesmanago_dynamics::core::activity::Keeping;
use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::{activity, contact, integration};
use salesmanago_dynamics::core::json::Value;
use salesmanago_dynamics::core::salesmanago::activity::events;
use salesmanago_dynamics::core::sync::iso_datetime;

use super::{for_each_seed, size, text, Faults, World, CLOCK_ERROR_MS, START};

const DAY: u64 = 24 * 3600 * 1000;

/// The rows the record keeps of SALESmanago's activity at `now` (Dataverse's clock), by id,
/// with the contact and the event's time; and the rows it must not have.
fn expected(world: &World, now: u64) -> (BTreeMap<String, (String, u64)>, BTreeSet<String>) {
    let keeping = Keeping::from_record(&world.dataverse.record).expect("the record's kinds are valid");
    // The days kept, read here as the README states them (90 when not set), not by the engine.
    let days = world.dataverse.record.get(integration::ACTIVITY_DAYS).and_then(Value::as_u64).unwrap_or(90);
    let oldest = now.saturating_sub(days * DAY);
    let (mut kept, mut never) = (BTreeMap::new(), BTreeSet::new());
    for (contact_id, row) in &world.dataverse.contacts {
        let Some(sm_id) = text(row, contact::SALESMANAGO_ID) else { continue };
        let Some(Value::Object(card)) = world.salesmanago.full_card(&sm_id) else { continue };
        for event in events(&card) {
            let id = event.row_id(contact_id);
            // Near the edge of the days kept, the browser's reading of the clock decides.
            let near_edge = event.at_ms.abs_diff(oldest) <= CLOCK_ERROR_MS;
            if !keeping.kinds.keeps(event.kind) || event.at_ms + CLOCK_ERROR_MS < oldest {
                never.insert(id);
            } else if !near_edge {
                kept.insert(id, (contact_id.clone(), event.at_ms));
            }
        }
    }
    (kept, never)
}

/// Whether a `listById` call that asked for `contact_id`'s SALESmanago contact was refused.
fn lookup_refused(world: &World, contact_id: &str) -> bool {
    let row = &world.dataverse.contacts[contact_id];
    text(row, contact::SALESMANAGO_ID).is_some_and(|sm| world.salesmanago.refused_lookups.contains(&sm))
}

/// Every kept event has its row, once, on its contact's timeline, of its kind and time; no
/// row is of an event not kept.
fn check_rows(world: &World, kept: &BTreeMap<String, (String, u64)>, never: &BTreeSet<String>, refused: bool) {
    for (id, (contact_id, at)) in kept {
        if refused && world.dataverse.refuse.contains(contact_id) {
            assert!(!world.dataverse.activities.contains_key(id), "a refused row is not there");
            continue;
        }
        // A contact SALESmanago would not read (its call refused) may be there from another try.
        if refused && lookup_refused(world, contact_id) {
            continue;
        }
        let row = world.dataverse.activities.get(id).unwrap_or_else(|| panic!("event {id} of {contact_id} is missing"));
        assert_eq!(text(row, activity::REGARDING).as_deref(), Some(contact_id.as_str()), "{id} on its contact");
        assert_eq!(text(row, activity::ACTUAL_END), Some(iso_datetime(*at)), "{id} at its time");
    }
    for id in world.dataverse.activities.keys() {
        assert!(!never.contains(id), "{id} is of a kind not kept, or older than the days kept");
    }
}

pub(crate) fn pull_activity(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    // Contacts an export sent (with SALESmanago's id on them), and some whose SALESmanago
    // contact is gone.
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    for (n, id) in ids.iter().enumerate() {
        let sm_id = match world.rng.below(10) {
            0 => continue,
            1 => format!("gone-{n}"),
            _ => world.salesmanago.add_foreign(&format!("act{n}@example.com"), START),
        };
        world.dataverse.contacts.get_mut(id).expect("a contact").insert(contact::SALESMANAGO_ID.into(), sm_id.into());
    }
    let known: Vec<String> =
        world.dataverse.contacts.values().filter_map(|row| text(row, contact::SALESMANAGO_ID)).collect();
    for sm_id in &known {
        let count = world.rng.below(7);
        world.salesmanago.add_activity(sm_id, &mut world.rng, count, (START - 200 * DAY, START));
    }
    let kinds = ["", "opened, clicked, visit", "sent,opened,clicked,bounced,unsubscribed,visit,event", "event"];
    let kinds = kinds[world.rng.below(kinds.len() as u64) as usize];
    world.dataverse.record.insert(integration::ACTIVITY_KINDS.into(), kinds.into());
    let days = [30u64, 90, 365][world.rng.below(3) as usize];
    world.dataverse.record.insert(integration::ACTIVITY_DAYS.into(), days.into());
    // A plug-in refuses the activity of some contacts; SALESmanago refuses to read a few (and
    // with them every contact asked in the same call).
    for id in &ids {
        if world.rng.chance(30) {
            world.dataverse.refuse.insert(id.clone());
        }
    }
    for sm_id in &known {
        if world.rng.chance(15) {
            world.salesmanago.refuse_lookup.insert(sm_id.clone());
        }
    }
    world.now = START + 3_600_000;
    let interruptions = world.rng.below(3) as usize;
    let first = world.run(BulkJob::PullActivity, interruptions);
    let first = match first {
        Ok(summary) => summary,
        // Faults that came back every time end it; what it did stands, and the next pull goes on.
        Err(failure) if failure.ends_with("(throttled)") || failure.ends_with("(server)") => return,
        Err(failure) => panic!("pull activity failed: {failure}"),
    };
    let (kept, never) = expected(&world, world.last_start);
    check_rows(&world, &kept, &never, true);
    let refused: Vec<&(String, u64)> =
        kept.values().filter(|(c, _)| world.dataverse.refuse.contains(c) || lookup_refused(&world, c)).collect();
    let unread = !world.salesmanago.refused_lookups.is_empty();
    assert_eq!(first.tally.failed() > 0, !refused.is_empty() || unread, "refused rows are listed: {:?}", first.tally);
    for listed in &first.tally.not_done {
        assert!(
            listed.reason.contains("refused this activity (simulated)")
                || listed.reason.contains("The contacts could not be read (simulated)"),
            "listed with Dynamics' or SALESmanago's reason: {listed:?}"
        );
    }
    let watermark: Option<u64> =
        text(&world.dataverse.record, integration::ACTIVITY_WATERMARK).and_then(|w| w.parse().ok());
    if let Some(oldest_refused) = refused.iter().map(|(_, at)| *at).min() {
        // A contact SALESmanago would not read may hold events older than any taken: then the
        // watermark does not move at all.
        match watermark {
            Some(watermark) => {
                assert!(
                    watermark < oldest_refused,
                    "the watermark {watermark} passed a refused row at {oldest_refused}"
                )
            }
            None => assert!(unread, "events were taken, yet no watermark"),
        }
    }

    // Later: new events, one SALESmanago records late (before the newest it had), the refused
    // contacts accepted now, no faults. Everything kept is there, once.
    world.now += 6 * 3_600_000;
    let newest = watermark.unwrap_or(START);
    for sm_id in &known {
        if !world.rng.chance(200) {
            continue;
        }
        let window =
            if world.rng.chance(300) { (newest - 12 * 3_600_000, newest) } else { (newest, world.now - 60_000) };
        let count = 1 + world.rng.below(3);
        world.salesmanago.add_activity(sm_id, &mut world.rng, count, window);
    }
    world.dataverse.refuse.clear();
    world.salesmanago.refuse_lookup.clear();
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    let before: BTreeSet<String> = world.dataverse.activities.keys().cloned().collect();
    let second = world.run(BulkJob::PullActivity, 0).expect("a clean pull succeeds");
    let created = world.dataverse.activities.keys().filter(|id| !before.contains(*id)).count() as u64;
    assert_eq!(second.tally.done, created, "the summary counts the rows it created: {:?}", second.tally);
    // Every contact with a SALESmanago id is counted; those SALESmanago no longer has apart.
    let with_id = world.dataverse.contacts.values().filter(|r| text(r, contact::SALESMANAGO_ID).is_some());
    let gone = world
        .dataverse
        .contacts
        .values()
        .filter(|r| text(r, contact::SALESMANAGO_ID).is_some_and(|i| i.starts_with("gone-")));
    assert_eq!(
        (second.tally.total, second.tally.missing),
        (with_id.count() as u64, gone.count() as u64),
        "{:?}",
        second.tally
    );
    let (kept, never) = expected(&world, world.last_start);
    check_rows(&world, &kept, &never, false);
    let rows = world.dataverse.activities.clone();

    // Nothing new: nothing is created, and nothing goes but what grew older than the days kept.
    world.now += 3_600_000;
    let watermark: u64 =
        text(&world.dataverse.record, integration::ACTIVITY_WATERMARK).and_then(|w| w.parse().ok()).unwrap_or(0);
    let again = world.run(BulkJob::PullActivity, 0).expect("a clean pull succeeds");
    assert_eq!(again.tally.done, 0, "nothing new, nothing created: {:?}", again.tally);
    // The last day's rows are sent again and found there already.
    let (kept, _) = expected(&world, world.last_start);
    let recent = kept.values().any(|(_, at)| *at >= watermark.saturating_sub(DAY) + 1000);
    assert_eq!(again.tally.same > 0, recent, "the last day's rows are counted there already: {:?}", again.tally);
    let days = world.dataverse.record.get(integration::ACTIVITY_DAYS).and_then(Value::as_u64).unwrap_or(90);
    let oldest = world.last_start.saturating_sub(days * DAY);
    for (id, row) in &rows {
        let at = text(row, activity::ACTUAL_END).unwrap_or_default();
        let kept = at >= iso_datetime(oldest + CLOCK_ERROR_MS);
        assert!(!kept || world.dataverse.activities.contains_key(id), "{id} at {at} went, within the days kept");
    }
    assert!(world.dataverse.activities.keys().all(|id| rows.contains_key(id)), "nothing new appeared");

    // Fewer days kept: the older rows go.
    world.dataverse.record.insert(integration::ACTIVITY_DAYS.into(), 7u64.into());
    world.now += 60_000;
    world.run(BulkJob::PullActivity, 0).expect("a clean pull succeeds");
    let cutoff = iso_datetime(world.last_start.saturating_sub(7 * DAY + CLOCK_ERROR_MS));
    for (id, row) in &world.dataverse.activities {
        let at = text(row, activity::ACTUAL_END).unwrap_or_default();
        assert!(at >= cutoff, "{id} at {at} is older than the 7 days kept");
    }
}

#[test]
fn pull_activity_puts_each_kept_event_on_its_timeline_once() {
    for_each_seed("pull_activity", |seed| size(seed) / 2, pull_activity);
}
