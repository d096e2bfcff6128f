//! The Dynamics client API (`Xrm`, `formContext`) as the engine uses it. Values cross as JSON,
//! so the core sees `serde_json` only. Mechanical: no decisions here.

use js_sys::{Array, Function, Promise, Reflect, JSON};
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A rejected or failed client API call: what Dynamics said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientApiError {
    /// Dynamics' message.
    pub(crate) message: String,
}

impl From<JsValue> for ClientApiError {
    fn from(value: JsValue) -> Self {
        let message = Reflect::get(&value, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| value.as_string())
            .unwrap_or_else(|| "unknown error".into());
        ClientApiError { message }
    }
}

type Result<T> = std::result::Result<T, ClientApiError>;

fn get(target: &JsValue, key: &str) -> Result<JsValue> {
    let value = Reflect::get(target, &key.into())?;
    if value.is_undefined() || value.is_null() {
        return Err(ClientApiError { message: format!("{key} is not available") });
    }
    Ok(value)
}

/// Calls `target[method](...args)`.
fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let function: Function = get(target, method)?
        .dyn_into()
        .map_err(|_| ClientApiError { message: format!("{method} is not a function") })?;
    let list = Array::new();
    for arg in args {
        list.push(arg);
    }
    Ok(function.apply(target, &list)?)
}

/// Calls `target[method](...args)` and awaits the promise it returns.
async fn call_async(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let value = call(target, method, args)?;
    match value.dyn_into::<Promise>() {
        Ok(promise) => Ok(JsFuture::from(promise).await?),
        Err(value) => Ok(value),
    }
}

/// A JS value as JSON (`undefined` becomes `null`).
pub(crate) fn to_json(value: &JsValue) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
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
    ) -> Result<(Vec<Map<String, Value>>, Option<String>)> {
        let mut args = vec![table.into(), options.into()];
        if let Some(size) = page_size {
            args.push(size.into());
        }
        let result = call_async(&self.0, "retrieveMultipleRecords", &args).await?;
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
            return Err(ClientApiError { message: format!("the form has no column {column}") });
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
