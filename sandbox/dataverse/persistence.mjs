// Persistence: every table's rows (and the columns added at run time) in one JSON file,
//   {"version":1,"rowversion":N,"columns":{table:{name:definition}},
//    "deleted":{table:[[id,version,ms],…]},"bin":{table:[[id,ms,row],…]},"tables":{table:[row,…]}}
// written atomically (a temporary file renamed over it), debounced, in chunks; tables and
// columns the definitions do not know are kept as they are. Rows written before a column
// existed (e.g. _modifiedby_value) simply lack it and read as null.
//
// Change tracking needs versions that survive a restart: each row keeps its `versionnumber`,
// `rowversion` is the highest version handed out (the next write takes a higher one, even when
// the newest versions belonged to rows since deleted), and `deleted` is the deletion log of the
// tables with change tracking (id, the version of the deletion, when it happened in ms). Files
// written before these keys existed load too; a row without a valid version of its own (or with
// one another row already has) takes a fresh one above all the others.
//
// The recycle bin survives a restart too: `bin` holds, per table that keeps deleted records, the
// full row of each deleted record with the time of its deletion (ms), oldest first.
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { normalizeColumn } from "./tables.mjs";
import { isPlainObject, sortIds } from "./util.mjs";
import { GUID_RE } from "./values.mjs";

const SAVE_DELAY_MS = 250; // debounce of the file write; always ≤ 1 s after the first change
const SAVE_CHUNK_ROWS = 2000;

export function corruptFile(file, why) {
  return new Error(`The sandbox Dataverse data file ${file} is corrupt (${why}). Delete it or run with --reset.`);
}

const isVersion = (v, zero = false) => Number.isSafeInteger(v) && (zero ? v >= 0 : v > 0);

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
  if (data.rowversion !== undefined && !isVersion(data.rowversion, true)) throw corruptFile(file, `"rowversion" is not a whole number`);
  if (data.deleted !== undefined) {
    if (!isPlainObject(data.deleted)) throw corruptFile(file, `"deleted" is not an object`);
    for (const [name, list] of Object.entries(data.deleted)) {
      const ok = Array.isArray(list) && list.every((d) => Array.isArray(d) && d.length === 3 && typeof d[0] === "string" && GUID_RE.test(d[0]) && isVersion(d[1]) && Number.isFinite(d[2]));
      if (!ok) throw corruptFile(file, `the deletion log of "${name}" is not a list of [id, version, time]`);
    }
  }
  if (data.bin !== undefined) {
    if (!isPlainObject(data.bin)) throw corruptFile(file, `"bin" is not an object`);
    for (const [name, list] of Object.entries(data.bin)) {
      const ok = Array.isArray(list) && list.every((e) => Array.isArray(e) && e.length === 3 && typeof e[0] === "string" && GUID_RE.test(e[0]) && Number.isFinite(e[1]) && isPlainObject(e[2]));
      if (!ok) throw corruptFile(file, `the recycle bin of "${name}" is not a list of [id, time, row]`);
    }
  }
  return data;
}

