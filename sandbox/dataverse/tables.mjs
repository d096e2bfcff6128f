// Table definitions: a table as handed to createDataverse compiled to its columns (with the
// implicit ones every Dataverse table has), and the rows built from it.
//
// Rows are kept immutable in a Map per table (primary key → {row, version, seq}) in insertion order,
// plus a sorted array of primary keys for paging in key order without rescanning.
import { CODE_VALIDATION, DvError } from "./errors.mjs";
import { isPlainObject, mergeIds, nowIso, sequentialId } from "./util.mjs";
import { COLUMN_TYPES, MEMO_MAX, NAME_RE, STRING_MAX } from "./values.mjs";

/** The lookups to the user who created and last modified a row, as the Web API names them. */
export const CREATED_BY = "_createdby_value";
export const MODIFIED_BY = "_modifiedby_value";
/** The row version column every table has. */
export const VERSION = "versionnumber";

/** The owner, as the Web API names it (a systemuser lookup: the sandbox has no teams). */
export const OWNER = "_ownerid_value";

const SYSTEM_LABELS = {
  createdon: { 1033: "Created On", 1045: "Data utworzenia" },
  modifiedon: { 1033: "Modified On", 1045: "Data modyfikacji" },
  [CREATED_BY]: { 1033: "Created By", 1045: "Utworzone przez" },
  [MODIFIED_BY]: { 1033: "Modified By", 1045: "Zmodyfikowane przez" },
  [OWNER]: { 1033: "Owner", 1045: "Właściciel" },
};
/** The lookup columns every table has: Web API property → attribute (a systemuser lookup). */
const LOOKUPS = [
  [CREATED_BY, "createdby"],
  [MODIFIED_BY, "modifiedby"],
  [OWNER, "ownerid"],
];
/**
 * Status and Status Reason, as every table of a user-owned table has them ("Table definitions:
 * statecode and statuscode"): Active (0) with reason Active (1), Inactive (1) with reason
 * Inactive (2). A table's definition may give its own.
 */
const STATE = {
  statecode: { 1033: "Status", 1045: "Stan", options: [[0, "Active", "Aktywny"], [1, "Inactive", "Nieaktywny"]] },
  statuscode: { 1033: "Status Reason", 1045: "Przyczyna stanu", options: [[1, "Active", "Aktywny"], [2, "Inactive", "Nieaktywny"]] },
};
/** The reason a state has when none is given, and the state each reason belongs to. */
const DEFAULT_REASON = { 0: 1, 1: 2 };
const STATE_OF_REASON = { 1: 0, 2: 1 };
const IMPLICIT = new Set(Object.keys(SYSTEM_LABELS));
export const BOOLEAN_LABELS = { true: { 1033: "Yes", 1045: "Tak" }, false: { 1033: "No", 1045: "Nie" } };

