//! The credential page: save what the admin typed into the form's hidden columns.

use crate::core::json::{Map, Value};
use crate::prelude::*;

use crate::core::credentials::{check, Field, Stored};
use crate::core::dataverse::schema::integration;
use crate::core::i18n::Message;

use super::super::dynamics::{ClientApiError, FormContext};
use super::{integration_rows, Context, Failure, Outcome};

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
