//! The jobs over many contacts: export (selected or all, resumable), pull consents, pull
//! changes. Each pages through Dataverse while earlier pages are still with SALESmanago
//! (bounded by the integration record's concurrency), writes back in `$batch` requests and only
//! what changes, shows progress, and ends with a summary whose counts add up.

use std::pin::pin;
use std::rc::Rc;

use futures_util::stream::{self, Stream, StreamExt};

use crate::core::command::Command;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{contacts, one_of};
use crate::core::dataverse::schema::{contact, integration, Job, SyncStatus};
use crate::core::i18n::{csv_titles, Counts, Message, Service};
use crate::core::integration::Settings;
use crate::core::json::{self, Map, Value};
use crate::core::mapping::normalize::email;
use crate::core::mapping::{from_salesmanago, to_salesmanago, ContactPatch, OutboundOptions, Skip};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{BatchUpsert, Lookup, LookupKind, ModifiedContacts};
use crate::core::sorted::SortedMap;
use crate::core::sync::{consents_only, iso_datetime, write_back, NotDone, Tally};
use crate::object;

use super::super::browser::now_ms;
use super::super::dynamics::{consent_columns, read_page, update_many, Ui, WebApi};
use super::super::salesmanago::Connection;
use super::progress::Progress;
use super::{connection, load_settings, Context, Done, Failure, Outcome};

/// Contacts read from Dataverse per page: one SALESmanago batch.
const PAGE: u32 = BatchUpsert::MAX as u32;
/// Values per `In` filter.
const IN_CHUNK: usize = 100;
/// How far back the first "Pull changes" looks.
const FIRST_PULL_MS: u64 = 30 * 24 * 3600 * 1000;
/// Pages between two checkpoints of "Export all".
const CHECKPOINT_EVERY: usize = 10;

type Row = Map;

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

/// The pages of contacts `queries` select, read one after the other.
fn pages<'a>(ui: &'a Ui, queries: Vec<String>) -> impl Stream<Item = Result<Vec<Row>, Failure>> + 'a {
    stream::iter(queries).flat_map(move |query| {
        stream::unfold(Some(query), move |next| async move {
            let query = next?;
            match read_page(ui, contact::ENTITY_SET, &query, PAGE).await {
                Ok((rows, next)) => Some((Ok(rows), next)),
                Err(error) => Some((Err(error.into()), None)),
            }
        })
    })
}

/// Writes `writes` in one `$batch`; a row whose write failed moves from done to failed.
async fn write(context: &Context, ui: &Ui, writes: Vec<(String, Row, bool)>, tally: &mut Tally) -> Result<(), Failure> {
    if writes.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, Row)> = writes.iter().map(|(id, columns, _)| (id.clone(), columns.clone())).collect();
    let outcomes = update_many(ui, "contacts", &rows).await?;
    for ((id, _, counted_done), outcome) in writes.iter().zip(outcomes) {
        if let Err(reason) = outcome {
            if *counted_done {
                tally.done -= 1;
            }
            let detail = context.say(&Message::Dataverse { detail: reason });
            tally.not_done(NotDone {
                id: id.clone(),
                email: String::new(),
                name: String::new(),
                skipped: false,
                reason: detail,
            });
        }
    }
    Ok(())
}

fn status(
    (row, parsed): (&Row, &ContactRow),
    status: SyncStatus,
    sm_id: Option<&str>,
    error: Option<&str>,
    done: bool,
    writes: &mut Vec<(String, Row, bool)>,
) {
    if let Some(columns) = write_back(row, status, sm_id, error, now_ms()) {
        writes.push((parsed.id().unwrap_or_default(), columns, done));
    }
}

/// Counts `row` as already the same when `patch` is empty, else queues the patch as a write.
fn update_if_changed(row: &ContactRow, patch: ContactPatch, tally: &mut Tally, writes: &mut Vec<(String, Row, bool)>) {
    if patch.is_empty() {
        tally.same += 1;
    } else {
        let mut columns = Map::new();
        columns.extend(patch.columns);
        writes.push((row.id().unwrap_or_default(), columns, true));
        tally.done += 1;
    }
}

/// A job's view of Dynamics and its connection to SALESmanago, both telling `progress` of each
/// wait their service asks for.
fn channels(context: &Context, settings: &Settings, progress: &Rc<Progress>) -> (Ui, Connection) {
    let ui = context.ui().telling(progress.on_wait(Service::Dataverse));
    let connection = Connection { on_wait: Some(progress.on_wait(Service::Salesmanago)), ..connection(settings) };
    (ui, connection)
}

