//! Web API query options (`?$select=…&$filter=…`) for the contact table.

use super::contact::SELECT;
use super::schema::contact;
use crate::core::json::{self, Value};
use crate::prelude::*;

/// An OData string literal: single quotes, inner quotes doubled.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An OData string literal for `contains`, `startswith` or `endswith` that matches `value` as
/// written: Dataverse runs them as SQL Server's LIKE, where `%`, `_` and `[` are wildcards unless
/// in brackets ("Use wildcard characters in conditions for string values", Microsoft Learn).
pub fn like_literal(value: &str) -> String {
    // `[` first: the brackets the others get are not to be bracketed again.
    literal(&value.replace('[', "[[]").replace('%', "[%]").replace('_', "[_]"))
}

/// `column` holds a value.
pub fn has_value(column: &str) -> String {
    format!("{column} ne null")
}

/// `column` is one of `values` (Dataverse's `In` function; at most 100 values per query keep
/// the URL short). The values are a JSON array of strings in double quotes: Dataverse reads
/// `PropertyValues` as JSON, where an OData literal's doubled quote (`'o''neil@…'`) is "Invalid
/// JSON" ("Filter rows using OData", section "Manage single quotes", on Microsoft Learn).
pub fn one_of(column: &str, values: &[String]) -> String {
    let list = Value::Array(values.iter().map(|v| Value::from(v.as_str())).collect());
    format!("Microsoft.Dynamics.CRM.In(PropertyName={},PropertyValues={list})", literal(column))
}

/// The columns a synchronisation reads: [`SELECT`], the sync status columns (with the address
/// SALESmanago knows the contact by), and the consent columns found in the table's metadata.
pub fn contact_columns(consents: &[String]) -> Vec<String> {
    let status = [
        contact::SYNC_STATUS,
        contact::LAST_ERROR,
        contact::SYNCED_ON,
        contact::CONSENT_BASE,
        contact::SALESMANAGO_EMAIL,
        contact::MAPPED_WITH,
    ];
    let mut columns: Vec<String> =
        SELECT.iter().chain(status.iter()).map(|c| (*c).to_owned()).chain(consents.iter().cloned()).collect();
    // In name order: the Web API answers a row's columns in `$select`'s order, so each comes
    // after the one before it and a row is read without sorting ([`super::contact::ContactRow`]).
    crate::core::sorted::sort(&mut columns);
    columns.dedup();
    columns
}

/// Whether a query's `$select` names a lookup (`_<column>_value`): its reads ask for the
/// rows' names (`odata.include-annotations`).
pub fn selects_lookup(query: &str) -> bool {
    let Some((_, rest)) = query.split_once("$select=") else { return false };
    let select = rest.split('&').next().unwrap_or_default();
    select.split(',').any(|c| c.starts_with('_') && c.ends_with("_value"))
}

/// `?$select=…` of [`contact_columns`].
pub fn select(consents: &[String]) -> String {
    format!("?$select={}", contact_columns(consents).join(","))
}

/// `?$select=…` of [`contact_columns`], with a filter, in primary key order (stable paging).
pub fn contacts(consents: &[String], filter: Option<&str>) -> String {
    let mut options = select(consents);
    if let Some(filter) = filter {
        options.push_str("&$filter=");
        options.push_str(&encode(filter));
    }
    options.push_str(&format!("&$orderby={} asc", contact::ID));
    options
}

/// `?$select=contactid…` of the contacts `filter` keeps, in primary key order: where a read of
/// them all is cut into parts ([`within`]), [`crate::core::job::Read::KEYS_PAGE`] ids a page.
pub fn keys(filter: Option<&str>) -> String {
    let mut options = format!("?$select={}", contact::ID);
    if let Some(filter) = filter {
        options.push_str("&$filter=");
        options.push_str(&encode(filter));
    }
    options.push_str(&format!("&$orderby={} asc", contact::ID));
    options
}

