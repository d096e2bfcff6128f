//! The consent rule: when a consent-like value (the newsletter opt-out, the SMS opt-out, each
//! `new_consent_<name>`) travels between Dynamics and SALESmanago, and which way.
//!
//! It is a three-way merge. Per contact, the values both sides agreed on at the last
//! synchronisation are kept ([`Base`], in a hidden column). A side whose value differs from the
//! base changed it. Only a change travels. When both sides changed to different values, the
//! withdrawal (or opt-out) wins. A grant travels only as a change of the side that made it.
//! Without a base (a contact's first synchronisation), a value only one side holds travels,
//! except Dynamics' default "allow" of the newsletter and SMS, and where both hold different
//! values the withdrawal wins. No decision looks at when a record was last modified.
//!
//! Values are read as *granted*: `true` is a consent given or a channel allowed, `false` a
//! consent withdrawn or a channel opted out of.
//!
//! What the rule cannot see, and assumes:
//! - It compares states, not histories: a side that changed a value and changed it back since
//!   the base counts as unchanged.
//! - An export does not read SALESmanago first ([`Theirs::Unknown`]; send and sync on save
//!   do): a change made in SALESmanago since the last pull is not seen, so where Dynamics
//!   changed the same value meanwhile, Dynamics' change travels (the withdrawal wins only
//!   where both are seen).
//! - The base is written with the status after SALESmanago took an export's change; if that
//!   write is lost, the base is stale until the next pull, and a SALESmanago change of that
//!   value back to the old base before then is taken for no change.
//! - A consent SALESmanago holds none of counts as not given.

use crate::core::dataverse::schema::{consent_name, contact};
use crate::core::json::{self, Map, Value};
use crate::core::sorted::SortedMap;
use crate::prelude::*;

/// A consent-like value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The e-mail newsletter (`donotbulkemail`, SALESmanago's `optedOut`).
    Newsletter,
    /// SMS (`new_donotsms`, SALESmanago's `optedOutPhone`).
    Sms,
    /// A named consent (`new_consent_<name>`), by its SALESmanago name (upper case).
    Consent(String),
}

impl Key {
    /// The key's name in the base: `newsletter`, `sms`, or the consent's name.
    pub fn name(&self) -> &str {
        match self {
            Key::Newsletter => "newsletter",
            Key::Sms => "sms",
            Key::Consent(name) => name,
        }
    }

    /// Whether it is a channel, which Dynamics allows by default on a new contact.
    pub fn is_channel(&self) -> bool {
        matches!(self, Key::Newsletter | Key::Sms)
    }

    /// The value a contact column holds, if it holds one (`donotbulkemail`, `new_donotsms`,
    /// `new_consent_<name>`).
    pub fn of_column(column: &str) -> Option<Key> {
        match column {
            contact::DO_NOT_BULK_EMAIL => Some(Key::Newsletter),
            contact::DO_NOT_SMS => Some(Key::Sms),
            _ => consent_name(column).map(Key::Consent),
        }
    }
}

/// What SALESmanago holds of a value, as far as the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theirs {
    /// Not read (an export sends without reading first), or not in the answer read.
    Unknown,
    /// Read: the value, or `None` when SALESmanago has none.
    Known(Option<bool>),
}

/// What the rule decides for one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// The value to send to SALESmanago, if any.
    pub to_salesmanago: Option<bool>,
    /// The value to write in Dynamics, if any.
    pub to_dynamics: Option<bool>,
    /// The value both sides hold once what travels has arrived: the next base.
    pub agreed: Option<bool>,
}

