// Dataverse's webhooks, for the sandbox: the tables a registration writes (service endpoints,
// SDK messages and their filters, processing steps and their images, system jobs), and the
// delivery of each committed change to the webhooks whose steps match it, as Microsoft's
// "Use webhooks" page and public registration code describe it:
// - a step fires for its message on its table; an Update step with filtering attributes fires
//   only when the request set one of them;
// - asynchronous: the change commits first, the delivery follows (in parallel, in no promised
//   order);
// - the body is the RemoteExecutionContext as JSON (data-contract values: `/Date(ms)/`,
//   OptionSetValue, EntityReference), with the headers x-request-id, x-ms-dynamics-organization,
//   x-ms-dynamics-entity-name, x-ms-dynamics-request-name, x-ms-correlation-request-id and the
//   authentication the endpoint's authtype says (4 WebhookKey: ?code=; 5 HttpHeader: each
//   <setting>; 6 HttpQueryString: each <setting> in the query);
// - above 256 KB, InputParameters, PreEntityImages and PostEntityImages are dropped and
//   x-ms-dynamics-msg-size-exceeded is sent;
// - Dataverse waits 60 s for a 2xx, retries exactly once and only after 502, 503 or 504;
//   anything else, or no answer, becomes a failed system job (an `asyncoperation` row).
//
// What the sandbox cannot do as Dataverse does: it does not enforce "ports 80 and 443 only"
// (its relay runs on a free port of 127.0.0.1).
import { randomUUID } from "node:crypto";
import { badPayload, DvError } from "./errors.mjs";
import { guidFrom } from "./util.mjs";

/** Payloads above this are cut (Dataverse: 256 KB). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** How long Dataverse waits for an answer. */
export const ANSWER_TIMEOUT_MS = 60_000;
const RETRIED = new Set([502, 503, 504]);
const CONTRACT_WEBHOOK = 8;
const AUTH = { WebhookKey: 4, HttpHeader: 5, HttpQueryString: 6 };
const STAGE_POST_OPERATION = 40;
const MODE_ASYNC = 1;
const IMAGE = { pre: 0, post: 1, both: 2 };
const XRM = "http://schemas.microsoft.com/xrm/2011/Contracts";
const ORGANIZATION = { id: "0a1b2c3d-0000-4000-8000-0000000000bb", name: "sandbox", businessUnit: "0a1b2c3d-0000-4000-8000-0000000000cc" };

/** The messages a step can be registered for, with stable ids. */
export const SDK_MESSAGES = Object.freeze({
  Create: "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8",
  Update: "20bebb1b-ea3e-db11-86a7-000a3a5473e8",
  Delete: "21bebb1b-ea3e-db11-86a7-000a3a5473e8",
});

const text = (label) => ({ type: "String", label: { 1033: label } });
const memo = (label) => ({ type: "Memo", label: { 1033: label } });
const int = (label) => ({ type: "Integer", label: { 1033: label } });

/** The registration tables, as createDataverse takes table definitions. */
export const EVENT_TABLES = Object.freeze({
  serviceendpoint: {
    entitySet: "serviceendpoints",
    primaryKey: "serviceendpointid",
    primaryName: "name",
    columns: { name: text("Name"), url: text("URL"), contract: int("Contract"), authtype: int("Authentication type"), authvalue: memo("Authentication value"), messageformat: int("Message format"), userclaim: int("User claim"), description: memo("Description") },
  },
  sdkmessage: { entitySet: "sdkmessages", primaryKey: "sdkmessageid", primaryName: "name", columns: { name: text("Name") } },
  sdkmessagefilter: {
    entitySet: "sdkmessagefilters",
    primaryKey: "sdkmessagefilterid",
    columns: { primaryobjecttypecode: text("Primary table") },
    lookups: { sdkmessageid: { attribute: "sdkmessageid", set: "sdkmessages", target: "sdkmessage" } },
  },
  sdkmessageprocessingstep: {
    entitySet: "sdkmessageprocessingsteps",
    primaryKey: "sdkmessageprocessingstepid",
    primaryName: "name",
    columns: { name: text("Name"), description: memo("Description"), stage: int("Stage"), mode: int("Mode"), rank: int("Rank"), supporteddeployment: int("Deployment"), asyncautodelete: { type: "Boolean", label: { 1033: "Delete job on success" } }, filteringattributes: memo("Filtering attributes"), statecode: int("Status") },
    lookups: {
      eventhandler_serviceendpoint: { attribute: "eventhandler", set: "serviceendpoints", target: "serviceendpoint" },
      sdkmessageid: { attribute: "sdkmessageid", set: "sdkmessages", target: "sdkmessage" },
      sdkmessagefilterid: { attribute: "sdkmessagefilterid", set: "sdkmessagefilters", target: "sdkmessagefilter" },
    },
  },
  sdkmessageprocessingstepimage: {
    entitySet: "sdkmessageprocessingstepimages",
    primaryKey: "sdkmessageprocessingstepimageid",
    primaryName: "name",
    columns: { name: text("Name"), entityalias: text("Entity alias"), imagetype: int("Image type"), messagepropertyname: text("Message property"), attributes: memo("Attributes") },
    lookups: { sdkmessageprocessingstepid: { attribute: "sdkmessageprocessingstepid", set: "sdkmessageprocessingsteps", target: "sdkmessageprocessingstep" } },
  },
  asyncoperation: {
    entitySet: "asyncoperations",
    primaryKey: "asyncoperationid",
    primaryName: "name",
    columns: { name: text("System job name"), statecode: int("Status"), statuscode: int("Status reason"), message: memo("Message"), friendlymessage: memo("Friendly message"), primaryentitytype: text("Entity type"), regardingobjectid: text("Regarding") },
  },
});

