//! The Dynamics client API (`Xrm`, `formContext`) as the engine uses it. Values cross as JSON,
//! so the core sees JSON values only. Mechanical: no decisions here.

use crate::prelude::*;
use js_sys::{Array, Function, Promise, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::browser::{now_ms, random};

use crate::core::dataverse::error::{self, DvError, DvFailure};
use crate::core::job::lease::User;
use crate::core::json::{self, Map, Value};
use crate::core::retry::{Retry, RetryPolicy};
use crate::core::salesmanago::HttpResponse;

/// A rejected or failed client API call: what Dynamics said, and what the core makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientApiError {
    /// Dynamics' message.
    pub(crate) message: String,
    /// What the failure means (throttled, unavailable, refused).
    pub(crate) error: DvError,
}

impl ClientApiError {
    fn new(message: impl Into<String>) -> ClientApiError {
        let message = message.into();
        ClientApiError { error: DvError::Refused { detail: message.clone() }, message }
    }
}

impl From<DvFailure> for ClientApiError {
    fn from(failure: DvFailure) -> Self {
        ClientApiError { message: failure.message.clone(), error: error::failure(failure) }
    }
}

/// What a rejected client API promise carried, as the core reads it.
fn failure_of(value: &JsValue) -> DvFailure {
    let member = |key: &str| Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let message = member("message").as_string().or_else(|| value.as_string()).unwrap_or_else(|| "unknown error".into());
    // `errorCode` comes signed from some client API versions.
    let code = member("errorCode").as_f64().map(|c| if c < 0.0 { (c + 4_294_967_296.0) as u32 } else { c as u32 });
    let status = member("status").as_f64().map(|s| s as u16);
    let retry_after = member("retryAfter").as_f64().map(|s| (s.max(0.0) as u64).to_string());
    DvFailure { message, status, code, retry_after }
}

impl From<JsValue> for ClientApiError {
    fn from(value: JsValue) -> Self {
        failure_of(&value).into()
    }
}

/// How a Web API request is made.
pub(crate) enum Send<'a> {
    /// `GET`.
    Get,
    /// `POST` with this content type and body.
    Post(&'a str, &'a str),
    /// `PATCH` with this JSON body, if the row still has this ETag (`If-Match`).
    Patch(&'a str, &'a str),
    /// `DELETE`.
    Delete,
}

/// A Web API request to the organisation, as it came back. Interprets nothing; the core reads
/// the answer.
pub(crate) async fn exchange(
    url: &str,
    prefer: &str,
    send: Send<'_>,
) -> ::core::result::Result<HttpResponse, DvFailure> {
    use super::transport::{body, fetch, header, message_of, Fetch};
    let (method, content_type, body_text) = match send {
        Send::Get => ("GET", None, None),
        Send::Post(content_type, body) => ("POST", Some(content_type), Some(body)),
        Send::Delete => ("DELETE", None, None),
        Send::Patch(_, body) => ("PATCH", Some("application/json"), Some(body)),
    };
    let mut headers = vec![("Accept", "application/json"), ("OData-Version", "4.0")];
    if let Some(content_type) = content_type {
        headers.push(("Content-Type", content_type));
    }
    if let Send::Patch(if_match, _) = send {
        headers.push(("If-Match", if_match));
    }
    if !prefer.is_empty() {
        headers.push(("Prefer", prefer));
    }
    let failed = |e: JsValue| DvFailure { message: message_of(&e), ..DvFailure::default() };
    let mut request = Fetch::new(method, url, &headers);
    request.body = body_text;
    let response = fetch(request).await.map_err(failed)?;
    let status = response.status();
    let retry_after = header(&response, "Retry-After");
    // Dataverse's clock: the organisation's own origin, so the header is readable.
    let date = header(&response, "Date");
    let body = HttpResponse::text(body(&response).await.map_err(failed)?);
    Ok(HttpResponse { status, retry_after, body, date })
}

/// A `GET` of the Web API with a `Prefer` header: the answer's text, or what its failure means.
async fn web_api_with(url: &str, prefer: &str) -> Result<String> {
    let reply = exchange(url, prefer, Send::Get).await;
    error::answer(reply).map_err(|error| ClientApiError { message: error.detail(), error })
}

/// A `GET` of `path` under the Web API root, as JSON, patiently (service protection).
pub(crate) async fn read_json(ui: &Ui, path: &str, prefer: &str) -> Result<Value> {
    let url = format!("{}/api/data/v9.2/{}", ui.client_url()?, path);
    let text = patiently(|| web_api_with(&url, prefer)).await?;
    json::from_str(&text).map_err(|e| ClientApiError::new(e.to_string()))
}

