//! What every engine exports to JavaScript (`SalesManagoEngine.ready()`,
//! `SalesManagoAdminEngine.ready()`, `SalesManagoExportEngine.ready()`,
//! `SalesManagoPullConsentsEngine.ready()` and the other pulls' resolve to an object holding
//! them): `runCommand`. The integration record's pages call their engine's further exports
//! ([`super::pages`]).

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use crate::prelude::*;

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::credentials::CredentialsForm;
use crate::core::i18n::{text, Lang, Message};
use crate::core::json::Value;
use crate::object;

use super::commands::{self, Context};
use super::dynamics::{from_json, to_json};

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
    // A command of another engine is as unknown here: commands.js picks the engine by the
    // command's name, so only web resources of different versions ask this one for it.
    let Some(command) = Command::from_name(&name).filter(|c| c.engine().built()) else {
        return Err(error(Message::UnknownCommand { name }, lang, "unknownCommand"));
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
            // Only a job over many contacts lists those that did not go (the exports' and the
            // pulls' engines); a contact command's or a page's summary has no list.
            #[cfg(not(feature = "jobs"))]
            let download: Option<Value> = None;
            #[cfg(feature = "jobs")]
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
            let e = error(failure.message, lang, failure.kind);
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

/// A JavaScript `Error` with the user's text as `message` and a stable `kind` for scripts.
pub(super) fn error(message: Message, lang: Lang, kind: &str) -> JsValue {
    let error = js_sys::Error::new(&text(&message.brief(), lang));
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.into());
    error.into()
}

pub(super) fn invalid_input(detail: impl ToString, lang: Lang) -> JsValue {
    error(Message::InvalidInput { detail: detail.to_string() }, lang, "invalidInput")
}
