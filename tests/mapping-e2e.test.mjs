// The admin's field mapping and sync scope, end to end in the sandbox, without a line of code:
// the mapping editor on the integration form maps a custom column and a choice to SALESmanago
// details (checked as typed, previewed on one contact, saved) and limits the sync to the contacts
// of a view, and Export all sends exactly those values for exactly those contacts (the simulator
// shows them).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { button, configure, jobSummary, open, startSandboxWorld, unlabelled, until } from "./support/sandbox.mjs";

let world;
const rows = () => world.sandbox.dataverse.rows("contact");
const record = () => world.sandbox.dataverse.rows("new_salesmanagointegration")[0];
const inSalesmanago = (email) => world.sim.contacts().find((c) => c.email === email?.trim().toLowerCase());
const sendable = (r) => typeof r.emailaddress1 === "string" && /^[a-z]+\.[a-z]+\d+@example\.com$/.test(r.emailaddress1.trim().toLowerCase());
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const CHANNEL = { 1: "Any", 2: "Email", 3: "Phone", 4: "Fax", 5: "Mail" };

before(async () => {
  world = await startSandboxWorld({ contacts: 60 });
  configure(world);
});

after(async () => {
  await world?.close();
});

const editor = () => world.page.frameLocator('iframe[data-control="WebResource_mapping"]');

/** Fills row `n` (from 1) of the editor. */
async function fillRow(n, { column, target, name, direction }) {
  const row = editor().locator(`#rows tr[data-row="${n}"]`);
  await row.locator("select").nth(0).selectOption(column);
  await row.locator("select").nth(1).selectOption(target);
  await row.locator("input").fill(name);
  await row.locator("select").nth(2).selectOption(direction);
}

test("an admin maps a custom column and a choice, limits the sync to a view, and Export all sends exactly that", async () => {
  const before = new Set(world.sim.contacts().map((c) => c.email));
  await open(world, "/integration");
  const page = editor();
  await page.locator("#add:not([disabled])").waitFor({ timeout: 20_000 });
  assert.match(await page.locator("#empty").innerText(), /No columns are mapped/);

  // The columns come from the contact's metadata, by their display names.
  await page.locator("#add").click();
  const options = await page.locator('#rows tr[data-row="1"] select').nth(0).locator("option").allInnerTexts();
  assert.ok(options.includes("Customer number (new_customerno)"), options.join(" | "));
  assert.ok(options.includes("Preferred Method of Contact (preferredcontactmethodcode)"), options.join(" | "));
  assert.ok(!options.some((o) => o.includes("(emailaddress1)")), "the built-in columns are not offered");
  await fillRow(1, { column: "new_customerno", target: "detail", name: "customer_no", direction: "to" });
  await page.locator("#add").click();
  await fillRow(2, { column: "preferredcontactmethodcode", target: "detail", name: "channel", direction: "to" });
  await until(async () => /can be saved/.test(await page.locator("#check").innerText()), { what: "the check to pass" });

  // Checked as typed: a detail mapped twice is refused, naming the row, and nothing is saved.
  await page.locator("#add").click();
  await fillRow(3, { column: "jobtitle", target: "detail", name: "customer_no", direction: "to" });
  await until(async () => /Entry 3 \(jobtitle\) maps to the same SALESmanago field, detail or tag as entry 1/.test(await page.locator("#check").innerText()), {
    what: "the duplicate to be refused",
  });
  assert.equal(await page.locator('#rows tr[data-row="3"]').getAttribute("aria-invalid"), "true");
  await page.locator("#save").click();
  await until(async () => /entry 1/.test(await page.locator("#check").innerText()));
  assert.equal(record().new_fieldmapping ?? null, null, "nothing saved");
  await page.locator('#rows tr[data-row="3"] button').click();
  await until(async () => /can be saved/.test(await page.locator("#check").innerText()));

  // Keyboard and screen-reader usable.
  const frame = world.page.frames().find((f) => f.url().includes("mapping.html"));
  assert.deepEqual(await frame.evaluate(unlabelled), [], "mapping.html");
  await frame.addScriptTag({ content: AXE });
  const violations = await frame.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations.map((v) => `${v.id}: ${v.help}`));
  assert.deepEqual(violations, [], "axe finds nothing in the editor with three rows");

  // A preview of exactly what one contact would send.
  const sample = rows().find((r) => sendable(r) && r.new_customerno && r.preferredcontactmethodcode);
  await page.locator("#who").fill(sample.emailaddress1.trim());
  await page.locator("#preview").click();
  await until(async () => (await page.locator("#sent").innerText()).includes("customer_no"), { what: "the preview" });
  const previewed = JSON.parse(await page.locator("#sent").innerText());
  assert.equal(previewed.properties.customer_no, sample.new_customerno);
  assert.equal(previewed.properties.channel, CHANNEL[sample.preferredcontactmethodcode]);
  assert.equal(previewed.contact.email, sample.emailaddress1.trim().toLowerCase());

  // The scope: the contacts of the view "Marketing contacts"; a view on a related table cannot be one.
  await page.locator("#rule").selectOption("view");
  const partner = page.locator('#view option[value="Contacts of partner accounts"]');
  assert.equal(await partner.isDisabled(), true);
  assert.match(await partner.innerText(), /uses <link-entity>/);
  await page.locator("#view").selectOption("Marketing contacts");
  await page.locator("#save").click();
  await until(async () => /Saved: 2 mapped columns/.test(await page.locator("#status").innerText()), { what: "the save" });
  const stored = JSON.parse(record().new_fieldmapping);
  assert.deepEqual(
    stored.entries.map((e) => [e.column, e.type, e.detail]),
    [["new_customerno", "text", "customer_no"], ["preferredcontactmethodcode", "choice", "channel"]]
  );
  assert.equal(record().new_syncscope, 100000002);
  assert.equal(record().new_scopeview, "Marketing contacts");
  assert.match(record().new_scopefetchxml, /new_marketingcontact/);

  const summary = await jobSummary(world.page, "new.integration.ExportAll.Button");
  const outside = rows().filter((r) => r.new_marketingcontact !== true).length;
  assert.match(summary, new RegExp(`${outside} outside the sync scope`), summary);
  for (const r of rows().filter(sendable)) {
    const held = inSalesmanago(r.emailaddress1);
    if (r.new_marketingcontact === true) {
      assert.ok(held, `${r.emailaddress1} is marked and went`);
      assert.equal(held.properties.customer_no, r.new_customerno ?? undefined, r.emailaddress1);
      assert.equal(held.properties.channel, r.preferredcontactmethodcode == null ? undefined : CHANNEL[r.preferredcontactmethodcode], r.emailaddress1);
    } else if (!before.has(r.emailaddress1.trim().toLowerCase())) {
      assert.equal(held, undefined, `${r.emailaddress1} is not marked and went`);
    } else {
      assert.equal(held.properties.customer_no, undefined, `${r.emailaddress1} is not marked and got the mapping`);
    }
  }
});
