//! Every function the engine exports to JavaScript (`SalesManagoEngine.ready()` resolves to
//! an object holding them).

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::credentials::CredentialsForm;
use crate::core::dataverse::contact::ContactRow;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{self, Map, Value};
use crate::core::mapping::{from_salesmanago, to_salesmanago, OutboundOptions};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::script::{ScriptCall, ScriptConfig};
use crate::object;

use super::browser::now_ms;
use super::commands::{self, Context};
use super::dynamics::{from_json, to_json, FormContext};
use super::salesmanago::Connection;

/// The engine version, for `commands.js` to check that the web resources match.
#[wasm_bindgen]
pub fn version() -> String {
    crate::VERSION.into()
}

/// Bytes of the engine's WebAssembly memory, for the benchmark's memory figures.
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
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
        ("needForm", Message::CredentialsNeedForm),
        ("engine", Message::EngineVersion { version: crate::VERSION }),
    ];
    let map: Map = entries.into_iter().map(|(key, message)| (key.to_owned(), text(&message, lang).into())).collect();
    Value::Object(map).to_string()
}

/// Runs the command `name` (a [`Command::name`]) and resolves to the text to show the user.
///
/// `context` is `{lcid, xrm, primaryControl?, selectedIds?, selectedControl?, form?}`: the
/// page's `Xrm` and the button's CrmParameters (`form`: the credential page's fields).
/// Fails with an `Error` whose `message` is the user's text, `kind` names the failure, and
/// `fields` (credential page) maps field ids to their problems.
#[wasm_bindgen(js_name = runCommand)]
pub async fn run_command(name: String, context: JsValue) -> Result<JsValue, JsValue> {
    let member = |key: &str| js_sys::Reflect::get(&context, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let lang = Lang::from_lcid(member("lcid").as_f64().unwrap_or(1033.0) as u32);
    let Some(command) = Command::from_name(&name) else {
        return Err(error(&Message::UnknownCommand { name }, lang, "unknownCommand"));
    };
    let form = match to_json(&member("form")) {
        Value::Null => None,
        value => Some(CredentialsForm::from_json(&value).map_err(|e| invalid_input(e, lang))?),
    };
    let strings = |key: &str| -> Vec<String> {
        match to_json(&member(key)) {
            Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    };
    let context = Context {
        lang,
        xrm: member("xrm"),
        primary_control: member("primaryControl"),
        selected_ids: strings("selectedIds"),
        selected_control: member("selectedControl"),
        form,
        changed: strings("changed"),
    };
    match commands::run(command, context).await {
        Ok(done) => {
            let mut message = text(&done.message.brief(), lang);
            for detail in &done.details {
                message.push('\n');
                message.push_str(detail);
            }
            let download = done.download.map(|(count, csv)| {
                object! {
                    "name": format!("salesmanago-{}-not-done.csv", name.replace('.', "-")),
                    "text": csv,
                    "prompt": text(&Message::DownloadNotDone { count }, lang),
                }
            });
            let result = object! {"message": message, "closeForm": done.close_form, "download": download};
            Ok(from_json(&result))
        }
        Err(failure) => {
            let e = error(&failure.message, lang, failure.kind);
            if !failure.fields.is_empty() {
                let fields = js_sys::Object::new();
                for (field, message) in &failure.fields {
                    let _ = js_sys::Reflect::set(&fields, &field.id().into(), &text(message, lang).into());
                }
                let _ = js_sys::Reflect::set(&e, &"fields".into(), &fields);
            }
            Err(e)
        }
    }
}

/// What the credential page shows of the credentials stored on the form's record, as JSON
/// `{clientId, owner, endpoint, secretStored}`: never the secret itself.
#[wasm_bindgen(js_name = credentialsState)]
pub fn credentials_state(form_context: JsValue, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    commands::credentials_state(&FormContext(form_context))
        .map(|state| state.to_string())
        .map_err(|e| error(&Message::Dataverse { detail: e.message }, lang, "dataverse"))
}

/// A JavaScript `Error` with the user's text as `message` and a stable `kind` for scripts.
fn error(message: &Message, lang: Lang, kind: &str) -> JsValue {
    let error = js_sys::Error::new(&text(&message.clone().brief(), lang));
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}

fn invalid_input(detail: impl ToString, lang: Lang) -> JsValue {
    error(&Message::InvalidInput { detail: detail.to_string() }, lang, "invalidInput")
}

fn parse(json: &str, lang: Lang) -> Result<Value, JsValue> {
    json::from_str(json).map_err(|e| invalid_input(e, lang))
}

fn parse_row(json: &str, lang: Lang) -> Result<Map, JsValue> {
    match parse(json, lang)? {
        Value::Object(row) => Ok(row),
        _ => Err(invalid_input("the row is not an object", lang)),
    }
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
    let config = ScriptConfig::from_json(&parse(&config, lang)?).map_err(|e| invalid_input(e, lang))?;
    let call = ScriptCall::from_json_text(&call).map_err(|e| invalid_input(e, lang))?;
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
    let row = parse_row(&row, lang)?;
    let options = OutboundOptions { now_ms: now_ms(), opt_in_newsletter, opt_in_sms };
    let outbound = to_salesmanago(&ContactRow::from_json(&row), &options)
        .map_err(|skip| error(&Message::Skipped(skip), lang, "skipped"))?;
    let warnings: Vec<String> = outbound.warnings.into_iter().map(|w| text(&Message::Warning(w), lang)).collect();
    Ok(object! {"details": outbound.details, "warnings": warnings}.to_string())
}

/// The columns of a Dataverse contact row (Web API JSON) that change to hold what a
/// SALESmanago contact (from `contact/basic` or `listById`) holds, as a JSON object.
#[wasm_bindgen(js_name = contactPatch)]
pub fn contact_patch(row: String, contact: String, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let row = parse_row(&row, lang)?;
    let contact = parse(&contact, lang)?;
    let contact = SmContact::from_json(&contact).ok_or_else(|| invalid_input("the contact is not an object", lang))?;
    let patch = from_salesmanago(&ContactRow::from_json(&row), &contact);
    let mut columns = Map::new();
    columns.extend(patch.columns);
    Ok(Value::Object(columns).to_string())
}
