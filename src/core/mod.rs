//! The pure core: no `wasm-bindgen`, `js-sys`, `web-sys`, `gloo`, clock or random numbers.
//! `tests/core_is_pure.rs` enforces that.

pub mod activity;
pub mod clock;
pub mod command;
pub mod consent;
pub mod credentials;
pub mod dataverse;
pub mod i18n;
pub mod integration;
pub mod job;
pub mod json;
pub mod mapping;
pub mod retry;
pub mod salesmanago;
pub mod scope;
pub mod sorted;
pub mod sync;
