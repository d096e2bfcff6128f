//! The connection layer: hyper's HTTP/1 server under the relay's routes, with every timer a
//! server facing the internet needs, and a cap on open connections below the file-descriptor
//! limit.
//!
//! - A request's headers must arrive within `RELAY_HEADER_TIMEOUT_MS`, counted from when the
//!   connection opens or its last answer ends, so the same timer closes idle keep-alive
//!   connections and header dribblers (hyper's `header_read_timeout`).
//! - Its body within `RELAY_BODY_TIMEOUT_MS`, all of it ([`crate::intake`]).
//! - An answer the caller does not read ends the connection after `RELAY_WRITE_TIMEOUT_MS`
//!   without progress.
//! - Over the cap a connection gets a `503` and is closed at once, never left waiting (given
//!   half a second to read it, while few are).
//! - The header section is at most 64 KiB (hyper answers `431` past it).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

use salesmanago_dynamics::core::salesmanago::relay::Refusal;

use crate::config::{Config, ConfigError};

/// The largest header section taken.
const MAX_HEADERS_BYTES: usize = 64 * 1024;

/// How long connections under way may take to finish after a shutdown is asked.
const DRAIN: Duration = Duration::from_secs(30);

/// The soft limit on the process's open files, when it can be read.
pub fn descriptors() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
}

/// Serves the relay over `config` on `listener` until `shutdown` completes, then lets the
/// connections under way finish, and then the work left after their answers (each for at most
/// 30 s).
///
/// Fails when the connection cap does not fit the process's file descriptors (before serving).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ConfigError> {
    serve_with(listener, config, shutdown, |_| {}).await
}

/// [`serve`], handing `after` the count of work going on after answers (a host that waits for
/// it; the tests, to look at Dynamics once the statuses are written back).
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
    after: impl FnOnce(crate::After),
) -> Result<(), ConfigError> {
    let cap = config.connection_cap(descriptors())?;
    let (header_timeout, write_timeout) = (config.header_timeout, config.write_timeout);
    let (router, work) = crate::app_and_after(config);
    after(work.clone());
    let after = work;
    tracing::info!(connections = cap as u64, "connection cap");
    accept(listener, router, Limits { cap, header_timeout, write_timeout }, shutdown).await;
    // Bursts answered whose statuses are still being written back.
    if tokio::time::timeout(DRAIN, after.finished()).await.is_err() {
        tracing::warn!("work after answers (status write-backs) cut short by the shutdown");
    }
    Ok(())
}

/// What the connection layer bounds.
struct Limits {
    cap: usize,
    header_timeout: Duration,
    write_timeout: Duration,
}

async fn accept(listener: TcpListener, router: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let open = Arc::new(Semaphore::new(limits.cap));
    let lingering = Arc::new(Semaphore::new(LINGERING));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEADERS_BYTES);
    let mut refused = Quiet::new("connections over the cap refused");
    let mut failed = Quiet::new("connections could not be accepted");
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or memory: wait a little rather than spin.
                failed.note(Some(&error));
                if !matches!(error.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(stream, &lingering);
            refused.note(None);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let connection = builder.serve_connection(TokioIo::new(Box::pin(io)), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Refused connections given a moment to read their `503` before they are closed, at most.
const LINGERING: usize = 64;

/// How long a refused connection is given to read its `503`.
const LINGER: Duration = Duration::from_millis(500);

/// Answers a connection over the cap with `503 busy` and closes it. Closing a socket whose
/// request was not read resets it, and the caller may lose the answer; so, while fewer than
/// [`LINGERING`] do, the request is read and dropped for up to [`LINGER`] after the answer.
/// Beyond that, the answer is written as far as the socket takes it at once, and it is closed.
fn refuse(stream: TcpStream, lingering: &Arc<Semaphore>) {
    let body = Refusal::Busy.body();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        let _ = stream.try_write(answer.as_bytes());
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(LINGER, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), io::Error>(())
        })
        .await;
        drop(permit);
    });
}

/// A warning logged at most once a second, with how many times it happened meanwhile, so a
/// flood of connections cannot flood the log.
struct Quiet {
    what: &'static str,
    count: u64,
    logged: Option<Instant>,
}

impl Quiet {
    fn new(what: &'static str) -> Quiet {
        Quiet { what, count: 0, logged: None }
    }

    fn note(&mut self, error: Option<&io::Error>) {
        self.count += 1;
        if self.logged.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        let error = error.map(|e| e.kind().to_string()).unwrap_or_default();
        tracing::warn!(target: "connections", count = self.count, error = error.as_str(), "{}", self.what);
        self.count = 0;
        self.logged = Some(Instant::now());
    }
}
