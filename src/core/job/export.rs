//! Export: the selected contacts, or all of them, to SALESmanago in batches; each contact's
//! outcome written back where it changes. "Export all" saves a checkpoint every few pages
//! and a later run resumes after it.

use crate::prelude::*;
use alloc::sync::Arc;

use crate::core::command::BulkJob;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{contacts, holders, is_guid, one_of, HOLDERS_CHUNK};
use crate::core::dataverse::schema::{contact, integration, Job as JobColumns, SyncStatus};
use crate::core::i18n::{text, Message};
use crate::core::json::{self, Map, Value};
use crate::core::mapping::fields::FieldMapping;
use crate::core::mapping::normalize::email;
use crate::core::mapping::outbound::{held_by_another, rename_from, rename_lookup, unrenamed};
use crate::core::mapping::{to_salesmanago, Held, OutboundOptions, Warning};
use crate::core::salesmanago::contact::{ContactData, UpsertDetails};
use crate::core::salesmanago::operation::{BatchUpsert, Lookup, LookupKind, Refused};
use crate::core::salesmanago::SmError;
use crate::core::scope::{Leaving, Scope, Standing};
use crate::core::sorted::SortedMap;
use crate::core::sync::{write_back, Again, NotDone, Tally, Went};
use crate::object;

use super::catchup::{CatchUp, Row as CatchRow};
use super::recheck::{Checked, Recheck};
use super::runner::{Call, Error, Output, Request, Runner};
use super::units::{not_done, rows, settle, unreadable, Answer, Arrived, Pages, Place, Row, Write};
use super::{Ending, Start, Ticket};

/// Ids per `In` filter of a selection.
const IN_CHUNK: usize = 100;
/// Pages between two checkpoints of "Export all".
const CHECKPOINT_EVERY: usize = 10;

/// A row to send: its index, its upsert (shared with the call that sends it), its warnings and
/// its new consent base.
type Sendable = (usize, Arc<UpsertDetails>, Vec<Warning>, Option<String>);

/// A page on its way: its rows, what goes to SALESmanago, what is written back.
#[derive(Default)]
struct Page {
    rows: Vec<ContactRow>,
    /// "Export selected": each row as read, for the recheck ([`Recheck`]); none otherwise.
    kept: Vec<Option<Map>>,
    /// Whether each row is counted done (sent).
    sent: Vec<bool>,
    /// Why each row goes again beside its own changes, if it does.
    again: Vec<Option<Again>>,
    /// Whether each row's upsert opts out a contact leaving the scope (counted outside, marked
    /// so once SALESmanago took it).
    leaving: Vec<bool>,
    /// Each sendable row.
    sendable: Vec<Sendable>,
    /// The address each row's contact would be renamed from ([`rename_from`]).
    previous: Vec<Option<String>>,
    /// Reads under way of the contacts holding those addresses, and those read so far.
    reading: usize,
    holders: Vec<Value>,
    calls: usize,
    writes: Vec<Write>,
    tally: Tally,
    /// The last contact of the page, for the checkpoint.
    last: Option<String>,
    /// Where the page lies in the read, and whether it ends its part.
    place: Place,
    ends_part: bool,
}

enum Step {
    /// Which contacts hold the addresses the page's contacts would be renamed from.
    Holders,
    /// A batch upsert of these `sendable` entries.
    Call(Vec<usize>),
    /// Whether renaming these `sendable` entries, refused because another contact has the new
    /// address, may go as a plain upsert ([`unrenamed`]).
    Verify(Vec<usize>),
    Write,
}

/// "Export selected": what SALESmanago made of each contact, known as soon as every page's
/// calls are answered, before the statuses are written back to Dynamics and the contacts read
/// again. A webhook delivery is answered from it: a write-back that fails then changes no
/// answer (the contact is in SALESmanago; the job's summary and log tell of the write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// The contacts SALESmanago took.
    pub went: Vec<String>,
    /// The contacts skipped or failed, with their reasons.
    pub not_done: Vec<NotDone>,
}

