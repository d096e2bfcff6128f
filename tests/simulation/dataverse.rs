//! Dataverse in memory: the contact table (ordered by id, as `$orderby=contactid` pages it),
//! the integration record, the Web API's answers and its service protection.

use std::collections::BTreeMap;

use salesmanago_dynamics::core::job::lease::Holder;

use salesmanago_dynamics::core::dataverse::error::DvFailure;
use salesmanago_dynamics::core::dataverse::schema::activity;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, Job as JobColumns};
use salesmanago_dynamics::core::job::{Read, Writes, Writing};
use salesmanago_dynamics::core::json::{self, Map, Value};
use salesmanago_dynamics::core::mapping::fields::FORMATTED;
use salesmanago_dynamics::core::mapping::normalize;
use salesmanago_dynamics::core::salesmanago::HttpResponse;
use salesmanago_dynamics::core::sync::{iso_datetime, unix_ms};

use super::rng::{http_date, Rng};
use super::salesmanago::SmRecord;
use super::Faults;

/// Marks a value the Web API returns with an unpaired surrogate escape.
const SURROGATE: &str = "@@SURROGATE@@";

/// The longest value Dataverse takes in these columns.
const LIMITS: &[(&str, usize)] = &[("firstname", 50), ("lastname", 50), ("fullname", 160), ("address1_city", 80)];

pub(crate) struct Dataverse {
    pub(crate) contacts: BTreeMap<String, Map>,
    pub(crate) record: Map,
    /// The record's row version: its ETag is `W/"<version>"`.
    pub(crate) version: u64,
    /// `$batch` writes of contacts made.
    pub(crate) batches: u64,
    /// Reads of the integration record answered.
    pub(crate) record_reads: u64,
    pub(crate) faults: Faults,
    /// Whether the user may delete contacts (a role without the privilege, when not).
    pub(crate) may_delete: bool,
    /// The last row version handed out (`versionnumber`; every write raises it).
    pub(crate) row_version: u64,
    /// Deleted contacts, with the row version of their deletion: change tracking's deleted
    /// rows, and the recycle bin's (when `bin` is on).
    pub(crate) deleted: BTreeMap<String, (u64, Map)>,
    /// The environment keeps deleted records ("Keep deleted Dataverse records").
    pub(crate) bin: bool,
    /// Reads of the recycle bin fail with a server error every time (a failure that passes,
    /// but not within a job's retries).
    pub(crate) failing_bin: bool,
    /// The contact table tracks changes.
    pub(crate) tracking: bool,
    /// Delta tokens handed out, with when; older than `keep_changes_ms` they have expired.
    tokens: BTreeMap<u64, u64>,
    pub(crate) keep_changes_ms: u64,
    /// Contacts whose every change Dynamics refuses (a plug-in's rule, a field's limit), and
    /// every activity row regarding them.
    pub(crate) refuse: std::collections::BTreeSet<String>,
    /// The contacts of which Dynamics refused a write (for either reason) since this was last
    /// cleared: what a job's summary must call failed.
    pub(crate) refused_writes: std::collections::BTreeSet<String>,
    /// Contacts whose next write of several columns Dataverse fails once, for a reason that
    /// passes (its SQL deadlock): written again column by column, it goes, and the contact is
    /// not failed.
    pub(crate) deadlocked: std::collections::BTreeSet<String>,
    /// SALESmanago activity rows by id (with `_regardingobjectid_value`).
    pub(crate) activities: BTreeMap<String, Map>,
    /// One write of a job's lease that a plug-in on the integration record refuses (`400`),
    /// once; `None` when it has been.
    pub(crate) refuse_lease: Option<LeaseWrite>,
    /// The lease tokens written so far: a token's first write takes the lease.
    tokens_seen: std::collections::BTreeSet<String>,
    /// The renewals written so far, by lease token.
    renewals: BTreeMap<String, u32>,
    /// The record's next guarded writes that find it changed by someone else (an admin saving
    /// the record, a flow) since it was read: each is refused (`412`).
    pub(crate) meddled: u32,
    /// The next read of the record answers `429` asking to wait this many seconds (Dataverse's
    /// execution-time limit, whose waits are long).
    pub(crate) throttle_record: Option<u64>,
}

/// A write of a job's lease on the integration record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseWrite {
    /// The run's first: it takes the lease.
    Acquire,
    /// The run's `n`th renewal (1 is the first), with its progress and checkpoint.
    Renew(u32),
    /// The last: the summary, the lease given up.
    Release,
}

