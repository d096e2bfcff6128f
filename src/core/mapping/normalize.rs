//! Normalisation and validation of single values, per the limits of
//! `docs/salesmanago-api.md` §4: e-mail addresses, free text, phone numbers and
//! dates. Each function says what it accepts; none drops a value without saying why.

use crate::core::salesmanago::endpoint::is_dns_label;
use crate::prelude::*;

/// Why an e-mail address cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProblem {
    /// Longer than 254 characters.
    TooLong,
    /// More than 64 characters before the `@`.
    LocalPartTooLong,
    /// Non-ASCII characters (SALESmanago validates addresses per RFC 822, which has none).
    NotAscii,
    /// Not of the form `name@domain.tld`.
    Malformed,
}

/// `K`, which `to_lowercase` turns into an ASCII `k`.
const KELVIN_SIGN: char = '\u{212A}';

/// The address lower-cased and trimmed, as SALESmanago keys contacts, or why it is invalid.
pub fn email(raw: &str) -> Result<String, EmailProblem> {
    // Lower-cases as `str::to_lowercase` does for every address that can pass: only ASCII ones
    // do, and the one other character that lower-cases to ASCII is the Kelvin sign. Unicode's
    // case tables would cost the wasm 18 KB.
    let address: String =
        raw.trim().chars().map(|c| if c == KELVIN_SIGN { 'k' } else { c.to_ascii_lowercase() }).collect();
    if !address.is_ascii() {
        return Err(EmailProblem::NotAscii);
    }
    if address.len() > 254 {
        return Err(EmailProblem::TooLong);
    }
    let (local, domain) = address.split_once('@').ok_or(EmailProblem::Malformed)?;
    if local.len() > 64 {
        return Err(EmailProblem::LocalPartTooLong);
    }
    const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-.";
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| is_dns_label(l))
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    if local_ok && domain_ok {
        Ok(address)
    } else {
        Err(EmailProblem::Malformed)
    }
}

/// Free text made single-line: control characters become spaces, runs of white space one space,
/// ends trimmed. Blank text is no value. Longer than `max` characters is cut there, and the
/// second value says so.
pub fn text(raw: &str, max: usize) -> (Option<String>, bool) {
    // Most values need nothing done: one pass says so, and one copy is made.
    if is_clean(raw, max) {
        return (Some(raw.to_owned()), false);
    }
    cleaned(raw, max)
}

/// [`text`] made character by character.
fn cleaned(raw: &str, max: usize) -> (Option<String>, bool) {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c.is_whitespace() && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(if c.is_whitespace() { ' ' } else { c });
    }
    out.truncate(out.trim_end().len());
    if out.is_empty() {
        return (None, false);
    }
    match out.char_indices().nth(max) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.truncate(out.trim_end().len());
            (Some(out), true)
        }
        None => (Some(out), false),
    }
}