pub(super) struct Export {
    /// "Export changes": reading through change tracking, deletions among the changes.
    catch_up: Option<CatchUp>,
    all: bool,
    /// "Export changes": the watermark to write when every contact went (the run's start, on
    /// this machine's clock: written on Dataverse's).
    watermark: Option<u64>,
    pages_to_read: Pages,
    next_index: usize,
    pages: SortedMap<usize, Page>,
    tickets: SortedMap<Ticket, (usize, Step)>,
    /// The counts of the pages done (for "Export all", in order from the first: a checkpoint
    /// holds only these).
    prefix: Tally,
    /// "Export all": pages done out of order, by place: their counts, last contact, and
    /// whether each ends its part.
    ahead: SortedMap<Place, (Tally, Option<String>, bool)>,
    /// "Export all": the first page not done.
    next_done: Place,
    since_checkpoint: usize,
    after: Option<String>,
    checkpoint: Option<Ticket>,
    ending: Ending,
    /// The columns each contact's change set deliberately (lower-case id), as webhook events
    /// tell them: the consent rule takes a change there as the user's.
    changed: SortedMap<String, Vec<String>>,
    /// "Export selected": each contact sent, with its row's version.
    went: Vec<(String, Option<u64>)>,
    /// "Export selected": the versions of the contacts sent read again, and those changed
    /// meanwhile sent again (their counts are not counted twice).
    recheck: Option<Recheck>,
    /// The rows of the contacts sent, as they went (for the recheck).
    went_rows: Vec<(String, Map)>,
    resending: bool,
    /// "Export selected": the first pass's outcomes as its pages settle, and how many pages
    /// read are not settled yet; `settled_all` once every page is.
    settled: Settled,
    unsettled: usize,
    settled_all: bool,
    consents: Vec<String>,
    /// The admin's field mapping, and its fingerprint (what each contact sent records).
    mapping: FieldMapping,
    fingerprint: Option<String>,
    /// Which contacts go.
    scope: Scope,
    /// Contacts that failed for now (a service unavailable or busy): the catch-up's watermark
    /// and link stay before them. A refusal that stands (SALESmanago refusing a contact) does
    /// not hold them back; it is listed with its reason.
    for_now: u64,
}

/// The checkpoint of an interrupted "Export all": the last contact done (a GUID: it goes into
/// the next run's filter) and the counts up to it.
fn read_checkpoint(record: &Map) -> Option<(String, Tally)> {
    let text = record.get(JobColumns::Export.checkpoint_column())?.as_str()?;
    let value = json::from_str(text).ok()?;
    let after = value.get("after")?.as_str().filter(|id| is_guid(id))?.to_owned();
    let count = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
    let tally = Tally {
        total: count("total"),
        done: count("done"),
        skipped_count: count("skipped"),
        failed_count: count("failed"),
        outside: count("outside"),
        again: count("again"),
        entered: count("entered"),
        ..Tally::default()
    };
    tally.adds_up().then_some((after, tally))
}

impl Export {
    pub(super) fn new(start: &Start, record: &Map, run: &mut Runner) -> Export {
        let consents = &start.consents;
        let selected = start.job == BulkJob::ExportSelected && !start.selected.is_empty();
        let all = start.job == BulkJob::ExportAll;
        let mut prefix = Tally::default();
        let mut after = None;
        let changes = start.job == BulkJob::ExportChanges;
        let mut catch_up = None;
        let pages = if changes {
            let (tracking, pages) = CatchUp::new(record, consents, start.settings.opt_out_on_delete, start.lang);
            catch_up = Some(tracking);
            pages
        } else if selected {
            run.total = Some(start.selected.len() as u64);
            match &start.read {
                Some(read) => Pages::read_already(read.rows.clone()),
                None => Pages::new(selection(consents, &start.selected)),
            }
        } else if let Some((last, resumed)) = all.then(|| read_checkpoint(record)).flatten() {
            run.say(Message::Resuming { done: resumed.done });
            run.handled = resumed.total;
            prefix = resumed;
            after = Some(last.clone());
            Pages::all(consents, None, Some(last))
        } else if all {
            Pages::all(consents, None, None)
        } else {
            Pages::new(vec![contacts(consents, None)])
        };
        let pages_to_read = pages;
        Export {
            catch_up,
            all,
            // On Dataverse's clock once its answers have told it (`modifiedon` is its time).
            watermark: changes.then_some(start.now_ms),
            pages_to_read,
            next_index: 0,
            pages: SortedMap::new(),
            tickets: SortedMap::new(),
            prefix,
            ahead: SortedMap::new(),
            next_done: Place::default(),
            since_checkpoint: 0,
            after,
            checkpoint: None,
            ending: Ending::new(start.job),
            changed: start.changed.iter().map(|(id, columns)| (id.to_ascii_lowercase(), columns.clone())).collect(),
            went: Vec::new(),
            for_now: 0,
            recheck: selected.then(Recheck::default),
            went_rows: Vec::new(),
            resending: false,
            settled: Settled::default(),
            unsettled: 0,
            settled_all: false,
            consents: consents.clone(),
            mapping: start.settings.mapping.clone(),
            fingerprint: start.settings.mapping.fingerprint(),
            scope: start.settings.scope.clone(),
        }
    }

