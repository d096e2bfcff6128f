//! A Dataverse org as the relay's application user sees it, small but faithful to the Web API
//! calls the relay makes:
//! - Entra ID's token endpoint (client credentials for the org's `.default` scope);
//! - a contacts table whose rows carry `versionnumber` (raised on every write, one counter for
//!   the org, as Dataverse's row version is) and `modifiedon`; `$select` checked against the
//!   table's columns; `$filter` with `Microsoft.Dynamics.CRM.In(…)` (text compared without case,
//!   as Dataverse does), comparisons such as `modifiedon ge <time>`, and `and`;
//!   `$orderby=contactid asc`, `$top`, and paging with `Prefer: odata.maxpagesize` and
//!   `@odata.nextLink`;
//! - change tracking (`Prefer: odata.track-changes`: every row, then an `@odata.deltaLink`
//!   whose `$deltatoken` gives the rows changed since and `$deletedEntity` rows for those
//!   deleted; an expired token and an untracked table refused with Dataverse's codes), and the
//!   recycle bin of deleted contacts (`?fetchXml=<fetch datasource="bin">…`);
//! - the one SALESmanago Integration record with its ETag (`W/"<n>"`), `If-Match` (`412` when
//!   it differs) and `Prefer: return=representation`;
//! - the contact table's attribute metadata;
//! - `$batch` (multipart/mixed, independent requests; after a failure the rest are not made
//!   unless `Prefer: odata.continue-on-error`), answered as Dataverse answers it.
//!
//! The query string is read as ASP.NET reads it: split at `&`, each part percent-decoded with
//! `+` as a space; a `#` ends the URL before it is sent. Every answer carries `Date` on the
//! org's own clock, which may be set apart from this machine's ([`Org::with_clock_offset`]);
//! `modifiedon` is written on it too. Requests a real org would refuse are answered as it
//! would, and those it would not know are noted ([`Org::problems`]).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use salesmanago_dynamics::core::dataverse::schema::{self, contact, integration};
use salesmanago_dynamics::core::sync::{iso_datetime, unix_ms};
use serde_json::{json, Map, Value};

/// The Web API's root path.
pub(crate) const ROOT: &str = "/api/data/v9.2/";
/// The integration record's id.
pub(crate) const RECORD_ID: &str = "7d3f5a10-0000-4000-8000-00000000a001";
/// The access token Entra ID hands out.
const TOKEN: &str = "t-1";

/// The contact table's columns, as its attribute metadata lists them. `new_consent_notes` is
/// named like a consent column but is text: no consent.
const CONTACT_ATTRIBUTES: &[(&str, &str)] = &[
    ("contactid", "Uniqueidentifier"),
    ("fullname", "String"),
    ("firstname", "String"),
    ("lastname", "String"),
    ("emailaddress1", "String"),
    ("mobilephone", "String"),
    ("telephone1", "String"),
    ("fax", "String"),
    ("address1_line1", "String"),
    ("address1_line2", "String"),
    ("address1_line3", "String"),
    ("address1_city", "String"),
    ("address1_postalcode", "String"),
    ("address1_country", "String"),
    ("birthdate", "DateTime"),
    ("donotbulkemail", "Boolean"),
    ("new_donotsms", "Boolean"),
    ("modifiedon", "DateTime"),
    ("versionnumber", "BigInt"),
    ("new_salesmanagoid", "String"),
    ("new_salesmanagoemail", "String"),
    ("new_salesmanagosyncedon", "DateTime"),
    ("new_salesmanagosyncstatus", "Picklist"),
    ("new_salesmanagolasterror", "Memo"),
    ("new_salesmanagoconsentbase", "Memo"),
    ("new_salesmanagomapping", "String"),
    ("new_consent_marketing", "Boolean"),
    ("new_consent_notes", "String"),
];

/// Columns Dataverse sets itself: a write of them is refused.
const SYSTEM_COLUMNS: &[&str] = &["contactid", "modifiedon", "versionnumber", "fullname"];

/// One request as the org received it (one of a `$batch`'s requests, too).
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub(crate) method: String,
    /// Under the Web API root, decoded: `contacts`, `new_salesmanagointegrations(…)`, `$batch`.
    pub(crate) path: String,
    /// The query options, decoded.
    pub(crate) query: Vec<(String, String)>,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) status: u16,
    /// The answer's body.
    pub(crate) answer: String,
    /// Made inside a `$batch`.
    pub(crate) in_batch: bool,
}

impl Logged {
    /// A query option's value.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `METHOD path`, for messages.
    pub(crate) fn line(&self) -> String {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {}?{} -> {}", self.method, self.path, query.join("&"), self.status)
    }
}

struct Inner {
    /// The org's clock, ahead of this machine's by this much.
    offset_ms: i64,
    /// The last row version handed out.
    version: u64,
    /// Contacts by lower-case id.
    contacts: BTreeMap<String, Map<String, Value>>,
    record: Map<String, Value>,
    /// The record's row version: its ETag.
    record_version: u64,
    /// The most rows a page holds, whatever `odata.maxpagesize` asks (to page with few rows).
    page_cap: usize,
    /// Every Web API request answers 503.
    down: bool,
    /// The next so many requests for the integration record answer service protection's 429.
    throttled: u32,
    /// The next so many reads of the record by id are followed by another writer's change.
    interfere: u32,
    /// The contact table tracks changes.
    tracking: bool,
    /// The environment keeps deleted records (the recycle bin).
    keep_deleted: bool,
    /// Contacts deleted: id, the version of the deletion, the row as it was.
    deleted: Vec<(String, u64, Map<String, Value>)>,
    log: Vec<Logged>,
    tokens: usize,
    /// What a faithful org would not have been asked.
    problems: Vec<String>,
}

