//! The solution zips: their parts, content types, manifest and schema validity.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use salesmanago_dynamics::core::command::Engine;
use salesmanago_dynamics::core::i18n::Lang;
use support::{child_text, customizations_xsd, elements, parse, root, solution_version, Package, KINDS};

const WEB_RESOURCES: [&str; 16] = [
    "new_/salesmanago/commands.js",
    "new_/salesmanago/credentials.html",
    "new_/salesmanago/mapping.html",
    "new_/salesmanago/engine.en.js",
    "new_/salesmanago/engine.pl.js",
    "new_/salesmanago/engine-admin.en.js",
    "new_/salesmanago/engine-admin.pl.js",
    "new_/salesmanago/engine-export.en.js",
    "new_/salesmanago/engine-export.pl.js",
    "new_/salesmanago/engine-pull-consents.en.js",
    "new_/salesmanago/engine-pull-consents.pl.js",
    "new_/salesmanago/engine-pull-changes.en.js",
    "new_/salesmanago/engine-pull-changes.pl.js",
    "new_/salesmanago/engine-pull-activity.en.js",
    "new_/salesmanago/engine-pull-activity.pl.js",
    "new_/salesmanago/icon.svg",
];

/// `FileName` of every `<WebResource>`, by name.
fn web_resource_files(customizations: &str) -> Vec<(String, String)> {
    let doc = parse("customizations.xml", customizations);
    elements(doc.root(), "WebResource")
        .map(|w| {
            let name = child_text(w, "Name").expect("Name").to_owned();
            let file = child_text(w, "FileName").expect("FileName").to_owned();
            (name, file)
        })
        .collect()
}

#[test]
fn each_zip_holds_exactly_the_manifest_customizations_and_web_resources() {
    for kind in KINDS {
        let package = Package::built(kind);
        let files = web_resource_files(package.text("customizations.xml"));
        let names: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, BTreeSet::from(WEB_RESOURCES), "{kind}: web resources");
        let mut expected = vec!["[Content_Types].xml".to_owned(), "solution.xml".into(), "customizations.xml".into()];
        let mut resources: Vec<String> = files.iter().map(|(_, f)| f.trim_start_matches('/').to_owned()).collect();
        resources.sort();
        expected.extend(resources);
        assert_eq!(package.names, expected, "{kind}: parts and their order");
        for name in &package.names {
            assert!(!name.contains('\\') && !name.starts_with('/'), "{kind}: part name {name}");
        }
    }
}

#[test]
fn web_resource_parts_are_named_as_dynamics_exports_name_them() {
    let package = Package::built("unmanaged");
    let doc = parse("customizations.xml", package.text("customizations.xml"));
    for resource in elements(doc.root(), "WebResource") {
        let name = child_text(resource, "Name").expect("Name");
        let id = child_text(resource, "WebResourceId").expect("WebResourceId");
        let file = child_text(resource, "FileName").expect("FileName");
        let stem: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let guid = id.trim_matches(|c| c == '{' || c == '}').to_uppercase();
        assert_eq!(file, format!("/WebResources/{stem}{guid}"), "{name}");
    }
}

#[test]
fn each_engine_ships_in_each_language_under_its_language_code() {
    let package = Package::built("managed");
    let doc = parse("customizations.xml", package.text("customizations.xml"));
    for (engine, lang) in Engine::ALL.into_iter().flat_map(|engine| Lang::ALL.map(|lang| (engine, lang))) {
        let name = format!("new_/salesmanago/{}", engine.file(lang));
        let resource = elements(doc.root(), "WebResource")
            .find(|w| child_text(*w, "Name") == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} ships"));
        assert_eq!(child_text(resource, "LanguageCode"), Some(lang.lcid().to_string().as_str()), "{name}");
    }
}

