//! The browser side (wasm32 only): everything that touches `wasm-bindgen`, `fetch` or `Xrm`.
//! Mechanical by design; decisions and text come from [`crate::core`].

mod browser;
mod commands;
mod dynamics;
mod exports;
mod salesmanago;
mod script;
mod transport;

#[cfg(test)]
mod tests;
