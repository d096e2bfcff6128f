// The store: the compiled tables and their rows, writes in transactions (a change set's can be
// rolled back; a committed one tells the commit observers), persistence to the data file, and
// the JavaScript API over the rows (rows, seed, addColumn, columns, flush, onCommit).
//
// A transaction is `{userId, undo, changes}`: `undo` (null when it cannot be rolled back) lists
// what each write replaced, newest last; `changes` what each write did, for the observers.
//
// Versions: one counter for every table, as Dataverse's row versions (each write takes a
// higher one, kept across restarts by the data file). For change tracking (changes.mjs) the
// tables that have it (`t.changeTracking`) keep a deletion log, `t.deleted` ([{id, version,
// at}], oldest first, each deletion taking a version of its own), pruned of what is older than
// the tokens' lifetime; `clock` is the time change tracking reads (tests move it forward).
//
// The recycle bin ("Keep deleted Dataverse records", see fetchxml.mjs for how it is read): the
// tables that have it (`t.recycleBin`) keep the full row of each deleted record, `t.bin` (Map id
// → {id, at, row}, in the order of deletion), for `retentionDays` on the same clock, and only
// while the environment's setting is on (`bin.enabled`). As Microsoft documents it, a deletion
// of a key the bin already holds is not kept again ("If the record with same primary key was
// already deleted before, copy to Recycle Bin is ignored for the record"), and nothing deleted
// while the setting is off is kept ("You can only restore records deleted after the feature is
// turned on").
import { VERSION, columnDefinition, compileTable, fullRow, newRow, normalizeColumn } from "./tables.mjs";
import { changesFromBody } from "./values.mjs";
import { createSaver, loadDataFile } from "./persistence.mjs";
import { bound, isPlainObject, sortIds } from "./util.mjs";

const DAY_MS = 86_400_000;

/**
 * The store of `tables` (definitions keyed by logical name), kept in `file` when given.
 * `changeTracking`: the logical names of the tables with change tracking, and how many days
 * its tokens (and the deletion log) live. `recycleBin`: whether the environment keeps deleted
 * records, the tables that do, how many days, and what a read of the bin answers while it is
 * off (`whenOff`, see fetchxml.mjs).
 * @param {{tables: object, file?: string|null, changeTracking?: {tables: string[], expireDays: number}, recycleBin?: {enabled: boolean, tables: string[], retentionDays: number, whenOff: "empty"|"error"}}} options
 */
