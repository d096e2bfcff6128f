//! What the jobs share about contacts: reading a page's rows one by one, and writing columns
//! so that a column Dataverse refuses does not hold back the others.

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::schema::contact;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};
use crate::core::sync::NotDone;

use super::runner::{Error, Output, Request, Runner};
use super::{Read, Ticket};
use crate::core::dataverse::error::DvError;
use crate::core::dataverse::query::{contacts, is_guid, keys, within};

/// Where a page lies in a read: its part and its place in the part. When a read of every
/// contact is cut into parts ([`Pages::all`]), parts are numbered in Dataverse's order of ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Place {
    pub(super) part: usize,
    pub(super) page: usize,
}

impl Place {
    /// The page after this one: the next of its part, or the first of the next part when this
    /// was its part's last.
    pub(super) fn after(self, last: bool) -> Place {
        match last {
            true => Place { part: self.part + 1, page: 0 },
            false => Place { part: self.part, page: self.page + 1 },
        }
    }
}

/// A page that arrived.
pub(super) struct Arrived {
    pub(super) place: Place,
    /// The last page of its part.
    pub(super) last: bool,
    pub(super) rows: Vec<Value>,
}

/// The pages of contacts a job reads: its queries (parts), each followed by its pages' next
/// links. Parts are read side by side, as far as the job may hold pages ([`Runner::depth`]: so
/// reads never starve the write-backs); a change-tracked read goes one page after the other.
/// A page that arrives is kept until the job works on it, after the next reads have gone out,
/// so the reads never wait for the work.
pub(super) struct Pages {
    /// What is still to read: a part's first page, or a part's next page (first in line).
    queries: VecDeque<(Place, String)>,
    /// The reads under way, with the page each reads.
    reading: Vec<(Ticket, Place)>,
    arrived: VecDeque<Arrived>,
    /// Change-tracked reads (`Prefer: odata.track-changes`).
    tracked: bool,
    /// The delta link the last tracked page carried.
    pub(super) delta: Option<String>,
    /// A read of every contact: where its ids cut it into parts.
    cuts: Option<Cuts>,
    /// Parts made so far.
    parts: usize,
}

/// Cuts a read of every contact into parts of [`Read::PAGE`] contacts: it lists their ids
/// alone ([`Read::KEYS_PAGE`] a page, one page after the other, a little ahead of the parts'
/// reads), and every [`Read::PAGE`]-th id ends a part. The parts are then read side by side.
/// Ids are not spread evenly (Dataverse's own are sequential, and cluster by the server that
/// made them), so they are listed rather than guessed. A contact made after the listing falls
/// in the part around its id, or in the last, which has no end.
struct Cuts {
    /// What every contact read passes.
    filter: Option<String>,
    /// The columns the parts read beside the standard ones (consents, the mapping's).
    consents: Vec<String>,
    /// The id the next part starts after.
    after: Option<String>,
    /// The next page of ids; `None` once the last has been read.
    next: Option<String>,
    reading: Option<Ticket>,
    /// Ids listed since the last cut.
    since: usize,
}

/// What an answer was, seen by [`Pages`].
pub(super) enum Answer {
    /// A read's answer: its page is kept, or the read failed and so did the job.
    Taken,
    /// A tracked read refused: its link expired, or the table does not track changes. The job
    /// decides what to read instead.
    Untracked(Error),
    /// Not a read's answer.
    Other(Result<Output, Error>),
}

impl Pages {
    /// A part for each of `queries`.
    pub(super) fn new(queries: Vec<String>) -> Pages {
        let queries: VecDeque<(Place, String)> =
            queries.into_iter().enumerate().map(|(part, query)| (Place { part, page: 0 }, query)).collect();
        Pages {
            parts: queries.len(),
            queries,
            reading: Vec::new(),
            arrived: VecDeque::new(),
            tracked: false,
            delta: None,
            cuts: None,
        }
    }

    /// Every contact `filter` keeps (with the columns of `consents`), after the id `after` when
    /// given, in parts cut by their ids ([`Cuts`]).
    pub(super) fn all(consents: &[String], filter: Option<String>, after: Option<String>) -> Pages {
        let next = Some(keys(within(filter.as_deref(), after.as_deref(), None).as_deref()));
        let cuts = Cuts { filter, consents: consents.to_vec(), after, next, reading: None, since: 0 };
        Pages { cuts: Some(cuts), ..Pages::new(Vec::new()) }
    }

