//! A small deterministic generator (SplitMix64) for request keys, jitter and the seeds of a
//! burst's jobs: seeded by the host with real randomness, and by tests with a number they can
//! replay.

use crate::prelude::*;

/// SplitMix64.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    /// The next 64 random bits.
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// 128 random bits as 32 hex digits.
    pub(super) fn key(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn it_is_splitmix64() {
        // The reference sequence of SplitMix64 from seed 0 (Vigna's splitmix64.c).
        let mut rng = Rng(0);
        assert_eq!(
            [rng.next(), rng.next(), rng.next()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
        // `unit` keeps the top 53 bits, as a fraction of 2^53; `key` is two draws in hex.
        let mut rng = Rng(0);
        assert_eq!(rng.unit(), (0xe220_a839_7b1d_cdaf_u64 >> 11) as f64 / 9_007_199_254_740_992.0);
        assert!((0..1000).map(|_| rng.unit()).all(|u| (0.0..1.0).contains(&u)));
        assert_eq!(Rng(0).key(), "e220a8397b1dcdaf6e789e6aa1b965f4");
    }
}
