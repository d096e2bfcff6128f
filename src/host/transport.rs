//! Performs a core [`HttpRequest`] with `fetch` (gloo-net) and hands back what came of it.
//! Interprets nothing: statuses and bodies go to the core as they are.

use futures_util::future::{select, Either};
use gloo_net::http::Request;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, ReadableStreamDefaultReader, RequestMode};

use super::browser::sleep;

use crate::core::salesmanago::{HttpRequest, HttpResponse, TransportFailure};

/// How long the reachability probe may take.
const PROBE_TIMEOUT_MS: u32 = 5_000;

/// `text` as a request body: its UTF-8 bytes, which the browser sends as they are (a string
/// would be decoded to a JS string and encoded again).
pub(crate) fn bytes(text: &str) -> js_sys::Uint8Array {
    js_sys::Uint8Array::from(text.as_bytes())
}

/// Sends `request`; gives up after `timeout_ms`.
pub(crate) async fn perform(request: &HttpRequest, timeout_ms: u32) -> Result<HttpResponse, TransportFailure> {
    let signal = AbortSignal::timeout_with_u32(timeout_ms);
    let mut builder = Request::post(&request.url)
        .header("Content-Type", HttpRequest::CONTENT_TYPE)
        .header("Accept", HttpRequest::ACCEPT);
    if let Some(key) = &request.relay_key {
        builder = builder.header("Authorization", &key.authorization());
    }
    let sent = builder
        .abort_signal(Some(&signal))
        .body(bytes(&request.body))
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
    // Readable only when the server exposes it to the page's origin (the relay does).
    let date = response.headers().get("date");
    let body = match response.binary().await {
        Ok(body) => HttpResponse::text(body),
        Err(_) if signal.aborted() => return Err(TransportFailure::Timeout),
        Err(_) => return Err(TransportFailure::Network),
    };
    Ok(HttpResponse { status, retry_after, body, date })
}

/// A file's body being read, part by part; dropping it stops the download.
pub(crate) struct Download {
    status: u16,
    reader: ReadableStreamDefaultReader,
    controller: AbortController,
    idle_ms: u32,
}

/// GETs `url` with no credentials: its body to read when the status is 2xx, else the response
/// as it is.
pub(crate) async fn download(url: &str, idle_ms: u32) -> Result<Result<Download, HttpResponse>, TransportFailure> {
    let controller = AbortController::new().map_err(|_| TransportFailure::Network)?;
    let signal = controller.signal();
    let started = Request::get(url).abort_signal(Some(&signal)).send();
    let response = match select(Box::pin(started), Box::pin(sleep(u64::from(idle_ms)))).await {
        Either::Left((Ok(response), _)) => response,
        Either::Left((Err(_), _)) => return Err(why_unreachable(url).await),
        Either::Right(_) => {
            controller.abort();
            return Err(TransportFailure::Timeout);
        }
    };
    let status = response.status();
    let body = response.body().filter(|_| (200..300).contains(&status));
    let Some(body) = body else {
        let retry_after = response.headers().get("retry-after");
        let body = response.text().await.unwrap_or_default();
        return Ok(Err(HttpResponse { date: None, status, retry_after, body }));
    };
    let reader = body.get_reader().unchecked_into::<ReadableStreamDefaultReader>();
    Ok(Ok(Download { status, reader, controller, idle_ms }))
}

impl Download {
    /// The status the file was served with.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// The next part of the body; `None` at its end. Fails when nothing comes for the idle
    /// time, or the connection drops.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<u8>>, TransportFailure> {
        let read = JsFuture::from(self.reader.read());
        let result = match select(read, Box::pin(sleep(u64::from(self.idle_ms)))).await {
            Either::Left((Ok(result), _)) => result,
            Either::Left((Err(_), _)) => return Err(TransportFailure::Network),
            Either::Right(_) => {
                self.controller.abort();
                return Err(TransportFailure::Timeout);
            }
        };
        let field = |name: &str| js_sys::Reflect::get(&result, &name.into()).unwrap_or_default();
        if field("done").as_bool() == Some(true) {
            return Ok(None);
        }
        let value = field("value");
        let bytes = value.dyn_into::<js_sys::Uint8Array>().map_err(|_| TransportFailure::Network)?;
        Ok(Some(bytes.to_vec()))
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.controller.abort();
    }
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