/// Sends one page of contacts in one batch and records each outcome.
async fn export_page(context: &Context, ui: &Ui, connection: &Connection, rows: Vec<Row>) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let mut writes = Vec::new();
    let mut sendable = Vec::new();
    // Each row is read once; its columns stay at hand for the write-back.
    let parsed: Vec<ContactRow> = rows.iter().map(ContactRow::from_json).collect();
    let now = now_ms();
    for (row, parsed) in rows.iter().zip(&parsed) {
        tally.total += 1;
        match to_salesmanago(parsed, &OutboundOptions { now_ms: now, ..Default::default() }) {
            Ok(outbound) => sendable.push(((row, parsed), outbound.details)),
            Err(skip) => {
                let reason = context.say(&Message::Skipped(skip));
                status((row, parsed), SyncStatus::Skipped, None, Some(&reason), false, &mut writes);
                tally.not_done(not_done(parsed, true, reason));
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
                        status(*row, SyncStatus::Synced, Some(id), None, true, &mut writes);
                        tally.done += 1;
                    } else {
                        let reason = outcome.failed.get(&key).cloned().flatten();
                        let reason = context.say(&Message::NotAccepted { email: key, reason });
                        status(*row, SyncStatus::Failed, None, Some(&reason), false, &mut writes);
                        tally.not_done(not_done(row.1, false, reason));
                    }
                }
            }
            Err(error) if error.stops_job() => return Err(error.into()),
            Err(error) => {
                let reason = context.say(&Message::Salesmanago(error));
                for (row, _) in part {
                    status(*row, SyncStatus::Failed, None, Some(&reason), false, &mut writes);
                    tally.not_done(not_done(row.1, false, reason.clone()));
                }
            }
        }
    }
    write(context, ui, writes, &mut tally).await?;
    Ok(tally)
}

/// The checkpoint of an interrupted "Export all": the last contact done, the counts so far,
/// and the skipped and failed counts (carried as counts only).
fn read_checkpoint(record: &Row) -> Option<(String, Tally)> {
    let text = record.get(Job::Export.checkpoint_column())?.as_str()?;
    let value = json::from_str(text).ok()?;
    let after = value["after"].as_str()?.to_owned();
    let count = |key: &str| value[key].as_u64().unwrap_or(0);
    let tally = Tally {
        total: count("total"),
        done: count("done"),
        skipped_count: count("skipped"),
        failed_count: count("failed"),
        ..Tally::default()
    };
    Some((after, tally))
}

async fn save_checkpoint(web_api: &WebApi, record_id: &str, after: &str, tally: &Tally) -> Result<(), Failure> {
    let checkpoint = object! {"after": after, "total": tally.total, "done": tally.done, "skipped": tally.skipped(), "failed": tally.failed()};
    let mut columns = Map::new();
    columns.insert(Job::Export.checkpoint_column().into(), checkpoint.to_string().into());
    Ok(web_api.update(integration::TABLE, record_id, &columns).await?)
}

