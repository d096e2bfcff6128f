// Change tracking, as Microsoft documents it for the Web API in "Use change tracking to
// synchronize data with external systems" (learn.microsoft.com, power-apps/developer/
// data-platform):
// - `GET <set>?$select=…` with `Prefer: odata.track-changes` answers the rows, a page at a time
//   (`odata.maxpagesize`, at most 5,000; `@odata.nextLink` with a `$skiptoken`), with
//   `Preference-Applied: odata.track-changes`; the last page, and only it, carries an
//   `@odata.deltaLink`: the same query with `$deltatoken=<version>!<MM/dd/yyyy HH:mm:ss>`
//   (Microsoft's example: `$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44`).
// - GET of the delta link (the Prefer header is optional there, as in Microsoft's example)
//   answers under `$metadata#<set>(<columns>)/$delta` the rows created or changed since the
//   token, once each with their current values, ordered by version, then one
//   `{"@odata.context": "…$metadata#<set>/$deletedEntity", "id", "reason": "deleted"}` per row
//   deleted since ("new or updated records first (sorted by version number) followed by deleted
//   records"), then a new delta link on the last page. A row created and deleted between two
//   tokens appears as deleted: "they'll get the deleted item even if they didn't have the item
//   to begin with". Nothing changed: an empty `value` and a new delta link.
// - `$filter`, `$orderby`, `$expand` and `$top` are refused: `The "$filter" query parameter isn't
//   supported when Change Tracking is enabled.` (Microsoft's message; the status, 400, and the
//   code, 0x80060888, are the sandbox's assumption, those of its other query errors).
// - Only tables with change tracking answer; the others: ChangeTrackingNotEnabledForEntity
//   (0x80072491, "Entity {0} isn't enabled for change tracking.", from Microsoft's list of web
//   service error codes; the status, 400, is assumed).
// - A token older than ExpireChangeTrackingInDays (7 by default) is refused with
//   ExpiredVersionStamp (0x80044352, "Version stamp associated with the client has expired.
//   Please perform a full sync.", the error RetrieveEntityChanges callers catch); the sandbox
//   answers it, with status 400 (assumed), for an unknown or garbled token too, since the
//   remedy is the same: a full read.
//
// The token's version is the store's version when the read began (its first page): every write
// after it takes a higher one, so nothing is missed; a row written while the pages are read may
// come twice (once in the pages, again in the next delta), as with any at-least-once feed.
// Paging of a tracked read uses Dataverse's `$skiptoken` cookie with `istracking="True"` (the
// attribute Dataverse's cookie has, "False" in plain reads; "True" here is inferred).
import { DvError, CODE_CHANGE_TRACKING_NOT_ENABLED, CODE_EXPIRED_VERSION_STAMP, badQuery } from "./errors.mjs";
import { contextUrl, json, project, rejectUnknownOptions } from "./odata.mjs";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parseSelect } from "./query.mjs";
import { b64url, bound, isPlainObject, unb64url, xmlAttr, xmlUnattr } from "./util.mjs";

const DAY_MS = 86_400_000;
const REFUSED = ["$filter", "$orderby", "$top", "$expand"];
const TRACKING_COOKIE = /istracking="True"/;

/** Whether a GET of an entity set is a change-tracking read (initial, a page of one, or a delta). */
export function isTrackedRead(ctx, q) {
  return ctx.prefer["odata.track-changes"] !== undefined || q.has("$deltatoken") || (q.has("$skiptoken") && TRACKING_COOKIE.test(q.get("$skiptoken")));
}

const notEnabled = (t) => new DvError(400, CODE_CHANGE_TRACKING_NOT_ENABLED, `Entity ${t.logical} isn't enabled for change tracking.`);
const expiredToken = () => new DvError(400, CODE_EXPIRED_VERSION_STAMP, "Version stamp associated with the client has expired. Please perform a full sync.");

const two = (n) => String(n).padStart(2, "0");