    pub(super) fn advance(&mut self, run: &mut Runner, now_ms: u64) {
        if self.ending.started() {
            return;
        }
        self.pages_to_read.read(run, self.pages.len());
        if self.pages_to_read.done() && self.pages.is_empty() && !run.busy() {
            if let Some(catch_up) = &mut self.catch_up {
                if !catch_up.finish(run) {
                    return;
                }
            }
            if let Some(recheck) = &mut self.recheck {
                if recheck.start(&self.went_rows, &self.consents, run) {
                    return;
                }
            }
            let mut tally = ::core::mem::take(&mut self.prefix);
            let mut extra = Map::new();
            if let Some(catch_up) = &mut self.catch_up {
                tally.merge(::core::mem::take(&mut catch_up.tally));
                self.for_now += catch_up.for_now;
                catch_up.columns(self.pages_to_read.delta.take(), self.for_now > 0, &mut extra);
                for note in &catch_up.notes {
                    self.ending.details.push(text(note, run.lang));
                }
            }
            // The watermark moves only when no contact failed for now; when some did, a base
            // read from the export's last run is kept as the watermark (this run moves that).
            let base = self.catch_up.as_ref().and_then(CatchUp::base_to_keep).filter(|_| self.for_now > 0);
            let watermark = self.watermark.filter(|_| self.for_now == 0).map(|w| run.dataverse_time(w));
            if let Some(watermark) = watermark.or(base) {
                extra.insert(integration::CATCH_UP_WATERMARK.into(), watermark.to_string().into());
            }
            self.ending.start(run, tally, extra, now_ms);
        }
    }

