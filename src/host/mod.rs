//! The browser side (wasm32 only): everything that touches `wasm-bindgen`, `fetch` or `Xrm`.
//! Mechanical by design; decisions and text come from [`crate::core`].

mod browser;
mod commands;
mod dynamics;
mod exports;
#[cfg(feature = "admin")]
mod pages;
mod salesmanago;
#[cfg(feature = "test-exports")]
mod script;
#[cfg(feature = "test-exports")]
mod test_exports;
mod transport;

#[cfg(test)]
mod tests;
