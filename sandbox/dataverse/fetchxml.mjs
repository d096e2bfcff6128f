// FetchXML through the Web API (`GET <set>?fetchXml=<URL-encoded query>`), a small strict subset,
// and the recycle bin it reads with `datasource="bin"`.
//
// What Microsoft documents ("Use FetchXml to retrieve data", learn.microsoft.com/power-apps/
// developer/data-platform/fetchxml/retrieve-data, and "Page results using FetchXml"):
// - The answer is `{"@odata.context": "…$metadata#<set>(<attributes>,<primary key>)", "value":
//   [{"@odata.etag", <attributes>, <primary key>}]}`; "Unlike queries that use the OData syntax,
//   FetchXML queries sent using Web API don't return properties with null values."
// - Without `top`, up to 5,000 rows; `top` at most 5,000; `count` (page size, at most 5,000) and
//   `page` page the results ("Don't use the fetch element top attribute with paging"). With
//   `Prefer: odata.include-annotations="Microsoft.Dynamics.CRM.morerecords"` (or "*") the answer
//   says whether more rows match. A query that gets no paging cookie falls back to simple
//   paging: the sandbox never returns one (`paging-cookie` is refused).
// - Microsoft's own paging example sends `&$count=true` with fetchXml and its answer has no
//   count: `$count` is accepted and ignored; every other query option is refused with fetchXml.
// - A column is named by its logical name: a lookup by its attribute (`createdby`), never by the
//   Web API's `_createdby_value` (which is the property the answer has). An unknown one:
//   0x80041103, "'<table>' entity doesn't contain attribute with Name = '<name>' and NameMapping
//   = 'Logical'." (Dataverse's message as developers quote it).
//
// The subset (anything else is refused with 400 naming the element, attribute or operator, so
// that no query is ever answered as if it meant something else):
//   <fetch [datasource="bin"] [top=N | count=N [page=N]] [mapping="logical"] [version]
//          [output-format="xml-platform"] [distinct="false"] [no-lock]>
//     <entity name="<the set's table>">
//       (<attribute name=…/> | <all-attributes/>)+
//       <filter [type="and"|"or"]> (<condition …/> | <filter …>)* </filter>*
//       <order attribute=… [descending="true"|"false"]/>*
//     </entity>
//   </fetch>
//   <condition attribute=… operator="eq"|"ne" value=…/>, operator="in" with <value>…</value>+,
//   operator="null"|"not-null" with no value. String comparisons ignore case (as SQL Server's
//   collation); `ne` includes the rows where the column is null (as the sandbox's $filter, after
//   Dataverse); DateTime and DateOnly columns take only null / not-null.
//
// The recycle bin ("Restore deleted records with code", learn.microsoft.com/power-apps/developer/
// data-platform/restore-deleted-records, and the admin page "Restore deleted Microsoft Dataverse
// table records", …/power-platform/admin/restore-deleted-table-records): with the environment
// setting "Keep deleted Dataverse records" on, a deleted row of a table with the recycle bin is
// kept for the retention period (30 days by default: "The period of time can be up to 30 days")
// and, with the Web API, "you can only retrieve deleted records using FetchXml", setting the fetch
// element's `datasource` to 'bin'. The answer has the table's own columns and no deletion time (a
// developer's probe of a real org: the bin's rows have only the entity's attributes, no
// deletedon or deletedby); the sandbox answers them in the shape of a live read.
// - `datasource` other than 'bin' or 'retained': "The only valid value for datasource is
//   'retained' or 'bin'" (the same probe; the status and code, 400 and 0x80060888, are assumed).
//   'retained' (long-term retention) is refused as something the sandbox does not do.
// - A table without the recycle bin: Microsoft: "If the recycle bin isn't enabled for a table, you
//   won't find any records eligible to be restored" - the sandbox answers no rows.
// - The setting off for the environment: nothing documents the answer. Turning it off deletes
//   the organization's RecycleBinConfig row and with it every table's ("This triggers deleting
//   all the records in the RecycleBinConfig table"), so no table has the bin and, as above, the
//   sandbox answers no rows (`whenOff: "empty"`, the default). `whenOff: "error"` answers an
//   ASSUMED refusal instead (400, 0x80060888, a message saying the setting is off), for a client
//   that must cope with either.
import { DOMParser } from "@xmldom/xmldom";
import { DvError, CODE_NO_ATTRIBUTE, badQuery } from "./errors.mjs";
import { contextUrl, json, project } from "./odata.mjs";
import { sortKey } from "./query.mjs";
import { collate, idOrder, sortIds } from "./util.mjs";
import { GUID_RE, INT32_MAX, INT32_MIN } from "./values.mjs";

