//! A deterministic whole-job simulation: the core's jobs driven natively against in-memory
//! Dataverse and SALESmanago models with seeded faults and a simulated clock. Each run checks
//! the invariants the jobs promise; a failing seed is printed so `SIM_SEED=<seed> cargo test
//! --test simulation -- --nocapture` replays it.
#![cfg(not(target_arch = "wasm32"))]

mod activity;
mod consent_rule;
mod contact_commands;
mod dataverse;
mod distributed;
mod email_changes;
mod mapping;
mod rng;
mod rule_calls;
mod salesmanago;
mod scope;

use std::collections::BTreeSet;

use salesmanago_dynamics::core::command::{BulkJob, Command};
use salesmanago_dynamics::core::dataverse::error::DvFailure;
use salesmanago_dynamics::core::dataverse::schema::{contact, integration, Job as JobColumns, SyncStatus};
use salesmanago_dynamics::core::i18n::{Lang, Message};
use salesmanago_dynamics::core::integration::{settings, Settings};
use salesmanago_dynamics::core::job::contact::{ContactStart, FormAction, Task};
use salesmanago_dynamics::core::job::lease::{Holder, User, HEARTBEAT_MS, MAX_CONFLICTS, STALE_MS};
use salesmanago_dynamics::core::job::{record_columns, Action, Job, JobFailure, Reply, Start, Summary, Ticket};
use salesmanago_dynamics::core::json::{self, Map, Value};
use salesmanago_dynamics::core::mapping::normalize;
use salesmanago_dynamics::core::salesmanago::HttpResponse;
use salesmanago_dynamics::core::sync::{unix_ms, Tally};

use dataverse::{sql_key, Dataverse, LeaseWrite};
use rng::Rng;
use salesmanago::Salesmanago;

/// Faults of one run, as chances in a thousand per request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub(crate) throttle: u64,
    pub(crate) server_error: u64,
    pub(crate) timeout: u64,
    pub(crate) malformed: u64,
}

impl Faults {
    fn draw(rng: &mut Rng) -> Faults {
        if rng.below(5) == 0 {
            return Faults::default();
        }
        Faults {
            throttle: rng.below(120),
            server_error: rng.below(60),
            timeout: rng.below(40),
            malformed: rng.below(40),
        }
    }
}

/// The world of one run: both services and the clock.
pub(crate) struct World {
    /// True time: Dataverse's and SALESmanago's clocks.
    pub(crate) now: u64,
    /// How far the clock of the browser acting now is off true time (up to ±10 minutes).
    pub(crate) skew: i64,
    /// How many times the last [`World::run`] started its job after its interruptions.
    tries: usize,
    /// When the last job was started (true time).
    pub(crate) last_start: u64,
    pub(crate) rng: Rng,
    pub(crate) dataverse: Dataverse,
    pub(crate) salesmanago: Salesmanago,
    /// What the contact commands asked of the form.
    pub(crate) form: Vec<FormAction>,
    /// How the user and the form answer the contact commands.
    pub(crate) habits: Habits,
    /// Each answer the form gave, in order.
    pub(crate) answers: Vec<Result<usize, String>>,
    /// Added to every answer's latency: a slow network, so a job lives long enough to renew
    /// its lease.
    pub(crate) slow_ms: u64,
    /// Each "preparing the file" progress the job showed: (true time, seconds it says it waited).
    pub(crate) preparing: Vec<(u64, u64)>,
    /// Where SALESmanago's export file is ([`FileStep`]), and the reads of Dynamics' contacts
    /// asked for while it was prepared and while it downloaded.
    file_step: FileStep,
    pub(crate) file_reads: FileReads,
    /// Writes of Export all's checkpoint asked for (each attempt, answered or not).
    pub(crate) checkpoint_writes: u64,
    /// Every answer takes the same time (none overtakes another): a run whose pages end in the
    /// order they were read.
    pub(crate) steady: bool,
    /// The most requests a job had in flight at once, both services together.
    pub(crate) most_in_flight: usize,
    /// What the last job driven showed: any progress, and a wait told; and whether it tried a
    /// request again after a wait of 2 s or more a service asked for (`Retry-After`).
    pub(crate) shown: Shown,
}

/// Where SALESmanago's export file is, as the requests show it.
#[derive(Debug, Clone, Copy, Default)]
enum FileStep {
    #[default]
    None,
    /// Asked for (`contact/export/data`), not yet downloading.
    Preparing,
    /// The download under this ticket runs.
    Downloading(Ticket),
}

/// Reads of Dynamics' contacts asked for while the export file was prepared or downloaded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FileReads {
    pub(crate) preparing: usize,
    pub(crate) downloading: usize,
}

/// What a job showed while it ran ([`World::shown`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shown {
    progress: bool,
    waiting: bool,
    asked_to_wait: bool,
}

/// How the user and the form answer a contact command, as chances in a thousand (none by
/// default: the user confirms, and the form has every column it is asked to fill).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Habits {
    /// The user declines a delete's confirmation.
    pub(crate) declines: u64,
    /// The form fails to fill its columns or to ask the user.
    pub(crate) fails: u64,
    /// The form lacks some of the columns it is asked to fill (it says how many it has).
    pub(crate) lacks: u64,
}

const START: u64 = 1_800_000_000_000;

/// How far a browser's reading of Dataverse's clock may be off: the `Date` header's whole
/// second, and the slowest answer's way back.
const CLOCK_ERROR_MS: u64 = 5_000;

impl World {
    fn new(seed: u64, contacts: usize) -> World {
        let mut rng = Rng::new(seed);
        let faults = Faults::draw(&mut rng);
        let dataverse = Dataverse::seeded(&mut rng, contacts, faults, START);
        let salesmanago = Salesmanago::new(faults, &mut rng, &dataverse);
        World {
            now: START,
            skew: 0,
            tries: 0,
            last_start: START,
            rng,
            dataverse,
            salesmanago,
            form: Vec::new(),
            habits: Habits::default(),
            answers: Vec::new(),
            slow_ms: 0,
            preparing: Vec::new(),
            file_step: FileStep::None,
            file_reads: FileReads::default(),
            checkpoint_writes: 0,
            steady: false,
            most_in_flight: 0,
            shown: Shown::default(),
        }
    }

    /// The acting browser's clock.
    fn local(&self) -> u64 {
        self.now.saturating_add_signed(self.skew)
    }

    /// Another browser, whose clock is right or up to ten minutes off either way.
    fn another_browser(&mut self) {
        self.skew = if self.rng.chance(300) { 0 } else { self.rng.below(1_200_001) as i64 - 600_000 };
    }

    fn start(&mut self, job: BulkJob) -> Job {
        let record = self.dataverse.snapshot(&record_columns(job));
        self.start_with(job, record)
    }

    /// The integration record's settings, as the host reads them.
    fn settings(&self) -> Settings {
        settings(std::slice::from_ref(&self.dataverse.record)).expect("the simulated record is complete")
    }

    /// Starts `job` as if the host had read the record as `record`.
    fn start_with(&mut self, job: BulkJob, record: Map) -> Job {
        self.start_on(job, record, Vec::new())
    }

    /// Starts "Export selected" of the contacts `ids`.
    fn start_selected(&mut self, ids: Vec<String>) -> Job {
        let record = self.dataverse.snapshot(&record_columns(BulkJob::ExportSelected));
        self.start_on(BulkJob::ExportSelected, record, ids)
    }

    /// Starts `job` on the contacts `selected` (none: the job's own).
    fn start_on(&mut self, job: BulkJob, record: Map, selected: Vec<String>) -> Job {
        let settings = self.settings();
        self.last_start = self.now;
        Job::new(Start {
            job,
            lang: Lang::En,
            settings,
            user: User { id: "u-1".into(), name: "Anna Nowak".into() },
            record,
            consents: vec!["new_consent_marketing".into()],
            selected,
            changed: Vec::new(),
            read: None,
            now_ms: self.local(),
            seed: self.rng.next(),
        })
    }

    /// Drives `job` until it finishes, or, with `stop_after`, until that many actions were taken
    /// (the tab closed): the answers still on their way are lost.
    fn drive(&mut self, job: &mut Job, stop_after: Option<usize>) -> Option<Result<Summary, String>> {
        self.drive_with(job, stop_after, &mut Vec::new())
    }

    /// [`World::drive`] with the answers on their way kept in `in_flight` (a frozen tab's, to
    /// arrive when it wakes).
    fn drive_with(
        &mut self,
        job: &mut Job,
        stop_after: Option<usize>,
        in_flight: &mut Vec<(u64, Ticket, Reply)>,
    ) -> Option<Result<Summary, String>> {
        let result = self.drive_raw(job, stop_after, in_flight)?;
        Some(result.map_err(|f| format!("{:?} ({})", f.message, f.kind)))
    }

