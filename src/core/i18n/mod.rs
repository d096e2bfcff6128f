//! User-visible text: the only place it is built. English and Polish catalogues are
//! exhaustive matches, so a message without a translation does not compile.

use crate::prelude::*;

#[cfg(feature = "en")]
mod en;
#[cfg(feature = "pl")]
mod pl;
#[cfg(feature = "contact")]
mod standing;

use crate::core::command::{BulkJob, Command};
use crate::core::credentials::{Field, FieldProblem};
use crate::core::integration::SettingsError;
use crate::core::mapping::{Skip, Warning};
use crate::core::salesmanago::operation::Refused;
use crate::core::salesmanago::{EndpointError, SmError};

/// The user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default for every language we do not translate to).
    En,
    /// Polish.
    Pl,
}

impl Lang {
    /// The language for a Windows LCID as Dynamics reports it (`userSettings.languageId`,
    /// the `userlcid` page parameter): 1045 is Polish, anything else English.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Pl => "pl",
        }
    }

    /// The language for a Windows LCID as Dynamics reports it (`userSettings.languageId`,
    /// the `userlcid` page parameter): 1045 is Polish, anything else English.
    pub const fn from_lcid(lcid: u32) -> Lang {
        match lcid {
            1045 => Lang::Pl,
            _ => Lang::En,
        }
    }

    /// Both, English first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Pl];

    /// Its Windows LCID, as a web resource's `LanguageCode` names it.
    pub const fn lcid(self) -> u32 {
        match self {
            Lang::En => 1033,
            Lang::Pl => 1045,
        }
    }

    /// The language text is built in when a user's is `self`: `self` where this build has its
    /// catalogue (Cargo feature `en`, `pl`, named as [`Lang::code`]), else the one it has. The
    /// shipped engines each have one (`commands.js` loads the user's), everything else both.
    pub const fn built(self) -> Lang {
        match self {
            Lang::En if cfg!(feature = "en") => Lang::En,
            Lang::Pl if cfg!(feature = "pl") => Lang::Pl,
            _ if cfg!(feature = "en") => Lang::En,
            _ => Lang::Pl,
        }
    }
}

/// The two services a job talks to, as users know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Dataverse, which users know as Dynamics 365.
    Dataverse,
    /// The SALESmanago API.
    Salesmanago,
}

