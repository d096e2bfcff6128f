//! Time another machine shares. A decision that two machines make (is a job's lease stale? from
//! when did "Export changes" read?) never rests on one machine's clock: a browser's may be
//! minutes off. It rests on the clock of the service both talk to, as each learns it from the
//! `Date` header of that service's answers ([`ServiceClock`]).

use crate::core::mapping::normalize::Date;
use crate::prelude::*;

/// A service's clock as this machine estimates it: the offset from the local clock that its
/// last answer's `Date` header showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceClock {
    offset_ms: Option<i64>,
}

impl ServiceClock {
    /// Learns from an answer received at `local_ms` whose `Date` header is `date`. The header
    /// counts whole seconds, so the service's time was within the second after it: the middle
    /// is taken. The latest answer wins (a clock set while a job runs is followed).
    pub fn observe(&mut self, date: Option<&str>, local_ms: u64) {
        if let Some(at) = date.and_then(http_date_ms) {
            let at = (at + 500) as i64;
            self.offset_ms = Some(at - local_ms as i64);
        }
    }

    /// The earliest the service's time can be at local time `local_ms`: its header's whole
    /// second, without the half second [`ServiceClock::at`] adds. What a watermark is set to, so
    /// that it is never ahead of a change the service has yet to make.
    pub fn earliest(&self, local_ms: u64) -> u64 {
        let half_second = if self.known() { 500 } else { 0 };
        self.at(local_ms).saturating_sub(half_second)
    }

    /// Whether the service has told its time.
    pub fn known(&self) -> bool {
        self.offset_ms.is_some()
    }

    /// The service's time at local time `local_ms`; this machine's own time while the service
    /// has not told its (a host that cannot read the header).
    pub fn at(&self, local_ms: u64) -> u64 {
        let offset = self.offset_ms.unwrap_or(0);
        (local_ms as i64).saturating_add(offset).max(0) as u64
    }
}

/// An HTTP date (RFC 9110 §5.6.7) as Unix ms: the IMF-fixdate senders must use
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37
/// GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms recipients should read.
pub fn http_date_ms(header: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (day, month, year, time) = match header.split_once(',') {
        Some((_, rest)) => {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            match parts[..] {
                [day, month, year, time, "GMT"] => (day, month, year, time),
                [date, time, "GMT"] => {
                    let mut date = date.split('-');
                    let (day, month, year) = (date.next()?, date.next()?, date.next()?);
                    (day, month, year, time)
                }
                _ => return None,
            }
        }
        None => match header.split_whitespace().collect::<Vec<_>>()[..] {
            [_, month, day, time, year] => (day, month, year, time),
            _ => return None,
        },
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let year: u16 = match (year.len(), year.parse::<u16>().ok()?) {
        (4, year) => year,
        // RFC 850's two digits: the nearest year that is not more than 50 years ahead.
        (2, yy) if yy < 70 => 2000 + yy,
        (2, yy) => 1900 + yy,
        _ => return None,
    };
    let date = Date::new(year, month, day.parse().ok()?)?;
    let mut hms = time.split(':').map(|part| part.parse::<u64>().ok().filter(|_| part.len() == 2));
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(date.days_since_epoch()).ok()?;
    Some((days * 86_400 + h * 3600 + m * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_every_form_read_alike() {
        let at = 784_111_777_000;
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(http_date_ms(form), Some(at), "{form}");
        }
        for junk in ["", "yesterday", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 31 Feb 1994 08:49:37 GMT"] {
            assert_eq!(http_date_ms(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_skewed_machine_reads_the_service_clock_alike() {
        let dataverse = 1_800_000_000_000; // a whole second
        let date = "Fri, 15 Jan 2027 08:00:00 GMT";
        assert_eq!(http_date_ms(date), Some(dataverse));
        // Two machines, ten minutes apart each way, hear the same answer.
        let (mut fast, mut slow) = (ServiceClock::default(), ServiceClock::default());
        fast.observe(Some(date), dataverse + 600_000);
        slow.observe(Some(date), dataverse - 600_000);
        assert_eq!(fast.at(dataverse + 600_000 + 30_000), slow.at(dataverse - 600_000 + 30_000));
        assert_eq!(fast.at(dataverse + 600_000), dataverse + 500);
        // The earliest it can be: the header's second itself, never past the service's now.
        assert_eq!(fast.earliest(dataverse + 600_000 + 30_000), dataverse + 30_000);
        // Until the service says its time, the machine's own.
        let unknown = ServiceClock::default();
        assert!(!unknown.known());
        assert_eq!((unknown.at(42), unknown.earliest(42)), (42, 42));
        let mut kept = fast;
        kept.observe(Some("not a date"), 0);
        kept.observe(None, 0);
        assert_eq!(kept, fast, "an answer without a date teaches nothing");
    }
}
