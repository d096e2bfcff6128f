//! Every operation's request body and the parsing of its documented answers
//! (`docs/salesmanago-api.md` §3).

use crate::core::json::{json, Value};

use super::contact::{ContactData, UpsertDetails};
use super::operation::*;
use super::*;

fn client() -> Client {
    Client {
        endpoint: Endpoint::parse("app3.salesmanago.pl").unwrap(),
        credentials: Credentials {
            client_id: "cid".into(),
            api_secret: ApiSecret::new("secret-xyz"),
            owner: "owner@example.com".into(),
        },
        relay: None,
    }
}

fn nonce() -> Nonce {
    Nonce { api_key: "key-1".into(), request_time_ms: 1_700_000_000_000 }
}

/// The body `operation` sends, auth fields checked and removed.
fn body<O: Operation>(operation: &O) -> Value {
    let client = client();
    let request = client.request(operation, &nonce());
    assert_eq!(request.url, format!("https://app3.salesmanago.pl/api/{}", operation.method()));
    assert!(!request.body.contains("secret-xyz"), "the secret is never sent");
    let mut body = crate::core::json::from_str(&request.body).unwrap();
    let map = body.as_object_mut().unwrap();
    assert_eq!(map.remove("clientId"), Some(json!("cid")));
    assert_eq!(map.remove("apiKey"), Some(json!("key-1")));
    assert_eq!(map.remove("requestTime"), Some(json!(1_700_000_000_000_u64)));
    assert_eq!(map.remove("sha"), Some(json!(client.credentials.sign("key-1"))));
    let owner = map.remove("owner");
    assert_eq!(owner.is_some(), operation.needs_owner(), "{}", operation.method());
    if let Some(owner) = owner {
        assert_eq!(owner, "owner@example.com");
    }
    body
}

fn ok<O: Operation>(operation: &O, answer: Value) -> Result<O::Output, SmError> {
    let response = HttpResponse { date: None, status: 200, retry_after: None, body: answer.to_string() };
    client().response(operation, Ok(response))
}

fn details(email: &str) -> UpsertDetails {
    UpsertDetails { contact: ContactData { email: email.into(), ..ContactData::default() }, ..UpsertDetails::default() }
}

#[test]
fn upsert() {
    let op = Upsert(UpsertDetails { force_phone_opt_out: true, ..details("a@b.pl") });
    assert_eq!(body(&op), json!({"contact": {"email": "a@b.pl"}, "forcePhoneOptOut": true, "async": false}));
    let id = ok(&op, json!({"success": true, "message": [], "contactId": "ded47013", "externalId": "U1"}));
    assert_eq!(id, Ok("ded47013".into()));
    assert!(matches!(ok(&op, json!({"success": true, "message": []})), Err(SmError::InvalidResponse { .. })));
}

#[test]
fn batch_upsert_splits_and_reports_each_contact() {
    let all: Vec<_> = (0..(BatchUpsert::MAX * 2 + 1)).map(|i| details(&format!("c{i}@x.pl"))).collect();
    let calls = BatchUpsert::batches(&all);
    assert_eq!(calls.iter().map(|c| c.details().len()).collect::<Vec<_>>(), [BatchUpsert::MAX, BatchUpsert::MAX, 1]);

    let renamed = UpsertDetails { new_email: Some("New@X.pl".into()), ..details("old@x.pl") };
    let op = &BatchUpsert::batches(&[details("A@x.pl"), details("b@x.pl"), details("c@x.pl"), renamed])[0];
    let sent = body(op);
    assert_eq!(sent["upsertDetails"].as_array().unwrap().len(), 4);
    assert_eq!(sent["upsertDetails"][0], json!({"contact": {"email": "A@x.pl"}}));
    assert_eq!(sent["useApiDoubleOptIn"], false);

    let outcome = ok(
        op,
        json!({"success": true, "message": ["Contact rejected: b@x.pl"],
               "contactIds": {"a@x.pl": "id-a", "NEW@x.pl": "id-n", "zzz@x.pl": "id-z"}}),
    )
    .unwrap();
    assert_eq!(outcome.ids.len(), 2);
    assert_eq!(outcome.ids["a@x.pl"], "id-a");
    assert_eq!(outcome.ids["new@x.pl"], "id-n");
    assert_eq!(outcome.failed["b@x.pl"].as_deref(), Some("Contact rejected: b@x.pl"));
    assert_eq!(outcome.failed["c@x.pl"], None, "absent without a message: failed, reason unknown");
    assert!(matches!(ok(op, json!({"success": true, "contactIds": []})), Err(SmError::InvalidResponse { .. })));
}

