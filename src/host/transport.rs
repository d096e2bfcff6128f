//! Performs a core [`HttpRequest`] with `fetch` and hands back what came of it. Interprets
//! nothing: statuses and bodies go to the core as they are.

use crate::prelude::*;
use futures_util::future::{select, Either};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, AbortSignal, Headers, ReadableStreamDefaultReader, Request, RequestInit, RequestMode, Response,
};

use super::browser::sleep;

use crate::core::salesmanago::{HttpRequest, HttpResponse, TransportFailure};

/// How long the reachability probe may take.
const PROBE_TIMEOUT_MS: u32 = 5_000;

#[wasm_bindgen]
extern "C" {
    /// The global scope's `fetch` (a window's, a worker's or Node's).
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_request(request: &Request) -> Result<js_sys::Promise, JsValue>;
}

/// A request for [`fetch`].
pub(crate) struct Fetch<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    /// Sent as its UTF-8 bytes, as they are (a string would be decoded to a JS string and
    /// encoded again).
    pub(crate) body: Option<&'a str>,
    pub(crate) signal: Option<&'a AbortSignal>,
    /// `no-cors`, for the reachability probe.
    pub(crate) no_cors: bool,
}

impl<'a> Fetch<'a> {
    /// A `method` request of `url` with these headers, nothing else set.
    pub(crate) fn new(method: &'a str, url: &'a str, headers: &'a [(&'a str, &'a str)]) -> Fetch<'a> {
        Fetch { method, url, headers, body: None, signal: None, no_cors: false }
    }
}

/// Sends `request`: its response (any status), or what `fetch` rejected with.
pub(crate) async fn fetch(request: Fetch<'_>) -> Result<Response, JsValue> {
    let init = RequestInit::new();
    init.set_method(request.method);
    let headers = Headers::new()?;
    for (name, value) in request.headers {
        headers.set(name, value)?;
    }
    init.set_headers(&headers);
    if let Some(body) = request.body {
        init.set_body(&js_sys::Uint8Array::from(body.as_bytes()));
    }
    init.set_signal(request.signal);
    if request.no_cors {
        init.set_mode(RequestMode::NoCors);
    }
    let sent = fetch_request(&Request::new_with_str_and_init(request.url, &init)?)?;
    Ok(JsFuture::from(sent).await?.unchecked_into())
}

/// A response's header, when the browser lets the page read it.
pub(crate) fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// A response's whole body, as bytes.
pub(crate) async fn body(response: &Response) -> Result<Vec<u8>, JsValue> {
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// What a rejected promise said: an `Error`'s message, a thrown string, or a general word.
pub(crate) fn message_of(value: &JsValue) -> String {
    js_sys::Reflect::get(value, &"message".into())
        .ok()
        .and_then(|message| message.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "the request failed".into())
}

/// Sends `request`; gives up after `timeout_ms`.
pub(crate) async fn perform(request: &HttpRequest, timeout_ms: u32) -> Result<HttpResponse, TransportFailure> {
    let signal = AbortSignal::timeout_with_u32(timeout_ms);
    let authorization = request.relay_key.as_ref().map(|key| key.authorization());
    let mut headers = vec![("Content-Type", HttpRequest::CONTENT_TYPE), ("Accept", HttpRequest::ACCEPT)];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    let mut post = Fetch::new("POST", &request.url, &headers);
    (post.body, post.signal) = (Some(request.body.as_str()), Some(&signal));
    let response = match fetch(post).await {
        Ok(response) => response,
        Err(_) if signal.aborted() => return Err(TransportFailure::Timeout),
        Err(_) => return Err(why_unreachable(&request.url).await),
    };
    let status = response.status();
    let retry_after = header(&response, "retry-after");
    // Readable only when the server exposes it to the page's origin (the relay does).
    let date = header(&response, "date");
    let body = match body(&response).await {
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
    let mut get = Fetch::new("GET", url, &[]);
    get.signal = Some(&signal);
    let response = match select(Box::pin(fetch(get)), Box::pin(sleep(u64::from(idle_ms)))).await {
        Either::Left((Ok(response), _)) => response,
        Either::Left((Err(_), _)) => return Err(why_unreachable(url).await),
        Either::Right(_) => {
            controller.abort();
            return Err(TransportFailure::Timeout);
        }
    };
    let status = response.status();
    let stream = response.body().filter(|_| (200..300).contains(&status));
    let Some(stream) = stream else {
        let retry_after = header(&response, "retry-after");
        let body = body(&response).await.map(HttpResponse::text).unwrap_or_default();
        return Ok(Err(HttpResponse { date: None, status, retry_after, body }));
    };
    let reader = stream.get_reader().unchecked_into::<ReadableStreamDefaultReader>();
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
    let mut probe = Fetch::new("GET", url, &[]);
    (probe.signal, probe.no_cors) = (Some(&signal), true);
    match fetch(probe).await {
        Ok(_) => TransportFailure::CrossOrigin,
        Err(_) => TransportFailure::Network,
    }
}
