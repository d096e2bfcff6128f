//! The relay as a hostile stranger, a greedy key holder or a misbehaving SALESmanago would try
//! it, over real sockets: connections that never send a request or send it a byte at a time,
//! slow bodies of two keys against a third, deep checks in a burst, redirects, file addresses
//! off SALESmanago's hosts, endless answers, long headers, and the small points (CORS on every
//! answer, a malformed body, the webhook's own refusal, `?code=`, `Host`).

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Credentials};
use salesmanago_relay::keys::new_key;
use support::{serve, settings, spawn_relay, ORIGIN};

const OK: &str = r#"{"success":true,"message":[],"contactId":"sm-1"}"#;

/// A SALESmanago that answers every call with success, counting the calls of each method.
async fn plain_salesmanago(calls: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let api = move |axum::extract::Path(method): axum::extract::Path<String>| {
        let calls = calls.clone();
        async move {
            calls.lock().unwrap().push(method.clone());
            match method.as_str() {
                "user/listByClient" => {
                    r#"{"success":true,"message":[],"users":[{"email":"owner@example.com"}]}"#.to_owned()
                }
                _ => OK.to_owned(),
            }
        }
    };
    serve(Router::new().route("/api/{*method}", post(api))).await
}

/// Reads what comes until the peer closes (or fails); `true` when it closed within `within`.
async fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Sends `head` and then one byte of `dribble` every `every`, until the relay closes the
/// connection: how long that took, or `None` when it had not after `most`.
async fn dribble(address: SocketAddr, head: String, every: Duration, most: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.ok()?;
    if stream.write_all(head.as_bytes()).await.is_err() {
        return Some(started.elapsed());
    }
    let mut buffer = [0u8; 1024];
    while started.elapsed() < most {
        if stream.write_all(b"a").await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(every, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    None
}

/// The status and body of a raw HTTP/1.1 answer read until the peer closes or `within` ends.
async fn raw_answer(stream: &mut TcpStream, within: Duration) -> (u16, String) {
    let mut read = Vec::new();
    let _ = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            read.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&read);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned));
                if length.and_then(|l| l.trim().parse::<usize>().ok()).is_some_and(|l| body.len() >= l) {
                    break;
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&read).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// The `fileUrl` of the relay's answer to `job/status`, asked with `key` and `headers`.
async fn file_url(relay: SocketAddr, key: &str, headers: &[(&str, &str)]) -> String {
    let mut ask = reqwest::Client::new()
        .post(format!("http://{relay}/api/job/status"))
        .header("authorization", format!("Bearer {key}"));
    for (name, value) in headers {
        ask = ask.header(*name, *value);
    }
    let status = ask.body(r#"{"requestId":1}"#).send().await.unwrap().text().await.unwrap();
    json::from_str(&status).unwrap()["fileUrl"].as_str().unwrap().to_owned()
}

fn refusal_of(body: &str) -> Option<String> {
    json::from_str(body).ok()?.get("relayRefusal")?.as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_dribbling_and_kept_alive_connections_are_closed_on_time() {
    let (_, stored) = new_key("k1").unwrap();
    let relay =
        spawn_relay(settings("http://127.0.0.1:9", &[stored.text()], &[("RELAY_HEADER_TIMEOUT_MS", "500")])).await;

    // Connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(relay).await.unwrap());
    }
    // Headers a byte at a time, never finished.
    let dribblers: Vec<_> = (0..100)
        .map(|_| {
            let head = "GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: ".to_owned();
            tokio::spawn(dribble(relay, head, Duration::from_millis(100), Duration::from_secs(5)))
        })
        .collect();
    // One request answered, then nothing: the connection kept alive must not stay open.
    let kept: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(relay).await.unwrap();
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n").await.unwrap();
                let mut buffer = [0u8; 1024];
                let n = stream.read(&mut buffer).await.unwrap();
                assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
                let answered = Instant::now();
                closes_within(&mut stream, Duration::from_secs(3)).await.then(|| answered.elapsed())
            })
        })
        .collect();

    for mut stream in idle {
        assert!(closes_within(&mut stream, Duration::from_secs(3)).await, "an idle connection stayed open");
    }
    for dribbler in dribblers {
        let closed = dribbler.await.unwrap().expect("a header dribbler stayed open for 5 s");
        assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    }
    for kept in kept {
        let closed = kept.await.unwrap().expect("a kept-alive connection stayed open");
        assert!(closed < Duration::from_secs(2), "closed {closed:?} after its answer");
    }
    // And the relay still answers.
    let health = reqwest::get(format!("http://{relay}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_of_two_keys_leave_a_third_key_its_share() {
    let calls = Arc::default();
    let sm = plain_salesmanago(calls).await;
    let (a_key, a) = new_key("a").unwrap();
    let (b_key, b) = new_key("b").unwrap();
    let (c_key, c) = new_key("c").unwrap();
    let stored = [a.text(), b.text(), c.text()];
    // 6 calls under way: 2 for each key.
    let extra = [("RELAY_MAX_CONCURRENT", "6"), ("RELAY_BODY_TIMEOUT_MS", "1500")];
    let relay = spawn_relay(settings(&format!("http://{sm}"), &stored, &extra)).await;
    let head = |key: &str| {
        format!(
            "POST /api/contact/upsert HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
    };
    // Keys a and b each send 40 bodies a byte at a time.
    let mut slow = Vec::new();
    for key in [&a_key, &b_key] {
        for _ in 0..40 {
            let head = head(key);
            slow.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(relay).await.unwrap();
                stream.write_all(head.as_bytes()).await.unwrap();
                let started = Instant::now();
                let mut buffer = [0u8; 2048];
                loop {
                    let _ = stream.write_all(b" ").await;
                    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await
                    {
                        let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                        return (text, started.elapsed());
                    }
                    assert!(started.elapsed() < Duration::from_secs(5), "a slow body was never answered");
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Key c is served at once, the slow bodies notwithstanding.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let started = Instant::now();
        let answer = http
            .post(format!("http://{relay}/api/contact/upsert"))
            .header("authorization", format!("Bearer {c_key}"))
            .body(r#"{"contact":{"email":"c@example.com"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    // Each slow body is answered: busy beyond its key's share, else cut off after its time.
    let (mut busy, mut cut) = (0, 0);
    for answer in slow {
        let (text, took) = answer.await.unwrap();
        if text.starts_with("HTTP/1.1 503") && text.contains(r#""relayRefusal":"busy""#) {
            busy += 1;
        } else if text.starts_with("HTTP/1.1 400") && text.contains(r#""relayRefusal":"body""#) {
            assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(3), "{took:?}");
            cut += 1;
        } else {
            panic!("a slow body got {text}");
        }
    }
    // Two readers a key at a time: four cut off at first (more only if some arrived after),
    // the rest told their key is busy.
    assert!(cut >= 4 && busy >= 60 && busy + cut == 80, "{busy} busy, {cut} cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_checks_count_against_the_rate_and_share_one_call() {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let sm = plain_salesmanago(calls.clone()).await;
    let (key, stored) = new_key("k1").unwrap();
    // One a second, two in a burst: the 60 checks arrive well within a second or two.
    let relay = spawn_relay(settings(&format!("http://{sm}"), &[stored.text()], &[("RELAY_RATE_PER_KEY", "1")])).await;
    let http = reqwest::Client::new();
    let checks: Vec<_> = (0..60)
        .map(|_| {
            let check =
                http.post(format!("http://{relay}/healthz/deep")).header("authorization", format!("Bearer {key}"));
            tokio::spawn(async move {
                let answer = check.send().await.unwrap();
                (answer.status().as_u16(), answer.text().await.unwrap())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for check in checks {
        let (status, body) = check.await.unwrap();
        if status == 200 {
            assert_eq!(body, r#"{"status":"ok","salesmanago":"ok","owner":"ok"}"#);
        } else {
            assert_eq!((status, refusal_of(&body).as_deref()), (429, Some("rate")));
        }
        statuses.push(status);
    }
    let answered = statuses.iter().filter(|s| **s == 200).count();
    assert!((2..=3).contains(&answered), "{answered} answered: the burst (twice the rate), and at most one more");
    let asked = calls.lock().unwrap().iter().filter(|m| *m == "user/listByClient").count();
    assert_eq!(asked, 1, "SALESmanago is asked once, whatever the number of checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_from_salesmanago_are_never_followed() {
    let elsewhere = Arc::new(AtomicUsize::new(0));
    let seen = elsewhere.clone();
    let other = serve(Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        async { "taken" }
    }))
    .await;
    let sm_port = Arc::new(Mutex::new(0u16));
    let port = sm_port.clone();
    let api = move |axum::extract::Path(method): axum::extract::Path<String>| {
        let port = *port.lock().unwrap();
        async move {
            let mut response = Response::new(Body::from(match method.as_str() {
                "job/status" => {
                    format!(r#"{{"success":true,"message":[],"fileUrl":"http://127.0.0.1:{port}/moved.json"}}"#)
                }
                _ => String::new(),
            }));
            if method != "job/status" {
                *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                response.headers_mut().insert("location", format!("http://{other}/api/{method}").parse().unwrap());
            }
            response
        }
    };
    let moved = move || async move {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert("location", format!("http://{other}/secret.json").parse().unwrap());
        response
    };
    let sm = serve(Router::new().route("/api/{*method}", post(api)).route("/moved.json", get(moved))).await;
    *sm_port.lock().unwrap() = sm.port();
    let (key, stored) = new_key("k1").unwrap();
    let relay = spawn_relay(settings(&format!("http://{sm}"), &[stored.text()], &[])).await;
    let http = reqwest::Client::new();
    let call = |method: &str, body: &str| {
        http.post(format!("http://{relay}/api/{method}"))
            .header("authorization", format!("Bearer {key}"))
            .body(body.to_owned())
    };
    let upsert = call("contact/upsert", r#"{"contact":{"email":"a@example.com"}}"#).send().await.unwrap();
    assert_eq!(upsert.status(), 502);
    assert_eq!(refusal_of(&upsert.text().await.unwrap()).as_deref(), Some("redirect"));
    let path = file_url(relay, &key, &[]).await;
    let file = http.get(format!("http://{relay}/{path}")).send().await.unwrap();
    assert_eq!(file.status(), 502);
    assert_eq!(refusal_of(&file.text().await.unwrap()).as_deref(), Some("redirect"));
    assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "the redirect's target got nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_never_reads_its_answer_loses_its_connection() {
    const SIZE: usize = 32 * 1024 * 1024;
    let sm_port = Arc::new(Mutex::new(0u16));
    let port = sm_port.clone();
    let api = move || {
        let port = *port.lock().unwrap();
        async move { format!(r#"{{"success":true,"message":[],"fileUrl":"http://127.0.0.1:{port}/big.json"}}"#) }
    };
    let big = || async { vec![b' '; SIZE] };
    let sm = serve(Router::new().route("/api/{*method}", post(api)).route("/big.json", get(big))).await;
    *sm_port.lock().unwrap() = sm.port();
    let (key, stored) = new_key("k1").unwrap();
    let relay =
        spawn_relay(settings(&format!("http://{sm}"), &[stored.text()], &[("RELAY_WRITE_TIMEOUT_MS", "500")])).await;
    let path = file_url(relay, &key, &[]).await;
    let mut stream = TcpStream::connect(relay).await.unwrap();
    stream.write_all(format!("GET /{path} HTTP/1.1\r\nHost: relay\r\n\r\n").as_bytes()).await.unwrap();
    // Not a byte read for 3 s: the relay's writes stall, and it gives up after 0.5 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    let read_all = async {
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            received += n;
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(10), read_all).await;
    assert!(ended.is_ok(), "the relay kept the connection of a caller who did not read its answer");
    assert!(received < SIZE, "{received} bytes: the whole answer waited for a caller who did not read");
}

/// The relay's path for the file at `url`, signed as the relay of the tests' account signs.
fn signed(url: &str) -> String {
    let credentials = Credentials {
        client_id: "cid".into(),
        api_secret: ApiSecret::new("secret"),
        owner: "owner@example.com".into(),
    };
    let secret = credentials.sign("salesmanago-relay files");
    let key = Sha256::new().chain_update(b"salesmanago-relay files\0").chain_update(secret.as_bytes()).finalize();
    let expires = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let address = URL_SAFE_NO_PAD.encode(url);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{expires}/{address}").as_bytes());
    format!("files/{expires}/{}/{address}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_address_off_salesmanagos_hosts_is_never_dialled() {
    // Something on loopback that would answer, as a metadata service or an admin port would.
    let dialled = Arc::new(AtomicUsize::new(0));
    let seen = dialled.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    // A name of this machine's that resolves to loopback, when it has one, to be let through
    // by RELAY_FILE_HOSTS and stopped by the check of the address dialled.
    let mut resolving = None;
    for name in ["vm", "runsc", "ip6-localhost"] {
        let found = tokio::net::lookup_host((name, 0)).await.map(|a| a.collect::<Vec<_>>()).unwrap_or_default();
        if !found.is_empty() && found.iter().all(|a| a.ip().is_loopback()) {
            resolving = Some(name);
            break;
        }
    }
    let (_, stored) = new_key("k1").unwrap();
    let hosts = resolving.unwrap_or("files.example.net");
    let relay =
        spawn_relay(settings("https://app3.salesmanago.pl", &[stored.text()], &[("RELAY_FILE_HOSTS", hosts)])).await;
    let http = reqwest::Client::new();
    let mut addresses = vec![
        format!("http://127.0.0.1:{port}/export.json"),
        format!("https://127.0.0.1:{port}/export.json"),
        format!("http://localhost:{port}/export.json"),
        format!("https://localhost:{port}/export.json"),
        format!("https://[::1]:{port}/export.json"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://app3.salesmanago.pl.127.0.0.1.nip.io:{port}/x"),
        format!("http://files.salesmanago.pl:{port}/x"),
    ];
    if let Some(name) = resolving {
        addresses.push(format!("https://{name}:{port}/export.json"));
    } else {
        eprintln!(
            "no name of this machine resolves to loopback alone: the dial-time check is covered by the unit tests only"
        );
    }
    for address in &addresses {
        let answer = http.get(format!("http://{relay}/{}", signed(address))).send().await.unwrap();
        let status = answer.status().as_u16();
        assert_eq!(
            (status, refusal_of(&answer.text().await.unwrap()).as_deref()),
            (502, Some("fileHost")),
            "{address}"
        );
    }
    // The signature is right: an address on SALESmanago's hosts is let through (and found
    // unreachable, there being no network here).
    let allowed =
        http.get(format!("http://{relay}/{}", signed("https://files.salesmanago.pl/1.json"))).send().await.unwrap();
    assert_ne!(refusal_of(&allowed.text().await.unwrap()).as_deref(), Some("file"));
    assert_eq!(dialled.load(Ordering::SeqCst), 0, "nothing on loopback was dialled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_and_oversized_answers_are_refused_and_files_cut() {
    let endless = || {
        Body::from_stream(futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 * 1024]))
        }))
    };
    let sm_port = Arc::new(Mutex::new(0u16));
    let port = sm_port.clone();
    let api = move |axum::extract::Path(method): axum::extract::Path<String>| {
        let port = *port.lock().unwrap();
        async move {
            match method.as_str() {
                "job/status" => Response::new(Body::from(format!(
                    r#"{{"success":true,"message":[],"fileUrl":"http://127.0.0.1:{port}/endless.json"}}"#
                ))),
                "contact/listById" => {
                    let mut response = Response::new(endless());
                    response.headers_mut().insert("content-length", "104857600".parse().unwrap());
                    response
                }
                _ => Response::new(endless()),
            }
        }
    };
    let sm = serve(
        Router::new().route("/api/{*method}", post(api)).route("/endless.json", get(move || async move { endless() })),
    )
    .await;
    *sm_port.lock().unwrap() = sm.port();
    let (key, stored) = new_key("k1").unwrap();
    let extra = [("RELAY_MAX_ANSWER_BYTES", "65536"), ("RELAY_MAX_FILE_BYTES", "1048576")];
    let relay = spawn_relay(settings(&format!("http://{sm}"), &[stored.text()], &extra)).await;
    let http = reqwest::Client::new();
    for method in ["contact/basic", "contact/listById"] {
        let started = Instant::now();
        let answer = http
            .post(format!("http://{relay}/api/{method}"))
            .header("authorization", format!("Bearer {key}"))
            .body(r#"{"email":["a@example.com"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 502, "{method}");
        assert_eq!(refusal_of(&answer.text().await.unwrap()).as_deref(), Some("answerTooLarge"), "{method}");
        assert!(started.elapsed() < Duration::from_secs(2), "{method}: {:?}", started.elapsed());
    }
    let path = file_url(relay, &key, &[]).await;
    let mut file = http.get(format!("http://{relay}/{path}")).send().await.unwrap();
    assert_eq!(file.status(), 200, "the file starts");
    let mut received = 0usize;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match file.chunk().await {
                Ok(Some(part)) => received += part.len(),
                Ok(None) => return "ended",
                Err(_) => return "cut",
            }
        }
    })
    .await
    .expect("the endless file was cut");
    assert_eq!(ended, "cut", "a file over the cap is cut, not passed as complete");
    assert!(received <= 1024 * 1024, "{received} bytes passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_points_hold() {
    let sm_port = Arc::new(Mutex::new(0u16));
    let port = sm_port.clone();
    let api = move |axum::extract::Path(method): axum::extract::Path<String>| {
        let port = *port.lock().unwrap();
        async move {
            match method.as_str() {
                "job/status" => {
                    format!(r#"{{"success":true,"message":[],"fileUrl":"http://127.0.0.1:{port}/1.json"}}"#)
                }
                _ => OK.to_owned(),
            }
        }
    };
    let sm = serve(Router::new().route("/api/{*method}", post(api))).await;
    *sm_port.lock().unwrap() = sm.port();
    let (key, stored) = new_key("k1").unwrap();
    let (hook, hook_stored) = new_key("dataverse").unwrap();
    let relay = spawn_relay(settings(
        &format!("http://{sm}"),
        &[stored.text()],
        &[("RELAY_WEBHOOK_KEYS", &hook_stored.text())],
    ))
    .await;
    let http = reqwest::Client::new();

    // A method the route does not take: 405, with CORS like every answer to an allowed origin.
    let wrong = http.get(format!("http://{relay}/api/contact/upsert")).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["access-control-allow-origin"], ORIGIN);

    // A malformed chunked body is unreadable (400), not too large.
    let mut stream = TcpStream::connect(relay).await.unwrap();
    let request = format!(
        "POST /api/contact/upsert HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (status, body) = raw_answer(&mut stream, Duration::from_secs(3)).await;
    assert_eq!((status, refusal_of(&body).as_deref()), (400, Some("body")), "{body}");

    // The webhook's refusal names the webhook key; `?code=` is percent-decoded.
    let delivery = include_str!("../../src/core/dataverse/event_samples/update.json");
    let refused = http.post(format!("http://{relay}/dataverse/webhook")).body(delivery).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let said = refused.text().await.unwrap();
    assert!(said.contains("webhook key") && !said.contains("relay key"), "{said}");
    let encoded: String = hook.bytes().map(|b| format!("%{b:02X}")).collect();
    let coded =
        http.post(format!("http://{relay}/dataverse/webhook?code={encoded}")).body(delivery).send().await.unwrap();
    assert_ne!(coded.status(), 401, "the percent-encoded key is the key");

    // The file address is never built from what the caller says its host is.
    let file_url = file_url(relay, &key, &[("host", "evil.example"), ("x-forwarded-proto", "http")]).await;
    assert!(file_url.starts_with("files/") && !file_url.contains("evil"), "{file_url}");
}

#[tokio::test]
async fn a_panic_in_one_request_is_its_own_500() {
    let boom = Router::new()
        .route("/boom", get(|| async { panic!("a bug") as &'static str }))
        .route("/fine", get(|headers: HeaderMap| async move { format!("{}", headers.len()) }));
    let address = serve(salesmanago_relay::guarded(boom)).await;
    let http = reqwest::Client::new();
    let answer = http.get(format!("http://{address}/boom")).send().await.unwrap();
    assert_eq!(answer.status(), 500);
    let body: Value = json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body["success"].as_bool(), Some(false));
    assert_eq!(http.get(format!("http://{address}/fine")).send().await.unwrap().status(), 200);
}
