//! What a synchronisation writes back to a contact, and the tally of a job over many contacts:
//! its summary and the CSV of the contacts it could not handle.

use crate::core::json::{Map, Value};
use crate::prelude::*;

use crate::core::dataverse::contact::{ContactRow, SELECT};
use crate::core::dataverse::schema::{consent_name, contact, SyncStatus};
use crate::core::mapping::normalize::Date;
use crate::core::mapping::ContactPatch;

/// Whether a change to `column` is one SALESmanago must hear about: a mapped contact column,
/// an opt-out or a consent (not the key, the time, or our own status columns).
pub fn is_synchronised(column: &str) -> bool {
    let own = [contact::ID, contact::MODIFIED_ON, contact::VERSION, contact::SALESMANAGO_ID];
    (SELECT.contains(&column) && !own.contains(&column)) || consent_name(column).is_some()
}

/// Whether a change of `column` is news for SALESmanago when a synchronisation also reads the
/// columns `read` (consents, the admin's mapped columns, the scope's column): a lookup read as
/// `_<column>_value` changes as `<column>`.
pub fn is_synchronised_with(column: &str, read: &[String]) -> bool {
    is_synchronised(column) || read.iter().any(|r| r == column || logical(r) == column)
}

/// The logical name of a column as `$select` names it: a lookup's `_<column>_value` is
/// `<column>`.
pub fn logical(selected: &str) -> &str {
    selected.strip_prefix('_').and_then(|c| c.strip_suffix("_value")).unwrap_or(selected)
}

/// Changes committed out of order: a catch-up (the relay's, or "Export changes") looks this far
/// behind its watermark.
pub const CATCH_UP_OVERLAP_MS: u64 = 5 * 60_000;

/// Where a catch-up starts: the watermark (`new_catchupwatermark`, Unix ms as text) less the
/// overlap; without one, `otherwise`.
pub fn catch_up_since(watermark: Option<&Value>, otherwise: Option<u64>) -> Option<u64> {
    let stored = watermark.and_then(Value::as_str).and_then(|w| w.trim().parse::<u64>().ok());
    stored.map(|w| w.saturating_sub(CATCH_UP_OVERLAP_MS)).or(otherwise)
}

/// The part of `patch` about opt-outs and consents: what "Pull consents" writes.
pub fn consents_only(mut patch: ContactPatch) -> ContactPatch {
    patch.columns.retain(|column, _| {
        column == contact::DO_NOT_BULK_EMAIL || column == contact::DO_NOT_SMS || consent_name(column).is_some()
    });
    // The base covers only the consent-like values, which are all kept.
    patch
}

/// `2024-05-01T10:20:30Z`: a Unix time in milliseconds as Dataverse takes date-times.
pub fn iso_datetime(ms: u64) -> String {
    let date = Date::from_unix_ms(ms);
    let seconds = (ms / 1000) % 86_400;
    format!("{}T{:02}:{:02}:{:02}Z", date.iso(), seconds / 3600, (seconds / 60) % 60, seconds % 60)
}

/// A Dataverse date-time (`2024-05-01T10:20:30Z`, seconds' fractions ignored) as Unix ms.
pub fn unix_ms(iso: &str) -> Option<u64> {
    let date = Date::parse_iso(iso)?;
    let time = iso.trim().split_once('T')?.1.trim_end_matches('Z');
    let mut hms = time.split(':');
    let (h, m) = (hms.next()?.parse::<u64>().ok()?, hms.next()?.parse::<u64>().ok()?);
    let s = hms.next().map_or(Some(0), |s| s.split('.').next()?.parse::<u64>().ok())?;
    // (A leap second is 60.)
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(date.days_since_epoch()).ok()?;
    Some((days * 86_400 + h * 3600 + m * 60 + s) * 1000)
}

/// What a contact went to SALESmanago as, written back with its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Went<'a> {
    /// Its SALESmanago id.
    pub id: Option<&'a str>,
    /// The address it was sent by (normalised, as sent: SALESmanago knows it by that one now).
    pub email: Option<&'a str>,
    /// Its new consent base, after an upsert that made it agreed.
    pub base: Option<&'a str>,
    /// The fingerprint of the admin's mapping it went with
    /// ([`crate::core::mapping::fields::FieldMapping::fingerprint`]; `None`: the built-in one).
    /// Recorded with a `Synced` status only.
    pub mapping: Option<&'a str>,
}