export const FETCH_PARAM = "fetchXml";
const MAX_ROWS = 5000;
const OPERATORS = ["eq", "ne", "in", "null", "not-null"];
const FETCH_ATTRIBUTES = ["datasource", "top", "count", "page", "mapping", "version", "output-format", "distinct", "no-lock"];
const SUBSET = "the sandbox's FetchXML has <fetch [datasource='bin'] [top|count [page]]><entity name><attribute name/>|<all-attributes/> <filter type='and|or'> with <condition attribute operator='eq|ne|in|null|not-null' value> and nested <filter>, <order attribute [descending]></entity></fetch>";

const unsupported = (what) => badQuery(`The sandbox does not support ${what} in fetchXml (${SUBSET}).`);
const invalid = (message) => badQuery(`Invalid fetchXml: ${message}`);
const noAttribute = (t, name) => new DvError(400, CODE_NO_ATTRIBUTE, `'${t.logical}' entity doesn't contain attribute with Name = '${name}' and NameMapping = 'Logical'.`);

/** The columns of `t` by their FetchXML (logical attribute) name: a lookup by its attribute. */
function fetchNames(t) {
  const byName = new Map();
  for (const col of t.columns.values()) {
    if (col.lookup) byName.set(col.lookup.attribute, col);
    else byName.set(col.name, col);
  }
  return byName;
}

// ----- parsing -----------------------------------------------------------------------------------

function parseXml(text) {
  if (!text.trim()) throw invalid("the query is empty.");
  let doc;
  let reported = null; // the parser's own words, without its wrapping
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        reported ??= String(message).split("\n")[0];
        throw new Error(message);
      },
    }).parseFromString(text, "text/xml");
  } catch (error) {
    throw invalid(`it is not well-formed XML (${reported ?? String(error?.message ?? error).split("\n")[0]}).`);
  }
  const root = doc.documentElement;
  if (!root) throw invalid("it has no root element.");
  return root;
}

/** The element children of `el`; text must be blank, comments are skipped, anything else refused. */
function children(el) {
  const out = [];
  for (const node of Array.from(el.childNodes)) {
    if (node.nodeType === 1) out.push(node);
    else if (node.nodeType === 3 && node.nodeValue.trim() === "") continue;
    else if (node.nodeType === 8) continue;
    else if (node.nodeType === 3) throw invalid(`<${el.nodeName}> cannot contain the text '${node.nodeValue.trim()}'.`);
    else throw unsupported(`the ${node.nodeName} node inside <${el.nodeName}>`);
  }
  return out;
}

/** The attributes of `el` as an object; one outside `allowed` is refused by name. */
function attributesOf(el, allowed) {
  const out = {};
  for (const a of Array.from(el.attributes)) {
    if (!allowed.includes(a.name)) throw unsupported(`the attribute '${a.name}' of <${el.nodeName}>`);
    out[a.name] = a.value;
  }
  return out;
}

function positive(name, text, max) {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) throw invalid(`the ${name} attribute of <fetch> must be a positive whole number, not '${text}'.`);
  const n = Number(text);
  if (max && n > max) throw invalid(`the ${name} attribute of <fetch> cannot exceed ${max} (it is ${n}).`);
  return n;
}

function booleanText(text, where) {
  const v = String(text).trim().toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw invalid(`${where} must be 'true' or 'false', not '${text}'.`);
}

