//! Objects described once, by their fields, and then built as a tree ([`ToJson::to_json`]) or
//! written as text ([`ToJson::write_json`]) without one: a bulk call's body of 400 contacts is
//! written straight from them, with no copy of each name and value to build and free.

use super::{write_string, Map, ToJson};
use crate::prelude::*;

/// Whether a field is always there, or only when it says something (not `null`, `false`, `[]`
/// or `{}`: the optional fields of a request body, as [`Map::put`] keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Always.
    Always,
    /// Only when it says something.
    WhenSaid,
}

/// Where an object's fields go.
pub trait Sink {
    /// One field.
    fn field(&mut self, key: &str, value: &dyn ToJson, keep: Keep);
}

/// A type that is a JSON object, told by its fields.
pub trait Object {
    /// Its fields, in order.
    fn fields(&self, sink: &mut dyn Sink);
}

impl Sink for Map {
    fn field(&mut self, key: &str, value: &dyn ToJson, keep: Keep) {
        match keep {
            Keep::Always => {
                self.insert(key.to_owned(), value.to_json());
            }
            Keep::WhenSaid => self.put(key, value.to_json()),
        }
    }
}

/// Fields written as the text of one object, between [`Text::open`] and [`Text::close`].
pub struct Text<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Text<'a> {
    /// Starts an object at the end of `out`.
    pub fn open(out: &'a mut String) -> Text<'a> {
        out.push('{');
        Text { out, first: true }
    }

    /// Ends it.
    pub fn close(self) {
        self.out.push('}');
    }
}

impl Sink for Text<'_> {
    fn field(&mut self, key: &str, value: &dyn ToJson, keep: Keep) {
        if keep == Keep::WhenSaid && value.is_blank() {
            return;
        }
        if !::core::mem::replace(&mut self.first, false) {
            self.out.push(',');
        }
        write_string(key, self.out);
        self.out.push(':');
        value.write_json(self.out);
    }
}

/// Whether every field is left out.
struct Blank(bool);

impl Sink for Blank {
    fn field(&mut self, _: &str, value: &dyn ToJson, keep: Keep) {
        if keep == Keep::Always || !value.is_blank() {
            self.0 = false;
        }
    }
}

/// `object`'s fields as a tree.
pub fn to_map(object: &dyn Object) -> Map {
    let mut map = Map::new();
    object.fields(&mut map);
    map
}

/// `object` as text, at the end of `out`.
pub fn write(object: &dyn Object, out: &mut String) {
    let mut text = Text::open(out);
    object.fields(&mut text);
    text.close();
}

/// A map's entries as the text of one object, at the end of `out`.
pub fn write_entries<'a, V: ToJson + 'a>(entries: impl IntoIterator<Item = (&'a String, &'a V)>, out: &mut String) {
    let mut text = Text::open(out);
    for (key, value) in entries {
        text.field(key, value, Keep::Always);
    }
    text.close();
}

/// Whether `object` has no field to write.
pub fn is_blank(object: &dyn Object) -> bool {
    let mut blank = Blank(true);
    object.fields(&mut blank);
    blank.0
}

/// [`ToJson`] for a type that is an [`Object`].
#[macro_export]
macro_rules! object_json {
    ($type:ty) => {
        impl $crate::core::json::ToJson for $type {
            fn to_json(&self) -> $crate::core::json::Value {
                $crate::core::json::Value::Object($crate::core::json::object::to_map(self))
            }
            fn write_json(&self, out: &mut String) {
                $crate::core::json::object::write(self, out)
            }
            fn is_blank(&self) -> bool {
                $crate::core::json::object::is_blank(self)
            }
        }
    };
}
pub use crate::object_json;
