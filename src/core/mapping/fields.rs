//! The admin's field mapping: Dynamics columns the built-in mapping ([`super::outbound`],
//! [`super::inbound`]) does not cover, mapped to SALESmanago's standard fields, its custom
//! details (`properties`) and tags, one way or both. Stored on the integration record as JSON
//! ([`FieldMapping::parse`]); none means none, so an org that sets nothing syncs as before.
//!
//! ```json
//! {"version": 1, "language": "en", "entries": [
//!   {"column": "new_customerno", "label": "Customer no.", "type": "text", "detail": "customer_no", "direction": "both"},
//!   {"column": "industrycode", "type": "choice", "detail": "industry", "labels": {"1": "Accounting"}},
//!   {"column": "parentcustomerid", "type": "lookup", "field": "company"},
//!   {"column": "new_vip", "type": "yesno", "tag": "VIP", "direction": "both"}
//! ]}
//! ```
//!
//! Each entry names a column (its logical name), its type (as the editor read it from the
//! contact's metadata), one target (`field`, `detail` or `tag`) and a direction (`to`
//! SALESmanago, the default; `from` it; `both`). A choice carries its labels in the mapping's
//! `language`, captured when it was saved, so every browser and the relay send the same text
//! whatever their user's language.
//!
//! How values travel, the one place it is written (`docs/salesmanago-api.md` §3.1, §3.11):
//! - `properties` is a flat string → string map **[code]**: every type goes as text. Numbers
//!   as Dataverse wrote them (`.` for decimals), dates as `YYYY-MM-DD` (the UTC date of a
//!   date-time), Yes/No as `true`/`false`, a choice as its label, a lookup as its name.
//!   `dictionaryProperties` (typed NUMBER/DATE) is known only from a third-party client, so
//!   it is not used.
//! - A tag is upper case with `_` for spaces, as the vendor's SDK sends it **[code]**. A Yes/No
//!   column adds its tag when Yes and removes it (`removeTags`) when No; a choice adds
//!   `TAG_LABEL` and removes the tags of its other labels.
//! - A value Dynamics does not hold (null) is not sent: SALESmanago's value stays, as with the
//!   built-in fields. A value that cannot go is a [`Problem`] on that contact.
//! - From SALESmanago, a detail absent from the card is unknown, never a blank; a tag is read
//!   only from a card that lists its tags.

use crate::core::dataverse::contact::{Cell, ContactRow, FORMATTED_KEY};
use crate::core::dataverse::schema::is_logical_name;
use crate::core::json::{self, Map, Value};
use crate::core::salesmanago::contact::{SmContact, UpsertDetails};
use crate::core::salesmanago::export::SYNC_TAG;
use crate::core::sorted::SortedMap;
use crate::prelude::*;

use super::normalize::{self, Date};
use super::outbound::MAX_TEXT;

/// The version of the stored JSON this build reads and writes.
pub const VERSION: u64 = 1;

/// Most entries in one mapping: each adds a column to every contact read (the URL's length).
pub const MAX_ENTRIES: usize = 60;

/// Longest detail name and tag (SALESmanago's event detail limit, `docs/salesmanago-api.md` §4).
pub const MAX_NAME: usize = 255;

/// The Web API's annotation with a lookup's name (and a choice's label in the reader's language).
pub const FORMATTED: &str = "@OData.Community.Display.V1.FormattedValue";

/// A column's type, as the contact's metadata gives it (`AttributeType`), grouped by how its
/// value travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// String, Memo.
    Text,
    /// Integer, BigInt, Decimal, Double, Money.
    Number,
    /// DateTime.
    Date,
    /// Boolean.
    YesNo,
    /// Picklist, State, Status.
    Choice,
    /// Lookup, Customer, Owner: its row's name.
    Lookup,
}

impl ColumnType {
    /// Every type, in the order the editor lists them.
    pub const ALL: [ColumnType; 6] = [
        ColumnType::Text,
        ColumnType::Number,
        ColumnType::Date,
        ColumnType::YesNo,
        ColumnType::Choice,
        ColumnType::Lookup,
    ];

