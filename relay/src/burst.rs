//! Bursts: webhook deliveries arriving together (an import fires one a contact) wait until
//! arrivals pause ([`crate::gather`], at most `RELAY_BURST_MS`) and go together through the core's
//! jobs ([`go`]): the contacts' rows read beside the integration record, batch upserts of up to
//! 400 contacts. Each delivery is answered with its own contact's outcome in SALESmanago, so a
//! failure still answers 503 and Dataverse retries it; the statuses are written back in one
//! Dataverse `$batch` after the answers, and the contacts read again. Which change of a contact
//! goes is the core's decision (`coalesce`): one per contact, and a deletion over everything
//! else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use salesmanago_dynamics::core::dataverse::burst::Sent;
use salesmanago_dynamics::core::dataverse::schema::{self, integration};
use salesmanago_dynamics::core::i18n::{text, Lang};
use salesmanago_dynamics::core::integration::SELECT;
use salesmanago_dynamics::core::job::deliveries::{self, BurstStart, Exported};
use salesmanago_dynamics::core::job::{Job, JobFailure, Settled, Summary};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::salesmanago::operation::BatchUpsert;

use salesmanago_dynamics::core::retry::RetryPolicy;

use crate::dataverse::{Dataverse, DataverseError, Method};
use crate::gather::Gather;
use crate::{driver, Relay};

pub(crate) use salesmanago_dynamics::core::job::deliveries::{Answer, Delivery, Done, Failed, Work};

/// The contact table's consent columns: read at most once a minute (columns are added by an
/// admin's customisation, rarely; the record, which says whether and how to act, is read for
/// every burst).
pub(crate) async fn consent_columns(relay: &Relay, dataverse: &Dataverse) -> Option<Vec<String>> {
    const FRESH: Duration = Duration::from_secs(60);
    if let Some((columns, read)) = relay.burst.consents.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        if read.elapsed() < FRESH {
            return Some(columns.clone());
        }
    }
    let attributes = dataverse.get_with(schema::CONTACT_ATTRIBUTES, RetryPolicy::delivery()).await.ok()?;
    let columns = schema::consent_columns(&Value::Object(attributes));
    *relay.burst.consents.lock().unwrap_or_else(|p| p.into_inner()) = Some((columns.clone(), Instant::now()));
    Some(columns)
}

/// Contacts remembered as sent: a delivery no newer is not read again.
const REMEMBERED: usize = 200_000;

/// The waiting deliveries, and what went.
pub(crate) struct Burst {
    gather: Arc<Gather<Delivery, Answer>>,
    /// The consent columns, and when they were read.
    consents: Mutex<Option<(Vec<String>, Instant)>>,
    /// What went last, by lower-case contact id (oldest first in the queue).
    sent: Mutex<(HashMap<String, Sent>, VecDeque<String>)>,
}

