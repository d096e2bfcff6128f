//! What can be tried here of the deployments the README describes: the binary as Azure
//! Functions runs a custom handler (its port in `FUNCTIONS_CUSTOMHANDLER_PORT`, requests
//! forwarded with their own paths), the layout's `host.json` and `function.json`, and a bad
//! setting stopping the binary with its name.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use salesmanago_dynamics::core::json::{self, Value};
use salesmanago_relay::keys::new_key;

const BINARY: &str = env!("CARGO_BIN_EXE_salesmanago-relay");

fn layout(file: &str) -> Value {
    let path = format!("{}/deploy/azure-functions/{file}", env!("CARGO_MANIFEST_DIR"));
    json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("JSON")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_functions_layout_forwards_every_path_to_the_binary() {
    let host = layout("host.json");
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"].as_bool(), Some(true));
    assert_eq!(host["customHandler"]["description"]["defaultExecutablePath"].as_str(), Some("salesmanago-relay"));
    assert_eq!(host["extensions"]["http"]["routePrefix"].as_str(), Some(""), "paths reach the relay as they are");
    let function = layout("relay/function.json");
    let trigger = &function["bindings"][0];
    assert_eq!(trigger["route"].as_str(), Some("{*path}"));
    assert_eq!(trigger["authLevel"].as_str(), Some("anonymous"), "the relay checks its own keys");
    let methods: Vec<&str> = trigger["methods"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(methods, ["get", "post", "options"]);
}

#[tokio::test]
async fn the_binary_runs_as_a_functions_custom_handler() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (key, stored) = new_key("fn").unwrap();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("SALESMANAGO_CLIENT_ID", "cid")
        .env("SALESMANAGO_API_SECRET", "secret")
        .env("SALESMANAGO_OWNER", "owner@example.com")
        // Nothing listens there: the forwarded call comes back as the relay's 502.
        .env("SALESMANAGO_ENDPOINT", "http://127.0.0.1:9")
        .env("RELAY_ALLOWED_ORIGINS", "https://contoso.crm4.dynamics.com")
        .env("RELAY_KEYS", stored.text())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first log line").unwrap();
    assert!(first.contains(&format!("\"listening\":\"127.0.0.1:{port}\"")), "{first}");
    // The rest of the log is read, so its writes never meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/api/contact/upsert"))
        .header("origin", "https://contoso.crm4.dynamics.com")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let forwarded = http
        .post(format!("{base}/api/contact/upsert"))
        .header("authorization", format!("Bearer {key}"))
        .header("origin", "https://contoso.crm4.dynamics.com")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 502);
    assert!(forwarded.text().await.unwrap().contains(r#""relayRefusal":"unreachable""#));
}

#[test]
fn a_missing_setting_stops_the_binary_with_its_name() {
    let output = Command::new(BINARY).env_clear().arg("serve").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("SALESMANAGO_CLIENT_ID is not set"), "{said}");
    let usage = Command::new(BINARY).arg("nonsense").output().unwrap();
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage:"));
}