    /// [`World::drive_with`], the job's end as it is.
    fn drive_raw(
        &mut self,
        job: &mut Job,
        stop_after: Option<usize>,
        in_flight: &mut Vec<(u64, Ticket, Reply)>,
    ) -> Option<Result<Summary, JobFailure>> {
        let mut actions = 0;
        // Dataverse's answers carry its clock.
        let dated = |reply: Result<HttpResponse, DvFailure>, now: u64| {
            reply.map(|response| HttpResponse { date: Some(rng::http_date(now / 1000 * 1000, 0)), ..response })
        };
        // A request asked to wait (`Retry-After` in seconds) goes again no sooner (true time;
        // the header counts whole seconds).
        let mut not_before: std::collections::BTreeMap<Ticket, (u64, u64)> = Default::default();
        // The wait the answer just handed over asked for, in seconds; and the longest asked (the
        // faults ask for 5 s at most, a chosen read of the record for longer).
        let mut just_asked = None;
        let mut most_asked = 5;
        self.shown = Shown::default();
        self.file_step = FileStep::None;
        for _ in 0..10_000_000 {
            // The reads asked for at this instant, counted where the file is once they are out
            // (a download and the reads beside it go out together, in either order).
            let mut reads_now = 0;
            while let Some(action) = job.poll(self.local()) {
                if let Some((at, seconds)) = action_ticket(&action).and_then(|t| not_before.remove(&t)) {
                    assert!(self.now + 1000 >= at, "a request went again {} ms before it was asked to", at - self.now);
                    self.shown.asked_to_wait |= seconds >= 2;
                }
                if let Action::Progress(message) = &action {
                    self.shown.progress = true;
                    if let Message::Waiting { seconds, .. } = message {
                        self.shown.waiting = true;
                        // No longer than asked (a date may round up a second, and the clock read
                        // from Dataverse's answers be off one more).
                        assert!((1..=most_asked + 2).contains(seconds), "waiting {seconds} s");
                        // Just asked: at least that long (the header's whole seconds).
                        let asked = just_asked.unwrap_or(0);
                        assert!(*seconds + 1 >= asked, "waiting {seconds} s, asked for {asked} s");
                    }
                }
                // Mostly quick; now and then slow, so requests overtake each other.
                let latency = match self.steady {
                    true => 50,
                    false => 5 + self.rng.below(150) + if self.rng.chance(100) { self.rng.below(3000) } else { 0 },
                };
                let latency = latency + self.slow_ms;
                match action {
                    Action::Read { ticket, read } => {
                        reads_now += 1;
                        let reply = self.dataverse.read(&read, &mut self.rng, self.now);
                        let reply = dated(reply, self.now);
                        in_flight.push((self.now + latency, ticket, Reply::Dataverse(reply)));
                    }
                    Action::Write { ticket, writes } => {
                        let reply = self.dataverse.write(&writes, &mut self.rng, self.now);
                        let reply = dated(reply, self.now);
                        in_flight.push((self.now + latency, ticket, Reply::Dataverse(reply)));
                    }
                    Action::Get { ticket, path } => {
                        let reply = if path.starts_with("contacts(") {
                            self.dataverse.row(&path, &mut self.rng, self.now)
                        } else if path.starts_with("systemusers(u-1)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess") {
                            self.dataverse.access(&mut self.rng, self.now)
                        } else {
                            self.dataverse.get(&path, &mut self.rng, self.now)
                        };
                        let reply = dated(reply, self.now);
                        in_flight.push((self.now + latency, ticket, Reply::Dataverse(reply)));
                    }
                    Action::Patch { ticket, path, if_match, body } => {
                        let checkpoint = JobColumns::Export.checkpoint_column();
                        if json::from_str(&body).is_ok_and(|b| b.get(checkpoint).is_some_and(|c| !c.is_null())) {
                            self.checkpoint_writes += 1;
                        }
                        let reply = if path.starts_with("contacts(") {
                            assert_eq!(if_match, "*", "a contact is updated, never created");
                            self.dataverse.patch_row(&path, &body, &mut self.rng, self.now)
                        } else {
                            self.dataverse.patch(&if_match, &body, &mut self.rng, self.now)
                        };
                        let reply = dated(reply, self.now);
                        in_flight.push((self.now + latency, ticket, Reply::Dataverse(reply)));
                    }
                    Action::Delete { ticket, path } => {
                        let reply = self.dataverse.remove(&path, &mut self.rng, self.now);
                        let reply = dated(reply, self.now);
                        in_flight.push((self.now + latency, ticket, Reply::Dataverse(reply)));
                    }
                    Action::Form { ticket, act } => {
                        let reply = self.answer_form(&act);
                        self.form.push(act);
                        if let (Some(ticket), Some(reply)) = (ticket, reply) {
                            in_flight.push((self.now + 1, ticket, Reply::Form(reply)));
                        }
                    }
                    Action::Call { ticket, request, timeout_ms } => {
                        if request.url.ends_with("/contact/export/data") {
                            self.file_step = FileStep::Preparing;
                        }
                        let (reply, timed_out) = self.salesmanago.call(&request, &mut self.rng, self.now);
                        let reply =
                            reply.map(|r| HttpResponse { date: Some(rng::http_date(self.now / 1000 * 1000, 0)), ..r });
                        let at = if timed_out { self.now + u64::from(timeout_ms) } else { self.now + latency };
                        in_flight.push((at, ticket, Reply::Salesmanago(reply)));
                    }
                    Action::Download { ticket, url, idle_timeout_ms } => {
                        // The parts arrive one after the other, then the end (or a failure).
                        self.file_step = FileStep::Downloading(ticket);
                        let (parts, end, stalled) = self.salesmanago.download(&url, &mut self.rng);
                        let mut at = self.now + latency;
                        for part in parts {
                            in_flight.push((at, ticket, Reply::Part(part)));
                            at += 1 + self.rng.below(20);
                        }
                        if stalled {
                            at += u64::from(idle_timeout_ms);
                        }
                        in_flight.push((at, ticket, Reply::Salesmanago(end)));
                    }
                    Action::Progress(Message::PreparingFile { seconds }) => self.preparing.push((self.now, seconds)),
                    Action::Progress(
                        Message::Progress { done, total: Some(total), .. }
                        | Message::Waiting { done, total: Some(total), .. },
                    ) => assert!(done <= total, "progress says {done} of {total}"),
                    // Export all counts each contact once (none is deleted while it runs here).
                    Action::Progress(
                        Message::Progress { command: Command::ExportAll, done, .. }
                        | Message::Waiting { command: Command::ExportAll, done, .. },
                    ) => {
                        let contacts = self.dataverse.contacts.len() as u64;
                        assert!(done <= contacts, "progress says {done} of {contacts} contacts handled");
                    }
                    Action::Progress(_) => {}
                    Action::Finished(result) => {
                        assert!(job.poll(self.local()).is_none(), "a finished job asks for nothing more");
                        return Some(result);
                    }
                }
                actions += 1;
                if stop_after.is_some_and(|n| actions >= n) {
                    return None;
                }
            }
            match self.file_step {
                FileStep::Preparing => self.file_reads.preparing += reads_now,
                FileStep::Downloading(_) => self.file_reads.downloading += reads_now,
                FileStep::None => {}
            }
            just_asked = None;
            let requests: BTreeSet<Ticket> = in_flight.iter().map(|(_, ticket, _)| *ticket).collect();
            self.most_in_flight = self.most_in_flight.max(requests.len());
            // A job that waits for nothing would sit until its heartbeat (30 s) woke it.
            assert!(!job.stalled(), "the job waits for nothing and has not finished");
            let next_reply = in_flight.iter().map(|(at, ..)| *at).min();
            // The job's timer runs on the browser's clock.
            let timer = job.poll_timeout().map(|at| at.saturating_add_signed(-self.skew));
            let next = match (next_reply, timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => panic!("the job waits for nothing and did not finish"),
            };
            self.now = self.now.max(next);
            if let Some(at) = in_flight.iter().position(|(when, ..)| *when <= self.now) {
                let (_, ticket, reply) = in_flight.swap_remove(at);
                if matches!((self.file_step, &reply), (FileStep::Downloading(t), Reply::Salesmanago(_)) if t == ticket)
                {
                    self.file_step = FileStep::None;
                }
                let asked = match &reply {
                    Reply::Dataverse(Ok(r)) | Reply::Salesmanago(Ok(r)) if r.status == 429 => r.retry_after.as_deref(),
                    _ => None,
                };
                if let Some(seconds) = asked.and_then(|a| a.parse::<u64>().ok()) {
                    not_before.insert(ticket, (self.now + seconds * 1000, seconds));
                    just_asked = Some(seconds);
                    most_asked = most_asked.max(seconds);
                }
                job.handle(ticket, reply, self.local());
            }
        }
        panic!("the job did not finish in ten million steps");
    }

    /// The form's answer to `act`, as [`World::habits`] make it (kept in [`World::answers`]).
    fn answer_form(&mut self, act: &FormAction) -> Option<Result<usize, String>> {
        let Habits { declines, fails, lacks } = self.habits;
        // No draw where the habit is none: the other scenarios' worlds stay as they were.
        let chance = |rng: &mut Rng, per_mille: u64| per_mille > 0 && rng.chance(per_mille);
        let rng = &mut self.rng;
        let reply = match act {
            FormAction::Fill(_) | FormAction::Confirm(_) if chance(rng, fails) => {
                Err("The form could not do it (simulated)".to_owned())
            }
            FormAction::Fill(columns) if chance(rng, lacks) => Ok(rng.below(columns.len() as u64) as usize),
            FormAction::Fill(columns) => Ok(columns.len()),
            FormAction::Confirm(_) if chance(rng, declines) => Ok(0),
            FormAction::Confirm(_) => Ok(1),
            FormAction::Notify { .. } | FormAction::Refresh { .. } | FormAction::RefreshGrid => return None,
        };
        self.answers.push(reply.clone());
        Some(reply)
    }