export function normalizeColumn(tableName, name, def) {
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
export function columnDefinition(column) {
  const out = { logicalName: column.name, type: column.type, label: { ...column.label } };
  if (column.maxLength !== undefined && column.maxLength !== (column.type === "String" ? STRING_MAX : MEMO_MAX)) out.maxLength = column.maxLength;
  if (column.options) out.options = column.options.map((o) => ({ value: o.value, label: { ...o.label } }));
  return out;
}

export function compileTable(logical, def) {
  if (!NAME_RE.test(logical)) throw new Error(`sandbox/dataverse: '${logical}' is not a valid table logical name`);
  if (!isPlainObject(def)) throw new Error(`sandbox/dataverse: table '${logical}' needs a definition object`);
  const { entitySet, primaryKey } = def;
  if (typeof entitySet !== "string" || !NAME_RE.test(entitySet)) throw new Error(`sandbox/dataverse: table '${logical}' needs an entitySet name`);
  if (typeof primaryKey !== "string" || !NAME_RE.test(primaryKey)) throw new Error(`sandbox/dataverse: table '${logical}' needs a primaryKey name`);
  const columns = new Map();
  columns.set(primaryKey, { name: primaryKey, type: "Uniqueidentifier", label: isPlainObject(def.label) ? { ...def.label } : {}, system: true, readOnly: false });
  for (const [name, c] of Object.entries(def.columns ?? {})) {
    if (name === primaryKey || IMPLICIT.has(name)) {
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
  for (const [name, s] of Object.entries(STATE)) {
    if (columns.has(name)) continue;
    const options = s.options.map(([value, en, pl]) => ({ value, label: { 1033: en, 1045: pl } }));
    const metaType = name === "statecode" ? "State" : "Status";
    columns.set(name, { name, type: "Picklist", metaType, label: { 1033: s[1033], 1045: s[1045] }, options, system: true });
  }
  for (const name of ["createdon", "modifiedon"]) {
    const given = def.columns?.[name];
    columns.set(name, { name, type: "DateTime", label: isPlainObject(given?.label) ? { ...given.label } : { ...SYSTEM_LABELS[name] }, system: true, readOnly: true });
  }
  // The row's version, as the Web API gives it (Edm.Int64; its ETag is the same number): every
  // write takes a higher one, so changes of one row order by it where modifiedon (to the
  // second) cannot.
  columns.set(VERSION, { name: VERSION, type: "Integer", label: { 1033: "Version Number", 1045: "Numer wersji" }, system: true, readOnly: true });
  for (const [name, attribute] of LOOKUPS) {
    const given = def.columns?.[name];
    const label = isPlainObject(given?.label) ? { ...given.label } : { ...SYSTEM_LABELS[name] };
    columns.set(name, { name, type: "Uniqueidentifier", label, system: true, readOnly: true, lookup: { attribute, target: "systemuser" } });
  }
  // Lookups a table defines: a navigation property set with `<nav>@odata.bind: "/<set>(<id>)"`,
  // read back as the `_<attribute>_value` column, as the Web API has them.
  const navigations = new Map();
  for (const [nav, l] of Object.entries(def.lookups ?? {})) {
    if (!NAME_RE.test(nav) || !isPlainObject(l) || typeof l.attribute !== "string" || typeof l.set !== "string") throw new Error(`sandbox/dataverse: lookup '${logical}.${nav}' needs {attribute, set}`);
    const name = `_${l.attribute}_value`;
    const column = { name, type: "Uniqueidentifier", label: isPlainObject(l.label) ? { ...l.label } : {}, system: true, readOnly: true, lookup: { attribute: l.attribute, target: l.target ?? null, set: l.set } };
    columns.set(name, column);
    navigations.set(nav, column);
  }
  const primaryName = typeof def.primaryName === "string" ? def.primaryName : null;
  if (primaryName && !columns.has(primaryName)) throw new Error(`sandbox/dataverse: primaryName '${primaryName}' of table '${logical}' is not one of its columns`);
  const t = {
    logical,
    entitySet,
    primaryKey,
    primaryName,
    label: isPlainObject(def.label) ? { ...def.label } : {},
    columns,
    navigations,
    added: new Map(), // name → column, added at run time (persisted)
    computed,
    records: new Map(), // primary key → { row, version, seq }
    seq: 0,
  };
  // The primary keys in SQL Server's order ({@link sortIds}), kept lazily: a new row's key waits
  // until a reader asks (`addKey`), so creating n rows costs n log n, not n² (each creation
  // splicing a sorted array that holds millions of keys).
  let sorted = [];
  let pending = [];
  Object.defineProperty(t, "sortedKeys", {
    enumerable: true,
    get() {
      if (pending.length) {
        sorted = mergeIds(sorted, pending);
        pending = [];
      }
      return sorted;
    },
    set(keys) {
      sorted = keys;
      pending = [];
    },
  });
  t.addKey = (id) => pending.push(id);
  return t;
}

export function applyComputed(t, row) {
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

/** The full row of a record: every defined column, null when unset. */
export function fullRow(t, row) {
  const out = {};
  for (const name of t.columns.keys()) out[name] = row[name] === undefined ? null : row[name];
  return out;
}

/**
 * A new row of `changes`: a fresh primary key, createdon/modifiedon now and created/modified by
 * `userId`, unless `changes` give them (the JS API's seed; with no user they stay null).
 */
export function newRow(t, changes, userId = null) {
  const row = {};
  for (const name of t.columns.keys()) row[name] = null;
  Object.assign(row, changes);
  if (row[t.primaryKey] == null) row[t.primaryKey] = sequentialId();
  const now = nowIso();
  if (row.createdon == null) row.createdon = now;
  if (row.modifiedon == null) row.modifiedon = row.createdon;
  if (row[CREATED_BY] == null) row[CREATED_BY] = userId;
  if (row[MODIFIED_BY] == null) row[MODIFIED_BY] = row[CREATED_BY];
  if (t.columns.has(OWNER) && row[OWNER] == null) row[OWNER] = row[CREATED_BY];
  settleState(t, row, changes);
  return applyComputed(t, row);
}

/**
 * Status and Status Reason after a write of `changes` to `row` (in place): a state set alone
 * takes its default reason, a reason alone its state; a reason of another state is refused as
 * Dataverse refuses it. Tables with their own statecode/statuscode are left as they define them.
 */
export function settleState(t, row, changes) {
  const state = t.columns.get("statecode");
  const reason = t.columns.get("statuscode");
  if (!state?.system || !reason?.system) return row;
  if (changes.statuscode != null && changes.statecode == null) row.statecode = STATE_OF_REASON[row.statuscode] ?? row.statecode;
  if (row.statecode == null) row.statecode = 0;
  if (changes.statecode != null && changes.statuscode == null) row.statuscode = DEFAULT_REASON[row.statecode];
  if (row.statuscode == null) row.statuscode = DEFAULT_REASON[row.statecode];
  if (STATE_OF_REASON[row.statuscode] !== row.statecode) {
    const name = row.statecode === 0 ? "Active" : "Inactive";
    throw new DvError(400, CODE_VALIDATION, `${row.statuscode} is not a valid status code for state code ${t.logical}State.${name} on ${t.logical} with Id ${row[t.primaryKey]}.`);
  }
  return row;
}
