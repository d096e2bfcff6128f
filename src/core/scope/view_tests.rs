use super::*;
use crate::core::json::json;

fn row(value: Value) -> ContactRow {
    ContactRow::from_json(value.as_object().unwrap())
}

fn view(filter: &str) -> ViewFilter {
    let fetch = format!(
        r#"<?xml version="1.0"?><!-- a system view --><fetch version="1.0" mapping="logical"><entity name="contact"><attribute name="fullname"/><order attribute="fullname" descending="false"/>{filter}</entity></fetch>"#
    );
    ViewFilter::parse(&fetch).unwrap_or_else(|e| panic!("{e:?}: {fetch}"))
}

#[test]
fn a_view_without_a_filter_takes_every_contact() {
    let all = view("");
    assert!(all.includes(&row(json!({}))));
    assert!(all.columns().is_empty());
}

#[test]
fn conditions_compare_as_dataverse_does() {
    let marked =
        view(r#"<filter type="and"><condition attribute="new_marketingcontact" operator="eq" value="1"/></filter>"#);
    assert!(marked.includes(&row(json!({"new_marketingcontact": true}))));
    assert!(!marked.includes(&row(json!({"new_marketingcontact": false}))));
    assert!(!marked.includes(&row(json!({}))), "empty is not Yes");
    assert_eq!(marked.columns(), ["new_marketingcontact"]);

    let text = view(r#"<filter><condition attribute="address1_city" operator="eq" value="Kraków"/></filter>"#);
    assert!(text.includes(&row(json!({"address1_city": "KRAKóW"}))), "ASCII case does not matter");
    assert!(!text.includes(&row(json!({"address1_city": "Krakow"}))), "accents do (a known difference)");

    let number = view(r#"<filter><condition attribute="numberofchildren" operator="ge" value="2"/></filter>"#);
    assert!(number.includes(&row(json!({"numberofchildren": 10}))), "10 ≥ 2 as numbers, not as text");
    assert!(number.includes(&row(json!({"numberofchildren": 2}))));
    assert!(!number.includes(&row(json!({"numberofchildren": 1}))));
    assert!(!number.includes(&row(json!({}))), "no value is not ≥ 2");

    let date = view(r#"<filter><condition attribute="birthdate" operator="lt" value="1990-01-01"/></filter>"#);
    assert!(date.includes(&row(json!({"birthdate": "1985-05-17"}))));
    assert!(!date.includes(&row(json!({"birthdate": "1990-01-01T10:00:00Z"}))), "a date-time by its date");

    let ne = view(r#"<filter><condition attribute="preferredcontactmethodcode" operator="ne" value="3"/></filter>"#);
    assert!(ne.includes(&row(json!({"preferredcontactmethodcode": 2}))));
    assert!(!ne.includes(&row(json!({"preferredcontactmethodcode": 3}))));
    assert!(ne.includes(&row(json!({}))), "ne takes a row without a value");
}

#[test]
fn lists_patterns_and_nulls() {
    let listed = view(
        r#"<filter><condition attribute="preferredcontactmethodcode" operator="in"><value>1</value><value>2</value></condition></filter>"#,
    );
    assert!(listed.includes(&row(json!({"preferredcontactmethodcode": 2}))));
    assert!(!listed.includes(&row(json!({"preferredcontactmethodcode": 3}))));
    let like = view(r#"<filter><condition attribute="emailaddress1" operator="like" value="%@example.com"/></filter>"#);
    assert!(like.includes(&row(json!({"emailaddress1": "Anna@Example.com"}))));
    assert!(!like.includes(&row(json!({"emailaddress1": "anna@example.org"}))));
    let one = view(r#"<filter><condition attribute="jobtitle" operator="like" value="C_O"/></filter>"#);
    assert!(one.includes(&row(json!({"jobtitle": "CEO"}))) && !one.includes(&row(json!({"jobtitle": "CFOO"}))));
    // A pattern's spaces count, as in SQL's LIKE: not trimmed as other values are.
    let spaced = view(r#"<filter><condition attribute="jobtitle" operator="like" value="%ceo "/></filter>"#);
    assert!(spaced.includes(&row(json!({"jobtitle": "Acting CEO "}))));
    assert!(!spaced.includes(&row(json!({"jobtitle": "Acting CEO"}))));
    let begins = view(r#"<filter><condition attribute="jobtitle" operator="begins-with" value="50%"/></filter>"#);
    assert!(begins.includes(&row(json!({"jobtitle": "50% partner"}))));
    assert!(!begins.includes(&row(json!({"jobtitle": "500 partners"}))), "a % in the value is literal");
    let ends = view(r#"<filter><condition attribute="jobtitle" operator="not-end-with" value="manager"/></filter>"#);
    assert!(!ends.includes(&row(json!({"jobtitle": "Sales Manager"}))));
    assert!(ends.includes(&row(json!({"jobtitle": "CEO"}))));
    let empty = view(r#"<filter><condition attribute="new_customerno" operator="null"/></filter>"#);
    assert!(empty.includes(&row(json!({"new_customerno": "  "}))), "blank is no value");
    assert!(!empty.includes(&row(json!({"new_customerno": "C-1"}))));
}

#[test]
fn filters_nest_with_and_and_or() {
    let nested = view(
        r#"<filter type="and"><condition attribute="new_marketingcontact" operator="eq" value="1"/>
             <filter type="or"><condition attribute="address1_city" operator="eq" value="Gdańsk"/>
               <condition attribute="numberofchildren" operator="gt" value="2"/></filter></filter>"#,
    );
    assert!(nested.includes(&row(json!({"new_marketingcontact": true, "address1_city": "Gdańsk"}))));
    assert!(nested.includes(&row(json!({"new_marketingcontact": true, "numberofchildren": 3}))));
    assert!(!nested.includes(&row(json!({"new_marketingcontact": true, "numberofchildren": 2}))));
    assert!(!nested.includes(&row(json!({"new_marketingcontact": false, "address1_city": "Gdańsk"}))));
    assert_eq!(nested.columns(), ["new_marketingcontact", "address1_city", "numberofchildren"]);
    // Two top-level filters are both required.
    let two = view(
        r#"<filter><condition attribute="jobtitle" operator="not-null"/></filter><filter><condition attribute="fax" operator="null"/></filter>"#,
    );
    assert!(two.includes(&row(json!({"jobtitle": "CEO"}))));
    assert!(!two.includes(&row(json!({"jobtitle": "CEO", "fax": "1"}))));
}

#[test]
fn what_is_not_evaluated_is_refused_by_name() {
    let parse = |fetch: &str| ViewFilter::parse(fetch);
    let wrap = |inner: &str| format!(r#"<fetch><entity name="contact">{inner}</entity></fetch>"#);
    assert_eq!(
        parse(&wrap(r#"<link-entity name="account" from="accountid" to="parentcustomerid"/>"#)),
        Err(ViewError::Unsupported("<link-entity>".into()))
    );
    assert_eq!(
        parse(&wrap(r#"<filter><condition attribute="createdon" operator="last-x-days" value="7"/></filter>"#)),
        Err(ViewError::Unsupported("the operator last-x-days".into()))
    );
    assert_eq!(
        parse(&wrap(r#"<filter><condition entityname="a" attribute="name" operator="eq" value="x"/></filter>"#)),
        Err(ViewError::Unsupported("a condition on a".into()))
    );
    assert_eq!(parse(r#"<fetch><entity name="account"/></fetch>"#), Err(ViewError::NotContacts("account".into())));
    for broken in [
        "",
        "<fetch>",
        "<fetch><entity name='contact'></fetch>",
        "<fetch><entity name=contact/></fetch>",
        "<query/>",
        "<fetch><entity name='contact'/><entity name='contact'/></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='x' operator='eq'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='x' operator='in'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='x' operator='null' value='1'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='x' operator='eq' value='&nbsp;'/></filter></entity></fetch>",
    ] {
        assert!(matches!(parse(broken), Err(ViewError::Malformed(_))), "{broken:?}: {:?}", parse(broken));
    }
    assert!(parse(&wrap(r#"<filter type="xor"/>"#)).is_err());
}

#[test]
fn entities_and_quotes_are_read() {
    let quoted =
        view(r#"<filter><condition attribute='jobtitle' operator='eq' value="R&amp;D &quot;lead&quot;"/></filter>"#);
    assert!(quoted.includes(&row(json!({"jobtitle": "r&d \"lead\""}))));
}

#[test]
fn decimals_compare_by_value() {
    use ::core::cmp::Ordering::*;
    for (a, b, order) in [
        ("10", "2", Greater),
        ("2.50", "2.5", Equal),
        ("-3", "2", Less),
        ("-3", "-20", Greater),
        ("0", "-0.0", Equal),
        ("007", "7", Equal),
        ("1.05", "1.5", Less),
    ] {
        assert_eq!(compare_decimal(a, b), Some(order), "{a} vs {b}");
    }
    assert_eq!(compare_decimal("1e3", "1000"), None);
    assert_eq!(compare_decimal("abc", "1"), None);
}

#[test]
fn every_operator_and_its_negation() {
    let one = |op: &str, value: &str| {
        view(&format!(r#"<filter><condition attribute="jobtitle" operator="{op}" value="{value}"/></filter>"#))
    };
    let ceo = row(json!({"jobtitle": "CEO of Sales"}));
    let none = row(json!({}));
    for (op, value, holds_ceo, holds_none) in [
        ("like", "ceo%", true, false),
        ("not-like", "ceo%", false, true),
        ("not-like", "cfo%", true, true),
        ("begins-with", "CEO", true, false),
        ("not-begin-with", "CEO", false, true),
        ("not-begin-with", "Sales", true, true),
        ("ends-with", "sales", true, false),
        ("ends-with", "CEO", false, false),
        ("not-end-with", "sales", false, true),
    ] {
        let filter = one(op, value);
        assert_eq!((filter.includes(&ceo), filter.includes(&none)), (holds_ceo, holds_none), "{op} {value}");
    }
    let listed = |op: &str| {
        view(&format!(
            r#"<filter><condition attribute="numberofchildren" operator="{op}"><value>1</value><value>3</value></condition></filter>"#
        ))
    };
    assert!(!listed("not-in").includes(&row(json!({"numberofchildren": 3}))));
    assert!(listed("not-in").includes(&row(json!({"numberofchildren": 2}))));
    assert!(listed("not-in").includes(&row(json!({}))), "not-in takes a row without a value");
    let at_most = view(r#"<filter><condition attribute="numberofchildren" operator="le" value="2"/></filter>"#);
    assert!(
        at_most.includes(&row(json!({"numberofchildren": 2})))
            && at_most.includes(&row(json!({"numberofchildren": 1})))
    );
    assert!(!at_most.includes(&row(json!({"numberofchildren": 3}))));
    let above = view(r#"<filter><condition attribute="numberofchildren" operator="gt" value="2"/></filter>"#);
    assert!(!above.includes(&row(json!({"numberofchildren": 2}))));
    let below = view(r#"<filter><condition attribute="numberofchildren" operator="lt" value="2"/></filter>"#);
    assert!(
        below.includes(&row(json!({"numberofchildren": 1}))) && !below.includes(&row(json!({"numberofchildren": 2})))
    );
}

#[test]
fn a_column_read_twice_is_read_once_and_names_are_checked() {
    let twice = view(
        r#"<filter type="or"><condition attribute="jobtitle" operator="eq" value="CEO"/><condition attribute="JobTitle" operator="eq" value="CFO"/></filter>"#,
    );
    assert_eq!(twice.columns(), ["jobtitle"]);
    assert!(twice.includes(&row(json!({"jobtitle": "cfo"}))));
    for attribute in ["", "job title", "job-title"] {
        let fetch = format!(
            r#"<fetch><entity name="contact"><filter><condition attribute="{attribute}" operator="null"/></filter></entity></fetch>"#
        );
        assert!(matches!(ViewFilter::parse(&fetch), Err(ViewError::Malformed(_))), "{attribute:?}");
    }
    assert!(matches!(ViewFilter::parse(r#"<fetch><attribute name="contact"/></fetch>"#), Err(ViewError::Malformed(_))));
}

#[test]
fn a_no_a_date_time_against_a_date_and_empty_numbers() {
    let off = view(r#"<filter><condition attribute="donotbulkemail" operator="eq" value="0"/></filter>"#);
    assert!(off.includes(&row(json!({"donotbulkemail": false}))));
    assert!(!off.includes(&row(json!({"donotbulkemail": true}))));
    let on_the_day =
        view(r#"<filter><condition attribute="lastusedincampaign" operator="eq" value="2026-03-04"/></filter>"#);
    assert!(
        on_the_day.includes(&row(json!({"lastusedincampaign": "2026-03-04T10:00:00Z"}))),
        "a date-time on that date"
    );
    assert!(!on_the_day.includes(&row(json!({"lastusedincampaign": "2026-03-05T00:00:00Z"}))));
    // Ten characters that are not a date are text: nothing is cut.
    let text = view(r#"<filter><condition attribute="jobtitle" operator="eq" value="abcd-ef-gh"/></filter>"#);
    assert!(!text.includes(&row(json!({"jobtitle": "abcd-ef-ghij"}))));
    let shaped = view(r#"<filter><condition attribute="jobtitle" operator="eq" value="2026-03-0x"/></filter>"#);
    assert!(!shaped.includes(&row(json!({"jobtitle": "2026-03-0xZZ"}))), "digits where a date has them");
    assert!(!on_the_day.includes(&row(json!({"lastusedincampaign": "soon"}))), "short text against a date");
    for (a, b) in [("", "0"), (".", "0"), ("-", "0")] {
        assert_eq!(compare_decimal(a, b), None, "{a:?}");
    }
    assert!(!is_date("2026-03-0") && !is_date("2026/03/04") && !is_date("2026-3-04xx") && is_date("2026-03-04"));
}

#[test]
fn the_xml_reader_holds_to_xml() {
    let gt = view(r#"<filter><condition attribute="jobtitle" operator="eq" value="a>b"/></filter>"#);
    assert!(gt.includes(&row(json!({"jobtitle": "A>B"}))), "a > inside a quoted value");
    for broken in [
        r#"<fetch><entity name="contact"><filter></entity></filter></fetch>"#,
        r#"<fetch><entity name="contact"><></></entity></fetch>"#,
        r#"<fetch><entity name="contact"><fi$ter/></entity></fetch>"#,
        r#"</fetch>"#,
        r#"<fetch><entity name="contact"/></fetch></fetch>"#,
    ] {
        assert!(
            matches!(ViewFilter::parse(broken), Err(ViewError::Malformed(_))),
            "{broken}: {:?}",
            ViewFilter::parse(broken)
        );
    }
}
