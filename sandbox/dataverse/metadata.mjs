// A slice of the metadata: EntityDefinitions, their Attributes (with a cast to one attribute
// type) and the option sets of choice and yes/no columns, with labels in the user's language.
// The lookups every row carries (_createdby_value, _modifiedby_value) are not listed as
// attributes: their attributes are Lookup attributes, a type the sandbox does not describe.
import { DvError, CODE_NOT_EXIST, badQuery, notAllowed, notFoundSegment, notSupported } from "./errors.mjs";
import { json } from "./odata.mjs";
import { BOOLEAN_LABELS } from "./tables.mjs";
import { guidFrom, labelOf } from "./util.mjs";
import { GUID_RE, INT32_MAX, INT32_MIN } from "./values.mjs";

const ATTRIBUTE_ODATA_TYPE = {
  String: "StringAttributeMetadata",
  Memo: "MemoAttributeMetadata",
  Boolean: "BooleanAttributeMetadata",
  DateTime: "DateTimeAttributeMetadata",
  DateOnly: "DateTimeAttributeMetadata",
  Integer: "IntegerAttributeMetadata",
  Picklist: "PicklistAttributeMetadata",
  Uniqueidentifier: "AttributeMetadata",
};

/** The metadata type of `col`: Status and Status Reason are their own kinds of choice. */
const odataTypeOf = (col) => (col.metaType ? `${col.metaType}AttributeMetadata` : ATTRIBUTE_ODATA_TYPE[col.type]);

function optionSetOf(t, col, lcid) {
  if (col.type === "Picklist") {
    return {
      MetadataId: guidFrom(`optionset:${t.logical}.${col.name}`),
      Name: `${t.logical}_${col.name}`,
      OptionSetType: col.metaType ?? "Picklist",
      IsGlobal: false,
      Options: (col.options || []).map((o) => ({ Value: o.value, Label: labelOf(o.label, lcid) })),
    };
  }
  const label = (flag) => {
    const option = col.options?.find((o) => o.value === flag || o.value === (flag ? 1 : 0));
    return labelOf(option ? option.label : BOOLEAN_LABELS[flag], lcid);
  };
  return {
    MetadataId: guidFrom(`optionset:${t.logical}.${col.name}`),
    Name: `${t.logical}_${col.name}`,
    OptionSetType: "Boolean",
    IsGlobal: false,
    TrueOption: { Value: 1, Label: label(true) },
    FalseOption: { Value: 0, Label: label(false) },
  };
}

function attributeMetadata(t, col, lcid, withOptionSet) {
  const type = col.metaType ?? (col.type === "DateOnly" ? "DateTime" : col.type);
  const a = {
    "@odata.type": `#Microsoft.Dynamics.CRM.${odataTypeOf(col)}`,
    MetadataId: guidFrom(`attribute:${t.logical}.${col.name}`),
    LogicalName: col.name,
    SchemaName: col.name,
    EntityLogicalName: t.logical,
    AttributeType: type,
    AttributeTypeName: { Value: `${type}Type` },
    DisplayName: labelOf(col.label, lcid),
    IsPrimaryId: col.name === t.primaryKey,
    IsPrimaryName: col.name === t.primaryName,
    IsCustomAttribute: !col.system && /^[a-z0-9]+_/.test(col.name),
    IsValidForCreate: !col.readOnly && !col.computed,
    IsValidForUpdate: !col.readOnly && !col.computed && col.name !== t.primaryKey,
    IsValidForRead: true,
    RequiredLevel: { Value: col.name === t.primaryKey ? "SystemRequired" : "None", CanBeChanged: col.name !== t.primaryKey },
  };
  if (col.maxLength !== undefined) {
    a.MaxLength = col.maxLength;
    a.Format = col.type === "Memo" ? "TextArea" : "Text";
  }
  if (col.type === "DateTime" || col.type === "DateOnly") {
    a.Format = col.type === "DateOnly" ? "DateOnly" : "DateAndTime";
    a.DateTimeBehavior = { Value: col.type === "DateOnly" ? "DateOnly" : "UserLocal" };
  }
  if (col.type === "Integer") {
    a.MinValue = INT32_MIN;
    a.MaxValue = INT32_MAX;
  }
  if (withOptionSet && (col.type === "Picklist" || col.type === "Boolean")) a.OptionSet = optionSetOf(t, col, lcid);
  return a;
}

function entityMetadata(t, lcid) {
  return {
    MetadataId: guidFrom(`entity:${t.logical}`),
    LogicalName: t.logical,
    SchemaName: t.logical,
    EntitySetName: t.entitySet,
    LogicalCollectionName: t.entitySet,
    PrimaryIdAttribute: t.primaryKey,
    PrimaryNameAttribute: t.primaryName,
    DisplayName: labelOf(t.label, lcid),
    IsCustomEntity: /^[a-z0-9]+_/.test(t.logical),
    ChangeTrackingEnabled: t.changeTracking === true,
  };
}

/** Keeps the selected properties (plus the ones Dataverse always returns); unknown names are ignored. */
function pickProperties(obj, select) {
  if (!select) return obj;
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (k.startsWith("@") || k === "MetadataId" || select.includes(k) || k === "OptionSet") out[k] = v;
  return out;
}

const listOf = (text) => (text == null ? null : text.split(",").map((s) => s.trim()).filter(Boolean));

