//! SALESmanago in memory: contacts by e-mail, the API methods the jobs call with the envelope
//! the real API answers with, and its faults (429 with either form of `Retry-After`, 5xx,
//! timeouts after the work was done, garbled answers, refused e-mails). An upsert finds its
//! contact by `contact.email`, and `newEmail` renames it, keeping its id; a new address another
//! contact has is refused (`Contact <newEmail> already exists`, as the JS simulator says), as
//! the API reference documents it.

use std::collections::{BTreeMap, BTreeSet};

use salesmanago_dynamics::core::json::{self, Map, Value};
use salesmanago_dynamics::core::mapping::normalize;
use salesmanago_dynamics::core::salesmanago::{HttpRequest, HttpResponse, TransportFailure};

use super::dataverse::Dataverse;
use super::rng::{http_date, Rng};
use super::Faults;

#[derive(Debug, Clone)]
pub(crate) struct SmRecord {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) opted_out: bool,
    pub(crate) modified_on: u64,
    /// Changed in SALESmanago by the scenario (not by an export).
    pub(crate) changed: bool,
    /// Opted out of SMS.
    pub(crate) phone_opted_out: bool,
    /// Consents by name: given (`true`) or withdrawn.
    pub(crate) consents: BTreeMap<String, bool>,
    /// Each consent's agreement date (Unix ms), as the last upsert that sent it said.
    pub(crate) agreed_on: BTreeMap<String, u64>,
    /// Carries the engine's tag, so the export job selects it.
    pub(crate) tagged: bool,
    /// Its activity, as its card lists it: `emailMessages`, `contactVisits`, `contactExtEvents`.
    pub(crate) activity: Map,
    /// Custom details (`properties`): an upsert's are merged in, a detail it lacks stays.
    pub(crate) properties: BTreeMap<String, String>,
    /// Every tag but the engine's (`tagged`): an upsert's `tags` added, `removeTags` removed.
    pub(crate) tags: BTreeSet<String>,
    /// `contact.company` and `province`, as the last upsert that had them set them.
    pub(crate) company: Option<String>,
    pub(crate) province: Option<String>,
}

impl SmRecord {
    /// A contact neither opted out nor changed by the scenario, with no consents, tags,
    /// activity or details.
    fn new(id: String, email: String, name: String, modified_on: u64) -> SmRecord {
        SmRecord {
            id,
            email,
            name,
            opted_out: false,
            modified_on,
            changed: false,
            phone_opted_out: false,
            consents: BTreeMap::new(),
            agreed_on: BTreeMap::new(),
            tagged: false,
            activity: Map::new(),
            properties: BTreeMap::new(),
            tags: BTreeSet::new(),
            company: None,
            province: None,
        }
    }
}

pub(crate) struct Salesmanago {
    store: BTreeMap<String, SmRecord>,
    ids: BTreeMap<String, String>,
    pub(crate) faults: Faults,
    reject: BTreeSet<String>,
    /// Whether a batch holding a refused e-mail is refused whole (`success:false`), rather
    /// than that contact alone.
    whole_batch: bool,
    next_id: u64,
    /// Calls received that change contacts.
    pub(crate) writes: u64,
    /// Each name an upsert gave a contact, in order: (e-mail, name).
    pub(crate) history: Vec<(String, String)>,
    /// Export jobs: when each file is ready, and its text (the contacts as they were asked for).
    exports: BTreeMap<String, (u64, String)>,
    /// Every call is refused as not authenticated (the API secret changed in SALESmanago).
    pub(crate) unauthenticated: bool,
    /// Export files are never ready (SALESmanago's job stuck).
    pub(crate) never_ready: bool,
    /// Export files come broken: text that is not the file's (`Some(true)`: an error page), or
    /// the file cut short with a good ending (`Some(false)`).
    pub(crate) broken_files: Option<bool>,
    /// What the file's server answers the next downloads, one each, before it serves the file:
    /// statuses that pass (busy, timed out, asking to wait).
    pub(crate) file_hiccups: Vec<u16>,
    /// Contacts (ids or e-mails) whose lookup SALESmanago refuses (`success:false`), with every
    /// other contact asked in the same call: `listById` and `basicById` by id, `basic` by e-mail.
    pub(crate) refuse_lookup: BTreeSet<String>,
    /// Every id or e-mail asked in a refused lookup.
    pub(crate) refused_lookups: BTreeSet<String>,
    /// `listById` calls answered: full cards read.
    pub(crate) card_reads: u64,
    /// E-mails whose batch upsert, delete or opt-out fails with a server error every time it is
    /// tried (a failure that passes, but not within the job's retries).
    pub(crate) failing: BTreeSet<String>,
    /// When each export job was started, then each time its status was asked, by request id.
    pub(crate) status_asked: BTreeMap<String, Vec<u64>>,
}

