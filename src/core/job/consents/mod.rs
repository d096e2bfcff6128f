//! Pull consents: SALESmanago's export job prepares a file of every contact the engine sent,
//! with its opt-outs and consents ([`crate::core::salesmanago::export`]); the job waits for it,
//! reads it as it downloads, then compares each Dynamics contact with an e-mail page by page,
//! matched by SALESmanago id, then by e-mail, and writes only the values the consent rule moves.

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::has_value;
use crate::core::dataverse::schema::contact;
use crate::core::i18n::{text, Message};
use crate::core::json::{Map, Value};
use crate::core::mapping::fields::FieldMapping;
use crate::core::mapping::normalize::email;
use crate::core::mapping::{from_salesmanago, Skip};
use crate::core::salesmanago::export::{ExportConsents, FileReader, JobStatus};
use crate::core::scope::Scope;
use crate::core::sorted::SortedMap;
use crate::core::sync::{consents_only, Counted, Tally};
use crate::prelude::*;

use super::runner::{Call, Error, Output, Request, Runner};
use super::units::{not_done, rows, unreadable, Answer, Pages, Patching, Row, Write};
use super::{Ending, JobFailure, Start, Ticket};

mod index;

use index::Index;

/// The first wait before asking whether the file is ready; each wait is half as long again as
/// the one before, up to [`LONGEST_WAIT_MS`].
const FIRST_WAIT_MS: u64 = 2_000;
const LONGEST_WAIT_MS: u64 = 30_000;
/// How long SALESmanago may take to prepare the file.
const READY_WITHIN_MS: u64 = 30 * 60_000;
/// Progress while reading the file is shown each time this many more contacts are in.
const SHOW_EVERY: usize = 1_000;

/// Whether reading the file from `before` contacts to `now` passed a multiple of [`SHOW_EVERY`].
fn shows_progress(before: usize, now: usize) -> bool {
    now / SHOW_EVERY > before / SHOW_EVERY
}

/// Where the job is.
enum Phase {
    /// SALESmanago is asked for the export.
    Asking(Ticket),
    /// SALESmanago prepares the file; it is asked again after `wait_ms`.
    Preparing { ticket: Ticket, request_id: String, since_ms: u64, wait_ms: u64 },
    /// The file is being read, and Dynamics' first pages with it.
    Reading(Ticket),
    /// Dynamics' contacts are compared with the file.
    Comparing,
}

#[derive(Default)]
struct Page {
    rows: Vec<ContactRow>,
    /// How each row was counted (a write's key is its row).
    counted: Vec<Counted>,
    patching: Patching,
    tally: Tally,
}

pub(super) struct Consents {
    phase: Phase,
    consents: Vec<String>,
    /// Which contacts synchronise.
    scope: Scope,
    reader: FileReader,
    /// The file's contacts, as they are read.
    file: Index,
    pages_to_read: Option<Pages>,
    next_index: usize,
    pages: SortedMap<usize, Page>,
    /// Each `$batch` under way, with its page.
    writes: SortedMap<Ticket, usize>,
    tally: Tally,
    ending: Ending,
}

impl Consents {
    pub(super) fn new(start: &Start, run: &mut Runner) -> Consents {
        let ticket = run.issue(Request::Call(Call::Export(ExportConsents)));
        Consents {
            phase: Phase::Asking(ticket),
            consents: start.consents.clone(),
            scope: start.settings.scope.clone(),
            reader: FileReader::default(),
            file: Index::default(),
            pages_to_read: None,
            next_index: 0,
            pages: SortedMap::new(),
            writes: SortedMap::new(),
            tally: Tally::default(),
            ending: Ending::new(start.job),
        }
    }

    pub(super) fn advance(&mut self, run: &mut Runner, now_ms: u64) {
        let Some(pages) = self.pages_to_read.as_mut().filter(|_| !self.ending.started()) else { return };
        pages.read(run, self.pages.len());
        let comparing = matches!(self.phase, Phase::Comparing);
        if comparing && pages.done() && self.pages.is_empty() && !run.busy() {
            self.ending.start(run, ::core::mem::take(&mut self.tally), Map::new(), now_ms);
        }
    }