    /// Runs `job` to its end, abandoning it `interruptions` times at random steps first.
    fn run(&mut self, job: BulkJob, interruptions: usize) -> Result<Summary, String> {
        for _ in 0..interruptions {
            self.another_browser();
            let mut running = self.start(job);
            // Anywhere in the job: a page of 400 contacts takes four actions, and many more
            // when faults make its requests go again.
            let stop = 1 + self.rng.below(self.dataverse.contacts.len() as u64 / 8 + 40) as usize;
            if let Some(result) = self.drive(&mut running, Some(stop)) {
                // It ended before it was abandoned. A failure for now is one of the user's tries
                // below (the user starts the job again); anything else is its end.
                if !fails_for_now(&result) {
                    return result;
                }
                self.now += 60_000;
                self.refused_while_held(job);
                continue;
            }
            // The tab was closed; someone starts the job again, soon or later.
            self.now += 1000 + self.rng.below(2 * STALE_MS);
            self.refused_while_held(job);
        }
        // Export all's checkpoint, which "Export changes" (sharing the export's columns) keeps.
        let checkpoint = BulkJob::ExportAll.state().map(|s| s.checkpoint_column()).expect("Export all has state");
        let resumable = self.dataverse.record.get(checkpoint).cloned();
        let mut result = Err(String::new());
        // A request that failed for now every time it was tried ends the job; the user starts
        // it again (and again, at worst).
        for tries in 1..=3 {
            self.tries = tries;
            self.another_browser();
            // Export all resumes after its checkpoint: it sends no contact up to it again.
            let after = self
                .dataverse
                .record
                .get(checkpoint)
                .and_then(Value::as_str)
                .and_then(|c| json::from_str(c).ok()?.get("after")?.as_str().map(str::to_owned));
            let upserts = self.salesmanago.history.len();
            let mut running = self.start(job);
            result = self.drive(&mut running, None).expect("driven to the end");
            // A job that ran showed its progress; any job tells each wait a service asked for.
            let shown = self.shown;
            assert!(shown.progress || result.is_err(), "{job:?} ran and showed no progress: {result:?}");
            assert!(!shown.asked_to_wait || shown.waiting, "{job:?} was asked to wait and did not say so");
            if let (BulkJob::ExportAll, Some(after)) = (job, &after) {
                for (email, _) in &self.salesmanago.history[upserts..] {
                    let beyond = self.dataverse.contacts.iter().any(|(id, row)| {
                        sql_key(id) > sql_key(after)
                            && text(row, "emailaddress1").is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
                    });
                    assert!(beyond, "{email} sent again by a run resumed after {after}");
                }
            }
            // Only "Export selected" keeps what went (the relay answers by it).
            assert!(job == BulkJob::ExportSelected || running.went().is_empty(), "{job:?} kept what went");
            if !fails_for_now(&result) {
                break;
            }
            self.now += 60_000;
            self.refused_while_held(job);
        }
        if let (Some(_), Ok(summary)) = (job.state(), &result) {
            let unrecorded = summary.details.iter().any(|d| d.contains("did not take this summary"));
            assert!(unrecorded || self.holder(job).is_some_and(|h| h.released), "a finished job gives its lease up");
            let now = self.dataverse.record.get(checkpoint).filter(|v| !v.is_null());
            match job {
                BulkJob::ExportAll if !unrecorded => {
                    assert_eq!(now, None, "a finished Export all leaves no checkpoint")
                }
                BulkJob::ExportChanges => {
                    assert_eq!(
                        now,
                        resumable.as_ref().filter(|v| !v.is_null()),
                        "Export changes keeps Export all's checkpoint"
                    )
                }
                _ => {}
            }
        }
        // Contacts not done come with their list to download, counted as the summary counts them.
        if let Ok(summary) = &result {
            let t = &summary.tally;
            match &summary.download {
                Some((count, csv)) => {
                    assert!(!t.not_done.is_empty(), "a list to download, of nothing: {t:?}");
                    assert_eq!(*count, t.skipped() + t.failed(), "the list's count: {t:?}");
                    assert!(t.not_done.iter().all(|n| csv.contains(&n.id)), "every contact not done is listed");
                }
                None => assert!(t.not_done.is_empty(), "contacts not done, and no list to download: {t:?}"),
            }
        }
        result
    }

    /// The run that holds `job`'s lease, if any.
    fn holder(&self, job: BulkJob) -> Option<Holder> {
        let column = job.state()?.lease_column();
        self.dataverse.record.get(column).and_then(Value::as_str).and_then(Holder::from_text)
    }

    /// While a silent run's lease of `job` is fresh, a start from another browser (whatever its
    /// clock) is refused, says who runs it and how far it is, and writes nothing; then time
    /// passes until the lease may be taken over.
    fn refused_while_held(&mut self, job: BulkJob) {
        // Each browser reads Dataverse's clock from whole seconds, the answer's latency later.
        let Some(holder) = self.holder(job).filter(|h| !h.released) else { return };
        if holder.heartbeat_ms + STALE_MS <= self.now + CLOCK_ERROR_MS {
            // Stale, or so nearly that a browser's reading of the clock may still say fresh.
            self.now = self.now.max(holder.heartbeat_ms + STALE_MS + CLOCK_ERROR_MS);
            return;
        }
        let skew = self.skew;
        self.another_browser();
        let (version, batches, writes) = (self.dataverse.version, self.dataverse.batches, self.salesmanago.writes);
        // Started from the record as read before the lease was taken (two clicks at once), or
        // as it is now.
        let mut second = if self.rng.chance(500) {
            let mut stale = self.dataverse.snapshot(&record_columns(job));
            stale.insert("@odata.etag".into(), "W/\"0\"".into());
            stale.remove(job.state().expect("a leased job").lease_column());
            self.start_with(job, stale)
        } else {
            self.start(job)
        };
        match self.drive(&mut second, None).expect("driven to the end") {
            Err(failure) if failure.contains("jobRunning") => {
                assert!(
                    failure.contains("Anna Nowak") && failure.contains(&format!("done: {}", holder.done)),
                    "{failure}"
                );
                // How long it has run, and how long until it may be taken over, as Dataverse's
                // clock says (a browser reads it within a few seconds).
                let number = |field: &str| -> u64 {
                    let at = failure.find(field).unwrap_or_else(|| panic!("{field} in {failure}")) + field.len();
                    failure[at..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .expect("a number")
                };
                let (minutes, left) = (number("minutes: "), number("seconds_left: "));
                let ran = (self.now - holder.since_ms) / 60_000;
                assert!(minutes.abs_diff(ran) <= 1, "running {minutes} minutes, {ran} by the record: {failure}");
                let stale = (holder.heartbeat_ms + STALE_MS).saturating_sub(self.now) / 1000;
                assert!(
                    left <= STALE_MS / 1000 && left.abs_diff(stale) <= 10,
                    "{left} s left, {stale} by the record: {failure}"
                );
            }
            // Dataverse kept failing the read: the start failed, having written nothing.
            Err(failure) if failure.contains("(dataverse)") => {}
            other => panic!("started while {holder:?} holds the lease: {other:?}"),
        }
        assert_eq!(
            (self.dataverse.version, self.dataverse.batches, self.salesmanago.writes),
            (version, batches, writes),
            "a refused start changes nothing"
        );
        self.skew = skew;
        self.now = self.now.max(holder.heartbeat_ms + STALE_MS + CLOCK_ERROR_MS);
    }
}

/// Whether a job ended failing for now: a request failed every time it was tried, for a reason
/// that passes (the user starts the job again later).
fn fails_for_now(result: &Result<Summary, String>) -> bool {
    let passing = ["(throttled)", "(server)", "(timeout)", "(network)", "(invalidResponse)", "(dataverse)"];
    result.as_ref().is_err_and(|f| passing.iter().any(|k| f.ends_with(k)))
}

fn text(row: &Map, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_owned)
}

