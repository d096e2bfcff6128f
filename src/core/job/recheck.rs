//! After "Export selected" sent its contacts (above all a burst of webhook deliveries), their
//! rows are read again: a contact whose synchronised columns changed meanwhile goes again, as it
//! is now (a version raised only by the job's own write-back is no change). Two
//! relay instances may each read a contact, one before and one after a change, and the older
//! send may land in SALESmanago last; the instance that sent it sees the newer version here and
//! sends that, so SALESmanago ends with the newest version without waiting for the catch-up.

use crate::core::dataverse::query::{contacts, one_of};
use crate::core::dataverse::schema::contact;
use crate::core::json::{Map, Value};
use crate::core::sorted::SortedMap;
use crate::core::sync::is_synchronised_with;
use crate::prelude::*;

use super::runner::{Error, Output, Request, Runner};
use super::Ticket;

/// Rounds of reading again and sending again, at most (each a contact changed while it went).
const ROUNDS: u8 = 3;

/// Ids per read of versions.
const CHUNK: usize = 100;

/// The versions read again.
#[derive(Default)]
pub(super) struct Recheck {
    rounds: u8,
    /// How many of the contacts sent were read again already.
    checked: usize,
    /// Reads under way, with the contacts' rows as they went.
    reading: SortedMap<Ticket, Vec<(String, Map)>>,
    /// Contacts changed since they went.
    again: Vec<String>,
    /// The columns read besides the standard ones (consents, mapped, the scope's).
    read: Vec<String>,
}

/// What an answer was to the recheck.
pub(super) enum Checked {
    /// Not a recheck's answer.
    Other(Result<Output, Error>),
    /// Taken; more reads are under way.
    Waiting,
    /// The last read answered: these contacts changed since they went.
    Changed(Vec<String>),
}

impl Recheck {
    /// Reads again the contacts in `went` (their rows as they went) not read again yet: whether
    /// any read went out (the job waits for it).
    pub(super) fn start(&mut self, went: &[(String, Map)], consents: &[String], run: &mut Runner) -> bool {
        if !self.reading.is_empty() {
            return true;
        }
        if self.rounds >= ROUNDS || self.checked >= went.len() {
            return false;
        }
        self.read = consents.to_vec();
        let fresh = &went[self.checked..];
        self.checked = went.len();
        self.rounds += 1;
        for chunk in fresh.chunks(CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let query = contacts(consents, Some(&one_of(contact::ID, &ids)));
            self.reading.insert(run.issue(Request::Read(query)), chunk.to_vec());
        }
        true
    }

    /// Takes the answer to `ticket`.
    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>) -> Checked {
        let Some(sent) = self.reading.remove(&ticket) else { return Checked::Other(result) };
        // A read that failed changes nothing: the contacts went, and the catch-up follows
        // whatever changed since.
        if let Ok(Output::Page(rows, _)) = result {
            for row in rows.iter().filter_map(Value::as_object) {
                let id = row.get(contact::ID).and_then(Value::as_str).unwrap_or_default();
                let Some((_, went)) = sent.iter().find(|(s, _)| s.eq_ignore_ascii_case(id)) else { continue };
                let changed = row.iter().chain(went.iter()).any(|(column, _)| {
                    is_synchronised_with(column, &self.read)
                        && row.get(column).unwrap_or(&Value::Null) != went.get(column).unwrap_or(&Value::Null)
                });
                if changed {
                    self.again.push(id.to_owned());
                }
            }
        }
        if self.reading.is_empty() {
            Checked::Changed(::core::mem::take(&mut self.again))
        } else {
            Checked::Waiting
        }
    }
}
