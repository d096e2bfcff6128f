//! Bursts: webhook deliveries arriving together (an import fires one a contact) wait until
//! arrivals pause for [`IDLE`] (at most `RELAY_BURST_MS`) and go together through the core's
//! jobs ([`go`]): batch upserts of up to 400 contacts, their statuses written back in one
//! Dataverse `$batch`. Each delivery is answered with its own contact's outcome, so a failure
//! still answers 503 and Dataverse retries it. Which change of a contact goes is [`coalesce`]'s
//! decision: one per contact, and a deletion over everything else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::burst::{coalesce, Change, Fate, Sent};
use salesmanago_dynamics::core::dataverse::schema::{self, integration};
use salesmanago_dynamics::core::i18n::{text, Lang, Message};
use salesmanago_dynamics::core::integration::{Settings, SELECT};
use salesmanago_dynamics::core::job::contact::{ContactStart, Task};
use salesmanago_dynamics::core::job::lease::User;
use salesmanago_dynamics::core::job::{Job, Start};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::salesmanago::operation::BatchUpsert;

use crate::{driver, Relay};

/// What to do for one contact.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// Send it as Dataverse holds it now (the delivery's `version` at least); the columns in
    /// `changed` count as deliberate.
    Send { version: Option<u64>, changed: Vec<String> },
    /// Delete it from SALESmanago, or opt it out (as the record says), by its e-mail.
    Remove { email: String },
}

/// One contact's change.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The contact's id.
    pub(crate) contact: String,
    pub(crate) work: Work,
}

/// How a change ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// SALESmanago has it (sent, deleted or opted out; or it had no such contact to remove).
    Went,
    /// Not sendable, with the reason written on the contact.
    Unsendable(String),
    /// No newer than what this relay sent already.
    Stale,
    /// The contact no longer exists in Dynamics: nothing to send (its deletion comes on its own).
    Gone,
    /// Deleted in Dynamics only: another contact there holds its e-mail, and the SALESmanago
    /// contact stands for that one.
    Kept,
    /// Nothing to do, and why.
    Ignored(&'static str),
}

/// Why a change did not go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// It may go on another try (Dataverse delivers once more after a 503; the catch-up after).
    ForNow(String),
    /// It cannot go as the relay is set up.
    Refused(String),
}

pub(crate) type Answer = Result<Done, Failed>;

/// The deliveries waiting, and when the first and the last of them came.
struct Waiting {
    items: Vec<(Item, oneshot::Sender<Answer>)>,
    first: Instant,
    last: Instant,
}

/// A pause in arrivals this long ends the burst: Dataverse has sent what it had under way (it
/// delivers a few at a time, each waiting for its answer), so waiting longer gains nothing.
const IDLE: Duration = Duration::from_millis(10);

/// Contacts remembered as sent, for [`Fate::Stale`].
const REMEMBERED: usize = 200_000;

/// The waiting deliveries, and what went.
pub(crate) struct Burst {
    window: Duration,
    waiting: Mutex<Waiting>,
    /// What went last, by lower-case contact id (oldest first in the queue).
    sent: Mutex<(HashMap<String, Sent>, VecDeque<String>)>,
}

impl Burst {
    /// Bursts gathered for `window` at most.
    pub(crate) fn new(window: Duration) -> Burst {
        let now = Instant::now();
        let waiting = Waiting { items: Vec::new(), first: now, last: now };
        let sent = Mutex::new((HashMap::new(), VecDeque::new()));
        Burst { window, waiting: Mutex::new(waiting), sent }
    }

    fn remember(&self, contact: &str, went: Sent) {
        let mut guard = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(contact.to_ascii_lowercase(), went).is_none() {
            order.push_back(contact.to_ascii_lowercase());
            if order.len() > REMEMBERED {
                if let Some(oldest) = order.pop_front() {
                    map.remove(&oldest);
                }
            }
        }
    }
}

