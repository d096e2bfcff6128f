//! Dataverse's webhook into the relay, over real sockets, against a stand-in org
//! (`support/org.rs`: contacts with row versions, change tracking, the integration record with
//! its ETag, the metadata, `$batch`) and a stand-in SALESmanago that keeps what it is sent. Each event in the
//! documented shape (the core's fixtures) reaches SALESmanago once, as the engine would send
//! the contact as Dataverse holds it now; a repeated delivery does nothing twice, the
//! integration's own write-back never travels back, a deleted contact is removed unless
//! another contact holds its e-mail, the catch-up runs under the export's lease, and the
//! answers are those Dataverse acts on (503 to retry, 400 to record a failure).

mod support;

#[path = "support/org.rs"]
mod org;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use org::Org;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, Job as JobColumns};
use salesmanago_dynamics::core::job::lease::{Holder, User};
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Credentials};
use salesmanago_relay::keys::{new_key, StoredKey};
use salesmanago_relay::Config;
use serde_json::{json, Value};
use support::{serve, spawn_relay, spawn_watched};

const UPDATE: &str = include_str!("../../src/core/dataverse/event_samples/update.json");
const DELETE: &str = include_str!("../../src/core/dataverse/event_samples/delete.json");

/// The fixtures' contact.
const JAN: &str = "2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10";
const JAN_EMAIL: &str = "jan.kowalski@example.com";
/// The application user the relay writes back as.
const APP_USER: &str = "00000000-0000-0000-0000-0000000000aa";

const SYNCED: u64 = 100_000_000;
const FAILED: u64 = 100_000_001;
const SKIPPED: u64 = 100_000_002;

const STALE: &str = "this change of the contact, or a newer one, went already";

/// Contact `n`'s id.
fn id(n: u64) -> String {
    format!("2b0f6c1e-7a31-4c55-9d1a-{n:012}")
}

/// Delivery `n`'s operation id.
fn op(n: u64) -> String {
    format!("91c2e0aa-5b7d-4e0b-8f0e-{n:012}")
}

// ---------------------------------------------------------------------------------------------
// SALESmanago
// ---------------------------------------------------------------------------------------------

/// A contact as SALESmanago holds it.
#[derive(Debug, Clone, Default)]
struct Held {
    id: String,
    name: Option<String>,
    external_id: Option<String>,
    newsletter_opt_out: bool,
    sms_opt_out: bool,
}

#[derive(Default)]
struct SmState {
    /// Each call's method and body, in order (a refused or failed one too).
    calls: Vec<(String, Value)>,
    /// Contacts by lower-case e-mail.
    contacts: BTreeMap<String, Held>,
    /// E-mails it refuses: a batch holding one is refused as a whole.
    refuse: Vec<String>,
    /// The next so many calls answer 500.
    fail_next: u32,
    /// How long it takes to answer (ms).
    slow_ms: u64,
    ids: u64,
}

impl SmState {
    fn hold(&mut self, email: &str) -> &mut Held {
        let email = email.to_ascii_lowercase();
        if !self.contacts.contains_key(&email) {
            self.ids += 1;
            let held = Held { id: format!("sm-{}", self.ids), ..Held::default() };
            self.contacts.insert(email.clone(), held);
        }
        self.contacts.get_mut(&email).unwrap()
    }
}

/// SALESmanago's API: batch upserts, hasContact, delete, opt-outs, signed as the relay signs.
#[derive(Clone, Default)]
struct Salesmanago(Arc<Mutex<SmState>>);