/// Something the product tells a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Heading of the credential page.
    #[cfg(feature = "admin")]
    CredentialsTitle,
    /// Label of the client id field.
    #[cfg(feature = "admin")]
    ClientIdLabel,
    /// Label of the API secret field.
    #[cfg(feature = "admin")]
    ApiSecretLabel,
    /// Label of the owner e-mail field.
    #[cfg(feature = "admin")]
    OwnerLabel,
    /// Label of the endpoint field.
    #[cfg(feature = "admin")]
    EndpointLabel,
    /// The credential page's relay key label.
    #[cfg(feature = "admin")]
    RelayKeyLabel,
    /// The relay key field's placeholder when a key is stored.
    #[cfg(feature = "admin")]
    RelayKeySaved,
    /// Shown in place of a stored secret, which is never displayed again.
    #[cfg(feature = "admin")]
    SecretSaved,
    /// The credential page was opened outside the integration form, so it cannot save.
    #[cfg(feature = "admin")]
    CredentialsNeedForm,
    /// Footer of the credential page: the engine version.
    #[cfg(feature = "admin")]
    EngineVersion {
        /// The engine version.
        version: &'static str,
    },
    /// The label of a command, as on its button.
    #[cfg(feature = "admin")]
    CommandLabel(Command),
    /// `commands.js` asked for a command the engine does not know (a packaging mistake).
    UnknownCommand {
        /// The name it asked for.
        name: String,
    },
    /// A SALESmanago call failed.
    Salesmanago(SmError),
    /// Client ID, API secret or owner is missing.
    CredentialsIncomplete,
    /// The engine was called with data it cannot read (a packaging or scripting mistake).
    InvalidInput {
        /// What the parser said.
        detail: String,
    },
    /// The endpoint on the integration record is not usable.
    Endpoint(EndpointError),
    /// A contact was not sent, and why.
    Skipped(Skip),
    /// A contact was sent with a value cut or left out.
    Warning(Warning),
    /// Dynamics 365 returned a contact row the engine cannot read (no id, not a record).
    Unreadable,
    /// The catch-up saw a contact deleted in Dynamics whose e-mail is no longer known (the
    /// environment keeps no deleted records), so it cannot remove it from SALESmanago.
    #[cfg(feature = "export")]
    DeletedEmailUnknown,
    /// The catch-up's change-tracking link had expired: every contact was read again, and
    /// contacts deleted meanwhile could not be seen.
    #[cfg(feature = "export")]
    DeltaExpired,
    /// The contact table does not track changes: the catch-up read contacts by modification
    /// time, and cannot see deletions.
    #[cfg(feature = "export")]
    NotTracked,
    /// SALESmanago did not accept a contact of a batch.
    NotAccepted {
        /// The contact's e-mail.
        email: String,
        /// SALESmanago's message about it, if it gave one.
        reason: Option<String>,
    },
    /// SALESmanago did not rename a contact whose e-mail changed: another SALESmanago contact
    /// has the new address, and nothing is merged silently.
    EmailTaken {
        /// The new address.
        email: String,
    },
    /// A field of the credential page is not acceptable.
    #[cfg(feature = "admin")]
    FieldInvalid {
        /// The field.
        field: Field,
        /// What is wrong.
        problem: FieldProblem,
    },
    /// The credential page was not saved because of the fields marked.
    #[cfg(feature = "admin")]
    FieldsInvalid,
    /// The credentials were stored on the integration record.
    #[cfg(feature = "admin")]
    CredentialsSaved,
    /// The credential page is open on a new record while another integration record exists.
    #[cfg(feature = "admin")]
    IntegrationExists,
    /// The integration record's settings cannot be used.
    Settings(SettingsError),
    /// "Test connection" succeeded.
    #[cfg(feature = "admin")]
    ConnectionOk {
        /// The owner e-mail it checked.
        owner: String,
    },
    /// The credentials work, but the owner is not a user of the account.
    #[cfg(feature = "admin")]
    OwnerNotAUser {
        /// The owner e-mail on the record.
        owner: String,
    },
    /// Dynamics refused a request of the engine.
    Dataverse {
        /// What Dynamics said.
        detail: String,
    },
    /// A job is under way.
    #[cfg(feature = "jobs")]
    Progress {
        /// The job.
        command: Command,
        /// Contacts handled so far.
        done: u64,
        /// Contacts in all, when known.
        total: Option<u64>,
    },
    /// A job is under way and waits because a service asked it to slow down (HTTP 429 with
    /// `Retry-After`).
    #[cfg(feature = "jobs")]
    Waiting {
        /// The job.
        command: Command,
        /// Contacts handled so far.
        done: u64,
        /// Contacts in all, when known.
        total: Option<u64>,
        /// The service that asked.
        service: Service,
        /// Seconds left to wait.
        seconds: u64,
    },
    /// A job was not started: another run of it began after this start and has ended.
    #[cfg(feature = "jobs")]
    JobJustRan {
        /// The job.
        command: Command,
        /// Who started the other run.
        user: String,
        /// Contacts it handled.
        done: u64,
        /// Contacts in all, when known.
        total: Option<u64>,
    },
    /// A job was not started: another run of it is under way.
    #[cfg(feature = "jobs")]
    JobRunning {
        /// The job.
        command: Command,
        /// Who started the other run.
        user: String,
        /// Minutes since it started.
        minutes: u64,
        /// Contacts it has handled.
        done: u64,
        /// Contacts in all, when known.
        total: Option<u64>,
        /// Seconds until it may be taken over, should it stay silent.
        seconds_left: u64,
    },
    /// A job stopped: another run took it over while this one was silent.
    #[cfg(feature = "jobs")]
    JobTakenOver {
        /// The job.
        command: Command,
        /// Who took it over.
        user: String,
    },
    /// A job could not write to the integration record: it kept changing.
    #[cfg(feature = "jobs")]
    RecordBusy {
        /// The job.
        command: Command,
    },
    /// A job did its work, but the integration record did not take its summary (and with it
    /// the lease given up, the checkpoint cleared, the watermark moved).
    #[cfg(feature = "jobs")]
    SummaryNotRecorded {
        /// Dynamics' reason.
        detail: String,
    },
    /// A job finished.
    #[cfg(feature = "jobs")]
    Summary {
        /// The job.
        job: BulkJob,
        /// Its counts.
        counts: Counts,
    },
    /// Offer to download the contacts a job did not handle.
    #[cfg(feature = "jobs")]
    DownloadNotDone {
        /// How many.
        count: u64,
    },
    /// The CSV's last line when it lists only the first contacts.
    #[cfg(feature = "jobs")]
    Unlisted {
        /// Contacts counted but not listed.
        count: u64,
    },
    /// "Pull consents" waits for SALESmanago to prepare its export file.
    #[cfg(feature = "consents")]
    PreparingFile {
        /// Seconds waited so far.
        seconds: u64,
    },
    /// "Pull consents" reads SALESmanago's export file.
    #[cfg(feature = "consents")]
    ReadingFile {
        /// Contacts read so far.
        contacts: u64,
    },
    /// The integration record names a kind of activity that is not one.
    #[cfg(feature = "activity")]
    ActivityKindUnknown {
        /// The name, as the record has it.
        name: String,
    },
    /// SALESmanago did not prepare the export file in time.
    #[cfg(feature = "consents")]
    FileNotReady {
        /// Minutes waited.
        minutes: u64,
    },
    /// Pull changes: a contact changed in SALESmanago could not be looked up there, so its
    /// change waits for the next try (the reason in the CSV's row for it, where neither its
    /// Dynamics id nor its e-mail is known).
    #[cfg(feature = "changes")]
    LookupFailed {
        /// Its SALESmanago id.
        contact: String,
        /// Why, in the user's language.
        reason: String,
    },
    /// SALESmanago's export file could not be used.
    #[cfg(feature = "consents")]
    FileUnreadable {
        /// What is wrong with it (the engine's words, never the file's text).
        detail: String,
    },
    /// A contact the user may not delete in Dynamics, so it was not touched in SALESmanago.
    #[cfg(feature = "contact")]
    MayNotDelete,
    /// The user's security roles lack a privilege a command needs.
    MissingPrivilege {
        /// The privilege Dataverse named.
        privilege: String,
    },
    /// An interrupted "Export all" continues.
    #[cfg(feature = "export")]
    Resuming {
        /// Contacts already exported before.
        done: u64,
    },
    /// "Fetch from SALESmanago": SALESmanago has no such contact.
    #[cfg(feature = "contact")]
    NotInSalesmanago {
        /// The e-mail looked up (empty when the contact has none).
        email: String,
    },
    /// A command on a contact form that has unsaved changes or was never saved.
    #[cfg(feature = "contact")]
    SaveFirst,
    /// "Fetch from SALESmanago" filled fields into the form.
    #[cfg(feature = "contact")]
    Fetched {
        /// How many fields changed.
        fields: usize,
    },
    /// "Fetch from SALESmanago": nothing differs.
    AlreadyMatches,
    /// Send or a save: the contact is outside the sync scope, so nothing went.
    #[cfg(feature = "contact")]
    OutsideScope,
    /// The mapping editor: what is wrong with the mapping (the sentence alone).
    #[cfg(feature = "admin")]
    MappingProblem(crate::core::mapping::fields::MappingError),
    /// The mapping editor saved a mapping of this many entries.
    #[cfg(feature = "admin")]
    MappingSaved {
        /// How many.
        entries: usize,
    },
    /// The mapping editor's preview found no contact by this e-mail or name.
    #[cfg(feature = "admin")]
    PreviewNoContact {
        /// What the admin typed.
        who: String,
    },
    /// The mapping editor's labels, by key ([`MappingLabel`]).
    #[cfg(feature = "admin")]
    MappingLabel(MappingLabel),
    /// The mapping editor: why the scope cannot be saved.
    #[cfg(feature = "admin")]
    ScopeProblem(crate::core::mapping::draft::ScopeProblem),
    /// A contact form opened whose contact SALESmanago holds differently.
    #[cfg(feature = "contact")]
    Differs {
        /// How many fields differ.
        fields: usize,
    },
    /// What SALESmanago knows of a contact, shown when its form opens: its score and state,
    /// its last visit (an ISO date), and its opt-outs. Each part only when SALESmanago said it.
    #[cfg(feature = "contact")]
    Standing {
        /// Score.
        score: Option<i64>,
        /// State (`PROSPECT`, `CUSTOMER`, …).
        state: Option<String>,
        /// Last visit, `yyyy-mm-dd`.
        last_visit: Option<String>,
        /// Opted out of the newsletter.
        opted_out: Option<bool>,
        /// Opted out of SMS.
        opted_out_phone: Option<bool>,
    },
    /// A contact was sent to SALESmanago.
    #[cfg(feature = "contact")]
    Sent,
    /// The save succeeded but sending to SALESmanago did not.
    #[cfg(feature = "contact")]
    SyncFailed {
        /// Why, in the user's language.
        reason: String,
    },
    /// Asks before deleting contacts in both places.
    #[cfg(feature = "contact")]
    DeleteConfirm {
        /// How many contacts.
        count: usize,
        /// Only opt them out in SALESmanago instead of deleting them there.
        opt_out_only: bool,
    },
    /// The outcome of a delete.
    Deleted {
        /// Deleted in both places.
        deleted: usize,
        /// Not deleted, with the reasons, in the user's language.
        failures: Vec<String>,
        /// Deleted in Dynamics only: another contact there has the same e-mail, and the
        /// SALESmanago contact stands for it.
        kept: usize,
        /// Only opted out in SALESmanago.
        opt_out_only: bool,
    },
}