    /// Works on a page that arrived; `false` when there is none.
    pub(super) fn work(&mut self, run: &mut Runner, now_ms: u64) -> bool {
        let Some(page) = self.pages_to_read.arrived() else { return false };
        self.take_page(page, run, now_ms);
        true
    }

    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner, now_ms: u64) {
        let Some(result) = self.ending.on(ticket, result, run) else { return };
        let mut slot = Some(result);
        if self.catch_up.as_mut().is_some_and(|catch_up| catch_up.on(ticket, &mut slot, run)) {
            return;
        }
        let Some(result) = slot else { return };
        let checked = match self.recheck.as_mut() {
            None => Checked::Other(result),
            Some(recheck) => recheck.on(ticket, result),
        };
        let result = match checked {
            Checked::Other(result) => result,
            Checked::Waiting => return,
            Checked::Changed(ids) => {
                if !ids.is_empty() {
                    self.settled_all = true;
                    self.resending = true;
                    self.pages_to_read = Pages::new(selection(&self.consents, &ids));
                }
                return;
            }
        };
        let result = match self.pages_to_read.answer(ticket, result, run) {
            Answer::Taken => return,
            Answer::Untracked(error) => {
                match self.catch_up.as_mut().map(|catch_up| catch_up.untracked(error)) {
                    Some(Ok(pages)) => self.pages_to_read = pages,
                    Some(Err(error)) => run.fail(error.into()),
                    None => {}
                }
                return;
            }
            Answer::Other(result) => result,
        };
        if self.checkpoint == Some(ticket) {
            self.checkpoint = None;
            if let Err(error) = result {
                run.fail(error.into());
            }
            return;
        }
        let Some((index, step)) = self.tickets.remove(&ticket) else { return };
        match (step, result) {
            (Step::Holders, Ok(Output::Page(rows, next))) => {
                let page = self.page(index);
                page.holders.extend(rows);
                match next {
                    Some(next) => {
                        let ticket = run.issue(Request::Read(next));
                        self.tickets.insert(ticket, (index, Step::Holders));
                    }
                    None => {
                        page.reading -= 1;
                        if page.reading == 0 {
                            self.send(index, run, now_ms);
                        }
                    }
                }
                return;
            }
            (Step::Holders, Err(error)) => return run.fail(error.into()),
            (Step::Call(keys), Ok(Output::Upserted(outcome))) => {
                let fingerprint = self.fingerprint.clone();
                let page = self.page(index);
                page.calls -= 1;
                let mut taken = Vec::new();
                for key in keys {
                    let (row, details, warnings, base) = &page.sendable[key];
                    let (row, warnings, base, address) = (*row, warnings.clone(), base.clone(), details.address());
                    match outcome.of(details) {
                        Ok(_) if page.leaving[row] => {
                            let stamp = run.dataverse_time(now_ms);
                            page.status(row, SyncStatus::OutOfScope, Went::default(), None, stamp);
                        }
                        Ok(id) => {
                            let warned: Vec<String> =
                                warnings.iter().map(|w| text(&Message::Warning(w.clone()), run.lang)).collect();
                            let warned = (!warned.is_empty()).then(|| warned.join(" "));
                            let stamp = run.dataverse_time(now_ms);
                            let went = Went {
                                id: Some(id),
                                email: Some(&address),
                                base: base.as_deref(),
                                mapping: fingerprint.as_deref(),
                            };
                            page.status(row, SyncStatus::Synced, went, warned.as_deref(), stamp);
                            page.tally.sent(page.again[row]);
                            page.sent[row] = true;
                        }
                        Err(Refused::Taken { .. }) => taken.push(key),
                        Err(refused) => {
                            page.fail(row, text(&Message::from(refused), run.lang), run.dataverse_time(now_ms))
                        }
                    }
                }
                self.verify(index, taken, run);
            }
            (Step::Verify(keys), Ok(Output::Found(found))) => {
                let page = self.page(index);
                page.calls -= 1;
                let mut again = Vec::new();
                for key in keys {
                    let (row, details, ..) = &page.sendable[key];
                    let row = *row;
                    match unrenamed(details, page.rows[row].get(contact::SALESMANAGO_ID), &found) {
                        Some(plain) => {
                            page.sendable[key].1 = Arc::new(plain);
                            again.push(key);
                        }
                        None => {
                            let refused = Message::EmailTaken { email: details.address() };
                            page.fail(row, text(&refused, run.lang), run.dataverse_time(now_ms));
                        }
                    }
                }
                if !again.is_empty() {
                    self.call(index, again, run);
                }
            }
            (Step::Call(keys), Err(Error::Salesmanago(SmError::Rejected { .. }))) if keys.len() > 1 => {
                // SALESmanago refused the batch as a whole: halve it until the contact it
                // refuses is alone, so only that one fails.
                let (first, second) = keys.split_at(keys.len() / 2);
                for half in [first.to_vec(), second.to_vec()] {
                    self.call(index, half, run);
                }
                self.page(index).calls -= 1;
            }
            (Step::Call(keys) | Step::Verify(keys), Err(error)) => {
                if error.passes() {
                    self.for_now += keys.len() as u64;
                }
                let Some(reason) = run.reason(error) else { return };
                let page = self.page(index);
                page.calls -= 1;
                for key in keys {
                    let row = page.sendable[key].0;
                    page.fail(row, reason.clone(), run.dataverse_time(now_ms));
                }
            }
            (Step::Write, Ok(Output::Written(outcomes))) => {
                let page = self.page(index);
                let (failed, _) = settle(::core::mem::take(&mut page.writes), outcomes, false);
                for (row, reason) in failed {
                    // Only a Synced write counted the contact done; it is failed now.
                    let reason = text(&Message::Dataverse { detail: reason }, run.lang);
                    page.written_failed(row, reason);
                }
                self.complete(index, run, now_ms);
                return;
            }
            (Step::Write, Err(error)) => return run.fail(error.into()),
            (_, Ok(_)) => return run.mismatched(),
        }
        if self.pages.get(&index).is_some_and(|p| p.calls == 0) {
            self.write(index, run, now_ms);
        }
    }

    fn page(&mut self, index: usize) -> &mut Page {
        self.pages.get_mut(&index).unwrap_or_else(|| unreachable!("a page is kept until it is done"))
    }

    fn call(&mut self, index: usize, keys: Vec<usize>, run: &mut Runner) {
        let page = self.page(index);
        let details: Vec<Arc<UpsertDetails>> = keys.iter().map(|k| Arc::clone(&page.sendable[*k].1)).collect();
        page.calls += 1;
        let ticket = run.issue(Request::Call(Call::Upsert(BatchUpsert::of(details))));
        self.tickets.insert(ticket, (index, Step::Call(keys)));
    }

    /// Verifies the renames of these `sendable` entries that SALESmanago refused because another
    /// contact has the new address: `contact/basic` of the new and the previous addresses.
    fn verify(&mut self, index: usize, keys: Vec<usize>, run: &mut Runner) {
        for chunk in keys.chunks(LookupKind::BasicByEmail.max() / 2) {
            let page = self.page(index);
            let addresses: Vec<String> =
                chunk.iter().filter_map(|k| rename_lookup(&page.sendable[*k].1)).flatten().collect();
            let Some(lookup) = Lookup::batches(LookupKind::BasicByEmail, &addresses).into_iter().next() else {
                continue;
            };
            page.calls += 1;
            let ticket = run.issue(Request::Call(Call::Lookup(lookup)));
            self.tickets.insert(ticket, (index, Step::Verify(chunk.to_vec())));
        }
    }

    /// Takes a page: its rows, and first, when some of its contacts would be renamed, which
    /// contacts hold the addresses they would be renamed from (the sharing rule).
    fn take_page(&mut self, arrived: Arrived, run: &mut Runner, now_ms: u64) {
        let index = self.next_index;
        self.next_index += 1;
        let mut page = Page { place: arrived.place, ends_part: arrived.last, ..Page::default() };
        for value in arrived.rows {
            let value = match self.catch_up.as_mut() {
                None => value,
                Some(catch_up) => match catch_up.row(value) {
                    CatchRow::Send(value) => value,
                    CatchRow::Deleted(id) => {
                        catch_up.deleted(id);
                        continue;
                    }
                    CatchRow::Unchanged => continue,
                },
            };
            page.tally.total += 1;
            let kept = self.recheck.as_ref().and_then(|_| value.as_object().cloned());
            let Row::Read(parsed) = Row::of(value) else {
                page.tally.not_done(unreadable(run.lang));
                continue;
            };
            page.last = parsed.id();
            page.rows.push(parsed);
            page.kept.push(kept);
            page.sent.push(false);
            page.again.push(None);
            page.leaving.push(false);
        }
        page.previous = page.rows.iter().map(|row| rename_from(row, &Held::Unread)).collect();
        let mut previous: Vec<String> = page.previous.iter().flatten().cloned().collect();
        crate::core::sorted::sort(&mut previous);
        previous.dedup();
        for chunk in previous.chunks(HOLDERS_CHUNK) {
            page.reading += 1;
            let ticket = run.issue(Request::Read(holders(chunk)));
            self.tickets.insert(ticket, (index, Step::Holders));
        }
        let reading = page.reading;
        self.unsettled += 1;
        self.pages.insert(index, page);
        if reading == 0 {
            self.send(index, run, now_ms);
        }
    }

    /// Maps the page's contacts and sends them in batches.
    fn send(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let deliberate = &self.changed;
        let page = self.pages.get_mut(&index).unwrap_or_else(|| unreachable!("a page is kept until it is done"));
        for at in 0..page.rows.len() {
            let row = &page.rows[at];
            let previous_shared = page.previous[at]
                .as_ref()
                .is_some_and(|previous| held_by_another(&page.holders, &row.id().unwrap_or_default(), previous));
            match self.scope.standing(row) {
                Standing::In => {}
                Standing::Outside => {
                    page.tally.outside += 1;
                    continue;
                }
                Standing::Leaving => {
                    page.tally.outside += 1;
                    match opt_out(row).filter(|_| self.scope.leaving == Leaving::OptedOut) {
                        Some(details) => {
                            page.leaving[at] = true;
                            page.sendable.push((at, Arc::new(details), Vec::new(), None));
                        }
                        None => {
                            page.status(at, SyncStatus::OutOfScope, Went::default(), None, run.dataverse_time(now_ms))
                        }
                    }
                    continue;
                }
            }
            let changed = parsed_id(row).and_then(|id| deliberate.get(&id)).cloned().unwrap_or_default();
            let options = OutboundOptions { now_ms, changed, previous_shared, ..OutboundOptions::default() };
            match to_salesmanago(row, &options, &self.mapping) {
                Ok(outbound) => {
                    // Only "Export all" sends contacts for no change of their own.
                    page.again[at] = Again::of(row, self.fingerprint.as_deref()).filter(|_| self.all);
                    page.sendable.push((at, Arc::new(outbound.details), outbound.warnings, outbound.base));
                }
                Err(skip) => {
                    let reason = text(&Message::Skipped(skip), run.lang);
                    let stamp = run.dataverse_time(now_ms);
                    page.status(at, SyncStatus::Skipped, Went::default(), Some(&reason), stamp);
                    let listed = not_done(&page.rows[at], true, reason);
                    page.tally.not_done(listed);
                }
            }
        }
        page.holders = Vec::new();
        let groups = BatchUpsert::groups(page.sendable.iter().map(|(_, details, ..)| &**details));
        let sendable = !groups.is_empty();
        for group in groups {
            self.call(index, group, run);
        }
        if !sendable {
            self.write(index, run, now_ms);
        }
    }

    /// Writes the page's outcomes back, or completes it when nothing changes.
    fn write(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        self.settle(index);
        let page = self.page(index);
        if page.writes.is_empty() {
            return self.complete(index, run, now_ms);
        }
        let ticket = run.issue(Request::Write(rows(&page.writes)));
        self.tickets.insert(ticket, (index, Step::Write));
    }

    /// Page `index` has every answer from SALESmanago: its outcomes join [`Settled`] (the first
    /// pass's, of "Export selected").
    fn settle(&mut self, index: usize) {
        if self.recheck.is_none() || self.resending {
            return;
        }
        let Some(page) = self.pages.get(&index) else { return };
        let went = page.sent.iter().enumerate().filter(|(_, sent)| **sent);
        self.settled.went.extend(went.filter_map(|(at, _)| page.rows[at].id()));
        self.settled.not_done.extend(page.tally.not_done.iter().cloned());
        self.unsettled -= 1;
    }

    /// "Export selected": every contact's outcome in SALESmanago, once the first pass has read
    /// and sent them all ([`Settled`]).
    pub(super) fn settled(&self) -> Option<&Settled> {
        (self.settled_all || (self.recheck.is_some() && self.first_pass_done())).then_some(&self.settled)
    }

    fn first_pass_done(&self) -> bool {
        !self.resending && self.pages_to_read.done() && self.unsettled == 0
    }

    /// A page is done: its counts join the others; the checkpoint moves past the pages done
    /// in order.
    fn complete(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(page) = self.pages.remove(&index) else { return };
        if !self.all && self.watermark.is_none() {
            let sent = page.rows.into_iter().zip(page.kept).zip(page.sent).filter(|(_, sent)| *sent);
            for ((row, kept), _) in sent {
                let id = row.id().unwrap_or_default();
                self.went.push((id.clone(), row.version()));
                if let Some(map) = kept {
                    self.went_rows.push((id, map));
                }
            }
        }
        // A contact sent again counts once, as it first went.
        let tally = if self.resending { Tally::default() } else { page.tally };
        if !self.all {
            self.prefix.merge(tally);
        } else {
            // The checkpoint moves only past pages done in the read's order: parts are cut in
            // Dataverse's order of ids, so every contact up to `after` is done.
            self.ahead.insert(page.place, (tally, page.last, page.ends_part));
            while let Some((tally, last, ends_part)) = self.ahead.remove(&self.next_done) {
                self.prefix.merge(tally);
                self.after = last.or(self.after.take());
                self.next_done = self.next_done.after(ends_part);
                self.since_checkpoint += 1;
            }
        }
        run.handled = self.prefix.total + self.ahead.iter().map(|(_, (t, ..))| t.total).sum::<u64>();
        run.show(now_ms);
        // None once the last page is done: the summary, next, clears it.
        let last = self.pages_to_read.done() && self.pages.is_empty();
        if self.all && self.since_checkpoint >= CHECKPOINT_EVERY && self.checkpoint.is_none() && !last {
            if let Some(after) = &self.after {
                let t = &self.prefix;
                let checkpoint = object! {"after": after, "total": t.total, "done": t.done, "skipped": t.skipped(), "failed": t.failed(), "outside": t.outside, "again": t.again, "entered": t.entered};
                let mut columns = Map::new();
                columns.insert(JobColumns::Export.checkpoint_column().into(), checkpoint.to_string().into());
                self.checkpoint = Some(run.record(columns, false));
                self.since_checkpoint = 0;
            }
        }
    }
}

