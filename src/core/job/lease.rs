//! One job of a kind at a time, across tabs and users: a lease in the job's lease column on the
//! integration record.
//!
//! Every write a leased job makes to the record is guarded: a `PATCH` with `If-Match`, so that
//! two writers cannot both win. The first is made with the ETag of the record as the host read
//! it at the start (a lease alive there refuses the start at once); each later one with the
//! ETag its previous write answered (`Prefer: return=representation`), which proves the lease
//! is still this run's. A `412` means the record changed since: read it (ETag and lease), check
//! the lease, and write again. The lease carries a heartbeat, renewed at least every
//! [`HEARTBEAT_MS`] with the job's progress; a lease whose heartbeat is older than
//! [`STALE_MS`] (a closed tab) may be taken over, and the job resumes from its checkpoint.
//! While the lease is being taken the job already reads, but changes nothing.
//!
//! A start that finds, after a `412`, that another run took the lease since its first read and
//! has already ended (two clicks at once, the first quick) does not run again: that run began
//! after this start and did what it asked for.
//!
//! Every time in a lease (its start, its heartbeat) and every "now" it is judged at is
//! Dataverse's clock as each browser learns it ([`crate::core::clock`]), never the browser's own:
//! a tab whose clock runs ten minutes fast would otherwise find a live run stale, and one ten
//! minutes slow would wait for a dead one.

use crate::core::dataverse::schema::Job as JobColumns;
use crate::core::json::{self, Map, Value};
use crate::object;
use crate::prelude::*;

/// How often a running job renews its lease, at the longest.
pub const HEARTBEAT_MS: u64 = 30_000;

/// How long after its last heartbeat a lease may be taken over. Longer than a heartbeat and
/// its retries, so that a live job is never taken over for being slow.
pub const STALE_MS: u64 = 180_000;

/// Conflicting writes (`412`) a guarded write tolerates before it gives up.
pub const MAX_CONFLICTS: u32 = 10;

/// Who runs a job, as the host knows the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user's id (`systemuserid`).
    pub id: String,
    /// The user's name, for others to read.
    pub name: String,
}

/// A lease as its column holds it (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Names the run that holds it (random).
    pub token: String,
    /// Who started the run.
    pub user: User,
    /// When the run started, Unix ms.
    pub since_ms: u64,
    /// The run's last sign of life, Unix ms.
    pub heartbeat_ms: u64,
    /// Contacts handled so far.
    pub done: u64,
    /// Contacts in all, when known.
    pub total: Option<u64>,
    /// The run has ended and given the lease up.
    pub released: bool,
}

impl Holder {
    /// The column's text.
    pub fn to_text(&self) -> String {
        let mut value = object! {
            "token": self.token, "userId": self.user.id, "user": self.user.name,
            "since": self.since_ms, "heartbeat": self.heartbeat_ms, "done": self.done, "total": self.total,
        };
        if let (true, Value::Object(map)) = (self.released, &mut value) {
            map.insert("released".into(), Value::Bool(true));
        }
        value.to_string()
    }

    /// The holder in a column's text; `None` for an empty column or one that cannot be read
    /// (a lease nobody can check is no lease).
    pub fn from_text(text: &str) -> Option<Holder> {
        let value = json::from_str(text).ok()?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        Some(Holder {
            token: text("token").filter(|t| !t.is_empty())?,
            user: User { id: text("userId").unwrap_or_default(), name: text("user").unwrap_or_default() },
            since_ms: number("since")?,
            heartbeat_ms: number("heartbeat")?,
            done: number("done").unwrap_or(0),
            total: number("total"),
            released: value.get("released").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Whether the run stopped showing signs of life.
    pub fn stale(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.heartbeat_ms) >= STALE_MS
    }
}

/// What a guarded write is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Take the lease: free, stale, or (after a lost answer) already this run's.
    Acquire,
    /// Write while holding it, and renew it.
    Renew,
    /// Write a last time and give it up.
    Release,
}

/// What the record says about a guarded write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Write, with `If-Match` of this ETag.
    Write {
        /// The record's ETag.
        etag: String,
    },
    /// Another run holds the lease and is alive.
    Running(Holder),
    /// This run lost the lease to another (it was taken over while this one was silent).
    TakenOver(Option<Holder>),
    /// Nothing to write: this run's release was made already (only its answer was lost).
    Released,
    /// Another run took the lease after this start first read the record, and has ended.
    JustRan(Holder),
}

