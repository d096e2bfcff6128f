//! The contact commands on random contacts, under faults: send and sync on save leave each
//! contact's status as SALESmanago has it (its id, the address it went by, its newsletter
//! opt-out, a consent granted in the save with the save's date), and take a renamed contact's
//! SALESmanago contact along; fetch fills the form with what differs and says how many columns
//! the form took; the check on open says whether anything differs and writes nothing; delete
//! removes a contact from Dynamics only once SALESmanago no longer has it (or has it opted out),
//! keeps the SALESmanago contact another Dynamics contact shares, says what it did, and does
//! nothing when the user declines; a failure after a save shows on the form. SALESmanago now and
//! then refuses to look a contact up, and no longer knows the id some contacts carry; the form
//! now and then fails or lacks columns. The built-in mapping never reads a full card.

use salesmanago_dynamics::core::consent::Key;
use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, SyncStatus};
use salesmanago_dynamics::core::i18n::Message;
use salesmanago_dynamics::core::job::contact::{FormAction, Level, Task, DIFFERS, STANDING, SYNC};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::mapping::normalize;

use super::salesmanago::SmRecord;
use super::{for_each_seed, size, text, Habits, World};

/// A contact's e-mail as SALESmanago keys it.
fn address(row: &Map) -> Option<String> {
    text(row, contact::EMAIL).map(|e| e.trim().to_ascii_lowercase())
}

/// What a delete may change of a SALESmanago contact.
fn standing(sm: Option<&SmRecord>) -> Option<(String, bool, bool)> {
    sm.map(|s| (s.id.clone(), s.opted_out, s.phone_opted_out))
}

/// How a rename before a send went: the SALESmanago contact's id, the address it had, and
/// whether the new address belongs to another SALESmanago contact.
struct Rename {
    sm_id: String,
    previous: String,
    taken: bool,
}