impl Page {
    /// Queues the status columns of row `at` (what it went as: its SALESmanago id and address,
    /// its new consent base, the mapping), where they change.
    fn status(&mut self, at: usize, status: SyncStatus, went: Went, error: Option<&str>, now_ms: u64) {
        if let Some(columns) = write_back(&self.rows[at], status, went, error, now_ms) {
            let id = self.rows[at].id().unwrap_or_default();
            self.writes.push(Write { key: at, id, columns });
        }
    }

    /// Row `at` failed in SALESmanago for `reason`.
    fn fail(&mut self, at: usize, reason: String, now_ms: u64) {
        // An opt-out of a contact leaving the scope was counted outside: it fails instead.
        if ::core::mem::take(&mut self.leaving[at]) {
            self.tally.outside -= 1;
        }
        self.status(at, SyncStatus::Failed, Went::default(), Some(&reason), now_ms);
        let listed = not_done(&self.rows[at], false, reason);
        self.tally.not_done(listed);
    }

    /// Dynamics refused the write-back of row `at`: a contact counted sent becomes failed.
    fn written_failed(&mut self, at: usize, reason: String) {
        if ::core::mem::take(&mut self.sent[at]) {
            let listed = not_done(&self.rows[at], false, reason);
            self.tally.sent_refused(self.again[at], listed);
        }
    }
}