    /// The rows the host read already, as one page that arrived.
    pub(super) fn read_already(rows: Vec<Value>) -> Pages {
        let mut pages = Pages::new(Vec::new());
        pages.arrived.push_back(Arrived { place: Place::default(), last: true, rows });
        pages
    }

    /// A change-tracked read of `query`, and of the pages after it.
    pub(super) fn tracked(query: String) -> Pages {
        Pages { tracked: true, ..Pages::new(vec![query]) }
    }

    /// Asks for the next pages (and ids), as far as the job has room for them beside the
    /// `in_progress` pages.
    pub(super) fn read(&mut self, run: &mut Runner, in_progress: usize) {
        if let Some(cuts) = self.cuts.as_mut().filter(|c| c.reading.is_none() && self.queries.len() < run.limit()) {
            if let Some(query) = cuts.next.take() {
                cuts.reading = Some(run.issue(Request::Keys(query)));
            }
        }
        let (most, depth) = match self.tracked {
            true => (1, run.limit()),
            false => (usize::MAX, run.depth()),
        };
        while self.reading.len() < most && in_progress + self.arrived.len() + self.reading.len() < depth {
            let Some((place, query)) = self.queries.pop_front() else { break };
            let request = if self.tracked { Request::Tracked(query) } else { Request::Read(query) };
            self.reading.push((run.issue(request), place));
        }
    }

    /// Whether every page has been read and handed over.
    pub(super) fn done(&self) -> bool {
        let listed = self.cuts.as_ref().is_none_or(|c| c.reading.is_none() && c.next.is_none());
        listed && self.reading.is_empty() && self.queries.is_empty() && self.arrived.is_empty()
    }

    /// A page that arrived, to work on.
    pub(super) fn arrived(&mut self) -> Option<Arrived> {
        self.arrived.pop_front()
    }

    /// Takes an answer: a page is kept (its next page queued first), or the answer is given
    /// back when it is not a read's.
    pub(super) fn answer(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner) -> Answer {
        if self.cuts.as_ref().is_some_and(|c| c.reading == Some(ticket)) {
            match result {
                Ok(Output::Page(values, next)) => self.cut(&values, next),
                Err(error) => run.fail(error.into()),
                Ok(_) => run.mismatched(),
            }
            return Answer::Taken;
        }
        let Some(at) = self.reading.iter().position(|(t, _)| *t == ticket) else { return Answer::Other(result) };
        let (_, place) = self.reading.swap_remove(at);
        let (rows, next) = match result {
            Ok(Output::Page(values, next)) => (values, next),
            Ok(Output::Tracked(values, next, delta)) => {
                self.delta = delta.or(self.delta.take());
                (values, next)
            }
            Err(error @ Error::Dataverse(DvError::DeltaExpired | DvError::NotTracked)) if self.tracked => {
                return Answer::Untracked(error);
            }
            Err(error) => {
                run.fail(error.into());
                return Answer::Taken;
            }
            Ok(_) => {
                run.mismatched();
                return Answer::Taken;
            }
        };
        let last = next.is_none();
        if let Some(next) = next {
            self.queries.push_front((place.after(false), next));
        }
        self.arrived.push_back(Arrived { place, last, rows });
        Answer::Taken
    }

    /// A page of ids listed: a part ends at every [`Read::PAGE`]-th, and the last part, with
    /// no end, follows the last page.
    fn cut(&mut self, values: &[Value], next: Option<String>) {
        let Pages { cuts: Some(cuts), queries, parts, .. } = self else { return };
        cuts.reading = None;
        let mut part = |cuts: &mut Cuts, upto: Option<String>| {
            let filter = within(cuts.filter.as_deref(), cuts.after.as_deref(), upto.as_deref());
            queries.push_back((Place { part: *parts, page: 0 }, contacts(&cuts.consents, filter.as_deref())));
            *parts += 1;
            cuts.after = upto;
        };
        for value in values {
            cuts.since += 1;
            let id = value.get(contact::ID).and_then(Value::as_str).filter(|id| is_guid(id));
            if let Some(id) = id.filter(|_| cuts.since >= Read::PAGE as usize) {
                part(cuts, Some(id.to_ascii_lowercase()));
                cuts.since = 0;
            }
        }
        if next.is_none() {
            part(cuts, None);
        }
        cuts.next = next;
    }
}

