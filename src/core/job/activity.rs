//! Pull activity: SALESmanago's activity of every contact Dynamics knows by its SALESmanago id,
//! onto the contacts' timelines, as "SALESmanago activity" rows.
//!
//! Each page of contacts is read from SALESmanago as full cards (`listById`, 50 a call) and the
//! events the record keeps ([`Keeping`]) that happened since the watermark (less a day: an
//! event SALESmanago records late is still taken) become rows, each created only where its id
//! is not ([`crate::core::activity`]): a row is made once, whatever runs, repeats or is cut off.
//! Memory is a few pages', whatever the number of contacts. The watermark is SALESmanago's
//! time of the newest event seen, held before the oldest one whose row failed, and kept where
//! it was when a contact could not be read. Rows older than the days kept are deleted at the
//! end, so storage stays bounded.

use crate::core::activity::Keeping;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::has_value;
use crate::core::dataverse::schema::{activity, contact, integration};
use crate::core::i18n::{text, Message};
use crate::core::json::{Map, Value};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{Lookup, LookupKind};
use crate::core::sorted::SortedMap;
use crate::core::sync::{iso_datetime, Tally};
use crate::prelude::*;

use super::runner::{Call, Error, Output, Request, Runner};
use super::units::{hold, not_done, unreadable, Answer, Pages, Row};
use super::{Ending, JobFailure, Start, Ticket};

/// Rows created in one `$batch`.
const CREATE_BATCH: usize = 100;
/// How far before the watermark each pull looks again: SALESmanago may record an event after
/// a later one (an open it learns of late).
const OVERLAP_MS: u64 = 24 * 3600 * 1000;
/// Old rows deleted a round.
const PRUNE_PAGE: usize = 250;

/// A page of contacts on its way.
#[derive(Default)]
struct Unit {
    rows: Vec<ContactRow>,
    calls: usize,
    found: Vec<SmContact>,
    /// SALESmanago ids whose lookup failed, with the reason.
    unread: Vec<(String, String)>,
    /// Rows still to create: id, columns, the event's time, the contact's row.
    creating: Vec<(String, Map, u64, usize)>,
    /// The `$batch` under way: each row's event time and contact.
    sent: Vec<(u64, usize)>,
    /// Contacts listed as failed already.
    failed: Vec<usize>,
    /// Whether its contacts are counted and their rows planned.
    planned: bool,
    tally: Tally,
}

enum Step {
    Lookup(Vec<String>),
    Create,
}

/// Deleting rows older than the days kept, a page at a time.
enum Pruning {
    Idle,
    Listing(Ticket),
    Deleting(Vec<Ticket>),
    Done,
}

pub(super) struct Activity {
    keeping: Result<Keeping, String>,
    watermark: Option<u64>,
    /// Events from this time on are taken (planned on Dataverse's clock once the lease is held).
    since: Option<u64>,
    /// The oldest time kept, on Dataverse's clock.
    oldest: u64,
    pages: Pages,
    units: SortedMap<usize, Unit>,
    next_index: usize,
    tickets: SortedMap<Ticket, (usize, Step)>,
    tally: Tally,
    /// SALESmanago's time of the newest event taken.
    newest: Option<u64>,
    /// The oldest event whose row failed.
    hold: Option<u64>,
    /// A contact could not be read: its events are unknown, the watermark stays.
    stuck: bool,
    pruning: Pruning,
    ending: Ending,
}

impl Activity {
    pub(super) fn new(start: &Start, record: &Map) -> Activity {
        let watermark = record
            .get(integration::ACTIVITY_WATERMARK)
            .and_then(Value::as_str)
            .and_then(|w| w.trim().parse::<u64>().ok());
        Activity {
            keeping: Keeping::from_record(record),
            watermark,
            since: None,
            oldest: 0,
            pages: Pages::all(&[], Some(has_value(contact::SALESMANAGO_ID)), None),
            units: SortedMap::new(),
            next_index: 0,
            tickets: SortedMap::new(),
            tally: Tally::default(),
            newest: None,
            hold: None,
            stuck: false,
            pruning: Pruning::Idle,
            ending: Ending::new(start.job),
        }
    }

    /// What it takes, once the lease is held (its answers told Dataverse's clock): from the
    /// watermark less a day, never older than the days kept.
    fn plan(&mut self, run: &mut Runner, now_ms: u64) -> Option<Keeping> {
        let keeping = match &self.keeping {
            Ok(keeping) => *keeping,
            Err(name) => {
                let message = Message::ActivityKindUnknown { name: name.clone() };
                run.fail(JobFailure { message, kind: "settings" });
                return None;
            }
        };
        if self.since.is_none() && run.leased() {
            self.oldest = keeping.oldest(run.dataverse_earliest(now_ms));
            let after = self.watermark.map_or(0, |w| w.saturating_sub(OVERLAP_MS));
            self.since = Some(after.max(self.oldest));
        }
        self.since.map(|_| keeping)
    }

