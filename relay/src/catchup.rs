//! The catch-up: what a webhook delivery that failed twice, or a relay that was down, left
//! unsent. It reads the contacts modified since its watermark (less an overlap for changes
//! committed out of order: [`CATCH_UP_OVERLAP_MS`]), oldest first, and sends each as the webhook
//! would; the watermark (`new_catchupwatermark` on the integration record, Unix ms) moves only past
//! contacts that went, or were skipped with their reason written back, never past one that
//! failed for now. The integration's own write-backs are not sent again.
//!
//! It runs every `RELAY_CATCH_UP_MINUTES` (15 by default) when the relay has Dataverse access,
//! and on `POST /dataverse/catch-up` with a webhook key.

use std::sync::Arc;

use salesmanago_dynamics::core::dataverse::schema::{contact, integration};
use salesmanago_dynamics::core::json::{Map, Value};
use salesmanago_dynamics::core::retry::is_transient;
use salesmanago_dynamics::core::sync::{iso_datetime, unix_ms, CATCH_UP_OVERLAP_MS};

use crate::burst::{self, Done, Item, Work};
use crate::dataverse::DataverseError;
use crate::{now_ms, Relay};

/// What one catch-up did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// Contacts sent.
    pub(crate) sent: u64,
    /// Contacts passed over with a reason (not sendable, refused, the integration's own change).
    pub(crate) skipped: u64,
    /// Contacts that failed for now; the watermark stops before the first.
    pub(crate) failed: u64,
    /// The watermark now (Unix ms).
    pub(crate) watermark: Option<u64>,
}

/// One catch-up.
///
/// Fails when Dataverse cannot be read or the record not written.
pub(crate) async fn catch_up(relay: &Relay) -> Result<CatchUp, DataverseError> {
    let Some(dataverse) = &relay.dataverse else { return Err(DataverseError::Token("no Dataverse access".into())) };
    let query =
        format!("{}?$select={},{}&$top=1", integration::ENTITY_SET, integration::ID, integration::CATCH_UP_WATERMARK);
    let records = dataverse.get(&query).await?;
    let record = records.get("value").and_then(Value::as_array).and_then(|v| v.first()).and_then(Value::as_object);
    let Some(record) = record.cloned() else { return Ok(CatchUp::default()) };
    let record_id = record.get(integration::ID).and_then(Value::as_str).unwrap_or_default().to_owned();
    let stored =
        record.get(integration::CATCH_UP_WATERMARK).and_then(Value::as_str).and_then(|w| w.parse::<u64>().ok());
    // The first run looks back two periods (of 15 minutes when the schedule is off): "Export all
    // contacts" is the way to send everything.
    let period = if relay.config.catch_up.is_zero() { 15 * 60_000 } else { relay.config.catch_up.as_millis() as u64 };
    let first = now_ms().saturating_sub(2 * period);
    let since = stored.map_or(first, |w| w.saturating_sub(CATCH_UP_OVERLAP_MS));
    let mut next =
        Some(format!("{}?$filter=modifiedon ge {}&$orderby=modifiedon asc", contact::ENTITY_SET, iso_datetime(since)));
    let mut done = CatchUp { watermark: stored, ..CatchUp::default() };
    let mut stopped = false;
    while let Some(page) = next.take() {
        let answer = dataverse.get(&page).await?;
        let rows: Vec<&Map> =
            answer.get("value").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
        let own = |row: &Map| {
            relay.config.app_user.as_deref().is_some_and(|own| {
                row.get("_modifiedby_value")
                    .and_then(Value::as_str)
                    .is_some_and(|by| by.eq_ignore_ascii_case(own.trim_matches(['{', '}'])))
            })
        };
        // The page's contacts go together, as a burst does; the integration's own writes do not.
        let items: Vec<Item> = rows
            .iter()
            .filter(|row| !own(row))
            .map(|row| Item {
                contact: row.get(contact::ID).and_then(Value::as_str).unwrap_or_default().to_owned(),
                work: Work::Send { row: (*row).clone(), changed: Vec::new() },
            })
            .collect();
        let mut answers = burst::go(relay, &items).await.into_iter();
        for row in rows {
            let modified = row.get(contact::MODIFIED_ON).and_then(Value::as_str).and_then(unix_ms);
            let outcome = if own(row) { Ok(Done::Unsendable) } else { answers.next().unwrap_or(Ok(Done::Unsendable)) };
            match outcome {
                Ok(Done::Went) => done.sent += 1,
                Ok(_) => done.skipped += 1,
                Err(error) if is_transient(&error) => {
                    done.failed += 1;
                    stopped = true;
                }
                // Refused for good: its reason is written on the contact.
                Err(_) => done.skipped += 1,
            }
            if !stopped {
                done.watermark = modified.max(done.watermark);
            }
        }
        next = answer.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
    }
    if done.watermark != stored {
        let mut columns = Map::new();
        let value = done.watermark.map_or(Value::Null, |w| Value::from(w.to_string()));
        columns.insert(integration::CATCH_UP_WATERMARK.into(), value);
        dataverse.patch(&format!("{}({record_id})", integration::ENTITY_SET), &columns).await?;
    }
    Ok(done)
}

/// Runs the catch-up every period, for as long as the relay runs.
pub(crate) async fn every(relay: Arc<Relay>) {
    loop {
        tokio::time::sleep(relay.config.catch_up).await;
        match catch_up(&relay).await {
            Ok(done) => {
                tracing::info!(target: "request", method = "catch-up", sent = done.sent, skipped = done.skipped, failed = done.failed)
            }
            Err(error) => tracing::warn!(target: "request", method = "catch-up", error = format!("{error:?}").as_str()),
        }
    }
}
