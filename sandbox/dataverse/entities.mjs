// The entity sets: `<set>` (GET a page of rows, or with change tracking the rows and then
// their changes, see changes.mjs, or a FetchXML query of the rows or of the recycle bin, see
// fetchxml.mjs; POST a row), `<set>(<id>)` (GET, PATCH, DELETE,
// with etags) and `<set>(<id>)/<column>` (GET, PUT, DELETE of one value). Writes join the
// operation's transaction (`ctx.tx`) and are stamped with the caller (`ctx.userId`).
//
// A PATCH of `<set>(<id>)` is an upsert, as the Web API's ("Upsert a table row"): without
// If-Match or If-None-Match it updates the row, or creates it with that id when there is none;
// `If-Match: *` (or an etag) only updates, 404 when the row is missing; `If-None-Match: *` only
// creates, 412 "A record with matching key values already exists." when the row is there (which
// stays as it was). A lookup bound with `<nav>@odata.bind` must name a row that exists, else 404.
//
// `env` is {store, security} (see createDataverse).
import { DvError, CODE_DUPLICATE, CODE_VERSION, badPayload, badQuery, missing, notAllowed, notFoundSegment } from "./errors.mjs";
import { contextUrl, empty, etag, expandInto, json, parseExpand, parseJsonObject, project, rejectExpand, rejectUnknownOptions, representationHeaders } from "./odata.mjs";
import { isTrackedRead, trackedRead } from "./changes.mjs";
import { fetchRows, isFetchRead } from "./fetchxml.mjs";
import { countRows, parseSelect, queryRows } from "./query.mjs";
import { MODIFIED_BY, applyComputed, newRow, settleState } from "./tables.mjs";
import { nowIso } from "./util.mjs";
import { GUID_RE, changesFromBody, coerceValue } from "./values.mjs";

function parseKey(t, key) {
  const text = key.trim();
  if (GUID_RE.test(text)) return text.toLowerCase();
  if (/^\{[0-9a-f-]{36}\}$/i.test(text)) throw badQuery(`Bad Request - Error in query syntax: the key '${key}' must be a GUID without braces.`);
  if (text.includes("=")) throw badQuery(`The key '${key}' is not valid for '${t.logical}': the sandbox defines no alternate keys.`);
  throw badQuery(`Bad Request - Error in query syntax: '${key}' is not a valid GUID key for '${t.entitySet}'.`);
}

function checkIfMatch(ctx, rec) {
  const ifMatch = ctx.headers["if-match"];
  if (ifMatch && ifMatch.trim() !== "*" && !ifMatch.split(",").some((e) => e.trim() === etag(rec)))
    throw new DvError(412, CODE_VERSION, "The version of the existing record doesn't match the RowVersion property provided.");
}

const duplicate = () => new DvError(412, CODE_DUPLICATE, "A record with matching key values already exists.");

/** Throws 404 when a lookup in `changes` names a row its table (when the sandbox has it) does not hold. */
function checkBound(env, t, changes) {
  for (const column of t.navigations?.values() ?? []) {
    const id = changes[column.name];
    const target = column.lookup.target && env.store.byName.get(column.lookup.target);
    if (id != null && target && !target.records.has(id)) throw missing(target, id);
  }
}