/// The org; clones share it.
#[derive(Clone)]
pub(crate) struct Org(Arc<Mutex<Inner>>);

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        let headers = vec![("Content-Type".into(), "application/json; odata.metadata=minimal".into())];
        Answer { status, headers, body: body.to_string() }
    }

    fn empty(status: u16) -> Answer {
        Answer { status, headers: Vec::new(), body: String::new() }
    }

    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer::json(status, json!({"error": {"code": code, "message": message}}))
    }
}

impl Default for Org {
    fn default() -> Org {
        Org::new()
    }
}

impl Org {
    /// An org whose record has webhooks on and deletes (not opt-outs) on delete.
    pub(crate) fn new() -> Org {
        let mut record = Map::new();
        record.insert(integration::ID.into(), RECORD_ID.into());
        record.insert(integration::NAME.into(), "SALESmanago".into());
        record.insert(integration::WEBHOOKS.into(), true.into());
        record.insert(integration::OPT_OUT_ON_DELETE.into(), false.into());
        Org(Arc::new(Mutex::new(Inner {
            offset_ms: 0,
            version: 1000,
            contacts: BTreeMap::new(),
            record,
            record_version: 1000,
            page_cap: 5000,
            down: false,
            throttled: 0,
            interfere: 0,
            tracking: true,
            keep_deleted: true,
            deleted: Vec::new(),
            log: Vec::new(),
            tokens: 0,
            problems: Vec::new(),
        })))
    }

    /// The org's clock runs `offset_ms` ahead of this machine's (behind, when negative).
    pub(crate) fn with_clock_offset(self, offset_ms: i64) -> Org {
        self.lock().offset_ms = offset_ms;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Now on the org's clock, Unix ms.
    pub(crate) fn now_ms(&self) -> u64 {
        self.lock().now_ms()
    }

    /// Serves the org on a free port of 127.0.0.1; its address.
    pub(crate) async fn serve(&self) -> SocketAddr {
        let router =
            Router::new().route("/tenant/oauth2/v2.0/token", post(token)).fallback(web_api).with_state(self.clone());
        crate::support::serve(router).await
    }

    /// Creates or changes contact `id` as a user would: `columns` set, the version raised,
    /// `modifiedon` now. The row's new version.
    pub(crate) fn put_contact(&self, id: &str, columns: Value) -> u64 {
        let mut org = self.lock();
        let mut changes: Map<String, Value> = columns.as_object().cloned().unwrap_or_default();
        let key = id.to_ascii_lowercase();
        changes.insert(contact::ID.into(), key.clone().into());
        org.write(&key, changes, true)
    }

    /// Sets contact `id`'s `modifiedon` to `ms` on the org's clock (a change made back then).
    pub(crate) fn backdate(&self, id: &str, ms: u64) {
        let mut org = self.lock();
        let row = org.contacts.get_mut(&id.to_ascii_lowercase()).expect("a contact to backdate");
        row.insert(contact::MODIFIED_ON.into(), iso_datetime(ms).into());
    }

    /// Deletes contact `id`, as a user would (change tracking and the recycle bin keep it).
    pub(crate) fn delete_contact(&self, id: &str) {
        self.lock().delete(&id.to_ascii_lowercase());
    }

    /// Whether the contact table tracks changes.
    pub(crate) fn set_tracking(&self, on: bool) {
        self.lock().tracking = on;
    }

    /// Whether the environment keeps deleted records.
    pub(crate) fn set_keep_deleted(&self, on: bool) {
        self.lock().keep_deleted = on;
    }

    /// Contact `id` as the org holds it.
    pub(crate) fn contact(&self, id: &str) -> Option<Map<String, Value>> {
        self.lock().contacts.get(&id.to_ascii_lowercase()).cloned()
    }

    /// Changes the record as an admin would (its ETag changes).
    pub(crate) fn set_record(&self, column: &str, value: Value) {
        let mut org = self.lock();
        org.record.insert(column.into(), value);
        org.version += 1;
        org.record_version = org.version;
    }

    /// The record as the org holds it.
    pub(crate) fn record(&self) -> Map<String, Value> {
        self.lock().record.clone()
    }

    /// Pages hold at most `rows` rows.
    pub(crate) fn set_page_cap(&self, rows: usize) {
        self.lock().page_cap = rows;
    }

    /// Every Web API request answers 503 while `down`.
    pub(crate) fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The next `times` requests for the integration record are refused by service protection
    /// (`429`, `Retry-After: 1`, its number-of-requests code).
    pub(crate) fn throttle_record(&self, times: u32) {
        self.lock().throttled = times;
    }

    /// After the next read of the record by id, another writer changes it (its ETag moves).
    pub(crate) fn interfere_once(&self) {
        self.lock().interfere += 1;
    }

    /// The Web API requests so far, in order.
    pub(crate) fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// The Web API requests so far, one line each.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().log.iter().map(Logged::line).collect()
    }

    /// Tokens handed out.
    pub(crate) fn tokens(&self) -> usize {
        self.lock().tokens
    }

    /// Requests a faithful org would not have been asked, and how.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }
}

fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

impl Inner {
    fn delete(&mut self, key: &str) -> bool {
        let Some(row) = self.contacts.remove(key) else { return false };
        self.version += 1;
        self.deleted.push((key.to_owned(), self.version, row));
        true
    }

    fn now_ms(&self) -> u64 {
        let local = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        (local + self.offset_ms) as u64
    }

