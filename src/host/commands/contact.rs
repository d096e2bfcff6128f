//! The contact form's commands: fetch, the quiet check on open, send, sync on save; and
//! delete, from the form or the grid.

use std::cell::RefCell;

use crate::core::json::{Map, Value};

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::contacts;
use crate::core::dataverse::schema::{contact, SyncStatus};
use crate::core::i18n::Message;
use crate::core::integration::Settings;
use crate::core::mapping::normalize::email;
use crate::core::mapping::{from_salesmanago, to_salesmanago, OutboundOptions};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{Channel, Delete, HasContact, Lookup, LookupKind, SetSubscription, Upsert};
use crate::core::salesmanago::SmError;
use crate::core::sync::{is_synchronised, write_back};

use super::super::browser::now_ms;
use super::super::dynamics::{consent_columns, refresh_grid, FormContext, WebApi};
use super::super::salesmanago::Connection;
use super::{connection, load_settings, Context, Done, Failure, Outcome};

/// How long a page keeps the integration settings and the consent columns between contact
/// commands, so that a click costs one Dataverse and one SALESmanago round trip.
const CACHE_MS: u64 = 60_000;

thread_local! {
    static CACHE: RefCell<Option<(u64, Settings, Vec<String>)>> = const { RefCell::new(None) };
}

/// The integration settings and the contact table's consent columns, cached for [`CACHE_MS`].
async fn settings_and_consents(context: &Context, web_api: &WebApi) -> Result<(Settings, Vec<String>), Failure> {
    let now = now_ms();
    if let Some((_, settings, consents)) =
        CACHE.with(|c| c.borrow().clone()).filter(|(at, ..)| now.saturating_sub(*at) < CACHE_MS)
    {
        return Ok((settings, consents));
    }
    let ui = context.ui();
    let (settings, consents) = futures_util::future::join(load_settings(web_api, &[]), consent_columns(&ui)).await;
    let (settings, consents) = (settings?.0, consents?);
    CACHE.with(|c| *c.borrow_mut() = Some((now, settings.clone(), consents.clone())));
    Ok((settings, consents))
}

/// The saved contact `id`, with every column a synchronisation reads.
async fn saved_row(web_api: &WebApi, consents: &[String], id: &str) -> Result<Map, Failure> {
    Ok(web_api.retrieve(contact::TABLE, id, &contacts(consents, None)).await?)
}

