//! A burst of contact changes (an import of 100,000 contacts fires as many webhook deliveries),
//! sent as batch upserts: which change of each contact goes, and which ride on it.
//!
//! Dataverse delivers asynchronous steps in no promised order, so a contact's changes are
//! ordered by the time the row was modified (`modifiedon`, in the event's post-image), not by
//! arrival: in a burst, only each contact's newest change is sent, and a change no newer than
//! one already sent for that contact is stale and not sent at all. A deletion is final: it wins
//! over every change of its contact in the burst.

use crate::core::sorted::SortedMap;

/// One change waiting in a burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The contact's id (compared without case).
    pub contact: String,
    /// When the row was modified (Unix ms), when the event says.
    pub modified_ms: Option<u64>,
    /// The contact was deleted.
    pub delete: bool,
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

/// The fate of each of `changes`, in order. `sent` tells the modification time last sent for a
/// contact (lower-case id).
pub fn coalesce(changes: &[Change], sent: impl Fn(&str) -> Option<u64>) -> Vec<Fate> {
    // Per contact, the index of the change that stands for all of its changes in the burst.
    let mut winner: SortedMap<String, usize> = SortedMap::new();
    for (index, change) in changes.iter().enumerate() {
        let key = change.contact.to_ascii_lowercase();
        let better = match winner.get(&key) {
            None => true,
            Some(&held) => {
                let held = &changes[held];
                // A deletion is final; else the newer modification, the later arrival on a tie
                // or when a time is missing.
                !held.delete
                    && (change.delete || change.modified_ms.unwrap_or(u64::MAX) >= held.modified_ms.unwrap_or(0))
            }
        };
        if better {
            winner.insert(key, index);
        }
    }
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
                && matches!((change.modified_ms, sent(&key)), (Some(modified), Some(last)) if modified <= last);
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
        Change { contact: contact.into(), modified_ms, delete }
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
    fn a_deletion_wins_and_nothing_older_than_what_went_is_sent_again() {
        let changes = [change("a", Some(50), false), change("a", Some(10), true), change("b", Some(5), false)];
        let fates = coalesce(&changes, |c| (c == "b").then_some(5));
        assert_eq!(fates, [Fate::RidesOn(1), Fate::Go, Fate::Stale], "b at 5 went already");
        let newer = [change("b", Some(6), false)];
        assert_eq!(coalesce(&newer, |_| Some(5)), [Fate::Go]);
        let unknown = [change("b", None, false)];
        assert_eq!(coalesce(&unknown, |_| Some(5)), [Fate::Go], "no time: cannot be called stale");
    }

    #[test]
    fn fates_hold_for_any_arrival_order() {
        // Every order of the same changes sends the same version of each contact.
        let changes = [
            change("a", Some(1), false),
            change("a", Some(3), false),
            change("b", Some(2), false),
            change("a", Some(2), false),
            change("b", Some(9), true),
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