impl From<Refused> for Message {
    /// What users read of a contact SALESmanago did not take.
    fn from(refused: Refused) -> Message {
        match refused {
            Refused::Taken { email } => Message::EmailTaken { email },
            Refused::Other { email, reason } => Message::NotAccepted { email, reason },
        }
    }
}

/// The mapping editor's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingLabel {
    /// The page's title.
    Title,
    /// What the page is for.
    Intro,
    /// The column header: the Dynamics column.
    Column,
    /// The column header: where it goes.
    Target,
    /// The column header: the detail's or tag's name, or the field.
    Name,
    /// The column header: which way.
    Direction,
    /// Target: a custom detail.
    Detail,
    /// Target: a tag.
    Tag,
    /// Target: a standard field.
    Field,
    /// Direction: to SALESmanago.
    To,
    /// Direction: from SALESmanago.
    From,
    /// Direction: both ways.
    Both,
    /// Adds a row.
    Add,
    /// Removes a row.
    Remove,
    /// Saves the mapping.
    Save,
    /// The preview's input label.
    PreviewWho,
    /// Runs the preview.
    Preview,
    /// No rows yet.
    Empty,
    /// The check passed.
    Valid,
    /// The page was opened outside the integration form.
    NeedForm,
    /// The scope's heading.
    Scope,
    /// Scope: every contact.
    ScopeAll,
    /// Scope: those a Yes/No column marks.
    ScopeMarked,
    /// Scope: those in a view.
    ScopeView,
    /// The marking column's select.
    ScopeColumn,
    /// The view's select.
    ScopeViewName,
    /// What leaving the scope does.
    Leaving,
    /// Leaving: left alone.
    LeaveAlone,
    /// Leaving: opted out.
    OptOut,
    /// A view's conditions are kept with the scope.
    ViewSaved,
}

