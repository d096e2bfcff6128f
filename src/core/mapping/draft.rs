//! The mapping editor's side of the admin's mapping: the contact's columns as its metadata
//! describes them ([`columns`]), the rows the admin edits ([`Draft`]), and the one way from
//! those rows to a stored mapping ([`mapping`]), checked by the same rules as a stored one
//! ([`FieldMapping::parse`]) and against the columns that exist.

use crate::core::json::{Fields, Map, Value};
use crate::core::sorted::SortedMap;
use crate::prelude::*;

use super::fields::{reserved, ColumnType, Direction, EntryProblem, FieldMapping, MappingError, Target};
use crate::core::scope::view::{ViewError, ViewFilter};

/// A contact column the admin may map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Logical name.
    pub name: String,
    /// Display name in the user's language (the logical name when it has none).
    pub label: String,
    /// How its value travels.
    pub kind: ColumnType,
    /// A choice's options: value → label in the user's language.
    pub options: SortedMap<i64, String>,
}

impl Column {
    /// The column as the editor's page takes it (and gives it back).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("name".into(), self.name.clone().into());
        map.insert("label".into(), self.label.clone().into());
        map.insert("type".into(), self.kind.name().into());
        let options: Map = self.options.iter().map(|(v, l)| (v.to_string(), l.clone().into())).collect();
        map.insert("options".into(), options.into());
        Value::Object(map)
    }

    /// The columns the page gives back; those it garbled are left out (their rows then name
    /// no column the contact has).
    pub fn list(value: &Value) -> Vec<Column> {
        let read = |item: &Value| {
            let kind = ColumnType::ALL.into_iter().find(|t| Some(t.name()) == item["type"].as_str())?;
            let options = item["options"].as_object().into_iter().flat_map(Map::iter);
            let options = options.filter_map(|(v, l)| Some((v.parse().ok()?, l.as_str()?.to_owned()))).collect();
            let name = item["name"].as_str()?.to_owned();
            (!reserved(&name)).then_some(())?;
            Some(Column { name, label: item["label"].as_str()?.to_owned(), kind, options })
        };
        value.items().iter().filter_map(read).collect()
    }
}

/// The contact's attributes as metadata lists them, under the Web API root: their names,
/// types and display names.
pub const ATTRIBUTES: &str = "EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName,AttributeType,DisplayName,IsValidForRead,AttributeOf";

/// The contact's choice columns with their options.
pub const CHOICES: &str = "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)";

/// The columns an admin may map, from the answers to [`ATTRIBUTES`] and [`CHOICES`], sorted by
/// label: readable columns of a type that travels ([`ColumnType::of_attribute`]), not one the
/// integration synchronises itself, not a part of another (`AttributeOf`, such as a lookup's
/// name column).
pub fn columns(attributes: &Value, choices: &Value) -> Vec<Column> {
    let label = |v: &Value| {
        v["UserLocalizedLabel"]["Label"].as_str().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned)
    };
    let mut options: SortedMap<String, SortedMap<i64, String>> = SortedMap::new();
    for choice in choices["value"].items() {
        let Some(name) = choice["LogicalName"].as_str() else { continue };
        let listed = choice["OptionSet"]["Options"].items().iter();
        let parsed = listed.filter_map(|o| Some((o["Value"].as_i64()?, label(&o["Label"])?))).collect();
        options.insert(name.to_owned(), parsed);
    }
    // By label, then by logical name: names are unique, so each column has a place of its own.
    let columns: SortedMap<(String, String), Column> = attributes["value"]
        .items()
        .iter()
        .filter(|a| a["IsValidForRead"].as_bool() != Some(false) && a["AttributeOf"].as_str().is_none())
        .filter_map(|a| {
            let name = a["LogicalName"].as_str()?.to_owned();
            let kind = ColumnType::of_attribute(a["AttributeType"].as_str()?)?;
            if reserved(&name) {
                return None;
            }
            let label = label(&a["DisplayName"]).unwrap_or_else(|| name.clone());
            let options = options.get(&name).cloned().unwrap_or_default();
            Some(((label.to_ascii_lowercase(), name.clone()), Column { name, label, kind, options }))
        })
        .collect();
    columns.into_iter().map(|(_, column)| column).collect()
}

