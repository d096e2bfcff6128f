//! `customizations.xml` agrees with itself and with the engine: every reference resolves, every
//! button runs a command the engine knows under the engine's own label, every column the
//! engine names exists.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use salesmanago_dynamics::core::command::Command;
use salesmanago_dynamics::core::dataverse::schema::{self, SyncStatus};
use salesmanago_dynamics::core::i18n::{text, Lang, Message};
use support::{child_text, elements, parse, Package};

const COMMANDS_JS: &str = "$webresource:new_/salesmanago/commands.js";

fn customizations() -> String {
    Package::built("unmanaged").text("customizations.xml").to_owned()
}

/// Shipped web resources: name → id.
fn web_resources(doc: &roxmltree::Document) -> BTreeMap<String, String> {
    elements(doc.root(), "WebResource")
        .map(|w| (child_text(w, "Name").unwrap().to_owned(), child_text(w, "WebResourceId").unwrap().to_lowercase()))
        .collect()
}

/// The `<Entity>` whose `<Name>` is `name`.
fn entity<'a, 'i>(doc: &'a roxmltree::Document<'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    elements(doc.root(), "Entity")
        .find(|e| child_text(*e, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .unwrap_or_else(|| panic!("no entity {name}"))
}

#[test]
fn every_web_resource_reference_resolves_to_a_shipped_web_resource() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let shipped = web_resources(&doc);
    let mut references = 0;
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attribute in node.attributes() {
            if let Some(name) = attribute.value().strip_prefix("$webresource:") {
                assert!(shipped.contains_key(name), "{}: $webresource:{name} is not shipped", attribute.name());
                references += 1;
            }
        }
        let library = match node.tag_name().name() {
            "Library" => node.attribute("name"),
            "Handler" => node.attribute("libraryName"),
            _ => None,
        };
        if let Some(name) = library {
            assert!(shipped.contains_key(name), "form library {name} is not shipped");
            references += 1;
        }
    }
    for control in elements(doc.root(), "control").filter(|c| {
        c.attribute("classid").is_some_and(|c| c.eq_ignore_ascii_case("{9FDF5F91-88B1-47f4-AD53-C11EFC01A01D}"))
    }) {
        let url = elements(control, "Url").next().and_then(|u| u.text()).expect("web resource control Url");
        let id = elements(control, "WebResourceId").next().and_then(|u| u.text()).expect("WebResourceId");
        assert_eq!(shipped.get(url), Some(&id.to_lowercase()), "web resource control {url}");
        references += 1;
    }
    assert!(references >= 10, "only {references} references found: is the ribbon there?");
}

/// One ribbon button: where it is, the engine command it runs, and its labels.
#[derive(Debug)]
struct Button {
    location: String,
    function: String,
    parameters: Vec<String>,
    labels: BTreeMap<String, String>,
}

fn buttons(entity: roxmltree::Node) -> Vec<Button> {
    let ribbon = elements(entity, "RibbonDiffXml").next().expect("RibbonDiffXml");
    let labels: BTreeMap<&str, BTreeMap<String, String>> = elements(ribbon, "LocLabel")
        .map(|l| {
            let titles = elements(l, "Title")
                .map(|t| {
                    (t.attribute("languagecode").unwrap().to_owned(), t.attribute("description").unwrap().to_owned())
                })
                .collect();
            (l.attribute("Id").unwrap(), titles)
        })
        .collect();
    let commands: BTreeMap<&str, roxmltree::Node> =
        elements(ribbon, "CommandDefinition").map(|c| (c.attribute("Id").unwrap(), c)).collect();
    let defined_rules: BTreeSet<&str> = elements(ribbon, "RuleDefinitions")
        .flat_map(|r| elements(r, "EnableRule").chain(elements(r, "DisplayRule")))
        .filter_map(|r| r.attribute("Id"))
        .collect();

    let mut out = Vec::new();
    for action in elements(ribbon, "CustomAction") {
        let location = action.attribute("Location").unwrap().to_owned();
        for button in elements(action, "Button") {
            let id = button.attribute("Id").unwrap();
            for attribute in ["LabelText", "Alt", "ToolTipTitle", "ToolTipDescription"] {
                if let Some(label) = button.attribute(attribute).and_then(|l| l.strip_prefix("$LocLabels:")) {
                    let titles = labels.get(label).unwrap_or_else(|| panic!("{id}: no LocLabel {label}"));
                    for lcid in ["1033", "1045"] {
                        assert!(titles.get(lcid).is_some_and(|t| !t.is_empty()), "{id}: {label} lacks {lcid}");
                    }
                }
            }
            let command_id = button.attribute("Command").unwrap();
            let command = commands.get(command_id).unwrap_or_else(|| panic!("{id}: no CommandDefinition {command_id}"));
            for rule in elements(*command, "EnableRule").chain(elements(*command, "DisplayRule")) {
                let rule_id = rule.attribute("Id").unwrap();
                assert!(
                    rule_id.starts_with("Mscrm.") || defined_rules.contains(rule_id),
                    "{command_id}: rule {rule_id} is not defined"
                );
            }
            let functions: Vec<_> = elements(*command, "JavaScriptFunction").collect();
            assert_eq!(functions.len(), 1, "{command_id}: one JavaScriptFunction");
            assert_eq!(functions[0].attribute("Library"), Some(COMMANDS_JS), "{command_id}");
            let label = button.attribute("LabelText").and_then(|l| l.strip_prefix("$LocLabels:")).expect("LabelText");
            out.push(Button {
                location: location.clone(),
                function: functions[0].attribute("FunctionName").unwrap().to_owned(),
                parameters: elements(functions[0], "CrmParameter")
                    .map(|p| p.attribute("Value").unwrap().to_owned())
                    .collect(),
                labels: labels[label].clone(),
            });
        }
    }
    out
}

