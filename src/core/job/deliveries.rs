//! A burst of webhook deliveries (Dataverse's asynchronous service posts each contact change to
//! the relay) as the core's jobs, so that the relay decides nothing of its own: the contacts to
//! send go as "Export selected" of their rows as Dataverse holds them now, never an older
//! version from a delivery that came late, on any relay instance; each deleted contact goes as
//! a delete made in Dynamics already ([`Task::Forget`]: kept while another contact holds its
//! e-mail). The host reads the integration record and the consent columns for the burst,
//! drives the jobs [`Burst::plan`] and [`Plan::start`] make, and hands their ends to [`Burst::answers`].
//!
//! ```text
//!   deliveries ──plan (coalesce)──▶ Export selected (sends) + Forget per delete ──drive──▶ answers
//! ```

use crate::core::command::BulkJob;
use crate::core::consent::Key;
use crate::core::dataverse::burst::{coalesce, Change, Fate, Sent};
use crate::core::dataverse::error::{self, DvFailure};
use crate::core::dataverse::query;
use crate::core::i18n::{text, Lang, Message};
use crate::core::integration::Settings;
use crate::core::json::Map;
use crate::core::salesmanago::{Client, HttpResponse};
use crate::core::sync::NotDone;
use crate::prelude::*;

use super::contact::{ContactStart, Task};
use super::export::selection;
use super::lease::User;
use super::rng::Rng;
use super::{Job, JobFailure, Prefetched, Read, Settled, Start, Summary};

/// What a delivery asks for one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Send it as Dataverse holds it now (at least the delivery's `version`); the columns in
    /// `changed` were set by the request, so a change there is the user's (the consent rule).
    Send {
        /// The row's version the event carries, when it does.
        version: Option<u64>,
        /// The columns the request set.
        changed: Vec<String>,
    },
    /// It was deleted: remove it from SALESmanago (delete, or opt out as the record says).
    Remove {
        /// Its e-mail, from the event's pre-image.
        email: String,
    },
}

/// One delivery: a contact and what its change asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The contact's id.
    pub contact: String,
    /// What to do.
    pub work: Work,
}

/// How a delivery ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// SALESmanago has it (sent, deleted or opted out; or it had no such contact to remove).
    Went,
    /// Not sendable, with the reason (written on the contact).
    Unsendable(String),
    /// No newer than what this host sent already.
    Stale,
    /// The contact no longer exists in Dynamics: nothing to send (its deletion comes on its own).
    Gone,
    /// Deleted in Dynamics only: another contact there holds its e-mail, and the SALESmanago
    /// contact stands for that one.
    Kept,
    /// Nothing to do, and why.
    Ignored(&'static str),
}

/// Why a delivery did not go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// It may go on another try (Dataverse delivers once more after a 503; the catch-up after).
    ForNow(String),
    /// It cannot go as things are set up.
    Refused(String),
}

/// The answer to one delivery.
pub type Answer = Result<Done, Failed>;

/// What the host read for the burst.
#[derive(Debug, Clone)]
pub struct BurstStart {
    /// The integration record query's rows (exactly one is expected).
    pub records: Vec<Map>,
    /// The contact table's consent columns.
    pub consents: Vec<String>,
    /// How the host reaches SALESmanago (the relay holds the credentials itself).
    pub client: Client,
    /// The application user the host acts as.
    pub user: User,
    /// Now, Unix ms (the host's clock: only progress and the sync time shown).
    pub now_ms: u64,
    /// Random bits for the jobs' request keys and jitter.
    pub seed: u64,
}

/// What came of the burst's "Export selected".
pub enum Exported<'a> {
    /// Every contact's outcome in SALESmanago ([`Job::settled`]): the deliveries are answered
    /// from it while the job writes the statuses back and reads the contacts again.
    Settled(&'a Settled),
    /// It ended before that: its end, and the contacts it sent ([`Job::went`]).
    Ended {
        /// The job's end.
        result: &'a Result<Summary, JobFailure>,
        /// The contacts sent, with their rows' versions.
        went: &'a [(String, Option<u64>)],
    },
}

