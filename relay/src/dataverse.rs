//! The relay's own way into Dataverse, as an application user: an OAuth 2.0 client-credentials
//! token from Entra ID (scope `<org>/.default`), kept until a minute before it expires, then
//! the Web API: the requests of the core's jobs as they ask for them ([`Dataverse::exchange`],
//! retried by the jobs), and the record read for a burst and the registration's writes, retried
//! here as the same [`core::retry`](salesmanago_dynamics::core::retry) plans it.

use std::time::{Duration, Instant};

use axum::http::header;
use salesmanago_dynamics::core::clock::http_date_ms;
use salesmanago_dynamics::core::dataverse::error::{self, DvFailure};
use salesmanago_dynamics::core::json::{self, Map, Value};
use salesmanago_dynamics::core::retry::{Failed, Retry, RetryPolicy};
use salesmanago_dynamics::core::salesmanago::HttpResponse;
use tokio::sync::Mutex;

/// Where and as whom the relay reaches Dataverse.
#[derive(Debug, Clone)]
pub struct DataverseConfig {
    /// The org's address, such as `https://contoso.crm4.dynamics.com`.
    pub url: String,
    /// The token endpoint (Entra ID's `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`).
    pub token_url: String,
    /// The app registration's client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
}

/// A failed Dataverse request, for the log and the answer to the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataverseError {
    /// No token: the app registration's credentials or the token endpoint.
    Token(String),
    /// Dataverse answered with this status.
    Status(u16),
    /// No answer.
    Unreachable,
}

impl DataverseError {
    /// Whether another delivery may pass.
    pub fn transient(&self) -> bool {
        match self {
            DataverseError::Status(status) => *status == 429 || *status >= 500,
            DataverseError::Unreachable => true,
            DataverseError::Token(_) => false,
        }
    }
}