    /// Writes `changes` on contact `key` (creating it when `create`): the version raised,
    /// `modifiedon` now. The new version.
    fn write(&mut self, key: &str, changes: Map<String, Value>, create: bool) -> u64 {
        self.version += 1;
        let (version, now) = (self.version, self.now_ms());
        let row = match (self.contacts.get_mut(key), create) {
            (Some(row), _) => row,
            (None, true) => self.contacts.entry(key.to_owned()).or_default(),
            (None, false) => unreachable!("written rows exist"),
        };
        let names = changes.keys().any(|c| c == contact::FIRST_NAME || c == contact::LAST_NAME);
        for (column, value) in changes {
            row.insert(column, value);
        }
        // Dataverse composes the full name.
        if names {
            let parts: Vec<&str> = [contact::FIRST_NAME, contact::LAST_NAME]
                .iter()
                .filter_map(|c| row.get(*c).and_then(Value::as_str))
                .collect();
            row.insert(contact::FULL_NAME.into(), parts.join(" ").into());
        }
        row.insert(contact::VERSION.into(), version.into());
        row.insert(contact::MODIFIED_ON.into(), iso_datetime(now).into());
        version
    }
}

/// `POST /tenant/oauth2/v2.0/token`: a client-credentials grant for the org's `.default` scope.
async fn token(State(org): State<Org>, body: Bytes) -> Response {
    let form = String::from_utf8_lossy(&body).into_owned();
    let fields = query_pairs(&form);
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut org = org.lock();
    let scope_ok = field("scope").is_some_and(|s| s.starts_with("http://127.0.0.1:") && s.ends_with("/.default"));
    if field("grant_type") != Some("client_credentials")
        || field("client_id") != Some("app-1")
        || field("client_secret") != Some("app-secret")
        || !scope_ok
    {
        org.problems.push(format!("a token request Entra ID refuses: {form}"));
        let body = json!({"error": "invalid_client"}).to_string();
        return (StatusCode::UNAUTHORIZED, [("content-type", "application/json")], body).into_response();
    }
    org.tokens += 1;
    let body = json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}).to_string();
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

