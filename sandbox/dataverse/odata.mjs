// OData plumbing shared by the routes: the request context (path, query options, Prefer), the
// path segments, and the shapes of answers (JSON with OData headers, errors, rows with etags and
// formatted values).
import { BOOLEAN_LABELS } from "./tables.mjs";
import { badPayload, badQuery, notFoundSegment, notSupported } from "./errors.mjs";
import { isPlainObject, pickLabel } from "./util.mjs";

export const API_PREFIX = "/api/data/v9.2/";
export const JSON_TYPE = "application/json; odata.metadata=minimal";

// ----- answers ---------------------------------------------------------------------------------

export const json = (status, body, headers = {}) => ({ status, headers: { "Content-Type": JSON_TYPE, "OData-Version": "4.0", ...headers }, body: JSON.stringify(body) });
export const empty = (status, headers = {}) => ({ status, headers: { "OData-Version": "4.0", ...headers }, body: "" });
export const errorResponse = (error) => json(error.status, { error: { code: error.code, message: error.message } }, error.headers);

export const etag = (rec) => `W/"${rec.version}"`;

/** A whole number with its thousands grouped: 1,234 (en-US), 1 234 with a no-break space (pl-PL). */
function groupThousands(value, lcid) {
  const digits = String(Math.abs(value)).replace(/\B(?=(\d{3})+$)/g, lcid === 1045 ? "\u00a0" : ",");
  return value < 0 ? `-${digits}` : digits;
}

/**
 * The value as a user of `lcid` sees it, as Dataverse's `OData.Community.Display.V1.FormattedValue`
 * gives it ("Formatted values" in "Web API properties" on Microsoft Learn): a choice's or yes/no's
 * label; a whole number with its thousands grouped; a date and time, or a date, in the default
 * format of the language (en-US: 12/7/2026 4:55 PM; pl-PL: 07.12.2026 16:55), in UTC (the
 * sandbox user's time zone; an assumption: the user's personal settings change it in a real
 * org); a lookup's row's primary name (`names`).
 */
function formattedValue(col, value, lcid, names) {
  if (value == null) return undefined;
  if (col.lookup) return names?.(col.lookup, value) ?? undefined;
  if (col.type === "Integer") return groupThousands(value, lcid);
  if (col.type === "DateTime" || col.type === "DateOnly") {
    const at = new Date(col.type === "DateOnly" ? `${value}T00:00:00Z` : value);
    if (Number.isNaN(at.getTime())) return undefined;
    const [y, mo, d, h, mi] = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(), at.getUTCHours(), at.getUTCMinutes()];
    const two = (n) => String(n).padStart(2, "0");
    const polish = lcid === 1045;
    const date = polish ? `${two(d)}.${two(mo)}.${y}` : `${mo}/${d}/${y}`;
    if (col.type === "DateOnly") return date;
    return polish ? `${date} ${two(h)}:${two(mi)}` : `${date} ${h % 12 || 12}:${two(mi)} ${h < 12 ? "AM" : "PM"}`;
  }
  if (col.type === "Picklist") {
    const option = col.options?.find((o) => o.value === value);
    return option ? pickLabel(option.label, lcid) ?? String(value) : String(value);
  }
  if (col.type === "Boolean") {
    const option = col.options?.find((o) => o.value === value || o.value === (value ? 1 : 0));
    return (option && pickLabel(option.label, lcid)) || pickLabel(BOOLEAN_LABELS[value], lcid);
  }
  return undefined;
}

/** A row as the Web API shows it: etag, the selected columns (all when none), always the key. */
export function project(t, rec, select, ctx) {
  const out = { "@odata.etag": etag(rec) };
  const cols = select || [...t.columns.values()];
  for (const col of cols) {
    const value = rec.row[col.name] === undefined ? null : rec.row[col.name];
    out[col.name] = value;
    if (ctx.annotations) {
      const f = formattedValue(col, value, ctx.lcid, ctx.names);
      if (f !== undefined) out[`${col.name}@OData.Community.Display.V1.FormattedValue`] = f;
    }
    // A lookup's navigation property and the table it points to ("Lookup properties" in "Web
    // API properties"), with `*` or the Microsoft.Dynamics.CRM annotations asked for.
    if (ctx.lookupAnnotations && col.lookup && value != null) {
      out[`${col.name}@Microsoft.Dynamics.CRM.associatednavigationproperty`] = col.lookup.attribute;
      out[`${col.name}@Microsoft.Dynamics.CRM.lookuplogicalname`] = col.lookup.target;
    }
  }
  if (!(t.primaryKey in out)) out[t.primaryKey] = rec.row[t.primaryKey];
  return out;
}

export function contextUrl(ctx, t, select, suffix = "") {
  const cols = select ? `(${select.map((c) => c.name).join(",")})` : "";
  return `${ctx.base}$metadata#${t.entitySet}${cols}${suffix}`;
}

export function representationHeaders(ctx) {
  return ctx.prefer.return === "representation" ? { "Preference-Applied": "return=representation" } : null;
}

// ----- requests --------------------------------------------------------------------------------

/** Prefer header → { key: value|true }. */
export function parsePrefer(header) {
  const out = {};
  for (const part of String(header ?? "").split(",")) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? true : item.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    out[key] = value;
  }
  return out;
}

/** Query string → Map; $-options lower-cased, each at most once. */
export function parseQuery(raw) {
  const map = new Map();
  if (!raw) return map;
  for (const part of raw.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    let key;
    let value;
    try {
      key = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, " "));
      value = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
    } catch {
      throw badQuery(`The query string is not correctly percent-encoded: '${part}'.`);
    }
    if (key.startsWith("$")) key = key.toLowerCase();
    if (map.has(key)) throw badQuery(`Query option '${key}' was specified more than once, but it must be specified at most once.`);
    map.set(key, value);
  }
  return map;
}