/// The status columns to write on a contact after a synchronisation, or `None` when they
/// already say so (a contact exported unchanged is not written again).
///
/// `row` is the contact as read (with the status columns selected); `went` what it went to
/// SALESmanago as; `error` is the reason shown to users for `Failed` and `Skipped`.
pub fn write_back(row: &ContactRow, status: SyncStatus, went: Went, error: Option<&str>, now_ms: u64) -> Option<Map> {
    let text = |column: &str| row.get(column);
    let same_status = row.other.get(contact::SYNC_STATUS).and_then(Value::as_i64) == Some(i64::from(status.value()));
    let same_id = went.id.is_none() || text(contact::SALESMANAGO_ID) == went.id;
    let same_email = went.email.is_none() || text(contact::SALESMANAGO_EMAIL) == went.email;
    let same_error = text(contact::LAST_ERROR) == error;
    let synced = status == SyncStatus::Synced;
    let same_mapping = !synced || text(contact::MAPPED_WITH) == went.mapping;
    if same_status && same_id && same_email && same_error && same_mapping && went.base.is_none() {
        return None;
    }
    let mut columns = Map::new();
    if let Some(base) = went.base {
        columns.insert(contact::CONSENT_BASE.into(), base.into());
    }
    columns.insert(contact::SYNC_STATUS.into(), status.value().into());
    if let Some(id) = went.id {
        columns.insert(contact::SALESMANAGO_ID.into(), id.into());
    }
    if let Some(email) = went.email {
        columns.insert(contact::SALESMANAGO_EMAIL.into(), email.into());
    }
    columns.insert(
        contact::LAST_ERROR.into(),
        error.map_or(Value::Null, |e| e.chars().take(2000).collect::<String>().into()),
    );
    if synced {
        columns.insert(contact::SYNCED_ON.into(), iso_datetime(now_ms).into());
        if !same_mapping {
            columns.insert(contact::MAPPED_WITH.into(), went.mapping.map_or(Value::Null, Value::from));
        }
    }
    Some(columns)
}

/// A contact a job could not handle, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDone {
    /// The contact's id.
    pub id: String,
    /// Its e-mail as stored.
    pub email: String,
    /// Its name.
    pub name: String,
    /// Skipped (it cannot be sent as it is) rather than failed (a call went wrong).
    pub skipped: bool,
    /// The reason, in the user's language.
    pub reason: String,
}

/// The counts of a job. Every contact the job looked at is counted once as done, same,
/// missing, skipped or failed, so they add up to `total`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Contacts looked at.
    pub total: u64,
    /// Sent, or updated from SALESmanago.
    pub done: u64,
    /// Already the same on both sides.
    pub same: u64,
    /// Not found on the other side.
    pub missing: u64,
    /// Skipped or failed contacts, with their reasons (the first [`MAX_LISTED`]).
    pub not_done: Vec<NotDone>,
    /// Skipped contacts, listed or not.
    pub skipped_count: u64,
    /// Failed contacts, listed or not.
    pub failed_count: u64,
    /// Contacts outside the sync scope: neither sent nor changed ([`crate::core::scope`]).
    pub outside: u64,
    /// Of `done`: sent again because the admin's mapping changed since they last went
    /// ([`Again::Mapping`]).
    pub again: u64,
    /// Of `done`: sent after an export had marked them outside the sync scope: they entered it
    /// ([`Again::Scope`]).
    pub entered: u64,
}

/// Why an export sends a contact SALESmanago already holds as Dynamics does, other than its own
/// changes: the admin changed what syncs since it last went.
///
/// Counted as the export goes, from each contact's own columns, not before it: Dataverse counts
/// matching rows only up to 5,000 (`$count`, "Count rows using OData") and aggregates only up
/// to 50,000 (FetchXML's `fetch` element reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// It went with another mapping ([`contact::MAPPED_WITH`] differs from the fingerprint of
    /// the mapping in force).
    Mapping,
    /// An export marked it outside the sync scope; it is inside now.
    Scope,
}