/// Export all, interrupted and resumed: the counts add up to every contact exactly; nothing is
/// marked Synced that SALESmanago lacks; a clean rerun leaves every sendable contact in
/// SALESmanago with its id in Dynamics.
fn export_all(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    // Dynamics refuses every write of some contacts: their status write-back too, after
    // SALESmanago took them.
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    for id in ids {
        if world.rng.chance(20) {
            world.dataverse.refuse.insert(id);
        }
    }
    let interruptions = world.rng.below(4) as usize;
    let summary = world.run(BulkJob::ExportAll, interruptions);
    match summary {
        Ok(summary) => {
            let t = &summary.tally;
            assert!(t.adds_up(), "counts add up: {t:?}");
            assert_eq!(t.total, world.dataverse.contacts.len() as u64, "every contact counted once: {t:?}");
            assert_eq!(t.same + t.missing, 0);
            // The split, not only the sum: each count is the contacts whose status says so (a
            // resume that mixed up its checkpoint's counts calls invalid e-mails failures).
            // A contact whose writes Dynamics refuses keeps no status: it is skipped or failed.
            let refused = &world.dataverse.refuse;
            let unsendable = refused.iter().filter(|id| !world.dataverse.valid_email(&world.dataverse.contacts[*id]));
            let unsendable = unsendable.count() as u64;
            let (synced, skipped, failed) = world.statuses(|_| true);
            assert_eq!(
                (t.done, t.skipped(), t.failed()),
                (synced, skipped + unsendable, failed + refused.len() as u64 - unsendable),
                "the summary's (sent, skipped, failed) are the contacts' statuses ({} of them refused)",
                refused.len()
            );
        }
        Err(failure) => panic!("export failed: {failure}"),
    }
    world.check_synced();
    assert!(
        world.dataverse.record.get(JobColumns::Export.checkpoint_column()).is_none_or(Value::is_null),
        "a finished export leaves no checkpoint"
    );
    // A clean rerun.
    world.dataverse.refuse.clear();
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    // Its pages end in the order they were read: it saves its checkpoint every 10 pages of 400
    // contacts, but at the last.
    world.steady = true;
    world.most_in_flight = 0;
    let writes = world.checkpoint_writes;
    let clean = world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    world.steady = false;
    world.check_synced();
    let (pages, writes) = (contacts.div_ceil(400) as u64, world.checkpoint_writes - writes);
    assert_eq!(writes, pages.saturating_sub(1) / 10, "checkpoints in {pages} pages");
    // Each service has its own requests in flight (the record's concurrency at most, each): over
    // many pages, more than one service's worth are on their way at once.
    let (most, limit) = (world.most_in_flight, world.settings().concurrency as usize);
    assert!(pages < 12 || most > limit, "at most {most} requests in flight (the limit: {limit} a service)");
    for (id, row) in &world.dataverse.contacts {
        let sendable = world.dataverse.valid_email(row);
        let status = row.get(contact::SYNC_STATUS).and_then(Value::as_i64);
        if sendable && !world.salesmanago.rejects(row) {
            assert_eq!(status, Some(i64::from(SyncStatus::Synced.value())), "{id} synced after a clean run: {row:?}");
            let email = text(row, "emailaddress1").unwrap_or_default().trim().to_ascii_lowercase();
            let sm = world.salesmanago.by_email(&email).expect("in SALESmanago");
            assert_eq!(text(row, contact::SALESMANAGO_ID).as_deref(), Some(sm.id.as_str()), "{id}");
            // Three street lines of 250 characters go out cut to 255, and the contact says so.
            if text(row, "address1_line1").is_some_and(|l| l.len() == 250) {
                let warned = text(row, contact::LAST_ERROR).unwrap_or_default();
                assert!(
                    warned.contains("longer than 255 characters"),
                    "{id}: no warning of the cut street: {warned:?}"
                );
            }
        }
    }
    assert!(clean.tally.adds_up());
    let t = &clean.tally;
    assert_eq!((t.done, t.skipped(), t.failed()), world.statuses(|_| true), "a clean run's split: {t:?}");
    world.salesmanago.check_unique();
}

impl World {
    /// How many of the contacts `counted` picks are (Synced, Skipped, Failed): what an export's
    /// summary must say it sent, skipped and failed.
    pub(crate) fn statuses(&self, counted: impl Fn(&str) -> bool) -> (u64, u64, u64) {
        let count = |status: SyncStatus| {
            let value = Some(i64::from(status.value()));
            let rows = self.dataverse.contacts.iter().filter(|(id, _)| counted(id));
            rows.filter(|(_, r)| r.get(contact::SYNC_STATUS).and_then(Value::as_i64) == value).count() as u64
        };
        (count(SyncStatus::Synced), count(SyncStatus::Skipped), count(SyncStatus::Failed))
    }

    /// The contacts `tally` says failed are exactly those whose write Dynamics refused since
    /// `refused_writes` was cleared (each listed: the simulation stays under `MAX_LISTED`).
    fn check_failed_are_refused(&self, tally: &Tally) {
        let failed: BTreeSet<&String> = tally.not_done.iter().filter(|n| !n.skipped).map(|n| &n.id).collect();
        assert_eq!(tally.failed(), failed.len() as u64, "every failed contact listed once: {tally:?}");
        assert_eq!(failed, self.dataverse.refused_writes.iter().collect(), "failed: those Dynamics refused, {tally:?}");
    }

    /// No contact is marked Synced that SALESmanago lacks.
    fn check_synced(&self) {
        for (id, row) in &self.dataverse.contacts {
            if row.get(contact::SYNC_STATUS).and_then(Value::as_i64) == Some(i64::from(SyncStatus::Synced.value())) {
                let sm_id = text(row, contact::SALESMANAGO_ID).unwrap_or_default();
                let sm = self.salesmanago.by_id(&sm_id);
                assert!(sm.is_some(), "{id} is Synced as {sm_id:?}, which SALESmanago lacks: {row:?}");
            }
        }
    }
}

/// Pull changes: the watermark never passes a change that was not applied; opt-outs are never
/// lost; a later pull applies what the first could not.
fn pull_changes(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    // Changed in the last hour; in half the worlds, over the 30 days the first pull looks back.
    let span = if world.rng.below(2) == 0 { 3_000_000 } else { 29 * 86_400_000 };
    world.salesmanago.change_some(&mut world.rng, &world.dataverse, 300, (START + 3_000_000 - span, span));
    // In a third of the worlds, a contact changed twice in SALESmanago, alike: under the id it
    // holds (moved to another address there), and as a new contact with its address. Both match
    // it: the first write stands, the other counts as the same.
    if world.rng.below(3) == 0 {
        let twin = world.dataverse.contacts.iter().find_map(|(id, row)| {
            let email = normalize::email(&text(row, contact::EMAIL)?).ok()?;
            (world.salesmanago.by_email(&email).is_none()).then(|| (id.clone(), email))
        });
        if let Some((id, email)) = twin {
            let at = START + 2_000_000;
            let moved = world.salesmanago.add_changed(format!("moved-{email}"), "Twin Changed".into(), false, at);
            let row = world.dataverse.contacts.get_mut(&id).expect("a contact");
            row.insert(contact::SALESMANAGO_ID.into(), moved.into());
            world.salesmanago.add_changed(email, "Twin Changed".into(), false, at + 100);
        }
    }
    // And contacts Dynamics does not have: the pull counts them as missing.
    let elsewhere = world.rng.below(4);
    world.salesmanago.add_elsewhere(elsewhere, START + 1_000_000);
    // In half the worlds SALESmanago refuses to look some changed contacts up (`listById`
    // answering `success:false`): they fail for now, and the watermark stays before them.
    // (Those whose change shows: a name Dynamics does not hold yet.)
    if world.rng.below(2) == 0 {
        let shows = |sm: &salesmanago::SmRecord| {
            world.dataverse.matching(sm).is_some_and(|(_, row)| !world.dataverse.holds_name(row, sm))
        };
        let ids: Vec<String> = world.salesmanago.changed().filter(|sm| shows(sm)).map(|sm| sm.id.clone()).collect();
        world.salesmanago.refuse_lookup.extend(ids.into_iter().filter(|_| world.rng.chance(100)));
    }
    // Now and then a contact's write meets a deadlock that passes when written again.
    let ids: Vec<String> = world.dataverse.contacts.keys().filter(|_| world.rng.chance(30)).cloned().collect();
    world.dataverse.deadlocked.extend(ids);
    world.now = START + 3_600_000;
    let interruptions = world.rng.below(3) as usize;
    match world.run(BulkJob::PullChanges, interruptions) {
        Ok(summary) => {
            assert!(summary.tally.adds_up(), "{:?}", summary.tally);
            // (A refused lookup fails every contact asked in its call.)
            if interruptions == 0 && world.salesmanago.refuse_lookup.is_empty() {
                assert!(summary.tally.missing >= elsewhere, "{elsewhere} only in SALESmanago: {:?}", summary.tally);
            }
            // Each contact whose lookup failed is in the list to download, named by its
            // SALESmanago id (Dynamics' id and e-mail are not known without the lookup).
            if interruptions == 0 {
                let csv = summary.download.as_ref().map(|(_, csv)| csv.as_str()).unwrap_or_default();
                for id in &world.salesmanago.refused_lookups {
                    let listed = summary.tally.not_done.iter().any(|n| n.reason.contains(id.as_str()));
                    assert!(
                        listed && csv.contains(id.as_str()),
                        "{id}: its lookup failed, and it is not listed: {csv}"
                    );
                }
            }
        }
        Err(failure) => panic!("pull changes failed: {failure}"),
    }
    let watermark: u64 = text(&world.dataverse.record, integration::CHANGES_WATERMARK)
        .and_then(|w| w.parse().ok())
        .expect("a watermark is recorded");
    // Held back by what failed, at those changes' times: never before the first pull's 30 days
    // (the next pull would list SALESmanago's changes since the beginning of time).
    assert!(watermark + 31 * 86_400_000 >= world.now, "the watermark {watermark} fell back to long ago");
    for sm in world.salesmanago.changed() {
        let Some((id, row)) = world.dataverse.matching(sm) else { continue };
        if sm.opted_out && sm.modified_on <= watermark {
            assert_eq!(row.get(contact::DO_NOT_BULK_EMAIL), Some(&Value::Bool(true)), "opt-out of {id} lost");
        }
        if sm.modified_on <= watermark {
            assert!(
                world.dataverse.holds_name(row, sm),
                "{id}: a change before the watermark {watermark} is not applied: {sm:?} {row:?}"
            );
        }
    }
    // SALESmanago changes more contacts within a minute after that pull. A later pull, without
    // faults, applies each of them or says why not, tries again what failed, and writes each
    // opt-out: no pull's watermark was ahead of a change yet to come, whatever the clock of the
    // browser that ran it (up to ten minutes off): it is on Dataverse's clock.
    world.salesmanago.change_some(&mut world.rng, &world.dataverse, 30, (world.now + 1, 60_000));
    world.now += 120_000;
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.salesmanago.refuse_lookup.clear();
    world.dataverse.refused_writes.clear();
    let second = world.run(BulkJob::PullChanges, 0).expect("a clean pull succeeds");
    world.check_failed_are_refused(&second.tally);
    for sm in world.salesmanago.changed() {
        let Some((id, row)) = world.dataverse.matching(sm) else { continue };
        // Dynamics refuses some names (too long for its columns); the summary lists those.
        let reported = second.tally.not_done.iter().find(|n| &n.id == id);
        if sm.opted_out {
            let held = row.get(contact::DO_NOT_BULK_EMAIL);
            assert_eq!(held, Some(&Value::Bool(true)), "opt-out of {id} lost: {sm:?} {row:?} {reported:?}");
        }
        let reported = reported.is_some();
        assert!(
            reported || world.dataverse.holds_name(row, sm),
            "{id}: a change is neither applied nor reported: {sm:?} {row:?}"
        );
    }
}

