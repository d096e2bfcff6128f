// Reads what the sandbox needs from the built solution's customizations.xml: each table's
// columns, forms and RibbonDiffXml, and the web resources. DOM Level 2 only, so the same code
// runs in the browser (DOMParser) and in Node (@xmldom/xmldom).

/** The element children of `element` named `tag` (all element children when `tag` is omitted). */
export function children(element, tag) {
  const out = [];
  for (let node = element ? element.firstChild : null; node; node = node.nextSibling) {
    if (node.nodeType === 1 && (!tag || node.nodeName === tag)) out.push(node);
  }
  return out;
}

/** The first element child of `element` named `tag`, or null. */
export function child(element, tag) {
  return children(element, tag)[0] || null;
}

/** Follows a path of child names from `element`. */
export function path(element, ...tags) {
  return tags.reduce((at, tag) => child(at, tag), element);
}

function text(element) {
  return element ? element.textContent.trim() : "";
}

/** `{lcid: text}` from elements carrying `description` and `languagecode` attributes. */
export function localized(elements) {
  const out = {};
  for (const e of elements) out[Number(e.getAttribute("languagecode"))] = e.getAttribute("description");
  return out;
}

/** The text of `labels` for `lcid`, falling back to English, then to any. */
export function pick(labels, lcid) {
  if (!labels) return "";
  return labels[lcid] ?? labels[1033] ?? Object.values(labels)[0] ?? "";
}

/** Customizations.xml `<Type>` → Web API AttributeType; types the sandbox does not store are absent. */
const TYPES = {
  nvarchar: "String",
  ntext: "Memo",
  bit: "Boolean",
  datetime: "DateTime",
  picklist: "Picklist",
  int: "Integer",
  primarykey: "Uniqueidentifier",
};

/** Customizations.xml `<Type>`s of lookup columns (read apart: the sandbox stores them as `_<name>_value`). */
const LOOKUP_TYPES = new Set(["lookup", "customer", "owner"]);

/** A lookup column: `{logicalName, type, label, targets}` (targets: the object type codes `<LookupTypes>` names; none for regarding). */
function lookup(element) {
  const type = text(child(element, "Type"));
  if (!LOOKUP_TYPES.has(type)) return null;
  return {
    logicalName: text(child(element, "LogicalName")),
    type,
    label: localized(children(path(element, "displaynames"), "displayname")),
    targets: children(path(element, "LookupTypes"), "LookupType").map((t) => Number(text(t))),
  };
}

function attribute(element) {
  const type = TYPES[text(child(element, "Type"))];
  if (!type) return null;
  const column = {
    logicalName: text(child(element, "LogicalName")),
    type,
    label: localized(children(path(element, "displaynames"), "displayname")),
  };
  const maxLength = text(child(element, "MaxLength"));
  if (maxLength && (type === "String" || type === "Memo")) column.maxLength = Number(maxLength);
  if (type === "DateTime" && text(child(element, "Format")) === "date") column.type = "DateOnly";
  const options = children(path(element, "optionset", "options"), "option");
  if (type === "Picklist" && options.length) {
    column.options = options.map((o) => ({
      value: Number(o.getAttribute("value")),
      label: localized(children(child(o, "labels"), "label")),
    }));
  }
  return column;
}

/**
 * The solution: `entities` (logical name → {logicalName, label, entitySet, primaryKey,
 * primaryName, isActivity, columns: Map, lookups: Map, forms: Element[], ribbon: Element|null}; a
 * table the solution only extends, such as contact, has null entitySet and keys, and no labels),
 * `webresources` (name → {name, fileName, type}) and `siteMap` (the app's navigation: [{id,
 * entity, titles}]).
 */
export function readSolution(doc) {
  const root = doc.documentElement;
  const entities = new Map();
  for (const entity of children(child(root, "Entities"), "Entity")) {
    const info = path(entity, "EntityInfo", "entity");
    const logicalName = (info ? info.getAttribute("Name") : text(child(entity, "Name"))).toLowerCase();
    const columns = new Map();
    const lookups = new Map();
    let primaryKey = null;
    let primaryName = null;
    for (const element of children(path(info, "attributes"), "attribute")) {
      const column = attribute(element);
      if (column) columns.set(column.logicalName, column);
      const reference = lookup(element);
      if (reference) lookups.set(reference.logicalName, reference);
      const logical = text(child(element, "LogicalName"));
      if (text(child(element, "Type")) === "primarykey") primaryKey = logical;
      if (text(child(element, "DisplayMask")).split("|").includes("PrimaryName")) primaryName = logical;
    }
    const forms = [];
    for (const group of children(child(entity, "FormXml"), "forms")) {
      for (const systemform of children(group, "systemform")) {
        const form = child(systemform, "form");
        if (form) forms.push({ type: group.getAttribute("type"), form });
      }
    }
    entities.set(logicalName, {
      logicalName,
      label: localized(children(path(info, "LocalizedNames"), "LocalizedName")),
      entitySet: text(child(info, "EntitySetName")) || null,
      primaryKey,
      primaryName,
      isActivity: text(child(info, "IsActivity")) === "1",
      columns,
      lookups,
      forms,
      ribbon: child(entity, "RibbonDiffXml"),
    });
  }
  const webresources = new Map();
  for (const resource of children(child(root, "WebResources"), "WebResource")) {
    const name = text(child(resource, "Name"));
    webresources.set(name, { name, fileName: text(child(resource, "FileName")), type: Number(text(child(resource, "WebResourceType"))) });
  }
  // The app's site map: each SubArea's table and titles, in order.
  const siteMap = [];
  for (const map of children(child(root, "AppModuleSiteMaps"), "AppModuleSiteMap")) {
    for (const area of children(child(map, "SiteMap"), "Area")) {
      for (const group of children(area, "Group")) {
        for (const subArea of children(group, "SubArea")) {
          const titles = {};
          for (const title of children(child(subArea, "Titles"), "Title")) titles[Number(title.getAttribute("LCID"))] = title.getAttribute("Title");
          siteMap.push({ id: subArea.getAttribute("Id"), entity: subArea.getAttribute("Entity"), titles });
        }
      }
    }
  }
  return { entities, webresources, siteMap };
}

/** The text of a `$LocLabels:<id>` reference in `ribbon` for `lcid`; other text as is. */
export function locLabel(ribbon, reference, lcid) {
  if (!reference || !reference.startsWith("$LocLabels:")) return reference || "";
  const id = reference.slice("$LocLabels:".length);
  const label = children(path(ribbon, "LocLabels"), "LocLabel").find((l) => l.getAttribute("Id") === id);
  return label ? pick(localized(children(child(label, "Titles"), "Title")), lcid) : "";
}

/** The web resource path a `$webresource:<name>` reference points at, or null. */
export function webresourceUrl(reference) {
  return reference && reference.startsWith("$webresource:") ? "/WebResources/" + reference.slice("$webresource:".length) : null;
}
