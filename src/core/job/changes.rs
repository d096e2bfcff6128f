//! Pull changes: the contacts SALESmanago changed since the watermark, matched to Dynamics
//! contacts by SALESmanago id, then by e-mail, and only their differing columns written.
//!
//! The watermark moves only past changes that were applied: a contact whose write failed (or
//! whose lookup failed) holds it at its modification time, so the next pull tries it again,
//! while its other columns (an opt-out above all) are written column by column meanwhile.

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{contacts, one_of};
use crate::core::dataverse::schema::{contact, integration};
use crate::core::i18n::{text, Message};
use crate::core::json::{Map, Value};
use crate::core::mapping::fields::FieldMapping;
use crate::core::mapping::from_salesmanago;
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{Lookup, LookupKind, ModifiedContacts};
use crate::core::scope::Scope;
use crate::core::sorted::SortedMap;
use crate::core::sync::{Counted, NotDone, Tally};

use super::runner::{Call, Error, Output, Request, Runner};
use super::units::{hold, not_done, rows, Patching, Row, Write};
use super::{Ending, Named, Start, Ticket};

/// Changed ids handled together: one `In` filter.
const CHUNK: usize = 100;
/// How far back the first pull looks.
const FIRST_PULL_MS: u64 = 30 * 24 * 3600 * 1000;

/// Changed contacts on their way.
#[derive(Default)]
struct Chunk {
    /// Each id with the time the watermark must stay before while it is not applied.
    ids: Vec<(String, u64)>,
    calls: usize,
    changed: Vec<SmContact>,
    /// Ids whose lookup failed, with the reason.
    unknown: Vec<(String, String)>,
    rows: Vec<ContactRow>,
    stage: Stage,
    reading: bool,
    /// The writes; a write's key is its changed contact (an index into `changed`).
    patching: Patching,
    /// How each changed contact written was counted, by its key.
    counted: SortedMap<usize, Counted>,
    tally: Tally,
    hold: Option<u64>,
}

/// What a chunk waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    #[default]
    Lookups,
    ById,
    ByEmail,
    Writing,
}

enum Step {
    Lookup(Vec<String>),
    Read,
    Write,
}

pub(super) struct Changes {
    /// The watermark read from the record; the windows to list are planned from it once the
    /// lease is held, on Dataverse's clock ([`Changes::plan`]).
    watermark: Option<u64>,
    planned: bool,
    to: u64,
    consents: Vec<String>,
    /// The admin's field mapping.
    mapping: FieldMapping,
    /// Which contacts synchronise.
    scope: Scope,
    windows: VecDeque<(u64, u64)>,
    /// The next listing call: window and page.
    next: Option<(u64, u64, u32)>,
    listing: Option<(Ticket, u64, u64, u32)>,
    listed: VecDeque<(String, u64)>,
    /// Contacts named by their e-mail alone (a rule's call without an id).
    emails: VecDeque<String>,
    /// Only the contacts named (SALESmanago's rule calls), no listing and no watermark.
    named: bool,
    chunks: SortedMap<usize, Chunk>,
    next_index: usize,
    tickets: SortedMap<Ticket, (usize, Step)>,
    tally: Tally,
    hold: Option<u64>,
    ending: Ending,
}

impl Changes {
    pub(super) fn new(start: &Start, record: &Map) -> Changes {
        let watermark = record
            .get(integration::CHANGES_WATERMARK)
            .and_then(Value::as_str)
            .and_then(|w| w.trim().parse::<u64>().ok());
        Changes {
            watermark,
            planned: false,
            to: 0,
            consents: start.consents.clone(),
            mapping: start.settings.mapping.clone(),
            scope: start.settings.scope.clone(),
            windows: VecDeque::new(),
            next: None,
            listing: None,
            listed: VecDeque::new(),
            emails: VecDeque::new(),
            named: false,
            chunks: SortedMap::new(),
            next_index: 0,
            tickets: SortedMap::new(),
            tally: Tally::default(),
            hold: None,
            ending: Ending::new(start.job),
        }
    }