#[test]
fn each_shipped_engine_is_within_its_budget() {
    let package = Package::built("managed");
    let files = web_resource_files(package.text("customizations.xml"));
    for (engine, lang) in Engine::ALL.into_iter().flat_map(|engine| Lang::ALL.map(|lang| (engine, lang))) {
        let name = format!("new_/salesmanago/{}", engine.file(lang));
        let (_, file) = files.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} ships"));
        let script = package.text(file.trim_start_matches('/'));
        let base64 = script
            .split_once("var WASM_BASE64 = \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(base64, _)| base64)
            .unwrap_or_else(|| panic!("{name} holds its wasm as `var WASM_BASE64 = \"…\"`"));
        // "\0asm", version 1: what a wasm module starts with.
        assert!(base64.starts_with("AGFzbQEAAAA"), "{name}: its base64 is not a wasm module");
        let size = base64.len() / 4 * 3 - base64.bytes().rev().take_while(|&b| b == b'=').count();
        let budget = engine.budget_bytes();
        assert!(
            size <= budget,
            "{name}: its wasm is {size} B, {} B over its budget of {budget} B (Engine::budget_bytes in \
             src/core/command.rs): find what grew with `twiggy top` on an `ENGINE_NAMES=1 cargo xtask build` \
             (whose names alone put it over: `cargo xtask build` without them before this test)",
            size - budget
        );
    }
}

#[test]
fn shipped_web_resources_are_the_built_files() {
    let built = root().join("target/webresources");
    for kind in KINDS {
        let package = Package::built(kind);
        for (name, file) in web_resource_files(package.text("customizations.xml")) {
            let source = built.join(name.trim_start_matches("new_/salesmanago/"));
            let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
            assert!(
                package.parts[file.trim_start_matches('/')] == bytes,
                "{kind}: {name} differs from {}",
                source.display()
            );
        }
    }
}

#[test]
fn content_types_cover_every_part() {
    for kind in KINDS {
        let package = Package::built(kind);
        let doc = parse("[Content_Types].xml", package.text("[Content_Types].xml"));
        let types = doc.root_element();
        assert_eq!(types.tag_name().namespace(), Some("http://schemas.openxmlformats.org/package/2006/content-types"));
        let defaults: BTreeSet<&str> = elements(types, "Default").filter_map(|d| d.attribute("Extension")).collect();
        let overrides: BTreeSet<&str> = elements(types, "Override").filter_map(|o| o.attribute("PartName")).collect();
        for name in package.names.iter().filter(|n| *n != "[Content_Types].xml") {
            let extension = name.rsplit_once('/').map_or(name.as_str(), |(_, f)| f).rsplit_once('.').map(|(_, e)| e);
            let covered =
                extension.is_some_and(|e| defaults.contains(e)) || overrides.contains(format!("/{name}").as_str());
            assert!(covered, "{kind}: no content type for {name}");
        }
        for part in &overrides {
            assert!(
                package.parts.contains_key(part.trim_start_matches('/')),
                "{kind}: override for a missing part {part}"
            );
        }
    }
}

