//! What one key may use: a token bucket per key (the average rate, twice that in a burst), and
//! its share of the requests under way, so that no key, or pair of keys, can starve another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// One key's share: bodies being read, and calls to SALESmanago under way.
struct Share {
    reading: Arc<Semaphore>,
    calling: Arc<Semaphore>,
}

/// Each key's share of `RELAY_MAX_CONCURRENT`: the cap split evenly among the keys (at least
/// one each). A key first reads its request's body within its share of readers, then takes one
/// of its calling slots; a key that has used its share is told it is busy, whatever the others
/// do, and never takes from theirs.
pub(crate) struct Shares {
    shares: HashMap<String, Share>,
}

impl Shares {
    /// Shares of `cap` for the keys `ids`.
    pub(crate) fn new<'a>(ids: impl IntoIterator<Item = &'a str>, cap: usize) -> Shares {
        let ids: Vec<&str> = ids.into_iter().collect();
        let each = (cap / ids.len().max(1)).max(1);
        let share = || Share { reading: Arc::new(Semaphore::new(each)), calling: Arc::new(Semaphore::new(each)) };
        Shares { shares: ids.into_iter().map(|id| (id.to_owned(), share())).collect() }
    }

    /// A reader's place for `key`, while its share has one.
    pub(crate) fn reading(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        self.shares.get(key)?.reading.clone().try_acquire_owned().ok()
    }

    /// A calling slot for `key`, while its share has one.
    pub(crate) fn calling(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        self.shares.get(key)?.calling.clone().try_acquire_owned().ok()
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

    #[test]
    fn a_key_that_used_its_share_never_takes_another_keys() {
        let shares = Shares::new(["a", "b", "c"], 7);
        let a: Vec<_> = (0..2).map(|_| shares.calling("a").expect("a's share")).collect();
        let b: Vec<_> = (0..2).map(|_| shares.reading("b").expect("b's readers")).collect();
        assert!(shares.calling("a").is_none(), "a used its share");
        assert!(shares.reading("b").is_none());
        assert!(shares.calling("c").is_some() && shares.reading("c").is_some(), "c keeps its own");
        assert!(shares.calling("unknown").is_none());
        drop(a);
        assert!(shares.calling("a").is_some(), "a slot comes back when its call ends");
        drop(b);
        let alone = Shares::new(["a"], 0);
        let one = alone.calling("a");
        assert!(one.is_some() && alone.calling("a").is_none(), "at least one each");
    }
}
