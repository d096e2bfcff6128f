//! The contact commands as state machines: fetch, the quiet check on open, send, sync on save,
//! and delete (from the form or a grid). They share the jobs' [`Runner`]: tickets, retries of
//! both services as [`crate::core::retry`] plans them, signing.
//!
//! What the form knows (its record's id, unsaved changes, the columns a save changed) comes in
//! [`Task`]; what the form is to do (fill columns, show a notification, refresh, confirm)
//! goes out as [`Action::Form`].

use crate::core::command::Command;
use crate::core::dataverse::access;
use crate::core::dataverse::contact::ContactRow;
use crate::core::dataverse::query::{holders, select};
use crate::core::dataverse::schema::{contact, SyncStatus};
use crate::core::i18n::{text, Lang, Message};
use crate::core::integration::Settings;
use crate::core::json::Map;
use crate::core::mapping::fields::FieldMapping;
use crate::core::mapping::normalize::email;
use crate::core::mapping::outbound::{held_by_another, rename_from, rename_lookup, unrenamed};
use crate::core::mapping::{from_salesmanago, to_salesmanago, Held, OutboundOptions, Skip};
use crate::core::salesmanago::contact::{SmContact, UpsertDetails};
use crate::core::salesmanago::operation::{Lookup, LookupKind, Refused, Upsert};
use crate::core::salesmanago::SmError;
use crate::core::scope::Scope;
use crate::core::sync::{is_synchronised_with, write_back, Tally, Went};
use crate::prelude::*;

use super::removal::{Next, Removal, Removed};
use super::runner::{Call, Error, Output, Request, Runner};
use super::{Action, JobFailure, Summary, Ticket};

/// The form notification that says SALESmanago holds other data.
pub const DIFFERS: &str = "salesmanago.differs";
/// The form notification saying what SALESmanago knows of the contact (score, state, last
/// visit, opt-outs), shown when the form opens.
pub const STANDING: &str = "salesmanago.standing";
/// The form notification of the last synchronisation.
pub const SYNC: &str = "salesmanago.sync";

/// What a form or grid is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum FormAction {
    /// Set these columns as a user would (the form becomes dirty); reply with how many the
    /// form has.
    Fill(Map),
    /// Show the notification `id` at `level`, or clear it when `message` is `None`.
    Notify {
        /// Which notification.
        id: &'static str,
        /// How it shows.
        level: Level,
        /// What it says.
        message: Option<Message>,
    },
    /// Show what was written behind the form; `if_clean`: only when it has no unsaved changes.
    Refresh {
        /// Only when the form has no unsaved changes.
        if_clean: bool,
    },
    /// Refresh the grid the command ran from.
    RefreshGrid,
    /// Ask the user; reply with 1 when confirmed, 0 when not.
    Confirm(Message),
}

/// A form notification's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// A warning.
    Warning,
    /// An error.
    Error,
}

impl Level {
    /// The level as `setFormNotification` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Which contact command, with what the form or grid says.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Fill the form from SALESmanago. `id`: the form's record (`None`: not saved yet).
    Fetch {
        /// The form's record.
        id: Option<String>,
    },
    /// On open: one quiet lookup, a notification when SALESmanago differs.
    Check {
        /// The form's record.
        id: Option<String>,
    },
    /// Upsert the saved contact.
    Send {
        /// The form's record.
        id: Option<String>,
        /// Whether the form has unsaved changes.
        dirty: bool,
    },
    /// After a save: send the contact when a synchronised column changed.
    Saved {
        /// The form's record.
        id: Option<String>,
        /// The columns the save changed.
        changed: Vec<String>,
    },
    /// Delete in SALESmanago (or opt out there), then in Dynamics.
    Delete {
        /// The contacts: the form's record, or a grid's selection.
        ids: Vec<String>,
        /// From the form (else a grid).
        on_form: bool,
        /// The user's id (without braces): a contact is touched only where the user may delete it.
        user: String,
    },
    /// A contact deleted in Dynamics already (a webhook's delete, or one the catch-up found):
    /// delete it in SALESmanago (or opt it out there), as a delete from the form would, unless
    /// another contact still holds its e-mail.
    Forget {
        /// The deleted contact's id.
        id: String,
        /// Its e-mail, as it was.
        email: String,
    },
}