    /// Applies only the contacts `named` (by SALESmanago id, else by e-mail), as SALESmanago
    /// holds them now: what its rules' calls name. Nothing is listed, and no watermark moves
    /// (Pull changes stays the catch-up of a call that was lost).
    pub(super) fn named(start: &Start, named: &Named) -> Changes {
        let mut changes = Changes::new(start, &Map::new());
        changes.planned = true;
        changes.named = true;
        changes.ending = Ending::unrecorded(start.job);
        changes.listed = named.ids.iter().map(|id| (id.clone(), 0)).collect();
        changes.emails = named.emails.iter().cloned().collect();
        changes
    }

    /// Plans the windows to list, up to now on Dataverse's clock, once the lease is held (its
    /// answers told that clock): a browser whose clock runs fast must not move the watermark
    /// past changes SALESmanago has yet to make, nor one that runs slow leave some behind. The
    /// earliest that time can be: a change made within that second goes with the next pull.
    /// (Assumed: SALESmanago's clock, which stamps `modifiedOn`, and Dataverse's agree within
    /// that; both are services kept on time.)
    fn plan(&mut self, run: &Runner, now_ms: u64) -> bool {
        if !self.planned && run.leased() {
            self.to = run.dataverse_earliest(now_ms);
            let from = self.watermark.map_or(self.to.saturating_sub(FIRST_PULL_MS), |w| w + 1);
            self.windows = ModifiedContacts::windows(from, self.to).into();
            self.planned = true;
        }
        self.planned
    }

    pub(super) fn advance(&mut self, run: &mut Runner, now_ms: u64) {
        if self.ending.started() || !self.plan(run, now_ms) {
            return;
        }
        let room = self.chunks.len() < run.depth();
        if self.listing.is_none() && room && self.listed.len() < CHUNK * run.depth() {
            if let Some((from, to, page)) =
                self.next.take().or_else(|| self.windows.pop_front().map(|(f, t)| (f, t, 1)))
            {
                let call = ModifiedContacts { from, to, page: Some(page) };
                let ticket = run.issue(Request::Call(Call::Modified(call)));
                self.listing = Some((ticket, from, to, page));
            }
        }
        let listed_all = self.listing.is_none() && self.next.is_none() && self.windows.is_empty();
        while self.chunks.len() < run.depth() && (self.listed.len() >= CHUNK || (listed_all && !self.listed.is_empty()))
        {
            let take = self.listed.len().min(CHUNK);
            let ids: Vec<(String, u64)> = self.listed.drain(..take).collect();
            self.start_chunk(ids, LookupKind::ListById, run);
        }
        while self.chunks.len() < run.depth() && !self.emails.is_empty() {
            let take = self.emails.len().min(CHUNK);
            let emails = self.emails.drain(..take).map(|email| (email, 0)).collect();
            self.start_chunk(emails, LookupKind::BasicByEmail, run);
        }
        let done = self.listed.is_empty() && self.emails.is_empty() && self.chunks.is_empty();
        if listed_all && done && !run.busy() {
            let mut extra = Map::new();
            if !self.named {
                // Next time starts after the last change applied.
                let watermark = self.hold.map_or(self.to, |h| h.saturating_sub(1).min(self.to));
                extra.insert(integration::CHANGES_WATERMARK.into(), watermark.to_string().into());
            }
            self.ending.start(run, ::core::mem::take(&mut self.tally), extra, now_ms);
        }
    }