/// Everything under the Web API root.
async fn web_api(State(org): State<Org>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut org = org.lock();
    let answer = match uri.path().strip_prefix(ROOT) {
        _ if org.down => Answer::empty(503),
        None => {
            org.problems.push(format!("a request outside the Web API: {method} {uri}"));
            Answer::empty(404)
        }
        Some(_) if header(&headers, "authorization") != Some(&format!("Bearer {TOKEN}")) => {
            org.problems.push(format!("a request without the token: {method} {uri}"));
            Answer::error(401, "0x80040220", "The user is not authenticated")
        }
        Some(path) if org.throttled > 0 && path.starts_with(integration::ENTITY_SET) => {
            org.throttled -= 1;
            let mut answer = Answer::error(429, "0x80072322", "Number of requests exceeded the limit");
            answer.headers.push(("retry-after".into(), "1".into()));
            answer
        }
        Some(path) => {
            let path = decode(path, false);
            let query = uri.query().unwrap_or_default();
            org.request(&host, method.as_str(), &path, query, &headers, &body, false)
        }
    };
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    let now = org.now_ms();
    let response_headers = response.headers_mut();
    response_headers.insert("odata-version", "4.0".parse().unwrap());
    // The org's clock (hyper adds its own only when there is none).
    response_headers.insert("date", http_date(now).parse().unwrap());
    for (name, value) in answer.headers {
        response_headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    response
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a String> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The entity set and key of a path such as `contacts(…)`.
fn entity(path: &str) -> (&str, Option<&str>) {
    match path.split_once('(') {
        Some((set, rest)) => (set, Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (path, None),
    }
}

impl Inner {
    /// Answers one request and logs it.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        host: &str,
        method: &str,
        path: &str,
        raw_query: &str,
        headers: &[(String, String)],
        body: &str,
        in_batch: bool,
    ) -> Answer {
        let query = query_pairs(raw_query);
        let answer = self.answer(host, method, path, raw_query, &query, headers, body, in_batch);
        self.log.push(Logged {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            headers: headers.to_vec(),
            body: body.to_owned(),
            status: answer.status,
            answer: answer.body.clone(),
            in_batch,
        });
        answer
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        host: &str,
        method: &str,
        path: &str,
        raw_query: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        body: &str,
        in_batch: bool,
    ) -> Answer {
        for (name, _) in query {
            let known = ["$select", "$filter", "$orderby", "$top", "$skiptoken", "$deltatoken"];
            if name.starts_with('$') && !known.contains(&name.as_str()) {
                return Answer::error(400, "0x80060888", &format!("The query parameter {name} is not supported"));
            }
        }
        let option = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let prefer = header(headers, "prefer").cloned().unwrap_or_default();
        match (method, entity(path)) {
            ("POST", ("$batch", None)) if !in_batch => self.batch(host, headers, body),
            ("GET", ("EntityDefinitions", Some("LogicalName='contact')/Attributes"))) => {
                if option("$select") != Some("LogicalName,AttributeType") {
                    self.problems.push(format!("metadata asked for {query:?}"));
                }
                let value: Vec<Value> = CONTACT_ATTRIBUTES
                    .iter()
                    .map(|(name, kind)| json!({"LogicalName": name, "AttributeType": kind, "MetadataId": format!("md-{name}")}))
                    .collect();
                Answer::json(
                    200,
                    json!({"@odata.context": "…/$metadata#EntityDefinitions('contact')/Attributes", "value": value}),
                )
            }
            ("GET", (contact::ENTITY_SET, None)) => self.contacts(host, raw_query, option, &prefer),
            ("GET", (contact::ENTITY_SET, Some(id))) => {
                let select = match select(option("$select"), &contact_columns()) {
                    Ok(select) => select,
                    Err(answer) => return answer,
                };
                match self.contacts.get(&id.to_ascii_lowercase()) {
                    Some(row) => Answer::json(200, Value::Object(project(row, &select, contact::ID))),
                    None => not_found(id),
                }
            }
            ("PATCH", (contact::ENTITY_SET, Some(id))) => self.patch_contact(id, headers, body, option, &prefer),
            ("DELETE", (contact::ENTITY_SET, Some(id))) => match self.delete(&id.to_ascii_lowercase()) {
                true => Answer::empty(204),
                false => not_found(id),
            },
            ("GET", (integration::ENTITY_SET, key)) => {
                let select = match select(option("$select"), &record_columns()) {
                    Ok(select) => select,
                    Err(answer) => return answer,
                };
                let mut row = project(&self.record, &select, integration::ID);
                row.insert("@odata.etag".into(), etag(self.record_version).into());
                match key {
                    None => {
                        let top = option("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(usize::MAX);
                        let rows: Vec<Value> = [Value::Object(row)].into_iter().take(top).collect();
                        Answer::json(200, json!({"value": rows}))
                    }
                    Some(id) if id.eq_ignore_ascii_case(RECORD_ID) => {
                        if self.interfere > 0 {
                            // Another writer, between this read and the write that follows it.
                            self.interfere -= 1;
                            self.version += 1;
                            self.record_version = self.version;
                            self.record.insert(integration::NAME.into(), "SALESmanago (renamed)".into());
                        }
                        Answer::json(200, Value::Object(row))
                    }
                    Some(id) => not_found(id),
                }
            }
            ("PATCH", (integration::ENTITY_SET, Some(id))) if id.eq_ignore_ascii_case(RECORD_ID) => {
                self.patch_record(headers, body, option, &prefer)
            }
            _ => {
                self.problems.push(format!("a request the org stand-in does not know: {method} {path}?{raw_query}"));
                Answer::error(404, "0x80060888", &format!("Resource not found for the segment '{path}'."))
            }
        }
    }

    /// `GET contacts?…`: a page of the rows the query asks for.
    fn contacts<'q>(
        &self,
        host: &str,
        raw_query: &str,
        option: impl Fn(&str) -> Option<&'q str>,
        prefer: &str,
    ) -> Answer {
        let tracked = prefer.contains("odata.track-changes")
            || option("$deltatoken").is_some()
            || option("$skiptoken").is_some_and(|t| t.contains("istracking=\"True\""));
        if let Some(fetch) = option("fetchXml") {
            return self.fetch(fetch, tracked);
        }
        if tracked {
            return self.tracked(host, raw_query, option, prefer);
        }
        let columns = contact_columns();
        let select = match select(option("$select"), &columns) {
            Ok(select) => select,
            Err(answer) => return answer,
        };
        let filter = match option("$filter").map(parse_filter).transpose() {
            Ok(filter) => filter,
            Err(problem) => return Answer::error(400, "0x80060888", &format!("Syntax error in $filter: {problem}")),
        };
        if let Some(filter) = &filter {
            if let Err(column) = filter.check(&columns) {
                return Answer::error(
                    400,
                    "0x80060888",
                    &format!("Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.contact'."),
                );
            }
        }
        match option("$orderby") {
            None | Some("contactid asc") => {}
            Some(other) => {
                return Answer::error(400, "0x80060888", &format!("the stand-in orders by contactid only, not {other}"))
            }
        }
        let after = option("$skiptoken").map(|token| {
            let (_, rest) = token.split_once("last=\"").unwrap_or(("", ""));
            rest.split('"').next().unwrap_or_default().to_owned()
        });
        let top = option("$top").map(|t| t.parse::<usize>().unwrap_or(0));
        let mut rows: Vec<&Map<String, Value>> = self
            .contacts
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|after| id.as_str() > after.as_str()))
            .filter(|(_, row)| filter.as_ref().is_none_or(|f| f.matches(row)))
            .map(|(_, row)| row)
            .collect();
        if let Some(top) = top {
            rows.truncate(top);
        }
        let (asked, size) = self.page_size(prefer);
        let more = top.is_none() && rows.len() > size;
        rows.truncate(size);
        let mut page = Map::new();
        page.insert("@odata.context".into(), "…/$metadata#contacts".into());
        let value: Vec<Value> = rows.iter().map(|row| Value::Object(project(row, &select, contact::ID))).collect();
        if more {
            let last = rows.last().and_then(|r| r.get(contact::ID)).and_then(Value::as_str).unwrap_or_default();
            let kept: Vec<&str> = raw_query.split('&').filter(|p| !p.starts_with("$skiptoken=")).collect();
            let cookie = encode(&format!("<cookie pagenumber=\"2\" last=\"{last}\" istracking=\"False\" />"));
            let link = format!("http://{host}{ROOT}contacts?{}&$skiptoken={cookie}", kept.join("&"));
            page.insert("@odata.nextLink".into(), link.into());
        }
        page.insert("value".into(), Value::Array(value));
        let mut answer = Answer::json(200, Value::Object(page));
        answer.headers.push(("Preference-Applied".into(), format!("odata.maxpagesize={asked}")));
        answer
    }

    /// The page size `prefer` asks for, and the one answered.
    fn page_size(&self, prefer: &str) -> (usize, usize) {
        let asked = prefer
            .split(',')
            .find_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(5000)
            .min(5000);
        (asked, asked.min(self.page_cap).max(1))
    }

    /// A change-tracked read (`Prefer: odata.track-changes`), as Microsoft documents it: every
    /// row, a page at a time, the last page carrying `@odata.deltaLink`; or, with its
    /// `$deltatoken`, the rows changed since (each once, by version) and then those deleted
    /// since (`$deletedEntity`), with a new delta link.
    fn tracked<'q>(
        &self,
        host: &str,
        raw_query: &str,
        option: impl Fn(&str) -> Option<&'q str>,
        prefer: &str,
    ) -> Answer {
        if !self.tracking {
            return Answer::error(400, "0x80072491", "Entity contact isn't enabled for change tracking.");
        }
        for name in ["$filter", "$orderby", "$top", "$expand"] {
            if option(name).is_some() {
                let message =
                    format!("The \"{name}\" query parameter isn't supported when Change Tracking is enabled.");
                return Answer::error(400, "0x80060888", &message);
            }
        }
        let select = match select(option("$select"), &contact_columns()) {
            Ok(select) => select,
            Err(answer) => return answer,
        };
        let now = self.now_ms();
        let expired = || {
            Answer::error(
                400,
                "0x80044352",
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        };
        let from = match option("$deltatoken") {
            None => None,
            Some(token) => match parse_token(token) {
                Some((version, ms)) if version <= self.version && now.saturating_sub(ms) <= 7 * 86_400_000 => {
                    Some(version)
                }
                _ => return expired(),
            },
        };
        // Where the pages before stopped: (phase, version, id) of the last row answered.
        let cursor = option("$skiptoken").map(|cookie| {
            let number = |name: &str| attribute(cookie, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let position = (number("phase"), number("version"), attribute(cookie, "last").unwrap_or_default());
            (number("upto"), number("at"), position)
        });
        let (upto, started) = cursor.as_ref().map_or((self.version, now), |(upto, at, _)| (*upto, *at));
        // Each row's position and what it answers.
        let mut items: Vec<((u64, u64, String), Value)> = Vec::new();
        let host_root = format!("http://{host}{ROOT}");
        match from {
            None => {
                for (id, row) in &self.contacts {
                    items.push(((0, 0, id.clone()), Value::Object(project(row, &select, contact::ID))));
                }
            }
            Some(from) => {
                let mut changed: Vec<&Map<String, Value>> = self
                    .contacts
                    .values()
                    .filter(|row| {
                        row.get(contact::VERSION).and_then(Value::as_u64).is_some_and(|v| v > from && v <= upto)
                    })
                    .collect();
                changed.sort_by_key(|row| row.get(contact::VERSION).and_then(Value::as_u64));
                for row in changed {
                    let version = row.get(contact::VERSION).and_then(Value::as_u64).unwrap_or_default();
                    items.push(((0, version, String::new()), Value::Object(project(row, &select, contact::ID))));
                }
                for (id, version, _) in &self.deleted {
                    let latest =
                        self.deleted.iter().filter(|(d, v, _)| d == id && *v <= upto).map(|(_, v, _)| *v).max();
                    let again = self.contacts.get(id).and_then(|r| r.get(contact::VERSION)).and_then(Value::as_u64);
                    if *version <= from
                        || *version > upto
                        || latest != Some(*version)
                        || again.is_some_and(|a| a > *version && a <= upto)
                    {
                        continue;
                    }
                    let gone = json!({"@odata.context": format!("{host_root}$metadata#contacts/$deletedEntity"), "id": id, "reason": "deleted"});
                    items.push(((1, *version, String::new()), gone));
                }
            }
        }
        if let Some((_, _, after)) = &cursor {
            items.retain(|(position, _)| position > after);
        }
        let (asked, size) = self.page_size(prefer);
        let more = items.len() > size;
        items.truncate(size);
        let kept: Vec<&str> = raw_query
            .split('&')
            .filter(|p| !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken="))
            .filter(|p| !p.starts_with("$deltatoken=") && !p.starts_with("%24deltatoken="))
            .collect();
        let mut page = Map::new();
        let delta = if from.is_some() { "/$delta" } else { "" };
        page.insert(
            "@odata.context".into(),
            format!("{host_root}$metadata#contacts({}){delta}", select.join(",")).into(),
        );
        if more {
            let (phase, version, last) = items.last().map(|(p, _)| p.clone()).unwrap_or_default();
            let cookie = format!(
                "<cookie pagenumber=\"2\" upto=\"{upto}\" at=\"{started}\" phase=\"{phase}\" version=\"{version}\" last=\"{last}\" istracking=\"True\" />"
            );
            let mut link = format!("{host_root}contacts?{}", kept.join("&"));
            if let Some(token) = option("$deltatoken") {
                link.push_str(&format!("&$deltatoken={}", encode(token)));
            }
            link.push_str(&format!("&$skiptoken={}", encode(&cookie)));
            page.insert("@odata.nextLink".into(), link.into());
        } else {
            let link =
                format!("{host_root}contacts?{}&$deltatoken={}", kept.join("&"), encode(&delta_token(upto, started)));
            page.insert("@odata.deltaLink".into(), link.into());
        }
        page.insert("value".into(), Value::Array(items.into_iter().map(|(_, v)| v).collect()));
        let mut answer = Answer::json(200, Value::Object(page));
        let mut applied = vec![format!("odata.maxpagesize={asked}")];
        if prefer.contains("odata.track-changes") {
            applied.insert(0, "odata.track-changes".into());
        }
        answer.headers.push(("Preference-Applied".into(), applied.join(",")));
        answer
    }

    /// `GET contacts?fetchXml=…`: only what the relay asks, the recycle bin
    /// (`<fetch datasource="bin">`) of the contacts whose ids are listed.
    fn fetch(&self, fetch: &str, tracked: bool) -> Answer {
        if tracked {
            return Answer::error(
                400,
                "0x80060888",
                "Change tracking (Prefer: odata.track-changes) cannot be used with fetchXml.",
            );
        }
        if !fetch.contains("datasource=\"bin\"") || !fetch.contains("<entity name=\"contact\">") {
            return Answer::error(
                400,
                "0x80060888",
                &format!("the stand-in reads only the contacts' recycle bin: {fetch}"),
            );
        }
        if !self.keep_deleted {
            return Answer::error(400, "0x80060888", "The recycle bin is off for this environment (the setting \"Keep deleted Dataverse records\"): the deleted records of 'contact' cannot be read with datasource='bin'.");
        }
        let between = |open: &str, close: &str| -> Vec<String> {
            fetch.split(open).skip(1).filter_map(|rest| rest.split_once(close)).map(|(v, _)| xml_unescape(v)).collect()
        };
        let ids: Vec<String> = between("<value>", "</value>").into_iter().map(|v| v.to_ascii_lowercase()).collect();
        let columns = between("<attribute name=\"", "\"");
        let rows: Vec<Value> = self
            .deleted
            .iter()
            .filter(|(id, _, _)| ids.contains(id))
            .map(|(_, _, row)| {
                let mut out = Map::new();
                for column in &columns {
                    out.insert(column.clone(), row.get(column).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect();
        Answer::json(200, json!({"value": rows}))
    }

    fn patch_contact<'q>(
        &mut self,
        id: &str,
        headers: &[(String, String)],
        body: &str,
        option: impl Fn(&str) -> Option<&'q str>,
        prefer: &str,
    ) -> Answer {
        let key = id.to_ascii_lowercase();
        let Ok(Value::Object(changes)) = serde_json::from_str::<Value>(body) else {
            return Answer::error(400, "0x80040203", "the body is not a JSON object");
        };
        let columns = contact_columns();
        if let Some(column) = changes.keys().find(|c| !columns.contains(&c.as_str())) {
            return Answer::error(
                400,
                "0x80060888",
                &format!("Invalid property '{column}' was found in entity 'Microsoft.Dynamics.CRM.contact'."),
            );
        }
        if let Some(column) = changes.keys().find(|c| SYSTEM_COLUMNS.contains(&c.as_str())) {
            return Answer::error(400, "0x80048d19", &format!("The column '{column}' cannot be written"));
        }
        let exists = self.contacts.contains_key(&key);
        match header(headers, "if-match").map(String::as_str) {
            // `If-Match: *`: only an existing row (an update, never a create).
            Some("*") if !exists => return not_found(id),
            Some("*") | None => {}
            Some(tag)
                if exists
                    && self.contacts[&key].get(contact::VERSION).and_then(Value::as_u64).map(etag).as_deref()
                        == Some(tag) => {}
            Some(_) => {
                return Answer::error(
                    412,
                    "0x80060882",
                    "The version of the existing record doesn't match the RowVersion property provided.",
                )
            }
        }
        let mut changes = changes;
        if !exists {
            changes.insert(contact::ID.into(), key.clone().into());
        }
        self.write(&key, changes, true);
        if prefer.contains("return=representation") {
            let select = select(option("$select"), &columns).unwrap_or_default();
            let mut row = project(&self.contacts[&key], &select, contact::ID);
            let version = self.contacts[&key].get(contact::VERSION).and_then(Value::as_u64).unwrap_or_default();
            row.insert("@odata.etag".into(), etag(version).into());
            return Answer::json(200, Value::Object(row));
        }
        Answer::empty(204)
    }

    /// `PATCH new_salesmanagointegrations(…)`: guarded by `If-Match`.
    fn patch_record<'q>(
        &mut self,
        headers: &[(String, String)],
        body: &str,
        option: impl Fn(&str) -> Option<&'q str>,
        prefer: &str,
    ) -> Answer {
        let Ok(Value::Object(changes)) = serde_json::from_str::<Value>(body) else {
            return Answer::error(400, "0x80040203", "the body is not a JSON object");
        };
        let columns = record_columns();
        if let Some(column) = changes.keys().find(|c| !columns.contains(&c.as_str()) || *c == integration::ID) {
            return Answer::error(
                400,
                "0x80060888",
                &format!("Invalid property '{column}' was found in entity 'Microsoft.Dynamics.CRM.new_salesmanagointegration'."),
            );
        }
        match header(headers, "if-match").map(String::as_str) {
            Some("*") => {}
            Some(tag) if tag == etag(self.record_version) => {}
            Some(_) => {
                return Answer::error(
                    412,
                    "0x80060882",
                    "The version of the existing record doesn't match the RowVersion property provided.",
                )
            }
            None => self.problems.push("a write of the record without If-Match".into()),
        }
        for (column, value) in changes {
            self.record.insert(column, value);
        }
        self.version += 1;
        self.record_version = self.version;
        if prefer.contains("return=representation") {
            let select = select(option("$select"), &columns).unwrap_or_default();
            let mut row = project(&self.record, &select, integration::ID);
            row.insert("@odata.etag".into(), etag(self.record_version).into());
            return Answer::json(200, Value::Object(row));
        }
        Answer::empty(204)
    }

    /// `POST $batch`: each part a request of its own (no change sets), answered in order; after
    /// a failure the rest are not made, unless `Prefer: odata.continue-on-error`.
    fn batch(&mut self, host: &str, headers: &[(String, String)], body: &str) -> Answer {
        let content_type = header(headers, "content-type").cloned().unwrap_or_default();
        let Some(boundary) = content_type.strip_prefix("multipart/mixed; boundary=") else {
            return Answer::error(400, "0x80048d19", "a $batch must be multipart/mixed with a boundary");
        };
        let go_on = header(headers, "prefer").is_some_and(|p| p.contains("odata.continue-on-error"));
        let delimiter = format!("--{boundary}");
        let tag = format!("batchresponse_{}", self.version);
        let mut out = String::new();
        let mut parts = body.split(delimiter.as_str());
        if !parts.next().is_some_and(|preamble| preamble.trim().is_empty()) {
            return Answer::error(400, "0x80048d19", "the $batch does not start with its boundary");
        }
        let mut closed = false;
        for part in parts {
            if part.starts_with("--") {
                closed = true;
                break;
            }
            let part = part.strip_prefix("\r\n").unwrap_or(part);
            let Some((part_headers, request)) = part.split_once("\r\n\r\n") else {
                return Answer::error(400, "0x80048d19", "a $batch part without headers");
            };
            if part_headers.to_ascii_lowercase().contains("multipart/mixed") {
                self.problems.push("a change set in a $batch: one failure would undo the others".into());
            }
            if !part_headers.to_ascii_lowercase().contains("content-type: application/http") {
                return Answer::error(400, "0x80048d19", "a $batch part that is not application/http");
            }
            let (head, inner_body) = request.split_once("\r\n\r\n").unwrap_or((request, ""));
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap_or_default();
            let mut words = request_line.split(' ');
            let (method, url, version) =
                (words.next().unwrap_or_default(), words.next().unwrap_or_default(), words.next());
            if version != Some("HTTP/1.1") {
                return Answer::error(400, "0x80048d19", &format!("a $batch request line: {request_line}"));
            }
            let inner_headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .chain(std::iter::once(("authorization".to_owned(), format!("Bearer {TOKEN}"))))
                .collect();
            let target = url.split_once(ROOT).map_or(url, |(_, rest)| rest);
            let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
            let inner_body = inner_body.strip_suffix("\r\n").unwrap_or(inner_body);
            let answer = self.request(host, method, &decode(path, false), raw_query, &inner_headers, inner_body, true);
            out.push_str(&format!(
                "--{tag}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {} {}\r\n",
                answer.status,
                reason(answer.status)
            ));
            for (name, value) in &answer.headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str(&format!("OData-Version: 4.0\r\n\r\n{}\r\n", answer.body));
            if answer.status >= 400 && !go_on {
                // The rest are not made (nor read).
                closed = true;
                break;
            }
        }
        if !closed {
            return Answer::error(400, "0x80048d19", "the $batch does not end with its closing boundary");
        }
        out.push_str(&format!("--{tag}--\r\n"));
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), format!("multipart/mixed; boundary={tag}"))],
            body: out,
        }
    }
}

