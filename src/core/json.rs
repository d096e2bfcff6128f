//! JSON values: parsed, built and written by the engine itself.
//!
//! serde with serde_json cost the engine about a third of its wasm (each derived type and
//! every `Value` conversion compiled its own visitors, plus float formatting for error
//! messages). The engine only ever needs a tree: read an answer, look fields up, build a body.
//! So this module holds one tree type, one parser and one writer. Objects keep their keys in
//! insertion order in a vector, which for the few dozen keys of a row is faster than a map;
//! numbers keep their text, so what is read is written back unchanged and no float is
//! formatted.

use crate::core::sorted::SortedMap;
use std::fmt;

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

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: &'static str,
    line: usize,
    column: usize,
}

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
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, value)) in map.0.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
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

impl std::ops::Index<&str> for Value {
    type Output = Value;
    /// A field of an object; `null` when missing or not an object.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
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

impl std::ops::Index<&str> for Map {
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
            Some(old) => Some(std::mem::replace(old, value)),
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
        let empty = match &value {
            Value::Null | Value::Bool(false) => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if !empty {
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
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, Value)>, fn(&'a (String, Value)) -> (&'a String, &'a Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// A value as JSON: the request bodies and script answers the engine builds.
pub trait ToJson {
    /// This value as a JSON tree.
    fn to_json(&self) -> Value;
}

impl ToJson for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
}

impl ToJson for Map {
    fn to_json(&self) -> Value {
        Value::Object(self.clone())
    }
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_owned())
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::Number(Number(self.to_string().into_boxed_str()))
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

impl<T: ToJson + ?Sized> ToJson for &T {
    fn to_json(&self) -> Value {
        (**self).to_json()
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_json)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(T::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

impl<T: ToJson> ToJson for SortedMap<String, T> {
    fn to_json(&self) -> Value {
        Value::Object(Map(self.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
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

/// An object from `key: value` pairs, each value anything [`ToJson`]:
/// `object! {"email": email, "async": false}`.
#[macro_export]
macro_rules! object {
    ($($key:literal : $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = $crate::core::json::Map::new();
        $(map.insert(::std::string::String::from($key), $crate::core::json::ToJson::to_json(&$value));)*
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

/// Why a JSON value is not the shape a reader expects, in serde's words (`missing field
/// `email``, `invalid type: expected a string for `owner``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Invalid {
    fn from(error: Error) -> Invalid {
        Invalid(error.to_string())
    }
}

/// A value read from JSON: the inputs scripts pass the engine.
pub trait FromJson: Sized {
    /// What the value must be, for messages (`a string`).
    const EXPECTED: &'static str;
    /// Reads `value`; `None` when it has another type.
    fn read(value: &Value) -> Option<Self>;
}

impl FromJson for String {
    const EXPECTED: &'static str = "a string";
    fn read(value: &Value) -> Option<String> {
        value.as_str().map(str::to_owned)
    }
}

impl FromJson for bool {
    const EXPECTED: &'static str = "a boolean";
    fn read(value: &Value) -> Option<bool> {
        value.as_bool()
    }
}

impl FromJson for u64 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn read(value: &Value) -> Option<u64> {
        value.as_u64()
    }
}

impl FromJson for u32 {
    const EXPECTED: &'static str = "a non-negative integer below 2^32";
    fn read(value: &Value) -> Option<u32> {
        value.as_u64()?.try_into().ok()
    }
}

impl FromJson for Value {
    const EXPECTED: &'static str = "a value";
    fn read(value: &Value) -> Option<Value> {
        Some(value.clone())
    }
}

impl FromJson for Map {
    const EXPECTED: &'static str = "an object";
    fn read(value: &Value) -> Option<Map> {
        value.as_object().cloned()
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    const EXPECTED: &'static str = "a list";
    fn read(value: &Value) -> Option<Vec<T>> {
        value.as_array()?.iter().map(T::read).collect()
    }
}

impl FromJson for SortedMap<String, String> {
    const EXPECTED: &'static str = "an object of strings";
    fn read(value: &Value) -> Option<SortedMap<String, String>> {
        let mut map = SortedMap::new();
        for (key, value) in value.as_object()? {
            map.insert(key.clone(), value.as_str()?.to_owned());
        }
        Some(map)
    }
}

#[inline(never)]
fn missing(key: &str) -> Invalid {
    Invalid(format!("missing field `{key}`"))
}

/// Kept out of line: one copy, not one per type read.
#[inline(never)]
fn invalid_type(expected: &str, key: &str) -> Invalid {
    Invalid(format!("invalid type: expected {expected} for `{key}`"))
}

/// The fields of an object being read into a type.
pub struct Fields<'a>(&'a Map);

impl<'a> Fields<'a> {
    /// `value`'s fields; fails unless it is an object. Fields no one asks for are ignored.
    pub fn of(value: &'a Value) -> Result<Fields<'a>, Invalid> {
        value.as_object().map(Fields).ok_or_else(|| Invalid("invalid type: expected an object".into()))
    }

    /// As [`Fields::of`], but fails when `value` has a field not in `known`.
    pub fn only(value: &'a Value, known: &[&str]) -> Result<Fields<'a>, Invalid> {
        let fields = Fields::of(value)?;
        match fields.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) if known.is_empty() => Err(Invalid(format!("unknown field `{key}`, there are none"))),
            Some(key) => Err(Invalid(format!("unknown field `{key}`, expected one of `{}`", known.join("`, `")))),
            None => Ok(fields),
        }
    }

    /// `key`'s value; `None` when absent or `null`.
    pub fn optional<T: FromJson>(&self, key: &str) -> Result<Option<T>, Invalid> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::read(value).map(Some).ok_or_else(|| invalid_type(T::EXPECTED, key)),
        }
    }

    /// `key`'s value, or the type's default when absent or `null`.
    pub fn or_default<T: FromJson + Default>(&self, key: &str) -> Result<T, Invalid> {
        Ok(self.optional(key)?.unwrap_or_default())
    }

    /// `key`'s value; fails when absent or `null`.
    pub fn required<T: FromJson>(&self, key: &str) -> Result<T, Invalid> {
        self.optional(key)?.ok_or_else(|| missing(key))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.what, self.line, self.column)
    }
}

impl std::error::Error for Error {}

/// Objects and arrays nested deeper than this are refused (a hostile answer cannot exhaust the
/// stack).
const MAX_DEPTH: usize = 128;

/// Parses one JSON text (surrounding whitespace allowed). A key repeated in an object keeps
/// its last value, as browsers' `JSON.parse` does.
pub fn from_str(text: &str) -> Result<Value, Error> {
    parse(text, false)
}

/// Parses one JSON text, refusing a key repeated in an object: for inputs typed by people,
/// where a repeated key is a mistake that must not pass silently.
pub fn from_str_unique(text: &str) -> Result<Value, Error> {
    parse(text, true)
}

fn parse(text: &str, unique: bool) -> Result<Value, Error> {
    let mut parser = Parser { text, at: 0, depth: 0, unique };
    let value = parser.value()?;
    parser.space();
    if parser.at < text.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
    unique: bool,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> Error {
        // After a bad escape `at` may sit inside a multi-byte character: count up to its start.
        let mut at = self.at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error { what, line, column }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Error> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.space();
        match self.peek() {
            None => Err(self.error("unexpected end of JSON")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.nested(Parser::array),
            Some(b'{') => self.nested(Parser::object),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn nested(&mut self, inner: fn(&mut Self) -> Result<Value, Error>) -> Result<Value, Error> {
        if self.depth == MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.depth += 1;
        self.at += 1;
        let value = inner(self);
        self.depth -= 1;
        value
    }

    /// After `[`.
    fn array(&mut self) -> Result<Value, Error> {
        let mut items = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// After `{`.
    fn object(&mut self) -> Result<Value, Error> {
        let mut map = Map::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key_at = self.at;
            let key = self.string()?;
            if self.unique && map.contains_key(&key) {
                self.at = key_at;
                return Err(self.error("repeated key"));
            }
            self.space();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            let value = self.value()?;
            map.insert(key, value);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        match self.digits() {
            0 => return Err(self.invalid_number(start)),
            n if leading_zero && n > 1 => return Err(self.invalid_number(start)),
            _ => {}
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.invalid_number(start));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.invalid_number(start));
            }
        }
        Ok(Value::Number(Number(self.text[start..self.at].into())))
    }

    fn invalid_number(&mut self, start: usize) -> Error {
        self.at = start;
        self.error("invalid number")
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let hex = self.text.get(self.at..self.at + 4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        let code = hex.and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or_else(|| self.error("invalid escape"))?;
        self.at += 4;
        Ok(code)
    }

    /// At `"`; returns the unescaped text.
    fn string(&mut self) -> Result<String, Error> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text.as_bytes()[self.at..];
            let plain = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let Some(plain) = plain else {
                self.at = self.text.len();
                return Err(self.error("unterminated string"));
            };
            out.push_str(&self.text[self.at..self.at + plain]);
            self.at += plain;
            match self.text.as_bytes()[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek().ok_or_else(|| self.error("unterminated string"))?;
                    self.at += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                _ => return Err(self.error("control character in string")),
            }
        }
    }

    /// After `\u`: one character, from a surrogate pair if need be.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !self.text[self.at..].starts_with("\\u") {
                    return Err(self.error("unpaired surrogate"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.error("unpaired surrogate"));
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("unpaired surrogate")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for text in [
            r#"{"a":[1,-2.5e3,true,false,null],"b":{"c":"d"},"e":""}"#,
            r#"["\"\\\n\r\t\u0001é😀"]"#,
            "0",
            "-0.0",
            r#"{}"#,
            r#"[]"#,
        ] {
            assert_eq!(from_str(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn escapes_are_read() {
        let value = from_str(r#""a\u00e9\ud83d\ude00\/\b\f""#).unwrap();
        assert_eq!(value, "aé😀/\u{8}\u{c}");
    }

    #[test]
    fn bad_texts_are_refused_with_where() {
        for (text, what) in [
            ("", "unexpected end of JSON at line 1 column 1"),
            ("{\n\"a\" 1}", "expected `:` at line 2 column 5"),
            ("[1,]", "expected a value at line 1 column 4"),
            ("[01]", "invalid number at line 1 column 2"),
            ("1.", "invalid number at line 1 column 1"),
            ("\"abc", "unterminated string at line 1 column 5"),
            ("\"\\ud800\"", "unpaired surrogate at line 1 column 8"),
            ("\"\\x\"", "invalid escape at line 1 column 4"),
            ("\"\\é\"", "invalid escape at line 1 column 3"),
            ("\"a\nb\"", "control character in string at line 1 column 3"),
            ("{} x", "trailing characters at line 1 column 4"),
            ("tru", "expected a value at line 1 column 1"),
        ] {
            assert_eq!(from_str(text).unwrap_err().to_string(), what, "{text:?}");
        }
        assert_eq!(from_str_unique(r#"{"a":1,"a":1}"#).unwrap_err().to_string(), "repeated key at line 1 column 8");
        assert!(from_str(&"[".repeat(MAX_DEPTH + 1)).unwrap_err().to_string().starts_with("nested too deeply"));
        assert!(from_str(&format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH))).is_ok());
    }

    #[test]
    fn objects_keep_order_compare_as_sets_and_last_key_wins() {
        let value = from_str(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(value.to_string(), r#"{"b":3,"a":2}"#);
        assert_eq!(value, from_str(r#"{"a":2,"b":3}"#).unwrap());
        assert_ne!(value, from_str(r#"{"a":2,"b":4}"#).unwrap());
        assert_eq!(value["a"].as_u64(), Some(2));
        assert!(value["missing"].is_null() && value[0].is_null());
    }

    #[test]
    fn numbers_are_read_as_integers_only_when_whole() {
        let n = |t: &str| from_str(t).unwrap();
        assert_eq!(n("12").as_u64(), Some(12));
        assert_eq!(n("12.00").as_u64(), Some(12));
        assert_eq!(n("12.5").as_u64(), None);
        assert_eq!(n("-3").as_u64(), None);
        assert_eq!(n("-3").as_i64(), Some(-3));
        assert_eq!(n("1e3").as_u64(), None);
        assert_eq!(n("18446744073709551616").as_u64(), None);
    }

    #[test]
    fn objects_are_built_with_their_optional_fields_left_out() {
        let mut map = Map::new();
        map.put("none", None::<String>.to_json());
        map.put("no", false.to_json());
        map.put("list", Vec::<String>::new().to_json());
        map.put("yes", true.to_json());
        let built = object! {"n": 5u32, "s": "x", "o": Some("y"), "m": map};
        assert_eq!(built.to_string(), r#"{"n":5,"s":"x","o":"y","m":{"yes":true}}"#);
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_text(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &["a", "Zż", "\"", "\\", "\n", "\u{1}", "😀", " ", "/", "\u{7f}", "é", "\t"];
        (0..rng.below(6)).map(|_| PIECES[rng.below(PIECES.len() as u64) as usize]).collect()
    }

    fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
        use serde_json::Value as S;
        match rng.below(if depth > 3 { 5 } else { 7 }) {
            0 => S::Null,
            1 => S::Bool(rng.below(2) == 1),
            2 => S::from(rng.next() as i64 >> rng.below(60)),
            3 => S::from((rng.below(2_000_000) as f64 - 1_000_000.0) / 64.0),
            4 => S::String(random_text(rng)),
            5 => S::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
            _ => S::Object((0..rng.below(4)).map(|_| (random_text(rng), random_value(rng, depth + 1))).collect()),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_documents() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for _ in 0..3000 {
            let expected = random_value(&mut rng, 0);
            let text =
                if rng.below(2) == 0 { expected.to_string() } else { serde_json::to_string_pretty(&expected).unwrap() };
            let ours = from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let back: serde_json::Value = serde_json::from_str(&ours.to_string()).unwrap();
            assert_eq!(back, expected, "{text}");
        }
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let mut rng = Rng(0x0bad_cafe_0000_0002);
        const EDITS: &[&str] =
            &["", "\"", "\\", ",", ":", "[", "]", "{", "}", "-", "0", ".", "e", "+", "t", "n", " ", "\u{0}"];
        for _ in 0..20_000 {
            let mut text = random_value(&mut rng, 0).to_string();
            // One edit at a character boundary: a deletion, insertion or replacement.
            let at = (0..=text.len())
                .filter(|i| text.is_char_boundary(*i))
                .nth(rng.below(text.chars().count() as u64 + 1) as usize)
                .unwrap();
            let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let edit = EDITS[rng.below(EDITS.len() as u64) as usize];
            match rng.below(3) {
                0 => text.replace_range(at..end, ""),
                1 => text.insert_str(at, edit),
                _ => text.replace_range(at..end, edit),
            }
            let serde = serde_json::from_str::<serde_json::Value>(&text);
            let ours = from_str(&text);
            if serde.as_ref().is_err_and(|e| e.to_string().starts_with("number out of range")) {
                // JSON allows any exponent; serde_json refuses one past f64 (and says so before
                // it looks further). Numbers are kept as text here, so there is nothing to compare.
                continue;
            }
            assert_eq!(ours.is_ok(), serde.is_ok(), "{text:?}: ours {ours:?}, serde_json {serde:?}");
            if let (Ok(ours), Ok(serde)) = (ours, serde) {
                assert_eq!(serde_json::from_str::<serde_json::Value>(&ours.to_string()).unwrap(), serde, "{text:?}");
            }
        }
    }
}
