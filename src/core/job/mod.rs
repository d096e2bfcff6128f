//! The jobs over many contacts as state machines, without I/O (quinn-proto's `Connection` is
//! the model): export (selected, all, resumed), pull consents and pull changes.
//!
//! ```text
//!   host ──poll(now)──▶ Job ──▶ Action: read a page │ write a $batch │ update the record │
//!                        ▲                          call SALESmanago │ progress │ finished
//!   host ──handle(ticket, reply, now)──┘     (poll_timeout(): when to poll if nothing answers)
//! ```
//!
//! Every decision is here: paging and batching, matching, the checkpoint and the resume, the
//! pull watermark, the tally, retries and waits for both services. The host executes actions
//! and feeds back what came of them; `tests/simulation` drives the same jobs against
//! in-memory services with seeded faults and a simulated clock.

use crate::prelude::*;

#[cfg(feature = "activity")]
mod activity;
#[cfg(feature = "export")]
mod catchup;
#[cfg(feature = "changes")]
mod changes;
#[cfg(feature = "consents")]
mod consents;
#[cfg(feature = "contact")]
pub mod contact;
// The relay's webhook deliveries and rule calls: the relay holds every engine's work.
#[cfg(all(feature = "contact", feature = "export", feature = "consents", feature = "changes", feature = "activity"))]
pub mod deliveries;
#[cfg(feature = "export")]
mod export;
pub mod lease;
mod recheck;
#[cfg(any(feature = "contact", feature = "export"))]
mod removal;
mod rng;
#[cfg(all(feature = "contact", feature = "export", feature = "consents", feature = "changes", feature = "activity"))]
pub mod rules;
mod runner;
mod units;

use crate::core::command::BulkJob;
use crate::core::dataverse::batch::{self, BatchBody};
use crate::core::dataverse::error::DvFailure;
use crate::core::dataverse::query;
use crate::core::dataverse::schema::{self, integration, Job as JobColumns};
use crate::core::i18n::{csv_titles, text, Counts, Lang, Message};
use crate::core::integration::Settings;
use crate::core::json::{Map, Value};
use crate::core::salesmanago::operation::BatchUpsert;
use crate::core::salesmanago::{HttpRequest, HttpResponse, TransportFailure};
use crate::core::sync::{iso_datetime, Tally};

#[cfg(feature = "export")]
pub use export::Settled;
use lease::User;
use runner::{Error, Output, Runner};

/// Names a request of a job; its reply is handed back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// A page of contacts to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The query options (`?$select=…`) or the next page's query.
    pub query: String,
    /// A change-tracked read (`Prefer: odata.track-changes`): its last page carries the delta
    /// link, and a delta read its deleted rows.
    pub track: bool,
    /// Rows per page (`odata.maxpagesize`); 0 asks for none (a read bounded by `$top`).
    pub page: u32,
}

impl Read {
    /// Contacts per page: one SALESmanago batch.
    pub const PAGE: u32 = BatchUpsert::MAX as u32;
    /// Ids per page of a read of ids alone: Dataverse's largest page.
    pub const KEYS_PAGE: u32 = 5000;

    /// A read of `query`, [`Read::PAGE`] rows a page, not change-tracked. A query bounded by
    /// `$top` asks for no page size: Microsoft's "Page results" and "Limit the number of rows"
    /// pages (Web API, query data) say not to combine the two; `$top` alone answers at most that
    /// many rows, and no next page.
    pub fn of(query: String) -> Read {
        let page = if query.contains("$top=") { 0 } else { Self::PAGE };
        Read { query, track: false, page }
    }

    /// The request's URL under the Web API root (`https://org…/api/data/v9.2/`).
    pub fn url(&self, service_root: &str) -> String {
        format!("{service_root}{}{}", schema::contact::ENTITY_SET, self.query)
    }

    /// The `Prefer` header; names of lookups when the admin's mapping reads one.
    pub fn prefer(&self) -> String {
        let mut prefer: Vec<String> = Vec::new();
        if self.track {
            prefer.push("odata.track-changes".into());
        }
        if self.page > 0 {
            prefer.push(format!("odata.maxpagesize={}", self.page));
        }
        if query::selects_lookup(&self.query) {
            prefer.push("odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"".into());
        }
        prefer.join(",")
    }
}

/// Rows to write in one `$batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writes {
    /// Each row's id and columns.
    pub rows: Vec<(String, Map)>,
    /// Makes the batch boundary unique.
    pub tag: String,
    /// What the writes are.
    pub writing: Writing,
}

