//! Packs the solution: `solution/` sources plus built web resources → the unmanaged and
//! managed zips in the packed ("export") format Dynamics imports.
//!
//! The zips are byte-identical from identical inputs: fixed entry order, fixed timestamps and
//! permissions, GUIDs derived from names.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::template::{expand_file, Vars};
use crate::{fail, Result};

/// Every web resource lives in this virtual folder; its files are built into one directory.
const WEB_RESOURCE_FOLDER: &str = "new_/salesmanago/";

/// The solution's unique name, also the stem of the zips' names.
const UNIQUE_NAME: &str = "SalesManagoIntegration";

/// Packs both zips into `dist` and returns their paths.
pub(crate) fn pack(root: &Path, webresources: &Path, dist: &Path) -> Result<Vec<PathBuf>> {
    let version = format!("{}.0", salesmanago_dynamics::VERSION);
    std::fs::create_dir_all(dist)?;
    let mut zips = Vec::new();
    for managed in [false, true] {
        let parts = parts(&root.join("solution"), webresources, &Vars { version: &version, managed })?;
        let kind = if managed { "managed" } else { "unmanaged" };
        let path = dist.join(format!("{UNIQUE_NAME}_{}_{kind}.zip", version.replace('.', "_")));
        let partial = path.with_extension("zip.partial");
        std::fs::write(&partial, zip(&parts)?)?;
        std::fs::rename(&partial, &path)?;
        zips.push(path);
    }
    Ok(zips)
}

/// The zip's parts, in order: content types, manifest, customizations, web resources.
fn parts(sources: &Path, webresources: &Path, vars: &Vars) -> Result<Vec<(String, Vec<u8>)>> {
    let manifest = expand_file(sources, "solution.xml", vars)?;
    let customizations = expand_file(sources, "customizations.xml", vars)?;
    if !manifest.web_resources.is_empty() {
        return fail("solution/solution.xml must not name web-resource files");
    }
    let mut files = Vec::new();
    for name in &customizations.web_resources {
        let Some(file) = name.strip_prefix(WEB_RESOURCE_FOLDER) else {
            return fail(format!("web resource {name} is outside {WEB_RESOURCE_FOLDER}"));
        };
        let path = webresources.join(file);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("web resource {name}: cannot read {}: {e}", path.display()))?;
        let part = crate::template::web_resource_part(name);
        files.push((part.trim_start_matches('/').to_owned(), bytes));
    }
    // By part name, as `tests/package.rs` reads them (not by the resource's name, whose `-` and
    // `.` the part's name drops).
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts = vec![
        ("[Content_Types].xml".to_owned(), content_types(&files).into_bytes()),
        ("solution.xml".to_owned(), manifest.text.into_bytes()),
        ("customizations.xml".to_owned(), customizations.text.into_bytes()),
    ];
    parts.extend(files);
    Ok(parts)
}

/// `[Content_Types].xml`: XML parts by extension, each extension-less web-resource part by name.
fn content_types(web_resources: &[(String, Vec<u8>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\n  \
         <Default Extension=\"xml\" ContentType=\"application/octet-stream\" />\n",
    );
    for (part, _) in web_resources {
        xml.push_str(&format!("  <Override PartName=\"/{part}\" ContentType=\"application/octet-stream\" />\n"));
    }
    xml.push_str("</Types>\n");
    xml
}

fn zip(parts: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in parts {
        writer.start_file(name.as_str(), options)?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}
