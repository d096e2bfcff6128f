//! Reads the built solution zips for the checks in `tests/`.
#![allow(dead_code, unreachable_pub)] // each test binary uses part of it; `pub` for the binaries

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Both packages, as `npm run build` leaves them in `dist/`.
pub const KINDS: [&str; 2] = ["unmanaged", "managed"];

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The solution version: the crate version with a fourth part.
pub fn solution_version() -> String {
    format!("{}.0", salesmanago_dynamics::VERSION)
}

/// The zip of `kind` in `dist`.
pub fn zip_path(dist: &Path, kind: &str) -> PathBuf {
    dist.join(format!("SalesManagoIntegration_{}_{kind}.zip", solution_version().replace('.', "_")))
}

/// Microsoft's solution schema, kept in `tests/xsd/`.
pub fn customizations_xsd() -> PathBuf {
    let xsd = root().join("tests/xsd/CustomizationsSolution.xsd");
    assert!(xsd.exists(), "{} is missing from the repository", xsd.display());
    xsd
}

/// A solution zip's parts, in archive order.
pub struct Package {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub parts: BTreeMap<String, Vec<u8>>,
}

impl Package {
    /// The built package of `kind` (`unmanaged` or `managed`).
    pub fn built(kind: &str) -> Package {
        Package::open(&zip_path(&root().join("dist"), kind))
    }

    pub fn open(path: &Path) -> Package {
        let file =
            std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}; run `npm run build` first", path.display()));
        let mut archive = zip::ZipArchive::new(file).expect("a readable zip");
        let mut names = Vec::new();
        let mut parts = BTreeMap::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).expect("a readable entry");
            let name = entry.name().expect("a UTF-8 entry name").into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("an inflatable entry");
            assert!(parts.insert(name.clone(), bytes).is_none(), "{name} twice");
            names.push(name);
        }
        Package { path: path.to_owned(), names, parts }
    }

    /// A part as UTF-8 text.
    pub fn text(&self, name: &str) -> &str {
        let bytes = self.parts.get(name).unwrap_or_else(|| panic!("{} has no part {name}", self.path.display()));
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"))
    }
}

/// Parses XML, panicking with the part's name on error.
pub fn parse<'a>(name: &str, text: &'a str) -> roxmltree::Document<'a> {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{name} is not well-formed XML: {e}"))
}

/// Elements named `tag` below `node`.
pub fn elements<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    tag: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.descendants().filter(move |n| n.has_tag_name(tag))
}

/// The text of the first child element `tag` of `node`.
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    node.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text())
}
