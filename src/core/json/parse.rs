//! The parser: one JSON text to a [`Value`], with the line and column of what is wrong.

use crate::prelude::*;
use ::core::fmt;

use super::{Map, Number, Value};

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: &'static str,
    line: usize,
    column: usize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.what, self.line, self.column)
    }
}

impl ::core::error::Error for Error {}

/// Objects and arrays nested deeper than this are refused (a hostile answer cannot exhaust the
/// stack).
pub(super) const MAX_DEPTH: usize = 128;

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
    let mut parser = Parser { text, at: 0, depth: 0, unique, keys: Vec::new(), fields: 0 };
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
    /// A fingerprint of each key of the objects being read, innermost last: a repeated key is
    /// found by comparing numbers, and only a matching number compares the text.
    keys: Vec<u64>,
    /// How many fields the last object read had (at most [`FIELDS_HINT`]): the next is made
    /// that large at once, as the rows of one answer are alike.
    fields: usize,
}

/// The most fields an object is made room for before they are read: a row's columns, with
/// room to spare; a hostile answer's huge object does not make every object after it huge.
const FIELDS_HINT: usize = 128;

/// A hash of `key`, eight bytes at a step (FxHash's step; FNV's byte at a step cost a
/// multiplication a byte, which in wasm showed in every row read).
fn fingerprint(key: &str) -> u64 {
    key.as_bytes().chunks(8).fold(key.len() as u64, |hash, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95)
    })
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
        let mut map = Map(Vec::with_capacity(self.fields));
        let base = self.keys.len();
        let result = self.fields(&mut map, base);
        self.keys.truncate(base);
        self.fields = map.0.len().min(FIELDS_HINT);
        result.map(|()| Value::Object(map))
    }

    /// The fields of an object up to its `}`; `self.keys[base..]` holds their fingerprints.
    fn fields(&mut self, map: &mut Map, base: usize) -> Result<(), Error> {
        // A bit per fingerprint's top byte: a key whose bit is clear is new without looking.
        let mut seen = [0u64; 4];
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key_at = self.at;
            let key = self.string()?;
            let print = fingerprint(&key);
            let (word, bit) = ((print >> 62) as usize, 1u64 << ((print >> 56) & 63));
            let repeated = match seen[word] & bit {
                0 => None,
                _ => self.keys[base..].iter().zip(&map.0).position(|(p, (k, _))| *p == print && *k == key),
            };
            seen[word] |= bit;
            if self.unique && repeated.is_some() {
                self.at = key_at;
                return Err(self.error("repeated key"));
            }
            self.space();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            let value = self.value()?;
            match repeated {
                Some(at) => map.0[at].1 = value,
                None => {
                    map.0.push((key, value));
                    self.keys.push(print);
                }
            }
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
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
        // Most strings have nothing to unescape: one copy of their text, made at its size.
        let rest = &self.text.as_bytes()[self.at..];
        if let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) {
            if rest[end] == b'"' {
                let text = self.text[self.at..self.at + end].to_owned();
                self.at += end + 1;
                return Ok(text);
            }
        }
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

    /// After `\u`: one character, from a surrogate pair if need be. A surrogate without its
    /// other half reads as U+FFFD, as a browser shows it (the Web API returns such text when a
    /// column holds it), so one odd value does not make a whole answer unreadable.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                let low = self.text.get(self.at + 2..self.at + 6).filter(|_| self.text[self.at..].starts_with("\\u"));
                match low.and_then(|h| u32::from_str_radix(h, 16).ok()).filter(|c| (0xdc00..=0xdfff).contains(c)) {
                    Some(second) => {
                        self.at += 6;
                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                    }
                    None => 0xfffd,
                }
            }
            0xdc00..=0xdfff => 0xfffd,
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid escape"))
    }
}
