// Direct mode, end to end (`npm start -- --direct`): a SALESmanago that answers the browser
// (CORS), no relay, and the client ID, API secret and owner on the integration record. The
// other end-to-end tests run through salesmanago-relay; these keep the direct path covered:
// saving the four credentials, Test connection (good and bad), Send, Fetch, Export all, and
// Pull consents with its file read by the browser from SALESmanago itself.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { button, credentialFrame, open, saveCredentials, startSandboxWorld, takeDialog, until, jobSummary } from "./support/sandbox.mjs";

let world;
const rows = () => world.sandbox.dataverse.rows("contact");
const row = (id) => rows().find((r) => r.contactid === id);
const integrationRow = () => world.sandbox.dataverse.rows("new_salesmanagointegration")[0];
const inSalesmanago = (email) => world.sim.contacts().find((c) => c.email === email?.trim().toLowerCase());
const validEmail = (r) => typeof r.emailaddress1 === "string" && /^[a-z]+\.[a-z]+\d+@example\.com$/.test(r.emailaddress1);
/** An e-mail SALESmanago accepts once trimmed and lower-cased (the demo data's upper-case ones too). */
const sendable = (r) => typeof r.emailaddress1 === "string" && /^[a-z]+\.[a-z]+\d+@example\.com$/.test(r.emailaddress1.trim().toLowerCase());
const SYNCED = 100000000;

before(async () => {
  world = await startSandboxWorld({ contacts: 60, direct: true });
});

after(async () => {
  await world?.close();
});

test("direct mode has no relay, and SALESmanago answers the sandbox's origin", async () => {
  assert.equal(world.relay, null);
  const preflight = await fetch(`${world.sim.url}/api/contact/upsert`, { method: "OPTIONS", headers: { Origin: world.sandbox.url, "Access-Control-Request-Method": "POST" } });
  assert.ok(preflight.headers.get("access-control-allow-origin"), "the simulator allows browsers");
});

test("saving the four credentials stores them in the hidden columns and never shows the secret again", async () => {
  await open(world, "/integration");
  assert.match(await saveCredentials(world.page, world.form), /Credentials saved/);
  const saved = integrationRow();
  assert.equal(saved.new_clientid, world.credentials.clientId);
  assert.equal(saved.new_apisecret, world.credentials.apiSecret);
  assert.equal(saved.new_owner, world.credentials.owner);
  assert.equal(saved.new_endpoint, world.credentials.endpoint);
  assert.equal(saved.new_relaykey ?? "", "", "no relay key");

  await open(world, "/integration");
  const frame = credentialFrame(world.page);
  await frame.locator("#save:not([disabled])").waitFor();
  assert.equal(await frame.locator("#clientId").inputValue(), world.credentials.clientId);
  assert.equal(await frame.locator("#apiSecret").inputValue(), "");
  assert.match(await frame.locator("#apiSecret").getAttribute("placeholder"), /saved/);
  const html = (await world.page.content()) + (await world.page.frames().find((f) => f.url().includes("credentials.html")).content());
  assert.ok(!html.includes(world.credentials.apiSecret), "the secret is in the page");

  // Saving again with the secret left empty keeps the stored one.
  assert.match(await saveCredentials(world.page, { owner: "second.owner@example.com" }), /Credentials saved/);
  assert.equal(integrationRow().new_apisecret, world.credentials.apiSecret);
  assert.equal(integrationRow().new_owner, "second.owner@example.com");
  assert.match(await saveCredentials(world.page, { owner: world.credentials.owner }), /Credentials saved/);
});

