//! English catalogue.

use super::{Counts, MappingLabel, Message, Service};
use crate::core::command::{BulkJob, Command};
use crate::core::credentials::{Field, FieldProblem};
use crate::core::dataverse::schema::contact;
use crate::core::integration::SettingsError;
use crate::core::job::lease::STALE_MS;
use crate::core::mapping::draft::ScopeProblem;
use crate::core::mapping::fields::{self, EntryProblem, MappingError, Problem};
use crate::core::mapping::normalize::EmailProblem;
use crate::core::mapping::outbound::MAX_TEXT;
use crate::core::mapping::{Skip, Warning};
use crate::core::salesmanago::relay::Refusal;
use crate::core::salesmanago::{EndpointError, RetryAfter, SmError, TransportFailure};
use crate::core::scope::view::ViewError;
use crate::core::scope::ScopeError;
use crate::prelude::*;

pub(super) fn text(message: &Message) -> String {
    match message {
        #[cfg(feature = "admin")]
        Message::CredentialsTitle => "SALESmanago credentials".into(),
        #[cfg(feature = "admin")]
        Message::ClientIdLabel => "Client ID".into(),
        #[cfg(feature = "admin")]
        Message::ApiSecretLabel => "API secret".into(),
        #[cfg(feature = "admin")]
        Message::OwnerLabel => "Owner e-mail".into(),
        #[cfg(feature = "admin")]
        Message::EndpointLabel => "Endpoint".into(),
        #[cfg(feature = "admin")]
        Message::RelayKeyLabel => "Relay key (only with salesmanago-relay)".into(),
        #[cfg(feature = "admin")]
        Message::RelayKeySaved => "saved (type a new key to replace it)".into(),
        #[cfg(feature = "admin")]
        Message::CredentialsNeedForm => "Open this page from the SALESmanago Integration record in Dynamics 365 to enter the credentials.".into(),
        #[cfg(feature = "admin")]
        Message::SecretSaved => "saved (type a new secret to replace it)".into(),
        #[cfg(feature = "admin")]
        Message::EngineVersion { version } => format!("SALESmanago engine {version}"),
        #[cfg(feature = "admin")]
        Message::CommandLabel(command) => command_label(*command).into(),
        Message::UnknownCommand { name } => format!(
            "The SALESmanago engine has no command “{name}”. The solution's web resources are from different versions: import the solution again."
        ),
        Message::Salesmanago(error) => salesmanago(error),
        Message::Endpoint(error) => endpoint(*error).into(),
        Message::CredentialsIncomplete => "The SALESmanago Integration record lacks the client ID, the API secret or the owner e-mail. Enter them on its credential page.".into(),
        Message::InvalidInput { detail } => format!("The SALESmanago engine received data it cannot read ({detail}). Import the solution again; if that does not help, report this text."),
        Message::Skipped(Skip::MissingEmail) => {
            "Not sent: the contact has no e-mail address, and SALESmanago identifies contacts by e-mail. Add one and send it again.".into()
        }
        Message::Skipped(Skip::InvalidEmail { email, problem }) => {
            format!("Not sent: “{email}” is not an e-mail address SALESmanago accepts ({}). Correct it and send it again.", email_problem(*problem))
        }
        Message::Warning(Warning::Truncated { column }) => {
            format!("{} was longer than {MAX_TEXT} characters; SALESmanago received the first {MAX_TEXT}.", column_label(column))
        }
        Message::Warning(Warning::PhoneIgnored { column }) => {
            format!("{} is not a phone number, so it was not sent.", column_label(column))
        }
        Message::Warning(Warning::BirthdateIgnored) => {
            "The birth date is not a real date between 1900 and today, so it was not sent.".into()
        }
        Message::Warning(Warning::Mapped(Problem::Truncated { column })) => {
            format!("{column} was longer than {MAX_TEXT} characters; SALESmanago received the first {MAX_TEXT}.")
        }
        Message::Warning(Warning::Mapped(Problem::NotItsType { column })) => {
            format!("{column} does not hold the type the field mapping says, so it was not sent. Save the mapping again in its editor.")
        }
        Message::Warning(Warning::Mapped(Problem::NoLabel { column, value })) => {
            format!("{column} holds option {value}, which the field mapping has no label for, so it was not sent. Save the mapping again in its editor.")
        }
        #[cfg(feature = "export")]
        Message::DeletedEmailUnknown => "This contact was deleted in Dynamics 365 while its change was not delivered to SALESmanago, and its e-mail is no longer known, so it was not removed from SALESmanago. Remove it there by hand; to let the catch-up do it next time, turn on \"Keep deleted Dataverse records\" in the environment's settings.".into(),
        #[cfg(feature = "export")]
        Message::DeltaExpired => "Dynamics 365 no longer keeps the changes since the last catch-up (its change tracking keeps them for a number of days), so every contact was read again. Contacts deleted meanwhile could not be seen: check SALESmanago for contacts deleted in Dynamics 365.".into(),
        #[cfg(feature = "export")]
        Message::NotTracked => "The Contact table does not track changes, so contacts were read by modification time and deletions cannot be caught up. Turn on \"Track changes\" for the Contact table.".into(),
        Message::Unreadable => "Dynamics 365 returned this contact in a form the integration cannot read (no contact ID), so it was skipped. Open the contact and save it, then run the job again.".into(),
        Message::NotAccepted { email, reason: Some(reason) } => format!("SALESmanago did not accept {email}: {reason}"),
        Message::NotAccepted { email, reason: None } => format!("SALESmanago did not accept {email} and gave no reason."),
        Message::EmailTaken { email } => format!("The new e-mail {email} is already used by another SALESmanago contact, so this contact was not renamed to it. Merge the two contacts in SALESmanago, or change the address."),
        #[cfg(feature = "admin")]
        Message::FieldInvalid { field, problem } => field_problem(*field, *problem),
        #[cfg(feature = "admin")]
        Message::FieldsInvalid => "Nothing was saved: correct the fields marked.".into(),
        #[cfg(feature = "admin")]
        Message::CredentialsSaved => "Credentials saved. Use “Test connection” to check them.".into(),
        #[cfg(feature = "admin")]
        Message::IntegrationExists => "A SALESmanago Integration record already exists, and there can be only one. Open it from the SALESmanago Integration area instead of creating another.".into(),
        Message::Settings(error) => settings(error),
        // Through a relay, the owner is the relay's (SALESMANAGO_OWNER), not the record's.
        #[cfg(feature = "admin")]
        Message::ConnectionOk { owner } if owner.is_empty() => "Connected to SALESmanago through the relay. The relay's owner (SALESMANAGO_OWNER) is a user of this account, and contacts will be saved as theirs.".into(),
        #[cfg(feature = "admin")]
        Message::OwnerNotAUser { owner } if owner.is_empty() => "The relay reaches SALESmanago, but its owner (SALESMANAGO_OWNER) is not a user of this SALESmanago account. Ask the relay's administrator to set the e-mail of a SALESmanago user.".into(),
        #[cfg(feature = "admin")]
        Message::ConnectionOk { owner } => format!("Connected to SALESmanago. {owner} is a user of this account, and contacts will be saved as theirs."),
        #[cfg(feature = "admin")]
        Message::OwnerNotAUser { owner } => format!("The client ID and API secret work, but {owner} is not a user of this SALESmanago account. Enter the e-mail of a SALESmanago user as the owner."),
        Message::Dataverse { detail } => format!("Dynamics 365 refused the request: {detail}"),
        #[cfg(feature = "jobs")]
        Message::Progress { command, done, total } => match total {
            Some(total) => format!("{}: {done} of {total} contacts…", command_label(*command)),
            None => format!("{}: {done} contacts…", command_label(*command)),
        },
        #[cfg(feature = "jobs")]
        Message::Waiting { command, done, total, service, seconds } => {
            let progress = text(&Message::Progress { command: *command, done: *done, total: *total });
            match service {
                Service::Dataverse => format!("{progress} Dynamics 365 asked to slow down (service protection limits): continuing in {seconds} s."),
                Service::Salesmanago => format!("{progress} SALESmanago asked to slow down: continuing in {seconds} s."),
            }
        }
        #[cfg(feature = "jobs")]
        Message::Summary { job, counts } => summary(*job, counts),
        #[cfg(feature = "jobs")]
        Message::JobRunning { command, user, minutes, done, total, seconds_left } => {
            let who = someone(user);
            let progress = share(*done, *total);
            format!(
                "{} is already running: {who} started it {minutes} min ago, and {progress} are done so far. Wait for it to finish. If its window was closed, you can start it again in {seconds_left} s (3 minutes after it was last active), and it goes on from where it stopped.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::JobJustRan { command, user, done, total } => {
            let who = someone(user);
            let progress = share(*done, *total);
            format!(
                "{} has just run: {who} started it while this start was on its way, and it has already ended ({progress} handled). This start was dropped so that the job does not run twice; start it again if you need another run.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::JobTakenOver { command, user } => {
            let who = someone(user);
            format!(
                "{} stopped in this window: {who} started it again after this window had been silent for 3 minutes. Nothing is lost: the new run goes on from where this one stopped.",
                command_label(*command)
            )
        }
        #[cfg(feature = "jobs")]
        Message::RecordBusy { command } => format!(
            "{} could not save its progress: the SALESmanago Integration record kept changing. Try again in a moment.",
            command_label(*command)
        ),
        #[cfg(feature = "jobs")]
        Message::SummaryNotRecorded { detail } => format!(
            "The SALESmanago Integration record did not take this summary ({detail}). The work above is done, but the record does not show it: the job can start again in {} minutes, and that run may go over some of the same contacts again.",
            STALE_MS / 60_000
        ),
        #[cfg(feature = "jobs")]
        Message::DownloadNotDone { count } => format!("Download the list of the {count} contacts that did not go, with the reasons (CSV)?"),
        #[cfg(feature = "jobs")]
        Message::Unlisted { count } => format!("…and {count} more, not listed here. Each contact's SALESmanago sync status and last error record its reason."),
        #[cfg(feature = "consents")]
        Message::PreparingFile { seconds } => format!("Pull consents: SALESmanago is preparing the file of consents and opt-outs ({seconds} s so far). Large accounts take a few minutes; keep this window open."),
        #[cfg(feature = "consents")]
        Message::ReadingFile { contacts } => format!("Pull consents: reading SALESmanago's file, {contacts} contacts so far…"),
        #[cfg(feature = "activity")]
        Message::ActivityKindUnknown { name } => format!("The SALESmanago Integration record's \u{201c}Pull activity: kinds kept\u{201d} names \u{201c}{name}\u{201d}, which is not a kind of activity, so nothing was pulled. Use these names, separated by commas: sent, opened, clicked, bounced, unsubscribed, visit, event; or leave it empty for all but sent."),
        #[cfg(feature = "consents")]
        Message::FileNotReady { minutes } => format!("SALESmanago did not prepare the file of consents and opt-outs within {minutes} minutes, so nothing was changed. Try Pull consents again later."),
        #[cfg(feature = "changes")]
        Message::LookupFailed { contact, reason } => format!("SALESmanago contact {contact} changed, but could not be read there, so its change is not applied yet: it is read again next time. {reason}"),
        #[cfg(feature = "consents")]
        Message::FileUnreadable { detail } => format!("SALESmanago's file of consents and opt-outs could not be read ({detail}), so nothing was changed. Try Pull consents again; if it happens again, send this message to your administrator."),
        #[cfg(feature = "contact")]
        Message::MayNotDelete => "you may not delete this contact in Dynamics 365, so it was left as it is in SALESmanago too. Ask your administrator for the right to delete contacts.".into(),
        Message::MissingPrivilege { privilege } => format!("Your security roles do not let you {}. Ask your administrator to assign you the role “SALESmanago user” (for the SALESmanago buttons on contacts) or “SALESmanago administrator” (for the SALESmanago Integration record and its jobs).", privilege_words(privilege)),
        #[cfg(feature = "export")]
        Message::Resuming { done } => format!("Continuing the interrupted export: {done} contacts were already exported."),
        #[cfg(feature = "contact")]
        Message::NotInSalesmanago { email } if email.is_empty() => "SALESmanago has no such contact: this contact has no e-mail address and no SALESmanago ID to look it up by.".into(),
        #[cfg(feature = "contact")]
        Message::NotInSalesmanago { email } => format!("SALESmanago has no contact with the e-mail {email}. Use “Send to SALESmanago” to create it there."),
        #[cfg(feature = "contact")]
        Message::Fetched { fields } => format!("{fields} fields were filled in from SALESmanago. Review them, then save the contact to keep them."),
        #[cfg(feature = "contact")]
        Message::SaveFirst => "Save the contact first, then try again.".into(),
        #[cfg(feature = "contact")]
        Message::OutsideScope => "Not sent: this contact is outside the sync scope set on the SALESmanago Integration record (it is not marked for synchronisation). Mark it, or ask an administrator to change the scope.".into(),
        #[cfg(feature = "admin")]
        Message::MappingProblem(error) => mapping(error),
        #[cfg(feature = "admin")]
        Message::MappingSaved { entries: 0 } => "Saved: no columns are mapped beyond the built-in ones.".into(),
        #[cfg(feature = "admin")]
        Message::MappingSaved { entries } => format!("Saved: {entries} mapped columns. The mapping applies to each contact from its next change; run Export all to send every contact with it now (its summary counts those sent again because of this change)."),
        #[cfg(feature = "admin")]
        Message::PreviewNoContact { who } => format!("No contact has the e-mail “{who}” or a name starting with it."),
        #[cfg(feature = "admin")]
        Message::MappingLabel(label) => match label {
            MappingLabel::Title => "What syncs",
            MappingLabel::Intro => "Which contacts synchronise, and the Dynamics columns sent to SALESmanago beside the built-in ones (name, e-mail, phones, address, birth date, opt-outs, consents), and which way.",
            MappingLabel::Column => "Dynamics column",
            MappingLabel::Target => "In SALESmanago",
            MappingLabel::Name => "Detail, tag or field",
            MappingLabel::Direction => "Direction",
            MappingLabel::Detail => "Custom detail",
            MappingLabel::Tag => "Tag",
            MappingLabel::Field => "Standard field",
            MappingLabel::To => "To SALESmanago",
            MappingLabel::From => "From SALESmanago",
            MappingLabel::Both => "Both ways",
            MappingLabel::Add => "Add a column",
            MappingLabel::Remove => "Remove",
            MappingLabel::Save => "Save mapping and scope",
            MappingLabel::PreviewWho => "Preview a contact (e-mail or name)",
            MappingLabel::Preview => "Preview",
            MappingLabel::Empty => "No columns are mapped beyond the built-in ones.",
            MappingLabel::Valid => "The mapping can be saved.",
            MappingLabel::NeedForm => "Open this page from the SALESmanago Integration record in Dynamics 365 to edit the mapping.",
            MappingLabel::Scope => "Contacts that synchronise",
            MappingLabel::ScopeAll => "All contacts",
            MappingLabel::ScopeMarked => "Contacts a Yes/No column marks",
            MappingLabel::ScopeView => "Contacts in a view",
            MappingLabel::ScopeColumn => "Marking column",
            MappingLabel::ScopeViewName => "View",
            MappingLabel::Leaving => "A contact leaving the scope",
            MappingLabel::LeaveAlone => "Leave it in SALESmanago",
            MappingLabel::OptOut => "Opt it out in SALESmanago",
            MappingLabel::ViewSaved => "The view's conditions are saved with the scope: after changing the view, save here again.",
        }
        .into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::NoColumn) => "Choose the Yes/No column that marks the contacts to synchronise.".into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::NoView) => "Choose the view whose contacts synchronise.".into(),
        #[cfg(feature = "admin")]
        Message::ScopeProblem(ScopeProblem::View(error)) => format!("That view {}", view_problem(error)),
        Message::AlreadyMatches => "This contact already holds what SALESmanago holds.".into(),
        #[cfg(feature = "contact")]
        Message::Differs { fields } => format!("SALESmanago holds different data for this contact ({fields} fields). Use “Fetch from SALESmanago” to review it."),
        #[cfg(feature = "contact")]
        Message::Standing { .. } => super::standing::text(message, &super::standing::ENGLISH),
        #[cfg(feature = "contact")]
        Message::Sent => "Sent to SALESmanago.".into(),
        #[cfg(feature = "contact")]
        Message::SyncFailed { reason } => format!("Saved in Dynamics, but not sent to SALESmanago: {reason} Use “Send to SALESmanago” to try again."),
        #[cfg(feature = "contact")]
        Message::DeleteConfirm { count, opt_out_only: false } => format!("Delete {count} contact(s) in Dynamics and in SALESmanago? This cannot be undone."),
        #[cfg(feature = "contact")]
        Message::DeleteConfirm { count, opt_out_only: true } => format!("Delete {count} contact(s) in Dynamics and opt them out of newsletters and SMS in SALESmanago? This cannot be undone."),
        Message::Deleted { deleted, failures, kept, opt_out_only } => {
            let there = if *opt_out_only { "opted out in SALESmanago" } else { "deleted in SALESmanago" };
            let mut text = format!("{deleted} contact(s) deleted in Dynamics and {there}.");
            if *kept > 0 {
                text.push_str(&format!(" Of these, {kept} stayed in SALESmanago: another contact in Dynamics has the same e-mail."));
            }
            if !failures.is_empty() {
                text.push_str(&format!(" {} were not deleted anywhere; try again: {}", failures.len(), failures.join("; ")));
            }
            text
        }
    }
}