impl Task {
    /// The command it is.
    pub const fn command(&self) -> Command {
        match self {
            Task::Fetch { .. } => Command::FetchContact,
            Task::Check { .. } => Command::ContactOpened,
            Task::Send { .. } => Command::SendContact,
            Task::Saved { .. } => Command::ContactSaved,
            Task::Delete { .. } | Task::Forget { .. } => Command::DeleteContacts,
        }
    }
}

/// What a contact command starts from.
#[derive(Debug, Clone)]
pub struct ContactStart {
    /// The command, with what the form says.
    pub task: Task,
    /// The user's language.
    pub lang: Lang,
    /// The integration record's settings.
    pub settings: Settings,
    /// The contact table's consent columns (the command adds the admin's mapped columns).
    pub consents: Vec<String>,
    /// Now, Unix ms.
    pub now_ms: u64,
    /// Random bits for request keys and jitter.
    pub seed: u64,
}

/// Where a command is.
#[derive(Debug)]
enum Stage {
    /// Reading the contact.
    Reading(Ticket),
    /// Looking it up in SALESmanago, by id (`true`) or by e-mail.
    LookingUp(Ticket, bool, Map),
    /// Reading the full card of the contact found by e-mail, whose basic card is kept in case
    /// the full one does not come.
    ReadingCard(Ticket, Map, Box<SmContact>),
    /// The form is filling the columns.
    Filling(Ticket),
    /// Asking Dataverse whether another contact holds the address the contact would be renamed
    /// from (then it is not): the row, what SALESmanago holds, that address.
    Sharing(Ticket, Map, Held, String),
    /// Upserting it.
    Upserting(Ticket, Box<Sending>),
    /// Asking SALESmanago about the addresses of a rename it refused because another contact
    /// has the new one ([`unrenamed`]).
    Verifying(Ticket, Box<Sending>),
    /// Writing the outcome back; then the result.
    WritingBack(Ticket, Result<Vec<String>, JobFailure>),
    /// Waiting for the user to confirm a delete.
    Confirming(Ticket),
    /// Deleting `ids[next]`: a step of it under way.
    Deleting(Ticket, DeleteStep),
    /// Nothing more to do.
    Over,
}

/// A contact on its way to SALESmanago (Send, sync on save).
#[derive(Debug)]
struct Sending {
    /// The row as read.
    row: Map,
    /// The upsert.
    details: UpsertDetails,
    /// The warnings, in the user's language.
    warnings: Vec<String>,
    /// The consent base it makes.
    base: Option<String>,
    /// The values SALESmanago changed, to write in Dynamics.
    dynamics: Map,
}

/// A step of deleting one contact.
#[derive(Debug, Clone)]
enum DeleteStep {
    /// Asking Dataverse whether the user may delete it: without that right, nothing is deleted in
    /// SALESmanago that would stay in Dynamics.
    Checking,
    /// Reading its e-mail.
    Reading,
    /// Removing it from SALESmanago ([`Removal`]).
    Removing(Removal),
    /// Deleting it in Dynamics.
    Deleting,
}

/// A contact command under way.
pub(super) struct ContactCommand {
    task: Task,
    lang: Lang,
    consents: Vec<String>,
    /// The admin's field mapping.
    mapping: FieldMapping,
    /// Which contacts synchronise.
    scope: Scope,
    opt_out_only: bool,
    /// The relay's webhook sends each change: a save sends nothing from the browser.
    webhooks: bool,
    now_ms: u64,
    stage: Stage,
    /// Delete: the contact being deleted, those deleted, and the failures.
    next: usize,
    deleted: usize,
    /// Deleted in Dynamics only, the SALESmanago contact standing for another with its e-mail.
    kept: usize,
    failures: Vec<String>,
}

