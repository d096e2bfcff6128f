//! SALESmanago's rule calls ([`crate::core::salesmanago::rule`]) as the core's job, so that the
//! relay decides nothing of its own: the contacts a burst of calls names are read from
//! SALESmanago as they are now and applied to Dynamics as Pull changes applies a changed
//! contact ([`Job::pull_named`]: matched by SALESmanago id, then by e-mail; only the columns
//! that differ written, the consent rule kept; written as the application user, whose changes
//! never travel back). A call repeated or late applies the contact as it is then: nothing
//! changes twice. Pull changes stays the catch-up of a call that never came.
//!
//! ```text
//!   rule calls ──named (each contact once)──▶ Pull changes of those contacts ──drive──▶ answers
//! ```

use crate::core::command::BulkJob;
use crate::core::i18n::{text, Lang, Message};
use crate::core::integration::Settings;
use crate::core::salesmanago::rule::RuleCall;
use crate::prelude::*;

use super::deliveries::{Answer, BurstStart, Done, Failed};
use super::{Job, JobFailure, Named, Start, Summary};

/// The contacts `calls` name, each once: by SALESmanago id, and by e-mail those without one.
pub fn named(calls: &[RuleCall]) -> Named {
    let mut named = Named::default();
    for call in calls {
        match (&call.contact, &call.email) {
            (Some(id), _) if !named.ids.contains(id) => named.ids.push(id.clone()),
            (None, Some(email)) if !named.emails.contains(email) => named.emails.push(email.clone()),
            _ => {}
        }
    }
    named
}

/// The job that applies the contacts `calls` name, with what the host read for them in `start`;
/// `Err` answers every call at once (there is no one integration record to act by).
pub fn job(calls: &[RuleCall], start: BurstStart) -> Result<Job, Answer> {
    let [record] = start.records.as_slice() else {
        return Err(Ok(Done::Ignored("there is not exactly one SALESmanago Integration record")));
    };
    let settings = Settings::with(record, start.client.clone())
        .map_err(|error| Err(Failed::Refused(text(&Message::Settings(error), Lang::En))))?;
    let start = Start {
        job: BulkJob::PullChanges,
        lang: Lang::En,
        settings,
        user: start.user,
        record: record.clone(),
        consents: start.consents,
        selected: Vec::new(),
        changed: Vec::new(),
        read: None,
        now_ms: start.now_ms,
        seed: start.seed,
    };
    Ok(Job::pull_named(start, &named(calls)))
}

/// The answer to every call of the burst, from how its job ended: applied (or nothing to
/// apply), or a failure that may pass, with the reasons of the contacts that did not go.
pub fn answer(ended: &Result<Summary, JobFailure>) -> Answer {
    match ended {
        Ok(summary) if summary.tally.failed() == 0 => Ok(Done::Went),
        Ok(summary) => {
            let reasons: Vec<&str> = summary.tally.not_done.iter().map(|n| n.reason.as_str()).collect();
            Err(Failed::ForNow(reasons.join("; ")))
        }
        Err(failure) => Err(Failed::ForNow(text(&failure.message, Lang::En))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(contact: Option<&str>, email: Option<&str>) -> RuleCall {
        RuleCall { contact: contact.map(str::to_owned), email: email.map(str::to_owned), rule: "r".into() }
    }

    #[test]
    fn each_contact_is_named_once_by_its_id_else_by_its_email() {
        let calls = [
            call(Some("a"), Some("a@x.pl")),
            call(Some("a"), None),
            call(None, Some("b@x.pl")),
            call(None, Some("b@x.pl")),
            call(Some("c"), Some("b@x.pl")),
        ];
        let named = named(&calls);
        assert_eq!(named.ids, ["a", "c"]);
        assert_eq!(named.emails, ["b@x.pl"]);
    }

    #[test]
    fn a_burst_is_answered_went_only_when_nothing_failed_else_with_the_reasons_to_try_again() {
        use crate::core::sync::{NotDone, Tally};
        let summary = |not_done: Vec<(bool, &str)>| {
            let mut tally = Tally::default();
            for (skipped, reason) in not_done {
                let (id, email, name) = ("c".into(), "c@x.pl".into(), "C".into());
                tally.not_done(NotDone { id, email, name, skipped, reason: reason.into() });
            }
            let message = Message::Dataverse { detail: "done".into() };
            Ok(Summary { message, details: Vec::new(), close_form: false, download: None, tally })
        };
        assert_eq!(answer(&summary(vec![])), Ok(Done::Went));
        assert_eq!(answer(&summary(vec![(true, "no e-mail")])), Ok(Done::Went), "a skipped contact is no failure");
        assert_eq!(
            answer(&summary(vec![(false, "refused"), (false, "timed out")])),
            Err(Failed::ForNow("refused; timed out".into()))
        );
        let failure = JobFailure { message: Message::Dataverse { detail: "down".into() }, kind: "dataverse" };
        assert!(matches!(answer(&Err(failure)), Err(Failed::ForNow(m)) if m.contains("down")));
    }
}
