//! Dataverse's webhook into the relay, over real sockets: each event in the documented shape
//! (the core's fixtures) reaches a stand-in for SALESmanago as the engine would send it, a
//! repeated delivery does nothing twice, the integration's own write-back never travels back,
//! and the answers are those Dataverse acts on (503 to retry, 400 to record a failure).

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_relay::keys::{new_key, StoredKey};
use salesmanago_relay::Config;
use support::{serve, spawn_relay};

const UPDATE: &str = include_str!("../../src/core/dataverse/event_samples/update.json");
const DELETE: &str = include_str!("../../src/core/dataverse/event_samples/delete.json");

/// The calls SALESmanago received, and whether it answers 500.
#[derive(Clone, Default)]
struct Salesmanago {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    failing: Arc<Mutex<bool>>,
    /// How long it takes to answer (ms).
    slow: Arc<Mutex<u64>>,
}

async fn salesmanago(state: Salesmanago) -> SocketAddr {
    let api = move |axum::extract::Path(method): axum::extract::Path<String>, body: Bytes| {
        let state = state.clone();
        async move {
            let slow = *state.slow.lock().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
            if *state.failing.lock().unwrap() {
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new());
            }
            let value: Value = json::from_str(std::str::from_utf8(&body).unwrap()).unwrap();
            // A batch upsert answers each contact's id by its e-mail.
            let ids: Vec<String> = value["upsertDetails"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["contact"]["email"].as_str())
                .map(|email| format!(r#""{email}":"sm-1""#))
                .collect();
            state.calls.lock().unwrap().push((method, value));
            // A batch holding a contact SALESmanago refuses is refused as a whole.
            if ids.iter().any(|id| id.contains("refused")) {
                return (
                    axum::http::StatusCode::OK,
                    r#"{"success":false,"message":["refused@example.com: not valid"]}"#.to_owned(),
                );
            }
            let answer = format!(
                r#"{{"success":true,"message":[],"contactId":"sm-1","contactIds":{{{}}},"result":null}}"#,
                ids.join(",")
            );
            (axum::http::StatusCode::OK, answer)
        }
    };
    serve(Router::new().route("/api/{*method}", post(api))).await
}

fn config(sm: SocketAddr, webhook: &StoredKey, extra: &[(&str, &str)]) -> Config {
    let (_, browser) = new_key("browser").unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("SALESMANAGO_CLIENT_ID".into(), "cid".into()),
        ("SALESMANAGO_API_SECRET".into(), "secret".into()),
        ("SALESMANAGO_OWNER".into(), "owner@example.com".into()),
        ("SALESMANAGO_ENDPOINT".into(), format!("http://{sm}")),
        ("RELAY_ALLOWED_ORIGINS".into(), "https://contoso.crm4.dynamics.com".into()),
        ("RELAY_KEYS".into(), browser.text()),
        ("RELAY_WEBHOOK_KEYS".into(), webhook.text()),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Config::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

async fn deliver(relay: SocketAddr, key: Option<&str>, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("http://{relay}/dataverse/webhook")).body(body.to_owned());
    if let Some(key) = key {
        request = request.header("x-relay-webhook-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_event_reaches_salesmanago_once_as_the_engine_would_send_it() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(config(sm, &stored, &[("RELAY_APP_USER", "{00000000-0000-0000-0000-0000000000AA}")])).await;
    let calls = || sm_state.calls.lock().unwrap().clone();

    assert_eq!(deliver(relay, None, UPDATE, &[]).await.0, 401, "no key");
    assert_eq!(deliver(relay, Some(&key.replace("dataverse.", "dataverse.0")), UPDATE, &[]).await.0, 401);

    // An update: the contact goes as the engine sends it, the opt-out the request set with it.
    let (status, said) = deliver(relay, Some(&key), UPDATE, &[]).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    let sent = calls();
    assert_eq!(sent.len(), 1);
    let (method, body) = &sent[0];
    assert_eq!(method, "contact/batchupsert");
    let detail = &body["upsertDetails"][0];
    assert_eq!(detail["contact"]["email"].as_str(), Some("jan.kowalski@example.com"));
    assert_eq!(detail["forceOptOut"].as_bool(), Some(true));
    assert_eq!(detail["tags"][0].as_str(), Some("DYNAMICS365"));
    assert_eq!(body["owner"].as_str(), Some("owner@example.com"), "signed by the relay");

    // Delivered again (Dataverse retried): nothing is sent twice.
    assert_eq!(deliver(relay, Some(&key), UPDATE, &[]).await.1["done"].as_str(), Some("repeated"));
    assert_eq!(calls().len(), 1);

    // A delete, with the key as WebhookKey authentication sends it.
    let response = reqwest::Client::new()
        .post(format!("http://{relay}/dataverse/webhook?code={key}"))
        .body(DELETE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (method, body) = calls().last().cloned().unwrap();
    assert_eq!((method.as_str(), body["email"].as_str()), ("contact/delete", Some("jan.kowalski@example.com")));

    // The integration's own write-back, and a payload cut for size.
    let own = UPDATE
        .replace("5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b", "00000000-0000-0000-0000-0000000000aa")
        .replace("91c2e0aa", "91c2e0ab");
    assert_eq!(deliver(relay, Some(&key), &own, &[]).await.1["done"].as_str(), Some("ignored"));
    let cut = UPDATE.replace("91c2e0aa", "91c2e0ac");
    let (status, said) = deliver(relay, Some(&key), &cut, &[("x-ms-dynamics-msg-size-exceeded", "true")]).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("skipped")));
    assert_eq!(calls().len(), 2, "neither went to SALESmanago");

    // SALESmanago failing: 503, so Dataverse tries once more; a body that is no event: 400.
    *sm_state.failing.lock().unwrap() = true;
    // A newer change (a change no newer than what went is not sent again).
    let again = UPDATE.replace("91c2e0aa", "91c2e0ad").replace("Date(1506384247000)", "Date(1506384248000)");
    assert_eq!(deliver(relay, Some(&key), &again, &[]).await.0, 503);
    *sm_state.failing.lock().unwrap() = false;
    assert_eq!(deliver(relay, Some(&key), &again, &[]).await.0, 200, "the retry goes through");
    assert_eq!(deliver(relay, Some(&key), "{}", &[]).await.0, 400);
}

#[tokio::test]
async fn with_opt_out_on_delete_a_deleted_contact_is_opted_out_of_both_channels() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(config(sm, &stored, &[("RELAY_ON_DELETE", "optout")])).await;
    assert_eq!(deliver(relay, Some(&key), DELETE, &[]).await.0, 200);
    let methods: Vec<String> = sm_state.calls.lock().unwrap().iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(methods, ["contact/optout", "contact/phoneoptout"]);
}

/// The relay's settings for the org stand-in at `address` (and the application user's id).
fn org_vars(address: SocketAddr, app_user: Option<&str>) -> Vec<(String, String)> {
    let url = format!("http://{address}");
    let mut vars = vec![
        ("DATAVERSE_TOKEN_URL".to_owned(), format!("{url}/tenant/oauth2/v2.0/token")),
        ("DATAVERSE_URL".to_owned(), url),
        ("DATAVERSE_CLIENT_ID".to_owned(), "app-1".to_owned()),
        ("DATAVERSE_CLIENT_SECRET".to_owned(), "app-secret".to_owned()),
    ];
    if let Some(user) = app_user {
        vars.push(("RELAY_APP_USER".to_owned(), user.to_owned()));
    }
    vars
}

fn borrowed(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Dataverse as the relay's application user sees it: Entra ID's token endpoint and the Web API
/// of one contact, recording what was asked and written.
#[derive(Clone, Default)]
struct Org {
    requests: Arc<Mutex<Vec<String>>>,
    patches: Arc<Mutex<Vec<Value>>>,
    /// The integration record's settings (`new_optoutondelete`, `new_webhooks`).
    record: Arc<Mutex<(bool, bool)>>,
}

async fn org(state: Org) -> SocketAddr {
    let token = {
        let state = state.clone();
        move |body: Bytes| {
            let state = state.clone();
            async move {
                let form = String::from_utf8_lossy(&body).into_owned();
                assert!(
                    form.contains("grant_type=client_credentials") && form.contains("client_secret=app-secret"),
                    "{form}"
                );
                assert!(form.contains("scope=http%3A%2F%2F127.0.0.1"), "the org's .default scope: {form}");
                state.requests.lock().unwrap().push("token".into());
                r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t-1"}"#
            }
        }
    };
    let contact = {
        let state = state.clone();
        move |method: axum::http::Method, uri: axum::http::Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                assert_eq!(headers["authorization"], "Bearer t-1");
                if uri.path().ends_with("/new_salesmanagointegrations") {
                    state.requests.lock().unwrap().push("record".into());
                    let (opt_out, webhooks) = *state.record.lock().unwrap();
                    let row = format!(r#"{{"value":[{{"new_optoutondelete":{opt_out},"new_webhooks":{webhooks}}}]}}"#);
                    return (axum::http::StatusCode::OK, row);
                }
                state.requests.lock().unwrap().push(method.to_string());
                if method == axum::http::Method::PATCH {
                    assert_eq!(headers["if-match"], "*", "never creates a contact");
                    state.patches.lock().unwrap().push(json::from_str(std::str::from_utf8(&body).unwrap()).unwrap());
                    return (axum::http::StatusCode::NO_CONTENT, String::new());
                }
                let row = r#"{"contactid":"2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10","emailaddress1":"jan.kowalski@example.com","fullname":"Jan Kowalski","donotbulkemail":false}"#;
                (axum::http::StatusCode::OK, row.to_owned())
            }
        }
    };
    let batch = {
        let state = state.clone();
        move |headers: axum::http::HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                assert_eq!(headers["authorization"], "Bearer t-1");
                state.requests.lock().unwrap().push("PATCH".into());
                let (answer, patches) = batch_answer(&headers, &body);
                state.patches.lock().unwrap().extend(patches.into_iter().map(|(_, p)| p));
                answer
            }
        }
    };
    let router = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/api/data/v9.2/$batch", post(batch))
        .route("/api/data/v9.2/{row}", axum::routing::get(contact.clone()).patch(contact));
    serve(router).await
}

