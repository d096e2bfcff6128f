//! Bursts: webhook deliveries arriving together (an import fires one a contact) wait until
//! arrivals pause for [`IDLE`] (at most `RELAY_BURST_MS`) and go to SALESmanago as batch
//! upserts of up to 400 contacts, with their
//! statuses written back in one Dataverse `$batch`; each delivery is answered with its own
//! contact's outcome, so a failure still answers 503 and Dataverse retries it. Which change of a
//! contact goes is [`coalesce`]'s decision: its newest, never one older than what went already,
//! and a deletion over everything else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use salesmanago_dynamics::core::dataverse::batch;
use salesmanago_dynamics::core::dataverse::burst::{coalesce, Change, Fate, Sent};
use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::schema::{contact, SyncStatus};
use salesmanago_dynamics::core::i18n::{text, Lang, Message};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::mapping::{to_salesmanago, Held, OutboundOptions};
use salesmanago_dynamics::core::retry::is_transient;
use salesmanago_dynamics::core::salesmanago::operation::{BatchUpsert, Channel, Delete, SetSubscription};
use salesmanago_dynamics::core::salesmanago::SmError;
use salesmanago_dynamics::core::sync::{self, unix_ms};

use crate::Relay;

/// What to do for one contact.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// Send it as `row` says; the columns in `changed` count as deliberate.
    Send { row: Map, changed: Vec<String> },
    /// Delete it from SALESmanago, or opt it out (`opt_out`, as the record says), by its e-mail.
    Remove { email: String, opt_out: bool },
}

/// One contact's change.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The contact's id.
    pub(crate) contact: String,
    pub(crate) work: Work,
}

/// How a change ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// SALESmanago has it (sent, deleted or opted out).
    Went,
    /// Not sendable (no valid e-mail).
    Unsendable,
    /// No newer than what went already.
    Stale,
    /// Deleting: SALESmanago had no such contact.
    Absent,
}

pub(crate) type Answer = Result<Done, SmError>;

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
    /// Statuses to write back, to [`writer`].
    writes: mpsc::UnboundedSender<Vec<(String, Map)>>,
    /// What went last, by lower-case contact id (oldest first in the queue).
    sent: Mutex<(HashMap<String, Sent>, VecDeque<String>)>,
}