/// Decides how `key` travels. `ours` is Dynamics' value, `theirs` SALESmanago's, `base` what
/// both agreed on last. `changed_now`: the user changed it in Dynamics in this very save, a
/// deliberate change even where no base tells.
pub fn decide(key: &Key, ours: Option<bool>, theirs: Theirs, base: Option<bool>, changed_now: bool) -> Decision {
    let none = Decision { agreed: base, ..Decision::default() };
    let ours_changed = changed_now && ours.is_some() || matches!((ours, base), (Some(o), Some(b)) if o != b);
    match theirs {
        Theirs::Unknown => match (ours, base) {
            (Some(o), _) if ours_changed => send(o),
            (Some(false), None) => send(false),
            // Dynamics' default "allow", or a grant SALESmanago may have withdrawn: it waits
            // until a synchronisation that reads SALESmanago sets the base.
            (Some(true), None) | (Some(_), Some(_)) | (None, _) => none,
        },
        Theirs::Known(theirs) => {
            let theirs_changed = matches!((theirs, base), (Some(t), Some(b)) if t != b);
            match (ours, theirs) {
                (Some(o), Some(t)) if o == t => Decision { agreed: Some(o), ..Decision::default() },
                // Both changed (with booleans: one re-affirmed in this save), or no base tells
                // who did: the withdrawal wins.
                (Some(o), Some(t)) if base.is_none() || ours_changed == theirs_changed => Decision {
                    to_salesmanago: t.then_some(false),
                    to_dynamics: o.then_some(false),
                    agreed: Some(false),
                },
                (Some(o), Some(_)) if ours_changed => send(o),
                (Some(_), Some(t)) => receive(t),
                (Some(o), None) if base.is_none() && key.is_channel() && o && !changed_now => none,
                (Some(o), None) if base.is_none() || ours_changed => send(o),
                (None, Some(t)) if base.is_none() || theirs_changed => receive(t),
                (Some(_), None) | (None, Some(_)) | (None, None) => none,
            }
        }
    }
}

fn send(value: bool) -> Decision {
    Decision { to_salesmanago: Some(value), to_dynamics: None, agreed: Some(value) }
}

fn receive(value: bool) -> Decision {
    Decision { to_salesmanago: None, to_dynamics: Some(value), agreed: Some(value) }
}

/// The values both sides agreed on at a contact's last synchronisation, kept as JSON in the
/// contact's hidden column (`{"newsletter": true, "sms": false, "MARKETING": true}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base(SortedMap<String, bool>);

impl Base {
    /// The base in a column's text; an empty or unreadable column is no base.
    pub fn from_text(text: &str) -> Base {
        let mut base = Base::default();
        if let Ok(Value::Object(map)) = json::from_str(text) {
            for (key, value) in map.iter() {
                if let Some(value) = value.as_bool() {
                    base.0.insert(key.clone(), value);
                }
            }
        }
        base
    }

    /// The column's text.
    pub fn to_text(&self) -> String {
        let map: Map = self.0.iter().map(|(k, v)| (k.clone(), Value::Bool(*v))).collect();
        Value::Object(map).to_string()
    }

    /// What was agreed on `key`, if anything.
    pub fn get(&self, key: &Key) -> Option<bool> {
        self.0.get(key.name()).copied()
    }