/// A burst planned: the jobs to drive, and how each delivery's answer comes of them.
pub struct Burst {
    fates: Vec<Fate>,
    /// The deliveries' works.
    works: Vec<Work>,
    contacts: Vec<String>,
    /// "Export selected" of the contacts to send, when there are any.
    pub export: Option<Job>,
    /// A Forget of each contact deleted, with the index of its delivery.
    pub forgets: Vec<(usize, Job)>,
}

/// A burst coalesced, before the record is read: the rows of the contacts to send can be read
/// beside it ([`Plan::reads`]), so that neither waits for the other.
pub struct Plan {
    deliveries: Vec<Delivery>,
    fates: Vec<Fate>,
    /// The contacts to send, and the columns their changes set.
    selected: Vec<String>,
    changed: Vec<(String, Vec<String>)>,
    /// Their rows' reads.
    reads: Vec<Read>,
}

impl Plan {
    /// The reads of the rows of the contacts to send, to take beside the record's.
    pub fn reads(&self) -> &[Read] {
        &self.reads
    }

    /// The burst's jobs, with the record and the consent columns in `start` and the answers
    /// to [`Plan::reads`] in `read` (in their order); when one of them failed or did not hold
    /// every row, the export reads them itself. `Err` answers every delivery at once (the
    /// record says not to act).
    pub fn start(self, start: BurstStart, read: Vec<Result<HttpResponse, DvFailure>>) -> Result<Burst, Answer> {
        let Plan { deliveries, fates, selected, changed, .. } = self;
        let [record] = start.records.as_slice() else {
            return Err(Ok(Done::Ignored("there is not exactly one SALESmanago Integration record")));
        };
        let settings = Settings::with(record, start.client.clone())
            .map_err(|error| Err(Failed::Refused(text(&Message::Settings(error), Lang::En))))?;
        if !settings.webhooks {
            return Err(Ok(Done::Ignored(
                "webhooks are off on the SALESmanago Integration record: the browser sends changes on save",
            )));
        }
        let mut seeds = Rng(start.seed);
        let mut forgets = Vec::new();
        for (index, delivery) in deliveries.iter().enumerate() {
            if let (Fate::Go, Work::Remove { email }) = (fates[index], &delivery.work) {
                let task = Task::Forget { id: delivery.contact.clone(), email: email.clone() };
                let forget = Job::contact(ContactStart {
                    task,
                    lang: Lang::En,
                    settings: settings.clone(),
                    consents: start.consents.clone(),
                    now_ms: start.now_ms,
                    seed: seeds.next(),
                });
                forgets.push((index, forget));
            }
        }
        // Rows read before the record said what the admin maps and scopes lack those columns: the
        // export reads them again.
        let read_all = settings.read_columns(&start.consents).len() == start.consents.len();
        let read = if read_all { read } else { Vec::new() };
        let export = (!selected.is_empty()).then(|| {
            Job::new(Start {
                job: BulkJob::ExportSelected,
                lang: Lang::En,
                settings,
                user: start.user.clone(),
                record: record.clone(),
                consents: start.consents.clone(),
                selected,
                changed,
                read: prefetched(read, start.now_ms),
                now_ms: start.now_ms,
                seed: seeds.next(),
            })
        });
        let works = deliveries.iter().map(|d| d.work.clone()).collect();
        let contacts = deliveries.iter().map(|d| d.contact.clone()).collect();
        Ok(Burst { fates, works, contacts, export, forgets })
    }
}

/// The rows the reads answered, as one page, when every read answered with all its rows.
fn prefetched(read: Vec<Result<HttpResponse, DvFailure>>, now_ms: u64) -> Option<Prefetched> {
    if read.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    let mut date = None;
    for answer in read {
        let response = answer.ok()?;
        date = date.or(response.date.clone());
        let text = error::answer(Ok(response)).ok()?;
        let (page, next) = query::page(&text).ok()?;
        if next.is_some() {
            return None;
        }
        rows.extend(page);
    }
    Some(Prefetched { rows, date, at_ms: now_ms })
}

