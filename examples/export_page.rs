//! The engine's own work in "Export all", natively and without I/O: the core functions one
//! export page goes through, on pages of 400 rows shaped like the sandbox's Dataverse answers.
//!
//! ```text
//! cargo run --release --example export_page [-- PAGES]
//! ```
//!
//! Prints the time per contact of each step. It is a benchmark, not a test: compare two builds
//! by running both one after the other on the same machine.

use std::time::{Duration, Instant};

use salesmanago_dynamics::core::dataverse::batch::updates;
use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::query::page;
use salesmanago_dynamics::core::dataverse::schema::SyncStatus;
use salesmanago_dynamics::core::mapping::{to_salesmanago, OutboundOptions};
use salesmanago_dynamics::core::salesmanago::operation::BatchUpsert;
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Client, Credentials, Endpoint, HttpResponse, Nonce};
use salesmanago_dynamics::core::sync::write_back;

const ROWS: usize = 400;
const NOW: u64 = 1_795_000_000_000;

/// A Web API page of `ROWS` contacts, as the sandbox's stand-in writes it.
fn dataverse_page(first: usize) -> String {
    let cities = ["Warszawa", "Kraków", "Manchester", "Berlin", "Gdańsk"];
    let rows: Vec<String> = (first..first + ROWS)
        .map(|i| {
            let (phone, consent) = if i % 3 == 0 { ("null".to_owned(), "null") } else { (format!("\"+48 600 {i:06}\""), "true") };
            format!(
                concat!(
                    r#"{{"@odata.etag":"W/\"{i}\"","contactid":"00000000-0000-4000-8000-{i:012}","fullname":"Jan Dąbrowski {i}","#,
                    r#""firstname":"Jan","lastname":"Dąbrowski {i}","emailaddress1":"jan.dabrowski{i}@example.com","#,
                    r#""mobilephone":{phone},"telephone1":null,"fax":null,"address1_line1":"Unter den Linden {i}","#,
                    r#""address1_line2":null,"address1_line3":null,"address1_city":"{city}","address1_postalcode":"00-001","#,
                    r#""address1_country":"Poland","birthdate":"1980-05-17","donotbulkemail":false,"new_donotsms":false,"#,
                    r#""new_salesmanagoid":null,"modifiedon":"2026-11-22T22:55:45Z","new_consent_marketing":{consent},"#,
                    r#""new_salesmanagosyncstatus":null,"new_salesmanagolasterror":null,"new_salesmanagosyncedon":null}}"#
                ),
                i = i,
                phone = phone,
                city = cities[i % cities.len()],
                consent = consent,
            )
        })
        .collect();
    format!(r#"{{"@odata.context":"x","value":[{}]}}"#, rows.join(","))
}

/// SALESmanago's answer to a batch upsert that accepted every contact of `emails`.
fn upsert_answer(emails: &[String]) -> String {
    let ids: Vec<String> = emails.iter().enumerate().map(|(i, e)| format!(r#""{e}":"sm-{i:08}""#)).collect();
    format!(r#"{{"success":true,"message":[],"contactIds":{{{}}}}}"#, ids.join(","))
}

#[derive(Default)]
struct Steps {
    read_page: Duration,
    rows: Duration,
    mapping: Duration,
    request: Duration,
    response: Duration,
    write_back: Duration,
}

fn main() {
    let pages: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(250);
    let client = Client {
        endpoint: Endpoint::parse("https://app3.salesmanago.pl").expect("a valid endpoint"),
        credentials: Credentials {
            client_id: "client".into(),
            api_secret: ApiSecret::new("secret"),
            owner: "owner@example.com".into(),
        },
        relay: None,
    };
    let texts: Vec<String> = (0..pages.min(10)).map(|p| dataverse_page(p * ROWS)).collect();
    let mut steps = Steps::default();
    let mut bytes = (0usize, 0usize);
    let timed = |total: &mut Duration, started: Instant| *total += started.elapsed();
    for p in 0..pages {
        let started = Instant::now();
        let (rows, _) = page(&texts[p % texts.len()]).expect("a valid page");
        timed(&mut steps.read_page, started);

        let started = Instant::now();
        let parsed: Vec<ContactRow> = rows.iter().filter_map(|r| r.as_object()).map(ContactRow::from_json).collect();
        timed(&mut steps.rows, started);

        let started = Instant::now();
        let options = OutboundOptions { now_ms: NOW, ..Default::default() };
        let details: Vec<_> =
            parsed.iter().filter_map(|row| to_salesmanago(row, &options).ok()).map(|o| o.details).collect();
        timed(&mut steps.mapping, started);

        let started = Instant::now();
        let batches = BatchUpsert::batches(&details);
        let nonce = Nonce { api_key: "k".repeat(32), request_time_ms: NOW };
        let requests: Vec<_> = batches.iter().map(|b| client.request(b, &nonce)).collect();
        timed(&mut steps.request, started);
        bytes.0 += requests.iter().map(|r| r.body.len()).sum::<usize>();

        let emails: Vec<String> = details.iter().map(|d| d.contact.email.clone()).collect();
        let answer = HttpResponse { date: None, status: 200, retry_after: None, body: upsert_answer(&emails) };
        let started = Instant::now();
        let outcome = client.response(&batches[0], Ok(answer)).expect("accepted");
        timed(&mut steps.response, started);

        let started = Instant::now();
        let writes: Vec<(String, _)> = rows
            .iter()
            .filter_map(|r| r.as_object())
            .zip(&parsed)
            .filter_map(|(row, parsed)| {
                let key = parsed.get("emailaddress1")?.to_ascii_lowercase();
                let id = outcome.ids.get(&key).map(String::as_str);
                Some((parsed.id()?, write_back(row, SyncStatus::Synced, id, Some(&key), None, None, NOW)?))
            })
            .collect();
        let body = updates("https://org.crm4.dynamics.com/api/data/v9.2/", "contacts", &writes, "batch_1");
        timed(&mut steps.write_back, started);
        bytes.1 += body.body.len();
    }
    let contacts = (pages * ROWS) as f64;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / contacts;
    let all = [
        ("read the Dataverse page", steps.read_page),
        ("read each row", steps.rows),
        ("map to SALESmanago", steps.mapping),
        ("build and sign the batch", steps.request),
        ("read SALESmanago's answer", steps.response),
        ("build the $batch write-back", steps.write_back),
    ];
    println!("export_page: {pages} pages of {ROWS} contacts");
    for (name, d) in all {
        println!("  {name:<28} {:>6.2} µs per contact", per(d));
    }
    let total: Duration = all.iter().map(|(_, d)| *d).sum();
    println!("  {:<28} {:>6.2} µs per contact", "all", per(total));
    println!(
        "  bodies: {:.0} B per contact to SALESmanago, {:.0} B per contact written back",
        bytes.0 as f64 / contacts,
        bytes.1 as f64 / contacts
    );
}
