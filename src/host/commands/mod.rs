//! The user commands, end to end: read from Dynamics, let the core decide, call SALESmanago,
//! write back. One module per kind of command.

use crate::prelude::*;

#[cfg(feature = "contact")]
mod contact;
#[cfg(feature = "admin")]
mod credentials;
#[cfg(any(feature = "contact", feature = "jobs"))]
mod jobs;
#[cfg(feature = "admin")]
pub(crate) mod mapping;

use crate::core::json::Map;
use wasm_bindgen::JsValue;

use crate::core::command::{BulkJob, Command};
use crate::core::credentials::{CredentialsForm, Field};
use crate::core::dataverse::error::DvError;
use crate::core::dataverse::schema::integration;
use crate::core::i18n::{text, Lang, Message};
use crate::core::integration::{retry_policy, settings, Settings, SELECT};
use crate::core::salesmanago::script::DEFAULT_TIMEOUT_MS;
use crate::core::salesmanago::SmError;

use super::dynamics::{ClientApiError, Ui, WebApi};
use super::salesmanago::Connection;

#[cfg(feature = "admin")]
pub(crate) use credentials::credentials_state;

/// What a command was started with: `Xrm`, and the CrmParameters of its button.
pub(crate) struct Context {
    /// The user's language.
    pub(crate) lang: Lang,
    /// The `Xrm` object of the page.
    pub(crate) xrm: JsValue,
    /// PrimaryControl: the formContext on a form.
    pub(crate) primary_control: JsValue,
    /// SelectedControlSelectedItemIds, braces stripped (grid buttons).
    pub(crate) selected_ids: Vec<String>,
    /// SelectedControl: the grid (grid buttons).
    pub(crate) selected_control: JsValue,
    /// What the credential page's fields hold (credentials.save only).
    pub(crate) form: Option<CredentialsForm>,
    /// The columns a save changed (contact.saved only).
    pub(crate) changed: Vec<String>,
}

impl Context {
    fn web_api(&self) -> Result<WebApi, Failure> {
        Ok(WebApi::of(&self.xrm)?)
    }

    fn ui(&self) -> Ui {
        Ui::new(self.xrm.clone())
    }

    /// A message in the user's language.
    fn say(&self, message: &Message) -> String {
        text(message, self.lang)
    }
}

/// A command's result: what to tell the user, and a file to offer.
pub(crate) struct Done {
    /// The outcome.
    pub(crate) message: Message,
    /// Further lines (warnings), in the user's language.
    pub(crate) details: Vec<String>,
    /// A CSV of the contacts a job did not handle.
    pub(crate) download: Option<(u64, String)>,
    /// Close the form once the user has read the message (its record is gone).
    pub(crate) close_form: bool,
}

impl From<Message> for Done {
    fn from(message: Message) -> Done {
        Done { message, details: Vec::new(), download: None, close_form: false }
    }
}

/// Why a command did not succeed: the message, a stable kind for scripts, and per-field texts.
pub(crate) struct Failure {
    /// What to tell the user.
    pub(crate) message: Message,
    /// A stable name of the failure.
    pub(crate) kind: &'static str,
    /// Field → problem, for the credential page.
    pub(crate) fields: Vec<(Field, Message)>,
}

impl Failure {
    fn new(message: Message, kind: &'static str) -> Failure {
        Failure { message, kind, fields: Vec::new() }
    }
}

impl From<ClientApiError> for Failure {
    fn from(error: ClientApiError) -> Failure {
        match error.error {
            DvError::MissingPrivilege { privilege } => {
                Failure::new(Message::MissingPrivilege { privilege }, "privilege")
            }
            _ => Failure::new(Message::Dataverse { detail: error.message }, "dataverse"),
        }
    }
}

impl From<SmError> for Failure {
    fn from(error: SmError) -> Failure {
        let kind = error.kind();
        Failure::new(Message::Salesmanago(error), kind)
    }
}

type Outcome = Result<Done, Failure>;

/// Runs `command`, one of this engine's ([`Command::engine`]; the caller refuses the others).
pub(crate) async fn run(command: Command, context: Context) -> Outcome {
    match command {
        #[cfg(feature = "admin")]
        Command::SaveCredentials => credentials::save(context).await,
        #[cfg(feature = "admin")]
        Command::IntegrationOpened => credentials::opened(context).await,
        #[cfg(feature = "admin")]
        Command::TestConnection => credentials::test_connection(context).await,
        #[cfg(feature = "contact")]
        Command::FetchContact => contact::fetch(context).await,
        #[cfg(feature = "contact")]
        Command::ContactOpened => contact::opened(context).await,
        #[cfg(feature = "contact")]
        Command::SendContact => contact::send(context).await,
        #[cfg(feature = "contact")]
        Command::ContactSaved => contact::saved(context).await,
        #[cfg(feature = "contact")]
        Command::DeleteContacts => contact::delete(context).await,
        #[cfg(feature = "export")]
        Command::ExportSelected => jobs::run(context, BulkJob::ExportSelected).await,
        #[cfg(feature = "export")]
        Command::ExportAll => jobs::run(context, BulkJob::ExportAll).await,
        #[cfg(feature = "export")]
        Command::ExportChanges => jobs::run(context, BulkJob::ExportChanges).await,
        #[cfg(feature = "consents")]
        Command::PullConsents => jobs::run(context, BulkJob::PullConsents).await,
        #[cfg(feature = "changes")]
        Command::PullChanges => jobs::run(context, BulkJob::PullChanges).await,
        #[cfg(feature = "activity")]
        Command::PullActivity => jobs::run(context, BulkJob::PullActivity).await,
        // The other engines' commands, refused by the caller.
        #[cfg(not(all(
            feature = "contact",
            feature = "admin",
            feature = "export",
            feature = "consents",
            feature = "changes",
            feature = "activity"
        )))]
        _ => Err(Failure::new(Message::UnknownCommand { name: command.name().into() }, "unknownCommand")),
    }
}

/// The integration record's rows, two at most (enough to notice a second one).
async fn integration_rows(web_api: &WebApi, extra: &[&str]) -> Result<Vec<Map>, Failure> {
    let columns: Vec<&str> = SELECT.iter().chain(extra).copied().collect();
    let options = format!("?$select={}&$top=2", columns.join(","));
    Ok(web_api.retrieve_multiple(integration::TABLE, &options, None).await?.0)
}

/// The settings of the one integration record, and the record's other columns asked for.
async fn load_settings(web_api: &WebApi, extra: &[&str]) -> Result<(Settings, Map), Failure> {
    let rows = integration_rows(web_api, extra).await?;
    let settings = settings(&rows).map_err(|e| Failure::new(Message::Settings(e), "settings"))?;
    Ok((settings, rows.into_iter().next().unwrap_or_default()))
}

fn connection(settings: &Settings) -> Connection {
    Connection { client: settings.client.clone(), retry: retry_policy(), timeout_ms: DEFAULT_TIMEOUT_MS }
}