/** `$expand=Attributes($select=a,b;$filter=…),…` → Map name → {select}; tolerant. */
function parseExpand(text) {
  const out = new Map();
  if (!text) return out;
  let depth = 0;
  let start = 0;
  const items = [];
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if ((c === "," && depth === 0) || i === text.length) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
  }
  for (const item of items) {
    const m = /^\s*([A-Za-z_][\w.]*)\s*(?:\(([\s\S]*)\))?\s*$/.exec(item);
    if (!m) continue;
    let select = null;
    for (const option of (m[2] || "").split(";")) {
      const eq = option.indexOf("=");
      if (eq > 0 && option.slice(0, eq).trim().toLowerCase() === "$select") select = listOf(option.slice(eq + 1));
    }
    out.set(m[1], { select });
  }
  return out;
}

function metadataKey(key, what) {
  if (key === null) return null;
  const m = /^\s*LogicalName\s*=\s*'((?:[^']|'')*)'\s*$/.exec(key);
  if (m) return { logicalName: m[1].replace(/''/g, "'") };
  if (GUID_RE.test(key.trim())) return { metadataId: key.trim().toLowerCase() };
  throw badQuery(`'${key}' is not a valid key for ${what}: use LogicalName='…' or a MetadataId.`);
}

/** The columns described as attributes: all but the lookups. */
const attributesOf = (t) => [...t.columns.values()].filter((c) => !c.lookup);

/** GET EntityDefinitions… (the only method allowed). */
export function metadataRoute(store, segs, ctx, q) {
  const { byName } = store;
  if (ctx.method !== "GET") throw notAllowed(ctx.method, "EntityDefinitions in the sandbox", "GET");
  const lcid = ctx.lcid;
  const wantOptionSets = /OptionSet/i.test(q.get("$expand") || "");
  const findTable = (key) => {
    const k = metadataKey(key, "EntityDefinitions");
    const t = k.logicalName !== undefined ? byName.get(k.logicalName) : [...byName.values()].find((x) => guidFrom(`entity:${x.logical}`) === k.metadataId);
    if (!t) throw new DvError(404, CODE_NOT_EXIST, `Could not find entity with ${k.logicalName !== undefined ? `logical name '${k.logicalName}'` : `MetadataId ${k.metadataId}`}.`);
    return t;
  };
  const entityBody = (t) => {
    const expand = parseExpand(q.get("$expand"));
    const entity = pickProperties(entityMetadata(t, lcid), listOf(q.get("$select")));
    const attrs = expand.get("Attributes");
    if (attrs) entity.Attributes = attributesOf(t).map((c) => pickProperties(attributeMetadata(t, c, lcid, wantOptionSets), attrs.select));
    return entity;
  };
  const [first, ...rest] = segs;
  if (first.key === null) {
    if (rest.length) throw notFoundSegment(rest[0].name);
    let list = [...byName.values()];
    const filter = q.get("$filter");
    if (filter) {
      // Any other filter is refused by name: answering every table would be answering wrongly.
      const m = /^\s*LogicalName\s+eq\s+'((?:[^']|'')*)'\s*$/.exec(filter);
      if (!m) throw notSupported(`this $filter on EntityDefinitions ('${filter}'): only LogicalName eq '<name>'`);
      list = list.filter((t) => t.logical === m[1].replace(/''/g, "'"));
    }
    return json(200, { "@odata.context": `${ctx.base}$metadata#EntityDefinitions`, value: list.map(entityBody) });
  }
  const t = findTable(first.key);
  if (rest.length === 0) return json(200, { "@odata.context": `${ctx.base}$metadata#EntityDefinitions/$entity`, ...entityBody(t) });
  if (rest[0].name !== "Attributes") throw notFoundSegment(rest[0].name);
  let cast = null;
  if (rest.length > 1) {
    if (rest.length > 2 || rest[1].key !== null || !rest[1].name.startsWith("Microsoft.Dynamics.CRM.")) throw notFoundSegment(rest[rest.length - 1].name);
    cast = rest[1].name.slice("Microsoft.Dynamics.CRM.".length);
    if (![...Object.values(ATTRIBUTE_ODATA_TYPE), "StateAttributeMetadata", "StatusAttributeMetadata"].includes(cast)) throw notFoundSegment(rest[1].name);
  }
  if (q.has("$filter")) throw notSupported(`$filter on Attributes ('${q.get("$filter")}'); read them all, or one by its LogicalName`);
  const select = listOf(q.get("$select"));
  const fits = (c) => !cast || cast === "AttributeMetadata" || odataTypeOf(c) === cast;
  const context = `${ctx.base}$metadata#EntityDefinitions('${t.logical}')/Attributes${cast ? `/Microsoft.Dynamics.CRM.${cast}` : ""}`;
  if (rest[0].key !== null) {
    const k = metadataKey(rest[0].key, "Attributes");
    const col = attributesOf(t).find((c) => (k.logicalName !== undefined ? c.name === k.logicalName : guidFrom(`attribute:${t.logical}.${c.name}`) === k.metadataId));
    if (!col || !fits(col)) throw new DvError(404, CODE_NOT_EXIST, `Could not find attribute ${k.logicalName ?? k.metadataId} on entity '${t.logical}'${cast ? ` of type ${cast}` : ""}.`);
    return json(200, { "@odata.context": `${context}/$entity`, ...pickProperties(attributeMetadata(t, col, lcid, wantOptionSets), select) });
  }
  const value = attributesOf(t).filter(fits).map((c) => pickProperties(attributeMetadata(t, c, lcid, wantOptionSets), select));
  return json(200, { "@odata.context": context, value });
}