fn path(id: &str) -> String {
    format!("{}({id})", contact::ENTITY_SET)
}

impl ContactCommand {
    pub(super) fn new(start: &ContactStart, run: &mut Runner) -> ContactCommand {
        let mut command = ContactCommand {
            task: start.task.clone(),
            lang: start.lang,
            consents: start.consents.clone(),
            mapping: start.settings.mapping.clone(),
            scope: start.settings.scope.clone(),
            opt_out_only: start.settings.opt_out_on_delete,
            webhooks: start.settings.webhooks,
            now_ms: start.now_ms,
            stage: Stage::Over,
            next: 0,
            deleted: 0,
            kept: 0,
            failures: Vec::new(),
        };
        command.begin(run);
        command
    }

    fn say(&self, message: &Message) -> String {
        text(message, self.lang)
    }

    fn begin(&mut self, run: &mut Runner) {
        let save_first = || JobFailure { message: Message::SaveFirst, kind: "saveFirst" };
        match &self.task {
            Task::Check { id: None } => self.succeed(run, Message::AlreadyMatches, Vec::new()),
            Task::Fetch { id: None } | Task::Send { id: None, .. } | Task::Send { dirty: true, .. } => {
                self.end(run, Err(save_first()));
            }
            Task::Saved { changed, .. }
                if self.webhooks || !changed.iter().any(|c| is_synchronised_with(c, &self.consents)) =>
            {
                self.succeed(run, Message::AlreadyMatches, Vec::new());
            }
            Task::Saved { id: None, .. } => self.end(run, Err(save_first())),
            Task::Fetch { id: Some(id) }
            | Task::Check { id: Some(id) }
            | Task::Send { id: Some(id), .. }
            | Task::Saved { id: Some(id), .. } => {
                let query = format!("{}{}", path(id), select(&self.consents));
                self.stage = Stage::Reading(run.issue(Request::Row(query)));
            }
            Task::Forget { id, email: raw } => match Removal::start(id, raw, self.opt_out_only) {
                Some((removal, request)) => {
                    self.stage = Stage::Deleting(run.issue(request), DeleteStep::Removing(removal));
                }
                // Nothing SALESmanago could hold: nothing to remove.
                None => {
                    self.deleted = 1;
                    self.deleted_all(run);
                }
            },
            Task::Delete { ids, .. } if ids.is_empty() => self.end(run, Err(save_first())),
            Task::Delete { ids, .. } => {
                let message = Message::DeleteConfirm { count: ids.len(), opt_out_only: self.opt_out_only };
                let ticket = run.ticket();
                run.emit(Action::Form { ticket: Some(ticket), act: FormAction::Confirm(message) });
                self.stage = Stage::Confirming(ticket);
            }
        }
    }
}

