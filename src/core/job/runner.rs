//! What every job shares: tickets, the bound on requests in flight, retries as
//! [`crate::core::retry`] plans them, signing, progress and the job's end.

use std::collections::VecDeque;

use crate::core::clock::ServiceClock;
use crate::core::command::{BulkJob, Command};
use crate::core::dataverse::error::{self, DvError};
use crate::core::dataverse::query;
use crate::core::i18n::{Lang, Message, Service};
use crate::core::integration::Settings;
use crate::core::json::{Map, Value};
use crate::core::retry::{Failed, Retry, RetryPolicy};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::export::{ExportConsents, JobStatus};
use crate::core::salesmanago::operation::{BatchOutcome, BatchUpsert, Lookup, ModifiedContacts, ModifiedPage};
use crate::core::salesmanago::operation::{Delete, HasContact, SetSubscription, Upsert};
use crate::core::salesmanago::relay::Refusal;
use crate::core::salesmanago::script::DEFAULT_TIMEOUT_MS;
use crate::core::salesmanago::{Client, Nonce, SmError};
use crate::core::sorted::SortedMap;

use super::lease::{Holder, Lease, Purpose, User, Verdict, HEARTBEAT_MS, MAX_CONFLICTS, STALE_MS};
use super::{Action, JobFailure, Read, Reply, Summary, Ticket, Writes};
use crate::core::dataverse::schema::{integration, Job as JobColumns};

/// The longest wait for the next part of a download.
const DOWNLOAD_IDLE_MS: u32 = 60_000;

/// A request a job wants made; kept until it is answered for good, so it can be made again.
#[derive(Debug, Clone)]
pub(super) enum Request {
    /// A page of contacts.
    Read(String),
    /// A page of a change-tracked read of contacts.
    Tracked(String),
    /// Contact columns, in one `$batch`.
    Write(Vec<(String, Map)>),
    /// Columns of the integration record, written under the job's lease.
    Record(Guarded),
    /// One row (`GET`, a path under the Web API root).
    Row(String),
    /// Columns of one row (`PATCH` of an existing row: `If-Match: *`).
    Patch(String, Map),
    /// Delete one row; one already gone counts as deleted.
    Remove(String),
    /// A SALESmanago call.
    Call(Call),
    /// A file SALESmanago handed out, read part by part.
    Download(String),
}

/// A guarded write of the integration record: read it (ETag and lease), then `PATCH` with
/// `If-Match` (see [`super::lease`]).
#[derive(Debug, Clone)]
pub(super) struct Guarded {
    columns: Map,
    purpose: Purpose,
    /// The ETag to write with: of this run's last write, or as read.
    etag: Option<String>,
    /// Writes refused with `412` so far.
    conflicts: u32,
}

impl Guarded {
    fn new(columns: Map, purpose: Purpose, etag: Option<String>) -> Guarded {
        Guarded { columns, purpose, etag, conflicts: 0 }
    }
}

/// The SALESmanago calls jobs make.
#[derive(Debug, Clone)]
pub(super) enum Call {
    Upsert(BatchUpsert),
    Lookup(Lookup),
    Modified(ModifiedContacts),
    UpsertOne(Box<Upsert>),
    Has(HasContact),
    Delete(Delete),
    Subscribe(SetSubscription),
    Export(ExportConsents),
    Status(JobStatus),
}

/// What an answered request yields.
#[derive(Debug)]
pub(super) enum Output {
    /// A page's rows (each as it came, read one by one) and the next page's query.
    Page(Vec<Value>, Option<String>),
    /// A change-tracked page: its rows, the next page's query, and on the last page the delta
    /// link to read next time.
    Tracked(Vec<Value>, Option<String>, Option<String>),
    /// Each row's outcome of a `$batch`, in order.
    Written(Vec<Result<(), String>>),
    /// The integration record was written under the lease.
    Recorded,
    /// A `PATCH` of the record went through: the record's new ETag, when it said.
    RecordWritten(Option<String>),
    /// The integration record as read for a guarded write.
    RecordRead(Map),
    /// A guarded write found the record changed since it was read (`412`).
    Conflict,
    Upserted(BatchOutcome),
    Found(Vec<SmContact>),
    Modified(ModifiedPage),
    /// A row as read.
    Row(Map),
    /// A row written or deleted.
    Done,
    /// The SALESmanago id of the contact upserted, or found (`None`: not there).
    Contact(Option<String>),
    /// The id of the export job SALESmanago started.
    Requested(String),
    /// The export file's address, once it is ready.
    Status(Option<String>),
    /// A part of a download; `true` when it is the first of this attempt (the download went
    /// again from the start).
    Part(Vec<u8>, bool),
    /// A download is complete.
    Downloaded,
}

