// Reading a collection: $select, $orderby (and the comparable keys it sorts by), $top, $count,
// server-driven paging with a $skiptoken, and the index an In filter reads through.
import { badQuery, noProperty } from "./errors.mjs";
import { compileFilter } from "./filter.mjs";
import { contextUrl, expandInto, json, parseExpand, project, rejectUnknownOptions } from "./odata.mjs";
import { b64url, bound, collate, idOrder, isPlainObject, sortIds, unb64url, xmlAttr, xmlUnattr } from "./util.mjs";
import { isoMillis } from "./values.mjs";

export const DEFAULT_PAGE_SIZE = 5000;
export const MAX_PAGE_SIZE = 5000;
const COUNT_LIMIT = 5000; // Dataverse caps @odata.count at 5000

export function parseSelect(t, text) {
  if (text == null) return null;
  const names = text.split(",").map((s) => s.trim());
  if (names.length === 1 && names[0] === "*") return null;
  const out = [];
  for (const name of names) {
    if (!name) throw badQuery(`Syntax error in $select '${text}'.`);
    const col = t.columns.get(name);
    if (!col) throw noProperty(t, name);
    if (!out.includes(col)) out.push(col);
  }
  return out;
}

export function parseOrderBy(t, text) {
  if (text == null) return [];
  const out = [];
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$/.exec(part);
    if (!m) throw badQuery(`Syntax error in $orderby '${text}'.`);
    const col = t.columns.get(m[1]);
    if (!col) throw noProperty(t, m[1]);
    out.push({ col, desc: m[2] === "desc" });
  }
  return out;
}

/** A comparable key of a stored value: null first, strings as the collation orders them, dates as ms. */
export function sortKey(col, value) {
  if (value == null) return null;
  switch (col.type) {
    case "String":
    case "Memo":
      return collate(value);
    case "Uniqueidentifier":
      return idOrder(value);
    case "DateTime":
    case "DateOnly": {
      const ms = isoMillis(value);
      return Number.isNaN(ms) ? null : ms;
    }
    case "Boolean":
      return value ? 1 : 0;
    default:
      return typeof value === "number" ? value : null;
  }
}

function compareKeys(a, b, order) {
  for (let i = 0; i < order.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    let c;
    if (x === null) c = -1;
    else if (y === null) c = 1;
    else if (typeof x !== typeof y) c = String(x) < String(y) ? -1 : 1;
    else c = x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return order[i].desc ? -c : c;
  }
  const pa = idOrder(a[order.length]);
  const pb = idOrder(b[order.length]);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

function decodeSkipToken(text) {
  const m = /pagingcookie="([^"]*)"/.exec(text);
  let token;
  try {
    token = JSON.parse(unb64url(xmlUnattr(m ? m[1] : "")));
  } catch {
    token = null;
  }
  if (!isPlainObject(token) || !Number.isInteger(token.n) || token.n < 0 || typeof token.k !== "string" || (token.v !== undefined && !Array.isArray(token.v)))
    throw badQuery(`The $skiptoken '${text}' is not valid: use the @odata.nextLink as it was returned.`);
  return token;
}

function encodeSkipToken(page, token) {
  return `<cookie pagenumber="${page}" pagingcookie="${xmlAttr(b64url(JSON.stringify(token)))}" istracking="False" />`;
}

/** The primary keys, sorted, of the rows whose `lookup.column` holds one of `lookup.values`. */
function candidateKeys(t, { column, keyOf, values }) {
  // The primary key is the table's own key (stored lower-case, as every GUID is): no index to
  // build, which a table written between reads would otherwise rebuild for every read.
  if (column === t.primaryKey) return [...values].filter((v) => t.records.has(v)).sort();
  if (!t.indexes) t.indexes = new Map();
  let index = t.indexes.get(column);
  if (!index) {
    index = new Map(); // value → primary keys
    for (const [id, rec] of t.records) {
      const v = keyOf(rec.row);
      if (v == null) continue;
      if (!index.has(v)) index.set(v, []);
      index.get(v).push(id);
    }
    t.indexes.set(column, index);
  }
  const found = [];
  for (const v of values) for (const id of index.get(v) || []) found.push(id);
  return sortIds(found);
}

/**
 * GET `<set>/$count` ("Count rows using OData" on Microsoft Learn): the number of rows that
 * match `$filter`, as plain text. Capped at 5,000 as `$count=true` is (the page says so of that
 * one; the same cap here is an assumption).
 */
export function countRows(t, q) {
  rejectUnknownOptions(q, ["$filter"]);
  const predicate = q.has("$filter") ? compileFilter(t, q.get("$filter")) : null;
  let total = 0;
  for (const rec of t.records.values()) if (!predicate || predicate(rec.row)) total++;
  return { status: 200, headers: { "Content-Type": "text/plain", "OData-Version": "4.0" }, body: String(Math.min(total, COUNT_LIMIT)) };
}

