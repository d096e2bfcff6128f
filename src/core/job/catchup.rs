//! "Export changes" (and the relay's catch-up, the same job) reads Dynamics' changes through
//! Dataverse change tracking: the delta link kept on the integration record
//! ([`integration::CATCH_UP_DELTA`]) gives the contacts changed since the last run and those
//! deleted, so a delete whose webhook delivery failed still reaches SALESmanago. Without a link
//! (the first run) or with one that expired, it reads every contact once, tracked, and sends
//! those modified since the watermark, then keeps the new link; a contact table that does not
//! track changes is read by modification time, as before change tracking, and the summary says
//! what cannot be seen that way.
//!
//! A deleted row carries only its id: its e-mail is read from the recycle bin (FetchXML with
//! `datasource="bin"`, when the environment keeps deleted records), and it is removed as a
//! delete from the form would ([`Removal`]). One whose e-mail is not known is skipped, saying
//! why. The link moves only when nothing failed.

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::error::DvError;
use crate::core::dataverse::query::{self, contacts, select};
use crate::core::dataverse::schema::{contact, integration};
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};
use crate::core::sorted::SortedMap;
use crate::core::sync::{iso_datetime, unix_ms, NotDone, Tally};
use crate::prelude::*;

use super::removal::{Next, Removal};
use super::runner::{Error, Output, Request, Runner};
use super::units::Pages;
use super::Ticket;

/// Deleted contacts looked up in the recycle bin per read.
const BIN_CHUNK: usize = 100;

/// How the changes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The delta link: what changed since it, and what was deleted.
    Delta,
    /// Every contact, tracked, to get a link: only those modified since `since` go.
    Full { since: Option<u64> },
    /// The table does not track changes: those modified since, by `modifiedon`.
    ByTime,
}

/// What a row of a page is to the catch-up.
pub(super) enum Row {
    /// A contact to send.
    Send(Value),
    /// A contact deleted since the link.
    Deleted(String),
    /// A contact not modified since the watermark (a full read): not counted.
    Unchanged,
}

/// The catch-up's part of "Export changes".
pub(super) struct CatchUp {
    reading: Reading,
    /// Since when a full read or a read by time sends contacts.
    since: Option<u64>,
    consents: Vec<String>,
    opt_out_only: bool,
    /// Deleted contacts seen, waiting for their e-mail.
    deleted: Vec<String>,
    /// Recycle-bin reads under way, with the contacts they ask about.
    bin: SortedMap<Ticket, Vec<String>>,
    /// Removals under way, with their contacts' ids.
    removals: SortedMap<Ticket, (String, Removal)>,
    /// Whether it read since the last export, the record holding no watermark of its own.
    unpinned: bool,
    /// The deleted contacts' counts.
    pub(super) tally: Tally,
    /// Deleted contacts that failed for now.
    pub(super) for_now: u64,
    /// What the summary says beside the counts.
    pub(super) notes: Vec<Message>,
    lang: Lang,
}

impl CatchUp {
    /// The catch-up of `record` (the integration record as read at the start), and its reads.
    pub(super) fn new(record: &Map, consents: &[String], opt_out_only: bool, lang: Lang) -> (CatchUp, Pages) {
        // Since the catch-up's watermark; the first time, since the last export finished.
        let last_export =
            record.get(super::JobColumns::Export.last_run_column()).and_then(Value::as_str).and_then(unix_ms);
        let watermark = record.get(integration::CATCH_UP_WATERMARK);
        let since = crate::core::sync::catch_up_since(watermark, last_export);
        let unpinned = watermark.and_then(Value::as_str).is_none_or(|w| w.trim().parse::<u64>().is_err());
        let link = record.get(integration::CATCH_UP_DELTA).and_then(Value::as_str).filter(|l| l.starts_with('?'));
        let (reading, pages) = match link {
            Some(link) => (Reading::Delta, Pages::tracked(link.to_owned())),
            None => (Reading::Full { since }, Pages::tracked(select(consents))),
        };
        let catch_up = CatchUp {
            reading,
            since,
            unpinned,
            consents: consents.to_vec(),
            opt_out_only,
            deleted: Vec::new(),
            bin: SortedMap::new(),
            removals: SortedMap::new(),
            tally: Tally::default(),
            for_now: 0,
            notes: Vec::new(),
            lang,
        };
        (catch_up, pages)
    }

    /// The watermark to write when contacts failed for now and none was stored: the base this
    /// run read from (every contact, `0`, when it had none). Without it the next run would read
    /// since the export's last run, which this run moves to its end, and miss what failed.
    pub(super) fn base_to_keep(&self) -> Option<u64> {
        self.unpinned.then(|| self.since.unwrap_or(0))
    }