/// Puts `item` in the burst under way and waits for its answer.
pub(crate) async fn submit(relay: &Arc<Relay>, item: Item) -> Answer {
    let (reply, answer) = oneshot::channel();
    let (first, full) = {
        let mut waiting = relay.burst.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if waiting.items.is_empty() {
            waiting.first = now;
        }
        waiting.last = now;
        waiting.items.push((item, reply));
        (waiting.items.len() == 1, waiting.items.len() >= BatchUpsert::MAX)
    };
    if full {
        tokio::spawn(flush(relay.clone()));
    } else if first {
        let relay = relay.clone();
        tokio::spawn(async move {
            let idle = IDLE.min(relay.burst.window);
            loop {
                tokio::time::sleep(idle).await;
                let due = {
                    let waiting = relay.burst.waiting.lock().unwrap_or_else(|p| p.into_inner());
                    waiting.items.is_empty()
                        || waiting.last.elapsed() >= idle
                        || waiting.first.elapsed() >= relay.burst.window
                };
                if due {
                    return flush(relay).await;
                }
            }
        });
    }
    // Dataverse waits 60 s for an answer: past `answer_within`, the delivery is answered as a
    // failure that may pass (503), so Dataverse delivers it once more; by then its contact has
    // gone, and the repeat finds it stale. A flush that panicked drops the reply: the same.
    match tokio::time::timeout(relay.config.answer_within, answer).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(Failed::ForNow("no answer within the time Dataverse waits".into())),
    }
}

async fn flush(relay: Arc<Relay>) {
    let taken = std::mem::take(&mut relay.burst.waiting.lock().unwrap_or_else(|p| p.into_inner()).items);
    if taken.is_empty() {
        return;
    }
    let (items, replies): (Vec<Item>, Vec<_>) = taken.into_iter().unzip();
    let answers = go(&relay, &items).await;
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
}