/** GET of an entity set: the matching rows, a page at a time. */
export function queryRows(t, ctx, q) {
  rejectUnknownOptions(q, ["$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$expand"]);
  const expands = parseExpand(t, q);
  const select = parseSelect(t, q.get("$select"));
  const predicate = q.has("$filter") ? compileFilter(t, q.get("$filter")) : null;
  const order = parseOrderBy(t, q.get("$orderby"));
  let top = null;
  if (q.has("$top")) {
    if (!/^\d+$/.test(q.get("$top").trim())) throw badQuery(`Invalid value '${q.get("$top")}' for $top query option found. The $top query option requires a non-negative integer value.`);
    top = Number(q.get("$top").trim());
  }
  let count = false;
  if (q.has("$count")) {
    const c = q.get("$count").trim().toLowerCase();
    if (c !== "true" && c !== "false") throw badQuery(`'${q.get("$count")}' is not a valid count option.`);
    count = c === "true";
  }
  const prefer = ctx.prefer;
  let pageSize = DEFAULT_PAGE_SIZE;
  const applied = [];
  let paging = false;
  if (prefer["odata.maxpagesize"] !== undefined) {
    const n = Number(prefer["odata.maxpagesize"]);
    if (Number.isInteger(n) && n > 0) {
      paging = true;
      pageSize = Math.min(n, MAX_PAGE_SIZE);
      applied.push(`odata.maxpagesize=${pageSize}`);
    }
  }
  if (ctx.annotations) applied.push(`odata.include-annotations="${ctx.annotationsRaw}"`);
  // "Page results", section "Don't use the $top query option while paging records"
  // (learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results): "If you
  // include both, $top is ignored."
  if (paging) top = null;
  const token = q.has("$skiptoken") ? decodeSkipToken(q.get("$skiptoken")) : null;
  const returned = token ? token.n : 0;
  const remaining = top === null ? Infinity : Math.max(0, top - returned);
  const want = Math.min(pageSize, remaining);

  const pkOrder = order.length === 0 || order[0].col.name === t.primaryKey;
  const collected = [];
  let total = null;
  let lastKeys = null;
  if (pkOrder) {
    const desc = order.length > 0 && order[0].desc;
    const keys = predicate?.lookup ? candidateKeys(t, predicate.lookup) : t.sortedKeys;
    let i = token ? (desc ? bound(keys, token.k, false) - 1 : bound(keys, token.k, true)) : desc ? keys.length - 1 : 0;
    const step = desc ? -1 : 1;
    // A range of the primary key is sought, not scanned (the clustered index's seek).
    let end = desc ? -1 : keys.length;
    const range = predicate?.range;
    if (range && !desc) {
      if (range.lo) i = Math.max(i, bound(keys, range.lo.key, range.lo.inclusive === false));
      if (range.hi) end = Math.min(end, bound(keys, range.hi.key, range.hi.inclusive));
    }
    for (; i >= 0 && i < keys.length && (desc || i < end) && collected.length <= want; i += step) {
      const rec = t.records.get(keys[i]);
      if (!predicate || predicate(rec.row)) collected.push(rec);
    }
    if (count) {
      if (!predicate) total = t.records.size;
      else {
        total = 0;
        for (const key of keys) if (predicate(t.records.get(key).row)) total++;
      }
    }
  } else {
    const decorated = [];
    for (const rec of t.records.values()) {
      if (predicate && !predicate(rec.row)) continue;
      const keys = order.map((o) => sortKey(o.col, rec.row[o.col.name]));
      keys.push(rec.row[t.primaryKey]);
      decorated.push({ rec, keys });
    }
    decorated.sort((a, b) => compareKeys(a.keys, b.keys, order));
    total = decorated.length;
    let start = 0;
    if (token) {
      const tokenKeys = [...(token.v || []), token.k];
      if (tokenKeys.length !== order.length + 1) throw badQuery(`The $skiptoken does not match the $orderby of this query: use the @odata.nextLink as it was returned.`);
      let lo = 0;
      let hi = decorated.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareKeys(decorated[mid].keys, tokenKeys, order) <= 0) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    for (let i = start; i < decorated.length && collected.length <= want; i++) collected.push(decorated[i].rec);
    lastKeys = (rec) => order.map((o) => sortKey(o.col, rec.row[o.col.name]));
  }
  const more = want > 0 && want < remaining && collected.length > want; // $top caps the total
  const page = collected.slice(0, want);
  const body = { "@odata.context": contextUrl(ctx, t, select) };
  if (count) {
    body["@odata.count"] = Math.min(total, COUNT_LIMIT);
    if (total > COUNT_LIMIT) body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = true;
  }
  body.value = page.map((rec) => expandInto(project(t, rec, select, ctx), rec, expands, ctx));
  if (more) {
    const last = page[page.length - 1];
    const next = { n: returned + page.length, k: last.row[t.primaryKey] };
    if (lastKeys) next.v = lastKeys(last);
    const pageNumber = Math.floor(returned / Math.max(1, pageSize)) + 2;
    const kept = (ctx.rawQuery || "").split("&").filter((p) => p && !/^(%24|\$)skiptoken=/i.test(p));
    kept.push(`$skiptoken=${encodeURIComponent(encodeSkipToken(pageNumber, next))}`);
    body["@odata.nextLink"] = `${ctx.base}${t.entitySet}?${kept.join("&")}`;
  }
  return json(200, body, applied.length ? { "Preference-Applied": applied.join(",") } : {});
}