/// The contact in SALESmanago: by its SALESmanago id, else by e-mail.
pub(super) async fn lookup(connection: &Connection, row: &ContactRow) -> Result<Option<SmContact>, SmError> {
    if let Some(id) = row.get(contact::SALESMANAGO_ID) {
        for call in Lookup::batches(LookupKind::BasicById, &[id.to_owned()]) {
            if let Some(found) = connection.call(&call).await?.into_iter().next() {
                return Ok(Some(found));
            }
        }
    }
    let Some(address) = row.get(contact::EMAIL).and_then(|e| email(e).ok()) else { return Ok(None) };
    for call in Lookup::batches(LookupKind::BasicByEmail, &[address]) {
        if let Some(found) = connection.call(&call).await?.into_iter().next() {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn form_id(form: &FormContext) -> Result<String, Failure> {
    form.id()?.ok_or_else(|| Failure::new(Message::SaveFirst, "saveFirst"))
}

/// The saved contact `id` and what SALESmanago holds of it, if anything.
async fn both_sides(context: &Context, id: &str) -> Result<(ContactRow, Option<SmContact>), Failure> {
    let web_api = context.web_api()?;
    let (settings, consents) = settings_and_consents(context, &web_api).await?;
    let row = ContactRow::from_json(&saved_row(&web_api, &consents, id).await?);
    let found = lookup(&connection(&settings), &row).await?;
    Ok((row, found))
}

pub(super) async fn fetch(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    let id = form_id(&form)?;
    let (row, found) = both_sides(&context, &id).await?;
    let Some(sm) = found else {
        let email = row.get(contact::EMAIL).unwrap_or_default().trim().to_owned();
        return Ok(Message::NotInSalesmanago { email }.into());
    };
    let patch = from_salesmanago(&row, &sm);
    let mut filled = 0;
    for (column, value) in &patch.columns {
        if form.fill(column, value)? {
            filled += 1;
        }
    }
    Ok(if filled == 0 { Message::AlreadyMatches } else { Message::Fetched { fields: filled } }.into())
}

const DIFFERS: &str = "salesmanago.differs";
const SYNC: &str = "salesmanago.sync";

/// On open: one quiet lookup; a notification when SALESmanago differs. Never a dialog.
pub(super) async fn opened(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    let Some(id) = form.id()? else { return Ok(Message::AlreadyMatches.into()) };
    let (row, found) = both_sides(&context, &id).await?;
    let fields = match found {
        Some(sm) => from_salesmanago(&row, &sm).columns.len(),
        None => 0,
    };
    if fields > 0 {
        form.notify(DIFFERS, "WARNING", Some(&context.say(&Message::Differs { fields })));
        Ok(Message::Differs { fields }.into())
    } else {
        form.notify(DIFFERS, "", None);
        Ok(Message::AlreadyMatches.into())
    }
}

/// Upserts the saved contact `id` and records the outcome on it; the warnings on success.
async fn upsert(
    context: &Context,
    web_api: &WebApi,
    id: &str,
    options: OutboundOptions,
) -> Result<Vec<String>, Failure> {
    let (settings, consents) = settings_and_consents(context, web_api).await?;
    let row = saved_row(web_api, &consents, id).await?;
    let outcome = to_salesmanago(&ContactRow::from_json(&row), &OutboundOptions { now_ms: now_ms(), ..options });
    let outbound = match outcome {
        Ok(outbound) => outbound,
        Err(skip) => {
            let reason = context.say(&Message::Skipped(skip.clone()));
            if let Some(columns) = write_back(&row, SyncStatus::Skipped, None, Some(&reason), now_ms()) {
                web_api.update(contact::TABLE, id, &columns).await?;
            }
            return Err(Failure::new(Message::Skipped(skip), "skipped"));
        }
    };
    match connection(&settings).call(&Upsert(outbound.details)).await {
        Ok(sm_id) => {
            if let Some(columns) = write_back(&row, SyncStatus::Synced, Some(&sm_id), None, now_ms()) {
                web_api.update(contact::TABLE, id, &columns).await?;
            }
            Ok(outbound.warnings.into_iter().map(|w| context.say(&Message::Warning(w))).collect())
        }
        Err(error) => {
            let reason = context.say(&Message::Salesmanago(error.clone()));
            if let Some(columns) = write_back(&row, SyncStatus::Failed, None, Some(&reason), now_ms()) {
                web_api.update(contact::TABLE, id, &columns).await?;
            }
            Err(error.into())
        }
    }
}

pub(super) async fn send(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    let id = form_id(&form)?;
    if form.is_dirty() {
        return Err(Failure::new(Message::SaveFirst, "saveFirst"));
    }
    let web_api = context.web_api()?;
    let warnings = upsert(&context, &web_api, &id, OutboundOptions::default()).await?;
    form.notify(SYNC, "", None);
    let _ = form.refresh().await;
    Ok(Done { message: Message::Sent, details: warnings, download: None, close_form: false })
}

/// After a save: send the contact when a synchronised column changed. A failure never undoes
/// the save; it shows on the form and in the status columns.
pub(super) async fn saved(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    if !context.changed.iter().any(|c| is_synchronised(c)) {
        return Ok(Message::AlreadyMatches.into());
    }
    let id = form_id(&form)?;
    // Changing an opt-out to "allow" in this save is a deliberate opt-in: pass it on.
    let allowed = |column: &str| {
        context.changed.iter().any(|c| c == column) && form.value(column).ok() == Some(Value::Bool(false))
    };
    let options = OutboundOptions {
        opt_in_newsletter: allowed(contact::DO_NOT_BULK_EMAIL),
        opt_in_sms: allowed(contact::DO_NOT_SMS),
        ..Default::default()
    };
    let web_api = context.web_api()?;
    match upsert(&context, &web_api, &id, options).await {
        Ok(_) => {
            form.notify(SYNC, "INFO", Some(&context.say(&Message::Sent)));
            form.notify(DIFFERS, "", None);
            if !form.is_dirty() {
                let _ = form.refresh().await;
            }
            Ok(Message::Sent.into())
        }
        Err(failure) => {
            let reason = context.say(&failure.message);
            form.notify(SYNC, "ERROR", Some(&context.say(&Message::SyncFailed { reason }.brief())));
            if !form.is_dirty() {
                let _ = form.refresh().await;
            }
            Err(failure)
        }
    }
}

/// Deletes the contacts in SALESmanago (or opts them out there, by the integration record's
/// setting), then in Dynamics. A contact whose SALESmanago step fails stays in Dynamics, so
/// the user can try again.
pub(super) async fn delete(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    let on_form = context.selected_ids.is_empty();
    let ids = if on_form { vec![form_id(&form)?] } else { context.selected_ids.clone() };
    let web_api = context.web_api()?;
    let (settings, _) = load_settings(&web_api, &[]).await?;
    let opt_out_only = settings.opt_out_on_delete;
    let ui = context.ui();
    if !ui.confirm(&context.say(&Message::DeleteConfirm { count: ids.len(), opt_out_only })).await? {
        return Ok(Message::Deleted { deleted: 0, failures: Vec::new(), opt_out_only }.into());
    }
    let connection = connection(&settings);
    let mut deleted = 0;
    let mut failures = Vec::new();
    for id in &ids {
        let outcome = async {
            let row =
                web_api.retrieve(contact::TABLE, id, &format!("?$select={},{}", contact::ID, contact::EMAIL)).await?;
            let row = ContactRow::from_json(&row);
            if let Some(address) = row.get(contact::EMAIL).and_then(|e| email(e).ok()) {
                if connection.call(&HasContact { email: address.clone() }).await?.is_some() {
                    if opt_out_only {
                        for channel in [Channel::Newsletter, Channel::Sms] {
                            connection
                                .call(&SetSubscription { email: address.clone(), channel, subscribed: false })
                                .await?;
                        }
                    } else {
                        connection.call(&Delete { email: address, permanently: false }).await?;
                    }
                }
            }
            web_api.delete(contact::TABLE, id).await?;
            Ok::<_, Failure>(())
        }
        .await;
        match outcome {
            Ok(()) => deleted += 1,
            Err(failure) => failures.push(format!("{id}: {}", context.say(&failure.message))),
        }
    }
    if !on_form {
        refresh_grid(&context.selected_control);
    }
    let close_form = on_form && failures.is_empty();
    let message = Message::Deleted { deleted, failures, opt_out_only };
    if deleted == 0 {
        return Err(Failure::new(message, "deleteFailed"));
    }
    Ok(Done { message, details: Vec::new(), download: None, close_form })
}
