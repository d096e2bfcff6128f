//! A Dynamics view's filter (the `<filter>` of its FetchXML), read and evaluated on one contact
//! row, so that a scope "the contacts in this view" is decided by the core on every path, as the
//! other scopes are, with no query per contact.
//!
//! What is evaluated, as Dataverse evaluates it ("FetchXML condition operators",
//! learn.microsoft.com/power-apps/developer/data-platform/fetchxml/reference/operators):
//! `eq`, `ne`/`neq`, `null`, `not-null`, `in`, `not-in`, `like`, `not-like` (`%` and `_`),
//! `begins-with`, `not-begin-with`, `ends-with`, `not-end-with`, `gt`, `ge`, `lt`, `le`, in
//! `and`/`or` filters nested at any depth, on the contact's own columns. Text compares without
//! regard to ASCII case (Dataverse's default collation ignores case; it ignores accents too,
//! which this does not); numbers compare as numbers, dates and date-times as their ISO text,
//! Yes/No as `1`/`0`. `ne` and the `not-…` operators take a row without a value (as the sandbox's
//! `$filter` does, after Dataverse). Anything else (a `link-entity`, a condition on another
//! table, a relative date such as `last-x-days`, a user or business-unit operator) is refused by
//! name, never evaluated as something it is not.

use crate::prelude::*;
use ::core::cmp::Ordering;

use crate::core::dataverse::contact::{Cell, ContactRow};
use crate::core::dataverse::schema::is_logical_name;
use crate::core::json::Value;

/// A view's filter on contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewFilter {
    root: Group,
}

/// Why a view's FetchXML cannot be a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// Not FetchXML this reads (the detail says where).
    Malformed(String),
    /// Its rows are not contacts (the table it names).
    NotContacts(String),
    /// It uses what is not evaluated here (the element or operator, by name).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    any: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Condition(Condition),
    Group(Group),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    attribute: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Null,
    NotNull,
    In,
    NotIn,
    Like,
    NotLike,
    BeginsWith,
    NotBeginWith,
    EndsWith,
    NotEndWith,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" | "neq" => Op::Ne,
            "null" => Op::Null,
            "not-null" => Op::NotNull,
            "in" => Op::In,
            "not-in" => Op::NotIn,
            "like" => Op::Like,
            "not-like" => Op::NotLike,
            "begins-with" => Op::BeginsWith,
            "not-begin-with" => Op::NotBeginWith,
            "ends-with" => Op::EndsWith,
            "not-end-with" => Op::NotEndWith,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    /// How many values it takes: none, one, or one or more.
    fn arity(self) -> (usize, usize) {
        match self {
            Op::Null | Op::NotNull => (0, 0),
            Op::In | Op::NotIn => (1, usize::MAX),
            _ => (1, 1),
        }
    }
}

impl ViewFilter {
    /// The filter of the view whose FetchXML is `fetch`. A view with no filter takes every
    /// contact.
    pub fn parse(fetch: &str) -> Result<ViewFilter, ViewError> {
        let root = xml::parse(fetch).map_err(ViewError::Malformed)?;
        if root.name != "fetch" {
            return Err(ViewError::Malformed(format!("the root element is <{}>, not <fetch>", root.name)));
        }
        let entity = match root.children.as_slice() {
            [entity] if entity.name == "entity" => entity,
            _ => return Err(ViewError::Malformed("<fetch> must hold one <entity>".into())),
        };
        let table = entity.attribute("name").unwrap_or_default();
        if table != "contact" {
            return Err(ViewError::NotContacts(table.to_owned()));
        }
        let mut items = Vec::new();
        for child in &entity.children {
            match child.name.as_str() {
                "attribute" | "all-attributes" | "order" => {}
                "filter" => items.push(Item::Group(group(child)?)),
                other => return Err(ViewError::Unsupported(format!("<{other}>"))),
            }
        }
        Ok(ViewFilter { root: Group { any: false, items } })
    }