/// `filter` (if any) and the ids after `after` up to `upto` (each bound when given), as
/// Dataverse compares ids: its order, whatever it is, is the one [`keys`] answered in, so a
/// part read with these bounds holds exactly the contacts listed between them. (Dataverse keeps
/// ids as SQL Server's `uniqueidentifier`, whose order is not the text's: the last group of
/// digits counts most. The engine never compares two ids itself.)
pub fn within(filter: Option<&str>, after: Option<&str>, upto: Option<&str>) -> Option<String> {
    let bounds = [(after, "gt"), (upto, "le")];
    let mut terms = bounds.iter().filter_map(|(id, op)| Some(format!("{} {op} {}", contact::ID, (*id)?)));
    match (filter, terms.next()) {
        (filter, None) => filter.map(str::to_owned),
        (None, Some(first)) => Some(terms.fold(first, |all, term| all + " and " + &term)),
        (Some(filter), Some(first)) => {
            Some(terms.fold(format!("({filter}) and {first}"), |all, term| all + " and " + &term))
        }
    }
}

/// Whether `text` is a GUID as the Web API writes one (`8-4-4-4-12` hexadecimal digits): the
/// only id put into a filter unquoted.
pub fn is_guid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(at, b)| match at {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Addresses per [`holders`] query: one `In` filter.
pub const HOLDERS_CHUNK: usize = 100;

/// `?$select=…&$filter=…` of the contacts whose e-mail is one of `addresses` (at most
/// [`HOLDERS_CHUNK`]; Dataverse compares text case-insensitively): their id and e-mail, for
/// [`crate::core::mapping::outbound::held_by_another`].
pub fn holders(addresses: &[String]) -> String {
    let filter = one_of(contact::EMAIL, addresses);
    format!("?$select={},{}&$filter={}", contact::ID, contact::EMAIL, encode(&filter))
}

/// Percent-encodes what a URL query value must not hold raw.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'\''
            | b'('
            | b')'
            | b','
            | b'='
            | b'['
            | b']' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// One page of a query's answer: its rows as they came (each read on its own, so one odd row
/// fails alone), and the next page's query (`?…`, from `@odata.nextLink`) if there is one.
/// Fails, saying what is wrong, on anything else.
pub fn page(text: &str) -> Result<(Vec<Value>, Option<String>), String> {
    tracked_page(text).map(|(rows, next, _)| (rows, next))
}

/// A page of a change-tracked read: its rows, the next page's query, and the delta link.
pub type TrackedPage = (Vec<Value>, Option<String>, Option<String>);

/// [`page`] of a change-tracked read (`Prefer: odata.track-changes`), with the delta link its
/// last page carries (`@odata.deltaLink`, as a query under the contacts' entity set).
pub fn tracked_page(text: &str) -> Result<TrackedPage, String> {
    let Value::Object(mut page) = json::from_str(text).map_err(|e| e.to_string())? else {
        return Err("the page is not a JSON object".into());
    };
    let Some(Value::Array(rows)) = page.remove("value") else {
        return Err("the page has no `value` list".into());
    };
    let query = |key: &str| {
        let link = page.get(key).and_then(Value::as_str)?;
        Some(link.find('?').map_or(link, |at| &link[at..]).to_owned())
    };
    Ok((rows, query("@odata.nextLink"), query("@odata.deltaLink")))
}

/// The id of a row a delta read says was deleted (`{"@odata.context": "…/$deletedEntity",
/// "id": …, "reason": "deleted"}`), if it is one.
pub fn deleted(row: &Value) -> Option<&str> {
    let context = row.get("@odata.context").and_then(Value::as_str)?;
    context.ends_with("$deletedEntity").then(|| row.get("id").and_then(Value::as_str)).flatten()
}

/// The query (under the contacts' entity set) that reads `ids` from the recycle bin, where
/// Dataverse keeps deleted rows when "Keep deleted records" is on: FetchXML with
/// `datasource="bin"`, the only way the Web API reads it.
pub fn from_bin(ids: &[String]) -> String {
    let values: String = ids.iter().map(|id| format!("<value>{}</value>", xml_text(id))).collect();
    let fetch = format!(
        "<fetch datasource=\"bin\"><entity name=\"{}\"><attribute name=\"{}\"/><attribute name=\"{}\"/><filter><condition attribute=\"{}\" operator=\"in\">{values}</condition></filter></entity></fetch>",
        contact::TABLE,
        contact::ID,
        contact::EMAIL,
        contact::ID
    );
    format!("?fetchXml={}", encode(&fetch))
}

/// `text` as XML character data.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_give_their_rows_and_the_next_query() {
        let text = r#"{"@odata.context":"x","value":[{"contactid":"a"},{"contactid":"b"}],
            "@odata.nextLink":"https://org.crm4.dynamics.com/api/data/v9.2/contacts?$select=contactid&$skiptoken=1"}"#;
        let (rows, next) = page(text).unwrap();
        assert_eq!(rows.iter().map(|r| r["contactid"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(next.as_deref(), Some("?$select=contactid&$skiptoken=1"));
        assert_eq!(page(r#"{"value":[]}"#).unwrap(), (Vec::new(), None));
        assert_eq!(page("[]").unwrap_err(), "the page is not a JSON object");
        assert_eq!(page(r#"{"value":{}}"#).unwrap_err(), "the page has no `value` list");
        assert_eq!(
            page(r#"{"value":[1]}"#).unwrap().0,
            [Value::from(1_u64)],
            "a row that is not an object is the job's to judge"
        );
        assert_eq!(page("{").unwrap_err(), "expected a key at line 1 column 2");
    }

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(literal("o'neil@example.ie"), "'o''neil@example.ie'");
    }

    #[test]
    fn like_literals_bracket_the_wildcards() {
        assert_eq!(like_literal("Jan_K 50% [x] o'neil"), "'Jan[_]K 50[%] [[]x] o''neil'");
        assert_eq!(like_literal("Anna"), "'Anna'");
    }

    #[test]
    fn one_of_uses_dataverses_in_function_with_json_strings() {
        let values = vec!["a".to_owned(), "o'neil@example.ie".to_owned(), r#"odd"one\@example.com"#.to_owned()];
        assert_eq!(
            one_of("emailaddress1", &values),
            r#"Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=["a","o'neil@example.ie","odd\"one\\@example.com"])"#
        );
    }

    #[test]
    fn holders_are_read_by_their_e_mail() {
        let query = holders(&["a@b.pl".into(), "o'neil@x.ie".into()]);
        assert_eq!(
            query,
            "?$select=contactid,emailaddress1&$filter=Microsoft.Dynamics.CRM.In(PropertyName='emailaddress1',PropertyValues=[%22a%40b.pl%22,%22o'neil%40x.ie%22])"
        );
    }

    #[test]
    fn parts_are_bounded_by_ids_after_the_filter() {
        let id = "0c03dc7d-6add-ea11-a813-000d3a21015b";
        assert_eq!(within(None, None, None), None);
        assert_eq!(within(Some("emailaddress1 ne null"), None, None).as_deref(), Some("emailaddress1 ne null"));
        assert_eq!(within(None, Some(id), None), Some(format!("contactid gt {id}")));
        assert_eq!(
            within(Some("emailaddress1 ne null"), Some(id), Some(id)),
            Some(format!("(emailaddress1 ne null) and contactid gt {id} and contactid le {id}"))
        );
        assert_eq!(keys(None), "?$select=contactid&$orderby=contactid asc");
        assert!(is_guid(id) && is_guid(&id.to_ascii_uppercase()));
        for bad in [
            "",
            "0c03dc7d-6add-ea11-a813-000d3a21015",
            "0c03dc7d 6add-ea11-a813-000d3a21015b",
            "0c03dc7d-6add-ea11-a813-000d3a21015g",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }

    #[test]
    fn contact_queries_select_the_consents_and_page_in_key_order() {
        let options = contacts(&["new_consent_marketing".into()], Some("emailaddress1 ne null"));
        let select = options.strip_prefix("?$select=").and_then(|o| o.split('&').next()).unwrap_or_default();
        let columns: Vec<&str> = select.split(',').collect();
        for column in [contact::ID, contact::EMAIL, contact::SYNC_STATUS, contact::MAPPED_WITH, "new_consent_marketing"]
        {
            assert!(columns.contains(&column), "{column} in {options}");
        }
        assert!(columns.windows(2).all(|w| w[0] < w[1]), "in name order, each once: {options}");
        assert!(options.ends_with("&$filter=emailaddress1%20ne%20null&$orderby=contactid asc"), "{options}");
    }
}
