// The built web resources, run in node:vm contexts that give them only what a Dynamics window
// would: the ribbon and form functions the solution names exist, the engine loads lazily and
// once, and failures reach the user as text.
import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { solutionZip, testEngine, version, webresource } from "./support/package.mjs";

const commandsJs = webresource("commands.js");
const engineJs = webresource("engine.js");

/** A window-like vm context with a fake Xrm; engine.js "loads" when commands.js appends it. */
function dynamicsWindow({ languageId = 1033, engineLoads = true } = {}) {
  const seen = { alerts: [], errors: [], scripts: [] };
  const context = {
    console, atob, TextDecoder, TextEncoder, URL, FinalizationRegistry, WebAssembly, queueMicrotask, setTimeout,
    Xrm: {
      Utility: {
        getGlobalContext: () => ({
          userSettings: { languageId },
          getClientUrl: () => "https://contoso.crm4.dynamics.com",
          // As Microsoft's reference shows it: relative, with the caching token.
          getWebResourceUrl: (name) => `/%7b637199221580014143%7d/webresources/${name}`,
        }),
      },
      WebApi: {
        // An org where the solution is imported but no integration record exists yet.
        retrieveMultipleRecords: () => Promise.resolve({ entities: [] }),
      },
      Navigation: {
        openAlertDialog: (options) => (seen.alerts.push(options.text), Promise.resolve({})),
        openErrorDialog: (options) => (seen.errors.push(options.message), Promise.resolve({})),
      },
    },
    document: {
      currentScript: null,
      createElement: (tagName) => ({ tagName }),
      head: {
        appendChild(element) {
          seen.scripts.push(element.src);
          setTimeout(() => {
            if (engineLoads) {
              vm.runInContext(engineJs, context, { filename: "engine.js" });
              element.onload();
            } else {
              element.onerror();
            }
          }, 1);
        },
      },
    },
  };
  context.window = context;
  vm.createContext(context);
  return { context, seen };
}

function load(context, source, filename) {
  vm.runInContext(source, context, { filename });
}

/** Every function name the solution's ribbon rules, commands and form handlers call. */
function functionsTheSolutionCalls() {
  const xml = solutionZip().get("customizations.xml").toString("utf8");
  const names = [...xml.matchAll(/\b(?:FunctionName|functionName)="([^"]+)"/g)].map((m) => m[1]);
  return [...new Set(names)];
}

function resolve(context, dotted) {
  return dotted.split(".").reduce((object, key) => (object == null ? undefined : object[key]), context);
}

test("every function the solution calls is defined by commands.js", () => {
  const { context } = dynamicsWindow();
  load(context, commandsJs, "commands.js");
  const names = functionsTheSolutionCalls();
  assert.ok(names.length >= 9, `only ${names.length} function names in customizations.xml`);
  for (const name of names) {
    assert.equal(typeof resolve(context, name), "function", `${name} is not a function in commands.js`);
  }
});

test("commands.js adds one global, SalesManago, and engine.js one, SalesManagoEngine", () => {
  const { context } = dynamicsWindow();
  const before = new Set(Object.keys(context));
  load(context, commandsJs, "commands.js");
  load(context, engineJs, "engine.js");
  const added = Object.keys(context).filter((k) => !before.has(k)).sort();
  assert.deepEqual(added, ["SalesManago", "SalesManagoEngine"]);
  assert.equal(context.SalesManago.version, version());
  assert.equal(context.SalesManagoEngine.version, version());
});

test("the contact form's enable rule answers at once and loads no engine", () => {
  const { context, seen } = dynamicsWindow();
  load(context, commandsJs, "commands.js");
  assert.equal(context.SalesManago.Contact.onFormReady({}), true);
  assert.deepEqual(seen.scripts, []);
});

