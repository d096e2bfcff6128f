// The logic of commands.js and credentials.html that needs no browser, against xrm-mock's Xrm
// and formContext: what each entry point hands the engine, and what the user is shown.
// credentials.html runs with the real engine and a minimal document.
import { beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { createRequire } from "node:module";
import { version, webresource } from "./support/package.mjs";

const { XrmMockGenerator } = createRequire(import.meta.url)("xrm-mock");
const INTEGRATION_ID = "{5A1E5A1E-0000-4000-8000-000000000001}";

let Xrm;
beforeEach(() => {
  Xrm = XrmMockGenerator.initialise({ entity: { id: INTEGRATION_ID, entityName: "new_salesmanagointegration" } });
});

function setLanguage(lcid) {
  const context = Xrm.Utility.getGlobalContext();
  context.userSettings.languageId = lcid;
  Xrm.Utility.getGlobalContext = () => context;
}

/** commands.js in a window-like context whose engines are all `engine` (already loaded). */
function commandsWith(engine) {
  const loaded = { version: version(), ready: () => Promise.resolve(engine) };
  const context = { console, setTimeout, Promise, Xrm, SalesManagoEngine: loaded, SalesManagoAdminEngine: loaded, SalesManagoExportEngine: loaded, SalesManagoPullConsentsEngine: loaded, SalesManagoPullChangesEngine: loaded, SalesManagoPullActivityEngine: loaded, document: { currentScript: null } };
  context.window = context;
  vm.createContext(context);
  vm.runInContext(webresource("commands.js"), context, { filename: "commands.js" });
  return context.SalesManago;
}

/** An engine that records its calls and answers with `answer(name, context)`. */
function recordingEngine(answer = () => Promise.resolve({ message: "done" })) {
  const calls = [];
  return { calls, runCommand: (name, context) => (calls.push({ name, context }), answer(name, context)) };
}

test("a form button hands the engine its formContext, Xrm and the user's language, and shows the answer", async () => {
  setLanguage(1045);
  const engine = recordingEngine(() => Promise.resolve({ message: "Gotowe." }));
  const SalesManago = commandsWith(engine);
  const formContext = XrmMockGenerator.getFormContext();
  await SalesManago.Contact.fetch(formContext);
  assert.equal(engine.calls.length, 1);
  assert.equal(engine.calls[0].name, "contact.fetch");
  assert.equal(engine.calls[0].context.primaryControl, formContext);
  assert.equal(engine.calls[0].context.xrm, Xrm);
  assert.equal(engine.calls[0].context.lcid, 1045);
  assert.deepEqual(Xrm.Navigation.alertDialogCalls.map((c) => c.alertStrings.text), ["Gotowe."]);
});

test("each integration button runs its own command", async () => {
  const engine = recordingEngine();
  const SalesManago = commandsWith(engine);
  const formContext = XrmMockGenerator.getFormContext();
  for (const name of ["testConnection", "exportAll", "pullConsents", "pullChanges"]) await SalesManago.Integration[name](formContext);
  await SalesManago.Contact.send(formContext);
  assert.deepEqual(engine.calls.map((c) => c.name), ["integration.testConnection", "job.exportAll", "job.pullConsents", "job.pullChanges", "contact.send"]);
});

test("the grid button passes the selected ids as the Web API takes them, and the grid control", async () => {
  const engine = recordingEngine();
  const SalesManago = commandsWith(engine);
  const grid = { refresh() {} };
  await SalesManago.Contact.exportSelected(["{0A1B2C3D-0000-4000-8000-00000000000A}", "{0A1B2C3D-0000-4000-8000-00000000000B}"], grid);
  assert.deepEqual(engine.calls[0].context.selectedIds, ["0a1b2c3d-0000-4000-8000-00000000000a", "0a1b2c3d-0000-4000-8000-00000000000b"]);
  assert.equal(engine.calls[0].context.selectedControl, grid);
});

test("an engine failure reaches the user as an error dialog with the engine's text", async () => {
  const SalesManago = commandsWith(recordingEngine(() => Promise.reject(Object.assign(new Error("SALESmanago refused the credentials."), { kind: "auth" }))));
  await SalesManago.Integration.testConnection(XrmMockGenerator.getFormContext());
  assert.deepEqual(Xrm.Navigation.errorDialogCalls.map((c) => c.errorOptions.message), ["SALESmanago refused the credentials."]);
  assert.equal(Xrm.Navigation.alertDialogCalls.length, 0);
});

// ---- credentials.html with the real engine ----

/** A document with the credential page's elements, enough for its script. */
function credentialDocument() {
  const elements = new Map();
  const make = (id) => {
    const listeners = {};
    const attributes = {};
    return {
      id, value: "", textContent: "", className: "", disabled: false, placeholder: "",
      setAttribute: (k, v) => (attributes[k] = String(v)),
      removeAttribute: (k) => delete attributes[k],
      getAttribute: (k) => (k in attributes ? attributes[k] : null),
      addEventListener: (type, f) => (listeners[type] = f),
      fire: (type) => listeners[type]({ preventDefault() {} }),
    };
  };
  const ids = ["title", "credentials", "save", "status", "engine"];
  for (const f of ["clientId", "apiSecret", "owner", "endpoint", "relayKey"]) ids.push(f, f + "Label", f + "Error");
  for (const id of ids) elements.set(id, make(id));
  return { elements, document: { currentScript: null, getElementById: (id) => elements.get(id) || null, documentElement: { lang: "" }, title: "" } };
}

/** The credential page loaded with the real engine, language `lcid`, on xrm-mock's form. */
async function credentialPage(lcid, columns) {
  for (const [name, value] of Object.entries(columns)) XrmMockGenerator.Attribute.createString(name, value);
  const formContext = XrmMockGenerator.getFormContext();
  const saves = [];
  formContext.data.save = () => (saves.push(Object.fromEntries(Object.keys(columns).map((c) => [c, formContext.getAttribute(c).getValue()]))), Promise.resolve());
  const { elements, document } = credentialDocument();
  const context = { console, atob, TextDecoder, TextEncoder, URL, URLSearchParams, FinalizationRegistry, WebAssembly, queueMicrotask, setTimeout, crypto: globalThis.crypto, document, location: { search: `?userlcid=${lcid}` } };
  context.window = context;
  // The page loads its engine, in its user's language, beside itself.
  const scripts = [];
  document.createElement = (tagName) => ({ tagName });
  document.head = {
    appendChild(element) {
      scripts.push(element.src);
      setTimeout(() => (vm.runInContext(webresource(element.src), context, { filename: element.src }), element.onload()), 0);
    },
  };
  vm.createContext(context);
  const html = webresource("credentials.html");
  const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(inline.length, 1, "credentials.html has one inline script");
  vm.runInContext(inline[0], context, { filename: "credentials.html" });
  for (let i = 0; i < 100 && !context.SalesManagoAdminEngine; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(scripts, [lcid === 1045 ? "engine-admin.pl.js" : "engine-admin.en.js"]);
  await context.SalesManagoAdminEngine.ready();
  await new Promise((resolve) => setTimeout(resolve, 0));
  context.setClientApiContext(Xrm, formContext);
  const $ = (id) => elements.get(id);
  const submit = async () => {
    $("credentials").fire("submit");
    for (let i = 0; i < 100 && $("status").textContent === ""; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    return $("status").textContent;
  };
  return { $, formContext, saves, submit, context };
}

const STORED = { new_clientid: "client-1", new_apisecret: "stored-secret", new_owner: "owner@example.com", new_endpoint: "https://app3.salesmanago.pl", new_relaykey: null };

test("the credential page shows what is stored, except the secret, in the user's language", async () => {
  const { $ } = await credentialPage(1045, STORED);
  assert.equal($("clientId").value, "client-1");
  assert.equal($("owner").value, "owner@example.com");
  assert.equal($("endpoint").value, "https://app3.salesmanago.pl");
  assert.equal($("apiSecret").value, "");
  assert.match($("apiSecret").placeholder, /zapisano/);
  assert.equal($("apiSecretLabel").textContent, "Sekret API");
  assert.equal($("save").disabled, false);
});

test("saving valid credentials writes the columns, saves the form once, and keeps a blank secret", async () => {
  const { $, saves, submit } = await credentialPage(1033, STORED);
  $("owner").value = " Second.Owner@Example.com ";
  $("endpoint").value = "app1.salesmanago.pl";
  assert.match(await submit(), /Credentials saved/);
  assert.deepEqual(saves, [{ ...STORED, new_owner: "second.owner@example.com", new_endpoint: "https://app1.salesmanago.pl" }]);
  assert.equal($("apiSecret").value, "");
  assert.equal($("owner").getAttribute("aria-invalid"), null);
});

test("invalid fields are marked one by one and the form is not saved", async () => {
  const { $, saves, submit, formContext } = await credentialPage(1033, { ...STORED, new_apisecret: null });
  $("owner").value = "owner(at)example.com";
  $("endpoint").value = "http://app3.salesmanago.pl";
  assert.match(await submit(), /Nothing was saved/);
  assert.deepEqual(saves, []);
  assert.equal($("apiSecret").getAttribute("aria-invalid"), "true");
  assert.match($("apiSecretError").textContent, /Enter the API secret/);
  assert.equal($("owner").getAttribute("aria-invalid"), "true");
  assert.match($("endpointError").textContent, /https:\/\//);
  assert.equal($("clientId").getAttribute("aria-invalid"), null);
  assert.equal(formContext.getAttribute("new_owner").getValue(), "owner@example.com", "nothing written");
});
