//! The lease's side of the runner: every write of the integration record under the job's
//! lease (read for its ETag and lease, then `PATCH` with `If-Match`), its heartbeat, and the
//! verdicts on Dataverse's clock ([`super::super::lease`]).

use crate::core::command::Command;
use crate::core::dataverse::error::DvError;
use crate::core::dataverse::schema::{integration, Job as JobColumns};
use crate::core::i18n::Message;
use crate::core::json::{Map, Value};
use crate::prelude::*;

use super::super::lease::{Holder, Lease, Purpose, User, Verdict, HEARTBEAT_MS, MAX_CONFLICTS, STALE_MS};
use super::super::{Action, Ticket};
use super::{Error, Output, Pending, Request, Runner};

/// A guarded write of the integration record: read it (ETag and lease), then `PATCH` with
/// `If-Match` (see [`super::super::lease`]).
#[derive(Debug, Clone)]
pub(in crate::core::job) struct Guarded {
    pub(super) columns: Map,
    pub(super) purpose: Purpose,
    /// The ETag to write with: of this run's last write, or as read.
    pub(super) etag: Option<String>,
    /// Writes refused with `412` so far.
    conflicts: u32,
}

impl Guarded {
    pub(super) fn new(columns: Map, purpose: Purpose, etag: Option<String>) -> Guarded {
        Guarded { columns, purpose, etag, conflicts: 0 }
    }
}

/// Why a job does not start: another run of it is alive (`now_ms` on Dataverse's clock).
pub(super) fn running(command: Command, holder: &Holder, now_ms: u64) -> Error {
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

impl Runner {
    /// Takes the lease of `job` for `user`: a guarded read and write of the record. The record
    /// is read first, whatever the host read: its answer tells Dataverse's time, by which the
    /// lease there is judged and this run's is written.
    pub(in crate::core::job) fn acquire(&mut self, job: JobColumns, user: User, now_ms: u64) -> Ticket {
        self.lease = Some(Lease::new(job, self.rng.key(), user, now_ms));
        self.issue(Request::Record(Guarded::new(Map::new(), Purpose::Acquire, None)))
    }

    /// Writes `columns` to the record under the lease; on `release`, gives the lease up.
    /// With the ETag of this run's last write, it writes at once; else it reads first.
    pub(in crate::core::job) fn record(&mut self, columns: Map, release: bool) -> Ticket {
        let purpose = if release { Purpose::Release } else { Purpose::Renew };
        let known = self.known_etag.clone();
        self.issue(Request::Record(Guarded::new(columns, purpose, known)))
    }

    /// Whether the job may act: it has no lease, or holds it.
    pub(in crate::core::job) fn leased(&self) -> bool {
        self.lease.as_ref().is_none_or(|l| l.held)
    }

    /// Whether `request` must wait for the lease: while it is being taken, a job reads, but
    /// changes nothing.
    pub(super) fn waits_for_lease(&self, request: &Request) -> bool {
        self.lease.as_ref().is_some_and(|l| !l.held) && request.changes()
    }

    /// When the lease is next to be renewed: while it is held, no failure is being told, and
    /// no write of the record is under way (each write renews it).
    pub(super) fn heartbeat_at(&self) -> Option<u64> {
        let lease = self.lease.as_ref().filter(|l| l.held && self.failing.is_none())?;
        let writing = self.pending.iter().any(|(_, p)| matches!(p.request, Request::Record(_)));
        (!writing).then_some(lease.renewed_ms + HEARTBEAT_MS)
    }

    pub(super) fn heartbeat_due(&self, now_ms: u64) -> bool {
        self.heartbeat_at().is_some_and(|at| at <= now_ms)
    }

    /// The next step of the guarded write `ticket` after `output`: `None` while it goes on (a
    /// write after the read, a read again after a conflict), else its result.
    pub(super) fn guarded(&mut self, ticket: Ticket, output: Output, now_ms: u64) -> Option<Result<Output, Error>> {
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
                Ok(Verdict::JustRan(holder)) => {
                    let message =
                        Message::JobJustRan { command, user: holder.user.name, done: holder.done, total: holder.total };
                    return Some(Err(Error::Refused(message, "jobJustRan")));
                }
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
        // The write goes next: the changes the lease gates wait for it.
        self.first.push_front(ticket);
        None
    }

    /// The action of the guarded write `guarded`: its `PATCH` with `If-Match` and this run's
    /// lease when its ETag is known, else the read of the record first.
    pub(super) fn record_action(&mut self, ticket: Ticket, guarded: &Guarded, now_ms: u64) -> Action {
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
}