/// Who started a run, as its lease names them.
fn someone(user: &str) -> &str {
    if user.is_empty() {
        "another user"
    } else {
        user
    }
}

/// Contacts done of a run, of how many when known.
fn share(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{done} of {total} contacts"),
        None => format!("{done} contacts"),
    }
}

fn command_label(command: Command) -> &'static str {
    match command {
        Command::FetchContact => "Fetch from SALESmanago",
        Command::SendContact => "Send to SALESmanago",
        Command::ExportSelected => "Export to SALESmanago",
        Command::TestConnection => "Test connection",
        Command::ExportAll => "Export all contacts",
        Command::ExportChanges => "Export changes",
        Command::PullConsents => "Pull consents",
        Command::SaveCredentials => "Save credentials",
        Command::PullChanges => "Pull changes",
        Command::PullActivity => "Pull activity",
        Command::ContactOpened => "Check SALESmanago",
        Command::ContactSaved => "Sync on save",
        Command::DeleteContacts => "Delete",
        Command::IntegrationOpened => "Check the integration record",
    }
}

fn salesmanago(error: &SmError) -> String {
    match error {
        SmError::Auth => "SALESmanago refused the credentials. Check the client ID, the API secret and the endpoint on the SALESmanago Integration record (in SALESmanago: Integration Center → API).".into(),
        SmError::UnknownOwner { owner } => format!("“{owner}” is not a user of this SALESmanago account. Enter the e-mail of a SALESmanago user as the owner."),
        SmError::Rejected { messages } if messages.is_empty() => "SALESmanago refused the request without giving a reason.".into(),
        SmError::Rejected { messages } => format!("SALESmanago refused the request: {}", messages.join("; ")),
        SmError::Throttled { retry_after: Some(RetryAfter::Seconds(seconds)) } => {
            format!("SALESmanago is receiving too many requests. Try again in {} s.", (*seconds).max(1))
        }
        // A date is made a delay where the clock is (`SmError::settled`); one left is not shown as a number.
        SmError::Throttled { retry_after: None | Some(RetryAfter::At(_)) } => "SALESmanago is receiving too many requests. Try again in a minute.".into(),
        SmError::Server { status } => format!("SALESmanago is not available right now (HTTP {status}). Try again in a few minutes."),
        SmError::UnknownMethod => "The endpoint does not offer this SALESmanago function (HTTP 404). Check the endpoint: it should be your SALESmanago server, such as app3.salesmanago.pl, or a relay that forwards every /api call.".into(),
        SmError::UnexpectedStatus { status } => format!("SALESmanago answered with HTTP {status}. Check the endpoint on the SALESmanago Integration record."),
        SmError::Transport(TransportFailure::Timeout) => "SALESmanago did not answer in time. Check the connection and try again.".into(),
        SmError::Transport(TransportFailure::Network) => "SALESmanago could not be reached. Check the internet connection and the endpoint on the SALESmanago Integration record.".into(),
        SmError::Transport(TransportFailure::CrossOrigin) => "The browser blocked the call to SALESmanago: the endpoint does not allow calls from this Dynamics address (CORS). SALESmanago's API is made to be called from servers: run salesmanago-relay (see the solution's README) and enter its https:// address and relay key on the SALESmanago Integration record.".into(),
        SmError::InvalidResponse { detail } => format!("SALESmanago sent an answer the integration cannot read ({detail}). Try again; if it happens again, check the endpoint."),
        SmError::Relay(refusal) => relay(*refusal),
        SmError::RelayCredentials => "SALESmanago refused the relay's credentials. Ask the relay's administrator to check its SALESMANAGO_CLIENT_ID, SALESMANAGO_API_SECRET and SALESMANAGO_ENDPOINT.".into(),
    }
}