/// A request that failed for good.
#[derive(Debug)]
pub(super) enum Error {
    Dataverse(DvError),
    Salesmanago(SmError),
    /// A verdict that trying again cannot change: the job's lease stops it (another run holds
    /// it, took it over, or the record would not stay still long enough to write), or Dataverse
    /// says the user may not do this.
    Refused(Message, &'static str),
}

impl Error {
    /// Whether it may pass on another try (a service unavailable or busy), rather than being a
    /// refusal that stands.
    pub(super) fn passes(&self) -> bool {
        match self {
            Error::Dataverse(DvError::Unavailable { .. } | DvError::Throttled { .. }) => true,
            Error::Dataverse(_) | Error::Refused(..) => false,
            Error::Salesmanago(error) => crate::core::retry::is_transient(error),
        }
    }

    /// Whether every later request would fail the same way, so the job must stop.
    pub(super) fn stops_job(&self) -> bool {
        match self {
            Error::Dataverse(_) | Error::Refused(..) => true,
            Error::Salesmanago(error) => error.stops_job(),
        }
    }

    /// How to try again after it: the service's policy, what the failure says, the service.
    fn retrying(&self) -> Option<(RetryPolicy, Failed, Service)> {
        match self {
            Error::Dataverse(e) => Some((RetryPolicy::dataverse(), Failed::from(e), Service::Dataverse)),
            Error::Salesmanago(e) => Some((RetryPolicy::default(), Failed::from(e), Service::Salesmanago)),
            // A lease's verdict is final.
            Error::Refused(..) => None,
        }
    }

    /// A stable name of the failure, for scripts.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Error::Dataverse(_) => "dataverse",
            Error::Salesmanago(e) => e.kind(),
            Error::Refused(_, kind) => kind,
        }
    }

    /// The user's message.
    pub(super) fn message(&self) -> Message {
        match self {
            Error::Dataverse(DvError::MissingPrivilege { privilege }) => {
                Message::MissingPrivilege { privilege: privilege.clone() }
            }
            Error::Dataverse(error) => Message::Dataverse { detail: error.detail() },
            Error::Salesmanago(error) => Message::Salesmanago(error.clone()),
            Error::Refused(message, _) => message.clone(),
        }
    }
}

struct Pending {
    request: Request,
    attempt: u32,
    /// With the host now (not queued, nor waiting to go again).
    sent: bool,
    /// A download whose body has begun to arrive in this attempt.
    receiving: bool,
}

impl Request {
    /// Whether it changes anything in Dataverse or SALESmanago (all but reads).
    fn changes(&self) -> bool {
        match self {
            Request::Read(_) | Request::Tracked(_) | Request::Row(_) | Request::Download(_) => false,
            Request::Write(_) | Request::Patch(..) | Request::Remove(_) => true,
            Request::Record(guarded) => guarded.purpose != Purpose::Acquire,
            // Asking for an export changes no contact.
            Request::Call(Call::Lookup(_) | Call::Modified(_) | Call::Has(_) | Call::Export(_) | Call::Status(_)) => {
                false
            }
            Request::Call(Call::Upsert(_) | Call::UpsertOne(_) | Call::Delete(_) | Call::Subscribe(_)) => true,
        }
    }

    /// Which service answers it: each has its own bound on requests in flight.
    fn service(&self) -> Service {
        match self {
            Request::Call(_) | Request::Download(_) => Service::Salesmanago,
            Request::Read(_)
            | Request::Tracked(_)
            | Request::Write(_)
            | Request::Record(_)
            | Request::Row(_)
            | Request::Patch(..)
            | Request::Remove(_) => Service::Dataverse,
        }
    }
}

fn slot(service: Service) -> usize {
    match service {
        Service::Dataverse => 0,
        Service::Salesmanago => 1,
    }
}

/// A small deterministic generator (SplitMix64) for request keys and jitter, seeded by the host
/// with real randomness, and by tests with a number they can replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn key(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

