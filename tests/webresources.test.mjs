// The built web resources, run in node:vm contexts that give them only what a Dynamics window
// would: the ribbon and form functions the solution names exist, the engine loads lazily and
// once, and failures reach the user as text.
import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { solutionZip, testEngine, version, webresource } from "./support/package.mjs";

const commandsJs = webresource("commands.js");
// Every engine in both languages, by file; the English ones by engine for the tests below.
const engines = Object.fromEntries(
  ["engine", "engine-admin", "engine-export", "engine-pull-consents", "engine-pull-changes", "engine-pull-activity"]
    .flatMap((stem) => [`${stem}.en.js`, `${stem}.pl.js`])
    .map((file) => [file, webresource(file)]),
);
const engineJs = engines["engine.en.js"];
const adminJs = engines["engine-admin.en.js"];
const exportJs = engines["engine-export.en.js"];
const pullJs = {
  consents: engines["engine-pull-consents.en.js"],
  changes: engines["engine-pull-changes.en.js"],
  activity: engines["engine-pull-activity.en.js"],
};
const PULL_GLOBALS = { consents: "SalesManagoPullConsentsEngine", changes: "SalesManagoPullChangesEngine", activity: "SalesManagoPullActivityEngine" };

/** A window-like vm context with a fake Xrm; an engine "loads" when commands.js appends it. */
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
              const file = element.src.split("/").pop().split("?")[0];
              vm.runInContext(engines[file], context, { filename: file });
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

test("commands.js adds one global, SalesManago, and each engine one: SalesManagoEngine, SalesManagoAdminEngine, SalesManagoExportEngine, SalesManagoPull…Engine", () => {
  const { context } = dynamicsWindow();
  const before = new Set(Object.keys(context));
  load(context, commandsJs, "commands.js");
  load(context, engineJs, "engine.en.js");
  load(context, adminJs, "engine-admin.en.js");
  load(context, exportJs, "engine-export.en.js");
  for (const [pull, js] of Object.entries(pullJs)) load(context, js, `engine-pull-${pull}.en.js`);
  const added = Object.keys(context).filter((k) => !before.has(k)).sort();
  const globals = ["SalesManagoEngine", "SalesManagoAdminEngine", "SalesManagoExportEngine", ...Object.values(PULL_GLOBALS)];
  assert.deepEqual(added, ["SalesManago", ...globals].sort());
  assert.equal(context.SalesManago.version, version());
  for (const global of globals) {
    assert.equal(context[global].version, version(), global);
  }
});

test("the contact form's enable rule answers at once and loads no engine", () => {
  const { context, seen } = dynamicsWindow();
  load(context, commandsJs, "commands.js");
  assert.equal(context.SalesManago.Contact.onFormReady({}), true);
  assert.deepEqual(seen.scripts, []);
});

test("commands load their engine on first use, once, and show its answer in the user's language", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1045 });
  const at = (file) => `/%7b637199221580014143%7d/webresources/new_/salesmanago/${file}`;
  load(context, commandsJs, "commands.js");
  assert.equal(context.SalesManagoPullChangesEngine, undefined, "no engine may load before a command runs");
  await Promise.all([context.SalesManago.Integration.pullChanges({}), context.SalesManago.Integration.pullConsents({})]);
  // Each pull loads its own engine, in the user's language (Polish here), and only it.
  assert.deepEqual(seen.scripts, [at("engine-pull-changes.pl.js"), at("engine-pull-consents.pl.js")]);
  assert.equal(context.SalesManagoPullActivityEngine, undefined, "Pull activity's engine is not needed");
  assert.equal(context.SalesManagoExportEngine, undefined, "the exports' engine is not needed");
  assert.equal(context.SalesManagoEngine, undefined, "the contact pages' engine is not needed");
  assert.equal(context.SalesManagoAdminEngine, undefined, "the integration record's pages' engine is not needed");
  assert.equal(seen.alerts.length, 0, seen.alerts.join("\n"));
  assert.equal(seen.errors.length, 2);
  for (const error of seen.errors) assert.match(error, /Nie ma jeszcze rekordu integracji z SALESmanago/);
  // An export loads the exports' engine beside them.
  await context.SalesManago.Integration.exportAll({});
  assert.deepEqual(seen.scripts.slice(2), [at("engine-export.pl.js")]);
  assert.match(seen.errors[2], /Nie ma jeszcze rekordu integracji z SALESmanago/);
  // Test connection is the record's pages' engine's.
  await context.SalesManago.Integration.testConnection({});
  assert.deepEqual(seen.scripts.slice(3), [at("engine-admin.pl.js")]);
  assert.match(seen.errors[3], /Nie ma jeszcze rekordu integracji z SALESmanago/);
  // A contact command in the same window (the command bar's) loads its engine beside them.
  await context.SalesManago.Contact.send({});
  assert.deepEqual(seen.scripts.slice(4), [at("engine.pl.js")]);
  assert.equal(seen.errors.length, 5);
  // The engine's own answer (this form has no record to read), not a failure to start it.
  assert.match(seen.errors[4], /^Dynamics 365 odrzucił żądanie/);
  await context.SalesManago.Integration.pullActivity({});
  assert.deepEqual(seen.scripts.slice(5), [at("engine-pull-activity.pl.js")]);
  await context.SalesManago.Integration.pullConsents({});
  await context.SalesManago.Integration.exportChanges({});
  await context.SalesManago.Integration.testConnection({});
  assert.equal(seen.scripts.length, 6, "each engine loads once");
});

