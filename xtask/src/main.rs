//! Build tooling: `cargo xtask build` turns the six engines (the contact pages', the
//! integration record's pages', the exports' and each pull's), each in English and in Polish, into
//! web resources and packs the Dataverse solution (with `--test-engine`, also
//! `target/engine-test/`, one engine with every engine's commands, both languages and the exports
//! only tests and the bench call, as each engine's script); `cargo xtask pack` only packs, from
//! web resources already built.
//!
//! Installing the tools it calls (wasm32 target, wasm-bindgen CLI, npm packages) is
//! `xtask/setup.sh`'s job; this program checks for them and says what is missing.

mod engine;
mod solution;
mod template;
mod webresources;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use engine::Flavour;
use salesmanago_dynamics::core::command::Engine as ShippedEngine;
use salesmanago_dynamics::core::i18n::Lang;

/// A build step failed; the text says what to do.
#[derive(Debug)]
pub(crate) struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// Fails with `message` (a macro-free `bail!`).
pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Failure(message.into()))
}

const USAGE: &str = "usage: cargo xtask build [--dist DIR] [--test-engine]
       cargo xtask pack --webresources DIR [--dist DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let (command, options) = args.split_first().ok_or_else(|| Failure(USAGE.into()))?;
    let dist = option(options, "--dist")?.map_or_else(|| root.join("dist"), PathBuf::from);
    match command.as_str() {
        "build" => {
            let engines = ShippedEngine::ALL
                .into_iter()
                .flat_map(|shipped| Lang::ALL.map(|lang| (shipped, lang)))
                .map(|(shipped, lang)| Ok((shipped, lang, engine::build(&root, Flavour::Shipped(shipped, lang))?)))
                .collect::<Result<Vec<_>>>()?;
            let webresources = root.join("target/webresources");
            webresources::assemble(&root, &engines, &webresources)?;
            report_zips(&solution::pack(&root, &webresources, &dist)?)?;
            if options.iter().any(|o| o == "--test-engine") {
                let engine = engine::build(&root, Flavour::Test)?;
                webresources::test_engine(&root, &engine, &root.join("target/engine-test"))?;
            }
            Ok(())
        }
        "pack" => {
            let webresources =
                option(options, "--webresources")?.map(PathBuf::from).ok_or_else(|| Failure(USAGE.into()))?;
            report_zips(&solution::pack(&root, &webresources, &dist)?)
        }
        _ => fail(USAGE),
    }
}

/// The value after `name` in `options`, if given.
fn option<'a>(options: &'a [String], name: &str) -> Result<Option<&'a str>> {
    match options.iter().position(|o| o == name) {
        None => Ok(None),
        Some(i) => match options.get(i + 1) {
            Some(value) => Ok(Some(value)),
            None => fail(format!("{name} needs a value\n{USAGE}")),
        },
    }
}

fn report_zips(zips: &[PathBuf]) -> Result<()> {
    for zip in zips {
        let size = std::fs::metadata(zip)?.len();
        println!("solution: {} ({size} B)", zip.display());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}