#[test]
fn manifest_names_the_solution_version_publisher_and_root_components() {
    for (kind, managed) in [("unmanaged", "0"), ("managed", "1")] {
        let package = Package::built(kind);
        let doc = parse("solution.xml", package.text("solution.xml"));
        let manifest = elements(doc.root(), "SolutionManifest").next().expect("SolutionManifest");
        assert_eq!(child_text(manifest, "UniqueName"), Some("SalesManagoIntegration"));
        assert_eq!(child_text(manifest, "Version"), Some(solution_version().as_str()));
        assert_eq!(child_text(manifest, "Managed"), Some(managed), "{kind}");
        let publisher = elements(manifest, "Publisher").next().expect("Publisher");
        assert_eq!(
            child_text(publisher, "CustomizationPrefix"),
            Some("new"),
            "the original plugin's names need prefix new"
        );
        assert!(elements(manifest, "MissingDependencies").next().is_some());

        let roots: BTreeSet<(String, String, String)> = elements(manifest, "RootComponent")
            .map(|r| {
                let attr = |a| r.attribute(a).unwrap_or_default().to_owned();
                let name = r.attribute("schemaName").or(r.attribute("id")).unwrap_or_default().to_owned();
                (attr("type"), name, attr("behavior"))
            })
            .collect();
        let mut expected = BTreeSet::from([
            ("1".to_owned(), "new_salesmanagointegration".to_owned(), "0".to_owned()),
            ("1".into(), "contact".into(), "2".into()),
            ("1".into(), "new_salesmanagoactivity".into(), "0".into()),
        ]);
        expected.extend(WEB_RESOURCES.iter().map(|w| ("61".to_owned(), (*w).to_owned(), "0".to_owned())));
        // The field security profiles, by the ids customizations.xml gives them.
        let customizations = parse("customizations.xml", package.text("customizations.xml"));
        for profile in elements(customizations.root(), "FieldSecurityProfile") {
            let id = profile.attribute("fieldsecurityprofileid").expect("an id").to_owned();
            expected.insert(("70".to_owned(), id, "0".to_owned()));
        }
        expected.insert(("62".to_owned(), "new_salesmanago".to_owned(), "0".to_owned()));
        expected.insert(("80".to_owned(), "new_salesmanago".to_owned(), "0".to_owned()));
        for role in elements(customizations.root(), "Role").filter(|r| r.attribute("name").is_some()) {
            expected.insert(("20".to_owned(), role.attribute("id").expect("an id").to_owned(), "0".to_owned()));
        }
        assert_eq!(roots, expected, "{kind}: root components");
    }
}

#[test]
fn managed_and_unmanaged_differ_only_in_the_managed_flag() {
    let unmanaged = Package::built("unmanaged");
    let managed = Package::built("managed");
    assert_eq!(unmanaged.names, managed.names);
    for name in &unmanaged.names {
        if name == "solution.xml" {
            let flip = unmanaged.text(name).replace("<Managed>0</Managed>", "<Managed>1</Managed>");
            assert_eq!(flip, managed.text(name));
        } else {
            assert!(unmanaged.parts[name] == managed.parts[name], "{name} differs");
        }
    }
}

#[test]
fn customizations_validate_against_microsofts_schema() {
    let xsd = customizations_xsd();
    let package = Package::built("unmanaged");
    let file = root().join("target/customizations.validate.xml");
    std::fs::write(&file, package.text("customizations.xml")).expect("writable target/");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .expect("xmllint is installed by `npm run setup`");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "customizations.xml does not validate:\n{stderr}");
    assert!(stderr.contains("validates"), "{stderr}");
}

#[test]
fn manifest_and_content_types_are_well_formed() {
    let package = Package::built("unmanaged");
    for name in ["solution.xml", "[Content_Types].xml", "customizations.xml"] {
        parse(name, package.text(name));
    }
}