/// Runs `attempt` again as [`RetryPolicy::dataverse`] plans after each failure it may fix
/// (service protection above all), waiting as Dataverse asks.
async fn patiently<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: ::core::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(failure) => match RetryPolicy::dataverse().plan(tries, &failure.error, now_ms(), random()) {
                Retry::After(ms) => {
                    super::browser::sleep(ms).await;
                    tries += 1;
                }
                Retry::GiveUp => return Err(failure),
            },
            ok => return ok,
        }
    }
}

type Result<T> = ::core::result::Result<T, ClientApiError>;

fn get(target: &JsValue, key: &str) -> Result<JsValue> {
    let value = Reflect::get(target, &key.into())?;
    if value.is_undefined() || value.is_null() {
        return Err(ClientApiError::new(format!("{key} is not available")));
    }
    Ok(value)
}

/// Calls `target[method](...args)`.
fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let function: Function =
        get(target, method)?.dyn_into().map_err(|_| ClientApiError::new(format!("{method} is not a function")))?;
    let list = Array::new();
    for arg in args {
        list.push(arg);
    }
    Ok(function.apply(target, &list)?)
}

/// Calls `target[method](...args)` and awaits what it returns. `Promise.resolve` adopts any
/// thenable, so a promise of another window (the form's, seen from the credential page's
/// frame) is awaited too, where an `instanceof Promise` check would miss it.
async fn call_async(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let value = call(target, method, args)?;
    Ok(JsFuture::from(Promise::resolve(&value)).await?)
}

/// A JS value as JSON (`undefined` becomes `null`).
pub(crate) fn to_json(value: &JsValue) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    JSON::stringify(value).ok().and_then(|s| s.as_string()).and_then(|s| json::from_str(&s).ok()).unwrap_or(Value::Null)
}