/// One row of the editor: a column, where it goes and which way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The column's logical name.
    pub column: String,
    /// `detail`, `tag` or `field`.
    pub target: String,
    /// The detail's or tag's name, or the field (`company`, `province`).
    pub name: String,
    /// `to`, `from` or `both`.
    pub direction: String,
}

impl Draft {
    /// The editor's rows, as its page sends them: a list of `{column, target, name, direction}`.
    pub fn list(value: &Value) -> Result<Vec<Draft>, MappingError> {
        let shape = |detail: String| MappingError::Shape { detail };
        let items = value.as_array().ok_or_else(|| shape("the rows are not a list".into()))?;
        items
            .iter()
            .map(|item| {
                let fields = Fields::of(item).map_err(|e| shape(e.to_string()))?;
                let text = |key: &str| fields.or_default::<String>(key).map_err(|e| shape(e.to_string()));
                Ok(Draft {
                    column: text("column")?,
                    target: text("target")?,
                    name: text("name")?,
                    direction: text("direction")?,
                })
            })
            .collect()
    }

    /// The row as the page takes it.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("column".into(), self.column.clone().into());
        map.insert("target".into(), self.target.clone().into());
        map.insert("name".into(), self.name.clone().into());
        map.insert("direction".into(), self.direction.clone().into());
        Value::Object(map)
    }
}

/// The editor's rows of a stored mapping.
pub fn drafts(mapping: &FieldMapping) -> Vec<Draft> {
    mapping
        .entries
        .iter()
        .map(|entry| {
            let (target, name) = match &entry.target {
                Target::Field(field) => ("field", field.name().to_owned()),
                Target::Detail(name) => ("detail", name.clone()),
                Target::Tag(name) => ("tag", name.clone()),
            };
            Draft {
                column: entry.column.clone(),
                target: target.into(),
                name,
                direction: entry.direction.name().into(),
            }
        })
        .collect()
}

/// The contact views, under the Web API root: their names and FetchXML.
pub const VIEWS: &str = "savedqueries?$select=name,fetchxml&$filter=returnedtypecode eq 'contact'&$orderby=name asc";

/// A view the admin may choose as the scope, and why not, if it cannot be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChoice {
    /// Its name.
    pub name: String,
    /// Its FetchXML.
    pub fetch: String,
    /// Why it cannot be the scope.
    pub problem: Option<ViewError>,
}

/// The contact views in the answer to [`VIEWS`], each judged over the contact's attributes
/// (the answer to [`ATTRIBUTES`]): a condition on a column that is not the contact's, or on a
/// lookup, cannot be decided from a row the integration reads.
pub fn views(answer: &Value, attributes: &Value) -> Vec<ViewChoice> {
    let kinds: SortedMap<String, String> = attributes["value"]
        .items()
        .iter()
        .filter_map(|a| Some((a["LogicalName"].as_str()?.to_owned(), a["AttributeType"].as_str()?.to_owned())))
        .collect();
    answer["value"]
        .items()
        .iter()
        .filter_map(|v| {
            let name = v["name"].as_str()?.trim().to_owned();
            let fetch = v["fetchxml"].as_str()?.to_owned();
            let problem = match ViewFilter::parse(&fetch) {
                Err(error) => Some(error),
                Ok(filter) => {
                    filter.columns().into_iter().find_map(|column| match kinds.get(&column).map(String::as_str) {
                        None => Some(ViewError::Unsupported(format!(
                            "the column {column}, which the contact does not have"
                        ))),
                        Some("Lookup" | "Customer" | "Owner") => {
                            Some(ViewError::Unsupported(format!("a condition on the lookup {column}")))
                        }
                        Some(_) => None,
                    })
                }
            };
            Some(ViewChoice { name, fetch, problem })
        })
        .collect()
}