impl Salesmanago {
    fn lock(&self) -> MutexGuard<'_, SmState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn serve(&self) -> SocketAddr {
        serve(Router::new().route("/api/{*method}", post(salesmanago_api)).with_state(self.clone())).await
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.lock().calls.clone()
    }

    fn methods(&self) -> Vec<String> {
        self.lock().calls.iter().map(|(m, _)| m.clone()).collect()
    }

    /// Every contact sent in a batch upsert, in order (those of refused batches too).
    fn upserted(&self) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|(m, _)| m == "contact/batchupsert")
            .flat_map(|(_, body)| body["upsertDetails"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn held(&self, email: &str) -> Option<Held> {
        self.lock().contacts.get(email).cloned()
    }

    /// A contact SALESmanago has already.
    fn has(&self, email: &str) {
        self.lock().hold(email);
    }
}

async fn salesmanago_api(
    State(sm): State<Salesmanago>,
    Path(method): Path<String>,
    body: Bytes,
) -> (StatusCode, String) {
    let slow = sm.lock().slow_ms;
    tokio::time::sleep(Duration::from_millis(slow)).await;
    let mut sm = sm.lock();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, String::new());
    };
    sm.calls.push((method.clone(), body.clone()));
    if sm.fail_next > 0 {
        sm.fail_next -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, String::new());
    }
    // Signed with the relay's account: the client id and the secret's signature of the key.
    let credentials = Credentials {
        client_id: "cid".into(),
        api_secret: ApiSecret::new("secret"),
        owner: "owner@example.com".into(),
    };
    let signed = body["clientId"] == "cid"
        && body["apiKey"].as_str().is_some_and(|key| body["sha"] == credentials.sign(key).as_str());
    let owned = !method.starts_with("contact/") || method.contains("opt") || body["owner"] == "owner@example.com";
    if !signed || !owned {
        return (StatusCode::OK, json!({"success": false, "message": ["Not authenticated"]}).to_string());
    }
    let email = body["email"].as_str().unwrap_or_default().to_ascii_lowercase();
    let answer = match method.as_str() {
        "contact/batchupsert" => {
            let details = body["upsertDetails"].as_array().cloned().unwrap_or_default();
            let emails: Vec<String> = details
                .iter()
                .map(|d| d["contact"]["email"].as_str().unwrap_or_default().to_ascii_lowercase())
                .collect();
            if let Some(refused) = emails.iter().find(|e| sm.refuse.contains(e)) {
                json!({"success": false, "message": [format!("{refused}: not valid")]})
            } else {
                let mut ids = serde_json::Map::new();
                let mut messages = Vec::new();
                for (detail, email) in details.iter().zip(&emails) {
                    // `newEmail` renames the contact found by `contact.email`, keeping its id;
                    // an address another contact has is refused.
                    let mut email = email.clone();
                    if let Some(new) = detail["newEmail"].as_str().map(str::to_ascii_lowercase) {
                        if sm.contacts.contains_key(&new) {
                            messages.push(format!("{email}: Contact {new} already exists"));
                            continue;
                        }
                        if let Some(held) = sm.contacts.remove(&email) {
                            sm.contacts.insert(new.clone(), held);
                        }
                        email = new;
                    }
                    let held = sm.hold(&email);
                    held.name = detail["contact"]["name"].as_str().map(str::to_owned);
                    held.external_id = detail["contact"]["externalId"].as_str().map(str::to_owned);
                    if detail["forceOptOut"] == true {
                        held.newsletter_opt_out = true;
                    }
                    if detail["forceOptIn"] == true {
                        held.newsletter_opt_out = false;
                    }
                    ids.insert(email.clone(), held.id.clone().into());
                }
                json!({"success": true, "message": messages, "contactIds": ids})
            }
        }
        "contact/basic" => {
            let emails: Vec<String> = body["email"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
                .map(str::to_ascii_lowercase)
                .collect();
            let found: Vec<Value> = emails
                .iter()
                .filter_map(|e| sm.contacts.get(e).map(|held| json!({"contactId": held.id, "email": e})))
                .collect();
            json!({"success": true, "message": [], "contacts": found})
        }
        // Whole cards by id, as SALESmanago keeps them (with its opt-outs).
        "contact/listById" => {
            let ids: Vec<&str> = body["contactId"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let found: Vec<Value> = sm
                .contacts
                .iter()
                .filter(|(_, held)| ids.contains(&held.id.as_str()))
                .map(|(email, held)| {
                    json!({"id": held.id, "email": email, "name": held.name, "optedOut": held.newsletter_opt_out,
                        "optedOutPhone": held.sms_opt_out, "modifiedOn": 1_800_000_000_000_u64})
                })
                .collect();
            json!({"success": true, "message": [], "contacts": found})
        }
        "contact/hasContact" => match sm.contacts.get(&email) {
            Some(held) => json!({"success": true, "message": [], "result": true, "contactId": held.id}),
            None => json!({"success": true, "message": [], "result": false, "contactId": null}),
        },
        "contact/delete" => match sm.contacts.remove(&email) {
            Some(_) => json!({"success": true, "message": []}),
            None => json!({"success": false, "message": ["Contact not found"]}),
        },
        "contact/optout" | "contact/phoneoptout" => match sm.contacts.get_mut(&email) {
            Some(held) => {
                if method == "contact/optout" {
                    held.newsletter_opt_out = true;
                } else {
                    held.sms_opt_out = true;
                }
                json!({"success": true, "message": [], "contactId": held.id})
            }
            None => json!({"success": false, "message": ["Contact not found"]}),
        },
        _ => return (StatusCode::NOT_FOUND, String::new()),
    };
    (StatusCode::OK, answer.to_string())
}

// ---------------------------------------------------------------------------------------------
// The relay, the org and SALESmanago together
// ---------------------------------------------------------------------------------------------

struct World {
    sm: Salesmanago,
    org: Org,
    /// The webhook key, as Dataverse shows it.
    key: String,
    stored: StoredKey,
    sm_address: SocketAddr,
    org_address: SocketAddr,
    /// Each relay started, with the count of its work after answers.
    after: std::sync::Mutex<Vec<(SocketAddr, salesmanago_relay::After)>>,
}

impl World {
    async fn new() -> World {
        World::with(Org::new()).await
    }

    async fn with(org: Org) -> World {
        let sm = Salesmanago::default();
        let sm_address = sm.serve().await;
        let org_address = org.serve().await;
        let (key, stored) = new_key("dataverse").unwrap();
        World { sm, org, key, stored, sm_address, org_address, after: Default::default() }
    }

    /// The relay's settings: its SALESmanago account, the webhook key, `extra`, and, when
    /// `dataverse`, the org as its application user (the periodic catch-up off).
    fn config(&self, dataverse: bool, extra: &[(&str, &str)]) -> Config {
        let (_, browser) = new_key("browser").unwrap();
        let mut vars: Vec<(String, String)> = vec![
            ("SALESMANAGO_CLIENT_ID".into(), "cid".into()),
            ("SALESMANAGO_API_SECRET".into(), "secret".into()),
            ("SALESMANAGO_OWNER".into(), "owner@example.com".into()),
            ("SALESMANAGO_ENDPOINT".into(), format!("http://{}", self.sm_address)),
            ("RELAY_ALLOWED_ORIGINS".into(), "https://contoso.crm4.dynamics.com".into()),
            ("RELAY_KEYS".into(), browser.text()),
            ("RELAY_WEBHOOK_KEYS".into(), self.stored.text()),
            ("RELAY_APP_USER".into(), format!("{{{}}}", APP_USER.to_ascii_uppercase())),
            ("RELAY_CATCH_UP_MINUTES".into(), "0".into()),
        ];
        if dataverse {
            let url = format!("http://{}", self.org_address);
            vars.push(("DATAVERSE_TOKEN_URL".into(), format!("{url}/tenant/oauth2/v2.0/token")));
            vars.push(("DATAVERSE_URL".into(), url));
            vars.push(("DATAVERSE_CLIENT_ID".into(), "app-1".into()));
            vars.push(("DATAVERSE_CLIENT_SECRET".into(), "app-secret".into()));
        }
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Config::from_vars(|name| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
    }

    /// A relay instance with Dataverse access (its own memory: each call makes another).
    async fn relay(&self, extra: &[(&str, &str)]) -> SocketAddr {
        let (address, after) = spawn_watched(self.config(true, extra)).await;
        self.after.lock().unwrap().push((address, after));
        address
    }

    /// Waits for `relay`'s work after its answers (a burst's write-back and recheck), so that
    /// Dynamics is looked at as the burst left it.
    async fn finished(&self, relay: SocketAddr) {
        let after = self.after.lock().unwrap().iter().find(|(a, _)| *a == relay).map(|(_, after)| after.clone());
        if let Some(after) = after {
            tokio::time::timeout(Duration::from_secs(30), after.finished()).await.expect("the relay's work ends");
        }
    }

    async fn deliver(&self, relay: SocketAddr, body: &str) -> (u16, Value) {
        self.deliver_with(relay, body, &[]).await
    }

    async fn deliver_with(&self, relay: SocketAddr, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let answer = deliver(relay, Some(&self.key), body, headers).await;
        self.finished(relay).await;
        answer
    }

    async fn catch_up(&self, relay: SocketAddr) -> (u16, Value) {
        let response = client()
            .post(format!("http://{relay}/dataverse/catch-up"))
            .header("x-relay-webhook-key", &self.key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }

    /// Contact `id`'s column as the org holds it.
    fn column(&self, id: &str, column: &str) -> Value {
        self.org.contact(id).and_then(|row| row.get(column).cloned()).unwrap_or(Value::Null)
    }

    /// The org was asked nothing a real one would refuse.
    fn assert_faithful(&self) {
        assert_eq!(self.org.problems(), Vec::<String>::new(), "{:#?}", self.org.lines());
    }
}

/// An HTTP client that gives up after 30 s (a relay that never answers fails the test).
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn deliver(relay: SocketAddr, key: Option<&str>, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = client().post(format!("http://{relay}/dataverse/webhook")).body(body.to_owned());
    if let Some(key) = key {
        request = request.header("x-relay-webhook-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

/// Sets `key` in an `Entity`'s attributes.
fn set_attribute(entity: &mut Value, key: &str, value: Value) {
    let attributes = entity["Attributes"].as_array_mut().unwrap();
    match attributes.iter_mut().find(|a| a["key"] == key) {
        Some(attribute) => attribute["value"] = value,
        None => attributes.push(json!({"key": key, "value": value})),
    }
}

/// The fixture's Update, as delivery `op` of contact `id` whose post-image holds `image` (a
/// `versionnumber` among them, as the registered images carry it).
fn update(id: &str, op: &str, image: Value) -> String {
    let mut event: Value = serde_json::from_str(UPDATE).unwrap();
    event["PrimaryEntityId"] = id.into();
    event["OperationId"] = op.into();
    let target = &mut event["InputParameters"][0]["value"];
    target["Id"] = id.into();
    set_attribute(target, "contactid", id.into());
    let after = &mut event["PostEntityImages"][0]["value"];
    after["Id"] = id.into();
    set_attribute(after, "contactid", id.into());
    for (key, value) in image.as_object().unwrap() {
        set_attribute(after, key, value.clone());
    }
    event.to_string()
}

/// [`update`] whose request set no consent-like column: a change that can be stale (one that
/// set a consent is never stale, so that the user's grant goes whatever the order of delivery;
/// see `a_consent_set_in_an_older_change_goes_even_after_a_newer_one_went`).
fn update_plain(id: &str, op: &str, image: Value) -> String {
    let mut event: Value = serde_json::from_str(&update(id, op, image)).unwrap();
    let attributes = event["InputParameters"][0]["value"]["Attributes"].as_array_mut().unwrap();
    attributes.retain(|a| a["key"] != contact::DO_NOT_BULK_EMAIL);
    event.to_string()
}

/// The fixture's Delete, as delivery `op` of contact `id` whose pre-image holds `email`.
fn delete(id: &str, op: &str, email: &str) -> String {
    let mut event: Value = serde_json::from_str(DELETE).unwrap();
    event["PrimaryEntityId"] = id.into();
    event["OperationId"] = op.into();
    event["InputParameters"][0]["value"]["Id"] = id.into();
    let before = &mut event["PreEntityImages"][0]["value"];
    before["Id"] = id.into();
    set_attribute(before, "contactid", id.into());
    set_attribute(before, "emailaddress1", email.into());
    event.to_string()
}

/// Waits, a bounded while, for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 3 s");
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_event_reaches_salesmanago_once_as_the_engine_would_send_it() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(
        JAN,
        json!({"firstname": "Jan", "lastname": "Kowalski", "emailaddress1": JAN_EMAIL, "donotbulkemail": true}),
    );
    let relay = world.relay(&[]).await;

    assert_eq!(deliver(relay, None, UPDATE, &[]).await.0, 401, "no key");
    assert_eq!(deliver(relay, Some(&world.key.replace("dataverse.", "dataverse.0")), UPDATE, &[]).await.0, 401);
    assert!(world.sm.calls().is_empty());

    // The contact changed again after the event was raised: the row goes as Dataverse holds it
    // now, not as the event's image shows it; the opt-out the request set goes with it.
    org.put_contact(JAN, json!({"lastname": "Nowak"}));
    let (status, said) = world.deliver(relay, UPDATE).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let sent = world.sm.calls();
    assert_eq!(sent.len(), 1);
    let (method, body) = &sent[0];
    assert_eq!(method, "contact/batchupsert");
    assert_eq!(body["owner"], "owner@example.com", "signed by the relay");
    let detail = &body["upsertDetails"][0];
    assert_eq!(detail["contact"]["email"], JAN_EMAIL);
    assert_eq!(detail["contact"]["name"], "Jan Nowak", "as it is now, not the image's Jan Kowalski");
    assert_eq!(detail["contact"]["externalId"], JAN);
    assert_eq!(detail["forceOptOut"], true);
    assert_eq!(detail["tags"], json!(["DYNAMICS365"]));
    // Its status written back on the contact.
    let sm_id = world.sm.held(JAN_EMAIL).unwrap().id;
    assert_eq!(world.column(JAN, contact::SYNC_STATUS), SYNCED);
    assert_eq!(world.column(JAN, contact::SALESMANAGO_ID), sm_id.as_str());
    assert_eq!(world.column(JAN, contact::LAST_ERROR), Value::Null);

    // Delivered again (Dataverse retried): nothing is sent twice.
    let (status, said) = world.deliver(relay, UPDATE).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("repeated")));
    assert_eq!(world.sm.calls().len(), 1);

    // The integration's own write-back never travels back.
    let mut own: Value = serde_json::from_str(&update(JAN, &op(2), json!({}))).unwrap();
    own["InitiatingUserId"] = APP_USER.into();
    let (status, said) = world.deliver(relay, &own.to_string()).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("ignored")), "{said}");
    assert_eq!(world.sm.calls().len(), 1);

    // A contact deleted since its change: nothing to read, nothing to send.
    let (status, said) =
        world.deliver(relay, &update(&id(9), &op(9), json!({"emailaddress1": "gone@example.com"}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert!(said["reason"].as_str().unwrap().contains("no longer exists"), "{said}");
    assert_eq!(world.sm.calls().len(), 1);

    // SALESmanago failing once: the job tries again, and the change goes.
    org.put_contact(JAN, json!({"firstname": "Janek"}));
    world.sm.lock().fail_next = 1;
    let (status, said) = world.deliver(relay, &update(JAN, &op(3), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods(), ["contact/batchupsert"; 3]);
    assert_eq!(world.sm.held(JAN_EMAIL).unwrap().name.as_deref(), Some("Janek Nowak"));

    // A body that is no event.
    assert_eq!(world.deliver(relay, "{}").await.0, 400);

    // Deleted in Dynamics, delivered with the key as WebhookKey authentication sends it.
    org.delete_contact(JAN);
    let response = client()
        .post(format!("http://{relay}/dataverse/webhook?code={}", world.key))
        .body(DELETE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(world.sm.methods()[3..], ["contact/hasContact", "contact/delete"]);
    assert!(world.sm.held(JAN_EMAIL).is_none(), "deleted in SALESmanago");
    world.assert_faithful();
}

#[tokio::test]
async fn with_opt_out_on_delete_a_deleted_contact_is_opted_out_of_both_channels() {
    let world = World::new().await;
    world.org.set_record(integration::OPT_OUT_ON_DELETE, true.into());
    world.sm.has(JAN_EMAIL);
    let relay = world.relay(&[]).await;
    let (status, said) = world.deliver(relay, DELETE).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods(), ["contact/hasContact", "contact/optout", "contact/phoneoptout"]);
    let held = world.sm.held(JAN_EMAIL).expect("kept in SALESmanago, opted out");
    assert!(held.newsletter_opt_out && held.sms_opt_out, "{held:?}");
    world.assert_faithful();
}

#[tokio::test]
async fn with_dataverse_access_a_cut_event_is_read_back_and_the_status_written_back() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(JAN, json!({"firstname": "Jan", "lastname": "Kowalski", "emailaddress1": JAN_EMAIL}));
    let relay = world.relay(&[]).await;
    // Cut for size: no parameters, no images.
    let cut = json!({"MessageName": "Update", "PrimaryEntityName": "contact", "PrimaryEntityId": format!("{{{}}}", JAN.to_ascii_uppercase()),
        "OperationId": op(1), "Depth": 1, "InitiatingUserId": "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"});
    let (status, said) =
        world.deliver_with(relay, &cut.to_string(), &[("x-ms-dynamics-msg-size-exceeded", "true")]).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let sent = world.sm.upserted();
    assert_eq!((sent.len(), sent[0]["contact"]["name"].as_str()), (1, Some("Jan Kowalski")), "as read back");

    // The consent columns, the record's settings and the contact read back, its status written.
    let requests: Vec<_> = org.requests().into_iter().filter(|r| !r.in_batch).collect();
    let mut asked: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    // The consent columns first; then the record and the contact, side by side.
    asked[1..3].sort();
    assert_eq!(
        asked,
        [
            "GET EntityDefinitions(LogicalName='contact')/Attributes",
            "GET contacts",
            "GET new_salesmanagointegrations",
            "POST $batch",
            // The recheck: read again once sent, and the same.
            "GET contacts"
        ],
        "{:#?}",
        org.lines()
    );
    assert!(requests.iter().all(|r| r.status == 200), "{:#?}", org.lines());
    let record = requests.iter().find(|r| r.path == "new_salesmanagointegrations").unwrap();
    assert_eq!(record.param("$top"), Some("2"), "a second record is noticed");
    assert!(record.param("$select").unwrap().split(',').any(|c| c == integration::WEBHOOKS));
    let read = requests.iter().find(|r| r.path == "contacts").unwrap();
    assert_eq!(
        read.param("$filter"),
        Some(format!("Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=[\"{JAN}\"])").as_str())
    );
    let columns: Vec<&str> = read.param("$select").unwrap().split(',').collect();
    assert!(columns.contains(&"new_consent_marketing"), "the consent column found in the metadata");
    assert!(!columns.contains(&"new_consent_notes"), "a text column is no consent");
    assert_eq!(read.header("prefer"), Some("odata.maxpagesize=400"));
    let batch = requests.iter().find(|r| r.path == "$batch").unwrap();
    assert_eq!(batch.header("prefer"), Some("odata.continue-on-error"));
    let patches: Vec<_> = org.requests().into_iter().filter(|r| r.in_batch).collect();
    assert_eq!(patches.len(), 1);
    assert_eq!((patches[0].method.as_str(), patches[0].path.clone()), ("PATCH", format!("contacts({JAN})")));
    assert_eq!((patches[0].header("if-match"), patches[0].status), (Some("*"), 204), "never creates a contact");
    assert_eq!(world.column(JAN, contact::SYNC_STATUS), SYNCED);
    assert_eq!(world.column(JAN, contact::SALESMANAGO_ID), world.sm.held(JAN_EMAIL).unwrap().id.as_str());

    // The next event uses the token the relay holds.
    assert_eq!(world.deliver(relay, &update(JAN, &op(2), json!({}))).await.0, 200);
    assert_eq!(org.tokens(), 1);
    world.assert_faithful();
}

#[tokio::test]
async fn the_integration_record_says_whether_to_act_and_how_to_remove() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(JAN, json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    org.set_record(integration::WEBHOOKS, false.into());
    let relay = world.relay(&[]).await;

    // Webhooks off on the record: nothing is sent or written (the contact's row, read beside
    // the record, is dropped).
    let (status, said) = world.deliver(relay, UPDATE).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("ignored")), "{said}");
    assert!(said["reason"].as_str().unwrap().contains("webhooks are off"), "{said}");
    assert!(world.sm.calls().is_empty());
    assert!(org.requests().iter().all(|r| r.method == "GET"), "{:#?}", org.lines());
    assert_eq!(world.column(JAN, contact::SYNC_STATUS), Value::Null);

    // Turned on: the same relay follows the record at once (it reads it for every burst).
    org.set_record(integration::WEBHOOKS, true.into());
    let (status, said) = world.deliver(relay, &update(JAN, &op(2), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods(), ["contact/batchupsert"]);

    // How to remove: deleted, as the record says by default; then only opted out.
    for email in ["anna@example.com", "bob@example.com"] {
        world.sm.has(email);
    }
    assert_eq!(world.deliver(relay, &delete(&id(1), &op(3), "anna@example.com")).await.0, 200);
    assert!(world.sm.held("anna@example.com").is_none());
    org.set_record(integration::OPT_OUT_ON_DELETE, true.into());
    assert_eq!(world.deliver(relay, &delete(&id(2), &op(4), "bob@example.com")).await.0, 200);
    let bob = world.sm.held("bob@example.com").expect("opted out, not deleted");
    assert!(bob.newsletter_opt_out && bob.sms_opt_out);
    assert_eq!(
        world.sm.methods()[1..],
        ["contact/hasContact", "contact/delete", "contact/hasContact", "contact/optout", "contact/phoneoptout"]
    );

    // Dataverse unavailable: 503, so Dataverse delivers once more.
    org.set_down(true);
    let (status, said) = world.deliver(relay, &update(JAN, &op(5), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (503, Some("failed")), "{said}");
    org.set_down(false);
    let (status, said) = world.deliver(relay, &update(JAN, &op(5), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "the retry goes: {said}");
    world.assert_faithful();
}

/// SALESmanago's rule call for the contact `sm_id` (`email`), with Basic credentials `auth`.
async fn rule_call(relay: SocketAddr, auth: Option<(&str, &str)>, body: &str) -> (u16, Value, Option<String>) {
    let mut request = client().post(format!("http://{relay}/salesmanago/rule")).body(body.to_owned());
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.header("content-type", "application/json").send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null), challenge)
}

#[tokio::test]
async fn a_rule_call_brings_salesmanagos_opt_out_to_the_dynamics_contact_once() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(JAN, json!({"firstname": "Jan", "lastname": "Kowalski", "emailaddress1": JAN_EMAIL}));
    world.sm.has(JAN_EMAIL);
    let sm_id = world.sm.held(JAN_EMAIL).unwrap().id;
    world.sm.lock().contacts.get_mut(JAN_EMAIL).unwrap().newsletter_opt_out = true;
    let (key, stored) = new_key("salesmanago").unwrap();
    let (user, password) = key.split_once('.').unwrap();
    let relay = world.relay(&[("RELAY_RULE_KEYS", &stored.text())]).await;
    let call = json!({"id": "ff9f1f0d-ffb7-4a00-9d84-999d2657f303", "name": "Opted out", "contactId": sm_id,
        "description": "", "email": JAN_EMAIL, "phone": "", "company": ""})
    .to_string();

    let (status, said, _) = rule_call(relay, Some((user, password)), &call).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.column(JAN, "donotbulkemail"), json!(true));
    assert_eq!(world.column(JAN, "new_salesmanagoid"), json!(sm_id));
    // SALESmanago was only read: nothing goes back to it.
    assert_eq!(world.sm.methods(), ["contact/listById"]);

    // The same call again (or a late one) finds nothing that differs, and writes nothing.
    let writes = |org: &Org| org.requests().iter().filter(|r| r.method != "GET").count();
    let before = writes(org);
    let (status, said, _) = rule_call(relay, Some((user, password)), &call).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(writes(org), before, "{:#?}", org.lines());

    // Known by its e-mail alone (no contactId): looked up by e-mail.
    world.sm.lock().contacts.get_mut(JAN_EMAIL).unwrap().sms_opt_out = true;
    let by_email = json!({"id": "r2", "name": "SMS opt-out", "contactId": null, "email": JAN_EMAIL}).to_string();
    let (status, said, _) = rule_call(relay, Some((user, password)), &by_email).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods()[2..], ["contact/basic"]);
    world.assert_faithful();
}

