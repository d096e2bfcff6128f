//! Builds the engine: `cargo build` for wasm32, then the wasm-bindgen CLI (`--target
//! no-modules`), then `wasm-opt -Oz --low-memory-unused` from npm's binaryen.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use salesmanago_dynamics::core::command::Engine as ShippedEngine;
use salesmanago_dynamics::core::i18n::Lang;

use crate::{fail, Result};

/// The engine's wasm-bindgen glue and its optimised wasm.
pub(crate) struct Engine {
    /// The `--target no-modules` glue; it declares a local `wasm_bindgen`.
    pub(crate) glue: String,
    /// The module after `wasm-opt`.
    pub(crate) wasm: Vec<u8>,
}

const TARGET: &str = "wasm32-unknown-unknown";

/// The post-MVP features rustc's wasm32 target emits; wasm-opt must be told about them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Which engine to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// One of the engines the solution ships, in one language: only what its pages call.
    Shipped(ShippedEngine, Lang),
    /// The shipped engines in one, plus the exports tests and the bench call (feature
    /// `test-exports`).
    Test,
}

impl Flavour {
    /// Where its files go, under `target/`: `engine-export.pl`, `engine-test`.
    fn dir(self) -> String {
        match self {
            Flavour::Shipped(shipped, lang) => format!("{}.{}", shipped.stem(), lang.code()),
            Flavour::Test => "engine-test".into(),
        }
    }
}

pub(crate) fn build(root: &Path, flavour: Flavour) -> Result<Engine> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Panic locations name source files; without this, each dependency's file carries this
    // machine's cargo home (an absolute path, and kilobytes of the wasm).
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_default();
    let mut rustflags: Vec<String> =
        std::env::var("RUSTFLAGS").unwrap_or_default().split_whitespace().map(String::from).collect();
    let registries = std::fs::read_dir(cargo_home.join("registry").join("src")).into_iter().flatten().flatten();
    for registry in registries {
        rustflags.push(format!("--remap-path-prefix={}=", registry.path().display()));
    }
    let mut cargo = Command::new(cargo);
    cargo.current_dir(root).env_remove("RUSTFLAGS").env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f")).args([
        "build",
        "--profile",
        "engine",
        "--lib",
        "--package",
        "salesmanago-dynamics",
        "--target",
        TARGET,
    ]);
    match flavour {
        Flavour::Shipped(engine, lang) => {
            cargo.args(["--no-default-features", "--features", &format!("{},{}", engine.feature(), lang.code())])
        }
        Flavour::Test => cargo.args(["--features", "test-exports"]),
    };
    run(&mut cargo, "cargo build for wasm32 (is the target installed? run `npm run setup`)")?;
    let out = root.join("target").join(flavour.dir());
    std::fs::create_dir_all(&out)?;
    // Where cargo put it: `CARGO_TARGET_DIR` when set (relative to the workspace), else `target/`.
    let cargo_target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir));
    let built = cargo_target.join(format!("{TARGET}/engine/salesmanago_dynamics.wasm"));
    run(
        Command::new("wasm-bindgen")
            .args(["--target", "no-modules", "--no-typescript", "--out-name", "engine", "--out-dir"])
            .arg(&out)
            .arg(&built),
        "wasm-bindgen (installed at the pinned version by `npm run setup`)",
    )?;
    let bindgen_wasm = out.join("engine_bg.wasm");
    let optimised = out.join("engine_opt.wasm");
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    if !wasm_opt.exists() {
        return fail(format!("{} is missing: run `npm ci`", wasm_opt.display()));
    }
    let mut wasm_opt = Command::new(&wasm_opt);
    // `--low-memory-unused`: the module never addresses its first kilobyte (rustc puts the
    // stack's far end there, 1 MiB down), so constant offsets fold into loads and stores.
    // `--strip-producers`, `--strip-target-features`: the toolchain's notes, which no browser reads.
    wasm_opt
        .args(["-Oz", "--low-memory-unused", "--strip-producers", "--strip-target-features"])
        .args(WASM_FEATURES)
        .arg(&bindgen_wasm)
        .arg("-o")
        .arg(&optimised);
    if std::env::var_os("ENGINE_NAMES").is_some() {
        // For profiles (`ENGINE_NAMES=1 npm run bench -- --profile 1`): keep function names.
        wasm_opt.arg("-g");
    }
    run(&mut wasm_opt, "wasm-opt")?;
    let engine = Engine { glue: std::fs::read_to_string(out.join("engine.js"))?, wasm: std::fs::read(&optimised)? };
    println!(
        "{}: wasm {} B raw, {} B gzip (before wasm-opt: {} B raw){}",
        flavour.dir(),
        engine.wasm.len(),
        gzip_len(&engine.wasm)?,
        std::fs::metadata(&bindgen_wasm)?.len(),
        match flavour {
            Flavour::Shipped(..) if std::env::var_os("ENGINE_NAMES").is_some() => {
                "; with function names, so not the size that ships: build without ENGINE_NAMES before packaging".into()
            }
            Flavour::Shipped(shipped, _) => budget(shipped, engine.wasm.len()),
            Flavour::Test => String::new(),
        }
    );
    Ok(engine)
}

/// How `size` stands against the shipped engine's budget.
fn budget(engine: ShippedEngine, size: usize) -> String {
    let budget = engine.budget_bytes();
    match size.checked_sub(budget) {
        Some(over) if over > 0 => {
            format!("; OVER its budget of {budget} B by {over} B: `cargo test --test package` fails")
        }
        _ => format!("; budget {budget} B, {} B to spare", budget - size),
    }
}

/// The size of `bytes` gzipped at the best level, as a web server would send them.
pub(crate) fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().map_err(|e| format!("cannot start {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        fail(format!("{what} failed ({status})"))
    }
}