impl Again {
    /// Why `row` (read with the status columns) goes again when sent with the mapping whose
    /// fingerprint is `mapping`; `None` when it never went, failed or was skipped last, or went
    /// with this mapping.
    pub fn of(row: &ContactRow, mapping: Option<&str>) -> Option<Again> {
        let status = row.other.get(contact::SYNC_STATUS).and_then(Value::as_i64)?;
        if status == i64::from(SyncStatus::OutOfScope.value()) {
            Some(Again::Scope)
        } else if status == i64::from(SyncStatus::Synced.value()) && row.get(contact::MAPPED_WITH) != mapping {
            Some(Again::Mapping)
        } else {
            None
        }
    }
}

/// How a contact was counted before its write went: what a write Dynamics refuses takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Updated (or sent).
    Done,
    /// Already the same (its agreement alone may still have been written).
    Same,
}

/// The most contacts a tally lists by name (for the CSV); beyond it only counts grow, so a
/// job's memory stays bounded. Every contact's own status columns still record its outcome.
pub const MAX_LISTED: usize = 1000;

impl Tally {
    /// Counts a contact that was skipped (`skipped`) or failed, listing it while there is room.
    pub fn not_done(&mut self, contact: NotDone) {
        if contact.skipped {
            self.skipped_count += 1;
        } else {
            self.failed_count += 1;
        }
        if self.not_done.len() < MAX_LISTED {
            self.not_done.push(contact);
        }
    }

    /// Counts a contact sent, and why it went again if it did.
    pub fn sent(&mut self, again: Option<Again>) {
        self.done += 1;
        match again {
            Some(Again::Mapping) => self.again += 1,
            Some(Again::Scope) => self.entered += 1,
            None => {}
        }
    }

    /// A contact counted [`Tally::sent`] whose write Dynamics refused: failed now, its reason
    /// for going again taken back with it.
    pub fn sent_refused(&mut self, again: Option<Again>, contact: NotDone) {
        let counter = match again {
            Some(Again::Mapping) => Some(&mut self.again),
            Some(Again::Scope) => Some(&mut self.entered),
            None => None,
        };
        if let Some(counter) = counter {
            debug_assert!(*counter > 0, "a refused write takes back a reason never counted: {again:?}");
            *counter = counter.saturating_sub(1);
        }
        self.refused(Counted::Done, contact);
    }

    /// Counts a contact as `counted`.
    pub fn count(&mut self, counted: Counted) {
        match counted {
            Counted::Done => self.done += 1,
            Counted::Same => self.same += 1,
        }
    }

    /// A contact counted `counted` whose write Dynamics refused: failed now, listed with why.
    /// The count taken back is the one the contact was given, never another's; a count that
    /// was never given is not taken (the debug build says so).
    pub fn refused(&mut self, counted: Counted, contact: NotDone) {
        let counter = match counted {
            Counted::Done => &mut self.done,
            Counted::Same => &mut self.same,
        };
        debug_assert!(*counter > 0, "a refused write takes back a count that was never given: {counted:?}");
        *counter = counter.saturating_sub(1);
        self.not_done(contact);
    }

    /// Skipped contacts.
    pub fn skipped(&self) -> u64 {
        self.skipped_count
    }

    /// Failed contacts.
    pub fn failed(&self) -> u64 {
        self.failed_count
    }

    /// Whether the counts add up to the total.
    pub fn adds_up(&self) -> bool {
        self.done + self.same + self.missing + self.skipped_count + self.failed_count + self.outside == self.total
    }

    /// Adds another part's counts and list (up to [`MAX_LISTED`]).
    pub fn merge(&mut self, other: Tally) {
        self.total += other.total;
        self.done += other.done;
        self.same += other.same;
        self.missing += other.missing;
        self.skipped_count += other.skipped_count;
        self.failed_count += other.failed_count;
        self.outside += other.outside;
        self.again += other.again;
        self.entered += other.entered;
        let room = MAX_LISTED.saturating_sub(self.not_done.len());
        self.not_done.extend(other.not_done.into_iter().take(room));
    }

    /// Contacts counted but not listed.
    pub fn unlisted(&self) -> u64 {
        (self.skipped_count + self.failed_count).saturating_sub(self.not_done.len() as u64)
    }