/// The editor's scope: `{rule: all|marked|view, column, view, leaving: alone|optout}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeDraft {
    /// `all`, `marked` or `view`.
    pub rule: String,
    /// The marking Yes/No column (`marked`).
    pub column: String,
    /// The view's name (`view`).
    pub view: String,
    /// `alone` or `optout`.
    pub leaving: String,
}

/// Why the editor's scope cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeProblem {
    /// "Marked" with no Yes/No column of the contact's chosen.
    NoColumn,
    /// "In a view" with no view of the contact's chosen.
    NoView,
    /// The view chosen cannot be the scope.
    View(ViewError),
}

impl ScopeDraft {
    /// The page's scope.
    pub fn of(value: &Value) -> ScopeDraft {
        let text = |key: &str| value[key].as_str().unwrap_or_default().trim().to_owned();
        ScopeDraft { rule: text("rule"), column: text("column"), view: text("view"), leaving: text("leaving") }
    }

    /// The scope the record holds, as the page shows it.
    pub fn from_record(record: &Map) -> ScopeDraft {
        use crate::core::dataverse::schema::integration;
        use crate::core::scope::option;
        let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
        let number = |key: &str| record.get(key).and_then(Value::as_i64);
        let rule = match number(integration::SYNC_SCOPE) {
            Some(option::MARKED) => "marked",
            Some(option::VIEW) => "view",
            _ => "all",
        };
        let leaving = if number(integration::SCOPE_LEAVING) == Some(option::OPTED_OUT) { "optout" } else { "alone" };
        ScopeDraft {
            rule: rule.into(),
            column: text(integration::SCOPE_COLUMN),
            view: text(integration::SCOPE_VIEW),
            leaving: leaving.into(),
        }
    }

    /// The page's shape of it.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (key, value) in
            [("rule", &self.rule), ("column", &self.column), ("view", &self.view), ("leaving", &self.leaving)]
        {
            map.insert(key.into(), value.clone().into());
        }
        Value::Object(map)
    }

    /// The record's scope columns for it, over the contact's Yes/No `columns` and its `views`.
    pub fn record(&self, columns: &[Column], views: &[ViewChoice]) -> Result<Map, ScopeProblem> {
        use crate::core::dataverse::schema::integration;
        use crate::core::scope::option;
        let mut record = Map::new();
        let (rule, column, view, fetch) = match self.rule.as_str() {
            "marked" => {
                let flag = columns.iter().find(|c| c.name == self.column && c.kind == ColumnType::YesNo);
                let flag = flag.ok_or(ScopeProblem::NoColumn)?;
                (option::MARKED, Value::from(flag.name.clone()), Value::Null, Value::Null)
            }
            "view" => {
                let chosen = views.iter().find(|v| v.name == self.view).ok_or(ScopeProblem::NoView)?;
                // `views` judged it from its FetchXML, read again by the save (not the page's word).
                if let Some(problem) = chosen.problem.clone() {
                    return Err(ScopeProblem::View(problem));
                }
                (option::VIEW, Value::Null, chosen.name.clone().into(), chosen.fetch.clone().into())
            }
            _ => (option::ALL, Value::Null, Value::Null, Value::Null),
        };
        record.insert(integration::SYNC_SCOPE.into(), rule.into());
        record.insert(integration::SCOPE_COLUMN.into(), column);
        record.insert(integration::SCOPE_VIEW.into(), view);
        record.insert(integration::SCOPE_FETCHXML.into(), fetch);
        let leaving = if self.leaving == "optout" { option::OPTED_OUT } else { option::LEFT_ALONE };
        record.insert(integration::SCOPE_LEAVING.into(), leaving.into());
        Ok(record)
    }
}

