//! `POST /salesmanago/rule`: SALESmanago's automation rules call it with the action "Send
//! information about executed rule (webhooks)", one call per contact the rule ran for (opted
//! out, consent assigned, details modified: the README says which rules to make). The call
//! names the contact and nothing of its state, so the relay reads it from SALESmanago as it is
//! now and applies it to Dynamics with the core's job ([`rules::job`]: Pull changes of the
//! contacts named); calls arriving together go together ([`Gather`]).
//!
//! The call shows HTTP Basic credentials: the user is a key's id and the password its secret,
//! of a key in `RELAY_RULE_KEYS` (`salesmanago-relay new-key <id>` prints `<id>.<secret>` and
//! its stored form; several for rotation). Without one the call is refused (401, with a
//! `WWW-Authenticate` challenge), a body that is no call is refused (400, with the reason), and
//! a failure that may pass answers 503. What SALESmanago does after a non-2xx is not
//! documented: Pull changes catches up whatever a call failed or never came to do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine;

use salesmanago_dynamics::core::job::deliveries::{Answer, Done, Failed};
use salesmanago_dynamics::core::job::rules;
use salesmanago_dynamics::core::salesmanago::operation::LookupKind;
use salesmanago_dynamics::core::salesmanago::rule::RuleCall;

use crate::gather::Gather;
use crate::{burst, driver, intake, json_response, keys, Relay};

/// Calls gathered into one job.
pub(crate) struct Rules {
    gather: Arc<Gather<RuleCall, Answer>>,
}

impl Rules {
    /// Calls gathered for `window` at most, as many as one lookup takes.
    pub(crate) fn new(window: Duration) -> Rules {
        Rules { gather: Arc::new(Gather::new(window, LookupKind::ListById.max())) }
    }
}

/// The `user.password` of the request's Basic credentials, if it shows any.
fn credentials(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(format!("{user}.{password}"))
}

fn answer(status: u16, done: &str, reason: &str) -> Response {
    let body = salesmanago_dynamics::object! {"done": done, "reason": reason}.to_string();
    json_response(status, body)
}

/// The answer to a call without credentials the relay knows: a challenge.
fn unknown_credentials() -> Response {
    let mut response = answer(401, "refused", "missing or unknown credentials (HTTP Basic: a key's id and secret)");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="salesmanago-relay""#));
    response
}

pub(crate) async fn rule(State(relay): State<Arc<Relay>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let key = credentials(&headers).and_then(|k| keys::verify(&relay.config.rule_keys, &k).map(str::to_owned));
    let (response, rule) = match key {
        None => (unknown_credentials(), String::new()),
        Some(_) => handle(&relay, &headers, body).await,
    };
    tracing::info!(
        target: "request",
        key = key.as_deref().unwrap_or(""),
        method = "salesmanago/rule",
        rule,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    response
}

/// Acts on one call: the answer, and the rule's name (for the log).
async fn handle(relay: &Arc<Relay>, headers: &HeaderMap, body: Body) -> (Response, String) {
    let bytes = match intake::body(headers, body, relay.config.max_body, relay.config.body_timeout).await {
        Ok(bytes) => bytes,
        Err(refused) => return (crate::refusal(refused, None), String::new()),
    };
    let call = match std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|text| RuleCall::parse(text).map_err(|problem| problem.to_string()))
    {
        Ok(call) => call,
        Err(problem) => return (answer(400, "refused", &format!("not a rule's call: {problem}")), String::new()),
    };
    let rule = call.rule.clone();
    let reply = relay.rules.gather.add(call, relay.clone(), go);
    let response = match tokio::time::timeout(relay.config.answer_within, reply).await {
        Ok(Ok(Ok(Done::Ignored(reason)))) => answer(200, "ignored", reason),
        Ok(Ok(Ok(_))) => answer(200, "done", ""),
        Ok(Ok(Err(Failed::Refused(reason)))) => answer(400, "refused", &reason),
        Ok(Ok(Err(Failed::ForNow(reason)))) => answer(503, "failed", &reason),
        Ok(Err(_)) | Err(_) => answer(503, "failed", "no answer in time: Pull changes will bring the change"),
    };
    (response, rule)
}

/// Applies `calls` together: the record and the consent columns read for them, then the core's
/// job, whose end answers every call.
async fn go(relay: Arc<Relay>, calls: Vec<RuleCall>) -> Vec<Answer> {
    let all = |answer: Answer| vec![answer; calls.len()];
    let Some(dataverse) = &relay.dataverse else {
        return all(Err(Failed::Refused(
            "the relay has no Dataverse access (DATAVERSE_URL and an app registration) to apply SALESmanago's changes"
                .into(),
        )));
    };
    let (record, consents) = tokio::join!(burst::read_record(dataverse), burst::consent_columns(&relay, dataverse));
    let (Ok(record), Some(consents)) = (record, consents) else {
        return all(Err(Failed::ForNow("Dataverse could not be read".into())));
    };
    let mut job = match rules::job(&calls, burst::start(&relay, &record, consents)) {
        Ok(job) => job,
        Err(answer) => return all(answer),
    };
    let ended = driver::drive(&relay, dataverse, &mut job).await;
    all(rules::answer(&ended))
}