#[tokio::test]
async fn a_rule_call_without_credentials_or_a_contact_is_refused_with_its_reason() {
    let world = World::new().await;
    let (key, stored) = new_key("salesmanago").unwrap();
    let (user, password) = key.split_once('.').unwrap();
    let relay = world.relay(&[("RELAY_RULE_KEYS", &stored.text())]).await;
    let call = json!({"id": "r1", "contactId": "sm-1", "email": JAN_EMAIL}).to_string();
    for auth in [None, Some((user, "wrong")), Some(("other", password)), Some((user, ""))] {
        let (status, said, challenge) = rule_call(relay, auth, &call).await;
        assert_eq!((status, said["done"].as_str()), (401, Some("refused")), "{auth:?}: {said}");
        assert_eq!(challenge.as_deref(), Some(r#"Basic realm="salesmanago-relay""#));
    }
    // The webhook's key is not a rule's credential.
    let (webhook_user, webhook_secret) = world.key.split_once('.').unwrap();
    assert_eq!(rule_call(relay, Some((webhook_user, webhook_secret)), &call).await.0, 401);
    for (body, reason) in [
        ("contactId=sm-1", "not a JSON object"),
        (r#"{"id":"r1","name":"Opted out"}"#, "neither contactId nor email names a contact"),
        (r#"{"contactId":1}"#, "the field contactId is not text"),
    ] {
        let (status, said, _) = rule_call(relay, Some((user, password)), body).await;
        assert_eq!((status, said["done"].as_str()), (400, Some("refused")), "{body}: {said}");
        assert!(said["reason"].as_str().unwrap().contains(reason), "{body}: {said}");
    }
    assert!(world.sm.calls().is_empty());
    world.assert_faithful();
}

#[tokio::test]
async fn a_throttled_record_read_is_tried_again_as_the_core_plans_it() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(JAN, json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    let relay = world.relay(&[]).await;
    // Service protection refuses the burst's read of the record twice, asking for a second
    // each time: the third try (`RetryPolicy::delivery`) reads it, and the delivery goes.
    org.throttle_record(2);
    let (status, said) = world.deliver(relay, &update(JAN, &op(1), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods(), ["contact/batchupsert"]);
    // Refused more often than the delivery can wait: 503, so Dataverse delivers once more.
    org.throttle_record(3);
    let (status, said) = world.deliver(relay, &update(JAN, &op(2), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (503, Some("failed")), "{said}");
    world.assert_faithful();
}

#[tokio::test]
async fn deleting_one_of_two_contacts_that_share_an_email_keeps_the_salesmanago_contact() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(&id(1), json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    org.put_contact(&id(2), json!({"firstname": "Jan (duplicate)", "emailaddress1": "Jan.Kowalski@Example.com"}));
    world.sm.has(JAN_EMAIL);
    let relay = world.relay(&[]).await;

    org.delete_contact(&id(1));
    let (status, said) = world.deliver(relay, &delete(&id(1), &op(1), JAN_EMAIL)).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("kept")), "{said}");
    assert!(said["reason"].as_str().unwrap().contains("another Dynamics contact holds the e-mail"), "{said}");
    assert!(world.sm.calls().is_empty(), "SALESmanago is not touched: {:?}", world.sm.methods());
    assert!(world.sm.held(JAN_EMAIL).is_some());
    // The sharing read: who else holds the e-mail (Dataverse compares text without case).
    let read = org.requests().into_iter().find(|r| r.path == "contacts").expect("the sharing read");
    assert_eq!(
        read.param("$filter"),
        Some(
            format!("Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[\"{JAN_EMAIL}\"])")
                .as_str()
        )
    );
    assert_eq!((read.param("$select"), read.param("$top"), read.status), (Some("contactid"), Some("2"), 200));
    world.assert_faithful();
}

#[tokio::test]
async fn a_delete_whose_email_nobody_else_holds_deletes_it() {
    let world = World::new().await;
    let org = &world.org;
    org.put_contact(&id(1), json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    org.put_contact(&id(2), json!({"firstname": "Anna", "emailaddress1": "anna@example.com"}));
    world.sm.has(JAN_EMAIL);
    world.sm.has("anna@example.com");
    let relay = world.relay(&[]).await;

    org.delete_contact(&id(1));
    let (status, said) = world.deliver(relay, &delete(&id(1), &op(1), JAN_EMAIL)).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods(), ["contact/hasContact", "contact/delete"]);
    assert!(world.sm.held(JAN_EMAIL).is_none());
    assert!(world.sm.held("anna@example.com").is_some(), "another e-mail stays");

    // A contact SALESmanago never had: asked, nothing deleted.
    org.delete_contact(&id(2));
    let (status, said) = world.deliver(relay, &delete(&id(3), &op(2), "nobody@example.com")).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    assert_eq!(world.sm.methods()[2..], ["contact/hasContact"]);
    world.assert_faithful();
}

#[tokio::test]
async fn the_catch_up_sends_what_changed_and_moves_its_watermark_only_when_nothing_failed() {
    // Dataverse's clock runs three hours ahead of this machine's: the watermark, the lease and
    // `modifiedon` are all on Dataverse's.
    let world = World::with(Org::new().with_clock_offset(3 * 3_600_000)).await;
    let org = &world.org;
    let now = org.now_ms();
    let watermark = now - 3_600_000;
    org.set_record(integration::CATCH_UP_WATERMARK, watermark.to_string().into());
    let (anna, bob, carol, dora) = (id(1), id(2), id(3), id(4));
    org.put_contact(&anna, json!({"firstname": "Anna", "emailaddress1": "anna@example.com"}));
    org.backdate(&anna, now - 10 * 60_000);
    org.put_contact(&bob, json!({"firstname": "Bob", "emailaddress1": "bob@example.com"}));
    org.backdate(&bob, now - 2 * 3_600_000);
    org.put_contact(&carol, json!({"firstname": "Carol", "emailaddress1": "not an e-mail"}));
    org.backdate(&carol, now - 30 * 60_000);
    org.put_contact(&dora, json!({"firstname": "Dora", "emailaddress1": "refused@example.com"}));
    org.backdate(&dora, now - 20 * 60_000);
    world.sm.lock().refuse.push("refused@example.com".into());
    org.set_page_cap(2);
    let relay = world.relay(&[]).await;
    let no_key = client().post(format!("http://{relay}/dataverse/catch-up")).send().await.unwrap();
    assert_eq!(no_key.status().as_u16(), 401);
    let lease_column = JobColumns::Export.lease_column();
    let lease = || Holder::from_text(org.record()[lease_column].as_str().unwrap_or_default());

    // SALESmanago refuses Dora for good: the rest go, Dora is listed failed with the reason, and
    // the watermark moves all the same (only a failure that may pass holds it back: the
    // simulation's export_changes checks that).
    let first = org.now_ms();
    let (status, done) = world.catch_up(relay).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["sent"].as_u64(), done["skipped"].as_u64(), done["failed"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{done}"
    );
    let moved: u64 = done["watermark"].as_str().unwrap().parse().unwrap();
    assert!(moved > watermark && moved + 2_000 >= first, "{moved} moved from {watermark}");
    assert_eq!(org.record()[integration::CATCH_UP_WATERMARK], moved.to_string());
    assert!(world.sm.held("anna@example.com").is_some());
    assert!(world.sm.upserted().iter().all(|d| d["contact"]["email"] != "bob@example.com"), "Bob did not change");
    assert_eq!(world.column(&anna, contact::SYNC_STATUS), SYNCED);
    assert_eq!(world.column(&carol, contact::SYNC_STATUS), SKIPPED);
    assert_eq!(world.column(&dora, contact::SYNC_STATUS), FAILED);
    assert!(world.column(&dora, contact::LAST_ERROR).as_str().unwrap().contains("refused@example.com"));
    assert_eq!(world.column(&bob, contact::SYNC_STATUS), Value::Null);
    // Read a page at a time (the org pages by two here).
    let reads = org.requests().iter().filter(|r| r.path == "contacts").count();
    assert!(reads >= 2, "{:#?}", org.lines());
    // Under the export's lease: read, taken with the ETag read, released with the ETag its
    // write answered; on Dataverse's clock.
    let guarded: Vec<_> =
        org.requests().into_iter().filter(|r| r.path.starts_with("new_salesmanagointegrations(")).collect();
    let steps: Vec<(&str, u16)> = guarded.iter().map(|r| (r.method.as_str(), r.status)).collect();
    assert_eq!(steps, [("GET", 200), ("PATCH", 200), ("PATCH", 200)], "{:#?}", org.lines());
    let etag_of =
        |answer: &str| serde_json::from_str::<Value>(answer).unwrap()["@odata.etag"].as_str().unwrap().to_owned();
    assert_eq!(guarded[1].header("if-match"), Some(etag_of(&guarded[0].answer).as_str()));
    assert_eq!(guarded[2].header("if-match"), Some(etag_of(&guarded[1].answer).as_str()));
    assert!(guarded[1..].iter().all(|r| r.header("prefer") == Some("return=representation")));
    let taken: Value = serde_json::from_str(&guarded[1].body).unwrap();
    let taken = Holder::from_text(taken[lease_column].as_str().unwrap()).unwrap();
    assert!(!taken.released);
    let user = taken.user.id.trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase();
    assert_eq!((user.as_str(), taken.user.name.as_str()), (APP_USER, "SALESmanago relay"));
    assert!(taken.heartbeat_ms.abs_diff(org.now_ms()) < 60_000, "on Dataverse's clock: {taken:?}");
    let released = lease().unwrap();
    assert!(released.released && released.token == taken.token, "{released:?}");
    assert!(org.record()[JobColumns::Export.last_result_column()].as_str().is_some());
    assert!(org.record()[JobColumns::Export.last_run_column()].as_str().is_some());

    // SALESmanago takes Dora now: nothing fails, and the watermark moves to the run's start.
    world.sm.lock().refuse.clear();
    let started = org.now_ms();
    let (status, done) = world.catch_up(relay).await;
    assert_eq!((status, done["failed"].as_u64()), (200, Some(0)), "{done}");
    let moved: u64 = done["watermark"].as_str().unwrap().parse().unwrap();
    assert!(moved + 2_000 >= started && moved <= org.now_ms() + 1_000, "{moved} on Dataverse's clock, from {started}");
    assert_eq!(org.record()[integration::CATCH_UP_WATERMARK], moved.to_string());
    assert_eq!(world.column(&dora, contact::SYNC_STATUS), SYNCED);
    assert!(world.sm.held("refused@example.com").is_some());

    // Another run alive holds the lease (a browser's export): the catch-up does not start.
    let live = Holder {
        token: "browser-run".into(),
        user: User { id: "u-7".into(), name: "Piotr".into() },
        since_ms: org.now_ms() - 60_000,
        heartbeat_ms: org.now_ms() - 30_000,
        done: 10,
        total: Some(100),
        released: false,
    };
    org.set_record(lease_column, live.to_text().into());
    let calls = world.sm.calls().len();
    let (status, said) = world.catch_up(relay).await;
    assert_eq!(status, 503, "{said}");
    assert!(said["reason"].as_str().unwrap().contains("Piotr"), "{said}");
    assert_eq!(world.sm.calls().len(), calls);
    assert_eq!(lease(), Some(live.clone()));
    // Silent longer than a lease lives, on Dataverse's clock (on this machine's, its heartbeat
    // is three hours ahead): taken over.
    let silent = Holder { heartbeat_ms: org.now_ms() - 4 * 60_000, ..live };
    org.set_record(lease_column, silent.to_text().into());
    let (status, said) = world.catch_up(relay).await;
    assert_eq!(status, 200, "{said}");
    assert!(lease().is_some_and(|l| l.released && l.user.name == "SALESmanago relay"));

    // Another writer changes the record between the lease's read and its write: 412, read
    // again, written.
    org.interfere_once();
    let (status, said) = world.catch_up(relay).await;
    assert_eq!(status, 200, "{said}");
    assert!(org.requests().iter().any(|r| r.path.starts_with("new_salesmanagointegrations(") && r.status == 412));
    assert!(lease().is_some_and(|l| l.released && l.user.name == "SALESmanago relay"));
    world.assert_faithful();
}

#[tokio::test]
async fn a_burst_goes_as_batch_upserts_one_per_contact_as_dataverse_holds_it() {
    let world = World::new().await;
    let org = &world.org;
    let relay = world.relay(&[("RELAY_BURST_MS", "300")]).await;
    let mut versions = Vec::new();
    for n in 0..=60 {
        let email = format!("contact{n}@example.com");
        versions.push(
            org.put_contact(&id(n), json!({"firstname": "Jan", "lastname": format!("K{n}"), "emailaddress1": email})),
        );
    }
    // Contact 0 changed twice: its older change's delivery arrives last.
    let older = org.put_contact(&id(0), json!({"firstname": "Older"}));
    let newer = org.put_contact(&id(0), json!({"firstname": "Newer"}));
    let image = |version: u64, first: &str| json!({"versionnumber": version, "firstname": first, "emailaddress1": "contact0@example.com"});
    let mut bodies = vec![update_plain(&id(0), &op(1000), image(newer, "Newer"))];
    for n in 1..=60 {
        let email = format!("contact{n}@example.com");
        bodies.push(update_plain(
            &id(n),
            &op(n),
            json!({"versionnumber": versions[n as usize], "emailaddress1": email}),
        ));
    }
    bodies.push(update_plain(&id(0), &op(1001), image(older, "Older")));

    let answers = futures_util::future::join_all(bodies.iter().map(|body| world.deliver(relay, body))).await;
    assert!(answers.iter().all(|(status, said)| *status == 200 && said["done"] == "done"), "{answers:?}");
    let calls = world.sm.calls();
    assert!(calls.iter().all(|(method, _)| method == "contact/batchupsert"));
    assert!(calls.len() <= 3, "{} calls for one burst", calls.len());
    let details = world.sm.upserted();
    assert_eq!(details.len(), 61, "each contact once");
    let zero: Vec<&Value> = details.iter().filter(|d| d["contact"]["email"] == "contact0@example.com").collect();
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0]["contact"]["name"], "Newer K0");
    assert!((0..=60).all(|n| world.column(&id(n), contact::SYNC_STATUS) == SYNCED));
    let batches = org.requests().iter().filter(|r| r.path == "$batch").count();
    assert!(batches <= 3, "{batches} write-backs for one burst");

    // The older change delivered again, alone: stale, so neither read nor sent.
    let reads = org.requests().iter().filter(|r| r.path == "contacts").count();
    let (status, said) = world.deliver(relay, &update_plain(&id(0), &op(1002), image(older, "Older"))).await;
    assert_eq!((status, said["reason"].as_str()), (200, Some(STALE)), "{said}");
    assert_eq!(world.sm.calls().len(), calls.len());
    assert_eq!(org.requests().iter().filter(|r| r.path == "contacts").count(), reads);
    world.assert_faithful();
}

#[tokio::test]
async fn a_changed_email_renames_the_salesmanago_contact_and_one_another_contact_has_is_refused() {
    let world = World::new().await;
    let org = &world.org;
    let relay = world.relay(&[]).await;
    org.put_contact(JAN, json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    let (status, said) = world.deliver(relay, &update(JAN, &op(1), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let sm_id = world.sm.held(JAN_EMAIL).unwrap().id;
    assert_eq!(world.column(JAN, contact::SALESMANAGO_EMAIL), JAN_EMAIL, "the address SALESmanago knows");

    // Changed in Dynamics: the contact SALESmanago knows by the old address is renamed.
    org.put_contact(JAN, json!({"emailaddress1": " Jan.Nowy@Example.com"}));
    let (status, said) = world.deliver(relay, &update(JAN, &op(2), json!({}))).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let renames: Vec<Value> = world.sm.upserted().into_iter().filter(|d| d["newEmail"].is_string()).collect();
    assert_eq!(renames.len(), 1, "{renames:?}");
    let detail = &renames[0];
    assert_eq!(
        (detail["contact"]["email"].as_str(), detail["newEmail"].as_str()),
        (Some(JAN_EMAIL), Some("jan.nowy@example.com"))
    );
    assert_eq!(world.sm.held("jan.nowy@example.com").map(|held| held.id), Some(sm_id.clone()), "the id kept");
    assert!(world.sm.held(JAN_EMAIL).is_none(), "nothing left behind");
    assert_eq!(world.column(JAN, contact::SALESMANAGO_ID), sm_id.as_str());
    assert_eq!(world.column(JAN, contact::SALESMANAGO_EMAIL), "jan.nowy@example.com");

    // To an address another SALESmanago contact has: refused, nothing merged.
    world.sm.has("taken@example.com");
    org.put_contact(JAN, json!({"emailaddress1": "taken@example.com"}));
    let (status, said) = world.deliver(relay, &update(JAN, &op(3), json!({}))).await;
    assert_ne!(status, 200, "{said}");
    let reason = world.column(JAN, contact::LAST_ERROR);
    assert!(
        reason.as_str().unwrap().contains("taken@example.com is already used by another SALESmanago contact"),
        "{reason}"
    );
    assert_eq!(world.column(JAN, contact::SYNC_STATUS), FAILED);
    assert_eq!(world.column(JAN, contact::SALESMANAGO_EMAIL), "jan.nowy@example.com");
    assert_eq!(world.sm.held("jan.nowy@example.com").map(|held| held.id), Some(sm_id.clone()));
    assert_ne!(world.sm.held("taken@example.com").map(|held| held.id), Some(sm_id));
    world.assert_faithful();
}

#[tokio::test]
async fn a_batch_refused_as_a_whole_fails_only_the_contact_refused() {
    let world = World::new().await;
    let relay = world.relay(&[("RELAY_BURST_MS", "300")]).await;
    let email = |n: u64| if n == 4 { "refused@example.com".to_owned() } else { format!("contact{n}@example.com") };
    for n in 1..=5 {
        world.org.put_contact(&id(n), json!({"firstname": "Jan", "emailaddress1": email(n)}));
    }
    world.sm.lock().refuse.push("refused@example.com".into());
    let bodies: Vec<String> = (1..=5).map(|n| update(&id(n), &op(n), json!({"emailaddress1": email(n)}))).collect();
    let answers = futures_util::future::join_all(bodies.iter().map(|body| world.deliver(relay, body))).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 503, 200], "{answers:?}");
    assert!(answers[3].1["reason"].as_str().unwrap().contains("refused@example.com"), "{answers:?}");
    for n in [1, 2, 3, 5] {
        assert_eq!(world.column(&id(n), contact::SYNC_STATUS), SYNCED, "contact {n}");
        assert!(world.sm.held(&email(n)).is_some());
    }
    assert_eq!(world.column(&id(4), contact::SYNC_STATUS), FAILED);
    assert!(world.column(&id(4), contact::LAST_ERROR).as_str().unwrap().contains("not valid"));
    assert!(world.sm.held("refused@example.com").is_none());
    // First all five together, refused; then halves, until the refused contact is alone.
    let first = &world.sm.calls()[0].1;
    assert_eq!(first["upsertDetails"].as_array().unwrap().len(), 5);
    world.assert_faithful();
}

#[tokio::test]
async fn a_delivery_is_answered_in_time_and_its_repeat_is_harmless() {
    let world = World::new().await;
    world.sm.lock().slow_ms = 800;
    let relay = world.relay(&[("RELAY_ANSWER_WITHIN_MS", "200")]).await;
    let version = world.org.put_contact(JAN, json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    let update = update_plain(JAN, &op(1), json!({"versionnumber": version}));
    let started = std::time::Instant::now();
    // Not waiting for the relay's work after its answer.
    let (status, said) = deliver(relay, Some(&world.key), &update, &[]).await;
    assert_eq!(status, 503, "past its time, a delivery is answered to be tried again: {said}");
    assert!(started.elapsed() < Duration::from_millis(700), "answered before SALESmanago did");
    // SALESmanago answers meanwhile, and the status is written back.
    eventually("the write-back", || world.column(JAN, contact::SYNC_STATUS) == SYNCED).await;
    assert_eq!(world.sm.calls().len(), 1);
    // Dataverse's one retry finds the change gone.
    let (status, said) = world.deliver(relay, &update).await;
    assert_eq!((status, said["done"].as_str(), said["reason"].as_str()), (200, Some("done"), Some(STALE)), "{said}");
    assert_eq!(world.sm.calls().len(), 1, "not sent twice");
    world.assert_faithful();
}

#[tokio::test]
async fn without_dataverse_access_deliveries_are_refused_naming_dataverse_url() {
    let world = World::new().await;
    world.org.put_contact(JAN, json!({"firstname": "Jan", "emailaddress1": JAN_EMAIL}));
    world.sm.has(JAN_EMAIL);
    let relay = spawn_relay(world.config(false, &[])).await;
    for body in [UPDATE, DELETE] {
        let (status, said) = world.deliver(relay, body).await;
        assert_eq!((status, said["done"].as_str()), (400, Some("refused")), "{said}");
        assert!(said["reason"].as_str().unwrap().contains("DATAVERSE_URL"), "{said}");
    }
    assert!(world.sm.calls().is_empty());
    assert!(world.org.requests().is_empty() && world.org.tokens() == 0);
    let (status, said) = world.catch_up(relay).await;
    assert_eq!((status, said["done"].as_str()), (502, Some("failed")), "{said}");
}

#[tokio::test]
async fn a_consent_set_in_an_older_change_goes_even_after_a_newer_one_went() {
    let world = World::new().await;
    let org = &world.org;
    // The user opts Jan out of the newsletter (the request sets `donotbulkemail`), then edits
    // the name; Dataverse delivers the name's change first.
    let older = org.put_contact(JAN, json!({"firstname": "Old", "emailaddress1": JAN_EMAIL, "donotbulkemail": true}));
    let older = update(JAN, &op(1), json!({"versionnumber": older, "firstname": "Old", "donotbulkemail": true}));
    let newer = org.put_contact(JAN, json!({"firstname": "New", "fullname": "New Name"}));
    let newer = update_plain(JAN, &op(2), json!({"versionnumber": newer, "firstname": "New", "fullname": "New Name"}));
    let relay = world.relay(&[]).await;
    assert_eq!(world.deliver(relay, &newer).await.1["done"], "done");
    let sent = world.sm.upserted().len();
    // The opt-out's own change comes after: not stale, the contact goes again as it is now.
    let (status, said) = world.deliver(relay, &older).await;
    assert_eq!((status, said["done"].as_str(), said["reason"].as_str()), (200, Some("done"), Some("")), "{said}");
    let upserted = world.sm.upserted();
    assert_eq!(upserted.len(), sent + 1, "sent again");
    assert_eq!(upserted[sent]["contact"]["name"], upserted[sent - 1]["contact"]["name"], "as the contact is now");
    assert_eq!(upserted[sent]["forceOptOut"], true, "the user's opt-out goes as theirs");
    world.assert_faithful();
}

#[tokio::test]
async fn an_older_delivery_never_overwrites_a_newer_change_on_any_relay_instance() {
    let world = World::new().await;
    let org = &world.org;
    let older = org.put_contact(JAN, json!({"firstname": "Old", "lastname": "Name", "emailaddress1": JAN_EMAIL}));
    let older = update_plain(JAN, &op(1), json!({"versionnumber": older, "firstname": "Old", "fullname": "Old Name"}));
    let newer = org.put_contact(JAN, json!({"firstname": "New"}));
    let newer = update_plain(JAN, &op(2), json!({"versionnumber": newer, "firstname": "New", "fullname": "New Name"}));
    // Two instances: each with its own memory, the same org and SALESmanago.
    let (first, second) = (world.relay(&[]).await, world.relay(&[]).await);

    assert_eq!(world.deliver(first, &newer).await.1["done"], "done");
    assert_eq!(world.sm.held(JAN_EMAIL).unwrap().name.as_deref(), Some("New Name"));
    // The older change arrives after it, at the instance that sent the newer: stale.
    let (status, said) = world.deliver(first, &older).await;
    assert_eq!((status, said["reason"].as_str()), (200, Some(STALE)), "{said}");
    // And at another instance, which never heard of the newer: it reads the contact as it is.
    let (status, said) = world.deliver(second, &older).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let names: Vec<Value> = world.sm.upserted().iter().map(|d| d["contact"]["name"].clone()).collect();
    assert!(names.len() >= 2 && names.iter().all(|n| n == "New Name"), "an older version was sent: {names:?}");
    assert_eq!(world.sm.held(JAN_EMAIL).unwrap().name.as_deref(), Some("New Name"));
    assert_eq!(org.contact(JAN).unwrap()["fullname"], "New Name");
    world.assert_faithful();
}

#[tokio::test]
async fn changes_of_a_contact_that_went_already_are_all_answered_done_together() {
    let world = World::new().await;
    let org = &world.org;
    let older = org.put_contact(JAN, json!({"firstname": "Old", "emailaddress1": JAN_EMAIL}));
    let newer = org.put_contact(JAN, json!({"firstname": "New"}));
    let relay = world.relay(&[("RELAY_BURST_MS", "300")]).await;
    assert_eq!(
        world.deliver(relay, &update_plain(JAN, &op(1), json!({"versionnumber": newer}))).await.1["done"],
        "done"
    );
    // Dataverse delivers both changes once more (its retry of each, after an answer was lost),
    // together: neither is newer than what went, so neither is read or sent, and both are
    // answered so that Dataverse does not try again.
    let again = [
        update_plain(JAN, &op(2), json!({"versionnumber": newer})),
        update_plain(JAN, &op(3), json!({"versionnumber": older})),
    ];
    let answers = futures_util::future::join_all(again.iter().map(|body| world.deliver(relay, body))).await;
    for (status, said) in &answers {
        assert_eq!(
            (*status, said["done"].as_str(), said["reason"].as_str()),
            (200, Some("done"), Some(STALE)),
            "{answers:?}"
        );
    }
    assert_eq!(world.sm.calls().len(), 1);
    world.assert_faithful();
}

#[tokio::test]
async fn an_email_with_characters_special_in_a_url_is_asked_about_as_it_is() {
    // Addresses may hold `+`, `&` and `#` (RFC 5322): the sharing read must find the other
    // contact holding the very same address, whatever the query string makes of them.
    let mut wrong = Vec::new();
    for (n, email) in [(1, "jan+news@example.com"), (3, "tom&jerry@example.com"), (5, "room#1@example.com")] {
        let world = World::new().await;
        let org = &world.org;
        org.put_contact(&id(n), json!({"firstname": "Jan", "emailaddress1": email}));
        org.put_contact(&id(n + 1), json!({"firstname": "Jan (duplicate)", "emailaddress1": email}));
        world.sm.has(email);
        let relay = world.relay(&[]).await;
        org.delete_contact(&id(n));
        let (status, said) = world.deliver(relay, &delete(&id(n), &op(n), email)).await;
        let read = org.requests().into_iter().find(|r| r.path == "contacts").map(|r| r.line()).unwrap_or_default();
        if (status, said["done"].as_str()) != (200, Some("kept")) || world.sm.held(email).is_none() {
            wrong.push(format!(
                "{email}: answered {status} {said}, SALESmanago {:?}; the org read {read}",
                world.sm.methods()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn the_catch_up_follows_dataverse_change_tracking_deletions_included() {
    let world = World::new().await;
    let org = &world.org;
    let (anna, bob) = (id(1), id(2));
    org.put_contact(&anna, json!({"firstname": "Anna", "emailaddress1": "anna@example.com"}));
    org.put_contact(&bob, json!({"firstname": "Bob", "emailaddress1": "bob@example.com"}));
    let relay = world.relay(&[]).await;
    let delta = || org.record().get(integration::CATCH_UP_DELTA).and_then(Value::as_str).map(str::to_owned);
    let reads = || org.requests().into_iter().filter(|r| r.path == "contacts").collect::<Vec<_>>();

    // The first run reads every contact, tracked, and keeps the link to what changes next.
    let (status, done) = world.catch_up(relay).await;
    assert_eq!((status, done["sent"].as_u64(), done["failed"].as_u64()), (200, Some(2), Some(0)), "{done}");
    let link = delta().expect("the delta link kept on the record");
    assert!(link.starts_with('?') && link.contains("$deltatoken="), "{link}");

    // While the relay heard nothing: Anna changed, Bob was deleted.
    org.put_contact(&anna, json!({"lastname": "Nowak"}));
    org.delete_contact(&bob);
    let before = reads().len();
    let (status, done) = world.catch_up(relay).await;
    assert_eq!((status, done["failed"].as_u64()), (200, Some(0)), "{done}");
    assert!(reads()[before..].iter().any(|r| r.param("$deltatoken").is_some()), "the link read: {:#?}", org.lines());
    assert_eq!(world.sm.held("anna@example.com").unwrap().name.as_deref(), Some("Anna Nowak"));
    assert!(world.sm.held("bob@example.com").is_none(), "Bob's deletion reached SALESmanago: {:?}", world.sm.methods());
    assert_ne!(delta(), Some(link.clone()), "the link moved");

    // A link kept longer than Dataverse keeps changes: refused, and everything is read again.
    let (kept, _) = link.split_once("$deltatoken=").unwrap();
    let expired = format!("{kept}$deltatoken=5%2101%2F01%2F2020%2000%3A00%3A00");
    org.set_record(integration::CATCH_UP_DELTA, expired.clone().into());
    let before = reads().len();
    let (status, done) = world.catch_up(relay).await;
    assert_eq!((status, done["failed"].as_u64()), (200, Some(0)), "{done}");
    let again = reads();
    assert_eq!(again[before].status, 400, "{:#?}", org.lines());
    assert!(again[before + 1..].iter().all(|r| r.status == 200 && r.param("$deltatoken").is_none()));
    // (Not "no 2020 in it": a link made in the hour 20 has "%2020", the encoded space before it.)
    assert!(delta().is_some_and(|d| d != expired && !d.contains("01%2F01%2F2020")), "a new link: {:?}", delta());

    // A contact table that does not track changes: read by modification time.
    org.set_tracking(false);
    org.put_contact(&anna, json!({"firstname": "Ania"}));
    let before = reads().len();
    let (status, done) = world.catch_up(relay).await;
    assert_eq!((status, done["failed"].as_u64()), (200, Some(0)), "{done}");
    assert!(reads()[before..].iter().any(|r| r.param("$filter").is_some_and(|f| f.starts_with("modifiedon ge "))));
    assert_eq!(world.sm.held("anna@example.com").unwrap().name.as_deref(), Some("Ania Nowak"));
    world.assert_faithful();
}