test("the grid's Export, a job over many contacts, loads the exports' engine, not the contact pages'", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1033 });
  load(context, commandsJs, "commands.js");
  await context.SalesManago.Contact.exportSelected(["{0A1B2C3D-0000-4000-8000-00000000000A}"], { refresh() {} });
  assert.deepEqual(seen.scripts, ["/%7b637199221580014143%7d/webresources/new_/salesmanago/engine-export.en.js"]);
  assert.equal(context.SalesManagoEngine, undefined, "the contact pages' engine is not needed");
  // The engine's own answer (no record to read here), not a refusal of the command.
  assert.equal(seen.errors.length, 1);
  assert.doesNotMatch(seen.errors[0], /no command|could not start/);
});

test("an engine that cannot load is reported, and the next click tries again", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1033, engineLoads: false });
  load(context, commandsJs, "commands.js");
  await context.SalesManago.Contact.send({});
  assert.equal(seen.alerts.length, 0);
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /SALESmanago engine could not start .*engine\.en\.js could not be loaded/);
  await context.SalesManago.Contact.send({});
  assert.equal(seen.scripts.length, 2, "a failed load must not be cached");
});

test("an engine of another version (a stale cache) is reported, not used", async () => {
  const { context, seen } = dynamicsWindow({ languageId: 1033 });
  load(context, commandsJs, "commands.js");
  const stale = engineJs.replaceAll(`"${version()}"`, '"0.0.1"');
  context.document.head.appendChild = (element) => {
    seen.scripts.push(element.src);
    setTimeout(() => (vm.runInContext(stale, context, { filename: "engine.en.js" }), element.onload()), 1);
  };
  await context.SalesManago.Contact.send({});
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /SALESmanago engine could not start \(engine\.en\.js is version 0\.0\.1, commands\.js \d+\.\d+\.\d+\)/);
});

test("the engine instantiates once per window and a second engine.en.js keeps the first", async () => {
  const { context } = dynamicsWindow();
  load(context, engineJs, "engine.en.js");
  const first = context.SalesManagoEngine;
  const [a, b] = await Promise.all([first.ready(), first.ready()]);
  assert.equal(a, b);
  assert.equal(first.version, version());
  load(context, engineJs, "engine.en.js");
  assert.equal(context.SalesManagoEngine, first);
  assert.equal(await context.SalesManagoEngine.ready(), a);
  await assert.rejects(a.runCommand("no.such", { lcid: 1033 }), /no command “no\.such”/);
});

/** The engine `js` defines as `global`, instantiated in a window of its own. */
async function engineIn(js, global) {
  const { context } = dynamicsWindow();
  load(context, js, "engine.en.js");
  return context[global].ready();
}

function exportsOf(engine) {
  return Object.keys(engine).filter((k) => typeof engine[k] === "function" && !k.startsWith("__") && k !== "initSync").sort();
}