    /// Records what is agreed on `key` now (`None`: nothing).
    pub fn set(&mut self, key: &Key, agreed: Option<bool>) {
        match agreed {
            Some(value) => {
                self.0.insert(key.name().to_owned(), value);
            }
            None => {
                self.0.remove(key.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const N: Option<bool> = None;

    fn marketing() -> Key {
        Key::Consent("MARKETING".into())
    }

    fn known(
        ours: Option<bool>,
        theirs: Option<bool>,
        base: Option<bool>,
    ) -> (Option<bool>, Option<bool>, Option<bool>) {
        let d = decide(&marketing(), ours, Theirs::Known(theirs), base, false);
        (d.to_salesmanago, d.to_dynamics, d.agreed)
    }

    #[test]
    fn only_a_change_travels() {
        // (ours, theirs, base) → (to SALESmanago, to Dynamics, agreed)
        assert_eq!(known(T, T, T), (N, N, T));
        assert_eq!(known(F, T, T), (F, N, F), "Dynamics withdrew");
        assert_eq!(known(T, F, T), (N, F, F), "SALESmanago withdrew");
        assert_eq!(known(T, F, F), (T, N, T), "Dynamics granted, SALESmanago did not change");
        assert_eq!(known(F, T, F), (N, T, T), "SALESmanago granted, Dynamics did not change");
    }

    #[test]
    fn when_both_changed_the_withdrawal_wins() {
        // Without a base, neither side can show it did not change.
        assert_eq!(known(T, F, N), (N, F, F));
        assert_eq!(known(F, T, N), (F, N, F));
        // Granted again in this save while SALESmanago withdrew since the base.
        let d = decide(&marketing(), T, Theirs::Known(F), T, true);
        assert_eq!((d.to_salesmanago, d.to_dynamics, d.agreed), (N, F, F));
    }

    #[test]
    fn both_sides_agreeing_is_recorded_whatever_was_recorded_before() {
        // Both hold the same value while the agreement says otherwise, or nothing: that value is
        // the agreement now, or a later change is misread.
        for key in [Key::Newsletter, Key::Sms, marketing()] {
            for value in [true, false] {
                for base in [None, Some(!value), Some(value)] {
                    for changed_now in [false, true] {
                        let d = decide(&key, Some(value), Theirs::Known(Some(value)), base, changed_now);
                        let shown = (d.to_salesmanago, d.to_dynamics, d.agreed);
                        assert_eq!(shown, (N, N, Some(value)), "{key:?} {value} {base:?} {changed_now}");
                    }
                }
            }
        }
        // What recording it prevents: both granted over a recorded withdrawal, then SALESmanago
        // withdraws; with the old agreement kept, Dynamics' grant would read as new and travel
        // back over the withdrawal.
        let agreed = decide(&marketing(), T, Theirs::Known(T), F, false).agreed;
        assert_eq!(known(T, F, agreed), (N, F, F), "SALESmanago's withdrawal comes to Dynamics");
    }

    #[test]
    fn a_record_level_change_never_counts() {
        // SALESmanago holds "granted" as agreed; Dynamics opted out since: an unrelated
        // SALESmanago edit does not enter the rule at all, and the opt-out stays.
        assert_eq!(known(F, T, T), (F, N, F));
    }

    #[test]
    fn without_a_base_one_sided_values_travel_but_not_dynamics_default() {
        assert_eq!(known(T, N, N), (T, N, T), "a consent only Dynamics holds");
        assert_eq!(known(N, T, N), (N, T, T), "a consent only SALESmanago holds");
        let channel = |ours, changed_now| {
            let d = decide(&Key::Newsletter, ours, Theirs::Known(None), None, changed_now);
            (d.to_salesmanago, d.to_dynamics, d.agreed)
        };
        assert_eq!(channel(T, false), (N, N, N), "the default allow is not an opt-in");
        assert_eq!(channel(T, true), (T, N, T), "allowed in this save: deliberate");
        assert_eq!(channel(F, false), (F, N, F), "an opt-out travels");
    }

    #[test]
    fn unknown_theirs_sends_only_dynamics_changes_and_withdrawals() {
        let unknown = |ours, base, changed_now| {
            let d = decide(&marketing(), ours, Theirs::Unknown, base, changed_now);
            (d.to_salesmanago, d.to_dynamics, d.agreed)
        };
        assert_eq!(unknown(T, T, false), (N, N, T), "unchanged: nothing");
        assert_eq!(unknown(T, F, false), (T, N, T), "granted in Dynamics since the base");
        assert_eq!(unknown(F, T, false), (F, N, F), "withdrawn in Dynamics since the base");
        assert_eq!(unknown(F, N, false), (F, N, F), "a withdrawal always travels");
        assert_eq!(unknown(T, N, false), (N, N, N), "a grant without a base waits for one");
        assert_eq!(unknown(T, N, true), (T, N, T), "unless granted in this save");
        assert_eq!(unknown(N, T, false), (N, N, T));
    }

    #[test]
    fn a_grant_never_travels_unless_its_side_changed_it() {
        // Exhaustively: whenever a grant travels, the side it comes from differs from the base
        // (or there is no base and the other side holds nothing), or the user made it now.
        let values = [T, F, N];
        for ours in values {
            for theirs in values {
                for base in values {
                    for channel in [true, false] {
                        let key = if channel { Key::Sms } else { marketing() };
                        let d = decide(&key, ours, Theirs::Known(theirs), base, false);
                        if d.to_salesmanago == T {
                            assert!(ours == T && (base == F || (base.is_none() && theirs.is_none())));
                            assert!(!(channel && base.is_none()), "the default allow is never sent");
                        }
                        if d.to_dynamics == T {
                            assert!(theirs == T && (base == F || (base.is_none() && ours.is_none())));
                        }
                        if ours == F && d.to_dynamics == T || theirs == F && d.to_salesmanago == T {
                            assert!(base == F, "a withdrawal is undone only by a change after the base");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_base_reads_back_as_written() {
        let mut base = Base::default();
        base.set(&Key::Newsletter, T);
        base.set(&Key::Sms, F);
        base.set(&marketing(), T);
        let again = Base::from_text(&base.to_text());
        assert_eq!(again, base);
        assert_eq!(again.get(&Key::Sms), F);
        base.set(&Key::Sms, N);
        assert_eq!(base.get(&Key::Sms), N);
        assert_eq!(Base::from_text("not json"), Base::default());
        assert_eq!(Base::from_text(""), Base::default());
    }
}