    /// The name in the stored JSON.
    pub const fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Number => "number",
            ColumnType::Date => "date",
            ColumnType::YesNo => "yesno",
            ColumnType::Choice => "choice",
            ColumnType::Lookup => "lookup",
        }
    }

    /// The type of a metadata `AttributeType`; `None` for one that cannot be mapped
    /// (images, files, multi-select choices, party lists…).
    pub fn of_attribute(attribute_type: &str) -> Option<ColumnType> {
        Some(match attribute_type {
            "String" | "Memo" => ColumnType::Text,
            "Integer" | "BigInt" | "Decimal" | "Double" | "Money" => ColumnType::Number,
            "DateTime" => ColumnType::Date,
            "Boolean" => ColumnType::YesNo,
            "Picklist" | "State" | "Status" => ColumnType::Choice,
            "Lookup" | "Customer" | "Owner" => ColumnType::Lookup,
            _ => return None,
        })
    }

    fn parse(name: &str) -> Option<ColumnType> {
        ColumnType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// SALESmanago standard fields the built-in mapping leaves free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardField {
    /// `contact.company`.
    Company,
    /// `province` (top level of the upsert).
    Province,
}

impl StandardField {
    /// Every field.
    pub const ALL: [StandardField; 2] = [StandardField::Company, StandardField::Province];

    /// The name in the stored JSON (SALESmanago's).
    pub const fn name(self) -> &'static str {
        match self {
            StandardField::Company => "company",
            StandardField::Province => "province",
        }
    }

    /// Whether SALESmanago's cards carry it back (`company` does; `province` is not on them).
    const fn readable(self) -> bool {
        matches!(self, StandardField::Company)
    }
}

/// Where an entry's value goes in SALESmanago.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A standard field.
    Field(StandardField),
    /// A custom detail, by name.
    Detail(String),
    /// A tag (Yes/No), or the prefix of one tag per label (choice); normalised.
    Tag(String),
}

/// Which way an entry's value travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Dynamics → SALESmanago.
    ToSalesmanago,
    /// SALESmanago → Dynamics.
    FromSalesmanago,
    /// Both.
    Both,
}

impl Direction {
    fn parse(name: &str) -> Option<Direction> {
        Some(match name {
            "to" => Direction::ToSalesmanago,
            "from" => Direction::FromSalesmanago,
            "both" => Direction::Both,
            _ => return None,
        })
    }

    /// The name in the stored JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::ToSalesmanago => "to",
            Direction::FromSalesmanago => "from",
            Direction::Both => "both",
        }
    }

    /// Dynamics' value goes to SALESmanago.
    pub const fn outbound(self) -> bool {
        !matches!(self, Direction::FromSalesmanago)
    }

    /// SALESmanago's value comes to Dynamics.
    pub const fn inbound(self) -> bool {
        !matches!(self, Direction::ToSalesmanago)
    }
}

/// One mapped column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The column's logical name.
    pub column: String,
    /// Its display name in the mapping's language, as the editor saved it: what users are
    /// told (the logical name when the JSON has none).
    pub label: String,
    /// Its type.
    pub kind: ColumnType,
    /// Where it goes.
    pub target: Target,
    /// Which way.
    pub direction: Direction,
    /// A choice's labels by option value.
    pub labels: SortedMap<i64, String>,
    /// A lookup's name as a row holds it (`_<column>_value` + [`FORMATTED`], lower case).
    lookup_name: String,
}

/// The admin's mapping, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMapping {
    /// The entries, in the order stored.
    pub entries: Vec<Entry>,
    /// The language of the choices' labels (`en`, `pl`, …), as stored.
    pub language: String,
}

