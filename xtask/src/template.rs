//! Expands the solution's XML sources: `{{include PATH}}` lines and `{{…}}` placeholders.
//!
//! Placeholders:
//! - `{{guid:KEY}}`: a braced, lower-case UUID v5 of KEY, the same in every build;
//! - `{{webresource-file:NAME}}`: the zip part of web resource NAME, named as Dynamics exports
//!   name it (`/WebResources/` + NAME without its punctuation + its GUID in upper case);
//! - `{{version}}`, `{{managed}}`.

use std::collections::BTreeSet;
use std::path::Path;

use uuid::Uuid;

use crate::{fail, Result};

/// Values for the placeholders of one package.
pub(crate) struct Vars<'a> {
    /// Solution version, four parts.
    pub(crate) version: &'a str,
    /// Whether the package is the managed one.
    pub(crate) managed: bool,
}

/// An expanded source and the web resources its `{{webresource-file:…}}` placeholders name.
pub(crate) struct Expanded {
    pub(crate) text: String,
    pub(crate) web_resources: BTreeSet<String>,
}

/// The namespace of every GUID the solution has. Changing it would change every component id
/// and break upgrades: never change it.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:salesmanago-dynamics:solution")
}

/// The solution-wide GUID for `key`.
pub(crate) fn guid(key: &str) -> Uuid {
    Uuid::new_v5(&namespace(), key.as_bytes())
}

/// The zip part name Dynamics exports web resource `name` under.
pub(crate) fn web_resource_part(name: &str) -> String {
    let stem: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let id = guid(&format!("webresource:{name}")).hyphenated().to_string().to_uppercase();
    format!("/WebResources/{stem}{id}")
}

/// Reads `dir/file` and expands it. Comments are for the sources' readers: the packed XML
/// leaves them out, and the blank lines they leave.
pub(crate) fn expand_file(dir: &Path, file: &str, vars: &Vars) -> Result<Expanded> {
    let mut out = Expanded { text: String::new(), web_resources: BTreeSet::new() };
    include(dir, file, "", vars, &mut out, 0)?;
    out.text = without_comments(&out.text).map_err(|e| format!("solution/{file}: {}", e.0))?;
    Ok(out)
}

fn without_comments(xml: &str) -> Result<String> {
    let mut kept = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        kept.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("-->") else {
            return fail("a comment opens with <!-- and never closes");
        };
        rest = &rest[start + end + 3..];
    }
    kept.push_str(rest);
    let lines: Vec<&str> = kept.lines().filter(|l| !l.trim().is_empty()).collect();
    Ok(lines.join("\n") + "\n")
}

fn include(dir: &Path, file: &str, indent: &str, vars: &Vars, out: &mut Expanded, depth: u32) -> Result<()> {
    if depth > 8 {
        return fail(format!("solution/{file}: includes nest too deep (a cycle?)"));
    }
    let path = dir.join(file);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (number, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(target) = trimmed.strip_prefix("{{include ").and_then(|t| t.trim_end().strip_suffix("}}")) {
            let nested = format!("{indent}{}", &line[..line.len() - trimmed.len()]);
            include(dir, target.trim(), &nested, vars, out, depth + 1)?;
            continue;
        }
        let expanded = substitute(line, vars, &mut out.web_resources)
            .map_err(|e| format!("solution/{file}:{}: {}", number + 1, e.0))?;
        if !expanded.is_empty() {
            out.text.push_str(indent);
        }
        out.text.push_str(&expanded);
        out.text.push('\n');
    }
    Ok(())
}

fn substitute(line: &str, vars: &Vars, web_resources: &mut BTreeSet<String>) -> Result<String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return fail("a placeholder opens with {{ and never closes");
        };
        let placeholder = &after[..end];
        out.push_str(&value(placeholder, vars, web_resources)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn value(placeholder: &str, vars: &Vars, web_resources: &mut BTreeSet<String>) -> Result<String> {
    match placeholder.split_once(':') {
        Some(("guid", key)) if !key.is_empty() => Ok(format!("{{{}}}", guid(key).hyphenated())),
        Some(("webresource-file", name)) if !name.is_empty() => {
            web_resources.insert(name.to_owned());
            Ok(web_resource_part(name))
        }
        None if placeholder == "version" => Ok(vars.version.to_owned()),
        None if placeholder == "managed" => Ok(u8::from(vars.managed).to_string()),
        _ => fail(format!("unknown placeholder {{{{{placeholder}}}}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Vars = Vars { version: "1.2.3.0", managed: true };

    #[test]
    fn guids_are_stable_and_distinct() {
        assert_eq!(guid("form:x"), guid("form:x"));
        assert_ne!(guid("form:x"), guid("form:y"));
        // Pinned (Python: uuid5(uuid5(NAMESPACE_URL, "urn:salesmanago-dynamics:solution"), key)):
        // a change here changes every component id and breaks upgrades.
        assert_eq!(
            guid("webresource:new_/salesmanago/engine.js").hyphenated().to_string(),
            "a2ae92fa-b3fc-5bbc-934b-3c7334861263"
        );
    }

    #[test]
    fn web_resource_parts_are_named_as_exports_name_them() {
        let part = web_resource_part("new_/salesmanago/credentials.html");
        let id = guid("webresource:new_/salesmanago/credentials.html").hyphenated().to_string().to_uppercase();
        assert_eq!(part, format!("/WebResources/new_salesmanagocredentialshtml{id}"));
    }

    #[test]
    fn placeholders_are_substituted() {
        let mut names = BTreeSet::new();
        let line = r#"<a v="{{version}}" m="{{managed}}" id="{{guid:k}}" f="{{webresource-file:new_/a.js}}"/>"#;
        let out = substitute(line, &VARS, &mut names).unwrap_or_else(|e| panic!("{}", e.0));
        assert_eq!(
            out,
            format!(
                r#"<a v="1.2.3.0" m="1" id="{{{}}}" f="{}"/>"#,
                guid("k").hyphenated(),
                web_resource_part("new_/a.js")
            )
        );
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["new_/a.js"]);
    }

    #[test]
    fn comments_and_blank_lines_are_left_out() {
        let xml = "<!-- top -->\n<a>\n  <!-- one\n  two -->\n\n  <b/> <!-- tail -->\n</a>\n";
        assert_eq!(without_comments(xml).unwrap_or_else(|e| panic!("{}", e.0)), "<a>\n  <b/> \n</a>\n");
        assert!(without_comments("<a><!-- open</a>").is_err());
    }

    #[test]
    fn bad_placeholders_are_refused() {
        for line in ["{{guid:}}", "{{versions}}", "{{include x}}", "{{guid:x", "{{webresource-file:}}"] {
            assert!(substitute(line, &VARS, &mut BTreeSet::new()).is_err(), "{line}");
        }
    }
}