fn endpoint(error: EndpointError) -> &'static str {
    match error {
        EndpointError::Missing => "Enter the SALESmanago endpoint, such as app3.salesmanago.pl.",
        EndpointError::NotSalesmanagoHost => "The endpoint is not a SALESmanago server. Enter your SALESmanago host, such as app3.salesmanago.pl, or the full https:// address of a relay.",
        EndpointError::InsecureScheme => "The endpoint must start with https://.",
        EndpointError::CredentialsInUrl => "The endpoint must not contain a user name or password.",
        EndpointError::QueryOrFragment => "The endpoint must not contain “?” or “#”. Enter only the host or the relay's address.",
        EndpointError::InvalidHost => "The endpoint's host name is not valid. Enter a host such as app3.salesmanago.pl or an https:// address.",
    }
}

fn email_problem(problem: EmailProblem) -> &'static str {
    match problem {
        EmailProblem::TooLong => "it is longer than 254 characters",
        EmailProblem::LocalPartTooLong => "the part before @ is longer than 64 characters",
        EmailProblem::NotAscii => "it contains letters such as ą or ü, which SALESmanago does not accept in addresses",
        EmailProblem::Malformed => "it is not of the form name@domain.com",
    }
}

fn column_label(column: &str) -> &'static str {
    match column {
        contact::FULL_NAME => "The name",
        contact::STREET_1 => "The street",
        contact::POSTAL_CODE => "The postal code",
        contact::CITY => "The city",
        contact::COUNTRY => "The country",
        contact::MOBILE_PHONE => "The mobile phone",
        contact::BUSINESS_PHONE => "The business phone",
        contact::FAX => "The fax",
        _ => "A value",
    }
}