/// The relay key is a secured column, and the solution ships who may read and set it: users
/// read it (their browser sends it to the relay), administrators also set it.
#[test]
fn the_relay_key_is_secured_and_its_profiles_ship() {
    let package = Package::built("unmanaged");
    let doc = parse("customizations.xml", package.text("customizations.xml"));
    let secured = elements(doc.root(), "attribute")
        .find(|a| child_text(*a, "LogicalName") == Some("new_relaykey"))
        .and_then(|a| child_text(a, "IsSecured"));
    assert_eq!(secured, Some("1"));
    let grants: BTreeSet<(String, String, String, String, String)> = elements(doc.root(), "FieldSecurityProfile")
        .flat_map(|profile| {
            let name = profile.attribute("name").unwrap_or_default().to_owned();
            elements(profile, "FieldPermission")
                .map(|p| {
                    let text = |tag| child_text(p, tag).unwrap_or_default().to_owned();
                    (name.clone(), text("AttributeName"), text("CanRead"), text("CanUpdate"), text("CanCreate"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let grant = |name: &str, read: &str, update: &str, create: &str| {
        (name.to_owned(), "new_relaykey".to_owned(), read.to_owned(), update.to_owned(), create.to_owned())
    };
    assert_eq!(
        grants,
        BTreeSet::from([grant("SALESmanago users", "4", "0", "0"), grant("SALESmanago administrators", "4", "4", "4")])
    );
}

/// The roles give what each command reads and writes, and no more than that on contacts: a
/// user's buttons read the integration record (at organisation level: there is one) and the
/// contact metadata, and read and write contacts; an administrator keeps the record and runs the
/// jobs over every contact. Neither may delete contacts: that stays with the user's own role.
#[test]
fn the_roles_grant_what_the_commands_need() {
    let package = Package::built("unmanaged");
    let doc = parse("customizations.xml", package.text("customizations.xml"));
    let role = |name: &str| -> BTreeSet<(String, String)> {
        let node = elements(doc.root(), "Role").find(|r| r.attribute("name") == Some(name)).expect(name);
        elements(node, "RolePrivilege")
            .map(|p| {
                (
                    p.attribute("name").unwrap_or_default().to_owned(),
                    p.attribute("level").unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let grant = |name: &str, level: &str| (name.to_owned(), level.to_owned());
    let user = role("SALESmanago user");
    for needed in [
        grant("prvReadnew_salesmanagointegration", "Global"),
        grant("prvReadEntity", "Global"),
        grant("prvReadAttribute", "Global"),
        grant("prvReadContact", "Basic"),
        grant("prvWriteContact", "Basic"),
    ] {
        assert!(user.contains(&needed), "the user role lacks {needed:?}");
    }
    assert!(!user.iter().any(|(p, _)| p.starts_with("prvWritenew_") || p.starts_with("prvDelete")), "{user:?}");
    let admin = role("SALESmanago administrator");
    for action in ["Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share"] {
        assert!(admin.contains(&grant(&format!("prv{action}new_salesmanagointegration"), "Global")), "{action}");
    }
    assert!(admin.contains(&grant("prvWriteContact", "Global")), "the jobs write every contact");
    assert!(!admin.iter().any(|(p, _)| p == "prvDeleteContact"), "{admin:?}");
}

/// The app "SALESmanago" holds contacts and the integration record, its site map leads to both,
/// it holds the SALESmanago activity its contacts' timelines open, and it is for the two roles
/// the solution ships.
#[test]
fn the_app_leads_to_contacts_and_the_integration_record() {
    let package = Package::built("unmanaged");
    let doc = parse("customizations.xml", package.text("customizations.xml"));
    let app = elements(doc.root(), "AppModule").next().expect("an app");
    assert_eq!(child_text(app, "UniqueName"), Some("new_salesmanago"));
    let components: BTreeSet<(String, String)> = elements(app, "AppModuleComponent")
        .map(|c| {
            (
                c.attribute("type").unwrap_or_default().to_owned(),
                c.attribute("schemaName").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let component = |t: &str, n: &str| (t.to_owned(), n.to_owned());
    assert_eq!(
        components,
        BTreeSet::from([
            component("1", "contact"),
            component("1", "new_salesmanagointegration"),
            component("1", "new_salesmanagoactivity"),
            component("62", "new_salesmanago")
        ])
    );
    let map = elements(doc.root(), "AppModuleSiteMap").next().expect("a site map");
    assert_eq!(child_text(map, "SiteMapUniqueName"), Some("new_salesmanago"));
    let tables: Vec<&str> = elements(map, "SubArea").filter_map(|s| s.attribute("Entity")).collect();
    assert_eq!(tables, ["contact", "new_salesmanagointegration"]);
    let roles: BTreeSet<&str> = elements(doc.root(), "Role").filter_map(|r| r.attribute("id")).collect();
    let mapped: Vec<&str> = elements(app, "AppModuleRoleMaps")
        .flat_map(|m| elements(m, "Role"))
        .filter_map(|r| r.attribute("id"))
        .collect();
    assert_eq!(mapped.len(), 2);
    assert!(mapped.iter().all(|id| roles.contains(id)), "{mapped:?}");
}