    pub(super) fn advance(&mut self, run: &mut Runner, now_ms: u64) {
        if self.ending.started() || self.plan(run, now_ms).is_none() {
            return;
        }
        self.pages.read(run, self.units.len());
        if !(self.pages.done() && self.units.is_empty() && !run.busy()) {
            return;
        }
        match self.pruning {
            Pruning::Idle => self.list_old(run),
            Pruning::Done => {
                let mut extra = Map::new();
                if let (false, Some(newest)) = (self.stuck, self.newest) {
                    let held = self.hold.map_or(newest, |h| newest.min(h.saturating_sub(1)));
                    // Never back: the next pull looks a day before it anyway.
                    let watermark = self.watermark.map_or(held, |w| w.max(held));
                    extra.insert(integration::ACTIVITY_WATERMARK.into(), watermark.to_string().into());
                }
                self.ending.start(run, ::core::mem::take(&mut self.tally), extra, now_ms);
            }
            Pruning::Listing(_) | Pruning::Deleting(_) => {}
        }
    }

    /// Works on a page of contacts that arrived; `false` when there is none.
    pub(super) fn work(&mut self, run: &mut Runner, _now_ms: u64) -> bool {
        if self.since.is_none() {
            return false;
        }
        let Some(values) = self.pages.arrived().map(|page| page.rows) else { return false };
        let index = self.next_index;
        self.next_index += 1;
        let mut unit = Unit::default();
        for value in values {
            match Row::of(value) {
                Row::Read(parsed) => unit.rows.push(parsed),
                Row::Unreadable => {
                    unit.tally.total += 1;
                    unit.tally.not_done(unreadable(run.lang));
                }
            }
        }
        let mut ids: Vec<String> =
            unit.rows.iter().filter_map(|r| r.get(contact::SALESMANAGO_ID)).map(|id| id.trim().to_owned()).collect();
        crate::core::sorted::sort(&mut ids);
        ids.dedup();
        for call in Lookup::batches(LookupKind::ActivityById, &ids) {
            let keys = call.keys().to_vec();
            let ticket = run.issue(Request::Call(Call::Lookup(call)));
            self.tickets.insert(ticket, (index, Step::Lookup(keys)));
            unit.calls += 1;
        }
        self.units.insert(index, unit);
        self.next_step(index, run);
        true
    }

    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner, now_ms: u64) {
        let Some(result) = self.ending.on(ticket, result, run) else { return };
        let result = match self.pages.answer(ticket, result, run) {
            Answer::Taken => return,
            Answer::Untracked(error) => return run.fail(error.into()),
            Answer::Other(result) => result,
        };
        if self.prunes(ticket) {
            return self.pruned(ticket, result, run);
        }
        let Some((index, step)) = self.tickets.remove(&ticket) else { return };
        let Some(unit) = self.units.get_mut(&index) else { return };
        match (step, result) {
            (Step::Lookup(_), Ok(Output::Found(found))) => {
                unit.calls -= 1;
                unit.found.extend(found);
            }
            (Step::Lookup(ids), Err(error)) => {
                let Some(reason) = run.reason(error) else { return };
                unit.calls -= 1;
                unit.unread.extend(ids.into_iter().map(|id| (id, reason.clone())));
            }
            (Step::Create, Ok(Output::Created(outcomes))) => {
                let mut outcomes = outcomes.into_iter();
                for (at, row) in ::core::mem::take(&mut unit.sent) {
                    match outcomes.next() {
                        Some(Ok(created)) => {
                            if created {
                                unit.tally.done += 1;
                            } else {
                                unit.tally.same += 1;
                            }
                        }
                        failed => {
                            let reason = match failed {
                                Some(Err(reason)) => reason,
                                _ => "Dynamics 365 did not say whether it saved this activity".to_owned(),
                            };
                            hold(&mut self.hold, at);
                            if !unit.failed.contains(&row) {
                                unit.failed.push(row);
                                let reason = text(&Message::Dataverse { detail: reason }, run.lang);
                                unit.tally.not_done(not_done(&unit.rows[row], false, reason));
                            }
                        }
                    }
                }
            }
            (Step::Create, Err(error)) => return run.fail(error.into()),
            (_, Ok(_)) => return run.mismatched(),
        }
        self.next_step(index, run);
        run.show(now_ms);
    }

    /// Moves a unit on once what it waits for is back: the cards, then the rows, a batch at a
    /// time; a unit done adds its counts.
    fn next_step(&mut self, index: usize, run: &mut Runner) {
        let (Some(unit), Some(since), Ok(keeping)) = (self.units.get_mut(&index), self.since, &self.keeping) else {
            return;
        };
        if unit.calls > 0 || !unit.sent.is_empty() {
            return;
        }
        if !unit.planned {
            unit.planned = true;
            self.newest = plan_rows(unit, since, keeping, self.newest, &mut self.stuck);
        }
        if unit.creating.is_empty() {
            let Some(unit) = self.units.remove(&index) else { return };
            self.tally.merge(unit.tally);
            run.handled = self.tally.total;
            return;
        }
        let take = unit.creating.len().min(CREATE_BATCH);
        let batch: Vec<(String, Map, u64, usize)> = unit.creating.drain(..take).collect();
        unit.sent = batch.iter().map(|(_, _, at, row)| (*at, *row)).collect();
        let rows = batch.into_iter().map(|(id, columns, _, _)| (id, columns)).collect();
        let ticket = run.issue(Request::Create(rows));
        self.tickets.insert(ticket, (index, Step::Create));
    }

    /// Lists a page of rows older than the days kept.
    fn list_old(&mut self, run: &mut Runner) {
        let filter = format!("{} lt {}", activity::ACTUAL_END, iso_datetime(self.oldest));
        let path = format!(
            "{}?$select={}&$filter={}&$top={PRUNE_PAGE}",
            activity::ENTITY_SET,
            activity::ID,
            crate::core::dataverse::query::encode(&filter)
        );
        self.pruning = Pruning::Listing(run.issue(Request::Row(path)));
    }

    /// Whether `ticket` is one of the pruning's.
    fn prunes(&self, ticket: Ticket) -> bool {
        match &self.pruning {
            Pruning::Listing(listing) => *listing == ticket,
            Pruning::Deleting(deletes) => deletes.contains(&ticket),
            Pruning::Idle | Pruning::Done => false,
        }
    }

    /// Takes an answer of the pruning.
    fn pruned(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner) {
        match &mut self.pruning {
            Pruning::Listing(_) => {
                let ids: Vec<String> = match result {
                    Ok(Output::Row(page)) => page
                        .get("value")
                        .map_or(&[][..], Value::items)
                        .iter()
                        .filter_map(|row| row.get(activity::ID).and_then(Value::as_str).map(str::to_owned))
                        .collect(),
                    Ok(_) => return run.mismatched(),
                    Err(error) => return run.fail(error.into()),
                };
                let deletes =
                    ids.into_iter().map(|id| run.issue(Request::Remove(format!("{}({id})", activity::ENTITY_SET))));
                let deletes: Vec<Ticket> = deletes.collect();
                self.pruning = if deletes.is_empty() { Pruning::Done } else { Pruning::Deleting(deletes) };
            }
            Pruning::Deleting(left) => {
                match result {
                    Ok(Output::Done) => {}
                    Ok(_) => return run.mismatched(),
                    Err(error) => return run.fail(error.into()),
                }
                left.retain(|t| *t != ticket);
                if left.is_empty() {
                    self.pruning = Pruning::Idle;
                }
            }
            Pruning::Idle | Pruning::Done => {}
        }
    }
}