/// The shared machinery of a job.
pub(super) struct Runner {
    pub(super) lang: Lang,
    /// The command, for what progress says.
    command: Command,
    /// The bulk job, if the command is one.
    job: Option<BulkJob>,
    client: Client,
    record_id: String,
    limit: usize,
    next_ticket: u64,
    pending: SortedMap<Ticket, Pending>,
    queued: VecDeque<Ticket>,
    delayed: Vec<(u64, Ticket)>,
    /// Requests with the host, per service.
    in_flight: [usize; 2],
    rng: Rng,
    out: VecDeque<Action>,
    /// The service that asked to wait, and until when.
    wait: Option<(Service, u64)>,
    /// Contacts handled, and in all when known: what progress shows.
    pub(super) handled: u64,
    pub(super) total: Option<u64>,
    finished: bool,
    /// The job's lease, when it has state columns on the record.
    lease: Option<Lease>,
    /// The failure told once the lease is given up.
    failing: Option<JobFailure>,
    /// The record's ETag after this run's last write, while nothing else changed it.
    known_etag: Option<String>,
    /// The lease's renewal under way.
    heartbeat: Option<Ticket>,
    /// Dataverse's clock, as its answers tell it: what the lease and the watermarks are judged
    /// and written by.
    clock: ServiceClock,
}

impl Runner {
    pub(super) fn new(start: &super::Start) -> Runner {
        let mut run = Runner::for_command(start.job.command(), start.lang, &start.settings, start.seed);
        run.job = Some(start.job);
        run
    }

    /// The runner of a command that is not a bulk job (a contact command).
    pub(super) fn for_command(command: Command, lang: Lang, settings: &Settings, seed: u64) -> Runner {
        Runner {
            lang,
            command,
            job: None,
            client: settings.client.clone(),
            record_id: settings.id.clone(),
            limit: settings.concurrency.max(1) as usize,
            next_ticket: 1,
            pending: SortedMap::new(),
            queued: VecDeque::new(),
            delayed: Vec::new(),
            in_flight: [0; 2],
            rng: Rng(seed),
            out: VecDeque::new(),
            wait: None,
            handled: 0,
            total: None,
            finished: false,
            lease: None,
            failing: None,
            known_etag: None,
            heartbeat: None,
            clock: ServiceClock::default(),
        }
    }

    /// Takes the lease of `job` for `user`: a guarded read and write of the record. The record
    /// is read first, whatever the host read: its answer tells Dataverse's time, by which the
    /// lease there is judged and this run's is written.
    pub(super) fn acquire(&mut self, job: JobColumns, user: User, now_ms: u64) -> Ticket {
        self.lease = Some(Lease::new(job, self.rng.key(), user, now_ms));
        self.issue(Request::Record(Guarded::new(Map::new(), Purpose::Acquire, None)))
    }

    /// `local_ms` on Dataverse's clock, as its answers so far tell it.
    pub(super) fn dataverse_time(&self, local_ms: u64) -> u64 {
        self.clock.at(local_ms)
    }

    /// Writes `columns` to the record under the lease; on `release`, gives the lease up.
    /// With the ETag of this run's last write, it writes at once; else it reads first.
    pub(super) fn record(&mut self, columns: Map, release: bool) -> Ticket {
        let purpose = if release { Purpose::Release } else { Purpose::Renew };
        let known = self.known_etag.clone();
        self.issue(Request::Record(Guarded::new(columns, purpose, known)))
    }

    /// Whether `request` must wait for the lease: while it is being taken, a job reads, but
    /// changes nothing.
    fn waits_for_lease(&self, request: &Request) -> bool {
        self.lease.as_ref().is_some_and(|l| !l.held) && request.changes()
    }