    /// The contact columns it reads (logical names, each once).
    pub fn columns(&self) -> Vec<String> {
        let mut columns = Vec::new();
        self.root.columns(&mut columns);
        columns
    }

    /// Whether the view holds `row`.
    pub fn includes(&self, row: &ContactRow) -> bool {
        self.root.holds(row)
    }
}

fn group(element: &xml::Element) -> Result<Group, ViewError> {
    let any = match element.attribute("type").unwrap_or("and") {
        "and" => false,
        "or" => true,
        other => return Err(ViewError::Unsupported(format!("<filter type=\"{other}\">"))),
    };
    let mut items = Vec::new();
    for child in &element.children {
        match child.name.as_str() {
            "filter" => items.push(Item::Group(group(child)?)),
            "condition" => items.push(Item::Condition(condition(child)?)),
            other => return Err(ViewError::Unsupported(format!("<{other}>"))),
        }
    }
    Ok(Group { any, items })
}

fn condition(element: &xml::Element) -> Result<Condition, ViewError> {
    if let Some(table) = element.attribute("entityname") {
        return Err(ViewError::Unsupported(format!("a condition on {table}")));
    }
    let attribute = element.attribute("attribute").unwrap_or_default().to_ascii_lowercase();
    if !is_logical_name(&attribute) {
        return Err(ViewError::Malformed(format!("a condition on “{attribute}”")));
    }
    let name = element.attribute("operator").unwrap_or_default();
    let op = Op::parse(name).ok_or_else(|| ViewError::Unsupported(format!("the operator {name}")))?;
    let mut values: Vec<String> = element.attribute("value").map(str::to_owned).into_iter().collect();
    for child in &element.children {
        match child.name.as_str() {
            "value" => values.push(child.text.clone()),
            other => return Err(ViewError::Unsupported(format!("<{other}>"))),
        }
    }
    let (least, most) = op.arity();
    if values.len() < least || values.len() > most {
        return Err(ViewError::Malformed(format!("the operator {name} on {attribute} with {} values", values.len())));
    }
    // What each row is compared with, made once: values in lower case (Dataverse compares text
    // without regard to case), trimmed but for a LIKE pattern, whose spaces count; the
    // begins-with and ends-with operators as their LIKE patterns.
    let values = match op {
        Op::Like | Op::NotLike => values.iter().map(|v| v.to_ascii_lowercase()).collect(),
        Op::BeginsWith | Op::NotBeginWith => vec![format!("{}%", escape(&values[0])).to_ascii_lowercase()],
        Op::EndsWith | Op::NotEndWith => vec![format!("%{}", escape(&values[0])).to_ascii_lowercase()],
        _ => values.iter().map(|v| v.trim().to_ascii_lowercase()).collect(),
    };
    Ok(Condition { attribute, op, values })
}

impl Group {
    fn columns(&self, into: &mut Vec<String>) {
        for item in &self.items {
            match item {
                Item::Condition(c) if !into.contains(&c.attribute) => into.push(c.attribute.clone()),
                Item::Condition(_) => {}
                Item::Group(g) => g.columns(into),
            }
        }
    }

    fn holds(&self, row: &ContactRow) -> bool {
        let mut results = self.items.iter().map(|item| match item {
            Item::Condition(c) => c.holds(row),
            Item::Group(g) => g.holds(row),
        });
        match self.any {
            true => self.items.is_empty() || results.any(|held| held),
            false => results.all(|held| held),
        }
    }
}