/// Does `items` now, together, with the core's jobs as the browser runs them: the contacts to
/// send as "Export selected" of their rows as Dataverse holds them now (never an older version
/// from a delivery that came late), the deleted ones each as a delete made in Dynamics already
/// (`Task::Forget`: kept while another contact holds the e-mail). Their answers, in order.
pub(crate) async fn go(relay: &Relay, items: &[Item]) -> Vec<Answer> {
    let all = |answer: Answer| vec![answer; items.len()];
    let Some(dataverse) = &relay.dataverse else {
        return all(Err(Failed::Refused(
            "the relay has no Dataverse access (DATAVERSE_URL and an app registration) to read the contact as it is now"
                .into(),
        )));
    };
    // The record's settings and the consent columns, now: never one process's memory.
    let record_query = format!("{}?$select={}&$top=2", integration::ENTITY_SET, SELECT.join(","));
    let (record, attributes) = tokio::join!(dataverse.get(&record_query), dataverse.get(schema::CONTACT_ATTRIBUTES));
    let (record, attributes) = match (record, attributes) {
        (Ok(record), Ok(attributes)) => (record, attributes),
        _ => return all(Err(Failed::ForNow("Dataverse could not be read".into()))),
    };
    let rows: Vec<Map> = record
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_object().cloned())
        .collect();
    let [row] = rows.as_slice() else {
        return all(Ok(Done::Ignored("there is not exactly one SALESmanago Integration record")));
    };
    let settings = Settings::with(row, relay.client.clone());
    if !settings.webhooks {
        return all(Ok(Done::Ignored(
            "webhooks are off on the SALESmanago Integration record: the browser sends changes on save",
        )));
    }
    let consents = schema::consent_columns(&Value::Object(attributes));
    let changes: Vec<Change> = items
        .iter()
        .map(|item| match &item.work {
            Work::Send { version, .. } => {
                Change { contact: item.contact.clone(), version: *version, modified_ms: None, delete: false }
            }
            Work::Remove { .. } => {
                Change { contact: item.contact.clone(), version: None, modified_ms: None, delete: true }
            }
        })
        .collect();
    // Which change of a contact goes; what this relay sent already spares a read (an
    // optimisation: the rows are read as they are now).
    let fates = {
        let sent = relay.burst.sent.lock().unwrap_or_else(|p| p.into_inner());
        coalesce(&changes, |contact| sent.0.get(contact).copied())
    };
    let now = crate::now_ms();
    let user = User { id: relay.config.app_user.clone().unwrap_or_default(), name: "SALESmanago relay".into() };
    let mut selected = Vec::new();
    let mut changed: Vec<(String, Vec<String>)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let (Fate::Go, Work::Send { changed: columns, .. }) = (&fates[index], &item.work) {
            selected.push(item.contact.clone());
            // The columns set by every change of the contact in the burst.
            let mut columns = columns.clone();
            for (other, change) in items.iter().enumerate() {
                if matches!(fates[other], Fate::RidesOn(winner) if winner == index) {
                    if let Work::Send { changed: more, .. } = &change.work {
                        columns.extend(more.iter().cloned());
                    }
                }
            }
            changed.push((item.contact.clone(), columns));
        }
    }
    let export = (!selected.is_empty()).then(|| {
        Job::new(Start {
            job: BulkJob::ExportSelected,
            lang: Lang::En,
            settings: settings.clone(),
            user: user.clone(),
            record: row.clone(),
            consents: consents.clone(),
            selected: selected.clone(),
            changed,
            now_ms: now,
            seed: crate::outgoing::seed(),
        })
    });
    let forgets: Vec<(usize, Job)> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match (&fates[index], &item.work) {
            (Fate::Go, Work::Remove { email }) => Some((index, email)),
            _ => None,
        })
        .map(|(index, email)| {
            let task = Task::Forget { id: items[index].contact.clone(), email: email.clone() };
            let start = ContactStart {
                task,
                lang: Lang::En,
                settings: settings.clone(),
                consents: consents.clone(),
                now_ms: now,
                seed: crate::outgoing::seed(),
            };
            (index, Job::contact(start))
        })
        .collect();
    let exported = async {
        match export {
            Some(mut job) => {
                let result = driver::drive(relay, dataverse, &mut job).await;
                Some((result, job.went().to_vec()))
            }
            None => None,
        }
    };
    let forgotten = futures_util::future::join_all(
        forgets
            .into_iter()
            .map(|(index, mut job)| async move { (index, driver::drive(relay, dataverse, &mut job).await) }),
    );
    let (exported, forgotten) = tokio::join!(exported, forgotten);
    let mut answers: Vec<Option<Answer>> = vec![None; items.len()];
    if let Some((result, went)) = exported {
        for (index, item) in items.iter().enumerate() {
            if !(matches!(fates[index], Fate::Go) && matches!(item.work, Work::Send { .. })) {
                continue;
            }
            let id = item.contact.to_ascii_lowercase();
            let sent = went.iter().find(|(w, _)| w.eq_ignore_ascii_case(&id));
            answers[index] = Some(match (&result, sent) {
                (_, Some((_, version))) => {
                    relay.burst.remember(&id, Sent { version: *version, modified_ms: None });
                    Ok(Done::Went)
                }
                (Ok(summary), None) => {
                    match summary.tally.not_done.iter().find(|n| n.id.eq_ignore_ascii_case(&id)) {
                        Some(n) if n.skipped => Ok(Done::Unsendable(n.reason.clone())),
                        Some(n) => Err(Failed::ForNow(n.reason.clone())),
                        // Not read: deleted since (its deletion comes on its own).
                        None => Ok(Done::Gone),
                    }
                }
                (Err(failure), None) => Err(Failed::ForNow(text(&failure.message, Lang::En))),
            });
        }
    }
    for (index, result) in forgotten {
        answers[index] = Some(match result {
            Ok(summary) => match summary.message {
                Message::Deleted { kept, .. } if kept > 0 => Ok(Done::Kept),
                _ => Ok(Done::Went),
            },
            Err(failure) => Err(Failed::ForNow(text(&failure.message, Lang::En))),
        });
    }
    (0..items.len())
        .map(|index| match fates[index] {
            Fate::RidesOn(winner) => answers[winner].clone(),
            Fate::Stale => Some(Ok(Done::Stale)),
            Fate::Go => answers[index].clone(),
        })
        .map(|answer| answer.unwrap_or(Ok(Done::Gone)))
        .collect()
}
