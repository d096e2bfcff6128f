//! Which contacts synchronise: the scope on the integration record, decided here for every path.
//!
//! - **All** (the default): every contact with an e-mail, as before.
//! - **Marked**: the contacts whose Yes/No column (named on the record) says Yes.
//! - **In a view**: the contacts a Dynamics view of contacts holds, by its filter ([`view`]),
//!   as the mapping editor read it when the scope was saved (its FetchXML is kept on the record,
//!   so every browser and the relay decide alike, with no query per contact). A view changed
//!   since takes effect when the scope is saved again.
//!
//! A contact outside the scope is neither sent nor changed by the integration: exports count it
//! apart, with the reason; a save or Send sends nothing and says why; the pulls leave it alone.
//! A contact that *leaves* the scope (it was synchronised: its status says so) is marked
//! "Outside sync scope", and, when the record says so, opted out of e-mail and SMS in
//! SALESmanago first; its data there stays. A contact entering the scope goes with its next
//! change (its flag's change is one), or with Export changes or Export all.

use crate::core::dataverse::contact::{Cell, ContactRow};
use crate::core::dataverse::schema::{contact, integration, is_logical_name, SyncStatus};
use crate::core::json::{Map, Value};
use crate::core::mapping::fields::reserved;
use crate::prelude::*;

pub mod view;

use view::{ViewError, ViewFilter};

/// Which contacts synchronise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Rule {
    /// Every contact.
    #[default]
    All,
    /// Those whose Yes/No column (logical name) says Yes.
    Marked(String),
    /// Those a view holds: its filter, as saved.
    View(ViewFilter),
}

/// What becomes of a contact that leaves the scope, in SALESmanago.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Leaving {
    /// Left as it is.
    #[default]
    LeftAlone,
    /// Opted out of e-mail and SMS.
    OptedOut,
}

/// The record's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Which contacts.
    pub rule: Rule,
    /// What leaving does.
    pub leaving: Leaving,
}

/// `new_syncscope`'s options.
pub mod option {
    /// Every contact.
    pub const ALL: i64 = 100_000_000;
    /// Those a Yes/No column marks.
    pub const MARKED: i64 = 100_000_001;
    /// Those a view holds.
    pub const VIEW: i64 = 100_000_002;
    /// `new_scopeleaving`: left alone.
    pub const LEFT_ALONE: i64 = 100_000_000;
    /// `new_scopeleaving`: opted out.
    pub const OPTED_OUT: i64 = 100_000_001;
}

/// Why the record's scope cannot be used: nothing is synchronised by a scope misread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// "Marked" without a column, or with a name that is not a column's logical name or is one
    /// the integration synchronises itself.
    Column(String),
    /// An option this version does not know (a newer solution's).
    Option(i64),
    /// "In a view" whose saved FetchXML cannot be evaluated (or none was saved).
    View(ViewError),
}

/// Where one contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Synchronised.
    In,
    /// Outside, and already marked so (or never synchronised): nothing to do.
    Outside,
    /// Outside, and was synchronised: mark it (opting it out first when the record says so).
    Leaving,
}

impl Scope {
    /// The scope the record `row` sets; every contact when it sets none.
    pub fn from_record(row: &Map) -> Result<Scope, ScopeError> {
        let option = |column: &str| row.get(column).and_then(Value::as_i64);
        let text = |column: &str| row.get(column).and_then(Value::as_str).unwrap_or_default().trim();
        let rule = match option(integration::SYNC_SCOPE) {
            None | Some(option::ALL) => Rule::All,
            Some(option::MARKED) => {
                let raw = text(integration::SCOPE_COLUMN);
                let column = raw.to_ascii_lowercase();
                if !is_logical_name(&column) || reserved(&column) {
                    return Err(ScopeError::Column(raw.to_owned()));
                }
                Rule::Marked(column)
            }
            Some(option::VIEW) => {
                let fetch = text(integration::SCOPE_FETCHXML);
                if fetch.is_empty() {
                    return Err(ScopeError::View(ViewError::Malformed("no view was saved".into())));
                }
                let filter = ViewFilter::parse(fetch).map_err(ScopeError::View)?;
                Rule::View(filter)
            }
            Some(other) => return Err(ScopeError::Option(other)),
        };
        let leaving = match option(integration::SCOPE_LEAVING) {
            None | Some(option::LEFT_ALONE) => Leaving::LeftAlone,
            Some(option::OPTED_OUT) => Leaving::OptedOut,
            Some(other) => return Err(ScopeError::Option(other)),
        };
        Ok(Scope { rule, leaving })
    }

    /// The contact columns it reads.
    pub fn columns(&self) -> Vec<String> {
        match &self.rule {
            Rule::All => Vec::new(),
            Rule::Marked(column) => vec![column.clone()],
            Rule::View(filter) => filter.columns(),
        }
    }

    /// Whether `row` is in the scope. A flag that is empty (null) is not a Yes.
    pub fn includes(&self, row: &ContactRow) -> bool {
        match &self.rule {
            Rule::All => true,
            Rule::Marked(column) => matches!(row.cell(column), Some(Cell::Other(Value::Bool(true)))),
            Rule::View(filter) => filter.includes(row),
        }
    }

