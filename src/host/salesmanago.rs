//! Runs a SALESmanago [`Operation`]: sign, send, read, and retry as [`RetryPolicy`] plans.

use crate::core::retry::{Retry, RetryPolicy};
use crate::core::salesmanago::{Client, Nonce, Operation, SmError};

use super::browser::{now_ms, random, random_key, sleep};
use super::transport::perform;

/// How the host calls SALESmanago.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout_ms: u32,
}

impl Connection {
    /// The output of `operation`, after as many attempts as the retry policy allows.
    pub(crate) async fn call<O: Operation>(&self, operation: &O) -> Result<O::Output, SmError> {
        let mut attempt = 1;
        loop {
            let nonce = Nonce { api_key: random_key(), request_time_ms: now_ms() };
            let request = self.client.request(operation, &nonce);
            let outcome = perform(&request, self.timeout_ms).await;
            let error = match self.client.response(operation, outcome) {
                Ok(output) => return Ok(output),
                Err(error) => error,
            };
            match self.retry.plan(attempt, &error, now_ms(), random()) {
                Retry::After(ms) => sleep(ms).await,
                Retry::GiveUp => return Err(error.settled(now_ms())),
            }
            attempt += 1;
        }
    }
}
