// A local stand-in for the Microsoft Dataverse Web API (OData v4, /api/data/v9.2/), for the browser
// sandbox and its tests: CRUD, $select/$filter/$orderby/$top/$count with server-driven paging,
// $batch with change sets, a slice of EntityDefinitions metadata, WhoAmI, fault injection and the
// service-protection limits, with the data optionally kept in one JSON file. Node built-ins only.
//
//   const dv = createDataverse({ file, tables, latencyMs, protection });
//   if (await dv.handle(req, res)) return;   // true when the path starts with /api/data/v9.2/
//
// Rows are kept immutable in a Map per table (primary key → {row, version, seq}) in insertion order,
// plus a sorted array of primary keys for paging in key order without rescanning.
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { STATUS_CODES } from "node:http";
import { createHash, randomUUID } from "node:crypto";

export const API_PREFIX = "/api/data/v9.2/";

/** Dataverse's published per-user service-protection limits (5-minute sliding window). */
export const DEFAULT_PROTECTION = Object.freeze({
  windowMs: 300_000,
  maxRequests: 6000,
  maxExecutionMs: 1_200_000,
  maxConcurrent: 52,
  costMs: Object.freeze({ GET: 2, POST: 10, PATCH: 10, DELETE: 10 }),
});

/** Fixed identities answered by WhoAmI. */
export const WHO_AM_I = Object.freeze({
  UserId: "00000000-0000-0000-0000-0000000000aa",
  BusinessUnitId: "00000000-0000-0000-0000-0000000000cc",
  OrganizationId: "00000000-0000-0000-0000-0000000000bb",
});

export const COLUMN_TYPES = Object.freeze(["String", "Memo", "Boolean", "DateTime", "DateOnly", "Integer", "Picklist", "Uniqueidentifier"]);

const JSON_TYPE = "application/json; odata.metadata=minimal";
const DEFAULT_PAGE_SIZE = 5000;
const MAX_PAGE_SIZE = 5000;
const COUNT_LIMIT = 5000; // Dataverse caps @odata.count at 5000
const MAX_BATCH_OPERATIONS = 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const SAVE_DELAY_MS = 250; // debounce of the file write; always ≤ 1 s after the first change
const SAVE_CHUNK_ROWS = 2000;
const STRING_MAX = 4000; // largest String column Dataverse allows (when a definition gives none)
const MEMO_MAX = 1_048_576;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ISO_DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
const DATE_ONLY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const EDM = {
  String: "Edm.String",
  Memo: "Edm.String",
  Boolean: "Edm.Boolean",
  DateTime: "Edm.DateTimeOffset",
  DateOnly: "Edm.Date",
  Integer: "Edm.Int32",
  Picklist: "Edm.Int32",
  Uniqueidentifier: "Edm.Guid",
};
const SYSTEM_LABELS = {
  createdon: { 1033: "Created On", 1045: "Data utworzenia" },
  modifiedon: { 1033: "Modified On", 1045: "Data modyfikacji" },
};
const BOOLEAN_LABELS = { true: { 1033: "Yes", 1045: "Tak" }, false: { 1033: "No", 1045: "Nie" } };

// ---------------------------------------------------------------------------------------------
// Errors

/** A Web API failure answered as {"error":{"code","message"}}. */
class DvError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}
const CODE_BAD_QUERY = "0x80060888";
const CODE_NOT_FOUND_SEGMENT = "0x8006088a";
const CODE_PAYLOAD = "0x80048d19";
const CODE_VALIDATION = "0x80044331";
const CODE_NOT_EXIST = "0x80040217";
const CODE_DUPLICATE = "0x80040237";
const CODE_VERSION = "0x80060882";
const CODE_UNEXPECTED = "0x80040216";
const CODE_PRIVILEGE = "0x80040220";
const CODE_REQUESTS = "0x80072322";
const CODE_EXECUTION = "0x80072321";
const CODE_CONCURRENCY = "0x80072326";

const badQuery = (message) => new DvError(400, CODE_BAD_QUERY, message);
const badPayload = (message) => new DvError(400, CODE_PAYLOAD, message);
const notFoundSegment = (segment) => new DvError(404, CODE_NOT_FOUND_SEGMENT, `Resource not found for the segment '${segment}'.`);
const notAllowed = (method, what, allow) => new DvError(405, CODE_BAD_QUERY, `The HTTP method '${method}' is not allowed on ${what}.`, { Allow: allow });
const noProperty = (t, name) => badQuery(`Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${t.logical}'.`);

