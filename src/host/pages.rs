//! What the integration record's two pages call besides `runCommand` (admin engine only): the
//! credential page's labels and state, and the mapping editor's start, check, preview and save.

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use crate::prelude::*;

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};

use super::commands;
use super::dynamics::FormContext;
use super::exports::{error, invalid_input};

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
        ("relayKey", Message::RelayKeyLabel),
        ("relayKeySaved", Message::RelayKeySaved),
        ("save", Message::CommandLabel(Command::SaveCredentials)),
        ("secretSaved", Message::SecretSaved),
        ("needForm", Message::CredentialsNeedForm),
        ("engine", Message::EngineVersion { version: crate::VERSION }),
    ];
    let map: Map = entries.into_iter().map(|(key, message)| (key.to_owned(), text(&message, lang).into())).collect();
    Value::Object(map).to_string()
}

/// What the credential page shows of the credentials stored on the form's record, as JSON
/// `{clientId, owner, endpoint, secretStored}`: never the secret itself.
#[wasm_bindgen(js_name = credentialsState)]
pub fn credentials_state(form_context: JsValue, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    commands::credentials_state(&FormContext(form_context))
        .map(|state| state.to_string())
        .map_err(|e| error(Message::Dataverse { detail: e.message }, lang, "dataverse"))
}

/// The mapping editor's labels in the user's language, as a JSON object.
#[wasm_bindgen(js_name = mappingText)]
pub fn mapping_text(lcid: u32) -> String {
    use crate::core::i18n::MappingLabel;
    let lang = Lang::from_lcid(lcid);
    let mut map: Map = MappingLabel::ALL
        .iter()
        .map(|(key, label)| ((*key).to_owned(), text(&Message::MappingLabel(*label), lang).into()))
        .collect();
    map.insert("engine".into(), text(&Message::EngineVersion { version: crate::VERSION }, lang).into());
    Value::Object(map).to_string()
}

/// The mapping editor's start, as JSON `{columns, rows, problem, views, scope}`: the contact's
/// columns an admin may map (from its metadata), the rows of the mapping stored on the form's
/// record, what is wrong with it when it cannot be read, the contact views (each with why it
/// cannot be the scope, if it cannot), and the record's scope.
#[wasm_bindgen(js_name = mappingOpen)]
pub async fn mapping_open(xrm: JsValue, form_context: JsValue, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let ui = super::dynamics::Ui::new(xrm);
    commands::mapping::open(&ui, &FormContext(form_context), lang)
        .await
        .map(|value| value.to_string())
        .map_err(|e| error(Message::Dataverse { detail: e.message }, lang, "dataverse"))
}

/// The mapping editor's check of its rows (`[{column, target, name, direction}]`) over the
/// columns `mappingOpen` gave, as JSON `{ok, entry, problem}`.
#[wasm_bindgen(js_name = mappingCheck)]
pub fn mapping_check(rows: String, columns: String, lcid: u32) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let (rows, columns) = (page_json(&rows, lang)?, page_json(&columns, lang)?);
    Ok(commands::mapping::check(&rows, &columns, lang).to_string())
}

/// What one contact (by e-mail, or the start of its name) would send under the rows, as JSON
/// `{contact, sent, warnings}`; fails with the reason it cannot tell.
#[wasm_bindgen(js_name = mappingPreview)]
pub async fn mapping_preview(
    xrm: JsValue,
    rows: String,
    columns: String,
    who: String,
    lcid: u32,
) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let (rows, columns) = (page_json(&rows, lang)?, page_json(&columns, lang)?);
    let ui = super::dynamics::Ui::new(xrm);
    commands::mapping::preview(&ui, &rows, &columns, &who, lang)
        .await
        .map(|value| value.to_string())
        .map_err(|reason| plain_error(&reason, "preview"))
}

/// Saves the rows as the record's mapping and the scope (`{rule, column, view, leaving}`) as its
/// scope, and the form; resolves to the text to show, or fails with what is wrong (nothing
/// saved).
#[wasm_bindgen(js_name = mappingSave)]
pub async fn mapping_save(
    xrm: JsValue,
    form_context: JsValue,
    rows: String,
    columns: String,
    scope: String,
    lcid: u32,
) -> Result<String, JsValue> {
    let lang = Lang::from_lcid(lcid);
    let (rows, columns, scope) = (page_json(&rows, lang)?, page_json(&columns, lang)?, page_json(&scope, lang)?);
    let ui = super::dynamics::Ui::new(xrm);
    commands::mapping::save(&ui, &FormContext(form_context), &rows, &columns, &scope, lang)
        .await
        .map_err(|reason| plain_error(&reason, "invalid"))
}

fn page_json(text: &str, lang: Lang) -> Result<Value, JsValue> {
    crate::core::json::from_str(text).map_err(|e| invalid_input(e, lang))
}

/// A JavaScript `Error` with `message` (the user's text already) and `kind`.
fn plain_error(message: &str, kind: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}
