//! Assembles the web resources into one folder, named as in the solution
//! (`new_/salesmanago/<file>` is `<dir>/<file>`).
//!
//! The engines' scripts (`engine.en.js`, `engine.pl.js`, `engine-admin.en.js`, … one per engine
//! and language) are generated from `webresource/engine.template.js`: the wasm-bindgen glue and
//! the wasm (base64) go inside one closure, so each defines one global (`SalesManagoEngine`,
//! `SalesManagoAdminEngine`, `SalesManagoExportEngine`, `SalesManagoPullConsentsEngine`, …, the
//! same in either language).

use std::path::Path;

use base64::Engine as _;

use salesmanago_dynamics::core::command::Engine as ShippedEngine;
use salesmanago_dynamics::core::i18n::Lang;

use crate::engine::{gzip_len, Engine};
use crate::{fail, Result};

/// Files copied from `webresource/` unchanged but for `@@VERSION@@`.
const COPIED: &[&str] = &["commands.js", "credentials.html", "mapping.html", "icon.svg"];

/// Writes the web resources into `dir`, with each shipped engine's script.
pub(crate) fn assemble(root: &Path, engines: &[(ShippedEngine, Lang, Engine)], dir: &Path) -> Result<()> {
    let source = root.join("webresource");
    std::fs::create_dir_all(dir)?;
    let version = salesmanago_dynamics::VERSION;
    for file in COPIED {
        let text = std::fs::read_to_string(source.join(file))?;
        std::fs::write(dir.join(file), text.replace("@@VERSION@@", version))?;
    }
    let template = std::fs::read_to_string(source.join("engine.template.js"))?;
    for (shipped, lang, engine) in engines {
        let file = shipped.file(*lang);
        let js = engine_js(&template, engine, *shipped, &file, version)?;
        std::fs::write(dir.join(&file), &js)?;
        println!("{file}: {} B raw, {} B gzip", js.len(), gzip_len(js.as_bytes())?);
    }
    Ok(())
}

/// Writes the test engine into `dir` as every engine's script, so that a page finds every
/// command where it looks (never packed into a solution).
pub(crate) fn test_engine(root: &Path, engine: &Engine, dir: &Path) -> Result<()> {
    let template = std::fs::read_to_string(root.join("webresource").join("engine.template.js"))?;
    std::fs::create_dir_all(dir)?;
    for shipped in ShippedEngine::ALL {
        for lang in Lang::ALL {
            let file = shipped.file(lang);
            std::fs::write(
                dir.join(&file),
                engine_js(&template, engine, shipped, &file, salesmanago_dynamics::VERSION)?,
            )?;
        }
    }
    Ok(())
}

fn engine_js(template: &str, engine: &Engine, shipped: ShippedEngine, file: &str, version: &str) -> Result<String> {
    for marker in ["/*@@GLUE@@*/", "@@WASM_BASE64@@", "@@VERSION@@", "@@FILE@@", "@@GLOBAL@@"] {
        if !template.contains(marker) {
            return fail(format!("webresource/engine.template.js lacks the marker {marker}"));
        }
    }
    if !engine.glue.contains("let wasm_bindgen") {
        return fail(
            "the wasm-bindgen glue no longer declares `let wasm_bindgen`: check the --target no-modules output",
        );
    }
    let base64 = base64::engine::general_purpose::STANDARD.encode(&engine.wasm);
    let glue = GLUE.iter().fold(engine.glue.trim_end().to_owned(), |glue, (newer, older)| glue.replace(newer, older));
    Ok(template
        .replace("@@VERSION@@", version)
        .replace("@@FILE@@", file)
        .replace("@@GLOBAL@@", shipped.global())
        .replace("@@WASM_BASE64@@", &base64)
        .replace("/*@@GLUE@@*/", &glue))
}

/// What Microsoft's solution checker refuses in the wasm-bindgen glue, each with its equal.
/// `xtask/checker.mjs` (in `npm run lint`) runs the checker's rules on the shipped engine.js
/// and fails on whatever a new glue brings.
const GLUE: &[(&str, &str)] = &[
    // Optional chaining is ES2020; the checker parses web resources as ES2018. `exec` answers
    // an array or null.
    (r"/\[object ([^\]]+)\]/.exec(toStringOutput)?.[1]", r"(/\[object ([^\]]+)\]/.exec(toStringOutput) || [])[1]"),
    // The global `toString` is `Object.prototype.toString`; by its bare name, the checker's
    // do-not-make-parent-assumption takes it for a parent window (it looks names up with `in`
    // on a plain object, which holds `toString`).
    ("const toStringOutput = toString.call(val);", "const toStringOutput = Object.prototype.toString.call(val);"),
];
