//! The relay's driver of the core's jobs, as `src/host/commands/jobs.rs` is the browser's: it
//! performs a [`Job`]'s actions (Web API requests as the application user, signed SALESmanago
//! calls, the job's timer) and hands back what came of them. Every decision is the core's; a
//! form's actions have no form here and are answered as done.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt};

use salesmanago_dynamics::core::dataverse::error::DvFailure;
use salesmanago_dynamics::core::job::contact::FormAction;
use salesmanago_dynamics::core::job::{Action, Job, JobFailure, Reply, Summary, Ticket};
use salesmanago_dynamics::core::salesmanago::TransportFailure;

use crate::dataverse::{Dataverse, Method};
use crate::{now_ms, Relay};

type Pending<'a> = Pin<Box<dyn Future<Output = Option<(Ticket, Reply)>> + Send + 'a>>;

/// Runs `job` to its end: its summary, or why it failed.
pub(crate) async fn drive(relay: &Relay, dataverse: &Dataverse, job: &mut Job) -> Result<Summary, JobFailure> {
    watched(relay, dataverse, job, |_| {}).await
}

/// Runs `job` to its end, showing it to `watch` after each reply it takes.
pub(crate) async fn watched(
    relay: &Relay,
    dataverse: &Dataverse,
    job: &mut Job,
    mut watch: impl FnMut(&Job),
) -> Result<Summary, JobFailure> {
    let root = dataverse.service_root();
    let mut pending: FuturesUnordered<Pending<'_>> = FuturesUnordered::new();
    loop {
        while let Some(action) = job.poll(now_ms()) {
            if let Action::Finished(result) = action {
                return result;
            }
            if let Some(future) = execute(action, relay, dataverse, &root) {
                pending.push(future);
            }
        }
        // A planned retry: a timer, until the job's next poll.
        if let Some(at) = job.poll_timeout() {
            pending.push(Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(at.saturating_sub(now_ms()))).await;
                None
            }));
        }
        match pending.next().await {
            Some(Some((ticket, reply))) => {
                job.handle(ticket, reply, now_ms());
                watch(job);
            }
            Some(None) => {}
            // Nothing under way and nothing planned, yet not finished: the job cannot go on.
            None => {
                let message = salesmanago_dynamics::core::i18n::Message::Dataverse {
                    detail: "the job stopped without an end".into(),
                };
                return Err(JobFailure { message, kind: "stalled" });
            }
        }
    }
}

/// Takes `action`: the future of its reply, if one is wanted.
fn execute<'a>(action: Action, relay: &'a Relay, dataverse: &'a Dataverse, root: &str) -> Option<Pending<'a>> {
    let dv = |ticket, url: String, prefer: &'static str, send: Owned| -> Pending<'a> {
        Box::pin(async move {
            let answer: Result<_, DvFailure> = dataverse.exchange(&url, prefer, send.borrow()).await;
            Some((ticket, Reply::Dataverse(answer)))
        })
    };
    Some(match action {
        Action::Read { ticket, read } => {
            let url = read.url(root);
            Box::pin(async move {
                Some((ticket, Reply::Dataverse(dataverse.exchange(&url, &read.prefer(), Method::Get).await)))
            })
        }
        Action::Write { ticket, writes } => {
            let batch = writes.batch(root);
            dv(ticket, format!("{root}$batch"), "odata.continue-on-error", Owned::Post(batch.content_type, batch.body))
        }
        Action::Get { ticket, path } => dv(ticket, format!("{root}{path}"), "", Owned::Get),
        Action::Patch { ticket, path, if_match, body } => {
            dv(ticket, format!("{root}{path}"), "return=representation", Owned::Patch(if_match, body))
        }
        Action::Delete { ticket, path } => dv(ticket, format!("{root}{path}"), "", Owned::Delete),
        Action::Call { ticket, request, timeout_ms } => Box::pin(async move {
            let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
            Some((ticket, Reply::Salesmanago(relay.post_signed(&request, timeout).await)))
        }),
        // No job the relay runs downloads; were one to, it would fail as unreachable.
        Action::Download { ticket, .. } => {
            Box::pin(async move { Some((ticket, Reply::Salesmanago(Err(TransportFailure::Network)))) })
        }
        // There is no form: a confirmation counts as given, a fill as made.
        Action::Form { ticket: Some(ticket), act } => {
            let done = match act {
                FormAction::Fill(columns) => columns.len(),
                _ => 1,
            };
            Box::pin(async move { Some((ticket, Reply::Form(Ok(done)))) })
        }
        Action::Form { ticket: None, .. } | Action::Progress(_) | Action::Finished(_) => return None,
    })
}

/// A request's method and body, owned by its future.
enum Owned {
    Get,
    Post(String, String),
    Patch(String, String),
    Delete,
}

impl Owned {
    fn borrow(&self) -> Method<'_> {
        match self {
            Owned::Get => Method::Get,
            Owned::Post(content_type, body) => Method::Post(content_type, body),
            Owned::Patch(if_match, body) => Method::Patch(if_match, body),
            Owned::Delete => Method::Delete,
        }
    }
}