test("commands load the engine on first use, once, and show its answer in the user's language", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1045 });
  load(context, commandsJs, "commands.js");
  assert.equal(context.SalesManagoEngine, undefined, "engine.js must not load before a command runs");
  await Promise.all([context.SalesManago.Integration.pullChanges({}), context.SalesManago.Integration.testConnection({})]);
  assert.deepEqual(seen.scripts, [
    "/%7b637199221580014143%7d/webresources/new_/salesmanago/engine.js",
  ]);
  assert.equal(seen.alerts.length, 0, seen.alerts.join("\n"));
  assert.equal(seen.errors.length, 2);
  for (const error of seen.errors) assert.match(error, /Nie ma jeszcze rekordu integracji z SALESmanago/);
});

test("an engine that cannot load is reported, and the next click tries again", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1033, engineLoads: false });
  load(context, commandsJs, "commands.js");
  await context.SalesManago.Contact.send({});
  assert.equal(seen.alerts.length, 0);
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /SALESmanago engine could not start .*engine\.js could not be loaded/);
  await context.SalesManago.Contact.send({});
  assert.equal(seen.scripts.length, 2, "a failed load must not be cached");
});

test("an engine of another version (a stale cache) is reported, not used", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1033 });
  load(context, commandsJs, "commands.js");
  const stale = engineJs.replaceAll(`"${version()}"`, '"0.0.1"');
  context.document.head.appendChild = (element) => {
    seen.scripts.push(element.src);
    setTimeout(() => (vm.runInContext(stale, context, { filename: "engine.js" }), element.onload()), 1);
  };
  await context.SalesManago.Contact.send({});
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /SALESmanago engine could not start \(engine\.js is version 0\.0\.1, commands\.js \d+\.\d+\.\d+\)/);
});

test("the engine instantiates once per window and a second engine.js keeps the first", async () => {
  const { context } = dynamicsWindow();
  load(context, engineJs, "engine.js");
  const first = context.SalesManagoEngine;
  const [a, b] = await Promise.all([first.ready(), first.ready()]);
  assert.equal(a, b);
  assert.equal(first.version, version());
  load(context, engineJs, "engine.js");
  assert.equal(context.SalesManagoEngine, first);
  assert.equal(await context.SalesManagoEngine.ready(), a);
  await assert.rejects(a.runCommand("no.such", { lcid: 1033 }), /no command “no\.such”/);
});

test("the shipped engine exports only what the web resources call; the test engine adds the test exports", async () => {
  const exportsOf = async (js) => {
    const { context } = dynamicsWindow();
    load(context, js, "engine.js");
    const engine = await context.SalesManagoEngine.ready();
    return Object.keys(engine).filter((k) => typeof engine[k] === "function" && !k.startsWith("__") && k !== "initSync").sort();
  };
  const shipped = await exportsOf(engineJs);
  assert.deepEqual(shipped, ["credentialsState", "credentialsText", "mappingCheck", "mappingOpen", "mappingPreview", "mappingSave", "mappingText", "runCommand"]);
  const pages = commandsJs + webresource("credentials.html") + webresource("mapping.html");
  for (const name of shipped) assert.match(pages, new RegExp(`\\.${name}\\(`), `${name} is called`);
  assert.deepEqual(await exportsOf(testEngine()), [...shipped, "contactPatch", "mapContact", "memoryBytes", "salesmanagoCall"].sort());
});

test("the integration form hands Xrm and its formContext to the credential page and the mapping editor", async () => {
  const { context } = dynamicsWindow();
  load(context, commandsJs, "commands.js");
  const received = [];
  const page = (name) => ({ setClientApiContext: (xrm, formContext) => received.push([name, xrm, formContext]) });
  const pages = { WebResource_credentials: page("credentials"), WebResource_mapping: page("mapping") };
  const formContext = {
    getControl: (name) => (pages[name] ? { getContentWindow: () => Promise.resolve(pages[name]) } : null),
  };
  await context.SalesManago.Integration.onLoad({ getFormContext: () => formContext });
  assert.deepEqual(received.map(([name]) => name), ["credentials", "mapping"]);
  for (const [, xrm, form] of received) {
    assert.equal(xrm, context.Xrm);
    assert.equal(form, formContext);
  }
});