#[tokio::test]
async fn with_dataverse_access_a_cut_event_is_read_back_and_the_status_written_back() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let org_state = Org::default();
    *org_state.record.lock().unwrap() = (false, true);
    let dataverse = org(org_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let vars = org_vars(dataverse, None);
    let relay = spawn_relay(config(sm, &stored, &borrowed(&vars))).await;
    let (status, said) = deliver(relay, Some(&key), UPDATE, &[("x-ms-dynamics-msg-size-exceeded", "true")]).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("done")), "{said}");
    // The write-back follows the answer, in order, from the relay's writer.
    for _ in 0..200 {
        if org_state.requests.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        *org_state.requests.lock().unwrap(),
        ["token", "record", "GET", "PATCH"],
        "one token, the record's settings, read back, written back"
    );
    let sent = sm_state.calls.lock().unwrap().clone();
    assert_eq!(
        sent[0].1["upsertDetails"][0]["contact"]["name"].as_str(),
        Some("Jan Kowalski"),
        "the contact as read back"
    );
    let patch = org_state.patches.lock().unwrap()[0].clone();
    assert_eq!(patch["new_salesmanagoid"].as_str(), Some("sm-1"));
    assert_eq!(patch["new_salesmanagosyncstatus"].as_u64(), Some(100_000_000), "Synced");
    // The next event uses the token it holds.
    let next = UPDATE.replace("91c2e0aa", "91c2e0ae");
    assert_eq!(deliver(relay, Some(&key), &next, &[]).await.0, 200);
    assert_eq!(org_state.requests.lock().unwrap().iter().filter(|r| *r == "token").count(), 1);
}

