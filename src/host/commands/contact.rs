//! The contact form's commands (fetch, the quiet check on open, send, sync on save) and delete,
//! from the form or the grid: what the form says goes into a core
//! [`crate::core::job::contact::Task`], which [`super::jobs::drive`] runs.

use crate::core::integration::Settings;
use crate::core::job::contact::{ContactStart, Task};
use crate::core::job::Job;
use crate::prelude::*;

use super::super::browser::{now_ms, random_seed};
use super::super::dynamics::{consent_columns, FormContext};
use super::jobs::drive;
use super::{load_settings, Context, Failure, Outcome};

/// How long a page keeps the integration settings and the consent columns between contact
/// commands, so that a click costs one Dataverse and one SALESmanago round trip.
const CACHE_MS: u64 = 60_000;

/// The cache: when it was filled, the settings and the consent columns. A spin lock only to be a
/// safe `static` in the `no_std` engine: the page's one thread never finds it held.
static CACHE: spin::Mutex<Option<(u64, Settings, Vec<String>)>> = spin::Mutex::new(None);

/// The integration settings and the contact table's consent columns, cached for [`CACHE_MS`].
async fn settings_and_consents(context: &Context) -> Result<(Settings, Vec<String>), Failure> {
    let now = now_ms();
    if let Some((_, settings, consents)) = CACHE.lock().clone().filter(|(at, ..)| now.saturating_sub(*at) < CACHE_MS) {
        return Ok((settings, consents));
    }
    let (web_api, ui) = (context.web_api()?, context.ui());
    let (settings, consents) = futures_util::future::join(load_settings(&web_api, &[]), consent_columns(&ui)).await;
    let (settings, consents) = (settings?.0, consents?);
    *CACHE.lock() = Some((now, settings.clone(), consents.clone()));
    Ok((settings, consents))
}

/// Runs `task`.
async fn run(context: Context, task: Task) -> Outcome {
    let (settings, consents) = settings_and_consents(&context).await?;
    let start = ContactStart { task, lang: context.lang, settings, consents, now_ms: now_ms(), seed: random_seed() };
    drive(&context, Job::contact(start)).await
}

fn form(context: &Context) -> FormContext {
    FormContext(context.primary_control.clone())
}

pub(super) async fn fetch(context: Context) -> Outcome {
    let id = form(&context).id()?;
    run(context, Task::Fetch { id }).await
}

pub(super) async fn opened(context: Context) -> Outcome {
    let id = form(&context).id()?;
    run(context, Task::Check { id }).await
}

pub(super) async fn send(context: Context) -> Outcome {
    let form = form(&context);
    let (id, dirty) = (form.id()?, form.is_dirty());
    run(context, Task::Send { id, dirty }).await
}

pub(super) async fn saved(context: Context) -> Outcome {
    let id = form(&context).id()?;
    let changed = context.changed.clone();
    run(context, Task::Saved { id, changed }).await
}

pub(super) async fn delete(context: Context) -> Outcome {
    let on_form = context.selected_ids.is_empty();
    let ids = if on_form { form(&context).id()?.into_iter().collect() } else { context.selected_ids.clone() };
    // The delete setting is read fresh: it decides what happens to the contacts.
    let (settings, _) = load_settings(&context.web_api()?, &[]).await?;
    let start = ContactStart {
        task: Task::Delete { ids, on_form, user: context.ui().user()?.id },
        lang: context.lang,
        settings,
        consents: Vec::new(),
        now_ms: now_ms(),
        seed: random_seed(),
    };
    drive(&context, Job::contact(start)).await
}