/// Why a stored mapping cannot be used: nothing of it is used, and the message says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    /// Not JSON at all.
    NotJson {
        /// The parser's words.
        detail: String,
    },
    /// JSON, but not a mapping's shape.
    Shape {
        /// What is wrong, in the reader's words.
        detail: String,
    },
    /// Written by a newer (or unknown) version.
    Version {
        /// The version found.
        found: String,
    },
    /// More than [`MAX_ENTRIES`] entries.
    TooMany {
        /// How many.
        count: usize,
    },
    /// One entry is wrong.
    Entry {
        /// Its place, from 1.
        number: usize,
        /// Its column as written (may be empty).
        column: String,
        /// What is wrong.
        problem: EntryProblem,
    },
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// A key that is not an entry's.
    UnknownKey(String),
    /// No column, or not a logical name (lower-case letters, digits, `_`).
    Column,
    /// A column the integration synchronises itself (the built-in mapping, its status columns,
    /// the consents).
    Reserved,
    /// The type is missing or not one of [`ColumnType::ALL`].
    Type(String),
    /// No target, or more than one of `field`, `detail`, `tag`.
    Target,
    /// `field` is not one of [`StandardField::ALL`].
    Field(String),
    /// A detail name or tag that is empty, too long, or (a tag) ours.
    Name(String),
    /// `direction` is not `to`, `from` or `both`.
    Direction(String),
    /// This type cannot go to this target (only Yes/No and choices make tags; a lookup is
    /// text only for a standard field or a detail).
    TypeForTarget,
    /// The value cannot come back from SALESmanago this way (a lookup, a field its cards lack).
    NotFromSalesmanago,
    /// A choice without its labels, or a label that is not text.
    Labels,
    /// The editor's column is not one of the contact's that may be mapped (gone, of a type that
    /// cannot travel, or one the integration synchronises itself).
    NoSuchColumn,
    /// The target is mapped by an earlier entry too.
    Twice {
        /// The earlier entry's place, from 1.
        first: usize,
    },
}

const KEYS: &[&str] = &["column", "label", "type", "field", "detail", "tag", "direction", "labels"];

impl FieldMapping {
    /// No mapping: the built-in one alone.
    pub const NONE: FieldMapping = FieldMapping { entries: Vec::new(), language: String::new() };

    /// The mapping stored as `text` (the record's column); empty text is no mapping.
    ///
    /// Fails with the first thing wrong, so the admin can correct it; nothing of a mapping
    /// that fails is used.
    pub fn parse(text: &str) -> Result<FieldMapping, MappingError> {
        if text.trim().is_empty() {
            return Ok(FieldMapping::default());
        }
        let value = json::from_str_unique(text).map_err(|e| MappingError::NotJson { detail: e.to_string() })?;
        let shape = |detail: &str| MappingError::Shape { detail: detail.to_owned() };
        let top = value.as_object().ok_or_else(|| shape("the mapping is not an object"))?;
        if let Some(key) = top.keys().find(|k| !["version", "language", "entries"].contains(&k.as_str())) {
            return Err(MappingError::Shape { detail: format!("unknown key “{key}”") });
        }
        match top.get("version") {
            Some(v) if v.as_u64() == Some(VERSION) => {}
            Some(v) => return Err(MappingError::Version { found: v.to_string() }),
            None => return Err(shape("the version is missing")),
        }
        let language = match top.get("language") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(l)) if l.len() <= 10 => l.trim().to_ascii_lowercase(),
            Some(_) => return Err(shape("the language is not a language code")),
        };
        let items = match top.get("entries") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(shape("“entries” is not a list")),
        };
        if items.len() > MAX_ENTRIES {
            return Err(MappingError::TooMany { count: items.len() });
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let number = index + 1;
            let column = item.get("column").and_then(Value::as_str).unwrap_or_default().trim().to_owned();
            let fail = |problem| MappingError::Entry { number, column: column.clone(), problem };
            let entry = Entry::parse(item, &column).map_err(fail)?;
            if let Some(first) = entries.iter().position(|e| e.target == entry.target) {
                return Err(fail(EntryProblem::Twice { first: first + 1 }));
            }
            entries.push(entry);
        }
        Ok(FieldMapping { entries, language })
    }

    /// The stored JSON of this mapping ([`FieldMapping::parse`] reads it back).
    pub fn to_text(&self) -> String {
        let entries: Vec<Value> = self.entries.iter().map(Entry::to_json).collect();
        let mut top = Map::new();
        top.put("version", VERSION.into());
        top.put("language", self.language.clone().into());
        top.put("entries", entries.into());
        Value::Object(top).to_string()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the record's column holds for it: nothing for no entries (the built-in mapping
    /// alone), else its stored JSON.
    pub fn stored(&self) -> Value {
        if self.is_empty() {
            Value::Null
        } else {
            self.to_text().into()
        }
    }

    /// The columns to read for it (`$select`): a lookup as `_<column>_value`.
    pub fn columns(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(Entry::select)
    }

    /// What a contact sent with this mapping went with, recorded on it
    /// (`new_salesmanagomapping`): 16 hex digits of SHA-1 over the entries that send, each as
    /// stored less its label and direction, in the order of their text. `None` when nothing
    /// is sent by the mapping (the built-in mapping alone, as every contact sent before one was
    /// set). A new label, a reordering or an entry that only takes values back changes nothing
    /// sent, so not this; a column, target, type or choice label does.
    pub fn fingerprint(&self) -> Option<String> {
        let mut sent: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.direction.outbound())
            .map(|e| {
                let mut json = e.to_json();
                if let Value::Object(map) = &mut json {
                    map.remove("label");
                    map.remove("direction");
                }
                json.to_string()
            })
            .collect();
        if sent.is_empty() {
            return None;
        }
        crate::core::sorted::sort(&mut sent);
        let digest = sha1_smol::Sha1::from(sent.join("\n")).digest().to_string();
        Some(digest[..16].to_owned())
    }

    /// Whether a value comes from SALESmanago's details or tags, which only its full cards
    /// (`listById`) carry.
    pub fn reads_cards(&self) -> bool {
        self.entries.iter().any(|e| e.direction.inbound() && !matches!(e.target, Target::Field(_)))
    }

    /// Puts the values of `row` (a Web API row with [`FieldMapping::columns`]) into `details`.
    /// Each value that cannot go is a [`Problem`].
    pub fn to_salesmanago(&self, row: &ContactRow, details: &mut UpsertDetails) -> Vec<Problem> {
        let mut problems = Vec::new();
        details.properties.reserve(self.entries.iter().filter(|e| matches!(e.target, Target::Detail(_))).count());
        for entry in self.entries.iter().filter(|e| e.direction.outbound()) {
            let (value, problem) = entry.outbound(row);
            if let Some(value) = value {
                entry.put(value, details);
            }
            problems.extend(problem);
        }
        problems
    }

    /// The columns of `row` to change so that Dynamics holds what `sm` holds, for the entries
    /// that come from SALESmanago: only values that differ, as in [`super::inbound`].
    pub fn from_salesmanago(&self, row: &ContactRow, sm: &SmContact, columns: &mut SortedMap<String, Value>) {
        for entry in self.entries.iter().filter(|e| e.direction.inbound()) {
            if let Some(value) = entry.inbound(sm) {
                if !entry.holds(row, &value) {
                    columns.insert(entry.column.clone(), value);
                }
            }
        }
    }
}

