//! SALESmanago for Dynamics 365: the engine behind the solution's command-bar buttons and
//! credential page.
//!
//! ```text
//!   Dynamics 365 web client                      this crate                         SALESmanago
//!  ┌──────────────────────┐   rows, formContext   ┌───────────────┐  HTTP requests  ┌─────────────┐
//!  │ commands.js          │ ───────────────────▶  │ host (wasm32) │ ──────────────▶ │  API v2     │
//!  │ credentials.html     │                       │   ▲      │    │ ◀────────────── │             │
//!  └──────────────────────┘ ◀─── writes back ───  │   │ plan │    │    responses    └─────────────┘
//!                                                 │ core (pure)   │
//!                                                 └───────────────┘
//! ```
//!
//! Data flows one way: the host reads from Dataverse, the [`core`] plans, the host calls
//! SALESmanago and writes the results back. The core does no I/O, reads no clock and holds
//! no globals, so every decision is tested natively with `cargo test`; the host (compiled
//! only for `wasm32`) binds `fetch` and `Xrm` and is kept mechanical.
//!
//! The engine (the `wasm32` build, but for its own unit tests) is `no_std`: std on
//! `wasm32-unknown-unknown` has no files, threads, clock or console to offer, and its panic
//! runtime formats every message only to drop it. Without it the engine is smaller by that
//! machinery (see the README's Sizes). The code names `alloc` and `core` paths, through
//! [`prelude`] for what std's prelude would give.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]
// One engine's build (`contact`, `admin`, `export`, `consents`, `changes` or `activity` alone,
// in one language, see `core::command::Engine`) leaves parts of the shared core that only the
// others use, and the imports for them; the full build (every test, the relay, and `npm run
// lint`'s first clippy) still finds what no one uses.
#![cfg_attr(
    not(all(
        feature = "contact",
        feature = "admin",
        feature = "export",
        feature = "consents",
        feature = "changes",
        feature = "activity",
        feature = "en",
        feature = "pl"
    )),
    allow(dead_code, unused_imports)
)]
#[cfg(not(any(feature = "en", feature = "pl")))]
compile_error!("build with at least one language: Cargo feature `en` or `pl` (core::i18n::Lang)");

extern crate alloc;

pub mod core;
mod prelude;

/// The allocator std would have used on `wasm32`.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug; in the browser it ends as the `RuntimeError` std's handler would also have
/// given (there is nowhere to print its message), without formatting the message first.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo) -> ! {
    ::core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
mod host;

/// The engine's version, as in `Cargo.toml` and the solution's version (`x.y.z.0`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
