// End to end in headless Chromium: the sandbox serves the built solution's web resources and
// builds each page's command bar from its customizations.xml; the tests click every button
// the solution defines, as a user would, and check Dataverse's data and SALESmanago's
// (the simulator, on another origin).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DOMParser } from "@xmldom/xmldom";
import { children, child, path, readSolution } from "../sandbox/public/solution.js";
import { root } from "./support/package.mjs";
import { button, credentialFrame, open, saveCredentials, startSandboxWorld, takeDialog, unlabelled } from "./support/sandbox.mjs";

const SCREENSHOTS = join(root, "target", "screenshots");
let world;

before(async () => {
  world = await startSandboxWorld({ contacts: 120 });
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await world?.close();
});

/** The solution's buttons per page, read from the built customizations.xml. */
async function solutionButtons() {
  const xml = await (await fetch(`${world.sandbox.url}/solution/customizations.xml`)).text();
  const solution = readSolution(new DOMParser().parseFromString(xml, "text/xml"));
  const pages = { "/contacts/00000000-0000-4000-8000-000000000001": "Mscrm.Form.contact.", "/contacts": "Mscrm.HomepageGrid.contact.", "/integration": "Mscrm.Form.new_salesmanagointegration." };
  const out = [];
  for (const entity of solution.entities.values()) {
    for (const action of children(path(entity.ribbon, "CustomActions"), "CustomAction")) {
      const location = action.getAttribute("Location");
      const page = Object.keys(pages).find((p) => location.startsWith(pages[p]));
      assert.ok(page, `the sandbox has no page for location ${location}`);
      out.push({ page, id: child(child(action, "CommandUIDefinition"), "Button").getAttribute("Id") });
    }
  }
  return out;
}

function integrationRow() {
  const rows = world.sandbox.dataverse.rows("new_salesmanagointegration");
  assert.equal(rows.length, 1);
  return rows[0];
}

test("every button the solution defines is on its page, named, and wired without errors", async () => {
  const buttons = await solutionButtons();
  assert.ok(buttons.length >= 7, `only ${buttons.length} buttons in the solution`);
  for (const lcid of [1033, 1045]) {
    for (const page of new Set(buttons.map((b) => b.page))) {
      await open(world, page, lcid);
      for (const { id } of buttons.filter((b) => b.page === page)) {
        const found = button(world.page, id);
        assert.equal(await found.count(), 1, `${id} missing on ${page}`);
        const name = await found.getAttribute("aria-label");
        assert.ok(name && !name.startsWith("new."), `${id} has no label in ${lcid}: ${name}`);
      }
      assert.deepEqual(await world.page.evaluate(() => window.__sandbox.wiringErrors), [], page);
    }
  }
  assert.deepEqual(world.problems, []);
});

test("every input has an accessible label and every button a name, in the sandbox and the web resources", async () => {
  for (const page of ["/contacts", "/contacts/00000000-0000-4000-8000-000000000002", "/integration"]) {
    await open(world, page);
    assert.deepEqual(await world.page.evaluate(unlabelled), [], page);
  }
  await credentialFrame(world.page).locator("#save:not([disabled])").waitFor();
  const frame = world.page.frames().find((f) => f.url().includes("credentials.html"));
  assert.deepEqual(await frame.evaluate(unlabelled), [], "credentials.html");
});