    /// A tracked read was refused: what to read instead (every contact, tracked, when the link
    /// expired; by modification time when the table does not track changes), or the failure.
    pub(super) fn untracked(&mut self, error: Error) -> Result<Pages, Error> {
        match (&error, self.reading) {
            (Error::Dataverse(DvError::DeltaExpired), Reading::Delta) => {
                self.reading = Reading::Full { since: self.since };
                self.notes.push(Message::DeltaExpired);
                Ok(Pages::tracked(select(&self.consents)))
            }
            (Error::Dataverse(DvError::NotTracked), Reading::Delta | Reading::Full { .. }) => {
                self.reading = Reading::ByTime;
                self.notes.push(Message::NotTracked);
                let filter = self.since.map(|ms| format!("{} ge {}", contact::MODIFIED_ON, iso_datetime(ms)));
                Ok(Pages::new(vec![contacts(&self.consents, filter.as_deref())]))
            }
            _ => Err(error),
        }
    }

    /// What `value`, a row of a page, is to the catch-up.
    pub(super) fn row(&mut self, value: Value) -> Row {
        if let Some(id) = query::deleted(&value) {
            return Row::Deleted(id.to_owned());
        }
        let modified = value.get(contact::MODIFIED_ON).and_then(Value::as_str).and_then(unix_ms);
        if let Reading::Full { since: Some(since) } = self.reading {
            if modified.is_some_and(|m| m < since) {
                return Row::Unchanged;
            }
        }
        // A row last written by the synchronisation itself (its write-back) goes again: telling
        // it from a user's edit made in the same seconds needs more than the times.
        Row::Send(value)
    }

    /// Notes a contact deleted since the link.
    pub(super) fn deleted(&mut self, id: String) {
        self.deleted.push(id);
    }

    /// Once every page is done: reads the deleted contacts' e-mails. Whether the catch-up is
    /// done too.
    pub(super) fn finish(&mut self, run: &mut Runner) -> bool {
        while !self.deleted.is_empty() {
            let chunk: Vec<String> = self.deleted.drain(..self.deleted.len().min(BIN_CHUNK)).collect();
            let ticket = run.issue(Request::Read(query::from_bin(&chunk)));
            self.bin.insert(ticket, chunk);
        }
        self.bin.is_empty() && self.removals.is_empty()
    }

    /// The record's columns the job writes at its end: the new link, when nothing failed.
    pub(super) fn columns(&self, delta: Option<String>, failed: bool, columns: &mut Map) {
        if self.reading == Reading::ByTime || failed {
            return;
        }
        if let Some(delta) = delta {
            columns.insert(integration::CATCH_UP_DELTA.into(), delta.into());
        }
    }

    /// Takes the answer to `ticket` if it is the catch-up's; `false` when it is not.
    pub(super) fn on(&mut self, ticket: Ticket, result: &mut Option<Result<Output, Error>>, run: &mut Runner) -> bool {
        if let Some(chunk) = self.bin.remove(&ticket) {
            let Some(result) = result.take() else { return true };
            self.bin_answer(chunk, result, run);
            return true;
        }
        if let Some((id, removal)) = self.removals.remove(&ticket) {
            let Some(result) = result.take() else { return true };
            match removal.on(result) {
                Ok(Next::Ask(removal, request)) => {
                    self.removals.insert(run.issue(request), (id, removal));
                }
                Ok(Next::Done(_)) => self.tally.done += 1,
                Err(error) => {
                    self.for_now += u64::from(error.passes());
                    if let Some(reason) = run.reason(error) {
                        self.not_done(&id, "", false, reason);
                    }
                }
            }
            return true;
        }
        false
    }

    /// The deleted contacts of `chunk` as the recycle bin has them: each removed, or skipped
    /// when its e-mail is not known.
    fn bin_answer(&mut self, chunk: Vec<String>, result: Result<Output, Error>, run: &mut Runner) {
        let rows = match result {
            Ok(Output::Page(rows, _)) => rows,
            // The environment keeps no deleted records (or refuses FetchXML on them).
            Err(Error::Dataverse(DvError::Refused { .. })) | Ok(_) => Vec::new(),
            // Any other failure (past Dynamics' retries) stops the job: its link stays.
            Err(error) => return run.fail(error.into()),
        };
        for id in chunk {
            self.tally.total += 1;
            let found = rows
                .iter()
                .filter_map(Value::as_object)
                .find(|row| row.get(contact::ID).and_then(Value::as_str).is_some_and(|r| r.eq_ignore_ascii_case(&id)));
            let raw = found.map(ContactRow::from_json).and_then(|row| row.get(contact::EMAIL).map(str::to_owned));
            match raw.as_deref().and_then(|raw| Removal::start(&id, raw, self.opt_out_only)) {
                Some((removal, request)) => {
                    self.removals.insert(run.issue(request), (id, removal));
                }
                // Known but nothing SALESmanago could hold: nothing to remove.
                None if raw.is_some() => self.tally.done += 1,
                None => {
                    let reason = text(&Message::DeletedEmailUnknown, self.lang);
                    self.not_done(&id, "", true, reason);
                }
            }
        }
    }

    fn not_done(&mut self, id: &str, email: &str, skipped: bool, reason: String) {
        let listed = NotDone { id: id.to_owned(), email: email.to_owned(), name: String::new(), skipped, reason };
        self.tally.not_done(listed);
    }
}