#[tokio::test]
async fn the_integration_record_says_whether_to_act_and_how_to_remove() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let org_state = Org::default();
    *org_state.record.lock().unwrap() = (true, true);
    let dataverse = org(org_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let vars = org_vars(dataverse, None);
    let relay = spawn_relay(config(sm, &stored, &borrowed(&vars))).await;
    // "On delete, only opt out" on the record, though RELAY_ON_DELETE is unset.
    assert_eq!(deliver(relay, Some(&key), DELETE, &[]).await.0, 200);
    let methods: Vec<String> = sm_state.calls.lock().unwrap().iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(methods, ["contact/optout", "contact/phoneoptout"]);

    // Webhooks off on the record (read again after a minute; a new relay here): nothing is sent.
    *org_state.record.lock().unwrap() = (false, false);
    let relay = spawn_relay(config(sm, &stored, &borrowed(&vars))).await;
    let (status, said) = deliver(relay, Some(&key), UPDATE, &[]).await;
    assert_eq!((status, said["done"].as_str()), (200, Some("ignored")), "{said}");
    assert!(said["reason"].as_str().unwrap().contains("webhooks are off"));
    assert_eq!(sm_state.calls.lock().unwrap().len(), 2);
}

/// A `$batch` of PATCHes as Dataverse takes it: each part's path and body, and an answer of
/// `204` for each.
fn batch_answer(headers: &axum::http::HeaderMap, body: &Bytes) -> (axum::response::Response, Vec<(String, Value)>) {
    use axum::response::IntoResponse;
    let content_type = headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("multipart/mixed; boundary="), "{content_type}");
    let text = std::str::from_utf8(body).unwrap();
    let mut patches = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("PATCH ") else { continue };
        let path = rest.trim_end_matches(" HTTP/1.1").rsplit("/api/data/v9.2/").next().unwrap().to_owned();
        let json_line = lines.by_ref().find(|l| l.starts_with('{')).unwrap();
        patches.push((path, json::from_str(json_line).unwrap()));
    }
    let mut answer = String::new();
    for _ in &patches {
        answer.push_str("--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    }
    answer.push_str("--batchresponse_1--\r\n");
    let response =
        (axum::http::StatusCode::OK, [("content-type", "multipart/mixed; boundary=batchresponse_1")], answer)
            .into_response();
    (response, patches)
}

/// An org whose contacts changed while the relay could not hear of it: the integration record
/// (its watermark), two pages of changed contacts, and what the relay wrote.
async fn changed_org(patches: Arc<Mutex<Vec<(String, Value)>>>) -> SocketAddr {
    let batch_patches = patches.clone();
    let token = || async { r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t-1"}"# };
    let api = move |method: axum::http::Method, uri: axum::http::Uri, headers: axum::http::HeaderMap, body: Bytes| {
        let patches = patches.clone();
        async move {
            let path = uri.path().trim_start_matches("/api/data/v9.2/").to_owned();
            let query = uri.query().unwrap_or_default().to_owned();
            if method == axum::http::Method::PATCH {
                patches.lock().unwrap().push((path, json::from_str(std::str::from_utf8(&body).unwrap()).unwrap()));
                return (axum::http::StatusCode::NO_CONTENT, String::new());
            }
            let body = match (path.as_str(), query.contains("skiptoken")) {
                ("new_salesmanagointegrations", _) => r#"{"value":[{"new_salesmanagointegrationid":"rec-1","new_catchupwatermark":null}]}"#.to_owned(),
                ("contacts", false) => {
                    assert!(query.contains("modifiedon%20ge") || query.contains("modifiedon ge"), "{query}");
                    format!(
                        r#"{{"value":[
                          {{"contactid":"c-1","emailaddress1":"anna@example.com","modifiedon":"2026-11-30T10:00:00Z","_modifiedby_value":"u-9"}},
                          {{"contactid":"c-2","emailaddress1":"bob@example.com","modifiedon":"2026-11-30T10:01:00Z","_modifiedby_value":"00000000-0000-0000-0000-0000000000aa"}}],
                          "@odata.nextLink":"http://{}/api/data/v9.2/contacts?$skiptoken=2"}}"#,
                        headers["host"].to_str().unwrap()
                    )
                }
                ("contacts", true) => r#"{"value":[{"contactid":"c-3","emailaddress1":"not an e-mail","modifiedon":"2026-11-30T10:02:00Z","_modifiedby_value":"u-9"}]}"#.to_owned(),
                other => panic!("an unexpected request: {other:?}"),
            };
            (axum::http::StatusCode::OK, body)
        }
    };
    let batch = move |headers: axum::http::HeaderMap, body: Bytes| {
        let patches = batch_patches.clone();
        async move {
            let (answer, written) = batch_answer(&headers, &body);
            patches.lock().unwrap().extend(written);
            answer
        }
    };
    let router = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/api/data/v9.2/$batch", post(batch))
        .route("/api/data/v9.2/{*rest}", axum::routing::get(api.clone()).patch(api));
    serve(router).await
}