fn contact_commands(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let opt_out_only = world.rng.chance(300);
    world.dataverse.record.insert(integration::OPT_OUT_ON_DELETE.into(), opt_out_only.into());
    // Now and then a user whose role does not let them delete contacts.
    world.dataverse.may_delete = !world.rng.chance(200);
    // Now and then an org whose changes go through the relay's webhook.
    let webhooks = world.rng.chance(200);
    world.dataverse.record.insert(integration::WEBHOOKS.into(), webhooks.into());
    // Half the worlds: a user who declines some deletes, a form that fails or lacks columns.
    if world.rng.below(2) == 0 {
        world.habits = Habits {
            declines: 1 + world.rng.below(300),
            fails: 1 + world.rng.below(100),
            lacks: 200 + world.rng.below(600),
        };
    }
    let clean = {
        let f = world.salesmanago.faults;
        f.throttle + f.server_error + f.timeout + f.malformed == 0
    };
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    // Contacts that share an e-mail, already in SALESmanago: deleting one must keep it there.
    let shared: Vec<String> = ids
        .iter()
        .filter(|id| address(&world.dataverse.contacts[*id]).is_some_and(|a| a.starts_with("shared")))
        .cloned()
        .collect();
    for id in &shared {
        let email = address(&world.dataverse.contacts[id]).expect("an address");
        if world.salesmanago.by_email(&email).is_none() {
            world.salesmanago.add_foreign(&email, world.now);
        }
    }
    for (n, id) in ids.iter().enumerate() {
        let row = world.dataverse.contacts.get_mut(id).expect("a contact");
        // A SALESmanago id SALESmanago no longer knows (the contact was deleted there, and came
        // back under another id): the commands find the contact by e-mail.
        let synced = row.get(contact::SYNC_STATUS).and_then(Value::as_i64) == Some(SyncStatus::Synced.value().into());
        if world.rng.chance(100) && !synced {
            row.insert(contact::SALESMANAGO_ID.into(), format!("sm-gone-{n}").into());
            if let Some(email) = text(row, contact::EMAIL).and_then(|e| normalize::email(&e).ok()) {
                if world.salesmanago.by_email(&email).is_none() {
                    world.salesmanago.add_foreign(&email, world.now);
                }
            }
        }
        // A contact SALESmanago refuses to look up.
        if world.rng.chance(30) {
            world.salesmanago.refuse_lookup.extend(address(row));
        }
    }
    let mut renames = 0;
    for _ in 0..30 {
        let id =
            match shared.is_empty() || world.rng.below(4) != 0 {
                true => ids[world.rng.below(ids.len() as u64) as usize].clone(),
                // The first of the contacts left with a shared address: the one a read of its
                // address that stops at one row would find alone.
                false => {
                    let pick = address(
                        &world
                            .dataverse
                            .contacts
                            .get(&shared[world.rng.below(shared.len() as u64) as usize])
                            .cloned()
                            .unwrap_or_default(),
                    );
                    world.dataverse.contacts.iter().find(|(_, r)| pick.is_some() && address(r) == pick).map_or_else(
                        || ids[world.rng.below(ids.len() as u64) as usize].clone(),
                        |(first, _)| first.clone(),
                    )
                }
            };
        let Some(before) = world.dataverse.contacts.get(&id).cloned() else { continue };
        // Another Dynamics contact with its address, whose SALESmanago contact must stay.
        let sharer = world
            .dataverse
            .contacts
            .iter()
            .any(|(other, row)| *other != id && address(row).is_some_and(|a| Some(a) == address(&before)));
        // SALESmanago users change opt-outs and consents of contacts sent before, and names.
        if world.rng.below(5) == 0 {
            world.salesmanago.change_consents(&mut world.rng);
        }
        if world.rng.below(3) == 0 {
            if let Some(sm) = address(&before).and_then(|a| world.salesmanago.edit(&a)) {
                sm.name = format!("Edited {renames}");
            }
        }
        // Or its newsletter: opted out there, or back in.
        if world.rng.below(4) == 0 {
            if let Some(sm) = address(&before).and_then(|a| world.salesmanago.edit(&a)) {
                sm.opted_out = !sm.opted_out;
            }
        }
        world.form.clear();
        world.answers.clear();
        let kind = world.rng.below(5);
        let rename = match kind {
            2 | 3 if world.rng.below(3) == 0 => rename(&mut world, &id, renames),
            _ => None,
        };
        renames += 1;
        let task = match kind {
            0 => Task::Fetch { id: Some(id.clone()) },
            1 => Task::Check { id: Some(id.clone()) },
            2 => Task::Send { id: Some(id.clone()), dirty: false },
            3 => {
                let mut changed = vec!["firstname".to_owned(), contact::DO_NOT_BULK_EMAIL.to_owned()];
                if rename.is_some() {
                    changed.push(contact::EMAIL.into());
                }
                // Now and then the user grants the consent in this very save: a deliberate grant,
                // which must reach SALESmanago even where no agreement was recorded.
                if world.rng.below(2) == 0 {
                    let row = world.dataverse.contacts.get_mut(&id).expect("a contact");
                    row.insert("new_consent_marketing".into(), true.into());
                    changed.push("new_consent_marketing".into());
                }
                Task::Saved { id: Some(id.clone()), changed }
            }
            // A form not saved yet: nothing to delete.
            _ if world.rng.chance(50) => Task::Delete { ids: Vec::new(), on_form: true, user: "u-1".into() },
            _ => Task::Delete { ids: vec![id.clone()], on_form: world.rng.chance(500), user: "u-1".into() },
        };
        // As the save left it (renamed, a consent granted in it).
        let before = world.dataverse.contacts.get(&id).cloned().unwrap_or(before);
        let held_before = standing(world.in_salesmanago(&before));
        let writes_before = world.salesmanago.writes;
        let started = world.now;
        let mut job = world.start_contact(task.clone());
        let result = world.drive(&mut job, None).expect("driven to the end");
        let after = world.dataverse.contacts.get(&id).cloned();
        let status = after.as_ref().and_then(|r| r.get(contact::SYNC_STATUS)).and_then(Value::as_i64);
        let failed_on_dataverse = matches!(&result, Err(f) if f.ends_with("(dataverse)"));
        let answer = world.answers.last().cloned();
        match (&task, &result) {
            (Task::Saved { .. }, _) if webhooks => {
                // The webhook sends it: the browser sends nothing and writes nothing.
                assert!(result.is_ok(), "{result:?}");
                assert_eq!(world.salesmanago.writes, writes_before, "{id}: sent from the browser too");
                assert_eq!(after.as_ref(), Some(&before), "{id}: written from the browser");
            }
            (Task::Send { .. } | Task::Saved { .. }, Ok(_)) => {
                let row = after.clone().expect("still there");
                let sm = world.in_salesmanago(&row).expect("sent to SALESmanago").clone();
                assert_eq!(status, Some(i64::from(SyncStatus::Synced.value())), "{id}: {row:?}");
                assert_eq!(text(&row, contact::SALESMANAGO_ID).as_deref(), Some(sm.id.as_str()));
                // The address it went by, which the next send's rename starts from.
                assert_eq!(text(&row, contact::SALESMANAGO_EMAIL), Some(sm.email.clone()), "{id}: {row:?}");
                // Its newsletter opt-out as both sides now agree on it; unless it went to the
                // SALESmanago contact of its new address, not read first, because another
                // Dynamics contact keeps its old one (a limit: its opt-out comes with the next
                // Send or Pull consents).
                let unread = rename.as_ref().is_some_and(|r| {
                    world.dataverse.contacts.values().any(|o| address(o).as_deref() == Some(&r.previous))
                });
                let opted_out = row.get(contact::DO_NOT_BULK_EMAIL) == Some(&Value::Bool(true));
                assert!(
                    unread || opted_out == sm.opted_out,
                    "{id}: the newsletter differs after a send: {row:?} {sm:?}"
                );
                if let Task::Saved { changed, .. } = &task {
                    if changed.iter().any(|c| c == "new_consent_marketing") {
                        assert_eq!(
                            sm.consents.get("MARKETING"),
                            Some(&true),
                            "{id}: the consent granted in this save did not reach SALESmanago"
                        );
                        let on = sm.agreed_on.get("MARKETING").copied().unwrap_or_default();
                        assert!((started..=world.now).contains(&on), "{id}: agreed on {on}, saved at {started}");
                        let base = ContactRow::from_json(&row).base;
                        assert_eq!(base.get(&Key::Consent("MARKETING".into())), Some(true), "{id}: {row:?}");
                    }
                }
                if let Some(Rename { sm_id, previous, taken }) = &rename {
                    // The SALESmanago contact goes along, unless another Dynamics contact still
                    // has the address it had (then it stays theirs); a rename to an address
                    // another SALESmanago contact has is refused, unless the contact stays.
                    let kept = world.dataverse.contacts.values().any(|r| address(r).as_deref() == Some(previous));
                    assert!(!taken || kept || !clean, "{id}: renamed onto another contact's address");
                    if !kept {
                        assert_eq!(&sm.id, sm_id, "{id}: renamed, it left its SALESmanago contact behind");
                    }
                }
                // Just sent: the check on open finds nothing that differs (but that limit).
                let mut check = world.start_contact(Task::Check { id: Some(id.clone()) });
                if let Ok(summary) = world.drive(&mut check, None).expect("driven to the end") {
                    let said = summary.message;
                    assert!(unread || said == Message::AlreadyMatches, "{id}: just sent, yet {said:?}: {row:?} {sm:?}");
                }
            }
            (Task::Send { .. } | Task::Saved { .. }, Err(failure)) if failure.ends_with("(skipped)") => {
                assert_eq!(status, Some(i64::from(SyncStatus::Skipped.value())), "{id}: {failure}");
            }
            (Task::Send { .. } | Task::Saved { .. }, Err(failure)) if !failed_on_dataverse => {
                assert_eq!(status, Some(i64::from(SyncStatus::Failed.value())), "{id}: {failure}");
                assert!(
                    after.as_ref().and_then(|r| text(r, contact::LAST_ERROR)).is_some(),
                    "{id}: the reason is kept"
                );
                if let Some(Rename { previous, taken: true, .. }) = &rename {
                    let new = address(&before).unwrap_or_default();
                    let refused = [&new, previous].iter().any(|a| world.salesmanago.refuse_lookup.contains(*a));
                    if clean && !refused && !world.salesmanago.rejects(&before) {
                        assert!(failure.ends_with("(emailTaken)"), "{id}: {failure}");
                    }
                }
            }
            (Task::Fetch { .. }, Ok(summary)) => {
                let filled =
                    world.form.iter().find_map(|a| if let FormAction::Fill(c) = a { Some(c.clone()) } else { None });
                match (world.in_salesmanago(&before), filled) {
                    (Some(_), Some(columns)) => {
                        assert!(!columns.is_empty());
                        // As many as the form had.
                        let took = answer.clone().expect("the form answered").expect("the form filled");
                        let said = if took == 0 { Message::AlreadyMatches } else { Message::Fetched { fields: took } };
                        assert_eq!(summary.message, said, "{id}: the form took {took} of {columns:?}");
                    }
                    (Some(_), None) => assert_eq!(summary.message, Message::AlreadyMatches),
                    (None, filled) => {
                        // Found by its SALESmanago id only, or not at all.
                        let by_id =
                            text(&before, contact::SALESMANAGO_ID).and_then(|i| world.salesmanago.by_id(&i).cloned());
                        assert!(by_id.is_some() || filled.is_none(), "{id}: filled from nowhere");
                    }
                }
            }
            (Task::Fetch { .. }, Err(failure)) if matches!(answer, Some(Err(_))) => {
                assert!(failure.ends_with("(dataverse)"), "{id}: the form failed, yet {failure}");
            }
            (Task::Check { .. }, Ok(summary)) => {
                let warned = world
                    .form
                    .iter()
                    .any(|a| matches!(a, FormAction::Notify { id: DIFFERS, level: Level::Warning, message: Some(_) }));
                assert_eq!(warned, format!("{:?}", summary.message).contains("Differs"), "{:?}", world.form);
                // What SALESmanago knows of it shows on the form, its opt-out as SALESmanago has
                // it; for a contact it does not hold, nothing (found by e-mail, or by the id
                // the row holds).
                let standing = world.form.iter().find_map(|a| match a {
                    FormAction::Notify { id: STANDING, level: Level::Info, message } => Some(message.clone()),
                    _ => None,
                });
                let by_id = text(&before, contact::SALESMANAGO_ID).and_then(|i| world.salesmanago.by_id(&i).cloned());
                match by_id.or_else(|| held_before.as_ref().and_then(|(i, ..)| world.salesmanago.by_id(i).cloned())) {
                    Some(sm) => assert!(
                        matches!(&standing, Some(Some(Message::Standing { opted_out: Some(o), .. })) if *o == sm.opted_out),
                        "{id}: {standing:?} for {sm:?}"
                    ),
                    None => assert_eq!(standing, Some(None), "{id}: a standing for a contact SALESmanago lacks"),
                }
            }
            (Task::Delete { ids, .. }, _) if ids.is_empty() => {
                // Nothing asked, nothing changed.
                assert!(matches!(&result, Err(f) if f.ends_with("(saveFirst)")), "{result:?}");
                assert!(world.form.is_empty(), "{:?}", world.form);
                assert_eq!(world.salesmanago.writes, writes_before);
            }
            (Task::Delete { .. }, _) if matches!(answer, Some(Ok(0) | Err(_))) => {
                // Declined, or the form could not ask: nothing happens anywhere.
                assert_eq!(after.as_ref(), Some(&before), "{id}: changed in Dynamics: {result:?}");
                assert_eq!(world.salesmanago.writes, writes_before, "{id}: changed in SALESmanago: {result:?}");
                match &answer {
                    Some(Ok(_)) => {
                        let nothing = Message::Deleted { deleted: 0, failures: Vec::new(), kept: 0, opt_out_only };
                        assert!(matches!(&result, Ok(s) if s.message == nothing), "{id}: declined, yet {result:?}");
                    }
                    _ => assert!(failed_on_dataverse, "{id}: the form failed, yet {result:?}"),
                }
            }
            (Task::Delete { .. }, Ok(summary)) => {
                assert!(after.is_none(), "{id}: deleted, yet still in Dynamics");
                // Kept in SALESmanago for the other contact with its address.
                let kept =
                    usize::from(sharer && normalize::email(&text(&before, contact::EMAIL).unwrap_or_default()).is_ok());
                let said = Message::Deleted { deleted: 1, failures: Vec::new(), kept, opt_out_only };
                assert_eq!(summary.message, said, "{id}");
                if opt_out_only && held_before.is_some() {
                    // Only opted out, never deleted, in SALESmanago.
                    assert!(
                        world.in_salesmanago(&before).is_some(),
                        "{id}: deleted in SALESmanago though the record says opt out only"
                    );
                }
                if held_before.is_some() && sharer {
                    // Neither removed nor opted out: another Dynamics contact still uses it.
                    assert_eq!(
                        standing(world.in_salesmanago(&before)),
                        held_before,
                        "{id}: its SALESmanago contact changed though another Dynamics contact holds its e-mail"
                    );
                }
                if let Some(sm) = world.in_salesmanago(&before) {
                    // It stays for another Dynamics contact with the same e-mail.
                    let shared = world
                        .dataverse
                        .contacts
                        .values()
                        .any(|r| world.in_salesmanago(r).is_some_and(|o| o.id == sm.id));
                    assert!(
                        shared || (opt_out_only && sm.opted_out && sm.phone_opted_out),
                        "{id}: deleted in Dynamics, still in SALESmanago: {sm:?}"
                    );
                }
            }
            (Task::Delete { .. }, Err(failure)) if !world.dataverse.may_delete => {
                // Nothing happens anywhere for want of the right, and the message says why.
                assert_eq!(after.as_ref(), Some(&before), "{id}: changed in Dynamics: {failure}");
                assert_eq!(standing(world.in_salesmanago(&before)), held_before, "{id}: touched in SALESmanago");
                assert!(failure.contains("you may not delete") || failure.contains("(dataverse)"), "{failure}");
            }
            (Task::Delete { .. }, Err(failure)) => {
                assert!(!failure.contains("you may not delete"), "{id}: the user may delete it: {failure}");
                // A contact Dynamics deleted whose answer was lost may be gone; one whose
                // SALESmanago step failed is not.
                if world.in_salesmanago(&before).is_some_and(|sm| !sm.opted_out || !opt_out_only)
                    && !failed_on_dataverse
                {
                    assert!(after.is_some(), "{id}: gone from Dynamics though SALESmanago still has it: {failure}");
                }
            }
            (_, _) => {}
        }
        if let Task::Fetch { .. } | Task::Check { .. } = task {
            // They fill the form or tell; they write nothing.
            assert_eq!(after.as_ref(), Some(&before), "{id}: {task:?} wrote the contact: {result:?}");
        }
        if let (Task::Saved { .. }, Err(_)) = (&task, &result) {
            let shown = world
                .form
                .iter()
                .any(|a| matches!(a, FormAction::Notify { id: SYNC, level: Level::Error, message: Some(_) }));
            assert!(shown, "a failure after a save shows on the form: {:?}", world.form);
        }
        world.now += 1000 + world.rng.below(60_000);
    }
    world.check_synced();
    world.salesmanago.check_unique();
    // The built-in mapping brings nothing from a full card: none is read.
    assert_eq!(world.salesmanago.card_reads, 0, "a full card read for the built-in mapping");
}

/// Changes the e-mail of contact `id`, when SALESmanago holds its SALESmanago id: to a new
/// address, or (half the time) to one another SALESmanago contact has.
fn rename(world: &mut World, id: &str, n: usize) -> Option<Rename> {
    let row = world.dataverse.contacts.get(id)?;
    let sm = world.salesmanago.by_id(&text(row, contact::SALESMANAGO_ID)?)?;
    let (sm_id, previous) = (sm.id.clone(), sm.email.clone());
    let other =
        world.salesmanago.all().find(|o| o.id != sm_id && !o.email.starts_with("shared")).map(|o| o.email.clone());
    let taken = other.is_some() && world.rng.below(2) == 0;
    let new = match other.filter(|_| taken) {
        Some(email) => email,
        None => format!("renamed-{n}@example.com"),
    };
    let row = world.dataverse.contacts.get_mut(id)?;
    row.insert(contact::EMAIL.into(), new.into());
    Some(Rename { sm_id, previous, taken })
}

#[test]
fn contact_commands_leave_each_contact_as_salesmanago_has_it() {
    for_each_seed("contact_commands", |seed| 20 + size(seed) % 200, contact_commands);
}
