//! The engine's own work in "Export all", natively and without I/O: the core functions one
//! export page goes through, on pages of 400 rows shaped like the sandbox's Dataverse answers.
//!
//! ```text
//! cargo run --release --example export_page [-- PAGES [MAPPED]]
//! ```
//!
//! `MAPPED` (0 to 20; 0 by default) adds that many columns to each row and maps them
//! ([`FieldMapping`]): texts, numbers, dates, Yes/No and choices in turn.
//!
//! Prints the time per contact of each step. It is a benchmark, not a test: compare two builds
//! by running both one after the other on the same machine, or count instructions, which do
//! not vary from run to run: `valgrind --tool=callgrind` on it, then `callgrind_annotate
//! --inclusive=yes` for each step's function (`tracked_page`, `ContactRow::from_map`,
//! `to_salesmanago`, `Client::request`, …).

use std::time::{Duration, Instant};

use salesmanago_dynamics::core::dataverse::batch::updates;
use salesmanago_dynamics::core::dataverse::contact::ContactRow;
use salesmanago_dynamics::core::dataverse::query::page;
use salesmanago_dynamics::core::dataverse::schema::SyncStatus;
use salesmanago_dynamics::core::json::Value;
use salesmanago_dynamics::core::mapping::fields::FieldMapping;
use salesmanago_dynamics::core::mapping::{to_salesmanago, OutboundOptions};
use salesmanago_dynamics::core::salesmanago::operation::BatchUpsert;
use salesmanago_dynamics::core::salesmanago::{ApiSecret, Client, Credentials, Endpoint, HttpResponse, Nonce};
use salesmanago_dynamics::core::sync::{write_back, Went};

const ROWS: usize = 400;
const NOW: u64 = 1_795_000_000_000;

/// The `n`th mapped column: its JSON value in row `i`, and its mapping entry.
fn mapped_column(n: usize, i: usize) -> (String, String) {
    let column = format!("new_mapped{n}");
    match n % 5 {
        0 => {
            (format!(r#""Customer segment {i}""#), format!(r#"{{"column":"{column}","type":"text","detail":"d{n}"}}"#))
        }
        1 => (format!("{}.{}", i * 7, i % 100), format!(r#"{{"column":"{column}","type":"number","detail":"d{n}"}}"#)),
        2 => ("\"2026-03-04T10:00:00Z\"".into(), format!(r#"{{"column":"{column}","type":"date","detail":"d{n}"}}"#)),
        3 => ((i % 2 == 0).to_string(), format!(r#"{{"column":"{column}","type":"yesno","tag":"t{n}"}}"#)),
        _ => (
            format!("{}", i % 3 + 1),
            format!(
                r#"{{"column":"{column}","type":"choice","detail":"d{n}","labels":{{"1":"One","2":"Two","3":"Three"}}}}"#
            ),
        ),
    }
}

/// A Web API page of `ROWS` contacts, as the sandbox's stand-in writes it (the ETag, then the
/// columns in `$select`'s order, which is name order), with `mapped` columns more.
fn dataverse_page(first: usize, mapped: usize) -> String {
    let cities = ["Warszawa", "Kraków", "Manchester", "Berlin", "Gdańsk"];
    let rows: Vec<String> = (first..first + ROWS)
        .map(|i| {
            let (phone, consent) =
                if i % 3 == 0 { ("null".to_owned(), "null") } else { (format!("\"+48 600 {i:06}\""), "true") };
            let mut columns: Vec<(String, String)> = [
                ("contactid", format!("\"00000000-0000-4000-8000-{i:012}\"")),
                ("fullname", format!("\"Jan Dąbrowski {i}\"")),
                ("firstname", "\"Jan\"".into()),
                ("lastname", format!("\"Dąbrowski {i}\"")),
                ("emailaddress1", format!("\"jan.dabrowski{i}@example.com\"")),
                ("mobilephone", phone),
                ("telephone1", "null".into()),
                ("fax", "null".into()),
                ("address1_line1", format!("\"Unter den Linden {i}\"")),
                ("address1_line2", "null".into()),
                ("address1_line3", "null".into()),
                ("address1_city", format!("\"{}\"", cities[i % cities.len()])),
                ("address1_postalcode", "\"00-001\"".into()),
                ("address1_country", "\"Poland\"".into()),
                ("birthdate", "\"1980-05-17\"".into()),
                ("donotbulkemail", "false".into()),
                ("new_donotsms", "false".into()),
                ("new_salesmanagoid", "null".into()),
                ("modifiedon", "\"2026-11-22T22:55:45Z\"".into()),
                ("new_consent_marketing", consent.into()),
                ("new_salesmanagosyncstatus", "null".into()),
                ("new_salesmanagolasterror", "null".into()),
                ("new_salesmanagosyncedon", "null".into()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain((0..mapped).map(|n| (format!("new_mapped{n}"), mapped_column(n, i).0)))
            .collect();
            columns.sort();
            let columns: Vec<String> = columns.iter().map(|(name, value)| format!(r#""{name}":{value}"#)).collect();
            format!(r#"{{"@odata.etag":"W/\"{i}\"",{}}}"#, columns.join(","))
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
    let mapped: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(0).min(20);
    let entries: Vec<String> = (0..mapped).map(|n| mapped_column(n, 0).1).collect();
    let mapping = FieldMapping::parse(&format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")))
        .expect("the benchmark's mapping is valid");
    let fingerprint = mapping.fingerprint();
    let texts: Vec<String> = (0..pages.min(10)).map(|p| dataverse_page(p * ROWS, mapped)).collect();
    let mut steps = Steps::default();
    let mut bytes = (0usize, 0usize);
    let timed = |total: &mut Duration, started: Instant| *total += started.elapsed();
    for p in 0..pages {
        let started = Instant::now();
        let (rows, _) = page(&texts[p % texts.len()]).expect("a valid page");
        timed(&mut steps.read_page, started);

        let started = Instant::now();
        let objects = rows.into_iter().filter_map(|r| match r {
            Value::Object(map) => Some(map),
            _ => None,
        });
        let parsed: Vec<ContactRow> = objects.map(ContactRow::from_map).collect();
        timed(&mut steps.rows, started);

        let started = Instant::now();
        let options = OutboundOptions { now_ms: NOW, ..Default::default() };
        let details: Vec<_> = parsed
            .iter()
            .filter_map(|row| to_salesmanago(row, &options, &mapping).ok())
            .map(|o| std::sync::Arc::new(o.details))
            .collect();
        timed(&mut steps.mapping, started);

        let started = Instant::now();
        // The job keeps its contacts and the call shares them.
        let batches = [BatchUpsert::of(details.clone())];
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
        let writes: Vec<(String, _)> = parsed
            .iter()
            .filter_map(|parsed| {
                let key = parsed.get("emailaddress1")?.to_ascii_lowercase();
                let id = outcome.ids.get(&key).map(String::as_str);
                let went = Went { id, email: Some(&key), mapping: fingerprint.as_deref(), ..Went::default() };
                Some((parsed.id()?, write_back(parsed, SyncStatus::Synced, went, None, NOW)?))
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
