//! `POST /dataverse/webhook`: Dataverse's webhook (a service endpoint with asynchronous steps on
//! contact Create, Update and Delete) posts each change here, and the relay acts on it with the
//! engine's core: the event's plan ([`event::plan`]), the contact mapping and the consent rule
//! ([`to_salesmanago`]), the SALESmanago operations.
//!
//! The webhook's key comes as the header `x-relay-webhook-key` (authentication type HttpHeader)
//! or as `?code=` (WebhookKey); it is checked like the relay keys. Dataverse retries a delivery
//! once, and only after 502, 503 or 504, so a failure that may pass answers 503; a refusal that
//! will not change answers 400, which Dataverse records as a failed system job for an admin to
//! see. A delivery seen before (its operation id) is answered without acting again.
//!
//! With Dataverse access (`DATAVERSE_URL` and an app registration), a contact the event does not
//! fully describe (a payload cut for size, a step without a post-image) is read back, and the
//! status the browser would write (SALESmanago id, time, status, last error, consent base) is
//! written back as the application user, whose own changes the plan never sends back. Without
//! it, such events are answered "skipped" with the reason.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::event::{self, Event, Plan, SIZE_EXCEEDED_HEADER};
use salesmanago_dynamics::core::dataverse::registration;
use salesmanago_dynamics::core::dataverse::schema::SyncStatus;
use salesmanago_dynamics::core::i18n::{text, Lang, Message};
use salesmanago_dynamics::core::json::Map;
use salesmanago_dynamics::core::mapping::{to_salesmanago, Held, OutboundOptions};
use salesmanago_dynamics::core::retry::is_transient;
use salesmanago_dynamics::core::salesmanago::operation::{Channel, Delete, SetSubscription, Upsert};
use salesmanago_dynamics::core::salesmanago::relay;
use salesmanago_dynamics::core::salesmanago::SmError;
use salesmanago_dynamics::core::sync;

use crate::{json_response, keys, Relay};

/// Operation ids of deliveries already acted on, the newest last.
pub(crate) struct Seen {
    ids: Mutex<(HashSet<String>, VecDeque<String>)>,
}

const REMEMBERED: usize = 10_000;

impl Seen {
    pub(crate) fn new() -> Seen {
        Seen { ids: Mutex::new((HashSet::new(), VecDeque::new())) }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).0.contains(id)
    }

    /// Remembers `id`, forgetting the oldest beyond [`REMEMBERED`].
    fn add(&self, id: String) {
        let mut guard = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *guard;
        if !set.insert(id.clone()) {
            return;
        }
        order.push_back(id);
        if order.len() > REMEMBERED {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
    }
}

/// The webhook key the request shows, if any.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(key) = headers.get(registration::KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    query?.split('&').find_map(|part| part.strip_prefix("code=")).map(str::to_owned)
}