fn field_problem(field: Field, problem: FieldProblem) -> String {
    let name = match field {
        Field::ClientId => "the client ID",
        Field::ApiSecret => "the API secret",
        Field::Owner => "the owner's e-mail",
        Field::Endpoint => "the endpoint",
        Field::RelayKey => "the relay key",
    };
    match problem {
        FieldProblem::Required => format!("Enter {name}."),
        FieldProblem::TooLong { max } => format!("Shorten {name} to at most {max} characters."),
        FieldProblem::Whitespace => {
            format!("Remove the spaces from {name}; copy it again from SALESmanago (Settings → Integration → API).")
        }
        FieldProblem::Email(problem) => format!("The owner must be an e-mail address ({}).", email_problem(problem)),
        FieldProblem::Endpoint(error) => endpoint(error).into(),
        FieldProblem::SecretWithRelay => "Leave the API secret empty when you use a relay key: the relay holds the secret. To call SALESmanago directly instead, clear the relay key.".into(),
        FieldProblem::RelayKeyShape => "Enter the relay key as salesmanago-relay new-key printed it: its id, a dot, then its secret.".into(),
    }
}

fn settings(error: &SettingsError) -> String {
    match error {
        SettingsError::NoRecord => {
            "There is no SALESmanago Integration record yet. An administrator creates it and enters the credentials."
                .into()
        }
        SettingsError::SeveralRecords => {
            "There is more than one SALESmanago Integration record, so it is unclear which to use. Delete all but one."
                .into()
        }
        SettingsError::Incomplete => text(&Message::CredentialsIncomplete),
        SettingsError::Endpoint(error) => {
            format!("The SALESmanago Integration record's endpoint is not usable. {}", endpoint(*error))
        }
        SettingsError::Scope(ScopeError::Column(column)) if column.is_empty() => "Nothing was synchronised: the sync scope on the SALESmanago Integration record is “Marked contacts” but names no column. Enter the logical name of a Yes/No column of the contact, or choose “All contacts”.".into(),
        SettingsError::Scope(ScopeError::Column(column)) => format!("Nothing was synchronised: the sync scope on the SALESmanago Integration record names “{column}”, which is not the logical name of a contact's Yes/No column the integration may use (lower-case letters, digits and _; not one it synchronises itself). Correct it on that record."),
        SettingsError::Scope(ScopeError::View(error)) => format!("Nothing was synchronised: the sync scope's view {} Choose the view again in the mapping editor, or another scope.", view_problem(error)),
        SettingsError::Scope(ScopeError::Option(value)) => format!("Nothing was synchronised: the sync scope on the SALESmanago Integration record has option {value}, which this version of the integration does not know. Import the solution again, or choose another option."),
        SettingsError::Mapping(error) => format!(
            "Nothing was synchronised: the field mapping on the SALESmanago Integration record cannot be used. {} Correct it in the mapping editor on that record.",
            mapping(error)
        ),
    }
}