impl Burst {
    /// Bursts gathered for `window` at most, their write-backs sent to `writes` (see [`writer`]).
    pub(crate) fn new(window: Duration, writes: mpsc::UnboundedSender<Vec<(String, Map)>>) -> Burst {
        let now = Instant::now();
        let waiting = Waiting { items: Vec::new(), first: now, last: now };
        let sent = Mutex::new((HashMap::new(), VecDeque::new()));
        Burst { window, waiting: Mutex::new(waiting), writes, sent }
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
        Ok(Err(_)) | Err(_) => Err(SmError::Server { status: 503 }),
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

/// The change `row` stands for: its version and modification time.
fn change_of(contact: &str, row: &Map) -> Change {
    // `versionnumber` is an Edm.Int64: a number, or text when the client asked for IEEE754Compatible.
    let version = row.get(contact::VERSION).and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    let modified_ms = row.get(contact::MODIFIED_ON).and_then(Value::as_str).and_then(unix_ms);
    Change { contact: contact.to_owned(), version, modified_ms, delete: false }
}

/// Does `items` now, together: their answers, in order.
pub(crate) async fn go(relay: &Relay, items: &[Item]) -> Vec<Answer> {
    let changes: Vec<Change> = items
        .iter()
        .map(|item| match &item.work {
            Work::Send { row, .. } => change_of(&item.contact, row),
            Work::Remove { .. } => {
                Change { contact: item.contact.clone(), version: None, modified_ms: None, delete: true }
            }
        })
        .collect();
    let fates = {
        let sent = relay.burst.sent.lock().unwrap_or_else(|p| p.into_inner());
        coalesce(&changes, |contact| sent.0.get(contact).copied())
    };
    let mut answers: Vec<Option<Answer>> = vec![None; items.len()];
    let now = crate::now_ms();
    // The sends, as batch upserts.
    let mut going = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match (&fates[index], &item.work) {
            (Fate::Stale, _) => answers[index] = Some(Ok(Done::Stale)),
            (Fate::Go, Work::Send { row, changed }) => {
                let options = OutboundOptions { now_ms: now, changed: changed.clone(), salesmanago: Held::Unread };
                match to_salesmanago(&ContactRow::from_json(row), &options) {
                    Ok(outbound) => going.push((index, row, outbound)),
                    Err(_) => answers[index] = Some(Ok(Done::Unsendable)),
                }
            }
            _ => {}
        }
    }
    let mut writes = Vec::new();
    // SALESmanago refusing a batch as a whole: halved until the contact it refuses is alone, as
    // the browser's export does, so only that one fails.
    let mut chunks: Vec<&[_]> = going.chunks(BatchUpsert::MAX).collect();
    while let Some(chunk) = chunks.pop() {
        let details: Vec<_> = chunk.iter().map(|(_, _, outbound)| outbound.details.clone()).collect();
        let Some(call) = BatchUpsert::batches(&details).into_iter().next() else { continue };
        let result = relay.perform(&call).await;
        if chunk.len() > 1 && matches!(result, Err(SmError::Rejected { .. })) {
            let (first, second) = chunk.split_at(chunk.len() / 2);
            chunks.extend([second, first]);
            continue;
        }
        for (index, row, outbound) in chunk {
            // The outcome, and the reason written on the contact when it is refused for good (in
            // the words the browser's export writes).
            let (outcome, refused) = match &result {
                Ok(done) => match done.of(&outbound.details) {
                    Ok(id) => (Ok(id.to_owned()), None),
                    Err((email, reason)) => {
                        let message = Message::NotAccepted { email, reason: reason.clone() };
                        (Err(SmError::Rejected { messages: reason.into_iter().collect() }), Some(message))
                    }
                },
                Err(error) if is_transient(error) => (Err(error.clone()), None),
                Err(error) => (Err(error.clone()), Some(Message::Salesmanago(error.clone()))),
            };
            let columns = match (&outcome, refused) {
                (Ok(id), _) => sync::write_back(row, SyncStatus::Synced, Some(id), None, outbound.base.as_deref(), now),
                (Err(_), Some(message)) => {
                    sync::write_back(row, SyncStatus::Failed, None, Some(&text(&message, Lang::En)), None, now)
                }
                (Err(_), None) => None,
            };
            if let Some(columns) = columns {
                writes.push((items[*index].contact.clone(), columns));
            }
            if outcome.is_ok() {
                relay.burst.remember(&items[*index].contact, changes[*index].sent());
            }
            answers[*index] = Some(outcome.map(|_| Done::Went));
        }
    }
    if relay.dataverse.is_some() && !writes.is_empty() {
        // In order, off the answer's path: the writer sends them as they come, together.
        let _ = relay.burst.writes.send(writes);
    }
    // The deletions, one by one: SALESmanago has no batch for them.
    for (index, item) in items.iter().enumerate() {
        if let (Fate::Go, Work::Remove { email, opt_out }) = (&fates[index], &item.work) {
            answers[index] = Some(remove(relay, email, *opt_out).await);
        }
    }
    (0..items.len())
        .map(|index| match fates[index] {
            Fate::RidesOn(winner) => answers[winner].clone(),
            _ => answers[index].clone(),
        })
        .map(|answer| answer.unwrap_or(Ok(Done::Unsendable)))
        .collect()
}

async fn remove(relay: &Relay, email: &str, opt_out: bool) -> Answer {
    let result = if opt_out {
        let unsubscribe = |channel| SetSubscription { email: email.to_owned(), channel, subscribed: false };
        match relay.perform(&unsubscribe(Channel::Newsletter)).await {
            Ok(_) => relay.perform(&unsubscribe(Channel::Sms)).await.map(|_| ()),
            Err(failed) => Err(failed),
        }
    } else {
        relay.perform(&Delete { email: email.to_owned(), permanently: false }).await
    };
    match result {
        Ok(()) => Ok(Done::Went),
        Err(SmError::Rejected { messages })
            if messages.iter().any(|m| m.to_ascii_lowercase().contains("not found")) =>
        {
            Ok(Done::Absent)
        }
        Err(error) => Err(error),
    }
}

/// The writer: writes the statuses back in the order the bursts ended, as the application user
/// (whose changes are never sent back), in `$batch`es of whatever has gathered meanwhile (up to
/// 1,000). A failure is logged: the contact went, and its next change writes it again.
pub(crate) async fn writer(relay: Arc<Relay>, mut writes: mpsc::UnboundedReceiver<Vec<(String, Map)>>) {
    while let Some(mut gathered) = writes.recv().await {
        while gathered.len() < batch::MAX_OPERATIONS {
            match writes.try_recv() {
                Ok(more) => gathered.extend(more),
                Err(_) => break,
            }
        }
        write_back(&relay, &gathered).await;
    }
}

async fn write_back(relay: &Relay, writes: &[(String, Map)]) {
    let Some(dataverse) = &relay.dataverse else { return };
    for chunk in writes.chunks(batch::MAX_OPERATIONS) {
        let body = batch::updates(&dataverse.service_root(), contact::ENTITY_SET, chunk, &crate::now_ms().to_string());
        match dataverse.batch(&body).await {
            Ok(outcomes) => {
                for refused in outcomes.into_iter().filter_map(Result::err) {
                    tracing::warn!(target: "request", method = "dataverse/write", error = refused.as_str());
                }
            }
            Err(error) => {
                tracing::warn!(target: "request", method = "dataverse/write", error = format!("{error:?}").as_str())
            }
        }
    }
}
