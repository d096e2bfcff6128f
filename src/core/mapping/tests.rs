//! The mapping both ways, on ordinary and on bad or awkward contacts.

use crate::core::json::{json, ToJson, Value};

use super::fields::FieldMapping;
use super::normalize::EmailProblem;
use super::outbound::{held_by_another, rename_from, rename_lookup, unrenamed};
use super::*;
use crate::core::dataverse::contact::ContactRow;
use crate::core::salesmanago::contact::{SmConsent, SmContact};

/// 2023-11-14T22:13:20Z.
const NOW: u64 = 1_700_000_000_000;

fn row(value: Value) -> ContactRow {
    ContactRow::from_json(value.as_object().expect("an object"))
}

fn send(value: Value) -> Result<Outbound, Skip> {
    to_salesmanago(&row(value), &OutboundOptions { now_ms: NOW, ..OutboundOptions::default() }, &FieldMapping::NONE)
}

fn sent(value: Value) -> (Value, Vec<Warning>) {
    let out = send(value).expect("a valid contact");
    (out.details.to_json(), out.warnings)
}

#[test]
fn a_full_contact_maps_field_by_field() {
    let (body, warnings) = sent(json!({
        "contactid": "{6E1B3A1C-0000-4000-8000-00000000ABCD}", "fullname": "Jan Kowalski",
        "firstname": "Jan", "lastname": "Kowalski", "emailaddress1": "Jan.Kowalski@Example.PL",
        "mobilephone": "+48 600 100 200", "telephone1": "22 555 01 01", "fax": "22 555 01 02",
        "address1_line1": "ul. Długa 5", "address1_line2": "lok. 3", "address1_line3": null,
        "address1_city": "Bielsko-Biała", "address1_postalcode": "43-300", "address1_country": "PL",
        "birthdate": "1984-08-04", "donotbulkemail": true, "new_donotsms": false,
        "new_consent_marketing": true, "new_consent_profiling": false, "new_consent_other": null,
        // Marketing was agreed withdrawn last time; Dynamics granted it since.
        "new_salesmanagoconsentbase": "{\"MARKETING\":false}"}));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        body,
        json!({
            "contact": {
                "email": "jan.kowalski@example.pl", "name": "Jan Kowalski", "phone": "+48 600 100 200",
                "fax": "22 555 01 02", "externalId": "6e1b3a1c-0000-4000-8000-00000000abcd",
                "address": {"streetAddress": "ul. Długa 5, lok. 3", "zipCode": "43-300",
                            "city": "Bielsko-Biała", "country": "PL"}},
            "birthday": "19840804",
            "forceOptOut": true,
            "tags": ["DYNAMICS365"],
            "consentDetails": [
                {"consentName": "MARKETING", "consentAccept": true, "optOut": false, "agreementDate": NOW},
                {"consentName": "PROFILING", "consentAccept": false, "optOut": true, "agreementDate": NOW}]})
    );
}