/** A decoded path → [{name, key}] (`key` is the text in parentheses, or null). */
export function parseSegments(p) {
  const segs = [];
  let i = 0;
  while (i < p.length) {
    let j = i;
    while (j < p.length && p[j] !== "(" && p[j] !== "/") j++;
    const name = p.slice(i, j);
    let key = null;
    if (p[j] === "(") {
      let k = j + 1;
      let quoted = false;
      for (; k < p.length; k++) {
        if (p[k] === "'") quoted = !quoted;
        else if (p[k] === ")" && !quoted) break;
      }
      if (k >= p.length) throw badQuery(`Bad Request - Error in query syntax: unbalanced parentheses in '${p}'.`);
      key = p.slice(j + 1, k);
      j = k + 1;
    }
    if (!name) throw notFoundSegment(p);
    segs.push({ name, key });
    if (j < p.length) {
      if (p[j] !== "/") throw badQuery(`Bad Request - Error in query syntax: '${p}'.`);
      j++;
    }
    i = j;
  }
  return segs;
}

/**
 * The context of one operation (top level or inside a $batch): method, path and query relative
 * to the API root, lower-case headers, body, base URL, Prefer, the caller (`userId`) and the
 * transaction its writes join (`tx`).
 */
export function contextFor(method, target, headers, body, base, extra = {}) {
  const qi = target.indexOf("?");
  const prefer = parsePrefer(headers.prefer);
  const annotationsRaw = typeof prefer["odata.include-annotations"] === "string" ? prefer["odata.include-annotations"] : null;
  const annotations = !!annotationsRaw && (annotationsRaw === "*" || /FormattedValue|\*/.test(annotationsRaw));
  const lookupAnnotations = !!annotationsRaw && /^\*$|Microsoft\.Dynamics\.CRM\.(\*|lookuplogicalname|associatednavigationproperty)/.test(annotationsRaw);
  const lcid = Number(headers["x-sandbox-lcid"]) || 1033;
  return {
    method,
    path: qi < 0 ? target : target.slice(0, qi),
    rawQuery: qi < 0 ? "" : target.slice(qi + 1),
    headers,
    body,
    base,
    prefer,
    annotations,
    lookupAnnotations,
    annotationsRaw,
    /** A lookup's row's name (`(lookup, id) → string|null`), for formatted values. */
    names: null,
    /** A lookup's row for `$expand` (`(lookup, id, select) → object|null`). */
    related: null,
    lcid,
    userId: null,
    tx: null,
    inBatch: false,
    ...extra,
  };
}

export function parseJsonObject(t, text) {
  let body;
  try {
    body = JSON.parse(text || "");
  } catch {
    throw badPayload(`Error identified in Payload provided by the user for Entity :'${t.logical}'. The request body is not valid JSON.`);
  }
  if (!isPlainObject(body)) throw badPayload(`Error identified in Payload provided by the user for Entity :'${t.logical}'. The request body must be a JSON object.`);
  return body;
}

export function rejectUnknownOptions(q, allowed) {
  for (const key of q.keys()) {
    if (!key.startsWith("$")) continue;
    if (key === "$skip") throw badQuery("The query parameter $skip is not supported.");
    if (!allowed.includes(key)) throw badQuery(`The query parameter ${key} is not supported.`);
  }
}

/**
 * `$expand` of single-valued navigation properties ("Join tables using OData" on Microsoft
 * Learn): the lookups every table has (`createdby`, `modifiedby`, `ownerid`, to a user) and
 * those a table defines, each with an optional `($select=…)`. Anything else (collections,
 * nested `$expand`, `$filter` inside) is refused by name. Returns `[{nav, column, select}]`.
 */
export function parseExpand(t, q) {
  const text = q.get("$expand");
  if (text == null) return [];
  const expands = [];
  for (const part of text.split(/,(?![^(]*\))/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*\$select=([A-Za-z0-9_,\s]+)\))?\s*$/.exec(part);
    const nav = m?.[1] ?? part.trim().split("(")[0];
    // A table's own lookup by its navigation property; the user lookups by theirs (their attribute's name).
    const column = m && (t.navigations.get(nav) ?? [...t.columns.values()].find((c) => c.lookup?.target === "systemuser" && c.lookup.attribute === nav));
    if (!column) throw notSupported(`$expand of '${part.trim()}' on ${t.entitySet} (it expands lookups, with $select inside: createdby($select=fullname))`);
    expands.push({ nav, column, select: m[2] ? m[2].split(",").map((s) => s.trim()).filter(Boolean) : null });
  }
  return expands;
}

/** The expanded lookups of `rec` onto `out` (`ctx.related` reads the rows they point to). */
export function expandInto(out, rec, expands, ctx) {
  for (const { nav, column, select } of expands) out[nav] = ctx.related?.(column.lookup, rec.row[column.name], select) ?? null;
  return out;
}

/**
 * `$expand` where the sandbox does not serve it (a write's representation): refused by name,
 * not answered as if the navigation property did not exist.
 */
export function rejectExpand(t, q) {
  const expand = q.get("$expand");
  if (expand == null) return;
  const name = expand.split(/[(,]/)[0].trim();
  throw notSupported(`$expand on ${t.entitySet} ('${name || expand}'); select the lookup's _${name || "<lookup>"}_value column instead`);
}
