//! Identical inputs give byte-identical zips: a second and a third build match `dist/`.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::process::Command;

use support::{root, zip_path, KINDS};

fn build_into(dist: &std::path::Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "build", "--dist"])
        .arg(dist)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo xtask build --dist {} failed", dist.display());
}

#[test]
fn building_twice_gives_byte_identical_zips() {
    let scratch = root().join("target/reproducible");
    let _ = std::fs::remove_dir_all(&scratch);
    let (first, second) = (scratch.join("first"), scratch.join("second"));
    build_into(&first);
    build_into(&second);
    for kind in KINDS {
        let a = std::fs::read(zip_path(&first, kind)).expect("first build's zip");
        let b = std::fs::read(zip_path(&second, kind)).expect("second build's zip");
        assert!(a == b, "{kind}: two builds differ");
        let dist = std::fs::read(zip_path(&root().join("dist"), kind)).expect("dist/ zip: run `npm run build` first");
        assert!(a == dist, "{kind}: differs from dist/ (was dist/ built from other sources?)");
    }
}
