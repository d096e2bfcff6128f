//! JSON values: parsed, built and written by the engine itself.
//!
//! serde and serde_json made up about a fifth of the engine's wasm (dropping them took it from
//! 442 KB to 358 KB): each derived type and `Value` conversion compiled its own visitors, and
//! serde's error messages brought float formatting. The engine only ever needs a tree: read an
//! answer, look fields up, build a body. So there is one tree type ([`Value`]), one parser
//! ([`from_str`], in `parse`), one writer ([`Value::write`]), and typed reading for script
//! inputs ([`Fields`], in `read`). Objects keep their keys in insertion order in a vector,
//! which for the few dozen keys of a row is faster than a map; numbers keep their text, so
//! what is read is written back unchanged and no float is formatted.

use crate::prelude::*;

pub mod object;
mod parse;
mod read;
#[cfg(test)]
mod tests;

use ::core::fmt;

use crate::core::sorted::SortedMap;

pub use parse::{from_str, from_str_unique, Error};
pub use read::{Fields, FromJson, Invalid};

/// A JSON value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

/// A JSON number, kept as its (valid) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(Box<str>);

/// A JSON object: keys in insertion order, each at most once.
#[derive(Debug, Clone, Default)]
pub struct Map(Vec<(String, Value)>);

static NULL: Value = Value::Null;

impl Number {
    /// The number if it is a non-negative integer (a zero fraction such as `12.0` counts).
    pub fn as_u64(&self) -> Option<u64> {
        let (int, fraction) = self.0.split_once('.').unwrap_or((&self.0, ""));
        if !fraction.bytes().all(|b| b == b'0') || int.starts_with('-') {
            return None;
        }
        int.parse().ok()
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number if it is an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        if self.0.contains(['.', 'e', 'E']) {
            return None;
        }
        self.0.parse().ok()
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as a non-negative integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The number as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The items if this is an array, else none: what a loop over a list that may be missing
    /// reads (one slice walk, where `as_array().into_iter().flatten()` compiles its own
    /// flattening loop at each use).
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    /// The fields, if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The fields, to change, if this is an object.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A field of an object (`None` for a missing field or a non-object).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    /// The compact JSON text.
    pub fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(&n.0),
            Value::String(s) => write_string(s, out),
            Value::Array(items) => items.write_json(out),
            Value::Object(map) => map.write_json(out),
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut from = 0;
    for (at, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[from..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        from = at + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

impl ::core::ops::Index<&str> for Value {
    type Output = Value;
    /// A field of an object; `null` when missing or not an object.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl ::core::ops::Index<usize> for Value {
    type Output = Value;
    /// An item of an array; `null` when out of range or not an array.
    fn index(&self, at: usize) -> &Value {
        self.as_array().and_then(|items| items.get(at)).unwrap_or(&NULL)
    }
}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl ::core::ops::Index<&str> for Map {
    type Output = Value;
    /// The value of `key`; `null` when missing.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl Map {
    /// An empty object.
    pub fn new() -> Map {
        Map(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (in place if present, else last); returns the old value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.get_mut(&key) {
            Some(old) => Some(::core::mem::replace(old, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `key` when `value` says something (not `null`, `false`, `[]` or `{}`): the
    /// optional fields of a request body.
    pub fn put(&mut self, key: &str, value: Value) {
        if !value.is_blank() {
            self.insert(key.to_owned(), value);
        }
    }
}

/// Objects are equal when they hold the same fields, in any order.
impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Map {}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, fields: I) {
        for (key, value) in fields {
            self.insert(key, value);
        }
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(fields: I) -> Map {
        let mut map = Map::new();
        map.extend(fields);
        map
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = alloc::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter =
        ::core::iter::Map<::core::slice::Iter<'a, (String, Value)>, fn(&'a (String, Value)) -> (&'a String, &'a Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// A value as JSON: the request bodies and script answers the engine builds.
pub trait ToJson {
    /// This value as a JSON tree.
    fn to_json(&self) -> Value;

    /// This value as JSON text at the end of `out`, as [`Value::write`] writes
    /// [`ToJson::to_json`]: through the tree unless the type writes itself, as
    /// [`object::Object`]s and what they hold do.
    fn write_json(&self, out: &mut String) {
        self.to_json().write(out);
    }

    /// Whether [`Map::put`] leaves this out (`null`, `false`, `[]` or `{}`).
    fn is_blank(&self) -> bool {
        self.to_json().is_blank()
    }
}

impl ToJson for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
    fn write_json(&self, out: &mut String) {
        self.write(out);
    }
    fn is_blank(&self) -> bool {
        match self {
            Value::Null | Value::Bool(false) => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        }
    }
}

impl ToJson for Map {
    fn to_json(&self) -> Value {
        Value::Object(self.clone())
    }
    fn write_json(&self, out: &mut String) {
        object::write_entries(self, out);
    }
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_owned())
    }
    fn write_json(&self, out: &mut String) {
        write_string(self, out);
    }
    fn is_blank(&self) -> bool {
        false
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn write_json(&self, out: &mut String) {
        write_string(self, out);
    }
    fn is_blank(&self) -> bool {
        false
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
    fn is_blank(&self) -> bool {
        !*self
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::Number(Number(self.to_string().into_boxed_str()))
            }
            fn write_json(&self, out: &mut String) {
                use ::core::fmt::Write as _;
                let _ = write!(out, "{self}");
            }
            fn is_blank(&self) -> bool {
                false
            }
        }
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                matches!(self, Value::Number(n) if *n.0 == *other.to_string())
            }
        }
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                n.to_json()
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, usize, i32, i64);

/// [`ToJson`] of what a reference or a shared pointer points to.
macro_rules! pointers {
    ($($pointer:ty),*) => {$(
        impl<T: ToJson + ?Sized> ToJson for $pointer {
            fn to_json(&self) -> Value {
                (**self).to_json()
            }
            fn write_json(&self, out: &mut String) {
                (**self).write_json(out);
            }
            fn is_blank(&self) -> bool {
                (**self).is_blank()
            }
        }
    )*};
}
pointers!(&T, alloc::sync::Arc<T>);

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_json)
    }
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
    fn is_blank(&self) -> bool {
        self.as_ref().is_none_or(T::is_blank)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(T::to_json).collect())
    }
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (at, item) in self.iter().enumerate() {
            if at > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for SortedMap<String, T> {
    fn to_json(&self) -> Value {
        Value::Object(Map(self.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
    }
    fn write_json(&self, out: &mut String) {
        object::write_entries(self, out);
    }
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Object(map)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::Array(items)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}

/// A key of [`object!`], owned (the macro's callers need not name `String`).
#[doc(hidden)]
pub fn key(key: &str) -> String {
    key.into()
}

/// An object from `key: value` pairs, each value anything [`ToJson`]:
/// `object! {"email": email, "async": false}`.
#[macro_export]
macro_rules! object {
    ($($key:literal : $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = $crate::core::json::Map::new();
        $(map.insert($crate::core::json::key($key), $crate::core::json::ToJson::to_json(&$value));)*
        $crate::core::json::Value::Object(map)
    }};
}
pub use crate::object;

/// In tests: a [`Value`] written as `serde_json::json!` takes it.
#[cfg(test)]
macro_rules! json {
    ($($t:tt)+) => {
        $crate::core::json::from_str(&::serde_json::json!($($t)+).to_string()).unwrap()
    };
}
#[cfg(test)]
pub(crate) use json;