#[tokio::test]
async fn the_catch_up_sends_what_changed_and_moves_its_watermark_only_past_what_went() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let patches = Arc::new(Mutex::new(Vec::new()));
    let dataverse = changed_org(patches.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let vars = org_vars(dataverse, Some("00000000-0000-0000-0000-0000000000aa"));
    let relay = spawn_relay(config(sm, &stored, &borrowed(&vars))).await;
    let catch_up = || {
        reqwest::Client::new()
            .post(format!("http://{relay}/dataverse/catch-up"))
            .header("x-relay-webhook-key", key.clone())
            .send()
    };
    assert_eq!(
        reqwest::Client::new().post(format!("http://{relay}/dataverse/catch-up")).send().await.unwrap().status(),
        401
    );

    // SALESmanago down: nothing goes, and the watermark stays before the first contact.
    *sm_state.failing.lock().unwrap() = true;
    let done: Value = json::from_str(&catch_up().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(
        (done["sent"].as_u64(), done["failed"].as_u64(), done["watermark"].as_str()),
        (Some(0), Some(1), None),
        "{done}"
    );
    assert!(patches.lock().unwrap().iter().all(|(path, _)| !path.starts_with("new_salesmanagointegrations")));

    // Back up: anna goes, bob is the integration's own write-back, the third has no e-mail.
    *sm_state.failing.lock().unwrap() = false;
    let done: Value = json::from_str(&catch_up().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(
        (done["sent"].as_u64(), done["skipped"].as_u64(), done["failed"].as_u64()),
        (Some(1), Some(2), Some(0)),
        "{done}"
    );
    let sent: Vec<String> = sm_state
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b["upsertDetails"][0]["contact"]["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sent, ["anna@example.com"]);
    let record = patches
        .lock()
        .unwrap()
        .iter()
        .find(|(path, _)| path == "new_salesmanagointegrations(rec-1)")
        .cloned()
        .expect("the watermark written");
    assert_eq!(record.1["new_catchupwatermark"].as_str(), Some("1796032920000"), "the newest contact passed: 10:02");
}

/// The fixture's update, as the change of another contact (`n`) at another time.
fn update_of(n: usize, modified_ms: u64, first_name: &str) -> String {
    UPDATE
        .replace("2b0f6c1e-7a31-4c55-9d1a-0c6f1e2a9b10", &format!("2b0f6c1e-7a31-4c55-9d1a-{n:012}"))
        .replace("jan.kowalski@example.com", &format!("contact{n}@example.com"))
        .replace(
            "91c2e0aa-5b7d-4e0b-8f0e-3d2c1b0a9f88",
            &format!("91c2e0aa-5b7d-4e0b-8f0e-{:012}", n * 1000 + modified_ms as usize % 1000),
        )
        .replace("Date(1506384247000)", &format!("Date({modified_ms})"))
        .replace("Jan Kowalski", &format!("{first_name} Kowalski"))
}

#[tokio::test]
async fn a_burst_goes_as_batch_upserts_and_each_contact_as_its_newest_change() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(config(sm, &stored, &[("RELAY_BURST_MS", "300")])).await;

    // 60 deliveries at once, and contact 0 changed twice, its older change arriving last.
    let mut bodies: Vec<String> = (1..=60).map(|n| update_of(n, 1_506_384_247_000, "Jan")).collect();
    bodies.insert(0, update_of(0, 1_506_384_249_000, "Newer"));
    bodies.push(update_of(0, 1_506_384_248_000, "Older"));
    let answers = futures_util::future::join_all(bodies.iter().map(|body| deliver(relay, Some(&key), body, &[]))).await;
    assert!(answers.iter().all(|(status, said)| *status == 200 && said["done"] == "done"), "{answers:?}");
    let calls = sm_state.calls.lock().unwrap().clone();
    assert!(calls.iter().all(|(method, _)| method == "contact/batchupsert"));
    assert!(calls.len() <= 3, "{} calls for one burst", calls.len());
    let details: Vec<Value> =
        calls.iter().flat_map(|(_, body)| body["upsertDetails"].as_array().cloned().unwrap_or_default()).collect();
    assert_eq!(details.len(), 61, "each contact once");
    let zero: Vec<&Value> = details.iter().filter(|d| d["contact"]["email"] == "contact0@example.com").collect();
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0]["contact"]["name"].as_str().map(|n| n.starts_with("Newer")), Some(true), "{}", zero[0]);

    // The older change delivered again, alone: it is stale, and nothing is sent.
    let late = update_of(0, 1_506_384_248_000, "Older").replace("-4e0b-8f0e-", "-4e0b-8f0f-");
    let (status, said) = deliver(relay, Some(&key), &late, &[]).await;
    assert_eq!(
        (status, said["reason"].as_str()),
        (200, Some("this change of the contact, or a newer one, went already"))
    );
    assert_eq!(sm_state.calls.lock().unwrap().len(), calls.len());
}

