//! The catch-up: what a webhook delivery that failed twice, or a relay that was down, left
//! unsent. It is the browser's "Export changes" job, driven by the relay as the application
//! user: under the job's lease (one run at a time, across relay instances and browsers), from
//! the watermark on the integration record, which moves only when no contact failed, on
//! Dataverse's clock.
//!
//! It runs every `RELAY_CATCH_UP_MINUTES` (15 by default) when the relay has Dataverse access,
//! and on `POST /dataverse/catch-up` with a webhook key.
//!
//! Pull activity runs the same way, as the browser's job (SALESmanago's activity onto the
//! contacts' timelines, under its lease, from its watermark): every `RELAY_ACTIVITY_MINUTES`
//! (60 by default), and on `POST /dataverse/pull-activity` with a webhook key.

use std::sync::Arc;

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::{self, integration};
use salesmanago_dynamics::core::i18n::{text, Lang, Message};
use salesmanago_dynamics::core::integration::{Settings, SELECT};
use salesmanago_dynamics::core::job::{record_columns, Job, Start, Summary};
use salesmanago_dynamics::core::json::Value;

use crate::{driver, now_ms, Relay};

/// What one catch-up did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// Contacts sent.
    pub(crate) sent: u64,
    /// Contacts passed over with a reason written on them (not sendable).
    pub(crate) skipped: u64,
    /// Contacts that failed for now: the watermark stays.
    pub(crate) failed: u64,
    /// The watermark now (Unix ms, Dataverse's clock).
    pub(crate) watermark: Option<u64>,
}

/// Why a catch-up did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stopped {
    /// What the job said, in English.
    pub(crate) reason: String,
    /// May pass on another try (Dataverse or SALESmanago unavailable, another run under way).
    pub(crate) transient: bool,
}

/// What one Pull activity did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pulled {
    /// Contacts whose activity was read.
    pub(crate) contacts: u64,
    /// Activity rows created.
    pub(crate) created: u64,
    /// Activity rows there already.
    pub(crate) present: u64,
    /// Contacts whose activity failed for now.
    pub(crate) failed: u64,
}

/// One catch-up.
pub(crate) async fn catch_up(relay: &Relay) -> Result<CatchUp, Stopped> {
    let Some(dataverse) = &relay.dataverse else { return Err(stopped("no Dataverse access".into(), false)) };
    let t = run(relay, BulkJob::ExportChanges).await?.tally;
    let watermark = dataverse
        .get(&format!("{}?$select={}&$top=1", integration::ENTITY_SET, integration::CATCH_UP_WATERMARK))
        .await
        .ok()
        .and_then(|r| {
            r.get("value")?.as_array()?.first()?.get(integration::CATCH_UP_WATERMARK)?.as_str()?.parse().ok()
        });
    Ok(CatchUp { sent: t.done, skipped: t.skipped(), failed: t.failed(), watermark })
}

/// One Pull activity.
pub(crate) async fn pull_activity(relay: &Relay) -> Result<Pulled, Stopped> {
    let t = run(relay, BulkJob::PullActivity).await?.tally;
    Ok(Pulled { contacts: t.total, created: t.done, present: t.same, failed: t.failed() })
}

/// Runs `job` (the catch-up or Pull activity) now: what it did, as the relay answers it.
pub(crate) async fn run_now(relay: &Relay, job: BulkJob) -> Result<Value, Stopped> {
    Ok(match job {
        BulkJob::PullActivity => {
            let done = pull_activity(relay).await?;
            salesmanago_dynamics::object! {"contacts": done.contacts, "created": done.created, "present": done.present, "failed": done.failed}
        }
        BulkJob::ExportChanges => {
            let done = catch_up(relay).await?;
            let watermark = done.watermark.map(|w| w.to_string());
            salesmanago_dynamics::object! {"sent": done.sent, "skipped": done.skipped, "failed": done.failed, "watermark": watermark}
        }
        other => return Err(stopped(format!("the relay does not run {other:?}"), false)),
    })
}

fn stopped(reason: String, transient: bool) -> Stopped {
    Stopped { reason, transient }
}

/// Runs `job` as the application user, from the integration record as it is now.
async fn run(relay: &Relay, job: BulkJob) -> Result<Summary, Stopped> {
    let Some(dataverse) = &relay.dataverse else { return Err(stopped("no Dataverse access".into(), false)) };
    let columns: Vec<&str> = SELECT.iter().copied().chain(record_columns(job)).collect();
    let query = format!("{}?$select={}&$top=2", integration::ENTITY_SET, columns.join(","));
    let unreadable = |_| stopped("Dataverse could not be read".into(), true);
    let (records, attributes) = tokio::join!(dataverse.get(&query), dataverse.get(schema::CONTACT_ATTRIBUTES));
    let (records, attributes) = (records.map_err(unreadable)?, attributes.map_err(unreadable)?);
    let rows: Vec<_> = records.get("value").and_then(Value::as_array).into_iter().flatten().collect();
    let [Value::Object(record)] = rows.as_slice() else {
        return Err(stopped("there is not exactly one SALESmanago Integration record".into(), false));
    };
    let settings = Settings::with(record, relay.client.clone())
        .map_err(|error| stopped(text(&Message::Settings(error), Lang::En), false))?;
    let start = Start {
        job,
        lang: Lang::En,
        settings,
        user: relay.user(),
        record: record.clone(),
        consents: schema::consent_columns(&Value::Object(attributes)),
        selected: Vec::new(),
        changed: Vec::new(),
        read: None,
        now_ms: now_ms(),
        seed: crate::outgoing::seed(),
    };
    let mut running = Job::new(start);
    driver::drive(relay, dataverse, &mut running).await.map_err(|failure| {
        let transient = !matches!(failure.kind, "settings" | "auth" | "unknownOwner" | "relayCredentials");
        stopped(text(&failure.message, Lang::En), transient)
    })
}

/// Runs the catch-up every period, for as long as the relay runs.
pub(crate) async fn every(relay: Arc<Relay>) {
    loop {
        tokio::time::sleep(relay.config.catch_up).await;
        match catch_up(&relay).await {
            Ok(done) => {
                tracing::info!(target: "request", method = "catch-up", sent = done.sent, skipped = done.skipped, failed = done.failed)
            }
            Err(stopped) => tracing::warn!(target: "request", method = "catch-up", error = stopped.reason.as_str()),
        }
    }
}

/// Runs Pull activity every period, for as long as the relay runs.
pub(crate) async fn activity_every(relay: Arc<Relay>) {
    loop {
        tokio::time::sleep(relay.config.activity).await;
        match pull_activity(&relay).await {
            Ok(done) => {
                tracing::info!(target: "request", method = "pull-activity", contacts = done.contacts, created = done.created, present = done.present, failed = done.failed)
            }
            Err(stopped) => {
                tracing::warn!(target: "request", method = "pull-activity", error = stopped.reason.as_str())
            }
        }
    }
}