test("bad credentials are marked field by field and nothing is stored", async () => {
  await open(world, "/integration");
  const status = await saveCredentials(world.page, { clientId: "has space", apiSecret: "", owner: "not-an-email", endpoint: "ftp://example.com" });
  assert.match(status, /Nothing was saved/);
  const frame = credentialFrame(world.page);
  for (const [id, problem] of [["clientId", /spaces/], ["apiSecret", /Enter the API secret/], ["owner", /e-mail address/], ["endpoint", /https:\/\//]]) {
    assert.equal(await frame.locator(`#${id}`).getAttribute("aria-invalid"), "true", id);
    assert.match(await frame.locator(`#${id}Error`).innerText(), problem, id);
  }
  const row = integrationRow();
  assert.equal(row.new_clientid ?? null, null);
  assert.equal(row.new_apisecret ?? null, null);
});

test("saving credentials stores them in the hidden columns and never shows the secret again", async () => {
  await open(world, "/integration");
  const status = await saveCredentials(world.page, world.credentials);
  assert.match(status, /Credentials saved/);
  const row = integrationRow();
  assert.equal(row.new_clientid, world.credentials.clientId);
  assert.equal(row.new_apisecret, world.credentials.apiSecret);
  assert.equal(row.new_owner, world.credentials.owner);
  assert.equal(row.new_endpoint, world.credentials.endpoint);

  await open(world, "/integration");
  const frame = credentialFrame(world.page);
  await frame.locator("#save:not([disabled])").waitFor();
  assert.equal(await frame.locator("#clientId").inputValue(), world.credentials.clientId);
  assert.equal(await frame.locator("#apiSecret").inputValue(), "");
  assert.match(await frame.locator("#apiSecret").getAttribute("placeholder"), /saved/);
  const html = (await world.page.content()) + (await world.page.frames().find((f) => f.url().includes("credentials.html")).content());
  assert.ok(!html.includes(world.credentials.apiSecret), "the secret is in the page");
  for (const hidden of ["new_apisecret", "new_clientid", "new_owner", "new_endpoint"]) {
    assert.equal(await world.page.locator(`#field-${hidden}`).count(), 0, `${hidden} is visible on the form`);
  }
  await world.page.screenshot({ path: join(SCREENSHOTS, "integration-form.png"), fullPage: true });

  // Saving again with the secret left empty keeps the stored one.
  assert.match(await saveCredentials(world.page, { owner: "second.owner@example.com" }), /Credentials saved/);
  assert.equal(integrationRow().new_apisecret, world.credentials.apiSecret);
  assert.equal(integrationRow().new_owner, "second.owner@example.com");
  assert.match(await saveCredentials(world.page, { owner: world.credentials.owner }), /Credentials saved/);
});

test("the navigation is the app's site map, in the user's language", async () => {
  for (const [lcid, names] of [[1033, ["Contacts", "SALESmanago Integration"]], [1045, ["Kontakty", "Integracja z SALESmanago"]]]) {
    await open(world, "/contacts", lcid);
    const links = world.page.locator("nav#sitemap a");
    assert.deepEqual(await links.allInnerTexts(), names);
    assert.deepEqual(await links.evaluateAll((as) => as.map((a) => a.getAttribute("href"))), ["/contacts", "/integration"]);
    assert.equal(await world.page.locator("#nav-contacts").getAttribute("aria-current"), "page");
  }
});

test("test connection with good credentials says so, and the simulator saw the call", async () => {
  await open(world, "/integration");
  const before = world.sim.stats().calls["user/listByClient"] ?? 0;
  await button(world.page, "new.integration.TestConnection.Button").click();
  // A dialog to assistive technology: found by its role and its name, modal, and Tab stays in it.
  const shown = world.page.getByRole("alertdialog", { name: "Dynamics 365" });
  await shown.waitFor();
  assert.equal(await shown.getAttribute("aria-modal"), "true");
  assert.match(await shown.getAttribute("aria-describedby"), /^dialog-text-/);
  for (const key of ["Tab", "Tab", "Shift+Tab"]) {
    await world.page.keyboard.press(key);
    assert.ok(await world.page.evaluate(() => document.activeElement.closest("[role=alertdialog]") !== null), `focus left the dialog after ${key}`);
  }
  const dialog = await takeDialog(world.page);
  assert.equal(dialog.kind, "alert");
  assert.match(dialog.text, /Connected to SALESmanago\. owner@example\.com is a user/);
  assert.equal(world.sim.stats().calls["user/listByClient"], before + 1);
});

test("test connection with bad credentials says what is wrong, in the user's language", async () => {
  await open(world, "/integration", 1045);
  assert.match(await saveCredentials(world.page, { apiSecret: "wrong-secret" }), /Zapisano dane dostępowe/);
  await button(world.page, "new.integration.TestConnection.Button").click();
  const dialog = await takeDialog(world.page);
  assert.equal(dialog.kind, "error");
  assert.match(dialog.text, /odrzuciło dane dostępowe/);
  assert.ok(!dialog.text.includes("wrong-secret"));

  await open(world, "/integration");
  assert.match(await saveCredentials(world.page, { apiSecret: world.credentials.apiSecret, owner: "nobody@example.com" }), /Credentials saved/);
  await button(world.page, "new.integration.TestConnection.Button").click();
  assert.match((await takeDialog(world.page)).text, /nobody@example\.com is not a user of this SALESmanago account/);
  assert.match(await saveCredentials(world.page, { owner: world.credentials.owner }), /Credentials saved/);
});

test("the contact form shows the solution's and the consent columns, and saves edits to Dataverse", async () => {
  const id = "00000000-0000-4000-8000-000000000003";
  await open(world, `/contacts/${id}`);
  for (const column of ["emailaddress1", "new_salesmanagoid", "new_salesmanagosyncstatus", "new_donotsms", "new_consent_marketing"]) {
    assert.equal(await world.page.locator(`#field-${column}`).count(), 1, column);
  }
  for (const column of ["new_salesmanagoid", "new_salesmanagosyncstatus", "new_salesmanagosyncedon", "fullname"]) {
    if (await world.page.locator(`#field-${column}`).count()) assert.equal(await world.page.locator(`#field-${column}`).isDisabled(), true, column);
  }
  await world.page.locator("#field-address1_city").fill("Łódź");
  await world.page.locator("#field-address1_city").dispatchEvent("change");
  await button(world.page, "Mscrm.SavePrimary").click();
  await world.page.waitForFunction(() => window.__sandbox.log.some((e) => e.kind === "saved"));
  assert.equal(world.sandbox.dataverse.rows("contact").find((r) => r.contactid === id).address1_city, "Łódź");
  await world.page.screenshot({ path: join(SCREENSHOTS, "contact-form.png"), fullPage: true });
});

test("the grid pages through Dataverse and selects rows for its buttons", async () => {
  await open(world, "/contacts");
  assert.equal(await world.page.locator("table.grid tbody tr").count(), 50);
  await world.page.getByRole("button", { name: /Next page/ }).click();
  await world.page.locator("text=Page 2").waitFor();
  assert.equal(await world.page.locator("table.grid tbody tr").count(), 50);
  await world.page.getByRole("button", { name: /Next page/ }).click();
  await world.page.locator("text=Page 3").waitFor();
  assert.equal(await world.page.locator("table.grid tbody tr").count(), 20);
  const del = button(world.page, "Mscrm.DeleteSelectedRecord");
  assert.equal(await del.isDisabled(), true);
  await world.page.locator("table.grid tbody input[type=checkbox]").first().check();
  assert.equal(await del.isDisabled(), false);
  await world.page.getByRole("button", { name: /Previous page/ }).click();
  await world.page.locator("text=Page 2").waitFor();
  await world.page.evaluate(() => window.scrollTo(0, 0));
  await world.page.screenshot({ path: join(SCREENSHOTS, "contacts-grid.png") });
});

test("Xrm.WebApi pages with maxPageSize and nextLink, and reports Dataverse throttling", async () => {
  await open(world, "/contacts");
  const pages = await world.page.evaluate(async () => {
    const sizes = [];
    let options = "?$select=contactid&$filter=donotbulkemail eq false&$orderby=contactid";
    for (let i = 0; i < 10 && options; i++) {
      const result = await Xrm.WebApi.retrieveMultipleRecords("contact", options, 25);
      sizes.push(result.entities.length);
      options = result.nextLink ? result.nextLink.slice(result.nextLink.indexOf("?")) : null;
    }
    return sizes;
  });
  const expected = world.sandbox.dataverse.rows("contact").filter((r) => r.donotbulkemail === false).length;
  assert.equal(pages.reduce((a, b) => a + b, 0), expected);
  assert.ok(pages.length > 1 && pages.slice(0, -1).every((n) => n === 25), JSON.stringify(pages));

  world.sandbox.dataverse.setFaults({ throttle: { every: 1, retryAfter: 7, count: 1 } });
  const error = await world.page.evaluate(() => Xrm.WebApi.retrieveRecord("contact", "00000000-0000-4000-8000-000000000001", "?$select=fullname").then(() => null, (e) => ({ errorCode: e.errorCode, retryAfter: e.retryAfter, message: e.message })));
  world.sandbox.dataverse.setFaults({});
  assert.equal(error.retryAfter, 7);
  assert.ok(error.errorCode > 0 && error.message, JSON.stringify(error));
});
