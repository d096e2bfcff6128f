//! Every function the engine exports to JavaScript (`SalesManagoEngine.ready()` resolves to
//! an object holding them).

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::dataverse::contact::ContactRow;
use crate::core::i18n::{text, Lang, Message};
use crate::core::mapping::{from_salesmanago, to_salesmanago, OutboundOptions};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::script::{ScriptCall, ScriptConfig};

use super::browser::now_ms;
use super::salesmanago::Connection;

/// The engine version, for `commands.js` to check that the web resources match.
#[wasm_bindgen]
pub fn version() -> String {
    crate::VERSION.into()
}

/// The credential page's labels in the user's language, as a JSON object.
#[wasm_bindgen(js_name = credentialsText)]
pub fn credentials_text(lcid: u32) -> String {
    let lang = Lang::from_lcid(lcid);
    let entries = [
        ("title", Message::CredentialsTitle),
        ("clientId", Message::ClientIdLabel),
        ("apiSecret", Message::ApiSecretLabel),
        ("owner", Message::OwnerLabel),
        ("endpoint", Message::EndpointLabel),
        ("save", Message::CommandLabel(Command::SaveCredentials)),
        ("secretSaved", Message::SecretSaved),
        ("engine", Message::EngineVersion { version: crate::VERSION }),
    ];
    // `extend`, not `collect`, which would compile in a sort (see `contact::properties`).
    let mut map = serde_json::Map::new();
    map.extend(entries.into_iter().map(|(key, message)| (key.to_owned(), text(&message, lang).into())));
    serde_json::Value::Object(map).to_string()
}

/// Runs the command `name` (a [`Command::name`]) and resolves to the text to show the user.
///
/// Fails with the localised reason when `name` is no command.
#[wasm_bindgen(js_name = runCommand)]
pub async fn run_command(name: String, lcid: u32) -> Result<String, JsError> {
    let lang = Lang::from_lcid(lcid);
    let Some(command) = Command::from_name(&name) else {
        return Err(JsError::new(&text(&Message::UnknownCommand { name }, lang)));
    };
    Ok(text(&Message::CommandNotAvailable { command, version: crate::VERSION }, lang))
}

/// A JavaScript `Error` with the user's text as `message` and a stable `kind` for scripts.
fn error(message: &Message, lang: Lang, kind: &str) -> JsValue {
    let error = js_sys::Error::new(&text(message, lang));
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}

fn invalid_input(detail: impl ToString, lang: Lang) -> JsValue {
    error(&Message::InvalidInput { detail: detail.to_string() }, lang, "invalidInput")
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, lang: Lang) -> Result<T, JsValue> {
    serde_json::from_str(json).map_err(|e| invalid_input(e, lang))
}

/// Makes one SALESmanago API call. `config` is `{endpoint, clientId, apiSecret, owner,
/// timeoutMs?, maxAttempts?, baseDelayMs?}`; `call` is `{"method": "contact/upsert", …}` with
/// the API's own field names. Resolves to the call's output as JSON.
///
/// Fails with an `Error` whose `message` is the user's text and whose `kind` names the failure
/// (`auth`, `throttled`, `crossOrigin`, `endpoint`, `invalidInput`, …).
#[wasm_bindgen(js_name = salesmanagoCall)]
pub async fn salesmanago_call(config: String, call: String, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let config: ScriptConfig = parse(&config, lang)?;
    let call: ScriptCall = parse(&call, lang)?;
    let (client, retry) = config.client().map_err(|e| error(&Message::Endpoint(e), lang, "endpoint"))?;
    let credentials = &client.credentials;
    if credentials.client_id.is_empty() || credentials.api_secret.is_empty() || credentials.owner.is_empty() {
        return Err(error(&Message::CredentialsIncomplete, lang, "credentials"));
    }
    let connection = Connection { client, retry, timeout_ms: config.timeout_ms };
    match super::script::execute(&connection, call).await {
        Ok(output) => Ok(output.to_string()),
        Err(e) => Err(error(&Message::Salesmanago(e.clone()), lang, e.kind())),
    }
}

/// Maps a Dataverse contact row (Web API JSON) to the SALESmanago upsert it becomes. Resolves
/// to `{"details": <upsert>, "warnings": [text…]}`.
///
/// Fails with an `Error` of kind `skipped` saying why the contact cannot be sent.
#[wasm_bindgen(js_name = mapContact)]
pub fn map_contact(row: String, opt_in_newsletter: bool, opt_in_sms: bool, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let row: serde_json::Map<String, serde_json::Value> = parse(&row, lang)?;
    let options = OutboundOptions { now_ms: now_ms(), opt_in_newsletter, opt_in_sms };
    let outbound = to_salesmanago(&ContactRow::from_json(&row), &options)
        .map_err(|skip| error(&Message::Skipped(skip), lang, "skipped"))?;
    let warnings: Vec<String> = outbound.warnings.into_iter().map(|w| text(&Message::Warning(w), lang)).collect();
    Ok(serde_json::json!({"details": outbound.details, "warnings": warnings}).to_string())
}

/// The columns of a Dataverse contact row (Web API JSON) that change to hold what a
/// SALESmanago contact (from `contact/basic` or `listById`) holds, as a JSON object.
#[wasm_bindgen(js_name = contactPatch)]
pub fn contact_patch(row: String, contact: String, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let row: serde_json::Map<String, serde_json::Value> = parse(&row, lang)?;
    let contact: serde_json::Value = parse(&contact, lang)?;
    let contact = SmContact::from_json(&contact).ok_or_else(|| invalid_input("the contact is not an object", lang))?;
    let patch = from_salesmanago(&ContactRow::from_json(&row), &contact);
    let mut columns = serde_json::Map::new();
    columns.extend(patch.columns);
    Ok(serde_json::Value::Object(columns).to_string())
}