    /// The contacts not handled as CSV (RFC 4180, with a header row), for a spreadsheet.
    /// `header` is the localised column titles: id, e-mail, name, outcome, reason; `outcomes`
    /// the words for skipped and failed.
    /// `more` is the last line's text when contacts were counted but not listed.
    pub fn csv(&self, header: [&str; 5], outcomes: [&str; 2], more: &str) -> String {
        let mut out = String::new();
        line(&mut out, &header);
        for n in &self.not_done {
            let outcome = if n.skipped { outcomes[0] } else { outcomes[1] };
            line(&mut out, &[&n.id, &n.email, &n.name, outcome, &n.reason]);
        }
        if self.unlisted() > 0 {
            line(&mut out, &["", "", "", "", more]);
        }
        out
    }
}

/// `field` safe to open in a spreadsheet: control characters gone (tabs and line breaks become
/// spaces), and a `'` before it when any part of it, split where Excel splits a line (`,`, or
/// `;` with a Polish locale), starts a formula (`=`, `+`, `-`, `@`) after white space.
fn defused(field: &str) -> String {
    let clean: String = field
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    let formula = clean.split([',', ';']).any(|part| part.trim_start().starts_with(['=', '+', '-', '@']));
    if formula {
        format!("'{clean}")
    } else {
        clean
    }
}