// ---------------------------------------------------------------------------------------------
// Small helpers

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const formatThousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
const b64url = (text) => Buffer.from(text, "utf8").toString("base64url");
const unb64url = (text) => Buffer.from(text, "base64url").toString("utf8");
const xmlAttr = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
const xmlUnattr = (s) => String(s).replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** A stable GUID derived from text (for MetadataIds). */
function guidFrom(text) {
  const h = createHash("sha1").update(text).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Index of the first element > key (upper) or ≥ key (lower) in a sorted string array. */
function bound(sorted, key, upper) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (upper ? sorted[mid] <= key : sorted[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Milliseconds of a valid ISO date or date-time (no zone means UTC), else NaN. */
function isoMillis(text) {
  const m = ISO_DATETIME_RE.exec(text);
  if (!m) return NaN;
  const [, y, mo, d, h = "00", mi = "00", s = "00", frac = "", zone = "Z"] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return NaN;
  const probe = new Date(Date.UTC(Number(y), month - 1, day));
  if (probe.getUTCMonth() !== month - 1) return NaN; // e.g. 2023-02-30
  const z = zone.toUpperCase() === "Z" ? "Z" : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  return Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${z}`);
}

/** A label in Dataverse metadata shape for `lcid`. */
function labelOf(labels, lcid) {
  const entries = Object.entries(labels || {})
    .filter(([, text]) => typeof text === "string")
    .map(([code, text]) => ({ Label: text, LanguageCode: Number(code), IsManaged: false, MetadataId: guidFrom(`label:${code}:${text}`), HasChanged: null }));
  const user = entries.find((l) => l.LanguageCode === lcid) || entries.find((l) => l.LanguageCode === 1033) || entries[0] || null;
  return { LocalizedLabels: entries, UserLocalizedLabel: user };
}

function pickLabel(labels, lcid) {
  if (!labels) return null;
  return labels[lcid] ?? labels[1033] ?? Object.values(labels)[0] ?? null;
}

/** Prefer header → { key: value|true }. */
function parsePrefer(header) {
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
function parseQuery(raw) {
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

// ---------------------------------------------------------------------------------------------
// Table definitions

function normalizeColumn(tableName, name, def) {
  if (!NAME_RE.test(name)) throw new Error(`sandbox/dataverse: column name '${name}' of table '${tableName}' is not a valid logical name`);
  if (!isPlainObject(def)) throw new Error(`sandbox/dataverse: column '${tableName}.${name}' needs a definition object`);
  if (!COLUMN_TYPES.includes(def.type)) throw new Error(`sandbox/dataverse: column '${tableName}.${name}' has unknown type '${def.type}' (one of ${COLUMN_TYPES.join(", ")})`);
  const column = { name, type: def.type, label: isPlainObject(def.label) ? { ...def.label } : {}, readOnly: def.readOnly === true };
  if (def.type === "String" || def.type === "Memo") {
    const max = def.type === "String" ? STRING_MAX : MEMO_MAX;
    column.maxLength = Number.isInteger(def.maxLength) && def.maxLength > 0 ? def.maxLength : max;
  }
  if (def.type === "Picklist" || def.type === "Boolean") {
    if (Array.isArray(def.options)) column.options = def.options.map((o) => ({ value: o.value, label: isPlainObject(o.label) ? { ...o.label } : {} }));
  }
  return column;
}

/** The column as handed in / persisted (for `columns()` and the data file). */
function columnDefinition(column) {
  const out = { logicalName: column.name, type: column.type, label: { ...column.label } };
  if (column.maxLength !== undefined && column.maxLength !== (column.type === "String" ? STRING_MAX : MEMO_MAX)) out.maxLength = column.maxLength;
  if (column.options) out.options = column.options.map((o) => ({ value: o.value, label: { ...o.label } }));
  return out;
}

function compileTable(logical, def) {
  if (!NAME_RE.test(logical)) throw new Error(`sandbox/dataverse: '${logical}' is not a valid table logical name`);
  if (!isPlainObject(def)) throw new Error(`sandbox/dataverse: table '${logical}' needs a definition object`);
  const { entitySet, primaryKey } = def;
  if (typeof entitySet !== "string" || !NAME_RE.test(entitySet)) throw new Error(`sandbox/dataverse: table '${logical}' needs an entitySet name`);
  if (typeof primaryKey !== "string" || !NAME_RE.test(primaryKey)) throw new Error(`sandbox/dataverse: table '${logical}' needs a primaryKey name`);
  const columns = new Map();
  columns.set(primaryKey, { name: primaryKey, type: "Uniqueidentifier", label: isPlainObject(def.label) ? { ...def.label } : {}, system: true, readOnly: false });
  for (const [name, c] of Object.entries(def.columns ?? {})) {
    if (name === primaryKey || name === "createdon" || name === "modifiedon") {
      // implicit columns: keep their type, take a label if one is given
      if (isPlainObject(c?.label) && name === primaryKey) columns.get(name).label = { ...c.label };
      continue;
    }
    columns.set(name, normalizeColumn(logical, name, c));
  }
  const computed = [];
  for (const [name, fn] of Object.entries(def.computed ?? {})) {
    if (typeof fn !== "function") throw new Error(`sandbox/dataverse: computed column '${logical}.${name}' must be a function`);
    if (!columns.has(name)) columns.set(name, normalizeColumn(logical, name, { type: "String" }));
    columns.get(name).computed = true;
    computed.push([name, fn]);
  }
  for (const name of ["createdon", "modifiedon"]) {
    const given = def.columns?.[name];
    columns.set(name, { name, type: "DateTime", label: isPlainObject(given?.label) ? { ...given.label } : { ...SYSTEM_LABELS[name] }, system: true, readOnly: true });
  }
  const primaryName = typeof def.primaryName === "string" ? def.primaryName : null;
  if (primaryName && !columns.has(primaryName)) throw new Error(`sandbox/dataverse: primaryName '${primaryName}' of table '${logical}' is not one of its columns`);
  return {
    logical,
    entitySet,
    primaryKey,
    primaryName,
    label: isPlainObject(def.label) ? { ...def.label } : {},
    columns,
    added: new Map(), // name → column, added at run time (persisted)
    computed,
    records: new Map(), // primary key → { row, version, seq }
    sortedKeys: [],
    seq: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Value checks

/** `value` checked against `column` and normalised for storage; throws DvError(400). */
function coerceValue(t, column, value) {
  if (value === null) {
    if (column.name === t.primaryKey) throw badPayload(`The primary key '${column.name}' of '${t.logical}' cannot be null.`);
    return null;
  }
  const wrongType = () =>
    badPayload(
      `Error identified in Payload provided by the user for Entity :'${t.logical}'. Cannot convert the literal '${typeof value === "string" ? value : JSON.stringify(value)}' to the expected type '${EDM[column.type]}' for property '${column.name}'.`,
    );
  switch (column.type) {
    case "String":
    case "Memo":
      if (typeof value !== "string") throw wrongType();
      if (value.length > column.maxLength)
        throw new DvError(
          400,
          CODE_VALIDATION,
          `A validation error occurred. The length of the '${column.name}' attribute of the '${t.logical}' entity exceeded the maximum allowed length of '${column.maxLength}'.`,
        );
      return value;
    case "Boolean":
      if (typeof value !== "boolean") throw wrongType();
      return value;
    case "Integer":
    case "Picklist":
      if (typeof value !== "number" || !Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) throw wrongType();
      if (column.type === "Picklist" && column.options && column.options.length && !column.options.some((o) => o.value === value))
        throw new DvError(400, CODE_VALIDATION, `A validation error occurred. The value ${value} of '${column.name}' on record of type '${t.logical}' is outside the valid range.`);
      return value;
    case "DateTime": {
      if (typeof value !== "string") throw wrongType();
      const ms = isoMillis(value);
      if (Number.isNaN(ms)) throw wrongType();
      return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    case "DateOnly": {
      if (typeof value !== "string") throw wrongType();
      const ms = isoMillis(value);
      if (Number.isNaN(ms)) throw wrongType();
      return DATE_ONLY_RE.test(value) ? value : new Date(ms).toISOString().slice(0, 10);
    }
    case "Uniqueidentifier":
      if (typeof value !== "string" || !GUID_RE.test(value)) throw wrongType();
      return value.toLowerCase();
    default:
      throw wrongType();
  }
}

// ---------------------------------------------------------------------------------------------
// $filter: a recursive-descent parser compiled to closures

const KEYWORDS = new Set(["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le"]);
const COMPARISONS = { eq: "Equal", ne: "NotEqual", gt: "GreaterThan", ge: "GreaterThanOrEqual", lt: "LessThan", le: "LessThanOrEqual" };
const EXPR_EDM = { String: "Edm.String", Integer: "Edm.Int32", Decimal: "Edm.Decimal", Boolean: "Edm.Boolean", DateTime: "Edm.DateTimeOffset", Date: "Edm.Date", Guid: "Edm.Guid", Null: "null" };
const CATEGORY = { String: "s", Integer: "n", Decimal: "n", Boolean: "b", DateTime: "d", Date: "d", Guid: "g" };
const COLUMN_EXPR_TYPE = { String: "String", Memo: "String", Boolean: "Boolean", DateTime: "DateTime", DateOnly: "Date", Integer: "Integer", Picklist: "Integer", Uniqueidentifier: "Guid" };

const TOKEN_PATTERNS = [
  ["guid", /[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-])/y],
  // a '+' of a zone offset arrives as a space when the client did not percent-encode it
  ["datetime", /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\- ]\d{2}:\d{2})(?![\w:])/y],
  ["date", /\d{4}-\d{2}-\d{2}(?![\w:-])/y],
  ["number", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w.])/y],
  ["ident", /[A-Za-z_][A-Za-z0-9_.]*/y],
];

function lex(text) {
  const tokens = [];
  let i = 0;
  const syntax = (at) => badQuery(`Syntax error at position ${at} in '${text}'.`);
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
      continue;
    }
    if ("(),[]=".includes(c)) {
      tokens.push({ kind: c, at: i });
      i++;
      continue;
    }
    if (c === "'") {
      const at = i;
      let s = "";
      i++;
      for (;;) {
        if (i >= text.length) throw badQuery(`There is an unterminated string literal at position ${at} in '${text}'.`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            s += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += text[i++];
      }
      tokens.push({ kind: "string", value: s, at });
      continue;
    }
    let matched = false;
    for (const [kind, re] of TOKEN_PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(text);
      if (m) {
        tokens.push({ kind, value: m[0], at: i });
        i += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) throw syntax(i);
  }
  return tokens;
}

const lit = (type, value) => ({ type, literal: true, ev: () => value });

function compareValues(category, a, b) {
  if (category === "s") {
    const x = a.toLowerCase();
    const y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compiles `$filter` text for table `t` into a predicate (row → boolean). */
function compileFilter(t, text) {
  const tokens = lex(text);
  let pos = 0;
  const syntax = (tok) => badQuery(`Syntax error at position ${tok ? tok.at : text.length} in '${text}'.`);
  const peek = () => tokens[pos];
  const isWord = (w) => tokens[pos]?.kind === "ident" && tokens[pos].value === w;
  const expect = (kind) => {
    const tok = tokens[pos];
    if (!tok || tok.kind !== kind) throw syntax(tok);
    pos++;
    return tok;
  };

  function logical(op, left, right) {
    for (const side of [left, right]) {
      if (side.type !== "Boolean")
        throw badQuery(
          `A binary operator with incompatible types was detected. Found operand types '${EXPR_EDM[left.type]}' and '${EXPR_EDM[right.type]}' for operator kind '${op === "and" ? "And" : "Or"}'.`,
        );
    }
    const l = left.ev;
    const r = right.ev;
    if (op === "and") return { type: "Boolean", ev: (row) => l(row) === true && r(row) === true, lookup: left.lookup || right.lookup };
    return { type: "Boolean", ev: (row) => l(row) === true || r(row) === true };
  }

  function compare(op, left, right) {
    const kind = COMPARISONS[op];
    const lc = CATEGORY[left.type];
    const rc = CATEGORY[right.type];
    if (left.type !== "Null" && right.type !== "Null" && lc !== rc)
      throw badQuery(`A binary operator with incompatible types was detected. Found operand types '${EXPR_EDM[left.type]}' and '${EXPR_EDM[right.type]}' for operator kind '${kind}'.`);
    const l = left.ev;
    const r = right.ev;
    if (left.type === "Null" || right.type === "Null") {
      const other = left.type === "Null" ? r : l;
      if (op === "eq") return { type: "Boolean", ev: (row) => other(row) == null };
      if (op === "ne") return { type: "Boolean", ev: (row) => other(row) != null };
      return { type: "Boolean", ev: () => false };
    }
    const category = lc;
    return {
      type: "Boolean",
      ev: (row) => {
        const a = l(row);
        const b = r(row);
        // As Dataverse (SQL): a null value satisfies no comparison, except `ne` which includes it.
        if (a == null || b == null) return op === "ne" ? !(a == null && b == null) : false;
        const c = compareValues(category, a, b);
        switch (op) {
          case "eq":
            return c === 0;
          case "ne":
            return c !== 0;
          case "gt":
            return c > 0;
          case "ge":
            return c >= 0;
          case "lt":
            return c < 0;
          default:
            return c <= 0;
        }
      },
    };
  }

  function column(name, tok) {
    const col = t.columns.get(name);
    if (!col) throw noProperty(t, name);
    const type = COLUMN_EXPR_TYPE[col.type];
    let ev;
    if (type === "DateTime" || type === "Date") {
      ev = (row) => {
        const v = row[name];
        if (v == null) return null;
        const ms = isoMillis(v);
        return Number.isNaN(ms) ? null : ms;
      };
    } else if (type === "Guid") {
      ev = (row) => (row[name] == null ? null : String(row[name]).toLowerCase());
    } else {
      ev = (row) => (row[name] === undefined ? null : row[name]);
    }
    return { type, column: col, at: tok.at, ev };
  }

  function stringFunction(name, args) {
    const signature = `${name}(Edm.String Nullable=true, Edm.String Nullable=true)`;
    if (args.length !== 2 || args.some((a) => a.named || (a.expr.type !== "String" && a.expr.type !== "Null")))
      throw badQuery(`No function signature for the function with name '${name}' matches the specified arguments. The function signatures considered are: ${signature}.`);
    const [x, y] = args.map((a) => a.expr.ev);
    const test =
      name === "contains" ? (a, b) => a.includes(b) : name === "startswith" ? (a, b) => a.startsWith(b) : (a, b) => a.endsWith(b);
    return {
      type: "Boolean",
      ev: (row) => {
        const a = x(row);
        const b = y(row);
        if (a == null || b == null) return false;
        return test(String(a).toLowerCase(), String(b).toLowerCase());
      },
    };
  }

  function inFunction(name, args, tok) {
    const named = new Map(args.filter((a) => a.named).map((a) => [a.named, a]));
    const prop = named.get("PropertyName");
    const values = named.get("PropertyValues");
    if (!prop || prop.expr?.type !== "String" || !prop.expr.literal || !values || !values.list)
      throw badQuery(`The function '${name}' needs PropertyName='<column>' and PropertyValues=['…',…].`);
    const colName = prop.expr.ev();
    const col = t.columns.get(colName);
    if (!col) throw noProperty(t, colName);
    const type = COLUMN_EXPR_TYPE[col.type];
    const set = new Set();
    for (const v of values.list) {
      if (v.type !== "String") throw badQuery(`The values of PropertyValues of '${name}' must be string literals.`);
      const raw = v.ev();
      let key;
      if (type === "String") key = raw.toLowerCase();
      else if (type === "Integer") key = Number(raw);
      else if (type === "Boolean") key = raw.toLowerCase() === "true";
      else if (type === "Guid") key = raw.toLowerCase();
      else if (type === "DateTime" || type === "Date") key = isoMillis(raw);
      if (key === undefined || Number.isNaN(key)) throw badQuery(`'${raw}' is not a valid value for '${colName}' in '${name}'.`);
      set.add(key);
    }
    const ev = column(colName, tok).ev;
    const negate = name.endsWith("NotIn");
    const keyOf = (row) => {
      const v = ev(row);
      return v != null && type === "String" ? v.toLowerCase() : v;
    };
    return {
      type: "Boolean",
      ev: (row) => {
        const v = keyOf(row);
        if (v == null) return false;
        return negate ? !set.has(v) : set.has(v);
      },
      // The rows can only be among those whose column holds one of the values: a query can read
      // them through an index instead of scanning the table, as Dataverse does.
      lookup: negate ? undefined : { column: colName, keyOf, values: set },
    };
  }

  function functionCall(tok) {
    const name = tok.value;
    expect("(");
    const args = [];
    if (peek()?.kind !== ")") {
      for (;;) {
        if (peek()?.kind === "ident" && tokens[pos + 1]?.kind === "=") {
          const argName = tokens[pos].value;
          pos += 2;
          if (peek()?.kind === "[") {
            pos++;
            const list = [];
            if (peek()?.kind !== "]") {
              for (;;) {
                list.push(parsePrimary());
                if (peek()?.kind === ",") {
                  pos++;
                  continue;
                }
                break;
              }
            }
            expect("]");
            args.push({ named: argName, list });
          } else {
            args.push({ named: argName, expr: parseOr() });
          }
        } else {
          args.push({ expr: parseOr() });
        }
        if (peek()?.kind === ",") {
          pos++;
          continue;
        }
        break;
      }
    }
    expect(")");
    const lower = name.toLowerCase();
    if (lower === "contains" || lower === "startswith" || lower === "endswith") return stringFunction(lower, args);
    if (name === "Microsoft.Dynamics.CRM.In" || name === "Microsoft.Dynamics.CRM.NotIn") return inFunction(name, args, tok);
    throw badQuery(`The function '${name}' is not supported by the sandbox (contains, startswith, endswith, Microsoft.Dynamics.CRM.In and NotIn are).`);
  }

  function parsePrimary() {
    const tok = peek();
    if (!tok) throw syntax(tok);
    pos++;
    switch (tok.kind) {
      case "(": {
        const inner = parseOr();
        expect(")");
        return inner;
      }
      case "string":
        return lit("String", tok.value);
      case "number":
        return /[.eEmMdDfF]/.test(tok.value.replace(/^-/, "")) ? lit("Decimal", parseFloat(tok.value)) : lit("Integer", parseInt(tok.value, 10));
      case "guid":
        return lit("Guid", tok.value.toLowerCase());
      case "datetime": {
        const ms = isoMillis(tok.value.replace(/ (\d{2}:\d{2})$/, "+$1"));
        if (Number.isNaN(ms)) throw badQuery(`'${tok.value}' is not a valid Edm.DateTimeOffset literal.`);
        return lit("DateTime", ms);
      }
      case "date": {
        const ms = isoMillis(tok.value);
        if (Number.isNaN(ms)) throw badQuery(`'${tok.value}' is not a valid Edm.Date literal.`);
        return lit("Date", ms);
      }
      case "ident": {
        if (peek()?.kind === "(") return functionCall(tok);
        if (tok.value === "null") return lit("Null", null);
        if (tok.value === "true") return lit("Boolean", true);
        if (tok.value === "false") return lit("Boolean", false);
        if (KEYWORDS.has(tok.value)) throw syntax(tok);
        if (tok.value.includes(".")) throw syntax(tok);
        return column(tok.value, tok);
      }
      default:
        throw syntax(tok);
    }
  }

  function parseUnary() {
    if (isWord("not")) {
      pos++;
      const operand = parseUnary();
      if (operand.type !== "Boolean")
        throw badQuery(`A unary operator with an incompatible type was detected. Found operand type '${EXPR_EDM[operand.type]}' for operator kind 'Not'.`);
      const ev = operand.ev;
      return { type: "Boolean", ev: (row) => !ev(row) };
    }
    return parsePrimary();
  }

  function parseComparison() {
    let left = parseUnary();
    while (tokens[pos]?.kind === "ident" && COMPARISONS[tokens[pos].value]) {
      const op = tokens[pos].value;
      pos++;
      left = compare(op, left, parseUnary());
    }
    return left;
  }

  function parseAnd() {
    let left = parseComparison();
    while (isWord("and")) {
      pos++;
      left = logical("and", left, parseComparison());
    }
    return left;
  }

  function parseOr() {
    let left = parseAnd();
    while (isWord("or")) {
      pos++;
      left = logical("or", left, parseAnd());
    }
    return left;
  }

  if (tokens.length === 0) throw badQuery(`The $filter query option is empty.`);
  const root = parseOr();
  if (pos < tokens.length) throw syntax(tokens[pos]);
  if (root.type !== "Boolean") throw badQuery(`The $filter expression must evaluate to a single boolean value.`);
  const ev = root.ev;
  const predicate = (row) => ev(row) === true;
  predicate.lookup = root.lookup;
  return predicate;
}

// ---------------------------------------------------------------------------------------------
// $select / $orderby / ordering

function parseSelect(t, text) {
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

function parseOrderBy(t, text) {
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

/** A comparable key of a stored value: null first, strings case-insensitively, dates as ms. */
function sortKey(col, value) {
  if (value == null) return null;
  switch (col.type) {
    case "String":
    case "Memo":
    case "Uniqueidentifier":
      return String(value).toLowerCase();
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
  const pa = a[order.length];
  const pb = b[order.length];
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// $batch (multipart/mixed)

function boundaryOf(contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || "");
  return m ? m[1] || m[2] : null;
}

/** Splits a multipart body into parts of {headers (lower-case), lines}. */
function splitMultipart(text, boundary) {
  const lines = text.split(/\r?\n/);
  const delimiter = `--${boundary}`;
  const close = `--${boundary}--`;
  const parts = [];
  let current = null;
  let closed = false;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === close) {
      if (current) parts.push(current);
      current = null;
      closed = true;
      break;
    }
    if (trimmed === delimiter) {
      if (current) parts.push(current);
      current = [];
      continue;
    }
    if (current) current.push(line);
  }
  if (!closed) throw badQuery(`The batch body does not end with the closing delimiter '${close}'.`);
  return parts.map((partLines) => {
    const headers = {};
    let i = 0;
    for (; i < partLines.length; i++) {
      const line = partLines[i];
      if (line.trim() === "") break;
      const colon = line.indexOf(":");
      if (colon <= 0) throw badQuery(`Malformed MIME part header in batch: '${line}'.`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, lines: partLines.slice(i + 1) };
  });
}

/** An application/http part → {method, target, headers, body, contentId}. */
function parseHttpPart(part) {
  const type = (part.headers["content-type"] || "").toLowerCase();
  if (!type.startsWith("application/http")) throw badQuery(`A batch part must have Content-Type application/http (or multipart/mixed for a change set), not '${part.headers["content-type"] || ""}'.`);
  const lines = part.lines;
  let i = 0;
  while (i < lines.length && lines[i].trim() === "") i++;
  const requestLine = /^([A-Z]+)\s+(.+?)(?:\s+HTTP\/1\.[01])?\s*$/.exec(lines[i] || "");
  if (!requestLine) throw badQuery(`Malformed request line in batch: '${lines[i] || ""}'.`);
  i++;
  const headers = {};
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") break;
    const colon = line.indexOf(":");
    if (colon <= 0) throw badQuery(`Malformed request header in batch: '${line}'.`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = lines.slice(i + 1).join("\n").trim();
  const contentId = part.headers["content-id"] ?? headers["content-id"] ?? null;
  return { method: requestLine[1], target: requestLine[2], headers, body, contentId };
}

function parseBatch(contentType, text) {
  const boundary = boundaryOf(contentType);
  if (!/^multipart\/mixed/i.test(contentType || "") || !boundary) throw badQuery(`A $batch request needs Content-Type: multipart/mixed; boundary=….`);
  const items = [];
  let operations = 0;
  for (const part of splitMultipart(text, boundary)) {
    const type = part.headers["content-type"] || "";
    if (/^multipart\/mixed/i.test(type)) {
      const inner = boundaryOf(type);
      if (!inner) throw badQuery(`A change set needs a boundary parameter.`);
      const requests = splitMultipart(part.lines.join("\n"), inner).map((p) => {
        if (/^multipart\//i.test(p.headers["content-type"] || "")) throw badQuery(`Change sets cannot be nested.`);
        return parseHttpPart(p);
      });
      operations += requests.length;
      items.push({ changeset: true, requests });
    } else {
      items.push({ changeset: false, request: parseHttpPart(part) });
      operations++;
    }
  }
  return { items, operations };
}

function httpText(response) {
  let out = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] || ""}\r\n`;
  for (const [k, v] of Object.entries(response.headers)) out += `${k}: ${v}\r\n`;
  return `${out}\r\n${response.body || ""}`;
}

// ---------------------------------------------------------------------------------------------
// Service protection: a sliding window of {t, n, c} entries (O(requests in the window))

class SlidingWindow {
  constructor(windowMs) {
    this.windowMs = windowMs;
    this.entries = [];
    this.head = 0;
    this.count = 0;
    this.cost = 0;
  }
  trim(now) {
    const e = this.entries;
    while (this.head < e.length && e[this.head].t <= now - this.windowMs) {
      this.count -= e[this.head].n;
      this.cost -= e[this.head].c;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > e.length) {
      this.entries = e.slice(this.head);
      this.head = 0;
    }
  }
  /** null when admitted, else {kind: "requests"|"execution", waitMs}. */
  check(now, n, c, maxRequests, maxExecutionMs) {
    this.trim(now);
    const needRequests = this.count + n - maxRequests;
    const needCost = this.cost + c - maxExecutionMs;
    if (needRequests <= 0 && needCost <= 0) return null;
    const kind = needRequests > 0 ? "requests" : "execution";
    if (n > maxRequests || c > maxExecutionMs) return { kind, waitMs: this.windowMs };
    let freedN = 0;
    let freedC = 0;
    for (let i = this.head; i < this.entries.length; i++) {
      freedN += this.entries[i].n;
      freedC += this.entries[i].c;
      if (freedN >= needRequests && freedC >= needCost) return { kind, waitMs: this.entries[i].t + this.windowMs - now };
    }
    return { kind, waitMs: this.windowMs };
  }
  add(now, n, c) {
    const last = this.entries[this.entries.length - 1];
    if (last && this.entries.length > this.head && last.t === now) {
      last.n += n;
      last.c += c;
    } else {
      this.entries.push({ t: now, n, c });
    }
    this.count += n;
    this.cost += c;
  }
}

// ---------------------------------------------------------------------------------------------
// Persistence

function corruptFile(file, why) {
  return new Error(`The sandbox Dataverse data file ${file} is corrupt (${why}). Delete it or run with --reset.`);
}

function readDataFile(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") return null;
    throw new Error(`Cannot read the sandbox Dataverse data file ${file}: ${error.message}`);
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw corruptFile(file, `not JSON: ${error.message}`);
  }
  if (!isPlainObject(data)) throw corruptFile(file, "not a JSON object");
  if (data.version !== 1) throw corruptFile(file, `unknown version ${JSON.stringify(data.version)}`);
  if (!isPlainObject(data.tables)) throw corruptFile(file, `"tables" is not an object`);
  if (data.columns !== undefined && !isPlainObject(data.columns)) throw corruptFile(file, `"columns" is not an object`);
  for (const [name, rows] of Object.entries(data.tables)) {
    if (!Array.isArray(rows)) throw corruptFile(file, `the rows of "${name}" are not an array`);
  }
  return data;
}

async function writeFileAtomically(file, columns, tables) {
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const temp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  let handle;
  try {
    handle = await fsp.open(temp, "w");
    await handle.write(`{"version":1,"columns":${JSON.stringify(columns)},"tables":{`);
    let firstTable = true;
    for (const [name, rows] of tables) {
      await handle.write(`${firstTable ? "" : ","}\n${JSON.stringify(name)}:[`);
      firstTable = false;
      for (let i = 0; i < rows.length; i += SAVE_CHUNK_ROWS) {
        const end = Math.min(rows.length, i + SAVE_CHUNK_ROWS);
        let chunk = "";
        for (let j = i; j < end; j++) chunk += `${j === 0 ? "" : ","}\n${JSON.stringify(rows[j])}`;
        await handle.write(chunk);
      }
      await handle.write("\n]");
    }
    await handle.write("\n}}\n");
    await handle.sync();
    await handle.close();
    handle = null;
    await fsp.rename(temp, file);
  } catch (error) {
    if (handle) await handle.close().catch(() => {});
    await fsp.rm(temp, { force: true }).catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// The stand-in

/**
 * Creates a Dataverse Web API stand-in. See the header of this file and `handle`.
 * @param {{file?: string, tables: object, latencyMs?: number, protection?: object|boolean}} options
 */
export function createDataverse({ file = null, tables, latencyMs = 0, protection = null } = {}) {
  if (!isPlainObject(tables) || Object.keys(tables).length === 0) throw new Error("sandbox/dataverse: `tables` must define at least one table");
  const byName = new Map();
  const bySet = new Map();
  for (const [logical, def] of Object.entries(tables)) {
    const t = compileTable(logical, def);
    if (bySet.has(t.entitySet)) throw new Error(`sandbox/dataverse: entity set '${t.entitySet}' is used by two tables`);
    byName.set(logical, t);
    bySet.set(t.entitySet, t);
  }

  const limits = protection
    ? {
        ...DEFAULT_PROTECTION,
        ...(isPlainObject(protection) ? protection : {}),
        costMs: { ...DEFAULT_PROTECTION.costMs, ...(isPlainObject(protection?.costMs) ? protection.costMs : {}) },
      }
    : null;
  let slidingWindow = limits ? new SlidingWindow(limits.windowMs) : null;
  // The sandbox user's privileges, as their security roles give them: deleting contacts, and
  // reading the integration record (the role "SALESmanago user"). A test takes one away to see
  // what such a user sees.
  let userPrivileges = { delete: true, readIntegration: true };

  let version = 0;
  const nextVersion = () => ++version;
  const baseLatency = Number(latencyMs) || 0;
  const faults = { latencyMs: null, throttle: null, seen: 0, fired: 0 };
  let stats = freshStats();
  let inFlight = 0;
  const foreignTables = {}; // tables in the data file that are not defined: kept as they are
  const foreignColumns = {};

  function freshStats() {
    return { requests: 0, byMethod: { GET: 0, POST: 0, PATCH: 0, DELETE: 0 }, batches: 0, batchedOperations: 0, throttled: 0, inFlightPeak: 0 };
  }

  function table(logical) {
    const t = byName.get(logical);
    if (!t) throw new Error(`sandbox/dataverse: unknown table '${logical}' (known: ${[...byName.keys()].join(", ")})`);
    return t;
  }

  // ----- rows --------------------------------------------------------------------------------

  function applyComputed(t, row) {
    for (const [name, fn] of t.computed) {
      let value;
      try {
        value = fn({ ...row });
      } catch {
        value = null;
      }
      row[name] = value === undefined ? null : value;
    }
    return row;
  }

  function insertRecord(t, row, undo) {
    t.indexes = undefined;
    const id = row[t.primaryKey];
    t.records.set(id, { row, version: nextVersion(), seq: t.seq++ });
    t.sortedKeys.splice(bound(t.sortedKeys, id, false), 0, id);
    if (undo) undo.push({ t, id, before: undefined });
    markDirty();
  }

  function replaceRecord(t, id, row, undo) {
    t.indexes = undefined;
    const before = t.records.get(id);
    if (undo) undo.push({ t, id, before });
    t.records.set(id, { row, version: nextVersion(), seq: before.seq });
    markDirty();
  }

  function deleteRecord(t, id, undo) {
    t.indexes = undefined;
    const before = t.records.get(id);
    if (undo) undo.push({ t, id, before });
    t.records.delete(id);
    const i = bound(t.sortedKeys, id, false);
    if (t.sortedKeys[i] === id) t.sortedKeys.splice(i, 1);
    markDirty();
  }

  function rollback(undo) {
    const reorder = new Set();
    for (let i = undo.length - 1; i >= 0; i--) {
      const { t, id, before } = undo[i];
      t.indexes = undefined;
      if (before === undefined) {
        t.records.delete(id);
        const k = bound(t.sortedKeys, id, false);
        if (t.sortedKeys[k] === id) t.sortedKeys.splice(k, 1);
      } else {
        if (!t.records.has(id)) {
          t.sortedKeys.splice(bound(t.sortedKeys, id, false), 0, id);
          reorder.add(t);
        }
        t.records.set(id, before);
      }
    }
    for (const t of reorder) t.records = new Map([...t.records].sort((a, b) => a[1].seq - b[1].seq));
    if (undo.length) markDirty();
  }

  /** The full row of a record: every defined column, null when unset. */
  function fullRow(t, row) {
    const out = {};
    for (const name of t.columns.keys()) out[name] = row[name] === undefined ? null : row[name];
    return out;
  }

  /** A JSON object of the body's column values, checked; throws DvError. */
  function changesFromBody(t, body, { allowSystem = false } = {}) {
    const changes = {};
    for (const [key, value] of Object.entries(body)) {
      if (key.startsWith("@")) continue; // @odata.type, @odata.etag, …
      const at = key.indexOf("@");
      if (at > 0) {
        const prop = key.slice(0, at);
        if (key.endsWith("@odata.bind"))
          throw badQuery(`An undeclared property '${prop}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values.`);
        continue;
      }
      const col = t.columns.get(key);
      if (!col) throw badQuery(`The property '${key}' does not exist on type 'Microsoft.Dynamics.CRM.${t.logical}'. Make sure to only use property names that are defined by the type.`);
      if (col.computed || (col.readOnly && !allowSystem)) continue; // server-set: ignored, as Dataverse does
      changes[key] = coerceValue(t, col, value);
    }
    return changes;
  }

  function newRow(t, changes) {
    const row = {};
    for (const name of t.columns.keys()) row[name] = null;
    Object.assign(row, changes);
    if (row[t.primaryKey] == null) row[t.primaryKey] = randomUUID();
    const now = nowIso();
    if (row.createdon == null) row.createdon = now;
    if (row.modifiedon == null) row.modifiedon = row.createdon;
    return applyComputed(t, row);
  }

  // ----- persistence -------------------------------------------------------------------------

  let dirty = false;
  let timer = null;
  let saving = null;
  let lastSaveError = null;
  let reportedError = null;

  function markDirty() {
    if (!file) return;
    dirty = true;
    scheduleSave();
  }

  function scheduleSave() {
    if (!file || !dirty || timer || saving) return;
    timer = setTimeout(() => {
      timer = null;
      startSave();
    }, SAVE_DELAY_MS);
  }

  function snapshot() {
    const columns = { ...foreignColumns };
    const data = [];
    for (const t of byName.values()) {
      if (t.added.size) columns[t.logical] = Object.fromEntries([...t.added.values()].map((c) => [c.name, columnDefinition(c)]));
      data.push([t.logical, Array.from(t.records.values(), (rec) => rec.row)]);
    }
    for (const [name, rows] of Object.entries(foreignTables)) data.push([name, rows]);
    return { columns, data };
  }

  function startSave() {
    dirty = false;
    const { columns, data } = snapshot();
    saving = writeFileAtomically(file, columns, data)
      .then(
        () => {
          lastSaveError = null;
          reportedError = null;
        },
        (error) => {
          lastSaveError = error;
          if (reportedError !== error.message) {
            reportedError = error.message;
            console.error(`sandbox/dataverse: could not save ${file}: ${error.message}`);
          }
        },
      )
      .finally(() => {
        saving = null;
        scheduleSave();
      });
    return saving;
  }

  async function flush() {
    if (!file) return;
    for (let i = 0; i < 100; i++) {
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      if (saving) {
        await saving;
        continue;
      }
      if (dirty) {
        await startSave();
        continue;
      }
      break;
    }
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (lastSaveError) throw lastSaveError;
  }

  function loadRows(t, rows, where) {
    const records = new Map();
    for (const raw of rows) {
      if (!isPlainObject(raw)) throw corruptFile(where, `a row of "${t.logical}" is not an object`);
      const id = raw[t.primaryKey];
      if (typeof id !== "string" || !GUID_RE.test(id)) throw corruptFile(where, `a row of "${t.logical}" has no valid ${t.primaryKey}`);
      const key = id.toLowerCase();
      if (records.has(key)) throw corruptFile(where, `${t.primaryKey} ${key} appears twice in "${t.logical}"`);
      const row = { ...raw, [t.primaryKey]: key };
      records.set(key, { row, version: nextVersion(), seq: t.seq++ });
    }
    t.records = records;
    t.sortedKeys = [...records.keys()].sort();
    t.indexes = undefined;
  }

  if (file) {
    const data = readDataFile(file);
    if (data) {
      for (const [logical, cols] of Object.entries(data.columns ?? {})) {
        const t = byName.get(logical);
        if (!t) {
          foreignColumns[logical] = cols;
          continue;
        }
        if (!isPlainObject(cols)) throw corruptFile(file, `the added columns of "${logical}" are not an object`);
        for (const [name, def] of Object.entries(cols)) {
          let column;
          try {
            column = normalizeColumn(logical, name, def);
          } catch (error) {
            throw corruptFile(file, error.message);
          }
          if (t.columns.has(name) && !t.added.has(name)) {
            // The solution now defines a column the org had (a manual set-up it upgrades):
            // Dataverse's import keeps its data, but cannot change its type.
            const defined = t.columns.get(name);
            if (defined.type !== column.type) {
              throw new Error(
                `sandbox/dataverse: importing the solution over ${file} would fail: "${logical}.${name}" is ${column.type} there and ${defined.type} in the solution`,
              );
            }
            continue;
          }
          t.columns.set(name, column);
          t.added.set(name, column);
        }
      }
      for (const [logical, rows] of Object.entries(data.tables)) {
        const t = byName.get(logical);
        if (t) loadRows(t, rows, file);
        else foreignTables[logical] = rows;
      }
    }
  }

  // ----- HTTP helpers ------------------------------------------------------------------------

  const json = (status, body, headers = {}) => ({ status, headers: { "Content-Type": JSON_TYPE, "OData-Version": "4.0", ...headers }, body: JSON.stringify(body) });
  const empty = (status, headers = {}) => ({ status, headers: { "OData-Version": "4.0", ...headers }, body: "" });
  const errorResponse = (error) => json(error.status, { error: { code: error.code, message: error.message } }, error.headers);

  const etag = (rec) => `W/"${rec.version}"`;

  function formattedValue(col, value, lcid) {
    if (value == null) return undefined;
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
  function project(t, rec, select, ctx) {
    const out = { "@odata.etag": etag(rec) };
    const cols = select || [...t.columns.values()];
    for (const col of cols) {
      const value = rec.row[col.name] === undefined ? null : rec.row[col.name];
      out[col.name] = value;
      if (ctx.annotations) {
        const f = formattedValue(col, value, ctx.lcid);
        if (f !== undefined) out[`${col.name}@OData.Community.Display.V1.FormattedValue`] = f;
      }
    }
    if (!(t.primaryKey in out)) out[t.primaryKey] = rec.row[t.primaryKey];
    return out;
  }

  function contextUrl(ctx, t, select, suffix = "") {
    const cols = select ? `(${select.map((c) => c.name).join(",")})` : "";
    return `${ctx.base}$metadata#${t.entitySet}${cols}${suffix}`;
  }

  function parseKey(t, key) {
    const text = key.trim();
    if (GUID_RE.test(text)) return text.toLowerCase();
    if (/^\{[0-9a-f-]{36}\}$/i.test(text)) throw badQuery(`Bad Request - Error in query syntax: the key '${key}' must be a GUID without braces.`);
    if (text.includes("=")) throw badQuery(`The key '${key}' is not valid for '${t.logical}': the sandbox defines no alternate keys.`);
    throw badQuery(`Bad Request - Error in query syntax: '${key}' is not a valid GUID key for '${t.entitySet}'.`);
  }

  const missing = (t, id) => new DvError(404, CODE_NOT_EXIST, `${t.logical} With Id = ${id} Does Not Exist`);

  function checkIfMatch(ctx, rec) {
    const ifMatch = ctx.headers["if-match"];
    if (ifMatch && ifMatch.trim() !== "*" && !ifMatch.split(",").some((e) => e.trim() === etag(rec)))
      throw new DvError(412, CODE_VERSION, "The version of the existing record doesn't match the RowVersion property provided.");
  }

  function parseJsonObject(t, text) {
    let body;
    try {
      body = JSON.parse(text || "");
    } catch {
      throw badPayload(`Error identified in Payload provided by the user for Entity :'${t.logical}'. The request body is not valid JSON.`);
    }
    if (!isPlainObject(body)) throw badPayload(`Error identified in Payload provided by the user for Entity :'${t.logical}'. The request body must be a JSON object.`);
    return body;
  }

  function rejectUnknownOptions(q, allowed) {
    for (const key of q.keys()) {
      if (!key.startsWith("$")) continue;
      if (key === "$skip") throw badQuery("The query parameter $skip is not supported.");
      if (!allowed.includes(key)) throw badQuery(`The query parameter ${key} is not supported.`);
    }
  }

  function rejectExpand(t, q) {
    const expand = q.get("$expand");
    if (expand == null) return;
    const name = expand.split(/[(,]/)[0].trim();
    throw noProperty(t, name || expand);
  }

  // ----- entity sets -------------------------------------------------------------------------

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
    return found.sort();
  }

  function queryRows(t, ctx, q) {
    rejectUnknownOptions(q, ["$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$expand"]);
    rejectExpand(t, q);
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
    if (prefer["odata.maxpagesize"] !== undefined) {
      const n = Number(prefer["odata.maxpagesize"]);
      if (Number.isInteger(n) && n > 0) {
        pageSize = Math.min(n, MAX_PAGE_SIZE);
        applied.push(`odata.maxpagesize=${pageSize}`);
      }
    }
    if (ctx.annotations) applied.push(`odata.include-annotations="${ctx.annotationsRaw}"`);
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
      for (; i >= 0 && i < keys.length && collected.length <= want; i += step) {
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
    body.value = page.map((rec) => project(t, rec, select, ctx));
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

  function representationHeaders(ctx) {
    return ctx.prefer.return === "representation" ? { "Preference-Applied": "return=representation" } : null;
  }

  function createRow(t, ctx, q) {
    rejectUnknownOptions(q, ["$select", "$expand"]);
    rejectExpand(t, q);
    const select = parseSelect(t, q.get("$select"));
    const changes = changesFromBody(t, parseJsonObject(t, ctx.body));
    if (changes[t.primaryKey] != null && t.records.has(changes[t.primaryKey])) throw new DvError(412, CODE_DUPLICATE, "A record with matching key values already exists.");
    const row = newRow(t, changes);
    insertRecord(t, row, ctx.undo);
    const id = row[t.primaryKey];
    const entityId = `${ctx.base}${t.entitySet}(${id})`;
    ctx.created = { t, id };
    const rep = representationHeaders(ctx);
    if (rep) {
      const rec = t.records.get(id);
      return json(201, { "@odata.context": contextUrl(ctx, t, select, "/$entity"), ...project(t, rec, select, ctx) }, { ...rep, "OData-EntityId": entityId, Location: entityId });
    }
    return empty(204, { "OData-EntityId": entityId });
  }

  function updateRow(t, id, ctx, q, changesOverride) {
    rejectUnknownOptions(q, ["$select", "$expand"]);
    rejectExpand(t, q);
    const select = parseSelect(t, q.get("$select"));
    const rec = t.records.get(id);
    if (!rec) throw missing(t, id);
    checkIfMatch(ctx, rec);
    const changes = changesOverride || changesFromBody(t, parseJsonObject(t, ctx.body));
    if (changes[t.primaryKey] != null && changes[t.primaryKey] !== id) throw badQuery(`The primary key '${t.primaryKey}' of a record cannot be changed (${id} → ${changes[t.primaryKey]}).`);
    const row = applyComputed(t, { ...rec.row, ...changes, [t.primaryKey]: id, modifiedon: nowIso() });
    replaceRecord(t, id, row, ctx.undo);
    const entityId = `${ctx.base}${t.entitySet}(${id})`;
    const rep = representationHeaders(ctx);
    if (rep) return json(200, { "@odata.context": contextUrl(ctx, t, select, "/$entity"), ...project(t, t.records.get(id), select, ctx) }, { ...rep, "OData-EntityId": entityId });
    return empty(204, { "OData-EntityId": entityId });
  }

  function entitySetRoute(t, segs, ctx, q) {
    const [first, ...rest] = segs;
    const method = ctx.method;
    // A user without the role "SALESmanago user" cannot read the integration table.
    if (t.logical === "new_salesmanagointegration" && method === "GET" && userPrivileges.readIntegration === false) {
      throw new DvError(403, CODE_PRIVILEGE, `Principal user (Id=${WHO_AM_I.UserId}, type=8) is missing prvReadnew_salesmanagointegration privilege`);
    }
    if (first.key === null) {
      if (rest.length) throw notFoundSegment(rest[0].name);
      if (method === "GET") return queryRows(t, ctx, q);
      if (method === "POST") return createRow(t, ctx, q);
      throw notAllowed(method, `the entity set '${t.entitySet}'`, "GET, POST");
    }
    const id = parseKey(t, first.key);
    if (rest.length === 0) {
      if (method === "GET") {
        rejectUnknownOptions(q, ["$select", "$expand", "$filter", "$orderby", "$top", "$count"]);
        rejectExpand(t, q);
        const select = parseSelect(t, q.get("$select"));
        const rec = t.records.get(id);
        if (!rec) throw missing(t, id);
        const ifNoneMatch = ctx.headers["if-none-match"];
        if (ifNoneMatch && ifNoneMatch.split(",").some((e) => e.trim() === etag(rec))) return empty(304, { ETag: etag(rec) });
        const headers = { ETag: etag(rec) };
        if (ctx.annotations) headers["Preference-Applied"] = `odata.include-annotations="${ctx.annotationsRaw}"`;
        return json(200, { "@odata.context": contextUrl(ctx, t, select, "/$entity"), ...project(t, rec, select, ctx) }, headers);
      }
      if (method === "PATCH") return updateRow(t, id, ctx, q);
      if (method === "DELETE") {
        const rec = t.records.get(id);
        if (!rec) throw missing(t, id);
        if (t.logical === "contact" && !userPrivileges.delete) {
          throw new DvError(403, CODE_PRIVILEGE, `Principal user (Id=${WHO_AM_I.UserId}, type=8) is missing prvDeleteContact privilege`);
        }
        checkIfMatch(ctx, rec);
        deleteRecord(t, id, ctx.undo);
        return empty(204);
      }
      throw notAllowed(method, `a ${t.logical} record`, "GET, PATCH, DELETE");
    }
    // a single property: GET / PUT {"value": …} / DELETE (sets it to null)
    if (rest.length > 1 || rest[0].key !== null) throw notFoundSegment(rest[rest.length - 1].name);
    const col = t.columns.get(rest[0].name);
    if (!col) throw notFoundSegment(rest[0].name);
    const rec = t.records.get(id);
    if (!rec) throw missing(t, id);
    if (method === "GET") {
      const value = rec.row[col.name] ?? null;
      if (value === null) return empty(204);
      return json(200, { "@odata.context": `${ctx.base}$metadata#${t.entitySet}(${id})/${col.name}`, value });
    }
    if (method === "PUT" || method === "DELETE") {
      if (col.name === t.primaryKey || col.readOnly || col.computed) throw badQuery(`The property '${col.name}' of '${t.logical}' cannot be set.`);
      let value = null;
      if (method === "PUT") {
        const body = parseJsonObject(t, ctx.body);
        if (!("value" in body)) throw badPayload(`A PUT of a single property needs a body {"value": …}.`);
        value = body.value;
      }
      return updateRow(t, id, { ...ctx, prefer: {} }, new Map(), { [col.name]: coerceValue(t, col, value) });
    }
    throw notAllowed(method, `the property '${col.name}'`, "GET, PUT, DELETE");
  }

  // ----- metadata ----------------------------------------------------------------------------

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

  function optionSetOf(t, col, lcid) {
    if (col.type === "Picklist") {
      return {
        MetadataId: guidFrom(`optionset:${t.logical}.${col.name}`),
        Name: `${t.logical}_${col.name}`,
        OptionSetType: "Picklist",
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
    const type = col.type === "DateOnly" ? "DateTime" : col.type;
    const a = {
      "@odata.type": `#Microsoft.Dynamics.CRM.${ATTRIBUTE_ODATA_TYPE[col.type]}`,
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

  function metadataRoute(segs, ctx, q) {
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
      if (attrs) entity.Attributes = [...t.columns.values()].map((c) => pickProperties(attributeMetadata(t, c, lcid, wantOptionSets), attrs.select));
      return entity;
    };
    const [first, ...rest] = segs;
    if (first.key === null) {
      if (rest.length) throw notFoundSegment(rest[0].name);
      let list = [...byName.values()];
      const filter = q.get("$filter");
      if (filter) {
        const m = /^\s*LogicalName\s+eq\s+'((?:[^']|'')*)'\s*$/.exec(filter);
        if (m) list = list.filter((t) => t.logical === m[1].replace(/''/g, "'"));
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
      if (!Object.values(ATTRIBUTE_ODATA_TYPE).includes(cast)) throw notFoundSegment(rest[1].name);
    }
    const select = listOf(q.get("$select"));
    const fits = (c) => !cast || cast === "AttributeMetadata" || ATTRIBUTE_ODATA_TYPE[c.type] === cast;
    const context = `${ctx.base}$metadata#EntityDefinitions('${t.logical}')/Attributes${cast ? `/Microsoft.Dynamics.CRM.${cast}` : ""}`;
    if (rest[0].key !== null) {
      const k = metadataKey(rest[0].key, "Attributes");
      const col = [...t.columns.values()].find((c) => (k.logicalName !== undefined ? c.name === k.logicalName : guidFrom(`attribute:${t.logical}.${c.name}`) === k.metadataId));
      if (!col || !fits(col)) throw new DvError(404, CODE_NOT_EXIST, `Could not find attribute ${k.logicalName ?? k.metadataId} on entity '${t.logical}'${cast ? ` of type ${cast}` : ""}.`);
      return json(200, { "@odata.context": `${context}/$entity`, ...pickProperties(attributeMetadata(t, col, lcid, wantOptionSets), select) });
    }
    const value = [...t.columns.values()].filter(fits).map((c) => pickProperties(attributeMetadata(t, c, lcid, wantOptionSets), select));
    return json(200, { "@odata.context": context, value });
  }

  // ----- routing -----------------------------------------------------------------------------

  /**
   * `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t={'@odata.id':'<set>(<id>)'}`:
   * the user's rights on that row, as flags.
   */
  function principalAccess(segs, ctx, q) {
    if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function RetrievePrincipalAccess", "GET");
    if (segs.length !== 2 || segs[1].key !== "Target=@t") throw badQuery("RetrievePrincipalAccess takes Target=@t.");
    const target = /^\{'@odata\.id':'([a-z_]+)\(([0-9a-f-]{36})\)'\}$/.exec(q.get("@t") || "");
    if (!target) throw badQuery(`The parameter alias @t is not a row reference: '${q.get("@t")}'.`);
    const t = bySet.get(target[1]);
    if (!t) throw notFoundSegment(target[1]);
    if (!t.records.has(target[2])) throw missing(t, target[2]);
    const rights = ["ReadAccess", "WriteAccess", "AppendAccess", "AppendToAccess", "CreateAccess"];
    if (!(t.logical === "contact" && !userPrivileges.delete)) rights.push("DeleteAccess");
    rights.push("ShareAccess", "AssignAccess");
    return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse`, AccessRights: rights.join(", ") });
  }

  function parseSegments(p) {
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

  /** Runs one operation (top level or inside a $batch) synchronously; returns {status, headers, body}. */
  function execute(ctx) {
    try {
      let p;
      try {
        p = decodeURIComponent(ctx.path);
      } catch {
        throw badQuery(`The path '${ctx.path}' is not correctly percent-encoded.`);
      }
      const q = parseQuery(ctx.rawQuery);
      const segs = parseSegments(p);
      if (segs.length === 0) {
        if (ctx.method !== "GET") throw notAllowed(ctx.method, "the service document", "GET");
        return json(200, { "@odata.context": `${ctx.base}$metadata`, value: [...byName.values()].map((t) => ({ name: t.entitySet, kind: "EntitySet", url: t.entitySet })) });
      }
      const first = segs[0];
      if (first.name === "$batch") throw badQuery(ctx.inBatch ? "A $batch cannot contain another $batch." : "A $batch request must be a POST.");
      if (first.name === "$metadata") throw new DvError(404, CODE_NOT_FOUND_SEGMENT, "The sandbox does not serve the CSDL $metadata document; use EntityDefinitions.");
      if (first.name === "WhoAmI") {
        if (segs.length > 1 || (first.key !== null && first.key.trim() !== "")) throw notFoundSegment(segs[segs.length - 1].name);
        if (ctx.method !== "GET") throw notAllowed(ctx.method, "the function WhoAmI", "GET");
        return json(200, { "@odata.context": `${ctx.base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`, ...WHO_AM_I });
      }
      if (first.name === "EntityDefinitions") return metadataRoute(segs, ctx, q);
      if (first.name === "systemusers" && segs[1]?.name === "Microsoft.Dynamics.CRM.RetrievePrincipalAccess") {
        return principalAccess(segs, ctx, q);
      }
      const t = bySet.get(first.name);
      if (!t) {
        if (byName.has(first.name)) throw new DvError(404, CODE_NOT_FOUND_SEGMENT, `Resource not found for the segment '${first.name}'. Use the entity set name '${byName.get(first.name).entitySet}'.`);
        throw notFoundSegment(first.name);
      }
      return entitySetRoute(t, segs, ctx, q);
    } catch (error) {
      if (error instanceof DvError) return errorResponse(error);
      return errorResponse(new DvError(500, CODE_UNEXPECTED, `An unexpected error occurred: ${error && error.message}`));
    }
  }

  function contextFor(method, target, headers, body, base, extra = {}) {
    const qi = target.indexOf("?");
    const prefer = parsePrefer(headers.prefer);
    const annotationsRaw = typeof prefer["odata.include-annotations"] === "string" ? prefer["odata.include-annotations"] : null;
    const annotations = !!annotationsRaw && (annotationsRaw === "*" || /FormattedValue|\*/.test(annotationsRaw));
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
      annotationsRaw,
      lcid,
      undo: null,
      inBatch: false,
      ...extra,
    };
  }

  /** The target of a batch part relative to the API root; `$n` refers to an earlier Content-ID. */
  function batchTarget(target, contentIds) {
    let t = target;
    const ref = /^\$([^/?(]+)(.*)$/.exec(t);
    if (ref && contentIds.has(ref[1])) return contentIds.get(ref[1]) + ref[2];
    if (/^https?:\/\//i.test(t)) {
      const u = new URL(t);
      t = u.pathname + u.search;
    }
    if (t.startsWith(API_PREFIX)) return t.slice(API_PREFIX.length);
    if (t.startsWith("/")) return null;
    return t;
  }

  function runBatch(ctx, parsed) {
    const continueOnError = ctx.prefer["odata.continue-on-error"] !== undefined && ctx.prefer["odata.continue-on-error"] !== "false";
    const lcidHeader = ctx.headers["x-sandbox-lcid"];
    const one = (req, contentIds, undo) => {
      const target = batchTarget(req.target, contentIds);
      const headers = { ...req.headers };
      if (lcidHeader && !headers["x-sandbox-lcid"]) headers["x-sandbox-lcid"] = lcidHeader;
      if (target === null) return { response: errorResponse(notFoundSegment(req.target)), created: null };
      const inner = contextFor(req.method, target, headers, req.body, ctx.base, { undo, inBatch: true });
      const response = execute(inner);
      return { response, created: inner.created || null };
    };
    const parts = [];
    for (const item of parsed.items) {
      if (!item.changeset) {
        const { response } = one(item.request, new Map(), null);
        parts.push({ contentId: item.request.contentId, response });
        if (response.status >= 400 && !continueOnError) break;
        continue;
      }
      const undo = [];
      const contentIds = new Map();
      const responses = [];
      let failed = null;
      for (const req of item.requests) {
        let result;
        if (req.method === "GET") result = { response: errorResponse(badQuery("A change set cannot contain a GET request; put it outside the change set.")) };
        else result = one(req, contentIds, undo);
        if (result.response.status >= 400) {
          failed = { contentId: req.contentId, response: result.response };
          break;
        }
        if (req.contentId != null && result.created) contentIds.set(String(req.contentId), `${result.created.t.entitySet}(${result.created.id})`);
        responses.push({ contentId: req.contentId, response: result.response });
      }
      if (failed) {
        rollback(undo);
        parts.push(failed);
        if (!continueOnError) break;
      } else {
        parts.push({ changeset: responses });
      }
    }
    const boundary = `batchresponse_${randomUUID()}`;
    let out = "";
    const partHeaders = (contentId) => `Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n${contentId != null ? `Content-ID: ${contentId}\r\n` : ""}\r\n`;
    for (const part of parts) {
      if (part.changeset) {
        const inner = `changesetresponse_${randomUUID()}`;
        out += `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${inner}\r\n\r\n`;
        for (const r of part.changeset) out += `--${inner}\r\n${partHeaders(r.contentId)}${httpText(r.response)}\r\n`;
        out += `--${inner}--\r\n`;
      } else {
        out += `--${boundary}\r\n${partHeaders(part.contentId)}${httpText(part.response)}\r\n`;
      }
    }
    out += `--${boundary}--\r\n`;
    const headers = { "Content-Type": `multipart/mixed; boundary=${boundary}`, "OData-Version": "4.0" };
    if (continueOnError) headers["Preference-Applied"] = "odata.continue-on-error";
    return { status: 200, headers, body: out };
  }

  // ----- the request pipeline ----------------------------------------------------------------

  function tooMany(code, message, retryAfterSeconds) {
    stats.throttled++;
    return errorResponse(new DvError(429, code, message, { "Retry-After": String(retryAfterSeconds) }));
  }

  const requestLimitMessage = () =>
    `Number of requests exceeded the limit of ${limits ? limits.maxRequests : DEFAULT_PROTECTION.maxRequests} over time window of ${Math.round((limits ? limits.windowMs : DEFAULT_PROTECTION.windowMs) / 1000)} seconds.`;

  function readBody(req) {
    return new Promise((resolve, reject) => {
      if (req.readableEnded) return resolve("");
      const chunks = [];
      let size = 0;
      let settled = false;
      const done = (fn, value) => {
        if (settled) return;
        settled = true;
        fn(value);
      };
      req.on("data", (chunk) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          done(reject, new DvError(413, CODE_BAD_QUERY, `The request body is larger than ${MAX_BODY_BYTES} bytes.`));
          return;
        }
        if (!settled) chunks.push(chunk);
      });
      req.on("end", () => done(resolve, Buffer.concat(chunks).toString("utf8")));
      req.on("error", (error) => done(reject, error));
      req.on("close", () => done(reject, new Error("request aborted")));
    });
  }

  function baseUrl(req) {
    const proto = String(req.headers["x-forwarded-proto"] || (req.socket && req.socket.encrypted ? "https" : "http")).split(",")[0].trim();
    const host = req.headers.host || "localhost";
    return `${proto}://${host}${API_PREFIX}`;
  }

  async function serve(req, target) {
    const method = req.method || "GET";
    // concurrency: answered at once, before any latency
    if (limits && inFlight > limits.maxConcurrent) return tooMany(CODE_CONCURRENCY, `Number of concurrent requests exceeded the limit of ${limits.maxConcurrent}.`, 1);
    let body;
    try {
      body = await readBody(req);
    } catch (error) {
      if (error instanceof DvError) return errorResponse(error);
      return null; // the client went away
    }
    const latency = faults.latencyMs ?? baseLatency;
    if (latency > 0) await sleep(latency);
    const throttle = faults.throttle;
    if (throttle) {
      faults.seen++;
      if (faults.seen % throttle.every === 0 && (throttle.count == null || faults.fired < throttle.count)) {
        faults.fired++;
        return tooMany(CODE_REQUESTS, requestLimitMessage(), throttle.retryAfter);
      }
    }
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
    const ctx = contextFor(method, target, headers, body, baseUrl(req));
    const isBatch = ctx.path === "$batch";
    let parsed = null;
    let operations = 1;
    let cost = limits ? limits.costMs[method] ?? limits.costMs.POST ?? 10 : 0;
    if (isBatch && method === "POST") {
      stats.batches++;
      try {
        parsed = parseBatch(headers["content-type"], body);
        if (parsed.operations > MAX_BATCH_OPERATIONS) throw badQuery(`The number of requests in the batch (${parsed.operations}) exceeds the limit of ${MAX_BATCH_OPERATIONS}.`);
      } catch (error) {
        if (!(error instanceof DvError)) throw error;
        return errorResponse(error);
      }
      stats.batchedOperations += parsed.operations;
      // A batch counts as one request towards the request limit unless told otherwise (the
      // reference: "a batch counts as fewer requests"); its operations' execution time all counts.
      operations = limits && limits.batchCountsOperations ? Math.max(1, parsed.operations) : 1;
      if (limits) {
        cost = 0;
        for (const item of parsed.items) for (const r of item.changeset ? item.requests : [item.request]) cost += limits.costMs[r.method] ?? limits.costMs.POST ?? 10;
      }
    }
    if (limits) {
      const now = performance.now();
      const verdict = slidingWindow.check(now, operations, cost, limits.maxRequests, limits.maxExecutionMs);
      if (verdict) {
        const seconds = Math.max(1, Math.ceil(verdict.waitMs / 1000));
        if (verdict.kind === "requests") return tooMany(CODE_REQUESTS, requestLimitMessage(), seconds);
        return tooMany(
          CODE_EXECUTION,
          `Combined execution time of incoming requests exceeded limit of ${formatThousands(limits.maxExecutionMs)} milliseconds over time window of ${Math.round(limits.windowMs / 1000)} seconds.`,
          seconds,
        );
      }
      slidingWindow.add(now, operations, cost);
    }
    if (isBatch) {
      if (method !== "POST") return errorResponse(notAllowed(method, "$batch", "POST"));
      return runBatch(ctx, parsed);
    }
    return execute(ctx);
  }

  /** Answers requests under /api/data/v9.2/; returns false (and does nothing) for any other path. */
  async function handle(req, res) {
    const url = req.url || "/";
    const qi = url.indexOf("?");
    const pathname = qi < 0 ? url : url.slice(0, qi);
    if (!pathname.startsWith(API_PREFIX)) return false;
    const method = req.method || "GET";
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] || 0) + 1;
    inFlight++;
    if (inFlight > stats.inFlightPeak) stats.inFlightPeak = inFlight;
    try {
      let response;
      try {
        response = await serve(req, url.slice(API_PREFIX.length));
      } catch (error) {
        response = errorResponse(new DvError(500, CODE_UNEXPECTED, `An unexpected error occurred: ${error && error.message}`));
      }
      if (response && !res.headersSent && !res.destroyed) {
        const bytes = Buffer.from(response.body || "", "utf8");
        const headers = { ...response.headers };
        if (response.status !== 204 && response.status !== 304) headers["Content-Length"] = String(bytes.length);
        try {
          res.writeHead(response.status, headers);
        } catch (error) {
          // e.g. a header value echoed from the request that Node refuses
          const fallback = JSON.stringify({ error: { code: CODE_UNEXPECTED, message: `An unexpected error occurred: ${error.message}` } });
          res.writeHead(500, { "Content-Type": JSON_TYPE, "OData-Version": "4.0", "Content-Length": String(Buffer.byteLength(fallback)) });
          res.end(fallback);
          return true;
        }
        res.end(response.status === 204 || response.status === 304 || method === "HEAD" ? undefined : bytes);
      } else if (!response && !res.destroyed) {
        res.destroy();
      }
    } finally {
      inFlight--;
    }
    return true;
  }

  // ----- the JavaScript API ------------------------------------------------------------------

  function rows(logical) {
    const t = table(logical);
    return Array.from(t.records.values(), (rec) => fullRow(t, rec.row));
  }

  function seed(logical, list) {
    const t = table(logical);
    if (!Array.isArray(list)) throw new Error(`sandbox/dataverse: seed('${logical}', rows) needs an array of rows`);
    const records = new Map();
    let seq = 0;
    list.forEach((input, index) => {
      if (!isPlainObject(input)) throw new Error(`sandbox/dataverse: seed('${logical}'): row ${index} is not an object`);
      let changes;
      try {
        changes = changesFromBody(t, input, { allowSystem: true });
      } catch (error) {
        throw new Error(`sandbox/dataverse: seed('${logical}'): row ${index}: ${error.message}`);
      }
      const row = newRow(t, changes);
      const id = row[t.primaryKey];
      if (records.has(id)) throw new Error(`sandbox/dataverse: seed('${logical}'): row ${index} repeats ${t.primaryKey} ${id}`);
      records.set(id, { row, version: nextVersion(), seq: seq++ });
    });
    t.records = records;
    t.seq = seq;
    t.sortedKeys = [...records.keys()].sort();
    t.indexes = undefined;
    markDirty();
  }

  function setFaults(options = {}) {
    if (!isPlainObject(options)) throw new Error("sandbox/dataverse: setFaults({latencyMs, throttle}) needs an object");
    if ("latencyMs" in options) {
      const ms = options.latencyMs;
      if (ms == null) faults.latencyMs = null;
      else if (typeof ms === "number" && ms >= 0 && Number.isFinite(ms)) faults.latencyMs = ms;
      else throw new Error("sandbox/dataverse: latencyMs must be a non-negative number (or null for the default)");
    }
    if ("throttle" in options) {
      const th = options.throttle;
      if (th == null || th === false) faults.throttle = null;
      else {
        const every = Number(th.every ?? 1);
        const retryAfter = Number(th.retryAfter ?? 1);
        const count = th.count == null ? null : Number(th.count);
        if (!Number.isInteger(every) || every < 1) throw new Error("sandbox/dataverse: throttle.every must be a positive integer");
        if (!Number.isInteger(retryAfter) || retryAfter < 0) throw new Error("sandbox/dataverse: throttle.retryAfter must be a whole number of seconds");
        if (count !== null && (!Number.isInteger(count) || count < 0)) throw new Error("sandbox/dataverse: throttle.count must be a non-negative integer");
        faults.throttle = { every, retryAfter, count };
      }
      faults.seen = 0;
      faults.fired = 0;
    }
  }

  function addColumn(logical, column) {
    const t = table(logical);
    if (!isPlainObject(column)) throw new Error("sandbox/dataverse: addColumn(table, {logicalName, type, label, …}) needs a column object");
    const name = column.logicalName ?? column.name;
    if (typeof name !== "string") throw new Error("sandbox/dataverse: addColumn needs column.logicalName");
    const normalized = normalizeColumn(logical, name, column);
    const existing = t.columns.get(name);
    if (existing && !t.added.has(name)) {
      if (existing.type !== normalized.type || existing.system) throw new Error(`sandbox/dataverse: '${logical}' already has a column '${name}' of type ${existing.type}`);
      return; // already defined by the table definitions
    }
    if (existing && existing.type !== normalized.type) throw new Error(`sandbox/dataverse: '${logical}' already has an added column '${name}' of type ${existing.type}`);
    t.columns.set(name, normalized);
    t.added.set(name, normalized);
    markDirty();
  }

  /** The columns added at run time to `logical` (as definitions keyed by logical name). */
  function columns(logical) {
    const t = table(logical);
    return Object.fromEntries([...t.added.values()].map((c) => [c.name, columnDefinition(c)]));
  }

  return {
    handle,
    rows,
    seed,
    setFaults,
    stats: () => ({ ...stats, byMethod: { ...stats.byMethod } }),
    /** The user's privileges on contacts (`{delete}`), as a security role would give them. */
    privileges: () => ({ ...userPrivileges }),
    setPrivileges(privileges) {
      userPrivileges = { ...userPrivileges, ...privileges };
    },
    resetStats() {
      stats = freshStats();
      stats.inFlightPeak = inFlight;
    },
    /** Starts an empty service-protection window, as if the last requests were 5 minutes ago. */
    resetProtection() {
      if (limits) slidingWindow = new SlidingWindow(limits.windowMs);
    },
    addColumn,
    columns,
    flush,
  };
}