/// The engine command a ribbon function runs, as `commands.js` passes it:
/// `SalesManago.Contact.fetch` is `fetch: formCommand("contact.fetch")` under `Contact:`.
fn command_of(function: &str) -> Command {
    let (space, key) = function
        .strip_prefix("SalesManago.")
        .and_then(|rest| rest.split_once('.'))
        .unwrap_or_else(|| panic!("{function} is not SalesManago.<Namespace>.<function>"));
    let js = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/webresource/commands.js")).unwrap();
    let block = js.find(&format!("{space}: Object.freeze({{")).map(|at| &js[at..]);
    let line = block
        .and_then(|block| block.split_once(&format!("\n      {key}: ")))
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_else(|| panic!("{function} is not defined in commands.js"));
    let name = line
        .split_once("Command(\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| name)
        .unwrap_or_else(|| panic!("{function} runs no engine command: {line}"));
    Command::from_name(name).unwrap_or_else(|| panic!("{function} runs {name}, which the engine does not know"))
}

#[test]
fn every_button_runs_an_engine_command_under_the_engines_label() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let expected = [
        (
            "contact",
            "Mscrm.Form.contact.MainTab.Save.Controls._children",
            Command::FetchContact,
            &["PrimaryControl"][..],
        ),
        ("contact", "Mscrm.Form.contact.MainTab.Save.Controls._children", Command::SendContact, &["PrimaryControl"]),
        (
            "contact",
            "Mscrm.HomepageGrid.contact.MainTab.Management.Controls._children",
            Command::ExportSelected,
            &["SelectedControlSelectedItemIds", "SelectedControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::TestConnection,
            &["PrimaryControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::ExportAll,
            &["PrimaryControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::ExportChanges,
            &["PrimaryControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::PullConsents,
            &["PrimaryControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::PullChanges,
            &["PrimaryControl"],
        ),
        (
            "new_salesmanagointegration",
            "Mscrm.Form.new_salesmanagointegration.MainTab.Save.Controls._children",
            Command::PullActivity,
            &["PrimaryControl"],
        ),
    ];
    let mut found = Vec::new();
    for table in ["contact", schema::integration::TABLE] {
        for button in buttons(entity(&doc, table)) {
            let command = command_of(&button.function);
            for (lcid, lang) in [("1033", Lang::En), ("1045", Lang::Pl)] {
                assert_eq!(
                    button.labels[lcid],
                    text(&Message::CommandLabel(command), lang),
                    "{} in {lcid}",
                    button.function
                );
            }
            found.push((table, button.location, command, button.parameters));
        }
    }
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, l, c, p)| (*t, (*l).to_owned(), *c, p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn every_custom_rule_and_form_handler_is_in_commands_js() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let rules: Vec<_> = elements(doc.root(), "CustomRule").collect();
    assert!(!rules.is_empty(), "the contact form's buttons register the on-save handler through a CustomRule");
    for rule in rules {
        assert_eq!(rule.attribute("Library"), Some(COMMANDS_JS));
        assert!(rule.attribute("FunctionName").is_some_and(|f| f.starts_with("SalesManago.")));
    }
    let handlers: Vec<_> = elements(doc.root(), "Handler").collect();
    assert!(!handlers.is_empty(), "the integration form hands its context to the credential page on load");
    for handler in handlers {
        assert_eq!(handler.attribute("libraryName"), Some("new_/salesmanago/commands.js"));
        assert_eq!(handler.attribute("passExecutionContext"), Some("true"));
    }
}

#[test]
fn the_solution_defines_exactly_the_columns_the_engine_names() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    for (table, columns) in schema::CUSTOM_COLUMNS {
        let attributes: BTreeSet<String> = elements(entity(&doc, table), "attribute")
            .filter_map(|a| child_text(a, "LogicalName"))
            .filter(|n| n.starts_with("new_") && *n != schema::integration::ID)
            .map(str::to_owned)
            .collect();
        let expected: BTreeSet<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(attributes, expected, "custom columns of {table}");
    }
    let consent_columns: Vec<_> = elements(doc.root(), "LogicalName")
        .filter_map(|n| n.text())
        .filter(|n| schema::consent_name(n).is_some())
        .collect();
    assert!(consent_columns.is_empty(), "admins add consent columns; the solution ships none: {consent_columns:?}");
}

#[test]
fn the_integration_table_is_user_owned_with_hidden_credentials_on_its_form() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let table = entity(&doc, schema::integration::TABLE);
    assert_eq!(elements(table, "OwnershipTypeMask").next().and_then(|n| n.text()), Some("UserOwned"));
    let form = elements(table, "systemform").next().expect("a main form");
    for column in [
        schema::integration::API_SECRET,
        schema::integration::CLIENT_ID,
        schema::integration::OWNER,
        schema::integration::ENDPOINT,
    ] {
        let control = elements(form, "control")
            .find(|c| c.attribute("datafieldname") == Some(column))
            .unwrap_or_else(|| panic!("{column} is not on the form: formContext.getAttribute would return null"));
        let cell = control.ancestors().find(|a| a.has_tag_name("cell")).expect("in a cell");
        assert_eq!(cell.attribute("visible"), Some("false"), "{column} must be hidden");
    }
}

/// The manual set-up of SALESmanago's own plugin, as its help page (in Polish) describes it: the
/// table `new_salesmanagointegration` (user-owned, business process flows on) with its primary
/// name, and four single-line text columns. Consent columns (`new_consent_<name>`, Yes/No) are the admin's.
const MANUAL_SETUP: [(&str, &str); 5] = [
    ("new_name", "nvarchar"),
    ("new_apisecret", "nvarchar"),
    ("new_clientid", "nvarchar"),
    ("new_owner", "nvarchar"),
    ("new_endpoint", "nvarchar"),
];

/// Importing over the manual set-up changes no column's type (an import cannot), shrinks no text
/// column below the 100 characters a new single-line column gets, keeps the table's ownership
/// and process flows, and ships no consent column, so the admin's stay as they are.
#[test]
fn the_solution_upgrades_a_manual_set_up_in_place() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let table = entity(&doc, schema::integration::TABLE);
    for (column, manual_type) in MANUAL_SETUP {
        let attribute = elements(table, "attribute")
            .find(|a| elements(*a, "LogicalName").next().and_then(|n| n.text()) == Some(column))
            .unwrap_or_else(|| panic!("{column} of the manual set-up is not in the solution"));
        let text = |tag: &str| elements(attribute, tag).next().and_then(|n| n.text()).unwrap_or_default().to_owned();
        assert_eq!(text("Type"), manual_type, "{column} keeps its type");
        assert_eq!(text("Format"), "text", "{column} stays single-line text");
        let length: u32 = text("MaxLength").parse().expect("a length");
        assert!(length >= 100, "{column} is not shrunk below the default 100: {length}");
    }
    assert_eq!(elements(table, "IsBusinessProcessEnabled").next().and_then(|n| n.text()), Some("1"));
    assert_eq!(elements(table, "OwnershipTypeMask").next().and_then(|n| n.text()), Some("UserOwned"));
    let shipped_consents = elements(doc.root(), "LogicalName")
        .filter_map(|n| n.text())
        .filter(|n| schema::consent_name(n).is_some())
        .count();
    assert_eq!(shipped_consents, 0, "the admin's consent columns are left alone");
}

#[test]
fn sync_status_choices_are_the_engines() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let attribute = elements(entity(&doc, "contact"), "attribute")
        .find(|a| child_text(*a, "LogicalName") == Some(schema::contact::SYNC_STATUS))
        .expect("sync status column");
    let values: Vec<i32> =
        elements(attribute, "option").map(|o| o.attribute("value").unwrap().parse().unwrap()).collect();
    let expected: Vec<i32> = SyncStatus::ALL.iter().map(|s| s.value()).collect();
    assert_eq!(values, expected);
}

#[test]
fn component_ids_are_unique() {
    let xml = customizations();
    let doc = parse("customizations.xml", &xml);
    let mut seen = BTreeMap::new();
    let ids = doc.descendants().filter(|n| n.is_element()).filter_map(|n| {
        let id = match n.tag_name().name() {
            "formid" | "savedqueryid" => n.text(),
            "WebResourceId" if n.parent().is_some_and(|p| p.has_tag_name("WebResource")) => n.text(),
            "tab" | "section" | "cell" => n.attribute("id"),
            "Handler" => n.attribute("handlerUniqueId"),
            _ => None,
        };
        id.map(|id| (id.to_lowercase(), n.tag_name().name()))
    });
    for (id, tag) in ids {
        if let Some(previous) = seen.insert(id.clone(), tag) {
            panic!("{id} is used by a {previous} and a {tag}");
        }
    }
    assert!(seen.len() >= 10, "only {} ids found", seen.len());
}
