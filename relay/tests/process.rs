//! The relay's binary as a process, as it runs under systemd: 1,100 idle connections against
//! 1,024 file descriptors, eight endless answers against its memory, and settings that must
//! stop it before it listens without printing a secret.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::routing::post;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use salesmanago_relay::keys::new_key;
use support::serve;

const BINARY: &str = env!("CARGO_BIN_EXE_salesmanago-relay");

/// The relay's process, ended when dropped.
struct Running {
    child: Child,
    address: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Its peak resident memory (`VmHWM`), in bytes.
    fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// The environment of a relay for `endpoint` with the browser key `stored`.
fn env(endpoint: &str, stored: &str) -> Vec<(String, String)> {
    [
        ("SALESMANAGO_CLIENT_ID", "cid"),
        ("SALESMANAGO_API_SECRET", "secret"),
        ("SALESMANAGO_OWNER", "owner@example.com"),
        ("SALESMANAGO_ENDPOINT", endpoint),
        ("RELAY_ALLOWED_ORIGINS", "https://contoso.crm4.dynamics.com"),
        ("RELAY_KEYS", stored),
        ("RELAY_LISTEN", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// `salesmanago-relay serve` with only `vars`, allowed `descriptors` open files.
fn spawn(vars: &[(String, String)], descriptors: u32) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {descriptors} && exec \"$0\" serve"))
        .arg(BINARY)
        .env_clear()
        .envs(vars.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Starts the binary with `vars`, allowed `descriptors` open files; once it listens.
fn start(vars: &[(String, String)], descriptors: u32) -> Running {
    let mut child = spawn(vars, descriptors);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = loop {
        let line = lines.next().expect("a log line").unwrap();
        if let Some(rest) = line.split("\"listening\":\"").nth(1) {
            break rest.split('"').next().unwrap().parse().unwrap();
        }
    };
    // The rest of the log is read, so its writes never meet a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Running { child, address: listening }
}

/// `GET /healthz` on a new connection: its status, or 0 without an answer within `within`.
async fn health(address: SocketAddr, within: Duration) -> u16 {
    let asked = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").await.ok()?;
        // What came before the peer closed, even if it closed with a reset.
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            answer.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&answer).split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(within, asked).await.ok().flatten().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_descriptors_never_take_the_relay_offline() {
    // This test's own side holds 1,100 connections.
    let _ = rlimit::increase_nofile_limit(4096);
    let (_, stored) = new_key("k1").unwrap();
    let mut vars = env("http://127.0.0.1:9", &stored.text());
    vars.push(("RELAY_HEADER_TIMEOUT_MS".into(), "2000".into()));
    let mut relay = start(&vars, 1024);
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match TcpStream::connect(relay.address).await {
            Ok(stream) => idle.push(stream),
            Err(error) => panic!("connection {} could not be made: {error}", idle.len() + 1),
        }
    }
    // Over the cap, a caller is answered at once, not left waiting.
    let started = Instant::now();
    let status = health(relay.address, Duration::from_secs(2)).await;
    assert!(status == 503 || status == 200, "no answer while 1,100 connections idle ({status})");
    assert!(started.elapsed() < Duration::from_secs(1), "answered after {:?}", started.elapsed());
    // The idle ones are closed within the header timeout, and the relay serves again.
    let mut served = 0;
    for _ in 0..40 {
        if health(relay.address, Duration::from_secs(1)).await == 200 {
            served += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, 1, "the relay answered /healthz again within 4 s");
    // Each one was either refused over the cap or closed after the header timeout: all by
    // 2 s after the last was accepted, and a margin.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut closed = 0;
    let mut buffer = [0u8; 512];
    for stream in &mut idle {
        let read_to_end = async { while let Ok(1..) = stream.read(&mut buffer).await {} };
        if tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), read_to_end).await.is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 1100, "every idle connection was closed");
    assert!(relay.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_endless_answers_leave_the_relays_memory_bounded() {
    let endless = || {
        Body::from_stream(futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 256 * 1024]))
        }))
    };
    let sm = serve(Router::new().route("/api/{*method}", post(move || async move { endless() }))).await;
    let (key, stored) = new_key("k1").unwrap();
    let relay = start(&env(&format!("http://{sm}"), &stored.text()), 1024);
    let before = relay.peak_memory();
    let http = reqwest::Client::new();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let call = http
                .post(format!("http://{}/api/contact/basic", relay.address))
                .header("authorization", format!("Bearer {key}"))
                .body(r#"{"email":["a@example.com"]}"#);
            tokio::spawn(async move {
                match call.send().await {
                    Ok(answer) => (answer.status().as_u16(), answer.text().await.unwrap_or_default()),
                    Err(error) => (0, format!("no answer (did the relay run out of memory?): {error}")),
                }
            })
        })
        .collect();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 502, "{body}");
        assert!(body.contains(r#""relayRefusal":"answerTooLarge""#), "{body}");
    }
    let peak = relay.peak_memory();
    assert!(peak < before + 128 * 1024 * 1024, "peak {} MB, {} MB at the start", peak >> 20, before >> 20);
}

/// What the binary says, and its exit code, when started with `vars` (killed after 5 s: a
/// relay that starts with a bad setting must fail the test, not hang it).
fn refused(vars: &[(String, String)]) -> (Option<i32>, String, String) {
    let mut child = spawn(vars, 1024);
    let end = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), out, err)
}

#[test]
fn bad_settings_stop_the_relay_by_name_before_it_listens_and_never_print_a_key() {
    let (key, stored) = new_key("k1").unwrap();
    let secret = key.split_once('.').unwrap().1.to_owned();
    let base = env("http://127.0.0.1:9", &stored.text());
    let with = |name: &str, value: &str| {
        let mut vars = base.clone();
        vars.push((name.to_owned(), value.to_owned()));
        vars
    };
    let cases = [
        (with("RELAY_KEYS", &key), "RELAY_KEYS: entry 1 is not a stored key"),
        (with("RELAY_KEYS", &format!("{},{key}", stored.text())), "RELAY_KEYS: entry 2"),
        (with("RELAY_WEBHOOK_KEYS", &key), "RELAY_WEBHOOK_KEYS: entry 1"),
        (
            with("RELAY_MAX_CONCURRENT", "18446744073709551615"),
            "RELAY_MAX_CONCURRENT must be a whole number from 1 to 100000",
        ),
        (with("RELAY_RATE_PER_KEY", "4294967296"), "RELAY_RATE_PER_KEY must be a whole number from 1 to 100000"),
        (with("RELAY_CATCH_UP_MINUTES", "307445734561825861"), "RELAY_CATCH_UP_MINUTES must be a whole number from 0"),
        (with("RELAY_MAX_BODY_BYTES", &secret), "RELAY_MAX_BODY_BYTES must be a whole number"),
        (with("RELAY_MAX_CONNECTIONS", "1000000"), "RELAY_MAX_CONNECTIONS is 1000000"),
    ];
    for (vars, expected) in cases {
        let (code, out, err) = refused(&vars);
        assert_eq!(code, Some(2), "{expected}: {err}");
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(!out.contains("listening"), "{expected}: it listened");
        assert!(!err.contains(&secret) && !out.contains(&secret), "{expected}: the key was printed: {err}");
    }
}