/// The relay's Dataverse client.
pub struct Dataverse {
    config: DataverseConfig,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Dataverse {
    /// A client for `config`.
    pub fn new(config: DataverseConfig, http: reqwest::Client) -> Dataverse {
        Dataverse { config, http, token: Mutex::new(None) }
    }

    async fn token(&self) -> Result<String, DataverseError> {
        let mut held = self.token.lock().await;
        if let Some((token, until)) = held.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let scope = format!("{}/.default", self.config.url.trim_end_matches('/'));
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("scope", scope.as_str()),
        ];
        let body: String = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
        let response = self
            .http
            .post(&self.config.token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|_| DataverseError::Token("the token endpoint could not be reached".into()))?;
        let status = response.status().as_u16();
        let text = read(response).await.unwrap_or_default();
        let value = json::from_str(&text).unwrap_or(Value::Null);
        let Some(token) = value.get("access_token").and_then(Value::as_str).filter(|_| status == 200) else {
            let said = value.get("error").and_then(Value::as_str).unwrap_or("no token");
            return Err(DataverseError::Token(format!("HTTP {status}: {said}")));
        };
        let lifetime = value.get("expires_in").and_then(Value::as_u64).unwrap_or(300);
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        *held = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    /// Sends a Web API request built by `make` with the token, tried again as
    /// [`core::retry`](salesmanago_dynamics::core::retry) plans for Dataverse (service
    /// protection's `Retry-After` honoured, 5xx and no answer backed off): the same decision as
    /// the core's jobs. An answer that is no failure to try again comes back as it is.
    async fn send(
        &self,
        policy: RetryPolicy,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, DataverseError> {
        let mut attempt = 1;
        loop {
            let token = self.token().await?;
            // What failed, what it means to the core, and the time on Dataverse's clock.
            let (failure, error, now) = match make(&token).send().await {
                Ok(response) if !matches!(response.status().as_u16(), 408 | 429 | 500..=599) => {
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let (retry_after, date) = (text(header::RETRY_AFTER), text(header::DATE));
                    let body = read(response).await.unwrap_or_default();
                    // A `Retry-After` date is read on Dataverse's clock, as its answer tells it.
                    let now = date.as_deref().and_then(http_date_ms).unwrap_or_else(crate::now_ms);
                    let answer = HttpResponse { status, retry_after, body, date };
                    (DataverseError::Status(status), error::answer(Ok(answer)).err(), now)
                }
                Err(_) => {
                    let failed = DvFailure { message: "Dataverse could not be reached".into(), ..DvFailure::default() };
                    (DataverseError::Unreachable, Some(error::failure(failed)), crate::now_ms())
                }
            };
            let Some(error) = error else { return Err(failure) };
            match policy.plan(attempt, Failed::from(&error), now, jitter()) {
                Retry::After(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Retry::GiveUp => return Err(failure),
            }
            attempt += 1;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/data/v9.2/{path}", self.config.url.trim_end_matches('/'))
    }

    /// `GET` of `path` under the Web API root (a row, or a page with `value` and
    /// `@odata.nextLink`; an absolute next link is taken as it is).
    pub async fn get(&self, path: &str) -> Result<Map, DataverseError> {
        self.get_with(path, RetryPolicy::dataverse()).await
    }

    /// [`Dataverse::get`], tried again as `policy` says (a webhook delivery's reads are in a
    /// hurry: [`RetryPolicy::delivery`]).
    pub async fn get_with(&self, path: &str, policy: RetryPolicy) -> Result<Map, DataverseError> {
        let url = if path.starts_with("http") { path.to_owned() } else { self.url(path) };
        let response = self
            .send(policy, |token| {
                self.http
                    .get(&url)
                    .bearer_auth(token)
                    .header(header::ACCEPT, "application/json")
                    .header("Prefer", "odata.maxpagesize=400")
            })
            .await?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(DataverseError::Status(status));
        }
        let text = read(response).await?;
        match json::from_str(&text) {
            Ok(Value::Object(row)) => Ok(row),
            _ => Err(DataverseError::Unreachable),
        }
    }

    /// Writes `columns` to the existing row at `path` (`If-Match: *`).
    pub async fn patch(&self, path: &str, columns: &Map) -> Result<(), DataverseError> {
        let url = self.url(path);
        let body = Value::Object(columns.clone()).to_string();
        let response = self
            .send(RetryPolicy::dataverse(), |token| {
                self.http
                    .patch(&url)
                    .bearer_auth(token)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::IF_MATCH, "*")
                    .body(body.clone())
            })
            .await?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(DataverseError::Status(status)),
        }
    }
}

impl Dataverse {
    /// Creates a row in entity set `set`; its id, from the `OData-EntityId` header.
    pub async fn create(&self, set: &str, columns: &Map) -> Result<String, DataverseError> {
        let url = self.url(set);
        let body = Value::Object(columns.clone()).to_string();
        let response = self
            .send(RetryPolicy::dataverse(), |token| {
                self.http
                    .post(&url)
                    .bearer_auth(token)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let status = response.status().as_u16();
        if !(200..=299).contains(&status) {
            return Err(DataverseError::Status(status));
        }
        let entity = response.headers().get("OData-EntityId").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let id = entity.rsplit_once('(').and_then(|(_, rest)| rest.strip_suffix(')'));
        id.map(str::to_owned).ok_or(DataverseError::Status(status))
    }

    /// The Web API's root, for the addresses inside a `$batch`.
    pub fn service_root(&self) -> String {
        self.url("")
    }

    /// Deletes the row at `path`; a row already gone counts as deleted.
    pub async fn delete(&self, path: &str) -> Result<(), DataverseError> {
        let url = self.url(path);
        let response = self.send(RetryPolicy::dataverse(), |token| self.http.delete(&url).bearer_auth(token)).await?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(DataverseError::Status(status)),
        }
    }
}

/// The largest Dataverse answer read (a page of 400 contacts with every column is well under).
/// A Web API request as a core job asks for it ([`crate::driver`]).
pub(crate) enum Method<'a> {
    Get,
    /// `POST` of this content type and body.
    Post(&'a str, &'a str),
    /// `PATCH` of this JSON body with `If-Match`.
    Patch(&'a str, &'a str),
    Delete,
}

impl Dataverse {
    /// One Web API request (`url` absolute, under [`Dataverse::service_root`]), as it came back:
    /// status, `Retry-After`, `Date` and body. Interprets and retries nothing: the core's job
    /// does (`core::retry`).
    pub(crate) async fn exchange(&self, url: &str, prefer: &str, send: Method<'_>) -> Result<HttpResponse, DvFailure> {
        let failed = |message: &str| DvFailure { message: message.to_owned(), ..DvFailure::default() };
        let token = self.token().await.map_err(|e| failed(&format!("{e:?}")))?;
        let mut request = match send {
            Method::Get => self.http.get(url),
            Method::Post(content_type, body) => {
                self.http.post(url).header(header::CONTENT_TYPE, content_type).body(body.to_owned())
            }
            Method::Patch(if_match, body) => self
                .http
                .patch(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::IF_MATCH, if_match)
                .body(body.to_owned()),
            Method::Delete => self.http.delete(url),
        };
        request = request.bearer_auth(token).header(header::ACCEPT, "application/json").header("OData-Version", "4.0");
        if !prefer.is_empty() {
            request = request.header("Prefer", prefer);
        }
        let response = request.send().await.map_err(|_| failed("Dataverse could not be reached"))?;
        let status = response.status().as_u16();
        let header_text = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (retry_after, date) = (header_text(header::RETRY_AFTER), header_text(header::DATE));
        let body = read(response).await.map_err(|_| failed("the answer was cut off"))?;
        Ok(HttpResponse { status, retry_after, body, date })
    }
}

const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The text of `response`, at most [`MAX_ANSWER`] bytes.
async fn read(response: reqwest::Response) -> Result<String, DataverseError> {
    let bytes = crate::upstream::capped(response, MAX_ANSWER).await.map_err(|_| DataverseError::Unreachable)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A random number in `[0, 1)` for a retry's jitter (an even spread when randomness fails).
fn jitter() -> f64 {
    let mut random = [0_u8; 8];
    getrandom::fill(&mut random).map_or(0.5, |()| (u64::from_le_bytes(random) >> 11) as f64 / (1_u64 << 53) as f64)
}

/// Percent-encodes a form value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