/// A row of a page: read, or why not (with its index in the page).
pub(super) enum Row {
    Read(ContactRow),
    Unreadable,
}

impl Row {
    /// Reads one row as it came, taking it; a row without an object shape or an id fails alone.
    pub(super) fn of(value: Value) -> Row {
        match value {
            Value::Object(map) => {
                let parsed = ContactRow::from_map(map);
                if parsed.id().is_some() {
                    Row::Read(parsed)
                } else {
                    Row::Unreadable
                }
            }
            _ => Row::Unreadable,
        }
    }
}

/// Keeps a watermark before `at`: the earliest of the times held so far.
pub(super) fn hold(slot: &mut Option<u64>, at: u64) {
    *slot = Some(slot.map_or(at, |h| h.min(at)));
}

/// A contact the job could not handle, for the CSV.
pub(super) fn not_done(row: &ContactRow, skipped: bool, reason: String) -> NotDone {
    NotDone {
        id: row.id().unwrap_or_default(),
        email: row.get(contact::EMAIL).unwrap_or_default().to_owned(),
        name: row.get(contact::FULL_NAME).unwrap_or_default().to_owned(),
        skipped,
        reason,
    }
}

/// A row the engine could not read.
pub(super) fn unreadable(lang: Lang) -> NotDone {
    NotDone {
        id: String::new(),
        email: String::new(),
        name: String::new(),
        skipped: false,
        reason: text(&Message::Unreadable, lang),
    }
}

/// One contact's columns to write; `key` names the contact in its unit.
#[derive(Debug, Clone)]
pub(super) struct Write {
    pub(super) key: usize,
    pub(super) id: String,
    pub(super) columns: Map,
}

/// The `$batch` rows of `writes`.
pub(super) fn rows(writes: &[Write]) -> Vec<(String, Map)> {
    writes.iter().map(|w| (w.id.clone(), w.columns.clone())).collect()
}