/// What a `$batch` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// Columns of existing contacts (`If-Match: *`).
    ContactUpdates,
    /// New SALESmanago activity rows, each created only if its id is not there
    /// (`If-None-Match: *`): `412` means there already.
    NewActivities,
}

impl Writes {
    /// The `$batch` request under the Web API root; it is POSTed to `{root}$batch` with
    /// `Prefer: odata.continue-on-error`.
    pub fn batch(&self, service_root: &str) -> BatchBody {
        match self.writing {
            Writing::ContactUpdates => batch::updates(service_root, schema::contact::ENTITY_SET, &self.rows, &self.tag),
            Writing::NewActivities => {
                batch::creations(service_root, schema::activity::ENTITY_SET, &self.rows, &self.tag)
            }
        }
    }
}

/// What a job asks the host to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// GET a page of contacts; reply with [`Reply::Dataverse`].
    Read {
        /// Hand back with the reply.
        ticket: Ticket,
        /// What to read.
        read: Read,
    },
    /// POST a `$batch`; reply with [`Reply::Dataverse`].
    Write {
        /// Hand back with the reply.
        ticket: Ticket,
        /// What to write.
        writes: Writes,
    },
    /// GET a row of the Web API (`{root}{path}`, the integration record); reply with
    /// [`Reply::Dataverse`].
    Get {
        /// Hand back with the reply.
        ticket: Ticket,
        /// The row and its query options, under the Web API root.
        path: String,
    },
    /// PATCH a row (`{root}{path}`) with `If-Match: {if_match}` and this JSON body; reply with
    /// [`Reply::Dataverse`] (`412` when the row changed since it was read).
    Patch {
        /// Hand back with the reply.
        ticket: Ticket,
        /// The row, under the Web API root.
        path: String,
        /// The ETag the row must still have.
        if_match: String,
        /// The columns to write, as JSON.
        body: String,
    },
    /// DELETE a row (`{root}{path}`); reply with [`Reply::Dataverse`].
    Delete {
        /// Hand back with the reply.
        ticket: Ticket,
        /// The row, under the Web API root.
        path: String,
    },
    /// Something for the form or grid to do; with a ticket, reply with [`Reply::Form`]. Only
    /// the contact commands ask.
    #[cfg(feature = "contact")]
    Form {
        /// Hand back with the reply, when one is wanted.
        ticket: Option<Ticket>,
        /// What to do.
        act: contact::FormAction,
    },
    /// Send a signed request to SALESmanago; reply with [`Reply::Salesmanago`].
    Call {
        /// Hand back with the reply.
        ticket: Ticket,
        /// The request.
        request: HttpRequest,
        /// Give up waiting after this long (a [`TransportFailure::Timeout`]).
        timeout_ms: u32,
    },
    /// GET a file SALESmanago handed out (an export's `fileUrl`), with no credentials and no
    /// headers: each part of the body as it arrives with [`Reply::Part`], then
    /// [`Reply::Salesmanago`] with the status (and the body, when the status is not 2xx) or why
    /// there was none. Give up when no part comes for `idle_timeout_ms`. Only Pull consents
    /// downloads, in its own engine.
    #[cfg(feature = "consents")]
    Download {
        /// Hand back with each reply.
        ticket: Ticket,
        /// The file's address ([`crate::core::salesmanago::endpoint::is_file_address`]).
        url: String,
        /// The longest wait for the next part.
        idle_timeout_ms: u32,
    },
    /// Show this progress (replacing the last).
    Progress(Message),
    /// The job is over; close the progress and tell the user.
    Finished(Result<Summary, JobFailure>),
}

/// What came of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The Web API's answer, or what the client API said instead.
    Dataverse(Result<HttpResponse, DvFailure>),
    /// SALESmanago's answer, or why there was none.
    Salesmanago(Result<HttpResponse, TransportFailure>),
    /// The next part of a [`Action::Download`]'s body, at most [`Reply::PART_MAX`] bytes.
    #[cfg(feature = "consents")]
    Part(Vec<u8>),
    /// The form's answer: columns filled, or 1 when the user confirmed; or what failed.
    #[cfg(feature = "contact")]
    Form(Result<usize, String>),
}

