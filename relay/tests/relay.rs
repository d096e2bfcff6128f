//! The relay over real sockets, between a client playing the browser and a stand-in for
//! SALESmanago that checks each signature: what is forwarded, what is refused and why, the
//! CORS headers, the files, the deep health check, and the log lines of the whole run.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Credentials};
use salesmanago_relay::keys::new_key;
use salesmanago_relay::Config;
use support::{serve, spawn_relay, Logs};

const SECRET: &str = "relay-test-secret-value";
const ORIGIN: &str = "https://contoso.crm4.dynamics.com";
const OWNER: &str = "owner@example.com";

/// What the stand-in received: each call's method and body.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// SALESmanago, checking each call's signature.
async fn salesmanago(seen: Seen) -> SocketAddr {
    let api = move |axum::extract::Path(method): axum::extract::Path<String>, body: Bytes| {
        let seen = seen.clone();
        async move {
            let value = json::from_str(std::str::from_utf8(&body).unwrap()).unwrap();
            let credentials =
                Credentials { client_id: "cid".into(), api_secret: ApiSecret::new(SECRET), owner: OWNER.into() };
            let api_key = value["apiKey"].as_str().unwrap_or_default();
            let signed = value["sha"].as_str() == Some(credentials.sign(api_key).as_str());
            seen.lock().unwrap().push((method.clone(), value.clone()));
            let port = value.get("requestId").and_then(Value::as_u64).unwrap_or(0);
            let (status, headers, body): (u16, Vec<(&str, String)>, String) = match method.as_str() {
                _ if !signed => (200, vec![], r#"{"success":false,"message":["Not authenticated"]}"#.into()),
                "contact/basic" if value["email"][0].as_str() == Some("slow@example.com") => {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    (200, vec![], r#"{"success":true,"message":[],"contacts":[]}"#.into())
                }
                "contact/basic" if value["email"][0].as_str() == Some("busy@example.com") => {
                    (429, vec![("retry-after", "7".into())], String::new())
                }
                "job/status" => (
                    200,
                    vec![],
                    format!(r#"{{"success":true,"message":[],"fileUrl":"http://127.0.0.1:{port}/files/1.json"}}"#),
                ),
                "user/listByClient" => {
                    (200, vec![], format!(r#"{{"success":true,"message":[],"users":[{{"email":"{OWNER}"}}]}}"#))
                }
                _ => (200, vec![], r#"{"success":true,"message":[],"contactId":"sm-1"}"#.into()),
            };
            let mut response = axum::response::Response::new(axum::body::Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
    };
    let router = Router::new()
        .route("/api/{*method}", post(api))
        .route("/files/1.json", get(|| async { r#"[{"sm-1":{"contactData":{"email":"a@b.pl"}}}]"# }));
    serve(router).await
}

fn config(endpoint: &str, stored: &[&salesmanago_relay::keys::StoredKey], extra: &[(&str, &str)]) -> Config {
    let keys = stored.iter().map(|k| k.text()).collect::<Vec<_>>().join(",");
    let mut vars: Vec<(String, String)> = vec![
        ("SALESMANAGO_CLIENT_ID".into(), "cid".into()),
        ("SALESMANAGO_API_SECRET".into(), SECRET.into()),
        ("SALESMANAGO_OWNER".into(), OWNER.into()),
        ("SALESMANAGO_ENDPOINT".into(), endpoint.into()),
        ("RELAY_ALLOWED_ORIGINS".into(), ORIGIN.into()),
        ("RELAY_KEYS".into(), keys),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Config::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn refusal(&self) -> Option<String> {
        json::from_str(&self.body).ok()?.get("relayRefusal")?.as_str().map(str::to_owned)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    Answer { status, headers, body }
}

#[tokio::test(flavor = "current_thread")]
async fn the_relay_forwards_signed_calls_refuses_the_rest_and_logs_no_secret() {
    let (logs, _guard) = Logs::capture();

    let seen: Seen = Arc::default();
    let sm = salesmanago(seen.clone()).await;
    let (key, stored) = new_key("k1").unwrap();
    let (old_key, old_stored) = new_key("k0").unwrap();
    let relay = spawn_relay(config(
        &format!("http://{sm}"),
        &[&stored, &old_stored],
        &[("RELAY_RATE_PER_KEY", "50"), ("RELAY_MAX_BODY_BYTES", "2000"), ("RELAY_UPSTREAM_TIMEOUT_MS", "300")],
    ))
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{relay}{path}");
    let call = |method: &str, key: &str, origin: &str, body: &str| {
        http.post(url(&format!("/api/{method}")))
            .header("authorization", format!("Bearer {key}"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };

    // The preflight of the Dynamics page.
    let preflight =
        send(http.request(reqwest::Method::OPTIONS, url("/api/contact/upsert")).header("origin", ORIGIN)).await;
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.headers["access-control-allow-origin"], ORIGIN);
    assert!(preflight.headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert!(preflight.headers["vary"].to_str().unwrap().contains("origin"), "{:?}", preflight.headers["vary"]);

    // A call goes signed, with the relay's owner, whatever auth the browser put in.
    let body = r#"{"contact":{"email":"jan@example.com"},"sha":"forged","clientId":"someone-else","owner":"x@y.z"}"#;
    let upsert = send(call("contact/upsert", &key, ORIGIN, body)).await;
    assert_eq!((upsert.status, upsert.body.as_str()), (200, r#"{"success":true,"message":[],"contactId":"sm-1"}"#));
    assert_eq!(upsert.headers["access-control-allow-origin"], ORIGIN);
    let exposed = upsert.headers["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert_eq!(exposed.split(',').map(str::trim).collect::<Vec<_>>(), ["retry-after", "date"]);
    {
        let seen = seen.lock().unwrap();
        let (method, sent) = seen.last().unwrap();
        assert_eq!(method, "contact/upsert");
        assert_eq!((sent["clientId"].as_str(), sent["owner"].as_str()), (Some("cid"), Some(OWNER)));
        assert_eq!(sent["contact"]["email"].as_str(), Some("jan@example.com"));
        assert!(!sent.to_string().contains(SECRET));
    }
    // The older key still works while it is listed (rotation).
    assert_eq!(send(call("contact/optout", &old_key, ORIGIN, r#"{"email":"a@b.pl"}"#)).await.status, 200);
    assert!(seen.lock().unwrap().last().unwrap().1.get("owner").is_none(), "opt-out carries no owner");

    // Each refusal has its status and reason, and CORS headers the engine can read.
    let wrong = send(call("contact/upsert", &key.replace("k1.", "k1.0"), ORIGIN, "{}")).await;
    assert_eq!((wrong.status, wrong.refusal().as_deref()), (401, Some("key")));
    assert_eq!(wrong.headers["access-control-allow-origin"], ORIGIN);
    let stranger = send(call("contact/upsert", &key, "https://evil.example", "{}")).await;
    assert_eq!((stranger.status, stranger.refusal().as_deref()), (403, Some("origin")));
    let import = send(call("contact/import", &key, ORIGIN, "{}")).await;
    assert_eq!((import.status, import.refusal().as_deref()), (404, Some("method")));
    let large = send(call("contact/upsert", &key, ORIGIN, &format!(r#"{{"x":"{}"}}"#, "a".repeat(3000)))).await;
    assert_eq!((large.status, large.refusal().as_deref()), (413, Some("tooLarge")));
    let slow = send(call("contact/basic", &key, ORIGIN, r#"{"email":["slow@example.com"]}"#)).await;
    assert_eq!((slow.status, slow.refusal().as_deref()), (504, Some("timeout")));
    // SALESmanago's own 429 passes as it came, with its Retry-After readable.
    let busy = send(call("contact/basic", &key, ORIGIN, r#"{"email":["busy@example.com"]}"#)).await;
    assert_eq!((busy.status, busy.headers["retry-after"].to_str().unwrap()), (429, "7"));
    assert_eq!(busy.refusal(), None, "SALESmanago's, not the relay's");

    // A file SALESmanago hands out is reached through the relay, and only such a file.
    let status = send(call("job/status", &key, ORIGIN, &format!(r#"{{"requestId":{}}}"#, sm.port()))).await;
    let file_path = json::from_str(&status.body).unwrap()["fileUrl"].as_str().unwrap().to_owned();
    // Without RELAY_PUBLIC_URL, a path under the relay, which the engine puts under its endpoint.
    assert!(file_path.starts_with("files/"), "{file_path}");
    let file_url = format!("http://{relay}/{file_path}");
    let file = send(http.get(&file_url).header("origin", ORIGIN)).await;
    assert_eq!((file.status, file.body.as_str()), (200, r#"[{"sm-1":{"contactData":{"email":"a@b.pl"}}}]"#));
    assert_eq!(file.headers["access-control-allow-origin"], ORIGIN);
    let tampered = file_url.replace("/files/", "/files/1").replace(&format!("{}", sm.port()), "1");
    assert_eq!(send(http.get(&tampered)).await.refusal().as_deref(), Some("file"));

    // Health, shallow and deep.
    assert_eq!(send(http.get(url("/healthz"))).await.status, 200);
    let deep = send(http.get(url("/healthz/deep")).header("authorization", format!("Bearer {key}"))).await;
    assert_eq!((deep.status, deep.body.as_str()), (200, r#"{"status":"ok","salesmanago":"ok","owner":"ok"}"#));
    assert_eq!(send(http.get(url("/healthz/deep"))).await.refusal().as_deref(), Some("key"));

    // The per-key rate, on a relay that allows 1 a second (2 in a burst).
    let strict = spawn_relay(config(&format!("http://{sm}"), &[&stored], &[("RELAY_RATE_PER_KEY", "1")])).await;
    let strict_call = || {
        http.post(format!("http://{strict}/api/contact/hasContact"))
            .header("authorization", format!("Bearer {key}"))
            .body(r#"{"email":"a@b.pl"}"#)
    };
    assert_eq!(send(strict_call()).await.status, 200);
    assert_eq!(send(strict_call()).await.status, 200);
    let limited = send(strict_call()).await;
    assert_eq!((limited.status, limited.refusal().as_deref()), (429, Some("rate")));
    assert_eq!(limited.headers["retry-after"], "1");

    // SALESmanago unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let lost = spawn_relay(config(&format!("http://{closed}"), &[&stored], &[])).await;
    let unreachable = send(
        http.post(format!("http://{lost}/api/contact/upsert"))
            .header("authorization", format!("Bearer {key}"))
            .body("{}"),
    )
    .await;
    assert_eq!((unreachable.status, unreachable.refusal().as_deref()), (502, Some("unreachable")));

    // One JSON line a request, with its key id, method and status, and no secret, key, e-mail or body.
    let text = logs.text();
    let lines: Vec<Value> = text.lines().map(|line| json::from_str(line).unwrap()).collect();
    assert!(lines.len() >= 15, "{text}");
    let upserted = lines
        .iter()
        .find(|l| l["method"].as_str() == Some("contact/upsert") && l["status"].as_u64() == Some(200))
        .unwrap();
    assert_eq!((upserted["key"].as_str(), upserted["origin"].as_str()), (Some("k1"), Some(ORIGIN)));
    assert!(
        upserted.get("upstream_ms").is_some() && upserted.get("bytes").is_some() && upserted.get("timestamp").is_some()
    );
    for secret in [
        SECRET,
        key.split_once('.').unwrap().1,
        old_key.split_once('.').unwrap().1,
        "jan@example.com",
        "a@b.pl",
        "forged",
        "sm-1",
    ] {
        assert!(!text.contains(secret), "the logs hold {secret:?}: {text}");
    }
}