test("each shipped engine exports only what its pages call; the test engine adds the test exports", async () => {
  const contact = exportsOf(await engineIn(engineJs, "SalesManagoEngine"));
  assert.deepEqual(contact, ["runCommand"]);
  const admin = exportsOf(await engineIn(adminJs, "SalesManagoAdminEngine"));
  assert.deepEqual(admin, ["credentialsState", "credentialsText", "mappingCheck", "mappingOpen", "mappingPreview", "mappingSave", "mappingText", "runCommand"]);
  assert.deepEqual(exportsOf(await engineIn(exportJs, "SalesManagoExportEngine")), ["runCommand"]);
  for (const [pull, js] of Object.entries(pullJs)) assert.deepEqual(exportsOf(await engineIn(js, PULL_GLOBALS[pull])), ["runCommand"], pull);
  const pages = webresource("credentials.html") + webresource("mapping.html");
  for (const name of admin.filter((n) => n !== "runCommand")) assert.match(pages, new RegExp(`\\.${name}\\(`), `${name} is called`);
  assert.match(commandsJs, /\.runCommand\(/);
  assert.deepEqual(exportsOf(await engineIn(testEngine(), "SalesManagoEngine")), [...admin, "contactPatch", "mapContact", "memoryBytes", "salesmanagoCall"].sort());
});

test("each shipped engine runs its own commands and refuses the others' as unknown", async () => {
  const shipped = {
    contact: await engineIn(engineJs, "SalesManagoEngine"),
    admin: await engineIn(adminJs, "SalesManagoAdminEngine"),
    exports: await engineIn(exportJs, "SalesManagoExportEngine"),
    "job.pullConsents": await engineIn(pullJs.consents, PULL_GLOBALS.consents),
    "job.pullChanges": await engineIn(pullJs.changes, PULL_GLOBALS.changes),
    "job.pullActivity": await engineIn(pullJs.activity, PULL_GLOBALS.activity),
  };
  // Every command the web resources name, by the engine commands.js sends it to (`contact.*`,
  // `job.export*`, each pull to its own, the rest).
  const sources = commandsJs + webresource("credentials.html");
  const names = new Set([...sources.matchAll(/"((?:contact|job|integration|credentials)\.[a-zA-Z]+)"/g)].map((m) => m[1]));
  assert.equal(names.size, 14, [...names].join());
  const kind = (promise) => promise.then(() => "done", (e) => e.kind);
  for (const name of names) {
    const own = name.startsWith("contact.") ? "contact" : name.startsWith("job.export") ? "exports" : name.startsWith("job.pull") ? name : "admin";
    // With no Dynamics behind it, the own engine fails reading, or knows it has nothing to do.
    assert.notEqual(await kind(shipped[own].runCommand(name, { lcid: 1033, xrm: {} })), "unknownCommand", name);
    for (const other of Object.keys(shipped).filter((e) => e !== own)) {
      await assert.rejects(shipped[other].runCommand(name, { lcid: 1033 }), (e) => e.kind === "unknownCommand" && e.message.includes(name), `${name} in ${other}`);
    }
  }
});

test("each engine speaks one language, the one its file names, and carries no other's text", async () => {
  const globals = {
    engine: "SalesManagoEngine",
    "engine-admin": "SalesManagoAdminEngine",
    "engine-export": "SalesManagoExportEngine",
    ...Object.fromEntries(Object.entries(PULL_GLOBALS).map(([pull, global]) => [`engine-pull-${pull}`, global])),
  };
  const said = { en: /has no command “no\.such”/, pl: /nie zna polecenia „no\.such”/ };
  // Text only the other language has, as it sits in the wasm.
  const foreign = { en: "nie zna polecenia", pl: "has no command" };
  for (const [stem, global] of Object.entries(globals)) {
    for (const lang of ["en", "pl"]) {
      const js = engines[`${stem}.${lang}.js`];
      const wasm = Buffer.from(js.split('var WASM_BASE64 = "')[1].split('"')[0], "base64");
      assert.ok(wasm.includes(lang === "en" ? "has no command" : "nie zna polecenia"), `${stem}.${lang}.js has its text`);
      assert.ok(!wasm.includes(foreign[lang]), `${stem}.${lang}.js carries the other language's text`);
      const engine = await engineIn(js, global);
      // Whatever the user's language, the engine answers in its own (commands.js loads the user's).
      for (const lcid of [1033, 1045]) {
        await assert.rejects(engine.runCommand("no.such", { lcid }), (e) => said[lang].test(e.message), `${stem}.${lang}.js, LCID ${lcid}`);
      }
    }
  }
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