/// The queries that read the contacts `ids` (their columns with `consents`), a chunk each.
pub(super) fn selection(consents: &[String], ids: &[String]) -> Vec<String> {
    ids.chunks(IN_CHUNK).map(|ids| contacts(consents, Some(&one_of(contact::ID, ids)))).collect()
}

/// The upsert that opts a contact leaving the scope out of e-mail and SMS, keyed by the
/// address SALESmanago knows it by; `None` for a contact SALESmanago has no id of (nothing to
/// opt out: an upsert would create it) or no valid address of.
fn opt_out(row: &ContactRow) -> Option<UpsertDetails> {
    row.get(contact::SALESMANAGO_ID)?;
    let address = row.get(contact::SALESMANAGO_EMAIL).or_else(|| row.get(contact::EMAIL))?;
    let email = email(address).ok()?;
    Some(UpsertDetails {
        contact: ContactData { email, ..ContactData::default() },
        force_opt_out: true,
        force_phone_opt_out: true,
        ..UpsertDetails::default()
    })
}

/// A row's id, in lower case.
fn parsed_id(row: &ContactRow) -> Option<String> {
    row.id().map(|id| id.to_ascii_lowercase())
}

impl Export {
    /// "Export selected": each contact sent, with its row's version.
    pub(super) fn went(&self) -> &[(String, Option<u64>)] {
        &self.went
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_whose_counts_do_not_add_up_is_not_resumed() {
        let record = |checkpoint: &str| {
            let mut record = Map::new();
            record.insert(JobColumns::Export.checkpoint_column().into(), checkpoint.into());
            record
        };
        let id = "0c03dc7d-6add-ea11-a813-000d3a21015b";
        let good = format!(
            r#"{{"after":"{id}","total":13,"done":7,"skipped":2,"failed":1,"outside":3,"again":4,"entered":2}}"#
        );
        let (after, tally) = read_checkpoint(&record(&good)).expect("a checkpoint that adds up resumes");
        assert_eq!((after.as_str(), tally.done, tally.skipped(), tally.failed()), (id, 7, 2, 1));
        assert_eq!(tally.outside, 3, "the contacts outside the scope so far are counted on");
        assert_eq!((tally.again, tally.entered), (4, 2), "the contacts sent again so far are counted on");
        let bad = format!(r#"{{"after":"{id}","total":13,"done":7,"skipped":2,"failed":2,"outside":3}}"#);
        assert!(read_checkpoint(&record(&bad)).is_none(), "a garbled checkpoint starts the export over");
        let injected = good.replace(id, &format!("{id} or true"));
        assert!(read_checkpoint(&record(&injected)).is_none(), "only an id goes into the next run's filter");
    }
}
