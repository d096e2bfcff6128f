//! What the jobs share about contacts: reading a page's rows one by one, and writing columns
//! so that a column Dataverse refuses does not hold back the others.

use std::collections::VecDeque;

use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::schema::contact;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};
use crate::core::sync::NotDone;

use super::runner::{Error, Output, Request, Runner};
use super::{JobFailure, Ticket};
use crate::core::dataverse::error::DvError;

/// The pages of contacts a job reads, one after the other: its queries, each followed by its
/// pages' next links. A page that arrives is kept until the job works on it, after the next
/// read has gone out, so the reads never wait for the work.
pub(super) struct Pages {
    queries: VecDeque<String>,
    reading: Option<Ticket>,
    arrived: Option<Vec<Value>>,
    /// Change-tracked reads (`Prefer: odata.track-changes`).
    tracked: bool,
    /// The delta link the last tracked page carried.
    pub(super) delta: Option<String>,
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
    pub(super) fn new(queries: impl IntoIterator<Item = String>) -> Pages {
        Pages { queries: queries.into_iter().collect(), reading: None, arrived: None, tracked: false, delta: None }
    }

    /// The rows the host read already, as one page that arrived.
    pub(super) fn read_already(rows: Vec<Value>) -> Pages {
        Pages { arrived: Some(rows), ..Pages::new([]) }
    }

    /// A change-tracked read of `query`, and of the pages after it.
    pub(super) fn tracked(query: String) -> Pages {
        Pages { tracked: true, ..Pages::new([query]) }
    }

    /// Asks for the next page, unless one is on its way or the job has no room for it beside
    /// the `in_progress` pages.
    pub(super) fn read(&mut self, run: &mut Runner, in_progress: usize) {
        let held = in_progress + usize::from(self.arrived.is_some());
        if self.reading.is_none() && held < run.limit() {
            if let Some(query) = self.queries.pop_front() {
                let request = if self.tracked { Request::Tracked(query) } else { Request::Read(query) };
                self.reading = Some(run.issue(request));
            }
        }
    }

    /// Whether every page has been read and handed over.
    pub(super) fn done(&self) -> bool {
        self.reading.is_none() && self.queries.is_empty() && self.arrived.is_none()
    }

    /// The page that arrived, to work on.
    pub(super) fn arrived(&mut self) -> Option<Vec<Value>> {
        self.arrived.take()
    }

    /// Takes an answer: a page is kept (its next page queued first), or the answer is given
    /// back when it is not a read's.
    pub(super) fn answer(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner) -> Answer {
        if self.reading != Some(ticket) {
            return Answer::Other(result);
        }
        self.reading = None;
        match result {
            Ok(Output::Page(values, next)) => {
                if let Some(next) = next {
                    self.queries.push_front(next);
                }
                self.arrived = Some(values);
            }
            Ok(Output::Tracked(values, next, delta)) => {
                if let Some(next) = next {
                    self.queries.push_front(next);
                }
                self.delta = delta.or(self.delta.take());
                self.arrived = Some(values);
            }
            Err(error @ Error::Dataverse(DvError::DeltaExpired | DvError::NotTracked)) if self.tracked => {
                return Answer::Untracked(error);
            }
            Err(error) => run.fail(error.into()),
            Ok(_) => run.fail(JobFailure {
                message: Message::Dataverse { detail: "a read answered with something else than a page".into() },
                kind: "dataverse",
            }),
        }
        Answer::Taken
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
    use crate::core::json::json;

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
        let (failed, again) = settle(std::mem::take(&mut self.writes), outcomes, first);
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
