//! The jobs over many contacts: export (selected or all, resumable), pull consents, pull
//! changes. Each pages through Dataverse, calls SALESmanago in batches, writes back only what
//! changes, shows progress, and ends with a summary whose counts add up.

use serde_json::{json, Map, Value};

use crate::core::command::Command;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{contacts, one_of};
use crate::core::dataverse::schema::{contact, integration, Job, SyncStatus};
use crate::core::i18n::{csv_titles, Counts, Message};
use crate::core::mapping::normalize::email;
use crate::core::mapping::{from_salesmanago, to_salesmanago, OutboundOptions, Skip};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{BatchUpsert, Lookup, LookupKind, ModifiedContacts};
use crate::core::sync::{consents_only, iso_datetime, write_back, NotDone, Tally};

use super::super::browser::now_ms;
use super::super::dynamics::{consent_columns, WebApi};
use super::super::salesmanago::Connection;
use super::{connection, load_settings, Context, Done, Failure, Outcome};

/// Contacts read from Dataverse per page.
const PAGE: u32 = 400;
/// Values per `In` filter.
const IN_CHUNK: usize = 100;
/// How far back the first "Pull changes" looks.
const FIRST_PULL_MS: u64 = 30 * 24 * 3600 * 1000;

fn job_of(command: Command) -> Option<Job> {
    match command {
        Command::ExportAll => Some(Job::Export),
        Command::PullConsents => Some(Job::Consents),
        Command::PullChanges => Some(Job::Changes),
        _ => None,
    }
}

fn not_done(row: &ContactRow, skipped: bool, reason: String) -> NotDone {
    NotDone {
        id: row.id().unwrap_or_default(),
        email: row.get("emailaddress1").unwrap_or_default().to_owned(),
        name: row.get("fullname").unwrap_or_default().to_owned(),
        skipped,
        reason,
    }
}

async fn record(
    web_api: &WebApi,
    row: &Map<String, Value>,
    status: SyncStatus,
    sm_id: Option<&str>,
    error: Option<&str>,
) -> Result<(), Failure> {
    if let Some(columns) = write_back(row, status, sm_id, error, now_ms()) {
        let id = ContactRow::from_json(row).id().unwrap_or_default();
        web_api.update(contact::TABLE, &id, &columns).await?;
    }
    Ok(())
}

/// Sends one page of contacts in batches and records each outcome.
async fn export_page(
    context: &Context,
    web_api: &WebApi,
    connection: &Connection,
    rows: &[Map<String, Value>],
    tally: &mut Tally,
) -> Result<(), Failure> {
    let mut sendable = Vec::new();
    for row in rows {
        tally.total += 1;
        let parsed = ContactRow::from_json(row);
        match to_salesmanago(&parsed, &OutboundOptions { now_ms: now_ms(), ..Default::default() }) {
            Ok(outbound) => sendable.push((row, outbound.details)),
            Err(skip) => {
                let reason = context.say(&Message::Skipped(skip));
                record(web_api, row, SyncStatus::Skipped, None, Some(&reason)).await?;
                tally.not_done.push(not_done(&parsed, true, reason));
            }
        }
    }
    let details: Vec<_> = sendable.iter().map(|(_, d)| d.clone()).collect();
    let mut at = 0;
    for batch in BatchUpsert::batches(&details) {
        let part = &sendable[at..at + batch.details().len()];
        at += batch.details().len();
        match connection.call(&batch).await {
            Ok(outcome) => {
                for (row, details) in part {
                    let key = details.contact.email.to_ascii_lowercase();
                    if let Some(id) = outcome.ids.get(&key) {
                        record(web_api, row, SyncStatus::Synced, Some(id), None).await?;
                        tally.done += 1;
                    } else {
                        let reason = outcome.failed.get(&key).cloned().flatten();
                        let reason = context.say(&Message::NotAccepted { email: key, reason });
                        record(web_api, row, SyncStatus::Failed, None, Some(&reason)).await?;
                        tally.not_done.push(not_done(&ContactRow::from_json(row), false, reason));
                    }
                }
            }
            Err(error) if error.stops_job() => return Err(error.into()),
            Err(error) => {
                let reason = context.say(&Message::Salesmanago(error));
                for (row, _) in part {
                    record(web_api, row, SyncStatus::Failed, None, Some(&reason)).await?;
                    tally.not_done.push(not_done(&ContactRow::from_json(row), false, reason.clone()));
                }
            }
        }
    }
    Ok(())
}