/// Export changes: after an export, contacts changed in Dynamics are sent, and only they; the
/// catch-up watermark moves to the run's start only when none failed, so a later run tries
/// again whatever did; Export all's checkpoint is never touched.
fn export_changes(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let faults = (world.dataverse.faults, world.salesmanago.faults);
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    world.now += 3_600_000;
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    let mut changed = Vec::new();
    for id in ids {
        if !world.rng.chance(200) {
            continue;
        }
        let row = world.dataverse.contacts.get_mut(&id).expect("a contact");
        let last = text(row, "lastname").unwrap_or_default();
        row.insert("firstname".into(), "Zmieniony".into());
        row.insert("fullname".into(), format!("Zmieniony {last}").into());
        world.dataverse.touch(&id, world.now);
        changed.push(id);
    }
    world.now += 60_000;
    (world.dataverse.faults, world.salesmanago.faults) = faults;
    // In half the worlds SALESmanago fails a few changed contacts' calls every time (a server
    // error outlasting the retries): they fail for now, and the next run must send them again.
    if world.rng.below(2) == 0 {
        for id in &changed {
            let email = text(&world.dataverse.contacts[id], "emailaddress1").unwrap_or_default();
            if world.rng.chance(150) && email.starts_with("user") {
                world.salesmanago.failing.insert(email.to_ascii_lowercase());
            }
        }
    }
    let started = world.now;
    // What it must send: every contact modified since the export finished (its own write-backs
    // at that instant too), which includes every contact changed since.
    let since = text(&world.dataverse.record, JobColumns::Export.last_run_column())
        .and_then(|t| unix_ms(&t))
        .expect("the export's last run");
    let due_ids: Vec<String> = world
        .dataverse
        .contacts
        .iter()
        .filter(|(_, row)| text(row, "modifiedon").and_then(|t| unix_ms(&t)).is_some_and(|m| m >= since))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(changed.iter().all(|id| due_ids.contains(id)));
    let due = due_ids.len() as u64;
    let interruptions = world.rng.below(3) as usize;
    // No catch-up has run in this world: the run reads since the export's last run.
    assert_eq!(text(&world.dataverse.record, integration::CATCH_UP_WATERMARK), None, "no watermark stored yet");
    let result = world.run(BulkJob::ExportChanges, interruptions);
    let watermark = text(&world.dataverse.record, integration::CATCH_UP_WATERMARK);
    match result {
        Ok(summary) => {
            let t = &summary.tally;
            assert!(t.adds_up(), "{t:?}");
            // Only those; all of them unless an interrupted attempt finished the job (its
            // watermark written, the tab closed before the summary) and sent them already:
            // the check after the clean run below finds any contact missed.
            assert!(t.total <= due, "the contacts modified since the last export, and only they: {t:?}");
            if interruptions == 0 {
                assert_eq!(t.total, due, "the contacts modified since the last export: {t:?}");
            }
            // The split, whenever the last run went over all of them (an interrupted run's too):
            // each holds the status its count says.
            if t.total == due {
                let split = world.statuses(|id| due_ids.iter().any(|d| d == id));
                assert_eq!((t.done, t.skipped(), t.failed()), split, "(sent, skipped, failed) of {t:?}");
            }
            // SALESmanago refusing a contact stands, and does not hold the watermark back.
            let refused = |id: &str| world.dataverse.contacts.get(id).is_some_and(|row| world.salesmanago.rejects(row));
            let for_now = t.failed() - t.not_done.iter().filter(|n| !n.skipped && refused(&n.id)).count() as u64;
            check_watermark(for_now, watermark, started, world.last_start, since, interruptions == 0);
        }
        // Stopped by the faults (service protection outlasting its retries): nothing moves.
        Err(failure) => assert_eq!(watermark, None, "stopped ({failure}): the watermark stays"),
    }
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    world.salesmanago.failing.clear();
    let link = text(&world.dataverse.record, integration::CATCH_UP_DELTA);
    // Now and then the link outlives what Dynamics keeps (change tracking's days): the next run
    // reads every contact again, and says so.
    let expired = link.is_some() && world.rng.below(3) == 0;
    if expired {
        world.now += world.dataverse.keep_changes_ms + 60_000;
    }
    // Else contacts are deleted in Dynamics (their webhooks lost): the next run finds them
    // through the link and removes them from SALESmanago; while SALESmanago fails some of those
    // removals, the link stays where it was, and a later run removes them.
    let mut removed = Vec::new();
    // Deleted too: contacts without an e-mail (skipped, their e-mail unknown), and with one
    // SALESmanago could not hold (nothing to remove: done).
    let (mut blank, mut invalid) = (Vec::new(), Vec::new());
    // The first run that ended well after the deletes (it found them).
    let mut found: Option<Tally> = None;
    if link.is_some() && !expired && world.dataverse.tracking && world.dataverse.bin {
        let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
        for id in ids {
            let row = &world.dataverse.contacts[&id];
            if !world.dataverse.valid_email(row) {
                let none = row.get("emailaddress1").is_none_or(Value::is_null);
                if world.rng.chance(60) {
                    world.dataverse.delete(&id);
                    if none {
                        blank.push(id)
                    } else {
                        invalid.push(id)
                    }
                }
                continue;
            }
            let email = text(row, "emailaddress1").unwrap_or_default().trim().to_ascii_lowercase();
            let held = world
                .dataverse
                .contacts
                .values()
                .filter(|r| text(r, "emailaddress1").is_some_and(|e| e.trim().eq_ignore_ascii_case(&email)));
            if world.rng.chance(60) && world.salesmanago.by_email(&email).is_some() && held.count() == 1 {
                world.dataverse.delete(&id);
                removed.push(email);
            }
        }
        // SALESmanago fails some of the removals, or Dynamics every read of its recycle bin.
        match world.rng.below(3) {
            0 => world.salesmanago.failing.extend(removed.iter().filter(|_| world.rng.below(2) == 0).cloned()),
            1 => world.dataverse.failing_bin = !removed.is_empty(),
            _ => {}
        }
        let failing =
            world.salesmanago.failing.len() as u64 + if world.dataverse.failing_bin { removed.len() } else { 0 } as u64;
        if failing > 0 {
            world.now += 60_000;
            match world.run(BulkJob::ExportChanges, 0) {
                // The recycle bin unreadable: the job stops, saying why.
                Err(failure) => assert!(world.dataverse.failing_bin && failure.ends_with("(dataverse)"), "{failure}"),
                Ok(summary) => {
                    assert!(!world.dataverse.failing_bin, "the recycle bin unreadable, yet it ended well: {summary:?}");
                    assert!(summary.tally.failed() >= failing, "{failing} failing: {:?}", summary.tally);
                    found = Some(summary.tally);
                }
            }
            let now = text(&world.dataverse.record, integration::CATCH_UP_DELTA);
            assert_eq!(now, link, "a removal failed for now: the link stays");
            world.salesmanago.failing.clear();
            world.dataverse.failing_bin = false;
        }
    }
    // Clean, again: every changed contact SALESmanago takes holds its new name, and every
    // contact deleted is gone from SALESmanago (or opted out, as the record may say).
    world.now += 60_000;
    let last = world.run(BulkJob::ExportChanges, 0).expect("a clean run succeeds");
    let told = last.details.iter().any(|d| d.contains("no longer keeps the changes since the last catch-up"));
    assert_eq!(told, expired, "the link expired: every contact read again, said so ({:?})", last.details);
    // A clean run leaves the link to the changes after it, where Dynamics tracks changes: the
    // next run reads those (deletions too) rather than every contact modified since a time.
    let link = text(&world.dataverse.record, integration::CATCH_UP_DELTA);
    assert_eq!(link.is_some(), world.dataverse.tracking, "a clean run's link: {link:?}");
    for email in &removed {
        let held = world.salesmanago.by_email(email);
        assert!(held.is_none_or(|sm| sm.opted_out), "{email}: deleted in Dynamics, still in SALESmanago: {held:?}");
    }
    let found = found.unwrap_or(last.tally);
    // (Each listed, when the summary lists every contact not done.)
    let listed = if found.unlisted() == 0 { blank.as_slice() } else { &[] };
    for id in listed {
        let skipped = found.not_done.iter().any(|n| &n.id == id && n.skipped);
        assert!(skipped, "{id}: deleted without an e-mail, not skipped: {found:?}");
    }
    for id in &invalid {
        assert!(!found.not_done.iter().any(|n| &n.id == id), "{id}: deleted, nothing to remove, listed: {found:?}");
    }
    for id in &changed {
        let Some(row) = world.dataverse.contacts.get(id) else { continue }; // deleted since
        let email = text(row, "emailaddress1").unwrap_or_default().trim().to_ascii_lowercase();
        if !world.dataverse.valid_email(row) || world.salesmanago.rejects(row) || email.starts_with("shared") {
            continue;
        }
        let sm = world.salesmanago.by_email(&email).expect("in SALESmanago");
        assert!(sm.name.contains("Zmieniony"), "{id}: the change did not reach SALESmanago: {sm:?}");
    }
    assert!(
        world.dataverse.record.get(JobColumns::Export.checkpoint_column()).is_none_or(Value::is_null),
        "no checkpoint of its own"
    );
    world.check_synced();
}

