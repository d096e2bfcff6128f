//! The SALESmanago Integration record's settings the relay follows, read as the application
//! user and kept for a minute: whether a deleted contact is opted out instead of deleted
//! (`new_optoutondelete`), and whether webhooks are on (`new_webhooks`). Without Dataverse
//! access, or while the record cannot be read, `RELAY_ON_DELETE` decides and webhooks count as
//! on.

use std::time::{Duration, Instant};

use salesmanago_dynamics::core::dataverse::schema::integration;
use salesmanago_dynamics::core::json::Value;
use tokio::sync::Mutex;

use crate::Relay;

/// How long a read of the record holds.
const FRESH: Duration = Duration::from_secs(60);

/// The settings as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// A deleted contact is opted out in SALESmanago, not deleted there.
    pub(crate) opt_out_on_delete: bool,
    /// Changes reach SALESmanago through the webhook (else the browser sends them).
    pub(crate) webhooks: bool,
}

/// The cache of [`Settings`].
pub(crate) struct Record {
    held: Mutex<Option<(Settings, Instant)>>,
}

impl Record {
    pub(crate) fn new() -> Record {
        Record { held: Mutex::new(None) }
    }
}

/// The settings now.
pub(crate) async fn settings(relay: &Relay) -> Settings {
    let fallback = Settings { opt_out_on_delete: relay.config.opt_out_on_delete, webhooks: true };
    let Some(dataverse) = &relay.dataverse else { return fallback };
    let mut held = relay.record.held.lock().await;
    if let Some((settings, read)) = *held {
        if read.elapsed() < FRESH {
            return settings;
        }
    }
    let query = format!(
        "{}?$select={},{}&$top=1",
        integration::ENTITY_SET,
        integration::OPT_OUT_ON_DELETE,
        integration::WEBHOOKS
    );
    let Ok(page) = dataverse.get(&query).await else { return held.map_or(fallback, |(s, _)| s) };
    let row = page.get("value").and_then(Value::as_array).and_then(|v| v.first()).and_then(Value::as_object);
    let Some(row) = row else {
        *held = Some((fallback, Instant::now()));
        return fallback;
    };
    // A Yes/No column reads as a boolean; an option set as its value (1: yes).
    let yes = |column: &str| match row.get(column) {
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => other.as_i64().map(|v| v == 1),
        None => None,
    };
    let settings = Settings {
        opt_out_on_delete: yes(integration::OPT_OUT_ON_DELETE).unwrap_or(relay.config.opt_out_on_delete),
        webhooks: yes(integration::WEBHOOKS).unwrap_or(true),
    };
    *held = Some((settings, Instant::now()));
    settings
}