/** The comparable key of a condition's value for `col`; throws a 400 naming what is wrong. */
function valueKey(t, col, name, text) {
  switch (col.type) {
    case "String":
    case "Memo":
      return collate(text);
    case "Uniqueidentifier": {
      const bare = text.trim().replace(/^\{(.*)\}$/, "$1");
      if (!GUID_RE.test(bare)) throw invalid(`the value '${text}' of the condition on '${name}' is not a GUID.`);
      return bare.toLowerCase();
    }
    case "Integer":
    case "Picklist": {
      const n = Number(text.trim());
      if (!/^\s*-?\d+\s*$/.test(text) || n < INT32_MIN || n > INT32_MAX) throw invalid(`the value '${text}' of the condition on '${name}' is not a whole number.`);
      return n;
    }
    case "Boolean":
      return booleanText(text, `the value of the condition on '${name}'`);
    default:
      throw unsupported(`a condition comparing the ${col.type} column '${name}' of '${t.logical}' to a value (only null and not-null)`);
  }
}

/** The comparable key of a stored value of `col` (null stays null). */
function rowKey(col, value) {
  if (value == null) return null;
  if (col.type === "String" || col.type === "Memo") return collate(value);
  if (col.type === "Uniqueidentifier") return String(value).toLowerCase();
  return value;
}

/** A condition as {test(row), keys?}: `keys` when it holds the primary key to a few values. */
function parseCondition(t, names, el) {
  const a = attributesOf(el, ["attribute", "operator", "value"]);
  if (!a.attribute) throw invalid("a <condition> needs an attribute.");
  if (!a.operator) throw invalid(`the <condition> on '${a.attribute}' needs an operator.`);
  const col = names.get(a.attribute);
  if (!col) throw noAttribute(t, a.attribute);
  const op = a.operator;
  if (!OPERATORS.includes(op)) throw unsupported(`the operator '${op}' (of the condition on '${a.attribute}')`);
  const values = [];
  for (const child of children(el)) {
    if (child.nodeName !== "value") throw unsupported(`the element <${child.nodeName}> inside <condition>`);
    attributesOf(child, []);
    const inner = Array.from(child.childNodes);
    if (inner.some((n) => n.nodeType !== 3)) throw invalid("a <value> holds only text.");
    values.push(inner.map((n) => n.nodeValue).join(""));
  }
  const name = col.name;
  if (op === "null" || op === "not-null") {
    if (a.value !== undefined || values.length) throw invalid(`the operator '${op}' of the condition on '${a.attribute}' takes no value.`);
    return { test: op === "null" ? (row) => row[name] == null : (row) => row[name] != null };
  }
  if (op === "in") {
    if (a.value !== undefined) throw invalid(`the operator 'in' of the condition on '${a.attribute}' takes <value> elements, not a value attribute.`);
    if (values.length === 0) throw invalid(`the operator 'in' of the condition on '${a.attribute}' needs at least one <value>.`);
    const set = new Set(values.map((v) => valueKey(t, col, a.attribute, v)));
    return { test: (row) => set.has(rowKey(col, row[name])), keys: name === t.primaryKey ? set : undefined };
  }
  if (a.value === undefined) throw invalid(`the operator '${op}' of the condition on '${a.attribute}' needs a value attribute.`);
  if (values.length) throw invalid(`the operator '${op}' of the condition on '${a.attribute}' takes a value attribute, not <value> elements.`);
  const key = valueKey(t, col, a.attribute, a.value);
  if (op === "eq") return { test: (row) => rowKey(col, row[name]) === key, keys: name === t.primaryKey ? new Set([key]) : undefined };
  return { test: (row) => rowKey(col, row[name]) !== key }; // ne: a null column is not equal
}

/** A filter as {test(row), keys?}; `keys` narrows an `and` to the rows a primary-key condition names. */
function parseFilter(t, names, el) {
  const { type = "and" } = attributesOf(el, ["type"]);
  if (type !== "and" && type !== "or") throw invalid(`the type of a <filter> is 'and' or 'or', not '${type}'.`);
  const parts = [];
  for (const child of children(el)) {
    if (child.nodeName === "condition") parts.push(parseCondition(t, names, child));
    else if (child.nodeName === "filter") parts.push(parseFilter(t, names, child));
    else throw unsupported(`the element <${child.nodeName}> inside <filter>`);
  }
  return combine(type, parts);
}

