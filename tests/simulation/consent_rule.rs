//! The consent rule, randomized on both sides: contacts whose newsletter, SMS and two consents
//! are changed deliberately in Dynamics and in SALESmanago, in random order, between exports,
//! sends after a save and pulls, some of which are refused. The mapping both ways is the
//! engine's own ([`to_salesmanago`], [`from_salesmanago`]); the oracle is what the users did.
//!
//! After every synchronisation: a value only travels as a copy of the other side's, and a grant
//! only as the copy of a grant that comes from a user's change (made on that side, or travelled
//! there from a user's change), never from a default; an opt-out or a withdrawal a user made is
//! undone only by a grant that comes from a user's change, and never when it was made since both
//! sides last agreed (then both changed, and the withdrawal wins). After the changes stop and a pull, an
//! export and a pull run: both sides agree on every value. `CONSENT_SEED=<n>` replays one seed.

use salesmanago_dynamics::core::consent::Key;

use crate::rng::Rng;
use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::schema::contact;
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::mapping::fields::FieldMapping;
use salesmanago_dynamics::core::mapping::{from_salesmanago, to_salesmanago, Held, OutboundOptions};
use salesmanago_dynamics::core::salesmanago::contact::{SmConsent, SmContact};

const CONSENTS: [&str; 2] = ["MARKETING", "PROFILING"];

fn keys() -> Vec<Key> {
    let mut keys = vec![Key::Newsletter, Key::Sms];
    keys.extend(CONSENTS.iter().map(|c| Key::Consent((*c).into())));
    keys
}

/// The Dynamics column of `key`, and how a granted value is stored there.
fn column(key: &Key) -> (String, bool) {
    match key {
        Key::Newsletter => (contact::DO_NOT_BULK_EMAIL.into(), false),
        Key::Sms => (contact::DO_NOT_SMS.into(), false),
        Key::Consent(name) => (format!("{}{}", contact::CONSENT_PREFIX, name.to_ascii_lowercase()), true),
    }
}

/// One contact on both sides, and what its users did.
struct Contact {
    /// The Dynamics row: the consent-like columns and the base.
    row: Map,
    /// SALESmanago's values, read as granted.
    sm: Vec<(Key, Option<bool>)>,
    /// Per value: whether Dynamics' and SALESmanago's current values come from a user's
    /// change (on that side, or travelled from the other), rather than from a default.
    deliberate: Vec<(Key, (bool, bool))>,
    /// Per value: what both sides last really held at once after a synchronisation (not the
    /// engine's base: the truth the base should follow).
    agreed: Vec<(Key, Option<bool>)>,
}

fn get(list: &[(Key, Option<bool>)], key: &Key) -> Option<bool> {
    list.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v)
}

fn set(list: &mut [(Key, Option<bool>)], key: &Key, value: Option<bool>) {
    if let Some(entry) = list.iter_mut().find(|(k, _)| k == key) {
        entry.1 = value;
    }
}

impl Contact {
    fn new() -> Contact {
        let mut row = Map::new();
        row.insert(contact::ID.into(), "c1".into());
        row.insert(contact::EMAIL.into(), "a@example.com".into());
        // A new contact: the channels allowed by default on both sides, no consent anywhere.
        row.insert(contact::DO_NOT_BULK_EMAIL.into(), false.into());
        row.insert(contact::DO_NOT_SMS.into(), false.into());
        for name in CONSENTS {
            row.insert(column(&Key::Consent(name.into())).0, Value::Null);
        }
        let sm = keys().into_iter().map(|k| (k.clone(), k.is_channel().then_some(true))).collect();
        let deliberate = keys().into_iter().map(|k| (k, (false, false))).collect();
        let agreed = keys().into_iter().map(|k| (k, None)).collect();
        Contact { row, sm, deliberate, agreed }
    }

    fn dynamics(&self, key: &Key) -> Option<bool> {
        let (column, granted) = column(key);
        self.row.get(&column).and_then(Value::as_bool).map(|v| v == granted)
    }

    fn set_dynamics(&mut self, key: &Key, value: bool) {
        let (column, granted) = column(key);
        self.row.insert(column, (value == granted).into());
    }

    /// SALESmanago's answer for a pull: `basic`, with the consents listed.
    fn answer(&self) -> SmContact {
        let mut sm = SmContact {
            opted_out: get(&self.sm, &Key::Newsletter).map(|v| !v),
            opted_out_phone: get(&self.sm, &Key::Sms).map(|v| !v),
            consents_listed: true,
            ..SmContact::default()
        };
        for name in CONSENTS {
            if let Some(granted) = get(&self.sm, &Key::Consent(name.into())) {
                sm.consents.push(SmConsent { name: name.into(), accepted: granted, opted_out: !granted, date: None });
            }
        }
        sm
    }