impl Reply {
    /// The most bytes of a download a job reads at once. Reading a part is parsing it (about
    /// 0.3 ms a kilobyte of Pull consents' file in wasm here), and a browser can hand over
    /// megabytes in one chunk; the host gives larger chunks in slices, letting the page take its
    /// turn between them, so no task reading a file runs much over 20 ms.
    pub const PART_MAX: usize = 64 * 1024;
}

/// How a job ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The summary to show.
    pub message: Message,
    /// Further lines (warnings), in the user's language.
    pub details: Vec<String>,
    /// Close the form once the user has read the message (its record is gone).
    pub close_form: bool,
    /// How many contacts did not go, and their CSV, when there are any.
    pub download: Option<(u64, String)>,
    /// The counts and the contacts listed.
    pub tally: Tally,
}

/// Why a job stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// What to tell the user.
    pub message: Message,
    /// A stable name of the failure, for scripts.
    pub kind: &'static str,
}

impl From<Error> for JobFailure {
    fn from(error: Error) -> JobFailure {
        let kind = error.kind();
        JobFailure { message: error.into_message(), kind }
    }
}

/// What a job starts from: what the host read before it.
#[derive(Debug, Clone)]
pub struct Start {
    /// Which job.
    pub job: BulkJob,
    /// The user's language.
    pub lang: Lang,
    /// The integration record's settings.
    pub settings: Settings,
    /// The user starting it, named in its lease.
    pub user: User,
    /// The integration record as the host read it with the settings: its `@odata.etag` and
    /// the columns of [`record_columns`].
    pub record: Map,
    /// The contact table's consent columns (the job adds the admin's mapped columns).
    pub consents: Vec<String>,
    /// The contacts selected in a grid (ids without braces).
    pub selected: Vec<String>,
    /// The columns each contact's change set deliberately (webhook events): the consent rule
    /// takes a change there as the user's. Empty in the browser.
    pub changed: Vec<(String, Vec<String>)>,
    /// Rows the host read already for it (a burst's contacts, read beside the record);
    /// `None` for a job that reads its own.
    pub read: Option<Prefetched>,
    /// Now, Unix ms.
    pub now_ms: u64,
    /// Random bits for request keys and jitter.
    pub seed: u64,
}

/// SALESmanago contacts to apply ([`Job::pull_named`]): by id, and by e-mail those without.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    /// SALESmanago contact ids.
    pub ids: Vec<String>,
    /// E-mails of contacts named without an id.
    pub emails: Vec<String>,
}

/// Rows read before a job started, and when: the answer's `Date` (Dataverse's clock) and the
/// host's time it came.
#[derive(Debug, Clone)]
pub struct Prefetched {
    /// The rows, in one page.
    pub rows: Vec<Value>,
    /// The answer's `Date` header.
    pub date: Option<String>,
    /// The host's time the answer came, Unix ms.
    pub at_ms: u64,
}

const EXPORT_RECORD: &[&str] = &[JobColumns::Export.checkpoint_column()];
const ACTIVITY_RECORD: &[&str] =
    &[integration::ACTIVITY_WATERMARK, integration::ACTIVITY_KINDS, integration::ACTIVITY_DAYS];
const EXPORT_CHANGES_RECORD: &[&str] =
    &[integration::CATCH_UP_WATERMARK, integration::CATCH_UP_DELTA, JobColumns::Export.last_run_column()];

/// The integration record's columns a job reads at its start, besides the settings (its lease
/// among them).
pub fn record_columns(job: BulkJob) -> Vec<&'static str> {
    let own = state_columns(job);
    job.state().map(JobColumns::lease_column).into_iter().chain(own.iter().copied()).collect()
}

/// The job's own columns it reads at its start.
fn state_columns(job: BulkJob) -> &'static [&'static str] {
    match job {
        BulkJob::ExportAll => EXPORT_RECORD,
        BulkJob::PullChanges => &[integration::CHANGES_WATERMARK],
        BulkJob::PullActivity => ACTIVITY_RECORD,
        BulkJob::ExportChanges => EXPORT_CHANGES_RECORD,
        BulkJob::ExportSelected | BulkJob::PullConsents => &[],
    }
}

