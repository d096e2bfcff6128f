//! When to try a failed call again: the one place that decides it, for both services.
//!
//! Transient failures (timeouts, network errors, 5xx, 429, garbled answers) are retried with
//! bounded exponential backoff and jitter; a `Retry-After` is honoured to the millisecond, and a
//! wait longer than [`RetryPolicy::max_wait_ms`] gives up instead of freezing a user's button.
//! Failures retrying cannot fix (credentials, refusals, CORS) are never retried. The host
//! supplies the clock and the jitter, so every plan replays in tests.

use crate::core::dataverse::error::DvError;
use crate::core::salesmanago::{RetryAfter, SmError, TransportFailure};

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles after each.
    pub base_ms: u64,
    /// Longest backoff between two attempts.
    pub cap_ms: u64,
    /// Longest wait accepted from a `Retry-After`.
    pub max_wait_ms: u64,
}

impl Default for RetryPolicy {
    /// 5 attempts, 0.5 s doubling to at most 20 s, `Retry-After` up to 2 minutes.
    fn default() -> RetryPolicy {
        RetryPolicy { max_attempts: 5, base_ms: 500, cap_ms: 20_000, max_wait_ms: 120_000 }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this many milliseconds.
    After(u64),
    /// Stop and report the error.
    GiveUp,
}

impl RetryPolicy {
    /// Dataverse's service protection: `Retry-After` honoured up to 5 minutes (the longest
    /// Microsoft documents for its limits), 8 attempts.
    pub const fn dataverse() -> RetryPolicy {
        RetryPolicy { max_attempts: 8, base_ms: 500, cap_ms: 20_000, max_wait_ms: 300_000 }
    }

    /// Dataverse, read while a webhook delivery waits for its answer: three quick attempts
    /// within about two seconds (a wait asked for up to ten), then the delivery is answered
    /// `503` and Dataverse delivers it again, rather than holding it past its timeout.
    pub const fn delivery() -> RetryPolicy {
        RetryPolicy { max_attempts: 3, base_ms: 500, cap_ms: 2_000, max_wait_ms: 10_000 }
    }
}

/// What a failure says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Retrying cannot fix it.
    Final,
    /// It may pass on another attempt.
    Transient,
    /// The service asked to slow down, for as long as it says, if it does.
    Throttled(Option<RetryAfter>),
}

impl From<&SmError> for Failed {
    fn from(error: &SmError) -> Failed {
        match error {
            SmError::Throttled { retry_after } => Failed::Throttled(*retry_after),
            error if is_transient(error) => Failed::Transient,
            _ => Failed::Final,
        }
    }
}

impl From<&DvError> for Failed {
    fn from(error: &DvError) -> Failed {
        match error {
            DvError::Throttled { retry_after } => Failed::Throttled(*retry_after),
            DvError::Unavailable { .. } => Failed::Transient,
            DvError::Refused { .. }
            | DvError::MissingPrivilege { .. }
            | DvError::DeltaExpired
            | DvError::NotTracked => Failed::Final,
        }
    }
}

/// Whether an error is worth another attempt.
pub fn is_transient(error: &SmError) -> bool {
    match error {
        SmError::Throttled { .. } | SmError::Server { .. } | SmError::InvalidResponse { .. } => true,
        SmError::Transport(failure) => !matches!(failure, TransportFailure::CrossOrigin),
        SmError::Relay(refusal) => refusal.transient(),
        SmError::Auth
        | SmError::RelayCredentials
        | SmError::UnknownOwner { .. }
        | SmError::Rejected { .. }
        | SmError::UnknownMethod
        | SmError::UnexpectedStatus { .. } => false,
    }
}

