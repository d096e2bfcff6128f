// The request pipeline: an HTTP request under /api/data/v9.2/ read, delayed and checked against
// the faults and the service-protection limits, run (one operation, or a $batch), and answered;
// with the counters `stats` reports.
//
// `env` is {store, security, protection, stats, inFlight} (see createDataverse).
import { DvError, CODE_BAD_QUERY, CODE_UNEXPECTED, badQuery, notAllowed, notSupported, unexpected } from "./errors.mjs";
import { MAX_BATCH_OPERATIONS, parseBatch, runBatch } from "./batch.mjs";
import { API_PREFIX, JSON_TYPE, contextFor, errorResponse, etag } from "./odata.mjs";
import { executeAlone } from "./routes.mjs";

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function freshStats() {
  return { requests: 0, byMethod: { GET: 0, POST: 0, PATCH: 0, DELETE: 0 }, batches: 0, batchedOperations: 0, throttled: 0, inFlightPeak: 0, busyMs: 0 };
}

function tooMany(env, { code, message, retryAfter }) {
  env.stats.throttled++;
  return errorResponse(new DvError(429, code, message, { "Retry-After": String(retryAfter) }));
}

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

/** The table a lookup of a table's own points to, and its row `id` there (if any). */
function target(env, lookup, id) {
  const t = lookup.set ? env.store.bySet.get(lookup.set) : null;
  return { t, rec: t?.records.get(String(id).toLowerCase()) };
}

/** The name a lookup shows: its row's primary name, or a user's full name. */
function nameOf(env, lookup, id) {
  if (lookup.target === "systemuser") return env.security.nameOf(id);
  const { t, rec } = target(env, lookup, id);
  return rec && t.primaryName ? (rec.row[t.primaryName] ?? null) : null;
}

/**
 * The row a lookup points to, for `$expand`: a user as `{systemuserid, fullname}` (the sandbox
 * has no user table), a table's row with its `select`ed columns; null when there is none.
 */
function relatedRow(env, lookup, id, select) {
  if (id == null) return null;
  if (lookup.target === "systemuser") {
    const fullname = env.security.nameOf(id);
    if (fullname === null) return null;
    const user = { systemuserid: String(id).toLowerCase(), fullname };
    const unknown = (select ?? []).find((c) => !(c in user));
    if (unknown) throw notSupported(`the column '${unknown}' of a user in $expand (it has systemuserid and fullname)`);
    return select ? Object.fromEntries(select.map((c) => [c, user[c]]).concat([["systemuserid", user.systemuserid]])) : user;
  }
  const { t, rec } = target(env, lookup, id);
  if (!rec) return null;
  const out = { "@odata.etag": etag(rec) };
  for (const name of select ?? [...t.columns.keys()]) {
    if (!t.columns.has(name)) throw badQuery(`Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${t.logical}'.`);
    out[name] = rec.row[name] ?? null;
  }
  out[t.primaryKey] = rec.row[t.primaryKey];
  return out;
}

/** The answer to `req` (`target`: its URL after the API prefix), or null when the client went away. */
async function serve(env, req, target) {
  const { protection, stats } = env;
  const method = req.method || "GET";
  // Who asks comes first: without a credential nothing else is looked at.
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
  const userId = env.security.userOf(headers);
  if (userId === null) return env.security.challenge(baseUrl(req));
  // concurrency: answered at once, before any latency
  const crowded = protection.checkConcurrency(env.inFlight);
  if (crowded) return tooMany(env, crowded);
  let body;
  try {
    body = await readBody(req);
  } catch (error) {
    if (error instanceof DvError) return errorResponse(error);
    return null; // the client went away
  }
  await protection.delay();
  const fault = protection.checkFault();
  if (fault) return tooMany(env, fault);
  const ctx = contextFor(method, target, headers, body, baseUrl(req), { userId, names: (lookup, id) => nameOf(env, lookup, id), related: (lookup, id, select) => relatedRow(env, lookup, id, select) });
  const isBatch = ctx.path === "$batch";
  let parsed = null;
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
  }
  const limited = protection.admit(method, parsed);
  if (limited) return tooMany(env, limited);
  if (isBatch) {
    if (method !== "POST") return errorResponse(notAllowed(method, "$batch", "POST"));
    return runBatch(env, ctx, parsed);
  }
  return executeAlone(env, ctx);
}

/** Answers requests under /api/data/v9.2/; returns false (and does nothing) for any other path. */
export async function handle(env, req, res) {
  const url = req.url || "/";
  const qi = url.indexOf("?");
  const pathname = qi < 0 ? url : url.slice(0, qi);
  if (!pathname.startsWith(API_PREFIX)) return false;
  const method = req.method || "GET";
  const stats = env.stats;
  stats.requests++;
  stats.byMethod[method] = (stats.byMethod[method] || 0) + 1;
  env.inFlight++;
  const began = performance.now();
  if (env.inFlight > stats.inFlightPeak) stats.inFlightPeak = env.inFlight;
  try {
    let response;
    try {
      response = await serve(env, req, url.slice(API_PREFIX.length));
    } catch (error) {
      response = errorResponse(unexpected(error));
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
    env.inFlight--;
    stats.busyMs += performance.now() - began; // each request's time, latency included (the bench's limits)
  }
  return true;
}