/** `<version>!<MM/dd/yyyy HH:mm:ss>` (UTC), as Dataverse's tokens read. */
export function deltaToken(version, ms) {
  const d = new Date(ms);
  return `${version}!${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}/${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

/** {version, ms} of a token, or null when it is not one. */
export function parseDeltaToken(text) {
  const m = /^(\d{1,15})!(\d{2})\/(\d{2})\/(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(String(text ?? "").trim());
  if (!m) return null;
  const [, version, mo, d, y, h, mi, s] = m.map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return null;
  return { version, ms };
}

/** A query value percent-encoded as Dataverse writes its tokens: `!` too, lower-case hex. */
const encodeValue = (text) => encodeURIComponent(text).replace(/!/g, "%21").replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase());

/** The request's query without its paging and delta options, plus `extra`. */
function linkTo(ctx, t, extra) {
  const kept = (ctx.rawQuery || "").split("&").filter((p) => p && !/^(%24|\$)(skiptoken|deltatoken)=/i.test(p));
  kept.push(extra);
  return `${ctx.base}${t.entitySet}?${kept.join("&")}`;
}

function encodeCookie(page, state) {
  return `<cookie pagenumber="${page}" pagingcookie="${xmlAttr(b64url(JSON.stringify(state)))}" istracking="True" />`;
}

/**
 * The state of the next page: `s`/`at` the version and time the read began, `n` the rows
 * answered so far; an initial read's `k` (the last primary key answered), a delta's `p` (0 while
 * answering changed rows, 1 deleted ones) and `v` (the last version answered).
 */
function decodeCookie(text, delta, current) {
  const m = /^\s*<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="True" \/>\s*$/.exec(text);
  let state = null;
  try {
    state = m ? JSON.parse(unb64url(xmlUnattr(m[2]))) : null;
  } catch {
    state = null;
  }
  const int = (v) => Number.isSafeInteger(v) && v >= 0;
  const ok =
    isPlainObject(state) &&
    int(state.s) &&
    state.s <= current &&
    Number.isFinite(state.at) &&
    int(state.n) &&
    (delta ? (state.p === 0 || state.p === 1) && int(state.v) : typeof state.k === "string");
  if (!ok) throw badQuery(`The $skiptoken '${text}' is not valid: use the @odata.nextLink as it was returned.`);
  return { ...state, page: Number(m[1]) };
}

/** The changed rows and deleted ids of `t` in (from, upto], in the order they are answered. */
function changesOf(t, from, upto, state) {
  const items = [];
  if (!state || state.p === 0) {
    const after = state ? state.v : from;
    const rows = [];
    for (const rec of t.records.values()) if (rec.version > after && rec.version <= upto) rows.push(rec);
    rows.sort((a, b) => a.version - b.version);
    for (const rec of rows) items.push({ version: rec.version, rec });
  }
  const after = state?.p === 1 ? state.v : from;
  const latest = new Map(); // id → its last deletion in (from, upto]
  for (const d of t.deleted) if (d.version > from && d.version <= upto) latest.set(d.id, d.version);
  for (const d of t.deleted) {
    if (d.version <= after || d.version > upto || latest.get(d.id) !== d.version) continue;
    // deleted, then created again with the same key: the row (answered above) is the news
    const again = t.records.get(d.id);
    if (again && again.version > d.version && again.version <= upto) continue;
    items.push({ version: d.version, deleted: d });
  }
  return items;
}

/** GET of a table with change tracking: an initial read, or the changes since a delta token. */
export function trackedRead(env, t, ctx, q) {
  const store = env.store;
  if (!t.changeTracking) throw notEnabled(t);
  for (const name of REFUSED) if (q.has(name)) throw badQuery(`The "${name}" query parameter isn't supported when Change Tracking is enabled.`);
  rejectUnknownOptions(q, ["$select", "$skiptoken", "$deltatoken"]);
  const select = parseSelect(t, q.get("$select"));
  const now = store.clock.now();
  const current = store.currentVersion();
  let from = null;
  if (q.has("$deltatoken")) {
    const token = parseDeltaToken(q.get("$deltatoken"));
    if (!token || token.version > current || now - token.ms > store.expireDays * DAY_MS) throw expiredToken();
    from = token.version;
  }
  const delta = from !== null;
  const state = q.has("$skiptoken") ? decodeCookie(q.get("$skiptoken"), delta, current) : null;
  const upto = state ? state.s : current;
  const startedAt = state ? state.at : now;

  const applied = [];
  if (ctx.prefer["odata.track-changes"] !== undefined) applied.push("odata.track-changes");
  let size = DEFAULT_PAGE_SIZE;
  const n = Number(ctx.prefer["odata.maxpagesize"]);
  if (ctx.prefer["odata.maxpagesize"] !== undefined && Number.isInteger(n) && n > 0) {
    size = Math.min(n, MAX_PAGE_SIZE);
    applied.push(`odata.maxpagesize=${size}`);
  }
  if (ctx.annotations) applied.push(`odata.include-annotations="${ctx.annotationsRaw}"`);

  let items;
  if (delta) {
    store.pruneDeleted(t);
    items = changesOf(t, from, upto, state).slice(0, size + 1);
  } else {
    items = [];
    const keys = t.sortedKeys;
    for (let i = state ? bound(keys, state.k, true) : 0; i < keys.length && items.length <= size; i++) items.push({ rec: t.records.get(keys[i]) });
  }
  const more = items.length > size;
  const page = items.slice(0, size);

  const body = { "@odata.context": contextUrl(ctx, t, select, delta ? "/$delta" : "") };
  if (!more) body["@odata.deltaLink"] = linkTo(ctx, t, `$deltatoken=${encodeValue(deltaToken(upto, startedAt))}`);
  body.value = page.map((item) =>
    item.deleted ? { "@odata.context": `${ctx.base}$metadata#${t.entitySet}/$deletedEntity`, id: item.deleted.id, reason: "deleted" } : project(t, item.rec, select, ctx),
  );
  if (more) {
    const last = page[page.length - 1];
    const next = { s: upto, at: startedAt, n: (state ? state.n : 0) + page.length };
    if (delta) Object.assign(next, { p: last.deleted ? 1 : 0, v: last.version });
    else next.k = last.rec.row[t.primaryKey];
    const keep = delta ? [`$deltatoken=${encodeValue(q.get("$deltatoken"))}`] : [];
    keep.push(`$skiptoken=${encodeURIComponent(encodeCookie((state ? state.page : 1) + 1, next))}`);
    body["@odata.nextLink"] = linkTo(ctx, t, keep.join("&"));
  }
  return json(200, body, applied.length ? { "Preference-Applied": applied.join(",") } : {});
}