function combine(type, parts) {
  const tests = parts.map((p) => p.test);
  if (type === "or") return { test: (row) => tests.length === 0 || tests.some((f) => f(row)) };
  let keys;
  for (const p of parts) {
    if (!p.keys) continue;
    keys = keys ? new Set([...keys].filter((k) => p.keys.has(k))) : p.keys;
  }
  return { test: (row) => tests.every((f) => f(row)), keys };
}

/** The query `text` against table `t`: {bin, top, count, page, select|null (all), test, keys, order}. */
export function parseFetch(t, text) {
  const fetch = parseXml(text);
  if (fetch.nodeName !== "fetch") throw invalid(`the root element is <fetch>, not <${fetch.nodeName}>.`);
  const a = attributesOf(fetch, FETCH_ATTRIBUTES);
  const query = { bin: false, top: null, count: null, page: 1 };
  if (a.datasource !== undefined) {
    if (a.datasource === "retained") throw unsupported("datasource='retained' (Dataverse's long-term retention)");
    if (a.datasource !== "bin") throw badQuery("The only valid value for datasource is 'retained' or 'bin'");
    query.bin = true;
  }
  if (a.mapping !== undefined && a.mapping !== "logical") throw unsupported(`mapping='${a.mapping}'`);
  if (a["output-format"] !== undefined && a["output-format"] !== "xml-platform") throw unsupported(`output-format='${a["output-format"]}'`);
  if (a.distinct !== undefined && booleanText(a.distinct, "the distinct attribute of <fetch>")) throw unsupported("distinct='true'");
  if (a["no-lock"] !== undefined) booleanText(a["no-lock"], "the no-lock attribute of <fetch>"); // legacy, no effect
  if (a.top !== undefined) query.top = positive("top", a.top, MAX_ROWS);
  if (a.count !== undefined) query.count = positive("count", a.count, MAX_ROWS);
  if (a.page !== undefined) query.page = positive("page", a.page);
  if (query.top !== null && (a.count !== undefined || a.page !== undefined)) throw invalid("the top attribute of <fetch> cannot be used with paging (count or page).");

  const [entity, ...extra] = children(fetch);
  if (!entity || entity.nodeName !== "entity") throw (entity ? unsupported(`the element <${entity.nodeName}> inside <fetch>`) : invalid("<fetch> needs an <entity>."));
  if (extra.length) throw (extra[0].nodeName === "entity" ? invalid("<fetch> has one <entity>.") : unsupported(`the element <${extra[0].nodeName}> inside <fetch>`));
  const { name } = attributesOf(entity, ["name"]);
  if (!name) throw invalid("<entity> needs a name.");
  // Assumed (400): the table of the query must be the entity set's the request names.
  if (name !== t.logical) throw invalid(`the entity '${name}' of the query is not the table of the entity set '${t.entitySet}' ('${t.logical}').`);

  const names = fetchNames(t);
  const selected = [];
  let all = false;
  const filters = [];
  query.order = [];
  for (const child of children(entity)) {
    switch (child.nodeName) {
      case "attribute": {
        const { name: col } = attributesOf(child, ["name"]);
        if (!col) throw invalid("an <attribute> needs a name.");
        if (children(child).length) throw invalid("an <attribute> has no children.");
        const column = names.get(col);
        if (!column) throw noAttribute(t, col);
        if (!selected.includes(column)) selected.push(column);
        break;
      }
      case "all-attributes":
        attributesOf(child, []);
        if (children(child).length) throw invalid("<all-attributes> has no children.");
        all = true;
        break;
      case "filter":
        filters.push(parseFilter(t, names, child));
        break;
      case "order": {
        const o = attributesOf(child, ["attribute", "descending"]);
        if (!o.attribute) throw invalid("an <order> needs an attribute.");
        if (children(child).length) throw invalid("an <order> has no children.");
        const column = names.get(o.attribute);
        if (!column) throw noAttribute(t, o.attribute);
        query.order.push({ col: column, desc: o.descending === undefined ? false : booleanText(o.descending, "the descending attribute of <order>") });
        break;
      }
      default:
        throw unsupported(`the element <${child.nodeName}> inside <entity>`);
    }
  }
  // Dataverse answers an entity without attributes too, but what it answers is not documented
  // here: the sandbox asks for them rather than guess.
  if (!all && selected.length === 0) throw unsupported("an <entity> without <attribute> or <all-attributes/>");
  query.select = all ? null : selected;
  const where = combine("and", filters);
  query.test = where.test;
  query.keys = where.keys;
  return query;
}