#[test]
fn a_rename_is_answered_by_its_new_address_and_its_refusal_read_once() {
    let renamed = UpsertDetails { new_email: Some("New@X.pl".into()), ..details("old@x.pl") };
    let op = &BatchUpsert::batches(&[renamed.clone(), details("c@x.pl")])[0];
    assert_eq!(body(op)["upsertDetails"][0], json!({"contact": {"email": "old@x.pl"}, "newEmail": "New@X.pl"}));
    let done = ok(op, json!({"success": true, "message": [], "contactIds": {"new@x.pl": "id-1", "c@x.pl": "id-c"}}));
    assert_eq!(done.unwrap().of(&renamed), Ok("id-1"));
    // The JS simulator's words: the contact's e-mail, then SALESmanago's message.
    let taken = ok(
        op,
        json!({"success": true, "message": ["old@x.pl: Contact new@x.pl already exists", "c@x.pl: Contact rejected"],
               "contactIds": {}}),
    )
    .unwrap();
    assert_eq!(taken.of(&renamed), Err(Refused::Taken { email: "new@x.pl".into() }));
    assert_eq!(
        taken.of(&details("c@x.pl")),
        Err(Refused::Other { email: "c@x.pl".into(), reason: Some("c@x.pl: Contact rejected".into()) })
    );
    // Only a rename is refused for a taken address; other words are another refusal.
    let plain = details("new@x.pl");
    assert!(matches!(Refused::of(&plain, Some("Contact new@x.pl already exists".into())), Refused::Other { .. }));
    assert!(matches!(Refused::of(&renamed, Some("Contact rejected: new@x.pl".into())), Refused::Other { .. }));
    assert!(matches!(Refused::of(&renamed, None), Refused::Other { reason: None, .. }));
    // A single upsert refused (success:false) reads the same.
    let refused = SmError::Rejected { messages: vec!["Contact NEW@x.pl already exists".into()] };
    assert_eq!(Refused::rejected(&renamed, &refused), Some(Refused::Taken { email: "new@x.pl".into() }));
    assert_eq!(Refused::rejected(&renamed, &SmError::Server { status: 503 }), None);
}

#[test]
fn a_renamed_contact_is_alone_among_those_answered_by_its_address() {
    let rename = |from: &str, to: &str| UpsertDetails { new_email: Some(to.into()), ..details(from) };
    let all = [
        details("a@x.pl"),
        rename("old@x.pl", "A@x.pl"),
        details("a@x.pl"),
        details("b@x.pl"),
        rename("old2@x.pl", "b@x.pl"),
        rename("old3@x.pl", "c@x.pl"),
    ];
    // Contacts sharing an address go together: they are one SALESmanago contact.
    assert_eq!(BatchUpsert::groups(&all), [vec![0, 2, 3, 5], vec![1, 4]]);
    let many: Vec<_> = (0..BatchUpsert::MAX + 1).map(|i| details(&format!("c{i}@x.pl"))).collect();
    assert_eq!(BatchUpsert::groups(&many).iter().map(Vec::len).collect::<Vec<_>>(), [BatchUpsert::MAX, 1]);
}

#[test]
fn delete() {
    let op = Delete { email: "a@b.pl".into(), permanently: true };
    assert_eq!(body(&op), json!({"email": "a@b.pl", "permanently": true}));
    assert_eq!(ok(&op, json!({"success": true, "message": [], "result": null})), Ok(()));
    assert_eq!(ok(&op, json!({"success": true, "message": [], "result": "Contact deleted"})), Ok(()));
}

#[test]
fn has_contact() {
    let op = HasContact { email: "a@b.pl".into() };
    assert_eq!(body(&op), json!({"email": "a@b.pl"}));
    assert_eq!(
        ok(&op, json!({"success": true, "message": [], "result": true, "contactId": "u1"})),
        Ok(Some("u1".into()))
    );
    assert_eq!(ok(&op, json!({"success": true, "message": [], "result": false, "contactId": null})), Ok(None));
    assert!(ok(&op, json!({"success": true, "message": [], "result": true})).is_err());
}