    fn origin(&mut self, key: &Key) -> &mut (bool, bool) {
        &mut self.deliberate.iter_mut().find(|(k, _)| k == key).expect("every key").1
    }

    /// After a synchronisation (`before`: the values before it; `done`: it went through): each
    /// value that changed is a copy of the other side's, and a grant that travelled comes from a
    /// user's change.
    ///
    /// `saved`: the columns a save changed. A change one side made since the two last agreed,
    /// while the other side holds what was agreed (and the save did not change it), is never
    /// undone: it wins, or waits.
    fn check(&mut self, before: &[(Key, Option<bool>, Option<bool>)], step: &str, done: bool, saved: &[String]) {
        for (key, dynamics, salesmanago) in before {
            let (now_d, now_s) = (self.dynamics(key), get(&self.sm, key));
            let agreed = get(&self.agreed, key);
            if agreed.is_some() && !saved.iter().any(|c| Key::of_column(c).as_ref() == Some(key)) {
                if *dynamics == agreed && *salesmanago != agreed {
                    assert_eq!(now_s, *salesmanago, "{step} undid SALESmanago's change of {key:?}");
                }
                if *salesmanago == agreed && *dynamics != agreed {
                    assert_eq!(now_d, *dynamics, "{step} undid Dynamics' change of {key:?}");
                }
            }
            let (from_d, from_s) = *self.origin(key);
            if now_d != *dynamics {
                assert_eq!(now_d, now_s, "{step}: {key:?} reached Dynamics, not as SALESmanago's value");
                assert!(now_d != Some(true) || from_s, "{step} gave {key:?} in Dynamics from SALESmanago's default");
                self.origin(key).0 = from_s;
            }
            if now_s != *salesmanago {
                assert_eq!(now_s, now_d, "{step}: {key:?} reached SALESmanago, not as Dynamics' value");
                assert!(now_s != Some(true) || from_d, "{step} gave {key:?} in SALESmanago from Dynamics' default");
                self.origin(key).1 = from_d;
            }
            // A withdrawal (or opt-out) a side holds since the two last agreed is a change of
            // that side: a grant from the other side never undoes it.
            for (side, was, now) in [("Dynamics", *dynamics, now_d), ("SALESmanago", *salesmanago, now_s)] {
                if was == Some(false) && now == Some(true) {
                    assert_eq!(
                        agreed,
                        Some(false),
                        "{step} undid a withdrawal of {key:?} in {side} made since both sides last agreed"
                    );
                }
            }
            // Only a synchronisation that went through makes the two sides agree (they may hold
            // the same value by chance before it).
            if done && now_d.is_some() && now_d == now_s {
                set(&mut self.agreed, key, now_d);
            }
        }
    }

    fn values(&self) -> Vec<(Key, Option<bool>, Option<bool>)> {
        keys().into_iter().map(|k| (k.clone(), self.dynamics(&k), get(&self.sm, &k))).collect()
    }
}

/// What a synchronisation does, and where it may fail.
#[derive(Debug, Clone)]
enum Sync {
    Export,
    /// Sync on save, with the columns the save changed.
    Saved(Vec<String>),
    Pull,
}

