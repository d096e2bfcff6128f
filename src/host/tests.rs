//! The exports as JavaScript sees them, run in headless Chromium by wasm-bindgen-test.

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use super::exports::run_command;
use super::pages::credentials_text;

wasm_bindgen_test_configure!(run_in_browser);

/// A command context holding only the user's language.
fn context(lcid: u32) -> wasm_bindgen::JsValue {
    let context = js_sys::Object::new();
    js_sys::Reflect::set(&context, &"lcid".into(), &lcid.into()).expect("set");
    context.into()
}

#[wasm_bindgen_test]
fn credential_labels_follow_the_users_language() {
    let pl = crate::core::json::from_str(&credentials_text(1045)).expect("JSON");
    let en = crate::core::json::from_str(&credentials_text(1033)).expect("JSON");
    assert_eq!(pl["apiSecret"], "Sekret API");
    assert_eq!(en["apiSecret"], "API secret");
    for key in ["title", "clientId", "apiSecret", "owner", "endpoint", "save", "secretSaved", "needForm", "engine"] {
        assert!(en[key].as_str().is_some_and(|t| !t.is_empty()), "{key}");
        assert!(pl[key].as_str().is_some_and(|t| !t.is_empty()), "{key}");
    }
}

#[wasm_bindgen_test]
async fn unknown_commands_reject_with_a_localised_message() {
    let error = run_command("contact.frobnicate".into(), context(1045)).await.expect_err("unknown command");
    let message = error;
    let text = js_sys::Reflect::get(&message, &"message".into()).expect("message").as_string().expect("text");
    assert!(text.contains("contact.frobnicate") && text.contains("zaimportuj"), "{text}");
}

#[wasm_bindgen_test]
async fn a_command_without_xrm_fails_with_a_dataverse_error() {
    let error = run_command("job.pullChanges".into(), context(1033)).await.expect_err("no Xrm");
    let kind = js_sys::Reflect::get(&error, &"kind".into()).expect("kind").as_string();
    let text = js_sys::Reflect::get(&error, &"message".into()).expect("message").as_string().expect("text");
    assert_eq!(kind.as_deref(), Some("dataverse"));
    assert!(text.starts_with("Dynamics 365 refused the request"), "{text}");
}
