//! Pull consents: each contact with an e-mail compared with SALESmanago, page by page, and
//! only its differing opt-outs and consents written.

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{contacts, has_value};
use crate::core::dataverse::schema::contact;
use crate::core::i18n::{text, Message};
use crate::core::json::{Map, Value};
use crate::core::mapping::normalize::email;
use crate::core::mapping::{from_salesmanago, Skip};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::operation::{Lookup, LookupKind};
use crate::core::sorted::SortedMap;
use crate::core::sync::{consents_only, Tally};

use super::runner::{Call, Error, Output, Request, Runner};
use super::units::{not_done, rows, unreadable, Answer, Pages, Patching, Row, Write};
use super::{Ending, Start, Ticket};

#[derive(Default)]
struct Page {
    rows: Vec<ContactRow>,
    /// Row index and normalised e-mail of each row with a valid one.
    valid: Vec<(usize, String)>,
    found: SortedMap<String, SmContact>,
    /// E-mails whose lookup failed, with the reason.
    unknown: SortedMap<String, String>,
    calls: usize,
    patching: Patching,
    tally: Tally,
}

enum Step {
    Lookup(Vec<String>),
    Write,
}

pub(super) struct Consents {
    pages_to_read: Pages,
    next_index: usize,
    pages: SortedMap<usize, Page>,
    tickets: SortedMap<Ticket, (usize, Step)>,
    tally: Tally,
    ending: Ending,
}

impl Consents {
    pub(super) fn new(start: &Start) -> Consents {
        Consents {
            pages_to_read: Pages::new([contacts(&start.consents, Some(&has_value(contact::EMAIL)))]),
            next_index: 0,
            pages: SortedMap::new(),
            tickets: SortedMap::new(),
            tally: Tally::default(),
            ending: Ending::new(start.job),
        }
    }

    pub(super) fn advance(&mut self, run: &mut Runner, now_ms: u64) {
        if self.ending.started() {
            return;
        }
        self.pages_to_read.read(run, self.pages.len());
        if self.pages_to_read.done() && self.pages.is_empty() && !run.busy() {
            self.ending.start(run, std::mem::take(&mut self.tally), Map::new(), now_ms);
        }
    }

    /// Works on a page that arrived; `false` when there is none.
    pub(super) fn work(&mut self, run: &mut Runner, now_ms: u64) -> bool {
        let Some(values) = self.pages_to_read.arrived() else { return false };
        self.take_page(values, run, now_ms);
        true
    }

    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner, now_ms: u64) {
        if self.ending.on(ticket, &result, run) {
            return;
        }
        let result = match self.pages_to_read.answer(ticket, result, run) {
            Answer::Taken => return,
            Answer::Other(result) => result,
        };
        let Some((index, step)) = self.tickets.remove(&ticket) else { return };
        let Some(page) = self.pages.get_mut(&index) else { return };
        match (step, result) {
            (Step::Lookup(_), Ok(Output::Found(found))) => {
                page.calls -= 1;
                for sm in found {
                    if let Some(address) = sm.email.as_deref().map(str::to_ascii_lowercase) {
                        page.found.insert(address, sm);
                    }
                }
            }
            (Step::Lookup(emails), Err(error)) => {
                let Some(reason) = run.reason(error) else { return };
                page.calls -= 1;
                for address in emails {
                    page.unknown.insert(address, reason.clone());
                }
            }
            (Step::Write, Ok(Output::Written(outcomes))) => {
                for (row, reason) in page.patching.answer(outcomes) {
                    let reason = text(&Message::Dataverse { detail: reason }, run.lang);
                    page.tally.done -= 1;
                    let listed = not_done(&page.rows[row], false, reason);
                    page.tally.not_done(listed);
                }
                return self.write(index, run, now_ms);
            }
            (Step::Write, Err(error)) => return run.fail(error.into()),
            (_, Ok(_)) => unreachable!("each request yields its own output"),
        }
        if page.calls == 0 {
            self.compare(index, run, now_ms);
        }
    }

    fn take_page(&mut self, values: Vec<Value>, run: &mut Runner, now_ms: u64) {
        let index = self.next_index;
        self.next_index += 1;
        let mut page = Page::default();
        for value in values {
            page.tally.total += 1;
            let Row::Read(parsed, _) = Row::of(value) else {
                page.tally.not_done(unreadable(run.lang));
                continue;
            };
            let raw = parsed.get(contact::EMAIL).unwrap_or_default().to_owned();
            match email(&raw) {
                Ok(address) => page.valid.push((page.rows.len(), address)),
                Err(problem) => {
                    let reason = text(&Message::Skipped(Skip::InvalidEmail { email: raw, problem }), run.lang);
                    page.tally.not_done(not_done(&parsed, true, reason));
                }
            }
            page.rows.push(parsed);
        }
        let mut emails: Vec<String> = page.valid.iter().map(|(_, e)| e.clone()).collect();
        emails.sort_unstable();
        emails.dedup();
        for call in Lookup::batches(LookupKind::BasicByEmail, &emails) {
            let keys = call.keys().to_vec();
            let ticket = run.issue(Request::Call(Call::Lookup(call)));
            self.tickets.insert(ticket, (index, Step::Lookup(keys)));
            page.calls += 1;
        }
        let calls = page.calls;
        self.pages.insert(index, page);
        if calls == 0 {
            self.compare(index, run, now_ms);
        }
    }

    /// Every lookup of the page is back: the differing consents are written.
    fn compare(&mut self, index: usize, run: &mut Runner, now_ms: u64) {
        let Some(page) = self.pages.get_mut(&index) else { return };
        for (row, address) in std::mem::take(&mut page.valid) {
            let parsed = &page.rows[row];
            if let Some(reason) = page.unknown.get(&address) {
                let listed = not_done(parsed, false, reason.clone());
                page.tally.not_done(listed);
                continue;
            }
            let Some(sm) = page.found.get(&address) else {
                page.tally.missing += 1;
                continue;
            };
            let patch = consents_only(from_salesmanago(parsed, sm));
            // A contact whose values already agree may still get its consent base.
            if patch.is_empty() {
                page.tally.same += 1;
            } else {
                page.tally.done += 1;
            }
            if let Some(columns) = patch.write() {
                page.patching.writes.push(Write { key: row, id: parsed.id().unwrap_or_default(), columns });
            }
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
        self.tickets.insert(ticket, (index, Step::Write));
    }
}
