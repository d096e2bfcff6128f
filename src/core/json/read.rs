//! Reading JSON into the engine's types, with messages in serde's words.

use crate::prelude::*;
use ::core::fmt;

use super::{Error, Map, Value};
use crate::core::sorted::SortedMap;

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
