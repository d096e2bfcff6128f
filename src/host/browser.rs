//! The browser's clock, randomness and timers: the only `Date.now()`, random numbers,
//! `setTimeout` and yielding of the engine. Bound to the global scope, so they work in a
//! window, an iframe and in Node alike.

use crate::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;

    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;

    type MessageChannel;
    #[wasm_bindgen(constructor)]
    fn new() -> MessageChannel;
    #[wasm_bindgen(method, getter)]
    fn port1(this: &MessageChannel) -> MessagePort;
    #[wasm_bindgen(method, getter)]
    fn port2(this: &MessageChannel) -> MessagePort;

    type MessagePort;
    #[wasm_bindgen(method, setter = onmessage)]
    fn set_onmessage(this: &MessagePort, handler: &js_sys::Function);
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post_message(this: &MessagePort, message: &JsValue);
    #[wasm_bindgen(method)]
    fn close(this: &MessagePort);
}

/// Now, Unix ms.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A random number in `[0, 1)`.
pub(crate) fn random() -> f64 {
    js_sys::Math::random()
}

/// 32 random hex digits, for a request's `apiKey`.
pub(crate) fn random_key() -> String {
    let mut bytes = [0_u8; 16];
    if get_random_values(&mut bytes).is_err() {
        for byte in &mut bytes {
            *byte = (random() * 256.0) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 random bits, for a job's request keys and jitter.
pub(crate) fn random_seed() -> u64 {
    let mut bytes = [0_u8; 8];
    if get_random_values(&mut bytes).is_err() {
        return (random() * 9_007_199_254_740_992.0) as u64 ^ now_ms();
    }
    u64::from_le_bytes(bytes)
}

/// Resolves after `ms` milliseconds.
pub(crate) async fn sleep(ms: u64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms as f64);
    });
    // A timer's promise cannot reject.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Lets the page take its turn (input, rendering, other tasks), then resumes: a message the page
/// posts to itself, which, unlike a `setTimeout` set from a timer, no browser delays by 4 ms.
pub(crate) async fn yield_now() {
    let channel = MessageChannel::new();
    let (receiver, sender) = (channel.port1(), channel.port2());
    let promise = js_sys::Promise::new(&mut |resolve, _| receiver.set_onmessage(&resolve));
    sender.post_message(&JsValue::UNDEFINED);
    // A message's promise cannot reject.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    receiver.close();
    sender.close();
}