/// A value of the admin's mapping that could not go; the contact goes without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Cut to [`MAX_TEXT`] characters.
    Truncated {
        /// The column's [`Entry::label`].
        column: String,
    },
    /// The row's value is not of the mapped type (the column was changed since the mapping
    /// was saved): left out.
    NotItsType {
        /// The column's [`Entry::label`].
        column: String,
    },
    /// A choice's value has no label in the mapping (an option added since it was saved).
    NoLabel {
        /// The column's [`Entry::label`].
        column: String,
        /// The option value.
        value: String,
    },
}

/// A value about to go: text, or a tag to set (`true`) or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outgoing {
    Text(String),
    Tag(bool),
}

impl Entry {
    fn parse(item: &Value, column: &str) -> Result<Entry, EntryProblem> {
        let fields = item.as_object().ok_or(EntryProblem::Column)?;
        if let Some(key) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(EntryProblem::UnknownKey(key.clone()));
        }
        if !is_logical_name(column) {
            return Err(EntryProblem::Column);
        }
        if reserved(column) {
            return Err(EntryProblem::Reserved);
        }
        // A key's text, trimmed; a value that is not text is refused as written.
        let text = |key: &str| -> Option<Result<String, String>> {
            let value = fields.get(key).filter(|v| !v.is_null())?;
            Some(value.as_str().map(|t| t.trim().to_owned()).ok_or_else(|| value.to_string()))
        };
        let kind = match text("type") {
            Some(Ok(name)) => ColumnType::parse(&name).ok_or(EntryProblem::Type(name))?,
            Some(Err(raw)) => return Err(EntryProblem::Type(raw)),
            None => return Err(EntryProblem::Type(String::new())),
        };
        let direction = match text("direction") {
            None => Direction::ToSalesmanago,
            Some(name) => {
                let name = name.unwrap_or_else(|raw| raw);
                Direction::parse(&name).ok_or(EntryProblem::Direction(name))?
            }
        };
        let target = match (text("field"), text("detail"), text("tag")) {
            (Some(name), None, None) => {
                let name = name.map_err(EntryProblem::Field)?;
                Target::Field(
                    StandardField::ALL.into_iter().find(|f| f.name() == name).ok_or(EntryProblem::Field(name))?,
                )
            }
            (None, Some(name), None) => {
                let name = name.map_err(EntryProblem::Name)?;
                match normalize::text(&name, MAX_NAME) {
                    (Some(detail), false) => Target::Detail(detail),
                    _ => return Err(EntryProblem::Name(name)),
                }
            }
            (None, None, Some(name)) => {
                let name = name.map_err(EntryProblem::Name)?;
                let tag = tag_name(&name);
                if tag.is_empty() || tag.chars().count() > MAX_NAME || tag.eq_ignore_ascii_case(SYNC_TAG) {
                    return Err(EntryProblem::Name(name));
                }
                Target::Tag(tag)
            }
            _ => return Err(EntryProblem::Target),
        };
        let fits = match (&target, kind) {
            (Target::Tag(_), ColumnType::YesNo | ColumnType::Choice) => true,
            (Target::Tag(_), _) => false,
            (Target::Field(_), ColumnType::Text | ColumnType::Choice | ColumnType::Lookup) => true,
            (Target::Field(_), _) => false,
            (Target::Detail(_), _) => true,
        };
        if !fits {
            return Err(EntryProblem::TypeForTarget);
        }
        let readable = match &target {
            Target::Field(field) => field.readable() && kind == ColumnType::Text,
            _ => kind != ColumnType::Lookup,
        };
        if direction.inbound() && !readable {
            return Err(EntryProblem::NotFromSalesmanago);
        }
        let labels = match (kind, fields.get("labels")) {
            (ColumnType::Choice, Some(Value::Object(labels))) if !labels.is_empty() => {
                let mut parsed = SortedMap::new();
                for (value, label) in labels.iter() {
                    let value: i64 = value.trim().parse().map_err(|_| EntryProblem::Labels)?;
                    let label = label.as_str().and_then(|l| normalize::text(l, MAX_NAME).0);
                    parsed.insert(value, label.ok_or(EntryProblem::Labels)?);
                }
                parsed
            }
            (ColumnType::Choice, _) => return Err(EntryProblem::Labels),
            (_, None | Some(Value::Null)) => SortedMap::new(),
            (_, Some(_)) => return Err(EntryProblem::UnknownKey("labels".into())),
        };
        let label = match text("label") {
            None => column.to_owned(),
            Some(Ok(label)) => normalize::text(&label, MAX_NAME).0.unwrap_or_else(|| column.to_owned()),
            Some(Err(raw)) => return Err(EntryProblem::UnknownKey(format!("label: {raw}"))),
        };
        let lookup_name = match kind {
            ColumnType::Lookup => format!("_{column}_value{FORMATTED_KEY}"),
            _ => String::new(),
        };
        Ok(Entry { column: column.to_owned(), label, kind, target, direction, labels, lookup_name })
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.put("column", self.column.clone().into());
        if self.label != self.column {
            map.put("label", self.label.clone().into());
        }
        map.put("type", self.kind.name().into());
        match &self.target {
            Target::Field(field) => map.put("field", field.name().into()),
            Target::Detail(name) => map.put("detail", name.clone().into()),
            Target::Tag(name) => map.put("tag", name.clone().into()),
        }
        map.put("direction", self.direction.name().into());
        if !self.labels.is_empty() {
            let labels: Map = self.labels.iter().map(|(v, l)| (v.to_string(), l.clone().into())).collect();
            map.put("labels", labels.into());
        }
        Value::Object(map)
    }

    /// The column as `$select` names it.
    fn select(&self) -> String {
        match self.kind {
            ColumnType::Lookup => format!("_{}_value", self.column),
            _ => self.column.clone(),
        }
    }

    /// The value of `row` to send (`None` when Dynamics holds none), and what is wrong with
    /// it: a value cut still goes, one not of its type does not.
    fn outbound(&self, row: &ContactRow) -> (Option<Outgoing>, Option<Problem>) {
        let column = || self.label.clone();
        // First where the Web API's JSON puts the column's type (text; a number, Yes/No or
        // option; a lookup's name), then the other place, so a value of the wrong type is
        // still told. Mapped columns are never the opt-outs or consents ([`reserved`]), which a
        // row keeps apart.
        let (text, other) = (|| row.get(&self.column).map(Cell::Text), || row.other.get(&self.column).map(Cell::Other));
        let cell = match self.kind {
            ColumnType::Lookup => row.other.get(&self.lookup_name).map(Cell::Other),
            ColumnType::Text | ColumnType::Date => text().or_else(other),
            ColumnType::Number | ColumnType::YesNo | ColumnType::Choice => other().or_else(text),
        };
        let Some(cell) = cell else { return (None, None) };
        let text: &str = match (self.kind, cell) {
            (ColumnType::Text, Cell::Text(text)) => text,
            (ColumnType::Lookup, Cell::Other(Value::String(text))) => text,
            (ColumnType::Number, Cell::Other(Value::Number(n))) => n.as_str(),
            // An Edm.Int64 or Decimal read with IEEE754Compatible comes as text.
            (ColumnType::Number, Cell::Text(text)) if number(text).is_some() => text,
            (ColumnType::Date, Cell::Text(text)) => match Date::parse_iso(text) {
                Some(date) => return (Some(Outgoing::Text(date.iso())), None),
                None => return (None, Some(Problem::NotItsType { column: column() })),
            },
            (ColumnType::YesNo, Cell::Other(Value::Bool(yes))) => {
                let value = match self.target {
                    Target::Tag(_) => Outgoing::Tag(*yes),
                    _ => Outgoing::Text(yes.to_string()),
                };
                return (Some(value), None);
            }
            (ColumnType::Choice, Cell::Other(Value::Number(n))) => match n.as_i64().and_then(|v| self.labels.get(&v)) {
                Some(label) => label,
                None => return (None, Some(Problem::NoLabel { column: column(), value: n.to_string() })),
            },
            _ => return (None, Some(Problem::NotItsType { column: column() })),
        };
        match normalize::text(text, MAX_TEXT) {
            (Some(value), true) => (Some(Outgoing::Text(value)), Some(Problem::Truncated { column: column() })),
            (value, _) => (value.map(Outgoing::Text), None),
        }
    }

    fn put(&self, value: Outgoing, details: &mut UpsertDetails) {
        match (&self.target, value) {
            (Target::Field(StandardField::Company), Outgoing::Text(text)) => details.contact.company = Some(text),
            (Target::Field(StandardField::Province), Outgoing::Text(text)) => details.province = Some(text),
            (Target::Detail(name), Outgoing::Text(text)) => {
                details.properties.insert(name.clone(), text);
            }
            (Target::Tag(tag), Outgoing::Tag(on)) => toggle(details, tag.clone(), on),
            (Target::Tag(prefix), Outgoing::Text(label)) => {
                let chosen = choice_tag(prefix, &label);
                for other in self.labels.iter().map(|(_, l)| choice_tag(prefix, l)).filter(|t| *t != chosen) {
                    toggle(details, other, false);
                }
                toggle(details, chosen, true);
            }
            // [`Entry::outbound`] makes a tag's value only for a tag (a Yes/No elsewhere is text).
            (Target::Field(_) | Target::Detail(_), Outgoing::Tag(_)) => {}
        }
    }

    /// SALESmanago's value, as Dynamics would hold it; `None` when its card does not say.
    fn inbound(&self, sm: &SmContact) -> Option<Value> {
        let text: &str = match &self.target {
            Target::Field(StandardField::Company) => sm.company.as_deref()?,
            Target::Field(StandardField::Province) => return None,
            Target::Detail(name) => sm.properties.get(name)?.as_str(),
            Target::Tag(tag) => {
                if !sm.tags_listed {
                    return None;
                }
                let has = |t: &str| sm.tags.iter().any(|held| tag_name(held) == t);
                return match self.kind {
                    ColumnType::YesNo => Some(has(tag).into()),
                    _ => self.labels.iter().find(|(_, l)| has(&choice_tag(tag, l))).map(|(v, _)| (*v).into()),
                };
            }
        };
        let text = text.trim();
        match self.kind {
            ColumnType::Text => normalize::text(text, MAX_TEXT).0.map(Value::from),
            ColumnType::Number => number(text),
            ColumnType::Date => {
                let date = Date::parse_iso(text).or_else(|| Date::parse_compact(text))?;
                Some(date.iso().into())
            }
            ColumnType::YesNo => match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "tak" => Some(true.into()),
                "false" | "0" | "no" | "nie" => Some(false.into()),
                _ => None,
            },
            ColumnType::Choice => {
                let label = normalize::text(text, MAX_NAME).0?;
                let found = self.labels.iter().find(|(_, l)| l.eq_ignore_ascii_case(&label));
                found.map(|(v, _)| (*v).into())
            }
            ColumnType::Lookup => None,
        }
    }

    /// Whether `row` holds `value` already.
    fn holds(&self, row: &ContactRow, value: &Value) -> bool {
        let Some(current) = row.value(&self.column) else { return false };
        match (self.kind, &current, value) {
            (ColumnType::Text, Value::String(now), Value::String(new)) => {
                normalize::text(now, MAX_TEXT).0.as_deref() == Some(new.as_str())
            }
            (ColumnType::Number, now, Value::Number(new)) => {
                let now = match now {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.trim().to_owned(),
                    _ => return false,
                };
                same_number(&now, &new.to_string())
            }
            (ColumnType::Date, Value::String(now), Value::String(new)) => {
                Date::parse_iso(now).map(|d| d.iso()).as_deref() == Some(new.as_str())
            }
            _ => current == *value,
        }
    }
}