/// The mapping the editor's `rows` make over the contact's `columns`, with the choices' labels
/// in `language`: each row checked as a stored entry is, and its column against those that
/// exist, with its type and labels as the metadata gives them.
pub fn mapping(rows: &[Draft], columns: &[Column], language: &str) -> Result<FieldMapping, MappingError> {
    let mut entries = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let name = row.column.trim();
        let fail = |problem| MappingError::Entry { number: index + 1, column: name.to_owned(), problem };
        let column = columns.iter().find(|c| c.name == name).ok_or_else(|| fail(EntryProblem::NoSuchColumn))?;
        let mut entry = Map::new();
        entry.insert("column".into(), column.name.clone().into());
        entry.insert("label".into(), column.label.clone().into());
        entry.insert("type".into(), column.kind.name().into());
        let target = match row.target.as_str() {
            "detail" | "tag" | "field" => row.target.clone(),
            _ => return Err(fail(EntryProblem::Target)),
        };
        entry.insert(target, row.name.clone().into());
        let direction =
            if row.direction.trim().is_empty() { Direction::ToSalesmanago.name() } else { row.direction.trim() };
        entry.insert("direction".into(), direction.into());
        if column.kind == ColumnType::Choice {
            let labels: Map = column.options.iter().map(|(v, l)| (v.to_string(), l.clone().into())).collect();
            entry.insert("labels".into(), labels.into());
        }
        entries.push(Value::Object(entry));
    }
    let mut top = Map::new();
    top.insert("version".into(), super::fields::VERSION.into());
    top.insert("language".into(), language.into());
    top.insert("entries".into(), entries.into());
    FieldMapping::parse(&Value::Object(top).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn metadata() -> (Value, Value) {
        let attributes = json!({"value": [
            {"LogicalName": "new_customerno", "AttributeType": "String", "DisplayName": {"UserLocalizedLabel": {"Label": "Customer number"}}},
            {"LogicalName": "preferredcontactmethodcode", "AttributeType": "Picklist", "DisplayName": {"UserLocalizedLabel": {"Label": "Preferred Method of Contact"}}},
            {"LogicalName": "numberofchildren", "AttributeType": "Integer", "DisplayName": {"UserLocalizedLabel": null}},
            {"LogicalName": "parentcustomerid", "AttributeType": "Customer", "DisplayName": {"UserLocalizedLabel": {"Label": "Company Name"}}},
            {"LogicalName": "parentcustomeridname", "AttributeType": "String", "AttributeOf": "parentcustomerid"},
            {"LogicalName": "emailaddress1", "AttributeType": "String"},
            {"LogicalName": "entityimage", "AttributeType": "Virtual"},
            {"LogicalName": "new_secret", "AttributeType": "String", "IsValidForRead": false}
        ]});
        let choices = json!({"value": [{"LogicalName": "preferredcontactmethodcode", "OptionSet": {"Options": [
            {"Value": 1, "Label": {"UserLocalizedLabel": {"Label": "Any"}}},
            {"Value": 2, "Label": {"UserLocalizedLabel": {"Label": "Email"}}}
        ]}}]});
        (attributes, choices)
    }

    fn row(column: &str, target: &str, name: &str, direction: &str) -> Draft {
        Draft { column: column.into(), target: target.into(), name: name.into(), direction: direction.into() }
    }

    #[test]
    fn the_columns_are_those_that_travel_and_are_not_ours() {
        let (attributes, choices) = metadata();
        let columns = columns(&attributes, &choices);
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["parentcustomerid", "new_customerno", "numberofchildren", "preferredcontactmethodcode"]);
        assert_eq!(columns[2].label, "numberofchildren", "no display name: the logical name");
        assert_eq!(columns[3].options.get(&2).map(String::as_str), Some("Email"));
        assert_eq!(columns[0].kind, ColumnType::Lookup);
    }

    #[test]
    fn rows_make_a_mapping_with_types_labels_and_options_from_the_metadata() {
        let (attributes, choices) = metadata();
        let columns = columns(&attributes, &choices);
        let rows = [
            row("new_customerno", "detail", "customer_no", "both"),
            row("preferredcontactmethodcode", "detail", "channel", ""),
            row("parentcustomerid", "field", "company", "to"),
        ];
        let made = mapping(&rows, &columns, "pl").unwrap();
        assert_eq!(made.language, "pl");
        assert_eq!(made.entries[0].label, "Customer number");
        assert_eq!(made.entries[1].kind, ColumnType::Choice);
        assert_eq!(made.entries[1].labels.get(&1).map(String::as_str), Some("Any"));
        assert_eq!(made.entries[1].direction, Direction::ToSalesmanago);
        assert_eq!(drafts(&made)[0], rows[0]);
        let page: Vec<Value> = drafts(&made).iter().map(Draft::to_json).collect();
        assert_eq!(
            Draft::list(&Value::Array(page)).unwrap(),
            drafts(&made),
            "the page gets the rows and gives them back"
        );
        assert_eq!(drafts(&made)[1].direction, "to");
        assert_eq!(FieldMapping::parse(&made.to_text()).unwrap(), made, "what is saved reads back");
    }

    #[test]
    fn a_row_that_cannot_be_is_refused_naming_it() {
        let (attributes, choices) = metadata();
        let columns = columns(&attributes, &choices);
        let refused = |rows: &[Draft]| match mapping(rows, &columns, "en") {
            Err(MappingError::Entry { number, problem, .. }) => (number, problem),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(&[row("new_gone", "detail", "x", "to")]), (1, EntryProblem::NoSuchColumn));
        assert_eq!(refused(&[row("emailaddress1", "detail", "x", "to")]), (1, EntryProblem::NoSuchColumn), "ours");
        assert_eq!(refused(&[row("new_customerno", "colour", "x", "to")]), (1, EntryProblem::Target));
        let twice = [row("new_customerno", "detail", "code", "to"), row("numberofchildren", "detail", "code", "to")];
        assert_eq!(refused(&twice), (2, EntryProblem::Twice { first: 1 }));
        assert_eq!(refused(&[row("new_customerno", "tag", "x", "to")]), (1, EntryProblem::TypeForTarget));
        assert_eq!(refused(&[row("parentcustomerid", "detail", "x", "both")]), (1, EntryProblem::NotFromSalesmanago));
    }

    #[test]
    fn columns_go_to_the_page_and_come_back() {
        let (attributes, choices) = metadata();
        let columns = columns(&attributes, &choices);
        let back = Column::list(&Value::Array(columns.iter().map(Column::to_json).collect()));
        assert_eq!(back, columns);
        let garbled = json!([{"name": "emailaddress1", "label": "E", "type": "text"}, {"name": "x", "type": "colour"}]);
        assert!(Column::list(&garbled).is_empty(), "ours, and an unknown type");
    }

    #[test]
    fn views_are_judged_over_the_contacts_attributes() {
        let (attributes, _) = metadata();
        let wrap = |filter: &str| {
            format!(r#"<fetch><entity name="contact"><attribute name="fullname"/>{filter}</entity></fetch>"#)
        };
        let answer = json!({"value": [
            {"name": "Families", "fetchxml": wrap(r#"<filter><condition attribute="numberofchildren" operator="gt" value="1"/></filter>"#)},
            {"name": "Of ACME", "fetchxml": wrap(r#"<filter><condition attribute="parentcustomerid" operator="eq" value="{A}"/></filter>"#)},
            {"name": "Gone", "fetchxml": wrap(r#"<filter><condition attribute="new_gone" operator="null"/></filter>"#)},
            {"name": "Linked", "fetchxml": wrap(r#"<link-entity name="account" from="accountid" to="parentcustomerid"/>"#)},
            {"name": "With e-mail", "fetchxml": wrap(r#"<filter><condition attribute="emailaddress1" operator="not-null"/></filter>"#)}
        ]});
        let views = views(&answer, &attributes);
        let problems: Vec<Option<ViewError>> = views.iter().map(|v| v.problem.clone()).collect();
        assert_eq!(problems[0], None);
        assert_eq!(problems[1], Some(ViewError::Unsupported("a condition on the lookup parentcustomerid".into())));
        assert!(matches!(&problems[2], Some(ViewError::Unsupported(what)) if what.contains("new_gone")));
        assert_eq!(problems[3], Some(ViewError::Unsupported("<link-entity>".into())));
        assert_eq!(problems[4], None, "the built-in columns may be filtered on");
    }

    #[test]
    fn the_scope_becomes_the_records_columns() {
        let (attributes, choices) = metadata();
        let mut columns = columns(&attributes, &choices);
        columns.push(Column {
            name: "new_marketing".into(),
            label: "Marketing".into(),
            kind: ColumnType::YesNo,
            options: SortedMap::new(),
        });
        let fetch = r#"<fetch><entity name="contact"/></fetch>"#;
        let views = [
            ViewChoice { name: "All of them".into(), fetch: fetch.into(), problem: None },
            ViewChoice {
                name: "Linked".into(),
                fetch: fetch.into(),
                problem: Some(ViewError::Unsupported("<link-entity>".into())),
            },
        ];
        let draft = |rule: &str, column: &str, view: &str| ScopeDraft {
            rule: rule.into(),
            column: column.into(),
            view: view.into(),
            leaving: "optout".into(),
        };
        let marked = draft("marked", "new_marketing", "").record(&columns, &views).unwrap();
        assert_eq!(marked.get("new_syncscope"), Some(&Value::from(100_000_001u64)));
        assert_eq!(marked.get("new_scopecolumn"), Some(&Value::from("new_marketing")));
        assert_eq!(marked.get("new_scopefetchxml"), Some(&Value::Null));
        assert_eq!(marked.get("new_scopeleaving"), Some(&Value::from(100_000_001u64)));
        assert_eq!(
            draft("marked", "new_customerno", "").record(&columns, &views),
            Err(ScopeProblem::NoColumn),
            "not Yes/No"
        );
        let view = draft("view", "", "All of them").record(&columns, &views).unwrap();
        assert_eq!(view.get("new_scopefetchxml"), Some(&Value::from(fetch)));
        assert_eq!(view.get("new_scopecolumn"), Some(&Value::Null));
        assert_eq!(draft("view", "", "Nope").record(&columns, &views), Err(ScopeProblem::NoView));
        assert!(matches!(draft("view", "", "Linked").record(&columns, &views), Err(ScopeProblem::View(_))));
        let all = draft("all", "x", "y").record(&columns, &views).unwrap();
        assert_eq!(all.get("new_syncscope"), Some(&Value::from(100_000_000u64)));
        // What the record holds reads back as the page showed it.
        assert_eq!(ScopeDraft::from_record(&view), draft("view", "", "All of them"));
        assert_eq!(ScopeDraft::from_record(&marked), draft("marked", "new_marketing", ""));
        // The page's shape reads back as written, trimmed.
        let page = draft("view", "new_marketing", "All of them");
        assert_eq!(ScopeDraft::of(&page.to_json()), page);
        let spaced = json!({"rule": " marked ", "column": " new_marketing", "view": "", "leaving": "optout "});
        assert_eq!(ScopeDraft::of(&spaced), draft("marked", "new_marketing", ""));
        assert_eq!(
            ScopeDraft::from_record(&Map::new()),
            ScopeDraft { rule: "all".into(), leaving: "alone".into(), ..ScopeDraft::default() }
        );
    }

    #[test]
    fn the_pages_rows_are_read_strictly_enough() {
        let rows =
            Draft::list(&json!([{"column": "a", "target": "detail", "name": "b", "direction": "to"}, {}])).unwrap();
        assert_eq!(rows[1], Draft::default());
        assert!(matches!(Draft::list(&json!({"column": "a"})), Err(MappingError::Shape { .. })));
        assert!(matches!(Draft::list(&json!([{"column": 5}])), Err(MappingError::Shape { .. })));
    }
}