/** The SDK messages and their filters for `tables`, as every org has them. */
export function seedEventTables(dataverse, tables = ["contact"]) {
  dataverse.seed("sdkmessage", Object.entries(SDK_MESSAGES).map(([name, id]) => ({ sdkmessageid: id, name })));
  const filters = [];
  for (const table of tables) {
    for (const [name, id] of Object.entries(SDK_MESSAGES)) {
      filters.push({ sdkmessagefilterid: guidFrom(`sdkmessagefilter:${table}:${name}`), primaryobjecttypecode: table, _sdkmessageid_value: id });
    }
  }
  dataverse.seed("sdkmessagefilter", filters);
}

/** The `<setting name value>` pairs of an HttpHeader or HttpQueryString authvalue. */
export function settingsOf(authvalue) {
  const text = String(authvalue ?? "").trim();
  if (!/^<settings>[\s\S]*<\/settings>$/.test(text)) return null;
  const out = [];
  for (const m of text.matchAll(/<setting\s+name="([^"]*)"\s+value="([^"]*)"\s*\/>/g)) {
    const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    out.push([unescape(m[1]), unescape(m[2])]);
  }
  return out;
}

/**
 * Refuses a write to the registration tables as Dataverse does (`{table, row, get}` as the
 * store's validators get them). Throws DvError.
 */