/// The checkpoint of an interrupted "Export all": the last contact done, and the counts.
/// Contacts skipped and failed before the interruption are carried as counts only.
fn read_checkpoint(record: &Map<String, Value>) -> Option<(String, Tally, (u64, u64))> {
    let text = record.get(Job::Export.checkpoint_column())?.as_str()?;
    let value: Value = serde_json::from_str(text).ok()?;
    let after = value["after"].as_str()?.to_owned();
    let count = |key: &str| value[key].as_u64().unwrap_or(0);
    let (skipped, failed) = (count("skipped"), count("failed"));
    let tally =
        Tally { total: count("total").saturating_sub(skipped + failed), done: count("done"), ..Tally::default() };
    Some((after, tally, (skipped, failed)))
}

pub(super) async fn export(context: Context, command: Command) -> Outcome {
    let web_api = context.web_api()?;
    let (settings, record) = load_settings(&web_api, &[Job::Export.checkpoint_column()]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let connection = connection(&settings);
    let ui = context.ui();
    let mut tally = Tally::default();
    let mut carried = (0, 0);
    let filters: Vec<Option<String>> = if command == Command::ExportSelected && !context.selected_ids.is_empty() {
        context.selected_ids.chunks(IN_CHUNK).map(|ids| Some(one_of(contact::ID, ids))).collect()
    } else if let Some((after, resumed, before)) =
        (command == Command::ExportAll).then(|| read_checkpoint(&record)).flatten()
    {
        ui.progress(&context.say(&Message::Resuming { done: resumed.done }));
        carried = before;
        tally = resumed;
        vec![Some(format!("contactid gt {after}"))]
    } else {
        vec![None]
    };
    let total = (command == Command::ExportSelected && !context.selected_ids.is_empty())
        .then_some(context.selected_ids.len() as u64);
    let result = async {
        for filter in &filters {
            let mut options = Some(contacts(&consents, filter.as_deref()));
            while let Some(query) = options.take() {
                let (rows, next) = web_api.retrieve_multiple(contact::TABLE, &query, Some(PAGE)).await?;
                export_page(&context, &web_api, &connection, &rows, &mut tally).await?;
                if command == Command::ExportAll {
                    if let Some(last) = rows.last().and_then(|r| ContactRow::from_json(r).id()) {
                        let checkpoint = json!({
                            "after": last, "total": tally.total + carried.0 + carried.1, "done": tally.done,
                            "skipped": tally.skipped() + carried.0, "failed": tally.failed() + carried.1
                        })
                        .to_string();
                        let mut columns = Map::new();
                        columns.insert(Job::Export.checkpoint_column().into(), checkpoint.into());
                        web_api.update(integration::TABLE, &settings.id, &columns).await?;
                    }
                }
                ui.progress(&context.say(&Message::Progress { command, done: tally.total, total }));
                options = next;
            }
        }
        Ok::<_, Failure>(())
    }
    .await;
    ui.close_progress();
    result?;
    finish(&context, &web_api, &settings.id, command, tally, carried).await
}

/// Records a job's end on the integration record and builds its summary.
/// `carried` is the skipped and failed counts of an interrupted run, listed in its own CSV.
async fn finish(
    context: &Context,
    web_api: &WebApi,
    record_id: &str,
    command: Command,
    tally: Tally,
    carried: (u64, u64),
) -> Outcome {
    let counts = Counts {
        total: tally.total + carried.0 + carried.1,
        done: tally.done,
        same: tally.same,
        missing: tally.missing,
        skipped: tally.skipped() + carried.0,
        failed: tally.failed() + carried.1,
    };
    let message = Message::Summary { command, counts };
    if let Some(job) = job_of(command) {
        let mut columns = Map::new();
        columns.insert(job.last_run_column().into(), iso_datetime(now_ms()).into());
        columns.insert(job.last_result_column().into(), context.say(&message).into());
        columns.insert(job.checkpoint_column().into(), Value::Null);
        web_api.update(integration::TABLE, record_id, &columns).await?;
    }
    let download = (!tally.not_done.is_empty()).then(|| {
        let (header, outcomes) = csv_titles(context.lang);
        (tally.not_done.len() as u64, tally.csv(header, outcomes))
    });
    Ok(Done { message, details: Vec::new(), download, close_form: false })
}

/// SALESmanago's contacts for `emails`, by lower-case e-mail.
async fn by_email(
    connection: &Connection,
    emails: &[String],
) -> Result<Vec<SmContact>, crate::core::salesmanago::SmError> {
    let mut found = Vec::new();
    for call in Lookup::batches(LookupKind::BasicByEmail, emails) {
        found.extend(connection.call(&call).await?);
    }
    Ok(found)
}

pub(super) async fn pull_consents(context: Context) -> Outcome {
    let command = Command::PullConsents;
    let web_api = context.web_api()?;
    let (settings, _) = load_settings(&web_api, &[]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let connection = connection(&settings);
    let ui = context.ui();
    let mut tally = Tally::default();
    let result = async {
        let mut options = Some(contacts(&consents, Some("emailaddress1 ne null")));
        while let Some(query) = options.take() {
            let (rows, next) = web_api.retrieve_multiple(contact::TABLE, &query, Some(PAGE)).await?;
            let mut valid = Vec::new();
            for row in &rows {
                let parsed = ContactRow::from_json(row);
                tally.total += 1;
                let raw = parsed.get("emailaddress1").unwrap_or_default().to_owned();
                match email(&raw) {
                    Ok(address) => valid.push((parsed, address)),
                    Err(problem) => {
                        let reason = context.say(&Message::Skipped(Skip::InvalidEmail { email: raw, problem }));
                        tally.not_done.push(not_done(&parsed, true, reason));
                    }
                }
            }
            let mut emails: Vec<String> = valid.iter().map(|(_, e)| e.clone()).collect();
            emails.sort_unstable();
            emails.dedup();
            match by_email(&connection, &emails).await {
                Ok(found) => {
                    for (row, address) in &valid {
                        let sm =
                            found.iter().find(|c| c.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(address)));
                        let Some(sm) = sm else {
                            tally.missing += 1;
                            continue;
                        };
                        let patch = consents_only(from_salesmanago(row, sm));
                        if patch.is_empty() {
                            tally.same += 1;
                        } else {
                            let mut columns = Map::new();
                            columns.extend(patch.columns);
                            web_api.update(contact::TABLE, &row.id().unwrap_or_default(), &columns).await?;
                            tally.done += 1;
                        }
                    }
                }
                Err(error) if error.stops_job() => return Err(error.into()),
                Err(error) => {
                    let reason = context.say(&Message::Salesmanago(error));
                    tally.not_done.extend(valid.iter().map(|(row, _)| not_done(row, false, reason.clone())));
                }
            }
            ui.progress(&context.say(&Message::Progress { command, done: tally.total, total: None }));
            options = next;
        }
        Ok::<_, Failure>(())
    }
    .await;
    ui.close_progress();
    result?;
    finish(&context, &web_api, &settings.id, command, tally, (0, 0)).await
}

/// Dynamics rows whose `column` is one of `values`.
async fn rows_where(
    web_api: &WebApi,
    consents: &[String],
    column: &str,
    values: &[String],
) -> Result<Vec<Map<String, Value>>, Failure> {
    let mut rows = Vec::new();
    for chunk in values.chunks(IN_CHUNK) {
        let mut options = Some(contacts(consents, Some(&one_of(column, chunk))));
        while let Some(query) = options.take() {
            let (page, next) = web_api.retrieve_multiple(contact::TABLE, &query, Some(PAGE)).await?;
            rows.extend(page);
            options = next;
        }
    }
    Ok(rows)
}

pub(super) async fn pull_changes(context: Context) -> Outcome {
    let command = Command::PullChanges;
    let web_api = context.web_api()?;
    let (settings, record) = load_settings(&web_api, &[integration::CHANGES_WATERMARK]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let connection = connection(&settings);
    let ui = context.ui();
    let now = now_ms();
    let watermark =
        record.get(integration::CHANGES_WATERMARK).and_then(Value::as_str).and_then(|w| w.trim().parse::<u64>().ok());
    let from = watermark.map_or(now.saturating_sub(FIRST_PULL_MS), |w| w + 1);
    let mut tally = Tally::default();
    let result = async {
        let mut ids = Vec::new();
        for (start, end) in ModifiedContacts::windows(from, now) {
            for page in 1.. {
                let found = connection.call(&ModifiedContacts { from: start, to: end, page: Some(page) }).await?;
                ids.extend(found.contacts.into_iter().map(|c| c.id));
                if !found.has_more {
                    break;
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut changed = Vec::new();
            for call in Lookup::batches(LookupKind::ListById, chunk) {
                changed.extend(connection.call(&call).await?);
            }
            let sm_ids: Vec<String> = changed.iter().filter_map(|c| c.id.clone()).collect();
            let mut rows = rows_where(&web_api, &consents, contact::SALESMANAGO_ID, &sm_ids).await?;
            let unmatched: Vec<String> = changed
                .iter()
                .filter(|c| {
                    !rows.iter().any(|r| r.get(contact::SALESMANAGO_ID).and_then(Value::as_str) == c.id.as_deref())
                })
                .filter_map(|c| c.email.clone())
                .collect();
            rows.extend(rows_where(&web_api, &consents, "emailaddress1", &unmatched).await?);
            for sm in &changed {
                tally.total += 1;
                let row = rows
                    .iter()
                    .find(|r| {
                        sm.id.is_some() && r.get(contact::SALESMANAGO_ID).and_then(Value::as_str) == sm.id.as_deref()
                    })
                    .or_else(|| {
                        let address = sm.email.as_deref()?;
                        rows.iter().find(|r| {
                            r.get("emailaddress1")
                                .and_then(Value::as_str)
                                .is_some_and(|e| e.trim().eq_ignore_ascii_case(address))
                        })
                    });
                let Some(row) = row else {
                    tally.missing += 1;
                    continue;
                };
                let parsed = ContactRow::from_json(row);
                let patch = from_salesmanago(&parsed, sm);
                if patch.is_empty() {
                    tally.same += 1;
                } else {
                    let mut columns = Map::new();
                    columns.extend(patch.columns);
                    web_api.update(contact::TABLE, &parsed.id().unwrap_or_default(), &columns).await?;
                    tally.done += 1;
                }
            }
            ui.progress(&context.say(&Message::Progress { command, done: tally.total, total: Some(ids.len() as u64) }));
        }
        Ok::<_, Failure>(())
    }
    .await;
    ui.close_progress();
    result?;
    let mut columns = Map::new();
    columns.insert(integration::CHANGES_WATERMARK.into(), now.to_string().into());
    web_api.update(integration::TABLE, &settings.id, &columns).await?;
    finish(&context, &web_api, &settings.id, command, tally, (0, 0)).await
}
