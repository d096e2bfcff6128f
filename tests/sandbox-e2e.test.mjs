// End to end in headless Chromium: the sandbox serves the built solution's web resources and
// builds each page's command bar from its customizations.xml; the tests click every button
// the solution defines, as a user would, and check Dataverse's data and SALESmanago's
// (the simulator, on another origin, refusing browsers: the engine calls it through
// salesmanago-relay, as a real org does; tests/direct-e2e.test.mjs covers direct mode).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DOMParser } from "@xmldom/xmldom";
import { children, child, path, readSolution } from "../sandbox/public/solution.js";
import { root } from "./support/package.mjs";
import { startBrowserRelay } from "../sandbox/relay.mjs";
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

test("saving the relay's address and key stores them in the hidden columns, clears the rest, and never shows the key again", async () => {
  await open(world, "/integration");
  // What `npm start` says to type: the relay's address and key, nothing else.
  const status = await saveCredentials(world.page, world.form);
  assert.match(status, /Credentials saved/);
  const row = integrationRow();
  assert.equal(row.new_endpoint, world.relay.url);
  assert.equal(row.new_relaykey, world.relay.key);
  for (const cleared of ["new_clientid", "new_apisecret", "new_owner"]) assert.equal(row[cleared] ?? "", "", cleared);

  await open(world, "/integration");
  const frame = credentialFrame(world.page);
  await frame.locator("#save:not([disabled])").waitFor();
  assert.equal(await frame.locator("#endpoint").inputValue(), world.relay.url);
  assert.equal(await frame.locator("#relayKey").inputValue(), "");
  assert.match(await frame.locator("#relayKey").getAttribute("placeholder"), /saved/);
  assert.equal(await frame.locator("#apiSecret").inputValue(), "");
  assert.equal(await frame.locator("#apiSecret").getAttribute("placeholder"), "", "no secret is stored");
  const html = (await world.page.content()) + (await world.page.frames().find((f) => f.url().includes("credentials.html")).content());
  assert.ok(!html.includes(world.relay.key.split(".")[1]), "the relay key is in the page");
  for (const hidden of ["new_apisecret", "new_clientid", "new_owner", "new_endpoint", "new_relaykey"]) {
    assert.equal(await world.page.locator(`#field-${hidden}`).count(), 0, `${hidden} is visible on the form`);
  }
  await world.page.screenshot({ path: join(SCREENSHOTS, "integration-form.png"), fullPage: true });

  // Saving again with the key left empty keeps the stored one; a secret typed with a key is refused.
  assert.match(await saveCredentials(world.page, { endpoint: world.relay.url }), /Credentials saved/);
  assert.equal(integrationRow().new_relaykey, world.relay.key);
  assert.match(await saveCredentials(world.page, { apiSecret: world.credentials.apiSecret, relayKey: world.relay.key }), /Nothing was saved/);
  assert.match(await credentialFrame(world.page).locator("#apiSecretError").innerText(), /Leave the API secret empty when you use a relay key/);
  assert.equal(integrationRow().new_apisecret ?? "", "", "the secret was not stored");
  assert.equal(integrationRow().new_relaykey, world.relay.key);
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

test("test connection through the relay says so, and the simulator saw the relay's signed call", async () => {
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
  assert.match(dialog.text, /^Connected to SALESmanago through the relay\. The relay's owner \(SALESMANAGO_OWNER\) is a user of this account/);
  assert.equal(world.sim.stats().calls["user/listByClient"], before + 1);
});

test("test connection with a wrong relay key, or a relay SALESmanago refuses, says what is wrong, in the user's language", async () => {
  const wrongKey = world.relay.key.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
  await open(world, "/integration", 1045);
  assert.match(await saveCredentials(world.page, { endpoint: world.relay.url, relayKey: wrongKey }), /Zapisano dane dostępowe/);
  await button(world.page, "new.integration.TestConnection.Button").click();
  const dialog = await takeDialog(world.page);
  assert.equal(dialog.kind, "error");
  assert.match(dialog.text, /^Pośrednik odrzucił klucz\./);
  assert.ok(!dialog.text.includes(wrongKey.split(".")[1]));

  // Relays of the admin's own making: one with a wrong API secret, one whose owner is no user.
  for (const [held, said] of [
    [{ apiSecret: "wrong-secret" }, /^SALESmanago refused the relay's credentials\. Ask the relay's administrator to check its SALESMANAGO_CLIENT_ID, SALESMANAGO_API_SECRET/],
    [{ owner: "nobody@example.com" }, /^The relay reaches SALESmanago, but its owner \(SALESMANAGO_OWNER\) is not a user of this SALESmanago account\./],
  ]) {
    const other = await startBrowserRelay(world.sandbox, { ...world.credentials, ...held });
    try {
      await open(world, "/integration");
      assert.match(await saveCredentials(world.page, { endpoint: other.url, relayKey: other.key }), /Credentials saved/);
      await button(world.page, "new.integration.TestConnection.Button").click();
      const refused = await takeDialog(world.page);
      assert.equal(refused.kind, "error");
      assert.match(refused.text, said);
      assert.ok(!refused.text.includes("wrong-secret"));
    } finally {
      await other.stop();
    }
  }
  assert.match(await saveCredentials(world.page, world.form), /Credentials saved/);
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

test("a web resource's address from getWebResourceUrl carries a caching token and serves the same file", async () => {
  await open(world, "/contacts");
  const name = "new_/salesmanago/commands.js";
  const cached = await world.page.evaluate((n) => Xrm.Utility.getGlobalContext().getWebResourceUrl(n), name);
  assert.match(cached, /^\/%7B\d+%7D\/WebResources\/new_\/salesmanago\/commands\.js$/i, "relative, with the token");
  const [plain, tokened] = await Promise.all([`/WebResources/${name}`, cached].map((p) => fetch(`${world.sandbox.url}${p}`)));
  assert.equal(tokened.status, 200);
  assert.equal(await tokened.text(), await plain.text());
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
