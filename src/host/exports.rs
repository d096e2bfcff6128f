//! Every function the engine exports to JavaScript (`SalesManagoEngine.ready()` resolves to
//! an object holding them).

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use crate::prelude::*;

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::credentials::CredentialsForm;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::{Map, Value};
use crate::object;

use super::commands::{self, Context};
use super::dynamics::{from_json, to_json, FormContext};

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
        .map_err(|e| error(&Message::Dataverse { detail: e.message }, lang, "dataverse"))
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

/// A JavaScript `Error` with the user's text as `message` and a stable `kind` for scripts.
pub(super) fn error(message: &Message, lang: Lang, kind: &str) -> JsValue {
    let error = js_sys::Error::new(&text(&message.clone().brief(), lang));
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}

pub(super) fn invalid_input(detail: impl ToString, lang: Lang) -> JsValue {
    error(&Message::InvalidInput { detail: detail.to_string() }, lang, "invalidInput")
}
