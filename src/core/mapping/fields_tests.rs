use super::*;
use crate::core::json::json;

fn mapping(entries: Value) -> Result<FieldMapping, MappingError> {
    FieldMapping::parse(&format!(r#"{{"version": 1, "language": "en", "entries": {entries}}}"#))
}

fn problem(entries: Value) -> EntryProblem {
    match mapping(entries) {
        Err(MappingError::Entry { problem, .. }) => problem,
        other => panic!("expected an entry's problem, got {other:?}"),
    }
}

fn row(value: Value) -> ContactRow {
    ContactRow::from_json(value.as_object().unwrap())
}

fn sent(mapping: &FieldMapping, value: Value) -> (UpsertDetails, Vec<Problem>) {
    let mut details = UpsertDetails::default();
    let problems = mapping.to_salesmanago(&row(value), &mut details);
    (details, problems)
}

fn card(value: Value) -> SmContact {
    SmContact::from_json(&value).unwrap()
}

fn full() -> FieldMapping {
    mapping(json!([
        {"column": "new_customerno", "label": "Customer no.", "type": "text", "detail": "customer_no", "direction": "both"},
        {"column": "numberofemployees", "type": "number", "detail": "employees", "direction": "both"},
        {"column": "lastusedincampaign", "type": "date", "detail": "last campaign", "direction": "both"},
        {"column": "new_vip", "type": "yesno", "tag": "vip client", "direction": "both"},
        {"column": "industrycode", "type": "choice", "detail": "industry", "direction": "both",
         "labels": {"1": "Accounting", "2": "Agriculture"}},
        {"column": "preferredcontactmethodcode", "type": "choice", "tag": "channel", "direction": "both",
         "labels": {"1": "Any", "2": "E-mail"}},
        {"column": "parentcustomerid", "type": "lookup", "field": "company"},
        {"column": "address1_stateorprovince", "type": "text", "field": "province"},
        {"column": "new_active", "type": "yesno", "detail": "active"}
    ]))
    .unwrap()
}

#[test]
fn none_is_none_and_a_mapping_reads_back_as_written() {
    assert_eq!(FieldMapping::parse("  ").unwrap(), FieldMapping::NONE);
    assert_eq!(mapping(json!([])).unwrap().entries.len(), 0);
    let full = full();
    assert_eq!(full.entries.len(), 9);
    assert_eq!(FieldMapping::parse(&full.to_text()).unwrap(), full);
    // The record holds its text, or nothing for no entries.
    assert!(!full.is_empty() && FieldMapping::NONE.is_empty());
    assert_eq!(full.stored().as_str().map(FieldMapping::parse), Some(Ok(full.clone())));
    assert_eq!(mapping(json!([])).unwrap().stored(), Value::Null);
    assert_eq!(full.entries[3].target, Target::Tag("VIP_CLIENT".into()), "a tag as the vendor's SDK sends it");
    assert_eq!(full.entries[2].target, Target::Detail("last campaign".into()), "detail names keep their spaces");
    assert_eq!(full.entries[6].direction, Direction::ToSalesmanago, "to SALESmanago unless said");
}

#[test]
fn the_columns_read_name_a_lookup_by_its_value_column() {
    let columns: Vec<String> = full().columns().collect();
    assert!(columns.contains(&"_parentcustomerid_value".to_owned()), "{columns:?}");
    assert!(columns.contains(&"new_customerno".to_owned()));
    assert_eq!(FORMATTED.to_ascii_lowercase(), FORMATTED_KEY, "one annotation, as written and as a row's key");
}

#[test]
fn what_is_not_a_mapping_is_refused_and_says_where() {
    assert!(matches!(FieldMapping::parse("{not json"), Err(MappingError::NotJson { .. })));
    assert!(matches!(FieldMapping::parse("[]"), Err(MappingError::Shape { .. })));
    assert!(matches!(FieldMapping::parse(r#"{"entries": []}"#), Err(MappingError::Shape { .. })));
    assert_eq!(
        FieldMapping::parse(r#"{"version": 2, "entries": []}"#),
        Err(MappingError::Version { found: "2".into() })
    );
    assert!(matches!(FieldMapping::parse(r#"{"version": 1, "entries": {}}"#), Err(MappingError::Shape { .. })));
    assert!(matches!(FieldMapping::parse(r#"{"version": 1, "extra": 1}"#), Err(MappingError::Shape { .. })));
    // The labels' language is a code (`pl`, `en-us`), not any text.
    let language = |code: &str| FieldMapping::parse(&format!(r#"{{"version": 1, "language": "{code}"}}"#));
    assert_eq!(language(" PL-pl ").map(|m| m.language), Ok("pl-pl".into()));
    assert!(matches!(language("Polish, as in Poland"), Err(MappingError::Shape { .. })));
    assert!(matches!(FieldMapping::parse(r#"{"version": 1, "language": 1045}"#), Err(MappingError::Shape { .. })));
    let many: Vec<Value> = (0..=MAX_ENTRIES)
        .map(|i| json!({"column": format!("new_c{i}"), "type": "text", "detail": format!("d{i}")}))
        .collect();
    assert_eq!(mapping(Value::Array(many.clone())), Err(MappingError::TooMany { count: MAX_ENTRIES + 1 }));
    assert_eq!(
        mapping(Value::Array(many[1..].to_vec())).map(|m| m.entries.len()),
        Ok(MAX_ENTRIES),
        "as many as allowed"
    );
    // The entry's place and column are named.
    assert_eq!(
        mapping(
            json!([{"column": "new_a", "type": "text", "detail": "a"}, {"column": "new_b", "type": "txt", "detail": "b"}])
        ),
        Err(MappingError::Entry { number: 2, column: "new_b".into(), problem: EntryProblem::Type("txt".into()) })
    );
}

#[test]
fn each_wrong_entry_has_its_reason() {
    let text = |column: &str| json!([{"column": column, "type": "text", "detail": "d"}]);
    assert_eq!(problem(text("New_Bad")), EntryProblem::Column);
    assert_eq!(problem(text("")), EntryProblem::Column);
    assert_eq!(problem(text("9abc")), EntryProblem::Column);
    for reserved in ["emailaddress1", "fullname", "donotbulkemail", "new_consent_marketing", "new_salesmanagoid"] {
        assert_eq!(problem(text(reserved)), EntryProblem::Reserved, "{reserved}");
    }
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "detail": "d", "colour": 1}])),
        EntryProblem::UnknownKey("colour".into())
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "text"}])), EntryProblem::Target);
    assert_eq!(problem(json!([{"column": "new_a", "type": "text", "detail": "d", "tag": "T"}])), EntryProblem::Target);
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "field": "email"}])),
        EntryProblem::Field("email".into())
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "text", "detail": "  "}])), EntryProblem::Name("".into()));
    let long = "x".repeat(MAX_NAME + 1);
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "detail": long.clone()}])),
        EntryProblem::Name(long.clone())
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "yesno", "tag": " "}])), EntryProblem::Name("".into()));
    assert_eq!(problem(json!([{"column": "new_a", "type": "yesno", "tag": long.clone()}])), EntryProblem::Name(long));
    let longest = json!([{"column": "new_a", "type": "yesno", "tag": "x".repeat(MAX_NAME)}]);
    assert_eq!(mapping(longest).map(|m| m.entries[0].target.clone()), Ok(Target::Tag("X".repeat(MAX_NAME))));
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "yesno", "tag": "dynamics365"}])),
        EntryProblem::Name("dynamics365".into())
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "text", "detail": 5}])), EntryProblem::Name("5".into()));
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "detail": "d", "direction": "up"}])),
        EntryProblem::Direction("up".into())
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "text", "tag": "T"}])), EntryProblem::TypeForTarget);
    assert_eq!(problem(json!([{"column": "new_a", "type": "date", "field": "company"}])), EntryProblem::TypeForTarget);
    assert_eq!(
        problem(json!([{"column": "parentcustomerid", "type": "lookup", "detail": "d", "direction": "both"}])),
        EntryProblem::NotFromSalesmanago
    );
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "field": "province", "direction": "from"}])),
        EntryProblem::NotFromSalesmanago
    );
    assert_eq!(problem(json!([{"column": "new_a", "type": "choice", "detail": "d"}])), EntryProblem::Labels);
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "choice", "detail": "d", "labels": {}}])),
        EntryProblem::Labels
    );
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "choice", "detail": "d", "labels": {"x": "A"}}])),
        EntryProblem::Labels
    );
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "choice", "detail": "d", "labels": {"1": " "}}])),
        EntryProblem::Labels
    );
    assert_eq!(
        problem(json!([{"column": "new_a", "type": "text", "detail": "d", "labels": {"1": "A"}}])),
        EntryProblem::UnknownKey("labels".into())
    );
}