/** POST of a row, or (`key`, from an upsert) the creation of the row `<set>(<key>)`. */
function createRow(env, t, ctx, q, key = null) {
  rejectUnknownOptions(q, ["$select", "$expand"]);
  rejectExpand(t, q);
  const select = parseSelect(t, q.get("$select"));
  const changes = changesFromBody(t, parseJsonObject(t, ctx.body));
  if (key !== null) {
    if (changes[t.primaryKey] != null && changes[t.primaryKey] !== key) throw badQuery(`The primary key '${t.primaryKey}' in the body (${changes[t.primaryKey]}) is not the key in the address (${key}).`);
    changes[t.primaryKey] = key;
  }
  if (changes[t.primaryKey] != null && t.records.has(changes[t.primaryKey])) throw duplicate();
  checkBound(env, t, changes);
  const row = newRow(t, changes, ctx.userId);
  env.store.insert(t, row, ctx.tx, changes);
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

function updateRow(env, t, id, ctx, q, changesOverride) {
  rejectUnknownOptions(q, ["$select", "$expand"]);
  rejectExpand(t, q);
  const select = parseSelect(t, q.get("$select"));
  const rec = t.records.get(id);
  if (!rec) throw missing(t, id);
  checkIfMatch(ctx, rec);
  const changes = changesOverride || changesFromBody(t, parseJsonObject(t, ctx.body));
  if (changes[t.primaryKey] != null && changes[t.primaryKey] !== id) throw badQuery(`The primary key '${t.primaryKey}' of a record cannot be changed (${id} → ${changes[t.primaryKey]}).`);
  checkBound(env, t, changes);
  const row = applyComputed(t, settleState(t, { ...rec.row, ...changes, [t.primaryKey]: id, modifiedon: nowIso(), [MODIFIED_BY]: ctx.userId }, changes));
  env.store.replace(t, id, row, ctx.tx, changes);
  const entityId = `${ctx.base}${t.entitySet}(${id})`;
  const rep = representationHeaders(ctx);
  if (rep) return json(200, { "@odata.context": contextUrl(ctx, t, select, "/$entity"), ...project(t, t.records.get(id), select, ctx) }, { ...rep, "OData-EntityId": entityId });
  return empty(204, { "OData-EntityId": entityId });
}

/** PATCH `<set>(<id>)`: an update, a creation, or either (see the header of this file). */
function upsertRow(env, t, id, ctx, q) {
  const ifNoneMatch = ctx.headers["if-none-match"];
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() === "*") {
    if (t.records.has(id)) throw duplicate();
    return createRow(env, t, ctx, q, id);
  }
  if (ctx.headers["if-match"] === undefined && !t.records.has(id)) return createRow(env, t, ctx, q, id);
  return updateRow(env, t, id, ctx, q);
}

/** An operation on the entity set of `t`; `segs` is the path from the set on. */
export function entitySetRoute(env, t, segs, ctx, q) {
  const [first, ...rest] = segs;
  const method = ctx.method;
  if (method === "GET") env.security.checkRead(t, ctx.userId);
  if (first.key === null) {
    // `contacts/$count` (Microsoft Learn, "Count rows using OData"): the number, as text.
    if (rest[0]?.name === "$count" && rest.length === 1 && rest[0].key === null) {
      if (method !== "GET") throw notAllowed(method, `${t.entitySet}/$count`, "GET");
      return countRows(t, q);
    }
    if (rest.length) throw notFoundSegment(rest[0].name);
    if (method === "GET") {
      if (isFetchRead(q)) return fetchRows(env, t, ctx, q);
      return isTrackedRead(ctx, q) ? trackedRead(env, t, ctx, q) : queryRows(t, ctx, q);
    }
    if (method === "POST") return createRow(env, t, ctx, q);
    throw notAllowed(method, `the entity set '${t.entitySet}'`, "GET, POST");
  }
  const id = parseKey(t, first.key);
  if (rest.length === 0) {
    if (method === "GET") {
      rejectUnknownOptions(q, ["$select", "$expand", "$filter", "$orderby", "$top", "$count"]);
      const expands = parseExpand(t, q);
      const select = parseSelect(t, q.get("$select"));
      const rec = t.records.get(id);
      if (!rec) throw missing(t, id);
      // "Perform conditional operations using the Web API", "Query must not include $expand"
      // and "… annotations": with either, a GET never answers 304.
      const ifNoneMatch = ctx.prefer["odata.include-annotations"] === undefined && expands.length === 0 && ctx.headers["if-none-match"];
      if (ifNoneMatch && ifNoneMatch.split(",").some((e) => e.trim() === etag(rec))) return empty(304, { ETag: etag(rec) });
      const headers = { ETag: etag(rec) };
      if (ctx.annotations) headers["Preference-Applied"] = `odata.include-annotations="${ctx.annotationsRaw}"`;
      return json(200, { "@odata.context": contextUrl(ctx, t, select, "/$entity"), ...expandInto(project(t, rec, select, ctx), rec, expands, ctx) }, headers);
    }
    if (method === "PATCH") return upsertRow(env, t, id, ctx, q);
    if (method === "DELETE") {
      const rec = t.records.get(id);
      if (!rec) throw missing(t, id);
      env.security.checkDelete(t, ctx.userId);
      checkIfMatch(ctx, rec);
      env.store.remove(t, id, ctx.tx);
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
    return updateRow(env, t, id, { ...ctx, prefer: {} }, new Map(), { [col.name]: coerceValue(t, col, value) });
  }
  throw notAllowed(method, `the property '${col.name}'`, "GET, PUT, DELETE");
}