/// What is wrong with a view as a scope (the editor says it too).
pub(super) fn view_problem(error: &ViewError) -> String {
    match error {
        ViewError::Malformed(detail) => format!("cannot be read ({detail})."),
        ViewError::NotContacts(table) => format!("lists {table} rows, not contacts."),
        ViewError::Unsupported(what) => format!("uses {what}, which the integration cannot decide for each contact: a view's conditions must be on the contact's own columns (equal, not equal, empty, in a list, like, begins or ends with, greater or less than)."),
    }
}

/// What is wrong with a stored field mapping (the sentence the editor shows too).
pub(super) fn mapping(error: &MappingError) -> String {
    match error {
        MappingError::NotJson { detail } => format!("It is not valid JSON ({detail})."),
        MappingError::Shape { detail } => format!("It is not a field mapping: {detail}."),
        MappingError::Version { found } => format!(
            "It was saved by another version of the integration (version {found}); this one reads version {}.",
            fields::VERSION
        ),
        MappingError::TooMany { count } => {
            format!("It has {count} entries; at most {} can be mapped.", fields::MAX_ENTRIES)
        }
        MappingError::Entry { number, column, problem } => {
            let which =
                if column.is_empty() { format!("Entry {number}") } else { format!("Entry {number} ({column})") };
            let what = match problem {
                EntryProblem::UnknownKey(key) => format!("has “{key}”, which an entry does not have"),
                EntryProblem::Column => "needs the logical name of a contact column (lower-case letters, digits and _)".into(),
                EntryProblem::Reserved => "maps a column the integration synchronises itself (name, e-mail, phones, address, birth date, opt-outs, consents, status)".into(),
                EntryProblem::Type(name) => format!("has the type “{name}”; use text, number, date, yesno, choice or lookup"),
                EntryProblem::Target => "needs exactly one of field, detail or tag".into(),
                EntryProblem::Field(name) => format!("maps to the field “{name}”; SALESmanago's free standard fields are company and province"),
                EntryProblem::Name(name) => format!("has the detail or tag name “{name}”, which is empty, longer than {} characters, or the integration's own tag", fields::MAX_NAME),
                EntryProblem::Direction(name) => format!("has the direction “{name}”; use to, from or both"),
                EntryProblem::TypeForTarget => "cannot go there: only Yes/No and choice columns make tags, and a standard field takes text, a choice or a lookup".into(),
                EntryProblem::NotFromSalesmanago => "cannot come from SALESmanago (a lookup, or a field SALESmanago does not return): set its direction to “to”".into(),
                EntryProblem::Labels => "is a choice without its labels: save it again from the mapping editor".into(),
                EntryProblem::NoSuchColumn => "names a column the contact does not have, or one that cannot be mapped".into(),
                EntryProblem::Twice { first } => format!("maps to the same SALESmanago field, detail or tag as entry {first}"),
            };
            format!("{which} {what}.")
        }
    }
}

