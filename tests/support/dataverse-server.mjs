// The sandbox's Dataverse behind a real HTTP server on 127.0.0.1, and a small Web API client,
// for the tests of the stand-in itself (sandbox-dataverse, sandbox-changes, sandbox-recyclebin).
import http from "node:http";
import { WHO_AM_I, createDataverse } from "../../sandbox/dataverse.mjs";

/** The browser user's bearer token in these tests (`client` sends it unless told otherwise). */
export const BROWSER_TOKEN = "browser-user-token";

/** How long one request may take before the test fails. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** Starts a stand-in of `tables` behind an HTTP server, runs fn, always closes the server and flushes. */
export async function withServer(tables, options, fn) {
  const dv = createDataverse({ tables, ...options });
  dv.addPrincipal(BROWSER_TOKEN, WHO_AM_I.UserId);
  const server = http.createServer(async (req, res) => {
    try {
      if (await dv.handle(req, res)) return;
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not the API");
    } catch (error) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  try {
    await fn({ dv, origin, api: client(origin) });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await dv.flush();
  }
}

/**
 * A Web API client of the stand-in at `origin`: each answer's status, headers, text and JSON.
 * It authenticates with `token` (the browser user's by default); a request's own
 * `Authorization` header replaces it, and `Authorization: null` sends none.
 */
export function client(origin, token = BROWSER_TOKEN) {
  const base = `${origin}/api/data/v9.2/`;
  async function call(method, target, { body, headers = {} } = {}) {
    const url = /^https?:/.test(target) ? target : base + target;
    const all = { Accept: "application/json", Authorization: `Bearer ${token}`, ...headers };
    if (all.Authorization === null) delete all.Authorization;
    const init = { method, headers: all, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      if (!init.headers["Content-Type"]) init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, headers: response.headers, text, json };
  }
  return {
    base,
    call,
    get: (target, headers) => call("GET", target, { headers }),
    post: (target, body, headers) => call("POST", target, { body, headers }),
    patch: (target, body, headers) => call("PATCH", target, { body, headers }),
    del: (target, headers) => call("DELETE", target, { headers }),
    /** GET <set>?fetchXml=<xml, URL-encoded>[&extra]. */
    fetchXml: (set, xml, headers, extra = "") => call("GET", `${set}?fetchXml=${encodeURIComponent(xml)}${extra}`, { headers }),
  };
}