impl Burst {
    /// Bursts gathered for `window` at most.
    pub(crate) fn new(window: Duration) -> Burst {
        let sent = Mutex::new((HashMap::new(), VecDeque::new()));
        Burst { gather: Arc::new(Gather::new(window, BatchUpsert::MAX)), sent, consents: Mutex::new(None) }
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
pub(crate) async fn submit(relay: &Arc<Relay>, item: Delivery) -> Answer {
    let answer = relay.burst.gather.add(item, relay.clone(), flush);
    // Dataverse waits 60 s for an answer: past `answer_within`, the delivery is answered as a
    // failure that may pass (503), so Dataverse delivers it once more; by then its contact has
    // gone, and the repeat finds it stale. A flush that panicked drops the reply: the same.
    match tokio::time::timeout(relay.config.answer_within, answer).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(Failed::ForNow("no answer within the time Dataverse waits".into())),
    }
}

async fn flush(relay: Arc<Relay>, items: Vec<Delivery>) -> Vec<Answer> {
    go(&relay, &items).await
}

/// Does `items` now, together, through the core's jobs ([`deliveries::Burst`]): the record and
/// the consent columns read for the burst (never one process's memory), the jobs driven, each
/// delivery's answer, in order.
pub(crate) async fn go(relay: &Arc<Relay>, items: &[Delivery]) -> Vec<Answer> {
    let all = |answer: Answer| vec![answer; items.len()];
    let Some(dataverse) = &relay.dataverse else {
        return all(Err(Failed::Refused(
            "the relay has no Dataverse access (DATAVERSE_URL and an app registration) to read the contact as it is now"
                .into(),
        )));
    };
    let Some(consents) = consent_columns(relay, dataverse).await else {
        return all(Err(Failed::ForNow("Dataverse could not be read".into())));
    };
    let plan = {
        let sent = relay.burst.sent.lock().unwrap_or_else(|p| p.into_inner());
        deliveries::Burst::plan(items, &consents, |contact| sent.0.get(contact).copied())
    };
    // The record and the contacts' rows, read side by side.
    let root = dataverse.service_root();
    let rows = plan.reads().iter().map(|read| {
        let url = read.url(&root);
        async move { dataverse.exchange(&url, &read.prefer(), Method::Get).await }
    });
    let (record, read) = tokio::join!(read_record(dataverse), futures_util::future::join_all(rows));
    let Ok(record) = record else {
        return all(Err(Failed::ForNow("Dataverse could not be read".into())));
    };
    let start = start(relay, &record, consents);
    let mut burst = match plan.start(start, read) {
        Ok(burst) => burst,
        Err(answer) => return all(answer),
    };
    let export = burst.export.take();
    let forgets = std::mem::take(&mut burst.forgets);
    // The export is answered as soon as SALESmanago has every contact (its statuses are
    // written back and its contacts read again after, off the answers' path).
    let (settled_tx, settled) = oneshot::channel::<Outcome>();
    match export {
        Some(job) => relay.after.spawn(export_job(relay.clone(), job, settled_tx)),
        None => drop(settled_tx),
    }
    let forgotten = futures_util::future::join_all(
        forgets
            .into_iter()
            .map(|(index, mut job)| async move { (index, driver::drive(relay, dataverse, &mut job).await) }),
    );
    let (outcome, forgotten) = tokio::join!(settled, forgotten);
    let exported = match &outcome {
        Ok(Outcome::Settled(settled)) => Some(Exported::Settled(settled)),
        Ok(Outcome::Ended(result, went)) => Some(Exported::Ended { result, went }),
        Err(_) => None,
    };
    burst.answers(exported, &forgotten)
}

/// The integration record, read for a burst as the delivery's wait allows
/// ([`RetryPolicy::delivery`]): its query's answer.
pub(crate) async fn read_record(dataverse: &Dataverse) -> Result<Map, DataverseError> {
    let query = format!("{}?$select={}&$top=2", integration::ENTITY_SET, SELECT.join(","));
    dataverse.get_with(&query, RetryPolicy::delivery()).await
}

/// What the relay read for a burst (the record query's answer, the consent columns), with its
/// own client, application user, clock and randomness.
pub(crate) fn start(relay: &Relay, record: &Map, consents: Vec<String>) -> BurstStart {
    let records = record.get("value").and_then(Value::as_array).into_iter().flatten();
    BurstStart {
        records: records.filter_map(|r| r.as_object().cloned()).collect(),
        consents,
        client: relay.client.clone(),
        user: relay.user(),
        now_ms: crate::now_ms(),
        seed: crate::outgoing::seed(),
    }
}

/// What the burst's export tells its deliveries: its contacts settled, or its end.
enum Outcome {
    Settled(Settled),
    /// Boxed: a summary is large beside the settled contacts.
    Ended(Box<Result<Summary, JobFailure>>, Vec<(String, Option<u64>)>),
}

/// Drives the burst's "Export selected" to its end, telling `settled` as soon as it can; what
/// it sent is remembered, and an end that failed after the answers is logged.
async fn export_job(relay: Arc<Relay>, mut job: Job, settled: oneshot::Sender<Outcome>) {
    let Some(dataverse) = &relay.dataverse else { return };
    let mut tell = Some(settled);
    let result = driver::watched(&relay, dataverse, &mut job, |job| {
        if let Some(settled) = job.settled() {
            if let Some(tell) = tell.take() {
                let _ = tell.send(Outcome::Settled(settled.clone()));
            }
        }
    })
    .await;
    for (id, version) in job.went() {
        relay.burst.remember(id, Sent { version: *version, modified_ms: None });
    }
    match tell {
        Some(tell) => {
            let _ = tell.send(Outcome::Ended(Box::new(result), job.went().to_vec()));
        }
        None => {
            if let Err(failure) = &result {
                let message = text(&failure.message, Lang::En);
                tracing::warn!(kind = failure.kind, %message, "a burst's export failed after its deliveries were answered");
            } else if let Ok(summary) = &result {
                if summary.tally.failed() > 0 {
                    let message = text(&summary.message, Lang::En);
                    tracing::warn!(%message, "a burst's export ended with failures after its deliveries were answered");
                }
            }
        }
    }
}