    /// Looks up `ids` (SALESmanago ids, or e-mails, each with the time the watermark must stay
    /// before) as `kind` does.
    fn start_chunk(&mut self, ids: Vec<(String, u64)>, kind: LookupKind, run: &mut Runner) {
        let index = self.next_index;
        self.next_index += 1;
        let keys: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
        let mut chunk = Chunk { ids, ..Chunk::default() };
        for call in Lookup::batches(kind, &keys) {
            let keys = call.keys().to_vec();
            let ticket = run.issue(Request::Call(Call::Lookup(call)));
            self.tickets.insert(ticket, (index, Step::Lookup(keys)));
            chunk.calls += 1;
        }
        self.chunks.insert(index, chunk);
    }

    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner, now_ms: u64) {
        let Some(result) = self.ending.on(ticket, result, run) else { return };
        if let Some((listing, from, to, page)) = self.listing {
            if listing == ticket {
                self.listing = None;
                match result {
                    Ok(Output::Modified(found)) => {
                        if found.has_more {
                            self.next = Some((from, to, page + 1));
                        }
                        let mut ids: Vec<(String, u64)> = found
                            .contacts
                            .into_iter()
                            .map(|c| (c.id, c.modified_on.unwrap_or(from).max(from)))
                            .collect();
                        crate::core::sorted::sort(&mut ids);
                        ids.dedup_by(|a, b| a.0 == b.0);
                        self.listed.extend(ids);
                    }
                    Ok(_) => run.mismatched(),
                    Err(error) => run.fail(error.into()),
                }
                return;
            }
        }
        let Some((index, step)) = self.tickets.remove(&ticket) else { return };
        let Some(chunk) = self.chunks.get_mut(&index) else { return };
        match (step, result) {
            (Step::Lookup(_), Ok(Output::Found(found))) => {
                chunk.calls -= 1;
                chunk.changed.extend(found);
            }
            (Step::Lookup(ids), Err(error)) => {
                let Some(reason) = run.reason(error) else { return };
                chunk.calls -= 1;
                chunk.unknown.extend(ids.into_iter().map(|id| (id, reason.clone())));
            }
            (Step::Read, Ok(Output::Page(values, next))) => {
                chunk.rows.extend(values.into_iter().filter_map(|v| match Row::of(v) {
                    Row::Read(parsed) => Some(parsed),
                    Row::Unreadable => None,
                }));
                if let Some(next) = next {
                    let ticket = run.issue(Request::Read(next));
                    self.tickets.insert(ticket, (index, Step::Read));
                    return;
                }
                chunk.reading = false;
            }
            (Step::Read, Err(error)) | (Step::Write, Err(error)) => return run.fail(error.into()),
            (Step::Write, Ok(Output::Written(outcomes))) => {
                // A write's key is its changed contact.
                for (key, reason) in chunk.patching.answer(outcomes) {
                    let reason = text(&Message::Dataverse { detail: reason }, run.lang);
                    let sm = &chunk.changed[key];
                    let held = chunk.held(sm.id.as_deref());
                    hold(&mut chunk.hold, held);
                    let row = chunk.matching(sm).unwrap_or_else(|| unreachable!("a written contact has its row"));
                    let listed = not_done(&chunk.rows[row], false, reason);
                    let counted = chunk.counted.get(&key).copied().unwrap_or(Counted::Done);
                    chunk.tally.refused(counted, listed);
                }
                return self.write(index, run, now_ms);
            }
            (_, Ok(_)) => return run.mismatched(),
        }
        self.next_step(index, run, now_ms);
    }

    /// Moves a chunk on once what it waits for is back: lookups, then the rows by SALESmanago
    /// id, then by e-mail, then the writes.
    fn next_step(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(chunk) = self.chunks.get_mut(&index) else { return };
        if chunk.calls > 0 || chunk.reading {
            return;
        }
        while chunk.stage != Stage::Writing {
            let (column, keys): (&str, Vec<String>) = match chunk.stage {
                Stage::Lookups => {
                    chunk.stage = Stage::ById;
                    (contact::SALESMANAGO_ID, chunk.changed.iter().filter_map(|c| c.id.clone()).collect())
                }
                Stage::ById => {
                    chunk.stage = Stage::ByEmail;
                    let unmatched = chunk.changed.iter().filter(|c| chunk.matching(c).is_none());
                    (contact::EMAIL, unmatched.filter_map(|c| c.email.clone()).collect())
                }
                Stage::ByEmail | Stage::Writing => {
                    chunk.stage = Stage::Writing;
                    continue;
                }
            };
            if !keys.is_empty() {
                chunk.reading = true;
                let ticket = run.issue(Request::Read(contacts(&self.consents, Some(&one_of(column, &keys)))));
                self.tickets.insert(ticket, (index, Step::Read));
                return;
            }
        }
        self.patch(index, run, now_ms);
    }

    /// Every row is at hand: the differing columns of each changed contact are written.
    fn patch(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(chunk) = self.chunks.get_mut(&index) else { return };
        chunk.tally = Tally::default();
        for (id, reason) in ::core::mem::take(&mut chunk.unknown) {
            chunk.tally.total += 1;
            let held = chunk.held(Some(&id));
            hold(&mut chunk.hold, held);
            // Neither its Dynamics id nor its e-mail is known without the lookup: the reason
            // names it by its SALESmanago id.
            let reason = text(&Message::LookupFailed { contact: id, reason }, run.lang);
            let listed =
                NotDone { id: String::new(), email: String::new(), name: String::new(), skipped: false, reason };
            chunk.tally.not_done(listed);
        }
        let mut written: Vec<usize> = Vec::new();
        for (key, sm) in chunk.changed.iter().enumerate() {
            chunk.tally.total += 1;
            let Some(row) = chunk.matching(sm) else {
                chunk.tally.missing += 1;
                continue;
            };
            // Outside the scope the integration changes nothing.
            if !self.scope.includes(&chunk.rows[row]) {
                chunk.tally.outside += 1;
                continue;
            }
            let patch = from_salesmanago(&chunk.rows[row], sm, &self.mapping);
            // Two changed contacts matching one row: the first one's write stands.
            if written.contains(&row) {
                chunk.tally.same += 1;
                continue;
            }
            let counted = if patch.is_empty() { Counted::Same } else { Counted::Done };
            chunk.tally.count(counted);
            // A contact whose values already agree may still get its consent base.
            let Some(columns) = patch.write(now_ms) else { continue };
            chunk.counted.insert(key, counted);
            written.push(row);
            let id = chunk.rows[row].id().unwrap_or_default();
            chunk.patching.writes.push(Write { key, id, columns });
        }
        self.write(index, run, now_ms);
    }

    fn write(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(chunk) = self.chunks.get_mut(&index) else { return };
        if chunk.patching.writes.is_empty() {
            let Some(chunk) = self.chunks.remove(&index) else { return };
            if let Some(held) = chunk.hold {
                hold(&mut self.hold, held);
            }
            self.tally.merge(chunk.tally);
            run.handled = self.tally.total;
            run.show(now_ms);
            return;
        }
        let ticket = run.issue(Request::Write(rows(&chunk.patching.writes)));
        self.tickets.insert(ticket, (index, Step::Write));
    }
}

impl Chunk {
    /// How far the watermark may move while the change of SALESmanago contact `id` is not
    /// applied: to just before its modification time (else its window's start).
    fn held(&self, id: Option<&str>) -> u64 {
        let own = self.ids.iter().filter(|(i, _)| Some(i.as_str()) == id).map(|(_, h)| *h).min();
        // A contact without an id: the earliest change of the chunk, to be safe.
        own.or_else(|| self.ids.iter().map(|(_, h)| *h).min()).unwrap_or(0)
    }

    /// The row a changed contact is: by SALESmanago id, else by e-mail.
    fn matching(&self, sm: &SmContact) -> Option<usize> {
        let by_id =
            sm.id.as_deref().and_then(|id| self.rows.iter().position(|r| r.get(contact::SALESMANAGO_ID) == Some(id)));
        by_id.or_else(|| {
            let address = sm.email.as_deref()?;
            self.rows.iter().position(|r| r.get(contact::EMAIL).is_some_and(|e| e.trim().eq_ignore_ascii_case(address)))
        })
    }
}
