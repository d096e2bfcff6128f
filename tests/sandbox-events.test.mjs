// Tests of the sandbox's Dataverse webhooks (sandbox/dataverse/events.mjs) and its Entra ID
// token stand-in (sandbox/entra.mjs), over real HTTP with global fetch: a registration posted
// through the Web API as the relay posts it (src/core/dataverse/registration.rs), a receiver
// this file controls, and contacts written through the Web API.
// Every server listens on 127.0.0.1 port 0 and is closed in `after`; loops are bounded.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { WHO_AM_I, createDataverse } from "../sandbox/dataverse.mjs";
import { EVENT_TABLES, SDK_MESSAGES, createEvents, seedEventTables } from "../sandbox/dataverse/events.mjs";
import { createEntra } from "../sandbox/entra.mjs";

const REQUEST_TIMEOUT_MS = 10_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const XRM = "http://schemas.microsoft.com/xrm/2011/Contracts";
const KEY_HEADER = "x-relay-webhook-key";
const L = (en) => ({ 1033: en });

const APP = Object.freeze({
  tenant: "00000000-0000-4000-8000-7e7a7e7a0001",
  clientId: "00000000-0000-4000-8000-c11e7c11e7c1",
  secret: "test-app-secret",
  userId: "00000000-0000-4000-8000-a99a99a99a01",
});

/** The contact table, with the columns the relay reads and its own status columns. */
const CONTACT = {
  contact: {
    entitySet: "contacts",
    primaryKey: "contactid",
    primaryName: "fullname",
    columns: {
      fullname: { type: "String", maxLength: 160, label: L("Full Name"), readOnly: true },
      firstname: { type: "String", maxLength: 50, label: L("First Name") },
      lastname: { type: "String", maxLength: 50, label: L("Last Name") },
      emailaddress1: { type: "String", maxLength: 100, label: L("Email") },
      mobilephone: { type: "String", maxLength: 50, label: L("Mobile Phone") },
      description: { type: "Memo", label: L("Description") },
      donotbulkemail: { type: "Boolean", label: L("Do not allow Bulk Emails") },
      birthdate: { type: "DateOnly", label: L("Birthday") },
      new_salesmanagoid: { type: "String", maxLength: 100, label: L("SALESmanago Id") },
      new_salesmanagosyncedon: { type: "DateTime", label: L("Synced On") },
      new_salesmanagosyncstatus: {
        type: "Picklist",
        label: L("Sync status"),
        options: [
          { value: 100000000, label: L("Synced") },
          { value: 100000001, label: L("Error") },
        ],
      },
    },
    computed: { fullname: (row) => [row.firstname, row.lastname].filter(Boolean).join(" ") || null },
  },
};

/** The columns of the Create/Update post-images, and the Update step's filtering attributes. */
const IMAGE_COLUMNS = ["contactid", "firstname", "lastname", "emailaddress1", "mobilephone", "donotbulkemail", "birthdate", "modifiedon", "new_salesmanagoid", "new_salesmanagosyncstatus", "new_salesmanagosyncedon"];
const FILTERING = ["firstname", "lastname", "emailaddress1", "mobilephone", "donotbulkemail", "birthdate"];

// ----- servers ------------------------------------------------------------------------------

const closers = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function listen(handler) {
  const server = http.createServer(handler);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return { server, origin: `http://127.0.0.1:${server.address().port}`, close };
}

/** The Dataverse stand-in with the event tables, its webhooks and the Entra stand-in on one server. */
async function startStack(eventOptions = {}) {
  const dv = createDataverse({ tables: { ...CONTACT, ...EVENT_TABLES } });
  seedEventTables(dv, ["contact"]);
  dv.addPrincipal(BROWSER_TOKEN, WHO_AM_I.UserId);
  const events = createEvents(dv, { retryDelayMs: 50, ...eventOptions });
  const entra = createEntra({ tenant: APP.tenant, clients: [{ clientId: APP.clientId, secret: APP.secret, userId: APP.userId }], grant: (token, userId) => dv.addPrincipal(token, userId) });
  const { origin, close } = await listen(async (req, res) => {
    try {
      if (await dv.handle(req, res)) return;
      if (await entra.handle(req, res)) return;
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not here");
    } catch (error) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    }
  });
  closers.push(async () => {
    events.close();
    await close();
  });
  return { dv, events, entra, origin, api: client(origin) };
}

/**
 * A webhook receiver: records each request; answers with the next of `answers` (then 200),
 * after `hold` when one is set.
 */
async function startReceiver() {
  const receiver = { received: [], answers: [], hold: null };
  const { origin, close } = await listen(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString("utf8");
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const entry = { method: req.method, url: new URL(req.url, origin), headers: req.headers, text, body, answeredAt: null };
    receiver.received.push(entry);
    if (receiver.hold) await receiver.hold;
    const status = receiver.answers.length ? receiver.answers.shift() : 200;
    entry.answeredAt = Date.now();
    res.writeHead(status, { "Content-Type": "text/plain" }).end(status < 300 ? "" : `receiver says ${status}`);
  });
  closers.push(close);
  receiver.origin = origin;
  receiver.url = `${origin}/dataverse/webhook`;
  return receiver;
}

/** An address nothing listens on (a server opened and closed again). */
async function deadUrl() {
  const { origin, close } = await listen((req, res) => res.end());
  await close();
  return `${origin}/dataverse/webhook`;
}

/** The browser user's bearer token in these tests. */
const BROWSER_TOKEN = "browser-user-token";

