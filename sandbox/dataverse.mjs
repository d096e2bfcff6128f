// A local stand-in for the Microsoft Dataverse Web API (OData v4, /api/data/v9.2/), for the browser
// sandbox and its tests: CRUD, $select/$filter/$orderby/$top/$count with server-driven paging,
// change tracking (Prefer: odata.track-changes, delta links, deleted rows), a strict subset of
// FetchXML (`?fetchXml=`) that also reads the recycle bin of deleted rows (datasource="bin"),
// $batch with change sets, a slice of EntityDefinitions metadata, WhoAmI, fault injection and the
// service-protection limits, with the data optionally kept in one JSON file. Node built-ins, and
// @xmldom/xmldom to read FetchXML.
//
//   const dv = createDataverse({ file, tables, latencyMs, protection, principals, changeTracking, recycleBin });
//   if (await dv.handle(req, res)) return;   // true when the path starts with /api/data/v9.2/
//   const stop = dv.onCommit((event) => …);  // after each committed create, update and delete
//
// The parts, in sandbox/dataverse/: store (tables, rows, transactions, commit observers, the
// data file through persistence), tables and values (definitions, coercion), odata (requests and
// answers), routes (one operation) with entities, query and filter (entity sets), metadata
// (EntityDefinitions), security (callers and privileges), batch ($batch), changes (change
// tracking), fetchxml (FetchXML and the recycle bin), protection (limits and faults) and service
// (the HTTP pipeline). This file composes them.
import { createProtection } from "./dataverse/protection.mjs";
import { createSecurity } from "./dataverse/security.mjs";
import { freshStats, handle } from "./dataverse/service.mjs";
import { createStore } from "./dataverse/store.mjs";

export { API_PREFIX } from "./dataverse/odata.mjs";
export { DEFAULT_PROTECTION } from "./dataverse/protection.mjs";
export { SESSION_COOKIE, WHO_AM_I } from "./dataverse/security.mjs";
export { COLUMN_TYPES } from "./dataverse/values.mjs";

/**
 * Creates a Dataverse Web API stand-in. See the header of this file and `handle`.
 *
 * Every request needs a credential (401 without one, as Dataverse answers). `principals` maps
 * bearer tokens to systemuserids ({token: userId}, or a Map): a request with
 * `Authorization: Bearer <token>` acts as that user: an application user (allowed everything),
 * or the browser user WHO_AM_I.UserId when the token is issued for it. `addPrincipal(token,
 * userId)` adds one later and returns its removal. `openSession()` gives the value of a session
 * cookie (`CrmOwinAuth=<value>`, SESSION_COOKIE) that acts as the browser user, as the web
 * client's pages carry theirs.
 *
 * `onCommit(fn)` calls `fn` after each committed write, once per row, with
 * `{table, message: "Create"|"Update"|"Delete", id, pre, post, target, userId, at}`: `pre` and
 * `post` are the full rows before and after (null for a create's pre and a delete's post),
 * `target` the columns the request set ({} for a delete), `userId` the caller, `at` the time
 * of the write (ms). A change set's writes are told once it commits, none when it rolls back;
 * `seed` tells no one. It returns the unsubscribe function.
 *
 * `changeTracking` is `{tables, expireDays}`: the logical names of the tables with change
 * tracking (by default `contact`, when it is defined) and how many days a delta token lives
 * (Dataverse's ExpireChangeTrackingInDays, 7 by default). `advanceChangeTrackingClock(ms)` moves
 * the time change tracking reads forward (tokens' age, the deletion log), for tests of expiry;
 * createdon and modifiedon keep the real time.
 *
 * `recycleBin` is `{enabled, tables, retentionDays, whenOff}`, the environment setting "Keep
 * deleted Dataverse records": whether it is on (true by default), the tables whose deleted rows
 * are kept (by default `contact`, when it is defined), for how many days (30 by default), and
 * what `?fetchXml=<fetch datasource="bin">…` answers while it is off: `"empty"` (no rows, the
 * default, as Microsoft documents for a table without the bin) or `"error"` (an assumed 400).
 * See sandbox/dataverse/fetchxml.mjs. The bin reads the change-tracking clock
 * (`advanceChangeTrackingClock`, alias `advanceClock`). `setRecycleBin({enabled, whenOff})` turns the
 * setting on or off at run time (off forgets what was kept: an assumption, nothing documents
 * what becomes of it); `recycleBin(table)` lists what is kept, `[{id, deletedAt, row}]`.
 *
 * @param {{file?: string, tables: object, latencyMs?: number, protection?: object|boolean, principals?: object, changeTracking?: {tables?: string[], expireDays?: number}, recycleBin?: {enabled?: boolean, tables?: string[], retentionDays?: number, whenOff?: "empty"|"error"}}} options
 */