    /// Where `row` (read with its status) stands.
    pub fn standing(&self, row: &ContactRow) -> Standing {
        if self.includes(row) {
            return Standing::In;
        }
        let status = match row.cell(contact::SYNC_STATUS) {
            Some(Cell::Other(value)) => value.as_i64(),
            _ => None,
        };
        match status {
            None => Standing::Outside,
            Some(s) if s == i64::from(SyncStatus::OutOfScope.value()) => Standing::Outside,
            Some(_) => Standing::Leaving,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    fn record(value: Value) -> Map {
        value.as_object().unwrap().clone()
    }

    fn row(value: Value) -> ContactRow {
        ContactRow::from_json(value.as_object().unwrap())
    }

    #[test]
    fn no_scope_is_every_contact() {
        let scope = Scope::from_record(&Map::new()).unwrap();
        assert_eq!(scope, Scope::default());
        assert!(scope.includes(&row(json!({}))));
        assert!(scope.columns().is_empty());
    }

    #[test]
    fn a_marked_scope_takes_the_yes_of_its_column() {
        let r = record(
            json!({"new_syncscope": 100000001, "new_scopecolumn": " New_Marketing ", "new_scopeleaving": 100000001}),
        );
        let scope = Scope::from_record(&r).unwrap();
        assert_eq!(scope.rule, Rule::Marked("new_marketing".into()));
        assert_eq!(scope.leaving, Leaving::OptedOut);
        assert_eq!(scope.columns(), ["new_marketing"]);
        assert!(scope.includes(&row(json!({"new_marketing": true}))));
        assert!(!scope.includes(&row(json!({"new_marketing": false}))));
        assert!(!scope.includes(&row(json!({"new_marketing": null}))), "empty is not a Yes");
        assert!(!scope.includes(&row(json!({}))));
    }

    #[test]
    fn a_view_scope_takes_what_its_saved_filter_holds() {
        let fetch = r#"<fetch><entity name="contact"><filter><condition attribute="numberofchildren" operator="gt" value="1"/></filter></entity></fetch>"#;
        let mut r = record(json!({"new_syncscope": 100000002, "new_scopeview": " Families "}));
        r.insert("new_scopefetchxml".into(), fetch.into());
        let scope = Scope::from_record(&r).unwrap();
        assert!(matches!(&scope.rule, Rule::View(_)));
        assert_eq!(scope.columns(), ["numberofchildren"]);
        assert!(scope.includes(&row(json!({"numberofchildren": 2}))));
        assert!(!scope.includes(&row(json!({"numberofchildren": 1}))));
        let none = record(json!({"new_syncscope": 100000002}));
        assert!(matches!(Scope::from_record(&none), Err(ScopeError::View(ViewError::Malformed(_)))));
        r.insert("new_scopefetchxml".into(), "<fetch><entity name='account'/></fetch>".into());
        assert_eq!(Scope::from_record(&r), Err(ScopeError::View(ViewError::NotContacts("account".into()))));
    }

    #[test]
    fn leaving_is_told_from_the_status() {
        let scope = Scope { rule: Rule::Marked("new_m".into()), leaving: Leaving::LeftAlone };
        let synced = i64::from(SyncStatus::Synced.value());
        let outside = i64::from(SyncStatus::OutOfScope.value());
        assert_eq!(scope.standing(&row(json!({"new_m": true, "new_salesmanagosyncstatus": outside}))), Standing::In);
        assert_eq!(scope.standing(&row(json!({"new_m": false}))), Standing::Outside, "never synchronised");
        assert_eq!(
            scope.standing(&row(json!({"new_m": false, "new_salesmanagosyncstatus": synced}))),
            Standing::Leaving
        );
        let failed = i64::from(SyncStatus::Failed.value());
        assert_eq!(
            scope.standing(&row(json!({"new_m": null, "new_salesmanagosyncstatus": failed}))),
            Standing::Leaving
        );
        assert_eq!(
            scope.standing(&row(json!({"new_m": false, "new_salesmanagosyncstatus": outside}))),
            Standing::Outside
        );
    }

    #[test]
    fn a_scope_that_cannot_be_read_is_refused() {
        let marked = |column: Value| {
            let mut r = record(json!({"new_syncscope": 100000001}));
            r.insert("new_scopecolumn".into(), column);
            r
        };
        assert_eq!(Scope::from_record(&marked(Value::Null)), Err(ScopeError::Column(String::new())));
        assert_eq!(Scope::from_record(&marked("my column".into())), Err(ScopeError::Column("my column".into())));
        assert_eq!(
            Scope::from_record(&marked("donotbulkemail".into())),
            Err(ScopeError::Column("donotbulkemail".into()))
        );
        assert_eq!(
            Scope::from_record(&record(json!({"new_syncscope": 100000009}))),
            Err(ScopeError::Option(100000009))
        );
        assert_eq!(Scope::from_record(&record(json!({"new_scopeleaving": 7}))), Err(ScopeError::Option(7)));
    }
}
