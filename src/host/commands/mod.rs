//! The user commands, end to end: read from Dynamics, let the core decide, call SALESmanago,
//! write back. One function per command.

use serde_json::{Map, Value};
use wasm_bindgen::JsValue;

use crate::core::command::Command;
use crate::core::credentials::{check, CredentialsForm, Field};
use crate::core::dataverse::schema::integration;
use crate::core::i18n::Message;
use crate::core::integration::{retry_policy, settings, verdict, ConnectionVerdict, Settings, SELECT};
use crate::core::salesmanago::operation::ListUsers;
use crate::core::salesmanago::script::DEFAULT_TIMEOUT_MS;

use super::dynamics::{ClientApiError, FormContext, WebApi};
use super::salesmanago::Connection;

/// What a command was started with: `Xrm`, and the CrmParameters of its button.
pub(crate) struct Context {
    /// The `Xrm` object of the page.
    pub(crate) xrm: JsValue,
    /// PrimaryControl: the formContext on a form.
    pub(crate) primary_control: JsValue,
    /// What the credential page's fields hold (credentials.save only).
    pub(crate) form: Option<CredentialsForm>,
}

/// Why a command did not succeed: the message, a stable kind for scripts, and per-field texts.
pub(crate) struct Failure {
    /// What to tell the user.
    pub(crate) message: Message,
    /// A stable name of the failure.
    pub(crate) kind: &'static str,
    /// Field id → problem, for the credential page.
    pub(crate) fields: Vec<(Field, Message)>,
}

impl Failure {
    fn new(message: Message, kind: &'static str) -> Failure {
        Failure { message, kind, fields: Vec::new() }
    }
}

impl From<ClientApiError> for Failure {
    fn from(error: ClientApiError) -> Failure {
        Failure::new(Message::Dataverse { detail: error.message }, "dataverse")
    }
}

type Outcome = Result<Message, Failure>;

/// Runs `command`; resolves to what to tell the user.
pub(crate) async fn run(command: Command, context: Context) -> Outcome {
    match command {
        Command::SaveCredentials => save_credentials(context).await,
        Command::TestConnection => test_connection(context).await,
        other => Ok(Message::CommandNotAvailable { command: other, version: crate::VERSION }),
    }
}

/// The integration record's rows, two at most (enough to notice a second one).
async fn integration_rows(web_api: &WebApi) -> Result<Vec<Map<String, Value>>, Failure> {
    let options = format!("?$select={}&$top=2", SELECT.join(","));
    Ok(web_api.retrieve_multiple(integration::TABLE, &options, None).await?.0)
}

/// The settings of the one integration record.
async fn load_settings(web_api: &WebApi) -> Result<Settings, Failure> {
    settings(&integration_rows(web_api).await?).map_err(|e| Failure::new(Message::Settings(e), "settings"))
}

fn connection(settings: &Settings) -> Connection {
    Connection { client: settings.client.clone(), retry: retry_policy(), timeout_ms: DEFAULT_TIMEOUT_MS }
}

async fn test_connection(context: Context) -> Outcome {
    let web_api = WebApi::of(&context.xrm)?;
    let settings = load_settings(&web_api).await?;
    let users = connection(&settings)
        .call(&ListUsers)
        .await
        .map_err(|e| Failure::new(Message::Salesmanago(e.clone()), e.kind()))?;
    let owner = settings.client.credentials.owner.clone();
    match verdict(&owner, &users) {
        ConnectionVerdict::Ok => Ok(Message::ConnectionOk { owner }),
        ConnectionVerdict::OwnerNotAUser => Err(Failure::new(Message::OwnerNotAUser { owner }, "owner")),
    }
}

async fn save_credentials(context: Context) -> Outcome {
    let form = FormContext(context.primary_control);
    let typed = context.form.unwrap_or_default();
    if form.id()?.is_none() {
        let web_api = WebApi::of(&context.xrm)?;
        if !integration_rows(&web_api).await?.is_empty() {
            return Err(Failure::new(Message::IntegrationExists, "integrationExists"));
        }
    }
    let secret_stored = matches!(form.value(integration::API_SECRET)?, Value::String(s) if !s.trim().is_empty());
    let store = check(&typed, secret_stored).map_err(|problems| Failure {
        message: Message::FieldsInvalid,
        kind: "invalid",
        fields: problems
            .into_iter()
            .map(|(field, problem)| (field, Message::FieldInvalid { field, problem }))
            .collect(),
    })?;
    for (field, value) in &store.0 {
        form.set_value(field.column(), &Value::String(value.clone()))?;
    }
    form.save().await?;
    Ok(Message::CredentialsSaved)
}

/// What the credential page shows of the stored credentials: never the secret, only whether
/// one is stored.
pub(crate) fn credentials_state(form: &FormContext) -> Result<Value, ClientApiError> {
    let text = |column| -> Result<Value, ClientApiError> {
        Ok(match form.value(column)? {
            Value::String(s) => Value::String(s),
            _ => Value::String(String::new()),
        })
    };
    let secret_stored = matches!(form.value(integration::API_SECRET)?, Value::String(s) if !s.trim().is_empty());
    let mut state = Map::new();
    state.insert(Field::ClientId.id().into(), text(integration::CLIENT_ID)?);
    state.insert(Field::Owner.id().into(), text(integration::OWNER)?);
    state.insert(Field::Endpoint.id().into(), text(integration::ENDPOINT)?);
    state.insert("secretStored".into(), Value::Bool(secret_stored));
    Ok(Value::Object(state))
}