    /// Most requests in flight at once to each service, and most units (pages, chunks) in
    /// progress.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether any request is still to be answered.
    pub(super) fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// A ticket for an action the runner does not answer (a form's).
    pub(super) fn ticket(&mut self) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        ticket
    }

    /// Hands `action` to the host as it is.
    pub(super) fn emit(&mut self, action: Action) {
        self.out.push_back(action);
    }

    /// Queues `request` to go at `at_ms`; its answer comes back with the ticket returned.
    pub(super) fn issue_at(&mut self, request: Request, at_ms: u64) -> Ticket {
        let ticket = self.hold(request);
        self.delayed.push((at_ms, ticket));
        ticket
    }

    /// Keeps `request` until it is answered for good; its ticket.
    fn hold(&mut self, request: Request) -> Ticket {
        let ticket = self.ticket();
        self.pending.insert(ticket, Pending { request, attempt: 1, sent: false, receiving: false });
        ticket
    }

    /// Queues `request`; its answer comes back with the ticket returned.
    pub(super) fn issue(&mut self, request: Request) -> Ticket {
        // Pages are read one after the other, and everything else waits for them: a read goes
        // first, so the pipeline does not stall behind the write-backs.
        let first = matches!(request, Request::Read(_) | Request::Tracked(_));
        let ticket = self.hold(request);
        if first {
            self.queued.push_front(ticket);
        } else {
            self.queued.push_back(ticket);
        }
        ticket
    }

    /// The next thing for the host to do now, if any.
    pub(super) fn poll(&mut self, now_ms: u64) -> Option<Action> {
        if let Some(action) = self.out.pop_front() {
            return Some(action);
        }
        if self.finished {
            return None;
        }
        if self.heartbeat_due(now_ms) {
            self.heartbeat = Some(self.record(Map::new(), false));
        }
        let (due, later): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|(at, _)| *at <= now_ms);
        self.delayed = later;
        for (_, ticket) in due.into_iter().rev() {
            self.queued.push_front(ticket);
        }
        let room = |pending: &Pending| {
            self.in_flight[slot(pending.request.service())] < self.limit && !self.waits_for_lease(&pending.request)
        };
        let at = self.queued.iter().position(|t| self.pending.get(t).is_some_and(room))?;
        let ticket = self.queued.remove(at)?;
        let pending = self.pending.get_mut(&ticket)?;
        pending.sent = true;
        self.in_flight[slot(pending.request.service())] += 1;
        let request = &pending.request;
        Some(match request {
            Request::Read(query) => Action::Read { ticket, read: Read { query: query.clone(), track: false } },
            Request::Tracked(query) => Action::Read { ticket, read: Read { query: query.clone(), track: true } },
            Request::Write(rows) => {
                Action::Write { ticket, writes: Writes { rows: rows.clone(), tag: self.rng.key() } }
            }
            Request::Record(guarded) => {
                let row = format!("{}({})", integration::ENTITY_SET, self.record_id);
                match (&guarded.etag, self.lease.as_mut()) {
                    (Some(etag), Some(lease)) => {
                        let mut columns = guarded.columns.clone();
                        let value = lease.value(guarded.purpose, self.handled, self.total, self.clock.at(now_ms));
                        columns.insert(lease.column.into(), value);
                        let body = Value::Object(columns).to_string();
                        // The answer holds the new ETag (`Prefer: return=representation`).
                        let path = format!("{row}?$select={}", lease.column);
                        Action::Patch { ticket, path, if_match: etag.clone(), body }
                    }
                    _ => {
                        let lease = self.lease.as_ref().map_or(integration::ID, |l| l.column);
                        Action::Get { ticket, path: format!("{row}?$select={lease}") }
                    }
                }
            }
            Request::Row(path) => Action::Get { ticket, path: path.clone() },
            Request::Patch(path, columns) => Action::Patch {
                ticket,
                path: path.clone(),
                if_match: "*".into(),
                body: Value::Object(columns.clone()).to_string(),
            },
            Request::Remove(path) => Action::Delete { ticket, path: path.clone() },
            Request::Call(call) => {
                let nonce = Nonce { api_key: self.rng.key(), request_time_ms: now_ms };
                let request = match call {
                    Call::Upsert(op) => self.client.request(op, &nonce),
                    Call::Lookup(op) => self.client.request(op, &nonce),
                    Call::Modified(op) => self.client.request(op, &nonce),
                    Call::UpsertOne(op) => self.client.request(op.as_ref(), &nonce),
                    Call::Has(op) => self.client.request(op, &nonce),
                    Call::Delete(op) => self.client.request(op, &nonce),
                    Call::Subscribe(op) => self.client.request(op, &nonce),
                    Call::Export(op) => self.client.request(op, &nonce),
                    Call::Status(op) => self.client.request(op, &nonce),
                };
                Action::Call { ticket, request, timeout_ms: DEFAULT_TIMEOUT_MS }
            }
            Request::Download(url) => Action::Download { ticket, url: url.clone(), idle_timeout_ms: DOWNLOAD_IDLE_MS },
        })
    }

    /// When the host should poll again if nothing else happens first.
    pub(super) fn poll_timeout(&self) -> Option<u64> {
        if self.finished {
            return None;
        }
        let heartbeat = self.heartbeat_at();
        self.delayed.iter().map(|(at, _)| *at).chain(heartbeat).min()
    }

    /// When the lease is next to be renewed: while it is held, no failure is being told, and
    /// no write of the record is under way (each write renews it).
    fn heartbeat_at(&self) -> Option<u64> {
        let lease = self.lease.as_ref().filter(|l| l.held && self.failing.is_none())?;
        let writing = self.pending.iter().any(|(_, p)| matches!(p.request, Request::Record(_)));
        (!writing).then_some(lease.renewed_ms + HEARTBEAT_MS)
    }

    fn heartbeat_due(&self, now_ms: u64) -> bool {
        self.heartbeat_at().is_some_and(|at| at <= now_ms)
    }

    /// Takes the answer to `ticket`: what it yields, or `None` while it is being tried again
    /// (or was not the job's).
    pub(super) fn answer(&mut self, ticket: Ticket, reply: Reply, now_ms: u64) -> Option<Result<Output, Error>> {
        let pending = self.pending.get_mut(&ticket).filter(|p| p.sent && !self.finished)?;
        if let Reply::Dataverse(Ok(response)) = &reply {
            self.clock.observe(response.date.as_deref(), now_ms);
        }
        if let Reply::Part(bytes) = reply {
            // The download goes on: it stays with the host. A part for anything else is ignored.
            if !matches!(pending.request, Request::Download(_)) {
                return None;
            }
            let first = !pending.receiving;
            pending.receiving = true;
            return Some(Ok(Output::Part(bytes, first)));
        }
        pending.sent = false;
        pending.receiving = false;
        self.in_flight[slot(pending.request.service())] -= 1;
        let result = read(&pending.request, &self.client, reply);
        let retry = match result.as_ref().err().and_then(Error::retrying) {
            None => Retry::GiveUp,
            Some((policy, failed, service)) => {
                let plan = policy.plan(pending.attempt, failed, now_ms, self.rng.unit());
                if let (Retry::After(ms), Failed::Throttled(_)) = (plan, failed) {
                    let until = now_ms + ms;
                    if self.wait.is_none_or(|(_, later)| later <= until) {
                        self.wait = Some((service, until));
                    }
                }
                plan
            }
        };
        if let Retry::After(ms) = retry {
            pending.attempt += 1;
            self.delayed.push((now_ms + ms, ticket));
            self.show(now_ms);
            return None;
        }
        let result = match result {
            Ok(output @ (Output::RecordRead(_) | Output::Conflict | Output::RecordWritten(_))) => {
                self.guarded(ticket, output, now_ms)?
            }
            other => other,
        };
        self.pending.remove(&ticket);
        if let Some(failure) = self.failing.take() {
            // The lease is given up (or could not be): now the failure is told.
            self.finished = true;
            self.out.push_back(Action::Finished(Err(failure)));
            return None;
        }
        if self.heartbeat == Some(ticket) {
            // A renewal concerns the runner alone; a lease lost or unwritable ends the job.
            self.heartbeat = None;
            if let Err(error) = result {
                self.fail(error.into());
            }
            return None;
        }
        Some(result.map_err(|error| match error {
            Error::Salesmanago(e) => Error::Salesmanago(e.settled(now_ms)),
            other => other,
        }))
    }

    /// The next step of the guarded write `ticket` after `output`: `None` while it goes on (a
    /// write after the read, a read again after a conflict), else its result.
    fn guarded(&mut self, ticket: Ticket, output: Output, now_ms: u64) -> Option<Result<Output, Error>> {
        let Some(Pending { request: Request::Record(guarded), .. }) = self.pending.get_mut(&ticket) else {
            return Some(Err(Error::Dataverse(DvError::Refused { detail: "not a write of the record".into() })));
        };
        let Some(lease) = self.lease.as_mut() else {
            return Some(Err(Error::Dataverse(DvError::Refused { detail: "a record write without a lease".into() })));
        };
        let command = self.command;
        let dataverse_now = self.clock.at(now_ms);
        match output {
            Output::RecordRead(record) => match lease.judge(&record, guarded.purpose, dataverse_now) {
                Ok(Verdict::Write { etag }) => guarded.etag = Some(etag),
                Ok(Verdict::Running(holder)) => return Some(Err(running(command, &holder, dataverse_now))),
                Ok(Verdict::Released) => {
                    lease.held = false;
                    return Some(Ok(Output::Recorded));
                }
                Ok(Verdict::TakenOver(holder)) => {
                    lease.held = false;
                    let user = holder.map(|h| h.user.name).unwrap_or_default();
                    return Some(Err(Error::Refused(Message::JobTakenOver { command, user }, "jobTakenOver")));
                }
                Err(detail) => return Some(Err(Error::Dataverse(DvError::Refused { detail }))),
            },
            Output::Conflict => {
                guarded.etag = None;
                self.known_etag = None;
                guarded.conflicts += 1;
                if guarded.conflicts > MAX_CONFLICTS {
                    return Some(Err(Error::Refused(Message::RecordBusy { command }, "recordBusy")));
                }
            }
            Output::RecordWritten(etag) => {
                lease.held = guarded.purpose != Purpose::Release;
                lease.renewed_ms = now_ms;
                self.known_etag = etag;
                return Some(Ok(Output::Recorded));
            }
            other => return Some(Ok(other)),
        }
        self.queued.push_front(ticket);
        None
    }

    /// Shows progress: contacts handled, and a wait still under way.
    pub(super) fn show(&mut self, now_ms: u64) {
        if self.job.is_none() {
            return; // a contact command shows no progress
        }
        let (command, done, total) = (self.command, self.handled, self.total);
        let message = match self.wait {
            Some((service, until)) if until > now_ms => {
                Message::Waiting { command, done, total, service, seconds: (until - now_ms).div_ceil(1000) }
            }
            _ => Message::Progress { command, done, total },
        };
        self.say(message);
    }

    /// Shows the first progress, unless the job has said something already (resuming).
    pub(super) fn begin(&mut self, now_ms: u64) {
        if self.out.is_empty() {
            self.show(now_ms);
        }
    }

    /// Tells the user `message` as progress.
    pub(super) fn say(&mut self, message: Message) {
        // Only the latest progress matters: an older one still waiting is replaced.
        if let Some(Action::Progress(last)) = self.out.back_mut() {
            *last = message;
        } else {
            self.out.push_back(Action::Progress(message));
        }
    }

    /// The reason, in the user's language, of a request that failed for good, when only the
    /// contacts it was about fail; `None` when every later request would fail the same way, and
    /// the job has failed.
    pub(super) fn reason(&mut self, error: Error) -> Option<String> {
        if error.stops_job() {
            self.fail(error.into());
            return None;
        }
        Some(crate::core::i18n::text(&error.message(), self.lang))
    }

    /// Ends the job with `failure`; it stays failed, and its later answers are ignored. A lease
    /// held is given up first, so the job can be started again at once.
    pub(super) fn fail(&mut self, failure: JobFailure) {
        if self.finished || self.failing.is_some() {
            return;
        }
        if self.lease.as_ref().is_some_and(|l| l.held) {
            // Nothing else goes out: only the release, then the failure is told.
            self.pending = SortedMap::new();
            self.queued.clear();
            self.delayed.clear();
            self.in_flight = [0; 2];
            self.failing = Some(failure);
            self.record(Map::new(), true);
        } else {
            self.finished = true;
            self.out.push_back(Action::Finished(Err(failure)));
        }
    }

    /// Ends the job with `summary`.
    pub(super) fn succeed(&mut self, summary: Summary) {
        if !self.finished {
            self.finished = true;
            self.out.push_back(Action::Finished(Ok(summary)));
        }
    }
}