type Answer = Result<HttpResponse, DvFailure>;

fn ok(body: String) -> Answer {
    Ok(HttpResponse { date: None, status: 200, retry_after: None, body })
}

/// `row` as a read with `$select` of `select` answers it; with `names`
/// (`odata.include-annotations`), a lookup's name beside its value.
fn selected(row: &Map, select: &[String], names: bool) -> Value {
    let mut out = Map::new();
    out.insert("@odata.etag".into(), "W/\"1\"".into());
    for column in select {
        out.insert(column.clone(), row.get(column).cloned().unwrap_or(Value::Null));
        let name = format!("{column}{FORMATTED}");
        if let Some(value) = row.get(&name).filter(|_| names && column.starts_with('_')) {
            out.insert(name, value.clone());
        }
    }
    Value::Object(out)
}

/// The id in `contacts(<id>)?…`.
fn row_id(path: &str) -> &str {
    path.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map_or("", |(id, _)| id)
}

fn not_found(id: &str) -> Answer {
    let body = format!(r#"{{"error":{{"code":"0x80040217","message":"contact With Id = {id} Does Not Exist"}}}}"#);
    Ok(HttpResponse { date: None, status: 404, retry_after: None, body })
}

impl Dataverse {
    pub(crate) fn seeded(rng: &mut Rng, n: usize, faults: Faults, now: u64) -> Dataverse {
        let mut contacts = BTreeMap::new();
        for i in 0..n {
            let id = dataverse_id(i as u64 * 7 + 3, rng.below(3));
            let mut row = Map::new();
            row.insert(contact::ID.into(), id.clone().into());
            let first = if rng.chance(5) { format!("Bad{SURROGATE}Name") } else { format!("Jan{i}") };
            let last = format!("Kowalski{}", i % 97);
            row.insert("firstname".into(), first.clone().into());
            row.insert("lastname".into(), last.clone().into());
            row.insert("fullname".into(), format!("{first} {last}").into());
            let email = match rng.below(100) {
                0..=2 => None,
                3..=4 => Some(format!("not-an-email-{i}")),
                5 => Some(format!("shared{}@example.com", i % 3)),
                // An apostrophe is valid in an address, and must survive every query.
                6 => Some(format!("o'neil{i}@example.com")),
                _ => Some(format!("user{i}@example.com")),
            };
            if let Some(email) = email {
                row.insert("emailaddress1".into(), email.into());
            }
            if rng.chance(10) {
                for line in ["address1_line1", "address1_line2", "address1_line3"] {
                    row.insert(line.into(), "x".repeat(250).into());
                }
            }
            row.insert(contact::DO_NOT_BULK_EMAIL.into(), Value::Bool(rng.chance(100)));
            row.insert("modifiedon".into(), iso_datetime(now - 2 * 86_400_000).into());
            row.insert(contact::VERSION.into(), (i as u64 + 1).into());
            contacts.insert(id, row);
        }
        let mut record = Map::new();
        let settings: [(&str, Value); 6] = [
            (integration::ID, "rec-1".into()),
            (integration::CLIENT_ID, "sim-client".into()),
            (integration::API_SECRET, "sim-secret".into()),
            (integration::OWNER, "owner@example.com".into()),
            (integration::ENDPOINT, "http://127.0.0.1:9".into()),
            (integration::CONCURRENCY, (1 + rng.below(8)).into()),
        ];
        for (column, value) in settings {
            record.insert(column.into(), value);
        }
        Dataverse {
            contacts,
            record,
            version: 1,
            batches: 0,
            record_reads: 0,
            faults,
            may_delete: true,
            row_version: n as u64,
            deleted: BTreeMap::new(),
            bin: !rng.chance(200),
            failing_bin: false,
            tracking: !rng.chance(100),
            tokens: BTreeMap::new(),
            keep_changes_ms: 7 * 86_400_000,
            refuse: Default::default(),
            refused_writes: Default::default(),
            deadlocked: Default::default(),
            activities: BTreeMap::new(),
            refuse_lease: None,
            tokens_seen: Default::default(),
            renewals: BTreeMap::new(),
            meddled: 0,
            throttle_record: None,
        }
    }

    /// Marks contact `id` changed now (a write Dataverse makes raises its version).
    pub(crate) fn touch(&mut self, id: &str, now: u64) {
        self.row_version += 1;
        if let Some(row) = self.contacts.get_mut(id) {
            row.insert("modifiedon".into(), iso_datetime(now).into());
            row.insert(contact::VERSION.into(), self.row_version.into());
        }
    }

    /// Deletes contact `id` (a user's delete), remembering it as change tracking and the
    /// recycle bin do.
    pub(crate) fn delete(&mut self, id: &str) -> Option<Map> {
        let row = self.contacts.remove(id)?;
        self.row_version += 1;
        self.deleted.insert(id.to_owned(), (self.row_version, row.clone()));
        Some(row)
    }

    /// A change-tracked read: every contact, or those changed and deleted since the token,
    /// a page at a time; the last page carries the delta link from the version the read
    /// started at.
    fn tracked(&mut self, query: &str, now: u64) -> Answer {
        if !self.tracking {
            let body =
                r#"{"error":{"code":"0x80072491","message":"Entity contact isn't enabled for change tracking."}}"#;
            return Ok(HttpResponse { date: None, status: 400, retry_after: None, body: body.into() });
        }
        let param =
            |name: &str| query.split('&').find_map(|p| p.strip_prefix(name)).and_then(|v| v.parse::<u64>().ok());
        let since = param("$deltatoken=");
        if let Some(token) = since {
            let expired = self.tokens.get(&token).is_none_or(|at| now.saturating_sub(*at) > self.keep_changes_ms);
            if expired {
                let body = r#"{"error":{"code":"0x80044352","message":"Version stamp associated with the client has expired. Please perform a full sync."}}"#;
                return Ok(HttpResponse { date: None, status: 400, retry_after: None, body: body.into() });
            }
        }
        let from = param("$trackfrom=").unwrap_or(self.row_version);
        let skip = param("$skiptoken=").unwrap_or(0) as usize;
        let select: Vec<String> = query
            .split('&')
            .find_map(|p| p.strip_prefix("$select="))
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let newer = |row: &Map| row.get(contact::VERSION).and_then(Value::as_u64).unwrap_or(0) > since.unwrap_or(0);
        let mut items: Vec<Value> = self
            .contacts
            .values()
            .filter(|row| since.is_none() || newer(row))
            .map(|row| selected(row, &select, false))
            .collect();
        if let Some(since) = since {
            for (id, (version, _)) in &self.deleted {
                if *version > since && !self.contacts.contains_key(id) {
                    let mut gone = Map::new();
                    gone.insert(
                        "@odata.context".into(),
                        "https://org.example/api/data/v9.2/$metadata#contacts/$deletedEntity".into(),
                    );
                    gone.insert("id".into(), id.clone().into());
                    gone.insert("reason".into(), "deleted".into());
                    items.push(Value::Object(gone));
                }
            }
        }
        let page: Vec<Value> = items.iter().skip(skip).take(Read::PAGE as usize).cloned().collect();
        let select = format!("$select={}", select.join(","));
        let mut body = Map::new();
        body.insert("value".into(), Value::Array(page));
        let root = "https://org.example/api/data/v9.2/contacts?";
        if skip + (Read::PAGE as usize) < items.len() {
            let token = since.map(|t| format!("&$deltatoken={t}")).unwrap_or_default();
            let link = format!("{root}{select}{token}&$trackfrom={from}&$skiptoken={}", skip + Read::PAGE as usize);
            body.insert("@odata.nextLink".into(), link.into());
        } else {
            self.tokens.insert(from, now);
            body.insert("@odata.deltaLink".into(), format!("{root}{select}&$deltatoken={from}").into());
        }
        ok(Value::Object(body).to_string().replace(SURROGATE, "\\ud800"))
    }

    /// A FetchXML read of the recycle bin: the deleted contacts named, with their e-mails.
    fn bin_read(&self, query: &str) -> Answer {
        if self.failing_bin {
            let body = r#"{"error":{"code":"0x80040216","message":"An unexpected error occurred (simulated)."}}"#;
            return Ok(HttpResponse { date: None, status: 500, retry_after: None, body: body.into() });
        }
        if !self.bin {
            let body =
                r#"{"error":{"code":"0x80040203","message":"The recycle bin is not enabled in this environment."}}"#;
            return Ok(HttpResponse { date: None, status: 400, retry_after: None, body: body.into() });
        }
        let fetch = decode(query);
        let rows: Vec<Value> = fetch
            .split("<value>")
            .skip(1)
            .filter_map(|part| part.split_once("</value>").map(|(id, _)| id))
            .filter_map(|id| self.deleted.get(id).map(|(_, row)| (id, row)))
            .map(|(id, row)| {
                let mut out = Map::new();
                out.insert(contact::ID.into(), id.into());
                out.insert(contact::EMAIL.into(), row.get(contact::EMAIL).cloned().unwrap_or(Value::Null));
                Value::Object(out)
            })
            .collect();
        let mut body = Map::new();
        body.insert("value".into(), Value::Array(rows));
        ok(Value::Object(body).to_string())
    }

    /// A fault of the Web API, if one comes up.
    fn fault(&self, rng: &mut Rng, now: u64, body_fault: bool) -> Option<Answer> {
        if rng.chance(self.faults.throttle) {
            let seconds = 1 + rng.below(5);
            let retry_after = if rng.below(2) == 0 { seconds.to_string() } else { http_date(now, seconds) };
            let body = r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}"#;
            return Some(Ok(HttpResponse {
                date: None,
                status: 429,
                retry_after: Some(retry_after),
                body: body.into(),
            }));
        }
        if rng.chance(self.faults.server_error) {
            return Some(Ok(HttpResponse { date: None, status: 503, retry_after: None, body: String::new() }));
        }
        if rng.chance(self.faults.timeout) {
            return Some(Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() }));
        }
        if body_fault && rng.chance(self.faults.malformed) {
            return Some(ok(r#"{"value":[{"contactid":"#.into()));
        }
        None
    }

    pub(crate) fn read(&mut self, read: &Read, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, true) {
            return fault;
        }
        let query = read.query.trim_start_matches('?');
        if let Some(fetch) = query.strip_prefix("fetchXml=") {
            return self.bin_read(fetch);
        }
        if read.track {
            return self.tracked(query, now);
        }
        let mut filter = None;
        let mut after = None;
        let mut base = Vec::new();
        for part in query.split('&') {
            if let Some(f) = part.strip_prefix("$filter=") {
                filter = Some(decode(f));
            }
            match part.strip_prefix("$skiptoken=") {
                Some(token) => after = Some(token.to_owned()),
                None => base.push(part),
            }
        }
        let select: Vec<String> = base
            .iter()
            .find_map(|p| p.strip_prefix("$select="))
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        // `$top` bounds the whole answer, as Dataverse has it: no next page. Microsoft says not
        // to combine it with a page size, and the engine never does.
        let top: Option<usize> =
            base.iter().find_map(|p| p.strip_prefix("$top=")).map(|n| n.parse().expect("$top is a number"));
        assert!(top.is_none() || read.page == 0, "a read with $top asks for no page size: {}", read.query);
        // No page size asked: Dataverse's own, 5,000.
        let page_size = if read.page == 0 { 5000 } else { read.page as usize };
        let mut page = Vec::new();
        let mut more = false;
        // In `$orderby=contactid`'s order: SQL Server's, not the text's.
        let mut rows: Vec<([u8; 16], &Map)> = (self.contacts.iter())
            .filter(|(_, row)| matches(filter.as_deref(), row))
            .map(|(id, row)| (sql_key(id), row))
            .collect();
        rows.sort_unstable_by_key(|(key, _)| *key);
        let from = after.as_deref().map(sql_key);
        for (_, row) in rows.into_iter().filter(|(key, _)| from.is_none_or(|from| *key > from)) {
            if top.is_some_and(|top| page.len() == top) {
                break;
            }
            if page.len() == page_size {
                more = true;
                break;
            }
            page.push(row);
        }
        let names = read.prefer().contains("include-annotations");
        let rows: Vec<Value> = page.iter().map(|row| selected(row, &select, names)).collect();
        let mut body = Map::new();
        body.insert("value".into(), Value::Array(rows));
        if more {
            let last = page.last().and_then(|r| r.get(contact::ID)).and_then(Value::as_str).unwrap_or_default();
            let link = format!("https://org.example/api/data/v9.2/contacts?{}&$skiptoken={last}", base.join("&"));
            body.insert("@odata.nextLink".into(), link.into());
        }
        ok(Value::Object(body).to_string().replace(SURROGATE, "\\ud800"))
    }

    pub(crate) fn write(&mut self, writes: &Writes, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, false) {
            return fault;
        }
        self.batches += 1;
        if writes.writing == Writing::NewActivities {
            return self.create_activities(writes, rng);
        }
        let mut body = String::new();
        for (id, columns) in &writes.rows {
            body.push_str("--batchresponse_1\r\nContent-Type: application/http\r\n\r\n");
            match self.update(id, columns, now) {
                Ok(()) => body.push_str("HTTP/1.1 204 No Content\r\n\r\n\r\n"),
                Err(message) => body.push_str(&format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{}\r\n",
                    Value::Object({
                        let mut error = Map::new();
                        error.insert("message".into(), message.into());
                        let mut outer = Map::new();
                        outer.insert("error".into(), Value::Object(error));
                        outer
                    })
                )),
            }
        }
        body.push_str("--batchresponse_1--\r\n");
        Ok(HttpResponse { date: None, status: 200, retry_after: None, body })
    }

    /// Activity rows, each created only if its id is not there (`If-None-Match: *`): `412`
    /// when it is, a refusal for a contact whose changes Dynamics refuses. Now and then the
    /// rows are made and the answer lost.
    fn create_activities(&mut self, writes: &Writes, rng: &mut Rng) -> Answer {
        let mut body = String::new();
        for (id, columns) in &writes.rows {
            body.push_str("--batchresponse_1\r\nContent-Type: application/http\r\n\r\n");
            let bind = columns.get(activity::REGARDING_CONTACT).and_then(Value::as_str).unwrap_or_default();
            let regarding = bind.strip_prefix("/contacts(").and_then(|r| r.strip_suffix(')')).unwrap_or_default();
            assert!(!id.is_empty() && !regarding.is_empty(), "an activity row has an id and a contact: {columns:?}");
            if self.refuse.contains(regarding) {
                body.push_str("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"message\":\"A plug-in refused this activity (simulated)\"}}\r\n");
            } else if self.activities.contains_key(id) {
                body.push_str("HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"0x80040237\",\"message\":\"A record with matching key values already exists.\"}}\r\n");
            } else {
                let mut row = columns.clone();
                row.remove(activity::REGARDING_CONTACT);
                row.insert(activity::REGARDING.into(), regarding.into());
                self.activities.insert(id.clone(), row);
                body.push_str("HTTP/1.1 204 No Content\r\n\r\n\r\n");
            }
        }
        body.push_str("--batchresponse_1--\r\n");
        if rng.chance(self.faults.timeout) {
            return Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() });
        }
        ok(body)
    }

    /// A page of activity rows older than a time: `new_salesmanagoactivities?$select=activityid
    /// &$filter=actualend lt <time>&$top=<n>`.
    fn old_activities(&mut self, path: &str) -> Answer {
        let decoded = decode(path);
        let before = decoded.split_once("actualend lt ").map(|(_, rest)| rest.split('&').next().unwrap_or_default());
        let before = before.expect("the only activity query lists rows older than a time").to_owned();
        let top: usize = decoded.split_once("$top=").and_then(|(_, n)| n.parse().ok()).expect("a page size");
        let old: Vec<Value> = self
            .activities
            .iter()
            .filter(|(_, row)| {
                row.get(activity::ACTUAL_END).and_then(Value::as_str).is_some_and(|at| at < before.as_str())
            })
            .take(top)
            .map(|(id, _)| {
                let mut row = Map::new();
                row.insert(activity::ID.into(), id.clone().into());
                Value::Object(row)
            })
            .collect();
        let mut page = Map::new();
        page.insert("value".into(), Value::Array(old));
        ok(Value::Object(page).to_string())
    }

    fn update(&mut self, id: &str, columns: &Map, now: u64) -> Result<(), String> {
        if columns.len() > 1 && self.deadlocked.remove(id) {
            return Err("Generic SQL error: Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.".into());
        }
        let refused = self.check_update(id, columns);
        if refused.is_err() {
            self.refused_writes.insert(id.to_owned());
        }
        refused?;
        let row = self.contacts.get_mut(id).expect("checked");
        for (column, value) in columns.iter() {
            row.insert(column.clone(), value.clone());
        }
        if columns.contains_key("firstname") || columns.contains_key("lastname") {
            let parts: Vec<&str> =
                ["firstname", "lastname"].iter().filter_map(|c| row.get(c).and_then(Value::as_str)).collect();
            row.insert("fullname".into(), parts.join(" ").into());
        }
        row.insert("modifiedon".into(), iso_datetime(now).into());
        self.row_version += 1;
        row.insert(contact::VERSION.into(), self.row_version.into());
        Ok(())
    }

    /// Whether Dynamics takes this change of contact `id`: else why not.
    fn check_update(&self, id: &str, columns: &Map) -> Result<(), String> {
        if self.refuse.contains(id) {
            return Err("A plug-in refused this change of the contact (simulated)".into());
        }
        if !self.contacts.contains_key(id) {
            return Err(format!("contact With Id = {id} Does Not Exist"));
        }
        for (column, value) in columns.iter() {
            let limit = LIMITS.iter().find(|(c, _)| c == column).map(|(_, l)| *l);
            if let (Some(limit), Some(text)) = (limit, value.as_str()) {
                if text.chars().count() > limit {
                    return Err(format!("A validation error occurred. The length of the '{column}' attribute of the 'contact' entity exceeded the maximum allowed length of '{limit}'."));
                }
            }
        }
        Ok(())
    }

    /// A `GET` of one contact (`contacts(id)?$select=…`).
    pub(crate) fn row(&mut self, path: &str, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, true) {
            return fault;
        }
        let id = row_id(path);
        match self.contacts.get(id) {
            Some(row) => ok(Value::Object(row.clone()).to_string().replace(SURROGATE, "\\ud800")),
            None => not_found(id),
        }
    }

    /// `RetrievePrincipalAccess` of a contact for the user.
    pub(crate) fn access(&mut self, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, true) {
            return fault;
        }
        let rights = if self.may_delete { "ReadAccess, WriteAccess, DeleteAccess" } else { "ReadAccess, WriteAccess" };
        ok(format!(r#"{{"AccessRights":"{rights}"}}"#))
    }

    /// A `PATCH` of one existing contact (`If-Match: *`).
    pub(crate) fn patch_row(&mut self, path: &str, body: &str, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, false) {
            return fault;
        }
        let Ok(Value::Object(columns)) = json::from_str(body) else { panic!("a PATCH body is a JSON object: {body}") };
        let id = row_id(path);
        if !self.contacts.contains_key(id) {
            return not_found(id);
        }
        match self.update(id, &columns, now) {
            Ok(()) => Ok(HttpResponse { date: None, status: 204, retry_after: None, body: String::new() }),
            Err(message) => {
                let body = format!(r#"{{"error":{{"code":"0x80044331","message":{}}}}}"#, Value::from(message));
                Ok(HttpResponse { date: None, status: 400, retry_after: None, body })
            }
        }
    }

    /// A `DELETE` of one contact; the work is done even when the answer is lost.
    pub(crate) fn remove(&mut self, path: &str, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, false) {
            return fault;
        }
        let id = row_id(path);
        if path.starts_with(activity::ENTITY_SET) {
            return match self.activities.remove(id) {
                Some(_) if rng.chance(self.faults.timeout) => {
                    Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() })
                }
                Some(_) => Ok(HttpResponse { date: None, status: 204, retry_after: None, body: String::new() }),
                None => not_found(id),
            };
        }
        if !self.may_delete {
            let body =
                r#"{"error":{"code":"0x80040220","message":"Principal user is missing prvDeleteContact privilege"}}"#;
            return Ok(HttpResponse { date: None, status: 403, retry_after: None, body: body.into() });
        }
        if self.delete(id).is_none() {
            return not_found(id);
        }
        if rng.chance(self.faults.timeout) {
            return Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() });
        }
        Ok(HttpResponse { date: None, status: 204, retry_after: None, body: String::new() })
    }

    fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The record as the host reads it with the settings: its ETag and `columns`.
    pub(crate) fn snapshot(&self, columns: &[&str]) -> Map {
        let mut row = Map::new();
        row.insert("@odata.etag".into(), self.etag().into());
        for column in columns {
            if let Some(value) = self.record.get(column) {
                row.insert((*column).to_owned(), value.clone());
            }
        }
        row
    }

    /// A `GET` of the record (`…(id)?$select=a,b`): its ETag and the columns asked for.
    pub(crate) fn get(&mut self, path: &str, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, false) {
            return fault;
        }
        if path.starts_with(activity::ENTITY_SET) {
            return self.old_activities(path);
        }
        if let Some(seconds) = self.throttle_record.take() {
            let body = r#"{"error":{"code":"0x80072321","message":"Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time window of 300 seconds."}}"#;
            return Ok(HttpResponse {
                date: None,
                status: 429,
                retry_after: Some(seconds.to_string()),
                body: body.into(),
            });
        }
        let select = path.split_once("?$select=").map_or("", |(_, s)| s);
        self.record_reads += 1;
        let mut row = Map::new();
        row.insert("@odata.etag".into(), self.etag().into());
        for column in select.split(',').filter(|c| !c.is_empty()) {
            row.insert(column.into(), self.record.get(column).cloned().unwrap_or(Value::Null));
        }
        ok(Value::Object(row).to_string())
    }

    /// A `PATCH` of the record with `If-Match`: `412` when it changed since that ETag. Now and
    /// then the write is made but its answer lost.
    pub(crate) fn patch(&mut self, if_match: &str, body: &str, rng: &mut Rng, now: u64) -> Answer {
        if let Some(fault) = self.fault(rng, now, false) {
            return fault;
        }
        if self.meddled > 0 {
            // Someone else's write came between the job's read and this one.
            self.meddled -= 1;
            self.version += 1;
        }
        if if_match != self.etag() {
            let body = r#"{"error":{"code":"0x80060882","message":"The version of the existing record doesn't match the RowVersion property provided."}}"#;
            return Ok(HttpResponse { date: None, status: 412, retry_after: None, body: body.into() });
        }
        let Ok(Value::Object(columns)) = json::from_str(body) else { panic!("a PATCH body is a JSON object: {body}") };
        if self.refuses_lease(&columns) {
            let body = r#"{"error":{"code":"0x80040265","message":"A plug-in on the integration record refused this change (simulated)"}}"#;
            return Ok(HttpResponse { date: None, status: 400, retry_after: None, body: body.into() });
        }
        self.record(&columns);
        self.version += 1;
        if rng.chance(self.faults.timeout) {
            return Err(DvFailure { message: "Failed to fetch".into(), ..DvFailure::default() });
        }
        // `Prefer: return=representation`: the row with its new ETag (now and then without).
        if rng.chance(100) {
            return Ok(HttpResponse { date: None, status: 204, retry_after: None, body: String::new() });
        }
        let mut row = Map::new();
        row.insert("@odata.etag".into(), self.etag().into());
        ok(Value::Object(row).to_string())
    }

    /// Whether this write of the record is the lease write to refuse (once).
    fn refuses_lease(&mut self, columns: &Map) -> bool {
        let lease = columns.iter().find(|(column, _)| column.ends_with("lease"));
        let Some(holder) = lease.and_then(|(_, value)| value.as_str()).and_then(Holder::from_text) else {
            return false;
        };
        let write = match (self.tokens_seen.insert(holder.token.clone()), holder.released) {
            (_, true) => LeaseWrite::Release,
            (true, false) => LeaseWrite::Acquire,
            (false, false) => {
                let renewals = self.renewals.entry(holder.token.clone()).or_default();
                *renewals += 1;
                LeaseWrite::Renew(*renewals)
            }
        };
        if self.refuse_lease != Some(write) {
            return false;
        }
        self.refuse_lease = None;
        // A refused first write has not taken the lease: the run's next write takes it.
        if write == LeaseWrite::Acquire {
            self.tokens_seen.remove(&holder.token);
        }
        true
    }

    fn record(&mut self, columns: &Map) {
        if let Some(checkpoint) = columns.get(JobColumns::Export.checkpoint_column()).and_then(Value::as_str) {
            // A checkpoint counts exactly the contacts up to the one it names: a resumed
            // export starts after it, so any other count would be counted twice or never.
            let checkpoint = json::from_str(checkpoint).expect("a checkpoint is JSON");
            let after = checkpoint["after"].as_str().expect("a checkpoint names its last contact");
            let upto = self.contacts.keys().filter(|id| sql_key(id) <= sql_key(after)).count() as u64;
            assert_eq!(checkpoint["total"].as_u64(), Some(upto), "the checkpoint after {after} counts {upto} contacts");
        }
        for (column, value) in columns.iter() {
            self.record.insert(column.clone(), value.clone());
        }
    }

    /// Whether `row` has an e-mail SALESmanago takes: the export can send it.
    pub(crate) fn valid_email(&self, row: &Map) -> bool {
        row.get("emailaddress1").and_then(Value::as_str).is_some_and(|e| normalize::email(e).is_ok())
    }

    /// The contact a SALESmanago contact is: by SALESmanago id, else by e-mail.
    pub(crate) fn matching(&self, sm: &SmRecord) -> Option<(&String, &Map)> {
        let text = |row: &Map, column: &str| row.get(column).and_then(Value::as_str).map(str::to_owned);
        self.contacts
            .iter()
            .find(|(_, row)| text(row, contact::SALESMANAGO_ID).as_deref() == Some(sm.id.as_str()))
            .or_else(|| {
                self.contacts.iter().find(|(_, row)| {
                    text(row, "emailaddress1").is_some_and(|e| e.trim().eq_ignore_ascii_case(&sm.email))
                })
            })
    }

    /// Whether `row` holds SALESmanago's name of `sm`.
    pub(crate) fn holds_name(&self, row: &Map, sm: &SmRecord) -> bool {
        let name = normalize::text(&sm.name, 255).0;
        // The Web API sends an unpaired surrogate, which reads as U+FFFD.
        let held = row.get("fullname").and_then(Value::as_str).map(|n| n.replace(SURROGATE, "\u{fffd}"));
        held.map(|n| normalize::text(&n, 255).0) == Some(name)
    }
}

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 filter")
}

