//! The simulation's one source of chance: SplitMix64, so a seed replays exactly.

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_0000_0000_0000)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Whether a chance of `per_mille` in a thousand comes up.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// `Retry-After` as an HTTP date `seconds` after `now_ms` (IMF-fixdate).
pub(crate) fn http_date(now_ms: u64, seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // Rounded up to the next whole second, as a date cannot say less.
    let secs = now_ms.div_ceil(1000) + seconds;
    let days = secs / 86_400;
    let date = salesmanago_dynamics::core::mapping::normalize::Date::from_unix_ms(days * 86_400_000);
    let rest = secs % 86_400;
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        date.day,
        MONTHS[usize::from(date.month) - 1],
        date.year,
        rest / 3600,
        (rest / 60) % 60,
        rest % 60
    )
}