fn not_found(id: &str) -> Answer {
    Answer::error(404, "0x80040217", &format!("contact With Id = {id} Does Not Exist"))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        412 => "Precondition Failed",
        _ => "Error",
    }
}

fn contact_columns() -> Vec<&'static str> {
    CONTACT_ATTRIBUTES.iter().map(|(name, _)| *name).collect()
}

fn record_columns() -> Vec<&'static str> {
    let custom = schema::CUSTOM_COLUMNS.iter().find(|(table, _)| *table == integration::TABLE).unwrap().1;
    std::iter::once(integration::ID).chain(custom.iter().copied()).collect()
}

/// The columns of `$select`, each one the table has (else Dataverse's 400); none: all.
fn select(option: Option<&str>, columns: &[&str]) -> Result<Vec<String>, Answer> {
    let Some(option) = option else { return Ok(Vec::new()) };
    let wanted: Vec<String> = option.split(',').map(|c| c.trim().to_owned()).collect();
    match wanted.iter().find(|c| !columns.contains(&c.as_str())) {
        Some(column) => Err(Answer::error(
            400,
            "0x80060888",
            &format!("Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.contact'."),
        )),
        None => Ok(wanted),
    }
}

/// `row`'s selected columns (null when it has no value), its key always, and its ETag.
fn project(row: &Map<String, Value>, select: &[String], key: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(version) = row.get(contact::VERSION).and_then(Value::as_u64) {
        out.insert("@odata.etag".into(), etag(version).into());
    }
    if select.is_empty() {
        out.extend(row.clone());
    }
    for column in select {
        out.insert(column.clone(), row.get(column).cloned().unwrap_or(Value::Null));
    }
    out.insert(key.into(), row.get(key).cloned().unwrap_or(Value::Null));
    out
}