impl Condition {
    fn holds(&self, row: &ContactRow) -> bool {
        let cell = row.cell(&self.attribute);
        let value = |v: &str| cell.map(|c| compare(c, v));
        let first = self.values.first().map(String::as_str).unwrap_or_default();
        let text = || match cell {
            Some(Cell::Text(text)) => Some(text.to_ascii_lowercase()),
            Some(Cell::Other(v)) => Some(v.to_string().to_ascii_lowercase()),
            None => None,
        };
        let like = |pattern: &str| text().is_some_and(|t| matches_like(&t, pattern));
        match self.op {
            Op::Eq => value(first) == Some(Some(Ordering::Equal)),
            Op::Ne => value(first) != Some(Some(Ordering::Equal)),
            Op::Null => cell.is_none(),
            Op::NotNull => cell.is_some(),
            Op::In => self.values.iter().any(|v| value(v) == Some(Some(Ordering::Equal))),
            Op::NotIn => !self.values.iter().any(|v| value(v) == Some(Some(Ordering::Equal))),
            // Their patterns, made by [`condition`].
            Op::Like | Op::BeginsWith | Op::EndsWith => like(first),
            Op::NotLike | Op::NotBeginWith | Op::NotEndWith => !like(first),
            Op::Gt => matches!(value(first), Some(Some(Ordering::Greater))),
            Op::Ge => matches!(value(first), Some(Some(Ordering::Greater | Ordering::Equal))),
            Op::Lt => matches!(value(first), Some(Some(Ordering::Less))),
            Op::Le => matches!(value(first), Some(Some(Ordering::Less | Ordering::Equal))),
        }
    }
}

/// How the row's value compares with a condition's (trimmed, in lower case); `None` when they
/// cannot be compared (a Yes/No with a value that is not one).
fn compare(cell: Cell<'_>, value: &str) -> Option<Ordering> {
    match cell {
        Cell::Other(Value::Bool(held)) => {
            let wanted = match value {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return None,
            };
            Some(held.cmp(&wanted))
        }
        Cell::Other(Value::Number(n)) => compare_decimal(n.as_str(), value),
        Cell::Other(other) => Some(other.to_string().to_ascii_lowercase().as_str().cmp(value)),
        Cell::Text(text) => {
            // A date-time against a date compares the date.
            let text = if value.len() == 10 && is_date(value) && is_date(text) { &text[..10] } else { text };
            Some(text.trim().to_ascii_lowercase().as_str().cmp(value))
        }
    }
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit())
}

/// Two decimal numbers' order, from their text (no float parsing); `None` when either is not
/// a plain decimal.
fn compare_decimal(a: &str, b: &str) -> Option<Ordering> {
    fn split(text: &str) -> Option<(bool, &str, &str)> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let plain = !int.is_empty() || !fraction.is_empty();
        let digits_only = int.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
        (plain && digits_only).then(|| (negative, int.trim_start_matches('0'), fraction.trim_end_matches('0')))
    }
    let (an, ai, af) = split(a)?;
    let (bn, bi, bf) = split(b)?;
    let zero = |i: &str, f: &str| i.is_empty() && f.is_empty();
    let (an, bn) = (an && !zero(ai, af), bn && !zero(bi, bf));
    let magnitude = ai.len().cmp(&bi.len()).then_with(|| ai.cmp(bi)).then_with(|| af.cmp(bf));
    Some(match (an, bn) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    })
}

/// `text` as a `like` pattern that matches it literally.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '[') {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

/// SQL's `like`: `%` any run, `_` one character, `[c]` the character itself.
fn matches_like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<Token> = tokens(pattern);
    // Positions of the pattern reachable after each character of the text.
    let mut reach = vec![false; pattern.len() + 1];
    reach[0] = true;
    close(&pattern, &mut reach);
    for c in text {
        let mut next = vec![false; pattern.len() + 1];
        for (at, token) in pattern.iter().enumerate() {
            if !reach[at] {
                continue;
            }
            match token {
                Token::Any => next[at] = true,
                Token::One => next[at + 1] = true,
                Token::Char(p) if *p == c => next[at + 1] = true,
                Token::Char(_) => {}
            }
        }
        close(&pattern, &mut next);
        reach = next;
    }
    reach[pattern.len()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Any,
    One,
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '[' => match (chars.next(), chars.next()) {
                (Some(inner), Some(']')) => Token::Char(inner),
                _ => Token::Char('['),
            },
            other => Token::Char(other),
        });
    }
    out
}