impl ContactCommand {
    /// Takes the answer to `ticket` from Dataverse or SALESmanago.
    pub(super) fn on(&mut self, ticket: Ticket, result: Result<Output, Error>, run: &mut Runner) {
        match ::core::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Reading(t) if t == ticket => match result {
                Ok(Output::Row(row)) => match self.task {
                    Task::Fetch { .. } | Task::Check { .. } => self.lookup(row, run),
                    // Send and sync on save read SALESmanago's side first (the consent rule).
                    Task::Send { .. } | Task::Saved { .. } => self.lookup(row, run),
                    Task::Delete { .. } | Task::Forget { .. } => self.end(run, Err(unexpected().into())),
                },
                other => self.end(run, Err(failure(other))),
            },
            Stage::LookingUp(t, by_id, row) if t == ticket => match result {
                Ok(Output::Found(found)) => match found.into_iter().next() {
                    // Found by e-mail on a basic card, when the mapping needs the full one.
                    Some(sm) if !by_id && self.card() == LookupKind::ListById => {
                        match sm
                            .id
                            .as_ref()
                            .and_then(|id| Lookup::batches(LookupKind::ListById, ::core::slice::from_ref(id)).pop())
                        {
                            Some(call) => {
                                let ticket = run.issue(Request::Call(Call::Lookup(call)));
                                self.stage = Stage::ReadingCard(ticket, row, Box::new(sm));
                            }
                            None => self.found(&row, Some(&sm), run),
                        }
                    }
                    Some(sm) => self.found(&row, Some(&sm), run),
                    None if by_id => self.lookup_by_email(row, run),
                    None => self.found(&row, None, run),
                },
                // A send that cannot read SALESmanago fails, and says so on the contact.
                Err(Error::Salesmanago(error)) if matches!(self.task, Task::Send { .. } | Task::Saved { .. }) => {
                    self.send_failed(&row, error, run);
                }
                other => self.end(run, Err(failure(other))),
            },
            Stage::ReadingCard(t, row, basic) if t == ticket => match result {
                Ok(Output::Found(found)) => {
                    let card = found.into_iter().next();
                    self.found(&row, Some(card.as_ref().unwrap_or(&basic)), run);
                }
                other => self.end(run, Err(failure(other))),
            },
            Stage::Sharing(t, row, held, previous) if t == ticket => match result {
                Ok(Output::Page(rows, next)) => {
                    // More than a page of contacts with the address: others hold it.
                    let shared = next.is_some() || held_by_another(&rows, self.id().unwrap_or_default(), &previous);
                    self.upsert(row, held, shared, run);
                }
                other => self.end(run, Err(failure(other))),
            },
            Stage::Upserting(t, sending) if t == ticket => match result {
                Ok(Output::Contact(Some(sm_id))) => {
                    let Sending { row, details, warnings, base, dynamics } = *sending;
                    let address = details.address();
                    let went =
                        Went { id: Some(&sm_id), email: Some(&address), base: base.as_deref(), ..Went::default() };
                    self.write_back(&row, (SyncStatus::Synced, went), None, Ok(warnings), dynamics, run);
                }
                Err(Error::Salesmanago(error)) => match Refused::rejected(&sending.details, &error) {
                    Some(Refused::Taken { .. }) => self.verify(sending, run),
                    _ => self.send_failed(&sending.row, error, run),
                },
                other => self.end(run, Err(failure(other))),
            },
            Stage::Verifying(t, mut sending) if t == ticket => match result {
                Ok(Output::Found(found)) => {
                    let sm_id = ContactRow::from_json(&sending.row).get(contact::SALESMANAGO_ID).map(str::to_owned);
                    match unrenamed(&sending.details, sm_id.as_deref(), &found) {
                        Some(plain) => {
                            sending.details = plain;
                            let call = Call::UpsertOne(Box::new(Upsert(sending.details.clone())));
                            self.stage = Stage::Upserting(run.issue(Request::Call(call)), sending);
                        }
                        None => {
                            let message = Message::EmailTaken { email: sending.details.address() };
                            let reason = self.say(&message);
                            let outcome = Err(JobFailure { message, kind: "emailTaken" });
                            let failed = (SyncStatus::Failed, Went::default());
                            self.write_back(&sending.row, failed, Some(reason), outcome, Map::new(), run);
                        }
                    }
                }
                Err(Error::Salesmanago(error)) => self.send_failed(&sending.row, error, run),
                other => self.end(run, Err(failure(other))),
            },
            Stage::WritingBack(t, outcome) if t == ticket => match result {
                Ok(_) => self.upserted(run, outcome),
                Err(error) => self.upserted(run, Err(error.into())),
            },
            Stage::Deleting(t, step) if t == ticket => self.delete_step(step, result, run),
            other => self.stage = other,
        }
    }

    /// Takes the form's answer to `ticket`: how many columns it filled, or whether the user
    /// confirmed (1) or not (0).
    pub(super) fn on_form(&mut self, ticket: Ticket, reply: Result<usize, String>, run: &mut Runner) {
        match (::core::mem::replace(&mut self.stage, Stage::Over), reply) {
            (Stage::Filling(t), Ok(0)) if t == ticket => self.succeed(run, Message::AlreadyMatches, Vec::new()),
            (Stage::Filling(t), Ok(fields)) if t == ticket => {
                self.succeed(run, Message::Fetched { fields }, Vec::new())
            }
            (Stage::Confirming(t), Ok(1)) if t == ticket => self.delete_next(run),
            (Stage::Confirming(t), Ok(_)) if t == ticket => {
                let message =
                    Message::Deleted { deleted: 0, failures: Vec::new(), kept: 0, opt_out_only: self.opt_out_only };
                self.succeed(run, message, Vec::new());
            }
            (Stage::Filling(t) | Stage::Confirming(t), Err(detail)) if t == ticket => {
                self.end(run, Err(JobFailure { message: Message::Dataverse { detail }, kind: "dataverse" }));
            }
            (other, _) => self.stage = other,
        }
    }

    /// The contact in SALESmanago: by its SALESmanago id, else by e-mail.
    fn lookup(&mut self, row: Map, run: &mut Runner) {
        // Outside the scope nothing goes: a Send says why; a save, too, leaving the status as
        // it is (an export marks a contact that left, and opts it out when the record says so).
        let outside = !self.scope.includes(&ContactRow::from_json(&row));
        match self.task {
            Task::Send { .. } if outside => {
                return self.end(run, Err(JobFailure { message: Message::OutsideScope, kind: "outsideScope" }));
            }
            Task::Saved { .. } if outside => {
                notify(run, SYNC, Level::Info, Some(Message::OutsideScope));
                return self.succeed(run, Message::OutsideScope, Vec::new());
            }
            _ => {}
        }
        let sm_id = ContactRow::from_json(&row).get(contact::SALESMANAGO_ID).map(str::to_owned);
        match sm_id.and_then(|id| Lookup::batches(self.card(), &[id]).into_iter().next()) {
            Some(call) => self.stage = Stage::LookingUp(run.issue(Request::Call(Call::Lookup(call))), true, row),
            None => self.lookup_by_email(row, run),
        }
    }

    /// How the contact is read from SALESmanago by id. Details and tags are only on full cards
    /// (`docs/salesmanago-api.md` §3.4): Fetch and the check on open read one when the admin's
    /// mapping brings any of them from SALESmanago, so both see the mapped values that differ.
    fn card(&self) -> LookupKind {
        match self.task {
            Task::Fetch { .. } | Task::Check { .. } if self.mapping.reads_cards() => LookupKind::ListById,
            _ => LookupKind::BasicById,
        }
    }

    fn lookup_by_email(&mut self, row: Map, run: &mut Runner) {
        let address = ContactRow::from_json(&row).get(contact::EMAIL).and_then(|e| email(e).ok());
        match address.and_then(|a| Lookup::batches(LookupKind::BasicByEmail, &[a]).into_iter().next()) {
            Some(call) => self.stage = Stage::LookingUp(run.issue(Request::Call(Call::Lookup(call))), false, row),
            None => self.found(&row, None, run),
        }
    }

    /// Fetch fills the form with what differs; the check on open says whether anything does.
    fn found(&mut self, row: &Map, sm: Option<&SmContact>, run: &mut Runner) {
        if let Task::Send { .. } | Task::Saved { .. } = self.task {
            let held = sm.map_or(Held::Missing, |sm| Held::Found(Box::new(sm.clone())));
            // A rename takes the SALESmanago contact along: first, whether another contact
            // still holds the address it would be renamed from (the sharing rule).
            return match rename_from(&ContactRow::from_json(row), &held) {
                Some(previous) => {
                    let read = Request::Read(holders(::core::slice::from_ref(&previous)));
                    self.stage = Stage::Sharing(run.issue(read), row.clone(), held, previous);
                }
                None => self.upsert(row.clone(), held, false, run),
            };
        }
        let parsed = ContactRow::from_json(row);
        let columns: Map =
            sm.map(|sm| from_salesmanago(&parsed, sm, &self.mapping).columns.into_iter().collect()).unwrap_or_default();
        if let Task::Check { .. } = self.task {
            notify(run, STANDING, Level::Info, sm.map(standing));
            let fields = columns.len();
            if fields > 0 {
                notify(run, DIFFERS, Level::Warning, Some(Message::Differs { fields }));
                self.succeed(run, Message::Differs { fields }, Vec::new());
            } else {
                notify(run, DIFFERS, Level::Info, None);
                self.succeed(run, Message::AlreadyMatches, Vec::new());
            }
        } else if sm.is_none() {
            let email = parsed.get(contact::EMAIL).unwrap_or_default().trim().to_owned();
            self.succeed(run, Message::NotInSalesmanago { email }, Vec::new());
        } else if columns.is_empty() {
            self.succeed(run, Message::AlreadyMatches, Vec::new());
        } else {
            let ticket = run.ticket();
            run.emit(Action::Form { ticket: Some(ticket), act: FormAction::Fill(columns) });
            self.stage = Stage::Filling(ticket);
        }
    }

    /// Send and sync on save: map the saved row with what SALESmanago holds (and whether
    /// another contact holds the address it would be renamed from), upsert it, write the
    /// outcome back.
    fn upsert(&mut self, row: Map, held: Held, previous_shared: bool, run: &mut Runner) {
        let mut options =
            OutboundOptions { now_ms: self.now_ms, salesmanago: held, previous_shared, ..OutboundOptions::default() };
        if let Task::Saved { changed, .. } = &self.task {
            // A consent-like value changed in this save is a deliberate change (the consent rule).
            options.changed = changed.clone();
        }
        match to_salesmanago(&ContactRow::from_json(&row), &options, &self.mapping) {
            Ok(outbound) => {
                let warnings = outbound.warnings.into_iter().map(|w| self.say(&Message::Warning(w))).collect();
                let call = Call::UpsertOne(Box::new(Upsert(outbound.details.clone())));
                let sending = Sending {
                    row,
                    details: outbound.details,
                    warnings,
                    base: outbound.base,
                    dynamics: outbound.dynamics,
                };
                self.stage = Stage::Upserting(run.issue(Request::Call(call)), Box::new(sending));
            }
            Err(skip) => {
                let reason = self.say(&Message::Skipped(skip.clone()));
                let outcome = Err(skipped(skip));
                let skipped = (SyncStatus::Skipped, Went::default());
                self.write_back(&row, skipped, Some(reason), outcome, Map::new(), run);
            }
        }
    }

    /// SALESmanago refused renaming the contact because another contact has the new address:
    /// whether that leaves the refusal standing ([`unrenamed`]) is read from the new and the
    /// previous addresses.
    fn verify(&mut self, sending: Box<Sending>, run: &mut Runner) {
        let addresses = rename_lookup(&sending.details).map(Vec::from).unwrap_or_default();
        match Lookup::batches(LookupKind::BasicByEmail, &addresses).into_iter().next() {
            Some(call) => self.stage = Stage::Verifying(run.issue(Request::Call(Call::Lookup(call))), sending),
            None => self.end(run, Err(unexpected().into())),
        }
    }

    /// A send SALESmanago refused (or that could not read it first): the contact is marked
    /// Failed with the reason, then the command fails.
    fn send_failed(&mut self, row: &Map, error: SmError, run: &mut Runner) {
        let reason = self.say(&Message::Salesmanago(error.clone()));
        let outcome = Err(JobFailure::from(Error::Salesmanago(error)));
        self.write_back(row, (SyncStatus::Failed, Went::default()), Some(reason), outcome, Map::new(), run);
    }

    /// Records the status and what the contact went as (its SALESmanago id, address sent,
    /// consent base, and the admin's mapping) on the contact (only what changes), then ends
    /// with `outcome`.
    fn write_back(
        &mut self,
        row: &Map,
        (status, went): (SyncStatus, Went),
        error: Option<String>,
        outcome: Result<Vec<String>, JobFailure>,
        values: Map,
        run: &mut Runner,
    ) {
        let id = self.id().unwrap_or_default().to_owned();
        // The sync time on Dataverse's clock: the catch-up compares it with `modifiedon`.
        let stamp = run.dataverse_time(self.now_ms);
        let fingerprint = self.mapping.fingerprint();
        let went = Went { mapping: fingerprint.as_deref(), ..went };
        let parsed = ContactRow::from_json(row);
        let mut columns = write_back(&parsed, status, went, error.as_deref(), stamp).unwrap_or_default();
        columns.extend(values);
        match (!columns.is_empty()).then_some(columns) {
            Some(columns) => {
                // The answer holds the row (`Prefer: return=representation`): its key only.
                let patch = Request::Patch(format!("{}?$select={}", path(&id), contact::ID), columns);
                self.stage = Stage::WritingBack(run.issue(patch), outcome);
            }
            None => self.upserted(run, outcome),
        }
    }

    /// The end of send and sync on save.
    fn upserted(&mut self, run: &mut Runner, outcome: Result<Vec<String>, JobFailure>) {
        match (&self.task, outcome) {
            (Task::Saved { .. }, Ok(_)) => {
                notify(run, SYNC, Level::Info, Some(Message::Sent));
                notify(run, DIFFERS, Level::Info, None);
                run.emit(Action::Form { ticket: None, act: FormAction::Refresh { if_clean: true } });
                self.succeed(run, Message::Sent, Vec::new());
            }
            (_, Ok(warnings)) => {
                notify(run, SYNC, Level::Info, None);
                run.emit(Action::Form { ticket: None, act: FormAction::Refresh { if_clean: false } });
                self.succeed(run, Message::Sent, warnings);
            }
            (_, Err(failure)) => self.end(run, Err(failure)),
        }
    }

    fn id(&self) -> Option<&str> {
        match &self.task {
            Task::Fetch { id } | Task::Check { id } | Task::Send { id, .. } | Task::Saved { id, .. } => id.as_deref(),
            Task::Delete { ids, .. } => ids.get(self.next).map(String::as_str),
            Task::Forget { id, .. } => (self.next == 0).then_some(id.as_str()),
        }
    }

    /// Deletes the next contact, or ends when none is left.
    fn delete_next(&mut self, run: &mut Runner) {
        match self.id().map(str::to_owned) {
            Some(id) => {
                let user = match &self.task {
                    Task::Delete { user, .. } => user.clone(),
                    _ => String::new(),
                };
                let query = access::query(&user, contact::ENTITY_SET, &id);
                self.stage = Stage::Deleting(run.issue(Request::Row(query)), DeleteStep::Checking);
            }
            None => self.deleted_all(run),
        }
    }

    /// The next step of deleting the current contact: SALESmanago first, so that a contact
    /// whose SALESmanago step fails stays in Dynamics, and the user can try again.
    fn delete_step(&mut self, step: DeleteStep, result: Result<Output, Error>, run: &mut Runner) {
        let id = self.id().unwrap_or_default().to_owned();
        // Deleted in Dynamics already (a webhook's), or now.
        let gone = matches!(self.task, Task::Forget { .. });
        let delete = || match gone {
            true => Ok(None),
            false => Ok(Some((Request::Remove(path(&id)), DeleteStep::Deleting))),
        };
        let next: Result<Option<(Request, DeleteStep)>, Error> = match (step, result) {
            (DeleteStep::Removing(removal), result) => match removal.on(result) {
                Ok(Next::Ask(removal, request)) => Ok(Some((request, DeleteStep::Removing(removal)))),
                Ok(Next::Done(removed)) => {
                    if removed == Removed::Kept {
                        self.kept += 1;
                    }
                    delete()
                }
                Err(error) => Err(error),
            },
            (_, Err(error)) => Err(error),
            (DeleteStep::Checking, Ok(Output::Row(answer))) if access::may_delete(&answer) => {
                let query = format!("{}?$select={},{}", path(&id), contact::ID, contact::EMAIL);
                Ok(Some((Request::Row(query), DeleteStep::Reading)))
            }
            (DeleteStep::Checking, Ok(_)) => Err(Error::Refused(Message::MayNotDelete, "mayNotDelete")),
            (DeleteStep::Reading, Ok(Output::Row(row))) => {
                let raw = ContactRow::from_json(&row).get(contact::EMAIL).unwrap_or_default().to_owned();
                match Removal::start(&id, &raw, self.opt_out_only) {
                    Some((removal, request)) => Ok(Some((request, DeleteStep::Removing(removal)))),
                    None => delete(),
                }
            }
            (DeleteStep::Deleting, Ok(_)) => Ok(None),
            (DeleteStep::Reading, Ok(_)) => Err(unexpected()),
        };
        match next {
            Ok(Some((request, step))) => self.stage = Stage::Deleting(run.issue(request), step),
            Ok(None) => {
                self.deleted += 1;
                self.next += 1;
                self.delete_next(run);
            }
            Err(error) => {
                self.failures.push(format!("{id}: {}", self.say(&error.into_message())));
                self.next += 1;
                self.delete_next(run);
            }
        }
    }

    fn deleted_all(&mut self, run: &mut Runner) {
        let on_form = matches!(self.task, Task::Delete { on_form: true, .. });
        if matches!(self.task, Task::Delete { on_form: false, .. }) {
            run.emit(Action::Form { ticket: None, act: FormAction::RefreshGrid });
        }
        let failures = ::core::mem::take(&mut self.failures);
        let close_form = on_form && failures.is_empty();
        let message =
            Message::Deleted { deleted: self.deleted, failures, kept: self.kept, opt_out_only: self.opt_out_only };
        if self.deleted == 0 {
            self.end(run, Err(JobFailure { message, kind: "deleteFailed" }));
        } else {
            self.stage = Stage::Over;
            run.succeed(Summary { message, details: Vec::new(), download: None, tally: Tally::default(), close_form });
        }
    }

    fn succeed(&mut self, run: &mut Runner, message: Message, details: Vec<String>) {
        self.stage = Stage::Over;
        run.succeed(Summary { message, details, download: None, tally: Tally::default(), close_form: false });
    }

    /// Ends with `result`; a failure after a save shows on the form too (the save stands).
    fn end(&mut self, run: &mut Runner, result: Result<(), JobFailure>) {
        self.stage = Stage::Over;
        let Err(failure) = result else { return };
        if let Task::Saved { .. } = self.task {
            let reason = self.say(&failure.message);
            notify(run, SYNC, Level::Error, Some(Message::SyncFailed { reason }));
            run.emit(Action::Form { ticket: None, act: FormAction::Refresh { if_clean: true } });
        }
        run.fail(failure);
    }
}

