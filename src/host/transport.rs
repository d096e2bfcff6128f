//! Performs a core [`HttpRequest`] with `fetch` (gloo-net) and hands back what came of it.
//! Interprets nothing: statuses and bodies go to the core as they are.

use gloo_net::http::Request;
use web_sys::{AbortSignal, RequestMode};

use crate::core::salesmanago::{HttpRequest, HttpResponse, TransportFailure};

/// How long the reachability probe may take.
const PROBE_TIMEOUT_MS: u32 = 5_000;

/// Sends `request`; gives up after `timeout_ms`.
pub(crate) async fn perform(request: &HttpRequest, timeout_ms: u32) -> Result<HttpResponse, TransportFailure> {
    let signal = AbortSignal::timeout_with_u32(timeout_ms);
    let sent = Request::post(&request.url)
        .header("Content-Type", HttpRequest::CONTENT_TYPE)
        .header("Accept", HttpRequest::ACCEPT)
        .abort_signal(Some(&signal))
        .body(request.body.as_str())
        .map_err(|_| TransportFailure::Network)?
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(_) if signal.aborted() => return Err(TransportFailure::Timeout),
        Err(_) => return Err(why_unreachable(&request.url).await),
    };
    let status = response.status();
    let retry_after = response.headers().get("retry-after");
    let body = match response.text().await {
        Ok(body) => body,
        Err(_) if signal.aborted() => return Err(TransportFailure::Timeout),
        Err(_) => return Err(TransportFailure::Network),
    };
    Ok(HttpResponse { status, retry_after, body })
}

/// `fetch` fails the same way whether the server is down or the browser withheld its answer
/// (CORS). A `no-cors` request tells them apart: it gets an opaque answer from a server that is
/// up, and fails only when nothing answers. It sends no body and no credentials.
async fn why_unreachable(url: &str) -> TransportFailure {
    let signal = AbortSignal::timeout_with_u32(PROBE_TIMEOUT_MS);
    let probe = Request::get(url).mode(RequestMode::NoCors).abort_signal(Some(&signal)).send().await;
    match probe {
        Ok(_) => TransportFailure::CrossOrigin,
        Err(_) => TransportFailure::Network,
    }
}