/// A job's own state. The variants only one engine runs are built into that engine alone
/// ([`crate::core::command::Engine`]). A job holds one, so their sizes may differ.
#[allow(clippy::large_enum_variant)]
#[cfg(any(feature = "contact", feature = "jobs"))]
enum Kind {
    #[cfg(feature = "export")]
    Export(Box<export::Export>),
    #[cfg(feature = "consents")]
    Consents(consents::Consents),
    #[cfg(feature = "changes")]
    Changes(changes::Changes),
    #[cfg(feature = "activity")]
    Activity(activity::Activity),
    #[cfg(feature = "contact")]
    Contact(contact::ContactCommand),
}

/// The exports run in the exports' engine alone, each pull in its own
/// ([`crate::core::command::Engine`]).
#[cfg(feature = "jobs")]
impl Kind {
    // An engine with one kind of job uses what that kind needs of these.
    #[cfg_attr(
        not(all(feature = "export", feature = "consents", feature = "changes", feature = "activity")),
        allow(unused_variables)
    )]
    fn new(start: &Start, record: &Map, run: &mut Runner) -> Kind {
        match start.job {
            #[cfg(feature = "export")]
            BulkJob::ExportSelected | BulkJob::ExportAll | BulkJob::ExportChanges => {
                Kind::Export(Box::new(export::Export::new(start, record, run)))
            }
            #[cfg(feature = "consents")]
            BulkJob::PullConsents => Kind::Consents(consents::Consents::new(start, run)),
            #[cfg(feature = "changes")]
            BulkJob::PullChanges => Kind::Changes(changes::Changes::new(start, record)),
            #[cfg(feature = "activity")]
            BulkJob::PullActivity => Kind::Activity(activity::Activity::new(start, record)),
            // The host starts only the jobs of the engine it runs in: another's command is
            // refused as unknown before any job starts (`host::commands`).
            #[cfg(not(all(feature = "export", feature = "consents", feature = "changes", feature = "activity")))]
            job => unreachable!("{job:?} runs in another engine"),
        }
    }
}

/// A job under way (none in the integration record's pages' engine, which runs no job).
#[cfg(any(feature = "contact", feature = "jobs"))]
pub struct Job {
    run: Runner,
    /// The job's own state (`None` for a job that has none).
    kind: Option<Kind>,
    /// The lease being taken.
    acquiring: Option<Ticket>,
}

#[cfg(any(feature = "contact", feature = "jobs"))]
impl Job {
    /// Starts the job `start.job`. A job with state on the integration record takes its lease
    /// ([`lease`]), so that one run of it goes at a time: refused, having changed nothing, when
    /// the record shows another run alive on Dataverse's clock. While the lease is being taken
    /// the job reads already; it writes and calls SALESmanago to change anything only once it
    /// holds it.
    #[cfg(feature = "jobs")]
    pub fn new(mut start: Start) -> Job {
        start.consents = start.settings.read_columns(&start.consents);
        let mut run = Runner::new(&start);
        if let Some(read) = &start.read {
            run.observe_clock(read.date.as_deref(), read.at_ms);
        }
        let now_ms = start.now_ms;
        let acquiring = start.job.state().map(|state| run.acquire(state, start.user.clone(), now_ms));
        let kind = Some(Kind::new(&start, &start.record, &mut run));
        let mut job = Job { run, kind, acquiring };
        job.run.begin(now_ms);
        job.advance(now_ms);
        job
    }

    /// Applies the SALESmanago contacts `named` (by its rules' calls) to Dynamics as Pull
    /// changes applies a changed contact, without its listing, lease or watermark: many of
    /// these run at once, beside a Pull changes.
    #[cfg(feature = "changes")]
    pub fn pull_named(mut start: Start, named: &Named) -> Job {
        start.consents = start.settings.read_columns(&start.consents);
        let run = Runner::new(&start);
        let kind = Some(Kind::Changes(changes::Changes::named(&start, named)));
        let mut job = Job { run, kind, acquiring: None };
        job.run.begin(start.now_ms);
        job.advance(start.now_ms);
        job
    }

    /// Starts the contact command `start.task`.
    #[cfg(feature = "contact")]
    pub fn contact(mut start: contact::ContactStart) -> Job {
        start.consents = start.settings.read_columns(&start.consents);
        let mut run = Runner::for_command(start.task.command(), start.lang, &start.settings, start.seed);
        let kind = Some(Kind::Contact(contact::ContactCommand::new(&start, &mut run)));
        Job { run, kind, acquiring: None }
    }