/// The outcome of a `$batch`: each failed contact's key with Dataverse's reason, and, when
/// `split`, the writes to try again one column each (the first refused column must not hold
/// back the others, an opt-out above all). A missing outcome counts as a failure.
pub(super) fn settle(
    writes: Vec<Write>,
    outcomes: Vec<Result<(), String>>,
    split: bool,
) -> (Vec<(usize, String)>, Vec<Write>) {
    let mut failed = Vec::new();
    let mut again = Vec::new();
    let mut outcomes = outcomes.into_iter();
    for write in writes {
        let reason = match outcomes.next() {
            Some(Ok(())) => continue,
            Some(Err(reason)) => reason,
            None => "Dynamics 365 did not say whether it saved this contact".to_owned(),
        };
        if split && write.columns.len() > 1 {
            // Opt-outs first, so they are written whatever happens to the rest.
            let opt_out = |c: &str| c == contact::DO_NOT_BULK_EMAIL || c == contact::DO_NOT_SMS;
            let (first, rest): (Vec<_>, Vec<_>) = write.columns.iter().partition(|(c, _)| opt_out(c));
            for (column, value) in first.into_iter().chain(rest) {
                // The consent base says what both sides hold: never written without the values.
                if column == contact::CONSENT_BASE {
                    continue;
                }
                let mut one = Map::new();
                one.insert(column.clone(), value.clone());
                again.push(Write { key: write.key, id: write.id.clone(), columns: one });
            }
        }
        failed.push((write.key, reason));
    }
    (failed, again)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::Command;
    use crate::core::i18n::Lang;
    use crate::core::integration::Settings;
    use crate::core::job::{Action, Reply};
    use crate::core::json::json;
    use crate::core::salesmanago::{ApiSecret, Client, Credentials, Endpoint, HttpResponse};

    /// A runner with `concurrency` requests in flight to each service.
    fn runner(concurrency: u32) -> Runner {
        let mut record = Map::new();
        record.insert("new_concurrency".into(), concurrency.into());
        let credentials =
            Credentials { client_id: "c".into(), api_secret: ApiSecret::new("s"), owner: "o@example.com".into() };
        let endpoint = Endpoint::parse("https://app3.salesmanago.pl").unwrap();
        let settings = Settings::with(&record, Client { endpoint, credentials, relay: None }).unwrap();
        Runner::for_command(Command::ExportAll, Lang::En, &settings, 1)
    }

    /// The reads the runner hands the host now.
    fn reads(run: &mut Runner) -> Vec<(Ticket, Read)> {
        ::core::iter::from_fn(|| run.poll(0))
            .filter_map(|action| match action {
                Action::Read { ticket, read } => Some((ticket, read)),
                _ => None,
            })
            .collect()
    }

    /// Answers `ticket` with these rows (and a next link when `more`).
    fn answer(pages: &mut Pages, run: &mut Runner, ticket: Ticket, rows: Vec<Value>, more: bool) {
        let mut body = Map::new();
        body.insert("value".into(), Value::Array(rows));
        if more {
            body.insert("@odata.nextLink".into(), "https://org/api/data/v9.2/contacts?$skiptoken=x".into());
        }
        let response =
            HttpResponse { status: 200, retry_after: None, body: Value::Object(body).to_string(), date: None };
        let output = run.answer(ticket, Reply::Dataverse(Ok(response)), 0).expect("an answer to a read");
        assert!(matches!(pages.answer(ticket, output, run), Answer::Taken));
    }

    fn id(n: usize) -> String {
        format!("{n:08x}-0000-ef11-a813-000d3a21015b")
    }

    fn ids(from: usize, count: usize) -> Vec<Value> {
        (from..from + count).map(|n| json!({ "contactid": id(n) })).collect()
    }

    #[test]
    fn a_read_of_every_contact_is_cut_at_every_page_th_id_and_its_parts_read_side_by_side() {
        let mut run = runner(2);
        let page = Read::PAGE as usize;
        let mut pages = Pages::all(&[], Some("emailaddress1 ne null".into()), Some(id(0)));
        pages.read(&mut run, 0);
        let first = reads(&mut run);
        assert_eq!(first.len(), 1, "the ids first, alone");
        let (ticket, read) = &first[0];
        assert_eq!(read.page, Read::KEYS_PAGE);
        assert!(read.prefer().contains("odata.maxpagesize=5000"), "{}", read.prefer());
        assert_eq!(read.query, keys(Some(&format!("(emailaddress1 ne null) and contactid gt {}", id(0)))));

        // 2.5 pages of ids, and more to list: two parts end at the 400th and the 800th.
        let mut listed = ids(1, 2 * page + page / 2);
        listed.insert(page - 1, json!({ "contactid": "not a guid" }));
        answer(&mut pages, &mut run, *ticket, listed, true);
        pages.read(&mut run, 0);
        let parts = reads(&mut run);
        let queries: Vec<&str> = parts.iter().map(|(_, read)| read.query.as_str()).collect();
        let bounds = |after: &str, upto: Option<&str>| {
            contacts(&[], within(Some("emailaddress1 ne null"), Some(after), upto).as_deref())
        };
        // Two parts, read side by side in their order (two requests in flight); a non-GUID id
        // counts, but ends no part. The next ids wait while two parts are still to read.
        assert_eq!(queries, [bounds(&id(0), Some(&id(page))), bounds(&id(page), Some(&id(2 * page)))]);
        assert!(parts.iter().all(|(_, read)| read.page == Read::PAGE && !read.track));
        assert!(!pages.done());

        // The first part answers with a next page: fewer than two reads wait, so the next ids
        // are listed first, then that page is read (two requests in flight at most).
        answer(&mut pages, &mut run, parts[0].0, ids(1, page - 1), true);
        let got = pages.arrived().expect("the page");
        assert_eq!((got.place, got.last, got.rows.len()), (Place { part: 0, page: 0 }, false, page - 1));
        pages.read(&mut run, 1);
        let next = reads(&mut run);
        assert_eq!(next.iter().map(|(_, read)| read.page).collect::<Vec<_>>(), [Read::KEYS_PAGE]);
        answer(&mut pages, &mut run, parts[1].0, ids(page + 1, page), false);
        pages.read(&mut run, 2);
        let after = reads(&mut run);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].1.query, "?$skiptoken=x", "the part's next page, before any other part");
    }

    #[test]
    fn the_last_part_has_no_end_and_places_follow_the_parts() {
        let mut run = runner(4);
        let page = Read::PAGE as usize;
        let mut pages = Pages::all(&[], None, None);
        pages.read(&mut run, 0);
        let (ticket, read) = reads(&mut run).remove(0);
        assert_eq!(read.query, keys(None));
        answer(&mut pages, &mut run, ticket, ids(1, page + 1), false);
        pages.read(&mut run, 0);
        let parts = reads(&mut run);
        let queries: Vec<String> = parts.iter().map(|(_, read)| read.query.clone()).collect();
        let part = |after: Option<&str>, upto: Option<&str>| contacts(&[], within(None, after, upto).as_deref());
        assert_eq!(queries, [part(None, Some(&id(page))), part(Some(&id(page)), None)]);
        // The second part answers first: each page keeps its place.
        answer(&mut pages, &mut run, parts[1].0, ids(page + 1, 1), false);
        answer(&mut pages, &mut run, parts[0].0, ids(1, page), false);
        let places: Vec<(Place, bool)> = ::core::iter::from_fn(|| pages.arrived()).map(|a| (a.place, a.last)).collect();
        assert_eq!(places, [(Place { part: 1, page: 0 }, true), (Place { part: 0, page: 0 }, true)]);
        assert!(pages.done());
        assert_eq!(Place { part: 0, page: 0 }.after(true), Place { part: 1, page: 0 });
        assert_eq!(Place { part: 0, page: 0 }.after(false), Place { part: 0, page: 1 });
    }

    #[test]
    fn no_contact_at_all_is_one_empty_part() {
        let mut run = runner(4);
        let mut pages = Pages::all(&[], None, None);
        pages.read(&mut run, 0);
        let (ticket, _) = reads(&mut run).remove(0);
        answer(&mut pages, &mut run, ticket, Vec::new(), false);
        pages.read(&mut run, 0);
        let parts = reads(&mut run);
        assert_eq!(parts.len(), 1);
        answer(&mut pages, &mut run, parts[0].0, Vec::new(), false);
        assert!(pages.arrived().is_some_and(|a| a.rows.is_empty() && a.last));
        assert!(pages.done());
    }

    fn write(key: usize, columns: Value) -> Write {
        Write { key, id: format!("c{key}"), columns: columns.as_object().unwrap().clone() }
    }

    #[test]
    fn a_refused_write_is_tried_again_column_by_column_opt_outs_first() {
        let writes = vec![
            write(0, json!({"firstname": "x"})),
            write(1, json!({"firstname": "long", "donotbulkemail": true, "address1_city": "K"})),
            write(2, json!({"firstname": "ok"})),
        ];
        let (failed, again) = settle(writes, vec![Ok(()), Err("too long".into())], true);
        assert_eq!(
            failed,
            [(1, "too long".into()), (2, "Dynamics 365 did not say whether it saved this contact".into())]
        );
        let columns: Vec<_> = again.iter().map(|w| (w.key, w.columns.keys().next().unwrap().clone())).collect();
        assert_eq!(columns[0], (1, "donotbulkemail".into()));
        assert_eq!(columns.len(), 3, "one a column; a single-column write is not split: {columns:?}");
        let (_, none) = settle(vec![write(1, json!({"a": 1, "b": 2}))], vec![Err("x".into())], false);
        assert!(none.is_empty());
    }
}

/// Contact patches on their way to Dataverse: one `$batch`, then, for the contacts it
/// refused, one more with each of their columns alone.
#[derive(Default)]
pub(super) struct Patching {
    /// The writes of the `$batch` to send next.
    pub(super) writes: Vec<Write>,
    /// Whether those are the column-by-column retry.
    pub(super) split: bool,
}

impl Patching {
    /// Takes a `$batch`'s outcomes: the contacts that failed for good, with the reason. After
    /// the first batch, [`Patching::writes`] holds the column-by-column retry, if any.
    pub(super) fn answer(&mut self, outcomes: Vec<Result<(), String>>) -> Vec<(usize, String)> {
        let first = !self.split;
        let (failed, again) = settle(::core::mem::take(&mut self.writes), outcomes, first);
        let mut out: Vec<(usize, String)> = Vec::new();
        for (key, reason) in failed {
            let retried = again.iter().any(|w| w.key == key);
            if !retried && !out.iter().any(|(k, _)| *k == key) {
                out.push((key, reason));
            }
        }
        self.writes = again;
        self.split = first;
        out
    }
}