/// A contact id as Dataverse makes one: sequential in SQL Server's order (the counter's
/// bytes from the third group's last, most significant, to the first group's first), by one
/// of three servers (the last two groups: Azure's `000d3a` and the server's own). Real ids
/// look so (`0c03dc7d-6add-ea11-a813-000d3a21015b`); their text's order is not SQL Server's.
pub(crate) fn dataverse_id(counter: u64, server: u64) -> String {
    let b = (0x11ee_0000_0000_0000 | counter).to_be_bytes();
    let (clock, node) = [(0xa813, 0x21015b), (0x86d4, 0x4e707e), (0x81ac, 0x85c5f6)][server as usize % 3];
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{clock:04x}-000d3a{node:06x}",
        b[7], b[6], b[5], b[4], b[3], b[2], b[1], b[0]
    )
}

/// Where `id` sorts among `uniqueidentifier`s in SQL Server: its stored bytes (the first three
/// groups little-endian) taken in the order `SqlGuid` compares them, 10–15, 8, 9, 6, 7, 4, 5,
/// 0–3 (.NET's `System.Data.SqlTypes.SqlGuid.Compare`).
pub(crate) fn sql_key(id: &str) -> [u8; 16] {
    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let mut t = [0u8; 16];
    let mut digits = id.bytes().filter(|c| *c != b'-');
    for byte in &mut t {
        *byte = digit(digits.next().unwrap_or(b'0')) << 4 | digit(digits.next().unwrap_or(b'0'));
    }
    [10, 11, 12, 13, 14, 15, 8, 9, 7, 6, 5, 4, 3, 2, 1, 0].map(|i| t[i])
}