/// After a run of "Export changes" with `failed` contacts failed for now: the watermark moved to
/// the run's start on Dataverse's clock (whatever the browser's) only when none did.
fn check_watermark(
    failed: u64,
    watermark: Option<String>,
    started: u64,
    last_start: u64,
    base: u64,
    uninterrupted: bool,
) {
    let at = watermark.as_deref().and_then(|w| w.parse::<u64>().ok());
    if failed == 0 {
        assert!(
            at.is_some_and(|w| w + CLOCK_ERROR_MS >= started && w <= last_start + 1000),
            "all went: the watermark moves to the run's start {started} on Dataverse's clock ({watermark:?})"
        );
    } else {
        // None was stored: the run pins the base it read from, the export's last run, which it
        // moves to its end (else the next run would start there and miss what failed). An
        // interrupted attempt that finished first may have pinned an earlier one.
        assert!(at.is_some_and(|w| w <= base), "{failed} failed: the watermark is pinned at {base} ({watermark:?})");
        assert!(
            !uninterrupted || at == Some(base),
            "{failed} failed: the watermark is pinned at {base} ({watermark:?})"
        );
    }
}

/// Pull consents, through SALESmanago's export job, after an export and changes on
/// SALESmanago's side: the counts add up; every value SALESmanago changed reaches Dynamics
/// (or its contact is counted failed); no consent is given in Dynamics that SALESmanago does
/// not hold; contacts SALESmanago has but the engine never sent are not in the file.
fn pull_consents(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let faults = (world.dataverse.faults, world.salesmanago.faults);
    (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
    world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    (world.dataverse.faults, world.salesmanago.faults) = faults;
    let changed = world.salesmanago.change_consents(&mut world.rng);
    world.salesmanago.change_some(&mut world.rng, &world.dataverse, 300, (START, 3_000_000));
    // Some contacts lost their agreement (an install from before it was kept), and Dynamics
    // refuses every change of some: among them contacts whose values already agree, whose
    // agreement alone is written, and refused.
    let ids: Vec<String> = world.dataverse.contacts.keys().cloned().collect();
    let mut unagreed = Vec::new();
    for id in ids {
        let row = world.dataverse.contacts.get_mut(&id).expect("listed");
        // "Do not allow SMS" as Dataverse reads a two-option column: never null.
        if row.get(contact::DO_NOT_SMS).is_none_or(Value::is_null) {
            row.insert(contact::DO_NOT_SMS.into(), false.into());
        }
        if world.rng.chance(200) {
            row.remove(contact::CONSENT_BASE);
            unagreed.push(id.clone());
        }
        if world.rng.chance(100) {
            world.dataverse.refuse.insert(id);
        } else if world.rng.chance(50) {
            world.dataverse.deadlocked.insert(id);
        }
    }
    world.now += 3_600_000;
    // In half the worlds the file's server is busy at first, or asks to wait.
    if world.rng.below(2) == 0 {
        world.salesmanago.file_hiccups = vec![[500, 503, 408, 429][world.rng.below(4) as usize]];
    }
    let before = world.dataverse.contacts.clone();
    world.dataverse.refused_writes.clear();
    let interruptions = world.rng.below(2) as usize;
    let (summary, once) = match world.run(BulkJob::PullConsents, interruptions) {
        Ok(summary) => (summary, interruptions == 0 && world.tries == 1),
        // SALESmanago or Dataverse kept failing for now, three times: the user tries later.
        Err(failure) if failure.ends_with("(throttled)") || failure.ends_with("(server)") => {
            (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
            world.now += 600_000;
            (world.run(BulkJob::PullConsents, 0).expect("a clean pull succeeds"), false)
        }
        Err(failure) => panic!("pull consents failed: {failure}"),
    };
    let t = &summary.tally;
    assert!(t.adds_up() && t.done <= t.total && t.same <= t.total, "{t:?}");
    // Dynamics' first pages are read while the file downloads, none while SALESmanago prepares
    // it (a page read then would be compared with values minutes old).
    let reads = world.file_reads;
    assert!(reads.preparing == 0 && reads.downloading > 0, "contact reads around the file: {reads:?}");
    // A contact Dynamics refused was written nothing.
    for id in &world.dataverse.refuse {
        assert_eq!(world.dataverse.contacts.get(id), before.get(id), "{id}: refused, yet changed");
    }
    // In one run, the contacts said updated are exactly those whose values changed (a refused
    // contact counted the same, whose agreement alone was refused, takes back its own count).
    if once {
        let values = [contact::DO_NOT_BULK_EMAIL, contact::DO_NOT_SMS, "new_consent_marketing"];
        let updated = world
            .dataverse
            .contacts
            .iter()
            .filter(|(id, row)| values.iter().any(|c| row.get(c) != before.get(*id).and_then(|was| was.get(c))))
            .count();
        assert_eq!(t.done, updated as u64, "{t:?}");
        // The rest of the split, from the world as the job read it (the contacts with an
        // e-mail): a contact is found in the file by its SALESmanago id, else by its e-mail; one
        // with neither is missing, one whose e-mail SALESmanago cannot take is skipped; those
        // whose write Dynamics refused failed.
        let in_file = |sm: Option<&salesmanago::SmRecord>| sm.is_some_and(|sm| sm.tagged);
        let read: Vec<&Map> = before.values().filter(|row| text(row, "emailaddress1").is_some()).collect();
        assert_eq!(t.total, read.len() as u64, "every contact with an e-mail, once: {t:?}");
        let (mut missing, mut skipped) = (0, 0);
        for row in read {
            if text(row, contact::SALESMANAGO_ID).is_some_and(|id| in_file(world.salesmanago.by_id(&id))) {
                continue;
            }
            match normalize::email(&text(row, "emailaddress1").unwrap_or_default()) {
                Ok(address) if !in_file(world.salesmanago.by_email(&address)) => missing += 1,
                Ok(_) => {}
                Err(_) => skipped += 1,
            }
        }
        let split = (t.missing, t.skipped(), t.outside);
        assert_eq!(split, (missing, skipped, 0), "(missing, skipped, outside) of {t:?}");
        world.check_failed_are_refused(t);
    }
    let failed: Vec<&str> = t.not_done.iter().map(|n| n.id.as_str()).collect();
    let flag = |row: &Map, column: &str| row.get(column).and_then(Value::as_bool);
    for email in &changed {
        let sm = world.salesmanago.by_email(email).expect("still in SALESmanago");
        let Some((id, row)) = world.dataverse.matching(sm) else { continue };
        // Without an agreement, which side changed is not known: an opt-out in either stands.
        if failed.contains(&id.as_str()) || unagreed.contains(id) {
            continue;
        }
        assert_eq!(flag(row, contact::DO_NOT_BULK_EMAIL), Some(sm.opted_out), "{id}: newsletter {sm:?} {row:?}");
        assert_eq!(flag(row, contact::DO_NOT_SMS).unwrap_or(false), sm.phone_opted_out, "{id}: SMS {sm:?} {row:?}");
        assert_eq!(flag(row, "new_consent_marketing"), sm.consents.get("MARKETING").copied(), "{id}: {sm:?} {row:?}");
    }
    for (id, row) in &world.dataverse.contacts {
        if flag(row, "new_consent_marketing") == Some(true) {
            let sm = world.in_salesmanago(row).expect("given in Dynamics only from SALESmanago");
            assert_eq!(sm.consents.get("MARKETING"), Some(&true), "{id}: given that SALESmanago does not hold");
        }
    }
    for sm in world.salesmanago.changed().filter(|sm| !sm.tagged) {
        if let Some((id, row)) = world.dataverse.matching(sm) {
            let was = before.get(id).and_then(|row| flag(row, contact::DO_NOT_BULK_EMAIL));
            assert_eq!(flag(row, contact::DO_NOT_BULK_EMAIL), was, "{id}: read from a contact not in the file");
        }
    }
}

/// SALESmanago's export file is never ready: Pull consents asks for it 2 s after starting the
/// export, then each time 1.5 times later than the time before, at most 30 s apart, and gives up
/// after 30 minutes, saying so; a file that comes broken fails the job and changes nothing; once
/// the file comes whole, a later run goes through.
fn file_never_ready(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
    world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
    world.now += 3_600_000;
    world.salesmanago.never_ready = true;
    let failure = world.run(BulkJob::PullConsents, 0).expect_err("a file never ready fails the job");
    assert!(failure.ends_with("(fileNotReady)"), "{failure}");
    assert!(failure.contains("minutes: 30"), "it says how long it waited: {failure}");
    let asked = world.salesmanago.status_asked.values().next().expect("the status was asked").clone();
    // From the export's start: each wait on the job's clock, and the latency (5 ms to about
    // 3.2 s) of the answer it waited from.
    let mut wait = 2_000;
    for (i, gap) in asked.windows(2).map(|w| w[1] - w[0]).enumerate() {
        assert!(
            (wait..wait + 3_200).contains(&gap),
            "status poll {} came {gap} ms after the step before, not {wait} ms",
            i + 1
        );
        wait = (wait * 3 / 2).min(30_000);
    }
    // Each "preparing the file" progress says how long it has waited, to the second.
    let started = asked[0];
    for &(at, seconds) in &world.preparing {
        let waited = (at - started) / 1000;
        assert!(seconds <= waited && waited <= seconds + 4, "shown at {waited} s as waiting {seconds} s");
    }
    assert!(world.preparing.len() > 40, "the wait is shown as it goes: {:?}", world.preparing.len());
    let waited = asked.last().expect("asked") - asked.first().expect("asked");
    // Given up at the first answer 30 minutes after the export started: at most one wait (30 s)
    // and its latency later.
    let limit = 30 * 60_000;
    assert!((limit - 3_200..limit + 35_000).contains(&waited), "gave up after {waited} ms, not 30 minutes");
    world.salesmanago.never_ready = false;
    // A file that comes broken (an error page, or cut short): the job says so and writes nothing.
    world.now += 600_000;
    world.salesmanago.broken_files = Some(world.rng.below(2) == 0);
    let contacts = world.dataverse.contacts.clone();
    let failure = world.run(BulkJob::PullConsents, 0).expect_err("a broken file fails the job");
    assert!(failure.ends_with("(fileUnreadable)"), "{failure}");
    assert!(world.dataverse.contacts == contacts, "a broken file changed contacts");
    world.salesmanago.broken_files = None;
    world.now += 600_000;
    world.run(BulkJob::PullConsents, 0).expect("once the file comes, the pull goes through");
}

/// SALESmanago refuses every call as not authenticated (the API secret was changed there):
/// each job stops at its first answer, saying why, and marks no contact failed.
fn wrong_credentials(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    world.salesmanago.unauthenticated = true;
    for job in [BulkJob::ExportAll, BulkJob::ExportChanges, BulkJob::PullConsents, BulkJob::PullChanges] {
        let before = world.dataverse.contacts.clone();
        world.now += 600_000;
        let failure = world.run(job, 0).expect_err("refused as not authenticated");
        assert!(failure.ends_with("(auth)"), "{job:?}: {failure}");
        assert!(world.dataverse.contacts == before, "{job:?} changed contacts");
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        // `npm test` runs the 500 seeds in a release build; a debug build runs 50 of them.
        // `SIM_SEEDS=n` runs seeds 1 to n; a list of seeds and ranges (`1-20,25`) runs those.
        Err(_) => match std::env::var("SIM_SEEDS") {
            Ok(list) if list.contains([',', '-']) => list.split(',').flat_map(seed_range).collect(),
            Ok(n) => (1..=n.trim().parse().expect("SIM_SEEDS is a number, or seeds and ranges: 1-20,25")).collect(),
            Err(_) => (1..=if cfg!(debug_assertions) { 50 } else { 500 }).collect(),
        },
    }
}

/// The seeds of one item of `SIM_SEEDS`'s list: `25`, or `1-20`.
fn seed_range(item: &str) -> std::ops::RangeInclusive<u64> {
    let number = |n: &str| n.trim().parse::<u64>().expect("SIM_SEEDS: seeds and ranges, as in 1-20,25");
    match item.split_once('-') {
        Some((from, to)) => number(from)..=number(to),
        None => number(item)..=number(item),
    }
}

/// Set when a scenario failed. With `SIM_FAIL_FAST` set (as `npm run mutants` does: one failure
/// is all it needs to know), the other scenarios stop at their next seed, saying so.
static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `check` for every seed, saying which seed failed.
fn for_each_seed(name: &str, size: impl Fn(u64) -> usize, check: impl Fn(u64, usize) + std::panic::RefUnwindSafe) {
    let fail_fast = std::env::var_os("SIM_FAIL_FAST").is_some();
    for seed in seeds() {
        if fail_fast && FAILED.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{name}: stopped before seed {seed}, as another scenario failed (SIM_FAIL_FAST)");
            return;
        }
        let contacts = size(seed);
        if std::panic::catch_unwind(|| check(seed, contacts)).is_err() {
            FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("{name} failed for seed {seed} ({contacts} contacts): replay with SIM_SEED={seed} cargo test --test simulation {name} -- --nocapture");
        }
    }
}

/// The ticket an action is answered with, if it is a request.
fn action_ticket(action: &Action) -> Option<Ticket> {
    match action {
        Action::Read { ticket, .. }
        | Action::Write { ticket, .. }
        | Action::Get { ticket, .. }
        | Action::Patch { ticket, .. }
        | Action::Delete { ticket, .. }
        | Action::Call { ticket, .. }
        | Action::Download { ticket, .. } => Some(*ticket),
        Action::Form { .. } | Action::Progress(_) | Action::Finished(_) => None,
    }
}

/// Most seeds are small; every 25th runs several thousand contacts (an export saves its
/// checkpoint every 4,000), every 100th 10,000.
fn size(seed: u64) -> usize {
    match seed {
        s if s % 100 == 0 => 10_000,
        s if s % 25 == 0 => 4_000 + (s as usize * 7919) % 3000,
        s => (s as usize * 7919) % 1300,
    }
}

impl World {
    fn start_contact(&mut self, task: Task) -> Job {
        let settings = self.settings();
        Job::contact(ContactStart {
            task,
            lang: Lang::En,
            settings,
            consents: vec!["new_consent_marketing".into()],
            now_ms: self.now,
            seed: self.rng.next(),
        })
    }

    /// The SALESmanago contact of `row`, as the commands find it: by e-mail.
    fn in_salesmanago(&self, row: &Map) -> Option<&salesmanago::SmRecord> {
        let email = text(row, "emailaddress1")?.trim().to_ascii_lowercase();
        self.salesmanago.by_email(&email)
    }
}

/// A plug-in on the integration record refuses one write of a job's lease: the one that takes
/// it, one renewal, or the last (the summary, the lease given up). The job stops with Dynamics'
/// reason or ends with its work done, and loses nothing: a later run, once the lease may be
/// taken, finishes the work, and every count still says what each contact holds.
fn refused_lease_write(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    let job = [BulkJob::ExportAll, BulkJob::PullConsents, BulkJob::PullChanges][(seed % 3) as usize];
    if job != BulkJob::ExportAll {
        let faults = (world.dataverse.faults, world.salesmanago.faults);
        (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
        world.run(BulkJob::ExportAll, 0).expect("a clean export succeeds");
        (world.dataverse.faults, world.salesmanago.faults) = faults;
        world.salesmanago.change_consents(&mut world.rng);
        world.salesmanago.change_some(&mut world.rng, &world.dataverse, 300, (START, 3_000_000));
        world.now += 3_600_000;
    }
    let refused = match world.rng.below(3) {
        0 => LeaseWrite::Acquire,
        1 => LeaseWrite::Renew(1 + world.rng.below(2) as u32),
        _ => LeaseWrite::Release,
    };
    world.dataverse.refuse_lease = Some(refused);
    // A renewal comes after its heartbeat's 30 s, or with a checkpoint every 4,000 contacts.
    if let LeaseWrite::Renew(_) = refused {
        world.slow_ms = 5000 + world.rng.below(5000);
    }
    let before = world.dataverse.contacts.clone();
    let sm_writes = world.salesmanago.writes;
    world.another_browser();
    let started = world.now;
    let mut running = world.start(job);
    let first = world.drive_raw(&mut running, None, &mut Vec::new()).expect("driven to the end");
    // A job renews its lease every 30 s while it runs: one that ran long enough met the refusal.
    if let (LeaseWrite::Renew(n), Some(_)) = (refused, &world.dataverse.refuse_lease) {
        let ran = world.now - started;
        assert!(
            // (Each renewal comes 30 s after the last was answered, itself up to 30 s slow.)
            ran < (u64::from(n) + 1) * HEARTBEAT_MS + u64::from(n) * 30_000,
            "{job:?} ran {ran} ms and renewed its lease fewer than {n} times"
        );
    }
    let say = |message: &Message| salesmanago_dynamics::core::i18n::text(message, Lang::En);
    if world.dataverse.refuse_lease.take().is_none() {
        match (refused, &first) {
            // The work is done and told, with the record's refusal beside the counts; the lease
            // stays this run's until it is stale.
            (LeaseWrite::Release, Ok(summary)) => {
                assert!(summary.tally.adds_up(), "{:?}", summary.tally);
                let told = summary.details.iter().any(|d| d.contains("did not take this summary"));
                assert!(told, "the refusal is told beside the summary: {:?}", summary.details);
                assert!(world.holder(job).is_some_and(|h| !h.released), "the lease was not given up");
            }
            // Refused before the lease was taken: nothing changed anywhere.
            (LeaseWrite::Acquire, Err(failure)) => {
                assert!(say(&failure.message).contains("A plug-in on the integration record refused"), "{failure:?}");
                assert_eq!(world.dataverse.contacts, before, "refused its lease, yet changed contacts");
                assert_eq!(world.salesmanago.writes, sm_writes, "refused its lease, yet wrote to SALESmanago");
            }
            // Stopped with Dynamics' reason.
            (LeaseWrite::Renew(_), Err(failure)) => {
                assert!(say(&failure.message).contains("A plug-in on the integration record refused"), "{failure:?}");
            }
            (refused, other) => panic!("{job:?} with its {refused:?} refused ended as {other:?}"),
        }
    }
    // Nothing is lost: once the lease may be taken, a run without faults finishes the work.
    world.slow_ms = 0;
    world.now += 1000;
    world.refused_while_held(job);
    (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
    world.dataverse.refused_writes.clear();
    let last = world.run(job, 0).unwrap_or_else(|f| panic!("{job:?} after a refused lease write: {f}"));
    let t = &last.tally;
    assert!(t.adds_up(), "{t:?}");
    assert!(world.holder(job).is_some_and(|h| h.released), "the last run gave its lease up");
    if job == BulkJob::ExportAll {
        // The last run resumed from the checkpoint a refused renewal or summary left, or started
        // over: each of its counts is the contacts' statuses.
        assert_eq!(t.total, world.dataverse.contacts.len() as u64, "every contact counted once: {t:?}");
        assert_eq!((t.done, t.skipped(), t.failed()), world.statuses(|_| true), "{t:?}");
        world.check_synced();
    } else {
        world.check_failed_are_refused(t);
    }
}

/// Someone else writes the integration record between each read and write of a job's lease,
/// some number of times in a row. The job reads it again after each refusal (`412`) and
/// bears `MAX_CONFLICTS` of them in a row; the next stops it, saying the record is busy,
/// having changed nothing. In half the worlds Dataverse first asks the job to wait longer than
/// a heartbeat before it reads the record: a lease not yet taken is not renewed meanwhile.
fn busy_record(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    (world.dataverse.faults, world.salesmanago.faults) = (Faults::default(), Faults::default());
    let busy = world.rng.below(2 * u64::from(MAX_CONFLICTS) + 2) as u32;
    world.dataverse.meddled = busy;
    if world.rng.below(2) == 0 {
        world.dataverse.throttle_record = Some(HEARTBEAT_MS / 1000 + 1 + world.rng.below(30));
    }
    let before = world.dataverse.contacts.clone();
    let result = world.run(BulkJob::ExportAll, 0);
    let refused = busy - world.dataverse.meddled;
    if busy > MAX_CONFLICTS {
        let failure = result.expect_err("a record busy past the bound stops the job");
        assert!(failure.contains("recordBusy"), "{failure}");
        assert_eq!(refused, MAX_CONFLICTS + 1, "{MAX_CONFLICTS} refusals borne, the next one stops it");
        assert_eq!(world.dataverse.contacts, before, "stopped before its lease, yet changed contacts");
        assert_eq!(world.salesmanago.writes, 0, "stopped before its lease, yet wrote to SALESmanago");
        assert!(world.holder(BulkJob::ExportAll).is_none(), "no lease was taken");
    } else {
        let summary = result.unwrap_or_else(|f| panic!("{busy} refusals in a row stopped the job: {f}"));
        assert_eq!(refused, busy);
        assert!(summary.tally.adds_up(), "{:?}", summary.tally);
        assert!(world.holder(BulkJob::ExportAll).is_some_and(|h| h.released), "the lease was given up");
    }
}

/// A tab frozen mid-export (a laptop asleep) wakes while another run that took its lease over
/// is under way: it stops at its next write of the record and writes nothing there, and the
/// other run goes on to its end. When it wakes after the other run ended, it may only run
/// again under a lease of its own.
fn frozen_tab(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    // Two browsers, each with a clock of its own.
    world.another_browser();
    let frozen_clock = world.skew;
    let mut frozen = world.start(BulkJob::ExportAll);
    let mut on_its_way = Vec::new();
    let stop = 1 + world.rng.below(contacts as u64 / 8 + 40) as usize;
    if world.drive_with(&mut frozen, Some(stop), &mut on_its_way).is_some() {
        return; // it finished before it froze
    }
    world.now += STALE_MS + CLOCK_ERROR_MS + world.rng.below(STALE_MS);
    let its_own = world.holder(BulkJob::ExportAll).map(|h| h.token);
    let finished = world.holder(BulkJob::ExportAll).is_some_and(|h| h.released);
    world.refused_while_held(BulkJob::ExportAll);
    // The other run: part of the way, or to its end.
    world.another_browser();
    let other_clock = world.skew;
    let mut other = world.start(BulkJob::ExportAll);
    let mut others_way = Vec::new();
    let part = world.rng.chance(500).then(|| 1 + world.rng.below(contacts as u64 / 8 + 40) as usize);
    let ended = world.drive_with(&mut other, part, &mut others_way);
    let second = world.holder(BulkJob::ExportAll);
    let record = world.dataverse.record.clone();
    world.skew = frozen_clock;
    let woke = world.drive_with(&mut frozen, None, &mut on_its_way).expect("driven to the end");
    let frozen_ran = woke.is_ok();
    match woke {
        Err(failure) => {
            // Taken over; or frozen while taking the lease, it finds the other run alive, or
            // ended since (it does not run again).
            let stopped =
                ["jobTakenOver", "jobRunning", "jobJustRan", "(dataverse)"].iter().any(|k| failure.contains(k));
            assert!(stopped, "{failure}");
            assert_eq!(world.dataverse.record, record, "the run taken over wrote to the record");
        }
        Ok(summary) => {
            assert!(summary.tally.adds_up());
            // It had given its lease up before it froze (only the answer was late), or no
            // other run held the lease when it woke (the other had not taken it yet, or had
            // ended): it ran under a lease of its own, and gave it up.
            let last = world.holder(BulkJob::ExportAll).expect("a lease");
            let free = second.as_ref().is_none_or(|s| s.released || Some(&s.token) == its_own.as_ref());
            assert!(finished || (free && last.released), "it finished without its own lease: {last:?} ({second:?})");
        }
    }
    if ended.is_none() {
        world.skew = other_clock;
        match world.drive_with(&mut other, None, &mut others_way).expect("driven to the end") {
            Ok(summary) => assert!(summary.tally.adds_up()),
            // It had not taken the lease yet when the frozen tab woke and ran to its end: that
            // run is the one, this start is dropped.
            Err(failure) if failure.contains("jobJustRan") => {
                assert!(frozen_ran, "dropped for a run that did not end: {failure}");
                assert!(second.is_none_or(|s| s.released || Some(&s.token) == its_own.as_ref()), "{failure}");
            }
            Err(failure) => panic!("the run that took the lease over failed: {failure}"),
        }
    }
    world.check_synced();
    world.salesmanago.check_unique();
}

/// Two clicks at once, the first quick: the second has read the record (the lease free) when
/// the first takes the lease, runs to its end and gives the lease up; the second's write is
/// refused (`412`), it reads the lease again and does not run a second time: it says who ran
/// the job and how far, and changes nothing.
fn overtaken_start(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    // Dynamics answers at once and well: the second's first read is made before the first run.
    world.dataverse.faults = Faults::default();
    let job = [BulkJob::ExportAll, BulkJob::PullConsents, BulkJob::PullChanges][(seed % 3) as usize];
    world.another_browser();
    let late_clock = world.skew;
    let mut late = world.start(job);
    let mut its_way = Vec::new();
    // Up to its read of the record (the reads of contacts it makes meanwhile go on).
    let reads = world.dataverse.record_reads;
    while world.dataverse.record_reads == reads {
        assert!(world.drive_with(&mut late, Some(1), &mut its_way).is_none(), "it ended without reading the record");
    }
    world.another_browser();
    let mut quick = world.start(job);
    world.drive(&mut quick, None).expect("driven to the end").ok();
    let holder = world.holder(job).expect("the first run's lease");
    assert!(holder.released, "the first run gave its lease up: {holder:?}");
    let (version, batches, writes) = (world.dataverse.version, world.dataverse.batches, world.salesmanago.writes);
    let before = world.dataverse.contacts.clone();
    world.skew = late_clock;
    match world.drive_with(&mut late, None, &mut its_way).expect("driven to the end") {
        Err(failure) if failure.contains("jobJustRan") => {
            let told = failure.contains("Anna Nowak") && failure.contains(&format!("done: {}", holder.done));
            assert!(told, "{failure}");
        }
        other => panic!("{job:?} ran again after a run that began after it: {other:?}"),
    }
    assert_eq!(
        (world.dataverse.version, world.dataverse.batches, world.salesmanago.writes),
        (version, batches, writes),
        "an overtaken start changes nothing"
    );
    assert_eq!(world.dataverse.contacts, before, "an overtaken start changes no contact");
}

#[test]
fn a_start_overtaken_by_a_whole_run_does_not_run_again() {
    for_each_seed("overtaken_start", |seed| size(seed) / 4, overtaken_start);
}

#[test]
fn a_frozen_run_taken_over_stops_and_writes_nothing_to_the_record() {
    for_each_seed("a_frozen_run", |seed| size(seed) / 4, frozen_tab);
}

#[test]
fn a_record_busy_past_the_bound_stops_the_job_and_changes_nothing() {
    for_each_seed("busy_record", |seed| size(seed) / 8, busy_record);
}

#[test]
fn a_refused_lease_write_stops_the_job_or_ends_it_and_loses_nothing() {
    for_each_seed("refused_lease_write", |seed| size(seed) / 4, refused_lease_write);
}

#[test]
fn export_all_adds_up_and_syncs_only_what_salesmanago_holds() {
    for_each_seed("export_all", size, export_all);
}

#[test]
fn export_changes_sends_what_changed_and_moves_its_watermark_only_when_all_went() {
    for_each_seed("export_changes", |seed| size(seed) / 2, export_changes);
}

#[test]
fn pull_changes_never_passes_a_change_it_did_not_apply() {
    for_each_seed("pull_changes", |seed| size(seed) / 2, pull_changes);
}

#[test]
fn pull_consents_gives_up_on_a_file_that_never_comes_or_comes_broken() {
    for_each_seed("file_never_ready", |seed| size(seed) / 20 + 5, file_never_ready);
}

#[test]
fn wrong_credentials_stop_every_job_at_once_and_change_no_contact() {
    for_each_seed("wrong_credentials", |seed| size(seed) / 10 + 20, wrong_credentials);
}

#[test]
fn pull_consents_adds_up_and_keeps_every_opt_out() {
    for_each_seed("pull_consents", |seed| size(seed) / 2, pull_consents);
}
