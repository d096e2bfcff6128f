// The sandbox web server: the model-driven app shell (/contacts, /contacts/<id>, /integration),
// the built solution's web resources at the paths Dynamics serves them from, its
// customizations.xml, and a Dataverse Web API stand-in at /api/data/v9.2/.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DOMParser } from "@xmldom/xmldom";
import { readZip, solutionZipPath } from "./zip.mjs";
import { readSolution } from "./public/solution.js";
import { CONTACT_COLUMNS, DEMO_CONSENT_COLUMN, DEMO_CUSTOM_COLUMNS, DEMO_VIEWS, L } from "./public/system.js";
import { SESSION_COOKIE, WHO_AM_I, createDataverse } from "./dataverse.mjs";
import { EVENT_TABLES, createEvents, seedEventTables } from "./dataverse/events.mjs";
import { createEntra } from "./entra.mjs";
import { demoContacts } from "./seed.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..");
const PUBLIC = join(here, "public");
const TYPES = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".xml": "application/xml; charset=utf-8" };
const WEBRESOURCE_TYPES = { 1: TYPES[".html"], 2: TYPES[".css"], 3: TYPES[".js"], 4: TYPES[".xml"], 11: TYPES[".svg"] };
const PAGES = /^\/(contacts(\/[0-9a-fA-F-]{36}|\/new)?|integration(\/new)?)\/?$/;

/** The built unmanaged solution: customizations.xml text, parsed solution, and zip entries. */
export function loadBuiltSolution() {
  const file = solutionZipPath(root);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm start does).`);
  const entries = readZip(file);
  const xml = entries.get("customizations.xml").toString("utf8");
  const solution = readSolution(new DOMParser().parseFromString(xml, "text/xml"));
  return { xml, solution, entries };
}

/** The solution's custom activity, shown on the contact's timeline. */
export const ACTIVITY = "new_salesmanagoactivity";

/**
 * The SALESmanago activity table as the solution defines it (entity set, keys, columns), and its
 * regarding lookup. A custom activity's regarding column may point at any table with activities;
 * the Web API names one navigation property per table (`regardingobjectid_<table>_<activity>`),
 * which the platform makes on import: the sandbox makes the contact's.
 */
function activityTable(solution, fromSolution) {
  const entity = solution.entities.get(ACTIVITY);
  if (!entity) throw new Error(`the built solution has no table ${ACTIVITY}: rebuild it (npm run build)`);
  const regarding = entity.lookups.get("regardingobjectid");
  if (!regarding) throw new Error(`the built solution's ${ACTIVITY} has no regardingobjectid lookup`);
  return {
    entitySet: entity.entitySet,
    primaryKey: entity.primaryKey,
    primaryName: entity.primaryName,
    label: entity.label,
    columns: fromSolution(ACTIVITY, entity.primaryKey),
    lookups: {
      [`regardingobjectid_contact_${ACTIVITY}`]: { attribute: regarding.logicalName, set: "contacts", target: "contact", label: regarding.label },
    },
  };
}

/** Table definitions for the Dataverse stand-in: system columns plus the solution's. */
export function tablesFrom(solution) {
  const managed = new Set(["createdon", "modifiedon"]);
  const fromSolution = (name, primaryKey) =>
    Object.fromEntries([...solution.entities.get(name).columns.values()].filter((c) => c.logicalName !== primaryKey && !managed.has(c.logicalName)).map((c) => [c.logicalName, c]));
  return {
    contact: {
      entitySet: "contacts",
      primaryKey: "contactid",
      primaryName: "fullname",
      columns: { ...Object.fromEntries(CONTACT_COLUMNS.map((c) => [c.logicalName, c])), ...fromSolution("contact", "contactid") },
      computed: { fullname: (row) => [row.firstname, row.lastname].filter(Boolean).join(" ") || null },
    },
    new_salesmanagointegration: {
      entitySet: "new_salesmanagointegrations",
      primaryKey: "new_salesmanagointegrationid",
      primaryName: "new_name",
      columns: fromSolution("new_salesmanagointegration", "new_salesmanagointegrationid"),
    },
    [ACTIVITY]: activityTable(solution, fromSolution),
    // The org's views (system views): the sync scope may be "the contacts in a view".
    savedquery: {
      entitySet: "savedqueries",
      primaryKey: "savedqueryid",
      primaryName: "name",
      label: L("View", "Widok"),
      columns: {
        name: { type: "String", maxLength: 200, label: L("Name", "Nazwa") },
        returnedtypecode: { type: "String", maxLength: 64, label: L("Table", "Tabela") },
        fetchxml: { type: "Memo", label: L("FetchXML", "FetchXML") },
      },
    },
  };
}

/**
 * The relay's application user in the sandbox: an app registration Entra ID's stand-in knows,
 * and the Dataverse user its tokens act as.
 */
export const APP_USER = Object.freeze({
  tenant: "00000000-0000-4000-8000-7e7a7e7a0001",
  clientId: "00000000-0000-4000-8000-c11e7c11e7c1",
  clientSecret: "sandbox-app-secret",
  userId: "00000000-0000-4000-8000-a99a99a99a01",
});

/** The first integration record of a new sandbox: a name, no credentials yet. */
export const DEMO_INTEGRATION = { new_salesmanagointegrationid: "00000000-0000-4000-8000-5a1e5a1e0001", new_name: "SALESmanago" };

/**
 * Starts the sandbox on `host:port`. `dataFile` holds the Dataverse data (created and seeded
 * with `contacts` demo contacts when missing or when `reset`). Resolves to
 * `{url, dataverse, solution, close()}`. `engines`, when given, maps engine scripts' file names
 * (`engine.en.js`, `engine-export.pl.js`, …) to texts served in place of the solution's (the
 * bench's test engine).
 */
