//! The browser's clock, randomness and timers: the only `Date.now()`, random numbers and
//! `setTimeout` of the engine. Bound to the global scope, so they work in a window, an iframe
//! and in Node alike.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;

    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;
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
        return (random() * 2f64.powi(53)) as u64 ^ now_ms();
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