fn summary(job: BulkJob, c: &Counts) -> String {
    let label = command_label(job.command());
    let counts = match job {
        BulkJob::PullConsents => format!(
            "{label} finished: {} contacts checked. {} updated, {} already the same, {} not in SALESmanago's file (only contacts sent from Dynamics are in it), {} skipped (no valid e-mail), {} failed.",
            c.total, c.done, c.same, c.missing, c.skipped, c.failed
        ),
        BulkJob::PullChanges => format!(
            "{label} finished: {} contacts changed in SALESmanago. {} updated in Dynamics, {} already the same, {} not in Dynamics (not created, as in the original plugin), {} failed.",
            c.total, c.done, c.same, c.missing, c.failed
        ),
        BulkJob::PullActivity => format!(
            "{label} finished: {} contacts checked. {} activities added to their timelines, {} there already, {} contacts not in SALESmanago, {} failed.",
            c.total, c.done, c.same, c.missing, c.failed
        ),
        BulkJob::ExportChanges => format!(
            "{label} finished: {} contacts changed in Dynamics since the last catch-up. {} sent, {} skipped, {} failed.",
            c.total, c.done, c.skipped, c.failed
        ),
        BulkJob::ExportSelected | BulkJob::ExportAll => format!(
            "{label} finished: {} contacts. {} sent, {} skipped, {} failed.",
            c.total, c.done, c.skipped, c.failed
        ),
    };
    let mut text = match c.outside {
        0 => counts,
        n => format!(
            "{counts} {n} outside the sync scope set on the SALESmanago Integration record: not sent or changed."
        ),
    };
    if c.again > 0 {
        text +=
            &format!(" {} of those sent went again because the field mapping changed since they last went.", c.again);
    }
    if c.entered > 0 {
        text += &format!(" {} of those sent had been outside the sync scope and are inside it now.", c.entered);
    }
    text
}