/// Counts a unit's contacts and plans the rows of their events kept since `since`; the newest
/// event taken, given the newest so far.
fn plan_rows(unit: &mut Unit, since: u64, keeping: &Keeping, newest: Option<u64>, stuck: &mut bool) -> Option<u64> {
    let mut newest = newest;
    for (row, parsed) in unit.rows.iter().enumerate() {
        unit.tally.total += 1;
        let Some(contact_id) = parsed.id() else { continue };
        let sm_id = parsed.get(contact::SALESMANAGO_ID).map(str::trim).unwrap_or_default();
        if let Some((_, reason)) = unit.unread.iter().find(|(id, _)| id == sm_id) {
            *stuck = true;
            unit.failed.push(row);
            unit.tally.not_done(not_done(parsed, false, reason.clone()));
            continue;
        }
        let Some(card) = unit.found.iter().find(|c| c.id.as_deref() == Some(sm_id)) else {
            unit.tally.missing += 1;
            continue;
        };
        for event in card.activity.iter().filter(|e| e.at_ms >= since && keeping.kinds.keeps(e.kind)) {
            newest = Some(newest.map_or(event.at_ms, |n| n.max(event.at_ms)));
            let (id, columns) = event.row(&contact_id);
            unit.creating.push((id, columns, event.at_ms, row));
        }
    }
    unit.found = Vec::new();
    newest
}