fn answer(status: u16, done: &str, reason: &str) -> Response {
    let body = salesmanago_dynamics::object! {"done": done, "reason": reason}.to_string();
    json_response(status, body)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) async fn webhook(
    State(relay): State<std::sync::Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let key = presented(&headers, query.as_deref())
        .and_then(|k| keys::verify(&relay.config.webhook_keys, &k).map(str::to_owned));
    let (response, change, planned) = match key {
        None => (crate::refusal(relay::Refusal::Key, None), "", "refused"),
        Some(_) => handle(&relay, &headers, body).await,
    };
    tracing::info!(
        target: "request",
        key = key.as_deref().unwrap_or(""),
        method = "dataverse/webhook",
        change,
        plan = planned,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    response
}

/// Acts on one delivery: the answer, the change and the plan's kind (for the log).
async fn handle(relay: &Relay, headers: &HeaderMap, body: Body) -> (Response, &'static str, &'static str) {
    let Ok(bytes) = to_bytes(body, relay.config.max_body).await else {
        return (crate::refusal(relay::Refusal::TooLarge, None), "", "refused");
    };
    let truncated = headers.contains_key(SIZE_EXCEEDED_HEADER);
    let event =
        match std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(|text| Event::parse(text, truncated)) {
            Ok(event) => event,
            Err(problem) => {
                return (answer(400, "refused", &format!("not an execution context: {problem}")), "", "refused")
            }
        };
    let change = match event.change {
        event::Change::Create => "Create",
        event::Change::Update => "Update",
        event::Change::Delete => "Delete",
        event::Change::Other(_) => "Other",
    };
    if event.operation.as_deref().is_some_and(|id| relay.seen.contains(id)) {
        return (answer(200, "repeated", "this delivery was acted on before"), change, "repeated");
    }
    let mut planned = event::plan(&event, relay.config.app_user.as_deref());
    if let Plan::ReadBack(id) = &planned {
        // The event does not say enough: the contact as Dataverse holds it now.
        let Some(dataverse) = &relay.dataverse else {
            let reason = "the event does not say enough, and the relay has no Dataverse access (DATAVERSE_URL) to read the contact back";
            return (answer(200, "skipped", reason), change, "readBack");
        };
        match dataverse.contact(id).await {
            Ok(row) => planned = Plan::Send { row, changed: event.target.keys().cloned().collect() },
            Err(error) if error.transient() => return (answer(503, "failed", "Dataverse"), change, "readBack"),
            Err(_) => return (answer(400, "refused", "the contact could not be read back"), change, "readBack"),
        }
    }
    let (kind, result) = match planned {
        Plan::Ignore(reason) => return (answer(200, "ignored", reason), change, "ignore"),
        Plan::ReadBack(_) => unreachable!("read back above"),
        Plan::Send { row, changed } => match send_contact(relay, &event.id, &row, changed).await {
            Ok(true) => ("send", Ok(())),
            Ok(false) => {
                return (answer(200, "skipped", "the contact cannot be sent (no valid e-mail)"), change, "send")
            }
            Err(error) => ("send", Err(error)),
        },
        Plan::Remove { email } if relay.config.opt_out_on_delete => {
            let unsubscribe = |channel| SetSubscription { email: email.clone(), channel, subscribed: false };
            let result = match relay.perform(&unsubscribe(Channel::Newsletter)).await {
                Ok(_) => relay.perform(&unsubscribe(Channel::Sms)).await.map(|_| ()),
                Err(failed) => Err(failed),
            };
            ("optOut", result)
        }
        Plan::Remove { email } => ("delete", relay.perform(&Delete { email, permanently: false }).await),
    };
    let response = match result {
        Ok(()) => {
            if let Some(id) = event.operation {
                relay.seen.add(id);
            }
            answer(200, "done", "")
        }
        // Dataverse retries once after a 503; the catch-up repairs what fails twice.
        Err(error) if is_transient(&error) => answer(503, "failed", error.kind()),
        Err(SmError::Rejected { messages })
            if messages.iter().any(|m| m.to_ascii_lowercase().contains("not found")) =>
        {
            answer(200, "done", "SALESmanago has no such contact")
        }
        Err(error) => answer(400, "refused", error.kind()),
    };
    (response, change, kind)
}

/// Sends contact `id` as `row` says (the columns in `changed` count as deliberate), then, with
/// Dataverse access, writes back what the browser writes: Synced with the SALESmanago id and the
/// consent base, or Failed with the reason when SALESmanago refused. `Ok(false)`: not sendable
/// (no valid e-mail).
pub(crate) async fn send_contact(relay: &Relay, id: &str, row: &Map, changed: Vec<String>) -> Result<bool, SmError> {
    let options = OutboundOptions { now_ms: now_ms(), changed, salesmanago: Held::Unread };
    let Ok(outbound) = to_salesmanago(&ContactRow::from_json(row), &options) else { return Ok(false) };
    let result = relay.perform(&Upsert(outbound.details)).await;
    let now = now_ms();
    let columns = match &result {
        Ok(sm_id) => sync::write_back(row, SyncStatus::Synced, Some(sm_id), None, outbound.base.as_deref(), now),
        Err(error) if !is_transient(error) => {
            let reason = text(&Message::Salesmanago(error.clone()), Lang::En);
            sync::write_back(row, SyncStatus::Failed, None, Some(&reason), None, now)
        }
        Err(_) => None,
    };
    if let (Some(columns), Some(dataverse)) = (columns, &relay.dataverse) {
        // Written as the application user, whose changes are never sent back.
        if let Err(error) = dataverse.write(id, &columns).await {
            tracing::warn!(target: "request", method = "dataverse/write", error = format!("{error:?}").as_str());
        }
    }
    result.map(|_| true)
}

/// `POST /dataverse/catch-up` (with a webhook key): one catch-up now, and what it did.
pub(crate) async fn catch_up_now(
    State(relay): State<std::sync::Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if presented(&headers, query.as_deref()).and_then(|k| keys::verify(&relay.config.webhook_keys, &k)).is_none() {
        return crate::refusal(relay::Refusal::Key, None);
    }
    match crate::catchup::catch_up(&relay).await {
        Ok(done) => {
            let watermark = done.watermark.map(|w| w.to_string());
            let body = salesmanago_dynamics::object! {"sent": done.sent, "skipped": done.skipped, "failed": done.failed, "watermark": watermark};
            json_response(200, body.to_string())
        }
        Err(error) => answer(if error.transient() { 503 } else { 502 }, "failed", &format!("{error:?}")),
    }
}