#[test]
fn lookups_use_their_documented_keys_and_limits() {
    let ids: Vec<String> = (0..120).map(|i| format!("id-{i}")).collect();
    let list = Lookup::batches(LookupKind::ListById, &ids);
    assert_eq!(list.iter().map(|l| l.keys().len()).collect::<Vec<_>>(), [50, 50, 20]);
    assert_eq!(list[0].method(), "contact/listById");
    assert_eq!(body(&list[2])["contactId"].as_array().unwrap().len(), 20);

    let basic = &Lookup::batches(LookupKind::BasicByEmail, &["a@b.pl".into()])[0];
    assert_eq!((basic.method(), body(basic)), ("contact/basic", json!({"email": ["a@b.pl"]})));
    let by_id = &Lookup::batches(LookupKind::BasicById, &ids)[1];
    assert_eq!(by_id.method(), "contact/basicById");
    assert_eq!(body(by_id)["id"].as_array().unwrap().len(), 20);
    assert!(Lookup::batches(LookupKind::BasicById, &[]).is_empty());

    let found =
        ok(basic, json!({"success": true, "message": [], "contacts": [{"contactId": "u1", "email": "a@b.pl"}]}));
    assert_eq!(found.unwrap()[0].id.as_deref(), Some("u1"));
    assert_eq!(ok(basic, json!({"success": true, "message": []})), Ok(vec![]));
    assert!(ok(basic, json!({"success": true, "message": [], "contacts": {"a": 1}})).is_err());
    assert!(ok(basic, json!({"success": true, "message": [], "contacts": [1]})).is_err());
}

#[test]
fn only_the_activity_lookup_reads_the_cards_activity() {
    let card = json!({"success": true, "message": [], "contacts": [{"id": "u1", "email": "a@b.pl",
        "contactVisits": [{"conversationId": "v1", "time": 1000, "url": "https://a"}]}]});
    let ids = ["u1".to_owned()];
    let plain = &Lookup::batches(LookupKind::ListById, &ids)[0];
    let with = &Lookup::batches(LookupKind::ActivityById, &ids)[0];
    assert_eq!((with.method(), body(with)), (plain.method(), body(plain)), "the same call");
    assert!(ok(plain, card.clone()).unwrap()[0].activity.is_empty(), "other jobs do not parse activity");
    assert_eq!(ok(with, card).unwrap()[0].activity.len(), 1);
}

#[test]
fn modified_contacts_pages_and_windows() {
    let paged = ModifiedContacts { from: 10, to: 20, page: Some(2) };
    assert_eq!(paged.method(), "contact/paginatedModifiedContacts");
    assert_eq!(body(&paged), json!({"from": 10, "to": 20, "page": 2, "size": 1000}));
    let page = ok(
        &paged,
        json!({"success": true, "message": [], "hasMore": true,
               "modifiedContacts": [{"contactId": "u1", "email": "A@b.pl", "modifiedOn": 15}, {"id": "u2"}]}),
    )
    .unwrap();
    assert!(page.has_more);
    assert_eq!(page.contacts[0].id, "u1");
    assert_eq!(page.contacts[0].email.as_deref(), Some("a@b.pl"));
    assert_eq!(page.contacts[0].modified_on, Some(15));
    assert_eq!(page.contacts[1].id, "u2");
    assert!(ok(&paged, json!({"success": true, "modifiedContacts": [{"email": "x@y.pl"}]})).is_err());

    let legacy = ModifiedContacts { from: 10, to: 20, page: None };
    assert_eq!(legacy.method(), "contact/modifiedContacts");
    assert_eq!(body(&legacy), json!({"from": 10, "to": 20}));
    let page = ok(&legacy, json!({"success": true, "hasMore": true, "modifiedContacts": []})).unwrap();
    assert!(!page.has_more, "the unpaginated method has no next page");

    let day = 24 * 3600 * 1000;
    let windows = ModifiedContacts::windows(0, 65 * day);
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0], (0, 30 * day - 1));
    assert_eq!(windows[1].0, 30 * day);
    assert_eq!(windows[2], (60 * day, 65 * day));
    assert_eq!(ModifiedContacts::windows(5, 5), [(5, 5)]);
    assert!(ModifiedContacts::windows(6, 5).is_empty());
    assert_eq!(ModifiedContacts::windows(u64::MAX - 1, u64::MAX), [(u64::MAX - 1, u64::MAX)]);
}

#[test]
fn list_users() {
    assert_eq!(body(&ListUsers), json!({}));
    let users = ok(
        &ListUsers,
        json!({"success": true, "users": [{"email": "Owner@Example.com"}, "b@x.pl", {"login": "c@x.pl"}, 5]}),
    );
    assert_eq!(users, Ok(vec!["owner@example.com".into(), "b@x.pl".into(), "c@x.pl".into()]));
    assert!(ok(&ListUsers, json!({"success": true})).is_err());
}

#[test]
fn subscriptions() {
    let cases = [
        (Channel::Newsletter, true, "contact/optin"),
        (Channel::Newsletter, false, "contact/optout"),
        (Channel::Sms, true, "contact/phoneoptin"),
        (Channel::Sms, false, "contact/phoneoptout"),
    ];
    for (channel, subscribed, method) in cases {
        let op = SetSubscription { email: "a@b.pl".into(), channel, subscribed };
        assert_eq!(op.method(), method);
        assert_eq!(body(&op), json!({"email": "a@b.pl"}));
        assert_eq!(ok(&op, json!({"success": true, "message": [], "contactId": "u"})), Ok("u".into()));
    }
}

