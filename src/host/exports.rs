//! Every function the engine exports to JavaScript (`SalesManagoEngine.ready()` resolves to
//! an object holding them).

// Exports are reached from JavaScript, not from Rust.
#![allow(unreachable_pub)]

use wasm_bindgen::prelude::*;

use crate::core::command::Command;
use crate::core::i18n::{text, Lang, Message};

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
    let map: serde_json::Map<String, serde_json::Value> =
        entries.into_iter().map(|(key, message)| (key.to_owned(), text(&message, lang).into())).collect();
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