test("test connection says who the owner is, and what is wrong with bad credentials, in the user's language", async () => {
  await open(world, "/integration");
  const before = world.sim.stats().calls["user/listByClient"] ?? 0;
  await button(world.page, "new.integration.TestConnection.Button").click();
  const good = await takeDialog(world.page);
  assert.equal(good.kind, "alert");
  assert.match(good.text, /^Connected to SALESmanago\. owner@example\.com is a user/);
  assert.equal(world.sim.stats().calls["user/listByClient"], before + 1, "the browser called SALESmanago");

  await open(world, "/integration", 1045);
  assert.match(await saveCredentials(world.page, { apiSecret: "wrong-secret" }), /Zapisano dane dostępowe/);
  await button(world.page, "new.integration.TestConnection.Button").click();
  const refused = await takeDialog(world.page);
  assert.equal(refused.kind, "error");
  assert.match(refused.text, /odrzuciło dane dostępowe/);
  assert.ok(!refused.text.includes("wrong-secret"));

  await open(world, "/integration");
  assert.match(await saveCredentials(world.page, { apiSecret: world.credentials.apiSecret, owner: "nobody@example.com" }), /Credentials saved/);
  await button(world.page, "new.integration.TestConnection.Button").click();
  assert.match((await takeDialog(world.page)).text, /nobody@example\.com is not a user of this SALESmanago account/);
  assert.match(await saveCredentials(world.page, { owner: world.credentials.owner }), /Credentials saved/);
});

test("Send creates the contact in SALESmanago and records its id and status", async () => {
  const contact = rows().find((r) => validEmail(r) && !inSalesmanago(r.emailaddress1));
  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Send.Button").click();
  assert.match((await takeDialog(world.page)).text, /^Sent to SALESmanago\./);
  const held = inSalesmanago(contact.emailaddress1);
  assert.equal(held?.name, `${contact.firstname} ${contact.lastname}`);
  assert.equal(row(contact.contactid).new_salesmanagoid, held.id);
  assert.equal(row(contact.contactid).new_salesmanagosyncstatus, SYNCED);
});

test("Fetch fills the form from SALESmanago, unsaved", async () => {
  const contact = rows().find((r) => validEmail(r) && inSalesmanago(r.emailaddress1)?.phone === "+48 600 000 000" && r.mobilephone !== "+48 600 000 000");
  await open(world, `/contacts/${contact.contactid}`);
  await button(world.page, "new.contact.Fetch.Button").click();
  assert.match((await takeDialog(world.page)).text, /fields were filled in from SALESmanago/);
  assert.equal(await world.page.locator("#field-mobilephone").inputValue(), "+48 600 000 000");
  assert.equal(row(contact.contactid).mobilephone, contact.mobilephone, "the user reviews and saves");
});

test("Export all sends every contact it can, and Pull consents reads SALESmanago's file from the browser", async () => {
  await open(world, "/integration");
  const text = await jobSummary(world.page, "new.integration.ExportAll.Button");
  const [, total, sent, skipped, failed] = text.match(/finished: (\d+) contacts\. (\d+) sent, (\d+) skipped, (\d+) failed\./).map(Number);
  assert.equal(total, rows().length);
  assert.equal(sent + skipped + failed, total);
  assert.equal(failed, 0);
  assert.equal(skipped, rows().filter((r) => !sendable(r)).length);
  for (const r of rows().filter(sendable)) assert.ok(inSalesmanago(r.emailaddress1), r.emailaddress1);

  // A withdrawal in SALESmanago comes back through the export file, fetched from SALESmanago itself.
  const contact = rows().find((r) => sendable(r) && r.donotbulkemail === false && inSalesmanago(r.emailaddress1));
  world.sim.seed([{ ...inSalesmanago(contact.emailaddress1), optedOut: true, modifiedOn: Date.now() }]);
  const files = [];
  const seen = (request) => request.url().startsWith(`${world.sim.url}/files/`) && files.push(request.url());
  world.page.on("request", seen);
  try {
    assert.match(await jobSummary(world.page, "new.integration.PullConsents.Button"), /Pull consents finished: \d+ contacts checked\. [1-9]\d* updated/);
  } finally {
    world.page.off("request", seen);
  }
  assert.ok(files.length >= 1, "the browser fetched the file from SALESmanago");
  await until(() => row(contact.contactid).donotbulkemail === true, { what: "the opt-out to reach Dynamics" });
  assert.deepEqual(world.problems, []);
});
