//! The relay's log under a flood of long headers, alone in its test binary: the log is
//! captured on the test's thread, and tracing's callsites are shared by every thread of a
//! binary, so another test's threads could leave them disabled for this one.

mod support;

use salesmanago_dynamics::core::json;
use salesmanago_relay::keys::new_key;
use support::{settings, spawn_relay, Logs, ORIGIN};

#[tokio::test(flavor = "current_thread")]
async fn a_long_origin_is_cut_in_the_log_and_echoed_only_when_allowed() {
    let (logs, _guard) = Logs::capture();
    let (key, stored) = new_key("k1").unwrap();
    let relay = spawn_relay(settings("http://127.0.0.1:9", &[stored.text()], &[])).await;
    let http = reqwest::Client::new();
    let long = format!("https://{}.example", "a".repeat(50_000));
    for _ in 0..100 {
        let answer = http
            .post(format!("http://{relay}/api/contact/upsert"))
            .header("origin", &long)
            .header("authorization", format!("Bearer {key}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.headers().get("access-control-allow-origin").is_none(), "an origin not allowed is not echoed");
    }
    let huge = format!("https://{}.example", "a".repeat(300_000));
    let answer = http.post(format!("http://{relay}/api/contact/upsert")).header("origin", huge).body("{}").send().await;
    assert!(answer.is_err() || answer.unwrap().status() == 431, "a header section over 64 KiB is refused");
    let allowed = http
        .post(format!("http://{relay}/api/contact/upsert"))
        .header("origin", ORIGIN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    let text = logs.text();
    // About 300 bytes a line (it was 5 MB, the whole Origin on each of them).
    assert!(text.len() < 60_000, "{} bytes of log for 102 requests", text.len());
    let line = text.lines().find(|l| l.contains(r#""status":403"#)).unwrap();
    let origin = json::from_str(line).unwrap()["origin"].as_str().unwrap().to_owned();
    assert_eq!(origin.chars().count(), 101, "cut to 100 characters and marked");
}
