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

/// Serves `router` on a free port of 127.0.0.1; its address.
pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}