fn line(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let guarded = defused(field);
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refused_write_takes_back_the_count_its_contact_was_given() {
        let contact = |id: &str| NotDone {
            id: id.into(),
            email: String::new(),
            name: String::new(),
            skipped: false,
            reason: "refused".into(),
        };
        let mut tally = Tally { total: 2, ..Tally::default() };
        tally.count(Counted::Same);
        tally.count(Counted::Done);
        // The contact counted the same, whose agreement alone was refused: its own count goes.
        tally.refused(Counted::Same, contact("a"));
        assert_eq!((tally.done, tally.same, tally.failed()), (1, 0, 1));
        assert!(tally.adds_up());
    }

    #[test]
    fn counts_that_do_not_add_up_say_so() {
        let tally =
            Tally { total: 10, done: 4, same: 2, missing: 1, skipped_count: 2, failed_count: 1, ..Tally::default() };
        assert!(tally.adds_up());
        assert!(!Tally { failed_count: 2, ..tally.clone() }.adds_up());
        assert!(!Tally { total: 11, ..tally }.adds_up());
    }

    #[test]
    fn a_tally_lists_at_most_max_listed_contacts_and_counts_them_all() {
        let mut tally = Tally::default();
        for n in 0..MAX_LISTED + 5 {
            let skipped = n % 2 == 0;
            tally.not_done(NotDone {
                id: n.to_string(),
                email: String::new(),
                name: String::new(),
                skipped,
                reason: "x".into(),
            });
        }
        assert_eq!(tally.not_done.len(), MAX_LISTED);
        assert_eq!(tally.skipped() + tally.failed(), (MAX_LISTED + 5) as u64);
        assert_eq!(tally.unlisted(), 5);
    }

    #[test]
    fn a_catch_up_looks_five_minutes_behind_its_watermark() {
        // Changes committed out of order: one committed a few minutes before another that the
        // last run saw is still read.
        assert_eq!(catch_up_since(Some(&"1800000000000".into()), Some(1)), Some(1_800_000_000_000 - 300_000));
        assert_eq!(catch_up_since(Some(&" 1800000000000 ".into()), None), Some(1_799_999_700_000));
        assert_eq!(catch_up_since(None, Some(7)), Some(7), "no watermark: the export's last run");
        assert_eq!(catch_up_since(Some(&"soon".into()), None), None);
    }

    #[test]
    fn dataverse_times_read_as_unix_ms_and_back() {
        assert_eq!(unix_ms("2017-09-26T00:04:07Z"), Some(1_506_384_247_000));
        assert_eq!(unix_ms("2017-09-26T00:04:07.123Z"), Some(1_506_384_247_000));
        assert_eq!(unix_ms(&iso_datetime(1_800_000_000_000)), Some(1_800_000_000_000));
        assert_eq!(unix_ms("2017-09-26"), None);
        assert_eq!(unix_ms("soon"), None);
        assert_eq!(unix_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(unix_ms("2023-11-14T23:59:60Z"), Some(1_700_006_400_000), "a leap second");
        for bad in ["2023-11-14T24:00:00Z", "2023-11-14T23:60:00Z", "2023-11-14T23:59:61Z", "2023-02-29T00:00:00Z"] {
            assert_eq!(unix_ms(bad), None, "{bad}");
        }
    }
    use super::*;
    use crate::core::json::json;

    fn row(value: Value) -> ContactRow {
        ContactRow::from_json(value.as_object().unwrap())
    }

    #[test]
    fn mapped_and_scope_columns_are_synchronised_too() {
        let read = vec!["new_consent_x".to_owned(), "new_segment".to_owned(), "_parentcustomerid_value".to_owned()];
        for column in ["new_segment", "parentcustomerid", "_parentcustomerid_value", "firstname", "new_consent_x"] {
            assert!(is_synchronised_with(column, &read), "{column}");
        }
        for column in ["jobtitle", "new_salesmanagosyncstatus", "modifiedon", "customer"] {
            assert!(!is_synchronised_with(column, &read), "{column}");
        }
        assert_eq!(logical("_parentcustomerid_value"), "parentcustomerid");
        assert_eq!(logical("new_segment"), "new_segment");
    }

    #[test]
    fn synchronised_columns_are_the_mapped_ones() {
        for column in
            ["emailaddress1", "firstname", "donotbulkemail", "new_donotsms", "new_consent_marketing", "birthdate"]
        {
            assert!(is_synchronised(column), "{column}");
        }
        for column in [
            "contactid",
            "modifiedon",
            "new_salesmanagoid",
            "new_salesmanagoemail",
            "new_salesmanagosyncstatus",
            "jobtitle",
            "description",
        ] {
            assert!(!is_synchronised(column), "{column}");
        }
    }

    #[test]
    fn pull_consents_writes_only_opt_outs_and_consents() {
        let mut patch = ContactPatch::default();
        for column in ["address1_city", "donotbulkemail", "new_donotsms", "new_consent_marketing", "firstname"] {
            patch.columns.insert(column.into(), Value::Bool(true));
        }
        let kept: Vec<_> = consents_only(patch).columns.into_keys().collect();
        assert_eq!(kept, ["donotbulkemail", "new_consent_marketing", "new_donotsms"]);
    }

    #[test]
    fn the_list_is_bounded_but_the_counts_are_not() {
        let contact = |i: usize| NotDone {
            id: i.to_string(),
            email: String::new(),
            name: String::new(),
            skipped: i % 2 == 0,
            reason: "r".into(),
        };
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..MAX_LISTED {
            a.total += 1;
            a.not_done(contact(i));
            b.total += 1;
            b.not_done(contact(i));
        }
        a.merge(b);
        assert_eq!((a.total, a.skipped(), a.failed()), (2 * MAX_LISTED as u64, MAX_LISTED as u64, MAX_LISTED as u64));
        assert_eq!(a.not_done.len(), MAX_LISTED);
        assert_eq!(a.unlisted(), MAX_LISTED as u64);
        assert!(a.adds_up());
        assert!(a.csv(["a", "b", "c", "d", "e"], ["s", "f"], "1000 more").ends_with(",,,,1000 more\r\n"));
    }

    #[test]
    fn iso_datetimes_are_utc_seconds() {
        assert_eq!(iso_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_datetime(1_714_558_830_999), "2024-05-01T10:20:30Z");
    }

    #[test]
    fn a_first_sync_writes_id_status_and_time() {
        let went = Went { id: Some("sm-1"), email: Some("a@b.pl"), ..Went::default() };
        let columns = write_back(&row(json!({"contactid": "c1"})), SyncStatus::Synced, went, None, 0).unwrap();
        assert_eq!(
            Value::Object(columns),
            json!({"new_salesmanagosyncstatus": 100_000_000, "new_salesmanagoid": "sm-1",
                   "new_salesmanagoemail": "a@b.pl",
                   "new_salesmanagolasterror": null, "new_salesmanagosyncedon": "1970-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn an_unchanged_contact_is_not_written_again() {
        let synced = row(json!({"new_salesmanagosyncstatus": 100_000_000, "new_salesmanagoid": "sm-1",
            "new_salesmanagoemail": "a@b.pl", "new_salesmanagolasterror": null}));
        let sent = |id, email| {
            write_back(
                &synced,
                SyncStatus::Synced,
                Went { id: Some(id), email: Some(email), ..Went::default() },
                None,
                5,
            )
        };
        assert_eq!(sent("sm-1", "a@b.pl"), None);
        assert!(sent("sm-2", "a@b.pl").is_some(), "a new id is written");
        let renamed = sent("sm-1", "new@b.pl").expect("a new address is written");
        assert_eq!(renamed["new_salesmanagoemail"], "new@b.pl");
        let failed = write_back(&synced, SyncStatus::Failed, Went::default(), Some("down"), 5).unwrap();
        assert_eq!(failed["new_salesmanagolasterror"], "down");
        assert!(!failed.contains_key("new_salesmanagosyncedon"), "a failure does not move the sync time");
        assert!(!failed.contains_key("new_salesmanagoid"));
        assert!(!failed.contains_key("new_salesmanagoemail"), "a failure leaves the address SALESmanago knows");
    }

    #[test]
    fn a_synced_contact_records_the_mapping_it_went_with() {
        let went = |mapping| Went { id: Some("sm-1"), email: Some("a@b.pl"), mapping, ..Went::default() };
        let before = row(json!({"new_salesmanagosyncstatus": 100_000_000, "new_salesmanagoid": "sm-1",
            "new_salesmanagoemail": "a@b.pl", "new_salesmanagomapping": "00aa"}));
        assert_eq!(write_back(&before, SyncStatus::Synced, went(Some("00aa")), None, 5), None, "the same mapping");
        let newer = write_back(&before, SyncStatus::Synced, went(Some("11bb")), None, 5).expect("a new mapping");
        assert_eq!(newer["new_salesmanagomapping"], "11bb");
        let built_in = write_back(&before, SyncStatus::Synced, went(None), None, 5).expect("back to the built-in");
        assert_eq!(built_in["new_salesmanagomapping"], Value::Null);
        let failed = write_back(&before, SyncStatus::Failed, went(Some("11bb")), Some("down"), 5).unwrap();
        assert!(!failed.contains_key("new_salesmanagomapping"), "a contact that failed did not go with it");
        let never = row(json!({"new_salesmanagosyncstatus": 100_000_000, "new_salesmanagoid": "sm-1",
            "new_salesmanagoemail": "a@b.pl"}));
        assert_eq!(write_back(&never, SyncStatus::Synced, went(None), None, 5), None, "no mapping, none recorded");
    }

    #[test]
    fn errors_are_cut_to_the_column() {
        let long = "x".repeat(3000);
        let columns = write_back(&ContactRow::default(), SyncStatus::Failed, Went::default(), Some(&long), 0).unwrap();
        assert_eq!(columns["new_salesmanagolasterror"].as_str().unwrap().len(), 2000);
    }

    #[test]
    fn the_csv_quotes_and_defuses_formulas() {
        let mut tally = Tally { total: 2, ..Tally::default() };
        tally.not_done(NotDone {
            id: "1".into(),
            email: "".into(),
            name: "Kowalski, Jan".into(),
            skipped: true,
            reason: "no \"e-mail\"".into(),
        });
        tally.not_done(NotDone {
            id: "2".into(),
            email: "a@b.pl".into(),
            name: "=HYPERLINK(1)".into(),
            skipped: false,
            reason: "down".into(),
        });
        let csv = tally.csv(["id", "email", "name", "outcome", "reason"], ["skipped", "failed"], "more");
        assert_eq!(
            csv,
            "id,email,name,outcome,reason\r\n1,,\"Kowalski, Jan\",skipped,\"no \"\"e-mail\"\"\"\r\n2,a@b.pl,'=HYPERLINK(1),failed,down\r\n"
        );
        assert!(tally.adds_up());
        // The shapes a hostile name takes: after a tab, after a separator, with controls.
        for (name, cell) in [
            ("\t=1+1", "' =1+1"),
            ("x;=1+1;y", "'x;=1+1;y"),
            ("Jan, @SUM(A1)", "\"'Jan, @SUM(A1)\""),
            ("\r-2", "' -2"),
            ("Ann\u{0}a\u{7}\nNowak", "Anna Nowak"),
            ("Kowalska-Nowak", "Kowalska-Nowak"),
        ] {
            let mut one = Tally { total: 1, ..Tally::default() };
            one.not_done(NotDone {
                id: "3".into(),
                email: String::new(),
                name: name.into(),
                skipped: true,
                reason: "r".into(),
            });
            let csv = one.csv(["i", "e", "n", "o", "r"], ["s", "f"], "");
            assert_eq!(csv.lines().nth(1), Some(format!("3,,{cell},s,r").as_str()), "{name:?}");
        }
        assert_eq!((tally.skipped(), tally.failed()), (1, 1));
    }
}