#[test]
fn a_target_mapped_twice_is_refused_naming_the_first() {
    let twice = json!([
        {"column": "new_a", "type": "text", "detail": "code"},
        {"column": "new_b", "type": "text", "detail": "other"},
        {"column": "new_c", "type": "text", "detail": " code "}
    ]);
    assert_eq!(problem(twice), EntryProblem::Twice { first: 1 });
    let tags =
        json!([{"column": "new_a", "type": "yesno", "tag": "vip"}, {"column": "new_b", "type": "yesno", "tag": "VIP"}]);
    assert_eq!(problem(tags), EntryProblem::Twice { first: 1 });
    let fields = json!([{"column": "new_a", "type": "text", "field": "company"}, {"column": "new_b", "type": "text", "field": "company"}]);
    assert_eq!(problem(fields), EntryProblem::Twice { first: 1 });
    // One column to two places is fine.
    assert!(mapping(json!([{"column": "new_a", "type": "yesno", "tag": "vip"}, {"column": "new_a", "type": "yesno", "detail": "vip"}])).is_ok());
}

#[test]
fn each_type_goes_as_salesmanago_takes_it() {
    let (details, problems) = sent(
        &full(),
        json!({
            "new_customerno": "  C-1  7 ", "numberofemployees": 1200.50, "lastusedincampaign": "2026-03-04T23:30:00Z",
            "new_vip": true, "industrycode": 2, "preferredcontactmethodcode": 2,
            "_parentcustomerid_value": "3f0c…", "_parentcustomerid_value@OData.Community.Display.V1.FormattedValue": "ACME Sp. z o.o.",
            "address1_stateorprovince": "Śląskie", "new_active": false
        }),
    );
    assert_eq!(problems, []);
    let p = &details.properties;
    assert_eq!(
        p.get("customer_no").map(String::as_str),
        Some("C-1 7"),
        "text is normalised as the built-in fields are"
    );
    assert_eq!(p.get("employees").map(String::as_str), Some("1200.5"));
    assert_eq!(p.get("last campaign").map(String::as_str), Some("2026-03-04"), "the UTC date");
    assert_eq!(p.get("industry").map(String::as_str), Some("Agriculture"), "a choice as its label");
    assert_eq!(p.get("active").map(String::as_str), Some("false"), "a Yes/No detail as text");
    assert_eq!(details.contact.company.as_deref(), Some("ACME Sp. z o.o."), "a lookup as its name");
    assert_eq!(details.province.as_deref(), Some("Śląskie"));
    assert_eq!(details.tags, ["VIP_CLIENT", "CHANNEL_E-MAIL"]);
    assert_eq!(details.remove_tags, ["CHANNEL_ANY"], "the other labels' tags go");
}

