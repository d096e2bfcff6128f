// The built web resources in headless Chromium: the credential page loads the engine and labels
// its fields in the user's language; commands.js loads a command's engine beside itself on
// first use.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, serveWebResources } from "./support/browser.mjs";
import { root, version } from "./support/package.mjs";

// A stand-in for a Dynamics window that runs ribbon commands: a fake Xrm recording dialogs.
const HOST = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>host</title>
<script>
  window.dialogs = [];
  window.Xrm = {
    Utility: { getGlobalContext: () => ({ userSettings: { languageId: 1045 }, getClientUrl: () => location.origin }) },
    WebApi: { retrieveMultipleRecords: () => Promise.resolve({ entities: [] }) },
    Navigation: {
      openAlertDialog: (o) => { dialogs.push(["alert", o.text]); return Promise.resolve({}); },
      openErrorDialog: (o) => { dialogs.push(["error", o.message]); return Promise.resolve({}); },
    },
  };
</script>
<script src="/WebResources/new_/salesmanago/commands.js"></script>
</head><body><button type="button" onclick="SalesManago.Integration.exportAll({})">Export all contacts</button></body></html>`;

let server;
let chromium;

before(async () => {
  server = await serveWebResources({
    "/host.html": HOST,
    // The contact's columns, which a job reads beside the integration record (none of them
    // consents here), as the Web API answers.
    "/api/data/v9.2/EntityDefinitions(LogicalName='contact')/Attributes": JSON.stringify({ value: [] }),
  });
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await server?.close();
});

async function open(path) {
  const page = await chromium.context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(server.base + path);
  return { page, problems };
}

test("the credential page labels its fields in Polish for a Polish user and starts the engine", async () => {
  const { page, problems } = await open("/WebResources/new_/salesmanago/credentials.html?userlcid=1045&typename=new_salesmanagointegration");
  await page.getByText(`SALESmanago engine ${version()}`).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByRole("heading").textContent(), "Dane dostępowe SALESmanago");
  for (const label of ["Identyfikator klienta", "Sekret API", "E-mail właściciela", "Adres API"]) {
    assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, label);
  }
  assert.equal(await page.getByLabel("Sekret API").getAttribute("type"), "password");
  assert.equal(await page.locator("html").getAttribute("lang"), "pl");
  assert.equal(await page.evaluate(() => typeof window.wasm_bindgen), "undefined", "no bare wasm_bindgen global");
  assert.deepEqual(problems, []);
  await page.close();
});

test("the credential page opened outside its form cannot save and says where to open it", async () => {
  const { page, problems } = await open("/WebResources/new_/salesmanago/credentials.html?userlcid=1033");
  await page.getByRole("status").getByText("Open this page from the SALESmanago Integration record").waitFor({ timeout: 10_000 });
  assert.equal(await page.getByRole("button", { name: "Save credentials" }).isDisabled(), true);
  await page.getByLabel("API secret").fill("s3cret");
  assert.ok(!(await page.getByRole("status").textContent()).includes("s3cret"), "the secret never appears in messages");
  const screenshots = join(root, "target", "screenshots");
  mkdirSync(screenshots, { recursive: true });
  await page.setViewportSize({ width: 640, height: 320 });
  await page.screenshot({ path: join(screenshots, "credentials.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a ribbon command loads its engine beside commands.js once and shows the engine's answer", async () => {
  const { page, problems } = await open("/host.html");
  assert.equal(await page.evaluate(() => typeof window.SalesManagoExportEngine), "undefined");
  const button = page.getByRole("button", { name: "Export all contacts" });
  await button.click();
  await button.click();
  await page.waitForFunction(() => window.dialogs.length === 2, null, { timeout: 10_000 });
  const dialogs = await page.evaluate(() => window.dialogs);
  for (const [kind, text] of dialogs) {
    assert.equal(kind, "error", text);
    assert.match(text, /Nie ma jeszcze rekordu integracji z SALESmanago/);
  }
  // "Export all contacts" is an export over many contacts: the exports' engine, and only it, in
  // the user's language (Polish here).
  const engineLoads = server.requests.filter((r) => r.startsWith("/WebResources/new_/salesmanago/engine"));
  assert.deepEqual(engineLoads.slice(-1), [`/WebResources/new_/salesmanago/engine-export.pl.js?ver=${version()}`]);
  assert.equal(engineLoads.filter((r) => r.includes("?ver=")).length, 1);
  assert.equal(await page.evaluate(() => typeof window.SalesManagoEngine), "undefined");
  assert.deepEqual(problems, []);
  await page.close();
});
