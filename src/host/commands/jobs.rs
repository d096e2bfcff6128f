//! The driver of the core's state machines, the jobs over many contacts (export, pull consents,
//! pull changes) and the contact commands: it runs a [`Job`]'s actions (Web API requests,
//! SALESmanago calls, timers, the progress indicator, the form's fills, notifications and
//! dialogs) and feeds back what came of them. Every decision is the core's.

use crate::prelude::*;
use ::core::future::Future;
use ::core::pin::Pin;

use futures_util::future::poll_immediate;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::core::command::BulkJob;
#[cfg(feature = "contact")]
use crate::core::job::contact::FormAction;
use crate::core::job::{record_columns, Action, Job, Reply, Start, Ticket};

use super::super::browser::{now_ms, random_seed, sleep, yield_now};
use super::super::dynamics::{consent_columns, exchange, refresh_grid, FormContext, Send, Ui};
use super::super::transport::{download, perform, Download};
use super::{load_settings, Context, Done, Failure, Outcome};
use crate::core::salesmanago::HttpResponse;

/// Something the driver waits for: a reply, a part of a download (with the wait for the
/// rest), or the job's timer.
enum Event {
    Reply(Ticket, Reply),
    #[cfg(feature = "consents")]
    Part(Ticket, Vec<u8>, Pending),
    Timer,
}

type Pending = Pin<Box<dyn Future<Output = Event>>>;

/// Runs `job` to its end.
#[cfg(feature = "jobs")]
pub(super) async fn run(context: Context, job: BulkJob) -> Outcome {
    let web_api = context.web_api()?;
    let ui = context.ui();
    // The record and the consent columns at once: one round trip before the job starts.
    let (loaded, consents) =
        futures_util::future::join(load_settings(&web_api, &record_columns(job)), consent_columns(&ui)).await;
    let ((settings, record), consents) = (loaded?, consents?);
    let start = Start {
        job,
        lang: context.lang,
        settings,
        user: ui.user()?,
        record,
        consents,
        selected: context.selected_ids.clone(),
        changed: Vec::new(),
        read: None,
        now_ms: now_ms(),
        seed: random_seed(),
    };
    drive(&context, Job::new(start)).await
}

/// The longest the driver works on before it lets the page take its turn (input, rendering):
/// well under the 50 ms that make a long task.
const SLICE_MS: u64 = 20;

/// Runs `job` to its end.
pub(super) async fn drive(context: &Context, mut job: Job) -> Outcome {
    let ui = context.ui();
    let root = format!("{}/api/data/v9.2/", ui.client_url()?);
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut timer: Option<u64> = None;
    // When the page last had its turn.
    let mut turn_ms = now_ms();
    loop {
        while let Some(action) = job.poll(now_ms()) {
            match execute(action, context, &ui, &root) {
                Step::Wait(future) => {
                    pending.push(future);
                    // Polled once now, so its request goes out before the job's next work.
                    if let Some(Some(event)) = poll_immediate(pending.next()).await {
                        timer = on(&mut job, event, timer, &mut pending);
                    }
                }
                Step::Shown => {}
                Step::End(outcome) => return outcome,
            }
            // Answers that come in a wave are worked on in one go unless the page gets turns.
            if now_ms().saturating_sub(turn_ms) > SLICE_MS {
                yield_now().await;
                turn_ms = now_ms();
            }
        }
        if let Some(at) = job.poll_timeout() {
            if timer.is_none_or(|set| at < set) {
                timer = Some(at);
                pending.push(Box::pin(async move {
                    sleep(at.saturating_sub(now_ms())).await;
                    Event::Timer
                }));
            }
        }
        let event = match poll_immediate(pending.next()).await {
            Some(event) => event,
            // Nothing in yet: the page has its turn while the driver waits.
            None => {
                let event = pending.next().await;
                turn_ms = now_ms();
                event
            }
        };
        match event {
            Some(event) => timer = on(&mut job, event, timer, &mut pending),
            None => unreachable!("a job that has not finished waits for a reply or its timer"),
        }
        // Every other answer in already is handed over before the job works on any: the
        // requests they allow go out first, instead of one page's work after another's.
        while let Some(Some(event)) = poll_immediate(pending.next()).await {
            timer = on(&mut job, event, timer, &mut pending);
        }
    }
}

/// Hands `event` to the job; the timer still set afterwards (`pending` takes the rest of a
/// download, which only Pull consents' engine makes).
#[cfg_attr(not(feature = "consents"), allow(unused_variables))]
fn on(job: &mut Job, event: Event, timer: Option<u64>, pending: &mut FuturesUnordered<Pending>) -> Option<u64> {
    match event {
        Event::Reply(ticket, reply) => {
            job.handle(ticket, reply, now_ms());
            timer
        }
        #[cfg(feature = "consents")]
        Event::Part(ticket, bytes, rest) => {
            job.handle(ticket, Reply::Part(bytes), now_ms());
            pending.push(rest);
            timer
        }
        Event::Timer => None,
    }
}

/// What taking an action gave.
enum Step {
    /// The future of its reply.
    Wait(Pending),
    /// Progress was shown.
    Shown,
    /// The job is over.
    End(Outcome),
}