/// This run's lease of a job.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    /// The job's lease column.
    pub(super) column: &'static str,
    token: String,
    user: User,
    /// When it was first written (Dataverse's clock).
    since_ms: Option<u64>,
    /// Whether the lease is this run's (acquired and not yet released).
    pub(super) held: bool,
    /// When it was last written.
    pub(super) renewed_ms: u64,
    /// The token of the lease the acquire's first read found (`Some(None)`: none).
    found: Option<Option<String>>,
}

impl Lease {
    pub(super) fn new(job: JobColumns, token: String, user: User, now_ms: u64) -> Lease {
        Lease { column: job.lease_column(), token, user, since_ms: None, held: false, renewed_ms: now_ms, found: None }
    }

    /// Judges the record as read (its Web API JSON) for a write of `purpose`, at `now_ms` on
    /// Dataverse's clock. The acquire's first read is remembered: a lease that differs from it
    /// later was taken since.
    pub(super) fn judge(&mut self, record: &Map, purpose: Purpose, now_ms: u64) -> Result<Verdict, String> {
        let etag = record
            .get("@odata.etag")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .ok_or("the integration record came without its ETag")?
            .to_owned();
        let holder = record.get(self.column).and_then(Value::as_str).and_then(Holder::from_text);
        let ours = holder.as_ref().is_some_and(|h| h.token == self.token);
        let released = holder.as_ref().is_some_and(|h| h.released);
        Ok(match purpose {
            Purpose::Acquire => {
                let token = holder.as_ref().map(|h| h.token.clone());
                let taken_since = *self.found.get_or_insert_with(|| token.clone()) != token;
                match holder {
                    Some(other) if !ours && !other.released && !other.stale(now_ms) => Verdict::Running(other),
                    Some(other) if !ours && other.released && taken_since => Verdict::JustRan(other),
                    _ => Verdict::Write { etag },
                }
            }
            Purpose::Release if ours && released => Verdict::Released,
            Purpose::Renew | Purpose::Release if ours && !released => Verdict::Write { etag },
            Purpose::Renew | Purpose::Release => Verdict::TakenOver(holder),
        })
    }

