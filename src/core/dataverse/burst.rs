//! A burst of contact changes (an import of 100,000 contacts fires as many webhook deliveries),
//! sent as batch upserts: which change of each contact goes, and which ride on it.
//!
//! Dataverse delivers asynchronous steps in no promised order, so a contact's changes are
//! ordered by the row's version (`versionnumber`, which every write raises; the registered
//! images carry it), not by arrival: in a burst, only each contact's newest change is sent, and
//! a change no newer than one already sent for that contact is stale and not sent at all.
//! Without versions, `modifiedon` orders them, but it counts whole seconds: two changes in the
//! same second are both sent, the later arrival last. A deletion is final: it wins over every
//! change of its contact in the burst.
//!
//! A change in which the user set a consent-like column (the newsletter, SMS, a consent) is never
//! stale: the consent rule sends a grant only as the user's deliberate change, and only a
//! change's own delivery says which columns its request set. When it comes after a newer change
//! of the contact went, the contact goes again, as it is now, with those columns as set by the
//! user; else the grant would be lost to the order of delivery.

use crate::core::sorted::SortedMap;
use crate::prelude::*;

/// One change waiting in a burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The contact's id (compared without case).
    pub contact: String,
    /// The row's version (`versionnumber`), when the event says.
    pub version: Option<u64>,
    /// When the row was modified (Unix ms), when the event says.
    pub modified_ms: Option<u64>,
    /// The contact was deleted.
    pub delete: bool,
    /// The request set a consent-like column.
    pub deliberate: bool,
}

/// What becomes of one change of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Goes to SALESmanago.
    Go,
    /// Rides on the change at this index (its contact's newest or its deletion): its answer is
    /// that change's answer.
    RidesOn(usize),
    /// No newer than what was already sent for its contact: nothing to do.
    Stale,
}

/// What went last for a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    /// Its version.
    pub version: Option<u64>,
    /// Its modification time (Unix ms).
    pub modified_ms: Option<u64>,
}

impl Change {
    /// Whether this change is newer than `other`, or as new and arrived later (`later`).
    fn newer_than(&self, version: Option<u64>, modified_ms: Option<u64>, later: bool) -> bool {
        match (self.version, version) {
            (Some(mine), Some(theirs)) => mine > theirs || (mine == theirs && later),
            _ => match (self.modified_ms, modified_ms) {
                (Some(mine), Some(theirs)) => mine > theirs || (mine == theirs && later),
                // Nothing to order by: the later arrival.
                _ => later,
            },
        }
    }

    /// What went for its contact already holds this change, or a newer one.
    fn went(&self, sent: &Sent) -> bool {
        match (self.version, sent.version) {
            (Some(mine), Some(last)) => mine <= last,
            // Seconds cannot tell two changes of one second apart: only an older one is stale.
            _ => matches!((self.modified_ms, sent.modified_ms), (Some(mine), Some(last)) if mine < last),
        }
    }

    /// What to remember once it went.
    pub fn sent(&self) -> Sent {
        Sent { version: self.version, modified_ms: self.modified_ms }
    }
}

