//! The credential page: save what the admin typed into the form's hidden columns, and test
//! the connection they make.

use crate::core::json::{Map, Value};
use crate::prelude::*;

use crate::core::credentials::{check, Field, Stored};
use crate::core::dataverse::schema::integration;
use crate::core::i18n::Message;
use crate::core::integration::{verdict, ConnectionVerdict};
use crate::core::salesmanago::operation::ListUsers;
use crate::core::salesmanago::relay::check_verdict;
use crate::core::salesmanago::script::DEFAULT_TIMEOUT_MS;

use super::super::dynamics::{ClientApiError, FormContext};
use super::super::transport::perform;
use super::{connection, integration_rows, load_settings, Context, Failure, Outcome};

pub(super) async fn save(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    let typed = context.form.clone().unwrap_or_default();
    if form.id()?.is_none() && !integration_rows(&context.web_api()?, &[]).await?.is_empty() {
        return Err(Failure::new(Message::IntegrationExists, "integrationExists"));
    }
    let store = check(&typed, stored(&form)?).map_err(|problems| Failure {
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
    Ok(Message::CredentialsSaved.into())
}

/// On opening the integration form: a new record while one exists is refused, with the reason
/// on the form (commands.js then blocks its save).
pub(super) async fn opened(context: Context) -> Outcome {
    let form = FormContext(context.primary_control.clone());
    if form.id()?.is_none() && !integration_rows(&context.web_api()?, &[]).await?.is_empty() {
        form.notify("salesmanago.single", "ERROR", Some(&context.say(&Message::IntegrationExists)));
        return Err(Failure::new(Message::IntegrationExists, "integrationExists"));
    }
    Ok(Message::AlreadyMatches.into())
}

/// Whether the record holds a secret and a relay key.
fn stored(form: &FormContext) -> Result<Stored, ClientApiError> {
    let held = |column| -> Result<bool, ClientApiError> {
        Ok(matches!(form.value(column)?, Value::String(s) if !s.trim().is_empty()))
    };
    Ok(Stored { secret: held(integration::API_SECRET)?, relay_key: held(integration::RELAY_KEY)? })
}

/// What the credential page shows of the stored credentials: never the secret or the relay
/// key, only whether one is stored.
pub(crate) fn credentials_state(form: &FormContext) -> Result<Value, ClientApiError> {
    let text = |column| -> Result<Value, ClientApiError> {
        Ok(match form.value(column)? {
            Value::String(s) => Value::String(s),
            _ => Value::String(String::new()),
        })
    };
    let held = stored(form)?;
    let mut state = Map::new();
    state.insert(Field::ClientId.id().into(), text(integration::CLIENT_ID)?);
    state.insert(Field::Owner.id().into(), text(integration::OWNER)?);
    state.insert(Field::Endpoint.id().into(), text(integration::ENDPOINT)?);
    state.insert("secretStored".into(), Value::Bool(held.secret));
    state.insert("relayKeyStored".into(), Value::Bool(held.relay_key));
    Ok(Value::Object(state))
}

/// "Test connection": the credentials against SALESmanago, directly or through the relay.
pub(super) async fn test_connection(context: Context) -> Outcome {
    let (settings, _) = load_settings(&context.web_api()?, &[]).await?;
    // Through a relay, its deep check signs the call and judges its own owner.
    let judged = match settings.client.relay_check() {
        Some(check) => check_verdict(perform(&check, DEFAULT_TIMEOUT_MS).await)?,
        None => {
            let users = connection(&settings).call(&ListUsers).await?;
            verdict(&settings.client.credentials.owner, &users)
        }
    };
    // Through a relay, the owner is the relay's: the messages say so without naming one.
    let owner = match settings.client.relay {
        Some(_) => String::new(),
        None => settings.client.credentials.owner.clone(),
    };
    match judged {
        ConnectionVerdict::Ok => Ok(Message::ConnectionOk { owner }.into()),
        ConnectionVerdict::OwnerNotAUser => Err(Failure::new(Message::OwnerNotAUser { owner }, "owner")),
    }
}