pub(super) async fn export(context: Context, command: Command) -> Outcome {
    let web_api = context.web_api()?;
    let (settings, record) = load_settings(&web_api, &[Job::Export.checkpoint_column()]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let selected = command == Command::ExportSelected && !context.selected_ids.is_empty();
    let total = selected.then_some(context.selected_ids.len() as u64);
    let progress = Progress::new(&context, command, total);
    let (ui, connection) = channels(&context, &settings, &progress);
    let mut tally = Tally::default();
    let queries: Vec<String> = if selected {
        context.selected_ids.chunks(IN_CHUNK).map(|ids| contacts(&consents, Some(&one_of(contact::ID, ids)))).collect()
    } else if let Some((after, resumed)) = (command == Command::ExportAll).then(|| read_checkpoint(&record)).flatten() {
        ui.progress(&context.say(&Message::Resuming { done: resumed.done }));
        tally = resumed;
        vec![contacts(&consents, Some(&format!("contactid gt {after}")))]
    } else {
        vec![contacts(&consents, None)]
    };
    let result = async {
        let work = pages(&ui, queries)
            .enumerate()
            .map(|(index, page)| {
                let (context, ui, connection) = (&context, &ui, &connection);
                async move {
                    let rows = page?;
                    let last = rows.last().and_then(|r| ContactRow::from_json(r).id());
                    Ok::<_, Failure>((index, last, export_page(context, ui, connection, rows).await?))
                }
            })
            .buffer_unordered(settings.concurrency as usize);
        let mut work = pin!(work);
        // Pages finish out of order; the checkpoint is the last contact of the pages all done.
        let (mut finished, mut next, mut since) = (SortedMap::new(), 0, 0);
        while let Some(page) = work.next().await {
            let (index, last, part) = page?;
            tally.merge(part);
            finished.insert(index, last);
            let mut checkpoint = None;
            while let Some(last) = finished.remove(&next) {
                checkpoint = last.or(checkpoint);
                next += 1;
                since += 1;
            }
            if let (Some(after), true) = (checkpoint, command == Command::ExportAll && since >= CHECKPOINT_EVERY) {
                save_checkpoint(&web_api, &settings.id, &after, &tally).await?;
                since = 0;
            }
            progress.done(tally.total);
        }
        Ok::<_, Failure>(())
    }
    .await;
    progress.close();
    result?;
    finish(&context, &web_api, &settings.id, command, tally).await
}

/// Drives a job's parts to the end: adds up their tallies and shows progress, which is
/// closed however the job ends.
async fn gather(progress: &Progress, work: impl Stream<Item = Result<Tally, Failure>>) -> Result<Tally, Failure> {
    let mut work = pin!(work);
    let mut tally = Tally::default();
    let result = async {
        while let Some(part) = work.next().await {
            tally.merge(part?);
            progress.done(tally.total);
        }
        Ok::<_, Failure>(())
    }
    .await;
    progress.close();
    result.map(|()| tally)
}

/// Records a job's end on the integration record and builds its summary.
async fn finish(context: &Context, web_api: &WebApi, record_id: &str, command: Command, tally: Tally) -> Outcome {
    let counts = Counts {
        total: tally.total,
        done: tally.done,
        same: tally.same,
        missing: tally.missing,
        skipped: tally.skipped(),
        failed: tally.failed(),
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
        let more = context.say(&Message::Unlisted { count: tally.unlisted() });
        (tally.skipped() + tally.failed(), tally.csv(header, outcomes, &more))
    });
    Ok(Done { message, details: Vec::new(), download, close_form: false })
}

/// SALESmanago's contacts for `emails`.
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

/// Compares one page of contacts with SALESmanago and writes the differing consents.
async fn consents_page(context: &Context, ui: &Ui, connection: &Connection, rows: Vec<Row>) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let mut valid = Vec::new();
    for row in &rows {
        let parsed = ContactRow::from_json(row);
        tally.total += 1;
        let raw = parsed.get("emailaddress1").unwrap_or_default().to_owned();
        match email(&raw) {
            Ok(address) => valid.push((parsed, address)),
            Err(problem) => {
                let reason = context.say(&Message::Skipped(Skip::InvalidEmail { email: raw, problem }));
                tally.not_done(not_done(&parsed, true, reason));
            }
        }
    }
    let mut emails: Vec<String> = valid.iter().map(|(_, e)| e.clone()).collect();
    emails.sort_unstable();
    emails.dedup();
    let found = match by_email(connection, &emails).await {
        Ok(found) => found,
        Err(error) if error.stops_job() => return Err(error.into()),
        Err(error) => {
            let reason = context.say(&Message::Salesmanago(error));
            for (row, _) in &valid {
                tally.not_done(not_done(row, false, reason.clone()));
            }
            return Ok(tally);
        }
    };
    let by_address: SortedMap<String, &SmContact> =
        found.iter().filter_map(|c| Some((c.email.as_deref()?.to_ascii_lowercase(), c))).collect();
    let mut writes = Vec::new();
    for (row, address) in &valid {
        let Some(sm) = by_address.get(address) else {
            tally.missing += 1;
            continue;
        };
        update_if_changed(row, consents_only(from_salesmanago(row, sm)), &mut tally, &mut writes);
    }
    write(context, ui, writes, &mut tally).await?;
    Ok(tally)
}

