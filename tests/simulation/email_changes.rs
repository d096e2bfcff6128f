//! E-mail changes: synced contacts whose address changes in Dynamics, then Send on some of them
//! and Export all or Export changes, under faults, then a clean Export all. SALESmanago renames a contact on
//! `newEmail` and keeps its id; an address another SALESmanago contact has is refused.
//!
//! After the clean run each Dynamics contact has one SALESmanago contact, through its change:
//! renamed, the id kept and nothing left behind under the old address; a change of case only
//! is no change; a contact that left an address another Dynamics contact still holds has a
//! contact of its own, and the old one stays theirs; one moved to an address another
//! SALESmanago contact has is failed with that reason, and nothing is merged.

use std::collections::BTreeSet;

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::{contact, SyncStatus};
use salesmanago_dynamics::core::job::contact::Task;
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::mapping::normalize;

use super::{for_each_seed, size, text, Faults, World};

/// How a contact's e-mail changed.
#[derive(Debug)]
enum Moved {
    /// To an address nobody has: renamed in SALESmanago.
    Renamed,
    /// Its case only: nothing to rename.
    Same,
    /// From an address another Dynamics contact keeps: a SALESmanago contact of its own.
    Left,
    /// To the address of another SALESmanago contact (this one): refused.
    Taken(String),
}

fn address(row: &Map) -> String {
    normalize::email(&text(row, contact::EMAIL).unwrap_or_default()).unwrap_or_default()
}

fn status(row: &Map) -> Option<i64> {
    row.get(contact::SYNC_STATUS).and_then(Value::as_i64)
}

const SYNCED: i64 = SyncStatus::Synced as i64;
const FAILED: i64 = SyncStatus::Failed as i64;