impl MappingLabel {
    /// Every label, with the key the page knows it by.
    pub const ALL: [(&'static str, MappingLabel); 30] = [
        ("title", MappingLabel::Title),
        ("intro", MappingLabel::Intro),
        ("column", MappingLabel::Column),
        ("target", MappingLabel::Target),
        ("name", MappingLabel::Name),
        ("direction", MappingLabel::Direction),
        ("detail", MappingLabel::Detail),
        ("tag", MappingLabel::Tag),
        ("field", MappingLabel::Field),
        ("to", MappingLabel::To),
        ("from", MappingLabel::From),
        ("both", MappingLabel::Both),
        ("add", MappingLabel::Add),
        ("remove", MappingLabel::Remove),
        ("save", MappingLabel::Save),
        ("previewWho", MappingLabel::PreviewWho),
        ("preview", MappingLabel::Preview),
        ("empty", MappingLabel::Empty),
        ("valid", MappingLabel::Valid),
        ("needForm", MappingLabel::NeedForm),
        ("scope", MappingLabel::Scope),
        ("scopeAll", MappingLabel::ScopeAll),
        ("scopeMarked", MappingLabel::ScopeMarked),
        ("scopeView", MappingLabel::ScopeView),
        ("scopeColumn", MappingLabel::ScopeColumn),
        ("scopeViewName", MappingLabel::ScopeViewName),
        ("leaving", MappingLabel::Leaving),
        ("leaveAlone", MappingLabel::LeaveAlone),
        ("optOut", MappingLabel::OptOut),
        ("viewSaved", MappingLabel::ViewSaved),
    ];
}

/// A job's counts, as its summary reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Contacts looked at.
    pub total: u64,
    /// Sent, or updated.
    pub done: u64,
    /// Already the same.
    pub same: u64,
    /// Not found on the other side.
    pub missing: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
    /// Outside the sync scope ([`crate::core::scope`]).
    pub outside: u64,
    /// Of `done`: sent again because the admin's mapping changed since they last went.
    pub again: u64,
    /// Of `done`: sent on entering the sync scope.
    pub entered: u64,
}

/// `prv<action><table>` split: the action (`Read`, `AppendTo`, …) and the table's logical name.
fn privilege_parts(privilege: &str) -> Option<(&str, &str)> {
    let rest = privilege.strip_prefix("prv")?;
    ["AppendTo", "Append", "Read", "Write", "Create", "Delete", "Assign", "Share"]
        .into_iter()
        .find_map(|action| Some((action, rest.strip_prefix(action)?)))
        .filter(|(_, table)| !table.is_empty())
}

/// The column titles of the CSV of contacts a job did not handle, and the words for its
/// outcomes (skipped, failed).
pub fn csv_titles(lang: Lang) -> ([&'static str; 5], [&'static str; 2]) {
    match lang {
        Lang::En => (["Contact ID", "E-mail", "Name", "Outcome", "Reason"], ["skipped", "failed"]),
        Lang::Pl => (["Identyfikator kontaktu", "E-mail", "Nazwa", "Wynik", "Powód"], ["pominięty", "błąd"]),
    }
}

/// The most characters of text from outside (SALESmanago, a relay, Dataverse) that a dialog or
/// a notification shows; the CSV and the last-error column keep it whole.
pub const BRIEF: usize = 300;

fn cut(text: &mut String) {
    if let Some((at, _)) = text.char_indices().nth(BRIEF) {
        text.truncate(at);
        text.push('…');
    }
}