/// Whether `row` passes the filter the jobs use: terms joined by `and`, each one the
/// simulation knows.
fn matches(filter: Option<&str>, row: &Map) -> bool {
    let Some(filter) = filter else { return true };
    filter
        .split(" and ")
        .all(|term| matches_term(term.strip_prefix('(').and_then(|t| t.strip_suffix(')')).unwrap_or(term), row))
}

fn matches_term(filter: &str, row: &Map) -> bool {
    let text = |column: &str| row.get(column).and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(after) = filter.strip_prefix("contactid gt ") {
        return sql_key(&text(contact::ID)) > sql_key(after);
    }
    if let Some(upto) = filter.strip_prefix("contactid le ") {
        return sql_key(&text(contact::ID)) <= sql_key(upto);
    }
    if let Some(since) = filter.strip_prefix("modifiedon ge ") {
        return unix_ms(&text("modifiedon")) >= unix_ms(since);
    }
    if let Some(column) = filter.strip_suffix(" ne null") {
        return row.get(column).is_some_and(|v| !v.is_null());
    }
    let inner = filter
        .strip_prefix("Microsoft.Dynamics.CRM.In(PropertyName=")
        .and_then(|f| f.strip_suffix("])"))
        .unwrap_or_else(|| panic!("a filter the simulation does not know: {filter}"));
    let (column, values) = inner.split_once(",PropertyValues=[").expect("In has values");
    let column = column.trim_matches('\'');
    let values = in_values(values);
    let value = text(column);
    !value.is_empty() && values.iter().any(|v| value.eq_ignore_ascii_case(v))
}

/// The values of an `In` filter's `PropertyValues=[…]`, read as Dataverse reads them: a JSON
/// array (its reader also takes strings in single quotes), where an OData literal's doubled
/// quote (`'o''neil@…'`) is "Invalid JSON" ("Filter rows using OData", "Manage single quotes").
fn in_values(list: &str) -> Vec<String> {
    fn invalid<T>(list: &str) -> T {
        panic!("Invalid JSON: Dynamics refuses PropertyValues=[{list}]")
    }
    let mut values = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let (value, after) = if rest.starts_with('"') {
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let value = stream.next().and_then(Result::ok).unwrap_or_else(|| invalid(list));
            (value, &rest[stream.byte_offset()..])
        } else if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').unwrap_or_else(|| invalid(list));
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            invalid(list)
        };
        values.push(value);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None if rest.is_empty() => {}
            None => invalid(list),
        }
    }
    values
}