/// A `%` matches nothing too: what reaches it reaches past it.
fn close(pattern: &[Token], reach: &mut [bool]) {
    for at in 0..pattern.len() {
        if reach[at] && pattern[at] == Token::Any {
            reach[at + 1] = true;
        }
    }
}

/// Just enough XML for FetchXML: elements, attributes, text, comments, the five entities.
mod xml {
    use crate::prelude::*;

    #[derive(Debug, Default)]
    pub(super) struct Element {
        pub(super) name: String,
        attributes: Vec<(String, String)>,
        pub(super) children: Vec<Element>,
        pub(super) text: String,
    }

    impl Element {
        pub(super) fn attribute(&self, name: &str) -> Option<&str> {
            self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    /// The document's root element.
    pub(super) fn parse(text: &str) -> Result<Element, String> {
        let mut stack: Vec<Element> = vec![Element::default()];
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find('<') else {
                stack.last_mut().ok_or("unbalanced")?.text.push_str(&unescape(rest)?);
                break;
            };
            stack.last_mut().ok_or("unbalanced")?.text.push_str(&unescape(&rest[..open])?);
            rest = &rest[open..];
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = &after[after.find("-->").ok_or("a comment is not closed")? + 3..];
                continue;
            }
            if let Some(after) = rest.strip_prefix("<?") {
                rest = &after[after.find("?>").ok_or("a declaration is not closed")? + 2..];
                continue;
            }
            let close = tag_end(rest).ok_or("a tag is not closed")?;
            let tag = &rest[1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let done = stack.pop().ok_or("unbalanced")?;
                if done.name != name.trim() || stack.is_empty() {
                    return Err(format!("</{}> closes <{}>", name.trim(), done.name));
                }
                stack.last_mut().ok_or("unbalanced")?.children.push(done);
                continue;
            }
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(tag) => (tag, true),
                None => (tag, false),
            };
            let element = element(tag)?;
            if empty {
                stack.last_mut().ok_or("unbalanced")?.children.push(element);
            } else {
                stack.push(element);
            }
        }
        let mut document = stack.pop().ok_or("unbalanced")?;
        if !stack.is_empty() {
            return Err(format!("<{}> is not closed", document.name));
        }
        if !document.text.trim().is_empty() || document.children.len() != 1 {
            return Err("the document must hold one element".into());
        }
        Ok(document.children.remove(0))
    }

    /// The `>` that ends the tag `rest` starts with, outside quoted values.
    fn tag_end(rest: &str) -> Option<usize> {
        let mut quote = None;
        for (at, c) in rest.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => return Some(at),
                _ => {}
            }
        }
        None
    }

    fn element(tag: &str) -> Result<Element, String> {
        let tag = tag.trim();
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c)) {
            return Err(format!("<{name}> is not an element's name"));
        }
        let mut attributes = Vec::new();
        let mut rest = tag[name_end..].trim_start();
        while !rest.is_empty() {
            let eq = rest.find('=').ok_or_else(|| format!("an attribute of <{name}> has no value"))?;
            let key = rest[..eq].trim().to_owned();
            let after = rest[eq + 1..].trim_start();
            let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
            let quote = quote.ok_or_else(|| format!("{key} of <{name}> is not quoted"))?;
            let end = after[1..].find(quote).ok_or_else(|| format!("{key} of <{name}> is not closed"))? + 1;
            attributes.push((key, unescape(&after[1..end])?));
            rest = after[end + 1..].trim_start();
        }
        Ok(Element { name: name.to_owned(), attributes, ..Element::default() })
    }

    fn unescape(text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            let end = rest[at..].find(';').ok_or("an entity is not closed")? + at;
            out.push(match &rest[at + 1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                other => return Err(format!("the entity &{other}; is not one of XML's five")),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