/// Runs `sync`; `fails`: SALESmanago refuses, or Dynamics refuses the write of a pull
/// (nothing happens either way).
///
/// Not modelled: a write-back lost after SALESmanago took an export's change. The base is then
/// stale, and a SALESmanago change of that value back to the old base before the next pull is
/// taken for no change (see the limits in `core::consent`).
fn sync(c: &mut Contact, sync: Sync, fails: u64) {
    match sync {
        Sync::Export | Sync::Saved(_) => {
            // Sync on save reads SALESmanago first; an export does not.
            let (changed, salesmanago) = match sync {
                Sync::Saved(changed) => (changed, Held::Found(Box::new(c.answer()))),
                _ => (Vec::new(), Held::Unread),
            };
            let options = OutboundOptions { now_ms: 1, changed, salesmanago, previous_shared: false };
            let outbound =
                to_salesmanago(&ContactRow::from_json(&c.row), &options, &FieldMapping::NONE).expect("a valid contact");
            if fails == 1 {
                return;
            }
            let d = &outbound.details;
            for (key, opt_out, opt_in) in [
                (Key::Newsletter, d.force_opt_out, d.force_opt_in),
                (Key::Sms, d.force_phone_opt_out, d.force_phone_opt_in),
            ] {
                assert!(!(opt_out && opt_in), "both forced");
                if opt_out || opt_in {
                    set(&mut c.sm, &key, Some(opt_in));
                }
            }
            for consent in &d.consent_details {
                set(&mut c.sm, &Key::Consent(consent.consent_name.clone()), Some(consent.consent_accept));
            }
            // The write-back: the base, and what SALESmanago changed (when it was read first).
            if let Some(base) = outbound.base {
                c.row.insert(contact::CONSENT_BASE.into(), base.into());
            }
            for (column, value) in outbound.dynamics.iter() {
                c.row.insert(column.clone(), value.clone());
            }
        }
        Sync::Pull => {
            if fails == 1 {
                return;
            }
            let patch = from_salesmanago(&ContactRow::from_json(&c.row), &c.answer(), &FieldMapping::NONE);
            if let Some(columns) = patch.write(0) {
                for (column, value) in columns.iter() {
                    c.row.insert(column.clone(), value.clone());
                }
            }
        }
    }
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..50 {
        let mut c = Contact::new();
        let keys = keys();
        for _ in 0..40 {
            let fails = u64::from(rng.below(5) == 0);
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            let (step, synced) = match rng.below(7) {
                // A user's change on a form, or elsewhere (an import, a bulk edit); a change
                // makes the value the other one (or one, where there is none).
                kind @ (0 | 1) => {
                    let value = c.dynamics(&key).map_or(rng.below(2) == 0, |v| !v);
                    c.set_dynamics(&key, value);
                    c.origin(&key).0 = true;
                    if kind == 0 {
                        // The save sends it at once (sync on save).
                        (format!("sync on save of {key:?} (failure {fails})"), Some(Sync::Saved(vec![column(&key).0])))
                    } else {
                        (format!("a change of {key:?} in Dynamics"), None)
                    }
                }
                2 => {
                    let value = get(&c.sm, &key).map_or(rng.below(2) == 0, |v| !v);
                    set(&mut c.sm, &key, Some(value));
                    c.origin(&key).1 = true;
                    (format!("a change of {key:?} in SALESmanago"), None)
                }
                3 => (format!("an export (failure {fails})"), Some(Sync::Export)),
                // "Send to SALESmanago": reads SALESmanago first, as a save does, with no change.
                4 if rng.below(2) == 0 => (format!("a send (failure {fails})"), Some(Sync::Saved(Vec::new()))),
                // A save that changed other columns only: no consent of it is the user's change.
                4 => {
                    let changed = vec!["firstname".to_owned(), contact::EMAIL.to_owned()];
                    (format!("sync on save of the name (failure {fails})"), Some(Sync::Saved(changed)))
                }
                _ => (format!("a pull (failure {fails})"), Some(Sync::Pull)),
            };
            if let Some(op) = synced {
                let before = c.values();
                let saved = if let Sync::Saved(changed) = &op { changed.clone() } else { Vec::new() };
                sync(&mut c, op, fails);
                c.check(&before, &step, fails == 0, &saved);
            }
            if std::env::var("CONSENT_SEED").is_ok() {
                eprintln!("{step}: {:?}, base {:?}", c.values(), c.row.get(contact::CONSENT_BASE));
            }
        }
        // The changes stop: a pull, an export, a send (which reads SALESmanago first: a grant
        // the two sides never agreed on waits for one) and a pull bring both sides together.
        for op in [Sync::Pull, Sync::Export, Sync::Saved(Vec::new()), Sync::Pull] {
            let before = c.values();
            let step = format!("{op:?} at the end");
            sync(&mut c, op, 0);
            c.check(&before, &step, true, &[]);
        }
        for (key, dynamics, salesmanago) in c.values() {
            // A consent a side holds none of is not given.
            let given = |value: Option<bool>| if key.is_channel() { value } else { Some(value.unwrap_or(false)) };
            assert_eq!(given(dynamics), given(salesmanago), "{key:?} differs at the end: {:?}", c.row);
        }
    }
}

#[test]
fn no_consent_is_granted_that_nobody_gave_and_both_sides_agree_in_the_end() {
    let seeds: Vec<u64> = match std::env::var("CONSENT_SEED") {
        Ok(seed) => vec![seed.parse().expect("CONSENT_SEED is a number")],
        Err(_) => (1..=300).collect(),
    };
    for seed in seeds {
        if std::panic::catch_unwind(|| run(seed)).is_err() {
            panic!("the consent rule failed for seed {seed}: replay with CONSENT_SEED={seed} cargo test --test simulation consent -- --nocapture");
        }
    }
}