impl Burst {
    /// Plans `deliveries` with the contact table's `consents` columns; `sent` tells what this
    /// host sent last for a contact (lower-case id): an optimisation only, the rows are read
    /// as they are now.
    pub fn plan(deliveries: &[Delivery], consents: &[String], sent: impl Fn(&str) -> Option<Sent>) -> Plan {
        let changes: Vec<Change> = deliveries
            .iter()
            .map(|d| Change {
                contact: d.contact.clone(),
                version: match &d.work {
                    Work::Send { version, .. } => *version,
                    Work::Remove { .. } => None,
                },
                modified_ms: None,
                delete: matches!(d.work, Work::Remove { .. }),
                deliberate: match &d.work {
                    Work::Send { changed, .. } => changed.iter().any(|c| Key::of_column(c).is_some()),
                    Work::Remove { .. } => false,
                },
            })
            .collect();
        let fates = coalesce(&changes, sent);
        let mut selected = Vec::new();
        let mut changed = Vec::new();
        for (index, delivery) in deliveries.iter().enumerate() {
            let (Fate::Go, Work::Send { changed: columns, .. }) = (fates[index], &delivery.work) else { continue };
            // The columns set by every change of the contact in the burst.
            let mut columns = columns.clone();
            for (other, riding) in deliveries.iter().enumerate() {
                if let (Fate::RidesOn(winner), Work::Send { changed: more, .. }) = (fates[other], &riding.work) {
                    if winner == index {
                        columns.extend(more.iter().cloned());
                    }
                }
            }
            crate::core::sorted::sort(&mut columns);
            columns.dedup();
            selected.push(delivery.contact.clone());
            changed.push((delivery.contact.clone(), columns));
        }
        let reads = selection(consents, &selected).into_iter().map(Read::of).collect();
        Plan { deliveries: deliveries.to_vec(), fates, selected, changed, reads }
    }

