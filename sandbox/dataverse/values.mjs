// Column values: the column types, their limits, and the check that turns a value of a request
// body into what is stored (or a Dataverse 400).
import { DvError, CODE_VALIDATION, badPayload, badQuery } from "./errors.mjs";

export const COLUMN_TYPES = Object.freeze(["String", "Memo", "Boolean", "DateTime", "DateOnly", "Integer", "Picklist", "Uniqueidentifier"]);

export const STRING_MAX = 4000; // largest String column Dataverse allows (when a definition gives none)
export const MEMO_MAX = 1_048_576;
export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;
export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ISO_DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
const DATE_ONLY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
export const EDM = {
  String: "Edm.String",
  Memo: "Edm.String",
  Boolean: "Edm.Boolean",
  DateTime: "Edm.DateTimeOffset",
  DateOnly: "Edm.Date",
  Integer: "Edm.Int32",
  Picklist: "Edm.Int32",
  Uniqueidentifier: "Edm.Guid",
};

/** Milliseconds of a valid ISO date or date-time (no zone means UTC), else NaN. */
export function isoMillis(text) {
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

/** `value` checked against `column` and normalised for storage; throws DvError(400). */
export function coerceValue(t, column, value) {
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

/**
 * A JSON object of the body's column values, checked; throws DvError. Computed and read-only
 * columns are ignored (server-set, as Dataverse does) unless `allowSystem` (the JS API's seed).
 */
/** The id a `<nav>@odata.bind` value ("/<set>(<id>)", or a full address ending so) names. */
function boundId(column, nav, value) {
  const match = typeof value === "string" ? /(?:^|\/)([A-Za-z_][A-Za-z0-9_]*)\(\{?([0-9a-fA-F-]{36})\}?\)$/.exec(value.trim()) : null;
  if (!match || !GUID_RE.test(match[2])) throw badQuery(`The value of '${nav}@odata.bind' is not a reference such as '/${column.lookup.set}(00000000-0000-0000-0000-000000000000)'.`);
  if (match[1] !== column.lookup.set) throw badQuery(`'${nav}@odata.bind' refers to the entity set '${match[1]}'; it must refer to '${column.lookup.set}'.`);
  return match[2].toLowerCase();
}

export function changesFromBody(t, body, { allowSystem = false } = {}) {
  const changes = {};
  for (const [key, value] of Object.entries(body)) {
    if (key.startsWith("@")) continue; // @odata.type, @odata.etag, …
    const at = key.indexOf("@");
    if (at > 0) {
      const prop = key.slice(0, at);
      const nav = key.endsWith("@odata.bind") ? t.navigations?.get(prop) : null;
      if (nav) {
        changes[nav.name] = boundId(nav, prop, value);
        continue;
      }
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