/** A Web API client acting as the browser user, unless a request's `Authorization` says otherwise. */
function client(origin) {
  const base = `${origin}/api/data/v9.2/`;
  async function call(method, target, { body, headers = {} } = {}) {
    const init = { method, headers: { Accept: "application/json", Authorization: `Bearer ${BROWSER_TOKEN}`, ...headers }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(base + target, init);
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, headers: response.headers, text, json, at: Date.now() };
  }
  return {
    get: (target, headers) => call("GET", target, { headers }),
    post: (target, body, headers) => call("POST", target, { body, headers }),
    patch: (target, body, headers) => call("PATCH", target, { body, headers }),
    del: (target, headers) => call("DELETE", target, { headers }),
  };
}

/** The id in a 204's OData-EntityId. */
function createdId(r, what) {
  assert.equal(r.status, 204, `${what}: ${r.text}`);
  const m = /\(([0-9a-f-]{36})\)$/.exec(r.headers.get("odata-entityid") ?? "");
  assert.ok(m, `${what}: OData-EntityId ${r.headers.get("odata-entityid")}`);
  return m[1];
}

// ----- the registration, as the relay posts it -----------------------------------------------

const xmlAttr = (text) => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function endpointBody(url, key, overrides = {}) {
  return {
    name: "SALESmanago relay",
    url,
    contract: 8,
    messageformat: 2,
    authtype: 5,
    authvalue: `<settings><setting name="${KEY_HEADER}" value="${xmlAttr(key)}" /></settings>`,
    description: "Sends contact changes to SALESmanago (salesmanago-relay register)",
    ...overrides,
  };
}

const STEPS = [
  { message: "Create", filtering: null, image: { alias: "PostImage", kind: 1, property: "Id", attributes: IMAGE_COLUMNS.join(",") } },
  { message: "Update", filtering: FILTERING.join(","), image: { alias: "PostImage", kind: 1, property: "Target", attributes: IMAGE_COLUMNS.join(",") } },
  { message: "Delete", filtering: null, image: { alias: "PreImage", kind: 0, property: "Target", attributes: "contactid,emailaddress1" } },
];

function stepBody(step, endpointId, messageId, filterId) {
  return {
    name: `SALESmanago relay: ${step.message} of contact`,
    stage: 40,
    mode: 1,
    rank: 1,
    supporteddeployment: 0,
    asyncautodelete: true,
    filteringattributes: step.filtering,
    "eventhandler_serviceendpoint@odata.bind": `/serviceendpoints(${endpointId})`,
    "sdkmessageid@odata.bind": `/sdkmessages(${messageId})`,
    "sdkmessagefilterid@odata.bind": `/sdkmessagefilters(${filterId})`,
  };
}

function imageBody(image, stepId) {
  return {
    name: image.alias,
    entityalias: image.alias,
    imagetype: image.kind,
    messagepropertyname: image.property,
    attributes: image.attributes,
    "sdkmessageprocessingstepid@odata.bind": `/sdkmessageprocessingsteps(${stepId})`,
  };
}

/** The message's id and its filter's id for contacts, found as the relay finds them. */
async function lookUpMessage(api, message) {
  const m = await api.get(`sdkmessages?$select=sdkmessageid&$filter=${encodeURIComponent(`name eq '${message}'`)}`);
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json.value.length, 1, `one sdkmessage ${message}`);
  const messageId = m.json.value[0].sdkmessageid;
  const f = await api.get(`sdkmessagefilters?$select=sdkmessagefilterid&$filter=${encodeURIComponent(`_sdkmessageid_value eq ${messageId} and primaryobjecttypecode eq 'contact'`)}`);
  assert.equal(f.status, 200, f.text);
  assert.equal(f.json.value.length, 1, `one sdkmessagefilter of ${message} on contact`);
  return { messageId, filterId: f.json.value[0].sdkmessagefilterid };
}

/** Registers an endpoint (`endpoint` its body) and the three steps with their images. */
async function register(api, endpoint, steps = STEPS) {
  const endpointId = createdId(await api.post("serviceendpoints", endpoint), "serviceendpoint");
  const ids = { endpointId, steps: {} };
  for (const step of steps) {
    const { messageId, filterId } = await lookUpMessage(api, step.message);
    const stepId = createdId(await api.post("sdkmessageprocessingsteps", stepBody(step, endpointId, messageId, filterId)), `${step.message} step`);
    const imageId = createdId(await api.post("sdkmessageprocessingstepimages", imageBody(step.image, stepId)), `${step.message} image`);
    ids.steps[step.message] = { stepId, imageId, messageId, filterId };
  }
  return ids;
}

/** A stack with a receiver and the relay's registration pointing at it. */
async function registered(eventOptions = {}, { key = "s3cret-key", endpoint = null } = {}) {
  const stack = await startStack(eventOptions);
  const receiver = await startReceiver();
  const ids = await register(stack.api, endpoint ? endpoint(receiver) : endpointBody(receiver.url, key));
  return { ...stack, receiver, ids, key };
}

async function createContact(api, body, headers) {
  return createdId(await api.post("contacts", body, headers), "contact");
}

const attrs = (entity) => Object.fromEntries(entity.Attributes.map(({ key, value }) => [key, value]));
const param = (list, key) => list.find((p) => p.key === key)?.value;
const dateOf = (iso) => `/Date(${Date.parse(iso)})/`;