    /// Each delivery's answer, in order, from how the jobs ended: the export's, and each
    /// Forget's by its delivery's index.
    pub fn answers(
        &self,
        exported: Option<Exported<'_>>,
        forgotten: &[(usize, Result<Summary, JobFailure>)],
    ) -> Vec<Answer> {
        let failed = |failure: &JobFailure| Err(Failed::ForNow(text(&failure.message, Lang::En)));
        let mut answers: Vec<Option<Answer>> = vec![None; self.fates.len()];
        for (index, work) in self.works.iter().enumerate() {
            if self.fates[index] != Fate::Go || !matches!(work, Work::Send { .. }) {
                continue;
            }
            let id = &self.contacts[index];
            let is = |other: &str| other.eq_ignore_ascii_case(id);
            let listed = |not_done: &[NotDone]| match not_done.iter().find(|n| is(&n.id)) {
                Some(n) if n.skipped => Ok(Done::Unsendable(n.reason.clone())),
                Some(n) => Err(Failed::ForNow(n.reason.clone())),
                // Not read: deleted since (its deletion comes on its own).
                None => Ok(Done::Gone),
            };
            answers[index] = Some(match &exported {
                None => continue,
                Some(Exported::Settled(settled)) if settled.went.iter().any(|w| is(w)) => Ok(Done::Went),
                Some(Exported::Settled(settled)) => listed(&settled.not_done),
                Some(Exported::Ended { went, .. }) if went.iter().any(|(w, _)| is(w)) => Ok(Done::Went),
                Some(Exported::Ended { result: Ok(summary), .. }) => listed(&summary.tally.not_done),
                Some(Exported::Ended { result: Err(failure), .. }) => failed(failure),
            });
        }
        for (index, result) in forgotten {
            answers[*index] = Some(match result {
                Ok(Summary { message: Message::Deleted { kept, .. }, .. }) if *kept > 0 => Ok(Done::Kept),
                Ok(_) => Ok(Done::Went),
                // The removal's own reason, not the delete command's summary of it.
                Err(JobFailure { message: Message::Deleted { failures, .. }, .. }) if !failures.is_empty() => {
                    Err(Failed::ForNow(failures.join("; ")))
                }
                Err(failure) => failed(failure),
            });
        }
        (0..self.fates.len())
            .map(|index| match self.fates[index] {
                // The contact's change that stands for this one went already.
                Fate::RidesOn(winner) if self.fates[winner] == Fate::Stale => Some(Ok(Done::Stale)),
                Fate::RidesOn(winner) => answers[winner].clone(),
                Fate::Stale => Some(Ok(Done::Stale)),
                Fate::Go => answers[index].clone(),
            })
            .map(|answer| answer.unwrap_or(Err(Failed::ForNow("its job did not end".into()))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dataverse::schema::integration;
    use crate::core::i18n::Message;
    use crate::core::json::Value;
    use crate::core::salesmanago::{ApiSecret, Credentials, Endpoint};

    fn send(contact: &str, version: u64) -> Delivery {
        Delivery { contact: contact.into(), work: Work::Send { version: Some(version), changed: Vec::new() } }
    }

    fn remove(contact: &str) -> Delivery {
        Delivery { contact: contact.into(), work: Work::Remove { email: format!("{contact}@example.com") } }
    }

    fn burst(deliveries: &[Delivery]) -> Burst {
        burst_after(deliveries, |_| None)
    }

    /// The burst of `deliveries` on a host that sent what `sent` says last.
    fn burst_after(deliveries: &[Delivery], sent: impl Fn(&str) -> Option<Sent>) -> Burst {
        let mut record = Map::new();
        record.insert(integration::WEBHOOKS.into(), Value::Bool(true));
        let credentials =
            Credentials { client_id: "c".into(), api_secret: ApiSecret::new("s"), owner: "o@example.com".into() };
        let endpoint = Endpoint::parse("https://app3.salesmanago.pl").unwrap();
        let start = BurstStart {
            records: vec![record],
            consents: Vec::new(),
            client: Client { endpoint, credentials, relay: None },
            user: User { id: "app".into(), name: "relay".into() },
            now_ms: 0,
            seed: 1,
        };
        let plan = Burst::plan(deliveries, &start.consents, sent);
        plan.start(start, Vec::new()).unwrap_or_else(|_| panic!("the record says to act"))
    }

    fn listed(id: &str, skipped: bool, reason: &str) -> NotDone {
        NotDone { id: id.into(), email: String::new(), name: String::new(), skipped, reason: reason.into() }
    }

    #[test]
    fn deliveries_are_answered_from_what_salesmanago_made_of_their_contacts() {
        // Jan twice (the newer rides on the older's read), Ewa, Ola, and Piotr gone since.
        let deliveries = [send("JAN", 1), send("jan", 2), send("ewa", 1), send("ola", 1), send("piotr", 1)];
        let burst = burst(&deliveries);
        let settled = Settled {
            went: vec!["jan".into()],
            not_done: vec![listed("ewa", true, "no e-mail"), listed("ola", false, "SALESmanago is busy")],
        };
        let answers = burst.answers(Some(Exported::Settled(&settled)), &[]);
        assert_eq!(
            answers,
            [
                Ok(Done::Went),
                Ok(Done::Went),
                Ok(Done::Unsendable("no e-mail".into())),
                Err(Failed::ForNow("SALESmanago is busy".into())),
                Ok(Done::Gone),
            ]
        );
    }

    #[test]
    fn each_deleted_contact_is_answered_from_its_removal() {
        let deliveries = [remove("jan"), remove("ewa"), remove("ola"), remove("piotr")];
        let burst = burst(&deliveries);
        let deleted = |kept| Summary {
            message: Message::Deleted { deleted: 1, failures: Vec::new(), kept, opt_out_only: false },
            details: Vec::new(),
            close_form: false,
            download: None,
            tally: Default::default(),
        };
        let failures = vec!["ola: SALESmanago is busy".to_owned()];
        let refused = Message::Deleted { deleted: 0, failures, kept: 0, opt_out_only: false };
        let down = Message::Dataverse { detail: "down".into() };
        let forgotten = [
            (0, Ok(deleted(1))),
            (1, Ok(deleted(0))),
            (2, Err(JobFailure { message: refused, kind: "deleteFailed" })),
            (3, Err(JobFailure { message: down, kind: "dataverse" })),
        ];
        let answers = burst.answers(None, &forgotten);
        // Another contact holds Jan's e-mail: its SALESmanago contact stays.
        assert_eq!(answers[..2], [Ok(Done::Kept), Ok(Done::Went)]);
        // The removal's own reason, not the delete command's summary of it.
        assert_eq!(answers[2], Err(Failed::ForNow("ola: SALESmanago is busy".into())));
        assert!(matches!(&answers[3], Err(Failed::ForNow(reason)) if reason.contains("down")), "{answers:?}");
    }

    #[test]
    fn changes_that_went_already_are_answered_stale_with_those_riding_on_them() {
        let sent = |_: &str| Some(Sent { version: Some(5), modified_ms: None });
        let burst = burst_after(&[send("jan", 3), send("JAN", 4), send("ewa", 6)], sent);
        let settled = Settled { went: vec!["ewa".into()], not_done: Vec::new() };
        let answers = burst.answers(Some(Exported::Settled(&settled)), &[]);
        assert_eq!(answers, [Ok(Done::Stale), Ok(Done::Stale), Ok(Done::Went)]);
    }

    #[test]
    fn a_contacts_changes_in_one_burst_go_as_one_with_every_column_they_set() {
        let change = |version, column: &str| Delivery {
            contact: "jan".into(),
            work: Work::Send { version: Some(version), changed: vec![column.into(), "firstname".into()] },
        };
        let plan = Burst::plan(&[change(1, "donotbulkemail"), change(2, "donotsms"), remove("ewa")], &[], |_| None);
        assert_eq!(plan.selected, ["jan"]);
        let columns: Vec<String> = ["donotbulkemail", "donotsms", "firstname"].map(String::from).to_vec();
        assert_eq!(plan.changed, [("jan".to_owned(), columns)]);
        // Its row is read beside the record (the deleted contact's is not read).
        assert_eq!(plan.reads().len(), 1);
    }

    #[test]
    fn rows_read_beside_the_record_reach_the_export_only_when_every_read_holds_all_its_rows() {
        let page =
            |body: &str| Ok(HttpResponse { date: Some("d".into()), status: 200, retry_after: None, body: body.into() });
        let rows = r#"{"value":[{"contactid":"jan"},{"contactid":"ewa"}]}"#;
        let read = prefetched(vec![page(rows), page(r#"{"value":[{"contactid":"ola"}]}"#)], 7).expect("read");
        assert_eq!((read.rows.len(), read.date.as_deref(), read.at_ms), (3, Some("d"), 7));
        // More rows behind a link, a failed read, or none: the export reads them itself.
        let more = r#"{"value":[{"contactid":"jan"}],"@odata.nextLink":"https://x/next"}"#;
        assert!(prefetched(vec![page(more)], 7).is_none());
        assert!(prefetched(vec![page(rows), Err(DvFailure::default())], 7).is_none());
        assert!(prefetched(Vec::new(), 7).is_none());
    }

    #[test]
    fn an_export_that_failed_before_settling_fails_what_did_not_go() {
        let deliveries = [send("jan", 1), send("ewa", 1)];
        let burst = burst(&deliveries);
        let failure = JobFailure { message: Message::Dataverse { detail: "down".into() }, kind: "dataverse" };
        let went = [("JAN".to_owned(), Some(1))];
        let answers = burst.answers(Some(Exported::Ended { result: &Err(failure), went: &went }), &[]);
        assert_eq!(answers[0], Ok(Done::Went));
        assert!(matches!(&answers[1], Err(Failed::ForNow(reason)) if reason.contains("down")), "{answers:?}");
    }
}
