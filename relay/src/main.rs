//! `salesmanago-relay [serve]`: runs the relay with the settings of the environment (see the
//! README). `salesmanago-relay new-key <id>`: makes a relay key. `salesmanago-relay register` /
//! `unregister`: registers (or removes) Dataverse's webhook to the relay, through the Web API.

use std::process::ExitCode;

use salesmanago_relay::config::Registration;
use salesmanago_relay::{dataverse, keys, register, Config};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["serve"] => serve(),
        ["new-key", id] => match keys::new_key(id) {
            Ok((key, stored)) => {
                println!("relay key, for the SALESmanago Integration record: {key}");
                println!("its stored form, for RELAY_KEYS: {}", stored.text());
                ExitCode::SUCCESS
            }
            Err(problem) => fail(&problem),
        },
        ["register"] => registration(true),
        ["unregister"] => registration(false),
        _ => fail("usage: salesmanago-relay [serve] | new-key <id> | register | unregister"),
    }
}

fn fail(problem: &str) -> ExitCode {
    eprintln!("salesmanago-relay: {problem}");
    ExitCode::from(2)
}

/// `register` (`true`) or `unregister`, printing what was done.
fn registration(add: bool) -> ExitCode {
    let settings = match Registration::from_vars(|name| std::env::var(name).ok(), add) {
        Ok(settings) => settings,
        Err(problem) => return fail(&problem.0),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let http = reqwest::Client::builder().build().expect("a TLS client with the built-in roots");
        let dataverse = dataverse::Dataverse::new(settings.dataverse, http);
        let done = if add {
            register::register(&dataverse, &settings.url, &settings.key).await
        } else {
            register::unregister(&dataverse).await
        };
        match done {
            Ok(report) => {
                for line in &report {
                    println!("{line}");
                }
                if report.is_empty() {
                    println!("nothing was registered");
                }
                ExitCode::SUCCESS
            }
            Err(problem) => fail(&problem.to_string()),
        }
    })
}

fn serve() -> ExitCode {
    let config = match Config::from_vars(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(problem) => return fail(&problem.0),
    };
    if let Err(problem) = config.connection_cap(salesmanago_relay::server::descriptors()) {
        return fail(&problem.0);
    }
    tracing_subscriber::fmt().json().flatten_event(true).with_current_span(false).with_target(false).init();
    // A panic is logged with its place only (its message could hold a value), and then caught:
    // one request's panic is its own 500, a background task's ends that task only.
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(target: "panic", place = place.as_str(), "panic");
    }));
    // One thread: the accept loop and every connection on it, none waking another. More: a
    // pool of that many workers (the accept loop on this thread).
    let runtime = match config.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    };
    let runtime = runtime.expect("a runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(e) => return fail(&format!("cannot listen on {}: {e}", config.listen)),
        };
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(
            listening = address.as_str(),
            origins = config.origins.join(",").as_str(),
            keys = config.keys.len()
        );
        // Ctrl-C, or SIGTERM from systemd or a container runtime: finish what is under way.
        let shutdown = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        };
        match salesmanago_relay::serve(listener, config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => fail(&problem.0),
        }
    })
}