fn notify(run: &mut Runner, id: &'static str, level: Level, message: Option<Message>) {
    run.emit(Action::Form { ticket: None, act: FormAction::Notify { id, level, message } });
}

/// What SALESmanago knows of `sm`, for its form.
fn standing(sm: &SmContact) -> Message {
    Message::Standing {
        score: sm.score,
        state: sm.state.clone(),
        last_visit: sm.last_visit.map(|ms| crate::core::mapping::normalize::Date::from_unix_ms(ms).iso()),
        opted_out: sm.opted_out,
        opted_out_phone: sm.opted_out_phone,
    }
}

fn skipped(skip: Skip) -> JobFailure {
    JobFailure { message: Message::Skipped(skip), kind: "skipped" }
}

fn unexpected() -> Error {
    Error::Dataverse(crate::core::dataverse::error::DvError::Refused { detail: "an unexpected answer".into() })
}

/// The failure of a request that did not give what the command needs.
fn failure(result: Result<Output, Error>) -> JobFailure {
    match result {
        Err(error) => error.into(),
        Ok(_) => unexpected().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn levels_are_the_ones_set_form_notification_takes() {
        // Dynamics shows a notification only at these levels (`formContext.ui.setFormNotification`).
        let names = [Level::Info, Level::Warning, Level::Error].map(Level::name);
        assert_eq!(names, ["INFO", "WARNING", "ERROR"]);
    }
}