type Answer = (Result<HttpResponse, TransportFailure>, bool);

fn answer(status: u16, body: Value) -> Answer {
    (Ok(HttpResponse { date: None, status, retry_after: None, body: body.to_string() }), false)
}

fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.into(), v);
    }
    Value::Object(map)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

impl Salesmanago {
    pub(crate) fn new(faults: Faults, rng: &mut Rng, dataverse: &Dataverse) -> Salesmanago {
        let mut reject = BTreeSet::new();
        for row in dataverse.contacts.values() {
            if let Some(email) = row.get("emailaddress1").and_then(Value::as_str) {
                if rng.chance(10) {
                    reject.insert(email.trim().to_ascii_lowercase());
                }
            }
        }
        let whole_batch = rng.below(2) == 0;
        Salesmanago {
            store: BTreeMap::new(),
            ids: BTreeMap::new(),
            faults,
            reject,
            whole_batch,
            next_id: 1,
            writes: 0,
            history: Vec::new(),
            exports: BTreeMap::new(),
            never_ready: false,
            unauthenticated: false,
            broken_files: None,
            file_hiccups: Vec::new(),
            refuse_lookup: BTreeSet::new(),
            refused_lookups: BTreeSet::new(),
            card_reads: 0,
            failing: BTreeSet::new(),
            status_asked: BTreeMap::new(),
        }
    }

    pub(crate) fn rejects(&self, row: &Map) -> bool {
        row.get("emailaddress1")
            .and_then(Value::as_str)
            .is_some_and(|e| self.reject.contains(&e.trim().to_ascii_lowercase()))
    }

    pub(crate) fn by_email(&self, email: &str) -> Option<&SmRecord> {
        self.store.get(email)
    }