impl Message {
    /// This message as a dialog or notification shows it: each text that came from outside
    /// cut to [`BRIEF`] characters.
    ///
    /// Every message is named here, so a new one that carries outside text is not missed.
    pub fn brief(mut self) -> Message {
        match &mut self {
            Message::Salesmanago(SmError::Rejected { messages }) => messages.iter_mut().for_each(cut),
            Message::Salesmanago(SmError::InvalidResponse { detail })
            | Message::Dataverse { detail }
            | Message::InvalidInput { detail }
            | Message::UnknownCommand { name: detail }
            | Message::NotAccepted { reason: Some(detail), .. } => cut(detail),
            #[cfg(feature = "jobs")]
            Message::SummaryNotRecorded { detail } => cut(detail),
            #[cfg(feature = "changes")]
            Message::LookupFailed { reason: detail, .. } => cut(detail),
            #[cfg(feature = "contact")]
            Message::SyncFailed { reason: detail } => cut(detail),
            Message::Deleted { failures, .. } => failures.iter_mut().for_each(cut),
            // SALESmanago's other errors carry no text of its own (a status, a wait, an owner
            // from the record).
            Message::Salesmanago(_) => {}
            // Text from the integration record or a contact: bounded by its column's length.
            Message::NotAccepted { reason: None, .. }
            | Message::EmailTaken { .. }
            | Message::Skipped(_)
            | Message::Warning(_)
            | Message::Settings(_)
            | Message::Endpoint(_) => {}
            #[cfg(feature = "admin")]
            Message::ConnectionOk { .. } | Message::OwnerNotAUser { .. } => {}
            #[cfg(feature = "contact")]
            Message::NotInSalesmanago { .. } => {}
            // The engine's own text and numbers.
            Message::Unreadable
            | Message::MissingPrivilege { .. }
            | Message::AlreadyMatches
            | Message::CredentialsIncomplete => {}
            // The jobs': text from the integration record (who runs a job), the engine's own
            // text and numbers.
            #[cfg(feature = "jobs")]
            Message::JobRunning { .. }
            | Message::JobJustRan { .. }
            | Message::JobTakenOver { .. }
            | Message::Progress { .. }
            | Message::Waiting { .. }
            | Message::Summary { .. }
            | Message::RecordBusy { .. }
            | Message::DownloadNotDone { .. }
            | Message::Unlisted { .. } => {}
            #[cfg(feature = "export")]
            Message::DeletedEmailUnknown | Message::DeltaExpired | Message::NotTracked | Message::Resuming { .. } => {}
            #[cfg(feature = "consents")]
            Message::PreparingFile { .. }
            | Message::ReadingFile { .. }
            | Message::FileNotReady { .. }
            | Message::FileUnreadable { .. } => {}
            #[cfg(feature = "activity")]
            Message::ActivityKindUnknown { .. } => {}
            #[cfg(feature = "admin")]
            Message::CredentialsTitle
            | Message::ClientIdLabel
            | Message::ApiSecretLabel
            | Message::OwnerLabel
            | Message::EndpointLabel
            | Message::RelayKeyLabel
            | Message::RelayKeySaved
            | Message::SecretSaved
            | Message::CredentialsNeedForm
            | Message::EngineVersion { .. }
            | Message::CommandLabel(_)
            | Message::FieldInvalid { .. }
            | Message::FieldsInvalid
            | Message::CredentialsSaved
            | Message::IntegrationExists
            | Message::MappingProblem(_)
            | Message::MappingSaved { .. }
            | Message::PreviewNoContact { .. }
            | Message::MappingLabel(_)
            | Message::ScopeProblem(_) => {}
            #[cfg(feature = "contact")]
            Message::MayNotDelete
            | Message::SaveFirst
            | Message::Fetched { .. }
            | Message::OutsideScope
            | Message::Differs { .. }
            | Message::Standing { .. }
            | Message::Sent
            | Message::DeleteConfirm { .. } => {}
        }
        self
    }
}