#[test]
fn a_no_removes_its_tag_and_null_sends_nothing() {
    let (details, _) = sent(&full(), json!({"new_vip": false}));
    assert_eq!(details.remove_tags, ["VIP_CLIENT"]);
    assert!(details.tags.is_empty());
    let (details, problems) = sent(&full(), json!({"new_vip": null, "new_customerno": "", "industrycode": null}));
    assert_eq!(details, UpsertDetails::default(), "SALESmanago's value stays");
    assert_eq!(problems, []);
    // A removal does not undo the built-in tag, nor a tag another entry adds.
    let mut details = UpsertDetails { tags: vec!["DYNAMICS365".into()], ..Default::default() };
    full().to_salesmanago(&row(json!({"new_vip": true})), &mut details);
    assert_eq!(details.tags, ["DYNAMICS365", "VIP_CLIENT"]);
}

#[test]
fn a_value_that_cannot_go_is_a_problem_on_that_contact() {
    let (details, problems) = sent(
        &full(),
        json!({"numberofemployees": "many", "lastusedincampaign": "yesterday", "industrycode": 7, "new_vip": "yes",
               "new_customerno": "x".repeat(300)}),
    );
    assert_eq!(
        problems,
        [
            Problem::Truncated { column: "Customer no.".into() },
            Problem::NotItsType { column: "numberofemployees".into() },
            Problem::NotItsType { column: "lastusedincampaign".into() },
            Problem::NotItsType { column: "new_vip".into() },
            Problem::NoLabel { column: "industrycode".into(), value: "7".into() },
        ]
    );
    assert_eq!(details.properties.get("customer_no").map(|v| v.chars().count()), Some(MAX_TEXT), "cut, it still goes");
    assert_eq!(details.properties.len(), 1);
    // A number goes as Dataverse wrote it.
    let written = json::from_str(r#"{"numberofemployees": 1200.50}"#).unwrap();
    let mut details = UpsertDetails::default();
    full().to_salesmanago(&ContactRow::from_json(written.as_object().unwrap()), &mut details);
    assert_eq!(details.properties.get("employees").map(String::as_str), Some("1200.50"));
    // An Int64 read as text (IEEE754Compatible) is a number.
    let (details, problems) = sent(&full(), json!({"numberofemployees": "9007199254740993"}));
    assert_eq!((details.properties.get("employees").map(String::as_str), problems), (Some("9007199254740993"), vec![]));
}

#[test]
fn from_salesmanago_only_what_differs_and_only_what_it_says() {
    let sm = card(json!({
        "email": "a@b.pl", "company": "Other Co",
        "properties": [{"name": "customer_no", "value": "C-2"}, {"name": "employees", "value": "1200.5"},
                       {"name": "last campaign", "value": "20260401"}, {"name": "industry", "value": "accounting"},
                       {"name": "active", "value": "true"}],
        "contactTags": [{"tag": "VIP_CLIENT"}, {"tag": "CHANNEL_ANY"}]
    }));
    let current = row(json!({"new_customerno": "C-1", "numberofemployees": 1200.50, "new_vip": false,
                             "industrycode": 2, "preferredcontactmethodcode": 2, "new_active": false}));
    let mut columns = SortedMap::new();
    full().from_salesmanago(&current, &sm, &mut columns);
    let expected: SortedMap<String, Value> = [
        ("new_customerno", json!("C-2")),
        ("lastusedincampaign", json!("2026-04-01")),
        ("new_vip", json!(true)),
        ("industrycode", json!(1)),
        ("preferredcontactmethodcode", json!(1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // 1200.5 is 1200.50: unchanged. The company is a lookup (to SALESmanago only); `active` goes
    // only to SALESmanago.
    assert_eq!(columns, expected);
}

#[test]
fn what_dynamics_holds_already_in_its_own_form_is_not_written_again() {
    let sm = card(json!({
        "email": "a@b.pl",
        "properties": [{"name": "customer_no", "value": "C-2"}, {"name": "employees", "value": "1200.5"},
                       {"name": "last campaign", "value": "20260401"}]
    }));
    let written = |current: &str| {
        let mut columns = SortedMap::new();
        full().from_salesmanago(&row(crate::core::json::from_str(current).unwrap()), &sm, &mut columns);
        columns.into_iter().map(|(column, _)| column).collect::<Vec<_>>()
    };
    // As the Web API writes them: text with the spaces a user typed, a decimal with its
    // scale, a date with its time.
    let held = r#"{"new_customerno": "C-2  ", "numberofemployees": 1200.50,
                   "lastusedincampaign": "2026-04-01T00:00:00Z"}"#;
    assert_eq!(written(held), Vec::<String>::new());
    let as_text = r#"{"new_customerno": "C-2", "numberofemployees": "1200.5", "lastusedincampaign": "2026-04-01"}"#;
    assert_eq!(written(as_text), Vec::<String>::new(), "a number the row holds as text");
    let other = r#"{"new_customerno": "C-3", "numberofemployees": 1200.51, "lastusedincampaign": "2026-04-02"}"#;
    assert_eq!(written(other), ["lastusedincampaign", "new_customerno", "numberofemployees"]);
}

#[test]
fn a_card_that_does_not_list_tags_or_details_changes_nothing() {
    let sm = card(json!({"email": "a@b.pl", "properties": [{"name": "industry", "value": "Mining"}]}));
    let mut columns = SortedMap::new();
    full().from_salesmanago(&row(json!({"new_vip": true, "industrycode": 1})), &sm, &mut columns);
    assert!(columns.is_empty(), "no tags listed, an unknown label, no details: {columns:?}");
    // Listed tags without ours: a No.
    let sm = card(json!({"email": "a@b.pl", "tags": []}));
    full().from_salesmanago(&row(json!({"new_vip": true})), &sm, &mut columns);
    assert_eq!(columns.get("new_vip"), Some(&json!(false)));
}

#[test]
fn company_text_comes_back_when_both_ways() {
    let m =
        mapping(json!([{"column": "new_company", "type": "text", "field": "company", "direction": "both"}])).unwrap();
    let mut columns = SortedMap::new();
    m.from_salesmanago(&row(json!({"new_company": "ACME"})), &card(json!({"company": "ACME  "})), &mut columns);
    assert!(columns.is_empty());
    m.from_salesmanago(&row(json!({})), &card(json!({"company": "ACME"})), &mut columns);
    assert_eq!(columns.get("new_company"), Some(&json!("ACME")));
}

#[test]
fn metadata_types_group_as_they_travel() {
    // Every `AttributeType` of Dataverse's metadata the editor offers, and some it does not.
    let types = [
        ("String", Some(ColumnType::Text)),
        ("Memo", Some(ColumnType::Text)),
        ("Integer", Some(ColumnType::Number)),
        ("BigInt", Some(ColumnType::Number)),
        ("Decimal", Some(ColumnType::Number)),
        ("Double", Some(ColumnType::Number)),
        ("Money", Some(ColumnType::Number)),
        ("DateTime", Some(ColumnType::Date)),
        ("Boolean", Some(ColumnType::YesNo)),
        ("Picklist", Some(ColumnType::Choice)),
        ("State", Some(ColumnType::Choice)),
        ("Status", Some(ColumnType::Choice)),
        ("Lookup", Some(ColumnType::Lookup)),
        ("Customer", Some(ColumnType::Lookup)),
        ("Owner", Some(ColumnType::Lookup)),
        ("MultiSelectPicklist", None),
        ("Virtual", None),
        ("Image", None),
        ("PartyList", None),
    ];
    for (attribute_type, kind) in types {
        assert_eq!(ColumnType::of_attribute(attribute_type), kind, "{attribute_type}");
    }
}

#[test]
fn numbers_compare_as_numbers() {
    for (a, b) in [("12", "12.00"), ("+012", "12"), ("-0.0", "0"), ("0.50", ".5"), ("-3.10", "-3.1")] {
        assert!(same_number(a, b), "{a} = {b}");
    }
    for (a, b) in [("12", "12.01"), ("-1", "1"), ("120", "12"), ("1e3", "1000")] {
        assert!(!same_number(a, b), "{a} ≠ {b}");
    }
}

#[test]
fn the_fingerprint_changes_with_what_is_sent_only() {
    let base = json!([
        {"column": "new_customerno", "label": "Customer no.", "type": "text", "detail": "customer_no", "direction": "both"},
        {"column": "industrycode", "type": "choice", "detail": "industry", "labels": {"1": "Accounting"}},
        {"column": "new_vip", "type": "yesno", "tag": "vip", "direction": "from"}
    ]);
    let print = |entries: Value| mapping(entries).unwrap().fingerprint();
    let first = print(base.clone()).expect("entries that send have a fingerprint");
    assert_eq!(first.len(), 16);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    // The same sent: another label, another order, `to` for `both`, an entry that only comes back.
    let same = json!([
        {"column": "industrycode", "label": "Branża", "type": "choice", "detail": "industry", "labels": {"1": "Accounting"}},
        {"column": "new_customerno", "type": "text", "detail": "customer_no", "direction": "to"},
        {"column": "new_vip", "type": "yesno", "tag": "vip", "direction": "from"},
        {"column": "new_segment", "type": "text", "detail": "segment", "direction": "from"}
    ]);
    assert_eq!(print(same).as_deref(), Some(first.as_str()));
    // Something else sent: another target, another choice label, one entry more or less.
    let others = [
        json!([{"column": "new_customerno", "type": "text", "detail": "customer no", "direction": "both"},
               {"column": "industrycode", "type": "choice", "detail": "industry", "labels": {"1": "Accounting"}}]),
        json!([{"column": "new_customerno", "type": "text", "detail": "customer_no", "direction": "both"},
               {"column": "industrycode", "type": "choice", "detail": "industry", "labels": {"1": "Księgowość"}}]),
        json!([{"column": "new_customerno", "type": "text", "detail": "customer_no", "direction": "both"}]),
        json!([{"column": "new_customerno", "type": "text", "detail": "customer_no", "direction": "both"},
               {"column": "industrycode", "type": "choice", "detail": "industry", "labels": {"1": "Accounting"}},
               {"column": "new_vip", "type": "yesno", "tag": "vip", "direction": "both"}]),
    ];
    for other in others {
        assert_ne!(print(other.clone()).as_deref(), Some(first.as_str()), "{other}");
    }
    // Nothing sent by the mapping: the built-in mapping's (none), as contacts sent before one.
    assert_eq!(FieldMapping::NONE.fingerprint(), None);
    assert_eq!(print(json!([{"column": "new_vip", "type": "yesno", "tag": "vip", "direction": "from"}])), None);
}

#[test]
fn only_details_and_tags_from_salesmanago_need_its_full_cards() {
    let reads = |entries: Value| mapping(entries).unwrap().reads_cards();
    assert!(reads(json!([{"column": "new_a", "type": "text", "detail": "a", "direction": "both"}])));
    assert!(reads(json!([{"column": "new_v", "type": "yesno", "tag": "vip", "direction": "from"}])));
    assert!(!reads(json!([{"column": "new_a", "type": "text", "detail": "a"}])), "sent only");
    assert!(!reads(json!([{"column": "new_v", "type": "yesno", "tag": "vip", "direction": "to"}])), "sent only");
    assert!(
        !reads(json!([{"column": "new_company", "type": "text", "field": "company", "direction": "both"}])),
        "a standard field is on every card"
    );
    assert!(!FieldMapping::NONE.reads_cards());
    assert!(full().reads_cards());
}

#[test]
fn a_number_from_salesmanago_is_a_json_number_and_nothing_else() {
    for text in ["12", " -3.5 ", "1e3", "0"] {
        assert!(matches!(number(text), Some(Value::Number(_))), "{text}");
    }
    for text in ["", " ", "12abc", "0x1F", "1,5", "NaN", "+5", "\"5\"", "[5]", "5 6", "1.", "Infinity"] {
        assert_eq!(number(text), None, "{text}");
    }
}
