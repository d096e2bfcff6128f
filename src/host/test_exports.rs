//! Exports for tests and the bench only, built with the `test-exports` feature into the test
//! engine (`target/engine-test/engine.en.js`, …); the engine the solution ships has none of them.

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use crate::prelude::*;

use wasm_bindgen::prelude::*;

use crate::core::dataverse::contact::ContactRow;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};
use crate::core::mapping::fields::FieldMapping;
use crate::core::mapping::{from_salesmanago, to_salesmanago, OutboundOptions};
use crate::core::salesmanago::contact::SmContact;
use crate::core::salesmanago::script::{ScriptCall, ScriptConfig};
use crate::object;

use super::browser::now_ms;
use super::exports::{error, invalid_input};
use super::salesmanago::Connection;

/// Bytes of the engine's WebAssembly memory, for the benchmark's memory figures.
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
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
    let (client, retry) = config.client().map_err(|e| error(Message::Endpoint(e), lang, "endpoint"))?;
    let credentials = &client.credentials;
    if credentials.client_id.is_empty() || credentials.api_secret.is_empty() || credentials.owner.is_empty() {
        return Err(error(Message::CredentialsIncomplete, lang, "credentials"));
    }
    let connection = Connection { client, retry, timeout_ms: config.timeout_ms };
    match super::script::execute(&connection, call).await {
        Ok(output) => Ok(output.to_string()),
        Err(e) => Err(error(Message::Salesmanago(e.clone()), lang, e.kind())),
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
    let mut changed = Vec::new();
    if opt_in_newsletter {
        changed.push(crate::core::dataverse::schema::contact::DO_NOT_BULK_EMAIL.to_owned());
    }
    if opt_in_sms {
        changed.push(crate::core::dataverse::schema::contact::DO_NOT_SMS.to_owned());
    }
    let options = OutboundOptions { now_ms: now_ms(), changed, ..OutboundOptions::default() };
    let outbound = to_salesmanago(&ContactRow::from_json(&row), &options, &FieldMapping::NONE)
        .map_err(|skip| error(Message::Skipped(skip), lang, "skipped"))?;
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
    let patch = from_salesmanago(&ContactRow::from_json(&row), &contact, &FieldMapping::NONE);
    let mut columns = Map::new();
    columns.extend(patch.columns);
    Ok(Value::Object(columns).to_string())
}

fn parse(json: &str, lang: Lang) -> Result<Value, JsValue> {
    crate::core::json::from_str(json).map_err(|e| invalid_input(e, lang))
}

fn parse_row(json: &str, lang: Lang) -> Result<Map, JsValue> {
    match parse(json, lang)? {
        Value::Object(row) => Ok(row),
        _ => Err(invalid_input("the row is not an object", lang)),
    }
}