export function createStore({ tables, file = null, changeTracking = { tables: [], expireDays: 7 }, recycleBin = { enabled: false, tables: [], retentionDays: 30, whenOff: "empty" } }) {
  if (!isPlainObject(tables) || Object.keys(tables).length === 0) throw new Error("sandbox/dataverse: `tables` must define at least one table");
  const byName = new Map();
  const bySet = new Map();
  for (const [logical, def] of Object.entries(tables)) {
    const t = compileTable(logical, def);
    if (bySet.has(t.entitySet)) throw new Error(`sandbox/dataverse: entity set '${t.entitySet}' is used by two tables`);
    byName.set(logical, t);
    bySet.set(t.entitySet, t);
  }
  // A lookup names the table it points to (its lookuplogicalname): the one its entity set is.
  for (const t of byName.values()) {
    for (const col of t.columns.values()) {
      if (col.lookup && col.lookup.target == null && col.lookup.set) col.lookup.target = bySet.get(col.lookup.set)?.logical ?? null;
    }
  }
  for (const logical of changeTracking.tables) {
    const t = byName.get(logical);
    if (!t) throw new Error(`sandbox/dataverse: changeTracking names '${logical}', which is not a table (known: ${[...byName.keys()].join(", ")})`);
    t.changeTracking = true;
    t.deleted = [];
  }
  for (const logical of recycleBin.tables) {
    const t = byName.get(logical);
    if (!t) throw new Error(`sandbox/dataverse: recycleBin names '${logical}', which is not a table (known: ${[...byName.keys()].join(", ")})`);
    t.recycleBin = true;
    t.bin = new Map();
  }
  const expireDays = changeTracking.expireDays;
  /** The environment's setting: on or off, days kept, what a read answers while it is off. */
  const bin = { enabled: recycleBin.enabled, retentionDays: recycleBin.retentionDays, whenOff: recycleBin.whenOff };
  let clockOffset = 0;
  const clock = {
    /** The time change tracking reads (ms): the real time, moved by `advance`. */
    now: () => Date.now() + clockOffset,
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error("sandbox/dataverse: advanceChangeTrackingClock(ms) needs a number of milliseconds ≥ 0");
      clockOffset += ms;
    },
  };

  let version = 0;
  const nextVersion = () => ++version;
  const observers = new Set(); // {fn}, in the order they subscribed
  const validators = new Set(); // fn({table, message, row, get}): throws to refuse a write

  let foreign = { foreignTables: {}, foreignColumns: {}, foreignDeleted: {}, foreignBin: {} };
  const saver = createSaver(file, snapshot);
  const markDirty = saver.markDirty;
  if (file) {
    const raise = (n) => {
      if (n > version) version = n;
    };
    foreign = loadDataFile(file, byName, { next: nextVersion, raise });
    for (const t of byName.values()) {
      if (t.changeTracking) pruneDeleted(t);
      if (t.recycleBin && !bin.enabled) t.bin.clear();
      if (t.recycleBin) pruneBin(t);
    }
  }

  function snapshot() {
    const columns = { ...foreign.foreignColumns };
    const deleted = { ...foreign.foreignDeleted };
    const kept = { ...foreign.foreignBin };
    const data = [];
    for (const t of byName.values()) {
      if (t.added.size) columns[t.logical] = Object.fromEntries([...t.added.values()].map((c) => [c.name, columnDefinition(c)]));
      if (t.changeTracking) deleted[t.logical] = t.deleted.map((d) => [d.id, d.version, d.at]);
      if (t.recycleBin) {
        pruneBin(t);
        kept[t.logical] = Array.from(t.bin.values(), (e) => [e.id, e.at, e.row]);
      }
      data.push([t.logical, Array.from(t.records.values(), (rec) => rec.row)]);
    }
    for (const [name, rows] of Object.entries(foreign.foreignTables)) data.push([name, rows]);
    return { columns, data, rowversion: version, deleted, bin: kept };
  }

  // ----- change tracking ---------------------------------------------------------------------

  /** Logs the deletion of `id` from `t` (when `t` tracks changes); returns the entry, or null. */
  function logDeletion(t, id) {
    if (!t.changeTracking) return null;
    pruneDeleted(t);
    const entry = { id, version: nextVersion(), at: clock.now() };
    t.deleted.push(entry);
    return entry;
  }

  /** Forgets the deletions older than the tokens' lifetime: no valid token can ask for them. */
  function pruneDeleted(t) {
    const cutoff = clock.now() - expireDays * DAY_MS;
    if (t.deleted.length && t.deleted[0].at < cutoff) t.deleted = t.deleted.filter((d) => d.at >= cutoff);
  }

  // ----- the recycle bin ----------------------------------------------------------------------

  /** Keeps the deleted `row` of `t` (when the bin is on for it); returns the entry, or null. */
  function keepDeleted(t, row) {
    if (!t.recycleBin || !bin.enabled) return null;
    pruneBin(t);
    const id = row[t.primaryKey];
    if (t.bin.has(id)) return null; // deleted before: Dataverse keeps the first copy only
    const entry = { id, at: clock.now(), row };
    t.bin.set(id, entry);
    return entry;
  }

  /** Forgets the kept rows older than the retention period. */
  function pruneBin(t) {
    const cutoff = clock.now() - bin.retentionDays * DAY_MS;
    for (const [id, entry] of t.bin) {
      if (entry.at >= cutoff) break; // in the order of deletion
      t.bin.delete(id);
      markDirty();
    }
  }

  /** The kept rows of `t` within the retention period (oldest deletion first). */
  function binEntries(t) {
    if (!t.recycleBin) return [];
    pruneBin(t);
    return [...t.bin.values()];
  }

  /**
   * Turns the environment's setting on or off (and sets what a read answers while it is off);
   * off forgets what was kept (see dataverse.mjs).
   */
  function setRecycleBin({ enabled, whenOff = bin.whenOff } = {}) {
    if (typeof enabled !== "boolean") throw new Error("sandbox/dataverse: setRecycleBin({enabled}) needs enabled: true or false");
    if (whenOff !== "empty" && whenOff !== "error") throw new Error('sandbox/dataverse: setRecycleBin: whenOff must be "empty" or "error"');
    bin.whenOff = whenOff;
    if (bin.enabled === enabled) return;
    bin.enabled = enabled;
    if (!enabled) for (const t of byName.values()) if (t.recycleBin && t.bin.size) t.bin.clear();
    markDirty();
  }

  function table(logical) {
    const t = byName.get(logical);
    if (!t) throw new Error(`sandbox/dataverse: unknown table '${logical}' (known: ${[...byName.keys()].join(", ")})`);
    return t;
  }

  // ----- transactions ------------------------------------------------------------------------

  /** A transaction of the user `userId`; `undoable` when it may be rolled back (a change set). */
  function begin(userId, { undoable = false } = {}) {
    return { userId, undo: undoable ? [] : null, changes: [] };
  }

  function record(tx, change) {
    if (tx) tx.changes.push({ ...change, at: Date.now() });
  }

  /** Lets each validator refuse the write of `row` (throws DvError). */
  function validate(t, message, row) {
    const get = (logical, id) => byName.get(logical)?.records.get(id)?.row ?? null;
    for (const fn of validators) fn({ table: t.logical, message, row, get });
  }

  /** Adds the new `row`; `target` holds the columns the request set. */
  function insert(t, row, tx, target) {
    if (tx) validate(t, "Create", row);
    t.indexes = undefined;
    const id = row[t.primaryKey];
    const version = nextVersion();
    row[VERSION] = version;
    t.records.set(id, { row, version, seq: t.seq++ });
    t.addKey(id);
    if (tx?.undo) tx.undo.push({ t, id, before: undefined });
    record(tx, { t, message: "Create", id, before: null, after: row, target });
    markDirty();
  }

  /** Replaces the row `id` by `row`; `target` holds the columns the request set. */
  function replace(t, id, row, tx, target) {
    if (tx) validate(t, "Update", row);
    t.indexes = undefined;
    const before = t.records.get(id);
    if (tx?.undo) tx.undo.push({ t, id, before });
    const version = nextVersion();
    row[VERSION] = version;
    t.records.set(id, { row, version, seq: before.seq });
    record(tx, { t, message: "Update", id, before: before.row, after: row, target });
    markDirty();
  }

  function remove(t, id, tx) {
    t.indexes = undefined;
    const before = t.records.get(id);
    const logged = logDeletion(t, id);
    const binned = keepDeleted(t, before.row);
    if (tx?.undo) tx.undo.push({ t, id, before, logged, binned });
    t.records.delete(id);
    const i = bound(t.sortedKeys, id, false);
    if (t.sortedKeys[i] === id) t.sortedKeys.splice(i, 1);
    record(tx, { t, message: "Delete", id, before: before.row, after: null, target: {} });
    markDirty();
  }

  /** Undoes the writes of `tx` (newest first, the rows' order kept); its changes tell no one. */
  function rollback(tx) {
    const undo = tx.undo || [];
    const reorder = new Set();
    for (let i = undo.length - 1; i >= 0; i--) {
      const { t, id, before, logged, binned } = undo[i];
      t.indexes = undefined;
      if (logged) {
        const k = t.deleted.lastIndexOf(logged);
        if (k >= 0) t.deleted.splice(k, 1);
      }
      if (binned && t.bin.get(id) === binned) t.bin.delete(id);
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
    tx.undo = tx.undo && [];
    tx.changes = [];
  }

  /** The writes of `tx` stand: every observer is called with each change, in order. */
  function commit(tx) {
    const changes = tx.changes;
    tx.undo = tx.undo && [];
    tx.changes = [];
    if (changes.length === 0 || observers.size === 0) return;
    for (const change of changes) {
      for (const observer of [...observers]) {
        try {
          observer.fn(commitEvent(change, tx.userId));
        } catch (error) {
          console.error(`sandbox/dataverse: a commit observer failed on ${change.message} of ${change.t.logical} ${change.id}:`, error);
        }
      }
    }
  }

  /** What an observer is given: plain copies, so that it cannot change the store. */
  function commitEvent({ t, message, id, before, after, target, at }, userId) {
    return {
      table: t.logical,
      message,
      id,
      pre: before ? fullRow(t, before) : null,
      post: after ? fullRow(t, after) : null,
      target: { ...target },
      userId,
      at,
    };
  }

  /** Calls `fn(event)` after each committed create, update and delete; returns the unsubscribe. */
  function onCommit(fn) {
    if (typeof fn !== "function") throw new Error("sandbox/dataverse: onCommit(fn) needs a function");
    const observer = { fn };
    observers.add(observer);
    return () => {
      observers.delete(observer);
    };
  }

  /** Adds a check every write through the Web API passes (not `seed`); returns its removal. */
  function addValidator(fn) {
    if (typeof fn !== "function") throw new Error("sandbox/dataverse: addValidator(fn) needs a function");
    validators.add(fn);
    return () => validators.delete(fn);
  }

  // ----- the JavaScript API ------------------------------------------------------------------

  function rows(logical) {
    const t = table(logical);
    return Array.from(t.records.values(), (rec) => fullRow(t, rec.row));
  }

  /**
   * Replaces the rows of `logical` by `list` (no observer is told). Every row takes a new
   * version; the rows that are gone are deleted: with change tracking they are logged as
   * deleted, with the recycle bin their rows are kept.
   */
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
      const version = nextVersion();
      row[VERSION] = version;
      records.set(id, { row, version, seq: seq++ });
    });
    for (const [id, rec] of t.records) {
      if (records.has(id)) continue;
      logDeletion(t, id);
      keepDeleted(t, rec.row);
    }
    t.records = records;
    t.seq = seq;
    t.sortedKeys = sortIds(records.keys());
    t.indexes = undefined;
    markDirty();
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

  /** The rows the recycle bin of `logical` keeps: [{id, deletedAt (ISO), row}], oldest first. */
  function recycleBinRows(logical) {
    const t = table(logical);
    return binEntries(t).map((e) => ({ id: e.id, deletedAt: new Date(e.at).toISOString(), row: fullRow(t, e.row) }));
  }

  return {
    byName,
    bySet,
    table,
    begin,
    insert,
    replace,
    remove,
    rollback,
    commit,
    onCommit,
    addValidator,
    rows,
    seed,
    addColumn,
    columns,
    flush: saver.flush,
    /** The highest version handed out: every later write takes a higher one. */
    currentVersion: () => version,
    clock,
    expireDays,
    pruneDeleted,
    /** The recycle bin's setting ({enabled, retentionDays, whenOff}). */
    bin,
    binEntries,
    setRecycleBin,
    recycleBinRows,
  };
}