/// Why a job does not start: another run of it is alive (`now_ms` on Dataverse's clock).
fn running(command: Command, holder: &Holder, now_ms: u64) -> Error {
    let message = Message::JobRunning {
        command,
        user: holder.user.name.clone(),
        minutes: now_ms.saturating_sub(holder.since_ms) / 60_000,
        done: holder.done,
        total: holder.total,
        seconds_left: (holder.heartbeat_ms + STALE_MS).saturating_sub(now_ms).div_ceil(1000),
    };
    Error::Refused(message, "jobRunning")
}

/// Reads the host's reply to `request`.
fn read(request: &Request, client: &Client, reply: Reply) -> Result<Output, Error> {
    match (request, reply) {
        (Request::Read(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            // An answer that is not a page (cut off, garbled) may read on another attempt.
            let (rows, next) =
                query::page(&text).map_err(|detail| Error::Dataverse(DvError::Unavailable { detail }))?;
            Ok(Output::Page(rows, next))
        }
        (Request::Tracked(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            let (rows, next, delta) =
                query::tracked_page(&text).map_err(|detail| Error::Dataverse(DvError::Unavailable { detail }))?;
            Ok(Output::Tracked(rows, next, delta))
        }
        (Request::Write(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Written(crate::core::dataverse::batch::outcomes(&text)))
        }
        (Request::Record(guarded), Reply::Dataverse(answer)) => {
            if guarded.etag.is_some() {
                if matches!(&answer, Ok(response) if response.status == 412) {
                    return Ok(Output::Conflict);
                }
                let text = error::answer(answer).map_err(Error::Dataverse)?;
                let etag = match crate::core::json::from_str(&text) {
                    Ok(Value::Object(row)) => row.get("@odata.etag").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                };
                return Ok(Output::RecordWritten(etag));
            }
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            match crate::core::json::from_str(&text) {
                Ok(Value::Object(record)) => Ok(Output::RecordRead(record)),
                // Cut off or garbled: may read on another attempt.
                _ => Err(Error::Dataverse(DvError::Unavailable {
                    detail: "the integration record could not be read".into(),
                })),
            }
        }
        (Request::Call(call), Reply::Salesmanago(outcome)) => {
            let sm = |e| Error::Salesmanago(e);
            match call {
                Call::Upsert(op) => client.response(op, outcome).map(Output::Upserted).map_err(sm),
                Call::Lookup(op) => client.response(op, outcome).map(Output::Found).map_err(sm),
                Call::Modified(op) => client.response(op, outcome).map(Output::Modified).map_err(sm),
                Call::UpsertOne(op) => {
                    client.response(op.as_ref(), outcome).map(|id| Output::Contact(Some(id))).map_err(sm)
                }
                Call::Has(op) => client.response(op, outcome).map(Output::Contact).map_err(sm),
                Call::Delete(op) => client.response(op, outcome).map(|()| Output::Done).map_err(sm),
                Call::Subscribe(op) => client.response(op, outcome).map(|_| Output::Done).map_err(sm),
                Call::Export(op) => client.response(op, outcome).map(Output::Requested).map_err(sm),
                Call::Status(op) => {
                    let address = client.response(op, outcome).map_err(sm)?;
                    Ok(Output::Status(address.map(|url| client.file_address(&url))))
                }
            }
        }
        (Request::Download(_), Reply::Salesmanago(outcome)) => match outcome {
            Ok(response) if (200..300).contains(&response.status) => Ok(Output::Downloaded),
            // The file's server speaks no envelope: its status says it all, but for a relay's
            // refusal, which names its reason.
            Ok(response) => Err(Error::Salesmanago(match (Refusal::of_body(&response.body), response.status) {
                (Some(refusal), _) if client.relay.is_some() => SmError::Relay(refusal),
                (_, 429) => SmError::Throttled { retry_after: response.wait() },
                (_, status @ (408 | 500..=599)) => SmError::Server { status },
                (_, status) => SmError::UnexpectedStatus { status },
            })),
            Err(failure) => Err(Error::Salesmanago(client.judged(failure.into()))),
        },
        (Request::Row(_), Reply::Dataverse(answer)) => {
            let text = error::answer(answer).map_err(Error::Dataverse)?;
            match crate::core::json::from_str(&text) {
                Ok(Value::Object(row)) => Ok(Output::Row(row)),
                // Cut off or garbled: may read on another attempt.
                _ => Err(Error::Dataverse(DvError::Unavailable { detail: "the row could not be read".into() })),
            }
        }
        (Request::Patch(..), Reply::Dataverse(answer)) => {
            error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Done)
        }
        (Request::Remove(_), Reply::Dataverse(answer)) => {
            // A row already gone (deleted by an earlier attempt whose answer was lost) is gone.
            if matches!(&answer, Ok(response) if response.status == 404) {
                return Ok(Output::Done);
            }
            error::answer(answer).map_err(Error::Dataverse)?;
            Ok(Output::Done)
        }
        (_, _) => Err(Error::Dataverse(DvError::Refused { detail: "the host answered with the wrong service".into() })),
    }
}