/// The text of `message` in `lang`, or in the one language this engine has (each shipped
/// engine is built for one: see [`Lang::built`]).
pub fn text(message: &Message, lang: Lang) -> String {
    match lang.built() {
        #[cfg(feature = "en")]
        Lang::En => en::text(message),
        #[cfg(feature = "pl")]
        Lang::Pl => pl::text(message),
        #[allow(unreachable_patterns)]
        _ => unreachable!("Lang::built names a language this build has"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mapping::fields::MappingError;

    fn every_message() -> Vec<Message> {
        let mut all = vec![
            Message::CredentialsTitle,
            Message::ClientIdLabel,
            Message::ApiSecretLabel,
            Message::OwnerLabel,
            Message::EndpointLabel,
            Message::RelayKeyLabel,
            Message::RelayKeySaved,
            Message::SecretSaved,
            Message::CredentialsNeedForm,
            Message::EngineVersion { version: "9.9.9" },
            Message::UnknownCommand { name: "x.y".into() },
        ];
        all.extend(catalogue_samples());
        all.extend(MappingLabel::ALL.iter().map(|(_, label)| Message::MappingLabel(*label)));
        for command in Command::ALL {
            all.push(Message::CommandLabel(command));
        }
        all
    }

    /// One message of every error, skip and warning kind.
    fn catalogue_samples() -> Vec<Message> {
        use crate::core::mapping::normalize::EmailProblem;
        use crate::core::salesmanago::{RetryAfter, TransportFailure};
        let errors = [
            SmError::Auth,
            SmError::UnknownOwner { owner: "x@y.pl".into() },
            SmError::Rejected { messages: vec!["Bad".into()] },
            SmError::Rejected { messages: vec![] },
            SmError::Throttled { retry_after: Some(RetryAfter::Seconds(30)) },
            SmError::Throttled { retry_after: None },
            SmError::Server { status: 503 },
            SmError::UnknownMethod,
            SmError::UnexpectedStatus { status: 403 },
            SmError::Transport(TransportFailure::Timeout),
            SmError::Transport(TransportFailure::Network),
            SmError::Transport(TransportFailure::CrossOrigin),
            SmError::InvalidResponse { detail: "not JSON".into() },
        ];
        let endpoints = [
            EndpointError::Missing,
            EndpointError::NotSalesmanagoHost,
            EndpointError::InsecureScheme,
            EndpointError::CredentialsInUrl,
            EndpointError::QueryOrFragment,
            EndpointError::InvalidHost,
        ];
        let problems =
            [EmailProblem::TooLong, EmailProblem::LocalPartTooLong, EmailProblem::NotAscii, EmailProblem::Malformed];
        let mut all: Vec<Message> = errors.into_iter().map(Message::Salesmanago).collect();
        all.extend(endpoints.into_iter().map(Message::Endpoint));
        all.push(Message::CredentialsIncomplete);
        all.push(Message::InvalidInput { detail: "expected value".into() });
        all.push(Message::Skipped(Skip::MissingEmail));
        all.extend(
            problems.into_iter().map(|problem| Message::Skipped(Skip::InvalidEmail { email: "x".into(), problem })),
        );
        for column in ["fullname", "address1_line1", "address1_postalcode", "address1_city", "address1_country"] {
            all.push(Message::Warning(Warning::Truncated { column }));
        }
        for column in ["mobilephone", "telephone1", "fax"] {
            all.push(Message::Warning(Warning::PhoneIgnored { column }));
        }
        all.push(Message::Warning(Warning::BirthdateIgnored));
        {
            use crate::core::mapping::fields::{EntryProblem, Problem};
            let column = || "new_segment".to_owned();
            let label = || "Segment".to_owned();
            all.push(Message::Warning(Warning::Mapped(Problem::Truncated { column: label() })));
            all.push(Message::Warning(Warning::Mapped(Problem::NotItsType { column: label() })));
            all.push(Message::Warning(Warning::Mapped(Problem::NoLabel { column: label(), value: "7".into() })));
            let problems = [
                EntryProblem::UnknownKey("colour".into()),
                EntryProblem::Column,
                EntryProblem::Reserved,
                EntryProblem::Type("txt".into()),
                EntryProblem::Target,
                EntryProblem::Field("email".into()),
                EntryProblem::Name("".into()),
                EntryProblem::Direction("up".into()),
                EntryProblem::TypeForTarget,
                EntryProblem::NotFromSalesmanago,
                EntryProblem::Labels,
                EntryProblem::NoSuchColumn,
                EntryProblem::Twice { first: 1 },
            ];
            let mut errors = vec![
                MappingError::NotJson { detail: "expected value at line 1".into() },
                MappingError::Shape { detail: "the version is missing".into() },
                MappingError::Version { found: "2".into() },
                MappingError::TooMany { count: 61 },
            ];
            errors.extend(problems.into_iter().map(|problem| MappingError::Entry {
                number: 2,
                column: column(),
                problem,
            }));
            all.extend(errors.into_iter().map(|e| Message::Settings(SettingsError::Mapping(e))));
            use crate::core::scope::ScopeError;
            for error in
                [ScopeError::Column(String::new()), ScopeError::Column("my column".into()), ScopeError::Option(9)]
            {
                all.push(Message::Settings(SettingsError::Scope(error)));
            }
        }
        all.push(Message::NotAccepted { email: "a@b.pl".into(), reason: Some("Bad".into()) });
        all.push(Message::NotAccepted { email: "a@b.pl".into(), reason: None });
        all.push(Message::EmailTaken { email: "a@b.pl".into() });
        all.push(Message::Unreadable);
        all.extend([Message::DeletedEmailUnknown, Message::DeltaExpired, Message::NotTracked]);
        let field_problems = [
            FieldProblem::Required,
            FieldProblem::TooLong { max: 100 },
            FieldProblem::Whitespace,
            FieldProblem::Email(EmailProblem::Malformed),
            FieldProblem::Endpoint(EndpointError::InsecureScheme),
        ];
        for field in Field::ALL {
            all.extend(field_problems.iter().map(|&problem| Message::FieldInvalid { field, problem }));
        }
        all.extend([Message::FieldsInvalid, Message::CredentialsSaved, Message::IntegrationExists]);
        all.extend(
            [SettingsError::NoRecord, SettingsError::SeveralRecords, SettingsError::Incomplete]
                .into_iter()
                .chain(endpoints.into_iter().map(SettingsError::Endpoint))
                .map(Message::Settings),
        );
        all.push(Message::ConnectionOk { owner: "x@y.pl".into() });
        all.push(Message::OwnerNotAUser { owner: "x@y.pl".into() });
        all.push(Message::Dataverse { detail: "Access denied".into() });
        let counts =
            Counts { total: 12, done: 4, same: 2, missing: 1, skipped: 2, failed: 1, outside: 2, again: 3, entered: 1 };
        for command in Command::ALL {
            if let Some(job) = command.bulk_job() {
                all.push(Message::Summary { job, counts });
            }
            all.push(Message::Progress { command, done: 400, total: Some(1000) });
            all.push(Message::Progress { command, done: 400, total: None });
            for service in [Service::Dataverse, Service::Salesmanago] {
                all.push(Message::Waiting { command, done: 400, total: Some(1000), service, seconds: 42 });
                all.push(Message::Waiting { command, done: 400, total: None, service, seconds: 1 });
            }
        }
        all.extend([
            Message::DownloadNotDone { count: 3 },
            Message::Resuming { done: 800 },
            Message::MayNotDelete,
            Message::MissingPrivilege { privilege: "prvReadnew_salesmanagointegration".into() },
            Message::PreparingFile { seconds: 42 },
            Message::ReadingFile { contacts: 12_000 },
            Message::FileNotReady { minutes: 30 },
            Message::ActivityKindUnknown { name: "opend".into() },
            Message::FileUnreadable { detail: "the export file ends before its list does".into() },
            Message::LookupFailed {
                contact: "a1b2c3".into(),
                reason: "SALESmanago is receiving too many requests. Try again in a minute.".into(),
            },
            Message::JobRunning {
                command: Command::ExportAll,
                user: "Anna Nowak".into(),
                minutes: 12,
                done: 4000,
                total: Some(8000),
                seconds_left: 170,
            },
            Message::JobRunning {
                command: Command::PullChanges,
                user: String::new(),
                minutes: 0,
                done: 0,
                total: None,
                seconds_left: 0,
            },
            Message::JobJustRan {
                command: Command::ExportAll,
                user: "Anna Nowak".into(),
                done: 8000,
                total: Some(8000),
            },
            Message::JobJustRan { command: Command::PullChanges, user: String::new(), done: 0, total: None },
            Message::JobTakenOver { command: Command::ExportAll, user: "Anna Nowak".into() },
            Message::JobTakenOver { command: Command::PullConsents, user: String::new() },
            Message::RecordBusy { command: Command::PullConsents },
            Message::SummaryNotRecorded { detail: "A plug-in refused this change".into() },
            Message::Unlisted { count: 12 },
            Message::NotInSalesmanago { email: "a@b.pl".into() },
            Message::NotInSalesmanago { email: String::new() },
            Message::Fetched { fields: 3 },
            Message::AlreadyMatches,
            Message::OutsideScope,
            Message::MappingSaved { entries: 3 },
            Message::MappingSaved { entries: 0 },
            Message::PreviewNoContact { who: "anna".into() },
            Message::MappingProblem(crate::core::mapping::fields::MappingError::TooMany { count: 61 }),
            Message::ScopeProblem(crate::core::mapping::draft::ScopeProblem::NoColumn),
            Message::ScopeProblem(crate::core::mapping::draft::ScopeProblem::NoView),
            Message::ScopeProblem(crate::core::mapping::draft::ScopeProblem::View(
                crate::core::scope::view::ViewError::NotContacts("account".into()),
            )),
            Message::SaveFirst,
            Message::Differs { fields: 2 },
            Message::Standing {
                score: Some(90),
                state: Some("CUSTOMER".into()),
                last_visit: Some("2026-11-30".into()),
                opted_out: Some(true),
                opted_out_phone: Some(false),
            },
            Message::Standing {
                score: None,
                state: Some("OTHER".into()),
                last_visit: None,
                opted_out: None,
                opted_out_phone: None,
            },
            Message::Sent,
            Message::SyncFailed { reason: "down".into() },
            Message::DeleteConfirm { count: 1, opt_out_only: false },
            Message::DeleteConfirm { count: 5, opt_out_only: true },
            Message::Deleted { deleted: 2, failures: vec![], kept: 0, opt_out_only: false },
            Message::Deleted { deleted: 1, failures: vec!["a@b.pl: down".into()], kept: 1, opt_out_only: true },
        ]);
        all
    }

    #[test]
    fn dialogs_cut_text_from_outside() {
        let long = "x".repeat(200_000);
        for message in [
            Message::Dataverse { detail: long.clone() },
            Message::Salesmanago(SmError::Rejected { messages: vec![long.clone(), long.clone()] }),
            Message::SyncFailed { reason: long.clone() },
            Message::NotAccepted { email: "a@b.pl".into(), reason: Some(long.clone()) },
            Message::Deleted { deleted: 0, failures: vec![long.clone()], kept: 0, opt_out_only: false },
            Message::Salesmanago(SmError::InvalidResponse { detail: long.clone() }),
            Message::InvalidInput { detail: long.clone() },
            Message::UnknownCommand { name: long.clone() },
        ] {
            for lang in [Lang::En, Lang::Pl] {
                let whole = text(&message, lang);
                let brief = text(&message.clone().brief(), lang);
                assert!(whole.len() > 200_000, "the message itself keeps the text");
                assert!(brief.chars().count() < 1_000 && brief.contains('…'), "{}", brief.len());
            }
        }
        let short = Message::Dataverse { detail: "Access denied".into() };
        assert_eq!(short.clone().brief(), short);
    }

    #[test]
    fn error_messages_carry_their_details_and_never_a_column_name() {
        for lang in [Lang::En, Lang::Pl] {
            let owner = text(&Message::Salesmanago(SmError::UnknownOwner { owner: "x@y.pl".into() }), lang);
            assert!(owner.contains("x@y.pl"), "{owner}");
            let rejected =
                text(&Message::Salesmanago(SmError::Rejected { messages: vec!["A".into(), "B".into()] }), lang);
            assert!(rejected.contains("A; B"), "{rejected}");
            let throttled = text(
                &Message::Salesmanago(SmError::Throttled {
                    retry_after: Some(crate::core::salesmanago::RetryAfter::Seconds(30)),
                }),
                lang,
            );
            assert!(throttled.contains("30"), "{throttled}");
            // A date, settled against the clock of the moment, says the delay, never the date.
            let at = crate::core::salesmanago::RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT");
            let settled = SmError::Throttled { retry_after: at }.settled(784_111_767_000);
            let dated = text(&Message::Salesmanago(settled), lang);
            assert!(dated.contains(" 10 s"), "{dated}");
            let unsettled = text(&Message::Salesmanago(SmError::Throttled { retry_after: at }), lang);
            assert!(!unsettled.chars().any(|c| c.is_ascii_digit()), "{unsettled}");
            let server = text(&Message::Salesmanago(SmError::Server { status: 503 }), lang);
            assert!(server.contains("503"), "{server}");
            let cors = text(
                &Message::Salesmanago(SmError::Transport(crate::core::salesmanago::TransportFailure::CrossOrigin)),
                lang,
            );
            assert!(cors.contains("CORS") && cors.contains("https://"), "{cors}");
            for message in catalogue_samples() {
                // A wrong field mapping is told to the admin fixing it: its entry is named by
                // the column's logical name, as the mapping editor shows it.
                if matches!(message, Message::Settings(SettingsError::Mapping(MappingError::Entry { .. }))) {
                    continue;
                }
                let t = text(&message, lang);
                assert!(!t.contains("new_") && !t.contains("address1_") && !t.contains("telephone1"), "{t}");
            }
        }
    }

    #[test]
    fn lcid_picks_the_language() {
        assert_eq!(Lang::from_lcid(1045), Lang::Pl);
        assert_eq!(Lang::from_lcid(1033), Lang::En);
        assert_eq!(Lang::from_lcid(1031), Lang::En);
        assert_eq!(Lang::from_lcid(0), Lang::En);
        // The codes name the Cargo features and the engines' files (`engine.pl.js`).
        assert_eq!(Lang::ALL.map(Lang::code), ["en", "pl"]);
        assert_eq!(Lang::ALL.map(|lang| Lang::from_lcid(lang.lcid())), Lang::ALL);
    }

    #[test]
    fn a_build_with_both_languages_answers_in_the_one_asked() {
        // The shipped engines have one each and answer in it (tests/webresources.test.mjs).
        for lang in Lang::ALL {
            assert_eq!(lang.built(), lang);
        }
        let name = String::from("no.such");
        assert_ne!(
            text(&Message::UnknownCommand { name: name.clone() }, Lang::En),
            text(&Message::UnknownCommand { name }, Lang::Pl)
        );
    }

    #[test]
    fn every_message_is_translated_and_not_empty() {
        for message in every_message() {
            let en = text(&message, Lang::En);
            let pl = text(&message, Lang::Pl);
            assert!(!en.trim().is_empty() && !pl.trim().is_empty(), "{message:?}");
            // "Tag" is Polish too.
            let language_neutral =
                matches!(message, Message::EngineVersion { .. } | Message::MappingLabel(MappingLabel::Tag));
            assert!(language_neutral || en != pl, "{message:?} is not translated: {en}");
        }
    }

    #[test]
    fn messages_carry_their_details() {
        for lang in [Lang::En, Lang::Pl] {
            let t = text(&Message::EngineVersion { version: "1.2.3" }, lang);
            assert!(t.contains("1.2.3"), "{t}");
            let t = text(&Message::RecordBusy { command: Command::PullChanges }, lang);
            assert!(t.contains(&text(&Message::CommandLabel(Command::PullChanges), lang)), "{t}");
            assert!(text(&Message::UnknownCommand { name: "contact.frob".into() }, lang).contains("contact.frob"));
        }
    }

    #[test]
    fn a_wait_says_which_service_asked_and_for_how_long() {
        for (service, lang, expected) in [
            (Service::Dataverse, Lang::En, "Export all contacts: 400 of 1000 contacts… Dynamics 365 asked to slow down (service protection limits): continuing in 42 s."),
            (Service::Salesmanago, Lang::En, "Export all contacts: 400 of 1000 contacts… SALESmanago asked to slow down: continuing in 42 s."),
            (Service::Dataverse, Lang::Pl, "Eksportuj wszystkie kontakty: 400 z 1000 kontaktów… Dynamics 365 poprosił o spowolnienie (limity ochrony usług): wznowienie za 42 s."),
            (Service::Salesmanago, Lang::Pl, "Eksportuj wszystkie kontakty: 400 z 1000 kontaktów… SALESmanago poprosiło o spowolnienie: wznowienie za 42 s."),
        ] {
            let message = Message::Waiting { command: Command::ExportAll, done: 400, total: Some(1000), service, seconds: 42 };
            assert_eq!(text(&message, lang), expected);
        }
    }
}