#[tokio::test]
async fn a_batch_refused_as_a_whole_fails_only_the_contact_refused() {
    let sm_state = Salesmanago::default();
    let sm = salesmanago(sm_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(config(sm, &stored, &[("RELAY_BURST_MS", "300")])).await;
    let mut bodies: Vec<String> = (1..=5).map(|n| update_of(n, 1_506_384_247_000, "Jan")).collect();
    bodies[3] = bodies[3].replace("contact4@example.com", "refused@example.com");
    let answers = futures_util::future::join_all(bodies.iter().map(|body| deliver(relay, Some(&key), body, &[]))).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 400, 200], "{answers:?}");
}

#[tokio::test]
async fn a_delivery_is_answered_in_time_and_its_repeat_finds_the_contact_gone() {
    let sm_state = Salesmanago::default();
    *sm_state.slow.lock().unwrap() = 800;
    let sm = salesmanago(sm_state.clone()).await;
    let (key, stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(config(sm, &stored, &[("RELAY_ANSWER_WITHIN_MS", "200")])).await;
    // The post-image carries the row's version, as the registered images ask.
    let update = UPDATE.replace(
        r#"{"key": "fullname", "value": "Jan Kowalski"},"#,
        r#"{"key": "fullname", "value": "Jan Kowalski"}, {"key": "versionnumber", "value": 5},"#,
    );
    assert!(update.contains("versionnumber"));
    let started = std::time::Instant::now();
    let (status, said) = deliver(relay, Some(&key), &update, &[]).await;
    assert_eq!(status, 503, "past its time, a delivery is answered to be tried again: {said}");
    assert!(started.elapsed() < std::time::Duration::from_millis(700), "answered before SALESmanago did");
    // SALESmanago answers meanwhile; Dataverse's one retry finds the change gone.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(sm_state.calls.lock().unwrap().len(), 1);
    let (status, said) = deliver(relay, Some(&key), &update, &[]).await;
    assert_eq!(
        (status, said["reason"].as_str()),
        (200, Some("this change of the contact, or a newer one, went already"))
    );
    assert_eq!(sm_state.calls.lock().unwrap().len(), 1, "not sent twice");
}