/// A query string as ASP.NET reads it: `&`-separated, each name and value percent-decoded
/// with `+` as a space.
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(name, true), decode(value, true))
        })
        .collect()
}

fn decode(text: &str, plus_is_space: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = match bytes.get(at..at + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (escaped, bytes[at]) {
            (Some(byte), _) => {
                out.push(byte);
                at += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, other) => out.push(other),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A cookie's attribute.
fn attribute(cookie: &str, name: &str) -> Option<String> {
    let (_, rest) = cookie.split_once(&format!(" {name}=\""))?;
    Some(rest.split('"').next()?.to_owned())
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

/// A delta token as Dataverse writes it: `<version>!<MM/dd/yyyy HH:mm:ss>`.
fn delta_token(version: u64, ms: u64) -> String {
    let iso = iso_datetime(ms); // 2024-05-01T10:20:30Z
    format!("{version}!{}/{}/{} {}", &iso[5..7], &iso[8..10], &iso[0..4], &iso[11..19])
}

/// The version and time of a delta token.
fn parse_token(text: &str) -> Option<(u64, u64)> {
    let (version, time) = text.trim().split_once('!')?;
    let (date, clock) = time.split_once(' ')?;
    let mut parts = date.split('/');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    Some((version.parse().ok()?, unix_ms(&format!("{year}-{month}-{day}T{clock}Z"))?))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for Unix ms.
fn http_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let iso = iso_datetime(ms); // 2024-05-01T10:20:30Z
    let (year, month, day) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let month = MONTHS[month.parse::<usize>().unwrap() - 1];
    format!("{}, {day} {month} {year} {} GMT", DAYS[((ms / 86_400_000) % 7) as usize], &iso[11..19])
}

/// A `$filter`: conditions joined by `and`.
#[derive(Debug)]
struct Filter(Vec<Condition>);

#[derive(Debug)]
enum Condition {
    /// `Microsoft.Dynamics.CRM.In(PropertyName='column',PropertyValues=["a","b"])`.
    In(String, Vec<String>),
    /// `column op value` (`None`: `null`).
    Compare(String, String, Option<String>),
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, what: &str) -> bool {
        let found = self.rest().starts_with(what);
        if found {
            self.at += what.len();
        }
        found
    }

    fn expect(&mut self, what: &str) -> Result<(), String> {
        match self.eat(what) {
            true => Ok(()),
            false => Err(format!("expected {what:?} at position {} of {:?}", self.at, self.text)),
        }
    }

    /// A string literal: single quotes, inner quotes doubled.
    fn literal(&mut self) -> Result<String, String> {
        self.expect("'")?;
        let mut out = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(format!("an unterminated string literal in {:?}", self.text));
            };
            self.at += c.len_utf8();
            if c == '\'' {
                if self.eat("'") {
                    out.push('\'');
                    continue;
                }
                return Ok(out);
            }
            out.push(c);
        }
    }

    /// An element of `In`'s `PropertyValues`, read as Dataverse reads that array, as JSON: a
    /// string in double quotes, or in single quotes with no quote inside (an OData literal's
    /// doubled quote is "Invalid JSON": "Filter rows using OData", "Manage single quotes").
    fn array_value(&mut self) -> Result<String, String> {
        if self.rest().starts_with('"') {
            let mut stream = serde_json::Deserializer::from_str(self.rest()).into_iter::<String>();
            let value = stream.next().and_then(Result::ok).ok_or_else(|| format!("Invalid JSON in {:?}", self.text))?;
            self.at += stream.byte_offset();
            return Ok(value);
        }
        self.expect("'")?;
        let end = self.rest().find('\'').ok_or_else(|| format!("Invalid JSON in {:?}", self.text))?;
        let value = self.rest()[..end].to_owned();
        self.at += end + 1;
        if self.rest().starts_with('\'') {
            return Err(format!("Invalid JSON (a doubled quote) in {:?}", self.text));
        }
        Ok(value)
    }

    fn word(&mut self) -> String {
        let word: String = self.rest().chars().take_while(|c| !matches!(c, ' ' | ')' | ',')).collect();
        self.at += word.len();
        word
    }

    fn condition(&mut self) -> Result<Condition, String> {
        if self.eat("Microsoft.Dynamics.CRM.In(PropertyName=") {
            let column = self.literal()?;
            self.expect(",PropertyValues=[")?;
            let mut values = vec![self.array_value()?];
            while self.eat(",") {
                values.push(self.array_value()?);
            }
            self.expect("])")?;
            return Ok(Condition::In(column, values));
        }
        let column = self.word();
        self.expect(" ")?;
        let op = self.word();
        if !["eq", "ne", "gt", "ge", "lt", "le"].contains(&op.as_str()) {
            return Err(format!("an unknown operator {op:?} in {:?}", self.text));
        }
        self.expect(" ")?;
        let value = match self.rest().starts_with('\'') {
            true => Some(self.literal()?),
            false => Some(self.word()).filter(|w| w != "null"),
        };
        Ok(Condition::Compare(column, op, value))
    }
}

/// Reads a `$filter`.
fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut parser = Parser { text, at: 0 };
    let mut conditions = vec![parser.condition()?];
    while parser.eat(" and ") {
        conditions.push(parser.condition()?);
    }
    if !parser.rest().is_empty() {
        return Err(format!("unexpected {:?} at position {} of {text:?}", parser.rest(), parser.at));
    }
    Ok(Filter(conditions))
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl Filter {
    /// The first column the table does not have.
    fn check(&self, columns: &[&str]) -> Result<(), String> {
        for condition in &self.0 {
            let (Condition::In(column, _) | Condition::Compare(column, _, _)) = condition;
            if !columns.contains(&column.as_str()) {
                return Err(column.clone());
            }
        }
        Ok(())
    }

    /// Whether `row` passes: text compared without case, times as times, versions as numbers.
    fn matches(&self, row: &Map<String, Value>) -> bool {
        self.0.iter().all(|condition| match condition {
            Condition::In(column, values) => {
                text_of(row.get(column)).is_some_and(|held| values.iter().any(|v| v.eq_ignore_ascii_case(&held)))
            }
            Condition::Compare(column, op, value) => {
                let held = text_of(row.get(column));
                let ordering = match (&held, value) {
                    (None, None) => Some(std::cmp::Ordering::Equal),
                    (None, Some(_)) | (Some(_), None) => None,
                    (Some(held), Some(value)) => {
                        if column == contact::MODIFIED_ON || column.ends_with("on") || column == contact::BIRTH_DATE {
                            unix_ms(held).zip(unix_ms(value)).map(|(a, b)| a.cmp(&b))
                        } else if column == contact::VERSION {
                            held.parse::<u64>().ok().zip(value.parse::<u64>().ok()).map(|(a, b)| a.cmp(&b))
                        } else {
                            Some(held.to_ascii_lowercase().cmp(&value.to_ascii_lowercase()))
                        }
                    }
                };
                use std::cmp::Ordering::*;
                matches!(
                    (op.as_str(), ordering),
                    ("eq", Some(Equal))
                        | ("ne", Some(Less | Greater) | None)
                        | ("gt", Some(Greater))
                        | ("lt", Some(Less))
                        | ("ge", Some(Greater | Equal))
                        | ("le", Some(Less | Equal))
                )
            }
        })
    }
}