fn relay(refusal: Refusal) -> String {
    match refusal {
        Refusal::Key => "The relay refused the relay key. Enter the key its administrator gave you as the relay key on the SALESmanago Integration record, or ask for a new one.",
        Refusal::Origin => "The relay does not allow calls from this Dynamics address. Ask its administrator to add this address to RELAY_ALLOWED_ORIGINS.",
        Refusal::Method => "The relay does not forward this SALESmanago function. Ask its administrator to update the relay to this solution's version.",
        Refusal::TooLarge => "The request was too large for the relay. Ask its administrator to raise RELAY_MAX_BODY_BYTES.",
        Refusal::Rate => "The relay is receiving too many requests with this key. Try again in a minute.",
        Refusal::Busy => "The relay is busy. Try again in a minute.",
        Refusal::Unreachable => "The relay could not reach SALESmanago. Try again in a few minutes; if it goes on, ask the relay's administrator to check its SALESMANAGO_ENDPOINT and network.",
        Refusal::Timeout => "SALESmanago did not answer the relay in time. Try again in a few minutes.",
        Refusal::File => "The relay refused the address of SALESmanago's file (it expired, or the relay did not hand it out). Run the job again.",
        Refusal::Redirect => "SALESmanago answered the relay with a redirect to another address, which the relay does not follow. Ask the relay's administrator to check its SALESMANAGO_ENDPOINT (the account may have moved to another server).",
        Refusal::AnswerTooLarge => "SALESmanago's answer was larger than the relay takes. Ask the relay's administrator to raise RELAY_MAX_ANSWER_BYTES, or select fewer contacts.",
        Refusal::FileHost => "SALESmanago handed out its file on a host the relay does not fetch files from. Ask the relay's administrator to add that host (its log names it) to RELAY_FILE_HOSTS.",
        Refusal::Body => "The relay could not read the request: it arrived cut off or too slowly. Try again; if it goes on, check the network between this browser and the relay.",
    }
    .into()
}

/// A privilege Dataverse named (`prvReadnew_salesmanagointegration`) in words; one it does not
/// name as `prv<action><table>` stays a request.
fn privilege_words(privilege: &str) -> String {
    let Some((action, table)) = super::privilege_parts(privilege) else { return "make this request".into() };
    let action = match action {
        "Read" => "read",
        "Write" => "change",
        "Create" => "create",
        "Delete" => "delete",
        "Append" | "AppendTo" => "link",
        "Assign" => "assign",
        _ => "share",
    };
    let table = match table {
        "new_salesmanagointegration" => "the SALESmanago Integration record",
        "new_salesmanagoactivity" => "SALESmanago activity",
        "contact" => "contacts",
        _ => "these records",
    };
    format!("{action} {table}")
}