/// Takes `action`.
fn execute(action: Action, context: &Context, ui: &Ui, root: &str) -> Step {
    Step::Wait(match action {
        Action::Read { ticket, read } => Box::pin(web_api(ticket, read.url(root), read.prefer(), Method::Get)),
        Action::Write { ticket, writes } => {
            let batch = writes.batch(root);
            let post = Method::Post { content_type: batch.content_type, body: batch.body };
            Box::pin(web_api(ticket, format!("{root}$batch"), "odata.continue-on-error".into(), post))
        }
        Action::Get { ticket, path } => Box::pin(web_api(ticket, format!("{root}{path}"), String::new(), Method::Get)),
        Action::Patch { ticket, path, if_match, body } => {
            let patch = Method::Patch { if_match, body };
            Box::pin(web_api(ticket, format!("{root}{path}"), "return=representation".into(), patch))
        }
        Action::Delete { ticket, path } => {
            Box::pin(web_api(ticket, format!("{root}{path}"), String::new(), Method::Delete))
        }
        #[cfg(feature = "contact")]
        Action::Form { ticket, act } => match (form(act, context, ui), ticket) {
            (Some(future), Some(ticket)) => Box::pin(async move { Event::Reply(ticket, Reply::Form(future.await)) }),
            // Done at once, or an answer nobody asked for.
            _ => return Step::Shown,
        },
        Action::Call { ticket, request, timeout_ms } => {
            Box::pin(async move { Event::Reply(ticket, Reply::Salesmanago(perform(&request, timeout_ms).await)) })
        }
        #[cfg(feature = "consents")]
        Action::Download { ticket, url, idle_timeout_ms } => Box::pin(async move {
            match download(&url, idle_timeout_ms).await {
                Ok(Ok(body)) => next_part(ticket, body).await,
                Ok(Err(response)) => Event::Reply(ticket, Reply::Salesmanago(Ok(response))),
                Err(failure) => Event::Reply(ticket, Reply::Salesmanago(Err(failure))),
            }
        }),
        Action::Progress(message) => {
            ui.progress(&context.say(&message));
            return Step::Shown;
        }
        Action::Finished(result) => {
            ui.close_progress();
            return Step::End(match result {
                Ok(summary) => Ok(Done {
                    message: summary.message,
                    details: summary.details,
                    download: summary.download,
                    close_form: summary.close_form,
                }),
                Err(failure) => Err(Failure::new(failure.message, failure.kind)),
            });
        }
    })
}

/// A Web API request of a job, owned until it is answered.
enum Method {
    Get,
    Post { content_type: String, body: String },
    Patch { if_match: String, body: String },
    Delete,
}

/// The answer to a Web API request of a job: one future for every kind of request, so the
/// request code is compiled once.
async fn web_api(ticket: Ticket, url: String, prefer: String, method: Method) -> Event {
    let send = match &method {
        Method::Get => Send::Get,
        Method::Post { content_type, body } => Send::Post(content_type, body),
        Method::Patch { if_match, body } => Send::Patch(if_match, body),
        Method::Delete => Send::Delete,
    };
    Event::Reply(ticket, Reply::Dataverse(exchange(&url, &prefer, send).await))
}

/// The next part of a download, with the wait for the one after; or its end.
#[cfg(feature = "consents")]
async fn next_part(ticket: Ticket, mut body: Download) -> Event {
    match body.next().await {
        Ok(Some(bytes)) => sliced(ticket, bytes, 0, body),
        Ok(None) => {
            let end = HttpResponse { date: None, status: body.status(), retry_after: None, body: String::new() };
            Event::Reply(ticket, Reply::Salesmanago(Ok(end)))
        }
        Err(failure) => Event::Reply(ticket, Reply::Salesmanago(Err(failure))),
    }
}

/// `chunk` from `at` as parts of at most [`Reply::PART_MAX`] bytes, each after a turn of the
/// event loop; then the download's next chunk.
#[cfg(feature = "consents")]
fn sliced(ticket: Ticket, chunk: Vec<u8>, at: usize, body: Download) -> Event {
    let end = chunk.len().min(at + Reply::PART_MAX);
    if at == 0 && end == chunk.len() {
        return Event::Part(ticket, chunk, Box::pin(next_part(ticket, body)));
    }
    let part = chunk[at..end].to_vec();
    let rest: Pending = match end == chunk.len() {
        true => Box::pin(next_part(ticket, body)),
        false => Box::pin(async move {
            yield_now().await;
            sliced(ticket, chunk, end, body)
        }),
    };
    Event::Part(ticket, part, rest)
}

#[cfg(feature = "contact")]
type FormReply = Pin<Box<dyn Future<Output = Result<usize, String>>>>;

/// Does what the form or grid is asked; the future of its answer, when one is wanted.
#[cfg(feature = "contact")]
fn form(act: FormAction, context: &Context, ui: &Ui) -> Option<FormReply> {
    let form = FormContext(context.primary_control.clone());
    match act {
        FormAction::Fill(columns) => {
            let mut filled = 0;
            for (column, value) in columns.iter() {
                match form.fill(column, value) {
                    Ok(true) => filled += 1,
                    Ok(false) => {}
                    Err(error) => return Some(Box::pin(async move { Err(error.message) })),
                }
            }
            Some(Box::pin(async move { Ok(filled) }))
        }
        FormAction::Confirm(message) => {
            let (ui, text) = (ui.clone(), context.say(&message.brief()));
            Some(Box::pin(async move { ui.confirm(&text).await.map(usize::from).map_err(|e| e.message) }))
        }
        FormAction::Notify { id, level, message } => {
            form.notify(id, level.name(), message.map(|m| context.say(&m.brief())).as_deref());
            None
        }
        FormAction::Refresh { if_clean } => {
            if !if_clean || !form.is_dirty() {
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = form.refresh().await;
                });
            }
            None
        }
        FormAction::RefreshGrid => {
            refresh_grid(&context.selected_control);
            None
        }
    }
}
