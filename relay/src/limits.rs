//! What one key may send: a token bucket per key (the average rate, twice that in a burst), and
//! a bound on the requests under way across all keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A key's tokens, and when they were counted.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The per-key rate.
pub(crate) struct Rate {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Rate {
    pub(crate) fn new(per_second: u32) -> Rate {
        let per_second = f64::from(per_second.max(1));
        Rate { per_second, burst: 2.0 * per_second, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key` at `now`; when there is none, the seconds until there is.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_key_gets_its_burst_then_its_rate_and_keys_are_apart() {
        let rate = Rate::new(2);
        let start = Instant::now();
        for _ in 0..4 {
            assert_eq!(rate.take("a", start), Ok(()));
        }
        assert_eq!(rate.take("a", start), Err(1));
        assert_eq!(rate.take("b", start), Ok(()), "another key has its own bucket");
        assert_eq!(rate.take("a", start + Duration::from_millis(500)), Ok(()));
        assert!(rate.take("a", start + Duration::from_millis(500)).is_err());
    }
}