/// The fate of each of `changes`, in order. `sent` tells what went last for a contact
/// (lower-case id).
pub fn coalesce(changes: &[Change], sent: impl Fn(&str) -> Option<Sent>) -> Vec<Fate> {
    // Per contact, the index of the change that stands for all of its changes in the burst.
    let mut winner: SortedMap<String, usize> = SortedMap::new();
    for (index, change) in changes.iter().enumerate() {
        let key = change.contact.to_ascii_lowercase();
        let better = match winner.get(&key) {
            None => true,
            Some(&held) => {
                let held = &changes[held];
                // A deletion is final; else the newer change, the later arrival on a tie.
                !held.delete && (change.delete || change.newer_than(held.version, held.modified_ms, true))
            }
        };
        if better {
            winner.insert(key, index);
        }
    }
    // Contacts with a change that set a consent-like column (sorted, to be sought in a burst of
    // thousands): their newest change goes.
    let mut deliberate: Vec<String> =
        changes.iter().filter(|c| c.deliberate).map(|c| c.contact.to_ascii_lowercase()).collect();
    crate::core::sorted::sort(&mut deliberate);
    deliberate.dedup();
    changes
        .iter()
        .enumerate()
        .map(|(index, change)| {
            let key = change.contact.to_ascii_lowercase();
            let won = winner.get(&key).copied().unwrap_or(index);
            if won != index {
                return Fate::RidesOn(won);
            }
            let stale = !change.delete
                && deliberate.binary_search(&key).is_err()
                && sent(&key).is_some_and(|last| change.went(&last));
            if stale {
                Fate::Stale
            } else {
                Fate::Go
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(contact: &str, modified_ms: Option<u64>, delete: bool) -> Change {
        Change { contact: contact.into(), version: None, modified_ms, delete, deliberate: false }
    }

    fn versioned(contact: &str, version: u64, modified_ms: u64) -> Change {
        Change {
            contact: contact.into(),
            version: Some(version),
            modified_ms: Some(modified_ms),
            delete: false,
            deliberate: false,
        }
    }

    fn at(modified_ms: u64) -> Option<Sent> {
        Some(Sent { version: None, modified_ms: Some(modified_ms) })
    }

    #[test]
    fn each_contact_sends_its_newest_change_whatever_the_arrival_order() {
        let changes = [
            change("A", Some(30), false),
            change("b", Some(10), false),
            change("a", Some(20), false), // older, arrived later
            change("a", Some(40), false),
        ];
        let fates = coalesce(&changes, |_| None);
        assert_eq!(fates, [Fate::RidesOn(3), Fate::Go, Fate::RidesOn(3), Fate::Go]);
    }

    #[test]
    fn versions_order_changes_of_one_second() {
        // Created and changed in the same second, the change arriving first.
        let changes = [versioned("a", 8, 1000), versioned("a", 7, 1000)];
        assert_eq!(coalesce(&changes, |_| None), [Fate::Go, Fate::RidesOn(0)]);
        // Arriving apart: the older one is stale once the newer went.
        let newer = Some(Sent { version: Some(8), modified_ms: Some(1000) });
        assert_eq!(coalesce(&[versioned("a", 7, 1000)], |_| newer), [Fate::Stale]);
        assert_eq!(coalesce(&[versioned("a", 8, 1000)], |_| newer), [Fate::Stale], "the same change again");
        assert_eq!(coalesce(&[versioned("a", 9, 1000)], |_| newer), [Fate::Go]);
        // Without versions, a change of the same second is not called stale.
        assert_eq!(coalesce(&[change("a", Some(1000), false)], |_| at(1000)), [Fate::Go]);
    }

    #[test]
    fn a_deletion_wins_and_nothing_older_than_what_went_is_sent_again() {
        let changes = [change("a", Some(50), false), change("a", Some(10), true), change("b", Some(5), false)];
        let fates = coalesce(&changes, |c| if c == "b" { at(6) } else { None });
        assert_eq!(fates, [Fate::RidesOn(1), Fate::Go, Fate::Stale], "b at 6 went already");
        let newer = [change("b", Some(7), false)];
        assert_eq!(coalesce(&newer, |_| at(6)), [Fate::Go]);
        let unknown = [change("b", None, false)];
        assert_eq!(coalesce(&unknown, |_| at(6)), [Fate::Go], "no time: cannot be called stale");
    }

    #[test]
    fn a_change_of_a_consent_goes_even_after_a_newer_change_went() {
        // A grant (version 7) delivered after the name's change (version 8) went: the contact
        // goes again, as it is now, so that the grant goes as the user's.
        let newer = Some(Sent { version: Some(8), modified_ms: Some(1000) });
        let grant = Change { deliberate: true, ..versioned("a", 7, 1000) };
        assert_eq!(coalesce(::core::slice::from_ref(&grant), |_| newer), [Fate::Go]);
        // Riding on the contact's newest change in the burst, it makes that one go.
        let changes = [versioned("a", 8, 1000), grant];
        assert_eq!(coalesce(&changes, |_| newer), [Fate::Go, Fate::RidesOn(0)]);
        assert_eq!(coalesce(&changes[..1], |_| newer), [Fate::Stale], "without it, stale");
    }

    #[test]
    fn fates_hold_for_any_arrival_order() {
        // Every order of the same changes sends the same version of each contact.
        let changes = [
            versioned("a", 1, 1),
            versioned("a", 3, 3),
            versioned("b", 2, 2),
            versioned("a", 2, 3),
            Change { contact: "b".into(), version: None, modified_ms: Some(9), delete: true, deliberate: false },
        ];
        let mut order: Vec<usize> = (0..changes.len()).collect();
        for round in 0..120 {
            // A deterministic walk through the permutations.
            order.rotate_left(1 + round % 3);
            order.swap(round % 5, (round * 7) % 5);
            let shuffled: Vec<Change> = order.iter().map(|&i| changes[i].clone()).collect();
            let fates = coalesce(&shuffled, |_| None);
            let going: Vec<&Change> =
                shuffled.iter().zip(&fates).filter(|(_, f)| **f == Fate::Go).map(|(c, _)| c).collect();
            assert_eq!(going.len(), 2);
            assert!(going.contains(&&changes[1]), "a's newest");
            assert!(going.contains(&&changes[4]), "b's deletion");
        }
    }
}
