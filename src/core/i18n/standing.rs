//! [`Message::Standing`] in each language: the parts SALESmanago said, in one order, joined.

use super::Message;
use crate::prelude::*;

/// A language's words for it.
pub(super) struct Words {
    score: &'static str,
    last_visit: &'static str,
    /// Opted out, and not.
    subscribed: [&'static str; 2],
    /// SALESmanago's states, each with its name here.
    states: [(&'static str, &'static str); 4],
}

pub(super) const ENGLISH: Words = Words {
    score: "score",
    last_visit: "last visit",
    subscribed: ["unsubscribed", "subscribed"],
    states: [("PROSPECT", "prospect"), ("CUSTOMER", "customer"), ("PARTNER", "partner"), ("OTHER", "other")],
};

pub(super) const POLISH: Words = Words {
    score: "punkty",
    last_visit: "ostatnia wizyta",
    subscribed: ["wypisany", "zapisany"],
    states: [("PROSPECT", "potencjalny klient"), ("CUSTOMER", "klient"), ("PARTNER", "partner"), ("OTHER", "inny")],
};

/// `message`, a [`Message::Standing`], in `words` (empty for any other message).
pub(super) fn text(message: &Message, words: &Words) -> String {
    let Message::Standing { score, state, last_visit, opted_out, opted_out_phone } = message else {
        return String::new();
    };
    let state = state.as_deref().map(|s| words.states.iter().find(|(k, _)| *k == s).map_or(s, |(_, name)| name));
    let subscribed = |out: bool| words.subscribed[usize::from(!out)];
    let parts: Vec<String> = [
        score.map(|s| format!("{} {s}", words.score)),
        state.map(str::to_owned),
        last_visit.as_ref().map(|d| format!("{} {d}", words.last_visit)),
        opted_out.map(|o| format!("newsletter: {}", subscribed(o))),
        opted_out_phone.map(|o| format!("SMS: {}", subscribed(o))),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("SALESmanago: {}", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_said_go_in_one_order_and_unknown_states_as_they_came() {
        let full = Message::Standing {
            score: Some(90),
            state: Some("CUSTOMER".into()),
            last_visit: Some("2026-11-30".into()),
            opted_out: Some(true),
            opted_out_phone: Some(false),
        };
        assert_eq!(
            text(&full, &ENGLISH),
            "SALESmanago: score 90 · customer · last visit 2026-11-30 · newsletter: unsubscribed · SMS: subscribed"
        );
        assert_eq!(
            text(&full, &POLISH),
            "SALESmanago: punkty 90 · klient · ostatnia wizyta 2026-11-30 · newsletter: wypisany · SMS: zapisany"
        );
        let sparse = Message::Standing {
            score: None,
            state: Some("VIP".into()),
            last_visit: None,
            opted_out: None,
            opted_out_phone: None,
        };
        assert_eq!(text(&sparse, &POLISH), "SALESmanago: VIP");
    }
}