/// Whether [`text`] leaves `raw` as it is: not blank, no control characters, white space only
/// single spaces between words, at most `max` characters.
fn is_clean(raw: &str, max: usize) -> bool {
    if raw.is_ascii() {
        // Most values: byte by byte, printable characters and single spaces between words.
        let mut after_space = true;
        for &b in raw.as_bytes() {
            if !(b' '..=b'~').contains(&b) || (b == b' ' && after_space) {
                return false;
            }
            after_space = b == b' ';
        }
        return raw.len() <= max && !after_space;
    }
    let (mut count, mut after_space) = (0, true);
    for c in raw.chars() {
        count += 1;
        if count > max || c.is_control() {
            return false;
        }
        if c.is_whitespace() {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    // (Empty text ends "after a space", as it began.)
    !after_space
}

/// A phone or fax number: digits with an optional leading `+` and the separators people type
/// (space, `-`, `.`, `/`, parentheses); 3 to 20 digits. White space is collapsed.
pub fn phone(raw: &str) -> Option<String> {
    let (value, _) = text(raw, 64);
    let value = value?;
    let body = value.strip_prefix('+').unwrap_or(&value);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let allowed = body.bytes().all(|b| b.is_ascii_digit() || b" -./()".contains(&b));
    (allowed && (3..=20).contains(&digits)).then_some(value)
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Date {
    /// A real date, if `year`/`month`/`day` make one.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year > 0 && (1..=days).contains(&day)).then_some(Date { year, month, day })
    }

    /// Reads `YYYY-MM-DD`, optionally followed by a time (`T…`), as Dataverse writes dates.
    pub fn parse_iso(raw: &str) -> Option<Date> {
        let raw = raw.trim();
        let date = raw.split_once('T').map_or(raw, |(d, _)| d).as_bytes();
        if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
            return None;
        }
        let number = |digits: &[u8]| {
            digits.iter().try_fold(0u16, |n, d| d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0')))
        };
        Date::new(number(&date[..4])?, number(&date[5..7])? as u8, number(&date[8..])? as u8)
    }

    /// `yyyyMMdd`, as SALESmanago writes birthdays.
    pub fn parse_compact(raw: &str) -> Option<Date> {
        let raw = raw.trim();
        if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Date::new(raw[..4].parse().ok()?, raw[4..6].parse().ok()?, raw[6..].parse().ok()?)
    }

    /// The UTC date of a Unix time in milliseconds.
    pub fn from_unix_ms(ms: u64) -> Date {
        // Howard Hinnant's civil_from_days, for days since 1970-01-01.
        let z = (ms / 86_400_000) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        let (y, m, d) = (i64::from(self.year), i64::from(self.month), i64::from(self.day));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// `yyyyMMdd`, as SALESmanago takes birthdays.
    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `YYYY-MM-DD`, as Dataverse takes dates.
    pub fn iso(self) -> String {
        // By hand: `format!` costs a date per contact and mapped column several times this.
        if self.year > 9999 {
            return format!("{:04}-{:02}-{:02}", self.year, self.month, self.day);
        }
        let digit = |n: u16| b'0' + (n % 10) as u8;
        let (year, month, day) = (self.year, u16::from(self.month), u16::from(self.day));
        let iso = [
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            digit(month / 10),
            digit(month),
            b'-',
            digit(day / 10),
            digit(day),
        ];
        // Digits and dashes: always UTF-8.
        ::core::str::from_utf8(&iso).unwrap_or_default().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_emails_are_lower_cased_and_trimmed() {
        assert_eq!(email("  Jan.Kowalski@Example.COM "), Ok("jan.kowalski@example.com".into()));
        assert_eq!(email("a+tag@sub.example.co.uk"), Ok("a+tag@sub.example.co.uk".into()));
        assert_eq!(email("o'neil@example.ie"), Ok("o'neil@example.ie".into()));
        // The longest an address and its local part may be: 254 and 64 characters.
        let longest = format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(57));
        assert_eq!(longest.len(), 254);
        assert_eq!(email(&longest), Ok(longest.clone()));
    }

    #[test]
    fn emails_are_lower_cased_as_unicode_would() {
        let unicode = |raw: &str| {
            let lower = raw.trim().to_lowercase();
            if lower.is_ascii() {
                email(&lower)
            } else {
                Err(EmailProblem::NotAscii)
            }
        };
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let raw = format!("a{c}@example.com");
            assert_eq!(email(&raw), unicode(&raw), "{c:?}");
        }
        assert_eq!(email("\u{212A}OWALSKI@EXAMPLE.COM"), Ok("kowalski@example.com".into()));
    }

    #[test]
    fn invalid_emails_say_why() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!(
            "{}@{}.com",
            "a".repeat(60),
            ["b".repeat(60), "c".repeat(60), "d".repeat(60), "e".repeat(60)].join(".")
        );
        let cases = [
            ("", EmailProblem::Malformed),
            ("jan", EmailProblem::Malformed),
            ("jan@", EmailProblem::Malformed),
            ("@example.com", EmailProblem::Malformed),
            ("jan@example", EmailProblem::Malformed),
            ("jan@@example.com", EmailProblem::Malformed),
            ("jan kowalski@example.com", EmailProblem::Malformed),
            ("jan..k@example.com", EmailProblem::Malformed),
            (".jan@example.com", EmailProblem::Malformed),
            ("jan@-example.com", EmailProblem::Malformed),
            ("jan@example.c0m", EmailProblem::Malformed),
            ("Jan <jan@example.com>", EmailProblem::Malformed),
            ("<script>@example.com", EmailProblem::Malformed),
            ("zażółć@example.pl", EmailProblem::NotAscii),
            ("jan@bücher.de", EmailProblem::NotAscii),
            (long_local.as_str(), EmailProblem::LocalPartTooLong),
            (long.as_str(), EmailProblem::TooLong),
        ];
        for (input, problem) in cases {
            assert_eq!(email(input), Err(problem), "{input:?}");
        }
    }

    #[test]
    fn text_is_made_single_line_and_cut_on_a_character_boundary() {
        assert_eq!(text("  Jan \t\r\n Kowalski\u{0}  ", 50), (Some("Jan Kowalski".into()), false));
        assert_eq!(text(" \n\t ", 50), (None, false));
        assert_eq!(text("Zażółć gęślą", 4), (Some("Zażó".into()), true));
        assert_eq!(text("ab cd", 3), (Some("ab".into()), true), "no trailing space after the cut");
        assert_eq!(text("<b>x</b>", 50), (Some("<b>x</b>".into()), false), "markup is data, kept verbatim");
        // Text that needs nothing done, at the edges of the shortcut.
        assert_eq!(text("Zażółć", 6), (Some("Zażółć".into()), false), "exactly max characters");
        assert_eq!(text("Zażółć", 5), (Some("Zażół".into()), true));
        assert_eq!(text("a\u{a0}b", 9), (Some("a b".into()), false), "a non-breaking space is a space");
        assert_eq!(text("a  b", 9), (Some("a b".into()), false));
        assert_eq!(text("a b ", 9), (Some("a b".into()), false));
        assert_eq!(text("", 9), (None, false));
        assert!(
            is_clean("a b", 3) && !is_clean("a b", 2) && !is_clean(" a", 9) && !is_clean("a\tb", 9) && !is_clean("", 9)
        );
    }

    #[test]
    fn clean_text_is_exactly_what_cleaning_leaves_as_it_is() {
        // Every text of up to 4 of these characters, ASCII (the byte-wise check) and not.
        let alphabet = ['a', ' ', '~', '\t', '\n', '\u{7f}', '\u{1f}', 'ż', '\u{a0}', '\u{85}'];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> =
                texts.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
            texts.extend(longer);
        }
        texts.sort();
        texts.dedup();
        for raw in &texts {
            for max in [2, 3, 9] {
                let unchanged = cleaned(raw, max) == (Some(raw.clone()), false);
                assert_eq!(is_clean(raw, max), unchanged, "{raw:?} at most {max}");
            }
        }
    }

    #[test]
    fn phones_must_look_like_phones() {
        assert_eq!(phone(" +48 123-456-789 "), Some("+48 123-456-789".into()));
        assert_eq!(phone("(22) 555 01 01"), Some("(22) 555 01 01".into()));
        for bad in ["", "n/a", "12", "+48 123 456 789 ext. 5", "123456789012345678901", "+-+"] {
            assert_eq!(phone(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_are_written_as_dataverse_takes_them() {
        for (date, iso) in [((2024, 5, 1), "2024-05-01"), ((7, 12, 31), "0007-12-31"), ((1999, 10, 9), "1999-10-09")] {
            assert_eq!(Date::new(date.0, date.1, date.2).unwrap().iso(), iso);
        }
        assert_eq!(Date { year: 12345, month: 1, day: 2 }.iso(), "12345-01-02");
    }

    #[test]
    fn dates_are_real_dates() {
        assert_eq!(Date::parse_iso("1984-08-04"), Date::new(1984, 8, 4));
        assert_eq!(Date::parse_iso("2000-02-29T00:00:00Z").map(Date::compact).as_deref(), Some("20000229"));
        for bad in [
            "1900-02-29",
            "2023-02-29",
            "1984-13-01",
            "1984-00-10",
            "1984-04-31",
            "84-8-4",
            "1984/08/04",
            "",
            "0000-01-01",
            "2024-05x01",
            "2024x05-01",
        ] {
            assert_eq!(Date::parse_iso(bad), None, "{bad:?}");
        }
        // SALESmanago's `yyyyMMdd`, and nothing more or less.
        assert_eq!(Date::parse_compact(" 19840804 "), Date::new(1984, 8, 4));
        for bad in ["198408041", "1984084", "+0240501", "1984-8-4", "19840230", ""] {
            assert_eq!(Date::parse_compact(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unix_time_round_trips_through_dates() {
        assert_eq!(Date::from_unix_ms(0), Date { year: 1970, month: 1, day: 1 });
        assert_eq!(Date::from_unix_ms(951_782_400_000), Date { year: 2000, month: 2, day: 29 });
        for ms in [0_u64, 86_399_999, 951_782_400_000, 1_700_000_000_000, 4_102_444_800_000] {
            let date = Date::from_unix_ms(ms);
            assert_eq!(date.days_since_epoch(), (ms / 86_400_000) as i64, "{ms}");
        }
        // Every day from 1970 to 2500 (past Howard Hinnant's era and century boundaries): a
        // real date, the day after the one before, and back to the same day.
        let mut before = Date::from_unix_ms(0);
        for day in 1..=(2500 - 1970) * 366 {
            let date = Date::from_unix_ms(day * 86_400_000);
            assert_eq!(Date::new(date.year, date.month, date.day), Some(date), "day {day}");
            assert!(date > before, "day {day}: {date:?} after {before:?}");
            assert_eq!(date.days_since_epoch(), day as i64, "{date:?}");
            before = date;
        }
    }
}
