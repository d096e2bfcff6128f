//! `POST /dataverse/webhook`: Dataverse's webhook (a service endpoint with asynchronous steps on
//! contact Create, Update and Delete) posts each change here, and the relay acts on it with the
//! engine's core: the event's plan ([`event::plan`]); the contact then goes with the deliveries
//! arriving with it ([`crate::burst`]: the mapping and the consent rule, batch upserts, the
//! write-back), and this delivery is answered with its own contact's outcome.
//!
//! The webhook's key comes as the header `x-relay-webhook-key` (authentication type HttpHeader)
//! or as `?code=` (WebhookKey); it is checked like the relay keys. Dataverse retries a delivery
//! once, and only after 502, 503 or 504, so a failure that may pass answers 503; a refusal that
//! will not change answers 400, which Dataverse records as a failed system job for an admin to
//! see. A delivery seen before (its operation id) is answered without acting again.
//!
//! With Dataverse access (`DATAVERSE_URL` and an app registration), a contact the event does not
//! fully describe (a payload cut for size, a step without a post-image) is read back, the
//! integration record's settings are followed (`integration::behaviour`), and the status the browser
//! would write (SALESmanago id, time, status, last error, consent base) is written back as the
//! application user, whose own changes the plan never sends back. Without it, such events are
//! answered "skipped" with the reason.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::contact;
use salesmanago_dynamics::core::dataverse::event::{self, Event, Plan, SIZE_EXCEEDED_HEADER};
use salesmanago_dynamics::core::dataverse::registration;

use crate::burst::{self, Delivery, Done, Failed, Work};
use crate::{intake, json_response, keys, Relay};

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

/// The webhook key the request shows, if any: its header, or `?code=` (percent-decoded).
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(key) = headers.get(registration::KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    let code = query?.split('&').find_map(|part| part.strip_prefix("code="))?;
    let code = code.replace('+', " ");
    percent_encoding::percent_decode_str(&code).decode_utf8().ok().map(|c| c.trim().to_owned())
}

/// The answer to a delivery without a webhook key the relay knows.
fn unknown_key() -> Response {
    answer(401, "refused", "missing or unknown webhook key (the x-relay-webhook-key header, or ?code=)")
}

fn answer(status: u16, done: &str, reason: &str) -> Response {
    let body = salesmanago_dynamics::object! {"done": done, "reason": reason}.to_string();
    json_response(status, body)
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
        None => (unknown_key(), "", "refused"),
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
async fn handle(relay: &Arc<Relay>, headers: &HeaderMap, body: Body) -> (Response, &'static str, &'static str) {
    let bytes = match intake::body(headers, body, relay.config.max_body, relay.config.body_timeout).await {
        Ok(bytes) => bytes,
        Err(refused) => return (crate::refusal(refused, None), "", "refused"),
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
    let work = match event::plan(&event, relay.config.app_user.as_deref()) {
        Plan::Ignore(reason) => return (answer(200, "ignored", reason), change, "ignore"),
        // The contact goes as Dataverse holds it now (read for the burst): the event's row
        // only tells its version, and which columns the request set.
        Plan::ReadBack(_) => Work::Send { version: None, changed: event.target.keys().cloned().collect() },
        Plan::Send { row, changed } => Work::Send { version: contact::version(&row), changed },
        Plan::Remove { email } => Work::Remove { email },
    };
    let kind = match work {
        Work::Send { .. } => "send",
        Work::Remove { .. } => "remove",
    };
    let response = match burst::submit(relay, Delivery { contact: event.id.clone(), work }).await {
        Ok(done) => {
            if let Some(id) = event.operation {
                relay.seen.add(id);
            }
            match done {
                Done::Went => answer(200, "done", ""),
                Done::Stale => answer(200, "done", "this change of the contact, or a newer one, went already"),
                Done::Gone => answer(200, "done", "the contact no longer exists in Dynamics: nothing to send"),
                Done::Kept => answer(
                    200,
                    "kept",
                    "another Dynamics contact holds the e-mail: the SALESmanago contact stands for it and stays",
                ),
                Done::Unsendable(reason) => answer(200, "skipped", &reason),
                Done::Ignored(reason) => answer(200, "ignored", reason),
            }
        }
        // Dataverse retries once after a 503; the catch-up repairs what fails twice.
        Err(Failed::ForNow(reason)) => answer(503, "failed", &reason),
        Err(Failed::Refused(reason)) => answer(400, "refused", &reason),
    };
    (response, change, kind)
}

/// `POST /dataverse/catch-up` (with a webhook key): one catch-up now, and what it did.
pub(crate) async fn catch_up_now(
    State(relay): State<std::sync::Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    run_now(&relay, query.as_deref(), &headers, BulkJob::ExportChanges).await
}

/// `POST /dataverse/pull-activity` (with a webhook key): one Pull activity now, and what it did.
pub(crate) async fn pull_activity_now(
    State(relay): State<std::sync::Arc<Relay>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    run_now(&relay, query.as_deref(), &headers, BulkJob::PullActivity).await
}

/// Runs one of the relay's scheduled jobs now, for a request with a webhook key: what it did,
/// or 503 when another try may pass, else 502, with why.
async fn run_now(relay: &Relay, query: Option<&str>, headers: &HeaderMap, job: BulkJob) -> Response {
    if presented(headers, query).and_then(|k| keys::verify(&relay.config.webhook_keys, &k)).is_none() {
        return unknown_key();
    }
    match crate::catchup::run_now(relay, job).await {
        Ok(done) => json_response(200, done.to_string()),
        Err(stopped) => answer(if stopped.transient { 503 } else { 502 }, "failed", &stopped.reason),
    }
}