impl RetryPolicy {
    /// The plan after attempt number `attempt` (1 for the first) failed with `error` at `now_ms`.
    /// `jitter` is a random number in `[0, 1)`; the backoff is drawn from its upper half
    /// ("equal jitter"), so concurrent callers spread out but never retry at once.
    pub fn plan(&self, attempt: u32, error: impl Into<Failed>, now_ms: u64, jitter: f64) -> Retry {
        let failed = error.into();
        if attempt >= self.max_attempts || failed == Failed::Final {
            return Retry::GiveUp;
        }
        if let Failed::Throttled(Some(after)) = failed {
            let wait = after.delay_ms(now_ms);
            return if wait > self.max_wait_ms { Retry::GiveUp } else { Retry::After(wait) };
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let backoff = self.base_ms.saturating_mul(1 << exponent).min(self.cap_ms);
        let jitter = jitter.clamp(0.0, 1.0);
        let half = backoff / 2;
        Retry::After(half + (half as f64 * jitter) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn delays(policy: &RetryPolicy, error: &SmError, jitter: f64) -> Vec<Retry> {
        (1..=policy.max_attempts).map(|attempt| policy.plan(attempt, error, NOW, jitter)).collect()
    }

    #[test]
    fn transient_errors_back_off_exponentially_then_give_up() {
        let policy = RetryPolicy::default();
        let error = SmError::Server { status: 503 };
        let top = delays(&policy, &error, 0.999_999);
        assert_eq!(top, [Retry::After(499), Retry::After(999), Retry::After(1999), Retry::After(3999), Retry::GiveUp]);
        let bottom = delays(&policy, &error, 0.0);
        assert_eq!(
            bottom,
            [Retry::After(250), Retry::After(500), Retry::After(1000), Retry::After(2000), Retry::GiveUp]
        );
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy { max_attempts: 40, ..RetryPolicy::default() };
        let error = SmError::Transport(TransportFailure::Timeout);
        assert_eq!(policy.plan(39, &error, NOW, 0.999_999), Retry::After(19_999));
    }

    #[test]
    fn retry_after_is_honoured_exactly_within_bounds() {
        let policy = RetryPolicy::default();
        let throttled = |after| SmError::Throttled { retry_after: Some(after) };
        assert_eq!(policy.plan(1, &throttled(RetryAfter::Seconds(3)), NOW, 0.5), Retry::After(3000));
        assert_eq!(policy.plan(1, &throttled(RetryAfter::At(NOW + 1500)), NOW, 0.5), Retry::After(1500));
        assert_eq!(policy.plan(1, &throttled(RetryAfter::At(NOW - 10)), NOW, 0.5), Retry::After(0));
        assert_eq!(policy.plan(1, &throttled(RetryAfter::Seconds(121)), NOW, 0.5), Retry::GiveUp);
        assert_eq!(policy.plan(5, &throttled(RetryAfter::Seconds(1)), NOW, 0.5), Retry::GiveUp);
        let no_header = SmError::Throttled { retry_after: None };
        assert_eq!(policy.plan(1, &no_header, NOW, 0.0), Retry::After(250));
    }

    #[test]
    fn dataverse_throttling_waits_as_asked_and_refusals_are_final() {
        let policy = RetryPolicy::dataverse();
        let throttled = DvError::Throttled { retry_after: Some(RetryAfter::Seconds(300)) };
        assert_eq!(policy.plan(7, &throttled, NOW, 0.5), Retry::After(300_000));
        assert_eq!(policy.plan(8, &throttled, NOW, 0.5), Retry::GiveUp);
        let longer = DvError::Throttled { retry_after: Some(RetryAfter::Seconds(301)) };
        assert_eq!(policy.plan(1, &longer, NOW, 0.5), Retry::GiveUp);
        assert_eq!(policy.plan(1, &DvError::Unavailable { detail: "x".into() }, NOW, 0.0), Retry::After(250));
        assert_eq!(policy.plan(1, &DvError::Refused { detail: "x".into() }, NOW, 0.0), Retry::GiveUp);
    }

    #[test]
    fn a_delivery_waits_briefly_and_leaves_the_rest_to_dataverses_redelivery() {
        let policy = RetryPolicy::delivery();
        let down = DvError::Unavailable { detail: "x".into() };
        let waits: Vec<_> = (1..=3).map(|attempt| policy.plan(attempt, &down, NOW, 1.0)).collect();
        assert_eq!(waits, [Retry::After(500), Retry::After(1000), Retry::GiveUp]);
        let asked = |seconds| DvError::Throttled { retry_after: Some(RetryAfter::Seconds(seconds)) };
        assert_eq!(policy.plan(1, &asked(10), NOW, 0.5), Retry::After(10_000));
        assert_eq!(policy.plan(1, &asked(11), NOW, 0.5), Retry::GiveUp);
    }

    #[test]
    fn errors_retrying_cannot_fix_are_final() {
        let policy = RetryPolicy::default();
        let finals = [
            SmError::Auth,
            SmError::UnknownOwner { owner: "x@y.pl".into() },
            SmError::Rejected { messages: vec![] },
            SmError::UnknownMethod,
            SmError::UnexpectedStatus { status: 400 },
            SmError::Transport(TransportFailure::CrossOrigin),
        ];
        for error in finals {
            assert_eq!(policy.plan(1, &error, NOW, 0.5), Retry::GiveUp, "{error:?}");
        }
        for error in [
            SmError::Transport(TransportFailure::Network),
            SmError::InvalidResponse { detail: "x".into() },
            SmError::Server { status: 408 },
        ] {
            assert!(matches!(policy.plan(1, &error, NOW, 0.5), Retry::After(_)), "{error:?}");
        }
    }
}