/// JSON as a JS value.
pub(crate) fn from_json(value: &Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

/// `Xrm.WebApi`.
pub(crate) struct WebApi(JsValue);

impl WebApi {
    /// `Xrm.WebApi` of the `Xrm` object the command was given.
    pub(crate) fn of(xrm: &JsValue) -> Result<WebApi> {
        Ok(WebApi(get(xrm, "WebApi")?))
    }

    /// One page of `retrieveMultipleRecords`: rows and the next page's options, if any.
    pub(crate) async fn retrieve_multiple(
        &self,
        table: &str,
        options: &str,
        page_size: Option<u32>,
    ) -> Result<(Vec<Map>, Option<String>)> {
        let mut args = vec![table.into(), options.into()];
        if let Some(size) = page_size {
            args.push(size.into());
        }
        let result = patiently(|| call_async(&self.0, "retrieveMultipleRecords", &args)).await?;
        let rows = match to_json(&get(&result, "entities")?) {
            Value::Array(rows) => {
                rows.into_iter().filter_map(|r| if let Value::Object(o) = r { Some(o) } else { None }).collect()
            }
            _ => Vec::new(),
        };
        let next = Reflect::get(&result, &"nextLink".into())?.as_string().map(|link| match link.find('?') {
            Some(at) => link[at..].to_owned(),
            None => link,
        });
        Ok((rows, next))
    }
}

/// The formContext of the form a command runs on.
pub(crate) struct FormContext(pub(crate) JsValue);

impl FormContext {
    fn attribute(&self, column: &str) -> Result<JsValue> {
        let attribute = call(&self.0, "getAttribute", &[column.into()])?;
        if attribute.is_null() || attribute.is_undefined() {
            return Err(ClientApiError::new(format!("the form has no column {column}")));
        }
        Ok(attribute)
    }

    /// A column's value as JSON (`null` when empty).
    pub(crate) fn value(&self, column: &str) -> Result<Value> {
        Ok(to_json(&call(&self.attribute(column)?, "getValue", &[])?))
    }

    /// Sets a column and marks it to be saved.
    pub(crate) fn set_value(&self, column: &str, value: &Value) -> Result<()> {
        let attribute = self.attribute(column)?;
        call(&attribute, "setValue", &[from_json(value)])?;
        call(&attribute, "setSubmitMode", &["always".into()])?;
        Ok(())
    }

    /// The record's id without braces, lower case; `None` for a record not yet saved.
    pub(crate) fn id(&self) -> Result<Option<String>> {
        let entity = get(&get(&self.0, "data")?, "entity")?;
        let id = call(&entity, "getId", &[])?.as_string().unwrap_or_default();
        let id = id.trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase();
        Ok((!id.is_empty()).then_some(id))
    }

    /// `formContext.data.save()`.
    pub(crate) async fn save(&self) -> Result<()> {
        call_async(&get(&self.0, "data")?, "save", &[]).await?;
        Ok(())
    }
}

/// The parts of `Xrm` outside the Web API: dialogs, the progress indicator, the org's URL.
#[derive(Clone)]
pub(crate) struct Ui {
    xrm: JsValue,
}

impl Ui {
    /// The `Xrm` object's parts.
    pub(crate) fn new(xrm: JsValue) -> Ui {
        Ui { xrm }
    }

    /// `Xrm.Utility.showProgressIndicator(text)`.
    pub(crate) fn progress(&self, text: &str) {
        if let Ok(utility) = get(&self.xrm, "Utility") {
            let _ = call(&utility, "showProgressIndicator", &[text.into()]);
        }
    }

    /// `Xrm.Utility.closeProgressIndicator()`.
    pub(crate) fn close_progress(&self) {
        if let Ok(utility) = get(&self.xrm, "Utility") {
            let _ = call(&utility, "closeProgressIndicator", &[]);
        }
    }

    /// `Xrm.Navigation.openConfirmDialog({text})`: whether the user confirmed.
    pub(crate) async fn confirm(&self, text: &str) -> Result<bool> {
        let strings = js_sys::Object::new();
        Reflect::set(&strings, &"text".into(), &text.into())?;
        let result = call_async(&get(&self.xrm, "Navigation")?, "openConfirmDialog", &[strings.into()]).await?;
        Ok(Reflect::get(&result, &"confirmed".into())?.as_bool().unwrap_or(false))
    }

    /// The organisation's URL (`getGlobalContext().getClientUrl()`).
    pub(crate) fn client_url(&self) -> Result<String> {
        let context = call(&get(&self.xrm, "Utility")?, "getGlobalContext", &[])?;
        Ok(call(&context, "getClientUrl", &[])?.as_string().unwrap_or_default())
    }

    /// The signed-in user (`getGlobalContext().userSettings`): id without braces, and name.
    pub(crate) fn user(&self) -> Result<User> {
        let context = call(&get(&self.xrm, "Utility")?, "getGlobalContext", &[])?;
        let settings = get(&context, "userSettings")?;
        let text =
            |key: &str| Reflect::get(&settings, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let id = text("userId").trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase();
        Ok(User { id, name: text("userName") })
    }
}

/// The contact table's consent columns (`new_consent_<name>`), read from its metadata at run
/// time, so an admin adds one without any change here.
pub(crate) async fn consent_columns(ui: &Ui) -> Result<Vec<String>> {
    use crate::core::dataverse::schema;
    Ok(schema::consent_columns(&read_json(ui, schema::CONTACT_ATTRIBUTES, "").await?))
}

impl FormContext {
    /// Sets a column as a user would: the form becomes dirty and saves it. Dates arrive as
    /// `YYYY-MM-DD` and become the local midnight the form shows.
    pub(crate) fn fill(&self, column: &str, value: &Value) -> Result<bool> {
        let attribute = call(&self.0, "getAttribute", &[column.into()])?;
        if attribute.is_null() || attribute.is_undefined() {
            return Ok(false);
        }
        let kind = call(&attribute, "getAttributeType", &[])?.as_string().unwrap_or_default();
        let js = match value {
            Value::String(date) if kind == "datetime" => js_sys::Date::new(&format!("{date}T00:00:00").into()).into(),
            other => from_json(other),
        };
        call(&attribute, "setValue", &[js])?;
        Ok(true)
    }

    /// `ui.setFormNotification(text, level, id)`; `None` clears it.
    pub(crate) fn notify(&self, id: &str, level: &str, text: Option<&str>) {
        let Ok(ui) = get(&self.0, "ui") else { return };
        let _ = match text {
            Some(text) => call(&ui, "setFormNotification", &[text.into(), level.into(), id.into()]),
            None => call(&ui, "clearFormNotification", &[id.into()]),
        };
    }

    /// Whether the form has unsaved changes.
    pub(crate) fn is_dirty(&self) -> bool {
        get(&self.0, "data")
            .and_then(|data| call(&data, "getIsDirty", &[]))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// `data.refresh(false)`: shows what was written behind the form.
    pub(crate) async fn refresh(&self) -> Result<()> {
        call_async(&get(&self.0, "data")?, "refresh", &[false.into()]).await?;
        Ok(())
    }
}

/// A grid control (SelectedControl): `refresh()`.
pub(crate) fn refresh_grid(grid: &JsValue) {
    if !grid.is_undefined() && !grid.is_null() {
        let _ = call(grid, "refresh", &[]);
    }
}