    /// The contact of `email`, to change as a SALESmanago user would.
    pub(crate) fn edit(&mut self, email: &str) -> Option<&mut SmRecord> {
        self.store.get_mut(email)
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&SmRecord> {
        self.store.get(self.ids.get(id)?)
    }

    pub(crate) fn changed(&self) -> impl Iterator<Item = &SmRecord> {
        self.store.values().filter(|r| r.changed)
    }

    /// Every e-mail and every id names one contact.
    pub(crate) fn check_unique(&self) {
        assert_eq!(self.store.len(), self.ids.len(), "ids and e-mails are one to one");
        for (id, email) in &self.ids {
            assert_eq!(&self.store[email].id, id);
        }
    }

    /// SALESmanago-side changes after the last export: new names (some too long for
    /// Dynamics' columns) and opt-outs to `per_mille` of the contacts it does not hold yet, made
    /// within `span` ms from `start`.
    pub(crate) fn change_some(
        &mut self,
        rng: &mut Rng,
        dataverse: &Dataverse,
        per_mille: u64,
        (start, span): (u64, u64),
    ) {
        for (i, row) in dataverse.contacts.values().enumerate() {
            let Some(email) = row.get("emailaddress1").and_then(Value::as_str) else { continue };
            let Ok(email) = normalize::email(email) else { continue };
            if !rng.chance(per_mille) || self.store.contains_key(&email) {
                continue;
            }
            let name = match rng.below(10) {
                0 => format!("{} Long", "N".repeat(300)),
                1..=3 => format!("Anna{i} Nowak"),
                _ => row.get("fullname").and_then(Value::as_str).unwrap_or("X").replace("@@SURROGATE@@", "\u{fffd}"),
            };
            let (opted_out, modified_on) = (rng.chance(400), start + rng.below(span));
            self.add_changed(email, name, opted_out, modified_on);
        }
    }

    /// A contact changed in SALESmanago at `modified_on`, under a new id; its id.
    pub(crate) fn add_changed(&mut self, email: String, name: String, opted_out: bool, modified_on: u64) -> String {
        let id = self.new_id();
        self.ids.insert(id.clone(), email.clone());
        let record =
            SmRecord { opted_out, changed: true, ..SmRecord::new(id.clone(), email.clone(), name, modified_on) };
        self.store.insert(email, record);
        id
    }

    /// `count` contacts only SALESmanago has (added there, never in Dynamics), changed at
    /// `modified_on`: a pull finds no contact for them.
    pub(crate) fn add_elsewhere(&mut self, count: u64, modified_on: u64) {
        for n in 0..count {
            let email = format!("elsewhere-{n}-{}@example.com", self.next_id);
            self.add_changed(email, "Only Elsewhere".into(), false, modified_on);
        }
    }

    /// Changes in SALESmanago to contacts the engine sent: opt-outs and opt-ins of the newsletter
    /// and SMS, MARKETING given or withdrawn. The e-mails changed.
    pub(crate) fn change_consents(&mut self, rng: &mut Rng) -> Vec<String> {
        let mut changed = Vec::new();
        for record in self.store.values_mut().filter(|r| r.tagged) {
            if !rng.chance(200) {
                continue;
            }
            match rng.below(3) {
                0 => record.opted_out = !record.opted_out,
                1 => record.phone_opted_out = !record.phone_opted_out,
                _ => {
                    let given = record.consents.get("MARKETING").is_none_or(|given| !given);
                    record.consents.insert("MARKETING".into(), given);
                }
            }
            changed.push(record.email.clone());
        }
        changed
    }

    /// A contact of SALESmanago's own (not from Dynamics), under `email`; its id.
    pub(crate) fn add_foreign(&mut self, email: &str, now: u64) -> String {
        let id = self.new_id();
        self.ids.insert(id.clone(), email.to_owned());
        let record = SmRecord::new(id.clone(), email.to_owned(), "Foreign".into(), now);
        self.store.insert(email.to_owned(), record);
        id
    }

    /// Gives the contact `id` `count` random events between `from` and `to` (ms), in the card's
    /// formats (`core::salesmanago::activity`); some items lack their id.
    pub(crate) fn add_activity(&mut self, id: &str, rng: &mut Rng, count: u64, (from, to): (u64, u64)) {
        let Some(email) = self.ids.get(id).cloned() else { return };
        let next = self.next_id;
        self.next_id += count + 1;
        let record = self.store.get_mut(&email).expect("an id names a contact");
        for n in 0..count {
            let at = from + rng.below((to - from).max(1));
            let item_id = format!("a-{}-{n}", next);
            let (key, item) = match rng.below(10) {
                0..=5 => {
                    let later = |rng: &mut Rng, chance: u64| {
                        if rng.chance(chance) {
                            Value::from(at + 1 + rng.below(3_600_000))
                        } else {
                            Value::Null
                        }
                    };
                    let mut item = vec![
                        ("subject", format!("Campaign {n}").into()),
                        ("sentOn", at.into()),
                        ("openedOn", later(rng, 400)),
                        ("clickedOn", later(rng, 150)),
                        ("bouncedOn", later(rng, 30)),
                        ("unsubscribedOn", later(rng, 20)),
                    ];
                    if !rng.chance(100) {
                        item.push(("id", item_id.into()));
                    }
                    ("emailMessages", object(item))
                }
                6..=8 => {
                    let mut item = vec![
                        ("time", at.into()),
                        ("url", format!("https://shop.example.com/p/{n}").into()),
                        ("duration", (rng.below(600)).to_string().into()),
                        ("visitSource", "google".into()),
                    ];
                    if !rng.chance(100) {
                        item.push(("conversationId", item_id.into()));
                    }
                    ("contactVisits", object(item))
                }
                _ => {
                    let item = vec![
                        ("eventId", item_id.into()),
                        ("contactExtEventType", "PURCHASE".into()),
                        ("date", at.into()),
                        ("description", format!("Order {n}").into()),
                        ("value", json::from_str(&format!("{}.5", rng.below(500))).expect("a number")),
                    ];
                    ("contactExtEvents", object(item))
                }
            };
            if record.activity.get(key).is_none() {
                record.activity.insert(key.to_owned(), Value::Array(Vec::new()));
            }
            if let Some(Value::Array(items)) = record.activity.get_mut(key) {
                items.push(item);
            }
        }
    }

    /// The contact `id`'s full card, as `listById` answers it.
    pub(crate) fn full_card(&self, id: &str) -> Option<Value> {
        self.by_id(id).map(Self::list_card)
    }

    fn list_card(record: &SmRecord) -> Value {
        let mut card = Self::card(record);
        if let Value::Object(map) = &mut card {
            // Full cards list details as `{name, value}` and tags as `contactTags` objects
            // (`docs/salesmanago-api.md` §3.4); `basic` has neither.
            let properties = record
                .properties
                .iter()
                .map(|(name, value)| object(vec![("name", name.clone().into()), ("value", value.clone().into())]));
            map.insert("properties".into(), Value::Array(properties.collect()));
            let engine = record.tagged.then(|| "DYNAMICS365".to_owned());
            let tags = record.tags.iter().cloned().chain(engine).map(|t| object(vec![("tag", t.into())]));
            map.insert("contactTags".into(), Value::Array(tags.collect()));
            for key in ["emailMessages", "contactVisits", "contactExtEvents"] {
                map.insert(key.into(), record.activity.get(key).cloned().unwrap_or(Value::Array(Vec::new())));
            }
        }
        card
    }

    /// Every contact.
    pub(crate) fn all(&self) -> impl Iterator<Item = &SmRecord> {
        self.store.values()
    }

    fn new_id(&mut self) -> String {
        let id = format!("sm-{:08}", self.next_id);
        self.next_id += 1;
        id
    }

    fn card(record: &SmRecord) -> Value {
        object(vec![
            ("contactId", record.id.clone().into()),
            ("email", record.email.clone().into()),
            ("name", record.name.clone().into()),
            ("company", record.company.clone().map_or(Value::Null, Value::from)),
            ("optedOut", record.opted_out.into()),
            ("modifiedOn", record.modified_on.into()),
        ])
    }

    pub(crate) fn call(&mut self, request: &HttpRequest, rng: &mut Rng, now: u64) -> Answer {
        if rng.chance(self.faults.throttle) {
            let seconds = 1 + rng.below(4);
            let retry_after = if rng.below(2) == 0 { seconds.to_string() } else { http_date(now, seconds) };
            return (
                Ok(HttpResponse { date: None, status: 429, retry_after: Some(retry_after), body: String::new() }),
                false,
            );
        }
        if rng.chance(self.faults.server_error) {
            return answer(500, Value::Null);
        }
        if self.unauthenticated {
            return answer(
                200,
                object(vec![("success", false.into()), ("message", Value::Array(vec!["Not authenticated".into()]))]),
            );
        }
        let body = json::from_str(&request.body).expect("the engine sends JSON");
        let method = request.url.rsplit_once("/api/").map(|(_, m)| m).expect("an API URL");
        if !self.failing.is_empty() {
            let emails: Vec<&str> = match method {
                "contact/batchupsert" => {
                    body["upsertDetails"].items().iter().filter_map(|d| d["contact"]["email"].as_str()).collect()
                }
                "contact/delete" | "contact/optout" | "contact/phoneoptout" => {
                    body["email"].as_str().into_iter().collect()
                }
                _ => Vec::new(),
            };
            if emails.iter().any(|e| self.failing.contains(&e.trim().to_ascii_lowercase())) {
                return answer(500, Value::Null);
            }
        }
        if !matches!(
            method,
            "contact/basic"
                | "contact/basicById"
                | "contact/listById"
                | "contact/hasContact"
                | "contact/paginatedModifiedContacts"
                | "contact/export/data"
                | "job/status"
        ) {
            self.writes += 1;
        }
        for field in ["clientId", "apiKey", "sha", "requestTime"] {
            assert!(body.get(field).is_some(), "every call is signed: {field}");
        }
        let method = request.url.rsplit_once("/api/").map(|(_, m)| m).expect("an API URL");
        let result = match method {
            "contact/batchupsert" => self.batch_upsert(&body, now),
            "contact/basic" | "contact/basicById" | "contact/listById" => {
                let keys = strings(body.get(if method == "contact/basic" {
                    "email"
                } else if method == "contact/listById" {
                    "contactId"
                } else {
                    "id"
                }));
                if keys.iter().any(|k| self.refuse_lookup.contains(&k.to_ascii_lowercase())) {
                    self.refused_lookups.extend(keys);
                    return answer(
                        200,
                        object(vec![
                            ("success", false.into()),
                            ("message", Value::Array(vec!["The contacts could not be read (simulated)".into()])),
                        ]),
                    );
                }
                let found = match method {
                    "contact/basic" => {
                        keys.iter().filter_map(|e| self.store.get(&e.to_ascii_lowercase())).map(Self::card).collect()
                    }
                    "contact/basicById" => keys.iter().filter_map(|id| self.by_id(id)).map(Self::card).collect(),
                    _ => {
                        self.card_reads += 1;
                        keys.iter().filter_map(|id| self.by_id(id)).map(Self::list_card).collect()
                    }
                };
                object(vec![
                    ("success", true.into()),
                    ("message", Value::Array(vec![])),
                    ("contacts", Value::Array(found)),
                ])
            }
            "contact/upsert" | "contact/hasContact" | "contact/delete" | "contact/optout" | "contact/phoneoptout" => {
                self.contact_call(method, &body, now)
            }
            "contact/paginatedModifiedContacts" => {
                let number = |k: &str| body.get(k).and_then(Value::as_u64).expect("a number");
                let (from, to, page, size) = (number("from"), number("to"), number("page"), number("size"));
                let all: Vec<&SmRecord> =
                    self.store.values().filter(|r| r.modified_on >= from && r.modified_on <= to).collect();
                let start = ((page - 1) * size) as usize;
                let slice: Vec<Value> = all.iter().skip(start).take(size as usize).map(|r| Self::card(r)).collect();
                let more = all.len() > start + size as usize;
                object(vec![
                    ("success", true.into()),
                    ("modifiedContacts", Value::Array(slice)),
                    ("hasMore", more.into()),
                ])
            }
            "contact/export/data" => self.export(&body, rng, now),
            "job/status" => {
                let id = body["requestId"].to_string().trim_matches('"').to_owned();
                self.status_asked.entry(id.clone()).or_default().push(now);
                let (ready_at, _) = self.exports.get(&id).expect("a job SALESmanago started");
                let mut answer = vec![("success", true.into()), ("message", Value::Array(vec![]))];
                if *ready_at <= now {
                    answer.push(("fileUrl", format!("http://127.0.0.1:9/files/{id}.json").into()));
                }
                object(answer)
            }
            other => panic!("a method the jobs do not call: {other}"),
        };
        // A timeout: the work is done, the answer is lost.
        if rng.chance(self.faults.timeout) {
            return (Err(TransportFailure::Timeout), true);
        }
        if rng.chance(self.faults.malformed) {
            return (
                Ok(HttpResponse { date: None, status: 200, retry_after: None, body: "<html>gateway".into() }),
                false,
            );
        }
        answer(200, result)
    }

    fn batch_upsert(&mut self, body: &Value, now: u64) -> Value {
        let items = body.get("upsertDetails").and_then(Value::as_array).cloned().unwrap_or_default();
        let email_of = |item: &Value| item["contact"]["email"].as_str().unwrap_or_default().trim().to_ascii_lowercase();
        if self.whole_batch {
            if let Some(bad) = items.iter().map(email_of).find(|e| self.reject.contains(e)) {
                return object(vec![
                    ("success", false.into()),
                    ("message", Value::Array(vec![format!("Contact rejected: {bad}").into()])),
                ]);
            }
        }
        let mut ids = Map::new();
        let mut messages = Vec::new();
        for item in &items {
            match self.upsert_one(item, now) {
                Ok((email, id)) => {
                    ids.insert(email, id.into());
                }
                // A refusal names the contact's e-mail, as the JS simulator's do.
                Err(message) if message.contains(&email_of(item)) => messages.push(Value::from(message)),
                Err(message) => messages.push(Value::from(format!("{}: {message}", email_of(item)))),
            }
        }
        object(vec![("success", true.into()), ("message", Value::Array(messages)), ("contactIds", Value::Object(ids))])
    }

    /// One contact of an upsert: its e-mail (the new one, when renamed) and id, or why it is
    /// refused.
    fn upsert_one(&mut self, item: &Value, now: u64) -> Result<(String, String), String> {
        let found_by = item["contact"]["email"].as_str().unwrap_or_default().trim().to_ascii_lowercase();
        let new_email = item["newEmail"].as_str().map(|e| e.trim().to_ascii_lowercase());
        for address in [Some(&found_by), new_email.as_ref()].into_iter().flatten() {
            if self.reject.contains(address) {
                return Err(format!("Contact rejected: {address}"));
            }
        }
        let email = match new_email.filter(|new| *new != found_by) {
            Some(new) if self.store.contains_key(&new) => return Err(format!("Contact {new} already exists")),
            Some(new) => {
                // Renamed: the same contact, its id and all, under its new address (a contact
                // not there is created under it).
                if let Some(mut record) = self.store.remove(&found_by) {
                    record.email = new.clone();
                    self.ids.insert(record.id.clone(), new.clone());
                    self.store.insert(new.clone(), record);
                }
                new
            }
            None => found_by,
        };
        {
            let id = match self.store.get(&email) {
                Some(record) => record.id.clone(),
                None => {
                    let id = self.new_id();
                    self.ids.insert(id.clone(), email.clone());
                    id
                }
            };
            let record = self
                .store
                .entry(email.clone())
                .or_insert_with(|| SmRecord::new(id.clone(), email.clone(), String::new(), now));
            if let Some(name) = item["contact"]["name"].as_str() {
                record.name = name.to_owned();
                self.history.push((email.clone(), name.to_owned()));
            }
            let forced = |field: &str| item[field].as_bool() == Some(true);
            if forced("forceOptOut") || forced("forceOptIn") {
                record.opted_out = forced("forceOptOut");
            }
            if forced("forcePhoneOptOut") || forced("forcePhoneOptIn") {
                record.phone_opted_out = forced("forcePhoneOptOut");
            }
            for consent in item["consentDetails"].as_array().into_iter().flatten() {
                let name = consent["consentName"].as_str().expect("a consent's name").to_owned();
                record.consents.insert(name.clone(), consent["consentAccept"].as_bool() == Some(true));
                record.agreed_on.insert(name, consent["agreementDate"].as_u64().expect("an agreement date"));
            }
            if item["tags"].as_array().is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some("DYNAMICS365"))) {
                record.tagged = true;
            }
            for tag in strings(item.get("tags")).into_iter().filter(|t| t != "DYNAMICS365") {
                record.tags.insert(tag);
            }
            for tag in strings(item.get("removeTags")) {
                record.tags.remove(&tag);
            }
            for (name, value) in item["properties"].as_object().into_iter().flat_map(|p| p.iter()) {
                let value = value.as_str().expect("a detail's value is text").to_owned();
                record.properties.insert(name.clone(), value);
            }
            if let Some(company) = item["contact"]["company"].as_str() {
                record.company = Some(company.to_owned());
            }
            if let Some(province) = item["province"].as_str() {
                record.province = Some(province.to_owned());
            }
            Ok((email, id))
        }
    }

    /// The calls of the contact commands: one contact at a time.
    fn contact_call(&mut self, method: &str, body: &Value, now: u64) -> Value {
        let email = body["email"].as_str().unwrap_or_default().trim().to_ascii_lowercase();
        let done = |id: &str| {
            object(vec![("success", true.into()), ("message", Value::Array(vec![])), ("contactId", id.into())])
        };
        match method {
            "contact/upsert" => match self.upsert_one(body, now) {
                Ok((_, id)) => done(&id),
                Err(message) => {
                    object(vec![("success", false.into()), ("message", Value::Array(vec![message.into()]))])
                }
            },
            "contact/hasContact" => match self.store.get(&email) {
                Some(record) => {
                    let mut answer = done(&record.id.clone());
                    if let Value::Object(map) = &mut answer {
                        map.insert("result".into(), true.into());
                    }
                    answer
                }
                None => {
                    object(vec![("success", true.into()), ("message", Value::Array(vec![])), ("result", false.into())])
                }
            },
            "contact/delete" => {
                if let Some(record) = self.store.remove(&email) {
                    self.ids.remove(&record.id);
                }
                object(vec![("success", true.into()), ("message", Value::Array(vec![]))])
            }
            "contact/optout" | "contact/phoneoptout" => match self.store.get_mut(&email) {
                Some(record) => {
                    if method == "contact/optout" {
                        record.opted_out = true;
                    } else {
                        record.phone_opted_out = true;
                    }
                    let id = record.id.clone();
                    done(&id)
                }
                None => {
                    object(vec![("success", false.into()), ("message", Value::Array(vec!["Contact not found".into()]))])
                }
            },
            other => panic!("a method the commands do not call: {other}"),
        }
    }

    /// `contact/export/data`: a job that prepares, in a while, the file of the tagged contacts
    /// with their data and consents, as they are now.
    fn export(&mut self, body: &Value, rng: &mut Rng, now: u64) -> Value {
        assert_eq!(body["contacts"][0]["value"].as_str(), Some("DYNAMICS365"), "the engine's contacts");
        let entries: Vec<Value> = self
            .store
            .values()
            .filter(|r| r.tagged)
            .map(|r| {
                let consents: Vec<Value> = r
                    .consents
                    .iter()
                    .map(|(name, given)| {
                        object(vec![
                            ("consentName", name.clone().into()),
                            ("consentAccept", (*given).into()),
                            ("optOut", (!given).into()),
                            ("agreementDate", r.modified_on.into()),
                        ])
                    })
                    .collect();
                let data = object(vec![
                    ("email", r.email.clone().into()),
                    ("name", r.name.clone().into()),
                    ("optedOut", r.opted_out.into()),
                    ("optedOutPhone", r.phone_opted_out.into()),
                ]);
                let parts = object(vec![("contactData", data), ("consents", Value::Array(consents))]);
                object(vec![(r.id.as_str(), parts)])
            })
            .collect();
        let id = (1000 + self.exports.len()).to_string();
        // Mostly ready within two minutes; now and then after twenty.
        let delay = if rng.chance(50) { 20 * 60_000 } else { rng.below(120_000) };
        let ready_at = if self.never_ready { u64::MAX } else { now + delay };
        self.status_asked.insert(id.clone(), vec![now]);
        self.exports.insert(id.clone(), (ready_at, Value::Array(entries).to_string()));
        object(vec![
            ("success", true.into()),
            ("message", Value::Array(vec![])),
            ("requestId", id.parse::<u64>().unwrap().into()),
        ])
    }

    /// A download of an export file: its parts (cut anywhere), and how it ended; `true` when it
    /// stalled (the host gives up after its idle timeout).
    pub(crate) fn download(
        &mut self,
        url: &str,
        rng: &mut Rng,
    ) -> (Vec<Vec<u8>>, Result<HttpResponse, TransportFailure>, bool) {
        let id = url.rsplit('/').next().and_then(|f| f.strip_suffix(".json")).expect("a file address");
        let text = self.exports.get(id).map(|(_, text)| text.clone()).expect("a file SALESmanago handed out");
        let hiccup = self.file_hiccups.pop().or_else(|| rng.chance(self.faults.server_error).then_some(503));
        if let Some(status) = hiccup {
            // The file's server speaks plain HTTP: no envelope, a `Retry-After` with a 429.
            let retry_after = (status == 429).then(|| "2".to_owned());
            return (Vec::new(), Ok(HttpResponse { date: None, status, retry_after, body: String::new() }), false);
        }
        let bytes = match self.broken_files {
            Some(true) => b"<html><body>502 Bad Gateway</body></html>".to_vec(),
            Some(false) => text.as_bytes()[..text.len() / 2].to_vec(),
            None => text.into_bytes(),
        };
        let mut parts = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let most = if rng.chance(100) { 8 } else { 65_536 };
            let size = 1 + rng.below(most) as usize;
            let end = (at + size).min(bytes.len());
            parts.push(bytes[at..end].to_vec());
            at = end;
        }
        // The connection drops or stalls partway.
        if rng.chance(self.faults.timeout) && !parts.is_empty() {
            let kept = rng.below(parts.len() as u64) as usize;
            parts.truncate(kept);
            let stalled = rng.below(2) == 0;
            let failure = if stalled { TransportFailure::Timeout } else { TransportFailure::Network };
            return (parts, Err(failure), stalled);
        }
        (parts, Ok(HttpResponse { date: None, status: 200, retry_after: None, body: String::new() }), false)
    }
}
