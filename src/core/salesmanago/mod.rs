//! The SALESmanago API v2 client, without I/O: [`Client::request`] turns an [`Operation`] into an
//! [`HttpRequest`]; the host performs it; [`Client::response`] turns what came back into the
//! operation's output or an [`SmError`].
//!
//! ```text
//!   Operation ──request()──▶ HttpRequest ──host: fetch──▶ HttpResponse ──response()──▶ Output
//!                                                   └──▶ TransportFailure ─┘        or SmError
//! ```
//!
//! The contract is `docs/salesmanago-api.md`; each module cites the section it
//! follows.

use crate::prelude::*;

pub mod activity;
pub mod auth;
pub mod contact;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod export;
pub mod http;
pub mod operation;
pub mod relay;
pub mod rule;
pub mod script;

#[cfg(test)]
mod operation_tests;

use crate::core::json::object::{self, Keep, Sink};

pub use auth::{ApiSecret, Credentials, Nonce};
pub use endpoint::{Endpoint, EndpointError};
pub use error::{RetryAfter, SmError};
pub use http::{HttpRequest, HttpResponse, TransportFailure};
pub use operation::Operation;

/// One SALESmanago account at one endpoint, or a relay that calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Where the API is: SALESmanago, or a relay.
    pub endpoint: Endpoint,
    /// Who calls it (blank through a relay, which holds them).
    pub credentials: Credentials,
    /// Through a relay: its key. Requests then go unsigned, and the relay signs them.
    pub relay: Option<relay::RelayKey>,
}

#[cfg(test)]
impl Client {
    /// For tests: the relay at `https://relay.example.com/sm` with relay key `key`, blank
    /// credentials; with an empty key, the same address called as SALESmanago itself.
    pub(crate) fn relayed(key: &str) -> Client {
        Client {
            endpoint: Endpoint::parse("https://relay.example.com/sm").unwrap(),
            credentials: Credentials { client_id: String::new(), api_secret: ApiSecret::new(""), owner: String::new() },
            relay: relay::RelayKey::new(key),
        }
    }
}

impl Client {
    /// The HTTP request for `operation`, signed with `nonce`.
    pub fn request<O: Operation>(&self, operation: &O, nonce: &Nonce) -> HttpRequest {
        let mut body = String::new();
        let mut text = object::Text::open(&mut body);
        if self.relay.is_none() {
            for (key, value) in &self.credentials.auth_fields(nonce, operation.needs_owner()) {
                text.field(key, value, Keep::Always);
            }
        }
        operation.body_fields(&mut text);
        text.close();
        let url = self.endpoint.url(operation.method());
        HttpRequest { url, body, relay_key: self.relay.clone() }
    }

    /// The output of `operation` from what the host got back.
    ///
    /// Fails with the [`SmError`] the status, the envelope or the payload stands for.
    pub fn response<O: Operation>(
        &self,
        operation: &O,
        outcome: Result<HttpResponse, TransportFailure>,
    ) -> Result<O::Output, SmError> {
        match envelope::open(outcome) {
            Ok(payload) => operation.parse(payload),
            // The credentials SALESmanago refused are the relay's.
            Err(SmError::Auth) if self.relay.is_some() => Err(SmError::RelayCredentials),
            Err(error) => Err(self.judged(error)),
        }
    }

    /// `error` as this client means it: through a relay, a call the browser blocked is the
    /// relay refusing this origin ([`relay::through`]).
    pub fn judged(&self, error: SmError) -> SmError {
        match self.relay {
            Some(_) => relay::through(error),
            None => error,
        }
    }

    /// The address to download a file at, from a `job/status` answer's `fileUrl`: as it is, or,
    /// when a relay handed out a path under itself ([`relay::is_file_path`]), under the
    /// endpoint, so the relay never needs to know its own public address.
    pub fn file_address(&self, file_url: &str) -> String {
        match relay::is_file_path(file_url) {
            true => format!("{}/{file_url}", self.endpoint.base()),
            false => file_url.to_owned(),
        }
    }

    /// Through a relay: the request of its deep check ([`relay::CHECK_PATH`]).
    pub fn relay_check(&self) -> Option<HttpRequest> {
        let key = self.relay.clone()?;
        Some(HttpRequest {
            url: format!("{}{}", self.endpoint.base(), relay::CHECK_PATH),
            body: "{}".into(),
            relay_key: Some(key),
        })
    }
}