function checkRegistration({ table, row, get }) {
  if (table === "serviceendpoint" && row.contract === CONTRACT_WEBHOOK) {
    if (!row.url || !/^https?:\/\//.test(row.url)) throw badPayload("A webhook needs a url (http or https).");
    if (!Object.values(AUTH).includes(row.authtype)) throw badPayload(`authtype ${row.authtype} is not one a webhook takes (4 WebhookKey, 5 HttpHeader, 6 HttpQueryString).`);
    if (row.authtype !== AUTH.WebhookKey && settingsOf(row.authvalue) === null)
      throw badPayload('The authvalue of an HttpHeader or HttpQueryString webhook must be <settings><setting name="…" value="…" /></settings>.');
  }
  if (table === "sdkmessageprocessingstepimage") {
    const step = get("sdkmessageprocessingstep", row._sdkmessageprocessingstepid_value);
    const message = step && get("sdkmessage", step._sdkmessageid_value)?.name;
    // Public registration code records this refusal: a Create's image is of its `Id`.
    if (message === "Create" && row.messagepropertyname === "Target")
      throw new DvError(400, "0x8004416b", "Message property name 'Target' is not valid on message Create.");
  }
}

/** A Web API value as the data contract serialises it. */
function contractValue(column, value) {
  if (value === null || value === undefined) return null;
  if (column?.lookup) return { __type: `EntityReference:${XRM}`, Id: value, KeyAttributes: [], LogicalName: column.lookup.target ?? "systemuser", Name: null, RowVersion: null };
  if (column?.type === "Picklist") return { __type: `OptionSetValue:${XRM}`, Value: value };
  if (column?.type === "DateTime" || column?.type === "DateOnly") {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? `/Date(${ms})/` : value;
  }
  return value;
}

/** An Entity of `columns` (Web API names, or a lookup's attribute name as images list it) of `row`. */
function entity(t, id, row, names) {
  const attributes = [];
  for (const name of names) {
    const column = t.columns.get(name) ?? [...t.columns.values()].find((c) => c.lookup?.attribute === name);
    if (!column || !(column.name in row)) continue;
    const key = column.lookup ? column.lookup.attribute : column.name;
    attributes.push({ key, value: contractValue(column, row[column.name]) });
  }
  return { __type: `Entity:${XRM}`, Attributes: attributes, EntityState: null, FormattedValues: [], Id: id, KeyAttributes: [], LogicalName: t.logical, RelatedEntities: [], RowVersion: null };
}

const date = (ms) => `/Date(${ms})/`;

/**
 * Delivers committed changes to the registered webhooks. `dataverse` is the stand-in (its
 * `onCommit`, `addValidator`, `rows`, `seed`, and `table(logical)` for column types).
 * Options: `delayMs` (the asynchronous service's pick-up delay), `retryDelayMs` (before the one
 * retry), `concurrency` (deliveries under way at once), `maxPayloadBytes`, `timeoutMs`.
 */
export function createEvents(dataverse, { delayMs = 0, retryDelayMs = 1000, concurrency = 8, maxPayloadBytes = MAX_PAYLOAD_BYTES, timeoutMs = ANSWER_TIMEOUT_MS } = {}) {
  const queue = [];
  let underWay = 0;
  let idleWaiters = [];
  const stats = { fired: 0, delivered: 0, retried: 0, failed: 0, cut: 0 };
  const recent = []; // the last deliveries answered 2xx: {url, headers, text}, newest last
  let registrations = null; // cache of the steps, dropped on any write to the registration tables

  function steps() {
    if (registrations) return registrations;
    const endpoints = new Map(dataverse.rows("serviceendpoint").map((e) => [e.serviceendpointid, e]));
    const filters = new Map(dataverse.rows("sdkmessagefilter").map((f) => [f.sdkmessagefilterid, f]));
    const messages = new Map(dataverse.rows("sdkmessage").map((m) => [m.sdkmessageid, m.name]));
    const images = dataverse.rows("sdkmessageprocessingstepimage");
    registrations = [];
    for (const step of dataverse.rows("sdkmessageprocessingstep")) {
      const endpoint = endpoints.get(step._eventhandler_value);
      const filter = filters.get(step._sdkmessagefilterid_value);
      if (!endpoint || endpoint.contract !== CONTRACT_WEBHOOK || (step.statecode ?? 0) !== 0) continue;
      registrations.push({
        step,
        endpoint,
        message: messages.get(step._sdkmessageid_value),
        table: filter?.primaryobjecttypecode ?? null,
        filtering: step.filteringattributes ? new Set(step.filteringattributes.split(",").map((a) => a.trim().toLowerCase()).filter(Boolean)) : null,
        images: images.filter((i) => i._sdkmessageprocessingstepid_value === step.sdkmessageprocessingstepid),
      });
    }
    return registrations;
  }

  function fires(registration, change) {
    if (registration.message !== change.message || (registration.table && registration.table !== change.table)) return false;
    if (change.message !== "Update" || !registration.filtering) return true;
    const t = dataverse.table(change.table);
    return Object.keys(change.target).some((name) => registration.filtering.has((t.columns.get(name)?.lookup?.attribute ?? name).toLowerCase()));
  }

  function context(registration, change) {
    const t = dataverse.table(change.table);
    const { step } = registration;
    const target =
      change.message === "Delete"
        ? { __type: `EntityReference:${XRM}`, Id: change.id, KeyAttributes: [], LogicalName: change.table, Name: null, RowVersion: null }
        : entity(t, change.id, { ...change.post, ...change.target }, [...new Set([...Object.keys(change.target), t.primaryKey, "modifiedon", "_modifiedby_value", ...(change.message === "Create" ? ["createdon", "_createdby_value"] : [])])]);
    const imagesOf = (types, row) =>
      row
        ? registration.images
            .filter((i) => types.includes(i.imagetype))
            .map((i) => ({ key: i.entityalias, value: entity(t, change.id, row, i.attributes ? i.attributes.split(",").map((a) => a.trim().toLowerCase()) : Object.keys(row)) }))
        : [];
    return {
      BusinessUnitId: ORGANIZATION.businessUnit,
      CorrelationId: randomUUID(),
      Depth: 1,
      InitiatingUserId: change.userId,
      InputParameters: [{ key: "Target", value: target }],
      IsExecutingOffline: false,
      IsInTransaction: false,
      IsOfflinePlayback: false,
      IsolationMode: 1,
      MessageName: change.message,
      Mode: step.mode ?? MODE_ASYNC,
      OperationCreatedOn: date(change.at),
      OperationId: randomUUID(),
      OrganizationId: ORGANIZATION.id,
      OrganizationName: ORGANIZATION.name,
      OutputParameters: change.message === "Create" ? [{ key: "id", value: change.id }] : [],
      OwningExtension: { Id: step.sdkmessageprocessingstepid, KeyAttributes: [], LogicalName: "sdkmessageprocessingstep", Name: step.name ?? null, RowVersion: null },
      ParentContext: null,
      PostEntityImages: imagesOf([IMAGE.post, IMAGE.both], change.post),
      PreEntityImages: imagesOf([IMAGE.pre, IMAGE.both], change.pre),
      PrimaryEntityId: change.id,
      PrimaryEntityName: change.table,
      RequestId: null,
      SecondaryEntityName: "none",
      SharedVariables: [],
      Stage: step.stage ?? STAGE_POST_OPERATION,
      UserId: change.userId,
    };
  }

  function request(registration, change) {
    const body = context(registration, change);
    let text = JSON.stringify(body);
    const headers = {
      "Content-Type": "application/json",
      "x-request-id": randomUUID(),
      "x-ms-dynamics-organization": `${ORGANIZATION.name}.crm.dynamics.com`,
      "x-ms-dynamics-entity-name": change.table,
      "x-ms-dynamics-request-name": change.message,
      "x-ms-correlation-request-id": body.CorrelationId,
    };
    if (Buffer.byteLength(text) > maxPayloadBytes) {
      text = JSON.stringify({ ...body, InputParameters: [], PreEntityImages: [], PostEntityImages: [] });
      headers["x-ms-dynamics-msg-size-exceeded"] = "true";
      stats.cut += 1;
    }
    const { endpoint } = registration;
    const url = new URL(endpoint.url);
    if (endpoint.authtype === AUTH.WebhookKey) url.searchParams.set("code", endpoint.authvalue ?? "");
    for (const [name, value] of settingsOf(endpoint.authvalue) ?? []) {
      if (endpoint.authtype === AUTH.HttpHeader) headers[name] = value;
      if (endpoint.authtype === AUTH.HttpQueryString) url.searchParams.set(name, value);
    }
    return { url: url.toString(), headers, text, registration, change, attempt: 0 };
  }

  function failed(job, why) {
    stats.failed += 1;
    const { registration, change } = job;
    // `seed` replaces a table's rows: keep the jobs already there.
    dataverse.seed("asyncoperation", [
      ...dataverse.rows("asyncoperation"),
      {
        asyncoperationid: randomUUID(),
        name: `${registration.step.name ?? registration.endpoint.name}`,
        statecode: 3, // Completed
        statuscode: 31, // Failed
        message: why,
        friendlymessage: why,
        primaryentitytype: change.table,
        regardingobjectid: change.id,
      },
    ]);
  }

  async function deliver(job) {
    let status = 0;
    let said = "";
    try {
      const response = await fetch(job.url, { method: "POST", headers: job.headers, body: job.text, signal: AbortSignal.timeout(timeoutMs) });
      status = response.status;
      said = (await response.text()).slice(0, 500);
    } catch (error) {
      said = error?.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : `could not connect (${error?.cause?.code ?? error?.message})`;
    }
    if (status >= 200 && status < 300) {
      stats.delivered += 1;
      recent.push({ url: job.url, headers: job.headers, text: job.text });
      if (recent.length > 50) recent.shift();
      return;
    }
    if (RETRIED.has(status) && job.attempt === 0) {
      stats.retried += 1;
      job.attempt = 1;
      underWay += 1; // the retry holds its place, so idle() waits for it
      setTimeout(() => {
        underWay -= 1;
        queue.push(job);
        pump();
      }, retryDelayMs);
      return;
    }
    failed(job, status ? `The webhook answered HTTP ${status}: ${said}` : `The webhook could not be reached: ${said}`);
  }

  function pump() {
    while (underWay < concurrency && queue.length) {
      const job = queue.shift();
      underWay += 1;
      deliver(job).finally(() => {
        underWay -= 1;
        pump();
      });
    }
    if (underWay === 0 && queue.length === 0) {
      const waiting = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiting) resolve();
    }
  }

  const stopChecking = dataverse.addValidator(checkRegistration);
  const stop = dataverse.onCommit((change) => {
    if (EVENT_TABLES[change.table]) {
      registrations = null;
      return;
    }
    const matching = steps().filter((r) => fires(r, change));
    if (matching.length === 0) return;
    stats.fired += matching.length;
    const jobs = matching.map((r) => request(r, change));
    // Asynchronous: after the commit, picked up by the asynchronous service (counted under way
    // meanwhile, so idle() waits for them).
    underWay += 1;
    setTimeout(() => {
      underWay -= 1;
      queue.push(...jobs);
      pump();
    }, delayMs);
  });

  return {
    /** Counts: events fired, delivered, retried once, failed (system jobs), cut for size. */
    stats: () => ({ ...stats, pending: queue.length + underWay }),
    /** Resolves when nothing is waiting or under way. */
    idle: () => (underWay === 0 && queue.length === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    /** The last deliveries answered 2xx (`{url, headers, text}`), to replay one. */
    delivered: () => recent.slice(),
    /** Failed deliveries, as the system jobs an admin sees. */
    failedJobs: () => dataverse.rows("asyncoperation").filter((j) => j.statuscode === 31),
    close() {
      stop();
      stopChecking();
    },
  };
}
