//! What every job shares: tickets, the bound on requests in flight, retries as
//! [`crate::core::retry`] plans them, signing, progress and the job's end.

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::core::clock::ServiceClock;
use crate::core::command::{BulkJob, Command};
use crate::core::i18n::{Lang, Message, Service};
use crate::core::integration::Settings;
use crate::core::json::{Map, Value};
use crate::core::retry::{Failed, Retry};
use crate::core::salesmanago::script::DEFAULT_TIMEOUT_MS;
use crate::core::salesmanago::{Client, Nonce};
use crate::core::sorted::SortedMap;

// The lease: only the jobs over many contacts hold one, in the exports' and pulls' engines.
#[cfg(feature = "jobs")]
mod guarded;
mod request;

use request::read;
pub(super) use request::{Call, Error, Output, Request};

use super::lease::Lease;
use super::rng::Rng;
use super::{Action, JobFailure, Read, Reply, Summary, Ticket, Writes, Writing};

/// The longest wait for the next part of a download.
const DOWNLOAD_IDLE_MS: u32 = 60_000;

struct Pending {
    request: Request,
    attempt: u32,
    /// With the host now (not queued, nor waiting to go again).
    sent: bool,
    /// A download whose body has begun to arrive in this attempt.
    receiving: bool,
}

fn slot(service: Service) -> usize {
    match service {
        Service::Dataverse => 0,
        Service::Salesmanago => 1,
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
    /// What goes before everything else: reads, in the order asked, and first of all the
    /// write of the record once it is read (the lease it takes lets every change go).
    first: VecDeque<Ticket>,
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

/// The contact commands hold no lease: its hooks, empty in the contact pages' engine.
#[cfg(not(feature = "jobs"))]
impl Runner {
    fn waits_for_lease(&self, _: &Request) -> bool {
        false
    }

    fn heartbeat_at(&self) -> Option<u64> {
        None
    }
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
            first: VecDeque::new(),
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

    /// Learns Dataverse's clock from an answer's `Date`, come at `local_ms`.
    pub(super) fn observe_clock(&mut self, date: Option<&str>, local_ms: u64) {
        self.clock.observe(date, local_ms);
    }

    /// `local_ms` on Dataverse's clock, as its answers so far tell it.
    pub(super) fn dataverse_time(&self, local_ms: u64) -> u64 {
        self.clock.at(local_ms)
    }

    /// The earliest Dataverse's time can be at `local_ms` ([`ServiceClock::earliest`]).
    pub(super) fn dataverse_earliest(&self, local_ms: u64) -> u64 {
        self.clock.earliest(local_ms)
    }

    /// Most requests in flight at once to each service.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Most units (pages, chunks) a job holds at once: twice [`Runner::limit`], so that while
    /// a unit waits for one service, another has its requests in flight with the other.
    pub(super) fn depth(&self) -> usize {
        2 * self.limit
    }

    /// Whether any request is still to be answered.
    pub(super) fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// Whether a job (not a contact command, which waits for the user) waits for nothing: no
    /// request pending or to send, and not finished. Only its heartbeat would wake it.
    pub(super) fn stalled(&self) -> bool {
        self.job.is_some() && !self.finished && self.pending.is_empty() && self.out.is_empty()
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
        // Reads go before everything else (in the order asked), so the pipeline does not stall
        // behind the write-backs; the job bounds the pages it holds, so they cannot starve them.
        let read = matches!(request, Request::Read(_) | Request::Keys(_) | Request::Tracked(_));
        let ticket = self.hold(request);
        match read {
            true => self.first.push_back(ticket),
            false => self.queued.push_back(ticket),
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
        #[cfg(feature = "jobs")]
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
        let pick = |queue: &VecDeque<Ticket>| queue.iter().position(|t| self.pending.get(t).is_some_and(room));
        // The other queue is looked at only when nothing in the first may go.
        let ticket = match pick(&self.first) {
            Some(at) => self.first.remove(at)?,
            None => {
                let at = pick(&self.queued)?;
                self.queued.remove(at)?
            }
        };
        let pending = self.pending.get_mut(&ticket)?;
        pending.sent = true;
        self.in_flight[slot(pending.request.service())] += 1;
        let request = &pending.request;
        Some(match request {
            Request::Read(query) => Action::Read { ticket, read: Read::of(query.clone()) },
            Request::Keys(query) => {
                Action::Read { ticket, read: Read { query: query.clone(), track: false, page: Read::KEYS_PAGE } }
            }
            Request::Tracked(query) => {
                Action::Read { ticket, read: Read { query: query.clone(), track: true, page: Read::PAGE } }
            }
            #[cfg(feature = "jobs")]
            Request::Write(rows) => Action::Write {
                ticket,
                writes: Writes { rows: rows.clone(), tag: self.rng.key(), writing: Writing::ContactUpdates },
            },
            #[cfg(feature = "activity")]
            Request::Create(rows) => Action::Write {
                ticket,
                writes: Writes { rows: rows.clone(), tag: self.rng.key(), writing: Writing::NewActivities },
            },
            #[cfg(feature = "jobs")]
            Request::Record(guarded) => {
                let guarded = guarded.clone();
                self.record_action(ticket, &guarded, now_ms)
            }
            #[cfg(any(feature = "contact", feature = "activity"))]
            Request::Row(path) => Action::Get { ticket, path: path.clone() },
            #[cfg(feature = "contact")]
            Request::Patch(path, columns) => Action::Patch {
                ticket,
                path: path.clone(),
                if_match: "*".into(),
                body: Value::Object(columns.clone()).to_string(),
            },
            #[cfg(any(feature = "contact", feature = "activity"))]
            Request::Remove(path) => Action::Delete { ticket, path: path.clone() },
            Request::Call(call) => {
                let nonce = Nonce { api_key: self.rng.key(), request_time_ms: now_ms };
                let request = match call {
                    #[cfg(feature = "export")]
                    Call::Upsert(op) => self.client.request(op, &nonce),
                    Call::Lookup(op) => self.client.request(op, &nonce),
                    #[cfg(feature = "changes")]
                    Call::Modified(op) => self.client.request(op, &nonce),
                    #[cfg(feature = "contact")]
                    Call::UpsertOne(op) => self.client.request(op.as_ref(), &nonce),
                    #[cfg(any(feature = "contact", feature = "export"))]
                    Call::Has(op) => self.client.request(op, &nonce),
                    #[cfg(any(feature = "contact", feature = "export"))]
                    Call::Delete(op) => self.client.request(op, &nonce),
                    #[cfg(any(feature = "contact", feature = "export"))]
                    Call::Subscribe(op) => self.client.request(op, &nonce),
                    #[cfg(feature = "consents")]
                    Call::Export(op) => self.client.request(op, &nonce),
                    #[cfg(feature = "consents")]
                    Call::Status(op) => self.client.request(op, &nonce),
                };
                Action::Call { ticket, request, timeout_ms: DEFAULT_TIMEOUT_MS }
            }
            #[cfg(feature = "consents")]
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

    /// Takes the answer to `ticket`: what it yields, or `None` while it is being tried again
    /// (or was not the job's).
    pub(super) fn answer(&mut self, ticket: Ticket, reply: Reply, now_ms: u64) -> Option<Result<Output, Error>> {
        let pending = self.pending.get_mut(&ticket).filter(|p| p.sent && !self.finished)?;
        if let Reply::Dataverse(Ok(response)) = &reply {
            self.clock.observe(response.date.as_deref(), now_ms);
        }
        #[cfg(feature = "consents")]
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
        #[cfg(feature = "jobs")]
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

    /// Shows progress: contacts handled, and a wait still under way.
    #[cfg_attr(not(feature = "jobs"), allow(unused_variables))]
    pub(super) fn show(&mut self, now_ms: u64) {
        // A contact command shows no progress; only the jobs over many contacts do, in the
        // exports' and the pulls' engines.
        #[cfg(feature = "jobs")]
        if self.job.is_some() {
            let (command, done, total) = (self.command, self.handled, self.total);
            let message = match self.wait {
                Some((service, until)) if until > now_ms => {
                    Message::Waiting { command, done, total, service, seconds: (until - now_ms).div_ceil(1000) }
                }
                _ => Message::Progress { command, done, total },
            };
            self.say(message);
        }
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
        Some(crate::core::i18n::text(&error.into_message(), self.lang))
    }

    /// A reply whose output is not its request's (the runner reads each reply as its request's
    /// output, so none comes): the job fails, rather than the process (a release build aborts
    /// on a panic).
    pub(super) fn mismatched(&mut self) {
        let detail = "an answer came that is not its request's".into();
        self.fail(JobFailure { message: crate::core::i18n::Message::Dataverse { detail }, kind: "internal" });
    }

    /// Ends the job with `failure`; it stays failed, and its later answers are ignored. A lease
    /// held is given up first, so the job can be started again at once.
    pub(super) fn fail(&mut self, failure: JobFailure) {
        if self.finished || self.failing.is_some() {
            return;
        }
        #[cfg(feature = "jobs")]
        if self.lease.as_ref().is_some_and(|l| l.held) {
            // Nothing else goes out: only the release, then the failure is told.
            self.pending = SortedMap::new();
            self.queued.clear();
            self.first.clear();
            self.delayed.clear();
            self.in_flight = [0; 2];
            self.failing = Some(failure);
            self.record(Map::new(), true);
            return;
        }
        self.finished = true;
        self.out.push_back(Action::Finished(Err(failure)));
    }

    /// Ends the job with `summary`.
    pub(super) fn succeed(&mut self, summary: Summary) {
        if !self.finished {
            self.finished = true;
            self.out.push_back(Action::Finished(Ok(summary)));
        }
    }
}