    /// The lease column's new value for a write of `purpose` at `now_ms` on Dataverse's clock:
    /// this run with its progress, marked released on release (so that a release whose answer
    /// was lost is known as made).
    pub(super) fn value(&mut self, purpose: Purpose, done: u64, total: Option<u64>, now_ms: u64) -> Value {
        Holder {
            token: self.token.clone(),
            user: self.user.clone(),
            since_ms: *self.since_ms.get_or_insert(now_ms),
            heartbeat_ms: now_ms,
            done,
            total,
            released: purpose == Purpose::Release,
        }
        .to_text()
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::ToJson;

    const NOW: u64 = 1_800_000_000_000;

    fn lease() -> Lease {
        Lease::new(JobColumns::Export, "mine".into(), User { id: "u1".into(), name: "Anna".into() }, NOW)
    }

    fn record(holder: Option<&Holder>) -> Map {
        let mut record = Map::new();
        record.insert("@odata.etag".into(), "W/\"7\"".into());
        record.insert(JobColumns::Export.lease_column().into(), holder.map(Holder::to_text).to_json());
        record
    }

    fn other(heartbeat_ms: u64) -> Holder {
        Holder {
            token: "theirs".into(),
            user: User { id: "u2".into(), name: "Piotr".into() },
            since_ms: heartbeat_ms - 60_000,
            heartbeat_ms,
            done: 4000,
            total: Some(8000),
            released: false,
        }
    }

    #[test]
    fn a_holder_reads_back_as_written() {
        let holder = other(NOW);
        assert_eq!(Holder::from_text(&holder.to_text()), Some(holder));
        for junk in ["", "null", "{}", "[1]", "{\"token\":\"\"}", "not json"] {
            assert_eq!(Holder::from_text(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_live_run_of_another_keeps_the_job() {
        let live = other(NOW - STALE_MS + 1);
        assert_eq!(lease().judge(&record(Some(&live)), Purpose::Acquire, NOW), Ok(Verdict::Running(live)));
    }

    #[test]
    fn a_free_or_stale_lease_is_taken() {
        let verdict = lease().judge(&record(None), Purpose::Acquire, NOW).unwrap();
        assert!(matches!(verdict, Verdict::Write { ref etag, .. } if etag == "W/\"7\""));
        let stale = other(NOW - STALE_MS);
        let verdict = lease().judge(&record(Some(&stale)), Purpose::Acquire, NOW).unwrap();
        assert!(matches!(verdict, Verdict::Write { .. }));
    }

    #[test]
    fn a_run_writes_only_while_the_lease_is_its_own() {
        let mut lease = lease();
        let mine = Holder::from_text(lease.value(Purpose::Renew, 5, None, NOW).as_str().unwrap()).unwrap();
        for purpose in [Purpose::Renew, Purpose::Release, Purpose::Acquire] {
            let verdict = lease.judge(&record(Some(&mine)), purpose, NOW + 1).unwrap();
            assert!(matches!(verdict, Verdict::Write { .. }), "{purpose:?}");
        }
        let theirs = other(NOW);
        for purpose in [Purpose::Renew, Purpose::Release] {
            let verdict = lease.judge(&record(Some(&theirs)), purpose, NOW).unwrap();
            assert_eq!(verdict, Verdict::TakenOver(Some(theirs.clone())));
        }
        for purpose in [Purpose::Renew, Purpose::Release] {
            assert_eq!(lease.judge(&record(None), purpose, NOW).unwrap(), Verdict::TakenOver(None));
        }
        // A release made whose answer was lost: nothing more to write.
        let released = Holder::from_text(lease.value(Purpose::Release, 5, None, NOW).as_str().unwrap()).unwrap();
        assert_eq!(lease.judge(&record(Some(&released)), Purpose::Release, NOW).unwrap(), Verdict::Released);
        assert!(matches!(lease.judge(&record(Some(&released)), Purpose::Renew, NOW), Ok(Verdict::TakenOver(_))));
        // A released lease is free for another start at once.
        let free = Holder { released: true, ..theirs };
        let fresh = self::lease().judge(&record(Some(&free)), Purpose::Acquire, NOW);
        assert!(matches!(fresh, Ok(Verdict::Write { .. })));
    }

    #[test]
    fn a_start_overtaken_by_a_whole_run_does_not_run_again() {
        let theirs = Holder { released: true, ..other(NOW) };
        let before = Holder { token: "earlier".into(), ..theirs.clone() };
        for first in [None, Some(&before)] {
            // Two clicks at once: both read the record, the other wrote first (this one's write
            // got a 412), and its run ended before this one read the record again.
            let mut lease = lease();
            assert!(matches!(lease.judge(&record(first), Purpose::Acquire, NOW), Ok(Verdict::Write { .. })));
            let verdict = lease.judge(&record(Some(&theirs)), Purpose::Acquire, NOW + 900);
            assert_eq!(verdict, Ok(Verdict::JustRan(theirs.clone())), "{first:?}");
        }
        // A 412 for another column's change: the lease read first is the one read again.
        let mut unchanged = lease();
        for _ in 0..2 {
            let verdict = unchanged.judge(&record(Some(&before)), Purpose::Acquire, NOW);
            assert!(matches!(verdict, Ok(Verdict::Write { .. })));
        }
        // A run that started since and went silent (a closed tab) is taken over.
        let mut waking = lease();
        waking.judge(&record(None), Purpose::Acquire, NOW).unwrap();
        let silent = Holder { released: false, ..other(NOW - STALE_MS) };
        assert!(matches!(waking.judge(&record(Some(&silent)), Purpose::Acquire, NOW), Ok(Verdict::Write { .. })));
    }

    #[test]
    fn a_record_without_an_etag_is_not_written() {
        let mut record = record(None);
        record.remove("@odata.etag");
        assert!(lease().judge(&record, Purpose::Acquire, NOW).is_err());
    }

    #[test]
    fn the_lease_says_who_since_when_and_how_far() {
        let mut lease = lease();
        // Since its first write, on Dataverse's clock.
        lease.value(Purpose::Acquire, 0, None, NOW);
        let value = lease.value(Purpose::Renew, 400, Some(1000), NOW + 5);
        let holder = Holder::from_text(value.as_str().unwrap()).unwrap();
        assert_eq!((holder.user.name.as_str(), holder.since_ms, holder.heartbeat_ms), ("Anna", NOW, NOW + 5));
        assert_eq!((holder.done, holder.total), (400, Some(1000)));
        let released = lease.value(Purpose::Release, 400, Some(1000), NOW);
        assert!(Holder::from_text(released.as_str().unwrap()).unwrap().released);
    }
}