#[test]
fn opt_ins_are_forced_only_when_deliberate() {
    let contact = row(json!({"emailaddress1": "a@b.pl", "donotbulkemail": false, "new_donotsms": false}));
    let plain =
        to_salesmanago(&contact, &OutboundOptions { now_ms: NOW, ..Default::default() }, &FieldMapping::NONE).unwrap();
    assert!(!plain.details.force_opt_in && !plain.details.force_phone_opt_in && !plain.details.force_opt_out);
    assert_eq!(plain.base, None, "nothing agreed on the default allow");
    let changed = vec!["donotbulkemail".to_owned(), "new_donotsms".to_owned()];
    let deliberate = OutboundOptions { now_ms: NOW, changed, ..Default::default() };
    let forced = to_salesmanago(&contact, &deliberate, &FieldMapping::NONE).unwrap();
    assert!(forced.details.force_opt_in && forced.details.force_phone_opt_in);
    assert_eq!(forced.base.as_deref(), Some(r#"{"newsletter":true,"sms":true}"#));
    let opted_out = row(json!({"emailaddress1": "a@b.pl", "donotbulkemail": true, "new_donotsms": true}));
    let out = to_salesmanago(&opted_out, &OutboundOptions { now_ms: NOW, ..Default::default() }, &FieldMapping::NONE)
        .unwrap()
        .details;
    assert!(out.force_opt_out && out.force_phone_opt_out && !out.force_opt_in && !out.force_phone_opt_in);
    let unknown = row(json!({"emailaddress1": "a@b.pl"}));
    assert!(
        !to_salesmanago(&unknown, &deliberate, &FieldMapping::NONE).unwrap().details.force_opt_in,
        "null is not an opt-in"
    );
}

#[test]
fn a_send_that_read_salesmanago_lets_its_withdrawal_win() {
    // Given in Dynamics with no agreement yet; SALESmanago, read just before, holds it withdrawn.
    let row = row(json!({"emailaddress1": "a@b.pl", "new_consent_marketing": true, "donotbulkemail": true}));
    let mut held = sm(
        json!({"optedOut": false, "consents": [{"consentName": "MARKETING", "consentAccept": false, "optOut": true}]}),
    );
    held.consents_listed = true;
    let options = OutboundOptions { now_ms: NOW, salesmanago: Held::Found(Box::new(held)), ..Default::default() };
    let out = to_salesmanago(&row, &options, &FieldMapping::NONE).unwrap();
    assert!(out.details.consent_details.is_empty(), "the withdrawal stays: {:?}", out.details.consent_details);
    assert!(out.details.force_opt_out, "Dynamics' opt-out wins over SALESmanago's allow");
    // Not in SALESmanago at all: Dynamics' consent is the only one, and goes.
    let options = OutboundOptions { now_ms: NOW, salesmanago: Held::Missing, ..Default::default() };
    assert!(to_salesmanago(&row, &options, &FieldMapping::NONE).unwrap().details.consent_details[0].consent_accept);
}

#[test]
fn an_export_sends_only_what_dynamics_changed_since_the_last_synchronisation() {
    // Agreed last time: newsletter allowed, marketing given. Nothing changed in Dynamics since:
    // nothing travels, whatever SALESmanago did meanwhile (a withdrawal there stays).
    let agreed = r#"{"newsletter":true,"sms":true,"MARKETING":true}"#;
    let same = send(json!({"emailaddress1": "a@b.pl", "donotbulkemail": false, "new_donotsms": false,
        "new_consent_marketing": true, "new_salesmanagoconsentbase": agreed}))
    .unwrap();
    assert!(same.details.consent_details.is_empty(), "{:?}", same.details.consent_details);
    assert!(!same.details.force_opt_in && !same.details.force_opt_out);
    assert_eq!(same.base, None);
    // Without a base, a grant is not sent: SALESmanago may hold a withdrawal.
    let first = send(json!({"emailaddress1": "a@b.pl", "new_consent_marketing": true})).unwrap();
    assert!(first.details.consent_details.is_empty());
    // Withdrawn in Dynamics since: the withdrawal travels, and becomes the base.
    let withdrawn = send(json!({"emailaddress1": "a@b.pl", "donotbulkemail": true,
        "new_consent_marketing": false, "new_salesmanagoconsentbase": agreed}))
    .unwrap();
    assert!(withdrawn.details.force_opt_out);
    assert_eq!(withdrawn.details.consent_details.len(), 1);
    assert!(!withdrawn.details.consent_details[0].consent_accept);
    assert_eq!(withdrawn.base.as_deref(), Some(r#"{"MARKETING":false,"newsletter":false,"sms":true}"#));
}

#[test]
fn contacts_without_a_valid_email_are_skipped_with_the_reason() {
    let cases: Vec<(Value, Skip)> = vec![
        (json!({"fullname": "No Mail"}), Skip::MissingEmail),
        (json!({"emailaddress1": null}), Skip::MissingEmail),
        (json!({"emailaddress1": ""}), Skip::MissingEmail),
        (json!({"emailaddress1": "   "}), Skip::MissingEmail),
        (json!({"emailaddress1": "jan.kowalski"}), invalid("jan.kowalski", EmailProblem::Malformed)),
        (json!({"emailaddress1": "jan@@x.pl"}), invalid("jan@@x.pl", EmailProblem::Malformed)),
        (json!({"emailaddress1": "Jan <jan@x.pl>"}), invalid("Jan <jan@x.pl>", EmailProblem::Malformed)),
        (json!({"emailaddress1": "jan@x.pl; ewa@x.pl"}), invalid("jan@x.pl; ewa@x.pl", EmailProblem::Malformed)),
        (json!({"emailaddress1": "łukasz@example.pl"}), invalid("łukasz@example.pl", EmailProblem::NotAscii)),
        (json!({"emailaddress1": "jan@żółw.pl"}), invalid("jan@żółw.pl", EmailProblem::NotAscii)),
        (
            json!({"emailaddress1": "<script>alert(1)</script>@x.pl"}),
            invalid("<script>alert(1)</script>@x.pl", EmailProblem::Malformed),
        ),
        (
            json!({"emailaddress1": format!("{}@x.pl", "a".repeat(70))}),
            invalid(&format!("{}@x.pl", "a".repeat(70)), EmailProblem::LocalPartTooLong),
        ),
    ];
    for (input, skip) in cases {
        assert_eq!(send(input.clone()), Err(skip), "{input}");
    }
}

fn invalid(email: &str, problem: EmailProblem) -> Skip {
    Skip::InvalidEmail { email: email.into(), problem }
}

#[test]
fn upper_case_and_padded_emails_become_one_key() {
    let a = send(json!({"emailaddress1": "  ANNA@Example.COM\t"})).unwrap();
    let b = send(json!({"emailaddress1": "anna@example.com"})).unwrap();
    assert_eq!(a.details.contact.email, b.details.contact.email);
}

#[test]
fn names_fall_back_to_first_and_last_and_keep_markup_verbatim() {
    assert_eq!(
        sent(json!({"emailaddress1": "a@b.pl", "firstname": "Ewa", "lastname": "Nowak"})).0["contact"]["name"],
        "Ewa Nowak"
    );
    assert_eq!(sent(json!({"emailaddress1": "a@b.pl", "lastname": "Nowak"})).0["contact"]["name"], "Nowak");
    assert_eq!(sent(json!({"emailaddress1": "a@b.pl"})).0["contact"].get("name"), None);
    let (body, _) =
        sent(json!({"emailaddress1": "a@b.pl", "fullname": "<script>alert('x')</script> \"Bobby\" Tables"}));
    assert_eq!(body["contact"]["name"], "<script>alert('x')</script> \"Bobby\" Tables");
    let (body, _) = sent(json!({"emailaddress1": "a@b.pl", "fullname": "Zoë\u{0}\n  Ó'Brien-Żak 😀"}));
    assert_eq!(body["contact"]["name"], "Zoë Ó'Brien-Żak 😀", "controls and line breaks become single spaces");
}

#[test]
fn over_long_fields_are_cut_and_reported() {
    let long = "x".repeat(MAX + 40);
    let (body, warnings) =
        sent(json!({"emailaddress1": "a@b.pl", "fullname": long, "address1_city": "ł".repeat(MAX + 1)}));
    assert_eq!(body["contact"]["name"].as_str().unwrap().chars().count(), MAX);
    assert_eq!(body["contact"]["address"]["city"].as_str().unwrap().chars().count(), MAX);
    assert_eq!(warnings, [Warning::Truncated { column: "fullname" }, Warning::Truncated { column: "address1_city" }]);
}

const MAX: usize = outbound::MAX_TEXT;

#[test]
fn empty_strings_and_nulls_send_nothing() {
    let (body, warnings) = sent(json!({
        "emailaddress1": "a@b.pl", "fullname": "", "mobilephone": " ", "telephone1": null, "fax": "",
        "address1_line1": "", "address1_city": "  ", "address1_postalcode": null, "birthdate": null}));
    assert_eq!(body, json!({"contact": {"email": "a@b.pl"}, "tags": ["DYNAMICS365"]}));
    assert!(warnings.is_empty());
}

#[test]
fn phones_prefer_mobile_and_refuse_non_numbers() {
    assert_eq!(
        sent(json!({"emailaddress1": "a@b.pl", "telephone1": "22 555 01 01"})).0["contact"]["phone"],
        "22 555 01 01"
    );
    let (body, warnings) =
        sent(json!({"emailaddress1": "a@b.pl", "mobilephone": "call me maybe", "telephone1": "22 555"}));
    assert_eq!(body["contact"].get("phone"), None, "the mobile column was chosen and is not a number");
    assert_eq!(warnings, [Warning::PhoneIgnored { column: "mobilephone" }]);
    let (body, warnings) = sent(json!({"emailaddress1": "a@b.pl", "fax": "+48 (22) 555-01-02 wew. 7"}));
    assert_eq!(body["contact"].get("fax"), None);
    assert_eq!(warnings, [Warning::PhoneIgnored { column: "fax" }]);
}

#[test]
fn impossible_birthdates_are_left_out_with_a_warning() {
    for bad in
        ["2023-02-29", "1984-13-01", "1984-04-31", "1899-12-31", "2024-01-01", "2999-01-01", "04/08/1984", "yesterday"]
    {
        let (body, warnings) = sent(json!({"emailaddress1": "a@b.pl", "birthdate": bad}));
        assert_eq!(body.get("birthday"), None, "{bad}");
        assert_eq!(warnings, [Warning::BirthdateIgnored], "{bad}");
    }
    assert_eq!(sent(json!({"emailaddress1": "a@b.pl", "birthdate": "2000-02-29"})).0["birthday"], "20000229");
    assert_eq!(
        sent(json!({"emailaddress1": "a@b.pl", "birthdate": "2023-11-14"})).0["birthday"],
        "20231114",
        "today is fine"
    );
}

#[test]
fn street_lines_are_joined_without_blanks() {
    let (body, _) = sent(
        json!({"emailaddress1": "a@b.pl", "address1_line1": " ", "address1_line2": "Długa 5", "address1_line3": "m. 3 "}),
    );
    assert_eq!(body["contact"]["address"], json!({"streetAddress": "Długa 5, m. 3"}));
}

// ---- back from SALESmanago -------------------------------------------------------------

fn sm(value: Value) -> SmContact {
    SmContact::from_json(&value).expect("an object")
}

fn theirs_listing_none() -> SmContact {
    let mut theirs = sm(json!({"consents": []}));
    theirs.consents_listed = true;
    theirs
}

fn patch(current: Value, theirs: Value) -> Value {
    let patch = from_salesmanago(&row(current), &sm(theirs), &FieldMapping::NONE);
    Value::Object(patch.columns.into_iter().collect())
}

#[test]
fn a_basic_response_fills_every_column() {
    let changes = patch(
        json!({"contactid": "c1", "emailaddress1": "jan@x.pl"}),
        json!({"contactId": "u-1", "email": "jan@x.pl", "name": "Jan Maria Rokita", "phone": "+48600100200",
               "fax": "225550102", "address": {"streetAddress": "Długa 5", "zipCode": "43-300", "city": "Kraków", "country": "PL"},
               "birthdayYear": "1984", "birthdayMonth": "8", "birthdayDay": "4", "optedOut": true, "optedOutPhone": false}),
    );
    assert_eq!(
        changes,
        json!({"new_salesmanagoid": "u-1", "firstname": "Jan Maria", "lastname": "Rokita", "mobilephone": "+48600100200",
               "fax": "225550102", "address1_line1": "Długa 5", "address1_postalcode": "43-300", "address1_city": "Kraków",
               "address1_country": "PL", "birthdate": "1984-08-04", "donotbulkemail": true, "new_donotsms": false})
    );
}

#[test]
fn unchanged_values_and_blanks_write_nothing() {
    let current = json!({"contactid": "c1", "new_salesmanagoid": "u-1", "emailaddress1": "Jan@X.pl", "fullname": "Jan  Kowalski",
        "firstname": "Jan", "lastname": "Kowalski", "telephone1": "22 555", "address1_line1": "Długa 5", "address1_line2": "m. 3",
        "birthdate": "1984-08-04", "donotbulkemail": false, "new_donotsms": true});
    let theirs = json!({"contactId": "u-1", "email": "jan@x.pl", "name": "Jan Kowalski", "phone": "22 555", "fax": null,
        "address": {"streetAddress": "Długa 5, m. 3", "zipCode": null, "city": " ", "country": null},
        "birthdayYear": "1984", "birthdayMonth": "08", "birthdayDay": "4", "optedOut": false, "optedOutPhone": true});
    assert_eq!(patch(current, theirs), json!({}));
}

#[test]
fn one_word_names_and_the_other_phone_column() {
    let changes = patch(
        json!({"firstname": "Jan", "lastname": "K", "telephone1": "1"}),
        json!({"name": "Madonna", "phone": "+48 1"}),
    );
    assert_eq!(changes, json!({"lastname": "Madonna", "firstname": null, "telephone1": "+48 1"}));
}

#[test]
fn a_name_split_otherwise_in_dynamics_is_kept_when_it_reads_the_same() {
    // A two-word last name: SALESmanago's one name would split it as "Jan Maria" + "Rokita".
    let split = json!({"firstname": "Jan", "lastname": "Maria Rokita"});
    assert_eq!(patch(split, json!({"name": "Jan  Maria Rokita"})), json!({}), "read as first and last");
    let with_full = json!({"fullname": "Jan Maria Rokita", "firstname": "Jan", "lastname": "Maria Rokita"});
    assert_eq!(patch(with_full, json!({"name": "Jan Maria Rokita"})), json!({}));
    assert_eq!(patch(json!({}), json!({"name": "Jan Rokita"})), json!({"firstname": "Jan", "lastname": "Rokita"}));
}

#[test]
fn a_new_street_clears_the_extra_lines() {
    let changes = patch(
        json!({"address1_line1": "Stara 1", "address1_line3": "x"}),
        json!({"address": {"streetAddress": "Nowa 2"}}),
    );
    assert_eq!(changes, json!({"address1_line1": "Nowa 2", "address1_line3": null}));
}

#[test]
fn birthdays_without_a_year_or_impossible_ones_are_ignored() {
    assert_eq!(patch(json!({}), json!({"birthdayMonth": "2", "birthdayDay": "29"})), json!({}));
    assert_eq!(patch(json!({}), json!({"birthdayYear": "2023", "birthdayMonth": "2", "birthdayDay": "29"})), json!({}));
    assert_eq!(patch(json!({}), json!({"birthday": "19840230"})), json!({}));
}

#[test]
fn invalid_emails_from_salesmanago_are_not_written() {
    assert_eq!(patch(json!({"emailaddress1": "a@b.pl"}), json!({"email": "not an email"})), json!({}));
    assert_eq!(
        patch(json!({"emailaddress1": "a@b.pl"}), json!({"email": "New@B.pl"})),
        json!({"emailaddress1": "new@b.pl"})
    );
}

#[test]
fn an_opt_out_made_in_dynamics_is_not_undone_by_an_unrelated_edit_in_salesmanago() {
    // Opted out in Dynamics two days ago; SALESmanago still allows both and its contact was
    // edited an hour ago: the time of that edit does not count.
    let dynamics = |base: Option<&str>| {
        json!({"donotbulkemail": true, "new_donotsms": true, "modifiedon": "2023-11-12T22:13:20Z",
               "new_salesmanagoconsentbase": base})
    };
    let edited = json!({"optedOut": false, "optedOutPhone": false, "modifiedOn": NOW - 3_600_000});
    assert_eq!(patch(dynamics(None), edited.clone()), json!({}), "no base: the opt-out wins");
    let allowed = Some(r#"{"newsletter":true,"sms":true}"#);
    assert_eq!(patch(dynamics(allowed), edited.clone()), json!({}), "Dynamics changed: it travels the other way");
    // SALESmanago opted in after an agreed opt-out, and Dynamics did not change: it applies.
    let opted_out = Some(r#"{"newsletter":false,"sms":false}"#);
    assert_eq!(patch(dynamics(opted_out), edited), json!({"donotbulkemail": false, "new_donotsms": false}));
    // SALESmanago's opt-out applies.
    let changes = patch(json!({"donotbulkemail": false}), json!({"optedOut": true, "modifiedOn": 1}));
    assert_eq!(changes, json!({"donotbulkemail": true}));
}

#[test]
fn consents_follow_the_same_rule() {
    let current = json!({"new_consent_marketing": false, "new_consent_profiling": true, "new_consent_news": null,
        "modifiedon": "2023-11-14T22:13:20Z", "new_salesmanagoconsentbase": r#"{"MARKETING":false}"#});
    let consent = |name: &str, accepted: bool, opted_out: bool, date: u64| SmConsent {
        name: name.into(),
        accepted,
        opted_out,
        date: Some(date),
    };
    let mut theirs = sm(json!({}));
    theirs.consents_listed = true;
    theirs.consents = vec![
        consent("MARKETING", true, false, 1), // granted after the agreed withdrawal: applies
        consent("PROFILING", false, true, 1), // no base, sides differ: the withdrawal wins
        consent("NEWS", true, false, 1),      // Dynamics has no value: take it
        consent("UNMAPPED", true, false, NOW + 5), // no column: ignored
    ];
    let changes = from_salesmanago(&row(current.clone()), &theirs, &FieldMapping::NONE);
    assert_eq!(changes.base.as_deref(), Some(r#"{"MARKETING":true,"NEWS":true,"PROFILING":false}"#));
    let changes = Value::Object(changes.columns.into_iter().collect());
    assert_eq!(
        changes,
        json!({"new_consent_marketing": true, "new_consent_profiling": false, "new_consent_news": true})
    );
    // Given only in Dynamics: a pull sends nothing, so nothing was agreed and it records no
    // base (a base of "not given" would make the next export take Dynamics' value for a new
    // grant, and send it over a withdrawal made in SALESmanago since). An export, which does not
    // read SALESmanago, leaves a grant the sides never agreed on alone; Send, which reads first,
    // sends it.
    let only_ours = json!({"emailaddress1": "a@b.pl", "new_consent_marketing": true});
    let pulled = from_salesmanago(&row(only_ours.clone()), &theirs_listing_none(), &FieldMapping::NONE);
    assert!(pulled.columns.is_empty());
    assert_eq!(pulled.base, None);
    let exported = send(only_ours.clone()).unwrap();
    assert!(exported.details.consent_details.is_empty(), "{:?}", exported.details.consent_details);
    let read_first = OutboundOptions {
        now_ms: NOW,
        salesmanago: Held::Found(Box::new(theirs_listing_none())),
        ..OutboundOptions::default()
    };
    let sent = to_salesmanago(&row(only_ours), &read_first, &FieldMapping::NONE).unwrap();
    assert_eq!(sent.details.consent_details.len(), 1);
    assert!(sent.details.consent_details[0].consent_accept);
    assert_eq!(sent.base.as_deref(), Some(r#"{"MARKETING":true}"#));
    // A response without a consent list says nothing about consents.
    theirs.consents_listed = false;
    let changes = from_salesmanago(&row(current), &theirs, &FieldMapping::NONE);
    assert!(changes.columns.is_empty(), "{:?}", changes.columns);
}

#[test]
fn a_changed_e_mail_renames_the_contact_salesmanago_knows() {
    let moved = json!({"contactid": "c1", "emailaddress1": " New@B.pl ", "new_salesmanagoemail": "old@b.pl"});
    let out = send(moved.clone()).unwrap().details;
    assert_eq!((out.contact.email.as_str(), out.new_email.as_deref()), ("old@b.pl", Some("new@b.pl")));
    assert_eq!(out.address(), "new@b.pl", "answered and written back by the new address");
    let body = out.to_json();
    assert_eq!((body["contact"]["email"].as_str(), body["newEmail"].as_str()), (Some("old@b.pl"), Some("new@b.pl")));
    // Another Dynamics contact still holds the old address: its SALESmanago contact stays.
    let shared = OutboundOptions { now_ms: NOW, previous_shared: true, ..OutboundOptions::default() };
    let kept = to_salesmanago(&row(moved), &shared, &FieldMapping::NONE).unwrap().details;
    assert_eq!((kept.contact.email.as_str(), kept.new_email), ("new@b.pl", None));
}

#[test]
fn an_agreement_binds_only_the_salesmanago_contact_it_was_made_with() {
    // Opted out and consenting, both agreed with the SALESmanago contact of the old address.
    let moved = json!({"contactid": "c1", "emailaddress1": "new@b.pl", "new_salesmanagoid": "sm-1",
        "new_salesmanagoemail": "old@b.pl", "donotbulkemail": true, "new_consent_marketing": true,
        "new_salesmanagoconsentbase": r#"{"newsletter":false,"MARKETING":true}"#});
    let read = sm(json!({"contactId": "sm-1", "email": "old@b.pl", "optedOut": true}));
    // Another Dynamics contact keeps the old address: a new SALESmanago contact takes the new
    // one, and gets the opt-out (it was found by the simulation going as subscribed).
    let shared = OutboundOptions {
        now_ms: NOW,
        salesmanago: Held::Found(Box::new(read.clone())),
        previous_shared: true,
        ..OutboundOptions::default()
    };
    let out = to_salesmanago(&row(moved.clone()), &shared, &FieldMapping::NONE).unwrap();
    assert_eq!((out.details.contact.email.as_str(), out.details.new_email.as_deref()), ("new@b.pl", None));
    assert!(out.details.force_opt_out, "{:?}", out.details);
    // The new contact not read, its consent waits for a send that reads it; the old agreement
    // no longer stands.
    assert!(out.details.consent_details.is_empty(), "{:?}", out.details.consent_details);
    assert_eq!(out.base.as_deref(), Some(r#"{"newsletter":false}"#));
    // The same contact renamed: the agreement stands, nothing travels again.
    let renamed = OutboundOptions { salesmanago: Held::Found(Box::new(read)), previous_shared: false, ..shared };
    let out = to_salesmanago(&row(moved.clone()), &renamed, &FieldMapping::NONE).unwrap();
    assert_eq!(out.details.new_email.as_deref(), Some("new@b.pl"));
    assert!(!out.details.force_opt_out && out.details.consent_details.is_empty(), "{:?}", out.details);
    assert_eq!(out.base, None);
    // Deleted in SALESmanago since: everything Dynamics holds goes, as to a new contact.
    let gone = OutboundOptions { now_ms: NOW, salesmanago: Held::Missing, ..OutboundOptions::default() };
    let out = to_salesmanago(&row(moved), &gone, &FieldMapping::NONE).unwrap();
    assert!(out.details.force_opt_out, "{:?}", out.details);
    assert!(out.details.consent_details[0].consent_accept, "{:?}", out.details.consent_details);
}

#[test]
fn only_a_real_change_to_a_valid_address_renames() {
    let from = |value: Value| rename_from(&row(value), &Held::Unread);
    assert_eq!(
        from(json!({"emailaddress1": "a@b.pl", "new_salesmanagoemail": "old@b.pl"})).as_deref(),
        Some("old@b.pl")
    );
    assert_eq!(from(json!({"emailaddress1": " A@B.PL", "new_salesmanagoemail": "a@b.pl "})), None, "case and spaces");
    assert_eq!(from(json!({"emailaddress1": "a@b.pl"})), None, "never sent: nothing to rename");
    assert_eq!(from(json!({"emailaddress1": "a@b.pl", "new_salesmanagoemail": "not an address"})), None);
    assert_eq!(from(json!({"emailaddress1": "broken", "new_salesmanagoemail": "old@b.pl"})), None);
    assert_eq!(
        send(json!({"emailaddress1": "broken", "new_salesmanagoemail": "old@b.pl"})).unwrap_err(),
        Skip::InvalidEmail { email: "broken".into(), problem: EmailProblem::Malformed }
    );
}

#[test]
fn what_salesmanago_answers_for_the_contacts_own_id_is_the_address_it_knows() {
    let contact = row(json!({"emailaddress1": "new@b.pl", "new_salesmanagoid": "sm-1",
        "new_salesmanagoemail": "old@b.pl"}));
    let held = |value: Value| Held::Found(Box::new(sm(value)));
    // Renamed already (an answer lost, a write-back that failed): nothing to rename.
    assert_eq!(rename_from(&contact, &held(json!({"contactId": "sm-1", "email": "NEW@b.pl"}))), None);
    // Renamed in SALESmanago meanwhile: renamed from there.
    let there = held(json!({"contactId": "sm-1", "email": "other@b.pl"}));
    assert_eq!(rename_from(&contact, &there).as_deref(), Some("other@b.pl"));
    // Another contact (found by e-mail), or none: the address recorded stands.
    let another = held(json!({"contactId": "sm-2", "email": "new@b.pl"}));
    assert_eq!(rename_from(&contact, &another).as_deref(), Some("old@b.pl"));
    assert_eq!(rename_from(&contact, &Held::Missing).as_deref(), Some("old@b.pl"));
}

#[test]
fn the_old_address_is_shared_when_another_contact_holds_it() {
    let rows = vec![
        json!({"contactid": "{C1}", "emailaddress1": "Old@B.pl"}),
        json!({"contactid": "c2", "emailaddress1": "x@b.pl"}),
        json!({"contactid": "c3"}),
    ];
    assert!(!held_by_another(&rows, "c1", "old@b.pl"), "its own row");
    assert!(!held_by_another(&rows, "{C1}", "old@b.pl"), "its own row, its id as the form gives it");
    assert!(held_by_another(&rows, "c9", "old@b.pl"));
    assert!(held_by_another(&rows, "{C2}", "old@b.pl"));
    assert!(!held_by_another(&rows, "c9", "y@b.pl"));
    assert!(!held_by_another(&[json!(1)], "c9", "old@b.pl"), "a row that is not one is no holder");
}

#[test]
fn a_refused_rename_goes_again_without_renaming_only_when_nothing_is_left_behind() {
    let rename = send(json!({"emailaddress1": "new@b.pl", "new_salesmanagoemail": "old@b.pl"})).unwrap().details;
    assert_eq!(rename_lookup(&rename), Some(["new@b.pl".to_owned(), "old@b.pl".to_owned()]));
    let contact = |id: &str, email: &str| sm(json!({"contactId": id, "email": email}));
    // The new address is this contact's own: renamed by an attempt whose answer was lost.
    let plain = unrenamed(&rename, Some("sm-1"), &[contact("sm-1", "new@b.pl")]).expect("sent again");
    assert_eq!((plain.contact.email.as_str(), plain.new_email), ("new@b.pl", None));
    assert_eq!(plain.contact.external_id, rename.contact.external_id);
    // No contact has the old address: nothing to rename, nothing left behind.
    assert!(unrenamed(&rename, Some("sm-1"), &[contact("sm-2", "new@b.pl")]).is_some());
    // Another contact has the new address and this one the old: the refusal stands.
    let both = [contact("sm-2", "new@b.pl"), contact("sm-1", "old@b.pl")];
    assert_eq!(unrenamed(&rename, Some("sm-1"), &both), None);
    assert_eq!(unrenamed(&rename, None, &both), None);
    let not_renamed = send(json!({"emailaddress1": "new@b.pl"})).unwrap().details;
    assert_eq!((rename_lookup(&not_renamed), unrenamed(&not_renamed, Some("sm-1"), &[])), (None, None));
}