// ----- answering ---------------------------------------------------------------------------------

function wantsAnnotation(ctx, name) {
  const raw = ctx.annotationsRaw;
  if (!raw) return false;
  return raw.split(",").some((p) => {
    const s = p.trim();
    return s === "*" || s === name || (s.endsWith(".*") && name.startsWith(s.slice(0, -1)));
  });
}

/** Whether a GET of an entity set is a FetchXML query. */
export const isFetchRead = (q) => q.has(FETCH_PARAM);

/** GET <set>?fetchXml=…: the live rows of `t`, or with datasource="bin" the rows its recycle bin keeps. */
export function fetchRows(env, t, ctx, q) {
  const store = env.store;
  for (const key of q.keys()) {
    if (key.startsWith("$") && key !== "$count") throw badQuery(`The query parameter ${key} cannot be used with fetchXml.`);
  }
  if (ctx.prefer["odata.track-changes"] !== undefined) throw badQuery("Change tracking (Prefer: odata.track-changes) cannot be used with fetchXml.");
  const query = parseFetch(t, q.get(FETCH_PARAM));

  // the records the query reads: {row, version}
  let records;
  if (query.bin) {
    if (!store.bin.enabled && store.bin.whenOff === "error") {
      // ASSUMED (see the header): nothing documents a refusal.
      throw badQuery(`The recycle bin is off for this environment (the setting "Keep deleted Dataverse records"): the deleted records of '${t.logical}' cannot be read with datasource='bin'.`);
    }
    const entries = store.bin.enabled ? store.binEntries(t) : [];
    records = new Map(entries.map((e) => [e.id, { row: e.row, version: e.row.versionnumber ?? 0 }]));
  } else {
    records = t.records;
  }
  let candidates;
  if (query.keys) candidates = sortIds([...query.keys].filter((k) => records.has(k)));
  else if (!query.bin) candidates = t.sortedKeys;
  else candidates = sortIds(records.keys());
  let matched = [];
  for (const key of candidates) {
    const rec = records.get(key);
    if (query.test(rec.row)) matched.push(rec);
  }
  if (query.order.length) {
    const decorated = matched.map((rec) => ({ rec, keys: query.order.map((o) => sortKey(o.col, rec.row[o.col.name])), id: idOrder(rec.row[t.primaryKey]) }));
    decorated.sort((x, y) => {
      for (let i = 0; i < query.order.length; i++) {
        const a = x.keys[i];
        const b = y.keys[i];
        if (a === b) continue;
        const c = a === null ? -1 : b === null ? 1 : a < b ? -1 : 1; // null first, as SQL Server
        return query.order[i].desc ? -c : c;
      }
      return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
    });
    matched = decorated.map((d) => d.rec);
  }
  const size = query.top ?? query.count ?? MAX_ROWS;
  const start = query.top !== null ? 0 : (query.page - 1) * size;
  const page = matched.slice(start, start + size);
  const more = query.top === null && matched.length > start + size;

  const select = query.select;
  const names = select ? [...select.map((c) => c.name), ...(select.some((c) => c.name === t.primaryKey) ? [] : [t.primaryKey])] : null;
  const body = { "@odata.context": names ? `${ctx.base}$metadata#${t.entitySet}(${names.join(",")})` : contextUrl(ctx, t, null) };
  if (wantsAnnotation(ctx, "Microsoft.Dynamics.CRM.morerecords")) body["@Microsoft.Dynamics.CRM.morerecords"] = more;
  body.value = page.map((rec) => {
    const out = project(t, rec, select, ctx);
    for (const [k, v] of Object.entries(out)) if (v === null) delete out[k]; // no null properties
    return out;
  });
  return json(200, body, ctx.annotationsRaw ? { "Preference-Applied": `odata.include-annotations="${ctx.annotationsRaw}"` } : {});
}