pub(super) async fn pull_consents(context: Context) -> Outcome {
    let command = Command::PullConsents;
    let web_api = context.web_api()?;
    let (settings, _) = load_settings(&web_api, &[]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let progress = Progress::new(&context, command, None);
    let (ui, connection) = channels(&context, &settings, &progress);
    let work = pages(&ui, vec![contacts(&consents, Some("emailaddress1 ne null"))])
        .map(|page| {
            let (context, ui, connection) = (&context, &ui, &connection);
            async move { consents_page(context, ui, connection, page?).await }
        })
        .buffer_unordered(settings.concurrency as usize);
    let tally = gather(&progress, work).await?;
    finish(&context, &web_api, &settings.id, command, tally).await
}

/// Dynamics rows whose `column` is one of `values`.
async fn rows_where(ui: &Ui, consents: &[String], column: &str, values: &[String]) -> Result<Vec<Row>, Failure> {
    let queries = values.chunks(IN_CHUNK).map(|chunk| contacts(consents, Some(&one_of(column, chunk)))).collect();
    let mut rows = Vec::new();
    let mut all = pin!(pages(ui, queries));
    while let Some(page) = all.next().await {
        rows.extend(page?);
    }
    Ok(rows)
}

/// Matches SALESmanago's changed contacts to Dynamics rows (by SALESmanago id, then e-mail)
/// and writes the differing columns.
async fn changes_chunk(
    context: &Context,
    ui: &Ui,
    consents: &[String],
    changed: Vec<SmContact>,
) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    let sm_ids: Vec<String> = changed.iter().filter_map(|c| c.id.clone()).collect();
    let mut rows = rows_where(ui, consents, contact::SALESMANAGO_ID, &sm_ids).await?;
    let sm_id_of = |r: &Row| r.get(contact::SALESMANAGO_ID).and_then(Value::as_str).map(str::to_owned);
    let unmatched: Vec<String> = changed
        .iter()
        .filter(|c| !rows.iter().any(|r| sm_id_of(r).is_some() && sm_id_of(r) == c.id))
        .filter_map(|c| c.email.clone())
        .collect();
    rows.extend(rows_where(ui, consents, "emailaddress1", &unmatched).await?);
    let mut writes = Vec::new();
    for sm in &changed {
        tally.total += 1;
        let row = rows.iter().find(|r| sm.id.is_some() && sm_id_of(r) == sm.id).or_else(|| {
            let address = sm.email.as_deref()?;
            rows.iter().find(|r| {
                r.get("emailaddress1").and_then(Value::as_str).is_some_and(|e| e.trim().eq_ignore_ascii_case(address))
            })
        });
        let Some(row) = row else {
            tally.missing += 1;
            continue;
        };
        let parsed = ContactRow::from_json(row);
        let patch = from_salesmanago(&parsed, sm);
        update_if_changed(&parsed, patch, &mut tally, &mut writes);
    }
    write(context, ui, writes, &mut tally).await?;
    Ok(tally)
}

pub(super) async fn pull_changes(context: Context) -> Outcome {
    let command = Command::PullChanges;
    let web_api = context.web_api()?;
    let (settings, record) = load_settings(&web_api, &[integration::CHANGES_WATERMARK]).await?;
    let consents = consent_columns(&context.ui()).await?;
    let progress = Progress::new(&context, command, None);
    let (ui, connection) = channels(&context, &settings, &progress);
    let now = now_ms();
    let watermark =
        record.get(integration::CHANGES_WATERMARK).and_then(Value::as_str).and_then(|w| w.trim().parse::<u64>().ok());
    let from = watermark.map_or(now.saturating_sub(FIRST_PULL_MS), |w| w + 1);
    // The changed ids arrive a page (up to 1,000) at a time and are handled in hundreds as
    // they come, so memory does not grow with the number of changes.
    let modified = stream::iter(ModifiedContacts::windows(from, now)).flat_map(|(start, end)| {
        let connection = &connection;
        stream::unfold(Some(1), move |page| async move {
            let page = page?;
            match connection.call(&ModifiedContacts { from: start, to: end, page: Some(page) }).await {
                Ok(found) => {
                    let next = found.has_more.then_some(page + 1);
                    let mut ids: Vec<String> = found.contacts.into_iter().map(|c| c.id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Some((Ok(ids), next))
                }
                Err(error) => Some((Err(Failure::from(error)), None)),
            }
        })
    });
    let chunks = modified.flat_map(|ids: Result<Vec<String>, Failure>| {
        let chunks: Vec<Result<Vec<String>, Failure>> = match ids {
            Ok(ids) => ids.chunks(IN_CHUNK).map(|c| Ok(c.to_vec())).collect(),
            Err(error) => vec![Err(error)],
        };
        stream::iter(chunks)
    });
    let work = chunks
        .map(|chunk| {
            let (context, ui, connection, consents) = (&context, &ui, &connection, &consents);
            async move {
                let chunk = chunk?;
                let mut changed = Vec::new();
                for call in Lookup::batches(LookupKind::ListById, &chunk) {
                    changed.extend(connection.call(&call).await?);
                }
                changes_chunk(context, ui, consents, changed).await
            }
        })
        .buffer_unordered(settings.concurrency as usize);
    let tally = gather(&progress, work).await?;
    let mut columns = Map::new();
    columns.insert(integration::CHANGES_WATERMARK.into(), now.to_string().into());
    web_api.update(integration::TABLE, &settings.id, &columns).await?;
    finish(&context, &web_api, &settings.id, command, tally).await
}