fn email_changes(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let faults = (world.dataverse.faults, world.salesmanago.faults);
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    world.now += 3_600_000;

    // The contacts synced, with their SALESmanago ids and addresses.
    let synced: Vec<(String, String, String)> = world
        .dataverse
        .contacts
        .iter()
        .filter(|(_, row)| status(row) == Some(SYNCED))
        .map(|(id, row)| (id.clone(), text(row, contact::SALESMANAGO_ID).unwrap_or_default(), address(row)))
        .collect();
    let holders = |email: &str| synced.iter().filter(|(_, _, e)| e == email).count();
    let mut touched = BTreeSet::new();
    let mut moved: Vec<(String, String, String, Moved)> = Vec::new();
    // In half the larger worlds (seeds 25, 75, …: the mutants' reduced set holds 25) a bulk edit
    // (an import, a script) moves 150 contacts in a row (as Dataverse orders them, so many share
    // a page of 400) onto addresses other SALESmanago contacts have: far more refusals in a page
    // than one lookup verifies.
    if synced.len() >= 600 && seed % 50 == 25 {
        let mut in_order: Vec<&(String, String, String)> = synced.iter().filter(|(_, _, e)| holders(e) == 1).collect();
        in_order.sort_by_key(|(id, ..)| crate::dataverse::sql_key(id));
        let first = world.rng.below(in_order.len().saturating_sub(150) as u64 + 1) as usize;
        in_order.truncate(first + 150);
        for (n, (id, sm_id, from)) in in_order[first..].iter().enumerate() {
            let foreign = format!("bulk{n}.{seed}@example.net");
            let taker = world.salesmanago.add_foreign(&foreign, world.now);
            touched.insert(id.clone());
            let row = world.dataverse.contacts.get_mut(id).expect("a contact");
            row.insert(contact::EMAIL.into(), foreign.into());
            world.dataverse.touch(id, world.now);
            moved.push((id.clone(), sm_id.clone(), from.clone(), Moved::Taken(taker)));
        }
    }
    for (n, (id, sm_id, from)) in synced.iter().enumerate() {
        if touched.contains(id) || !world.rng.chance(120) {
            continue;
        }
        let fresh = format!("moved{n}.{seed}@example.org");
        let (new, kind) = if holders(from) > 1 {
            // A shared address: another holder keeps it.
            let Some(keeper) = synced.iter().find(|(o, _, e)| e == from && o != id && !touched.contains(o)) else {
                continue;
            };
            touched.insert(keeper.0.clone());
            (fresh, Moved::Left)
        } else {
            match world.rng.below(6) {
                0 => (format!("  {}  ", from.to_ascii_uppercase()), Moved::Same),
                1 => {
                    let foreign = format!("foreign{n}.{seed}@example.net");
                    let taker = world.salesmanago.add_foreign(&foreign, world.now);
                    (foreign.to_ascii_uppercase(), Moved::Taken(taker))
                }
                2 => {
                    // The address of another synced contact, which keeps it.
                    let Some((other, other_sm, other_email)) =
                        synced.iter().find(|(o, _, e)| !touched.contains(o) && o != id && holders(e) == 1)
                    else {
                        continue;
                    };
                    touched.insert(other.clone());
                    (other_email.clone(), Moved::Taken(other_sm.clone()))
                }
                3 => (fresh.to_ascii_uppercase(), Moved::Renamed),
                _ => (fresh, Moved::Renamed),
            }
        };
        touched.insert(id.clone());
        let row = world.dataverse.contacts.get_mut(id).expect("a contact");
        row.insert(contact::EMAIL.into(), new.into());
        world.dataverse.touch(id, world.now);
        moved.push((id.clone(), sm_id.clone(), from.clone(), kind));
    }

    // Under faults: Send on some of them, then Export all or Export changes (the relay's
    // catch-up), interrupted now and then.
    (world.dataverse.faults, world.salesmanago.faults) = faults;
    for (id, ..) in &moved {
        if world.rng.chance(300) {
            let mut job = world.start_contact(Task::Send { id: Some(id.clone()), dirty: false });
            let _ = world.drive(&mut job, None).expect("driven to the end");
            world.now += 1000 + world.rng.below(10_000);
        }
    }
    let interruptions = world.rng.below(3) as usize;
    let job = if world.rng.below(2) == 0 { BulkJob::ExportAll } else { BulkJob::ExportChanges };
    if let Ok(summary) = world.run(job, interruptions) {
        assert!(summary.tally.adds_up(), "{:?}", summary.tally);
    }
    world.check_synced();
    world.salesmanago.check_unique();

    // Clean, again: each contact as its change says.
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.now += 60_000;
    let clean = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    let tally = &clean.tally;
    assert!(tally.adds_up(), "{tally:?}");
    let refused = "already used by another SALESmanago contact";
    let mut taken = 0;
    for (id, sm_id, from, kind) in &moved {
        let row = &world.dataverse.contacts[id];
        let now = address(row);
        let held = text(row, contact::SALESMANAGO_ID).unwrap_or_default();
        let known = text(row, contact::SALESMANAGO_EMAIL);
        let by_id = |id: &str| world.salesmanago.by_id(id).map(|sm| sm.email.clone());
        match kind {
            Moved::Renamed | Moved::Same => {
                assert_eq!(status(row), Some(SYNCED), "{id} ({kind:?}): {row:?}");
                assert_eq!(&held, sm_id, "{id} ({kind:?}): the SALESmanago contact keeps its id");
                assert_eq!(by_id(sm_id), Some(now.clone()), "{id} ({kind:?}): renamed in SALESmanago");
                if now != *from {
                    assert!(world.salesmanago.by_email(from).is_none(), "{id}: a duplicate left under {from}");
                }
                assert_eq!(known.as_deref(), Some(now.as_str()), "{id}: the address SALESmanago knows");
            }
            Moved::Left => {
                assert_eq!(status(row), Some(SYNCED), "{id} (left {from}): {row:?}");
                assert_ne!(&held, sm_id, "{id}: took the SALESmanago contact of {from} away from its other holder");
                assert_eq!(world.salesmanago.by_email(&now).map(|sm| sm.id.clone()), Some(held.clone()), "{id}");
                assert_eq!(by_id(sm_id), Some(from.clone()), "{id}: the contact of {from} stays for its other holder");
            }
            Moved::Taken(taker) => {
                taken += 1;
                assert_eq!(status(row), Some(FAILED), "{id} (moved to {now}): {row:?}");
                let reason = text(row, contact::LAST_ERROR).unwrap_or_default();
                assert!(reason.contains(refused) && reason.contains(&now), "{id}: {reason}");
                if let Some(listed) = tally.not_done.iter().find(|n| n.id == *id) {
                    assert!(!listed.skipped && listed.reason.contains(refused), "{listed:?}");
                }
                assert_eq!(&held, sm_id, "{id}: its SALESmanago contact is still the one it was");
                assert_eq!(by_id(sm_id), Some(from.clone()), "{id}: not renamed, not merged");
                assert_eq!(world.salesmanago.by_email(&now).map(|sm| sm.id.clone()), Some(taker.clone()));
                assert_eq!(known.as_deref(), Some(from.as_str()), "{id}: SALESmanago still knows it by {from}");
            }
        }
    }
    assert!(tally.failed() >= taken, "each refusal counted failed: {tally:?}");
    // Nothing left behind: every contact SALESmanago has is one a Dynamics contact points at,
    // or one of its own.
    let pointed: BTreeSet<String> =
        world.dataverse.contacts.values().filter_map(|row| text(row, contact::SALESMANAGO_ID)).collect();
    for sm in world.salesmanago.all() {
        assert!(pointed.contains(&sm.id) || sm.name == "Foreign", "left behind: {sm:?}");
    }
    // One SALESmanago contact per Dynamics contact, at its address.
    for (id, row) in &world.dataverse.contacts {
        if status(row) == Some(SYNCED) {
            let held = text(row, contact::SALESMANAGO_ID).unwrap_or_default();
            let sm = world.salesmanago.by_id(&held).unwrap_or_else(|| panic!("{id}: {held} is gone"));
            assert_eq!(sm.email, address(row), "{id}");
        }
    }
    world.check_synced();
    world.salesmanago.check_unique();
}

#[test]
fn a_changed_e_mail_renames_the_salesmanago_contact_and_leaves_nothing_behind() {
    for_each_seed("email_changes", |seed| size(seed) / 4, email_changes);
}