#[test]
fn failures_reach_every_operation() {
    let op = HasContact { email: "a@b.pl".into() };
    let refused = ok(&op, json!({"success": false, "message": ["Not authenticated"]}));
    assert_eq!(refused, Err(SmError::Auth));
    let timeout = client().response(&op, Err(TransportFailure::Timeout));
    assert_eq!(timeout, Err(SmError::Transport(TransportFailure::Timeout)));
}

#[test]
fn through_a_relay_requests_go_unsigned_with_the_key_and_its_refusals_are_named() {
    use super::relay::{Refusal, RelayKey};
    let relay = Client::relayed("k1.abc");
    let request = relay.request(&HasContact { email: "a@b.pl".into() }, &nonce());
    assert_eq!(request.url, "https://relay.example.com/sm/api/contact/hasContact");
    assert_eq!(request.body, r#"{"email":"a@b.pl"}"#, "no auth fields: the relay signs");
    assert_eq!(request.relay_key.as_ref().map(RelayKey::authorization).as_deref(), Some("Bearer k1.abc"));
    assert!(!format!("{request:?}").contains("abc"), "the key is redacted");
    assert_eq!(client().request(&ListUsers, &nonce()).relay_key, None);
    let answer =
        |status: u16, body: String| Ok(HttpResponse { date: None, status, retry_after: Some("3".into()), body });
    let op = HasContact { email: "a@b.pl".into() };
    assert_eq!(relay.response(&op, answer(401, Refusal::Key.body())), Err(SmError::Relay(Refusal::Key)));
    assert_eq!(
        relay.response(&op, answer(429, Refusal::Rate.body())),
        Err(SmError::Throttled { retry_after: Some(RetryAfter::Seconds(3)) })
    );
    let refused = r#"{"success":false,"message":["Not authenticated"]}"#.to_owned();
    assert_eq!(relay.response(&op, answer(200, refused.clone())), Err(SmError::RelayCredentials));
    assert_eq!(client().response(&op, answer(200, refused)), Err(SmError::Auth));
    assert_eq!(relay.relay_check().unwrap().url, "https://relay.example.com/sm/healthz/deep");
    assert_eq!(client().relay_check(), None);
}

#[test]
fn a_batch_is_written_byte_for_byte_as_its_tree_says() {
    use super::contact::{Address, ConsentDetail};
    use crate::core::json::ToJson;
    // Each optional field left out and said, texts that need escapes, an address with nothing
    // in it (left out) and one with something.
    let details: Vec<UpsertDetails> = (0..64u32)
        .map(|n| {
            let bit = |b: u32| n & (1 << b) != 0;
            let mut d = UpsertDetails::default();
            d.contact.email = format!("a{n}@example.com");
            d.contact.name = bit(0).then(|| "Zoë \"Q\" \\ \n\u{1}".into());
            d.contact.address = bit(1).then(Address::default);
            if bit(2) {
                d.contact.address = Some(Address { city: Some("Łódź".into()), ..Address::default() });
            }
            if bit(3) {
                d.tags = vec!["SM_SYNC".into(), "t\"".into()];
                d.force_opt_out = true;
            }
            if bit(4) {
                d.properties.insert("d\"1".into(), "x\ty".into());
                d.properties.insert("a".into(), String::new());
            }
            if bit(5) {
                d.consent_details = vec![ConsentDetail {
                    consent_name: "marketing".into(),
                    consent_accept: false,
                    opt_out: true,
                    agreement_date: 1_700_000_000_000,
                }];
                d.new_email = Some("b@example.com".into());
            }
            d
        })
        .collect();
    for detail in &details {
        let mut written = String::new();
        detail.write_json(&mut written);
        assert_eq!(written, detail.to_json().to_string(), "{detail:?}");
    }
    assert!(Address::default().is_blank() && !details[0].contact.is_blank());
    let batch = BatchUpsert::of(details.into_iter().map(alloc::sync::Arc::new).collect());
    let mut tree = client().credentials.auth_fields(&nonce(), true);
    tree.extend(batch.body());
    assert_eq!(client().request(&batch, &nonce()).body, Value::Object(tree).to_string());
    // An operation that is not written by its fields goes through its tree.
    let one = Upsert((*batch.details()[5]).clone());
    let mut tree = client().credentials.auth_fields(&nonce(), true);
    tree.extend(one.body());
    assert_eq!(client().request(&one, &nonce()).body, Value::Object(tree).to_string());
}
