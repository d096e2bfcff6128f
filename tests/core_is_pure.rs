//! The core stays pure: no browser or Dynamics bindings, no clock, no randomness. Time and
//! random values come in as arguments, so every decision replays natively.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "wasm_bindgen",
    "js_sys",
    "web_sys",
    "gloo",
    "crate::host",
    "SystemTime",
    "Instant::now",
    "Date::now",
    "getrandom",
    "thread_rng",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source tree") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_names_no_host_api_clock_or_randomness() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"), &mut files);
    assert!(files.len() >= 5, "src/core looks empty: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) && !line.trim_start().starts_with("//") {
                    found.push(format!("{}:{}: {word}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "the core must stay pure:\n{}", found.join("\n"));
}