    /// Whether the job waits for nothing (no request pending or to send) and has not finished:
    /// never true of a job that works, which the simulation checks after every step.
    pub fn stalled(&self) -> bool {
        self.run.stalled()
    }

    /// The next action to take now, if any. Call until `None` after starting the job, after
    /// each [`Job::handle`] and at [`Job::poll_timeout`].
    pub fn poll(&mut self, now_ms: u64) -> Option<Action> {
        loop {
            if let Some(action) = self.run.poll(now_ms) {
                return Some(action);
            }
            // The work a reply brought (a page's rows) is done here, once the requests it
            // allowed (the next page's read) have gone out.
            let worked = !self.run.finished()
                && match &mut self.kind {
                    #[cfg(feature = "export")]
                    Some(Kind::Export(job)) => job.work(&mut self.run, now_ms),
                    #[cfg(feature = "consents")]
                    Some(Kind::Consents(job)) => job.work(&mut self.run, now_ms),
                    #[cfg(feature = "activity")]
                    Some(Kind::Activity(job)) => job.work(&mut self.run, now_ms),
                    #[cfg(feature = "changes")]
                    Some(Kind::Changes(_)) => false,
                    #[cfg(feature = "contact")]
                    Some(Kind::Contact(_)) => false,
                    None => false,
                };
            if !worked {
                return None;
            }
            self.advance(now_ms);
        }
    }

    /// "Export selected": each contact sent so far, with its row's version.
    #[cfg(feature = "export")]
    pub fn went(&self) -> &[(String, Option<u64>)] {
        match &self.kind {
            Some(Kind::Export(job)) => job.went(),
            _ => &[],
        }
    }

    /// "Export selected": what SALESmanago made of every contact, once known (before the
    /// statuses are written back and the contacts read again).
    #[cfg(feature = "export")]
    pub fn settled(&self) -> Option<&Settled> {
        match &self.kind {
            Some(Kind::Export(job)) => job.settled(),
            _ => None,
        }
    }

    /// When to poll again if no reply comes first (a planned retry).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.run.poll_timeout()
    }

    /// Takes the reply to the action `ticket` named.
    pub fn handle(&mut self, ticket: Ticket, reply: Reply, now_ms: u64) {
        // Only a contact command asks the form.
        #[cfg(feature = "contact")]
        if let Reply::Form(reply) = reply {
            if let Some(Kind::Contact(command)) = &mut self.kind {
                command.on_form(ticket, reply, &mut self.run);
            }
            return;
        }
        if let Some(result) = self.run.answer(ticket, reply, now_ms) {
            if self.acquiring == Some(ticket) {
                self.acquiring = None;
                if let Err(error) = result {
                    self.run.fail(error.into());
                }
            } else {
                match &mut self.kind {
                    #[cfg(feature = "export")]
                    Some(Kind::Export(job)) => job.on(ticket, result, &mut self.run, now_ms),
                    #[cfg(feature = "consents")]
                    Some(Kind::Consents(job)) => job.on(ticket, result, &mut self.run, now_ms),
                    #[cfg(feature = "changes")]
                    Some(Kind::Changes(job)) => job.on(ticket, result, &mut self.run, now_ms),
                    #[cfg(feature = "activity")]
                    Some(Kind::Activity(job)) => job.on(ticket, result, &mut self.run, now_ms),
                    #[cfg(feature = "contact")]
                    Some(Kind::Contact(command)) => command.on(ticket, result, &mut self.run),
                    // A heartbeat's answer, or one that came after the job failed.
                    None => {}
                }
            }
        }
        self.advance(now_ms);
    }

    // The contact commands do their work as their replies come: nothing here uses the time.
    #[cfg_attr(not(feature = "jobs"), allow(unused_variables))]
    fn advance(&mut self, now_ms: u64) {
        if self.run.finished() {
            return;
        }
        match &mut self.kind {
            #[cfg(feature = "export")]
            Some(Kind::Export(job)) => job.advance(&mut self.run, now_ms),
            #[cfg(feature = "consents")]
            Some(Kind::Consents(job)) => job.advance(&mut self.run, now_ms),
            #[cfg(feature = "changes")]
            Some(Kind::Changes(job)) => job.advance(&mut self.run, now_ms),
            #[cfg(feature = "activity")]
            Some(Kind::Activity(job)) => job.advance(&mut self.run, now_ms),
            #[cfg(feature = "contact")]
            Some(Kind::Contact(_)) => {}
            None => {}
        }
    }
}