export function createDataverse({ file = null, tables, latencyMs = 0, protection = null, principals = null, changeTracking = {}, recycleBin = {} } = {}) {
  const hasContact = tables && typeof tables === "object" && Object.hasOwn(tables, "contact");
  const { tables: tracked = hasContact ? ["contact"] : [], expireDays = 7 } = changeTracking ?? {};
  if (!Array.isArray(tracked)) throw new Error("sandbox/dataverse: changeTracking.tables must be a list of table logical names");
  if (!Number.isFinite(expireDays) || expireDays <= 0) throw new Error("sandbox/dataverse: changeTracking.expireDays must be a number of days > 0");
  const { enabled = true, tables: binTables = hasContact ? ["contact"] : [], retentionDays = 30, whenOff = "empty" } = recycleBin ?? {};
  if (typeof enabled !== "boolean") throw new Error("sandbox/dataverse: recycleBin.enabled must be true or false");
  if (!Array.isArray(binTables)) throw new Error("sandbox/dataverse: recycleBin.tables must be a list of table logical names");
  if (!Number.isFinite(retentionDays) || retentionDays <= 0) throw new Error("sandbox/dataverse: recycleBin.retentionDays must be a number of days > 0");
  if (whenOff !== "empty" && whenOff !== "error") throw new Error('sandbox/dataverse: recycleBin.whenOff must be "empty" or "error"');
  const store = createStore({ tables, file, changeTracking: { tables: tracked, expireDays }, recycleBin: { enabled, tables: binTables, retentionDays, whenOff } });
  const env = {
    store,
    security: createSecurity({ principals }),
    protection: createProtection({ protection, latencyMs }),
    stats: freshStats(),
    inFlight: 0,
  };
  return {
    handle: (req, res) => handle(env, req, res),
    rows: store.rows,
    seed: store.seed,
    setFaults: env.protection.setFaults,
    stats: () => ({ ...env.stats, byMethod: { ...env.stats.byMethod } }),
    /** The browser user's privileges on contacts (`{delete}`), as a security role would give them. */
    privileges: env.security.privileges,
    setPrivileges: env.security.setPrivileges,
    resetStats() {
      env.stats = freshStats();
      env.stats.inFlightPeak = env.inFlight;
    },
    /** Starts an empty service-protection window, as if the last requests were 5 minutes ago. */
    resetProtection: env.protection.reset,
    addColumn: store.addColumn,
    columns: store.columns,
    flush: store.flush,
    onCommit: store.onCommit,
    /** `addValidator(fn)`: `fn({table, message, row, get(table, id)})` may throw a DvError to refuse a Web API write. */
    addValidator: store.addValidator,
    /** The compiled table `logical` (its columns and their types). */
    table: store.table,
    addPrincipal: env.security.addPrincipal,
    /** A new session of the browser user: the value of its session cookie (SESSION_COOKIE). */
    openSession: env.security.openSession,
    /** Moves the change-tracking clock forward by `ms` (delta tokens age, the deletion log and the recycle bin are pruned). */
    advanceChangeTrackingClock: store.clock.advance,
    /** The same clock: it also ages what the recycle bin keeps. */
    advanceClock: store.clock.advance,
    /** The rows the recycle bin of `table` keeps, `[{id, deletedAt, row}]`, oldest deletion first. */
    recycleBin: store.recycleBinRows,
    /** Turns "Keep deleted Dataverse records" on or off (`{enabled, whenOff?}`); off forgets what was kept. */
    setRecycleBin: store.setRecycleBin,
  };
}