/// Whether the integration synchronises `column` itself: the built-in mapping, its status
/// columns and the consents. Mapping one again would send or write it twice.
pub fn reserved(column: &str) -> bool {
    use crate::core::dataverse::schema::{consent_name, contact};
    crate::core::dataverse::contact::SELECT.contains(&column)
        || column.starts_with("new_salesmanago")
        || consent_name(column).is_some()
        || [contact::SYNC_STATUS, contact::LAST_ERROR, contact::SYNCED_ON, contact::CONSENT_BASE].contains(&column)
}

/// A tag as the vendor's SDK sends it: trimmed, upper case, spaces as `_`. Upper case as PHP's
/// `strtoupper` makes it, ASCII letters only (and Unicode's case tables would cost the wasm
/// 18 KB).
pub fn tag_name(raw: &str) -> String {
    let (text, _) = normalize::text(raw, usize::MAX);
    text.unwrap_or_default().to_ascii_uppercase().replace(' ', "_")
}

/// The tag of a choice's label under `prefix`.
fn choice_tag(prefix: &str, label: &str) -> String {
    tag_name(&format!("{prefix}_{label}"))
}

/// Adds `tag` (`on`) or asks SALESmanago to remove it, once.
fn toggle(details: &mut UpsertDetails, tag: String, on: bool) {
    let (add, remove) = match on {
        true => (&mut details.tags, &mut details.remove_tags),
        false => (&mut details.remove_tags, &mut details.tags),
    };
    remove.retain(|t| *t != tag);
    if !add.contains(&tag) {
        add.push(tag);
    }
}

/// `text` as a JSON number, if it is one (JSON's grammar admits only digits, `-`, `+`, `.`,
/// `e` and `E` in one, and nothing around it but the spaces trimmed).
fn number(text: &str) -> Option<Value> {
    match json::from_str(text.trim()) {
        Ok(value @ Value::Number(_)) => Some(value),
        _ => None,
    }
}

/// Two numbers' texts name the same number (`12`, `+012` and `12.00`); compared as decimal
/// text, since parsing floats would cost the wasm its float code. Exponents compare as written.
fn same_number(a: &str, b: &str) -> bool {
    fn canonical(text: &str) -> String {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let int = int.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let body = if fraction.is_empty() { int.to_owned() } else { format!("{int}.{fraction}") };
        if negative && body != "0" {
            format!("-{body}")
        } else {
            body
        }
    }
    canonical(a) == canonical(b)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