/// The end of a job: its summary recorded on the integration record, then told.
#[cfg(feature = "jobs")]
struct Ending {
    job: BulkJob,
    /// Whether the summary is recorded on the integration record (a job with state there).
    record: bool,
    started: bool,
    /// The record's update, and the summary told once it is written.
    ticket: Option<Ticket>,
    summary: Option<Summary>,
    /// What the summary says beside the counts, in the user's language.
    details: Vec<String>,
}

#[cfg(feature = "jobs")]
impl Ending {
    fn new(job: BulkJob) -> Ending {
        Ending { job, record: true, started: false, ticket: None, summary: None, details: Vec::new() }
    }

    /// The end of a run that leaves no trace on the record (a rule's call applied).
    fn unrecorded(job: BulkJob) -> Ending {
        Ending { record: false, ..Ending::new(job) }
    }

    fn started(&self) -> bool {
        self.started
    }

    /// Records the summary of `tally` (and `extra` columns) on the record, then ends the job.
    fn start(&mut self, run: &mut Runner, tally: Tally, mut extra: Map, now_ms: u64) {
        let counts = Counts {
            total: tally.total,
            done: tally.done,
            same: tally.same,
            missing: tally.missing,
            skipped: tally.skipped(),
            failed: tally.failed(),
            outside: tally.outside,
            again: tally.again,
            entered: tally.entered,
        };
        let message = Message::Summary { job: self.job, counts };
        let download = (!tally.not_done.is_empty()).then(|| {
            let (header, outcomes) = csv_titles(run.lang);
            let more = text(&Message::Unlisted { count: tally.unlisted() }, run.lang);
            (tally.skipped() + tally.failed(), tally.csv(header, outcomes, &more))
        });
        let columns = self.job.state().filter(|_| self.record).map(|job| {
            // Dataverse's time: "Export changes" reads from it.
            extra.insert(job.last_run_column().into(), iso_datetime(run.dataverse_time(now_ms)).into());
            extra.insert(job.last_result_column().into(), text(&message, run.lang).into());
            // "Export changes" shares the export's columns, but not Export all's checkpoint.
            if self.job != BulkJob::ExportChanges {
                extra.insert(job.checkpoint_column().into(), Value::Null);
            }
            extra
        });
        let details = ::core::mem::take(&mut self.details);
        let summary = Summary { message, details, close_form: false, download, tally };
        self.started = true;
        match columns {
            Some(columns) => {
                self.ticket = Some(run.record(columns, true));
                self.summary = Some(summary);
            }
            None => run.succeed(summary),
        }
    }

    /// Takes the record's answer; hands `result` back when `ticket` is not the ending's.
    fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner) -> Option<Result<Output, Error>> {
        if self.ticket != Some(ticket) {
            return Some(result);
        }
        match (result, self.summary.take()) {
            (Ok(_), Some(summary)) => run.succeed(summary),
            (Ok(_), None) => unreachable!("an ending keeps its summary until the record is written"),
            // The work is done; only the record did not take its summary (a plug-in's refusal,
            // Dataverse unreachable past its retries): told with the summary, not instead of it.
            (Err(Error::Dataverse(error)), Some(mut summary)) => {
                let not_recorded = Message::SummaryNotRecorded { detail: error.detail() }.brief();
                summary.details.push(text(&not_recorded, run.lang));
                run.succeed(summary)
            }
            // Another run holds the job now (or Dataverse says this user may not write there).
            (Err(error), _) => run.fail(error.into()),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_of_the_contacts_under_the_web_api_root() {
        let read = Read::of("?$select=contactid".into());
        assert_eq!(
            read.url("https://org.crm4.dynamics.com/api/data/v9.2/"),
            "https://org.crm4.dynamics.com/api/data/v9.2/contacts?$select=contactid"
        );
    }

    #[test]
    fn a_read_bounded_by_top_asks_for_no_page_size() {
        assert_eq!(Read::of("?$select=contactid&$top=2".into()).prefer(), "");
        assert_eq!(Read::of("?$select=contactid".into()).prefer(), "odata.maxpagesize=400");
        let tracked = Read { track: true, ..Read::of("?$select=contactid".into()) };
        assert_eq!(tracked.prefer(), "odata.track-changes,odata.maxpagesize=400");
    }
}