export async function startSandbox({ port = 0, host = "127.0.0.1", dataFile = null, reset = false, contacts = 200, latencyMs = 0, protection, engines = {}, webhooks = null } = {}) {
  const built = loadBuiltSolution();
  // Dataverse's webhooks (registration tables, deliveries) and Entra ID for the relay's
  // application user; `webhooks` holds createEvents' options, or `true` for the defaults.
  const tables = { ...tablesFrom(built.solution), ...(webhooks ? EVENT_TABLES : {}) };
  if (dataFile) mkdirSync(dirname(dataFile), { recursive: true });
  const fresh = reset || !dataFile || !existsSync(dataFile);
  if (dataFile && reset) rmSync(dataFile, { force: true });
  const dataverse = createDataverse({ file: dataFile, tables, latencyMs, protection });
  if (fresh) {
    dataverse.addColumn("contact", DEMO_CONSENT_COLUMN);
    for (const column of DEMO_CUSTOM_COLUMNS) dataverse.addColumn("contact", column);
    dataverse.seed("savedquery", DEMO_VIEWS);
    dataverse.seed("contact", demoContacts(contacts));
    dataverse.seed("new_salesmanagointegration", [{ ...DEMO_INTEGRATION }]);
    await dataverse.flush?.();
  }
  let events = null;
  let entra = null;
  if (webhooks) {
    if (dataverse.rows("sdkmessage").length === 0) seedEventTables(dataverse, ["contact"]);
    events = createEvents(dataverse, webhooks === true ? {} : webhooks);
    const { tenant, clientId, clientSecret: secret, userId } = APP_USER;
    entra = createEntra({ tenant, clients: [{ clientId, secret, userId }], grant: (token, user) => dataverse.addPrincipal(token, user) });
  }
  // The browser's credential, as a signed-in user of the web client has one: every page and web
  // resource the sandbox serves sets the session cookie its API calls carry. Programs (tests,
  // the bench, curl) use the browser user's bearer token instead.
  const session = dataverse.openSession();
  const cookie = `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Lax`;
  const token = randomBytes(24).toString("base64url");
  dataverse.addPrincipal(token, WHO_AM_I.UserId);
  const files = new Map();
  for (const resource of built.solution.webresources.values()) {
    const entry = built.entries.get(resource.fileName.replace(/^\//, ""));
    if (entry) files.set("/WebResources/" + resource.name, { body: entry, type: WEBRESOURCE_TYPES[resource.type] || "application/octet-stream" });
  }
  for (const [file, js] of Object.entries(engines)) files.set(`/WebResources/new_/salesmanago/${file}`, { body: Buffer.from(js, "utf8"), type: "text/javascript" });

  function definitions() {
    const out = {};
    for (const [name, table] of Object.entries(tables)) {
      const columns = { ...table.columns, ...(dataverse.columns?.(name) || {}) };
      out[name] = { entitySet: table.entitySet, primaryKey: table.primaryKey, primaryName: table.primaryName, columns };
    }
    return out;
  }

  async function json(request) {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
  }

  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url, "http://sandbox");
      const p = url.pathname;
      if (await dataverse.handle(request, response)) return;
      if (entra && (await entra.handle(request, response))) return;
      const send = (status, type, body) => response.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", "Set-Cookie": cookie }).end(body);
      if (p === "/") return response.writeHead(302, { Location: "/contacts", "Set-Cookie": cookie }).end();
      if (PAGES.test(p)) return send(200, TYPES[".html"], await readFile(join(PUBLIC, "index.html")));
      if (p.startsWith("/sandbox/") && /^[a-z]+\.(js|css)$/.test(p.slice(9))) return send(200, TYPES[extname(p)], await readFile(join(PUBLIC, p.slice(9))));
      if (p === "/solution/customizations.xml") return send(200, TYPES[".xml"], built.xml);
      // A web resource by its cached address (`/{token}/WebResources/…`, as getWebResourceUrl
      // gives it) is the same file.
      const file = files.get(p.replace(/^\/%7B\d+%7D\/webresources\//i, "/WebResources/"));
      if (file) return send(200, file.type, file.body);
      if (p === "/__sandbox/tables") return send(200, "application/json", JSON.stringify(definitions()));
      if (p === "/__sandbox/stats") return send(200, "application/json", JSON.stringify(dataverse.stats()));
      // What the user's security roles give: the command bar's privilege rules read it.
      if (p === "/__sandbox/privileges") return send(200, "application/json", JSON.stringify(dataverse.privileges()));
      if (p === "/__sandbox/faults" && request.method === "POST") {
        dataverse.setFaults(await json(request));
        return send(200, "application/json", "{}");
      }
      if (p === "/favicon.ico") return response.writeHead(204).end();
      send(404, "text/plain; charset=utf-8", `Not found: ${p}`);
    } catch (error) {
      if (!response.headersSent) response.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
      response.end(String(error && error.message));
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    dataverse,
    /** The browser user's bearer token, for programs calling the Web API: `Authorization: Bearer <token>`. */
    token,
    solution: built.solution,
    /** Webhook deliveries (with `webhooks`): stats(), idle(), failedJobs(). */
    events,
    /** The relay's way in (with `webhooks`): Dataverse's address and the app registration. */
    appUser: webhooks ? { ...APP_USER, dataverseUrl: url, tokenUrl: `${url}/${APP_USER.tenant}/oauth2/v2.0/token` } : null,
    async close() {
      events?.close();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await dataverse.flush?.();
    },
  };
}