/** Waits (bounded) until `predicate()` holds. */
async function until(predicate, what, { tries = 500, everyMs = 10 } = {}) {
  for (let i = 0; i < tries; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  assert.fail(`timed out waiting for ${what}`);
}

// ----- 1. registration -----------------------------------------------------------------------

test("registration: the relay's bodies are accepted and bound; Dataverse's refusals", async () => {
  const { api, dv } = await startStack();
  const receiver = await startReceiver();
  const ids = await register(api, endpointBody(receiver.url, "k"));

  const endpoint = await api.get(`serviceendpoints(${ids.endpointId})?$select=contract,authtype,authvalue,url`);
  assert.equal(endpoint.status, 200, endpoint.text);
  assert.deepEqual([endpoint.json.contract, endpoint.json.authtype, endpoint.json.url], [8, 5, receiver.url]);
  assert.equal(endpoint.json.authvalue, `<settings><setting name="${KEY_HEADER}" value="k" /></settings>`);

  // A table's own lookup expands by its navigation property ("Join tables using OData"), with
  // the row it points to; the attribute's name is no navigation property.
  const { stepId: createStep } = ids.steps.Create;
  const expanded = await api.get(`sdkmessageprocessingsteps(${createStep})?$select=stage&$expand=eventhandler_serviceendpoint($select=url)`);
  assert.equal(expanded.status, 200, expanded.text);
  assert.equal(expanded.json.eventhandler_serviceendpoint.url, receiver.url);
  assert.equal(expanded.json.eventhandler_serviceendpoint.serviceendpointid, ids.endpointId);
  assert.equal((await api.get(`sdkmessageprocessingsteps(${createStep})?$expand=eventhandler`)).status, 501);

  // The lookups read back as _<attribute>_value.
  for (const message of ["Create", "Update", "Delete"]) {
    const { stepId, messageId, filterId } = ids.steps[message];
    assert.equal(messageId, SDK_MESSAGES[message]);
    const filter = encodeURIComponent(`_eventhandler_value eq ${ids.endpointId} and _sdkmessageid_value eq ${messageId}`);
    const found = await api.get(`sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid,stage,mode,filteringattributes,_sdkmessagefilterid_value&$filter=${filter}`);
    assert.equal(found.status, 200, found.text);
    assert.equal(found.json.value.length, 1, `${message}: ${found.text}`);
    const step = found.json.value[0];
    assert.equal(step.sdkmessageprocessingstepid, stepId);
    assert.deepEqual([step.stage, step.mode, step._sdkmessagefilterid_value], [40, 1, filterId]);
    assert.equal(step.filteringattributes, message === "Update" ? FILTERING.join(",") : null);
    const images = await api.get(`sdkmessageprocessingstepimages?$select=sdkmessageprocessingstepimageid,messagepropertyname&$filter=${encodeURIComponent(`_sdkmessageprocessingstepid_value eq ${stepId}`)}`);
    assert.equal(images.status, 200, images.text);
    assert.deepEqual(
      images.json.value.map((i) => [i.sdkmessageprocessingstepimageid, i.messagepropertyname]),
      [[ids.steps[message].imageId, message === "Create" ? "Id" : "Target"]],
    );
  }
  // Another endpoint's id finds nothing.
  const none = await api.get(`sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid&$filter=${encodeURIComponent(`_eventhandler_value eq 00000000-0000-4000-8000-000000000999 and _sdkmessageid_value eq ${SDK_MESSAGES.Create}`)}`);
  assert.equal(none.status, 200, none.text);
  assert.equal(none.json.value.length, 0);

  const stepsBefore = dv.rows("sdkmessageprocessingstep").length;
  assert.equal(stepsBefore, 3);
  // An @odata.bind to the wrong entity set.
  const { messageId, filterId } = ids.steps.Update;
  const wrongSet = await api.post("sdkmessageprocessingsteps", { ...stepBody(STEPS[1], ids.endpointId, messageId, filterId), "sdkmessageid@odata.bind": `/sdkmessagefilters(${filterId})` });
  assert.equal(wrongSet.status, 400, wrongSet.text);
  assert.match(wrongSet.json.error.message, /sdkmessageid@odata\.bind/);
  const notAReference = await api.post("sdkmessageprocessingsteps", { ...stepBody(STEPS[1], ids.endpointId, messageId, filterId), "eventhandler_serviceendpoint@odata.bind": "serviceendpoints" });
  assert.equal(notAReference.status, 400, notAReference.text);
  const undeclared = await api.post("sdkmessageprocessingsteps", { ...stepBody(STEPS[1], ids.endpointId, messageId, filterId), "plugintypeid@odata.bind": `/plugintypes(${filterId})` });
  assert.equal(undeclared.status, 400, undeclared.text);
  assert.equal(dv.rows("sdkmessageprocessingstep").length, stepsBefore, "no step was written by a refused body");

  // An image of Target on a Create step.
  const imagesBefore = dv.rows("sdkmessageprocessingstepimage").length;
  const targetOnCreate = await api.post("sdkmessageprocessingstepimages", imageBody({ ...STEPS[0].image, property: "Target" }, ids.steps.Create.stepId));
  assert.equal(targetOnCreate.status, 400, targetOnCreate.text);
  assert.match(targetOnCreate.json.error.message, /Create/);
  assert.match(targetOnCreate.json.error.message, /Target/);
  // The same on Update is fine (a second image there).
  createdId(await api.post("sdkmessageprocessingstepimages", imageBody({ alias: "PreImage", kind: 0, property: "Target", attributes: "emailaddress1" }, ids.steps.Update.stepId)), "pre-image on Update");
  assert.equal(dv.rows("sdkmessageprocessingstepimage").length, imagesBefore + 1);

  // A webhook whose HttpHeader authvalue is not <settings>…</settings>, or with no url or a wrong authtype.
  const endpointsBefore = dv.rows("serviceendpoint").length;
  const plainKey = await api.post("serviceendpoints", endpointBody(receiver.url, "k", { authvalue: "just-a-key" }));
  assert.equal(plainKey.status, 400, plainKey.text);
  assert.match(plainKey.json.error.message, /<settings>/);
  const queryString = await api.post("serviceendpoints", endpointBody(receiver.url, "k", { authtype: 6, authvalue: "code=x" }));
  assert.equal(queryString.status, 400, queryString.text);
  const noUrl = await api.post("serviceendpoints", endpointBody("", "k"));
  assert.equal(noUrl.status, 400, noUrl.text);
  const sasKey = await api.post("serviceendpoints", endpointBody(receiver.url, "k", { authtype: 2 }));
  assert.equal(sasKey.status, 400, sasKey.text);
  // Nor may a PATCH turn a good one into such.
  const patched = await api.patch(`serviceendpoints(${ids.endpointId})`, { authvalue: "just-a-key" });
  assert.equal(patched.status, 400, patched.text);
  assert.equal(dv.rows("serviceendpoint").length, endpointsBefore);
  assert.equal(dv.rows("serviceendpoint")[0].authvalue, `<settings><setting name="${KEY_HEADER}" value="k" /></settings>`);
  assert.equal(receiver.received.length, 0, "registering fires nothing");
});

// ----- 2. the deliveries ---------------------------------------------------------------------

test("Create, Update and Delete each deliver one POST with the headers and the RemoteExecutionContext", async () => {
  const { api, events, receiver, ids, key } = await registered({}, { key: 'key "with" <xml> & more' });
  const who = (await api.get("WhoAmI")).json.UserId;
  assert.match(who, GUID);

  // Create
  const id = await createContact(api, { firstname: "Anna", lastname: "Kowalska", emailaddress1: "anna@example.com", birthdate: "1980-05-01", donotbulkemail: true, new_salesmanagosyncstatus: 100000000 });
  await events.idle();
  assert.equal(receiver.received.length, 1);
  const row = (await api.get(`contacts(${id})`)).json;
  {
    const { method, url, headers, body } = receiver.received[0];
    assert.equal(method, "POST");
    assert.equal(url.pathname, "/dataverse/webhook");
    assert.equal(url.search, "");
    assert.equal(headers[KEY_HEADER], key, "the <setting> unescaped");
    assert.match(headers["content-type"], /^application\/json/);
    assert.equal(headers["x-ms-dynamics-request-name"], "Create");
    assert.equal(headers["x-ms-dynamics-entity-name"], "contact");
    assert.match(headers["x-ms-correlation-request-id"], GUID);
    assert.equal(headers["x-ms-correlation-request-id"], body.CorrelationId);
    assert.match(headers["x-request-id"], GUID);
    assert.equal(headers["x-ms-dynamics-msg-size-exceeded"], undefined);
    assert.deepEqual([body.MessageName, body.PrimaryEntityName, body.PrimaryEntityId, body.Stage, body.Mode, body.Depth], ["Create", "contact", id, 40, 1, 1]);
    assert.equal(body.InitiatingUserId, who);
    assert.equal(body.UserId, who);
    assert.equal(body.OwningExtension.Id, ids.steps.Create.stepId);
    assert.deepEqual(body.OutputParameters, [{ key: "id", value: id }]);
    const target = param(body.InputParameters, "Target");
    assert.equal(target.__type, `Entity:${XRM}`);
    assert.deepEqual([target.LogicalName, target.Id], ["contact", id]);
    const t = attrs(target);
    assert.equal(t.firstname, "Anna");
    assert.equal(t.lastname, "Kowalska");
    assert.equal(t.emailaddress1, "anna@example.com");
    assert.equal(t.donotbulkemail, true);
    assert.equal(t.birthdate, "/Date(325987200000)/");
    assert.deepEqual(t.new_salesmanagosyncstatus, { __type: `OptionSetValue:${XRM}`, Value: 100000000 });
    assert.equal(t.contactid, id);
    assert.equal(t.createdon, dateOf(row.createdon));
    assert.equal(t.modifiedon, dateOf(row.modifiedon));
    assert.equal(t.modifiedby.__type, `EntityReference:${XRM}`);
    assert.deepEqual([t.modifiedby.Id, t.modifiedby.LogicalName], [who, "systemuser"]);
    assert.equal(t.mobilephone, undefined, "a column the request did not set is not in the Target");
    assert.deepEqual(body.PreEntityImages, []);
    assert.deepEqual(body.PostEntityImages.map((i) => i.key), ["PostImage"]);
    const post = attrs(param(body.PostEntityImages, "PostImage"));
    assert.deepEqual(Object.keys(post).sort(), [...IMAGE_COLUMNS].sort(), "the image holds its attributes, and only them");
    assert.equal(post.emailaddress1, "anna@example.com");
    assert.equal(post.mobilephone, null);
    assert.equal(post.modifiedon, dateOf(row.modifiedon));
  }

  // Update
  const patched = await api.patch(`contacts(${id})`, { emailaddress1: "anna.k@example.com", new_salesmanagosyncedon: "2024-03-04T05:06:07Z" });
  assert.equal(patched.status, 204, patched.text);
  await events.idle();
  assert.equal(receiver.received.length, 2);
  const updated = (await api.get(`contacts(${id})`)).json;
  {
    const { headers, body } = receiver.received[1];
    assert.equal(headers[KEY_HEADER], key);
    assert.equal(headers["x-ms-dynamics-request-name"], "Update");
    assert.equal(headers["x-ms-dynamics-entity-name"], "contact");
    assert.equal(headers["x-ms-correlation-request-id"], body.CorrelationId);
    assert.notEqual(body.CorrelationId, receiver.received[0].body.CorrelationId);
    assert.deepEqual([body.MessageName, body.PrimaryEntityName, body.PrimaryEntityId, body.Stage, body.InitiatingUserId], ["Update", "contact", id, 40, who]);
    assert.equal(body.OwningExtension.Id, ids.steps.Update.stepId);
    const t = attrs(param(body.InputParameters, "Target"));
    assert.deepEqual(Object.keys(t).sort(), ["contactid", "emailaddress1", "modifiedby", "modifiedon", "new_salesmanagosyncedon"]);
    assert.equal(t.emailaddress1, "anna.k@example.com");
    assert.equal(t.new_salesmanagosyncedon, "/Date(1709528767000)/");
    assert.equal(t.modifiedon, dateOf(updated.modifiedon));
    const post = attrs(param(body.PostEntityImages, "PostImage"));
    assert.equal(post.emailaddress1, "anna.k@example.com");
    assert.equal(post.firstname, "Anna", "the post-image holds what the request did not set");
    assert.equal(post.birthdate, "/Date(325987200000)/");
    assert.deepEqual(body.PreEntityImages, []);
  }

  // Delete
  const deleted = await api.del(`contacts(${id})`);
  assert.equal(deleted.status, 204, deleted.text);
  await events.idle();
  assert.equal(receiver.received.length, 3);
  {
    const { headers, body } = receiver.received[2];
    assert.equal(headers[KEY_HEADER], key);
    assert.equal(headers["x-ms-dynamics-request-name"], "Delete");
    assert.equal(headers["x-ms-dynamics-entity-name"], "contact");
    assert.equal(headers["x-ms-correlation-request-id"], body.CorrelationId);
    assert.deepEqual([body.MessageName, body.PrimaryEntityName, body.PrimaryEntityId, body.Stage, body.InitiatingUserId], ["Delete", "contact", id, 40, who]);
    assert.equal(body.OwningExtension.Id, ids.steps.Delete.stepId);
    const target = param(body.InputParameters, "Target");
    assert.equal(target.__type, `EntityReference:${XRM}`);
    assert.deepEqual([target.Id, target.LogicalName], [id, "contact"]);
    assert.equal(target.Attributes, undefined);
    assert.deepEqual(body.PostEntityImages, []);
    assert.deepEqual(body.PreEntityImages.map((i) => i.key), ["PreImage"]);
    const pre = attrs(param(body.PreEntityImages, "PreImage"));
    assert.deepEqual(pre, { contactid: id, emailaddress1: "anna.k@example.com" });
  }
  assert.deepEqual(events.stats(), { fired: 3, delivered: 3, retried: 0, failed: 0, cut: 0, pending: 0 });
  assert.deepEqual(events.failedJobs(), []);
});

test("a change of a registration table fires nothing, nor does a disabled step", async () => {
  const { api, events, receiver, ids } = await registered();
  const r = await api.patch(`serviceendpoints(${ids.endpointId})`, { description: "changed" });
  assert.equal(r.status, 204, r.text);
  await events.idle();
  assert.equal(events.stats().fired, 0);
  assert.equal(receiver.received.length, 0);
  // A disabled step (statecode 1) fires nothing; the others still do.
  assert.equal((await api.patch(`sdkmessageprocessingsteps(${ids.steps.Create.stepId})`, { statecode: 1 })).status, 204);
  const id = await createContact(api, { emailaddress1: "a@example.com" });
  await api.patch(`contacts(${id})`, { firstname: "A" });
  await events.idle();
  assert.deepEqual(receiver.received.map((e) => e.body.MessageName), ["Update"]);
});

// ----- 3. filtering attributes ---------------------------------------------------------------

test("Update fires only when the request set one of the filtering attributes", async () => {
  const { api, events, receiver } = await registered();
  const id = await createContact(api, { firstname: "Jan", emailaddress1: "jan@example.com" });
  await events.idle();
  assert.equal(events.stats().fired, 1);
  assert.equal(receiver.received.length, 1);

  // The relay's own write-back: columns outside the filtering attributes.
  const own = await api.patch(`contacts(${id})`, { new_salesmanagosyncstatus: 100000000, new_salesmanagoid: "sm-1", new_salesmanagosyncedon: "2024-01-01T00:00:00Z" });
  assert.equal(own.status, 204, own.text);
  await events.idle();
  assert.equal(events.stats().fired, 1, "no echo of the write-back");
  assert.equal(receiver.received.length, 1);

  // Setting a filtering attribute, even to the value it had, fires.
  assert.equal((await api.patch(`contacts(${id})`, { firstname: "Jan" })).status, 204);
  await events.idle();
  assert.equal(events.stats().fired, 2);
  assert.equal(receiver.received.length, 2);
  assert.equal(receiver.received[1].body.MessageName, "Update");
  assert.deepEqual(Object.keys(attrs(param(receiver.received[1].body.InputParameters, "Target"))).sort(), ["contactid", "firstname", "modifiedby", "modifiedon"]);

  // A filtering attribute together with another column fires once.
  assert.equal((await api.patch(`contacts(${id})`, { new_salesmanagoid: "sm-2", mobilephone: "+48 600 000 000" })).status, 204);
  await events.idle();
  assert.deepEqual(events.stats(), { fired: 3, delivered: 3, retried: 0, failed: 0, cut: 0, pending: 0 });
  assert.equal(attrs(param(receiver.received[2].body.PostEntityImages, "PostImage")).new_salesmanagoid, "sm-2");
});

test("images name lookups by their attribute (modifiedby); an image without attributes holds every column", async () => {
  const stack = await startStack();
  const receiver = await startReceiver();
  const steps = [{ message: "Create", filtering: null, image: { alias: "PostImage", kind: 1, property: "Id", attributes: "emailaddress1,modifiedby,createdby" } }];
  const ids = await register(stack.api, endpointBody(receiver.url, "k"), steps);
  const all = { name: "All", entityalias: "All", imagetype: 1, messagepropertyname: "Id", "sdkmessageprocessingstepid@odata.bind": `/sdkmessageprocessingsteps(${ids.steps.Create.stepId})` };
  createdId(await stack.api.post("sdkmessageprocessingstepimages", all), "image of every column");
  const id = await createContact(stack.api, { firstname: "Ola", emailaddress1: "ola@example.com" });
  await stack.events.idle();
  assert.equal(receiver.received.length, 1);
  const images = receiver.received[0].body.PostEntityImages;
  assert.deepEqual(images.map((i) => i.key), ["PostImage", "All"]);
  const post = attrs(images[0].value);
  const who = (await stack.api.get("WhoAmI")).json.UserId;
  assert.deepEqual(Object.keys(post), ["emailaddress1", "modifiedby", "createdby"]);
  assert.deepEqual([post.modifiedby.__type, post.modifiedby.Id, post.modifiedby.LogicalName], [`EntityReference:${XRM}`, who, "systemuser"]);
  assert.equal(post.createdby.Id, who);
  const every = attrs(images[1].value);
  assert.equal(every.contactid, id);
  assert.equal(every.fullname, "Ola");
  assert.equal(every.modifiedby.Id, who);
  assert.equal(every._modifiedby_value, undefined, "keyed by the attribute, not the Web API property");
  assert.equal(every.description, null);
});

// ----- 4. asynchronous -----------------------------------------------------------------------

test("asynchronous: the write answers at once; the delivery follows the commit", async () => {
  const { api, events, receiver } = await registered({ delayMs: 300 });
  let release;
  receiver.hold = new Promise((resolve) => (release = resolve));
  const started = Date.now();
  const created = await api.post("contacts", { firstname: "Ewa", emailaddress1: "ewa@example.com" });
  const id = createdId(created, "contact");
  assert.equal(receiver.received.length, 0, "the write answered before the delivery was made");
  assert.equal(events.stats().pending, 1);

  // The receiver gets the event while the contact is already readable (committed), and holds its answer.
  await until(() => receiver.received.length === 1, "the delivery");
  assert.ok(Date.now() - started >= 250, "after the pick-up delay");
  const read = await api.get(`contacts(${id})?$select=emailaddress1`);
  assert.equal(read.status, 200);
  assert.equal(read.json.emailaddress1, "ewa@example.com");

  // While the receiver holds its answer, another write still answers at once.
  const patched = await api.patch(`contacts(${id})`, { lastname: "Nowak" });
  assert.equal(patched.status, 204);
  assert.equal(receiver.received[0].answeredAt, null, "the first delivery is still unanswered");
  assert.equal(events.stats().delivered, 0);
  let idle = false;
  const idled = events.idle().then(() => (idle = true));
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(idle, false, "idle() waits for the held delivery");
  release();
  await idled;
  assert.deepEqual(events.stats(), { fired: 2, delivered: 2, retried: 0, failed: 0, cut: 0, pending: 0 });
  assert.deepEqual(receiver.received.map((e) => e.body.MessageName), ["Create", "Update"]);
});

// ----- 5. one retry, failed system jobs ------------------------------------------------------

async function failedJobsOverHttp(api) {
  const r = await api.get(`asyncoperations?$select=asyncoperationid,statecode,statuscode,message,primaryentitytype,regardingobjectid&$filter=statuscode eq 31`);
  assert.equal(r.status, 200, r.text);
  return r.json.value;
}

test("503 then 200: delivered once after one retry, no failed job", async () => {
  const { api, events, receiver } = await registered();
  receiver.answers.push(503);
  const id = await createContact(api, { emailaddress1: "retry@example.com" });
  await events.idle();
  assert.deepEqual(receiver.received.map((e) => e.answeredAt !== null), [true, true]);
  assert.equal(receiver.received[1].body.PrimaryEntityId, id);
  assert.equal(receiver.received[1].text, receiver.received[0].text, "the retry sends the same event");
  assert.deepEqual(events.stats(), { fired: 1, delivered: 1, retried: 1, failed: 0, cut: 0, pending: 0 });
  assert.deepEqual(events.failedJobs(), []);
  assert.deepEqual(await failedJobsOverHttp(api), []);
});

test("503 twice: a failed system job, readable through the Web API", async () => {
  const { api, events, receiver, dv } = await registered();
  receiver.answers.push(503, 503);
  const id = await createContact(api, { emailaddress1: "twice@example.com" });
  await events.idle();
  assert.equal(receiver.received.length, 2, "one retry, no more");
  assert.deepEqual(events.stats(), { fired: 1, delivered: 0, retried: 1, failed: 1, cut: 0, pending: 0 });
  const jobs = await failedJobsOverHttp(api);
  assert.equal(jobs.length, 1);
  assert.deepEqual([jobs[0].statecode, jobs[0].statuscode, jobs[0].primaryentitytype, jobs[0].regardingobjectid], [3, 31, "contact", id]);
  assert.match(jobs[0].message, /503/);
  assert.deepEqual(events.failedJobs().map((j) => j.asyncoperationid), [jobs[0].asyncoperationid]);
  assert.equal(dv.rows("asyncoperation").length, 1);
  // Nothing more happens later.
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(receiver.received.length, 2);
});

test("500: no retry, a failed job; 502 and 504 are retried", async () => {
  const { api, events, receiver } = await registered();
  receiver.answers.push(500);
  const id = await createContact(api, { emailaddress1: "five-hundred@example.com" });
  await events.idle();
  assert.equal(receiver.received.length, 1);
  assert.deepEqual(events.stats(), { fired: 1, delivered: 0, retried: 0, failed: 1, cut: 0, pending: 0 });
  const jobs = await failedJobsOverHttp(api);
  assert.deepEqual(jobs.map((j) => j.regardingobjectid), [id]);
  assert.match(jobs[0].message, /500/);

  for (const status of [502, 504]) receiver.answers.push(status);
  await api.patch(`contacts(${id})`, { firstname: "A" });
  await api.patch(`contacts(${id})`, { firstname: "B" });
  await events.idle();
  assert.equal(receiver.received.length, 5);
  assert.deepEqual(events.stats(), { fired: 3, delivered: 2, retried: 2, failed: 1, cut: 0, pending: 0 });

  // 404 and 401 are not retried either.
  receiver.answers.push(404, 401);
  await api.patch(`contacts(${id})`, { firstname: "C" });
  await events.idle();
  await api.patch(`contacts(${id})`, { firstname: "D" });
  await events.idle();
  assert.equal(receiver.received.length, 7);
  assert.deepEqual(events.stats(), { fired: 5, delivered: 2, retried: 2, failed: 3, cut: 0, pending: 0 });
  assert.equal((await failedJobsOverHttp(api)).length, 3);
});

test("a receiver that is not listening, or does not answer in time: a failed job", async () => {
  const url = await deadUrl();
  const dead = await registered({}, { endpoint: () => endpointBody(url, "k") });
  const id = await createContact(dead.api, { emailaddress1: "nobody@example.com" });
  await dead.events.idle();
  assert.deepEqual(dead.events.stats(), { fired: 1, delivered: 0, retried: 0, failed: 1, cut: 0, pending: 0 });
  const jobs = await failedJobsOverHttp(dead.api);
  assert.deepEqual(jobs.map((j) => j.regardingobjectid), [id]);
  assert.match(jobs[0].message, /could not be reached/);

  const slow = await registered({ timeoutMs: 200 });
  slow.receiver.hold = new Promise(() => {}); // never answers; the server is closed in `after`
  await createContact(slow.api, { emailaddress1: "slow@example.com" });
  await slow.events.idle();
  assert.equal(slow.receiver.received.length, 1, "no answer is not retried");
  assert.deepEqual(slow.events.stats(), { fired: 1, delivered: 0, retried: 0, failed: 1, cut: 0, pending: 0 });
  assert.match((await failedJobsOverHttp(slow.api))[0].message, /no answer/);
});

// ----- 6. the 256 KB cut ---------------------------------------------------------------------

test("a payload above maxPayloadBytes is cut: no parameters or images, the header says so", async () => {
  const { api, events, receiver } = await registered({ maxPayloadBytes: 3000 });
  const id = await createContact(api, { firstname: "Big", emailaddress1: "big@example.com", description: "x".repeat(4000) });
  await events.idle();
  assert.equal(receiver.received.length, 1);
  const { headers, body, text } = receiver.received[0];
  assert.ok(Buffer.byteLength(text) <= 3000, `${Buffer.byteLength(text)} bytes`);
  assert.equal(headers["x-ms-dynamics-msg-size-exceeded"], "true");
  assert.deepEqual([body.InputParameters, body.PreEntityImages, body.PostEntityImages], [[], [], []]);
  assert.deepEqual([body.MessageName, body.PrimaryEntityName, body.PrimaryEntityId], ["Create", "contact", id]);
  assert.equal(headers["x-ms-dynamics-request-name"], "Create");
  assert.equal(events.stats().cut, 1);

  // A small change of the same contact still fits (its image holds no description).
  await api.patch(`contacts(${id})`, { firstname: "Small" });
  await events.idle();
  assert.equal(receiver.received.length, 2);
  assert.equal(receiver.received[1].headers["x-ms-dynamics-msg-size-exceeded"], undefined);
  assert.equal(attrs(param(receiver.received[1].body.InputParameters, "Target")).firstname, "Small");
  assert.deepEqual(events.stats(), { fired: 2, delivered: 2, retried: 0, failed: 0, cut: 1, pending: 0 });
});

// ----- 7. the other authentication types -----------------------------------------------------

test("WebhookKey (authtype 4) sends ?code=<authvalue>; HttpQueryString (6) sends each setting in the query", async () => {
  const keyed = await registered({}, { endpoint: (receiver) => endpointBody(receiver.url, "", { authtype: 4, authvalue: "the key&=" }) });
  await createContact(keyed.api, { emailaddress1: "code@example.com" });
  await keyed.events.idle();
  assert.equal(keyed.receiver.received.length, 1);
  const { url, headers } = keyed.receiver.received[0];
  assert.equal(url.pathname, "/dataverse/webhook");
  assert.deepEqual([...url.searchParams], [["code", "the key&="]]);
  assert.equal(headers[KEY_HEADER], undefined);

  const query = await registered({}, { endpoint: (receiver) => endpointBody(`${receiver.url}?v=1`, "", { authtype: 6, authvalue: '<settings><setting name="sig" value="a&amp;b" /><setting name="who" value="relay" /></settings>' }) });
  await createContact(query.api, { emailaddress1: "query@example.com" });
  await query.events.idle();
  assert.equal(query.receiver.received.length, 1);
  assert.deepEqual([...query.receiver.received[0].url.searchParams], [["v", "1"], ["sig", "a&b"], ["who", "relay"]]);
  assert.equal(query.receiver.received[0].headers.sig, undefined);
});

// ----- 8. Entra ID's token endpoint ----------------------------------------------------------

async function token(origin, fields, tenant = APP.tenant) {
  const response = await fetch(`${origin}/${tenant}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { status: response.status, json: await response.json() };
}

const GOOD = (origin) => ({ grant_type: "client_credentials", client_id: APP.clientId, client_secret: APP.secret, scope: `${origin}/.default` });

test("Entra: a client-credentials token acts as the application user in the Dataverse stand-in", async () => {
  const { api, origin, events, receiver, entra } = await registered();
  const issued = await token(origin, GOOD(origin));
  assert.equal(issued.status, 200, JSON.stringify(issued.json));
  assert.equal(issued.json.token_type, "Bearer");
  assert.equal(issued.json.expires_in, 3599);
  assert.equal(typeof issued.json.access_token, "string");
  assert.ok(issued.json.access_token.length >= 20);
  assert.equal(entra.issued(), 1);
  const asApp = { Authorization: `Bearer ${issued.json.access_token}` };

  const who = await api.get("WhoAmI", asApp);
  assert.equal(who.status, 200, who.text);
  assert.equal(who.json.UserId, APP.userId);
  const browser = (await api.get("WhoAmI")).json.UserId;
  assert.notEqual(browser, APP.userId);
  // A token nobody issued is no one: 401 with Dataverse's challenge, which names the authority.
  const unknown = await api.get("WhoAmI", { Authorization: "Bearer not-issued" });
  assert.equal(unknown.status, 401, unknown.text);
  assert.match(unknown.headers.get("www-authenticate"), /^Bearer authorization_uri=https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}\/oauth2\/authorize, resource_id=http:\/\/127\.0\.0\.1:\d+\/$/);

  const id = await createContact(api, { emailaddress1: "app@example.com" }, asApp);
  const row = (await api.get(`contacts(${id})?$select=_modifiedby_value,_createdby_value`)).json;
  assert.deepEqual([row._createdby_value, row._modifiedby_value], [APP.userId, APP.userId]);
  // The browser user's change afterwards is theirs.
  await api.patch(`contacts(${id})`, { firstname: "Browser" });
  assert.equal((await api.get(`contacts(${id})?$select=_modifiedby_value`)).json._modifiedby_value, browser);
  await events.idle();
  assert.deepEqual(receiver.received.map((e) => [e.body.MessageName, e.body.InitiatingUserId]), [
    ["Create", APP.userId],
    ["Update", browser],
  ]);
  assert.equal(attrs(param(receiver.received[0].body.InputParameters, "Target")).modifiedby.Id, APP.userId);

  // A second token works as well.
  const again = await token(origin, GOOD(origin));
  assert.equal(again.status, 200);
  assert.notEqual(again.json.access_token, issued.json.access_token);
  assert.equal((await api.get("WhoAmI", { Authorization: `Bearer ${again.json.access_token}` })).json.UserId, APP.userId);
  assert.equal(entra.issued(), 2);
});

test("Entra: wrong secret, grant, scope, client or tenant are refused as Entra does", async () => {
  const { origin, entra } = await startStack();
  const wrongSecret = await token(origin, { ...GOOD(origin), client_secret: "nope" });
  assert.equal(wrongSecret.status, 401);
  assert.equal(wrongSecret.json.error, "invalid_client");
  assert.match(wrongSecret.json.error_description, /^AADSTS/);

  const wrongGrant = await token(origin, { ...GOOD(origin), grant_type: "password" });
  assert.equal(wrongGrant.status, 400);
  assert.equal(wrongGrant.json.error, "unsupported_grant_type");

  const noDefault = await token(origin, { ...GOOD(origin), scope: origin });
  assert.equal(noDefault.status, 400);
  assert.equal(noDefault.json.error, "invalid_scope");

  const unknownClient = await token(origin, { ...GOOD(origin), client_id: "00000000-0000-4000-8000-000000000bad" });
  assert.equal(unknownClient.status, 400);
  assert.equal(unknownClient.json.error, "unauthorized_client");

  const unknownTenant = await token(origin, GOOD(origin), "00000000-0000-4000-8000-00000000dead");
  assert.equal(unknownTenant.status, 400);
  assert.equal(unknownTenant.json.error, "invalid_tenant");

  const get = await fetch(`${origin}/${APP.tenant}/oauth2/v2.0/token`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  assert.equal(get.status, 405);
  await get.text();
  assert.equal(entra.issued(), 0, "no token was issued");
});
