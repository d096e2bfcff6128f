//! What the relay's tests share.

use std::net::SocketAddr;

use axum::Router;

/// Runs the relay over `config` as `salesmanago-relay serve` does (its connection layer
/// included) on a free port of 127.0.0.1; its address.
#[allow(dead_code)]
pub(crate) async fn spawn_relay(config: salesmanago_relay::Config) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { salesmanago_relay::serve(listener, config, std::future::pending()).await.unwrap() });
    address
}

/// [`spawn_relay`], with the count of the relay's work after its answers.
#[allow(dead_code)]
pub(crate) async fn spawn_watched(config: salesmanago_relay::Config) -> (SocketAddr, salesmanago_relay::After) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (tell, after) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let tell = move |after| drop(tell.send(after));
        salesmanago_relay::serve_with(listener, config, std::future::pending(), tell).await.unwrap()
    });
    (address, after.await.unwrap())
}

/// Serves `router` on a free port of 127.0.0.1; its address.
#[allow(dead_code)]
pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// The origin the tests' relays allow.
#[allow(dead_code)]
pub(crate) const ORIGIN: &str = "https://contoso.crm4.dynamics.com";

/// A relay's settings: the account `cid` / `secret` / `owner@example.com` at `endpoint`, the
/// browser keys `keys` (stored forms), [`ORIGIN`] allowed, and `extra`.
#[allow(dead_code)]
pub(crate) fn settings(endpoint: &str, keys: &[String], extra: &[(&str, &str)]) -> salesmanago_relay::Config {
    let mut vars: Vec<(String, String)> = vec![
        ("SALESMANAGO_CLIENT_ID".into(), "cid".into()),
        ("SALESMANAGO_API_SECRET".into(), "secret".into()),
        ("SALESMANAGO_OWNER".into(), "owner@example.com".into()),
        ("SALESMANAGO_ENDPOINT".into(), endpoint.into()),
        ("RELAY_ALLOWED_ORIGINS".into(), ORIGIN.into()),
        ("RELAY_KEYS".into(), keys.join(",")),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let read = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    salesmanago_relay::Config::from_vars(read).unwrap()
}

/// The log lines written while a test runs on its one thread.
#[derive(Clone, Default)]
#[allow(dead_code)]
pub(crate) struct Logs(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures the JSON log lines written on this thread (the relay's format) until the guard
    /// is dropped.
    #[allow(dead_code)]
    pub(crate) fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber =
            tracing_subscriber::fmt().json().flatten_event(true).with_writer(move || writer.clone()).finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far.
    #[allow(dead_code)]
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