    /// Works on a page that arrived; `false` when there is none.
    pub(super) fn work(&mut self, run: &mut Runner, now_ms: u64) -> bool {
        if !matches!(self.phase, Phase::Comparing) {
            return false;
        }
        let Some(values) = self.pages_to_read.as_mut().and_then(Pages::arrived).map(|page| page.rows) else {
            return false;
        };
        self.compare(values, run, now_ms);
        true
    }

    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner, now_ms: u64) {
        let Some(result) = self.ending.on(ticket, result, run) else { return };
        let result = match self.pages_to_read.as_mut() {
            Some(pages) => match pages.answer(ticket, result, run) {
                Answer::Taken => return,
                // Its reads are not change-tracked.
                Answer::Untracked(error) => return run.fail(error.into()),
                Answer::Other(result) => result,
            },
            None => result,
        };
        if let Some(index) = self.writes.remove(&ticket) {
            return match result {
                Ok(Output::Written(outcomes)) => self.written(index, outcomes, run, now_ms),
                Ok(_) => run.mismatched(),
                Err(error) => run.fail(error.into()),
            };
        }
        let result = match result {
            Ok(output) => output,
            // Every step of the file is needed: a step that failed for good ends the job.
            Err(error) => return run.fail(error.into()),
        };
        match (&mut self.phase, result) {
            (Phase::Asking(asked), Output::Requested(request_id)) if *asked == ticket => {
                let wait_ms = FIRST_WAIT_MS;
                let ticket = Self::ask_status(run, &request_id, now_ms + wait_ms);
                self.phase = Phase::Preparing { ticket, request_id, since_ms: now_ms, wait_ms };
                run.say(Message::PreparingFile { seconds: 0 });
            }
            (Phase::Preparing { ticket: asked, request_id, since_ms, wait_ms }, Output::Status(status))
                if *asked == ticket =>
            {
                let waited = now_ms.saturating_sub(*since_ms);
                match status {
                    Some(url) => {
                        self.phase = Phase::Reading(run.issue(Request::Download(url)));
                        // Dynamics' first pages are read while the file downloads and is read (as
                        // many as the job holds at once), and compared once it is whole. Not
                        // before: a page read while SALESmanago prepares the file (minutes for a
                        // large account) would be compared with values that old.
                        self.pages_to_read = Some(Pages::all(&self.consents, Some(has_value(contact::EMAIL)), None));
                        run.say(Message::ReadingFile { contacts: 0 });
                    }
                    None if waited >= READY_WITHIN_MS => {
                        let message = Message::FileNotReady { minutes: READY_WITHIN_MS / 60_000 };
                        run.fail(JobFailure { message, kind: "fileNotReady" });
                    }
                    None => {
                        *wait_ms = (*wait_ms * 3 / 2).min(LONGEST_WAIT_MS);
                        *asked = Self::ask_status(run, request_id, now_ms + *wait_ms);
                        run.say(Message::PreparingFile { seconds: waited / 1000 });
                    }
                }
            }
            (Phase::Reading(reading), Output::Part(bytes, first)) if *reading == ticket => {
                if first {
                    // The download started again from the beginning.
                    self.reader = FileReader::default();
                    self.file = Index::default();
                }
                let before = self.file.len();
                if let Err(detail) = self.reader.feed(&bytes) {
                    return unreadable_file(run, detail);
                }
                for contact in self.reader.take() {
                    self.file.push(contact);
                }
                if shows_progress(before, self.file.len()) {
                    run.say(Message::ReadingFile { contacts: self.file.len() as u64 });
                }
            }
            (Phase::Reading(reading), Output::Downloaded) if *reading == ticket => {
                if let Err(detail) = self.reader.finish() {
                    return unreadable_file(run, detail);
                }
                self.phase = Phase::Comparing;
                run.show(now_ms);
            }
            // A heartbeat's answer, or one that came late.
            _ => {}
        }
    }

    fn ask_status(run: &mut Runner, request_id: &str, at_ms: u64) -> Ticket {
        let status = JobStatus { request_id: request_id.to_owned() };
        run.issue_at(Request::Call(Call::Status(status)), at_ms)
    }

    /// Compares a page of contacts with the file, and writes what the consent rule moves.
    fn compare(&mut self, values: Vec<Value>, run: &mut Runner, now_ms: u64) {
        let index = self.next_index;
        self.next_index += 1;
        let mut page = Page::default();
        for value in values {
            page.tally.total += 1;
            let Row::Read(parsed) = Row::of(value) else {
                page.tally.not_done(unreadable(run.lang));
                continue;
            };
            // Outside the scope the integration changes nothing.
            if !self.scope.includes(&parsed) {
                page.tally.outside += 1;
                continue;
            }
            let by_id = parsed.get(contact::SALESMANAGO_ID).and_then(|id| self.file.by_id(id));
            let found = match by_id {
                Some(found) => found,
                None => {
                    let raw = parsed.get(contact::EMAIL).unwrap_or_default();
                    match email(raw) {
                        Ok(address) => match self.file.by_email(&address) {
                            Some(found) => found,
                            None => {
                                page.tally.missing += 1;
                                continue;
                            }
                        },
                        Err(problem) => {
                            let skip = Skip::InvalidEmail { email: raw.to_owned(), problem };
                            let reason = text(&Message::Skipped(skip), run.lang);
                            page.tally.not_done(not_done(&parsed, true, reason));
                            continue;
                        }
                    }
                }
            };
            let patch = consents_only(from_salesmanago(&parsed, &found, &FieldMapping::NONE));
            // A contact whose values already agree may still get its consent base.
            let counted = if patch.is_empty() { Counted::Same } else { Counted::Done };
            page.tally.count(counted);
            if let Some(columns) = patch.write(now_ms) {
                let write = Write { key: page.rows.len(), id: parsed.id().unwrap_or_default(), columns };
                page.patching.writes.push(write);
            }
            page.rows.push(parsed);
            page.counted.push(counted);
        }
        self.pages.insert(index, page);
        self.write(index, run, now_ms);
    }

    /// Takes a `$batch`'s outcomes, and writes what is left of the page.
    fn written(&mut self, index: usize, outcomes: Vec<Result<(), String>>, run: &mut Runner, now_ms: u64) {
        let Some(page) = self.pages.get_mut(&index) else { return };
        for (row, reason) in page.patching.answer(outcomes) {
            let reason = text(&Message::Dataverse { detail: reason }, run.lang);
            let listed = not_done(&page.rows[row], false, reason);
            page.tally.refused(page.counted[row], listed);
        }
        self.write(index, run, now_ms);
    }

    /// Sends the page's next `$batch`, or completes the page.
    fn write(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(page) = self.pages.get_mut(&index) else { return };
        if page.patching.writes.is_empty() {
            let Some(page) = self.pages.remove(&index) else { return };
            self.tally.merge(page.tally);
            run.handled = self.tally.total;
            run.show(now_ms);
            return;
        }
        let ticket = run.issue(Request::Write(rows(&page.patching.writes)));
        self.writes.insert(ticket, index);
    }
}

/// Ends the job: the file could not be read.
fn unreadable_file(run: &mut Runner, detail: String) {
    run.fail(JobFailure { message: Message::FileUnreadable { detail }, kind: "fileUnreadable" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_each_time_another_thousand_contacts_are_in() {
        assert!(shows_progress(999, 1_000));
        assert!(shows_progress(0, 1_000));
        assert!(shows_progress(1_500, 2_600));
        assert!(shows_progress(1_999, 2_000));
        assert!(!shows_progress(0, 999));
        assert!(!shows_progress(1_000, 1_999));
        assert!(!shows_progress(1_000, 1_000));
    }
}