async function writeFileAtomically(file, { columns, data: tables, rowversion, deleted, bin }) {
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const temp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  let handle;
  try {
    handle = await fsp.open(temp, "w");
    await handle.write(`{"version":1,"rowversion":${JSON.stringify(rowversion)},"columns":${JSON.stringify(columns)},"deleted":${JSON.stringify(deleted)},"bin":{`);
    let firstBin = true;
    for (const [name, entries] of Object.entries(bin ?? {})) {
      await handle.write(`${firstBin ? "" : ","}\n${JSON.stringify(name)}:[`);
      firstBin = false;
      for (let i = 0; i < entries.length; i += SAVE_CHUNK_ROWS) {
        let chunk = "";
        for (let j = i; j < Math.min(entries.length, i + SAVE_CHUNK_ROWS); j++) chunk += `${j === 0 ? "" : ","}\n${JSON.stringify(entries[j])}`;
        await handle.write(chunk);
      }
      await handle.write("\n]");
    }
    await handle.write(`},"tables":{`);
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


/**
 * Debounced saves of `snapshot()` ({columns, data: [[table, rows]…], rowversion, deleted, bin}) to
 * `file` (nothing when `file` is null): `markDirty()` after each change, `flush()` to wait until
 * the file holds them.
 */
export function createSaver(file, snapshot) {
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

  function startSave() {
    dirty = false;
    saving = writeFileAtomically(file, snapshot())
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

  return { markDirty, flush };
}

/**
 * The rows of `t`: each keeps its saved version when it has a valid one not taken yet (`seen`);
 * the others are returned, to take fresh versions once every saved one is known.
 */
function loadRows(t, rows, where, versions, seen) {
  const records = new Map();
  const fresh = [];
  for (const raw of rows) {
    if (!isPlainObject(raw)) throw corruptFile(where, `a row of "${t.logical}" is not an object`);
    const id = raw[t.primaryKey];
    if (typeof id !== "string" || !GUID_RE.test(id)) throw corruptFile(where, `a row of "${t.logical}" has no valid ${t.primaryKey}`);
    const key = id.toLowerCase();
    if (records.has(key)) throw corruptFile(where, `${t.primaryKey} ${key} appears twice in "${t.logical}"`);
    const saved = raw.versionnumber;
    const keep = isVersion(saved) && !seen.has(saved);
    const row = { ...raw, [t.primaryKey]: key, versionnumber: keep ? saved : 0 };
    const rec = { row, version: row.versionnumber, seq: t.seq++ };
    if (keep) {
      seen.add(saved);
      versions.raise(saved);
    } else fresh.push(rec);
    records.set(key, rec);
  }
  t.records = records;
  t.sortedKeys = sortIds(records.keys());
  t.indexes = undefined;
  return fresh;
}

/**
 * Loads `file` (when it exists) into the compiled tables `byName`: its added columns, its rows
 * (keeping their versions; `versions.raise(n)` makes the store's counter at least n,
 * `versions.next()` gives a fresh one), the deletion log of the tables with change tracking
 * (`t.deleted`) and the rows the tables with a recycle bin keep (`t.bin`; a table that no longer
 * keeps deleted records drops them). Returns what belongs to no defined table, `{foreignTables,
 * foreignColumns, foreignDeleted, foreignBin}`, to be written back as it was.
 */
export function loadDataFile(file, byName, versions) {
  const foreignTables = {}; // tables in the data file that are not defined: kept as they are
  const foreignColumns = {};
  const foreignDeleted = {};
  const foreignBin = {};
  const data = readDataFile(file);
  if (!data) return { foreignTables, foreignColumns, foreignDeleted, foreignBin };
  versions.raise(data.rowversion ?? 0);
  for (const [logical, list] of Object.entries(data.deleted ?? {})) {
    const t = byName.get(logical);
    for (const [, version] of list) versions.raise(version);
    if (!t) foreignDeleted[logical] = list;
    else if (t.changeTracking) t.deleted = list.map(([id, version, at]) => ({ id: id.toLowerCase(), version, at })).sort((a, b) => a.version - b.version);
  }
  for (const [logical, list] of Object.entries(data.bin ?? {})) {
    const t = byName.get(logical);
    if (!t) {
      foreignBin[logical] = list;
      continue;
    }
    if (!t.recycleBin) continue;
    const entries = [];
    const seenIds = new Set();
    for (const [rawId, at, raw] of list) {
      const id = rawId.toLowerCase();
      if (String(raw[t.primaryKey] ?? "").toLowerCase() !== id) throw corruptFile(file, `a row in the recycle bin of "${logical}" is not the row of ${id}`);
      if (seenIds.has(id)) throw corruptFile(file, `${id} appears twice in the recycle bin of "${logical}"`);
      seenIds.add(id);
      entries.push({ id, at, row: { ...raw, [t.primaryKey]: id } });
    }
    entries.sort((a, b) => a.at - b.at);
    for (const e of entries) t.bin.set(e.id, e);
  }
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
  const seen = new Set();
  const fresh = [];
  for (const [logical, rows] of Object.entries(data.tables)) {
    const t = byName.get(logical);
    if (t) fresh.push(...loadRows(t, rows, file, versions, seen));
    else foreignTables[logical] = rows;
  }
  for (const rec of fresh) {
    rec.version = versions.next();
    rec.row.versionnumber = rec.version;
  }
  return { foreignTables, foreignColumns, foreignDeleted, foreignBin };
}
